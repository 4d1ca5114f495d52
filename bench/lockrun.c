/* SPDX-License-Identifier: MIT */
/*
 * lfipc-bench lock runners, the same for every lock peer (the floor
 * included): acquire+count+release loops in N processes, the hand-off
 * between two processes, and the owner's death.
 */
#include "config.h"

#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench.h"

/* Shared state of one lock run. count is protected by the lock under test. */
struct lk {
	uint64_t count;
	atomic_int inside; /* processes inside the critical section */
	atomic_int holder; /* hand-off: who holds it (-1 nobody) */
	atomic_int waiting[2];
	_Atomic uint64_t seq, t_rel;
	atomic_int dead_rc, held, about;
	_Atomic uint64_t t_acq;
	double lat[]; /* hand-off samples, indexed by seq - 1 */
};

struct lrun {
	const struct peer *p;
	void *l[2]; /* the lock; a PF_NO_OWNER hand-off: the pair */
	struct lk *lk;
	size_t size;
};

static int lk_setup(struct lrun *r, const struct peer *p, long nlat, bool pair)
{
	r->p = p;
	r->size = sizeof(*r->lk) + sizeof(double) * (size_t)nlat;
	r->lk = shmem(r->size);
	atomic_store(&r->lk->holder, -1);
	r->l[1] = NULL;
	r->l[0] = p->lock_open();
	if (!r->l[0])
		goto fail;
	if (pair) {
		/* a semaphore pair, both taken to 0: release = post the
		 * other's, acquire = wait on one's own */
		r->l[1] = p->lock_open();
		if (!r->l[1] || p->acquire(r->l[0]) || p->acquire(r->l[1]))
			goto fail;
	}
	return 0;
fail:
	for (int i = 0; i < 2; i++)
		if (r->l[i])
			p->lock_close(r->l[i]);
	shmem_free(r->lk, r->size);
	return -1;
}

static void lk_teardown(struct lrun *r)
{
	for (int i = 0; i < 2; i++)
		if (r->l[i])
			r->p->lock_close(r->l[i]);
	shmem_free(r->lk, r->size);
}

/* ---- n operations per process ------------------------------------------ */

struct oprun {
	int (*op)(void *arg);
	void *arg;
};

static int op_worker(struct job *j)
{
	const struct oprun *o = j->arg;
	struct wclock w = {.fd = -1};

	start_child(j->cpu);
	for (long i = -j->warm; i < j->n; i++) {
		if (i == 0) {
			note_start();
			wait_start(&w);
		}
		if (o->op(o->arg))
			return -1;
	}
	wait_end(&w);
	note_end();
	return 0;
}

double op_run(int procs, long n, int (*op)(void *arg), void *arg)
{
	static struct job j[MAXW];
	struct oprun o = {op, arg};
	bool bad = false;
	double dt;
	int started = 0;

	if (procs > MAXW)
		return -1;
	reset_sync();
	for (int k = 0; k < procs; k++) {
		j[k] = (struct job){.fn = op_worker,
				    .arg = &o,
				    .n = n,
				    .warm = n / 10,
				    .cpu = k};
		if (spawn(&j[k])) {
			bad = true;
			break;
		}
		started++;
	}
	if (!bad)
		start_parent(procs);
	for (int k = 0; k < started; k++)
		if (reap_deadline(j[k].pid, 600000))
			bad = true;
	dt = (double)(atomic_load(&sy->t_end) - atomic_load(&sy->t_start));
	if (bad || dt <= 0)
		return -1;
	return procs == 1 ? dt / (double)n
			  : (double)procs * (double)n / (dt / 1e3);
}

/* acquire, check mutual exclusion, count, release */
static int lock_op(void *arg)
{
	struct lrun *r = arg;
	struct lk *lk = r->lk;

	if (r->p->acquire(r->l[0]) != 0)
		return -1;
	/* relaxed: a check only; the lock orders */
	if (atomic_fetch_add_explicit(&lk->inside, 1, memory_order_relaxed) !=
	    0)
		return -1;
	lk->count++;
	atomic_fetch_sub_explicit(&lk->inside, 1,
				  memory_order_relaxed); /* as above */
	return r->p->release(r->l[0]);
}

double lock_run(const struct peer *p, int procs, long n)
{
	struct lrun r;
	double x;

	if (lk_setup(&r, p, 0, false))
		return -1;
	x = op_run(procs, n, lock_op, &r);
	if (r.lk->count != (uint64_t)procs * (uint64_t)(n + n / 10))
		x = -1;
	lk_teardown(&r);
	return x;
}

/* ---- hand-off ---------------------------------------------------------------
 *
 * Ownership ping-pong between two processes. Process 0 starts holding the
 * lock. The holder waits until the other process announced it is about to
 * block in acquire (waiting[]), waits a further delay ns (0: the waiter
 * has just arrived; 50 us: it is asleep in the kernel for any lock that
 * spins less than that), stamps t_rel and releases. The waiter stamps its
 * acquisition; one sample = t_acquired - t_rel. Each acquisition
 * increments seq, which must alternate between the processes, and the
 * inside counter checks mutual exclusion. A PF_NO_OWNER lock (semaphore)
 * runs as a pair: release = post the other's, acquire = wait on one's own.
 */

static int ho_acq(struct lrun *r, int me)
{
	bool pair = r->l[1] != NULL;

	return r->p->acquire(r->l[pair ? me : 0]) == 0 ? 0 : -1;
}

static int ho_release(struct lrun *r, int me, uint64_t delay, bool last)
{
	struct lk *lk = r->lk;
	bool pair = r->l[1] != NULL;
	int other = 1 - me;

	if (!last) {
		while (!atomic_load(&lk->waiting[other]))
			if (bench_spin())
				return -1;
		spin_ns(delay);
	}
	atomic_fetch_sub(&lk->inside, 1);
	atomic_store(&lk->t_rel, now_ns());
	return r->p->release(r->l[pair ? other : 0]);
}

static int ho_worker(struct job *j)
{
	struct lrun *r = j->arg;
	struct lk *lk = r->lk;
	int me = j->cpu, other = 1 - me;
	uint64_t delay = (uint64_t)j->warm;
	long n = j->n;
	struct wclock w;

	if (me == 0) {
		if (!r->l[1] && r->p->acquire(r->l[0]) != 0)
			return -1;
		atomic_fetch_add(&lk->inside, 1);
		atomic_store(&lk->holder, 0);
	}
	start_child(me);
	wait_start(&w);
	if (me == 0 && ho_release(r, me, delay, false))
		return -1;
	for (long i = 0; i < n; i++) {
		uint64_t s, t1;

		while (atomic_load(&lk->holder) != other)
			if (bench_spin())
				return -1;
		atomic_store(&lk->waiting[me], 1);
		if (ho_acq(r, me))
			return -1;
		t1 = now_ns();
		atomic_store(&lk->waiting[me], 0);
		if (atomic_fetch_add(&lk->inside, 1) != 0)
			return -1;
		s = atomic_load(&lk->seq) + 1;
		if (s != (uint64_t)(2 * i + 2 - me))
			return -1;
		atomic_store(&lk->seq, s);
		lk->lat[s - 1] = (double)(t1 - atomic_load(&lk->t_rel));
		atomic_store(&lk->holder, me);
		if (ho_release(r, me, delay, me == 0 && i == n - 1))
			return -1;
	}
	wait_end(&w);
	return 0;
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int handoff_run(const struct peer *p, long n, uint64_t delay, double *rt)
{
	struct job j[2];
	long warm = n / 10 + 5, tot = n + warm;
	struct lrun r;
	bool bad = false;
	int started = 0;

	if (lk_setup(&r, p, 2 * tot, p->flags & PF_NO_OWNER))
		return -1;
	reset_sync();
	for (int k = 0; k < 2; k++) {
		j[k] = (struct job){.fn = ho_worker,
				    .p = p,
				    .arg = &r,
				    .n = tot,
				    .cpu = k,
				    .warm = (long)delay};
		if (spawn(&j[k])) {
			bad = true;
			break;
		}
		started++;
	}
	if (!bad)
		start_parent(2);
	for (int k = 0; k < started; k++)
		if (reap_deadline(j[k].pid, 600000)) {
			bad = true;
			atomic_store(&sy->abort, 1);
		}
	if (!bad && atomic_load(&r.lk->seq) != (uint64_t)(2 * tot))
		bad = true;
	/* a round trip = two consecutive hand-offs (there and back) */
	for (long i = 0; !bad && i < n; i++)
		rt[i] =
		    r.lk->lat[2 * (warm + i)] + r.lk->lat[2 * (warm + i) + 1];
	lk_teardown(&r);
	if (bad)
		return -1;
	qsort(rt, (size_t)n, sizeof(*rt), cmpd);
	return 0;
}

/* ---- owner death ------------------------------------------------------------
 *
 * H acquires and sleeps; W announces itself and blocks in acquire; the
 * parent waits 2 ms, stamps t0 and SIGKILLs H. W stamps its return, which
 * must say the owner died. Sample = t_return - t0 (us).
 */

static int death_holder(struct job *j)
{
	struct lrun *r = j->arg;

	if (j->p->acquire(r->l[0]) != 0)
		return -1;
	atomic_store(&r->lk->held, 1);
	for (;;)
		pause();
	return 0;
}

static int death_waiter(struct job *j)
{
	struct lrun *r = j->arg;
	int rc;

	pin(1);
	while (!atomic_load(&r->lk->held))
		relax();
	atomic_store(&r->lk->about, 1);
	rc = j->p->acquire(r->l[0]);
	atomic_store(&r->lk->t_acq, now_ns());
	atomic_store(&r->lk->dead_rc, rc);
	if (rc < 0)
		return -1;
	return j->p->release(r->l[0]);
}

double death_run(const struct peer *p)
{
	struct lrun r;
	struct job h = {.fn = death_holder, .p = p, .arg = &r};
	struct job w = {.fn = death_waiter, .p = p, .arg = &r};
	struct timespec d = {0, 2000000};
	uint64_t t0;
	bool bad = false;
	double us;

	if (lk_setup(&r, p, 0, false))
		return -1;
	reset_sync();
	if (spawn(&h)) {
		lk_teardown(&r);
		return -1;
	}
	if (spawn(&w)) {
		kill(h.pid, SIGKILL);
		reap(h.pid);
		lk_teardown(&r);
		return -1;
	}
	while (!atomic_load(&r.lk->about) && !aborted())
		sched_yield(); /* H may share this CPU */
	nanosleep(&d, NULL);
	t0 = now_ns();
	kill(h.pid, SIGKILL);
	reap(h.pid);
	if (reap_deadline(w.pid, 10000))
		bad = true;
	if (atomic_load(&r.lk->dead_rc) != 1)
		bad = true;
	us = (double)(atomic_load(&r.lk->t_acq) - t0) / 1e3;
	lk_teardown(&r);
	return bad ? -1 : us;
}
