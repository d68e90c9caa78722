/*
 * rdmacm_client.c - one rdmacm-mux client (a socket connection or an open
 * rdmacm-mode node): GID registration, CM MADs through the core, the queue
 * of messages waiting to be read.  See rdmacm.h.
 *
 * Errors (err_code of the answer):
 *   REG    OK; EEXIST  this client has the GID already (rdmacm-mux: same fd)
 *              EACCES  another client has it, or a umad node is bound to it
 *                      (gid / gid-index setting) (rdmacm-mux: other fd)
 *              EINVAL  zero GID, or the GID is not in the port's GID table
 *              -errno  the core refused the CM agent (e.g. -EMFILE: files-max)
 *   UNREG  OK; ENOTFOUND  nobody has the GID; EACCES  another client has it
 *   MAD    OK; ENOTFOUND  hdr.sgid is not registered by this client
 *              -EHOSTUNREACH  addressed to the client's own GID (pvrdma) and
 *                      no peer known for it (rdmacm_peers.h)
 *              EINVAL  umad_len outside 24..256, not a CM MAD, or the core's EINVAL
 *              EACCES  node policy (EPERM); other -errno as the core answered
 *              (rdmacm-mux put umad_send()'s negative return there)
 *   other op codes: EINVAL (as rdmacm-mux)
 * A client with answers off (node setting `answers none`) gets no RESP at
 * all; its failures are logged and counted instead.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "rdmacm.h"
#include "rdmacm_peers.h"

struct rc_gid {
	int kind;                    /* MUX_KIND_RDMACM_GID */
	struct rc_gid *next;
	struct rc_client *c;
	uint8_t gid[16];
	int index;                   /* in the real port's GID table */
	struct umx_node *node;       /* private node bound to the GID */
	struct umx_file *file;
	uint32_t agent_id;
	struct rc_peers *peers;      /* where its connections' peers are */
};

struct rc_msg {
	struct rc_msg *next;
	uint8_t b[RDMACM_MSG_SIZE];
};

struct rc_client {
	struct rc_client *next;      /* every client (duplicate GID checks) */
	struct mux *m;
	char name[MUX_NAME_MAX + 32];
	struct umx_node_policy base;
	struct rc_gid *gids;
	struct rc_msg *qhead, *qtail, *resp_tail;  /* answers first, then MADs */
	unsigned qlen;
	bool answers;                /* false: requests are not answered (QEMU's pipe chardev) */
	rc_readable_fn readable;
	void *owner;
};

static struct rc_client *clients;
static unsigned next_node_index = 0x10000;   /* private nodes: above every real node */
static struct rc_stats stats;                /* every client of this process */

/* ---- the real port's GID table ------------------------------------------- */

/* read with open(2)/read(2), not stdio: under umad2sim only those calls are
 * redirected to its simulated sysfs */
static int read_gid(const char *path, uint8_t gid[16])
{
	char buf[64], *nl;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	nl = strchr(buf, '\n');
	if (nl)
		*nl = 0;
	return inet_pton(AF_INET6, buf, gid) == 1 ? 0 : -EINVAL;
}

/* index of gid in the port's table, or -1 */
static int gid_index_of(struct mux *m, const uint8_t gid[16])
{
	char path[256];
	uint8_t g[16];
	const char *ca = umx_umad_port_ca(m->port);
	int port = umx_umad_port_num(m->port);

	/* rxe has 1024 entries, IB HCAs 128 or fewer; stop at the end of the table */
	for (int i = 0; i < 4096; i++) {
		snprintf(path, sizeof(path), "/sys/class/infiniband/%s/ports/%d/gids/%d", ca, port, i);
		int r = read_gid(path, g);
		if (r == -ENOENT)
			break;
		if (r == 0 && !memcmp(g, gid, 16))
			return i;
	}
	/* no sysfs table: libibumad's view of GID 0 (prefix + port GUID) */
	umad_port_t up;
	if (umad_get_port(ca, port, &up) == 0) {
		uint64_t v[2] = { up.gid_prefix, up.port_guid };   /* both network order */
		int hit = !memcmp(v, gid, 16);
		umad_release_port(&up);
		if (hit)
			return 0;
	}
	return -1;
}

static const char *gid_str(const uint8_t gid[16], char *buf)
{
	return inet_ntop(AF_INET6, gid, buf, INET6_ADDRSTRLEN) ? buf : "?";
}

/* ---- the queue -------------------------------------------------------- */

static void enqueue(struct rc_client *c, const rdmacm_msg *m, bool answer)
{
	struct rc_msg *q;

	if (c->qlen >= RC_QUEUE_MAX || !(q = malloc(sizeof(*q)))) {
		stats.queue_drops++;
		log_debug("%s: queue full, message dropped (%llu so far, all clients)", c->name,
			  (unsigned long long)stats.queue_drops);
		return;
	}
	rdmacm_encode(m, q->b);
	if (answer) {
		/* after the answers already queued, before the MADs */
		struct rc_msg **link = c->resp_tail ? &c->resp_tail->next : &c->qhead;
		q->next = *link;
		*link = q;
		c->resp_tail = q;
		if (!q->next)
			c->qtail = q;
	} else {
		q->next = NULL;
		if (c->qtail)
			c->qtail->next = q;
		else
			c->qhead = q;
		c->qtail = q;
	}
	c->qlen++;
}

bool rc_client_pending(const struct rc_client *c)
{
	return c->qhead != NULL;
}

bool rc_client_pop(struct rc_client *c, void *buf)
{
	struct rc_msg *q = c->qhead;

	if (!q)
		return false;
	memcpy(buf, q->b, RDMACM_MSG_SIZE);
	c->qhead = q->next;
	if (!c->qhead)
		c->qtail = NULL;
	if (c->resp_tail == q)
		c->resp_tail = NULL;
	c->qlen--;
	free(q);
	return true;
}

/* ---- GIDs ------------------------------------------------------------- */

static struct rc_gid *find_gid(struct rc_client *c, const uint8_t gid[16])
{
	for (struct rc_gid *g = c->gids; g; g = g->next)
		if (!memcmp(g->gid, gid, 16))
			return g;
	return NULL;
}

static struct rc_client *owner_of(const uint8_t gid[16])
{
	for (struct rc_client *c = clients; c; c = c->next)
		if (find_gid(c, gid))
			return c;
	return NULL;
}

/* a umad-mode node bound to this GID or its index */
static bool bound_node(struct mux *m, const uint8_t gid[16], int index)
{
	for (unsigned i = 0; i < m->o.nodes; i++) {
		if (!m->node || !m->node[i].core || m->o.node[i].protocol == MUX_PROTO_RDMACM)
			continue;
		const struct umx_node_policy *p = umx_node_policy(m->node[i].core);
		if ((p->gid_index >= 0 && p->gid_index == index) ||
		    (p->has_gid && !memcmp(p->gid, gid, 16)))
			return true;
	}
	return false;
}

static void gid_free(struct rc_gid *g)
{
	if (g->file)
		umx_file_release(g->file);
	if (g->node)
		umx_node_free(g->node);
	if (g->peers) {
		stats.peers_evicted += rc_peers_evicted(g->peers);
		rc_peers_free(g->peers);
	}
	free(g);
}

static int32_t do_reg(struct rc_client *c, const uint8_t gid[16])
{
	struct mux *m = c->m;
	char s[INET6_ADDRSTRLEN];
	int index;

	if (find_gid(c, gid))
		return RDMACM_ERR_EEXIST;
	if (owner_of(gid))
		return RDMACM_ERR_EACCES;
	index = gid_index_of(m, gid);
	if (index < 0) {
		log_warn("%s: REG %s: not in the GID table of %s port %d", c->name, gid_str(gid, s),
			 umx_umad_port_ca(m->port), umx_umad_port_num(m->port));
		return RDMACM_ERR_EINVAL;
	}
	if (bound_node(m, gid, index))
		return RDMACM_ERR_EACCES;

	struct rc_gid *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->kind = MUX_KIND_RDMACM_GID;
	g->c = c;
	memcpy(g->gid, gid, 16);
	g->index = index;
	struct umx_node_policy pol = c->base;
	pol.gid_index = index;
	pol.has_gid = true;
	memcpy(pol.gid, gid, 16);
	g->peers = rc_peers_new(umx_router_limits(m->router)->cm_ids_max,
				(uint64_t)umx_router_limits(m->router)->cm_grace_ms * 1000000ull);
	g->node = g->peers ? umx_node_new(m->router, next_node_index++, &pol) : NULL;
	if (!g->node) {
		gid_free(g);
		return -ENOMEM;
	}
	g->file = umx_file_open(g->node, g);
	if (!g->file) {
		int e = errno ? errno : ENOMEM;
		gid_free(g);
		return rdmacm_err_from_errno(-e);
	}
	struct ib_user_mad_reg_req2 req;
	bool copy_out;
	long r = umx_file_ioctl(g->file, IB_USER_MAD_ENABLE_PKEY, &req, &copy_out);
	if (r == 0) {
		memset(&req, 0, sizeof(req));
		req.qpn = 1;
		req.mgmt_class = UMAD_CLASS_CM;
		req.mgmt_class_version = 2;
		req.method_mask[0] = 1ull << UMAD_METHOD_SEND;
		r = umx_file_ioctl(g->file, IB_USER_MAD_REGISTER_AGENT2, &req, &copy_out);
	}
	if (r < 0) {
		log_warn("%s: REG %s: CM agent refused: %s", c->name, gid_str(gid, s), strerror((int)-r));
		gid_free(g);
		return rdmacm_err_from_errno((int)r);
	}
	g->agent_id = req.id;
	g->next = c->gids;
	c->gids = g;
	log_info("%s: GID %s registered (gid index %d)", c->name, gid_str(gid, s), index);
	return RDMACM_ERR_OK;
}

static int32_t do_unreg(struct rc_client *c, const uint8_t gid[16])
{
	char s[INET6_ADDRSTRLEN];

	for (struct rc_gid **gp = &c->gids; *gp; gp = &(*gp)->next) {
		struct rc_gid *g = *gp;
		if (memcmp(g->gid, gid, 16))
			continue;
		*gp = g->next;
		gid_free(g);
		log_info("%s: GID %s unregistered", c->name, gid_str(gid, s));
		return RDMACM_ERR_OK;
	}
	return owner_of(gid) ? RDMACM_ERR_EACCES : RDMACM_ERR_ENOTFOUND;
}

static int32_t do_mad(struct rc_client *c, const rdmacm_msg *msg)
{
	struct rc_gid *g = find_gid(c, msg->hdr.sgid.raw);
	uint8_t buf[sizeof(struct ib_user_mad_hdr) + RDMACM_MAD_MAX];

	if (!g)
		return RDMACM_ERR_ENOTFOUND;
	size_t len = rdmacm_make_send(msg, g->agent_id, g->index, buf);
	const size_t hs = sizeof(struct ib_user_mad_hdr);
	int route = rc_peers_route(g->peers, g->gid, (struct ib_user_mad_hdr *)buf, buf + hs,
				   len - hs, umx_router_now_ns(c->m->router));
	if (route < 0) {
		uint32_t id;
		memcpy(&id, buf + hs + 24, sizeof(id));
		stats.tx_unroutable++;
		log_warn("%s: CM %s (comm id 0x%08x) addressed to the sender's own GID and no "
			 "peer known for it: not sent", c->name, rdmacm_cm_attr_name(buf + hs),
			 be32toh(id));
		return route;
	}
	if (route == RC_ROUTE_READDRESSED)
		stats.tx_readdressed++;
	ssize_t n = umx_file_write(g->file, buf, len);
	if (n < 0)
		log_debug("%s: MAD send refused: %s", c->name, strerror((int)-n));
	return n < 0 ? rdmacm_err_from_errno((int)n) : RDMACM_ERR_OK;
}

int rc_client_request(struct rc_client *c, const void *buf)
{
	rdmacm_msg msg;
	enum rdmacm_err err;
	int32_t rc;

	rdmacm_decode(buf, RDMACM_MSG_SIZE, &msg);
	switch (rdmacm_check_request(&msg, &err)) {
	case RDMACM_CHECK_CLOSE:
		log_warn("%s: message type %u is not a request", c->name, msg.hdr.msg_type);
		return -EPROTO;
	case RDMACM_CHECK_ERR:
		log_debug("%s: %s (op %u) refused: malformed", c->name, rdmacm_op_name(msg.hdr.op_code),
			  msg.hdr.op_code);
		rc = (int32_t)err;
		break;
	default:
		if (msg.hdr.op_code == RDMACM_OP_REG)
			rc = do_reg(c, msg.hdr.sgid.raw);
		else if (msg.hdr.op_code == RDMACM_OP_UNREG)
			rc = do_unreg(c, msg.hdr.sgid.raw);
		else
			rc = do_mad(c, &msg);
	}
	if (!c->answers) {
		/* QEMU reads a pipe chardev's answer as an incoming MAD: never send one */
		stats.answers_suppressed++;
		if (rc != RDMACM_ERR_OK) {
			stats.errors_unanswered++;
			log_warn("%s: %s failed with err_code %d (not answered: answers none)", c->name,
				 rdmacm_op_name(msg.hdr.op_code), (int)rc);
		}
		return 0;
	}
	msg.hdr.msg_type = RDMACM_MSG_RESP;
	msg.hdr.err_code = (uint32_t)rc;
	enqueue(c, &msg, true);
	return 0;
}

/* ---- incoming --------------------------------------------------------- */

void mux_rdmacm_file_readable(struct umx_file *f)
{
	struct rc_gid *g = umx_file_user(f);
	struct rc_client *c = g->c;
	uint8_t buf[sizeof(struct ib_user_mad_hdr) + 4096];
	rdmacm_msg msg;
	bool any = false;

	for (;;) {
		ssize_t n = umx_file_read(f, buf, sizeof(buf));
		if (n == -EAGAIN)
			break;
		if (n < 0) {
			log_warn("%s: reading a queued MAD: %s", c->name, strerror((int)-n));
			break;
		}
		if (rdmacm_make_mad_msg(&msg, g->gid, buf, (size_t)n) != 0) {
			stats.rx_too_big++;
			log_debug("%s: a MAD of %zd bytes does not fit a message: dropped", c->name, n);
			continue;
		}
		rc_peers_learn(g->peers, &msg.umad_hdr, msg.mad, (size_t)msg.umad_len,
			       umx_router_now_ns(c->m->router));
		enqueue(c, &msg, false);
		any = true;
	}
	if (any && c->readable)
		c->readable(c, c->owner);
}

/* ---- clients ---------------------------------------------------------- */

struct rc_client *rc_client_new(struct mux *m, const char *name, const struct umx_node_policy *base,
				bool answers, rc_readable_fn readable, void *owner)
{
	struct rc_client *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->m = m;
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->base = *base;
	c->answers = answers;
	c->readable = readable;
	c->owner = owner;
	c->next = clients;
	clients = c;
	return c;
}

void rc_client_free(struct rc_client *c)
{
	uint8_t b[RDMACM_MSG_SIZE];

	for (struct rc_client **cp = &clients; *cp; cp = &(*cp)->next)
		if (*cp == c) {
			*cp = c->next;
			break;
		}
	while (c->gids) {
		struct rc_gid *g = c->gids;
		c->gids = g->next;
		gid_free(g);
	}
	while (rc_client_pop(c, b))
		;
	free(c);
}

void rc_stats_get(struct rc_stats *st)
{
	*st = stats;
	st->clients = st->gids = st->peers = 0;
	for (struct rc_client *c = clients; c; c = c->next) {
		st->clients++;
		uint64_t now = umx_router_now_ns(c->m->router);
		for (struct rc_gid *g = c->gids; g; g = g->next) {
			st->gids++;
			st->peers += rc_peers_live(g->peers, now);
			st->peers_evicted += rc_peers_evicted(g->peers);
		}
	}
}

struct rc_client *rc_client_next(struct rc_client *prev)
{
	return prev ? prev->next : clients;
}

void rc_client_info(const struct rc_client *c, struct rc_client_info *ci)
{
	ci->name = c->name;
	ci->answers = c->answers;
	ci->queued = c->qlen;
	ci->gids = 0;
	for (const struct rc_gid *g = c->gids; g; g = g->next)
		ci->gids++;
}

unsigned rc_client_gids(const struct rc_client *c, struct rc_gid_info *gi, unsigned max)
{
	unsigned n = 0;
	uint64_t now = umx_router_now_ns(c->m->router);
	for (const struct rc_gid *g = c->gids; g && n < max; g = g->next, n++) {
		memcpy(gi[n].gid, g->gid, 16);
		gi[n].index = g->index;
		gi[n].peers = rc_peers_live(g->peers, now);
	}
	return n;
}
