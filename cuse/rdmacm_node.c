/*
 * rdmacm_node.c - a node in rdmacm protocol mode (`--node N:protocol=rdmacm`,
 * config `node N protocol rdmacm`): every open of /dev/<prefix>-N (CUSE) or
 * <fuse-dir>/<prefix>-N (FUSE) is one rdmacm-mux client (rdmacm_client.c)
 * whose GID nodes take node N's policy as their base.  This is what QEMU's
 * `-chardev pipe,path=/dev/umad-mux-N` opens (read-write, the path itself).
 *
 *   write()  exactly one message (RDMACM_MSG_SIZE = 360 bytes): other sizes
 *            and messages that are not requests fail with EINVAL; with
 *            `answers all` a request is answered by a RESP message to read.
 *            By default (`answers none`) nothing answers it: QEMU cannot
 *            read a pipe chardev synchronously (qemu_chr_fe_read_all() needs
 *            chr_sync_read, which only the socket chardev has), and its
 *            asynchronous reader, rdmacm_mux_read(), would take the RESP of
 *            a MAD send for a received MAD and hand it to the guest
 *   read()   one whole message per read; a buffer smaller than a message is
 *            EINVAL; nothing to read: EAGAIN (O_NONBLOCK) or the read blocks
 *   poll()   POLLOUT always, POLLIN when a message waits
 *   ioctl()  ENOTTY (this mode has no umad ioctls)
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "parked.h"
#include "rdmacm.h"


struct rc_open {
	int kind;                    /* MUX_KIND_RDMACM_OPEN */
	struct rc_open *next;        /* all opens (shutdown) */
	struct mux_node *node;
	struct rc_client *c;
	struct mux_park_list parked; /* blocking reads waiting (parked.c) */
	struct fuse_pollhandle *ph;
};

static struct rc_open *opens;

static struct rc_open *open_of(struct fuse_file_info *fi)
{
	return (struct rc_open *)(uintptr_t)fi->fh;
}


static void reply_msg(fuse_req_t req, struct rc_open *o)
{
	uint8_t b[RDMACM_MSG_SIZE];

	if (rc_client_pop(o->c, b))
		fuse_reply_buf(req, (const char *)b, sizeof(b));
	else
		fuse_reply_err(req, EAGAIN);
}

static void serve(struct rc_open *o)
{
	while (o->parked.head && rc_client_pending(o->c)) {
		struct mux_parked *p = mux_park_pop(&o->parked);
		fuse_req_t req = p->req;
		free(p);
		reply_msg(req, o);
	}
	if (o->ph && rc_client_pending(o->c)) {
		fuse_lowlevel_notify_poll(o->ph);
		fuse_pollhandle_destroy(o->ph);
		o->ph = NULL;
	}
}

static void on_readable(struct rc_client *c, void *owner)
{
	(void)c;
	serve(owner);
}

void mux_rdmacm_h_open(fuse_req_t req, struct mux_node *n, struct fuse_file_info *fi)
{
	struct rc_open *o = calloc(1, sizeof(*o));
	char name[MUX_NAME_MAX + 16];

	if (!o) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	snprintf(name, sizeof(name), "%s (rdmacm)", n->name);
	o->kind = MUX_KIND_RDMACM_OPEN;
	o->node = n;
	o->c = rc_client_new(n->mux, name, umx_node_policy(n->core),
			     n->mux->o.node[n->index].rdmacm_answers, on_readable, o);
	if (!o->c) {
		free(o);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	o->next = opens;
	opens = o;
	fi->fh = (uintptr_t)o;
	fi->direct_io = 1;
	fi->nonseekable = 1;
	fi->keep_cache = 0;
	log_debug("%s: open", name);
	if (fuse_reply_open(req, fi) != 0)
		mux_rdmacm_h_release(NULL, fi);
}

static void open_free(struct rc_open *o, int parked_errno)
{
	mux_park_fail_all(&o->parked, parked_errno);
	if (o->ph)
		fuse_pollhandle_destroy(o->ph);
	for (struct rc_open **op = &opens; *op; op = &(*op)->next)
		if (*op == o) {
			*op = o->next;
			break;
		}
	rc_client_free(o->c);
	free(o);
}

void mux_rdmacm_h_release(fuse_req_t req, struct fuse_file_info *fi)
{
	struct rc_open *o = open_of(fi);

	if (o)
		open_free(o, EBADF);
	if (req)
		fuse_reply_err(req, 0);
}

void mux_rdmacm_nodes_shutdown(struct mux *m)
{
	(void)m;
	while (opens)
		open_free(opens, ENODEV);
}

void mux_rdmacm_h_read(fuse_req_t req, size_t size, struct fuse_file_info *fi)
{
	struct rc_open *o = open_of(fi);

	if (size < RDMACM_MSG_SIZE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (rc_client_pending(o->c)) {
		reply_msg(req, o);
		return;
	}
	if (fi->flags & O_NONBLOCK) {
		fuse_reply_err(req, EAGAIN);
		return;
	}
	mux_park(&o->parked, req, size);
}

void mux_rdmacm_h_write(fuse_req_t req, const char *buf, size_t size, struct fuse_file_info *fi)
{
	struct rc_open *o = open_of(fi);

	if (size != RDMACM_MSG_SIZE) {
		log_debug("%s: write of %zu bytes refused (a message is %d)", o->node->name, size,
			  RDMACM_MSG_SIZE);
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (rc_client_request(o->c, buf) != 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	fuse_reply_write(req, size);
	/* the answer is queued: wake parked readers and pollers */
	serve(o);
}

void mux_rdmacm_h_poll(fuse_req_t req, struct fuse_file_info *fi, struct fuse_pollhandle *ph)
{
	struct rc_open *o = open_of(fi);
	unsigned ev = POLLOUT | POLLWRNORM;

	if (ph) {
		if (o->ph)
			fuse_pollhandle_destroy(o->ph);
		o->ph = ph;
	}
	if (rc_client_pending(o->c))
		ev |= POLLIN | POLLRDNORM;
	fuse_reply_poll(req, ev);
}
