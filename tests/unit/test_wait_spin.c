/* SPDX-License-Identifier: MIT */
/*
 * test_wait_spin.c - the wait layer's spin policy and its bounds (part of
 * the test_wait program; lib/wait.c): probes that restore spinning, a
 * single producer's run wait (lib/queue_putget.c) within its timeout,
 * and partners that keep dying, which may neither hold a waiter past its
 * deadline nor keep a real death from waking it.
 */
#include "wait_common.h"

#include <lfipc/queue.h>

TestSuite(wait_spin, .init = setup, .fini = teardown, .timeout = 60);

/* A partner that answers late: ready on its k-th look (k > 0), or ns
 * after t0 (a partner waking from a futex sleep). */
struct late {
	int calls, k;
	int64_t t0, ns;
	_Atomic uint32_t word;
};

static int ready_late(void *p, struct lfipc_sleep *s, bool check)
{
	struct late *a = p;

	(void)check;
	if (a->k > 0 ? ++a->calls >= a->k : th_now_ns() - a->t0 >= a->ns)
		return 1;
	s->word = &a->word;
	s->val = 0;
	return 0;
}

/* Waits of up to 1 ms on such a partner, each right after the budget was
 * set to 0 (so the wait probes), until one restores the whole budget or
 * rounds ran out; a preemption in a probe drops the budget to 0, so a few
 * rounds are needed. Return: the budget restored. */
static bool probes_restore(int rounds, int k, int64_t ns)
{
	struct lfipc_wq wq;

	for (int round = 0; round < rounds; round++) {
		struct late a = {0, k, th_now_ns(), ns, 0};

		memset(&wq, 0, sizeof(wq));
		lfipc__wait_set_spin_budget(0);
		(void)lfipc__wait_until(NULL, &wq, ready_late, &a,
					lfipc__deadline(1000000), 0);
		if (lfipc__wait_spin_budget() == LFIPC_SPIN_NS)
			return true;
	}
	return false;
}

/* A thread that stopped spinning probes every LFIPC_SPIN_PROBE-th wait;
 * the probe must be long enough for a partner that answers after more
 * than LFIPC_SPIN_MIN_NS (a pipe's round trip), or the thread sleeps at
 * every wait for good (the Pipe's ping-pong went from 2 to 24 us so). A
 * partner ready on the 100th look (more than the first 64 pauses, after
 * which a 250 ns probe had given up) restores the whole budget. The
 * count of calls, not a time, decides. */
Test(wait_spin, a_probe_that_meets_a_slow_partner_restores_spinning)
{
	if (th_tsan())
		return; /* TSan slows the probe's calls past its budget */
	cr_assert(probes_restore(20, 100, 0), "budget %lld after the probes",
		  (long long)lfipc__wait_spin_budget());
}

/* Two threads that hand messages to each other and have both stopped
 * spinning find each other asleep at every wait; only a probe that
 * outlasts the partner's wake-up from a futex sleep (12 to 35 us on this
 * VM) gets them spinning again. With a 4 us probe the lfipc ping-pong
 * stayed at 50 us a round trip (a sleep each way) instead of 0.25 in the
 * runs where it had once stopped spinning. A partner that answers 45 us
 * into the wait must restore the budget at a probe. */
Test(wait_spin, a_probe_outlasts_a_partner_waking_from_a_sleep)
{
	if (th_tsan())
		return; /* TSan's calls are slow enough to look like preemption */
	cr_assert(probes_restore(64, 0, 45000), "budget %lld after the probes",
		  (long long)lfipc__wait_spin_budget());
}

/* A single producer that finds its next slot of the previous lap waits
 * for a run of free slots (sp_await_run(), lib/queue_putget.c), spinning
 * up to the thread's spin budget. After a clear the slots of the previous
 * lap are discarded, not FREE: the run never comes and the put must not
 * wait for it (it spun the whole budget at every put of the lap). With the
 * budget set to ten minutes, the lap of puts after a clear must complete
 * well within the reaping deadline, and the messages come out in order. */
struct clr_put {
	lfipc_queue *q;
	atomic_int done;
	int rc;
};

static void *puts_after_clear(void *arg)
{
	struct clr_put *c = arg;

	lfipc__wait_set_spin_budget(10 * MINUTE_NS);
	for (uint64_t v = 0; v < 256; v++)
		if ((c->rc = lfipc_queue_put(c->q, &v, 8, LFIPC_FOREVER)))
			break;
	atomic_store(&c->done, 1);
	return NULL;
}

Test(wait_spin, a_single_producer_does_not_wait_for_a_run_after_a_clear)
{
	struct clr_put c = {.rc = 1};
	pthread_t t;
	uint64_t v;
	size_t len;

	cr_assert_eq(lfipc_queue_create(r, "spq", 256, 8,
					LFIPC_QUEUE_SINGLE_PRODUCER |
					    LFIPC_QUEUE_SINGLE_CONSUMER,
					&c.q),
		     0);
	for (v = 0; v < 256; v++)
		cr_assert_eq(lfipc_queue_put(c.q, &v, 8, LFIPC_NOWAIT), 0);
	lfipc_queue_close(c.q); /* the producer role goes to the thread */
	cr_assert_eq(lfipc_queue_open(r, "spq", &c.q), 0);
	cr_assert_eq(lfipc_queue_clear(c.q), 256);
	cr_assert_eq(pthread_create(&t, NULL, puts_after_clear, &c), 0);
	for (int ms = 0; !atomic_load(&c.done) && ms < REAP_MS; ms++)
		usleep(1000);
	cr_assert(atomic_load(&c.done), "the puts after the clear spun");
	pthread_join(t, NULL);
	cr_assert_eq(c.rc, 0);
	for (uint64_t i = 0; i < 256; i++) {
		cr_assert_eq(lfipc_queue_get(c.q, &v, 8, &len, LFIPC_NOWAIT),
			     0);
		cr_assert_eq(v, i);
	}
	cr_assert_eq(lfipc_queue_get(c.q, &v, 8, &len, LFIPC_NOWAIT), -EAGAIN);
	lfipc_queue_close(c.q);
}

/* The same run wait must not outlast the caller's timeout: a put with an
 * expired timeout (a negative one other than LFIPC_FOREVER) makes one
 * attempt, and a short one spins at most its length (the wait had spun
 * the whole budget in both). Budget ten minutes; nobody consumes. */
struct short_put {
	lfipc_queue *q;
	atomic_int done;
	int rc[3];
};

/* A full 256-slot single-producer/single-consumer queue "spq" whose
 * producer role is free for another thread (the handle that filled it is
 * closed and opened again); shut down first if asked. */
static void full_sp_queue(struct short_put *c, bool shut)
{
	cr_assert_eq(lfipc_queue_create(r, "spq", 256, 8,
					LFIPC_QUEUE_SINGLE_PRODUCER |
					    LFIPC_QUEUE_SINGLE_CONSUMER,
					&c->q),
		     0);
	for (uint64_t v = 0; v < 256; v++)
		cr_assert_eq(lfipc_queue_put(c->q, &v, 8, LFIPC_NOWAIT), 0);
	lfipc_queue_close(c->q); /* the producer role goes to the thread */
	cr_assert_eq(lfipc_queue_open(r, "spq", &c->q), 0);
	if (shut)
		cr_assert_eq(lfipc_queue_shutdown(c->q), 0);
}

/* Run fn(c) in a thread; it must be done within REAP_MS (else what). */
static void put_thread_done(struct short_put *c, void *(*fn)(void *),
			    const char *what)
{
	pthread_t t;

	cr_assert_eq(pthread_create(&t, NULL, fn, c), 0);
	for (int ms = 0; !atomic_load(&c->done) && ms < REAP_MS; ms++)
		usleep(1000);
	cr_assert(atomic_load(&c->done), "%s", what);
	pthread_join(t, NULL);
}

static void *short_puts_on_a_full_queue(void *arg)
{
	struct short_put *c = arg;
	uint64_t v = 0;

	lfipc__wait_set_spin_budget(10 * MINUTE_NS);
	c->rc[0] = lfipc_queue_put(c->q, &v, 8, -2);
	c->rc[1] = lfipc_queue_put(c->q, &v, 8, 1000);
	c->rc[2] = lfipc_queue_put(c->q, &v, 8, LFIPC_NOWAIT);
	atomic_store(&c->done, 1);
	return NULL;
}

Test(wait_spin, a_single_producer_waits_for_a_run_within_its_timeout)
{
	struct short_put c = {.rc = {1, 1, 1}};

	full_sp_queue(&c, false);
	put_thread_done(&c, short_puts_on_a_full_queue,
			"a short put spun past its timeout");
	cr_assert_eq(c.rc[0], -ETIMEDOUT);
	cr_assert_eq(c.rc[1], -ETIMEDOUT);
	cr_assert_eq(c.rc[2], -EAGAIN);
	cr_assert_eq(lfipc_queue_qsize(c.q), 256);
	lfipc_queue_close(c.q);
}

/* Nor may it delay the -EPIPE of a put on a shut-down full queue (it had
 * spun the whole budget at every such put). Budget ten minutes. */
static void *put_after_shutdown(void *arg)
{
	struct short_put *c = arg;
	uint64_t v = 0;

	lfipc__wait_set_spin_budget(10 * MINUTE_NS);
	c->rc[0] = lfipc_queue_put(c->q, &v, 8, LFIPC_FOREVER);
	c->rc[1] = lfipc_queue_put(c->q, &v, 8, MINUTE_NS);
	atomic_store(&c->done, 1);
	return NULL;
}

Test(wait_spin, a_single_producer_does_not_wait_for_a_run_after_a_shutdown)
{
	struct short_put c = {.rc = {1, 1, 1}};

	full_sp_queue(&c, true);
	put_thread_done(&c, put_after_shutdown, "a put after the shutdown spun");
	cr_assert_eq(c.rc[0], -EPIPE);
	cr_assert_eq(c.rc[1], -EPIPE);
	cr_assert_eq(lfipc_queue_qsize(c.q), 256);
	lfipc_queue_close(c.q);
}

/*
 * A peer that rewrites the event count without end (here a thread storing
 * ever new unarmed values) must not keep a sleeper arming it past its
 * deadline: seq_arm gives up after a bounded number of CAS failures and
 * the wait ends with -ETIMEDOUT (before the bound, the CAS loop could
 * spin for as long as the scribbler ran).
 */
struct scribbler {
	struct lfipc_wq *wq;
	_Atomic bool stop;
};

static void *scribble_seq(void *p)
{
	struct scribbler *s = p;
	uint32_t v = 0;

	/* S1: relaxed: a hostile peer's stores; no order is promised. */
	while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
		v += 2;
		atomic_store_explicit(&s->wq->seq, v, memory_order_relaxed);
	}
	return NULL;
}

static int never_ready(void *p, struct lfipc_sleep *s, bool check)
{
	(void)p, (void)s, (void)check;
	return 0; /* sleep on wq.seq */
}

Test(wait_spin, a_peer_rewriting_the_event_count_cannot_hold_a_sleeper_past_its_deadline,
     .timeout = 60)
{
	struct lfipc_wq wq;
	struct scribbler s = {&wq, false};
	pthread_t t;

	memset(&wq, 0, sizeof(wq));
	cr_assert_eq(pthread_create(&t, NULL, scribble_seq, &s), 0);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(lfipc__wait_until(NULL, &wq, never_ready, NULL,
					       lfipc__deadline(20000000),
					       LFIPC_WAIT_NOSPIN),
			     -ETIMEDOUT);
	atomic_store_explicit(&s.stop, true, memory_order_relaxed);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_eq(atomic_load(&wq.waiters), 0);
}

/* A readiness callback whose partner is a dead token that is never one
 * the wait remembers as checked (it remembers LFIPC_WAIT_PARTNERS, and
 * once they are full it replaces the first): the tokens of slots 1 and 2
 * first, then those of slots 3 and 4 in turn. Nobody registered in those
 * slots of this region, so their generation is even and every token
 * naming them is dead (GONE). */
struct rotor {
	unsigned calls;
};

static int rotating_dead_partner(void *p, struct lfipc_sleep *s, bool check)
{
	struct rotor *ro = p;
	unsigned k = ro->calls++;
	uint32_t slot = k <= 2 ? k : 3 + k % 2;

	(void)check;
	s->partner[0] = ((slot + 1) << LFIPC_TOKEN_GEN_BITS) | 1;
	return 0;
}

/* Every dead partner is checked before the next sleep; before the fix, a
 * partner that was a new dead token at every pass made the loop check
 * again without sleeping and without looking at the deadline, for ever.
 * The wait runs in a child, reaped with a deadline, so that bug fails
 * instead of hanging the suite. */
Test(wait_spin, partners_that_keep_dying_cannot_hold_a_waiter_past_its_deadline)
{
	pid_t pid;
	int rc;

	cr_assert_lt(4u, r->death_slots, "slots 1-4 have death words");
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct lfipc_wq wq;
		struct rotor ro = {0};

		memset(&wq, 0, sizeof(wq));
		rc = lfipc__wait_until(r, &wq, rotating_dead_partner, &ro,
				       lfipc__deadline(50000000),
				       LFIPC_WAIT_NOSPIN);
		/* It slept between the rounds of checks: fallback slices
		 * of at least 0.625 ms in 50 ms, a few checks each. */
		_exit(rc != -ETIMEDOUT ? 1 : ro.calls >= 1000 ? 2 : 0);
	}
	rc = th_reap(pid, 10000);
	cr_assert_eq(rc, 0,
		     "child status %d (-1: still waiting after 10 s; 1: not "
		     "-ETIMEDOUT; 2: checked without sleeping)",
		     rc);
}

/* A waiter whose partner[0] keeps naming new dead tokens (as above) and
 * whose partner[1] is a live process. Past QUICK_CHECKS it sleeps a
 * fallback slice, which has grown to 1 s after 2.5 s of this; the live
 * partner is killed 50 ms into such a sleep. */
struct churn {
	uint32_t live;
	unsigned calls;
	int64_t t0, t_kill;
	pid_t pid;
	pthread_t killer;
	bool started;
};

static void *kill_and_note(void *p)
{
	struct churn *c = p;

	usleep(50000);
	__atomic_store_n(&c->t_kill, th_now_ns(), __ATOMIC_SEQ_CST);
	kill(c->pid, SIGKILL);
	return NULL;
}

static int churn_then_death(void *p, struct lfipc_sleep *s, bool check)
{
	struct churn *c = p;
	unsigned k = c->calls++;
	uint32_t slot = k <= 2 ? k : 3 + k % 2;

	if (check && !lfipc__token_alive(r, c->live))
		return 1;
	if (!c->started && th_now_ns() - c->t0 > INT64_C(2500000000)) {
		c->started = true;
		cr_assert_eq(pthread_create(&c->killer, NULL, kill_and_note, c),
			     0);
	}
	s->partner[0] = ((slot + 1) << LFIPC_TOKEN_GEN_BITS) | 1;
	s->partner[1] = c->live;
	return 0;
}

/* The sleep past QUICK_CHECKS still sleeps on every partner's death word:
 * the live partner's death wakes it. Before, partners() stopped at the
 * first dead token and left the others' words out, so the death was seen
 * at the slice's end, up to 1 s late (950 ms here). */
Test(wait_spin, a_death_wakes_a_waiter_that_sleeps_past_its_quick_checks,
     .timeout = 60)
{
	struct churn c = {0};
	struct lfipc_wq wq;
	lfipc_lock *l;
	int64_t late;
	int rc;

	if (!lfipc__death_push_ok() || !lfipc__wait_have_waitv())
		cr_skip_test("no death push or futex_waitv on this system");
	cr_assert_lt(4u, r->death_slots, "slots 1-4 have death words");
	cr_assert_eq(lfipc_lock_create(r, "l", false, &l), 0);
	c.pid = held_by_child(l);
	c.live = LFIPC_MUTEX_OWNER(atomic_load(lock_word(l)));
	cr_assert(c.live != 0 && lfipc__token_alive(r, c.live));
	memset(&wq, 0, sizeof(wq));
	c.t0 = th_now_ns();
	rc = lfipc__wait_until(r, &wq, churn_then_death, &c,
			       lfipc__deadline(30 * INT64_C(1000000000)),
			       LFIPC_WAIT_NOSPIN);
	late = th_now_ns();
	cr_assert(c.started);
	cr_assert_eq(pthread_join(c.killer, NULL), 0);
	late -= __atomic_load_n(&c.t_kill, __ATOMIC_SEQ_CST);
	cr_assert_eq(th_reap(c.pid, REAP_MS), 128 + SIGKILL);
	cr_assert_eq(rc, 0);
	/* Woken by the death word: a few hundred µs. Seen at the slice's
	 * end instead: 950 ms. The bound between them leaves room for a
	 * loaded machine. */
	cr_assert_lt(late, INT64_C(600000000),
		     "the death was seen %lld ms after the kill",
		     (long long)(late / 1000000));
	lfipc_lock_close(l);
}

/* A producer that streams until it is stopped. */
static int put_until_stopped(void *p)
{
	for (uint64_t v = 0;; v++)
		if (lfipc_queue_put(p, &v, 8, LFIPC_FOREVER))
			return 1;
}

static int64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* No spinning against a stopped partner: a consumer whose spins paid
 * while its producer streamed, then finds that producer stopped
 * (SIGSTOP), waits 100 times 2 ms for a message that never comes. Its
 * spins run out, the budget halves each time and it sleeps at once,
 * probing every LFIPC_SPIN_PROBE-th wait: its budget ends below
 * LFIPC_SPIN_MIN_NS, and it uses less than a quarter of that time on the
 * CPU (about 2% here; a waiter that spun to
 * its deadline would use all of it). */
Test(wait_spin, a_waiter_stops_spinning_against_a_stopped_partner)
{
	int64_t cpu0, wall0, cpu, wall;
	lfipc_queue *q;
	uint64_t v;
	size_t n;
	pid_t pid;

	cr_assert_eq(lfipc_queue_create(r, "sq", 64, 8, 0, &q), 0);
	pid = th_fork(put_until_stopped, q);
	cr_assert_gt(pid, 0);
	for (int i = 0; i < 10000; i++)
		cr_assert_eq(lfipc_queue_get(q, &v, 8, &n, 10000000000LL), 0);
	cr_assert_eq(kill(pid, SIGSTOP), 0);
	usleep(20000);
	while (lfipc_queue_get(q, &v, 8, &n, LFIPC_NOWAIT) == 0)
		;
	cpu0 = thread_cpu_ns();
	wall0 = th_now_ns();
	for (int i = 0; i < 100; i++)
		cr_assert_eq(lfipc_queue_get(q, &v, 8, &n, 2000000), -ETIMEDOUT);
	cpu = thread_cpu_ns() - cpu0;
	wall = th_now_ns() - wall0;
	kill(pid, SIGKILL);
	kill(pid, SIGCONT);
	cr_assert_eq(th_reap(pid, REAP_MS), 128 + SIGKILL);
	cr_assert_lt(lfipc__wait_spin_budget(), LFIPC_SPIN_MIN_NS,
		     "the waiter still spins %lld ns",
		     (long long)lfipc__wait_spin_budget());
	cr_assert_lt(cpu, wall / 4, "on the CPU %lld of %lld ns",
		     (long long)cpu, (long long)wall);
	lfipc_queue_close(q);
}
