/*
 * rdmacm.h - the rdmacm-mux protocol front end (QEMU pvrdma), shared by the
 * unix socket (rdmacm_sock.c) and nodes in rdmacm mode (rdmacm_node.c).
 *
 * A client (one socket connection, or one open of an rdmacm-mode node)
 * registers GIDs.  Each registered GID gets a private core node whose
 * policy is the client's base policy (node 0's for the socket, the node's
 * own for an rdmacm-mode node) bound to that GID and to its index in the
 * real port's GID table (so the core steers CM REQs by GRH and by the REQ's
 * target GID), with one virtual file holding a CM agent (class 0x07,
 * version 2, method Send).  MADs the client sends go through the file of
 * the GID in hdr.sgid; MADs the core queues on the file become REQ/MAD
 * messages for the client.  Answers (RESP) go ahead of incoming MADs not
 * yet read, so a client that writes a request and reads its answer at once
 * (QEMU does) gets the answer.
 */
#ifndef UMX_CUSE_RDMACM_H
#define UMX_CUSE_RDMACM_H

#include "front.h"
#include "rdmacm_proto.h"

/* first member of every struct a umx_file's user pointer or a node's
 * fi->fh points at (node.c dispatches on it) */
#define MUX_KIND_UMAD_FILE 0x756d6164     /* struct mux_file (node.c) */
#define MUX_KIND_RDMACM_GID 0x72636764    /* struct rc_gid (a client's GID file) */
#define MUX_KIND_RDMACM_OPEN 0x72636f70   /* struct rc_open (rdmacm_node.c) */

#define RC_QUEUE_MAX 1024        /* messages waiting for a client; newest dropped beyond */

struct rc_client;
/* c has messages to read (called from the core's event: do not free c) */
typedef void (*rc_readable_fn)(struct rc_client *c, void *owner);

/* answers false: requests get no RESP (a node for QEMU's pipe chardev,
 * which would take the answer to a MAD send for an incoming MAD) */
struct rc_client *rc_client_new(struct mux *m, const char *name, const struct umx_node_policy *base,
				bool answers, rc_readable_fn readable, void *owner);
/* unregisters every GID (their files and nodes go) and drops queued messages */
void rc_client_free(struct rc_client *c);
/* one request of RDMACM_MSG_SIZE bytes: 0 (an answer is queued), or
 * -EPROTO: not a request (msg_type != REQ), nothing queued */
int rc_client_request(struct rc_client *c, const void *msg);
bool rc_client_pending(const struct rc_client *c);
/* the next message (RDMACM_MSG_SIZE bytes) into buf; false when none */
bool rc_client_pop(struct rc_client *c, void *buf);

/* every client of the process (control `stats`) */
struct rc_stats {
	unsigned clients, gids, peers;       /* now: clients, registered GIDs, known CM peers */
	uint64_t tx_readdressed;             /* MADs sent to the sender's own GID, sent to the peer */
	uint64_t tx_unroutable;              /* ... with no peer known: refused (-EHOSTUNREACH) */
	uint64_t peers_evicted;              /* live peer entries evicted from a full table */
	uint64_t answers_suppressed;         /* requests not answered (answers none) */
	uint64_t errors_unanswered;          /* ... of which failed (logged) */
	uint64_t queue_drops;                /* messages dropped: a client's queue was full */
	uint64_t rx_too_big;                 /* incoming MADs over 256 bytes: dropped */
};
void rc_stats_get(struct rc_stats *st);

/* control `list`: every client (NULL: the first), and what it holds */
struct rc_client *rc_client_next(struct rc_client *prev);
struct rc_client_info {
	const char *name;                    /* "<node> (rdmacm)" or "rdmacm socket <pid>" */
	bool answers;
	unsigned queued, gids;
};
void rc_client_info(const struct rc_client *c, struct rc_client_info *ci);
struct rc_gid_info {
	uint8_t gid[16];
	int index;                           /* in the real port's GID table */
	unsigned peers;                      /* CM connections with a known peer */
};
/* the client's GIDs, at most max into gi; returns how many were written */
unsigned rc_client_gids(const struct rc_client *c, struct rc_gid_info *gi, unsigned max);

/* node.c hook: a packet was queued on a file of an rdmacm client */
void mux_rdmacm_file_readable(struct umx_file *f);

/* node handlers for rdmacm-mode nodes (rdmacm_node.c) */
void mux_rdmacm_h_open(fuse_req_t req, struct mux_node *n, struct fuse_file_info *fi);
void mux_rdmacm_h_release(fuse_req_t req, struct fuse_file_info *fi);
void mux_rdmacm_h_read(fuse_req_t req, size_t size, struct fuse_file_info *fi);
void mux_rdmacm_h_write(fuse_req_t req, const char *buf, size_t size, struct fuse_file_info *fi);
void mux_rdmacm_h_poll(fuse_req_t req, struct fuse_file_info *fi, struct fuse_pollhandle *ph);
void mux_rdmacm_nodes_shutdown(struct mux *m);

static inline bool mux_fh_is_rdmacm(const struct fuse_file_info *fi)
{
	return fi->fh && *(const int *)(uintptr_t)fi->fh == MUX_KIND_RDMACM_OPEN;
}

#endif
