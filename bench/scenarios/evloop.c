/* SPDX-License-Identifier: MIT */
/*
 * evloop: lfipc in an event loop (issue 10).
 *
 * Wake latency: a producer process puts one 8-byte message while the
 * consumer process sleeps in epoll_wait on the mechanism's fd; time from
 * just before the put to the consumer holding the message (both clocks
 * CLOCK_MONOTONIC). The producer waits 100 us after the consumer said it
 * is about to sleep, so the consumer is asleep. Mechanisms, interleaved
 * trial by trial within one run (same load): lfipc_queue_fd (a Queue's
 * get fd), an eventfd doorbell next to a shared-memory slot (the kernel's
 * cheapest wake-up: the baseline), a pipe, a POSIX mq and a socketpair
 * carrying the message.
 *
 * Death latency: a participant the waiter depends on is SIGKILLed while
 * the waiter sleeps; time from the kill to the waiter knowing it: a Queue
 * get behind the dead producer's slot (it then gets the next message), a
 * Pipe recv (-EPIPE), and a Pipe recv fd in epoll_wait (readable through
 * the peer's pidfd). The Lock's figure is lock-death's.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <lfipc/pipe.h>
#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "../bench.h"

static const char T_EV[] =
    "Event loop: put -> consumer asleep in epoll_wait -> message got";
static const char T_DEATH[] =
    "Peer SIGKILLed while the waiter sleeps: time until it knows";

enum { M_LFIPC, M_EVENTFD, M_PIPE, M_MQ, M_SOCK, NMECH };
_Static_assert((int)NMECH <= 8, "rows of run()");
static const char *const mech_name[NMECH] = {
    "lfipc_queue_fd", "eventfd doorbell", "pipe", "POSIX mq", "socketpair"};

/* Shared between the two processes of a run. */
struct evsh {
	atomic_uint ready; /* trial the consumer is about to sleep for, +1 */
	atomic_int bad;
	_Atomic uint64_t t0; /* just before the put of the current trial */
	_Atomic uint64_t slot; /* the eventfd doorbell's message */
};

struct evch {
	int m;
	lfipc_region *reg;
	lfipc_queue *q;
	int fd[2]; /* [0] consumer's readable fd, [1] producer's */
	mqd_t mq;
	char mqname[64];
};

static int ev_open(struct evch *c, int m)
{
	memset(c, 0, sizeof(*c));
	c->m = m;
	c->fd[0] = c->fd[1] = -1;
	switch (m) {
	case M_LFIPC:
		if (lfipc_region_create(NULL, 1 << 20, 0, &c->reg) ||
		    lfipc_queue_create(c->reg, "ev", 64, 8, 0, &c->q))
			return -1;
		c->fd[0] = lfipc_queue_fd(c->q, LFIPC_FD_GET);
		return c->fd[0] < 0 ? -1 : 0;
	case M_EVENTFD:
		c->fd[0] = c->fd[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		return c->fd[0] < 0 ? -1 : 0;
	case M_PIPE:
		if (pipe2(c->fd, O_NONBLOCK | O_CLOEXEC))
			return -1;
		return 0;
	case M_SOCK:
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0,
			       c->fd))
			return -1;
		return 0;
	default:
		snprintf(c->mqname, sizeof(c->mqname), "/lfipc-bench-ev-%d",
			 (int)getpid());
		mq_unlink(c->mqname);
		c->mq = mq_open(c->mqname, O_RDWR | O_CREAT | O_NONBLOCK, 0600,
				NULL);
		if (c->mq == (mqd_t)-1)
			return -1;
		c->fd[0] = (int)c->mq;
		return 0;
	}
}

static void ev_close(struct evch *c)
{
	if (c->q)
		lfipc_queue_close(c->q);
	if (c->reg)
		lfipc_region_close(c->reg);
	if (c->m == M_MQ) {
		if (c->mq != (mqd_t)-1)
			mq_close(c->mq);
		mq_unlink(c->mqname);
		return;
	}
	if (c->fd[0] >= 0 && c->m != M_LFIPC)
		close(c->fd[0]);
	if (c->fd[1] >= 0 && c->fd[1] != c->fd[0])
		close(c->fd[1]);
}

static int ev_put(struct evch *c, struct evsh *sh, uint64_t v)
{
	char m[8];
	uint64_t one = 1;

	memcpy(m, &v, 8);
	switch (c->m) {
	case M_LFIPC:
		return lfipc_queue_put(c->q, m, 8, LFIPC_FOREVER) ? -1 : 0;
	case M_EVENTFD:
		atomic_store(&sh->slot, v);
		return write(c->fd[1], &one, 8) == 8 ? 0 : -1;
	case M_MQ:
		return mq_send(c->mq, m, 8, 0) ? -1 : 0;
	default:
		return write(c->fd[1], m, 8) == 8 ? 0 : -1;
	}
}

/* Take the message, or 1 when there is none (the fd was spurious or is
 * drained: for lfipc that call also drains and re-arms the fd). */
static int ev_get(struct evch *c, struct evsh *sh, uint64_t *v)
{
	char m[8192];
	size_t len;
	uint64_t cnt;
	ssize_t n;
	int rc;

	switch (c->m) {
	case M_LFIPC:
		rc = lfipc_queue_get(c->q, m, sizeof(m), &len, LFIPC_NOWAIT);
		if (rc == -EAGAIN)
			return 1;
		if (rc || len != 8)
			return -1;
		break;
	case M_EVENTFD:
		if (read(c->fd[0], &cnt, 8) != 8)
			return errno == EAGAIN ? 1 : -1;
		*v = atomic_load(&sh->slot);
		return 0;
	case M_MQ:
		n = mq_receive(c->mq, m, sizeof(m), NULL);
		if (n < 0)
			return errno == EAGAIN ? 1 : -1;
		if (n != 8)
			return -1;
		break;
	default:
		n = read(c->fd[0], m, 8);
		if (n < 0)
			return errno == EAGAIN ? 1 : -1;
		if (n != 8)
			return -1;
	}
	memcpy(v, m, 8);
	return 0;
}

/* The producer process: for each trial, wait until the consumer is about
 * to sleep, 100 us more, then put. */
static void producer(struct evch *c, struct evsh *sh, long n)
{
	for (long i = 0; i < n; i++) {
		while (atomic_load(&sh->ready) != (unsigned)i + 1)
			if (atomic_load(&sh->bad) || bench_spin())
				_exit(1);
		spin_ns(100000);
		atomic_store(&sh->t0, now_ns());
		if (ev_put(c, sh, (uint64_t)i)) {
			atomic_store(&sh->bad, 1);
			_exit(1);
		}
	}
	_exit(0);
}

/* One run of mechanism m: n trials into lat[] (us, sorted). */
static int ev_run(int m, long n, double *lat)
{
	struct evsh *sh = shmem(sizeof(*sh));
	struct epoll_event ev = {.events = EPOLLIN};
	struct evch c;
	int ep = -1, rc = -1;
	pid_t pid = -1;
	uint64_t v;

	if (ev_open(&c, m))
		goto out;
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, c.fd[0], &ev))
		goto out;
	pid = fork();
	if (pid == 0)
		producer(&c, sh, n);
	if (pid < 0)
		goto out;
	for (long i = 0; i < n; i++) {
		int got;

		/* drain (and, for lfipc, re-arm) before saying ready */
		while ((got = ev_get(&c, sh, &v)) == 0)
			;
		if (got < 0)
			goto out;
		atomic_store(&sh->ready, (unsigned)i + 1);
		for (;;) {
			int k = epoll_wait(ep, &ev, 1, 10000);

			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				goto out; /* 10 s without the message */
			got = ev_get(&c, sh, &v);
			if (got < 0)
				goto out;
			if (got == 0)
				break;
		}
		lat[i] = (double)(now_ns() - atomic_load(&sh->t0)) / 1000.0;
		if (v != (uint64_t)i)
			goto out; /* sequence check */
	}
	rc = 0;
out:
	if (rc)
		atomic_store(&sh->bad, 1);
	if (pid > 0 && (reap_deadline(pid, 10000) != 0))
		rc = -1;
	if (ep >= 0)
		close(ep);
	ev_close(&c);
	shmem_free(sh, sizeof(*sh));
	if (rc == 0)
		sort_samples(lat, n);
	return rc;
}

static long ev_per(void)
{
	long n = opt.rtt_n / 200;

	return n < 20 ? 20 : n > 2000 ? 2000 : n;
}

static int ev_fn(void *ctx, double *lat)
{
	return ev_run((int)(intptr_t)ctx, ev_per(), lat);
}

/* ---- death ------------------------------------------------------------- */

enum { D_QUEUE, D_PIPE, D_PIPE_FD, NDEATH };
_Static_assert((int)NDEATH <= 8, "rows of run()");
static const char *const death_name[NDEATH] = {
    "lfipc queue get (dead producer's slot)", "lfipc pipe recv",
    "lfipc_conn_fd in epoll_wait"};

struct killer {
	pid_t pid;
	/* Written by the killer thread, read by the waiter once the death
	 * woke it: the kernel's wake-up (futex, epoll) is an edge TSan does
	 * not see, so the time travels in an atomic. E1: release, pairs
	 * with E2 in death_trial(). */
	_Atomic uint64_t t_kill;
	int delay_us;
};

static void *kill_after(void *p)
{
	struct killer *k = p;

	usleep((useconds_t)k->delay_us);
	atomic_store_explicit(&k->t_kill, now_ns(), memory_order_release); /* E1 */
	kill(k->pid, SIGKILL);
	return NULL;
}

/* The child: hold what the waiter depends on, say so, wait to die. */
static void holder(int kind, lfipc_queue *q, lfipc_conn *c, int ackfd)
{
	void *slot;

	if (kind == D_QUEUE ? lfipc_queue_reserve(q, &slot, LFIPC_NOWAIT)
			    : lfipc_conn_send(c, "h", 1, LFIPC_NOWAIT))
		_exit(1);
	if (write(ackfd, "k", 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

/* One trial: us from the kill to the waiter knowing, or -1. */
static double death_trial(int kind, unsigned seed)
{
	lfipc_region *reg = NULL;
	lfipc_queue *q = NULL;
	lfipc_conn *c0 = NULL, *c1 = NULL;
	struct killer k = {-1, 0, 2000 + (int)(seed % 3000)};
	struct epoll_event ev = {.events = EPOLLIN};
	pthread_t t;
	bool th = false;
	double us = -1;
	char buf[16], b;
	size_t len;
	int ack[2] = {-1, -1}, ep = -1, fd;

	if (lfipc_region_create(NULL, 1 << 20, 0, &reg) || pipe(ack))
		goto out;
	if (kind == D_QUEUE
		? lfipc_queue_create(reg, "d", 4, 8, 0, &q)
		: lfipc_pipe_create(reg, "d", 4096, false, &c0, &c1))
		goto out;
	k.pid = fork();
	if (k.pid == 0)
		holder(kind, q, c1, ack[1]);
	if (k.pid < 0 || read(ack[0], &b, 1) != 1)
		goto out;
	if (kind == D_QUEUE) {
		if (lfipc_queue_put(q, "n", 1, LFIPC_NOWAIT))
			goto out;
	} else if (lfipc_conn_recv(c0, buf, sizeof(buf), &len,
				   LFIPC_NOWAIT)) {
		goto out;
	}
	if (kind == D_PIPE_FD) {
		fd = lfipc_conn_fd(c0, LFIPC_FD_GET);
		ep = epoll_create1(EPOLL_CLOEXEC);
		if (fd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) ||
		    lfipc_conn_recv(c0, buf, sizeof(buf), &len,
				    LFIPC_NOWAIT) != -EAGAIN)
			goto out;
	}
	if (pthread_create(&t, NULL, kill_after, &k))
		goto out;
	th = true;
	if (kind == D_QUEUE) {
		if (lfipc_queue_get(q, buf, sizeof(buf), &len,
				    (int64_t)10000000000) ||
		    buf[0] != 'n')
			goto out;
	} else if (kind == D_PIPE) {
		if (lfipc_conn_recv(c0, buf, sizeof(buf), &len,
				    (int64_t)10000000000) != -EPIPE)
			goto out;
	} else if (epoll_wait(ep, &ev, 1, 10000) != 1) {
		goto out;
	}
	/* E2: acquire, pairs with E1 in kill_after(). */
	us = (double)(now_ns() - atomic_load_explicit(&k.t_kill,
						      memory_order_acquire)) /
	     1000.0;
	if (kind == D_PIPE_FD &&
	    lfipc_conn_recv(c0, buf, sizeof(buf), &len, LFIPC_NOWAIT) !=
		-EPIPE)
		us = -1;
out:
	if (th)
		pthread_join(t, NULL);
	if (k.pid > 0) {
		kill(k.pid, SIGKILL);
		reap_deadline(k.pid, 10000);
	}
	if (ep >= 0)
		close(ep);
	for (int i = 0; i < 2; i++)
		if (ack[i] >= 0)
			close(ack[i]);
	lfipc_conn_close(c0);
	lfipc_conn_close(c1);
	if (q)
		lfipc_queue_close(q);
	if (reg)
		lfipc_region_close(reg);
	return us;
}

static int death_fn(void *ctx, double *lat)
{
	return run_trials(death_trial, (int)(intptr_t)ctx, opt.death_n, lat);
}

static void run(void)
{
	struct row *r[8];
	void *ctx[8];

	for (int m = 0; m < NMECH; m++) {
		r[m] = newrow(T_EV, mech_name[m], m ? "kernel" : "spin+futex",
			      "us", "8 B");
		r[m]->lower_better = true;
		ctx[m] = (void *)(intptr_t)m;
	}
	repeat_pooled(r, ctx, NMECH, ev_per(), ev_fn);
	for (int d = 0; d < NDEATH; d++) {
		r[d] = newrow(T_DEATH, death_name[d], "-", "us",
			      "peer SIGKILLed");
		r[d]->lower_better = true;
		ctx[d] = (void *)(intptr_t)d;
	}
	repeat_pooled(r, ctx, NDEATH, opt.death_n, death_fn);
}

const struct scenario scen_evloop = {
    .name = "evloop",
    .what = "epoll wake latency: lfipc fd vs eventfd, pipe, mq, socketpair; "
	    "death latency of queue and pipe waiters (us)",
    .run = run,
};
