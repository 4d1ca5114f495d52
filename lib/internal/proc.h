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
#include <sys/types.h>

#include "internal/death.h"
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
static inline int lfipc__self(lfipc_region *r, uint32_t *tok)
{
	/* P1: acquire, pairs with P2 in lfipc__proc_reregister(): the token
	 * read below belongs to this fork epoch. */
	if (atomic_load_explicit(&r->fork_epoch, memory_order_acquire) ==
	    atomic_load_explicit(&lfipc__fork_epoch, memory_order_relaxed)) {
		/* P3: relaxed, ordered by P1. */
		*tok = atomic_load_explicit(&r->token, memory_order_relaxed);
		/* P4: relaxed; only this process writes it (death.c). A
		 * thread other than the one whose robust list carries our
		 * death word takes the slow path once, which marks the slot
		 * multi-threaded before it hands out the token. */
		uintptr_t t = atomic_load_explicit(&r->death_thread,
						   memory_order_relaxed);
		if (*tok != 0 && (t == lfipc__thread_id() ||
				  t == LFIPC_DEATH_ANY_THREAD))
			return 0;
	}
	return lfipc__proc_reregister(r, tok);
}

/* Is the participant behind token alive? Tokens that are malformed, refer to
 * a slot out of range, or to an old generation are dead. Costs one
 * F_OFD_GETLK (about 0.2 us) when the generation matches; a token found dead
 * is retired so later checks of it make no system call. */
bool lfipc__token_alive(lfipc_region *r, uint32_t token);

/* Count live participants (stats). */
unsigned lfipc__proc_count_live(lfipc_region *r);

/* The pid its slot records for token (as its holder saw it: in another
 * pid namespace it names another process), or 0 for a bad token. A hint:
 * a caller that opens a pidfd from it must confirm the token alive after
 * pidfd_open (then the pid still named the holder when the pidfd was
 * made: the OFD lock drops before the process can be reaped). */
pid_t lfipc__token_pid(lfipc_region *r, uint32_t token);

#endif /* LFIPC_INTERNAL_PROC_H */
