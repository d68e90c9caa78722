/*
 * front.h - umad-mux's front end (cuse/): the daemon state shared by the
 * CUSE and FUSE wiring, the node handlers both use, the control socket and
 * the sysfs export.  Everything runs on the one epoll loop thread.
 */
#ifndef UMX_CUSE_FRONT_H
#define UMX_CUSE_FRONT_H

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <umx/core.h>
#include <umx/port.h>

#define MUX_NAME_MAX 64
#define MUX_PARKED_MAX 16        /* parked blocking reads per open file */
#define MUX_READ_MAX (1u << 20)  /* largest read buffer we allocate */

enum mux_mode { MUX_MODE_CUSE, MUX_MODE_FUSE };
enum mux_proto { MUX_PROTO_UMAD, MUX_PROTO_RDMACM };

#define MUX_NODES_MAX 256
/* per-node settings (cuse/node_conf.c) */
struct mux_node_conf {
	struct umx_node_policy pol;
	enum mux_proto protocol;
};

struct mux_opts {
	const char *device;          /* NULL: libibumad's default */
	int port;                    /* 0: default */
	unsigned nodes;
	const char *prefix;
	enum mux_mode mode;
	const char *fuse_dir;
	bool foreground;
	int verbose;
	const char *config;
	const char *control;
	const char *sysfs_export;
	unsigned mode_bits;          /* permission bits of the nodes */
	uid_t uid;
	gid_t gid;
	struct umx_limits lim;       /* 0 fields: the core's defaults */
	struct mux_node_conf node[MUX_NODES_MAX];
};

struct mux;
struct mux_sess;

/* one node: /dev/<prefix>-N (CUSE) or <fuse-dir>/<prefix>-N (FUSE) */
struct mux_node {
	struct mux *mux;
	unsigned index;
	char name[MUX_NAME_MAX];
	struct umx_node *core;
	struct mux_sess *sess;       /* CUSE: its own session */
	bool up;                     /* CUSE: init_done ran */
};

/* one FUSE/CUSE session in the loop */
struct mux_sess {
	int kind;                    /* first member: epoll tag (EV_SESS) */
	struct mux *mux;
	struct fuse_session *se;
	struct fuse_buf buf;
	int fd;
	struct mux_node *node;       /* CUSE: the node; FUSE: NULL */
	bool mounted;                /* FUSE: needs unmount */
};

struct mux_ctl;

struct mux {
	struct mux_opts o;
	struct umx_router *router;
	struct umx_umad_port *port;
	struct mux_node *node;       /* o.nodes entries */
	struct mux_sess **sess;
	unsigned nsess;
	unsigned nodes_up;
	int epfd;
	bool stop;
	bool ready;
	int ready_pipe;              /* background start: tells the parent; -1 */
	struct mux_ctl *ctl;
	struct mux_file *files;      /* every open file (shutdown) */
	unsigned nfiles;
	uint64_t parked_refused;     /* reads refused: parked-read limit */
};

/* ---- node handlers (cuse/node.c), shared by CUSE and FUSE ---------------- */
extern const struct umx_events mux_events;
void mux_h_open(fuse_req_t req, struct mux_node *n, struct fuse_file_info *fi);
void mux_h_release(fuse_req_t req, struct fuse_file_info *fi);
void mux_h_read(fuse_req_t req, size_t size, struct fuse_file_info *fi);
void mux_h_write(fuse_req_t req, const char *buf, size_t size, struct fuse_file_info *fi);
void mux_h_poll(fuse_req_t req, struct fuse_file_info *fi, struct fuse_pollhandle *ph);
void mux_h_ioctl(fuse_req_t req, unsigned int cmd, struct fuse_file_info *fi, unsigned flags,
		 const void *in_buf, size_t in_bufsz, size_t out_bufsz);
/* daemon shutdown: answer parked reads (ENODEV), release every file */
void mux_files_shutdown(struct mux *m);

/* ---- sessions (cuse/cuse_mode.c, cuse/fuse_mode.c, cuse/loop.c) ----------- */
void mux_cuse_precheck(void);                /* exits with a message */
int mux_cuse_start(struct mux *m);           /* 0 or exits with a message */
int mux_fuse_start(struct mux *m);
void mux_fuse_stop(struct mux *m);
void mux_cuse_stop(struct mux *m);
/* adds a session to the loop (fd made non-blocking) */
int mux_sess_add(struct mux *m, struct mux_sess *s);
/* readable session fd: process what is there; false when the session ended */
bool mux_sess_process(struct mux_sess *s);
void mux_ready_check(struct mux *m);
/* FUSE-mode readiness hook (INIT processed) */
void mux_fuse_inited(struct mux *m);

/* ---- control socket (cuse/control.c) -------------------------------------- */
/* protocol: see control.c */
int mux_ctl_open(struct mux *m, const char *path, char *err, size_t errlen);
void mux_ctl_event(struct mux *m, void *tag, uint32_t events);
void mux_ctl_close(struct mux *m);

/* ---- sysfs export (cuse/sysfs_export.c) ----------------------------------- */
int mux_sysfs_export(const char *dir, const char *ca, int port, char *err, size_t errlen);

/* epoll tags: every epoll data.ptr points at a struct whose first member is
 * one of these */
enum { EV_PORT = 1, EV_SIGNAL, EV_SESS, EV_CTL_LISTEN, EV_CTL_CLIENT, EV_TICK };

/* per-node settings and limits (cuse/node_conf.c); 0 or -1 (message printed);
 * mux_limit_set returns 1 for a key that is not a limit */
int mux_node_conf_set(struct mux_opts *o, unsigned idx, const char *key, const char *val,
		      const char *where);
int mux_limit_set(struct mux_opts *o, const char *key, const char *val, const char *where);
int mux_node_conf_arg(struct mux_opts *o, const char *arg);
void mux_node_conf_defaults(struct mux_opts *o);

/* parse helpers (cuse/opts.c) */
int mux_opts_parse(struct mux_opts *o, int argc, char **argv);
void mux_opts_free(void);

#endif
