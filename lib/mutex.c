/* SPDX-License-Identifier: MIT */
/* mutex.c - robust process-shared futex mutex; see internal/mutex.h. */
#include "config.h"

#include <errno.h>

#include "internal/mutex.h"

int lfipc__mutex_lock(lfipc_region *r, _Atomic uint32_t *w,
		      _Atomic uint32_t *nsleep, uint32_t self,
		      lfipc_deadline deadline, unsigned spin)
{
	/* Without nsleep: WAITERS once we have slept (Drepper's rule). */
	uint32_t extra = 0;
	uint32_t v;
	bool checked = false, slept = false;
	/* Sleep slices start short and double up to LFIPC_SLICE_NS: an owner
	 * that dies soon after we start waiting (the usual case: it died in
	 * its critical section) is noticed within about a millisecond, and a
	 * long wait still costs only 100 wake-ups a second. */
	int64_t slice = LFIPC_SLICE_NS / 16;

	if (lfipc__mutex_trylock_fast(w, self))
		return 0;
	/* Spin while the owner runs and nobody sleeps yet: a hand-off on
	 * another CPU costs ~0.2 us this way, ~20-70 us through a sleep. */
	if (lfipc__ncpus() > 1) {
		for (unsigned i = 0; i < spin; i++) {
			/* M3: relaxed poll; the CAS below acquires. */
			v = atomic_load_explicit(w, memory_order_relaxed);
			if (v == 0 && lfipc__mutex_trylock_fast(w, self))
				return 0;
			/* M5: relaxed; only decides whether to go on
			 * spinning (a WAITERS bit no sleeper stands behind
			 * does not stop us). */
			if ((v & LFIPC_MUTEX_WAITERS) &&
			    (!nsleep || atomic_load_explicit(
					    nsleep, memory_order_relaxed)))
				break;
			lfipc__cpu_relax();
		}
	}
	for (;;) {
		/* M7: relaxed guess; every decision below is a CAS on w. */
		v = atomic_load_explicit(w, memory_order_relaxed);
		if (LFIPC_MUTEX_OWNER(v) == 0) {
			/* M1': seq_cst (acquire pairs with M2; seq_cst for
			 * the Dekker pairing in lfipc__mutex_mark_sleepers).
			 * Keep WAITERS. */
			if (atomic_compare_exchange_weak(
				w, &v,
				self | extra | (v & LFIPC_MUTEX_WAITERS))) {
				if (slept && nsleep)
					lfipc__mutex_mark_sleepers(w, nsleep);
				return 0;
			}
			continue;
		}
		if (LFIPC_MUTEX_OWNER(v) == self)
			return -EDEADLK;
		/* Check the owner's liveness before the first sleep and
		 * after every slice (not on every spin: it is a syscall). */
		if (!checked && !lfipc__token_alive(r, LFIPC_MUTEX_OWNER(v))) {
			/* M4: seq_cst (acquire: we inherit whatever the dead
			 * owner left; pairs with its last release store). */
			if (atomic_compare_exchange_strong(
				w, &v,
				self | (v & LFIPC_MUTEX_WAITERS) | extra)) {
				if (slept && nsleep)
					lfipc__mutex_mark_sleepers(w, nsleep);
				return -EOWNERDEAD;
			}
			continue;
		}
		checked = true;
		if (lfipc__expired(deadline)) {
			if (slept)
				lfipc__mutex_pass_on(w, nsleep);
			return -ETIMEDOUT;
		}
		/* Count ourselves as a sleeper before announcing it in the
		 * word (seq_cst, the other half of the Dekker pairing). */
		if (nsleep)
			atomic_fetch_add(nsleep, 1);
		if (!(v & LFIPC_MUTEX_WAITERS)) {
			/* M6: seq_cst, see above. */
			if (!atomic_compare_exchange_strong(
				w, &v, v | LFIPC_MUTEX_WAITERS)) {
				if (nsleep)
					atomic_fetch_sub(nsleep, 1);
				continue;
			}
			v |= LFIPC_MUTEX_WAITERS;
		}
		if (!nsleep)
			extra = LFIPC_MUTEX_WAITERS;
		slept = true;
		if (lfipc__futex_wait(w, v,
				      lfipc__slice_end(deadline, slice)) ==
		    -ETIMEDOUT) {
			checked = false; /* a slice ended: look at the owner */
			if (slice < LFIPC_SLICE_NS)
				slice *= 2;
		}
		if (nsleep)
			atomic_fetch_sub(nsleep, 1);
		if (lfipc__expired(deadline)) {
			/* M8: relaxed; only picks whose liveness to check
			 * before giving up (no data is taken). */
			v = atomic_load_explicit(w, memory_order_relaxed);
			if (LFIPC_MUTEX_OWNER(v) != 0 &&
			    lfipc__token_alive(r, LFIPC_MUTEX_OWNER(v))) {
				lfipc__mutex_pass_on(w, nsleep);
				return -ETIMEDOUT;
			}
			checked = false;
		}
	}
}

void lfipc__mutex_pass_on(_Atomic uint32_t *w, _Atomic uint32_t *nsleep)
{
	uint32_t v;

	/* seq_cst: a sleeper counts itself (fetch_add) before it sleeps. */
	if (nsleep && atomic_load(nsleep) == 0)
		return; /* nobody else sleeps: nothing to pass on */
	/* M9: seq_cst load and CAS; the CAS only adds WAITERS (no data is
	 * published), seq_cst for the pairing with the owner's M2. */
	v = atomic_load(w);
	while (LFIPC_MUTEX_OWNER(v) != 0 && !(v & LFIPC_MUTEX_WAITERS)) {
		if (atomic_compare_exchange_weak(w, &v,
						 v | LFIPC_MUTEX_WAITERS))
			return; /* the owner's release wakes one */
	}
	if (LFIPC_MUTEX_OWNER(v) == 0)
		lfipc__futex_wake(w, 1); /* free now: let a sleeper take it */
}

int lfipc__mutex_unlock(_Atomic uint32_t *w, uint32_t self)
{
	uint32_t v = atomic_load_explicit(w, memory_order_relaxed);

	/* Only the owner changes the word while the owner lives (others
	 * only set WAITERS), so this check cannot go stale. */
	if (LFIPC_MUTEX_OWNER(v) != self || self == 0)
		return -EPERM;
	/* M2: seq_cst (release pairs with M1/M1'/M4; seq_cst orders it in
	 * the chain a sleeper's M6 -> this -> the next taker's M1'). */
	v = atomic_exchange(w, 0);
	if (v & LFIPC_MUTEX_WAITERS)
		lfipc__futex_wake(w, 1);
	return 0;
}

bool lfipc__mutex_owner_dead(lfipc_region *r, _Atomic uint32_t *w)
{
	uint32_t v = atomic_load_explicit(w, memory_order_relaxed);

	return LFIPC_MUTEX_OWNER(v) != 0 &&
	       !lfipc__token_alive(r, LFIPC_MUTEX_OWNER(v));
}
