/*
 * router.c - one real port, many virtual files: outgoing MADs get router
 * TIDs, incoming MADs find their client (response/timeout by TID, request
 * by method ownership), and every drop is counted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core_int.h"
#include "router_int.h"

static const char *const counter_names[] = {
#define UMX_C_NAME(id, name, help) name,
	UMX_COUNTERS(UMX_C_NAME)
#undef UMX_C_NAME
};
static const char *const counter_helps[] = {
#define UMX_C_HELP(id, name, help) help,
	UMX_COUNTERS(UMX_C_HELP)
#undef UMX_C_HELP
};

const char *umx_counter_name(enum umx_counter c)
{
	return c < UMX_C_COUNT ? counter_names[c] : "?";
}

const char *umx_counter_help(enum umx_counter c)
{
	return c < UMX_C_COUNT ? counter_helps[c] : "?";
}

struct umx_router *umx_router_new(struct umx_port *port, const struct umx_events *ev,
				  void *ev_ctx, const struct umx_limits *lim)
{
	static const struct umx_limits def = UMX_LIMITS_DEFAULT;
	struct umx_router *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->port = port;
	r->ev = ev;
	r->ev_ctx = ev_ctx;
	r->lim = lim ? *lim : def;
	if (!r->lim.recv_queue_max)
		r->lim.recv_queue_max = def.recv_queue_max;
	if (!r->lim.outstanding_max)
		r->lim.outstanding_max = def.outstanding_max;
	if (!r->lim.files_max)
		r->lim.files_max = def.files_max;
	if (umx_tid_init(&r->tids, r->lim.tid_table_size ? r->lim.tid_table_size
							  : def.tid_table_size)) {
		free(r);
		return NULL;
	}
	r->lim.tid_table_size = r->tids.size;
	if (!r->lim.cm_ids_max)
		r->lim.cm_ids_max = def.cm_ids_max;
	if (!r->lim.cm_grace_ms)
		r->lim.cm_grace_ms = def.cm_grace_ms;
	if (umx_cm_init(&r->cm, r->lim.cm_ids_max, (uint64_t)r->lim.cm_grace_ms * 1000000ull)) {
		umx_tid_fini(&r->tids);
		free(r);
		return NULL;
	}
	if (umx_sa_init(r)) {
		umx_cm_fini(&r->cm);
		umx_tid_fini(&r->tids);
		free(r);
		return NULL;
	}
	r->next_hi_tid = 1;
	r->now_ns = umx_clock_monotonic_ns;
	return r;
}

void umx_router_free(struct umx_router *r)
{
	if (!r)
		return;
	umx_sa_fini(r);          /* first: closing files sends the SA no leaves */
	while (r->nodes)
		umx_node_free(r->nodes);
	umx_real_release_idle(r);
	umx_tid_fini(&r->tids);
	umx_cm_fini(&r->cm);
	free(r);
}

void umx_router_port_down(struct umx_router *r)
{
	if (r->port_down)
		return;
	r->port_down = true;
	r->ctr[UMX_C_PORT_DOWN]++;
	umx_sa_port_down(r);
	for (struct umx_node *n = r->nodes; n; n = n->next)
		for (struct umx_file *f = n->files; f; f = f->next)
			umx_file_kill(f);
	umx_real_forget_all(r);
	/* wake every reader and poller: they get EIO / POLLERR now */
	for (struct umx_node *n = r->nodes; n; n = n->next)
		for (struct umx_file *f = n->files; f; f = f->next)
			if (r->ev && r->ev->file_readable)
				r->ev->file_readable(r->ev_ctx, f);
}

void umx_router_port_up(struct umx_router *r, struct umx_port *port)
{
	r->port = port;
	r->port_down = false;
	r->qp_state[0] = r->qp_state[1] = 0;
}

bool umx_router_port_is_up(const struct umx_router *r)
{
	return !r->port_down;
}

void umx_router_tick(struct umx_router *r)
{
	umx_cm_expire(r);
}

uint64_t umx_router_counter(const struct umx_router *r, enum umx_counter c)
{
	return c < UMX_C_COUNT ? r->ctr[c] : 0;
}

const struct umx_limits *umx_router_limits(const struct umx_router *r)
{
	return &r->lim;
}

void umx_router_stats(const struct umx_router *r, struct umx_router_stats *st)
{
	st->files = r->nfiles;
	st->vagents = r->nvagents;
	st->real_agents = r->nreal;
	st->idle_send_agents = umx_real_idle_send_agents(r);
	st->tids_in_use = r->tids.used;
	st->queued_packets = r->queued;
	st->cm_ids = r->cm.used;
	umx_sa_stats(r, &st->sa_groups, &st->sa_subscriptions, &st->router_agents);
}

/* ---- nodes ---------------------------------------------------------------- */

struct umx_node *umx_node_new(struct umx_router *r, unsigned index,
			      const struct umx_node_policy *pol)
{
	static const struct umx_node_policy def = UMX_NODE_POLICY_DEFAULT;
	struct umx_node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->r = r;
	n->index = index;
	n->pol = pol ? *pol : def;
	n->next = r->nodes;
	r->nodes = n;
	return n;
}

void umx_node_free(struct umx_node *n)
{
	struct umx_router *r = n->r;

	while (n->files)
		umx_file_release(n->files);
	struct umx_node **link = &r->nodes;
	while (*link != n)
		link = &(*link)->next;
	*link = n->next;
	free(n);
}

unsigned umx_node_index(const struct umx_node *n) { return n->index; }
const struct umx_node_policy *umx_node_policy(const struct umx_node *n) { return &n->pol; }

void umx_node_set_policy(struct umx_node *n, const struct umx_node_policy *pol)
{
	n->pol = *pol;
	n->last_ns = 0;          /* the bucket starts full again */
}

void umx_router_set_clock(struct umx_router *r, uint64_t (*now_ns)(void))
{
	r->now_ns = now_ns ? now_ns : umx_clock_monotonic_ns;
}

uint64_t umx_router_now_ns(const struct umx_router *r)
{
	return r->now_ns();
}

uint64_t umx_node_counter(const struct umx_node *n, enum umx_counter c)
{
	return c < UMX_C_COUNT ? n->ctr[c] : 0;
}

/* ---- outgoing ----------------------------------------------------------- */

ssize_t umx_router_send(struct umx_router *r, struct umx_vagent *va,
			const struct ib_user_mad_hdr *hdr, const uint8_t *mad,
			size_t madlen, size_t ret_len)
{
	struct umx_file *f = va->file;
	struct umx_node *n = f->node;
	struct umx_tid_entry *tracked = NULL;
	uint8_t stackbuf[sizeof(struct ib_user_mad_hdr) + UMX_MAD_SIZE];
	uint8_t *buf = stackbuf;
	size_t len = sizeof(struct ib_user_mad_hdr) + madlen;
	int ret;

	ret = umx_policy_send(n, hdr, mad);
	if (ret)
		return ret;
	/* SA: joins, leaves and subscriptions merged, ReportResps absorbed (sa.c) */
	if (mad[1] == UMAD_CLASS_SUBN_ADM) {
		ret = umx_sa_outgoing(r, va, hdr, mad, madlen);
		if (ret)
			return ret < 0 ? ret : (ssize_t)ret_len;
	}
	if (len > sizeof(stackbuf)) {
		buf = malloc(len);
		if (!buf)
			return -ENOMEM;
	}
	struct ib_user_mad_hdr *out = (struct ib_user_mad_hdr *)buf;
	*out = *hdr;
	out->id = umx_real_send_id(r, va, mad, madlen);
	memcpy(buf + sizeof(*out), mad, madlen);

	/* CM: the client's communication id becomes a router id */
	if (mad[1] == UMAD_CLASS_CM) {
		ret = umx_cm_outgoing(r, va, buf + sizeof(*out), madlen);
		if (ret)
			goto out;
	}

	/* requests get a router TID (the kernel then sets the upper 32 bits to
	 * the real agent's hi_tid, as ib_umad_write() does for every request) */
	if (!umx_is_response(mad)) {
		uint64_t tid = umx_mad_tid(mad);
		uint32_t lo;
		if (hdr->timeout_ms) {
			if (f->outstanding >= r->lim.outstanding_max) {
				umx_count(r, n, UMX_C_TX_OUTSTANDING);
				ret = -ENOMEM;
				goto out;
			}
			tracked = umx_tid_alloc(&r->tids, va, (uint32_t)tid, mad[1], &lo, &ret);
			if (!tracked) {
				if (ret == -ENOMEM)
					umx_count(r, n, UMX_C_TX_TID_FULL);
				goto out;
			}
		} else {
			lo = umx_tid_untracked(&r->tids);
		}
		umx_mad_set_tid(buf + sizeof(*out), (tid & ~0xffffffffull) | lo);
	}
	ret = r->port->ops->send(r->port, buf, len);
	if (ret) {
		if (tracked)
			umx_tid_free(&r->tids, tracked);
		umx_count(r, n, UMX_C_TX_ERRORS);
		goto out;
	}
	umx_count(r, n, UMX_C_TX_PACKETS);
	ret = 0;
out:
	if (buf != stackbuf)
		free(buf);
	return ret ? ret : (ssize_t)ret_len;
}

/* ---- incoming ----------------------------------------------------------- */

static void deliver(struct umx_router *r, struct umx_vagent *va, const struct ib_user_mad_hdr *hdr,
		    const uint8_t *mad, size_t madlen, bool recv, const uint64_t *tid)
{
	struct umx_packet *p = umx_packet_new(madlen);

	if (!p) {
		umx_count(r, va->file->node, UMX_C_RX_QUEUE_FULL);
		return;
	}
	p->hdr = *hdr;
	p->recv = recv;
	p->agent = va;
	memcpy(p->data, mad, madlen);
	if (tid)
		umx_mad_set_tid(p->data, *tid);
	umx_file_enqueue(va->file, p);
}

/* CM: steered by bound GID / communication id, which cm.c rewrites in the
 * client's packet itself (its data is the working copy) */
static void deliver_cm(struct umx_router *r, const struct ib_user_mad_hdr *hdr, const uint8_t *mad,
		       size_t madlen)
{
	struct umx_packet *p = umx_packet_new(madlen);

	if (!p) {
		r->ctr[UMX_C_RX_QUEUE_FULL]++;
		return;
	}
	memcpy(p->data, mad, madlen);
	struct umx_vagent *va = umx_cm_incoming(r, hdr, p->data, madlen);
	if (!va || !umx_policy_recv(va->file->node, hdr)) {
		free(p);
		return;
	}
	p->hdr = *hdr;
	p->recv = true;
	p->agent = va;
	umx_file_enqueue(va->file, p);
}

void umx_router_input(struct umx_router *r, const void *umad, size_t len)
{
	const struct ib_user_mad_hdr *hdr = umad;
	const uint8_t *mad = (const uint8_t *)umad + sizeof(*hdr);
	size_t madlen;

	r->ctr[UMX_C_RX_PACKETS]++;
	if (len < sizeof(*hdr) + UMX_MAD_HDR) {
		r->ctr[UMX_C_RX_SHORT]++;
		return;
	}
	madlen = len - sizeof(*hdr);
	/* SA: answers to the router's own requests, and Reports (sa.c) */
	if (mad[1] == UMAD_CLASS_SUBN_ADM && umx_sa_incoming(r, hdr, mad, madlen))
		return;

	/* a send returned by send_handler() (status ETIMEDOUT), or a response:
	 * both belong to the transaction our TID names */
	if (hdr->status || umx_is_response(mad)) {
		struct umx_tid_entry *e = umx_tid_lookup(&r->tids, (uint32_t)umx_mad_tid(mad), mad[1]);
		if (!e) {
			r->ctr[UMX_C_RX_UNMATCHED_RESP]++;
			return;
		}
		struct umx_vagent *va = e->agent;
		uint64_t tid = (uint64_t)va->hi_tid << 32 | e->client_lo;
		umx_tid_free(&r->tids, e);
		if (hdr->status)
			umx_count(r, va->file->node, UMX_C_RX_TIMEOUTS);
		deliver(r, va, hdr, mad, madlen, !hdr->status, &tid);
		return;
	}
	if (umx_cm_is_shared_class(mad[1])) {
		deliver_cm(r, hdr, mad, madlen);
		return;
	}
	struct umx_vagent *va = umx_real_owner(r, mad, madlen);
	if (!va) {
		r->ctr[UMX_C_RX_NO_OWNER]++;
		return;
	}
	if (!umx_policy_recv(va->file->node, hdr))
		return;
	deliver(r, va, hdr, mad, madlen, true, NULL);
}
