/*
 * rdmacm_peers.h - where a pvrdma guest's CM MADs go (rdmacm_peers.c).
 *
 * QEMU's pvrdma drops the address the guest put in its QP1 work request:
 * hw/rdma/rdma_backend.c mad_send() addresses every MAD to the guest's OWN
 * GID (addr.gid = sgid, grh_present = 1).  rdmacm-mux sent it there, back to
 * the host's own port, so pvrdma CM only reached guests of the same host.
 * The destination is recovered from the CM message itself:
 *   REQ       its primary remote port GID and LID
 *   SIDR_REQ  the destination address of rdma_cm's header in the private
 *             data (the RoCE GID of an IPv6 or IPv4 address)
 *   others    the peer of the connection, learned from the REQ / SIDR_REQ the
 *             client sent or received (a received MAD's source address)
 * Entries are keyed by the client's own comm id and by the peer's; they go
 * when the core's comm ids go (umx_cm_expiry(): a grace period after DREP /
 * REJ / SIDR_REP, at most ~64 s after an unanswered DREQ), or when the table
 * is full (the oldest is evicted and counted).  No I/O: unit-tested directly.
 */
#ifndef UMX_CUSE_RDMACM_PEERS_H
#define UMX_CUSE_RDMACM_PEERS_H

#include <stddef.h>
#include <stdint.h>

#include <umx/abi.h>

struct rc_peers;

/* at most max connections (the table grows to it), ended ones kept grace_ns */
struct rc_peers *rc_peers_new(unsigned max, uint64_t grace_ns);
void rc_peers_free(struct rc_peers *p);

/* a CM MAD the core delivered to the client (comm ids already mapped back):
 * learn where its connection's peer is */
void rc_peers_learn(struct rc_peers *p, const struct ib_user_mad_hdr *hdr, const uint8_t *mad,
		    size_t len, uint64_t now_ns);

enum {
	RC_ROUTE_AS_IS = 0,       /* the client addressed the MAD itself */
	RC_ROUTE_READDRESSED = 1, /* hdr's destination was rewritten */
};
/*
 * A CM MAD the client sends.  When it is addressed to the client's own GID
 * (own_gid; what pvrdma does), the destination in hdr is replaced by the
 * peer's.  Returns RC_ROUTE_*, or -EHOSTUNREACH when no peer is known (a
 * message of a connection never seen, a SIDR_REQ without rdma_cm header).
 */
int rc_peers_route(struct rc_peers *p, const uint8_t own_gid[16], struct ib_user_mad_hdr *hdr,
		   const uint8_t *mad, size_t len, uint64_t now_ns);

/* connections not ended (or within their grace period) at now */
unsigned rc_peers_live(const struct rc_peers *p, uint64_t now);
uint64_t rc_peers_evicted(const struct rc_peers *p);

#endif
