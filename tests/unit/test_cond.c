/* SPDX-License-Identifier: MIT */
/* Condition: exact notify(n), timeouts that keep the lock, RLock depth,
 * wait_for, dead waiters and dead lock holders. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <lfipc/region.h>
#include <lfipc/sync.h>

#include "common/testhelp.h"

#define REGION_SIZE ((size_t)1 << 20)
#define REAP_MS 30000
#define MS ((int64_t)1000000)

static lfipc_region *r;

struct shared {
	int waiting; /* under the lock */
	int woken;   /* under the lock */
	int flag;    /* under the lock */
};

static struct shared *sh;

static void setup(void)
{
	cr_assert_eq(lfipc_region_create(NULL, REGION_SIZE, 0, &r), 0);
	sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(sh, MAP_FAILED);
}

static void teardown(void)
{
	munmap(sh, 4096);
	lfipc_region_close(r);
	r = NULL;
}

TestSuite(cond, .init = setup, .fini = teardown, .timeout = 60);

Test(cond, wait_and_notify_need_the_lock)
{
	lfipc_cond *c;

	cr_assert_eq(lfipc_cond_create(r, "c", NULL, &c), 0);
	cr_assert_eq(lfipc_cond_wait(c, 10 * MS), -EPERM);
	cr_assert_eq(lfipc_cond_notify(c, 1), -EPERM);
	cr_assert_eq(lfipc_cond_notify_all(c), -EPERM);
	cr_assert_eq(lfipc_lock_acquire(lfipc_cond_lock(c), LFIPC_FOREVER), 0);
	cr_assert_eq(lfipc_cond_notify(c, 1), 0); /* nobody waits */
	cr_assert_eq(lfipc_lock_release(lfipc_cond_lock(c)), 0);
	lfipc_cond_close(c);
}

Test(cond, a_timed_out_wait_returns_with_the_rlock_held_at_its_depth)
{
	lfipc_cond *c;
	lfipc_lock *l;
	int64_t t0, dt;

	cr_assert_eq(lfipc_cond_create(r, "c", NULL, &c), 0);
	l = lfipc_cond_lock(c);
	cr_assert(lfipc_lock_is_recursive(l)); /* Python's default */
	for (int i = 0; i < 3; i++)
		cr_assert_eq(lfipc_lock_acquire(l, LFIPC_FOREVER), 0);
	t0 = th_now_ns();
	cr_assert_eq(lfipc_cond_wait(c, 50 * MS), -ETIMEDOUT);
	dt = th_now_ns() - t0;
	cr_assert_geq(dt, 50 * MS);
	cr_assert_lt(dt, 2000 * MS, "returned after %lld ns", (long long)dt);
	cr_assert_eq(lfipc_cond_wait(c, LFIPC_NOWAIT), -EAGAIN);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(lfipc_lock_release(l), 0);
	cr_assert_eq(lfipc_lock_release(l), -EPERM);
	lfipc_cond_close(c);
}

Test(cond, works_over_a_named_lock_and_rejects_bad_arguments)
{
	lfipc_region *r2;
	lfipc_lock *l, *l2;
	lfipc_cond *c, *o;

	cr_assert_eq(lfipc_lock_create(r, "l", false, &l), 0);
	cr_assert_eq(lfipc_cond_create(r, "c", l, &c), 0);
	cr_assert_eq(lfipc_cond_open(r, "c", &o), 0);
	cr_assert(!lfipc_lock_is_recursive(lfipc_cond_lock(o)));
	cr_assert_eq(lfipc_lock_acquire(l, LFIPC_FOREVER), 0);
	cr_assert(lfipc_lock_locked(lfipc_cond_lock(o)));
	cr_assert_eq(lfipc_cond_wait(o, 1 * MS), -ETIMEDOUT);
	cr_assert_eq(lfipc_lock_release(l), 0);
	cr_assert_eq(lfipc_cond_open(r, "l", &o), -EINVAL);
	cr_assert_eq(lfipc_cond_open(r, "nope", &o), -ENOENT);
	cr_assert_eq(lfipc_cond_create(r, "c", l, &o), -EEXIST);
	cr_assert_eq(lfipc_region_create(NULL, REGION_SIZE, 0, &r2), 0);
	cr_assert_eq(lfipc_lock_create(r2, "l", false, &l2), 0);
	cr_assert_eq(lfipc_cond_create(r, "x", l2, &o), -EINVAL);
	lfipc_lock_close(l2);
	lfipc_region_close(r2);
	lfipc_cond_close(c);
	lfipc_lock_close(l);
}

/* A child that waits once (with a long timeout) and records the result. */
static int waiter(void *p)
{
	lfipc_cond *c = p;
	lfipc_lock *l = lfipc_cond_lock(c);
	int rc;

	if (lfipc_lock_acquire(l, LFIPC_FOREVER) != 0)
		return 10;
	sh->waiting++;
	rc = lfipc_cond_wait(c, 20000 * MS);
	if (rc == 0)
		sh->woken++;
	if (!lfipc_lock_locked(l) || lfipc_lock_release(l) != 0)
		return 11;
	return rc == 0 ? 0 : 12;
}

/* Wait until n children are inside lfipc_cond_wait: they counted
 * themselves under the lock, and wait released it. */
static void await_waiters(lfipc_lock *l, int n)
{
	int64_t t0 = th_now_ns();

	for (;;) {
		cr_assert_eq(lfipc_lock_acquire(l, LFIPC_FOREVER), 0);
		if (sh->waiting >= n)
			return; /* lock held */
		lfipc_lock_release(l);
		cr_assert_lt(th_now_ns() - t0, 10000 * MS, "waiters missing");
		usleep(1000);
	}
}

Test(cond, notify_2_of_5_waiting_processes_wakes_exactly_2)
{
	enum { N = 5 };
	lfipc_cond *c;
	lfipc_lock *l;
	pid_t pids[N];

	cr_assert_eq(lfipc_cond_create(r, "c", NULL, &c), 0);
	l = lfipc_cond_lock(c);
	for (int i = 0; i < N; i++)
		pids[i] = th_fork(waiter, c);
	await_waiters(l, N);
	cr_assert_eq(lfipc_cond_notify(c, 2), 2);
	cr_assert_eq(lfipc_lock_release(l), 0);
	usleep(200000); /* give any extra wake-up time to show */
	cr_assert_eq(lfipc_lock_acquire(l, LFIPC_FOREVER), 0);
	cr_assert_eq(sh->woken, 2);
	cr_assert_eq(lfipc_cond_notify_all(c), N - 2);
	cr_assert_eq(lfipc_cond_notify_all(c), 0);
	cr_assert_eq(lfipc_lock_release(l), 0);
	cr_assert_eq(th_reap_all(pids, N, REAP_MS), 0);
	cr_assert_eq(sh->woken, N);
	lfipc_cond_close(c);
}

static int kill_me_waiting(void *p)
{
	lfipc_cond *c = p;

	if (lfipc_lock_acquire(lfipc_cond_lock(c), LFIPC_FOREVER) != 0)
		return 10;
	sh->waiting++;
	lfipc_cond_wait(c, LFIPC_FOREVER);
	return 3;
}

Test(cond, a_waiter_killed_while_waiting_is_skipped_by_notify)
{
	lfipc_cond *c;
	lfipc_lock *l;
	pid_t dead, live;

	cr_assert_eq(lfipc_cond_create(r, "c", NULL, &c), 0);
	l = lfipc_cond_lock(c);
	dead = th_fork(kill_me_waiting, c); /* the oldest waiter */
	await_waiters(l, 1);
	lfipc_lock_release(l);
	live = th_fork(waiter, c);
	await_waiters(l, 2);
	lfipc_lock_release(l);
	kill(dead, SIGKILL);
	cr_assert_eq(th_reap(dead, REAP_MS), 128 + SIGKILL);
	cr_assert_eq(lfipc_lock_acquire(l, LFIPC_FOREVER), 0);
	cr_assert_eq(lfipc_cond_notify(c, 1), 1); /* reaches the live one */
	cr_assert_eq(lfipc_lock_release(l), 0);
	cr_assert_eq(th_reap(live, REAP_MS), 0);
	cr_assert_eq(sh->woken, 1);
	lfipc_cond_close(c);
}

static int hold_lock_forever(void *p)
{
	lfipc_cond *c = p;

	if (lfipc_lock_acquire(lfipc_cond_lock(c), LFIPC_FOREVER) != 0)
		return 10;
	sh->flag = 1;
	for (;;)
		pause();
}

static void *killer(void *p)
{
	pid_t pid = *(pid_t *)p;

	while (!__atomic_load_n(&sh->flag, __ATOMIC_ACQUIRE))
		usleep(1000);
	kill(pid, SIGKILL);
	return NULL;
}

Test(cond, a_waiter_whose_lock_holder_died_gets_eownerdead_with_the_lock)
{
	lfipc_cond *c;
	lfipc_lock *l;
	pthread_t t;
	pid_t pid;
	int rc;

	cr_assert_eq(lfipc_cond_create(r, "c", NULL, &c), 0);
	l = lfipc_cond_lock(c);
	cr_assert_eq(lfipc_lock_acquire(l, LFIPC_FOREVER), 0);
	/* While we wait (lock released) the child takes the lock; a thread
	 * of ours kills it while it holds it. */
	pid = th_fork(hold_lock_forever, c);
	cr_assert_eq(pthread_create(&t, NULL, killer, &pid), 0);
	rc = lfipc_cond_wait(c, 300 * MS);
	cr_assert_eq(rc, -EOWNERDEAD, "rc %d", rc);
	cr_assert(lfipc_lock_locked(l));
	pthread_join(t, NULL);
	cr_assert_eq(th_reap(pid, REAP_MS), 128 + SIGKILL);
	cr_assert_eq(lfipc_lock_release(l), 0);
	cr_assert_eq(lfipc_lock_release(l), -EPERM);
	lfipc_cond_close(c);
}

struct box {
	lfipc_cond *c;
	int items; /* under the lock */
	uint64_t sum;
	int n;
	int bad;
};

static bool has_items(void *p)
{
	return ((struct box *)p)->items > 0;
}

static void *producer(void *p)
{
	struct box *b = p;
	lfipc_lock *l = lfipc_cond_lock(b->c);

	for (int i = 1; i <= b->n; i++) {
		if (lfipc_lock_acquire(l, LFIPC_FOREVER) != 0)
			b->bad++;
		b->items++;
		if (lfipc_cond_notify(b->c, 1) < 0)
			b->bad++;
		lfipc_lock_release(l);
	}
	return NULL;
}

static void *consumer(void *p)
{
	struct box *b = p;
	lfipc_lock *l = lfipc_cond_lock(b->c);

	for (int i = 0; i < b->n; i++) {
		if (lfipc_lock_acquire(l, LFIPC_FOREVER) != 0)
			b->bad++;
		if (lfipc_cond_wait_for(b->c, has_items, b, 20000 * MS) != 0)
			b->bad++;
		b->items--;
		b->sum++;
		lfipc_lock_release(l);
	}
	return NULL;
}

Test(cond, threads_hand_over_every_item_with_wait_for)
{
	enum { NP = 2, NC = 2 };
	struct box b = {0};
	pthread_t t[NP + NC];

	cr_assert_eq(lfipc_cond_create(r, "c", NULL, &b.c), 0);
	b.n = 3000 * th_scale();
	for (int i = 0; i < NC; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, consumer, &b), 0);
	for (int i = 0; i < NP; i++)
		cr_assert_eq(pthread_create(&t[NC + i], NULL, producer, &b), 0);
	for (int i = 0; i < NP + NC; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(b.bad, 0);
	cr_assert_eq(b.items, 0);
	cr_assert_eq(b.sum, (uint64_t)NC * b.n);
	lfipc_cond_close(b.c);
}

static bool never(void *p)
{
	(void)p;
	return false;
}

Test(cond, wait_for_a_false_predicate_times_out_holding_the_lock)
{
	lfipc_cond *c;
	int64_t t0;

	cr_assert_eq(lfipc_cond_create(r, "c", NULL, &c), 0);
	cr_assert_eq(lfipc_cond_wait_for(c, never, NULL, 10 * MS), -EPERM);
	cr_assert_eq(lfipc_lock_acquire(lfipc_cond_lock(c), LFIPC_FOREVER), 0);
	t0 = th_now_ns();
	cr_assert_eq(lfipc_cond_wait_for(c, never, NULL, 60 * MS), -ETIMEDOUT);
	cr_assert_geq(th_now_ns() - t0, 60 * MS);
	cr_assert_eq(lfipc_cond_wait_for(
			 c, has_items, &(struct box){.items = 1}, LFIPC_NOWAIT),
		     0);
	cr_assert_eq(lfipc_lock_release(lfipc_cond_lock(c)), 0);
	lfipc_cond_close(c);
}

/* ---- random kills ---------------------------------------------------------
 */

struct kshared {
	uint64_t counter; /* under the lock */
	int inside;	  /* under the lock */
	int bad;	  /* atomic */
};

static int cond_victim(void *p)
{
	lfipc_cond *c = p;
	lfipc_lock *l = lfipc_cond_lock(c);
	struct kshared *k = (struct kshared *)sh;
	uint64_t seed = (uint64_t)getpid();
	int rc;

	for (;;) {
		rc = lfipc_lock_acquire(l, LFIPC_FOREVER);
		if (rc == -EOWNERDEAD)
			k->inside = 0; /* repair after the dead holder */
		else if (rc != 0)
			return 1;
		if (k->inside++ != 0)
			__atomic_fetch_add(&k->bad, 1, __ATOMIC_RELAXED);
		k->counter++;
		if (th_rand(&seed) & 1) {
			k->inside--;
			rc = lfipc_cond_wait(c, 2 * MS);
			if (rc == -ENOLCK) /* timed out re-taking the lock */
				rc = lfipc_lock_acquire(l, LFIPC_FOREVER);
			if (rc == -EOWNERDEAD)
				k->inside = 0;
			else if (rc != 0 && rc != -ETIMEDOUT)
				return 3;
			if (k->inside++ != 0)
				__atomic_fetch_add(&k->bad, 1,
						   __ATOMIC_RELAXED);
		} else {
			lfipc_cond_notify(c, 1);
		}
		k->inside--;
		if (lfipc_lock_release(l) != 0)
			return 2;
	}
}

Test(cond, random_kills_keep_the_lock_exclusive_and_notify_exact,
     .timeout = 240)
{
	enum { LIVE = 3 };
	int rounds = 200 * th_scale();
	uint64_t seed = (uint64_t)getpid() * 31;
	struct kshared *k = (struct kshared *)sh;
	lfipc_cond *c;
	lfipc_lock *l;
	pid_t v[LIVE], pids[5];
	int rc;

	cr_assert_eq(lfipc_cond_create(r, "c", NULL, &c), 0);
	l = lfipc_cond_lock(c);
	for (int i = 0; i < LIVE; i++)
		v[i] = th_fork(cond_victim, c);
	for (int i = 0; i < rounds; i++) {
		int j = (int)(th_rand(&seed) % LIVE);

		usleep((useconds_t)(th_rand(&seed) % 3000));
		kill(v[j], SIGKILL);
		rc = th_reap(v[j], REAP_MS);
		cr_assert_eq(rc, 128 + SIGKILL, "round %d status %d", i, rc);
		v[j] = th_fork(cond_victim, c);
	}
	for (int i = 0; i < LIVE; i++) {
		kill(v[i], SIGKILL);
		cr_assert_eq(th_reap(v[i], REAP_MS), 128 + SIGKILL);
	}
	cr_assert_eq(k->bad, 0);
	cr_assert_gt(k->counter, 0);
	/* The Condition still wakes exactly n of the live waiters. */
	rc = lfipc_lock_acquire(l, 10000 * MS);
	cr_assert(rc == 0 || rc == -EOWNERDEAD, "rc %d", rc);
	memset(sh, 0, sizeof(*sh));
	cr_assert_eq(lfipc_lock_release(l), 0);
	for (int i = 0; i < 5; i++)
		pids[i] = th_fork(waiter, c);
	await_waiters(l, 5);
	cr_assert_eq(lfipc_cond_notify(c, 2), 2);
	cr_assert_eq(lfipc_lock_release(l), 0);
	usleep(100000);
	cr_assert_eq(lfipc_lock_acquire(l, LFIPC_FOREVER), 0);
	cr_assert_eq(sh->woken, 2);
	cr_assert_eq(lfipc_cond_notify_all(c), 3);
	cr_assert_eq(lfipc_lock_release(l), 0);
	cr_assert_eq(th_reap_all(pids, 5, REAP_MS), 0);
	lfipc_cond_close(c);
}
