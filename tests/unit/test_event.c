/* SPDX-License-Identifier: MIT */
/* Event: set, clear, is_set, wait across threads and processes. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <lfipc/region.h>
#include <lfipc/sync.h>

#include "common/testhelp.h"

#define REGION_SIZE ((size_t)1 << 20)
#define REAP_MS 30000
#define MS ((int64_t)1000000)

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

TestSuite(event, .init = setup, .fini = teardown, .timeout = 60);

Test(event, starts_clear_and_follows_set_and_clear)
{
	lfipc_event *e, *o;

	cr_assert_eq(lfipc_event_create(r, "e", &e), 0);
	cr_assert_eq(lfipc_event_open(r, "e", &o), 0);
	cr_assert(!lfipc_event_is_set(e));
	cr_assert_eq(lfipc_event_wait(e, LFIPC_NOWAIT), -EAGAIN);
	cr_assert_eq(lfipc_event_set(e), 0);
	cr_assert(lfipc_event_is_set(o));
	cr_assert_eq(lfipc_event_set(o), 0); /* setting twice is fine */
	cr_assert_eq(lfipc_event_wait(o, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_event_wait(o, 10 * MS), 0);
	cr_assert_eq(lfipc_event_clear(e), 0);
	cr_assert(!lfipc_event_is_set(o));
	lfipc_event_close(o);
	lfipc_event_close(e);
}

Test(event, wait_times_out_after_about_the_timeout)
{
	lfipc_event *e;
	int64_t t0, dt;

	cr_assert_eq(lfipc_event_create(r, "e", &e), 0);
	t0 = th_now_ns();
	cr_assert_eq(lfipc_event_wait(e, 50 * MS), -ETIMEDOUT);
	dt = th_now_ns() - t0;
	cr_assert_geq(dt, 50 * MS);
	cr_assert_lt(dt, 2000 * MS, "returned after %lld ns", (long long)dt);
	lfipc_event_close(e);
}

Test(event, bad_arguments_and_types_are_rejected)
{
	lfipc_event *e;
	lfipc_sem *s;

	cr_assert_eq(lfipc_event_open(r, "nope", &e), -ENOENT);
	cr_assert_eq(lfipc_sem_create(r, "sem", 0, false, &s), 0);
	cr_assert_eq(lfipc_event_open(r, "sem", &e), -EINVAL);
	cr_assert_eq(lfipc_event_create(r, "sem", &e), -EEXIST);
	cr_assert_eq(lfipc_event_wait(NULL, 0), -EINVAL);
	cr_assert_eq(lfipc_event_set(NULL), -EINVAL);
	cr_assert(!lfipc_event_is_set(NULL));
	lfipc_sem_close(s);
}

static int wait_child(void *p)
{
	return lfipc_event_wait(p, 10000 * MS) == 0 ? 0 : 1;
}

Test(event, set_wakes_every_waiting_process)
{
	enum { N = 4 };
	lfipc_event *e;
	pid_t pids[N];

	cr_assert_eq(lfipc_event_create(r, "e", &e), 0);
	for (int i = 0; i < N; i++)
		pids[i] = th_fork(wait_child, e);
	usleep(30000);
	cr_assert_eq(lfipc_event_set(e), 0);
	cr_assert_eq(th_reap_all(pids, N, REAP_MS), 0);
	lfipc_event_close(e);
}

struct twait {
	lfipc_event *e;
	int rc;
	_Atomic pid_t tid;
};

static void *wait_thread(void *p)
{
	struct twait *a = p;

	a->tid = (pid_t)syscall(SYS_gettid);
	a->rc = lfipc_event_wait(a->e, 10000 * MS);
	return NULL;
}

/* Wait (up to 20 s) until thread tid of this process sleeps in a futex
 * system call (futex or futex_waitv): a fixed sleep is no guarantee on a
 * loaded machine. */
static void until_in_futex(_Atomic pid_t *tidp)
{
	struct timespec t0, t;
	char path[64], buf[64];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		pid_t tid = *tidp;
		FILE *f;

		if (tid != 0) {
			snprintf(path, sizeof(path), "/proc/self/task/%d/syscall",
				 (int)tid);
			f = fopen(path, "r");
			if (f) {
				size_t n = fread(buf, 1, sizeof(buf) - 1, f);

				fclose(f);
				buf[n] = 0;
				if (strncmp(buf, "202 ", 4) == 0 ||
				    strncmp(buf, "449 ", 4) == 0)
					return;
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		cr_assert_lt(t.tv_sec - t0.tv_sec, 20, "waiter never slept");
		usleep(1000);
	}
}

Test(event, a_set_cleared_at_once_still_releases_the_waiters)
{
	enum { N = 3 };
	struct twait a[N];
	pthread_t t[N];
	lfipc_event *e;

	cr_assert_eq(lfipc_event_create(r, "e", &e), 0);
	for (int i = 0; i < N; i++) {
		a[i] = (struct twait){.e = e, .rc = 1};
		cr_assert_eq(pthread_create(&t[i], NULL, wait_thread, &a[i]),
			     0);
	}
	for (int i = 0; i < N; i++)
		until_in_futex(&a[i].tid);
	cr_assert_eq(lfipc_event_set(e), 0);
	cr_assert_eq(lfipc_event_clear(e), 0);
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(a[i].rc, 0, "waiter %d: %d", i, a[i].rc);
	}
	cr_assert(!lfipc_event_is_set(e));
	lfipc_event_close(e);
}

static int kill_me_waiting(void *p)
{
	lfipc_event_wait(p, LFIPC_FOREVER);
	return 3;
}

Test(event, a_waiter_killed_while_waiting_does_not_stop_the_others)
{
	lfipc_event *e;
	pid_t dead, live;

	cr_assert_eq(lfipc_event_create(r, "e", &e), 0);
	dead = th_fork(kill_me_waiting, e);
	live = th_fork(wait_child, e);
	usleep(30000);
	kill(dead, SIGKILL);
	cr_assert_eq(th_reap(dead, REAP_MS), 128 + SIGKILL);
	cr_assert_eq(lfipc_event_set(e), 0);
	cr_assert_eq(th_reap(live, REAP_MS), 0);
	lfipc_event_close(e);
}
