/* SPDX-License-Identifier: MIT */
/*
 * test_queue_release.c - lfipc_queue_release_many(): exact slots, where a
 * run stops, two threads releasing the same run, JoinableQueue counts, one
 * wake-up per run, and a consumer SIGKILLed inside runs;
 * lfipc_queue_peek_many(): order, runs, errors, and a consumer SIGKILLed
 * while it peeks many. Part of the test_queue program (its own suite).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <lfipc/inspect.h>
#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "common/qtest.h"
#include "common/testhelp.h"

TestSuite(queue_release, .init = qt_setup, .fini = qt_teardown,
	  .timeout = 120);

/* ---- release_many -------------------------------------------------------- */

/* Peek n messages of a queue into m[]; their payloads are the ints
 * 0..n-1 put in order. */
static void peek_n(lfipc_queue *q, const void **m, int n)
{
	for (int i = 0; i < n; i++) {
		size_t len;
		int v;

		cr_assert_eq(lfipc_queue_peek(q, &m[i], &len, LFIPC_NOWAIT), 0);
		cr_assert_eq(len, sizeof(int));
		memcpy(&v, m[i], sizeof(v));
		cr_assert_eq(v, i);
	}
}

Test(queue_release, release_many_frees_exactly_the_slots_of_the_run_it_is_given)
{
	lfipc_queue *q;
	const void *m[8];

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 8, 16, 0, &q), 0);
	cr_assert_eq(put_ints(q, 0, 8, LFIPC_NOWAIT), 8);
	peek_n(q, m, 8);
	cr_assert_eq(lfipc_queue_put(q, "x", 1, LFIPC_NOWAIT), -EAGAIN);
	cr_assert_eq(lfipc_queue_release_many(q, m, 5), 5);
	/* exactly five slots came free, the other three stay peeked */
	cr_assert_eq(put_ints(q, 100, 108, LFIPC_NOWAIT), 5);
	cr_assert_eq(lfipc_queue_put(q, "x", 1, LFIPC_NOWAIT), -EAGAIN);
	cr_assert_eq(lfipc_queue_release_many(q, m, 1), -EPROTO, "twice");
	cr_assert_eq(lfipc_queue_release_many(q, m + 5, 3), 3);
	cr_assert_eq(lfipc_queue_qsize(q), 5);
	lfipc_queue_close(q);
}

Test(queue_release, release_many_stops_at_the_first_message_it_may_not_release)
{
	lfipc_queue *q;
	const void *m[4], *bad[3];
	char x = 0;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 4, 16, 0, &q), 0);
	cr_assert_eq(put_ints(q, 0, 4, LFIPC_NOWAIT), 4);
	peek_n(q, m, 4);
	/* checked before anything is released: nothing changes */
	bad[0] = m[0];
	bad[1] = &x;
	cr_assert_eq(lfipc_queue_release_many(q, bad, 2), -EINVAL);
	cr_assert_eq(lfipc_queue_release_many(q, NULL, 2), -EINVAL);
	cr_assert_eq(lfipc_queue_release_many(q, m, 0), -EINVAL);
	cr_assert_eq(lfipc_queue_release_many(NULL, m, 1), -EINVAL);
	/* m[1] released alone: a run m[0], m[1], m[2] stops before it */
	cr_assert_eq(lfipc_queue_release(q, m[1]), 0);
	cr_assert_eq(lfipc_queue_release_many(q, m, 3), 1);
	cr_assert_eq(lfipc_queue_release(q, m[2]), 0, "m[2] left alone");
	/* the same pointer twice: the second stops the run */
	bad[0] = m[3];
	bad[1] = m[3];
	cr_assert_eq(lfipc_queue_release_many(q, bad, 2), 1);
	cr_assert(lfipc_queue_empty(q));
	cr_assert_eq(put_ints(q, 0, 5, LFIPC_NOWAIT), 4, "all four free");
	lfipc_queue_close(q);
}

/* slot_of(): a mask for a power-of-two stride, a division otherwise; and
 * runs longer than the slots release_many finds once (BULK_MAX, 64). */
Test(queue_release, release_many_finds_slots_for_any_stride_and_run_length)
{
	/* 16 + 16 -> stride 64, a power of two; 16 + 150 -> 192, not one */
	static const size_t sizes[] = {16, 150};

	for (size_t z = 0; z < 2; z++) {
		lfipc_queue *q;
		const void *m[4], *bad[1];

		cr_assert_eq(lfipc_queue_create(qt_r, z ? "q1" : "q0", 4,
						sizes[z], 0, &q),
			     0);
		cr_assert_eq(put_ints(q, 0, 4, LFIPC_NOWAIT), 4);
		peek_n(q, m, 4);
		bad[0] = (const char *)m[1] + 1;
		cr_assert_eq(lfipc_queue_release_many(q, bad, 1), -EINVAL);
		if (z) { /* inside the slot, at multiples of 64 */
			bad[0] = (const char *)m[1] + 64;
			cr_assert_eq(lfipc_queue_release_many(q, bad, 1),
				     -EINVAL);
			bad[0] = (const char *)m[1] + 128;
			cr_assert_eq(lfipc_queue_release_many(q, bad, 1),
				     -EINVAL);
		}
		cr_assert_eq(lfipc_queue_release_many(q, m, 4), 4);
		cr_assert(lfipc_queue_empty(q));
		cr_assert_eq(put_ints(q, 0, 5, LFIPC_NOWAIT), 4, "all free");
		lfipc_queue_close(q);
	}
	{
		lfipc_queue *q;
		const void *m[100], *held;

		cr_assert_eq(lfipc_queue_create(qt_r, "q2", 128, 16, 0, &q),
			     0);
		cr_assert_eq(put_ints(q, 0, 100, LFIPC_NOWAIT), 100);
		peek_n(q, m, 100);
		/* past the first 64: the second occurrence of m[80] stops
		 * the run there */
		held = m[90];
		m[90] = m[80];
		cr_assert_eq(lfipc_queue_release_many(q, m, 100), 90);
		cr_assert_eq(lfipc_queue_release_many(q, m + 91, 9), 9);
		/* m[90]'s own slot was in neither run: still ours */
		cr_assert_eq(lfipc_queue_release(q, held), 0);
		cr_assert(lfipc_queue_empty(q));
		cr_assert_eq(put_ints(q, 0, 200, LFIPC_NOWAIT), 128,
			     "all free");
		lfipc_queue_close(q);
	}
}

/* Two threads of one process (one token) release the same run at once,
 * round after round, one from each end, so that they meet on some slot
 * whatever their start-up skew: each slot must be released by exactly
 * one of them (what the two calls return adds up to the run, never
 * more), and a single message given to lfipc_queue_release by both at
 * once is released once. A check-then-store let both release the slot
 * where they met (a hostile review also saw it from the same end, in 8 to
 * 275 of 4,000 rounds); a stale second store could erase a producer's
 * claim. */
#define DR_RUN 250 /* put_ints() puts at most 256 */
#define DR_ROUNDS 2000
static const void *dr_m[2][DR_RUN]; /* in order, and reversed */
static lfipc_queue *dr_q;
static atomic_int dr_round, dr_done;
static int dr_ret[2];

static void *dr_thread(void *arg)
{
	int me = (int)(intptr_t)arg;

	for (int r = 1; r <= DR_ROUNDS; r++) {
		/* a bare spin: both start the round within nanoseconds
		 * (with sched_yield() here the old check-then-store was
		 * caught in 1 run of 3, not 3 of 3) */
		while (atomic_load(&dr_round) != r)
			;
		dr_ret[me] = r % 4 ? lfipc_queue_release_many(dr_q, dr_m[me],
							      DR_RUN)
				   : lfipc_queue_release(dr_q, dr_m[0][0]);
		atomic_fetch_add(&dr_done, 1);
	}
	return NULL;
}

Test(queue_release, two_threads_releasing_the_same_slots_release_each_once)
{
	pthread_t t[2];
	int met = 0;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", DR_RUN, 16, 0, &dr_q), 0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, dr_thread,
					    (void *)(intptr_t)i),
			     0);
	for (int r = 1; r <= DR_ROUNDS; r++) {
		int n = r % 4 ? DR_RUN : 1, got = 0;

		cr_assert_eq(put_ints(dr_q, 0, n, LFIPC_NOWAIT), n);
		peek_n(dr_q, dr_m[0], n);
		for (int i = 0; i < n; i++)
			dr_m[1][i] = dr_m[0][n - 1 - i];
		atomic_store(&dr_done, 0);
		atomic_store(&dr_round, r);
		while (atomic_load(&dr_done) != 2)
			sched_yield();
		for (int i = 0; i < 2; i++) {
			cr_assert(dr_ret[i] == -EPROTO ||
				      (dr_ret[i] >= 0 && dr_ret[i] <= n),
				  "round %d: %d", r, dr_ret[i]);
			got += r % 4 ? (dr_ret[i] > 0 ? dr_ret[i] : 0)
				     : dr_ret[i] == 0;
		}
		cr_assert_eq(got, n, "round %d: %d released of %d (%d, %d)",
			     r, got, n, dr_ret[0], dr_ret[1]);
		met += n > 1 && dr_ret[0] > 0 && dr_ret[1] > 0;
		cr_assert(lfipc_queue_empty(dr_q));
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	/* every slot free exactly once: a full queue's worth goes in */
	cr_assert_eq(put_ints(dr_q, 0, DR_RUN + 1, LFIPC_NOWAIT), DR_RUN);
	lfipc_queue_close(dr_q);
	cr_log_info("rounds where both threads released some: %d", met);
}

Test(queue_release, release_many_counts_its_run_as_got_in_a_joinable_queue)
{
	lfipc_queue *q;
	const void *m[6];

	cr_assert_eq(
	    lfipc_queue_create(qt_r, "q", 8, 16, LFIPC_QUEUE_JOINABLE, &q), 0);
	cr_assert_eq(put_ints(q, 0, 6, LFIPC_NOWAIT), 6);
	peek_n(q, m, 6);
	cr_assert_eq(lfipc_queue_release_many(q, m, 6), 6);
	for (int i = 0; i < 6; i++) {
		cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), -EAGAIN);
		cr_assert_eq(lfipc_queue_task_done(q), 0);
	}
	cr_assert_eq(lfipc_queue_task_done(q), -EINVAL, "none left");
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_tasks_abandoned(q), 0);
	lfipc_queue_close(q);
}

/* One look at not_full and one wake for the run, not one per message: the
 * sleeping producer armed the wait queue's event count (seq, odd); the
 * run's one broadcast disarms it (+1), and the woken producer may arm it
 * once more (+1) before it finds room. A wake per message would not add
 * more now (a broadcast on a disarmed count is skipped), so what this
 * checks is that the run woke the producer through seq exactly once. */
Test(queue_release, release_many_wakes_a_sleeping_producer_once_for_the_run)
{
	lfipc_queue *q;
	struct qpeer qp;
	pthread_t t;
	const void *m[4];
	uint32_t ev;
	void *rc;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 4, 16, 0, &q), 0);
	cr_assert_eq(put_ints(q, 0, 4, LFIPC_NOWAIT), 4);
	peek_n(q, m, 4);
	qp_open(qt_r, "q", &qp);
	cr_assert_eq(pthread_create(&t, NULL, put_forever, q), 0);
	producer_sleeps(&qp);
	ev = atomic_load(&qp.h->not_full.seq);
	cr_assert_eq(ev & 1, 1, "the sleeping producer armed seq");
	cr_assert_eq(lfipc_queue_release_many(q, m, 4), 4);
	pthread_join(t, &rc);
	cr_assert_eq((intptr_t)rc, 0);
	cr_assert(atomic_load(&qp.h->not_full.seq) == ev + 1 ||
		      atomic_load(&qp.h->not_full.seq) == ev + 2,
		  "one wake for four releases: seq %u -> %u", ev,
		  atomic_load(&qp.h->not_full.seq));
	cr_assert_eq(lfipc_queue_qsize(q), 1);
	qp_close(&qp);
	lfipc_queue_close(q);
}

#define RMK_N 4096 /* messages peeked by the child, the queue's capacity */
#define RMK_RUN 512

struct rmkill {
	lfipc_queue *q;
	int ready[2];
};

/* Peek every message, say so, then release them in runs until killed. */
static int peek_all_then_release_in_runs(void *arg)
{
	struct rmkill *k = arg;
	static const void *m[RMK_N];
	size_t len;
	char x = 1;

	for (int i = 0; i < RMK_N; i++)
		if (lfipc_queue_peek(k->q, &m[i], &len, LFIPC_NOWAIT))
			return 1;
	if (th_write_all(k->ready[1], &x, 1))
		return 2;
	for (int i = 0; i < RMK_N; i += RMK_RUN)
		if (lfipc_queue_release_many(k->q, m + i, RMK_RUN) != RMK_RUN)
			return 3;
	pause();
	return 0;
}

/* The messages the kill tests put: RMK_N ints 0..RMK_N-1. */
static int rmk_v[RMK_N];
static const void *rmk_mp[RMK_N];
static size_t rmk_lens[RMK_N];

/* Fill k's queue with rmk_v, in as many put_many calls as it takes
 * (each must move some; what names the failure). */
static void rmk_fill(struct rmkill *k, const char *what)
{
	for (int i = 0; i < RMK_N; i++) {
		rmk_v[i] = i;
		rmk_mp[i] = &rmk_v[i];
		rmk_lens[i] = sizeof(int);
	}
	for (int done = 0; done < RMK_N;) {
		int rc = lfipc_queue_put_many(k->q, rmk_mp + done,
					      rmk_lens + done,
					      (size_t)(RMK_N - done),
					      LFIPC_NOWAIT);

		cr_assert_gt(rc, 0, "%s at %d", what, done);
		done += rc;
	}
}

/* One round: child (a forked consumer) says it is ready, is SIGKILLed up
 * to max_us later and reaped; the region is recovered and the queue
 * drained. seen[b] marks each message b delivered (twice is a failure);
 * *first is the smallest (-1: none). Return: how many were delivered. */
static int rmk_kill_and_drain(struct rmkill *k, int (*child)(void *),
			      int max_us, unsigned char *seen, int *first)
{
	int got = 0, b;
	char x, buf[8];
	size_t len;
	pid_t pid;

	cr_assert_eq(pipe(k->ready), 0);
	pid = th_fork(child, k);
	cr_assert_gt(pid, 0);
	cr_assert_eq(th_read_all(k->ready[0], &x, 1), 0, "child ready");
	usleep((useconds_t)(rand() % max_us));
	kill(pid, SIGKILL);
	cr_assert_eq(th_reap(pid, QT_REAP_MS), 128 + SIGKILL);
	close(k->ready[0]);
	close(k->ready[1]);
	cr_assert_geq(lfipc_region_recover(qt_r), 0);
	memset(seen, 0, RMK_N);
	*first = -1;
	while (lfipc_queue_get(k->q, buf, sizeof(buf), &len, LFIPC_NOWAIT) ==
	       0) {
		cr_assert_eq(len, sizeof(int));
		memcpy(&b, buf, sizeof(b));
		cr_assert(b >= 0 && b < RMK_N);
		cr_assert_eq(seen[b], 0, "message %d delivered twice", b);
		seen[b] = 1;
		got++;
		if (*first < 0 || b < *first)
			*first = b;
	}
	cr_assert(lfipc_queue_empty(k->q));
	return got;
}

/* After a round: every slot is free again (the queue takes exactly its
 * capacity); then empty it. */
static void rmk_all_slots_free(struct rmkill *k)
{
	rmk_fill(k, "slot lost");
	cr_assert_eq(lfipc_queue_put(k->q, "x", 1, LFIPC_NOWAIT), -EAGAIN);
	cr_assert_eq(lfipc_queue_clear(k->q), RMK_N);
}

/* A consumer killed with SIGKILL at random moments while it releases
 * peeked messages in runs: what it released is free, and everything else
 * is delivered again, exactly once. Releases go in order, so the messages
 * that come back are exactly a suffix of what was put, and afterwards the
 * queue takes its full capacity again (no slot lost). */
Test(queue_release, a_consumer_killed_inside_release_many_loses_and_repeats_nothing,
     .timeout = 300)
{
	struct rmkill k;
	static unsigned char seen[RMK_N];
	int rounds = 40 * th_scale(), inside = 0;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", RMK_N, 8, 0, &k.q), 0);
	srand(1234);
	for (int r = 0; r < rounds; r++) {
		int first, got;

		rmk_fill(&k, "put");
		got = rmk_kill_and_drain(&k, peek_all_then_release_in_runs, 100,
					 seen, &first);
		if (got > 0) {
			/* a suffix: first .. RMK_N-1, nothing missing */
			cr_assert_eq(got, RMK_N - first, "round %d", r);
			inside += got % RMK_RUN != 0;
		}
		rmk_all_slots_free(&k);
	}
	cr_log_info("%d of %d kills landed inside a release_many call", inside,
		    rounds);
	lfipc_queue_close(k.q);
}

/* ---- peek_many ------------------------------------------------------------ */

Test(queue_release, peek_many_claims_the_oldest_messages_in_order_up_to_n)
{
	lfipc_queue *q;
	const void *m[8];
	size_t lens[8];
	int v;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 8, 16, 0, &q), 0);
	cr_assert_eq(put_ints(q, 0, 8, LFIPC_NOWAIT), 8);
	cr_assert_eq(lfipc_queue_peek_many(q, m, lens, 5, LFIPC_NOWAIT), 5);
	cr_assert_eq(lfipc_queue_peek_many(q, m + 5, lens + 5, 8,
					   LFIPC_NOWAIT),
		     3, "what is there, not n");
	for (int i = 0; i < 8; i++) {
		cr_assert_eq(lens[i], sizeof(int));
		memcpy(&v, m[i], sizeof(v));
		cr_assert_eq(v, i);
	}
	cr_assert_eq(lfipc_queue_peek_many(q, m, lens, 1, LFIPC_NOWAIT),
		     -EAGAIN);
	/* peeked, so still taken: no room until released */
	cr_assert_eq(lfipc_queue_put(q, "x", 1, LFIPC_NOWAIT), -EAGAIN);
	cr_assert_eq(lfipc_queue_release_many(q, m, 8), 8);
	cr_assert_eq(put_ints(q, 0, 9, LFIPC_NOWAIT), 8);
	lfipc_queue_close(q);
}

Test(queue_release, peek_many_takes_runs_longer_than_a_batch_across_the_ring)
{
	lfipc_queue *q;
	const void *m[300];
	size_t lens[300];
	int v, got = 0;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 256, 16, 0, &q), 0);
	/* start the ring part way round, so runs wrap */
	cr_assert_eq(put_ints(q, 0, 100, LFIPC_NOWAIT), 100);
	cr_assert_eq(lfipc_queue_peek_many(q, m, lens, 100, LFIPC_NOWAIT),
		     100);
	cr_assert_eq(lfipc_queue_release_many(q, m, 100), 100);
	cr_assert_eq(put_ints(q, 0, 256, LFIPC_NOWAIT), 256);
	cr_assert_eq(lfipc_queue_peek_many(q, m, lens, 300, LFIPC_NOWAIT),
		     256);
	for (int i = 0; i < 256; i++) {
		memcpy(&v, m[i], sizeof(v));
		cr_assert_eq(v, i, "message %d", i);
	}
	for (int i = 0; i < 256; i += got) {
		got = lfipc_queue_release_many(q, m + i, 64);
		cr_assert_eq(got, 64);
	}
	cr_assert(lfipc_queue_empty(q));
	lfipc_queue_close(q);
}

Test(queue_release, peek_many_rejects_bad_arguments_and_waits_only_for_the_first)
{
	lfipc_queue *q;
	const void *m[4];
	size_t lens[4];

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 4, 16, 0, &q), 0);
	cr_assert_eq(lfipc_queue_peek_many(NULL, m, lens, 1, LFIPC_NOWAIT),
		     -EINVAL);
	cr_assert_eq(lfipc_queue_peek_many(q, NULL, lens, 1, LFIPC_NOWAIT),
		     -EINVAL);
	cr_assert_eq(lfipc_queue_peek_many(q, m, NULL, 1, LFIPC_NOWAIT),
		     -EINVAL);
	cr_assert_eq(lfipc_queue_peek_many(q, m, lens, 0, LFIPC_NOWAIT),
		     -EINVAL);
	cr_assert_eq(lfipc_queue_peek_many(q, m, lens, 4, 1000000),
		     -ETIMEDOUT);
	cr_assert_eq(put_ints(q, 0, 1, LFIPC_NOWAIT), 1);
	/* one there: taken at once, no waiting for the other three */
	cr_assert_eq(lfipc_queue_peek_many(q, m, lens, 4, LFIPC_FOREVER), 1);
	cr_assert_eq(lfipc_queue_shutdown(q), 0);
	cr_assert_eq(lfipc_queue_peek_many(q, m + 1, lens + 1, 4,
					   LFIPC_FOREVER),
		     -EPIPE);
	cr_assert_eq(lfipc_queue_release(q, m[0]), 0);
	lfipc_queue_close(q);
}

/* Peek every message in calls of PMK_CALL, saying so after the first
 * call, then wait to be killed. */
#define PMK_CALL 100

static int peek_many_until_killed(void *arg)
{
	struct rmkill *k = arg;
	static const void *m[RMK_N];
	static size_t lens[RMK_N];
	char x = 1;
	int done = 0;

	while (done < RMK_N) {
		int rc = lfipc_queue_peek_many(k->q, m + done, lens + done,
					       PMK_CALL, LFIPC_NOWAIT);

		if (rc <= 0)
			return 1;
		if (done == 0 && th_write_all(k->ready[1], &x, 1))
			return 2;
		done += rc;
	}
	pause();
	return 0;
}

/* A consumer killed with SIGKILL at random moments while (or after) it
 * peeks many: every message it had claimed is delivered again after
 * recovery, with the ones it had not reached, each exactly once, and the
 * queue takes its full capacity again. */
Test(queue_release, a_consumer_killed_while_it_peeks_many_leaves_every_message_to_recovery,
     .timeout = 300)
{
	struct rmkill k;
	static unsigned char seen[RMK_N];
	int rounds = 20 * th_scale();

	cr_assert_eq(lfipc_queue_create(qt_r, "q", RMK_N, 8, 0, &k.q), 0);
	srand(4321);
	for (int r = 0; r < rounds; r++) {
		int first;

		rmk_fill(&k, "put");
		cr_assert_eq(rmk_kill_and_drain(&k, peek_many_until_killed, 200,
						seen, &first),
			     RMK_N, "round %d: messages lost", r);
		rmk_all_slots_free(&k);
	}
	lfipc_queue_close(k.q);
}
