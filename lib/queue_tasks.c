/* SPDX-License-Identifier: MIT */
/*
 * queue_tasks.c - JoinableQueue counting: the per-participant task
 * table (messages got, tasks settled), write-off of dead participants'
 * tasks, task_done and join. internal/queue.h describes the shared words.
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

static struct lfipc_qtask *task_of(const lfipc_queue *q, uint32_t tok)
{
	return q_task_of(q, tok);
}

/* The messages delivered through entry t: got + the cnt of each record
 * (internal/queue_layout.h). got is loaded first, then the records: each
 * only grows (a record's cnt: but for the undo of a failed release's
 * count, lfipc__q_count_free()), so a sum of loads made one after another
 * lies between the sums at the first load and at the last, and callers
 * that compare the sum with owner load owner after all of them
 * (lfipc__q_tasks_reap()). */
static uint64_t entry_got(struct lfipc_qtask *t)
{
	uint64_t g = atomic_load(&t->got);

	for (uint32_t k = 0; k < LFIPC_QREC_K; k++)
		g += lfipc__qrec_cnt(atomic_load(&t->rec[k]));
	return g;
}

/* Is the got of entry t past s (entry_got(t) - s > 0)? got and record 0
 * first: when their sum is past s the answer is yes without the other
 * records (each cnt only adds; cnt < 2^55), the common case of
 * task_done, which saves it a load. */
static bool entry_past(struct lfipc_qtask *t, uint64_t s)
{
	uint64_t g = atomic_load(&t->got);

	g += lfipc__qrec_cnt(atomic_load(&t->rec[0]));
	if ((int64_t)(g - s) > 0)
		return true;
	for (uint32_t k = 1; k < LFIPC_QREC_K; k++)
		g += lfipc__qrec_cnt(atomic_load(&t->rec[k]));
	return (int64_t)(g - s) > 0;
}

/* Settle every task of entry t not settled yet (its participants are
 * dead): raise settled to the value of got read first. Idempotent, so any
 * number of participants may do it at once, and a kill anywhere leaves
 * either nothing or all of it done. Return: 0 settled is at or past g;
 * -ETIMEDOUT or -EPROTO it gave up (below). */
static int write_off(lfipc_queue *q, struct lfipc_qtask *t, uint64_t g,
		     struct qdl *dl)
{
	struct lfipc_cas_bound b = LFIPC_CAS_BOUND_INIT;
	uint64_t s = atomic_load(&t->settled);
	int rc;

	/* A peer that rewrites settled without end (below g): we give up
	 * after the CAS bound (internal/wait.h), or at the deadline dl of
	 * the caller's call when it comes first (NULL: none); the tasks stay
	 * outstanding under the dead owner, for the next reap or adoption
	 * (joins wait for them meanwhile). */
	while ((int64_t)(g - s) > 0) {
		if (atomic_compare_exchange_weak(&t->settled, &s, g)) {
			/* statistics only: a kill here under-counts them */
			atomic_fetch_add(&q->h->abandoned, g - s);
			ev_wake(q, &q->h->joined);
			return 0;
		}
		if ((rc = q_cas_retry(&b, dl)) < 0)
			return rc;
	}
	return 0;
}

/* The snapshot of record k of entry t while owner is `who` (loaded
 * before and after rec and rec_pos: nobody but who's threads writes them
 * while who owns the entry and lives, and nobody but a resolver, moving
 * it to IDLE with the same cnt, after its death; a new incarnation
 * changes owner only after resolving it, lfipc__q_tasks_adopt()). want:
 * the owner to see, or 0 for "anything but tok" (the adoption by tok).
 * True with *r, *p when owner was as wanted both times. */
static bool rec_snap(struct lfipc_qtask *t, uint32_t k, uint32_t want,
		     uint32_t tok, uint64_t *r, uint64_t *p)
{
	uint32_t o = atomic_load(&t->owner);

	if (want ? o != want : o == tok)
		return false;
	*r = atomic_load(&t->rec[k]);
	*p = atomic_load(&t->rec_pos[k]);
	o = atomic_load(&t->owner);
	return want ? o == want : o != tok;
}

/* Is the snapshot r, p a COUNTED record of the token `who`, sane (n in
 * 1..64, rec_pos READING by who)? Shared memory is untrusted: a record
 * that fails this is never used to free a slot. */
static bool rec_counted(uint64_t r, uint64_t p, uint32_t who)
{
	uint32_t n = lfipc__qrec_n(r);

	return lfipc__qrec_state(r) == LFIPC_QREC_COUNTED && n >= 1 &&
	       n <= LFIPC_QREC_NMAX && wclaim(p) == (who | CL_R);
}

/* Is the snapshot r, p a HOLE record of the token `who`, sane (n 1,
 * rec_pos READING by who)? It covers only the slot whose word is exactly
 * rec_pos. */
static bool rec_hole(uint64_t r, uint64_t p, uint32_t who)
{
	return lfipc__qrec_state(r) == LFIPC_QREC_HOLE &&
	       lfipc__qrec_n(r) == 1 && wclaim(p) == (who | CL_R);
}

/* Slot word w is READING by the dead token who: does a COUNTED record of
 * who cover it (its position in the record's run), or a HOLE record name
 * it (w is rec_pos: the slot is a hole it was dropping)? True with the
 * record's index in *k and its snapshot in *r, *p (for
 * lfipc__q_rec_resolve()). Each record read once: owner, rec, rec_pos,
 * owner (rec_snap()), validated (rec_counted(), rec_hole()). At most one
 * valid record covers a slot: the runs of a process's records are slots
 * it held READING at once, each position once a lap, and a run of n
 * slots at once has n <= N (a stale COUNTED record of a run freed a lap
 * ago is N or more positions behind). Except when two threads release
 * one peeked message at once (a race the API tolerates: the loser gets
 * -EPROTO), each through its record: a kill then leaves both COUNTED
 * over the slot, and both counts are written off (review 24's R24-1,
 * left open: doc/queue-record.md). A scribble that makes two cover it
 * gets the first. */
bool lfipc__q_rec_covers(lfipc_queue *q, uint32_t who, uint64_t w,
			 uint32_t *k, uint64_t *r, uint64_t *p)
{
	struct lfipc_qtask *t = task_of(q, who);

	for (uint32_t i = 0; i < LFIPC_QREC_K; i++) {
		if (!rec_snap(t, i, who, 0, r, p))
			return false;
		*k = i;
		if (rec_hole(*r, *p, who)) {
			if (w == *p)
				return true;
		} else if (rec_counted(*r, *p, who) &&
			   wseq(w) - wseq(*p) < lfipc__qrec_n(*r)) {
			return true;
		}
	}
	return false;
}

/* The adoption's resolution of a dead predecessor's record k: a COUNTED one
 * (valid: its token of tok's participant slot, not tok) has the slots of
 * its run still READING by the predecessor freed (its count is written
 * off next); a HOLE one whose slot holds rec_pos (the hole claimed) is
 * rolled forward the same way (lfipc__q_rec_resolve(): counted, freed,
 * written off next); any other record not IDLE is moved back to IDLE
 * with its cnt (a CLAIMED one's slots are orphaned by the repairs, as any
 * dead reader's; a HOLE one's slot was never claimed, or was resolved
 * already, and no dead dropper claims it now), so that tok's threads can
 * hold it. Only while owner is not tok (the snapshot of rec_snap()): a
 * thread of tok that adopted already may hold the record, and its value
 * is then never the one seen here (cnt grows with every run). */
static void rec_adopt(lfipc_queue *q, struct lfipc_qtask *t, uint32_t tok,
		      uint32_t k)
{
	uint64_t r, p;
	uint32_t who;

	if (!rec_snap(t, k, 0, tok, &r, &p) ||
	    lfipc__qrec_state(r) == LFIPC_QREC_IDLE)
		return;
	who = wclaim(p) & CL_TOK;
	if (who != tok && q_task_of(q, who) == t &&
	    (rec_counted(r, p, who) ||
	     (rec_hole(r, p, who) &&
	      atomic_load(&slot_at(q, (uint32_t)(wseq(p) - 1))->word) == p))) {
		lfipc__q_rec_resolve(q, who, k, r, p);
		return;
	}
	atomic_compare_exchange_strong(
	    &t->rec[k], &r,
	    lfipc__qrec(lfipc__qrec_cnt(r), 0, LFIPC_QREC_IDLE));
}

/* Adopt tok's entry: the entry of a new incarnation of a participant
 * slot still holds its dead predecessor's tasks and maybe its in-flight
 * records: resolve each (rec_adopt()), write the tasks off, then
 * store owner. The threads of a process share its token: several may
 * adopt the entry at once, and one of them may have stored owner and
 * counted its messages between our first look at owner and our load of
 * got and rec. So those are loaded before a second look at owner, as in
 * lfipc__q_tasks_reap(): a count that includes tok's is followed by
 * owner == tok (tok stores owner before its first count; all seq_cst),
 * and then the entry is adopted already and nothing is written off.
 * Written off otherwise: tasks of the dead only, and write_off() only
 * raises settled, so a second adopter's write-off of the same value is a
 * no-op. A consumer calls this before it frees the slots of the messages
 * it counts (lfipc__q_count_free()), so the write-off (a CAS, a wake-up
 * of `joined`) is never inside a count. Harmless at any time: a different
 * owner in the entry of a live token is a dead predecessor's.
 * owner is stored only once the write-off is done: stored after a
 * write-off that gave up (a peer rewriting settled, the caller's
 * deadline), it put the dead one's tasks under a live owner, which no
 * reap writes off (join waited for ever). So a consumer adopts before it
 * claims anything (claim_first(), get_msg()), and a failure fails its
 * call with nothing claimed; the entry stays the dead one's, for the next
 * call or a reap. Return: 0 adopted; -ETIMEDOUT, -EPROTO (write_off()). */
int lfipc__q_tasks_adopt(lfipc_queue *q, uint32_t tok, struct qdl *dl)
{
	struct lfipc_qtask *t = task_of(q, tok);
	int rc = 0;

	if (atomic_load(&t->owner) != tok) {
		uint64_t g;

		for (uint32_t k = 0; k < LFIPC_QREC_K; k++)
			rec_adopt(q, t, tok, k);
		g = entry_got(t);
		if (atomic_load(&t->owner) != tok &&
		    !(rc = write_off(q, t, g, dl)))
			atomic_store(&t->owner, tok);
	}
	return rc;
}

/* One run of n <= 64 slots s[] (words w[], READING by tok at consecutive
 * positions) through record k of tok's entry t, held (CLAIMED(c, n)) by
 * the caller: rec_pos, COUNTED(c + n, n), the frees, IDLE. Returns the
 * slots freed (fewer than n only when a CAS failed: then the rest stay
 * ours and the count is taken back to what was freed). */
static inline __attribute__((always_inline)) int
run_count_free(lfipc_queue *q, struct lfipc_qtask *t, uint32_t k, uint64_t c,
	       qslot *const *s, const uint64_t *w, int n, int how)
{
	int m = 0;

	/* Q19: relaxed: ordered before the release store of COUNTED that
	 * follows; read by a resolver only after our death (whose stores
	 * are then all visible, in program order) or by our own threads
	 * after their acquiring CAS of the record. */
	atomic_store_explicit(&t->rec_pos[k], w[0], memory_order_relaxed);
	/* Q19: release: the count and "these slots are counted" in one
	 * store; pairs with the seq_cst loads of rec by task_done, the
	 * write-off and the resolvers (the run's rec_pos before it). */
	atomic_store_explicit(&t->rec[k],
			      lfipc__qrec(c + (uint64_t)n, (uint32_t)n,
					  LFIPC_QREC_COUNTED),
			      memory_order_release);
	lfipc__test_point(LFIPC_TP_QREC_COUNTED, q);
	while (m < n && q_free_slot(q, s[m], w[m], how))
		m++;
	/* Q19: release: the frees before IDLE (a resolver reading IDLE
	 * after our death finds none of the run READING); pairs with the
	 * acquiring CAS of our next run (rec_hold()). */
	atomic_store_explicit(
	    &t->rec[k], lfipc__qrec(c + (uint64_t)m, 0, LFIPC_QREC_IDLE),
	    memory_order_release);
	return m;
}

/* Hold a record of entry t (record 0, else record 1) in state st (CLAIMED
 * for a run of n, HOLE with n 1): its index and *c its cnt, or -1 when
 * other threads of this process hold both (or a peer left them in
 * another state). */
static inline int rec_hold(struct lfipc_qtask *t, uint32_t n, uint32_t st,
			   uint64_t *c)
{
	for (uint32_t k = 0; k < LFIPC_QREC_K; k++) {
		/* Q19: relaxed load, then an acquiring CAS (pairs with the
		 * release store of IDLE by the last run of this process's
		 * threads through record k). */
		uint64_t r =
		    atomic_load_explicit(&t->rec[k], memory_order_relaxed);

		if (lfipc__qrec_state(r) != LFIPC_QREC_IDLE)
			continue;
		*c = lfipc__qrec_cnt(r);
		if (atomic_compare_exchange_strong_explicit(
			&t->rec[k], &r, lfipc__qrec(*c, n, st),
			memory_order_acquire, memory_order_relaxed))
			return (int)k;
	}
	return -1;
}

/* lfipc__q_count_free() for one way of freeing (a constant: each way
 * gets its own loops). */
static inline __attribute__((always_inline)) int
count_free_how(lfipc_queue *q, uint32_t tok, qslot *const *s,
	       const uint64_t *w, int k, int how, struct qdl *dl)
{
	struct lfipc_qtask *t = task_of(q, tok);
	int done = 0;

	/* done before the claim; after a peer's rewrite, counted anyway */
	(void)q_tasks_adopt(q, tok, dl);
	while (done < k) {
		const uint64_t *rw = w + done;
		int lim = k - done, n = 1, m, rk;
		uint64_t c;

		/* a run: the words READING(p, tok), READING(p + 1, tok), ...
		 * (seq in the low half: the next word is one more; a seq
		 * that wraps to 0 only ends the run there) */
		if (lim > (int)LFIPC_QREC_NMAX)
			lim = (int)LFIPC_QREC_NMAX;
		while (n < lim && rw[n] == rw[0] + (uint64_t)n)
			n++;
		if ((rk = rec_hold(t, (uint32_t)n, LFIPC_QREC_CLAIMED, &c)) >=
		    0) {
			m = run_count_free(q, t, (uint32_t)rk, c, s + done, rw,
					   n, how);
		} else {
			qslot *const *rs = s + done;

			for (m = 0; m < n; m++)
				if (!q_free_slot(q, rs[m], rw[m], how))
					break;
			lfipc__test_point(LFIPC_TP_QREC_OLDWAY, q);
			if (m)
				atomic_fetch_add(&t->got, (uint64_t)m);
		}
		done += m;
		if (m < n)
			break;
	}
	return done;
}

/*
 * A JoinableQueue consumer tok counts the k messages in slots s[] (words
 * w[], READING by tok) as got by it and frees the slots (how: QF_STORE,
 * QF_STORE_REL, QF_CAS, QF_CAS_REL, free_slot()), in runs of consecutive
 * positions (at most 64 each), each through the record of its entry:
 * count and mark in one store, free, IDLE (run_count_free()), so that a
 * kill at any point leaves either uncounted slots READING by tok (the
 * repair orphans them: delivered again) or counted ones covered by the
 * COUNTED record (the repair frees them: written off with the entry),
 * never a freed message nobody counted or a counted one delivered again.
 * When other threads of this process hold both records, the run takes
 * the old way: the frees, then got += m; a kill between them leaves tasks
 * nobody owns (doc/queue.md, "Windows that remain"). The entry is adopted
 * first (dl: the deadline of its write-off; NULL none). Returns the slots
 * freed: k, or fewer when a CAS failed (the CAS ways stop there).
 */
int lfipc__q_count_free(lfipc_queue *q, uint32_t tok, qslot *const *s,
			const uint64_t *w, int k, int how, struct qdl *dl)
{
	switch (how) {
	case QF_STORE:
		return count_free_how(q, tok, s, w, k, QF_STORE, dl);
	case QF_STORE_REL:
		return count_free_how(q, tok, s, w, k, QF_STORE_REL, dl);
	case QF_CAS:
		return count_free_how(q, tok, s, w, k, QF_CAS, dl);
	default:
		return count_free_how(q, tok, s, w, k, QF_CAS_REL, dl);
	}
}

/* lfipc__q_count_free() of one message (a get, a release): the same
 * steps without the loops. Returns 1 freed, 0 the CAS of QF_CAS failed
 * (the count taken back). how: QF_STORE or QF_CAS. */
int lfipc__q_count_free1(lfipc_queue *q, uint32_t tok, qslot *s, uint64_t w,
			 int how, struct qdl *dl)
{
	struct lfipc_qtask *t = task_of(q, tok);
	uint64_t c;
	int m, k;

	/* done before the claim; after a peer's rewrite, counted anyway */
	(void)q_tasks_adopt(q, tok, dl);
	k = rec_hold(t, 1, LFIPC_QREC_CLAIMED, &c);
	if (how == QF_CAS) {
		if (k >= 0)
			return run_count_free(q, t, (uint32_t)k, c, &s, &w, 1,
					      QF_CAS);
		m = q_free_slot(q, s, w, QF_CAS);
	} else {
		if (k >= 0)
			return run_count_free(q, t, (uint32_t)k, c, &s, &w, 1,
					      QF_STORE);
		m = q_free_slot(q, s, w, QF_STORE);
	}
	lfipc__test_point(LFIPC_TP_QREC_OLDWAY, q);
	if (m)
		atomic_fetch_add(&t->got, 1);
	return m;
}

static int settle_one(lfipc_queue *q, uint32_t tok);

/* The corrupt messages among them (counted as got by
 * lfipc__q_count_free()) are settled at once: k tasks, as k task_done
 * calls of tok settle them (settle_one()), not k added to tok's entry: a
 * task_done of another process (a handed-over task, or one too many) may
 * have settled one of them on tok's entry since they were counted, and
 * adding k would then settle it twice (the count one low for ever: join
 * returning early; review 23h). A kill before leaves them to the
 * write-off. */
void lfipc__q_tasks_settle_own(lfipc_queue *q, uint32_t tok, uint64_t k)
{
	for (uint64_t i = 0; i < k && settle_one(q, tok) > 0; i++)
		;
	ev_wake(q, &q->h->joined);
}

/*
 * A JoinableQueue drops the hole TOMB(p) (word w) of slot s at deq_pos
 * through the record of the dropper's entry t, so that a kill at any step
 * leaves p counted (tests/model/hole_drop.pml; the record's encoding:
 * internal/queue_layout.h):
 *
 *   1. CAS rec IDLE(c) -> HOLE(c, 1)  (record 0, else 1; else -1)
 *   2. rec_pos = READING(p, tok)      (the word the slot will hold)
 *   3. CAS slot TOMB(p) -> READING(p, tok)  (a loser: rec = IDLE(c), 0)
 *   4. enq_pos past p                 (p was claimed; before p counts)
 *   5. rec = COUNTED(c + 1, 1)        (p counted in the entry's got)
 *   6. the slot FREE(p + N), deq_pos p -> p + 1
 *   7. settled += 1                   (settled at once, as a corrupt
 *                                      message is)
 *   8. rec = IDLE(c + 1)
 *
 * Killed before 3: nothing changed but the record, which the adoption
 * by the next incarnation moves back to IDLE (the slot is not rec_pos).
 * Killed after 3: the slot is READING(p, tok) of a dead token whose
 * record is HOLE naming that word, or COUNTED covering it; every
 * recovery of a dead reader's slot asks lfipc__q_rec_covers() first and
 * lfipc__q_rec_resolve() then counts it if need be (HOLE: COUNTED(c + 1,
 * 1)) and frees it; the write-off settles it (so it is counted as an
 * abandoned task). Killed after 6: the slot is free, the record COUNTED,
 * resolved to IDLE; settled or written off. A hole is never orphaned (a
 * hole delivered as a message) and never counted twice.
 *
 * Return: 1 dropped; 0 the slot was not w any more (someone else dropped
 * it, or a clear took it); -1 no record to hold: this process's token
 * (lfipc__self()) or its entry's adoption failed, or other threads of
 * its process hold both records (the caller drops it the old way).
 */
int lfipc__q_tasks_drop_hole(lfipc_queue *q, qslot *s, uint64_t w, uint64_t p,
			     struct qdl *dl)
{
	qhdr *h = q->h;
	struct lfipc_qtask *t;
	uint64_t c, rw, p2 = p;
	uint32_t tok;
	int k;

	if (lfipc__self(q->r, &tok) || q_tasks_adopt(q, tok, dl))
		return -1;
	t = task_of(q, tok);
	/* record 0, else record 1 (rec_hold(): an acquiring CAS) */
	if ((k = rec_hold(t, 1, LFIPC_QREC_HOLE, &c)) < 0)
		return -1;
	rw = mkword((uint32_t)(p + 1), tok | CL_R);
	/* Q19: relaxed: ordered before the seq_cst CAS of the slot that
	 * follows (a release), which a resolver's load of the slot (seq_cst:
	 * an acquire) reads from before it loads rec_pos; read otherwise
	 * only after our death (run_count_free()). */
	atomic_store_explicit(&t->rec_pos[k], rw, memory_order_relaxed);
	lfipc__test_point(LFIPC_TP_QHOLE_HELD, q);
	if (!atomic_compare_exchange_strong(&s->word, &w, rw)) {
		/* Q19: release: pairs with the acquiring CAS of the next
		 * holder (rec_hold()). */
		atomic_store_explicit(&t->rec[k],
				      lfipc__qrec(c, 0, LFIPC_QREC_IDLE),
				      memory_order_release);
		return 0;
	}
	lfipc__test_point(LFIPC_TP_QHOLE_CLAIMED, q);
	pos_advance_dl(&h->enq_pos, p + 1, dl);
	lfipc__test_point(LFIPC_TP_QHOLE_MOVED, q);
	/* Q19: release: "p is counted" (run_count_free()); pairs with the
	 * seq_cst loads of rec by task_done, the write-off and the
	 * resolvers. */
	atomic_store_explicit(&t->rec[k],
			      lfipc__qrec(c + 1, 1, LFIPC_QREC_COUNTED),
			      memory_order_release);
	lfipc__test_point(LFIPC_TP_QHOLE_COUNTED, q);
	q_free_slot(q, s, rw, QF_STORE); /* Q6 */
	atomic_compare_exchange_strong(&h->deq_pos, &p2, p + 1);
	lfipc__test_point(LFIPC_TP_QHOLE_FREED, q);
	/* as a task_done of ours, not settled += 1: one of another
	 * process since step 5 may have settled it on our entry already
	 * (lfipc__q_tasks_settle_own()) */
	settle_one(q, tok);
	lfipc__test_point(LFIPC_TP_QHOLE_SETTLED, q);
	/* Q19: release: the free before IDLE (run_count_free()). */
	atomic_store_explicit(&t->rec[k],
			      lfipc__qrec(c + 1, 0, LFIPC_QREC_IDLE),
			      memory_order_release);
	ev_wake(q, &h->joined);
	ev_wake(q, &h->not_full);
	return 1;
}

/* Write off the unsettled tasks of every dead participant. got and rec
 * are loaded before owner: a new incarnation stores owner before its
 * first count, so a count that includes its tasks is always followed by
 * the live owner, never by its dead predecessor. O(participants). */
int lfipc__q_tasks_reap(lfipc_queue *q)
{
	int n = 0;

	for (uint32_t i = 0; i < LFIPC_PROC_SLOTS; i++) {
		struct lfipc_qtask *t = &q->tasks[i];
		uint64_t g = entry_got(t);

		if ((int64_t)(g - atomic_load(&t->settled)) <= 0)
			continue;
		if (!lfipc__token_alive(q->r, atomic_load(&t->owner))) {
			write_off(q, t, g, NULL);
			n++;
		}
	}
	return n;
}

/* Settle one task of entry t. Return: 1 done; 0 it has none outstanding;
 * -EPROTO a peer kept rewriting settled past the CAS bound
 * (internal/wait.h). */
static int task_settle(struct lfipc_qtask *t)
{
	struct lfipc_cas_bound b = LFIPC_CAS_BOUND_INIT;
	uint64_t s = atomic_load(&t->settled);
	int rc;

	while (entry_past(t, s)) {
		if (atomic_compare_exchange_weak(&t->settled, &s, s + 1))
			return 1;
		rc = lfipc__cas_retry(&b, LFIPC_DL_NEVER);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Does entry t have a task outstanding and a live owner (tok, the
 * caller's process, is alive without a question)? A system call
 * (lfipc__token_alive) per entry with tasks outstanding. */
static bool live_tasks(lfipc_queue *q, struct lfipc_qtask *t, uint32_t tok)
{
	uint32_t o;

	if ((int64_t)(entry_got(t) - atomic_load(&t->settled)) <= 0)
		return false;
	o = atomic_load(&t->owner);
	return o == tok || lfipc__token_alive(q->r, o);
}

/* Settle one task for tok (lfipc_queue_task_done()). Return: 1 done; 0
 * none is outstanding anywhere; -EPROTO a peer kept rewriting settled. */
static int settle_one(lfipc_queue *q, uint32_t tok)
{
	struct lfipc_qtask *own;
	int rc = 0;

	/* The caller's own task first: its entry, once it has adopted it
	 * (its first get stores owner before counting; until then what the
	 * entry holds is a dead predecessor's). Else one another process
	 * got (the task was handed over, as Python allows): a live
	 * getter's first, so that a task handed over by a live process is
	 * never charged to a dead one's entry (which then was neither
	 * written off nor reported, and the live one's stayed outstanding:
	 * join waited for a task that was done); a dead one's only when no
	 * live entry has one (a task the dead handed over before dying). */
	own = task_of(q, tok);
	if (atomic_load(&own->owner) == tok)
		rc = task_settle(own);
	for (int pass = 0; rc == 0 && pass < 2; pass++) {
		for (uint32_t i = 0; i < LFIPC_PROC_SLOTS; i++) {
			struct lfipc_qtask *t = &q->tasks[i];

			if (pass == 0 && !live_tasks(q, t, tok))
				continue;
			rc = task_settle(t);
			if (rc != 0)
				break;
		}
	}
	return rc;
}

int lfipc_queue_task_done(lfipc_queue *q)
{
	uint32_t tok;
	int rc;

	if (!q || !q->joinable || lfipc__self(q->r, &tok))
		return -EINVAL;
	rc = settle_one(q, tok);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return -EINVAL;
	ev_wake(q, &q->h->joined);
	return 0;
}

static bool all_done(lfipc_queue *q)
{
	/* settled, done and cleared first, enq_pos last: each only grows
	 * (cleared too: a clear and the taker of a dead clearer's lock only
	 * ever store a higher value, clear_move()), so a put, get, clear and
	 * task_done racing with these loads can only make the count of
	 * unfinished tasks look higher (join returns late), never lower
	 * (join returning while a task is outstanding). */
	uint64_t sum = 0, d, c, e;

	for (uint32_t i = 0; i < LFIPC_PROC_SLOTS; i++)
		sum += atomic_load(&q->tasks[i].settled);
	d = atomic_load(&q->h->done);
	c = atomic_load(&q->h->cleared);
	e = atomic_load(&q->h->enq_pos);
	return (int64_t)(e - d - c - sum) <= 0;
}

/* All done: 0, or -EOWNERDEAD the first time after tasks were written off
 * (reported to one join only). */
static int join_result(lfipc_queue *q)
{
	/* seen first, the count after it: seen only ever takes a count read
	 * before (a CAS up to it) and the count only grows, so the count read
	 * after seen is at or past it. A failed CAS means another join
	 * reported: read the count again, so that seen is never moved back
	 * below a count a join has reported (which reported write-offs
	 * twice), and a seen ahead of the count (only a scribble) is moved
	 * back once and heals, instead of hiding every later write-off (as a
	 * test of `a - seen > 0` did). Bounded: a peer that rewrites the
	 * word without end gets 0. */
	uint64_t seen = atomic_load(&q->h->abandoned_seen), a;

	lfipc__test_point(LFIPC_TP_JOIN_LOADED, q);
	a = atomic_load(&q->h->abandoned);
	for (int i = 0; seen != a && i < 64; i++) {
		if (atomic_compare_exchange_strong(&q->h->abandoned_seen, &seen,
						   a))
			return -EOWNERDEAD;
		a = atomic_load(&q->h->abandoned);
	}
	return 0;
}

/* Readiness callback of a join (internal/wait.h): a poller must see the
 * dead written off too, so its checks reap dead task holders. */
static int join_ready(void *ctx, struct lfipc_sleep *sl, bool check)
{
	struct qwait *c = ctx;
	int rc;

	if (check) {
		lfipc__q_tasks_reap(c->q);
		lfipc__q_slice_check(c->q, c->tok);
	}
	if (!all_done(c->q))
		return 0;
	rc = join_result(c->q);
	return rc ? rc : 1;
}

int lfipc_queue_join(lfipc_queue *q, int64_t timeout_ns)
{
	struct qwait c = {.q = q};
	int rc;

	if (!q || !q->joinable)
		return -EINVAL;
	rc = lfipc__self_timed(q->r, &c.tok, &timeout_ns);
	if (rc)
		return rc;
	return lfipc__q_wait_run(&c, -1, &q->h->joined, join_ready, timeout_ns);
}

uint64_t lfipc_queue_tasks_abandoned(const lfipc_queue *q)
{
	return q && q->joinable ? atomic_load(&q->h->abandoned) : 0;
}
