/*
 * fuzz_ioctl - ioctl argument decoding: REGISTER_AGENT (old layout) and
 * REGISTER_AGENT2 (with its flags write-back), UNREGISTER_AGENT,
 * ENABLE_PKEY and unknown commands, on three files of three nodes.
 *
 * A small model follows every file (which agent ids are live, what each
 * registered, whether the file was used and which header size it has) and
 * the results are checked against the kernel's rules that are certain:
 *  - the argument is written back only when copy_out says so, and then only
 *    the id (success) or, for AGENT2 with unknown flags, the flags field
 *    set to IB_USER_MAD_REG_FLAGS_CAP (-EINVAL);
 *  - a new id is the lowest free slot; with 32 agents -ENOMEM;
 *  - no successful registration violates a check of ib_umad_reg_agent{,2}()
 *    / ib_register_mad_agent() or conflicts with a method another live
 *    agent on the port owns (same class, version and, for vendor range 2,
 *    OUI);
 *  - ENABLE_PKEY fails exactly once the file was used; the header becomes
 *    64 bytes after ENABLE_PKEY or a first AGENT2, and stays 56 otherwise;
 *  - UNREGISTER succeeds exactly for live ids.
 *
 * Input: config byte, policy byte, then operations.
 */
#include "fuzz_common.h"

struct magent {
	bool live;
	uint8_t qpn, cls, ver;
	uint32_t oui;
	uint64_t mask[2];
};

struct mfile {
	struct magent a[32];
	bool used, pkey;
};

static struct mfile model[FZ_FILES];

static void model_reset(int s) { memset(&model[s], 0, sizeof(model[s])); }

static bool rmpp_class(uint8_t c) { return umx_is_rmpp_class(c); }

/* a request the kernel must refuse, whatever else happens */
static bool surely_invalid(const struct ib_user_mad_reg_req2 *q, bool agent2)
{
	uint8_t c = q->mgmt_class;
	if (q->qpn > 1)
		return true;
	if (agent2 && (q->flags & ~(uint32_t)IB_USER_MAD_REG_FLAGS_CAP))
		return true;
	if (q->rmpp_version && q->rmpp_version != 1)
		return true;
	if (!c)
		return agent2 && (q->flags & IB_USER_MAD_USER_RMPP);
	if (agent2 && (q->oui & 0xff000000))
		return true;
	if (q->mgmt_class_version >= UMX_MAX_MGMT_VERSION)
		return true;
	if (c >= 0x50 && c != UMAD_CLASS_SUBN_DIRECTED_ROUTE)
		return true;
	if (umx_is_vendor_range2(c) && !(q->oui & 0xffffff))
		return true;
	if (q->rmpp_version && !rmpp_class(c))
		return true;
	bool smi = c == UMAD_CLASS_SUBN_LID_ROUTED || c == UMAD_CLASS_SUBN_DIRECTED_ROUTE;
	return q->qpn == 0 ? !smi : smi;
}

/* does q ask for a method a live agent of any file owns? */
static bool conflicts(const struct ib_user_mad_reg_req2 *q)
{
	/* CM may become a class the router shares between clients: not judged */
	if (!q->mgmt_class || q->mgmt_class == UMAD_CLASS_CM)
		return false;
	uint32_t oui = umx_is_vendor_range2(q->mgmt_class) ? (q->oui & 0xffffff) : 0;
	for (int s = 0; s < FZ_FILES; s++)
		for (int i = 0; i < 32; i++) {
			const struct magent *a = &model[s].a[i];
			if (a->live && a->cls == q->mgmt_class && a->ver == q->mgmt_class_version &&
			    a->oui == oui &&
			    ((a->mask[0] & q->method_mask[0]) || (a->mask[1] & q->method_mask[1])))
				return true;
		}
	return false;
}

static int lowest_free(int s)
{
	for (int i = 0; i < 32; i++)
		if (!model[s].a[i].live)
			return i;
	return 32;
}

static void do_register(struct fz *x, int s, struct ib_user_mad_reg_req2 *q2, bool agent2,
			const uint8_t *raw_v1)
{
	struct umx_file *f = x->file[s];
	const struct umx_node_policy *pol = umx_node_policy(umx_file_node(f));
	unsigned node = x->file_node[s];
	bool co;
	long ret;
	int want_id = lowest_free(s);
	bool full = want_id == 32;
	uint8_t before[sizeof(struct ib_user_mad_reg_req2)], after[sizeof(before)];
	size_t sz;
	struct ib_user_mad_reg_req2 q;   /* what the kernel decodes */

	if (agent2) {
		sz = sizeof(*q2);
		memcpy(before, q2, sz);
		q = *q2;
		ret = fz_ioctl(x, s, IB_USER_MAD_REGISTER_AGENT2, q2, &co);
		memcpy(after, q2, sz);
	} else {
		struct ib_user_mad_reg_req v1;
		sz = sizeof(v1);
		memcpy(&v1, raw_v1, sz);
		memcpy(before, &v1, sz);
		memset(&q, 0, sizeof(q));
		q.qpn = v1.qpn;
		q.mgmt_class = v1.mgmt_class;
		q.mgmt_class_version = v1.mgmt_class_version;
		q.oui = (uint32_t)v1.oui[0] << 16 | (uint32_t)v1.oui[1] << 8 | v1.oui[2];
		q.rmpp_version = v1.rmpp_version;
		memcpy(q.method_mask, v1.method_mask, sizeof(q.method_mask));
		ret = fz_ioctl(x, s, IB_USER_MAD_REGISTER_AGENT, &v1, &co);
		memcpy(after, &v1, sz);
	}
	size_t id_off = agent2 ? offsetof(struct ib_user_mad_reg_req2, id)
			       : offsetof(struct ib_user_mad_reg_req, id);

	if (ret == 0) {
		FZ_ASSERT(co);
		uint32_t id;
		memcpy(&id, after + id_off, 4);
		FZ_ASSERTF((int)id == want_id, "new agent id %u, lowest free %d", id, want_id);
		/* only the id was written */
		memcpy(after + id_off, before + id_off, 4);
		FZ_ASSERTF(!memcmp(before, after, sz), "register wrote more than the id");
		FZ_ASSERTF(!surely_invalid(&q, agent2),
			   "accepted an invalid request: qpn %u class 0x%02x ver %u rmpp %u flags 0x%x oui 0x%x",
			   q.qpn, q.mgmt_class, q.mgmt_class_version, q.rmpp_version, q.flags, q.oui);
		FZ_ASSERTF(!conflicts(&q), "accepted a method another agent owns (class 0x%02x)",
			   q.mgmt_class);
		FZ_ASSERT(!full);
		FZ_ASSERTF(q.qpn != 0 || pol->privileged, "QP0 agent on unprivileged node %u", node);
		FZ_ASSERT(!x->port.no_qp0 || q.qpn != 0);
		if (q.mgmt_class)
			FZ_ASSERT(fz_class_allowed(pol, q.mgmt_class));
		struct magent *a = &model[s].a[id];
		memset(a, 0, sizeof(*a));
		a->live = true;
		a->qpn = (uint8_t)q.qpn;
		a->cls = q.mgmt_class;
		if (q.mgmt_class) {
			a->ver = q.mgmt_class_version;
			a->oui = umx_is_vendor_range2(q.mgmt_class) ? (q.oui & 0xffffff) : 0;
			memcpy(a->mask, q.method_mask, sizeof(a->mask));
		}
		if (!model[s].used) {
			model[s].used = true;
			if (agent2)
				model[s].pkey = true;
		}
	} else {
		FZ_ASSERTF(ret == -EINVAL || ret == -ENOMEM || ret == -EPROTONOSUPPORT ||
				   ret == -EPERM,
			   "register errno %ld", ret);
		if (q.qpn > 1)
			FZ_ASSERT(ret == -EINVAL);
		if (agent2 && q.qpn <= 1 && (q.flags & ~(uint32_t)IB_USER_MAD_REG_FLAGS_CAP)) {
			/* ib_umad_reg_agent2(): put_user(IB_USER_MAD_REG_FLAGS_CAP) + EINVAL */
			FZ_ASSERT(ret == -EINVAL && co);
			uint32_t fl;
			memcpy(&fl, after + offsetof(struct ib_user_mad_reg_req2, flags), 4);
			FZ_ASSERTF(fl == IB_USER_MAD_REG_FLAGS_CAP, "flags written back 0x%x", fl);
			memcpy(after + offsetof(struct ib_user_mad_reg_req2, flags),
			       before + offsetof(struct ib_user_mad_reg_req2, flags), 4);
			FZ_ASSERTF(!memcmp(before, after, sz), "flags write-back touched other fields");
		} else {
			FZ_ASSERTF(!co, "failed register (%ld) asks for a copy-out", ret);
			if (full && q.qpn <= 1)
				FZ_ASSERTF(ret == -ENOMEM, "33rd agent: %ld", ret);
		}
	}
	FZ_ASSERT(model[s].used == (ret == 0 || model[s].used));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	static struct fz x;
	unsigned steps = 0;

	uint8_t cfg = fz_u8(&in);
	fz_setup(&x, cfg, fz_u8(&in));
	for (int s = 0; s < FZ_FILES; s++) {
		model_reset(s);
		fz_open(&x, s, (unsigned)s);
	}
	while (in.n && steps++ < 512) {
		uint8_t op = fz_u8(&in);
		int s = (op >> 4) % FZ_FILES;
		bool co;

		if (!x.file[s]) {
			model_reset(s);
			if (!fz_open(&x, s, op >> 6))
				continue;
		}
		switch (op & 15) {
		case 0: case 1: { /* AGENT2, raw */
			struct ib_user_mad_reg_req2 q;
			fz_bytes(&in, &q, sizeof(q));
			do_register(&x, s, &q, true, NULL);
			break;
		}
		case 2: case 3: case 4: { /* AGENT2, structured */
			struct ib_user_mad_reg_req2 q;
			fz_reg2_req(&in, &q);
			do_register(&x, s, &q, true, NULL);
			break;
		}
		case 5: { /* AGENT, raw */
			uint8_t raw[sizeof(struct ib_user_mad_reg_req)];
			fz_bytes(&in, raw, sizeof(raw));
			do_register(&x, s, NULL, false, raw);
			break;
		}
		case 6: case 7: { /* AGENT, structured */
			struct ib_user_mad_reg_req2 q;
			struct ib_user_mad_reg_req v1;
			fz_reg2_req(&in, &q);
			fz_reg2_to_v1(&q, &v1);
			do_register(&x, s, NULL, false, (const uint8_t *)&v1);
			break;
		}
		case 8: case 9: { /* UNREGISTER */
			uint8_t b = fz_u8(&in);
			uint32_t id = (b & 0x80) ? fz_u32(&in) : b % 34;
			long ret = fz_ioctl(&x, s, IB_USER_MAD_UNREGISTER_AGENT, &id, &co);
			bool live = id < 32 && model[s].a[id].live;
			FZ_ASSERTF(ret == (live ? 0 : -EINVAL), "unregister %u (live %d): %ld", id, live, ret);
			FZ_ASSERT(!co);
			if (live)
				model[s].a[id].live = false;
			break;
		}
		case 10: { /* ENABLE_PKEY */
			long ret = fz_ioctl(&x, s, IB_USER_MAD_ENABLE_PKEY, NULL, &co);
			FZ_ASSERTF(ret == (model[s].used ? -EINVAL : 0), "ENABLE_PKEY (used %d): %ld",
				   model[s].used, ret);
			if (!ret)
				model[s].pkey = true;
			break;
		}
		case 11: { /* unknown command, or a known number with another size/direction */
			uint8_t b = fz_u8(&in);
			unsigned cmd;
			if (b & 1) {
				unsigned dir = (b >> 1) & 3, nr = fz_u8(&in) % 8;
				unsigned sz = (b & 8) ? fz_u16(&in) % 512 : (b >> 4) * 4;
				cmd = _IOC(dir, IB_IOCTL_MAGIC, nr, sz);
			} else {
				cmd = fz_u32(&in);
			}
			size_t sz = _IOC_SIZE(cmd);
			uint8_t *arg = malloc(sz ? sz : 1);
			FZ_ASSERT(arg != NULL);
			fz_bytes(&in, arg, sz);
			if (cmd == IB_USER_MAD_REGISTER_AGENT || cmd == IB_USER_MAD_REGISTER_AGENT2 ||
			    cmd == IB_USER_MAD_UNREGISTER_AGENT || cmd == IB_USER_MAD_ENABLE_PKEY) {
				free(arg);
				break;   /* known ones go through the model above */
			}
			long ret = fz_ioctl(&x, s, cmd, arg, &co);
			FZ_ASSERTF(ret == -ENOTTY && !co, "unknown ioctl 0x%x: %ld", cmd, ret);
			free(arg);
			break;
		}
		case 12: /* release (the model forgets the file) */
			fz_release(&x, s);
			model_reset(s);
			break;
		case 13: /* reopen on another node */
			model_reset(s);
			fz_open(&x, s, fz_u8(&in));
			break;
		case 14: { /* register the same request on two files: the second conflicts */
			struct ib_user_mad_reg_req2 q, q2;
			fz_reg2_req(&in, &q);
			q2 = q;
			do_register(&x, s, &q, true, NULL);
			int t = (s + 1) % FZ_FILES;
			if (x.file[t])
				do_register(&x, t, &q2, true, NULL);
			break;
		}
		case 15: { /* a policy reload (open files keep their agents) */
			unsigned n = fz_u8(&in) % FZ_NODES;
			struct umx_node_policy p = fz_policy(n, fz_u8(&in));
			umx_node_set_policy(x.node[n], &p);
			break;
		}
		}
		if (x.file[s]) {
			size_t hs = umx_file_hdr_size(x.file[s]);
			FZ_ASSERTF(hs == (model[s].pkey ? FZ_HDR_NEW : FZ_HDR_OLD),
				   "header size %zu, model says pkey %d", hs, model[s].pkey);
		}
		fz_check(&x);
		struct umx_router_stats st;
		umx_router_stats(x.r, &st);
		unsigned live = 0;
		for (int t = 0; t < FZ_FILES; t++)
			for (int i = 0; i < 32; i++)
				live += x.file[t] && model[t].a[i].live;
		FZ_ASSERTF(st.vagents == live, "router has %u agents, model %u", st.vagents, live);
	}
	fz_teardown(&x);
	return 0;
}
