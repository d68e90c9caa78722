/*
 * control.c - the control socket (--control PATH): a unix stream socket in
 * the loop, non-blocking, at most CTL_CLIENTS clients at once.
 *
 * Protocol (line based, ASCII; a later issue brings a full control tool):
 *   request  "stats\n"
 *   answer   "key value\n" lines, then "end\n":
 *              every router counter by its umx_counter_name() (rx_packets ...),
 *              files vagents real_agents tids_in_use queued_packets
 *              (umx_router_stats), reader_drops (the port's reader thread),
 *              nodes, open_files, parked_refused (front end)
 *   request  anything else
 *   answer   "error unknown command: <cmd>\n" then "end\n"
 * A client may send several requests on one connection.  Lines longer than
 * CTL_LINE_MAX close the connection.
 */
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

#include "front.h"
#include "log.h"

#define CTL_CLIENTS 8
#define CTL_LINE_MAX 256
#define CTL_OUT_MAX 8192

struct ctl_client {
	int kind;                    /* EV_CTL_CLIENT */
	int fd;
	size_t inlen;
	char in[CTL_LINE_MAX];
	size_t outlen, outoff;
	char out[CTL_OUT_MAX];
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
	struct stat st;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "control socket path too long: %s", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	/* a stale socket from a dead daemon; refuse to steal a live one */
	if (lstat(path, &st) == 0) {
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool live = probe >= 0 && S_ISSOCK(st.st_mode) &&
			    connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		if (probe >= 0)
			close(probe);
		if (live || !S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "control socket %s: %s", path,
				 live ? "another daemon is listening there" : "exists and is not a socket");
			return -1;
		}
		unlink(path);
	}
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
	free(cl);
}

static void out(struct ctl_client *cl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(struct ctl_client *cl, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (cl->outlen >= sizeof(cl->out))
		return;
	va_start(ap, fmt);
	n = vsnprintf(cl->out + cl->outlen, sizeof(cl->out) - cl->outlen, fmt, ap);
	va_end(ap);
	if (n > 0)
		cl->outlen += (size_t)n;
	if (cl->outlen > sizeof(cl->out))
		cl->outlen = sizeof(cl->out);
}

static void do_command(struct mux *m, struct ctl_client *cl, const char *line)
{
	if (!strcmp(line, "stats")) {
		struct umx_router_stats st;
		for (int c = 0; c < UMX_C_COUNT; c++)
			out(cl, "%s %llu\n", umx_counter_name((enum umx_counter)c),
			    (unsigned long long)umx_router_counter(m->router, (enum umx_counter)c));
		umx_router_stats(m->router, &st);
		out(cl, "files %u\nvagents %u\nreal_agents %u\ntids_in_use %u\nqueued_packets %u\n",
		    st.files, st.vagents, st.real_agents, st.tids_in_use, st.queued_packets);
		out(cl, "reader_drops %llu\n", (unsigned long long)umx_umad_port_reader_drops(m->port));
		out(cl, "nodes %u\nopen_files %u\nparked_refused %llu\n", m->o.nodes, m->nfiles,
		    (unsigned long long)m->parked_refused);
	} else {
		out(cl, "error unknown command: %.64s\n", line);
	}
	out(cl, "end\n");
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
