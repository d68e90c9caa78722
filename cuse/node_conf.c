/*
 * node_conf.c - per-node settings and limits, from the config file
 * (`node N KEY VALUE`, `KEY VALUE` for limits) or the command line
 * (`--node N:KEY=VALUE`, `--limit KEY=VALUE`).
 *
 * node keys:  privileged yes|no     QP0/SMPs allowed (default yes)
 *             gid-index N           GRH sends only from this gid index; CM
 *                                   REQs to it are steered to this node
 *             gid GID               the node's GID (CM REQs without GRH)
 *             classes C[,C...]      management classes it may use (hex or dec)
 *             pkeys I[,I...]        P_Key indexes it may use
 *             rate N / burst N      MADs per second / bucket depth
 *             protocol umad|rdmacm  what the node speaks (rdmacm: QEMU pvrdma)
 *             answers none|all  rdmacm mode: whether requests get a RESP
 *                               (none, the default, for QEMU's pipe chardev)
 * limits:     recv-queue-max outstanding-max transactions-max files-max
 *             cm-ids-max cm-grace-ms
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front.h"

static int num(const char *s, unsigned long max, unsigned long *v)
{
	char *e;
	if (!*s || *s == '-')
		return -1;
	*v = strtoul(s, &e, 0);
	return *e || *v > max ? -1 : 0;
}

static int list(const char *s, unsigned long max, unsigned long *out, unsigned cap, unsigned *n)
{
	char buf[512], *save = NULL;
	snprintf(buf, sizeof(buf), "%s", s);
	*n = 0;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (*n == cap || num(t, max, &out[*n]))
			return -1;
		(*n)++;
	}
	return *n ? 0 : -1;
}

int mux_node_conf_set(struct mux_opts *o, unsigned idx, const char *key, const char *val,
		      const char *where)
{
	struct mux_node_conf *c;
	unsigned long v, l[256];
	unsigned n;

	if (idx >= MUX_NODES_MAX) {
		fprintf(stderr, "%snode %u: at most %d nodes\n", where, idx, MUX_NODES_MAX);
		return -1;
	}
	c = &o->node[idx];
	if (!strcmp(key, "privileged")) {
		if (strcmp(val, "yes") && strcmp(val, "no"))
			goto bad;
		c->pol.privileged = !strcmp(val, "yes");
	} else if (!strcmp(key, "gid-index")) {
		if (num(val, 255, &v))
			goto bad;
		c->pol.gid_index = (int)v;
	} else if (!strcmp(key, "gid")) {
		if (inet_pton(AF_INET6, val, c->pol.gid) != 1)
			goto bad;
		c->pol.has_gid = true;
	} else if (!strcmp(key, "classes")) {
		if (list(val, 255, l, 256, &n))
			goto bad;
		memset(c->pol.classes, 0, sizeof(c->pol.classes));
		for (unsigned i = 0; i < n; i++)
			umx_policy_allow_class(&c->pol, (uint8_t)l[i]);
	} else if (!strcmp(key, "pkeys")) {
		if (list(val, 0xffff, l, UMX_POLICY_MAX_PKEYS, &n))
			goto bad;
		for (unsigned i = 0; i < n; i++)
			c->pol.pkey_index[i] = (uint16_t)l[i];
		c->pol.npkeys = n;
	} else if (!strcmp(key, "rate")) {
		if (num(val, 100000000, &v))
			goto bad;
		c->pol.rate = (uint32_t)v;
	} else if (!strcmp(key, "burst")) {
		if (num(val, 100000000, &v))
			goto bad;
		c->pol.burst = (uint32_t)v;
	} else if (!strcmp(key, "protocol")) {
		if (!strcmp(val, "umad"))
			c->protocol = MUX_PROTO_UMAD;
		else if (!strcmp(val, "rdmacm"))
			c->protocol = MUX_PROTO_RDMACM;
		else
			goto bad;
	} else if (!strcmp(key, "answers")) {
		if (!strcmp(val, "none"))
			c->rdmacm_answers = false;
		else if (!strcmp(val, "all"))
			c->rdmacm_answers = true;
		else
			goto bad;
	} else {
		fprintf(stderr, "%snode %u: unknown key '%s'\n", where, idx, key);
		return -1;
	}
	return 0;
bad:
	fprintf(stderr, "%snode %u: bad %s '%s'\n", where, idx, key, val);
	return -1;
}

int mux_limit_set(struct mux_opts *o, const char *key, const char *val, const char *where)
{
	static const struct { const char *key; size_t off; unsigned long max; } keys[] = {
		{ "recv-queue-max", offsetof(struct umx_limits, recv_queue_max), 1000000 },
		{ "outstanding-max", offsetof(struct umx_limits, outstanding_max), 65536 },
		{ "transactions-max", offsetof(struct umx_limits, tid_table_size), 65536 },
		{ "files-max", offsetof(struct umx_limits, files_max), 1000000 },
		{ "cm-ids-max", offsetof(struct umx_limits, cm_ids_max), 65536 },
		{ "cm-grace-ms", offsetof(struct umx_limits, cm_grace_ms), 3600000 },
	};
	unsigned long v;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(key, keys[i].key))
			continue;
		if (num(val, keys[i].max, &v) || v == 0) {
			fprintf(stderr, "%sbad %s '%s' (1-%lu)\n", where, key, val, keys[i].max);
			return -1;
		}
		*(unsigned *)((char *)&o->lim + keys[i].off) = (unsigned)v;
		return 0;
	}
	return 1;      /* not a limit key */
}

/* "N:KEY=VALUE" from --node */
int mux_node_conf_arg(struct mux_opts *o, const char *arg)
{
	char buf[512], *colon, *eq;
	unsigned long idx;
	snprintf(buf, sizeof(buf), "%s", arg);
	colon = strchr(buf, ':');
	eq = colon ? strchr(colon, '=') : NULL;
	if (!colon || !eq) {
		fprintf(stderr, "umad-mux: --node wants N:KEY=VALUE, not '%s'\n", arg);
		return -1;
	}
	*colon = *eq = 0;
	if (num(buf, MUX_NODES_MAX - 1, &idx)) {
		fprintf(stderr, "umad-mux: --node: bad node number '%s'\n", buf);
		return -1;
	}
	return mux_node_conf_set(o, (unsigned)idx, colon + 1, eq + 1, "umad-mux: ");
}

void mux_node_conf_defaults(struct mux_opts *o)
{
	static const struct umx_node_policy def = UMX_NODE_POLICY_DEFAULT;
	for (unsigned i = 0; i < MUX_NODES_MAX; i++) {
		o->node[i].pol = def;
		o->node[i].protocol = MUX_PROTO_UMAD;
	}
}
