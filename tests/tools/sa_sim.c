/*
 * sa_sim.c - SA aggregation (core/sa.c) on a real umad port: the simulated
 * fabric under umad2sim with OpenSM as the SA.  core/ is driven in-process
 * (like router_sim.c); 16 virtual files on this port are the clients.
 *
 *   sa_sim CHECK          (prints TAP lines; CHECK is run with system() as
 *                          "CHECK <phase>" at each checkpoint, and prints its
 *                          own TAP lines: joined, left15, left16, trap)
 *
 *  1. 16 clients join one MGID (a create join): exactly one Set reaches the
 *     SA; every client gets a GetResp with its own TID, agent id, status 0,
 *     the MGID/PortGID, an MLID and JoinState FullMember.      -> "joined"
 *  2. 15 leave: each gets a DeleteResp from the router, nothing reaches
 *     the SA.                                                   -> "left15"
 *  3. the last leaves: one Delete reaches the SA.               -> "left16"
 *  4. 8 clients subscribe to trap 144 (PortInfo CapabilityMask changed),
 *     4 to trap 64: one InformInfo Set per spec reaches the SA.  Then this
 *     process becomes the node's IsSM (umad2sim delivers unsolicited MADs
 *     only to it: agents for 0x01/0x81 first, then the issm device).  That
 *     sets IsSM in our CapabilityMask: ibsim sends trap 144 to OpenSM, whose
 *     Report must reach each of the 8 exactly once and none of the 4,
 *     acknowledged by one ReportResp (OpenSM retransmits an unacknowledged
 *     Report; none may arrive within 3 s).                     -> "trap"
 *     (A port taken down with ibsim's Unlink gives no trap 65 here: see
 *     tests/sim/cases/70-sa-aggregation.sh.)
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/umad_sa.h>
#include <infiniband/umad_sa_mcm.h>

#include <umx/core.h>
#include <umx/mad.h>
#include <umx/port.h>

#define HDR sizeof(struct ib_user_mad_hdr)
#define NCLI 16
#define SA_DATA 56
#define REC(f) (SA_DATA + offsetof(struct umad_sa_mcmember_record, f))
#define FULL UMAD_SA_MCM_JOIN_STATE_FULL_MEMBER

static int fails;
static void check(int ok, const char *what, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void check(int ok, const char *what, const char *fmt, ...)
{
	char msg[256] = "";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("%s - sa_sim: %s%s%s\n", ok ? "ok" : "not ok", what, msg[0] ? " # " : "", msg);
	if (!ok)
		fails++;
}

static struct umx_umad_port *port;
static struct umx_router *router;
static int epfd = -1;
static uint16_t sa_lid, my_lid;
static uint8_t port_gid[16];
static const uint8_t MGID[16] = { 0xff, 0x12, 0x60, 0x1b, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x42, 0x42 };

struct client {
	struct umx_file *f;
	uint32_t agent;
};
static struct client cl[NCLI];

static void on_term(int sig) { (void)sig; exit(3); }

static uint16_t g16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void p16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void p32(uint8_t *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); }
static void p64(uint8_t *p, uint64_t v) { v = htobe64(v); memcpy(p, &v, 8); }

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

static uint64_t ctr(enum umx_counter c) { return umx_router_counter(router, c); }

static ssize_t sa_write(struct client *c, uint8_t method, uint16_t attr, uint32_t tid, uint8_t *mad)
{
	uint8_t buf[HDR + 256];
	struct ib_user_mad_hdr h;
	memset(&h, 0, sizeof(h));
	h.id = c->agent;
	h.timeout_ms = 1000;
	h.retries = 3;
	h.lid = htobe16(sa_lid);
	h.qpn = htobe32(1);
	h.qkey = htobe32(UMAD_QKEY);
	memcpy(buf, &h, sizeof(h));
	mad[0] = 1;
	mad[1] = UMAD_CLASS_SUBN_ADM;
	mad[2] = UMAD_SA_CLASS_VERSION;
	mad[3] = method;
	umx_mad_set_tid(mad, tid);
	p16(mad + 16, attr);
	memcpy(buf + HDR, mad, 256);
	return umx_file_write(c->f, buf, sizeof(buf));
}

static ssize_t mcm(struct client *c, uint8_t method, uint32_t tid)
{
	uint8_t m[256];
	memset(m, 0, sizeof(m));
	/* a create join: the fields opensm needs to create the group */
	p64(m + 48, UMAD_SA_MCM_COMP_MASK_MGID | UMAD_SA_MCM_COMP_MASK_PORT_GID |
			    UMAD_SA_MCM_COMP_MASK_QKEY | UMAD_SA_MCM_COMP_MASK_TCLASS |
			    UMAD_SA_MCM_COMP_MASK_PKEY | UMAD_SA_MCM_COMP_MASK_SL |
			    UMAD_SA_MCM_COMP_MASK_FLOW_LABEL | UMAD_SA_MCM_COMP_MASK_JOIN_STATE);
	memcpy(m + REC(mgid), MGID, 16);
	memcpy(m + REC(portgid), port_gid, 16);
	p32(m + REC(qkey), 0x00000b1b);
	p16(m + REC(pkey), 0xffff);
	m[REC(scope_state)] = 0x20 | FULL;
	return sa_write(c, method, UMAD_SA_ATTR_MCMEMBER_REC, tid, m);
}

static ssize_t inform(struct client *c, uint32_t tid, uint16_t trap, bool subscribe)
{
	uint8_t m[256];
	memset(m, 0, sizeof(m));
	uint8_t *ii = m + SA_DATA;
	p16(ii + 16, 0xffff);           /* LIDRangeBegin 0xFFFF: all */
	ii[22] = 1;                     /* IsGeneric */
	ii[23] = subscribe;
	p16(ii + 24, 0xffff);           /* Type: all */
	p16(ii + 26, trap);
	p32(ii + 28, 1u << 8);          /* QPN 1 */
	ii[33] = 0xff;
	p16(ii + 34, 0xffff);           /* ProducerType: all */
	return sa_write(c, UMAD_METHOD_SET, 0x0003, tid, m);
}

/* wait until every client in [lo, hi) has one packet; returns how many have */
static unsigned wait_all(unsigned lo, unsigned hi, int ms)
{
	unsigned n = 0;
	for (int t = 0; t < ms; t += 20) {
		n = 0;
		for (unsigned i = lo; i < hi; i++)
			n += umx_file_readable(cl[i].f);
		if (n == hi - lo)
			break;
		pump(20);
	}
	return n;
}

static ssize_t rd(struct client *c, struct ib_user_mad_hdr *h, uint8_t *m)
{
	uint8_t buf[HDR + 256];
	memset(h, 0, sizeof(*h));
	memset(m, 0, 256);
	ssize_t n = umx_file_read(c->f, buf, sizeof(buf));
	if (n > 0) {
		memcpy(h, buf, HDR);
		memcpy(m, buf + HDR, (size_t)n - HDR);
	}
	return n;
}

/* every client of [lo, hi) got a correct answer to its tid base+i */
static void check_answers(unsigned lo, unsigned hi, uint8_t method, uint32_t base, bool mlid, const char *what)
{
	unsigned good = 0;
	char bad[200] = "";
	for (unsigned i = lo; i < hi; i++) {
		struct ib_user_mad_hdr h;
		uint8_t m[256];
		ssize_t n = rd(&cl[i], &h, m);
		bool ok = n == (ssize_t)(HDR + 256) && h.status == 0 && h.id == cl[i].agent &&
			  m[3] == method && g16(m + 4) == 0 && (uint32_t)umx_mad_tid(m) == base + i &&
			  g16(m + 16) == UMAD_SA_ATTR_MCMEMBER_REC && !memcmp(m + REC(mgid), MGID, 16) &&
			  !memcmp(m + REC(portgid), port_gid, 16) && (m[REC(scope_state)] & 0xf) == FULL &&
			  (!mlid || g16(m + REC(mlid)) >= 0xc000) && be16toh(h.lid) == sa_lid;
		if (ok && umx_file_readable(cl[i].f))
			ok = false;      /* exactly one */
		if (ok)
			good++;
		else if (!bad[0])
			snprintf(bad, sizeof(bad), "client %u: read %zd status %u method 0x%x mad status 0x%x tid 0x%x mlid 0x%x js %u",
				 i, n, h.status, m[3], g16(m + 4), (uint32_t)umx_mad_tid(m), g16(m + REC(mlid)),
				 m[REC(scope_state)] & 0xf);
	}
	check(good == hi - lo, what, "%u of %u correct%s%s", good, hi - lo, bad[0] ? "; " : "", bad);
}

static void checkpoint(const char *cmd, const char *phase)
{
	char line[4096];
	fflush(stdout);
	snprintf(line, sizeof(line), "%s %s", cmd, phase);
	int rc = system(line);
	if (rc)
		fails++;
}

int main(int argc, char **argv)
{
	char err[256];
	if (argc < 2) {
		fprintf(stderr, "usage: %s CHECK-COMMAND\n", argv[0]);
		return 2;
	}
	const char *cmd = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);

	port = umx_umad_port_open(NULL, 0, err, sizeof(err));
	check(port != NULL, "open the real umad port", "%s", port ? "" : err);
	if (!port)
		return 1;
	umad_port_t up;
	if (umad_get_port(umx_umad_port_ca(port), umx_umad_port_num(port), &up)) {
		check(0, "umad_get_port", "%s", "");
		return 1;
	}
	sa_lid = (uint16_t)up.sm_lid;
	my_lid = (uint16_t)up.base_lid;
	memcpy(port_gid, &up.gid_prefix, 8);
	memcpy(port_gid + 8, &up.port_guid, 8);
	umad_release_port(&up);

	router = umx_router_new(umx_umad_port_base(port), NULL, NULL, NULL);
	struct umx_node *n0 = umx_node_new(router, 0, NULL), *n1 = umx_node_new(router, 1, NULL);
	long r = 0;
	for (unsigned i = 0; i < NCLI && !r; i++) {
		bool co;
		cl[i].f = umx_file_open(i % 2 ? n1 : n0, NULL);
		r = umx_file_ioctl(cl[i].f, IB_USER_MAD_ENABLE_PKEY, NULL, &co);
		struct ib_user_mad_reg_req2 q = { .qpn = 1, .mgmt_class = UMAD_CLASS_SUBN_ADM,
						  .mgmt_class_version = 2, .rmpp_version = 1 };
		r = r ? r : umx_file_ioctl(cl[i].f, IB_USER_MAD_REGISTER_AGENT2, &q, &co);
		cl[i].agent = q.id;
	}
	check(r == 0, "16 virtual files register SA agents", "%ld", r);

	/* 1. all 16 join at once */
	unsigned wrote = 0;
	for (unsigned i = 0; i < NCLI; i++)
		wrote += mcm(&cl[i], UMAD_METHOD_SET, 0x100 + i) == (ssize_t)(HDR + 256);
	check(wrote == NCLI, "16 joins written", "%u", wrote);
	check(wait_all(0, NCLI, 5000) == NCLI, "16 join answers within 5 s", "%s", "");
	check_answers(0, NCLI, UMAD_METHOD_GET_RESP, 0x100, true,
		      "every join: GetResp, own TID and agent, status 0, MGID/PortGID, MLID, JoinState Full");
	check(ctr(UMX_C_SA_TX_SENT) == 1 && ctr(UMX_C_SA_JOINS_ABSORBED) == NCLI - 1,
	      "one Set reached the SA, 15 joins absorbed", "sent %llu absorbed %llu queued %llu",
	      (unsigned long long)ctr(UMX_C_SA_TX_SENT), (unsigned long long)ctr(UMX_C_SA_JOINS_ABSORBED),
	      (unsigned long long)ctr(UMX_C_SA_QUEUED));
	checkpoint(cmd, "joined");

	/* 2. 15 leave */
	for (unsigned i = 0; i < NCLI - 1; i++)
		mcm(&cl[i], UMAD_SA_METHOD_DELETE, 0x200 + i);
	wait_all(0, NCLI - 1, 2000);
	check_answers(0, NCLI - 1, UMAD_SA_METHOD_DELETE_RESP, 0x200, true, "15 leaves: DeleteResp from the router");
	check(ctr(UMX_C_SA_TX_SENT) == 1, "15 leaves: nothing reached the SA", "sent %llu",
	      (unsigned long long)ctr(UMX_C_SA_TX_SENT));
	checkpoint(cmd, "left15");

	/* 3. the last one */
	mcm(&cl[NCLI - 1], UMAD_SA_METHOD_DELETE, 0x300);
	wait_all(NCLI - 1, NCLI, 3000);
	/* (opensm's DeleteResp for a deleted group carries MLID 0) */
	check_answers(NCLI - 1, NCLI, UMAD_SA_METHOD_DELETE_RESP, 0x300 - (NCLI - 1), false,
		      "last leave: the SA's DeleteResp");
	check(ctr(UMX_C_SA_TX_SENT) == 2, "last leave: one Delete reached the SA", "sent %llu",
	      (unsigned long long)ctr(UMX_C_SA_TX_SENT));
	struct umx_router_stats st;
	umx_router_stats(router, &st);
	check(st.sa_groups == 0, "no group left in the router", "%u", st.sa_groups);
	checkpoint(cmd, "left16");

	/* 4. subscriptions: 8 to trap 144, 4 to trap 64 */
	for (unsigned i = 0; i < 12; i++)
		inform(&cl[i], 0x400 + i, i < 8 ? 144 : 64, true);
	check(wait_all(0, 12, 5000) == 12, "12 subscriptions answered", "%s", "");
	unsigned good = 0;
	for (unsigned i = 0; i < 12; i++) {
		struct ib_user_mad_hdr h;
		uint8_t m[256];
		ssize_t n = rd(&cl[i], &h, m);
		good += n > 0 && h.status == 0 && m[3] == UMAD_METHOD_GET_RESP && g16(m + 4) == 0 &&
			(uint32_t)umx_mad_tid(m) == 0x400 + i && m[SA_DATA + 23] == 1;
	}
	check(good == 12, "every subscription: GetResp status 0, own TID", "%u of 12", good);
	check(ctr(UMX_C_SA_TX_SENT) == 4, "two InformInfo Sets reached the SA (one per spec)", "sent %llu",
	      (unsigned long long)ctr(UMX_C_SA_TX_SENT) - 2);

	/* become the node's IsSM (umad2sim: the only receiver of unsolicited
	 * MADs): SMP classes get an agent first (an SMInfo Get to an agent-less
	 * class kills umad2sim's receiver), then the issm device */
	struct umx_port *bp = umx_umad_port_base(port);
	struct ib_user_mad_reg_req2 q1 = { .qpn = 0, .mgmt_class = 0x01, .mgmt_class_version = 1 };
	struct ib_user_mad_reg_req2 q81 = { .qpn = 0, .mgmt_class = 0x81, .mgmt_class_version = 1 };
	int r1 = bp->ops->reg(bp, &q1), r81 = bp->ops->reg(bp, &q81);
	char path[256];
	int issm = -1;
	if (umad_get_issm_path(umx_umad_port_ca(port), umx_umad_port_num(port), path, sizeof(path)) == 0)
		issm = open(path, O_RDWR);
	check(r1 == 0 && r81 == 0 && issm >= 0, "IsSM on this node (agents for 0x01/0x81, then the issm device)",
	      "reg %d %d issm %d", r1, r81, issm);
	/* becoming IsSM changes our PortInfo:CapabilityMask: ibsim sends trap
	 * 144 to OpenSM, which Reports it to the subscribers; then OpenSM's
	 * retry window (it resends a Report nobody acknowledged) */
	uint64_t reports0 = 0;
	for (int t = 0; t < 3000; t += 20)
		pump(20);
	unsigned got144 = 0, got64 = 0, wrong = 0;
	for (unsigned i = 0; i < 12; i++) {
		struct ib_user_mad_hdr h;
		uint8_t m[256];
		unsigned k = 0;
		while (rd(&cl[i], &h, m) > 0) {
			if (m[3] != UMAD_METHOD_REPORT || g16(m + 16) != 0x0002 || h.id != cl[i].agent)
				wrong++;
			else if (g16(m + SA_DATA + 4) == 144 && g16(m + SA_DATA + 6) == my_lid)
				k++;   /* trap 144 from our own port */
			else
				wrong++;
		}
		if (i < 8)
			got144 += k == 1;
		else
			got64 += k;
	}
	printf("# reports acked %llu, fanned out %llu, unsubscribed %llu\n",
	       (unsigned long long)(ctr(UMX_C_SA_REPORTS) - reports0),
	       (unsigned long long)ctr(UMX_C_SA_REPORTS_FANNED),
	       (unsigned long long)ctr(UMX_C_RX_SA_UNSUBSCRIBED));
	check(got144 == 8 && got64 == 0 && wrong == 0,
	      "trap 144 (our CapabilityMask changed): each of the 8 subscribers got the Report exactly once, trap-64 ones none",
	      "%u of 8 once, %u to trap-64 subscribers, %u wrong", got144, got64, wrong);
	check(ctr(UMX_C_SA_REPORTS) - reports0 == 1,
	      "one Report from OpenSM, acknowledged once (no retransmission in 3 s)", "%llu Reports",
	      (unsigned long long)(ctr(UMX_C_SA_REPORTS) - reports0));
	checkpoint(cmd, "trap");

	/* the clients acknowledge too: absorbed */
	uint64_t tx0 = ctr(UMX_C_TX_PACKETS);
	for (unsigned i = 0; i < 8; i++) {
		uint8_t m[256];
		memset(m, 0, sizeof(m));
		sa_write(&cl[i], UMAD_METHOD_REPORT_RESP, 0x0002, 0x500 + i, m);
	}
	check(ctr(UMX_C_SA_REPORT_RESP_ABSORBED) == 8 && ctr(UMX_C_TX_PACKETS) == tx0,
	      "clients' ReportResps absorbed", "%llu", (unsigned long long)ctr(UMX_C_SA_REPORT_RESP_ABSORBED));

	/* closing: the router unsubscribes both specs */
	for (unsigned i = 0; i < NCLI; i++)
		umx_file_release(cl[i].f);
	for (int t = 0; t < 2000; t += 20) {
		umx_router_stats(router, &st);
		if (!st.sa_subscriptions)
			break;
		pump(20);
	}
	check(st.sa_subscriptions == 0 && ctr(UMX_C_SA_TX_SENT) == 6,
	      "clients gone: the router unsubscribed both specs", "subs %u sent %llu", st.sa_subscriptions,
	      (unsigned long long)ctr(UMX_C_SA_TX_SENT));
	if (issm >= 0)
		close(issm);
	umx_router_free(router);
	umx_umad_port_close(port);
	return fails ? 1 : 0;
}
