/* SPDX-License-Identifier: MIT */
/*
 * test_queue_hostile.c - shared memory is untrusted: a buggy or hostile
 * peer writes garbage into a queue's block (through a second mapping and
 * the library's own layout, internal/queue_layout.h). Open refuses a
 * header that makes no sense; a corrupt message length is -EPROTO and the
 * message is dropped; random garbage in any word never makes a call crash,
 * hang or touch memory outside the block.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <lfipc/inspect.h>
#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "common/qtest.h"
#include "common/testhelp.h"

/* Offset of a header field, for the tests that write bytes. */
#define QF(f) offsetof(struct lfipc_qhdr, f)

TestSuite(queue_hostile, .init = qt_setup, .fini = qt_teardown, .timeout = 240);

/* The queue's count of messages dropped for a corrupt length. */
static uint64_t corrupt_count(const lfipc_queue *q)
{
	lfipc_queue_status st = {.struct_size = sizeof(st)};

	cr_assert_eq(lfipc_queue_stat(q, &st), 0);
	return st.corrupt;
}

Test(queue_hostile, a_corrupt_message_length_is_eproto_and_counts_as_done)
{
	lfipc_queue *q;
	struct qpeer qp;
	char buf[8];
	const void *m;
	size_t len;

	cr_assert_eq(
	    lfipc_queue_create(qt_r, "q", 4, 8, LFIPC_QUEUE_JOINABLE, &q), 0);
	cr_assert_eq(lfipc_queue_put(q, "abc", 3, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_put(q, "def", 3, LFIPC_NOWAIT), 0);
	qp_open(qt_r, "q", &qp);
	*qp_len(&qp, 0) = 9;
	*qp_len(&qp, 1) = UINT64_MAX;
	cr_assert_eq(corrupt_count(q), 0);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, &len, LFIPC_NOWAIT), -EPROTO);
	cr_assert_eq(corrupt_count(q), 1, "the get's drop is counted");
	cr_assert_eq(lfipc_queue_peek(q, &m, &len, LFIPC_NOWAIT), -EPROTO);
	cr_assert_eq(corrupt_count(q), 2, "the peek's drop is counted");
	cr_assert_eq(lfipc_queue_qsize(q), 0);
	cr_assert_eq(lfipc_queue_task_done(q), -EINVAL, "nothing was got");
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0, "dropped = done");
	cr_assert_eq(lfipc_queue_put(q, "ok", 2, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_get(q, buf, 8, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(len, 2);
	cr_assert_eq(corrupt_count(q), 2, "a good message is no drop");
	qp_close(&qp);
	lfipc_queue_close(q);
}

Test(queue_hostile, get_many_drops_a_corrupt_message_and_closes_up_over_it)
{
	lfipc_queue *q;
	struct qpeer qp;
	int bufs[8][2];
	size_t lens[8];

	cr_assert_eq(
	    lfipc_queue_create(qt_r, "q", 8, 8, LFIPC_QUEUE_JOINABLE, &q), 0);
	cr_assert_eq(put_ints(q, 0, 4, LFIPC_NOWAIT), 4);
	qp_open(qt_r, "q", &qp);
	*qp_len(&qp, 1) = 99;
	cr_assert_eq(lfipc_queue_get_many(q, bufs, 8, lens, 8, LFIPC_NOWAIT),
		     3);
	cr_assert_eq(bufs[0][0], 0);
	cr_assert_eq(bufs[1][0], 2);
	cr_assert_eq(bufs[2][0], 3);
	cr_assert_eq(corrupt_count(q), 1, "the drop inside a run counts");
	cr_assert_eq(put_ints(q, 4, 5, LFIPC_NOWAIT), 1);
	*qp_len(&qp, 4) = 9;
	cr_assert_eq(lfipc_queue_get_many(q, bufs, 8, lens, 8, LFIPC_NOWAIT),
		     -EPROTO, "only a corrupt message was there");
	cr_assert_eq(corrupt_count(q), 2);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(lfipc_queue_task_done(q), 0);
	cr_assert_eq(lfipc_queue_task_done(q), -EINVAL);
	cr_assert_eq(lfipc_queue_join(q, LFIPC_NOWAIT), 0, "3 got + 2 dropped");
	qp_close(&qp);
	lfipc_queue_close(q);
}

/* peek_many drops corrupt messages among good ones, says nothing of them
 * (they count towards n), and the queue counts each; a plain queue too
 * (not only a JoinableQueue's done). */
Test(queue_hostile, peek_many_drops_corrupt_messages_and_the_queue_counts_them)
{
	lfipc_queue *q;
	struct qpeer qp;
	const void *m[8];
	size_t lens[8];

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 8, 8, 0, &q), 0);
	cr_assert_eq(put_ints(q, 0, 6, LFIPC_NOWAIT), 6);
	qp_open(qt_r, "q", &qp);
	*qp_len(&qp, 1) = 9;
	*qp_len(&qp, 3) = UINT64_MAX;
	cr_assert_eq(lfipc_queue_peek_many(q, m, lens, 5, LFIPC_NOWAIT), 3,
		     "5 claimed, 2 of them dropped");
	cr_assert_eq(*(const int *)m[0], 0);
	cr_assert_eq(*(const int *)m[1], 2);
	cr_assert_eq(*(const int *)m[2], 4);
	cr_assert_eq(corrupt_count(q), 2);
	cr_assert_eq(lfipc_queue_release_many(q, m, 3), 3);
	cr_assert_eq(lfipc_queue_qsize(q), 1, "message 5 is still there");
	cr_assert_eq(corrupt_count(q), 2, "a release is no drop");
	qp_close(&qp);
	lfipc_queue_close(q);
}

/* A put_many killed after claiming a run (positions 2..5) but before moving
 * enq_pos past it (enq_pos is 3: the run's first claim moved it by one). */
Test(queue_hostile, open_refuses_a_queue_header_that_makes_no_sense)
{
	static const struct {
		uint64_t off, val;
		int width;
	} bad[] = {
	    {QF(magic), 0, 8},
	    {QF(version), LFIPC_Q_VERSION - 1, 4},
	    {QF(version), LFIPC_Q_VERSION + 1, 4},
	    {QF(flags), 0x80, 4},
	    {QF(capacity), 0, 8},
	    {QF(capacity), 9, 8}, /* above nslots */
	    {QF(nslots), 0, 8},
	    {QF(nslots), 1, 8},
	    {QF(nslots), 12, 8}, /* not a power of two */
	    {QF(nslots), 16, 8}, /* more than the block holds */
	    {QF(nslots), UINT64_C(1) << 62, 8},
	    {QF(msg_size), 49, 8}, /* no longer fits the stride */
	    {QF(msg_size), UINT64_MAX, 8},
	    {QF(stride), 0, 8},
	    {QF(stride), 65, 8},
	    {QF(stride), 128, 8}, /* 8 slots no longer fit */
	    {QF(stride), UINT64_MAX - 63, 8},
	    {QF(slots_off), 0, 8},
	    {QF(slots_off), UINT64_MAX, 8},
	    {QF(tasks_off), sizeof(struct lfipc_qhdr), 8}, /* not joinable */
	};
	lfipc_queue *q, *q2;
	struct qpeer qp;
	uint8_t save[sizeof(struct lfipc_qhdr)];

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 8, 48, 0, &q), 0);
	qp_open(qt_r, "q", &qp);
	memcpy(save, qp.q, sizeof(struct lfipc_qhdr));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (bad[i].width == 8)
			memcpy(qp.q + bad[i].off, &bad[i].val, 8);
		else
			*(uint32_t *)(qp.q + bad[i].off) = (uint32_t)bad[i].val;
		q2 = NULL;
		cr_assert_eq(lfipc_queue_open(qt_r, "q", &q2), -EPROTO,
			     "field at %llu = %llu",
			     (unsigned long long)bad[i].off,
			     (unsigned long long)bad[i].val);
		cr_assert_null(q2);
		memcpy(qp.q, save, sizeof(struct lfipc_qhdr));
		cr_assert_eq(lfipc_queue_open(qt_r, "q", &q2), 0);
		lfipc_queue_close(q2);
	}
	/* a handle keeps the geometry it validated at open */
	*(uint64_t *)(qp.q + QF(nslots)) = UINT64_C(1) << 40;
	cr_assert_eq(lfipc_queue_put(q, "a", 1, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_capacity(q), 8);
	memcpy(qp.q, save, sizeof(struct lfipc_qhdr));
	qp_close(&qp);
	lfipc_queue_close(q);
}

/*
 * Random garbage in every shared word of a queue (geometry, positions,
 * counters, event words, slot words, lengths), followed by every
 * operation: errors are allowed; a crash, a hang, or an access outside the
 * queue's block is not. The pages of the region past the block are made
 * inaccessible in the library's own mapping, so a stray access faults
 * (and ASan checks the process's own memory).
 */
static uint64_t near(uint64_t v, uint64_t n, uint64_t *seed)
{
	uint64_t x = th_rand(seed);

	switch (x % 7) {
	case 0:
		return th_rand(seed);
	case 1:
		return v + (x >> 8) % 40 - 20;
	case 2:
		return v + n * ((x >> 8) % 5) - 2 * n;
	case 3:
		return v + (UINT64_C(1) << 32);
	case 4:
		return UINT64_MAX - (x >> 8) % 64;
	case 5:
		return (UINT64_C(1) << 63) + (x >> 8) % 64;
	default:
		return (x >> 8) % 64;
	}
}

static uint32_t some_token(uint32_t self, uint64_t *seed)
{
	switch (th_rand(seed) % 4) {
	case 0:
		return 0;
	case 1:
		return QP_DEAD_TOKEN;
	case 2:
		return self;
	default:
		return (uint32_t)th_rand(seed) & 0x3fffffff;
	}
}

static bool in_block(const void *p, const uint8_t *lfbase,
		     const struct qpeer *qp)
{
	const uint8_t *b = (const uint8_t *)p;

	return b >= lfbase + qp->off && b < lfbase + qp->off + qp->size;
}

/* A single role's word changed by the corruption (a byte of our own
 * holder word, say: our token with another thread's tag) makes the role
 * another live holder's: -EBUSY, an error like the others. */
static bool busy(bool single, int rc)
{
	return single && rc == -EBUSY;
}

static void random_corruption(unsigned flags, size_t capacity)
{
	lfipc_region *rg;
	lfipc_queue *qh;
	struct qpeer qp;
	uint8_t *snap, *lfbase, *gstart, *gend;
	void *slot;
	char buf[1024], bufs[4][1024];
	size_t lens[4], len;
	uint64_t seed = 0x0badc0de, n = 8;
	uint32_t self;
	int iters = 3000 * th_scale();
	long page = sysconf(_SC_PAGESIZE);
	bool single =
	    flags & (LFIPC_QUEUE_SINGLE_PRODUCER | LFIPC_QUEUE_SINGLE_CONSUMER);

	cr_assert_eq(lfipc_region_create(NULL, (size_t)1 << 20, 0, &rg), 0);
	cr_assert_eq(lfipc_queue_create(rg, "q", capacity, 48, flags, &qh), 0);
	qp_open(rg, "q", &qp);
	/* where the library mapped the block: slot 0's payload */
	cr_assert_eq(lfipc_queue_reserve(qh, &slot, LFIPC_NOWAIT), 0);
	lfbase = (uint8_t *)slot - (qp.off + sizeof(struct lfipc_qhdr) + 16);
	self = (uint32_t)(atomic_load(qp_word(&qp, 0)) >> 32) & 0x3fffffff;
	cr_assert_neq(self, 0);
	cr_assert_eq(lfipc_queue_commit(qh, slot, 3), 0);
	/* a snapshot with messages in it and the positions past lap 0 */
	for (int i = 0; i < 9; i++) {
		cr_assert_eq(lfipc_queue_put(qh, &i, 4, LFIPC_NOWAIT), 0,
			     "put %d", i);
		if (i % 3 != 2)
			cr_assert_eq(lfipc_queue_get(qh, buf, sizeof(buf), &len,
						     LFIPC_NOWAIT),
				     0);
	}
	snap = malloc(qp.size);
	cr_assert_not_null(snap);
	memcpy(snap, qp.q, qp.size);
	/* guard: everything after the block's last page */
	gstart =
	    (uint8_t *)(((uintptr_t)(lfbase + qp.off + qp.size) + page - 1) &
			~(uintptr_t)(page - 1));
	gend = lfbase + qp.len;
	if (gend > gstart)
		cr_assert_eq(
		    mprotect(gstart, (size_t)(gend - gstart), PROT_NONE), 0);

	for (int it = 0; it < iters; it++) {
		int kind = (int)(th_rand(&seed) % 7);
		lfipc_queue *q2 = NULL, *q;
		int64_t t0, c;
		const void *m;
		const void *msgs[3] = {"x", "yy", "zzz"};
		size_t mlens[3] = {1, 2, 3};
		int rc;

		memcpy(qp.q, snap, qp.size);
		switch (kind) {
		case 0: /* random bytes anywhere in the block */
			for (int k = 0; k < 8; k++)
				qp.q[th_rand(&seed) % qp.size] =
				    (uint8_t)th_rand(&seed);
			break;
		case 1: /* positions */
			if (th_rand(&seed) % 2)
				atomic_store(&qp.h->enq_pos,
					     near(atomic_load(&qp.h->enq_pos),
						  n, &seed));
			if (th_rand(&seed) % 2)
				atomic_store(&qp.h->deq_pos,
					     near(atomic_load(&qp.h->deq_pos),
						  n, &seed));
			break;
		case 2: /* slot words: garbage, or plausible states with
			 * live, dead or made-up claimants */
			for (int k = 0; k < 3; k++) {
				_Atomic uint64_t *sw =
				    qp_word(&qp, th_rand(&seed) % n);
				uint32_t seq = (uint32_t)near(
				    (uint32_t)atomic_load(sw), n, &seed);
				uint32_t cl =
				    ((uint32_t)th_rand(&seed) & LFIPC_Q_CL_WR) |
				    some_token(self, &seed);

				atomic_store(sw, th_rand(&seed) % 4
						     ? qp_mkword(seq, cl)
						     : th_rand(&seed));
			}
			break;
		case 3: /* message lengths */
			for (int k = 0; k < 3; k++)
				*qp_len(&qp, th_rand(&seed) % n) =
				    near(3, 48, &seed);
			break;
		case 4: /* counters and event words (never our own token in
			 * the lock: that would be a live holder) */
			atomic_store(&qp.h->orphans,
				     (uint32_t)near(0, n, &seed));
			atomic_store(&qp.h->closed,
				     (uint32_t)(th_rand(&seed) % 3 == 0));
			atomic_store(&qp.h->lock,
				     th_rand(&seed) % 2
					 ? QP_DEAD_TOKEN
					 : (uint32_t)th_rand(&seed));
			atomic_store(&qp.h->done, near(3, n, &seed));
			atomic_store(&qp.h->hole_hi, near(9, n, &seed));
			atomic_store(&qp.h->sweep, th_rand(&seed));
			atomic_store(&qp.h->orphan_at, th_rand(&seed));
			atomic_store(&qp.h->abandoned, near(0, n, &seed));
			atomic_store(&qp.h->abandoned_seen, near(0, n, &seed));
			/* the count of clears and the clear record, which a
			 * take-over of the (dead) lock reads and acts on */
			atomic_store(&qp.h->cleared, near(0, n, &seed));
			atomic_store(&qp.h->clr_d,
				     near(atomic_load(&qp.h->deq_pos), n,
					  &seed));
			atomic_store(&qp.h->clr_e,
				     near(atomic_load(&qp.h->deq_pos), n,
					  &seed));
			atomic_store(&qp.h->clr_cb, th_rand(&seed) % 2
							? LFIPC_Q_NOREC
							: near(0, n, &seed));
			/* wait queues: a forged count costs wake-ups and
			 * poll-table scans, never safety */
			atomic_store(&qp.h->not_empty.seq,
				     (uint32_t)th_rand(&seed));
			atomic_store(&qp.h->not_full.waiters,
				     (uint64_t)th_rand(&seed) << 20);
			atomic_store(&qp.h->joined.waiters,
				     (uint64_t)th_rand(&seed) << 36);
			for (int k = 0; k < 3; k++) {
				struct lfipc_qtask *t =
				    qp_task(&qp, (uint32_t)(th_rand(&seed) %
							    LFIPC_PROC_SLOTS));

				atomic_store(&t->got, near(6, n, &seed));
				atomic_store(&t->settled, near(3, n, &seed));
				atomic_store(&t->owner,
					     some_token(self, &seed));
			}
			break;
		case 5: /* geometry */
			for (int k = 0; k < 2; k++) {
				static const uint64_t f[] = {
				    QF(capacity), QF(nslots),	 QF(msg_size),
				    QF(stride),	  QF(slots_off), QF(tasks_off)};
				uint64_t o = f[th_rand(&seed) % 6];

				*(uint64_t *)(qp.q + o) =
				    near(*(uint64_t *)(qp.q + o), 64, &seed);
			}
			if (th_rand(&seed) % 4 == 0)
				*(uint32_t *)(qp.q + QF(flags)) =
				    (uint32_t)th_rand(&seed);
			break;
		default: /* everything at once */
			for (uint64_t k = QF(enq_pos); k + 8 <= qp.size; k += 8)
				if (th_rand(&seed) % 3 == 0)
					*(uint64_t *)(qp.q + k) =
					    th_rand(&seed);
			break;
		}

		t0 = th_now_ns();
		rc = lfipc_queue_open(rg, "q", &q2);
		cr_assert(rc == 0 || rc == -EPROTO, "open %d", rc);
		q = rc == 0 ? q2 : qh;
		cr_assert_leq(lfipc_queue_msg_size(q), sizeof(buf));

		rc = lfipc_queue_put(q, "abc", 3, LFIPC_NOWAIT);
		cr_assert(rc == 0 || rc == -EAGAIN || rc == -EPROTO ||
			      busy(single, rc) || rc == -EPIPE ||
			      rc == -EMSGSIZE,
			  "it %d put %d", it, rc);
		rc = lfipc_queue_get(q, buf, sizeof(buf), &len, LFIPC_NOWAIT);
		cr_assert(rc == 0 || rc == -EAGAIN || rc == -EPROTO ||
			      busy(single, rc) || rc == -EPIPE,
			  "it %d get %d", it, rc);
		if (rc == 0)
			cr_assert_leq(len, lfipc_queue_msg_size(q));
		rc = lfipc_queue_peek(q, &m, &len, LFIPC_NOWAIT);
		cr_assert(rc == 0 || rc == -EAGAIN || rc == -EPROTO ||
			      busy(single, rc) || rc == -EPIPE,
			  "it %d peek %d", it, rc);
		if (rc == 0) {
			cr_assert(in_block(m, lfbase, &qp));
			cr_assert_leq(len, lfipc_queue_msg_size(q));
			cr_assert_eq(th_sum(m, len), th_sum(m, len));
			cr_assert_eq(lfipc_queue_release(q, m), 0);
		}
		rc = lfipc_queue_peek_orphans(q, &m, &len, 1);
		cr_assert(rc == 1 || rc == -EAGAIN || rc == -EPROTO ||
			      busy(single, rc),
			  "it %d peek_orphans %d", it, rc);
		if (rc == 1) {
			cr_assert(in_block(m, lfbase, &qp));
			cr_assert_leq(len, lfipc_queue_msg_size(q));
			cr_assert_eq(lfipc_queue_release(q, m), 0);
		}
		rc = lfipc_queue_reserve(q, &slot, LFIPC_NOWAIT);
		cr_assert(rc == 0 || rc == -EAGAIN || rc == -EPROTO ||
			      busy(single, rc) || rc == -EPIPE,
			  "it %d reserve %d", it, rc);
		if (rc == 0) {
			cr_assert(in_block(slot, lfbase, &qp));
			memset(slot, 0x5a, lfipc_queue_msg_size(q));
			rc = lfipc_queue_commit(q, slot, 0);
			cr_assert(rc == 0 || rc == -EPROTO, "commit %d", rc);
		}
		rc = lfipc_queue_put_many(q, msgs, mlens, 3, LFIPC_NOWAIT);
		cr_assert(rc > 0 || rc == -EAGAIN || rc == -EPROTO ||
			      busy(single, rc) || rc == -EPIPE ||
			      rc == -EMSGSIZE,
			  "it %d put_many %d", it, rc);
		rc = lfipc_queue_get_many(q, bufs, sizeof(bufs[0]), lens, 4,
					  LFIPC_NOWAIT);
		cr_assert(rc > 0 || rc == -EAGAIN || rc == -EPROTO ||
			      busy(single, rc) || rc == -EPIPE,
			  "it %d get_many %d", it, rc);
		for (int k = 0; k < rc; k++)
			cr_assert_leq(lens[k], lfipc_queue_msg_size(q));
		c = lfipc_queue_clear(q);
		/* -EBUSY: a forged claim of the head by our own token
		 * looks like our consumer stopped mid-get (the clear waits
		 * a second for it, CLEAR_WAIT_NS) */
		cr_assert((c >= 0 && c <= (int64_t)n + 1) || c == -EPROTO ||
			      (single && c == -EBUSY),
			  "it %d clear %lld", it, (long long)c);
		cr_assert_leq(lfipc_queue_qsize(q), lfipc_queue_capacity(q));
		(void)lfipc_queue_empty(q);
		(void)lfipc_queue_full(q);
		rc = lfipc_queue_task_done(q);
		cr_assert(rc == 0 || rc == -EINVAL);
		rc = lfipc_queue_join(q, LFIPC_NOWAIT);
		cr_assert(rc == 0 || rc == -EAGAIN || rc == -EOWNERDEAD);
		if (it % 8 == 0) {
			/* the sleeping paths, with their dead-peer scans */
			rc =
			    lfipc_queue_get(q, buf, sizeof(buf), &len, 2000000);
			cr_assert(rc == 0 || rc == -ETIMEDOUT ||
				      rc == -EPROTO || busy(single, rc) ||
				      rc == -EPIPE,
				  "it %d timed get %d", it, rc);
			/* a put's waiting path too (a single producer's
			 * run wait, sp_await_run()) */
			rc = lfipc_queue_put(q, "abc", 3, 2000000);
			cr_assert(rc == 0 || rc == -ETIMEDOUT ||
				      rc == -EPROTO || busy(single, rc) ||
				      rc == -EPIPE || rc == -EMSGSIZE,
				  "it %d timed put %d", it, rc);
			rc = lfipc_queue_join(q, 1000000);
			cr_assert(rc == 0 || rc == -ETIMEDOUT ||
				  rc == -EOWNERDEAD);
			rc = lfipc_region_recover(rg);
			cr_assert(rc >= 0 || rc == -EPROTO, "recover %d", rc);
		}
		cr_assert_lt(th_now_ns() - t0, single ? 3000000000 : 1000000000,
			     "iteration %d kind %d took too long", it, kind);
		lfipc_queue_close(q2);
	}
	if (gend > gstart)
		cr_assert_eq(mprotect(gstart, (size_t)(gend - gstart),
				      PROT_READ | PROT_WRITE),
			     0);
	free(snap);
	qp_close(&qp);
	lfipc_queue_close(qh);
	lfipc_region_close(rg);
}

Test(queue_hostile, random_corruption_of_shared_words_never_crashes_or_hangs,
     .timeout = 240)
{
	random_corruption(LFIPC_QUEUE_JOINABLE, 5);
}

/* The same with a single producer and a single consumer, whose paths
 * differ (sp_put(), the run wait sp_await_run(), sc_claim_head()); a
 * capacity equal to the slot count, or the run wait does not apply. */
Test(queue_hostile, random_corruption_of_an_spsc_queue_never_crashes_or_hangs,
     .timeout = 240)
{
	random_corruption(LFIPC_QUEUE_JOINABLE | LFIPC_QUEUE_SINGLE_PRODUCER |
			      LFIPC_QUEUE_SINGLE_CONSUMER,
			  8);
}

/* ---- corrupt lengths scribbled while get_many runs --------------------- */

#define SC_N 20000 /* messages put */

static lfipc_queue *sc_q;
static _Atomic int sc_stop;
static _Atomic uint64_t sc_good, sc_bad_task_done;
static _Atomic uint8_t sc_seen[SC_N];

static void *sc_consumer(void *arg)
{
	uint64_t rng = (uintptr_t)arg, b[8];
	size_t lens[8];

	for (;;) {
		int n = 1 + (int)(th_rand(&rng) % 8);
		int k = lfipc_queue_get_many(sc_q, b, sizeof(b[0]), lens,
					     (size_t)n, 100000000);

		if (k == -EPIPE)
			return NULL;
		if (k <= 0)
			continue; /* -ETIMEDOUT, -EPROTO: only corrupt ones */
		for (int i = 0; i < k; i++) {
			if (lens[i] != 8 || b[i] >= SC_N)
				return (void *)1;
			atomic_fetch_add(&sc_seen[b[i]], 1);
			if (lfipc_queue_task_done(sc_q))
				atomic_fetch_add(&sc_bad_task_done, 1);
		}
		atomic_fetch_add(&sc_good, (uint64_t)k);
	}
}

static void *sc_scribbler(void *arg)
{
	struct qpeer *qp = arg;
	uint64_t rng = 5;

	while (!atomic_load(&sc_stop)) {
		uint64_t r = th_rand(&rng);

		__atomic_store_n(qp_len(qp, r % 16), r & 1 ? 9 : UINT64_MAX,
				 __ATOMIC_RELAXED);
		usleep(20);
	}
	return NULL;
}

/* Lengths past msg_size scribbled into random slots of a JoinableQueue
 * while two threads get_many from it (a batch is copied, then freed,
 * then counted): no crash, every message delivered once or dropped and
 * counted as done (delivered + dropped == put), task_done never -EINVAL
 * for a message delivered, and join finds nothing unfinished. */
Test(queue_hostile, corrupt_lengths_scribbled_during_get_many_count_as_done)
{
	struct qpeer qp;
	pthread_t c[2], s;
	void *rv;
	uint64_t v;
	lfipc_queue_status st = {.struct_size = sizeof(st)};

	cr_assert_eq(lfipc_queue_create(qt_r, "sc", 16, 8,
					LFIPC_QUEUE_JOINABLE, &sc_q),
		     0);
	qp_open(qt_r, "sc", &qp);
	for (uintptr_t i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&c[i], NULL, sc_consumer,
					    (void *)(i + 1)),
			     0);
	cr_assert_eq(pthread_create(&s, NULL, sc_scribbler, &qp), 0);
	for (v = 0; v < SC_N; v++)
		cr_assert_eq(lfipc_queue_put(sc_q, &v, 8, 10000000000), 0);
	atomic_store(&sc_stop, 1);
	pthread_join(s, NULL);
	for (int i = 0; i < 10000 && lfipc_queue_qsize(sc_q); i++)
		usleep(1000);
	cr_assert_eq(lfipc_queue_qsize(sc_q), 0);
	cr_assert_eq(lfipc_queue_shutdown(sc_q), 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(c[i], &rv);
		cr_assert_null(rv, "a malformed message delivered");
	}
	cr_assert_eq(lfipc_queue_stat(sc_q, &st), 0);
	cr_assert_eq(atomic_load(&sc_good) + st.corrupt, (uint64_t)SC_N,
		     "%llu got + %llu dropped",
		     (unsigned long long)atomic_load(&sc_good),
		     (unsigned long long)st.corrupt);
	for (v = 0; v < SC_N; v++)
		cr_assert_leq(atomic_load(&sc_seen[v]), 1u);
	cr_assert_eq(atomic_load(&sc_bad_task_done), 0u);
	cr_assert_eq(lfipc_queue_task_done(sc_q), -EINVAL);
	cr_assert_eq(lfipc_queue_join(sc_q, LFIPC_NOWAIT), 0);
	cr_log_info("scribbled get_many: %llu dropped",
		    (unsigned long long)st.corrupt);
	qp_close(&qp);
	lfipc_queue_close(sc_q);
}
