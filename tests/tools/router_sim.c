/*
 * router_sim.c - drives core/ directly on a real umad port (the simulated
 * fabric under umad2sim, or rxe): two virtual files on two nodes send
 * SMP NodeInfo and PerfMgt PortCounters Gets with COLLIDING client TIDs to
 * other nodes; each must receive exactly its own responses, with its own
 * TIDs, from the LIDs it asked.  Then a request to a dead LID must come
 * back as a timeout to the right file with its TID, and a file closed with
 * requests in flight must leave every router table empty.
 *
 *   router_sim LID1 LID2 [DEAD_LID]      (prints TAP lines)
 */
#include <errno.h>
#include <sys/epoll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <umx/core.h>
#include <umx/mad.h>
#include <umx/port.h>

#define HDR sizeof(struct ib_user_mad_hdr)
#define PER_FILE 200

static int fails;
static void check(int ok, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void check(int ok, const char *what, const char *fmt, ...)
{
	char msg[256] = "";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("%s - %s%s%s\n", ok ? "ok" : "not ok", what, msg[0] ? " # " : "", msg);
	if (!ok)
		fails++;
}

struct client {
	struct umx_file *f;
	uint32_t smp_agent, gsi_agent;
	uint16_t want_lid[PER_FILE];   /* index = client TID */
	uint8_t want_class[PER_FILE];
	bool got[PER_FILE];
	unsigned sent, received, wrong, timeouts;
};

static struct umx_umad_port *port;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}
static struct umx_router *router;

static long reg(struct umx_file *f, uint32_t qpn, uint8_t cls, uint32_t *id)
{
	struct ib_user_mad_reg_req2 q = { .qpn = qpn, .mgmt_class = cls, .mgmt_class_version = 1 };
	bool co;
	long r = umx_file_ioctl(f, IB_USER_MAD_REGISTER_AGENT2, &q, &co);
	*id = q.id;
	return r;
}

static ssize_t send_get(struct client *c, uint32_t agent, uint8_t cls, uint16_t lid, uint32_t tid,
			uint32_t timeout_ms)
{
	uint8_t buf[HDR + 256];
	struct ib_user_mad_hdr h;
	memset(buf, 0, sizeof(buf));
	memset(&h, 0, sizeof(h));
	h.id = agent;
	h.timeout_ms = timeout_ms;
	h.retries = 0;
	h.lid = htobe16(lid);
	h.qpn = htobe32(cls == UMAD_CLASS_SUBN_LID_ROUTED ? 0 : 1);
	h.qkey = htobe32(cls == UMAD_CLASS_SUBN_LID_ROUTED ? 0 : UMAD_QKEY);
	memcpy(buf, &h, sizeof(h));
	uint8_t *m = buf + HDR;
	m[0] = 1;
	m[1] = cls;
	m[2] = 1;
	m[3] = UMAD_METHOD_GET;
	umx_mad_set_tid(m, tid);
	if (cls == UMAD_CLASS_SUBN_LID_ROUTED) {
		m[16] = 0x00; m[17] = 0x11;          /* NodeInfo */
	} else {
		m[16] = 0x00; m[17] = 0x12;          /* PortCounters */
		m[64 + 1] = 1;                       /* PortSelect 1 */
	}
	return umx_file_write(c->f, buf, sizeof(buf));
}

/* run the loop's work for up to ms: wait on the port's eventfd with epoll,
 * as the daemon does (umad2sim wraps poll(), not epoll) */
static int epfd = -1;
static void pump(int ms)
{
	struct epoll_event ev;
	if (epfd < 0) {
		epfd = epoll_create1(EPOLL_CLOEXEC);
		ev.events = EPOLLIN;
		ev.data.fd = umx_umad_port_event_fd(port);
		epoll_ctl(epfd, EPOLL_CTL_ADD, ev.data.fd, &ev);
	}
	if (epoll_wait(epfd, &ev, 1, ms) > 0)
		umx_umad_port_dispatch(port, router);
}

static void drain(struct client *c)
{
	uint8_t buf[HDR + 4096];
	ssize_t n;
	while ((n = umx_file_read(c->f, buf, sizeof(buf))) > 0) {
		struct ib_user_mad_hdr h;
		memcpy(&h, buf, sizeof(h));
		uint64_t tid = umx_mad_tid(buf + HDR);
		uint32_t lo = (uint32_t)tid;
		if (h.status) {
			c->timeouts++;
			continue;
		}
		if (lo >= PER_FILE || c->got[lo] || buf[HDR + 1] != c->want_class[lo] ||
		    be16toh(h.lid) != c->want_lid[lo] || buf[HDR + 3] != UMAD_METHOD_GET_RESP) {
			c->wrong++;
			continue;
		}
		c->got[lo] = true;
		c->received++;
	}
}

int main(int argc, char **argv)
{
	char err[256];
	if (argc < 3) {
		fprintf(stderr, "usage: %s LID1 LID2 [DEAD_LID]\n", argv[0]);
		return 2;
	}
	uint16_t lids[2] = { (uint16_t)atoi(argv[1]), (uint16_t)atoi(argv[2]) };
	uint16_t dead = argc > 3 ? (uint16_t)atoi(argv[3]) : 0;
	setvbuf(stdout, NULL, _IOLBF, 0);

	port = umx_umad_port_open(NULL, 0, err, sizeof(err));
	check(port != NULL, "open the real umad port", "%s", port ? "" : err);
	if (!port)
		return 1;
	router = umx_router_new(umx_umad_port_base(port), NULL, NULL, NULL);
	struct umx_node *n0 = umx_node_new(router, 0, NULL), *n1 = umx_node_new(router, 1, NULL);
	struct client cl[2];
	memset(cl, 0, sizeof(cl));
	cl[0].f = umx_file_open(n0, NULL);
	cl[1].f = umx_file_open(n1, NULL);
	for (int i = 0; i < 2; i++) {
		bool co;
		long r = umx_file_ioctl(cl[i].f, IB_USER_MAD_ENABLE_PKEY, NULL, &co);
		r = r ? r : reg(cl[i].f, 0, UMAD_CLASS_SUBN_LID_ROUTED, &cl[i].smp_agent);
		r = r ? r : reg(cl[i].f, 1, 0, &cl[i].gsi_agent);
		check(r == 0, "client registers an SMP agent and a send-only GSI agent", "client %d: %ld", i, r);
	}

	/* both clients use TIDs 0..PER_FILE-1: every TID collides */
	for (uint32_t t = 0; t < PER_FILE; t++) {
		for (int i = 0; i < 2; i++) {
			struct client *c = &cl[i];
			uint8_t cls = (t % 2) ? UMAD_CLASS_PERF_MGMT : UMAD_CLASS_SUBN_LID_ROUTED;
			uint16_t lid = lids[(t + (unsigned)i) % 2];
			c->want_lid[t] = lid;
			c->want_class[t] = cls;
			ssize_t n = send_get(c, cls == UMAD_CLASS_PERF_MGMT ? c->gsi_agent : c->smp_agent,
					     cls, lid, t, 1000);
			if (n > 0)
				c->sent++;
		}
		if (t % 16 == 15)   /* keep the number in flight modest */
			for (int k = 0; k < 20 && (cl[0].received + cl[1].received) < 2 * (t - 8); k++) {
				pump(50);
				drain(&cl[0]);
				drain(&cl[1]);
			}
	}
	/* wait by the clock, not by iterations: a loaded host delays ibsim */
	for (double end = now_s() + 15; cl[0].received + cl[1].received < cl[0].sent + cl[1].sent &&
					now_s() < end;) {
		pump(50);
		drain(&cl[0]);
		drain(&cl[1]);
	}
	for (int i = 0; i < 2; i++)
		check(cl[i].sent == PER_FILE && cl[i].received == PER_FILE && cl[i].wrong == 0,
		      "client received exactly its own responses (colliding TIDs, SMP + PerfMgt, right LIDs)",
		      "client %d: sent %u received %u wrong %u", i, cl[i].sent, cl[i].received, cl[i].wrong);
	struct umx_router_stats st;
	umx_router_stats(router, &st);
	check(st.tids_in_use == 0, "transaction table empty after all responses", "%u in use", st.tids_in_use);

	if (dead) {
		/* a request nobody answers comes back to its sender with its TID */
		ssize_t n = send_get(&cl[1], cl[1].gsi_agent, UMAD_CLASS_PERF_MGMT, dead, 4242, 200);
		check(n > 0, "send to a dead LID accepted", "%zd", n);
		uint8_t buf[HDR + 256];
		ssize_t got = -EAGAIN;
		/* skip a late response that might still be queued: only the
		 * completion of our request counts */
		for (double end = now_s() + 10; now_s() < end;) {
			pump(50);
			got = umx_file_read(cl[1].f, buf, sizeof(buf));
			if (got > 0 && ((struct ib_user_mad_hdr *)buf)->status == 0)
				got = -EAGAIN;
			if (got != -EAGAIN)
				break;
		}
		struct ib_user_mad_hdr h;
		memcpy(&h, buf, sizeof(h));
		check(got == (ssize_t)(HDR + 24) || got == (ssize_t)(HDR + 256), "dead LID: completion returned", "read %zd", got);
		check(got > 0 && h.status == ETIMEDOUT && (uint32_t)umx_mad_tid(buf + HDR) == 4242 &&
		      h.id == cl[1].gsi_agent,
		      "dead LID: status ETIMEDOUT, the client's TID and agent id",
		      "status %u tid 0x%llx id %u", h.status, (unsigned long long)umx_mad_tid(buf + HDR), h.id);
		int other = 0;
		while (umx_file_read(cl[0].f, buf, sizeof(buf)) > 0)
			other += ((struct ib_user_mad_hdr *)buf)->status != 0;
		check(other == 0, "dead LID: the other client got no completion", "%d", other);
	}

	/* close a client with requests in flight: nothing may leak */
	for (uint32_t t = 0; t < 20; t++)
		send_get(&cl[0], cl[0].gsi_agent, UMAD_CLASS_PERF_MGMT, lids[0], 1000 + t, 1000);
	umx_router_stats(router, &st);
	check(st.tids_in_use == 20, "20 requests in flight before close", "%u", st.tids_in_use);
	umx_file_release(cl[0].f);
	umx_router_stats(router, &st);
	check(st.tids_in_use == 0 && st.files == 1 && st.vagents == 2,
	      "close mid-flight frees its transactions and agents", "tids %u files %u vagents %u",
	      st.tids_in_use, st.files, st.vagents);
	/* every late answer must be in before the router lets its agents go:
	 * umad2sim kills the process on a MAD of a class nobody registered */
	uint64_t late0 = umx_router_counter(router, UMX_C_RX_UNMATCHED_RESP), late = 0;
	for (double end = now_s() + 10; now_s() < end && late < 20;) {
		pump(50);
		late = umx_router_counter(router, UMX_C_RX_UNMATCHED_RESP) - late0;
	}
	check(late == 20, "all 20 late responses to the closed client are dropped and counted", "%llu",
	      (unsigned long long)late);
	umx_file_release(cl[1].f);
	umx_router_stats(router, &st);
	check(st.files == 0 && st.vagents == 0 && st.real_agents == st.idle_send_agents &&
	      st.idle_send_agents <= 2 && st.tids_in_use == 0 && st.queued_packets == 0,
	      "every table empty at the end (real agents: only the idle send-agent cache)",
	      "files %u vagents %u real %u (idle %u) tids %u queued %u", st.files, st.vagents,
	      st.real_agents, st.idle_send_agents, st.tids_in_use, st.queued_packets);
	umx_router_free(router);
	umx_umad_port_close(port);
	return fails ? 1 : 0;
}
