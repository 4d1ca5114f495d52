/* SPDX-License-Identifier: MIT */
/*
 * test_queue_crash.c - a queue survives the death of any participant at
 * any instruction.
 *
 * First the states a kill leaves, one by one: some made by SIGKILLing a
 * real process at a known point (holding a reservation or a peek, between
 * get and task_done), some written into the queue directly through the
 * shared layout (a kill between two instructions of the library that no
 * signal can be aimed at). Then the torture rounds of the kill-and-check
 * harness (tests/common/killcheck.h): producers, consumers and clearers
 * SIGKILLed at random moments, every acknowledged message delivered
 * exactly once.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lfipc/inspect.h>
#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "common/killcheck.h"
#include "internal/proc.h"
#include "common/qtest.h"
#include "common/testhelp.h"

TestSuite(queue_crash, .init = qt_setup, .fini = qt_teardown, .timeout = 300);

/* ---- one participant killed at a known point ---------------------------- */

enum hold { HOLD_RESERVE, HOLD_PEEK, HOLD_GET };

struct holder {
	lfipc_queue *q;
	enum hold what;
	int fd[2];
};

/* Reserve a slot, peek a message or get one, tell the parent, wait. */
static int hold_and_wait(void *arg)
{
	struct holder *ho = arg;
	const void *m;
	void *slot;
	size_t len;
	char b[16], x = 1;
	int rc;

	switch (ho->what) {
	case HOLD_RESERVE:
		rc = lfipc_queue_reserve(ho->q, &slot, LFIPC_NOWAIT);
		break;
	case HOLD_PEEK:
		rc = lfipc_queue_peek(ho->q, &m, &len, LFIPC_NOWAIT);
		break;
	default:
		rc = lfipc_queue_get(ho->q, b, sizeof(b), NULL, LFIPC_NOWAIT);
		break;
	}
	if (rc || th_write_all(ho->fd[1], &x, 1))
		return 1;
	pause();
	return 0;
}

/* Fork a child that holds what, and SIGKILL it while it holds it. */
static void kill_holding(lfipc_queue *q, enum hold what)
{
	struct holder ho = {q, what, {-1, -1}};
	char x;
	pid_t pid;

	cr_assert_eq(pipe(ho.fd), 0);
	pid = th_fork(hold_and_wait, &ho);
	cr_assert_gt(pid, 0);
	cr_assert_eq(th_read_all(ho.fd[0], &x, 1), 0, "the child holds it");
	kill(pid, SIGKILL);
	cr_assert_eq(th_reap(pid, QT_REAP_MS), 128 + SIGKILL);
	close(ho.fd[0]);
	close(ho.fd[1]);
}

/* A consumer that only polls with LFIPC_NOWAIT never sleeps, so it never
 * reaches a slice end: it must notice the dead producer's hole itself, at
 * the cost of a liveness check every few dozen polls. */
Test(queue_crash, a_polling_consumer_gets_past_a_dead_producers_hole)
{
	lfipc_queue *q;
	uint64_t m = 42, b = 0;
	int rc = -EAGAIN, polls;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 8, 8, 0, &q), 0);
	kill_holding(q, HOLD_RESERVE);
	cr_assert_eq(lfipc_queue_put(q, &m, sizeof(m), LFIPC_NOWAIT), 0);
	for (polls = 0; polls < 100000 && rc == -EAGAIN; polls++)
		rc = lfipc_queue_get(q, &b, sizeof(b), NULL, LFIPC_NOWAIT);
	cr_assert_eq(rc, 0, "after %d polls", polls);
	cr_assert_eq(b, 42);
	cr_assert_leq(polls, 1000, "O(1) amortised: %d polls", polls);
	cr_assert_eq(lfipc_queue_qsize(q), 0);
	lfipc_queue_close(q);
}

/* qsize() counts what a get would return: not a dead producer's hole, but
 * the message of a dead consumer waiting to be delivered again. */
Test(queue_crash, qsize_counts_what_get_returns_after_a_crash)
{
	lfipc_queue *q;
	uint64_t m, b;

	/* a consumer killed holding the only message */
	cr_assert_eq(lfipc_queue_create(qt_r, "a", 8, 8, 0, &q), 0);
	m = 7;
	cr_assert_eq(lfipc_queue_put(q, &m, 8, LFIPC_NOWAIT), 0);
	kill_holding(q, HOLD_PEEK);
	cr_assert_geq(lfipc_region_recover(qt_r), 1);
	cr_assert_eq(lfipc_queue_qsize(q), 1);
	cr_assert(!lfipc_queue_empty(q));
	cr_assert_eq(lfipc_queue_get(q, &b, 8, NULL, LFIPC_NOWAIT), 0);
	cr_assert_eq(b, 7);
	cr_assert_eq(lfipc_queue_qsize(q), 0);
	cr_assert(lfipc_queue_empty(q));
	lfipc_queue_close(q);

	/* a producer killed mid-put, nothing else queued */
	cr_assert_eq(lfipc_queue_create(qt_r, "b", 8, 8, 0, &q), 0);
	kill_holding(q, HOLD_RESERVE);
	cr_assert_geq(lfipc_region_recover(qt_r), 1);
	cr_assert_eq(lfipc_queue_qsize(q), 0);
	cr_assert(lfipc_queue_empty(q));
	cr_assert_eq(lfipc_queue_get(q, &b, 8, NULL, LFIPC_NOWAIT), -EAGAIN);
	lfipc_queue_close(q);

	/* a producer killed mid-put between two messages: a hole in the
	 * middle of the queue */
	cr_assert_eq(lfipc_queue_create(qt_r, "c", 8, 8, 0, &q), 0);
	m = 1;
	cr_assert_eq(lfipc_queue_put(q, &m, 8, LFIPC_NOWAIT), 0);
	kill_holding(q, HOLD_RESERVE);
	m = 2;
	cr_assert_eq(lfipc_queue_put(q, &m, 8, LFIPC_NOWAIT), 0);
	cr_assert_geq(lfipc_region_recover(qt_r), 1);
	cr_assert_eq(lfipc_queue_qsize(q), 2);
	for (uint64_t want = 1; want <= 2; want++) {
		cr_assert_eq(lfipc_queue_get(q, &b, 8, NULL, LFIPC_NOWAIT), 0);
		cr_assert_eq(b, want);
	}
	cr_assert_eq(lfipc_queue_qsize(q), 0);
	cr_assert(lfipc_queue_empty(q));
	lfipc_queue_close(q);
}

/* A JoinableQueue consumer killed between get and task_done: join does
 * not wait for it. Its task is written off when join notices the death,
 * join reports that once (-EOWNERDEAD), and the statistics count it. */
Test(queue_crash,
     join_writes_off_the_task_of_a_consumer_killed_before_task_done)
{
	lfipc_queue *q;
	char b[8];

	cr_assert_eq(
	    lfipc_queue_create(qt_r, "q", 8, 8, LFIPC_QUEUE_JOINABLE, &q), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(lfipc_queue_put(q, &i, 1, LFIPC_NOWAIT), 0);
	kill_holding(q, HOLD_GET);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(lfipc_queue_get(q, b, 8, NULL, LFIPC_NOWAIT), 0);
		cr_assert_eq(lfipc_queue_task_done(q), 0);
	}
	cr_assert_eq(lfipc_queue_join(q, 30000000000), -EOWNERDEAD);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0, "reported once");
	cr_assert_eq(lfipc_queue_tasks_abandoned(q), 1);
	cr_assert_eq(lfipc_queue_task_done(q), -EINVAL, "nothing left");
	/* the queue goes on counting exactly */
	cr_assert_eq(lfipc_queue_put(q, "x", 1, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), -EAGAIN);
	cr_assert_eq(lfipc_queue_get(q, b, 8, NULL, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0);
	lfipc_queue_close(q);
}

/* Two consumers killed between get and task_done, one of their tasks
 * settled by another process (as for a task handed over to it): only the
 * other is written off. */
Test(queue_crash, join_writes_off_only_what_nobody_settled)
{
	lfipc_queue *q;

	cr_assert_eq(
	    lfipc_queue_create(qt_r, "q", 8, 8, LFIPC_QUEUE_JOINABLE, &q), 0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(lfipc_queue_put(q, &i, 1, LFIPC_NOWAIT), 0);
	kill_holding(q, HOLD_GET);
	kill_holding(q, HOLD_GET);
	cr_assert_eq(lfipc_queue_task_done(q), 0, "a handed-over task");
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), -EOWNERDEAD);
	cr_assert_eq(lfipc_queue_tasks_abandoned(q), 1);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0);
	lfipc_queue_close(q);
}

/* Fork a child that holds what (its pid in *pid, its pipe in ho; the
 * caller kills or releases it: HOLD_GET's child pauses until killed). */
static void fork_holding(struct holder *ho, lfipc_queue *q, enum hold what,
			 pid_t *pid)
{
	char x;

	*ho = (struct holder){q, what, {-1, -1}};
	cr_assert_eq(pipe(ho->fd), 0);
	*pid = th_fork(hold_and_wait, ho);
	cr_assert_gt(*pid, 0);
	cr_assert_eq(th_read_all(ho->fd[0], &x, 1), 0, "the child holds it");
}

/* The two tests below: a task_done for the task that the live getter
 * lpid (which pauses holding it) handed over settles the live one's
 * entry, so the dead one's task is written off and every task is done:
 * join says -EOWNERDEAD once, then 0. lpid is killed and reaped before
 * any assertion. */
static void settle_handed_over(lfipc_queue *q, pid_t lpid)
{
	int td = lfipc_queue_task_done(q);
	int j1 = lfipc_queue_join(q, LFIPC_NOWAIT);
	uint64_t ab = lfipc_queue_tasks_abandoned(q);
	int j2 = lfipc_queue_join(q, LFIPC_NOWAIT);

	kill(lpid, SIGKILL);
	cr_assert_eq(th_reap(lpid, QT_REAP_MS), 128 + SIGKILL);
	cr_assert_eq(td, 0, "the live getter's task");
	cr_assert_eq(j1, -EOWNERDEAD, "the dead one's task written off");
	cr_assert_eq(ab, 1);
	cr_assert_eq(j2, 0, "reported once");
}

/* A task handed over by a live process (its getter, alive, still counts
 * it) is settled there, not in the entry of a dead one that comes first
 * in the table: a task_done that took the dead one's task left the live
 * one's outstanding for as long as its getter lived, and join waited for
 * a task that was done (-EAGAIN here), while the dead one's was neither
 * written off nor reported. */
Test(queue_crash, a_handed_over_task_is_settled_in_a_live_getters_entry)
{
	struct holder dead, live;
	pid_t dpid, lpid;
	lfipc_queue *q;

	cr_assert_eq(
	    lfipc_queue_create(qt_r, "q", 8, 8, LFIPC_QUEUE_JOINABLE, &q), 0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(lfipc_queue_put(q, &i, 1, LFIPC_NOWAIT), 0);
	/* both alive while the second registers: the dead one's slot (and
	 * so its task entry) comes first and is not reused */
	fork_holding(&dead, q, HOLD_GET, &dpid);
	fork_holding(&live, q, HOLD_GET, &lpid);
	kill(dpid, SIGKILL);
	cr_assert_eq(th_reap(dpid, QT_REAP_MS), 128 + SIGKILL);
	settle_handed_over(q, lpid);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0,
		     "nothing of the live getter's left to write off");
	cr_assert_eq(lfipc_queue_tasks_abandoned(q), 1);
	for (int i = 0; i < 2; i++) {
		close(dead.fd[i]);
		close(live.fd[i]);
	}
	lfipc_queue_close(q);
}

/* Our participant slot's task entry still owned by a dead incarnation
 * of the slot, with a task outstanding (made here by rewriting the owner
 * of the entry our get counted in: a dead token of our slot): until our
 * first get adopts it, its tasks are the dead one's, not ours. A
 * task_done for a task a live process handed over settles that live
 * one's entry; before, it settled the dead one's task as ours (join then
 * waited for the live one's, -EAGAIN, and wrote off nothing). */
Test(queue_crash, a_task_entry_not_adopted_yet_is_not_the_callers_own)
{
	struct holder live;
	struct qpeer qp;
	struct lfipc_qtask *e = NULL;
	lfipc_queue *q;
	uint32_t tok;
	pid_t lpid;
	char b[8];

	cr_assert_eq(
	    lfipc_queue_create(qt_r, "q", 8, 8, LFIPC_QUEUE_JOINABLE, &q), 0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(lfipc_queue_put(q, &i, 1, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_get(q, b, sizeof(b), NULL, LFIPC_NOWAIT), 0);
	qp_open(qt_r, "q", &qp);
	for (uint32_t i = 0; i < LFIPC_PROC_SLOTS && !e; i++)
		if (qp_task_got(qp_task(&qp, i)) == 1)
			e = qp_task(&qp, i);
	cr_assert_not_null(e, "our entry");
	tok = atomic_load(&e->owner);
	/* the same slot, another (odd: once live) generation: dead */
	atomic_store(&e->owner, (tok & ~LFIPC_TOKEN_GEN_MASK) |
				    ((tok + 2) & LFIPC_TOKEN_GEN_MASK));
	fork_holding(&live, q, HOLD_GET, &lpid);
	settle_handed_over(q, lpid);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0);
	for (int i = 0; i < 2; i++)
		close(live.fd[i]);
	qp_close(&qp);
	lfipc_queue_close(q);
}

/* The orphan count is changed only under the queue lock. A consumer killed
 * right after its rescue CAS, before it lowered the count, leaves the lock
 * held by a dead token, the count one too high and the message READING by
 * the dead: the next get takes the lock over and recounts, the next slice
 * (here: recover) makes the message an orphan again, it is delivered, and
 * the count is exact again, so gets stop looking for orphans. */
Test(queue_crash, an_orphan_count_left_too_high_by_a_kill_corrects_itself)
{
	lfipc_queue *q;
	struct qpeer qp;
	uint64_t m = 5, b = 0;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 1024, 8, 0, &q), 0);
	cr_assert_eq(lfipc_queue_put(q, &m, 8, LFIPC_NOWAIT), 0);
	kill_holding(q, HOLD_PEEK);
	cr_assert_geq(lfipc_region_recover(qt_r), 1);
	qp_open(qt_r, "q", &qp);
	cr_assert_eq(atomic_load(&qp.h->orphans), 1);
	/* the rescuer's CAS, then its death */
	atomic_store(qp_word(&qp, 0),
		     qp_mkword(1, QP_DEAD_TOKEN | LFIPC_Q_CL_R));
	atomic_store(&qp.h->lock, QP_DEAD_TOKEN);
	cr_assert_eq(lfipc_queue_get(q, &b, 8, NULL, LFIPC_NOWAIT), -EAGAIN);
	cr_assert_eq(atomic_load(&qp.h->orphans), 0, "recounted");
	cr_assert_eq(atomic_load(&qp.h->lock), 0);
	cr_assert_geq(lfipc_region_recover(qt_r), 1);
	cr_assert_eq(lfipc_queue_get(q, &b, 8, NULL, LFIPC_NOWAIT), 0);
	cr_assert_eq(b, 5, "delivered again");
	cr_assert_eq(atomic_load(&qp.h->orphans), 0);
	/* a count too high with the lock free (a peer wrote it) */
	atomic_store(&qp.h->orphans, 5);
	cr_assert_eq(lfipc_queue_get(q, &b, 8, NULL, LFIPC_NOWAIT), -EAGAIN);
	cr_assert_eq(atomic_load(&qp.h->orphans), 0, "corrected");
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(lfipc_queue_put(q, &m, 8, LFIPC_NOWAIT), 0);
		cr_assert_eq(lfipc_queue_get(q, &b, 8, NULL, LFIPC_NOWAIT), 0);
	}
	cr_assert_eq(atomic_load(&qp.h->orphans), 0);
	qp_close(&qp);
	lfipc_queue_close(q);
}

/* A clear holds a head that is still being written (WRITING -> DISCARD);
 * the clearer dies; the take-over undoes it (DISCARD -> WRITING). Both may
 * happen between the two CASes of the producer's publish, any number of
 * times: the publish must still succeed (found by the SPIN model,
 * shared/model/recovery.pml). A thread plays clear and undo in a loop. */
struct flip {
	_Atomic uint64_t *word;
	uint64_t writing, discard;
	_Atomic uint64_t flips;
};

static void *flip_writing_discard(void *arg)
{
	struct flip *f = arg;

	for (;;) {
		uint64_t w = f->writing;

		if (!atomic_compare_exchange_strong(f->word, &w, f->discard)) {
			w = f->discard;
			if (!atomic_compare_exchange_strong(f->word, &w,
							    f->writing))
				return NULL; /* published: neither form */
		}
		atomic_fetch_add(&f->flips, 1);
	}
}

Test(queue_crash, a_commit_racing_a_dead_clearers_undo_still_publishes,
     .timeout = 900)
{
	int rounds = 3000 * th_scale();
	lfipc_queue *q;
	struct qpeer qp;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 2, 8, 0, &q), 0);
	qp_open(qt_r, "q", &qp);
	for (int round = 0; round < rounds; round++) {
		uint64_t p = atomic_load(&qp.h->enq_pos), w;
		struct flip f;
		pthread_t t;
		void *slot;
		char b[8];

		cr_assert_eq(lfipc_queue_reserve(q, &slot, LFIPC_NOWAIT), 0);
		f.word = qp_word(&qp, p & 1);
		f.writing = atomic_load(f.word);
		f.discard = f.writing | ((uint64_t)LFIPC_Q_CL_R << 32);
		atomic_init(&f.flips, 0);
		cr_assert_eq(pthread_create(&t, NULL, flip_writing_discard, &f),
			     0);
		/* commit while the word flips */
		while (atomic_load(&f.flips) < 64)
			sched_yield();
		cr_assert_eq(lfipc_queue_commit(q, slot, 1), 0, "round %d",
			     round);
		pthread_join(t, NULL);
		w = atomic_load(f.word);
		if (w == qp_mkword((uint32_t)p + 1, 0)) {
			cr_assert_eq(
			    lfipc_queue_get(q, b, 8, NULL, LFIPC_NOWAIT), 0);
			continue;
		}
		/* discarded (CLR): finish the clear the flipper played */
		cr_assert_eq(w, qp_mkword((uint32_t)p + 1, LFIPC_Q_CL_WR),
			     "round %d: %llx", round, (unsigned long long)w);
		atomic_store(f.word, qp_mkword((uint32_t)p + 2, 0));
		atomic_store(&qp.h->deq_pos, p + 1);
	}
	qp_close(&qp);
	lfipc_queue_close(q);
}

static int reserve_and_die(void *arg)
{
	void *slot;

	return lfipc_queue_reserve(arg, &slot, LFIPC_NOWAIT) ? 1 : 0;
}

Test(queue_crash, get_many_skips_a_dead_producers_hole_and_gets_the_rest)
{
	lfipc_queue *q;
	int next = 0;

	cr_assert_eq(
	    lfipc_queue_create(qt_r, "q", 16, 8, LFIPC_QUEUE_JOINABLE, &q), 0);
	cr_assert_eq(put_ints(q, 0, 3, LFIPC_NOWAIT), 3);
	cr_assert_eq(th_reap(th_fork(reserve_and_die, q), QT_REAP_MS), 0);
	cr_assert_eq(put_ints(q, 3, 7, LFIPC_NOWAIT), 4);
	cr_assert_geq(lfipc_region_recover(qt_r), 1, "the hole was repaired");
	cr_assert_eq(get_ints(q, 16, &next), 7, "the hole is not a message");
	for (int i = 0; i < 7; i++)
		cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0, "hole = done");
	lfipc_queue_close(q);
}

Test(queue_crash, a_clearer_killed_holding_a_full_head_does_not_wedge_the_queue)
{
	lfipc_queue *q;
	struct qpeer qp;
	char buf[8];

	cr_assert_eq(
	    lfipc_queue_create(qt_r, "q", 4, 8, LFIPC_QUEUE_JOINABLE, &q), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(lfipc_queue_put(q, &i, 1, LFIPC_NOWAIT), 0);
	/* a clearer died right after taking the head: CLR(0), lock held */
	qp_open(qt_r, "q", &qp);
	atomic_store(qp_word(&qp, 0), qp_mkword(1, LFIPC_Q_CL_WR));
	atomic_store(&qp.h->lock, QP_DEAD_TOKEN);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_NOWAIT), -EAGAIN,
		     "the held head is in flight");
	/* a waiting get notices the dead clearer at its slice end; the
	 * message it was discarding is dropped, the rest come out */
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, 2000000000), 0);
	cr_assert_eq(buf[0], 1);
	cr_assert_eq(atomic_load(&qp.h->lock), 0);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_NOWAIT), 0);
	cr_assert_eq(buf[0], 2);
	cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0, "exact count");
	qp_close(&qp);
	lfipc_queue_close(q);
}

Test(queue_crash,
     a_clear_takes_over_from_a_clearer_killed_holding_a_written_head)
{
	lfipc_queue *q;
	struct qpeer qp;
	void *slot;
	char buf[8];
	uint64_t w;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 4, 8, 0, &q), 0);
	cr_assert_eq(lfipc_queue_reserve(q, &slot, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_put(q, "b", 1, LFIPC_NOWAIT), 0);
	/* a clearer died right after marking our reservation DISCARD */
	qp_open(qt_r, "q", &qp);
	w = atomic_load(qp_word(&qp, 0));
	cr_assert_eq((uint32_t)(w >> 32) & LFIPC_Q_CL_WR, LFIPC_Q_CL_W,
		     "WRITING");
	atomic_store(qp_word(&qp, 0), w | ((uint64_t)LFIPC_Q_CL_R << 32));
	atomic_store(&qp.h->lock, QP_DEAD_TOKEN);
	cr_assert_eq(lfipc_queue_clear(q), 2);
	cr_assert_eq(atomic_load(&qp.h->lock), 0);
	cr_assert_eq(lfipc_queue_commit(q, slot, 1), 0);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_NOWAIT), -EAGAIN);
	for (int i = 0; i < 8; i++) {
		cr_assert_eq(lfipc_queue_put(q, &i, 1, LFIPC_NOWAIT), 0);
		cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_NOWAIT), 0);
		cr_assert_eq(buf[0], (char)i);
	}
	qp_close(&qp);
	lfipc_queue_close(q);
}

Test(queue_crash, a_put_many_killed_before_moving_enq_pos_leaves_only_holes)
{
	lfipc_queue *q;
	struct qpeer qp;
	int next = 0;

	cr_assert_eq(
	    lfipc_queue_create(qt_r, "q", 8, 8, LFIPC_QUEUE_JOINABLE, &q), 0);
	cr_assert_eq(put_ints(q, 0, 2, LFIPC_NOWAIT), 2);
	qp_open(qt_r, "q", &qp);
	for (uint32_t p = 2; p < 6; p++)
		atomic_store(qp_word(&qp, p),
			     qp_mkword(p, QP_DEAD_TOKEN | LFIPC_Q_CL_W));
	atomic_store(&qp.h->enq_pos, 3);
	cr_assert_eq(lfipc_region_recover(qt_r), 4, "four holes");
	cr_assert_eq(get_ints(q, 8, &next), 2, "the holes are skipped");
	cr_assert_eq(atomic_load(&qp.h->deq_pos), 6);
	/* dropping the holes moved enq_pos past them too, so join still
	 * counts the two messages got and not yet done */
	cr_assert_eq(atomic_load(&qp.h->enq_pos), 6);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), -EAGAIN);
	cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), -EAGAIN);
	cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_qsize(q), 0);
	cr_assert_eq(get_ints(q, 8, &next), -EAGAIN);
	cr_assert_eq(lfipc_queue_clear(q), 0);
	/* producers help enq_pos past the holes; the queue is whole again */
	cr_assert_eq(put_ints(q, 2, 12, LFIPC_NOWAIT), 8);
	cr_assert(lfipc_queue_full(q));
	cr_assert_eq(get_ints(q, 8, &next), 8);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0,
		     "10 got + 4 holes = 14 positions");
	qp_close(&qp);
	lfipc_queue_close(q);
}

/* A get_many killed holding a run (positions 0..2 READING, deq_pos moved
 * past the first only). */
Test(queue_crash, a_get_many_killed_holding_a_run_hands_it_to_another_consumer)
{
	lfipc_queue *q;
	struct qpeer qp;
	int next = 0;

	cr_assert_eq(
	    lfipc_queue_create(qt_r, "q", 8, 8, LFIPC_QUEUE_JOINABLE, &q), 0);
	cr_assert_eq(put_ints(q, 0, 5, LFIPC_NOWAIT), 5);
	qp_open(qt_r, "q", &qp);
	for (uint32_t p = 0; p < 3; p++)
		atomic_store(qp_word(&qp, p),
			     qp_mkword(p + 1, QP_DEAD_TOKEN | LFIPC_Q_CL_R));
	atomic_store(&qp.h->deq_pos, 1);
	cr_assert_eq(lfipc_region_recover(qt_r), 3, "three orphans");
	/* orphans lie behind deq_pos, as clear's bound assumes */
	cr_assert_eq(atomic_load(&qp.h->deq_pos), 3);
	cr_assert_eq(get_ints(q, 8, &next), 5, "orphans first, then the rest");
	cr_assert_eq(atomic_load(&qp.h->orphans), 0);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0);
	cr_assert_eq(put_ints(q, 5, 13, LFIPC_NOWAIT), 8);
	cr_assert_eq(get_ints(q, 8, &next), 8);
	qp_close(&qp);
	lfipc_queue_close(q);
}

/* ---- torture: SIGKILL at random moments (tests/common/killcheck.h) ------ */

/* Single puts, and consumers that peek and release: a message a killed
 * consumer held in its peek is delivered again, so it may be seen twice;
 * nothing else may. */
Test(queue_crash,
     sigkilled_producers_and_consumers_lose_no_acknowledged_message)
{
	int rounds = 150 * th_scale();
	uint64_t rng = 12345, total = 0;

	kc_init();
	for (int round = 0; round < rounds; round++) {
		struct kc_round rd;
		char name[32];

		snprintf(name, sizeof(name), "c%d", round);
		cr_assert_eq(lfipc_queue_create(qt_r, name, 8, 16, 0, &kc_q),
			     0);
		kc_start(&rd, kc_producer, kc_consumer);
		kc_kill(&rd, &rng, true);
		cr_assert_geq(lfipc_region_recover(qt_r), 0);
		kc_finish(&rd, round);
		total += kc_check(&rd, round, kc_dup_if_peeked, NULL);
		lfipc_queue_close(kc_q);
		cr_assert_eq(lfipc_object_remove(qt_r, name), 0);
	}
	cr_assert_gt(total, (uint64_t)rounds, "messages flowed");
	kc_fini();
}

/* put_many and get_many of random sizes, on queues of every capacity from
 * 1 to 12: nothing is delivered twice (a get_many records only after it
 * returned, and by then its slots are released); an acknowledged message
 * is missing only when a killed consumer had copied it into its buffer. */
Test(queue_crash,
     sigkilled_bulk_producers_and_consumers_lose_no_acknowledged_message)
{
	int rounds = 150 * th_scale();
	uint64_t rng = 4242, total = 0, lost_to_dead = 0;

	kc_init();
	for (int round = 0; round < rounds; round++) {
		struct kc_round rd;
		char name[32];

		snprintf(name, sizeof(name), "b%d", round);
		cr_assert_eq(lfipc_queue_create(qt_r, name, 1 + round % 12, 16,
						LFIPC_QUEUE_JOINABLE, &kc_q),
			     0);
		kc_start(&rd, kc_bulk_producer, kc_bulk_consumer);
		kc_kill(&rd, &rng, true);
		/* half the rounds leave the dead to the survivors' slices */
		if (round % 2)
			cr_assert_geq(lfipc_region_recover(qt_r), 0);
		kc_finish(&rd, round);
		total += kc_check(&rd, round, kc_lost_if_copied, &lost_to_dead);
		lfipc_queue_close(kc_q);
		cr_assert_eq(lfipc_object_remove(qt_r, name), 0);
	}
	cr_assert_gt(total, (uint64_t)rounds, "messages flowed");
	cr_log_info("bulk torture: %llu acked, %llu taken by killed consumers",
		    (unsigned long long)total,
		    (unsigned long long)lost_to_dead);
	cr_assert_leq(lost_to_dead, (uint64_t)rounds * KC_B);
	kc_fini();
}

/* Clears discard messages, so an acknowledged message may be missing. */
static bool discarded(const struct kc_round *rd, uint32_t p, uint32_t i,
		      unsigned n)
{
	(void)rd;
	(void)p;
	(void)i;
	return n == 0;
}

/*
 * A clearer SIGKILLed at a random point (possibly holding the lock and the
 * head slot) must not wedge the queue: live consumers notice (at a slice
 * end, or after polling the same held head), or lfipc_region_recover()
 * does; the queue drains, shutdown reaches every consumer, nothing is
 * delivered that was not put or delivered twice, and the lock is free.
 */
Test(queue_crash, sigkilled_clearers_never_wedge_the_queue)
{
	int rounds = 40 * th_scale();
	uint64_t rng = 777;

	kc_init();
	for (int round = 0; round < rounds; round++) {
		struct kc_round rd;
		char name[32];
		pid_t clr;

		snprintf(name, sizeof(name), "k%d", round);
		cr_assert_eq(lfipc_queue_create(qt_r, name, 8, 16,
						LFIPC_QUEUE_JOINABLE, &kc_q),
			     0);
		kc_start(&rd, kc_producer, kc_consumer);
		clr = th_fork(kc_clearer, NULL);
		cr_assert_gt(clr, 0);
		usleep((useconds_t)(500 + th_rand(&rng) % 3000));
		kill(clr, SIGKILL);
		cr_assert_eq(th_reap(clr, QT_REAP_MS), 128 + SIGKILL);
		kc_kill(&rd, &rng, false);
		if (round % 2)
			cr_assert_geq(lfipc_region_recover(qt_r), 0);
		kc_finish(&rd, round);
		kc_check(&rd, round, discarded, NULL);
		/* the lock is free again: a clear works at once */
		cr_assert_geq(lfipc_queue_clear(kc_q), 0);
		lfipc_queue_close(kc_q);
		cr_assert_eq(lfipc_object_remove(qt_r, name), 0);
	}
	kc_fini();
}

/* ---- single-producer / single-consumer queues: the role's holder killed -- */

/* A consumer that peeks and releases, checking that every producer's
 * messages come in strictly increasing order (one consumer: FIFO per
 * producer), except for one message in a successor (consumer 1): the one
 * its killed predecessor held in a peek (maybe before recording it), which
 * is delivered again once the death is noticed, maybe after newer ones. */
static int spsc_consumer_role(void *arg)
{
	int cid = (int)(uintptr_t)arg;
	int64_t last[KC_P] = {-1, -1};
	int late = 0;

	for (;;) {
		const uint32_t *m;
		const void *msg;
		size_t len;
		int rc = lfipc_queue_peek(kc_q, &msg, &len, 2000000000);

		if (rc == -EPIPE)
			return 0;
		if (rc)
			return 1;
		m = msg;
		kc_record(cid, msg, len);
		if (len == 16 && m[0] < KC_P) {
			if ((int64_t)m[1] > last[m[0]])
				last[m[0]] = m[1];
			else if (cid == 0 || late++)
				return 3; /* out of order */
		}
		if (lfipc_queue_release(kc_q, msg))
			return 2;
		atomic_store(&kc->inflight[cid], 0);
	}
}

/* SIGKILL the single producer (and, every other round, the single
 * consumer) of a single-producer single-consumer queue at a random moment;
 * a new producer (consumer) then takes the role over, and every
 * acknowledged message is delivered exactly once (a killed consumer's
 * peeked message at most twice), in order per producer. While the first
 * producer lives, a put from here is refused with -EBUSY. */
Test(queue_crash, a_killed_single_producer_or_consumer_is_taken_over)
{
	int rounds = 40 * th_scale();
	uint64_t rng = 777, total = 0;

	kc_init();
	for (int round = 0; round < rounds; round++) {
		struct kc_round rd;
		int (*prod)(void *) = round % 2 ? kc_bulk_producer : kc_producer;
		uint32_t m[4] = {0};
		char name[32];
		int64_t t0;
		int rc;

		snprintf(name, sizeof(name), "s%d", round);
		cr_assert_eq(lfipc_queue_create(qt_r, name, 1 + round % 9, 16,
						LFIPC_QUEUE_SINGLE_PRODUCER |
						    LFIPC_QUEUE_SINGLE_CONSUMER |
						    (round % 3 ? 0
							       : LFIPC_QUEUE_JOINABLE),
						&kc_q),
			     0);
		memset(kc, 0, sizeof(*kc));
		memset(&rd, 0, sizeof(rd));
		rd.prod[0] = th_fork(prod, (void *)(uintptr_t)0);
		cr_assert_gt(rd.prod[0], 0);
		/* Once producer 0 has put something it holds the role; with
		 * no consumer yet it cannot finish (and give the role up by
		 * exiting) before it fills the queue. */
		t0 = th_now_ns();
		while (atomic_load(&kc->acked[0]) == 0 &&
		       th_now_ns() - t0 < (int64_t)QT_REAP_MS * 1000000)
			usleep(100);
		cr_assert_gt(atomic_load(&kc->acked[0]), 0);
		cr_assert_eq(lfipc_queue_put(kc_q, m, sizeof(m), LFIPC_NOWAIT),
			     -EBUSY, "round %d: a second producer", round);
		rd.cons[0] = th_fork(spsc_consumer_role, (void *)(uintptr_t)0);
		cr_assert_gt(rd.cons[0], 0);
		usleep((useconds_t)(th_rand(&rng) % 3000));
		kill(rd.prod[0], SIGKILL);
		rd.pk[0] = true;
		cr_assert_eq(waitpid(rd.prod[0], NULL, 0), rd.prod[0]);
		if (round % 2 == 0) {
			kill(rd.cons[0], SIGKILL);
			rd.ck[0] = true;
			cr_assert_eq(waitpid(rd.cons[0], NULL, 0), rd.cons[0]);
			rd.cons[1] = th_fork(spsc_consumer_role,
					     (void *)(uintptr_t)1);
			cr_assert_gt(rd.cons[1], 0);
		} else {
			rd.ck[1] = true; /* no second consumer this round */
		}
		/* the successor takes the producer role over and puts all
		 * of its messages */
		rd.prod[1] = th_fork(prod, (void *)(uintptr_t)1);
		cr_assert_gt(rd.prod[1], 0);
		rc = th_reap(rd.prod[1], KC_REAP_MS);
		cr_assert_eq(rc, 0, "round %d: the new producer failed (%d)",
			     round, rc);
		cr_assert_eq(atomic_load(&kc->acked[1]), KC_MAX);
		kc_finish(&rd, round);
		total += kc_check(&rd, round, kc_dup_if_peeked, NULL);
		lfipc_queue_close(kc_q);
		cr_assert_eq(lfipc_object_remove(qt_r, name), 0);
	}
	cr_assert_gt(total, (uint64_t)rounds * KC_MAX, "messages flowed");
	kc_fini();
}

/* Clears discard messages; a killed consumer's peeked message may come
 * twice. */
static bool discarded_or_dup(const struct kc_round *rd, uint32_t p,
			     uint32_t i, unsigned n)
{
	return n == 0 || kc_dup_if_peeked(rd, p, i, n);
}

/* SIGKILL a clearer and the single consumer of a single-consumer queue at
 * random moments, while two producers put (the consumer moves deq_pos with
 * a store, and a clear waits for it, or orphans the message of a consumer
 * killed between its claim and that store: lib/queue.c,
 * clear_wait_consumer()). A successor consumer takes the role over and a
 * second clearer keeps clearing; nothing is delivered twice (but the
 * killed consumer's peeked message), nothing acknowledged is lost
 * uncleared, order per producer holds, the queue drains and the lock is
 * free at the end. */
Test(queue_crash, a_single_consumer_and_clearers_killed_at_random_lose_nothing)
{
	int rounds = 30 * th_scale();
	uint64_t rng = 9191;

	kc_init();
	for (int round = 0; round < rounds; round++) {
		struct kc_round rd;
		char name[32];
		pid_t clr[2];

		snprintf(name, sizeof(name), "c%d", round);
		cr_assert_eq(lfipc_queue_create(qt_r, name, 1 + round % 9, 16,
						LFIPC_QUEUE_SINGLE_CONSUMER |
						    (round % 3 ? 0
							       : LFIPC_QUEUE_JOINABLE),
						&kc_q),
			     0);
		memset(kc, 0, sizeof(*kc));
		memset(&rd, 0, sizeof(rd));
		rd.cons[0] = th_fork(spsc_consumer_role, (void *)(uintptr_t)0);
		cr_assert_gt(rd.cons[0], 0);
		for (int i = 0; i < KC_P; i++) {
			rd.prod[i] = th_fork(kc_producer, (void *)(uintptr_t)i);
			cr_assert_gt(rd.prod[i], 0);
		}
		for (int k = 0; k < 2; k++) {
			clr[k] = th_fork(kc_clearer, NULL);
			cr_assert_gt(clr[k], 0);
		}
		usleep((useconds_t)(300 + th_rand(&rng) % 3000));
		kill(round % 2 ? clr[0] : rd.cons[0], SIGKILL);
		usleep((useconds_t)(th_rand(&rng) % 1000));
		kill(round % 2 ? rd.cons[0] : clr[0], SIGKILL);
		rd.ck[0] = true;
		cr_assert_eq(th_reap(clr[0], QT_REAP_MS), 128 + SIGKILL);
		cr_assert_eq(th_reap(rd.cons[0], QT_REAP_MS), 128 + SIGKILL);
		rd.cons[1] = th_fork(spsc_consumer_role, (void *)(uintptr_t)1);
		cr_assert_gt(rd.cons[1], 0);
		usleep((useconds_t)(th_rand(&rng) % 2000));
		kill(clr[1], SIGKILL);
		cr_assert_eq(th_reap(clr[1], QT_REAP_MS), 128 + SIGKILL);
		if (round % 4 == 1)
			cr_assert_geq(lfipc_region_recover(qt_r), 0);
		for (int i = 0; i < KC_P; i++)
			cr_assert_eq(th_reap(rd.prod[i], KC_REAP_MS), 0,
				     "round %d: producer %d", round, i);
		kc_finish(&rd, round);
		kc_check(&rd, round, discarded_or_dup, NULL);
		cr_assert_eq(lfipc_queue_qsize(kc_q), 0);
		/* the lock is free again: a clear works at once */
		cr_assert_eq(lfipc_queue_clear(kc_q), 0);
		lfipc_queue_close(kc_q);
		cr_assert_eq(lfipc_object_remove(qt_r, name), 0);
	}
	kc_fini();
}

/* ---- JoinableQueue: a new incarnation's threads adopting at once ------ */

#define AT_T 4	   /* threads of the new incarnation */
#define AT_M 200   /* messages each */
#define AT_DEAD 5  /* tasks its predecessor left */
#define AT_TMO 2000000000 /* ns */

static lfipc_queue *at_q;
static _Atomic int at_go, at_bad;

/* the predecessor: gets AT_DEAD messages, settles none, closes the
 * region (its participant slot then names no pid: the next process to
 * register takes it, and its task entry, before any dead one's) */
static int at_dead(void *arg)
{
	uint64_t b;
	size_t len;

	(void)arg;
	for (int i = 0; i < AT_DEAD; i++)
		if (lfipc_queue_get(at_q, &b, sizeof(b), &len, LFIPC_NOWAIT))
			return 1;
	lfipc_region_close(qt_r);
	return 0;
}

/* AT_M messages by get, get_many, peek+release or peek_many+release_many
 * (by thread), each settled at once: task_done must never say -EINVAL */
static void *at_thread(void *arg)
{
	int mode = (int)(uintptr_t)arg, got = 0;
	uint64_t b[8];
	const void *m[8];
	size_t len[8];

	while (!atomic_load(&at_go))
		;
	while (got < AT_M) {
		int n = AT_M - got < 8 ? AT_M - got : 8, k = 1;

		if (mode == 0)
			k = (k = lfipc_queue_get(at_q, b, sizeof(b[0]), len,
						 AT_TMO))
				    ? k
				    : 1;
		else if (mode == 1)
			k = lfipc_queue_get_many(at_q, b, sizeof(b[0]), len,
						 (size_t)n, AT_TMO);
		else if (mode == 2)
			k = lfipc_queue_peek(at_q, m, len, AT_TMO) ||
					    lfipc_queue_release(at_q, m[0])
				    ? -1
				    : 1;
		else if ((k = lfipc_queue_peek_many(at_q, m, len, (size_t)n,
						    AT_TMO)) > 0 &&
			 lfipc_queue_release_many(at_q, m, (size_t)k) != k)
			k = -1;
		if (k <= 0) {
			fprintf(stderr, "mode %d got %d: %d\n", mode, got, k);
			atomic_fetch_add(&at_bad, 1);
			return NULL;
		}
		for (int i = 0; i < k; i++)
			if ((n = lfipc_queue_task_done(at_q))) {
				fprintf(stderr, "mode %d task_done %d\n",
					mode, n);
				atomic_fetch_add(&at_bad, 1);
			}
		got += k;
	}
	return NULL;
}

static int at_new(void *arg)
{
	pthread_t t[AT_T];

	(void)arg;
	if (th_tsan()) { /* TSan: no thread in a child of a fork */
		atomic_store(&at_go, 1);
		for (int i = 0; i < AT_T; i++)
			at_thread((void *)(uintptr_t)i);
	}
	for (int i = 0; i < AT_T && !th_tsan(); i++)
		if (pthread_create(&t[i], NULL, at_thread,
				   (void *)(uintptr_t)i))
			return 1;
	atomic_store(&at_go, 1);
	for (int i = 0; i < AT_T && !th_tsan(); i++)
		pthread_join(t[i], NULL);
	/* every task settled, none left: one more is -EINVAL */
	if (lfipc_queue_task_done(at_q) != -EINVAL)
		return 3;
	return atomic_load(&at_bad) ? 2 : 0;
}

/* The threads of a process whose participant slot (and task entry) a
 * consumer that left with tasks outstanding held before all get at once,
 * each way there is: the entry is adopted (the dead's AT_DEAD tasks
 * written off once), every message counted exactly (task_done never
 * -EINVAL, one more is), and join finds nothing unfinished. */
Test(queue_crash, threads_of_a_new_incarnation_adopt_its_entry_at_once)
{
	int rounds = 30 * th_scale();
	uint64_t v = 0;

	for (int r = 0; r < rounds; r++) {
		lfipc_queue_status st = {.struct_size = sizeof(st)};
		pid_t pid;
		int jr;

		cr_assert_eq(lfipc_queue_create(qt_r, "at", 1024, 8,
						LFIPC_QUEUE_JOINABLE, &at_q),
			     0);
		for (int i = 0; i < AT_DEAD + AT_T * AT_M; i++, v++)
			cr_assert_eq(lfipc_queue_put(at_q, &v, sizeof(v),
						     LFIPC_NOWAIT),
				     0);
		cr_assert_gt(pid = th_fork(at_dead, NULL), 0);
		cr_assert_eq(th_reap(pid, QT_REAP_MS), 0);
		/* not written off yet: the adopters do it */
		cr_assert_eq(lfipc_queue_tasks_abandoned(at_q), 0u);
		cr_assert_gt(pid = th_fork(at_new, NULL), 0);
		jr = th_reap(pid, QT_REAP_MS);
		cr_assert_eq(jr, 0, "round %d: %d", r, jr);
		cr_assert_eq(lfipc_queue_tasks_abandoned(at_q),
			     (uint64_t)AT_DEAD, "round %d", r);
		jr = lfipc_queue_join(at_q, LFIPC_NOWAIT);
		cr_assert(jr == 0 || jr == -EOWNERDEAD, "join %d", jr);
		cr_assert_eq(lfipc_queue_join(at_q, LFIPC_NOWAIT), 0);
		cr_assert_eq(lfipc_queue_stat(at_q, &st), 0);
		cr_assert_eq(st.tasks_unfinished, 0u);
		cr_assert_eq(lfipc_queue_tasks_abandoned(at_q),
			     (uint64_t)AT_DEAD);
		lfipc_queue_close(at_q);
		cr_assert_eq(lfipc_object_remove(qt_r, "at"), 0);
	}
}
