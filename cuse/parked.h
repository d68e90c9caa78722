/*
 * parked.h - blocking reads parked as fuse_req_t, answered later, for every
 * kind of open file the daemon serves (umad files, rdmacm-mode opens).
 */
#ifndef UMX_CUSE_PARKED_H
#define UMX_CUSE_PARKED_H

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stddef.h>

struct mux_park_list;

struct mux_parked {
	struct mux_parked *next;
	struct mux_park_list *list;
	fuse_req_t req;
	size_t size;                 /* the read's buffer size */
	bool sync_intr;              /* interrupt callback ran inside registration */
};

/* one open file's parked reads, oldest first */
struct mux_park_list {
	struct mux_parked *head;
	unsigned n;
};

/*
 * Parks req (at most MUX_PARKED_MAX per list).  0: parked, answered later
 * with mux_park_pop(); otherwise it was answered here and the errno is
 * returned negated: -EINTR (already interrupted), -EBUSY (list full),
 * -ENOMEM.  An interrupted parked read is answered with EINTR by itself.
 */
int mux_park(struct mux_park_list *l, fuse_req_t req, size_t size);
/* the oldest parked read, unlinked: the caller replies to ->req and frees it */
struct mux_parked *mux_park_pop(struct mux_park_list *l);
/* answers every parked read with err (release, shutdown) */
void mux_park_fail_all(struct mux_park_list *l, int err);

#endif
