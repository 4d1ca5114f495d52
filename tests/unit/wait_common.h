/* SPDX-License-Identifier: MIT */
/*
 * wait_common.h - what tests/unit/test_wait.c (the wait layer),
 * tests/unit/test_death.c (death words and the push) and
 * tests/unit/test_races.c (race windows held open) share: the
 * includes, a region per test, a Lock held by a child process, and a
 * thread that SIGKILLs a child later.
 *
 * White-box: they link the static archive to reach the internal API.
 * Every function is static inline, so each test program uses what it
 * needs. Each test runs in a process of its own: the wait layer's test
 * switches need no reset. With LFIPC_WAIT_FALLBACK=1
 * (tests/unit/fallback.sh) the push tests skip and everything else runs
 * on the fallback path.
 */
#ifndef LFIPC_TESTS_WAIT_COMMON_H
#define LFIPC_TESTS_WAIT_COMMON_H

#include <criterion/criterion.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lfipc/pipe.h>
#include <lfipc/queue.h>
#include <lfipc/region.h>
#include <lfipc/sync.h>

#include "common/testhelp.h"
#include "internal/death.h"
#include "internal/futex.h"
#include "internal/mutex.h"
#include "internal/poll.h"
#include "internal/proc.h"
#include "internal/sync.h"
#include "internal/wait.h"

#define REGION_SIZE ((size_t)1 << 20)
#define REAP_MS 30000
#define MINUTE_NS ((int64_t)60 * 1000000000)

static lfipc_region *r;

/* The owner word of a Lock (offset 8 of its memory, lib/sync.c). */
static inline _Atomic uint32_t *lock_word(lfipc_lock *l)
{
	return (_Atomic uint32_t *)((uint8_t *)lfipc__at(r, lfipc__lock_off(l)) +
				    8);
}

static inline void setup(void)
{
	cr_assert_eq(lfipc_region_create(NULL, REGION_SIZE, 0, &r), 0);
}

static inline void teardown(void)
{
	lfipc_region_close(r);
	r = NULL;
}

static inline int hold_lock_then_wait(void *p)
{
	lfipc_lock *l = p;

	if (lfipc_lock_acquire(l, LFIPC_FOREVER) != 0)
		return 1;
	for (;;)
		pause();
}

static inline pid_t held_by_child(lfipc_lock *l)
{
	pid_t pid = th_fork(hold_lock_then_wait, l);
	int64_t t0 = th_now_ns();

	while (!lfipc_lock_locked(l) && th_now_ns() - t0 < 10000000000LL)
		usleep(1000);
	cr_assert(lfipc_lock_locked(l));
	return pid;
}

/* SIGKILL pid after delay_ms (a thread's body). */
struct killer {
	pid_t pid;
	int delay_ms;
};

static inline void *kill_later(void *p)
{
	struct killer *k = p;

	usleep((useconds_t)k->delay_ms * 1000);
	kill(k->pid, SIGKILL);
	return NULL;
}

#endif /* LFIPC_TESTS_WAIT_COMMON_H */
