/* SPDX-License-Identifier: MIT */
/*
 * test_queue_clearkill.c - a JoinableQueue's clearer SIGKILLed at each
 * step of its count (clear_move(), lib/queue.c), and the taker of its
 * lock killed while it finishes the dead one's clear (clear_recover(),
 * lib/queue_recover.c): the test hook (lfipc__set_test_hook,
 * internal/wait.h) kills the fork child at the named point, so every step
 * is hit every run. Afterwards the count must be exact: the tasks
 * unfinished are the messages got and not task_done, join returns once
 * they are done. Before layout 5 a clearer killed between its move of
 * deq_pos and its add to `done` left the discarded positions counted
 * nowhere: join without a timeout waited for ever.
 *
 * White-box (links the static archive for the hook), in test_queue.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "common/qtest.h"
#include "common/testhelp.h"
#include "internal/wait.h"

#define CK_MS ((int64_t)1000000)
#define CK_PUTS 6 /* messages put */
#define CK_GOT 2  /* of which the test gets these first, without task_done */

TestSuite(queue_clearkill, .init = qt_setup, .fini = qt_teardown,
	  .timeout = 60);

static enum lfipc_test_point ck_point;

static void ck_die(enum lfipc_test_point point, void *arg)
{
	(void)arg;
	if (point == ck_point)
		raise(SIGKILL);
}

struct ck_child {
	lfipc_queue *q;
	enum lfipc_test_point point;
};

/* A fork child: clear, dying at ->point. 7: it did not get there. */
static int ck_clear_dies(void *arg)
{
	struct ck_child *c = arg;

	ck_point = c->point;
	lfipc__set_test_hook(ck_die);
	(void)lfipc_queue_clear(c->q);
	return 7;
}

/* Fork a clearer that dies at point; it must have. */
static void ck_kill_at(lfipc_queue *q, enum lfipc_test_point point)
{
	struct ck_child c = {.q = q, .point = point};
	pid_t pid = th_fork(ck_clear_dies, &c);

	cr_assert_gt(pid, 0);
	cr_assert_eq(th_reap(pid, QT_REAP_MS), 128 + SIGKILL,
		     "the clearer did not die at point %d", (int)point);
}

/* A JoinableQueue `name` holding CK_PUTS messages 0, 1, ..., of which the
 * first CK_GOT are got (not task_done); qp maps it from outside. */
static lfipc_queue *ck_queue(const char *name, struct qpeer *qp)
{
	lfipc_queue *q;
	uint64_t v;
	size_t len;

	cr_assert_eq(
	    lfipc_queue_create(qt_r, name, 8, 8, LFIPC_QUEUE_JOINABLE, &q), 0);
	for (uint64_t i = 0; i < CK_PUTS; i++)
		cr_assert_eq(lfipc_queue_put(q, &i, 8, LFIPC_NOWAIT), 0);
	for (uint64_t i = 0; i < CK_GOT; i++) {
		cr_assert_eq(lfipc_queue_get(q, &v, 8, &len, LFIPC_NOWAIT), 0);
		cr_assert_eq(v, i);
	}
	qp_open(qt_r, name, qp);
	return q;
}

/*
 * After the deaths: recover (a supervisor's lfipc_region_recover() takes
 * the dead one's lock over), then the clear either took effect (cleared:
 * the CK_PUTS - CK_GOT messages discarded, none left) or not (its head,
 * being discarded, dropped as a hole; the rest still there, in order).
 * Either way the count is exact: the tasks unfinished are the messages
 * got and not task_done; join times out while one is, returns once none
 * is. The queue works on.
 */
static void ck_check(lfipc_queue *q, struct qpeer *qp, bool cleared)
{
	lfipc_queue_status st = {.struct_size = sizeof(st)};
	int more = 0, rc;
	uint64_t v;
	size_t len;

	cr_assert_geq(lfipc_region_recover(qt_r), 0);
	cr_assert_eq(atomic_load(&qp->h->lock), 0, "lock not taken over");
	cr_assert_eq(atomic_load(&qp->h->clr_cb), LFIPC_Q_NOREC,
		     "record left open");
	while (lfipc_queue_get(q, &v, 8, &len, LFIPC_NOWAIT) == 0) {
		/* the head (CK_GOT) was being discarded: dropped */
		cr_assert_eq(v, (uint64_t)(CK_GOT + 1 + more));
		more++;
	}
	cr_assert_eq(lfipc_queue_stat(q, &st), 0);
	if (cleared) {
		cr_assert_eq(more, 0);
		cr_assert_eq(st.cleared, CK_PUTS - CK_GOT);
	} else {
		cr_assert_eq(more, CK_PUTS - CK_GOT - 1);
		cr_assert_eq(st.cleared, 0);
	}
	cr_assert_eq(st.tasks_unfinished, (uint64_t)(CK_GOT + more),
		     "unfinished %llu, got and not done %d",
		     (unsigned long long)st.tasks_unfinished, CK_GOT + more);
	cr_assert_eq(lfipc_queue_join(q, 20 * CK_MS), -ETIMEDOUT);
	for (int i = 0; i < CK_GOT + more; i++)
		cr_assert_eq(lfipc_queue_task_done(q), 0);
	rc = lfipc_queue_join(q, 2000 * CK_MS);
	cr_assert(rc == 0 || rc == -EOWNERDEAD, "join %d", rc);
	/* and on: a put, a clear of it, join at once */
	v = 99;
	cr_assert_eq(lfipc_queue_put(q, &v, 8, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_clear(q), 1);
	cr_assert_eq(lfipc_queue_join(q, 0), 0);
}

static const struct {
	enum lfipc_test_point point;
	bool cleared; /* deq_pos moved: the clear took effect */
} ck_steps[] = {
    {LFIPC_TP_CLEAR_HELD, false}, {LFIPC_TP_CLEAR_RECORDED, false},
    {LFIPC_TP_CLEAR_MOVED, true}, {LFIPC_TP_CLEAR_COUNTED, true},
    {LFIPC_TP_CLEAR_FREED, true},
};

Test(queue_clearkill, a_clearer_killed_at_each_step_leaves_the_count_exact)
{
	for (size_t i = 0; i < sizeof(ck_steps) / sizeof(ck_steps[0]); i++) {
		char name[16];
		struct qpeer qp;
		lfipc_queue *q;

		snprintf(name, sizeof(name), "ck%zu", i);
		q = ck_queue(name, &qp);
		ck_kill_at(q, ck_steps[i].point);
		ck_check(q, &qp, ck_steps[i].cleared);
		qp_close(&qp);
		lfipc_queue_close(q);
	}
}

/* The clearer dies after moving deq_pos (with and without its count
 * stored), then the taker of its lock (another clear) dies after acting
 * on the record, before closing it: the next taker must count the clear
 * once, not twice and not never. */
Test(queue_clearkill, a_taker_killed_finishing_a_dead_clear_leaves_it_exact)
{
	enum lfipc_test_point first[] = {LFIPC_TP_CLEAR_MOVED,
					 LFIPC_TP_CLEAR_COUNTED};

	for (size_t i = 0; i < 2; i++) {
		char name[16];
		struct qpeer qp;
		lfipc_queue *q;

		snprintf(name, sizeof(name), "ct%zu", i);
		q = ck_queue(name, &qp);
		ck_kill_at(q, first[i]);
		ck_kill_at(q, LFIPC_TP_CLEAR_RECOVERED);
		cr_assert_eq(atomic_load(&qp.h->cleared), CK_PUTS - CK_GOT);
		cr_assert_neq(atomic_load(&qp.h->clr_cb), LFIPC_Q_NOREC);
		ck_check(q, &qp, true);
		qp_close(&qp);
		lfipc_queue_close(q);
	}
}

/* A clear record a peer scribbled (an impossible range, `cleared` not
 * matching) is not acted on: the taker closes it, counts nothing, and
 * undoes the dead clearer's head as for a clearer that died before its
 * record. */
Test(queue_clearkill, a_scribbled_clear_record_counts_nothing)
{
	struct qpeer qp;
	lfipc_queue *q = ck_queue("cs", &qp);

	ck_kill_at(q, LFIPC_TP_CLEAR_RECORDED);
	atomic_store(&qp.h->clr_e, atomic_load(&qp.h->clr_d) + 1000);
	ck_check(q, &qp, false);
	qp_close(&qp);
	lfipc_queue_close(q);
}
