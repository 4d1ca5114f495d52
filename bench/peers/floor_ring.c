/* SPDX-License-Identifier: MIT */
/*
 * bare SPSC ring: the floor of a one-producer one-consumer ring, run by the
 * same runners as every system. RCAP slots of the message size, contiguous
 * (as ck_ring's and rte_ring's elements), in MAP_SHARED memory written
 * once at open (so that no run pays first-touch page faults), a head and a
 * tail index on lines of their own; each
 * side keeps a private copy of the other's index and re-reads the shared
 * one only when its copy says full (producer) or empty (consumer), as the
 * fast SPSC rings do. No crash safety, no blocking, no clear.
 *
 * Shared words, per direction: tail = messages published (written by the
 * producer only), head = messages consumed (written by the consumer only).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "../bench.h"

struct ring {
	_Alignas(64) _Atomic uint64_t tail;
	_Alignas(64) _Atomic uint64_t head;
	_Alignas(64) char slot[]; /* RCAP * msz */
};

struct fr {
	struct ring *r[2]; /* shared */
	size_t msz, size;
	uint64_t head_copy[2], tail_copy[2];
};

static void *fr_open(size_t msz)
{
	struct fr *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->msz = msz;
	c->size = sizeof(struct ring) + RCAP * msz;
	for (int d = 0; d < 2; d++) {
		c->r[d] = shmem(c->size);
		memset(c->r[d]->slot, 0, RCAP * msz);
	}
	return c;
}

static int fr_send(void *ch, int d, const void *m, size_t n)
{
	struct fr *c = ch;
	struct ring *r = c->r[d];
	/* R1: relaxed: only this producer writes tail. */
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);

	while (t - c->head_copy[d] >= RCAP) {
		/* R2: acquire: the slot is free; pairs with R4. */
		c->head_copy[d] =
		    atomic_load_explicit(&r->head, memory_order_acquire);
		if (t - c->head_copy[d] >= RCAP && bench_spin())
			return -1;
	}
	memcpy(r->slot + t % RCAP * c->msz, m, n);
	/* R3: release: publishes the slot; pairs with R5. */
	atomic_store_explicit(&r->tail, t + 1, memory_order_release);
	return 0;
}

static int fr_recv(void *ch, int d, void *m, size_t n)
{
	struct fr *c = ch;
	struct ring *r = c->r[d];
	/* R6: relaxed: only this consumer writes head. */
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);

	while (c->tail_copy[d] == h) {
		/* R5: acquire: the slot is written; pairs with R3. */
		c->tail_copy[d] =
		    atomic_load_explicit(&r->tail, memory_order_acquire);
		if (c->tail_copy[d] == h && bench_spin())
			return -1;
	}
	memcpy(m, r->slot + h % RCAP * c->msz, n);
	/* R4: release: the slot may be reused; pairs with R2. */
	atomic_store_explicit(&r->head, h + 1, memory_order_release);
	return 0;
}

static void fr_close(void *ch)
{
	struct fr *c = ch;

	shmem_free(c->r[0], c->size);
	shmem_free(c->r[1], c->size);
	free(c);
}

const struct peer peer_floor_ring = {
    .name = "bare SPSC ring (floor)",
    .wait = "busy",
    .flags = PF_CHAN | PF_FLOOR,
    .open = fr_open,
    .send = fr_send,
    .recv = fr_recv,
    .close = fr_close,
};
