/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "common/testhelp.h"
#include "internal/layout.h"

#define REGION_SIZE ((size_t)64 << 20)
#define REAP_MS 60000

static lfipc_region *r;

static void setup(void)
{
	cr_assert_eq(lfipc_region_create(NULL, REGION_SIZE, 0, &r), 0);
}

static void teardown(void)
{
	lfipc_region_close(r);
	r = NULL;
}

TestSuite(queue, .init = setup, .fini = teardown, .timeout = 120);

Test(queue, messages_come_out_in_the_order_they_went_in)
{
	lfipc_queue *q;
	char buf[32];
	size_t len;

	cr_assert_eq(lfipc_queue_create(r, "q", 4, 32, 0, &q), 0);
	cr_assert_eq(lfipc_queue_capacity(q), 4);
	cr_assert_eq(lfipc_queue_msg_size(q), 32);
	cr_assert(lfipc_queue_empty(q));
	for (int i = 0; i < 4; i++)
		cr_assert_eq(lfipc_queue_put(q, &i, sizeof(i), LFIPC_NOWAIT),
			     0);
	cr_assert(lfipc_queue_full(q));
	cr_assert_eq(lfipc_queue_qsize(q), 4);
	cr_assert_eq(lfipc_queue_put(q, "x", 1, LFIPC_NOWAIT), -EAGAIN);
	for (int i = 0; i < 4; i++) {
		int v;

		cr_assert_eq(
		    lfipc_queue_get(q, buf, sizeof(buf), &len, LFIPC_NOWAIT),
		    0);
		cr_assert_eq(len, sizeof(int));
		memcpy(&v, buf, sizeof(v));
		cr_assert_eq(v, i);
	}
	cr_assert_eq(lfipc_queue_get(q, buf, sizeof(buf), &len, LFIPC_NOWAIT),
		     -EAGAIN);
	/* many laps */
	for (int i = 0; i < 1000; i++) {
		cr_assert_eq(lfipc_queue_put(q, &i, sizeof(i), LFIPC_NOWAIT),
			     0);
		cr_assert_eq(
		    lfipc_queue_get(q, buf, sizeof(buf), &len, LFIPC_NOWAIT),
		    0);
		cr_assert_eq(memcmp(buf, &i, sizeof(i)), 0);
	}
	lfipc_queue_close(q);
}

Test(queue, a_capacity_that_is_not_a_power_of_two_is_exact)
{
	lfipc_queue *q;
	char buf[8];

	cr_assert_eq(lfipc_queue_create(r, "q3", 3, 8, 0, &q), 0);
	for (int k = 0; k < 10; k++) {
		for (int i = 0; i < 3; i++)
			cr_assert_eq(lfipc_queue_put(q, "a", 1, LFIPC_NOWAIT),
				     0);
		cr_assert_eq(lfipc_queue_put(q, "a", 1, LFIPC_NOWAIT), -EAGAIN);
		cr_assert_eq(lfipc_queue_qsize(q), 3);
		for (int i = 0; i < 3; i++)
			cr_assert_eq(
			    lfipc_queue_get(q, buf, 8, NULL, LFIPC_NOWAIT), 0);
	}
	lfipc_queue_close(q);
}

Test(queue, sizes_and_arguments_are_checked)
{
	lfipc_queue *q, *q2;
	char big[64], buf[8];

	cr_assert_eq(lfipc_queue_create(r, "q", 0, 8, 0, &q), -EINVAL);
	cr_assert_eq(lfipc_queue_create(r, "q", 2, 8, 0x80, &q), -EINVAL);
	cr_assert_eq(lfipc_queue_create(r, "q", 2, 8, 0, &q), 0);
	cr_assert_eq(lfipc_queue_create(r, "q", 2, 8, 0, &q2), -EEXIST);
	cr_assert_eq(lfipc_queue_open(r, "nope", &q2), -ENOENT);
	cr_assert_eq(lfipc_queue_open(r, "q", &q2), 0);
	memset(big, 1, sizeof(big));
	cr_assert_eq(lfipc_queue_put(q, big, 9, LFIPC_NOWAIT), -EMSGSIZE);
	cr_assert_eq(lfipc_queue_put(q, big, 8, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_get(q2, buf, 4, NULL, LFIPC_NOWAIT),
		     -EMSGSIZE);
	cr_assert_eq(lfipc_queue_qsize(q2), 1, "nothing lost by -EMSGSIZE");
	cr_assert_eq(lfipc_queue_put(q, NULL, 0, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_get(q2, buf, 8, NULL, LFIPC_NOWAIT), 0);
	size_t len = 99;
	cr_assert_eq(lfipc_queue_get(q2, buf, 8, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(len, 0);
	cr_assert_eq(lfipc_queue_task_done(q), -EINVAL, "not joinable");
	lfipc_queue_close(q);
	lfipc_queue_close(q2);
}

Test(queue, a_timed_put_on_a_full_queue_times_out_after_about_the_timeout)
{
	lfipc_queue *q;
	char buf[8];

	cr_assert_eq(lfipc_queue_create(r, "q", 1, 8, 0, &q), 0);
	cr_assert_eq(lfipc_queue_put(q, "a", 1, LFIPC_NOWAIT), 0);
	int64_t t0 = th_now_ns();
	cr_assert_eq(lfipc_queue_put(q, "a", 1, 50000000), -ETIMEDOUT);
	int64_t dt = th_now_ns() - t0;
	cr_assert_geq(dt, 49000000);
	cr_assert_lt(dt, 2000000000);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_NOWAIT), 0);
	t0 = th_now_ns();
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, 30000000), -ETIMEDOUT);
	cr_assert_geq(th_now_ns() - t0, 29000000);
	lfipc_queue_close(q);
}

Test(queue, bulk_operations_return_partial_counts)
{
	lfipc_queue *q;
	int v[6] = {0, 1, 2, 3, 4, 5};
	const void *m[6];
	size_t lens[6], out_lens[6];
	char bufs[6][8];

	for (int i = 0; i < 6; i++) {
		m[i] = &v[i];
		lens[i] = sizeof(int);
	}
	cr_assert_eq(lfipc_queue_create(r, "q", 4, 8, 0, &q), 0);
	cr_assert_eq(lfipc_queue_put_many(q, m, lens, 6, LFIPC_NOWAIT), 4);
	cr_assert_eq(
	    lfipc_queue_get_many(q, bufs, 8, out_lens, 6, LFIPC_NOWAIT), 4);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(out_lens[i], sizeof(int));
		cr_assert_eq(memcmp(bufs[i], &v[i], sizeof(int)), 0);
	}
	cr_assert_eq(
	    lfipc_queue_get_many(q, bufs, 8, out_lens, 6, LFIPC_NOWAIT),
	    -EAGAIN);
	lfipc_queue_close(q);
}

/* Put ints lo..hi-1 with one put_many; returns its result. */
static int put_ints(lfipc_queue *q, int lo, int hi, int64_t timeout_ns)
{
	int v[256];
	const void *m[256];
	size_t lens[256];

	for (int i = 0; i < hi - lo; i++) {
		v[i] = lo + i;
		m[i] = &v[i];
		lens[i] = sizeof(int);
	}
	return lfipc_queue_put_many(q, m, lens, (size_t)(hi - lo), timeout_ns);
}

/* get_many up to n ints; checks that they are next, next+1, ... */
static int get_ints(lfipc_queue *q, int n, int *next)
{
	int bufs[256][2];
	size_t lens[256];
	int rc = lfipc_queue_get_many(q, bufs, sizeof(bufs[0]), lens, (size_t)n,
				      LFIPC_NOWAIT);

	for (int i = 0; i < rc; i++) {
		cr_assert_eq(lens[i], sizeof(int));
		cr_assert_eq(bufs[i][0], *next, "got %d, want %d", bufs[i][0],
			     *next);
		(*next)++;
	}
	return rc;
}

Test(queue, put_many_puts_as_many_as_there_are_free_slots)
{
	lfipc_queue *q, *q3;
	int next = 0;

	/* capacity 3 of 4 slots: the run stops at the capacity, not at the
	 * slots */
	cr_assert_eq(lfipc_queue_create(r, "q3", 3, 8, 0, &q3), 0);
	cr_assert_eq(lfipc_queue_create(r, "q", 128, 8, 0, &q), 0);
	for (int lap = 0; lap < 5; lap++) {
		next = lap * 10;
		cr_assert_eq(put_ints(q3, lap * 10, lap * 10 + 1, LFIPC_NOWAIT),
			     1);
		cr_assert_eq(
		    put_ints(q3, lap * 10 + 1, lap * 10 + 6, LFIPC_NOWAIT), 2,
		    "k = 2 free slots of 3");
		cr_assert_eq(put_ints(q3, 0, 4, LFIPC_NOWAIT), -EAGAIN);
		cr_assert_eq(lfipc_queue_qsize(q3), 3);
		cr_assert_eq(get_ints(q3, 2, &next), 2);
		cr_assert_eq(get_ints(q3, 8, &next), 1, "fewer than asked");
		cr_assert_eq(get_ints(q3, 8, &next), -EAGAIN);
	}
	/* more than one internal batch, many laps */
	next = 0;
	for (int lap = 0; lap < 20; lap++) {
		cr_assert_eq(
		    put_ints(q, lap * 200, lap * 200 + 100, LFIPC_NOWAIT), 100);
		cr_assert_eq(
		    put_ints(q, lap * 200 + 100, lap * 200 + 200, LFIPC_NOWAIT),
		    28);
		cr_assert(lfipc_queue_full(q));
		cr_assert_eq(get_ints(q, 70, &next), 70);
		cr_assert_eq(get_ints(q, 200, &next), 58);
		next += 72; /* the ones that did not fit */
	}
	lfipc_queue_close(q);
	lfipc_queue_close(q3);
}

Test(queue, order_holds_across_mixed_bulk_and_single_operations)
{
	lfipc_queue *q;
	uint64_t rng = 42;
	int put = 0, got = 0;

	cr_assert_eq(lfipc_queue_create(r, "q", 50, 8, 0, &q), 0);
	for (int step = 0; step < 4000; step++) {
		int n = 1 + (int)(th_rand(&rng) % 40);
		int rc;

		switch (th_rand(&rng) % 4) {
		case 0:
			rc = put_ints(q, put, put + n, LFIPC_NOWAIT);
			if (rc > 0)
				put += rc;
			else
				cr_assert_eq(rc, -EAGAIN);
			break;
		case 1:
			rc =
			    lfipc_queue_put(q, &put, sizeof(put), LFIPC_NOWAIT);
			if (rc == 0)
				put++;
			else
				cr_assert_eq(rc, -EAGAIN);
			break;
		case 2:
			rc = get_ints(q, n, &got);
			if (rc < 0)
				cr_assert_eq(rc, -EAGAIN);
			break;
		default: {
			int v[2];
			size_t len;

			rc = lfipc_queue_get(q, v, sizeof(v), &len,
					     LFIPC_NOWAIT);
			if (rc == 0) {
				cr_assert_eq(v[0], got);
				got++;
			} else {
				cr_assert_eq(rc, -EAGAIN);
			}
		}
		}
		cr_assert_eq(lfipc_queue_qsize(q), (size_t)(put - got));
	}
	cr_assert_gt(got, 10000, "messages flowed");
	lfipc_queue_close(q);
}

Test(queue, put_many_reuses_the_slots_a_clear_discarded)
{
	lfipc_queue *q;
	int next = 100;

	cr_assert_eq(
	    lfipc_queue_create(r, "q", 64, 8, LFIPC_QUEUE_JOINABLE, &q), 0);
	cr_assert_eq(put_ints(q, 0, 64, LFIPC_NOWAIT), 64);
	cr_assert_eq(lfipc_queue_clear(q), 64);
	/* every slot is FULL of the previous lap, behind deq_pos */
	cr_assert_eq(put_ints(q, 100, 200, LFIPC_NOWAIT), 64);
	cr_assert_eq(lfipc_queue_clear(q), 64);
	cr_assert_eq(put_ints(q, 100, 150, LFIPC_NOWAIT), 50);
	cr_assert_eq(get_ints(q, 64, &next), 50);
	for (int i = 0; i < 50; i++)
		cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(lfipc_queue_task_done(q), -EINVAL);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0,
		     "50 got + 128 cleared = 178 put");
	lfipc_queue_close(q);
}

static int reserve_and_die(void *arg)
{
	void *slot;

	return lfipc_queue_reserve(arg, &slot, LFIPC_NOWAIT) ? 1 : 0;
}

Test(queue, get_many_skips_a_dead_producers_hole_and_gets_the_rest)
{
	lfipc_queue *q;
	int next = 0;

	cr_assert_eq(
	    lfipc_queue_create(r, "q", 16, 8, LFIPC_QUEUE_JOINABLE, &q), 0);
	cr_assert_eq(put_ints(q, 0, 3, LFIPC_NOWAIT), 3);
	cr_assert_eq(th_reap(th_fork(reserve_and_die, q), REAP_MS), 0);
	cr_assert_eq(put_ints(q, 3, 7, LFIPC_NOWAIT), 4);
	cr_assert_geq(lfipc_region_recover(r), 1, "the hole was repaired");
	cr_assert_eq(get_ints(q, 16, &next), 7, "the hole is not a message");
	for (int i = 0; i < 7; i++)
		cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0, "hole = done");
	lfipc_queue_close(q);
}

Test(queue, put_many_after_shutdown_fails_and_get_many_drains_then_epipe)
{
	lfipc_queue *q;
	int next = 0;

	cr_assert_eq(lfipc_queue_create(r, "q", 8, 8, 0, &q), 0);
	cr_assert_eq(put_ints(q, 0, 5, LFIPC_NOWAIT), 5);
	cr_assert_eq(lfipc_queue_shutdown(q), 0);
	cr_assert_eq(put_ints(q, 5, 7, LFIPC_NOWAIT), -EPIPE);
	cr_assert_eq(get_ints(q, 3, &next), 3);
	cr_assert_eq(get_ints(q, 3, &next), 2);
	cr_assert_eq(get_ints(q, 3, &next), -EPIPE);
	lfipc_queue_close(q);
}

/* The slot word: the 8 bytes 16 before a slot's payload (struct qslot
 * in lib/queue.c: word, len, data). */
#define SLOT_WORD(payload) ((_Atomic uint64_t *)((char *)(payload)-16))

/*
 * tests/hostile/findings/queue_release_einval.c: release and commit of a
 * slot whose word another process rewrote returned -EINVAL, the code of
 * a pointer that is no slot of the queue. Corrupt shared state is -EPROTO.
 */
Test(queue, release_and_commit_of_a_rewritten_slot_are_eproto)
{
	lfipc_queue *q;
	void *slot;
	const void *msg;
	size_t len;
	uint64_t w;

	cr_assert_eq(lfipc_queue_create(r, "q", 4, 16, 0, &q), 0);
	cr_assert_eq(lfipc_queue_put(q, "hello", 5, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_peek(q, &msg, &len, LFIPC_NOWAIT), 0);
	w = atomic_load(SLOT_WORD(msg));
	atomic_store(SLOT_WORD(msg), UINT64_C(0xdeadbeefdeadbeef));
	cr_assert_eq(lfipc_queue_release(q, msg), -EPROTO);
	atomic_store(SLOT_WORD(msg), w);
	cr_assert_eq(lfipc_queue_release(q, msg), 0);
	cr_assert_eq(lfipc_queue_reserve(q, &slot, LFIPC_NOWAIT), 0);
	w = atomic_load(SLOT_WORD(slot));
	atomic_store(SLOT_WORD(slot), w ^ (UINT64_C(1) << 40));
	cr_assert_eq(lfipc_queue_commit(q, slot, 1), -EPROTO);
	atomic_store(SLOT_WORD(slot), w);
	cr_assert_eq(lfipc_queue_commit(q, slot, 1), 0);
	cr_assert_eq(lfipc_queue_qsize(q), 1);
	lfipc_queue_close(q);
}

Test(queue, zero_copy_reserve_commit_and_peek_release_round_trip)
{
	lfipc_queue *q;
	void *slot;
	const void *msg;
	size_t len;
	char x = 0;

	cr_assert_eq(lfipc_queue_create(r, "q", 2, 16, 0, &q), 0);
	cr_assert_eq(lfipc_queue_reserve(q, &slot, LFIPC_NOWAIT), 0);
	memcpy(slot, "hello", 5);
	cr_assert_eq(lfipc_queue_commit(q, &x, 5), -EINVAL);
	cr_assert_eq(lfipc_queue_commit(q, slot, 17), -EMSGSIZE);
	cr_assert_eq(lfipc_queue_commit(q, slot, 5), 0);
	cr_assert_eq(lfipc_queue_commit(q, slot, 5), -EPROTO, "twice");
	cr_assert_eq(lfipc_queue_peek(q, &msg, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(len, 5);
	cr_assert_eq(memcmp(msg, "hello", 5), 0);
	cr_assert_eq(lfipc_queue_release(q, &x), -EINVAL);
	cr_assert_eq(lfipc_queue_release(q, msg), 0);
	cr_assert_eq(lfipc_queue_release(q, msg), -EPROTO, "twice");
	cr_assert(lfipc_queue_empty(q));
	lfipc_queue_close(q);
}

Test(queue, shutdown_fails_puts_and_lets_gets_drain)
{
	lfipc_queue *q;
	char buf[8];

	cr_assert_eq(lfipc_queue_create(r, "q", 4, 8, 0, &q), 0);
	cr_assert_eq(lfipc_queue_put(q, "a", 1, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_shutdown(q), 0);
	cr_assert_eq(lfipc_queue_put(q, "b", 1, LFIPC_FOREVER), -EPIPE);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_FOREVER), 0);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_FOREVER), -EPIPE);
	lfipc_queue_close(q);
}

static void *shut_later(void *arg)
{
	usleep(50000);
	lfipc_queue_shutdown(arg);
	return NULL;
}

Test(queue, shutdown_wakes_a_blocked_get)
{
	lfipc_queue *q;
	pthread_t t;
	char buf[8];

	cr_assert_eq(lfipc_queue_create(r, "q", 4, 8, 0, &q), 0);
	pthread_create(&t, NULL, shut_later, q);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_FOREVER), -EPIPE);
	pthread_join(t, NULL);
	lfipc_queue_close(q);
}

Test(queue, joinable_counts_task_done_and_clear_as_done)
{
	lfipc_queue *q;
	char buf[8];

	cr_assert_eq(lfipc_queue_create(r, "q", 8, 8, LFIPC_QUEUE_JOINABLE, &q),
		     0);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_task_done(q), -EINVAL);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(lfipc_queue_put(q, "a", 1, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), -EAGAIN);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(lfipc_queue_task_done(q), -EINVAL, "more than got");
	cr_assert_eq(lfipc_queue_join(q, 10000000), -ETIMEDOUT);
	cr_assert_eq(lfipc_queue_clear(q), 3);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_task_done(q), -EINVAL);
	lfipc_queue_close(q);
}

Test(queue, clearing_a_full_large_queue_leaves_it_working_and_empty)
{
	lfipc_queue *q;
	const size_t n = 1000000;
	char buf[8];
	uint64_t v;
	lfipc_region *big;

	cr_assert_eq(lfipc_region_create(NULL, (size_t)96 << 20, 0, &big), 0);
	cr_assert_eq(
	    lfipc_queue_create(big, "big", n, 8, LFIPC_QUEUE_JOINABLE, &q), 0);
	for (uint64_t i = 0; i < n; i++)
		cr_assert_eq(lfipc_queue_put(q, &i, 8, LFIPC_NOWAIT), 0);
	cr_assert(lfipc_queue_full(q));
	cr_assert_eq(lfipc_queue_clear(q), (int64_t)n);
	cr_assert_eq(lfipc_queue_qsize(q), 0);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_NOWAIT), -EAGAIN);
	/* two full laps after the clear: every discarded slot is reusable */
	for (uint64_t k = 0; k < 2; k++) {
		for (uint64_t i = 0; i < n; i++)
			cr_assert_eq(lfipc_queue_put(q, &i, 8, LFIPC_NOWAIT),
				     0);
		cr_assert_eq(lfipc_queue_put(q, &v, 8, LFIPC_NOWAIT), -EAGAIN);
		for (uint64_t i = 0; i < n; i++) {
			cr_assert_eq(
			    lfipc_queue_get(q, buf, 8, NULL, LFIPC_NOWAIT), 0);
			memcpy(&v, buf, 8);
			cr_assert_eq(v, i);
			cr_assert_eq(lfipc_queue_task_done(q), 0);
		}
	}
	cr_assert_eq(lfipc_queue_clear(q), 0);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0);
	lfipc_queue_close(q);
	lfipc_region_close(big);
}

Test(queue, partial_clear_keeps_fifo_for_later_messages)
{
	lfipc_queue *q;
	char buf[8];
	int v;

	cr_assert_eq(lfipc_queue_create(r, "q", 8, 8, 0, &q), 0);
	for (int k = 0; k < 20; k++) {
		for (int i = 0; i < 5; i++)
			cr_assert_eq(lfipc_queue_put(q, &i, 4, LFIPC_NOWAIT),
				     0);
		cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_NOWAIT), 0);
		cr_assert_eq(lfipc_queue_clear(q), 4);
		for (int i = 0; i < 8; i++)
			cr_assert_eq(lfipc_queue_put(q, &i, 4, LFIPC_NOWAIT),
				     0);
		cr_assert_eq(lfipc_queue_put(q, &v, 4, LFIPC_NOWAIT), -EAGAIN);
		for (int i = 0; i < 8; i++) {
			cr_assert_eq(
			    lfipc_queue_get(q, buf, 8, NULL, LFIPC_NOWAIT), 0);
			memcpy(&v, buf, 4);
			cr_assert_eq(v, i);
		}
	}
	lfipc_queue_close(q);
}

/* ---- syscall-free fast path ------------------------------------------ */

/*
 * Sanitizer runtimes make system calls of their own (ASan maps shadow
 * memory and reads /proc, TSan runs its own machinery), so a filter that
 * kills on any system call proves nothing there. In those builds the
 * filter kills only on the calls the library itself can make on a slow
 * path: futex (sleeping and waking), fcntl (the liveness check of a
 * participant) and sched_yield. The normal build keeps the strict check.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TQ_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TQ_SANITIZED 1
#endif
#endif
#ifndef TQ_SANITIZED
#define TQ_SANITIZED 0
#endif

static int no_syscall_filter(void)
{
	/* strict: kill the process on any system call but exit_group/exit */
	struct sock_filter strict[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		     offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_exit_group, 2, 0),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_exit, 1, 0),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	/* sanitized: kill only on the library's own slow-path calls */
	struct sock_filter lib_only[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		     offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_futex, 3, 0),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_fcntl, 2, 0),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_sched_yield, 1, 0),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	};
	struct sock_fprog prog;

	if (TQ_SANITIZED) {
		prog.len = sizeof(lib_only) / sizeof(lib_only[0]);
		prog.filter = lib_only;
	} else {
		prog.len = sizeof(strict) / sizeof(strict[0]);
		prog.filter = strict;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		return -1;
	return 0;
}

static int fast_path_child(void *arg)
{
	lfipc_queue *q = arg;
	char buf[16];
	size_t len;
	int ok = 0;

	/* register this fork child first (that makes system calls) */
	if (lfipc_queue_put(q, "w", 1, LFIPC_NOWAIT) ||
	    lfipc_queue_get(q, buf, 16, &len, LFIPC_NOWAIT))
		return 2;
	if (no_syscall_filter())
		return 3;
	for (int i = 0; i < 1000; i++) {
		ok |= lfipc_queue_put(q, &i, sizeof(i), LFIPC_NOWAIT);
		ok |= lfipc_queue_put(q, &i, sizeof(i), LFIPC_NOWAIT);
		ok |= lfipc_queue_get(q, buf, 16, &len, LFIPC_NOWAIT);
		ok |= lfipc_queue_get(q, buf, 16, &len, LFIPC_NOWAIT);
	}
	return ok ? 4 : 0;
}

/* The same filter, then a get that must sleep: the filter has to catch it. */
static int sleeping_child(void *arg)
{
	lfipc_queue *q = arg;
	char buf[16];
	size_t len;

	if (lfipc_queue_put(q, "w", 1, LFIPC_NOWAIT) ||
	    lfipc_queue_get(q, buf, 16, &len, LFIPC_NOWAIT))
		return 2;
	if (no_syscall_filter())
		return 3;
	lfipc_queue_get(q, buf, 16, &len, 50000000);
	return 0;
}

Test(queue, put_and_get_make_no_system_call_when_nobody_sleeps)
{
	lfipc_queue *q;
	pid_t pid;

	cr_assert_eq(lfipc_queue_create(r, "q", 4, 16, 0, &q), 0);
	pid = th_fork(fast_path_child, q);
	cr_assert_gt(pid, 0);
	cr_assert_eq(th_reap(pid, REAP_MS), 0,
		     "a fast path made a system call (sanitized build: a "
		     "futex, fcntl or sched_yield call): %d",
		     TQ_SANITIZED);
	/* the filter is not vacuous: a get that has to sleep is killed */
	pid = th_fork(sleeping_child, q);
	cr_assert_gt(pid, 0);
	cr_assert_eq(th_reap(pid, REAP_MS), 128 + SIGSYS);
	lfipc_queue_close(q);
}

/* ---- shared memory seen from outside ----------------------------------
 *
 * These tests map the region's file a second time and write into the
 * queue's block directly, as a buggy or hostile peer could. The offsets
 * below are the shared layout documented in lib/queue.c and doc/queue.md.
 */

#define QH_MAGIC 0
#define QH_VERSION 8
#define QH_FLAGS 12
#define QH_CAP 16
#define QH_NSLOTS 24
#define QH_MSGSZ 32
#define QH_STRIDE 40
#define QH_SLOTS_OFF 48
#define QH_ENQ 128
#define QH_DEQ 256
#define QH_NOT_EMPTY 384
#define QH_NOT_FULL 512
#define QH_CLOSED 640
#define QH_ORPHANS 644
#define QH_JOINED 648
#define QH_CLEARER 652
#define QH_DONE 656
#define QH_GOT 664
#define QH_TDONE 672
#define QH_SIZE 768
#define CL_W UINT32_C(0x40000000)
#define CL_R UINT32_C(0x80000000)
/* A token whose participant slot lies past the table: always dead. */
#define DEAD_TOKEN ((UINT32_C(2046) << 19) | 1u)

struct raw {
	uint8_t *base; /* our own second mapping of the region */
	size_t len;
	uint64_t off, size; /* the queue's block */
	uint8_t *q;	    /* base + off */
};

static void raw_open(lfipc_region *rg, const char *name, struct raw *rw)
{
	struct stat st;
	const struct lfipc_hdr *h;
	const struct lfipc_dirent *dir;
	int fd = lfipc_region_fd(rg);

	cr_assert_geq(fd, 0);
	cr_assert_eq(fstat(fd, &st), 0);
	rw->len = (size_t)st.st_size;
	rw->base =
	    mmap(NULL, rw->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(rw->base, MAP_FAILED);
	h = (const struct lfipc_hdr *)rw->base;
	dir = (const struct lfipc_dirent *)(rw->base + h->dir_off);
	for (uint32_t i = 0; i < h->dir_cap; i++) {
		if (dir[i].type == 1 /* queue */ &&
		    dir[i].name_len == strlen(name) &&
		    memcmp(dir[i].name, name, dir[i].name_len) == 0) {
			rw->off = dir[i].off;
			rw->size = dir[i].size;
			rw->q = rw->base + rw->off;
			return;
		}
	}
	cr_assert_fail("queue %s not in the directory", name);
}

static void raw_close(struct raw *rw)
{
	munmap(rw->base, rw->len);
}

static _Atomic uint64_t *raw64(struct raw *rw, uint64_t off)
{
	return (_Atomic uint64_t *)(rw->q + off);
}

static _Atomic uint32_t *raw32(struct raw *rw, uint64_t off)
{
	return (_Atomic uint32_t *)(rw->q + off);
}

static _Atomic uint64_t *raw_slot(struct raw *rw, uint64_t i)
{
	uint64_t stride = *(uint64_t *)(rw->q + QH_STRIDE);

	return (_Atomic uint64_t *)(rw->q + QH_SIZE + i * stride);
}

static uint64_t slotword(uint32_t seq, uint32_t claim)
{
	return (uint64_t)seq | ((uint64_t)claim << 32);
}

Test(queue, clear_discards_a_reserved_head_without_waiting_for_its_commit)
{
	lfipc_queue *q;
	void *slot;
	char buf[8];
	int64_t t0;

	cr_assert_eq(lfipc_queue_create(r, "q", 4, 8, LFIPC_QUEUE_JOINABLE, &q),
		     0);
	cr_assert_eq(lfipc_queue_put(q, "a", 1, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_task_done(q), 0);
	/* the head is reserved by this very thread: waiting would hang */
	cr_assert_eq(lfipc_queue_reserve(q, &slot, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_put(q, "b", 1, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_put(q, "c", 1, LFIPC_NOWAIT), 0);
	t0 = th_now_ns();
	cr_assert_eq(lfipc_queue_clear(q), 3);
	cr_assert_lt(th_now_ns() - t0, 500000000);
	cr_assert_eq(lfipc_queue_qsize(q), 0);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0, "3 counted done");
	memcpy(slot, "x", 1);
	cr_assert_eq(lfipc_queue_commit(q, slot, 1), 0, "discarded commit");
	cr_assert_eq(lfipc_queue_commit(q, slot, 1), -EPROTO, "twice");
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_NOWAIT), -EAGAIN,
		     "the discarded message never comes out");
	/* every slot, the discarded head's too, is reused in order */
	for (int lap = 0; lap < 3; lap++) {
		for (int i = 0; i < 4; i++)
			cr_assert_eq(lfipc_queue_put(q, &i, 1, LFIPC_NOWAIT), 0,
				     "lap %d put %d", lap, i);
		cr_assert_eq(lfipc_queue_put(q, "z", 1, LFIPC_NOWAIT), -EAGAIN);
		for (int i = 0; i < 4; i++) {
			cr_assert_eq(
			    lfipc_queue_get(q, buf, 8, NULL, LFIPC_NOWAIT), 0);
			cr_assert_eq(buf[0], (char)i);
			cr_assert_eq(lfipc_queue_task_done(q), 0);
		}
	}
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0);
	lfipc_queue_close(q);
}

static void *commit_later(void *arg)
{
	void **slot = arg;
	lfipc_queue *q = slot[1];

	usleep(20000);
	slot[2] = (void *)(intptr_t)lfipc_queue_commit(q, slot[0], 1);
	return NULL;
}

Test(queue, a_get_waiting_behind_a_reserved_head_gets_the_message_after_it)
{
	lfipc_queue *q;
	void *arg[3];
	pthread_t t;
	char buf[8];

	cr_assert_eq(lfipc_queue_create(r, "q", 4, 8, 0, &q), 0);
	cr_assert_eq(lfipc_queue_reserve(q, &arg[0], LFIPC_NOWAIT), 0);
	memcpy(arg[0], "r", 1);
	cr_assert_eq(lfipc_queue_put(q, "b", 1, LFIPC_NOWAIT), 0);
	arg[1] = q;
	cr_assert_eq(pthread_create(&t, NULL, commit_later, arg), 0);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, 2000000000), 0);
	cr_assert_eq(buf[0], 'r', "FIFO: the reserved head comes first");
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_NOWAIT), 0);
	cr_assert_eq(buf[0], 'b');
	pthread_join(t, NULL);
	cr_assert_eq((intptr_t)arg[2], 0);
	lfipc_queue_close(q);
}

Test(queue, a_clearer_killed_holding_a_full_head_does_not_wedge_the_queue)
{
	lfipc_queue *q;
	struct raw rw;
	char buf[8];

	cr_assert_eq(lfipc_queue_create(r, "q", 4, 8, LFIPC_QUEUE_JOINABLE, &q),
		     0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(lfipc_queue_put(q, &i, 1, LFIPC_NOWAIT), 0);
	/* a clearer died right after taking the head: CLR(0), lock held */
	raw_open(r, "q", &rw);
	atomic_store(raw_slot(&rw, 0), slotword(1, CL_W | CL_R));
	atomic_store(raw32(&rw, QH_CLEARER), DEAD_TOKEN);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_NOWAIT), -EAGAIN,
		     "the held head is in flight");
	/* a waiting get notices the dead clearer at its slice end; the
	 * message it was discarding is dropped, the rest come out */
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, 2000000000), 0);
	cr_assert_eq(buf[0], 1);
	cr_assert_eq(atomic_load(raw32(&rw, QH_CLEARER)), 0);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_NOWAIT), 0);
	cr_assert_eq(buf[0], 2);
	cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0, "exact count");
	raw_close(&rw);
	lfipc_queue_close(q);
}

Test(queue, a_clear_takes_over_from_a_clearer_killed_holding_a_written_head)
{
	lfipc_queue *q;
	struct raw rw;
	void *slot;
	char buf[8];
	uint64_t w;

	cr_assert_eq(lfipc_queue_create(r, "q", 4, 8, 0, &q), 0);
	cr_assert_eq(lfipc_queue_reserve(q, &slot, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_put(q, "b", 1, LFIPC_NOWAIT), 0);
	/* a clearer died right after marking our reservation DISCARD */
	raw_open(r, "q", &rw);
	w = atomic_load(raw_slot(&rw, 0));
	cr_assert_eq((uint32_t)(w >> 32) & (CL_W | CL_R), CL_W, "WRITING");
	atomic_store(raw_slot(&rw, 0), w | ((uint64_t)CL_R << 32));
	atomic_store(raw32(&rw, QH_CLEARER), DEAD_TOKEN);
	cr_assert_eq(lfipc_queue_clear(q), 2);
	cr_assert_eq(atomic_load(raw32(&rw, QH_CLEARER)), 0);
	cr_assert_eq(lfipc_queue_commit(q, slot, 1), 0);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_NOWAIT), -EAGAIN);
	for (int i = 0; i < 8; i++) {
		cr_assert_eq(lfipc_queue_put(q, &i, 1, LFIPC_NOWAIT), 0);
		cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_NOWAIT), 0);
		cr_assert_eq(buf[0], (char)i);
	}
	raw_close(&rw);
	lfipc_queue_close(q);
}

Test(queue, a_corrupt_message_length_is_eproto_and_counts_as_done)
{
	lfipc_queue *q;
	struct raw rw;
	char buf[8];
	const void *m;
	size_t len;

	cr_assert_eq(lfipc_queue_create(r, "q", 4, 8, LFIPC_QUEUE_JOINABLE, &q),
		     0);
	cr_assert_eq(lfipc_queue_put(q, "abc", 3, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_put(q, "def", 3, LFIPC_NOWAIT), 0);
	raw_open(r, "q", &rw);
	*(uint64_t *)((uint8_t *)raw_slot(&rw, 0) + 8) = 9;
	*(uint64_t *)((uint8_t *)raw_slot(&rw, 1) + 8) = UINT64_MAX;
	cr_assert_eq(lfipc_queue_get(q, buf, 8, &len, LFIPC_NOWAIT), -EPROTO);
	cr_assert_eq(lfipc_queue_peek(q, &m, &len, LFIPC_NOWAIT), -EPROTO);
	cr_assert_eq(lfipc_queue_qsize(q), 0);
	cr_assert_eq(lfipc_queue_task_done(q), -EINVAL, "nothing was got");
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0, "dropped = done");
	cr_assert_eq(lfipc_queue_put(q, "ok", 2, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(len, 2);
	raw_close(&rw);
	lfipc_queue_close(q);
}

Test(queue, get_many_drops_a_corrupt_message_and_closes_up_over_it)
{
	lfipc_queue *q;
	struct raw rw;
	int bufs[8][2];
	size_t lens[8];

	cr_assert_eq(lfipc_queue_create(r, "q", 8, 8, LFIPC_QUEUE_JOINABLE, &q),
		     0);
	cr_assert_eq(put_ints(q, 0, 4, LFIPC_NOWAIT), 4);
	raw_open(r, "q", &rw);
	*(uint64_t *)((uint8_t *)raw_slot(&rw, 1) + 8) = 99;
	cr_assert_eq(lfipc_queue_get_many(q, bufs, 8, lens, 8, LFIPC_NOWAIT),
		     3);
	cr_assert_eq(bufs[0][0], 0);
	cr_assert_eq(bufs[1][0], 2);
	cr_assert_eq(bufs[2][0], 3);
	cr_assert_eq(put_ints(q, 4, 5, LFIPC_NOWAIT), 1);
	*(uint64_t *)((uint8_t *)raw_slot(&rw, 4) + 8) = 9;
	cr_assert_eq(lfipc_queue_get_many(q, bufs, 8, lens, 8, LFIPC_NOWAIT),
		     -EPROTO, "only a corrupt message was there");
	for (int i = 0; i < 3; i++)
		cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(lfipc_queue_task_done(q), -EINVAL);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0, "3 got + 2 dropped");
	raw_close(&rw);
	lfipc_queue_close(q);
}

/* A put_many killed after claiming a run (positions 2..5) but before moving
 * enq_pos past it (enq_pos is 3: the run's first claim moved it by one). */
Test(queue, a_put_many_killed_before_moving_enq_pos_leaves_only_holes)
{
	lfipc_queue *q;
	struct raw rw;
	int next = 0;

	cr_assert_eq(lfipc_queue_create(r, "q", 8, 8, LFIPC_QUEUE_JOINABLE, &q),
		     0);
	cr_assert_eq(put_ints(q, 0, 2, LFIPC_NOWAIT), 2);
	raw_open(r, "q", &rw);
	for (uint32_t p = 2; p < 6; p++)
		atomic_store(raw_slot(&rw, p), slotword(p, DEAD_TOKEN | CL_W));
	atomic_store(raw64(&rw, QH_ENQ), 3);
	cr_assert_eq(lfipc_region_recover(r), 4, "four holes");
	cr_assert_eq(get_ints(q, 8, &next), 2, "the holes are skipped");
	cr_assert_eq(atomic_load(raw64(&rw, QH_DEQ)), 6);
	/* dropping the holes moved enq_pos past them too, so join still
	 * counts the two messages got and not yet done */
	cr_assert_eq(atomic_load(raw64(&rw, QH_ENQ)), 6);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), -EAGAIN);
	cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), -EAGAIN);
	cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_qsize(q), 0);
	cr_assert_eq(get_ints(q, 8, &next), -EAGAIN);
	cr_assert_eq(lfipc_queue_clear(q), 0);
	/* producers help enq_pos past the holes; the queue is whole again */
	cr_assert_eq(put_ints(q, 2, 12, LFIPC_NOWAIT), 8);
	cr_assert(lfipc_queue_full(q));
	cr_assert_eq(get_ints(q, 8, &next), 8);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0,
		     "10 got + 4 holes = 14 positions");
	raw_close(&rw);
	lfipc_queue_close(q);
}

/* A get_many killed holding a run (positions 0..2 READING, deq_pos moved
 * past the first only). */
Test(queue, a_get_many_killed_holding_a_run_hands_it_to_another_consumer)
{
	lfipc_queue *q;
	struct raw rw;
	int next = 0;

	cr_assert_eq(lfipc_queue_create(r, "q", 8, 8, LFIPC_QUEUE_JOINABLE, &q),
		     0);
	cr_assert_eq(put_ints(q, 0, 5, LFIPC_NOWAIT), 5);
	raw_open(r, "q", &rw);
	for (uint32_t p = 0; p < 3; p++)
		atomic_store(raw_slot(&rw, p),
			     slotword(p + 1, DEAD_TOKEN | CL_R));
	atomic_store(raw64(&rw, QH_DEQ), 1);
	cr_assert_eq(lfipc_region_recover(r), 3, "three orphans");
	/* orphans lie behind deq_pos, as clear's bound assumes */
	cr_assert_eq(atomic_load(raw64(&rw, QH_DEQ)), 3);
	cr_assert_eq(get_ints(q, 8, &next), 5, "orphans first, then the rest");
	cr_assert_eq(atomic_load(raw32(&rw, QH_ORPHANS)), 0);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0);
	cr_assert_eq(put_ints(q, 5, 13, LFIPC_NOWAIT), 8);
	cr_assert_eq(get_ints(q, 8, &next), 8);
	raw_close(&rw);
	lfipc_queue_close(q);
}

Test(queue, open_refuses_a_queue_header_that_makes_no_sense)
{
	static const struct {
		uint64_t off, val;
		int width;
	} bad[] = {
	    {QH_MAGIC, 0, 8},
	    {QH_VERSION, 2, 4},
	    {QH_FLAGS, 0x80, 4},
	    {QH_CAP, 0, 8},
	    {QH_CAP, 9, 8}, /* above nslots */
	    {QH_NSLOTS, 0, 8},
	    {QH_NSLOTS, 1, 8},
	    {QH_NSLOTS, 12, 8}, /* not a power of two */
	    {QH_NSLOTS, 16, 8}, /* more than the block holds */
	    {QH_NSLOTS, UINT64_C(1) << 62, 8},
	    {QH_MSGSZ, 49, 8}, /* no longer fits the stride */
	    {QH_MSGSZ, UINT64_MAX, 8},
	    {QH_STRIDE, 0, 8},
	    {QH_STRIDE, 65, 8},
	    {QH_STRIDE, 128, 8}, /* 8 slots no longer fit */
	    {QH_STRIDE, UINT64_MAX - 63, 8},
	    {QH_SLOTS_OFF, 0, 8},
	    {QH_SLOTS_OFF, UINT64_MAX, 8},
	};
	lfipc_queue *q, *q2;
	struct raw rw;
	uint8_t save[QH_SIZE];

	cr_assert_eq(lfipc_queue_create(r, "q", 8, 48, 0, &q), 0);
	raw_open(r, "q", &rw);
	memcpy(save, rw.q, QH_SIZE);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (bad[i].width == 8)
			memcpy(rw.q + bad[i].off, &bad[i].val, 8);
		else
			*(uint32_t *)(rw.q + bad[i].off) = (uint32_t)bad[i].val;
		q2 = NULL;
		cr_assert_eq(lfipc_queue_open(r, "q", &q2), -EPROTO,
			     "field at %llu = %llu",
			     (unsigned long long)bad[i].off,
			     (unsigned long long)bad[i].val);
		cr_assert_null(q2);
		memcpy(rw.q, save, QH_SIZE);
		cr_assert_eq(lfipc_queue_open(r, "q", &q2), 0);
		lfipc_queue_close(q2);
	}
	/* a handle keeps the geometry it validated at open */
	*(uint64_t *)(rw.q + QH_NSLOTS) = UINT64_C(1) << 40;
	cr_assert_eq(lfipc_queue_put(q, "a", 1, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_capacity(q), 8);
	memcpy(rw.q, save, QH_SIZE);
	raw_close(&rw);
	lfipc_queue_close(q);
}

/*
 * Random garbage in every shared word of a queue (geometry, positions,
 * counters, event words, slot words, lengths), followed by every
 * operation: errors are allowed; a crash, a hang, or an access outside the
 * queue's block is not. The pages of the region past the block are made
 * inaccessible in the library's own mapping, so a stray access faults
 * (and ASan checks the process's own memory).
 */
static uint64_t near(uint64_t v, uint64_t n, uint64_t *seed)
{
	uint64_t x = th_rand(seed);

	switch (x % 7) {
	case 0:
		return th_rand(seed);
	case 1:
		return v + (x >> 8) % 40 - 20;
	case 2:
		return v + n * ((x >> 8) % 5) - 2 * n;
	case 3:
		return v + (UINT64_C(1) << 32);
	case 4:
		return UINT64_MAX - (x >> 8) % 64;
	case 5:
		return (UINT64_C(1) << 63) + (x >> 8) % 64;
	default:
		return (x >> 8) % 64;
	}
}

static uint32_t some_token(uint32_t self, uint64_t *seed)
{
	switch (th_rand(seed) % 4) {
	case 0:
		return 0;
	case 1:
		return DEAD_TOKEN;
	case 2:
		return self;
	default:
		return (uint32_t)th_rand(seed) & 0x3fffffff;
	}
}

static bool in_block(const void *p, const uint8_t *lfbase, const struct raw *rw)
{
	const uint8_t *b = (const uint8_t *)p;

	return b >= lfbase + rw->off && b < lfbase + rw->off + rw->size;
}

Test(queue, random_corruption_of_shared_words_never_crashes_or_hangs,
     .timeout = 240)
{
	lfipc_region *rg;
	lfipc_queue *qh;
	struct raw rw;
	uint8_t *snap, *lfbase, *gstart, *gend;
	void *slot;
	char buf[1024], bufs[4][1024];
	size_t lens[4], len;
	uint64_t seed = 0x0badc0de, n = 8;
	uint32_t self;
	int iters = 3000 * th_scale();
	long page = sysconf(_SC_PAGESIZE);

	cr_assert_eq(lfipc_region_create(NULL, (size_t)1 << 20, 0, &rg), 0);
	cr_assert_eq(
	    lfipc_queue_create(rg, "q", 5, 48, LFIPC_QUEUE_JOINABLE, &qh), 0);
	raw_open(rg, "q", &rw);
	/* where the library mapped the block: slot 0's payload */
	cr_assert_eq(lfipc_queue_reserve(qh, &slot, LFIPC_NOWAIT), 0);
	lfbase = (uint8_t *)slot - (rw.off + QH_SIZE + 16);
	self = (uint32_t)(atomic_load(raw_slot(&rw, 0)) >> 32) & 0x3fffffff;
	cr_assert_neq(self, 0);
	cr_assert_eq(lfipc_queue_commit(qh, slot, 3), 0);
	/* a snapshot with messages in it and the positions past lap 0 */
	for (int i = 0; i < 9; i++) {
		cr_assert_eq(lfipc_queue_put(qh, &i, 4, LFIPC_NOWAIT), 0,
			     "put %d", i);
		if (i % 3 != 2)
			cr_assert_eq(lfipc_queue_get(qh, buf, sizeof(buf), &len,
						     LFIPC_NOWAIT),
				     0);
	}
	snap = malloc(rw.size);
	cr_assert_not_null(snap);
	memcpy(snap, rw.q, rw.size);
	/* guard: everything after the block's last page */
	gstart =
	    (uint8_t *)(((uintptr_t)(lfbase + rw.off + rw.size) + page - 1) &
			~(uintptr_t)(page - 1));
	gend = lfbase + rw.len;
	if (gend > gstart)
		cr_assert_eq(
		    mprotect(gstart, (size_t)(gend - gstart), PROT_NONE), 0);

	for (int it = 0; it < iters; it++) {
		int kind = (int)(th_rand(&seed) % 7);
		lfipc_queue *q2 = NULL, *q;
		int64_t t0, c;
		const void *m;
		const void *msgs[3] = {"x", "yy", "zzz"};
		size_t mlens[3] = {1, 2, 3};
		int rc;

		memcpy(rw.q, snap, rw.size);
		switch (kind) {
		case 0: /* random bytes anywhere in the block */
			for (int k = 0; k < 8; k++)
				rw.q[th_rand(&seed) % rw.size] =
				    (uint8_t)th_rand(&seed);
			break;
		case 1: /* positions */
			if (th_rand(&seed) % 2)
				atomic_store(
				    raw64(&rw, QH_ENQ),
				    near(atomic_load(raw64(&rw, QH_ENQ)), n,
					 &seed));
			if (th_rand(&seed) % 2)
				atomic_store(
				    raw64(&rw, QH_DEQ),
				    near(atomic_load(raw64(&rw, QH_DEQ)), n,
					 &seed));
			break;
		case 2: /* slot words: garbage, or plausible states with
			 * live, dead or made-up claimants */
			for (int k = 0; k < 3; k++) {
				_Atomic uint64_t *sw =
				    raw_slot(&rw, th_rand(&seed) % n);
				uint32_t seq = (uint32_t)near(
				    (uint32_t)atomic_load(sw), n, &seed);
				uint32_t cl =
				    ((uint32_t)th_rand(&seed) & (CL_W | CL_R)) |
				    some_token(self, &seed);

				atomic_store(sw, th_rand(&seed) % 4
						     ? slotword(seq, cl)
						     : th_rand(&seed));
			}
			break;
		case 3: /* message lengths */
			for (int k = 0; k < 3; k++)
				*(uint64_t *)((uint8_t *)raw_slot(
						  &rw, th_rand(&seed) % n) +
					      8) = near(3, 48, &seed);
			break;
		case 4: /* counters and event words (never our own token in
			 * the clear lock: that would be a live clearer) */
			atomic_store(raw32(&rw, QH_ORPHANS),
				     (uint32_t)near(0, n, &seed));
			atomic_store(raw32(&rw, QH_CLOSED),
				     (uint32_t)(th_rand(&seed) % 3 == 0));
			atomic_store(raw32(&rw, QH_CLEARER),
				     th_rand(&seed) % 2
					 ? DEAD_TOKEN
					 : (uint32_t)th_rand(&seed));
			atomic_store(raw64(&rw, QH_DONE), near(3, n, &seed));
			atomic_store(raw64(&rw, QH_GOT), near(6, n, &seed));
			atomic_store(raw64(&rw, QH_TDONE), near(0, n, &seed));
			atomic_store(raw32(&rw, QH_NOT_EMPTY),
				     (uint32_t)th_rand(&seed));
			atomic_store(raw32(&rw, QH_NOT_FULL),
				     (uint32_t)th_rand(&seed));
			atomic_store(raw32(&rw, QH_JOINED),
				     (uint32_t)th_rand(&seed));
			break;
		case 5: /* geometry */
			for (int k = 0; k < 2; k++) {
				static const uint64_t f[] = {
				    QH_CAP, QH_NSLOTS, QH_MSGSZ, QH_STRIDE,
				    QH_SLOTS_OFF};
				uint64_t o = f[th_rand(&seed) % 5];

				*(uint64_t *)(rw.q + o) =
				    near(*(uint64_t *)(rw.q + o), 64, &seed);
			}
			if (th_rand(&seed) % 4 == 0)
				*(uint32_t *)(rw.q + QH_FLAGS) =
				    (uint32_t)th_rand(&seed);
			break;
		default: /* everything at once */
			for (uint64_t k = QH_ENQ; k + 8 <= rw.size; k += 8)
				if (th_rand(&seed) % 3 == 0)
					*(uint64_t *)(rw.q + k) =
					    th_rand(&seed);
			break;
		}

		t0 = th_now_ns();
		rc = lfipc_queue_open(rg, "q", &q2);
		cr_assert(rc == 0 || rc == -EPROTO, "open %d", rc);
		q = rc == 0 ? q2 : qh;
		cr_assert_leq(lfipc_queue_msg_size(q), sizeof(buf));

		rc = lfipc_queue_put(q, "abc", 3, LFIPC_NOWAIT);
		cr_assert(rc == 0 || rc == -EAGAIN || rc == -EPROTO ||
			      rc == -EPIPE || rc == -EMSGSIZE,
			  "it %d put %d", it, rc);
		rc = lfipc_queue_get(q, buf, sizeof(buf), &len, LFIPC_NOWAIT);
		cr_assert(rc == 0 || rc == -EAGAIN || rc == -EPROTO ||
			      rc == -EPIPE,
			  "it %d get %d", it, rc);
		if (rc == 0)
			cr_assert_leq(len, lfipc_queue_msg_size(q));
		rc = lfipc_queue_peek(q, &m, &len, LFIPC_NOWAIT);
		cr_assert(rc == 0 || rc == -EAGAIN || rc == -EPROTO ||
			      rc == -EPIPE,
			  "it %d peek %d", it, rc);
		if (rc == 0) {
			cr_assert(in_block(m, lfbase, &rw));
			cr_assert_leq(len, lfipc_queue_msg_size(q));
			cr_assert_eq(th_sum(m, len), th_sum(m, len));
			cr_assert_eq(lfipc_queue_release(q, m), 0);
		}
		rc = lfipc_queue_reserve(q, &slot, LFIPC_NOWAIT);
		cr_assert(rc == 0 || rc == -EAGAIN || rc == -EPROTO ||
			      rc == -EPIPE,
			  "it %d reserve %d", it, rc);
		if (rc == 0) {
			cr_assert(in_block(slot, lfbase, &rw));
			memset(slot, 0x5a, lfipc_queue_msg_size(q));
			rc = lfipc_queue_commit(q, slot, 0);
			cr_assert(rc == 0 || rc == -EPROTO, "commit %d", rc);
		}
		rc = lfipc_queue_put_many(q, msgs, mlens, 3, LFIPC_NOWAIT);
		cr_assert(rc > 0 || rc == -EAGAIN || rc == -EPROTO ||
			      rc == -EPIPE || rc == -EMSGSIZE,
			  "it %d put_many %d", it, rc);
		rc = lfipc_queue_get_many(q, bufs, sizeof(bufs[0]), lens, 4,
					  LFIPC_NOWAIT);
		cr_assert(rc > 0 || rc == -EAGAIN || rc == -EPROTO ||
			      rc == -EPIPE,
			  "it %d get_many %d", it, rc);
		for (int k = 0; k < rc; k++)
			cr_assert_leq(lens[k], lfipc_queue_msg_size(q));
		c = lfipc_queue_clear(q);
		cr_assert((c >= 0 && c <= (int64_t)n + 1) || c == -EPROTO,
			  "it %d clear %lld", it, (long long)c);
		cr_assert_leq(lfipc_queue_qsize(q), lfipc_queue_capacity(q));
		(void)lfipc_queue_empty(q);
		(void)lfipc_queue_full(q);
		rc = lfipc_queue_task_done(q);
		cr_assert(rc == 0 || rc == -EINVAL);
		rc = lfipc_queue_join(q, LFIPC_NOWAIT);
		cr_assert(rc == 0 || rc == -EAGAIN);
		if (it % 8 == 0) {
			/* the sleeping paths, with their dead-peer scans */
			rc =
			    lfipc_queue_get(q, buf, sizeof(buf), &len, 2000000);
			cr_assert(rc == 0 || rc == -ETIMEDOUT ||
				      rc == -EPROTO || rc == -EPIPE,
				  "it %d timed get %d", it, rc);
			rc = lfipc_queue_join(q, 1000000);
			cr_assert(rc == 0 || rc == -ETIMEDOUT);
			rc = lfipc_region_recover(rg);
			cr_assert(rc >= 0 || rc == -EPROTO, "recover %d", rc);
		}
		cr_assert_lt(th_now_ns() - t0, 1000000000,
			     "iteration %d kind %d took too long", it, kind);
		lfipc_queue_close(q2);
	}
	if (gend > gstart)
		cr_assert_eq(mprotect(gstart, (size_t)(gend - gstart),
				      PROT_READ | PROT_WRITE),
			     0);
	free(snap);
	raw_close(&rw);
	lfipc_queue_close(qh);
	lfipc_region_close(rg);
}

/* ---- stress: producers x consumers, processes and threads ------------ */

struct msg {
	uint32_t pid, seq;
	uint64_t sum;
	char pad[40];
};

struct shared {
	_Atomic uint64_t received;
	_Atomic uint64_t cleared;
	_Atomic uint32_t stop;
	_Atomic uint32_t bad;
	uint32_t last[64][8]; /* per consumer, per producer: last seq + 1 */
	_Atomic uint8_t seen[8][1 << 17];
};

static struct shared *sh;
static lfipc_queue *sq;
static int nper;
static bool zero_copy; /* odd messages go through reserve/commit */
static bool joinable;  /* consumers call task_done */
static bool bulk;      /* put_many / get_many in bursts of 1..32 */

static uint64_t msum(const struct msg *m)
{
	return th_sum(m->pad, sizeof(m->pad)) ^ ((uint64_t)m->pid << 40) ^
	       m->seq;
}

#define BURST 32

static int bulk_producer(uint32_t id)
{
	struct msg m[BURST];
	const void *mp[BURST];
	size_t lens[BURST];
	uint64_t rng = id + 1;

	for (int i = 0; i < nper;) {
		int b = 1 + (int)(th_rand(&rng) % BURST), rc;

		if (b > nper - i)
			b = nper - i;
		for (int j = 0; j < b; j++) {
			m[j].pid = id;
			m[j].seq = (uint32_t)(i + j);
			th_fill(m[j].pad, sizeof(m[j].pad),
				(uint64_t)id << 32 | (uint64_t)(i + j));
			m[j].sum = msum(&m[j]);
			mp[j] = &m[j];
			lens[j] = sizeof(m[j]);
		}
		rc = lfipc_queue_put_many(sq, mp, lens, (size_t)b,
					  LFIPC_FOREVER);
		if (rc < 1 || rc > b)
			return 1;
		i += rc;
	}
	return 0;
}

static int producer(void *arg)
{
	struct msg m;
	uint32_t id = (uint32_t)(uintptr_t)arg;

	if (bulk)
		return bulk_producer(id);
	for (int i = 0; i < nper; i++) {
		m.pid = id;
		m.seq = (uint32_t)i;
		th_fill(m.pad, sizeof(m.pad), (uint64_t)id << 32 | (uint64_t)i);
		m.sum = msum(&m);
		if (zero_copy && (i & 1)) {
			void *slot;

			if (lfipc_queue_reserve(sq, &slot, LFIPC_FOREVER))
				return 1;
			memcpy(slot, &m, sizeof(m));
			if (lfipc_queue_commit(sq, slot, sizeof(m)))
				return 1;
			continue;
		}
		if (lfipc_queue_put(sq, &m, sizeof(m), LFIPC_FOREVER))
			return 1;
	}
	return 0;
}

/* One message got by consumer cid: checksum, per-producer order, seen
 * exactly once. */
static void consumed(uint32_t cid, const struct msg *m, size_t len)
{
	if (joinable && lfipc_queue_task_done(sq) != 0)
		atomic_fetch_add(&sh->bad, 1);
	if (len != sizeof(*m) || m->pid >= 8 || m->seq >= (uint32_t)nper ||
	    m->sum != msum(m) || m->seq < sh->last[cid][m->pid] ||
	    atomic_fetch_add(&sh->seen[m->pid][m->seq], 1) != 0) {
		atomic_fetch_add(&sh->bad, 1);
		return;
	}
	sh->last[cid][m->pid] = m->seq + 1;
	atomic_fetch_add(&sh->received, 1);
}

static int consumer(void *arg)
{
	uint32_t cid = (uint32_t)(uintptr_t)arg;
	struct msg m[BURST];
	size_t len[BURST];
	uint64_t rng = cid + 100;
	int rc;

	for (;;) {
		if (bulk)
			rc = lfipc_queue_get_many(sq, m, sizeof(m[0]), len,
						  1 + th_rand(&rng) % BURST,
						  20000000);
		else
			rc = lfipc_queue_get(sq, &m[0], sizeof(m[0]), &len[0],
					     20000000);
		if (rc == -ETIMEDOUT || rc == -EAGAIN) {
			if (atomic_load(&sh->stop))
				return 0;
			continue;
		}
		if (rc == -EPIPE)
			return 0;
		if (rc < 0 || rc > BURST) {
			atomic_fetch_add(&sh->bad, 1);
			continue;
		}
		for (int j = 0; j < (bulk ? rc : 1); j++)
			consumed(cid, &m[j], len[j]);
	}
}

static int clearer(void *arg)
{
	(void)arg;
	while (!atomic_load(&sh->stop)) {
		int64_t n = lfipc_queue_clear(sq);

		if (n < 0)
			atomic_fetch_add(&sh->bad, 1);
		else
			atomic_fetch_add(&sh->cleared, (uint64_t)n);
		usleep(200);
	}
	return 0;
}

static void run_stress(int np, int nc, bool with_clear)
{
	pid_t prod[8], cons[8], clr = 0;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(sh, MAP_FAILED);
	nper = 20000 * th_scale();
	if (nper > (1 << 17))
		nper = 1 << 17;
	cr_assert_eq(lfipc_queue_create(r, "s", 64, sizeof(struct msg), 0, &sq),
		     0);
	for (int i = 0; i < nc; i++)
		cons[i] = th_fork(consumer, (void *)(uintptr_t)i);
	for (int i = 0; i < np; i++)
		prod[i] = th_fork(producer, (void *)(uintptr_t)i);
	if (with_clear)
		clr = th_fork(clearer, NULL);
	cr_assert_eq(th_reap_all(prod, np, REAP_MS), 0);
	atomic_store(&sh->stop, 1);
	if (with_clear)
		cr_assert_eq(th_reap(clr, REAP_MS), 0);
	lfipc_queue_shutdown(sq);
	cr_assert_eq(th_reap_all(cons, nc, REAP_MS), 0);
	cr_assert_eq(atomic_load(&sh->bad), 0);
	cr_assert_eq(atomic_load(&sh->received) + atomic_load(&sh->cleared),
		     (uint64_t)np * (uint64_t)nper);
	if (!with_clear)
		for (int p = 0; p < np; p++)
			for (int i = 0; i < nper; i++)
				cr_assert_eq(sh->seen[p][i], 1);
	lfipc_queue_close(sq);
	munmap(sh, sizeof(*sh));
}

Test(queue, processes_2x2_deliver_everything_exactly_once_in_order)
{
	run_stress(2, 2, false);
}

Test(queue, processes_3x2_with_clears_never_duplicate_or_lose_uncounted)
{
	run_stress(3, 2, true);
}

Test(queue, bulk_processes_2x2_deliver_everything_exactly_once_in_order)
{
	bulk = true;
	run_stress(2, 2, false);
}

Test(queue, bulk_processes_3x2_with_clears_never_duplicate_or_lose_uncounted)
{
	bulk = true;
	run_stress(3, 2, true);
}

struct targ {
	int id;
	int rc;
};

static void *tprod(void *a)
{
	struct targ *t = a;

	t->rc = producer((void *)(uintptr_t)t->id);
	return NULL;
}

static void *tcons(void *a)
{
	struct targ *t = a;

	t->rc = consumer((void *)(uintptr_t)t->id);
	return NULL;
}

static void *tclear(void *a)
{
	struct targ *t = a;

	t->rc = clearer(NULL);
	return NULL;
}

static void run_threads(int np, int nc, bool with_clear)
{
	pthread_t pt[8], ct[8], clt;
	struct targ pa[8], ca[8], cla = {0, 0};

	sh = calloc(1, sizeof(*sh));
	cr_assert_not_null(sh);
	nper = 5000 * th_scale();
	if (nper > (1 << 17))
		nper = 1 << 17;
	cr_assert_eq(lfipc_queue_create(r, "t", 16, sizeof(struct msg),
					joinable ? LFIPC_QUEUE_JOINABLE : 0,
					&sq),
		     0);
	for (int i = 0; i < nc; i++) {
		ca[i] = (struct targ){i, 0};
		pthread_create(&ct[i], NULL, tcons, &ca[i]);
	}
	for (int i = 0; i < np; i++) {
		pa[i] = (struct targ){i, 0};
		pthread_create(&pt[i], NULL, tprod, &pa[i]);
	}
	if (with_clear)
		pthread_create(&clt, NULL, tclear, &cla);
	for (int i = 0; i < np; i++) {
		pthread_join(pt[i], NULL);
		cr_assert_eq(pa[i].rc, 0);
	}
	atomic_store(&sh->stop, 1);
	if (with_clear)
		pthread_join(clt, NULL);
	lfipc_queue_shutdown(sq);
	for (int i = 0; i < nc; i++)
		pthread_join(ct[i], NULL);
	cr_assert_eq(atomic_load(&sh->bad), 0);
	cr_assert_eq(atomic_load(&sh->received) + atomic_load(&sh->cleared),
		     (uint64_t)np * (uint64_t)nper);
	if (joinable)
		cr_assert_eq(lfipc_queue_join(sq, LFIPC_NOWAIT), 0,
			     "got + task_done + cleared == put, exactly");
	lfipc_queue_close(sq);
	free(sh);
}

Test(queue, threads_3x3_deliver_everything_exactly_once_in_order)
{
	run_threads(3, 3, false);
}

Test(queue, threads_2x2_with_clears_never_duplicate_or_lose_uncounted)
{
	run_threads(2, 2, true);
}

Test(queue, threads_zero_copy_puts_with_clears_keep_joinable_counts_exact)
{
	zero_copy = true;
	joinable = true;
	run_threads(3, 2, true);
}

Test(queue, bulk_threads_3x3_deliver_everything_exactly_once_in_order)
{
	bulk = true;
	run_threads(3, 3, false);
}

Test(queue, bulk_threads_with_clears_keep_joinable_counts_exact)
{
	bulk = true;
	joinable = true;
	run_threads(2, 2, true);
}

/* ---- crash torture: SIGKILL producers and consumers at random ---------- */

#define CR_P 2
#define CR_C 2
#define CR_MAX 4096
#define CR_B 8

struct crash_sh {
	_Atomic uint32_t acked[CR_P];	 /* puts that returned 0 */
	_Atomic uint32_t inflight[CR_C]; /* (p << 16 | seq) + 1 */
	_Atomic uint8_t seen[CR_P][CR_MAX];
	_Atomic uint32_t bad;
	/* bulk consumers get_many straight into here, so that after a kill
	 * the parent can see what a consumer had taken but not recorded */
	uint32_t cbuf[CR_C][CR_B][4];
};

static struct crash_sh *cs;
static lfipc_queue *cq;

static int crash_producer(void *arg)
{
	uint32_t id = (uint32_t)(uintptr_t)arg;

	for (uint32_t i = 0; i < CR_MAX; i++) {
		uint32_t m[4] = {id, i, id * 7919u + i, 0};
		int rc = lfipc_queue_put(cq, m, sizeof(m), 2000000000);

		if (rc == -EPIPE)
			return 0;
		if (rc)
			return 1;
		atomic_store(&cs->acked[id], i + 1);
	}
	return 0;
}

static void crash_record(int cid, const uint32_t *m, size_t len)
{
	if (len != 16 || m[0] >= CR_P || m[1] >= CR_MAX ||
	    m[2] != m[0] * 7919u + m[1]) {
		atomic_fetch_add(&cs->bad, 1);
		return;
	}
	if (cid >= 0)
		atomic_store(&cs->inflight[cid], (m[0] << 16 | m[1]) + 1);
	atomic_fetch_add(&cs->seen[m[0]][m[1]], 1);
}

static int crash_consumer(void *arg)
{
	int cid = (int)(uintptr_t)arg;
	const void *msg;
	size_t len;

	for (;;) {
		int rc = lfipc_queue_peek(cq, &msg, &len, 2000000000);

		if (rc == -EPIPE)
			return 0;
		if (rc)
			return 1;
		crash_record(cid, msg, len);
		if (lfipc_queue_release(cq, msg))
			return 2;
		atomic_store(&cs->inflight[cid], 0);
	}
}

Test(queue, sigkilled_producers_and_consumers_lose_no_acknowledged_message,
     .timeout = 300)
{
	int rounds = 150 * th_scale();
	uint64_t rng = 12345, total = 0;

	cs = mmap(NULL, sizeof(*cs), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(cs, MAP_FAILED);
	for (int round = 0; round < rounds; round++) {
		pid_t prod[CR_P], cons[CR_C];
		bool pk[CR_P] = {0}, ck[CR_C] = {0};
		char name[32];
		uint32_t m[4];
		size_t len;
		int rc;

		memset(cs, 0, sizeof(*cs));
		snprintf(name, sizeof(name), "c%d", round);
		cr_assert_eq(lfipc_queue_create(r, name, 8, 16, 0, &cq), 0);
		for (int i = 0; i < CR_C; i++)
			cons[i] = th_fork(crash_consumer, (void *)(uintptr_t)i);
		for (int i = 0; i < CR_P; i++)
			prod[i] = th_fork(crash_producer, (void *)(uintptr_t)i);
		usleep((useconds_t)(th_rand(&rng) % 3000));
		int kp = (int)(th_rand(&rng) % CR_P);
		int kc = (int)(th_rand(&rng) % CR_C);
		kill(prod[kp], SIGKILL);
		pk[kp] = true;
		if (th_rand(&rng) % 2) {
			kill(cons[kc], SIGKILL);
			ck[kc] = true;
		}
		usleep((useconds_t)(th_rand(&rng) % 2000));
		for (int i = 0; i < CR_P; i++) {
			if (!pk[i]) {
				kill(prod[i], SIGKILL);
				pk[i] = true;
			}
			waitpid(prod[i], NULL, 0);
		}
		for (int i = 0; i < CR_C; i++)
			if (ck[i])
				waitpid(cons[i], NULL, 0);
		cr_assert_geq(lfipc_region_recover(r), 0);
		cr_assert_eq(lfipc_queue_shutdown(cq), 0);
		for (int i = 0; i < CR_C; i++)
			if (!ck[i])
				cr_assert_eq(th_reap(cons[i], REAP_MS), 0,
					     "round %d consumer %d", round, i);
		while ((rc = lfipc_queue_get(cq, m, sizeof(m), &len,
					     LFIPC_NOWAIT)) == 0)
			crash_record(-1, m, len);
		cr_assert_eq(rc, -EPIPE);
		cr_assert_eq(atomic_load(&cs->bad), 0, "round %d", round);
		for (uint32_t p = 0; p < CR_P; p++) {
			uint32_t a = atomic_load(&cs->acked[p]);

			total += a;
			for (uint32_t i = 0; i < CR_MAX; i++) {
				unsigned n = atomic_load(&cs->seen[p][i]);
				bool dup_ok = false;

				for (int c = 0; c < CR_C; c++)
					if (ck[c] &&
					    atomic_load(&cs->inflight[c]) ==
						(p << 16 | i) + 1)
						dup_ok = true;
				if (i < a)
					cr_assert(
					    n == 1 || (n == 2 && dup_ok),
					    "round %d p %u seq %u seen %u",
					    round, p, i, n);
				else
					cr_assert(
					    n <= 1 || (n == 2 && dup_ok),
					    "round %d p %u seq %u seen %u",
					    round, p, i, n);
			}
		}
		lfipc_queue_close(cq);
		cr_assert_eq(lfipc_object_remove(r, name), 0);
	}
	cr_assert_gt(total, (uint64_t)rounds, "messages flowed");
	munmap(cs, sizeof(*cs));
}

static int crash_bulk_producer(void *arg)
{
	uint32_t id = (uint32_t)(uintptr_t)arg;
	uint32_t m[CR_B][4];
	const void *mp[CR_B];
	size_t lens[CR_B];
	uint64_t rng = id * 31 + 7;

	for (uint32_t i = 0; i < CR_MAX;) {
		uint32_t b = 1 + (uint32_t)(th_rand(&rng) % CR_B);
		int rc;

		if (b > CR_MAX - i)
			b = CR_MAX - i;
		for (uint32_t j = 0; j < b; j++) {
			m[j][0] = id;
			m[j][1] = i + j;
			m[j][2] = id * 7919u + i + j;
			m[j][3] = 0;
			mp[j] = m[j];
			lens[j] = sizeof(m[j]);
		}
		rc = lfipc_queue_put_many(cq, mp, lens, b, 2000000000);
		if (rc == -EPIPE)
			return 0;
		if (rc < 1 || (uint32_t)rc > b)
			return 1;
		i += (uint32_t)rc;
		atomic_store(&cs->acked[id], i);
	}
	return 0;
}

static int crash_bulk_consumer(void *arg)
{
	int cid = (int)(uintptr_t)arg;
	uint64_t rng = (uint64_t)cid * 17 + 3;
	size_t lens[CR_B];

	for (;;) {
		size_t n = 1 + th_rand(&rng) % CR_B;
		int rc;

		memset(cs->cbuf[cid], 0xff, sizeof(cs->cbuf[cid]));
		rc = lfipc_queue_get_many(cq, cs->cbuf[cid],
					  sizeof(cs->cbuf[cid][0]), lens, n,
					  2000000000);
		if (rc == -EPIPE)
			return 0;
		if (rc < 1 || (size_t)rc > n)
			return 1;
		for (int j = 0; j < rc; j++)
			crash_record(-1, cs->cbuf[cid][j], lens[j]);
	}
}

/* Is message (p, i) in the get_many buffer of a killed consumer? */
static bool in_killed_cbuf(const bool *ck, uint32_t p, uint32_t i)
{
	for (int c = 0; c < CR_C; c++)
		for (int j = 0; ck[c] && j < CR_B; j++)
			if (cs->cbuf[c][j][0] == p && cs->cbuf[c][j][1] == i &&
			    cs->cbuf[c][j][2] == p * 7919u + i)
				return true;
	return false;
}

/*
 * Bulk producers and bulk consumers SIGKILLed at random points. Every
 * message a put_many acknowledged is delivered exactly once, except one
 * that a killed consumer had already taken (it is then in that consumer's
 * get_many buffer, never recorded, and never delivered again); nothing is
 * delivered twice (a get_many records only after it returned, and by then
 * its slots are released); nothing wedges.
 */
Test(queue, sigkilled_bulk_producers_and_consumers_lose_no_acknowledged_message,
     .timeout = 300)
{
	int rounds = 150 * th_scale();
	uint64_t rng = 4242, total = 0, lost_to_dead = 0;

	cs = mmap(NULL, sizeof(*cs), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(cs, MAP_FAILED);
	for (int round = 0; round < rounds; round++) {
		pid_t prod[CR_P], cons[CR_C];
		bool pk[CR_P] = {0}, ck[CR_C] = {0};
		char name[32];
		uint32_t m[4];
		size_t len;
		int rc;

		memset(cs, 0, sizeof(*cs));
		snprintf(name, sizeof(name), "b%d", round);
		cr_assert_eq(lfipc_queue_create(r, name, 1 + round % 12, 16,
						LFIPC_QUEUE_JOINABLE, &cq),
			     0);
		for (int i = 0; i < CR_C; i++)
			cons[i] =
			    th_fork(crash_bulk_consumer, (void *)(uintptr_t)i);
		for (int i = 0; i < CR_P; i++)
			prod[i] =
			    th_fork(crash_bulk_producer, (void *)(uintptr_t)i);
		usleep((useconds_t)(th_rand(&rng) % 3000));
		int kp = (int)(th_rand(&rng) % CR_P);
		int kc = (int)(th_rand(&rng) % CR_C);
		kill(prod[kp], SIGKILL);
		pk[kp] = true;
		if (th_rand(&rng) % 2) {
			kill(cons[kc], SIGKILL);
			ck[kc] = true;
		}
		usleep((useconds_t)(th_rand(&rng) % 2000));
		for (int i = 0; i < CR_P; i++) {
			if (!pk[i]) {
				kill(prod[i], SIGKILL);
				pk[i] = true;
			}
			waitpid(prod[i], NULL, 0);
		}
		for (int i = 0; i < CR_C; i++)
			if (ck[i])
				waitpid(cons[i], NULL, 0);
		if (round % 2)
			cr_assert_geq(lfipc_region_recover(r), 0);
		cr_assert_eq(lfipc_queue_shutdown(cq), 0);
		for (int i = 0; i < CR_C; i++)
			if (!ck[i])
				cr_assert_eq(th_reap(cons[i], REAP_MS), 0,
					     "round %d consumer %d", round, i);
		if (!(round % 2))
			cr_assert_geq(lfipc_region_recover(r), 0);
		while ((rc = lfipc_queue_get(cq, m, sizeof(m), &len,
					     LFIPC_NOWAIT)) == 0)
			crash_record(-1, m, len);
		cr_assert_eq(rc, -EPIPE, "round %d", round);
		cr_assert_eq(atomic_load(&cs->bad), 0, "round %d", round);
		for (uint32_t p = 0; p < CR_P; p++) {
			uint32_t a = atomic_load(&cs->acked[p]);

			total += a;
			for (uint32_t i = 0; i < CR_MAX; i++) {
				unsigned n = atomic_load(&cs->seen[p][i]);

				cr_assert_leq(n, 1, "round %d p %u seq %u",
					      round, p, i);
				if (i < a && n == 0) {
					cr_assert(in_killed_cbuf(ck, p, i),
						  "round %d p %u seq %u lost",
						  round, p, i);
					lost_to_dead++;
				}
			}
		}
		lfipc_queue_close(cq);
		cr_assert_eq(lfipc_object_remove(r, name), 0);
	}
	cr_assert_gt(total, (uint64_t)rounds, "messages flowed");
	cr_log_info("bulk torture: %llu acked, %llu taken by killed consumers",
		    (unsigned long long)total,
		    (unsigned long long)lost_to_dead);
	cr_assert_leq(lost_to_dead, (uint64_t)rounds * CR_B);
	munmap(cs, sizeof(*cs));
}

static int crash_clearer(void *arg)
{
	(void)arg;
	for (;;) {
		int64_t n = lfipc_queue_clear(cq);

		if (n < 0)
			return 1;
	}
}

/*
 * A clearer SIGKILLed at a random point (possibly holding the clear lock
 * and the head slot) must not wedge the queue: live consumers notice at
 * the end of a sleep slice (or lfipc_region_recover() does), the queue
 * drains, shutdown reaches every consumer, and nothing is delivered that
 * was not put or delivered twice.
 */
Test(queue, sigkilled_clearers_never_wedge_the_queue, .timeout = 300)
{
	int rounds = 60 * th_scale();
	uint64_t rng = 777;

	cs = mmap(NULL, sizeof(*cs), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(cs, MAP_FAILED);
	for (int round = 0; round < rounds; round++) {
		pid_t prod[CR_P], cons[CR_C], clr;
		char name[32];
		uint32_t m[4];
		size_t len;
		int rc;

		memset(cs, 0, sizeof(*cs));
		snprintf(name, sizeof(name), "k%d", round);
		cr_assert_eq(lfipc_queue_create(r, name, 8, 16,
						LFIPC_QUEUE_JOINABLE, &cq),
			     0);
		for (int i = 0; i < CR_C; i++)
			cons[i] = th_fork(crash_consumer, (void *)(uintptr_t)i);
		for (int i = 0; i < CR_P; i++)
			prod[i] = th_fork(crash_producer, (void *)(uintptr_t)i);
		clr = th_fork(crash_clearer, NULL);
		usleep((useconds_t)(500 + th_rand(&rng) % 3000));
		kill(clr, SIGKILL);
		if (th_rand(&rng) % 2)
			kill(prod[th_rand(&rng) % CR_P], SIGKILL);
		usleep((useconds_t)(th_rand(&rng) % 2000));
		for (int i = 0; i < CR_P; i++) {
			kill(prod[i], SIGKILL);
			waitpid(prod[i], NULL, 0);
		}
		waitpid(clr, NULL, 0);
		if (round % 2)
			cr_assert_geq(lfipc_region_recover(r), 0);
		cr_assert_eq(lfipc_queue_shutdown(cq), 0);
		for (int i = 0; i < CR_C; i++)
			cr_assert_eq(th_reap(cons[i], REAP_MS), 0,
				     "round %d consumer %d", round, i);
		while ((rc = lfipc_queue_get(cq, m, sizeof(m), &len,
					     LFIPC_NOWAIT)) == 0)
			crash_record(-1, m, len);
		cr_assert_eq(rc, -EPIPE, "round %d", round);
		cr_assert_eq(atomic_load(&cs->bad), 0, "round %d", round);
		for (uint32_t p = 0; p < CR_P; p++)
			for (uint32_t i = 0; i < CR_MAX; i++)
				cr_assert_leq(atomic_load(&cs->seen[p][i]), 1,
					      "round %d p %u seq %u", round, p,
					      i);
		/* the clear lock is free again: a clear works at once */
		cr_assert_geq(lfipc_queue_clear(cq), 0);
		lfipc_queue_close(cq);
		cr_assert_eq(lfipc_object_remove(r, name), 0);
	}
	munmap(cs, sizeof(*cs));
}

struct sd_arg {
	lfipc_queue *q;
	long n;
	int bad;
};

static bool sd_bulk; /* put_many / get_many of 3 */

static void *sd_put(void *a)
{
	struct sd_arg *s = a;
	const void *mp[3] = {&s->n, &s->n, &s->n};
	size_t lens[3] = {sizeof(s->n), sizeof(s->n), sizeof(s->n)};

	for (;;) {
		int rc = sd_bulk ? lfipc_queue_put_many(s->q, mp, lens, 3,
							LFIPC_FOREVER)
				 : lfipc_queue_put(s->q, &s->n, sizeof(s->n),
						   LFIPC_FOREVER);

		if (rc == -EPIPE)
			return NULL;
		if (rc < 0 || rc > 3) {
			s->bad++;
			return NULL;
		}
		s->n += sd_bulk ? rc : 1;
	}
}

static void *sd_get(void *a)
{
	struct sd_arg *s = a;
	char buf[3][8];
	size_t lens[3];

	for (;;) {
		int rc = sd_bulk ? lfipc_queue_get_many(s->q, buf, 8, lens, 3,
							LFIPC_FOREVER)
				 : lfipc_queue_get(s->q, buf[0], sizeof(buf[0]),
						   NULL, LFIPC_FOREVER);

		if (rc == -EPIPE)
			return NULL;
		if (rc < 0 || rc > 3) {
			s->bad++;
			return NULL;
		}
		s->n += sd_bulk ? rc : 1;
	}
}

/* Every put that returned 0 is got, even when it raced with the shutdown
 * that made the consumers stop. */
static void run_shutdown_race(void)
{
	int rounds = 150 * th_scale();
	uint64_t rng = 99;

	for (int round = 0; round < rounds; round++) {
		struct sd_arg pa[2], ga[2];
		pthread_t pt[2], gt[2];
		lfipc_queue *q;
		char name[32];
		long put = 0, got = 0;

		snprintf(name, sizeof(name), "sd%d", round);
		cr_assert_eq(lfipc_queue_create(r, name, 4, 8, 0, &q), 0);
		for (int i = 0; i < 2; i++) {
			pa[i] = (struct sd_arg){q, 0, 0};
			ga[i] = (struct sd_arg){q, 0, 0};
			cr_assert_eq(
			    pthread_create(&gt[i], NULL, sd_get, &ga[i]), 0);
			cr_assert_eq(
			    pthread_create(&pt[i], NULL, sd_put, &pa[i]), 0);
		}
		usleep((useconds_t)(th_rand(&rng) % 500));
		cr_assert_eq(lfipc_queue_shutdown(q), 0);
		for (int i = 0; i < 2; i++) {
			pthread_join(pt[i], NULL);
			pthread_join(gt[i], NULL);
			cr_assert_eq(pa[i].bad + ga[i].bad, 0);
			put += pa[i].n;
			got += ga[i].n;
		}
		cr_assert_eq(put, got, "round %d: %ld put, %ld got", round, put,
			     got);
		lfipc_queue_close(q);
		cr_assert_eq(lfipc_object_remove(r, name), 0);
	}
}

Test(queue, a_put_racing_a_shutdown_either_fails_or_is_got)
{
	run_shutdown_race();
}

Test(queue, a_put_many_racing_a_shutdown_is_got_as_far_as_it_counted)
{
	sd_bulk = true;
	run_shutdown_race();
}
