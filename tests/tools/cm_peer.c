/*
 * cm_peer.c - a CM peer for the real-kernel CM test: raw umad on PATH
 * (/dev/infiniband/umad1 = rxe1) with its own CM agent (the kernel's ib_cm
 * must not be loaded: it would own class 0x07).
 *
 *   cm_peer PATH GIDX COUNT [TARGET_GID...]
 *
 * Passive: answers each REQ with a REP (TID of the REQ, a fresh local comm
 * id 0x5000+n), each DREQ with a DREP (TID of the DREQ), sent back to the
 * GRH source (hdr.gid) from gid index GIDX.  After COUNT connections were
 * set up and torn down, active: a REQ (local comm id 0x6000+i) to every
 * TARGET_GID, waits for the REP, sends RTU, then DREQ and waits for the DREP.
 * Prints one line per message, then "summary: ..." with the distinct remote
 * comm ids and TIDs of the REQs it answered; exit 0 when everything
 * completed within the time limit (20 s, or $CM_PEER_SECONDS).
 */
#include "cm_common.h"

#define MAXC 16

static void send_or_say(int fd, uint32_t agent, const uint8_t *dgid, int gidx, const uint8_t *mad,
			const char *what)
{
	int r = cm_umad_send(fd, agent, dgid, gidx, mad);
	if (r)
		printf("peer: sending %s failed: %s\n", what, strerror(-r));
}

struct conn_st {
	uint32_t remote;              /* the client's comm id as we see it (router id) */
	uint32_t local;
	uint64_t tid;
	uint8_t gid[16];
	bool rtu, drep_sent;
};

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: cm_peer PATH GIDX COUNT [TARGET_GID...]\n");
		return 2;
	}
	uint32_t agent;
	int fd = cm_umad_open(argv[1], &agent);
	int gidx = atoi(argv[2]);
	unsigned count = (unsigned)atoi(argv[3]);
	unsigned ntarget = (unsigned)(argc - 4);
	struct conn_st c[MAXC];
	unsigned n = 0, done = 0, active_done = 0;
	uint8_t mad[MAD_SZ], tg[MAXC][16];
	bool rep_seen[MAXC] = { false };
	char s[INET6_ADDRSTRLEN];
	struct cm_msg m;

	if (fd < 0)
		return 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (unsigned i = 0; i < ntarget && i < MAXC; i++)
		if (parse_gid(argv[4 + i], tg[i]))
			return 2;
	printf("peer: ready (agent %u)\n", agent);
	/* CM_PEER_SECONDS: a longer limit for slow clients (a nested pvrdma guest) */
	const char *lim = getenv("CM_PEER_SECONDS");
	long end = ms_now() + (lim ? atol(lim) : 20) * 1000;
	bool active = false;
	while (ms_now() < end && !(active && active_done == ntarget)) {
		if (!active && done == count && n == count) {
			active = true;
			for (unsigned i = 0; i < ntarget; i++) {
				cm_build(mad, A_REQ, 0x6000 + i, 0, 0xabc00000ull + i, NULL, tg[i]);
				send_or_say(fd, agent, tg[i], gidx, mad, "REQ");
				printf("peer: REQ local 0x%x to %s\n", 0x6000 + i, gstr(tg[i], s));
			}
			if (!ntarget)
				break;
		}
		int r = cm_umad_recv(fd, &m, 200);
		if (r <= 0)
			continue;
		if (m.attr == A_REQ && n < MAXC && !active) {
			c[n] = (struct conn_st){ .remote = m.local, .local = 0x5000 + n, .tid = m.tid };
			memcpy(c[n].gid, m.src_gid, 16);
			cm_build(mad, A_REP, c[n].local, m.local, m.tid, NULL, NULL);
			send_or_say(fd, agent, m.src_gid, gidx, mad, "REP");
			printf("peer: REQ from %s comm 0x%x tid 0x%016llx -> REP local 0x%x\n", gstr(m.src_gid, s),
			       m.local, (unsigned long long)m.tid, c[n].local);
			n++;
			continue;
		}
		if (m.attr == A_RTU || m.attr == A_DREQ) {
			unsigned i;
			for (i = 0; i < n; i++)
				if (c[i].local == m.remote && c[i].remote == m.local)
					break;
			if (i == n) {
				printf("peer: %s for no connection: local 0x%x remote 0x%x\n", cm_attr_name(m.attr),
				       m.local, m.remote);
				continue;
			}
			if (m.attr == A_RTU) {
				c[i].rtu = true;
				printf("peer: RTU comm 0x%x -> connection 0x%x established\n", m.local, c[i].local);
			} else {
				cm_build(mad, A_DREP, c[i].local, c[i].remote, m.tid, NULL, NULL);
				send_or_say(fd, agent, c[i].gid, gidx, mad, "DREP");
				c[i].drep_sent = true;
				done++;
				printf("peer: DREQ comm 0x%x tid 0x%016llx -> DREP\n", m.local, (unsigned long long)m.tid);
			}
			continue;
		}
		if (m.attr == A_REP && active && m.remote >= 0x6000 && m.remote < 0x6000 + ntarget) {
			unsigned i = m.remote - 0x6000;
			printf("peer: REP for 0x%x from %s local 0x%x\n", m.remote, gstr(m.src_gid, s), m.local);
			if (rep_seen[i])
				continue;
			rep_seen[i] = true;
			/* the DREQ's TID must not be another connection's RTU TID:
			 * the kernel refuses (EINVAL) a send whose TID and class
			 * equal those of a send still in flight (user_mad.c
			 * is_duplicate()) */
			cm_build(mad, A_RTU, m.remote, m.local, m.tid, NULL, NULL);
			send_or_say(fd, agent, m.src_gid, gidx, mad, "RTU");
			cm_build(mad, A_DREQ, m.remote, m.local, 0xd0e00000ull + i, NULL, NULL);
			send_or_say(fd, agent, m.src_gid, gidx, mad, "DREQ");
			continue;
		}
		if (m.attr == A_DREP && active && m.remote >= 0x6000 && m.remote < 0x6000 + ntarget) {
			printf("peer: DREP for 0x%x local 0x%x\n", m.remote, m.local);
			active_done++;
			continue;
		}
		printf("peer: unexpected %s local 0x%x remote 0x%x\n", cm_attr_name(m.attr), m.local, m.remote);
	}
	/* distinct comm ids / TIDs among the REQs */
	unsigned dist_id = 0, dist_tid = 0, est = 0;
	for (unsigned i = 0; i < n; i++) {
		bool id_new = true, tid_new = true;
		for (unsigned j = 0; j < i; j++) {
			id_new = id_new && c[j].remote != c[i].remote;
			tid_new = tid_new && c[j].tid != c[i].tid;
		}
		dist_id += id_new;
		dist_tid += tid_new;
		est += c[i].rtu && c[i].drep_sent;
	}
	printf("summary: reqs %u distinct_comm_ids %u distinct_tids %u completed %u active_completed %u\n", n,
	       dist_id, dist_tid, est, active_done);
	return n == count && est == count && active_done == ntarget ? 0 : 1;
}
