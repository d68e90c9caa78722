/*
 * node.c - the file handlers shared by CUSE nodes and FUSE-mode files: a
 * thin layer that decodes each request, calls the core's virtual file and
 * replies, or parks a blocking read until the core reports a packet.
 *
 * Every handler ends in exactly one reply (or a parked request).  All of
 * this runs on the loop thread, including libfuse's interrupt callbacks.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "front.h"
#include "parked.h"
#include "log.h"
#include "rdmacm.h"


struct mux_file {
	int kind;                         /* MUX_KIND_UMAD_FILE (rdmacm.h) */
	struct mux *mux;
	struct mux_node *node;
	struct umx_file *f;
	struct mux_file *next, *prev;     /* mux->files */
	struct mux_park_list parked;      /* blocking reads waiting (parked.c) */
	struct fuse_pollhandle *ph;
	struct mux_file_stats st;         /* control socket `list` */
};

static uint64_t file_seq;               /* mux_file_stats.id */


static struct mux_file *mf_of(struct fuse_file_info *fi)
{
	return (struct mux_file *)(uintptr_t)fi->fh;
}

static void park(fuse_req_t req, struct mux_file *mf, size_t size)
{
	if (mux_park(&mf->parked, req, size) == -EBUSY)
		mf->mux->parked_refused++;
}

/* one read attempt into a fresh buffer: replies unless the queue is empty
 * (returns false then, nothing replied) */
/* one reply buffer for the loop thread (the only caller): no malloc/free
 * per read; only the pages a read touches are ever backed */
static _Alignas(8) uint8_t read_buf[MUX_READ_MAX];

static bool try_read(fuse_req_t req, struct mux_file *mf, size_t size)
{
	size_t cap = size < MUX_READ_MAX ? size : MUX_READ_MAX;
	uint8_t *buf = read_buf;
	ssize_t n;

	n = umx_file_read(mf->f, buf, cap);
	if (n == -EAGAIN)
		return false;
	if (n >= (ssize_t)sizeof(uint32_t) * 2) {
		/* status is the second u32 in both header formats */
		mf->st.received++;
		uint32_t status;
		memcpy(&status, buf + sizeof(uint32_t), sizeof(status));
		if (status == ETIMEDOUT)
			mf->st.timeouts++;
	}
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, (const char *)buf, (size_t)n);
	return true;
}

static void notify_poll(struct mux_file *mf)
{
	if (mf->ph) {
		fuse_lowlevel_notify_poll(mf->ph);
		fuse_pollhandle_destroy(mf->ph);
		mf->ph = NULL;
	}
}

/* core event: a packet was queued on f */
static void on_file_readable(void *ctx, struct umx_file *f)
{
	struct mux_file *mf = umx_file_user(f);

	(void)ctx;
	if (!mf)
		return;
	if (mf->kind == MUX_KIND_RDMACM_GID) {
		mux_rdmacm_file_readable(f);     /* a file of an rdmacm client */
		return;
	}
	while (mf->parked.head && umx_file_readable(mf->f)) {
		struct mux_parked *p = mux_park_pop(&mf->parked);
		fuse_req_t req = p->req;
		size_t size = p->size;

		free(p);
		if (!try_read(req, mf, size)) {
			/* cannot happen (readable), but never lose a request */
			fuse_reply_err(req, EAGAIN);
		}
	}
	notify_poll(mf);
}

const struct umx_events mux_events = { on_file_readable };

void mux_h_open(fuse_req_t req, struct mux_node *n, struct fuse_file_info *fi)
{
	struct mux *m = n->mux;
	struct mux_file *mf;

	if (m->o.node[n->index].protocol == MUX_PROTO_RDMACM) {
		mux_rdmacm_h_open(req, n, fi);
		return;
	}
	mf = calloc(1, sizeof(*mf));
	if (!mf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	mf->kind = MUX_KIND_UMAD_FILE;
	mf->mux = m;
	mf->node = n;
	mf->st.id = ++file_seq;
	mf->st.pid = fuse_req_ctx(req)->pid;
	mf->f = umx_file_open(n->core, mf);
	if (!mf->f) {
		int e = errno ? errno : ENOMEM;
		free(mf);
		fuse_reply_err(req, e);
		return;
	}
	mf->next = m->files;
	if (m->files)
		m->files->prev = mf;
	m->files = mf;
	m->nfiles++;
	fi->fh = (uintptr_t)mf;
	fi->direct_io = 1;      /* one packet per read, sizes as given */
	fi->nonseekable = 1;
	fi->keep_cache = 0;
	log_debug("%s: open (flags 0x%x), %u files open", n->name, fi->flags, m->nfiles);
	if (fuse_reply_open(req, fi) != 0) {
		/* the opener is gone (interrupted open): no release will come */
		mux_h_release(NULL, fi);
	}
}

static void mf_free(struct mux_file *mf, int parked_errno)
{
	struct mux *m = mf->mux;

	mux_park_fail_all(&mf->parked, parked_errno);
	if (mf->ph)
		fuse_pollhandle_destroy(mf->ph);
	umx_file_release(mf->f);
	if (mf->prev)
		mf->prev->next = mf->next;
	else
		m->files = mf->next;
	if (mf->next)
		mf->next->prev = mf->prev;
	m->nfiles--;
	free(mf);
}

void mux_h_release(fuse_req_t req, struct fuse_file_info *fi)
{
	struct mux_file *mf = mf_of(fi);

	if (mux_fh_is_rdmacm(fi)) {
		mux_rdmacm_h_release(req, fi);
		return;
	}
	if (mf) {
		log_debug("%s: release", mf->node->name);
		/* a blocked read holds a file reference, so none should be
		 * parked here; answer any anyway */
		mf_free(mf, EBADF);
	}
	if (req)
		fuse_reply_err(req, 0);
}

void mux_files_shutdown(struct mux *m)
{
	while (m->files)
		mf_free(m->files, ENODEV);
}

/* node removal (control socket): its open files go away as at shutdown */
void mux_node_files_release(struct mux *m, struct mux_node *n)
{
	struct mux_file *mf = m->files, *next;

	for (; mf; mf = next) {
		next = mf->next;
		if (mf->node == n)
			mf_free(mf, ENODEV);
	}
}

/* read-only views for the control socket */
struct mux_file *mux_file_next(const struct mux *m, const struct mux_file *mf)
{
	return mf ? mf->next : m->files;
}
struct mux_node *mux_file_mnode(const struct mux_file *mf) { return mf->node; }
struct umx_file *mux_file_core(const struct mux_file *mf) { return mf->f; }
const struct mux_file_stats *mux_file_stats(const struct mux_file *mf) { return &mf->st; }

void mux_h_read(fuse_req_t req, size_t size, struct fuse_file_info *fi)
{
	struct mux_file *mf = mf_of(fi);

	if (mux_fh_is_rdmacm(fi)) {
		mux_rdmacm_h_read(req, size, fi);
		return;
	}
	if (try_read(req, mf, size))
		return;
	/* fi->flags are the file's current flags (fcntl O_NONBLOCK counts) */
	if (fi->flags & O_NONBLOCK) {
		fuse_reply_err(req, EAGAIN);
		return;
	}
	park(req, mf, size);
}

void mux_h_write(fuse_req_t req, const char *buf, size_t size, struct fuse_file_info *fi)
{
	struct mux_file *mf = mf_of(fi);
	ssize_t n;

	if (mux_fh_is_rdmacm(fi)) {
		mux_rdmacm_h_write(req, buf, size, fi);
		return;
	}
	n = umx_file_write(mf->f, buf, size);

	switch (n >= 0 ? 0 : (int)-n) {
	case 0: mf->st.sent++; break;
	case EPERM: mf->st.refused_policy++; break;
	case ENOBUFS: mf->st.refused_rate++; break;
	case ENOMEM: mf->st.refused_busy++; break;
	default: mf->st.refused_other++; break;
	}
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

void mux_h_poll(fuse_req_t req, struct fuse_file_info *fi, struct fuse_pollhandle *ph)
{
	struct mux_file *mf = mf_of(fi);

	if (mux_fh_is_rdmacm(fi)) {
		mux_rdmacm_h_poll(req, fi, ph);
		return;
	}
	if (ph) {
		/* keep only the newest handle */
		if (mf->ph)
			fuse_pollhandle_destroy(mf->ph);
		mf->ph = ph;
	}
	fuse_reply_poll(req, umx_file_poll(mf->f));
}

static bool umad_ioctl(unsigned int cmd)
{
	switch (cmd) {
	case IB_USER_MAD_REGISTER_AGENT:
	case IB_USER_MAD_UNREGISTER_AGENT:
	case IB_USER_MAD_ENABLE_PKEY:
	case IB_USER_MAD_REGISTER_AGENT2:
		return true;
	default:
		return false;
	}
}

/*
 * Restricted ioctls: the umad commands encode direction and size, so the
 * kernel copies _IOC_SIZE(cmd) bytes in (for _IOC_WRITE) and offers as many
 * out (for _IOC_READ).  The core works on a buffer of _IOC_SIZE(cmd) bytes
 * in place; when it says copy_out, the buffer goes back with the result,
 * also with a negative result (REGISTER_AGENT2's flags error): FUSE copies
 * the data out and then returns the error.
 */
void mux_h_ioctl(fuse_req_t req, unsigned int cmd, struct fuse_file_info *fi, unsigned flags,
		 const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	struct mux_file *mf = mf_of(fi);
	uint8_t buf[64];
	size_t size = _IOC_SIZE(cmd);
	bool copy_out = false;
	long ret;

	if (mux_fh_is_rdmacm(fi) || !umad_ioctl(cmd) || size > sizeof(buf)) {
		fuse_reply_err(req, ENOTTY);
		return;
	}
	if (flags & FUSE_IOCTL_UNRESTRICTED) {
		/* we never ask for unrestricted mode */
		fuse_reply_err(req, ENOTTY);
		return;
	}
	memset(buf, 0, sizeof(buf));
	if ((_IOC_DIR(cmd) & _IOC_WRITE) && in_bufsz < size) {
		fuse_reply_err(req, EFAULT);
		return;
	}
	if (in_bufsz)
		memcpy(buf, in_buf, in_bufsz < size ? in_bufsz : size);
	ret = umx_file_ioctl(mf->f, cmd, buf, &copy_out);
	log_debug("%s: ioctl 0x%08x -> %ld%s", mf->node->name, cmd, ret, copy_out ? " (copy out)" : "");
	if (copy_out && out_bufsz)
		fuse_reply_ioctl(req, (int)ret, buf, out_bufsz < size ? out_bufsz : size);
	else if (ret < 0)
		fuse_reply_err(req, (int)-ret);
	else
		fuse_reply_ioctl(req, (int)ret, NULL, 0);
}
