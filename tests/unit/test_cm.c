/*
 * test_cm.c - CM (class 0x07) as a shared, steered class with
 * communication-id remapping (core/cm.c; mlx4 cm.c does the same for
 * SR-IOV functions).
 */
#include "fixture.h"

#define SEND UMAD_METHOD_SEND

static uint64_t now;
static uint64_t clk(void) { return now; }

static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static void put32(uint8_t *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); }

struct two {
	struct umx_node *na, *nb;
	struct umx_file *a, *b;
	uint32_t ia, ib;
};

static void two_clients(struct fx *x, struct two *t)
{
	struct umx_node_policy pa = UMX_NODE_POLICY_DEFAULT, pb = UMX_NODE_POLICY_DEFAULT;
	pa.gid_index = 1;
	pb.gid_index = 2;
	t->na = umx_node_new(x->r, 10, &pa);
	t->nb = umx_node_new(x->r, 11, &pb);
	t->a = umx_file_open(t->na, NULL);
	t->b = umx_file_open(t->nb, NULL);
	assert_int_equal(enable_pkey(t->a), 0);
	assert_int_equal(enable_pkey(t->b), 0);
	/* both own CM Send: the class is shared, not a conflict */
	assert_int_equal(reg2(t->a, 1, UMAD_CLASS_CM, 2, M(SEND), 0, 0, 0, &t->ia), 0);
	assert_int_equal(reg2(t->b, 1, UMAD_CLASS_CM, 2, M(SEND), 0, 0, 0, &t->ib), 0);
}

static ssize_t cm_send(struct umx_file *f, uint32_t agent, uint16_t attr, uint32_t local, uint32_t remote,
		       uint8_t gid_index)
{
	struct pkt p;
	struct ib_user_mad_hdr h;
	pkt_build(&p, f, agent, UMAD_CLASS_CM, SEND, 0x10 + attr, 0);
	memcpy(&h, p.buf, sizeof(h));
	h.grh_present = 1;
	h.gid_index = gid_index;
	memcpy(p.buf, &h, sizeof(h));
	uint8_t *m = pkt_mad(&p);
	m[2] = 2;
	m[16] = (uint8_t)(attr >> 8);
	m[17] = (uint8_t)attr;
	put32(m + 24, local);
	put32(m + 28, remote);
	return pkt_send(f, &p);
}

static void cm_wire(struct fx *x, uint16_t attr, uint32_t local, uint32_t remote, int grh_gid_index)
{
	uint8_t buf[HDR_NEW + 256];
	struct ib_user_mad_hdr h;
	wire_build(buf, 1, UMAD_CLASS_CM, 2, SEND, 0x99, 0);
	memcpy(&h, buf, sizeof(h));
	h.grh_present = grh_gid_index >= 0;
	h.gid_index = grh_gid_index >= 0 ? (uint8_t)grh_gid_index : 0;
	memcpy(buf, &h, sizeof(h));
	uint8_t *m = buf + HDR_NEW;
	m[16] = (uint8_t)(attr >> 8);
	m[17] = (uint8_t)attr;
	put32(m + 24, local);
	put32(m + 28, remote);
	umx_router_input(x->r, buf, sizeof(buf));
}

/* read one packet: returns its (local, remote) ids, -EAGAIN if none */
static int cm_read(struct umx_file *f, uint32_t *local, uint32_t *remote)
{
	uint8_t buf[HDR_NEW + 256];
	ssize_t n = umx_file_read(f, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	*local = get32(buf + HDR_NEW + 24);
	*remote = get32(buf + HDR_NEW + 28);
	return 0;
}

/* the same local comm id from two clients becomes two router ids; answers
 * naming them go back to the right client with the client's id */
static void same_comm_id_two_clients(void **state)
{
	struct fx *x = *state;
	struct two t;
	uint32_t l, rm;
	two_clients(x, &t);
	assert_int_equal(cm_send(t.a, t.ia, UMAD_CM_ATTR_REQ, 0x1111, 0, 1), HDR_NEW + 256);
	assert_int_equal(cm_send(t.b, t.ib, UMAD_CM_ATTR_REQ, 0x1111, 0, 2), HDR_NEW + 256);
	uint32_t wa = get32(sent_mad(x, 0) + 24), wb = get32(sent_mad(x, 1) + 24);
	assert_int_not_equal(wa, wb);
	assert_int_not_equal(wa, 0);
	assert_int_equal(stats(x).cm_ids, 2);
	/* the peer's REP to b's REQ: remote comm id = b's router id */
	cm_wire(x, UMAD_CM_ATTR_REP, 0xbeef, wb, 2);
	assert_int_equal(cm_read(t.b, &l, &rm), 0);
	assert_int_equal(rm, 0x1111);
	assert_int_equal(l, 0xbeef);
	assert_int_equal(cm_read(t.a, &l, &rm), -EAGAIN);
	/* later messages from b use the same router id */
	assert_int_equal(cm_send(t.b, t.ib, UMAD_CM_ATTR_RTU, 0x1111, 0xbeef, 2), HDR_NEW + 256);
	assert_int_equal(get32(sent_mad(x, 2) + 24), wb);
	assert_int_equal(get32(sent_mad(x, 2) + 28), 0xbeef);   /* the peer's id is untouched */
	/* an id nobody has is dropped and counted */
	cm_wire(x, UMAD_CM_ATTR_RTU, 0xbeef, 0x12345678, 2);
	assert_int_equal(umx_router_counter(x->r, UMX_C_RX_CM_UNROUTABLE), 1);
	umx_node_free(t.na);
	assert_int_equal(stats(x).cm_ids, 1);
	umx_node_free(t.nb);
	assert_int_equal(stats(x).cm_ids, 0);
	/* left on the port: the idle CM send agent (the send-agent cache) */
	assert_int_equal(x->port.live, stats(x).idle_send_agents);
	assert_int_equal(stats(x).idle_send_agents, 1);
}

/* a REQ goes to the node whose bound gid index the GRH targeted; without
 * a route it is dropped and counted */
static void req_steered_by_gid(void **state)
{
	struct fx *x = *state;
	struct two t;
	uint32_t l, rm;
	two_clients(x, &t);
	cm_wire(x, UMAD_CM_ATTR_REQ, 0x700, 0, 2);
	assert_int_equal(cm_read(t.b, &l, &rm), 0);
	assert_int_equal(l, 0x700);
	assert_int_equal(cm_read(t.a, &l, &rm), -EAGAIN);
	cm_wire(x, UMAD_CM_ATTR_REQ, 0x701, 0, 1);
	assert_int_equal(cm_read(t.a, &l, &rm), 0);
	assert_int_equal(l, 0x701);
	cm_wire(x, UMAD_CM_ATTR_REQ, 0x702, 0, 3);
	cm_wire(x, UMAD_CM_ATTR_REQ, 0x703, 0, -1);
	assert_int_equal(umx_router_counter(x->r, UMX_C_RX_CM_UNROUTABLE), 2);
	/* b answers the REQ: its REP gets a router id; the RTU finds b */
	assert_int_equal(cm_send(t.b, t.ib, UMAD_CM_ATTR_REP, 0x2222, 0x700, 2), HDR_NEW + 256);
	uint32_t wb = get32(sent_mad(x, 0) + 24);
	assert_int_equal(get32(sent_mad(x, 0) + 28), 0x700);
	cm_wire(x, UMAD_CM_ATTR_RTU, 0x700, wb, 2);
	assert_int_equal(cm_read(t.b, &l, &rm), 0);
	assert_int_equal(rm, 0x2222);
	umx_node_free(t.na);
	umx_node_free(t.nb);
}

/* DREQ/DREP end a connection: its ids stay mapped for the grace period */
static void teardown_and_grace(void **state)
{
	(void)state;
	struct umx_limits lim = { .cm_grace_ms = 5000 };
	struct fx *x = fx_new(&lim);
	struct two t;
	uint32_t l, rm;
	now = 1000000000ull;
	umx_router_set_clock(x->r, clk);
	two_clients(x, &t);
	assert_int_equal(cm_send(t.a, t.ia, UMAD_CM_ATTR_REQ, 0x33, 0, 1), HDR_NEW + 256);
	uint32_t wa = get32(sent_mad(x, 0) + 24);
	cm_wire(x, UMAD_CM_ATTR_REP, 0x44, wa, 1);
	assert_int_equal(cm_send(t.a, t.ia, UMAD_CM_ATTR_RTU, 0x33, 0x44, 1), HDR_NEW + 256);
	assert_int_equal(cm_send(t.a, t.ia, UMAD_CM_ATTR_DREQ, 0x33, 0x44, 1), HDR_NEW + 256);
	/* a DREQ only starts the wait for the DREP: a slow DREP (longer than
	 * the grace period) still finds the connection */
	now += 6000000000ull;
	umx_router_tick(x->r);
	assert_int_equal(stats(x).cm_ids, 1);
	cm_wire(x, UMAD_CM_ATTR_DREP, 0x44, wa, 1);
	assert_int_equal(cm_read(t.a, &l, &rm), 0);   /* REP */
	assert_int_equal(cm_read(t.a, &l, &rm), 0);   /* DREP */
	assert_int_equal(rm, 0x33);
	/* the DREP ended it: the grace period (5 s) counts from there */
	now += 4000000000ull;
	umx_router_tick(x->r);
	assert_int_equal(stats(x).cm_ids, 1);
	now += 1000000000ull;
	umx_router_tick(x->r);
	assert_int_equal(stats(x).cm_ids, 0);
	cm_wire(x, UMAD_CM_ATTR_DREP, 0x44, wa, 1);
	assert_int_equal(cm_read(t.a, &l, &rm), -EAGAIN);
	/* a DREQ that never gets a DREP: gone after ib_cm's retries (~64 s) + grace */
	assert_int_equal(cm_send(t.a, t.ia, UMAD_CM_ATTR_REQ, 0x35, 0, 1), HDR_NEW + 256);
	assert_int_equal(cm_send(t.a, t.ia, UMAD_CM_ATTR_DREQ, 0x35, 0x45, 1), HDR_NEW + 256);
	now += 60000000000ull;
	umx_router_tick(x->r);
	assert_int_equal(stats(x).cm_ids, 1);
	now += 10000000000ull;
	umx_router_tick(x->r);
	assert_int_equal(stats(x).cm_ids, 0);
	umx_node_free(t.na);
	umx_node_free(t.nb);
	fx_free(x);
}

/* SIDR: the request id of SIDR_REQ is remapped, SIDR_REP carries it back */
static void sidr(void **state)
{
	struct fx *x = *state;
	struct two t;
	uint32_t l, rm;
	two_clients(x, &t);
	assert_int_equal(cm_send(t.a, t.ia, UMAD_CM_ATTR_SIDR_REQ, 0x55, 0, 1), HDR_NEW + 256);
	assert_int_equal(cm_send(t.b, t.ib, UMAD_CM_ATTR_SIDR_REQ, 0x55, 0, 2), HDR_NEW + 256);
	uint32_t wa = get32(sent_mad(x, 0) + 24);
	assert_int_not_equal(wa, get32(sent_mad(x, 1) + 24));
	cm_wire(x, UMAD_CM_ATTR_SIDR_REP, wa, 0, 1);
	assert_int_equal(cm_read(t.a, &l, &rm), 0);
	assert_int_equal(l, 0x55);
	assert_int_equal(cm_read(t.b, &l, &rm), -EAGAIN);
	umx_node_free(t.na);
	umx_node_free(t.nb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(same_comm_id_two_clients, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(req_steered_by_gid, fx_setup, fx_teardown),
		cmocka_unit_test(teardown_and_grace),
		cmocka_unit_test_setup_teardown(sidr, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests_name("cm", tests, NULL, NULL);
}
