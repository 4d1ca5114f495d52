/* SPDX-License-Identifier: MIT */
/*
 * bare futex lock: the floor of a process-shared lock that can sleep, run
 * by the same lock scenarios as every system. Uncontended it costs exactly
 * the two atomic read-modify-writes no such lock can avoid: a CAS to take
 * it, and a fetch_sub to release it that also tells whether anybody sleeps
 * (a plain store could not). Contended, waiters sleep at once (no spin).
 * Not robust: a dead owner's waiter would block forever.
 *
 * Shared word: 0 free, 1 held, 2 held and maybe somebody sleeps (the
 * classic three-state futex mutex).
 */
#include "config.h"

#include <linux/futex.h>

#include "../bench.h"

static void *fl_open(void)
{
	atomic_uint *w = shmem(64);

	atomic_store(w, 0);
	return w;
}

static int fl_acquire(void *l)
{
	atomic_uint *w = l;
	unsigned c = 0;

	if (atomic_compare_exchange_strong(w, &c, 1))
		return 0;
	if (c != 2)
		c = atomic_exchange(w, 2);
	while (c != 0) {
		futex_op(w, FUTEX_WAIT, 2, NULL);
		c = atomic_exchange(w, 2);
	}
	return 0;
}

static int fl_release(void *l)
{
	atomic_uint *w = l;

	if (atomic_fetch_sub(w, 1) != 1) {
		atomic_store(w, 0);
		futex_op(w, FUTEX_WAKE, 1, NULL);
	}
	return 0;
}

static void fl_close(void *l)
{
	shmem_free(l, 64);
}

const struct peer peer_floor_lock = {
    .name = "bare futex lock (floor)",
    .wait = "futex",
    .flags = PF_LOCK | PF_FLOOR,
    .lock_open = fl_open,
    .acquire = fl_acquire,
    .release = fl_release,
    .lock_close = fl_close,
};
