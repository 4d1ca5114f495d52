/* SPDX-License-Identifier: MIT */
/* Barrier: arrival indices, the action once per cycle, abort, reset,
 * timeouts and dead parties breaking it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include <lfipc/region.h>
#include <lfipc/sync.h>

#include "common/testhelp.h"

#define REGION_SIZE ((size_t)1 << 20)
#define REAP_MS 30000
#define MS ((int64_t)1000000)
#define CYCLES 50

static lfipc_region *r;

struct shared {
	int hits[CYCLES][8]; /* how often each index came out, per cycle */
	int actions;
};

static struct shared *sh;

static void setup(void)
{
	cr_assert_eq(lfipc_region_create(NULL, REGION_SIZE, 0, &r), 0);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(sh, MAP_FAILED);
}

static void teardown(void)
{
	munmap(sh, sizeof(*sh));
	lfipc_region_close(r);
	r = NULL;
}

TestSuite(barrier, .init = setup, .fini = teardown, .timeout = 60);

Test(barrier, create_checks_parties_and_names)
{
	lfipc_barrier *b;

	cr_assert_eq(lfipc_barrier_create(r, "b", 0, &b), -EINVAL);
	cr_assert_eq(
	    lfipc_barrier_create(r, "b", LFIPC_BARRIER_PARTIES_MAX + 1, &b),
	    -EINVAL);
	cr_assert_eq(lfipc_barrier_create(r, "b", 3, &b), 0);
	cr_assert_eq(lfipc_barrier_parties(b), 3);
	cr_assert_eq(lfipc_barrier_n_waiting(b), 0);
	cr_assert(!lfipc_barrier_broken(b));
	lfipc_barrier_close(b);
	cr_assert_eq(lfipc_barrier_create(r, "b", 3, &b), -EEXIST);
	cr_assert_eq(lfipc_barrier_open(r, "nope", &b), -ENOENT);
	cr_assert_eq(lfipc_barrier_open(r, "b", &b), 0);
	cr_assert_eq(lfipc_barrier_parties(b), 3);
	lfipc_barrier_close(b);
}

Test(barrier, one_party_barrier_trips_at_once_and_runs_its_action)
{
	lfipc_barrier *b;

	cr_assert_eq(lfipc_barrier_create(r, "b", 1, &b), 0);
	lfipc_barrier_set_action(b, NULL, NULL);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(lfipc_barrier_wait(b, LFIPC_NOWAIT), 0);
	lfipc_barrier_close(b);
}

static int count_action(void *arg)
{
	(void)arg;
	__atomic_fetch_add(&sh->actions, 1, __ATOMIC_RELAXED);
	return 0;
}

static int party(void *p)
{
	lfipc_barrier *b = p;

	lfipc_barrier_set_action(b, count_action, NULL);
	for (int c = 0; c < CYCLES; c++) {
		int idx = lfipc_barrier_wait(b, 20000 * MS);

		if (idx < 0 || idx >= 8)
			return 1;
		__atomic_fetch_add(&sh->hits[c][idx], 1, __ATOMIC_RELAXED);
	}
	return 0;
}

static void *party_thread(void *p)
{
	return (void *)(intptr_t)party(p);
}

static void check_hits(int parties)
{
	for (int c = 0; c < CYCLES; c++)
		for (int i = 0; i < parties; i++)
			cr_assert_eq(sh->hits[c][i], 1, "cycle %d index %d: %d",
				     c, i, sh->hits[c][i]);
	cr_assert_eq(sh->actions, CYCLES);
}

Test(barrier, processes_get_each_index_once_per_cycle_and_one_action)
{
	enum { N = 3 };
	lfipc_barrier *b;
	pid_t pids[N];

	cr_assert_eq(lfipc_barrier_create(r, "b", N, &b), 0);
	for (int i = 0; i < N; i++)
		pids[i] = th_fork(party, b);
	cr_assert_eq(th_reap_all(pids, N, REAP_MS), 0);
	check_hits(N);
	cr_assert(!lfipc_barrier_broken(b));
	lfipc_barrier_close(b);
}

Test(barrier, threads_get_each_index_once_per_cycle_and_one_action)
{
	enum { N = 4 };
	lfipc_barrier *b[N];
	pthread_t t[N];
	void *ret;

	cr_assert_eq(lfipc_barrier_create(r, "b", N, &b[0]), 0);
	for (int i = 1; i < N; i++)
		cr_assert_eq(lfipc_barrier_open(r, "b", &b[i]), 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, party_thread, b[i]),
			     0);
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], &ret);
		cr_assert_eq((intptr_t)ret, 0);
	}
	check_hits(N);
	for (int i = 0; i < N; i++)
		lfipc_barrier_close(b[i]);
}

struct tw {
	lfipc_barrier *b;
	int64_t timeout;
	int rc;
};

static void *wait_thread(void *p)
{
	struct tw *a = p;

	a->rc = lfipc_barrier_wait(a->b, a->timeout);
	return NULL;
}

static void wait_for_waiters(lfipc_barrier *b, unsigned n)
{
	int64_t t0 = th_now_ns();

	while (lfipc_barrier_n_waiting(b) < n) {
		cr_assert_lt(th_now_ns() - t0, 10000 * MS);
		usleep(1000);
	}
}

/* Start a thread waiting on b (20 s) and wait until n parties wait. */
static void start_waiter(lfipc_barrier *b, struct tw *a, pthread_t *t,
			 unsigned n)
{
	*a = (struct tw){.b = b, .timeout = 20000 * MS, .rc = 1};
	cr_assert_eq(pthread_create(t, NULL, wait_thread, a), 0);
	wait_for_waiters(b, n);
}

/* SIGKILL the waiting party pid: the waiter thread t must notice within a
 * second (-EPIPE), and the barrier is broken. */
static void kill_and_see_it_broken(lfipc_barrier *b, pid_t pid, pthread_t t,
				   struct tw *a)
{
	int64_t t0 = th_now_ns(), dt;

	kill(pid, SIGKILL);
	pthread_join(t, NULL);
	dt = th_now_ns() - t0;
	cr_assert_eq(a->rc, -EPIPE);
	cr_assert_lt(dt, 1000 * MS, "noticed after %lld ms",
		     (long long)(dt / MS));
	cr_assert_eq(th_reap(pid, REAP_MS), 128 + SIGKILL);
	cr_assert(lfipc_barrier_broken(b));
}

Test(barrier, a_timeout_breaks_it_and_reset_repairs_it)
{
	struct tw a;
	pthread_t t;
	lfipc_barrier *b;
	int64_t t0, dt;

	cr_assert_eq(lfipc_barrier_create(r, "b", 2, &b), 0);
	t0 = th_now_ns();
	cr_assert_eq(lfipc_barrier_wait(b, 50 * MS), -ETIMEDOUT);
	dt = th_now_ns() - t0;
	cr_assert_geq(dt, 50 * MS);
	cr_assert_lt(dt, 2000 * MS, "returned after %lld ns", (long long)dt);
	cr_assert(lfipc_barrier_broken(b));
	cr_assert_eq(lfipc_barrier_n_waiting(b), 0);
	cr_assert_eq(lfipc_barrier_wait(b, 10 * MS), -EPIPE);
	cr_assert_eq(lfipc_barrier_reset(b), 0);
	cr_assert(!lfipc_barrier_broken(b));
	a = (struct tw){.b = b, .timeout = 10000 * MS, .rc = -1};
	cr_assert_eq(pthread_create(&t, NULL, wait_thread, &a), 0);
	int idx = lfipc_barrier_wait(b, 10000 * MS);
	pthread_join(t, NULL);
	cr_assert(idx == 0 || idx == 1);
	cr_assert_eq(a.rc, 1 - idx);
	/* NOWAIT by a party that cannot complete the cycle breaks it too. */
	cr_assert_eq(lfipc_barrier_wait(b, LFIPC_NOWAIT), -EAGAIN);
	cr_assert(lfipc_barrier_broken(b));
	lfipc_barrier_close(b);
}

Test(barrier, abort_releases_waiters_with_epipe_until_reset)
{
	struct tw a;
	pthread_t t;
	lfipc_barrier *b;

	cr_assert_eq(lfipc_barrier_create(r, "b", 3, &b), 0);
	a = (struct tw){.b = b, .timeout = 10000 * MS, .rc = 1};
	cr_assert_eq(pthread_create(&t, NULL, wait_thread, &a), 0);
	wait_for_waiters(b, 1);
	cr_assert_eq(lfipc_barrier_abort(b), 0);
	pthread_join(t, NULL);
	cr_assert_eq(a.rc, -EPIPE);
	cr_assert_eq(lfipc_barrier_wait(b, LFIPC_FOREVER), -EPIPE);
	cr_assert_eq(lfipc_barrier_reset(b), 0);
	cr_assert(!lfipc_barrier_broken(b));
	cr_assert_eq(lfipc_barrier_n_waiting(b), 0);
	lfipc_barrier_close(b);
}

Test(barrier, reset_while_waiting_gives_epipe_and_leaves_it_usable)
{
	struct tw a[2];
	pthread_t t[2];
	lfipc_barrier *b;

	cr_assert_eq(lfipc_barrier_create(r, "b", 3, &b), 0);
	for (int i = 0; i < 2; i++) {
		a[i] = (struct tw){.b = b, .timeout = 10000 * MS, .rc = 1};
		cr_assert_eq(pthread_create(&t[i], NULL, wait_thread, &a[i]),
			     0);
	}
	wait_for_waiters(b, 2);
	cr_assert_eq(lfipc_barrier_reset(b), 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(a[i].rc, -EPIPE);
	}
	cr_assert(!lfipc_barrier_broken(b));
	/* usable: a full cycle of three */
	for (int i = 0; i < 2; i++) {
		a[i] = (struct tw){.b = b, .timeout = 10000 * MS, .rc = -1};
		cr_assert_eq(pthread_create(&t[i], NULL, wait_thread, &a[i]),
			     0);
	}
	wait_for_waiters(b, 2);
	cr_assert_eq(lfipc_barrier_wait(b, 10000 * MS), 2);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		cr_assert(a[i].rc == 0 || a[i].rc == 1, "rc %d", a[i].rc);
	}
	cr_assert_neq(a[0].rc, a[1].rc);
	lfipc_barrier_close(b);
}

static int failing_action(void *arg)
{
	(void)arg;
	return -1;
}

Test(barrier, a_failing_action_breaks_it)
{
	struct tw a;
	pthread_t t;
	lfipc_barrier *b;

	cr_assert_eq(lfipc_barrier_create(r, "b", 2, &b), 0);
	lfipc_barrier_set_action(b, failing_action, NULL);
	a = (struct tw){.b = b, .timeout = 10000 * MS, .rc = 1};
	cr_assert_eq(pthread_create(&t, NULL, wait_thread, &a), 0);
	wait_for_waiters(b, 1);
	cr_assert_eq(lfipc_barrier_wait(b, 10000 * MS), -ECANCELED);
	pthread_join(t, NULL);
	cr_assert_eq(a.rc, -EPIPE);
	cr_assert(lfipc_barrier_broken(b));
	lfipc_barrier_close(b);
}

static int wait_forever(void *p)
{
	lfipc_barrier_wait(p, LFIPC_FOREVER);
	return 3;
}

Test(barrier, a_party_killed_while_waiting_breaks_it_for_the_others)
{
	struct tw a;
	pthread_t t;
	lfipc_barrier *b;
	pid_t pid;

	cr_assert_eq(lfipc_barrier_create(r, "b", 3, &b), 0);
	pid = th_fork(wait_forever, b);
	wait_for_waiters(b, 1);
	start_waiter(b, &a, &t, 2);
	kill_and_see_it_broken(b, pid, t, &a);
	cr_assert_eq(lfipc_barrier_reset(b), 0);
	lfipc_barrier_close(b);
}

Test(barrier, the_last_party_does_not_trip_over_a_dead_one)
{
	lfipc_barrier *b;
	pid_t pid;

	cr_assert_eq(lfipc_barrier_create(r, "b", 2, &b), 0);
	pid = th_fork(wait_forever, b);
	wait_for_waiters(b, 1);
	kill(pid, SIGKILL);
	cr_assert_eq(th_reap(pid, REAP_MS), 128 + SIGKILL);
	cr_assert_eq(lfipc_barrier_wait(b, 10000 * MS), -EPIPE);
	cr_assert(lfipc_barrier_broken(b));
	lfipc_barrier_close(b);
}

/* The latest arrival is watched too: before, each waiter watched only the
 * party that arrived before it, so nobody watched the last one and the
 * first waiter slept until its own timeout
 * (findings/sync/barrier_last_arrival_death.c). */
Test(barrier, the_death_of_the_latest_arrival_is_noticed_by_the_first)
{
	struct tw a;
	pthread_t t;
	lfipc_barrier *b;
	pid_t pid;

	cr_assert_eq(lfipc_barrier_create(r, "b", 3, &b), 0);
	start_waiter(b, &a, &t, 1);
	pid = th_fork(wait_forever, b); /* arrival index 1: the latest */
	wait_for_waiters(b, 2);
	kill_and_see_it_broken(b, pid, t, &a);
	cr_assert_eq(lfipc_barrier_reset(b), 0);
	lfipc_barrier_close(b);
}

static int hang(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return 0;
}

static int complete_with_hanging_action(void *p)
{
	lfipc_barrier *b = p;

	lfipc_barrier_set_action(b, hang, NULL);
	lfipc_barrier_wait(b, LFIPC_FOREVER);
	return 3;
}

/* The completing party runs the action holding the internal guard; killed
 * there, it is noticed by the first waiter (it watches the guard's holder
 * and the latest arrival; before, the first waiter watched nobody), and
 * the next user of the guard finds the barrier broken. */
Test(barrier, a_party_killed_inside_the_action_breaks_it_for_the_others)
{
	struct tw a;
	pthread_t t;
	lfipc_barrier *b;
	pid_t pid;

	cr_assert_eq(lfipc_barrier_create(r, "b", 2, &b), 0);
	start_waiter(b, &a, &t, 1);
	pid = th_fork(complete_with_hanging_action, b);
	wait_for_waiters(b, 2); /* it arrived and is in its action */
	usleep(20000);
	kill_and_see_it_broken(b, pid, t, &a);
	cr_assert_eq(lfipc_barrier_wait(b, 10 * MS), -EPIPE);
	cr_assert_eq(lfipc_barrier_reset(b), 0);
	cr_assert(!lfipc_barrier_broken(b));
	lfipc_barrier_close(b);
}

Test(barrier, region_recover_breaks_a_barrier_with_a_dead_party)
{
	lfipc_barrier *b;
	pid_t pid;

	cr_assert_eq(lfipc_barrier_create(r, "b", 3, &b), 0);
	pid = th_fork(wait_forever, b);
	wait_for_waiters(b, 1);
	kill(pid, SIGKILL);
	cr_assert_eq(th_reap(pid, REAP_MS), 128 + SIGKILL);
	cr_assert_eq(lfipc_region_recover(r), 1);
	cr_assert(lfipc_barrier_broken(b));
	lfipc_barrier_close(b);
}

/* ---- random kills ---------------------------------------------------------
 */

/* Wait cycle after cycle until the barrier breaks; exit 0 when it ended
 * with -EPIPE (the partner died waiting) or -ETIMEDOUT (it died before
 * arriving: only a timeout covers that), 1 otherwise. */
static int cycle_until_broken(void *p)
{
	lfipc_barrier *b = p;

	for (;;) {
		int rc = lfipc_barrier_wait(b, 100 * MS);

		if (rc == -EPIPE || rc == -ETIMEDOUT)
			return 0;
		if (rc < 0)
			return 1;
	}
}

Test(barrier, random_kills_of_a_party_always_break_it_never_hang,
     .timeout = 240)
{
	int rounds = 100 * th_scale();
	uint64_t seed = (uint64_t)getpid() * 131;
	lfipc_barrier *b;
	pid_t a, c;
	int rc;

	cr_assert_eq(lfipc_barrier_create(r, "b", 2, &b), 0);
	for (int i = 0; i < rounds; i++) {
		cr_assert_eq(lfipc_barrier_reset(b), 0);
		a = th_fork(cycle_until_broken, b);
		c = th_fork(cycle_until_broken, b);
		usleep((useconds_t)(th_rand(&seed) % 3000));
		kill(a, SIGKILL);
		rc = th_reap(a, REAP_MS);
		cr_assert(rc == 128 + SIGKILL || rc == 0, "round %d: %d", i,
			  rc);
		/* The survivor must end with -EPIPE or its timeout, never
		 * hang or see anything else. It needs well under a second
		 * of its own (two or three calls of 100 ms at most); the
		 * time it waits for a CPU does not count. On a starved CI
		 * machine (rounds of 0.9 s instead of 0.07) one took more
		 * than 5 s of wall time (round 48: status -1); in a cgroup
		 * with a 5% CPU quota and CPU hogs, rounds took 0.6 s and
		 * a call with a 100 ms timeout returned after 2.7 s, having
		 * run 0.2 ms. */
		rc = th_reap_run(c, 5000);
		cr_assert_eq(rc, 0, "round %d: survivor status %d", i, rc);
		cr_assert(lfipc_barrier_broken(b));
	}
	lfipc_barrier_close(b);
}
