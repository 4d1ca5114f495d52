/* SPDX-License-Identifier: MIT */
/*
 * test_pipe_death.c - a send to a Pipe end whose holder died (review 23,
 * finding rev23-F1): refused with -EPIPE at once where the kernel pushes
 * the death (glibc's robust list), instead of accepted into a ring that
 * nobody will read; without the push, once the ring is full.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <unistd.h>

#include <lfipc/pipe.h>
#include <lfipc/region.h>

#include "common/testhelp.h"
#include "internal/death.h"
#include "internal/wait.h"

#define DRING ((size_t)4096)
#define DREGION ((size_t)1 << 20)
#define DREAP_MS 20000

static lfipc_region *dr;
static lfipc_conn *d0, *d1;

static void dsetup(void)
{
	cr_assert_eq(lfipc_region_create(NULL, DREGION, 0, &dr), 0);
	cr_assert_eq(lfipc_pipe_create(dr, "p", DRING, true, &d0, &d1), 0);
}

static void dteardown(void)
{
	lfipc_conn_close(d0);
	lfipc_conn_close(d1);
	d0 = d1 = NULL;
	lfipc_region_close(dr);
	dr = NULL;
	lfipc__wait_force_fallback(false);
}

/* Claims end 1 by a send, then waits to be killed. */
static int child_claim_and_hang(void *arg)
{
	int v = 7;

	(void)arg;
	if (lfipc_conn_send(d1, &v, sizeof(v), LFIPC_FOREVER) != 0)
		return 1;
	for (;;)
		pause();
	return 0;
}

/* Fork the receiver, see its first message (end 1 is its now), kill it.
 * Returns the sends of 64 bytes that succeeded before -EPIPE (at most
 * what fits the ring and one more). */
static int sends_after_the_receivers_death(void)
{
	pid_t pid = th_fork(child_claim_and_hang, NULL);
	char blob[64] = {0};
	size_t len;
	int v = 0, rc, ok = 0;

	cr_assert_gt(pid, 0);
	lfipc_conn_close(d1);
	d1 = NULL;
	cr_assert_eq(lfipc_conn_recv(d0, &v, sizeof(v), &len, 5000000000LL),
		     0);
	cr_assert_eq(v, 7);
	cr_assert_eq(lfipc_conn_send(d0, blob, sizeof(blob), LFIPC_NOWAIT), 0,
		     "a send to the live receiver is taken");
	kill(pid, SIGKILL);
	cr_assert_eq(th_reap(pid, DREAP_MS), 128 + SIGKILL);
	while ((rc = lfipc_conn_send(d0, blob, sizeof(blob), 100000000LL)) ==
		   0 &&
	       ok < 1000)
		ok++;
	cr_assert_eq(rc, -EPIPE, "the send after the death: %d", rc);
	return ok;
}

TestSuite(pipe_death, .init = dsetup, .fini = dteardown, .timeout = 60);

Test(pipe_death, a_send_after_the_receivers_death_is_refused_at_once)
{
	int ok = sends_after_the_receivers_death();

	if (lfipc__death_push_ok())
		cr_assert_eq(ok, 0, "%d sends into a dead receiver's ring", ok);
	else
		cr_assert_leq((size_t)ok * 64, DRING,
			      "without the push: refused once the ring fills");
}

Test(pipe_death, without_the_push_a_send_is_refused_once_the_ring_fills)
{
	int ok;

	lfipc__wait_force_fallback(true);
	ok = sends_after_the_receivers_death();
	/* 64 B messages with their header: the ring's room, then -EPIPE at
	 * the wait for more (the probe), never a block */
	cr_assert_gt(ok, 0, "nothing tells the death without the push");
	cr_assert_leq((size_t)ok * 64, DRING);
}
