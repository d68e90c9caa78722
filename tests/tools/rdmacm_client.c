/*
 * rdmacm_client.c - a test client of umad-mux's rdmacm-mux protocol (QEMU
 * pvrdma), byte for byte: messages are put together and taken apart with
 * this file's own offsets (W_*), not with the daemon's rdmacm_proto.h, so
 * a layout mistake on either side shows.
 *
 *   rdmacm_client layout
 *       TAP lines: the offsets W_* = a declaration with QEMU's member types
 *       (enum, union ibv_gid, int, libibumad's struct ib_user_mad,
 *       RDMA_MAX_PRIVATE_DATA) = cuse/rdmacm_proto.h's
 *   rdmacm_client proto PATH GID [DLID]
 *       TAP lines: REG/UNREG/duplicate/unknown op/malformed checks against a
 *       socket or an rdmacm-mode node at PATH; GID must be in the port's table;
 *       the CM MAD it sends goes to GID (GRH), or to DLID when given
 *   rdmacm_client cm PATH rdmacm|pvrdma|pvrdma-pipe|umad GID GIDX PEER_GID LOCAL_ID TID
 *       one client of the CM test: as the active side REQ -> REP -> RTU,
 *       DREQ -> DREP with comm id LOCAL_ID and TID; then as the passive side
 *       accepts one REQ (REP with LOCAL_ID+1), RTU, DREQ -> DREP.  rdmacm:
 *       PATH is a socket or node, GID is registered, each MAD is addressed
 *       to the peer and its answer read; pvrdma: the same, but every MAD is
 *       addressed as QEMU's mad_send() does it (grh, the client's OWN GID,
 *       hop limit 255, gid index GIDX as the guest's); pvrdma-pipe: that,
 *       and no request is answered (QEMU on a `-chardev pipe` node with
 *       `answers none`): a RESP that shows up is a failure.  umad: PATH is
 *       a node in umad mode, sends use GIDX.  Prints "key value" lines, then
 *       "done" and keeps its files open until SIGTERM (so the daemon's CM
 *       ids stay owned); exit 0 when every step passed.
 *   rdmacm_client hold PATH
 *       keeps a CM agent registered on a umad node until SIGTERM
 */
#include <signal.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <rdma/rdma_user_cm.h>

#include "cm_common.h"             /* umx/abi.h: libibumad's struct ib_user_mad + the kernel's ABI */
#include "../../cuse/rdmacm_proto.h"

/* ---- the wire, by hand ------------------------------------------------- */
#define W_SIZE 360
#define W_TYPE 0
#define W_OP 4
#define W_SGID 8
#define W_ERR 24
#define W_LEN 32
#define W_UHDR 36
#define W_MAD 100
enum { T_REQ = 0, T_RESP = 1 };
enum { OP_REG = 0, OP_UNREG = 1, OP_MAD = 2 };
enum { E_OK = 0, E_EINVAL = 1, E_EEXIST = 2, E_EACCES = 3, E_ENOTFOUND = 4 };

static void w32(uint8_t *b, int off, uint32_t v) { memcpy(b + off, &v, 4); }
static uint32_t r32(const uint8_t *b, int off) { uint32_t v; memcpy(&v, b + off, 4); return v; }

static int fails;
static void ok(bool c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void ok(bool c, const char *fmt, ...)
{
	va_list ap;
	printf("%sok - ", c ? "" : "not ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!c)
		fails++;
}

/* ---- layout ------------------------------------------------------------- */

/* QEMU's declaration, member types as in contrib/rdmacm-mux/rdmacm-mux.h */
typedef enum { Q_ENUM_DUMMY } q_enum;
union q_ibv_gid { uint8_t raw[16]; struct { uint64_t subnet_prefix, interface_id; } global; };
struct q_hdr { q_enum msg_type; q_enum op_code; union q_ibv_gid sgid; q_enum err_code; };
struct q_umad { struct ib_user_mad hdr; char mad[RDMA_MAX_PRIVATE_DATA]; };
struct q_msg { struct q_hdr hdr; int umad_len; struct q_umad umad; };

static int layout(void)
{
#define CHK(name, a, b) ok((size_t)(a) == (size_t)(b), "layout: %s = %zu (want %zu)", name, (size_t)(a), (size_t)(b))
	CHK("sizeof(message), QEMU types", sizeof(struct q_msg), W_SIZE);
	CHK("sizeof(message), rdmacm_proto.h", sizeof(struct rdmacm_wire), W_SIZE);
	CHK("RDMACM_MSG_SIZE", RDMACM_MSG_SIZE, W_SIZE);
	CHK("msg_type offset", offsetof(struct q_msg, hdr.msg_type), W_TYPE);
	CHK("op_code offset", offsetof(struct q_msg, hdr.op_code), W_OP);
	CHK("op_code offset, rdmacm_proto.h", offsetof(struct rdmacm_wire, hdr.op_code), W_OP);
	CHK("sgid offset", offsetof(struct q_msg, hdr.sgid), W_SGID);
	CHK("sgid offset, rdmacm_proto.h", offsetof(struct rdmacm_wire, hdr.sgid), W_SGID);
	CHK("sgid.interface_id offset", offsetof(struct q_msg, hdr.sgid.global.interface_id), W_SGID + 8);
	CHK("err_code offset", offsetof(struct q_msg, hdr.err_code), W_ERR);
	CHK("err_code offset, rdmacm_proto.h", offsetof(struct rdmacm_wire, hdr.err_code), W_ERR);
	CHK("sizeof(header) (union ibv_gid is 8-aligned: 4 bytes padding)", sizeof(struct q_hdr), 32);
	CHK("umad_len offset", offsetof(struct q_msg, umad_len), W_LEN);
	CHK("umad_len offset, rdmacm_proto.h", offsetof(struct rdmacm_wire, umad_len), W_LEN);
	CHK("umad.hdr offset", offsetof(struct q_msg, umad.hdr), W_UHDR);
	CHK("umad.hdr offset, rdmacm_proto.h", offsetof(struct rdmacm_wire, umad_hdr), W_UHDR);
	CHK("sizeof(struct ib_user_mad)", sizeof(struct ib_user_mad), 64);
	CHK("sizeof(struct ib_user_mad) = sizeof(struct ib_user_mad_hdr)", sizeof(struct ib_user_mad),
	    sizeof(struct ib_user_mad_hdr));
	CHK("umad.hdr.agent_id offset", offsetof(struct q_msg, umad.hdr.agent_id), W_UHDR + 0);
	CHK("umad.hdr.status offset", offsetof(struct q_msg, umad.hdr.status), W_UHDR + 4);
	CHK("umad.hdr.timeout_ms offset", offsetof(struct q_msg, umad.hdr.timeout_ms), W_UHDR + 8);
	CHK("umad.hdr.retries offset", offsetof(struct q_msg, umad.hdr.retries), W_UHDR + 12);
	CHK("umad.hdr.length offset", offsetof(struct q_msg, umad.hdr.length), W_UHDR + 16);
	CHK("umad.hdr.addr.qpn offset", offsetof(struct q_msg, umad.hdr.addr.qpn), W_UHDR + 20);
	CHK("umad.hdr.addr.grh_present offset", offsetof(struct q_msg, umad.hdr.addr.grh_present), W_UHDR + 32);
	CHK("umad.hdr.addr.gid_index offset", offsetof(struct q_msg, umad.hdr.addr.gid_index), W_UHDR + 33);
	CHK("umad.hdr.addr.hop_limit offset", offsetof(struct q_msg, umad.hdr.addr.hop_limit), W_UHDR + 34);
	CHK("umad.hdr.addr.gid offset", offsetof(struct q_msg, umad.hdr.addr.gid), W_UHDR + 36);
	CHK("umad.hdr.addr.gid = ib_user_mad_hdr.gid", offsetof(struct ib_user_mad, addr.gid),
	    offsetof(struct ib_user_mad_hdr, gid));
	CHK("umad.hdr.addr.pkey_index offset", offsetof(struct q_msg, umad.hdr.addr.pkey_index), W_UHDR + 56);
	CHK("umad.hdr.addr.pkey_index = ib_user_mad_hdr.pkey_index", offsetof(struct ib_user_mad, addr.pkey_index),
	    offsetof(struct ib_user_mad_hdr, pkey_index));
	CHK("umad.mad offset", offsetof(struct q_msg, umad.mad), W_MAD);
	CHK("umad.mad offset, rdmacm_proto.h", offsetof(struct rdmacm_wire, mad), W_MAD);
	CHK("umad.mad size (RDMA_MAX_PRIVATE_DATA)", sizeof(((struct q_msg *)0)->umad.mad), 256);
	CHK("op codes REG UNREG MAD", RDMACM_OP_REG * 100 + RDMACM_OP_UNREG * 10 + RDMACM_OP_MAD, 12);
	CHK("error codes OK EINVAL EEXIST EACCES ENOTFOUND",
	    RDMACM_ERR_OK * 10000 + RDMACM_ERR_EINVAL * 1000 + RDMACM_ERR_EEXIST * 100 + RDMACM_ERR_EACCES * 10 +
		    RDMACM_ERR_ENOTFOUND, 1234);
	/* the daemon's encoder puts every field where this file expects it */
	struct rdmacm_wire w;
	uint8_t b[RDMACM_MSG_SIZE];
	memset(&w, 0xa5, sizeof(w));
	w.hdr.msg_type = 1;
	w.hdr.op_code = 2;
	w.hdr.err_code = 3;
	w.umad_len = 77;
	for (int i = 0; i < 16; i++)
		w.hdr.sgid.raw[i] = (uint8_t)(0x10 + i);
	w.umad_hdr.id = 0x11223344;
	w.umad_hdr.gid[0] = 0xfe;
	w.mad[0] = 0x01;
	w.mad[255] = 0xee;
	rdmacm_encode(&w, b);
	bool enc = r32(b, W_TYPE) == 1 && r32(b, W_OP) == 2 && r32(b, W_ERR) == 3 && r32(b, W_LEN) == 77 &&
		   b[W_SGID] == 0x10 && b[W_SGID + 15] == 0x1f && r32(b, W_UHDR) == 0x11223344 &&
		   b[W_UHDR + 36] == 0xfe && b[W_MAD] == 0x01 && b[W_MAD + 255] == 0xee &&
		   r32(b, 28) == 0 && r32(b, 356) == 0;
	ok(enc, "layout: rdmacm_encode() puts each field at the wire offset, padding zero");
	rdmacm_msg d;
	ok(rdmacm_decode(b, sizeof(b), &d) == 0 && d.umad_len == 77 && d.hdr.sgid.raw[15] == 0x1f &&
		   rdmacm_decode(b, sizeof(b) - 1, &d) == -EINVAL,
	   "layout: rdmacm_decode() takes exactly 360 bytes back");
	return fails ? 1 : 0;
}

/* ---- transport ------------------------------------------------------------ */

struct conn {
	int fd;
	bool sock;
	uint8_t stash[16][W_SIZE];    /* MAD messages read while waiting for a RESP */
	int nstash;
};

static int conn_open(struct conn *c, const char *path)
{
	struct stat st;
	memset(c, 0, sizeof(*c));
	if (stat(path, &st) != 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	c->sock = S_ISSOCK(st.st_mode);
	if (c->sock) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
		c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			fprintf(stderr, "connect %s: %s\n", path, strerror(errno));
			return -1;
		}
	} else {
		c->fd = open(path, O_RDWR);
		if (c->fd < 0) {
			fprintf(stderr, "%s: %s\n", path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int wmsg(struct conn *c, const uint8_t *b)
{
	size_t off = 0;
	while (off < W_SIZE) {
		ssize_t n = write(c->fd, b + off, W_SIZE - off);
		if (n <= 0)
			return -1;
		off += (size_t)n;
		if (!c->sock && off != W_SIZE)
			return -1;      /* a node takes a message per write */
	}
	return 0;
}

/* one whole message within ms: 1, 0 timeout, -1 EOF/error */
static int rmsg(struct conn *c, uint8_t *b, int ms)
{
	size_t off = 0;
	while (off < W_SIZE) {
		struct pollfd p = { c->fd, POLLIN, 0 };
		if (poll(&p, 1, ms) != 1)
			return off ? -1 : 0;
		ssize_t n = read(c->fd, b + off, c->sock ? W_SIZE - off : W_SIZE);
		if (n <= 0)
			return -1;
		if (!c->sock && n != W_SIZE)
			return -1;      /* a node returns whole messages */
		off += (size_t)n;
	}
	return 1;
}

static void build(uint8_t *b, uint32_t type, uint32_t op, const uint8_t *sgid)
{
	memset(b, 0, W_SIZE);
	w32(b, W_TYPE, type);
	w32(b, W_OP, op);
	if (sgid)
		memcpy(b + W_SGID, sgid, 16);
}

/* writes a request, returns its answer's err_code (or -1000 on failure);
 * MAD messages that come first are stashed */
static int64_t request(struct conn *c, const uint8_t *req, uint8_t *resp)
{
	uint8_t b[W_SIZE];
	if (wmsg(c, req) != 0)
		return -1000;
	for (;;) {
		if (rmsg(c, b, 3000) != 1)
			return -1001;
		if (r32(b, W_TYPE) == T_RESP)
			break;
		if (c->nstash < 16)
			memcpy(c->stash[c->nstash++], b, W_SIZE);
	}
	if (resp)
		memcpy(resp, b, W_SIZE);
	/* the answer is the request with type RESP and err_code */
	if (r32(b, W_OP) != r32(req, W_OP) || memcmp(b + W_SGID, req + W_SGID, 16))
		return -1002;
	return (int32_t)r32(b, W_ERR);
}

static int64_t reg(struct conn *c, uint32_t op, const uint8_t *gid)
{
	uint8_t b[W_SIZE];
	build(b, T_REQ, op, gid);
	return request(c, b, NULL);
}

/* ---- proto checks --------------------------------------------------------- */

static int proto(const char *path, const char *gids, uint16_t dlid)
{
	struct conn a, b;
	uint8_t gid[16], other[16], zero[16] = { 0 }, m[W_SIZE + 1], resp[W_SIZE], big[4096];
	int64_t e;

	if (parse_gid(gids, gid) || parse_gid("2001:db8::dead:beef", other))
		return 2;
	if (conn_open(&a, path) || conn_open(&b, path))
		return 1;
	const char *what = a.sock ? "socket" : "node";

	e = reg(&a, OP_REG, gid);
	ok(e == E_OK, "%s: REG %s -> OK (got %lld)", what, gids, (long long)e);
	e = reg(&a, OP_REG, gid);
	ok(e == E_EEXIST, "%s: REG of the same GID again, same client -> EEXIST (2) (got %lld)", what, (long long)e);
	e = reg(&b, OP_REG, gid);
	ok(e == E_EACCES, "%s: REG of that GID by another client -> EACCES (3) (got %lld)", what, (long long)e);
	e = reg(&b, OP_UNREG, gid);
	ok(e == E_EACCES, "%s: UNREG of another client's GID -> EACCES (3) (got %lld)", what, (long long)e);
	e = reg(&b, OP_UNREG, other);
	ok(e == E_ENOTFOUND, "%s: UNREG of a GID nobody registered -> ENOTFOUND (4) (got %lld)", what, (long long)e);
	e = reg(&b, OP_REG, other);
	ok(e == E_EINVAL, "%s: REG of a GID not in the port's GID table -> EINVAL (1) (got %lld)", what, (long long)e);
	e = reg(&b, OP_REG, zero);
	ok(e == E_EINVAL, "%s: REG of the zero GID -> EINVAL (1) (got %lld)", what, (long long)e);

	build(m, T_REQ, 7, gid);
	e = request(&a, m, resp);
	ok(e == E_EINVAL && r32(resp, W_TYPE) == T_RESP && r32(resp, W_OP) == 7,
	   "%s: unknown op code 7 -> RESP, op 7, EINVAL (1) (got %lld)", what, (long long)e);

	/* MADs: a CM DREQ-shaped MAD to our own GID (nobody is connected) */
	build(m, T_REQ, OP_MAD, gid);
	w32(m, W_LEN, 9999);
	cm_build(m + W_MAD, A_DREQ, 0x42, 0x43, 0x1000, NULL, NULL);
	e = request(&a, m, NULL);
	ok(e == E_EINVAL, "%s: MAD with umad_len 9999 -> EINVAL (1) (got %lld)", what, (long long)e);
	w32(m, W_LEN, 10);
	e = request(&a, m, NULL);
	ok(e == E_EINVAL, "%s: MAD with umad_len 10 (< MAD header) -> EINVAL (1) (got %lld)", what, (long long)e);
	w32(m, W_LEN, 256);
	m[W_MAD + 1] = 0x04;        /* PerfMgt: not CM */
	e = request(&a, m, NULL);
	ok(e == E_EINVAL, "%s: MAD of class 0x04 (not CM) -> EINVAL (1) (got %lld)", what, (long long)e);
	m[W_MAD + 1] = CM_CLASS;
	memcpy(m + W_SGID, other, 16);
	e = request(&a, m, NULL);
	ok(e == E_ENOTFOUND, "%s: MAD from a GID this client did not register -> ENOTFOUND (4) (got %lld)", what,
	   (long long)e);
	memcpy(m + W_SGID, gid, 16);
	struct ib_user_mad_hdr *h = (struct ib_user_mad_hdr *)(m + W_UHDR);
	h->qpn = htonl(1);
	if (dlid) {
		/* by LID: on the simulated fabric a MAD looped back to a port
		 * whose CM agent is gone crashes umad2sim */
		h->lid = htons(dlid);
	} else {
		h->grh_present = 1;
		h->gid_index = 77;  /* the guest's index: the daemon uses the host's */
		h->hop_limit = 64;
		memcpy(h->gid, gid, 16);
	}
	e = request(&a, m, NULL);
	ok(e == E_OK, "%s: CM MAD from the registered GID -> sent, OK (got %lld)", what, (long long)e);

	if (!a.sock) {
		/* node semantics: message-sized reads and writes, poll */
		struct pollfd p = { a.fd, POLLIN | POLLOUT, 0 };
		int pr = poll(&p, 1, 0);
		ok(pr == 1 && (p.revents & POLLOUT) && !(p.revents & POLLIN),
		   "node: poll: POLLOUT, no POLLIN when nothing waits (revents 0x%x)", p.revents);
		ssize_t n = write(a.fd, m, 100);
		ok(n < 0 && errno == EINVAL, "node: write of 100 bytes (not a message) -> EINVAL (%zd, %s)", n,
		   n < 0 ? strerror(errno) : "-");
		n = write(a.fd, m, W_SIZE + 1);
		ok(n < 0 && errno == EINVAL, "node: write of 361 bytes -> EINVAL (%zd, %s)", n,
		   n < 0 ? strerror(errno) : "-");
		build(m, 5, OP_REG, gid);
		n = write(a.fd, m, W_SIZE);
		ok(n < 0 && errno == EINVAL, "node: msg_type 5 (not a request) -> write fails with EINVAL (%zd, %s)",
		   n, n < 0 ? strerror(errno) : "-");
		build(m, T_REQ, OP_UNREG, other);
		n = write(a.fd, m, W_SIZE);
		p.revents = 0;
		pr = poll(&p, 1, 1000);
		ok(n == W_SIZE && pr == 1 && (p.revents & POLLIN), "node: after a request, poll reports POLLIN");
		n = read(a.fd, resp, 100);
		ok(n < 0 && errno == EINVAL, "node: read with a 100-byte buffer -> EINVAL (%zd)", n);
		n = read(a.fd, big, sizeof(big));
		ok(n == W_SIZE && r32(big, W_ERR) == E_ENOTFOUND, "node: read with a large buffer -> one message of 360 bytes (%zd)", n);
		int fl = fcntl(a.fd, F_GETFL);
		fcntl(a.fd, F_SETFL, fl | O_NONBLOCK);
		n = read(a.fd, resp, W_SIZE);
		ok(n < 0 && errno == EAGAIN, "node: O_NONBLOCK read with nothing queued -> EAGAIN");
		fcntl(a.fd, F_SETFL, fl);
	} else {
		/* a message that is not a request: rdmacm-mux closed the connection */
		build(m, 5, OP_REG, other);
		wmsg(&b, m);
		int r = rmsg(&b, resp, 3000);
		ok(r == -1, "socket: msg_type 5 (not a request) -> connection closed, as rdmacm-mux (read %d)", r);
		close(b.fd);
		/* half a message, then close: dropped quietly */
		conn_open(&b, path);
		build(m, T_REQ, OP_REG, gid);
		ok(write(b.fd, m, 100) == 100, "socket: 100 bytes of a message, then close");
		close(b.fd);
		/* the stream is framed: a message in two writes is one message */
		conn_open(&b, path);
		build(m, T_REQ, OP_UNREG, other);
		bool w = write(b.fd, m, 7) == 7;
		usleep(50000);
		w = w && write(b.fd, m + 7, W_SIZE - 7) == W_SIZE - 7;
		e = w && rmsg(&b, resp, 3000) == 1 ? (int32_t)r32(resp, W_ERR) : -1;
		ok(e == E_ENOTFOUND, "socket: a message split over two writes is answered once (ENOTFOUND) (%lld)",
		   (long long)e);
	}
	/* the daemon survived all that: a fresh client works */
	close(b.fd);
	conn_open(&b, path);
	e = reg(&a, OP_UNREG, gid);
	ok(e == E_OK, "%s: UNREG %s -> OK (got %lld)", what, gids, (long long)e);
	e = reg(&a, OP_UNREG, gid);
	ok(e == E_ENOTFOUND, "%s: UNREG again -> ENOTFOUND (4) (got %lld)", what, (long long)e);
	e = reg(&b, OP_REG, gid);
	ok(e == E_OK, "%s: after that, a new client registers the GID -> OK (got %lld)", what, (long long)e);
	close(a.fd);
	/* closing a client unregisters its GIDs */
	close(b.fd);
	conn_open(&a, path);
	usleep(100000);
	e = reg(&a, OP_REG, gid);
	ok(e == E_OK, "%s: a client's close unregistered its GID: REG -> OK (got %lld)", what, (long long)e);
	close(a.fd);
	return fails ? 1 : 0;
}

/* ---- the CM test client ------------------------------------------------- */

static volatile sig_atomic_t term;
static void on_term(int s) { (void)s; term = 1; }

struct cl {
	bool umad, pvrdma, pipe;
	struct conn c;
	int fd;
	uint32_t agent;
	uint8_t gid[16];
	int gidx;
};

static int cl_send(struct cl *k, const uint8_t *dgid, const uint8_t *mad)
{
	if (k->umad)
		return cm_umad_send(k->fd, k->agent, dgid, k->gidx, mad);
	uint8_t b[W_SIZE];
	build(b, T_REQ, OP_MAD, k->gid);
	w32(b, W_LEN, MAD_SZ);
	struct ib_user_mad_hdr h;
	if (k->pvrdma) {
		/* QEMU hw/rdma/rdma_backend.c mad_send(): the guest's address is lost */
		memset(&h, 0, sizeof(h));
		h.qpn = htonl(1);
		h.grh_present = 1;
		h.gid_index = (uint8_t)k->gidx;
		memcpy(h.gid, k->gid, 16);
		h.hop_limit = 0xff;
	} else {
		cm_send_hdr(&h, 0, dgid, 99);   /* agent and gid index: the daemon's business */
	}
	memcpy(b + W_UHDR, &h, sizeof(h));
	memcpy(b + W_MAD, mad, MAD_SZ);
	if (k->pipe)
		return wmsg(&k->c, b);
	int64_t e = request(&k->c, b, NULL);
	if (e)
		fprintf(stderr, "MAD send answered %lld\n", (long long)e);
	return e ? -1 : 0;
}

/* next CM message within ms: 1, 0 timeout, -1 error */
static int cl_recv(struct cl *k, struct cm_msg *m, int ms)
{
	if (k->umad)
		return cm_umad_recv(k->fd, m, ms);
	uint8_t b[W_SIZE];
	if (k->c.nstash) {
		memcpy(b, k->c.stash[0], W_SIZE);
		memmove(k->c.stash[0], k->c.stash[1], (size_t)(--k->c.nstash) * W_SIZE);
	} else {
		int r = rmsg(&k->c, b, ms);
		if (r != 1)
			return r;
	}
	if (r32(b, W_TYPE) != T_REQ || r32(b, W_OP) != OP_MAD || memcmp(b + W_SGID, k->gid, 16) ||
	    (int32_t)r32(b, W_LEN) < 24) {
		fprintf(stderr, "not an incoming MAD: type %u op %u err %u\n", r32(b, W_TYPE), r32(b, W_OP),
			r32(b, W_ERR));
		return -1;
	}
	cm_parse(b + W_UHDR, b + W_MAD, m);
	return 1;
}

/* waits for attr; counts others as foreign */
static int expect(struct cl *k, uint16_t attr, struct cm_msg *m, unsigned *foreign)
{
	long end = ms_now() + 5000;
	while (ms_now() < end) {
		int r = cl_recv(k, m, (int)(end - ms_now()));
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		if (m->attr == attr)
			return 0;
		(*foreign)++;
		fprintf(stderr, "unexpected %s local 0x%x remote 0x%x\n", cm_attr_name(m->attr), m->local, m->remote);
	}
	fprintf(stderr, "no %s within 5 s\n", cm_attr_name(attr));
	return -1;
}

static int cm_client(int argc, char **argv)
{
	if (argc < 9)
		return 2;
	struct cl k;
	uint8_t peer[16], mad[MAD_SZ];
	struct cm_msg m;
	unsigned foreign = 0;
	char s[INET6_ADDRSTRLEN];
	memset(&k, 0, sizeof(k));
	const char *path = argv[2];
	k.umad = !strcmp(argv[3], "umad");
	k.pvrdma = !strncmp(argv[3], "pvrdma", 6);
	k.pipe = !strcmp(argv[3], "pvrdma-pipe");
	if (parse_gid(argv[4], k.gid) || parse_gid(argv[6], peer))
		return 2;
	k.gidx = atoi(argv[5]);
	uint32_t lid = (uint32_t)strtoul(argv[7], NULL, 0);
	uint64_t tid = strtoull(argv[8], NULL, 0);
	signal(SIGTERM, on_term);
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (k.umad) {
		k.fd = cm_umad_open(path, &k.agent);
		if (k.fd < 0)
			return 1;
	} else {
		if (conn_open(&k.c, path))
			return 1;
		if (k.pipe) {
			/* as QEMU on a pipe: the REG is written, its answer never read */
			uint8_t b[W_SIZE];
			build(b, T_REQ, OP_REG, k.gid);
			if (wmsg(&k.c, b))
				return 1;
			printf("reg written\n");
		} else {
			int64_t e = reg(&k.c, OP_REG, k.gid);
			printf("reg %lld\n", (long long)e);
			if (e)
				return 1;
		}
	}
	/* active: REQ -> REP, RTU, DREQ -> DREP */
	cm_build(mad, A_REQ, lid, 0, tid, k.gid, peer);
	if (cl_send(&k, peer, mad) || expect(&k, A_REP, &m, &foreign))
		return 1;
	uint32_t peer_id = m.local;
	printf("rep tid 0x%016llx local 0x%x remote 0x%x from %s\n", (unsigned long long)m.tid, m.local, m.remote,
	       gstr(m.src_gid, s));
	bool good = m.remote == lid;
	cm_build(mad, A_RTU, lid, peer_id, tid, NULL, NULL);
	if (cl_send(&k, peer, mad))
		return 1;
	cm_build(mad, A_DREQ, lid, peer_id, tid + 1, NULL, NULL);
	if (cl_send(&k, peer, mad) || expect(&k, A_DREP, &m, &foreign))
		return 1;
	printf("drep tid 0x%016llx local 0x%x remote 0x%x\n", (unsigned long long)m.tid, m.local, m.remote);
	good = good && m.remote == lid && m.local == peer_id;

	/* passive: a REQ from the peer, to our GID */
	if (expect(&k, A_REQ, &m, &foreign))
		return 1;
	printf("req tid 0x%016llx local 0x%x target %s arrived_on_gid_index %d\n", (unsigned long long)m.tid,
	       m.local, gstr(m.req_remote_gid, s), m.gid_index);
	good = good && !memcmp(m.req_remote_gid, k.gid, 16);
	uint32_t preq = m.local;
	cm_build(mad, A_REP, lid + 1, preq, m.tid, NULL, NULL);
	if (cl_send(&k, m.src_gid, mad) || expect(&k, A_RTU, &m, &foreign))
		return 1;
	printf("rtu local 0x%x remote 0x%x\n", m.local, m.remote);
	good = good && m.remote == lid + 1 && m.local == preq;
	if (expect(&k, A_DREQ, &m, &foreign))
		return 1;
	printf("dreq local 0x%x remote 0x%x\n", m.local, m.remote);
	good = good && m.remote == lid + 1;
	cm_build(mad, A_DREP, lid + 1, preq, m.tid, NULL, NULL);
	if (cl_send(&k, m.src_gid, mad))
		return 1;
	/* anything else that shows up is foreign */
	while (cl_recv(&k, &m, 300) == 1) {
		foreign++;
		fprintf(stderr, "unexpected %s local 0x%x remote 0x%x\n", cm_attr_name(m.attr), m.local, m.remote);
	}
	printf("foreign %u\nresult %s\ndone\n", foreign, good && !foreign ? "ok" : "FAILED");
	/* hold the files (and the daemon's CM ids) until told to go */
	while (!term)
		pause();
	return good && !foreign ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "layout"))
		return layout();
	if (argc >= 4 && !strcmp(argv[1], "proto"))
		return proto(argv[2], argv[3], argc > 4 ? (uint16_t)strtoul(argv[4], NULL, 0) : 0);
	if (argc >= 2 && !strcmp(argv[1], "cm"))
		return cm_client(argc, argv);
	if (argc >= 3 && !strcmp(argv[1], "hold")) {
		uint32_t agent;
		int fd = cm_umad_open(argv[2], &agent);
		if (fd < 0)
			return 1;
		signal(SIGTERM, on_term);
		printf("holding a CM agent (%u) on %s\n", agent, argv[2]);
		fflush(stdout);
		while (!term)
			pause();
		return 0;
	}
	fprintf(stderr, "usage: rdmacm_client layout | proto PATH GID [DLID] |\n"
			"       cm PATH rdmacm|umad GID GIDX PEER_GID LOCAL_ID TID | hold PATH\n");
	return 2;
}
