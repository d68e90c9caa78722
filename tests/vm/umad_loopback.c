/* umad_loopback - the kernel MAD layer (ib_umad) on a soft-RoCE port, as
 * libibumad clients see it.  Runs in the test-bed guest (tests/vm/cases/10-umad-rxe.sh).
 *
 *   umad_loopback [SRC_CA [DST_CA]]      (default rxe0 rxe0: loopback to the own GID)
 *
 * A client agent (PerfMgt class 0x04, no methods) is opened on SRC_CA port 1 and
 * a server agent (class 0x04, method mask {Get}) on DST_CA port 1, on separate
 * umad fds.  RoCE has LID 0 and no QP0, so every MAD is addressed by GID with a
 * GRH to QP1.  Prints one TAP line per check ("ok - umad SRC->DST: ...") and
 * details as "# " comments; exit status 0 when every check passed.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <infiniband/umad.h>
#include <infiniband/umad_types.h>

#define MAD_SIZE 256
#define ATTR_PORT_COUNTERS 0x0012
#define TID_USER_HI 0xdeadbeefu         /* the kernel must replace these upper TID bits */

static const char *src, *dst;
static int failures;

static void tap(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void tap(int ok, const char *fmt, ...)
{
	va_list ap;

	printf("%sok - umad %s->%s: ", ok ? "" : "not ", src, dst);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!ok)
		failures++;
}

static void diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int read_port_attr(const char *ca, const char *rel, char *buf, size_t n)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof p, "/sys/class/infiniband/%s/ports/1/%s", ca, rel);
	f = fopen(p, "r");
	if (!f)
		return -1;
	if (!fgets(buf, (int)n, f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

/* the port's first non-zero GID of type RoCE v2 (from its IPv6 link-local address) */
static int find_gid(const char *ca, uint8_t gid[16], int *idx)
{
	static const uint8_t zero[16];
	char rel[64], buf[128];
	struct in6_addr a;

	for (int i = 0; i < 16; i++) {
		snprintf(rel, sizeof rel, "gid_attrs/types/%d", i);
		if (read_port_attr(ca, rel, buf, sizeof buf) || strcmp(buf, "RoCE v2"))
			continue;
		snprintf(rel, sizeof rel, "gids/%d", i);
		if (read_port_attr(ca, rel, buf, sizeof buf) || inet_pton(AF_INET6, buf, &a) != 1 ||
		    !memcmp(&a, zero, 16))
			continue;
		memcpy(gid, &a, 16);
		*idx = i;
		return 0;
	}
	return -1;
}

static const char *gidstr(const uint8_t *g, char *s)
{
	return inet_ntop(AF_INET6, g, s, INET6_ADDRSTRLEN);
}

static struct umad_hdr *hdr(struct ib_user_mad *u)
{
	return umad_get_mad(u);
}

static uint64_t tid_of(struct ib_user_mad *u)
{
	return be64toh(hdr(u)->tid);
}

/* a PerfMgt request with a recognisable payload */
static void build_req(struct ib_user_mad *u, uint8_t method, uint64_t tid, uint8_t seed)
{
	struct umad_hdr *h = hdr(u);
	uint8_t *m = (uint8_t *)h;

	memset(m, 0, MAD_SIZE);
	h->base_version = UMAD_BASE_VERSION;
	h->mgmt_class = UMAD_CLASS_PERF_MGMT;
	h->class_version = 1;
	h->method = method;
	h->tid = htobe64(tid);
	h->attr_id = htobe16(ATTR_PORT_COUNTERS);
	for (int i = (int)sizeof *h; i < MAD_SIZE; i++)
		m[i] = (uint8_t)(i * 7 + seed);
}

static void set_dest(struct ib_user_mad *u, const uint8_t gid[16], int sgid_idx, uint32_t qpn)
{
	umad_set_addr(u, 0, (int)qpn, 0, UMAD_QKEY);   /* LID 0: RoCE routes by the GRH */
	u->addr.grh_present = 1;
	u->addr.gid_index = (uint8_t)sgid_idx;
	u->addr.hop_limit = 64;
	u->addr.traffic_class = 0;
	u->addr.flow_label = 0;
	memcpy(u->addr.gid, gid, 16);
	u->addr.pkey_index = 0;
}

/* offset of the first differing byte in [from, MAD_SIZE), or -1 */
static int mad_diff(struct ib_user_mad *a, struct ib_user_mad *b, int from)
{
	const uint8_t *x = umad_get_mad(a), *y = umad_get_mad(b);

	for (int i = from; i < MAD_SIZE; i++)
		if (x[i] != y[i]) {
			diag("MAD byte %d differs: 0x%02x, want 0x%02x", i, x[i], y[i]);
			return i;
		}
	return -1;
}

/* umad_recv with a timeout; returns the agent id or -1 */
static int recv_mad(int fd, struct ib_user_mad *r, int timeout_ms)
{
	int len = MAD_SIZE;

	return umad_recv(fd, r, &len, timeout_ms);
}

int main(int argc, char **argv)
{
	/* not umad_size() here: before umad_open_port() has switched the fd to the
	 * pkey_index ABI (IB_USER_MAD_ENABLE_PKEY) it returns the old 56-byte
	 * header size, while reads and writes then use sizeof(struct ib_user_mad),
	 * 64 bytes */
	size_t usz = sizeof(struct ib_user_mad) + MAD_SIZE;
	struct ib_user_mad *u = calloc(1, usz), *r = calloc(1, usz), *sent = calloc(1, usz);
	char gs[INET6_ADDRSTRLEN], gs2[INET6_ADDRSTRLEN];
	uint8_t sgid[16], dgid[16];
	int sidx, didx, id, rc, fdc, fds, server, client;
	long mask[16 / sizeof(long)] = { 0 };
	umad_port_t port;
	uint64_t tid, hi;
	double t0;

	src = argc > 1 ? argv[1] : "rxe0";
	dst = argc > 2 ? argv[2] : src;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!u || !r || !sent || umad_init() < 0) {
		tap(0, "umad_init");
		return 1;
	}

	/* --- the port as libibumad reports it --------------------------------- */
	rc = umad_get_port(src, 1, &port);
	tap(rc == 0 && port.state == 4 && port.base_lid == 0 && !strcmp(port.link_layer, "Ethernet"),
	    "port 1 is ACTIVE, link layer Ethernet, LID 0");
	if (rc == 0) {
		diag("%s port 1: state=%u phys_state=%u lid=%u link_layer=%s capmask=0x%08x", src,
		     port.state, port.phys_state, port.base_lid, port.link_layer, ntohl(port.capmask));
		umad_release_port(&port);
	}
	if (find_gid(src, sgid, &sidx) || find_gid(dst, dgid, &didx)) {
		tap(0, "both ports have a RoCE v2 GID");
		return 1;
	}
	diag("client %s gid[%d]=%s, server %s gid[%d]=%s", src, sidx, gidstr(sgid, gs), dst, didx,
	     gidstr(dgid, gs2));

	/* --- agents ------------------------------------------------------------- */
	fdc = umad_open_port(src, 1);
	fds = umad_open_port(dst, 1);
	mask[0] = 1L << UMAD_METHOD_GET;
	server = fds >= 0 ? umad_register(fds, UMAD_CLASS_PERF_MGMT, 1, 0, mask) : -1;
	client = fdc >= 0 ? umad_register(fdc, UMAD_CLASS_PERF_MGMT, 1, 0, NULL) : -1;
	tap(fdc >= 0 && fds >= 0 && server >= 0 && client >= 0,
	    "open both ports, register a server agent (class 0x04, method Get) and a client agent");
	diag("fds client=%d server=%d, agents client=%d server=%d", fdc, fds, client, server);
	if (fdc < 0 || fds < 0 || server < 0 || client < 0)
		return 1;

	/* --- 1. Get with GRH: client -> server --------------------------------- */
	build_req(u, UMAD_METHOD_GET, (uint64_t)TID_USER_HI << 32 | 0x1234, 3);
	set_dest(u, dgid, sidx, 1);
	memcpy(sent, u, usz);
	rc = umad_send(fdc, client, u, MAD_SIZE, 2000, 0);
	tap(rc == 0, "client sends Get(PortCounters) with a GRH to the server's GID, QP1");
	id = recv_mad(fds, r, 5000);
	tap(id == server && hdr(r)->method == UMAD_METHOD_GET && umad_status(r) == 0 &&
	    ntohl(r->addr.qpn) == 1 && r->addr.grh_present && !memcmp(r->addr.gid, sgid, 16),
	    "server receives the Get from QP1 with a GRH carrying the client's GID");
	diag("server recv: agent=%d method=0x%02x status=%d qpn=%u grh=%d sgid=%s", id,
	     hdr(r)->method, umad_status(r), ntohl(r->addr.qpn), r->addr.grh_present,
	     gidstr(r->addr.gid, gs));
	if (id != server)
		return 1;
	tid = tid_of(r);
	hi = tid >> 32;
	tap((tid & 0xffffffffu) == 0x1234 && hi != TID_USER_HI && hi != 0,
	    "the kernel put the agent's hi_tid into the upper 32 TID bits");
	diag("sent TID 0x%016llx, received 0x%016llx", (unsigned long long)tid_of(sent),
	     (unsigned long long)tid);
	hdr(r)->tid = hdr(sent)->tid;   /* everything but the TID must be as sent */
	tap(mad_diff(r, sent, 0) < 0, "request header and payload arrive intact");
	hdr(r)->tid = htobe64(tid);

	/* --- 2. GetResp: server -> client, matched by TID ----------------------- */
	memcpy(u, r, usz);
	hdr(u)->method = UMAD_METHOD_GET_RESP;
	memcpy((uint8_t *)umad_get_mad(u) + 64, "umad-loopback-resp", 18);
	set_dest(u, r->addr.gid, didx, ntohl(r->addr.qpn));
	memcpy(sent, u, usz);
	rc = umad_send(fds, server, u, MAD_SIZE, 0, 0);
	tap(rc == 0, "server sends GetResp to the requester's GID");
	id = recv_mad(fdc, r, 5000);
	tap(id == client && hdr(r)->method == UMAD_METHOD_GET_RESP && umad_status(r) == 0 &&
	    tid_of(r) == tid && r->addr.grh_present &&
	    mad_diff(r, sent, 0) < 0,
	    "client receives the GetResp (matched by TID), payload intact");
	diag("client recv: agent=%d method=0x%02x status=%d tid=0x%016llx payload='%.18s'", id,
	     hdr(r)->method, umad_status(r), (unsigned long long)tid_of(r),
	     (char *)umad_get_mad(r) + 64);
	id = recv_mad(fds, r, 100);
	tap(id < 0, "nothing else is queued for the server");

	/* --- 3. silent server: the client's send times out ---------------------- */
	build_req(u, UMAD_METHOD_GET, 0x5555, 5);
	set_dest(u, dgid, sidx, 1);
	t0 = now();
	rc = umad_send(fdc, client, u, MAD_SIZE, 300, 1);   /* 300 ms, 1 retry */
	int copies = 0, same_tid = 1;
	while (copies < 2 && recv_mad(fds, r, 3000) == server) {
		copies++;
		same_tid &= tid_of(r) == (hi << 32 | 0x5555);
	}
	tap(rc == 0 && copies == 2 && same_tid,
	    "silent server receives the request and its retry, same TID (same hi_tid)");
	id = recv_mad(fdc, r, 5000);
	tap(id == client && umad_status(r) == ETIMEDOUT && hdr(r)->method == UMAD_METHOD_GET &&
	    (tid_of(r) & 0xffffffffu) == 0x5555,
	    "client reads its Get back with status 110 (ETIMEDOUT)");
	diag("timeout: %d copies, completion agent=%d status=%d method=0x%02x tid=0x%016llx after %.2f s",
	     copies, id, umad_status(r), hdr(r)->method, (unsigned long long)tid_of(r), now() - t0);

	/* --- 4. no agent owns the method: the kernel answers itself ------------- */
	build_req(u, UMAD_METHOD_SET, 0x7777, 9);
	set_dest(u, dgid, sidx, 1);
	rc = umad_send(fdc, client, u, MAD_SIZE, 2000, 0);
	id = recv_mad(fdc, r, 5000);
	tap(rc == 0 && id == client && hdr(r)->method == UMAD_METHOD_GET_RESP &&
	    be16toh(hdr(r)->status) == 0x000c && (tid_of(r) & 0xffffffffu) == 0x7777,
	    "Set (server owns only Get): the kernel answers GetResp status 0x000c");
	diag("unsupported method: agent=%d method=0x%02x MAD status=0x%04x umad status=%d", id,
	     hdr(r)->method, be16toh(hdr(r)->status), umad_status(r));
	id = recv_mad(fds, r, 200);
	tap(id < 0, "the server agent does not see the Set");

	umad_unregister(fds, server);
	build_req(u, UMAD_METHOD_GET, 0x8888, 11);
	set_dest(u, dgid, sidx, 1);
	rc = umad_send(fdc, client, u, MAD_SIZE, 2000, 0);
	id = recv_mad(fdc, r, 5000);
	tap(rc == 0 && id == client && hdr(r)->method == UMAD_METHOD_GET_RESP &&
	    be16toh(hdr(r)->status) == 0x000c && (tid_of(r) & 0xffffffffu) == 0x8888,
	    "Get with the server unregistered: the kernel answers GetResp status 0x000c");
	diag("no server: agent=%d method=0x%02x MAD status=0x%04x", id, hdr(r)->method,
	     be16toh(hdr(r)->status));

	umad_unregister(fdc, client);
	umad_close_port(fdc);
	umad_close_port(fds);
	umad_done();
	free(u);
	free(r);
	free(sent);
	return failures != 0;
}
