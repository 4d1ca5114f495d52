/* SPDX-License-Identifier: MIT */
/*
 * cond.c - Condition over a Lock or RLock, with exact notify(n).
 *
 * Block layout (offsets from the block start; struct cond_shm and
 * struct cond_slot in internal/sync_layout.h):
 *   0    u32 magic     COND_MAGIC, written once at init
 *   4    u32 nslots    LFIPC_COND_WAITERS_MAX, written once
 *   8    u64 lock_off  region offset of the lock's memory, written once
 *   16   u32 embedded  1: the lock is the RLock at block offset 64
 *   20   u32 wseq      next ticket to hand to a waiter
 *   24   u32 nwait     how many slots are WAITING (a hint that may only
 *                      be too high, never too low; notify recounts it)
 *   28   pad to 64
 *   64   embedded lock memory (64 bytes; unused when not embedded)
 *   128  slot ring[nslots], 16 bytes each:
 *          u32 state   FREE 0 / WAITING 1 / SIGNALED 2; the waiter's
 *                      futex word
 *          u32 token   the waiting process's participant token
 *          u32 ticket  the ticket the slot was taken with (age order)
 *          u32 pad
 *
 * No internal lock: wseq, nwait and every slot field except a slot's
 * state are changed only by threads that hold the user's lock, so a dead
 * process can leave nothing half-locked. A waiter takes the next ticket
 * and a FREE slot (or one a dead waiter left), marks it WAITING, releases
 * the lock and sleeps on the slot's state (through the wait layer,
 * lib/wait.c, as a wait without a queue: notify always wakes the slots it
 * signals, so there is no sleeper count to get wrong; an idle waiter
 * wakes once a second). notify(n) collects the WAITING
 * slots, and turns the n oldest of live waiters into SIGNALED, waking
 * each; dead waiters' slots are freed and not counted. A woken (or
 * timed-out) waiter re-takes the lock and frees its slot; it was notified
 * exactly when its slot says SIGNALED. Hence notify(n) wakes at most n of
 * the current waiters, oldest first, a waiter never returns 0 without a
 * notify, and a notify that chose a waiter whose timeout had just expired
 * is not lost (that waiter returns 0). A waiter re-takes the lock within
 * a grace after its deadline (its timeout or LFIPC_SYNC_GRACE_NS, the
 * larger): if that passes first (the holder does not progress: a stopped
 * process), it leaves without the lock, freeing its slot by
 * a CAS that excludes notify's (see abandon()), and returns -ENOLCK.
 *
 * Order of stores under the lock, so that a process killed between any
 * two leaves nwait too high at worst: nwait++ before a slot becomes
 * WAITING; a slot stops being WAITING before nwait--.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <lfipc/sync.h>

#include "internal/proc.h"
#include "internal/objtype.h"
#include "internal/recover.h"
#include "internal/region.h"
#include "internal/shm.h"
#include "internal/sync.h"
#include "internal/sync_layout.h"
#include "internal/wait.h"


struct lfipc_cond {
	lfipc_region *r;
	struct cond_shm *s;
	struct cond_slot *ring;
	lfipc_lock *lock; /* our own handle on the lock's memory */
};

struct cond_init_arg {
	uint64_t lock_off; /* 0: embed */
	uint64_t self_off; /* unknown at init: computed from the block */
	lfipc_region *r;
};

static int cond_init(void *block, uint64_t size, void *arg)
{
	struct cond_init_arg *a = arg;
	struct cond_shm *s = block;

	if (size < COND_SIZE)
		return -EINVAL;
	s->magic = COND_MAGIC;
	s->nslots = COND_NSLOTS;
	if (a->lock_off) {
		s->lock_off = a->lock_off;
	} else {
		lfipc__lock_shm_init((char *)block + COND_LOCK_OFF, true);
		s->embedded = 1;
		s->lock_off = lfipc__off(a->r, block) + COND_LOCK_OFF;
	}
	return 0;
}

static int cond_attach(lfipc_region *r, uint64_t off, uint64_t size,
		       lfipc_cond **out)
{
	struct cond_shm *s;
	lfipc_cond *c;
	uint64_t lock_off;
	uint32_t embedded;
	int rc;

	if (off % 64 != 0 || size < COND_SIZE ||
	    !lfipc__heap_range_ok(r, off, COND_SIZE))
		return -EPROTO;
	s = lfipc__at(r, off);
	lock_off = lfipc__shm_ld64(&s->lock_off);
	embedded = lfipc__shm_ld32(&s->embedded);
	if (lfipc__shm_ld32(&s->magic) != COND_MAGIC ||
	    lfipc__shm_ld32(&s->nslots) != COND_NSLOTS || embedded > 1 ||
	    (embedded && lock_off != off + COND_LOCK_OFF))
		return -EPROTO;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	rc = lfipc__lock_attach(r, lock_off, &c->lock);
	if (rc < 0) {
		free(c);
		return rc == -EINVAL ? -EPROTO : rc;
	}
	c->r = r;
	c->s = s;
	c->ring = (struct cond_slot *)((char *)s + COND_RING_OFF);
	*out = c;
	return 0;
}

int lfipc_cond_create(lfipc_region *r, const char *name, lfipc_lock *lock,
		      lfipc_cond **out)
{
	struct cond_init_arg a = {0, 0, r};
	uint64_t off;
	int rc;

	if (!r || !out)
		return -EINVAL;
	if (lock) {
		if (lfipc__lock_region(lock) != r)
			return -EINVAL;
		a.lock_off = lfipc__lock_off(lock);
	}
	rc = lfipc__obj_create(r, name, LFIPC_OBJ_COND, COND_SIZE, 64,
			       cond_init, &a, &off);
	if (rc < 0)
		return rc;
	return cond_attach(r, off, COND_SIZE, out);
}

int lfipc_cond_open(lfipc_region *r, const char *name, lfipc_cond **out)
{
	uint64_t off, size;
	int rc;

	if (!r || !name || !out)
		return -EINVAL;
	rc = lfipc__obj_open(r, name, LFIPC_OBJ_COND, &off, &size);
	if (rc < 0)
		return rc;
	return cond_attach(r, off, size, out);
}

void lfipc_cond_close(lfipc_cond *c)
{
	if (!c)
		return;
	lfipc_lock_close(c->lock);
	free(c);
}

lfipc_lock *lfipc_cond_lock(lfipc_cond *c)
{
	return c ? c->lock : NULL;
}

/*
 * Every access below to wseq, nwait and a slot's token and ticket is
 * made with the user's lock held, whose acquire/release orders them:
 * relaxed (C1). A slot's state is also read by its waiter without the
 * lock: SIGNALED is stored with release (C2) and read with acquire (C3),
 * so the notifier's work before notify happens before the waiter's return.
 */

static void nwait_add(struct cond_shm *s, int d)
{
	uint32_t n = atomic_load_explicit(&s->nwait, memory_order_relaxed);

	if (d < 0 && n == 0)
		return; /* corrupt; notify recounts */
	atomic_store_explicit(&s->nwait, n + (uint32_t)d, memory_order_relaxed);
}

/* Free slot sl (under the lock), and count one waiter fewer if its state
 * st, as read, still counted it as waiting. */
static void put_slot(lfipc_cond *c, struct cond_slot *sl, uint32_t st)
{
	atomic_store_explicit(&sl->state, COND_SLOT_FREE, memory_order_relaxed);
	if (st == COND_SLOT_WAITING)
		nwait_add(c->s, -1);
}

/* Take the next ticket and a free slot for the caller (or one a dead
 * waiter left behind). Return: the slot; NULL all busy. */
static struct cond_slot *take_slot(lfipc_cond *c, uint32_t self,
				   uint32_t *ticket)
{
	uint32_t t = atomic_load_explicit(&c->s->wseq, memory_order_relaxed);

	for (uint32_t i = 0; i < COND_NSLOTS; i++) {
		struct cond_slot *sl = &c->ring[(t + i) % COND_NSLOTS];
		uint32_t st =
		    atomic_load_explicit(&sl->state, memory_order_relaxed);
		uint32_t tok =
		    atomic_load_explicit(&sl->token, memory_order_relaxed);

		if (st != COND_SLOT_FREE &&
		    (tok == self || lfipc__token_alive(c->r, tok)))
			continue; /* a live waiter's */
		put_slot(c, sl, st); /* a dead waiter's is not counted */
		atomic_store_explicit(&c->s->wseq, t + 1, memory_order_relaxed);
		nwait_add(c->s, 1);
		atomic_store_explicit(&sl->token, self, memory_order_relaxed);
		atomic_store_explicit(&sl->ticket, t, memory_order_relaxed);
		atomic_store_explicit(&sl->state, COND_SLOT_WAITING,
				      memory_order_relaxed);
		*ticket = t;
		return sl;
	}
	return NULL;
}

/*
 * The deadline passed before the waiter could re-take the lock, so it
 * leaves without it and must not touch what the lock guards (wseq, nwait,
 * tokens, tickets). Only its slot's state: WAITING -> FREE by CAS, which a
 * notify's CAS WAITING -> SIGNALED (C2) excludes, so a notify never counts
 * a waiter that left; a SIGNALED slot is touched by nobody but its live
 * waiter, so a plain store frees it. nwait stays one too high, which it
 * may (notify recounts it). Return: -ENOLCK.
 */
static int abandon(struct cond_slot *sl)
{
	uint32_t st = COND_SLOT_WAITING;

	/* C4: relaxed; nothing is published by leaving (the CAS only has to
	 * be atomic against C2). */
	if (!atomic_compare_exchange_strong_explicit(
		&sl->state, &st, COND_SLOT_FREE, memory_order_relaxed,
		memory_order_relaxed))
		atomic_store_explicit(&sl->state, COND_SLOT_FREE,
				      memory_order_relaxed);
	return -ENOLCK;
}

/*
 * Until when a wait whose own deadline is deadline may re-take its lock:
 * a grace of its timeout or LFIPC_SYNC_GRACE_NS, whichever is larger,
 * after the deadline. Ordinary contention (a holder that is busy,
 * preempted, or has a queue of waiters ahead of us) lets go well within
 * that, so -ENOLCK means a holder that does not progress: a stopped
 * process, or a thread that keeps the lock for ever. Without a limit
 * (LFIPC_FOREVER), none.
 */
static lfipc_deadline retake_deadline(lfipc_deadline deadline,
				      int64_t timeout_ns)
{
	int64_t grace = timeout_ns > LFIPC_SYNC_GRACE_NS ? timeout_ns
							 : LFIPC_SYNC_GRACE_NS;

	if (deadline > LFIPC_DL_NEVER - grace)
		return LFIPC_DL_NEVER;
	return deadline + grace;
}

/* Readiness callback of a waiter (internal/wait.h): its slot is no
 * longer WAITING. Nobody's death to watch: a notifier that dies notifies
 * nobody, and the lock's holder is the lock's business. */
static int slot_ready(void *ctx, struct lfipc_sleep *s, bool check)
{
	struct cond_slot *sl = ctx;
	/* C3: seq_cst (acquire pairs with C2 in notify). */
	uint32_t st = atomic_load(&sl->state);

	(void)check;
	if (st != COND_SLOT_WAITING)
		return 1;
	s->word = &sl->state;
	s->val = st;
	return 0;
}

int lfipc_cond_wait(lfipc_cond *c, int64_t timeout_ns)
{
	struct cond_slot *sl;
	lfipc_deadline deadline;
	uint32_t self, ticket, depth, st;
	bool mine, notified, intr = false;
	int rc;

	if (!c)
		return -EINVAL;
	if (!lfipc__lock_held(c->lock))
		return -EPERM;
	rc = lfipc__self_timed(c->r, &self, &timeout_ns);
	if (rc < 0)
		return rc;
	deadline = lfipc__deadline(timeout_ns);
	sl = take_slot(c, self, &ticket);
	if (!sl)
		return -EUSERS;
	rc = lfipc__lock_release_all(c->lock, &depth);
	if (rc < 0) {
		put_slot(c, sl, COND_SLOT_WAITING);
		return rc;
	}
	/* Sleep through the wait layer until the slot leaves WAITING (a
	 * notify), the deadline passes or a signal interrupts us (when the
	 * thread is interruptible); the slot is ours alone: no wait queue. */
	intr = lfipc__wait_until(c->r, NULL, slot_ready, sl, deadline, 0) ==
	       -EINTR;
	rc = lfipc__lock_reacquire(c->lock, depth,
				   retake_deadline(deadline, timeout_ns));
	if (rc == -ETIMEDOUT)
		return abandon(sl);
	if (rc < 0 && rc != -EOWNERDEAD)
		return rc; /* could not register again: lock not held */
	/* C3 again: a notify that ran before we re-took the lock counts.
	 * Our slot cannot have been reused: it is not FREE and we live. */
	st = atomic_load_explicit(&sl->state, memory_order_acquire);
	/* The slot's ticket, read once (C1): still the one we took? */
	mine = atomic_load_explicit(&sl->ticket, memory_order_relaxed) ==
	       ticket;
	notified = mine && st == COND_SLOT_SIGNALED;
	if (mine && st != COND_SLOT_FREE)
		put_slot(c, sl, st);
	if (rc == -EOWNERDEAD)
		return rc;
	if (notified)
		return 0; /* also when interrupted: the notify counts */
	if (intr)
		return -EINTR;
	return timeout_ns == LFIPC_NOWAIT ? -EAGAIN : -ETIMEDOUT;
}

int lfipc_cond_wait_for(lfipc_cond *c, bool (*pred)(void *), void *arg,
			int64_t timeout_ns)
{
	lfipc_deadline deadline;
	bool owner_died = false;
	int rc;

	if (!c || !pred)
		return -EINVAL;
	if (!lfipc__lock_held(c->lock))
		return -EPERM;
	deadline = lfipc__deadline(timeout_ns);
	while (!pred(arg)) {
		int64_t left;

		if (timeout_ns == LFIPC_FOREVER) {
			left = LFIPC_FOREVER;
		} else {
			left = deadline - lfipc__now_ns();
			if (left <= 0)
				return owner_died ? -EOWNERDEAD
				       : timeout_ns == LFIPC_NOWAIT
					   ? -EAGAIN
					   : -ETIMEDOUT;
		}
		rc = lfipc_cond_wait(c, left);
		if (rc == -EOWNERDEAD)
			owner_died = true;
		else if (rc < 0 && rc != -ETIMEDOUT && rc != -EAGAIN)
			return rc; /* -ENOLCK included: the lock is not held */
	}
	return owner_died ? -EOWNERDEAD : 0;
}

int lfipc_cond_notify(lfipc_cond *c, unsigned n)
{
	struct {
		uint32_t age, idx;
	} w[COND_NSLOTS], tmp;
	struct cond_shm *s;
	uint32_t self, now, nw = 0, left;
	int woken = 0;

	if (!c)
		return -EINVAL;
	if (!lfipc__lock_held(c->lock))
		return -EPERM;
	if (lfipc__self(c->r, &self) < 0)
		return -EPERM;
	s = c->s;
	/* C1: relaxed, under the lock. */
	if (n == 0 ||
	    atomic_load_explicit(&s->nwait, memory_order_relaxed) == 0)
		return 0;
	now = atomic_load_explicit(&s->wseq, memory_order_relaxed);
	for (uint32_t i = 0; i < COND_NSLOTS; i++) {
		struct cond_slot *sl = &c->ring[i];

		if (atomic_load_explicit(&sl->state, memory_order_relaxed) !=
		    COND_SLOT_WAITING)
			continue;
		tmp.age = now - atomic_load_explicit(&sl->ticket,
						     memory_order_relaxed);
		tmp.idx = i;
		/* insertion sort, oldest (largest age) first */
		uint32_t j = nw++;
		while (j > 0 && w[j - 1].age < tmp.age) {
			w[j] = w[j - 1];
			j--;
		}
		w[j] = tmp;
	}
	left = nw;
	for (uint32_t k = 0; k < nw && (unsigned)woken < n; k++) {
		struct cond_slot *sl = &c->ring[w[k].idx];
		uint32_t tok =
		    atomic_load_explicit(&sl->token, memory_order_relaxed);

		left--;
		if (tok != self && !lfipc__token_alive(c->r, tok)) {
			atomic_store_explicit(&sl->state, COND_SLOT_FREE,
					      memory_order_relaxed);
			continue; /* died waiting: not counted */
		}
		/* C2: release on success, pairs with C3; a CAS, because
		 * a waiter whose deadline passed while it re-took the
		 * lock may leave its slot (abandon()): then not counted. */
		uint32_t st = COND_SLOT_WAITING;

		if (!atomic_compare_exchange_strong_explicit(
			&sl->state, &st, COND_SLOT_SIGNALED,
			memory_order_release, memory_order_relaxed))
			continue;
		/* The slot's word has no wait queue: always wake. */
		lfipc__wake_word(&sl->state, INT32_MAX);
		woken++;
	}
	atomic_store_explicit(&s->nwait, left, memory_order_relaxed);
	return woken;
}

int lfipc_cond_notify_all(lfipc_cond *c)
{
	return lfipc_cond_notify(c, UINT_MAX);
}

/* A dead waiter's slot can only be freed by someone holding the user's
 * lock: notify and wait do that as they meet it. Nothing to do here. */
int lfipc__cond_recover(lfipc_region *r, uint64_t off, uint64_t size)
{
	(void)r;
	(void)off;
	(void)size;
	return 0;
}

/* ---- descriptor, status, open-or-create ------------------------------ */

static uint64_t cond_size(const void *shape)
{
	(void)shape;
	return COND_SIZE;
}

/* Same shape: same lock (a given one, or an embedded one). */
static int cond_same_shape(lfipc_region *r, uint64_t off, uint64_t size,
			   const void *shape)
{
	const struct cond_init_arg *a = shape;
	struct cond_shm *s = lfipc__at(r, off);
	uint64_t lock_off = lfipc__shm_ld64(&s->lock_off);
	uint32_t embedded = lfipc__shm_ld32(&s->embedded);

	if (size < COND_SIZE || lfipc__shm_ld32(&s->magic) != COND_MAGIC)
		return -EPROTO;
	if (a->lock_off == 0)
		return embedded == 1 ? 0 : -EEXIST;
	return embedded == 0 && lock_off == a->lock_off ? 0 : -EEXIST;
}

static int cond_status(lfipc_region *r, uint64_t off, uint64_t size,
		       void *out)
{
	lfipc_cond_status *st = out;
	struct cond_shm *s;
	struct cond_slot *ring;
	uint64_t lock_off;
	uint32_t embedded;

	if (off % 64 != 0 || size < COND_SIZE ||
	    !lfipc__heap_range_ok(r, off, COND_SIZE))
		return -EPROTO;
	s = lfipc__at(r, off);
	lock_off = lfipc__shm_ld64(&s->lock_off);
	embedded = lfipc__shm_ld32(&s->embedded);
	if (lfipc__shm_ld32(&s->magic) != COND_MAGIC ||
	    lfipc__shm_ld32(&s->nslots) != COND_NSLOTS || embedded > 1)
		return -EPROTO;
	st->own_lock = embedded == 1;
	st->waiters_max = COND_NSLOTS;
	ring = (struct cond_slot *)((char *)s + COND_RING_OFF);
	for (uint32_t i = 0; i < COND_NSLOTS; i++) {
		/* C9: relaxed: a diagnostic snapshot of each slot. */
		uint32_t state = atomic_load_explicit(&ring[i].state,
						      memory_order_relaxed);
		uint32_t tok = atomic_load_explicit(&ring[i].token,
						    memory_order_relaxed);

		if (state == COND_SLOT_WAITING) {
			if (lfipc__token_alive(r, tok))
				st->waiters++;
			else
				st->dead_waiters++;
		} else if (state == COND_SLOT_SIGNALED) {
			st->notified++;
		}
	}
	return lfipc__lock_status_at(r, lock_off, &st->lock);
}

static uint64_t cond_size_arg(unsigned arg)
{
	(void)arg;
	return COND_SIZE;
}

const struct lfipc__objtype lfipc__cond_type = {
	.type = LFIPC_OBJ_COND,
	.name = "condition",
	.align = 64,
	.size = cond_size,
	.size_arg = cond_size_arg,
	.init = cond_init,
	.same_shape = cond_same_shape,
	.recover = lfipc__cond_recover,
	.status = cond_status,
	.status_size = sizeof(lfipc_cond_status),
	.status_min = sizeof(lfipc_cond_status),
};

int lfipc_cond_stat(const lfipc_cond *c, lfipc_cond_status *st)
{
	if (!c)
		return -EINVAL;
	return lfipc__obj_status(c->r, &lfipc__cond_type,
				 lfipc__off(c->r, c->s), COND_SIZE, st);
}

int lfipc_cond_open_or_create(lfipc_region *r, const char *name,
			      lfipc_lock *lock, lfipc_cond **out)
{
	struct cond_init_arg a = {0, 0, r};
	uint64_t off, size;
	int rc;

	if (!r || !out)
		return -EINVAL;
	if (lock) {
		if (lfipc__lock_region(lock) != r)
			return -EINVAL;
		a.lock_off = lfipc__lock_off(lock);
	}
	rc = lfipc__obj_get(r, name, &lfipc__cond_type, &a, LFIPC__GET_EITHER,
			    &off, &size, NULL);
	if (rc < 0)
		return rc;
	return cond_attach(r, off, size, out);
}
