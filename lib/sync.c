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
 *   u32 unused       (was the RLock depth; written by nobody)
 *   u64 unused       (was the owning thread; written by nobody)
 *   u32 nsleep       threads asleep on word (internal/mutex.h); seq_cst
 *   pad to 64
 *
 * Ownership is (process token in word, thread and depth in the owning
 * thread's own memory). The word is the only shared state: which of the
 * owning process's threads holds the lock, and how deep, is recorded in
 * a thread-local set of held locks (keyed by the lock memory's address,
 * so across handles of one lock), which no other process can rewrite.
 * Before, the thread and the depth were words of the lock's memory: a
 * peer that rewrote the thread made the owner's release fail with -EPERM
 * and left the lock held for ever by a live process
 * (tests/hostile/findings/lock_thread_field.c). A thread of the owning
 * process that wants the lock finds its own token in the word but no
 * entry in its set (internal mutex says -EDEADLK); it then sleeps on the
 * word itself, with WAITERS set so the releasing thread wakes it, and
 * retakes the word with WAITERS set so later sleepers are not forgotten.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <lfipc/sync.h>

#include "internal/futex.h"
#include "internal/mutex.h"
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

/* ---- the calling thread's held locks --------------------------------- */

/*
 * Each thread records the locks it holds: the address of the lock memory
 * and the depth. Plain thread-local memory, touched by its thread only.
 * The first HELD_INLINE entries live in static TLS (initial-exec: one
 * %fs-relative address, no __tls_get_addr call on the fast path; the
 * library is linked at start-up or dlopen()ed by programs with static TLS
 * room to spare, as glibc reserves); a thread that holds more at once
 * moves them to the heap (freed at thread exit). Entries copied into a
 * fork child belong to its parent: the set is emptied at the first use
 * after a fork (lfipc__fork_epoch). An entry whose word no longer carries
 * the process's token (a peer rewrote it) is stale: dropped when found.
 */
#define HELD_INLINE 4u

struct held {
	const struct lock_shm *s;
	uint32_t depth;
};

struct held_set {
	unsigned epoch;	   /* lfipc__fork_epoch the entries belong to */
	uint32_t n, cap;   /* entries; room on the heap (0: inline) */
	struct held *heap; /* NULL: the entries are in inl */
	struct held inl[HELD_INLINE];
};

static _Thread_local struct held_set held
    __attribute__((tls_model("initial-exec")));

static pthread_once_t held_once = PTHREAD_ONCE_INIT;
static pthread_key_t held_key;
static bool held_key_ok;

/* At thread exit: free the heap entries (the thread holds no lock any
 * more that anyone could release through it). */
static void held_exit(void *p)
{
	free(p);
	held.heap = NULL;
	held.n = 0;
	held.cap = 0;
}

static void held_key_make(void)
{
	held_key_ok = pthread_key_create(&held_key, held_exit) == 0;
}

/* The calling thread's set, emptied first if it was copied by fork(). */
static struct held_set *held_set(void)
{
	/* H1: relaxed; only compared with our own copy, and bumped in the
	 * fork child by its only thread (proc.c atfork_child). */
	unsigned e =
	    atomic_load_explicit(&lfipc__fork_epoch, memory_order_relaxed);

	if (held.epoch != e) {
		held.epoch = e;
		held.n = 0;
	}
	return &held;
}

static struct held *held_at(struct held_set *h, uint32_t i)
{
	return h->heap ? &h->heap[i] : &h->inl[i];
}

/* Index of the entry for lock memory s, or -1. Latest first: locks are
 * mostly released in the reverse order of taking them. */
static int held_find(struct held_set *h, const struct lock_shm *s)
{
	for (uint32_t i = h->n; i-- > 0;)
		if (held_at(h, i)->s == s)
			return (int)i;
	return -1;
}

static void held_drop(struct held_set *h, int i)
{
	*held_at(h, (uint32_t)i) = *held_at(h, h->n - 1);
	h->n--;
}

/* Make room for one more entry, before the lock is taken (so that taking
 * it cannot fail for want of room). Return: 0; -ENOMEM. */
static int held_room(struct held_set *h)
{
	uint32_t cap = h->heap ? h->cap : HELD_INLINE;
	struct held *v;

	if (h->n < cap)
		return 0;
	if (cap > UINT32_MAX / 2 / sizeof(*v))
		return -ENOMEM;
	v = malloc(2 * (size_t)cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	memcpy(v, h->heap ? h->heap : h->inl, h->n * sizeof(*v));
	pthread_once(&held_once, held_key_make);
	free(h->heap);
	h->heap = v;
	h->cap = 2 * cap;
	if (held_key_ok)
		pthread_setspecific(held_key, v);
	return 0;
}

/* Record lock memory s as taken by the calling thread (room was made). */
static void held_push(struct held_set *h, const struct lock_shm *s)
{
	*held_at(h, h->n++) = (struct held){s, 1};
}

/*
 * The entry of the calling thread for l if it holds l: an entry, and the
 * word still carries this process's token self. A stale entry (the word
 * says otherwise: a peer rewrote it) is dropped. Return: the index, -1.
 */
static int held_by_me(struct held_set *h, const lfipc_lock *l, uint32_t self)
{
	int i = held_find(h, l->s);

	/* L6: relaxed; only our own token is compared, which only a thread
	 * of this process stores (M1), and which stays until one of ours
	 * removes it (M2). */
	if (i >= 0 && LFIPC_MUTEX_OWNER(atomic_load_explicit(
			  &l->s->word, memory_order_relaxed)) != self) {
		held_drop(h, i);
		i = -1;
	}
	return i;
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

/* Acquire l (held set h, token self) until deadline: the slow path. */
static int acquire_slow(lfipc_lock *l, struct held_set *h, uint32_t self,
			lfipc_deadline deadline, unsigned spin)
{
	struct lock_shm *s = l->s;
	int rc;

	for (;;) {
		rc = lfipc__mutex_lock(l->r, &s->word, &s->nsleep, self,
				       deadline, spin);
		if (rc == 0 || rc == -EOWNERDEAD) {
			held_push(h, s);
			return rc;
		}
		if (rc == -EDEADLK) {
			rc = wait_sibling(s, self, deadline);
			if (rc == 1) {
				held_push(h, s);
				return 0;
			}
			if (rc == 0)
				continue;
		}
		return rc;
	}
}

/* What both acquire paths do first: the token, a re-acquire by the
 * owning thread, room for the entry. Return: 1 go on and take the word;
 * 0 or a negative errno: the result. */
static int acquire_begin(lfipc_lock *l, struct held_set *h, uint32_t *self)
{
	struct held *e;
	int rc = lfipc__self(l->r, self), i;

	if (rc < 0)
		return rc;
	i = held_by_me(h, l, *self);
	if (i >= 0) {
		if (!l->recursive)
			return -EDEADLK;
		e = held_at(h, (uint32_t)i);
		if (e->depth == UINT32_MAX)
			return -EOVERFLOW;
		e->depth++;
		return 0;
	}
	rc = held_room(h);
	return rc < 0 ? rc : 1;
}

int lfipc__lock_acquire_until(lfipc_lock *l, lfipc_deadline deadline,
			      unsigned spin)
{
	struct held_set *h = held_set();
	uint32_t self;
	int rc = acquire_begin(l, h, &self);

	if (rc != 1)
		return rc;
	if (lfipc__mutex_trylock_fast(&l->s->word, self)) {
		held_push(h, l->s);
		return 0;
	}
	return acquire_slow(l, h, self, deadline, spin);
}

int lfipc_lock_acquire(lfipc_lock *l, int64_t timeout_ns)
{
	struct held_set *h;
	uint32_t self;
	unsigned spin;
	int rc;

	if (!l)
		return -EINVAL;
	h = held_set();
	rc = acquire_begin(l, h, &self);
	if (rc != 1)
		return rc;
	/* The uncontended path first: no clock read for the deadline. */
	if (lfipc__mutex_trylock_fast(&l->s->word, self)) {
		held_push(h, l->s);
		return 0;
	}
	spin = timeout_ns != LFIPC_NOWAIT && lfipc__ncpus() > 1 ? SYNC_SPIN : 0;
	rc = acquire_slow(l, h, self, lfipc__deadline(timeout_ns), spin);
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
	struct held_set *h;
	struct held *e;
	uint32_t self;
	int i;

	if (!l)
		return -EINVAL;
	if (lfipc__self(l->r, &self) < 0)
		return -EPERM;
	h = held_set();
	i = held_by_me(h, l, self);
	if (i < 0)
		return -EPERM;
	e = held_at(h, (uint32_t)i);
	if (e->depth > 1) {
		e->depth--;
		return 0;
	}
	held_drop(h, i);
	/* Nothing shared but the word: no peer can make this fail, short
	 * of rewriting the word itself (then the lock is not ours). */
	return lfipc__mutex_unlock(&l->s->word, self);
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
	return held_by_me(held_set(), l, self) >= 0;
}

int lfipc__lock_release_all(lfipc_lock *l, uint32_t *depth)
{
	struct held_set *h;
	uint32_t self;
	int i;

	if (!l || lfipc__self(l->r, &self) < 0)
		return -EPERM;
	h = held_set();
	i = held_by_me(h, l, self);
	if (i < 0)
		return -EPERM;
	*depth = held_at(h, (uint32_t)i)->depth;
	held_at(h, (uint32_t)i)->depth = 1;
	return lfipc_lock_release(l);
}

int lfipc__lock_reacquire(lfipc_lock *l, uint32_t depth,
			  lfipc_deadline deadline)
{
	int rc = lfipc__lock_acquire_until(
	    l, deadline, lfipc__ncpus() > 1 ? SYNC_SPIN : 0);
	struct held_set *h = held_set();
	int i;

	if ((rc == 0 || rc == -EOWNERDEAD) && l->recursive && depth > 1) {
		i = held_find(h, l->s);
		if (i >= 0)
			held_at(h, (uint32_t)i)->depth = depth;
	}
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
