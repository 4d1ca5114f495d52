/* SPDX-License-Identifier: MIT */
/*
 * hx_ops.c - every object type and every public operation, as a table
 * (see hx.h). The errno lists are the "Return:" lines of the public
 * headers; -EPROTO is always allowed. Results that say where memory is
 * (a reserved slot, a peeked message, the elements of an Array) and
 * lengths are checked against the caller's buffers and the region, so a
 * wrong one is reported before it is used.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lfipc/inspect.h>

#include "internal/futex.h"
#include "internal/region.h"

#include "hostile/hx.h"

#define MS ((int64_t)1000000)
#define Q_MSG 32
#define PIPE_RING 256
#define ARRAY_LEN 8
#define SEM_INIT 2

/* ---- checking ------------------------------------------------------------ */

void hx_fail(struct hx_ctx *cx, const char *call, int64_t rc, const char *why)
{
	cx->violations++;
	if (cx->violation)
		cx->violation(cx, call, rc, 0, 0, 0, why);
}

/* run_delay of this thread (ns), or 0 where the kernel does not say. */
static int64_t run_delay_ns(void)
{
	/* The file of this thread: reopened in a fork child. */
	static _Thread_local int fd = -1;
	static _Thread_local pid_t owner;
	char buf[128];
	unsigned long long cpu, delay;
	ssize_t n;

	if (owner != getpid()) {
		if (fd >= 0)
			close(fd);
		fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
		owner = getpid();
	}
	if (fd < 0)
		return 0;
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	return sscanf(buf, "%llu %llu", &cpu, &delay) == 2 ? (int64_t)delay : 0;
}

int64_t hx_off_cpu_ns(struct hx_ctx *cx)
{
	return run_delay_ns() + (cx->stopped_ns ? cx->stopped_ns(cx) : 0);
}

void hx_check(struct hx_ctx *cx, const char *call, int64_t budget_ns,
	      const int *errs, int64_t rc, int64_t elapsed_ns,
	      int64_t off_cpu_ns)
{
	int64_t over, limit = LFIPC_SLICE_NS + cx->slack_ns;

	cx->calls++;
	if (rc < 0) {
		bool ok = rc == -EPROTO;

		cx->errors++;
		if (rc == -EPROTO)
			cx->eproto++;
		for (const int *e = errs; !ok && *e; e++)
			ok = rc == -*e;
		if (!ok)
			hx_fail(cx, call, rc, HX_WHY_ERRNO);
	}
	if (budget_ns == INT64_MAX)
		return;
	over = elapsed_ns - budget_ns;
	if (over > cx->worst_over_ns) {
		cx->worst_over_ns = over;
		cx->worst_call = call;
	}
	if (over - off_cpu_ns > cx->worst_net_ns) {
		cx->worst_net_ns = over - off_cpu_ns;
		cx->worst_net_call = call;
	}
	if (over <= limit)
		return;
	if (over - off_cpu_ns <= limit) {
		cx->excused++;
		if (cx->verbose)
			fprintf(stderr,
				"excused: %s (%s) returned %lld after %.1f ms, "
				"%.1f ms of it off CPU (budget %.1f ms)\n",
				call, cx->obj ? cx->obj : "-", (long long)rc,
				elapsed_ns / 1e6, off_cpu_ns / 1e6,
				budget_ns / 1e6);
		return;
	}
	cx->violations++;
	if (cx->violation)
		cx->violation(cx, call, rc, elapsed_ns, off_cpu_ns, budget_ns,
			      HX_WHY_BLOCKED);
}

bool hx_in_region(const struct hx_ctx *cx, const void *p, size_t n)
{
	const uint8_t *b = cx->r->base, *q = p;

	return q >= b && (uint64_t)(q - b) <= cx->r->size &&
	       n <= cx->r->size - (uint64_t)(q - b);
}

static uint64_t rnd(struct hx_ctx *cx, uint64_t n)
{
	return n ? th_rand(&cx->rng) % n : 0;
}

/* Common error lists. */
#define CREATE_ERRS                                                            \
	HX_ERRS(EINVAL, EEXIST, ENOSPC, ENAMETOOLONG, ENOMEM, EUSERS)
#define OPEN_ERRS HX_ERRS(ENOENT, EINVAL, ENAMETOOLONG, ENOMEM)
#define LOCK_ACQ_ERRS                                                          \
	HX_ERRS(EOWNERDEAD, EAGAIN, ETIMEDOUT, EDEADLK, EOVERFLOW, EUSERS)

/* The open and close of a type whose handle is one pointer, o->h.field. */
#define OPEN_CLOSE(pfx, kind, field)                                           \
	static int pfx##_open(struct hx_ctx *cx, struct hx_obj *o)             \
	{                                                                      \
		return (int)HX_CALL(                                           \
		    cx, #kind "_open", cx->hold_ns, OPEN_ERRS,                 \
		    lfipc_##kind##_open(cx->r, o->name, &o->h.field));         \
	}                                                                      \
	static void pfx##_close(struct hx_obj *o)                              \
	{                                                                      \
		lfipc_##kind##_close(o->h.field);                              \
	}

/* ---- Queue and JoinableQueue --------------------------------------------- */

static int q_create(struct hx_ctx *cx, struct hx_obj *o)
{
	size_t cap = (o->t->arg & LFIPC_QUEUE_JOINABLE) ? 8 : 6;

	return (int)HX_CALL(
	    cx, "queue_create", cx->hold_ns, CREATE_ERRS,
	    lfipc_queue_create(cx->r, o->name, cap, Q_MSG, o->t->arg, &o->h.q));
}

OPEN_CLOSE(q, queue, q)

#define Q_PUT_ERRS HX_ERRS(EAGAIN, ETIMEDOUT, EPIPE, EUSERS)

/* The message buffers of puts are malloc'ed at the queue's own msg_size,
 * not Q_MSG: the size a handle reports comes from shared memory, where a
 * peer may have set another one before the open (a buffer of Q_MSG bytes
 * made ASan report the harness's own overrun, not the library's). */
static void q_put(struct hx_ctx *cx, struct hx_obj *o)
{
	size_t ms = lfipc_queue_msg_size(o->h.q), len = rnd(cx, ms + 1);
	uint8_t *msg = malloc(ms ? ms : 1); /* exact: ASan sees overreads */

	if (!msg)
		return;
	th_fill(msg, ms, cx->rng);
	HX_CALL(cx, "queue_put", HX_TMO(cx), Q_PUT_ERRS,
		lfipc_queue_put(o->h.q, msg, len, cx->timeout_ns));
	free(msg);
}

static void q_get(struct hx_ctx *cx, struct hx_obj *o)
{
	size_t ms = lfipc_queue_msg_size(o->h.q), len = SIZE_MAX;
	uint8_t *buf = malloc(ms ? ms : 1); /* exact: ASan sees overruns */
	int64_t rc;

	if (!buf)
		return;
	rc = HX_CALL(cx, "queue_get", HX_TMO(cx), Q_PUT_ERRS,
		     lfipc_queue_get(o->h.q, buf, ms, &len, cx->timeout_ns));
	if (rc == 0 && len > ms)
		hx_fail(cx, "queue_get", rc, "length above msg_size");
	if (rc == 0)
		o->got++;
	free(buf);
}

static void q_put_many(struct hx_ctx *cx, struct hx_obj *o)
{
	size_t lens[3], ms = lfipc_queue_msg_size(o->h.q);
	size_t stride = ms ? ms : 1;
	uint8_t *m = malloc(3 * stride);
	const void *msgs[3] = {m, m + stride, m + 2 * stride};
	int64_t rc;

	if (!m)
		return;
	for (int i = 0; i < 3; i++)
		lens[i] = rnd(cx, ms + 1);
	memset(m, 0x5a, 3 * stride);
	rc = HX_CALL(
	    cx, "queue_put_many", HX_TMO(cx), Q_PUT_ERRS,
	    lfipc_queue_put_many(o->h.q, msgs, lens, 3, cx->timeout_ns));
	if (rc == 0 || rc > 3)
		hx_fail(cx, "queue_put_many", rc, "count outside 1..n");
	free(m);
}

static void q_get_many(struct hx_ctx *cx, struct hx_obj *o)
{
	size_t ms = lfipc_queue_msg_size(o->h.q), lens[3];
	size_t stride = ms ? ms : 1;
	uint8_t *bufs = malloc(3 * stride);
	int64_t rc;

	if (!bufs)
		return;
	rc = HX_CALL(cx, "queue_get_many", HX_TMO(cx), Q_PUT_ERRS,
		     lfipc_queue_get_many(o->h.q, bufs, stride, lens, 3,
					  cx->timeout_ns));
	if (rc == 0 || rc > 3)
		hx_fail(cx, "queue_get_many", rc, "count outside 1..n");
	for (int64_t i = 0; i < rc && i < 3; i++) {
		if (lens[i] > ms)
			hx_fail(cx, "queue_get_many", rc,
				"length above msg_size");
		o->got++;
	}
	free(bufs);
}

static void q_reserve_commit(struct hx_ctx *cx, struct hx_obj *o)
{
	size_t ms = lfipc_queue_msg_size(o->h.q);
	void *slot = NULL;
	int64_t rc;

	rc = HX_CALL(cx, "queue_reserve", HX_TMO(cx), Q_PUT_ERRS,
		     lfipc_queue_reserve(o->h.q, &slot, cx->timeout_ns));
	if (rc != 0)
		return;
	if (!hx_in_region(cx, slot, ms)) {
		hx_fail(cx, "queue_reserve", rc, "slot outside the region");
		return;
	}
	memset(slot, 0xa5, ms);
	HX_CALL(cx, "queue_commit", 0, HX_ERRS(EMSGSIZE),
		lfipc_queue_commit(o->h.q, slot, rnd(cx, ms + 1)));
}

static void q_peek_release(struct hx_ctx *cx, struct hx_obj *o)
{
	size_t ms = lfipc_queue_msg_size(o->h.q), len = 0;
	const void *msg = NULL;
	int64_t rc;

	rc = HX_CALL(cx, "queue_peek", HX_TMO(cx), Q_PUT_ERRS,
		     lfipc_queue_peek(o->h.q, &msg, &len, cx->timeout_ns));
	if (rc != 0)
		return;
	if (len > ms || !hx_in_region(cx, msg, len)) {
		hx_fail(cx, "queue_peek", rc, "message outside the region");
		return;
	}
	(void)th_sum(msg, len);
	o->got++;
	HX_CALL(cx, "queue_release", 0, HX_NOERRS,
		lfipc_queue_release(o->h.q, msg));
}

static void q_clear(struct hx_ctx *cx, struct hx_obj *o)
{
	/* "-EBUSY another clear has been in progress for over a second". */
	HX_CALL(cx, "queue_clear", 1000 * MS + cx->hold_ns,
		HX_ERRS(EBUSY, EUSERS), lfipc_queue_clear(o->h.q));
}

static void q_sizes(struct hx_ctx *cx, struct hx_obj *o)
{
	size_t cap = lfipc_queue_capacity(o->h.q);
	int64_t n = HX_CALL(cx, "queue_qsize", 0, HX_NOERRS,
			    (int64_t)lfipc_queue_qsize(o->h.q));

	if ((uint64_t)n > cap)
		hx_fail(cx, "queue_qsize", n, "qsize above capacity");
	HX_CALL(cx, "queue_empty", 0, HX_NOERRS, lfipc_queue_empty(o->h.q));
	HX_CALL(cx, "queue_full", 0, HX_NOERRS, lfipc_queue_full(o->h.q));
}

static void q_shutdown(struct hx_ctx *cx, struct hx_obj *o)
{
	HX_CALL(cx, "queue_shutdown", 0, HX_NOERRS,
		lfipc_queue_shutdown(o->h.q));
}

static void q_task_done(struct hx_ctx *cx, struct hx_obj *o)
{
	int64_t rc = HX_CALL(cx, "queue_task_done", 0, HX_ERRS(EINVAL),
			     lfipc_queue_task_done(o->h.q));

	if (rc == 0 && o->got)
		o->got--;
}

static void q_join(struct hx_ctx *cx, struct hx_obj *o)
{
	/* -EOWNERDEAD: tasks of dead consumers were written off (issue 9's
	 * JoinableQueue decision; a peer that fakes deaths causes it). */
	HX_CALL(cx, "queue_join", HX_TMO(cx),
		HX_ERRS(EINVAL, EAGAIN, ETIMEDOUT, EOWNERDEAD, EUSERS),
		lfipc_queue_join(o->h.q, cx->timeout_ns));
}

/* clang-format off */
static const struct hx_op q_ops[] = {
	{"put", 8, q_put},
	{"get", 8, q_get},
	{"put_many", 3, q_put_many},
	{"get_many", 3, q_get_many},
	{"reserve_commit", 3, q_reserve_commit},
	{"peek_release", 3, q_peek_release},
	{"clear", 2, q_clear},
	{"sizes", 2, q_sizes},
	{"shutdown", 1, q_shutdown},
	{"task_done", 3, q_task_done},
	{"join", 2, q_join},
	{NULL, 0, NULL},
};
/* clang-format on */

static void q_fill(struct hx_ctx *cx, struct hx_obj *o)
{
	for (int i = 0; i < 4; i++)
		q_put(cx, o);
}

/* ---- Lock and RLock ------------------------------------------------------ */

static int l_create(struct hx_ctx *cx, struct hx_obj *o)
{
	return (int)HX_CALL(
	    cx, "lock_create", cx->hold_ns, CREATE_ERRS,
	    lfipc_lock_create(cx->r, o->name, o->t->arg, &o->h.l));
}

OPEN_CLOSE(l, lock, l)

/* Acquire l (with cx's timeout), for an RLock once more, then release as
 * often as acquired. Shared by Lock, Condition and Array. */
static void lock_cycle(struct hx_ctx *cx, lfipc_lock *l)
{
	int64_t rc = HX_CALL(cx, "lock_acquire", HX_TMO(cx), LOCK_ACQ_ERRS,
			     lfipc_lock_acquire(l, cx->timeout_ns));
	int held = rc == 0 || rc == -EOWNERDEAD;

	if (held && lfipc_lock_is_recursive(l)) {
		rc = HX_CALL(cx, "lock_acquire", 0, LOCK_ACQ_ERRS,
			     lfipc_lock_acquire(l, LFIPC_NOWAIT));
		held += rc == 0 || rc == -EOWNERDEAD;
	}
	while (held-- > 0)
		HX_CALL(cx, "lock_release", 0, HX_ERRS(EPERM),
			lfipc_lock_release(l));
}

static void l_cycle(struct hx_ctx *cx, struct hx_obj *o)
{
	lock_cycle(cx, o->h.l);
}

static void l_query(struct hx_ctx *cx, struct hx_obj *o)
{
	HX_CALL(cx, "lock_locked", 0, HX_NOERRS, lfipc_lock_locked(o->h.l));
	HX_CALL(cx, "lock_is_recursive", 0, HX_NOERRS,
		lfipc_lock_is_recursive(o->h.l));
}

static void l_release_unheld(struct hx_ctx *cx, struct hx_obj *o)
{
	HX_CALL(cx, "lock_release", 0, HX_ERRS(EPERM),
		lfipc_lock_release(o->h.l));
}

/* clang-format off */
static const struct hx_op l_ops[] = {
	{"cycle", 8, l_cycle},
	{"query", 2, l_query},
	{"release_unheld", 1, l_release_unheld},
	{NULL, 0, NULL},
};
/* clang-format on */

/* ---- Semaphore, BoundedSemaphore, tracked -------------------------------- */

#define SEM_ACQ_ERRS HX_ERRS(EOWNERDEAD, EAGAIN, ETIMEDOUT, EUSERS)
/* A tracked release waits for the guard at most LFIPC_SYNC_GRACE_NS
 * (then -EBUSY). */
#define SEM_REL_ERRS HX_ERRS(EOVERFLOW, EPERM, EBUSY)
#define SEM_REL_BUDGET LFIPC_SYNC_GRACE_NS

static int s_create(struct hx_ctx *cx, struct hx_obj *o)
{
	return (int)HX_CALL(
	    cx, "sem_create", cx->hold_ns, CREATE_ERRS,
	    lfipc_sem_create_ex(cx->r, o->name, SEM_INIT, o->t->arg, &o->h.s));
}

OPEN_CLOSE(s, sem, s)

static void s_cycle(struct hx_ctx *cx, struct hx_obj *o)
{
	int64_t rc = HX_CALL(cx, "sem_acquire", HX_TMO(cx), SEM_ACQ_ERRS,
			     lfipc_sem_acquire(o->h.s, cx->timeout_ns));

	if (rc == 0 || rc == -EOWNERDEAD)
		HX_CALL(cx, "sem_release", SEM_REL_BUDGET, SEM_REL_ERRS,
			lfipc_sem_release(o->h.s));
}

static void s_acquire(struct hx_ctx *cx, struct hx_obj *o)
{
	HX_CALL(cx, "sem_acquire", HX_TMO(cx), SEM_ACQ_ERRS,
		lfipc_sem_acquire(o->h.s, cx->timeout_ns));
}

static void s_release(struct hx_ctx *cx, struct hx_obj *o)
{
	HX_CALL(cx, "sem_release", SEM_REL_BUDGET, SEM_REL_ERRS,
		lfipc_sem_release(o->h.s));
}

static void s_query(struct hx_ctx *cx, struct hx_obj *o)
{
	HX_CALL(cx, "sem_value", 0, HX_NOERRS, lfipc_sem_value(o->h.s));
	HX_CALL(cx, "sem_max", 0, HX_NOERRS, (int64_t)lfipc_sem_max(o->h.s));
}

/* clang-format off */
static const struct hx_op s_ops[] = {
	{"cycle", 6, s_cycle},
	{"acquire", 2, s_acquire},
	{"release", 2, s_release},
	{"query", 2, s_query},
	{NULL, 0, NULL},
};
/* clang-format on */

/* ---- Condition (over its embedded RLock) --------------------------------- */

#define COND_WAIT_ERRS                                                       \
	HX_ERRS(ETIMEDOUT, EAGAIN, EOWNERDEAD, EPERM, EUSERS, ENOLCK)

static int c_create(struct hx_ctx *cx, struct hx_obj *o)
{
	return (int)HX_CALL(cx, "cond_create", cx->hold_ns, CREATE_ERRS,
			    lfipc_cond_create(cx->r, o->name, NULL, &o->h.c));
}

OPEN_CLOSE(c, cond, c)

/* Take the Condition's lock; true when held. */
static bool c_lock(struct hx_ctx *cx, struct hx_obj *o)
{
	int64_t rc = HX_CALL(
	    cx, "lock_acquire", HX_TMO(cx), LOCK_ACQ_ERRS,
	    lfipc_lock_acquire(lfipc_cond_lock(o->h.c), cx->timeout_ns));

	return rc == 0 || rc == -EOWNERDEAD;
}

static void c_unlock(struct hx_ctx *cx, struct hx_obj *o)
{
	HX_CALL(cx, "lock_release", 0, HX_ERRS(EPERM),
		lfipc_lock_release(lfipc_cond_lock(o->h.c)));
}

/* The budget of a Condition wait: its timeout, the grace of its re-take
 * of the lock (sync.h: the larger of the timeout and
 * LFIPC_SYNC_GRACE_NS), and as long as a holder holds the lock. */
#define COND_BUDGET(cx)                                                       \
	((cx)->timeout_ns < 0                                                  \
	     ? INT64_MAX                                                       \
	     : (cx)->timeout_ns + (cx)->hold_ns +                              \
		   ((cx)->timeout_ns > LFIPC_SYNC_GRACE_NS                     \
			? (cx)->timeout_ns                                     \
			: LFIPC_SYNC_GRACE_NS))

static void c_wait(struct hx_ctx *cx, struct hx_obj *o)
{
	if (!c_lock(cx, o))
		return;
	/* Re-taking the lock after the wait may take a grace past the
	 * timeout (then -ENOLCK, the lock not held: c_unlock's -EPERM). */
	HX_CALL(cx, "cond_wait", COND_BUDGET(cx), COND_WAIT_ERRS,
		lfipc_cond_wait(o->h.c, cx->timeout_ns));
	c_unlock(cx, o);
}

static bool pred_third(void *arg)
{
	return ++*(int *)arg >= 3;
}

static void c_wait_for(struct hx_ctx *cx, struct hx_obj *o)
{
	int n = 0;

	if (!c_lock(cx, o))
		return;
	HX_CALL(cx, "cond_wait_for", COND_BUDGET(cx), COND_WAIT_ERRS,
		lfipc_cond_wait_for(o->h.c, pred_third, &n, cx->timeout_ns));
	c_unlock(cx, o);
}

static void c_notify(struct hx_ctx *cx, struct hx_obj *o)
{
	if (!c_lock(cx, o))
		return;
	if (rnd(cx, 2))
		HX_CALL(cx, "cond_notify", 0, HX_ERRS(EPERM),
			lfipc_cond_notify(o->h.c, 1 + (unsigned)rnd(cx, 3)));
	else
		HX_CALL(cx, "cond_notify_all", 0, HX_ERRS(EPERM),
			lfipc_cond_notify_all(o->h.c));
	c_unlock(cx, o);
}

static void c_unheld(struct hx_ctx *cx, struct hx_obj *o)
{
	HX_CALL(cx, "cond_notify", 0, HX_ERRS(EPERM),
		lfipc_cond_notify(o->h.c, 1));
}

/* clang-format off */
static const struct hx_op c_ops[] = {
	{"wait", 4, c_wait},
	{"wait_for", 2, c_wait_for},
	{"notify", 4, c_notify},
	{"notify_unheld", 1, c_unheld},
	{NULL, 0, NULL},
};
/* clang-format on */

/* ---- Event --------------------------------------------------------------- */

static int e_create(struct hx_ctx *cx, struct hx_obj *o)
{
	return (int)HX_CALL(cx, "event_create", cx->hold_ns, CREATE_ERRS,
			    lfipc_event_create(cx->r, o->name, &o->h.e));
}

OPEN_CLOSE(e, event, e)

static void e_set(struct hx_ctx *cx, struct hx_obj *o)
{
	HX_CALL(cx, "event_set", 0, HX_ERRS(EINVAL), lfipc_event_set(o->h.e));
}

static void e_clear(struct hx_ctx *cx, struct hx_obj *o)
{
	HX_CALL(cx, "event_clear", 0, HX_ERRS(EINVAL),
		lfipc_event_clear(o->h.e));
	HX_CALL(cx, "event_is_set", 0, HX_NOERRS, lfipc_event_is_set(o->h.e));
}

static void e_wait(struct hx_ctx *cx, struct hx_obj *o)
{
	HX_CALL(cx, "event_wait", HX_TMO(cx),
		HX_ERRS(ETIMEDOUT, EAGAIN, EINVAL),
		lfipc_event_wait(o->h.e, cx->timeout_ns));
}

/* clang-format off */
static const struct hx_op e_ops[] = {
	{"set", 3, e_set},
	{"clear", 3, e_clear},
	{"wait", 4, e_wait},
	{NULL, 0, NULL},
};
/* clang-format on */

/* ---- Barrier ------------------------------------------------------------- */

static int b_create(struct hx_ctx *cx, struct hx_obj *o)
{
	return (int)HX_CALL(
	    cx, "barrier_create", cx->hold_ns, CREATE_ERRS,
	    lfipc_barrier_create(cx->r, o->name, o->t->arg, &o->h.b));
}

OPEN_CLOSE(b, barrier, b)

static void b_wait(struct hx_ctx *cx, struct hx_obj *o)
{
	int64_t rc =
	    HX_CALL(cx, "barrier_wait", HX_TMO(cx),
		    HX_ERRS(EPIPE, ETIMEDOUT, EAGAIN, ECANCELED, EUSERS),
		    lfipc_barrier_wait(o->h.b, cx->timeout_ns));

	if (rc >= (int64_t)lfipc_barrier_parties(o->h.b))
		hx_fail(cx, "barrier_wait", rc, "index >= parties");
}

static void b_abort(struct hx_ctx *cx, struct hx_obj *o)
{
	HX_CALL(cx, "barrier_abort", 0, HX_ERRS(EINVAL),
		lfipc_barrier_abort(o->h.b));
}

static void b_reset(struct hx_ctx *cx, struct hx_obj *o)
{
	HX_CALL(cx, "barrier_reset", LFIPC_SYNC_GRACE_NS, HX_ERRS(EINVAL, EBUSY),
		lfipc_barrier_reset(o->h.b));
}

static void b_query(struct hx_ctx *cx, struct hx_obj *o)
{
	HX_CALL(cx, "barrier_n_waiting", 0, HX_NOERRS,
		(int64_t)lfipc_barrier_n_waiting(o->h.b));
	HX_CALL(cx, "barrier_broken", 0, HX_NOERRS,
		lfipc_barrier_broken(o->h.b));
}

/* clang-format off */
static const struct hx_op b_ops[] = {
	{"wait", 6, b_wait},
	{"abort", 1, b_abort},
	{"reset", 3, b_reset},
	{"query", 2, b_query},
	{NULL, 0, NULL},
};
/* clang-format on */

/* ---- Value and Array ----------------------------------------------------- */

/* arg: element type, | A_LOCK for an embedded lock, | A_VALUE for len 1. */
#define A_LOCK 0x100u
#define A_VALUE 0x200u
#define A_ERRS HX_ERRS(ERANGE, EOVERFLOW, EINVAL)

static int a_create(struct hx_ctx *cx, struct hx_obj *o)
{
	unsigned arg = o->t->arg;

	return (int)HX_CALL(cx, "array_create", cx->hold_ns, CREATE_ERRS,
			    lfipc_array_create(cx->r, o->name,
					       (lfipc_type)(arg & 0xff),
					       (arg & A_VALUE) ? 1 : ARRAY_LEN,
					       arg & A_LOCK, &o->h.a));
}

OPEN_CLOSE(a, array, a)

/* A slice [start, start + n) that is usually inside, sometimes not. */
static void a_slice(struct hx_ctx *cx, size_t len, size_t *start, size_t *n)
{
	*start = rnd(cx, len + 2);
	*n = rnd(cx, len + 2);
}

static void a_copy(struct hx_ctx *cx, struct hx_obj *o)
{
	size_t es = lfipc_type_size(lfipc_array_type(o->h.a)), start, n;
	uint8_t *buf;

	a_slice(cx, lfipc_array_len(o->h.a), &start, &n);
	buf = malloc(n * es > 0 ? n * es : 1); /* exact: ASan sees overruns */
	if (!buf)
		return;
	if (rnd(cx, 2)) {
		HX_CALL(cx, "array_get", 0, A_ERRS,
			lfipc_array_get(o->h.a, start, n, buf));
	} else {
		memset(buf, 0, n * es); /* BOOL elements must be 0 or 1 */
		HX_CALL(cx, "array_set", 0, A_ERRS,
			lfipc_array_set(o->h.a, start, n, buf));
	}
	free(buf);
}

static void a_atomic(struct hx_ctx *cx, struct hx_obj *o)
{
	size_t i = rnd(cx, lfipc_array_len(o->h.a) + 1);
	int64_t v = (int64_t)rnd(cx, 300) - 150, old;

	switch (rnd(cx, 5)) {
	case 0:
		HX_CALL(cx, "array_load", 0, A_ERRS,
			lfipc_array_load(o->h.a, i, &old));
		break;
	case 1:
		HX_CALL(cx, "array_store", 0, A_ERRS,
			lfipc_array_store(o->h.a, i, v));
		break;
	case 2:
		HX_CALL(cx, "array_exchange", 0, A_ERRS,
			lfipc_array_exchange(o->h.a, i, v, &old));
		break;
	case 3:
		HX_CALL(cx, "array_fetch_add", 0, A_ERRS,
			lfipc_array_fetch_add(o->h.a, i, v, &old));
		break;
	default:
		HX_CALL(cx, "array_cas", 0,
			HX_ERRS(EAGAIN, ERANGE, EOVERFLOW, EINVAL),
			lfipc_array_cas(o->h.a, i, 0, v));
	}
}

static void a_data(struct hx_ctx *cx, struct hx_obj *o)
{
	size_t es = lfipc_type_size(lfipc_array_type(o->h.a));
	size_t len = lfipc_array_len(o->h.a);
	void *p = lfipc_array_data(o->h.a);

	if (!p || es == 0 || len > SIZE_MAX / es ||
	    !hx_in_region(cx, p, len * es))
		hx_fail(cx, "array_data", 0, "elements outside the region");
	else
		(void)th_sum(p, len * es);
}

static void a_lock(struct hx_ctx *cx, struct hx_obj *o)
{
	lfipc_lock *l = lfipc_array_lock(o->h.a);

	if (l)
		lock_cycle(cx, l);
}

/* clang-format off */
static const struct hx_op a_ops[] = {
	{"copy", 4, a_copy},
	{"atomic", 6, a_atomic},
	{"data", 2, a_data},
	{"lock", 2, a_lock},
	{NULL, 0, NULL},
};
/* clang-format on */

static void a_fill(struct hx_ctx *cx, struct hx_obj *o)
{
	for (int i = 0; i < 4; i++)
		a_atomic(cx, o);
}

/* ---- Pipe ---------------------------------------------------------------- */

#define PIPE_OPEN_ERRS                                                         \
	HX_ERRS(ENOENT, EINVAL, ENAMETOOLONG, EBUSY, EPIPE, ENOMEM, EUSERS)
#define PIPE_IO_ERRS HX_ERRS(EAGAIN, ETIMEDOUT, EPIPE, EBADF, EBUSY, EUSERS)

static int p_create(struct hx_ctx *cx, struct hx_obj *o)
{
	return (int)HX_CALL(cx, "pipe_create", cx->hold_ns, CREATE_ERRS,
			    lfipc_pipe_create(cx->r, o->name, PIPE_RING,
					      o->t->arg, &o->h.end[0],
					      &o->h.end[1]));
}

/* Attach one end (either); the other stays NULL. */
static int p_open(struct hx_ctx *cx, struct hx_obj *o)
{
	int end = (int)rnd(cx, 2);

	o->h.end[0] = o->h.end[1] = NULL;
	return (int)HX_CALL(
	    cx, "pipe_open", cx->hold_ns, PIPE_OPEN_ERRS,
	    lfipc_pipe_open(cx->r, o->name, end, &o->h.end[end]));
}

static void p_close(struct hx_obj *o)
{
	lfipc_conn_close(o->h.end[0]);
	lfipc_conn_close(o->h.end[1]);
	o->h.end[0] = o->h.end[1] = NULL;
}

static lfipc_conn *p_end(struct hx_ctx *cx, struct hx_obj *o)
{
	lfipc_conn *c = o->h.end[rnd(cx, 2)];

	return c ? c : (o->h.end[0] ? o->h.end[0] : o->h.end[1]);
}

static void p_send(struct hx_ctx *cx, struct hx_obj *o)
{
	uint8_t msg[PIPE_RING / 2];
	lfipc_conn *c = p_end(cx, o);

	if (!c)
		return;
	th_fill(msg, sizeof(msg), cx->rng);
	/* Shorter than the ring: the timeout covers the whole send. */
	HX_CALL(
	    cx, "conn_send", HX_TMO(cx), PIPE_IO_ERRS,
	    lfipc_conn_send(c, msg, rnd(cx, sizeof(msg) + 1), cx->timeout_ns));
}

static void p_recv(struct hx_ctx *cx, struct hx_obj *o)
{
	/* Never larger than the largest frame that fits in the ring: a
	 * longer message streams through the ring, and its receiver waits
	 * for the rest as long as the sender lives, whatever the timeout
	 * (pipe.h), which a forged length header would make for ever. */
	size_t n = rnd(cx, 2) ? 64 : PIPE_RING - 8, len = 0;
	uint8_t *buf = malloc(n); /* exact: ASan sees overruns */
	lfipc_conn *c = p_end(cx, o);
	int64_t rc;

	if (!buf || !c) {
		free(buf);
		return;
	}
	rc = HX_CALL(cx, "conn_recv", HX_TMO(cx),
		     HX_ERRS(EMSGSIZE, EAGAIN, ETIMEDOUT, EPIPE, EBADF, EBUSY),
		     lfipc_conn_recv(c, buf, n, &len, cx->timeout_ns));
	if ((rc == 0 && len > n) || (rc == -EMSGSIZE && len <= n))
		hx_fail(cx, "conn_recv", rc, "length inconsistent with result");
	free(buf);
}

static void p_poll(struct hx_ctx *cx, struct hx_obj *o)
{
	lfipc_conn *c = p_end(cx, o);
	int64_t rc;

	if (!c)
		return;
	rc = HX_CALL(cx, "conn_poll", HX_TMO(cx), HX_ERRS(EBADF, EBUSY),
		     lfipc_conn_poll(c, cx->timeout_ns));
	if (rc > 1)
		hx_fail(cx, "conn_poll", rc, "neither 0 nor 1");
}

static void p_close_end(struct hx_ctx *cx, struct hx_obj *o)
{
	int end = (int)rnd(cx, 2);

	HX_CALL(cx, "conn_close", 0, HX_NOERRS,
		(lfipc_conn_close(o->h.end[end]), 0));
	o->h.end[end] = NULL;
}

/* clang-format off */
static const struct hx_op p_ops[] = {
	{"send", 6, p_send},
	{"recv", 6, p_recv},
	{"poll", 3, p_poll},
	{"close_end", 1, p_close_end},
	{NULL, 0, NULL},
};
/* clang-format on */

static void p_fill(struct hx_ctx *cx, struct hx_obj *o)
{
	for (int i = 0; i < 3; i++) {
		uint8_t msg[40];
		lfipc_conn *c = o->h.end[1] ? o->h.end[1] : o->h.end[0];

		if (!c)
			return;
		memset(msg, i, sizeof(msg));
		HX_CALL(cx, "conn_send", 0, PIPE_IO_ERRS,
			lfipc_conn_send(c, msg, rnd(cx, sizeof(msg) + 1),
					LFIPC_NOWAIT));
	}
}

/* ---- the table ---------------------------------------------------------- */

/* A type entry: name, variant, the functions of prefix pfx, fill. */
#define TYPE(name, arg, pfx, fill)                                             \
	{                                                                      \
		name, arg, pfx##_create, pfx##_open, pfx##_close, fill,        \
		    pfx##_ops                                                  \
	}

const struct hx_type hx_types[] = {
    TYPE("queue", 0, q, q_fill),
    TYPE("jqueue", LFIPC_QUEUE_JOINABLE, q, q_fill),
    TYPE("lock", 0, l, NULL),
    TYPE("rlock", 1, l, NULL),
    TYPE("sem", 0, s, NULL),
    TYPE("bsem", LFIPC_SEM_BOUNDED, s, NULL),
    TYPE("tsem", LFIPC_SEM_TRACK_HOLDERS, s, NULL),
    TYPE("tbsem", LFIPC_SEM_TRACK_HOLDERS | LFIPC_SEM_BOUNDED, s, NULL),
    TYPE("cond", 0, c, NULL),
    TYPE("event", 0, e, NULL),
    TYPE("barrier", 2, b, NULL),
    TYPE("barrier1", 1, b, NULL),
    TYPE("array", LFIPC_I64 | A_LOCK, a, a_fill),
    TYPE("u8array", LFIPC_U8, a, a_fill),
    TYPE("value", LFIPC_U16 | A_VALUE | A_LOCK, a, a_fill),
    TYPE("farray", LFIPC_F64, a, a_fill),
    TYPE("barray", LFIPC_BOOL, a, a_fill),
    TYPE("pipe", 1, p, p_fill),
    TYPE("pipe1w", 0, p, p_fill),
};
const size_t hx_ntypes = sizeof(hx_types) / sizeof(hx_types[0]);

/* ---- generic ------------------------------------------------------------- */

/* Create or open (fn) o; o->open says whether it worked. */
static int attach(struct hx_ctx *cx, struct hx_obj *o,
		  int (*fn)(struct hx_ctx *cx, struct hx_obj *o))
{
	int rc;

	cx->obj = o->name;
	rc = fn(cx, o);
	o->open = rc == 0;
	o->got = 0;
	return rc;
}

int hx_create(struct hx_ctx *cx, struct hx_obj *o)
{
	return attach(cx, o, o->t->create);
}

int hx_open(struct hx_ctx *cx, struct hx_obj *o)
{
	return attach(cx, o, o->t->open);
}

void hx_close(struct hx_obj *o)
{
	if (o->open)
		o->t->close(o);
	o->open = false;
}

int hx_remove(struct hx_ctx *cx, struct hx_obj *o)
{
	int rc;

	cx->obj = o->name;
	rc = (int)HX_CALL(cx, "object_remove", cx->hold_ns,
			  HX_ERRS(ENOENT, ENAMETOOLONG, EINVAL),
			  lfipc_object_remove(cx->r, o->name));
	hx_close(o);
	return rc;
}

void hx_run_all(struct hx_ctx *cx, struct hx_obj *o)
{
	cx->obj = o->name;
	for (const struct hx_op *op = o->t->ops; op->run; op++)
		op->run(cx, o);
}

void hx_run_one(struct hx_ctx *cx, struct hx_obj *o)
{
	unsigned total = 0, pick;
	const struct hx_op *op;

	cx->obj = o->name;
	for (op = o->t->ops; op->run; op++)
		total += op->weight;
	pick = (unsigned)rnd(cx, total);
	for (op = o->t->ops; op->run; op++) {
		if (pick < op->weight) {
			op->run(cx, o);
			return;
		}
		pick -= op->weight;
	}
}

/* What `lfipc show` and `lfipc ps` call, over whatever the region holds:
 * every listed object's status through a buffer larger than any status
 * struct (struct_size says so), the participants and the summary. Each
 * call ends with a documented code; the counts bound the loops, so a
 * directory or table that lies cannot make them endless. */
static void inspect_ops(struct hx_ctx *cx)
{
	union {
		size_t struct_size;
		unsigned char bytes[4096];
	} st;
	lfipc_object_entry e;
	lfipc_participant_info p;
	lfipc_region_status rs;
	unsigned cur = 0, n;
	int64_t rc;

	LFIPC_STATUS_INIT(rs);
	HX_CALL(cx, "region_stat", cx->hold_ns, HX_ERRS(EUSERS),
		lfipc_region_stat(cx->r, &rs));
	for (n = 0; n < 4096; n++) {
		LFIPC_STATUS_INIT(e);
		rc = HX_CALL(cx, "object_next", cx->hold_ns, HX_ERRS(EUSERS),
			     lfipc_object_next(cx->r, &cur, &e));
		if (rc != 1)
			break;
		if (memchr(e.name, 0, sizeof(e.name)) == NULL)
			hx_fail(cx, "object_next", rc, "name not terminated");
		memset(&st, 0, sizeof(st));
		st.struct_size = sizeof(st);
		HX_CALL(cx, "object_stat", cx->hold_ns,
			HX_ERRS(ENOENT, EMEDIUMTYPE, EINVAL, EUSERS),
			lfipc_object_stat(cx->r, e.name, e.type, &st));
	}
	if (n == 4096)
		hx_fail(cx, "object_next", rc, "more objects than a region has");
	cur = 0;
	for (n = 0; n <= LFIPC_PROC_SLOTS; n++) {
		LFIPC_STATUS_INIT(p);
		rc = HX_CALL(cx, "participant_next", cx->hold_ns, HX_NOERRS,
			     lfipc_participant_next(cx->r, &cur, &p));
		if (rc != 1)
			break;
	}
	if (n > LFIPC_PROC_SLOTS)
		hx_fail(cx, "participant_next", rc, "more than a table holds");
}

void hx_region_ops(struct hx_ctx *cx)
{
	lfipc_region_info info;
	lfipc_region *r2;
	int64_t rc;

	cx->obj = "region";
	rc = HX_CALL(cx, "region_stats", cx->hold_ns, HX_ERRS(EINVAL),
		     lfipc_region_stats(cx->r, &info));
	if (rc == 0 &&
	    (info.size != cx->r->size || info.bytes_free > info.size))
		hx_fail(cx, "region_stats", rc, "statistics out of range");
	inspect_ops(cx);
	HX_CALL(cx, "region_recover", cx->hold_ns, HX_ERRS(EINVAL),
		lfipc_region_recover(cx->r));
	rc = HX_CALL(
	    cx, "region_open_fd", cx->hold_ns,
	    HX_ERRS(ENOENT, EACCES, EINVAL, EUSERS, ENOMEM, EBADF, EMFILE),
	    lfipc_region_open_fd(lfipc_region_fd(cx->r), &r2));
	if (rc == 0) {
		HX_CALL(cx, "region_stats", cx->hold_ns, HX_ERRS(EINVAL),
			lfipc_region_stats(r2, &info));
		lfipc_region_close(r2);
	}
	if (cx->region_name) {
		rc = HX_CALL(
		    cx, "region_open", cx->hold_ns,
		    HX_ERRS(ENOENT, EACCES, EINVAL, EUSERS, ENOMEM, EMFILE),
		    lfipc_region_open(cx->region_name, &r2));
		if (rc == 0)
			lfipc_region_close(r2);
	}
}
