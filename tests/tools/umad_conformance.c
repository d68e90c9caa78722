/*
 * umad_conformance.c - probes the umad ABI of a device node and prints one
 * line per probe ("name: result").  Run it once against the kernel's
 * /dev/infiniband/umadN and once against a umad-mux node on the same port:
 * the two outputs must be identical.  Nothing printed depends on values
 * that legitimately differ between the two (hi_tid values, agent ids of
 * the real port), only on the ABI: errno values, sizes, header fields,
 * blocking/non-blocking/poll behaviour, timeouts, the kernel's auto-reply.
 *
 *   umad_conformance DEVICE DGID [GID_INDEX]
 * DGID is the port's own GID (fe80::...): MADs loop back through the port.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <umx/abi.h>
#include <umx/mad.h>

#define HDR sizeof(struct ib_user_mad_hdr)
#define HDR_OLD sizeof(struct ib_user_mad_hdr_old)

static const char *dev;
static uint8_t dgid[16];
static int gid_index;

static void out(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(const char *name, const char *fmt, ...)
{
	va_list ap;
	printf("%s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static const char *err_name(int e)
{
	static char buf[32];
	switch (e) {
	case 0: return "0";
	case EINVAL: return "EINVAL";
	case EIO: return "EIO";
	case ENOMEM: return "ENOMEM";
	case ENOTTY: return "ENOTTY";
	case EAGAIN: return "EAGAIN";
	case EPERM: return "EPERM";
	case ENOSPC: return "ENOSPC";
	case EINTR: return "EINTR";
	case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EFAULT: return "EFAULT";
	default: snprintf(buf, sizeof(buf), "errno%d", e); return buf;
	}
}

static int rc_err(long rc) { return rc < 0 ? errno : 0; }

static int xopen(int flags)
{
	int fd = open(dev, O_RDWR | flags);
	if (fd < 0) {
		perror(dev);
		exit(2);
	}
	return fd;
}

static int reg2(int fd, uint32_t qpn, uint8_t cls, uint8_t ver, uint64_t mask0, uint32_t oui,
		uint8_t rmpp, uint32_t *flags, uint32_t *id)
{
	struct ib_user_mad_reg_req2 q;
	memset(&q, 0, sizeof(q));
	q.id = 0xdeadbeef;
	q.qpn = qpn;
	q.mgmt_class = cls;
	q.mgmt_class_version = ver;
	q.method_mask[0] = mask0;
	q.oui = oui;
	q.rmpp_version = rmpp;
	q.flags = flags ? *flags : 0;
	int e = rc_err(ioctl(fd, IB_USER_MAD_REGISTER_AGENT2, &q));
	if (flags)
		*flags = q.flags;
	if (id)
		*id = q.id;
	return e;
}

static int reg1(int fd, uint8_t qpn, uint8_t cls, uint8_t ver, uint64_t mask0, uint32_t *id)
{
	struct ib_user_mad_reg_req q;
	memset(&q, 0, sizeof(q));
	q.qpn = qpn;
	q.mgmt_class = cls;
	q.mgmt_class_version = ver;
	memcpy(&q.method_mask[0], &mask0, sizeof(mask0));
	int e = rc_err(ioctl(fd, IB_USER_MAD_REGISTER_AGENT, &q));
	if (id)
		*id = q.id;
	return e;
}

static int unreg(int fd, uint32_t id) { return rc_err(ioctl(fd, IB_USER_MAD_UNREGISTER_AGENT, &id)); }
static int pkey(int fd) { return rc_err(ioctl(fd, IB_USER_MAD_ENABLE_PKEY)); }

/* a GMP to our own port (RoCE: GRH, LID 0) */
static size_t build(uint8_t *buf, size_t hs, uint32_t agent, uint8_t cls, uint8_t method,
		    uint32_t tid, uint32_t timeout_ms, uint32_t retries)
{
	struct ib_user_mad_hdr h;
	memset(buf, 0, hs + 256);
	memset(&h, 0, sizeof(h));
	h.id = agent;
	h.timeout_ms = timeout_ms;
	h.retries = retries;
	h.qpn = htonl(1);
	h.qkey = htonl(UMAD_QKEY);
	h.grh_present = 1;
	h.gid_index = (uint8_t)gid_index;
	h.hop_limit = 64;
	memcpy(h.gid, dgid, 16);
	memcpy(buf, &h, hs);
	uint8_t *m = buf + hs;
	m[0] = 1;
	m[1] = cls;
	m[2] = 1;
	m[3] = method;
	umx_mad_set_tid(m, tid);
	m[16] = 0xff;
	m[17] = 0x10;             /* a vendor attribute */
	memcpy(m + 64, "conformance", 11);
	return hs + 256;
}

static ssize_t read_wait(int fd, uint8_t *buf, size_t len, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, ms) <= 0)
		return -2;
	ssize_t n = read(fd, buf, len);
	return n < 0 ? -errno : n;
}

/* ---- probes ----------------------------------------------------------- */

static void probe_ioctls(void)
{
	int fd = xopen(0);
	uint32_t id, flags;
	char buf[64];

	out("read.fresh.count55", "%s", err_name(rc_err(read(fd, buf, 55))));
	out("read.fresh.nonblock56", "%s", (fcntl(fd, F_SETFL, O_NONBLOCK), err_name(rc_err(read(fd, buf, 56)))));
	out("reg1.qpn2", "%s", err_name(reg1(fd, 2, 0x09, 1, 2, NULL)));
	int e;
	flags = 0x6;
	e = reg2(fd, 1, 0x09, 1, 2, 0, 0, &flags, NULL);
	out("reg2.badflags", "%s flags=0x%x", err_name(e), flags);
	out("reg2.version0x83", "%s", err_name(reg2(fd, 1, 0x09, 0x83, 2, 0, 0, NULL, NULL)));
	e = reg2(fd, 1, 0x09, 0x82, 2, 0, 0, NULL, &id);
	out("reg2.version0x82", "%s unreg=%s", err_name(e), err_name(e ? 0 : unreg(fd, id)));
	out("reg2.class0x50", "%s", err_name(reg2(fd, 1, 0x50, 1, 2, 0, 0, NULL, NULL)));
	out("reg2.vendor2.nooui", "%s", err_name(reg2(fd, 1, 0x32, 1, 2, 0, 0, NULL, NULL)));
	out("reg2.vendor2.oui32", "%s", err_name(reg2(fd, 1, 0x32, 1, 2, 0x01001405, 0, NULL, NULL)));
	out("reg2.rmpp2", "%s", err_name(reg2(fd, 1, 0x03, 2, 2, 0, 2, NULL, NULL)));
	out("reg2.rmpp.nonrmppclass", "%s", err_name(reg2(fd, 1, 0x04, 1, 2, 0, 1, NULL, NULL)));
	out("reg2.gmp.on.qp0", "%s", err_name(reg2(fd, 0, 0x04, 1, 2, 0, 0, NULL, NULL)));
	out("reg2.smp.on.qp1", "%s", err_name(reg2(fd, 1, 0x01, 1, 2, 0, 0, NULL, NULL)));
	flags = IB_USER_MAD_USER_RMPP;
	out("reg2.sendonly.userrmpp", "%s", err_name(reg2(fd, 1, 0, 0, 0, 0, 0, &flags, NULL)));
	e = reg2(fd, 0, 0x81, 1, 2, 0, 0, NULL, &id);
	out("reg2.qp0.class0x81", "%s unreg=%s", err_name(e), err_name(e ? 0 : unreg(fd, id)));
	out("ioctl.unknown", "%s", err_name(rc_err(ioctl(fd, _IOR(0x1b, 9, uint32_t), &id))));
	out("unreg.id32", "%s", err_name(unreg(fd, 32)));
	out("unreg.free", "%s", err_name(unreg(fd, 31)));
	/* nothing registered yet: ENABLE_PKEY works, twice */
	out("pkey.first", "%s", err_name(pkey(fd)));
	out("pkey.second", "%s", err_name(pkey(fd)));
	out("read.pkey.count63", "%s", err_name(rc_err(read(fd, buf, 63))));
	out("read.pkey.count64", "%s", err_name(rc_err(read(fd, buf, 64))));
	int ok = 0;
	uint32_t ids = 0;
	for (int i = 0; i < 32; i++) {
		e = reg2(fd, 1, 0, 0, 0, 0, 0, NULL, &id);
		if (!e && id == (uint32_t)i)
			ok++;
		ids = id;
	}
	out("reg2.32agents", "%d in order, last id %u", ok, ids);
	out("reg2.33rd", "%s", err_name(reg2(fd, 1, 0, 0, 0, 0, 0, NULL, &id)));
	out("reg2.33rd.badclass", "%s", err_name(reg2(fd, 1, 0x50, 1, 2, 0, 0, NULL, &id)));
	out("unreg.5", "%s", err_name(unreg(fd, 5)));
	e = reg2(fd, 1, 0, 0, 0, 0, 0, NULL, &id);
	out("reg2.reuses.slot", "%s id=%u", err_name(e), id);
	out("pkey.after.register", "%s", err_name(pkey(fd)));
	close(fd);

	/* old REGISTER_AGENT keeps the old header and forbids ENABLE_PKEY */
	fd = xopen(O_NONBLOCK);
	out("reg1.sendonly", "%s", err_name(reg1(fd, 1, 0, 0, 0, &id)));
	out("reg1.then.pkey", "%s", err_name(pkey(fd)));
	out("reg1.read.count56", "%s", err_name(rc_err(read(fd, buf, 56))));
	out("reg1.unreg.then.pkey", "%s %s", err_name(unreg(fd, id)), err_name(pkey(fd)));
	close(fd);

	/* REGISTER_AGENT2 first switches to the new header */
	fd = xopen(O_NONBLOCK);
	out("reg2.first.sendonly", "%s", err_name(reg2(fd, 1, 0, 0, 0, 0, 0, NULL, &id)));
	out("reg2.first.read.count63", "%s", err_name(rc_err(read(fd, buf, 63))));
	out("reg2.first.read.count64", "%s", err_name(rc_err(read(fd, buf, 64))));
	close(fd);

	/* method conflicts between two files on the port */
	int a = xopen(0), b = xopen(0);
	uint32_t ida;
	out("conflict.first", "%s", err_name(reg2(a, 1, 0x0c, 1, 1ull << 1 | 1ull << 2, 0, 0, NULL, &ida)));
	out("conflict.same.method", "%s", err_name(reg2(b, 1, 0x0c, 1, 1ull << 2, 0, 0, NULL, NULL)));
	out("conflict.other.method", "%s", err_name(reg2(b, 1, 0x0c, 1, 1ull << 3, 0, 0, NULL, NULL)));
	out("conflict.other.version", "%s", err_name(reg2(b, 1, 0x0c, 2, 1ull << 2, 0, 0, NULL, NULL)));
	out("conflict.after.unreg", "%s %s", err_name(unreg(a, ida)),
	    err_name(reg2(b, 1, 0x0c, 1, 1ull << 2, 0, 0, NULL, NULL)));
	close(a);
	close(b);
}

static void probe_writes(void)
{
	int fd = xopen(O_NONBLOCK);
	uint8_t buf[HDR + 512];
	uint32_t id;
	pkey(fd);
	build(buf, HDR, 0, 0x0a, UMAD_METHOD_GET, 1, 0, 0);
	out("write.unregistered", "%s", err_name(rc_err(write(fd, buf, HDR + 256))));
	build(buf, HDR, 32, 0x0a, UMAD_METHOD_GET, 1, 0, 0);
	out("write.id32", "%s", err_name(rc_err(write(fd, buf, HDR + 256))));
	reg2(fd, 1, 0, 0, 0, 0, 0, NULL, &id);
	build(buf, HDR, id, 0x0a, UMAD_METHOD_GET, 1, 0, 0);
	out("write.short35", "%s", err_name(rc_err(write(fd, buf, HDR + 35))));
	ssize_t n = write(fd, buf, HDR + 36);
	out("write.min36", "%zd %s", n, err_name(rc_err(n)));
	/* RoCE needs a GRH: without one the kernel cannot make an AH */
	struct ib_user_mad_hdr h;
	memcpy(&h, buf, sizeof(h));
	h.grh_present = 0;
	h.lid = htons(1);
	memcpy(buf, &h, sizeof(h));
	out("write.nogrh", "%s", err_name(rc_err(write(fd, buf, HDR + 256))));
	build(buf, HDR, id, 0x0a, UMAD_METHOD_GET, 1, 0, 0);
	n = write(fd, buf, HDR + 300);
	out("write.oversize.nonrmpp", "%s", err_name(rc_err(n)));
	close(fd);
}

static volatile sig_atomic_t got_sig;
static void on_sig(int s) { (void)s; got_sig = 1; }

struct blk { int fd; ssize_t n; int err; volatile int done; };
static void *blocking_reader(void *p)
{
	struct blk *b = p;
	uint8_t buf[HDR + 256];
	b->n = read(b->fd, buf, sizeof(buf));
	b->err = b->n < 0 ? errno : 0;
	b->done = 1;
	return NULL;
}

/* traffic through the port: server (owns class 0x0b Get), client */
static void probe_traffic(void)
{
	int srv = xopen(O_NONBLOCK), cli = xopen(O_NONBLOCK);
	uint8_t buf[HDR + 256], rbuf[HDR + 256];
	uint32_t sid, cid, oid;
	struct ib_user_mad_hdr h;

	pkey(srv);
	pkey(cli);
	out("traffic.server.reg", "%s", err_name(reg2(srv, 1, 0x0b, 1, 1ull << UMAD_METHOD_GET, 0, 0, NULL, &sid)));
	out("traffic.client.reg", "%s", err_name(reg2(cli, 1, 0, 0, 0, 0, 0, NULL, &cid)));
	struct pollfd p = { .fd = srv, .events = POLLIN | POLLOUT };
	poll(&p, 1, 0);
	out("poll.empty", "0x%x", p.revents);

	/* generous timeouts: under TCG on a loaded host a loopback takes a while */
	build(buf, HDR, cid, 0x0b, UMAD_METHOD_GET, 0x1234, 10000, 1);
	out("traffic.send.get", "%s", err_name(rc_err(write(cli, buf, HDR + 256))));
	out("traffic.send.duplicate.tid", "%s", err_name(rc_err(write(cli, buf, HDR + 256))));
	/* wait for POLLIN alone (POLLOUT is always ready and would end the
	 * wait at once), then report everything that is set */
	struct pollfd pin = { .fd = srv, .events = POLLIN };
	poll(&pin, 1, 10000);
	p.revents = 0;
	poll(&p, 1, 0);
	out("poll.with.packet", "0x%x", p.revents);
	out("traffic.server.read.short", "%s", err_name(rc_err(read(srv, rbuf, HDR + 255))));
	ssize_t n = read(srv, rbuf, sizeof(rbuf));
	memcpy(&h, rbuf, sizeof(h));
	uint64_t req_tid = umx_mad_tid(rbuf + HDR);
	/* the TID a peer sees is opaque: the kernel puts the sending agent's
	 * hi_tid on top, umad-mux also its own low 32 bits; only the sender's
	 * view of its TID is ABI (checked on the response below) */
	out("traffic.server.read", "%zd id_is_agent=%d status=%u length=%u qpn=%u grh=%d gid_is_ours=%d "
	    "tid_hi_set=%d method=0x%x payload=%d",
	    n, h.id == sid, h.status, h.length, ntohl(h.qpn), h.grh_present,
	    !memcmp(h.gid, dgid, 16), (req_tid >> 32) != 0, rbuf[HDR + 3],
	    !memcmp(rbuf + HDR + 64, "conformance", 11));
	/* answer: GetResp back to the sender */
	rbuf[HDR + 3] = UMAD_METHOD_GET_RESP;
	memcpy(&h, rbuf, sizeof(h));
	h.id = sid;
	h.timeout_ms = 0;
	h.retries = 0;
	memcpy(rbuf, &h, sizeof(h));
	out("traffic.server.respond", "%s", err_name(rc_err(write(srv, rbuf, HDR + 256))));
	n = read_wait(cli, buf, sizeof(buf), 10000);
	memcpy(&h, buf, sizeof(h));
	uint64_t resp_tid = umx_mad_tid(buf + HDR);
	out("traffic.client.response", "%zd id_is_agent=%d status=%u length=%u tid_lo=0x%x "
	    "tid_hi_set=%d method=0x%x",
	    n, h.id == cid, h.status, h.length, (uint32_t)resp_tid, (resp_tid >> 32) != 0, buf[HDR + 3]);
	out("traffic.client.empty.after", "%s", err_name(rc_err(read(cli, buf, sizeof(buf)))));

	/* nobody owns class 0x0d: the kernel's MAD layer answers the Get */
	build(buf, HDR, cid, 0x0d, UMAD_METHOD_GET, 0x77, 10000, 0);
	write(cli, buf, HDR + 256);
	n = read_wait(cli, buf, sizeof(buf), 10000);
	memcpy(&h, buf, sizeof(h));
	out("autoreply.unsupported", "%zd status=%u method=0x%x mad_status=0x%04x tid_lo=0x%x", n, h.status,
	    buf[HDR + 3], (unsigned)(buf[HDR + 4] << 8 | buf[HDR + 5]), (uint32_t)umx_mad_tid(buf + HDR));

	/* a silent owner: the request times out and comes back */
	build(buf, HDR, cid, 0x0b, UMAD_METHOD_GET, 0x99, 200, 1);
	write(cli, buf, HDR + 256);
	n = read_wait(srv, rbuf, sizeof(rbuf), 3000);      /* the server sees it (twice: retry) */
	n = read_wait(cli, buf, sizeof(buf), 5000);
	while (n == -2 || (n > 0 && ((struct ib_user_mad_hdr *)buf)->status == 0))
		n = read_wait(cli, buf, sizeof(buf), 5000);
	memcpy(&h, buf, sizeof(h));
	out("timeout.completion", "%zd id_is_agent=%d status=%s length=%u tid_lo=0x%x timeout_ms=%u retries=%u",
	    n, h.id == cid, err_name((int)h.status), h.length, (uint32_t)umx_mad_tid(buf + HDR),
	    h.timeout_ms, h.retries);
	while (read(srv, rbuf, sizeof(rbuf)) > 0)
		;

	/* old header on receive: a file without ENABLE_PKEY */
	int old = xopen(O_NONBLOCK);
	out("old.reg", "%s", err_name(reg1(old, 1, 0x0e, 1, 1ull << UMAD_METHOD_GET, &oid)));
	build(buf, HDR, cid, 0x0e, UMAD_METHOD_GET, 0x55, 0, 0);
	write(cli, buf, HDR + 256);
	n = read_wait(old, rbuf, sizeof(rbuf), 10000);
	struct ib_user_mad_hdr_old ho;
	memcpy(&ho, rbuf, sizeof(ho));
	/* (the receiver's view of the TID is not ABI: see traffic.server.read) */
	out("old.read", "%zd length=%u method=0x%x", n, ho.length, rbuf[HDR_OLD + 3]);

	/* blocking read completes when a packet arrives; a signal interrupts it */
	fcntl(old, F_SETFL, 0);
	struct blk b = { .fd = old };
	pthread_t t;
	pthread_create(&t, NULL, blocking_reader, &b);
	usleep(200000);
	build(buf, HDR, cid, 0x0e, UMAD_METHOD_GET, 0x56, 0, 0);
	write(cli, buf, HDR + 256);
	pthread_join(t, NULL);
	out("blocking.read", "%zd %s", b.n, err_name(b.err));
	struct sigaction sa = { .sa_handler = on_sig };
	sigaction(SIGUSR1, &sa, NULL);
	b.n = 0;
	b.done = 0;
	pthread_create(&t, NULL, blocking_reader, &b);
	/* a signal that lands before the thread is inside read() is lost, so
	 * keep signalling until the read returns */
	for (int i = 0; i < 100 && !b.done; i++) {
		usleep(100000);
		if (!b.done)
			pthread_kill(t, SIGUSR1);
	}
	pthread_join(t, NULL);
	out("blocking.read.signal", "%zd %s", b.n, err_name(b.err));
	close(old);
	close(srv);
	close(cli);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s DEVICE DGID [GID_INDEX]\n", argv[0]);
		return 2;
	}
	dev = argv[1];
	if (inet_pton(AF_INET6, argv[2], dgid) != 1) {
		fprintf(stderr, "bad GID %s\n", argv[2]);
		return 2;
	}
	gid_index = argc > 3 ? atoi(argv[3]) : 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	probe_ioctls();
	probe_writes();
	probe_traffic();
	return 0;
}
