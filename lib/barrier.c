/* SPDX-License-Identifier: MIT */
/*
 * barrier.c - Barrier: parties threads meet, one cycle after another.
 *
 * Block layout (offsets from the block start):
 *   0    u32 magic     BARRIER_MAGIC, written once at init
 *   4    u32 parties   written once at init (1..LFIPC_BARRIER_PARTIES_MAX)
 *   8    u32 seq       the futex word: bits 1..31 cycle number,
 *                      bit 0 BROKEN (the current cycle is broken)
 *   12   u32 count     parties waiting in the current cycle
 *   16   u64 hist      bit c % 64: how cycle c ended (1 broken, 0 tripped)
 *   24   pad to 64
 *   64   embedded Lock "guard" (internal/sync.h)
 *   128  u32 waiters[parties]  token of the party at each arrival index
 *
 * seq, count, hist and waiters change only with the guard held. A waiter
 * of cycle c sleeps on seq without the guard; it leaves when seq's cycle
 * moves past c (tripped, or reset: hist says which) or when seq says c is
 * broken. Cycles end in at most 2^31 steps apart, and a waiter reads its
 * cycle's hist bit within 64 cycles or reports the barrier broken.
 *
 * Dead parties: a waiter checks its predecessor's liveness after each
 * sleep slice, and the party completing a cycle checks all of them; a dead
 * one breaks the barrier. Whoever takes the guard from a dead holder
 * (-EOWNERDEAD) breaks it too, since that holder's update may be half done.
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <lfipc/sync.h>

#include "internal/futex.h"
#include "internal/proc.h"
#include "internal/recover.h"
#include "internal/region.h"
#include "internal/sync.h"
#include "internal/wait.h"

#define BARRIER_MAGIC UINT32_C(0x52524142) /* "BARR" */
#define BARRIER_GUARD_OFF 64u
#define BARRIER_WAITERS_OFF 128u
#define SEQ_BROKEN UINT32_C(1)
#define SEQ_CYCLE(s) ((s) >> 1)

struct barrier_shm {
	uint32_t magic;
	uint32_t parties;
	_Atomic uint32_t seq;
	_Atomic uint32_t count;
	_Atomic uint64_t hist;
	uint8_t pad[40];
};
_Static_assert(sizeof(struct barrier_shm) == 64, "barrier layout");

struct lfipc_barrier {
	lfipc_region *r;
	struct barrier_shm *s;
	_Atomic uint32_t *waiters;
	lfipc_lock *guard;
	uint32_t parties; /* cached at attach */
	int (*action)(void *arg);
	void *arg;
};

static uint64_t barrier_size(uint32_t parties)
{
	return BARRIER_WAITERS_OFF + (uint64_t)parties * sizeof(uint32_t);
}

static int barrier_init(void *block, uint64_t size, void *arg)
{
	struct barrier_shm *s = block;
	uint32_t parties = *(uint32_t *)arg;

	if (size < barrier_size(parties))
		return -EINVAL;
	s->magic = BARRIER_MAGIC;
	s->parties = parties;
	lfipc__lock_shm_init((char *)block + BARRIER_GUARD_OFF, false);
	return 0;
}

static int barrier_attach(lfipc_region *r, uint64_t off, uint64_t size,
			  lfipc_barrier **out)
{
	struct barrier_shm *s;
	lfipc_barrier *b;
	int rc;

	if (off % 64 != 0 || size < BARRIER_WAITERS_OFF ||
	    !lfipc__heap_range_ok(r, off, BARRIER_WAITERS_OFF))
		return -EPROTO;
	s = lfipc__at(r, off);
	if (s->magic != BARRIER_MAGIC || s->parties == 0 ||
	    s->parties > LFIPC_BARRIER_PARTIES_MAX ||
	    size < barrier_size(s->parties) ||
	    !lfipc__heap_range_ok(r, off, barrier_size(s->parties)))
		return -EPROTO;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	rc = lfipc__lock_attach(r, off + BARRIER_GUARD_OFF, &b->guard);
	if (rc < 0) {
		free(b);
		return rc;
	}
	b->r = r;
	b->s = s;
	b->parties = s->parties;
	b->waiters =
	    (_Atomic uint32_t *)(void *)((char *)s + BARRIER_WAITERS_OFF);
	*out = b;
	return 0;
}

int lfipc_barrier_create(lfipc_region *r, const char *name, unsigned parties,
			 lfipc_barrier **out)
{
	uint32_t p = parties;
	uint64_t off;
	int rc;

	if (!r || !out || parties == 0 || parties > LFIPC_BARRIER_PARTIES_MAX)
		return -EINVAL;
	rc = lfipc__obj_create(r, name, LFIPC_OBJ_BARRIER, barrier_size(p), 64,
			       barrier_init, &p, &off);
	if (rc < 0)
		return rc;
	return barrier_attach(r, off, barrier_size(p), out);
}

int lfipc_barrier_open(lfipc_region *r, const char *name, lfipc_barrier **out)
{
	uint64_t off, size;
	int rc;

	if (!r || !name || !out)
		return -EINVAL;
	rc = lfipc__obj_open(r, name, LFIPC_OBJ_BARRIER, &off, &size);
	if (rc < 0)
		return rc;
	return barrier_attach(r, off, size, out);
}

void lfipc_barrier_close(lfipc_barrier *b)
{
	if (!b)
		return;
	lfipc_lock_close(b->guard);
	free(b);
}

void lfipc_barrier_set_action(lfipc_barrier *b, int (*action)(void *arg),
			      void *arg)
{
	if (!b)
		return;
	b->action = action;
	b->arg = arg;
}

unsigned lfipc_barrier_parties(const lfipc_barrier *b)
{
	return b ? b->parties : 0;
}

/*
 * With the guard held, every access is relaxed (B1): the guard's
 * acquire/release orders them. seq is also read without the guard by
 * waiters: every store of seq is a release (B2) and waiters load it with
 * acquire (B3), which also orders the hist bit written before it.
 */

/* Mark the current cycle broken and wake everyone. Guard held. */
static void break_locked(lfipc_barrier *b)
{
	struct barrier_shm *s = b->s;
	uint32_t seq = atomic_load_explicit(&s->seq, memory_order_relaxed);

	if (seq & SEQ_BROKEN)
		return;
	atomic_fetch_or_explicit(&s->hist, UINT64_C(1) << (SEQ_CYCLE(seq) % 64),
				 memory_order_relaxed);
	/* B2: release, pairs with B3. */
	atomic_store_explicit(&s->seq, seq | SEQ_BROKEN, memory_order_release);
	lfipc__futex_wake(&s->seq, INT32_MAX);
}

/* End cycle c (tripped or not) and start c + 1. Guard held. */
static void next_cycle(lfipc_barrier *b, uint32_t seq, bool broken)
{
	struct barrier_shm *s = b->s;
	uint64_t bit = UINT64_C(1) << (SEQ_CYCLE(seq) % 64);

	if (broken)
		atomic_fetch_or_explicit(&s->hist, bit, memory_order_relaxed);
	else
		atomic_fetch_and_explicit(&s->hist, ~bit, memory_order_relaxed);
	atomic_store_explicit(&s->count, 0, memory_order_relaxed);
	/* B2: release, pairs with B3. */
	atomic_store_explicit(&s->seq, (SEQ_CYCLE(seq) + 1) << 1,
			      memory_order_release);
	lfipc__futex_wake(&s->seq, INT32_MAX);
}

/* Take the guard; a dead previous holder breaks the barrier. */
static int guard_lock(lfipc_barrier *b)
{
	int rc = lfipc_lock_acquire(b->guard, LFIPC_FOREVER);

	if (rc == -EOWNERDEAD) {
		break_locked(b);
		rc = 0;
	}
	return rc;
}

static void guard_unlock(lfipc_barrier *b)
{
	lfipc_lock_release(b->guard);
}

static bool party_dead(lfipc_barrier *b, uint32_t i, uint32_t self)
{
	uint32_t tok =
	    atomic_load_explicit(&b->waiters[i], memory_order_relaxed);

	return tok != self && !lfipc__token_alive(b->r, tok);
}

/* Outcome for a waiter of cycle c, given seq now. Return: 1 still
 * waiting; 0 tripped; -EPIPE broken or reset. */
static int outcome(lfipc_barrier *b, uint32_t c, uint32_t seq)
{
	uint64_t hist;

	if (SEQ_CYCLE(seq) == c)
		return (seq & SEQ_BROKEN) ? -EPIPE : 1;
	if (((SEQ_CYCLE(seq) - c) & (UINT32_MAX >> 1)) >= 64)
		return -EPIPE; /* too long ago to tell: assume the worst */
	/* B4: relaxed; ordered after the cycle's end by the B3 load. */
	hist = atomic_load_explicit(&b->s->hist, memory_order_relaxed);
	/* B3 again: if 64 more cycles ended meanwhile, the bit is reused. */
	seq = atomic_load_explicit(&b->s->seq, memory_order_acquire);
	if (((SEQ_CYCLE(seq) - c) & (UINT32_MAX >> 1)) >= 64)
		return -EPIPE;
	return (hist >> (c % 64)) & 1 ? -EPIPE : 0;
}

int lfipc_barrier_wait(lfipc_barrier *b, int64_t timeout_ns)
{
	struct barrier_shm *s;
	lfipc_deadline deadline;
	uint32_t self, seq, c, idx;
	int rc;

	if (!b)
		return -EINVAL;
	s = b->s;
	rc = lfipc__self(b->r, &self);
	if (rc < 0)
		return rc;
	deadline = lfipc__deadline(timeout_ns);
	rc = guard_lock(b);
	if (rc < 0)
		return rc;
	seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
	if (seq & SEQ_BROKEN) {
		guard_unlock(b);
		return -EPIPE;
	}
	c = SEQ_CYCLE(seq);
	idx = atomic_load_explicit(&s->count, memory_order_relaxed);
	if (idx >= b->parties) {
		break_locked(b); /* count can only be this high if corrupt */
		guard_unlock(b);
		return -EPROTO;
	}
	atomic_store_explicit(&b->waiters[idx], self, memory_order_relaxed);
	atomic_store_explicit(&s->count, idx + 1, memory_order_relaxed);
	if (idx + 1 == b->parties) {
		for (uint32_t i = 0; i < idx; i++) {
			if (party_dead(b, i, self)) {
				break_locked(b);
				guard_unlock(b);
				return -EPIPE;
			}
		}
		if (b->action && b->action(b->arg) != 0) {
			break_locked(b);
			guard_unlock(b);
			return -ECANCELED;
		}
		next_cycle(b, seq, false);
		guard_unlock(b);
		return (int)idx;
	}
	guard_unlock(b);
	for (;;) {
		/* B3: acquire, pairs with B2. */
		seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		rc = outcome(b, c, seq);
		if (rc <= 0)
			return rc == 0 ? (int)idx : rc;
		if (lfipc__expired(deadline)) {
			rc = guard_lock(b);
			if (rc < 0)
				return rc;
			seq =
			    atomic_load_explicit(&s->seq, memory_order_relaxed);
			rc = outcome(b, c, seq);
			if (rc == 1) {
				break_locked(b);
				rc = timeout_ns == LFIPC_NOWAIT ? -EAGAIN
								: -ETIMEDOUT;
			} else if (rc == 0) {
				rc = (int)idx;
			}
			guard_unlock(b);
			return rc;
		}
		rc = lfipc__futex_wait(
		    &s->seq, seq, lfipc__slice_end(deadline, LFIPC_SLICE_NS));
		if (rc == -ETIMEDOUT && idx > 0) {
			/* A slice passed: is the party before us alive? */
			rc = guard_lock(b);
			if (rc < 0)
				return rc;
			seq =
			    atomic_load_explicit(&s->seq, memory_order_relaxed);
			if (outcome(b, c, seq) == 1 &&
			    party_dead(b, idx - 1, self))
				break_locked(b);
			guard_unlock(b);
		}
	}
}

int lfipc_barrier_abort(lfipc_barrier *b)
{
	int rc;

	if (!b)
		return -EINVAL;
	rc = guard_lock(b);
	if (rc < 0)
		return rc;
	break_locked(b);
	guard_unlock(b);
	return 0;
}

int lfipc_barrier_reset(lfipc_barrier *b)
{
	uint32_t seq, count;
	int rc;

	if (!b)
		return -EINVAL;
	rc = guard_lock(b);
	if (rc < 0)
		return rc;
	seq = atomic_load_explicit(&b->s->seq, memory_order_relaxed);
	count = atomic_load_explicit(&b->s->count, memory_order_relaxed);
	/* Waiters of this cycle (if any) learn it ended broken. */
	next_cycle(b, seq, (seq & SEQ_BROKEN) || count > 0);
	guard_unlock(b);
	return 0;
}

unsigned lfipc_barrier_n_waiting(const lfipc_barrier *b)
{
	uint32_t seq, n;

	if (!b)
		return 0;
	/* B5: relaxed; a snapshot. */
	seq = atomic_load_explicit(&b->s->seq, memory_order_relaxed);
	n = atomic_load_explicit(&b->s->count, memory_order_relaxed);
	return (seq & SEQ_BROKEN) ? 0 : n > b->parties ? b->parties : n;
}

bool lfipc_barrier_broken(const lfipc_barrier *b)
{
	/* B5: relaxed; a snapshot. */
	return b && (atomic_load_explicit(&b->s->seq, memory_order_relaxed) &
		     SEQ_BROKEN);
}

/* lfipc_region_recover(): break a barrier with a dead waiting party. */
int lfipc__barrier_recover(lfipc_region *r, uint64_t off, uint64_t size)
{
	lfipc_barrier *b;
	uint32_t self, seq, n;
	int rc = barrier_attach(r, off, size, &b), broke = 0;

	if (rc < 0)
		return rc;
	rc = lfipc__self(r, &self);
	if (rc == 0)
		rc = guard_lock(b);
	if (rc < 0) {
		lfipc_barrier_close(b);
		return rc;
	}
	seq = atomic_load_explicit(&b->s->seq, memory_order_relaxed);
	n = atomic_load_explicit(&b->s->count, memory_order_relaxed);
	if (n > b->parties)
		n = b->parties;
	for (uint32_t i = 0; !(seq & SEQ_BROKEN) && i < n; i++) {
		if (party_dead(b, i, self)) {
			break_locked(b);
			broke = 1;
			break;
		}
	}
	guard_unlock(b);
	lfipc_barrier_close(b);
	return broke;
}
