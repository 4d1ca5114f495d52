/* SPDX-License-Identifier: MIT */
/*
 * queue.c - Queue and JoinableQueue: the object. Create, open and close,
 * the O(1) clear, sizes, shutdown, readiness without a claim (fds,
 * wait-for-any), status and open-or-create. The shared words and the
 * memory order are described in internal/queue.h; doc/queue.md explains
 * the design.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <lfipc/queue.h>

#include "internal/objtype.h"
#include "internal/proc.h"
#include "internal/queue.h"
#include "internal/recover.h"
#include "internal/region.h"
#include "internal/shm.h"
#include "internal/wait.h"

/* ---- create / open --------------------------------------------------- */

struct geom {
	uint64_t cap, n, msg_size, stride;
	unsigned flags;
};

/* The geometry of a queue of this shape, or -EINVAL. */
static int q_geom(size_t capacity, size_t msg_size, unsigned flags,
		  struct geom *g)
{
	if (capacity == 0 || capacity > LFIPC_QUEUE_MAX_CAPACITY ||
	    msg_size > LFIPC_QUEUE_MAX_MSG_SIZE || (flags & ~QUEUE_FLAGS))
		return -EINVAL;
	g->cap = capacity;
	/* at least 2 slots: with one, FULL(p) and FREE(p + 1) look alike */
	g->n = 2;
	while (g->n < capacity)
		g->n <<= 1;
	g->msg_size = msg_size;
	g->stride = (SLOT_HDR + msg_size + 63) & ~(uint64_t)63;
	g->flags = flags;
	return 0;
}

static uint64_t block_size(const struct geom *g)
{
	return sizeof(qhdr) + g->n * g->stride +
	       ((g->flags & LFIPC_QUEUE_JOINABLE) ? LFIPC_Q_TASKS_SIZE : 0);
}

static int q_init(void *block, uint64_t size, void *arg)
{
	const struct geom *g = arg;
	qhdr *h = block;
	unsigned char *slots = (unsigned char *)block + sizeof(*h);
	uint64_t i;

	if (size < block_size(g))
		return -ENOSPC;
	h->magic = LFIPC_Q_MAGIC;
	h->version = LFIPC_Q_VERSION;
	h->flags = g->flags;
	h->capacity = g->cap;
	h->nslots = g->n;
	h->msg_size = g->msg_size;
	h->stride = g->stride;
	h->slots_off = sizeof(*h);
	h->tasks_off = (g->flags & LFIPC_QUEUE_JOINABLE)
			   ? sizeof(*h) + g->n * g->stride
			   : 0;
	for (i = 0; i < g->n; i++) {
		qslot *s = (qslot *)(slots + i * g->stride);

		atomic_init(&s->word, mkword((uint32_t)i, 0));
	}
	atomic_init(&h->clr_cb, LFIPC_Q_NOREC);
	return 0;
}

/* Validate the geometry of the queue at off (size bytes, inside the heap)
 * and build a handle. Each shared field is read exactly once (a volatile
 * load), so a peer changing them meanwhile cannot make a checked value
 * differ from a used one; nothing here is read from shared memory again. */
int lfipc__q_handle(lfipc_region *r, uint64_t off, uint64_t size,
		    lfipc_queue **out)
{
	qhdr *h = lfipc__at(r, off);
	lfipc_queue *q;
	uint64_t n, stride, ms, cap, soff, toff, slots_end;
	uint32_t flags, version;

	if (off % LFIPC_GRANULE || size < sizeof(*h) ||
	    lfipc__shm_ld64(&h->magic) != LFIPC_Q_MAGIC)
		return -EPROTO;
	version = lfipc__shm_ld32(&h->version);
	n = lfipc__shm_ld64(&h->nslots);
	cap = lfipc__shm_ld64(&h->capacity);
	ms = lfipc__shm_ld64(&h->msg_size);
	stride = lfipc__shm_ld64(&h->stride);
	soff = lfipc__shm_ld64(&h->slots_off);
	toff = lfipc__shm_ld64(&h->tasks_off);
	flags = lfipc__shm_ld32(&h->flags);
	if (version != LFIPC_Q_VERSION || n < 2 || (n & (n - 1)) ||
	    n > (uint64_t)LFIPC_QUEUE_MAX_CAPACITY || cap == 0 || cap > n ||
	    ms > LFIPC_QUEUE_MAX_MSG_SIZE || stride < SLOT_HDR + ms ||
	    stride % 64 || stride > LFIPC_QUEUE_MAX_MSG_SIZE + 128 ||
	    soff != sizeof(*h) || (size - sizeof(*h)) / stride < n ||
	    (flags & ~(uint32_t)QUEUE_FLAGS))
		return -EPROTO;
	slots_end = sizeof(*h) + n * stride; /* <= size, no overflow */
	if ((flags & LFIPC_QUEUE_JOINABLE)
		? (toff != slots_end || size - slots_end < LFIPC_Q_TASKS_SIZE)
		: toff != 0)
		return -EPROTO;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->r = r;
	q->h = h;
	q->slots = (unsigned char *)h + sizeof(*h);
	q->tasks =
	    toff ? (struct lfipc_qtask *)((unsigned char *)h + toff) : NULL;
	q->cap = cap;
	q->n = n;
	q->mask = n - 1;
	q->msg_size = ms;
	q->stride = stride;
	q->total = n * stride;
	q->flags = flags;
	q->joinable = flags & LFIPC_QUEUE_JOINABLE;
	q->single[LFIPC_Q_ROLE_PUT] = flags & LFIPC_QUEUE_SINGLE_PRODUCER;
	q->single[LFIPC_Q_ROLE_GET] = flags & LFIPC_QUEUE_SINGLE_CONSUMER;
	atomic_init(&q->put_pref, 1);
	pthread_mutex_init(&q->poller_mu, NULL);
	*out = q;
	return 0;
}

int lfipc_queue_create(lfipc_region *r, const char *name, size_t capacity,
		       size_t msg_size, unsigned flags, lfipc_queue **out)
{
	struct geom g;
	uint64_t off, size;
	int rc;

	if (!r || !out)
		return -EINVAL;
	rc = q_geom(capacity, msg_size, flags, &g);
	if (rc)
		return rc;
	rc = lfipc__name_check(name);
	if (rc)
		return rc;
	size = block_size(&g);
	rc = lfipc__obj_create(r, name, LFIPC_OBJ_QUEUE, size, 128, q_init, &g,
			       &off);
	if (rc)
		return rc;
	return lfipc__q_handle(r, off, size, out);
}

int lfipc_queue_open(lfipc_region *r, const char *name, lfipc_queue **out)
{
	uint64_t off, size;
	int rc;

	if (!r || !out)
		return -EINVAL;
	rc = lfipc__obj_open(r, name, LFIPC_OBJ_QUEUE, &off, &size);
	if (rc)
		return rc;
	return lfipc__q_handle(r, off, size, out);
}

void lfipc_queue_close(lfipc_queue *q)
{
	uint32_t tok;

	if (!q)
		return;
	for (int i = 0; i < 2; i++)
		/* Q9': relaxed: closing excludes every other use. */
		lfipc__poller_close(
		    atomic_load_explicit(&q->poller[i], memory_order_relaxed));
	pthread_mutex_destroy(&q->poller_mu);
	/* A fork child closing a handle it inherited has another token (or
	 * none yet): the role taken through it is its parent's, not given
	 * back here. */
	for (int i = 0; i < 2 && lfipc__proc_self_known(&q->r->proc, &tok);
	     i++) {
		/* Q10: relaxed (see struct lfipc_queue). */
		uint64_t v = atomic_load_explicit(&q->role_held[i],
						  memory_order_relaxed);

		/* still ours: give it back (a dead holder's successor may
		 * have it by now, then this fails and leaves it) */
		if (v && (uint32_t)(v >> 32) == tok)
			atomic_compare_exchange_strong(&q->h->role[i], &v, 0);
	}
	free(q);
}

/* ---- clear ----------------------------------------------------------- */

/*
 * The clear's two waits are for a holder that runs a few instructions and
 * never wakes anybody: another clearer (the lock) and the single consumer
 * between its claim and its move of deq_pos (a 64-bit word: no futex can
 * sleep on it). Both go through the wait layer's back-off
 * (lfipc__wait_retry: a few microseconds of spinning, then sleeps of 20 us
 * doubling to 1 ms), with the holder's liveness checked before each sleep.
 * A clear has no timeout: both waits together end at one deadline,
 * CLEAR_WAIT_NS (1 s) after the call started, so a stopped holder costs
 * the caller at most about a second, then -EBUSY.
 */
struct clear_wait {
	lfipc_queue *q;
	uint32_t tok;
	/* clear_wait_consumer: the head slot, its READING word and d */
	qslot *s;
	uint64_t w, d;
	uint32_t holder; /* the single consumer */
};

/* One attempt at the lock: the CAS; with check, also the takeover from a
 * dead holder (lfipc__q_lock_try). */
static int clear_lock_try(void *ctx, bool check)
{
	struct clear_wait *c = ctx;
	uint32_t v = 0;

	if (atomic_compare_exchange_strong(&c->q->h->lock, &v, c->tok))
		return 1;
	return check && lfipc__q_lock_try(c->q, c->tok) ? 1 : 0;
}

/* Take the lock for tok by dl. 0; -EBUSY another live participant held it
 * until dl (it is stopped, or the word is corrupt). */
static int clear_lock(lfipc_queue *q, uint32_t tok, lfipc_deadline dl)
{
	struct clear_wait c = {.q = q, .tok = tok};
	int rc = lfipc__wait_retry(clear_lock_try, &c, dl);

	return rc == -ETIMEDOUT ? -EBUSY : rc;
}

/* Has the single consumer moved on from the head we saw (1), or died
 * there (with check: its message orphaned, we hold the lock as orphan()
 * would; 1)? Else 0. */
static int consumer_moved(void *ctx, bool check)
{
	struct clear_wait *c = ctx;

	if (atomic_load(&c->q->h->deq_pos) != c->d ||
	    atomic_load(&c->s->word) != c->w)
		return 1;
	if (check && !lfipc__token_alive(c->q->r, c->holder)) {
		lfipc__q_orphan_locked(c->q, c->s, c->w);
		return 1;
	}
	return 0;
}

/*
 * Single-consumer mode: the head d is READING(d, tok) with deq_pos == d,
 * so the role holder has claimed it and stores deq_pos = d + 1 next
 * (sc_advance(): it moves deq_pos with a store, so nobody else may move it
 * past a head it holds). Wait for that store if tok lives; orphan the
 * message if it is dead (we hold the lock, as orphan() would). 0: look
 * again; -EBUSY: the consumer is alive but has not moved by dl (it is
 * stopped between its claim and its store).
 */
static int clear_wait_consumer(lfipc_queue *q, qslot *s, uint64_t w,
			       uint64_t d, uint32_t tok, lfipc_deadline dl)
{
	struct clear_wait c = {.q = q, .s = s, .w = w, .d = d, .holder = tok};
	int rc = lfipc__wait_retry(consumer_moved, &c, dl);

	return rc == -ETIMEDOUT ? -EBUSY : rc;
}

/*
 * Discard positions d .. e - 1 (0 < e - d <= N + 1) past the head d we
 * hold: move deq_pos from d to e and count them in `cleared`, so that a
 * kill at any step leaves the count exact (the JoinableQueue counts
 * enq_pos - done - cleared - sum(settled) unfinished; before layout 5 a
 * kill between the move and an add to `done` lost e - d for ever). The
 * lock makes us the only writer of `cleared` and of the clear record, so
 * both are plain stores of absolute values, and the taker of the lock
 * after our death (lfipc__q_clear_recover()) can tell every step apart:
 *
 *   1. the record: clr_d = d, clr_e = e, then clr_cb = cleared (the
 *      value now; clr_cb != LFIPC_Q_NOREC is what opens it, so a record
 *      seen open is whole);
 *   2. CAS deq_pos d -> e;
 *   3. cleared = clr_cb + (e - d);
 *   4. let go of the head: CLR(d) -> FREE(d + N) (a DISCARD head is left
 *      to its producer, whose publish makes it CLR, which producers of
 *      the next lap take because deq_pos is now past it);
 *   5. close the record: clr_cb = LFIPC_Q_NOREC.
 *
 * Checked with a death at each step, and of the taker at each of its
 * steps, in tests/model/queue_recovery.pml (CLRREC=2). false: deq_pos was
 * not d (only a peer writing it): the record is closed, nothing counted,
 * and the caller undoes the head.
 */
static bool clear_move(lfipc_queue *q, qslot *s, uint64_t d, uint64_t e)
{
	qhdr *h = q->h;
	uint64_t cb = atomic_load(&h->cleared), d2 = d;
	uint64_t w = mkword((uint32_t)(d + 1), CLR);

	atomic_store(&h->clr_d, d);
	atomic_store(&h->clr_e, e);
	atomic_store(&h->clr_cb, cb);
	lfipc__test_point(LFIPC_TP_CLEAR_RECORDED, q);
	if (!atomic_compare_exchange_strong(&h->deq_pos, &d2, e)) {
		atomic_store(&h->clr_cb, LFIPC_Q_NOREC);
		return false;
	}
	lfipc__test_point(LFIPC_TP_CLEAR_MOVED, q);
	atomic_store(&h->cleared, cb + (e - d));
	lfipc__test_point(LFIPC_TP_CLEAR_COUNTED, q);
	atomic_compare_exchange_strong(&s->word, &w,
				       mkword((uint32_t)(d + q->n), 0));
	lfipc__test_point(LFIPC_TP_CLEAR_FREED, q);
	atomic_store(&h->clr_cb, LFIPC_Q_NOREC);
	return true;
}

/* The clear proper, with the lock held: hold the head slot in the slot
 * word (CLR or DISCARD), move deq_pos past everything claimed so far,
 * account for it, let go of the head. Returns the number discarded,
 * -EPROTO or -EBUSY (clear_wait_consumer()). Every turn of the loop after
 * the first goes through the CAS bound (internal/wait.h) without a
 * deadline (dl is the wait for a live consumer's store, not the call's):
 * a peer that keeps rewriting the head's word or a position ends it with
 * -EPROTO after about a second, before the head is held (a turn that
 * holds it returns). */
static int64_t clear_locked(lfipc_queue *q, lfipc_deadline dl)
{
	struct lfipc_cas_bound b = LFIPC_CAS_BOUND_INIT;
	qhdr *h = q->h;

	for (;;) {
		uint64_t d = atomic_load(&h->deq_pos);
		uint64_t e = atomic_load(&h->enq_pos);
		qslot *s = slot_at(q, d);
		uint64_t w = atomic_load(&s->word);
		uint32_t c = wclaim(w), tok = c & CL_TOK, flags = c & CL_WR;
		int32_t df = sdiff(wseq(w), (uint32_t)(d + 1));
		uint64_t held, d2 = d;

		if ((int64_t)(e - d) <= 0)
			return 0;
		/* e - d <= N + 1 (N, plus one while a dropped TOMB's
		 * consumer has not moved deq_pos yet). */
		if ((uint64_t)(e - d) > q->n + 1) {
			if (d == atomic_load(&h->deq_pos) &&
			    e == atomic_load(&h->enq_pos))
				return -EPROTO;
			goto retry;
		}
		if (df == 0 && (c == 0 || c == TOMB)) {
			held = mkword(wseq(w), CLR); /* FULL/TOMB -> CLR */
		} else if (df == -1 && flags == CL_W && tok) {
			/* WRITING -> DISCARD: the producer keeps writing and
			 * hands the slot over as CLR when it publishes. */
			held = mkword(wseq(w), tok | CL_WR);
		} else if ((df == 0 && c == CLR) ||
			   (df == -1 && flags == CL_WR && tok)) {
			held = w; /* already ours (a retried attempt) */
		} else if (df == 0 && flags == CL_R && tok &&
			   q->single[LFIPC_Q_ROLE_GET]) {
			int rc = clear_wait_consumer(q, s, w, d, tok, dl);

			if (rc)
				return rc;
			goto retry;
		} else if ((df == 0 && flags == CL_R) ||
			   (df > 0 && df <= (int64_t)q->n + 1)) {
			/* head being read, orphaned or released while
			 * deq_pos lags: help it. */
			atomic_compare_exchange_strong(&h->deq_pos, &d2, d + 1);
			goto retry;
		} else {
			/* Nothing legitimate looks like this at the head of
			 * a non-empty queue, unless we read a stale mix. */
			if (d == atomic_load(&h->deq_pos) &&
			    e == atomic_load(&h->enq_pos) &&
			    w == atomic_load(&s->word))
				return -EPROTO;
			goto retry;
		}
		if (held != w &&
		    !atomic_compare_exchange_strong(&s->word, &w, held))
			goto retry;
		/* Nobody but us moves deq_pos while the head is held: every
		 * message claimed up to now is discarded. */
		lfipc__test_point(LFIPC_TP_CLEAR_HELD, q);
		e = atomic_load(&h->enq_pos);
		if ((uint64_t)(e - d) > q->n + 1 || !clear_move(q, s, d, e)) {
			lfipc__q_clear_undo(q);
			return -EPROTO;
		}
		return (int64_t)(e - d);
	retry:
		if (lfipc__cas_retry(&b, LFIPC_DL_NEVER) < 0)
			return -EPROTO;
	}
}

int64_t lfipc_queue_clear(lfipc_queue *q)
{
	lfipc_deadline dl;
	uint32_t tok;
	int64_t n;
	int rc;

	if (!q)
		return -EINVAL;
	rc = lfipc__self(q->r, &tok);
	if (rc)
		return rc;
	dl = lfipc__deadline(CLEAR_WAIT_NS); /* see struct clear_wait */
	rc = clear_lock(q, tok, dl);
	if (rc)
		return rc;
	n = clear_locked(q, dl); /* counted in `cleared` (clear_move()) */
	lfipc__q_lock_release(q);
	lfipc__q_drop_holes(q); /* a take-over may have left the head a TOMB */
	ev_wake(q, &q->h->not_full);
	ev_wake(q, &q->h->joined);
	/* consumers that saw the held head as "in flight" look again */
	ev_wake(q, &q->h->not_empty);
	return n;
}

/* ---- sizes, shutdown -------------------------------------------------------
 */

size_t lfipc_queue_qsize(const lfipc_queue *q)
{
	uint64_t e, d, hh;
	int64_t n;

	if (!q)
		return 0;
	e = atomic_load(&q->h->enq_pos);
	d = atomic_load(&q->h->deq_pos);
	hh = atomic_load(&q->h->hole_hi);
	n = (int64_t)(e - d);
	if (n < 0)
		n = 0;
	/* Holes (TOMB) are not messages. They lie below hole_hi, so in a
	 * queue that never had one below deq_pos this costs nothing; else
	 * the positions up to hole_hi are looked at (at most N + 1). */
	if ((int64_t)(hh - d) > 0) {
		uint64_t end = (int64_t)(hh - e) < 0 ? hh : e;

		for (uint64_t x = d; (int64_t)(end - x) > 0 && x - d <= q->n;
		     x++)
			if (atomic_load(&slot_at(q, x)->word) ==
			    mkword((uint32_t)(x + 1), TOMB))
				n--;
	}
	/* Orphans (behind deq_pos) are messages still to be delivered. */
	n += atomic_load(&q->h->orphans);
	if (n < 0)
		return 0;
	if ((uint64_t)n > q->cap)
		return q->cap;
	return (size_t)n;
}

bool lfipc_queue_empty(const lfipc_queue *q)
{
	return lfipc_queue_qsize(q) == 0;
}

bool lfipc_queue_full(const lfipc_queue *q)
{
	return q && lfipc_queue_qsize(q) == q->cap;
}

size_t lfipc_queue_capacity(const lfipc_queue *q)
{
	return q ? q->cap : 0;
}

size_t lfipc_queue_msg_size(const lfipc_queue *q)
{
	return q ? q->msg_size : 0;
}

int lfipc_queue_shutdown(lfipc_queue *q)
{
	if (!q)
		return -EINVAL;
	atomic_store(&q->h->closed, 1);
	ev_wake(q, &q->h->not_empty);
	ev_wake(q, &q->h->not_full);
	return 0;
}

/* ---- readiness without a claim (fds, wait-for-any) -------------------------
 */

/* Positions a readiness look steps over (slots whose claimant has not
 * moved the position word yet); beyond, it answers "not ready". */
#define PEEK_STEPS 64u

/*
 * Would a get (a put) not block now? Nothing is claimed (fds, wait-for-any):
 * a get would not block when the queue is shut down, holds an orphan, or
 * its head slot is FULL; a put when the queue is shut down or the slot at
 * its position is free for this lap within the capacity. Slots already
 * claimed at the position (the claimant has not moved the position word
 * yet) and holes are stepped over. seq_cst loads (W3 of a wait-for-any).
 */
static bool get_now(void *ctx)
{
	lfipc_queue *q = ctx;
	uint64_t p;

	if (atomic_load(&q->h->closed) || atomic_load(&q->h->orphans))
		return true;
	p = atomic_load(&q->h->deq_pos);
	for (unsigned i = 0; i < PEEK_STEPS; i++, p++) {
		uint64_t w = atomic_load(&slot_at(q, p)->word);
		int32_t d = sdiff(wseq(w), (uint32_t)(p + 1));

		/* Released for a later lap: position p was consumed after
		 * our load of deq_pos (another consumer): what counts is
		 * further on; stopping here would call a queue that holds
		 * messages empty, and a poller would sleep on it. */
		if (d > 0)
			continue;
		if (d < 0)
			return false; /* empty or being written */
		if (wclaim(w) == 0)
			return true; /* FULL */
		if (wclaim(w) == CLR)
			return false; /* held by a clear */
		/* READING, ORPHAN, TOMB: look at the next position */
	}
	return false;
}

static bool put_now(void *ctx)
{
	lfipc_queue *q = ctx;
	uint64_t p;

	if (atomic_load(&q->h->closed))
		return true;
	p = atomic_load(&q->h->enq_pos);
	for (unsigned i = 0; i < PEEK_STEPS; i++, p++) {
		uint64_t w = atomic_load(&slot_at(q, p)->word);

		if ((int64_t)(p - atomic_load(&q->h->deq_pos)) >=
		    (int64_t)q->cap)
			return false;
		if (wseq(w) != (uint32_t)p)
			return false; /* the previous lap holds it */
		if (wclaim(w) == 0)
			return true;
		/* claimed for this lap: look at the next position */
	}
	return false;
}

/* Non-consuming readiness callbacks for lfipc_wait_any (wait_any.c). */
static int peek_ready(lfipc_queue *q, bool now, uint64_t pos,
		      struct lfipc_sleep *sl, bool check)
{
	uint32_t tok;

	/* LFIPC_DL_NOW: a fork child that has not registered yet must not
	 * wait at the gate inside the wait layer's loop; its check waits for
	 * the next slice. */
	if (check && lfipc__self_until(q->r, &tok, LFIPC_DL_NOW) == 0)
		lfipc__q_slice_check(q, tok);
	if (now)
		return 1;
	sl->partner[0] = lfipc__q_blocker(q, pos);
	return 0;
}

static int get_peek(void *ctx, struct lfipc_sleep *sl, bool check)
{
	lfipc_queue *q = ctx;

	return peek_ready(q, get_now(q), atomic_load(&q->h->deq_pos), sl,
			  check);
}

static int put_peek(void *ctx, struct lfipc_sleep *sl, bool check)
{
	lfipc_queue *q = ctx;

	return peek_ready(q, put_now(q), atomic_load(&q->h->enq_pos), sl,
			  check);
}

int lfipc__queue_any(lfipc_queue *q, int side, struct lfipc_any *a,
		     lfipc_region **r)
{
	if (side != LFIPC_FD_GET && side != LFIPC_FD_PUT)
		return -EINVAL;
	a->wq = side == LFIPC_FD_GET ? &q->h->not_empty : &q->h->not_full;
	a->ready = side == LFIPC_FD_GET ? get_peek : put_peek;
	a->ctx = q;
	*r = q->r;
	return 0;
}

int lfipc_queue_fd(lfipc_queue *q, int side)
{
	if (!q || (side != LFIPC_FD_GET && side != LFIPC_FD_PUT))
		return -EINVAL;
	return lfipc__poller_fd_once(
	    q->r, side == LFIPC_FD_GET ? &q->h->not_empty : &q->h->not_full,
	    &q->poller[side], &q->poller_mu,
	    side == LFIPC_FD_GET ? get_now : put_now, q);
}

/* ---- descriptor, status, open-or-create ------------------------------ */

static uint64_t q_size(const void *shape)
{
	return block_size(shape);
}

static int q_same_shape(lfipc_region *r, uint64_t off, uint64_t size,
			const void *shape)
{
	const struct geom *g = shape;
	lfipc_queue *q;
	int rc = lfipc__q_handle(r, off, size, &q);

	if (rc < 0)
		return rc == -ENOMEM ? rc : -EPROTO;
	rc = q->cap == g->cap && q->msg_size == g->msg_size &&
		     q->flags == g->flags
		 ? 0
		 : -EEXIST;
	free(q);
	return rc;
}

/* Status through a validated handle. Diagnostic snapshot: every shared
 * word is read once, relaxed (Q14), and nothing is derived from a word
 * beyond counting. */
static void q_fill(const lfipc_queue *q, lfipc_queue_status *st)
{
	qhdr *h = q->h;

	st->depth = lfipc_queue_qsize(q);
	st->capacity = q->cap;
	st->msg_size = q->msg_size;
	st->joinable = q->joinable;
	/* Q14: relaxed loads: a snapshot for people, ordered with nothing. */
	st->shut_down =
	    atomic_load_explicit(&h->closed, memory_order_relaxed) != 0;
	st->consumers_sleeping = lfipc__wq_sleepers(&h->not_empty) != 0;
	st->producers_sleeping = lfipc__wq_sleepers(&h->not_full) != 0;
	st->puts = atomic_load_explicit(&h->enq_pos, memory_order_relaxed);
	st->gets = atomic_load_explicit(&h->deq_pos, memory_order_relaxed);
	st->cleared = atomic_load_explicit(&h->cleared, memory_order_relaxed);
	st->corrupt = atomic_load_explicit(&h->corrupt, memory_order_relaxed);
	for (uint64_t i = 0; i < q->n; i++) {
		uint32_t c = wclaim(atomic_load_explicit(&slot_at(q, i)->word,
							 memory_order_relaxed));
		uint32_t tok = c & LFIPC_Q_CL_TOK;

		if (c == TOMB) {
			st->holes++;
		} else if (c == ORPHAN) {
			st->orphans++;
		} else if (tok != 0 && (c & CL_WR) != CL_WR) {
			if (!lfipc__token_alive(q->r, tok))
				st->dead_claims++;
			else if (c & CL_W)
				st->writing++;
			else
				st->reading++;
		}
	}
	if (q->joinable) {
		uint64_t settled = 0;

		for (uint32_t i = 0; i < LFIPC_PROC_SLOTS; i++)
			settled += atomic_load_explicit(&q->tasks[i].settled,
							memory_order_relaxed);
		st->tasks_unfinished =
		    st->puts -
		    atomic_load_explicit(&h->done, memory_order_relaxed) -
		    st->cleared - settled;
		if ((int64_t)st->tasks_unfinished < 0)
			st->tasks_unfinished = 0;
		st->tasks_abandoned =
		    atomic_load_explicit(&h->abandoned, memory_order_relaxed);
	}
}

static int q_status(lfipc_region *r, uint64_t off, uint64_t size, void *st)
{
	lfipc_queue *q;
	int rc = lfipc__q_handle(r, off, size, &q);

	if (rc < 0)
		return rc;
	q_fill(q, st);
	free(q);
	return 0;
}

const struct lfipc__objtype lfipc__queue_type = {
    .type = LFIPC_OBJ_QUEUE,
    .name = "queue",
    .align = 128,
    .size = q_size,
    .init = q_init,
    .same_shape = q_same_shape,
    .recover = lfipc__queue_recover,
    .status = q_status,
    .status_size = sizeof(lfipc_queue_status),
    .status_min = sizeof(lfipc_queue_status),
};

int lfipc_queue_stat(const lfipc_queue *q, lfipc_queue_status *st)
{
	lfipc_queue_status tmp;

	if (!q)
		return -EINVAL;
	memset(&tmp, 0, sizeof(tmp));
	tmp.struct_size = sizeof(tmp);
	q_fill(q, &tmp);
	return lfipc__status_out(st, &tmp, sizeof(tmp), sizeof(tmp));
}

size_t lfipc_queue_bytes(size_t capacity, size_t msg_size, unsigned flags)
{
	struct geom g;

	if (q_geom(capacity, msg_size, flags, &g) < 0)
		return 0;
	return lfipc__obj_bytes(&lfipc__queue_type, &g);
}

int lfipc_queue_open_or_create(lfipc_region *r, const char *name,
			       size_t capacity, size_t msg_size, unsigned flags,
			       lfipc_queue **out)
{
	struct geom g;
	uint64_t off, size;
	int rc;

	if (!r || !out)
		return -EINVAL;
	rc = q_geom(capacity, msg_size, flags, &g);
	if (rc < 0)
		return rc;
	rc = lfipc__obj_get(r, name, &lfipc__queue_type, &g, LFIPC__GET_EITHER,
			    &off, &size, NULL);
	if (rc)
		return rc;
	return lfipc__q_handle(r, off, size, out);
}
