/*
 * umx_loadgen.c - closed-loop umad load generator for `make bench`.
 *
 * The same client for every path: plain open/ioctl/write/poll/read on a
 * umad file, exactly as libibumad does it, so it runs unchanged on
 * /dev/infiniband/umadN (the kernel, or umad2sim when preloaded), on a CUSE
 * node /dev/umad-mux-N and on a FUSE-mode file of umad-mux.
 *
 *   umx_loadgen run PATH CLIENTS COUNT ADDR [options]
 *       CLIENTS processes (forked before the path is touched, so each is
 *       its own umad2sim client under the preload), each with its own open
 *       file and one send-only agent of class 0x04 (PerfMgt).  Each sends
 *       COUNT PortCounters Gets one after the other (one outstanding) and
 *       waits for the GetResp with its TID.  ADDR is lid:N (LID routed, the
 *       simulated fabric: ibsim's PMA answers) or gid:GID/GIDX (RoCE with a
 *       GRH: the kernel's unsupported-method auto-reply answers).
 *       Options: --warmup N (round trips per client before the clock
 *       starts, default 10), --deadline S (stop measuring after S seconds,
 *       default 30), --label L, --hdr old (no ENABLE_PKEY, the 56-byte
 *       header: libibumad, and so umad2sim, uses the old format on a file
 *       that umad_open_port() did not open).
 *       Paired: --pair PATH_B [--label-b L] [--hdr-b old]: each client also
 *       opens PATH_B and alternates its requests A B B A A B ..., COUNT on
 *       each path, so both paths see the same moments of machine noise.
 *       Prints one line of key=value pairs per path:
 *         label= clients= rts= secs= rt_per_s= mads_per_s= p50_us= p90_us=
 *         p99_us= mean_us= max_us= lost= foreign= errors= truncated=
 *       (mads_per_s = 2 x rt_per_s: a request and its response; lost =
 *       round trips that got no response in 2 s; truncated = 1 when the
 *       deadline cut the run short).  Exit 0 when nothing was lost.
 *   umx_loadgen hold PATH N1 [N2 ...] [--register]
 *       opens the file N1 times (optionally registering one send-only agent
 *       on each), prints "held N1" and waits for a line on stdin, then tops
 *       up to N2, ...; closes everything at the end (or at stdin EOF).
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <umx/abi.h>

#define HDRMAX ((size_t)sizeof(struct ib_user_mad_hdr))
#define HDROLD ((size_t)sizeof(struct ib_user_mad_hdr_old))
#define MADSZ 256
#define PMA_CLASS 0x04
#define RESP_WAIT_MS 2000

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* "umx_loadgen: WHAT ARG[: strerror(err)]" and exit */
static void die(const char *what, const char *arg, int err)
{
	fprintf(stderr, "umx_loadgen: %s %s%s%s\n", what, arg, err ? ": " : "", err ? strerror(err) : "");
	_exit(1);
}

/* open + ENABLE_PKEY + a send-only agent of class (AGENT2, else v1: old
 * kernels and umad2sim answer AGENT2 with ENOTTY / EINVAL) */
static int open_agent(const char *path, uint8_t cls, uint32_t *id, bool reg, bool old_hdr)
{
	int fd = open(path, O_RDWR);
	if (fd < 0)
		die("open", path, errno);
	if (!old_hdr && ioctl(fd, IB_USER_MAD_ENABLE_PKEY) != 0)
		die("ENABLE_PKEY on", path, errno);
	if (!reg)
		return fd;
	struct ib_user_mad_reg_req2 r2;
	memset(&r2, 0, sizeof(r2));
	r2.qpn = 1;
	r2.mgmt_class = cls;
	r2.mgmt_class_version = 1;
	if (ioctl(fd, IB_USER_MAD_REGISTER_AGENT2, &r2) == 0) {
		*id = r2.id;
		return fd;
	}
	if (errno != EINVAL && errno != ENOTTY)
		die("REGISTER_AGENT2 on", path, errno);
	struct ib_user_mad_reg_req r1;
	memset(&r1, 0, sizeof(r1));
	r1.qpn = 1;
	r1.mgmt_class = cls;
	r1.mgmt_class_version = 1;
	if (ioctl(fd, IB_USER_MAD_REGISTER_AGENT, &r1) != 0)
		die("REGISTER_AGENT on", path, errno);
	*id = r1.id;
	return fd;
}

struct addr {
	bool grh;
	uint16_t lid;
	uint8_t gid[16];
	uint8_t gidx;
};

static void parse_addr(const char *s, struct addr *a)
{
	memset(a, 0, sizeof(*a));
	if (!strncmp(s, "lid:", 4)) {
		a->lid = (uint16_t)strtoul(s + 4, NULL, 0);
		return;
	}
	if (!strncmp(s, "gid:", 4)) {
		char g[64];
		snprintf(g, sizeof(g), "%s", s + 4);
		char *slash = strchr(g, '/');
		if (slash) {
			*slash = 0;
			a->gidx = (uint8_t)atoi(slash + 1);
		}
		if (inet_pton(AF_INET6, g, a->gid) != 1)
			die("bad GID in", s, 0);
		a->grh = true;
		return;
	}
	die("bad address (lid:N or gid:GID/GIDX):", s, 0);
}

/* a PerfMgt Get(PortCounters) for port 1 */
static void build_req(uint8_t *buf, size_t hdr, uint32_t agent, const struct addr *a)
{
	struct ib_user_mad_hdr *h = (struct ib_user_mad_hdr *)buf;
	uint8_t *mad = buf + hdr;

	memset(buf, 0, HDRMAX + MADSZ);
	h->id = agent;
	h->timeout_ms = 1000;
	h->retries = 0;
	h->qpn = htonl(1);
	h->qkey = htonl(0x80010000);
	if (a->grh) {
		h->grh_present = 1;
		h->gid_index = a->gidx;
		h->hop_limit = 64;
		memcpy(h->gid, a->gid, 16);
	} else {
		h->lid = htons(a->lid);
	}
	mad[0] = 1;              /* base version */
	mad[1] = PMA_CLASS;
	mad[2] = 1;              /* class version */
	mad[3] = 0x01;           /* Get */
	mad[16] = 0x00;
	mad[17] = 0x12;          /* PortCounters */
	mad[64 + 1] = 1;         /* PortSelect */
}

static void set_tid(uint8_t *buf, size_t hdr, uint32_t lo)
{
	uint64_t be = htobe64(lo);
	memcpy(buf + hdr + 8, &be, 8);
}

static uint32_t tid_lo(const uint8_t *buf, size_t hdr)
{
	uint64_t be;
	memcpy(&be, buf + hdr + 8, 8);
	return (uint32_t)be64toh(be);
}

/* per client and path, in shared memory */
struct cres {
	uint32_t done, lost, foreign, errors;
	uint64_t t_end;
	uint32_t lat_ns[];       /* count entries */
};

struct shared {
	volatile uint64_t deadline; /* absolute, CLOCK_MONOTONIC ns; set before go */
};

/* one path of a client: its open file */
struct ep {
	int fd;
	size_t hdr;
	uint8_t sb[HDRMAX + MADSZ];
};

/* one request, wait for its response: latency in ns, or 0 when lost */
static uint64_t round_trip(struct ep *e, uint32_t tid, struct cres *cr)
{
	uint8_t rb[HDRMAX + 2048];
	size_t hdr = e->hdr;
	set_tid(e->sb, hdr, tid);
	uint64_t t0 = now_ns();
	if (write(e->fd, e->sb, hdr + MADSZ) != (ssize_t)(hdr + MADSZ)) {
		cr->errors++;
		return 0;
	}
	uint64_t dl = t0 + (uint64_t)RESP_WAIT_MS * 1000000ull;
	for (;;) {
		uint64_t t = now_ns();
		if (t >= dl)
			break;
		struct pollfd p = { e->fd, POLLIN, 0 };
		int rc = poll(&p, 1, (int)((dl - t) / 1000000ull) + 1);
		if (rc <= 0)
			continue;
		/* umad2sim returns -EWOULDBLOCK itself (no errno) when empty */
		ssize_t n = read(e->fd, rb, sizeof(rb));
		if (n < (ssize_t)(hdr + 24))
			continue;
		struct ib_user_mad_hdr *rh = (struct ib_user_mad_hdr *)rb;
		if (tid_lo(rb, hdr) != tid) {
			cr->foreign++;
			continue;
		}
		if (rh->status || rb[hdr + 3] != 0x81) {
			/* our own send returned (timeout) */
			cr->lost++;
			return 0;
		}
		uint64_t dt = now_ns() - t0;
		return dt ? dt : 1;
	}
	cr->lost++;
	return 0;
}

struct job {
	const char *path[2];
	bool old_hdr[2];
	unsigned npaths;         /* 2: paired, requests alternate between the paths */
	unsigned count, warmup;
	struct addr a;
};

static void client_main(const struct job *j, unsigned cid, struct cres **cr, struct shared *sh,
			int ready_w, int go_r)
{
	struct ep e[2];
	uint32_t seq = 0;

	for (unsigned k = 0; k < j->npaths; k++) {
		uint32_t agent = 0;
		e[k].fd = open_agent(j->path[k], PMA_CLASS, &agent, true, j->old_hdr[k]);
		e[k].hdr = j->old_hdr[k] ? HDROLD : HDRMAX;
		build_req(e[k].sb, e[k].hdr, agent, &j->a);
	}
	for (unsigned i = 0; i < j->warmup; i++) {
		struct cres dummy = { 0 };
		round_trip(&e[i % j->npaths], cid << 20 | (seq++ & 0xfffff), &dummy);
	}
	char c = 'r';
	if (write(ready_w, &c, 1) != 1)
		_exit(1);
	close(ready_w);
	/* the parent closes the write end: EOF = go */
	if (read(go_r, &c, 1) < 0)
		_exit(1);
	close(go_r);
	uint64_t dl = sh->deadline;
	for (unsigned i = 0; i < j->count * j->npaths; i++) {
		if (now_ns() >= dl)
			break;
		/* paired: A B B A A B ... so neither path always goes first */
		unsigned k = j->npaths == 1 ? 0 : ((i >> 1) ^ i) & 1;
		struct cres *r = cr[k];
		uint64_t lat = round_trip(&e[k], cid << 20 | (seq++ & 0xfffff), r);
		if (lat) {
			r->lat_ns[r->done] = lat > UINT32_MAX ? UINT32_MAX : (uint32_t)lat;
			r->done++;
		}
	}
	for (unsigned k = 0; k < j->npaths; k++) {
		cr[k]->t_end = now_ns();
		close(e[k].fd);
	}
	exit(0);   /* exit(): umad2sim's atexit detaches from ibsim */
}

static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	return a < b ? -1 : a > b;
}

static double pct(const uint32_t *v, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i] / 1000.0;
}

/* summary line of one path: see the comment at the top */
static void report(const char *label, unsigned clients, unsigned count, struct cres **crs,
		   uint64_t t0, int extra_errors)
{
	uint64_t t_end = t0;
	size_t n = 0;
	unsigned lost = 0, foreign = 0, errors = (unsigned)extra_errors;
	for (unsigned c = 0; c < clients; c++) {
		struct cres *cr = crs[c];
		if (cr->t_end > t_end)
			t_end = cr->t_end;
		n += cr->done;
		lost += cr->lost;
		foreign += cr->foreign;
		errors += cr->errors;
	}
	uint32_t *all = malloc((n ? n : 1) * sizeof(*all));
	size_t k = 0;
	double sum = 0;
	for (unsigned c = 0; c < clients; c++) {
		for (unsigned i = 0; i < crs[c]->done; i++) {
			all[k++] = crs[c]->lat_ns[i];
			sum += crs[c]->lat_ns[i];
		}
	}
	qsort(all, n, sizeof(*all), cmp_u32);
	double secs = (double)(t_end - t0) / 1e9;
	double rtps = secs > 0 ? (double)n / secs : 0;
	int truncated = n + lost < (size_t)clients * count;
	printf("label=%s clients=%u rts=%zu secs=%.3f rt_per_s=%.0f mads_per_s=%.0f p50_us=%.1f "
	       "p90_us=%.1f p99_us=%.1f mean_us=%.1f max_us=%.1f lost=%u foreign=%u errors=%u "
	       "truncated=%d\n",
	       label, clients, n, secs, rtps, 2 * rtps, pct(all, n, 0.50), pct(all, n, 0.90),
	       pct(all, n, 0.99), n ? sum / (double)n / 1000.0 : 0, n ? all[n - 1] / 1000.0 : 0, lost,
	       foreign, errors, truncated);
	free(all);
}

static int cmd_run(int argc, char **argv)
{
	if (argc < 6)
		return 2;
	struct job j;
	memset(&j, 0, sizeof(j));
	j.path[0] = argv[2];
	j.npaths = 1;
	unsigned clients = (unsigned)atoi(argv[3]);
	j.count = (unsigned)atoi(argv[4]);
	j.warmup = 10;
	double deadline_s = 30;
	const char *label[2] = { "run", "run-b" };

	parse_addr(argv[5], &j.a);
	for (int i = 6; i < argc; i++) {
		if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
			j.warmup = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--deadline") && i + 1 < argc)
			deadline_s = atof(argv[++i]);
		else if (!strcmp(argv[i], "--label") && i + 1 < argc)
			label[0] = argv[++i];
		else if (!strcmp(argv[i], "--hdr") && i + 1 < argc)
			j.old_hdr[0] = !strcmp(argv[++i], "old");
		else if (!strcmp(argv[i], "--pair") && i + 1 < argc) {
			j.path[1] = argv[++i];
			j.npaths = 2;
		} else if (!strcmp(argv[i], "--label-b") && i + 1 < argc)
			label[1] = argv[++i];
		else if (!strcmp(argv[i], "--hdr-b") && i + 1 < argc)
			j.old_hdr[1] = !strcmp(argv[++i], "old");
		else
			return 2;
	}
	if (!clients || clients > 4096)
		return 2;

	size_t per = (sizeof(struct cres) + (size_t)j.count * sizeof(uint32_t) + 63) & ~(size_t)63;
	size_t total = 4096 + per * clients * j.npaths;
	uint8_t *shm = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED)
		die("mmap", "", errno);
	struct shared *sh = (struct shared *)shm;
	sh->deadline = UINT64_MAX;
	/* crs[k][c]: path k, client c */
	struct cres **crs[2];
	for (unsigned k = 0; k < j.npaths; k++) {
		crs[k] = calloc(clients, sizeof(struct cres *));
		for (unsigned c = 0; c < clients; c++)
			crs[k][c] = (struct cres *)(shm + 4096 + per * (k * clients + c));
	}
	int ready[2], go[2];
	if (pipe(ready) || pipe(go))
		die("pipe", "", errno);
	pid_t *pids = calloc(clients, sizeof(*pids));
	for (unsigned c = 0; c < clients; c++) {
		pid_t p = fork();
		if (p < 0)
			die("fork", "", errno);
		if (p == 0) {
			struct cres *mine[2] = { crs[0][c], j.npaths > 1 ? crs[1][c] : NULL };
			close(ready[0]);
			close(go[1]);
			client_main(&j, c, mine, sh, ready[1], go[0]);
		}
		pids[c] = p;
	}
	close(ready[1]);
	close(go[0]);
	/* every client open, registered and warmed up (or dead: EOF) */
	unsigned nready = 0;
	for (;;) {
		char buf[256];
		struct pollfd p = { ready[0], POLLIN, 0 };
		if (poll(&p, 1, 60000) != 1)
			break;
		ssize_t n = read(ready[0], buf, sizeof(buf));
		if (n <= 0)
			break;
		nready += (unsigned)n;
		if (nready >= clients)
			break;
	}
	uint64_t t0 = now_ns();
	sh->deadline = t0 + (uint64_t)(deadline_s * 1e9);
	__sync_synchronize();
	close(go[1]);
	int bad_exit = 0;
	for (unsigned c = 0; c < clients; c++) {
		int st;
		if (waitpid(pids[c], &st, 0) != pids[c] || !WIFEXITED(st) || WEXITSTATUS(st))
			bad_exit++;
	}
	bad_exit += (int)(clients - (nready < clients ? nready : clients));
	int rc = 0;
	for (unsigned k = 0; k < j.npaths; k++) {
		report(label[k], clients, j.count, crs[k], t0, bad_exit);
		unsigned done = 0, lost = 0;
		for (unsigned c = 0; c < clients; c++) {
			done += crs[k][c]->done;
			lost += crs[k][c]->lost + crs[k][c]->errors;
		}
		if (lost || bad_exit || !done)
			rc = 1;
		free(crs[k]);
	}
	fflush(stdout);
	free(pids);
	return rc;
}

static int cmd_hold(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	const char *path = argv[2];
	bool reg = false;
	unsigned steps[16], nsteps = 0, maxn = 0;
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--register"))
			reg = true;
		else if (nsteps < 16) {
			steps[nsteps] = (unsigned)atoi(argv[i]);
			if (steps[nsteps] > maxn)
				maxn = steps[nsteps];
			nsteps++;
		}
	}
	struct rlimit rl = { maxn + 64, maxn + 64 };
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("setrlimit", "RLIMIT_NOFILE", errno);
	int *fds = calloc(maxn ? maxn : 1, sizeof(int));
	unsigned held = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (unsigned s = 0; s < nsteps; s++) {
		while (held < steps[s]) {
			uint32_t id;
			fds[held++] = open_agent(path, PMA_CLASS, &id, reg, false);
		}
		printf("held %u\n", held);
		char line[64];
		if (!fgets(line, sizeof(line), stdin))
			break;
	}
	for (unsigned i = 0; i < held; i++)
		close(fds[i]);
	free(fds);
	return 0;
}

int main(int argc, char **argv)
{
	int rc = 2;
	signal(SIGPIPE, SIG_IGN);
	if (argc > 1 && !strcmp(argv[1], "run"))
		rc = cmd_run(argc, argv);
	else if (argc > 1 && !strcmp(argv[1], "hold"))
		rc = cmd_hold(argc, argv);
	if (rc == 2)
		fprintf(stderr, "usage: see the comment at the top of tests/bench/umx_loadgen.c\n");
	return rc;
}
