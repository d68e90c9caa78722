/*
 * fuzz_client_write - a sequence of client operations on up to three
 * virtual files (open/reopen on any node, release, the four ioctls and
 * unknown ones, writes of any length and content, reads with any buffer
 * size), with the port answering some sends.  After each step the common
 * invariants are checked, and every successful write is compared with what
 * reached the fake port.
 *
 * Input: byte 0 = configuration (limits, node 2's privilege, no-QP0 port),
 * then operations: one opcode byte followed by its arguments.
 */
#include "fuzz_common.h"

#define MAX_WRITE 1400

/* a write: header in the file's format + MAD; structured or raw */
static size_t build_write(struct fz *x, int s, struct fz_in *in, uint8_t *buf)
{
	struct umx_file *f = x->file[s];
	size_t hs = umx_file_hdr_size(f);
	uint8_t b = fz_u8(in);
	size_t len;

	if (b & 0x80) {   /* raw: any length, any bytes */
		len = fz_u16(in) % (MAX_WRITE + 1);
		fz_bytes(in, buf, len);
		return len;
	}
	static const size_t lens[8] = { 256, 256, 256, 36, 35, 256 + 220, 512, 1024 };
	size_t madlen = lens[b & 7];
	if ((b & 0x18) == 0x18)
		madlen = fz_u16(in) % (MAX_WRITE - FZ_HDR_NEW);
	len = hs + madlen;
	struct ib_user_mad_hdr h;
	memset(&h, 0, sizeof(h));
	h.id = fz_u8(in) % 34;
	uint8_t t = fz_u8(in);
	h.timeout_ms = (t & 1) ? 100 + t : 0;
	h.retries = t >> 5;
	h.qpn = htobe32((t & 2) ? 1 : 0);
	h.qkey = htobe32(UMAD_QKEY);
	h.lid = htobe16(fz_u16(in));
	if (t & 4) {
		h.grh_present = 1;
		h.gid_index = (t & 8) ? 1 : fz_u8(in);
		h.hop_limit = 64;
		fz_bytes(in, h.gid, sizeof(h.gid));
	}
	h.pkey_index = (t & 16) ? fz_u16(in) : 0;
	memcpy(buf, &h, hs);
	uint8_t *m = buf + hs;
	memset(m, 0, madlen);
	uint8_t mh[UMX_RMPP_HDR];
	fz_bytes(in, mh, sizeof(mh));
	m[0] = 1;
	m[1] = fz_class(in);
	m[2] = (mh[0] & 0x80) ? mh[2] : 1 + (mh[0] & 1);
	m[3] = mh[3];
	size_t k = madlen < sizeof(mh) ? madlen : sizeof(mh);
	if (k > 4)
		memcpy(m + 4, mh + 4, k - 4);   /* TID, attribute, RMPP header */
	if (madlen > UMX_VENDOR_OUI_OFF + 3 && umx_is_vendor_range2(m[1])) {
		uint32_t oui = fz_ouis[mh[1] % FZ_NOUIS];
		m[37] = (uint8_t)(oui >> 16);
		m[38] = (uint8_t)(oui >> 8);
		m[39] = (uint8_t)oui;
	}
	return len;
}

/* a successful write reached the port unchanged but for id and TID */
static void check_sent(struct fz *x, int s, const uint8_t *buf, size_t len, unsigned nsent_before)
{
	struct umx_file *f = x->file[s];
	size_t hs = umx_file_hdr_size(f), sl;
	FZ_ASSERTF(x->port.nsent == nsent_before + 1, "a write sent %u packets",
		   x->port.nsent - nsent_before);
	const uint8_t *out = umx_fake_port_sent(&x->port, x->port.nsent - 1, &sl);
	FZ_ASSERT(out != NULL);
	FZ_ASSERTF(sl == FZ_HDR_NEW + (len - hs), "sent %zu bytes for a %zu-byte write", sl, len);
	struct ib_user_mad_hdr in_h, out_h;
	memset(&in_h, 0, sizeof(in_h));
	memcpy(&in_h, buf, hs);
	memcpy(&out_h, out, sizeof(out_h));
	FZ_ASSERT(out_h.id < UMX_FAKE_AGENTS && x->port.agent[out_h.id].used);
	/* policy: QP0 only for privileged nodes, GID index bound */
	const struct umx_node_policy *pol = umx_node_policy(x->node[x->file_node[s]]);
	FZ_ASSERTF(fz_class_allowed(pol, buf[hs + 1]), "class 0x%02x sent, not allowed",
		   buf[hs + 1]);
	FZ_ASSERTF(fz_pkey_allowed(pol, in_h.pkey_index), "pkey index %u sent, not allowed",
		   in_h.pkey_index);
	if (x->port.agent[out_h.id].req.qpn == 0)
		FZ_ASSERTF(x->ever_priv[x->file_node[s]],
			   "unprivileged node sent through a QP0 agent");
	if (pol->gid_index >= 0 && in_h.grh_present)
		FZ_ASSERTF(in_h.gid_index == pol->gid_index, "gid index %u sent, node bound to %d",
			   in_h.gid_index, pol->gid_index);
	out_h.id = in_h.id;
	FZ_ASSERTF(!memcmp(&out_h, &in_h, sizeof(in_h)), "sent header differs from the client's");
	const uint8_t *mi = buf + hs, *mo = out + FZ_HDR_NEW;
	size_t madlen = len - hs;
	size_t cmp = madlen < UMX_MAD_SIZE ? madlen : UMX_MAD_SIZE;
	FZ_ASSERT(!memcmp(mi, mo, 8));
	/* CM (a class the router steers) gets its communication ids remapped */
	if (mi[1] == UMAD_CLASS_CM)
		cmp = UMX_MAD_HDR;
	FZ_ASSERTF(!memcmp(mi + 16, mo + 16, cmp - 16), "class 0x%02x: MAD body changed on the way out", mi[1]);
	uint64_t ti = umx_mad_tid(mi), to = umx_mad_tid(mo);
	if (umx_is_response(mi)) {
		FZ_ASSERTF(ti == to, "response TID changed");
	} else {
		FZ_ASSERTF((ti >> 32) == (to >> 32), "request TID upper half changed");
		FZ_ASSERTF(((to >> 31) & 1) == (in_h.timeout_ms != 0),
			   "TID 0x%llx: tracked bit does not match timeout %u", (unsigned long long)to,
			   in_h.timeout_ms);
	}
}

/* the port answers (or times out) the i-th last send, maybe mangled */
static void answer(struct fz *x, struct fz_in *in)
{
	uint8_t b = fz_u8(in);
	unsigned back = (b & 7) + 1;
	if (back > x->port.nsent || back > UMX_FAKE_SENT)
		return;
	size_t sl;
	const uint8_t *sent = umx_fake_port_sent(&x->port, x->port.nsent - back, &sl);
	if (!sent)
		return;
	uint8_t pkt[FZ_HDR_NEW + UMX_MAD_SIZE];
	size_t len = sl < sizeof(pkt) ? sl : sizeof(pkt);
	memcpy(pkt, sent, len);
	struct ib_user_mad_hdr h;
	memcpy(&h, pkt, sizeof(h));
	if (b & 8) {
		h.status = ETIMEDOUT;           /* send_handler(): timeout */
	} else {
		h.status = 0;
		pkt[FZ_HDR_NEW + 3] |= UMAD_METHOD_RESP_MASK;
	}
	if (b & 0x10)
		pkt[FZ_HDR_NEW + 8 + fz_u8(in) % 8] ^= fz_u8(in);   /* TID mangled */
	if (b & 0x20)
		pkt[FZ_HDR_NEW + 1] = fz_class(in);
	h.length = (uint32_t)len;
	memcpy(pkt, &h, sizeof(h));
	if (b & 0x40)
		len = FZ_HDR_NEW + fz_u8(in) % (len - FZ_HDR_NEW + 1);
	umx_router_input(x->r, pkt, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	static struct fz x;
	static uint8_t buf[MAX_WRITE + 64];
	unsigned steps = 0;

	uint8_t cfg = fz_u8(&in);
	fz_setup(&x, cfg, fz_u8(&in));
	fz_open(&x, 0, 0);
	while (in.n && steps++ < 256) {
		uint8_t op = fz_u8(&in);
		int s = (op >> 4) % FZ_FILES;
		bool co;

		if ((op & 15) > 1 && !x.file[s] && !fz_open(&x, s, op >> 6))
			continue;
		switch (op & 15) {
		case 0: /* (re)open on a node */
			fz_open(&x, s, fz_u8(&in));
			break;
		case 1:
			fz_release(&x, s);
			break;
		case 2: { /* REGISTER_AGENT, raw bytes */
			struct ib_user_mad_reg_req q;
			fz_bytes(&in, &q, sizeof(q));
			long ret = fz_ioctl(&x, s, IB_USER_MAD_REGISTER_AGENT, &q, &co);
			FZ_ASSERT(co == (ret == 0));
			if (!ret)
				FZ_ASSERT(q.id < 32);
			break;
		}
		case 3: case 4: { /* REGISTER_AGENT2 / REGISTER_AGENT, structured */
			struct ib_user_mad_reg_req2 q;
			fz_reg2_req(&in, &q);
			long ret;
			if ((op & 15) == 3) {
				uint32_t fl = q.flags;
				ret = fz_ioctl(&x, s, IB_USER_MAD_REGISTER_AGENT2, &q, &co);
				if (!ret)
					FZ_ASSERT(co && q.id < 32);
				else if (fl & ~(uint32_t)IB_USER_MAD_REG_FLAGS_CAP && q.qpn < 2)
					FZ_ASSERT(co && q.flags == IB_USER_MAD_REG_FLAGS_CAP && ret == -EINVAL);
				else
					FZ_ASSERT(!co);
			} else {
				struct ib_user_mad_reg_req v1;
				fz_reg2_to_v1(&q, &v1);
				ret = fz_ioctl(&x, s, IB_USER_MAD_REGISTER_AGENT, &v1, &co);
				FZ_ASSERT(co == (ret == 0));
			}
			break;
		}
		case 5: { /* REGISTER_AGENT2, raw bytes */
			struct ib_user_mad_reg_req2 q;
			fz_bytes(&in, &q, sizeof(q));
			long ret = fz_ioctl(&x, s, IB_USER_MAD_REGISTER_AGENT2, &q, &co);
			if (!ret)
				FZ_ASSERT(co && q.id < 32);
			break;
		}
		case 6: { /* UNREGISTER_AGENT */
			uint8_t b = fz_u8(&in);
			uint32_t id = (b & 0x80) ? fz_u32(&in) : b % 33;
			long ret = fz_ioctl(&x, s, IB_USER_MAD_UNREGISTER_AGENT, &id, &co);
			FZ_ASSERT(ret == 0 || ret == -EINVAL);
			FZ_ASSERT(!co);
			break;
		}
		case 7: { /* ENABLE_PKEY */
			size_t before = umx_file_hdr_size(x.file[s]);
			long ret = fz_ioctl(&x, s, IB_USER_MAD_ENABLE_PKEY, NULL, &co);
			FZ_ASSERT(ret == 0 || ret == -EINVAL);
			if (!ret)
				FZ_ASSERT(umx_file_hdr_size(x.file[s]) == FZ_HDR_NEW);
			else
				FZ_ASSERT(umx_file_hdr_size(x.file[s]) == before);
			break;
		}
		case 8: { /* an unknown (or known, with another size) ioctl */
			unsigned cmd = fz_u32(&in);
			if (fz_u8(&in) & 1)   /* umad magic, any number/size/direction */
				cmd = (cmd & ~(_IOC_TYPEMASK << _IOC_TYPESHIFT)) |
				      (IB_IOCTL_MAGIC << _IOC_TYPESHIFT);
			size_t sz = _IOC_SIZE(cmd);
			uint8_t *arg = malloc(sz ? sz : 1);
			FZ_ASSERT(arg != NULL);
			fz_bytes(&in, arg, sz);
			long ret = fz_ioctl(&x, s, cmd, arg, &co);
			if (cmd != IB_USER_MAD_REGISTER_AGENT && cmd != IB_USER_MAD_REGISTER_AGENT2 &&
			    cmd != IB_USER_MAD_UNREGISTER_AGENT && cmd != IB_USER_MAD_ENABLE_PKEY)
				FZ_ASSERTF(ret == -ENOTTY && !co, "unknown ioctl 0x%x: %ld", cmd, ret);
			free(arg);
			break;
		}
		case 9: case 10: case 11: { /* write */
			size_t len = build_write(&x, s, &in, buf);
			unsigned before = x.port.nsent;
			uint64_t tx = umx_router_counter(x.r, UMX_C_TX_PACKETS);
			ssize_t ret = umx_file_write(x.file[s], buf, len);
			if (ret >= 0) {
				FZ_ASSERTF((size_t)ret == len, "write %zu returned %zd", len, ret);
				check_sent(&x, s, buf, len, before);
				FZ_ASSERT(umx_router_counter(x.r, UMX_C_TX_PACKETS) == tx + 1);
			} else {
				FZ_ASSERTF(ret >= -4095, "write returned %zd", ret);
				FZ_ASSERTF(x.port.nsent == before, "a failed write (%zd) sent", ret);
				if (len < umx_file_hdr_size(x.file[s]) + UMX_RMPP_HDR)
					FZ_ASSERT(ret == -EINVAL);
			}
			break;
		}
		case 12: case 13: { /* read */
			uint8_t b = fz_u8(&in);
			size_t hs = umx_file_hdr_size(x.file[s]);
			static const size_t extra[4] = { UMX_MAD_SIZE, 0, UMX_MAD_SIZE - 1, 4096 };
			size_t len = (b & 0x80) ? fz_u16(&in) % 8192 : hs + extra[b & 3] - ((b >> 2) & 1);
			fz_read(&x, s, len, NULL);
			break;
		}
		case 14: /* the port answers */
			answer(&x, &in);
			break;
		case 15: { /* the port refuses sends, the clock moves, a policy reload */
			uint8_t b = fz_u8(&in);
			if ((b & 3) == 0) {
				x.port.fail_send = (b & 4) ? -EIO : 0;
			} else if ((b & 3) == 1) {
				fz_now_ns += (uint64_t)fz_u16(&in) << ((b >> 2) & 31);
			} else {
				unsigned n = (b >> 2) % FZ_NODES;
				struct umx_node_policy p = fz_policy(n, fz_u8(&in));
				umx_node_set_policy(x.node[n], &p);
				x.ever_priv[n] |= p.privileged;
				FZ_ASSERT(!memcmp(umx_node_policy(x.node[n]), &p, sizeof(p)));
			}
			break;
		}
		}
		fz_check(&x);
	}
	fz_teardown(&x);
	return 0;
}
