/*
 * umx_corebench.c - drives core/ on the in-memory fake port with a fixed,
 * repeatable workload, for instruction counts under callgrind and for a
 * native cost per MAD.
 *
 *   umx_corebench FILES RTS [--time SECONDS]
 *
 * FILES virtual files on one node, each with a send-only agent of class
 * 0x04 (PerfMgt), ENABLE_PKEY'd like a libibumad client.  A round is: every
 * file writes one Get (timeout 1000 ms: a tracked transaction, so FILES
 * transactions are in flight at once), the fake port's copy of each send
 * is turned into a GetResp (same wire TID) and fed to umx_router_input(),
 * then every file reads its response.  RTS round trips in total (rounded
 * up to whole rounds; 0 = set-up and tear-down only, the baseline run).
 * Each read is checked: the client's own TID (agent hi_tid << 32 | its low
 * 32 bits), GetResp, the file's header format.
 *
 * The core's own work is exactly what runs inside umx_file_write(),
 * umx_router_input() and umx_file_read(): run under
 *   valgrind --tool=callgrind --toggle-collect=umx_file_write
 *            --toggle-collect=umx_router_input --toggle-collect=umx_file_read
 * for that alone, or without toggles (minus a RTS=0 run) for everything.
 * A round trip is two routed MADs (the request out, the response in).
 *
 * --time S: after the fixed workload, repeat rounds for about S seconds and
 * print the native cost (ns per round trip and per MAD).
 * Prints: files= rts= ok= bad= [ns_per_rt= ns_per_mad= mads_per_s=]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include <umx/core.h>
#include <umx/mad.h>
#include <umx/port.h>

#define HDR sizeof(struct ib_user_mad_hdr)
#define MADSZ 256

struct bfile {
	struct umx_file *f;
	uint32_t agent;
	uint32_t seq;
	uint8_t resp[HDR + MADSZ];   /* the response the "fabric" will send */
	size_t resp_len;
};

static unsigned long readable_events;
static void on_readable(void *ctx, struct umx_file *f)
{
	(void)ctx;
	(void)f;
	readable_events++;
}
static const struct umx_events events = { on_readable };

static struct umx_fake_port port;
static struct umx_router *router;
static struct bfile *files;
static unsigned nfiles;
static unsigned long ok, bad;
static uint8_t req[HDR + MADSZ];

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void setup(void)
{
	struct umx_limits lim = UMX_LIMITS_DEFAULT;
	lim.files_max = nfiles + 16;
	lim.tid_table_size = 65536;
	umx_fake_port_init(&port);
	port.no_qp0 = true;
	router = umx_router_new(&port.port, &events, NULL, &lim);
	struct umx_node *node = router ? umx_node_new(router, 0, NULL) : NULL;
	files = calloc(nfiles, sizeof(*files));
	if (!node || !files) {
		fprintf(stderr, "umx_corebench: out of memory\n");
		exit(1);
	}
	for (unsigned i = 0; i < nfiles; i++) {
		bool co;
		struct ib_user_mad_reg_req2 r;
		files[i].f = umx_file_open(node, &files[i]);
		if (!files[i].f || umx_file_ioctl(files[i].f, IB_USER_MAD_ENABLE_PKEY, NULL, &co)) {
			fprintf(stderr, "umx_corebench: open/ENABLE_PKEY of file %u failed\n", i);
			exit(1);
		}
		memset(&r, 0, sizeof(r));
		r.qpn = 1;
		r.mgmt_class = 0x04;
		r.mgmt_class_version = 1;
		long rc = umx_file_ioctl(files[i].f, IB_USER_MAD_REGISTER_AGENT2, &r, &co);
		if (rc) {
			fprintf(stderr, "umx_corebench: REGISTER_AGENT2 on file %u: %s\n", i, strerror((int)-rc));
			exit(1);
		}
		files[i].agent = r.id;
	}
	/* the request template: PerfMgt Get(PortCounters) to LID 3 */
	struct ib_user_mad_hdr *h = (struct ib_user_mad_hdr *)req;
	h->timeout_ms = 1000;
	h->qpn = htobe32(1);
	h->qkey = htobe32(0x80010000);
	h->lid = htobe16(3);
	uint8_t *m = req + HDR;
	m[0] = 1;
	m[1] = 0x04;
	m[2] = 1;
	m[3] = 0x01;
	m[17] = 0x12;
	m[65] = 1;
}

static void teardown(void)
{
	for (unsigned i = 0; i < nfiles; i++)
		umx_file_release(files[i].f);
	umx_router_free(router);
	free(files);
}

static void one_round(void)
{
	uint8_t rb[HDR + MADSZ + 64];

	for (unsigned i = 0; i < nfiles; i++) {
		struct bfile *b = &files[i];
		struct ib_user_mad_hdr *h = (struct ib_user_mad_hdr *)req;
		uint32_t lo = i << 16 | (b->seq++ & 0xffff);
		h->id = b->agent;
		umx_mad_set_tid(req + HDR, lo);
		unsigned before = port.nsent;
		ssize_t n = umx_file_write(b->f, req, sizeof(req));
		size_t len;
		const uint8_t *sent = umx_fake_port_sent(&port, before, &len);
		if (n != (ssize_t)sizeof(req) || !sent || len != sizeof(req)) {
			bad++;
			b->resp_len = 0;
			continue;
		}
		/* the fabric's answer: GetResp with the wire TID, from LID 3 */
		memcpy(b->resp, sent, len);
		struct ib_user_mad_hdr *rh = (struct ib_user_mad_hdr *)b->resp;
		rh->id = 0;
		rh->status = 0;
		rh->timeout_ms = 0;
		b->resp[HDR + 3] = 0x81;
		b->resp_len = len;
	}
	for (unsigned i = 0; i < nfiles; i++)
		if (files[i].resp_len)
			umx_router_input(router, files[i].resp, files[i].resp_len);
	for (unsigned i = 0; i < nfiles; i++) {
		struct bfile *b = &files[i];
		if (!b->resp_len)
			continue;
		ssize_t n = umx_file_read(b->f, rb, sizeof(rb));
		uint32_t want_lo = i << 16 | ((b->seq - 1) & 0xffff);
		const struct ib_user_mad_hdr *h = (const struct ib_user_mad_hdr *)rb;
		uint64_t tid = n == (ssize_t)(HDR + MADSZ) ? umx_mad_tid(rb + HDR) : 0;
		if (n == (ssize_t)(HDR + MADSZ) && (uint32_t)tid == want_lo && tid >> 32 &&
		    rb[HDR + 3] == 0x81 && h->id == b->agent && h->length == HDR + MADSZ && !h->status)
			ok++;
		else
			bad++;
	}
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: umx_corebench FILES RTS [--time SECONDS]\n");
		return 2;
	}
	nfiles = (unsigned)atoi(argv[1]);
	unsigned long rts = strtoul(argv[2], NULL, 0);
	double tsec = argc > 4 && !strcmp(argv[3], "--time") ? atof(argv[4]) : 0;
	if (!nfiles)
		return 2;
	unsigned long rounds = (rts + nfiles - 1) / nfiles;

	setup();
	for (unsigned long i = 0; i < rounds; i++)
		one_round();
	printf("files=%u rts=%lu ok=%lu bad=%lu", nfiles, rounds * nfiles, ok, bad);
	if (tsec > 0) {
		unsigned long n = 0;
		uint64_t t0 = now_ns(), t1;
		do {
			for (int k = 0; k < 16; k++)
				one_round();
			n += 16ul * nfiles;
			t1 = now_ns();
		} while ((double)(t1 - t0) < tsec * 1e9);
		double ns = (double)(t1 - t0) / (double)n;
		printf(" ns_per_rt=%.1f ns_per_mad=%.1f mads_per_s=%.0f", ns, ns / 2, 2e9 / ns);
	}
	printf(" tids_left=");
	struct umx_router_stats st;
	umx_router_stats(router, &st);
	printf("%u readable_events=%lu\n", st.tids_in_use, readable_events);
	teardown();
	return bad || st.tids_in_use ? 1 : 0;
}
