/* SPDX-License-Identifier: MIT */
/*
 * sync.c - Lock and RLock, named or embedded in another object's block.
 *
 * Lock memory (64 bytes, 64-byte aligned; struct lock_shm in
 * internal/sync_layout.h):
 *   u32 magic        SYNC_LOCK_MAGIC, written once at init
 *   u32 recursive    0 Lock, 1 RLock, written once at init
 *   u32 word         the robust mutex word (internal/mutex.h encoding:
 *                    owner process token, 0 = free)
 *   u32 depth        RLock recursion depth; touched only by the owning
 *                    thread while it holds word (0 when free)
 *   u64 thread       owning thread's id within the owner process (address
 *                    of a thread-local anchor); written only by the owner
 *                    while it holds word, 0 when free
 *   wq (16 bytes)    the word's wait queue (internal/wait.h), offset 24
 *   pad to 64
 *
 * Ownership is (process token in word, thread id in thread). A thread of
 * the owning process that wants the lock finds its own token in the word;
 * the mutex then sleeps on the word until that sibling releases it (the
 * same wait as for another process's owner, without a death to watch).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <lfipc/sync.h>

#include "internal/mutex.h"
#include "internal/proc.h"
#include "internal/recover.h"
#include "internal/region.h"
#include "internal/shm.h"
#include "internal/sync.h"
#include "internal/sync_layout.h"


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

static uint64_t thread_id(void)
{
	return (uint64_t)(uintptr_t)&thread_anchor;
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

int lfipc__lock_acquire_until(lfipc_lock *l, lfipc_deadline deadline,
			      unsigned flags)
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
	/* A sibling thread's hold (our token, another thread) is waited
	 * for like any other owner's, without a death to watch. */
	rc = lfipc__mutex_lock(l->r, &s->word, &s->wq, self, deadline, flags,
			       true);
	if (rc == 0 || rc == -EOWNERDEAD)
		took(s, me);
	return rc;
}

int lfipc_lock_acquire(lfipc_lock *l, int64_t timeout_ns)
{
	uint32_t self;

	if (!l)
		return -EINVAL;
	/* The uncontended path first: no clock read for the deadline. */
	if (lfipc__self(l->r, &self) == 0 &&
	    lfipc__mutex_trylock_fast(&l->s->word, self)) {
		took(l->s, thread_id());
		return 0;
	}
	return lfipc__lock_acquire_until(l, lfipc__deadline(timeout_ns), 0);
}

int lfipc__guard_acquire(lfipc_lock *guard, lfipc_deadline deadline)
{
	/* The guard is held for a few instructions by a running holder:
	 * worth a short spin even for an LFIPC_NOWAIT caller, so an expired
	 * deadline becomes "now plus the spin budget" (and -ETIMEDOUT). */
	if (deadline != LFIPC_DL_NEVER && lfipc__expired(deadline))
		deadline = lfipc__now_ns() + LFIPC_SPIN_NS;
	return lfipc__lock_acquire_until(guard, deadline, 0);
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
	return lfipc__mutex_unlock(l->r, &s->word, &s->wq, self);
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
	int rc = lfipc__lock_acquire_until(l, deadline, 0);

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
