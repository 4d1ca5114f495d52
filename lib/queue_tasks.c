/* SPDX-License-Identifier: MIT */
/*
 * queue_tasks.c - JoinableQueue counting: the per-participant task
 * table (messages got, tasks settled), write-off of dead participants'
 * tasks, task_done and join. internal/queue.h describes the shared words.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <lfipc/queue.h>

#include "internal/objtype.h"
#include "internal/proc.h"
#include "internal/queue.h"
#include "internal/recover.h"
#include "internal/region.h"
#include "internal/shm.h"
#include "internal/wait.h"

static struct lfipc_qtask *task_of(const lfipc_queue *q, uint32_t tok)
{
	return q_task_of(q, tok);
}

/* Settle every task of entry t not settled yet (its participants are
 * dead): raise settled to the value of got read first. Idempotent, so any
 * number of participants may do it at once, and a kill anywhere leaves
 * either nothing or all of it done. */
static void write_off(lfipc_queue *q, struct lfipc_qtask *t, uint64_t g,
		      struct qdl *dl)
{
	struct lfipc_cas_bound b = LFIPC_CAS_BOUND_INIT;
	uint64_t s = atomic_load(&t->settled);

	/* A peer that rewrites settled without end (below g): we give up
	 * after the CAS bound (internal/wait.h), or at the deadline dl of
	 * the caller's call when it comes first (NULL: none); the tasks stay
	 * outstanding, which delays joins (by their timeout), nothing else. */
	while ((int64_t)(g - s) > 0) {
		if (atomic_compare_exchange_weak(&t->settled, &s, g)) {
			/* statistics only: a kill here under-counts them */
			atomic_fetch_add(&q->h->abandoned, g - s);
			ev_wake(q, &q->h->joined);
			return;
		}
		if (q_cas_retry(&b, dl) < 0)
			return;
	}
}

/* Adopt tok's entry: the entry of a new incarnation of a participant
 * slot still holds its dead predecessor's tasks: write them off, then
 * store owner. The threads of a process share its token: several may
 * adopt the entry at once, and one of them may have stored owner and
 * counted its messages in got between our first look at owner and our
 * load of got. So got is loaded before a second look at owner, as in
 * lfipc__q_tasks_reap(): a got that includes tok's counts is followed by
 * owner == tok (tok stores owner before its first increment; all
 * seq_cst), and then the entry is adopted already and nothing is written
 * off. Written off otherwise: tasks of the dead only, and write_off()
 * only raises settled, so a second adopter's write-off of the same value
 * is a no-op. A consumer calls this before it frees the slots of the
 * messages it counts (lfipc__q_tasks_got() then finds the entry adopted:
 * one load): a kill between freeing a slot and counting its message
 * leaves a task nobody owns (doc/queue.md, "Windows that remain"), and
 * the write-off (a CAS, a wake-up of `joined`) is then outside that
 * window. Harmless at any time: a different owner in the entry of a live
 * token is a dead predecessor's. */
void lfipc__q_tasks_adopt(lfipc_queue *q, uint32_t tok, struct qdl *dl)
{
	struct lfipc_qtask *t = task_of(q, tok);

	if (atomic_load(&t->owner) != tok) {
		uint64_t g = atomic_load(&t->got);

		if (atomic_load(&t->owner) != tok) {
			write_off(q, t, g, dl);
			atomic_store(&t->owner, tok);
		}
	}
}

/* Messages delivered to tok: count them in its entry, adopting it first
 * if the caller has not (lfipc__q_tasks_adopt()). */
void lfipc__q_tasks_got(lfipc_queue *q, uint32_t tok, uint64_t k,
		       struct qdl *dl)
{
	lfipc__q_tasks_adopt(q, tok, dl);
	atomic_fetch_add(&task_of(q, tok)->got, k);
}

/* Write off the unsettled tasks of every dead participant. got is loaded
 * before owner: a new incarnation stores owner before its first got
 * increment, so a got value that includes its tasks is always followed by
 * the live owner, never by its dead predecessor. O(participants). */
int lfipc__q_tasks_reap(lfipc_queue *q)
{
	int n = 0;

	for (uint32_t i = 0; i < LFIPC_PROC_SLOTS; i++) {
		struct lfipc_qtask *t = &q->tasks[i];
		uint64_t g = atomic_load(&t->got);

		if ((int64_t)(g - atomic_load(&t->settled)) <= 0)
			continue;
		if (!lfipc__token_alive(q->r, atomic_load(&t->owner))) {
			write_off(q, t, g, NULL);
			n++;
		}
	}
	return n;
}

/* Settle one task of entry t. Return: 1 done; 0 it has none outstanding;
 * -EPROTO a peer kept rewriting settled past the CAS bound
 * (internal/wait.h). */
static int task_settle(struct lfipc_qtask *t)
{
	struct lfipc_cas_bound b = LFIPC_CAS_BOUND_INIT;
	uint64_t s = atomic_load(&t->settled);
	int rc;

	while ((int64_t)(atomic_load(&t->got) - s) > 0) {
		if (atomic_compare_exchange_weak(&t->settled, &s, s + 1))
			return 1;
		rc = lfipc__cas_retry(&b, LFIPC_DL_NEVER);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Does entry t have a task outstanding and a live owner (tok, the
 * caller's process, is alive without a question)? A system call
 * (lfipc__token_alive) per entry with tasks outstanding. */
static bool live_tasks(lfipc_queue *q, struct lfipc_qtask *t, uint32_t tok)
{
	uint32_t o;

	if ((int64_t)(atomic_load(&t->got) - atomic_load(&t->settled)) <= 0)
		return false;
	o = atomic_load(&t->owner);
	return o == tok || lfipc__token_alive(q->r, o);
}

int lfipc_queue_task_done(lfipc_queue *q)
{
	struct lfipc_qtask *own;
	uint32_t tok;
	int rc = 0;

	if (!q || !q->joinable || lfipc__self(q->r, &tok))
		return -EINVAL;
	/* The caller's own task first: its entry, once it has adopted it
	 * (its first get stores owner before counting; until then what the
	 * entry holds is a dead predecessor's). Else one another process
	 * got (the task was handed over, as Python allows): a live
	 * getter's first, so that a task handed over by a live process is
	 * never charged to a dead one's entry (which then was neither
	 * written off nor reported, and the live one's stayed outstanding:
	 * join waited for a task that was done); a dead one's only when no
	 * live entry has one (a task the dead handed over before dying). */
	own = task_of(q, tok);
	if (atomic_load(&own->owner) == tok)
		rc = task_settle(own);
	for (int pass = 0; rc == 0 && pass < 2; pass++) {
		for (uint32_t i = 0; i < LFIPC_PROC_SLOTS; i++) {
			struct lfipc_qtask *t = &q->tasks[i];

			if (pass == 0 && !live_tasks(q, t, tok))
				continue;
			rc = task_settle(t);
			if (rc != 0)
				break;
		}
	}
	if (rc < 0)
		return rc;
	if (rc == 0)
		return -EINVAL;
	ev_wake(q, &q->h->joined);
	return 0;
}

static bool all_done(lfipc_queue *q)
{
	/* settled and done first, enq_pos last: each only grows, so a put,
	 * get and task_done racing with these loads can only make the count
	 * of unfinished tasks look higher (join returns late), never lower
	 * (join returning while a task is outstanding). */
	uint64_t sum = 0, d, e;

	for (uint32_t i = 0; i < LFIPC_PROC_SLOTS; i++)
		sum += atomic_load(&q->tasks[i].settled);
	d = atomic_load(&q->h->done);
	e = atomic_load(&q->h->enq_pos);
	return (int64_t)(e - d - sum) <= 0;
}

/* All done: 0, or -EOWNERDEAD the first time after tasks were written off
 * (reported to one join only). */
static int join_result(lfipc_queue *q)
{
	/* seen first, the count after it: seen only ever takes a count read
	 * before (a CAS up to it) and the count only grows, so the count read
	 * after seen is at or past it. A failed CAS means another join
	 * reported: read the count again, so that seen is never moved back
	 * below a count a join has reported (which reported write-offs
	 * twice), and a seen ahead of the count (only a scribble) is moved
	 * back once and heals, instead of hiding every later write-off (as a
	 * test of `a - seen > 0` did). Bounded: a peer that rewrites the
	 * word without end gets 0. */
	uint64_t seen = atomic_load(&q->h->abandoned_seen), a;

	lfipc__test_point(LFIPC_TP_JOIN_LOADED, q);
	a = atomic_load(&q->h->abandoned);
	for (int i = 0; seen != a && i < 64; i++) {
		if (atomic_compare_exchange_strong(&q->h->abandoned_seen, &seen,
						   a))
			return -EOWNERDEAD;
		a = atomic_load(&q->h->abandoned);
	}
	return 0;
}

/* Readiness callback of a join (internal/wait.h): a poller must see the
 * dead written off too, so its checks reap dead task holders. */
static int join_ready(void *ctx, struct lfipc_sleep *sl, bool check)
{
	struct qwait *c = ctx;
	int rc;

	if (check) {
		lfipc__q_tasks_reap(c->q);
		lfipc__q_slice_check(c->q, c->tok);
	}
	if (!all_done(c->q))
		return 0;
	rc = join_result(c->q);
	return rc ? rc : 1;
}

int lfipc_queue_join(lfipc_queue *q, int64_t timeout_ns)
{
	struct qwait c = {.q = q};
	int rc;

	if (!q || !q->joinable)
		return -EINVAL;
	rc = lfipc__self_timed(q->r, &c.tok, &timeout_ns);
	if (rc)
		return rc;
	return lfipc__q_wait_run(&c, -1, &q->h->joined, join_ready, timeout_ns);
}

uint64_t lfipc_queue_tasks_abandoned(const lfipc_queue *q)
{
	return q && q->joinable ? atomic_load(&q->h->abandoned) : 0;
}
