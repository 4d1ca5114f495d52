/* SPDX-License-Identifier: MIT */
/*
 * test_queue_stress.c - many producers and consumers, processes and
 * threads, single and bulk calls, zero-copy, clears and shutdowns at
 * once: every message is delivered exactly once and in order per
 * producer (or counted as cleared), and JoinableQueue counts stay exact.
 * Checked by sequence numbers, checksums and counts. The scale comes from
 * LFIPC_STRESS_SCALE (short in `make check`, long in `make stress`).
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
#include <sys/mman.h>
#include <unistd.h>

#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "common/qtest.h"
#include "common/testhelp.h"

TestSuite(queue_stress, .init = qt_setup, .fini = qt_teardown, .timeout = 300);

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
static bool zero_copy; /* odd messages go through reserve/commit */
static bool joinable;  /* consumers call task_done */
static bool bulk;      /* put_many / get_many in bursts of 1..32 */
static bool mixed;     /* every call kind at random, message by message */
static bool exact;     /* one consumer, no clear: seq must be last + 1 */
static unsigned qflags; /* extra lfipc_queue_create() flags */

static uint64_t msum(const struct msg *m)
{
	return th_sum(m->pad, sizeof(m->pad)) ^ ((uint64_t)m->pid << 40) ^
	       m->seq;
}

#define BURST 32

static int bulk_producer(uint32_t id)
{
	struct msg m[BURST];
	const void *mp[BURST];
	size_t lens[BURST];
	uint64_t rng = id + 1;

	for (int i = 0; i < nper;) {
		int b = 1 + (int)(th_rand(&rng) % BURST), rc;

		if (b > nper - i)
			b = nper - i;
		for (int j = 0; j < b; j++) {
			m[j].pid = id;
			m[j].seq = (uint32_t)(i + j);
			th_fill(m[j].pad, sizeof(m[j].pad),
				(uint64_t)id << 32 | (uint64_t)(i + j));
			m[j].sum = msum(&m[j]);
			mp[j] = &m[j];
			lens[j] = sizeof(m[j]);
		}
		rc = lfipc_queue_put_many(sq, mp, lens, (size_t)b,
					  LFIPC_FOREVER);
		if (rc < 1 || rc > b)
			return 1;
		i += rc;
	}
	return 0;
}

static void mkmsg(struct msg *m, uint32_t id, int i)
{
	m->pid = id;
	m->seq = (uint32_t)i;
	th_fill(m->pad, sizeof(m->pad), (uint64_t)id << 32 | (uint64_t)i);
	m->sum = msum(m);
}

/* put, reserve + commit and put_many of 1..BURST, chosen at random. */
static int mixed_producer(uint32_t id)
{
	struct msg m[BURST];
	const void *mp[BURST];
	size_t lens[BURST];
	uint64_t rng = id * 977 + 5;
	void *slot;

	for (int i = 0; i < nper;) {
		int b = 1 + (int)(th_rand(&rng) % BURST), rc;

		if (b > nper - i)
			b = nper - i;
		for (int j = 0; j < b; j++) {
			mkmsg(&m[j], id, i + j);
			mp[j] = &m[j];
			lens[j] = sizeof(m[j]);
		}
		switch (th_rand(&rng) % 3) {
		case 0:
			rc = lfipc_queue_put(sq, &m[0], sizeof(m[0]),
					     LFIPC_FOREVER) ? -1 : 1;
			break;
		case 1:
			rc = lfipc_queue_reserve(sq, &slot, LFIPC_FOREVER);
			if (rc == 0) {
				memcpy(slot, &m[0], sizeof(m[0]));
				rc = lfipc_queue_commit(sq, slot, sizeof(m[0]))
					 ? -1
					 : 1;
			}
			break;
		default:
			rc = lfipc_queue_put_many(sq, mp, lens, (size_t)b,
						  LFIPC_FOREVER);
			break;
		}
		if (rc < 1 || rc > b)
			return 1;
		i += rc;
	}
	return 0;
}

static int producer(void *arg)
{
	struct msg m;
	uint32_t id = (uint32_t)(uintptr_t)arg;

	if (bulk)
		return bulk_producer(id);
	if (mixed)
		return mixed_producer(id);
	for (int i = 0; i < nper; i++) {
		m.pid = id;
		m.seq = (uint32_t)i;
		th_fill(m.pad, sizeof(m.pad), (uint64_t)id << 32 | (uint64_t)i);
		m.sum = msum(&m);
		if (zero_copy && (i & 1)) {
			void *slot;

			if (lfipc_queue_reserve(sq, &slot, LFIPC_FOREVER))
				return 1;
			memcpy(slot, &m, sizeof(m));
			if (lfipc_queue_commit(sq, slot, sizeof(m)))
				return 1;
			continue;
		}
		if (lfipc_queue_put(sq, &m, sizeof(m), LFIPC_FOREVER))
			return 1;
	}
	return 0;
}

/* One message got by consumer cid: checksum, per-producer order, seen
 * exactly once. */
static void consumed(uint32_t cid, const struct msg *m, size_t len)
{
	if (joinable && lfipc_queue_task_done(sq) != 0)
		atomic_fetch_add(&sh->bad, 1);
	if (len != sizeof(*m) || m->pid >= 8 || m->seq >= (uint32_t)nper ||
	    m->sum != msum(m) || m->seq < sh->last[cid][m->pid] ||
	    (exact && m->seq != sh->last[cid][m->pid]) ||
	    atomic_fetch_add(&sh->seen[m->pid][m->seq], 1) != 0) {
		atomic_fetch_add(&sh->bad, 1);
		return;
	}
	sh->last[cid][m->pid] = m->seq + 1;
	atomic_fetch_add(&sh->received, 1);
}

static int consumer(void *arg)
{
	uint32_t cid = (uint32_t)(uintptr_t)arg;
	struct msg m[BURST];
	size_t len[BURST];
	uint64_t rng = cid + 100;
	int rc;

	for (;;) {
		uint64_t how = mixed ? th_rand(&rng) % 3 : bulk ? 2 : 0;
		const void *pm;

		if (how == 1) {
			/* peek + release: copy out, then give the slot back */
			rc = lfipc_queue_peek(sq, &pm, &len[0], 20000000);
			if (rc == 0) {
				memcpy(&m[0], pm,
				       len[0] < sizeof(m[0]) ? len[0]
							     : sizeof(m[0]));
				if (lfipc_queue_release(sq, pm))
					atomic_fetch_add(&sh->bad, 1);
			}
		} else if (how == 2)
			rc = lfipc_queue_get_many(sq, m, sizeof(m[0]), len,
						  1 + th_rand(&rng) % BURST,
						  20000000);
		else
			rc = lfipc_queue_get(sq, &m[0], sizeof(m[0]), &len[0],
					     20000000);
		if (rc == -ETIMEDOUT || rc == -EAGAIN) {
			if (atomic_load(&sh->stop))
				return 0;
			continue;
		}
		if (rc == -EPIPE)
			return 0;
		if (rc < 0 || rc > BURST) {
			atomic_fetch_add(&sh->bad, 1);
			continue;
		}
		for (int j = 0; j < (how == 2 ? rc : 1); j++)
			consumed(cid, &m[j], len[j]);
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
	cr_assert_eq(lfipc_queue_create(qt_r, "s", 64, sizeof(struct msg),
					qflags, &sq),
		     0);
	for (int i = 0; i < nc; i++)
		cons[i] = th_fork(consumer, (void *)(uintptr_t)i);
	for (int i = 0; i < np; i++)
		prod[i] = th_fork(producer, (void *)(uintptr_t)i);
	if (with_clear)
		clr = th_fork(clearer, NULL);
	cr_assert_eq(th_reap_all(prod, np, QT_REAP_MS), 0);
	atomic_store(&sh->stop, 1);
	if (with_clear)
		cr_assert_eq(th_reap(clr, QT_REAP_MS), 0);
	lfipc_queue_shutdown(sq);
	cr_assert_eq(th_reap_all(cons, nc, QT_REAP_MS), 0);
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

Test(queue_stress, processes_2x2_deliver_everything_exactly_once_in_order)
{
	run_stress(2, 2, false);
}

Test(queue_stress, processes_3x2_with_clears_never_duplicate_or_lose_uncounted)
{
	run_stress(3, 2, true);
}

Test(queue_stress, bulk_processes_2x2_deliver_everything_exactly_once_in_order)
{
	bulk = true;
	run_stress(2, 2, false);
}

Test(queue_stress,
     bulk_processes_3x2_with_clears_never_duplicate_or_lose_uncounted)
{
	bulk = true;
	run_stress(3, 2, true);
}

/* ---- single-producer / single-consumer queues ----------------------- */

#define SPSC (LFIPC_QUEUE_SINGLE_PRODUCER | LFIPC_QUEUE_SINGLE_CONSUMER)

Test(queue_stress, spsc_processes_mixing_every_call_deliver_in_exact_sequence)
{
	qflags = SPSC;
	mixed = true;
	exact = true;
	run_stress(1, 1, false);
}

Test(queue_stress, spsc_processes_with_clears_never_duplicate_or_reorder)
{
	qflags = SPSC;
	mixed = true;
	run_stress(1, 1, true);
}

Test(queue_stress, a_single_producer_feeds_3_consumers_exactly_once_in_order)
{
	qflags = LFIPC_QUEUE_SINGLE_PRODUCER;
	mixed = true;
	run_stress(1, 3, false);
}

Test(queue_stress, a_single_consumer_drains_3_producers_exactly_once_in_order)
{
	qflags = LFIPC_QUEUE_SINGLE_CONSUMER;
	mixed = true;
	run_stress(3, 1, true);
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
	struct targ pa[8], ca[8], cla = {0, 0};

	sh = calloc(1, sizeof(*sh));
	cr_assert_not_null(sh);
	nper = 5000 * th_scale();
	if (nper > (1 << 17))
		nper = 1 << 17;
	cr_assert_eq(lfipc_queue_create(qt_r, "t", 16, sizeof(struct msg),
					qflags | (joinable ? LFIPC_QUEUE_JOINABLE
							   : 0),
					&sq),
		     0);
	for (int i = 0; i < nc; i++) {
		ca[i] = (struct targ){i, 0};
		pthread_create(&ct[i], NULL, tcons, &ca[i]);
	}
	for (int i = 0; i < np; i++) {
		pa[i] = (struct targ){i, 0};
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
	if (joinable)
		cr_assert_eq(lfipc_queue_join(sq, LFIPC_NOWAIT), 0,
			     "got + task_done + cleared == put, exactly");
	lfipc_queue_close(sq);
	free(sh);
}

Test(queue_stress, threads_3x3_deliver_everything_exactly_once_in_order)
{
	run_threads(3, 3, false);
}

Test(queue_stress, threads_2x2_with_clears_never_duplicate_or_lose_uncounted)
{
	run_threads(2, 2, true);
}

Test(queue_stress,
     threads_zero_copy_puts_with_clears_keep_joinable_counts_exact)
{
	zero_copy = true;
	joinable = true;
	run_threads(3, 2, true);
}

Test(queue_stress, bulk_threads_3x3_deliver_everything_exactly_once_in_order)
{
	bulk = true;
	run_threads(3, 3, false);
}

Test(queue_stress, bulk_threads_with_clears_keep_joinable_counts_exact)
{
	bulk = true;
	joinable = true;
	run_threads(2, 2, true);
}

/* ---- shutdown racing puts and gets ---------------------------------- */

struct sd_arg {
	lfipc_queue *q;
	long n;
	int bad;
	int why; /* the first bad return, for the failure message */
};

static bool sd_bulk; /* put_many / get_many of 3 */

static void *sd_put(void *a)
{
	struct sd_arg *s = a;
	const void *mp[3] = {&s->n, &s->n, &s->n};
	size_t lens[3] = {sizeof(s->n), sizeof(s->n), sizeof(s->n)};

	for (;;) {
		int rc = sd_bulk ? lfipc_queue_put_many(s->q, mp, lens, 3,
							LFIPC_FOREVER)
				 : lfipc_queue_put(s->q, &s->n, sizeof(s->n),
						   LFIPC_FOREVER);

		if (rc == -EPIPE)
			return NULL;
		if (rc < 0 || rc > 3) {
			s->bad++;
			s->why = rc;
			return NULL;
		}
		s->n += sd_bulk ? rc : 1;
	}
}

static void *sd_get(void *a)
{
	struct sd_arg *s = a;
	char buf[3][8];
	size_t lens[3];

	for (;;) {
		int rc = sd_bulk ? lfipc_queue_get_many(s->q, buf, 8, lens, 3,
							LFIPC_FOREVER)
				 : lfipc_queue_get(s->q, buf[0], sizeof(buf[0]),
						   NULL, LFIPC_FOREVER);

		if (rc == -EPIPE)
			return NULL;
		if (rc < 0 || rc > 3) {
			s->bad++;
			s->why = rc;
			return NULL;
		}
		for (int i = 0; i < (sd_bulk ? rc : 1); i++) {
			int td = lfipc_queue_task_done(s->q);

			if (td) {
				s->bad++;
				s->why = 1000 + td;
			}
		}
		s->n += sd_bulk ? rc : 1;
	}
}

/* Every put that returned 0 is got, even when it raced with the shutdown
 * that made the consumers stop; and a put that failed with -EPIPE leaves
 * nothing behind: once everybody has returned, join has nothing to wait
 * for and qsize() is 0 (a put that claimed a slot after the last consumer
 * saw the queue closed and empty used to leave a hole nobody dropped). */
static void run_shutdown_race(void)
{
	int rounds = 150 * th_scale();
	uint64_t rng = 99;

	for (int round = 0; round < rounds; round++) {
		struct sd_arg pa[2], ga[2];
		pthread_t pt[2], gt[2];
		lfipc_queue *q;
		char name[32];
		long put = 0, got = 0;

		snprintf(name, sizeof(name), "sd%d", round);
		cr_assert_eq(lfipc_queue_create(qt_r, name, 4, 8,
						LFIPC_QUEUE_JOINABLE, &q),
			     0);
		for (int i = 0; i < 2; i++) {
			pa[i] = (struct sd_arg){q, 0, 0, 0};
			ga[i] = (struct sd_arg){q, 0, 0, 0};
			cr_assert_eq(
			    pthread_create(&gt[i], NULL, sd_get, &ga[i]), 0);
			cr_assert_eq(
			    pthread_create(&pt[i], NULL, sd_put, &pa[i]), 0);
		}
		usleep((useconds_t)(th_rand(&rng) % 500));
		cr_assert_eq(lfipc_queue_shutdown(q), 0);
		/* all joined before any assertion: a failure must not leave
		 * a thread running into the teardown's close of the region */
		for (int i = 0; i < 2; i++) {
			pthread_join(pt[i], NULL);
			pthread_join(gt[i], NULL);
		}
		for (int i = 0; i < 2; i++) {
			cr_assert_eq(pa[i].bad + ga[i].bad, 0,
				     "round %d: put %d, get %d (task_done: "
				     "1000 + its return)",
				     round, pa[i].why, ga[i].why);
			put += pa[i].n;
			got += ga[i].n;
		}
		cr_assert_eq(put, got, "round %d: %ld put, %ld got", round, put,
			     got);
		cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0, "round %d",
			     round);
		cr_assert_eq(lfipc_queue_qsize(q), 0, "round %d", round);
		lfipc_queue_close(q);
		cr_assert_eq(lfipc_object_remove(qt_r, name), 0);
	}
}

Test(queue_stress, a_put_racing_a_shutdown_either_fails_or_is_got)
{
	run_shutdown_race();
}

Test(queue_stress, a_put_many_racing_a_shutdown_is_got_as_far_as_it_counted)
{
	sd_bulk = true;
	run_shutdown_race();
}
Test(queue_stress, spsc_threads_keep_joinable_counts_exact_with_clears)
{
	qflags = SPSC;
	mixed = true;
	joinable = true;
	run_threads(1, 1, true);
}

/* ---- threads of one process adopting a fresh task entry ------------- */

struct adopt_arg {
	lfipc_queue *q;
	pthread_barrier_t *go;
	int rc; /* the first failure of get or task_done, else 0 */
};

static void *adopt_get(void *a)
{
	struct adopt_arg *s = a;
	long v;

	pthread_barrier_wait(s->go);
	s->rc = lfipc_queue_get(s->q, &v, sizeof(v), NULL, LFIPC_FOREVER);
	if (s->rc == 0)
		s->rc = lfipc_queue_task_done(s->q);
	return NULL;
}

/* Threads of one process share its token, so its entry in the task table:
 * the first gets on a new queue adopt the entry (owner 0 is not ours) at
 * once. One that looked at owner before another thread's adoption, and at
 * got after that thread had counted its message, used to write that
 * message off as a dead predecessor's task: the thread's task_done then
 * said -EINVAL and tasks_abandoned() went above 0 with nobody dead. */
Test(queue_stress, threads_adopting_the_task_entry_at_once_lose_no_task)
{
	int rounds = 300 * th_scale();

	for (int round = 0; round < rounds; round++) {
		enum { T = 4 };
		struct adopt_arg a[T];
		pthread_t t[T];
		pthread_barrier_t go;
		lfipc_queue *q;
		char name[32];

		snprintf(name, sizeof(name), "ad%d", round);
		cr_assert_eq(lfipc_queue_create(qt_r, name, T, sizeof(long),
						LFIPC_QUEUE_JOINABLE, &q),
			     0);
		for (long i = 0; i < T; i++)
			cr_assert_eq(lfipc_queue_put(q, &i, sizeof(i),
						     LFIPC_NOWAIT),
				     0);
		pthread_barrier_init(&go, NULL, T);
		for (int i = 0; i < T; i++) {
			a[i] = (struct adopt_arg){q, &go, 0};
			cr_assert_eq(
			    pthread_create(&t[i], NULL, adopt_get, &a[i]), 0);
		}
		for (int i = 0; i < T; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&go);
		for (int i = 0; i < T; i++)
			cr_assert_eq(a[i].rc, 0, "round %d, thread %d: %d",
				     round, i, a[i].rc);
		cr_assert_eq(lfipc_queue_tasks_abandoned(q), 0, "round %d",
			     round);
		cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0, "round %d",
			     round);
		lfipc_queue_close(q);
		cr_assert_eq(lfipc_object_remove(qt_r, name), 0);
	}
}

/* ---- a hostile process: its threads get, hand over and clear -------- */

struct hz {
	lfipc_queue *q;
	pthread_barrier_t go;
	_Atomic long handed; /* tasks got and handed to the finisher */
	_Atomic long got, cleared;
	_Atomic int consumers; /* still running */
	_Atomic int bad, why; /* failures, the first one's return */
};

static void hz_bad(struct hz *z, int why)
{
	int zero = 0;

	atomic_fetch_add(&z->bad, 1);
	atomic_compare_exchange_strong(&z->why, &zero, why);
}

/* One task done, by this thread or handed to the finisher thread (every
 * other one: a task_done of a thread that did not get the message). */
static void hz_done(struct hz *z, uint64_t *rng)
{
	int rc;

	atomic_fetch_add(&z->got, 1);
	if (th_rand(rng) & 1) {
		atomic_fetch_add(&z->handed, 1);
		return;
	}
	if ((rc = lfipc_queue_task_done(z->q)))
		hz_bad(z, 1000 + rc);
}

struct hz_arg {
	struct hz *z;
	int kind;
};

/* A consumer: get, get_many, peek + release, or peek_many + release_many
 * (each delivery path counts its tasks at its own place). */
static void *hz_consume(void *a)
{
	struct hz_arg *s = a;
	struct hz *z = s->z;
	uint64_t rng = (uint64_t)s->kind * 7919 + 1;

	pthread_barrier_wait(&z->go);
	for (;;) {
		char buf[3][8];
		size_t lens[3];
		const void *m[3];
		int rc, k = 1;

		switch (s->kind % 4) {
		case 0:
			rc = lfipc_queue_get(z->q, buf[0], 8, NULL,
					     LFIPC_FOREVER);
			break;
		case 1:
			rc = k = lfipc_queue_get_many(z->q, buf, 8, lens, 3,
						      LFIPC_FOREVER);
			break;
		case 2:
			rc = lfipc_queue_peek(z->q, &m[0], &lens[0],
					      LFIPC_FOREVER);
			if (rc == 0)
				rc = lfipc_queue_release(z->q, m[0]);
			break;
		default:
			rc = k = lfipc_queue_peek_many(z->q, m, lens, 3,
						       LFIPC_FOREVER);
			if (k > 0 && lfipc_queue_release_many(z->q, m,
							      (size_t)k) != k)
				rc = -EBADE;
			break;
		}
		if (rc == -EPIPE)
			break;
		if (rc < 0) {
			hz_bad(z, rc);
			break;
		}
		for (int i = 0; i < k; i++)
			hz_done(z, &rng);
	}
	atomic_fetch_sub(&z->consumers, 1);
	return NULL;
}

/* task_done for the tasks the consumers handed over, until they are all
 * gone and nothing is left. */
static void *hz_finish(void *a)
{
	struct hz *z = ((struct hz_arg *)a)->z;

	pthread_barrier_wait(&z->go);
	for (;;) {
		long h = atomic_load(&z->handed);
		int rc;

		if (h == 0) {
			if (atomic_load(&z->consumers) == 0 &&
			    atomic_load(&z->handed) == 0)
				break;
			sched_yield();
			continue;
		}
		if (!atomic_compare_exchange_weak(&z->handed, &h, h - 1))
			continue;
		if ((rc = lfipc_queue_task_done(z->q)))
			hz_bad(z, 2000 + rc);
	}
	return NULL;
}

/* Puts n messages, clearing now and then; then shuts the queue down. */
static void *hz_produce(void *a)
{
	struct hz_arg *s = a;
	struct hz *z = s->z;
	uint64_t rng = 17;

	pthread_barrier_wait(&z->go);
	for (long i = 0; i < s->kind; i++) {
		int rc = lfipc_queue_put(z->q, &i, sizeof(i), LFIPC_FOREVER);

		if (rc) {
			hz_bad(z, 3000 + rc);
			break;
		}
		if (th_rand(&rng) % 16 == 0) {
			int64_t c = lfipc_queue_clear(z->q);

			if (c < 0)
				hz_bad(z, 4000 + (int)c);
			else
				atomic_fetch_add(&z->cleared, c);
		}
	}
	if (lfipc_queue_shutdown(z->q))
		hz_bad(z, 5000);
	return NULL;
}

/* Threads of one process share its token and so its task entry: on every
 * fresh queue they adopt it at once, through each delivery path (get,
 * get_many, release, release_many), while a thread of theirs that got
 * nothing calls task_done for tasks handed to it, and a producer clears
 * and shuts the queue down. Exact counts: no task_done says -EINVAL
 * (1000 + or 2000 + its return in the message), nothing is written off
 * with nobody dead, and join finds every task done. */
/* Another process of consumers on the same queue: two consumer threads
 * and a finisher, with its own counts in shared memory (TSan: no thread
 * in a fork child, th_tsan(): one consumer, then the finisher). */
static int hz_child(void *arg)
{
	struct hz *z = arg;
	struct hz_arg ca[2] = {{z, 1}, {z, 2}}, fa = {z, 0};
	pthread_t ct[2], ft;

	if (th_tsan()) {
		pthread_barrier_init(&z->go, NULL, 1);
		hz_consume(&ca[0]);
		hz_finish(&fa);
		return atomic_load(&z->bad) ? 1 : 0;
	}
	pthread_barrier_init(&z->go, NULL, 3);
	for (int i = 0; i < 2; i++)
		pthread_create(&ct[i], NULL, hz_consume, &ca[i]);
	pthread_create(&ft, NULL, hz_finish, &fa);
	for (int i = 0; i < 2; i++)
		pthread_join(ct[i], NULL);
	pthread_join(ft, NULL);
	return atomic_load(&z->bad) ? 1 : 0;
}

static int hz_round(int round, int per, struct hz *cz)
{
	enum { C = 4 };
	struct hz z = {.consumers = C};
	pid_t pid = 0;
	struct hz_arg ca[C], fa = {&z, 0}, pa = {&z, per};
	pthread_t ct[C], ft, pt;
	char name[32];

	snprintf(name, sizeof(name), "hz%d-%d", (int)getpid(), round);
	if (lfipc_queue_create(qt_r, name, 4, 8, LFIPC_QUEUE_JOINABLE,
			       &z.q))
		return -1;
	if (cz) {
		memset(cz, 0, sizeof(*cz));
		cz->q = z.q;
		cz->consumers = th_tsan() ? 1 : 2;
		pid = th_fork(hz_child, cz);
		cr_assert_gt(pid, 0);
	}
	pthread_barrier_init(&z.go, NULL, C + 2);
	for (int i = 0; i < C; i++) {
		ca[i] = (struct hz_arg){&z, i + round};
		pthread_create(&ct[i], NULL, hz_consume, &ca[i]);
	}
	pthread_create(&ft, NULL, hz_finish, &fa);
	pthread_create(&pt, NULL, hz_produce, &pa);
	pthread_join(pt, NULL);
	for (int i = 0; i < C; i++)
		pthread_join(ct[i], NULL);
	pthread_join(ft, NULL);
	pthread_barrier_destroy(&z.go);
	if (cz) {
		cr_expect_eq(th_reap(pid, QT_REAP_MS), 0, "round %d: child",
			     round);
		cr_expect_eq(atomic_load(&cz->bad), 0,
			     "round %d: child: %d bad, first %d", round,
			     atomic_load(&cz->bad), atomic_load(&cz->why));
		atomic_fetch_add(&z.got, atomic_load(&cz->got));
		atomic_fetch_add(&z.bad, atomic_load(&cz->bad));
	}
	cr_expect_eq(atomic_load(&z.bad), 0, "round %d: %d bad, first %d",
		     round, atomic_load(&z.bad), atomic_load(&z.why));
	cr_expect_eq(atomic_load(&z.got) + atomic_load(&z.cleared), per,
		     "round %d: %ld got, %ld cleared", round,
		     atomic_load(&z.got), atomic_load(&z.cleared));
	cr_expect_eq(lfipc_queue_tasks_abandoned(z.q), 0, "round %d", round);
	cr_expect_eq(lfipc_queue_join(z.q, LFIPC_NOWAIT), 0, "round %d",
		     round);
	lfipc_queue_close(z.q);
	lfipc_object_remove(qt_r, name);
	return atomic_load(&z.bad) ? 1 : 0;
}

Test(queue_stress, hostile_threads_adopt_hand_over_and_clear_exactly)
{
	int rounds = 200 * th_scale();

	for (int round = 0; round < rounds; round++)
		if (hz_round(round, 64, NULL))
			break;
}

/* The same with a second process of consumers (its own token and task
 * entry, also adopted by several threads at once) on each queue. */
Test(queue_stress, hostile_threads_of_two_processes_keep_counts_exact)
{
	int rounds = 60 * th_scale();
	struct hz *cz = mmap(NULL, sizeof(*cz), PROT_READ | PROT_WRITE,
			     MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(cz, MAP_FAILED);
	for (int round = 0; round < rounds; round++)
		if (hz_round(round, 256, cz))
			break;
	munmap(cz, sizeof(*cz));
}

/* ---- threads of one process rescue a dead consumer's messages ------- */

enum { RS_N = 16, RS_DEAD = 8 };

struct rs {
	lfipc_queue *q;
	pthread_barrier_t go;
	_Atomic int seen[RS_N];
	_Atomic int total, bad, why;
	int64_t end_ns;
};

struct rs_arg {
	struct rs *z;
	int kind;
};

struct rs_holder {
	lfipc_queue *q;
	int fd[2];
};

static void rs_take(struct rs *z, const void *m)
{
	long v;

	memcpy(&v, m, sizeof(v));
	if (v < 0 || v >= RS_N) {
		atomic_fetch_add(&z->bad, 1);
		return;
	}
	atomic_fetch_add(&z->seen[v], 1);
	atomic_fetch_add(&z->total, 1);
}

/* kind 0, 1: peek_orphans + release_many; 2: recover; 3: get. */
static void *rs_thread(void *a)
{
	struct rs_arg *s = a;
	struct rs *z = s->z;

	pthread_barrier_wait(&z->go);
	while (atomic_load(&z->total) < RS_N && th_now_ns() < z->end_ns) {
		const void *m[3];
		size_t lens[3];
		long v;
		int rc;

		switch (s->kind) {
		case 0:
		case 1:
			rc = lfipc_queue_peek_orphans(z->q, m, lens, 3);
			for (int i = 0; i < rc; i++)
				rs_take(z, m[i]);
			if (rc > 0 &&
			    lfipc_queue_release_many(z->q, m, (size_t)rc) != rc)
				rc = -EBADE;
			break;
		case 2:
			rc = lfipc_region_recover(qt_r);
			break;
		default:
			rc = lfipc_queue_get(z->q, &v, sizeof(v), NULL,
					     LFIPC_NOWAIT);
			if (rc == 0)
				rs_take(z, &v);
			break;
		}
		if (rc < 0 && rc != -EAGAIN) {
			int zero = 0;

			atomic_fetch_add(&z->bad, 1);
			atomic_compare_exchange_strong(&z->why, &zero, rc);
		}
	}
	return NULL;
}

static int rs_peek_and_wait(void *arg)
{
	struct rs_holder *h = arg;
	const void *m[RS_DEAD];
	size_t lens[RS_DEAD];
	char x = 1;

	if (lfipc_queue_peek_many(h->q, m, lens, RS_DEAD, LFIPC_NOWAIT) !=
		RS_DEAD ||
	    th_write_all(h->fd[1], &x, 1))
		return 1;
	pause();
	return 0;
}

/* A consumer killed holding peeked messages: threads of one process (one
 * token) take its orphans (peek_orphans, get) and make them (recover)
 * at once, so that the queue lock is often held by a sibling: a thread
 * that finds its own token in the lock must neither take it as its own
 * nor as a dead holder's. Every message is delivered exactly once, none
 * stays behind, and no call fails. */
Test(queue_stress, threads_of_one_process_rescue_a_dead_consumers_messages)
{
	int rounds = 40 * th_scale();

	for (int round = 0; round < rounds; round++) {
		enum { T = 4 };
		struct rs z = {.end_ns = th_now_ns() + 20 * INT64_C(1000000000)};
		struct rs_arg a[T];
		struct rs_holder h;
		pthread_t t[T];
		char name[32], x;
		pid_t pid;

		snprintf(name, sizeof(name), "rs%d", round);
		cr_assert_eq(lfipc_queue_create(qt_r, name, RS_N, sizeof(long),
						0, &z.q),
			     0);
		for (long i = 0; i < RS_N; i++)
			cr_assert_eq(lfipc_queue_put(z.q, &i, sizeof(i),
						     LFIPC_NOWAIT),
				     0);
		h.q = z.q;
		cr_assert_eq(pipe(h.fd), 0);
		pid = th_fork(rs_peek_and_wait, &h);
		cr_assert_gt(pid, 0);
		cr_assert_eq(th_read_all(h.fd[0], &x, 1), 0, "child peeked");
		kill(pid, SIGKILL);
		cr_assert_eq(th_reap(pid, QT_REAP_MS), 128 + SIGKILL);
		close(h.fd[0]);
		close(h.fd[1]);
		pthread_barrier_init(&z.go, NULL, T);
		for (int i = 0; i < T; i++) {
			a[i] = (struct rs_arg){&z, i};
			cr_assert_eq(
			    pthread_create(&t[i], NULL, rs_thread, &a[i]), 0);
		}
		for (int i = 0; i < T; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&z.go);
		cr_assert_eq(atomic_load(&z.bad), 0, "round %d: first %d",
			     round, atomic_load(&z.why));
		for (int i = 0; i < RS_N; i++)
			cr_assert_eq(atomic_load(&z.seen[i]), 1,
				     "round %d: message %d seen %d times",
				     round, i, atomic_load(&z.seen[i]));
		cr_assert_eq(lfipc_queue_qsize(z.q), 0, "round %d", round);
		lfipc_queue_close(z.q);
		cr_assert_eq(lfipc_object_remove(qt_r, name), 0);
	}
}
