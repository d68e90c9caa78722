/*
 * control.c - the control socket (--control PATH): a unix stream socket in
 * the loop, non-blocking, at most CTL_CLIENTS clients at once.
 *
 * Protocol (line based, ASCII; umad-muxctl(8) is the client): one request
 * line, answered by lines that end with "end\n".  A failed request answers
 * "error <message>\n" (one line) before "end".  Records are a type word,
 * then "key value" pairs, so that scripts can pick fields by name.
 *
 *   stats        "key value" lines: every router counter by its
 *                umx_counter_name() (rx_packets ...), files vagents
 *                real_agents tids_in_use queued_packets cm_ids
 *                (umx_router_stats), reader_drops (the port's reader thread),
 *                rdmacm_* (struct rc_stats: rdmacm-mux clients, GIDs, CM
 *                peers, readdressed / unroutable MADs, unanswered requests,
 *                drops), nodes (in use), open_files, parked_refused
 *   list         per node:
 *                  node N name NAME path PATH up yes|no files F privileged
 *                       yes|no classes all|none|0xCC,.. protocol umad|rdmacm
 *                       (rdmacm: then answers none|all)
 *                then per rdmacm-mux client (socket connection or rdmacm
 *                node open):
 *                  rdmacm client "NAME" answers all|none queued Q gids G
 *                  rdmacm gid GID index I peers P    (first 16 GIDs)
 *                  counters N <every umx_counter_name> <value> ...   (the
 *                       node's traffic, drops and refusals by reason)
 *                per open file of the node:
 *                  file ID node N pid PID header old|new agents A queued Q
 *                       outstanding O sent S received R timeouts T
 *                       refused_policy P refused_rate R refused_busy B
 *                       refused_other X
 *                per agent of the file:
 *                  agent ID.SLOT qpn Q class 0xCC version V rmpp R oui 0xOOOOOO
 *                       methods 0xMM,0xMM|- outstanding O
 *   add-node [N] "ok node N name NAME path PATH" (N: the first free slot);
 *                the node is usable when the answer comes
 *   remove-node N   "ok node N removed"  (its open files get ENODEV)
 *   reload       re-read the config (as SIGHUP): "info <message>" lines,
 *                then "ok" or "error <reason>"
 *   help         the commands
 * A client may send several requests on one connection.  Lines longer than
 * CTL_LINE_MAX close the connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <umx/file_stats.h>

#include "front.h"
#include "log.h"
#include "rdmacm.h"

#define CTL_CLIENTS 8
#define CTL_LINE_MAX 256
#define CTL_OUT_MAX (4u << 20)   /* one answer; `list` of 256 busy nodes fits */

struct ctl_client {
	int kind;                    /* EV_CTL_CLIENT */
	int fd;
	size_t inlen;
	char in[CTL_LINE_MAX];
	size_t outlen, outoff, outcap;
	char *out;
};

struct mux_ctl {
	int kind;                    /* EV_CTL_LISTEN */
	int fd;
	char *path;
	struct ctl_client *cl[CTL_CLIENTS];
};

int mux_ctl_open(struct mux *m, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN };
	struct mux_ctl *c;

	if (mux_unix_prepare(path, "control socket", &sa, err, errlen))
		return -1;
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->kind = EV_CTL_LISTEN;
	c->path = strdup(path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(c->fd, CTL_CLIENTS) != 0) {
		snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
		if (c->fd >= 0)
			close(c->fd);
		free(c->path);
		free(c);
		return -1;
	}
	chmod(path, 0600);
	ev.data.ptr = c;
	if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
		snprintf(err, errlen, "epoll: %s", strerror(errno));
		close(c->fd);
		unlink(path);
		free(c->path);
		free(c);
		return -1;
	}
	m->ctl = c;
	return 0;
}

static void client_close(struct mux *m, struct ctl_client *cl)
{
	for (int i = 0; i < CTL_CLIENTS; i++)
		if (m->ctl->cl[i] == cl)
			m->ctl->cl[i] = NULL;
	close(cl->fd);          /* also leaves the epoll set */
	free(cl->out);
	free(cl);
}

static void out(struct ctl_client *cl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(struct ctl_client *cl, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = cl->outcap - cl->outlen;
		va_start(ap, fmt);
		n = vsnprintf(cl->out ? cl->out + cl->outlen : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < room) {
			cl->outlen += (size_t)n;
			return;
		}
		size_t cap = cl->outcap ? cl->outcap * 2 : 8192;
		while (cap < cl->outlen + (size_t)n + 1)
			cap *= 2;
		char *nb = cap <= CTL_OUT_MAX ? realloc(cl->out, cap) : NULL;
		if (!nb)
			return;  /* answer truncated; do_command() still ends it */
		cl->out = nb;
		cl->outcap = cap;
	}
}

static void methods(struct ctl_client *cl, const uint64_t mask[2])
{
	bool any = false;

	for (unsigned b = 0; b < 128; b++)
		if (mask[b / 64] & (1ull << (b % 64))) {
			out(cl, "%s0x%02x", any ? "," : "", b);
			any = true;
		}
	if (!any)
		out(cl, "-");
}

static void node_path(const struct mux *m, const struct mux_node *n, char *buf, size_t len)
{
	if (m->o.mode == MUX_MODE_CUSE)
		snprintf(buf, len, "/dev/%s", n->name);
	else
		snprintf(buf, len, "%s/%s", m->o.fuse_dir, n->name);
}

static void do_list(struct mux *m, struct ctl_client *cl)
{
	for (unsigned i = 0; i < m->o.nodes; i++) {
		struct mux_node *n = &m->node[i];
		const struct umx_node_policy *pol;
		char path[600];

		if (!n->core)
			continue;
		pol = umx_node_policy(n->core);
		node_path(m, n, path, sizeof(path));
		out(cl, "node %u name %s path %s up %s files %u privileged %s classes ", i, n->name,
		    path, m->o.mode == MUX_MODE_FUSE || n->up ? "yes" : "no",
		    umx_node_files(n->core), pol->privileged ? "yes" : "no");
		if (!pol->classes_restricted) {
			out(cl, "all");
		} else {
			bool any = false;
			for (unsigned c = 0; c < 256; c++)
				if (pol->classes[c / 64] & (1ull << (c % 64))) {
					out(cl, "%s0x%02x", any ? "," : "", c);
					any = true;
				}
			if (!any)
				out(cl, "none");
		}
		if (m->o.node[i].protocol == MUX_PROTO_RDMACM)
			out(cl, " protocol rdmacm answers %s\n", m->o.node[i].rdmacm_answers ? "all" : "none");
		else
			out(cl, " protocol umad\n");
		out(cl, "counters %u", i);
		for (int c = 0; c < UMX_C_COUNT; c++)
			out(cl, " %s %llu", umx_counter_name((enum umx_counter)c),
			    (unsigned long long)umx_node_counter(n->core, (enum umx_counter)c));
		out(cl, "\n");
		for (struct mux_file *mf = mux_file_next(m, NULL); mf; mf = mux_file_next(m, mf)) {
			const struct mux_file_stats *st = mux_file_stats(mf);
			struct umx_file_info fi;
			struct umx_agent_info ai;

			if (mux_file_mnode(mf) != n)
				continue;
			umx_file_info(mux_file_core(mf), &fi);
			out(cl, "file %llu node %u pid %d header %s agents %u queued %u outstanding %u "
			    "sent %llu received %llu timeouts %llu refused_policy %llu "
			    "refused_rate %llu refused_busy %llu refused_other %llu\n",
			    (unsigned long long)st->id, i, (int)st->pid, fi.pkey_index ? "new" : "old",
			    fi.agents, fi.queued, fi.outstanding, (unsigned long long)st->sent,
			    (unsigned long long)st->received, (unsigned long long)st->timeouts,
			    (unsigned long long)st->refused_policy, (unsigned long long)st->refused_rate,
			    (unsigned long long)st->refused_busy, (unsigned long long)st->refused_other);
			for (uint32_t a = 0; a < 32; a++) {
				if (!umx_file_agent(mux_file_core(mf), a, &ai))
					continue;
				out(cl, "agent %llu.%u qpn %u class 0x%02x version %u rmpp %u oui 0x%06x "
				    "methods ", (unsigned long long)st->id, ai.id, ai.qpn, ai.mgmt_class,
				    ai.class_version, ai.rmpp_version, ai.oui);
				methods(cl, ai.method_mask);
				out(cl, " outstanding %u\n", ai.outstanding);
			}
		}
	}
	for (struct rc_client *c = rc_client_next(NULL); c; c = rc_client_next(c)) {
		struct rc_client_info ci;
		struct rc_gid_info gi[16];
		char s[INET6_ADDRSTRLEN];

		rc_client_info(c, &ci);
		out(cl, "rdmacm client \"%s\" answers %s queued %u gids %u\n", ci.name,
		    ci.answers ? "all" : "none", ci.queued, ci.gids);
		unsigned n = rc_client_gids(c, gi, 16);
		for (unsigned i = 0; i < n; i++)
			out(cl, "rdmacm gid %s index %d peers %u\n",
			    inet_ntop(AF_INET6, gi[i].gid, s, sizeof(s)) ? s : "?", gi[i].index, gi[i].peers);
	}
}

/* "N" (decimal, < MUX_NODES_MAX): 0, or -1 */
static int node_arg(const char *s, unsigned *idx)
{
	char *end;
	unsigned long v;

	if (!*s || *s == '-' || *s == '+')
		return -1;
	v = strtoul(s, &end, 10);
	if (*end || v >= MUX_NODES_MAX)
		return -1;
	*idx = (unsigned)v;
	return 0;
}

static void do_command(struct mux *m, struct ctl_client *cl, const char *line)
{
	char err[512], arg[CTL_LINE_MAX];
	const char *sp = strchr(line, ' ');
	size_t cmdlen = sp ? (size_t)(sp - line) : strlen(line);
	unsigned idx;

	snprintf(arg, sizeof(arg), "%s", sp ? sp + 1 : "");
#define IS(c) (cmdlen == strlen(c) && !strncmp(line, c, cmdlen))
	if (IS("list") && !*arg) {
		do_list(m, cl);
	} else if (IS("add-node")) {
		int r = -1;
		if (*arg && node_arg(arg, &idx))
			snprintf(err, sizeof(err), "bad node number '%.32s' (0-%d)", arg, MUX_NODES_MAX - 1);
		else
			r = mux_node_add(m, *arg ? (int)idx : -1, err, sizeof(err));
		if (r < 0) {
			out(cl, "error add-node: %s\n", err);
		} else {
			char path[600];
			node_path(m, &m->node[r], path, sizeof(path));
			out(cl, "ok node %d name %s path %s\n", r, m->node[r].name, path);
		}
	} else if (IS("remove-node")) {
		if (node_arg(arg, &idx))
			out(cl, "error remove-node wants a node number (0-%d), not '%.32s'\n",
			    MUX_NODES_MAX - 1, arg);
		else if (mux_node_remove(m, idx, err, sizeof(err)))
			out(cl, "error remove-node: %s\n", err);
		else
			out(cl, "ok node %u removed\n", idx);
	} else if (IS("reload") && !*arg) {
		char msg[4096], *save = NULL, *lines[64];
		int r = mux_reload(m, msg, sizeof(msg)), nl = 0;

		for (char *t = strtok_r(msg, "\n", &save); t && nl < 64; t = strtok_r(NULL, "\n", &save))
			lines[nl++] = t;
		/* a failed reload's last line is its reason */
		for (int i = 0; i < nl - (r && nl ? 1 : 0); i++)
			out(cl, "info %s\n", lines[i]);
		if (r)
			out(cl, "error reload: %s\n", nl ? lines[nl - 1] : "failed");
		else
			out(cl, "ok\n");
		log_info("control: reload %s", r ? "failed" : "done");
	} else if (IS("help") && !*arg) {
		out(cl, "info commands: stats list add-node [N] remove-node N reload help\n");
	} else if (IS("stats") && !*arg) {
		struct umx_router_stats st;
		for (int c = 0; c < UMX_C_COUNT; c++)
			out(cl, "%s %llu\n", umx_counter_name((enum umx_counter)c),
			    (unsigned long long)umx_router_counter(m->router, (enum umx_counter)c));
		umx_router_stats(m->router, &st);
		out(cl, "files %u\nvagents %u\nreal_agents %u\ntids_in_use %u\nqueued_packets %u\n",
		    st.files, st.vagents, st.real_agents, st.tids_in_use, st.queued_packets);
		out(cl, "cm_ids %u\n", st.cm_ids);
		out(cl, "reader_drops %llu\n", (unsigned long long)umx_umad_port_reader_drops(m->port));
		struct rc_stats rs;
		rc_stats_get(&rs);
		out(cl, "rdmacm_clients %u\nrdmacm_gids %u\nrdmacm_peers %u\n", rs.clients, rs.gids,
		    rs.peers);
		out(cl, "rdmacm_tx_readdressed %llu\nrdmacm_tx_unroutable %llu\n"
		    "rdmacm_peers_evicted %llu\nrdmacm_answers_suppressed %llu\n"
		    "rdmacm_errors_unanswered %llu\nrdmacm_queue_drops %llu\nrdmacm_rx_too_big %llu\n",
		    (unsigned long long)rs.tx_readdressed, (unsigned long long)rs.tx_unroutable,
		    (unsigned long long)rs.peers_evicted, (unsigned long long)rs.answers_suppressed,
		    (unsigned long long)rs.errors_unanswered, (unsigned long long)rs.queue_drops,
		    (unsigned long long)rs.rx_too_big);
		unsigned live = 0;
		for (unsigned i = 0; i < m->o.nodes; i++)
			live += m->node[i].core != NULL;
		out(cl, "nodes %u\nopen_files %u\nparked_refused %llu\n", live, m->nfiles,
		    (unsigned long long)m->parked_refused);
	} else {
		out(cl, "error unknown command: %.64s (try help)\n", line);
	}
#undef IS
	/* the terminator always fits, also after a truncated answer */
	if (cl->outcap - cl->outlen < 5) {
		char *nb = realloc(cl->out, cl->outlen + 5);
		if (nb) {
			cl->out = nb;
			cl->outcap = cl->outlen + 5;
		} else {
			cl->outlen = cl->outcap >= 5 ? cl->outcap - 5 : 0;
		}
	}
	if (cl->out && cl->outcap - cl->outlen >= 5) {
		memcpy(cl->out + cl->outlen, "end\n", 4);
		cl->outlen += 4;
	}
}

/* false: the client is gone */
static bool flush_out(struct mux *m, struct ctl_client *cl)
{
	while (cl->outoff < cl->outlen) {
		ssize_t n = send(cl->fd, cl->out + cl->outoff, cl->outlen - cl->outoff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0)
			return false;
		cl->outoff += (size_t)n;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = cl };
	if (cl->outoff == cl->outlen) {
		cl->outoff = cl->outlen = 0;
	} else {
		ev.events = EPOLLOUT;   /* stop reading until the answer is out */
	}
	epoll_ctl(m->epfd, EPOLL_CTL_MOD, cl->fd, &ev);
	return true;
}

static void client_event(struct mux *m, struct ctl_client *cl, uint32_t events)
{
	if (events & EPOLLOUT) {
		if (!flush_out(m, cl))
			client_close(m, cl);
		return;
	}
	if (cl->outlen) /* still sending: read later */
		return;
	ssize_t n = recv(cl->fd, cl->in + cl->inlen, sizeof(cl->in) - cl->inlen, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		client_close(m, cl);
		return;
	}
	cl->inlen += (size_t)n;
	char *nl;
	while ((nl = memchr(cl->in, '\n', cl->inlen))) {
		*nl = 0;
		if (nl > cl->in && nl[-1] == '\r')
			nl[-1] = 0;
		do_command(m, cl, cl->in);
		size_t used = (size_t)(nl + 1 - cl->in);
		memmove(cl->in, nl + 1, cl->inlen - used);
		cl->inlen -= used;
	}
	if (cl->inlen == sizeof(cl->in)) {
		client_close(m, cl);
		return;
	}
	if (cl->outlen && !flush_out(m, cl))
		client_close(m, cl);
}

void mux_ctl_event(struct mux *m, void *tag, uint32_t events)
{
	struct mux_ctl *c = m->ctl;

	if (*(int *)tag == EV_CTL_CLIENT) {
		client_event(m, tag, events);
		return;
	}
	for (;;) {
		int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int slot = -1;
		if (fd < 0)
			return;
		for (int i = 0; i < CTL_CLIENTS; i++)
			if (!c->cl[i]) {
				slot = i;
				break;
			}
		struct ctl_client *cl = slot >= 0 ? calloc(1, sizeof(*cl)) : NULL;
		if (!cl) {
			static const char busy[] = "error too many control clients\nend\n";
			if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			}
			close(fd);
			continue;
		}
		cl->kind = EV_CTL_CLIENT;
		cl->fd = fd;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = cl };
		if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
			close(fd);
			free(cl);
			continue;
		}
		c->cl[slot] = cl;
	}
}

void mux_ctl_close(struct mux *m)
{
	struct mux_ctl *c = m->ctl;

	if (!c)
		return;
	for (int i = 0; i < CTL_CLIENTS; i++)
		if (c->cl[i])
			client_close(m, c->cl[i]);
	close(c->fd);
	unlink(c->path);
	free(c->path);
	free(c);
	m->ctl = NULL;
}
