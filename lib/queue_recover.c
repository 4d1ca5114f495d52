/* SPDX-License-Identifier: MIT */
/*
 * queue_recover.c - how a Queue survives a participant killed at any
 * instruction: the queue lock (taken over from a dead holder), holes left
 * by dead or giving-up producers, dead claimants found at slice ends,
 * orphaned messages delivered again, and explicit recovery.
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
#include "internal/recover.h"
#include "internal/region.h"
#include "internal/shm.h"
#include "internal/wait.h"

/* ---- the queue lock and the orphan count ----------------------------- */

/* Count the ORPHAN slots and store the count. Only the lock holder calls
 * it, and only the lock holder makes or takes orphans, so the count is
 * exact when it stores it. O(N): run after a take-over from a dead holder
 * (which may have died between changing a slot and the count) and when a
 * rescue found the count too high. */
static void orphans_recount(lfipc_queue *q)
{
	uint32_t k = 0;

	for (uint64_t i = 0; i < q->n; i++)
		if (wclaim(atomic_load(&slot_at(q, i)->word)) == ORPHAN)
			k++;
	atomic_store(&q->h->orphans, k);
}

/* Undo what a clearer that died holding the lock left at the head: a head
 * it had marked but not yet moved deq_pos past. A marked FULL/TOMB head
 * (CLR at deq_pos) becomes TOMB, so that the next get (or
 * lfipc__q_drop_holes()) drops and counts it: that message was being discarded
 * anyway. A DISCARD head goes back to WRITING for its producer, whose publish
 * retries (see publish_slot()). Called with the lock taken over. */
static void clear_undo(lfipc_queue *q, struct qdl *dl)
{
	for (int tries = 0; tries < 64; tries++) {
		uint64_t d = atomic_load(&q->h->deq_pos);
		qslot *s = slot_at(q, d);
		uint64_t w = atomic_load(&s->word);
		uint32_t c = wclaim(w);
		uint64_t nw;

		if (wseq(w) == (uint32_t)(d + 1) && c == CLR) {
			pos_advance_dl(&q->h->hole_hi, d + 1, dl);
			nw = mkword(wseq(w), TOMB);
		} else if (wseq(w) == (uint32_t)d && (c & CL_WR) == CL_WR &&
			   (c & CL_TOK)) {
			nw = mkword(wseq(w), (c & CL_TOK) | CL_W);
		} else {
			return;
		}
		if (atomic_compare_exchange_strong(&s->word, &w, nw)) {
			ev_wake(q, &q->h->not_empty);
			return;
		}
	}
}

void lfipc__q_clear_undo(lfipc_queue *q)
{
	clear_undo(q, NULL);
}

/* Let go of the head d that a dead clearer held as CLR after it moved
 * deq_pos past it (what its step 4 does; a producer of the next lap takes
 * a CLR behind deq_pos anyway, so this only saves it the detour). */
static void clear_free_head(lfipc_queue *q, uint64_t d)
{
	uint64_t w = mkword((uint32_t)(d + 1), CLR);

	atomic_compare_exchange_strong(&slot_at(q, d)->word, &w,
				       mkword((uint32_t)(d + q->n), 0));
}

/*
 * The lock was taken over from a dead holder: bring a clear it left with
 * its record open (clear_move() in queue.c, steps 1-5) to the end that
 * makes `cleared` and deq_pos agree. The record is read once and checked
 * against `cleared` and deq_pos, which tell the dead clearer's steps
 * apart: while its head is held nobody but it moves deq_pos, and only a
 * lock holder writes `cleared` and the record. With n = clr_e - clr_d:
 *
 *   cleared == cb + n, deq_pos at or past clr_e: moved and counted: let
 *       go of the head, close;
 *   cleared == cb, deq_pos at or past clr_e: moved, not counted: store
 *       cleared = cb + n (an absolute value: a second taker stores the
 *       same), let go of the head, close;
 *   cleared == cb, deq_pos == clr_d: not moved: close, then undo the
 *       head (clear_undo()), as for a clearer that died before its record;
 *   anything else: not a record a clear leaves (a peer wrote it): close
 *       and undo the head, counting nothing.
 *
 * Closed before the undo: the undone head (a TOMB) is dropped by anybody
 * soon, moving deq_pos past clr_d with `cleared` still cb, which an open
 * record read by a later taker (this one killed) would take for "moved,
 * not counted". A taker killed at any step leaves the record closed, or
 * open in a state the next taker treats the same way. Checked, with the
 * clearer and then its taker killed at each step, in
 * tests/model/queue_recovery.pml (CLRREC=2).
 */
static void clear_recover(lfipc_queue *q, struct qdl *dl)
{
	qhdr *h = q->h;
	uint64_t cb = atomic_load(&h->clr_cb), d, e, n, c, dq;
	bool moved;

	if (cb == LFIPC_Q_NOREC) {
		clear_undo(q, dl);
		return;
	}
	d = atomic_load(&h->clr_d);
	e = atomic_load(&h->clr_e);
	c = atomic_load(&h->cleared);
	dq = atomic_load(&h->deq_pos);
	n = e - d;
	moved = (int64_t)(dq - e) >= 0;
	if (n == 0 || n > q->n + 1 || !moved || (c != cb && c != cb + n)) {
		atomic_store(&h->clr_cb, LFIPC_Q_NOREC);
		clear_undo(q, dl);
		return;
	}
	if (c == cb)
		atomic_store(&h->cleared, cb + n);
	clear_free_head(q, d);
	lfipc__test_point(LFIPC_TP_CLEAR_RECOVERED, q);
	atomic_store(&h->clr_cb, LFIPC_Q_NOREC);
}

/* The lock was held by a dead participant and is now ours: finish or
 * undo its half-done clear and recount the orphans it may have been
 * changing. dl: the deadline of the caller's call for the move of hole_hi
 * (NULL: none). */
static void lock_recover(lfipc_queue *q, struct qdl *dl)
{
	clear_recover(q, dl);
	orphans_recount(q);
}

/* Take the lock for tok if it is free, or held by a dead participant (then
 * recover first, within the deadline dl of the caller's call; NULL: none).
 * Never waits. */
static bool lock_try(lfipc_queue *q, uint32_t tok, struct qdl *dl)
{
	uint32_t c = 0;

	if (atomic_compare_exchange_strong(&q->h->lock, &c, tok))
		return true;
	/* c == tok: another thread of this process holds it */
	if (c == tok || lfipc__token_alive(q->r, c) ||
	    !atomic_compare_exchange_strong(&q->h->lock, &c, tok))
		return false;
	lock_recover(q, dl);
	return true;
}

bool lfipc__q_lock_try(lfipc_queue *q, uint32_t tok)
{
	return lock_try(q, tok, NULL);
}

void lfipc__q_lock_release(lfipc_queue *q)
{
	atomic_store(&q->h->lock, 0);
}

/* ---- positions ------------------------------------------------------- */

/* The retries of pos_advance() (internal/queue.h), whose first CAS failed
 * with *pos at v: bounded by the CAS bound without a deadline (a peer that
 * rewrites the word before each CAS would keep an unbounded loop here for
 * ever). True once *pos is at or past `to`; false when the bound passed
 * (about a second of failures, or the deadline dl of the call when it
 * comes first; NULL: none) and it gave up with *pos short of `to`:
 * others help positions on past claimed slots. */
bool lfipc__q_pos_retry(_Atomic uint64_t *pos, uint64_t to, uint64_t v,
			struct qdl *dl)
{
	struct lfipc_cas_bound b = LFIPC_CAS_BOUND_INIT;

	while ((int64_t)(to - v) > 0) {
		if (q_cas_retry(&b, dl) < 0)
			return false;
		if (atomic_compare_exchange_weak(pos, &v, to))
			break;
	}
	return true;
}

/* ---- holes ------------------------------------------------------------ */

/* Drop the hole TOMB(p) (word w) of slot s at deq_pos. A JoinableQueue
 * drops it through the dropper's in-flight record
 * (lfipc__q_tasks_drop_hole(): READING, counted as got and settled, a
 * dead dropper's slot counted and freed by its recovery, never
 * orphaned). A plain queue, and a JoinableQueue dropper that cannot hold
 * its record (another thread of its process holds it, or its entry could
 * not be adopted), go straight to FREE(p + N), never through READING, so
 * that a participant dying here cannot turn the hole into an ORPHAN that
 * would be delivered as a message; a JoinableQueue then counts p in
 * `done`. Its producer may have died before moving enq_pos past it (and
 * past the rest of its run): every position up to p is claimed, so move
 * it now, before counting p as done, or join's count would undercount.
 * That move has the deadline dl of the caller's call (NULL: none), so that
 * a peer that keeps enq_pos from moving cannot hold a timed get past its
 * timeout. Returns false when the word changed meanwhile. */
bool lfipc__q_drop_hole(lfipc_queue *q, qslot *s, uint64_t w, uint64_t p,
			struct qdl *dl)
{
	qhdr *h = q->h;
	uint64_t p2 = p;

	if (q->joinable) {
		/* through the dropper's record: a kill at any step leaves
		 * p counted (lfipc__q_tasks_drop_hole()); -1: no record to
		 * hold, the way below (its window remains) */
		int rc = lfipc__q_tasks_drop_hole(q, s, w, p, dl);

		if (rc >= 0)
			return rc;
	}
	if (!atomic_compare_exchange_strong(&s->word, &w,
					    mkword((uint32_t)(p + q->n), 0)))
		return false;
	pos_advance_dl(&h->enq_pos, p + 1, dl);
	atomic_compare_exchange_strong(&h->deq_pos, &p2, p + 1);
	if (q->joinable) {
		/* a kill between the CAS and this add leaves p counted
		 * nowhere (doc/queue.md, "Windows that remain") */
		atomic_fetch_add(&h->done, 1);
		ev_wake(q, &h->joined);
	}
	ev_wake(q, &h->not_full);
	return true;
}

/* Drop every hole at the head. Whoever makes a TOMB calls this after, so a
 * hole at the head never waits for a consumer (none may come: a put that
 * gives its slot up at shutdown may be the last participant). The moves of
 * enq_pos have the deadline dl of the caller's call (a put that found the
 * queue shut down, put_closed()); lfipc__q_drop_holes(): none. */
void lfipc__q_drop_holes_dl(lfipc_queue *q, struct qdl *dl)
{
	for (uint64_t i = 0; i <= q->n; i++) {
		uint64_t d = atomic_load(&q->h->deq_pos);
		qslot *s = slot_at(q, d);
		uint64_t w = atomic_load(&s->word);

		if (w != mkword((uint32_t)(d + 1), TOMB))
			return;
		lfipc__q_drop_hole(q, s, w, d, dl);
	}
}

void lfipc__q_drop_holes(lfipc_queue *q)
{
	lfipc__q_drop_holes_dl(q, NULL);
}

/* ---- dead claimants -------------------------------------------------- */

/* A dead consumer's READING(p) became ORPHAN(p). A get run claims a run
 * of positions beyond deq_pos before moving it once; if its consumer died
 * in between, p lies at or beyond deq_pos, and every position from
 * deq_pos to p is that run's (now orphaned too). Move deq_pos past p, so
 * that orphans lie behind deq_pos, as everything else assumes (clear's
 * "enq_pos - deq_pos <= N + 1", the capacity test). */
static void orphan_behind(lfipc_queue *q, uint32_t seq, struct qdl *dl)
{
	uint64_t d = atomic_load(&q->h->deq_pos);
	uint64_t p = pos_near(d, seq - 1);

	if ((int64_t)(p - d) >= 0 && p - d < q->n)
		pos_advance_dl(&q->h->deq_pos, p + 1, dl);
}

/* Free slot s, READING (word w) by a dead consumer whose COUNTED record
 * covers it, for the next lap (a CAS from w: never a slot that is not
 * READING by that token). Put behind deq_pos first, as an orphan would
 * be (orphan_behind(): a run claimed beyond deq_pos by a consumer that
 * died before moving it). 1 freed, 0 the word changed. */
static int counted_free(lfipc_queue *q, qslot *s, uint64_t w)
{
	orphan_behind(q, wseq(w), NULL);
	return q_free_slot(q, s, w, QF_CAS);
}

/* Resolve the COUNTED record k, r, p (rec[k], rec_pos[k], a snapshot
 * validated by the caller: lfipc__q_rec_covers() or the adoption; k <
 * LFIPC_QREC_K, the caller's own loop index) of the dead token
 * who: free every slot of its run still READING by who (their messages
 * are counted in who's entry and written off with it), then CAS the
 * record from r back to IDLE with the same cnt. IDLE only after every
 * slot of the run is resolved: a resolver that reads IDLE orphans a slot
 * READING by who, which then must not be one of the run. At most 64
 * slots; a slot at a position of the run is freed only from the exact
 * word READING(position, who).
 *
 * A HOLE record r (n 1) whose slot holds rec_pos (the caller saw it: the
 * dead dropper claimed the hole p) is rolled forward: enq_pos past p (p
 * was claimed by a producer; moved before p is counted, as the dropper
 * does), CAS r -> COUNTED(cnt + 1, 1), and then resolved as that COUNTED
 * record whoever won the CAS. The CAS fails only for a record another
 * resolver rolled forward (p counted: freeing the slot is right) or moved
 * to IDLE after the slot stopped being READING by who (the free's CAS
 * from that word then fails): a resolver that lost it and left the slot
 * READING would let the adoption store its owner, after which the next
 * repair orphans the hole (tests/model/hole_drop.pml, ROLLCAS). Never
 * back to TOMB: a peer may have helped deq_pos past the READING head, and
 * a TOMB behind deq_pos is never dropped (the model's REC=1). The
 * write-off then settles p with who's tasks (counted as abandoned). */
void lfipc__q_rec_resolve(lfipc_queue *q, uint32_t who, uint32_t k, uint64_t r,
			  uint64_t p)
{
	uint32_t n, seq = wseq(p);
	struct lfipc_qtask *t = q_task_of(q, who);

	if (lfipc__qrec_state(r) == LFIPC_QREC_HOLE) {
		uint64_t c = lfipc__qrec_cnt(r);
		uint64_t e = atomic_load(&q->h->enq_pos);
		uint64_t to = pos_near(e, seq - 1) + 1;

		/* at most a run of holes beyond enq_pos (a dead producer's);
		 * a scribbled seq further on never moves it */
		if ((int64_t)(to - e) > 0 && to - e <= q->n + 1)
			pos_advance(&q->h->enq_pos, to);
		atomic_compare_exchange_strong(
		    &t->rec[k], &r, lfipc__qrec(c + 1, 1, LFIPC_QREC_COUNTED));
		r = lfipc__qrec(c + 1, 1, LFIPC_QREC_COUNTED);
	}
	n = lfipc__qrec_n(r);

	for (uint32_t i = 0; i < n && i < LFIPC_QREC_NMAX; i++) {
		qslot *s = slot_at(q, (uint64_t)(uint32_t)(seq + i - 1));
		uint64_t w = atomic_load(&s->word);

		if (w == mkword(seq + i, who | CL_R))
			counted_free(q, s, w);
	}
	atomic_compare_exchange_strong(
	    &t->rec[k], &r,
	    lfipc__qrec(lfipc__qrec_cnt(r), 0, LFIPC_QREC_IDLE));
	ev_wake(q, &q->h->not_full);
}

/* Slot s holds READING (word w) of a dead consumer: if its COUNTED record
 * covers the slot (lfipc__q_rec_covers()), resolve that record: the slot
 * is freed, not orphaned. 1 resolved, 0 not covered (orphan it). */
static int counted_resolve(lfipc_queue *q, uint64_t w)
{
	uint32_t who = wclaim(w) & CL_TOK, k;
	uint64_t r, p;

	if (!q->joinable || !lfipc__q_rec_covers(q, who, w, &k, &r, &p))
		return 0;
	lfipc__q_rec_resolve(q, who, k, r, p);
	return 1;
}

/* Slot s holds READING (word w) of a dead consumer and the caller holds
 * the lock: make it ORPHAN, counting it first (a kill in between leaves
 * the lock to a take-over, which recounts); a JoinableQueue's slot whose
 * message the dead consumer counted already is freed instead
 * (counted_resolve()). 1 done, 0 the word changed. */
int lfipc__q_orphan_locked(lfipc_queue *q, qslot *s, uint64_t w)
{
	qhdr *h = q->h;
	uint64_t nw = mkword(wseq(w), ORPHAN);

	if (counted_resolve(q, w))
		return 1;
	atomic_fetch_add(&h->orphans, 1);
	if (!atomic_compare_exchange_strong(&s->word, &w, nw)) {
		atomic_fetch_sub(&h->orphans, 1);
		return 0;
	}
	orphan_behind(q, wseq(nw), NULL);
	return 1;
}

/* The same, taking the lock (busy: 0, the next slice tries again). */
static int orphan(lfipc_queue *q, uint32_t tok, qslot *s, uint64_t w)
{
	int rc;

	/* a counted message's slot is freed without the lock */
	if (counted_resolve(q, w))
		return 1;
	if (!lfipc__q_lock_try(q, tok))
		return 0;
	rc = lfipc__q_orphan_locked(q, s, w);
	lfipc__q_lock_release(q);
	return rc;
}

/* Claimants a sweep found alive, so that each is asked once per sweep
 * (an F_OFD_GETLK, about a microsecond on a paravirtualised guest)
 * however many slots it holds: a consumer's peeked window holds
 * thousands, a producer's put_many a run. Local to one sweep. The memo
 * saves the system call only: a hit still reads what the region's memory
 * says (the slot's generation, its death word), so a claimant found dead
 * by anyone, closed, or marked by the kernel's death push during the
 * sweep (an explicit recovery of a large ring takes milliseconds) is
 * repaired in the same sweep; one whose death only its OFD lock shows yet
 * is found by the next. */
#define ALIVE_MEMO 8u

struct alive_memo {
	uint32_t tok[ALIVE_MEMO];
	unsigned n; /* tokens entered; the oldest is replaced when full */
};

/* Is who, a claimant other than the caller, alive? Asks the kernel only
 * for a token not already found alive in this sweep (m NULL: always). */
static bool claimant_alive(lfipc_queue *q, struct alive_memo *m,
			   uint32_t who)
{
	if (!m)
		return lfipc__token_alive(q->r, who);
	for (unsigned i = 0; i < m->n && i < ALIVE_MEMO; i++)
		if (m->tok[i] == who)
			/* dead as far as memory tells: lfipc__token_alive
			 * says so without a system call, and retires it */
			return lfipc__token_maybe_alive(q->r, who) ||
			       lfipc__token_alive(q->r, who);
	if (!lfipc__token_alive(q->r, who))
		return false;
	m->tok[m->n++ % ALIVE_MEMO] = who;
	return true;
}

/* Slot s holds word w claimed by a token (WRITING, DISCARD or READING):
 * if the claimant is dead, turn WRITING into TOMB, DISCARD into CLR (the
 * clear already accounted for it) and READING into ORPHAN. tok is the
 * caller's token: its own claims are alive without a question. m: the
 * sweep's memo, or NULL. Returns 1 when it repaired something. */
static int repair(lfipc_queue *q, uint32_t tok, qslot *s, uint64_t w,
		  struct alive_memo *m)
{
	uint32_t c = wclaim(w), who = c & CL_TOK;
	uint64_t nw;

	if (who == 0 || who == tok || !(c & CL_WR) ||
	    claimant_alive(q, m, who))
		return 0;
	if ((c & CL_WR) == CL_R) {
		if (!orphan(q, tok, s, w))
			return 0;
	} else {
		if ((c & CL_WR) == CL_WR) {
			nw = mkword(wseq(w) + 1, CLR);
		} else {
			/* every TOMB lies below hole_hi: raise it first */
			pos_advance(
			    &q->h->hole_hi,
			    pos_near(atomic_load(&q->h->enq_pos), wseq(w)) + 1);
			nw = mkword(wseq(w) + 1, TOMB);
		}
		if (!atomic_compare_exchange_strong(&s->word, &w, nw))
			return 0;
	}
	ev_wake(q, &q->h->not_empty);
	ev_wake(q, &q->h->not_full);
	return 1;
}

int lfipc__q_repair(lfipc_queue *q, uint32_t tok, qslot *s, uint64_t w)
{
	return repair(q, tok, s, w, NULL);
}

/* If the lock is held by a dead participant, take it over, recover and
 * release it. Returns 1 when it did. */
int lfipc__q_lock_repair(lfipc_queue *q, uint32_t tok)
{
	uint32_t holder = atomic_load(&q->h->lock);

	if (holder == 0 || holder == tok || lfipc__token_alive(q->r, holder) ||
	    !atomic_compare_exchange_strong(&q->h->lock, &holder, tok))
		return 0;
	lock_recover(q, NULL);
	lfipc__q_lock_release(q);
	lfipc__q_drop_holes(q);
	return 1;
}

/* Repair the slot of position pos if its claimant is dead (m: the
 * sweep's memo). */
static int check_slot(lfipc_queue *q, uint32_t tok, uint64_t pos,
		      struct alive_memo *m)
{
	qslot *s = slot_at(q, pos);
	uint64_t w = atomic_load(&s->word);

	if ((wclaim(w) & CL_TOK) && repair(q, tok, s, w, m)) {
		lfipc__q_drop_holes(q);
		return 1;
	}
	return 0;
}

/*
 * What a waiter does at the end of a sleep slice, in O(1) whatever N: take
 * over a dead holder's lock; repair the head (a dead producer's hole there
 * blocks consumers and join) and the slot producers claim next (a dead
 * consumer's slot of the previous lap blocks them); and sweep SWEEP_SLOTS
 * more slots for dead readers, from a cursor shared by every waiter of the
 * queue, so that their messages are found and delivered again (within
 * N / SWEEP_SLOTS slices of one waiter).
 */
int lfipc__q_slice_check(lfipc_queue *q, uint32_t tok)
{
	uint64_t i0, k = q->n < SWEEP_SLOTS ? q->n : SWEEP_SLOTS;
	struct alive_memo m = {.n = 0};
	int n = 0;

	n += lfipc__q_lock_repair(q, tok);
	n += check_slot(q, tok, atomic_load(&q->h->deq_pos), &m);
	n += check_slot(q, tok, atomic_load(&q->h->enq_pos), &m);
	/* Q1: relaxed: a cursor only; any value sweeps some slots. */
	i0 = atomic_fetch_add_explicit(&q->h->sweep, k, memory_order_relaxed);
	for (uint64_t i = 0; i < k; i++) {
		qslot *s = slot_at(q, i0 + i);
		/* Q2: relaxed; repair() re-validates with a CAS. */
		uint64_t w =
		    atomic_load_explicit(&s->word, memory_order_relaxed);

		if ((wclaim(w) & CL_TOK) && (wclaim(w) & CL_WR))
			n += repair(q, tok, s, w, &m);
	}
	lfipc__q_drop_holes(q);
	return n;
}

/* A fruitless LFIPC_NOWAIT call: every POLL_CHECK of them in this process
 * does a slice's checks, so that a caller that only polls is not blocked
 * for ever by a dead participant, at O(1) amortised cost. */
void lfipc__q_poll_tick(lfipc_queue *q, uint32_t tok)
{
	/* Q7: relaxed (see struct lfipc_queue). */
	uint32_t k =
	    atomic_fetch_add_explicit(&q->polls, 1, memory_order_relaxed) + 1;

	if (k % POLL_CHECK == 0)
		lfipc__q_slice_check(q, tok);
}

/* The word w of a slot that keeps a caller waiting (a head in flight, a
 * slot still held by the previous lap) was seen again. True every
 * STUCK_CHECK-th time in a row: time to look whether its claimant lives
 * (one system call per STUCK_CHECK attempts, none on a moving queue). */
bool lfipc__q_stuck(lfipc_queue *q, uint64_t w)
{
	uint32_t k;

	/* Q7: relaxed (see struct lfipc_queue). */
	if (atomic_load_explicit(&q->stuck_w, memory_order_relaxed) != w) {
		atomic_store_explicit(&q->stuck_w, w, memory_order_relaxed);
		atomic_store_explicit(&q->stuck_n, 1, memory_order_relaxed);
		return false;
	}
	k = atomic_fetch_add_explicit(&q->stuck_n, 1, memory_order_relaxed) + 1;
	return k % STUCK_CHECK == 0;
}

/* ---- orphans delivered again ------------------------------------------ */

/* Take an ORPHAN (a message whose consumer died mid-get) for tok, under
 * the lock, starting where the last one was found (a dead get_many leaves
 * a run of them). The moves of a take-over of the lock (hole_hi) and of
 * orphan_behind() (deq_pos) have the deadline dl of the caller's get
 * (NULL: none), so that a peer rewriting them cannot hold it past its
 * timeout. 1: claimed (*s_out, its new word *w_out); 0: none, or
 * the lock is busy (the next get tries again). */
int lfipc__q_rescue(lfipc_queue *q, uint32_t tok, qslot **s_out,
		    uint64_t *w_out, struct qdl *dl)
{
	qhdr *h = q->h;
	uint64_t start;

	if (!lock_try(q, tok, dl))
		return 0;
	if (atomic_load(&h->orphans) == 0) {
		lfipc__q_lock_release(q);
		return 0;
	}
	start = atomic_load(&h->orphan_at);
	for (uint64_t i = 0; i < q->n; i++) {
		qslot *s = slot_at(q, start + i);
		uint64_t w = atomic_load(&s->word);
		uint64_t nw = mkword(wseq(w), tok | CL_R);

		if (wclaim(w) == ORPHAN &&
		    atomic_compare_exchange_strong(&s->word, &w, nw)) {
			atomic_store(&h->orphan_at, start + i + 1);
			atomic_fetch_sub(&h->orphans, 1);
			/* An orphan whose maker died before moving deq_pos
			 * past it may sit at deq_pos: put it behind, so that
			 * a reader's head with deq_pos lagging is always a
			 * head claim whose consumer moves deq_pos next (the
			 * single-consumer mode relies on it, sc_advance()). */
			orphan_behind(q, wseq(nw), dl);
			lfipc__q_lock_release(q);
			*s_out = s;
			*w_out = nw;
			return 1;
		}
	}
	/* None left: the count was too high (a peer wrote it). We hold the
	 * lock, so the true count is 0. */
	atomic_store(&h->orphans, 0);
	lfipc__q_lock_release(q);
	return 0;
}

/* ---- recovery -------------------------------------------------------- */

/* Repair every dead claimant's slot, O(N): for an explicit recovery, and
 * once before a get reports a shut-down queue as drained (a dead reader's
 * message nobody has noticed yet must not be left behind). */
int lfipc__q_check_all(lfipc_queue *q, uint32_t tok)
{
	struct alive_memo m = {.n = 0};
	int n = lfipc__q_lock_repair(q, tok);

	for (uint64_t i = 0; i < q->n; i++)
		n += check_slot(q, tok, i, &m);
	lfipc__q_drop_holes(q);
	return n;
}

int lfipc__queue_recover(lfipc_region *r, uint64_t off, uint64_t size)
{
	lfipc_queue *q;
	uint32_t tok;
	int rc, n;

	rc = lfipc__q_handle(r, off, size, &q);
	if (rc)
		return rc;
	rc = lfipc__self(r, &tok);
	if (rc) {
		free(q);
		return rc;
	}
	/* A supervisor's explicit call: look at every slot. */
	n = lfipc__q_check_all(q, tok);
	if (q->joinable)
		n += lfipc__q_tasks_reap(q);
	free(q);
	return n;
}
