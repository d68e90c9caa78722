/*
 * cm.c - the communication-management class (0x07) shared by many clients,
 * the way mlx4's cm.c paravirtualises it for SR-IOV functions:
 *
 *  - several virtual agents may register CM (every CM message uses method
 *    Send, so method ownership cannot tell them apart);
 *  - outgoing: the local communication id a client chose (data offset 0;
 *    the request id of SIDR_REQ) is replaced by a router-unique id, so two
 *    clients that pick the same id never collide on the wire;
 *  - incoming: a message naming our id in its remote-comm-id field (offset
 *    4; offset 0 of SIDR_REP) goes to the client that owns it, with the
 *    client's own id written back; a REQ or SIDR_REQ goes to the node whose
 *    bound GID it targets (the GRH's destination, which the kernel reports
 *    as hdr.gid_index, or the REQ's primary remote port GID without GRH);
 *  - entries die a grace period after DREP/REJ (at most ~64 s after a DREQ
 *    that gets no DREP), or with the file.
 * Unroutable messages are dropped and counted (rx_drop_cm_unroutable).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core_int.h"

#define CM_OFF 24                 /* CM message data after the MAD header */
#define LOCAL_ID (CM_OFF + 0)
#define REMOTE_ID (CM_OFF + 4)
#define REQ_REMOTE_GID (CM_OFF + 72)   /* REQ primary remote port GID */
#define IDX_BITS 16

static uint16_t attr_id(const uint8_t *mad) { return (uint16_t)(mad[16] << 8 | mad[17]); }

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return be32toh(v);
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, 4);
}

bool umx_cm_is_shared_class(uint8_t mgmt_class)
{
	return mgmt_class == UMAD_CLASS_CM;
}

int umx_cm_init(struct umx_cm *cm, uint32_t size, uint64_t grace_ns)
{
	uint32_t s = 16;
	while (s < size && s < (1u << IDX_BITS))
		s <<= 1;
	cm->e = calloc(s, sizeof(*cm->e));
	cm->by_client = calloc(s, sizeof(*cm->by_client));
	if (!cm->e || !cm->by_client) {
		free(cm->e);
		free(cm->by_client);
		return -ENOMEM;
	}
	cm->size = s;
	cm->used = 0;
	cm->grace_ns = grace_ns;
	for (uint32_t i = 0; i < s; i++)
		cm->e[i].next_free = i + 1;
	cm->free_head = 0;
	return 0;
}

void umx_cm_fini(struct umx_cm *cm)
{
	free(cm->e);
	free(cm->by_client);
	cm->e = NULL;
	cm->by_client = NULL;
}

static uint32_t client_hash(const struct umx_cm *cm, const struct umx_file *f, uint32_t id, bool sidr)
{
	uint64_t h = (uint64_t)(uintptr_t)f * 0x9e3779b97f4a7c15ull ^ ((uint64_t)id << 1 | sidr) * 0xc2b2ae3d27d4eb4full;
	return (uint32_t)(h >> 40) & (cm->size - 1);
}

static struct umx_cm_entry *find_client(struct umx_cm *cm, const struct umx_file *f, uint32_t id, bool sidr)
{
	for (uint32_t i = cm->by_client[client_hash(cm, f, id, sidr)]; i; i = cm->e[i - 1].hash_next) {
		struct umx_cm_entry *e = &cm->e[i - 1];
		if (e->file == f && e->client_id == id && e->sidr == sidr)
			return e;
	}
	return NULL;
}

static struct umx_cm_entry *find_router(struct umx_cm *cm, uint32_t rid, bool sidr)
{
	uint32_t idx = rid & ((1u << IDX_BITS) - 1);
	if (idx >= cm->size)
		return NULL;
	struct umx_cm_entry *e = &cm->e[idx];
	if (!e->file || e->router_id != rid || e->sidr != sidr)
		return NULL;
	return e;
}

static struct umx_cm_entry *alloc_entry(struct umx_cm *cm, struct umx_vagent *va, uint32_t id, bool sidr)
{
	if (cm->free_head >= cm->size)
		return NULL;
	uint32_t idx = cm->free_head;
	struct umx_cm_entry *e = &cm->e[idx];
	cm->free_head = e->next_free;
	e->gen = (uint16_t)(e->gen + 1);
	if (!e->gen)
		e->gen = 1;                 /* router ids are never 0 */
	e->file = va->file;
	e->agent = va;
	e->client_id = id;
	e->sidr = sidr;
	e->router_id = (uint32_t)e->gen << IDX_BITS | idx;
	e->expire_ns = 0;
	uint32_t b = client_hash(cm, va->file, id, sidr);
	e->hash_next = cm->by_client[b];
	cm->by_client[b] = idx + 1;
	cm->used++;
	va->cm_ids++;
	return e;
}

static void free_entry(struct umx_cm *cm, struct umx_cm_entry *e)
{
	uint32_t idx = (uint32_t)(e - cm->e);
	uint32_t *link = &cm->by_client[client_hash(cm, e->file, e->client_id, e->sidr)];
	while (*link && *link != idx + 1)
		link = &cm->e[*link - 1].hash_next;
	if (*link)
		*link = e->hash_next;
	e->agent->cm_ids--;
	e->file = NULL;
	e->agent = NULL;
	e->next_free = cm->free_head;
	cm->free_head = idx;
	cm->used--;
}

/*
 * How long a connection's ids stay mapped once it is being torn down: a
 * DREP or REJ ends it (then the grace period, for retransmissions); a DREQ
 * only starts the wait for the DREP, which the kernel's ib_cm retries for
 * up to max_cm_retries (15 for rdma_cm) x the response timeout (4.3 s for
 * rdma_cm's default 20): about 64 s, after which the connection is gone
 * whether or not a DREP came.
 */
#define DREQ_WAIT_NS (64ull * 1000000000ull)

uint64_t umx_cm_expiry(uint16_t attr, uint64_t now, uint64_t grace_ns, uint64_t cur)
{
	uint64_t t;

	if (attr == UMAD_CM_ATTR_DREP || attr == UMAD_CM_ATTR_REJ)
		t = now + grace_ns;
	else if (attr == UMAD_CM_ATTR_DREQ)
		t = now + DREQ_WAIT_NS + grace_ns;
	else
		return cur;
	return !cur || t < cur ? t : cur;
}

static void teardown_step(struct umx_router *r, struct umx_cm_entry *e, uint16_t attr)
{
	e->expire_ns = umx_cm_expiry(attr, r->now_ns(), r->cm.grace_ns, e->expire_ns);
}

/*
 * A client sends a CM message: its local comm id (or SIDR request id)
 * becomes a router id.  Returns 0 or -errno (-ENOMEM: table full).
 */
int umx_cm_outgoing(struct umx_router *r, struct umx_vagent *va, uint8_t *mad, size_t len)
{
	struct umx_cm *cm = &r->cm;
	uint16_t attr = attr_id(mad);

	if (len < REMOTE_ID + 4 || attr < UMAD_CM_ATTR_REQ || attr > UMAD_CM_ATTR_APR)
		return 0;
	if (attr == UMAD_CM_ATTR_SIDR_REP)
		return 0;                     /* offset 0 holds the requester's id */
	bool sidr = attr == UMAD_CM_ATTR_SIDR_REQ;
	uint32_t id = get32(mad + LOCAL_ID);
	if (!id)
		return 0;                     /* e.g. a REJ before any id exists */
	struct umx_cm_entry *e = find_client(cm, va->file, id, sidr);
	if (!e) {
		e = alloc_entry(cm, va, id, sidr);
		if (!e) {
			umx_count(r, va->file->node, UMX_C_TX_CM_FULL);
			return -ENOMEM;
		}
	}
	put32(mad + LOCAL_ID, e->router_id);
	teardown_step(r, e, attr);
	return 0;
}

/* the node a REQ/SIDR_REQ is for: bound gid index (GRH), else bound GID */
static struct umx_node *node_for_request(struct umx_router *r, const struct ib_user_mad_hdr *hdr,
					 const uint8_t *mad, size_t len, uint16_t attr)
{
	struct umx_node *only = NULL;
	unsigned candidates = 0;

	for (struct umx_node *n = r->nodes; n; n = n->next) {
		if (!n->cm_agents)
			continue;
		if (hdr->grh_present && n->pol.gid_index >= 0) {
			if (n->pol.gid_index == hdr->gid_index)
				return n;
		} else if (!hdr->grh_present && n->pol.has_gid && attr == UMAD_CM_ATTR_REQ &&
			   len >= REQ_REMOTE_GID + 16 && !memcmp(mad + REQ_REMOTE_GID, n->pol.gid, 16)) {
			return n;
		}
		candidates++;
		only = n;
	}
	/* a single CM user with no binding takes everything, like one kernel agent */
	if (candidates == 1 && only->pol.gid_index < 0 && !only->pol.has_gid)
		return only;
	return NULL;
}

static struct umx_vagent *cm_agent_of(struct umx_node *n)
{
	for (struct umx_file *f = n->files; f; f = f->next)
		for (unsigned i = 0; i < UMX_MAX_AGENTS; i++)
			if (f->agent[i] && f->agent[i]->mgmt_class == UMAD_CLASS_CM)
				return f->agent[i];
	return NULL;
}

/*
 * An incoming CM message: returns the agent it is for (and rewrites our
 * router id back to the client's id), or NULL when nobody can take it.
 */
struct umx_vagent *umx_cm_incoming(struct umx_router *r, const struct ib_user_mad_hdr *hdr,
				   uint8_t *mad, size_t len)
{
	struct umx_cm *cm = &r->cm;
	uint16_t attr = attr_id(mad);
	struct umx_vagent *va = NULL;

	if (len < REMOTE_ID + 4) {
		r->ctr[UMX_C_RX_CM_UNROUTABLE]++;
		return NULL;
	}
	if (attr == UMAD_CM_ATTR_REQ || attr == UMAD_CM_ATTR_SIDR_REQ) {
		struct umx_node *n = node_for_request(r, hdr, mad, len, attr);
		va = n ? cm_agent_of(n) : NULL;
	} else {
		bool sidr = attr == UMAD_CM_ATTR_SIDR_REP;
		unsigned off = sidr ? LOCAL_ID : REMOTE_ID;
		struct umx_cm_entry *e = find_router(cm, get32(mad + off), sidr);
		if (e) {
			put32(mad + off, e->client_id);
			va = e->agent;
			teardown_step(r, e, sidr ? UMAD_CM_ATTR_REJ : attr);   /* a SIDR_REP ends it */
		}
	}
	if (!va)
		r->ctr[UMX_C_RX_CM_UNROUTABLE]++;
	return va;
}

/* the grace period is over for entries of ended connections */
unsigned umx_cm_expire(struct umx_router *r)
{
	struct umx_cm *cm = &r->cm;
	uint64_t now = r->now_ns();
	unsigned n = 0;

	for (uint32_t i = 0; i < cm->size && cm->used; i++) {
		struct umx_cm_entry *e = &cm->e[i];
		if (e->file && e->expire_ns && e->expire_ns <= now) {
			free_entry(cm, e);
			n++;
		}
	}
	return n;
}

void umx_cm_forget_agent(struct umx_router *r, struct umx_vagent *va)
{
	struct umx_cm *cm = &r->cm;
	for (uint32_t i = 0; i < cm->size && va->cm_ids; i++)
		if (cm->e[i].agent == va)
			free_entry(cm, &cm->e[i]);
}
