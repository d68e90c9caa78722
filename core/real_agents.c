/*
 * real_agents.c - the agents umad-mux holds on the real port.
 *
 * The kernel cannot change an agent's method mask, and unregistering an
 * agent cancels its sends, so the router never re-registers:
 *  - sends of every virtual agent go through one real "send agent" per
 *    (qpn, kernel-RMPP) - responses find it by its hi_tid, and our TID
 *    table finds the client;
 *  - methods are received by "receive agents" per (class, version[, OUI]):
 *    when a virtual agent asks for methods no receive agent holds yet, one
 *    more real agent is registered with exactly those methods; a receive
 *    agent is unregistered once none of its methods is owned any more.
 * Method conflicts between virtual agents are judged here with the
 * kernel's rule (is_vendor_method_in_use()/method_in_use() -> EINVAL).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core_int.h"

static bool mask_test(const uint64_t m[2], unsigned bit)
{
	return (m[bit / 64] >> (bit % 64)) & 1;
}

static int port_reg(struct umx_router *r, struct ib_user_mad_reg_req2 *req)
{
	int ret = r->port->ops->reg(r->port, req);
	if (!ret) {
		r->nreal++;
		r->ctr[UMX_C_REAL_AGENTS]++;
	}
	return ret;
}

static void port_unreg(struct umx_router *r, uint32_t id)
{
	r->port->ops->unreg(r->port, id);
	r->nreal--;
}

int umx_real_qp_check(struct umx_router *r, uint8_t qpn)
{
	if (r->send[qpn][0].valid || r->send[qpn][1].valid)
		return 0;
	if (!r->qp_state[qpn]) {
		struct ib_user_mad_reg_req2 req = { .qpn = qpn };
		int ret = r->port->ops->reg(r->port, &req);
		if (!ret)
			r->port->ops->unreg(r->port, req.id);
		r->qp_state[qpn] = ret ? ret : 1;
	}
	return r->qp_state[qpn] < 0 ? r->qp_state[qpn] : 0;
}

static struct umx_sendagent *send_agent(struct umx_router *r, const struct umx_vagent *va)
{
	bool kernel_rmpp = va->rmpp_version && !(va->flags & IB_USER_MAD_USER_RMPP);
	return &r->send[va->qpn][kernel_rmpp];
}

static int send_get(struct umx_router *r, struct umx_vagent *va)
{
	struct umx_sendagent *sa = send_agent(r, va);

	if (!sa->valid) {
		struct ib_user_mad_reg_req2 req = {
			.qpn = va->qpn,
			.rmpp_version = (va->rmpp_version && !(va->flags & IB_USER_MAD_USER_RMPP))
						? UMAD_RMPP_VERSION : 0,
		};
		int ret = port_reg(r, &req);
		if (ret)
			return ret;
		sa->valid = true;
		sa->real_id = req.id;
		sa->qpn = va->qpn;
		sa->kernel_rmpp = req.rmpp_version != 0;
	}
	sa->refs++;
	va->send = sa;
	return 0;
}

static void sendagent_put(struct umx_router *r, struct umx_sendagent *sa)
{
	if (--sa->refs == 0) {
		port_unreg(r, sa->real_id);
		sa->valid = false;
	}
}

/*
 * Class send agents stay registered when idle (a bounded cache): short-lived
 * clients such as diag tools then cost no register/unregister each, and a
 * response that arrives after its client left still finds an agent of its
 * class - umad2sim crashes on a MAD of a class with no agent.
 */
static void send_put(struct umx_router *r, struct umx_vagent *va)
{
	for (unsigned i = 0; va->class_sends; i++) {
		if (va->class_sends & (1u << i)) {
			va->class_sends &= ~(1u << i);
			r->send_cls[i].refs--;
		}
	}
	if (va->send)
		sendagent_put(r, va->send);
	va->send = NULL;
}

/* may a class agent (empty mask) be registered for this MAD? the same
 * checks ib_register_mad_agent() makes */
static bool class_agent_ok(uint8_t qpn, uint8_t cls, uint8_t ver, uint32_t oui)
{
	struct ib_user_mad_reg_req2 req = {
		.qpn = qpn, .mgmt_class = cls, .mgmt_class_version = ver, .oui = oui,
	};
	return cls && umx_check_reg_agent(&req, true) == 0;
}

uint32_t umx_real_send_id(struct umx_router *r, struct umx_vagent *va, const uint8_t *mad, size_t len)
{
	uint8_t cls = mad[1], ver = mad[2];
	uint32_t oui = 0;
	bool kernel_rmpp = va->send->kernel_rmpp && umx_is_rmpp_class(cls);
	unsigned i, free_slot = UMX_SEND_CLASS_AGENTS;

	if (umx_is_vendor_range2(cls)) {
		if (len < UMX_VENDOR_OUI_OFF + 3)
			return va->send->real_id;
		oui = umx_mad_oui(mad);
	}
	if (!class_agent_ok(va->qpn, cls, ver, oui))
		return va->send->real_id;
	for (i = 0; i < UMX_SEND_CLASS_AGENTS; i++) {
		struct umx_sendagent *sa = &r->send_cls[i];
		if (!sa->valid) {
			if (free_slot == UMX_SEND_CLASS_AGENTS)
				free_slot = i;
			continue;
		}
		if (sa->qpn == va->qpn && sa->kernel_rmpp == kernel_rmpp && sa->mgmt_class == cls &&
		    sa->class_version == ver && sa->oui == oui)
			break;
	}
	if (i == UMX_SEND_CLASS_AGENTS) {
		if (free_slot == UMX_SEND_CLASS_AGENTS) {
			/* evict an idle cached agent, else the generic agent sends */
			for (unsigned j = 0; j < UMX_SEND_CLASS_AGENTS; j++) {
				if (!r->send_cls[j].refs) {
					port_unreg(r, r->send_cls[j].real_id);
					r->send_cls[j].valid = false;
					free_slot = j;
					break;
				}
			}
			if (free_slot == UMX_SEND_CLASS_AGENTS)
				return va->send->real_id;
		}
		struct ib_user_mad_reg_req2 req = {
			.qpn = va->qpn, .mgmt_class = cls, .mgmt_class_version = ver, .oui = oui,
			.rmpp_version = kernel_rmpp ? UMAD_RMPP_VERSION : 0,
		};
		if (port_reg(r, &req))
			return va->send->real_id;
		i = free_slot;
		r->send_cls[i] = (struct umx_sendagent){
			.valid = true, .qpn = va->qpn, .kernel_rmpp = kernel_rmpp, .mgmt_class = cls,
			.class_version = ver, .oui = oui, .real_id = req.id,
		};
	}
	if (!(va->class_sends & (1u << i))) {
		va->class_sends |= 1u << i;
		r->send_cls[i].refs++;
	}
	return r->send_cls[i].real_id;
}

static struct umx_classkey *key_find(struct umx_router *r, uint8_t cls, uint8_t ver, uint32_t oui)
{
	for (struct umx_classkey *k = r->keys[cls]; k; k = k->next)
		if (k->class_version == ver && k->oui == oui)
			return k;
	return NULL;
}

static void key_free_if_unused(struct umx_router *r, struct umx_classkey *k)
{
	if (k->nowners || k->nreal)
		return;
	struct umx_classkey **link = &r->keys[k->mgmt_class];
	while (*link != k)
		link = &(*link)->next;
	*link = k->next;
	free(k);
}

/* methods of va that no receive agent of k holds yet */
static void uncovered(const struct umx_classkey *k, const struct umx_vagent *va, uint64_t out[2])
{
	out[0] = va->method_mask[0];
	out[1] = va->method_mask[1];
	for (unsigned i = 0; i < k->nreal; i++) {
		out[0] &= ~k->real[i].mask[0];
		out[1] &= ~k->real[i].mask[1];
	}
}

int umx_real_attach(struct umx_router *r, struct umx_vagent *va)
{
	struct umx_classkey *k;
	uint64_t need[2];
	int ret;

	ret = send_get(r, va);
	if (ret)
		return ret;
	if (!va->mgmt_class)
		return 0;

	k = key_find(r, va->mgmt_class, va->class_version, va->oui);
	if (!k) {
		k = calloc(1, sizeof(*k));
		if (!k) {
			send_put(r, va);
			return -ENOMEM;
		}
		k->mgmt_class = va->mgmt_class;
		k->class_version = va->class_version;
		k->oui = va->oui;
		k->qpn = va->qpn;
		k->next = r->keys[va->mgmt_class];
		r->keys[va->mgmt_class] = k;
	}
	/* method_in_use(): a method already owned on this port -> EINVAL;
	 * the router's shared classes (CM) are steered, not owned */
	bool shared = umx_cm_is_shared_class(va->mgmt_class);
	for (unsigned m = 0; m < 128 && !shared; m++) {
		if (mask_test(va->method_mask, m) && k->owner[m]) {
			ret = -EINVAL;
			goto fail;
		}
	}
	uncovered(k, va, need);
	if (need[0] || need[1]) {
		if (k->nreal == sizeof(k->real) / sizeof(k->real[0])) {
			ret = -ENOMEM;
			goto fail;
		}
		struct ib_user_mad_reg_req2 req = {
			.qpn = va->qpn,
			.mgmt_class = va->mgmt_class,
			.mgmt_class_version = va->class_version,
			.flags = va->flags,
			.method_mask = { need[0], need[1] },
			.oui = va->oui,
			.rmpp_version = va->rmpp_version,
		};
		ret = port_reg(r, &req);
		if (ret)
			goto fail;
		struct umx_recvagent *ra = &k->real[k->nreal++];
		ra->real_id = req.id;
		ra->rmpp_version = va->rmpp_version;
		ra->flags = va->flags;
		ra->mask[0] = need[0];
		ra->mask[1] = need[1];
	}
	for (unsigned m = 0; m < 128 && !shared; m++)
		if (mask_test(va->method_mask, m))
			k->owner[m] = va;
	k->nowners++;
	va->key = k;
	if (shared)
		va->file->node->cm_agents++;
	return 0;
fail:
	key_free_if_unused(r, k);
	send_put(r, va);
	return ret;
}

void umx_real_detach(struct umx_router *r, struct umx_vagent *va)
{
	struct umx_classkey *k = va->key;

	if (k) {
		uint64_t owned[2] = { 0, 0 };
		bool shared = umx_cm_is_shared_class(k->mgmt_class);
		for (unsigned m = 0; m < 128; m++) {
			if (k->owner[m] == va)
				k->owner[m] = NULL;
			if (k->owner[m])
				owned[m / 64] |= 1ull << (m % 64);
		}
		k->nowners--;
		if (shared) {
			va->file->node->cm_agents--;
			if (k->nowners)   /* a shared class keeps its real agents while used */
				owned[0] = owned[1] = ~0ull;
		}
		for (unsigned i = 0; i < k->nreal;) {
			struct umx_recvagent *ra = &k->real[i];
			if ((ra->mask[0] & owned[0]) || (ra->mask[1] & owned[1])) {
				i++;
				continue;
			}
			port_unreg(r, ra->real_id);
			k->real[i] = k->real[--k->nreal];
		}
		va->key = NULL;
		key_free_if_unused(r, k);
	}
	send_put(r, va);
}

/* find_mad_agent() for a request: version, class, method [, OUI] */
struct umx_vagent *umx_real_owner(struct umx_router *r, const uint8_t *mad, size_t len)
{
	uint8_t cls = mad[1], ver = mad[2], method = mad[3];
	uint32_t oui = 0;

	if (ver >= UMX_MAX_MGMT_VERSION)
		return NULL;
	if (umx_is_vendor_range2(cls)) {
		if (len < UMX_VENDOR_OUI_OFF + 3)
			return NULL;
		oui = umx_mad_oui(mad);
	}
	struct umx_classkey *k = key_find(r, cls, ver, oui);
	return k ? k->owner[method & 0x7f] : NULL;
}

unsigned umx_real_idle_send_agents(const struct umx_router *r)
{
	unsigned n = 0;
	for (unsigned i = 0; i < UMX_SEND_CLASS_AGENTS; i++)
		n += r->send_cls[i].valid && !r->send_cls[i].refs;
	return n;
}

void umx_real_release_idle(struct umx_router *r)
{
	for (unsigned i = 0; i < UMX_SEND_CLASS_AGENTS; i++) {
		if (r->send_cls[i].valid && !r->send_cls[i].refs) {
			port_unreg(r, r->send_cls[i].real_id);
			r->send_cls[i].valid = false;
		}
	}
}

/* the real port is gone: every real agent with it; nothing to unregister */
void umx_real_forget_all(struct umx_router *r)
{
	memset(r->send, 0, sizeof(r->send));
	memset(r->send_cls, 0, sizeof(r->send_cls));
	for (unsigned c = 0; c < 256; c++) {
		while (r->keys[c]) {
			struct umx_classkey *k = r->keys[c];
			r->keys[c] = k->next;
			free(k);
		}
	}
	r->nreal = 0;
	r->qp_state[0] = r->qp_state[1] = 0;
}
