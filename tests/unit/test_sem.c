/* SPDX-License-Identifier: MIT */
/* Semaphore and BoundedSemaphore: Python's semantics, cross-process
 * blocking, exact counts under stress, holder tracking across SIGKILL. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include <lfipc/region.h>
#include <lfipc/sync.h>

#include "common/testhelp.h"

#define REGION_SIZE ((size_t)4 << 20)
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

TestSuite(sem, .init = setup, .fini = teardown, .timeout = 120);

Test(sem, acquire_takes_units_until_zero_then_eagain)
{
	lfipc_sem *s;

	cr_assert_eq(lfipc_sem_create(r, "s", 2, false, &s), 0);
	cr_assert_eq(lfipc_sem_value(s), 2);
	cr_assert_eq(lfipc_sem_acquire(s, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_sem_acquire(s, LFIPC_FOREVER), 0);
	cr_assert_eq(lfipc_sem_value(s), 0);
	cr_assert_eq(lfipc_sem_acquire(s, LFIPC_NOWAIT), -EAGAIN);
	cr_assert_eq(lfipc_sem_release(s), 0);
	cr_assert_eq(lfipc_sem_value(s), 1);
	/* An unbounded semaphore may go above its initial value. */
	cr_assert_eq(lfipc_sem_release(s), 0);
	cr_assert_eq(lfipc_sem_release(s), 0);
	cr_assert_eq(lfipc_sem_value(s), 3);
	cr_assert_eq(lfipc_sem_max(s), (unsigned)LFIPC_SEM_VALUE_MAX);
	lfipc_sem_close(s);
}

Test(sem, timed_acquire_times_out_after_about_the_timeout)
{
	lfipc_sem *s;
	int64_t t0, dt;

	cr_assert_eq(lfipc_sem_create(r, "s", 0, false, &s), 0);
	t0 = th_now_ns();
	cr_assert_eq(lfipc_sem_acquire(s, 50 * MS), -ETIMEDOUT);
	dt = th_now_ns() - t0;
	cr_assert_geq(dt, 50 * MS, "returned after %lld ns", (long long)dt);
	cr_assert_lt(dt, 2000 * MS, "returned after %lld ns", (long long)dt);
	/* The failed wait left no announced waiter behind. */
	cr_assert_eq(lfipc_sem_value(s), 0);
	cr_assert_eq(lfipc_sem_release(s), 0);
	cr_assert_eq(lfipc_sem_acquire(s, LFIPC_NOWAIT), 0);
	lfipc_sem_close(s);
}

Test(sem, bounded_release_above_the_initial_value_is_eoverflow)
{
	lfipc_sem *s;

	cr_assert_eq(lfipc_sem_create(r, "b", 2, true, &s), 0);
	cr_assert_eq(lfipc_sem_max(s), 2);
	cr_assert_eq(lfipc_sem_release(s), -EOVERFLOW);
	cr_assert_eq(lfipc_sem_acquire(s, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_sem_release(s), 0);
	cr_assert_eq(lfipc_sem_release(s), -EOVERFLOW);
	cr_assert_eq(lfipc_sem_value(s), 2);
	lfipc_sem_close(s);
}

Test(sem, unbounded_release_at_value_max_is_eoverflow)
{
	lfipc_sem *s;

	cr_assert_eq(lfipc_sem_create(r, "m", LFIPC_SEM_VALUE_MAX, false, &s),
		     0);
	cr_assert_eq(lfipc_sem_release(s), -EOVERFLOW);
	cr_assert_eq(lfipc_sem_value(s), LFIPC_SEM_VALUE_MAX);
	lfipc_sem_close(s);
}

Test(sem, bad_arguments_names_and_types_are_rejected)
{
	lfipc_sem *s;
	lfipc_lock *l;

	cr_assert_eq(lfipc_sem_create(r, "big",
				      (unsigned)LFIPC_SEM_VALUE_MAX + 1, false,
				      &s),
		     -EINVAL);
	cr_assert_eq(lfipc_sem_create_ex(r, "fl", 1, 0x80, &s), -EINVAL);
	cr_assert_eq(lfipc_sem_create(r, "", 1, false, &s), -EINVAL);
	cr_assert_eq(lfipc_sem_create(NULL, "x", 1, false, &s), -EINVAL);
	cr_assert_eq(lfipc_sem_open(r, "nope", &s), -ENOENT);
	cr_assert_eq(lfipc_lock_create(r, "lock", false, &l), 0);
	cr_assert_eq(lfipc_sem_open(r, "lock", &s), -EINVAL);
	cr_assert_eq(lfipc_sem_create(r, "dup", 1, false, &s), 0);
	lfipc_sem_close(s);
	cr_assert_eq(lfipc_sem_create(r, "dup", 1, false, &s), -EEXIST);
	cr_assert_eq(lfipc_sem_acquire(NULL, 0), -EINVAL);
	cr_assert_eq(lfipc_sem_release(NULL), -EINVAL);
	lfipc_lock_close(l);
}

static int child_acquire(void *p)
{
	lfipc_sem *s = p;

	return lfipc_sem_acquire(s, 10000 * MS) == 0 ? 0 : 1;
}

Test(sem, a_release_in_one_process_wakes_an_acquirer_in_another)
{
	lfipc_sem *s, *o;
	pid_t pid;

	cr_assert_eq(lfipc_sem_create(r, "x", 0, false, &s), 0);
	cr_assert_eq(lfipc_sem_open(r, "x", &o), 0);
	pid = th_fork(child_acquire, o);
	usleep(30000); /* let it sleep */
	cr_assert_eq(lfipc_sem_release(s), 0);
	cr_assert_eq(th_reap(pid, REAP_MS), 0);
	cr_assert_eq(lfipc_sem_value(s), 0);
	lfipc_sem_close(o);
	lfipc_sem_close(s);
}

/* ---- exact counts under stress ------------------------------------------- */

struct shared {
	uint64_t counter; /* plain, protected by the semaphore */
	int inside;
};

struct mx {
	lfipc_sem *s;
	struct shared *sh;
	int iters;
	int bad;
};

static void *mx_thread(void *p)
{
	struct mx *m = p;

	for (int i = 0; i < m->iters; i++) {
		if (lfipc_sem_acquire(m->s, LFIPC_FOREVER) != 0) {
			m->bad++;
			continue;
		}
		if (m->sh->inside++ != 0)
			m->bad++;
		m->sh->counter++;
		m->sh->inside--;
		if (lfipc_sem_release(m->s) != 0)
			m->bad++;
	}
	return NULL;
}

static int mx_process(void *p)
{
	struct mx m = *(struct mx *)p;

	mx_thread(&m);
	return m.bad ? 1 : 0;
}

static void mutex_stress(unsigned flags)
{
	enum { NPROC = 3, NT = 3 };
	struct mx m = {0}, tm[NT];
	pthread_t t[NT];
	pid_t pids[NPROC];
	int bad = 0;

	cr_assert_eq(lfipc_sem_create_ex(r, "mx", 1, flags, &m.s), 0);
	m.sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(m.sh, MAP_FAILED);
	m.iters = 2000 * th_scale();
	for (int i = 0; i < NPROC; i++)
		pids[i] = th_fork(mx_process, &m);
	cr_assert_eq(th_reap_all(pids, NPROC, 60000), 0);
	cr_assert_eq(m.sh->counter, (uint64_t)NPROC * m.iters);
	/* then threads of this process */
	for (int i = 0; i < NT; i++) {
		tm[i] = m;
		cr_assert_eq(pthread_create(&t[i], NULL, mx_thread, &tm[i]), 0);
	}
	for (int i = 0; i < NT; i++) {
		pthread_join(t[i], NULL);
		bad += tm[i].bad;
	}
	cr_assert_eq(bad, 0);
	cr_assert_eq(m.sh->counter, (uint64_t)(NPROC + NT) * m.iters);
	cr_assert_eq(lfipc_sem_value(m.s), 1);
	munmap(m.sh, 4096);
	lfipc_sem_close(m.s);
}

Test(sem, as_a_mutex_processes_and_threads_count_exactly)
{
	mutex_stress(0);
}

Test(sem, tracked_as_a_mutex_processes_and_threads_count_exactly)
{
	mutex_stress(LFIPC_SEM_TRACK_HOLDERS);
}

struct pc {
	lfipc_sem *items, *slots;
	uint64_t *sum; /* shared */
	int n;
};

static int producer(void *p)
{
	struct pc *a = p;

	for (int i = 0; i < a->n; i++) {
		if (lfipc_sem_acquire(a->slots, 10000 * MS) != 0)
			return 1;
		if (lfipc_sem_release(a->items) != 0)
			return 2;
	}
	return 0;
}

static int consumer(void *p)
{
	struct pc *a = p;

	for (int i = 0; i < a->n; i++) {
		if (lfipc_sem_acquire(a->items, 10000 * MS) != 0)
			return 1;
		__atomic_fetch_add(a->sum, 1, __ATOMIC_RELAXED);
		if (lfipc_sem_release(a->slots) != 0)
			return 2;
	}
	return 0;
}

Test(sem, bounded_producers_and_consumers_hand_over_every_unit)
{
	enum { P = 2, C = 2 };
	struct pc a;
	pid_t pids[P + C];

	cr_assert_eq(lfipc_sem_create(r, "items", 0, false, &a.items), 0);
	cr_assert_eq(lfipc_sem_create(r, "slots", 4, true, &a.slots), 0);
	a.sum = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(a.sum, MAP_FAILED);
	*a.sum = 0;
	a.n = 5000 * th_scale();
	for (int i = 0; i < P; i++)
		pids[i] = th_fork(producer, &a);
	for (int i = 0; i < C; i++)
		pids[P + i] = th_fork(consumer, &a);
	cr_assert_eq(th_reap_all(pids, P + C, 60000), 0);
	cr_assert_eq(*a.sum, (uint64_t)C * a.n);
	cr_assert_eq(lfipc_sem_value(a.items), 0);
	cr_assert_eq(lfipc_sem_value(a.slots), 4);
	munmap(a.sum, 4096);
	lfipc_sem_close(a.items);
	lfipc_sem_close(a.slots);
}

/* ---- holder tracking ------------------------------------------------------
 */

static int hold_two(void *p)
{
	lfipc_sem *s = p;

	if (lfipc_sem_acquire(s, LFIPC_FOREVER) != 0 ||
	    lfipc_sem_acquire(s, LFIPC_FOREVER) != 0)
		return 1;
	for (;;)
		pause();
}

static pid_t start_holder(lfipc_sem *s, int expect_value)
{
	pid_t pid = th_fork(hold_two, s);
	int64_t t0 = th_now_ns();

	while (lfipc_sem_value(s) != expect_value &&
	       th_now_ns() - t0 < 10000 * MS)
		usleep(1000);
	cr_assert_eq(lfipc_sem_value(s), expect_value);
	return pid;
}

Test(sem, tracked_units_of_a_killed_holder_return_with_eownerdead)
{
	lfipc_sem *s;
	pid_t pid;
	int64_t t0, dt;

	cr_assert_eq(
	    lfipc_sem_create_ex(
		r, "t", 2, LFIPC_SEM_BOUNDED | LFIPC_SEM_TRACK_HOLDERS, &s),
	    0);
	pid = start_holder(s, 0);
	/* A process holding nothing may not release. */
	cr_assert_eq(lfipc_sem_release(s), -EPERM);
	kill(pid, SIGKILL);
	cr_assert_eq(th_reap(pid, REAP_MS), 128 + SIGKILL);
	t0 = th_now_ns();
	cr_assert_eq(lfipc_sem_acquire(s, 10000 * MS), -EOWNERDEAD);
	dt = th_now_ns() - t0;
	cr_assert_lt(dt, 1000 * MS, "took %lld ns", (long long)dt);
	/* Two units came back; each is handed out once with -EOWNERDEAD. */
	cr_assert_eq(lfipc_sem_acquire(s, LFIPC_NOWAIT), -EOWNERDEAD);
	cr_assert_eq(lfipc_sem_acquire(s, LFIPC_NOWAIT), -EAGAIN);
	cr_assert_eq(lfipc_sem_release(s), 0);
	cr_assert_eq(lfipc_sem_release(s), 0);
	cr_assert_eq(lfipc_sem_release(s), -EPERM);
	cr_assert_eq(lfipc_sem_value(s), 2);
	cr_assert_eq(lfipc_sem_acquire(s, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_sem_release(s), 0);
	lfipc_sem_close(s);
}

Test(sem, a_blocked_acquirer_gets_a_dead_holders_unit_within_a_slice)
{
	lfipc_sem *s;
	pid_t pid;
	int64_t t0, dt;

	cr_assert_eq(
	    lfipc_sem_create_ex(r, "t", 2, LFIPC_SEM_TRACK_HOLDERS, &s), 0);
	pid = start_holder(s, 0);
	t0 = th_now_ns();
	kill(pid, SIGKILL); /* not reaped yet: a zombie holds nothing */
	cr_assert_eq(lfipc_sem_acquire(s, 10000 * MS), -EOWNERDEAD);
	dt = th_now_ns() - t0;
	cr_assert_lt(dt, 1000 * MS, "took %lld ns", (long long)dt);
	cr_assert_eq(th_reap(pid, REAP_MS), 128 + SIGKILL);
	lfipc_sem_close(s);
}

Test(sem, region_recover_returns_the_units_of_dead_holders)
{
	lfipc_sem *s;
	pid_t pid;

	cr_assert_eq(
	    lfipc_sem_create_ex(r, "t", 3, LFIPC_SEM_TRACK_HOLDERS, &s), 0);
	pid = start_holder(s, 1);
	kill(pid, SIGKILL);
	cr_assert_eq(th_reap(pid, REAP_MS), 128 + SIGKILL);
	cr_assert_eq(lfipc_region_recover(r), 2);
	cr_assert_eq(lfipc_sem_value(s), 3);
	cr_assert_eq(lfipc_region_recover(r), 0);
	lfipc_sem_close(s);
}

static int churn(void *p)
{
	lfipc_sem *s = p;

	for (;;) {
		int rc = lfipc_sem_acquire(s, LFIPC_FOREVER);

		if (rc != 0 && rc != -EOWNERDEAD)
			return 1;
		if (lfipc_sem_release(s) != 0)
			return 2;
	}
}

Test(sem, random_kills_of_tracked_holders_neither_lose_nor_add_units,
     .timeout = 240)
{
	int rounds = 200 * th_scale();
	uint64_t seed = (uint64_t)getpid() * 7919;
	lfipc_sem *s;
	pid_t a, b;
	int rc, got = 0;

	cr_assert_eq(
	    lfipc_sem_create_ex(
		r, "t", 2, LFIPC_SEM_BOUNDED | LFIPC_SEM_TRACK_HOLDERS, &s),
	    0);
	a = th_fork(churn, s);
	for (int i = 0; i < rounds; i++) {
		b = th_fork(churn, s);
		usleep((useconds_t)(th_rand(&seed) % 2000));
		kill(a, SIGKILL);
		rc = th_reap(a, REAP_MS);
		cr_assert_eq(rc, 128 + SIGKILL, "round %d status %d", i, rc);
		a = b;
	}
	kill(a, SIGKILL);
	cr_assert_eq(th_reap(a, REAP_MS), 128 + SIGKILL);
	lfipc_region_recover(r);
	/* Exactly the two units exist again, no more, no fewer. */
	cr_assert_eq(lfipc_sem_value(s), 2);
	for (int i = 0; i < 2; i++) {
		rc = lfipc_sem_acquire(s, LFIPC_NOWAIT);
		cr_assert(rc == 0 || rc == -EOWNERDEAD, "rc %d", rc);
		got++;
	}
	cr_assert_eq(lfipc_sem_acquire(s, LFIPC_NOWAIT), -EAGAIN);
	cr_assert_eq(got, 2);
	lfipc_sem_close(s);
}

static pid_t target_pid;

/* Registers (and takes a unit) only when its pid maps to the same
 * participant slot as target_pid (slots are tried from pid % 1024, see
 * lib/proc.c); exits 2 otherwise. */
static int take_one_in_same_slot(void *p)
{
	int rc;

	if (getpid() % 1024 != target_pid % 1024)
		return 2;
	rc = lfipc_sem_acquire(p, LFIPC_NOWAIT);
	/* Exits holding the unit: it is this process's until recovered. */
	return rc == 0 || rc == -EOWNERDEAD ? 0 : 1;
}

Test(sem, a_new_process_in_a_dead_holders_slot_does_not_swallow_its_units)
{
	lfipc_sem *s;
	pid_t pid;
	int rc = 2;

	cr_assert_eq(
	    lfipc_sem_create_ex(r, "t", 3, LFIPC_SEM_TRACK_HOLDERS, &s), 0);
	target_pid = start_holder(s, 1);
	kill(target_pid, SIGKILL);
	cr_assert_eq(th_reap(target_pid, REAP_MS), 128 + SIGKILL);
	/* A process that takes over the dead one's participant slot while
	 * a unit is still free must not overwrite its books. */
	for (int i = 0; i < 4096 && rc == 2; i++) {
		pid = th_fork(take_one_in_same_slot, s);
		rc = th_reap(pid, REAP_MS);
	}
	cr_assert_eq(rc, 0);
	cr_assert_geq(lfipc_region_recover(r), 0);
	cr_assert_eq(lfipc_sem_value(s), 3);
	lfipc_sem_close(s);
}
