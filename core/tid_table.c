/*
 * tid_table.c - transactions in flight.  Each request a client sends with
 * timeout_ms > 0 gets a router-allocated low-32 TID:
 *     bit 31 = 1 | bit 30 = 0 | 14-bit generation | 16-bit index
 * (bit 31 = 1, bit 30 = 1 is for requests the router sends itself, e.g. SA
 * joins on behalf of many clients: UMX_TID_ROUTER)
 * so a response or timeout finds its client in O(1), and a late answer to
 * a freed slot fails the generation check.  Requests that expect no
 * response get bit 31 = 0 and a counter, so two clients never put the same
 * TID on the wire (the kernel's is_duplicate() would refuse the second).
 * A hash on (agent, client TID, class) finds a client's duplicate
 * outstanding request, which ib_umad_write() refuses with EINVAL.
 */
#include <errno.h>
#include <stdlib.h>

#include "core_int.h"

#define TRACKED 0x80000000u
#define GEN_MASK 0x3fff

int umx_tid_init(struct umx_tid_table *t, uint32_t size)
{
	uint32_t s = 16;
	while (s < size && s < 65536)
		s <<= 1;
	t->e = calloc(s, sizeof(*t->e));
	t->dup_head = calloc(s, sizeof(*t->dup_head));
	if (!t->e || !t->dup_head) {
		free(t->e);
		free(t->dup_head);
		return -ENOMEM;
	}
	t->size = s;
	t->used = 0;
	for (uint32_t i = 0; i < s; i++)
		t->e[i].next_free = i + 1;   /* s = end of list */
	t->free_head = 0;
	t->untracked = 0;
	return 0;
}

void umx_tid_fini(struct umx_tid_table *t)
{
	free(t->e);
	free(t->dup_head);
	t->e = NULL;
	t->dup_head = NULL;
}

static uint32_t dup_hash(const struct umx_tid_table *t, const struct umx_vagent *va,
			 uint32_t client_lo, uint8_t cls)
{
	uint64_t h = (uint64_t)(uintptr_t)va * 0x9e3779b97f4a7c15ull;
	h ^= ((uint64_t)client_lo << 8 | cls) * 0xc2b2ae3d27d4eb4full;
	return (uint32_t)(h >> 40) & (t->size - 1);
}

struct umx_tid_entry *umx_tid_alloc(struct umx_tid_table *t, struct umx_vagent *va, uint32_t client_lo,
				    uint8_t mgmt_class, uint32_t *wire_lo, int *err)
{
	uint32_t b = dup_hash(t, va, client_lo, mgmt_class);

	for (uint32_t i = t->dup_head[b]; i; i = t->e[i - 1].dup_next) {
		struct umx_tid_entry *d = &t->e[i - 1];
		if (d->agent == va && d->client_lo == client_lo && d->mgmt_class == mgmt_class) {
			*err = -EINVAL;
			return NULL;
		}
	}
	if (t->free_head >= t->size) {
		*err = -ENOMEM;
		return NULL;
	}
	uint32_t idx = t->free_head;
	struct umx_tid_entry *e = &t->e[idx];
	t->free_head = e->next_free;
	e->file = va->file;
	e->agent = va;
	e->client_lo = client_lo;
	e->mgmt_class = mgmt_class;
	e->dup_next = t->dup_head[b];
	t->dup_head[b] = idx + 1;
	t->used++;
	va->outstanding++;
	va->file->outstanding++;
	*wire_lo = TRACKED | (uint32_t)(e->gen & GEN_MASK) << 16 | idx;
	return e;
}

uint32_t umx_tid_untracked(struct umx_tid_table *t)
{
	t->untracked = (t->untracked + 1) & ~TRACKED;
	return t->untracked;
}

struct umx_tid_entry *umx_tid_lookup(struct umx_tid_table *t, uint32_t wire_lo, uint8_t mgmt_class)
{
	if ((wire_lo & (TRACKED | UMX_TID_ROUTER)) != TRACKED)
		return NULL;
	uint32_t idx = wire_lo & 0xffff;
	if (idx >= t->size)
		return NULL;
	struct umx_tid_entry *e = &t->e[idx];
	if (!e->file || e->gen != ((wire_lo >> 16) & GEN_MASK) || e->mgmt_class != mgmt_class)
		return NULL;
	return e;
}

void umx_tid_free(struct umx_tid_table *t, struct umx_tid_entry *e)
{
	uint32_t idx = (uint32_t)(e - t->e);
	uint32_t b = dup_hash(t, e->agent, e->client_lo, e->mgmt_class);
	uint32_t *link = &t->dup_head[b];

	while (*link && *link != idx + 1)
		link = &t->e[*link - 1].dup_next;
	if (*link)
		*link = e->dup_next;
	e->agent->outstanding--;
	e->file->outstanding--;
	e->file = NULL;
	e->agent = NULL;
	e->gen = (e->gen + 1) & GEN_MASK;
	e->next_free = t->free_head;
	t->free_head = idx;
	t->used--;
}

void umx_tid_free_agent(struct umx_tid_table *t, struct umx_vagent *va)
{
	for (uint32_t i = 0; i < t->size && va->outstanding; i++)
		if (t->e[i].agent == va)
			umx_tid_free(t, &t->e[i]);
}
