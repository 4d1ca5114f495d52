/* SPDX-License-Identifier: MIT */
/*
 * test_review21b.c - review of get_many's copy-then-free batch (session
 * 21): the producer blocked on a full queue is woken by the frees of a
 * get_many (plain and JoinableQueue), and clear and shutdown racing
 * get_many consumers of a JoinableQueue lose no count.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "../common/qtest.h"
#include "../common/testhelp.h"

TestSuite(review21b, .init = qt_setup, .fini = qt_teardown, .timeout = 120);

static lfipc_queue *rb_q;
static _Atomic int rb_put_done;

static void *rb_put_blocked(void *arg)
{
	uint64_t v = 99;

	(void)arg;
	if (lfipc_queue_put(rb_q, &v, 8, 5000000000))
		return (void *)1;
	atomic_store(&rb_put_done, 1);
	return NULL;
}

/* A queue of 4 is full; a producer blocks in put; one get_many of all 4
 * must wake it (its one look at not_full after the batch's frees). */
static void wake_rounds(uint32_t flags)
{
	for (int r = 0; r < 100; r++) {
		uint64_t b[4];
		size_t lens[4];
		pthread_t t;
		void *rv;
		int i;

		cr_assert_eq(lfipc_queue_create(qt_r, "w", 4, 8, flags, &rb_q),
			     0);
		cr_assert_eq(put_ints(rb_q, 0, 4, LFIPC_NOWAIT), 4);
		atomic_store(&rb_put_done, 0);
		cr_assert_eq(pthread_create(&t, NULL, rb_put_blocked, NULL), 0);
		usleep((useconds_t)(r % 4) * 500);
		cr_assert_eq(lfipc_queue_get_many(rb_q, b, 8, lens, 4,
						  LFIPC_NOWAIT),
			     4);
		for (i = 0; i < 2000 && !atomic_load(&rb_put_done); i++)
			usleep(1000);
		cr_assert(atomic_load(&rb_put_done), "round %d: not woken", r);
		pthread_join(t, &rv);
		cr_assert_null(rv);
		if (flags & LFIPC_QUEUE_JOINABLE) {
			for (i = 0; i < 4; i++)
				cr_assert_eq(lfipc_queue_task_done(rb_q), 0);
			cr_assert_eq(lfipc_queue_get(rb_q, b, 8, lens,
						     LFIPC_NOWAIT),
				     0);
			cr_assert_eq(lfipc_queue_task_done(rb_q), 0);
			cr_assert_eq(lfipc_queue_join(rb_q, LFIPC_NOWAIT), 0);
		}
		lfipc_queue_close(rb_q);
		cr_assert_eq(lfipc_object_remove(qt_r, "w"), 0);
	}
}

Test(review21b, get_many_wakes_a_producer_blocked_on_a_full_queue)
{
	wake_rounds(0);
}

Test(review21b, joinable_get_many_wakes_a_producer_blocked_on_full)
{
	wake_rounds(LFIPC_QUEUE_JOINABLE);
}

#define RB_N 30000

static _Atomic uint64_t rb_got, rb_einval;

static void *rb_consumer(void *arg)
{
	uint64_t rng = (uintptr_t)arg, b[16];
	size_t lens[16];

	for (;;) {
		int n = 1 + (int)(th_rand(&rng) % 16);
		int k = lfipc_queue_get_many(rb_q, b, 8, lens, (size_t)n,
					     100000000);

		if (k == -EPIPE)
			return NULL;
		if (k == -ETIMEDOUT)
			continue;
		if (k <= 0)
			return (void *)1;
		atomic_fetch_add(&rb_got, (uint64_t)k);
		for (int i = 0; i < k; i++)
			if (lfipc_queue_task_done(rb_q))
				atomic_fetch_add(&rb_einval, 1);
	}
}

static void *rb_producer(void *arg)
{
	(void)arg;
	for (uint64_t v = 0; v < RB_N; v++)
		if (lfipc_queue_put(rb_q, &v, 8, 10000000000))
			return (void *)1;
	atomic_store(&rb_put_done, 1);
	return NULL;
}

/* Three get_many consumers (task_done per message), a producer, and
 * clears (clear_every > 0) or none, then a shutdown while they wait:
 * got + discarded == put, task_done never -EINVAL, join finds nothing
 * unfinished. */
static void race(int clear_every)
{
	pthread_t c[3], p;
	int64_t discarded = 0;
	void *rv;

	cr_assert_eq(lfipc_queue_create(qt_r, "c", 64, 8, LFIPC_QUEUE_JOINABLE,
					&rb_q),
		     0);
	atomic_store(&rb_put_done, 0);
	atomic_store(&rb_got, 0);
	for (uintptr_t i = 0; i < 3; i++)
		cr_assert_eq(pthread_create(&c[i], NULL, rb_consumer,
					    (void *)(i + 7)),
			     0);
	cr_assert_eq(pthread_create(&p, NULL, rb_producer, NULL), 0);
	while (clear_every && !atomic_load(&rb_put_done)) {
		int rc = lfipc_queue_clear(rb_q);

		cr_assert_geq(rc, 0, "clear %d", rc);
		discarded += rc;
		usleep((useconds_t)clear_every);
	}
	pthread_join(p, &rv);
	cr_assert_null(rv);
	/* shutdown while the consumers may still be in get_many */
	cr_assert_eq(lfipc_queue_shutdown(rb_q), 0);
	for (int i = 0; i < 3; i++) {
		pthread_join(c[i], &rv);
		cr_assert_null(rv);
	}
	cr_assert_eq(atomic_load(&rb_got) + (uint64_t)discarded,
		     (uint64_t)RB_N, "%llu got, %lld discarded",
		     (unsigned long long)atomic_load(&rb_got),
		     (long long)discarded);
	cr_assert_eq(atomic_load(&rb_einval), 0u);
	cr_assert_eq(lfipc_queue_task_done(rb_q), -EINVAL);
	cr_assert_eq(lfipc_queue_join(rb_q, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_tasks_abandoned(rb_q), 0u);
	lfipc_queue_close(rb_q);
	cr_assert_eq(lfipc_object_remove(qt_r, "c"), 0);
}

Test(review21b, clear_and_shutdown_racing_joinable_get_many_lose_no_count)
{
	race(50);
}

Test(review21b, shutdown_racing_joinable_get_many_loses_no_count)
{
	race(0);
}
