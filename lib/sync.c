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
 *   u32 depth_hint   diagnostics only: RLock recursion depth, 0 free;
 *                    written by the owning thread (a Lock leaves it 0:
 *                    held, its depth is 1)
 *   u64 tid_hint     diagnostics only: the owning thread's kernel id
 *                    (gettid), 0 free; written by the owning thread
 *   wq (16 bytes)    the word's wait queue (internal/wait.h), offset 24
 *   u64 gen          the instance's generation: random, written once at
 *                    init, offset 40
 *   pad to 64
 *
 * Ownership is (process token in word, thread and depth in the owning
 * thread's own memory). The word is the only shared state: which of the
 * owning process's threads holds the lock, and how deep, is recorded in
 * a thread-local set of held locks (keyed by the lock memory's address
 * and the instance's generation, so across handles of one lock), which no
 * other process can rewrite. The generation tells apart two locks that
 * sit at one address in turn (the region was closed while a thread held
 * its lock and another was mapped there; the lock was removed while held
 * and a new one made in its block): an entry of the old lock must not
 * match the new one, which another thread of this process may hold
 * (tests/hostile/findings/held_set_stale_address.c). Each handle reads
 * it once at attach; a peer that rewrites it later changes nothing.
 * Before, the thread and the depth were words of the lock's memory: a
 * peer that rewrote the thread made the owner's release fail with -EPERM
 * and left the lock held for ever by a live process
 * (tests/hostile/findings/lock_thread_field.c). A thread of the owning
 * process that wants the lock finds its own token in the word but no
 * entry in its set; the mutex then sleeps on the word until that sibling
 * releases it (the same wait through the wait layer as for another
 * process's owner, without a death to watch).
 *
 * For status reports (lfipc_lock_stat, the lfipc command) the owning
 * thread also writes its kernel thread id and its depth into the two
 * hint words while it holds the lock. Nothing decides on them: a peer
 * that rewrites them falsifies a status report, nothing more.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <lfipc/sync.h>

#include "internal/mutex.h"
#include "internal/objtype.h"
#include "internal/proc.h"
#include "internal/recover.h"
#include "internal/region.h"
#include "internal/shm.h"
#include "internal/sync.h"
#include "internal/sync_layout.h"


struct lfipc_lock {
	lfipc_region *r;
	struct lock_shm *s;
	uint64_t gen;	/* s->gen, read once at attach */
	bool recursive; /* cached at attach */
};

/* ---- the calling thread's held locks --------------------------------- */

/*
 * Each thread records the locks it holds: the address of the lock memory,
 * its generation, the depth and the token it wrote into the word. Plain
 * thread-local memory, touched by its thread only.
 * Entries 0..HELD_INLINE-1 always live in static TLS (initial-exec: one
 * %fs-relative address, no __tls_get_addr call on the fast path; the
 * library is linked at start-up or dlopen()ed by programs with static TLS
 * room to spare, as glibc reserves); a thread that holds more at once
 * keeps the entries from HELD_INLINE on in a heap array (freed at thread
 * exit). So the fast paths below, for a thread that holds at most
 * HELD_INLINE locks, never look at the heap. Entries copied into a fork
 * child belong to its parent: the child's only thread empties its set in
 * proc.c's atfork child handler (lfipc__sync_fork_child), which is
 * installed before any lock can be taken (by the first region handle,
 * lfipc__proc_track). An entry whose word no longer carries the process's
 * token (a peer rewrote it), or whose generation is not the lock's at
 * that address (the lock it was made for is gone), is stale: dropped when
 * found.
 */
#define HELD_INLINE 4u

struct held {
	const struct lock_shm *s;
	uint64_t gen;
	uint32_t depth;
	uint32_t tok; /* the token our take wrote into the word */
};

struct held_set {
	uint32_t n;	   /* entries */
	uint32_t cap;	   /* room on the heap (entries HELD_INLINE..) */
	pid_t tid;	   /* the thread's kernel id, cached; 0 not yet */
	struct held *heap; /* entries HELD_INLINE.., or NULL */
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

/* In a fork child, on its only thread (proc.c's atfork child handler):
 * the entries are the parent's holds, and the forking thread has a new
 * kernel id. The heap array stays: the child's copy of it is its own. */
void lfipc__sync_fork_child(void)
{
	held.n = 0;
	held.tid = 0;
}

/* The calling thread's set. */
static inline struct held_set *held_set(void)
{
	return &held;
}

static inline struct held *held_at(struct held_set *h, uint32_t i)
{
	return i < HELD_INLINE ? &h->inl[i] : &h->heap[i - HELD_INLINE];
}

static inline void held_drop(struct held_set *h, int i)
{
	if ((uint32_t)i != --h->n)
		*held_at(h, (uint32_t)i) = *held_at(h, h->n);
}

/* Index of the entry for lock l, or -1. Latest first: locks are mostly
 * released in the reverse order of taking them. An entry at l's address
 * of another generation belongs to a lock that is gone: dropped. */
static inline int held_find(struct held_set *h, const lfipc_lock *l)
{
	for (uint32_t i = h->n; i-- > 0;) {
		const struct held *e = held_at(h, i);

		if (e->s != l->s)
			continue;
		if (e->gen == l->gen)
			return (int)i;
		held_drop(h, (int)i);
		return -1;
	}
	return -1;
}

/* Make room for one more entry, before the lock is taken (so that taking
 * it cannot fail for want of room). Return: 0; -ENOMEM. */
static int held_room(struct held_set *h)
{
	uint32_t cap = h->cap ? 2 * h->cap : HELD_INLINE;
	struct held *v;

	if (h->n < HELD_INLINE + h->cap)
		return 0;
	if (h->cap > UINT32_MAX / 4 / sizeof(*v))
		return -ENOMEM;
	v = malloc((size_t)cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (h->heap)
		memcpy(v, h->heap, (h->n - HELD_INLINE) * sizeof(*v));
	pthread_once(&held_once, held_key_make);
	free(h->heap);
	h->heap = v;
	h->cap = cap;
	if (held_key_ok)
		pthread_setspecific(held_key, v);
	return 0;
}

static __attribute__((noinline, cold)) pid_t tid_slow(void)
{
	held.tid = (pid_t)syscall(SYS_gettid);
	return held.tid;
}

/* Publish the calling thread's hold of l at depth (0: released) in the
 * hint words, for status reports only. A Lock's depth is 1 whenever it is
 * held (lfipc__lock_status_at does not read depth_hint for it): only an
 * RLock stores it. tid: the thread's kernel id (held.tid once the thread
 * has an entry: hint_take made it), or 0. */
static inline void hint_tid(const lfipc_lock *l, uint32_t depth, pid_t tid)
{
	/* L9: relaxed, both; read once by lfipc__lock_status_at (S1), never
	 * for a decision: only diagnostics depend on them. A release stores
	 * them before its M2, so the next owner's stores come after. */
	if (l->recursive)
		atomic_store_explicit(&l->s->depth_hint, depth,
				      memory_order_relaxed);
	atomic_store_explicit(&l->s->tid_hint, (uint64_t)(uint32_t)tid,
			      memory_order_relaxed);
}

/* A depth change of a held lock: the thread's id is cached. */
static inline void hint(const lfipc_lock *l, uint32_t depth)
{
	hint_tid(l, depth, depth ? held.tid : 0);
}

/* The first hold of l by the calling thread (depth 1). */
static inline void hint_take(const lfipc_lock *l)
{
	pid_t t = held.tid;

	if (__builtin_expect(t == 0, 0))
		t = tid_slow();
	hint_tid(l, 1, t);
}

/* Record lock l as taken by the calling thread with token self (room was
 * made). */
static inline void held_push(struct held_set *h, const lfipc_lock *l,
			     uint32_t self)
{
	*held_at(h, h->n++) = (struct held){l->s, l->gen, 1, self};
	hint_take(l);
}

/*
 * The entry of the calling thread for l if it holds l: an entry, and the
 * word still carries this process's token self. A stale entry (the word
 * says otherwise: a peer rewrote it) is dropped. Return: the index, -1.
 */
static inline int held_by_me(struct held_set *h, const lfipc_lock *l, uint32_t self)
{
	int i = held_find(h, l);

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

/* A new instance's generation: random, so that no other lock that ever
 * sits at the same address (made by any process) shares it, short of a
 * 2^-64 chance; without entropy, the clock and a count. */
static uint64_t lock_gen_new(void)
{
	static _Atomic uint64_t seq;
	uint64_t g;

	if (getrandom(&g, sizeof(g), GRND_NONBLOCK) == (ssize_t)sizeof(g))
		return g;
	/* G1: relaxed; a count, orders nothing. */
	return (uint64_t)lfipc__now_ns() +
	       atomic_fetch_add_explicit(&seq, 1, memory_order_relaxed);
}

void lfipc__lock_shm_init(void *mem, bool recursive)
{
	struct lock_shm *s = mem;

	s->magic = SYNC_LOCK_MAGIC;
	s->recursive = recursive ? 1 : 0;
	s->gen = lock_gen_new();
}

int lfipc__lock_attach(lfipc_region *r, uint64_t off, lfipc_lock **out)
{
	struct lock_shm *s;
	lfipc_lock *l;
	uint32_t recursive;
	uint64_t gen;

	if (!r || !out)
		return -EINVAL;
	if (off % 64 != 0 || !lfipc__heap_range_ok(r, off, SYNC_LOCK_SIZE))
		return -EPROTO;
	s = lfipc__at(r, off);
	recursive = lfipc__shm_ld32(&s->recursive);
	gen = lfipc__shm_ld64(&s->gen);
	if (lfipc__shm_ld32(&s->magic) != SYNC_LOCK_MAGIC || recursive > 1)
		return -EPROTO;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->r = r;
	l->s = s;
	l->gen = gen;
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

/*
 * The fast paths. Acquire: a thread that holds no lock (its set is empty:
 * nothing to look up, it cannot hold l, no stale entry of l can exist,
 * the inline entries have room) and has its token at hand
 * (lfipc__self_fast) takes a free word with one CAS (M1) and records
 * entry 0; no clock read, no call. Release: the thread's latest entry,
 * an inline one, is l's (same memory, same generation) and carries the
 * handle's current token; at depth 1, one CAS of the word from exactly
 * that token to 0 (M2', lfipc__mutex_release_mine) both checks that the
 * word is still ours and releases it, then a look at the wait queue.
 * Every other case (a thread that holds locks already, the first call of
 * a thread or of a fork child, a busy word, a release out of order, a
 * stale entry, a word a peer rewrote, misuse) takes the general path
 * below, which decides as before.
 */

/* Record l as the calling thread's only entry, taken with token self. */
static inline void take_first(const lfipc_lock *l, uint32_t self)
{
	held.inl[0] = (struct held){l->s, l->gen, 1, self};
	held.n = 1;
	hint_take(l);
}

/* Acquire l (token self) until deadline: the word was not free. A
 * sibling thread's hold (our token, not in our set) is waited for like
 * any other owner's, without a death to watch (siblings = true). Room
 * for the entry was made. */
static __attribute__((noinline)) int acquire_slow(lfipc_lock *l, uint32_t self,
						  lfipc_deadline deadline,
						  unsigned flags)
{
	struct lock_shm *s = l->s;
	int rc = lfipc__mutex_lock(l->r, &s->word, &s->wq, self, deadline,
				   flags, true);

	if (rc == 0 || rc == -EOWNERDEAD)
		held_push(held_set(), l, self);
	return rc;
}

/* lfipc_lock_acquire()'s busy word: the deadline is made only now. */
static __attribute__((noinline)) int acquire_busy(lfipc_lock *l, uint32_t self,
						  int64_t timeout_ns)
{
	return acquire_slow(l, self, lfipc__deadline(timeout_ns), 0);
}

/* The part of acquire_general() for a thread that holds locks already. */
static int acquire_begin_held(lfipc_lock *l, struct held_set *h, uint32_t self)
{
	struct held *e;
	int i = held_by_me(h, l, self), rc;

	if (i >= 0) {
		if (!l->recursive)
			return -EDEADLK;
		e = held_at(h, (uint32_t)i);
		if (e->depth == UINT32_MAX)
			return -EOVERFLOW;
		e->depth++;
		hint(l, e->depth);
		return 0;
	}
	rc = held_room(h);
	return rc < 0 ? rc : 1;
}

/* The general acquire: the token (registering first if need be), a
 * re-acquire by the owning thread, room for the entry, then the word.
 * The deadline is dl when have_dl, else made from timeout_ns only when
 * the word is busy (an uncontended acquire reads no clock). */
static __attribute__((noinline)) int acquire_general(lfipc_lock *l,
						     int64_t timeout_ns,
						     lfipc_deadline dl,
						     bool have_dl,
						     unsigned flags)
{
	struct held_set *h = held_set();
	uint32_t self;
	/* A fork child's registration waits within the caller's deadline. */
	int rc = have_dl ? lfipc__self_until(l->r, &self, dl)
			 : lfipc__self_timed(l->r, &self, &timeout_ns);

	if (rc < 0)
		return rc;
	if (h->n != 0) {
		rc = acquire_begin_held(l, h, self);
		if (rc != 1)
			return rc;
	}
	if (lfipc__mutex_trylock_fast(&l->s->word, self)) {
		held_push(h, l, self);
		return 0;
	}
	return acquire_slow(l, self, have_dl ? dl : lfipc__deadline(timeout_ns),
			    flags);
}

int lfipc__lock_acquire_until(lfipc_lock *l, lfipc_deadline deadline,
			      unsigned flags)
{
	uint32_t self;

	if (__builtin_expect(held.n == 0 && lfipc__self_fast(l->r, &self), 1)) {
		if (lfipc__mutex_trylock_fast(&l->s->word, self)) {
			take_first(l, self);
			return 0;
		}
		return acquire_slow(l, self, deadline, flags);
	}
	return acquire_general(l, 0, deadline, true, flags);
}

int lfipc_lock_acquire(lfipc_lock *l, int64_t timeout_ns)
{
	uint32_t self;

	if (!l)
		return -EINVAL;
	if (__builtin_expect(held.n == 0 && lfipc__self_fast(l->r, &self), 1)) {
		if (lfipc__mutex_trylock_fast(&l->s->word, self)) {
			take_first(l, self);
			return 0;
		}
		return acquire_busy(l, self, timeout_ns);
	}
	return acquire_general(l, timeout_ns, 0, false, 0);
}

/* The fast path of lfipc_lock_acquire() alone: true taken (depth 1);
 * false not taken, nothing done. */
static inline bool take_fast(lfipc_lock *l)
{
	uint32_t self;

	if (__builtin_expect(held.n == 0 && lfipc__self_fast(l->r, &self), 1) &&
	    lfipc__mutex_trylock_fast(&l->s->word, self)) {
		take_first(l, self);
		return true;
	}
	return false;
}

int lfipc__guard_acquire(lfipc_lock *guard, lfipc_deadline deadline,
			 unsigned flags)
{
	/* A free guard first: no clock read. */
	if (take_fast(guard))
		return 0;
	/* The guard is held for a few instructions by a running holder:
	 * worth a short spin even for an LFIPC_NOWAIT caller, so an expired
	 * deadline becomes "now plus the spin budget" (and -ETIMEDOUT). */
	if (deadline != LFIPC_DL_NEVER && lfipc__expired(deadline))
		deadline = lfipc__now_ns() + LFIPC_SPIN_NS;
	return lfipc__lock_acquire_until(guard, deadline, flags);
}

int lfipc__guard_acquire_for(lfipc_lock *guard, int64_t timeout_ns,
			     unsigned flags)
{
	/* A free guard: no clock read for the deadline. */
	if (take_fast(guard))
		return 0;
	return lfipc__guard_acquire(guard, lfipc__deadline(timeout_ns), flags);
}

/* The general release (the fast one is in lfipc_lock_release). */
static __attribute__((noinline)) int release_general(lfipc_lock *l)
{
	struct held_set *h;
	struct held *e;
	uint32_t self;
	int i;

	if (lfipc__self(l->r, &self) < 0)
		return -EPERM;
	h = held_set();
	i = held_by_me(h, l, self);
	if (i < 0)
		return -EPERM;
	e = held_at(h, (uint32_t)i);
	if (e->depth > 1) {
		e->depth--;
		hint(l, e->depth);
		return 0;
	}
	held_drop(h, i);
	hint(l, 0);
	/* held_by_me() saw our token in the word, which only we change
	 * while we live: ours to release (no second look). */
	lfipc__mutex_release(l->r, &l->s->word, &l->s->wq);
	return 0;
}

/* The wake-up of a release that found sleepers (K3). */
static __attribute__((noinline)) int release_wake(lfipc_lock *l)
{
	lfipc__wake_one(l->r, &l->s->wq);
	return 0;
}

int lfipc_lock_release(lfipc_lock *l)
{
	struct held *e;
	uint32_t n, tok;
	int rc;

	if (!l)
		return -EINVAL;
	n = held.n;
	if (__builtin_expect(n - 1 < HELD_INLINE, 1)) {
		e = &held.inl[n - 1];
		tok = e->tok;
		/* The token is the one lfipc__self would give now
		 * (lfipc__self_peek): a handle that registered again
		 * (another region handle on the same memory) does not own
		 * what the old registration took. */
		if (e->s == l->s && e->gen == l->gen &&
		    tok == lfipc__self_peek(l->r)) {
			if (e->depth == 1) {
				/* L10: relaxed: diagnostics, what a release
				 * that turns out not to be ours puts back
				 * (the hints go before M2', see hint_tid). */
				uint64_t was = atomic_load_explicit(
					&l->s->tid_hint, memory_order_relaxed);

				hint(l, 0);
				held.n = n - 1;
				rc = lfipc__mutex_release_mine(&l->s->word,
							       &l->s->wq, tok);
				if (rc == 0)
					return 0;
				if (rc > 0)
					return release_wake(l);
				/* not ours (a peer rewrote the word): the
				 * holder's hints back, the general path
				 * judges (L10: relaxed, as L9) */
				held.n = n;
				atomic_store_explicit(&l->s->tid_hint, was,
						      memory_order_relaxed);
				if (l->recursive)
					atomic_store_explicit(
						&l->s->depth_hint, 1,
						memory_order_relaxed);
			} else if (LFIPC_MUTEX_OWNER(atomic_load_explicit(
					   &l->s->word,
					   memory_order_relaxed)) == tok) {
				/* L6 (see held_by_me) */
				e->depth--;
				hint(l, e->depth);
				return 0;
			}
		}
	}
	return release_general(l);
}

bool lfipc_lock_locked(const lfipc_lock *l)
{
	if (!l)
		return false;
	/* L8: relaxed; a snapshot, orders nothing. */
	return LFIPC_MUTEX_OWNER(atomic_load_explicit(
		   &l->s->word, memory_order_relaxed)) != 0;
}

bool lfipc_lock_owned(const lfipc_lock *l)
{
	return lfipc__lock_held(l);
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

/* A thread that holds no lock (an empty set: a fork child's, whose set
 * is emptied at fork, or one that never took one) holds not l: no, at
 * once, without lfipc__self(), which in a fork child that has not
 * registered yet is a registration (a participant slot taken by a
 * question, and a wait at the region's gate, up to a second behind a
 * stopped remover, in a call that says it does not block). */
bool lfipc__lock_held(const lfipc_lock *l)
{
	uint32_t self;

	if (!l || held_set()->n == 0 || lfipc__self(l->r, &self) < 0)
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
	/* Never interrupted: a Condition returns with its lock held. */
	int rc = lfipc__lock_acquire_until(l, deadline, LFIPC_WAIT_NOINTR);
	struct held_set *h = held_set();
	int i;

	if ((rc == 0 || rc == -EOWNERDEAD) && l->recursive && depth > 1) {
		i = held_find(h, l);
		if (i >= 0) {
			held_at(h, (uint32_t)i)->depth = depth;
			hint(l, depth);
		}
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
	uint64_t tid;

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
	depth = atomic_load_explicit(&s->depth_hint, memory_order_relaxed);
	tid = atomic_load_explicit(&s->tid_hint, memory_order_relaxed);
	st->waiters = lfipc__wq_sleepers(&s->wq);
	st->locked = LFIPC_MUTEX_OWNER(w) != 0;
	if (st->locked) {
		lfipc__holder(r, LFIPC_MUTEX_OWNER(w), &st->holder);
		/* hints: the holder's thread, or 0 (a peer's lie, or read
		 * between its taking the word and writing them) */
		st->holder.tid = tid <= INT32_MAX ? (pid_t)tid : 0;
		st->depth = rec ? (depth ? depth : 1) : 1;
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
