/*
 * fuzz_wire_mad - packets from the real port as umx_router_input() sees
 * them (64-byte header with GRH fields + a MAD of any length), interleaved
 * with client registrations and sends that create tracked transactions, so
 * that responses and timeouts with matching and non-matching TIDs,
 * unsolicited requests for registered classes (vendor range 2 with OUI) and
 * reads are all exercised.
 *
 * A model follows the agents, the transactions in flight (client TID ->
 * wire TID, taken from what reached the fake port) and every file's
 * receive queue, and checks:
 *  - a response/timeout whose low TID and class name a live transaction is
 *    delivered to that file and read back with the client's low TID; any
 *    other is counted rx_drop_unmatched_response;
 *  - a request is delivered to the agent that owns (class, version, OUI,
 *    method), or counted rx_drop_no_owner; received MADs beyond the queue
 *    limit are counted rx_drop_queue_full;
 *  - reads return the packets in order, with the length, agent id, status
 *    and MAD bytes the model expects.
 *
 * Input: config byte, policy byte, then operations.
 */
#include "fuzz_common.h"

#define MAXQ 160
#define MAXT 128
#define MAX_MAD 2048

struct magent {
	bool live;
	uint8_t cls, ver;
	uint32_t oui;
	uint64_t mask[2];
};

struct mtxn {
	bool live;
	int file, agent;
	uint32_t client_lo, wire_lo;
	uint8_t cls;
};

struct mpkt {
	uint32_t madlen, id, status;
	bool recv;
	uint64_t tid;        /* TID the client must see */
	bool tid_lo_only;    /* responses: only the low 32 bits are the client's */
	uint8_t head[40];    /* first MAD bytes, TID bytes excepted */
};

struct mfile {
	struct magent a[32];
	struct mpkt q[MAXQ];
	unsigned qh, qn;
	unsigned recvq;      /* received packets queued (the limit counts every packet, as
			      * the kernel's recv_list_size does) */
	bool overflow;       /* more than MAXQ queued: stop comparing this file */
};

static struct mfile model[FZ_FILES];
static struct mtxn txn[MAXT];

static void model_drop_file(int s)
{
	memset(&model[s], 0, sizeof(model[s]));
	for (int i = 0; i < MAXT; i++)
		if (txn[i].live && txn[i].file == s)
			txn[i].live = false;
}

static void model_drop_agent(int s, int id)
{
	model[s].a[id].live = false;
	for (int i = 0; i < MAXT; i++)
		if (txn[i].live && txn[i].file == s && txn[i].agent == id)
			txn[i].live = false;
}

static void model_push(int s, const struct mpkt *p)
{
	struct mfile *m = &model[s];
	if (m->qn == MAXQ) {
		m->overflow = true;
		return;
	}
	m->q[(m->qh + m->qn++) % MAXQ] = *p;
	if (p->recv)
		m->recvq++;
}

static bool open_slot(struct fz *x, int s, unsigned node)
{
	model_drop_file(s);
	return fz_open(x, s, node);
}

/* register through REGISTER_AGENT2 (or AGENT), remember what succeeded */
static void reg(struct fz *x, int s, struct fz_in *in, bool agent2)
{
	struct ib_user_mad_reg_req2 q;
	bool co;
	long ret;
	fz_reg2_req(in, &q);
	if (fz_u8(in) & 1) {   /* mostly valid: fix the things that would refuse it */
		q.flags &= IB_USER_MAD_REG_FLAGS_CAP;
		q.oui &= 0xffffff;
		if (q.mgmt_class_version > 3)
			q.mgmt_class_version = 1;
	}
	struct ib_user_mad_reg_req2 keep = q;
	if (agent2) {
		ret = fz_ioctl(x, s, IB_USER_MAD_REGISTER_AGENT2, &q, &co);
	} else {
		struct ib_user_mad_reg_req v1;
		fz_reg2_to_v1(&q, &v1);
		ret = fz_ioctl(x, s, IB_USER_MAD_REGISTER_AGENT, &v1, &co);
		q.id = v1.id;
		keep.oui &= 0xffffff;
	}
	if (ret)
		return;
	FZ_ASSERT(q.id < 32 && !model[s].a[q.id].live);
	struct magent *a = &model[s].a[q.id];
	memset(a, 0, sizeof(*a));
	a->live = true;
	a->cls = keep.mgmt_class;
	if (keep.mgmt_class) {
		a->ver = keep.mgmt_class_version;
		a->oui = umx_is_vendor_range2(keep.mgmt_class) ? (keep.oui & 0xffffff) : 0;
		memcpy(a->mask, keep.method_mask, sizeof(a->mask));
	}
}

/* the live agent that owns a request (find_mad_agent()); -1 none */
static int owner(const uint8_t *mad, size_t madlen, int *file)
{
	uint8_t cls = mad[1], ver = mad[2], method = mad[3] & 0x7f;
	uint32_t oui = 0;
	if (umx_is_vendor_range2(cls)) {
		if (madlen < UMX_VENDOR_OUI_OFF + 3)
			return -1;
		oui = umx_mad_oui(mad);
	}
	for (int s = 0; s < FZ_FILES; s++)
		for (int i = 0; i < 32; i++) {
			const struct magent *a = &model[s].a[i];
			if (a->live && a->cls == cls && a->ver == ver && a->oui == oui &&
			    ((a->mask[method / 64] >> (method % 64)) & 1)) {
				*file = s;
				return i;
			}
		}
	return -1;
}

/* a client send: builds a request/response on a live agent of slot s */
static void client_send(struct fz *x, int s, struct fz_in *in)
{
	struct umx_file *f = x->file[s];
	size_t hs = umx_file_hdr_size(f);
	uint8_t b = fz_u8(in);
	int id = fz_u8(in) % 32;
	if (!model[s].a[id].live) {   /* pick the first live one */
		for (id = 0; id < 32 && !model[s].a[id].live; id++)
			;
		if (id == 32)
			return;
	}
	const struct magent *a = &model[s].a[id];
	size_t madlen = (b & 0x40) ? 36 + fz_u16(in) % 600 : UMX_MAD_SIZE;
	uint8_t buf[FZ_HDR_NEW + 640];
	memset(buf, 0, sizeof(buf));
	struct ib_user_mad_hdr h;
	memset(&h, 0, sizeof(h));
	h.id = (uint32_t)id;
	h.timeout_ms = (b & 1) ? 0 : 50;
	h.qpn = htobe32(1);
	h.qkey = htobe32(UMAD_QKEY);
	h.lid = htobe16(fz_u16(in));
	if (b & 2) {
		h.grh_present = 1;
		h.gid_index = (b & 4) ? 1 : 0;
	}
	memcpy(buf, &h, hs);
	uint8_t *m = buf + hs;
	m[0] = 1;
	m[1] = (b & 8) || !a->cls ? fz_class(in) : a->cls;
	m[2] = (b & 8) || !a->cls ? 1 : a->ver;
	m[3] = (b & 0x10) ? fz_u8(in) : UMAD_METHOD_GET;
	uint64_t tid = (b & 0x20) ? fz_u64(in) : ((uint64_t)fz_u8(in) << 32 | fz_u8(in));
	umx_mad_set_tid(m, tid);
	if (umx_is_vendor_range2(m[1])) {
		uint32_t oui = a->oui ? a->oui : fz_ouis[fz_u8(in) % FZ_NOUIS];
		m[37] = (uint8_t)(oui >> 16);
		m[38] = (uint8_t)(oui >> 8);
		m[39] = (uint8_t)oui;
	}
	/* a duplicate of a live transaction must be refused */
	bool dup = false;
	for (int i = 0; i < MAXT; i++)
		if (txn[i].live && txn[i].file == s && txn[i].agent == id &&
		    txn[i].client_lo == (uint32_t)tid && txn[i].cls == m[1])
			dup = true;
	unsigned before = x->port.nsent;
	ssize_t ret = umx_file_write(f, buf, hs + madlen);
	bool tracked = h.timeout_ms && !umx_is_response(m);
	if (ret < 0) {
		FZ_ASSERT(x->port.nsent == before);
		return;
	}
	FZ_ASSERT((size_t)ret == hs + madlen);
	FZ_ASSERTF(!(tracked && dup), "a duplicate outstanding TID was sent");
	FZ_ASSERT(x->port.nsent == before + 1);
	if (!tracked)
		return;
	const uint8_t *out = umx_fake_port_sent(&x->port, before, NULL);
	FZ_ASSERT(out != NULL);
	uint32_t wire_lo = (uint32_t)umx_mad_tid(out + FZ_HDR_NEW);
	FZ_ASSERT(wire_lo & 0x80000000u);
	for (int i = 0; i < MAXT; i++)
		FZ_ASSERTF(!(txn[i].live && txn[i].wire_lo == wire_lo),
			   "wire TID 0x%x given to two live transactions", wire_lo);
	for (int i = 0; i < MAXT; i++)
		if (!txn[i].live) {
			txn[i] = (struct mtxn){ true, s, id, (uint32_t)tid, wire_lo, m[1] };
			break;
		}
}

/* what the router would do with an incoming packet, then check it did */
static void input(struct fz *x, uint8_t *pkt, size_t len)
{
	const struct ib_user_mad_hdr *h = (const struct ib_user_mad_hdr *)pkt;
	uint64_t c0[UMX_C_COUNT];
	for (int c = 0; c < UMX_C_COUNT; c++)
		c0[c] = umx_router_counter(x->r, (enum umx_counter)c);

	int want_file = -1, want_agent = -1, t = -1;
	bool recv = true;
	enum umx_counter want = UMX_C_RX_DELIVERED;
	const uint8_t *mad = pkt + FZ_HDR_NEW;
	size_t madlen = len >= FZ_HDR_NEW ? len - FZ_HDR_NEW : 0;
	struct mpkt mp;
	memset(&mp, 0, sizeof(mp));

	if (len < FZ_HDR_NEW + UMX_MAD_HDR) {
		want = UMX_C_RX_SHORT;
	} else if (h->status || umx_is_response(mad)) {
		uint32_t lo = (uint32_t)umx_mad_tid(mad);
		for (int i = 0; i < MAXT; i++)
			if (txn[i].live && txn[i].wire_lo == lo && txn[i].cls == mad[1])
				t = i;
		if (t < 0) {
			want = UMX_C_RX_UNMATCHED_RESP;
		} else {
			want_file = txn[t].file;
			want_agent = txn[t].agent;
			recv = !h->status;
			mp.tid = txn[t].client_lo;
			mp.tid_lo_only = true;
		}
	} else {
		want_agent = owner(mad, madlen, &want_file);
		if (want_agent < 0)
			want = UMX_C_RX_NO_OWNER;
		else
			mp.tid = umx_mad_tid(mad);
	}
	if (want_file >= 0 && recv && t < 0 &&
	    !fz_pkey_allowed(umx_node_policy(x->node[x->file_node[want_file]]), h->pkey_index))
		want = UMX_C_RX_PKEY;
	else if (want_file >= 0 && recv && model[want_file].qn >= x->lim.recv_queue_max)
		want = UMX_C_RX_QUEUE_FULL;

	umx_router_input(x->r, pkt, len);

	FZ_ASSERT(umx_router_counter(x->r, UMX_C_RX_PACKETS) == c0[UMX_C_RX_PACKETS] + 1);
	if (len >= FZ_HDR_NEW + UMX_MAD_HDR && mad[1] == UMAD_CLASS_SUBN_ADM) {
		/* the router may consume SA MADs itself (its own queries, Reports):
		 * then no delivery/drop counter moves and the model stays as is */
		static const enum umx_counter rx[] = { UMX_C_RX_DELIVERED, UMX_C_RX_UNMATCHED_RESP,
						       UMX_C_RX_NO_OWNER, UMX_C_RX_QUEUE_FULL,
						       UMX_C_RX_PKEY };
		bool moved = false;
		for (unsigned i = 0; i < sizeof(rx) / sizeof(rx[0]); i++)
			moved |= umx_router_counter(x->r, rx[i]) != c0[rx[i]];
		if (!moved)
			return;
	}
	if (!model[0].overflow && !model[1].overflow && !model[2].overflow)
		FZ_ASSERTF(umx_router_counter(x->r, want) == c0[want] + 1,
			   "expected %s (file %d agent %d txn %d): counter did not move",
			   umx_counter_name(want), want_file, want_agent, t);
	if (t >= 0)
		txn[t].live = false;   /* a response or timeout ends the transaction */
	if (want != UMX_C_RX_DELIVERED)
		return;
	mp.madlen = (uint32_t)madlen;
	mp.id = (uint32_t)want_agent;
	mp.status = h->status;
	mp.recv = recv;
	memcpy(mp.head, mad, madlen < sizeof(mp.head) ? madlen : sizeof(mp.head));
	model_push(want_file, &mp);
}

/* a packet from the port: built around a transaction, a registration, or raw */
static void wire(struct fz *x, struct fz_in *in)
{
	static uint8_t pkt[FZ_HDR_NEW + MAX_MAD];
	uint8_t b = fz_u8(in);
	struct ib_user_mad_hdr h;
	memset(&h, 0, sizeof(h));
	h.id = fz_u8(in) % 70;
	h.qpn = htobe32(fz_u8(in) & 1);
	h.qkey = htobe32(UMAD_QKEY);
	h.lid = htobe16(fz_u16(in));
	h.sl = fz_u8(in) & 15;
	if (b & 1) {   /* with a GRH */
		h.grh_present = 1;
		h.gid_index = fz_u8(in);
		h.hop_limit = fz_u8(in);
		h.traffic_class = fz_u8(in);
		fz_bytes(in, h.gid, sizeof(h.gid));
		h.flow_label = htobe32(fz_u32(in) & 0xfffff);
	}
	h.pkey_index = (b & 2) ? fz_u16(in) % 5 : 0;

	size_t madlen;
	switch ((b >> 2) & 3) {
	case 0: madlen = UMX_MAD_SIZE; break;
	case 1: madlen = fz_u8(in); break;                     /* short, also < 24 */
	case 2: madlen = UMX_MAD_SIZE + fz_u16(in) % (MAX_MAD - UMX_MAD_SIZE); break;
	default: madlen = 36 + fz_u8(in); break;
	}
	uint8_t *m = pkt + FZ_HDR_NEW;
	memset(m, 0, madlen);
	uint8_t kind = (b >> 4) & 3;
	if (kind == 0) {   /* answer or time out a transaction (maybe mangled) */
		int live[MAXT], n = 0;
		for (int i = 0; i < MAXT; i++)
			if (txn[i].live)
				live[n++] = i;
		uint8_t k = fz_u8(in);
		uint32_t lo = n ? txn[live[k % n]].wire_lo : 0x80000000u | fz_u16(in);
		uint8_t cls = n ? txn[live[k % n]].cls : fz_class(in);
		if (k & 0x80)
			lo ^= 1u << (fz_u8(in) % 32);
		if (k & 0x40)
			cls = fz_class(in);
		m[0] = 1;
		m[1] = cls;
		m[2] = 1;
		m[3] = (k & 0x20) ? fz_u8(in) : UMAD_METHOD_GET_RESP;
		if (k & 0x10)
			h.status = (k & 8) ? ETIMEDOUT : fz_u32(in);
		umx_mad_set_tid(m, (uint64_t)fz_u32(in) << 32 | lo);
	} else if (kind == 1) {   /* a request for a registered class */
		int s = fz_u8(in) % FZ_FILES, id = fz_u8(in) % 32;
		const struct magent *a = &model[s].a[id];
		m[0] = 1;
		m[1] = a->live && a->cls ? a->cls : fz_class(in);
		m[2] = a->live && a->cls ? a->ver : fz_u8(in) % 3;
		uint8_t meth = fz_u8(in) & 0x7f;
		for (unsigned i = 0; a->live && i < 128; i++) {
			unsigned mm = (meth + i) & 0x7f;
			if ((a->mask[mm / 64] >> (mm % 64)) & 1) {
				meth = (uint8_t)mm;
				break;
			}
		}
		m[3] = meth;
		umx_mad_set_tid(m, fz_u64(in));
		if (madlen >= 40) {
			uint32_t oui = a->live && a->oui ? a->oui : fz_ouis[fz_u8(in) % FZ_NOUIS];
			m[37] = (uint8_t)(oui >> 16);
			m[38] = (uint8_t)(oui >> 8);
			m[39] = (uint8_t)oui;
		}
		if (madlen > 40)
			fz_bytes(in, m + 40, madlen - 40 < 32 ? madlen - 40 : 32);
	} else {   /* raw MAD bytes */
		fz_bytes(in, m, madlen < 64 ? madlen : 64);
	}
	/* CM requests are steered by communication id (core/cm.c), not by
	 * method ownership: keep them out of this model */
	if (madlen > 1 && m[1] == UMAD_CLASS_CM && !umx_is_response(m) && !h.status)
		m[1] = 0x08;
	h.length = (uint32_t)(FZ_HDR_NEW + madlen);
	memcpy(pkt, &h, sizeof(h));
	size_t len = FZ_HDR_NEW + madlen;
	if (kind == 3 && (b & 0x80))   /* even shorter than a header */
		len = fz_u8(in) % (FZ_HDR_NEW + UMX_MAD_HDR);
	input(x, pkt, len);
}

static void do_read(struct fz *x, int s, struct fz_in *in)
{
	static uint8_t out[FZ_HDR_NEW + MAX_MAD + 64];
	size_t hs = umx_file_hdr_size(x->file[s]);
	struct mfile *m = &model[s];
	uint8_t b = fz_u8(in);
	size_t need = m->qn ? hs + m->q[m->qh].madlen : hs + UMX_MAD_SIZE;
	size_t len = need;
	if (b & 1)
		len = need + (b >> 1);
	else if (b & 2)
		len = need > (size_t)(b >> 2) ? need - (b >> 2) : 0;
	if (len > sizeof(out))
		len = sizeof(out);
	ssize_t ret = fz_read(x, s, len, out);
	if (m->overflow)
		return;
	if (!m->qn) {
		FZ_ASSERTF(ret == -EAGAIN || (ret == -EINVAL && len < hs), "empty queue read %zd", ret);
		return;
	}
	if (ret < 0) {
		FZ_ASSERTF(len < need, "read of %zu (need %zu) failed %zd", len, need, ret);
		return;
	}
	struct mpkt *p = &m->q[m->qh];
	struct ib_user_mad_hdr h;
	memset(&h, 0, sizeof(h));
	memcpy(&h, out, hs);
	const uint8_t *mad = out + hs;
	FZ_ASSERTF((size_t)ret == hs + p->madlen, "read %zd, model %zu", ret, hs + p->madlen);
	FZ_ASSERTF(h.id == p->id, "read agent id %u, model %u", h.id, p->id);
	FZ_ASSERTF(h.status == p->status, "read status %u, model %u", h.status, p->status);
	uint64_t tid = umx_mad_tid(mad);
	if (p->tid_lo_only)
		FZ_ASSERTF((uint32_t)tid == (uint32_t)p->tid,
			   "response TID 0x%llx, client's low TID 0x%x", (unsigned long long)tid,
			   (uint32_t)p->tid);
	else
		FZ_ASSERTF(tid == p->tid, "request TID changed");
	size_t k = p->madlen < sizeof(p->head) ? p->madlen : sizeof(p->head);
	for (size_t i = 0; i < k; i++)
		if (i < 8 || i >= 16)
			FZ_ASSERTF(mad[i] == p->head[i], "MAD byte %zu changed", i);
	m->qh = (m->qh + 1) % MAXQ;
	m->qn--;
	if (p->recv)
		m->recvq--;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	static struct fz x;
	unsigned steps = 0;

	uint8_t cfg = fz_u8(&in);
	fz_setup(&x, cfg, fz_u8(&in));
	memset(txn, 0, sizeof(txn));
	for (int s = 0; s < FZ_FILES; s++)
		model_drop_file(s);
	open_slot(&x, 0, 0);
	open_slot(&x, 1, 1);
	while (in.n && steps++ < 384) {
		uint8_t op = fz_u8(&in);
		int s = (op >> 4) % FZ_FILES;
		bool co;

		if (!x.file[s] && !open_slot(&x, s, op >> 6))
			continue;
		switch (op & 15) {
		case 0: case 1: case 2: case 3: case 4:
			wire(&x, &in);
			break;
		case 5: case 6:
			reg(&x, s, &in, (op & 15) == 5);
			break;
		case 7: case 8: case 9:
			client_send(&x, s, &in);
			break;
		case 10: case 11:
			do_read(&x, s, &in);
			break;
		case 12: { /* unregister: its transactions end, queued packets stay */
			uint32_t id = fz_u8(&in) % 33;
			long ret = fz_ioctl(&x, s, IB_USER_MAD_UNREGISTER_AGENT, &id, &co);
			bool live = id < 32 && model[s].a[id].live;
			FZ_ASSERT(ret == (live ? 0 : -EINVAL));
			if (live)
				model_drop_agent(s, (int)id);
			break;
		}
		case 13:
			if (fz_u8(&in) & 1)
				fz_release(&x, s), model_drop_file(s);
			else
				open_slot(&x, s, fz_u8(&in));
			break;
		case 14: { /* ENABLE_PKEY (only before the first registration) */
			long ret = fz_ioctl(&x, s, IB_USER_MAD_ENABLE_PKEY, NULL, &co);
			FZ_ASSERT(ret == 0 || ret == -EINVAL);
			break;
		}
		case 15: /* the clock moves (rate limit) */
			fz_now_ns += (uint64_t)fz_u16(&in) << 16;
			break;
		}
		fz_check(&x);
		struct umx_router_stats st;
		umx_router_stats(x.r, &st);
		unsigned live = 0, queued = 0;
		bool ovf = false;
		for (int i = 0; i < MAXT; i++)
			live += txn[i].live;
		for (int t = 0; t < FZ_FILES; t++) {
			queued += model[t].qn;
			ovf |= model[t].overflow;
		}
		FZ_ASSERTF(st.tids_in_use == live, "router tracks %u transactions, model %u",
			   st.tids_in_use, live);
		if (!ovf)
			FZ_ASSERTF(st.queued_packets == queued, "router queued %u, model %u",
				   st.queued_packets, queued);
	}
	fz_teardown(&x);
	return 0;
}
