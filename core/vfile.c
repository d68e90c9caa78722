/*
 * vfile.c - one virtual umad file per open() of a node: the agent table,
 * ioctls, write-side checks, the receive queue and read/poll semantics of
 * the kernel's drivers/infiniband/core/user_mad.c.  Each rule names the
 * kernel function it mirrors.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "core_int.h"
#include "router_int.h"

struct umx_file *umx_file_open(struct umx_node *n, void *user)
{
	struct umx_router *r = n->r;
	struct umx_file *f;

	if (r->port_down) {          /* ib_umad_open(): no ib_dev */
		errno = ENXIO;
		return NULL;
	}
	if (r->nfiles >= r->lim.files_max) {
		errno = EMFILE;
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->r = r;
	f->node = n;
	f->user = user;
	f->next = n->files;
	if (n->files)
		n->files->prev = f;
	n->files = f;
	r->nfiles++;
	return f;
}

static void free_vagent(struct umx_file *f, uint32_t id)
{
	struct umx_vagent *va = f->agent[id];

	if (f->r->port_down) {
		/* the real agents died with the port: nothing to unregister */
		if (va->key && umx_cm_is_shared_class(va->mgmt_class))
			f->node->cm_agents--;
		va->key = NULL;
		va->send = NULL;
		va->class_sends = 0;
	}

	/* ib_unregister_mad_agent(): sends are cancelled, so late responses
	 * and timeouts of this agent are no longer delivered */
	umx_tid_free_agent(&f->r->tids, va);
	if (va->cm_ids)
		umx_cm_forget_agent(f->r, va);
	umx_sa_forget_agent(f->r, va);     /* leaves its groups and subscriptions */
	umx_real_detach(f->r, va);
	/* packets already queued stay readable (queue_packet() stamped the id) */
	for (struct umx_packet *p = f->qhead; p; p = p->next)
		if (p->agent == va)
			p->agent = NULL;
	f->agent[id] = NULL;
	f->r->nvagents--;
	free(va);
}

/* ib_umad_kill_port(): the device is gone; the file's agents are unregistered
 * (here: forgotten with the port) and it stays dead */
void umx_file_kill(struct umx_file *f)
{
	f->agents_dead = true;
	for (uint32_t i = 0; i < UMX_MAX_AGENTS; i++)
		if (f->agent[i])
			free_vagent(f, i);
}

/* ib_umad_close(): agents unregistered, queued packets freed */
void umx_file_release(struct umx_file *f)
{
	struct umx_node *n = f->node;

	for (uint32_t i = 0; i < UMX_MAX_AGENTS; i++)
		if (f->agent[i])
			free_vagent(f, i);
	while (f->qhead) {
		struct umx_packet *p = f->qhead;
		f->qhead = p->next;
		f->r->queued--;
		free(p);
	}
	if (f->prev)
		f->prev->next = f->next;
	else
		n->files = f->next;
	if (f->next)
		f->next->prev = f->prev;
	f->r->nfiles--;
	free(f);
}

void *umx_file_user(const struct umx_file *f) { return f->user; }
struct umx_node *umx_file_node(const struct umx_file *f) { return f->node; }

/* hdr_size() */
size_t umx_file_hdr_size(const struct umx_file *f)
{
	return f->use_pkey_index ? UMX_HDR_NEW : UMX_HDR_OLD;
}

/* ib_umad_reg_agent() / ib_umad_reg_agent2() */
static long do_register(struct umx_file *f, struct ib_user_mad_reg_req2 *req, bool agent2)
{
	struct umx_router *r = f->r;
	uint32_t id;
	int ret;

	/* ib_umad_reg_agent{,2}(): "invalid device" once the port is gone */
	if (f->agents_dead)
		return -EPIPE;
	ret = umx_check_reg_pre(req, agent2);
	if (ret)
		return ret;
	/* first free slot, else "Max Agents reached" = ENOMEM */
	for (id = 0; id < UMX_MAX_AGENTS && f->agent[id]; id++)
		;
	if (id == UMX_MAX_AGENTS)
		return -ENOMEM;
	/* kernel 6.1 on a port without QP0 answers EPROTONOSUPPORT before it
	 * looks at the class (seen in the VM with rxe: class 0x04 on QP0) */
	if (req->qpn == 0) {
		ret = umx_policy_reg_qp(f->node, req);
		if (!ret)
			ret = umx_real_qp_check(r, 0);
		if (ret)
			return ret;
	}
	ret = umx_check_reg_agent(req, agent2);
	if (ret)
		return ret;
	ret = umx_policy_reg(f->node, req);
	if (ret)
		return ret;

	struct umx_vagent *va = calloc(1, sizeof(*va));
	if (!va)
		return -ENOMEM;
	va->file = f;
	va->id = id;
	va->qpn = (uint8_t)req->qpn;
	va->mgmt_class = req->mgmt_class;
	va->class_version = req->mgmt_class ? req->mgmt_class_version : 0;
	va->rmpp_version = req->rmpp_version;
	va->flags = req->flags;
	if (req->mgmt_class) {
		va->oui = umx_is_vendor_range2(req->mgmt_class) ? (req->oui & 0xffffff) : 0;
		memcpy(va->method_mask, req->method_mask, sizeof(va->method_mask));
	}
	ret = umx_real_attach(r, va);
	if (ret) {
		free(va);
		return ret;
	}
	/* the kernel's hi_tid: a 24-bit cyclic id (xa_alloc_cyclic in mad.c) */
	va->hi_tid = r->next_hi_tid;
	r->next_hi_tid = (r->next_hi_tid + 1) & 0xffffff;
	if (!r->next_hi_tid)
		r->next_hi_tid = 1;
	f->agent[id] = va;
	r->nvagents++;
	req->id = id;
	if (!f->already_used) {
		f->already_used = true;
		if (agent2)
			f->use_pkey_index = true;
	}
	return 0;
}

/* ib_umad_unreg_agent() */
static long do_unregister(struct umx_file *f, uint32_t id)
{
	/* __get_agent() returns NULL for every id once agents_dead is set */
	if (id >= UMX_MAX_AGENTS || !f->agent[id] || f->agents_dead)
		return -EINVAL;
	free_vagent(f, id);
	return 0;
}

static void reg_v1_to_v2(const struct ib_user_mad_reg_req *v1, struct ib_user_mad_reg_req2 *v2)
{
	memset(v2, 0, sizeof(*v2));
	v2->qpn = v1->qpn;
	v2->mgmt_class = v1->mgmt_class;
	v2->mgmt_class_version = v1->mgmt_class_version;
	v2->oui = (uint32_t)v1->oui[0] << 16 | (uint32_t)v1->oui[1] << 8 | v1->oui[2];
	v2->rmpp_version = v1->rmpp_version;
	/* the 64-bit kernel takes the mask as two native longs */
	memcpy(v2->method_mask, v1->method_mask, sizeof(v2->method_mask));
}

/* ib_umad_ioctl() */
long umx_file_ioctl(struct umx_file *f, unsigned int cmd, void *arg, bool *copy_out)
{
	long ret;

	*copy_out = false;
	switch (cmd) {
	case IB_USER_MAD_REGISTER_AGENT: {
		struct ib_user_mad_reg_req v1;
		struct ib_user_mad_reg_req2 v2;
		memcpy(&v1, arg, sizeof(v1));
		reg_v1_to_v2(&v1, &v2);
		ret = do_register(f, &v2, false);
		if (!ret) {
			/* put_user() of the id only */
			memcpy((uint8_t *)arg + offsetof(struct ib_user_mad_reg_req, id), &v2.id,
			       sizeof(v2.id));
			*copy_out = true;
		}
		return ret;
	}
	case IB_USER_MAD_REGISTER_AGENT2: {
		struct ib_user_mad_reg_req2 v2;
		memcpy(&v2, arg, sizeof(v2));
		uint32_t flags_in = v2.flags;
		ret = do_register(f, &v2, true);
		if (!ret) {
			memcpy((uint8_t *)arg + offsetof(struct ib_user_mad_reg_req2, id), &v2.id,
			       sizeof(v2.id));
			*copy_out = true;
		} else if (v2.flags != flags_in) {
			memcpy((uint8_t *)arg + offsetof(struct ib_user_mad_reg_req2, flags),
			       &v2.flags, sizeof(v2.flags));
			*copy_out = true;
		}
		return ret;
	}
	case IB_USER_MAD_UNREGISTER_AGENT: {
		uint32_t id;
		memcpy(&id, arg, sizeof(id));
		return do_unregister(f, id);
	}
	case IB_USER_MAD_ENABLE_PKEY:
		/* ib_umad_enable_pkey(): refused once an agent was ever registered */
		if (f->already_used)
			return -EINVAL;
		f->use_pkey_index = true;
		return 0;
	default:
		return -ENOTTY;   /* -ENOIOCTLCMD as user space sees it */
	}
}

/* ib_umad_write() */
ssize_t umx_file_write(struct umx_file *f, const void *buf, size_t len)
{
	size_t hs = umx_file_hdr_size(f);
	struct ib_user_mad_hdr hdr;
	uint32_t id;

	if (len < hs + UMX_RMPP_HDR)
		return -EINVAL;
	memset(&hdr, 0, sizeof(hdr));
	memcpy(&hdr, buf, hs);      /* the old header is the new one minus pkey_index */
	id = hdr.id;
	if (id >= UMX_MAX_AGENTS)
		return -EINVAL;
	if (!f->agent[id] || f->agents_dead)      /* __get_agent() */
		return -EIO;
	return umx_router_send(f->r, f->agent[id], &hdr, (const uint8_t *)buf + hs, len - hs, len);
}

void umx_file_enqueue(struct umx_file *f, struct umx_packet *p)
{
	struct umx_router *r = f->r;

	/* queue_packet(): received MADs beyond the limit are dropped (newest) */
	if (p->recv && f->qlen >= r->lim.recv_queue_max) {
		umx_count(r, f->node, UMX_C_RX_QUEUE_FULL);
		free(p);
		return;
	}
	/* queue_packet() stamps the agent id and recv_handler() the length,
	 * both in the file's header format */
	p->hdr.id = p->agent->id;
	if (p->recv)
		p->hdr.length = (uint32_t)(umx_file_hdr_size(f) + p->len);
	p->next = NULL;
	if (f->qtail)
		f->qtail->next = p;
	else
		f->qhead = p;
	f->qtail = p;
	f->qlen++;
	r->queued++;
	umx_count(r, f->node, UMX_C_RX_DELIVERED);
	if (r->ev && r->ev->file_readable)
		r->ev->file_readable(r->ev_ctx, f);
}

/* ib_umad_read() with copy_recv_mad() / copy_send_mad() */
ssize_t umx_file_read(struct umx_file *f, void *buf, size_t len)
{
	size_t hs = umx_file_hdr_size(f);
	struct umx_packet *p;

	if (len < hs)
		return -EINVAL;
	if (f->agents_dead)
		return -EIO;
	p = f->qhead;
	if (!p)
		return -EAGAIN;
	if (p->recv) {
		/* room for the first (or only) segment, else EINVAL */
		size_t first = p->len <= UMX_MAD_SIZE ? p->len : UMX_MAD_SIZE;
		if (len < hs + first)
			return -EINVAL;
		/* RMPP message larger than the buffer: the kernel copies the
		 * first segment and fails with ENOSPC; a FUSE reply cannot carry
		 * data with an error, so only the errno is reproduced */
		if (len < hs + p->len)
			return -ENOSPC;
	} else if (len < hs + p->len) {
		return -EINVAL;
	}
	memcpy(buf, &p->hdr, hs);
	memcpy((uint8_t *)buf + hs, p->data, p->len);
	f->qhead = p->next;
	if (!f->qhead)
		f->qtail = NULL;
	f->qlen--;
	f->r->queued--;
	ssize_t n = (ssize_t)(hs + p->len);
	free(p);
	return n;
}

/* "a read would not block": a packet, or a dead file (EIO at once) */
bool umx_file_readable(const struct umx_file *f)
{
	return f->qhead != NULL || f->agents_dead;
}

/* ib_umad_poll(): always writable, readable with a queued packet */
unsigned umx_file_poll(const struct umx_file *f)
{
	unsigned m = POLLOUT | POLLWRNORM;
	if (f->agents_dead)
		return POLLERR;
	if (f->qhead)
		m |= POLLIN | POLLRDNORM;
	return m;
}

/* every caller sets hdr, agent, recv and the len data bytes: only the links
 * and the header (no stale heap bytes can reach a client) are cleared, not
 * the whole MAD as calloc() did (about 110 instructions per packet) */
struct umx_packet *umx_packet_new(size_t len)
{
	struct umx_packet *p = malloc(sizeof(*p) + len);
	if (p) {
		p->next = NULL;
		p->agent = NULL;
		p->recv = false;
		p->len = (uint32_t)len;
		memset(&p->hdr, 0, sizeof(p->hdr));
	}
	return p;
}
