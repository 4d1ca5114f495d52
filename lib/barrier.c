/* SPDX-License-Identifier: MIT */
/*
 * barrier.c - Barrier: parties threads meet, one cycle after another.
 *
 * Block layout (offsets from the block start; struct barrier_shm in
 * internal/sync_layout.h):
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
 * count, hist and waiters change only with the guard held, and so does
 * seq, with one exception: BROKEN may be set without the guard, by CAS
 * (break_cycle(), abort, a timed-out or watching waiter), so that no
 * waiter ever needs the guard to leave: a process stopped (SIGSTOP) inside
 * the guard cannot keep anyone past their timeout. So every change of seq
 * under the guard is a CAS or an exchange too, and a trip that finds
 * BROKEN set by then ends broken. A waiter of cycle c sleeps on seq; it
 * leaves when seq's cycle moves past c (tripped, or reset: hist says which)
 * or when seq says c is broken. Cycles end in at most 2^31 steps apart,
 * and a waiter reads its cycle's hist bit within 64 cycles or reports the
 * barrier broken. BROKEN set without the guard does not touch hist: a
 * broken cycle only ends by reset, which records it in hist.
 *
 * Waiting goes through the wait layer (lib/wait.c, which holds the
 * lost-wake-up argument): a waiter sleeps on seq (barrier_ready() is its
 * readiness callback, whose seq_cst loads are W3), and every change of seq
 * is seq_cst (K1) followed by lfipc__wake() on wq.
 *
 * Dead parties. Each waiter names the parties it watches to the wait
 * layer, which sleeps on their death words too, so the kernel wakes the
 * watcher when one dies (or, without that push, the watcher checks them
 * at the end of each fallback slice): the party that arrived before it
 * (idx - 1), and, for the first arrival (idx 0), the latest arrival
 * (count - 1) and the guard's holder. The watch relation is a ring over
 * the waiting parties (0 watches the last, everyone else the one before),
 * so whenever one waiting party is alive and another dead, some live party
 * watches a dead one, at O(1) cost per waiter. The latest arrival changes
 * while the first party sleeps: the first party sleeps on count too
 * (struct lfipc_sleep.word2), and every arrival, after its count store,
 * wakes it to watch the newcomer (one FUTEX_WAKE per arrival while anyone
 * sleeps; the completing party's only when an action runs). The guard's
 * holder covers a party killed while arriving or inside the action (which
 * runs with the guard held); one killed inside the guard before its count
 * store is pushed to nobody (the first party watched the guard's previous
 * holder): it is found at the first party's next safety slice (1 s), or
 * at once by the next arrival, which takes the guard with -EOWNERDEAD. The
 * party completing a cycle checks all of them; a dead one breaks the
 * barrier. Whoever takes the guard from a dead holder (-EOWNERDEAD) breaks
 * it too, since that holder's update may be half done. An arrival stores
 * its token, then count with seq_cst (B6, release would pair); a watcher
 * loads count with seq_cst (B7), so the token it then reads is this
 * cycle's.
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <lfipc/sync.h>

#include "internal/mutex.h"
#include "internal/proc.h"
#include "internal/objtype.h"
#include "internal/recover.h"
#include "internal/region.h"
#include "internal/shm.h"
#include "internal/sync.h"
#include "internal/sync_layout.h"
#include "internal/wait.h"

#define SEQ_BROKEN UINT32_C(1)
#define SEQ_CYCLE(s) ((s) >> 1)

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
	uint32_t parties;
	int rc;

	if (off % 64 != 0 || size < BARRIER_WAITERS_OFF ||
	    !lfipc__heap_range_ok(r, off, BARRIER_WAITERS_OFF))
		return -EPROTO;
	s = lfipc__at(r, off);
	parties = lfipc__shm_ld32(&s->parties);
	if (lfipc__shm_ld32(&s->magic) != BARRIER_MAGIC || parties == 0 ||
	    parties > LFIPC_BARRIER_PARTIES_MAX ||
	    size < barrier_size(parties) ||
	    !lfipc__heap_range_ok(r, off, barrier_size(parties)))
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
	b->parties = parties;
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
 * waiters: every change of seq is seq_cst (B2: K1 of the wait protocol;
 * its release part pairs with B3) and waiters load it with acquire or
 * seq_cst (B3), which also orders the hist bit written before it.
 */

/* Wake every waiter after a change of seq (B2). */
static void wake_all(lfipc_barrier *b)
{
	lfipc__wake(b->r, &b->s->wq, &b->s->seq, INT32_MAX);
}

/* Set BROKEN in seq if it still says cycle c, unbroken, and wake everyone.
 * Needs no guard. Return: true when this call broke it. */
static bool break_cycle(lfipc_barrier *b, uint32_t c)
{
	struct barrier_shm *s = b->s;
	/* B3: acquire, pairs with B2 (only a guess for the CAS). */
	uint32_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);

	while (SEQ_CYCLE(seq) == c && !(seq & SEQ_BROKEN)) {
		/* B2: seq_cst (nothing else to publish: hist is
		 * untouched); acquire on failure, as B3. */
		if (atomic_compare_exchange_weak_explicit(
			&s->seq, &seq, seq | SEQ_BROKEN, memory_order_seq_cst,
			memory_order_acquire)) {
			wake_all(b);
			return true;
		}
	}
	return false;
}

/* Mark the current cycle broken, whatever it is, and wake everyone. */
static void break_now(lfipc_barrier *b)
{
	/* B2: seq_cst, pairs with B3. */
	uint32_t seq = atomic_fetch_or(&b->s->seq, SEQ_BROKEN);

	if (!(seq & SEQ_BROKEN))
		wake_all(b);
}

/* End cycle SEQ_CYCLE(seq) and start the next one. Guard held. A trip
 * (force false) expects seq unchanged and fails if a waiter set BROKEN
 * meanwhile; a reset (force) ends the cycle whatever seq says.
 * Return: true when the cycle ended. */
static bool next_cycle(lfipc_barrier *b, uint32_t seq, bool broken, bool force)
{
	struct barrier_shm *s = b->s;
	uint64_t bit = UINT64_C(1) << (SEQ_CYCLE(seq) % 64);
	uint32_t next = (SEQ_CYCLE(seq) + 1) << 1;

	/* The hist bit is written before seq moves past the cycle (B2). */
	if (broken)
		atomic_fetch_or_explicit(&s->hist, bit, memory_order_relaxed);
	else
		atomic_fetch_and_explicit(&s->hist, ~bit, memory_order_relaxed);
	if (force) {
		/* B2: seq_cst, pairs with B3. A BROKEN set without the guard
		 * since the caller loaded seq is overwritten: with waiters in
		 * the cycle the caller passed broken anyway, and without any
		 * nobody reads the cycle's hist bit. */
		atomic_store(&s->seq, next);
	} else if (!atomic_compare_exchange_strong_explicit(
		       &s->seq, &seq, next, memory_order_seq_cst,
		       memory_order_relaxed)) {
		/* B2: seq_cst on success. Broken under our feet (a waiter
		 * set BROKEN): the cycle stays, broken, until a reset. */
		atomic_fetch_or_explicit(&s->hist, bit, memory_order_relaxed);
		return false;
	}
	atomic_store_explicit(&s->count, 0, memory_order_relaxed);
	wake_all(b);
	return true;
}

/* Take the guard by deadline; a dead previous holder breaks the barrier.
 * flags: LFIPC_WAIT_*. Return: 0; -ETIMEDOUT; -EINTR; -errno. */
static int guard_lock(lfipc_barrier *b, lfipc_deadline deadline,
		      unsigned flags)
{
	int rc = lfipc__guard_acquire(b->guard, deadline, flags);

	if (rc == -EOWNERDEAD) {
		break_now(b);
		rc = 0;
	}
	return rc;
}

/* The release fails only if a peer rewrote the guard's word: then it is
 * not ours any more, and there is nothing to give back. */
static void guard_unlock(lfipc_barrier *b)
{
	(void)lfipc_lock_release(b->guard);
}

static bool party_dead(lfipc_barrier *b, uint32_t i, uint32_t self)
{
	/* B1 (or after B7: acquire of count orders the token). */
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

/* A slice passed for the waiter at idx of cycle c: break the cycle if a
 * party it watches (see the top comment) died. No guard. */
static void watch(lfipc_barrier *b, uint32_t c, uint32_t idx, uint32_t self)
{
	/* B7: acquire, pairs with B6: the tokens below count's are this
	 * cycle's (if the cycle moved on, break_cycle(c) does nothing). */
	uint32_t n = atomic_load_explicit(&b->s->count, memory_order_acquire);
	bool dead;

	if (n > b->parties)
		n = b->parties; /* corrupt: stay inside the array */
	if (idx > 0)
		dead = party_dead(b, idx - 1, self);
	else
		dead = (n > 1 && party_dead(b, n - 1, self)) ||
		       lfipc__lock_owner_dead(b->guard);
	if (dead)
		break_cycle(b, c);
}

/* A waiter of cycle c at arrival index idx, for its readiness callback. */
struct bwait {
	lfipc_barrier *b;
	uint32_t c, idx, self;
};

/* The token of the guard's holder (0: free); a hint of whom to watch. */
static uint32_t guard_holder(lfipc_barrier *b)
{
	struct lock_shm *g =
	    (struct lock_shm *)(void *)((char *)b->s + BARRIER_GUARD_OFF);

	/* B8: relaxed: only names a death word to sleep on; watch()
	 * decides. */
	return LFIPC_MUTEX_OWNER(
	    atomic_load_explicit(&g->word, memory_order_relaxed));
}

/*
 * Readiness callback of a waiter (internal/wait.h): done when the cycle
 * tripped (1) or broke (-EPIPE); when asked to check, watch the parties
 * (see the top comment) and break the cycle if one died. Not ready: sleep
 * on seq, on the death words of the watched parties and, for the first
 * party, on count (a new latest arrival to watch).
 */
static int barrier_ready(void *ctx, struct lfipc_sleep *sl, bool check)
{
	struct bwait *w = ctx;
	lfipc_barrier *b = w->b;
	/* B3: seq_cst (W3; acquire pairs with B2). */
	uint32_t seq = atomic_load(&b->s->seq), n;
	int rc = outcome(b, w->c, seq);

	if (rc == 1 && check) {
		watch(b, w->c, w->idx, w->self);
		seq = atomic_load(&b->s->seq); /* B3 */
		rc = outcome(b, w->c, seq);
	}
	if (rc <= 0)
		return rc == 0 ? 1 : rc;
	sl->word = &b->s->seq;
	sl->val = seq;
	if (w->idx > 0) {
		/* B1: our arrival under the guard came after theirs. */
		sl->partner[0] = atomic_load_explicit(&b->waiters[w->idx - 1],
						      memory_order_relaxed);
		return 0;
	}
	/* B7': seq_cst (W3 for word2; acquire pairs with B6). */
	n = atomic_load(&b->s->count);
	sl->word2 = &b->s->count;
	sl->val2 = n;
	if (n > b->parties)
		n = b->parties; /* corrupt: stay inside the array */
	if (n > 1)
		sl->partner[0] = atomic_load_explicit(&b->waiters[n - 1],
						      memory_order_relaxed);
	sl->partner[1] = guard_holder(b);
	return 0;
}

int lfipc_barrier_wait(lfipc_barrier *b, int64_t timeout_ns)
{
	struct bwait w;
	struct barrier_shm *s;
	lfipc_deadline deadline;
	uint32_t self, seq, c, idx;
	int rc;

	if (!b)
		return -EINVAL;
	s = b->s;
	rc = lfipc__self_timed(b->r, &self, &timeout_ns);
	if (rc < 0)
		return rc;
	deadline = lfipc__deadline(timeout_ns);
	rc = guard_lock(b, deadline, 0);
	if (rc == -ETIMEDOUT || rc == -EINTR) {
		/* Could not even arrive (the guard's holder is slow or
		 * stopped): a timeout (or an interrupt) breaks the barrier
		 * all the same. */
		seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		break_cycle(b, SEQ_CYCLE(seq));
		if (rc == -EINTR)
			return rc;
		return timeout_ns == LFIPC_NOWAIT ? -EAGAIN : -ETIMEDOUT;
	}
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
		break_now(b); /* count can only be this high if corrupt */
		guard_unlock(b);
		return -EPROTO;
	}
	atomic_store_explicit(&b->waiters[idx], self, memory_order_relaxed);
	/* B6: seq_cst (K1 for the first party's sleep on count; release
	 * pairs with B7 in watch(): our token before count). */
	atomic_store(&s->count, idx + 1);
	if (idx + 1 == b->parties) {
		/* The first party watches the guard's holder: us, while
		 * the action runs. */
		if (b->action)
			lfipc__wake(b->r, &s->wq, &s->count, 1);
		for (uint32_t i = 0; i < idx; i++) {
			if (party_dead(b, i, self)) {
				break_now(b);
				guard_unlock(b);
				return -EPIPE;
			}
		}
		if (b->action && b->action(b->arg) != 0) {
			break_now(b);
			guard_unlock(b);
			return -ECANCELED;
		}
		rc = next_cycle(b, seq, false, false) ? (int)idx : -EPIPE;
		guard_unlock(b);
		return rc;
	}
	guard_unlock(b);
	/* The first party now watches us (the newest arrival). */
	if (idx > 0)
		lfipc__wake(b->r, &s->wq, &s->count, 1);
	w = (struct bwait){b, c, idx, self};
	rc = lfipc__wait_until(b->r, &s->wq, barrier_ready, &w, deadline, 0);
	if (rc == 0)
		return (int)idx;
	if (rc != -ETIMEDOUT && rc != -EAGAIN && rc != -EINTR)
		return rc;
	/* Our timeout passed (or a signal interrupted us): break our
	 * cycle; if it ended first, say how. */
	if (break_cycle(b, c))
		return rc;
	/* B3: acquire, pairs with B2. */
	rc = outcome(b, c, atomic_load_explicit(&s->seq, memory_order_acquire));
	return rc == 0 ? (int)idx : rc < 0 ? rc : -EPIPE;
}

int lfipc_barrier_abort(lfipc_barrier *b)
{
	if (!b)
		return -EINVAL;
	break_now(b); /* no guard needed: see the top comment */
	return 0;
}

int lfipc_barrier_reset(lfipc_barrier *b)
{
	uint32_t seq, count;
	int rc;

	if (!b)
		return -EINVAL;
	/* No timeout to honour: a grace period, then -EBUSY (sync.h). */
	rc = guard_lock(b, lfipc__deadline(LFIPC_SYNC_GRACE_NS),
			LFIPC_WAIT_NOINTR);
	if (rc < 0)
		return rc == -ETIMEDOUT ? -EBUSY : rc;
	seq = atomic_load_explicit(&b->s->seq, memory_order_relaxed);
	count = atomic_load_explicit(&b->s->count, memory_order_relaxed);
	/* Waiters of this cycle (if any) learn it ended broken. */
	next_cycle(b, seq, (seq & SEQ_BROKEN) || count > 0, true);
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

/* lfipc_region_recover(): break a barrier with a dead waiting party (or
 * a dead guard holder). Needs no guard, so a stopped process inside it
 * does not hold recovery up. */
int lfipc__barrier_recover(lfipc_region *r, uint64_t off, uint64_t size)
{
	lfipc_barrier *b;
	uint32_t self, seq, n;
	int rc = barrier_attach(r, off, size, &b), broke = 0;
	bool dead;

	if (rc < 0)
		return rc;
	rc = lfipc__self(r, &self);
	if (rc < 0) {
		lfipc_barrier_close(b);
		return rc;
	}
	/* B3 then B7: the tokens below count belong to seq's cycle, or the
	 * cycle moved on and break_cycle() does nothing. */
	seq = atomic_load_explicit(&b->s->seq, memory_order_acquire);
	n = atomic_load_explicit(&b->s->count, memory_order_acquire);
	if (n > b->parties)
		n = b->parties;
	dead = !(seq & SEQ_BROKEN) && lfipc__lock_owner_dead(b->guard);
	for (uint32_t i = 0; !(seq & SEQ_BROKEN) && !dead && i < n; i++)
		dead = party_dead(b, i, self);
	if (dead && break_cycle(b, SEQ_CYCLE(seq)))
		broke = 1;
	lfipc_barrier_close(b);
	return broke;
}

/* ---- descriptor, status, open-or-create ------------------------------ */

static uint64_t barrier_shape_size(const void *shape)
{
	uint32_t p = *(const uint32_t *)shape;

	return p == 0 || p > LFIPC_BARRIER_PARTIES_MAX ? 0 : barrier_size(p);
}

static int barrier_same_shape(lfipc_region *r, uint64_t off, uint64_t size,
			      const void *shape)
{
	struct barrier_shm *s = lfipc__at(r, off);

	if (size < sizeof(*s) || lfipc__shm_ld32(&s->magic) != BARRIER_MAGIC)
		return -EPROTO;
	return lfipc__shm_ld32(&s->parties) == *(const uint32_t *)shape
		       ? 0
		       : -EEXIST;
}

static int barrier_status(lfipc_region *r, uint64_t off, uint64_t size,
			  void *out)
{
	lfipc_barrier_status *st = out;
	struct barrier_shm *s;
	uint32_t parties, seq, count;

	if (off % 64 != 0 || size < BARRIER_WAITERS_OFF ||
	    !lfipc__heap_range_ok(r, off, BARRIER_WAITERS_OFF))
		return -EPROTO;
	s = lfipc__at(r, off);
	parties = lfipc__shm_ld32(&s->parties);
	if (lfipc__shm_ld32(&s->magic) != BARRIER_MAGIC || parties == 0 ||
	    parties > LFIPC_BARRIER_PARTIES_MAX)
		return -EPROTO;
	/* B9: relaxed: a diagnostic snapshot. */
	seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
	count = atomic_load_explicit(&s->count, memory_order_relaxed);
	st->parties = parties;
	st->waiting = count <= parties ? count : parties;
	st->broken = (seq & SEQ_BROKEN) != 0;
	st->cycle = SEQ_CYCLE(seq);
	return 0;
}

static uint64_t barrier_size_arg(unsigned parties)
{
	return barrier_shape_size(&parties);
}

const struct lfipc__objtype lfipc__barrier_type = {
	.type = LFIPC_OBJ_BARRIER,
	.name = "barrier",
	.align = 64,
	.size = barrier_shape_size,
	.size_arg = barrier_size_arg,
	.init = barrier_init,
	.same_shape = barrier_same_shape,
	.recover = lfipc__barrier_recover,
	.status = barrier_status,
	.status_size = sizeof(lfipc_barrier_status),
	.status_min = sizeof(lfipc_barrier_status),
};

int lfipc_barrier_stat(const lfipc_barrier *b, lfipc_barrier_status *st)
{
	if (!b)
		return -EINVAL;
	return lfipc__obj_status(b->r, &lfipc__barrier_type,
				 lfipc__off(b->r, b->s),
				 barrier_size(b->parties), st);
}

int lfipc_barrier_open_or_create(lfipc_region *r, const char *name,
				 unsigned parties, lfipc_barrier **out)
{
	uint32_t p = parties;
	uint64_t off, size;
	int rc;

	if (!r || !out || parties == 0 || parties > LFIPC_BARRIER_PARTIES_MAX)
		return -EINVAL;
	rc = lfipc__obj_get(r, name, &lfipc__barrier_type, &p,
			    LFIPC__GET_EITHER, &off, &size, NULL);
	if (rc < 0)
		return rc;
	return barrier_attach(r, off, size, out);
}
