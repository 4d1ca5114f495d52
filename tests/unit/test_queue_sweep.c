/* SPDX-License-Identifier: MIT */
/*
 * test_queue_sweep.c - what the sweeps for dead claimants cost: a slice's
 * sweep (SWEEP_SLOTS slots) and an explicit recovery (every slot) ask the
 * kernel whether a claimant lives (an F_OFD_GETLK each, about a
 * microsecond on this kind of guest) once per claimant and sweep, not once
 * per slot it holds; the caller's own claims cost no question at all. A
 * consumer with thousands of peeked messages (the bridge's sender) made a
 * thousand system calls per sweep before. The probes are counted by the
 * library (lfipc__proc_probes). Part of the test_queue program.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "common/qtest.h"
#include "common/testhelp.h"
#include "internal/proc.h"

TestSuite(queue_sweep, .init = qt_setup, .fini = qt_teardown, .timeout = 120);

#define SW_SLOTS 4096
#define SW_HELD 2048 /* messages peeked and held */

static lfipc_queue *sq;

/* Put n ints and peek them all, holding every one. */
static void put_and_hold(int n)
{
	for (int i = 0; i < n; i += 256)
		cr_assert_eq(put_ints(sq, i, i + 256, LFIPC_NOWAIT), 256);
	for (int i = 0; i < n; i++) {
		const void *m;
		size_t len;

		cr_assert_eq(lfipc_queue_peek(sq, &m, &len, LFIPC_NOWAIT), 0);
	}
}

/* Fruitless gets (every message is held) until more than POLL_CHECK of
 * them made this process sweep at least one slice, then an explicit
 * recovery that looks at every slot: the probes it all took. */
static uint64_t probes_of_sweeps(void)
{
	uint64_t p0 = atomic_load(&lfipc__proc_probes);
	char buf[16];
	size_t len;

	for (int i = 0; i < 2 * 1024 + 1; i++)
		if (lfipc_queue_get(sq, buf, sizeof(buf), &len,
				    LFIPC_NOWAIT) != -EAGAIN)
			return UINT64_MAX;
	if (lfipc_region_recover(qt_r) != 0)
		return UINT64_MAX;
	return atomic_load(&lfipc__proc_probes) - p0;
}

/* A child: sweep another process's held messages; exit with the number
 * of probes (capped), 255 on an error. */
static int sweep_child(void *arg)
{
	uint64_t n = probes_of_sweeps();

	(void)arg;
	return n == UINT64_MAX ? 255 : n > 250 ? 250 : (int)n;
}

Test(queue_sweep, a_live_consumers_held_messages_cost_one_probe_per_sweep)
{
	int rc;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", SW_SLOTS, 16, 0, &sq), 0);
	put_and_hold(SW_HELD);
	/* Two slice sweeps of 1024 slots (2048 gets: each POLL_CHECK-th
	 * fruitless one sweeps) and a recovery of all 4096: half of the
	 * slots are this process's. One probe per sweep that meets them:
	 * at most 3; one per slot would be thousands. */
	rc = th_reap(th_fork(sweep_child, NULL), QT_REAP_MS);
	cr_assert_geq(rc, 1, "no probe at all: the test proves nothing");
	cr_assert_leq(rc, 3, "%d probes for one live claimant", rc);
	lfipc_queue_close(sq);
}

Test(queue_sweep, the_callers_own_held_messages_cost_no_probe)
{
	cr_assert_eq(lfipc_queue_create(qt_r, "q", SW_SLOTS, 16, 0, &sq), 0);
	put_and_hold(SW_HELD);
	cr_assert_eq(probes_of_sweeps(), 0);
	lfipc_queue_close(sq);
}
