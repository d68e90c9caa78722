/*
 * opts.c - command line and --config file.
 *
 * The config file has one `key value` per line (iwpmd.conf style); '#'
 * starts a comment.  Keys: nodes, mode, device, port, fuse-dir, name-prefix,
 * control, sysfs-export, mode-bits, owner, ports, devinfo-dir, the limits and
 * `node N KEY VALUE` (node_conf.c).  A line `[IBDEV:PORT]` starts a section
 * that applies only to --instance IBDEV:PORT (until the next section).  The
 * command line wins over the file.  A bad line is reported as
 * `file:line: message` (exit 2).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front.h"

#define NODES_MAX 256

enum { O_PREFIX = 256, O_MODE, O_FUSEDIR, O_CONFIG, O_CONTROL, O_SYSFS, O_MODEBITS, O_OWNER,
       O_NODE, O_LIMIT, O_INSTANCE, O_CHECK_INSTANCE, O_PORTS, O_DEVINFO };

#define O_SOCKDEF 400           /* --socket-default (rdmacm-mux protocol) */

static const struct option longopts[] = {
	{ "device", required_argument, NULL, 'd' },
	{ "port", required_argument, NULL, 'p' },
	{ "nodes", required_argument, NULL, 'n' },
	{ "name-prefix", required_argument, NULL, O_PREFIX },
	{ "mode", required_argument, NULL, O_MODE },
	{ "fuse-dir", required_argument, NULL, O_FUSEDIR },
	{ "foreground", no_argument, NULL, 'f' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "config", required_argument, NULL, O_CONFIG },
	{ "control", required_argument, NULL, O_CONTROL },
	{ "sysfs-export", required_argument, NULL, O_SYSFS },
	{ "mode-bits", required_argument, NULL, O_MODEBITS },
	{ "owner", required_argument, NULL, O_OWNER },
	{ "node", required_argument, NULL, O_NODE },
	{ "limit", required_argument, NULL, O_LIMIT },
	{ "socket", required_argument, NULL, 's' },
	{ "socket-default", no_argument, NULL, O_SOCKDEF },
	{ "instance", required_argument, NULL, O_INSTANCE },
	{ "check-instance", no_argument, NULL, O_CHECK_INSTANCE },
	{ "devinfo-dir", required_argument, NULL, O_DEVINFO },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: umad-mux [options]\n"
		"  -d, --device IBDEV       the real port's device (default: libibumad's first)\n"
		"  -p, --port N             its port number (default: the first active)\n"
		"  -n, --nodes COUNT        nodes <prefix>-0 .. COUNT-1 (default 1, max %d)\n"
		"      --name-prefix P      node name prefix (default umad-mux)\n"
		"      --mode cuse|fuse     CUSE devices /dev/P-N (default) or FUSE files\n"
		"      --fuse-dir DIR       FUSE mode mount point: files DIR/P-N\n"
		"  -f, --foreground         stay in the foreground, log to stderr\n"
		"  -v, --verbose            debug messages (twice: libfuse's too)\n"
		"      --config FILE        `key value` lines: nodes mode device port fuse-dir\n"
		"                           name-prefix control sysfs-export mode-bits owner\n"
		"                           ports devinfo-dir, limits, node N KEY VALUE,\n"
		"                           [IBDEV:PORT] sections (umad-mux.conf(5))\n"
		"      --control PATH       control socket for umad-muxctl(8)\n"
		"      --sysfs-export DIR   write the port's sysfs view to DIR/class/...\n"
		"      --mode-bits OCTAL    node permissions (default 0600)\n"
		"      --owner USER[:GROUP] node owner (default root)\n"
		"      --node N:KEY=VALUE   a node setting (config: `node N KEY VALUE`): privileged,\n"
		"                           gid-index, gid, classes, pkeys, rate, burst, protocol,\n"
		"                           answers (rdmacm nodes: none|all, default none)\n"
		"      --limit KEY=VALUE    recv-queue-max outstanding-max transactions-max\n"
		"                           files-max cm-ids-max cm-grace-ms (config: `KEY VALUE`)\n"
		"  -s, --socket PATH        serve QEMU pvrdma's rdmacm-mux protocol on this unix\n"
		"                           socket (config: `socket PATH`); clients get node 0's policy\n"
		"      --socket-default     the same on /var/run/rdmacm-mux-<IBDEV>-<PORT>\n"
		"      --instance IBDEV:PORT the port to serve (= -d IBDEV -p PORT); config lines\n"
		"                           after `[IBDEV:PORT]` apply to this instance only\n"
		"      --check-instance     exit 0 if the config's `ports` includes --instance, else 1\n"
		"                           (systemd ExecCondition); config errors exit 255\n"
		"      --devinfo-dir DIR    CUSE: per-node files for udev (default " MUX_DEVINFO_DIR ",\n"
		"                           '' for none)\n",
		NODES_MAX);
}

static int bad(const char *where, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(const char *where, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s", where);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return -1;
}

static int parse_uint(const char *s, unsigned base, unsigned long max, unsigned long *v)
{
	char *end;
	errno = 0;
	if (!*s || *s == '-')
		return -1;
	*v = strtoul(s, &end, (int)base);
	return errno || *end || *v > max ? -1 : 0;
}

static int parse_owner(const char *s, uid_t *uid, gid_t *gid)
{
	char user[128], *colon;
	unsigned long v;

	snprintf(user, sizeof(user), "%s", s);
	colon = strchr(user, ':');
	if (colon)
		*colon++ = 0;
	if (parse_uint(user, 10, UINT_MAX - 1, &v) == 0) {
		*uid = (uid_t)v;
		struct passwd *pw = getpwuid(*uid);
		*gid = pw ? pw->pw_gid : 0;
	} else {
		struct passwd *pw = getpwnam(user);
		if (!pw)
			return -1;
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
	}
	if (colon && *colon) {
		if (parse_uint(colon, 10, UINT_MAX - 1, &v) == 0) {
			*gid = (gid_t)v;
		} else {
			struct group *gr = getgrnam(colon);
			if (!gr)
				return -1;
			*gid = gr->gr_gid;
		}
	}
	return 0;
}

/* strings from the config file are copied (kept until mux_opts_free());
 * command-line strings point into argv */
static char **copies;            /* grows: `reload` parses again */
static unsigned ncopies, capcopies;
static bool from_file;

static const char *keep(const char *v)
{
	char *c;

	if (!from_file)
		return v;
	if (ncopies == capcopies) {
		unsigned cap = capcopies ? 2 * capcopies : 32;
		char **nc = realloc(copies, cap * sizeof(*nc));
		if (!nc)
			return "";
		copies = nc;
		capcopies = cap;
	}
	c = strdup(v);
	if (!c)
		return "";
	copies[ncopies++] = c;
	return c;
}

void mux_opts_free(void)
{
	while (ncopies)
		free(copies[--ncopies]);
	free(copies);
	copies = NULL;
	capcopies = 0;
}

/* "IBDEV:PORT": 0 and the parts, or -1 */
static int split_instance(const char *s, char *dev, size_t devlen, unsigned long *port)
{
	const char *colon = strrchr(s, ':');
	char *end;

	if (!colon || colon == s || (size_t)(colon - s) >= devlen || strchr(s, '/') ||
	    strchr(s, ' ') || strchr(s, ','))
		return -1;
	memcpy(dev, s, (size_t)(colon - s));
	dev[colon - s] = 0;
	errno = 0;
	*port = strtoul(colon + 1, &end, 10);
	return errno || *end || colon[1] == 0 || colon[1] == '-' || *port == 0 || *port > 255 ? -1 : 0;
}

/* `ports` value: "all" or IBDEV:PORT[,IBDEV:PORT...] (commas or spaces) */
static int check_ports(const char *v)
{
	char buf[1024], dev[128], *save = NULL;
	unsigned long port;

	if (!strcmp(v, "all"))
		return 0;
	snprintf(buf, sizeof(buf), "%s", v);
	for (char *t = strtok_r(buf, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save))
		if (split_instance(t, dev, sizeof(dev), &port))
			return -1;
	return 0;
}

int mux_opts_check_instance(const struct mux_opts *o)
{
	char buf[1024], *save = NULL;

	if (!o->instance) {
		fprintf(stderr, "umad-mux: --check-instance needs --instance IBDEV:PORT\n");
		return 255;
	}
	if (!o->ports || !strcmp(o->ports, "all"))
		return 0;
	snprintf(buf, sizeof(buf), "%s", o->ports);
	for (char *t = strtok_r(buf, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save))
		if (!strcmp(t, o->instance))
			return 0;
	fprintf(stderr, "umad-mux: %s is not in the config's ports (%s)\n", o->instance, o->ports);
	return 1;
}

/* one setting from the command line or the config file; where = "" or "file:line: " */
static int set(struct mux_opts *o, int key, const char *val, const char *where)
{
	unsigned long v;

	switch (key) {
	case 'd':
		o->device = keep(val);
		return 0;
	case 'p':
		if (parse_uint(val, 10, 255, &v) || v == 0)
			return bad(where, "bad port number '%s' (1-255)", val);
		o->port = (int)v;
		return 0;
	case 'n':
		if (parse_uint(val, 10, NODES_MAX, &v) || v == 0)
			return bad(where, "bad node count '%s' (1-" "256)", val);
		o->nodes = (unsigned)v;
		return 0;
	case O_PREFIX:
		if (!*val || strlen(val) > 40 || strchr(val, '/'))
			return bad(where, "bad name prefix '%s' (1-40 characters, no '/')", val);
		o->prefix = keep(val);
		return 0;
	case O_MODE:
		if (!strcmp(val, "cuse"))
			o->mode = MUX_MODE_CUSE;
		else if (!strcmp(val, "fuse"))
			o->mode = MUX_MODE_FUSE;
		else
			return bad(where, "bad mode '%s' (cuse or fuse)", val);
		return 0;
	case O_FUSEDIR:
		o->fuse_dir = keep(val);
		return 0;
	case O_CONTROL:
		o->control = keep(val);
		return 0;
	case O_SYSFS:
		o->sysfs_export = keep(val);
		return 0;
	case O_MODEBITS:
		if (parse_uint(val, 8, 0777, &v))
			return bad(where, "bad mode bits '%s' (octal, at most 0777)", val);
		o->mode_bits = (unsigned)v;
		return 0;
	case O_OWNER:
		if (parse_owner(val, &o->uid, &o->gid))
			return bad(where, "unknown owner '%s'", val);
		return 0;
	case O_NODE:
		return mux_node_conf_arg(o, val);
	case O_INSTANCE: {
		char dev[128];
		if (split_instance(val, dev, sizeof(dev), &v))
			return bad(where, "bad instance '%s' (IBDEV:PORT, e.g. mlx5_0:1)", val);
		o->instance = keep(val);
		bool ff = from_file;
		from_file = true;       /* dev is on the stack: always copied */
		o->device = keep(dev);
		from_file = ff;
		o->port = (int)v;
		return 0;
	}
	case O_PORTS:
		if (check_ports(val))
			return bad(where, "bad ports '%s' (all, or IBDEV:PORT[,IBDEV:PORT...])", val);
		o->ports = keep(val);
		return 0;
	case O_DEVINFO:
		o->devinfo_dir = keep(val);
		return 0;
	case 's':
		o->rdmacm_socket = keep(val);
		return 0;
	case O_SOCKDEF:
		o->rdmacm_socket_default = true;
		return 0;
	case O_LIMIT: {
		char buf[256], *eq;
		snprintf(buf, sizeof(buf), "%s", val);
		eq = strchr(buf, '=');
		if (!eq)
			return bad(where, "--limit wants KEY=VALUE, not '%s'", val);
		*eq = 0;
		int r = mux_limit_set(o, buf, eq + 1, where);
		if (r > 0)
			return bad(where, "unknown limit '%s'", buf);
		return r;
	}
	}
	return -1;
}

static int load_config(struct mux_opts *o, const char *path)
{
	static const struct { const char *key; int opt; } keys[] = {
		{ "nodes", 'n' }, { "mode", O_MODE }, { "device", 'd' }, { "port", 'p' },
		{ "fuse-dir", O_FUSEDIR }, { "name-prefix", O_PREFIX }, { "control", O_CONTROL },
		{ "sysfs-export", O_SYSFS }, { "mode-bits", O_MODEBITS }, { "owner", O_OWNER },
		{ "ports", O_PORTS }, { "devinfo-dir", O_DEVINFO }, { "socket", 's' },
	};
	bool skip = false;           /* inside another instance's [IBDEV:PORT] section */
	bool in_section = false;
	FILE *f = fopen(path, "r");
	char line[1024], where[1200];
	unsigned ln = 0;

	if (!f) {
		fprintf(stderr, "umad-mux: --config %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *k, *v, *e;
		ln++;
		snprintf(where, sizeof(where), "%s:%u: ", path, ln);
		if (!strchr(line, '\n') && !feof(f)) {
			fclose(f);
			return bad(where, "line too long");
		}
		line[strcspn(line, "#\r\n")] = 0;
		for (k = line; isspace((unsigned char)*k); k++)
			;
		if (!*k)
			continue;
		if (*k == '[') {
			/* [IBDEV:PORT]: what follows is for that instance only */
			char dev[128], sec[1024];
			unsigned long pn;
			snprintf(sec, sizeof(sec), "%s", k);
			for (size_t sl = strlen(sec); sl && isspace((unsigned char)sec[sl - 1]);)
				sec[--sl] = 0;
			e = strchr(k, ']');
			if (e)
				*e++ = 0;
			while (e && isspace((unsigned char)*e))
				e++;
			if (!e || *e || split_instance(k + 1, dev, sizeof(dev), &pn)) {
				fclose(f);
				return bad(where, "bad section '%s' ([IBDEV:PORT], e.g. [mlx5_0:1])", sec);
			}
			in_section = true;
			skip = !o->instance || strcmp(k + 1, o->instance) != 0;
			continue;
		}
		if (skip) {
			/* another instance's section; `ports` is wrong in any */
			if (!strncmp(k, "ports", 5) && (!k[5] || isspace((unsigned char)k[5]))) {
				fclose(f);
				return bad(where, "'ports' belongs before the first [IBDEV:PORT] section");
			}
			continue;
		}
		for (v = k; *v && !isspace((unsigned char)*v); v++)
			;
		if (*v)
			*v++ = 0;
		while (isspace((unsigned char)*v))
			v++;
		for (e = v + strlen(v); e > v && isspace((unsigned char)e[-1]); e--)
			;
		*e = 0;
		int opt = 0;
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (!strcmp(k, keys[i].key))
				opt = keys[i].opt;
		if (!opt && !strcmp(k, "node")) {
			/* node N KEY VALUE */
			char *nk, *nv, *ne;
			unsigned long idx = strtoul(v, &nk, 10);
			if (nk == v || !isspace((unsigned char)*nk)) {
				fclose(f);
				return bad(where, "'node' wants: node N KEY VALUE");
			}
			while (isspace((unsigned char)*nk))
				nk++;
			for (nv = nk; *nv && !isspace((unsigned char)*nv); nv++)
				;
			ne = nv;
			while (isspace((unsigned char)*nv))
				nv++;
			*ne = 0;
			if (!*nk || !*nv) {
				fclose(f);
				return bad(where, "'node' wants: node N KEY VALUE");
			}
			if (mux_node_conf_set(o, (unsigned)(idx < MUX_NODES_MAX ? idx : MUX_NODES_MAX),
					      nk, nv, where)) {
				fclose(f);
				return -1;
			}
			continue;
		}
		if (!opt && *v) {
			int r = mux_limit_set(o, k, v, where);
			if (r < 0) {
				fclose(f);
				return -1;
			}
			if (r == 0)
				continue;
		}
		if (!opt) {
			fclose(f);
			return bad(where, "unknown key '%s'", k);
		}
		if (!*v) {
			fclose(f);
			return bad(where, "'%s' needs a value", k);
		}
		if (opt == O_PORTS && in_section) {
			fclose(f);
			return bad(where, "'ports' belongs before the first [IBDEV:PORT] section");
		}
		if (set(o, opt, v, where)) {
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

/* 0 ok, 1 --help shown, -1 error (message printed) */
int mux_opts_parse(struct mux_opts *o, int argc, char **argv)
{
	int c;

	memset(o, 0, sizeof(*o));
	mux_node_conf_defaults(o);
	o->nodes = 1;
	o->prefix = "umad-mux";
	o->mode = MUX_MODE_CUSE;
	o->mode_bits = 0600;
	o->devinfo_dir = MUX_DEVINFO_DIR;

	/* pass 1: --config only (the command line wins over the file) */
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+d:p:n:s:fvh", longopts, NULL)) != -1) {
		if (c == O_CONFIG)
			o->config = optarg;
		/* the instance selects config sections */
		if (c == O_INSTANCE && set(o, c, optarg, "umad-mux: "))
			return -1;
		if (c == O_CHECK_INSTANCE)  /* its config errors exit 255 */
			o->check_instance = true;
	}
	from_file = true;
	if (o->config && load_config(o, o->config))
		return -1;
	from_file = false;
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+:d:p:n:s:fvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			o->foreground = true;
			break;
		case 'v':
			o->verbose++;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case O_CONFIG:
			break;
		case O_CHECK_INSTANCE:
			o->check_instance = true;
			break;
		case ':':
			fprintf(stderr, "umad-mux: option %s needs an argument (try --help)\n",
				argv[optind - 1]);
			return -1;
		case '?':
			fprintf(stderr, "umad-mux: unknown option %s (try --help)\n", argv[optind - 1]);
			return -1;
		default:
			if (set(o, c, optarg, "umad-mux: "))
				return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "umad-mux: unexpected argument '%s' (try --help)\n", argv[optind]);
		return -1;
	}
	if (o->mode == MUX_MODE_FUSE && !o->fuse_dir) {
		fprintf(stderr, "umad-mux: --mode fuse needs --fuse-dir DIR\n");
		return -1;
	}
	if (o->mode == MUX_MODE_CUSE && o->fuse_dir) {
		fprintf(stderr, "umad-mux: --fuse-dir is for --mode fuse\n");
		return -1;
	}
	return 0;
}
