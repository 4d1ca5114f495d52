/* SPDX-License-Identifier: MIT */
/*
 * test_review19b.c - the deadlines of the queue's bounded CAS loops (branch
 * cas19) under a peer that keeps rewriting one word just before each of
 * the library's CAS on it (tests/common/casfail.h): a call with a timeout
 * returns near its timeout, not after the CAS bound's second, in every
 * part of the call (the later segments of a bulk call, the publication).
 * Found by the hostile review of session 19 (review19b). Part of the
 * test_queue program (its own suite).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "common/casfail.h"
#include "common/qtest.h"
#include "common/testhelp.h"
#include "internal/region.h"

TestSuite(review19b, .init = qt_setup, .fini = qt_teardown, .timeout = 60);

#define RMS ((int64_t)1000000)
/* The calls' timeout, and how late they may return: well below the CAS
 * bound's second (LFIPC_CAS_BOUND_NS), which cas19 took in each case. */
#define R_TIMEOUT (100 * RMS)
#define R_LATE (600 * RMS)

/* The same address in the library's mapping as peer in ours. */
static void *lib_at(struct qpeer *qp, void *peer)
{
	return qt_r->base + ((uint8_t *)peer - qp->base);
}

static void *seq_of(struct qpeer *qp, uint64_t i)
{
	return (void *)qp_word(qp, i);
}

static void *claim_of(struct qpeer *qp, uint64_t i)
{
	return (uint8_t *)qp_word(qp, i) + 4;
}

/* A put_many of 2 with a timeout into an empty queue of 4 slots whose
 * slot 1 the peer toggles between FREE(1) and FULL(-3) (the previous
 * lap's, behind deq_pos: claimable too) before each CAS: the first message
 * goes to slot 0, and every claim of slot 1 fails. On cas19 the later
 * segment's claim (lfipc__q_claim_once(), no deadline) ran the CAS bound's
 * full second past the call's 100 ms. */
Test(review19b,
     a_timed_put_many_returns_by_its_timeout_when_a_later_claim_fails)
{
	const void *msgs[2] = {"aaaaaaaa", "bbbbbbbb"};
	const size_t lens[2] = {8, 8};
	struct qpeer qp;
	lfipc_queue *q;
	uint64_t v = 0;
	size_t len;
	int64_t took;
	int rc;

	cr_assert_eq(lfipc_queue_create(qt_r, "pm", 4, 8, 0, &q), 0);
	qp_open(qt_r, "pm", &qp);
	/* seq 1 (FREE(1)) <-> seq -2 (FULL(-3)) */
	cf_start_xor(lib_at(&qp, seq_of(&qp, 1)), seq_of(&qp, 1),
		     (uint32_t)1 ^ (uint32_t)-2);
	CF_TIMED(took, rc = lfipc_queue_put_many(q, msgs, lens, 2, R_TIMEOUT));
	CF_EXPECT(rc, 1, took, 0, R_LATE);
	atomic_store(qp_word(&qp, 1), qp_mkword(1, 0));
	cr_assert_eq(lfipc_queue_get(q, &v, 8, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(memcmp(&v, "aaaaaaaa", 8), 0);
	cr_assert_eq(lfipc_queue_put(q, "bbbbbbbb", 8, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_get(q, &v, 8, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(memcmp(&v, "bbbbbbbb", 8), 0);
	qp_close(&qp);
	lfipc_queue_close(q);
}

/* A get_many of 2 with a timeout from a queue holding 2 messages, whose
 * slot 1 the peer toggles between FULL(1) and TOMB(1) before each CAS: the
 * first message comes from slot 0, every claim (or drop) of slot 1 fails.
 * On cas19 the later segment's claim (lfipc__q_try_claim_get(), no
 * deadline) ran the bound's full second. */
Test(review19b,
     a_timed_get_many_returns_by_its_timeout_when_a_later_claim_fails)
{
	char bufs[2][8];
	size_t lens[2];
	struct qpeer qp;
	lfipc_queue *q;
	uint64_t v = 0;
	size_t len;
	int64_t took;
	int rc;

	cr_assert_eq(lfipc_queue_create(qt_r, "gm", 4, 8, 0, &q), 0);
	cr_assert_eq(lfipc_queue_put(q, "aaaaaaaa", 8, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_put(q, "bbbbbbbb", 8, LFIPC_NOWAIT), 0);
	qp_open(qt_r, "gm", &qp);
	cf_start_xor(lib_at(&qp, seq_of(&qp, 1)), claim_of(&qp, 1),
		     LFIPC_Q_TOMB);
	CF_TIMED(took,
		 rc = lfipc_queue_get_many(q, bufs, 8, lens, 2, R_TIMEOUT));
	cr_assert_eq(rc, 1, "get_many: %d after %lld ms", rc,
		     (long long)(took / RMS));
	cr_assert_eq(memcmp(bufs[0], "aaaaaaaa", 8), 0);
	cr_assert_lt(took, R_LATE, "get_many took %lld ms",
		     (long long)(took / RMS));
	atomic_store(qp_word(&qp, 1), qp_mkword(2, 0));
	cr_assert_eq(lfipc_queue_get(q, &v, 8, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(memcmp(&v, "bbbbbbbb", 8), 0);
	qp_close(&qp);
	lfipc_queue_close(q);
}

/* A put_many of 3 with a timeout whose move of enq_pos past its run the
 * peer keeps from happening (enq_pos toggled between 0 and 1 before each
 * CAS). On cas19 pos_advance() had no deadline: a full second. The run
 * behind the first message is given up. */
Test(review19b,
     a_timed_put_many_returns_by_its_timeout_when_enq_pos_is_rewritten)
{
	const void *msgs[3] = {"aaaaaaaa", "bbbbbbbb", "cccccccc"};
	const size_t lens[3] = {8, 8, 8};
	struct qpeer qp;
	lfipc_queue *q;
	uint64_t v = 0;
	size_t len;
	int64_t took;
	int rc;

	cr_assert_eq(lfipc_queue_create(qt_r, "pe", 4, 8, 0, &q), 0);
	qp_open(qt_r, "pe", &qp);
	cf_start_xor(lib_at(&qp, (void *)&qp.h->enq_pos),
		     (void *)&qp.h->enq_pos, 1);
	CF_TIMED(took, rc = lfipc_queue_put_many(q, msgs, lens, 3, R_TIMEOUT));
	CF_EXPECT(rc, 1, took, 0, R_LATE);
	cr_assert_eq(lfipc_queue_get(q, &v, 8, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(memcmp(&v, "aaaaaaaa", 8), 0);
	cr_assert_eq(lfipc_queue_get(q, &v, 8, &len, LFIPC_NOWAIT), -EAGAIN);
	qp_close(&qp);
	lfipc_queue_close(q);
}

/* A single producer's put (its claim is a store, sp_put()) whose slot the
 * peer flips between WRITING and DISCARD before each CAS of the
 * publication. The store under the queue lock is as good at the first
 * sign of the peer as after a second; on cas19 the publication ran the
 * CAS bound's full second first, past the put's timeout. */
static void flipped_publication(int64_t timeout_ns)
{
	struct qpeer qp;
	lfipc_queue *q;
	uint64_t v = 0;
	size_t len;
	int64_t took;
	int rc;

	cr_assert_eq(lfipc_queue_create(qt_r, "sp", 4, 8,
					LFIPC_QUEUE_SINGLE_PRODUCER, &q),
		     0);
	qp_open(qt_r, "sp", &qp);
	cf_start_xor(lib_at(&qp, seq_of(&qp, 0)), claim_of(&qp, 0),
		     LFIPC_Q_CL_R);
	CF_TIMED_MIN(took, 200,
		     rc = lfipc_queue_put(q, "12345678", 8, timeout_ns));
	CF_EXPECT(rc, 0, took, 0, R_LATE);
	cr_assert_eq(atomic_load(qp_word(&qp, 0)), qp_mkword(1, 0));
	cr_assert_eq(lfipc_queue_get(q, &v, 8, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(memcmp(&v, "12345678", 8), 0);
	qp_close(&qp);
	lfipc_queue_close(q);
}

Test(review19b,
     a_timed_put_publishes_by_its_timeout_while_a_peer_flips_its_slot)
{
	flipped_publication(R_TIMEOUT);
}

Test(review19b, a_nowait_put_publishes_at_once_while_a_peer_flips_its_slot)
{
	flipped_publication(LFIPC_NOWAIT);
}

/* The same with the queue lock held by a live participant (this process's
 * own token, as a clear of another thread holds it; a stopped clearer
 * holds it the same way): the store cannot be made, and the put gives up
 * at its deadline with -ETIMEDOUT, its slot left claimed. On cas19 it
 * retried for two CAS bounds (about 2 s) past its 100 ms. */
Test(review19b, a_timed_put_gives_up_by_its_timeout_when_the_lock_is_held_too)
{
	struct qpeer qp;
	lfipc_queue *q, *q2;
	void *slot;
	uint32_t me;
	int64_t took;
	int rc;

	cr_assert_eq(lfipc_queue_create(qt_r, "lk", 4, 8,
					LFIPC_QUEUE_SINGLE_PRODUCER, &q),
		     0);
	cr_assert_eq(lfipc_queue_create(qt_r, "me", 4, 8, 0, &q2), 0);
	cr_assert_eq(lfipc_queue_reserve(q2, &slot, LFIPC_NOWAIT), 0);
	qp_open(qt_r, "me", &qp);
	me = (uint32_t)(atomic_load(qp_word(&qp, 0)) >> 32) & LFIPC_Q_CL_TOK;
	cr_assert_neq(me, 0);
	cr_assert_eq(lfipc_queue_commit(q2, slot, 0), 0);
	qp_close(&qp);
	qp_open(qt_r, "lk", &qp);
	atomic_store(&qp.h->lock, me);
	cf_start_xor(lib_at(&qp, seq_of(&qp, 0)), claim_of(&qp, 0),
		     LFIPC_Q_CL_R);
	CF_TIMED_MIN(took, 200,
		     rc = lfipc_queue_put(q, "12345678", 8, R_TIMEOUT));
	CF_EXPECT(rc, -ETIMEDOUT, took, R_TIMEOUT, R_LATE);
	/* the slot is still ours (WRITING or DISCARD) */
	cr_assert_eq((uint32_t)(atomic_load(qp_word(&qp, 0)) >> 32) &
			 LFIPC_Q_CL_TOK,
		     me);
	qp_close(&qp);
	lfipc_queue_close(q2);
	lfipc_queue_close(q);
}

/* A get with a timeout whose head is a hole (TOMB(2)) left by a producer
 * that died before moving enq_pos past it (enq_pos 2), while the peer
 * toggles enq_pos between 2 and 0 before each CAS: dropping the hole moves
 * enq_pos past it first (lfipc__q_drop_hole()), and on cas19 that move had
 * no deadline: the get returned a second after its 100 ms. */
Test(review19b,
     a_timed_get_returns_by_its_timeout_when_a_hole_drop_cannot_move_enq_pos)
{
	struct qpeer qp;
	lfipc_queue *q;
	uint64_t v = 0;
	size_t len;
	int64_t took;
	int rc, next = 0;

	cr_assert_eq(lfipc_queue_create(qt_r, "hd", 4, 8, 0, &q), 0);
	cr_assert_eq(put_ints(q, 0, 2, LFIPC_NOWAIT), 2);
	cr_assert_eq(get_ints(q, 2, &next), 2);
	qp_open(qt_r, "hd", &qp);
	atomic_store(qp_word(&qp, 2), qp_mkword(3, LFIPC_Q_TOMB));
	cf_start_xor(lib_at(&qp, (void *)&qp.h->enq_pos),
		     (void *)&qp.h->enq_pos, 2);
	CF_TIMED(took, rc = lfipc_queue_get(q, &v, 8, &len, R_TIMEOUT));
	CF_EXPECT(rc, -ETIMEDOUT, took, 0, R_LATE);
	/* enq_pos as the peer left it (0 or 2): put it past the hole */
	atomic_store(&qp.h->enq_pos, 3);
	cr_assert_eq(lfipc_queue_put(q, "12345678", 8, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_get(q, &v, 8, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(memcmp(&v, "12345678", 8), 0);
	qp_close(&qp);
	lfipc_queue_close(q);
}

/* A single producer's put with a timeout into a queue shut down: it
 * claims its slot with a store, sees the shutdown and gives the slot up
 * (give_up_slot()), which first raises hole_hi past it, while the peer
 * toggles hole_hi's high half (0 <-> 0xffffffff00000000, both below the
 * hole) before each CAS. On cas19 that move had no deadline: -EPIPE a
 * second after the put's 100 ms. */
Test(
    review19b,
    a_timed_put_after_shutdown_returns_by_its_timeout_when_hole_hi_is_rewritten)
{
	struct qpeer qp;
	lfipc_queue *q;
	uint64_t v = 0;
	size_t len;
	int64_t took;
	int rc;

	cr_assert_eq(lfipc_queue_create(qt_r, "hh", 4, 8,
					LFIPC_QUEUE_SINGLE_PRODUCER, &q),
		     0);
	qp_open(qt_r, "hh", &qp);
	cr_assert_eq(lfipc_queue_shutdown(q), 0);
	cr_assert_eq(atomic_load(&qp.h->hole_hi), 0);
	cf_start_xor(lib_at(&qp, (void *)&qp.h->hole_hi),
		     (uint8_t *)&qp.h->hole_hi + 4, 0xffffffffu);
	CF_TIMED(took, rc = lfipc_queue_put(q, "12345678", 8, R_TIMEOUT));
	CF_EXPECT(rc, -EPIPE, took, 0, R_LATE);
	/* the hole was dropped at once; hole_hi as the peer left it */
	atomic_store(&qp.h->hole_hi, 1);
	cr_assert_eq(lfipc_queue_get(q, &v, 8, &len, LFIPC_NOWAIT), -EPIPE);
	cr_assert_eq(lfipc_queue_qsize(q), 0);
	qp_close(&qp);
	lfipc_queue_close(q);
}

/* A JoinableQueue named name holding "bbbbbbbb", whose caller's task entry
 * still holds a dead predecessor's tasks (owner not the caller, got 100,
 * settled 0), with the peer toggling settled before each CAS (see the
 * tests below). */
static lfipc_queue *dead_tasks_queue(const char *name, struct qpeer *qp)
{
	char bufs[1][8];
	size_t lens[1];
	struct lfipc_qtask *t = NULL;
	lfipc_queue *q;

	cr_assert_eq(lfipc_queue_create(qt_r, name, 4, 8, LFIPC_QUEUE_JOINABLE,
					&q),
		     0);
	cr_assert_eq(lfipc_queue_put(q, "aaaaaaaa", 8, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_put(q, "bbbbbbbb", 8, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_get_many(q, bufs, 8, lens, 1, LFIPC_NOWAIT),
		     1);
	qp_open(qt_r, name, qp);
	for (uint32_t i = 0; i < LFIPC_PROC_SLOTS; i++)
		if (qp_task_got(qp_task(qp, i)) == 1)
			t = qp_task(qp, i);
	cr_assert_not_null(t);
	/* a dead predecessor's entry: another owner, 100 tasks unsettled */
	atomic_store(&t->owner, atomic_load(&t->owner) ^ 0x40000000u);
	/* 100 in all: got + the records' count of the get above */
	atomic_store(&t->got, 100 - (qp_task_got(t) - atomic_load(&t->got)));
	cf_start_xor(lib_at(qp, (void *)&t->settled), (void *)&t->settled,
		     1);
	return q;
}

/* After the peer of dead_tasks_queue() stopped: the message is still
 * there, the next get adopts the entry (the 100 tasks written off, owner
 * stored) and delivers it. */
static void dead_tasks_after(lfipc_queue *q, struct qpeer *qp)
{
	struct lfipc_qtask *t = NULL;
	uint64_t v = 0;
	size_t len;

	for (uint32_t i = 0; i < LFIPC_PROC_SLOTS; i++)
		if (qp_task_got(qp_task(qp, i)) >= 100)
			t = qp_task(qp, i);
	cr_assert_not_null(t);
	cr_assert_eq(lfipc_queue_qsize(q), 1, "the message was taken");
	cr_assert_eq(lfipc_queue_get(q, &v, 8, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(memcmp(&v, "bbbbbbbb", 8), 0);
	cr_assert_eq(atomic_load(&t->settled), 100);
	cr_assert_eq(qp_task_got(t), 101);
	cr_assert_eq(lfipc_queue_tasks_abandoned(q), 100);
}

/* A timed get_many of 1 from a JoinableQueue whose caller's task entry
 * still holds a dead predecessor's tasks (owner not the caller, got 100,
 * settled 0), while the peer toggles settled between 0 and 1 before each
 * CAS: the write-off of those tasks (write_off(), lib/queue_tasks.c) never
 * lands. On moves19's base it ran the CAS bound's full second past the
 * call's 100 ms; then it ended at the call's deadline but stored the owner
 * anyway (the dead one's tasks under a live owner: join waited for ever)
 * and delivered. Now the adoption comes before the claim and its failure
 * fails the call with nothing taken, by the deadline. */
Test(review19b,
     a_timed_get_many_returns_by_its_timeout_when_a_write_off_fails)
{
	char bufs[1][8];
	size_t lens[1];
	struct qpeer qp;
	lfipc_queue *q;
	int64_t took;
	int rc;

	q = dead_tasks_queue("wo", &qp);
	CF_TIMED(took,
		 rc = lfipc_queue_get_many(q, bufs, 8, lens, 1, R_TIMEOUT));
	CF_EXPECT(rc, -ETIMEDOUT, took, 0, R_LATE);
	dead_tasks_after(q, &qp);
	qp_close(&qp);
	lfipc_queue_close(q);
}

/* The same as the last test for a single timed get (the adoption in
 * get_msg(), lib/queue_putget.c). */
Test(review19b, a_timed_get_returns_by_its_timeout_when_a_write_off_fails)
{
	uint64_t v = 0;
	size_t len;
	struct qpeer qp;
	lfipc_queue *q;
	int64_t took;
	int rc;

	q = dead_tasks_queue("wg", &qp);
	CF_TIMED(took, rc = lfipc_queue_get(q, &v, 8, &len, R_TIMEOUT));
	CF_EXPECT(rc, -ETIMEDOUT, took, 0, R_LATE);
	dead_tasks_after(q, &qp);
	qp_close(&qp);
	lfipc_queue_close(q);
}

/* A timed get from a queue of 4 holding 3 messages whose slot 2 is an
 * ORPHAN (a dead get_many's run: beyond deq_pos), while the peer toggles
 * deq_pos between 0 and 1 before each CAS: the rescue takes the orphan
 * and puts it behind deq_pos (orphan_behind(), lib/queue_recover.c), a
 * move to 3 that never lands. On moves19's base it ran the CAS bound's
 * full second past the call's 100 ms; now it ends at the deadline. */
Test(review19b,
     a_timed_get_returns_by_its_timeout_when_an_orphan_cannot_go_behind)
{
	struct qpeer qp;
	lfipc_queue *q;
	uint64_t v = 0, w;
	size_t len;
	int64_t took;
	int rc;

	cr_assert_eq(lfipc_queue_create(qt_r, "ob", 4, 8, 0, &q), 0);
	cr_assert_eq(lfipc_queue_put(q, "aaaaaaaa", 8, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_put(q, "bbbbbbbb", 8, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_put(q, "cccccccc", 8, LFIPC_NOWAIT), 0);
	qp_open(qt_r, "ob", &qp);
	w = atomic_load(qp_word(&qp, 2));
	atomic_store(qp_word(&qp, 2), qp_mkword((uint32_t)w, LFIPC_Q_ORPHAN));
	atomic_store(&qp.h->orphans, 1);
	cf_start_xor(lib_at(&qp, (void *)&qp.h->deq_pos),
		     (void *)&qp.h->deq_pos, 1);
	CF_TIMED(took, rc = lfipc_queue_get(q, &v, 8, &len, R_TIMEOUT));
	CF_EXPECT(rc, 0, took, 0, R_LATE);
	cr_assert_eq(memcmp(&v, "cccccccc", 8), 0, "the orphan");
	qp_close(&qp);
	lfipc_queue_close(q);
}

/* A queue of 4 slots of 8 bytes, named name, through which n (below 4)
 * messages have passed (each put, then got): empty, both positions at
 * n; mapped by the peer qp. */
static lfipc_queue *passed_queue(const char *name, int n, struct qpeer *qp)
{
	lfipc_queue *q;
	uint64_t v;

	cr_assert_eq(lfipc_queue_create(qt_r, name, 4, 8, 0, &q), 0);
	for (int i = 0; i < n; i++) {
		cr_assert_eq(lfipc_queue_put(q, "aaaaaaaa", 8, LFIPC_NOWAIT),
			     0);
		cr_assert_eq(
		    lfipc_queue_get(q, &v, sizeof(v), NULL, LFIPC_NOWAIT), 0);
	}
	qp_open(qt_r, name, qp);
	return q;
}

/* A timed get from a queue whose lock a dead participant holds, having
 * marked the head (position 2) CLR for a clear it did not finish, and
 * that has an orphan count: the rescue takes the lock over, and the
 * undo of the clear (clear_undo(), lib/queue_recover.c) raises hole_hi
 * to 3, while the peer toggles hole_hi between 0 and 1 before each CAS.
 * The head becomes a hole, dropped; the queue is empty: -ETIMEDOUT. On
 * moves19's base the move ran the CAS bound's full second first. */
Test(review19b,
     a_timed_get_returns_by_its_timeout_when_a_take_over_cannot_undo)
{
	struct qpeer qp;
	lfipc_queue *q;
	uint64_t v = 0;
	size_t len;
	int64_t took;
	int rc;

	q = passed_queue("cu", 2, &qp);
	cr_assert_eq(lfipc_queue_put(q, "cccccccc", 8, LFIPC_NOWAIT), 0);
	cr_assert_eq(atomic_load(&qp.h->deq_pos), 2);
	cr_assert_lt(atomic_load(&qp.h->hole_hi), 2);
	/* the dead clearer's mark: CLR with the sequence of a drop */
	atomic_store(qp_word(&qp, 2), qp_mkword(3, LFIPC_Q_CLR));
	atomic_store(&qp.h->lock, ((uint32_t)(LFIPC_PROC_SLOTS + 1)
				   << LFIPC_TOKEN_GEN_BITS) | 1u);
	atomic_store(&qp.h->orphans, 1);
	cf_start_xor(lib_at(&qp, (void *)&qp.h->hole_hi),
		     (void *)&qp.h->hole_hi, 1);
	CF_TIMED(took, rc = lfipc_queue_get(q, &v, 8, &len, R_TIMEOUT));
	CF_EXPECT(rc, -ETIMEDOUT, took, R_TIMEOUT / 2, R_LATE);
	cr_assert_eq(atomic_load(&qp.h->lock), 0, "taken over and let go");
	qp_close(&qp);
	lfipc_queue_close(q);
}

/* The shutdown of the next test: written (through the test's mapping) by
 * the peer at its first rewrite of enq_pos, so that it falls between the
 * put's claim and its look at closed (claim_once()). */
static _Atomic uint32_t *close_at_claim;

static void close_segv(int sig, siginfo_t *si, void *ucv)
{
	if (cf.on && (uintptr_t)si->si_addr == cf.word)
		atomic_store(close_at_claim, 1);
	cf_segv(sig, si, ucv);
}

/* A timed put into a queue of 4 at position 2 (empty), while the peer
 * toggles enq_pos between 2 and 0 before each CAS and shuts the queue down
 * at the first: the put claims slot 2 (its one CAS of enq_pos fails and
 * leaves it), then finds the queue shut down and gives the position up;
 * the hole is at the head, and dropping it moves enq_pos past it
 * (lfipc__q_drop_holes() from put_closed(), lib/queue_putget.c), a move
 * that never lands. On moves19's
 * base it ran the CAS bound's full second; now it ends at the deadline. */
Test(review19b,
     a_timed_put_into_a_shut_queue_returns_by_its_timeout_dropping_its_hole)
{
	struct qpeer qp;
	lfipc_queue *q;
	struct sigaction sa;
	int64_t took;
	int rc;

	q = passed_queue("pc", 2, &qp);
	cr_assert_eq(atomic_load(&qp.h->enq_pos), 2);
	close_at_claim = &qp.h->closed;
	cf_start_xor(lib_at(&qp, (void *)&qp.h->enq_pos),
		     (void *)&qp.h->enq_pos, 2);
	memset(&sa, 0, sizeof(sa));
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sa.sa_sigaction = close_segv;
	cr_assert_eq(sigaction(SIGSEGV, &sa, NULL), 0);
	CF_TIMED(took, rc = lfipc_queue_put(q, "cccccccc", 8, R_TIMEOUT));
	CF_EXPECT(rc, -EPIPE, took, 0, R_LATE);
	qp_close(&qp);
	lfipc_queue_close(q);
}
