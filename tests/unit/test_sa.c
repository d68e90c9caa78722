/*
 * test_sa.c - SA aggregation (core/sa.c; mlx4 mcg.c does the same for
 * SR-IOV functions): MCMemberRecord joins/leaves merged per (MGID, PortGID),
 * one transaction per group with later requests queued, client death,
 * timeouts, InformInfo subscriptions merged, Reports acknowledged once and
 * fanned out, clients' ReportResps absorbed.
 */
#include "fixture.h"

#include <infiniband/umad_sa.h>
#include <infiniband/umad_sa_mcm.h>

#define SA_DATA 56
#define CM_OFF 48
#define REC(f) (SA_DATA + offsetof(struct umad_sa_mcmember_record, f))
#define SET UMAD_METHOD_SET
#define DEL UMAD_SA_METHOD_DELETE
#define FULL UMAD_SA_MCM_JOIN_STATE_FULL_MEMBER
#define NON UMAD_SA_MCM_JOIN_STATE_NON_MEMBER
#define SA_LID 1
#define MLID 0xc007
#define QKEY 0x0000b1b1
#define NCLI 16

static const uint8_t MGID[16] = { 0xff, 0x12, 0x60, 0x1b, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x42, 0x42 };
static const uint8_t PGID[16] = { 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x00, 0x02, 0xc9, 0x03, 0x00, 0xa0, 0x00, 0x03 };

static uint16_t g16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t g32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static void p16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void p32(uint8_t *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); }
static void p64(uint8_t *p, uint64_t v) { v = htobe64(v); memcpy(p, &v, 8); }

struct cli {
	struct umx_file *f;
	uint32_t agent;
};

static void cli_open(struct fx *x, struct cli *c, unsigned i)
{
	c->f = umx_file_open(i % 2 ? x->n1 : x->n0, NULL);
	assert_non_null(c->f);
	assert_int_equal(enable_pkey(c->f), 0);
	/* what libibumad SA users register: class 0x03 v2, RMPP, no methods */
	assert_int_equal(reg2(c->f, 1, UMAD_CLASS_SUBN_ADM, 2, 0, 0, 1, 0, &c->agent), 0);
}

static void sa_pkt(struct pkt *p, struct cli *c, uint8_t method, uint16_t attr, uint32_t tid, uint32_t timeout)
{
	struct ib_user_mad_hdr h;
	pkt_build(p, c->f, c->agent, UMAD_CLASS_SUBN_ADM, method, tid, timeout);
	memcpy(&h, p->buf, sizeof(h));
	h.lid = htobe16(SA_LID);
	h.sl = 0;
	memcpy(p->buf, &h, sizeof(h));
	uint8_t *m = pkt_mad(p);
	m[2] = 2;
	p16(m + 16, attr);
}

/* a join (Set) or leave (Delete) of MGID with JoinState state */
static ssize_t mcm(struct cli *c, uint8_t method, uint32_t tid, const uint8_t *mgid, uint8_t state,
		   uint64_t extra_mask, uint32_t qkey)
{
	struct pkt p;
	sa_pkt(&p, c, method, UMAD_SA_ATTR_MCMEMBER_REC, tid, 100);
	uint8_t *m = pkt_mad(&p);
	p64(m + CM_OFF, UMAD_SA_MCM_COMP_MASK_MGID | UMAD_SA_MCM_COMP_MASK_PORT_GID |
			UMAD_SA_MCM_COMP_MASK_JOIN_STATE | extra_mask);
	memcpy(m + REC(mgid), mgid, 16);
	memcpy(m + REC(portgid), PGID, 16);
	p32(m + REC(qkey), qkey);
	m[REC(scope_state)] = (uint8_t)(0x20 | state);
	return pkt_send(c->f, &p);
}

static ssize_t join(struct cli *c, uint32_t tid, uint8_t state) { return mcm(c, SET, tid, MGID, state, 0, 0); }
static ssize_t leave(struct cli *c, uint32_t tid, uint8_t state) { return mcm(c, DEL, tid, MGID, state, 0, 0); }

/* the SA answers the port's i-th send (status: MAD status) */
static void sa_answer(struct fx *x, unsigned i, uint16_t status)
{
	uint8_t buf[HDR_NEW + 256];
	struct ib_user_mad_hdr h;
	memcpy(buf, umx_fake_port_sent(&x->port, i, NULL), sizeof(buf));
	memcpy(&h, buf, sizeof(h));
	h.status = 0;
	h.timeout_ms = 0;
	h.retries = 0;
	h.lid = htobe16(SA_LID);
	memcpy(buf, &h, sizeof(h));
	uint8_t *m = buf + HDR_NEW;
	m[3] = m[3] == DEL ? UMAD_SA_METHOD_DELETE_RESP : UMAD_METHOD_GET_RESP;
	p16(m + 4, status);
	p16(m + REC(mlid), MLID);
	p32(m + REC(qkey), QKEY);
	m[REC(mtu)] = 4;
	umx_router_input(x->r, buf, sizeof(buf));
}

/* the router's i-th send comes back timed out (the kernel's send_handler) */
static void sa_timeout(struct fx *x, unsigned i)
{
	uint8_t buf[HDR_NEW + 256];
	struct ib_user_mad_hdr h;
	memcpy(buf, umx_fake_port_sent(&x->port, i, NULL), sizeof(buf));
	memcpy(&h, buf, sizeof(h));
	h.status = ETIMEDOUT;
	memcpy(buf, &h, sizeof(h));
	umx_router_input(x->r, buf, HDR_NEW + 24);
}

struct got {
	ssize_t n;
	struct ib_user_mad_hdr h;
	uint8_t m[256];
};

static struct got rd(struct cli *c)
{
	struct got g;
	uint8_t buf[HDR_NEW + 256];
	memset(&g, 0, sizeof(g));
	g.n = umx_file_read(c->f, buf, sizeof(buf));
	if (g.n > 0) {
		memcpy(&g.h, buf, HDR_NEW);
		memcpy(g.m, buf + HDR_NEW, (size_t)g.n - HDR_NEW);
	}
	return g;
}

/* a GetResp/DeleteResp as the SA would give this client */
static void expect_resp(struct cli *c, uint8_t method, uint32_t tid, uint16_t status, uint8_t state)
{
	struct got g = rd(c);
	assert_int_equal(g.n, HDR_NEW + 256);
	assert_int_equal(g.h.status, 0);
	assert_int_equal(g.h.id, c->agent);
	assert_int_equal(be16toh(g.h.lid), SA_LID);
	assert_int_equal(g.m[1], UMAD_CLASS_SUBN_ADM);
	assert_int_equal(g.m[3], method);
	assert_int_equal(g16(g.m + 4), status);
	assert_int_equal((uint32_t)umx_mad_tid(g.m), tid);
	assert_int_not_equal(umx_mad_tid(g.m) >> 32, 0);          /* the agent's hi_tid */
	assert_int_equal(g16(g.m + 16), UMAD_SA_ATTR_MCMEMBER_REC);
	assert_memory_equal(g.m + REC(mgid), MGID, 16);
	assert_memory_equal(g.m + REC(portgid), PGID, 16);
	if (!status) {
		assert_int_equal(g16(g.m + REC(mlid)), MLID);
		assert_int_equal(g32(g.m + REC(qkey)), QKEY);
		assert_int_equal(g.m[REC(scope_state)] & 0x0f, state);
	}
}

static void expect_empty(struct cli *c) { assert_int_equal(rd(c).n, -EAGAIN); }

/* the port's i-th send is the router's own SA request */
static const uint8_t *router_req(struct fx *x, unsigned i, uint8_t method, uint8_t state)
{
	const uint8_t *m = sent_mad(x, i);
	assert_int_equal(m[1], UMAD_CLASS_SUBN_ADM);
	assert_int_equal(m[3], method);
	assert_int_equal((uint32_t)umx_mad_tid(m) & 0xc0000000u, 0xc0000000u);   /* UMX_TID_ROUTER */
	assert_int_equal(be16toh(sent_hdr(x, i)->lid), SA_LID);                  /* the client's address */
	assert_int_equal(sent_hdr(x, i)->timeout_ms, 100);
	if (state)
		assert_int_equal(m[REC(scope_state)] & 0x0f, state);
	return m;
}

static uint64_t ctr(struct fx *x, enum umx_counter c) { return umx_router_counter(x->r, c); }

/* 16 clients join one group: one Set reaches the SA, every client gets its
 * own answer; 15 leave: nothing reaches the SA, the group stays; the last
 * leave: one Delete */
static void sixteen_join_one_set(void **state)
{
	struct fx *x = *state;
	struct cli c[NCLI];
	for (unsigned i = 0; i < NCLI; i++)
		cli_open(x, &c[i], i);
	unsigned regs_before = x->port.regs;
	/* the first joins; the SA has not answered when 7 more ask */
	assert_int_equal(join(&c[0], 100, FULL), HDR_NEW + 256);
	for (unsigned i = 1; i < 8; i++)
		assert_int_equal(join(&c[i], 100 + i, FULL), HDR_NEW + 256);
	assert_int_equal(x->port.nsent, 1);
	const uint8_t *m = router_req(x, 0, SET, FULL);
	assert_memory_equal(m + REC(mgid), MGID, 16);
	assert_int_not_equal(sent_hdr(x, 0)->id, c[0].agent);
	assert_int_equal(x->port.regs, regs_before + 1);          /* the router's own SA agent */
	assert_int_equal(stats(x).sa_groups, 1);
	for (unsigned i = 0; i < 8; i++)
		expect_empty(&c[i]);
	sa_answer(x, 0, 0);
	/* 8 more after the answer: answered by the router at once */
	for (unsigned i = 8; i < NCLI; i++)
		assert_int_equal(join(&c[i], 100 + i, FULL), HDR_NEW + 256);
	assert_int_equal(x->port.nsent, 1);
	for (unsigned i = 0; i < NCLI; i++) {
		expect_resp(&c[i], UMAD_METHOD_GET_RESP, 100 + i, 0, FULL);
		expect_empty(&c[i]);
	}
	assert_int_equal(ctr(x, UMX_C_SA_TX_SENT), 1);
	assert_int_equal(ctr(x, UMX_C_SA_JOINS_ABSORBED), 15);
	assert_int_equal(ctr(x, UMX_C_SA_TX_SAVED), 15);
	assert_int_equal(ctr(x, UMX_C_SA_QUEUED), 7);
	assert_int_equal(stats(x).tids_in_use, 0);

	/* 15 leave: the router answers, the group stays */
	for (unsigned i = 0; i < NCLI - 1; i++) {
		assert_int_equal(leave(&c[i], 200 + i, FULL), HDR_NEW + 256);
		expect_resp(&c[i], UMAD_SA_METHOD_DELETE_RESP, 200 + i, 0, FULL);
	}
	assert_int_equal(x->port.nsent, 1);
	assert_int_equal(stats(x).sa_groups, 1);
	/* the last leave reaches the SA */
	assert_int_equal(leave(&c[NCLI - 1], 300, FULL), HDR_NEW + 256);
	assert_int_equal(x->port.nsent, 2);
	router_req(x, 1, DEL, FULL);
	expect_empty(&c[NCLI - 1]);
	sa_answer(x, 1, 0);
	expect_resp(&c[NCLI - 1], UMAD_SA_METHOD_DELETE_RESP, 300, 0, FULL);
	assert_int_equal(stats(x).sa_groups, 0);
	assert_int_equal(ctr(x, UMX_C_SA_TX_SENT), 2);
	assert_int_equal(ctr(x, UMX_C_SA_JOINS_ABSORBED), 30);
	for (unsigned i = 0; i < NCLI; i++)
		umx_file_release(c[i].f);
}

/* a new JoinState bit: one more Set with the union; its last holder leaves:
 * a Delete of that bit only */
static void join_state_union(void **state)
{
	struct fx *x = *state;
	struct cli a, b, c;
	cli_open(x, &a, 0);
	cli_open(x, &b, 1);
	cli_open(x, &c, 2);
	join(&a, 1, FULL);
	sa_answer(x, 0, 0);
	expect_resp(&a, UMAD_METHOD_GET_RESP, 1, 0, FULL);
	join(&b, 2, NON);
	assert_int_equal(x->port.nsent, 2);
	router_req(x, 1, SET, FULL | NON);
	sa_answer(x, 1, 0);
	expect_resp(&b, UMAD_METHOD_GET_RESP, 2, 0, NON);         /* the state it asked for */
	join(&c, 3, FULL);
	join(&c, 4, NON);
	assert_int_equal(x->port.nsent, 2);
	expect_resp(&c, UMAD_METHOD_GET_RESP, 3, 0, FULL);
	expect_resp(&c, UMAD_METHOD_GET_RESP, 4, 0, NON);
	/* b leaves NON: c still holds it */
	leave(&b, 5, NON);
	expect_resp(&b, UMAD_SA_METHOD_DELETE_RESP, 5, 0, NON);
	assert_int_equal(x->port.nsent, 2);
	/* c leaves NON: the last holder of that bit */
	leave(&c, 6, NON);
	assert_int_equal(x->port.nsent, 3);
	router_req(x, 2, DEL, NON);
	sa_answer(x, 2, 0);
	expect_resp(&c, UMAD_SA_METHOD_DELETE_RESP, 6, 0, NON);
	/* a leave of a bit a client does not hold: ERR_REQ_INVALID, no SA traffic */
	leave(&b, 7, FULL);
	expect_resp(&b, UMAD_SA_METHOD_DELETE_RESP, 7, 0x0200, 0);
	/* a join asking for another Q_Key than the group has: ERR_REQ_INVALID */
	mcm(&b, SET, 8, MGID, FULL, UMAD_SA_MCM_COMP_MASK_QKEY, 0x1234);
	expect_resp(&b, UMAD_METHOD_GET_RESP, 8, 0x0200, 0);
	mcm(&b, SET, 9, MGID, FULL, UMAD_SA_MCM_COMP_MASK_QKEY, QKEY);
	expect_resp(&b, UMAD_METHOD_GET_RESP, 9, 0, FULL);
	assert_int_equal(x->port.nsent, 3);
	umx_file_release(a.f);
	umx_file_release(b.f);
	assert_int_equal(x->port.nsent, 3);        /* c is still a full member */
	umx_file_release(c.f);
	assert_int_equal(x->port.nsent, 4);        /* the router leaves on its own */
	router_req(x, 3, DEL, FULL);
	sa_answer(x, 3, 0);
	assert_int_equal(stats(x).sa_groups, 0);
}

/* requests for a group with a transaction in flight wait, in order; a
 * queued last leave starts the next transaction, and a join after it waits
 * for that one */
static void pending_queue(void **state)
{
	struct fx *x = *state;
	struct cli a, b;
	cli_open(x, &a, 0);
	cli_open(x, &b, 1);
	join(&a, 1, FULL);
	leave(&a, 2, FULL);
	join(&b, 3, FULL);
	assert_int_equal(x->port.nsent, 1);
	assert_int_equal(ctr(x, UMX_C_SA_QUEUED), 2);
	sa_answer(x, 0, 0);
	expect_resp(&a, UMAD_METHOD_GET_RESP, 1, 0, FULL);
	/* a's leave was the last one: a Delete; b's join waits behind it */
	assert_int_equal(x->port.nsent, 2);
	router_req(x, 1, DEL, FULL);
	expect_empty(&a);
	expect_empty(&b);
	sa_answer(x, 1, 0);
	expect_resp(&a, UMAD_SA_METHOD_DELETE_RESP, 2, 0, FULL);
	assert_int_equal(x->port.nsent, 3);
	router_req(x, 2, SET, FULL);
	sa_answer(x, 2, 0);
	expect_resp(&b, UMAD_METHOD_GET_RESP, 3, 0, FULL);
	/* an SA error goes to the client that caused it, unchanged state */
	struct cli c;
	cli_open(x, &c, 2);
	static const uint8_t other[16] = { 0xff, 0x12, 0x60, 0x1b, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x43, 0x43 };
	mcm(&c, SET, 4, other, FULL, 0, 0);
	assert_int_equal(stats(x).sa_groups, 2);
	sa_answer(x, 3, 0x0600);    /* ERR_INSUFFICIENT_COMPONENTS */
	struct got g = rd(&c);
	assert_int_equal(g.n, HDR_NEW + 256);
	assert_int_equal(g16(g.m + 4), 0x0600);
	assert_int_equal((uint32_t)umx_mad_tid(g.m), 4);
	assert_int_equal(stats(x).sa_groups, 1);
	umx_file_release(a.f);
	umx_file_release(b.f);
	umx_file_release(c.f);
}

/* a client that dies leaves its groups: the router sends the Delete itself
 * once nobody else holds the JoinState; a join whose client died before
 * the SA answered is undone */
static void client_death_leaves(void **state)
{
	struct fx *x = *state;
	struct cli a, b;
	cli_open(x, &a, 0);
	cli_open(x, &b, 1);
	join(&a, 1, FULL);
	sa_answer(x, 0, 0);
	join(&b, 2, FULL);
	umx_file_release(a.f);
	assert_int_equal(x->port.nsent, 1);
	assert_int_equal(stats(x).sa_groups, 1);
	umx_file_release(b.f);
	assert_int_equal(x->port.nsent, 2);
	const uint8_t *m = router_req(x, 1, DEL, FULL);
	assert_memory_equal(m + REC(mgid), MGID, 16);
	assert_memory_equal(m + REC(portgid), PGID, 16);
	sa_answer(x, 1, 0);
	assert_int_equal(stats(x).sa_groups, 0);
	assert_int_equal(ctr(x, UMX_C_RX_DELIVERED), 2);

	/* death with the join in flight: the answer is applied, then undone */
	cli_open(x, &a, 0);
	join(&a, 3, FULL);
	assert_int_equal(x->port.nsent, 3);
	umx_file_release(a.f);
	sa_answer(x, 2, 0);
	assert_int_equal(x->port.nsent, 4);
	router_req(x, 3, DEL, FULL);
	sa_answer(x, 3, 0);
	assert_int_equal(stats(x).sa_groups, 0);
	/* an answer to nothing is dropped and counted */
	sa_answer(x, 3, 0);
	assert_int_equal(ctr(x, UMX_C_RX_SA_UNMATCHED), 1);
}

/* the router's request times out: every waiting client gets its own
 * request back with status ETIMEDOUT, as the kernel gives */
static void sa_timeout_waiters(void **state)
{
	struct fx *x = *state;
	struct cli c[3];
	for (unsigned i = 0; i < 3; i++)
		cli_open(x, &c[i], i);
	for (unsigned i = 0; i < 3; i++)
		join(&c[i], 50 + i, FULL);
	assert_int_equal(x->port.nsent, 1);
	sa_timeout(x, 0);
	for (unsigned i = 0; i < 3; i++) {
		struct got g = rd(&c[i]);
		assert_int_equal(g.n, HDR_NEW + 24);                 /* IB_MGMT_MAD_HDR */
		assert_int_equal(g.h.status, ETIMEDOUT);
		assert_int_equal(g.h.id, c[i].agent);
		assert_int_equal((uint32_t)umx_mad_tid(g.m), 50 + i);
		assert_int_equal(g.m[3], SET);
		expect_empty(&c[i]);
	}
	assert_int_equal(ctr(x, UMX_C_SA_TX_TIMEOUTS), 1);
	assert_int_equal(ctr(x, UMX_C_RX_TIMEOUTS), 3);
	assert_int_equal(stats(x).sa_groups, 0);
	/* a retry starts afresh */
	join(&c[0], 60, FULL);
	assert_int_equal(x->port.nsent, 2);
	sa_answer(x, 1, 0);
	expect_resp(&c[0], UMAD_METHOD_GET_RESP, 60, 0, FULL);
	for (unsigned i = 0; i < 3; i++)
		umx_file_release(c[i].f);
}

/* MGID 0 (the SA assigns one), other SA attributes: untouched, tracked as usual */
static void passthrough(void **state)
{
	struct fx *x = *state;
	struct cli a;
	static const uint8_t zero[16];
	cli_open(x, &a, 0);
	assert_int_equal(mcm(&a, SET, 7, zero, FULL, 0, 0), HDR_NEW + 256);
	assert_int_equal(x->port.nsent, 1);
	const uint8_t *m = sent_mad(x, 0);
	assert_int_equal((uint32_t)umx_mad_tid(m) & 0xc0000000u, 0x80000000u);  /* a client TID */
	assert_int_equal(stats(x).sa_groups, 0);
	assert_int_equal(stats(x).tids_in_use, 1);
	struct pkt p;
	sa_pkt(&p, &a, UMAD_METHOD_GET, UMAD_SA_ATTR_PATH_REC, 8, 100);
	assert_int_equal(pkt_send(a.f, &p), HDR_NEW + 256);
	assert_int_equal(stats(x).tids_in_use, 2);
	/* a leave of a group the router does not know: the SA answers it */
	assert_int_equal(leave(&a, 9, FULL), HDR_NEW + 256);
	assert_int_equal(stats(x).tids_in_use, 3);
	assert_int_equal(ctr(x, UMX_C_SA_TX_SENT), 0);
	umx_file_release(a.f);
}

/* ---- InformInfo and Reports ------------------------------------------- */

#define ANY16 0xffff

static ssize_t inform(struct cli *c, uint32_t tid, bool subscribe, uint16_t trap)
{
	struct pkt p;
	sa_pkt(&p, c, SET, 0x0003, tid, 100);
	uint8_t *ii = pkt_mad(&p) + SA_DATA;
	p16(ii + 16, 0xffff);           /* LIDRangeBegin: all */
	p16(ii + 18, 0);
	ii[22] = 1;                     /* IsGeneric */
	ii[23] = subscribe;
	p16(ii + 24, ANY16);            /* Type */
	p16(ii + 26, trap);             /* TrapNumber */
	p32(ii + 28, 1u << 8 | 18);     /* QPN 1, RespTimeValue 18: not part of the key */
	ii[33] = 0xff;
	p16(ii + 34, 0xffff);           /* ProducerType: all */
	return pkt_send(c->f, &p);
}

static void inform_answer(struct fx *x, unsigned i)
{
	uint8_t buf[HDR_NEW + 256];
	struct ib_user_mad_hdr h;
	memcpy(buf, umx_fake_port_sent(&x->port, i, NULL), sizeof(buf));
	memcpy(&h, buf, sizeof(h));
	h.timeout_ms = 0;
	memcpy(buf, &h, sizeof(h));
	buf[HDR_NEW + 3] = UMAD_METHOD_GET_RESP;
	umx_router_input(x->r, buf, sizeof(buf));
}

static void expect_inform_resp(struct cli *c, uint32_t tid, uint8_t subscribe, uint16_t trap)
{
	struct got g = rd(c);
	assert_int_equal(g.n, HDR_NEW + 256);
	assert_int_equal(g.h.id, c->agent);
	assert_int_equal(g.m[3], UMAD_METHOD_GET_RESP);
	assert_int_equal(g16(g.m + 4), 0);
	assert_int_equal((uint32_t)umx_mad_tid(g.m), tid);
	assert_int_equal(g16(g.m + 16), 0x0003);
	assert_int_equal(g.m[SA_DATA + 23], subscribe);
	assert_int_equal(g16(g.m + SA_DATA + 26), trap);
}

/* a Report (Notice: generic, trap) from the SA */
static void report_in(struct fx *x, uint16_t trap, uint64_t tid)
{
	uint8_t buf[HDR_NEW + 256];
	wire_build(buf, 0, UMAD_CLASS_SUBN_ADM, 2, UMAD_METHOD_REPORT, tid, 0);
	struct ib_user_mad_hdr h;
	memcpy(&h, buf, sizeof(h));
	h.lid = htobe16(SA_LID);
	memcpy(buf, &h, sizeof(h));
	uint8_t *m = buf + HDR_NEW;
	p16(m + 16, 0x0002);            /* Notice */
	uint8_t *n = m + SA_DATA;
	n[0] = 0x80 | 3;                /* generic, type 3 (subnet management) */
	n[3] = 4;                       /* producer: class manager */
	p16(n + 4, trap);
	p16(n + 6, SA_LID);             /* issuer LID */
	n[10 + 6 + 15] = 0x77;          /* data details: the GID that went away */
	umx_router_input(x->r, buf, sizeof(buf));
}

static unsigned count_reports(struct cli *c, uint16_t trap, uint64_t tid)
{
	unsigned k = 0;
	struct got g;
	while ((g = rd(c)).n > 0) {
		assert_int_equal(g.m[3], UMAD_METHOD_REPORT);
		assert_int_equal(g.h.id, c->agent);
		assert_int_equal(g16(g.m + SA_DATA + 4), trap);
		assert_int_equal(umx_mad_tid(g.m), tid);
		k++;
	}
	return k;
}

static void subscriptions_and_reports(void **state)
{
	struct fx *x = *state;
	struct cli c[5];
	for (unsigned i = 0; i < 5; i++)
		cli_open(x, &c[i], i);
	/* c0..c2: trap 64 (one subscription at the SA); c3: trap 65; c4: every
	 * trap and trap 64 (two specs, one copy of each Report) */
	inform(&c[0], 10, true, 64);
	inform(&c[1], 11, true, 64);
	assert_int_equal(x->port.nsent, 1);
	inform_answer(x, 0);
	inform(&c[2], 12, true, 64);
	inform(&c[3], 13, true, 65);
	inform(&c[4], 14, true, ANY16);
	inform(&c[4], 15, true, 64);
	assert_int_equal(x->port.nsent, 3);
	assert_int_equal(sent_mad(x, 1)[SA_DATA + 23], 1);
	assert_int_equal(g16(sent_mad(x, 1) + SA_DATA + 26), 65);
	assert_int_equal(g16(sent_mad(x, 2) + SA_DATA + 26), ANY16);
	inform_answer(x, 1);
	inform_answer(x, 2);
	expect_inform_resp(&c[0], 10, 1, 64);
	expect_inform_resp(&c[1], 11, 1, 64);
	expect_inform_resp(&c[2], 12, 1, 64);
	expect_inform_resp(&c[3], 13, 1, 65);
	expect_inform_resp(&c[4], 15, 1, 64);      /* absorbed at once: before the SA's answer */
	expect_inform_resp(&c[4], 14, 1, ANY16);
	assert_int_equal(stats(x).sa_subscriptions, 3);
	assert_int_equal(ctr(x, UMX_C_SA_SUBS_ABSORBED), 3);

	/* a trap-64 Report: one ReportResp, one copy per subscribed client */
	uint64_t rtid = 0x00010002deadbeefull;
	report_in(x, 64, rtid);
	assert_int_equal(x->port.nsent, 4);
	const uint8_t *rr = sent_mad(x, 3);
	assert_int_equal(rr[3], UMAD_METHOD_REPORT_RESP);
	assert_int_equal(umx_mad_tid(rr), rtid);
	assert_int_equal(g16(rr + 16), 0x0002);
	assert_int_equal(g16(rr + SA_DATA + 4), 64);
	assert_int_equal(be16toh(sent_hdr(x, 3)->lid), SA_LID);
	assert_int_equal(be32toh(sent_hdr(x, 3)->qkey), UMAD_QKEY);
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(count_reports(&c[i], 64, rtid), i == 3 ? 0 : 1);
	assert_int_equal(ctr(x, UMX_C_SA_REPORTS_FANNED), 4);
	/* the clients acknowledge too: absorbed, nothing reaches the SA */
	for (unsigned i = 0; i < 5; i++) {
		if (i == 3)
			continue;
		struct pkt p;
		sa_pkt(&p, &c[i], UMAD_METHOD_REPORT_RESP, 0x0002, (uint32_t)rtid, 0);
		umx_mad_set_tid(pkt_mad(&p), rtid);
		assert_int_equal(pkt_send(c[i].f, &p), HDR_NEW + 256);
	}
	assert_int_equal(x->port.nsent, 4);
	assert_int_equal(ctr(x, UMX_C_SA_REPORT_RESP_ABSORBED), 4);
	/* trap 65: c3 and c4 */
	report_in(x, 65, 0x99);
	assert_int_equal(x->port.nsent, 5);
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(count_reports(&c[i], 65, 0x99), i == 3 || i == 4 ? 1 : 0);
	/* c4 leaves "every trap": trap 66 now matches nobody: acknowledged, dropped, counted */
	inform(&c[4], 16, false, ANY16);
	assert_int_equal(x->port.nsent, 6);
	assert_int_equal(sent_mad(x, 5)[SA_DATA + 23], 0);
	inform_answer(x, 5);
	expect_inform_resp(&c[4], 16, 0, ANY16);
	report_in(x, 66, 0x9a);
	assert_int_equal(x->port.nsent, 7);
	assert_int_equal(sent_mad(x, 6)[3], UMAD_METHOD_REPORT_RESP);
	assert_int_equal(ctr(x, UMX_C_RX_SA_UNSUBSCRIBED), 1);
	for (unsigned i = 0; i < 5; i++)
		expect_empty(&c[i]);
	/* trap 64 unsubscribed by two of four holders: absorbed; c3 dies: the
	 * router unsubscribes trap 65 itself */
	inform(&c[0], 17, false, 64);
	inform(&c[1], 18, false, 64);
	expect_inform_resp(&c[0], 17, 0, 64);
	expect_inform_resp(&c[1], 18, 0, 64);
	assert_int_equal(x->port.nsent, 7);
	umx_file_release(c[3].f);
	assert_int_equal(x->port.nsent, 8);
	assert_int_equal(sent_mad(x, 7)[SA_DATA + 23], 0);
	assert_int_equal(g16(sent_mad(x, 7) + SA_DATA + 26), 65);
	inform_answer(x, 7);
	assert_int_equal(stats(x).sa_subscriptions, 1);
	/* an unsubscribe from a client that is not subscribed: ERR_REQ_INVALID */
	inform(&c[0], 19, false, 64);
	struct got g = rd(&c[0]);
	assert_int_equal(g16(g.m + 4), 0x0200);
	report_in(x, 64, 0x9b);
	for (unsigned i = 0; i < 5; i++)
		if (i != 3)
			assert_int_equal(count_reports(&c[i], 64, 0x9b), i == 2 || i == 4 ? 1 : 0);
	assert_int_equal(ctr(x, UMX_C_SA_REPORTS), 4);
	for (unsigned i = 0; i < 5; i++)
		if (i != 3)
			umx_file_release(c[i].f);
	assert_int_equal(x->port.nsent, 10);       /* the last trap-64 holder left */
	inform_answer(x, 9);
	assert_int_equal(stats(x).sa_subscriptions, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(sixteen_join_one_set, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(join_state_union, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(pending_queue, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(client_death_leaves, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(sa_timeout_waiters, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(passthrough, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(subscriptions_and_reports, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
