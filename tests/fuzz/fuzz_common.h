/*
 * fuzz_common.h - shared pieces of the libFuzzer targets for core/: an input
 * reader, a router on the fake port with three nodes (privileged, not
 * privileged, bound to a GID index) and up to three open files, and the
 * invariants every target checks after each step.
 *
 * Every target builds the fixture at the start of an iteration and tears it
 * down at the end (fz_teardown() checks that the router's tables and the
 * fake port are empty again), so nothing carries over between iterations.
 *
 * Built with -Icore: fz_check_deep() also walks the core's internal tables
 * (core_int.h).  -DFZ_NO_DEEP leaves that out if the internals change shape.
 */
#ifndef UMX_FUZZ_COMMON_H
#define UMX_FUZZ_COMMON_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <umx/core.h>
#include <umx/mad.h>
#include <umx/port.h>
#ifndef FZ_NO_DEEP
#include "core_int.h"
#endif

/* idle class send agents the router may keep cached (0 if it has no cache) */
#ifdef FZ_HAVE_IDLE_SEND_AGENTS
#define FZ_IDLE(st) ((st).idle_send_agents)
#else
#define FZ_IDLE(st) 0u
#endif

/* real agents the router holds for itself once every file is gone: its SA
 * agent while a leave it sent for a dead client is still unanswered */
#define FZ_ALLOW_ROUTER_AGENTS (st.router_agents)

#define FZ_HDR_NEW sizeof(struct ib_user_mad_hdr)
#define FZ_HDR_OLD sizeof(struct ib_user_mad_hdr_old)

#define FZ_FAIL(...)                                                              \
	do {                                                                      \
		fprintf(stderr, "\n*** fuzz invariant violated at %s:%d: ", __FILE__, \
			__LINE__);                                                \
		fprintf(stderr, __VA_ARGS__);                                     \
		fprintf(stderr, "\n");                                            \
		abort();                                                          \
	} while (0)
#define FZ_ASSERT(c) do { if (!(c)) FZ_FAIL("%s", #c); } while (0)
#define FZ_ASSERTF(c, ...) do { if (!(c)) FZ_FAIL(__VA_ARGS__); } while (0)

/* ---- input reader: reads past the end give zeros ---------------------- */

struct fz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t fz_u8(struct fz_in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static inline uint16_t fz_u16(struct fz_in *in)
{
	uint16_t v = fz_u8(in);
	return (uint16_t)(v | fz_u8(in) << 8);
}

static inline uint32_t fz_u32(struct fz_in *in)
{
	uint32_t v = fz_u16(in);
	return v | (uint32_t)fz_u16(in) << 16;
}

static inline uint64_t fz_u64(struct fz_in *in)
{
	uint64_t v = fz_u32(in);
	return v | (uint64_t)fz_u32(in) << 32;
}

/* copies up to want bytes, zero-fills the rest; returns bytes taken */
static inline size_t fz_bytes(struct fz_in *in, void *dst, size_t want)
{
	size_t k = want < in->n ? want : in->n;
	memcpy(dst, in->p, k);
	memset((uint8_t *)dst + k, 0, want - k);
	in->p += k;
	in->n -= k;
	return k;
}

/* a 128-bit method mask from one byte: few bits, so registrations overlap */
static inline void fz_mask(struct fz_in *in, void *out)
{
	uint64_t m[2] = { 0, 0 };
	uint8_t b = fz_u8(in);
	switch (b >> 6) {
	case 0: m[0] = 1ull << (b & 7); break;             /* one low method */
	case 1: m[0] = (uint64_t)(b & 0x3f) << 1; break;     /* a few */
	case 2: m[(b >> 5) & 1] = 1ull << (b & 31); break;
	default: m[0] = fz_u64(in); m[1] = fz_u64(in); break;
	}
	memcpy(out, m, sizeof(m));
}

/* classes worth hitting: SMI, GSI, RMPP classes, vendor 1/2, invalid */
static const uint8_t fz_classes[] = {
	0x00, UMAD_CLASS_SUBN_LID_ROUTED, UMAD_CLASS_SUBN_DIRECTED_ROUTE, UMAD_CLASS_SUBN_ADM,
	UMAD_CLASS_PERF_MGMT, UMAD_CLASS_BM, UMAD_CLASS_DEVICE_MGMT, UMAD_CLASS_CM,
	UMAD_CLASS_SNMP, 0x09 /* vendor range 1 */, 0x0a, UMAD_CLASS_BOOT_MGMT, UMAD_CLASS_BIS,
	UMAD_CLASS_CONG_MGMT, 0x30 /* vendor range 2 */, 0x31, 0x4f, 0x50, 0x80, 0xff,
};
#define FZ_NCLASSES (sizeof(fz_classes) / sizeof(fz_classes[0]))

static const uint32_t fz_ouis[] = { 0x001405, 0x0002c9, 0x000000, 0x01000001, 0x001405 };
#define FZ_NOUIS (sizeof(fz_ouis) / sizeof(fz_ouis[0]))

static inline uint8_t fz_class(struct fz_in *in)
{
	uint8_t b = fz_u8(in);
	return b < 0xe0 ? fz_classes[b % FZ_NCLASSES] : fz_u8(in);
}

/* ---- the fixture -------------------------------------------------------- */

#define FZ_NODES 3
#define FZ_FILES 3

struct fz {
	struct umx_fake_port port;
	struct umx_router *r;
	struct umx_limits lim;
	struct umx_node_policy pol[FZ_NODES];
	struct umx_node *node[FZ_NODES];
	struct umx_file *file[FZ_FILES];
	unsigned file_node[FZ_FILES];
	bool ever_priv[FZ_NODES];      /* privileged at some point (QP0 agents may stay) */
	int tag[FZ_FILES];             /* the user pointer of file[i] is &tag[i] */
	unsigned events;
	unsigned last_nsent;
};

static inline int fz_slot_of(const struct fz *x, const struct umx_file *f)
{
	for (int i = 0; i < FZ_FILES; i++)
		if (x->file[i] == f)
			return i;
	return -1;
}

static void fz_on_readable(void *ctx, struct umx_file *f)
{
	struct fz *x = ctx;
	int s = fz_slot_of(x, f);
	FZ_ASSERTF(s >= 0, "file_readable event for a file that is not open (%p)", (void *)f);
	FZ_ASSERT(umx_file_user(f) == &x->tag[s]);
	FZ_ASSERTF(umx_file_readable(f), "file_readable event but the file is not readable");
	x->events++;
}

static const struct umx_events fz_events = { fz_on_readable };

/* the fake clock of the rate limits; a target advances it */
static uint64_t fz_now_ns;
static uint64_t fz_clock(void) { return fz_now_ns; }

/*
 * node n's policy, variant v: node 0 privileged, node 1 not, node 2 bound to
 * GID index 1; v adds a class allow-list, a P_Key index list, a rate limit
 */
static inline struct umx_node_policy fz_policy(unsigned n, uint8_t v)
{
	struct umx_node_policy p = UMX_NODE_POLICY_DEFAULT;
	p.privileged = n == 0 || (n == 2 && (v & 0x40));
	if (n == 2)
		p.gid_index = 1;
	if (v & 1) {   /* GSI classes and vendor range 2 only (SMPs where privileged) */
		static const uint8_t ok[] = { 0x01, 0x03, 0x04, 0x06, 0x07, 0x09, 0x30, 0x81 };
		for (unsigned i = 0; i < sizeof(ok); i++)
			if (p.privileged || (ok[i] != 0x01 && ok[i] != 0x81))
				umx_policy_allow_class(&p, ok[i]);
	}
	if (v & 2) {
		p.npkeys = (v & 0x80) ? 17 : 2;   /* 17: more than the array holds */
		p.pkey_index[0] = 0;
		p.pkey_index[1] = 3;
	}
	if (v & 4) {
		p.rate = 1u + ((v >> 3) & 3) * 1000u;
		p.burst = (v >> 5) & 1;
	}
	return p;
}

/* cfg selects the limits and the port, pcfg the nodes' policies */
static inline void fz_setup(struct fz *x, uint8_t cfg, uint8_t pcfg)
{
	static const unsigned qmax[4] = { 1, 2, 4, 32 };
	static const unsigned omax[4] = { 1, 2, 3, 64 };
	static const unsigned tsize[4] = { 16, 16, 32, 64 };
	static const unsigned fmax[4] = { 2, 3, 3, 8 };

	memset(x, 0, sizeof(*x));
	umx_fake_port_init(&x->port);
	x->port.no_qp0 = (cfg & 0x80) != 0;
	x->lim.recv_queue_max = qmax[cfg & 3];
	x->lim.outstanding_max = omax[(cfg >> 2) & 3];
	x->lim.tid_table_size = tsize[(cfg >> 4) & 3];
	x->lim.files_max = fmax[((cfg >> 6) ^ cfg) & 3];
#ifdef FZ_HAVE_CM_LIMITS
	x->lim.cm_ids_max = 16;   /* small tables: router_new stays cheap */
#endif
	x->r = umx_router_new(&x->port.port, &fz_events, x, &x->lim);
	FZ_ASSERT(x->r != NULL);
	fz_now_ns = 1000000000ull;
	umx_router_set_clock(x->r, fz_clock);
	for (int i = 0; i < FZ_NODES; i++) {
		/* node 1 gets the rate limit, node 2 the lists */
		uint8_t v = pcfg;
		if (i == 0)
			v = 0;
		else if (i == 1)
			v &= ~3;
		else
			v &= ~4;
		x->pol[i] = fz_policy((unsigned)i, v);
		x->ever_priv[i] = x->pol[i].privileged;
		x->node[i] = umx_node_new(x->r, (unsigned)i, &x->pol[i]);
		FZ_ASSERT(x->node[i] != NULL);
		FZ_ASSERT(umx_node_index(x->node[i]) == (unsigned)i);
		FZ_ASSERT(!memcmp(umx_node_policy(x->node[i]), &x->pol[i], sizeof(x->pol[i])));
	}
}

static inline bool fz_pkey_allowed(const struct umx_node_policy *p, uint16_t idx)
{
	if (!p->npkeys)
		return true;
	for (unsigned i = 0; i < p->npkeys && i < UMX_POLICY_MAX_PKEYS; i++)
		if (p->pkey_index[i] == idx)
			return true;
	return false;
}

static inline bool fz_class_allowed(const struct umx_node_policy *p, uint8_t c)
{
	return !p->classes_restricted || ((p->classes[c / 64] >> (c % 64)) & 1);
}

static inline unsigned fz_nopen(const struct fz *x)
{
	unsigned n = 0;
	for (int i = 0; i < FZ_FILES; i++)
		n += x->file[i] != NULL;
	return n;
}

static inline void fz_release(struct fz *x, int s)
{
	if (!x->file[s])
		return;
	umx_file_release(x->file[s]);
	x->file[s] = NULL;
}

/* (re)open slot s on node n; false when the files limit refused it */
static inline bool fz_open(struct fz *x, int s, unsigned n)
{
	fz_release(x, s);
	n %= FZ_NODES;
	errno = 0;
	struct umx_file *f = umx_file_open(x->node[n], &x->tag[s]);
	if (!f) {
		FZ_ASSERTF(errno == EMFILE, "open failed with errno %d", errno);
		FZ_ASSERT(fz_nopen(x) >= x->lim.files_max);
		return false;
	}
	FZ_ASSERT(umx_file_node(f) == x->node[n]);
	FZ_ASSERT(umx_file_user(f) == &x->tag[s]);
	FZ_ASSERT(!umx_file_readable(f));
	FZ_ASSERT(umx_file_hdr_size(f) == FZ_HDR_OLD);
	x->file[s] = f;
	x->file_node[s] = n;
	return true;
}

#ifndef FZ_NO_DEEP
/* the core's own bookkeeping agrees with its tables */
static inline void fz_check_deep(struct fz *x)
{
	struct umx_router *r = x->r;
	unsigned queued = 0, outstanding = 0, vagents = 0, files = 0;

	for (struct umx_node *n = r->nodes; n; n = n->next) {
		for (struct umx_file *f = n->files; f; f = f->next) {
			unsigned q = 0, fo = 0;
			files++;
			FZ_ASSERT(fz_slot_of(x, f) >= 0);
			FZ_ASSERT(f->node == n);
			for (struct umx_packet *p = f->qhead; p; p = p->next) {
				q++;
				FZ_ASSERT(q <= f->qlen);
				if (!p->next)
					FZ_ASSERT(f->qtail == p);
			}
			FZ_ASSERTF(q == f->qlen, "queue walk %u != qlen %u", q, f->qlen);
			FZ_ASSERT((f->qhead == NULL) == (f->qtail == NULL));
			queued += q;
			for (unsigned i = 0; i < UMX_MAX_AGENTS; i++) {
				struct umx_vagent *va = f->agent[i];
				if (!va)
					continue;
				vagents++;
				FZ_ASSERT(va->id == i && va->file == f);
				fo += va->outstanding;
			}
			FZ_ASSERTF(fo == f->outstanding, "agents' outstanding %u != file's %u", fo,
				   f->outstanding);
			FZ_ASSERT(f->outstanding <= r->lim.outstanding_max);
			outstanding += f->outstanding;
		}
	}
	FZ_ASSERT(files == r->nfiles);
	FZ_ASSERTF(queued == r->queued, "queued %u != r->queued %u", queued, r->queued);
	FZ_ASSERT(vagents == r->nvagents);
	FZ_ASSERTF(outstanding == r->tids.used, "outstanding %u != tids used %u", outstanding,
		   r->tids.used);
	unsigned used = 0;
	for (uint32_t i = 0; i < r->tids.size; i++) {
		struct umx_tid_entry *e = &r->tids.e[i];
		if (!e->file)
			continue;
		used++;
		FZ_ASSERT(fz_slot_of(x, e->file) >= 0);
		FZ_ASSERT(e->agent && e->agent->file == e->file);
		FZ_ASSERT(e->file->agent[e->agent->id] == e->agent);
	}
	FZ_ASSERT(used == r->tids.used);
	unsigned nfree = 0;
	for (uint32_t i = r->tids.free_head; i < r->tids.size; i = r->tids.e[i].next_free) {
		FZ_ASSERT(!r->tids.e[i].file);
		FZ_ASSERT(++nfree <= r->tids.size);
	}
	FZ_ASSERTF(nfree + used == r->tids.size, "free list %u + used %u != size %u", nfree, used,
		   r->tids.size);
}
#endif

/* invariants that hold after every step */
static inline void fz_check(struct fz *x)
{
	struct umx_router_stats st;
	umx_router_stats(x->r, &st);

	for (int i = 0; i < FZ_FILES; i++) {
		struct umx_file *f = x->file[i];
		if (!f)
			continue;
		unsigned want = POLLOUT | POLLWRNORM;
		if (umx_file_readable(f))
			want |= POLLIN | POLLRDNORM;
		FZ_ASSERTF(umx_file_poll(f) == want, "poll 0x%x, readable %d", umx_file_poll(f),
			   umx_file_readable(f));
		size_t hs = umx_file_hdr_size(f);
		FZ_ASSERTF(hs == FZ_HDR_OLD || hs == FZ_HDR_NEW, "header size %zu", hs);
	}
	FZ_ASSERTF(st.files == fz_nopen(x), "stats.files %u, open %u", st.files, fz_nopen(x));
	FZ_ASSERT(st.files <= x->lim.files_max);
	FZ_ASSERTF(st.real_agents == x->port.live, "router holds %u real agents, port has %u",
		   st.real_agents, x->port.live);
	FZ_ASSERT(x->port.regs - x->port.unregs == x->port.live);
	FZ_ASSERT(st.vagents <= 32 * st.files);
	FZ_ASSERTF(st.tids_in_use <= x->lim.tid_table_size, "tids %u", st.tids_in_use);
	FZ_ASSERT(st.tids_in_use <= st.files * x->lim.outstanding_max);
	FZ_ASSERTF(st.queued_packets < (1u << 20), "queued %u", st.queued_packets);
	if (!st.files)
		FZ_ASSERT(!st.vagents && !st.tids_in_use && !st.queued_packets);
	if (!st.vagents)
		FZ_ASSERTF(st.real_agents <= FZ_IDLE(st) + FZ_ALLOW_ROUTER_AGENTS && !st.tids_in_use,
			   "no virtual agent but %u real (%u idle), %u tids", st.real_agents,
			   FZ_IDLE(st), st.tids_in_use);
	FZ_ASSERT(FZ_IDLE(st) <= st.real_agents);
	for (int c = 0; c < UMX_C_COUNT; c++) {
		uint64_t total = umx_router_counter(x->r, (enum umx_counter)c), sum = 0;
		FZ_ASSERTF(total < (1ull << 40), "counter %s = %llu", umx_counter_name((enum umx_counter)c),
			   (unsigned long long)total);
		for (int n = 0; n < FZ_NODES; n++)
			sum += umx_node_counter(x->node[n], (enum umx_counter)c);
		FZ_ASSERTF(sum <= total, "counter %s: nodes %llu > router %llu",
			   umx_counter_name((enum umx_counter)c), (unsigned long long)sum,
			   (unsigned long long)total);
	}
	/* (the core may probe the port with a register/unregister of its own) */
	FZ_ASSERT(umx_router_counter(x->r, UMX_C_REAL_AGENTS) <= x->port.regs);
#ifndef FZ_NO_DEEP
	fz_check_deep(x);
#endif
}

/*
 * read() with a buffer of exactly len bytes (heap, so ASan sees overruns).
 * Checks the result; returns it, and the header/MAD through out (if ret > 0
 * and out is given, out must hold len bytes).
 */
static inline ssize_t fz_read(struct fz *x, int s, size_t len, uint8_t *out)
{
	struct umx_file *f = x->file[s];
	size_t hs = umx_file_hdr_size(f);
	bool was_readable = umx_file_readable(f);
	uint8_t *buf = malloc(len ? len : 1);
	FZ_ASSERT(buf != NULL);
	ssize_t ret = umx_file_read(f, buf, len);
	if (ret >= 0) {
		FZ_ASSERTF((size_t)ret <= len, "read returned %zd > buffer %zu", ret, len);
		FZ_ASSERTF((size_t)ret >= hs + UMX_MAD_HDR, "read returned %zd, header %zu", ret, hs);
		FZ_ASSERT(was_readable);
		struct ib_user_mad_hdr h;
		memset(&h, 0, sizeof(h));
		memcpy(&h, buf, hs);
		FZ_ASSERTF(h.id < 32, "read: agent id %u", h.id);
		if (!h.status)
			FZ_ASSERTF(h.length == (uint32_t)ret, "read: hdr.length %u, returned %zd",
				   h.length, ret);
		if (out)
			memcpy(out, buf, (size_t)ret);
	} else {
		FZ_ASSERTF(ret == -EINVAL || ret == -EAGAIN || ret == -ENOSPC, "read errno %zd", ret);
		if (len < hs)
			FZ_ASSERT(ret == -EINVAL);
		else if (!was_readable)
			FZ_ASSERT(ret == -EAGAIN);
		if (ret == -EAGAIN)
			FZ_ASSERT(!was_readable);
		/* a failed read leaves the packet queued */
		FZ_ASSERT(umx_file_readable(f) == was_readable);
	}
	free(buf);
	return ret;
}

/* release everything: the router's tables and the fake port must be empty */
static inline void fz_teardown(struct fz *x)
{
	struct umx_router_stats st;

	fz_check(x);
	for (int i = 0; i < FZ_FILES; i++)
		fz_release(x, i);
	umx_router_stats(x->r, &st);
	FZ_ASSERTF(!st.files && !st.vagents &&
			   st.real_agents <= FZ_IDLE(st) + FZ_ALLOW_ROUTER_AGENTS && !st.tids_in_use &&
			   !st.queued_packets,
		   "after releasing every file: files %u vagents %u real %u (idle %u) tids %u queued %u",
		   st.files, st.vagents, st.real_agents, FZ_IDLE(st), st.tids_in_use,
		   st.queued_packets);
	FZ_ASSERTF(x->port.live == st.real_agents, "fake port holds %u agents, router %u",
		   x->port.live, st.real_agents);
#ifndef FZ_NO_DEEP
	for (int c = 0; c < 256; c++)
		FZ_ASSERTF(x->r->keys[c] == NULL, "class key 0x%02x left", c);
	for (int i = 0; i < UMX_SEND_CLASS_AGENTS; i++)
		FZ_ASSERT(!x->r->send_cls[i].valid || !x->r->send_cls[i].refs);
	for (int i = 0; i < 4; i++)
		FZ_ASSERT(!x->r->send[i / 2][i % 2].valid);
#endif
	/* nodes die with the router; free one explicitly for that path too */
	umx_node_free(x->node[1]);
	umx_router_free(x->r);
	x->r = NULL;
	/* the router gave every real agent back (cached ones included) */
	FZ_ASSERTF(x->port.live == 0, "after umx_router_free the port holds %u agents", x->port.live);
}

/* ---- registration requests --------------------------------------------- */

/* a structured AGENT2 request (mostly valid, sometimes not) */
static inline void fz_reg2_req(struct fz_in *in, struct ib_user_mad_reg_req2 *q)
{
	uint8_t b = fz_u8(in);
	memset(q, 0, sizeof(*q));
	q->id = 0xdeadbeef;
	q->mgmt_class = fz_class(in);
	bool smi = q->mgmt_class == UMAD_CLASS_SUBN_LID_ROUTED ||
		   q->mgmt_class == UMAD_CLASS_SUBN_DIRECTED_ROUTE;
	q->qpn = (b & 1) ? (uint32_t)smi : (uint32_t)!smi;  /* bit 0: the wrong QP */
	if ((b & 0x60) == 0x60)
		q->qpn = fz_u32(in);
	q->mgmt_class_version = (b & 0x80) ? fz_u8(in) : (uint8_t)((b >> 1) & 1) + 1;
	fz_mask(in, q->method_mask);
	if (umx_is_vendor_range2(q->mgmt_class) || (b & 0x10))
		q->oui = fz_ouis[fz_u8(in) % FZ_NOUIS];
	if (b & 4)
		q->rmpp_version = (b & 8) ? 1 : fz_u8(in);
	if (b & 0x20)
		q->flags = (b & 0x40) ? fz_u32(in) : IB_USER_MAD_USER_RMPP;
}

static inline void fz_reg2_to_v1(const struct ib_user_mad_reg_req2 *q, struct ib_user_mad_reg_req *v1)
{
	memset(v1, 0, sizeof(*v1));
	v1->id = q->id;
	v1->qpn = (uint8_t)q->qpn;
	v1->mgmt_class = q->mgmt_class;
	v1->mgmt_class_version = q->mgmt_class_version;
	v1->oui[0] = (uint8_t)(q->oui >> 16);
	v1->oui[1] = (uint8_t)(q->oui >> 8);
	v1->oui[2] = (uint8_t)q->oui;
	v1->rmpp_version = q->rmpp_version;
	memcpy(v1->method_mask, q->method_mask, sizeof(v1->method_mask));
}

/*
 * ioctl through a heap buffer of exactly _IOC_SIZE(cmd) bytes (NULL for 0),
 * the way the front end copies the argument in and out.
 */
static inline long fz_ioctl(struct fz *x, int s, unsigned cmd, void *arg, bool *copy_out)
{
	size_t sz = _IOC_SIZE(cmd);
	uint8_t *buf = sz ? malloc(sz) : NULL;
	if (sz) {
		FZ_ASSERT(buf != NULL);
		memcpy(buf, arg, sz);
	}
	*copy_out = true;   /* the core must set it */
	long ret = umx_file_ioctl(x->file[s], cmd, buf, copy_out);
	if (sz && *copy_out)
		memcpy(arg, buf, sz);
	else if (sz)   /* nothing to copy back: the core must not have written */
		FZ_ASSERTF(!memcmp(arg, buf, sz), "ioctl 0x%x wrote its argument without copy_out", cmd);
	free(buf);
	FZ_ASSERTF(ret <= 0 && ret >= -4095, "ioctl returned %ld", ret);
	return ret;
}

#endif
