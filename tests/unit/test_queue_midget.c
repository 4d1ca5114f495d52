/* SPDX-License-Identifier: MIT */
/*
 * test_queue_midget.c - a consumer caught between the loads and stores of
 * its get: a clear waits for the single consumer between its claim and its
 * move of deq_pos, and the get fd's check looks past a message consumed
 * under it. Part of the test_queue program (its own suite).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "common/qtest.h"
#include "common/testhelp.h"

TestSuite(queue_midget, .init = qt_setup, .fini = qt_teardown,
	  .timeout = 120);

/* A child that peeks the head of queue "q" (taking the consumer role),
 * tells the parent through the pipe arg and waits to be killed. */
static int peek_and_wait(void *arg)
{
	int *fds = arg;
	lfipc_queue *q;
	const void *m;
	size_t len;

	if (lfipc_queue_open(qt_r, "q", &q) ||
	    lfipc_queue_peek(q, &m, &len, LFIPC_NOWAIT))
		return 1;
	if (write(fds[1], "p", 1) != 1)
		return 2;
	for (;;)
		pause();
}

/*
 * Single-consumer mode: the consumer moves deq_pos with a store after its
 * claim (lib/queue_putget.c, sc_advance()), so a clear must never move
 * deq_pos past a head the consumer holds while deq_pos still points at it.
 * The window (a consumer stopped or killed between its claim and that
 * store) is made here by putting deq_pos back over a message a child holds
 * in a peek: the clear waits for the live consumer, SIGSTOPped there
 * (-EBUSY after its bound of a second, not sooner and not much later),
 * orphans the message of the dead one, and every count stays
 * exact.
 */
Test(queue_midget, a_clear_waits_for_a_single_consumer_between_claim_and_store)
{
	lfipc_queue *q;
	struct qpeer qp;
	int fds[2], next = 0;
	char c, buf[8];
	int64_t t;
	pid_t pid;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 4, 8,
					LFIPC_QUEUE_SINGLE_CONSUMER |
					    LFIPC_QUEUE_JOINABLE,
					&q),
		     0);
	cr_assert_eq(put_ints(q, 0, 4, LFIPC_NOWAIT), 4);
	cr_assert_eq(pipe(fds), 0);
	pid = th_fork(peek_and_wait, fds);
	cr_assert_gt(pid, 0);
	cr_assert_eq(read(fds[0], &c, 1), 1);
	qp_open(qt_r, "q", &qp);
	cr_assert_eq(atomic_load(&qp.h->deq_pos), 1);
	atomic_store(&qp.h->deq_pos, 0); /* claimed, deq_pos not moved yet */
	/* the consumer lives (stopped there): the clear waits for it up to
	 * its bound (CLEAR_WAIT_NS, 1 s: a clear has no timeout), then
	 * gives up, having changed nothing */
	cr_assert_eq(kill(pid, SIGSTOP), 0);
	t = th_now_ns();
	cr_assert_eq(lfipc_queue_clear(q), -EBUSY);
	t = th_now_ns() - t;
	cr_log_info("the clear gave up after %.1f ms", t / 1e6);
	cr_assert_geq(t, 900 * 1000000LL, "it waited for the consumer");
	cr_assert_lt(t, 5000 * 1000000LL, "for its bound, not more");
	cr_assert_eq(atomic_load(&qp.h->deq_pos), 0);
	cr_assert_eq(lfipc_queue_get(q, buf, sizeof(buf), NULL, LFIPC_NOWAIT),
		     -EBUSY, "the child holds the consumer role");
	kill(pid, SIGKILL);
	cr_assert_eq(th_reap(pid, QT_REAP_MS), 128 + SIGKILL);
	/* dead: its message becomes an orphan, the other three are cleared */
	cr_assert_eq(lfipc_queue_clear(q), 3);
	cr_assert_eq(atomic_load(&qp.h->deq_pos), 4);
	cr_assert_eq(lfipc_queue_qsize(q), 1);
	cr_assert_eq(get_ints(q, 1, &next), 1, "the orphan is message 0");
	cr_assert_eq(lfipc_queue_qsize(q), 0);
	cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0);
	cr_assert_eq(put_ints(q, 4, 8, LFIPC_NOWAIT), 4);
	cr_assert_eq(lfipc_queue_clear(q), 4);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0);
	qp_close(&qp);
	close(fds[0]);
	close(fds[1]);
	lfipc_queue_close(q);
}

/*
 * The get fd's readiness check loads deq_pos, then the slot there. When
 * another consumer takes that message in between, the slot is already
 * released for a later lap: the check must look further on, not call the
 * queue empty while it holds messages (an event loop would then sleep with
 * a message in the queue). The stale load is made here by putting deq_pos
 * back over a consumed message.
 */
Test(queue_midget, the_get_fd_looks_past_a_message_consumed_under_its_check)
{
	lfipc_queue *q;
	struct qpeer qp;
	struct pollfd pf;
	char buf[8];
	size_t len;
	int fd;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 4, 8, 0, &q), 0);
	cr_assert_eq(put_ints(q, 0, 2, LFIPC_NOWAIT), 2);
	cr_assert_eq(lfipc_queue_get(q, buf, sizeof(buf), &len, LFIPC_NOWAIT),
		     0);
	qp_open(qt_r, "q", &qp);
	cr_assert_eq(atomic_load(&qp.h->deq_pos), 1);
	atomic_store(&qp.h->deq_pos, 0); /* as loaded before that get */
	fd = lfipc_queue_fd(q, LFIPC_FD_GET);
	cr_assert_geq(fd, 0);
	pf = (struct pollfd){.fd = fd, .events = POLLIN};
	cr_assert_eq(poll(&pf, 1, 0), 1, "one message is in the queue");
	atomic_store(&qp.h->deq_pos, 1);
	cr_assert_eq(lfipc_queue_get(q, buf, sizeof(buf), &len, LFIPC_NOWAIT),
		     0);
	cr_assert_eq(len, sizeof(int));
	cr_assert_eq(*(int *)buf, 1);
	qp_close(&qp);
	lfipc_queue_close(q);
}
