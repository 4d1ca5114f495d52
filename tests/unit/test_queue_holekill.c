/* SPDX-License-Identifier: MIT */
/*
 * test_queue_holekill.c - a JoinableQueue's dropper of a hole SIGKILLed
 * at each step of the drop through its in-flight record
 * (lfipc__q_tasks_drop_hole(), lib/queue_tasks.c; the test points
 * LFIPC_TP_QHOLE_*): a fork child's get finds the hole TOMB(0) at the
 * head and drops it; the test hook kills it at the named step, so every
 * step is hit every run. Afterwards the count must be exact: the hole is
 * never delivered, the tasks unfinished are the messages got and not
 * task_done, join times out while they are held and returns once they
 * are done (-EOWNERDEAD when the dead dropper's count of the hole was
 * written off). Before session 23 a dropper killed between freeing the
 * hole's slot and `done` += 1 left the position counted nowhere: join
 * without a timeout waited for ever.
 *
 * White-box (links the static archive for the hook), in test_queue.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "common/qtest.h"
#include "common/testhelp.h"
#include "internal/wait.h"

#define HK_N 8	  /* capacity and slots */
#define HK_MSGS 3 /* messages 1..3 behind the hole at position 0 */

TestSuite(queue_holekill, .init = qt_setup, .fini = qt_teardown,
	  .timeout = 60);

static enum lfipc_test_point hk_point;

static void hk_die(enum lfipc_test_point point, void *arg)
{
	(void)arg;
	if (point == hk_point)
		raise(SIGKILL);
}

/* A fork child: one get, which drops the hole at the head and dies at
 * hk_point. 7: it did not get there. */
static int hk_get_dies(void *arg)
{
	int v[2];
	size_t len;

	lfipc__set_test_hook(hk_die);
	(void)lfipc_queue_get(arg, v, sizeof(v), &len, LFIPC_NOWAIT);
	return 7;
}

/* A fork child (a new process, maybe the dead one's next incarnation):
 * get every message, each one of 1..HK_MSGS exactly once, and task_done
 * it. Returns the count, or 100 + the bad value. */
static int hk_get_all(void *arg)
{
	int v[HK_N][2], seen[HK_MSGS + 1] = {0}, k = 0;
	size_t lens[HK_N];

	for (int tries = 0; tries < 3; tries++) {
		int g = lfipc_queue_get_many(arg, v, sizeof(v[0]), lens, HK_N,
					     (int64_t)100000000);

		for (int i = 0; i < g; i++) {
			if (v[i][0] < 1 || v[i][0] > HK_MSGS ||
			    seen[v[i][0]]++)
				return 100 + v[i][0];
			if (lfipc_queue_task_done(arg) != 0)
				return 99;
			k++;
		}
	}
	return k;
}

/* A JoinableQueue "hk" whose position 0 is a hole (TOMB(0), as a
 * producer's repair or give-up leaves it: below hole_hi, enq_pos past
 * it) followed by the messages 1..HK_MSGS. */
static lfipc_queue *hk_queue(struct qpeer *qp)
{
	lfipc_queue *q;

	cr_assert_eq(lfipc_queue_create(qt_r, "hk", HK_N, 8,
					LFIPC_QUEUE_JOINABLE, &q),
		     0);
	qp_open(qt_r, "hk", qp);
	atomic_store(&qp->h->hole_hi, 1);
	atomic_store(qp_word(qp, 0), qp_mkword(1, LFIPC_Q_TOMB));
	atomic_store(&qp->h->enq_pos, 1);
	cr_assert_eq(put_ints(q, 1, HK_MSGS + 1, LFIPC_NOWAIT), HK_MSGS);
	return q;
}

/* Fork a getter that dies at point; it must have. */
static void hk_kill_at(lfipc_queue *q, enum lfipc_test_point point)
{
	pid_t pid;

	hk_point = point;
	pid = th_fork(hk_get_dies, q);
	cr_assert_gt(pid, 0);
	cr_assert_eq(th_reap(pid, QT_REAP_MS), 128 + SIGKILL,
		     "the dropper did not die at point %d", (int)point);
}

/* The count after the kill and the recovery: the hole never comes as a
 * message, the HK_MSGS are held (join times out), then done (join
 * returns want, then 0); the hole's slot is free for its next lap, and
 * the queue works on. getter: the messages were taken and done by a new
 * process already (then only the count is looked at). */
static void hk_check(lfipc_queue *q, struct qpeer *qp, int want, bool getter)
{
	lfipc_queue_status st = {.struct_size = sizeof(st)};
	int next = 1;

	if (!getter) {
		cr_assert_eq(get_ints(q, HK_MSGS, &next), HK_MSGS);
		cr_assert_eq(next, HK_MSGS + 1);
		cr_assert_eq(lfipc_queue_stat(q, &st), 0);
		cr_assert_eq(st.tasks_unfinished, HK_MSGS,
			     "unfinished %llu: the hole is counted nowhere "
			     "or twice",
			     (unsigned long long)st.tasks_unfinished);
		cr_assert_eq(lfipc_queue_join(q, 1000000), -ETIMEDOUT);
		for (int i = 0; i < HK_MSGS; i++)
			cr_assert_eq(lfipc_queue_task_done(q), 0);
	}
	cr_assert_eq(lfipc_queue_stat(q, &st), 0);
	cr_assert_eq(st.tasks_unfinished, 0, "unfinished %llu",
		     (unsigned long long)st.tasks_unfinished);
	cr_assert_eq(st.orphans, 0);
	cr_assert_eq(st.dead_claims, 0);
	cr_assert_eq(st.holes, 0);
	cr_assert_eq(lfipc_queue_join(q, 2000000000), want);
	cr_assert_eq(lfipc_queue_tasks_abandoned(q),
		     (uint64_t)(want == -EOWNERDEAD));
	cr_assert_eq(lfipc_queue_join(q, 0), 0);
	cr_assert_eq(atomic_load(qp_word(qp, 0)), qp_mkword(HK_N, 0),
		     "the hole's slot is free for its next lap");
	for (int lap = 0; lap < 3; lap++) {
		cr_assert_eq(put_ints(q, next, next + HK_N, LFIPC_NOWAIT),
			     HK_N);
		cr_assert_eq(get_ints(q, HK_N, &next), HK_N);
		for (int i = 0; i < HK_N; i++)
			cr_assert_eq(lfipc_queue_task_done(q), 0);
	}
	cr_assert_eq(lfipc_queue_join(q, 0), 0);
}

/* Killed at point; a supervisor's recovery; the count. want: join's
 * first result (-EOWNERDEAD: the hole was counted through the dead one's
 * entry and written off with it). */
static void hk_case(enum lfipc_test_point point, int want)
{
	struct qpeer qp;
	lfipc_queue *q = hk_queue(&qp);

	hk_kill_at(q, point);
	cr_assert_geq(lfipc_region_recover(qt_r), 0);
	hk_check(q, &qp, want, false);
	qp_close(&qp);
	lfipc_queue_close(q);
}

/* Killed at point; a new process (maybe the dead one's next incarnation,
 * whose adoption then resolves the record) takes the messages first: it
 * must never get the hole, nor any message twice; then the recovery. */
static void hk_case_getter(enum lfipc_test_point point, int want)
{
	struct qpeer qp;
	lfipc_queue *q = hk_queue(&qp);
	pid_t pid;

	hk_kill_at(q, point);
	cr_assert_gt(pid = th_fork(hk_get_all, q), 0);
	cr_assert_eq(th_reap(pid, QT_REAP_MS), HK_MSGS,
		     "the getter's result (100 + v: got v)");
	cr_assert_geq(lfipc_region_recover(qt_r), 0);
	hk_check(q, &qp, want, true);
	qp_close(&qp);
	lfipc_queue_close(q);
}

/* Record held, slot not claimed: nothing to count; the next get drops
 * the hole (the dead one's record waits for its next incarnation). */
Test(queue_holekill, killed_holding_the_record)
{
	hk_case(LFIPC_TP_QHOLE_HELD, 0);
}

/* Slot READING by the dead, record HOLE naming it: the recovery counts
 * and frees it (written off), never orphans it. */
Test(queue_holekill, killed_with_the_hole_claimed)
{
	hk_case(LFIPC_TP_QHOLE_CLAIMED, -EOWNERDEAD);
}

Test(queue_holekill, killed_after_moving_enq_pos)
{
	hk_case(LFIPC_TP_QHOLE_MOVED, -EOWNERDEAD);
}

/* Record COUNTED, slot READING: freed as any counted slot. */
Test(queue_holekill, killed_with_the_hole_counted)
{
	hk_case(LFIPC_TP_QHOLE_COUNTED, -EOWNERDEAD);
}

/* Slot freed, not settled: written off. */
Test(queue_holekill, killed_with_the_slot_freed)
{
	hk_case(LFIPC_TP_QHOLE_FREED, -EOWNERDEAD);
}

/* Settled, record not IDLE yet: nothing outstanding. */
Test(queue_holekill, killed_after_settling)
{
	hk_case(LFIPC_TP_QHOLE_SETTLED, 0);
}

Test(queue_holekill, killed_claimed_then_a_getter)
{
	hk_case_getter(LFIPC_TP_QHOLE_CLAIMED, -EOWNERDEAD);
}

Test(queue_holekill, killed_counted_then_a_getter)
{
	hk_case_getter(LFIPC_TP_QHOLE_COUNTED, -EOWNERDEAD);
}

Test(queue_holekill, killed_holding_then_a_getter)
{
	hk_case_getter(LFIPC_TP_QHOLE_HELD, 0);
}
