/* SPDX-License-Identifier: MIT */
/*
 * sem.c - Semaphore and BoundedSemaphore.
 *
 * Block layout (offsets from the block start; struct sem_shm in
 * internal/sync_layout.h):
 *   0   u32 magic       SEM_MAGIC, written once at init
 *   4   u32 flags       LFIPC_SEM_BOUNDED | LFIPC_SEM_TRACK_HOLDERS, once
 *   8   u32 max         largest value, once (initial value when bounded)
 *   12  u32 pad
 *   16  u64 data        bits 0..31: the value (0..max), the word waiters
 *                       sleep on; bits 32..63 unused (0; they counted
 *                       sleepers before the wait layer)
 *   24  wq              the wait queue of acquirers (internal/wait.h)
 *   40  ..64 pad
 * Tracked semaphores (LFIPC_SEM_TRACK_HOLDERS) add:
 *   64  embedded Lock "guard" (internal/sync.h), serialising every change
 *       of value, holders, recovered and the journal
 *   128 struct sem_track: recovered, journal, holders[LFIPC_PROC_SLOTS]
 *
 * Waiting goes through the wait layer (lib/wait.c, which holds the
 * lost-wake-up argument): an acquirer that finds the value 0 sleeps on it
 * (sem_ready() is its readiness callback, whose seq_cst load of the value
 * is W3); every change that adds units (a release, units returned from a
 * dead holder) is a seq_cst CAS (K1) followed by lfipc__wake() on wq,
 * which costs one load and no system call while nobody sleeps. A waiter
 * killed while announced leaves wq's count one too high; that costs later
 * releases a futex wake call each, nothing else.
 *
 * Tracked semaphores record per participant slot (token, units held).
 * Every change goes through the guard with a redo journal: the new
 * absolute values are written to the journal, the journal is marked
 * active, the values are applied, the journal is cleared. Whoever takes
 * the guard from a dead holder (-EOWNERDEAD) re-applies an active journal,
 * which is idempotent. Units of dead holders are returned by reap(), run
 * when the wait layer asks for a liveness check (check = true: a holder's
 * death word woke the waiter, a slice ended, or the holders could not all
 * be watched) and by lfipc_region_recover(); "recovered" counts them until
 * acquirers take them, each with -EOWNERDEAD. A sleeping acquirer names up
 * to LFIPC_WAIT_PARTNERS holders as the partners whose death the kernel
 * pushes to it; with more holders it polls by the fallback slices.
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <lfipc/sync.h>

#include "internal/layout.h"
#include "internal/proc.h"
#include "internal/objtype.h"
#include "internal/recover.h"
#include "internal/region.h"
#include "internal/shm.h"
#include "internal/sync.h"
#include "internal/sync_layout.h"
#include "internal/wait.h"

#define SEM_FLAGS (LFIPC_SEM_BOUNDED | LFIPC_SEM_TRACK_HOLDERS)
#define SEM_VALUE(d) ((uint32_t)(d))

/* struct sem_shm and struct sem_track: internal/sync_layout.h. Every
 * field of sem_track is accessed only with the guard held, so relaxed
 * atomics suffice for ordering between processes (the guard's
 * acquire/release); they are atomics so that a recoverer may read a dead
 * writer's words. */

struct lfipc_sem {
	lfipc_region *r;
	struct sem_shm *s;
	struct sem_track *t;   /* NULL when untracked */
	lfipc_lock *guard; /* NULL when untracked */
	uint32_t max;	   /* cached at attach */
};

/* The futex word: the value half of data. */
static _Atomic uint32_t *value_word(struct sem_shm *s)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (_Atomic uint32_t *)(void *)&s->data;
#else
	return (_Atomic uint32_t *)(void *)((char *)&s->data + 4);
#endif
}

static uint64_t sem_size(unsigned flags)
{
	return (flags & LFIPC_SEM_TRACK_HOLDERS) ? SEM_TRACKED_SIZE
						 : sizeof(struct sem_shm);
}

struct sem_init_arg {
	unsigned value, flags;
};

static int sem_init(void *block, uint64_t size, void *arg)
{
	struct sem_init_arg *a = arg;
	struct sem_shm *s = block;

	if (size < sem_size(a->flags))
		return -EINVAL;
	s->magic = SEM_MAGIC;
	s->flags = a->flags;
	s->max = (a->flags & LFIPC_SEM_BOUNDED) ? a->value
						: (uint32_t)LFIPC_SEM_VALUE_MAX;
	atomic_init(&s->data, a->value);
	if (a->flags & LFIPC_SEM_TRACK_HOLDERS)
		lfipc__lock_shm_init((char *)block + SEM_GUARD_OFF, false);
	return 0;
}

static int sem_attach(lfipc_region *r, uint64_t off, uint64_t size,
		      lfipc_sem **out)
{
	struct sem_shm *s;
	lfipc_sem *h;
	uint32_t flags, max;
	int rc;

	if (off % 64 != 0 || size < sizeof(struct sem_shm) ||
	    !lfipc__heap_range_ok(r, off, sizeof(struct sem_shm)))
		return -EPROTO;
	s = lfipc__at(r, off);
	flags = lfipc__shm_ld32(&s->flags);
	max = lfipc__shm_ld32(&s->max);
	if (lfipc__shm_ld32(&s->magic) != SEM_MAGIC || (flags & ~SEM_FLAGS) ||
	    max > (uint32_t)LFIPC_SEM_VALUE_MAX ||
	    ((flags & LFIPC_SEM_BOUNDED) == 0 &&
	     max != (uint32_t)LFIPC_SEM_VALUE_MAX) ||
	    size < sem_size(flags) ||
	    !lfipc__heap_range_ok(r, off, sem_size(flags)))
		return -EPROTO;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->r = r;
	h->s = s;
	h->max = max;
	if (flags & LFIPC_SEM_TRACK_HOLDERS) {
		rc = lfipc__lock_attach(r, off + SEM_GUARD_OFF, &h->guard);
		if (rc < 0) {
			free(h);
			return rc;
		}
		h->t = (struct sem_track *)((char *)s + SEM_TRACK_OFF);
	}
	*out = h;
	return 0;
}

int lfipc_sem_create_ex(lfipc_region *r, const char *name, unsigned value,
			unsigned flags, lfipc_sem **out)
{
	struct sem_init_arg a = {value, flags};
	uint64_t off;
	int rc;

	if (!r || !out || (flags & ~SEM_FLAGS) ||
	    value > (unsigned)LFIPC_SEM_VALUE_MAX)
		return -EINVAL;
	rc = lfipc__obj_create(r, name, LFIPC_OBJ_SEM, sem_size(flags), 64,
			       sem_init, &a, &off);
	if (rc < 0)
		return rc;
	return sem_attach(r, off, sem_size(flags), out);
}

int lfipc_sem_create(lfipc_region *r, const char *name, unsigned value,
		     bool bounded, lfipc_sem **out)
{
	return lfipc_sem_create_ex(r, name, value,
				   bounded ? LFIPC_SEM_BOUNDED : 0, out);
}

int lfipc_sem_open(lfipc_region *r, const char *name, lfipc_sem **out)
{
	uint64_t off, size;
	int rc;

	if (!r || !name || !out)
		return -EINVAL;
	rc = lfipc__obj_open(r, name, LFIPC_OBJ_SEM, &off, &size);
	if (rc < 0)
		return rc;
	return sem_attach(r, off, size, out);
}

void lfipc_sem_close(lfipc_sem *s)
{
	if (!s)
		return;
	lfipc_lock_close(s->guard);
	free(s);
}

int lfipc_sem_value(const lfipc_sem *s)
{
	uint32_t v;

	if (!s)
		return -EINVAL;
	/* S1: relaxed; a snapshot, orders nothing. */
	v = SEM_VALUE(atomic_load_explicit(&s->s->data, memory_order_relaxed));
	return v > s->max ? (int)s->max : (int)v; /* only if corrupt */
}

unsigned lfipc_sem_max(const lfipc_sem *s)
{
	return s ? s->max : 0;
}

/* ---- untracked: one lock-free word ------------------------------------ */

/* Take a unit if the value is positive (the fast path: no clock, no
 * system call). Return true when taken; false also after
 * LFIPC_CAS_FAST_TRIES failed CAS (a peer rewriting the word: the slow
 * path's loop has the caller's deadline). */
static inline bool try_take(struct sem_shm *s)
{
	/* S10: relaxed (also the CAS's failure order): only a guess for the
	 * CAS below, which does the ordering (S2). */
	uint64_t d = atomic_load_explicit(&s->data, memory_order_relaxed);
	unsigned fails = 0;

	while (SEM_VALUE(d) > 0) {
		/* S2: acquire on success, pairs with S3 in release: what the
		 * releaser did before releasing happens before our use. */
		if (atomic_compare_exchange_weak_explicit(
			&s->data, &d, d - 1, memory_order_acquire,
			memory_order_relaxed))
			return true;
		if (++fails == LFIPC_CAS_FAST_TRIES)
			return false;
	}
	return false;
}

/* Wake up to n acquirers after units were added (K1 done, seq_cst). */
static void wake_acquirers(lfipc_sem *h, uint32_t n)
{
	if (n)
		lfipc__wake(h->r, &h->s->wq, value_word(h->s),
			    n > INT32_MAX ? INT32_MAX : (int)n);
}

/* The wake-up of a release that found sleepers (K3 in lfipc__wake). */
static __attribute__((noinline)) int release_wake(lfipc_sem *h)
{
	wake_acquirers(h, 1);
	return 0;
}

/* The rest of an untracked release whose first CAS failed, out of line so
 * that the bound's bookkeeping stays off the fast path. A peer that
 * rewrites the word without end: -EPROTO after the bound (internal/wait.h),
 * never a live-lock. Return: 0, -EOVERFLOW or -EPROTO. */
static __attribute__((noinline)) int release_retry(lfipc_sem *h, uint64_t d)
{
	struct lfipc_cas_bound b = LFIPC_CAS_BOUND_INIT;
	int rc;

	for (;;) {
		rc = lfipc__cas_retry(&b, LFIPC_DL_NEVER);
		if (rc < 0)
			return rc;
		if (SEM_VALUE(d) >= h->max)
			return -EOVERFLOW;
		/* S3, as in release_untracked(). */
		if (atomic_compare_exchange_weak(&h->s->data, &d, d + 1))
			return 0;
	}
}

static inline int release_untracked(lfipc_sem *h)
{
	struct sem_shm *s = h->s;
	/* S10: relaxed guess for the S3 CAS (also its failure order). */
	uint64_t d = atomic_load_explicit(&s->data, memory_order_relaxed);
	int rc;

	if (SEM_VALUE(d) >= h->max)
		return -EOVERFLOW;
	/* S3 = K1 of the wait protocol: seq_cst (release pairs with S2 /
	 * S4; seq_cst orders it before K2). */
	if (!atomic_compare_exchange_weak(&s->data, &d, d + 1)) {
		rc = release_retry(h, d);
		if (rc < 0)
			return rc;
	}
	/* K2: seq_cst, after K1; looked at here so that a release nobody
	 * waits for makes no call (lfipc__wake loads it again). */
	if (atomic_load(&s->wq.waiters))
		return release_wake(h);
	return 0;
}

/* ---- tracked: guard + journal ----------------------------------------- */

static uint32_t token_slot(uint32_t tok)
{
	return ((tok & LFIPC_TOKEN_MASK) >> LFIPC_TOKEN_GEN_BITS) - 1;
}

/* Set data to the value v (bits 32..63 to 0, as they should be). Guard
 * held: in a tracked semaphore nothing but a guard holder writes data, so
 * one store does it. (It was a CAS loop that kept bits 32..63, which
 * counted sleepers once: a peer rewriting the word made it retry for
 * ever.) */
static void set_value(struct sem_shm *s, uint32_t v)
{
	/* S7 = K1 of the wait protocol: seq_cst (release pairs with S2, S4
	 * and S8: a unit made available here is taken after everything its
	 * releaser did; seq_cst orders it before K2 in lfipc__wake). */
	atomic_store(&s->data, (uint64_t)v);
}

/* Apply the active journal (again). Guard held. */
static void journal_apply(struct sem_shm *s, struct sem_track *t)
{
	/* J1..: relaxed; the guard orders them between processes, and the
	 * signal fences keep the compiler from moving them across the
	 * journal's activation and clearing (the order a dead process leaves
	 * behind is its program order). */
	uint32_t slot = atomic_load_explicit(&t->jslot, memory_order_relaxed);

	if (slot < LFIPC_PROC_SLOTS) {
		atomic_store_explicit(
		    &t->holders[slot].token,
		    atomic_load_explicit(&t->jtoken, memory_order_relaxed),
		    memory_order_relaxed);
		atomic_store_explicit(
		    &t->holders[slot].count,
		    atomic_load_explicit(&t->jcount, memory_order_relaxed),
		    memory_order_relaxed);
	}
	atomic_store_explicit(
	    &t->recovered,
	    atomic_load_explicit(&t->jrecovered, memory_order_relaxed),
	    memory_order_relaxed);
	set_value(s, atomic_load_explicit(&t->jvalue, memory_order_relaxed));
	atomic_signal_fence(memory_order_seq_cst);
	atomic_store_explicit(&t->jactive, 0, memory_order_relaxed);
}

/* Log and apply one change. Guard held. */
static void journal_do(struct sem_shm *s, struct sem_track *t, uint32_t slot,
		       uint32_t token, uint32_t count, uint32_t value,
		       uint32_t recovered)
{
	atomic_store_explicit(&t->jslot, slot, memory_order_relaxed);
	atomic_store_explicit(&t->jtoken, token, memory_order_relaxed);
	atomic_store_explicit(&t->jcount, count, memory_order_relaxed);
	atomic_store_explicit(&t->jvalue, value, memory_order_relaxed);
	atomic_store_explicit(&t->jrecovered, recovered, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	atomic_store_explicit(&t->jactive, 1, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	journal_apply(s, t);
}

/* What guard_lock returns after lfipc__guard_acquire*'s rc: a dead
 * holder's journal is re-applied. */
static int guard_repair(lfipc_sem *h, int rc)
{
	if (rc == -EOWNERDEAD) {
		if (atomic_load_explicit(&h->t->jactive, memory_order_relaxed))
			journal_apply(h->s, h->t);
		rc = 0;
	}
	return rc;
}

/* Take the guard by deadline (a stopped process inside it must not make
 * us outlast the caller's timeout); repair after a dead holder. flags:
 * LFIPC_WAIT_NOINTR where -EINTR is not an answer (release, recovery).
 * Return: 0; -ETIMEDOUT; -EINTR; -errno. */
static int guard_lock(lfipc_sem *h, lfipc_deadline deadline, unsigned flags)
{
	return guard_repair(h,
			    lfipc__guard_acquire(h->guard, deadline, flags));
}

/* guard_lock() with a timeout from now: a free guard costs no clock
 * read. */
static int guard_lock_for(lfipc_sem *h, int64_t timeout_ns, unsigned flags)
{
	return guard_repair(
	    h, lfipc__guard_acquire_for(h->guard, timeout_ns, flags));
}

/* The release fails only if a peer rewrote the guard's word: then it is
 * not ours any more, and there is nothing to give back. */
static void guard_unlock(lfipc_sem *h)
{
	(void)lfipc_lock_release(h->guard);
}

/* S11: relaxed; with the guard held the value only changes under it
 * (its acquire orders us after the last change); without it, a hint
 * re-checked by a CAS or under the guard. */
static uint32_t cur_value(struct sem_shm *s)
{
	return SEM_VALUE(atomic_load_explicit(&s->data, memory_order_relaxed));
}

/* Return the units of holder slot i if its token is dead (or, with
 * force, whatever it is: the slot was reassigned, so that token is dead).
 * Guard held. Return: units returned. */
static uint32_t reap_slot(lfipc_sem *h, uint32_t i, uint32_t self, bool force)
{
	struct sem_track *t = h->t;
	uint32_t tok =
	    atomic_load_explicit(&t->holders[i].token, memory_order_relaxed);
	uint32_t n =
	    atomic_load_explicit(&t->holders[i].count, memory_order_relaxed);
	uint32_t v, rec;

	if (tok == 0 || tok == self ||
	    (!force && lfipc__token_alive(h->r, tok)))
		return 0;
	v = cur_value(h->s);
	/* Clamp: the books of a corrupt region must not overflow. */
	if (v > h->max)
		v = h->max;
	if (n > h->max - v)
		n = h->max - v;
	rec = atomic_load_explicit(&t->recovered, memory_order_relaxed);
	if (n > UINT32_MAX - rec)
		n = UINT32_MAX - rec;
	journal_do(h->s, t, i, 0, 0, v + n, rec + n);
	return n;
}

/* Return units of dead holders. Guard held. Return: units returned. */
static uint32_t reap(lfipc_sem *h, uint32_t self)
{
	uint32_t total = 0;

	for (uint32_t i = 0; i < LFIPC_PROC_SLOTS; i++)
		total += reap_slot(h, i, self, false);
	return total;
}

/* Try to take a unit of a tracked semaphore, reaping dead holders first
 * when do_reap. Return: 1 taken, 2 taken a recovered unit, 0 none free,
 * -ETIMEDOUT the guard was not free by the deadline, -errno. */
static int tracked_try(lfipc_sem *h, uint32_t self, bool do_reap,
		       lfipc_deadline deadline)
{
	struct sem_track *t = h->t;
	uint32_t slot = token_slot(self), tok, n, v, rec, woke = 0;
	int rc = guard_lock(h, deadline, 0);

	if (rc < 0)
		return rc;
	if (do_reap)
		woke = reap(h, self);
	v = cur_value(h->s);
	if (v == 0 || slot >= LFIPC_PROC_SLOTS) {
		guard_unlock(h);
		wake_acquirers(h, woke);
		return slot >= LFIPC_PROC_SLOTS ? -EPROTO : 0;
	}
	/* Our participant slot may still list its previous, dead owner:
	 * give its units back before we take the entry over. */
	woke += reap_slot(h, slot, self, true);
	v = cur_value(h->s);
	tok =
	    atomic_load_explicit(&t->holders[slot].token, memory_order_relaxed);
	n = tok == self ? atomic_load_explicit(&t->holders[slot].count,
					       memory_order_relaxed)
			: 0;
	rec = atomic_load_explicit(&t->recovered, memory_order_relaxed);
	rc = rec > 0 ? 2 : 1;
	journal_do(h->s, t, slot, self, n + 1, v - 1, rec > 0 ? rec - 1 : 0);
	/* S8: the guard's acquire (and the S7 store we read) orders the
	 * releaser's work before ours. */
	guard_unlock(h);
	if (woke > 1)
		wake_acquirers(h, woke - 1);
	return rc;
}

static __attribute__((noinline)) int release_tracked(lfipc_sem *h)
{
	struct sem_track *t = h->t;
	uint32_t self, slot, tok, n, v;
	int rc = lfipc__self(h->r, &self);

	if (rc < 0)
		return -EPERM;
	slot = token_slot(self);
	if (slot >= LFIPC_PROC_SLOTS)
		return -EPERM;
	/* No timeout to honour: a grace period, then -EBUSY (sync.h). */
	rc = guard_lock_for(h, LFIPC_SYNC_GRACE_NS, LFIPC_WAIT_NOINTR);
	if (rc < 0)
		return rc == -ETIMEDOUT ? -EBUSY : rc;
	tok =
	    atomic_load_explicit(&t->holders[slot].token, memory_order_relaxed);
	n = atomic_load_explicit(&t->holders[slot].count, memory_order_relaxed);
	v = cur_value(h->s);
	if (tok != self || n == 0) {
		rc = -EPERM;
	} else if (v >= h->max) {
		rc = -EOVERFLOW;
	} else {
		journal_do(
		    h->s, t, slot, n > 1 ? self : 0, n - 1, v + 1,
		    atomic_load_explicit(&t->recovered, memory_order_relaxed));
	}
	guard_unlock(h);
	if (rc == 0)
		wake_acquirers(h, 1); /* after S7 (K1) */
	return rc;
}

/* ---- acquire / release ------------------------------------------------ */

/* An acquirer, for the wait layer's readiness callback. */
struct sem_wait {
	lfipc_sem *h;
	uint32_t self;	   /* tracked: our token */
	lfipc_deadline dl; /* tracked: the guard's deadline (the caller's) */
};

/* Name up to LFIPC_WAIT_PARTNERS holders of units (other than us) as the
 * partners whose death ends our sleep; with more of them, poll (the wait
 * layer's fallback slices). Read without the guard: only a hint of whom
 * to watch, the reap under the guard decides. */
static void watch_holders(lfipc_sem *h, uint32_t self, struct lfipc_sleep *sl)
{
	int k = 0;

	for (uint32_t i = 0; i < LFIPC_PROC_SLOTS; i++) {
		/* S12: relaxed: a hint, see above. */
		uint32_t tok = atomic_load_explicit(&h->t->holders[i].token,
						    memory_order_relaxed);
		uint32_t n = atomic_load_explicit(&h->t->holders[i].count,
						  memory_order_relaxed);

		if (tok == 0 || n == 0 || tok == self)
			continue;
		if (k == LFIPC_WAIT_PARTNERS) {
			sl->unwatched = true;
			return;
		}
		sl->partner[k++] = tok;
	}
}

/*
 * Readiness callback of an acquire (internal/wait.h): take a unit if there
 * is one; a tracked semaphore also returns dead holders' units first when
 * asked to check (check = true). Not ready: sleep while the value is 0.
 */
static int sem_ready(void *ctx, struct lfipc_sleep *sl, bool check)
{
	struct sem_wait *w = ctx;
	lfipc_sem *h = w->h;
	/* S4: seq_cst: W3 of the wait protocol, against S3 / S7 (K1). */
	uint64_t d = atomic_load(&h->s->data);
	int rc;

	if (!h->t) {
		struct lfipc_cas_bound b = LFIPC_CAS_BOUND_INIT;

		/* S2': seq_cst CAS (its acquire pairs with S3). A peer that
		 * rewrites the word without end: the caller's deadline
		 * (-ETIMEDOUT), at most about a second (-EPROTO). */
		while (SEM_VALUE(d) > 0) {
			if (atomic_compare_exchange_weak(&h->s->data, &d,
							 d - 1))
				return 1;
			rc = lfipc__cas_retry(&b, w->dl);
			if (rc < 0)
				return rc;
		}
	} else if (SEM_VALUE(d) > 0 || check) {
		/* Under the guard, whose acquire orders us after the last
		 * S7: a value 0 read there is either older than a release
		 * whose K2 then sees us announced (W1 came before our guard
		 * acquisition), or the futex compare below sees the unit. */
		rc = tracked_try(h, w->self, check, w->dl);
		if (rc == 2)
			return -EOWNERDEAD; /* a unit of a dead holder */
		if (rc != 0)
			return rc > 0 ? 1 : rc;
	}
	sl->word = value_word(h->s);
	sl->val = 0;
	if (h->t)
		watch_holders(h, w->self, sl);
	return 0;
}

/* The acquire that found no unit to take at once, or a tracked one. */
static __attribute__((noinline)) int acquire_wait(lfipc_sem *h,
						  int64_t timeout_ns)
{
	struct sem_wait w = {h, 0, 0};
	int rc;

	if (h->t) {
		/* a fork child's registration waits within the timeout */
		rc = lfipc__self_timed(h->r, &w.self, &timeout_ns);
		if (rc < 0)
			return rc;
	}
	w.dl = lfipc__deadline(timeout_ns);
	rc = lfipc__wait_until(h->r, &h->s->wq, sem_ready, &w, w.dl, 0);
	/* Giving up on a busy guard with a unit there: a release may have
	 * woken us for it, so pass the wake-up on to another sleeper (the
	 * wait layer passes on the wake-ups of its own sleeps). */
	if (h->t && (rc == -ETIMEDOUT || rc == -EINTR) && cur_value(h->s) > 0)
		wake_acquirers(h, 1);
	/* The guard's timeout for an LFIPC_NOWAIT caller. */
	if (rc == -ETIMEDOUT && timeout_ns == LFIPC_NOWAIT)
		rc = -EAGAIN;
	return rc;
}

int lfipc_sem_acquire(lfipc_sem *h, int64_t timeout_ns)
{
	if (!h)
		return -EINVAL;
	/* The uncontended path first: no clock read, no call. */
	if (!h->t && try_take(h->s))
		return 0;
	return acquire_wait(h, timeout_ns);
}

int lfipc_sem_release(lfipc_sem *h)
{
	if (!h)
		return -EINVAL;
	return h->t ? release_tracked(h) : release_untracked(h);
}

/* lfipc_region_recover(): return units held by dead processes. */
int lfipc__sem_recover(lfipc_region *r, uint64_t off, uint64_t size)
{
	lfipc_sem *h;
	uint32_t self, n;
	int rc = sem_attach(r, off, size, &h);

	if (rc < 0)
		return rc;
	if (!h->t) {
		lfipc_sem_close(h);
		return 0;
	}
	/* A live process inside the guard (perhaps stopped) must not hold
	 * recovery up: give it a slice, then leave the reaping to the
	 * semaphore's next waiter. */
	rc = lfipc__self(r, &self);
	if (rc == 0)
		rc = guard_lock(h, lfipc__deadline(LFIPC_SLICE_NS),
				LFIPC_WAIT_NOINTR);
	if (rc < 0) {
		lfipc_sem_close(h);
		return rc == -ETIMEDOUT ? 0 : rc;
	}
	n = reap(h, self);
	guard_unlock(h);
	wake_acquirers(h, n);
	lfipc_sem_close(h);
	return n > INT32_MAX ? INT32_MAX : (int)n;
}

/* ---- descriptor, status, open-or-create ------------------------------ */

static uint64_t sem_shape_size(const void *shape)
{
	const struct sem_init_arg *a = shape;

	if ((a->flags & ~SEM_FLAGS) || a->value > (unsigned)LFIPC_SEM_VALUE_MAX)
		return 0;
	return sem_size(a->flags);
}

/* Same shape: same flags, and for a BoundedSemaphore the same maximum (the
 * initial value); an unbounded semaphore's value is its state, not its
 * shape. */
static int sem_same_shape(lfipc_region *r, uint64_t off, uint64_t size,
			  const void *shape)
{
	const struct sem_init_arg *a = shape;
	struct sem_shm *s = lfipc__at(r, off);
	uint32_t flags, max;

	if (size < sizeof(*s) || lfipc__shm_ld32(&s->magic) != SEM_MAGIC)
		return -EPROTO;
	flags = lfipc__shm_ld32(&s->flags);
	max = lfipc__shm_ld32(&s->max);
	if (flags != a->flags)
		return -EEXIST;
	return !(flags & LFIPC_SEM_BOUNDED) || max == a->value ? 0 : -EEXIST;
}

static int sem_status(lfipc_region *r, uint64_t off, uint64_t size, void *out)
{
	lfipc_sem_status *st = out;
	struct sem_shm *s;
	struct sem_track *t;
	uint32_t flags, max;
	uint64_t d;

	if (off % 64 != 0 || size < sizeof(*s) ||
	    !lfipc__heap_range_ok(r, off, sizeof(*s)))
		return -EPROTO;
	s = lfipc__at(r, off);
	flags = lfipc__shm_ld32(&s->flags);
	max = lfipc__shm_ld32(&s->max);
	if (lfipc__shm_ld32(&s->magic) != SEM_MAGIC || (flags & ~SEM_FLAGS) ||
	    max > (uint32_t)LFIPC_SEM_VALUE_MAX || size < sem_size(flags) ||
	    !lfipc__heap_range_ok(r, off, sem_size(flags)))
		return -EPROTO;
	/* S9: relaxed: a diagnostic snapshot. */
	d = atomic_load_explicit(&s->data, memory_order_relaxed);
	st->value = (uint32_t)d <= max ? (uint32_t)d : max;
	st->waiters = lfipc__wq_sleepers(&s->wq);
	st->max = max;
	st->bounded = (flags & LFIPC_SEM_BOUNDED) != 0;
	st->tracked = (flags & LFIPC_SEM_TRACK_HOLDERS) != 0;
	if (!st->tracked)
		return 0;
	t = (struct sem_track *)((char *)s + SEM_TRACK_OFF);
	st->recovered =
	    atomic_load_explicit(&t->recovered, memory_order_relaxed);
	for (uint32_t i = 0; i < LFIPC_PROC_SLOTS; i++) {
		uint32_t tok = atomic_load_explicit(&t->holders[i].token,
						    memory_order_relaxed);
		uint32_t n = atomic_load_explicit(&t->holders[i].count,
						  memory_order_relaxed);

		if (tok == 0 || n == 0)
			continue;
		if (lfipc__token_alive(r, tok)) {
			st->holders++;
			st->held += n;
		} else {
			st->dead_held += n;
		}
	}
	return 0;
}

static uint64_t sem_size_arg(unsigned flags)
{
	return (flags & ~SEM_FLAGS) ? 0 : sem_size(flags);
}

const struct lfipc__objtype lfipc__sem_type = {
	.type = LFIPC_OBJ_SEM,
	.name = "semaphore",
	.align = 64,
	.size = sem_shape_size,
	.size_arg = sem_size_arg,
	.init = sem_init,
	.same_shape = sem_same_shape,
	.recover = lfipc__sem_recover,
	.status = sem_status,
	.status_size = sizeof(lfipc_sem_status),
	.status_min = sizeof(lfipc_sem_status),
};

int lfipc_sem_stat(const lfipc_sem *s, lfipc_sem_status *st)
{
	if (!s)
		return -EINVAL;
	return lfipc__obj_status(s->r, &lfipc__sem_type,
				 lfipc__off(s->r, s->s),
				 sem_size(s->t ? LFIPC_SEM_TRACK_HOLDERS : 0), st);
}

int lfipc_sem_open_or_create(lfipc_region *r, const char *name,
			     unsigned value, unsigned flags, lfipc_sem **out)
{
	struct sem_init_arg a = {value, flags};
	uint64_t off, size;
	int rc;

	if (!r || !out || (flags & ~SEM_FLAGS) ||
	    value > (unsigned)LFIPC_SEM_VALUE_MAX)
		return -EINVAL;
	rc = lfipc__obj_get(r, name, &lfipc__sem_type, &a, LFIPC__GET_EITHER,
			    &off, &size, NULL);
	if (rc < 0)
		return rc;
	return sem_attach(r, off, size, out);
}
