/* SPDX-License-Identifier: MIT */
/*
 * test_wait_retry.c - the wait layer's back-off for waits without a waker
 * (lfipc__wait_retry, lib/wait.c; used by the registration gate, the
 * queue's clear and an open racing with a create): NOWAIT and an expired
 * deadline never sleep, an error ends it, a deadline ends it with a
 * bounded number of attempts, and a condition that comes true is seen.
 * Part of the test_wait program (its own suite).
 */
#include "wait_common.h"

#include <criterion/logging.h>

TestSuite(wait_retry, .init = setup, .fini = teardown, .timeout = 60);

/* A condition that comes true at t_ready (0: never), or fails with err on
 * attempt err_at (0: never). Counts the attempts, and those with check. */
struct cond {
	int64_t t_ready;
	int err_at, err;
	int tries, checks;
};

static int try_cond(void *ctx, bool check)
{
	struct cond *c = ctx;

	c->tries++;
	c->checks += check;
	if (c->err_at && c->tries >= c->err_at)
		return c->err;
	return c->t_ready && th_now_ns() >= c->t_ready ? 1 : 0;
}

Test(wait_retry, nowait_makes_one_attempt_and_a_check_without_sleeping)
{
	struct cond c = {0};

	cr_assert_eq(lfipc__wait_retry(try_cond, &c, LFIPC_DL_NOW), -EAGAIN);
	cr_assert_eq(c.tries, 2);
	cr_assert_eq(c.checks, 1, "the last attempt may check liveness");
}

Test(wait_retry, an_expired_deadline_is_a_timeout_without_a_sleep)
{
	struct cond c = {0};

	cr_assert_eq(lfipc__wait_retry(try_cond, &c, LFIPC_DL_PAST),
		     -ETIMEDOUT);
	cr_assert_eq(c.tries, 2);
}

Test(wait_retry, an_error_of_the_attempt_ends_the_wait)
{
	struct cond c = {.err_at = 3, .err = -EPROTO};

	cr_assert_eq(lfipc__wait_retry(try_cond, &c,
				       lfipc__now_ns() + MINUTE_NS),
		     -EPROTO);
	cr_assert_eq(c.tries, 3);
}

/* The sleeps grow from 20 us to 1 ms: waiting 50 ms takes a few dozen
 * checked attempts (each sleep lasts at least what it asked for), not a
 * busy loop's thousands. */
Test(wait_retry, a_deadline_ends_the_wait_after_a_bounded_number_of_attempts)
{
	struct cond c = {0};
	int64_t t = lfipc__now_ns();

	cr_assert_eq(lfipc__wait_retry(try_cond, &c, t + 50000000), -ETIMEDOUT);
	t = lfipc__now_ns() - t;
	cr_assert_geq(t, 50000000, "not before the deadline");
	cr_log_info("%d attempts, %d checked, %.1f ms", c.tries, c.checks,
		    t / 1e6);
	cr_assert_lt(c.checks, 100);
}

Test(wait_retry, a_condition_that_comes_true_ends_the_wait)
{
	int64_t t = lfipc__now_ns();
	struct cond c = {.t_ready = t + 5000000};

	cr_assert_eq(lfipc__wait_retry(try_cond, &c, t + MINUTE_NS), 0);
	cr_assert_geq(lfipc__now_ns() - t, 5000000);
	cr_assert_gt(c.checks, 0, "it slept, and checked before each sleep");
}
