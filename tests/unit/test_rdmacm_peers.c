/*
 * test_rdmacm_peers.c - the destination of CM MADs that QEMU pvrdma
 * addresses to the guest's own GID (cuse/rdmacm_peers.c).
 */
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../cuse/rdmacm_peers.h"

#define GRACE 1000
static const uint8_t OWN[16] = { 0xfe, 0x80, [15] = 0x0a };
static const uint8_t PEER_A[16] = { 0xfd, 0x00, [15] = 0x01 };
static const uint8_t PEER_B[16] = { 0xfd, 0x00, [15] = 0x02 };

struct msg {
	struct ib_user_mad_hdr h;
	uint8_t mad[256];
};

static void put32(uint8_t *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); }

/* a CM message; gid: where the header says it goes (or came from) */
static void cm(struct msg *m, uint16_t attr, uint32_t local, uint32_t remote, const uint8_t gid[16])
{
	memset(m, 0, sizeof(*m));
	m->h.grh_present = 1;
	m->h.hop_limit = 0xff;
	memcpy(m->h.gid, gid, 16);
	m->mad[0] = 1;
	m->mad[1] = 0x07;
	m->mad[2] = 2;
	m->mad[3] = 0x03;
	m->mad[16] = (uint8_t)(attr >> 8);
	m->mad[17] = (uint8_t)attr;
	put32(m->mad + 24, local);
	put32(m->mad + 28, remote);
}

/* a REQ to target (primary remote port GID + LID) */
static void req(struct msg *m, uint32_t local, const uint8_t target[16], uint16_t lid)
{
	cm(m, UMAD_CM_ATTR_REQ, local, 0, OWN);
	uint16_t l = htobe16(lid);
	memcpy(m->mad + 24 + 54, &l, 2);
	memcpy(m->mad + 24 + 72, target, 16);
	memset(m->mad + 24 + 56, 0x55, 16);          /* primary local GID: must not be used */
}

static int route(struct rc_peers *p, struct msg *m, uint64_t now)
{
	return rc_peers_route(p, OWN, &m->h, m->mad, sizeof(m->mad), now);
}

static void learn(struct rc_peers *p, struct msg *m, uint64_t now)
{
	rc_peers_learn(p, &m->h, m->mad, sizeof(m->mad), now);
}

/* active side: REQ to the target in the REQ, then the rest of the
 * connection to the same peer; the peer's REP teaches nothing new */
static void active_side(void **state)
{
	(void)state;
	struct rc_peers *p = rc_peers_new(16, GRACE);
	struct msg m;

	req(&m, 0x1234, PEER_A, 0x0017);
	assert_int_equal(route(p, &m, 1), RC_ROUTE_READDRESSED);
	assert_memory_equal(m.h.gid, PEER_A, 16);
	assert_int_equal(be16toh(m.h.lid), 0x0017);
	assert_int_equal(m.h.grh_present, 1);
	assert_int_equal(rc_peers_live(p, 0), 1);

	cm(&m, UMAD_CM_ATTR_REP, 0x9999, 0x1234, PEER_A);     /* from the peer */
	learn(p, &m, 2);
	cm(&m, UMAD_CM_ATTR_RTU, 0x1234, 0x9999, OWN);
	assert_int_equal(route(p, &m, 3), RC_ROUTE_READDRESSED);
	assert_memory_equal(m.h.gid, PEER_A, 16);
	cm(&m, UMAD_CM_ATTR_DREQ, 0x1234, 0x9999, OWN);
	assert_int_equal(route(p, &m, 4), RC_ROUTE_READDRESSED);
	assert_memory_equal(m.h.gid, PEER_A, 16);
	cm(&m, UMAD_CM_ATTR_DREP, 0x9999, 0x1234, PEER_A);
	learn(p, &m, 5);
	/* a retransmitted DREQ within the grace period still finds the peer */
	cm(&m, UMAD_CM_ATTR_DREQ, 0x1234, 0x9999, OWN);
	assert_int_equal(route(p, &m, 5 + GRACE - 1), RC_ROUTE_READDRESSED);
	assert_memory_equal(m.h.gid, PEER_A, 16);
	assert_int_equal(rc_peers_live(p, 0), 1);
	rc_peers_free(p);
}

/* passive side: the REQ's source is where the REP, RTU... go; the client's
 * REP names only the peer's comm id */
static void passive_side(void **state)
{
	(void)state;
	struct rc_peers *p = rc_peers_new(16, GRACE);
	struct msg m;

	cm(&m, UMAD_CM_ATTR_REQ, 0x5555, 0, PEER_B);
	m.h.lid = htobe16(0x0042);
	learn(p, &m, 1);
	cm(&m, UMAD_CM_ATTR_REP, 0x1234, 0x5555, OWN);
	assert_int_equal(route(p, &m, 2), RC_ROUTE_READDRESSED);
	assert_memory_equal(m.h.gid, PEER_B, 16);
	assert_int_equal(be16toh(m.h.lid), 0x0042);
	/* from now on the client's own id finds it */
	cm(&m, UMAD_CM_ATTR_DREQ, 0x1234, 0x5555, OWN);
	assert_int_equal(route(p, &m, 3), RC_ROUTE_READDRESSED);
	assert_memory_equal(m.h.gid, PEER_B, 16);
	cm(&m, UMAD_CM_ATTR_DREP, 0x1234, 0x5555, OWN);
	assert_int_equal(route(p, &m, 4), RC_ROUTE_READDRESSED);
	assert_memory_equal(m.h.gid, PEER_B, 16);
	rc_peers_free(p);
}

/* two peers that picked the same comm id, one answered already */
static void same_peer_id_two_peers(void **state)
{
	(void)state;
	struct rc_peers *p = rc_peers_new(16, GRACE);
	struct msg m;

	cm(&m, UMAD_CM_ATTR_REQ, 0x7777, 0, PEER_A);
	learn(p, &m, 1);
	cm(&m, UMAD_CM_ATTR_REP, 0x0100, 0x7777, OWN);
	assert_int_equal(route(p, &m, 2), RC_ROUTE_READDRESSED);
	cm(&m, UMAD_CM_ATTR_REQ, 0x7777, 0, PEER_B);
	learn(p, &m, 3);
	cm(&m, UMAD_CM_ATTR_REP, 0x0200, 0x7777, OWN);
	assert_int_equal(route(p, &m, 4), RC_ROUTE_READDRESSED);
	assert_memory_equal(m.h.gid, PEER_B, 16);
	/* the first connection still goes to its own peer */
	cm(&m, UMAD_CM_ATTR_DREQ, 0x0100, 0x7777, OWN);
	assert_int_equal(route(p, &m, 5), RC_ROUTE_READDRESSED);
	assert_memory_equal(m.h.gid, PEER_A, 16);
	cm(&m, UMAD_CM_ATTR_DREQ, 0x0200, 0x7777, OWN);
	assert_int_equal(route(p, &m, 6), RC_ROUTE_READDRESSED);
	assert_memory_equal(m.h.gid, PEER_B, 16);
	assert_int_equal(rc_peers_live(p, 0), 2);
	rc_peers_free(p);
}

/* a client that addresses its MADs itself is left alone; an unknown
 * connection addressed to the sender is refused, not looped back */
static void as_is_and_unroutable(void **state)
{
	(void)state;
	struct rc_peers *p = rc_peers_new(16, GRACE);
	struct msg m, before;

	cm(&m, UMAD_CM_ATTR_RTU, 0x1, 0x2, PEER_A);
	before = m;
	assert_int_equal(route(p, &m, 1), RC_ROUTE_AS_IS);
	assert_memory_equal(&m, &before, sizeof(m));
	cm(&m, UMAD_CM_ATTR_DREQ, 0x1, 0x2, OWN);
	assert_int_equal(route(p, &m, 1), -EHOSTUNREACH);
	cm(&m, UMAD_CM_ATTR_REQ, 0x1, 0, OWN);
	assert_int_equal(rc_peers_route(p, OWN, &m.h, m.mad, 24 + 72 + 8, 1), -EHOSTUNREACH);
	assert_int_equal(rc_peers_route(p, OWN, &m.h, m.mad, 20, 1), -EHOSTUNREACH);
	assert_int_equal(rc_peers_live(p, 0), 0);
	rc_peers_free(p);
}

/* SIDR: the SIDR_REQ's target from rdma_cm's header; the SIDR_REP goes back
 * to whoever sent the SIDR_REQ */
static void sidr(void **state)
{
	(void)state;
	struct rc_peers *p = rc_peers_new(16, GRACE);
	struct msg m;
	const uint8_t v4[16] = { [10] = 0xff, [11] = 0xff, 10, 0, 0, 2 };

	cm(&m, UMAD_CM_ATTR_SIDR_REQ, 0x42, 0, OWN);
	m.mad[24 + 16] = 0x00;                   /* cma_version */
	m.mad[24 + 17] = 0x40;                   /* IPv4 */
	memcpy(m.mad + 24 + 16 + 20 + 12, v4 + 12, 4);
	assert_int_equal(route(p, &m, 1), RC_ROUTE_READDRESSED);
	assert_memory_equal(m.h.gid, v4, 16);

	cm(&m, UMAD_CM_ATTR_SIDR_REQ, 0x43, 0, OWN);
	m.mad[24 + 17] = 0x60;                   /* IPv6 */
	memcpy(m.mad + 24 + 16 + 20, PEER_B, 16);
	assert_int_equal(route(p, &m, 1), RC_ROUTE_READDRESSED);
	assert_memory_equal(m.h.gid, PEER_B, 16);

	cm(&m, UMAD_CM_ATTR_SIDR_REQ, 0x44, 0, OWN);
	m.mad[24 + 16] = 0x01;                   /* not rdma_cm's header */
	m.mad[24 + 17] = 0x60;
	assert_int_equal(route(p, &m, 1), -EHOSTUNREACH);

	cm(&m, UMAD_CM_ATTR_SIDR_REQ, 0x99, 0, PEER_A);
	learn(p, &m, 2);
	cm(&m, UMAD_CM_ATTR_SIDR_REP, 0x99, 0, OWN);
	assert_int_equal(route(p, &m, 3), RC_ROUTE_READDRESSED);
	assert_memory_equal(m.h.gid, PEER_A, 16);
	/* a SIDR request id is not a comm id */
	cm(&m, UMAD_CM_ATTR_RTU, 0x99, 0x1, OWN);
	assert_int_equal(route(p, &m, 3), -EHOSTUNREACH);
	rc_peers_free(p);
}

/* bounded: ended connections are reclaimed after the grace period without
 * counting; live ones are evicted oldest first and counted */
static void bounded(void **state)
{
	(void)state;
	struct rc_peers *p = rc_peers_new(4, GRACE);
	struct msg m;

	for (uint32_t i = 1; i <= 4; i++) {
		req(&m, i, PEER_A, 1);
		assert_int_equal(route(p, &m, 10), RC_ROUTE_READDRESSED);
	}
	cm(&m, UMAD_CM_ATTR_REJ, 0x50, 1, PEER_A);   /* connection 1 rejected */
	learn(p, &m, 20);
	req(&m, 5, PEER_B, 1);
	assert_int_equal(route(p, &m, 20 + GRACE), RC_ROUTE_READDRESSED);
	assert_int_equal(rc_peers_evicted(p), 0);
	cm(&m, UMAD_CM_ATTR_DREQ, 1, 0x50, OWN);
	assert_int_equal(route(p, &m, 20 + GRACE), -EHOSTUNREACH);
	req(&m, 6, PEER_B, 1);
	assert_int_equal(route(p, &m, 20 + GRACE), RC_ROUTE_READDRESSED);
	assert_int_equal(rc_peers_evicted(p), 1);        /* connection 2, the oldest */
	assert_int_equal(rc_peers_live(p, 0), 4);
	cm(&m, UMAD_CM_ATTR_RTU, 2, 0, OWN);
	assert_int_equal(route(p, &m, 30 + GRACE), -EHOSTUNREACH);
	for (uint32_t i = 3; i <= 6; i++) {
		cm(&m, UMAD_CM_ATTR_RTU, i, 0, OWN);
		assert_int_equal(route(p, &m, 30 + GRACE), RC_ROUTE_READDRESSED);
		assert_memory_equal(m.h.gid, i < 5 ? PEER_A : PEER_B, 16);
	}
	rc_peers_free(p);
}

/* an unanswered DREQ ends the entry when the core's comm id ends
 * (umx_cm_expiry: ib_cm's DREP wait, ~64 s, + grace): reclaimed, not evicted */
static void unanswered_dreq(void **state)
{
	(void)state;
	struct rc_peers *p = rc_peers_new(1, GRACE);
	struct msg m;
	const uint64_t dreq_at = 2, gone = dreq_at + 64000000000ull + GRACE;

	req(&m, 1, PEER_A, 1);
	assert_int_equal(route(p, &m, 1), RC_ROUTE_READDRESSED);
	cm(&m, UMAD_CM_ATTR_DREQ, 1, 0x77, OWN);
	assert_int_equal(route(p, &m, dreq_at), RC_ROUTE_READDRESSED);
	assert_int_equal(rc_peers_live(p, gone - 1), 1);
	assert_int_equal(rc_peers_live(p, gone), 0);
	req(&m, 2, PEER_B, 1);
	assert_int_equal(route(p, &m, gone), RC_ROUTE_READDRESSED);
	assert_int_equal(rc_peers_evicted(p), 0);
	rc_peers_free(p);
}

/* the table grows from 64 entries to its maximum, every connection kept */
static void grows(void **state)
{
	(void)state;
	struct rc_peers *p = rc_peers_new(1000, GRACE);
	struct msg m;

	for (uint32_t i = 1; i <= 1000; i++) {
		req(&m, i, (i & 1) ? PEER_A : PEER_B, (uint16_t)i);
		assert_int_equal(route(p, &m, 1), RC_ROUTE_READDRESSED);
	}
	assert_int_equal(rc_peers_live(p, 1), 1000);
	assert_int_equal(rc_peers_evicted(p), 0);
	for (uint32_t i = 1; i <= 1000; i++) {
		cm(&m, UMAD_CM_ATTR_RTU, i, 0, OWN);
		assert_int_equal(route(p, &m, 2), RC_ROUTE_READDRESSED);
		assert_memory_equal(m.h.gid, (i & 1) ? PEER_A : PEER_B, 16);
		assert_int_equal(be16toh(m.h.lid), i);
	}
	req(&m, 1001, PEER_A, 1);
	assert_int_equal(route(p, &m, 3), RC_ROUTE_READDRESSED);
	assert_int_equal(rc_peers_evicted(p), 1);
	assert_int_equal(rc_peers_live(p, 3), 1000);
	rc_peers_free(p);
}

/* hostile: short and non-CM-attribute MADs learn nothing and never crash */
static void hostile(void **state)
{
	(void)state;
	struct rc_peers *p = rc_peers_new(2, GRACE);
	struct msg m;

	for (unsigned attr = 0; attr < 0x40; attr++)
		for (size_t len = 0; len <= 256; len += 8) {
			cm(&m, (uint16_t)attr, 0xabcd, 0x1234, PEER_A);
			rc_peers_learn(p, &m.h, m.mad, len, 1);
			cm(&m, (uint16_t)attr, 0xabcd, 0x1234, OWN);
			int r = rc_peers_route(p, OWN, &m.h, m.mad, len, 1);
			assert_true(r == RC_ROUTE_READDRESSED || r == -EHOSTUNREACH);
		}
	assert_true(rc_peers_live(p, 0) <= 2);
	rc_peers_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(active_side),
		cmocka_unit_test(passive_side),
		cmocka_unit_test(same_peer_id_two_peers),
		cmocka_unit_test(as_is_and_unroutable),
		cmocka_unit_test(sidr),
		cmocka_unit_test(bounded),
		cmocka_unit_test(unanswered_dreq),
		cmocka_unit_test(grows),
		cmocka_unit_test(hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
