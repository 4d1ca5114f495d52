/* SPDX-License-Identifier: MIT */
/*
 * test_queue_crash_rel.c - JoinableQueue consumers SIGKILLed at random
 * and respawned while a producer keeps putting: consumers that take by
 * get_many, and consumers that take by peek + release and peek_many +
 * release_many. One torture, jk_torture(), run with each kind of
 * consumer.
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
	_Atomic int stop;	/* the producer stops putting */
	_Atomic uint8_t seen[JK_MAX];
	uint8_t excused[JK_MAX];
	uint32_t cbuf[JK_C][64][4];
};
static struct jk_ledger *jk;
static lfipc_queue *jk_q;

/* put_many of 1..64 messages {seq, ~seq, 0, 0} until told to stop */
static int jk_producer(void *arg)
{
	uint32_t m[64][4] = {{0}};
	const void *mp[64];
	size_t len[64];
	uint64_t rng = 99;
	uint32_t seq = 0;

	(void)arg;
	for (int i = 0; i < 64; i++) {
		mp[i] = m[i];
		len[i] = sizeof(m[i]);
	}
	while (!atomic_load(&jk->stop) && seq + 64 <= JK_MAX) {
		int n = 1 + (int)(th_rand(&rng) % 64), rc;

		for (int i = 0; i < n; i++) {
			m[i][0] = seq + (uint32_t)i;
			m[i][1] = ~(seq + (uint32_t)i);
		}
		rc = lfipc_queue_put_many(jk_q, mp, len, (size_t)n, 100000000);
		if (rc == -ETIMEDOUT)
			continue;
		if (rc <= 0)
			return 1;
		seq += (uint32_t)rc;
		atomic_store(&jk->acked, seq);
		usleep(10); /* so that the kills find the flow going */
	}
	return 0;
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
	for (int i = 0; i < k; i++)
		if (lfipc_queue_task_done(jk_q))
			return 2;
	memset(b, 0xff, sizeof(jk->cbuf[0]));
	return 0;
}

/* get_many of 1..64 into cbuf, until -EPIPE */
static int jk_get_many(void *arg)
{
	int cid = (int)(uintptr_t)arg, rc;
	uint32_t(*b)[4] = jk->cbuf[cid];
	uint64_t rng = 1000 + (uint64_t)getpid();
	size_t lens[64];

	for (;;) {
		int n = 1 + (int)(th_rand(&rng) % 64);
		int k = lfipc_queue_get_many(jk_q, b, sizeof(b[0]), lens,
					     (size_t)n, 1000000000);

		if (k == -EPIPE)
			return 0;
		if (k == -ETIMEDOUT)
			continue;
		if (k <= 0)
			return 1;
		if ((rc = jk_settle(b, lens, k)))
			return rc;
	}
}

/* peek 1..64 (cid 0: one peek_many, one release_many; cid 1: peek and
 * release one at a time), copied into cbuf before the release, until
 * -EPIPE */
static int jk_release(void *arg)
{
	int cid = (int)(uintptr_t)arg, rc;
	uint32_t(*b)[4] = jk->cbuf[cid];
	uint64_t rng = 2000 + (uint64_t)getpid();
	const void *m[64];
	size_t lens[64];

	for (;;) {
		int n = 1 + (int)(th_rand(&rng) % 64), k = 0;

		if (cid == 0) {
			k = lfipc_queue_peek_many(jk_q, m, lens, (size_t)n,
						  1000000000);
			if (k > 0) {
				for (int i = 0; i < k; i++)
					memcpy(b[i], m[i], sizeof(b[i]));
				if (lfipc_queue_release_many(jk_q, m,
							     (size_t)k) != k)
					return 3;
			}
		} else {
			while (k < n) {
				rc = lfipc_queue_peek(jk_q, m, lens + k,
						      k ? 0 : 1000000000);
				if (rc) {
					if (k == 0)
						k = rc;
					break;
				}
				memcpy(b[k], m[0], sizeof(b[k]));
				if (lfipc_queue_release(jk_q, m[0]))
					return 3;
				k++;
			}
		}
		if (k == -EPIPE)
			return 0;
		if (k == -ETIMEDOUT || k == -EAGAIN)
			continue;
		if (k <= 0)
			return 1;
		if ((rc = jk_settle(b, lens, k)))
			return rc;
	}
}

/* JK_C consumer processes (consumer, given its index) of a JoinableQueue
 * SIGKILLed at random (seed) and respawned while a producer puts, then
 * shut down: no message is delivered twice (a consumer frees a slot
 * before it returns its message, or not at all, when the message is
 * delivered again), none is lost (one never seen was in a killed
 * consumer's buffer), and join returns what it may: 0, -EOWNERDEAD (the
 * dead's tasks written off) or -ETIMEDOUT (a kill between a free and its
 * count left tasks nobody owns: doc/queue.md, "Windows that remain"). */
static void jk_torture(int (*consumer)(void *), uint64_t rng)
{
	int kills = 60 * th_scale(), jr;
	lfipc_queue_status st = {.struct_size = sizeof(st)};
	pid_t cons[JK_C], prod;
	uint32_t acked, b[4];
	uint64_t missing = 0;
	size_t len;

	jk = mmap(NULL, sizeof(*jk), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(jk, MAP_FAILED);
	memset(jk->cbuf, 0xff, sizeof(jk->cbuf));
	cr_assert_eq(lfipc_queue_create(qt_r, "jk", 128, sizeof(b),
					LFIPC_QUEUE_JOINABLE, &jk_q),
		     0);
	for (int c = 0; c < JK_C; c++)
		cr_assert_gt(cons[c] = th_fork(consumer, (void *)(uintptr_t)c),
			     0);
	cr_assert_gt(prod = th_fork(jk_producer, NULL), 0);
	for (int i = 0; i < kills; i++) {
		int c = (int)(th_rand(&rng) % JK_C);

		usleep((useconds_t)(300 + th_rand(&rng) % 2000));
		kill(cons[c], SIGKILL);
		cr_assert_eq(th_reap(cons[c], QT_REAP_MS), 128 + SIGKILL);
		for (int j = 0; j < 64; j++)
			if (jk->cbuf[c][j][0] < JK_MAX)
				jk->excused[jk->cbuf[c][j][0]] = 1;
		memset(jk->cbuf[c], 0xff, sizeof(jk->cbuf[c]));
		cr_assert_gt(cons[c] = th_fork(consumer, (void *)(uintptr_t)c),
			     0);
	}
	atomic_store(&jk->stop, 1);
	cr_assert_eq(th_reap(prod, QT_REAP_MS), 0);
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
	jr = lfipc_queue_join(jk_q, 200000000);
	cr_assert(jr == 0 || jr == -EOWNERDEAD || jr == -ETIMEDOUT,
		  "join returned %d", jr);
	cr_assert_eq(lfipc_queue_stat(jk_q, &st), 0);
	cr_log_info("%u put, %llu taken by the killed, join %d, %llu tasks "
		    "unfinished, %llu abandoned",
		    acked, (unsigned long long)missing, jr,
		    (unsigned long long)st.tasks_unfinished,
		    (unsigned long long)lfipc_queue_tasks_abandoned(jk_q));
	lfipc_queue_close(jk_q);
	cr_assert_eq(lfipc_object_remove(qt_r, "jk"), 0);
	munmap(jk, sizeof(*jk));
}

/* get_many (which copies its batch, then frees the slots, then counts) */
Test(queue_crash_rel, sigkilled_get_many_consumers_of_a_joinable_queue)
{
	jk_torture(jk_get_many, 31337);
}

/* the zero-copy release and release_many (each adopts the entry before
 * its first free and counts after its last) */
Test(queue_crash_rel, sigkilled_release_consumers_of_a_joinable_queue)
{
	jk_torture(jk_release, 4242);
}
