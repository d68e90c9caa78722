/*
 * opts.c - command line and --config file.
 *
 * The config file has one `key value` per line (iwpmd.conf style); '#'
 * starts a comment.  Keys: nodes, mode, device, port, fuse-dir, name-prefix,
 * control, sysfs-export, mode-bits, owner.  The command line wins over the
 * file.  A bad line is reported as `file:line: message` (exit 2).
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
       O_NODE, O_LIMIT };

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
		"      --control PATH       unix socket answering `stats`\n"
		"      --sysfs-export DIR   write the port's sysfs view to DIR/class/...\n"
		"      --mode-bits OCTAL    node permissions (default 0600)\n"
		"      --owner USER[:GROUP] node owner (default root)\n"
		"      --node N:KEY=VALUE   a node setting (config: `node N KEY VALUE`): privileged,\n"
		"                           gid-index, gid, classes, pkeys, rate, burst, protocol\n"
		"      --limit KEY=VALUE    recv-queue-max outstanding-max transactions-max\n"
		"                           files-max cm-ids-max cm-grace-ms (config: `KEY VALUE`)\n",
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
static char *copies[32];
static unsigned ncopies;
static bool from_file;

static const char *keep(const char *v)
{
	char *c;

	if (!from_file || ncopies == sizeof(copies) / sizeof(copies[0]))
		return v;
	c = strdup(v);
	if (!c)
		return v;
	copies[ncopies++] = c;
	return c;
}

void mux_opts_free(void)
{
	while (ncopies)
		free(copies[--ncopies]);
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
	};
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

	/* pass 1: --config only (the command line wins over the file) */
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+d:p:n:fvh", longopts, NULL)) != -1)
		if (c == O_CONFIG)
			o->config = optarg;
	from_file = true;
	if (o->config && load_config(o, o->config))
		return -1;
	from_file = false;
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+:d:p:n:fvh", longopts, NULL)) != -1) {
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
