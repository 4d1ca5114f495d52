/* SPDX-License-Identifier: MIT */
/* mutex.c - robust process-shared futex mutex; see internal/mutex.h. */
#include "config.h"

#include <errno.h>

#include "internal/mutex.h"

int lfipc__mutex_ready(void *p, struct lfipc_sleep *s, bool check)
{
	struct lfipc_mutex_waiter *c = p;
	struct lfipc_cas_bound b = LFIPC_CAS_BOUND_INIT;
	/* M3: seq_cst: the W3 load of the wait protocol (wait.h). */
	uint32_t v = atomic_load(c->w);
	int rc = 0;

	/* Every `continue` below follows a failed CAS: a peer that rewrites
	 * the word without end (free, or naming nobody or a dead owner)
	 * ends the loop at the lock's deadline (-ETIMEDOUT; -EAGAIN for
	 * LFIPC_NOWAIT), else after about a second (-EPROTO): the CAS bound
	 * of internal/wait.h. */
	for (;; rc = lfipc__cas_retry(&b, c->dl)) {
		uint32_t owner;

		if (rc < 0)
			return rc;
		owner = LFIPC_MUTEX_OWNER(v);
		if (v == 0) {
			/* M4: seq_cst CAS (acquire pairs with M2). */
			if (atomic_compare_exchange_strong(c->w, &v, c->self))
				return 1;
			s->lost = true;
			continue; /* v reloaded by the failed CAS */
		}
		/* Sleepers sleep on the wait queue's seq (s->word NULL), not
		 * on the word: the release wakes through lfipc__wake_one,
		 * which skips the wake while a woken sleeper has not looked
		 * yet (internal/wait.h). */
		if (owner == c->self) {
			if (!c->siblings)
				return -EDEADLK;
			/* Another thread of this process holds it: sleep
			 * until it releases; nobody's death to watch. */
			return 0;
		}
		/* owner 0 in a non-zero word (bits 30..31 only) names
		 * nobody: no death word to sleep on, no verdict to wait
		 * for; taken over at once, like a dead owner's word. */
		if ((owner == 0 || check) &&
		    !lfipc__token_alive(c->r, owner)) {
			/* M5: seq_cst CAS (acquire: we inherit whatever the
			 * dead owner left; pairs with its last release). */
			if (atomic_compare_exchange_strong(c->w, &v, c->self))
				return -EOWNERDEAD;
			continue;
		}
		s->partner[0] = owner;
		return 0;
	}
}

int lfipc__mutex_lock(lfipc_region *r, _Atomic uint32_t *w,
		      struct lfipc_wq *wq, uint32_t self, lfipc_deadline dl,
		      unsigned flags, bool siblings)
{
	struct lfipc_mutex_waiter c = {r, w, self, siblings, dl};

	if (lfipc__mutex_trylock_fast(w, self))
		return 0;
	if (dl == LFIPC_DL_NOW)
		flags |= LFIPC_WAIT_NOSPIN;
	return lfipc__wait_until(r, wq, lfipc__mutex_ready, &c, dl, flags);
}

int lfipc__mutex_unlock(lfipc_region *r, _Atomic uint32_t *w,
			struct lfipc_wq *wq, uint32_t self)
{
	/* M6: relaxed: only the owner changes the word while the owner
	 * lives, so this check cannot go stale. */
	uint32_t v = atomic_load_explicit(w, memory_order_relaxed);

	if (LFIPC_MUTEX_OWNER(v) != self || self == 0)
		return -EPERM;
	lfipc__mutex_release(r, w, wq);
	return 0;
}

bool lfipc__mutex_owner_dead(lfipc_region *r, _Atomic uint32_t *w)
{
	/* M7: relaxed; a snapshot for a diagnostic decision. */
	uint32_t v = atomic_load_explicit(w, memory_order_relaxed);

	return LFIPC_MUTEX_OWNER(v) != 0 &&
	       !lfipc__token_alive(r, LFIPC_MUTEX_OWNER(v));
}
