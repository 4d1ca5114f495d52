/* SPDX-License-Identifier: MIT */
/*
 * test_review23h.c - hostile review of a JoinableQueue's drop of a hole
 * through the dropper's record (lfipc__q_tasks_drop_hole(),
 * lib/queue_tasks.c). Tests that show a defect stay failing (review
 * rev23h, /work/scratch/rev23h/REPORT.md).
 *
 * The drop stores COUNTED(c + 1) (step 5: the hole is a task of the
 * dropper's entry) and only later settled += 1 (step 7, a fetch_add).
 * In between, any task_done can settle that hole as if it were a real
 * task (task_settle(): the own entry, or a live entry with tasks), and
 * the fetch_add then settles it a second time: sum(settled) is one too
 * high for ever and join returns while a task is outstanding.
 *
 * White-box (links the static archive for the test hook), in test_queue:
 *   make -j2 tests/unit/test_queue
 *   build/tests/unit/test_queue --filter 'review23h/<all>'
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "common/qtest.h"
#include "common/testhelp.h"
#include "internal/wait.h"

#define RV_N 8

TestSuite(review23h, .init = qt_setup, .fini = qt_teardown, .timeout = 60);

/* Make position pos (the head: deq_pos == enq_pos == pos) a hole as a
 * producer's give-up leaves it: TOMB, below hole_hi, enq_pos past it. */
static void rv_hole_at(struct qpeer *qp, uint64_t pos)
{
	cr_assert_eq(atomic_load(&qp->h->enq_pos), pos);
	atomic_store(&qp->h->hole_hi, pos + 1);
	atomic_store(qp_word(qp, pos % RV_N),
		     qp_mkword((uint32_t)(pos + 1), LFIPC_Q_TOMB));
	atomic_store(&qp->h->enq_pos, pos + 1);
}

static lfipc_queue *rv_q;
static int rv_td_rc = 1;

/* At step 5 of the drop (the hole counted, not settled yet): a
 * task_done with no task of ours outstanding (a surplus one). */
static void rv_td_at_counted(enum lfipc_test_point point, void *arg)
{
	(void)arg;
	if (point == LFIPC_TP_QHOLE_COUNTED && rv_td_rc == 1)
		rv_td_rc = lfipc_queue_task_done(rv_q);
}

/* A surplus task_done (Python: ValueError; here -EINVAL) that falls in
 * the window of a hole's drop is taken as done, and the count drifts: the
 * hole is settled twice. Afterwards join returns with a task held. */
Test(review23h, surplus_task_done_in_the_drop_window)
{
	struct qpeer qp;
	lfipc_queue_status st = {.struct_size = sizeof(st)};
	int next = 1, v[2];
	size_t len;

	cr_assert_eq(lfipc_queue_create(qt_r, "rv1", RV_N, 8,
					LFIPC_QUEUE_JOINABLE, &rv_q),
		     0);
	qp_open(qt_r, "rv1", &qp);
	rv_hole_at(&qp, 0);
	cr_assert_eq(put_ints(rv_q, 1, 4, LFIPC_NOWAIT), 3);
	/* no task of ours: -EINVAL outside the window */
	cr_assert_eq(lfipc_queue_task_done(rv_q), -EINVAL);
	lfipc__set_test_hook(rv_td_at_counted);
	cr_assert_eq(lfipc_queue_get(rv_q, v, sizeof(v), &len, LFIPC_NOWAIT),
		     0);
	lfipc__set_test_hook(NULL);
	cr_assert_eq(v[0], 1);
	next = 2;
	cr_assert_eq(lfipc_queue_stat(rv_q, &st), 0);
	cr_expect_eq(rv_td_rc, -EINVAL,
		     "a surplus task_done inside the hole's drop returned %d "
		     "(the hole's count was settled by it)",
		     rv_td_rc);
	cr_expect_eq(st.tasks_unfinished, 3,
		     "unfinished %llu, want 3 (1 got, 2 queued)",
		     (unsigned long long)st.tasks_unfinished);
	cr_assert_eq(get_ints(rv_q, 2, &next), 2);
	cr_assert_eq(lfipc_queue_task_done(rv_q), 0);
	cr_assert_eq(lfipc_queue_task_done(rv_q), 0);
	/* one task (message 3) is still outstanding */
	cr_expect_eq(lfipc_queue_join(rv_q, 1000000), -ETIMEDOUT,
		     "join returned with a task outstanding");
	qp_close(&qp);
	lfipc_queue_close(rv_q);
}

/* The same without any misuse: a task handed over (A got it, B calls
 * task_done for it, as Python allows) while a dropper D is stopped in the
 * window. B's task_done settles D's hole instead of A's task (D's entry is
 * live and shows a task); D's settled += 1 settles the hole again; A's
 * entry still shows its task outstanding, and when A exits (its task was
 * done) its write-off settles it a second time: join reports an abandoned
 * task that was not, and the count is one low for ever. */
static int rv_go[2], rv_got[2], rv_end[2];

static void rv_stop_at_counted(enum lfipc_test_point point, void *arg)
{
	(void)arg;
	if (point == LFIPC_TP_QHOLE_COUNTED)
		raise(SIGSTOP);
}

/* D: a token first (so its entry comes before A's), then on "go" one get
 * that drops the hole at the head, stopping in the window, and finds
 * nothing else. Returns 2 when so. */
static int rv_dropper(void *arg)
{
	int v[2];
	size_t len;
	char c;

	(void)lfipc_queue_task_done(arg); /* -EINVAL: takes our token */
	if (read(rv_go[0], &c, 1) != 1)
		return 90;
	lfipc__set_test_hook(rv_stop_at_counted);
	/* the hole is all there is: dropped, then nothing to get */
	if (lfipc_queue_get(arg, v, sizeof(v), &len, LFIPC_NOWAIT) !=
	    -EAGAIN)
		return 91;
	return 2;
}

/* A: gets one message, hands it over (says so), waits for the end and
 * exits without task_done (B does it). Returns the value. */
static int rv_getter(void *arg)
{
	int v[2];
	size_t len;
	char c = 'g';

	if (lfipc_queue_get(arg, v, sizeof(v), &len, 2000000000) != 0)
		return 80;
	if (write(rv_got[1], &c, 1) != 1 || read(rv_end[0], &c, 1) != 1)
		return 81;
	return v[0];
}

static void rv_wait_stopped(pid_t pid)
{
	int st = 0;

	for (int i = 0; i < 5000; i++) {
		pid_t r = waitpid(pid, &st, WNOHANG | WUNTRACED);

		if (r == pid && WIFSTOPPED(st))
			return;
		cr_assert_eq(r, 0, "the dropper ended (status %#x)", st);
		usleep(1000);
	}
	kill(pid, SIGKILL);
	cr_assert_fail("the dropper never stopped in the window");
}

Test(review23h, handed_over_task_done_in_the_drop_window)
{
	struct qpeer qp;
	lfipc_queue *q;
	lfipc_queue_status st = {.struct_size = sizeof(st)};
	pid_t d, a;
	char c = 'x';
	int next = 3, jrc;
	char s[160];

	cr_assert_eq(pipe(rv_go), 0);
	cr_assert_eq(pipe(rv_got), 0);
	cr_assert_eq(pipe(rv_end), 0);
	cr_assert_eq(lfipc_queue_create(qt_r, "rv2", RV_N, 8,
					LFIPC_QUEUE_JOINABLE, &q),
		     0);
	qp_open(qt_r, "rv2", &qp);
	cr_assert_gt(d = th_fork(rv_dropper, q), 0);
	usleep(100000); /* D takes its token */
	cr_assert_eq(put_ints(q, 1, 2, LFIPC_NOWAIT), 1);
	cr_assert_gt(a = th_fork(rv_getter, q), 0);
	cr_assert_eq(read(rv_got[0], &c, 1), 1);
	rv_hole_at(&qp, 1);
	cr_assert_eq(write(rv_go[1], &c, 1), 1);
	rv_wait_stopped(d);
	/* B (us) does A's handed-over task */
	cr_assert_eq(lfipc_queue_task_done(q), 0);
	kill(d, SIGCONT);
	cr_assert_eq(th_reap(d, QT_REAP_MS), 2, "the dropper's get");
	snprintf(s, sizeof(s), "%llu/%llu %llu/%llu",
		 (unsigned long long)qp_task_got(qp_task(&qp, 1)),
		 (unsigned long long)atomic_load(&qp_task(&qp, 1)->settled),
		 (unsigned long long)qp_task_got(qp_task(&qp, 2)),
		 (unsigned long long)atomic_load(&qp_task(&qp, 2)->settled));
	cr_log_info("entries 1, 2 got/settled: %s", s);
	cr_assert_eq(write(rv_end[1], &c, 1), 1);
	cr_assert_eq(th_reap(a, QT_REAP_MS), 1, "the getter's get");
	cr_assert_geq(lfipc_region_recover(qt_r), 0);
	/* every task was done: nothing abandoned, nothing unfinished */
	jrc = lfipc_queue_join(q, 2000000000);
	cr_expect_eq(jrc, 0, "join %d: a task that was done reported "
			     "abandoned", jrc);
	cr_expect_eq(lfipc_queue_tasks_abandoned(q), 0);
	/* one new task, held: join must wait */
	cr_assert_eq(put_ints(q, 3, 4, LFIPC_NOWAIT), 1);
	cr_assert_eq(get_ints(q, 1, &next), 1);
	cr_assert_eq(lfipc_queue_stat(q, &st), 0);
	cr_expect_eq(st.tasks_unfinished, 1, "unfinished %llu, want 1",
		     (unsigned long long)st.tasks_unfinished);
	cr_expect_eq(lfipc_queue_join(q, 1000000), -ETIMEDOUT,
		     "join returned with a task outstanding");
	qp_close(&qp);
	lfipc_queue_close(q);
	for (int i = 0; i < 2; i++) {
		close(rv_go[i]);
		close(rv_got[i]);
		close(rv_end[i]);
	}
}
