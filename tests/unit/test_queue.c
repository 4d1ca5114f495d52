/* SPDX-License-Identifier: MIT */
/*
 * test_queue.c - what a Queue and a JoinableQueue do, one behaviour per
 * test: order, sizes and arguments, timeouts, bulk and zero-copy calls,
 * shutdown, JoinableQueue counts, clear, and the cost promises (no system
 * call on the fast paths, bounded work per sleep slice). Stress, crash and
 * hostile-peer tests live in tests/stress, tests/crash and tests/hostile.
 */
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
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <lfipc/inspect.h>
#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "common/qtest.h"
#include "common/testhelp.h"

TestSuite(queue, .init = qt_setup, .fini = qt_teardown, .timeout = 120);

Test(queue, messages_come_out_in_the_order_they_went_in)
{
	lfipc_queue *q;
	char buf[32];
	size_t len;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 4, 32, 0, &q), 0);
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

	cr_assert_eq(lfipc_queue_create(qt_r, "q3", 3, 8, 0, &q), 0);
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

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 0, 8, 0, &q), -EINVAL);
	cr_assert_eq(lfipc_queue_create(qt_r, "q", 2, 8, 0x80, &q), -EINVAL);
	cr_assert_eq(lfipc_queue_create(qt_r, "q", 2, 8, 0, &q), 0);
	cr_assert_eq(lfipc_queue_create(qt_r, "q", 2, 8, 0, &q2), -EEXIST);
	cr_assert_eq(lfipc_queue_open(qt_r, "nope", &q2), -ENOENT);
	cr_assert_eq(lfipc_queue_open(qt_r, "q", &q2), 0);
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

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 1, 8, 0, &q), 0);
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
	cr_assert_eq(lfipc_queue_create(qt_r, "q", 4, 8, 0, &q), 0);
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

Test(queue, put_many_puts_as_many_as_there_are_free_slots)
{
	lfipc_queue *q, *q3;
	int next = 0;

	/* capacity 3 of 4 slots: the run stops at the capacity, not at the
	 * slots */
	cr_assert_eq(lfipc_queue_create(qt_r, "q3", 3, 8, 0, &q3), 0);
	cr_assert_eq(lfipc_queue_create(qt_r, "q", 128, 8, 0, &q), 0);
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

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 50, 8, 0, &q), 0);
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
	    lfipc_queue_create(qt_r, "q", 64, 8, LFIPC_QUEUE_JOINABLE, &q), 0);
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

Test(queue, put_many_after_shutdown_fails_and_get_many_drains_then_epipe)
{
	lfipc_queue *q;
	int next = 0;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 8, 8, 0, &q), 0);
	cr_assert_eq(put_ints(q, 0, 5, LFIPC_NOWAIT), 5);
	cr_assert_eq(lfipc_queue_shutdown(q), 0);
	cr_assert_eq(put_ints(q, 5, 7, LFIPC_NOWAIT), -EPIPE);
	cr_assert_eq(get_ints(q, 3, &next), 3);
	cr_assert_eq(get_ints(q, 3, &next), 2);
	cr_assert_eq(get_ints(q, 3, &next), -EPIPE);
	lfipc_queue_close(q);
}

/* The slot word of the slot whose payload is at payload (struct
 * lfipc_qslot in lib/internal/queue_layout.h, through common/qtest.h). */
#define SLOT_WORD(payload)                                                   \
	(&((struct lfipc_qslot *)((char *)(payload) -                         \
				  offsetof(struct lfipc_qslot, data)))        \
	      ->word)

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

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 4, 16, 0, &q), 0);
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

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 2, 16, 0, &q), 0);
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

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 4, 8, 0, &q), 0);
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

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 4, 8, 0, &q), 0);
	pthread_create(&t, NULL, shut_later, q);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_FOREVER), -EPIPE);
	pthread_join(t, NULL);
	lfipc_queue_close(q);
}

Test(queue, joinable_counts_task_done_and_clear_as_done)
{
	lfipc_queue *q;
	char buf[8];

	cr_assert_eq(
	    lfipc_queue_create(qt_r, "q", 8, 8, LFIPC_QUEUE_JOINABLE, &q), 0);
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

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 8, 8, 0, &q), 0);
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

Test(queue, clear_discards_a_reserved_head_without_waiting_for_its_commit)
{
	lfipc_queue *q;
	void *slot;
	char buf[8];
	int64_t t0;

	cr_assert_eq(
	    lfipc_queue_create(qt_r, "q", 4, 8, LFIPC_QUEUE_JOINABLE, &q), 0);
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

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 4, 8, 0, &q), 0);
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

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 4, 16, 0, &q), 0);
	pid = th_fork(fast_path_child, q);
	cr_assert_gt(pid, 0);
	cr_assert_eq(th_reap(pid, QT_REAP_MS), 0,
		     "a fast path made a system call (sanitized build: a "
		     "futex, fcntl or sched_yield call): %d",
		     TQ_SANITIZED);
	/* the filter is not vacuous: a get that has to sleep is killed */
	pid = th_fork(sleeping_child, q);
	cr_assert_gt(pid, 0);
	cr_assert_eq(th_reap(pid, QT_REAP_MS), 128 + SIGSYS);
	lfipc_queue_close(q);
	/* the same in a single-producer, single-consumer queue: holding the
	 * roles costs no system call either */
	cr_assert_eq(lfipc_queue_create(qt_r, "s", 4, 16,
					LFIPC_QUEUE_SINGLE_PRODUCER |
					    LFIPC_QUEUE_SINGLE_CONSUMER,
					&q),
		     0);
	pid = th_fork(fast_path_child, q);
	cr_assert_gt(pid, 0);
	cr_assert_eq(th_reap(pid, QT_REAP_MS), 0,
		     "a single-producer/consumer fast path made a system call");
	lfipc_queue_close(q);
}

/* ---- JoinableQueue: who may call task_done ---------------------------- */

struct handover {
	lfipc_queue *q;
	int to_parent[2], to_child[2];
};

/* Get one message, tell the parent, wait until told to exit. */
static int get_and_wait(void *arg)
{
	struct handover *ho = arg;
	char b[8], x = 1;

	if (lfipc_queue_get(ho->q, b, sizeof(b), NULL, LFIPC_NOWAIT))
		return 1;
	if (th_write_all(ho->to_parent[1], &x, 1) ||
	    th_read_all(ho->to_child[0], &x, 1))
		return 2;
	return 0;
}

/* Python lets any process call task_done, e.g. for a task the getter
 * handed over: the count is global, charged to the caller's own tasks
 * first and to another process's when the caller has none. */
Test(queue, task_done_may_settle_a_task_another_process_got)
{
	struct handover ho;
	char b[8], x = 0;
	pid_t pid;

	cr_assert_eq(
	    lfipc_queue_create(qt_r, "q", 4, 8, LFIPC_QUEUE_JOINABLE, &ho.q),
	    0);
	cr_assert_eq(pipe(ho.to_parent), 0);
	cr_assert_eq(pipe(ho.to_child), 0);
	cr_assert_eq(lfipc_queue_put(ho.q, "a", 1, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_put(ho.q, "b", 1, LFIPC_NOWAIT), 0);
	pid = th_fork(get_and_wait, &ho);
	cr_assert_gt(pid, 0);
	cr_assert_eq(th_read_all(ho.to_parent[0], &x, 1), 0);
	cr_assert_eq(lfipc_queue_get(ho.q, b, sizeof(b), NULL, LFIPC_NOWAIT),
		     0);
	cr_assert_eq(lfipc_queue_task_done(ho.q), 0, "our own task");
	cr_assert_eq(lfipc_queue_join(ho.q, LFIPC_NOWAIT), -EAGAIN);
	cr_assert_eq(lfipc_queue_task_done(ho.q), 0, "the child's task");
	cr_assert_eq(lfipc_queue_task_done(ho.q), -EINVAL, "none left");
	cr_assert_eq(lfipc_queue_join(ho.q, LFIPC_NOWAIT), 0);
	cr_assert_eq(th_write_all(ho.to_child[1], &x, 1), 0);
	cr_assert_eq(th_reap(pid, QT_REAP_MS), 0);
	/* the child's exit leaves nothing to write off */
	cr_assert_eq(lfipc_queue_join(ho.q, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_tasks_abandoned(ho.q), 0);
	for (int i = 0; i < 2; i++) {
		close(ho.to_parent[i]);
		close(ho.to_child[i]);
	}
	lfipc_queue_close(ho.q);
}

/* ---- wake-ups and the cost of waiting ---------------------------------- */

/* With a capacity below the slot count, room is positional: a peek (which
 * moves the consumers' position but keeps its slot) makes room and must
 * wake a producer asleep on the full queue, as a get does. The wait
 * queue's wake-up counter (seq) shows whether peek woke it. */
Test(queue, peek_on_a_full_queue_of_odd_capacity_wakes_a_sleeping_producer)
{
	lfipc_queue *q;
	struct qpeer qp;
	pthread_t t;
	const void *m;
	size_t len;
	uint32_t ev;
	void *rc;
	cr_assert_eq(lfipc_queue_create(qt_r, "q", 3, 8, 0, &q), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(lfipc_queue_put(q, &i, 1, LFIPC_NOWAIT), 0);
	qp_open(qt_r, "q", &qp);
	cr_assert_eq(pthread_create(&t, NULL, put_forever, q), 0);
	producer_sleeps(&qp);
	ev = atomic_load(&qp.h->not_full.seq);
	cr_assert_eq(lfipc_queue_peek(q, &m, &len, LFIPC_NOWAIT), 0);
	cr_assert_neq(atomic_load(&qp.h->not_full.seq), ev,
		      "peek woke the producer");
	pthread_join(t, &rc);
	cr_assert_eq((intptr_t)rc, 0);
	cr_assert_eq(lfipc_queue_release(q, m), 0);
	qp_close(&qp);
	lfipc_queue_close(q);
}

/* The slots of a large queue beyond the first SPAN are made inaccessible
 * in a waiter's own mapping: a waiter whose sleep slices looked at every
 * slot would fault; one whose slices look at a bounded number sleeps its
 * ten slices and times out. */
#define BIG_CAP ((size_t)1 << 18)
#define SPAN ((size_t)1 << 15)

static int wait_with_far_slots_unmapped(void *arg)
{
	lfipc_queue *q = arg;
	long page = sysconf(_SC_PAGESIZE);
	void *slot;
	uint8_t *slots, *lo, *hi;
	char b[8];

	/* where this process mapped slot 0: the payload of a reservation */
	if (lfipc_queue_reserve(q, &slot, LFIPC_NOWAIT) ||
	    lfipc_queue_commit(q, slot, 0) ||
	    lfipc_queue_get(q, b, sizeof(b), NULL, LFIPC_NOWAIT))
		return 1;
	slots = (uint8_t *)slot - LFIPC_Q_SLOT_HDR;
	lo = (uint8_t *)(((uintptr_t)(slots + SPAN * 64) + page - 1) &
			 ~(uintptr_t)(page - 1));
	hi = slots + BIG_CAP * 64;
	if (mprotect(lo, (size_t)(hi - lo), PROT_NONE))
		return 2;
	return lfipc_queue_get(q, b, sizeof(b), NULL, 100000000) == -ETIMEDOUT
		   ? 0
		   : 3;
}

Test(queue, a_sleeping_waiter_looks_at_a_bounded_number_of_slots_per_slice)
{
	lfipc_queue *q;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", BIG_CAP, 8, 0, &q), 0);
	cr_assert_eq(
	    th_reap(th_fork(wait_with_far_slots_unmapped, q), QT_REAP_MS), 0,
	    "a slice end looked at slots far from the head");
	lfipc_queue_close(q);
}

/* ---- single-producer / single-consumer queues -------------------------- */

#define SPSC (LFIPC_QUEUE_SINGLE_PRODUCER | LFIPC_QUEUE_SINGLE_CONSUMER)

struct role_try {
	lfipc_queue *q;
	int put_rc, get_rc;
};

/* From another thread of this process: try a put and a get. */
static void *try_roles(void *arg)
{
	struct role_try *t = arg;
	char buf[16];

	t->put_rc = lfipc_queue_put(t->q, "t", 1, LFIPC_NOWAIT);
	t->get_rc = lfipc_queue_get(t->q, buf, sizeof(buf), NULL,
				    LFIPC_NOWAIT);
	return NULL;
}

/* From another process: try a put and a get; exit status 0 when both were
 * refused with -EBUSY, 1 when both worked, else 2. */
static int try_roles_child(void *arg)
{
	struct role_try t = {arg, 0, 0};

	try_roles(&t);
	if (t.put_rc == -EBUSY && t.get_rc == -EBUSY)
		return 0;
	return t.put_rc == 0 && t.get_rc == 0 ? 1 : 2;
}

Test(queue, open_or_create_takes_the_mode_and_refuses_another_mode)
{
	lfipc_queue *q, *q2;

	cr_assert_eq(lfipc_queue_open_or_create(qt_r, "q", 4, 16, SPSC, &q),
		     0);
	cr_assert_eq(lfipc_queue_open_or_create(qt_r, "q", 4, 16, SPSC, &q2),
		     0);
	lfipc_queue_close(q2);
	cr_assert_eq(lfipc_queue_open_or_create(
			 qt_r, "q", 4, 16, LFIPC_QUEUE_SINGLE_PRODUCER, &q2),
		     -EEXIST);
	cr_assert_eq(lfipc_queue_open_or_create(qt_r, "q", 4, 16, 0, &q2),
		     -EEXIST);
	cr_assert_eq(lfipc_queue_put(q, "a", 1, LFIPC_NOWAIT), 0);
	/* the mode costs no bytes */
	cr_assert_eq(lfipc_queue_bytes(4, 16, SPSC),
		     lfipc_queue_bytes(4, 16, 0));
	lfipc_queue_close(q);
}

Test(queue, a_second_producer_or_consumer_is_refused_with_ebusy)
{
	lfipc_queue *q, *q2;
	struct role_try t;
	pthread_t th;
	char buf[16];
	size_t len;
	pid_t pid;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 4, 16, SPSC, &q), 0);
	cr_assert_eq(lfipc_queue_put(q, "a", 1, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_put(q, "b", 1, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_get(q, buf, sizeof(buf), &len, LFIPC_NOWAIT),
		     0);
	/* another thread of this process, through the same handle */
	t = (struct role_try){q, 0, 0};
	cr_assert_eq(pthread_create(&th, NULL, try_roles, &t), 0);
	cr_assert_eq(pthread_join(th, NULL), 0);
	cr_assert_eq(t.put_rc, -EBUSY);
	cr_assert_eq(t.get_rc, -EBUSY);
	/* another process, through its own handle */
	cr_assert_eq(lfipc_queue_open(qt_r, "q", &q2), 0);
	pid = th_fork(try_roles_child, q2);
	cr_assert_gt(pid, 0);
	cr_assert_eq(th_reap(pid, QT_REAP_MS), 0, "refused with -EBUSY");
	/* the holders keep working, in order */
	cr_assert_eq(lfipc_queue_get(q, buf, sizeof(buf), &len, LFIPC_NOWAIT),
		     0);
	cr_assert_eq(buf[0], 'b');
	cr_assert_eq(lfipc_queue_get(q, buf, sizeof(buf), &len, LFIPC_NOWAIT),
		     -EAGAIN);
	lfipc_queue_close(q2);
	lfipc_queue_close(q);
}

struct bulk_try {
	lfipc_queue *q;
	int rc[4];
};

/* From another thread: put_many, reserve, get_many, peek. */
static void *try_bulk_roles(void *arg)
{
	struct bulk_try *t = arg;
	const void *m[1] = {"x"};
	size_t l[1] = {1}, lens[2];
	char bufs[2][16];
	const void *msg;
	void *slot;
	size_t len;

	t->rc[0] = lfipc_queue_put_many(t->q, m, l, 1, LFIPC_NOWAIT);
	t->rc[1] = lfipc_queue_reserve(t->q, &slot, LFIPC_NOWAIT);
	t->rc[2] = lfipc_queue_get_many(t->q, bufs, 16, lens, 2, LFIPC_NOWAIT);
	t->rc[3] = lfipc_queue_peek(t->q, &msg, &len, LFIPC_NOWAIT);
	return NULL;
}

Test(queue, bulk_and_zero_copy_calls_respect_the_roles)
{
	lfipc_queue *q;
	struct bulk_try t = {0};
	pthread_t th;
	int next = 0;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 8, 8, SPSC, &q), 0);
	cr_assert_eq(put_ints(q, 0, 3, LFIPC_NOWAIT), 3);
	cr_assert_eq(get_ints(q, 1, &next), 1);
	t.q = q;
	cr_assert_eq(pthread_create(&th, NULL, try_bulk_roles, &t), 0);
	cr_assert_eq(pthread_join(th, NULL), 0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(t.rc[i], -EBUSY, "call %d: %d", i, t.rc[i]);
	cr_assert_eq(lfipc_queue_qsize(q), 2, "nothing was touched");
	cr_assert_eq(get_ints(q, 8, &next), 2);
	lfipc_queue_close(q);
}

/* Take both roles (a put and a get), then exit without closing. */
static int take_roles_and_die(void *arg)
{
	lfipc_queue *q = arg;
	char buf[16];

	if (lfipc_queue_put(q, "d", 1, LFIPC_NOWAIT) ||
	    lfipc_queue_put(q, "e", 1, LFIPC_NOWAIT) ||
	    lfipc_queue_get(q, buf, sizeof(buf), NULL, LFIPC_NOWAIT))
		return 1;
	return buf[0] == 'd' ? 0 : 2;
}

Test(queue, the_roles_pass_on_when_their_holder_closes_or_dies)
{
	lfipc_queue *q, *q2;
	char buf[16];
	size_t len;
	pid_t pid;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 4, 16, SPSC, &q), 0);
	/* a process that held both roles died without closing */
	pid = th_fork(take_roles_and_die, q);
	cr_assert_gt(pid, 0);
	cr_assert_eq(th_reap(pid, QT_REAP_MS), 0);
	cr_assert_eq(lfipc_queue_put(q, "f", 1, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_get(q, buf, sizeof(buf), &len, LFIPC_NOWAIT),
		     0);
	cr_assert_eq(buf[0], 'e');
	/* closing the handle the roles were taken through gives them back:
	 * a second handle of this thread, then another process, take them */
	lfipc_queue_close(q);
	cr_assert_eq(lfipc_queue_open(qt_r, "q", &q2), 0);
	pid = th_fork(try_roles_child, q2);
	cr_assert_gt(pid, 0);
	cr_assert_eq(th_reap(pid, QT_REAP_MS), 1, "the roles were free");
	/* that child (it got 'f', put 't') died holding them: ours again */
	cr_assert_eq(lfipc_queue_get(q2, buf, sizeof(buf), &len, LFIPC_NOWAIT),
		     0);
	cr_assert_eq(buf[0], 't');
	cr_assert_eq(lfipc_queue_put(q2, "g", 1, LFIPC_NOWAIT), 0);
	lfipc_queue_close(q2);
}

Test(queue, single_sided_queues_keep_clear_shutdown_and_join)
{
	const unsigned modes[] = {LFIPC_QUEUE_SINGLE_PRODUCER,
				  LFIPC_QUEUE_SINGLE_CONSUMER, SPSC};

	for (int m = 0; m < 3; m++) {
		lfipc_queue *q;
		char name[8];
		int next = 0;

		snprintf(name, sizeof(name), "q%d", m);
		cr_assert_eq(lfipc_queue_create(qt_r, name, 5, 8,
						modes[m] | LFIPC_QUEUE_JOINABLE,
						&q),
			     0);
		/* the ring goes round several laps, with clears between */
		for (int lap = 0; lap < 6; lap++) {
			cr_assert_eq(put_ints(q, next, next + 5, LFIPC_NOWAIT),
				     5);
			cr_assert(lfipc_queue_full(q));
			cr_assert_eq(put_ints(q, 0, 1, LFIPC_NOWAIT), -EAGAIN);
			cr_assert_eq(get_ints(q, 2, &next), 2);
			cr_assert_eq(lfipc_queue_clear(q), 3);
			next += 3;
			for (int i = 0; i < 2; i++)
				cr_assert_eq(lfipc_queue_task_done(q), 0);
			cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0);
		}
		cr_assert_eq(lfipc_queue_put(q, &next, sizeof(next),
					     LFIPC_NOWAIT),
			     0);
		cr_assert_eq(lfipc_queue_shutdown(q), 0);
		cr_assert_eq(lfipc_queue_put(q, &next, sizeof(next),
					     LFIPC_NOWAIT),
			     -EPIPE);
		cr_assert_eq(get_ints(q, 4, &next), 1);
		cr_assert_eq(get_ints(q, 4, &next), -EPIPE);
		cr_assert_eq(lfipc_queue_task_done(q), 0);
		cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0);
		lfipc_queue_close(q);
	}
}

/* Close the inherited handle, then try to put through a fresh one. */
static int close_inherited_then_put(void *arg)
{
	lfipc_queue *q = arg, *q2;
	int rc;

	lfipc_queue_close(q);
	if (lfipc_queue_open(qt_r, "q", &q2))
		return 2;
	rc = lfipc_queue_put(q2, "c", 1, LFIPC_NOWAIT);
	lfipc_queue_close(q2);
	return rc == -EBUSY ? 0 : 1;
}

Test(queue, a_fork_child_closing_an_inherited_handle_keeps_the_parents_role)
{
	lfipc_queue *q;
	char buf[16];
	pid_t pid;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 4, 16, SPSC, &q), 0);
	cr_assert_eq(lfipc_queue_put(q, "a", 1, LFIPC_NOWAIT), 0);
	pid = th_fork(close_inherited_then_put, q);
	cr_assert_gt(pid, 0);
	cr_assert_eq(th_reap(pid, QT_REAP_MS), 0,
		     "the child's put was refused: the role stayed ours");
	cr_assert_eq(lfipc_queue_put(q, "b", 1, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_get(q, buf, sizeof(buf), NULL, LFIPC_NOWAIT),
		     0);
	cr_assert_eq(buf[0], 'a');
	lfipc_queue_close(q);
}

/* A single producer writes a message into its slot before claiming it
 * (lib/queue_putget.c, sp_put): never into a slot whose previous message
 * is still held by a peek, whose bytes must stay as they were. */
Test(queue, a_single_producer_leaves_a_peeked_slot_alone)
{
	lfipc_queue *q;
	const void *m;
	size_t len;
	char buf[8];

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 2, 8, SPSC, &q), 0);
	cr_assert_eq(lfipc_queue_put(q, "aaaaaaa", 8, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_put(q, "bbbbbbb", 8, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_peek(q, &m, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, &len, LFIPC_NOWAIT), 0);
	cr_assert_str_eq(buf, "bbbbbbb");
	/* the next slot is the peeked one: full until it is released */
	cr_assert_eq(lfipc_queue_put(q, "ccccccc", 8, LFIPC_NOWAIT), -EAGAIN);
	cr_assert_str_eq((const char *)m, "aaaaaaa");
	cr_assert_eq(lfipc_queue_release(q, m), 0);
	cr_assert_eq(lfipc_queue_put(q, "ddddddd", 8, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, &len, LFIPC_NOWAIT), 0);
	cr_assert_str_eq(buf, "ddddddd");
	cr_assert_eq(len, 8);
	lfipc_queue_close(q);
}

/* A single producer that finds the queue full first waits (bounded) for a
 * run of free slots before it looks at the head again (sp_await_run() in
 * lib/queue_putget.c): a heuristic that must never keep a put from taking
 * the one slot a consumer frees. The producer thread fills a queue of 256
 * (large enough for the run wait to apply), then puts once more without
 * a timeout; the consumer frees one slot and holds the next one peeked, so
 * no run ever frees: the put must still complete, and order holds. */
struct run_fill {
	lfipc_queue *q;
	atomic_int filled, done;
	int rc;
};

static void *fill_then_put(void *arg)
{
	struct run_fill *f = arg;
	uint32_t v;

	for (v = 0; v < 256; v++)
		if (lfipc_queue_put(f->q, &v, sizeof(v), LFIPC_NOWAIT)) {
			f->rc = -1000;
			atomic_store(&f->filled, 1);
			return NULL;
		}
	atomic_store(&f->filled, 1);
	f->rc = lfipc_queue_put(f->q, &v, sizeof(v), LFIPC_FOREVER);
	atomic_store(&f->done, 1);
	return NULL;
}

Test(queue, a_single_producer_takes_a_single_freed_slot_of_a_full_queue)
{
	struct run_fill f = {.rc = 1};
	const void *m;
	uint32_t v;
	size_t len;
	pthread_t t;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 256, 8, SPSC, &f.q), 0);
	cr_assert_eq(pthread_create(&t, NULL, fill_then_put, &f), 0);
	while (!atomic_load(&f.filled))
		usleep(1000);
	usleep(20000); /* let the producer find the queue full */
	cr_assert_eq(lfipc_queue_get(f.q, &v, 8, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(lfipc_queue_peek(f.q, &m, &len, LFIPC_NOWAIT), 0);
	for (int ms = 0; !atomic_load(&f.done) && ms < QT_REAP_MS; ms++)
		usleep(1000);
	cr_assert(atomic_load(&f.done), "the put did not take the freed slot");
	pthread_join(t, NULL);
	cr_assert_eq(f.rc, 0);
	memcpy(&v, m, sizeof(v));
	cr_assert_eq(v, 1);
	cr_assert_eq(lfipc_queue_release(f.q, m), 0);
	for (uint32_t i = 2; i <= 256; i++) {
		cr_assert_eq(lfipc_queue_get(f.q, &v, 8, &len, LFIPC_NOWAIT),
			     0);
		cr_assert_eq(v, i);
	}
	cr_assert_eq(lfipc_queue_get(f.q, &v, 8, &len, LFIPC_NOWAIT),
		     -EAGAIN);
	lfipc_queue_close(f.q);
}
