/*
 * rdmacm_sock.c - the rdmacm-mux unix socket (-s/--socket PATH, or
 * --socket-default: /var/run/rdmacm-mux-<ibdev>-<port>, the name
 * QEMU's documentation gives to `-chardev socket,path=...`), in the loop.
 *
 * One connection = one rdmacm client (rdmacm_client.c) whose GID nodes
 * take node 0's policy as their base.  Stream framing: every message is
 * RDMACM_MSG_SIZE bytes; a partial message waits for the rest.  A message
 * that is not a request closes the connection (as rdmacm-mux did).  While
 * answers wait to be sent the connection is not read (back-pressure);
 * incoming MADs beyond RC_QUEUE_MAX queued messages are dropped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "rdmacm.h"

#define RC_BATCH 64              /* requests per wakeup per connection */
#define RC_CONNS_MAX 1024

enum { SUB_LISTEN, SUB_CONN };

struct rc_conn {
	int kind;                    /* EV_RDMACM */
	int sub;                     /* SUB_CONN */
	struct rc_conn *next;
	struct mux *m;
	int fd;
	struct rc_client *c;
	uint8_t in[RDMACM_MSG_SIZE];
	size_t inlen;
	uint8_t out[RDMACM_MSG_SIZE];
	size_t outoff, outlen;
	uint32_t events;             /* registered with epoll */
};

struct rc_listen {
	int kind;                    /* EV_RDMACM */
	int sub;                     /* SUB_LISTEN */
	int fd;
	char *path;
	struct rc_conn *conns;
	unsigned nconns;
};

static struct rc_listen *L;

static void set_events(struct rc_conn *cn, uint32_t ev)
{
	if (cn->events == ev)
		return;
	struct epoll_event e = { .events = ev, .data.ptr = cn };
	if (epoll_ctl(cn->m->epfd, EPOLL_CTL_MOD, cn->fd, &e) == 0)
		cn->events = ev;
}

/* send what is queued; false: the connection is broken */
static bool flush(struct rc_conn *cn)
{
	for (;;) {
		if (cn->outoff == cn->outlen) {
			if (!rc_client_pop(cn->c, cn->out)) {
				cn->outoff = cn->outlen = 0;
				break;
			}
			cn->outoff = 0;
			cn->outlen = RDMACM_MSG_SIZE;
		}
		ssize_t n = send(cn->fd, cn->out + cn->outoff, cn->outlen - cn->outoff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			break;
		if (n <= 0)
			return false;
		cn->outoff += (size_t)n;
	}
	/* pending output: wait for room and read no more requests meanwhile */
	set_events(cn, cn->outoff < cn->outlen ? EPOLLOUT : EPOLLIN);
	return true;
}

static void on_readable(struct rc_client *c, void *owner)
{
	struct rc_conn *cn = owner;
	(void)c;
	/* only when nothing is in flight: otherwise EPOLLOUT continues it */
	if (cn->outoff == cn->outlen && !flush(cn))
		set_events(cn, EPOLLIN);      /* the error shows as EPOLLHUP/ERR/EOF */
}

static void conn_close(struct rc_conn *cn)
{
	for (struct rc_conn **p = &L->conns; *p; p = &(*p)->next)
		if (*p == cn) {
			*p = cn->next;
			break;
		}
	L->nconns--;
	log_debug("rdmacm socket: connection fd %d closed", cn->fd);
	rc_client_free(cn->c);
	close(cn->fd);
	free(cn);
}

static void conn_event(struct rc_conn *cn, uint32_t events)
{
	if (events & EPOLLOUT) {
		if (!flush(cn)) {
			conn_close(cn);
			return;
		}
	}
	if (events & (EPOLLHUP | EPOLLERR)) {
		conn_close(cn);          /* the peer is gone: nobody reads answers */
		return;
	}
	if (!(events & EPOLLIN) || cn->outoff < cn->outlen)
		return;
	for (int i = 0; i < RC_BATCH; i++) {
		ssize_t n = recv(cn->fd, cn->in + cn->inlen, sizeof(cn->in) - cn->inlen, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			break;
		if (n <= 0) {
			if (cn->inlen)
				log_debug("rdmacm socket fd %d: %zu bytes of a message left at close",
					  cn->fd, cn->inlen);
			conn_close(cn);
			return;
		}
		cn->inlen += (size_t)n;
		if (cn->inlen < sizeof(cn->in))
			continue;
		cn->inlen = 0;
		if (rc_client_request(cn->c, cn->in) != 0) {
			conn_close(cn);          /* not a request: as rdmacm-mux */
			return;
		}
		if (!flush(cn)) {
			conn_close(cn);
			return;
		}
		if (cn->outoff < cn->outlen)
			break;                   /* the peer reads slowly: wait */
	}
}

static void accept_all(struct mux *m)
{
	for (;;) {
		int fd = accept4(L->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (L->nconns >= RC_CONNS_MAX) {
			log_warn("rdmacm socket: more than %d clients, connection refused", RC_CONNS_MAX);
			close(fd);
			continue;
		}
		struct rc_conn *cn = calloc(1, sizeof(*cn));
		char name[64];
		struct ucred cr;
		socklen_t crlen = sizeof(cr);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) == 0)
			snprintf(name, sizeof(name), "rdmacm socket fd %d pid %d", fd, (int)cr.pid);
		else
			snprintf(name, sizeof(name), "rdmacm socket fd %d", fd);
		if (cn)
			cn->c = rc_client_new(m, name, umx_node_policy(m->node[0].core), true, on_readable,
					      cn);
		if (!cn || !cn->c) {
			free(cn);
			close(fd);
			continue;
		}
		cn->kind = EV_RDMACM;
		cn->sub = SUB_CONN;
		cn->m = m;
		cn->fd = fd;
		cn->events = EPOLLIN;
		struct epoll_event e = { .events = EPOLLIN, .data.ptr = cn };
		if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &e) != 0) {
			rc_client_free(cn->c);
			close(fd);
			free(cn);
			continue;
		}
		cn->next = L->conns;
		L->conns = cn;
		L->nconns++;
		log_debug("rdmacm socket: client connected (fd %d)", fd);
	}
}

void mux_rdmacm_sock_event(struct mux *m, void *tag, uint32_t events)
{
	if (((struct rc_conn *)tag)->sub == SUB_CONN)
		conn_event(tag, events);
	else
		accept_all(m);
}

int mux_rdmacm_sock_open(struct mux *m, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char path[sizeof(sa.sun_path) + 64];

	if (m->o.rdmacm_socket)
		snprintf(path, sizeof(path), "%s", m->o.rdmacm_socket);
	else if (m->o.rdmacm_socket_default)
		snprintf(path, sizeof(path), "/var/run/rdmacm-mux-%s-%d", umx_umad_port_ca(m->port),
			 umx_umad_port_num(m->port));
	else
		return 0;
	if (mux_unix_prepare(path, "rdmacm socket", &sa, err, errlen))
		return -1;
	L = calloc(1, sizeof(*L));
	if (!L || !(L->path = strdup(path))) {
		free(L);
		L = NULL;
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	L->kind = EV_RDMACM;
	L->sub = SUB_LISTEN;
	L->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = L };
	if (L->fd < 0 || bind(L->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(L->fd, 64) != 0 ||
	    epoll_ctl(m->epfd, EPOLL_CTL_ADD, L->fd, &e) != 0) {
		snprintf(err, errlen, "rdmacm socket %s: %s", path, strerror(errno));
		if (L->fd >= 0) {
			close(L->fd);
			unlink(path);
		}
		free(L->path);
		free(L);
		L = NULL;
		return -1;
	}
	/* who may connect: the nodes' permissions */
	chmod(path, m->o.mode_bits ? m->o.mode_bits : 0600);
	if ((m->o.uid || m->o.gid) && chown(path, m->o.uid, m->o.gid) != 0)
		log_warn("chown %s: %s", path, strerror(errno));
	log_info("rdmacm-mux protocol on %s", path);
	return 0;
}

void mux_rdmacm_shutdown(struct mux *m)
{
	mux_rdmacm_nodes_shutdown(m);
	if (!L)
		return;
	while (L->conns)
		conn_close(L->conns);
	close(L->fd);
	unlink(L->path);
	free(L->path);
	free(L);
	L = NULL;
}
