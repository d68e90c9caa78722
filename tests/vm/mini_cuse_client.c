/* mini_cuse_client - probes a mini_cuse device through plain syscalls, the way
 * libibumad uses /dev/infiniband/umadN.  One TAP line per check ("ok - cuse: ...").
 *
 *   mini_cuse_client /dev/NAME          exit status 0 when every check passed
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rdma/ib_user_mad.h>

_Static_assert(sizeof(struct ib_user_mad_reg_req) == 28, "ib_user_mad_reg_req is 28 bytes");

static const char *dev;
static int failures;

static void tap(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void tap(int ok, const char *fmt, ...)
{
	va_list ap;

	printf("%sok - cuse: ", ok ? "" : "not ");
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
	fflush(stdout);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* the same FNV-1a as mini_cuse: what the server must have seen */
static uint32_t reg_hash(const struct ib_user_mad_reg_req *r)
{
	const uint8_t *p = (const uint8_t *)r + sizeof r->id;
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < sizeof *r - sizeof r->id; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* fork a process that writes MSG to the device after DELAY_MS */
static pid_t delayed_write(const char *msg, int delay_ms)
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd;

		usleep((useconds_t)delay_ms * 1000);
		fd = open(dev, O_WRONLY);
		_exit(fd >= 0 && write(fd, msg, strlen(msg)) == (ssize_t)strlen(msg) ? 0 : 1);
	}
	return pid;
}

static int reaped_ok(pid_t pid)
{
	int st;

	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void on_alarm(int sig)
{
}

int main(int argc, char **argv)
{
	char buf[600];
	struct ib_user_mad_reg_req r, orig;
	struct pollfd p;
	ssize_t n, n2;
	double t0, dt;
	int fd, nb, rc, e;
	pid_t pid;

	dev = argc > 1 ? argv[1] : "/dev/umx-mini";
	setvbuf(stdout, NULL, _IOLBF, 0);

	fd = open(dev, O_RDWR);
	tap(fd >= 0, "open O_RDWR");
	if (fd < 0) {
		diag("open %s: %s", dev, strerror(errno));
		return 1;
	}

	/* --- write / read: one message per call, FIFO ------------------------- */
	n = write(fd, "hello", 5);
	n2 = read(fd, buf, sizeof buf);
	tap(n == 5 && n2 == 5 && !memcmp(buf, "hello", 5), "write then read returns the message");
	n = write(fd, "one", 3) + write(fd, "second", 6);
	n2 = read(fd, buf, sizeof buf);
	rc = n2 == 3 && !memcmp(buf, "one", 3);
	n2 = read(fd, buf, sizeof buf);
	tap(n == 9 && rc && n2 == 6 && !memcmp(buf, "second", 6),
	    "two writes are read back as two messages, in order");

	/* --- ioctls (restricted: the kernel copies _IOC_SIZE bytes) ------------ */
	tap(_IOC_DIR(IB_USER_MAD_REGISTER_AGENT) == (_IOC_READ | _IOC_WRITE) &&
	    _IOC_SIZE(IB_USER_MAD_REGISTER_AGENT) == sizeof r,
	    "IB_USER_MAD_REGISTER_AGENT is _IOWR with the 28-byte struct ib_user_mad_reg_req");
	memset(&r, 0, sizeof r);
	r.id = 0xffffffffu;
	r.qpn = 1;
	r.mgmt_class = 0x04;
	r.mgmt_class_version = 1;
	r.method_mask[0] = 1u << 1;
	r.method_mask[1] = 0x8000000000000001ull;
	memcpy(r.oui, "\x00\x14\x05", 3);
	r.rmpp_version = 1;
	orig = r;
	rc = ioctl(fd, IB_USER_MAD_REGISTER_AGENT, &r);
	tap(rc == 0 && r.id == reg_hash(&orig) && !memcmp((char *)&r + 4, (char *)&orig + 4, sizeof r - 4),
	    "REGISTER_AGENT: the server sees all 28 bytes and its reply comes back");
	diag("REGISTER_AGENT rc=%d id=0x%08x want 0x%08x", rc, r.id, reg_hash(&orig));
	uint32_t id = r.id;
	rc = ioctl(fd, IB_USER_MAD_UNREGISTER_AGENT, &id);
	tap(rc == 0, "UNREGISTER_AGENT (_IOW u32) returns 0");
	rc = ioctl(fd, IB_USER_MAD_ENABLE_PKEY);
	tap(rc == 0, "ENABLE_PKEY (_IO) returns 0");
	errno = 0;
	rc = ioctl(fd, _IOWR('x', 0x42, int), &id);
	e = errno;
	tap(rc == -1 && e == ENOTTY, "an unknown ioctl fails with ENOTTY");
	diag("unknown ioctl: rc=%d errno=%d (%s)", rc, e, strerror(e));

	/* --- empty queue: poll, O_NONBLOCK ------------------------------------- */
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	rc = poll(&p, 1, 0);
	tap(rc == 0, "poll on an empty device does not report POLLIN");
	p.events = POLLOUT;
	rc = poll(&p, 1, 0);
	tap(rc == 1 && (p.revents & POLLOUT), "poll reports POLLOUT");
	nb = open(dev, O_RDWR | O_NONBLOCK);
	errno = 0;
	n = nb >= 0 ? read(nb, buf, sizeof buf) : -2;
	e = errno;
	tap(n == -1 && e == EAGAIN, "O_NONBLOCK read on an empty device fails with EAGAIN");

	/* --- poll wake-up by another process' write ---------------------------- */
	pid = delayed_write("wake", 200);
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	t0 = now();
	rc = poll(&p, 1, 5000);
	dt = now() - t0;
	n = read(fd, buf, sizeof buf);
	tap(rc == 1 && (p.revents & POLLIN) && dt < 4.5 && reaped_ok(pid) && n == 4 &&
	    !memcmp(buf, "wake", 4),
	    "a blocked poll wakes when another process writes; the message is readable");
	diag("poll woke after %.3f s (writer delay 0.2 s), revents=0x%x", dt, (unsigned)p.revents);

	/* --- blocking read completed by a later write -------------------------- */
	pid = delayed_write("late", 200);
	t0 = now();
	n = read(fd, buf, sizeof buf);
	dt = now() - t0;
	tap(n == 4 && !memcmp(buf, "late", 4) && dt > 0.1 && reaped_ok(pid),
	    "a blocking read waits for and returns a later write");
	diag("blocking read returned after %.3f s", dt);

	/* --- blocking read interrupted by a signal ----------------------------- */
	struct sigaction sa = { .sa_handler = on_alarm };   /* no SA_RESTART */
	struct itimerval it = { .it_value = { .tv_usec = 300000 } };
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
	t0 = now();
	errno = 0;
	n = read(fd, buf, sizeof buf);
	e = errno;
	dt = now() - t0;
	tap(n == -1 && e == EINTR, "a signal interrupts a blocking read (EINTR)");
	diag("interrupted read: n=%zd errno=%d after %.3f s", n, e, dt);
	/* the device still works afterwards */
	n = write(fd, "after", 5);
	n2 = read(fd, buf, sizeof buf);
	tap(n == 5 && n2 == 5 && !memcmp(buf, "after", 5), "write/read still work after the interrupt");

	if (nb >= 0)
		close(nb);
	close(fd);
	return failures != 0;
}
