/*
 * parked.c - blocking reads parked as fuse_req_t (see parked.h).
 *
 * libfuse calls the interrupt callback when the kernel interrupts a parked
 * read (the reader got a signal).  It may also run synchronously inside
 * fuse_req_interrupt_func() when the request was already interrupted; then
 * libfuse holds the request's lock, and replying there would free the
 * request under that lock: mux_park() notices (registering) and replies
 * after the registration returned.
 */
#include <errno.h>
#include <stdlib.h>

#include "front.h"
#include "parked.h"

static struct mux_parked *registering;

static void unlink_parked(struct mux_parked *p)
{
	struct mux_park_list *l = p->list;
	for (struct mux_parked **pp = &l->head; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			l->n--;
			return;
		}
	}
}

static void on_interrupt(fuse_req_t req, void *data)
{
	struct mux_parked *p = data;

	if (p == registering) {
		p->sync_intr = true;
		return;
	}
	unlink_parked(p);
	free(p);
	fuse_reply_err(req, EINTR);
}

int mux_park(struct mux_park_list *l, fuse_req_t req, size_t size)
{
	struct mux_parked *p, **pp;
	int err = 0;

	/* checked before the callback is installed (libfuse would call it
	 * synchronously under the request lock) */
	if (fuse_req_interrupted(req))
		err = EINTR;
	else if (l->n >= MUX_PARKED_MAX)   /* more blocked readers than a client pattern */
		err = EBUSY;
	else if (!(p = calloc(1, sizeof(*p))))
		err = ENOMEM;
	if (err) {
		fuse_reply_err(req, err);
		return -err;
	}
	p->list = l;
	p->req = req;
	p->size = size;
	for (pp = &l->head; *pp; pp = &(*pp)->next)
		;
	*pp = p;
	l->n++;
	registering = p;
	fuse_req_interrupt_func(req, on_interrupt, p);
	registering = NULL;
	if (p->sync_intr) {
		unlink_parked(p);
		free(p);
		fuse_reply_err(req, EINTR);
	}
	return 0;
}

struct mux_parked *mux_park_pop(struct mux_park_list *l)
{
	struct mux_parked *p = l->head;
	if (p)
		unlink_parked(p);
	return p;
}

void mux_park_fail_all(struct mux_park_list *l, int err)
{
	struct mux_parked *p;
	while ((p = mux_park_pop(l))) {
		fuse_reply_err(p->req, err);
		free(p);
	}
}
