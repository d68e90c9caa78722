/*
 * fixture.h - a router on a fake port with two nodes, and helpers to
 * build umad packets, for the core unit tests.
 */
#ifndef UMX_TEST_FIXTURE_H
#define UMX_TEST_FIXTURE_H

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <cmocka.h>

#include <umx/core.h>
#include <umx/mad.h>
#include <umx/port.h>

#define HDR_NEW sizeof(struct ib_user_mad_hdr)
#define HDR_OLD sizeof(struct ib_user_mad_hdr_old)

struct fx {
	struct umx_fake_port port;
	struct umx_router *r;
	struct umx_node *n0, *n1;
	unsigned readable_events;
	struct umx_file *last_readable;
};

static void fx_on_readable(void *ctx, struct umx_file *f)
{
	struct fx *x = ctx;
	x->readable_events++;
	x->last_readable = f;
}

static const struct umx_events fx_events = { fx_on_readable };

static inline struct fx *fx_new(const struct umx_limits *lim)
{
	struct fx *x = calloc(1, sizeof(*x));
	assert_non_null(x);
	umx_fake_port_init(&x->port);
	x->r = umx_router_new(&x->port.port, &fx_events, x, lim);
	assert_non_null(x->r);
	x->n0 = umx_node_new(x->r, 0, NULL);
	x->n1 = umx_node_new(x->r, 1, NULL);
	assert_non_null(x->n0);
	assert_non_null(x->n1);
	return x;
}

static inline void fx_free(struct fx *x)
{
	if (x->r)
		umx_router_free(x->r);
	free(x);
}

static int fx_setup(void **state) { *state = fx_new(NULL); return 0; }
static int fx_teardown(void **state) { fx_free(*state); return 0; }

/* REGISTER_AGENT2 on f; returns 0/-errno, *id set on success */
static inline long reg2(struct umx_file *f, uint32_t qpn, uint8_t cls, uint8_t ver,
			uint64_t mask0, uint32_t oui, uint8_t rmpp, uint32_t flags, uint32_t *id)
{
	struct ib_user_mad_reg_req2 q;
	bool co;
	memset(&q, 0, sizeof(q));
	q.id = 0xdeadbeef;
	q.qpn = qpn;
	q.mgmt_class = cls;
	q.mgmt_class_version = ver;
	q.method_mask[0] = mask0;
	q.oui = oui;
	q.rmpp_version = rmpp;
	q.flags = flags;
	long ret = umx_file_ioctl(f, IB_USER_MAD_REGISTER_AGENT2, &q, &co);
	if (!ret && id)
		*id = q.id;
	return ret;
}

/* old REGISTER_AGENT */
static inline long reg1(struct umx_file *f, uint8_t qpn, uint8_t cls, uint8_t ver,
			uint64_t mask0, uint32_t *id)
{
	struct ib_user_mad_reg_req q;
	bool co;
	memset(&q, 0, sizeof(q));
	q.qpn = qpn;
	q.mgmt_class = cls;
	q.mgmt_class_version = ver;
	memcpy(&q.method_mask[0], &mask0, sizeof(mask0));
	long ret = umx_file_ioctl(f, IB_USER_MAD_REGISTER_AGENT, &q, &co);
	if (!ret && id)
		*id = q.id;
	return ret;
}

static inline long unreg(struct umx_file *f, uint32_t id)
{
	bool co;
	return umx_file_ioctl(f, IB_USER_MAD_UNREGISTER_AGENT, &id, &co);
}

static inline long enable_pkey(struct umx_file *f)
{
	bool co;
	return umx_file_ioctl(f, IB_USER_MAD_ENABLE_PKEY, NULL, &co);
}

/* a client write: header (in f's format) + 256-byte MAD */
struct pkt {
	uint8_t buf[HDR_NEW + 256];
	size_t hs;
};

static inline uint8_t *pkt_mad(struct pkt *p) { return p->buf + p->hs; }

static inline void pkt_build(struct pkt *p, struct umx_file *f, uint32_t agent, uint8_t cls,
			     uint8_t method, uint64_t tid, uint32_t timeout_ms)
{
	struct ib_user_mad_hdr h;
	memset(p, 0, sizeof(*p));
	p->hs = umx_file_hdr_size(f);
	memset(&h, 0, sizeof(h));
	h.id = agent;
	h.timeout_ms = timeout_ms;
	h.retries = 1;
	h.qpn = htobe32(1);
	h.qkey = htobe32(UMAD_QKEY);
	h.lid = htobe16(4);
	memcpy(p->buf, &h, p->hs);
	uint8_t *m = pkt_mad(p);
	m[0] = 1;
	m[1] = cls;
	m[2] = 1;
	m[3] = method;
	umx_mad_set_tid(m, tid);
	m[16] = 0x00;
	m[17] = 0x10;   /* attribute id */
}

static inline ssize_t pkt_send(struct umx_file *f, struct pkt *p)
{
	return umx_file_write(f, p->buf, p->hs + 256);
}

/* a packet as the real port delivers it: new header + 256-byte MAD */
static inline void wire_build(uint8_t *buf, uint32_t real_agent, uint8_t cls, uint8_t ver,
			      uint8_t method, uint64_t tid, uint32_t status)
{
	struct ib_user_mad_hdr h;
	memset(buf, 0, HDR_NEW + 256);
	memset(&h, 0, sizeof(h));
	h.id = real_agent;
	h.status = status;
	h.length = HDR_NEW + 256;
	h.qpn = htobe32(1);
	h.lid = htobe16(7);
	memcpy(buf, &h, sizeof(h));
	uint8_t *m = buf + HDR_NEW;
	m[0] = 1;
	m[1] = cls;
	m[2] = ver;
	m[3] = method;
	umx_mad_set_tid(m, tid);
}

/* the MAD of the port's i-th send */
static inline const uint8_t *sent_mad(struct fx *x, unsigned i)
{
	size_t len;
	const uint8_t *b = umx_fake_port_sent(&x->port, i, &len);
	assert_non_null(b);
	return b + HDR_NEW;
}

static inline const struct ib_user_mad_hdr *sent_hdr(struct fx *x, unsigned i)
{
	const void *b = umx_fake_port_sent(&x->port, i, NULL);
	assert_non_null(b);
	return b;
}

static inline struct umx_router_stats stats(struct fx *x)
{
	struct umx_router_stats st;
	umx_router_stats(x->r, &st);
	return st;
}

#define M(method) (1ull << (method))

#endif
