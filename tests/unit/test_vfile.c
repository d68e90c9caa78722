/*
 * test_vfile.c - the virtual umad file against the kernel's user_mad.c
 * rules (ioctls, write checks, read/poll semantics).  Each test names the
 * kernel function whose behaviour it checks.
 */
#include "fixture.h"

/* ib_umad_open(): a new file uses the old header (hdr_size() = 56) */
static void open_uses_old_header(void **state)
{
	struct fx *x = *state;
	struct umx_file *f = umx_file_open(x->n0, NULL);
	assert_int_equal(umx_file_hdr_size(f), HDR_OLD);
	assert_int_equal(HDR_OLD, 56);
	assert_int_equal(enable_pkey(f), 0);
	assert_int_equal(umx_file_hdr_size(f), HDR_NEW);
	assert_int_equal(HDR_NEW, 64);
	umx_file_release(f);
}

/* ib_umad_enable_pkey(): EINVAL once an agent was ever registered */
static void enable_pkey_after_register(void **state)
{
	struct fx *x = *state;
	struct umx_file *f = umx_file_open(x->n0, NULL);
	uint32_t id = 0;
	assert_int_equal(reg1(f, 1, 0x09, 1, M(1), &id), 0);
	assert_int_equal(enable_pkey(f), -EINVAL);
	assert_int_equal(unreg(f, id), 0);
	/* already_used is sticky */
	assert_int_equal(enable_pkey(f), -EINVAL);
	assert_int_equal(umx_file_hdr_size(f), HDR_OLD);
	umx_file_release(f);
}

/* ib_umad_reg_agent2(): the first registration switches to the new header;
 * ib_umad_reg_agent(): the old ioctl stays usable after ENABLE_PKEY */
static void agent2_enables_pkey_and_old_register_still_works(void **state)
{
	struct fx *x = *state;
	struct umx_file *f = umx_file_open(x->n0, NULL);
	uint32_t id = 0;
	assert_int_equal(reg2(f, 1, 0, 0, 0, 0, 0, 0, &id), 0);
	assert_int_equal(umx_file_hdr_size(f), HDR_NEW);
	umx_file_release(f);

	f = umx_file_open(x->n0, NULL);
	assert_int_equal(enable_pkey(f), 0);
	assert_int_equal(reg1(f, 1, 0x09, 1, M(1), &id), 0);
	assert_int_equal(id, 0);
	assert_int_equal(umx_file_hdr_size(f), HDR_NEW);
	umx_file_release(f);
}

/* ib_umad_reg_agent{,2}(): "invalid QPN" */
static void register_bad_qpn(void **state)
{
	struct fx *x = *state;
	struct umx_file *f = umx_file_open(x->n0, NULL);
	assert_int_equal(reg2(f, 2, 0x09, 1, M(1), 0, 0, 0, NULL), -EINVAL);
	assert_int_equal(reg1(f, 7, 0x09, 1, M(1), NULL), -EINVAL);
	/* a refused registration does not mark the file used */
	assert_int_equal(enable_pkey(f), 0);
	umx_file_release(f);
}

/* ib_umad_reg_agent2(): unsupported flags -> EINVAL with the supported
 * flags written back into the caller's struct */
static void register2_bad_flags_writes_cap(void **state)
{
	struct fx *x = *state;
	struct umx_file *f = umx_file_open(x->n0, NULL);
	struct ib_user_mad_reg_req2 q;
	bool co = false;
	memset(&q, 0, sizeof(q));
	q.qpn = 1;
	q.mgmt_class = 0x09;
	q.mgmt_class_version = 1;
	q.flags = 0x6;
	assert_int_equal(umx_file_ioctl(f, IB_USER_MAD_REGISTER_AGENT2, &q, &co), -EINVAL);
	assert_true(co);
	assert_int_equal(q.flags, IB_USER_MAD_REG_FLAGS_CAP);
	umx_file_release(f);
}

/* "Max Agents (32) reached" -> ENOMEM; the id is the first free slot */
static void agent_slots(void **state)
{
	struct fx *x = *state;
	struct umx_file *f = umx_file_open(x->n0, NULL);
	uint32_t id = 0;
	for (uint32_t i = 0; i < 32; i++) {
		assert_int_equal(reg2(f, 1, 0, 0, 0, 0, 0, 0, &id), 0);
		assert_int_equal(id, i);
	}
	assert_int_equal(reg2(f, 1, 0, 0, 0, 0, 0, 0, &id), -ENOMEM);
	/* the slot check comes before the class checks, as in the kernel */
	assert_int_equal(reg2(f, 1, 0x50, 1, M(1), 0, 0, 0, &id), -ENOMEM);
	assert_int_equal(unreg(f, 5), 0);
	assert_int_equal(reg2(f, 1, 0, 0, 0, 0, 0, 0, &id), 0);
	assert_int_equal(id, 5);
	/* 32 send-only agents share one real send agent */
	assert_int_equal(x->port.live, 1);
	umx_file_release(f);
	assert_int_equal(x->port.live, 0);
}

/* ib_register_mad_agent(): class, version, OUI, RMPP and QP checks */
static void register_class_checks(void **state)
{
	struct fx *x = *state;
	struct umx_file *f = umx_file_open(x->n0, NULL);
	/* class version >= MAX_MGMT_VERSION (0x83 since OPA: kernel 6.1 in the
	 * VM accepts versions 8, 9 and 128) */
	assert_int_equal(reg2(f, 1, 0x09, 0x83, M(1), 0, 0, 0, NULL), -EINVAL);
	assert_int_equal(reg2(f, 1, 0x09, 0x82, M(1), 0, 0, 0, NULL), 0);
	/* class >= MAX_MGMT_CLASS other than directed route */
	assert_int_equal(reg2(f, 1, 0x50, 1, M(1), 0, 0, 0, NULL), -EINVAL);
	assert_int_equal(reg2(f, 0, 0x81, 1, M(1), 0, 0, 0, NULL), 0);
	/* vendor range 2 needs an OUI; AGENT2 refuses an OUI over 24 bits */
	assert_int_equal(reg2(f, 1, 0x32, 1, M(1), 0, 0, 0, NULL), -EINVAL);
	assert_int_equal(reg2(f, 1, 0x32, 1, M(1), 0x01001405, 0, 0, NULL), -EINVAL);
	assert_int_equal(reg2(f, 1, 0x32, 1, M(1), 0x001405, 0, 0, NULL), 0);
	/* RMPP version must be 0 or 1, and only for RMPP classes */
	assert_int_equal(reg2(f, 1, 0x03, 2, M(1), 0, 2, 0, NULL), -EINVAL);
	assert_int_equal(reg2(f, 1, 0x04, 1, M(1), 0, 1, 0, NULL), -EINVAL);
	assert_int_equal(reg2(f, 1, 0x03, 2, M(1), 0, 1, 0, NULL), 0);
	/* class must fit the QP: SMP classes on QP0 only, GMPs on QP1 only */
	assert_int_equal(reg2(f, 0, 0x04, 1, M(1), 0, 0, 0, NULL), -EINVAL);
	assert_int_equal(reg2(f, 1, 0x01, 1, M(1), 0, 0, 0, NULL), -EINVAL);
	/* a send-only agent cannot ask for user RMPP */
	assert_int_equal(reg2(f, 1, 0, 0, 0, 0, 0, IB_USER_MAD_USER_RMPP, NULL), -EINVAL);
	umx_file_release(f);
}

/* method_in_use() / is_vendor_method_in_use(): conflicts are port-wide */
static void method_conflicts_across_clients(void **state)
{
	struct fx *x = *state;
	struct umx_file *a = umx_file_open(x->n0, NULL), *b = umx_file_open(x->n1, NULL);
	assert_int_equal(reg2(a, 1, 0x09, 1, M(1) | M(2), 0, 0, 0, NULL), 0);
	assert_int_equal(reg2(b, 1, 0x09, 1, M(2), 0, 0, 0, NULL), -EINVAL);
	assert_int_equal(reg2(a, 1, 0x09, 1, M(2), 0, 0, 0, NULL), -EINVAL);
	/* other methods, other class versions: no conflict */
	assert_int_equal(reg2(b, 1, 0x09, 1, M(3), 0, 0, 0, NULL), 0);
	assert_int_equal(reg2(b, 1, 0x09, 2, M(1), 0, 0, 0, NULL), 0);
	/* vendor range 2: conflicts are per OUI */
	assert_int_equal(reg2(a, 1, 0x33, 1, M(1), 0x001405, 0, 0, NULL), 0);
	assert_int_equal(reg2(b, 1, 0x33, 1, M(1), 0x001406, 0, 0, NULL), 0);
	assert_int_equal(reg2(b, 1, 0x33, 1, M(1), 0x001405, 0, 0, NULL), -EINVAL);
	umx_file_release(a);
	/* a's methods are free again */
	assert_int_equal(reg2(b, 1, 0x09, 1, M(2), 0, 0, 0, NULL), 0);
	umx_file_release(b);
	assert_int_equal(x->port.live, 0);
}

/* ib_register_mad_agent(): a port without QP0 -> EPROTONOSUPPORT; the mux
 * gives an unprivileged node the same answer */
static void qp0_policy_and_port_without_qp0(void **state)
{
	struct fx *x = *state;
	struct umx_node_policy pol = { .privileged = false, .gid_index = -1 };
	struct umx_node *n = umx_node_new(x->r, 7, &pol);
	struct umx_file *f = umx_file_open(n, NULL);
	assert_int_equal(reg2(f, 0, 0x81, 1, M(1), 0, 0, 0, NULL), -EPROTONOSUPPORT);
	assert_int_equal(umx_node_counter(n, UMX_C_REG_POLICY), 1);
	assert_int_equal(reg2(f, 1, 0x04, 1, M(1), 0, 0, 0, NULL), 0);
	umx_node_free(n);

	struct umx_file *g = umx_file_open(x->n0, NULL);
	x->port.no_qp0 = true;
	assert_int_equal(reg2(g, 0, 0x01, 1, M(1), 0, 0, 0, NULL), -EPROTONOSUPPORT);
	/* the missing QP is reported before the class/QP mismatch, as kernel
	 * 6.1 does on rxe (class 0x04 on QP0: EPROTONOSUPPORT, not EINVAL) */
	assert_int_equal(reg2(g, 0, 0x04, 1, M(1), 0, 0, 0, NULL), -EPROTONOSUPPORT);
	assert_int_equal(reg2(g, 1, 0x01, 1, M(1), 0, 0, 0, NULL), -EINVAL);
	umx_file_release(g);
}

/* ib_umad_unreg_agent(): bad or free id -> EINVAL; ib_umad_ioctl(): ENOTTY */
static void unregister_and_unknown_ioctl(void **state)
{
	struct fx *x = *state;
	struct umx_file *f = umx_file_open(x->n0, NULL);
	bool co;
	uint32_t v = 0;
	assert_int_equal(unreg(f, 32), -EINVAL);
	assert_int_equal(unreg(f, 0), -EINVAL);
	assert_int_equal(umx_file_ioctl(f, _IOR(0x1b, 9, uint32_t), &v, &co), -ENOTTY);
	umx_file_release(f);
}

/* ib_umad_write(): short -> EINVAL, id >= 32 -> EINVAL, free slot -> EIO */
static void write_checks(void **state)
{
	struct fx *x = *state;
	struct umx_file *f = umx_file_open(x->n0, NULL);
	struct pkt p;
	uint32_t id = 0;
	assert_int_equal(enable_pkey(f), 0);
	pkt_build(&p, f, 0, 0x09, UMAD_METHOD_GET, 1, 0);
	assert_int_equal(umx_file_write(f, p.buf, HDR_NEW + 35), -EINVAL);
	assert_int_equal(pkt_send(f, &p), -EIO);
	pkt_build(&p, f, 32, 0x09, UMAD_METHOD_GET, 1, 0);
	assert_int_equal(pkt_send(f, &p), -EINVAL);
	assert_int_equal(reg2(f, 1, 0, 0, 0, 0, 0, 0, &id), 0);
	pkt_build(&p, f, id, 0x09, UMAD_METHOD_GET, 1, 0);
	assert_int_equal(umx_file_write(f, p.buf, HDR_NEW + 36), HDR_NEW + 36);
	assert_int_equal(pkt_send(f, &p), HDR_NEW + 256);
	assert_int_equal(x->port.nsent, 2);
	umx_file_release(f);
}

/* ib_umad_read(): count < hdr_size -> EINVAL even when empty; empty ->
 * EAGAIN; ib_umad_poll(): POLLOUT always, POLLIN only with a packet */
static void read_empty_and_poll(void **state)
{
	struct fx *x = *state;
	struct umx_file *f = umx_file_open(x->n0, NULL);
	uint8_t buf[512];
	assert_int_equal(umx_file_read(f, buf, HDR_OLD - 1), -EINVAL);
	assert_int_equal(umx_file_read(f, buf, sizeof(buf)), -EAGAIN);
	assert_int_equal(umx_file_poll(f), POLLOUT | POLLWRNORM);
	assert_false(umx_file_readable(f));
	umx_file_release(f);
}

/* deliver one unsolicited Get of class 0x09 to the agent owning it */
static struct umx_file *file_with_get_owner(struct fx *x, bool pkey, uint32_t *id)
{
	struct umx_file *f = umx_file_open(x->n0, NULL);
	if (pkey)
		assert_int_equal(enable_pkey(f), 0);
	assert_int_equal(reg1(f, 1, 0x09, 1, M(UMAD_METHOD_GET), id), 0);
	return f;
}

static void inject(struct fx *x, uint8_t cls, uint8_t method, uint64_t tid, size_t madlen)
{
	uint8_t buf[HDR_NEW + 2048];
	memset(buf, 0, sizeof(buf));
	wire_build(buf, 0, cls, 1, method, tid, 0);
	umx_router_input(x->r, buf, HDR_NEW + madlen);
}

/* recv_handler()/queue_packet()/copy_recv_mad(): header format, length,
 * agent id, requeue on a short buffer */
static void read_header_formats_and_requeue(void **state)
{
	struct fx *x = *state;
	uint8_t buf[HDR_NEW + 256];
	uint32_t id = 0;
	struct umx_file *f = file_with_get_owner(x, false, &id);

	inject(x, 0x09, UMAD_METHOD_GET, 0x1234, 256);
	assert_int_equal(x->readable_events, 1);
	assert_ptr_equal(x->last_readable, f);
	assert_int_equal(umx_file_poll(f), POLLOUT | POLLWRNORM | POLLIN | POLLRDNORM);
	/* too small for header + MAD: EINVAL, packet stays */
	assert_int_equal(umx_file_read(f, buf, HDR_OLD + 255), -EINVAL);
	assert_true(umx_file_readable(f));
	assert_int_equal(umx_file_read(f, buf, sizeof(buf)), HDR_OLD + 256);
	struct ib_user_mad_hdr_old h;
	memcpy(&h, buf, sizeof(h));
	assert_int_equal(h.id, id);
	assert_int_equal(h.length, HDR_OLD + 256);
	assert_int_equal(h.status, 0);
	assert_int_equal(be16toh(h.lid), 7);
	assert_int_equal(umx_mad_tid(buf + HDR_OLD), 0x1234);
	assert_false(umx_file_readable(f));
	umx_file_release(f);

	/* the new format carries pkey_index and length = 64 + MAD */
	f = file_with_get_owner(x, true, &id);
	inject(x, 0x09, UMAD_METHOD_GET, 0x99, 256);
	assert_int_equal(umx_file_read(f, buf, sizeof(buf)), HDR_NEW + 256);
	struct ib_user_mad_hdr hn;
	memcpy(&hn, buf, sizeof(hn));
	assert_int_equal(hn.length, HDR_NEW + 256);
	umx_file_release(f);
}

/* copy_recv_mad(): an RMPP message needs room for its first segment
 * (else EINVAL) and for all of it (else ENOSPC); it stays queued */
static void read_rmpp_sizes(void **state)
{
	struct fx *x = *state;
	uint8_t buf[HDR_NEW + 2048];
	uint32_t id = 0;
	struct umx_file *f = file_with_get_owner(x, true, &id);
	inject(x, 0x09, UMAD_METHOD_GET, 5, 1000);
	assert_int_equal(umx_file_read(f, buf, HDR_NEW + 255), -EINVAL);
	assert_int_equal(umx_file_read(f, buf, HDR_NEW + 256), -ENOSPC);
	assert_int_equal(umx_file_read(f, buf, HDR_NEW + 999), -ENOSPC);
	assert_int_equal(umx_file_read(f, buf, HDR_NEW + 1000), HDR_NEW + 1000);
	umx_file_release(f);
}

/* queue_packet(): beyond the limit the newest received MAD is dropped */
static void recv_queue_limit(void **state)
{
	(void)state;
	struct umx_limits lim = { .recv_queue_max = 3 };
	struct fx *x = fx_new(&lim);
	uint32_t id = 0;
	struct umx_file *f = file_with_get_owner(x, true, &id);
	for (int i = 0; i < 5; i++)
		inject(x, 0x09, UMAD_METHOD_GET, 100 + i, 256);
	assert_int_equal(umx_router_counter(x->r, UMX_C_RX_QUEUE_FULL), 2);
	assert_int_equal(umx_node_counter(x->n0, UMX_C_RX_QUEUE_FULL), 2);
	uint8_t buf[HDR_NEW + 256];
	for (int i = 0; i < 3; i++) {
		assert_int_equal(umx_file_read(f, buf, sizeof(buf)), HDR_NEW + 256);
		assert_int_equal(umx_mad_tid(buf + HDR_NEW), 100 + i);
	}
	assert_int_equal(umx_file_read(f, buf, sizeof(buf)), -EAGAIN);
	umx_file_release(f);
	fx_free(x);
}

/* queue_packet() stamped the id: unregistering keeps queued packets */
static void unregister_keeps_queued_packets(void **state)
{
	struct fx *x = *state;
	uint32_t id = 0;
	uint8_t buf[HDR_NEW + 256];
	struct umx_file *f = file_with_get_owner(x, true, &id);
	inject(x, 0x09, UMAD_METHOD_GET, 77, 256);
	assert_int_equal(unreg(f, id), 0);
	assert_int_equal(umx_file_read(f, buf, sizeof(buf)), HDR_NEW + 256);
	assert_int_equal(umx_mad_tid(buf + HDR_NEW), 77);
	/* nobody owns Get now: the next one is dropped and counted */
	inject(x, 0x09, UMAD_METHOD_GET, 78, 256);
	assert_int_equal(umx_router_counter(x->r, UMX_C_RX_NO_OWNER), 1);
	umx_file_release(f);
}

/* ib_umad_close(): everything the file held is released */
static void release_frees_everything(void **state)
{
	struct fx *x = *state;
	uint32_t id = 0;
	struct umx_file *f = file_with_get_owner(x, true, &id);
	struct pkt p;
	inject(x, 0x09, UMAD_METHOD_GET, 1, 256);
	pkt_build(&p, f, id, 0x09, UMAD_METHOD_GET, 42, 100);
	assert_int_equal(pkt_send(f, &p), HDR_NEW + 256);
	struct umx_router_stats st = stats(x);
	assert_int_equal(st.files, 1);
	assert_int_equal(st.tids_in_use, 1);
	assert_int_equal(st.queued_packets, 1);
	umx_file_release(f);
	st = stats(x);
	assert_int_equal(st.files, 0);
	assert_int_equal(st.vagents, 0);
	/* only the idle send agent of the class it sent (kept as a cache) */
	assert_int_equal(st.idle_send_agents, 1);
	assert_int_equal(st.real_agents, 1);
	assert_int_equal(st.tids_in_use, 0);
	assert_int_equal(st.queued_packets, 0);
	assert_int_equal(x->port.live, 1);
}

static void files_limit(void **state)
{
	(void)state;
	struct umx_limits lim = { .files_max = 2 };
	struct fx *x = fx_new(&lim);
	struct umx_file *a = umx_file_open(x->n0, NULL), *b = umx_file_open(x->n1, NULL);
	assert_non_null(a);
	assert_non_null(b);
	errno = 0;
	assert_null(umx_file_open(x->n0, NULL));
	assert_int_equal(errno, EMFILE);
	fx_free(x);   /* the router releases open files */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
		T(open_uses_old_header),
		T(enable_pkey_after_register),
		T(agent2_enables_pkey_and_old_register_still_works),
		T(register_bad_qpn),
		T(register2_bad_flags_writes_cap),
		T(agent_slots),
		T(register_class_checks),
		T(method_conflicts_across_clients),
		T(qp0_policy_and_port_without_qp0),
		T(unregister_and_unknown_ioctl),
		T(write_checks),
		T(read_empty_and_poll),
		T(read_header_formats_and_requeue),
		T(read_rmpp_sizes),
		cmocka_unit_test(recv_queue_limit),
		T(unregister_keeps_queued_packets),
		T(release_frees_everything),
		cmocka_unit_test(files_limit),
	};
	return cmocka_run_group_tests_name("vfile", tests, NULL, NULL);
}
