/*
 * mux_vmclient.c - GSI MAD clients for the real-kernel (rxe) tests of
 * umad-mux, raw read/write/ioctl on a umad file (a mux node or
 * /dev/infiniband/umadN).  Addresses are RoCE: GRH to a GID, LID 0.
 *
 *   mux_vmclient client PATH ID CLASS COUNT GID GIDX
 *       send-only agent of CLASS; COUNT Get requests one after the other,
 *       TID low 32 bits = ID << 24 | seq; reads until every response came or
 *       3 s pass; prints "client ID: sent S got G mine M foreign F dup D
 *       timeouts T mad_status 0xXXXX"; exit 0 when M == COUNT and F == D == 0
 *   mux_vmclient responder PATH ANSWER_CLASS SILENT_CLASS
 *       owns Get of both classes; answers ANSWER_CLASS Gets with a GetResp
 *       (same TID), ignores SILENT_CLASS; runs until SIGTERM, prints served
 *   mux_vmclient timeout PATH CLASS GID GIDX TIMEOUT_MS RETRIES
 *       one Get; expects its own send back with status ETIMEDOUT; prints
 *       "timeout: status S tid_ok 0|1 after X ms"; exit 0 when S == 110 and
 *       the TID is ours
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <umx/abi.h>

#define HDR ((int)sizeof(struct ib_user_mad_hdr))
#define MADSZ 256

static volatile sig_atomic_t stop;
static void on_term(int s) { (void)s; stop = 1; }

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int open_reg(const char *path, uint8_t cls, uint32_t get_mask, uint32_t *id)
{
	int fd = open(path, O_RDWR);
	if (fd < 0) {
		perror(path);
		exit(1);
	}
	if (ioctl(fd, IB_USER_MAD_ENABLE_PKEY) != 0) {
		perror("ENABLE_PKEY");
		exit(1);
	}
	struct ib_user_mad_reg_req2 r;
	memset(&r, 0, sizeof(r));
	r.qpn = 1;
	r.mgmt_class = cls;
	r.mgmt_class_version = 1;
	r.method_mask[0] = get_mask;
	if (ioctl(fd, IB_USER_MAD_REGISTER_AGENT2, &r) != 0) {
		fprintf(stderr, "REGISTER_AGENT2 class 0x%02x: %s\n", cls, strerror(errno));
		exit(1);
	}
	*id = r.id;
	return fd;
}

static void set_addr(struct ib_user_mad_hdr *h, const char *gid, int gidx)
{
	h->qpn = htonl(1);
	h->qkey = htonl(0x80010000);
	h->lid = 0;
	h->grh_present = 1;
	h->gid_index = (uint8_t)gidx;
	h->hop_limit = 64;
	if (inet_pton(AF_INET6, gid, h->gid) != 1) {
		fprintf(stderr, "bad GID %s\n", gid);
		exit(2);
	}
}

static void build_get(uint8_t *mad, uint8_t cls, uint32_t tid)
{
	memset(mad, 0, MADSZ);
	mad[0] = 1;
	mad[1] = cls;
	mad[2] = 1;
	mad[3] = 0x01;           /* Get */
	uint64_t be = htobe64(tid);
	memcpy(mad + 8, &be, 8);
	mad[17] = 0x10;          /* some attribute */
}

static uint32_t tid_lo(const uint8_t *mad)
{
	uint64_t be;
	memcpy(&be, mad + 8, 8);
	return (uint32_t)be64toh(be);
}

/* read one packet, waiting up to ms; bytes or -1 */
static ssize_t rd(int fd, uint8_t *buf, size_t len, int ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	if (poll(&p, 1, ms) != 1)
		return -1;
	return read(fd, buf, len);
}

static int client(int argc, char **argv)
{
	if (argc < 8)
		return 2;
	const char *path = argv[2];
	uint32_t cid = (uint32_t)strtoul(argv[3], NULL, 0) & 0xff;
	uint8_t cls = (uint8_t)strtoul(argv[4], NULL, 0);
	unsigned count = (unsigned)atoi(argv[5]);
	uint32_t id;
	int fd = open_reg(path, cls, 0, &id);
	uint8_t sb[HDR + MADSZ], rb[4096];
	unsigned sent = 0, got = 0, mine = 0, foreign = 0, dup = 0, tmo = 0;
	unsigned mad_status = 0xffff;
	char *seen = calloc(count + 1, 1);

	for (unsigned i = 0; i < count; i++) {
		struct ib_user_mad_hdr *h = (struct ib_user_mad_hdr *)sb;
		memset(sb, 0, sizeof(sb));
		h->id = id;
		h->timeout_ms = 1000;
		h->retries = 2;
		set_addr(h, argv[6], atoi(argv[7]));
		build_get(sb + HDR, cls, cid << 24 | i);
		if (write(fd, sb, sizeof(sb)) != (ssize_t)sizeof(sb)) {
			fprintf(stderr, "client %u: write: %s\n", cid, strerror(errno));
			break;
		}
		sent++;
		/* one outstanding at a time: read until ours arrives */
		double dl = now() + 3.0;
		while (now() < dl) {
			ssize_t n = rd(fd, rb, sizeof(rb), 3000);
			if (n < HDR + 24)
				break;
			struct ib_user_mad_hdr *rh = (struct ib_user_mad_hdr *)rb;
			got++;
			if (rh->status) {
				tmo++;
				continue;
			}
			uint32_t t = tid_lo(rb + HDR);
			uint16_t st = (uint16_t)(rb[HDR + 4] << 8 | rb[HDR + 5]);
			if (t >> 24 != cid || (t & 0xffffff) >= count || rb[HDR + 3] != 0x81) {
				foreign++;
				continue;
			}
			if (seen[t & 0xffffff]++) {
				dup++;
				continue;
			}
			mine++;
			mad_status = st;
			if ((t & 0xffffff) == i)
				break;
		}
	}
	printf("client %u: sent %u got %u mine %u foreign %u dup %u timeouts %u mad_status 0x%04x\n", cid, sent,
	       got, mine, foreign, dup, tmo, mad_status);
	close(fd);
	free(seen);
	return mine == count && !foreign && !dup ? 0 : 1;
}

static int responder(int argc, char **argv)
{
	if (argc < 5)
		return 2;
	uint8_t acls = (uint8_t)strtoul(argv[3], NULL, 0), scls = (uint8_t)strtoul(argv[4], NULL, 0);
	uint32_t aid, sid;
	int fd = open_reg(argv[2], acls, 1u << 1, &aid);   /* method Get = bit 1 */
	struct ib_user_mad_reg_req2 r;
	memset(&r, 0, sizeof(r));
	r.qpn = 1;
	r.mgmt_class = scls;
	r.mgmt_class_version = 1;
	r.method_mask[0] = 1u << 1;
	if (ioctl(fd, IB_USER_MAD_REGISTER_AGENT2, &r) != 0) {
		fprintf(stderr, "responder: REGISTER_AGENT2 class 0x%02x: %s\n", scls, strerror(errno));
		return 1;
	}
	sid = r.id;
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	printf("responder: ready (agents %u for 0x%02x, %u for 0x%02x)\n", aid, acls, sid, scls);
	fflush(stdout);
	unsigned long served = 0, ignored = 0;
	uint8_t rb[4096];
	while (!stop) {
		ssize_t n = rd(fd, rb, sizeof(rb), 200);
		if (n < HDR + 24)
			continue;
		struct ib_user_mad_hdr *h = (struct ib_user_mad_hdr *)rb;
		uint8_t *mad = rb + HDR;
		if (mad[1] != acls || mad[3] != 0x01) {
			ignored++;
			continue;
		}
		/* reply to the source: the header already names it (GRH with
		 * its GID, its QPN); gid_index stays the receive's */
		h->id = aid;
		h->timeout_ms = 0;
		h->retries = 0;
		h->status = 0;
		mad[3] = 0x81;
		mad[4] = mad[5] = 0;
		if (write(fd, rb, (size_t)HDR + MADSZ) != HDR + MADSZ)
			fprintf(stderr, "responder: write: %s\n", strerror(errno));
		else
			served++;
	}
	printf("responder: served %lu ignored %lu\n", served, ignored);
	close(fd);
	return 0;
}

static int timeout(int argc, char **argv)
{
	if (argc < 8)
		return 2;
	uint8_t cls = (uint8_t)strtoul(argv[3], NULL, 0);
	uint32_t id;
	int fd = open_reg(argv[2], cls, 0, &id);
	uint8_t sb[HDR + MADSZ], rb[4096];
	struct ib_user_mad_hdr *h = (struct ib_user_mad_hdr *)sb;
	uint32_t tid = 0x7e570000u | (uint32_t)(getpid() & 0xffff);

	memset(sb, 0, sizeof(sb));
	h->id = id;
	h->timeout_ms = (uint32_t)atoi(argv[6]);
	h->retries = (uint32_t)atoi(argv[7]);
	set_addr(h, argv[4], atoi(argv[5]));
	build_get(sb + HDR, cls, tid);
	double t0 = now();
	if (write(fd, sb, sizeof(sb)) != (ssize_t)sizeof(sb)) {
		printf("timeout: write: %s\n", strerror(errno));
		return 1;
	}
	ssize_t n = read(fd, rb, sizeof(rb));    /* blocking */
	double dt = now() - t0;
	struct ib_user_mad_hdr *rh = (struct ib_user_mad_hdr *)rb;
	int tid_ok = n >= HDR + 24 && tid_lo(rb + HDR) == tid && rb[HDR + 3] == 0x01;
	printf("timeout: read %zd status %u tid_ok %d after %.0f ms\n", n, n > 0 ? rh->status : 0, tid_ok,
	       dt * 1e3);
	close(fd);
	return n > 0 && rh->status == ETIMEDOUT && tid_ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	int rc = 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && !strcmp(argv[1], "client"))
		rc = client(argc, argv);
	else if (argc > 1 && !strcmp(argv[1], "responder"))
		rc = responder(argc, argv);
	else if (argc > 1 && !strcmp(argv[1], "timeout"))
		rc = timeout(argc, argv);
	if (rc == 2)
		fprintf(stderr, "usage: see the comment at the top of mux_vmclient.c\n");
	return rc;
}
