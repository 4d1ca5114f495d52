/* SPDX-License-Identifier: MIT */
/*
 * test_queue_record.c - a JoinableQueue consumer's in-flight record
 * (lib/queue_tasks.c, lfipc__q_count_free(); internal/queue_layout.h):
 * fork children killed at exact points of the count with the test hook
 * (LFIPC_TP_QREC_COUNTED: the record stored COUNTED, no slot of the run
 * freed yet), each kind of consumer (get, get_many, peek + release,
 * peek_many + release_many), and a record scribbled by a peer.
 *
 * Killed in COUNTED: the messages were counted, so recovery frees their
 * slots (no message delivered twice) and writes the tasks off (no join
 * waiting for ever). Killed in CLAIMED (the hook puts the record back to
 * the state just before the COUNTED store, then kills): nothing was
 * counted, so each message comes back exactly once.
 *
 * White-box: links the static archive to reach the hook.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <lfipc/inspect.h>
#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "common/qtest.h"
#include "common/testhelp.h"
#include "internal/wait.h"

TestSuite(queue_record, .init = qt_setup, .fini = qt_teardown,
	  .timeout = 60);

enum rk_kind { RK_GET, RK_GET_MANY, RK_RELEASE, RK_RELEASE_MANY };

static struct qpeer rk_qp;  /* the parent's view, inherited by the child */
static lfipc_queue *rk_q;
static enum rk_kind rk_kind;
static bool rk_claimed; /* kill in CLAIMED rather than COUNTED */

/* Put each COUNTED record k of the mask (bit k) back to CLAIMED(cnt - n,
 * n): the state one store earlier. */
static void rk_unclaim(unsigned mask)
{
	for (uint32_t i = 0; i < LFIPC_PROC_SLOTS; i++) {
		for (uint32_t k = 0; k < LFIPC_QREC_K; k++) {
			struct lfipc_qtask *t = qp_task(&rk_qp, i);
			uint64_t r = atomic_load(&t->rec[k]);
			uint32_t n = lfipc__qrec_n(r);
			uint64_t c = lfipc__qrec_cnt(r) - n;

			if (!(mask >> k & 1u) ||
			    lfipc__qrec_state(r) != LFIPC_QREC_COUNTED)
				continue;
			atomic_store(&t->rec[k],
				     lfipc__qrec(c, n, LFIPC_QREC_CLAIMED));
		}
	}
}

/* The hook of the child: at COUNTED, optionally put the record back to
 * CLAIMED(cnt - n, n) (the state one store earlier), then die. */
static void rk_hook(enum lfipc_test_point point, void *arg)
{
	(void)arg;
	if (point != LFIPC_TP_QREC_COUNTED)
		return;
	if (rk_claimed)
		rk_unclaim(3);
	raise(SIGKILL);
}

/* The child: take 4 messages the way rk_kind says; the hook kills it. */
static int rk_child(void *arg)
{
	int v[4][2];
	const void *m[4];
	size_t lens[4], len;

	(void)arg;
	lfipc__set_test_hook(rk_hook);
	switch (rk_kind) {
	case RK_GET:
		lfipc_queue_get(rk_q, v[0], sizeof(v[0]), &len, LFIPC_NOWAIT);
		break;
	case RK_GET_MANY:
		lfipc_queue_get_many(rk_q, v, sizeof(v[0]), lens, 4,
				     LFIPC_NOWAIT);
		break;
	case RK_RELEASE:
		if (lfipc_queue_peek(rk_q, m, lens, LFIPC_NOWAIT) == 0)
			lfipc_queue_release(rk_q, m[0]);
		break;
	case RK_RELEASE_MANY:
		if (lfipc_queue_peek_many(rk_q, m, lens, 4, LFIPC_NOWAIT) == 4)
			lfipc_queue_release_many(rk_q, m, 4);
		break;
	}
	return 9; /* not killed: the hook never ran */
}

/* Messages 0..3 put; a child of kind k killed at COUNTED (claimed: at
 * CLAIMED); then recovery. Returns how many messages the child took
 * (1 for get and release, else 4). */
static int rk_run(enum rk_kind k, bool claimed)
{
	pid_t pid;

	cr_assert_eq(lfipc_queue_create(qt_r, "rk", 8, 8, LFIPC_QUEUE_JOINABLE,
					&rk_q),
		     0);
	qp_open(qt_r, "rk", &rk_qp);
	cr_assert_eq(put_ints(rk_q, 0, 4, LFIPC_NOWAIT), 4);
	rk_kind = k;
	rk_claimed = claimed;
	cr_assert_gt(pid = th_fork(rk_child, NULL), 0);
	cr_assert_eq(th_reap(pid, QT_REAP_MS), 128 + SIGKILL,
		     "the child was not killed at its count");
	/* a supervisor's recovery: every slot of the dead, and its tasks */
	cr_assert_geq(lfipc_region_recover(qt_r), 0);
	return k == RK_GET || k == RK_RELEASE ? 1 : 4;
}

/* The rest of the queue after the kill: the messages from `from` on
 * (the ones the child did not take, plus, when from is 0, the ones it
 * took again as orphans), each exactly once, in any order. */
static void rk_drain(int from)
{
	int bufs[8][2];
	size_t lens[8];
	bool seen[4] = {false};
	int rc = lfipc_queue_get_many(rk_q, bufs, sizeof(bufs[0]), lens, 8,
				      LFIPC_NOWAIT);

	if (from == 4)
		cr_assert_eq(rc, -EAGAIN, "got %d", rc);
	else
		cr_assert_eq(rc, 4 - from, "got %d messages, want %d", rc,
			     4 - from);
	for (int i = 0; i < rc; i++) {
		int v = bufs[i][0];

		cr_assert(v >= from && v < 4, "message %d", v);
		cr_assert(!seen[v], "message %d delivered twice", v);
		seen[v] = true;
		cr_assert_eq(lfipc_queue_task_done(rk_q), 0);
	}
	cr_assert_eq(lfipc_queue_get_many(rk_q, bufs, sizeof(bufs[0]), lens, 8,
					  LFIPC_NOWAIT),
		     -EAGAIN);
}

/* Killed in COUNTED: the taken messages are not delivered again, their
 * tasks are written off (join: -EOWNERDEAD, then 0), nothing unfinished,
 * and the queue goes on. */
static void rk_counted(enum rk_kind k)
{
	lfipc_queue_status st = {.struct_size = sizeof(st)};
	int took = rk_run(k, false), next = 4;

	rk_drain(took);
	cr_assert_eq(lfipc_queue_join(rk_q, 2000000000), -EOWNERDEAD);
	cr_assert_eq(lfipc_queue_tasks_abandoned(rk_q), (uint64_t)took);
	cr_assert_eq(lfipc_queue_join(rk_q, 0), 0);
	cr_assert_eq(lfipc_queue_stat(rk_q, &st), 0);
	cr_assert_eq(st.tasks_unfinished, 0);
	cr_assert_eq(st.orphans, 0);
	cr_assert_eq(st.dead_claims, 0);
	/* a lap later the slots work as any */
	for (int lap = 0; lap < 3; lap++) {
		cr_assert_eq(put_ints(rk_q, next, next + 8, LFIPC_NOWAIT), 8);
		cr_assert_eq(get_ints(rk_q, 8, &next), 8);
		for (int i = 0; i < 8; i++)
			cr_assert_eq(lfipc_queue_task_done(rk_q), 0);
	}
	cr_assert_eq(lfipc_queue_join(rk_q, 0), 0);
	qp_close(&rk_qp);
	lfipc_queue_close(rk_q);
}

/* Killed in CLAIMED: the taken messages come back once each; no task of
 * the dead was counted, so join returns 0 once they are done. */
static void rk_claimed_run(enum rk_kind k)
{
	lfipc_queue_status st = {.struct_size = sizeof(st)};

	rk_run(k, true);
	rk_drain(0);
	cr_assert_eq(lfipc_queue_join(rk_q, 2000000000), 0);
	cr_assert_eq(lfipc_queue_tasks_abandoned(rk_q), 0);
	cr_assert_eq(lfipc_queue_stat(rk_q, &st), 0);
	cr_assert_eq(st.tasks_unfinished, 0);
	qp_close(&rk_qp);
	lfipc_queue_close(rk_q);
}

Test(queue_record, get_killed_counted) { rk_counted(RK_GET); }
Test(queue_record, get_many_killed_counted) { rk_counted(RK_GET_MANY); }
Test(queue_record, release_killed_counted) { rk_counted(RK_RELEASE); }
Test(queue_record, release_many_killed_counted)
{
	rk_counted(RK_RELEASE_MANY);
}
Test(queue_record, get_killed_claimed) { rk_claimed_run(RK_GET); }
Test(queue_record, get_many_killed_claimed) { rk_claimed_run(RK_GET_MANY); }
Test(queue_record, release_killed_claimed) { rk_claimed_run(RK_RELEASE); }
Test(queue_record, release_many_killed_claimed)
{
	rk_claimed_run(RK_RELEASE_MANY);
}

/* ---- two threads of a process, each holding a record ----------------- */

/*
 * A child with tt_n threads (2 or 3), each taking 2 messages (a get: 1)
 * the way rk_kind says, of the messages 0..7. The hook holds each thread that
 * reaches COUNTED there (its record held, nothing freed), so that two
 * threads hold the entry's two records at once. With 2 threads the
 * second to arrive kills the process (having put the records of
 * tt_unclaim back to CLAIMED). A thread that takes the old way (both
 * records held by its siblings: LFIPC_TP_QREC_OLDWAY, its slots freed,
 * not counted yet) is killed right there with 2 threads: that is the
 * window the second record closes (with one record, the second thread
 * takes the old way and the kill loses its two tasks; the test fails).
 * With 3 threads the third must take the old way (documented: the
 * window remains for it), and is let finish its call; it then kills the
 * process once the other two hold their records.
 */
static int tt_n;
static unsigned tt_unclaim; /* records (bit k) put back to CLAIMED */
static _Atomic int tt_in;   /* the child's threads held at COUNTED */
static _Atomic int *tt_old; /* shared: old ways taken in the child */

static void tt_hook(enum lfipc_test_point point, void *arg)
{
	(void)arg;
	if (point == LFIPC_TP_QREC_OLDWAY) {
		atomic_fetch_add(tt_old, 1);
		if (tt_n == 2)
			raise(SIGKILL);
		return;
	}
	if (point != LFIPC_TP_QREC_COUNTED)
		return;
	if (atomic_fetch_add(&tt_in, 1) + 1 == 2 && tt_n == 2) {
		rk_unclaim(tt_unclaim);
		raise(SIGKILL);
	}
	for (;;)
		pause();
}

/* One take of the thread's messages: true when it took them. A sibling
 * held in the middle of its call may make a take come back empty for a
 * moment (the caller retries). */
static bool tt_take(void)
{
	const int64_t to = 100000000; /* 100 ms */
	int v[2][2];
	const void *m[2];
	size_t lens[2], len;

	switch (rk_kind) {
	case RK_GET: /* one: a thread held at COUNTED takes no second */
		return lfipc_queue_get(rk_q, v[0], sizeof(v[0]), &len, to) == 0;
	case RK_GET_MANY:
		return lfipc_queue_get_many(rk_q, v, sizeof(v[0]), lens, 2,
					    to) == 2;
	default:
		return lfipc_queue_peek_many(rk_q, m, lens, 2, to) == 2 &&
		       lfipc_queue_release_many(rk_q, m, 2) == 2;
	}
}

static void *tt_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 50 && !tt_take(); i++)
		;
	/* only the one that took the old way returns (3 threads): the kill
	 * once both records are held (the parent fails a child that exits
	 * instead) */
	for (int i = 0; i < 10000 && atomic_load(&tt_in) < 2; i++)
		usleep(1000);
	if (atomic_load(&tt_in) < 2)
		_exit(7);
	raise(SIGKILL);
	return NULL;
}

static int tt_child(void *arg)
{
	pthread_t th[3];

	(void)arg;
	lfipc__set_test_hook(tt_hook);
	for (int i = 0; i < tt_n; i++)
		if (pthread_create(&th[i], NULL, tt_thread, NULL))
			return 8;
	for (int i = 0; i < tt_n; i++)
		pthread_join(th[i], NULL);
	return 9; /* not killed */
}

/* Messages 0..7 put; a child of n threads of kind k killed as above,
 * records `unclaim` put back to CLAIMED first; then recovery. counted:
 * the messages the dead had counted (their tasks written off); the rest
 * of what it took is delivered again. The rest of the queue: each message once,
 * the count exact, join -EOWNERDEAD once when tasks were written off. */
static void tt_run(enum rk_kind k, int n, unsigned unclaim, int counted)
{
	lfipc_queue_status st = {.struct_size = sizeof(st)};
	int bufs[8][2], rc, olds;
	size_t lens[8];
	bool seen[8] = {false};
	pid_t pid;

	if (th_tsan())
		cr_skip_test("TSan: a fork child must not create threads");
	tt_old = mmap(NULL, sizeof(*tt_old), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(tt_old, MAP_FAILED);
	cr_assert_eq(lfipc_queue_create(qt_r, "tt", 8, 8, LFIPC_QUEUE_JOINABLE,
					&rk_q),
		     0);
	qp_open(qt_r, "tt", &rk_qp);
	cr_assert_eq(put_ints(rk_q, 0, 8, LFIPC_NOWAIT), 8);
	rk_kind = k;
	tt_n = n;
	tt_unclaim = unclaim;
	cr_assert_gt(pid = th_fork(tt_child, NULL), 0);
	cr_assert_eq(th_reap(pid, QT_REAP_MS), 128 + SIGKILL,
		     "the child was not killed");
	olds = atomic_load(tt_old);
	/* with 2 threads none takes the old way; with 3, exactly one */
	cr_assert_eq(olds, n == 3 ? 1 : 0, "%d old ways", olds);
	cr_assert_geq(lfipc_region_recover(qt_r), 0);
	rc = lfipc_queue_get_many(rk_q, bufs, sizeof(bufs[0]), lens, 8,
				  LFIPC_NOWAIT);
	cr_assert_eq(rc, 8 - counted, "got %d, want %d", rc, 8 - counted);
	for (int i = 0; i < rc; i++) {
		int v = bufs[i][0];

		cr_assert(v >= 0 && v < 8, "message %d", v);
		cr_assert(!seen[v], "message %d delivered twice", v);
		seen[v] = true;
		cr_assert_eq(lfipc_queue_task_done(rk_q), 0);
	}
	/* the tasks of the dead written off: join returns, and says so once */
	cr_assert_eq(lfipc_queue_join(rk_q, 2000000000),
		     counted ? -EOWNERDEAD : 0);
	cr_assert_eq(lfipc_queue_tasks_abandoned(rk_q), (uint64_t)counted);
	cr_assert_eq(lfipc_queue_join(rk_q, 0), 0);
	cr_assert_eq(lfipc_queue_stat(rk_q, &st), 0);
	cr_assert_eq(st.tasks_unfinished, 0);
	cr_assert_eq(st.orphans, 0);
	cr_assert_eq(st.dead_claims, 0);
	/* the records work on: a new message, counted and done */
	cr_assert_eq(put_ints(rk_q, 8, 9, LFIPC_NOWAIT), 1);
	cr_assert_eq(lfipc_queue_get_many(rk_q, bufs, sizeof(bufs[0]), lens,
					  8, LFIPC_NOWAIT),
		     1);
	cr_assert_eq(bufs[0][0], 8);
	cr_assert_eq(lfipc_queue_join(rk_q, LFIPC_NOWAIT), -EAGAIN);
	cr_assert_eq(lfipc_queue_task_done(rk_q), 0);
	cr_assert_eq(lfipc_queue_join(rk_q, 0), 0);
	qp_close(&rk_qp);
	lfipc_queue_close(rk_q);
	munmap(tt_old, sizeof(*tt_old));
}

/* Both records COUNTED: the 4 messages written off, none delivered
 * again. */
Test(queue_record, two_threads_killed_counted_get)
{
	tt_run(RK_GET, 2, 0, 2);
}
Test(queue_record, two_threads_killed_counted_get_many)
{
	tt_run(RK_GET_MANY, 2, 0, 4);
}
Test(queue_record, two_threads_killed_counted_release_many)
{
	tt_run(RK_RELEASE_MANY, 2, 0, 4);
}
/* Record 1 CLAIMED: its 2 come back; record 0's 2 written off. */
Test(queue_record, two_threads_killed_counted_and_claimed)
{
	tt_run(RK_GET_MANY, 2, 2, 2);
}
/* Both CLAIMED: all 4 come back, nothing written off. */
Test(queue_record, two_threads_killed_claimed)
{
	tt_run(RK_GET_MANY, 2, 3, 0);
}
/* Three threads: two hold the records, the third takes the old way and
 * finishes its call (its 2 counted in got); then the kill: 6 written
 * off, none delivered again. */
Test(queue_record, three_threads_third_takes_old_way)
{
	tt_run(RK_GET_MANY, 3, 0, 6);
}
Test(queue_record, three_threads_third_takes_old_way_get)
{
	tt_run(RK_GET, 3, 0, 3);
}

/* ---- a scribbled record ------------------------------------------------ */

/* The child peeks messages 0..3 (READING by it) and stops; the parent
 * peeks message 4 (READING by the parent). */
static _Atomic int *rs_ready;

static int rs_child(void *arg)
{
	const void *m[4];
	size_t lens[4];

	(void)arg;
	/* one release first, so that the child owns its entry */
	if (lfipc_queue_peek(rk_q, m, lens, LFIPC_NOWAIT) ||
	    lfipc_queue_release(rk_q, m[0]))
		return 1;
	if (lfipc_queue_peek_many(rk_q, m, lens, 4, LFIPC_NOWAIT) != 4)
		return 2;
	atomic_store(rs_ready, 1);
	pause();
	return 0;
}

/*
 * The dead child's record rewritten in each way a peer may: state 3
 * (HOLE) with n 4, n above 64, a COUNTED run whose first word names
 * another token (the parent's, which holds message 5 READING), a COUNTED
 * run over the slots of the parent, the owner changed, a HOLE record (the
 * drop of a hole, lfipc__q_tasks_drop_hole()) naming the parent's slot
 * (not valid: another token) or exactly the child's slot of message 1
 * (valid: that one slot is counted and freed as a hole, never made TOMB
 * again nor delivered). Recovery must never crash, never free a slot not
 * READING by the dead (the parent's peek stays its own and its release
 * works), and orphan what the record does not validly cover.
 */
static void rs_case(int how, uint32_t k)
{
	int v[8][2];
	const void *m[1];
	size_t lens[8];
	struct lfipc_qtask *t = NULL;
	uint64_t pw, cw = 0;
	pid_t pid;
	int rc, next = 1;

	rs_ready = mmap(NULL, sizeof(*rs_ready), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(rs_ready, MAP_FAILED);
	cr_assert_eq(lfipc_queue_create(qt_r, "rs", 16, 8,
					LFIPC_QUEUE_JOINABLE, &rk_q),
		     0);
	qp_open(qt_r, "rs", &rk_qp);
	cr_assert_eq(put_ints(rk_q, 0, 6, LFIPC_NOWAIT), 6);
	cr_assert_gt(pid = th_fork(rs_child, NULL), 0);
	while (!atomic_load(rs_ready))
		usleep(1000);
	/* message 5 READING by the parent */
	cr_assert_eq(lfipc_queue_peek(rk_q, m, lens, LFIPC_NOWAIT), 0);
	cr_assert_eq(*(const int *)m[0], 5);
	pw = atomic_load(qp_word(&rk_qp, 5));
	kill(pid, SIGKILL);
	cr_assert_eq(th_reap(pid, QT_REAP_MS), 128 + SIGKILL);
	for (uint32_t i = 0; i < LFIPC_PROC_SLOTS; i++)
		if (atomic_load(&qp_task(&rk_qp, i)->owner) != 0)
			t = qp_task(&rk_qp, i);
	cr_assert_not_null(t);
	cw = atomic_load(qp_word(&rk_qp, 1)); /* READING(1, child) */
	switch (how) {
	case 0: /* HOLE with n 4 (a HOLE record has n 1) */
		atomic_store(&t->rec[k], lfipc__qrec(7, 4, 3));
		atomic_store(&t->rec_pos[k], cw);
		break;
	case 1: /* n above 64 */
		atomic_store(&t->rec[k], lfipc__qrec(7, 100, 2));
		atomic_store(&t->rec_pos[k], cw);
		break;
	case 2: /* a run whose first word names the parent */
		atomic_store(&t->rec[k], lfipc__qrec(7, 64, 2));
		atomic_store(&t->rec_pos[k], pw);
		break;
	case 3: /* a run from the child's first slot over the parent's */
		atomic_store(&t->rec[k], lfipc__qrec(7, 64, 2));
		atomic_store(&t->rec_pos[k], cw - 1); /* seq 1: position 0 */
		break;
	case 5: /* HOLE naming the parent's slot (READING by the parent) */
		atomic_store(&t->rec[k], lfipc__qrec(7, 1, LFIPC_QREC_HOLE));
		atomic_store(&t->rec_pos[k], pw);
		break;
	case 6: /* HOLE naming the child's slot of message 1 */
		atomic_store(&t->rec[k], lfipc__qrec(7, 1, LFIPC_QREC_HOLE));
		atomic_store(&t->rec_pos[k], cw);
		break;
	default: /* the owner changed */
		atomic_store(&t->rec[k], lfipc__qrec(7, 4, 2));
		atomic_store(&t->rec_pos[k], cw);
		atomic_store(&t->owner, QP_DEAD_TOKEN);
		break;
	}
	cr_assert_geq(lfipc_region_recover(qt_r), 0);
	/* the parent's slot is untouched and its release works */
	cr_assert_eq(atomic_load(qp_word(&rk_qp, 5)), pw);
	cr_assert_eq(lfipc_queue_release(rk_q, m[0]), 0);
	if (how == 3) {
		/* a valid-looking COUNTED run over the child's slots (its
		 * token, its owner): freed as counted, never the parent's */
		rc = lfipc_queue_get_many(rk_q, v, sizeof(v[0]), lens, 8,
					  LFIPC_NOWAIT);
		cr_assert_eq(rc, -EAGAIN, "rc %d", rc);
	} else if (how == 6) {
		/* a valid-looking HOLE record of the child naming its slot:
		 * that one is counted and freed as a hole (never re-tombed,
		 * never delivered), the other 3 come back as orphans */
		rc = lfipc_queue_get_many(rk_q, v, sizeof(v[0]), lens, 8,
					  LFIPC_NOWAIT);
		cr_assert_eq(rc, 3, "rc %d", rc);
		for (int i = 0; i < rc; i++)
			cr_assert_eq(v[i][0], 2 + i);
		cr_assert_eq(atomic_load(qp_word(&rk_qp, 1)),
			     qp_mkword(1 + 16, 0));
	} else {
		/* not validly covered: the child's 4 come back as orphans */
		rc = lfipc_queue_get_many(rk_q, v, sizeof(v[0]), lens, 8,
					  LFIPC_NOWAIT);
		cr_assert_eq(rc, 4, "rc %d", rc);
		for (int i = 0; i < rc; i++)
			cr_assert_eq(v[i][0], next++);
	}
	qp_close(&rk_qp);
	lfipc_queue_close(rk_q);
	munmap(rs_ready, sizeof(*rs_ready));
}

/* Each case on record 0 and on record 1 (a second thread's). */
#define RS_TEST(name, how)                                                     \
	Test(queue_record, name) { rs_case(how, 0); }                          \
	Test(queue_record, name##_rec1) { rs_case(how, 1); }

RS_TEST(scribbled_record_state, 0)
RS_TEST(scribbled_record_length, 1)
RS_TEST(scribbled_record_names_a_live_token, 2)
RS_TEST(scribbled_record_covers_a_live_slot, 3)
RS_TEST(scribbled_record_owner, 4)
RS_TEST(scribbled_hole_names_a_live_slot, 5)
RS_TEST(scribbled_hole_names_a_dead_slot, 6)
