/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/wait.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "common/testhelp.h"

#define REGION_SIZE ((size_t)64 << 20)
#define REAP_MS 60000

static lfipc_region *r;

static void setup(void)
{
	cr_assert_eq(lfipc_region_create(NULL, REGION_SIZE, 0, &r), 0);
}

static void teardown(void)
{
	lfipc_region_close(r);
	r = NULL;
}

TestSuite(queue, .init = setup, .fini = teardown, .timeout = 120);

Test(queue, messages_come_out_in_the_order_they_went_in)
{
	lfipc_queue *q;
	char buf[32];
	size_t len;

	cr_assert_eq(lfipc_queue_create(r, "q", 4, 32, 0, &q), 0);
	cr_assert_eq(lfipc_queue_capacity(q), 4);
	cr_assert_eq(lfipc_queue_msg_size(q), 32);
	cr_assert(lfipc_queue_empty(q));
	for (int i = 0; i < 4; i++)
		cr_assert_eq(lfipc_queue_put(q, &i, sizeof(i), LFIPC_NOWAIT), 0);
	cr_assert(lfipc_queue_full(q));
	cr_assert_eq(lfipc_queue_qsize(q), 4);
	cr_assert_eq(lfipc_queue_put(q, "x", 1, LFIPC_NOWAIT), -EAGAIN);
	for (int i = 0; i < 4; i++) {
		int v;

		cr_assert_eq(lfipc_queue_get(q, buf, sizeof(buf), &len,
					     LFIPC_NOWAIT), 0);
		cr_assert_eq(len, sizeof(int));
		memcpy(&v, buf, sizeof(v));
		cr_assert_eq(v, i);
	}
	cr_assert_eq(lfipc_queue_get(q, buf, sizeof(buf), &len, LFIPC_NOWAIT),
		     -EAGAIN);
	/* many laps */
	for (int i = 0; i < 1000; i++) {
		cr_assert_eq(lfipc_queue_put(q, &i, sizeof(i), LFIPC_NOWAIT), 0);
		cr_assert_eq(lfipc_queue_get(q, buf, sizeof(buf), &len,
					     LFIPC_NOWAIT), 0);
		cr_assert_eq(memcmp(buf, &i, sizeof(i)), 0);
	}
	lfipc_queue_close(q);
}

Test(queue, a_capacity_that_is_not_a_power_of_two_is_exact)
{
	lfipc_queue *q;
	char buf[8];

	cr_assert_eq(lfipc_queue_create(r, "q3", 3, 8, 0, &q), 0);
	for (int k = 0; k < 10; k++) {
		for (int i = 0; i < 3; i++)
			cr_assert_eq(lfipc_queue_put(q, "a", 1, LFIPC_NOWAIT), 0);
		cr_assert_eq(lfipc_queue_put(q, "a", 1, LFIPC_NOWAIT), -EAGAIN);
		cr_assert_eq(lfipc_queue_qsize(q), 3);
		for (int i = 0; i < 3; i++)
			cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL,
						     LFIPC_NOWAIT), 0);
	}
	lfipc_queue_close(q);
}

Test(queue, sizes_and_arguments_are_checked)
{
	lfipc_queue *q, *q2;
	char big[64], buf[8];

	cr_assert_eq(lfipc_queue_create(r, "q", 0, 8, 0, &q), -EINVAL);
	cr_assert_eq(lfipc_queue_create(r, "q", 2, 8, 0x80, &q), -EINVAL);
	cr_assert_eq(lfipc_queue_create(r, "q", 2, 8, 0, &q), 0);
	cr_assert_eq(lfipc_queue_create(r, "q", 2, 8, 0, &q2), -EEXIST);
	cr_assert_eq(lfipc_queue_open(r, "nope", &q2), -ENOENT);
	cr_assert_eq(lfipc_queue_open(r, "q", &q2), 0);
	memset(big, 1, sizeof(big));
	cr_assert_eq(lfipc_queue_put(q, big, 9, LFIPC_NOWAIT), -EMSGSIZE);
	cr_assert_eq(lfipc_queue_put(q, big, 8, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_get(q2, buf, 4, NULL, LFIPC_NOWAIT), -EMSGSIZE);
	cr_assert_eq(lfipc_queue_qsize(q2), 1, "nothing lost by -EMSGSIZE");
	cr_assert_eq(lfipc_queue_put(q, NULL, 0, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_get(q2, buf, 8, NULL, LFIPC_NOWAIT), 0);
	size_t len = 99;
	cr_assert_eq(lfipc_queue_get(q2, buf, 8, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(len, 0);
	cr_assert_eq(lfipc_queue_task_done(q), -EINVAL, "not joinable");
	lfipc_queue_close(q);
	lfipc_queue_close(q2);
}

Test(queue, a_timed_put_on_a_full_queue_times_out_after_about_the_timeout)
{
	lfipc_queue *q;
	char buf[8];

	cr_assert_eq(lfipc_queue_create(r, "q", 1, 8, 0, &q), 0);
	cr_assert_eq(lfipc_queue_put(q, "a", 1, LFIPC_NOWAIT), 0);
	int64_t t0 = th_now_ns();
	cr_assert_eq(lfipc_queue_put(q, "a", 1, 50000000), -ETIMEDOUT);
	int64_t dt = th_now_ns() - t0;
	cr_assert_geq(dt, 49000000);
	cr_assert_lt(dt, 2000000000);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_NOWAIT), 0);
	t0 = th_now_ns();
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, 30000000), -ETIMEDOUT);
	cr_assert_geq(th_now_ns() - t0, 29000000);
	lfipc_queue_close(q);
}

Test(queue, bulk_operations_return_partial_counts)
{
	lfipc_queue *q;
	int v[6] = { 0, 1, 2, 3, 4, 5 };
	const void *m[6];
	size_t lens[6], out_lens[6];
	char bufs[6][8];

	for (int i = 0; i < 6; i++) {
		m[i] = &v[i];
		lens[i] = sizeof(int);
	}
	cr_assert_eq(lfipc_queue_create(r, "q", 4, 8, 0, &q), 0);
	cr_assert_eq(lfipc_queue_put_many(q, m, lens, 6, LFIPC_NOWAIT), 4);
	cr_assert_eq(lfipc_queue_get_many(q, bufs, 8, out_lens, 6,
					  LFIPC_NOWAIT), 4);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(out_lens[i], sizeof(int));
		cr_assert_eq(memcmp(bufs[i], &v[i], sizeof(int)), 0);
	}
	cr_assert_eq(lfipc_queue_get_many(q, bufs, 8, out_lens, 6,
					  LFIPC_NOWAIT), -EAGAIN);
	lfipc_queue_close(q);
}

Test(queue, zero_copy_reserve_commit_and_peek_release_round_trip)
{
	lfipc_queue *q;
	void *slot;
	const void *msg;
	size_t len;
	char x = 0;

	cr_assert_eq(lfipc_queue_create(r, "q", 2, 16, 0, &q), 0);
	cr_assert_eq(lfipc_queue_reserve(q, &slot, LFIPC_NOWAIT), 0);
	memcpy(slot, "hello", 5);
	cr_assert_eq(lfipc_queue_commit(q, &x, 5), -EINVAL);
	cr_assert_eq(lfipc_queue_commit(q, slot, 17), -EMSGSIZE);
	cr_assert_eq(lfipc_queue_commit(q, slot, 5), 0);
	cr_assert_eq(lfipc_queue_commit(q, slot, 5), -EINVAL, "twice");
	cr_assert_eq(lfipc_queue_peek(q, &msg, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(len, 5);
	cr_assert_eq(memcmp(msg, "hello", 5), 0);
	cr_assert_eq(lfipc_queue_release(q, &x), -EINVAL);
	cr_assert_eq(lfipc_queue_release(q, msg), 0);
	cr_assert_eq(lfipc_queue_release(q, msg), -EINVAL, "twice");
	cr_assert(lfipc_queue_empty(q));
	lfipc_queue_close(q);
}

Test(queue, shutdown_fails_puts_and_lets_gets_drain)
{
	lfipc_queue *q;
	char buf[8];

	cr_assert_eq(lfipc_queue_create(r, "q", 4, 8, 0, &q), 0);
	cr_assert_eq(lfipc_queue_put(q, "a", 1, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_shutdown(q), 0);
	cr_assert_eq(lfipc_queue_put(q, "b", 1, LFIPC_FOREVER), -EPIPE);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_FOREVER), 0);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_FOREVER), -EPIPE);
	lfipc_queue_close(q);
}

static void *shut_later(void *arg)
{
	usleep(50000);
	lfipc_queue_shutdown(arg);
	return NULL;
}

Test(queue, shutdown_wakes_a_blocked_get)
{
	lfipc_queue *q;
	pthread_t t;
	char buf[8];

	cr_assert_eq(lfipc_queue_create(r, "q", 4, 8, 0, &q), 0);
	pthread_create(&t, NULL, shut_later, q);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_FOREVER), -EPIPE);
	pthread_join(t, NULL);
	lfipc_queue_close(q);
}

Test(queue, joinable_counts_task_done_and_clear_as_done)
{
	lfipc_queue *q;
	char buf[8];

	cr_assert_eq(lfipc_queue_create(r, "q", 8, 8, LFIPC_QUEUE_JOINABLE,
					&q), 0);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_task_done(q), -EINVAL);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(lfipc_queue_put(q, "a", 1, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), -EAGAIN);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(lfipc_queue_task_done(q), -EINVAL, "more than got");
	cr_assert_eq(lfipc_queue_join(q, 10000000), -ETIMEDOUT);
	cr_assert_eq(lfipc_queue_clear(q), 3);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_task_done(q), -EINVAL);
	lfipc_queue_close(q);
}

Test(queue, clearing_a_full_large_queue_leaves_it_working_and_empty)
{
	lfipc_queue *q;
	const size_t n = 1000000;
	char buf[8];
	uint64_t v;
	lfipc_region *big;

	cr_assert_eq(lfipc_region_create(NULL, (size_t)96 << 20, 0, &big), 0);
	cr_assert_eq(lfipc_queue_create(big, "big", n, 8, LFIPC_QUEUE_JOINABLE,
					&q), 0);
	for (uint64_t i = 0; i < n; i++)
		cr_assert_eq(lfipc_queue_put(q, &i, 8, LFIPC_NOWAIT), 0);
	cr_assert(lfipc_queue_full(q));
	cr_assert_eq(lfipc_queue_clear(q), (int64_t)n);
	cr_assert_eq(lfipc_queue_qsize(q), 0);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_NOWAIT), -EAGAIN);
	/* two full laps after the clear: every discarded slot is reusable */
	for (uint64_t k = 0; k < 2; k++) {
		for (uint64_t i = 0; i < n; i++)
			cr_assert_eq(lfipc_queue_put(q, &i, 8, LFIPC_NOWAIT),
				     0);
		cr_assert_eq(lfipc_queue_put(q, &v, 8, LFIPC_NOWAIT), -EAGAIN);
		for (uint64_t i = 0; i < n; i++) {
			cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL,
						     LFIPC_NOWAIT), 0);
			memcpy(&v, buf, 8);
			cr_assert_eq(v, i);
			cr_assert_eq(lfipc_queue_task_done(q), 0);
		}
	}
	cr_assert_eq(lfipc_queue_clear(q), 0);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0);
	lfipc_queue_close(q);
	lfipc_region_close(big);
}

Test(queue, partial_clear_keeps_fifo_for_later_messages)
{
	lfipc_queue *q;
	char buf[8];
	int v;

	cr_assert_eq(lfipc_queue_create(r, "q", 8, 8, 0, &q), 0);
	for (int k = 0; k < 20; k++) {
		for (int i = 0; i < 5; i++)
			cr_assert_eq(lfipc_queue_put(q, &i, 4, LFIPC_NOWAIT), 0);
		cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL, LFIPC_NOWAIT), 0);
		cr_assert_eq(lfipc_queue_clear(q), 4);
		for (int i = 0; i < 8; i++)
			cr_assert_eq(lfipc_queue_put(q, &i, 4, LFIPC_NOWAIT), 0);
		cr_assert_eq(lfipc_queue_put(q, &v, 4, LFIPC_NOWAIT), -EAGAIN);
		for (int i = 0; i < 8; i++) {
			cr_assert_eq(lfipc_queue_get(q, buf, 8, NULL,
						     LFIPC_NOWAIT), 0);
			memcpy(&v, buf, 4);
			cr_assert_eq(v, i);
		}
	}
	lfipc_queue_close(q);
}

/* ---- syscall-free fast path ------------------------------------------ */

static int fast_path_child(void *arg)
{
	lfipc_queue *q = arg;
	char buf[16];
	size_t len;
	/* Kill the process on any system call but exit_group/exit. */
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_exit_group, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_exit, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };
	int ok = 0;

	/* register this fork child first (that makes system calls) */
	if (lfipc_queue_put(q, "w", 1, LFIPC_NOWAIT) ||
	    lfipc_queue_get(q, buf, 16, &len, LFIPC_NOWAIT))
		return 2;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		return 3;
	for (int i = 0; i < 1000; i++) {
		ok |= lfipc_queue_put(q, &i, sizeof(i), LFIPC_NOWAIT);
		ok |= lfipc_queue_put(q, &i, sizeof(i), LFIPC_NOWAIT);
		ok |= lfipc_queue_get(q, buf, 16, &len, LFIPC_NOWAIT);
		ok |= lfipc_queue_get(q, buf, 16, &len, LFIPC_NOWAIT);
	}
	return ok ? 4 : 0;
}

Test(queue, put_and_get_make_no_system_call_when_nobody_sleeps)
{
	lfipc_queue *q;

	if (th_tsan())
		cr_skip_test("seccomp kill-all filter vs TSan runtime");
	cr_assert_eq(lfipc_queue_create(r, "q", 4, 16, 0, &q), 0);
	pid_t pid = th_fork(fast_path_child, q);
	cr_assert_gt(pid, 0);
	cr_assert_eq(th_reap(pid, REAP_MS), 0);
	lfipc_queue_close(q);
}

/* ---- stress: producers x consumers, processes and threads ------------ */

struct msg {
	uint32_t pid, seq;
	uint64_t sum;
	char pad[40];
};

struct shared {
	_Atomic uint64_t received;
	_Atomic uint64_t cleared;
	_Atomic uint32_t stop;
	_Atomic uint32_t bad;
	uint32_t last[64][8]; /* per consumer, per producer: last seq + 1 */
	_Atomic uint8_t seen[8][1 << 17];
};

static struct shared *sh;
static lfipc_queue *sq;
static int nper;

static uint64_t msum(const struct msg *m)
{
	return th_sum(m->pad, sizeof(m->pad)) ^ ((uint64_t)m->pid << 40) ^
	       m->seq;
}

static int producer(void *arg)
{
	struct msg m;
	uint32_t id = (uint32_t)(uintptr_t)arg;

	for (int i = 0; i < nper; i++) {
		m.pid = id;
		m.seq = (uint32_t)i;
		th_fill(m.pad, sizeof(m.pad), (uint64_t)id << 32 | (uint64_t)i);
		m.sum = msum(&m);
		if (lfipc_queue_put(sq, &m, sizeof(m), LFIPC_FOREVER))
			return 1;
	}
	return 0;
}

static int consumer(void *arg)
{
	uint32_t cid = (uint32_t)(uintptr_t)arg;
	struct msg m;
	size_t len;
	int rc;

	for (;;) {
		rc = lfipc_queue_get(sq, &m, sizeof(m), &len, 20000000);
		if (rc == -ETIMEDOUT || rc == -EAGAIN) {
			if (atomic_load(&sh->stop))
				return 0;
			continue;
		}
		if (rc == -EPIPE)
			return 0;
		if (rc || len != sizeof(m) || m.pid >= 8 ||
		    m.seq >= (uint32_t)nper || m.sum != msum(&m) ||
		    m.seq < sh->last[cid][m.pid] ||
		    atomic_fetch_add(&sh->seen[m.pid][m.seq], 1) != 0) {
			atomic_fetch_add(&sh->bad, 1);
			continue;
		}
		sh->last[cid][m.pid] = m.seq + 1;
		atomic_fetch_add(&sh->received, 1);
	}
}

static int clearer(void *arg)
{
	(void)arg;
	while (!atomic_load(&sh->stop)) {
		int64_t n = lfipc_queue_clear(sq);

		if (n < 0)
			atomic_fetch_add(&sh->bad, 1);
		else
			atomic_fetch_add(&sh->cleared, (uint64_t)n);
		usleep(200);
	}
	return 0;
}

static void run_stress(int np, int nc, bool with_clear)
{
	pid_t prod[8], cons[8], clr = 0;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(sh, MAP_FAILED);
	nper = 20000 * th_scale();
	if (nper > (1 << 17))
		nper = 1 << 17;
	cr_assert_eq(lfipc_queue_create(r, "s", 64, sizeof(struct msg), 0,
					&sq), 0);
	for (int i = 0; i < nc; i++)
		cons[i] = th_fork(consumer, (void *)(uintptr_t)i);
	for (int i = 0; i < np; i++)
		prod[i] = th_fork(producer, (void *)(uintptr_t)i);
	if (with_clear)
		clr = th_fork(clearer, NULL);
	cr_assert_eq(th_reap_all(prod, np, REAP_MS), 0);
	atomic_store(&sh->stop, 1);
	if (with_clear)
		cr_assert_eq(th_reap(clr, REAP_MS), 0);
	lfipc_queue_shutdown(sq);
	cr_assert_eq(th_reap_all(cons, nc, REAP_MS), 0);
	cr_assert_eq(atomic_load(&sh->bad), 0);
	cr_assert_eq(atomic_load(&sh->received) + atomic_load(&sh->cleared),
		     (uint64_t)np * (uint64_t)nper);
	if (!with_clear)
		for (int p = 0; p < np; p++)
			for (int i = 0; i < nper; i++)
				cr_assert_eq(sh->seen[p][i], 1);
	lfipc_queue_close(sq);
	munmap(sh, sizeof(*sh));
}

Test(queue, processes_2x2_deliver_everything_exactly_once_in_order)
{
	run_stress(2, 2, false);
}

Test(queue, processes_3x2_with_clears_never_duplicate_or_lose_uncounted)
{
	run_stress(3, 2, true);
}

struct targ {
	int id;
	int rc;
};

static void *tprod(void *a)
{
	struct targ *t = a;

	t->rc = producer((void *)(uintptr_t)t->id);
	return NULL;
}

static void *tcons(void *a)
{
	struct targ *t = a;

	t->rc = consumer((void *)(uintptr_t)t->id);
	return NULL;
}

static void *tclear(void *a)
{
	struct targ *t = a;

	t->rc = clearer(NULL);
	return NULL;
}

static void run_threads(int np, int nc, bool with_clear)
{
	pthread_t pt[8], ct[8], clt;
	struct targ pa[8], ca[8], cla = { 0, 0 };

	sh = calloc(1, sizeof(*sh));
	cr_assert_not_null(sh);
	nper = 5000 * th_scale();
	if (nper > (1 << 17))
		nper = 1 << 17;
	cr_assert_eq(lfipc_queue_create(r, "t", 16, sizeof(struct msg), 0,
					&sq), 0);
	for (int i = 0; i < nc; i++) {
		ca[i] = (struct targ){ i, 0 };
		pthread_create(&ct[i], NULL, tcons, &ca[i]);
	}
	for (int i = 0; i < np; i++) {
		pa[i] = (struct targ){ i, 0 };
		pthread_create(&pt[i], NULL, tprod, &pa[i]);
	}
	if (with_clear)
		pthread_create(&clt, NULL, tclear, &cla);
	for (int i = 0; i < np; i++) {
		pthread_join(pt[i], NULL);
		cr_assert_eq(pa[i].rc, 0);
	}
	atomic_store(&sh->stop, 1);
	if (with_clear)
		pthread_join(clt, NULL);
	lfipc_queue_shutdown(sq);
	for (int i = 0; i < nc; i++)
		pthread_join(ct[i], NULL);
	cr_assert_eq(atomic_load(&sh->bad), 0);
	cr_assert_eq(atomic_load(&sh->received) + atomic_load(&sh->cleared),
		     (uint64_t)np * (uint64_t)nper);
	lfipc_queue_close(sq);
	free(sh);
}

Test(queue, threads_3x3_deliver_everything_exactly_once_in_order)
{
	run_threads(3, 3, false);
}

Test(queue, threads_2x2_with_clears_never_duplicate_or_lose_uncounted)
{
	run_threads(2, 2, true);
}

/* ---- crash torture: SIGKILL producers and consumers at random ---------- */

#define CR_P 2
#define CR_C 2
#define CR_MAX 4096

struct crash_sh {
	_Atomic uint32_t acked[CR_P];		/* puts that returned 0 */
	_Atomic uint32_t inflight[CR_C];	/* (p << 16 | seq) + 1 */
	_Atomic uint8_t seen[CR_P][CR_MAX];
	_Atomic uint32_t bad;
};

static struct crash_sh *cs;
static lfipc_queue *cq;

static int crash_producer(void *arg)
{
	uint32_t id = (uint32_t)(uintptr_t)arg;

	for (uint32_t i = 0; i < CR_MAX; i++) {
		uint32_t m[4] = { id, i, id * 7919u + i, 0 };
		int rc = lfipc_queue_put(cq, m, sizeof(m), 2000000000);

		if (rc == -EPIPE)
			return 0;
		if (rc)
			return 1;
		atomic_store(&cs->acked[id], i + 1);
	}
	return 0;
}

static void crash_record(int cid, const uint32_t *m, size_t len)
{
	if (len != 16 || m[0] >= CR_P || m[1] >= CR_MAX ||
	    m[2] != m[0] * 7919u + m[1]) {
		atomic_fetch_add(&cs->bad, 1);
		return;
	}
	if (cid >= 0)
		atomic_store(&cs->inflight[cid], (m[0] << 16 | m[1]) + 1);
	atomic_fetch_add(&cs->seen[m[0]][m[1]], 1);
}

static int crash_consumer(void *arg)
{
	int cid = (int)(uintptr_t)arg;
	const void *msg;
	size_t len;

	for (;;) {
		int rc = lfipc_queue_peek(cq, &msg, &len, 2000000000);

		if (rc == -EPIPE)
			return 0;
		if (rc)
			return 1;
		crash_record(cid, msg, len);
		if (lfipc_queue_release(cq, msg))
			return 2;
		atomic_store(&cs->inflight[cid], 0);
	}
}

Test(queue, sigkilled_producers_and_consumers_lose_no_acknowledged_message,
     .timeout = 300)
{
	int rounds = 150 * th_scale();
	uint64_t rng = 12345, total = 0;

	cs = mmap(NULL, sizeof(*cs), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(cs, MAP_FAILED);
	for (int round = 0; round < rounds; round++) {
		pid_t prod[CR_P], cons[CR_C];
		bool pk[CR_P] = { 0 }, ck[CR_C] = { 0 };
		char name[32];
		uint32_t m[4];
		size_t len;
		int rc;

		memset(cs, 0, sizeof(*cs));
		snprintf(name, sizeof(name), "c%d", round);
		cr_assert_eq(lfipc_queue_create(r, name, 8, 16, 0, &cq), 0);
		for (int i = 0; i < CR_C; i++)
			cons[i] = th_fork(crash_consumer, (void *)(uintptr_t)i);
		for (int i = 0; i < CR_P; i++)
			prod[i] = th_fork(crash_producer, (void *)(uintptr_t)i);
		usleep((useconds_t)(th_rand(&rng) % 3000));
		int kp = (int)(th_rand(&rng) % CR_P);
		int kc = (int)(th_rand(&rng) % CR_C);
		kill(prod[kp], SIGKILL);
		pk[kp] = true;
		if (th_rand(&rng) % 2) {
			kill(cons[kc], SIGKILL);
			ck[kc] = true;
		}
		usleep((useconds_t)(th_rand(&rng) % 2000));
		for (int i = 0; i < CR_P; i++) {
			if (!pk[i]) {
				kill(prod[i], SIGKILL);
				pk[i] = true;
			}
			waitpid(prod[i], NULL, 0);
		}
		for (int i = 0; i < CR_C; i++)
			if (ck[i])
				waitpid(cons[i], NULL, 0);
		cr_assert_geq(lfipc_region_recover(r), 0);
		cr_assert_eq(lfipc_queue_shutdown(cq), 0);
		for (int i = 0; i < CR_C; i++)
			if (!ck[i])
				cr_assert_eq(th_reap(cons[i], REAP_MS), 0,
					     "round %d consumer %d", round, i);
		while ((rc = lfipc_queue_get(cq, m, sizeof(m), &len,
					     LFIPC_NOWAIT)) == 0)
			crash_record(-1, m, len);
		cr_assert_eq(rc, -EPIPE);
		cr_assert_eq(atomic_load(&cs->bad), 0, "round %d", round);
		for (uint32_t p = 0; p < CR_P; p++) {
			uint32_t a = atomic_load(&cs->acked[p]);

			total += a;
			for (uint32_t i = 0; i < CR_MAX; i++) {
				unsigned n = atomic_load(&cs->seen[p][i]);
				bool dup_ok = false;

				for (int c = 0; c < CR_C; c++)
					if (ck[c] &&
					    atomic_load(&cs->inflight[c]) ==
						    (p << 16 | i) + 1)
						dup_ok = true;
				if (i < a)
					cr_assert(n == 1 || (n == 2 && dup_ok),
						  "round %d p %u seq %u seen %u",
						  round, p, i, n);
				else
					cr_assert(n <= 1 || (n == 2 && dup_ok),
						  "round %d p %u seq %u seen %u",
						  round, p, i, n);
			}
		}
		lfipc_queue_close(cq);
		cr_assert_eq(lfipc_object_remove(r, name), 0);
	}
	cr_assert_gt(total, (uint64_t)rounds, "messages flowed");
	munmap(cs, sizeof(*cs));
}
