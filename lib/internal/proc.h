/* SPDX-License-Identifier: MIT */
/*
 * internal/proc.h - participants: who is attached, who is alive.
 *
 * Token encoding (32 bits; what every owner field in the region stores):
 *
 *   bits  0..18  low 19 bits of the slot's generation (always odd, so != 0)
 *   bits 19..29  slot index + 1 (1..LFIPC_PROC_SLOTS)
 *   bits 30..31  always 0: free for the caller's flags (WAITERS etc.)
 *
 * Token 0 means "nobody". A token is alive while its slot's generation still
 * equals the token's and the slot's liveness byte is locked by another open
 * file description (the kernel drops that lock when the process dies, so PID
 * reuse and zombies cannot fool it). A dead token stays dead: the slot moves
 * to a new generation before it is reused (19 bits: the same token value
 * comes back only after 2^18 registrations of one slot).
 *
 * Only proc.c decides liveness.
 */
#ifndef LFIPC_INTERNAL_PROC_H
#define LFIPC_INTERNAL_PROC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal/region.h"

#define LFIPC_TOKEN_MASK UINT32_C(0x3fffffff)
#define LFIPC_TOKEN_GEN_BITS 19
#define LFIPC_TOKEN_GEN_MASK ((UINT32_C(1) << LFIPC_TOKEN_GEN_BITS) - 1)

extern _Atomic unsigned lfipc__fork_epoch;

int lfipc__proc_register(lfipc_region *r);   /* at open/create: 0/-EUSERS/... */
void lfipc__proc_unregister(lfipc_region *r); /* at close */
void lfipc__proc_track(lfipc_region *r);      /* add to the atfork list */
void lfipc__proc_untrack(lfipc_region *r);

int lfipc__proc_reregister(lfipc_region *r, uint32_t *tok);

/*
 * This process's token in r, registering first if this is a fork child that
 * has not done so yet. Return: 0 and *tok; -EUSERS no free slot; other
 * negative errno from open/fcntl.
 */
/* This process's token in r if it has one already (false in a fork child
 * that has not registered yet): never registers, never a system call. */
static inline bool lfipc__self_known(lfipc_region *r, uint32_t *tok)
{
	/* P1: acquire, pairs with P2 in lfipc__proc_reregister(): the token
	 * read below belongs to this fork epoch. */
	if (atomic_load_explicit(&r->fork_epoch, memory_order_acquire) !=
	    atomic_load_explicit(&lfipc__fork_epoch, memory_order_relaxed))
		return false;
	/* P3: relaxed, ordered by P1. */
	*tok = atomic_load_explicit(&r->token, memory_order_relaxed);
	return *tok != 0;
}

static inline int lfipc__self(lfipc_region *r, uint32_t *tok)
{
	if (lfipc__self_known(r, tok))
		return 0;
	return lfipc__proc_reregister(r, tok);
}

/* Is the participant behind token alive? Tokens that are malformed, refer to
 * a slot out of range, or to an old generation are dead. Costs one
 * F_OFD_GETLK (about 0.2 us) when the generation matches; a token found dead
 * is retired so later checks of it make no system call. */
bool lfipc__token_alive(lfipc_region *r, uint32_t token);

/*
 * A tag of the calling thread, unique among the threads this process has
 * run (a counter, never 0; 2^32 - 1 thread creations before it wraps). A
 * fork child's thread keeps its parent thread's tag, which is enough: its
 * token differs. For owner words that name a thread of a participant
 * (token, tag), e.g. a queue's single-producer role.
 */
uint32_t lfipc__thread_tag_slow(void);
extern _Thread_local uint32_t lfipc__thread_tag_v
    __attribute__((tls_model("initial-exec")));

static inline uint32_t lfipc__thread_tag(void)
{
	uint32_t t = lfipc__thread_tag_v;

	return t ? t : lfipc__thread_tag_slow();
}

/* Count live participants (stats). */
unsigned lfipc__proc_count_live(lfipc_region *r);

#endif /* LFIPC_INTERNAL_PROC_H */
