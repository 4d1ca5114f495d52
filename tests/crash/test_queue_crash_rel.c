/* SPDX-License-Identifier: MIT */
/*
 * test_queue_crash_rel.c - JoinableQueue consumers that take messages
 * by peek + release and peek_many + release_many, SIGKILLed at random
 * and respawned (the get_many torture is in test_queue_crash.c).
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

#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "common/qtest.h"
#include "common/testhelp.h"

TestSuite(queue_crash_rel, .init = qt_setup, .fini = qt_teardown,
	  .timeout = 300);

#define RK_C 2		  /* consumers: 0 release_many, 1 release */
#define RK_MAX (1u << 18) /* messages the producer may put */

/* The ledger, in a shared mapping: a consumer copies what it peeked into
 * its cbuf before it releases, so that after a kill the parent can see
 * what the dead may have taken but not recorded (excused if never seen). */
struct rk_ledger {
	_Atomic uint32_t acked; /* messages 0 .. acked-1 were put */
	_Atomic int stop;
	_Atomic uint8_t seen[RK_MAX];
	uint8_t excused[RK_MAX];
	uint32_t cbuf[RK_C][64][4];
};
static struct rk_ledger *rk;
static lfipc_queue *rk_q;

static int rk_producer(void *arg)
{
	uint32_t m[64][4] = {{0}};
	const void *mp[64];
	size_t len[64];
	uint64_t rng = 77;
	uint32_t seq = 0;

	(void)arg;
	for (int i = 0; i < 64; i++) {
		mp[i] = m[i];
		len[i] = sizeof(m[i]);
	}
	while (!atomic_load(&rk->stop) && seq + 64 <= RK_MAX) {
		int n = 1 + (int)(th_rand(&rng) % 64), rc;

		for (int i = 0; i < n; i++) {
			m[i][0] = seq + (uint32_t)i;
			m[i][1] = ~(seq + (uint32_t)i);
		}
		rc = lfipc_queue_put_many(rk_q, mp, len, (size_t)n, 100000000);
		if (rc == -ETIMEDOUT)
			continue;
		if (rc <= 0)
			return 1;
		seq += (uint32_t)rc;
		atomic_store(&rk->acked, seq);
		usleep(10);
	}
	return 0;
}

/* peek 1..64 (cid 0: one peek_many, one release_many; cid 1: peek and
 * release one at a time), copy into cbuf before releasing, record,
 * task_done per message, until -EPIPE */
static int rk_consumer(void *arg)
{
	int cid = (int)(uintptr_t)arg;
	uint32_t(*b)[4] = rk->cbuf[cid];
	uint64_t rng = 2000 + (uint64_t)getpid();
	const void *m[64];
	size_t lens[64];

	for (;;) {
		int n = 1 + (int)(th_rand(&rng) % 64), k = 0;

		if (cid == 0) {
			k = lfipc_queue_peek_many(rk_q, m, lens, (size_t)n,
						  1000000000);
			if (k > 0) {
				for (int i = 0; i < k; i++)
					memcpy(b[i], m[i], sizeof(b[i]));
				if (lfipc_queue_release_many(rk_q, m,
							     (size_t)k) != k)
					return 3;
			}
		} else {
			while (k < n) {
				int rc = lfipc_queue_peek(rk_q, m, lens + k,
							  k ? 0 : 1000000000);

				if (rc) {
					if (k == 0)
						k = rc;
					break;
				}
				memcpy(b[k], m[0], sizeof(b[k]));
				if (lfipc_queue_release(rk_q, m[0]))
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
		for (int i = 0; i < k; i++) {
			if (lens[i] != sizeof(b[i]) || b[i][1] != ~b[i][0] ||
			    b[i][0] >= RK_MAX)
				return 1;
			atomic_fetch_add(&rk->seen[b[i][0]], 1);
		}
		for (int i = 0; i < k; i++)
			if (lfipc_queue_task_done(rk_q))
				return 2;
		memset(b, 0xff, sizeof(rk->cbuf[cid]));
	}
}

/* As the get_many torture, with the zero-copy release and release_many
 * of a JoinableQueue (each adopts the entry before its first free and
 * counts after its last): no message delivered twice (a message peeked
 * by the dead and not released is delivered again; one released is not),
 * none lost (one never seen was in a killed consumer's buffer), join
 * returns only 0, -EOWNERDEAD or -ETIMEDOUT, and tasks were written off
 * only because consumers died. */
Test(queue_crash_rel, sigkilled_release_consumers_of_a_joinable_queue)
{
	int kills = 60 * th_scale(), jr;
	uint64_t rng = 4242;
	pid_t cons[RK_C], prod;
	uint32_t acked;

	rk = mmap(NULL, sizeof(*rk), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(rk, MAP_FAILED);
	memset(rk->cbuf, 0xff, sizeof(rk->cbuf));
	cr_assert_eq(lfipc_queue_create(qt_r, "rk", 128, 16,
					LFIPC_QUEUE_JOINABLE, &rk_q),
		     0);
	for (int c = 0; c < RK_C; c++)
		cr_assert_gt(cons[c] = th_fork(rk_consumer,
					       (void *)(uintptr_t)c),
			     0);
	cr_assert_gt(prod = th_fork(rk_producer, NULL), 0);
	for (int i = 0; i < kills; i++) {
		int c = (int)(th_rand(&rng) % RK_C);

		usleep((useconds_t)(300 + th_rand(&rng) % 2000));
		kill(cons[c], SIGKILL);
		cr_assert_eq(th_reap(cons[c], QT_REAP_MS), 128 + SIGKILL);
		for (int j = 0; j < 64; j++)
			if (rk->cbuf[c][j][0] < RK_MAX)
				rk->excused[rk->cbuf[c][j][0]] = 1;
		memset(rk->cbuf[c], 0xff, sizeof(rk->cbuf[c]));
		cr_assert_gt(cons[c] = th_fork(rk_consumer,
					       (void *)(uintptr_t)c),
			     0);
	}
	atomic_store(&rk->stop, 1);
	cr_assert_eq(th_reap(prod, QT_REAP_MS), 0);
	acked = atomic_load(&rk->acked);
	cr_assert_gt(acked, 0u);
	cr_assert_eq(lfipc_queue_shutdown(rk_q), 0);
	for (int c = 0; c < RK_C; c++)
		cr_assert_eq(th_reap(cons[c], QT_REAP_MS), 0);
	for (uint32_t s = 0; s < RK_MAX; s++) {
		unsigned n = atomic_load(&rk->seen[s]);

		cr_assert_leq(n, 1u, "message %u delivered %u times", s, n);
		if (s < acked && n == 0)
			cr_assert(rk->excused[s], "message %u lost", s);
		if (s >= acked)
			cr_assert_eq(n, 0u, "message %u was never put", s);
	}
	jr = lfipc_queue_join(rk_q, 200000000);
	cr_assert(jr == 0 || jr == -EOWNERDEAD || jr == -ETIMEDOUT,
		  "join returned %d", jr);
	cr_log_info("release torture: %u put, join %d, %llu abandoned", acked,
		    jr, (unsigned long long)lfipc_queue_tasks_abandoned(rk_q));
	lfipc_queue_close(rk_q);
	cr_assert_eq(lfipc_object_remove(qt_r, "rk"), 0);
	munmap(rk, sizeof(*rk));
}
