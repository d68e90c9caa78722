/*
 * fuse_mode.c - FUSE mode: one low-level FUSE filesystem on --fuse-dir with
 * the regular files <prefix>-0 .. <prefix>-(N-1), served by the same node
 * handlers as the CUSE devices.  For hosts and containers that have
 * /dev/fuse but no CUSE.
 *
 * Files: S_IFREG, owner/mode from --owner/--mode-bits (default root 0600,
 * like the kernel's umad nodes); mounted with allow_other (so other users
 * can reach them if the mode says so) and default_permissions (the kernel
 * enforces that mode).  Opens are FOPEN_STREAM (stream_io.c) and direct_io.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "front.h"
#include "log.h"
#include "stream_io.h"

#define INO_FIRST 2              /* node i is inode INO_FIRST + i */

static time_t start_time;

static struct mux *mux_of(fuse_req_t req) { return fuse_req_userdata(req); }

static struct mux_node *node_of_ino(struct mux *m, fuse_ino_t ino)
{
	if (ino < INO_FIRST || ino - INO_FIRST >= m->o.nodes)
		return NULL;
	/* a node removed at runtime (control socket) has no core */
	return m->node[ino - INO_FIRST].core ? &m->node[ino - INO_FIRST] : NULL;
}

static void fill_attr(struct mux *m, fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_atime = st->st_mtime = st->st_ctime = start_time;
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | (m->o.mode_bits & 07777);
		st->st_nlink = 1;
		st->st_uid = m->o.uid;
		st->st_gid = m->o.gid;
		st->st_size = 0;         /* direct_io: reads are not clipped */
	}
}

static void ll_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)conn;
	mux_fuse_inited(userdata);
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct mux *m = mux_of(req);
	struct fuse_entry_param e;

	if (parent != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	for (unsigned i = 0; i < m->o.nodes; i++) {
		if (!m->node[i].core || strcmp(name, m->node[i].name))
			continue;
		memset(&e, 0, sizeof(e));
		e.ino = INO_FIRST + i;
		e.attr_timeout = e.entry_timeout = 3600.0;
		fill_attr(m, e.ino, &e.attr);
		fuse_reply_entry(req, &e);
		return;
	}
	fuse_reply_err(req, ENOENT);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mux *m = mux_of(req);
	struct stat st;

	if (ino != FUSE_ROOT_ID && !node_of_ino(m, ino)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_attr(m, ino, &st);
	fuse_reply_attr(req, &st, 3600.0);
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct mux *m = mux_of(req);
	char *buf;
	size_t n = 0;
	struct stat st;

	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* entries: 0 ".", 1 "..", 2+i node i; off = index of the next */
	for (off_t i = off; i < (off_t)m->o.nodes + 2; i++) {
		if (i >= 2 && !m->node[i - 2].core)
			continue;       /* removed at runtime */
		const char *name = i == 0 ? "." : i == 1 ? ".." : m->node[i - 2].name;
		fuse_ino_t eino = i < 2 ? FUSE_ROOT_ID : (fuse_ino_t)(INO_FIRST + i - 2);
		fill_attr(m, eino, &st);
		size_t len = fuse_add_direntry(req, buf + n, size - n, name, &st, i + 1);
		if (len > size - n)
			break;
		n += len;
	}
	fuse_reply_buf(req, buf, n);
	free(buf);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mux *m = mux_of(req);
	struct mux_node *n = node_of_ino(m, ino);

	if (!n) {
		fuse_reply_err(req, ino == FUSE_ROOT_ID ? EISDIR : ENOENT);
		return;
	}
	/* the OPEN reply is written inside mux_h_open(): patch FOPEN_STREAM */
	mux_stream_patch_next = true;
	mux_h_open(req, n, fi);
	mux_stream_patch_next = false;
}

/* O_TRUNC opens and `touch` send SETATTR: accept and change nothing */
static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	ll_getattr(req, ino, fi);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	mux_h_release(req, fi);
}
static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	mux_h_read(req, size, fi);
}
static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	mux_h_write(req, buf, size, fi);
}
static void ll_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct fuse_pollhandle *ph)
{
	mux_h_poll(req, fi, ph);
}
static void ll_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
		     struct fuse_file_info *fi, unsigned flags, const void *in_buf,
		     size_t in_bufsz, size_t out_bufsz)
{
	mux_h_ioctl(req, cmd, fi, flags, in_buf, in_bufsz, out_bufsz);
}

static const struct fuse_lowlevel_ops ll_ops = {
	.init = ll_init,
	.lookup = ll_lookup,
	.getattr = ll_getattr,
	.setattr = ll_setattr,
	.readdir = ll_readdir,
	.open = ll_open,
	.release = ll_release,
	.read = ll_read,
	.write = ll_write,
	.ioctl = ll_ioctl,
	.poll = ll_poll,
};

static const struct fuse_custom_io stream_io = {
	.writev = mux_stream_writev,
	.read = mux_stream_read,
};

int mux_fuse_start(struct mux *m)
{
	char *argv[] = { "umad-mux", "-o",
			 "allow_other,default_permissions,fsname=umad-mux,subtype=umad-mux", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	struct stat st;
	struct mux_sess *s;

	start_time = time(NULL);
	if (!m->o.fuse_dir)
		fatalx(2, "--mode fuse needs --fuse-dir <dir>");
	if (stat(m->o.fuse_dir, &st) != 0 || !S_ISDIR(st.st_mode))
		fatalx(2, "--fuse-dir %s: not a directory", m->o.fuse_dir);
	if (access("/dev/fuse", R_OK | W_OK) != 0)
		fatal("no usable /dev/fuse (%s): FUSE mode needs the fuse module", strerror(errno));
	s = calloc(1, sizeof(*s));
	if (!s)
		fatal("out of memory");
	s->kind = EV_SESS;
	s->mux = m;
	s->se = fuse_session_new(&args, &ll_ops, sizeof(ll_ops), m);
	fuse_opt_free_args(&args);
	if (!s->se)
		fatal("cannot create the FUSE session");
	if (fuse_session_mount(s->se, m->o.fuse_dir) != 0)
		fatal("cannot mount FUSE on %s (see the message above)", m->o.fuse_dir);
	s->mounted = true;
	if (fuse_session_custom_io(s->se, &stream_io, fuse_session_fd(s->se)) != 0)
		fatal("fuse_session_custom_io failed");
	if (mux_sess_add(m, s) != 0)
		fatal("cannot add the FUSE session to the loop");
	log_debug("FUSE mounted on %s", m->o.fuse_dir);
	return 0;
}

/* reload changed owner/mode: the kernel caches attributes (default_permissions
 * checks them), so drop its copy; attributes only, so this cannot wait on us */
void mux_fuse_node_changed(struct mux *m, struct mux_node *n)
{
	for (unsigned i = 0; i < m->nsess; i++)
		if (m->sess[i] && !m->sess[i]->node)
			fuse_lowlevel_notify_inval_inode(m->sess[i]->se, INO_FIRST + n->index, -1, 0);
}

void mux_fuse_stop(struct mux *m)
{
	for (unsigned i = 0; i < m->nsess; i++) {
		struct mux_sess *s = m->sess[i];
		if (!s || s->node)
			continue;
		if (s->mounted)
			fuse_session_unmount(s->se);
		fuse_session_destroy(s->se);
		free(s->buf.mem);
		free(s);
		m->sess[i] = NULL;
	}
}
