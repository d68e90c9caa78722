/*
 * port_fake.c - an in-memory umad port for unit tests and benchmarks.  It
 * applies the kernel's port-wide rules that the router depends on:
 * overlapping method registration fails with EINVAL (method_in_use() in
 * mad.c) and, when no_qp0 is set, QP0 agents fail with EPROTONOSUPPORT.
 */
#include <errno.h>
#include <string.h>

#include <umx/port.h>
#include <umx/mad.h>

static bool overlaps(const struct ib_user_mad_reg_req2 *a, const struct ib_user_mad_reg_req2 *b)
{
	if (!a->mgmt_class || a->mgmt_class != b->mgmt_class ||
	    a->mgmt_class_version != b->mgmt_class_version)
		return false;
	if (umx_is_vendor_range2(a->mgmt_class) && a->oui != b->oui)
		return false;
	return (a->method_mask[0] & b->method_mask[0]) || (a->method_mask[1] & b->method_mask[1]);
}

static int fake_reg(struct umx_port *port, struct ib_user_mad_reg_req2 *req)
{
	struct umx_fake_port *p = (struct umx_fake_port *)port;
	unsigned i, free_id = UMX_FAKE_AGENTS;

	if (req->qpn == 0 && p->no_qp0)
		return -EPROTONOSUPPORT;
	for (i = 0; i < UMX_FAKE_AGENTS; i++) {
		if (!p->agent[i].used) {
			if (free_id == UMX_FAKE_AGENTS)
				free_id = i;
		} else if (overlaps(req, &p->agent[i].req)) {
			return -EINVAL;
		}
	}
	if (free_id == UMX_FAKE_AGENTS)
		return -ENOMEM;
	p->agent[free_id].used = true;
	p->agent[free_id].req = *req;
	req->id = free_id;
	p->live++;
	p->regs++;
	return 0;
}

static int fake_unreg(struct umx_port *port, uint32_t id)
{
	struct umx_fake_port *p = (struct umx_fake_port *)port;

	if (id >= UMX_FAKE_AGENTS || !p->agent[id].used)
		return -EINVAL;
	p->agent[id].used = false;
	p->live--;
	p->unregs++;
	return 0;
}

static int fake_send(struct umx_port *port, const void *buf, size_t len)
{
	struct umx_fake_port *p = (struct umx_fake_port *)port;

	if (p->fail_send)
		return p->fail_send;
	const struct ib_user_mad_hdr *hdr = buf;

	if (hdr->id >= UMX_FAKE_AGENTS || !p->agent[hdr->id].used)
		return -EIO;
	unsigned slot = p->nsent % UMX_FAKE_SENT;
	size_t keep = len < sizeof(p->sent[slot].buf) ? len : sizeof(p->sent[slot].buf);
	memcpy(p->sent[slot].buf, buf, keep);
	p->sent[slot].len = len;
	p->nsent++;
	return 0;
}

static const struct umx_port_ops fake_ops = { fake_reg, fake_unreg, fake_send };

void umx_fake_port_init(struct umx_fake_port *p)
{
	memset(p, 0, sizeof(*p));
	p->port.ops = &fake_ops;
}

const void *umx_fake_port_sent(const struct umx_fake_port *p, unsigned i, size_t *len)
{
	if (i >= p->nsent || p->nsent - i > UMX_FAKE_SENT)
		return NULL;
	unsigned slot = i % UMX_FAKE_SENT;
	if (len)
		*len = p->sent[slot].len;
	return p->sent[slot].buf;
}
