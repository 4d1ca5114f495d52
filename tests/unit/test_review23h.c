/* SPDX-License-Identifier: MIT */
/*
 * test_review23h.c - hostile review of a JoinableQueue's drop of a hole
 * through the dropper's record (lfipc__q_tasks_drop_hole(),
 * lib/queue_tasks.c). Tests that show a defect stay failing (review
 * rev23h, /work/scratch/rev23h/REPORT.md).
 *
 * The drop stores COUNTED(c + 1) (step 5: the hole is a task of the
 * dropper's entry) and only later settled += 1 (step 7, a fetch_add).
 * In between, any task_done can settle that hole as if it were a real
 * task (task_settle(): the own entry, or a live entry with tasks), and
 * the fetch_add then settles it a second time: sum(settled) is one too
 * high for ever and join returns while a task is outstanding.
 *
 * White-box (links the static archive for the test hook), in test_queue:
 *   make -j2 tests/unit/test_queue
 *   build/tests/unit/test_queue --filter 'review23h/<all>'
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "common/qtest.h"
#include "common/testhelp.h"
#include "internal/wait.h"

#define RV_N 8

TestSuite(review23h, .init = qt_setup, .fini = qt_teardown, .timeout = 60);

/* Make position pos (the head: deq_pos == enq_pos == pos) a hole as a
 * producer's give-up leaves it: TOMB, below hole_hi, enq_pos past it. */
static void rv_hole_at(struct qpeer *qp, uint64_t pos)
{
	cr_assert_eq(atomic_load(&qp->h->enq_pos), pos);
	atomic_store(&qp->h->hole_hi, pos + 1);
	atomic_store(qp_word(qp, pos % RV_N),
		     qp_mkword((uint32_t)(pos + 1), LFIPC_Q_TOMB));
	atomic_store(&qp->h->enq_pos, pos + 1);
}

static lfipc_queue *rv_q;
static int rv_td_rc = 1;

/* At step 5 of the drop (the hole counted, not settled yet): a
 * task_done with no task of ours outstanding (a surplus one). */
static void rv_td_at_counted(enum lfipc_test_point point, void *arg)
{
	(void)arg;
	if (point == LFIPC_TP_QHOLE_COUNTED && rv_td_rc == 1)
		rv_td_rc = lfipc_queue_task_done(rv_q);
}

/* A surplus task_done (Python: ValueError; here -EINVAL) that falls in
 * the window of a hole's drop was taken as done, and the count drifted:
 * the hole was settled twice; afterwards join returned with a task held.
 * Since review 23h the dropper settles the hole as a task_done would
 * (settle_one()): a surplus one in the window takes the hole and returns
 * 0 (documented), the dropper's then finds nothing to settle, and the
 * count stays exact. */
Test(review23h, surplus_task_done_in_the_drop_window)
{
	struct qpeer qp;
	lfipc_queue_status st = {.struct_size = sizeof(st)};
	int next = 1, v[2];
	size_t len;

	cr_assert_eq(lfipc_queue_create(qt_r, "rv1", RV_N, 8,
					LFIPC_QUEUE_JOINABLE, &rv_q),
		     0);
	qp_open(qt_r, "rv1", &qp);
	rv_hole_at(&qp, 0);
	cr_assert_eq(put_ints(rv_q, 1, 4, LFIPC_NOWAIT), 3);
	/* no task of ours: -EINVAL outside the window */
	cr_assert_eq(lfipc_queue_task_done(rv_q), -EINVAL);
	lfipc__set_test_hook(rv_td_at_counted);
	cr_assert_eq(lfipc_queue_get(rv_q, v, sizeof(v), &len, LFIPC_NOWAIT),
		     0);
	lfipc__set_test_hook(NULL);
	cr_assert_eq(v[0], 1);
	next = 2;
	cr_assert_eq(lfipc_queue_stat(rv_q, &st), 0);
	cr_expect(rv_td_rc == -EINVAL || rv_td_rc == 0,
		  "a surplus task_done inside the hole's drop returned %d",
		  rv_td_rc);
	cr_expect_eq(st.tasks_unfinished, 3,
		     "unfinished %llu, want 3 (1 got, 2 queued)",
		     (unsigned long long)st.tasks_unfinished);
	cr_assert_eq(get_ints(rv_q, 2, &next), 2);
	cr_assert_eq(lfipc_queue_task_done(rv_q), 0);
	cr_assert_eq(lfipc_queue_task_done(rv_q), 0);
	/* one task (message 3) is still outstanding */
	cr_expect_eq(lfipc_queue_join(rv_q, 1000000), -ETIMEDOUT,
		     "join returned with a task outstanding");
	qp_close(&qp);
	lfipc_queue_close(rv_q);
}

/* The same without any misuse: a task handed over (A got it, B calls
 * task_done for it, as Python allows) while a dropper D is stopped in the
 * window. B's task_done settles D's hole instead of A's task (D's entry is
 * live and shows a task); D's settled += 1 settles the hole again; A's
 * entry still shows its task outstanding, and when A exits (its task was
 * done) its write-off settles it a second time: join reports an abandoned
 * task that was not, and the count is one low for ever. */
static int rv_go[2], rv_got[2], rv_end[2];

static void rv_stop_at_counted(enum lfipc_test_point point, void *arg)
{
	(void)arg;
	if (point == LFIPC_TP_QHOLE_COUNTED)
		raise(SIGSTOP);
}

/* D: a token first (so its entry comes before A's), then on "go" one get
 * that drops the hole at the head, stopping in the window, and finds
 * nothing else. Returns 2 when so. */
static int rv_dropper(void *arg)
{
	int v[2];
	size_t len;
	char c;

	(void)lfipc_queue_task_done(arg); /* -EINVAL: takes our token */
	if (read(rv_go[0], &c, 1) != 1)
		return 90;
	lfipc__set_test_hook(rv_stop_at_counted);
	/* the hole is all there is: dropped, then nothing to get */
	if (lfipc_queue_get(arg, v, sizeof(v), &len, LFIPC_NOWAIT) !=
	    -EAGAIN)
		return 91;
	return 2;
}

/* A: gets one message, hands it over (says so), waits for the end and
 * exits without task_done (B does it). Returns the value. */
static int rv_getter(void *arg)
{
	int v[2];
	size_t len;
	char c = 'g';

	if (lfipc_queue_get(arg, v, sizeof(v), &len, 2000000000) != 0)
		return 80;
	if (write(rv_got[1], &c, 1) != 1 || read(rv_end[0], &c, 1) != 1)
		return 81;
	return v[0];
}

static void rv_wait_stopped(pid_t pid)
{
	int st = 0;

	for (int i = 0; i < 5000; i++) {
		pid_t r = waitpid(pid, &st, WNOHANG | WUNTRACED);

		if (r == pid && WIFSTOPPED(st))
			return;
		cr_assert_eq(r, 0, "the dropper ended (status %#x)", st);
		usleep(1000);
	}
	kill(pid, SIGKILL);
	cr_assert_fail("the dropper never stopped in the window");
}

Test(review23h, handed_over_task_done_in_the_drop_window)
{
	struct qpeer qp;
	lfipc_queue *q;
	lfipc_queue_status st = {.struct_size = sizeof(st)};
	pid_t d, a;
	char c = 'x';
	int next = 3, jrc;
	char s[160];

	cr_assert_eq(pipe(rv_go), 0);
	cr_assert_eq(pipe(rv_got), 0);
	cr_assert_eq(pipe(rv_end), 0);
	cr_assert_eq(lfipc_queue_create(qt_r, "rv2", RV_N, 8,
					LFIPC_QUEUE_JOINABLE, &q),
		     0);
	qp_open(qt_r, "rv2", &qp);
	cr_assert_gt(d = th_fork(rv_dropper, q), 0);
	usleep(100000); /* D takes its token */
	cr_assert_eq(put_ints(q, 1, 2, LFIPC_NOWAIT), 1);
	cr_assert_gt(a = th_fork(rv_getter, q), 0);
	cr_assert_eq(read(rv_got[0], &c, 1), 1);
	rv_hole_at(&qp, 1);
	cr_assert_eq(write(rv_go[1], &c, 1), 1);
	rv_wait_stopped(d);
	/* B (us) does A's handed-over task */
	cr_assert_eq(lfipc_queue_task_done(q), 0);
	kill(d, SIGCONT);
	cr_assert_eq(th_reap(d, QT_REAP_MS), 2, "the dropper's get");
	snprintf(s, sizeof(s), "%llu/%llu %llu/%llu",
		 (unsigned long long)qp_task_got(qp_task(&qp, 1)),
		 (unsigned long long)atomic_load(&qp_task(&qp, 1)->settled),
		 (unsigned long long)qp_task_got(qp_task(&qp, 2)),
		 (unsigned long long)atomic_load(&qp_task(&qp, 2)->settled));
	cr_log_info("entries 1, 2 got/settled: %s", s);
	cr_assert_eq(write(rv_end[1], &c, 1), 1);
	cr_assert_eq(th_reap(a, QT_REAP_MS), 1, "the getter's get");
	cr_assert_geq(lfipc_region_recover(qt_r), 0);
	/* every task was done: nothing abandoned, nothing unfinished */
	jrc = lfipc_queue_join(q, 2000000000);
	cr_expect_eq(jrc, 0, "join %d: a task that was done reported "
			     "abandoned", jrc);
	cr_expect_eq(lfipc_queue_tasks_abandoned(q), 0);
	/* one new task, held: join must wait */
	cr_assert_eq(put_ints(q, 3, 4, LFIPC_NOWAIT), 1);
	cr_assert_eq(get_ints(q, 1, &next), 1);
	cr_assert_eq(lfipc_queue_stat(q, &st), 0);
	cr_expect_eq(st.tasks_unfinished, 1, "unfinished %llu, want 1",
		     (unsigned long long)st.tasks_unfinished);
	cr_expect_eq(lfipc_queue_join(q, 1000000), -ETIMEDOUT,
		     "join returned with a task outstanding");
	qp_close(&qp);
	lfipc_queue_close(q);
	for (int i = 0; i < 2; i++) {
		close(rv_go[i]);
		close(rv_got[i]);
		close(rv_end[i]);
	}
}

/*
 * A kill torture: producers of 8 KiB messages are SIGKILLed at random
 * (some mid-put: holes, from the repairs of their dead claims),
 * consumers (get, get_many, peek/release) are SIGKILLed at random too
 * and restarted; every message is checked (its id's pattern: a hole
 * delivered as a message fails it) and recorded (delivered twice
 * fails). At the end: the recovery, a drain; the tasks unfinished must
 * be exactly the messages the drain holds; join times out while they are
 * held and returns (0 or -EOWNERDEAD) once they are done.
 */
#define TT_MSG 8192
#define TT_GENS 4096
#define TT_SEQS 4096
#define TT_P 2
#define TT_C 3

struct tt_shared {
	_Atomic uint32_t gen;	 /* producer incarnations */
	_Atomic uint32_t bad;	 /* garbage, duplicates, task_done errors */
	_Atomic uint32_t why;	 /* the first bad one's reason */
	_Atomic uint8_t seen[TT_GENS * TT_SEQS];
};
static struct tt_shared *tt;

static void tt_fail(uint32_t why)
{
	uint32_t z = 0;

	atomic_compare_exchange_strong(&tt->why, &z, why);
	atomic_fetch_add(&tt->bad, 1);
}

/* Check and record one message; 0 or the reason. */
static void tt_check(const void *m, size_t len)
{
	uint64_t id;

	if (len != TT_MSG) {
		tt_fail(1);
		return;
	}
	memcpy(&id, m, sizeof(id));
	if (id >= (uint64_t)TT_GENS * TT_SEQS) {
		tt_fail(2);
		return;
	}
	if (th_check((const uint8_t *)m + 8, TT_MSG - 8, id) != -1) {
		tt_fail(3);
		return;
	}
	if (atomic_fetch_add(&tt->seen[id], 1) != 0)
		tt_fail(4);
}

static int tt_producer(void *arg)
{
	static uint8_t m[TT_MSG];
	uint32_t g = atomic_fetch_add(&tt->gen, 1);

	if (g >= TT_GENS)
		return 0;
	for (uint64_t s = 0; s < TT_SEQS; s++) {
		uint64_t id = (uint64_t)g * TT_SEQS + s;

		memcpy(m, &id, 8);
		th_fill(m + 8, TT_MSG - 8, id);
		(void)lfipc_queue_put(arg, m, TT_MSG, 100000000);
	}
	return 0;
}

static int tt_consumer(void *arg)
{
	static uint8_t b[4][TT_MSG];
	size_t lens[4];
	int mode = (int)(getpid() % 3);

	for (;;) {
		if (mode == 0) {
			if (lfipc_queue_get(arg, b[0], TT_MSG, &lens[0],
					    100000000) == 0) {
				tt_check(b[0], lens[0]);
				if (lfipc_queue_task_done(arg) != 0)
					tt_fail(5);
			}
		} else if (mode == 1) {
			int n = lfipc_queue_get_many(arg, b, TT_MSG, lens, 4,
						     100000000);

			for (int i = 0; i < n; i++) {
				tt_check(b[i], lens[i]);
				if (lfipc_queue_task_done(arg) != 0)
					tt_fail(5);
			}
		} else {
			const void *m;
			size_t len;

			/* seen only once released: a peeked message whose
			 * consumer is killed before its release is delivered
			 * again (at-least-once), not a duplicate */
			if (lfipc_queue_peek(arg, &m, &len, 100000000) == 0) {
				memcpy(b[0], m, len < TT_MSG ? len : TT_MSG);
				if (lfipc_queue_release(arg, m) != 0)
					tt_fail(6);
				tt_check(b[0], len);
				if (lfipc_queue_task_done(arg) != 0)
					tt_fail(5);
			}
		}
	}
	return 0;
}

Test(review23h, kill_torture, .timeout = 120)
{
	lfipc_queue *q;
	lfipc_queue_status st = {.struct_size = sizeof(st)};
	struct qpeer qp;
	pid_t p[TT_P + TT_C];
	uint64_t rs = 23, holes = 0;
	int64_t end = th_now_ns() + (int64_t)th_scale() * 8000000000;
	static uint8_t b[TT_MSG];
	size_t len;
	int k = 0, jrc;

	tt = mmap(NULL, sizeof(*tt), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(tt, MAP_FAILED);
	cr_assert_eq(lfipc_queue_create(qt_r, "tt", 16, TT_MSG,
					LFIPC_QUEUE_JOINABLE, &q),
		     0);
	for (int i = 0; i < TT_P + TT_C; i++)
		cr_assert_gt(p[i] = th_fork(i < TT_P ? tt_producer
						     : tt_consumer,
					    q),
			     0);
	while (th_now_ns() < end) {
		int i = (int)(th_rand(&rs) % (TT_P + TT_C));

		usleep((useconds_t)(200 + th_rand(&rs) % 3000));
		kill(p[i], SIGKILL);
		/* a producer may have ended its run (0) */
		cr_assert_geq(th_reap(p[i], QT_REAP_MS), 0);
		cr_assert_gt(p[i] = th_fork(i < TT_P ? tt_producer
						     : tt_consumer,
					    q),
			     0);
		cr_assert_eq(lfipc_queue_stat(q, &st), 0);
		holes += st.holes;
	}
	for (int i = 0; i < TT_P + TT_C; i++) {
		kill(p[i], SIGKILL);
		cr_assert_geq(th_reap(p[i], QT_REAP_MS), 0);
	}
	cr_assert_geq(lfipc_region_recover(qt_r), 0);
	while (lfipc_queue_get(q, b, TT_MSG, &len, LFIPC_NOWAIT) == 0) {
		tt_check(b, len);
		k++;
	}
	cr_assert_eq(lfipc_queue_stat(q, &st), 0);
	qp_open(qt_r, "tt", &qp);
	cr_log_info("torture: %u producers, holes seen %llu, hole_hi %llu, "
		    "done %llu, enq_pos %llu, drained %d, abandoned %llu",
		    atomic_load(&tt->gen), (unsigned long long)holes,
		    (unsigned long long)atomic_load(&qp.h->hole_hi),
		    (unsigned long long)atomic_load(&qp.h->done),
		    (unsigned long long)atomic_load(&qp.h->enq_pos), k,
		    (unsigned long long)lfipc_queue_tasks_abandoned(q));
	cr_expect_eq(atomic_load(&tt->bad), 0, "%u bad (first: reason %u)",
		     atomic_load(&tt->bad), atomic_load(&tt->why));
	cr_expect_eq(st.tasks_unfinished, (uint64_t)k,
		     "unfinished %llu, the drain holds %d",
		     (unsigned long long)st.tasks_unfinished, k);
	if (k > 0)
		cr_expect_eq(lfipc_queue_join(q, 10000000), -ETIMEDOUT,
			     "join returned with %d tasks held", k);
	for (int i = 0; i < k; i++)
		cr_assert_eq(lfipc_queue_task_done(q), 0);
	jrc = lfipc_queue_join(q, 5000000000);
	cr_expect(jrc == 0 || jrc == -EOWNERDEAD, "join %d", jrc);
	cr_expect_eq(lfipc_queue_join(q, 0), 0);
	cr_assert_eq(lfipc_queue_stat(q, &st), 0);
	cr_expect_eq(st.tasks_unfinished, 0);
	qp_close(&qp);
	lfipc_queue_close(q);
	munmap(tt, sizeof(*tt));
}

/*
 * A dropper SIGSTOPped at each step of the drop: the others' timed calls
 * (get, get_many, put, join) keep their timeouts and get the messages
 * behind the hole; once it continues, everything completes and the
 * count is exact.
 */
static enum lfipc_test_point st_point;

static void st_stop(enum lfipc_test_point point, void *arg)
{
	(void)arg;
	if (point == st_point)
		raise(SIGSTOP);
}

static int st_dropper(void *arg)
{
	int v[2];
	size_t len;
	int rc;

	lfipc__set_test_hook(st_stop);
	rc = lfipc_queue_get(arg, v, sizeof(v), &len, LFIPC_NOWAIT);
	if (rc == 0)
		return lfipc_queue_task_done(arg) == 0 ? v[0] : 99;
	return rc == -EAGAIN ? 0 : 98;
}

static void st_case(enum lfipc_test_point point)
{
	struct qpeer qp;
	lfipc_queue *q;
	lfipc_queue_status st = {.struct_size = sizeof(st)};
	int v[2], k = 0, drc, seen[6] = {0};
	size_t len;
	int64_t t0;
	pid_t d;

	cr_assert_eq(lfipc_queue_create(qt_r, "st", RV_N, 8,
					LFIPC_QUEUE_JOINABLE, &q),
		     0);
	qp_open(qt_r, "st", &qp);
	rv_hole_at(&qp, 0);
	cr_assert_eq(put_ints(q, 1, 4, LFIPC_NOWAIT), 3);
	st_point = point;
	cr_assert_gt(d = th_fork(st_dropper, q), 0);
	rv_wait_stopped(d);
	cr_assert_eq(lfipc_queue_stat(q, &st), 0);
	cr_log_info("point %d stopped: qsize %zu depth %zu reading %zu "
		    "holes %zu unfinished %llu",
		    (int)point, lfipc_queue_qsize(q), st.depth, st.reading,
		    st.holes, (unsigned long long)st.tasks_unfinished);
	/* the messages behind the stopped drop */
	t0 = th_now_ns();
	while (lfipc_queue_get(q, v, sizeof(v), &len, 50000000) == 0) {
		cr_assert(v[0] >= 1 && v[0] <= 5 && !seen[v[0]]++,
			  "got %d", v[0]);
		k++;
	}
	cr_expect_lt(th_now_ns() - t0, 2000000000, "the gets took %lld ns",
		     (long long)(th_now_ns() - t0));
	t0 = th_now_ns();
	cr_expect_eq(lfipc_queue_join(q, 50000000), -ETIMEDOUT);
	cr_expect_lt(th_now_ns() - t0, 1000000000, "join took %lld ns",
		     (long long)(th_now_ns() - t0));
	cr_expect_eq(put_ints(q, 4, 5, 50000000), 1, "a put behind it");
	kill(d, SIGCONT);
	drc = th_reap(d, QT_REAP_MS);
	cr_assert(drc == 0 || drc == 4, "the dropper's result %d", drc);
	if (drc == 4)
		seen[4]++;
	else if (lfipc_queue_get(q, v, sizeof(v), &len, 50000000) == 0) {
		cr_assert(v[0] == 4 && !seen[4]++, "got %d", v[0]);
		k++;
	}
	cr_expect_eq(seen[1] + seen[2] + seen[3] + seen[4], 4,
		     "point %d: %d %d %d %d", (int)point, seen[1], seen[2],
		     seen[3], seen[4]);
	cr_assert_eq(lfipc_queue_stat(q, &st), 0);
	cr_expect_eq(st.tasks_unfinished, (uint64_t)k,
		     "point %d: unfinished %llu, we hold %d", (int)point,
		     (unsigned long long)st.tasks_unfinished, k);
	for (int i = 0; i < k; i++)
		cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_expect_eq(lfipc_queue_join(q, 2000000000), 0, "point %d",
		     (int)point);
	qp_close(&qp);
	lfipc_queue_close(q);
}

Test(review23h, stopped_dropper_at_every_step)
{
	for (int p = LFIPC_TP_QHOLE_HELD; p <= LFIPC_TP_QHOLE_SETTLED; p++) {
		qt_teardown();
		qt_setup();
		st_case((enum lfipc_test_point)p);
	}
}

/*
 * Scribbles: a hostile process writes HOLE records (any cnt, n, rec_pos
 * READING by the entry's token or any other) into every task entry, live
 * or dead, while a producer puts SC_MSGS and a consumer gets and
 * task_dones them (phase 0: no message lost or doubled, no hang). Phase
 * 1 adds TOMB and READING words in the slots: only no crash, no
 * sanitizer report, no hang.
 */
#define SC_MSGS 20000

static struct qpeer sc_qp;
static int sc_phase;

static int sc_hostile(void *arg)
{
	uint64_t rs = (uint64_t)getpid();

	(void)arg;
	for (;;) {
		uint32_t i = (uint32_t)(th_rand(&rs) % 8);
		struct lfipc_qtask *t = qp_task(&sc_qp, i);
		uint64_t e = atomic_load(&sc_qp.h->deq_pos);
		uint32_t seq = (uint32_t)(e + th_rand(&rs) % 20) + 1;
		uint32_t tok = th_rand(&rs) % 2
				   ? atomic_load(&t->owner)
				   : (uint32_t)th_rand(&rs);
		uint64_t rp = qp_mkword(seq, (tok & LFIPC_Q_CL_TOK) |
						 LFIPC_Q_CL_R);
		uint32_t k = (uint32_t)(th_rand(&rs) % LFIPC_QREC_K);

		atomic_store(&t->rec_pos[k], rp);
		atomic_store(&t->rec[k], (th_rand(&rs) << 9) |
					  ((th_rand(&rs) % 70) << 2) | 3u);
		if (sc_phase == 1 && th_rand(&rs) % 4 == 0)
			atomic_store(qp_word(&sc_qp, seq - 1),
				     th_rand(&rs) % 2
					 ? qp_mkword(seq, LFIPC_Q_TOMB)
					 : rp);
		usleep((useconds_t)(th_rand(&rs) % 200));
	}
	return 0;
}

/* The longest call of a producer or consumer, ns: past its timeout by
 * more than SC_SLACK is a hang. Phase 1 stops at SC_END. */
#define SC_SLACK 1000000000
static _Atomic int64_t *sc_max;
static int64_t sc_end;

static void sc_took(int64_t t0)
{
	int64_t d = th_now_ns() - t0, m = atomic_load(sc_max);

	while (d > m && !atomic_compare_exchange_weak(sc_max, &m, d))
		;
}

static int sc_producer(void *arg)
{
	int bad = 0;

	for (int i = 1; i <= SC_MSGS; i++) {
		int64_t t0 = th_now_ns();

		if (sc_phase == 1 && t0 > sc_end)
			break;
		if (lfipc_queue_put(arg, &i, sizeof(i), 1000000000) != 0)
			bad++;
		sc_took(t0);
	}
	return bad > 255 ? 255 : bad;
}

static uint8_t *sc_seen;

static int sc_consumer(void *arg)
{
	int v[2], bad = 0;
	size_t len;

	for (;;) {
		int64_t t0 = th_now_ns();
		int rc = lfipc_queue_get(arg, v, sizeof(v), &len, 300000000);

		sc_took(t0);
		if (rc == -ETIMEDOUT ||
		    (sc_phase == 1 && t0 > sc_end + 1000000000))
			break;
		if (rc != 0)
			continue;
		if (len != sizeof(int) || v[0] < 1 || v[0] > SC_MSGS ||
		    sc_seen[v[0]]++)
			bad++;
		(void)lfipc_queue_task_done(arg);
	}
	return bad > 255 ? 255 : bad;
}

static int sc_one(void *arg)
{
	int v[2];
	size_t len;

	return lfipc_queue_get(arg, v, sizeof(v), &len, 1000000000) == 0 ? 0
								    : 1;
}

static void sc_case(int phase)
{
	lfipc_queue *q;
	pid_t h, p, c, o;
	int lost = 0, prc, crc, jrc;

	sc_phase = phase;
	sc_end = th_now_ns() + 5000000000;
	sc_max = mmap(NULL, sizeof(*sc_max), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(sc_max, MAP_FAILED);
	atomic_store(sc_max, 0);
	sc_seen = mmap(NULL, SC_MSGS + 1, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(sc_seen, MAP_FAILED);
	cr_assert_eq(lfipc_queue_create(qt_r, "sc", RV_N, 8,
					LFIPC_QUEUE_JOINABLE, &q),
		     0);
	qp_open(qt_r, "sc", &sc_qp);
	/* a dead consumer's entry, with a task written off */
	cr_assert_eq(put_ints(q, 0, 1, LFIPC_NOWAIT), 1);
	cr_assert_gt(o = th_fork(sc_one, q), 0);
	cr_assert_eq(th_reap(o, QT_REAP_MS), 0);
	cr_assert_gt(h = th_fork(sc_hostile, q), 0);
	cr_assert_gt(c = th_fork(sc_consumer, q), 0);
	cr_assert_gt(p = th_fork(sc_producer, q), 0);
	prc = th_reap(p, QT_REAP_MS);
	crc = th_reap(c, QT_REAP_MS);
	kill(h, SIGKILL);
	cr_assert_eq(th_reap(h, QT_REAP_MS), 128 + SIGKILL,
		     "the hostile one crashed");
	for (int i = 1; i <= SC_MSGS; i++)
		lost += !sc_seen[i];
	cr_log_info("scribble phase %d: producer %d consumer %d lost %d "
		    "longest call %lld ms",
		    phase, prc, crc, lost,
		    (long long)(atomic_load(sc_max) / 1000000));
	cr_expect_lt(atomic_load(sc_max), 1000000000 + SC_SLACK,
		     "a timed call took %lld ms",
		     (long long)(atomic_load(sc_max) / 1000000));
	cr_assert(prc >= 0 && prc < 128, "the producer: %d", prc);
	cr_assert(crc >= 0 && crc < 128, "the consumer: %d", crc);
	if (phase == 0) {
		cr_expect_eq(prc, 0);
		cr_expect_eq(crc, 0, "garbage or doubles: %d", crc);
		cr_expect_eq(lost, 0, "%d messages lost", lost);
	}
	jrc = lfipc_queue_join(q, 3000000000);
	cr_log_info("scribble phase %d: join %d", phase, jrc);
	qp_close(&sc_qp);
	lfipc_queue_close(q);
	munmap(sc_seen, SC_MSGS + 1);
	munmap(sc_max, sizeof(*sc_max));
}

Test(review23h, scribbled_hole_records)
{
	sc_case(0);
}

Test(review23h, scribbled_hole_records_and_slots)
{
	sc_case(1);
}

/*
 * Two threads of one process drop holes at once: thread A holds the
 * record (stopped at a step of its drop by the hook), thread B's get
 * finds the next hole and falls back to the direct drop (`done`). The
 * count must be exact and each message come once.
 */

static _Atomic int tw_go, tw_in;
static enum lfipc_test_point tw_point;
static pthread_t tw_a;

static void tw_hold(enum lfipc_test_point point, void *arg)
{
	(void)arg;
	if (point == tw_point && pthread_equal(pthread_self(), tw_a)) {
		atomic_store(&tw_in, 1);
		while (!atomic_load(&tw_go))
			usleep(1000);
	}
}

static void *tw_get(void *arg)
{
	int v[2];
	size_t len;

	if (lfipc_queue_get(arg, v, sizeof(v), &len, 1000000000) != 0)
		return (void *)(intptr_t)-1;
	return (void *)(intptr_t)v[0];
}

static void tw_case(enum lfipc_test_point point)
{
	struct qpeer qp;
	lfipc_queue *q;
	lfipc_queue_status st = {.struct_size = sizeof(st)};
	pthread_t b;
	void *ra, *rb;

	cr_assert_eq(lfipc_queue_create(qt_r, "tw", RV_N, 8,
					LFIPC_QUEUE_JOINABLE, &q),
		     0);
	qp_open(qt_r, "tw", &qp);
	/* holes at 0 and 1, messages 2 and 3 */
	atomic_store(&qp.h->hole_hi, 2);
	atomic_store(qp_word(&qp, 0), qp_mkword(1, LFIPC_Q_TOMB));
	atomic_store(qp_word(&qp, 1), qp_mkword(2, LFIPC_Q_TOMB));
	atomic_store(&qp.h->enq_pos, 2);
	cr_assert_eq(put_ints(q, 2, 4, LFIPC_NOWAIT), 2);
	atomic_store(&tw_go, 0);
	atomic_store(&tw_in, 0);
	tw_point = point;
	lfipc__set_test_hook(tw_hold);
	cr_assert_eq(pthread_create(&tw_a, NULL, tw_get, q), 0);
	for (int i = 0; i < 5000 && !atomic_load(&tw_in); i++)
		usleep(1000);
	cr_assert(atomic_load(&tw_in), "A never got to point %d", point);
	cr_assert_eq(pthread_create(&b, NULL, tw_get, q), 0);
	usleep(100000);
	atomic_store(&tw_go, 1);
	cr_assert_eq(pthread_join(tw_a, &ra), 0);
	cr_assert_eq(pthread_join(b, &rb), 0);
	lfipc__set_test_hook(NULL);
	cr_expect((intptr_t)ra + (intptr_t)rb == 5 &&
		      (intptr_t)ra != (intptr_t)rb,
		  "point %d: got %d and %d", point, (int)(intptr_t)ra,
		  (int)(intptr_t)rb);
	cr_log_info("point %d: done %llu (B's fallback)", point,
		    (unsigned long long)atomic_load(&qp.h->done));
	cr_assert_eq(lfipc_queue_stat(q, &st), 0);
	cr_expect_eq(st.tasks_unfinished, 2, "point %d: unfinished %llu",
		     point, (unsigned long long)st.tasks_unfinished);
	cr_expect_eq(lfipc_queue_join(q, 1000000), -ETIMEDOUT);
	cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_expect_eq(lfipc_queue_task_done(q), -EINVAL, "point %d", point);
	cr_expect_eq(lfipc_queue_join(q, 1000000000), 0, "point %d", point);
	qp_close(&qp);
	lfipc_queue_close(q);
}

Test(review23h, two_threads_drop_holes_at_once)
{
	for (int p = LFIPC_TP_QHOLE_HELD; p <= LFIPC_TP_QHOLE_SETTLED; p++) {
		qt_teardown();
		qt_setup();
		tw_case((enum lfipc_test_point)p);
	}
}

/* The same free-running: a run of RV_N - 2 holes and 2 messages, two
 * threads get at once, many rounds (for TSan): each message once, the
 * count exact. */
static void *fr_get(void *arg)
{
	int v[2];
	size_t len;

	if (lfipc_queue_get(arg, v, sizeof(v), &len, 200000000) != 0)
		return (void *)(intptr_t)-1;
	return (void *)(intptr_t)v[0];
}

Test(review23h, two_threads_drop_holes_free_running)
{
	struct qpeer qp;
	lfipc_queue *q;
	lfipc_queue_status st = {.struct_size = sizeof(st)};

	cr_assert_eq(lfipc_queue_create(qt_r, "fr", RV_N, 8,
					LFIPC_QUEUE_JOINABLE, &q),
		     0);
	qp_open(qt_r, "fr", &qp);
	for (int r = 0; r < 300; r++) {
		uint64_t e = atomic_load(&qp.h->enq_pos);
		pthread_t a, b;
		void *ra, *rb;

		cr_assert_eq(atomic_load(&qp.h->deq_pos), e);
		for (uint64_t i = 0; i < RV_N - 2; i++)
			atomic_store(qp_word(&qp, (e + i) % RV_N),
				     qp_mkword((uint32_t)(e + i + 1),
					       LFIPC_Q_TOMB));
		atomic_store(&qp.h->hole_hi, e + RV_N - 2);
		atomic_store(&qp.h->enq_pos, e + RV_N - 2);
		cr_assert_eq(put_ints(q, 1, 3, LFIPC_NOWAIT), 2);
		cr_assert_eq(pthread_create(&a, NULL, fr_get, q), 0);
		cr_assert_eq(pthread_create(&b, NULL, fr_get, q), 0);
		cr_assert_eq(pthread_join(a, &ra), 0);
		cr_assert_eq(pthread_join(b, &rb), 0);
		cr_assert((intptr_t)ra + (intptr_t)rb == 3 &&
			      (intptr_t)ra != (intptr_t)rb,
			  "round %d: got %d and %d", r, (int)(intptr_t)ra,
			  (int)(intptr_t)rb);
		cr_assert_eq(lfipc_queue_stat(q, &st), 0);
		cr_assert_eq(st.tasks_unfinished, 2, "round %d: unfinished %llu",
			     r, (unsigned long long)st.tasks_unfinished);
		cr_assert_eq(lfipc_queue_task_done(q), 0);
		cr_assert_eq(lfipc_queue_task_done(q), 0);
		cr_assert_eq(lfipc_queue_join(q, 0), 0, "round %d", r);
	}
	cr_log_info("free-running: done %llu",
		    (unsigned long long)atomic_load(&qp.h->done));
	qp_close(&qp);
	lfipc_queue_close(q);
}
