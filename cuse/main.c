/*
 * main.c - umad-mux: one real umad port, one virtual umad device per node
 * (CUSE /dev/<prefix>-N or FUSE <fuse-dir>/<prefix>-N).
 *
 * One thread, one epoll loop: the port's eventfd (its reader thread hands
 * packets over), one fd per CUSE/FUSE session, a signalfd for
 * SIGTERM/SIGINT/SIGHUP, and the control socket.  Nothing in the loop
 * blocks: session fds are non-blocking and parked reads are answered when
 * the core reports a packet.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "front.h"
#include "log.h"

static int tag_port = EV_PORT, tag_signal = EV_SIGNAL, tag_tick = EV_TICK;

/* background start: the parent waits for the child's "ready" byte so that
 * start-up errors still give a non-zero exit status */
static int detach(void)
{
	int p[2];
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC) != 0)
		fatal("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		fatal("fork: %s", strerror(errno));
	if (pid > 0) {
		close(p[1]);
		ssize_t n = read(p[0], &c, 1);
		if (n == 1 && c == 0)
			_exit(0);
		int st;
		if (waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st))
			_exit(WEXITSTATUS(st));
		_exit(1);
	}
	close(p[0]);
	setsid();
	return p[1];
}

int main(int argc, char **argv)
{
	struct mux m;
	sigset_t sigs;
	char err[512];
	int sfd, rc;

	memset(&m, 0, sizeof(m));
	m.ready_pipe = -1;
	rc = mux_opts_parse(&m.o, argc, argv);
	if (rc)   /* --check-instance is an ExecCondition: 255 fails the unit */
		return rc > 0 ? 0 : m.o.check_instance ? 255 : 2;
	if (m.o.check_instance)
		return mux_opts_check_instance(&m.o);
	m.argc = argc;
	m.argv = argv;
	/* stderr until ready (also in the background: start-up errors must
	 * reach whoever started us), syslog afterwards */
	log_init("umad-mux", true, m.o.verbose);
	if (!m.o.foreground)
		m.ready_pipe = detach();

	/* block the signals before any thread exists; the loop reads them */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	m.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || m.epfd < 0)
		fatal("signalfd/epoll: %s", strerror(errno));

	/* environment problems first, before the port is touched */
	if (m.o.mode == MUX_MODE_CUSE)
		mux_cuse_precheck();
	m.port = umx_umad_port_open(m.o.device, m.o.port, err, sizeof(err));
	if (!m.port)
		fatal("no umad port %s:%d: %s; load ib_umad (modprobe ib_umad) and check "
		      "/sys/class/infiniband_mad, or run under the simulated fabric "
		      "(tests/sim/simfabric.sh)",
		      m.o.device ? m.o.device : "(first)", m.o.port, err);
	log_info("port %s:%d open", umx_umad_port_ca(m.port), umx_umad_port_num(m.port));
	if (m.o.sysfs_export) {
		if (mux_sysfs_export(m.o.sysfs_export, umx_umad_port_ca(m.port),
				     umx_umad_port_num(m.port), err, sizeof(err)))
			fatal("--sysfs-export %s: %s", m.o.sysfs_export, err);
	}
	m.router = umx_router_new(umx_umad_port_base(m.port), &mux_events, &m, &m.o.lim);
	if (!m.router)
		fatal("out of memory");
	/* every slot up front: nodes added at runtime never move the others */
	m.node = calloc(MUX_NODES_MAX, sizeof(*m.node));
	if (!m.node)
		fatal("out of memory");
	for (unsigned i = 0; i < m.o.nodes; i++) {
		struct mux_node *n = &m.node[i];
		n->mux = &m;
		n->index = i;
		snprintf(n->name, sizeof(n->name), "%s-%u", m.o.prefix, i);
		n->core = umx_node_new(m.router, i, &m.o.node[i].pol);
		if (!n->core)
			fatal("out of memory");
	}

	struct epoll_event ev = { .events = EPOLLIN };
	ev.data.ptr = &tag_port;
	if (epoll_ctl(m.epfd, EPOLL_CTL_ADD, umx_umad_port_event_fd(m.port), &ev) != 0)
		fatal("epoll: %s", strerror(errno));
	ev.data.ptr = &tag_signal;
	if (epoll_ctl(m.epfd, EPOLL_CTL_ADD, sfd, &ev) != 0)
		fatal("epoll: %s", strerror(errno));
	/* once a second: the core's periodic work (CM grace periods) */
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct itimerspec its = { .it_interval = { 1, 0 }, .it_value = { 1, 0 } };
	if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) != 0)
		fatal("timerfd: %s", strerror(errno));
	ev.data.ptr = &tag_tick;
	if (epoll_ctl(m.epfd, EPOLL_CTL_ADD, tfd, &ev) != 0)
		fatal("epoll: %s", strerror(errno));
	if (m.o.control && mux_ctl_open(&m, m.o.control, err, sizeof(err)))
		fatal("%s", err);
	if (mux_rdmacm_sock_open(&m, err, sizeof(err)))
		fatal("%s", err);

	if (m.o.mode == MUX_MODE_CUSE)
		mux_cuse_start(&m);
	else
		mux_fuse_start(&m);

	rc = 0;
	bool port_lost = false;
	while (!m.stop) {
		struct epoll_event evs[32];
		int n = epoll_wait(m.epfd, evs, 32, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_warn("epoll_wait: %s", strerror(errno));
			rc = 1;
			break;
		}
		for (int i = 0; i < n && !m.stop; i++) {
			int kind = *(int *)evs[i].data.ptr;
			switch (kind) {
			case EV_PORT:
				umx_umad_port_dispatch(m.port, m.router);
				if (umx_umad_port_dead(m.port) && !port_lost) {
					port_lost = true;
					log_warn("real port %s:%d went away: open files now get EIO, "
						 "opens ENXIO; reopening it every second",
						 umx_umad_port_ca(m.port), umx_umad_port_num(m.port));
				}
				break;
			case EV_SIGNAL: {
				struct signalfd_siginfo si;
				if (read(sfd, &si, sizeof(si)) != sizeof(si))
					break;
				if (si.ssi_signo == SIGHUP) {
					char msg[2048];
					int r = mux_reload(&m, msg, sizeof(msg));
					/* one log line: "a\nb\n" -> "a; b" */
					for (char *p = msg; *p; p++)
						if (*p == '\n')
							*p = p[1] ? ';' : 0;
					log_info("SIGHUP: reload %s%s%s", r ? "failed" : "done",
						 *msg ? ": " : "", msg);
					break;
				}
				log_info("signal %u: shutting down", si.ssi_signo);
				m.stop = true;
				break;
			}
			case EV_SESS: {
				struct mux_sess *s = evs[i].data.ptr;
				if (!mux_sess_process(s)) {
					const char *what = s->node ? s->node->name : m.o.fuse_dir;
					if (s->node && !s->node->up)
						log_warn("CUSE device %s was refused by the kernel (duplicate "
							 "name? see dmesg)", what);
					else
						log_warn("%s: session ended (device removed or unmounted)",
							 what);
					rc = 1;
					m.stop = true;
				}
				break;
			}
			case EV_TICK: {
				uint64_t ticks;
				if (read(tfd, &ticks, sizeof(ticks)) == sizeof(ticks))
					umx_router_tick(m.router);
				if (port_lost && umx_umad_port_reopen(m.port, err, sizeof(err)) == 0) {
					port_lost = false;
					umx_router_port_up(m.router, umx_umad_port_base(m.port));
					log_info("real port %s:%d is back: new opens work again",
						 umx_umad_port_ca(m.port), umx_umad_port_num(m.port));
				}
				break;
			}
			case EV_CTL_LISTEN:
			case EV_CTL_CLIENT:
				mux_ctl_event(&m, evs[i].data.ptr, evs[i].events);
				break;
			case EV_RDMACM:
				mux_rdmacm_sock_event(&m, evs[i].data.ptr, evs[i].events);
				break;
			}
		}
		mux_nodes_gc(&m);
	}

	/* clean shutdown: answer parked reads, release files (real agents are
	 * unregistered by the core), remove nodes, close the port */
	mux_rdmacm_shutdown(&m);
	mux_files_shutdown(&m);
	if (m.o.mode == MUX_MODE_CUSE)
		mux_cuse_stop(&m);
	else
		mux_fuse_stop(&m);
	mux_ctl_close(&m);
	for (unsigned i = 0; i < m.o.nodes; i++)
		if (m.node[i].core)
			umx_node_free(m.node[i].core);
	mux_nodes_gc(&m);
	umx_router_free(m.router);
	umx_umad_port_close(m.port);
	free(m.node);
	free(m.sess);
	close(sfd);
	close(tfd);
	close(m.epfd);
	log_info("stopped");
	mux_opts_free();
	if (!m.ready && rc == 0)
		rc = 1;
	return rc;
}
