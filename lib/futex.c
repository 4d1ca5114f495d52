/* SPDX-License-Identifier: MIT */
/* futex.c - futex(2) wrappers and monotonic time helpers. See futex.h. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/syscall.h>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449 /* the same number on every architecture */
#endif
#include <time.h>
#include <unistd.h>

#include "internal/futex.h"

#if defined(__has_include)
#if __has_include(<sanitizer/linux_syscall_hooks.h>)
#include <sanitizer/linux_syscall_hooks.h>
#endif
#endif
/* Newer sanitizer runtimes deliver signals during futex waits only when the
 * call is announced; older ones (clang 14) have no such hook. */
#ifndef __sanitizer_syscall_pre_futex
#define __sanitizer_syscall_pre_futex(a, o, v, t, a2, v3) ((void)0)
#define __sanitizer_syscall_post_futex(r, a, o, v, t, a2, v3) ((void)0)
#endif

int64_t lfipc__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

lfipc_deadline lfipc__slice_end(lfipc_deadline deadline, int64_t slice_ns)
{
	lfipc_deadline end = lfipc__now_ns() + slice_ns; /* slice_ns < 2^40 */

	return end < deadline ? end : deadline;
}

bool lfipc__expired(lfipc_deadline deadline)
{
	return deadline != LFIPC_DL_NEVER && lfipc__now_ns() >= deadline;
}

_Atomic uint64_t lfipc__futex_sleeps;

/* The timespec of an absolute deadline; NULL for LFIPC_DL_NEVER. */
static struct timespec *deadline_ts(lfipc_deadline deadline,
				    struct timespec *ts)
{
	if (deadline == LFIPC_DL_NEVER)
		return NULL;
	ts->tv_sec = deadline / 1000000000;
	ts->tv_nsec = deadline % 1000000000;
	return ts;
}

static int errno_result(void)
{
	switch (errno) {
	case EAGAIN:
		return -EAGAIN;
	case ETIMEDOUT:
		return -ETIMEDOUT;
	case EINTR:
		return -EINTR;
	default:
		return -errno;
	}
}

int lfipc__futex_wait(_Atomic uint32_t *word, uint32_t expected,
		      lfipc_deadline deadline)
{
	struct timespec ts, *tsp;
	long rc;

	if (deadline <= 0)
		return -ETIMEDOUT;
	tsp = deadline_ts(deadline, &ts);
	/* C2: relaxed: a statistic (tests count sleeps), orders nothing. */
	atomic_fetch_add_explicit(&lfipc__futex_sleeps, 1,
				  memory_order_relaxed);
	__sanitizer_syscall_pre_futex(word, FUTEX_WAIT_BITSET, expected, tsp,
				      NULL, FUTEX_BITSET_MATCH_ANY);
	rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET, expected,
		     tsp, NULL, FUTEX_BITSET_MATCH_ANY);
	__sanitizer_syscall_post_futex(rc, word, FUTEX_WAIT_BITSET, expected,
				       tsp, NULL, FUTEX_BITSET_MATCH_ANY);
	return rc == 0 ? 0 : errno_result();
}

int lfipc__futex_waitv(const struct lfipc_futex_wv *v, unsigned n,
		       lfipc_deadline deadline)
{
	struct futex_waitv fv[LFIPC_FUTEX_WV_MAX];
	struct timespec ts, *tsp;
	long rc;

	if (n == 0 || n > LFIPC_FUTEX_WV_MAX)
		return -EINVAL;
	if (deadline <= 0)
		return -ETIMEDOUT;
	for (unsigned i = 0; i < n; i++) {
		/* No FUTEX_PRIVATE_FLAG: matched across processes. */
		fv[i] = (struct futex_waitv){.val = v[i].val,
					     .uaddr = (uintptr_t)v[i].word,
					     .flags = FUTEX_32};
	}
	tsp = deadline_ts(deadline, &ts);
	/* C2: relaxed, as in lfipc__futex_wait. */
	atomic_fetch_add_explicit(&lfipc__futex_sleeps, 1,
				  memory_order_relaxed);
	rc = syscall(SYS_futex_waitv, fv, n, 0, tsp, CLOCK_MONOTONIC);
	return rc >= 0 ? (int)rc : errno_result();
}

int lfipc__futex_wake(_Atomic uint32_t *word, int n)
{
	long rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, n, NULL,
			  NULL, 0);

	return rc < 0 ? -errno : (int)rc;
}

int lfipc__ncpus(void)
{
	static _Atomic int cached;
	/* C1: relaxed: a benign cache; every thread computes the same value. */
	int n = atomic_load_explicit(&cached, memory_order_relaxed);

	if (n > 0)
		return n;
	/* Online CPUs, not this process's affinity: a process pinned to one
	 * CPU still gains from spinning while the owner runs on another. */
	n = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	/* C1: relaxed, pairs with the load above (value only, no payload). */
	atomic_store_explicit(&cached, n, memory_order_relaxed);
	return n;
}
