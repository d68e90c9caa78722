/*
 * cuse_mode.c - one CUSE device per node (/dev/<prefix>-N), every session
 * served by the daemon's single epoll loop (SPDK nvme_cuse.c style, but
 * without a thread per device).
 */
#include "front.h"
#include <cuse_lowlevel.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static struct mux_node *node_of(fuse_req_t req) { return fuse_req_userdata(req); }

static void cu_init_done(void *userdata)
{
	struct mux_node *n = userdata;
	struct mux *m = n->mux;
	char path[MUX_NAME_MAX + 8];

	/* the kernel created the device (devtmpfs node included) before our
	 * INIT reply returned: set the node's owner and mode now */
	snprintf(path, sizeof(path), "/dev/%s", n->name);
	if (chmod(path, m->o.mode_bits) != 0)
		log_warn("chmod %s: %s", path, strerror(errno));
	if ((m->o.uid || m->o.gid) && chown(path, m->o.uid, m->o.gid) != 0)
		log_warn("chown %s: %s", path, strerror(errno));
	n->up = true;
	m->nodes_up++;
	log_debug("%s: CUSE device up", path);
	mux_ready_check(m);
}

static void cu_open(fuse_req_t req, struct fuse_file_info *fi) { mux_h_open(req, node_of(req), fi); }
static void cu_release(fuse_req_t req, struct fuse_file_info *fi) { mux_h_release(req, fi); }
static void cu_read(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi)
{
	mux_h_read(req, size, fi);
}
static void cu_write(fuse_req_t req, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	mux_h_write(req, buf, size, fi);
}
static void cu_poll(fuse_req_t req, struct fuse_file_info *fi, struct fuse_pollhandle *ph)
{
	mux_h_poll(req, fi, ph);
}
/* CUSE's cmd is an int in libfuse 3.14: 0xc01c1b01 is negative */
static void cu_ioctl(fuse_req_t req, int cmd, void *arg, struct fuse_file_info *fi, unsigned flags,
		     const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	mux_h_ioctl(req, (unsigned int)cmd, fi, flags, in_buf, in_bufsz, out_bufsz);
}

static const struct cuse_lowlevel_ops cu_ops = {
	.init_done = cu_init_done,
	.open = cu_open,
	.release = cu_release,
	.read = cu_read,
	.write = cu_write,
	.ioctl = cu_ioctl,
	.poll = cu_poll,
};

void mux_cuse_precheck(void)
{
	if (access("/dev/cuse", R_OK | W_OK) != 0)
		fatal("no usable /dev/cuse (%s): load the cuse module (modprobe cuse), "
		      "or use --mode fuse --fuse-dir <dir>", strerror(errno));
}

int mux_cuse_node_start(struct mux *m, struct mux_node *n, char *err, size_t errlen)
{
	char sys[MUX_NAME_MAX + 32], dev[MUX_NAME_MAX + 16], devinfo[MUX_NAME_MAX + 16];
	const char *dev_info_argv[] = { devinfo };
	char *argv[] = { "umad-mux", "-f", "-s", NULL };
	struct cuse_info ci;
	int mt = 0;

	/* the kernel refuses a duplicate name by aborting the connection;
	 * say it clearly before trying */
	snprintf(sys, sizeof(sys), "/sys/class/cuse/%s", n->name);
	snprintf(dev, sizeof(dev), "/dev/%s", n->name);
	if (access(sys, F_OK) == 0 || access(dev, F_OK) == 0) {
		snprintf(err, errlen, "CUSE device name '%s' is already in use (%s exists): "
			 "another umad-mux running? choose --name-prefix",
			 n->name, access(sys, F_OK) == 0 ? sys : dev);
		return -1;
	}
	/* udev reads ibdev/port/mode/group from here when the device appears */
	mux_devinfo_write(m, n);
	snprintf(devinfo, sizeof(devinfo), "DEVNAME=%s", n->name);
	memset(&ci, 0, sizeof(ci));
	ci.dev_major = 0;            /* dynamic */
	ci.dev_minor = 0;
	ci.dev_info_argc = 1;
	ci.dev_info_argv = dev_info_argv;
	ci.flags = 0;                /* restricted ioctls suffice */
	struct mux_sess *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->kind = EV_SESS;
	s->mux = m;
	s->node = n;
	s->se = cuse_lowlevel_setup(3, argv, &ci, &cu_ops, &mt, n);
	if (!s->se) {
		snprintf(err, errlen, "cannot set up CUSE device %s (see the message above)", n->name);
		free(s);
		mux_devinfo_remove(m, n);
		return -1;
	}
	/* cuse_lowlevel_setup() installed libfuse's process-wide signal
	 * handlers (the last session wins): the loop has a signalfd */
	fuse_remove_signal_handlers(s->se);
	signal(SIGPIPE, SIG_IGN);
	n->sess = s;
	if (mux_sess_add(m, s) != 0) {
		snprintf(err, errlen, "cannot add CUSE session of %s to the loop", n->name);
		mux_cuse_node_stop(m, n);
		return -1;
	}
	return 0;
}

int mux_cuse_start(struct mux *m)
{
	char err[512];

	mux_cuse_precheck();
	for (unsigned i = 0; i < m->o.nodes; i++)
		if (m->node[i].core && mux_cuse_node_start(m, &m->node[i], err, sizeof(err)))
			fatal("%s", err);
	return 0;
}

/* a removed node: its session leaves the loop now (closing /dev/cuse removes
 * the device); the struct is freed after the current epoll batch, whose
 * events may still point at it (mux_sess_process() skips it: se == NULL) */
void mux_cuse_node_stop(struct mux *m, struct mux_node *n)
{
	struct mux_sess *s = n->sess;

	if (!s)
		return;
	for (unsigned i = 0; i < m->nsess; i++)
		if (m->sess[i] == s)
			m->sess[i] = NULL;
	fuse_session_destroy(s->se);
	s->se = NULL;
	free(s->buf.mem);
	s->buf.mem = NULL;
	s->dead_next = m->dead;
	m->dead = s;
	n->sess = NULL;
	if (n->up) {
		n->up = false;
		m->nodes_up--;
	}
	mux_devinfo_remove(m, n);
}

void mux_cuse_stop(struct mux *m)
{
	for (unsigned i = 0; i < m->nsess; i++) {
		struct mux_sess *s = m->sess[i];
		if (!s || !s->node)
			continue;
		/* not cuse_lowlevel_teardown(): its fuse_remove_signal_handlers()
		 * complains about sessions whose handlers we removed already */
		fuse_session_destroy(s->se);
		free(s->buf.mem);
		if (s->node) {
			mux_devinfo_remove(m, s->node);
			s->node->sess = NULL;
		}
		free(s);
		m->sess[i] = NULL;
	}
}
