/* SPDX-License-Identifier: MIT */
/*
 * internal/queue_fast.h - the pieces of a Queue's put and get paths that
 * both queue_putget.c (single put and get) and queue_bulk.c (put_many,
 * get_many) make on every call or every slot: the single-producer /
 * single-consumer role check, the single producer's claim of a FREE slot,
 * the publication of a slot or giving it up, and the first claim of a
 * call through the wait layer. Included by those two files only.
 *
 * Each function keeps the inlining it had when both files were one
 * (doc/perf.md, "Instructions per put+get, one thread"): the static
 * inline ones are inlined into each file's fast paths; sp_claim() and
 * give_up_slot(), which gcc kept out of line then, are static noinline
 * (unused: an includer may not call them), so each file has its own local
 * copy, a call whose clobbered registers the caller knows. The rest of
 * the way (the readiness callbacks, the general claims, the waiting) is
 * out of line in queue_putget.c. Private; internal/queue.h describes the
 * shared words and their memory order.
 */
#ifndef LFIPC_INTERNAL_QUEUE_FAST_H
#define LFIPC_INTERNAL_QUEUE_FAST_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <lfipc/queue.h>

#include "internal/proc.h"
#include "internal/queue.h"
#include "internal/region.h"
#include "internal/wait.h"

/* ---- single-producer / single-consumer roles ------------------------ */

/* The role word o of role i is not the caller's (me = its token and
 * thread tag): take the role if nobody holds it or its holder's process is
 * dead (a half-done put or get of it is repaired as a dead participant's
 * in a multi-producer or multi-consumer queue), else -EBUSY. A holder that
 * is another thread of the caller's process counts as alive. A nonsense
 * word names a dead token (lfipc__token_alive()), so it is taken over.
 * A peer that rewrites the word before every CAS (always a dead or
 * nonsense holder) must not keep us here: the CAS bound (internal/wait.h)
 * ends the loop at the call's deadline (-ETIMEDOUT; -EAGAIN for
 * LFIPC_NOWAIT, at its first look), else after about a second (-EPROTO);
 * what the loop used of *timeout_ns is taken off it, as
 * lfipc__self_timed() does. */
static inline int role_take(lfipc_queue *q, int i, uint64_t me, uint64_t o,
			    int64_t *timeout_ns)
{
	struct lfipc_cas_bound b = LFIPC_CAS_BOUND_INIT;
	lfipc_deadline dl = LFIPC_DL_NEVER;
	uint32_t tok = (uint32_t)(me >> 32);
	int rc = 0;

	for (;;) {
		uint32_t ot = (uint32_t)(o >> 32);

		if (o != 0 && (ot == tok || lfipc__token_alive(q->r, ot))) {
			rc = -EBUSY;
			break;
		}
		if (atomic_compare_exchange_strong(&q->h->role[i], &o, me)) {
			/* Q10: relaxed (see struct lfipc_queue). */
			atomic_store_explicit(&q->role_held[i], me,
					      memory_order_relaxed);
			break;
		}
		if (o == me)
			break;
		if (b.fails == 0)
			dl = lfipc__deadline(*timeout_ns);
		rc = lfipc__cas_retry(&b, dl);
		if (rc < 0)
			return rc;
	}
	if (b.fails != 0 && rc == 0 && dl != LFIPC_DL_NOW &&
	    dl != LFIPC_DL_PAST && dl != LFIPC_DL_NEVER) {
		int64_t left = dl - lfipc__now_ns();

		*timeout_ns = left > 0 ? left : -2; /* -2: expired */
	}
	return rc;
}

/* Before a put (i = LFIPC_Q_ROLE_PUT) or a get (LFIPC_Q_ROLE_GET) by tok:
 * in a queue with that single role, hold it. 0, -EBUSY, or the CAS
 * bound's -ETIMEDOUT / -EAGAIN / -EPROTO (role_take). One load of a line
 * nobody writes while the role stays put. */
static inline int role_hold(lfipc_queue *q, int i, uint32_t tok,
			    int64_t *timeout_ns)
{
	uint64_t me, o;

	if (!q->single[i])
		return 0;
	me = LFIPC_Q_ROLE(tok, lfipc__thread_tag());
	o = atomic_load(&q->h->role[i]);
	return o == me ? 0 : role_take(q, i, me, o, timeout_ns);
}

/* The token of the caller, holding role i if the queue has it single. A
 * fork child's registration waits within *timeout_ns and leaves in it what
 * is left (lfipc__self_timed); so does a role word that a peer rewrites
 * (role_take). */
static inline __attribute__((always_inline)) int
self_in_role(lfipc_queue *q, int i, uint32_t *tok, int64_t *timeout_ns)
{
	int rc = lfipc__self_timed(q->r, tok, timeout_ns);

	return rc ? rc : role_hold(q, i, *tok, timeout_ns);
}

/* ---- producer side --------------------------------------------------- */

/*
 * Single-producer mode: claim slot s, FREE(p), for the role holder tok. In
 * this mode nobody but the role holder claims a FREE slot (consumers,
 * clears and repairs only act on claimed slots and on positions below
 * enq_pos), so after seeing FREE(p) the claim is a plain store, not a CAS.
 * Q15: relaxed: ordered before the seq_cst store of enq_pos that follows
 * (sp_advance()); whoever relies on "below enq_pos means claimed" loads
 * enq_pos first (seq_cst), and to anybody else FREE(p) and WRITING(p) look
 * alike ("not published yet"). Checked with tests/model/queue_recovery.pml
 * (SPFAST=1). Returns s, or NULL when slot p is not FREE(p) or the queue is
 * full at p (the caller then takes the general way).
 * Out of line, as gcc kept it when its two callers were in one file:
 * inlined into try_claim_put() it cost every MPMC put 6 instructions
 * (register saves in claim_once()) though only a single producer calls it.
 */
static __attribute__((noinline, unused)) qslot *
sp_claim(lfipc_queue *q, uint64_t p, uint64_t deq, uint32_t tok)
{
	qslot *s = slot_at(q, p);

	if (q->cap != q->n && (int64_t)(p - deq) >= (int64_t)q->cap)
		return NULL;
	if (atomic_load(&s->word) != mkword((uint32_t)p, 0))
		return NULL;
	atomic_store_explicit(&s->word, mkword((uint32_t)p, tok | CL_W),
			      memory_order_relaxed);
	return s;
}

/* Single-producer mode: move enq_pos to `to` after the role holder's own
 * claims. Nobody else moves it past a position the holder has not claimed
 * (a consumer dropping a hole moves it at most past that hole, which lies
 * below the holder's claims), so a store does, never moving it backwards.
 * seq_cst: the Dekker pairing with shutdown (claim_once()). */
static inline void sp_advance(lfipc_queue *q, uint64_t to)
{
	atomic_store(&q->h->enq_pos, to);
}

/* The retries of publish_slot() and give_up_slot() (queue_putget.c),
 * whose first CAS failed: see publish_slot(). */
int lfipc__q_publish_retry(lfipc_queue *q, qslot *s, uint64_t p, uint32_t tok,
			   uint64_t w, uint32_t done, struct qdl *dl);

/* Publish the slot at position p claimed by tok, without waking anybody.
 * Returns 0 published (the caller wakes not_empty), 1 a clear discarded it
 * meanwhile and it was handed over as CLR (the caller wakes not_full), or
 * -EPROTO when the word was overwritten. The word may go WRITING ->
 * DISCARD (a clear) -> WRITING (the undo of that clearer's death) any
 * number of times while we look: retry while it is ours in either form.
 * The first CAS is inline; the retries (lfipc__q_publish_retry()) have the
 * CAS bound with the call's deadline dl (NULL: none), and a store under
 * the queue lock ends them at the first sign of a peer that rewrites the
 * word (see there). */
static inline int publish_slot(lfipc_queue *q, qslot *s, uint64_t p,
			       uint32_t tok, struct qdl *dl)
{
	uint64_t w = mkword((uint32_t)p, tok | CL_W);

	/* Q3: seq_cst CAS (release for the payload; pairs with the
	 * consumer's claiming CAS in try_claim_get() or get_run_claim(),
	 * and orders against the waiter flag load in ev_wake). */
	if (__builtin_expect(atomic_compare_exchange_strong(
				 &s->word, &w, mkword((uint32_t)(p + 1), 0)),
			     1))
		return 0;
	return lfipc__q_publish_retry(q, s, p, tok, w, 0, dl);
}

/* A slot published at position p behind deq_pos (a clear passed it while
 * it was being written) is free for the next lap at once, so producers
 * asleep on a full queue must hear of it. Q8: seq_cst loads: the publish
 * CAS (K1), then the K2 load of the waiters word (internal/wait.h). The
 * deq_pos line is read only when producers wait or poll. */
static inline void wake_if_behind(lfipc_queue *q, uint64_t p)
{
	if (atomic_load(&q->h->not_full.waiters) &&
	    (int64_t)(atomic_load(&q->h->deq_pos) - p) > 0)
		ev_wake(q, &q->h->not_full);
}

/* Give up position p of slot s, claimed by tok and not published: TOMB(p),
 * as a dead producer's (a slot a clear discarded meanwhile, DISCARD,
 * becomes CLR). Retries like publish_slot(). The caller then drops the
 * holes at the head (lfipc__q_drop_holes()) and wakes not_empty. Out of
 * line (a put's rare way), as gcc kept it when its callers were in one
 * file: each file's copy is then a local function, whose few clobbered
 * registers its callers know (a call of another file's function costs
 * put_many a spill). A hole_hi that a peer keeps from rising
 * (pos_advance_dl() gave up, at the call's deadline dl or after the CAS
 * bound) only makes qsize() count this hole. */
static __attribute__((noinline, unused)) void
give_up_slot(lfipc_queue *q, qslot *s, uint64_t p, uint32_t tok, struct qdl *dl)
{
	uint64_t w = mkword((uint32_t)p, tok | CL_W);

	pos_advance_dl(&q->h->hole_hi, p + 1, dl); /* before the TOMB exists */
	if (!atomic_compare_exchange_strong(&s->word, &w,
					    mkword((uint32_t)(p + 1), TOMB)))
		lfipc__q_publish_retry(q, s, p, tok, w, TOMB, dl);
}

/* ---- waiting --------------------------------------------------------- */

/* The first claim of every put-side or get-side call, single or bulk
 * (role LFIPC_Q_ROLE_PUT or LFIPC_Q_ROLE_GET), by c->tok, waiting up to
 * timeout_ns: the claim lands in c->s and c->pos (put) or c->s, c->w and
 * c->head (get). */
static inline int claim_wait(lfipc_queue *q, int role, struct qwait *c,
			     int64_t timeout_ns)
{
	bool put = role == LFIPC_Q_ROLE_PUT;

	c->q = q;
	c->nowait = timeout_ns == LFIPC_NOWAIT;
	return lfipc__q_wait_run(
	    c, put ? 1 : 0, put ? &q->h->not_full : &q->h->not_empty,
	    put ? lfipc__q_put_ready : lfipc__q_get_ready, timeout_ns);
}

/* The prologue of every put, get, reserve, peek and bulk call: the
 * caller's token in c->tok (holding the role when the queue has that side
 * single), then claim_wait(). */
static inline int claim_first(lfipc_queue *q, int role, struct qwait *c,
			      int64_t timeout_ns)
{
	int rc = self_in_role(q, role, &c->tok, &timeout_ns);

	if (rc)
		return rc;
	/* a JoinableQueue consumer adopts its task entry before it claims
	 * (lfipc__q_tasks_adopt()): a failure claims nothing */
	if (role == LFIPC_Q_ROLE_GET && q->joinable) {
		c->dl.timeout_ns = timeout_ns;
		if ((rc = q_tasks_adopt(q, c->tok, &c->dl)))
			return rc;
	}
	return claim_wait(q, role, c, timeout_ns);
}

#endif /* LFIPC_INTERNAL_QUEUE_FAST_H */
