/* SPDX-License-Identifier: MIT */
/*
 * test_death.c - death words (lib/death.c) and the push: a partner's
 * death wakes its waiters through the kernel's robust-list mark, for a
 * Lock owner, a queue producer, a pipe writer, a Barrier party, a tracked
 * Semaphore's holder, a wait-for-any; false alarms; and the fallback
 * slices where the push is off. Every child is SIGKILLed for real and
 * reaped with a deadline. With the push, the safety slice is set to a
 * minute, so only the kernel's mark can end the sleep within the test's
 * timeout.
 */
#include "wait_common.h"

TestSuite(death, .init = setup, .fini = teardown, .timeout = 60);

/* ---- death push ----------------------------------------------------------- */

/*
 * SIGKILL the owner while we sleep in acquire: -EOWNERDEAD. With the push
 * and the safety slice at a minute, only the kernel's mark can have woken
 * us before the 20 s timeout; with the fallback, the slices find it.
 */
static void owner_killed_while_we_sleep(bool fallback)
{
	lfipc_lock *l;
	struct killer k;
	pthread_t t;
	uint32_t tok, dw;
	uint64_t before, n;

	if (fallback)
		lfipc__wait_force_fallback(true);
	else
		lfipc__wait_set_safety_slice(MINUTE_NS);
	cr_assert_eq(lfipc_lock_create(r, "dk", false, &l), 0);
	k.pid = held_by_child(l);
	k.delay_ms = 100;
	tok = LFIPC_MUTEX_OWNER(atomic_load(lock_word(l)));
	dw = atomic_load(
	    lfipc__death_word_at(r, (tok >> LFIPC_TOKEN_GEN_BITS) - 1));
	/* the owner armed its word unless the fallback is forced */
	cr_assert_eq((dw & LFIPC_DW_TID) != 0, !fallback, "word %#x", dw);
	(void)lfipc__wait_have_waitv();
	before = atomic_load(&lfipc__futex_sleeps);
	cr_assert_eq(pthread_create(&t, NULL, kill_later, &k), 0);
	cr_assert_eq(lfipc_lock_acquire(l, 20000000000LL), -EOWNERDEAD);
	n = atomic_load(&lfipc__futex_sleeps) - before;
	/* the push: one sleep, ended by the kernel's mark (a second one if
	 * the mark came between the announce and the sleep); the fallback:
	 * a slice series (0.625 ms doubling: >= 6 slices for 100 ms) */
	if (fallback)
		cr_assert_geq(n, 6, "%ju sleeps", (uintmax_t)n);
	else
		cr_assert_leq(n, 2, "%ju sleeps", (uintmax_t)n);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_eq(th_reap(k.pid, REAP_MS), 128 + SIGKILL);
	cr_assert_eq(lfipc_lock_release(l), 0);
	lfipc_lock_close(l);
}

Test(death, a_sigkilled_owner_wakes_its_waiter_through_the_death_word)
{
	if (!lfipc__death_push_ok())
		cr_skip_test("no death push on this system");
	owner_killed_while_we_sleep(false);
}

Test(death, a_sigkilled_owner_is_found_by_the_fallback_slices)
{
	owner_killed_while_we_sleep(true);
}

/*
 * The owner dies between the waiter's look at its armed death word and the
 * waiter's CAS that sets WAITERS: the kernel marks the word but wakes
 * nobody (WAITERS was clear), the CAS fails, and the waiter must sleep on
 * the value it saw (the compare fails at once), not on the mark. Before the
 * fix the failed CAS left the mark in the value slept on: -EOWNERDEAD came
 * only at the safety slice's end (a minute here; the acquire's 20 s
 * timeout first). Found as a TSan-only flake of the barrier's kill tests
 * ("noticed after 1001 ms").
 */
static pid_t race_pid;

static void kill_owner_after_the_peek(enum lfipc_test_point point, void *arg)
{
	_Atomic uint32_t *w = arg;
	int64_t t0 = th_now_ns();

	if (point != LFIPC_TP_DEATH_PEEKED)
		return;
	lfipc__set_test_hook(NULL); /* once */
	kill(race_pid, SIGKILL);
	/* the kernel marks the word at the owner's exit_mm() */
	while (!(atomic_load(w) & LFIPC_DW_DIED) &&
	       th_now_ns() - t0 < 10000 * 1000000LL)
		usleep(100);
}

Test(death, an_owner_killed_just_after_the_waiter_peeked_its_word_is_seen)
{
	lfipc_lock *l;
	int64_t t0, dt;

	if (!lfipc__death_push_ok())
		cr_skip_test("no death push on this system");
	lfipc__wait_set_safety_slice(MINUTE_NS);
	cr_assert_eq(lfipc_lock_create(r, "dr", false, &l), 0);
	race_pid = held_by_child(l);
	lfipc__set_test_hook(kill_owner_after_the_peek);
	t0 = th_now_ns();
	cr_assert_eq(lfipc_lock_acquire(l, 20000000000LL), -EOWNERDEAD);
	dt = th_now_ns() - t0;
	lfipc__set_test_hook(NULL);
	/* the fix: microseconds after the mark; the bug: the full 20 s */
	cr_assert_lt(dt, 10000 * 1000000LL, "took %lld ms",
		     (long long)(dt / 1000000));
	cr_assert_eq(th_reap(race_pid, REAP_MS), 128 + SIGKILL);
	cr_assert_eq(lfipc_lock_release(l), 0);
	lfipc_lock_close(l);
}

/*
 * The same for a queue consumer blocked behind a dead producer's slot and
 * for a pipe reader whose writer dies: the child holds the slot (reserve)
 * or the write end, we sleep, a thread SIGKILLs the child after 100 ms.
 * With the push and the safety slice at a minute, only the kernel's mark
 * can end the sleep before the 20 s timeout; the fallback's slices find it.
 */
static int reserve_then_wait(void *arg)
{
	lfipc_queue *q = arg;
	void *slot;

	if (lfipc_queue_reserve(q, &slot, LFIPC_NOWAIT))
		return 10;
	pause(); /* until killed, the slot WRITING */
	return 0;
}

static int send_then_wait(void *arg)
{
	if (lfipc_conn_send(arg, "h", 1, LFIPC_NOWAIT))
		return 10;
	pause();
	return 0;
}

static void expect_push(uint64_t before, bool fallback)
{
	uint64_t n = atomic_load(&lfipc__futex_sleeps) - before;

	if (fallback)
		cr_assert_geq(n, 6, "%ju sleeps", (uintmax_t)n);
	else
		cr_assert_leq(n, 2, "%ju sleeps", (uintmax_t)n);
}

static void producer_killed_while_we_get(bool fallback)
{
	lfipc_queue *q;
	struct killer k = {0, 100};
	pthread_t t;
	char buf[8];
	size_t len;
	uint64_t before;
	int64_t t0;

	if (fallback)
		lfipc__wait_force_fallback(true);
	else
		lfipc__wait_set_safety_slice(MINUTE_NS);
	cr_assert_eq(lfipc_queue_create(r, "dq", 4, 8, 0, &q), 0);
	k.pid = th_fork(reserve_then_wait, q);
	t0 = th_now_ns();
	while (lfipc_queue_qsize(q) == 0 && th_now_ns() - t0 < 10000000000LL)
		usleep(1000); /* until the child holds the head */
	cr_assert_eq(lfipc_queue_put(q, "2", 1, LFIPC_NOWAIT), 0);
	(void)lfipc__wait_have_waitv();
	before = atomic_load(&lfipc__futex_sleeps);
	cr_assert_eq(pthread_create(&t, NULL, kill_later, &k), 0);
	/* the head is the child's: nothing to get until its death */
	cr_assert_eq(lfipc_queue_get(q, buf, sizeof(buf), &len, 20000000000LL),
		     0);
	cr_assert_eq(buf[0], '2');
	expect_push(before, fallback);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_eq(th_reap(k.pid, REAP_MS), 128 + SIGKILL);
	lfipc_queue_close(q);
}

Test(death, a_sigkilled_producer_wakes_a_consumer_behind_its_slot)
{
	if (!lfipc__death_push_ok())
		cr_skip_test("no death push on this system");
	producer_killed_while_we_get(false);
}

Test(death, a_sigkilled_producer_is_found_by_a_consumers_fallback_slices)
{
	producer_killed_while_we_get(true);
}

static void writer_killed_while_we_recv(bool fallback)
{
	lfipc_conn *c0, *c1;
	struct killer k = {0, 100};
	pthread_t t;
	char buf[8];
	size_t len;
	uint64_t before;

	if (fallback)
		lfipc__wait_force_fallback(true);
	else
		lfipc__wait_set_safety_slice(MINUTE_NS);
	cr_assert_eq(lfipc_pipe_create(r, "dp", 4096, false, &c0, &c1), 0);
	k.pid = th_fork(send_then_wait, c1);
	/* its message: the child holds the write end now */
	cr_assert_eq(lfipc_conn_recv(c0, buf, sizeof(buf), &len,
				     20000000000LL),
		     0);
	(void)lfipc__wait_have_waitv();
	before = atomic_load(&lfipc__futex_sleeps);
	cr_assert_eq(pthread_create(&t, NULL, kill_later, &k), 0);
	cr_assert_eq(lfipc_conn_recv(c0, buf, sizeof(buf), &len,
				     20000000000LL),
		     -EPIPE);
	expect_push(before, fallback);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_eq(th_reap(k.pid, REAP_MS), 128 + SIGKILL);
	lfipc_conn_close(c0);
	lfipc_conn_close(c1);
}

Test(death, a_sigkilled_writer_wakes_its_pipe_reader)
{
	if (!lfipc__death_push_ok())
		cr_skip_test("no death push on this system");
	writer_killed_while_we_recv(false);
}

Test(death, a_sigkilled_writer_is_found_by_the_readers_fallback_slices)
{
	writer_killed_while_we_recv(true);
}

/* Several waiters on one dead owner all learn it: the kernel wakes one
 * sleeper on the death word; the pass-on (and the retiring prober's wake)
 * reach the others. The owner holds three locks, one waiter process per
 * lock, so no release can chain the wake-ups; safety slice a minute. */
struct three {
	lfipc_lock *l[3];
	int i;
};

static int hold_three(void *p)
{
	struct three *t = p;

	for (int i = 0; i < 3; i++)
		if (lfipc_lock_acquire(t->l[i], LFIPC_FOREVER) != 0)
			return 1;
	for (;;)
		pause();
}

static int wait_for_death(void *p)
{
	struct three *t = p;

	return lfipc_lock_acquire(t->l[t->i], 20000000000LL) == -EOWNERDEAD
		   ? 0
		   : 10;
}

Test(death, every_waiter_on_a_dead_owner_learns_it)
{
	struct three t;
	pid_t owner, w[3];
	int64_t t0;

	if (!lfipc__death_push_ok())
		cr_skip_test("no death push on this system");
	lfipc__wait_set_safety_slice(MINUTE_NS);
	for (int i = 0; i < 3; i++) {
		char name[8];

		snprintf(name, sizeof(name), "m%d", i);
		cr_assert_eq(lfipc_lock_create(r, name, false, &t.l[i]), 0);
	}
	owner = th_fork(hold_three, &t);
	t0 = th_now_ns();
	while (!lfipc_lock_locked(t.l[2]) && th_now_ns() - t0 < 10000000000LL)
		usleep(1000);
	cr_assert(lfipc_lock_locked(t.l[2]));
	for (t.i = 0; t.i < 3; t.i++)
		w[t.i] = th_fork(wait_for_death, &t);
	usleep(300000);
	kill(owner, SIGKILL);
	cr_assert_eq(th_reap(owner, REAP_MS), 128 + SIGKILL);
	cr_assert_eq(th_reap_all(w, 3, REAP_MS), 0);
	for (int i = 0; i < 3; i++)
		lfipc_lock_close(t.l[i]);
}

/* ---- false alarms ----------------------------------------------------------- */

struct fa {
	lfipc_lock *l, *l2;
	_Atomic int *step; /* shared memory */
};

/* Start child with two fresh locks; wait until it reports step want.
 * Return: its pid; *tok: the owner token in f->l. */
static pid_t fa_start(struct fa *f, int (*child)(void *), int want,
		      uint32_t *tok)
{
	static int n;
	char a[16], b[16];
	pid_t pid;
	int64_t t0;

	snprintf(a, sizeof(a), "fa%d", n++);
	snprintf(b, sizeof(b), "fa%d", n++);
	cr_assert_eq(lfipc_lock_create(r, a, false, &f->l), 0);
	cr_assert_eq(lfipc_lock_create(r, b, false, &f->l2), 0);
	f->step = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(f->step, MAP_FAILED);
	pid = th_fork(child, f);
	t0 = th_now_ns();
	while (atomic_load(f->step) != want &&
	       th_now_ns() - t0 < 10000000000LL)
		usleep(1000);
	cr_assert_eq(atomic_load(f->step), want);
	*tok = LFIPC_MUTEX_OWNER(atomic_load(lock_word(f->l)));
	cr_assert_neq(*tok, 0);
	return pid;
}

/* The owner is alive and keeps its lock; SIGKILL makes it dead. */
static void fa_alive_then_kill(struct fa *f, pid_t pid, uint32_t tok)
{
	cr_assert(lfipc__token_alive(r, tok));
	cr_assert_eq(lfipc_lock_acquire(f->l, 300000000), -ETIMEDOUT);
	cr_assert(lfipc__token_alive(r, tok));
	kill(pid, SIGKILL);
	cr_assert_eq(th_reap(pid, REAP_MS), 128 + SIGKILL);
	cr_assert_eq(lfipc_lock_acquire(f->l, 10000000000LL), -EOWNERDEAD);
	cr_assert_eq(lfipc_lock_release(f->l), 0);
	munmap(f->step, 4096);
	lfipc_lock_close(f->l);
	lfipc_lock_close(f->l2);
}

static void *register_and_exit(void *p)
{
	struct fa *f = p;

	/* first use of the token in this process: links the node here */
	if (lfipc_lock_acquire(f->l2, LFIPC_FOREVER) != 0 ||
	    lfipc_lock_release(f->l2) != 0)
		return (void *)1;
	return NULL; /* a normal thread exit: the destructor disarms */
}

static int thread_exits_then_hold(void *p)
{
	struct fa *f = p;
	pthread_t t;
	void *res;

	if (pthread_create(&t, NULL, register_and_exit, f) ||
	    pthread_join(t, &res) || res)
		return 1;
	if (lfipc_lock_acquire(f->l, LFIPC_FOREVER) != 0)
		return 2;
	atomic_store(f->step, 1);
	for (;;)
		pause();
}

Test(death, a_thread_that_exits_normally_does_not_make_its_process_look_dead)
{
	struct fa f;
	uint32_t tok;
	pid_t pid;

	if (th_tsan())
		cr_skip_test("TSan: a fork child must not create threads");
	pid = fa_start(&f, thread_exits_then_hold, 1, &tok);
	fa_alive_then_kill(&f, pid, tok);
}

/* The linking thread registers, a second thread takes the lock (the slot
 * becomes multi-threaded), then the linking thread ends by a raw SYS_exit,
 * skipping the destructor: the kernel marks the death word although the
 * process lives. */
static void *register_then_raw_exit(void *p)
{
	struct fa *f = p;

	if (lfipc_lock_acquire(f->l2, LFIPC_FOREVER) != 0 ||
	    lfipc_lock_release(f->l2) != 0)
		return (void *)1;
	atomic_store(f->step, 1);
	while (atomic_load(f->step) != 2)
		usleep(1000);
	syscall(SYS_exit, 0);
	return NULL;
}

static int mt_owner(void *p)
{
	struct fa *f = p;
	pthread_t t;

	if (pthread_create(&t, NULL, register_then_raw_exit, f))
		return 1;
	while (atomic_load(f->step) != 1)
		usleep(1000);
	if (lfipc_lock_acquire(f->l, LFIPC_FOREVER) != 0)
		return 2;
	atomic_store(f->step, 2);
	for (;;)
		pause();
}

Test(death, a_multi_threaded_owner_is_dead_only_when_its_ofd_lock_drops)
{
	struct fa f;
	pid_t pid;
	uint32_t tok;
	_Atomic uint32_t *dw;
	int64_t t0;

	if (th_tsan())
		cr_skip_test("TSan: a fork child must not create threads");
	if (!lfipc__death_push_ok())
		cr_skip_test("no death push on this system");
	pid = fa_start(&f, mt_owner, 2, &tok);
	dw = lfipc__death_word_at(r, (tok >> LFIPC_TOKEN_GEN_BITS) - 1);
	cr_assert_not_null(dw);
	/* the raw exit makes the kernel mark the word */
	t0 = th_now_ns();
	while (!(atomic_load(dw) & LFIPC_DW_DIED) &&
	       th_now_ns() - t0 < 10000000000LL)
		usleep(1000);
	cr_assert(atomic_load(dw) & LFIPC_DW_DIED, "word %#x",
		  atomic_load(dw));
	/* a hint only: the process still holds its OFD lock */
	fa_alive_then_kill(&f, pid, tok);
}

/* wait-for-any over two Locks whose owners are two processes: SIGKILL of
 * the second owner ends the wait on it with -EOWNERDEAD (the push, with
 * the safety slice at a minute; or the fallback slices). */
Test(death, wait_any_over_locks_learns_a_dead_owner)
{
	lfipc_lock *l[2];
	pid_t pid[2];
	uint32_t self;
	struct lfipc_mutex_waiter mw[2];
	struct lfipc_any v[2];
	struct killer k;
	pthread_t t;
	int res = 1;
	lfipc_deadline dl = lfipc__deadline(20000000000LL);

	if (lfipc__death_push_ok())
		lfipc__wait_set_safety_slice(MINUTE_NS);
	cr_assert_eq(lfipc__self(r, &self), 0);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(lfipc_lock_create(r, i ? "a1" : "a0", false, &l[i]),
			     0);
		pid[i] = held_by_child(l[i]);
		mw[i] = (struct lfipc_mutex_waiter){r, lock_word(l[i]), self,
						    true, dl};
		v[i] = (struct lfipc_any){
		    (struct lfipc_wq *)((uint8_t *)lock_word(l[i]) + 16),
		    lfipc__mutex_ready, &mw[i]};
	}
	k = (struct killer){pid[1], 100};
	cr_assert_eq(pthread_create(&t, NULL, kill_later, &k), 0);
	cr_assert_eq(lfipc__wait_any(r, v, 2, dl, 0, &res), 1);
	cr_assert_eq(res, -EOWNERDEAD);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_eq(th_reap(pid[1], REAP_MS), 128 + SIGKILL);
	kill(pid[0], SIGKILL);
	cr_assert_eq(th_reap(pid[0], REAP_MS), 128 + SIGKILL);
	for (int i = 0; i < 2; i++)
		lfipc_lock_close(l[i]);
}

/* ---- Barrier parties and Semaphore holders ---------------------------------- */

/* Until the barrier counts n waiting parties (10 s at most). */
static void await_waiting(lfipc_barrier *b, unsigned n)
{
	int64_t t0 = th_now_ns();

	while (lfipc_barrier_n_waiting(b) < n &&
	       th_now_ns() - t0 < 10000000000LL)
		usleep(1000);
}

/* SIGKILL pid once the barrier counts n waiting parties. */
struct bkiller {
	lfipc_barrier *b;
	pid_t pid;
	unsigned n;
};

static void *kill_when_waiting(void *p)
{
	struct bkiller *k = p;

	await_waiting(k->b, k->n);
	usleep(50000); /* let the watcher sleep again, watching */
	kill(k->pid, SIGKILL);
	return NULL;
}

static int barrier_party(void *p)
{
	/* never returns normally: the barrier of three never trips */
	return lfipc_barrier_wait(p, LFIPC_FOREVER) < 0 ? 10 : 11;
}

static int arrive_after_one(void *p)
{
	await_waiting(p, 1);
	return barrier_party(p);
}

/*
 * A Barrier of three: a child party and we wait, the child is SIGKILLed,
 * we get -EPIPE. child_first: the child arrives first (we, index 1, watch
 * index 0); else we arrive first (index 0) and the child's arrival wakes
 * us to watch it, the latest arrival. With the push and the safety slice
 * at a minute only the kernel's mark can end our sleep before the 20 s
 * timeout; the fallback's slices find it too.
 */
static void party_killed_while_we_wait(bool child_first, bool fallback)
{
	lfipc_barrier *b;
	struct bkiller k;
	pthread_t t;
	uint64_t before, n;

	if (fallback)
		lfipc__wait_force_fallback(true);
	else
		lfipc__wait_set_safety_slice(MINUTE_NS);
	cr_assert_eq(lfipc_barrier_create(r, child_first ? "db1" : "db0", 3, &b),
		     0);
	k = (struct bkiller){b, 0, 2};
	if (child_first) {
		k.pid = th_fork(barrier_party, b);
		await_waiting(b, 1);
	} else {
		k.pid = th_fork(arrive_after_one, b);
	}
	(void)lfipc__wait_have_waitv();
	before = atomic_load(&lfipc__futex_sleeps);
	cr_assert_eq(pthread_create(&t, NULL, kill_when_waiting, &k), 0);
	cr_assert_eq(lfipc_barrier_wait(b, 20000000000LL), -EPIPE);
	n = atomic_load(&lfipc__futex_sleeps) - before;
	/* the push: a sleep until the child's arrival (child_first false),
	 * one until its death, and one more if a wake-up came between the
	 * announce and the sleep; 10 ms slices (before the wait layer) made
	 * at least 5 in the 50 ms the killer waits after the arrival */
	if (!fallback)
		cr_assert_leq(n, 3, "%ju sleeps", (uintmax_t)n);
	cr_assert(lfipc_barrier_broken(b));
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_eq(th_reap(k.pid, REAP_MS), 128 + SIGKILL);
	lfipc_barrier_close(b);
}

Test(death, a_sigkilled_barrier_party_wakes_the_party_that_watches_it)
{
	if (!lfipc__death_push_ok())
		cr_skip_test("no death push on this system");
	party_killed_while_we_wait(true, false);
}

Test(death, the_first_barrier_party_watches_the_latest_arrival)
{
	if (!lfipc__death_push_ok())
		cr_skip_test("no death push on this system");
	party_killed_while_we_wait(false, false);
}

Test(death, a_sigkilled_barrier_party_is_found_by_the_fallback_slices)
{
	party_killed_while_we_wait(true, true);
	party_killed_while_we_wait(false, true);
}

static int take_unit_then_wait(void *p)
{
	if (lfipc_sem_acquire(p, LFIPC_NOWAIT) != 0)
		return 10;
	pause();
	return 0;
}

/* A tracked Semaphore of one unit held by a child: our acquire sleeps
 * until the child is SIGKILLed, then takes its unit with -EOWNERDEAD
 * (pushed: the holder is our partner; or by the fallback slices). */
static void holder_killed_while_we_acquire(bool fallback)
{
	lfipc_sem *s;
	struct killer k = {0, 100};
	pthread_t t;
	uint64_t before;
	int64_t t0;

	if (fallback)
		lfipc__wait_force_fallback(true);
	else
		lfipc__wait_set_safety_slice(MINUTE_NS);
	cr_assert_eq(
	    lfipc_sem_create_ex(r, "ds", 1, LFIPC_SEM_TRACK_HOLDERS, &s), 0);
	k.pid = th_fork(take_unit_then_wait, s);
	t0 = th_now_ns();
	while (lfipc_sem_value(s) != 0 && th_now_ns() - t0 < 10000000000LL)
		usleep(1000);
	cr_assert_eq(lfipc_sem_value(s), 0);
	(void)lfipc__wait_have_waitv();
	before = atomic_load(&lfipc__futex_sleeps);
	cr_assert_eq(pthread_create(&t, NULL, kill_later, &k), 0);
	cr_assert_eq(lfipc_sem_acquire(s, 20000000000LL), -EOWNERDEAD);
	expect_push(before, fallback);
	cr_assert_eq(lfipc_sem_value(s), 0);
	cr_assert_eq(lfipc_sem_release(s), 0, "the unit is ours now");
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_eq(th_reap(k.pid, REAP_MS), 128 + SIGKILL);
	lfipc_sem_close(s);
}

Test(death, a_sigkilled_semaphore_holder_wakes_a_tracked_acquirer)
{
	if (!lfipc__death_push_ok())
		cr_skip_test("no death push on this system");
	holder_killed_while_we_acquire(false);
}

Test(death, a_sigkilled_semaphore_holder_is_found_by_the_fallback_slices)
{
	holder_killed_while_we_acquire(true);
}

/*
 * The slot rule keeps the push for new participants of a busy region: once
 * the slots with a death word are all taken by dead participants, a
 * registrant reuses the oldest of them rather than a free slot without a
 * death word (before, 16 fork-register-SIGKILL rounds in a 1 MiB region
 * left every later participant on the fallback slices).
 */
static int register_then_die(void *arg)
{
	uint32_t tok;

	(void)arg;
	if (lfipc__self(r, &tok) != 0)
		return 10;
	raise(SIGKILL);
	return 11;
}

static int register_and_report_slot(void *arg)
{
	uint32_t tok;

	(void)arg;
	if (lfipc__self(r, &tok) != 0)
		return 255;
	return (int)((tok >> LFIPC_TOKEN_GEN_BITS) - 1);
}

Test(death, a_registrant_reuses_a_dead_slot_that_has_a_death_word)
{
	uint32_t ds = r->death_slots, i;
	int slot;

	if (!lfipc__death_push_ok())
		cr_skip_test("no death push on this system");
	cr_assert_lt(ds, 200u);
	/* fill every death-word slot (ours is one) with a dead participant */
	for (i = 0; i < ds; i++)
		cr_assert_eq(th_reap(th_fork(register_then_die, NULL), REAP_MS),
			     128 + SIGKILL);
	slot = th_reap(th_fork(register_and_report_slot, NULL), REAP_MS);
	cr_assert_lt((uint32_t)slot, ds, "slot %d of %u", slot, ds);
	cr_assert_neq(lfipc__death_word_at(r, (uint32_t)slot), NULL);
}

/*
 * A lock word with only bits 30..31 set names no owner (found by make
 * fuzz: the region lock's top byte rewritten). There is no death word to
 * sleep on and no verdict to wait for: the first waiter takes the word
 * over at once. Before, it slept a whole safety slice (1 s) first; with
 * the slice at a minute, both calls here slept to their deadline (and
 * took the word only then): no sleep at all is allowed.
 */
Test(death, a_lock_word_that_names_no_owner_is_taken_over_at_once)
{
	lfipc_region_info info;
	lfipc_deadline old;
	lfipc_lock *l;
	uint64_t before;

	lfipc__wait_set_safety_slice(MINUTE_NS);
	cr_assert_eq(lfipc_lock_create(r, "noowner", false, &l), 0);
	atomic_store(lock_word(l), UINT32_C(0x40000000));
	before = atomic_load(&lfipc__futex_sleeps);
	cr_assert_eq(lfipc_lock_acquire(l, 5000000000LL), -EOWNERDEAD);
	cr_assert_eq(atomic_load(&lfipc__futex_sleeps), before);
	cr_assert_eq(lfipc_lock_release(l), 0);
	lfipc_lock_close(l);

	atomic_store(&lfipc__hdr(r)->lock, UINT32_C(0xc0000000));
	old = lfipc__region_lock_deadline(lfipc__deadline(5000000000LL));
	cr_assert_eq(lfipc_region_stats(r, &info), 0);
	lfipc__region_lock_deadline(old);
	cr_assert_eq(atomic_load(&lfipc__futex_sleeps), before);
	cr_assert_eq(atomic_load(&lfipc__hdr(r)->lock), 0);
}

/* ---- benign and hostile moves in the peek-CAS window --------------------- */

/*
 * What the waiter's CAS failure costs now that it sleeps on the value it
 * peeked: a failure makes the futex compare fail at once and the wait
 * loop go round again. Counted with the hook (one call per armed partner
 * per round). The owner lives; the acquire times out after 300 ms.
 */
static _Atomic unsigned peeks;
static _Atomic int peek_mode; /* 1: set WAITERS once, 2: flip at each peek */

static void peek_hook(enum lfipc_test_point point, void *arg)
{
	_Atomic uint32_t *w = arg;
	uint32_t v;

	if (point != LFIPC_TP_DEATH_PEEKED)
		return;
	v = atomic_load(w);
	if (atomic_fetch_add(&peeks, 1) == 0 && atomic_load(&peek_mode) == 1)
		atomic_fetch_or(w, LFIPC_DW_WAITERS); /* another waiter */
	else if (atomic_load(&peek_mode) == 2 && !(v & LFIPC_DW_DIED))
		atomic_store(w, (v ^ 2u) & ~LFIPC_DW_WAITERS); /* hostile */
}

/* mode 3: a peer (here a thread) that rewrites the word without end */
static _Atomic uint32_t *flip_w;
static _Atomic int flip_stop;
static pthread_t flipper;

static void *flip_on(void *p)
{
	uint32_t v = atomic_load(flip_w) & ~LFIPC_DW_WAITERS;

	(void)p;
	/* through ever new armed values: the futex compare never matches
	 * a value the waiter saw */
	for (uint32_t i = 1; !atomic_load(&flip_stop); i++)
		atomic_store(flip_w, (v & ~LFIPC_DW_TID) |
					 (((v + i) & LFIPC_DW_TID) ?: 1u));
	return NULL;
}

static unsigned rounds_in_a_timed_out_acquire(int mode, int64_t *dt)
{
	lfipc_lock *l;
	pid_t pid;
	uint32_t tok, dw;
	_Atomic uint32_t *w;
	int64_t t0;

	if (!lfipc__death_push_ok() || !lfipc__wait_have_waitv())
		cr_skip_test("no death push / futex_waitv on this system");
	lfipc__wait_set_safety_slice(MINUTE_NS);
	cr_assert_eq(lfipc_lock_create(r, "rv", false, &l), 0);
	pid = held_by_child(l);
	tok = LFIPC_MUTEX_OWNER(atomic_load(lock_word(l)));
	w = lfipc__death_word_at(r, (tok >> LFIPC_TOKEN_GEN_BITS) - 1);
	dw = atomic_load(w);
	atomic_store(&peeks, 0);
	atomic_store(&peek_mode, mode);
	lfipc__wait_set_spin_budget(0);
	lfipc__set_test_hook(peek_hook);
	flip_w = w;
	atomic_store(&flip_stop, 0);
	if (mode == 3)
		cr_assert_eq(pthread_create(&flipper, NULL, flip_on, NULL), 0);
	if (mode == 3)
		usleep(10000); /* it runs */
	t0 = th_now_ns();
	cr_assert_eq(lfipc_lock_acquire(l, 300 * 1000000LL), -ETIMEDOUT);
	*dt = th_now_ns() - t0;
	atomic_store(&flip_stop, 1);
	if (mode == 3)
		pthread_join(flipper, NULL);
	lfipc__set_test_hook(NULL);
	atomic_store(w, dw); /* so the kernel marks it at the kill */
	kill(pid, SIGKILL);
	cr_assert_eq(th_reap(pid, REAP_MS), 128 + SIGKILL);
	lfipc_lock_close(l);
	return atomic_load(&peeks);
}

Test(death, another_waiter_setting_waiters_in_the_window_costs_no_round)
{
	int64_t dt;
	unsigned n = rounds_in_a_timed_out_acquire(1, &dt);

	/* it sleeps on the word as the other waiter left it, as when it
	 * sees WAITERS set at its peek (it took 2 before) */
	cr_assert_eq(n, 1, "%u rounds", n);
}

/* The acquire went round (n times), yet left at its 300 ms deadline. */
static void keeps_the_deadline(int mode)
{
	int64_t dt;
	unsigned n = rounds_in_a_timed_out_acquire(mode, &dt);

	cr_assert_geq(n, 1);
	cr_assert_lt(dt, 2000 * 1000000LL, "%%u rounds, %%lld ms", n,
		     (long long)(dt / 1000000));
}

Test(death, a_word_rewritten_in_every_window_keeps_the_deadline)
{
	keeps_the_deadline(2);
}

Test(death, a_word_rewritten_without_end_keeps_the_deadline)
{
	keeps_the_deadline(3);
}

/* The waiter that slept on the word as another waiter's CAS left it is
 * woken by the kernel's mark when the owner dies (the safety slice is a
 * minute: only the push can end the sleep in time). */
Test(death, a_waiter_sleeping_on_another_waiters_flag_learns_the_death)
{
	lfipc_lock *l;
	struct killer k;
	pthread_t t;
	int64_t t0, dt;

	if (!lfipc__death_push_ok() || !lfipc__wait_have_waitv())
		cr_skip_test("no death push / futex_waitv on this system");
	lfipc__wait_set_safety_slice(MINUTE_NS);
	cr_assert_eq(lfipc_lock_create(r, "rw", false, &l), 0);
	k.pid = held_by_child(l);
	k.delay_ms = 100;
	atomic_store(&peeks, 0);
	atomic_store(&peek_mode, 1);
	lfipc__wait_set_spin_budget(0);
	lfipc__set_test_hook(peek_hook);
	cr_assert_eq(pthread_create(&t, NULL, kill_later, &k), 0);
	t0 = th_now_ns();
	cr_assert_eq(lfipc_lock_acquire(l, 20000 * 1000000LL), -EOWNERDEAD);
	dt = th_now_ns() - t0;
	lfipc__set_test_hook(NULL);
	pthread_join(t, NULL);
	cr_assert_geq(atomic_load(&peeks), 1);
	cr_assert_lt(dt, 10000 * 1000000LL, "took %lld ms",
		     (long long)(dt / 1000000));
	cr_assert_eq(th_reap(k.pid, REAP_MS), 128 + SIGKILL);
	cr_assert_eq(lfipc_lock_release(l), 0);
	lfipc_lock_close(l);
}
