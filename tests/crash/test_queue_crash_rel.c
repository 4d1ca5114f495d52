/* SPDX-License-Identifier: MIT */
/*
 * test_queue_crash_rel.c - JoinableQueue consumers SIGKILLed at random
 * and respawned while the parent keeps putting, the count checked exact
 * after every kill: consumers that take by get_many and by get, and
 * consumers that take by peek + release and peek_many + release_many.
 * One torture, jk_torture(), run with each pair of kinds.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
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

TestSuite(queue_crash_rel, .init = qt_setup, .fini = qt_teardown,
	  .timeout = 300);

#define JK_C 2		  /* consumers */
#define JK_MAX (1u << 18) /* messages the producer may put */

/* The ledger, in a shared mapping: a consumer has what it took in its
 * cbuf (a get_many copies straight into it, a peeking consumer copies
 * there before it releases) before it records it, so that after a kill
 * the parent can see what the dead may have taken but not recorded (a
 * sequence number there excuses a message never seen). */
struct jk_ledger {
	_Atomic uint32_t acked; /* messages 0 .. acked-1 were put */
	_Atomic uint8_t seen[JK_MAX];
	uint8_t excused[JK_MAX];
	uint32_t cbuf[JK_C][64][4];
};
static struct jk_ledger *jk;
static lfipc_queue *jk_q;

/* One round's puts by the parent: JK_ROUND messages {seq, ~seq, 0, 0}
 * with put_many of 1..64, consumer c killed (and respawned) 0 to 400 us
 * after the puts reach kill_at, while the flow goes on (about half the
 * kills find messages queued: the consumers lag, jk_settle()). */
#define JK_ROUND 512u

static void jk_round_puts(uint32_t *seq, uint32_t kill_at, int c,
			  pid_t *cons, int (*consumer)(void *), uint64_t *rng)
{
	uint32_t m[64][4] = {{0}}, end = *seq + JK_ROUND;
	const void *mp[64];
	size_t len[64];
	bool killed = false;

	for (int i = 0; i < 64; i++) {
		mp[i] = m[i];
		len[i] = sizeof(m[i]);
	}
	while (*seq < end || !killed) {
		uint32_t n = 1 + (uint32_t)(th_rand(rng) % 64);
		int rc;

		if (*seq >= kill_at && !killed) {
			usleep((useconds_t)(th_rand(rng) % 400));
			kill(cons[c], SIGKILL);
			cr_assert_eq(th_reap(cons[c], QT_REAP_MS),
				     128 + SIGKILL);
			for (int j = 0; j < 64; j++)
				if (jk->cbuf[c][j][0] < JK_MAX)
					jk->excused[jk->cbuf[c][j][0]] = 1;
			memset(jk->cbuf[c], 0xff, sizeof(jk->cbuf[c]));
			cr_assert_gt(cons[c] = th_fork(consumer,
						       (void *)(uintptr_t)c),
				     0);
			killed = true;
			continue;
		}
		if (n > end - *seq)
			n = end - *seq;
		for (uint32_t i = 0; i < n; i++) {
			m[i][0] = *seq + i;
			m[i][1] = ~(*seq + i);
		}
		rc = lfipc_queue_put_many(jk_q, mp, len, n, 100000000);
		if (rc == -ETIMEDOUT)
			continue;
		cr_assert_gt(rc, 0, "put_many %d", rc);
		*seq += (uint32_t)rc;
		atomic_store(&jk->acked, *seq);
	}
}

/* After a round: join (with the dead's slots recovered now and then, as
 * a supervisor would) must return 0 or -EOWNERDEAD, never wait for ever,
 * and the count must then be exactly 0: enq_pos - done - sum(settled),
 * read raw, so that a count gone below 0 (a message counted twice) is
 * seen too (join and tasks_unfinished do not show it). */
static void jk_round_settle(struct qpeer *qp, int round)
{
	lfipc_queue_status st = {.struct_size = sizeof(st)};
	int64_t t0 = th_now_ns(), raw;
	uint64_t settled = 0;
	int jr;

	do {
		jr = lfipc_queue_join(jk_q, 50000000);
		if (jr == -ETIMEDOUT)
			cr_assert_geq(lfipc_region_recover(qt_r), 0);
	} while (jr == -ETIMEDOUT && th_now_ns() - t0 < 30000000000);
	cr_assert(jr == 0 || jr == -EOWNERDEAD, "round %d: join returned %d",
		  round, jr);
	usleep(5000); /* a task_done of a count gone wrong would land */
	for (uint32_t i = 0; i < LFIPC_PROC_SLOTS; i++)
		settled += atomic_load(&qp_task(qp, i)->settled);
	raw = (int64_t)(atomic_load(&qp->h->enq_pos) -
			atomic_load(&qp->h->done) - settled);
	cr_assert_eq(raw, 0, "round %d: %lld tasks unfinished", round,
		     (long long)raw);
	cr_assert_eq(lfipc_queue_stat(jk_q, &st), 0);
	cr_assert_eq(st.tasks_unfinished, 0);
}

/* What a consumer does with the k messages it took into b (lengths lens):
 * record each, then task_done each, then mark b empty. 0; or the
 * consumer's exit status: 1 a malformed message, 2 a task_done that
 * failed. */
static int jk_settle(uint32_t (*b)[4], const size_t *lens, int k)
{
	for (int i = 0; i < k; i++) {
		if (lens[i] != sizeof(b[i]) || b[i][1] != ~b[i][0] ||
		    b[i][0] >= JK_MAX)
			return 1;
		atomic_fetch_add(&jk->seen[b[i][0]], 1);
	}
	for (int i = 0; i < k; i++) {
		/* some work per message, so that the consumers lag the
		 * parent's puts and the kills find them busy */
		for (volatile int w = 0; w < 5000; w++)
			;
		if (lfipc_queue_task_done(jk_q))
			return 2;
	}
	memset(b, 0xff, sizeof(jk->cbuf[0]));
	return 0;
}

/* A take's return when a release failed (the consumer exits with 3). */
#define JK_RELEASE_FAILED (-100000)

/* cid 0: one get_many of n into b; cid 1: n single gets into b (the
 * first waits). The messages taken, or the first get's error. */
static int jk_take_get(int cid, uint32_t (*b)[4], size_t *lens, int n)
{
	int k = 0, rc;

	if (cid == 0)
		return lfipc_queue_get_many(jk_q, b, sizeof(b[0]), lens,
					    (size_t)n, 1000000000);
	while (k < n) {
		rc = lfipc_queue_get(jk_q, b[k], sizeof(b[k]), &lens[k],
				     k ? 0 : 1000000000);
		if (rc)
			return k ? k : rc;
		k++;
	}
	return k;
}

/* cid 0: one peek_many of n and one release_many; cid 1: n peeks, each
 * released at once (the first waits); each message copied into b before
 * its release. The messages taken, the first peek's error, or
 * JK_RELEASE_FAILED. */
static int jk_take_peek(int cid, uint32_t (*b)[4], size_t *lens, int n)
{
	const void *m[64];
	int k = 0, rc;

	if (cid == 0) {
		k = lfipc_queue_peek_many(jk_q, m, lens, (size_t)n,
					  1000000000);
		for (int i = 0; i < k; i++)
			memcpy(b[i], m[i], sizeof(b[i]));
		if (k > 0 && lfipc_queue_release_many(jk_q, m, (size_t)k) != k)
			return JK_RELEASE_FAILED;
		return k;
	}
	while (k < n) {
		rc = lfipc_queue_peek(jk_q, m, lens + k, k ? 0 : 1000000000);
		if (rc)
			return k ? k : rc;
		memcpy(b[k], m[0], sizeof(b[k]));
		if (lfipc_queue_release(jk_q, m[0]))
			return JK_RELEASE_FAILED;
		k++;
	}
	return k;
}

/* Consumer cid (arg) taking batches of 1..64 with take into its cbuf and
 * settling them (jk_settle()), until -EPIPE (exit status 0). */
static int jk_consume(void *arg, uint64_t seed,
		      int (*take)(int, uint32_t (*)[4], size_t *, int))
{
	int cid = (int)(uintptr_t)arg, rc;
	uint32_t(*b)[4] = jk->cbuf[cid];
	uint64_t rng = seed + (uint64_t)getpid();
	size_t lens[64];

	for (;;) {
		int k = take(cid, b, lens, 1 + (int)(th_rand(&rng) % 64));

		if (k == -EPIPE)
			return 0;
		if (k == -ETIMEDOUT || k == -EAGAIN)
			continue;
		if (k <= 0)
			return k == JK_RELEASE_FAILED ? 3 : 1;
		if ((rc = jk_settle(b, lens, k)))
			return rc;
	}
}

static int jk_get_many(void *arg)
{
	return jk_consume(arg, 1000, jk_take_get);
}

static int jk_release(void *arg)
{
	return jk_consume(arg, 2000, jk_take_peek);
}

/* JK_C consumer processes (consumer, given its index) of a JoinableQueue
 * SIGKILLed at random (seed) and respawned while the parent puts, in
 * rounds of JK_ROUND messages, one kill per round: after every round the
 * count is exact (jk_round_settle(): join returns 0 or -EOWNERDEAD, and
 * nothing is unfinished; each consumer counts through its task entry's
 * record, lib/queue_tasks.c, so no kill leaves a task nobody owns or a
 * message counted twice); at the end, after a shutdown, no message was
 * delivered twice and none is lost (one never seen was in a killed
 * consumer's buffer). */
static void jk_torture(int (*consumer)(void *), uint64_t rng)
{
	int rounds = 40 * th_scale();
	pid_t cons[JK_C];
	uint32_t acked, b[4], seq = 0;
	uint64_t missing = 0;
	struct qpeer qp;
	size_t len;

	jk = mmap(NULL, sizeof(*jk), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(jk, MAP_FAILED);
	memset(jk->cbuf, 0xff, sizeof(jk->cbuf));
	cr_assert_eq(lfipc_queue_create(qt_r, "jk", 1024, sizeof(b),
					LFIPC_QUEUE_JOINABLE, &jk_q),
		     0);
	qp_open(qt_r, "jk", &qp);
	for (int c = 0; c < JK_C; c++)
		cr_assert_gt(cons[c] = th_fork(consumer, (void *)(uintptr_t)c),
			     0);
	for (int i = 0; i < rounds && seq + JK_ROUND <= JK_MAX; i++) {
		int c = (int)(th_rand(&rng) % JK_C);
		uint32_t at = seq + (uint32_t)(th_rand(&rng) % JK_ROUND);

		jk_round_puts(&seq, at, c, cons, consumer, &rng);
		jk_round_settle(&qp, i);
	}
	acked = atomic_load(&jk->acked);
	cr_assert_gt(acked, 0u);
	cr_assert_eq(lfipc_queue_shutdown(jk_q), 0);
	for (int c = 0; c < JK_C; c++)
		cr_assert_eq(th_reap(cons[c], QT_REAP_MS), 0);
	/* the consumers saw -EPIPE: nothing is left for a drain */
	cr_assert_eq(lfipc_queue_get(jk_q, b, sizeof(b), &len, LFIPC_NOWAIT),
		     -EPIPE);
	for (uint32_t s = 0; s < JK_MAX; s++) {
		unsigned n = atomic_load(&jk->seen[s]);

		cr_assert_leq(n, 1u, "message %u delivered %u times", s, n);
		if (s < acked && n == 0) {
			cr_assert(jk->excused[s], "message %u lost", s);
			missing++;
		}
		if (s >= acked)
			cr_assert_eq(n, 0u, "message %u was never put", s);
	}
	cr_log_info("%u put, %llu taken by the killed, %llu abandoned", acked,
		    (unsigned long long)missing,
		    (unsigned long long)lfipc_queue_tasks_abandoned(jk_q));
	qp_close(&qp);
	lfipc_queue_close(jk_q);
	cr_assert_eq(lfipc_object_remove(qt_r, "jk"), 0);
	munmap(jk, sizeof(*jk));
}

/* get_many and get (each counts and frees through the record) */
Test(queue_crash_rel, sigkilled_get_consumers_of_a_joinable_queue)
{
	jk_torture(jk_get_many, 31337);
}

/* the zero-copy release and release_many (each counts and frees through
 * the record) */
Test(queue_crash_rel, sigkilled_release_consumers_of_a_joinable_queue)
{
	jk_torture(jk_release, 4242);
}
