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
	bool rdmacm_answers;         /* rdmacm mode: answer requests (`answers all`); off by
				      * default: QEMU's pipe chardev cannot read answers */
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
	/* systemd instance (cuse/opts.c, udev/): --instance IBDEV:PORT sets
	 * device and port and selects the config's [IBDEV:PORT] section */
	const char *instance;
	bool check_instance;         /* --check-instance: exit 0 if `ports` has it */
	const char *ports;           /* config `ports`: instances to serve (NULL: all) */
	const char *devinfo_dir;     /* CUSE: per-node udev info files ("" = none) */
	/* rdmacm-mux protocol socket (cuse/rdmacm_sock.c): -s PATH, or
	 * --socket-default: /var/run/rdmacm-mux-<ibdev>-<port> */
	const char *rdmacm_socket;
	bool rdmacm_socket_default;
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
	struct mux_sess *dead_next;  /* mux.dead list (removed node) */
};

struct mux_ctl;

struct mux {
	struct mux_opts o;
	struct umx_router *router;
	struct umx_umad_port *port;
	struct mux_node *node;       /* MUX_NODES_MAX slots, o.nodes in use; a
				      * slot with core == NULL was removed */
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
	int argc;                    /* the command line, for `reload` */
	char **argv;
	struct mux_sess *dead;       /* sessions of removed nodes, freed after
				      * the current epoll batch (cuse/nodes_rt.c) */
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
/* node removal: the same for the files of one node */
void mux_node_files_release(struct mux *m, struct mux_node *n);

/* per open file, counted by the front end (cuse/node.c) for `list` */
struct mux_file_stats {
	uint64_t id;                 /* unique within this daemon run */
	pid_t pid;                   /* the process that opened the node */
	uint64_t sent;               /* writes the router accepted */
	uint64_t received;           /* packets read (MADs and returned sends) */
	uint64_t timeouts;           /* returned sends with status ETIMEDOUT */
	uint64_t refused_policy;     /* writes refused: node policy (EPERM) */
	uint64_t refused_rate;       /* writes refused: rate limit (ENOBUFS) */
	uint64_t refused_busy;       /* writes refused: outstanding/transaction limits (ENOMEM) */
	uint64_t refused_other;      /* writes refused: bad request, no agent, port error */
};
struct mux_file;
/* iterate the open files: mux_file_next(m, NULL) is the first */
struct mux_file *mux_file_next(const struct mux *m, const struct mux_file *mf);
struct mux_node *mux_file_mnode(const struct mux_file *mf);
struct umx_file *mux_file_core(const struct mux_file *mf);
const struct mux_file_stats *mux_file_stats(const struct mux_file *mf);

/* ---- sessions (cuse/cuse_mode.c, cuse/fuse_mode.c, cuse/loop.c) ----------- */
void mux_cuse_precheck(void);                /* exits with a message */
int mux_cuse_start(struct mux *m);           /* 0 or exits with a message */
int mux_fuse_start(struct mux *m);
void mux_fuse_stop(struct mux *m);
void mux_cuse_stop(struct mux *m);
/* one CUSE node: start (0, or -1 with a message in err) / stop its session */
int mux_cuse_node_start(struct mux *m, struct mux_node *n, char *err, size_t errlen);
void mux_cuse_node_stop(struct mux *m, struct mux_node *n);
/* FUSE mode: a node's owner/mode changed (reload) */
void mux_fuse_node_changed(struct mux *m, struct mux_node *n);

/* ---- runtime nodes and reload (cuse/nodes_rt.c) --------------------------- */
#define MUX_DEVINFO_DIR "/run/umad-mux/devices"
/* creates node idx (-1: the first free slot); its index, or -1 (err set) */
int mux_node_add(struct mux *m, int idx, char *err, size_t errlen);
/* 0, or -1 (err set) */
int mux_node_remove(struct mux *m, unsigned idx, char *err, size_t errlen);
/* re-reads the config file and the command line; applies node policies,
 * owner/mode and new nodes; messages (one per line) go to out */
int mux_reload(struct mux *m, char *out, size_t outlen);
/* after each epoll batch: frees what removed nodes left behind */
void mux_nodes_gc(struct mux *m);
/* CUSE: the udev info file of a node (udev/92-umad-mux.rules reads it) */
void mux_devinfo_write(struct mux *m, struct mux_node *n);
void mux_devinfo_remove(struct mux *m, struct mux_node *n);
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

/* ---- unix sockets (cuse/unix_sock.c): path check, stale socket removal ---- */
struct sockaddr_un;
int mux_unix_prepare(const char *path, const char *what, struct sockaddr_un *sa, char *err,
		     size_t errlen);

/* ---- sysfs export (cuse/sysfs_export.c) ----------------------------------- */
int mux_sysfs_export(const char *dir, const char *ca, int port, char *err, size_t errlen);

/* epoll tags: every epoll data.ptr points at a struct whose first member is
 * one of these */
enum { EV_PORT = 1, EV_SIGNAL, EV_SESS, EV_CTL_LISTEN, EV_CTL_CLIENT, EV_TICK, EV_RDMACM };

/* ---- rdmacm-mux protocol (cuse/rdmacm_*.c, QEMU pvrdma) ------------------- */
/* opens o.rdmacm_socket (if any): 0, or -1 with a message in err */
int mux_rdmacm_sock_open(struct mux *m, char *err, size_t errlen);
void mux_rdmacm_sock_event(struct mux *m, void *tag, uint32_t events);
/* shutdown: socket clients and rdmacm-mode node files (before the core goes) */
void mux_rdmacm_shutdown(struct mux *m);

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
/* --check-instance: 0 when `ports` includes --instance (or is unset), else 1 */
int mux_opts_check_instance(const struct mux_opts *o);

#endif
