/*
 * sa.c - subnet administration (class 0x03) shared by many clients, the way
 * mlx4's mcg.c paravirtualises multicast joins for SR-IOV functions:
 *
 *  - MCMemberRecord Set (join) / Delete (leave) from clients are merged per
 *    (MGID, PortGID) into one "group".  The SA holds, for our port, the union
 *    of the members' JoinStates; it is contacted only when that union changes
 *    (first join, a new JoinState bit, the last holder of a bit leaves).
 *    Otherwise the router answers the client itself: GetResp/DeleteResp with
 *    the client's TID, status 0, the record the SA returned last and the
 *    JoinState the client asked for.  Requested fields the group does not
 *    have (mlx4 cmp_rec()) get ERR_REQ_INVALID, as the SA would answer.
 *  - InformInfo Set (subscribe/unsubscribe) is merged the same way per
 *    subscription spec (everything but Subscribe, QPN and RespTimeValue):
 *    one subscription at the SA while any client holds it.
 *  - One transaction per group/subscription is in flight at a time; later
 *    requests for it queue behind and are decided when the SA answered.  A
 *    timeout gives every waiting client its own request back with status
 *    ETIMEDOUT (the kernel's send_handler() completion).
 *  - Reports (method 0x06) are acknowledged once (ReportResp with the
 *    Report's TID to its sender) and delivered to every client agent whose
 *    subscription matches the Notice (opensm's match_notice_to_inf_rec()
 *    rules); the clients' own ReportResps are absorbed.
 *  - A client that goes away leaves its groups and subscriptions: when the
 *    union changes, the router sends the leave / unsubscribe itself.
 *
 * The router's own requests go out through one router-owned real agent of
 * class 0x03 (it also holds the Report method, so Reports reach the port),
 * with TID low bits UMX_TID_ROUTER | counter and the requesting client's
 * address header (the SA's LID/SL/GRH/P_Key) and timeout/retries.
 *
 * Record layouts (IBTA vol 1 15.2.5.17 MCMemberRecord, 13.4.8.3 InformInfo,
 * 13.4.8.2 Notice; byte offsets checked against opensm's ib_types.h and
 * libibumad's umad_sa_mcm.h) are used via offsetof where libibumad has the
 * struct, else via the constants below.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <infiniband/umad_sa.h>
#include <infiniband/umad_sa_mcm.h>

#include "core_int.h"

#define SA_DATA offsetof(struct umad_sa_packet, data)           /* 56 */
#define SA_COMP_MASK offsetof(struct umad_sa_packet, comp_mask) /* 48 */
#define MCM(f) (SA_DATA + offsetof(struct umad_sa_mcmember_record, f))
#define MCM_SIZE 52                  /* the record without libibumad's pad */

#define SA_ATTR_NOTICE 0x0002
#define SA_ATTR_INFORM_INFO 0x0003
/* InformInfo (36 bytes) */
#define II_GID 0
#define II_LID_BEGIN 16
#define II_LID_END 18
#define II_IS_GENERIC 22
#define II_SUBSCRIBE 23
#define II_TYPE 24
#define II_TRAP_DEV 26               /* TrapNumber / DeviceID */
#define II_QPN_RESP 28               /* QPN (24 bits) + RespTimeValue: not part of the key */
#define II_PRODUCER 33               /* ProducerType / VendorID, 24 bits */
#define II_SIZE 36
/* Notice (80 bytes) */
#define NTC_GENERIC_TYPE 0
#define NTC_PRODUCER 1
#define NTC_TRAP_DEV 4
#define NTC_ISSUER_LID 6
#define NTC_ISSUER_GID 64
#define NTC_SIZE 80

#define SA_STATUS_REQ_INVALID 0x0200 /* MAD status: SA ERR_REQ_INVALID (class-specific bits) */
#define TID_ROUTER_MASK 0xc0000000u  /* bit 31 + UMX_TID_ROUTER */
#define OBJS_MAX 4096                /* groups + subscriptions */
#define QUEUED_MAX 4096              /* client requests waiting on transactions */
#define KEY_MAX 36

enum obj_kind { OBJ_MCG, OBJ_INFORM };

/* a client request waiting for (or starting) a transaction */
struct sa_req {
	struct sa_req *next;
	struct umx_vagent *va;       /* NULL once the agent is gone */
	struct ib_user_mad_hdr hdr;  /* as the client wrote it (new format) */
	uint8_t mad[UMX_MAD_SIZE];
	size_t madlen;
};

struct sa_member {
	struct sa_member *next;
	struct umx_vagent *va;
	uint8_t state;               /* JoinState bits (MCG) / 1 subscribed (InformInfo) */
	uint8_t spec[II_SIZE];       /* InformInfo: the client's own record (echoed back) */
};

struct sa_obj {
	struct sa_obj *next;
	enum obj_kind kind;
	uint8_t key[KEY_MAX];
	struct sa_member *members;
	uint8_t sa_state;            /* what the SA holds for our port */
	/* the SA's last successful answer: record and address header */
	bool have_resp;
	struct ib_user_mad_hdr resp_hdr;
	uint8_t resp[UMX_MAD_SIZE];
	/* template for requests the router makes on its own (last client request sent) */
	struct ib_user_mad_hdr tmpl_hdr;
	uint8_t tmpl[UMX_MAD_SIZE];
	/* the transaction in flight */
	bool pending;
	uint32_t txn_lo;
	uint8_t txn_state;           /* sa_state once it succeeds */
	struct sa_req *initiator;    /* NULL: the router's own (a client left) */
	struct sa_req *queue, *qtail;
};

struct umx_sa {
	struct sa_obj *objs;
	unsigned nobjs, ngroups, nsubs, pending, queued;
	uint32_t next_tid;
	bool agent_valid;
	uint32_t agent_id;
};

/* ---- byte helpers ------------------------------------------------------- */

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint32_t get24(const uint8_t *p) { return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]; }
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) << 32 | get32(p + 4); }
static bool all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

static uint8_t join_state(const uint8_t *mad) { return mad[MCM(scope_state)] & 0x0f; }
static void set_join_state(uint8_t *mad, uint8_t s)
{
	mad[MCM(scope_state)] = (uint8_t)((mad[MCM(scope_state)] & 0xf0) | (s & 0x0f));
}

/* ---- setup ---------------------------------------------------------------- */

int umx_sa_init(struct umx_router *r)
{
	r->sa = calloc(1, sizeof(*r->sa));
	return r->sa ? 0 : -ENOMEM;
}

static void req_free(struct umx_sa *sa, struct sa_req *q)
{
	sa->queued--;
	free(q);
}

static void obj_free(struct umx_sa *sa, struct sa_obj *o)
{
	struct sa_obj **link = &sa->objs;
	while (*link != o)
		link = &(*link)->next;
	*link = o->next;
	while (o->members) {
		struct sa_member *m = o->members;
		o->members = m->next;
		free(m);
	}
	while (o->queue) {
		struct sa_req *q = o->queue;
		o->queue = q->next;
		req_free(sa, q);
	}
	if (o->initiator)
		req_free(sa, o->initiator);
	if (o->pending)
		sa->pending--;
	if (o->kind == OBJ_MCG)
		sa->ngroups--;
	else
		sa->nsubs--;
	sa->nobjs--;
	free(o);
}

/* everything forgotten; the agent is unregistered unless the port is gone */
static void sa_clear(struct umx_router *r, bool unreg)
{
	struct umx_sa *sa = r->sa;
	while (sa->objs)
		obj_free(sa, sa->objs);
	if (sa->agent_valid && unreg) {
		r->port->ops->unreg(r->port, sa->agent_id);
		r->nreal--;
	}
	sa->agent_valid = false;
}

void umx_sa_fini(struct umx_router *r)
{
	if (!r->sa)
		return;
	sa_clear(r, !r->port_down);
	free(r->sa);
	r->sa = NULL;
}

void umx_sa_port_down(struct umx_router *r)
{
	if (r->sa)
		sa_clear(r, false);  /* the port took the agent and the SA state with it */
}

void umx_sa_stats(const struct umx_router *r, unsigned *groups, unsigned *subs, unsigned *agents)
{
	*groups = r->sa ? r->sa->ngroups : 0;
	*subs = r->sa ? r->sa->nsubs : 0;
	*agents = r->sa && r->sa->agent_valid;
}

/* the router's own agent: class 0x03 v2, holding Report when it can (a
 * client may already hold it; Reports then still reach the port) */
static int agent_get(struct umx_router *r)
{
	struct umx_sa *sa = r->sa;
	if (sa->agent_valid)
		return 0;
	struct ib_user_mad_reg_req2 req = {
		.qpn = 1, .mgmt_class = UMAD_CLASS_SUBN_ADM,
		.mgmt_class_version = UMAD_SA_CLASS_VERSION,
		.method_mask = { 1ull << UMAD_METHOD_REPORT, 0 },
	};
	int ret = r->port->ops->reg(r->port, &req);
	if (ret == -EINVAL) {
		req.method_mask[0] = 0;
		ret = r->port->ops->reg(r->port, &req);
	}
	if (ret)
		return ret;
	sa->agent_valid = true;
	sa->agent_id = req.id;
	r->nreal++;
	r->ctr[UMX_C_REAL_AGENTS]++;
	return 0;
}

/* the router's agent lives only while there is SA state to serve: with no
 * group, subscription or transaction left it is given back (so that closing
 * every client leaves nothing but the idle send-agent cache) */
static void agent_put_if_idle(struct umx_router *r)
{
	struct umx_sa *sa = r->sa;
	if (!sa || !sa->agent_valid || sa->nobjs || sa->pending || sa->queued || r->port_down)
		return;
	r->port->ops->unreg(r->port, sa->agent_id);
	sa->agent_valid = false;
	r->nreal--;
}

/* ---- packets to clients ------------------------------------------------- */

static void to_client(struct umx_router *r, struct umx_vagent *va, const struct ib_user_mad_hdr *hdr,
		      const uint8_t *mad, size_t len, bool recv, uint32_t status, const uint64_t *tid)
{
	struct umx_packet *p = umx_packet_new(len);
	if (!p) {
		umx_count(r, va->file->node, UMX_C_RX_QUEUE_FULL);
		return;
	}
	p->hdr = *hdr;
	p->hdr.status = status;
	p->recv = recv;
	p->agent = va;
	memcpy(p->data, mad, len);
	if (tid)
		umx_mad_set_tid(p->data, *tid);
	umx_file_enqueue(va->file, p);
}

static uint64_t client_tid(const struct sa_req *q)
{
	return (uint64_t)q->va->hi_tid << 32 | (uint32_t)umx_mad_tid(q->mad);
}

/* the address header of an answer: the SA's last one, else the client's
 * request turned around (recv_handler() fills no qkey/timeout/retries) */
static struct ib_user_mad_hdr answer_hdr(const struct sa_obj *o, const struct sa_req *q)
{
	struct ib_user_mad_hdr h;
	if (o && o->have_resp) {
		h = o->resp_hdr;
	} else {
		h = q->hdr;
		h.qpn = htobe32(1);
		h.qkey = 0;
		h.timeout_ms = 0;
		h.retries = 0;
	}
	h.status = 0;
	return h;
}

/* a response the router built: only to a client that waits for one */
static void answer(struct umx_router *r, const struct sa_obj *o, const struct sa_req *q, uint8_t *mad,
		   uint16_t mad_status)
{
	if (!q->va || !q->hdr.timeout_ms)
		return;              /* no response expected: the kernel would drop it */
	uint64_t tid = client_tid(q);
	struct ib_user_mad_hdr h = answer_hdr(o, q);
	mad[3] = q->mad[3] == UMAD_SA_METHOD_DELETE ? UMAD_SA_METHOD_DELETE_RESP : UMAD_METHOD_GET_RESP;
	put16(mad + 4, mad_status);
	put16(mad + 6, 0);
	to_client(r, q->va, &h, mad, UMX_MAD_SIZE, true, 0, &tid);
}

/* the kernel's timeout completion: the client's own MAD header back */
static void timeout_client(struct umx_router *r, const struct sa_req *q)
{
	if (!q->va || !q->hdr.timeout_ms)
		return;
	uint64_t tid = client_tid(q);
	umx_count(r, q->va->file->node, UMX_C_RX_TIMEOUTS);
	to_client(r, q->va, &q->hdr, q->mad, UMX_MAD_HDR, false, ETIMEDOUT, &tid);
}

static void answer_error(struct umx_router *r, const struct sa_obj *o, const struct sa_req *q)
{
	uint8_t m[UMX_MAD_SIZE];
	memcpy(m, q->mad, UMX_MAD_SIZE);
	answer(r, o, q, m, SA_STATUS_REQ_INVALID);
}

/* ---- objects ------------------------------------------------------------ */

static struct sa_obj *obj_find(struct umx_sa *sa, enum obj_kind kind, const uint8_t *key)
{
	for (struct sa_obj *o = sa->objs; o; o = o->next)
		if (o->kind == kind && !memcmp(o->key, key, KEY_MAX))
			return o;
	return NULL;
}

static struct sa_obj *obj_new(struct umx_router *r, enum obj_kind kind, const uint8_t *key)
{
	struct umx_sa *sa = r->sa;
	if (sa->nobjs >= OBJS_MAX)
		return NULL;
	struct sa_obj *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->kind = kind;
	memcpy(o->key, key, KEY_MAX);
	o->next = sa->objs;
	sa->objs = o;
	sa->nobjs++;
	if (kind == OBJ_MCG)
		sa->ngroups++;
	else
		sa->nsubs++;
	return o;
}

static struct sa_member *member_find(struct sa_obj *o, const struct umx_vagent *va)
{
	for (struct sa_member *m = o->members; m; m = m->next)
		if (m->va == va)
			return m;
	return NULL;
}

static void member_drop(struct sa_obj *o, struct sa_member *m)
{
	struct sa_member **link = &o->members;
	while (*link != m)
		link = &(*link)->next;
	*link = m->next;
	free(m);
}

static uint8_t union_state(const struct sa_obj *o, const struct sa_member *skip)
{
	uint8_t s = 0;
	for (const struct sa_member *m = o->members; m; m = m->next)
		if (m != skip)
			s |= m->state;
	return s;
}

static bool obj_unused(const struct sa_obj *o)
{
	return !o->pending && !o->queue && !o->members && !o->sa_state;
}

/* ---- transactions ------------------------------------------------------- */

/* send mad (a client's request, maybe modified) to the SA for o; 0 or -errno */
static int txn_start(struct umx_router *r, struct sa_obj *o, struct sa_req *initiator,
		     const struct ib_user_mad_hdr *chdr, const uint8_t *mad, uint8_t new_state)
{
	struct umx_sa *sa = r->sa;
	uint8_t buf[sizeof(struct ib_user_mad_hdr) + UMX_MAD_SIZE];
	struct ib_user_mad_hdr *h = (struct ib_user_mad_hdr *)buf;
	int ret;

	if (r->port_down)
		return -EIO;
	ret = agent_get(r);
	if (ret)
		return ret;
	*h = *chdr;
	h->id = sa->agent_id;
	h->status = 0;
	if (!h->timeout_ms) {    /* the router needs an answer even if the client does not */
		h->timeout_ms = 1000;
		h->retries = 2;
	}
	memcpy(buf + sizeof(*h), mad, UMX_MAD_SIZE);
	sa->next_tid = (sa->next_tid + 1) & ~TID_ROUTER_MASK;
	if (!sa->next_tid)
		sa->next_tid = 1;
	uint32_t lo = TID_ROUTER_MASK | sa->next_tid;
	umx_mad_set_tid(buf + sizeof(*h), lo);
	ret = r->port->ops->send(r->port, buf, sizeof(buf));
	struct umx_node *n = initiator && initiator->va ? initiator->va->file->node : NULL;
	if (ret) {
		umx_count(r, n, UMX_C_TX_ERRORS);
		return ret;
	}
	umx_count(r, n, UMX_C_TX_PACKETS);
	umx_count(r, n, UMX_C_SA_TX_SENT);
	o->tmpl_hdr = *chdr;
	memcpy(o->tmpl, mad, UMX_MAD_SIZE);
	o->pending = true;
	o->txn_lo = lo;
	o->txn_state = new_state;
	o->initiator = initiator;
	sa->pending++;
	return 0;
}

static struct sa_req *req_new(struct umx_router *r, struct umx_vagent *va,
			      const struct ib_user_mad_hdr *hdr, const uint8_t *mad, size_t len)
{
	struct umx_sa *sa = r->sa;
	if (sa->queued >= QUEUED_MAX)
		return NULL;
	struct sa_req *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->va = va;
	q->hdr = *hdr;
	q->madlen = len < UMX_MAD_SIZE ? len : UMX_MAD_SIZE;
	memcpy(q->mad, mad, q->madlen);
	sa->queued++;
	return q;
}

/* IBTA selectors: 0 greater than, 1 less than, 2 exactly, 3 best available */
static bool selector_ok(uint8_t want, uint8_t have)
{
	uint8_t sel = want >> 6, w = want & 0x3f, h = have & 0x3f;
	switch (sel) {
	case UMAD_SA_SELECTOR_GREATER_THAN: return h > w;
	case UMAD_SA_SELECTOR_LESS_THAN: return h < w;
	case UMAD_SA_SELECTOR_EXACTLY: return h == w;
	default: return true;
	}
}

/* the fields a join asked for (component mask) against the group's record:
 * what mlx4's cmp_rec() checks before it answers a join itself */
static bool mcm_fields_match(const uint8_t *req, const uint8_t *rec)
{
	uint64_t cm = get64(req + SA_COMP_MASK);
	uint32_t a = get32(req + MCM(sl_flow_hop)), b = get32(rec + MCM(sl_flow_hop));

	if ((cm & UMAD_SA_MCM_COMP_MASK_QKEY) && get32(req + MCM(qkey)) != get32(rec + MCM(qkey)))
		return false;
	if ((cm & UMAD_SA_MCM_COMP_MASK_MLID) && get16(req + MCM(mlid)) &&
	    get16(req + MCM(mlid)) != get16(rec + MCM(mlid)))
		return false;
	if ((cm & UMAD_SA_MCM_COMP_MASK_MTU_SEL) && (cm & UMAD_SA_MCM_COMP_MASK_MTU) &&
	    !selector_ok(req[MCM(mtu)], rec[MCM(mtu)]))
		return false;
	if ((cm & UMAD_SA_MCM_COMP_MASK_TCLASS) && req[MCM(tclass)] != rec[MCM(tclass)])
		return false;
	if ((cm & UMAD_SA_MCM_COMP_MASK_PKEY) &&
	    (get16(req + MCM(pkey)) & 0x7fff) != (get16(rec + MCM(pkey)) & 0x7fff))
		return false;
	if ((cm & UMAD_SA_MCM_COMP_MASK_RATE_SEL) && (cm & UMAD_SA_MCM_COMP_MASK_RATE) &&
	    !selector_ok(req[MCM(rate)], rec[MCM(rate)]))
		return false;
	if ((cm & UMAD_SA_MCM_COMP_MASK_LIFE_TIME_SEL) && (cm & UMAD_SA_MCM_COMP_MASK_LIFE_TIME) &&
	    !selector_ok(req[MCM(pkt_life)], rec[MCM(pkt_life)]))
		return false;
	if ((cm & UMAD_SA_MCM_COMP_MASK_SL) && (a >> 28) != (b >> 28))
		return false;
	if ((cm & UMAD_SA_MCM_COMP_MASK_FLOW_LABEL) && ((a >> 8) & 0xfffff) != ((b >> 8) & 0xfffff))
		return false;
	if ((cm & UMAD_SA_MCM_COMP_MASK_HOP_LIMIT) && (a & 0xff) != (b & 0xff))
		return false;
	if ((cm & UMAD_SA_MCM_COMP_MASK_SCOPE) && (req[MCM(scope_state)] >> 4) != (rec[MCM(scope_state)] >> 4))
		return false;
	return true;
}

/* the group's record as this client should see it */
static void mcm_answer(struct umx_router *r, struct sa_obj *o, struct sa_req *q)
{
	uint8_t m[UMX_MAD_SIZE];
	memcpy(m, o->resp, UMX_MAD_SIZE);
	memcpy(m + 36, q->mad + 36, SA_DATA - 36);    /* SM_Key, offset, comp mask: the client's */
	memcpy(m + MCM(portgid), q->mad + MCM(portgid), 16);
	set_join_state(m, join_state(q->mad));
	answer(r, o, q, m, 0);
}

static void absorbed(struct umx_router *r, struct sa_obj *o, struct sa_req *q)
{
	struct umx_node *n = q->va ? q->va->file->node : NULL;
	umx_count(r, n, UMX_C_SA_TX_SAVED);
	umx_count(r, n, o->kind == OBJ_MCG ? UMX_C_SA_JOINS_ABSORBED : UMX_C_SA_SUBS_ABSORBED);
}

/*
 * Decide a client request for o with no transaction in flight: answer it,
 * or start a transaction (q becomes its initiator).  Returns 0, or -errno
 * when the SA could not be asked (q is then still the caller's).
 */
static int mcm_decide(struct umx_router *r, struct sa_obj *o, struct sa_req *q)
{
	uint8_t want = join_state(q->mad);
	struct sa_member *m = q->va ? member_find(o, q->va) : NULL;

	if (q->mad[3] == UMAD_METHOD_SET) {
		uint8_t have = union_state(o, NULL) | o->sa_state;
		if (o->have_resp && !(want & ~o->sa_state)) {
			if (!mcm_fields_match(q->mad, o->resp)) {
				answer_error(r, o, q);
			} else {
				if (q->va && !m && (m = calloc(1, sizeof(*m)))) {
					m->va = q->va;
					m->next = o->members;
					o->members = m;
				}
				if (m)
					m->state |= want;
				mcm_answer(r, o, q);
			}
			absorbed(r, o, q);
			req_free(r->sa, q);
			return 0;
		}
		uint8_t mad[UMX_MAD_SIZE];
		memcpy(mad, q->mad, UMX_MAD_SIZE);
		set_join_state(mad, have | want);
		return txn_start(r, o, q, &q->hdr, mad, have | want);
	}
	/* Delete: a leave of bits this client does not hold is invalid */
	if (!m || !(m->state & want)) {
		answer_error(r, o, q);
		absorbed(r, o, q);
		req_free(r->sa, q);
		return 0;
	}
	uint8_t rest = union_state(o, m) | (m->state & ~want);
	uint8_t drop = o->sa_state & ~rest;
	if (!drop) {
		m->state &= ~want;
		if (!m->state)
			member_drop(o, m);
		if (o->have_resp)
			mcm_answer(r, o, q);
		else
			answer_error(r, o, q);
		absorbed(r, o, q);
		req_free(r->sa, q);
		return 0;
	}
	uint8_t mad[UMX_MAD_SIZE];
	memcpy(mad, q->mad, UMX_MAD_SIZE);
	set_join_state(mad, drop);
	return txn_start(r, o, q, &q->hdr, mad, o->sa_state & ~drop);
}

static int inform_decide(struct umx_router *r, struct sa_obj *o, struct sa_req *q)
{
	struct sa_member *m = q->va ? member_find(o, q->va) : NULL;
	uint8_t m_ii[UMX_MAD_SIZE];
	memcpy(m_ii, q->mad, UMX_MAD_SIZE);

	if (q->mad[SA_DATA + II_SUBSCRIBE]) {
		if (o->sa_state) {
			if (q->va && !m && (m = calloc(1, sizeof(*m)))) {
				m->va = q->va;
				m->state = 1;
				m->next = o->members;
				o->members = m;
			}
			if (m)
				memcpy(m->spec, q->mad + SA_DATA, II_SIZE);
			answer(r, o, q, m_ii, 0);    /* the SA echoes the InformInfo */
			absorbed(r, o, q);
			req_free(r->sa, q);
			return 0;
		}
		return txn_start(r, o, q, &q->hdr, q->mad, 1);
	}
	if (!m) {
		answer_error(r, o, q);
		absorbed(r, o, q);
		req_free(r->sa, q);
		return 0;
	}
	if (union_state(o, m) || !o->sa_state) {
		member_drop(o, m);
		answer(r, o, q, m_ii, 0);
		absorbed(r, o, q);
		req_free(r->sa, q);
		return 0;
	}
	return txn_start(r, o, q, &q->hdr, q->mad, 0);
}

static int decide(struct umx_router *r, struct sa_obj *o, struct sa_req *q)
{
	return o->kind == OBJ_MCG ? mcm_decide(r, o, q) : inform_decide(r, o, q);
}

/* nobody needs what the SA still holds for o (a client left): tell it */
static void resync(struct umx_router *r, struct sa_obj *o)
{
	if (o->kind == OBJ_MCG) {
		uint8_t drop = o->sa_state & ~union_state(o, NULL);
		if (!drop || !o->have_resp)
			return;
		uint8_t mad[UMX_MAD_SIZE];
		memcpy(mad, o->tmpl, UMX_MAD_SIZE);
		uint64_t cm = htobe64(UMAD_SA_MCM_COMP_MASK_MGID | UMAD_SA_MCM_COMP_MASK_PORT_GID |
				      UMAD_SA_MCM_COMP_MASK_JOIN_STATE);
		mad[3] = UMAD_SA_METHOD_DELETE;
		put16(mad + 4, 0);
		memcpy(mad + SA_COMP_MASK, &cm, 8);
		set_join_state(mad, drop);
		txn_start(r, o, NULL, &o->tmpl_hdr, mad, o->sa_state & ~drop);
	} else if (o->sa_state && !o->members) {
		uint8_t mad[UMX_MAD_SIZE];
		memcpy(mad, o->tmpl, UMX_MAD_SIZE);
		mad[3] = UMAD_METHOD_SET;
		put16(mad + 4, 0);
		mad[SA_DATA + II_SUBSCRIBE] = 0;
		txn_start(r, o, NULL, &o->tmpl_hdr, mad, 0);
	}
}

/* after a transaction: queued requests are decided in order until one needs
 * the SA again; then the SA is told about leaves; an unused object goes */
static void settle(struct umx_router *r, struct sa_obj *o)
{
	while (!o->pending && o->queue) {
		struct sa_req *q = o->queue;
		o->queue = q->next;
		if (!o->queue)
			o->qtail = NULL;
		if (decide(r, o, q)) {
			timeout_client(r, q);    /* could not ask the SA: as if it never answered */
			req_free(r->sa, q);
		}
	}
	if (!o->pending)
		resync(r, o);
	if (obj_unused(o))
		obj_free(r->sa, o);
}

static void txn_done(struct sa_obj *o, struct umx_sa *sa)
{
	o->pending = false;
	sa->pending--;
}

/* the SA answered (or the router's request came back timed out) */
static void txn_complete(struct umx_router *r, struct sa_obj *o, const struct ib_user_mad_hdr *hdr,
			 const uint8_t *mad, size_t len)
{
	struct umx_sa *sa = r->sa;
	struct sa_req *q = o->initiator;
	o->initiator = NULL;
	txn_done(o, sa);

	if (hdr->status) {
		/* timed out: the initiator and everyone queued get their request back */
		r->ctr[UMX_C_SA_TX_TIMEOUTS]++;
		if (q) {
			timeout_client(r, q);
			req_free(sa, q);
		}
		while (o->queue) {
			struct sa_req *w = o->queue;
			o->queue = w->next;
			timeout_client(r, w);
			req_free(sa, w);
		}
		o->qtail = NULL;
		settle(r, o);
		return;
	}
	uint8_t m[UMX_MAD_SIZE];
	memset(m, 0, sizeof(m));
	memcpy(m, mad, len < UMX_MAD_SIZE ? len : UMX_MAD_SIZE);
	bool ok = get16(m + 4) == 0;
	if (ok) {
		o->sa_state = o->txn_state;
		if (o->kind == OBJ_MCG) {
			o->have_resp = true;
			o->resp_hdr = *hdr;
			memcpy(o->resp, m, UMX_MAD_SIZE);
		} else {
			o->have_resp = true;
			o->resp_hdr = *hdr;
		}
	}
	if (q) {
		struct sa_member *mb = q->va ? member_find(o, q->va) : NULL;
		uint8_t want = o->kind == OBJ_MCG ? join_state(q->mad) : 1;
		bool add = o->kind == OBJ_MCG ? q->mad[3] == UMAD_METHOD_SET : q->mad[SA_DATA + II_SUBSCRIBE];
		if (ok && add && q->va) {
			if (!mb && (mb = calloc(1, sizeof(*mb)))) {
				mb->va = q->va;
				mb->next = o->members;
				o->members = mb;
			}
			if (mb) {
				mb->state |= want;
				if (o->kind == OBJ_INFORM)
					memcpy(mb->spec, q->mad + SA_DATA, II_SIZE);
			}
		} else if (ok && mb) {
			mb->state &= (uint8_t)~want;
			if (o->kind == OBJ_INFORM || !mb->state)
				member_drop(o, mb);
		}
		/* the SA's own answer, as this client asked */
		if (o->kind == OBJ_MCG && (m[3] & UMAD_METHOD_RESP_MASK))
			set_join_state(m, want);
		if (q->va && q->hdr.timeout_ms) {
			uint64_t tid = client_tid(q);
			to_client(r, q->va, hdr, m, UMX_MAD_SIZE, true, 0, &tid);
		}
		req_free(sa, q);
	}
	settle(r, o);
}

/* ---- outgoing ------------------------------------------------------------- */

/* the key of an InformInfo subscription: every field but Subscribe, QPN,
 * RespTimeValue and the reserved ones (opensm's match_inf_rec() adds the
 * subscriber's address, which is our one port) */
static void inform_key(const uint8_t *ii, uint8_t *key)
{
	memset(key, 0, KEY_MAX);
	memcpy(key, ii, II_SIZE);
	memset(key + 20, 0, 2);
	key[II_SUBSCRIBE] = 0;
	memset(key + II_QPN_RESP, 0, 5);
}

/*
 * A client's SA MAD before the TID mapping.  Returns 0 (not ours: send it
 * on), 1 (absorbed: the write succeeds) or -errno (the write fails).
 */
int umx_sa_outgoing(struct umx_router *r, struct umx_vagent *va, const struct ib_user_mad_hdr *hdr,
		    const uint8_t *mad, size_t len)
{
	struct umx_sa *sa = r->sa;
	uint16_t attr = get16(mad + 16);
	uint8_t method = mad[3];
	uint8_t key[KEY_MAX];
	enum obj_kind kind;

	if (!sa || len < SA_DATA + NTC_SIZE || mad[2] != UMAD_SA_CLASS_VERSION)
		return 0;
	if (method == UMAD_METHOD_REPORT_RESP) {
		/* the router acknowledged the Report already */
		umx_count(r, va->file->node, UMX_C_SA_REPORT_RESP_ABSORBED);
		return 1;
	}
	if (attr == UMAD_SA_ATTR_MCMEMBER_REC &&
	    (method == UMAD_METHOD_SET || method == UMAD_SA_METHOD_DELETE)) {
		uint64_t cm = get64(mad + SA_COMP_MASK);
		uint64_t need = UMAD_SA_MCM_COMP_MASK_MGID | UMAD_SA_MCM_COMP_MASK_PORT_GID |
				UMAD_SA_MCM_COMP_MASK_JOIN_STATE;
		/* SA-assigned MGID (zero), or a request the SA will refuse anyway: untouched */
		if ((cm & need) != need || all_zero(mad + MCM(mgid), 16) || !join_state(mad))
			return 0;
		kind = OBJ_MCG;
		memset(key, 0, sizeof(key));
		memcpy(key, mad + MCM(mgid), 32);
	} else if (attr == SA_ATTR_INFORM_INFO && method == UMAD_METHOD_SET) {
		kind = OBJ_INFORM;
		inform_key(mad + SA_DATA, key);
	} else {
		return 0;
	}

	struct sa_obj *o = obj_find(sa, kind, key);
	bool subscribe = kind == OBJ_MCG ? method == UMAD_METHOD_SET : mad[SA_DATA + II_SUBSCRIBE] != 0;
	if (!o) {
		if (!subscribe)
			return 0;    /* nothing of ours: the SA answers it */
		o = obj_new(r, kind, key);
		if (!o) {
			umx_count(r, va->file->node, UMX_C_TX_SA_FULL);
			return -ENOMEM;
		}
	}
	struct sa_req *q = req_new(r, va, hdr, mad, len);
	if (!q) {
		umx_count(r, va->file->node, UMX_C_TX_SA_FULL);
		if (obj_unused(o))
			obj_free(sa, o);
		return -ENOMEM;
	}
	if (o->pending) {
		/* one transaction at a time per group: wait for the SA's answer */
		if (o->qtail)
			o->qtail->next = q;
		else
			o->queue = q;
		o->qtail = q;
		umx_count(r, va->file->node, UMX_C_SA_QUEUED);
		return 1;
	}
	int ret = decide(r, o, q);
	if (ret)
		req_free(sa, q);
	if (obj_unused(o))
		obj_free(sa, o);
	return ret ? ret : 1;
}

/* ---- incoming ------------------------------------------------------------- */

/* opensm's match_notice_to_inf_rec() rules, for one subscription spec */
static bool notice_matches(const uint8_t *ii, const uint8_t *ntc)
{
	bool generic = ntc[NTC_GENERIC_TYPE] & 0x80;
	if (!all_zero(ii + II_GID, 16)) {
		if (memcmp(ii + II_GID, ntc + NTC_ISSUER_GID, 16))
			return false;
	} else if (get16(ii + II_LID_BEGIN) != 0xffff) {
		uint16_t lid = get16(ntc + NTC_ISSUER_LID);
		if (lid < get16(ii + II_LID_BEGIN) || lid > get16(ii + II_LID_END))
			return false;
	}
	if (!!ii[II_IS_GENERIC] != generic)
		return false;
	if (get16(ii + II_TYPE) != 0xffff && get16(ii + II_TYPE) != (ntc[NTC_GENERIC_TYPE] & 0x7f))
		return false;
	if (get16(ii + II_TRAP_DEV) != 0xffff && get16(ii + II_TRAP_DEV) != get16(ntc + NTC_TRAP_DEV))
		return false;
	if (get24(ii + II_PRODUCER) != 0xffffff && get24(ii + II_PRODUCER) != get24(ntc + NTC_PRODUCER))
		return false;
	return true;
}

static void report(struct umx_router *r, const struct ib_user_mad_hdr *hdr, const uint8_t *mad, size_t len)
{
	struct umx_sa *sa = r->sa;
	uint8_t buf[sizeof(struct ib_user_mad_hdr) + UMX_MAD_SIZE];
	struct ib_user_mad_hdr *h = (struct ib_user_mad_hdr *)buf;
	size_t n = len < UMX_MAD_SIZE ? len : UMX_MAD_SIZE;

	r->ctr[UMX_C_SA_REPORTS]++;
	/* acknowledge once: ReportResp, same TID and Notice, back to the sender */
	if (!r->port_down && !agent_get(r)) {
		memset(buf, 0, sizeof(buf));
		*h = *hdr;
		h->id = sa->agent_id;
		h->status = 0;
		h->timeout_ms = 0;
		h->retries = 0;
		h->qkey = htobe32(UMAD_QKEY);
		memcpy(buf + sizeof(*h), mad, n);
		buf[sizeof(*h) + 3] = UMAD_METHOD_REPORT_RESP;
		put16(buf + sizeof(*h) + 4, 0);
		if (r->port->ops->send(r->port, buf, sizeof(buf))) {
			r->ctr[UMX_C_TX_ERRORS]++;
		} else {
			r->ctr[UMX_C_TX_PACKETS]++;
		}
	}
	if (len < SA_DATA + NTC_SIZE) {
		r->ctr[UMX_C_RX_SHORT]++;
		return;
	}
	/* every subscribed agent whose subscription matches gets it once */
	unsigned delivered = 0;
	for (struct sa_obj *o = sa->objs; o; o = o->next) {
		if (o->kind != OBJ_INFORM)
			continue;
		for (struct sa_member *m = o->members; m; m = m->next) {
			if (!notice_matches(m->spec, mad + SA_DATA))
				continue;
			bool dup = false;
			for (struct sa_obj *p = sa->objs; p && !dup; p = p->next) {
				if (p->kind != OBJ_INFORM)
					continue;
				for (struct sa_member *k = p->members; k; k = k->next) {
					if (p == o && k == m)
						goto checked;
					if (k->va == m->va && notice_matches(k->spec, mad + SA_DATA)) {
						dup = true;
						break;
					}
				}
			}
		checked:
			if (dup || !umx_policy_recv(m->va->file->node, hdr))
				continue;
			to_client(r, m->va, hdr, mad, len, true, 0, NULL);
			umx_count(r, m->va->file->node, UMX_C_SA_REPORTS_FANNED);
			delivered++;
		}
	}
	if (!delivered)
		r->ctr[UMX_C_RX_SA_UNSUBSCRIBED]++;
}

/*
 * An SA MAD from the port, before the response/TID handling: answers and
 * timeouts of the router's own requests, and Reports.  Returns true when
 * consumed here.
 */
bool umx_sa_incoming(struct umx_router *r, const struct ib_user_mad_hdr *hdr, const uint8_t *mad,
		     size_t len)
{
	struct umx_sa *sa = r->sa;
	uint32_t lo = (uint32_t)umx_mad_tid(mad);

	if (!sa)
		return false;
	if ((lo & TID_ROUTER_MASK) == TID_ROUTER_MASK && (hdr->status || umx_is_response(mad))) {
		for (struct sa_obj *o = sa->objs; o; o = o->next) {
			if (o->pending && o->txn_lo == lo) {
				txn_complete(r, o, hdr, mad, len);
				agent_put_if_idle(r);
				return true;
			}
		}
		r->ctr[UMX_C_RX_SA_UNMATCHED]++;
		return true;
	}
	if (mad[3] == UMAD_METHOD_REPORT && !hdr->status) {
		report(r, hdr, mad, len);
		return true;
	}
	return false;
}

/* a client agent goes away: it leaves its groups and subscriptions; its
 * queued requests are forgotten */
void umx_sa_forget_agent(struct umx_router *r, struct umx_vagent *va)
{
	struct umx_sa *sa = r->sa;
	if (!sa || !sa->nobjs)
		return;
	if (r->port_down) {
		sa_clear(r, false);
		return;
	}
	for (struct sa_obj *o = sa->objs, *next; o; o = next) {
		next = o->next;
		bool touched = false;
		if (o->initiator && o->initiator->va == va)
			o->initiator->va = NULL;
		for (struct sa_req **link = &o->queue; *link;) {
			struct sa_req *q = *link;
			if (q->va == va) {
				*link = q->next;
				req_free(sa, q);
				touched = true;
			} else {
				o->qtail = q;
				link = &q->next;
			}
		}
		if (!o->queue)
			o->qtail = NULL;
		struct sa_member *m = member_find(o, va);
		if (m) {
			member_drop(o, m);
			touched = true;
		}
		if (touched && !o->pending)
			settle(r, o);
	}
	agent_put_if_idle(r);
}
