/* SPDX-License-Identifier: MIT */
/*
 * sync.c - Lock and RLock, named or embedded in another object's block.
 *
 * Lock memory (64 bytes, 64-byte aligned; struct lock_shm in
 * internal/sync_layout.h):
 *   u32 magic        SYNC_LOCK_MAGIC, written once at init
 *   u32 recursive    0 Lock, 1 RLock, written once at init
 *   u32 word         the robust mutex word (internal/mutex.h encoding:
 *                    owner process token | WAITERS bit 31)
 *   u32 depth        RLock recursion depth; touched only by the owning
 *                    thread while it holds word (0 when free)
 *   u64 thread       owning thread's id within the owner process (its
 *                    gettid() << 32 | low bits of a thread-local anchor's
 *                    address; see thread_id()); written only by the owner
 *                    while it holds word, 0 when free
 *   u32 nsleep       threads asleep on word (internal/mutex.h); seq_cst
 *   pad to 64
 *
 * Ownership is (process token in word, thread id in thread). A thread of
 * the owning process that wants the lock finds its own token in the word
 * (internal mutex says -EDEADLK); it then sleeps on the word itself, with
 * WAITERS set so the releasing thread wakes it, and retakes the word with
 * WAITERS set so later sleepers are not forgotten.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <lfipc/sync.h>

#include "internal/futex.h"
#include "internal/mutex.h"
#include "internal/objtype.h"
#include "internal/proc.h"
#include "internal/recover.h"
#include "internal/region.h"
#include "internal/shm.h"
#include "internal/sync.h"
#include "internal/sync_layout.h"

#define SYNC_SPIN 100u

struct lfipc_lock {
	lfipc_region *r;
	struct lock_shm *s;
	bool recursive; /* cached at attach */
};

/* initial-exec: one %fs-relative address, no __tls_get_addr call on the
 * fast path (the library is linked at start-up or dlopen()ed by programs
 * with static TLS room to spare, as glibc reserves). */
static _Thread_local char thread_anchor
    __attribute__((tls_model("initial-exec")));

/* The calling thread's id as the thread field stores it: its kernel thread
 * id (gettid) in bits 32..63, for status reports, and the low 32 bits of
 * its anchor's address, so ids stay distinct among the live threads of a
 * process even if a fork child's forking thread still carries its
 * parent's tid (lfipc__thread_id_reset() refreshes that in the child). */
static _Thread_local uint64_t thread_key
    __attribute__((tls_model("initial-exec")));

void lfipc__thread_id_reset(void)
{
	thread_key = 0;
}

static uint64_t thread_id(void)
{
	uint64_t k = thread_key;

	if (__builtin_expect(k == 0, 0)) {
		k = (uint64_t)(uint32_t)syscall(SYS_gettid) << 32 |
		    (uint32_t)(uintptr_t)&thread_anchor;
		thread_key = k;
	}
	return k;
}

uint64_t lfipc__lock_shm_size(void)
{
	return SYNC_LOCK_SIZE;
}

void lfipc__lock_shm_init(void *mem, bool recursive)
{
	struct lock_shm *s = mem;

	s->magic = SYNC_LOCK_MAGIC;
	s->recursive = recursive ? 1 : 0;
}

int lfipc__lock_attach(lfipc_region *r, uint64_t off, lfipc_lock **out)
{
	struct lock_shm *s;
	lfipc_lock *l;
	uint32_t recursive;

	if (!r || !out)
		return -EINVAL;
	if (off % 64 != 0 || !lfipc__heap_range_ok(r, off, SYNC_LOCK_SIZE))
		return -EPROTO;
	s = lfipc__at(r, off);
	recursive = lfipc__shm_ld32(&s->recursive);
	if (lfipc__shm_ld32(&s->magic) != SYNC_LOCK_MAGIC || recursive > 1)
		return -EPROTO;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->r = r;
	l->s = s;
	l->recursive = recursive == 1;
	*out = l;
	return 0;
}

static int lock_init(void *block, uint64_t size, void *arg)
{
	if (size < SYNC_LOCK_SIZE)
		return -EINVAL;
	lfipc__lock_shm_init(block, *(bool *)arg);
	return 0;
}

int lfipc_lock_create(lfipc_region *r, const char *name, bool recursive,
		      lfipc_lock **out)
{
	uint64_t off;
	int rc;

	if (!r || !out)
		return -EINVAL;
	rc = lfipc__obj_create(r, name, LFIPC_OBJ_LOCK, SYNC_LOCK_SIZE, 64,
			       lock_init, &recursive, &off);
	if (rc < 0)
		return rc;
	return lfipc__lock_attach(r, off, out);
}

int lfipc_lock_open(lfipc_region *r, const char *name, lfipc_lock **out)
{
	uint64_t off, size;
	int rc;

	if (!r || !name || !out)
		return -EINVAL;
	rc = lfipc__obj_open(r, name, LFIPC_OBJ_LOCK, &off, &size);
	if (rc < 0)
		return rc;
	if (size < SYNC_LOCK_SIZE)
		return -EPROTO;
	return lfipc__lock_attach(r, off, out);
}

void lfipc_lock_close(lfipc_lock *l)
{
	free(l);
}

/* Record the calling thread as owner after the word was taken. */
static void took(struct lock_shm *s, uint64_t me)
{
	/* L1: relaxed; the word's acquire (M1 / mutex_lock) orders it after
	 * the previous owner's L2, and our release of the word publishes it. */
	atomic_store_explicit(&s->thread, me, memory_order_relaxed);
	/* L3: relaxed, same ordering as L1. */
	atomic_store_explicit(&s->depth, 1, memory_order_relaxed);
}

/* The lock is held by another thread of this process: sleep on the word
 * until it changes, then try to take it with WAITERS set.
 * Return 1 acquired, 0 retry, -ETIMEDOUT. */
static int wait_sibling(struct lock_shm *s, uint32_t self,
			lfipc_deadline deadline)
{
	uint32_t v = atomic_load_explicit(&s->word, memory_order_relaxed);

	if (LFIPC_MUTEX_OWNER(v) != self)
		return 0;
	if (lfipc__expired(deadline))
		return -ETIMEDOUT;
	/* Counted as a sleeper before announcing it, as in mutex.c (all
	 * seq_cst: the Dekker pairing with lfipc__mutex_mark_sleepers). */
	atomic_fetch_add(&s->nsleep, 1);
	if (!(v & LFIPC_MUTEX_WAITERS)) {
		/* L4: seq_cst CAS; announces a sleeper, publishes no data
		 * (the unlocker's exchange reads it). */
		if (!atomic_compare_exchange_strong(&s->word, &v,
						    v | LFIPC_MUTEX_WAITERS)) {
			atomic_fetch_sub(&s->nsleep, 1);
			return 0;
		}
		v |= LFIPC_MUTEX_WAITERS;
	}
	lfipc__futex_wait(&s->word, v,
			  lfipc__slice_end(deadline, LFIPC_SLICE_NS));
	atomic_fetch_sub(&s->nsleep, 1);
	v = 0;
	/* L5: seq_cst (acquire on success pairs with M2 in
	 * lfipc__mutex_unlock()); then WAITERS if others still sleep. */
	if (atomic_compare_exchange_strong(&s->word, &v, self)) {
		lfipc__mutex_mark_sleepers(&s->word, &s->nsleep);
		return 1;
	}
	if (!lfipc__expired(deadline))
		return 0;
	/* Giving up after a sleep: do not swallow a wake-up. */
	lfipc__mutex_pass_on(&s->word, &s->nsleep);
	return -ETIMEDOUT;
}

int lfipc__lock_acquire_until(lfipc_lock *l, lfipc_deadline deadline,
			      unsigned spin)
{
	struct lock_shm *s = l->s;
	uint64_t me = thread_id();
	uint32_t self, v, d;
	int rc;

	rc = lfipc__self(l->r, &self);
	if (rc < 0)
		return rc;
	if (lfipc__mutex_trylock_fast(&s->word, self)) {
		took(s, me);
		return 0;
	}
	v = atomic_load_explicit(&s->word, memory_order_relaxed);
	/* L6: relaxed; only this thread can have stored me (L1) there. */
	if (LFIPC_MUTEX_OWNER(v) == self &&
	    atomic_load_explicit(&s->thread, memory_order_relaxed) == me) {
		if (!l->recursive)
			return -EDEADLK;
		d = atomic_load_explicit(&s->depth, memory_order_relaxed);
		if (d == UINT32_MAX)
			return -EOVERFLOW;
		/* L7: relaxed; only the owning thread touches depth. */
		atomic_store_explicit(&s->depth, d + 1, memory_order_relaxed);
		return 0;
	}
	for (;;) {
		rc = lfipc__mutex_lock(l->r, &s->word, &s->nsleep, self,
				       deadline, spin);
		if (rc == 0 || rc == -EOWNERDEAD) {
			took(s, me);
			return rc;
		}
		if (rc == -EDEADLK) {
			rc = wait_sibling(s, self, deadline);
			if (rc == 1) {
				took(s, me);
				return 0;
			}
			if (rc == 0)
				continue;
		}
		return rc;
	}
}

int lfipc_lock_acquire(lfipc_lock *l, int64_t timeout_ns)
{
	uint32_t self;
	unsigned spin;
	int rc;

	if (!l)
		return -EINVAL;
	/* The uncontended path first: no clock read for the deadline. */
	if (lfipc__self(l->r, &self) == 0 &&
	    lfipc__mutex_trylock_fast(&l->s->word, self)) {
		took(l->s, thread_id());
		return 0;
	}
	spin = timeout_ns != LFIPC_NOWAIT && lfipc__ncpus() > 1 ? SYNC_SPIN : 0;
	rc = lfipc__lock_acquire_until(l, lfipc__deadline(timeout_ns), spin);
	if (rc == -ETIMEDOUT && timeout_ns == LFIPC_NOWAIT)
		return -EAGAIN;
	return rc;
}

int lfipc__guard_acquire(lfipc_lock *guard, lfipc_deadline deadline)
{
	/* The guard is held for a few instructions by a running holder:
	 * worth a short spin even for an LFIPC_NOWAIT caller. */
	return lfipc__lock_acquire_until(
	    guard, deadline, lfipc__ncpus() > 1 ? SYNC_SPIN : 0);
}

int lfipc_lock_release(lfipc_lock *l)
{
	struct lock_shm *s;
	uint32_t self, v, d;

	if (!l)
		return -EINVAL;
	s = l->s;
	if (lfipc__self(l->r, &self) < 0)
		return -EPERM;
	v = atomic_load_explicit(&s->word, memory_order_relaxed);
	if (LFIPC_MUTEX_OWNER(v) != self ||
	    atomic_load_explicit(&s->thread, memory_order_relaxed) !=
		thread_id())
		return -EPERM;
	d = atomic_load_explicit(&s->depth, memory_order_relaxed);
	if (l->recursive && d > 1) {
		atomic_store_explicit(&s->depth, d - 1, memory_order_relaxed);
		return 0;
	}
	atomic_store_explicit(&s->depth, 0, memory_order_relaxed);
	/* L2: relaxed; published by the release in lfipc__mutex_unlock. */
	atomic_store_explicit(&s->thread, 0, memory_order_relaxed);
	return lfipc__mutex_unlock(&s->word, self);
}

bool lfipc_lock_locked(const lfipc_lock *l)
{
	if (!l)
		return false;
	/* L8: relaxed; a snapshot, orders nothing. */
	return LFIPC_MUTEX_OWNER(atomic_load_explicit(
		   &l->s->word, memory_order_relaxed)) != 0;
}

bool lfipc_lock_is_recursive(const lfipc_lock *l)
{
	return l && l->recursive;
}

uint64_t lfipc__lock_off(const lfipc_lock *l)
{
	return lfipc__off(l->r, l->s);
}

lfipc_region *lfipc__lock_region(const lfipc_lock *l)
{
	return l->r;
}

bool lfipc__lock_held(const lfipc_lock *l)
{
	uint32_t self;

	if (!l || lfipc__self(l->r, &self) < 0)
		return false;
	/* L9: relaxed; only this thread can have stored its own token and
	 * id (M1/L1), and only this thread can remove them. */
	return LFIPC_MUTEX_OWNER(atomic_load_explicit(
		   &l->s->word, memory_order_relaxed)) == self &&
	       atomic_load_explicit(&l->s->thread, memory_order_relaxed) ==
		   thread_id();
}

int lfipc__lock_release_all(lfipc_lock *l, uint32_t *depth)
{
	uint32_t d;

	if (!lfipc__lock_held(l))
		return -EPERM;
	/* L10: relaxed; only the owning thread touches depth (L7). */
	d = atomic_load_explicit(&l->s->depth, memory_order_relaxed);
	*depth = d ? d : 1;
	if (l->recursive)
		atomic_store_explicit(&l->s->depth, 1, memory_order_relaxed);
	return lfipc_lock_release(l);
}

int lfipc__lock_reacquire(lfipc_lock *l, uint32_t depth,
			  lfipc_deadline deadline)
{
	int rc = lfipc__lock_acquire_until(
	    l, deadline, lfipc__ncpus() > 1 ? SYNC_SPIN : 0);

	if ((rc == 0 || rc == -EOWNERDEAD) && l->recursive && depth > 1)
		/* L11: relaxed; we own the lock (same as L7). */
		atomic_store_explicit(&l->s->depth, depth,
				      memory_order_relaxed);
	return rc;
}

bool lfipc__lock_owner_dead(const lfipc_lock *l)
{
	return lfipc__mutex_owner_dead(l->r, &l->s->word);
}

/* A dead owner's lock is recovered by its next acquirer (-EOWNERDEAD), who
 * must learn about the death; recovery therefore leaves it alone. */
int lfipc__lock_recover(lfipc_region *r, uint64_t off, uint64_t size)
{
	(void)r;
	(void)off;
	(void)size;
	return 0;
}

/* ---- descriptor, status, open-or-create ------------------------------ */

static uint64_t lock_size(const void *shape)
{
	(void)shape;
	return SYNC_LOCK_SIZE;
}

static int lock_same_shape(lfipc_region *r, uint64_t off, uint64_t size,
			   const void *shape)
{
	const struct lock_shm *s = lfipc__at(r, off);
	uint32_t rec;

	if (size < SYNC_LOCK_SIZE ||
	    lfipc__shm_ld32(&s->magic) != SYNC_LOCK_MAGIC)
		return -EPROTO;
	rec = lfipc__shm_ld32(&s->recursive);
	return rec == (*(const bool *)shape ? 1u : 0u) ? 0 : -EEXIST;
}

/* Status of the lock memory at off (named or embedded). Each word once. */
int lfipc__lock_status_at(lfipc_region *r, uint64_t off,
			  lfipc_lock_status *st)
{
	struct lock_shm *s;
	uint32_t rec, w, depth;

	if (off % 64 != 0 || !lfipc__heap_range_ok(r, off, SYNC_LOCK_SIZE))
		return -EPROTO;
	s = lfipc__at(r, off);
	rec = lfipc__shm_ld32(&s->recursive);
	if (lfipc__shm_ld32(&s->magic) != SYNC_LOCK_MAGIC || rec > 1)
		return -EPROTO;
	st->struct_size = sizeof(*st);
	st->recursive = rec == 1;
	/* S1: relaxed: a diagnostic snapshot; no data is read through it. */
	w = atomic_load_explicit(&s->word, memory_order_relaxed);
	depth = atomic_load_explicit(&s->depth, memory_order_relaxed);
	st->waiters = atomic_load_explicit(&s->nsleep, memory_order_relaxed);
	st->locked = LFIPC_MUTEX_OWNER(w) != 0;
	if (st->locked) {
		lfipc__holder(r, LFIPC_MUTEX_OWNER(w), &st->holder);
		st->holder.tid = (pid_t)(uint32_t)(atomic_load_explicit(
					     &s->thread, memory_order_relaxed) >>
					 32);
		st->depth = rec ? depth : 1;
		st->owner_died = !st->holder.alive;
	}
	return 0;
}

static int lock_status(lfipc_region *r, uint64_t off, uint64_t size, void *st)
{
	if (size < SYNC_LOCK_SIZE)
		return -EPROTO;
	return lfipc__lock_status_at(r, off, st);
}

static uint64_t lock_size_arg(unsigned arg)
{
	(void)arg;
	return SYNC_LOCK_SIZE;
}

const struct lfipc__objtype lfipc__lock_type = {
	.type = LFIPC_OBJ_LOCK,
	.name = "lock",
	.align = 64,
	.size = lock_size,
	.size_arg = lock_size_arg,
	.init = lock_init,
	.same_shape = lock_same_shape,
	.recover = NULL, /* the next acquirer recovers (-EOWNERDEAD) */
	.status = lock_status,
	.status_size = sizeof(lfipc_lock_status),
	.status_min = sizeof(lfipc_lock_status),
};

int lfipc_lock_stat(const lfipc_lock *l, lfipc_lock_status *st)
{
	if (!l)
		return -EINVAL;
	return lfipc__obj_status(l->r, &lfipc__lock_type,
				 lfipc__off(l->r, l->s), SYNC_LOCK_SIZE, st);
}

int lfipc_lock_open_or_create(lfipc_region *r, const char *name,
			      bool recursive, lfipc_lock **out)
{
	uint64_t off, size;
	int rc;

	if (!r || !out)
		return -EINVAL;
	rc = lfipc__obj_get(r, name, &lfipc__lock_type, &recursive,
			    LFIPC__GET_EITHER, &off, &size, NULL);
	if (rc < 0)
		return rc;
	return lfipc__lock_attach(r, off, out);
}
