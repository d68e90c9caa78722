/*
 * fuzz_rdmacm_msg.c - QEMU's rdmacm-mux protocol message as a hostile client
 * sends it (cuse/rdmacm_proto.c: pure decode/validate/encode, compiled in).
 * The first byte picks what the rest is: a whole message a client wrote to
 * the socket or a node, or an incoming umad (header + MAD) the daemon turns
 * into a MAD message for a client.  Invariants: decode accepts exactly 360
 * bytes; encode(decode(x)) is stable; a request judged OK yields a send of
 * at most header + 256 bytes carrying the agent id and gid index asked for;
 * an answer decodes as a RESP with the error code set; a MAD message made
 * from an incoming umad carries its length and bytes exactly.  Both kinds
 * also go through one long-lived peer table (cuse/rdmacm_peers.c, 8
 * entries): a send is left alone, readdressed (only the address fields
 * change) or refused; the table never holds more than its bound.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../cuse/rdmacm_proto.c"
#include "../../cuse/rdmacm_peers.c"

static struct rc_peers *peers;
static uint64_t clock_ns;

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static void client_message(const uint8_t *data, size_t size)
{
	rdmacm_msg m, m2;
	uint8_t a[RDMACM_MSG_SIZE], b[RDMACM_MSG_SIZE];

	int r = rdmacm_decode(data, size, &m);
	CHECK(size == RDMACM_MSG_SIZE ? r == 0 : r == -EINVAL);
	if (r)
		return;
	rdmacm_encode(&m, a);
	CHECK(rdmacm_decode(a, sizeof(a), &m2) == 0);
	rdmacm_encode(&m2, b);
	CHECK(!memcmp(a, b, sizeof(a)));                  /* stable round trip */

	enum rdmacm_err err = RDMACM_ERR_OK;
	enum rdmacm_check c = rdmacm_check_request(&m, &err);
	CHECK(c == RDMACM_CHECK_OK || c == RDMACM_CHECK_ERR || c == RDMACM_CHECK_CLOSE);
	CHECK(c != RDMACM_CHECK_CLOSE || m.hdr.msg_type != RDMACM_MSG_REQ);
	CHECK(c != RDMACM_CHECK_ERR || err != RDMACM_ERR_OK);
	if (c == RDMACM_CHECK_OK && m.hdr.op_code == RDMACM_OP_MAD) {
		uint8_t out[sizeof(struct ib_user_mad_hdr) + 256 + 64];
		memset(out, 0xa5, sizeof(out));
		size_t n = rdmacm_make_send(&m, 7, 3, out);
		CHECK(n >= sizeof(struct ib_user_mad_hdr) + 24 && n <= sizeof(struct ib_user_mad_hdr) + 256);
		struct ib_user_mad_hdr h;
		memcpy(&h, out, sizeof(h));
		CHECK(h.id == 7);
		CHECK(!h.grh_present || h.gid_index == 3);
		for (size_t i = n; i < sizeof(out); i++)
			CHECK(out[i] == 0xa5);                  /* nothing past the length */
		/* the peer table: only the destination may change */
		struct ib_user_mad_hdr h2 = h;
		int rt = rc_peers_route(peers, m.hdr.sgid.raw, &h2, out + sizeof(h), n - sizeof(h),
					clock_ns += 1000);
		CHECK(rt == RC_ROUTE_AS_IS || rt == RC_ROUTE_READDRESSED || rt == -EHOSTUNREACH);
		CHECK(rt == RC_ROUTE_READDRESSED || !memcmp(&h, &h2, sizeof(h)));
		CHECK(h2.id == h.id && h2.qpn == h.qpn && h2.gid_index == h.gid_index &&
		      h2.length == h.length && h2.pkey_index == h.pkey_index);
		CHECK(rc_peers_live(peers, clock_ns) <= 8);
	}
	rdmacm_make_resp(&m, err);
	rdmacm_encode(&m, a);
	CHECK(rdmacm_decode(a, sizeof(a), &m2) == 0);
	CHECK(m2.hdr.msg_type == RDMACM_MSG_RESP && m2.hdr.err_code == (uint32_t)err);
	(void)rdmacm_op_name(m.hdr.op_code);
}

static void incoming_umad(const uint8_t *data, size_t size)
{
	rdmacm_msg m, m2;
	uint8_t gid[16], a[RDMACM_MSG_SIZE];

	if (size < 16)
		return;
	memcpy(gid, data, 16);
	data += 16;
	size -= 16;
	int r = rdmacm_make_mad_msg(&m, gid, data, size);
	if (size < sizeof(struct ib_user_mad_hdr) + 24) {     /* header + MAD header */
		CHECK(r == -EINVAL);
		return;
	}
	if (size > sizeof(struct ib_user_mad_hdr) + 256) {
		CHECK(r == -EMSGSIZE);
		return;
	}
	CHECK(r == 0);
	rdmacm_encode(&m, a);
	CHECK(rdmacm_decode(a, sizeof(a), &m2) == 0);
	size_t madlen = size - sizeof(struct ib_user_mad_hdr);
	CHECK(m2.umad_len == (int)madlen || m2.umad_len == (int)size);
	CHECK(!memcmp(a + RDMACM_OFF_MAD, data + sizeof(struct ib_user_mad_hdr), madlen));
	CHECK(!memcmp(a + RDMACM_OFF_SGID, gid, 16));
	rc_peers_learn(peers, &m.umad_hdr, m.mad, (size_t)m.umad_len, clock_ns += 1000);
	CHECK(rc_peers_live(peers, clock_ns) <= 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	if (!peers)
		peers = rc_peers_new(8, 50000);
	if (data[0] & 1)
		incoming_umad(data + 1, size - 1);
	else
		client_message(data + 1, size - 1);
	return 0;
}
