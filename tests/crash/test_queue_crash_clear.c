/* SPDX-License-Identifier: MIT */
/*
 * test_queue_crash_clear.c - a JoinableQueue's clearer SIGKILLed at
 * random, again and again, while producers put and consumers get and
 * task_done: afterwards the task count must be exact (the messages still
 * queued, nothing else), and join must return once they are done. Before
 * layout 5 a clearer killed between its move of deq_pos and its count
 * left the positions it had discarded counted nowhere (join without a
 * timeout waited for ever); tests/unit/test_queue_clearkill.c kills it at
 * each step exactly, this at random points of a real workload. Every
 * child is reaped with a deadline.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <lfipc/inspect.h>
#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "common/qtest.h"
#include "common/testhelp.h"

#define CC_MS ((int64_t)1000000)
#define CC_P 2 /* producers */
#define CC_C 2 /* consumers (get, then task_done) */

TestSuite(queue_crash_clear, .init = qt_setup, .fini = qt_teardown,
	  .timeout = 300);

struct cc_ledger {
	_Atomic int stop;
	_Atomic uint64_t puts, gets, dones, clears;
};

static struct cc_ledger *cc;
static lfipc_queue *cc_q;

static int cc_producer(void *arg)
{
	uint64_t v = (uint64_t)(uintptr_t)arg << 32;

	while (!atomic_load(&cc->stop)) {
		int rc = lfipc_queue_put(cc_q, &v, 8, 20 * CC_MS);

		if (rc == 0) {
			atomic_fetch_add(&cc->puts, 1);
			v++;
		} else if (rc != -ETIMEDOUT) {
			return 1;
		}
	}
	return 0;
}

static int cc_consumer(void *arg)
{
	uint64_t v;
	size_t len;

	(void)arg;
	while (!atomic_load(&cc->stop)) {
		int rc = lfipc_queue_get(cc_q, &v, 8, &len, 20 * CC_MS);

		if (rc == -ETIMEDOUT)
			continue;
		if (rc != 0 || len != 8)
			return 2;
		atomic_fetch_add(&cc->gets, 1);
		if (lfipc_queue_task_done(cc_q) != 0)
			return 3;
		atomic_fetch_add(&cc->dones, 1);
	}
	return 0;
}

/* Clear for ever (until killed); -EBUSY is a live clearer's lock (a
 * stopped one's: another kill round's child, never both alive). */
static int cc_clearer(void *arg)
{
	(void)arg;
	for (;;) {
		int64_t n = lfipc_queue_clear(cc_q);

		if (n < 0 && n != -EBUSY)
			return 4;
		atomic_fetch_add(&cc->clears, 1);
	}
}

Test(queue_crash_clear, a_clearer_killed_at_random_leaves_the_task_count_exact)
{
	lfipc_queue_status st = {.struct_size = sizeof(st)};
	int rounds = 150 * th_scale(), landed = 0, more = 0, rc;
	pid_t prod[CC_P], cons[CC_C];
	uint64_t seed = (uint64_t)th_now_ns() | 1, v;
	struct qpeer qp;
	size_t len;

	cc = mmap(NULL, sizeof(*cc), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(cc, MAP_FAILED);
	cr_assert_eq(
	    lfipc_queue_create(qt_r, "cc", 64, 8, LFIPC_QUEUE_JOINABLE, &cc_q),
	    0);
	qp_open(qt_r, "cc", &qp);
	for (int i = 0; i < CC_P; i++)
		cr_assert_gt(
		    prod[i] = th_fork(cc_producer, (void *)(uintptr_t)i), 0);
	for (int i = 0; i < CC_C; i++)
		cr_assert_gt(cons[i] = th_fork(cc_consumer, NULL), 0);
	for (int r = 0; r < rounds; r++) {
		pid_t k = th_fork(cc_clearer, NULL);
		struct timespec ts = {.tv_nsec =
					  (long)(th_rand(&seed) % 3000) * 1000};

		cr_assert_gt(k, 0);
		nanosleep(&ts, NULL);
		kill(k, SIGKILL);
		cr_assert_eq(th_reap(k, QT_REAP_MS), 128 + SIGKILL,
			     "round %d: the clearer failed", r);
		/* killed holding the lock: the window is somewhere in it */
		if (atomic_load(&qp.h->lock) != 0)
			landed++;
	}
	atomic_store(&cc->stop, 1);
	for (int i = 0; i < CC_P; i++)
		cr_assert_eq(th_reap(prod[i], QT_REAP_MS), 0, "producer %d", i);
	for (int i = 0; i < CC_C; i++)
		cr_assert_eq(th_reap(cons[i], QT_REAP_MS), 0, "consumer %d", i);
	/* a supervisor takes a dead clearer's lock over */
	cr_assert_geq(lfipc_region_recover(qt_r), 0);
	cr_assert_eq(atomic_load(&qp.h->lock), 0);
	while (lfipc_queue_get(cc_q, &v, 8, &len, LFIPC_NOWAIT) == 0)
		more++;
	cr_assert_eq(lfipc_queue_stat(cc_q, &st), 0);
	cr_assert_eq(st.tasks_unfinished, (uint64_t)more,
		     "unfinished %llu, got and not done %d (%d kills, %d in "
		     "the lock; puts %llu, gets %llu, cleared %llu)",
		     (unsigned long long)st.tasks_unfinished, more, rounds,
		     landed, (unsigned long long)atomic_load(&cc->puts),
		     (unsigned long long)atomic_load(&cc->gets),
		     (unsigned long long)st.cleared);
	cr_assert_eq(atomic_load(&cc->gets), atomic_load(&cc->dones));
	if (more)
		cr_assert_eq(lfipc_queue_join(cc_q, 20 * CC_MS), -ETIMEDOUT);
	for (int i = 0; i < more; i++)
		cr_assert_eq(lfipc_queue_task_done(cc_q), 0);
	rc = lfipc_queue_join(cc_q, 2000 * CC_MS);
	cr_assert(rc == 0 || rc == -EOWNERDEAD, "join %d", rc);
	cr_assert_gt(st.cleared, 0, "no clear discarded anything");
	cr_log_info("%d kills, %d in the lock, %llu cleared", rounds, landed,
		    (unsigned long long)st.cleared);
	qp_close(&qp);
	lfipc_queue_close(cc_q);
	munmap(cc, sizeof(*cc));
}
