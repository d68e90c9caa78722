/*
 * nodes_rt.c - nodes added and removed at runtime (control socket
 * `add-node`, `remove-node`), `reload` / SIGHUP, and the per-node info files
 * udev reads for CUSE nodes.
 *
 * Node slots: mux.node has MUX_NODES_MAX entries allocated at start, so a
 * node never moves (sessions and open files point at it); o.nodes is one past
 * the highest slot in use and a slot with core == NULL is empty (removed).
 *
 * udev info file (CUSE mode, --devinfo-dir, default /run/umad-mux/devices):
 * written before the CUSE device is created, named like the device, read by
 * udev/92-umad-mux.rules with IMPORT{file} (the cuse class has no attributes
 * that could say which port a node belongs to):
 *     UMAD_MUX_IBDEV=rxe0  UMAD_MUX_PORT=1  UMAD_MUX_NODE=3
 *     UMAD_MUX_INSTANCE=rxe0:1  UMAD_MUX_MODE=0660  UMAD_MUX_OWNER=0  UMAD_MUX_GROUP=0
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "front.h"
#include "log.h"

static bool devinfo_on(const struct mux *m)
{
	return m->o.mode == MUX_MODE_CUSE && m->o.devinfo_dir && *m->o.devinfo_dir;
}

static void mkdir_p(const char *dir)
{
	char buf[512];

	snprintf(buf, sizeof(buf), "%s", dir);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			mkdir(buf, 0755);
			*p = '/';
		}
	mkdir(buf, 0755);
}

void mux_devinfo_write(struct mux *m, struct mux_node *n)
{
	static bool warned;
	char path[600], tmp[620];
	FILE *f;

	if (!devinfo_on(m))
		return;
	mkdir_p(m->o.devinfo_dir);
	snprintf(path, sizeof(path), "%s/%s", m->o.devinfo_dir, n->name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (f) {
		const char *ca = umx_umad_port_ca(m->port);
		int port = umx_umad_port_num(m->port);
		fprintf(f,
			"UMAD_MUX_IBDEV=%s\nUMAD_MUX_PORT=%d\nUMAD_MUX_NODE=%u\nUMAD_MUX_INSTANCE=%s:%d\n"
			"UMAD_MUX_MODE=%04o\nUMAD_MUX_OWNER=%u\nUMAD_MUX_GROUP=%u\n",
			ca, port, n->index, ca, port, m->o.mode_bits, (unsigned)m->o.uid,
			(unsigned)m->o.gid);
		if (fclose(f) == 0 && rename(tmp, path) == 0)
			return;
		unlink(tmp);
	}
	if (!warned)
		log_warn("udev info %s: %s (udev gives the node no symlink)", path, strerror(errno));
	warned = true;
}

void mux_devinfo_remove(struct mux *m, struct mux_node *n)
{
	char path[600];

	if (!devinfo_on(m))
		return;
	snprintf(path, sizeof(path), "%s/%s", m->o.devinfo_dir, n->name);
	unlink(path);
}

/* CUSE: the kernel creates the device when our INIT reply is processed.
 * Serve the new session until then, so that the device exists when the
 * control client gets its answer (a few ms; the loop waits meanwhile). */
static int cuse_wait_up(struct mux *m, struct mux_node *n, char *err, size_t errlen)
{
	for (int waited = 0; !n->up && waited < 3000; waited += 10) {
		struct pollfd p = { .fd = n->sess->fd, .events = POLLIN };
		if (poll(&p, 1, 10) > 0 && !mux_sess_process(n->sess)) {
			snprintf(err, errlen, "CUSE device %s was refused by the kernel (see dmesg)",
				 n->name);
			return -1;
		}
	}
	if (!n->up) {
		snprintf(err, errlen, "CUSE device %s did not come up within 3 s", n->name);
		return -1;
	}
	return 0;
}

int mux_node_add(struct mux *m, int idx, char *err, size_t errlen)
{
	struct mux_node *n;
	unsigned old_nodes = m->o.nodes;

	if (!m->ready) {
		snprintf(err, errlen, "the daemon is still starting");
		return -1;
	}
	if (idx < 0) {
		for (idx = 0; idx < MUX_NODES_MAX && m->node[idx].core; idx++)
			;
	}
	if (idx >= MUX_NODES_MAX) {
		snprintf(err, errlen, "at most %d nodes", MUX_NODES_MAX);
		return -1;
	}
	n = &m->node[idx];
	if (n->core) {
		snprintf(err, errlen, "node %d exists (%s)", idx, n->name);
		return -1;
	}
	if (m->o.node[idx].protocol != MUX_PROTO_UMAD) {
		snprintf(err, errlen, "node %d: only umad nodes can be added at runtime", idx);
		return -1;
	}
	memset(n, 0, sizeof(*n));
	n->mux = m;
	n->index = (unsigned)idx;
	snprintf(n->name, sizeof(n->name), "%s-%u", m->o.prefix, n->index);
	n->core = umx_node_new(m->router, n->index, &m->o.node[idx].pol);
	if (!n->core) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((unsigned)idx >= m->o.nodes)
		m->o.nodes = (unsigned)idx + 1;
	if (m->o.mode == MUX_MODE_CUSE &&
	    (mux_cuse_node_start(m, n, err, errlen) || cuse_wait_up(m, n, err, errlen))) {
		mux_cuse_node_stop(m, n);
		umx_node_free(n->core);
		n->core = NULL;
		m->o.nodes = old_nodes;
		return -1;
	}
	log_info("node %d added: %s%s", idx, m->o.mode == MUX_MODE_CUSE ? "/dev/" : "", n->name);
	return idx;
}

int mux_node_remove(struct mux *m, unsigned idx, char *err, size_t errlen)
{
	struct mux_node *n;

	if (!m->ready) {
		snprintf(err, errlen, "the daemon is still starting");
		return -1;
	}
	if (idx >= m->o.nodes || !m->node[idx].core) {
		snprintf(err, errlen, "no node %u", idx);
		return -1;
	}
	n = &m->node[idx];
	if (!n->sess && m->o.mode == MUX_MODE_CUSE) {
		/* not a CUSE node of ours (another protocol's front end) */
		snprintf(err, errlen, "node %u is not a CUSE node", idx);
		return -1;
	}
	mux_node_files_release(m, n);        /* parked reads get ENODEV */
	if (m->o.mode == MUX_MODE_CUSE)
		mux_cuse_node_stop(m, n);
	umx_node_free(n->core);
	n->core = NULL;
	while (m->o.nodes && !m->node[m->o.nodes - 1].core)
		m->o.nodes--;
	log_info("node %u removed: %s", idx, n->name);
	return 0;
}

void mux_nodes_gc(struct mux *m)
{
	while (m->dead) {
		struct mux_sess *s = m->dead;
		m->dead = s->dead_next;
		free(s);
	}
}

static void say(char *out, size_t outlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *out, size_t outlen, const char *fmt, ...)
{
	size_t used = strlen(out);
	va_list ap;

	if (used + 1 >= outlen)
		return;
	va_start(ap, fmt);
	vsnprintf(out + used, outlen - used, fmt, ap);
	va_end(ap);
}

static bool str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b));
}

/*
 * reload: the config file and the command line are parsed again (the
 * command line still wins).  Applied at once: node policies
 * (umx_node_set_policy: open files keep their agents), owner and mode of the
 * nodes, and nodes 0..nodes-1 that do not exist yet.  Settings that need a
 * restart (device, port, mode, name prefix, directories, limits) are
 * reported, not applied.
 */
int mux_reload(struct mux *m, char *out, size_t outlen)
{
	struct mux_opts *o = calloc(1, sizeof(*o));
	char *msg = NULL, err[512];
	size_t msglen = 0;
	unsigned changed = 0, added = 0;
	int rc;

	*out = 0;
	if (!o) {
		say(out, outlen, "out of memory\n");
		return -1;
	}
	/* the parser prints its one-line errors on stderr: catch them
	 * (one thread parses; the port's reader thread does not print) */
	FILE *mem = open_memstream(&msg, &msglen), *saved = stderr;
	if (mem)
		stderr = mem;
	rc = mux_opts_parse(o, m->argc, m->argv);
	if (mem) {
		stderr = saved;
		fclose(mem);
	}
	if (rc) {
		say(out, outlen, "%s", msg && *msg ? msg : "config not valid\n");
		free(msg);
		free(o);
		return -1;
	}
	free(msg);

	static const struct { const char *what; size_t off; } strs[] = {
		{ "device", offsetof(struct mux_opts, device) },
		{ "name-prefix", offsetof(struct mux_opts, prefix) },
		{ "fuse-dir", offsetof(struct mux_opts, fuse_dir) },
		{ "control", offsetof(struct mux_opts, control) },
		{ "sysfs-export", offsetof(struct mux_opts, sysfs_export) },
		{ "devinfo-dir", offsetof(struct mux_opts, devinfo_dir) },
	};
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		if (str_differs(*(const char **)((char *)o + strs[i].off),
				*(const char **)((char *)&m->o + strs[i].off)))
			say(out, outlen, "%s changed: restart to apply\n", strs[i].what);
	if (o->port != m->o.port)
		say(out, outlen, "port changed: restart to apply\n");
	if (o->mode != m->o.mode)
		say(out, outlen, "mode changed: restart to apply\n");
	if (memcmp(&o->lim, &m->o.lim, sizeof(o->lim)))
		say(out, outlen, "limits changed: restart to apply\n");
	m->o.ports = o->ports;

	/* owner and mode of the nodes */
	bool perm = o->mode_bits != m->o.mode_bits || o->uid != m->o.uid || o->gid != m->o.gid;
	m->o.mode_bits = o->mode_bits;
	m->o.uid = o->uid;
	m->o.gid = o->gid;

	/* node policies */
	for (unsigned i = 0; i < MUX_NODES_MAX; i++) {
		struct mux_node *n = &m->node[i];
		if (i < m->o.nodes && n->core) {
			if (o->node[i].protocol != m->o.node[i].protocol) {
				say(out, outlen, "node %u: protocol changed: restart to apply\n", i);
				o->node[i].protocol = m->o.node[i].protocol;
			}
			if (memcmp(&o->node[i].pol, umx_node_policy(n->core), sizeof(o->node[i].pol))) {
				umx_node_set_policy(n->core, &o->node[i].pol);
				changed++;
			}
			if (perm && m->o.mode == MUX_MODE_CUSE && n->sess) {
				char path[MUX_NAME_MAX + 8];
				snprintf(path, sizeof(path), "/dev/%s", n->name);
				if (chmod(path, m->o.mode_bits) != 0 ||
				    chown(path, m->o.uid, m->o.gid) != 0)
					say(out, outlen, "%s: %s\n", path, strerror(errno));
				mux_devinfo_write(m, n);
			}
			if (perm && m->o.mode == MUX_MODE_FUSE)
				mux_fuse_node_changed(m, n);
		}
		m->o.node[i] = o->node[i];
	}
	say(out, outlen, "policies changed: %u node%s\n", changed, changed == 1 ? "" : "s");
	if (perm)
		say(out, outlen, "nodes now mode %04o owner %u:%u\n", m->o.mode_bits,
		    (unsigned)m->o.uid, (unsigned)m->o.gid);

	/* nodes 0..nodes-1 */
	rc = 0;
	for (unsigned i = 0; i < o->nodes; i++) {
		if (i < m->o.nodes && m->node[i].core)
			continue;
		if (mux_node_add(m, (int)i, err, sizeof(err)) < 0) {
			say(out, outlen, "node %u: %s\n", i, err);
			rc = -1;
		} else {
			say(out, outlen, "added node %u (%s)\n", i, m->node[i].name);
			added++;
		}
	}
	unsigned beyond = 0;
	for (unsigned i = o->nodes; i < m->o.nodes; i++)
		if (m->node[i].core)
			beyond++;
	if (beyond)
		say(out, outlen, "%u node%s beyond nodes %u kept (remove-node removes them)\n",
		    beyond, beyond == 1 ? "" : "s", o->nodes);
	free(o);
	return rc;
}
