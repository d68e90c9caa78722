/*
 * umad-muxctl - the control tool of umad-mux(8): talks to the daemon's
 * control socket (cuse/control.c has the protocol) and prints the answers
 * readably.
 *
 *   umad-muxctl [-s SOCKET | -i IBDEV:PORT] [-r] COMMAND [ARG]
 *     list | stats | add-node [N] | remove-node N | reload | help
 *
 * The socket: -s PATH; -i IBDEV:PORT means /run/umad-mux/IBDEV:PORT/control
 * (what umad-mux@IBDEV:PORT.service uses); else $UMAD_MUX_CONTROL; else the
 * only /run/umad-mux/ * /control there is.
 * Exit status: 0 ok; 1 the daemon answered an error or cannot be reached;
 * 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <glob.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define RUNDIR "/run/umad-mux"
#define TIMEOUT_MS 15000

static const char *me = "umad-muxctl";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [-s SOCKET | -i IBDEV:PORT] [-r] COMMAND [ARG]\n"
		"  list             nodes, their open files (per-client counters) and agents\n"
		"  stats            the daemon's counters\n"
		"  add-node [N]     a new node (N: the first free number); usable when this returns\n"
		"  remove-node N    remove node N (its open files get ENODEV)\n"
		"  reload           re-read the configuration (as SIGHUP)\n"
		"  -s, --socket PATH     the daemon's --control socket\n"
		"  -i, --instance I      the socket of umad-mux@I.service: " RUNDIR "/I/control\n"
		"  -r, --raw             print the protocol lines as they come\n"
		"without -s/-i: $UMAD_MUX_CONTROL, else the only " RUNDIR "/*/control\n",
		me);
}

/* ---- the answer: lines up to "end" -------------------------------------- */

static char **lines;
static size_t nlines;

static int request(const char *sock, const char *cmd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd;

	if (strlen(sock) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "%s: socket path too long: %s\n", me, sock);
		return -1;
	}
	strcpy(sa.sun_path, sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr, "%s: cannot connect to %s: %s (is umad-mux running with --control %s?)\n",
			me, sock, strerror(errno), sock);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	size_t cl = strlen(cmd);
	char *req = malloc(cl + 2);
	if (!req)
		return -1;
	memcpy(req, cmd, cl);
	req[cl] = '\n';
	req[cl + 1] = 0;
	if (send(fd, req, cl + 1, MSG_NOSIGNAL) != (ssize_t)(cl + 1)) {
		fprintf(stderr, "%s: %s: %s\n", me, sock, strerror(errno));
		free(req);
		close(fd);
		return -1;
	}
	free(req);
	for (;;) {
		if (len >= 4 && !memcmp(buf + len - 4, "end\n", 4) &&
		    (len == 4 || buf[len - 5] == '\n'))
			break;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int pr = poll(&p, 1, TIMEOUT_MS);
		if (pr <= 0) {
			fprintf(stderr, "%s: %s: no complete answer within %d s\n", me, sock,
				TIMEOUT_MS / 1000);
			close(fd);
			return -1;
		}
		if (cap - len < 65536) {
			cap = cap ? cap * 2 : 131072;
			char *nb = realloc(buf, cap);
			if (!nb) {
				close(fd);
				return -1;
			}
			buf = nb;
		}
		ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "%s: %s: connection closed before the answer ended\n", me, sock);
			close(fd);
			return -1;
		}
		len += (size_t)n;
	}
	close(fd);
	buf[len] = 0;
	char *save = NULL;
	for (char *t = strtok_r(buf, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
		if (!strcmp(t, "end"))
			break;
		char **nl = realloc(lines, (nlines + 1) * sizeof(*nl));
		if (!nl)
			return -1;
		lines = nl;
		lines[nlines++] = t;
	}
	return 0;
}

/* ---- one record: "type [id] key value key value ..." ---------------------- */

#define TOK_MAX 128
struct rec {
	int n;
	char *t[TOK_MAX];
};

static void split(char *line, struct rec *r)
{
	char *save = NULL;
	r->n = 0;
	for (char *t = strtok_r(line, " ", &save); t && r->n < TOK_MAX; t = strtok_r(NULL, " ", &save))
		r->t[r->n++] = t;
}

/* value of key (pairs start at token `from`); "?" when absent */
static const char *get(const struct rec *r, int from, const char *key)
{
	for (int i = from; i + 1 < r->n; i += 2)
		if (!strcmp(r->t[i], key))
			return r->t[i + 1];
	return "?";
}

static bool is_traffic(const char *k)
{
	return !strcmp(k, "rx_packets") || !strcmp(k, "rx_delivered") || !strcmp(k, "tx_packets") ||
	       !strcmp(k, "real_agent_registrations") || !strcmp(k, "rx_timeouts");
}

static void print_list(void)
{
	unsigned nodes = 0;

	for (size_t i = 0; i < nlines; i++) {
		struct rec r;
		split(lines[i], &r);
		if (r.n < 2)
			continue;
		if (!strcmp(r.t[0], "node")) {
			nodes++;
			printf("node %s  %s  %s  files %s  privileged %s  classes %s  protocol %s\n",
			       r.t[1], get(&r, 2, "path"),
			       !strcmp(get(&r, 2, "up"), "yes") ? "up" : "DOWN",
			       get(&r, 2, "files"), get(&r, 2, "privileged"), get(&r, 2, "classes"),
			       get(&r, 2, "protocol"));
		} else if (!strcmp(r.t[0], "counters")) {
			printf("  traffic: sent %s  delivered %s  timeouts %s\n",
			       get(&r, 2, "tx_packets"),
			       get(&r, 2, "rx_delivered"), get(&r, 2, "rx_timeouts"));
			bool any = false;
			for (int k = 2; k + 1 < r.n; k += 2) {
				if (is_traffic(r.t[k]) || !strcmp(r.t[k + 1], "0"))
					continue;
				printf("%s %s %s", any ? "," : "  drops/refusals:", r.t[k], r.t[k + 1]);
				any = true;
			}
			printf("%s\n", any ? "" : "  drops/refusals: none");
		} else if (!strcmp(r.t[0], "file")) {
			printf("  file %s  pid %s  header %s  agents %s\n"
			       "    sent %s  received %s  timeouts %s  outstanding %s  queued %s\n"
			       "    refused: policy %s  rate %s  busy %s  other %s\n",
			       r.t[1], get(&r, 2, "pid"), get(&r, 2, "header"), get(&r, 2, "agents"),
			       get(&r, 2, "sent"), get(&r, 2, "received"), get(&r, 2, "timeouts"),
			       get(&r, 2, "outstanding"), get(&r, 2, "queued"),
			       get(&r, 2, "refused_policy"), get(&r, 2, "refused_rate"),
			       get(&r, 2, "refused_busy"), get(&r, 2, "refused_other"));
		} else if (!strcmp(r.t[0], "agent")) {
			const char *dot = strchr(r.t[1], '.');
			printf("    agent %s: qpn %s class %s version %s rmpp %s%s%s methods %s "
			       "outstanding %s\n",
			       dot ? dot + 1 : r.t[1], get(&r, 2, "qpn"), get(&r, 2, "class"),
			       get(&r, 2, "version"), get(&r, 2, "rmpp"),
			       strcmp(get(&r, 2, "oui"), "0x000000") ? " oui " : "",
			       strcmp(get(&r, 2, "oui"), "0x000000") ? get(&r, 2, "oui") : "",
			       get(&r, 2, "methods"), get(&r, 2, "outstanding"));
		}
	}
	if (!nodes)
		printf("no nodes\n");
}

static void print_stats(void)
{
	int w = 0;
	for (size_t i = 0; i < nlines; i++) {
		int k = (int)strcspn(lines[i], " ");
		if (k > w)
			w = k;
	}
	for (size_t i = 0; i < nlines; i++) {
		int k = (int)strcspn(lines[i], " ");
		printf("%-*.*s %s\n", w, k, lines[i], lines[i][k] ? lines[i] + k + 1 : "");
	}
}

static const char *find_socket(const char *instance)
{
	static char path[512];
	const char *env = getenv("UMAD_MUX_CONTROL");
	glob_t g;

	if (instance) {
		snprintf(path, sizeof(path), RUNDIR "/%s/control", instance);
		return path;
	}
	if (env && *env)
		return env;
	if (glob(RUNDIR "/*/control", 0, NULL, &g) != 0 || g.gl_pathc == 0) {
		fprintf(stderr, "%s: no control socket in " RUNDIR "/*/control: give -s SOCKET "
			"(the daemon's --control) or -i IBDEV:PORT\n", me);
		return NULL;
	}
	if (g.gl_pathc > 1) {
		fprintf(stderr, "%s: %zu daemons are running; choose one with -i:", me, g.gl_pathc);
		for (size_t i = 0; i < g.gl_pathc; i++) {
			char *s = g.gl_pathv[i] + strlen(RUNDIR "/");
			*strrchr(s, '/') = 0;
			fprintf(stderr, " %s", s);
		}
		fprintf(stderr, "\n");
		globfree(&g);
		return NULL;
	}
	snprintf(path, sizeof(path), "%s", g.gl_pathv[0]);
	globfree(&g);
	return path;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "instance", required_argument, NULL, 'i' },
		{ "raw", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sock = NULL, *instance = NULL;
	bool raw = false;
	char cmd[256];
	int c;

	while ((c = getopt_long(argc, argv, "+s:i:rh", lo, NULL)) != -1) {
		switch (c) {
		case 's': sock = optarg; break;
		case 'i': instance = optarg; break;
		case 'r': raw = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *verb = argv[optind];
	int nargs = argc - optind - 1, maxargs = -1, minargs = 0;
	if (!strcmp(verb, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(verb, "list") || !strcmp(verb, "stats") || !strcmp(verb, "reload"))
		maxargs = 0;
	else if (!strcmp(verb, "add-node"))
		maxargs = 1;
	else if (!strcmp(verb, "remove-node"))
		minargs = maxargs = 1;
	if (maxargs < 0) {
		fprintf(stderr, "%s: unknown command '%s' (try --help)\n", me, verb);
		return 2;
	}
	if (nargs < minargs || nargs > maxargs) {
		fprintf(stderr, "%s: %s takes %s (try --help)\n", me, verb,
			maxargs == 0 ? "no argument" : minargs ? "a node number" : "at most a node number");
		return 2;
	}
	if (nargs && strspn(argv[optind + 1], "0123456789") != strlen(argv[optind + 1])) {
		fprintf(stderr, "%s: %s: bad node number '%s'\n", me, verb, argv[optind + 1]);
		return 2;
	}
	if (sock && instance) {
		fprintf(stderr, "%s: -s and -i exclude each other\n", me);
		return 2;
	}
	if (!sock && !(sock = find_socket(instance)))
		return 1;
	snprintf(cmd, sizeof(cmd), "%s%s%s", verb, nargs ? " " : "", nargs ? argv[optind + 1] : "");
	if (request(sock, cmd))
		return 1;

	int rc = 0;
	for (size_t i = 0; i < nlines; i++)
		if (!strncmp(lines[i], "error ", 6)) {
			fprintf(stderr, "%s: %s\n", me, lines[i] + 6);
			rc = 1;
		}
	if (raw) {
		for (size_t i = 0; i < nlines; i++)
			printf("%s\n", lines[i]);
		return rc;
	}
	if (!strcmp(verb, "list"))
		print_list();
	else if (!strcmp(verb, "stats"))
		print_stats();
	else
		for (size_t i = 0; i < nlines; i++) {
			if (!strncmp(lines[i], "info ", 5))
				printf("%s\n", lines[i] + 5);
			else if (!strncmp(lines[i], "ok", 2))
				printf("%s\n", lines[i][2] ? lines[i] + 3 : "ok");
		}
	return rc;
}
