/* SPDX-License-Identifier: MIT */
/*
 * test_queue_rewrite.c - a Queue under a peer that keeps rewriting one of
 * its words (tests/common/casfail.h times the peer's write just before
 * each of the library's CAS on it): the single-producer role word and a
 * JoinableQueue's task entries. Each call returns within its timeout, or
 * with -EPROTO after the bound of the wait layer's CAS loops
 * (internal/wait.h, lfipc__cas_retry), and works again once the peer
 * stops. Part of the test_queue program (its own suite).
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

TestSuite(queue_rewrite, .init = qt_setup, .fini = qt_teardown, .timeout = 120);

/* ---- the role word under a peer that rewrites it ---------------------- */

#define QMS ((int64_t)1000000)

/* A single-producer queue whose role word names a dead producer
 * (QP_DEAD_TOKEN) with a thread tag that a peer moves before every CAS of
 * role_take() (tests/common/casfail.h). On main the put retried its CAS
 * for ever, past its timeout. */
static void rewritten_role(lfipc_queue **q, struct qpeer *qp)
{
	_Atomic uint64_t *role;

	cr_assert_eq(
	    lfipc_queue_create(qt_r, "q", 4, 8, LFIPC_QUEUE_SINGLE_PRODUCER, q),
	    0);
	qp_open(qt_r, "q", qp);
	role = &qp->h->role[LFIPC_Q_ROLE_PUT];
	atomic_store(role, LFIPC_Q_ROLE(QP_DEAD_TOKEN, 0));
	/* The tag is the low half (x86-64: the first four bytes). */
	cf_start(qt_r->base + ((uint8_t *)role - qp->base), (void *)role, 1);
}

/* What the put gets back once the peer stopped, and the message. */
static void put_after_peer_stopped(lfipc_queue *q, struct qpeer *qp)
{
	uint64_t v = 0;
	size_t len;

	cr_assert_eq(lfipc_queue_put(q, "12345678", 8, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_get(q, &v, 8, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(memcmp(&v, "12345678", 8), 0);
	qp_close(qp);
	lfipc_queue_close(q);
}

Test(queue_rewrite,
     a_put_honours_its_timeout_while_a_peer_rewrites_the_role_word,
     .timeout = 30)
{
	struct qpeer qp;
	lfipc_queue *q;
	int64_t took;
	int rc;

	rewritten_role(&q, &qp);
	CF_TIMED(took, rc = lfipc_queue_put(q, "12345678", 8, 200 * QMS));
	CF_EXPECT(rc, -ETIMEDOUT, took, 200 * QMS, 4200 * QMS);
	put_after_peer_stopped(q, &qp);
}

Test(queue_rewrite,
     a_put_forever_returns_eproto_while_a_peer_rewrites_the_role_word,
     .timeout = 30)
{
	struct qpeer qp;
	lfipc_queue *q;
	int64_t took;
	int rc;

	rewritten_role(&q, &qp);
	CF_TIMED(took, rc = lfipc_queue_put(q, "12345678", 8, LFIPC_FOREVER));
	CF_EXPECT(rc, -EPROTO, took, 0, 4000 * QMS);
	put_after_peer_stopped(q, &qp);
}

/* ---- a JoinableQueue's task counts under a peer that rewrites them ---- */

/* A JoinableQueue from which this process got 4 messages: its task entry
 * (got 4, settled 0), and the peer toggling settled between 0 and 1 before
 * every CAS on it (tests/common/casfail.h). */
static struct lfipc_qtask *rewritten_tasks(lfipc_queue **q, struct qpeer *qp)
{
	struct lfipc_qtask *t = NULL;
	int next = 0;

	cr_assert_eq(
	    lfipc_queue_create(qt_r, "j", 8, 8, LFIPC_QUEUE_JOINABLE, q), 0);
	cr_assert_eq(put_ints(*q, 0, 4, LFIPC_NOWAIT), 4);
	cr_assert_eq(get_ints(*q, 4, &next), 4);
	qp_open(qt_r, "j", qp);
	for (uint32_t i = 0; i < LFIPC_PROC_SLOTS; i++)
		if (qp_task_got(qp_task(qp, i)) == 4)
			t = qp_task(qp, i);
	cr_assert_not_null(t);
	cr_assert_eq(atomic_load(&t->settled), 0);
	return t;
}

static void start_toggling(struct qpeer *qp, struct lfipc_qtask *t)
{
	/* settled's low half (x86-64: its first four bytes). */
	cf_start_xor(qt_r->base + ((uint8_t *)&t->settled - qp->base),
		     (void *)&t->settled, 1);
}

/* On main task_done retried its CAS for ever (lib/queue_tasks.c,
 * task_settle). */
Test(queue_rewrite,
     task_done_returns_eproto_while_a_peer_rewrites_the_task_count,
     .timeout = 30)
{
	struct lfipc_qtask *t;
	struct qpeer qp;
	lfipc_queue *q;
	int64_t took;
	int rc;

	t = rewritten_tasks(&q, &qp);
	start_toggling(&qp, t);
	CF_TIMED(took, rc = lfipc_queue_task_done(q));
	CF_EXPECT(rc, -EPROTO, took, 0, 4000 * QMS);
	atomic_store(&t->settled, 0);
	cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(atomic_load(&t->settled), 1);
	qp_close(&qp);
	lfipc_queue_close(q);
}

/* The entry of this process's slot names a dead predecessor (owner), whose
 * 4 tasks the next get writes off (lib/queue_tasks.c, write_off) while
 * the peer toggles settled. On main the get never returned; then it gave
 * up the write-off after the bound, stored itself as owner anyway (the 4
 * tasks under a live owner: join waited for ever) and delivered. Now the
 * get fails with nothing taken, and once the peer stops the next one
 * writes them off and delivers, and join's count is exact. */
Test(queue_rewrite,
     a_get_fails_cleanly_while_a_peer_rewrites_a_dead_entry_it_writes_off,
     .timeout = 30)
{
	lfipc_queue_status st = {.struct_size = sizeof(st)};
	struct lfipc_qtask *t;
	struct qpeer qp;
	lfipc_queue *q;
	int64_t took;
	int next = 4;
	int rc;

	t = rewritten_tasks(&q, &qp);
	cr_assert_eq(put_ints(q, 4, 5, LFIPC_NOWAIT), 1);
	atomic_store(&t->owner, QP_DEAD_TOKEN);
	start_toggling(&qp, t);
	CF_TIMED(took, rc = get_ints(q, 1, &next));
	cr_assert_eq(rc, -EAGAIN, "rc %d", rc); /* LFIPC_NOWAIT */
	cr_assert_lt(took, 4000 * QMS, "get took %lld ms",
		     (long long)(took / QMS));
	cr_assert_eq(atomic_load(&t->owner), QP_DEAD_TOKEN);
	cr_assert_eq(lfipc_queue_qsize(q), 1, "the message was taken");
	/* the peer stopped */
	cr_assert_eq(get_ints(q, 1, &next), 1);
	cr_assert_eq(atomic_load(&t->settled), 4);
	cr_assert_eq(qp_task_got(t), 5);
	cr_assert_eq(lfipc_queue_stat(q, &st), 0);
	cr_assert_eq(st.tasks_unfinished, 1);
	cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(lfipc_queue_join(q, 0), -EOWNERDEAD);
	qp_close(&qp);
	lfipc_queue_close(q);
}

/* The same for a peek of orphans: its rescue claims nothing while the
 * adoption cannot write the dead predecessor off; once the peer stops,
 * the orphan comes back and the tasks are written off. */
Test(queue_rewrite,
     a_peek_of_orphans_claims_nothing_while_a_dead_entry_is_rewritten,
     .timeout = 30)
{
	struct lfipc_qtask *t;
	const void *m[1];
	size_t lens[1];
	struct qpeer qp;
	lfipc_queue *q;
	int64_t took;
	int rc;

	t = rewritten_tasks(&q, &qp);
	cr_assert_eq(put_ints(q, 4, 5, LFIPC_NOWAIT), 1);
	/* position 4 orphaned behind deq_pos (a dead reader's) */
	atomic_store(qp_word(&qp, 4), qp_mkword(5, LFIPC_Q_ORPHAN));
	atomic_store(&qp.h->deq_pos, 5);
	atomic_store(&qp.h->orphans, 1);
	atomic_store(&t->owner, QP_DEAD_TOKEN);
	start_toggling(&qp, t);
	CF_TIMED(took, rc = lfipc_queue_peek_orphans(q, m, lens, 1));
	cr_assert_lt(rc, 0);
	cr_assert_lt(took, 4000 * QMS);
	cr_assert_eq(atomic_load(qp_word(&qp, 4)),
		     qp_mkword(5, LFIPC_Q_ORPHAN));
	cr_assert_eq(atomic_load(&t->owner), QP_DEAD_TOKEN);
	/* the peer stopped */
	cr_assert_eq(lfipc_queue_peek_orphans(q, m, lens, 1), 1);
	cr_assert_eq(*(const int *)m[0], 4);
	cr_assert_eq(atomic_load(&t->settled), 4);
	cr_assert_eq(lfipc_queue_release(q, m[0]), 0);
	cr_assert_eq(qp_task_got(t), 5);
	qp_close(&qp);
	lfipc_queue_close(q);
}

/* ---- the claim loops under a peer that rewrites a slot or a position -- */

/* The low (sequence) half of slot i's word, and the high (claim) half, in
 * the peer's mapping (x86-64: the first and the last four bytes). */
static void *seq_half(struct qpeer *qp, uint64_t i)
{
	return (void *)qp_word(qp, i);
}

static void *claim_half(struct qpeer *qp, uint64_t i)
{
	return (uint8_t *)qp_word(qp, i) + 4;
}

/* The claim half of slot i's word. */
static uint32_t wclaim_of(struct qpeer *qp, uint64_t i)
{
	return (uint32_t)(atomic_load(qp_word(qp, i)) >> 32);
}

/* The same address in the library's mapping (what casfail protects: the
 * word's first byte, where a CAS on it faults). */
static void *lib_addr(struct qpeer *qp, void *peer)
{
	return qt_r->base + ((uint8_t *)peer - qp->base);
}

/* A queue of 4 slots, empty, whose slot 0 the peer toggles between FREE(0)
 * and FULL(-3) (the previous lap's, behind deq_pos: free for this lap as
 * well) before each CAS: every attempt of try_claim_put() finds a word it
 * may claim and its CAS fails. On main the put never returned. */
static void rewritten_free_slot(lfipc_queue **q, struct qpeer *qp)
{
	cr_assert_eq(lfipc_queue_create(qt_r, "c", 4, 8, 0, q), 0);
	qp_open(qt_r, "c", qp);
	cf_start_xor(lib_addr(qp, seq_half(qp, 0)), seq_half(qp, 0),
		     (uint32_t)-3);
}

Test(queue_rewrite,
     a_put_honours_its_timeout_while_a_peer_rewrites_the_slot_it_claims,
     .timeout = 30)
{
	struct qpeer qp;
	lfipc_queue *q;
	int64_t took;
	int rc;

	rewritten_free_slot(&q, &qp);
	CF_TIMED(took, rc = lfipc_queue_put(q, "12345678", 8, 200 * QMS));
	CF_EXPECT(rc, -ETIMEDOUT, took, 200 * QMS, 4200 * QMS);
	put_after_peer_stopped(q, &qp);
}

Test(queue_rewrite,
     a_nowait_put_returns_eagain_while_a_peer_rewrites_the_slot_it_claims,
     .timeout = 30)
{
	struct qpeer qp;
	lfipc_queue *q;
	int64_t took;
	int rc;

	rewritten_free_slot(&q, &qp);
	CF_TIMED(took, rc = lfipc_queue_put(q, "12345678", 8, LFIPC_NOWAIT));
	/* one attempt: the bound's first look (its 1024th failed CAS) */
	CF_EXPECT(rc, -EAGAIN, took, 0, 4000 * QMS);
	put_after_peer_stopped(q, &qp);
}

/* A queue of 4 slots holding "12345678" in slot 0, whose word the peer
 * toggles between FULL(1) and TOMB(1) before each CAS: a get's claim CAS
 * and a drop of the hole both fail, as does a clear's hold of the head.
 * On main each of those loops ran for ever. */
static void rewritten_head(lfipc_queue **q, struct qpeer *qp)
{
	cr_assert_eq(lfipc_queue_create(qt_r, "h", 4, 8, 0, q), 0);
	cr_assert_eq(lfipc_queue_put(*q, "12345678", 8, LFIPC_NOWAIT), 0);
	qp_open(qt_r, "h", qp);
	cr_assert_eq(atomic_load(qp_word(qp, 0)), qp_mkword(1, 0));
	cf_start_xor(lib_addr(qp, seq_half(qp, 0)), claim_half(qp, 0),
		     LFIPC_Q_TOMB);
}

/* The peer stopped, perhaps with the head a TOMB: it was FULL(1), and its
 * message is still there. */
static void head_restored(struct qpeer *qp)
{
	atomic_store(qp_word(qp, 0), qp_mkword(1, 0));
}

Test(queue_rewrite, a_get_honours_its_timeout_while_a_peer_rewrites_the_head,
     .timeout = 30)
{
	struct qpeer qp;
	lfipc_queue *q;
	uint64_t v = 0;
	size_t len;
	int64_t took;
	int rc;

	rewritten_head(&q, &qp);
	CF_TIMED(took, rc = lfipc_queue_get(q, &v, 8, &len, 200 * QMS));
	CF_EXPECT(rc, -ETIMEDOUT, took, 200 * QMS, 4200 * QMS);
	head_restored(&qp);
	cr_assert_eq(lfipc_queue_get(q, &v, 8, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(memcmp(&v, "12345678", 8), 0);
	qp_close(&qp);
	lfipc_queue_close(q);
}

Test(queue_rewrite, a_get_forever_returns_eproto_while_a_peer_rewrites_the_head,
     .timeout = 30)
{
	struct qpeer qp;
	lfipc_queue *q;
	uint64_t v = 0;
	size_t len;
	int64_t took;
	int rc;

	rewritten_head(&q, &qp);
	CF_TIMED(took, rc = lfipc_queue_get(q, &v, 8, &len, LFIPC_FOREVER));
	CF_EXPECT(rc, -EPROTO, took, 0, 4000 * QMS);
	head_restored(&qp);
	cr_assert_eq(lfipc_queue_get(q, &v, 8, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(memcmp(&v, "12345678", 8), 0);
	qp_close(&qp);
	lfipc_queue_close(q);
}

Test(queue_rewrite, a_clear_returns_eproto_while_a_peer_rewrites_the_head,
     .timeout = 30)
{
	struct qpeer qp;
	lfipc_queue *q;
	int64_t took, n;

	rewritten_head(&q, &qp);
	CF_TIMED(took, n = lfipc_queue_clear(q));
	cr_assert_eq(n, -EPROTO, "clear: %lld after %lld ms", (long long)n,
		     (long long)(took / QMS));
	cr_assert_lt(took, 4000 * QMS, "clear took %lld ms",
		     (long long)(took / QMS));
	head_restored(&qp);
	cr_assert_eq(lfipc_queue_clear(q), 1);
	cr_assert_eq(lfipc_queue_qsize(q), 0);
	put_after_peer_stopped(q, &qp);
}

/* A put_many of 3 whose move of enq_pos past its run (pos_advance()) a
 * peer keeps from happening, toggling enq_pos between 0 and 1 before each
 * CAS. On main the loop never ended; now it gives up after the bound, the
 * run behind the first message is given up, and the call returns 1. */
Test(queue_rewrite, a_put_many_returns_while_a_peer_rewrites_enq_pos,
     .timeout = 30)
{
	const void *msgs[3] = {"aaaaaaaa", "bbbbbbbb", "cccccccc"};
	const size_t lens[3] = {8, 8, 8};
	struct qpeer qp;
	lfipc_queue *q;
	uint64_t v = 0;
	size_t len;
	int64_t took;
	int rc;

	cr_assert_eq(lfipc_queue_create(qt_r, "m", 4, 8, 0, &q), 0);
	qp_open(qt_r, "m", &qp);
	cf_start_xor(lib_addr(&qp, (void *)&qp.h->enq_pos),
		     (void *)&qp.h->enq_pos, 1);
	CF_TIMED(took,
		 rc = lfipc_queue_put_many(q, msgs, lens, 3, LFIPC_FOREVER));
	CF_EXPECT(rc, 1, took, 0, 4000 * QMS);
	cr_assert_eq(lfipc_queue_get(q, &v, 8, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(memcmp(&v, "aaaaaaaa", 8), 0);
	cr_assert_eq(lfipc_queue_get(q, &v, 8, &len, LFIPC_NOWAIT), -EAGAIN);
	cr_assert_eq(lfipc_queue_qsize(q), 0);
	put_after_peer_stopped(q, &qp);
}

/* A reserved slot (WRITING(0)) whose word the peer flips to DISCARD and
 * back before each CAS of the commit's publication (publish_slot()). On
 * main the commit never returned; now the CAS bound ends the retries and
 * a store publishes the message. */
Test(queue_rewrite, a_commit_publishes_while_a_peer_flips_its_slot,
     .timeout = 30)
{
	struct qpeer qp;
	lfipc_queue *q;
	uint64_t v = 0;
	size_t len;
	int64_t took;
	void *slot;
	int rc;

	cr_assert_eq(lfipc_queue_create(qt_r, "z", 4, 8, 0, &q), 0);
	qp_open(qt_r, "z", &qp);
	cr_assert_eq(lfipc_queue_reserve(q, &slot, LFIPC_NOWAIT), 0);
	memcpy(slot, "zzzzzzzz", 8);
	cf_start_xor(lib_addr(&qp, seq_half(&qp, 0)), claim_half(&qp, 0),
		     LFIPC_Q_CL_R);
	CF_TIMED_MIN(took, 200, rc = lfipc_queue_commit(q, slot, 8));
	CF_EXPECT(rc, 0, took, 0, 4000 * QMS);
	cr_assert_eq(atomic_load(qp_word(&qp, 0)), qp_mkword(1, 0));
	cr_assert_eq(lfipc_queue_get(q, &v, 8, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(memcmp(&v, "zzzzzzzz", 8), 0);
	put_after_peer_stopped(q, &qp);
}

/* As above, after a clear discarded the reserved message (DISCARD(0),
 * deq_pos past it): the store under the queue lock hands the slot over as
 * CLR(1), as the protocol would, and the message is not delivered. */
Test(queue_rewrite,
     a_commit_after_a_clear_hands_its_slot_over_while_a_peer_flips_it,
     .timeout = 30)
{
	struct qpeer qp;
	lfipc_queue *q;
	uint64_t v = 0;
	size_t len;
	int64_t took;
	void *slot;
	int rc;

	cr_assert_eq(lfipc_queue_create(qt_r, "y", 4, 8, 0, &q), 0);
	qp_open(qt_r, "y", &qp);
	cr_assert_eq(lfipc_queue_reserve(q, &slot, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_clear(q), 1);
	cr_assert_eq(wclaim_of(&qp, 0) & LFIPC_Q_CL_WR, LFIPC_Q_CL_WR);
	/* The peer's first flip, before the commit's first CAS: DISCARD back
	 * to WRITING, so that every CAS fails. */
	atomic_fetch_xor(qp_word(&qp, 0), (uint64_t)LFIPC_Q_CL_R << 32);
	cf_start_xor(lib_addr(&qp, seq_half(&qp, 0)), claim_half(&qp, 0),
		     LFIPC_Q_CL_R);
	CF_TIMED_MIN(took, 200, rc = lfipc_queue_commit(q, slot, 8));
	CF_EXPECT(rc, 0, took, 0, 4000 * QMS);
	cr_assert_eq(atomic_load(qp_word(&qp, 0)), qp_mkword(1, LFIPC_Q_CLR));
	cr_assert_eq(lfipc_queue_get(q, &v, 8, &len, LFIPC_NOWAIT), -EAGAIN);
	put_after_peer_stopped(q, &qp);
}

/* A single producer's put into a queue shut down: its claim is a store
 * (sp_put()), then it sees the shutdown and gives the slot up
 * (give_up_slot()) while the peer flips the word between WRITING and
 * DISCARD before each CAS. On main the put never returned; now the bound
 * ends the retries and a store makes the slot a TOMB. */
Test(queue_rewrite,
     a_put_after_shutdown_gives_its_slot_up_while_a_peer_flips_it,
     .timeout = 30)
{
	struct qpeer qp;
	lfipc_queue *q;
	uint64_t v = 0;
	size_t len;
	int64_t took;
	int rc;

	cr_assert_eq(lfipc_queue_create(qt_r, "s", 4, 8,
					LFIPC_QUEUE_SINGLE_PRODUCER, &q),
		     0);
	qp_open(qt_r, "s", &qp);
	cr_assert_eq(lfipc_queue_shutdown(q), 0);
	cf_start_xor(lib_addr(&qp, seq_half(&qp, 0)), claim_half(&qp, 0),
		     LFIPC_Q_CL_R);
	CF_TIMED_MIN(took, 200,
		     rc = lfipc_queue_put(q, "12345678", 8, LFIPC_NOWAIT));
	CF_EXPECT(rc, -EPIPE, took, 0, 4000 * QMS);
	/* The store made TOMB(1); the peer's rewrite before the hole's drop
	 * (a CAS) flipped it to CLR(1): undo that last rewrite of the peer. */
	v = atomic_load(qp_word(&qp, 0));
	cr_assert(v == qp_mkword(1, LFIPC_Q_TOMB) ||
		      v == qp_mkword(1, LFIPC_Q_CLR),
		  "slot 0: %#llx", (unsigned long long)v);
	atomic_store(qp_word(&qp, 0), qp_mkword(1, LFIPC_Q_TOMB));
	cr_assert_eq(lfipc_queue_get(q, &v, 8, &len, LFIPC_NOWAIT), -EPIPE);
	cr_assert_eq(lfipc_queue_qsize(q), 0);
	qp_close(&qp);
	lfipc_queue_close(q);
}
