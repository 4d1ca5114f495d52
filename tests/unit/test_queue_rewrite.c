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
	cr_assert_eq(rc, -ETIMEDOUT, "put: %d after %lld ms", rc,
		     (long long)(took / QMS));
	cr_assert_geq(took, 200 * QMS);
	cr_assert_lt(took, 4200 * QMS, "put took %lld ms",
		     (long long)(took / QMS));
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
	cr_assert_eq(rc, -EPROTO, "put: %d after %lld ms", rc,
		     (long long)(took / QMS));
	cr_assert_lt(took, 4000 * QMS, "put took %lld ms",
		     (long long)(took / QMS));
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
		if (atomic_load(&qp_task(qp, i)->got) == 4)
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
	cr_assert_eq(rc, -EPROTO, "task_done: %d after %lld ms", rc,
		     (long long)(took / QMS));
	cr_assert_lt(took, 4000 * QMS, "task_done took %lld ms",
		     (long long)(took / QMS));
	atomic_store(&t->settled, 0);
	cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(atomic_load(&t->settled), 1);
	qp_close(&qp);
	lfipc_queue_close(q);
}

/* The entry of this process's slot names a dead predecessor (owner), whose
 * 4 tasks the next get writes off (lib/queue_tasks.c, write_off) while
 * the peer toggles settled. On main the get never returned; now it gives
 * up the write-off after the bound and delivers the message. */
Test(queue_rewrite,
     a_get_returns_while_a_peer_rewrites_a_dead_entry_it_writes_off,
     .timeout = 30)
{
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
	cr_assert_eq(rc, 1);
	cr_assert_lt(took, 4000 * QMS, "get took %lld ms",
		     (long long)(took / QMS));
	qp_close(&qp);
	lfipc_queue_close(q);
}
