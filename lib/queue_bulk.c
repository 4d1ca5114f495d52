/* SPDX-License-Identifier: MIT */
/*
 * queue_bulk.c - a Queue's bulk calls, put_many and get_many: runs of
 * consecutive positions claimed after one ordinary claim, copied and
 * published or released as a batch (the zero-copy peek_many in
 * queue_zerocopy.c claims its batches here too). The single put and get,
 * the waiting and the roles are in queue_putget.c; what both files make on
 * every call or slot is in internal/queue_fast.h. internal/queue.h
 * describes the shared words.
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

#include <lfipc/queue.h>

#include "internal/queue.h"
#include "internal/queue_fast.h"
#include "internal/shm.h"

/* ---- bulk operations --------------------------------------------------
 *
 * A bulk call claims a run of consecutive positions p, p+1, ... after one
 * ordinary claim of p (which waits, helps and checks closed exactly like a
 * single put or get). Each further position is claimed by its own CAS on
 * its slot word, carrying the claimant's token as always (so a dead
 * claimant's slots are repaired one by one, exactly like a single put's or
 * get's); only the shared position word is moved once for the whole run,
 * and the event word is looked at once. A run stops at the first position
 * that is not in the expected state (another participant won it, the queue
 * is full or empty there, or the slot is in any unusual state); the next
 * segment of the call then starts with an ordinary claim, which deals with
 * whatever stopped the run. See doc/queue.md, "Bulk operations", for why a
 * run may be ahead of the position word. */

/* ---- prefetching a run ------------------------------------------------
 *
 * Each claim of a run is a CAS on a slot word whose line the other side
 * wrote last (the consumer's release, the producer's publication), and a
 * locked instruction lets no later access pass it: a run of 32 waits for
 * 32 line transfers one after the other. Asking for the slots RUN_AHEAD
 * positions ahead of the claim (slot_prefetch_w(): PREFETCHW of the word's
 * line and the payload's, at most four lines) overlaps those transfers.
 * Only positions the run will try (below its m), and nothing is read to
 * bound it further: a prefetch of a slot the other side has not finished
 * takes its line once, at the run's end, where the claim stops anyway.
 * Only for slots of two to eight lines (messages of 49 to 496 bytes):
 * measured faster at 64 and 256 bytes, slower at 4 KiB (the copies
 * dominate there, and the hardware's own prefetching follows them) and
 * no better at 8 bytes (doc/perf.md, "Prefetching a run"). */
#define RUN_AHEAD 4

static inline bool run_prefetches(const lfipc_queue *q)
{
	return q->stride >= 128 && q->stride <= 512;
}

/* Prefetch the slots of positions p, p + 1, ... for a run's claims: n of
 * them, RUN_AHEAD at most. */
static inline void run_prefetch(const lfipc_queue *q, uint64_t p, int n)
{
	for (int i = 0; i < n && i < RUN_AHEAD; i++)
		slot_prefetch_w(q, slot_at(q, p + i), q->msg_size);
}

/* Extend a put run: claim position p, the one after the caller's previous
 * claim, for tok without touching enq_pos. deq is a value deq_pos had at or
 * after the run's first claim (for the capacity test; a stale value only
 * stops the run early). Returns the slot, or NULL when p is not free for
 * us. */
static qslot *put_run_claim(lfipc_queue *q, uint64_t p, uint64_t deq,
			    uint32_t tok)
{
	qslot *s = slot_at(q, p);
	uint64_t w, nw = mkword((uint32_t)p, tok | CL_W);
	uint32_t c;

	if (q->single[LFIPC_Q_ROLE_PUT])
		return sp_claim(q, p, deq, tok);
	if (q->cap != q->n && (int64_t)(p - deq) >= (int64_t)q->cap)
		return NULL;
	/* FREE(p), the usual case: CAS without a load first (the line is
	 * usually in the last consumer's cache: one transfer, not two). */
	w = mkword((uint32_t)p, 0);
	if (atomic_compare_exchange_strong(&s->word, &w, nw))
		return s;
	c = wclaim(w);
	if (wseq(w) != (uint32_t)(p - q->n + 1) ||
	    !(c == 0 || c == TOMB || c == CLR) ||
	    (int64_t)(atomic_load(&q->h->deq_pos) - (p - q->n)) <= 0)
		return NULL; /* neither FREE(p) nor discarded by a clear */
	if (!atomic_compare_exchange_strong(&s->word, &w, nw))
		return NULL;
	return s;
}

/* Claim up to m positions for a put batch into pos[] (tok in *tok; first:
 * the call's first batch, which may wait up to dl->timeout_ns). Returns the
 * number claimed (>= 1), or a negative errno when none was. Every position
 * returned was claimed, enq_pos moved past it and then `closed` seen 0
 * (seq_cst), so, as for a single put, no consumer can have given up on it.
 * dl: the call's deadline for the CAS bound of every claim and move after
 * the first (which makes it, or leaves it to be made at its first use):
 * a peer that rewrites a word cannot keep a later segment going past the
 * call's timeout. */
static int put_batch_claim(lfipc_queue *q, uint64_t *pos, int m, bool first,
			   uint32_t *tok, struct qdl *dl)
{
	bool pf = run_prefetches(q);
	int k = 0;

	while (k < m) {
		qslot *s;
		uint64_t p, deq = 0;
		bool run_ok = true;
		int rc, start;

		if (first && k == 0) {
			struct qwait c = {.s = &s, .pos = &p};

			rc = claim_first(q, LFIPC_Q_ROLE_PUT, &c,
					 dl->timeout_ns);
			*tok = c.tok;
			*dl = c.dl;
		} else
			rc = lfipc__q_claim_once(q, *tok, &s, &p, 0, false, dl);
		if (rc)
			return k ? k : (rc == 1 ? -EAGAIN : rc);
		/* p is claimed, enq_pos is past it and closed was 0 after. */
		pos[k++] = p;
		start = k;
		if (q->cap != q->n)
			deq = atomic_load(&q->h->deq_pos);
		/* the run's positions p + 1 ... are pos[k] ... (below m) */
		if (pf)
			run_prefetch(q, p + 1, m - k);
		while (k < m) {
			if (pf && k + RUN_AHEAD < m)
				run_prefetch(q, p + 1 + RUN_AHEAD, 1);
			if (!put_run_claim(q, p + 1, deq, *tok))
				break;
			pos[k++] = ++p;
		}
		if (k == start)
			continue;
		/* As in claim_once(): either our claims and enq_pos moving
		 * past them come before the shutdown in the total order, or
		 * we see it and give the run up (its first position was
		 * checked already and stays). enq_pos left short of the run
		 * (pos_advance() gave up: a peer keeps rewriting it) gives
		 * no such order: the run is given up too. */
		if (q->single[LFIPC_Q_ROLE_PUT])
			sp_advance(q, p + 1);
		else if (!pos_advance_dl(&q->h->enq_pos, p + 1, dl))
			run_ok = false;
		if (!run_ok || atomic_load(&q->h->closed)) {
			for (int i = start; i < k; i++)
				give_up_slot(q, slot_at(q, pos[i]), pos[i],
					     *tok, dl);
			lfipc__q_drop_holes(q);
			ev_wake(q, &q->h->not_empty);
			return start;
		}
	}
	return k;
}

int lfipc_queue_put_many(lfipc_queue *q, const void *const *msgs,
			 const size_t *lens, size_t n, int64_t timeout_ns)
{
	uint64_t pos[BULK_MAX];
	struct qdl dl = {.timeout_ns = timeout_ns};
	size_t i, done = 0;
	uint32_t tok = 0;
	int rc;

	if (!q || !msgs || !lens || n == 0 || n > INT32_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (lens[i] > q->msg_size)
			return -EMSGSIZE;
		if (!msgs[i] && lens[i])
			return -EINVAL;
	}
	while (done < n) {
		int m = n - done > BULK_MAX ? BULK_MAX : (int)(n - done);
		int k = put_batch_claim(q, pos, m, done == 0, &tok, &dl);
		bool woke_e = false, woke_f = false;
		int bad = -1;

		if (k < 0)
			return done ? (int)done : k;
		for (int j = 0; j < k; j++) {
			qslot *s = slot_at(q, pos[j]);

			msg_copy(s->data, msgs[done + j], lens[done + j]);
			s->len = lens[done + j];
		}
		for (int j = 0; j < k; j++) {
			qslot *s = slot_at(q, pos[j]);

			if (bad >= 0) {
				/* after a corrupt slot: give the rest up, so
				 * the count returned is exact */
				give_up_slot(q, s, pos[j], tok, &dl);
				woke_e = true;
				continue;
			}
			rc = publish_slot(q, s, pos[j], tok, &dl);
			if (rc < 0)
				bad = j;
			else if (rc == 0)
				woke_e = true;
			else
				woke_f = true;
		}
		/* One look at each event word for the whole batch: it comes
		 * after every state change above in the total order. */
		if (woke_e)
			ev_wake(q, &q->h->not_empty);
		if (woke_f)
			ev_wake(q, &q->h->not_full);
		else if (k > 0)
			wake_if_behind(q, pos[0]);
		if (bad >= 0) {
			lfipc__q_drop_holes(q);
			done += (size_t)bad;
			return done ? (int)done : -EPROTO;
		}
		done += (size_t)k;
		if (k < m)
			break;
	}
	return (int)done;
}

/* ---- get side ------------------------------------------------------- */

/* Extend a get run: claim position p, the one after the caller's previous
 * claim, for tok if it is FULL(p), without touching deq_pos. Anything else
 * (a hole, a clear's mark, another reader, nothing yet) ends the run and is
 * left to try_claim_get(). Why this cannot take a message a clear
 * discarded: the run's first position was claimed at the head, and every
 * position before p is claimed by us, so a clear either holds one of them
 * as its head (impossible: they are READING) or holds a later one, or its
 * range ends before the run starts. */
static qslot *get_run_claim(lfipc_queue *q, uint64_t p, uint32_t tok,
			    uint64_t *w_out)
{
	qslot *s = slot_at(q, p);
	uint64_t w = mkword((uint32_t)(p + 1), 0);
	uint64_t nw = mkword((uint32_t)(p + 1), tok | CL_R);

	/* A CAS from the exact FULL(p) word, without a load first (the line
	 * is usually in the producer's cache: one transfer, not two). It
	 * acquires the payload (pairs with Q3 in publish_slot()). */
	if (!atomic_compare_exchange_strong(&s->word, &w, nw))
		return NULL;
	*w_out = nw;
	return s;
}

/* Claim up to m messages for a get batch into s[], w[] (first: the call's
 * first batch, which may wait up to dl->timeout_ns). Returns the number claimed
 * (>= 1) or a negative errno when none was. dl: the call's deadline for
 * the claims and moves after the first, as in put_batch_claim(). */
static int get_batch_claim(lfipc_queue *q, qslot **s, uint64_t *w, int m,
			   bool first, uint32_t *tok, struct qdl *dl)
{
	bool pf = run_prefetches(q);
	int k = 0;

	while (k < m) {
		uint64_t head;
		int rc, start;

		if (first && k == 0) {
			struct qwait c = {
			    .s = &s[k], .w = &w[k], .head = &head};

			rc = claim_first(q, LFIPC_Q_ROLE_GET, &c,
					 dl->timeout_ns);
			*tok = c.tok;
			*dl = c.dl;
			if (rc)
				return rc;
		} else {
			rc = lfipc__q_try_claim_get(
			    q, *tok, &s[k], &w[k], &head,
			    q->single[LFIPC_Q_ROLE_GET], dl);
			if (rc <= 0)
				return k ? k : (rc ? rc : -EAGAIN);
		}
		k++;
		if (head == UINT64_MAX)
			continue; /* a rescued orphan: no run behind it */
		start = k;
		/* the run's positions head + 1 ... are s[k] ... (below m) */
		if (pf)
			run_prefetch(q, head + 1, m - k);
		while (k < m) {
			if (pf && k + RUN_AHEAD < m)
				run_prefetch(q, head + 1 + RUN_AHEAD, 1);
			if (!(s[k] = get_run_claim(q, head + 1, *tok, &w[k])))
				break;
			k++;
			head++;
		}
		/* deq_pos is past the first claim already (try_claim_get
		 * moved or saw it moved); move it past the run before any of
		 * its slots is released. */
		if (k > start)
			pos_advance_dl(&q->h->deq_pos, head + 1, dl);
	}
	return k;
}

int lfipc_queue_get_many(lfipc_queue *q, void *bufs, size_t stride,
			 size_t *lens, size_t n, int64_t timeout_ns)
{
	qslot *s[BULK_MAX];
	uint64_t w[BULK_MAX];
	struct qdl dl = {.timeout_ns = timeout_ns};
	size_t done = 0;
	uint32_t tok = 0;
	int corrupt = 0;

	if (!q || !bufs || !lens || n == 0 || n > INT32_MAX)
		return -EINVAL;
	if (stride < q->msg_size)
		return -EMSGSIZE;
	/* corrupt messages taken count towards n, so a flood of them cannot
	 * keep the call going */
	while (done + (size_t)corrupt < n) {
		size_t left = n - done - (size_t)corrupt;
		int m = left > BULK_MAX ? BULK_MAX : (int)left;
		int k = get_batch_claim(q, s, w, m, done == 0 && !corrupt, &tok,
					&dl);
		int good = 0, bad = 0;

		if (k < 0) {
			if (done)
				break;
			return corrupt ? -EPROTO : k;
		}
		/* Every message of the batch is copied before any slot is
		 * freed. A JoinableQueue counts the batch (the corrupt ones
		 * too, settled at once below) through the entry's record as
		 * it frees the slots (lfipc__q_count_free()), so that a kill
		 * at any point leaves the count exact. */
		for (int j = 0; j < k; j++) {
			/* once: checked, then used */
			uint64_t l = lfipc__shm_ld64(&s[j]->len);

			if (l > q->msg_size) {
				bad++;
				continue;
			}
			msg_copy((char *)bufs + (done + good) * stride,
				 s[j]->data, l);
			lens[done + good] = l;
			good++;
		}
		if (q->joinable) {
			lfipc__q_count_free(q, tok, s, w, k, QF_STORE_REL, &dl);
			if (bad)
				lfipc__q_tasks_settle_own(q, tok,
							  (uint64_t)bad);
		} else {
			/* Q11: release stores (our copies of the batch's
			 * payloads above are done before a producer writes
			 * a new one); the seq_cst fence below orders the
			 * batch's stores before the one look at not_full. */
			for (int j = 0; j < k; j++)
				q_free_slot(q, s[j], w[j], QF_STORE_REL);
		}
		/* Q11: one full fence for the batch instead of a seq_cst
		 * store per slot: a producer that announced itself on
		 * not_full (seq_cst) before this fence in the total order
		 * is seen by ev_wake() below; one after it sees every slot
		 * released (the Dekker pairing of release_slot()). */
		atomic_thread_fence(memory_order_seq_cst);
		/* Q13: relaxed: a statistics counter (lfipc_queue_stat) */
		if (bad)
			atomic_fetch_add_explicit(&q->h->corrupt, (uint64_t)bad,
						  memory_order_relaxed);
		/* one look at not_full for the whole batch */
		ev_wake(q, &q->h->not_full);
		done += (size_t)good;
		corrupt += bad;
		if (k < m)
			break;
	}
	if (done == 0)
		return -EPROTO; /* only corrupt messages were taken */
	return (int)done;
}

/* ---- for the zero-copy calls (queue_zerocopy.c) ----------------------- */

/* get_batch_claim() for a peek of many. */
int lfipc__q_get_batch(lfipc_queue *q, qslot **s, uint64_t *w, int m,
		       bool first, uint32_t *tok, struct qdl *dl)
{
	return get_batch_claim(q, s, w, m, first, tok, dl);
}
