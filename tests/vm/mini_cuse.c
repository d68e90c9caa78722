/* mini_cuse - a minimal single-threaded libfuse3 low-level CUSE server with
 * the character-device operations a umad multiplexer needs.  Runs in the
 * test-bed guest (tests/vm/cases/20-cuse-minimal.sh), probed by mini_cuse_client.
 *
 *   mini_cuse NAME [-d]         creates /dev/NAME, serves until SIGTERM/SIGINT
 *
 * Semantics (message queue, like a umad fd):
 *   write   queues one message (<= 512 bytes), or hands it to a blocked reader
 *   read    returns one message; O_NONBLOCK and empty: EAGAIN; otherwise it blocks
 *           (the request is answered later) and a signal interrupts it (EINTR)
 *   poll    POLLOUT always, POLLIN when a message is queued; wake-ups through
 *           fuse_lowlevel_notify_poll
 *   ioctl   restricted (the kernel copies _IOC_SIZE bytes):
 *           IB_USER_MAD_REGISTER_AGENT (_IOWR, 28 bytes): id = FNV-1a of the other
 *             24 bytes (so the client can check what the server saw); the rest is
 *             returned unchanged
 *           IB_USER_MAD_UNREGISTER_AGENT (_IOW u32), IB_USER_MAD_ENABLE_PKEY (_IO): 0
 *           anything else: ENOTTY
 */
#define FUSE_USE_VERSION 35
#include <cuse_lowlevel.h>
#include <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <rdma/ib_user_mad.h>

_Static_assert(sizeof(struct ib_user_mad_reg_req) == 28, "ib_user_mad_reg_req is 28 bytes");

#define QMAX 64
#define MSG_MAX 512
#define PMAX 16

static struct msg {
	size_t len;
	char buf[MSG_MAX];
} q[QMAX];
static int qhead, qlen;
static struct pending {
	fuse_req_t req;
	size_t size;
} pend[PMAX];                       /* blocked reads, oldest first */
static int npend;
static struct fuse_pollhandle *poll_handle;
static int debug;

/* FNV-1a over the REGISTER_AGENT bytes after the id */
static uint32_t reg_hash(const struct ib_user_mad_reg_req *r)
{
	const uint8_t *p = (const uint8_t *)r + sizeof r->id;
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < sizeof *r - sizeof r->id; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static void mc_open(fuse_req_t req, struct fuse_file_info *fi)
{
	fi->direct_io = 1;      /* one message per read/write, no page cache */
	fi->nonseekable = 1;
	fuse_reply_open(req, fi);
}

static void drop_pending(int i)
{
	memmove(&pend[i], &pend[i + 1], (size_t)(npend - i - 1) * sizeof pend[0]);
	npend--;
}

static void read_interrupted(fuse_req_t req, void *data)
{
	for (int i = 0; i < npend; i++)
		if (pend[i].req == req) {
			drop_pending(i);
			fuse_reply_err(req, EINTR);
			return;
		}
}

static void mc_read(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi)
{
	if (qlen) {
		struct msg *m = &q[qhead];

		qhead = (qhead + 1) % QMAX;
		qlen--;
		fuse_reply_buf(req, m->buf, m->len < size ? m->len : size);
		return;
	}
	if ((fi->flags & O_NONBLOCK) || npend == PMAX) {
		fuse_reply_err(req, EAGAIN);
		return;
	}
	pend[npend].req = req;  /* answered by a later write, or by an interrupt */
	pend[npend].size = size;
	npend++;
	fuse_req_interrupt_func(req, read_interrupted, NULL);
}

static void mc_write(fuse_req_t req, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	if (size > MSG_MAX) {
		fuse_reply_err(req, EMSGSIZE);
		return;
	}
	if (npend) {
		struct pending p = pend[0];

		drop_pending(0);
		fuse_reply_buf(p.req, buf, size < p.size ? size : p.size);
	} else if (qlen == QMAX) {
		fuse_reply_err(req, ENOSPC);
		return;
	} else {
		struct msg *m = &q[(qhead + qlen) % QMAX];

		memcpy(m->buf, buf, size);
		m->len = size;
		qlen++;
		if (poll_handle) {
			fuse_lowlevel_notify_poll(poll_handle);
			fuse_pollhandle_destroy(poll_handle);
			poll_handle = NULL;
		}
	}
	fuse_reply_write(req, size);
}

static void mc_poll(fuse_req_t req, struct fuse_file_info *fi, struct fuse_pollhandle *ph)
{
	if (ph) {
		if (poll_handle)
			fuse_pollhandle_destroy(poll_handle);
		poll_handle = ph;
	}
	fuse_reply_poll(req, POLLOUT | POLLWRNORM | (qlen ? POLLIN | POLLRDNORM : 0));
}

/* cuse_lowlevel_ops.ioctl takes an int cmd whatever FUSE_USE_VERSION says (3.14) */
static void mc_ioctl(fuse_req_t req, int cmd, void *arg, struct fuse_file_info *fi,
		     unsigned int flags, const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	struct ib_user_mad_reg_req r;

	if (debug)
		fprintf(stderr, "mini_cuse: ioctl 0x%08x in %zu out %zu\n", (unsigned int)cmd, in_bufsz,
			out_bufsz);
	switch ((unsigned int)cmd) {
	case IB_USER_MAD_REGISTER_AGENT:
		if (in_bufsz != sizeof r || out_bufsz != sizeof r) {
			fuse_reply_err(req, EINVAL);
			return;
		}
		memcpy(&r, in_buf, sizeof r);
		r.id = reg_hash(&r);
		fuse_reply_ioctl(req, 0, &r, sizeof r);
		return;
	case IB_USER_MAD_UNREGISTER_AGENT:
		if (in_bufsz != sizeof(uint32_t)) {
			fuse_reply_err(req, EINVAL);
			return;
		}
		fuse_reply_ioctl(req, 0, NULL, 0);
		return;
	case IB_USER_MAD_ENABLE_PKEY:
		fuse_reply_ioctl(req, 0, NULL, 0);
		return;
	default:
		fuse_reply_err(req, ENOTTY);
	}
}

static const struct cuse_lowlevel_ops ops = {
	.open = mc_open,
	.read = mc_read,
	.write = mc_write,
	.poll = mc_poll,
	.ioctl = mc_ioctl,
};

int main(int argc, char **argv)
{
	char devname[128];
	const char *dev_info[] = { devname };
	struct cuse_info ci = { .dev_info_argc = 1, .dev_info_argv = dev_info };
	char *fargv[] = { argv[0], "-f", "-s", NULL, NULL };
	int fargc = 3, mt = 0, rc;
	struct fuse_session *se;

	if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "-d"))) {
		fprintf(stderr, "usage: %s NAME [-d]\n", argv[0]);
		return 2;
	}
	if (argc == 3) {
		debug = 1;
		fargv[fargc++] = "-d";
	}
	snprintf(devname, sizeof devname, "DEVNAME=%s", argv[1]);
	/* parses -f/-s/-d, mounts /dev/cuse, installs SIGTERM/SIGINT/SIGHUP handlers */
	se = cuse_lowlevel_setup(fargc, fargv, &ci, &ops, &mt, NULL);
	if (!se) {
		fprintf(stderr, "mini_cuse: cuse_lowlevel_setup failed (is /dev/cuse there?)\n");
		return 1;
	}
	rc = fuse_session_loop(se);   /* single-threaded */
	while (npend)
		drop_pending(0);
	if (poll_handle)
		fuse_pollhandle_destroy(poll_handle);
	cuse_lowlevel_teardown(se);
	return rc < 0 ? 1 : 0;
}
