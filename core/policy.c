/*
 * policy.c - what a node (one tenant) may do on the shared port.  Every
 * refusal has an errno and a counter:
 *   QP0 registration on an unprivileged node  EPROTONOSUPPORT (what
 *       ib_register_mad_agent() answers on a port without QP0)
 *   class not allowed (register or send)      EPERM
 *   GRH send from another gid index           EPERM
 *   send on a P_Key index not allowed         EPERM
 *   rate limit (token bucket) exceeded        ENOBUFS
 * and unsolicited MADs that arrived on a P_Key index the node may not use
 * are dropped (rx_drop_pkey_policy).
 */
#include <errno.h>
#include <time.h>

#include "core_int.h"

uint64_t umx_clock_monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool class_ok(const struct umx_node_policy *p, uint8_t c)
{
	return !p->classes_restricted || ((p->classes[c / 64] >> (c % 64)) & 1);
}

static bool pkey_ok(const struct umx_node_policy *p, uint16_t idx)
{
	if (!p->npkeys)
		return true;
	for (unsigned i = 0; i < p->npkeys && i < UMX_POLICY_MAX_PKEYS; i++)
		if (p->pkey_index[i] == idx)
			return true;
	return false;
}

int umx_policy_reg_qp(struct umx_node *n, const struct ib_user_mad_reg_req2 *req)
{
	if (req->qpn == 0 && !n->pol.privileged) {
		umx_count(n->r, n, UMX_C_REG_POLICY);
		return -EPROTONOSUPPORT;
	}
	return 0;
}

int umx_policy_reg(struct umx_node *n, const struct ib_user_mad_reg_req2 *req)
{
	if (req->mgmt_class && !class_ok(&n->pol, req->mgmt_class)) {
		umx_count(n->r, n, UMX_C_REG_POLICY);
		return -EPERM;
	}
	return 0;
}

/* token bucket: one token per MAD, refilled at pol.rate per second */
static bool rate_ok(struct umx_node *n)
{
	const struct umx_node_policy *p = &n->pol;
	if (!p->rate)
		return true;
	const uint64_t cost = 1000000000ull;              /* one MAD, in ns-of-rate */
	/* at most 1e8/s (and bucket depth): 10 s * 1e8 * 1e9 stays below 2^64 */
	uint64_t rate = p->rate < 100000000 ? p->rate : 100000000;
	uint64_t burst = p->burst ? (p->burst < 100000000 ? p->burst : 100000000) : rate;
	uint64_t depth = burst * cost;
	uint64_t now = n->r->now_ns();
	if (n->last_ns == 0) {
		n->tokens_ns = depth;
	} else if (now - n->last_ns >= 10000000000ull) {
		n->tokens_ns = depth;                     /* idle 10 s: full (no overflow) */
	} else if (now > n->last_ns) {
		uint64_t add = (now - n->last_ns) * rate;
		n->tokens_ns = add >= depth - n->tokens_ns ? depth : n->tokens_ns + add;
	}
	n->last_ns = now;
	if (n->tokens_ns < cost)
		return false;
	n->tokens_ns -= cost;
	return true;
}

int umx_policy_send(struct umx_node *n, const struct ib_user_mad_hdr *hdr, const uint8_t *mad)
{
	const struct umx_node_policy *p = &n->pol;

	if (!class_ok(p, mad[1]) ||
	    (p->gid_index >= 0 && hdr->grh_present && hdr->gid_index != p->gid_index) ||
	    !pkey_ok(p, hdr->pkey_index)) {
		umx_count(n->r, n, UMX_C_TX_POLICY);
		return -EPERM;
	}
	if (!rate_ok(n)) {
		umx_count(n->r, n, UMX_C_TX_RATE);
		return -ENOBUFS;
	}
	return 0;
}

bool umx_policy_recv(struct umx_node *n, const struct ib_user_mad_hdr *hdr)
{
	if (pkey_ok(&n->pol, hdr->pkey_index))
		return true;
	umx_count(n->r, n, UMX_C_RX_PKEY);
	return false;
}
