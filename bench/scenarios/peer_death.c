/* SPDX-License-Identifier: MIT */
/*
 * peer-death: a participant the waiter depends on is SIGKILLed while the
 * waiter sleeps (issue 10, "Death is pushed to the waiters"); time from
 * the kill to the waiter's call returning with the death handled:
 *
 *   queue   a Queue get blocked behind the dead producer's reserved slot
 *           (it then gets the next message, put after the reserve);
 *   pipe    a Pipe recv whose writer died (-EPIPE);
 *   barrier a Barrier party (3 parties) whose earlier arrival died
 *           (-EPIPE: broken);
 *   robust  the kernel's own push, in the same run: a glibc robust
 *           process-shared pthread mutex whose owner died (EOWNERDEAD).
 *
 * Per trial: a fresh 1 MiB region, a child that holds its part and says
 * so, a killer thread that waits 2-5 ms (the waiter is asleep by then),
 * stamps the time and SIGKILLs the child. The Lock's figure is
 * lock-death's; evloop has the fd waiters'.
 *
 * Every row measures the same thing from the same state, so that the
 * robust row is the kernel's floor for the others: the same victim (a
 * fork of this process that maps the region and registers in it; the
 * robust row's child does too, with a Lock it takes and gives back), and
 * a waiter that slept, not ran, while the child got ready. The barrier's
 * waiter used to wait for the child's arrival in a sched_yield() loop;
 * a waiter that burnt its CPU share just before the trial gets a worse
 * place in the scheduler's queue when the death wakes it (EEVDF keeps a
 * task's lag across its sleep): under load, in 100 interleaved trials
 * each, it waited for a CPU p50 648 us after the wake-up, against 403 us
 * for one that slept. On the dying child's CPU such a waiter waits for
 * the child's whole exit (0.8 ms) instead of preempting it.
 *
 * The order of the last steps before the kill is the same for every row
 * too: the child is asleep in its call (pause() or the barrier) before
 * the waiter takes its own last steps (the put, the killer thread, the
 * blocking call). It used to differ: the queue, pipe and robust waiters
 * woke on the child's ack and ran while the child, preempted, had not yet
 * reached pause(); the barrier's child was asleep in the barrier before
 * its waiter arrived. That order decided whether the kernel's wake
 * of the waiter preempted the dying child on a shared CPU (ftrace,
 * sched_wakeup without / with need-resched; branch barrier10): queue,
 * pipe and robust 7-11 of 11 trials, the barrier 1 of 11; a 1 ms sleep
 * of the waiter after the ack made queue, pipe and robust 0 of 11 and
 * as slow as the barrier (p50 ~350 us each). The kernel's push came as
 * early in every row (40-90 us after the kill). So the child also runs
 * on another CPU than the waiter (when there are two and pinning is on):
 * the figure is the push and the waiter's wake-up, not the dying child's
 * exit on the waiter's CPU, which no row can preempt reliably.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <lfipc/pipe.h>
#include <lfipc/queue.h>
#include <lfipc/region.h>
#include <lfipc/sync.h>

#include "../bench.h"

enum { K_QUEUE, K_PIPE, K_BARRIER, K_ROBUST, NKIND };
static const char *const kind_name[NKIND] = {
    "lfipc queue get (dead producer's slot)", "lfipc pipe recv (dead writer)",
    "lfipc barrier wait (dead party)", "pthread robust mutex (kernel push)"};

struct killer {
	pid_t pid;
	/* K1: release, pairs with K2 in trial(): the kernel's wake-up is an
	 * edge TSan does not see, so the time travels in an atomic. */
	_Atomic uint64_t t_kill;
	int delay_us;
};

static void *kill_after(void *p)
{
	struct killer *k = p;

	usleep((useconds_t)k->delay_us);
	atomic_store_explicit(&k->t_kill, now_ns(), memory_order_release);
	kill(k->pid, SIGKILL);
	return NULL;
}

struct objs {
	lfipc_region *reg;
	lfipc_queue *q;
	lfipc_conn *c[2];
	lfipc_barrier *b;
	lfipc_lock *lk; /* robust row: registers its child like the others */
	pthread_mutex_t *mu; /* shared anonymous page */
};

/* The child: take what the waiter depends on, say so, wait to die. */
static void holder(int kind, struct objs *o, int ackfd)
{
	void *slot;
	int rc = 0;

	pin(1); /* off the waiter's CPU (see the top comment) */
	if (kind == K_QUEUE)
		rc = lfipc_queue_reserve(o->q, &slot, LFIPC_NOWAIT);
	else if (kind == K_PIPE)
		rc = lfipc_conn_send(o->c[1], "h", 1, LFIPC_NOWAIT);
	else if (kind == K_ROBUST)
		/* register (slot, death word) as the other rows' children
		 * do, so that every victim has the same mappings to drop */
		rc = lfipc_lock_acquire(o->lk, LFIPC_NOWAIT) ||
		     lfipc_lock_release(o->lk) || pthread_mutex_lock(o->mu);
	if (rc || write(ackfd, "k", 1) != 1)
		_exit(1);
	if (kind == K_BARRIER)
		lfipc_barrier_wait(o->b, LFIPC_FOREVER); /* never trips */
	for (;;)
		pause();
}

static int setup(int kind, struct objs *o)
{
	pthread_mutexattr_t ma;

	if (lfipc_region_create(NULL, 1 << 20, 0, &o->reg))
		return -1;
	if (kind == K_ROBUST) {
		o->mu = mmap(NULL, sizeof(*o->mu), PROT_READ | PROT_WRITE,
			     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (o->mu == MAP_FAILED) {
			o->mu = NULL;
			return -1;
		}
		pthread_mutexattr_init(&ma);
		pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
		pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
		if (pthread_mutex_init(o->mu, &ma))
			return -1;
		return lfipc_lock_create(o->reg, "d", false, &o->lk);
	}
	if (kind == K_QUEUE)
		return lfipc_queue_create(o->reg, "d", 4, 8, 0, &o->q);
	if (kind == K_PIPE)
		return lfipc_pipe_create(o->reg, "d", 4096, false, &o->c[0],
					 &o->c[1]);
	return lfipc_barrier_create(o->reg, "d", 3, &o->b);
}

static void teardown(struct objs *o)
{
	lfipc_conn_close(o->c[0]);
	lfipc_conn_close(o->c[1]);
	if (o->q)
		lfipc_queue_close(o->q);
	lfipc_barrier_close(o->b);
	lfipc_lock_close(o->lk);
	if (o->reg)
		lfipc_region_close(o->reg);
	if (o->mu) {
		pthread_mutex_destroy(o->mu);
		munmap(o->mu, sizeof(*o->mu));
	}
}

/* Is the process asleep (state S in /proc)? false when unknown. */
static bool asleep(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	p = strrchr(buf, ')'); /* the name may hold anything */
	return p && p[1] == ' ' && p[2] == 'S';
}

/* Before the kill: what the waiter does first; then the blocking call.
 * The waiter sleeps (20 us at a time) until the child is asleep in its
 * call, the barrier's child in the barrier, so that the waiter's last
 * steps come after it in every row (see the top comment).
 * Return: 0 the call saw the death as expected, else -1. */
static int before(int kind, struct objs *o, pid_t child)
{
	char buf[16];
	size_t len;
	int64_t t0 = (int64_t)now_ns();

	while ((kind == K_BARRIER && lfipc_barrier_n_waiting(o->b) < 1) ||
	       !asleep(child))
		if ((int64_t)now_ns() - t0 > 10000000000 ||
		    nanosleep(&(struct timespec){0, 20000}, NULL))
			return -1;
	if (kind == K_QUEUE)
		return lfipc_queue_put(o->q, "n", 1, LFIPC_NOWAIT) ? -1 : 0;
	if (kind == K_PIPE)
		return lfipc_conn_recv(o->c[0], buf, sizeof(buf), &len,
				       LFIPC_NOWAIT)
			   ? -1
			   : 0;
	return 0; /* the barrier: the child arrived first (index 0) */
}

static int blocking(int kind, struct objs *o)
{
	char buf[16];
	size_t len;
	int rc;

	switch (kind) {
	case K_QUEUE:
		return lfipc_queue_get(o->q, buf, sizeof(buf), &len,
				       (int64_t)10000000000) == 0 &&
			       buf[0] == 'n'
			   ? 0
			   : -1;
	case K_PIPE:
		return lfipc_conn_recv(o->c[0], buf, sizeof(buf), &len,
				       (int64_t)10000000000) == -EPIPE
			   ? 0
			   : -1;
	case K_BARRIER:
		return lfipc_barrier_wait(o->b, (int64_t)10000000000) == -EPIPE
			   ? 0
			   : -1;
	default:
		rc = pthread_mutex_lock(o->mu);
		if (rc != EOWNERDEAD)
			return -1;
		pthread_mutex_consistent(o->mu);
		pthread_mutex_unlock(o->mu);
		return 0;
	}
}

/* One trial: us from the kill to the waiter's return, or -1. */
static double trial(int kind, unsigned seed)
{
	struct objs o = {0};
	struct killer k = {-1, 0, 2000 + (int)(seed % 3000)};
	pthread_t t;
	bool th = false;
	double us = -1;
	int ack[2] = {-1, -1};
	char b;

	if (setup(kind, &o) || pipe(ack))
		goto out;
	k.pid = fork();
	if (k.pid == 0)
		holder(kind, &o, ack[1]);
	if (k.pid < 0 || read(ack[0], &b, 1) != 1 || before(kind, &o, k.pid))
		goto out;
	if (pthread_create(&t, NULL, kill_after, &k))
		goto out;
	th = true;
	if (blocking(kind, &o) == 0)
		/* K2: acquire, pairs with K1 in kill_after(). */
		us = (double)(now_ns() -
			      atomic_load_explicit(&k.t_kill,
						   memory_order_acquire)) /
		     1000.0;
out:
	if (th)
		pthread_join(t, NULL);
	if (k.pid > 0) {
		kill(k.pid, SIGKILL);
		reap_deadline(k.pid, 10000);
	}
	for (int i = 0; i < 2; i++)
		if (ack[i] >= 0)
			close(ack[i]);
	teardown(&o);
	return us;
}

static int kind_fn(void *ctx, double *lat)
{
	return run_trials(trial, (int)(intptr_t)ctx, opt.death_n, lat);
}

static void run(void)
{
	struct row *r[NKIND];
	void *ctx[NKIND];
	cpu_set_t was;
	bool restore = sched_getaffinity(0, sizeof(was), &was) == 0;

	pin(0); /* the waiter; each child runs on CPU 1 */
	for (int d = 0; d < NKIND; d++) {
		r[d] = newrow("Peer SIGKILLed while the waiter sleeps: time to "
			      "the waiter's return",
			      kind_name[d], d == K_ROBUST ? "futex" : "spin+futex",
			      "us", "peer SIGKILLed");
		r[d]->lower_better = true;
		ctx[d] = (void *)(intptr_t)d;
	}
	repeat_pooled(r, ctx, NKIND, opt.death_n, kind_fn);
	if (restore) /* the scenarios after this one run as before */
		sched_setaffinity(0, sizeof(was), &was);
}

const struct scenario scen_peer_death = {
    .name = "peer-death",
    .what = "peer SIGKILLed: queue get, pipe recv, barrier wait vs robust "
	    "pthread mutex (us)",
    .run = run,
};
