/* SPDX-License-Identifier: MIT */
/*
 * test_queue_bulk_stress.c - bulk runs (put_many, get_many, peek_many +
 * release_many) with messages of every length up to 64, 256 and 496
 * bytes, the slot strides (128, 320, 512) whose runs prefetch their slots
 * ahead of their claims (queue_bulk.c, run_prefetch()), through a ring of
 * 16 slots that wraps every few runs and keeps the runs cut short by a
 * full or empty queue, and by clears. Every message carries its producer,
 * sequence number, length and a checksum of all its bytes: it is got
 * exactly once, whole, in order per producer, or counted as cleared.
 * The scale comes from LFIPC_STRESS_SCALE.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "common/qtest.h"
#include "common/testhelp.h"

TestSuite(queue_bulk_stress, .init = qt_setup, .fini = qt_teardown,
	  .timeout = 300);

#define NPROD 4
#define NCONS 4
#define NPER_MAX (1 << 16)
#define BURST 32
#define MS_MAX 496

/* The first bytes of every message; the rest, up to len, is th_fill()'s. */
struct hdr {
	uint32_t pid, seq, len, zero;
	uint64_t sum;
};

struct bshared {
	_Atomic uint64_t received, cleared;
	_Atomic uint32_t stop, bad;
	uint32_t last[NCONS][NPROD]; /* per consumer, per producer: seq + 1 */
	_Atomic uint8_t seen[NPROD][NPER_MAX];
};

static struct bshared *bs;
static lfipc_queue *bq;
static size_t ms; /* the queue's message size */
static int nper;
static bool joinable;

static uint64_t bsum(const unsigned char *m, size_t len)
{
	const struct hdr *h = (const void *)m;

	return th_sum(m + sizeof(*h), len - sizeof(*h)) ^
	       ((uint64_t)h->pid << 40) ^ ((uint64_t)h->len << 20) ^ h->seq;
}

static size_t mk(unsigned char *m, uint32_t pid, uint32_t seq, uint64_t *rng)
{
	struct hdr h = {pid, seq, 0, 0, 0};
	uint64_t r = th_rand(rng);
	/* every length from the header's to ms, ms itself one time in 4 */
	size_t len =
	    r % 4 == 0 ? ms : sizeof(h) + (r >> 8) % (ms - sizeof(h) + 1);

	h.len = (uint32_t)len;
	memcpy(m, &h, sizeof(h));
	th_fill(m + sizeof(h), len - sizeof(h), (uint64_t)pid << 32 | seq);
	h.sum = bsum(m, len);
	memcpy(m, &h, sizeof(h));
	return len;
}

static int bproducer(void *arg)
{
	uint32_t id = (uint32_t)(uintptr_t)arg;
	static _Thread_local unsigned char m[BURST][MS_MAX];
	const void *mp[BURST];
	size_t lens[BURST];
	uint64_t rng = id * 7919 + 3;

	for (int i = 0; i < nper;) {
		int b = 1 + (int)(th_rand(&rng) % BURST), rc;

		if (b > nper - i)
			b = nper - i;
		for (int j = 0; j < b; j++) {
			lens[j] = mk(m[j], id, (uint32_t)(i + j), &rng);
			mp[j] = m[j];
		}
		rc = lfipc_queue_put_many(bq, mp, lens, (size_t)b,
					  LFIPC_FOREVER);
		if (rc < 1 || rc > b)
			return 1;
		i += rc;
	}
	return 0;
}

/* One message got by consumer cid, read where it lies (a copy, or the
 * slot itself for a peek). */
static void bconsumed(uint32_t cid, const unsigned char *m, size_t len)
{
	struct hdr h;

	if (len < sizeof(h) || len > ms) {
		atomic_fetch_add(&bs->bad, 1);
		return;
	}
	memcpy(&h, m, sizeof(h));
	if (h.len != len || h.pid >= NPROD || h.seq >= (uint32_t)nper ||
	    h.sum != bsum(m, len) || h.seq < bs->last[cid][h.pid] ||
	    atomic_fetch_add(&bs->seen[h.pid][h.seq], 1) != 0) {
		atomic_fetch_add(&bs->bad, 1);
		return;
	}
	bs->last[cid][h.pid] = h.seq + 1;
	atomic_fetch_add(&bs->received, 1);
}

/* get_many and peek_many + release_many of 1..BURST, at random. */
static int bconsumer(void *arg)
{
	uint32_t cid = (uint32_t)(uintptr_t)arg;
	static _Thread_local unsigned char m[BURST][MS_MAX];
	const void *pm[BURST];
	size_t len[BURST];
	uint64_t rng = cid * 104729 + 11;

	for (;;) {
		size_t want = 1 + th_rand(&rng) % BURST;
		bool peek = th_rand(&rng) & 1;
		int rc =
		    peek ? lfipc_queue_peek_many(bq, pm, len, want, 20000000)
			 : lfipc_queue_get_many(bq, m, MS_MAX, len, want,
						20000000);

		if (rc == -ETIMEDOUT || rc == -EAGAIN) {
			if (atomic_load(&bs->stop))
				return 0;
			continue;
		}
		if (rc == -EPIPE)
			return 0;
		if (rc < 1 || (size_t)rc > want) {
			atomic_fetch_add(&bs->bad, 1);
			continue;
		}
		for (int j = 0; j < rc; j++)
			bconsumed(cid, peek ? pm[j] : m[j], len[j]);
		if (peek && lfipc_queue_release_many(bq, pm, (size_t)rc) != rc)
			atomic_fetch_add(&bs->bad, 1);
		/* a peeked message is got at its release */
		for (int j = 0; joinable && j < rc; j++)
			if (lfipc_queue_task_done(bq) != 0)
				atomic_fetch_add(&bs->bad, 1);
	}
}

static int bclearer(void *arg)
{
	(void)arg;
	while (!atomic_load(&bs->stop)) {
		int64_t n = lfipc_queue_clear(bq);

		if (n < 0)
			atomic_fetch_add(&bs->bad, 1);
		else
			atomic_fetch_add(&bs->cleared, (uint64_t)n);
		usleep(300);
	}
	return 0;
}

static void bcheck(int np, bool with_clear)
{
	cr_assert_eq(atomic_load(&bs->bad), 0);
	cr_assert_eq(atomic_load(&bs->received) + atomic_load(&bs->cleared),
		     (uint64_t)np * (uint64_t)nper, "%llu got, %llu cleared",
		     (unsigned long long)atomic_load(&bs->received),
		     (unsigned long long)atomic_load(&bs->cleared));
	if (!with_clear)
		for (int p = 0; p < np; p++)
			for (int i = 0; i < nper; i++)
				cr_assert_eq(bs->seen[p][i], 1,
					     "producer %d seq %d", p, i);
	if (joinable)
		cr_assert_eq(lfipc_queue_join(bq, LFIPC_NOWAIT), 0,
			     "got + cleared == put, exactly");
	cr_assert_eq(lfipc_queue_qsize(bq), 0);
}

static void bstart(size_t msg_size)
{
	bs = mmap(NULL, sizeof(*bs), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(bs, MAP_FAILED);
	ms = msg_size;
	nper = 10000 * th_scale();
	if (nper > NPER_MAX)
		nper = NPER_MAX;
	cr_assert_eq(lfipc_queue_create(qt_r, "b", 16, ms,
					joinable ? LFIPC_QUEUE_JOINABLE : 0,
					&bq),
		     0);
}

static void bend(void)
{
	lfipc_queue_close(bq);
	munmap(bs, sizeof(*bs));
}

static void run_procs(size_t msg_size, int np, int nc, bool with_clear)
{
	pid_t prod[NPROD], cons[NCONS], clr = 0;

	bstart(msg_size);
	for (int i = 0; i < nc; i++)
		cons[i] = th_fork(bconsumer, (void *)(uintptr_t)i);
	for (int i = 0; i < np; i++)
		prod[i] = th_fork(bproducer, (void *)(uintptr_t)i);
	if (with_clear)
		clr = th_fork(bclearer, NULL);
	cr_assert_eq(th_reap_all(prod, np, QT_REAP_MS), 0);
	atomic_store(&bs->stop, 1);
	if (with_clear)
		cr_assert_eq(th_reap(clr, QT_REAP_MS), 0);
	lfipc_queue_shutdown(bq);
	cr_assert_eq(th_reap_all(cons, nc, QT_REAP_MS), 0);
	bcheck(np, with_clear);
	bend();
}

struct btarg {
	int id, rc;
};

static void *tp(void *a)
{
	struct btarg *t = a;

	t->rc = bproducer((void *)(uintptr_t)t->id);
	return NULL;
}

static void *tc(void *a)
{
	struct btarg *t = a;

	t->rc = bconsumer((void *)(uintptr_t)t->id);
	return NULL;
}

static void *tclr(void *a)
{
	struct btarg *t = a;

	t->rc = bclearer(NULL);
	return NULL;
}

static void run_threads(size_t msg_size, int np, int nc, bool with_clear)
{
	pthread_t pt[NPROD], ct[NCONS], clt;
	struct btarg pa[NPROD], ca[NCONS], cla = {0, 0};

	bstart(msg_size);
	for (int i = 0; i < nc; i++) {
		ca[i] = (struct btarg){i, 0};
		cr_assert_eq(pthread_create(&ct[i], NULL, tc, &ca[i]), 0);
	}
	for (int i = 0; i < np; i++) {
		pa[i] = (struct btarg){i, 0};
		cr_assert_eq(pthread_create(&pt[i], NULL, tp, &pa[i]), 0);
	}
	if (with_clear)
		cr_assert_eq(pthread_create(&clt, NULL, tclr, &cla), 0);
	for (int i = 0; i < np; i++) {
		pthread_join(pt[i], NULL);
		cr_assert_eq(pa[i].rc, 0);
	}
	atomic_store(&bs->stop, 1);
	if (with_clear)
		pthread_join(clt, NULL);
	lfipc_queue_shutdown(bq);
	for (int i = 0; i < nc; i++) {
		pthread_join(ct[i], NULL);
		cr_assert_eq(ca[i].rc, 0);
	}
	bcheck(np, with_clear);
	bend();
}

Test(queue_bulk_stress, bulk_runs_of_64_byte_messages_deliver_each_once_whole)
{
	run_procs(64, 2, 2, false);
}

Test(queue_bulk_stress, bulk_runs_of_256_byte_messages_deliver_each_once_whole)
{
	run_procs(256, 2, 2, false);
}

Test(queue_bulk_stress, bulk_runs_of_496_byte_messages_deliver_each_once_whole)
{
	run_procs(496, 2, 2, false);
}

Test(queue_bulk_stress, bulk_runs_of_256_byte_messages_with_clears_lose_none)
{
	run_procs(256, 2, 2, true);
}

Test(queue_bulk_stress, bulk_threads_of_64_byte_messages_keep_joinable_counts)
{
	joinable = true;
	run_threads(64, 3, 3, true);
}

Test(queue_bulk_stress, bulk_threads_of_256_byte_messages_deliver_each_once)
{
	run_threads(256, 3, 3, false);
}
