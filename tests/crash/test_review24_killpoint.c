/* SPDX-License-Identifier: MIT */
/*
 * test_review24_killpoint.c - review 24: the kill-point harness
 * (common/killpoint.h) on a victim whose sibling thread holds record 0
 * of their entry, so that the stepped call of the main thread counts
 * through record 1 (layout 7, lib/queue_tasks.c).
 *
 * Set-up per kill point: a JoinableQueue with messages 0..5, a hole
 * (TOMB) at position 1 for op h. The victim gets message 0 by a peek; a
 * sibling thread releases it and is held at COUNTED by the test hook
 * (record 0 COUNTED, the slot READING). The main thread is then stepped
 * k instructions into get_many(4) (op G; op h: the head is the hole,
 * dropped through record 1) or peek_many(4) + release_many (op P), and
 * SIGKILLed. The parent recovers, drains, and asserts the exact count
 * (message 0 counted and written off; nothing counted nowhere or twice;
 * no message handed over by the victim delivered again), join times out
 * while the drained ones are held and returns once they are done.
 *
 * White-box (the hook): linked static.
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

#include "common/killpoint.h"
#include "common/qtest.h"
#include "common/testhelp.h"
#include "internal/wait.h"

TestSuite(review24_killpoint, .timeout = 600);

#define KR_MS 16

static lfipc_region *kr_r;
static lfipc_queue *kr_q;
static char kr_op;
static _Atomic uint8_t *kr_gave; /* [seq]: handed over; [63]: held */
static _Thread_local bool kr_sib;

static void kr_hook(enum lfipc_test_point point, void *arg)
{
	(void)arg;
	if (!kr_sib || point != LFIPC_TP_QREC_COUNTED)
		return;
	atomic_store(&kr_gave[63], 1);
	for (;;)
		pause();
}

static void *kr_sibling(void *arg)
{
	kr_sib = true;
	lfipc_queue_release(kr_q, arg);
	return NULL;
}

static uint64_t kr_seq(const void *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v < 62 ? v : 62;
}

static void kr_victim(void *arg)
{
	char b[4][KR_MS] = {{0}};
	const void *m[4];
	size_t l[4];
	pthread_t th;
	int k = 0;

	(void)arg;
	lfipc__set_test_hook(kr_hook);
	if (lfipc_queue_peek(kr_q, &m[0], &l[0], LFIPC_NOWAIT) ||
	    pthread_create(&th, NULL, kr_sibling, (void *)m[0]))
		_exit(3);
	for (int i = 0; i < 5000 && !atomic_load(&kr_gave[63]); i++)
		usleep(1000);
	if (!atomic_load(&kr_gave[63]))
		_exit(4);
	/* warm the entry points (lazy binding: none, static) */
	if (kr_op == 'P')
		k = lfipc_queue_peek_many(kr_q, m, l, 4, LFIPC_NOWAIT);
	raise(SIGSTOP);
	if (kr_op == 'P') {
		uint64_t v[4];

		for (int i = 0; i < k; i++)
			v[i] = kr_seq(m[i]);
		k = (int)lfipc_queue_release_many(kr_q, m, (size_t)k);
		for (int i = 0; i < k; i++)
			kr_gave[v[i]] = 1;
	} else {
		k = lfipc_queue_get_many(kr_q, b, KR_MS, l, 4, LFIPC_NOWAIT);
		for (int i = 0; i < k; i++)
			kr_gave[kr_seq(b[i])] = 1;
	}
	raise(SIGSTOP);
	_exit(0);
}

static void kr_setup(void)
{
	char b[KR_MS] = {0};
	struct qpeer qp;

	memset((void *)kr_gave, 0, 128);
	cr_assert_eq(lfipc_region_create(NULL, 4 << 20, 0, &kr_r), 0);
	cr_assert_eq(lfipc_queue_create(kr_r, "q", 16, KR_MS,
					LFIPC_QUEUE_JOINABLE, &kr_q),
		     0);
	qp_open(kr_r, "q", &qp);
	for (uint64_t i = 0; i < 6; i++) {
		memcpy(b, &i, 8);
		cr_assert_eq(lfipc_queue_put(kr_q, b, KR_MS, LFIPC_NOWAIT), 0);
		if (kr_op == 'h' && i == 0) {
			/* a hole at position 1 (as test_review24.c) */
			atomic_store(&qp.h->hole_hi, 2);
			atomic_store(qp_word(&qp, 1),
				     qp_mkword(2, LFIPC_Q_TOMB));
			atomic_store(&qp.h->enq_pos, 2);
		}
	}
	qp_close(&qp);
}

static void kr_teardown(void)
{
	lfipc_queue_close(kr_q);
	lfipc_region_close(kr_r);
}

struct kr_res {
	long points, over, under, early, wedge, dup, first_bad;
};

static bool kr_racing;

/* Right after the death: a new process (likely the victim's next
 * incarnation: its adoption resolves both records) gets and settles
 * what it finds while two others run lfipc_region_recover(), all at
 * once. What the getter gets is marked in kr_gave[32 + seq]; a message
 * it gets that the victim handed over, or message 0, counts in
 * kr_gave[62]. */
static void kr_race(void)
{
	pid_t rc[3];
	char b[16][KR_MS];
	size_t l[16];

	for (int j = 0; j < 3; j++) {
		rc[j] = fork();
		cr_assert_geq(rc[j], 0);
		if (rc[j] != 0)
			continue;
		for (int e = 0; j == 0 && e < 3;) {
			int g = lfipc_queue_get_many(kr_q, b, KR_MS, l, 16,
						     2000000);

			if (g <= 0) {
				e++;
				continue;
			}
			for (int i = 0; i < g; i++) {
				uint64_t sq = kr_seq(b[i]);

				if (sq == 0 || kr_gave[sq] || kr_gave[32 + sq])
					kr_gave[62]++;
				kr_gave[32 + sq] = 1;
				lfipc_queue_task_done(kr_q);
			}
		}
		for (int e = 0; j > 0 && e < 3; e++)
			lfipc_region_recover(kr_r);
		_exit(0);
	}
	for (int j = 0; j < 3; j++)
		cr_assert_eq(th_reap(rc[j], 30000), 0, "racer %d", j);
}

static void kr_check(long k, struct kr_res *res)
{
	char b[16][KR_MS];
	size_t l[16];
	uint8_t seen[64] = {0};
	uint64_t d = 0, u;
	int empty = 0, jr;
	bool bad = false;
	lfipc_queue_status st = {.struct_size = sizeof(st)};

	if (kr_racing) {
		kr_race();
		res->dup += kr_gave[62];
	}
	lfipc_region_recover(kr_r);
	while (empty < 3) {
		int g = lfipc_queue_get_many(kr_q, b, KR_MS, l, 16, 1000000);

		if (g <= 0) {
			empty++;
			lfipc_region_recover(kr_r);
			continue;
		}
		for (int i = 0; i < g; i++) {
			uint64_t s = kr_seq(b[i]);

			/* message 0 was counted by the held sibling */
			if (seen[s]++ || kr_gave[s] || kr_gave[32 + s] ||
			    s == 0)
				res->dup++;
		}
		d += (uint64_t)g;
	}
	cr_assert_eq(lfipc_queue_stat(kr_q, &st), 0);
	u = st.tasks_unfinished;
	if (u != d) {
		if (u > d)
			res->over++;
		else
			res->under++;
		bad = true;
	}
	if (d > 0) {
		jr = lfipc_queue_join(kr_q, 1000000);
		if (jr == 0 || jr == -EOWNERDEAD) {
			res->early++;
			bad = true;
		}
	}
	for (uint64_t i = 0; i < d; i++)
		lfipc_queue_task_done(kr_q);
	jr = lfipc_queue_join(kr_q, 200000000);
	if (jr != -EOWNERDEAD && jr != 0) {
		res->wedge++;
		bad = true;
	}
	if (bad && res->first_bad < 0)
		res->first_bad = k;
	if (bad)
		cr_log_warn("op %c killed at step %ld: held %llu, unfinished "
			    "%llu, join %d",
			    kr_op, k, (unsigned long long)d,
			    (unsigned long long)u, jr);
}

/* The victim at the end of its call: its entry's record 0 is COUNTED
 * (the held sibling) and record 1 counted the call's messages. */
static void kr_used_rec1(void)
{
	struct qpeer qp;
	int found = 0;

	qp_open(kr_r, "q", &qp);
	for (uint32_t i = 0; i < LFIPC_PROC_SLOTS; i++) {
		struct lfipc_qtask *t = qp_task(&qp, i);
		uint64_t r0 = atomic_load(&t->rec[0]);
		uint64_t r1 = atomic_load(&t->rec[1]);

		if (lfipc__qrec_state(r0) == LFIPC_QREC_COUNTED &&
		    lfipc__qrec_cnt(r1) >= 1)
			found++;
	}
	qp_close(&qp);
	cr_assert_eq(found, 1, "the call counted through record 1");
}

static void kr_all(char op, bool race)
{
	long stride = kpt_stride(), len;
	struct kr_res res = {.first_bad = -1};
	pid_t p;

	if (th_tsan())
		cr_skip_test("ThreadSanitizer build: stepping is too slow");
	kr_op = op;
	kr_racing = race;
	kr_gave = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq((void *)kr_gave, MAP_FAILED);
	if (!kpt_ptrace_works())
		cr_skip_test("ptrace refused here");
	kr_setup();
	p = kpt_fork(kr_victim, NULL);
	len = kpt_step(p, -1, 10000, NULL);
	kr_used_rec1();
	kpt_kill(p);
	kr_teardown();
	cr_assert_gt(len, 0, "the call was stepped to its end");
	for (long k = 0; k <= len; k += stride) {
		kr_setup();
		p = kpt_fork(kr_victim, NULL);
		kpt_step(p, k, 10000, NULL);
		kpt_kill(p);
		res.points++;
		kr_check(k, &res);
		kr_teardown();
	}
	cr_log_info("op %c: %ld instructions, %ld kill points: over %ld "
		    "under %ld early-join %ld wedge %ld dup %ld",
		    op, len, res.points, res.over, res.under, res.early,
		    res.wedge, res.dup);
	munmap((void *)kr_gave, 4096);
	cr_expect_eq(res.over + res.under + res.early + res.wedge + res.dup, 0,
		     "op %c: %ld of %ld kill points bad (first at step %ld)",
		     op, res.over + res.under + res.early + res.wedge, res.points,
		     res.first_bad);
}

Test(review24_killpoint, get_many_through_record1) { kr_all('G', false); }
Test(review24_killpoint, release_many_through_record1)
{
	kr_all('P', false);
}
Test(review24_killpoint, hole_drop_through_record1) { kr_all('h', false); }
Test(review24_killpoint, get_many_through_record1_raced)
{
	kr_all('G', true);
}
Test(review24_killpoint, hole_drop_through_record1_raced)
{
	kr_all('h', true);
}
