/*
 * mux_abi.c - umad ABI probes on a umad file (a umad-mux node, or the
 * kernel's /dev/infiniband/umadN): prints one TAP line per check.
 *
 *   mux_abi PATH [DLID]
 *
 * Without traffic: ioctl validation and errnos (REGISTER_AGENT(2),
 * UNREGISTER, ENABLE_PKEY ordering, unknown ioctl, AGENT2 flags written
 * back), the 32-agent limit, the header-size switch (write length checks
 * 56 vs 64 byte headers), O_NONBLOCK/fcntl EAGAIN, short read EINVAL, poll
 * and epoll on an empty queue, a blocking read interrupted by a signal
 * (EINTR), and a write on the same fd while a read blocks (no f_pos_lock
 * deadlock).  With DLID (an IB LID): PerfMgt Get(PortCounters) round trips
 * through a blocking read and through poll(), checking the TID.
 * Exit status: 0 when every check passed.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <umx/abi.h>

static int fails;
static void check(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int cond, const char *fmt, ...)
{
	va_list ap;
	printf("%s - ", cond ? "ok" : "not ok");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond)
		fails++;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int reg1(int fd, uint8_t qpn, uint8_t cls, uint8_t ver, uint32_t mask0, uint32_t *id)
{
	struct ib_user_mad_reg_req r;
	memset(&r, 0, sizeof(r));
	r.id = 0xdeadbeef;
	r.qpn = qpn;
	r.mgmt_class = cls;
	r.mgmt_class_version = ver;
	memcpy(&r.method_mask[0], &mask0, sizeof(mask0));
	int rc = ioctl(fd, IB_USER_MAD_REGISTER_AGENT, &r);
	if (id)
		*id = r.id;
	return rc;
}

struct rd { int fd; ssize_t n; int err; double t; uint8_t buf[4096]; };
static void *reader(void *p)
{
	struct rd *a = p;
	a->n = read(a->fd, a->buf, sizeof(a->buf));
	a->err = errno;
	a->t = now();
	return NULL;
}
static void on_usr1(int s) { (void)s; }

static void get_portcounters(uint8_t *mad, uint64_t tid)
{
	memset(mad, 0, 256);
	mad[0] = 1;          /* base version */
	mad[1] = 0x04;       /* PerfMgt */
	mad[2] = 1;
	mad[3] = 0x01;       /* Get */
	uint64_t be = htobe64(tid);
	memcpy(mad + 8, &be, 8);
	mad[16] = 0x00;
	mad[17] = 0x12;      /* PortCounters */
	mad[64 + 1] = 1;     /* PortSelect 1 */
}

int main(int argc, char **argv)
{
	const char *path;
	uint8_t buf[4096];
	uint32_t id;
	int fd, rc;
	ssize_t n;

	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH [DLID]\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	path = argv[1];
	struct sigaction sa = { .sa_handler = on_usr1 };   /* no SA_RESTART */
	sigaction(SIGUSR1, &sa, NULL);

	/* ---- fd A: old header format (no ENABLE_PKEY) ---- */
	fd = open(path, O_RDWR);
	check(fd >= 0, "open(%s, O_RDWR)", path);
	if (fd < 0)
		return 1;
	rc = ioctl(fd, _IOR(0x1b, 9, uint64_t), buf);
	check(rc == -1 && errno == ENOTTY, "unknown ioctl: ENOTTY (rc %d errno %d)", rc, errno);
	id = 7;
	rc = ioctl(fd, IB_USER_MAD_UNREGISTER_AGENT, &id);
	check(rc == -1 && errno == EINVAL, "UNREGISTER_AGENT of a free id: EINVAL (errno %d)", errno);
	rc = reg1(fd, 2, 0x0a, 1, 0, &id);
	check(rc == -1 && errno == EINVAL, "REGISTER_AGENT qpn 2: EINVAL (rc %d errno %d)", rc, errno);
	rc = reg1(fd, 1, 0x0a, 1, 0, &id);
	check(rc == 0 && id == 0, "REGISTER_AGENT send-only class 0x0a: id 0 written back (rc %d id %u)", rc, id);
	rc = ioctl(fd, IB_USER_MAD_ENABLE_PKEY);
	check(rc == -1 && errno == EINVAL, "ENABLE_PKEY after a registration: EINVAL (rc %d errno %d)", rc, errno);
	/* old header: 56 bytes; write needs hdr + 36 (RMPP header) */
	memset(buf, 0, sizeof(buf));
	((struct ib_user_mad_hdr_old *)buf)->id = 5;   /* not registered */
	n = write(fd, buf, 56 + 36 - 1);
	check(n == -1 && errno == EINVAL, "old header: write of 56+35 bytes: EINVAL (errno %d)", errno);
	n = write(fd, buf, 56 + 36);
	check(n == -1 && errno == EIO, "old header: write of 56+36 bytes for a free agent id: EIO (errno %d)", errno);
	((struct ib_user_mad_hdr_old *)buf)->id = 32;
	n = write(fd, buf, 56 + 36);
	check(n == -1 && errno == EINVAL, "write with agent id 32: EINVAL (errno %d)", errno);
	n = read(fd, buf, 55);
	check(n == -1 && errno == EINVAL, "old header: read(55) < header: EINVAL (errno %d)", errno);
	/* 32 agents at most; the first free slot is reused */
	unsigned got = 1;
	for (int i = 1; i < 32; i++)
		if (reg1(fd, 1, 0x0a, 1, 0, &id) == 0 && id == (uint32_t)i)
			got++;
	rc = reg1(fd, 1, 0x0a, 1, 0, &id);
	check(got == 32 && rc == -1 && errno == ENOMEM, "32 agents (ids 0..31), the 33rd: ENOMEM (got %u, errno %d)",
	      got, errno);
	id = 17;
	rc = ioctl(fd, IB_USER_MAD_UNREGISTER_AGENT, &id);
	int rc2 = reg1(fd, 1, 0x0a, 1, 0, &id);
	check(rc == 0 && rc2 == 0 && id == 17, "UNREGISTER 17, next REGISTER reuses id 17 (got %u)", id);
	close(fd);

	/* ---- fd B: ENABLE_PKEY, REGISTER_AGENT2 ---- */
	fd = open(path, O_RDWR);
	rc = ioctl(fd, IB_USER_MAD_ENABLE_PKEY);
	check(rc == 0, "ENABLE_PKEY on a fresh file (rc %d)", rc);
	rc = ioctl(fd, IB_USER_MAD_ENABLE_PKEY);
	check(rc == 0, "ENABLE_PKEY twice (rc %d)", rc);
	struct ib_user_mad_reg_req2 r2;
	memset(&r2, 0, sizeof(r2));
	r2.qpn = 1;
	r2.mgmt_class = 0x0a;
	r2.mgmt_class_version = 1;
	r2.flags = 0x80000000u;
	r2.id = 0xdeadbeef;
	rc = ioctl(fd, IB_USER_MAD_REGISTER_AGENT2, &r2);
	check(rc == -1 && errno == EINVAL && r2.flags == IB_USER_MAD_REG_FLAGS_CAP,
	      "REGISTER_AGENT2 unknown flags: EINVAL and flags := supported (0x%x) written back (errno %d flags 0x%x)",
	      IB_USER_MAD_REG_FLAGS_CAP, errno, r2.flags);
	r2.flags = 0;
	r2.id = 0xdeadbeef;
	rc = ioctl(fd, IB_USER_MAD_REGISTER_AGENT2, &r2);
	check(rc == 0 && r2.id == 0, "REGISTER_AGENT2 send-only class 0x0a: id 0 (rc %d id %u)", rc, r2.id);
	memset(buf, 0, sizeof(buf));
	((struct ib_user_mad_hdr *)buf)->id = 5;
	n = write(fd, buf, 56 + 36);
	check(n == -1 && errno == EINVAL, "new header: write of 56+36 bytes: EINVAL (errno %d)", errno);
	n = write(fd, buf, 64 + 36);
	check(n == -1 && errno == EIO, "new header: write of 64+36 bytes for a free agent id: EIO (errno %d)", errno);
	n = read(fd, buf, 63);
	check(n == -1 && errno == EINVAL, "new header: read(63) < header: EINVAL (errno %d)", errno);

	/* ---- empty queue: non-blocking, poll, epoll ---- */
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	n = read(fd, buf, sizeof(buf));
	check(n == -1 && errno == EAGAIN, "fcntl(O_NONBLOCK) then read on empty: EAGAIN (errno %d)", errno);
	fcntl(fd, F_SETFL, fl);
	int fdnb = open(path, O_RDWR | O_NONBLOCK);
	n = read(fdnb, buf, sizeof(buf));
	check(n == -1 && errno == EAGAIN, "open(O_NONBLOCK) then read on empty: EAGAIN (errno %d)", errno);
	close(fdnb);
	struct pollfd pfd = { fd, POLLIN | POLLOUT, 0 };
	rc = poll(&pfd, 1, 0);
	check(rc == 1 && (pfd.revents & (POLLIN | POLLOUT)) == POLLOUT, "poll on empty: POLLOUT only (revents 0x%x)",
	      pfd.revents);
	pfd.events = POLLIN;
	double t0 = now();
	rc = poll(&pfd, 1, 200);
	check(rc == 0, "poll(POLLIN, 200 ms) on empty times out (rc %d after %.0f ms)", rc, (now() - t0) * 1e3);
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN }, out;
	rc = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	int rc3 = epoll_wait(ep, &out, 1, 50);
	check(rc == 0 && rc3 == 0, "epoll: ADD works, no EPOLLIN on empty (rc %d, wait %d)", rc, rc3);
	close(ep);

	/* ---- blocking read: interrupted by a signal; a write meanwhile ---- */
	struct rd a = { .fd = fd };
	pthread_t th;
	pthread_create(&th, NULL, reader, &a);
	usleep(150000);
	memset(buf, 0, 128);
	((struct ib_user_mad_hdr *)buf)->id = 5;
	t0 = now();
	n = write(fd, buf, 100);      /* same fd, read blocked in another thread */
	double tw = now() - t0;
	check(n == -1 && errno == EIO && tw < 0.5,
	      "write on the fd of a blocked read returns at once (EIO, %.0f us): no f_pos_lock deadlock", tw * 1e6);
	t0 = now();
	pthread_kill(th, SIGUSR1);
	pthread_join(th, NULL);
	check(a.n == -1 && a.err == EINTR, "blocked read + signal: EINTR (n %zd errno %d, %.0f us)", a.n, a.err,
	      (a.t - t0) * 1e6);

	/* ---- traffic: PerfMgt round trips (blocking read, then poll) ---- */
	if (argc > 2) {
		int dlid = atoi(argv[2]);
		int fd2 = open(path, O_RDWR);
		ioctl(fd2, IB_USER_MAD_ENABLE_PKEY);
		memset(&r2, 0, sizeof(r2));
		r2.qpn = 1;
		r2.mgmt_class = 0x04;
		r2.mgmt_class_version = 1;
		rc = ioctl(fd2, IB_USER_MAD_REGISTER_AGENT2, &r2);
		check(rc == 0, "REGISTER_AGENT2 PerfMgt send-only (id %u)", r2.id);
		for (int round = 0; round < 2; round++) {
			uint8_t sb[64 + 256];
			struct ib_user_mad_hdr *h = (struct ib_user_mad_hdr *)sb;
			uint64_t tid = 0x1234500 + (uint64_t)round;
			memset(sb, 0, sizeof(sb));
			h->id = r2.id;
			h->timeout_ms = 1000;
			h->retries = 1;
			h->qpn = htonl(1);
			h->qkey = htonl(0x80010000);
			h->lid = htons((uint16_t)dlid);
			get_portcounters(sb + 64, tid);
			struct rd b = { .fd = fd2 };
			if (round == 0) {     /* read blocks before the response arrives */
				pthread_create(&th, NULL, reader, &b);
				usleep(50000);
			}
			t0 = now();
			n = write(fd2, sb, sizeof(sb));
			check(n == (ssize_t)sizeof(sb), "round %d: write Get(PortCounters) to LID %d (n %zd errno %d)",
			      round, dlid, n, errno);
			if (round == 0) {
				pthread_join(th, NULL);
			} else {
				pfd.fd = fd2;
				pfd.events = POLLIN;
				rc = poll(&pfd, 1, 3000);
				check(rc == 1 && (pfd.revents & POLLIN), "round 1: poll wakes with POLLIN (%.0f us)",
				      (now() - t0) * 1e6);
				b.n = read(fd2, b.buf, sizeof(b.buf));
				b.t = now();
			}
			struct ib_user_mad_hdr *rh = (struct ib_user_mad_hdr *)b.buf;
			uint64_t rtid = 0;
			if (b.n >= 64 + 24)
				memcpy(&rtid, b.buf + 64 + 8, 8);
			rtid = be64toh(rtid);
			check(b.n == 64 + 256 && rh->status == 0 && b.buf[64 + 3] == 0x81 &&
			      (uint32_t)rtid == (uint32_t)tid && rh->id == r2.id,
			      "round %d: %s read got the GetResp: 64+256 bytes, status 0, our low TID 0x%x (n %zd status %u method 0x%x tid 0x%llx, %.0f us)",
			      round, round == 0 ? "parked blocking" : "polled", (unsigned)tid, b.n, rh->status,
			      b.buf[64 + 3], (unsigned long long)rtid, (b.t - t0) * 1e6);
		}
		close(fd2);
	}
	close(fd);
	return fails ? 1 : 0;
}
