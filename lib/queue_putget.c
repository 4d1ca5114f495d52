/* SPDX-License-Identifier: MIT */
/*
 * queue_putget.c - the put and get paths of a Queue: claiming a slot,
 * publishing and releasing it, waiting through the wait layer, and the
 * single-producer / single-consumer roles (zero-copy reserve/commit and
 * peek/release are in queue_zerocopy.c, the bulk calls put_many and
 * get_many in queue_bulk.c, both on the functions at the end of this
 * file; what this file and queue_bulk.c both make on every call or slot,
 * the role check, the single producer's claim, publishing or giving up a
 * slot and the first claim of a call, is in internal/queue_fast.h).
 * internal/queue.h describes the shared words.
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
#include "internal/queue_fast.h"
#include "internal/recover.h"
#include "internal/region.h"
#include "internal/shm.h"
#include "internal/wait.h"

/* ---- producer side --------------------------------------------------- */

/* Claim slot s (word w, position p) for writing by tok and help enq_pos. */
static bool put_cas(lfipc_queue *q, qslot *s, uint64_t w, uint64_t p,
		    uint32_t tok)
{
	uint64_t p2 = p;

	if (!atomic_compare_exchange_strong(&s->word, &w,
					    mkword((uint32_t)p, tok | CL_W)))
		return false;
	atomic_compare_exchange_strong(&q->h->enq_pos, &p2, p + 1);
	return true;
}

/* Before the first look of a put call at slot s: prefetch it for writing
 * (bytes of payload) unless the first attempt of the handle's last put
 * call found the queue full (put_pref). */
static inline void put_prefetch(lfipc_queue *q, const qslot *s, uint64_t bytes)
{
	/* Q18: relaxed, a hint (struct lfipc_queue). */
	if (atomic_load_explicit(&q->put_pref, memory_order_relaxed))
		slot_prefetch_w(q, s, bytes);
}

/* Record whether the first attempt of a put call found its slot free
 * (see put_pref). */
static inline void put_pref_set(lfipc_queue *q, bool free_slot)
{
	/* Q18: relaxed, a hint; written only when it changes. */
	if (atomic_load_explicit(&q->put_pref, memory_order_relaxed) !=
	    free_slot)
		atomic_store_explicit(&q->put_pref, free_slot,
				      memory_order_relaxed);
}

/* Try to claim one slot for writing. 1: *pos_out, *s_out claimed;
 * 0: full; -EPROTO: the shared words make no sense. first: the call's
 * first attempt, which may prefetch the slot (len bytes of payload).
 * Every turn of the loop after the first (a failed CAS, a position
 * helped or moved on) goes through the CAS bound (q_cas_retry()) with
 * the call's deadline dl (NULL: none): a peer that keeps rewriting a slot
 * word or enq_pos ends it with -ETIMEDOUT at the deadline, else -EPROTO
 * after about a second. */
static int try_claim_put(lfipc_queue *q, uint32_t tok, qslot **s_out,
			 uint64_t *pos_out, uint64_t len, bool first,
			 struct qdl *dl)
{
	struct lfipc_cas_bound b = LFIPC_CAS_BOUND_INIT;
	qhdr *h = q->h;
	uint64_t p = atomic_load(&h->enq_pos);
	int rc;

	if (first)
		put_prefetch(q, slot_at(q, p), len);

	if (q->single[LFIPC_Q_ROLE_PUT]) {
		qslot *s = sp_claim(
		    q, p, q->cap != q->n ? atomic_load(&h->deq_pos) : 0, tok);

		if (s) {
			sp_advance(q, p + 1);
			*s_out = s;
			*pos_out = p;
			return 1;
		}
	}
	for (;;) {
		qslot *s = slot_at(q, p);
		uint64_t w = atomic_load(&s->word);
		int32_t d = sdiff(wseq(w), (uint32_t)p);
		uint32_t c = wclaim(w);
		uint64_t p2;

		if (q->cap != q->n && (int64_t)(p - atomic_load(&h->deq_pos)) >=
					  (int64_t)q->cap) {
			p2 = atomic_load(&h->enq_pos);
			if (p2 == p)
				return 0;
			p = p2;
			goto retry;
		}
		if (d == 0 && c == 0) {
			if (put_cas(q, s, w, p, tok)) {
				*s_out = s;
				*pos_out = p;
				return 1;
			}
			goto retry;
		}
		if (d == sdiff((uint32_t)(p - q->n + 1), (uint32_t)p) &&
		    (c == 0 || c == TOMB || c == CLR) &&
		    (int64_t)(atomic_load(&h->deq_pos) - (p - q->n)) > 0) {
			/* FULL / TOMB / CLR of the previous lap behind
			 * deq_pos: discarded by a clear, free for this lap. */
			if (put_cas(q, s, w, p, tok)) {
				*s_out = s;
				*pos_out = p;
				return 1;
			}
			goto retry;
		}
		p2 = atomic_load(&h->enq_pos);
		if (p2 != p) {
			p = p2;
			goto retry;
		}
		/* enq_pos was p when w was loaded: w must be within a lap. */
		if (!seq_sane(q, d))
			return -EPROTO;
		if (d < 0) {
			/* the previous lap still holds it: full, unless its
			 * claimant is dead (checked now and then) */
			if ((c & CL_TOK) && lfipc__q_stuck(q, w) &&
			    lfipc__q_repair(q, tok, s, w))
				goto retry;
			return 0;
		}
		/* slot p is claimed or beyond (its claimant has not moved
		 * enq_pos yet): help. */
		if (atomic_compare_exchange_strong(&h->enq_pos, &p2, p + 1))
			p = p + 1;
		else
			p = p2;
	retry:
		if ((rc = q_cas_retry(&b, dl)) < 0)
			return rc;
	}
}

/* Publish the slot at position p claimed by tok and wake whom it concerns,
 * within the call's deadline dl (NULL: none). Returns 0 (also when a clear
 * discarded it meanwhile), -EPROTO or -ETIMEDOUT (a peer rewrites the
 * slot's word and the queue lock stays held: lfipc__q_publish_retry()). */
static inline __attribute__((always_inline)) int
publish(lfipc_queue *q, qslot *s, uint64_t p, uint32_t tok, struct qdl *dl)
{
	int rc = publish_slot(q, s, p, tok, dl);

	if (rc == 0) {
		ev_wake(q, &q->h->not_empty);
		wake_if_behind(q, p);
	} else if (rc == 1) {
		ev_wake(q, &q->h->not_full);
	}
	return rc < 0 ? rc : 0;
}

/*
 * At a slow part of the CAS bound of lfipc__q_publish_retry() (every
 * LFIPC_CAS_YIELD-th failed CAS): end the publication (done 0) or the
 * giving up (done TOMB) of position p, slot s, with a store, holding the
 * queue lock. A clear (and the undo of a dead
 * clearer's) changes a WRITING slot only while it holds the lock, so with
 * the lock held nobody but a hostile peer flips the word, and deq_pos
 * says which of the two the word really is: past p, a clear discarded p
 * (it moved deq_pos past p before it let the lock go; nobody else moves
 * deq_pos past a slot that a live producer holds): CLR(p + 1), as the
 * protocol would make it; else no clear counted p: done(p + 1), the
 * publication or the hole itself. A consumer that read deq_pos before a
 * clear moved it never claims the CLR (its CAS expects FULL), so nothing
 * is both delivered and counted as discarded. Returns 0 (done(p + 1)), 1
 * (CLR), or -EBUSY when a live participant holds the lock (the caller
 * tries again later). lfipc__q_lock_try() never waits.
 */
static int publish_locked(lfipc_queue *q, qslot *s, uint64_t p, uint32_t tok,
			  uint32_t done)
{
	bool behind;

	if (!lfipc__q_lock_try(q, tok))
		return -EBUSY;
	behind = (int64_t)(atomic_load(&q->h->deq_pos) - p) > 0;
	/* Q3's release of the payload: a seq_cst store. */
	atomic_store(&s->word, mkword((uint32_t)(p + 1), behind ? CLR : done));
	lfipc__q_lock_release(q);
	return behind ? 1 : 0;
}

/*
 * The retries of publish_slot() (done 0: the slot becomes FULL(p + 1))
 * and give_up_slot() (done TOMB: TOMB(p + 1)) after a first CAS that
 * failed and left w, within the call's deadline dl (NULL: none). The word
 * of a slot that a live producer tok holds is written by three parties
 * only: tok, a clear (WRITING(p) -> DISCARD(p)) and the undo of a dead
 * clearer's half-done clear (DISCARD(p) -> WRITING(p)), both holding the
 * queue lock; a repair never touches a live claimant's slot. So the word
 * flips between the two a few times at most, while clearers die; a peer
 * that flips it before every CAS of ours would keep this loop for ever.
 * The store of publish_locked() is as good as the CAS at any time, so it
 * ends the retries at the first sign of such a peer: at every
 * LFIPC_CAS_YIELD-th failed CAS (no clock read; between well-behaved
 * peers the CAS never fails that often). Waiting for the CAS bound's
 * second first (cas19) made a put with a timeout, or LFIPC_NOWAIT, return
 * a second late. If a live participant holds the lock (a clear stopped
 * while it holds it, and a peer flipping our slot), the lock is tried
 * again at each LFIPC_CAS_YIELD-th failure until the CAS bound with the
 * deadline dl: then -ETIMEDOUT at the deadline, else -EPROTO, the slot
 * left as it is, ours, until this process dies (a dead producer's slot is
 * then repaired as any, lfipc__q_repair()). Returns 0 (FULL or TOMB made),
 * 1 (CLR: a clear discarded it), -EPROTO (overwritten: nothing of ours is
 * left; or the lock stayed held), -ETIMEDOUT.
 */
int lfipc__q_publish_retry(lfipc_queue *q, qslot *s, uint64_t p, uint32_t tok,
			   uint64_t w, uint32_t done, struct qdl *dl)
{
	const uint64_t mine = mkword((uint32_t)p, tok | CL_W);
	const uint64_t disc = mkword((uint32_t)p, tok | CL_WR);
	const uint64_t end = mkword((uint32_t)(p + 1), done);
	struct lfipc_cas_bound b = LFIPC_CAS_BOUND_INIT;
	int rc;

	for (;;) {
		if (w != mine && w != disc)
			return -EPROTO;
		if (lfipc__cas_count(&b)) {
			if ((rc = publish_locked(q, s, p, tok, done)) >= 0)
				return rc;
			if ((rc = lfipc__cas_slow(&b, qdl_get(dl))) < 0)
				return rc;
		}
		/* Q3 (publish_slot()): seq_cst CAS. */
		if (w == mine &&
		    atomic_compare_exchange_strong(&s->word, &w, end))
			return 0;
		/* A clear took the slot (DISCARD): the message is
		 * discarded; hand the slot over as CLR, the clear has
		 * counted it. */
		if (w == disc &&
		    atomic_compare_exchange_strong(
			&s->word, &w, mkword((uint32_t)(p + 1), CLR)))
			return 1;
	}
}

/* A put that claimed position p of slot s and then found the queue shut
 * down gives the position up. The hole it leaves is dropped at once if it
 * is at the head: the consumers may all have returned -EPIPE already (they
 * saw the queue closed and empty before our claim), and a hole nobody
 * drops would keep join waiting and qsize() above 0 for ever. */
static int put_closed(lfipc_queue *q, qslot *s, uint64_t p, uint32_t tok,
		      struct qdl *dl)
{
	give_up_slot(q, s, p, tok, dl);
	lfipc__q_drop_holes_dl(q, dl);
	ev_wake(q, &q->h->not_empty);
	return -EPIPE;
}

/* One claim attempt: 0 claimed, 1 full, or a negative errno. The seq_cst
 * load of closed after the claim pairs with the seq_cst store in
 * lfipc_queue_shutdown(): either the shutdown comes later in the total
 * order (and a get that then sees "closed" also sees our enq_pos, so it
 * waits for our message), or we see it and give the position up. */
static int claim_once(lfipc_queue *q, uint32_t tok, qslot **s, uint64_t *pos,
		      uint64_t len, bool first, struct qdl *dl)
{
	int rc = try_claim_put(q, tok, s, pos, len, first, dl);

	if (rc < 0)
		return rc;
	if (first)
		put_pref_set(q, rc > 0);
	if (rc == 0)
		return 1;
	if (atomic_load(&q->h->closed))
		return put_closed(q, *s, *pos, tok, dl);
	return 0;
}

/* ---- waiting --------------------------------------------------------- */

/* The token of the participant whose claim on the slot of position pos
 * keeps a waiter waiting (a producer writing the head, a consumer of the
 * previous lap still reading the slot producers need), or 0: the wait
 * layer sleeps on its death word too, so its death ends the sleep. */
uint32_t lfipc__q_blocker(const lfipc_queue *q, uint64_t pos)
{
	/* Q12: relaxed: a hint; the checks re-read the word (slice_check). */
	uint64_t w =
	    atomic_load_explicit(&slot_at(q, pos)->word, memory_order_relaxed);

	return wclaim(w) & CL_TOK;
}

/* The checks a waiter makes when the wait layer asks for them (check:
 * before the first sleep without the death push, after a partner's death
 * word woke it, at each slice end): O(1) whatever N (slice_check); a
 * caller that only polls makes them every POLL_CHECK attempts. */
static void qwait_check(struct qwait *c)
{
	if (c->nowait)
		lfipc__q_poll_tick(c->q, c->tok);
	else
		lfipc__q_slice_check(c->q, c->tok);
}

/* Readiness callback of a put (internal/wait.h). */
int lfipc__q_put_ready(void *ctx, struct lfipc_sleep *sl, bool check)
{
	struct qwait *c = ctx;
	int rc;

	if (check)
		qwait_check(c);
	/* Q4: seq_cst: the W3 load of the wait protocol against the store of
	 * lfipc_queue_shutdown() (K1). Also an early exit only; the
	 * authoritative check is the seq_cst load after the claim
	 * (claim_once). */
	if (atomic_load(&c->q->h->closed))
		return -EPIPE;
	rc = claim_once(c->q, c->tok, c->s, c->pos, c->len,
			c->tries++ == 0 && c->pref, &c->dl);
	if (rc <= 0)
		return rc == 0 ? 1 : rc;
	sl->partner[0] = lfipc__q_blocker(c->q, atomic_load(&c->q->h->enq_pos));
	return 0;
}

/* The poller of side (0 get, 1 put), or NULL when nobody made an fd. */
static struct lfipc_poller *poller_of(lfipc_queue *q, int side)
{
	/* Q9: acquire, pairs with the release in lfipc_queue_fd(). */
	return atomic_load_explicit(&q->poller[side], memory_order_acquire);
}

/* Wait through the wait layer on wq until ready() completes, the call
 * fails or timeout_ns passes. The first attempt reads no clock. The
 * deadline is c->dl's when a claim loop of the first attempt made it
 * already (qdl_get()), so that both end at the same time. */
int lfipc__q_wait_run(struct qwait *c, int side, struct lfipc_wq *wq,
		      lfipc_ready_fn ready, int64_t timeout_ns)
{
	struct lfipc_sleep sl = {0};
	int rc;

	c->dl.timeout_ns = timeout_ns;
	rc = ready(c, &sl, false);
	if (rc)
		return rc > 0 ? 0 : rc;
	return lfipc__wait_poll(c->q->r, wq, ready, c, qdl_get(&c->dl), 0,
				side < 0 ? NULL : poller_of(c->q, side));
}

/*
 * Single-producer mode, the common case of a put: slot p = enq_pos is
 * FREE(p) (nobody but the role holder tok claims a FREE slot, sp_claim()),
 * so the payload is written before the claim, and the claim, the move of
 * enq_pos and the publication follow at once: the slot's line is written
 * in one short burst instead of being claimed, given up to a polling
 * consumer's read and fetched back for the payload and the publication.
 * The payload of a FREE slot is read by nobody (a consumer reads it only
 * after its claiming CAS, which comes after our publishing CAS; the last
 * reader's copy came before its release store, which our seq_cst load of
 * FREE(p) saw). A death before the claim leaves FREE(p) with stray bytes
 * that the next producer overwrites. Returns 1 when the fast way does not
 * apply (the caller takes the general way, which writes the payload
 * again), else what a put returns.
 */
static inline __attribute__((always_inline)) int
sp_put(lfipc_queue *q, uint32_t tok, const void *msg, size_t len, bool first,
       int64_t timeout_ns)
{
	struct qdl dl = {.timeout_ns = timeout_ns};
	uint64_t p = atomic_load(&q->h->enq_pos);
	qslot *s = slot_at(q, p);

	if (q->cap != q->n &&
	    (int64_t)(p - atomic_load(&q->h->deq_pos)) >= (int64_t)q->cap)
		return 1;
	if (first)
		put_prefetch(q, s, len);
	if (atomic_load(&s->word) != mkword((uint32_t)p, 0)) {
		if (first)
			put_pref_set(q, false);
		return 1;
	}
	if (first)
		put_pref_set(q, true);
	msg_copy(s->data, msg, len);
	s->len = len;
	/* Q15 (sp_claim()): relaxed, ordered before the seq_cst store of
	 * enq_pos. */
	atomic_store_explicit(&s->word, mkword((uint32_t)p, tok | CL_W),
			      memory_order_relaxed);
	sp_advance(q, p + 1);
	/* The Dekker pairing with shutdown, as in claim_once(). */
	if (atomic_load(&q->h->closed))
		return put_closed(q, s, p, tok, &dl);
	return publish(q, s, p, tok, &dl);
}

/*
 * Single-producer mode, sp_put() found the queue full (slot p = enq_pos
 * still holds the previous lap): the consumer works on that very slot
 * next, and every look at it (each attempt of the wait layer's spin loads
 * its word) takes the line away from the consumer in the middle of its
 * claim, copy and release. At small messages the producer is the faster
 * side, the ring sits full, and those looks cost the consumer more than
 * its own work (doc/perf.md). So before the wait layer's attempts, wait
 * (spinning, bounded) until the slot SP_RUN - 1 further on is free for
 * this lap: the consumer is then SP_RUN slots ahead, and the producer
 * fills the run behind it without touching a line the consumer is on.
 * Only a heuristic: it reads slot words, deq_pos and closed (Q17: relaxed,
 * hints; the claim that follows re-reads everything), writes nothing,
 * returns after at most the thread's spin budget (lfipc__wait_spin_budget(),
 * 0 when spinning does not pay on this machine now) and never past the
 * caller's timeout_ns (none for an expired one: such a call makes one
 * attempt), and whatever it sees, the caller then takes the ordinary way
 * (sp_put(), then the wait layer) with what is left of its timeout. Returns
 * the time it spun, 0 when it did not or timeout_ns is LFIPC_FOREVER.
 */
#define SP_RUN 32

static int64_t sp_await_run(lfipc_queue *q, int64_t timeout_ns)
{
	uint64_t run = q->n / 4 < SP_RUN ? q->n / 4 : SP_RUN;
	int64_t budget = lfipc__wait_spin_budget(), t0, t;
	uint64_t p, w, want;
	uint32_t c;
	_Atomic uint64_t *word;

	if (timeout_ns != LFIPC_FOREVER) {
		if (timeout_ns <= 0)
			return 0; /* NOWAIT or expired: one attempt */
		if (timeout_ns < budget)
			budget = timeout_ns;
	}
	/* One CPU: the consumer cannot run while we spin. The wait layer
	 * does not spin there either, so it never lowers the budget. */
	if (run < 2 || q->cap != q->n || budget < LFIPC_SPIN_MIN_NS ||
	    lfipc__ncpus() < 2)
		return 0;
	/* Shut down: the put fails with -EPIPE, no run will come for it
	 * (the wait had spun the whole budget at every such put). Q17:
	 * relaxed, a hint; lfipc__q_put_ready() and claim_once() decide
	 * (seq_cst). */
	if (atomic_load_explicit(&q->h->closed, memory_order_relaxed))
		return 0;
	/* Q17: relaxed, enq_pos is ours to move (sp_advance()). */
	p = atomic_load_explicit(&q->h->enq_pos, memory_order_relaxed);
	/* Q17: relaxed, a hint. */
	w = atomic_load_explicit(&slot_at(q, p)->word, memory_order_relaxed);
	/* Only when slot p holds the previous lap: the queue is full. */
	if (sdiff(wseq(w), (uint32_t)p) >= 0)
		return 0;
	/* Unless no reader holds it and deq_pos is past it: a clear
	 * discarded it (FULL, CLR) or a consumer dropped it (TOMB), and
	 * try_claim_put() takes it at once. Its run is discarded too and
	 * never turns FREE: without this, every put of the lap after a clear
	 * spun the whole budget for nothing. Q17: relaxed, a hint. */
	c = wclaim(w);
	if ((c == 0 || c == TOMB || c == CLR) &&
	    (int64_t)(atomic_load_explicit(&q->h->deq_pos,
					   memory_order_relaxed) -
		      (p - q->n)) > 0)
		return 0;
	word = &slot_at(q, p + run - 1)->word;
	want = mkword((uint32_t)(p + run - 1), 0);
	t0 = lfipc__now_ns();
	for (unsigned i = 1;; i++) {
		/* Q17: relaxed, a hint (see above). */
		if (atomic_load_explicit(word, memory_order_relaxed) == want)
			return timeout_ns == LFIPC_FOREVER
				   ? 0
				   : lfipc__now_ns() - t0;
		lfipc__cpu_relax();
		if ((i & 63) == 0 &&
		    ((t = lfipc__now_ns() - t0) >= budget ||
		     /* Q17: relaxed, a hint (see above). */
		     atomic_load_explicit(&q->h->closed, memory_order_relaxed)))
			return t;
	}
}

/* A put's claim through the wait layer, the copy and the publication:
 * every MPMC put, and a single producer's put that found no room at once.
 * tries: attempts the call has made already (a single producer's first
 * sp_put() counts as one). */
static inline __attribute__((always_inline)) int
put_wait(lfipc_queue *q, uint32_t tok, const void *msg, size_t len,
	 int64_t timeout_ns, unsigned tries)
{
	qslot *s;
	uint64_t p;
	struct qwait c = {.s = &s,
			  .pos = &p,
			  .len = len,
			  .pref = true,
			  .tok = tok,
			  .tries = tries};
	int rc = claim_wait(q, LFIPC_Q_ROLE_PUT, &c, timeout_ns);

	if (rc)
		return rc;
	msg_copy(s->data, msg, len);
	s->len = len;
	return publish(q, s, p, c.tok, &c.dl);
}

/* The rest of a single producer's put after a first sp_put() that found
 * no room: the run wait, another sp_put(), then the wait layer. Out of
 * line, so that the common case (one sp_put() that succeeds) sets up no
 * struct qwait and saves no registers for it. */
static __attribute__((noinline)) int sp_put_slow(lfipc_queue *q, uint32_t tok,
						 const void *msg, size_t len,
						 int64_t timeout_ns)
{
	int rc;

	if (timeout_ns != LFIPC_NOWAIT) {
		int64_t spent = sp_await_run(q, timeout_ns);

		if ((rc = sp_put(q, tok, msg, len, false, timeout_ns)) <= 0)
			return rc;
		/* What is left of the timeout; none left: a negative value
		 * other than LFIPC_FOREVER, expired. */
		if (timeout_ns > 0)
			timeout_ns = timeout_ns > spent ? timeout_ns - spent
							: LFIPC_FOREVER - 1;
	}
	/* the call's first attempt is made */
	return put_wait(q, tok, msg, len, timeout_ns, 1);
}

int lfipc_queue_put(lfipc_queue *q, const void *msg, size_t len,
		    int64_t timeout_ns)
{
	uint32_t tok;
	int rc;

	if (!q || (!msg && len))
		return -EINVAL;
	if (len > q->msg_size)
		return -EMSGSIZE;
	rc = self_in_role(q, LFIPC_Q_ROLE_PUT, &tok, &timeout_ns);
	if (rc)
		return rc;
	if (q->single[LFIPC_Q_ROLE_PUT]) {
		if ((rc = sp_put(q, tok, msg, len, true, timeout_ns)) <= 0)
			return rc;
		return sp_put_slow(q, tok, msg, len, timeout_ns);
	}
	return put_wait(q, tok, msg, len, timeout_ns, 0);
}

/* ---- consumer side --------------------------------------------------- */

/*
 * Single-consumer mode: after the role holder's claim of the head p (its
 * CAS FULL(p) -> READING(p, tok) found deq_pos == p: nothing moves deq_pos
 * past an unclaimed FULL head but a clear holding it, which our CAS would
 * have failed on), move deq_pos to p + 1 with a store instead of a CAS.
 * Nobody else moves deq_pos past a head that a live consumer holds
 * READING: a clear waits for this store (clear_locked()), a repair moves
 * it only for a dead consumer, holes are dropped only at a TOMB head, a
 * rescued orphan is put behind deq_pos by the rescue (lfipc__q_rescue()),
 * and there is no other consumer to help. So the store never moves it
 * backwards. Checked with tests/model/queue_recovery.pml (SCFAST=1).
 * Q16: release with capacity == N: readers that act on deq_pos either
 * load the slot word first (a producer's "behind deq_pos" test, put_now())
 * and so see it through our seq_cst release of the slot, or CAS it (a
 * clear, holes, repairs: an RMW reads the latest value), or only need it
 * eventually (a clear waiting for it, qsize). With capacity < N it is
 * seq_cst: a producer's room is positional, and the wake of not_full
 * after it is the Dekker pairing with a producer's announce.
 */
static void sc_advance(lfipc_queue *q, uint64_t to)
{
	if (q->cap != q->n)
		atomic_store(&q->h->deq_pos, to);
	else
		atomic_store_explicit(&q->h->deq_pos, to,
				      memory_order_release);
}

/* Single consumer, the common case of a get: the head p = deq_pos is
 * FULL(p). Claim it with a CAS from FULL(p) without loading it first and
 * move deq_pos past it, exactly as try_claim_get()'s first attempt does,
 * without the way there (try_claim_get() handles orphans, holes, helping
 * and recovery; it is called when this does not apply). True: *s_out and
 * *w_out (READING(p, tok)) claimed. */
static inline bool sc_claim_head(lfipc_queue *q, uint32_t tok, qslot **s_out,
				 uint64_t *w_out)
{
	qhdr *h = q->h;
	uint64_t p, w, nw;
	qslot *s;

	/* Q5 (try_claim_get()): relaxed, a hint. */
	if (atomic_load_explicit(&h->orphans, memory_order_relaxed))
		return false;
	p = atomic_load(&h->deq_pos);
	s = slot_at(q, p);
	w = mkword((uint32_t)(p + 1), 0);
	nw = mkword((uint32_t)(p + 1), tok | CL_R);
	if (!atomic_compare_exchange_strong(&s->word, &w, nw))
		return false;
	sc_advance(q, p + 1);
	if (q->cap != q->n)
		ev_wake(q, &h->not_full);
	*s_out = s;
	*w_out = nw;
	return true;
}

/* Try to claim the oldest message. 1: claimed (*s_out, its word *w_out;
 * *head_out the position when it was claimed at the head, UINT64_MAX for a
 * rescued orphan); 0: empty (or the head is in flight); -EPROTO: nonsense
 * in shared memory. blind: the first attempt may CAS the head from FULL
 * without loading it first (see below). Every turn of the loop after the
 * first goes through the CAS bound with the call's deadline dl, as in
 * try_claim_put(): -ETIMEDOUT, or -EPROTO after about a second. */
static int try_claim_get(lfipc_queue *q, uint32_t tok, qslot **s_out,
			 uint64_t *w_out, uint64_t *head_out, bool blind,
			 struct qdl *dl)
{
	struct lfipc_cas_bound b = LFIPC_CAS_BOUND_INIT;
	qhdr *h = q->h;
	uint64_t p;
	int rc;

	/* Q5: relaxed; a hint, re-read under the lock by lfipc__q_rescue(). */
	if (atomic_load_explicit(&h->orphans, memory_order_relaxed) &&
	    lfipc__q_rescue(q, tok, s_out, w_out, dl)) {
		*head_out = UINT64_MAX;
		return 1;
	}
	p = atomic_load(&h->deq_pos);
	/* blind: the first look at the head is a CAS from FULL(p) without
	 * a load first (the line is usually in the producer's cache: one
	 * exclusive transfer, not a shared one and then an upgrade); on
	 * failure the loop looks again with a load (not blind), which the
	 * failed CAS has made a cache hit.
	 * Made by the first attempt of a single get in any mode
	 * (get_claim_wait(); a caller that polls with LFIPC_NOWAIT thus
	 * makes every call's attempt blind, as a single consumer's
	 * sc_claim_head() does) and by a single consumer's bulk segments.
	 * Not in the wait layer's later attempts (lfipc__q_get_ready()):
	 * the queue was empty a moment ago, the head is the slot the
	 * producer writes next, and a failing CAS takes its line away
	 * exclusively where a load only shares it (doc/perf.md). An MPMC
	 * get_many loads first as before (not measured alone; a variant
	 * that also made the wait layer's attempts blind and prefetched
	 * runs lost a quarter of burst 8's throughput, doc/perf.md "Round
	 * trip and bursts"). */
	for (;; blind = false) {
		qslot *s = slot_at(q, p);
		uint64_t w = blind ? mkword((uint32_t)(p + 1), 0)
				   : atomic_load(&s->word);
		int32_t d = sdiff(wseq(w), (uint32_t)(p + 1));
		uint32_t c = wclaim(w);
		uint64_t p2;

		if (d == 0 && c == 0) {
			uint64_t nw = mkword((uint32_t)(p + 1), tok | CL_R);

			if (!atomic_compare_exchange_strong(&s->word, &w, nw))
				goto retry;
			p2 = p;
			if (q->single[LFIPC_Q_ROLE_GET])
				sc_advance(q, p + 1);
			else
				atomic_compare_exchange_strong(&h->deq_pos,
							       &p2, p + 1);
			/* With capacity < N, a producer's room is positional
			 * (enq_pos - deq_pos < capacity): moving deq_pos made
			 * room, also for a peek that releases much later. */
			if (q->cap != q->n)
				ev_wake(q, &h->not_full);
			*s_out = s;
			*w_out = nw;
			*head_out = p;
			return 1;
		}
		if (d == 0 && c == TOMB) {
			if (lfipc__q_drop_hole(q, s, w, p, dl))
				p = p + 1;
			goto retry;
		}
		p2 = atomic_load(&h->deq_pos);
		if (p2 != p) {
			p = p2;
			goto retry;
		}
		/* deq_pos was p when w was loaded: w must be within a lap. */
		if (!seq_sane(q, d))
			return -EPROTO;
		if (d < 0 || c == CLR) {
			/* Empty, in flight, or held by a clear. A head that
			 * stays claimed is checked now and then: its
			 * producer (or the clearer) may be dead. */
			if ((c & CL_TOK) && lfipc__q_stuck(q, w) &&
			    lfipc__q_repair(q, tok, s, w))
				goto retry;
			if (c == CLR && lfipc__q_stuck(q, w) &&
			    lfipc__q_lock_repair(q, tok))
				goto retry;
			return 0;
		}
		/* the head is claimed by a reader (or orphaned, or already
		 * released) and deq_pos lags: help. */
		if (atomic_compare_exchange_strong(&h->deq_pos, &p2, p + 1))
			p = p + 1;
		else
			p = p2;
	retry:
		if ((rc = q_cas_retry(&b, dl)) < 0)
			return rc;
	}
}

/* The JoinableQueue's release_slot(): count the message through tok's
 * record and free the slot (lfipc__q_count_free1()); a corrupt one is
 * settled at once. Out of line: a plain queue's get does not carry it. */
static __attribute__((noinline)) void
release_joinable(lfipc_queue *q, qslot *s, uint64_t w, uint32_t tok,
		 bool delivered, struct qdl *dl)
{
	lfipc__q_count_free1(q, tok, s, w, QF_STORE, dl);
	if (!delivered) {
		/* Q13: relaxed: a statistics counter (lfipc_queue_stat) */
		atomic_fetch_add_explicit(&q->h->corrupt, 1,
					  memory_order_relaxed);
		lfipc__q_tasks_settle_own(q, tok, 1);
	}
	ev_wake(q, &q->h->not_full);
}

/* Give back a slot claimed for reading by tok (word w = READING(p, tok)):
 * free it for lap p + N. delivered: the message was handed to the caller
 * rather than dropped as corrupt. A JoinableQueue counts it as got by tok
 * (a corrupt one as got and settled at once) through the entry's record,
 * so that a kill at any point leaves the count exact
 * (release_joinable()); dl: the call's deadline for the write-off of a
 * dead predecessor's tasks (NULL: none). */
static inline void release_slot(lfipc_queue *q, qslot *s, uint64_t w,
				uint32_t tok, bool delivered, struct qdl *dl)
{
	if (q->joinable) {
		release_joinable(q, s, w, tok, delivered, dl);
		return;
	}
	q_free_slot(q, s, w, QF_STORE); /* Q6 */
	/* Q13: relaxed: a statistics counter (lfipc_queue_stat), ordered
	 * with nothing. */
	if (!delivered)
		atomic_fetch_add_explicit(&q->h->corrupt, 1,
					  memory_order_relaxed);
	ev_wake(q, &q->h->not_full);
}

static bool looks_empty(lfipc_queue *q)
{
	uint64_t e = atomic_load(&q->h->enq_pos);
	uint64_t d = atomic_load(&q->h->deq_pos);

	return (int64_t)(e - d) <= 0 && !atomic_load(&q->h->orphans);
}

/* Shut down and nothing left for a get: -EPIPE. Before saying so, make
 * sure no dead consumer holds a message that nobody has noticed yet (it
 * would become an orphan for the next get). */
static bool drained(lfipc_queue *q, uint32_t tok)
{
	if (!atomic_load(&q->h->closed) || !looks_empty(q))
		return false;
	return lfipc__q_check_all(q, tok) == 0 || looks_empty(q);
}

/* Readiness callback of a get (internal/wait.h). */
int lfipc__q_get_ready(void *ctx, struct lfipc_sleep *sl, bool check)
{
	struct qwait *c = ctx;
	int rc;

	if (check)
		qwait_check(c);
	rc = try_claim_get(c->q, c->tok, c->s, c->w, c->head,
			   c->tries++ == 0 && c->q->single[LFIPC_Q_ROLE_GET],
			   &c->dl);
	if (rc)
		return rc;
	if (drained(c->q, c->tok))
		return -EPIPE;
	sl->partner[0] = lfipc__q_blocker(c->q, atomic_load(&c->q->h->deq_pos));
	return 0;
}

/* The claim of get_msg() in MPMC mode, or when a single consumer's head
 * is not simply FULL (its blind claim was sc_claim_head(), so this attempt
 * loads the head first): the first attempt directly, as the wait layer's
 * first call of lfipc__q_get_ready() would make it (the way through the
 * wait layer costs a third of a get's instructions), then through the
 * wait layer.
 * Out of line, so that a single consumer's get whose blind claim succeeds
 * (get_msg(), inlined into lfipc_queue_get()) sets up no struct qwait and
 * saves no registers for it. */
static __attribute__((noinline)) int
get_claim_wait(lfipc_queue *q, qslot **s, uint64_t *w, uint32_t tok,
	       int64_t timeout_ns, struct qdl *dl)
{
	uint64_t head;
	struct qwait c = {.s = s,
			  .w = w,
			  .head = &head,
			  .tok = tok,
			  .tries = 1,
			  .dl = *dl}; /* as made by the adoption, if it was */
	int rc = try_claim_get(q, tok, s, w, &head,
			       !q->single[LFIPC_Q_ROLE_GET], &c.dl);

	if (rc == 0)
		rc = claim_wait(q, LFIPC_Q_ROLE_GET, &c, timeout_ns);
	else if (rc > 0)
		rc = 0;
	*dl = c.dl; /* the call's deadline, as made so far */
	return rc;
}

/* Claim the oldest message for a get or a peek by the caller (in its
 * role), waiting up to timeout_ns: 0 and *s, *w, *tok, *len (read once
 * and checked); a corrupt length releases the slot as dropped: -EPROTO. */
static inline __attribute__((always_inline)) int
get_msg(lfipc_queue *q, qslot **s, uint64_t *w, uint32_t *tok, uint64_t *len,
	int64_t timeout_ns, struct qdl *dl)
{
	int rc = self_in_role(q, LFIPC_Q_ROLE_GET, tok, &timeout_ns);

	if (rc)
		return rc;
	dl->timeout_ns = timeout_ns;
	dl->set = false;
	/* a JoinableQueue consumer adopts its task entry before it claims
	 * (lfipc__q_tasks_adopt()): a failure claims nothing */
	if (q->joinable && (rc = q_tasks_adopt(q, *tok, dl)))
		return rc;
	if (!(q->single[LFIPC_Q_ROLE_GET] && sc_claim_head(q, *tok, s, w)) &&
	    (rc = get_claim_wait(q, s, w, *tok, timeout_ns, dl)))
		return rc;
	*len = lfipc__shm_ld64(&(*s)->len); /* once: checked, then used */
	if (*len > q->msg_size) {
		release_slot(q, *s, *w, *tok, false, NULL);
		return -EPROTO;
	}
	return 0;
}

int lfipc_queue_get(lfipc_queue *q, void *buf, size_t buf_size, size_t *len,
		    int64_t timeout_ns)
{
	struct qdl dl; /* the call's deadline, for release_slot() */
	qslot *s;
	uint64_t w, l;
	uint32_t tok;
	int rc;

	if (!q || !buf)
		return -EINVAL;
	if (buf_size < q->msg_size)
		return -EMSGSIZE;
	rc = get_msg(q, &s, &w, &tok, &l, timeout_ns, &dl);
	if (rc)
		return rc;
	msg_copy(buf, s->data, l);
	if (len)
		*len = l;
	release_slot(q, s, w, tok, true, &dl);
	return 0;
}

/* ---- for the zero-copy calls (queue_zerocopy.c) ----------------------- */

/* Claim a slot for a put by the caller in its role, waiting up to
 * timeout_ns: 0 and *c's slot and position. */
int lfipc__q_claim_put(lfipc_queue *q, struct qwait *c, int64_t timeout_ns)
{
	return claim_first(q, LFIPC_Q_ROLE_PUT, c, timeout_ns);
}

/* publish() for a slot written in place. */
int lfipc__q_publish(lfipc_queue *q, qslot *s, uint64_t p, uint32_t tok)
{
	return publish(q, s, p, tok, NULL);
}

/* get_msg() for a peek. */
int lfipc__q_get_msg(lfipc_queue *q, qslot **s, uint64_t *w, uint32_t *tok,
		     uint64_t *len, int64_t timeout_ns)
{
	struct qdl dl;

	return get_msg(q, s, w, tok, len, timeout_ns, &dl);
}

/* The caller's token for a consumer's call that never waits
 * (lfipc_queue_peek_orphans()), holding the consumer role when the queue
 * has it single: self_in_role() with LFIPC_NOWAIT. */
int lfipc__q_self_get(lfipc_queue *q, uint32_t *tok)
{
	int64_t timeout_ns = LFIPC_NOWAIT;

	return self_in_role(q, LFIPC_Q_ROLE_GET, tok, &timeout_ns);
}

/* release_slot() for a release. */
void lfipc__q_release(lfipc_queue *q, qslot *s, uint64_t w, uint32_t tok,
		      bool count)
{
	release_slot(q, s, w, tok, count, NULL);
}

/* ---- for the bulk calls (queue_bulk.c) -------------------------------- */

/* claim_once() for a bulk put's later segments, within the call's
 * deadline dl (made at the first use if the first claim did not make it). */
int lfipc__q_claim_once(lfipc_queue *q, uint32_t tok, qslot **s, uint64_t *pos,
			uint64_t len, bool first, struct qdl *dl)
{
	return claim_once(q, tok, s, pos, len, first, dl);
}

/* try_claim_get() for a bulk get's later segments, within the call's
 * deadline dl, as lfipc__q_claim_once(). */
int lfipc__q_try_claim_get(lfipc_queue *q, uint32_t tok, qslot **s_out,
			   uint64_t *w_out, uint64_t *head_out, bool blind,
			   struct qdl *dl)
{
	return try_claim_get(q, tok, s_out, w_out, head_out, blind, dl);
}
