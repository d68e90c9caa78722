/*
 * test_router.c - the router on a fake port: real agents (union of method
 * masks, shared send agents), TID remapping of requests, responses and
 * timeouts back to the right client, steering of unsolicited requests,
 * bounds and counters, and that nothing leaks.
 */
#include "fixture.h"

#define UMX_SEND_CLASS_AGENTS_PUBLIC 32

static uint32_t real_send_id(struct fx *x, unsigned i)
{
	return sent_hdr(x, i)->id;
}

/* deliver a packet "from the wire" */
static void wire(struct fx *x, uint32_t real_agent, uint8_t cls, uint8_t ver, uint8_t method,
		 uint64_t tid, uint32_t status, size_t madlen)
{
	uint8_t buf[HDR_NEW + 256];
	wire_build(buf, real_agent, cls, ver, method, tid, status);
	umx_router_input(x->r, buf, HDR_NEW + madlen);
}

static uint64_t read_tid(struct umx_file *f, struct ib_user_mad_hdr *h, ssize_t *n)
{
	uint8_t buf[HDR_NEW + 256];
	*n = umx_file_read(f, buf, sizeof(buf));
	if (*n < 0)
		return 0;
	memcpy(h, buf, umx_file_hdr_size(f));
	return umx_mad_tid(buf + umx_file_hdr_size(f));
}

static struct umx_file *open_pkey(struct umx_node *n)
{
	struct umx_file *f = umx_file_open(n, NULL);
	assert_int_equal(enable_pkey(f), 0);
	return f;
}

/* one real receive agent per new set of methods, never overlapping;
 * unregistered once none of its methods is owned */
static void union_of_methods(void **state)
{
	struct fx *x = *state;
	struct umx_file *a = open_pkey(x->n0), *b = open_pkey(x->n1);
	uint32_t ia = 0, ib = 0;
	assert_int_equal(reg2(a, 1, 0x09, 1, M(UMAD_METHOD_GET), 0, 0, 0, &ia), 0);
	assert_int_equal(x->port.live, 2);   /* send agent + receive agent {Get} */
	assert_int_equal(reg2(b, 1, 0x09, 1, M(UMAD_METHOD_SET), 0, 0, 0, &ib), 0);
	assert_int_equal(x->port.live, 3);   /* + receive agent {Set} */
	/* the fake port refuses overlaps like the kernel: none happened */
	wire(x, 1, 0x09, 1, UMAD_METHOD_GET, 0x100, 0, 256);
	wire(x, 2, 0x09, 1, UMAD_METHOD_SET, 0x200, 0, 256);
	struct ib_user_mad_hdr h;
	ssize_t n;
	assert_int_equal(read_tid(a, &h, &n), 0x100);
	assert_int_equal(h.id, ia);
	assert_int_equal(read_tid(b, &h, &n), 0x200);
	assert_int_equal(h.id, ib);
	assert_int_equal(umx_file_read(a, &h, sizeof(h)), -EAGAIN);
	assert_int_equal(unreg(a, ia), 0);
	assert_int_equal(x->port.live, 2);
	umx_file_release(b);
	assert_int_equal(x->port.live, 0);
	umx_file_release(a);
}

/* a method freed by one client and taken by another reuses the real agent
 * that still holds it */
static void method_handover_keeps_real_agent(void **state)
{
	struct fx *x = *state;
	struct umx_file *a = open_pkey(x->n0), *b = open_pkey(x->n1);
	uint32_t ia = 0;
	assert_int_equal(reg2(a, 1, 0x0a, 1, M(1) | M(2), 0, 0, 0, &ia), 0);
	assert_int_equal(reg2(b, 1, 0x0a, 1, M(3), 0, 0, 0, NULL), 0);
	unsigned regs = x->port.regs;
	assert_int_equal(unreg(a, ia), 0);
	assert_int_equal(reg2(b, 1, 0x0a, 1, M(1), 0, 0, 0, NULL), 0);
	assert_int_equal(x->port.regs, regs + 1);
	umx_file_release(a);
	umx_file_release(b);
	assert_int_equal(x->port.live, 0);
}

/* TID remap: two clients use the same TID at once; each gets its own
 * response with its own TID (upper 32 bits = its agent's hi_tid) */
static void colliding_tids_return_to_their_clients(void **state)
{
	struct fx *x = *state;
	struct umx_file *a = open_pkey(x->n0), *b = open_pkey(x->n1);
	uint32_t ia = 0, ib = 0;
	struct pkt p;
	assert_int_equal(reg2(a, 1, 0, 0, 0, 0, 0, 0, &ia), 0);
	assert_int_equal(reg2(b, 1, 0, 0, 0, 0, 0, 0, &ib), 0);
	pkt_build(&p, a, ia, 0x04, UMAD_METHOD_GET, 0xabcd00000007ull, 100);
	assert_int_equal(pkt_send(a, &p), HDR_NEW + 256);
	pkt_build(&p, b, ib, 0x04, UMAD_METHOD_GET, 0x7, 100);
	assert_int_equal(pkt_send(b, &p), HDR_NEW + 256);
	uint64_t wa = umx_mad_tid(sent_mad(x, 0)), wb = umx_mad_tid(sent_mad(x, 1));
	assert_int_not_equal((uint32_t)wa, (uint32_t)wb);
	assert_int_equal(real_send_id(x, 0), real_send_id(x, 1));
	assert_int_equal(stats(x).tids_in_use, 2);
	/* responses arrive in the other order, the kernel's hi_tid on top */
	wire(x, real_send_id(x, 1), 0x04, 1, UMAD_METHOD_GET_RESP, 0x55ull << 32 | (uint32_t)wb, 0, 256);
	wire(x, real_send_id(x, 0), 0x04, 1, UMAD_METHOD_GET_RESP, 0x55ull << 32 | (uint32_t)wa, 0, 256);
	struct ib_user_mad_hdr h;
	ssize_t n;
	uint64_t ta = read_tid(a, &h, &n);
	assert_int_equal(n, HDR_NEW + 256);
	assert_int_equal(h.id, ia);
	assert_int_equal((uint32_t)ta, 7);
	uint64_t tb = read_tid(b, &h, &n);
	assert_int_equal(h.id, ib);
	assert_int_equal((uint32_t)tb, 7);
	/* each client sees its own agent's hi_tid, like the kernel's */
	assert_int_not_equal(ta >> 32, tb >> 32);
	assert_int_not_equal(ta >> 32, 0);
	assert_int_equal(stats(x).tids_in_use, 0);
	/* a second copy of a response finds nothing */
	wire(x, real_send_id(x, 0), 0x04, 1, UMAD_METHOD_GET_RESP, (uint32_t)wa, 0, 256);
	assert_int_equal(umx_router_counter(x->r, UMX_C_RX_UNMATCHED_RESP), 1);
	assert_int_equal(umx_file_read(a, &h, sizeof(h)), -EAGAIN);
	umx_file_release(a);
	umx_file_release(b);
}

/* send_handler(): a timed-out request comes back to its sender with
 * status ETIMEDOUT, its own TID and only the 24-byte MAD header */
static void timeout_returns_to_sender(void **state)
{
	struct fx *x = *state;
	struct umx_file *a = open_pkey(x->n0);
	uint32_t ia = 0;
	struct pkt p;
	assert_int_equal(reg2(a, 1, 0, 0, 0, 0, 0, 0, &ia), 0);
	pkt_build(&p, a, ia, 0x04, UMAD_METHOD_GET, 0x31, 50);
	assert_int_equal(pkt_send(a, &p), HDR_NEW + 256);
	uint64_t w = umx_mad_tid(sent_mad(x, 0));
	/* the kernel hands back our header and the first 24 bytes */
	wire(x, real_send_id(x, 0), 0x04, 1, UMAD_METHOD_GET, 0x9ull << 32 | (uint32_t)w, ETIMEDOUT, 24);
	uint8_t buf[HDR_NEW + 256];
	assert_int_equal(umx_file_read(a, buf, HDR_NEW + 23), -EINVAL);
	assert_int_equal(umx_file_read(a, buf, sizeof(buf)), HDR_NEW + 24);
	struct ib_user_mad_hdr h;
	memcpy(&h, buf, sizeof(h));
	assert_int_equal(h.status, ETIMEDOUT);
	assert_int_equal(h.id, ia);
	assert_int_equal((uint32_t)umx_mad_tid(buf + HDR_NEW), 0x31);
	assert_int_equal(umx_router_counter(x->r, UMX_C_RX_TIMEOUTS), 1);
	assert_int_equal(stats(x).tids_in_use, 0);
	umx_file_release(a);
}

/* ib_umad_write()/is_duplicate(): a second outstanding request with the
 * same TID from the same agent is refused; fine again once answered */
static void duplicate_outstanding_tid(void **state)
{
	struct fx *x = *state;
	struct umx_file *a = open_pkey(x->n0);
	uint32_t ia = 0, ia2 = 0;
	struct pkt p;
	assert_int_equal(reg2(a, 1, 0, 0, 0, 0, 0, 0, &ia), 0);
	assert_int_equal(reg2(a, 1, 0, 0, 0, 0, 0, 0, &ia2), 0);
	pkt_build(&p, a, ia, 0x04, UMAD_METHOD_GET, 0x40, 100);
	assert_int_equal(pkt_send(a, &p), HDR_NEW + 256);
	assert_int_equal(pkt_send(a, &p), -EINVAL);
	/* another agent (another hi_tid in the kernel) may reuse it */
	pkt_build(&p, a, ia2, 0x04, UMAD_METHOD_GET, 0x40, 100);
	assert_int_equal(pkt_send(a, &p), HDR_NEW + 256);
	uint64_t w = umx_mad_tid(sent_mad(x, 0));
	wire(x, real_send_id(x, 0), 0x04, 1, UMAD_METHOD_GET_RESP, (uint32_t)w, 0, 256);
	pkt_build(&p, a, ia, 0x04, UMAD_METHOD_GET, 0x40, 100);
	assert_int_equal(pkt_send(a, &p), HDR_NEW + 256);
	umx_file_release(a);
	assert_int_equal(stats(x).tids_in_use, 0);
}

/* requests without a timeout are not tracked but still get a unique TID;
 * responses go out with the client's TID untouched */
static void untracked_requests_and_responses(void **state)
{
	struct fx *x = *state;
	struct umx_file *a = open_pkey(x->n0), *b = open_pkey(x->n1);
	uint32_t ia = 0, ib = 0;
	struct pkt p;
	assert_int_equal(reg2(a, 1, 0, 0, 0, 0, 0, 0, &ia), 0);
	assert_int_equal(reg2(b, 1, 0, 0, 0, 0, 0, 0, &ib), 0);
	pkt_build(&p, a, ia, 0x09, UMAD_METHOD_SEND, 0x5, 0);
	assert_int_equal(pkt_send(a, &p), HDR_NEW + 256);
	pkt_build(&p, b, ib, 0x09, UMAD_METHOD_SEND, 0x5, 0);
	assert_int_equal(pkt_send(b, &p), HDR_NEW + 256);
	uint32_t w0 = (uint32_t)umx_mad_tid(sent_mad(x, 0)), w1 = (uint32_t)umx_mad_tid(sent_mad(x, 1));
	assert_int_equal(w0 & 0x80000000u, 0);
	assert_int_not_equal(w0, w1);
	assert_int_equal(stats(x).tids_in_use, 0);
	pkt_build(&p, a, ia, 0x09, UMAD_METHOD_GET_RESP, 0x1122334455667788ull, 0);
	assert_int_equal(pkt_send(a, &p), HDR_NEW + 256);
	assert_int_equal(umx_mad_tid(sent_mad(x, 2)), 0x1122334455667788ull);
	umx_file_release(a);
	umx_file_release(b);
}

/* the old 56-byte header is converted for the real port (pkey_index 0) */
static void old_header_write_is_converted(void **state)
{
	struct fx *x = *state;
	struct umx_file *a = umx_file_open(x->n0, NULL);
	uint32_t ia = 0;
	struct pkt p;
	assert_int_equal(reg1(a, 1, 0x09, 1, 0, &ia), 0);
	pkt_build(&p, a, ia, 0x09, UMAD_METHOD_GET, 3, 0);
	assert_int_equal(pkt_send(a, &p), HDR_OLD + 256);
	size_t len;
	assert_non_null(umx_fake_port_sent(&x->port, 0, &len));
	assert_int_equal(len, HDR_NEW + 256);
	const struct ib_user_mad_hdr *h = sent_hdr(x, 0);
	assert_int_equal(h->pkey_index, 0);
	assert_int_equal(be16toh(h->lid), 4);
	assert_int_equal(h->retries, 1);
	assert_int_equal(sent_mad(x, 0)[1], 0x09);
	umx_file_release(a);
}

/* bounds: per-file outstanding limit and the global table, each counted;
 * a refused send from the port frees its table entry */
static void bounds_and_port_errors(void **state)
{
	(void)state;
	struct umx_limits lim = { .outstanding_max = 3, .tid_table_size = 16 };
	struct fx *x = fx_new(&lim);
	struct umx_file *a = open_pkey(x->n0);
	uint32_t ia = 0;
	struct pkt p;
	assert_int_equal(reg2(a, 1, 0, 0, 0, 0, 0, 0, &ia), 0);
	for (uint64_t t = 0; t < 3; t++) {
		pkt_build(&p, a, ia, 0x04, UMAD_METHOD_GET, t, 100);
		assert_int_equal(pkt_send(a, &p), HDR_NEW + 256);
	}
	pkt_build(&p, a, ia, 0x04, UMAD_METHOD_GET, 3, 100);
	assert_int_equal(pkt_send(a, &p), -ENOMEM);
	assert_int_equal(umx_node_counter(x->n0, UMX_C_TX_OUTSTANDING), 1);
	umx_file_release(a);

	/* 16 entries shared by several files */
	struct umx_file *f[6];
	int sent = 0, full = 0;
	for (int i = 0; i < 6; i++) {
		f[i] = open_pkey(i % 2 ? x->n1 : x->n0);
		assert_int_equal(reg2(f[i], 1, 0, 0, 0, 0, 0, 0, &ia), 0);
		for (uint64_t t = 0; t < 3; t++) {
			pkt_build(&p, f[i], ia, 0x04, UMAD_METHOD_GET, t, 100);
			ssize_t r = pkt_send(f[i], &p);
			if (r > 0)
				sent++;
			else if (r == -ENOMEM)
				full++;
		}
	}
	assert_int_equal(sent, 16);
	assert_int_equal(full, 2);
	assert_int_equal(umx_router_counter(x->r, UMX_C_TX_TID_FULL), 2);
	for (int i = 0; i < 6; i++)
		umx_file_release(f[i]);
	assert_int_equal(stats(x).tids_in_use, 0);

	a = open_pkey(x->n0);
	assert_int_equal(reg2(a, 1, 0, 0, 0, 0, 0, 0, &ia), 0);
	x->port.fail_send = -EHOSTUNREACH;
	pkt_build(&p, a, ia, 0x04, UMAD_METHOD_GET, 9, 100);
	assert_int_equal(pkt_send(a, &p), -EHOSTUNREACH);
	assert_int_equal(umx_router_counter(x->r, UMX_C_TX_ERRORS), 1);
	assert_int_equal(stats(x).tids_in_use, 0);
	umx_file_release(a);
	fx_free(x);
}

/* policy: a node bound to a gid index may not send from another */
static void gid_index_policy(void **state)
{
	struct fx *x = *state;
	struct umx_node_policy pol = { .privileged = false, .gid_index = 1 };
	struct umx_node *n = umx_node_new(x->r, 9, &pol);
	struct umx_file *a = open_pkey(n);
	uint32_t ia = 0;
	struct pkt p;
	assert_int_equal(reg2(a, 1, 0, 0, 0, 0, 0, 0, &ia), 0);
	pkt_build(&p, a, ia, 0x04, UMAD_METHOD_GET, 1, 0);
	struct ib_user_mad_hdr h;
	memcpy(&h, p.buf, sizeof(h));
	h.grh_present = 1;
	h.gid_index = 0;
	memcpy(p.buf, &h, sizeof(h));
	assert_int_equal(pkt_send(a, &p), -EPERM);
	assert_int_equal(umx_node_counter(n, UMX_C_TX_POLICY), 1);
	h.gid_index = 1;
	memcpy(p.buf, &h, sizeof(h));
	assert_int_equal(pkt_send(a, &p), HDR_NEW + 256);
	umx_node_free(n);
}

/* find_mad_agent(): requests by version, class, method and (vendor range
 * 2) OUI; nobody's request is dropped and counted; a short packet too */
static void steering_by_version_and_oui(void **state)
{
	struct fx *x = *state;
	struct umx_file *a = open_pkey(x->n0), *b = open_pkey(x->n1);
	uint32_t ia = 0, ib = 0;
	assert_int_equal(reg2(a, 1, 0x34, 1, M(UMAD_METHOD_GET), 0x001405, 0, 0, &ia), 0);
	assert_int_equal(reg2(b, 1, 0x34, 1, M(UMAD_METHOD_GET), 0x0002c9, 0, 0, &ib), 0);
	uint8_t buf[HDR_NEW + 256];
	wire_build(buf, 1, 0x34, 1, UMAD_METHOD_GET, 0x10, 0);
	buf[HDR_NEW + 37] = 0x00; buf[HDR_NEW + 38] = 0x02; buf[HDR_NEW + 39] = 0xc9;
	umx_router_input(x->r, buf, sizeof(buf));
	struct ib_user_mad_hdr h;
	ssize_t n;
	assert_int_equal(read_tid(b, &h, &n), 0x10);
	assert_int_equal(h.id, ib);
	assert_int_equal(umx_file_read(a, buf, sizeof(buf)), -EAGAIN);
	/* version 2 of the class is nobody's */
	wire(x, 1, 0x34, 2, UMAD_METHOD_GET, 0x11, 0, 256);
	assert_int_equal(umx_router_counter(x->r, UMX_C_RX_NO_OWNER), 1);
	wire(x, 1, 0x34, 1, UMAD_METHOD_GET, 0x11, 0, 10);
	assert_int_equal(umx_router_counter(x->r, UMX_C_RX_SHORT), 1);
	umx_file_release(a);
	umx_file_release(b);
}

/* a client closed with requests in flight leaks nothing; late answers to
 * its transactions are dropped, even once the slots are reused */
static void release_mid_flight(void **state)
{
	struct fx *x = *state;
	struct umx_file *a = open_pkey(x->n0);
	uint32_t ia = 0;
	struct pkt p;
	assert_int_equal(reg2(a, 1, 0x09, 1, M(1), 0, 0, 0, &ia), 0);
	for (uint64_t t = 0; t < 10; t++) {
		pkt_build(&p, a, ia, 0x04, UMAD_METHOD_GET, t, 1000);
		assert_int_equal(pkt_send(a, &p), HDR_NEW + 256);
	}
	uint32_t old[10];
	for (unsigned i = 0; i < 10; i++)
		old[i] = (uint32_t)umx_mad_tid(sent_mad(x, i));
	assert_int_equal(stats(x).tids_in_use, 10);
	umx_file_release(a);
	struct umx_router_stats st = stats(x);
	assert_int_equal(st.tids_in_use, 0);
	assert_int_equal(st.files, 0);
	assert_int_equal(st.vagents, 0);
	assert_int_equal(st.real_agents, st.idle_send_agents);
	assert_int_equal(x->port.live, st.idle_send_agents);
	/* a new client reuses the slot; the old answer must not reach it */
	struct umx_file *b = open_pkey(x->n1);
	uint32_t ib = 0;
	assert_int_equal(reg2(b, 1, 0, 0, 0, 0, 0, 0, &ib), 0);
	pkt_build(&p, b, ib, 0x04, UMAD_METHOD_GET, 0, 1000);
	assert_int_equal(pkt_send(b, &p), HDR_NEW + 256);
	uint32_t wn = (uint32_t)umx_mad_tid(sent_mad(x, 10)), w0 = 0;
	for (unsigned i = 0; i < 10; i++)
		if ((old[i] & 0xffff) == (wn & 0xffff))
			w0 = old[i];             /* same slot, older generation */
	assert_int_not_equal(w0, 0);
	assert_int_not_equal(wn, w0);
	wire(x, real_send_id(x, 10), 0x04, 1, UMAD_METHOD_GET_RESP, w0, 0, 256);
	assert_int_equal(umx_file_read(b, &p, sizeof(p.buf)), -EAGAIN);
	assert_int_equal(umx_router_counter(x->r, UMX_C_RX_UNMATCHED_RESP), 1);
	umx_file_release(b);
}

/* churn: many open/register/send/close cycles leave every table empty */
static void churn_leaves_tables_empty(void **state)
{
	struct fx *x = *state;
	struct pkt p;
	for (int i = 0; i < 1000; i++) {
		struct umx_file *f = open_pkey(i % 2 ? x->n1 : x->n0);
		uint32_t id = 0;
		assert_int_equal(reg2(f, 1, 0x09 + i % 3, 1, M(1 + i % 4), 0, 0, 0, &id), 0);
		pkt_build(&p, f, id, 0x04, UMAD_METHOD_GET, (uint64_t)i, 100);
		assert_int_equal(pkt_send(f, &p), HDR_NEW + 256);
		if (i % 3 == 0)   /* some get their response, the rest are closed in flight */
			wire(x, real_send_id(x, x->port.nsent - 1), 0x04, 1, UMAD_METHOD_GET_RESP,
			     umx_mad_tid(sent_mad(x, x->port.nsent - 1)), 0, 256);
		umx_file_release(f);
	}
	struct umx_router_stats st = stats(x);
	assert_int_equal(st.files + st.vagents + st.tids_in_use + st.queued_packets, 0);
	/* what stays on the real port is the bounded cache of idle send agents */
	assert_int_equal(st.real_agents, st.idle_send_agents);
	assert_int_equal(x->port.live, st.idle_send_agents);
	assert_true(st.idle_send_agents >= 1 && st.idle_send_agents <= UMX_SEND_CLASS_AGENTS_PUBLIC);
	/* 1000 clients sent PerfMgt: one cached class send agent served them all */
	assert_int_equal(st.idle_send_agents, 1);
	umx_router_free(x->r);
	x->r = NULL;
	assert_int_equal(x->port.live, 0);
	assert_int_equal(x->port.regs, x->port.unregs);
}

/* ib_umad_kill_port(): the device goes away - every open file is dead
 * (read/write EIO, poll POLLERR, register EPIPE), readers are woken, new
 * opens fail with ENXIO; once a port is back new files work, old ones stay
 * dead */
static void port_down_and_back(void **state)
{
	struct fx *x = *state;
	struct umx_file *a = open_pkey(x->n0);
	uint32_t ia = 0;
	struct pkt p;
	uint8_t buf[HDR_NEW + 256];
	assert_int_equal(reg2(a, 1, 0x09, 1, M(UMAD_METHOD_GET), 0, 0, 0, &ia), 0);
	wire(x, 1, 0x09, 1, UMAD_METHOD_GET, 0x5, 0, 256);
	pkt_build(&p, a, ia, 0x04, UMAD_METHOD_GET, 0x6, 1000);
	assert_int_equal(pkt_send(a, &p), HDR_NEW + 256);
	unsigned events = x->readable_events;

	umx_router_port_down(x->r);
	assert_false(umx_router_port_is_up(x->r));
	assert_int_equal(x->readable_events, events + 1);   /* the reader is woken */
	assert_true(umx_file_readable(a));
	assert_int_equal(umx_file_read(a, buf, HDR_NEW - 1), -EINVAL);   /* size first */
	assert_int_equal(umx_file_read(a, buf, sizeof(buf)), -EIO);
	assert_int_equal(umx_file_poll(a), POLLERR);
	assert_int_equal(pkt_send(a, &p), -EIO);
	assert_int_equal(reg2(a, 1, 0, 0, 0, 0, 0, 0, NULL), -EPIPE);
	assert_int_equal(unreg(a, ia), -EINVAL);
	errno = 0;
	assert_null(umx_file_open(x->n1, NULL));
	assert_int_equal(errno, ENXIO);
	struct umx_router_stats st = stats(x);
	assert_int_equal(st.tids_in_use, 0);
	assert_int_equal(st.vagents, 0);
	assert_int_equal(st.real_agents, 0);
	assert_int_equal(umx_router_counter(x->r, UMX_C_PORT_DOWN), 1);

	/* the port comes back (a fresh fake port: nothing registered on it) */
	struct umx_fake_port *p2 = calloc(1, sizeof(*p2));
	umx_fake_port_init(p2);
	umx_router_port_up(x->r, &p2->port);
	struct umx_file *b = open_pkey(x->n1);
	uint32_t ib = 0;
	assert_int_equal(reg2(b, 1, 0x09, 1, M(UMAD_METHOD_GET), 0, 0, 0, &ib), 0);
	assert_int_equal(p2->live, 2);
	pkt_build(&p, b, ib, 0x04, UMAD_METHOD_GET, 0x7, 1000);
	assert_int_equal(pkt_send(b, &p), HDR_NEW + 256);
	assert_int_equal(p2->nsent, 1);
	assert_int_equal(umx_file_read(a, buf, sizeof(buf)), -EIO);    /* a stays dead */
	umx_file_release(a);
	umx_file_release(b);
	umx_router_free(x->r);
	x->r = NULL;
	assert_int_equal(p2->live, 0);
	free(p2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
		T(union_of_methods),
		T(method_handover_keeps_real_agent),
		T(colliding_tids_return_to_their_clients),
		T(timeout_returns_to_sender),
		T(duplicate_outstanding_tid),
		T(untracked_requests_and_responses),
		T(old_header_write_is_converted),
		cmocka_unit_test(bounds_and_port_errors),
		T(gid_index_policy),
		T(steering_by_version_and_oui),
		T(release_mid_flight),
		T(churn_leaves_tables_empty),
		T(port_down_and_back),
	};
	return cmocka_run_group_tests_name("router", tests, NULL, NULL);
}
