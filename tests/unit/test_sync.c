/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <lfipc/region.h>
#include <lfipc/sync.h>

#include "common/testhelp.h"

#define REGION_SIZE ((size_t)1 << 20)
#define REAP_MS 30000

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

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A fresh object name within the test's region. */
static const char *uname(void)
{
	static char buf[32];
	static int n;

	snprintf(buf, sizeof(buf), "lock%d", n++);
	return buf;
}

TestSuite(lock, .init = setup, .fini = teardown, .timeout = 60);

Test(lock, acquire_then_release_returns_zero_and_unlocks)
{
	lfipc_lock *l;

	cr_assert_eq(lfipc_lock_create(r, "l", false, &l), 0);
	cr_assert(!lfipc_lock_locked(l));
	cr_assert_eq(lfipc_lock_acquire(l, LFIPC_FOREVER), 0);
	cr_assert(lfipc_lock_locked(l));
	cr_assert_eq(lfipc_lock_release(l), 0);
	cr_assert(!lfipc_lock_locked(l));
	lfipc_lock_close(l);
}

Test(lock, plain_lock_reacquired_by_its_owner_is_edeadlk)
{
	lfipc_lock *l;

	cr_assert_eq(lfipc_lock_create(r, uname(), false, &l), 0);
	cr_assert_eq(lfipc_lock_acquire(l, LFIPC_FOREVER), 0);
	cr_assert_eq(lfipc_lock_acquire(l, LFIPC_NOWAIT), -EDEADLK);
	cr_assert_eq(lfipc_lock_release(l), 0);
	lfipc_lock_close(l);
}

Test(lock, release_of_an_unheld_lock_is_eperm)
{
	lfipc_lock *l;

	cr_assert_eq(lfipc_lock_create(r, uname(), false, &l), 0);
	cr_assert_eq(lfipc_lock_release(l), -EPERM);
	lfipc_lock_close(l);
}

Test(lock, open_finds_the_same_lock_and_rejects_missing_names)
{
	lfipc_lock *a, *b;

	cr_assert_eq(lfipc_lock_create(r, "x", true, &a), 0);
	cr_assert_eq(lfipc_lock_create(r, "x", true, &b), -EEXIST);
	cr_assert_eq(lfipc_lock_open(r, "nope", &b), -ENOENT);
	cr_assert_eq(lfipc_lock_open(r, "x", &b), 0);
	cr_assert(lfipc_lock_is_recursive(b));
	cr_assert_eq(lfipc_lock_acquire(a, LFIPC_FOREVER), 0);
	cr_assert(lfipc_lock_locked(b));
	cr_assert_eq(lfipc_lock_release(b), 0); /* same thread: allowed */
	lfipc_lock_close(a);
	lfipc_lock_close(b);
}

Test(lock, rlock_nests_and_unlocks_after_as_many_releases)
{
	lfipc_lock *l;

	cr_assert_eq(lfipc_lock_create(r, uname(), true, &l), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(lfipc_lock_acquire(l, LFIPC_NOWAIT), 0);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(lfipc_lock_release(l), 0);
		cr_assert(lfipc_lock_locked(l));
	}
	cr_assert_eq(lfipc_lock_release(l), 0);
	cr_assert(!lfipc_lock_locked(l));
	cr_assert_eq(lfipc_lock_release(l), -EPERM);
	lfipc_lock_close(l);
}

/* The uncontended path skips the held-set lookup only for a thread that
 * holds no lock: with other locks held (some, then more than the inline
 * entries), a re-acquire is still -EDEADLK or a nested level, released
 * in any order. */
Test(lock, reacquire_is_detected_whatever_else_the_thread_holds)
{
	lfipc_lock *l[6], *rl;

	cr_assert_eq(lfipc_lock_create(r, uname(), true, &rl), 0);
	for (int i = 0; i < 6; i++) {
		cr_assert_eq(lfipc_lock_create(r, uname(), false, &l[i]), 0);
		cr_assert_eq(lfipc_lock_acquire(l[i], LFIPC_NOWAIT), 0);
		for (int j = 0; j <= i; j++)
			cr_assert_eq(lfipc_lock_acquire(l[j], LFIPC_NOWAIT),
				     -EDEADLK);
		cr_assert_not(lfipc_lock_owned(rl));
		cr_assert_eq(lfipc_lock_acquire(rl, LFIPC_NOWAIT), 0);
		cr_assert(lfipc_lock_owned(rl));
		cr_assert_eq(lfipc_lock_acquire(rl, LFIPC_NOWAIT), 0);
		cr_assert_eq(lfipc_lock_release(rl), 0);
		cr_assert(lfipc_lock_locked(rl));
		cr_assert(lfipc_lock_owned(rl));
		cr_assert_eq(lfipc_lock_release(rl), 0);
		cr_assert(!lfipc_lock_locked(rl));
		cr_assert_not(lfipc_lock_owned(rl));
		cr_assert_eq(lfipc_lock_release(rl), -EPERM);
	}
	for (int i = 0; i < 6; i++) { /* not in reverse order */
		int k = (i * 5) % 6;

		cr_assert_eq(lfipc_lock_release(l[k]), 0);
		cr_assert(!lfipc_lock_locked(l[k]));
		cr_assert_eq(lfipc_lock_release(l[k]), -EPERM);
	}
	cr_assert_eq(lfipc_lock_acquire(l[0], LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_lock_acquire(l[0], LFIPC_NOWAIT), -EDEADLK);
	cr_assert_eq(lfipc_lock_release(l[0]), 0);
	for (int i = 0; i < 6; i++)
		lfipc_lock_close(l[i]);
	lfipc_lock_close(rl);
}

struct tharg {
	lfipc_lock *l;
	int rc1, rc2;
	bool owned;
	int64_t waited;
};

static void *other_thread(void *p)
{
	struct tharg *a = p;
	int64_t t0;

	a->owned = lfipc_lock_owned(a->l);
	a->rc1 = lfipc_lock_release(a->l);
	t0 = now_ns();
	a->rc2 = lfipc_lock_acquire(a->l, 50 * 1000 * 1000);
	a->waited = now_ns() - t0;
	return NULL;
}

Test(lock, another_thread_cannot_release_and_times_out_acquiring)
{
	struct tharg a = {0};
	pthread_t t;

	cr_assert_eq(lfipc_lock_create(r, uname(), false, &a.l), 0);
	cr_assert_eq(lfipc_lock_acquire(a.l, LFIPC_FOREVER), 0);
	cr_assert_eq(pthread_create(&t, NULL, other_thread, &a), 0);
	pthread_join(t, NULL);
	cr_assert_not(a.owned, "held by the main thread, not by this one");
	cr_assert(lfipc_lock_owned(a.l));
	cr_assert_eq(a.rc1, -EPERM);
	cr_assert_eq(a.rc2, -ETIMEDOUT);
	cr_assert_geq(a.waited, 45 * 1000 * 1000);
	cr_assert_lt(a.waited, 5000LL * 1000 * 1000);
	cr_assert_eq(lfipc_lock_release(a.l), 0);
	lfipc_lock_close(a.l);
}

static int child_try(void *p)
{
	lfipc_lock *l = p;

	if (lfipc_lock_acquire(l, LFIPC_NOWAIT) != -EAGAIN)
		return 1;
	if (lfipc_lock_release(l) != -EPERM)
		return 2;
	if (lfipc_lock_owned(l))
		return 3;
	return 0;
}

Test(lock, another_process_gets_eagain_and_eperm_while_held)
{
	lfipc_lock *l;
	pid_t pid;

	cr_assert_eq(lfipc_lock_create(r, uname(), false, &l), 0);
	cr_assert_eq(lfipc_lock_acquire(l, LFIPC_FOREVER), 0);
	pid = th_fork(child_try, l);
	cr_assert_eq(th_reap(pid, REAP_MS), 0);
	cr_assert_eq(lfipc_lock_release(l), 0);
	lfipc_lock_close(l);
}

/* ---- mutual exclusion ---------------------------------------------------- */

struct shared {
	uint64_t counter; /* plain, protected by the lock */
	int inside;	  /* plain, protected by the lock */
};

struct mx {
	lfipc_lock *l;
	struct shared *sh;
	int iters;
	int bad;
};

static void *mx_thread(void *p)
{
	struct mx *m = p;

	for (int i = 0; i < m->iters; i++) {
		if (lfipc_lock_acquire(m->l, LFIPC_FOREVER) != 0) {
			m->bad++;
			continue;
		}
		if (m->sh->inside++ != 0)
			m->bad++;
		m->sh->counter++;
		m->sh->inside--;
		if (lfipc_lock_release(m->l) != 0)
			m->bad++;
	}
	return NULL;
}

#define MX_THREADS 3

/* ThreadSanitizer cannot start threads in a fork child: there the
 * cross-process test runs one thread per process, and the thread test
 * below covers threads within one process. */
#if defined(__SANITIZE_THREAD__)
#define MX_CHILD_THREADS 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MX_CHILD_THREADS 1
#endif
#endif
#ifndef MX_CHILD_THREADS
#define MX_CHILD_THREADS MX_THREADS
#endif

static int mx_process(void *p)
{
	struct mx *base = p;
	struct mx m[MX_THREADS];
	pthread_t t[MX_THREADS];
	int bad = 0;

	if (MX_CHILD_THREADS == 1) {
		m[0] = *base;
		mx_thread(&m[0]);
		return m[0].bad ? 1 : 0;
	}
	for (int i = 0; i < MX_THREADS; i++) {
		m[i] = *base;
		pthread_create(&t[i], NULL, mx_thread, &m[i]);
	}
	for (int i = 0; i < MX_THREADS; i++) {
		pthread_join(t[i], NULL);
		bad += m[i].bad;
	}
	return bad ? 1 : 0;
}

Test(lock, processes_times_threads_increment_a_plain_counter_exactly)
{
	enum { NPROC = 3 };
	struct mx m = {0};
	pid_t pids[NPROC];

	cr_assert_eq(lfipc_lock_create(r, uname(), false, &m.l), 0);
	/* The plain counter lives in a MAP_SHARED page all children share. */
	m.sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(m.sh, MAP_FAILED);
	m.iters = 2000 * th_scale();
	for (int i = 0; i < NPROC; i++)
		pids[i] = th_fork(mx_process, &m);
	cr_assert_eq(th_reap_all(pids, NPROC, 60000), 0);
	cr_assert_eq(m.sh->counter,
		     (uint64_t)NPROC * MX_CHILD_THREADS * m.iters);
	munmap(m.sh, 4096);
	lfipc_lock_close(m.l);
}

Test(lock, threads_of_one_process_increment_a_plain_counter_exactly)
{
	enum { NT = 4 };
	struct shared sh = {0};
	struct mx m[NT];
	pthread_t t[NT];
	lfipc_lock *l;
	int bad = 0;

	cr_assert_eq(lfipc_lock_create(r, uname(), true, &l), 0);
	for (int i = 0; i < NT; i++) {
		m[i] =
		    (struct mx){.l = l, .sh = &sh, .iters = 5000 * th_scale()};
		cr_assert_eq(pthread_create(&t[i], NULL, mx_thread, &m[i]), 0);
	}
	for (int i = 0; i < NT; i++) {
		pthread_join(t[i], NULL);
		bad += m[i].bad;
	}
	cr_assert_eq(bad, 0);
	cr_assert_eq(sh.counter, (uint64_t)NT * 5000 * th_scale());
	lfipc_lock_close(l);
}

/* ---- owner death --------------------------------------------------------- */

static int hold_and_sleep(void *p)
{
	lfipc_lock *l = p;
	int depth = lfipc_lock_is_recursive(l) ? 3 : 1;

	for (int i = 0; i < depth; i++)
		if (lfipc_lock_acquire(l, LFIPC_FOREVER) != 0)
			return 1;
	for (;;)
		pause();
}

static void owner_death(bool recursive)
{
	lfipc_lock *l;
	pid_t pid;
	int64_t t0;

	cr_assert_eq(lfipc_lock_create(r, uname(), recursive, &l), 0);
	pid = th_fork(hold_and_sleep, l);
	t0 = now_ns();
	while (!lfipc_lock_locked(l) && now_ns() - t0 < 10000000000LL)
		usleep(1000);
	cr_assert(lfipc_lock_locked(l));
	kill(pid, SIGKILL);
	cr_assert_eq(th_reap(pid, REAP_MS), 128 + SIGKILL);
	cr_assert_eq(lfipc_lock_acquire(l, 10000000000LL), -EOWNERDEAD);
	cr_assert_eq(lfipc_lock_release(l), 0);
	cr_assert(!lfipc_lock_locked(l));
	cr_assert_eq(lfipc_lock_acquire(l, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_lock_release(l), 0);
	lfipc_lock_close(l);
}

Test(lock, lock_of_a_killed_owner_is_taken_with_eownerdead)
{
	owner_death(false);
}

Test(lock, rlock_at_depth_3_of_a_killed_owner_is_taken_at_depth_1)
{
	owner_death(true);
}

static int kill_victim(void *p)
{
	struct mx *m = p;

	for (;;) {
		int rc = lfipc_lock_acquire(m->l, LFIPC_FOREVER);

		if (rc != 0 && rc != -EOWNERDEAD)
			return 1;
		if (rc == -EOWNERDEAD)
			m->sh->inside = 0; /* repair after the dead owner */
		if (m->sh->inside++ != 0)
			return 2;
		m->sh->counter++;
		m->sh->inside--;
		lfipc_lock_release(m->l);
	}
}

Test(lock, random_kills_never_break_mutual_exclusion_or_hang, .timeout = 120)
{
	struct mx m = {0};
	int rounds = 200 * th_scale();
	pid_t a, b;
	int sa, sb;
	uint64_t seed = (uint64_t)getpid();

	cr_assert_eq(lfipc_lock_create(r, uname(), false, &m.l), 0);
	m.sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(m.sh, MAP_FAILED);
	a = th_fork(kill_victim, &m);
	for (int i = 0; i < rounds; i++) {
		b = th_fork(kill_victim, &m);
		usleep((useconds_t)(th_rand(&seed) % 2000));
		kill(a, SIGKILL);
		sa = th_reap(a, REAP_MS);
		cr_assert_eq(sa, 128 + SIGKILL, "round %d status %d", i, sa);
		a = b;
	}
	kill(a, SIGKILL);
	sb = th_reap(a, REAP_MS);
	cr_assert_eq(sb, 128 + SIGKILL);
	cr_assert_gt(m.sh->counter, 0);
	/* The lock stays usable. */
	int rc = lfipc_lock_acquire(m.l, 10000000000LL);
	cr_assert(rc == 0 || rc == -EOWNERDEAD, "rc %d", rc);
	cr_assert_eq(lfipc_lock_release(m.l), 0);
	munmap(m.sh, 4096);
	lfipc_lock_close(m.l);
}

/* ---- fast paths make no system call -------------------------------------- */

struct fast {
	lfipc_lock *l, *rl;
	lfipc_sem *s;
	lfipc_event *e;
};

/*
 * R2-1 (tests/hostile/findings/held_set_stale_address.c): thread T holds
 * RLock A; A goes (its region closed, or the lock removed) and a new
 * RLock B sits at the same address, held by the main thread U. T's entry
 * for A must not let it into B, nor release U's hold.
 */
static lfipc_lock *stale_a, *stale_b;
static pthread_barrier_t stale_pb;
static int stale_acq, stale_rel;

static void *stale_thread(void *p)
{
	(void)p;
	cr_assert_eq(lfipc_lock_acquire(stale_a, LFIPC_FOREVER), 0);
	pthread_barrier_wait(&stale_pb); /* T holds A */
	pthread_barrier_wait(&stale_pb); /* A gone, B made, U holds B */
	stale_acq = lfipc_lock_acquire(stale_b, 200 * 1000000LL);
	stale_rel = lfipc_lock_release(stale_b);
	return NULL;
}

/* Run T against B (made and held by the caller); check, release B. */
static void stale_check(pthread_t t)
{
	pthread_barrier_wait(&stale_pb); /* U holds B */
	pthread_join(t, NULL);
	cr_expect_eq(stale_acq, -ETIMEDOUT, "T entered U's lock: %d",
		     stale_acq);
	cr_expect_eq(stale_rel, -EPERM, "T released U's lock: %d", stale_rel);
	cr_assert(lfipc_lock_locked(stale_b));
	cr_assert_eq(lfipc_lock_release(stale_b), 0);
	cr_assert(!lfipc_lock_locked(stale_b));
	pthread_barrier_destroy(&stale_pb);
}

Test(lock, entry_of_a_closed_region_lock_does_not_match_a_new_one)
{
	lfipc_region *ra, *rb;
	pthread_t t;

	cr_assert_eq(lfipc_region_create(NULL, REGION_SIZE, 0, &ra), 0);
	cr_assert_eq(lfipc_lock_create(ra, "l", true, &stale_a), 0);
	pthread_barrier_init(&stale_pb, NULL, 2);
	cr_assert_eq(pthread_create(&t, NULL, stale_thread, NULL), 0);
	pthread_barrier_wait(&stale_pb); /* T holds A */
	lfipc_lock_close(stale_a);
	lfipc_region_close(ra); /* held by T: mmap reuses the hole for rb */
	cr_assert_eq(lfipc_region_create(NULL, REGION_SIZE, 0, &rb), 0);
	cr_assert_eq(lfipc_lock_create(rb, "l", true, &stale_b), 0);
	cr_assert_eq(lfipc_lock_acquire(stale_b, LFIPC_FOREVER), 0);
	stale_check(t);
	lfipc_lock_close(stale_b);
	lfipc_region_close(rb);
}

Test(lock, entry_of_a_removed_lock_does_not_match_one_made_in_its_block)
{
	pthread_t t;

	cr_assert_eq(lfipc_lock_create(r, "l", true, &stale_a), 0);
	pthread_barrier_init(&stale_pb, NULL, 2);
	cr_assert_eq(pthread_create(&t, NULL, stale_thread, NULL), 0);
	pthread_barrier_wait(&stale_pb); /* T holds A */
	lfipc_lock_close(stale_a);
	cr_assert_eq(lfipc_object_remove(r, "l"), 0);
	cr_assert_eq(lfipc_lock_create(r, "m", true, &stale_b), 0);
	cr_assert_eq(lfipc_lock_acquire(stale_b, LFIPC_FOREVER), 0);
	stale_check(t);
	lfipc_lock_close(stale_b);
}

/*
 * A thread that closed a region handle while holding one of its locks,
 * then opened the region again, does not own the lock through the new
 * handle (a new registration, a new token), though the lock memory may
 * sit at the same address with the same generation, where the thread's
 * entry for it still is: its release is -EPERM, and the next acquirer is
 * told that the owner is gone (the closed handle's hold counts as a dead
 * process's, region.h).
 */
Test(lock, a_hold_through_a_closed_region_handle_is_not_the_new_handles)
{
	for (int recursive = 0; recursive < 2; recursive++) {
		lfipc_region *ra, *rb;
		lfipc_lock *a, *b;
		int fd;

		cr_assert_eq(lfipc_region_create(NULL, REGION_SIZE, 0, &ra), 0);
		fd = dup(lfipc_region_fd(ra));
		cr_assert_geq(fd, 0);
		cr_assert_eq(lfipc_lock_create(ra, "l", recursive, &a), 0);
		for (int d = 0; d <= recursive; d++)
			cr_assert_eq(lfipc_lock_acquire(a, LFIPC_NOWAIT), 0);
		lfipc_lock_close(a);
		lfipc_region_close(ra);
		cr_assert_eq(lfipc_region_open_fd(fd, &rb), 0);
		close(fd);
		cr_assert_eq(lfipc_lock_open(rb, "l", &b), 0);
		cr_assert(lfipc_lock_locked(b));
		cr_assert_eq(lfipc_lock_release(b), -EPERM, "recursive %d",
			     recursive);
		cr_assert(lfipc_lock_locked(b));
		cr_assert_eq(lfipc_lock_acquire(b, LFIPC_NOWAIT), -EOWNERDEAD);
		cr_assert_eq(lfipc_lock_release(b), 0);
		cr_assert_not(lfipc_lock_locked(b));
		lfipc_lock_close(b);
		lfipc_region_close(rb);
	}
}

static int fast_child(void *p)
{
	struct fast *f = p;
	/* Kill the process on futex(2) or fcntl(2) (the liveness check):
	 * the uncontended paths must make neither. Other system calls are
	 * allowed, so sanitizer runtimes may do their own work. */
	struct sock_filter flt[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		     offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_futex, 1, 0),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_fcntl, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {sizeof(flt) / sizeof(flt[0]), flt};
	int bad = 0;

	/* Register this fork child first (that makes system calls). */
	if (lfipc_lock_acquire(f->l, LFIPC_NOWAIT) || lfipc_lock_release(f->l))
		return 2;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		return 3;
	for (int i = 0; i < 1000; i++) {
		bad |= lfipc_lock_acquire(f->l, LFIPC_FOREVER);
		bad |= lfipc_lock_release(f->l);
		bad |= lfipc_lock_acquire(f->rl, LFIPC_FOREVER);
		bad |= lfipc_lock_acquire(f->rl, LFIPC_FOREVER);
		bad |= lfipc_lock_release(f->rl);
		bad |= lfipc_lock_release(f->rl);
		bad |= lfipc_sem_acquire(f->s, LFIPC_FOREVER);
		bad |= lfipc_sem_release(f->s);
		bad |= lfipc_event_set(f->e);
		bad |= lfipc_event_wait(f->e, LFIPC_FOREVER);
		bad |= lfipc_event_clear(f->e);
	}
	return bad ? 4 : 0;
}

Test(lock, uncontended_lock_rlock_semaphore_and_event_make_no_futex_call)
{
	struct fast f;
	pid_t pid;

	if (th_tsan())
		cr_skip_test(
		    "the TSan runtime's own futex use trips the filter");
	cr_assert_eq(lfipc_lock_create(r, "fl", false, &f.l), 0);
	cr_assert_eq(lfipc_lock_create(r, "frl", true, &f.rl), 0);
	cr_assert_eq(lfipc_sem_create(r, "fs", 1, false, &f.s), 0);
	cr_assert_eq(lfipc_event_create(r, "fe", &f.e), 0);
	pid = th_fork(fast_child, &f);
	cr_assert_eq(th_reap(pid, REAP_MS), 0);
	lfipc_lock_close(f.l);
	lfipc_lock_close(f.rl);
	lfipc_sem_close(f.s);
	lfipc_event_close(f.e);
}
