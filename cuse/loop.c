/*
 * loop.c - FUSE/CUSE sessions inside the daemon's one epoll loop, and
 * readiness reporting (sd_notify protocol without libsystemd).
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "front.h"
#include "log.h"

int mux_sess_add(struct mux *m, struct mux_sess *s)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct mux_sess **ns;
	int fl;

	s->fd = fuse_session_fd(s->se);
	/* non-blocking: a request can vanish (interrupt, abort) between the
	 * wakeup and the read; then receive_buf returns -EAGAIN */
	fl = fcntl(s->fd, F_GETFL);
	if (fl < 0 || fcntl(s->fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	ns = realloc(m->sess, (m->nsess + 1) * sizeof(*ns));
	if (!ns)
		return -1;
	m->sess = ns;
	m->sess[m->nsess++] = s;
	ev.data.ptr = s;
	return epoll_ctl(m->epfd, EPOLL_CTL_ADD, s->fd, &ev);
}

/* at most this many requests per wakeup, so no session starves the others */
#define SESS_BATCH 64

bool mux_sess_process(struct mux_sess *s)
{
	if (!s->se)             /* a removed node's session (mux_cuse_node_stop) */
		return true;
	for (int i = 0; i < SESS_BATCH; i++) {
		int res = fuse_session_receive_buf(s->se, &s->buf);
		if (res == -EINTR || res == -EAGAIN)
			return true;
		if (res < 0) {
			log_warn("%s: reading the %s device: %s", s->node ? s->node->name : s->mux->o.fuse_dir,
				 s->node ? "CUSE" : "FUSE", strerror(-res));
			return false;
		}
		if (res == 0 || fuse_session_exited(s->se))
			return false;
		fuse_session_process_buf(s->se, &s->buf);
		if (fuse_session_exited(s->se))
			return false;
	}
	return true;
}

/* sd_notify(0, "READY=1") without libsystemd */
static void notify_ready(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len;
	int fd;

	if (!path || !*path || (path[0] != '/' && path[0] != '@'))
		return;
	len = strlen(path);
	if (len >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, len);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = 0;     /* abstract namespace */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, "READY=1", 7, MSG_NOSIGNAL, (struct sockaddr *)&sa,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
		log_warn("NOTIFY_SOCKET %s: %s", path, strerror(errno));
	close(fd);
}

static void ready(struct mux *m)
{
	if (m->ready)
		return;
	m->ready = true;
	if (m->o.mode == MUX_MODE_CUSE)
		log_info("ready: %u CUSE nodes /dev/%s-0..%u on %s port %d", m->o.nodes, m->o.prefix,
			 m->o.nodes - 1, umx_umad_port_ca(m->port), umx_umad_port_num(m->port));
	else
		log_info("ready: %u FUSE files %s/%s-0..%u on %s port %d", m->o.nodes, m->o.fuse_dir,
			 m->o.prefix, m->o.nodes - 1, umx_umad_port_ca(m->port),
			 umx_umad_port_num(m->port));
	notify_ready();
	if (m->ready_pipe >= 0) {
		/* background start: the parent exits 0 now; we leave stderr */
		char ok = 0;
		if (write(m->ready_pipe, &ok, 1) < 0) {
		}
		close(m->ready_pipe);
		m->ready_pipe = -1;
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
			if (nul > 2)
				close(nul);
		}
		log_to_syslog();
	}
}

void mux_ready_check(struct mux *m)
{
	unsigned live = 0;

	for (unsigned i = 0; i < m->o.nodes; i++)
		if (m->node[i].core)
			live++;
	if (m->o.mode == MUX_MODE_CUSE && m->nodes_up >= live)
		ready(m);
}

void mux_fuse_inited(struct mux *m)
{
	ready(m);
}
