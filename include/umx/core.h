/*
 * umx/core.h - the public interface of umad-mux's core: virtual umad files
 * (one per open of a node), the router that multiplexes them onto the one
 * real umad port, and the port backend interface.
 *
 * core/ contains no FUSE code.  A front end (cuse/: CUSE nodes, FUSE-mode
 * files, the rdmacm-mux socket) drives it with plain calls and implements
 * struct umx_events to hear "file F has a packet to read".
 *
 * All calls are made from one thread (the daemon's epoll loop).
 */
#ifndef UMX_CORE_H
#define UMX_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <umx/abi.h>

struct umx_router;
struct umx_file;
struct umx_node;
struct umx_port;

/* ---- the real port ---------------------------------------------------- */

/*
 * A port backend: the real umad port (core/port_umad.c, over libibumad) or
 * an in-memory fake for unit tests (core/port_fake.c).  Packets read from
 * the port are handed to umx_router_input() by whoever owns the backend.
 * Every call returns 0 or -errno, exactly as the kernel answered.
 */
struct umx_port_ops {
	/* REGISTER_AGENT2 on the real fd; sets req->id on success */
	int (*reg)(struct umx_port *p, struct ib_user_mad_reg_req2 *req);
	int (*unreg)(struct umx_port *p, uint32_t id);
	/* write(2) of a new-format header + MAD; len includes the header */
	int (*send)(struct umx_port *p, const void *umad, size_t len);
};

struct umx_port {
	const struct umx_port_ops *ops;
};

/* ---- events the core reports to its front end -------------------------- */

struct umx_events {
	/* a packet was queued on f (it is readable now) */
	void (*file_readable)(void *ctx, struct umx_file *f);
};

/* ---- limits (every queue and table is bounded) ------------------------- */

struct umx_limits {
	unsigned recv_queue_max;    /* packets queued per open file; newest dropped beyond */
	unsigned outstanding_max;   /* tracked requests in flight per open file */
	unsigned tid_table_size;    /* tracked requests in flight, all files (<= 65536) */
	unsigned files_max;         /* open files, all nodes */
	unsigned cm_ids_max;        /* CM communication ids mapped (<= 65536) */
	unsigned cm_grace_ms;       /* how long an ended connection's ids stay mapped */
};
#define UMX_LIMITS_DEFAULT { 4096, 1024, 65536, 4096, 16384, 5000 }

/* ---- counters: every drop and refusal has a name ------------------------ */

#define UMX_COUNTERS(X)                                                        \
	X(RX_PACKETS, "rx_packets", "packets read from the real port")        \
	X(RX_DELIVERED, "rx_delivered", "packets queued to a client")         \
	X(RX_SHORT, "rx_drop_short", "dropped: packet shorter than a MAD header") \
	X(RX_UNMATCHED_RESP, "rx_drop_unmatched_response", "dropped: response/timeout with no live transaction") \
	X(RX_NO_OWNER, "rx_drop_no_owner", "dropped: request no virtual agent owns") \
	X(RX_QUEUE_FULL, "rx_drop_queue_full", "dropped: client receive queue full") \
	X(RX_TIMEOUTS, "rx_timeouts", "send timeouts returned to clients")    \
	X(TX_PACKETS, "tx_packets", "MADs sent to the real port")             \
	X(TX_ERRORS, "tx_errors", "sends the real port refused")              \
	X(TX_TID_FULL, "tx_refused_tid_table_full", "sends refused: transaction table full") \
	X(TX_OUTSTANDING, "tx_refused_outstanding", "sends refused: per-file outstanding limit") \
	X(TX_POLICY, "tx_refused_policy", "sends refused by node policy")     \
	X(TX_RATE, "tx_refused_rate_limit", "sends refused by the node's rate limit") \
	X(RX_PKEY, "rx_drop_pkey_policy", "dropped: unsolicited MAD on a P_Key index the node may not use") \
	X(REG_POLICY, "reg_refused_policy", "registrations refused by node policy") \
	X(REAL_AGENTS, "real_agent_registrations", "agents registered on the real port") \
	X(PORT_DOWN, "port_down_events", "times the real port went away") \
	X(RX_CM_UNROUTABLE, "rx_drop_cm_unroutable", "dropped: CM message for no known connection or bound GID") \
	X(TX_CM_FULL, "tx_refused_cm_table_full", "CM sends refused: communication-id table full") \
	X(SA_JOINS_ABSORBED, "sa_joins_absorbed", "MCMemberRecord joins/leaves the router answered itself") \
	X(SA_SUBS_ABSORBED, "sa_subscriptions_absorbed", "InformInfo (un)subscriptions the router answered itself") \
	X(SA_TX_SAVED, "sa_transactions_saved", "client SA requests that needed no SA transaction of their own") \
	X(SA_TX_SENT, "sa_transactions_sent", "SA requests the router sent for aggregated joins/leaves/subscriptions") \
	X(SA_TX_TIMEOUTS, "sa_transaction_timeouts", "router SA transactions that timed out (waiting clients got ETIMEDOUT)") \
	X(SA_QUEUED, "sa_requests_queued", "client SA requests queued behind a transaction for the same group") \
	X(SA_REPORTS, "sa_reports_acked", "SA Reports received and acknowledged once (ReportResp)") \
	X(SA_REPORTS_FANNED, "sa_reports_fanned_out", "Report copies delivered to subscribed clients") \
	X(SA_REPORT_RESP_ABSORBED, "sa_client_report_resps_absorbed", "clients' ReportResps absorbed (the router acknowledged)") \
	X(RX_SA_UNMATCHED, "rx_drop_sa_unmatched", "dropped: SA answer to no pending router transaction") \
	X(RX_SA_UNSUBSCRIBED, "rx_drop_sa_report_unsubscribed", "dropped: SA Report no client subscription matches (acknowledged)") \
	X(TX_SA_FULL, "tx_refused_sa_table_full", "SA requests refused: group/subscription or queue limit")

enum umx_counter {
#define UMX_C_ENUM(id, name, help) UMX_C_##id,
	UMX_COUNTERS(UMX_C_ENUM)
#undef UMX_C_ENUM
	UMX_C_COUNT
};

const char *umx_counter_name(enum umx_counter c);
const char *umx_counter_help(enum umx_counter c);

/* ---- router ------------------------------------------------------------- */

struct umx_router *umx_router_new(struct umx_port *port, const struct umx_events *ev,
				  void *ev_ctx, const struct umx_limits *lim);
/* releases every file and real agent; the port itself is the caller's */
void umx_router_free(struct umx_router *r);

/* a packet read from the real port: new-format header + MAD, len bytes */
void umx_router_input(struct umx_router *r, const void *umad, size_t len);

uint64_t umx_router_counter(const struct umx_router *r, enum umx_counter c);
/*
 * The real port went away (ib_umad_kill_port(): the device was removed):
 * every open file is dead from now on - read/write EIO, poll POLLERR,
 * register EPIPE - and is told so through file_readable; transactions, CM
 * ids and real agents are forgotten; open() fails with ENXIO until
 * umx_router_port_up() hands the router a new port (the same one, reopened).
 * Files opened before stay dead, as with the kernel.
 */
void umx_router_port_down(struct umx_router *r);
void umx_router_port_up(struct umx_router *r, struct umx_port *port);
bool umx_router_port_is_up(const struct umx_router *r);

/* periodic work (call about once a second): CM ids past their grace period */
void umx_router_tick(struct umx_router *r);
/* the clock used for rate limits and CM grace (CLOCK_MONOTONIC by default); for tests */
void umx_router_set_clock(struct umx_router *r, uint64_t (*now_ns)(void));
uint64_t umx_router_now_ns(const struct umx_router *r);

/* CM teardown (core/cm.c): when the state of a connection may go, now that
 * a CM message of attribute attr passed: DREP / REJ: now + grace; DREQ: now +
 * the wait for its DREP + grace; anything else: no change.  cur is the
 * expiry so far (0: none); returns the earlier of the two. */
uint64_t umx_cm_expiry(uint16_t attr, uint64_t now_ns, uint64_t grace_ns, uint64_t cur);

struct umx_router_stats {
	unsigned files;             /* open virtual files */
	unsigned vagents;           /* registered virtual agents */
	unsigned real_agents;       /* agents held on the real port, including */
	unsigned idle_send_agents;  /* idle class send agents kept (bounded cache) */
	unsigned router_agents;     /* agents the router holds for itself (SA aggregation,
				     * while it has groups, subscriptions or requests) */
	unsigned tids_in_use;       /* tracked transactions in flight */
	unsigned queued_packets;    /* packets waiting in client queues */
	unsigned cm_ids;            /* CM communication ids mapped */
	unsigned sa_groups;         /* multicast groups the router aggregates */
	unsigned sa_subscriptions;  /* InformInfo subscriptions the router aggregates */
};
void umx_router_stats(const struct umx_router *r, struct umx_router_stats *st);
/* the limits in force (defaults filled in) */
const struct umx_limits *umx_router_limits(const struct umx_router *r);

/* ---- nodes and their policy ------------------------------------------- */

#define UMX_POLICY_MAX_PKEYS 16
struct umx_node_policy {
	bool privileged;            /* may use QP0 (SMPs); else registering QP0 gets
				     * EPROTONOSUPPORT, as on a port without QP0 */
	int gid_index;              /* -1: any; else GRH sends must use this gid index (EPERM) */
	unsigned npkeys;            /* 0: any P_Key index; else sends must use one of */
	uint16_t pkey_index[UMX_POLICY_MAX_PKEYS]; /* these (EPERM), and unsolicited
				     * MADs that arrived on another index are dropped */
	bool classes_restricted;    /* only classes set in classes[] may be registered or sent (EPERM) */
	uint64_t classes[4];        /* bit c: management class c allowed */
	bool has_gid;               /* the node's bound GID (CM REQs without GRH that */
	uint8_t gid[16];            /* target it are steered here) */
	uint32_t rate;              /* MADs per second this node may send; 0 = unlimited */
	uint32_t burst;             /* token bucket depth (0: = rate); beyond: ENOBUFS */
};
#define UMX_NODE_POLICY_DEFAULT { .privileged = true, .gid_index = -1 }

static inline void umx_policy_allow_class(struct umx_node_policy *p, uint8_t c)
{
	p->classes_restricted = true;
	p->classes[c / 64] |= 1ull << (c % 64);
}

struct umx_node *umx_node_new(struct umx_router *r, unsigned index,
			      const struct umx_node_policy *pol);
/* releases the node's open files too */
void umx_node_free(struct umx_node *n);
unsigned umx_node_index(const struct umx_node *n);
const struct umx_node_policy *umx_node_policy(const struct umx_node *n);
/* replaces the policy (config reload); open files keep their agents */
void umx_node_set_policy(struct umx_node *n, const struct umx_node_policy *pol);
uint64_t umx_node_counter(const struct umx_node *n, enum umx_counter c);

/* ---- virtual umad files (kernel user_mad.c semantics) ---------------- */

/* open(): NULL with errno = EMFILE when the files limit is reached, ENXIO
 * while the real port is gone (ib_umad_open()) */
struct umx_file *umx_file_open(struct umx_node *n, void *user);
/* release: unregisters every agent, drops queued packets and transactions */
void umx_file_release(struct umx_file *f);
void *umx_file_user(const struct umx_file *f);
struct umx_node *umx_file_node(const struct umx_file *f);

/*
 * ioctl: arg is a buffer of _IOC_SIZE(cmd) bytes, read and written in place
 * (the front end copies it in and out).  Returns 0 or -errno; *copy_out says
 * whether arg must be copied back to the caller (also on some errors, as the
 * kernel's REGISTER_AGENT2 does with its flags field).
 */
long umx_file_ioctl(struct umx_file *f, unsigned int cmd, void *arg, bool *copy_out);

/* write(): bytes accepted or -errno */
ssize_t umx_file_write(struct umx_file *f, const void *buf, size_t len);

/* read() without blocking: bytes or -errno (-EAGAIN when empty) */
ssize_t umx_file_read(struct umx_file *f, void *buf, size_t len);
bool umx_file_readable(const struct umx_file *f);
/* poll(): POLLOUT|POLLWRNORM, plus POLLIN|POLLRDNORM when readable; POLLERR
 * alone once the file is dead (port gone) */
unsigned umx_file_poll(const struct umx_file *f);
/* header size the file uses now: old (56) until ENABLE_PKEY/AGENT2, then 64 */
size_t umx_file_hdr_size(const struct umx_file *f);

#endif
