/*
 * rdmacm_peers.c - the peer of each CM connection of one rdmacm client GID,
 * so that MADs QEMU pvrdma addressed to the guest itself reach that peer.
 * See rdmacm_peers.h.
 *
 * A connection has up to two keys: the client's local comm id (known from
 * the first message the client sends) and the peer's comm id (known from
 * the first message the peer sends).  A client that answers a REQ names
 * the peer's id only (its REP / REJ / MRA carries it as remote comm id), so
 * both are looked up.  SIDR uses the requester's request id.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <umx/core.h>

#include "rdmacm_peers.h"

#define CM_OFF 24                           /* CM data after the MAD header */
#define LOCAL_ID (CM_OFF + 0)               /* sender's comm id; SIDR request id */
#define REMOTE_ID (CM_OFF + 4)              /* receiver's comm id */
#define REQ_REMOTE_LID (CM_OFF + 54)        /* REQ primary remote port LID */
#define REQ_REMOTE_GID (CM_OFF + 72)        /* REQ primary remote port GID */
#define SIDR_PDATA (CM_OFF + 16)            /* SIDR_REQ private data */
#define CMA_VERSION 0x00                    /* rdma_cm's header (kernel cma.c struct cma_hdr) */
#define CMA_DST_ADDR (SIDR_PDATA + 20)      /* its union cma_ip_addr dst_addr */

enum { K_LOCAL, K_PEER, K_N };              /* the two keys; SIDR entries use K_LOCAL */

struct addr {
	uint16_t lid;                            /* be */
	uint8_t sl, grh_present, traffic_class;
	uint8_t gid[16];
	uint32_t flow_label;                     /* be */
};

struct pe {
	uint32_t id[K_N];                        /* 0: not known (yet) */
	uint32_t next[K_N];                      /* hash chains; entry index + 1 */
	bool used, sidr;
	uint64_t expire_ns;                      /* 0: live */
	uint64_t seq;                            /* creation order: the oldest is evicted */
	struct addr a;
};

struct rc_peers {
	struct pe *e;
	uint32_t *bucket[K_N];
	uint32_t cap, max, nb, free_head;        /* free list through next[K_LOCAL] */
	uint64_t seq, grace_ns, evicted;
};

#define FIRST_CAP 64                             /* grows by doubling up to max */

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return be32toh(v);
}

static uint16_t attr_of(const uint8_t *mad)
{
	return (uint16_t)(mad[16] << 8 | mad[17]);
}

static uint32_t hash(const struct rc_peers *p, uint32_t id, bool sidr)
{
	return (uint32_t)(((uint64_t)id << 1 | sidr) * 0x9e3779b97f4a7c15ull >> 40) & (p->nb - 1);
}

static void link_key(struct rc_peers *p, struct pe *e, int k, uint32_t id);

/* entries and buckets for cap entries; every live entry keeps its place */
static int resize(struct rc_peers *p, uint32_t cap)
{
	uint32_t nb = 16;
	while (nb < cap)
		nb <<= 1;
	struct pe *e = realloc(p->e, cap * sizeof(*e));
	if (!e)
		return -1;
	p->e = e;
	uint32_t *b0 = calloc(nb, sizeof(uint32_t)), *b1 = calloc(nb, sizeof(uint32_t));
	if (!b0 || !b1) {
		free(b0);
		free(b1);
		return -1;
	}
	free(p->bucket[K_LOCAL]);
	free(p->bucket[K_PEER]);
	p->bucket[K_LOCAL] = b0;
	p->bucket[K_PEER] = b1;
	p->nb = nb;
	memset(e + p->cap, 0, (cap - p->cap) * sizeof(*e));
	for (uint32_t i = p->cap; i < cap; i++) {    /* new entries onto the free list */
		e[i].next[K_LOCAL] = p->free_head;
		p->free_head = i + 1;
	}
	p->cap = cap;
	for (uint32_t i = 0; i < cap; i++) {          /* rehash the live ones */
		if (!e[i].used)
			continue;
		for (int k = 0; k < K_N; k++) {
			uint32_t id = e[i].id[k];
			e[i].id[k] = 0;
			if (id)
				link_key(p, &e[i], k, id);
		}
	}
	return 0;
}

struct rc_peers *rc_peers_new(unsigned max, uint64_t grace_ns)
{
	struct rc_peers *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->max = max ? max : 1;
	p->grace_ns = grace_ns;
	if (resize(p, p->max < FIRST_CAP ? p->max : FIRST_CAP)) {
		rc_peers_free(p);
		return NULL;
	}
	return p;
}

void rc_peers_free(struct rc_peers *p)
{
	if (!p)
		return;
	free(p->e);
	free(p->bucket[K_LOCAL]);
	free(p->bucket[K_PEER]);
	free(p);
}

unsigned rc_peers_live(const struct rc_peers *p, uint64_t now)
{
	unsigned n = 0;
	for (uint32_t i = 0; i < p->cap; i++)
		n += p->e[i].used && (!p->e[i].expire_ns || p->e[i].expire_ns > now);
	return n;
}

uint64_t rc_peers_evicted(const struct rc_peers *p)
{
	return p->evicted;
}

static struct pe *find(struct rc_peers *p, int k, uint32_t id, bool sidr)
{
	if (!id)
		return NULL;
	for (uint32_t i = p->bucket[k][hash(p, id, sidr)]; i; i = p->e[i - 1].next[k]) {
		struct pe *e = &p->e[i - 1];
		if (e->id[k] == id && e->sidr == sidr)
			return e;
	}
	return NULL;
}

static void link_key(struct rc_peers *p, struct pe *e, int k, uint32_t id)
{
	uint32_t *b = &p->bucket[k][hash(p, id, e->sidr)];
	e->id[k] = id;
	e->next[k] = *b;
	*b = (uint32_t)(e - p->e) + 1;
}

static void unlink_key(struct rc_peers *p, struct pe *e, int k)
{
	if (!e->id[k])
		return;
	uint32_t me = (uint32_t)(e - p->e) + 1;
	uint32_t *l = &p->bucket[k][hash(p, e->id[k], e->sidr)];
	while (*l && *l != me)
		l = &p->e[*l - 1].next[k];
	if (*l)
		*l = e->next[k];
	e->id[k] = 0;
}

static void release(struct rc_peers *p, struct pe *e)
{
	unlink_key(p, e, K_LOCAL);
	unlink_key(p, e, K_PEER);
	e->used = false;
	e->next[K_LOCAL] = p->free_head;
	p->free_head = (uint32_t)(e - p->e) + 1;
}

/* a free entry: the free list, else expired ones, else a bigger table (up
 * to max), else the oldest (evicted, counted) */
static struct pe *alloc_entry(struct rc_peers *p, bool sidr, uint64_t now)
{
	if (!p->free_head) {
		for (uint32_t i = 0; i < p->cap; i++)
			if (p->e[i].expire_ns && p->e[i].expire_ns <= now)
				release(p, &p->e[i]);
	}
	if (!p->free_head && p->cap < p->max)
		resize(p, p->cap * 2 < p->max ? p->cap * 2 : p->max);
	if (!p->free_head) {
		struct pe *oldest = &p->e[0];
		for (uint32_t i = 1; i < p->cap; i++)
			if (p->e[i].seq < oldest->seq)
				oldest = &p->e[i];
		release(p, oldest);
		p->evicted++;
	}
	struct pe *e = &p->e[p->free_head - 1];
	p->free_head = e->next[K_LOCAL];
	memset(e, 0, sizeof(*e));
	e->used = true;
	e->sidr = sidr;
	e->seq = ++p->seq;
	return e;
}

static void set_key(struct rc_peers *p, struct pe *e, int k, uint32_t id)
{
	if (!id || e->id[k] == id)
		return;
	struct pe *other = find(p, k, id, e->sidr);
	if (other) {                             /* another connection with that id */
		unlink_key(p, other, k);
		if (!other->id[!k])              /* unreachable now */
			release(p, other);
	}
	unlink_key(p, e, k);
	link_key(p, e, k, id);
}

static void addr_from_hdr(struct addr *a, const struct ib_user_mad_hdr *h)
{
	a->lid = h->lid;
	a->sl = h->sl;
	a->grh_present = h->grh_present;
	a->traffic_class = h->traffic_class;
	memcpy(a->gid, h->gid, 16);
	a->flow_label = h->flow_label;
}

void rc_peers_learn(struct rc_peers *p, const struct ib_user_mad_hdr *hdr, const uint8_t *mad,
		    size_t len, uint64_t now)
{
	struct pe *e;

	if (len < REMOTE_ID + 4)
		return;
	uint16_t attr = attr_of(mad);
	if (attr < UMAD_CM_ATTR_REQ || attr > UMAD_CM_ATTR_APR || attr == UMAD_CM_ATTR_SIDR_REP)
		return;
	if (attr == UMAD_CM_ATTR_REQ || attr == UMAD_CM_ATTR_SIDR_REQ) {
		bool sidr = attr == UMAD_CM_ATTR_SIDR_REQ;
		int k = sidr ? K_LOCAL : K_PEER;    /* the requester's id */
		uint32_t id = get32(mad + LOCAL_ID);
		if (!id)
			return;
		e = find(p, k, id, sidr);
		if (e && !sidr && e->id[K_LOCAL] && memcmp(e->a.gid, hdr->gid, 16)) {
			/* another peer's REQ with the same comm id as an answered one */
			unlink_key(p, e, K_PEER);
			e = NULL;
		}
		if (!e) {
			e = alloc_entry(p, sidr, now);
			link_key(p, e, k, id);
		}
	} else {
		/* our client's id, mapped back by the core */
		e = find(p, K_LOCAL, get32(mad + REMOTE_ID), false);
		if (!e)
			e = find(p, K_PEER, get32(mad + LOCAL_ID), false);
		if (!e) {
			if (!get32(mad + REMOTE_ID))
				return;
			e = alloc_entry(p, false, now);
			link_key(p, e, K_LOCAL, get32(mad + REMOTE_ID));
		}
		set_key(p, e, K_PEER, get32(mad + LOCAL_ID));
		e->expire_ns = umx_cm_expiry(attr, now, p->grace_ns, e->expire_ns);
	}
	addr_from_hdr(&e->a, hdr);
}

static void apply(struct ib_user_mad_hdr *h, const struct addr *a)
{
	h->lid = a->lid;
	h->sl = a->sl;
	h->grh_present = a->grh_present;
	h->traffic_class = a->traffic_class;
	memcpy(h->gid, a->gid, 16);
	h->flow_label = a->flow_label;
}

/* rdma_cm's SIDR_REQ private data: the destination address as a GID */
static bool sidr_dest(const uint8_t *mad, size_t len, uint8_t gid[16])
{
	if (len < CMA_DST_ADDR + 16 || mad[SIDR_PDATA] != CMA_VERSION)
		return false;
	switch (mad[SIDR_PDATA + 1] >> 4) {
	case 6:
		memcpy(gid, mad + CMA_DST_ADDR, 16);
		return true;
	case 4:                                  /* RoCE: the IPv4-mapped IPv6 address */
		memset(gid, 0, 10);
		gid[10] = gid[11] = 0xff;
		memcpy(gid + 12, mad + CMA_DST_ADDR + 12, 4);
		return true;
	default:
		return false;
	}
}

int rc_peers_route(struct rc_peers *p, const uint8_t own_gid[16], struct ib_user_mad_hdr *hdr,
		   const uint8_t *mad, size_t len, uint64_t now)
{
	struct pe *e;
	struct addr a;

	if (!hdr->grh_present || memcmp(hdr->gid, own_gid, 16))
		return RC_ROUTE_AS_IS;
	if (len < REMOTE_ID + 4)
		return -EHOSTUNREACH;
	switch (attr_of(mad)) {
	case UMAD_CM_ATTR_REQ:
		if (len < REQ_REMOTE_GID + 16)
			return -EHOSTUNREACH;
		memset(&a, 0, sizeof(a));
		a.grh_present = 1;
		memcpy(&a.lid, mad + REQ_REMOTE_LID, 2);
		memcpy(a.gid, mad + REQ_REMOTE_GID, 16);
		a.traffic_class = hdr->traffic_class;
		e = find(p, K_LOCAL, get32(mad + LOCAL_ID), false);
		if (!e && get32(mad + LOCAL_ID)) {
			e = alloc_entry(p, false, now);
			link_key(p, e, K_LOCAL, get32(mad + LOCAL_ID));
		}
		if (e)
			e->a = a;
		apply(hdr, &a);
		return RC_ROUTE_READDRESSED;
	case UMAD_CM_ATTR_SIDR_REQ:
		memset(&a, 0, sizeof(a));
		if (!sidr_dest(mad, len, a.gid))
			return -EHOSTUNREACH;
		a.grh_present = 1;
		a.traffic_class = hdr->traffic_class;
		apply(hdr, &a);
		return RC_ROUTE_READDRESSED;
	case UMAD_CM_ATTR_SIDR_REP:
		e = find(p, K_LOCAL, get32(mad + LOCAL_ID), true);
		if (!e)
			return -EHOSTUNREACH;
		/* a SIDR_REP ends the exchange */
		e->expire_ns = umx_cm_expiry(UMAD_CM_ATTR_REJ, now, p->grace_ns, e->expire_ns);
		apply(hdr, &e->a);
		return RC_ROUTE_READDRESSED;
	default:
		e = find(p, K_LOCAL, get32(mad + LOCAL_ID), false);
		if (!e) {
			e = find(p, K_PEER, get32(mad + REMOTE_ID), false);
			if (!e)
				return -EHOSTUNREACH;
			set_key(p, e, K_LOCAL, get32(mad + LOCAL_ID));
		}
		e->expire_ns = umx_cm_expiry(attr_of(mad), now, p->grace_ns, e->expire_ns);
		apply(hdr, &e->a);
		return RC_ROUTE_READDRESSED;
	}
}
