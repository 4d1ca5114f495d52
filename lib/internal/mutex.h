/* SPDX-License-Identifier: MIT */
/*
 * internal/mutex.h - the robust process-shared futex mutex that the region
 * lock and the public Lock/RLock are built on.
 *
 * Word encoding (32 bits):
 *   0                    free
 *   bits  0..29          owner token (internal/proc.h)
 *   bit  30              OWNER_DIED: reserved for callers that mark a word
 *                        whose owner was found dead (never set here)
 *   bit  31              WAITERS: someone may sleep on the word
 *
 * Ownership changes only by one CAS that writes the new owner's token into
 * the word (never "take, then record who"), so there is no instant at which
 * the owner is unknown. A waiter sleeps in slices (LFIPC_SLICE_NS) and
 * checks the owner's liveness between slices; a dead owner's word is taken
 * over by CAS and the taker is told -EOWNERDEAD. A thread that wakes takes
 * the word with WAITERS set (Drepper's rule), so later sleepers are never
 * forgotten.
 */
#ifndef LFIPC_INTERNAL_MUTEX_H
#define LFIPC_INTERNAL_MUTEX_H

#include <stdatomic.h>
#include <stdint.h>

#include "internal/futex.h"
#include "internal/proc.h"
#include "internal/region.h"

#define LFIPC_MUTEX_WAITERS UINT32_C(0x80000000)
#define LFIPC_MUTEX_OWNER_DIED UINT32_C(0x40000000)
#define LFIPC_MUTEX_OWNER(v) ((v) & LFIPC_TOKEN_MASK)

/*
 * Acquire *w for token self until deadline.
 * spin: how many relaxed polls to make before the first sleep while the
 * owner runs and nobody sleeps yet (0: none).
 * nsleep: NULL, or a counter of the threads asleep on *w (zero-initialised
 * shared memory next to the word). With it, a thread that slept and then
 * takes the word sets WAITERS only when others still sleep, instead of
 * always (Drepper's rule), so a two-party hand-off does not stay in
 * sleep-and-wake mode once one sleep happened; and an arriving thread
 * keeps spinning past a WAITERS bit that no sleeper stands behind. A
 * sleeper that dies leaves the count too high: then every taker sets
 * WAITERS, which is the behaviour without a counter (correct, slower).
 * Return: 0; -EOWNERDEAD acquired, the previous owner died holding it;
 * -ETIMEDOUT the deadline passed (callers turn this into -EAGAIN for
 * LFIPC_NOWAIT; a NOWAIT attempt still takes over a dead owner's word);
 * -EDEADLK self already owns it.
 */
int lfipc__mutex_lock(lfipc_region *r, _Atomic uint32_t *w,
		      _Atomic uint32_t *nsleep, uint32_t self,
		      lfipc_deadline deadline, unsigned spin);

/* After a thread that slept on *w took it (CAS without WAITERS): set
 * WAITERS if others still sleep. All seq_cst: the taker's CAS then load of
 * nsleep against a sleeper's increment then WAITERS-setting CAS (Dekker),
 * so one of them sees the other and no sleeper is forgotten. */
static inline void lfipc__mutex_mark_sleepers(_Atomic uint32_t *w,
					      _Atomic uint32_t *nsleep)
{
	if (atomic_load(nsleep) != 0)
		atomic_fetch_or(w, LFIPC_MUTEX_WAITERS);
}

/*
 * A thread that slept on *w and now gives up (its deadline passed) may have
 * consumed the wake-up of a release that was meant for whoever takes the
 * word next: an owner that re-took the word on the fast path (no WAITERS)
 * would then release it without waking the sleepers left behind, who wait
 * up to a slice. Pass the wake-up on: if others may sleep (nsleep != 0, or
 * unknown without nsleep), set WAITERS while the word is owned, so its
 * release wakes one; wake one at once if the word is free. All seq_cst:
 * the same Dekker pairing as lfipc__mutex_mark_sleepers.
 */
void lfipc__mutex_pass_on(_Atomic uint32_t *w, _Atomic uint32_t *nsleep);

/* Fast path of lfipc__mutex_lock; returns true when acquired. */
static inline bool lfipc__mutex_trylock_fast(_Atomic uint32_t *w,
					     uint32_t self)
{
	uint32_t zero = 0;

	/* M1: acquire on success, pairs with M2 in lfipc__mutex_unlock(). */
	return atomic_compare_exchange_strong_explicit(
		w, &zero, self, memory_order_acquire, memory_order_relaxed);
}

/*
 * Release *w held by self. Return: 0; -EPERM self does not hold it.
 * Wakes one sleeper when WAITERS was set; touches nothing but the word.
 */
int lfipc__mutex_unlock(_Atomic uint32_t *w, uint32_t self);

/* Owner of *w is a dead participant (a takeover would succeed)? */
bool lfipc__mutex_owner_dead(lfipc_region *r, _Atomic uint32_t *w);

#endif /* LFIPC_INTERNAL_MUTEX_H */
