/*
 * core_int.h - structures shared inside core/ (not part of the public API).
 */
#ifndef UMX_CORE_INT_H
#define UMX_CORE_INT_H

#include <umx/core.h>
#include <umx/mad.h>

#define UMX_MAX_AGENTS 32          /* IB_UMAD_MAX_AGENTS in user_mad.c */
#define UMX_HDR_OLD ((size_t)sizeof(struct ib_user_mad_hdr_old))
#define UMX_HDR_NEW ((size_t)sizeof(struct ib_user_mad_hdr))

/* a packet waiting in a file's receive queue */
struct umx_packet {
	struct umx_packet *next;
	struct umx_vagent *agent;  /* NULL once the agent is gone (packet stays) */
	uint32_t len;              /* MAD bytes after the header */
	bool recv;                 /* received MAD (copy_recv_mad) or returned send (copy_send_mad) */
	struct ib_user_mad_hdr hdr;/* new format; the file's format is applied on read */
	uint8_t data[];
};

/* one registered agent of one virtual file */
struct umx_vagent {
	struct umx_file *file;
	uint32_t id;               /* slot in file->agent[] */
	uint32_t hi_tid;           /* what the client sees in the upper TID bits */
	uint8_t qpn, mgmt_class, class_version, rmpp_version;
	uint32_t oui, flags;
	uint64_t method_mask[2];
	struct umx_sendagent *send;     /* generic send agent (holds the QP check) */
	uint32_t class_sends;           /* bit i: uses router->send_cls[i] */
	struct umx_classkey *key;  /* NULL for send-only agents */
	unsigned outstanding;      /* tracked transactions of this agent */
	unsigned cm_ids;           /* CM communication ids it owns */
};

struct umx_file {
	struct umx_router *r;
	struct umx_node *node;
	void *user;
	struct umx_file *next, *prev;      /* node's file list */
	struct umx_vagent *agent[UMX_MAX_AGENTS];
	bool use_pkey_index, already_used; /* ib_umad_file fields of the same names */
	bool agents_dead;                  /* the port went away (ib_umad_kill_port) */
	struct umx_packet *qhead, *qtail;
	unsigned qlen;
	unsigned outstanding;
};

struct umx_node {
	struct umx_router *r;
	unsigned index;
	struct umx_node_policy pol;
	struct umx_file *files;
	struct umx_node *next;
	uint64_t ctr[UMX_C_COUNT];
	unsigned cm_agents;      /* registered CM agents of this node */
	uint64_t tokens_ns;      /* token bucket, in "ns of rate" units */
	uint64_t last_ns;
};

/* ---- router internals (core/router.c, core/real_agents.c, core/tid_table.c) */

/*
 * real agent used for sends: a generic one per (qpn, kernel RMPP) with no
 * class, and class agents (empty method mask) per (qpn, kernel RMPP, class,
 * version, OUI) created on the first send of that class.  umad2sim hands
 * every incoming MAD, responses included, to an agent of the MAD's class
 * and crashes when there is none; the kernel does not care.
 */
#define UMX_SEND_CLASS_AGENTS 32
struct umx_sendagent {
	bool valid;
	uint8_t qpn, kernel_rmpp, mgmt_class, class_version;
	uint32_t oui;
	uint32_t real_id;
	unsigned refs;
};

/* real agent holding some methods of a class key */
struct umx_recvagent {
	uint32_t real_id;
	uint8_t rmpp_version;
	uint32_t flags;
	uint64_t mask[2];
};

/* method ownership of one (class, class version[, OUI]) on the real port */
struct umx_classkey {
	struct umx_classkey *next;   /* chain of router->keys[class] */
	uint8_t mgmt_class, class_version, qpn;
	uint32_t oui;                /* vendor range 2 only, else 0 */
	struct umx_vagent *owner[128];
	unsigned nowners;
	struct umx_recvagent real[8];
	unsigned nreal;
};

/* low TID bits 31+30: a request the router itself sent (see tid_table.c) */
#define UMX_TID_ROUTER 0x40000000u

struct umx_tid_entry {
	struct umx_file *file;       /* NULL: free */
	struct umx_vagent *agent;
	uint32_t client_lo;          /* client's low 32 TID bits */
	uint16_t gen;
	uint8_t mgmt_class;
	uint32_t next_free;
	uint32_t dup_next;           /* chain in the duplicate-detection hash */
};

struct umx_tid_table {
	struct umx_tid_entry *e;
	uint32_t size, used, free_head;
	uint32_t *dup_head;          /* hash buckets (size entries), index+1, 0 = end */
	uint32_t untracked;          /* counter for requests that expect no response */
};

/* CM communication ids (core/cm.c) */
struct umx_cm_entry {
	struct umx_file *file;       /* NULL: free */
	struct umx_vagent *agent;
	uint32_t client_id, router_id;
	uint64_t expire_ns;          /* 0: connection alive */
	uint32_t next_free, hash_next;
	uint16_t gen;
	bool sidr;
};

struct umx_cm {
	struct umx_cm_entry *e;
	uint32_t *by_client;         /* hash (file, client id) -> index+1 */
	uint32_t size, used, free_head;
	uint64_t grace_ns;
};

struct umx_router {
	struct umx_port *port;
	const struct umx_events *ev;
	void *ev_ctx;
	struct umx_limits lim;
	struct umx_sendagent send[2][2];        /* generic: [qpn][kernel RMPP] */
	struct umx_sendagent send_cls[UMX_SEND_CLASS_AGENTS];
	struct umx_classkey *keys[256];
	struct umx_tid_table tids;
	struct umx_cm cm;
	struct umx_sa *sa;                      /* SA aggregation (core/sa.c) */
	struct umx_node *nodes;
	uint32_t next_hi_tid;
	uint64_t (*now_ns)(void);
	int qp_state[2];         /* per QP of the real port: 1 usable, -errno, 0 unknown */
	bool port_down;
	unsigned nfiles, nvagents, nreal, queued;
	uint64_t ctr[UMX_C_COUNT];
};

static inline void umx_count(struct umx_router *r, struct umx_node *n, enum umx_counter c)
{
	r->ctr[c]++;
	if (n)
		n->ctr[c]++;
}

/* validation mirroring ib_umad_reg_agent{,2}() + ib_register_mad_agent() (reg_check.c) */
int umx_check_reg_pre(struct ib_user_mad_reg_req2 *req, bool agent2);
int umx_check_reg_agent(const struct ib_user_mad_reg_req2 *req, bool agent2);

/* node policy (core/policy.c): 0 or -errno, counted */
int umx_policy_reg_qp(struct umx_node *n, const struct ib_user_mad_reg_req2 *req);
int umx_policy_reg(struct umx_node *n, const struct ib_user_mad_reg_req2 *req);
int umx_policy_send(struct umx_node *n, const struct ib_user_mad_hdr *hdr, const uint8_t *mad);
bool umx_policy_recv(struct umx_node *n, const struct ib_user_mad_hdr *hdr);
uint64_t umx_clock_monotonic_ns(void);

/* real agents (core/real_agents.c) */
int umx_real_attach(struct umx_router *r, struct umx_vagent *va);
/* 0 when the real port has this QP, else the kernel's -errno (cached) */
int umx_real_qp_check(struct umx_router *r, uint8_t qpn);
void umx_real_detach(struct umx_router *r, struct umx_vagent *va);
struct umx_vagent *umx_real_owner(struct umx_router *r, const uint8_t *mad, size_t len);
unsigned umx_real_idle_send_agents(const struct umx_router *r);
void umx_real_forget_all(struct umx_router *r);
void umx_real_release_idle(struct umx_router *r);
/* the real agent id to send mad (len bytes) from va with */
uint32_t umx_real_send_id(struct umx_router *r, struct umx_vagent *va, const uint8_t *mad, size_t len);

/* transactions (core/tid_table.c) */
int umx_tid_init(struct umx_tid_table *t, uint32_t size);
void umx_tid_fini(struct umx_tid_table *t);
/* the new entry (*wire_lo set), or NULL with *err -EINVAL (duplicate
 * outstanding TID) or -ENOMEM (table full) */
struct umx_tid_entry *umx_tid_alloc(struct umx_tid_table *t, struct umx_vagent *va, uint32_t client_lo,
				    uint8_t mgmt_class, uint32_t *wire_lo, int *err);
uint32_t umx_tid_untracked(struct umx_tid_table *t);
struct umx_tid_entry *umx_tid_lookup(struct umx_tid_table *t, uint32_t wire_lo, uint8_t mgmt_class);
void umx_tid_free(struct umx_tid_table *t, struct umx_tid_entry *e);
void umx_tid_free_agent(struct umx_tid_table *t, struct umx_vagent *va);

/* CM (core/cm.c) */
bool umx_cm_is_shared_class(uint8_t mgmt_class);
int umx_cm_init(struct umx_cm *cm, uint32_t size, uint64_t grace_ns);
void umx_cm_fini(struct umx_cm *cm);
int umx_cm_outgoing(struct umx_router *r, struct umx_vagent *va, uint8_t *mad, size_t len);
struct umx_vagent *umx_cm_incoming(struct umx_router *r, const struct ib_user_mad_hdr *hdr,
				   uint8_t *mad, size_t len);
unsigned umx_cm_expire(struct umx_router *r);
void umx_cm_forget_agent(struct umx_router *r, struct umx_vagent *va);

/* SA aggregation (core/sa.c): MCMemberRecord joins, InformInfo, Reports */
int umx_sa_init(struct umx_router *r);
void umx_sa_fini(struct umx_router *r);
void umx_sa_port_down(struct umx_router *r);
void umx_sa_stats(const struct umx_router *r, unsigned *groups, unsigned *subs, unsigned *agents);
/* 0: send it on; 1: absorbed (the write succeeds); -errno */
int umx_sa_outgoing(struct umx_router *r, struct umx_vagent *va, const struct ib_user_mad_hdr *hdr,
		    const uint8_t *mad, size_t len);
/* true: consumed (router SA transaction answered/timed out, or a Report) */
bool umx_sa_incoming(struct umx_router *r, const struct ib_user_mad_hdr *hdr, const uint8_t *mad,
		     size_t len);
void umx_sa_forget_agent(struct umx_router *r, struct umx_vagent *va);

void umx_file_kill(struct umx_file *f);

/* queue a packet on a file (router -> vfile); takes ownership */
void umx_file_enqueue(struct umx_file *f, struct umx_packet *p);
struct umx_packet *umx_packet_new(size_t len);

#endif
