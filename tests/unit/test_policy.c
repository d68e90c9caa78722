/*
 * test_policy.c - per-node policy: each refusal with its errno and counter
 * (core/policy.c), and that one node's policy never touches another node.
 */
#include "fixture.h"

static uint64_t fake_now;
static uint64_t fake_clock(void) { return fake_now; }

static struct umx_file *open_on(struct fx *x, const struct umx_node_policy *pol, struct umx_node **np)
{
	*np = umx_node_new(x->r, 5, pol);
	struct umx_file *f = umx_file_open(*np, NULL);
	assert_int_equal(enable_pkey(f), 0);
	return f;
}

static ssize_t send_with(struct umx_file *f, uint32_t id, uint8_t cls, uint16_t pkey_index)
{
	struct pkt p;
	struct ib_user_mad_hdr h;
	pkt_build(&p, f, id, cls, UMAD_METHOD_GET, 1, 0);
	memcpy(&h, p.buf, sizeof(h));
	h.pkey_index = pkey_index;
	memcpy(p.buf, &h, sizeof(h));
	return pkt_send(f, &p);
}

/* classes: registering or sending a class the node may not use -> EPERM */
static void class_allow_list(void **state)
{
	struct fx *x = *state;
	struct umx_node_policy pol = UMX_NODE_POLICY_DEFAULT;
	struct umx_node *n;
	umx_policy_allow_class(&pol, 0x04);
	struct umx_file *f = open_on(x, &pol, &n);
	uint32_t id = 0;
	assert_int_equal(reg2(f, 1, 0x09, 1, M(1), 0, 0, 0, NULL), -EPERM);
	assert_int_equal(umx_node_counter(n, UMX_C_REG_POLICY), 1);
	assert_int_equal(reg2(f, 1, 0x04, 1, M(1), 0, 0, 0, &id), 0);
	assert_int_equal(send_with(f, id, 0x04, 0), HDR_NEW + 256);
	assert_int_equal(send_with(f, id, 0x09, 0), -EPERM);
	assert_int_equal(umx_node_counter(n, UMX_C_TX_POLICY), 1);
	/* another node is not affected */
	struct umx_file *g = umx_file_open(x->n0, NULL);
	assert_int_equal(reg2(g, 1, 0x09, 1, M(1), 0, 0, 0, NULL), 0);
	assert_int_equal(umx_node_counter(x->n0, UMX_C_REG_POLICY), 0);
	umx_file_release(g);
	umx_node_free(n);
}

/* P_Key index list: sends on another index -> EPERM; unsolicited MADs that
 * arrived on another index are dropped and counted */
static void pkey_index_list(void **state)
{
	struct fx *x = *state;
	struct umx_node_policy pol = UMX_NODE_POLICY_DEFAULT;
	pol.npkeys = 2;
	pol.pkey_index[0] = 0;
	pol.pkey_index[1] = 3;
	struct umx_node *n;
	struct umx_file *f = open_on(x, &pol, &n);
	uint32_t id = 0;
	assert_int_equal(reg2(f, 1, 0x09, 1, M(UMAD_METHOD_GET), 0, 0, 0, &id), 0);
	assert_int_equal(send_with(f, id, 0x09, 3), HDR_NEW + 256);
	assert_int_equal(send_with(f, id, 0x09, 1), -EPERM);
	assert_int_equal(umx_node_counter(n, UMX_C_TX_POLICY), 1);

	uint8_t buf[HDR_NEW + 256];
	struct ib_user_mad_hdr h;
	wire_build(buf, 1, 0x09, 1, UMAD_METHOD_GET, 5, 0);
	memcpy(&h, buf, sizeof(h));
	h.pkey_index = 2;
	memcpy(buf, &h, sizeof(h));
	umx_router_input(x->r, buf, sizeof(buf));
	assert_int_equal(umx_node_counter(n, UMX_C_RX_PKEY), 1);
	assert_false(umx_file_readable(f));
	h.pkey_index = 3;
	memcpy(buf, &h, sizeof(h));
	umx_router_input(x->r, buf, sizeof(buf));
	assert_true(umx_file_readable(f));
	umx_node_free(n);
}

/* token bucket: burst, then refill at the configured rate -> ENOBUFS */
static void rate_limit(void **state)
{
	struct fx *x = *state;
	struct umx_node_policy pol = UMX_NODE_POLICY_DEFAULT;
	pol.rate = 100;
	pol.burst = 5;
	fake_now = 1000000000ull;
	umx_router_set_clock(x->r, fake_clock);
	struct umx_node *n;
	struct umx_file *f = open_on(x, &pol, &n);
	uint32_t id = 0;
	assert_int_equal(reg2(f, 1, 0, 0, 0, 0, 0, 0, &id), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(send_with(f, id, 0x09, 0), HDR_NEW + 256);
	assert_int_equal(send_with(f, id, 0x09, 0), -ENOBUFS);
	assert_int_equal(umx_node_counter(n, UMX_C_TX_RATE), 1);
	fake_now += 10000000;        /* 10 ms at 100/s = one token */
	assert_int_equal(send_with(f, id, 0x09, 0), HDR_NEW + 256);
	assert_int_equal(send_with(f, id, 0x09, 0), -ENOBUFS);
	fake_now += 3600ull * 1000000000ull;  /* an hour idle: a full bucket, no overflow */
	for (int i = 0; i < 5; i++)
		assert_int_equal(send_with(f, id, 0x09, 0), HDR_NEW + 256);
	assert_int_equal(send_with(f, id, 0x09, 0), -ENOBUFS);
	assert_int_equal(umx_node_counter(n, UMX_C_TX_RATE), 3);
	/* the refused sends never reached the port */
	assert_int_equal(x->port.nsent, 11);
	umx_node_free(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(class_allow_list, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(pkey_index_list, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(rate_limit, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
