/* SPDX-License-Identifier: MIT */
/*
 * internal/mutex.h - the robust process-shared futex mutex that the region
 * lock and the public Lock/RLock are built on.
 *
 * Word encoding (32 bits):
 *   0                    free
 *   bits  0..29          owner token (internal/proc.h)
 *   bits 30..31          0 (a word with them set is taken over like any
 *                        other owner's: the whole word is replaced by CAS;
 *                        with owner bits 0 as well it names nobody, and
 *                        the first waiter takes it over, -EOWNERDEAD)
 *
 * Ownership changes only by one CAS that writes the new owner's token into
 * the word (never "take, then record who"), so there is no instant at which
 * the owner is unknown. Waiting goes through the wait layer (wait.c): a
 * waiter announces itself on the lock's wait queue (no WAITERS bit in the
 * word), sleeps on the queue's event count together with the owner's
 * death word, and a dead owner's word is taken over by CAS, the taker
 * being told -EOWNERDEAD. The releaser exchanges the word to 0 (K1; the
 * Lock's fast release instead CASes it from exactly its token to 0, which
 * checks and releases in one RMW, lfipc__mutex_release_mine) and
 * wakes one sleeper only when the wait queue says someone sleeps (K2)
 * and no sleeper it woke before is still on its way (K3,
 * lfipc__wake_one): the releaser re-takes the lock at no cost meanwhile,
 * as glibc's mutex lets it. A waiter spins first, and stops at once when
 * it saw the word free but lost it to another thread (the releaser
 * re-taking it): a spinner only slows a winner that is running.
 */
#ifndef LFIPC_INTERNAL_MUTEX_H
#define LFIPC_INTERNAL_MUTEX_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal/proc.h"
#include "internal/wait.h"
#include "internal/region.h"

#define LFIPC_MUTEX_OWNER(v) ((v) & LFIPC_TOKEN_MASK)

/*
 * Acquire *w for token self until deadline dl (lfipc__deadline()).
 * wq: the word's wait queue (zeroed shared memory next to the word).
 * siblings: true when several threads share self (a Lock: the word holds a
 * process token); a thread that finds its own token in the word then
 * sleeps until the sibling releases it. false: that is -EDEADLK (the
 * region lock, whose threads serialise on a process-local mutex first).
 * flags: LFIPC_WAIT_* (wait.h).
 * Return: 0; -EOWNERDEAD acquired, the previous owner died holding it;
 * -EAGAIN not free and dl is LFIPC_DL_NOW (a dead owner's word is still
 * taken over: -EOWNERDEAD); -ETIMEDOUT; -EINTR (LFIPC_WAIT_EINTR only);
 * -EDEADLK self owns it and !siblings.
 */
int lfipc__mutex_lock(lfipc_region *r, _Atomic uint32_t *w,
		      struct lfipc_wq *wq, uint32_t self, lfipc_deadline dl,
		      unsigned flags, bool siblings);

/*
 * The mutex's readiness callback (internal/wait.h), for a wait-for-any
 * that includes locks: ctx is a struct lfipc_mutex_waiter. Returns 1 when
 * it took the word, -EOWNERDEAD when it took it from a dead owner.
 */
struct lfipc_mutex_waiter {
	lfipc_region *r;
	_Atomic uint32_t *w;
	uint32_t self;
	bool siblings;
	lfipc_deadline dl; /* the lock's deadline: bounds the CAS loop */
};
int lfipc__mutex_ready(void *ctx, struct lfipc_sleep *s, bool check);

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
 * Release *w, which the caller holds (it saw its token in the word), and
 * wake one sleeper of wq if one is due (no call when nobody sleeps).
 */
static inline void lfipc__mutex_release(lfipc_region *r, _Atomic uint32_t *w,
					struct lfipc_wq *wq)
{
	/* M2 = K1 of the wait protocol: seq_cst (release pairs with M1/M4/
	 * M5; seq_cst orders it before K2). */
	atomic_store(w, 0);
	/* K2: seq_cst, after K1; looked at here so that the uncontended
	 * release makes no call (lfipc__wake loads it again). */
	if (atomic_load(&wq->waiters))
		lfipc__wake_one(r, wq);
}

/*
 * Release *w if it is exactly self (the caller's token, which the caller
 * took). Return: 0 released, nobody sleeps; 1 released, and a sleeper of
 * wq may be due a wake: the caller calls lfipc__wake_one(r, wq) (left to
 * it so that the uncontended release needs no stack frame for the call);
 * -EPERM the word is not self (rewritten by a peer, or flag bits set): it
 * is left as it is, for the caller's general path to judge.
 */
static inline int lfipc__mutex_release_mine(_Atomic uint32_t *w,
					    struct lfipc_wq *wq, uint32_t self)
{
	/* M2' = K1 of the wait protocol, as M2: a seq_cst CAS self -> 0
	 * (release pairs with M1/M4/M5; seq_cst orders it before K2). The
	 * check that the word is ours and the release are one RMW. */
	if (!atomic_compare_exchange_strong(w, &self, 0))
		return -EPERM;
	/* K2: seq_cst, after K1 (as in lfipc__mutex_release). */
	return atomic_load(&wq->waiters) != 0;
}

/*
 * Release *w held by self and wake one sleeper of wq if any (no system
 * call when nobody sleeps). Return: 0; -EPERM self does not hold it.
 */
int lfipc__mutex_unlock(lfipc_region *r, _Atomic uint32_t *w,
			struct lfipc_wq *wq, uint32_t self);

/* Owner of *w is a dead participant (a takeover would succeed)? */
bool lfipc__mutex_owner_dead(lfipc_region *r, _Atomic uint32_t *w);

#endif /* LFIPC_INTERNAL_MUTEX_H */
