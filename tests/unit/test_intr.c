/* SPDX-License-Identifier: MIT */
/*
 * test_intr.c - lfipc_thread_set_interruptible(): every blocking call
 * returns -EINTR when a signal handler interrupts its sleep and the
 * calling thread turned the switch on, having done nothing; with the
 * switch off (the default) signals never end a call.
 *
 * Public API only. Each case runs the blocking call in a thread with an
 * unlimited timeout and sends that thread SIGUSR1 (a handler without
 * SA_RESTART, as Python installs its handlers) every 20 ms until the call
 * returns, so a signal that lands just before the sleep (which the call
 * cannot see) is followed by one that lands during it. A call that never
 * returns fails the test by the suite's timeout.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include <lfipc/listener.h>
#include <lfipc/pipe.h>
#include <lfipc/queue.h>
#include <lfipc/region.h>
#include <lfipc/sync.h>
#include <lfipc/wait.h>

#include "common/testhelp.h"

#define REGION_SIZE ((size_t)4 << 20)
#define MS ((int64_t)1000000)

static lfipc_region *r;
static _Atomic int handled; /* SIGUSR1 handler runs */
static int64_t tmo;	    /* the timeout the blocking call uses */

static void on_usr1(int sig)
{
	(void)sig;
	atomic_fetch_add(&handled, 1);
}

static void setup(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1; /* no SA_RESTART */
	cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	cr_assert_eq(lfipc_region_create(NULL, REGION_SIZE, 0, &r), 0);
	tmo = LFIPC_FOREVER;
}

static void teardown(void)
{
	lfipc_region_close(r);
	r = NULL;
	signal(SIGUSR1, SIG_DFL);
}

TestSuite(intr, .init = setup, .fini = teardown, .timeout = 60);

struct op {
	int (*fn)(void *arg);
	void *arg;
	int on, prev, rc;
	_Atomic int started, done;
};

static void *runner(void *p)
{
	struct op *o = p;

	o->prev = lfipc_thread_set_interruptible(o->on);
	atomic_store(&o->started, 1);
	o->rc = o->fn(o->arg);
	atomic_store(&o->done, 1);
	return NULL;
}

/* Run fn(arg) in a thread with the switch set to on, signalling it every
 * 20 ms until it returns. Return: fn's result. */
static int run_signalled(int (*fn)(void *), void *arg, int on)
{
	struct op o = {fn, arg, on, -1, 1, 0, 0};
	int before = atomic_load(&handled);
	pthread_t t;

	cr_assert_eq(pthread_create(&t, NULL, runner, &o), 0);
	while (!atomic_load(&o.started))
		usleep(1000);
	usleep(20000); /* let it reach its sleep */
	while (!atomic_load(&o.done)) {
		pthread_kill(t, SIGUSR1);
		usleep(20000);
	}
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_eq(o.prev, 0, "a new thread starts with the switch off");
	cr_assert_gt(atomic_load(&handled), before, "no signal was handled");
	return o.rc;
}

/* ---- the switch ------------------------------------------------------------ */

Test(intr, the_switch_returns_the_previous_setting_and_is_per_thread)
{
	cr_assert_eq(lfipc_thread_set_interruptible(1), 0);
	cr_assert_eq(lfipc_thread_set_interruptible(7), 1);
	cr_assert_eq(lfipc_thread_set_interruptible(0), 1);
	cr_assert_eq(lfipc_thread_set_interruptible(0), 0);
}

/* ---- Queue ------------------------------------------------------------------- */

static int q_get(void *p)
{
	char buf[16];

	return lfipc_queue_get(p, buf, sizeof(buf), NULL, tmo);
}

static int q_put(void *p)
{
	return lfipc_queue_put(p, "c", 2, tmo);
}

static int q_put_many(void *p)
{
	const void *m[2] = {"c", "d"};
	size_t l[2] = {2, 2};

	return lfipc_queue_put_many(p, m, l, 2, tmo);
}

static int q_get_many(void *p)
{
	char buf[2][16];
	size_t l[2];

	return lfipc_queue_get_many(p, buf, 16, l, 2, tmo);
}

static int q_join(void *p)
{
	return lfipc_queue_join(p, tmo);
}

/* The queue holds exactly the messages of want, in order. */
static void queue_holds(lfipc_queue *q, const char *const *want, int n)
{
	char buf[16];
	size_t len;

	for (int i = 0; i < n; i++) {
		cr_assert_eq(lfipc_queue_get(q, buf, sizeof(buf), &len,
					     LFIPC_NOWAIT),
			     0);
		cr_assert_str_eq(buf, want[i]);
	}
	cr_assert_eq(lfipc_queue_get(q, buf, sizeof(buf), &len, LFIPC_NOWAIT),
		     -EAGAIN);
}

Test(intr, a_queue_get_on_an_empty_queue_returns_eintr_and_takes_nothing)
{
	const char *const want[] = {"x"};
	lfipc_queue *q;

	cr_assert_eq(lfipc_queue_create(r, "q", 2, 16, 0, &q), 0);
	cr_assert_eq(run_signalled(q_get, q, 1), -EINTR);
	cr_assert_eq(run_signalled(q_get_many, q, 1), -EINTR);
	cr_assert_eq(lfipc_queue_put(q, "x", 2, LFIPC_NOWAIT), 0);
	queue_holds(q, want, 1);
	lfipc_queue_close(q);
}

Test(intr, a_queue_put_on_a_full_queue_returns_eintr_and_puts_nothing)
{
	const char *const want[] = {"a", "b"};
	lfipc_queue *q;

	cr_assert_eq(lfipc_queue_create(r, "q", 2, 16, 0, &q), 0);
	cr_assert_eq(lfipc_queue_put(q, "a", 2, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_put(q, "b", 2, LFIPC_NOWAIT), 0);
	cr_assert_eq(run_signalled(q_put, q, 1), -EINTR);
	cr_assert_eq(run_signalled(q_put_many, q, 1), -EINTR);
	queue_holds(q, want, 2);
	lfipc_queue_close(q);
}

Test(intr, a_queue_join_returns_eintr)
{
	lfipc_queue *q;

	cr_assert_eq(lfipc_queue_create(r, "q", 2, 16, LFIPC_QUEUE_JOINABLE,
					&q),
		     0);
	cr_assert_eq(lfipc_queue_put(q, "a", 2, LFIPC_NOWAIT), 0);
	cr_assert_eq(run_signalled(q_join, q, 1), -EINTR);
	lfipc_queue_close(q);
}

Test(intr, with_the_switch_off_signals_do_not_end_a_wait)
{
	lfipc_queue *q;
	int64_t t0;

	cr_assert_eq(lfipc_queue_create(r, "q", 2, 16, 0, &q), 0);
	tmo = 300 * MS;
	t0 = th_now_ns();
	cr_assert_eq(run_signalled(q_get, q, 0), -ETIMEDOUT);
	cr_assert_geq(th_now_ns() - t0, tmo);
	lfipc_queue_close(q);
}

Test(intr, nowait_never_returns_eintr)
{
	char buf[16];
	lfipc_queue *q;

	cr_assert_eq(lfipc_queue_create(r, "q", 2, 16, 0, &q), 0);
	cr_assert_eq(lfipc_thread_set_interruptible(1), 0);
	cr_assert_eq(lfipc_queue_get(q, buf, sizeof(buf), NULL, LFIPC_NOWAIT),
		     -EAGAIN);
	lfipc_thread_set_interruptible(0);
	lfipc_queue_close(q);
}

/* ---- Pipe ---------------------------------------------------------------------- */

static lfipc_conn *e0, *e1;

static int c_recv(void *p)
{
	char buf[64];
	size_t len;

	return lfipc_conn_recv(p, buf, sizeof(buf), &len, tmo);
}

static int c_poll(void *p)
{
	return lfipc_conn_poll(p, tmo);
}

static char big[3 * 4096];

static int c_send_big(void *p)
{
	return lfipc_conn_send(p, big, sizeof(big), tmo);
}

static char late[512]; /* the size of the messages that filled the ring */

static int c_send(void *p)
{
	return lfipc_conn_send(p, late, sizeof(late), tmo);
}

/* The pipe works on: a message sent now is the next one received. */
static void conn_passes(const char *msg)
{
	static char buf[sizeof(big)];
	size_t len;

	cr_assert_eq(lfipc_conn_send(e0, msg, strlen(msg) + 1, LFIPC_NOWAIT),
		     0);
	cr_assert_eq(lfipc_conn_recv(e1, buf, sizeof(buf), &len, LFIPC_NOWAIT),
		     0);
	cr_assert_eq(len, strlen(msg) + 1);
	cr_assert_str_eq(buf, msg);
	lfipc_conn_close(e0);
	lfipc_conn_close(e1);
}

Test(intr, a_conn_recv_and_poll_return_eintr_and_take_nothing)
{
	cr_assert_eq(lfipc_pipe_create(r, "p", 4096, true, &e0, &e1), 0);
	cr_assert_eq(run_signalled(c_recv, e1, 1), -EINTR);
	cr_assert_eq(run_signalled(c_poll, e1, 1), -EINTR);
	conn_passes("m");
}

Test(intr, a_conn_send_to_a_full_ring_returns_eintr_and_sends_nothing)
{
	char msg[512], buf[512];
	size_t len;
	int n = 0;

	cr_assert_eq(lfipc_pipe_create(r, "p", 4096, true, &e0, &e1), 0);
	for (;; n++) {
		memset(msg, 'a' + n, sizeof(msg));
		if (lfipc_conn_send(e0, msg, sizeof(msg), LFIPC_NOWAIT) != 0)
			break;
	}
	cr_assert_gt(n, 0);
	memset(late, 'L', sizeof(late));
	cr_assert_eq(run_signalled(c_send, e0, 1), -EINTR);
	for (int i = 0; i < n; i++) {
		memset(msg, 'a' + i, sizeof(msg));
		cr_assert_eq(lfipc_conn_recv(e1, buf, sizeof(buf), &len,
					     LFIPC_NOWAIT),
			     0);
		cr_assert_eq(len, sizeof(msg));
		cr_assert_eq(memcmp(buf, msg, len), 0, "message %d", i);
	}
	cr_assert_eq(lfipc_conn_recv(e1, buf, sizeof(buf), &len, LFIPC_NOWAIT),
		     -EAGAIN);
	lfipc_conn_close(e0);
	lfipc_conn_close(e1);
}

Test(intr, a_large_send_interrupted_while_it_streams_is_abandoned_whole)
{
	static char buf[sizeof(big)];
	size_t len;

	memset(big, 'B', sizeof(big));
	cr_assert_eq(lfipc_pipe_create(r, "p", 4096, true, &e0, &e1), 0);
	cr_assert_eq(run_signalled(c_send_big, e0, 1), -EINTR);
	/* The receiver drops the part that streamed and finds nothing. */
	cr_assert_eq(lfipc_conn_recv(e1, buf, sizeof(buf), &len, LFIPC_NOWAIT),
		     -EAGAIN);
	conn_passes("z");
}

/* ---- Lock, Semaphore, Event, Condition, Barrier ---------------------------- */

static int l_acquire(void *p)
{
	return lfipc_lock_acquire(p, tmo);
}

Test(intr, a_lock_acquire_returns_eintr_without_the_lock)
{
	lfipc_lock *l;

	cr_assert_eq(lfipc_lock_create(r, "l", false, &l), 0);
	cr_assert_eq(lfipc_lock_acquire(l, LFIPC_FOREVER), 0);
	cr_assert_eq(run_signalled(l_acquire, l, 1), -EINTR);
	cr_assert_eq(lfipc_lock_release(l), 0);
	cr_assert_not(lfipc_lock_locked(l));
	lfipc_lock_close(l);
}

static int s_acquire(void *p)
{
	return lfipc_sem_acquire(p, tmo);
}

static void sem_case(unsigned flags)
{
	lfipc_sem *s;

	cr_assert_eq(lfipc_sem_create_ex(r, flags ? "st" : "s", 0, flags, &s),
		     0);
	cr_assert_eq(run_signalled(s_acquire, s, 1), -EINTR);
	cr_assert_eq(lfipc_sem_value(s), 0);
	/* The unit released next goes to the next acquirer, not lost. */
	cr_assert_eq(lfipc_sem_release(s), flags ? -EPERM : 0);
	if (!flags) {
		cr_assert_eq(lfipc_sem_value(s), 1);
		cr_assert_eq(lfipc_sem_acquire(s, LFIPC_NOWAIT), 0);
	}
	lfipc_sem_close(s);
}

Test(intr, a_sem_acquire_returns_eintr_without_a_unit)
{
	sem_case(0);
	sem_case(LFIPC_SEM_TRACK_HOLDERS);
}

static int e_wait(void *p)
{
	return lfipc_event_wait(p, tmo);
}

Test(intr, an_event_wait_returns_eintr)
{
	lfipc_event *e;

	cr_assert_eq(lfipc_event_create(r, "e", &e), 0);
	cr_assert_eq(run_signalled(e_wait, e, 1), -EINTR);
	cr_assert_not(lfipc_event_is_set(e));
	lfipc_event_close(e);
}

static _Atomic int cond_release_rc;

static int c_wait(void *p)
{
	lfipc_cond *c = p;
	int rc;

	if (lfipc_lock_acquire(lfipc_cond_lock(c), LFIPC_FOREVER) != 0)
		return 1;
	rc = lfipc_cond_wait(c, tmo);
	/* The lock is held again at return. */
	atomic_store(&cond_release_rc, lfipc_lock_release(lfipc_cond_lock(c)));
	return rc;
}

Test(intr, a_cond_wait_returns_eintr_with_the_lock_held_again)
{
	lfipc_cond *c;

	cr_assert_eq(lfipc_cond_create(r, "c", NULL, &c), 0);
	atomic_store(&cond_release_rc, 1);
	cr_assert_eq(run_signalled(c_wait, c, 1), -EINTR);
	cr_assert_eq(atomic_load(&cond_release_rc), 0);
	/* Its slot was given back: a notify finds nobody. */
	cr_assert_eq(lfipc_lock_acquire(lfipc_cond_lock(c), LFIPC_FOREVER), 0);
	cr_assert_eq(lfipc_cond_notify(c, 1), 0);
	cr_assert_eq(lfipc_lock_release(lfipc_cond_lock(c)), 0);
	/* Switch off: the same wait times out. */
	tmo = 200 * MS;
	cr_assert_eq(run_signalled(c_wait, c, 0), -ETIMEDOUT);
	lfipc_cond_close(c);
}

static int b_wait(void *p)
{
	return lfipc_barrier_wait(p, tmo);
}

Test(intr, a_barrier_wait_returns_eintr_and_breaks_the_barrier)
{
	lfipc_barrier *b;

	cr_assert_eq(lfipc_barrier_create(r, "b", 2, &b), 0);
	cr_assert_eq(run_signalled(b_wait, b, 1), -EINTR);
	cr_assert(lfipc_barrier_broken(b));
	cr_assert_eq(lfipc_barrier_wait(b, LFIPC_NOWAIT), -EPIPE);
	lfipc_barrier_close(b);
}

/* ---- Listener, wait_any -------------------------------------------------- */

static int accept_one(void *p)
{
	lfipc_conn *c = NULL;
	int rc = lfipc_listener_accept(p, tmo, &c);

	lfipc_conn_close(c);
	return rc;
}

static int connect_one(void *p)
{
	lfipc_conn *c = NULL;
	int rc = lfipc_listener_connect(r, p, tmo, &c);

	lfipc_conn_close(c);
	return rc;
}

static char lsn_name[] = "ls";

Test(intr, a_listener_accept_and_connect_return_eintr)
{
	lfipc_listener *l;

	cr_assert_eq(lfipc_listener_create(r, "ls", 4, 4, 4096, &l), 0);
	cr_assert_eq(run_signalled(accept_one, l, 1), -EINTR);
	/* Nobody accepts: the client waits until interrupted. */
	cr_assert_eq(run_signalled(connect_one, lsn_name, 1), -EINTR);
	lfipc_listener_close(l);
}

static struct lfipc_waitable any_v[2];

static int w_any(void *p)
{
	(void)p;
	return lfipc_wait_any(any_v, 2, tmo);
}

Test(intr, a_wait_any_returns_eintr)
{
	lfipc_queue *q;
	lfipc_event *e;

	cr_assert_eq(lfipc_queue_create(r, "q", 2, 16, 0, &q), 0);
	cr_assert_eq(lfipc_event_create(r, "e", &e), 0);
	any_v[0] = (struct lfipc_waitable){LFIPC_WAIT_QUEUE, LFIPC_FD_GET, q};
	any_v[1] = (struct lfipc_waitable){LFIPC_WAIT_EVENT, 0, e};
	cr_assert_eq(run_signalled(w_any, NULL, 1), -EINTR);
	lfipc_event_close(e);
	lfipc_queue_close(q);
}
