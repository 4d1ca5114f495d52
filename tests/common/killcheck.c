/* SPDX-License-Identifier: MIT */
/* killcheck.c - the kill-and-check harness of the queue's crash tests. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/killcheck.h"
#include "common/testhelp.h"

struct kc_ledger *kc;
lfipc_queue *kc_q;

/* Workers give up after this long blocked: the parent then sees them fail. */
#define KC_WAIT_NS 2000000000

void kc_init(void)
{
	kc = mmap(NULL, sizeof(*kc), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(kc, MAP_FAILED);
}

void kc_fini(void)
{
	munmap(kc, sizeof(*kc));
	kc = NULL;
}

static void kc_msg(uint32_t m[4], uint32_t p, uint32_t i)
{
	m[0] = p;
	m[1] = i;
	m[2] = p * 7919u + i;
	m[3] = 0;
}

int kc_producer(void *arg)
{
	uint32_t id = (uint32_t)(uintptr_t)arg;

	for (uint32_t i = 0; i < KC_MAX; i++) {
		uint32_t m[4];
		int rc;

		kc_msg(m, id, i);
		rc = lfipc_queue_put(kc_q, m, sizeof(m), KC_WAIT_NS);
		if (rc == -EPIPE)
			return 0;
		if (rc) /* the exit status names the error: 10 + errno */
			return rc < 0 && rc > -100 ? 10 - rc : 1;
		atomic_store(&kc->acked[id], i + 1);
	}
	return 0;
}

int kc_bulk_producer(void *arg)
{
	uint32_t id = (uint32_t)(uintptr_t)arg;
	uint32_t m[KC_B][4];
	const void *mp[KC_B];
	size_t lens[KC_B];
	uint64_t rng = id * 31 + 7;

	for (uint32_t i = 0; i < KC_MAX;) {
		uint32_t b = 1 + (uint32_t)(th_rand(&rng) % KC_B);
		int rc;

		if (b > KC_MAX - i)
			b = KC_MAX - i;
		for (uint32_t j = 0; j < b; j++) {
			kc_msg(m[j], id, i + j);
			mp[j] = m[j];
			lens[j] = sizeof(m[j]);
		}
		rc = lfipc_queue_put_many(kc_q, mp, lens, b, KC_WAIT_NS);
		if (rc == -EPIPE)
			return 0;
		if (rc < 0 && rc > -100)
			return 10 - rc; /* the exit status names the error */
		if (rc < 1 || (uint32_t)rc > b)
			return 1;
		i += (uint32_t)rc;
		atomic_store(&kc->acked[id], i);
	}
	return 0;
}

void kc_record(int cid, const void *mv, size_t len)
{
	const uint32_t *m = mv;

	if (len != 16 || m[0] >= KC_P || m[1] >= KC_MAX ||
	    m[2] != m[0] * 7919u + m[1]) {
		atomic_fetch_add(&kc->bad, 1);
		return;
	}
	if (cid >= 0)
		atomic_store(&kc->inflight[cid], (m[0] << 16 | m[1]) + 1);
	atomic_fetch_add(&kc->seen[m[0]][m[1]], 1);
}

int kc_consumer(void *arg)
{
	int cid = (int)(uintptr_t)arg;
	const void *msg;
	size_t len;

	for (;;) {
		int rc = lfipc_queue_peek(kc_q, &msg, &len, KC_WAIT_NS);

		if (rc == -EPIPE)
			return 0;
		if (rc)
			return 1;
		kc_record(cid, msg, len);
		if (lfipc_queue_release(kc_q, msg))
			return 2;
		atomic_store(&kc->inflight[cid], 0);
	}
}

int kc_bulk_consumer(void *arg)
{
	int cid = (int)(uintptr_t)arg;
	uint64_t rng = (uint64_t)cid * 17 + 3;
	size_t lens[KC_B];

	for (;;) {
		size_t n = 1 + th_rand(&rng) % KC_B;
		int rc;

		memset(kc->cbuf[cid], 0xff, sizeof(kc->cbuf[cid]));
		rc = lfipc_queue_get_many(kc_q, kc->cbuf[cid],
					  sizeof(kc->cbuf[cid][0]), lens, n,
					  KC_WAIT_NS);
		if (rc == -EPIPE)
			return 0;
		if (rc < 1 || (size_t)rc > n)
			return 1;
		for (int j = 0; j < rc; j++)
			kc_record(-1, kc->cbuf[cid][j], lens[j]);
	}
}

int kc_clearer(void *arg)
{
	(void)arg;
	for (;;)
		if (lfipc_queue_clear(kc_q) < 0)
			return 1;
}

void kc_start(struct kc_round *rd, int (*prod)(void *), int (*cons)(void *))
{
	memset(kc, 0, sizeof(*kc));
	memset(rd, 0, sizeof(*rd));
	for (int i = 0; i < KC_C; i++) {
		rd->cons[i] = th_fork(cons, (void *)(uintptr_t)i);
		cr_assert_gt(rd->cons[i], 0);
	}
	for (int i = 0; i < KC_P; i++) {
		rd->prod[i] = th_fork(prod, (void *)(uintptr_t)i);
		cr_assert_gt(rd->prod[i], 0);
	}
}

void kc_kill(struct kc_round *rd, uint64_t *rng, bool cons_too)
{
	int kp = (int)(th_rand(rng) % KC_P);
	int kc_i = (int)(th_rand(rng) % KC_C);

	usleep((useconds_t)(th_rand(rng) % 3000));
	kill(rd->prod[kp], SIGKILL);
	rd->pk[kp] = true;
	if (cons_too && th_rand(rng) % 2) {
		kill(rd->cons[kc_i], SIGKILL);
		rd->ck[kc_i] = true;
	}
	usleep((useconds_t)(th_rand(rng) % 2000));
	for (int i = 0; i < KC_P; i++) {
		kill(rd->prod[i], SIGKILL);
		rd->pk[i] = true;
		waitpid(rd->prod[i], NULL, 0);
	}
	for (int i = 0; i < KC_C; i++)
		if (rd->ck[i])
			waitpid(rd->cons[i], NULL, 0);
}

void kc_finish(struct kc_round *rd, int round)
{
	uint32_t m[4];
	size_t len;
	int rc;

	cr_assert_eq(lfipc_queue_shutdown(kc_q), 0);
	for (int i = 0; i < KC_C; i++)
		if (!rd->ck[i])
			cr_assert_eq(th_reap(rd->cons[i], KC_REAP_MS), 0,
				     "round %d consumer %d", round, i);
	while ((rc = lfipc_queue_get(kc_q, m, sizeof(m), &len, LFIPC_NOWAIT)) ==
	       0)
		kc_record(-1, m, len);
	cr_assert_eq(rc, -EPIPE, "round %d: drain ended with %d", round, rc);
	cr_assert_eq(atomic_load(&kc->bad), 0, "round %d: malformed", round);
}

bool kc_dup_if_peeked(const struct kc_round *rd, uint32_t p, uint32_t i,
		      unsigned n)
{
	if (n != 2)
		return false;
	for (int c = 0; c < KC_C; c++)
		if (rd->ck[c] &&
		    atomic_load(&kc->inflight[c]) == (p << 16 | i) + 1)
			return true;
	return false;
}

bool kc_lost_if_copied(const struct kc_round *rd, uint32_t p, uint32_t i,
		       unsigned n)
{
	if (n != 0)
		return false;
	for (int c = 0; c < KC_C; c++)
		for (uint32_t j = 0; rd->ck[c] && j < KC_B; j++)
			if (kc->cbuf[c][j][0] == p && kc->cbuf[c][j][1] == i &&
			    kc->cbuf[c][j][2] == p * 7919u + i)
				return true;
	return false;
}

uint64_t kc_check(const struct kc_round *rd, int round, kc_excuse *excuse,
		  uint64_t *excused)
{
	uint64_t total = 0;

	for (uint32_t p = 0; p < KC_P; p++) {
		uint32_t a = atomic_load(&kc->acked[p]);

		total += a;
		for (uint32_t i = 0; i < KC_MAX; i++) {
			unsigned n = atomic_load(&kc->seen[p][i]);
			bool want = i < a ? n == 1 : n <= 1;

			if (!want && excuse && excuse(rd, p, i, n)) {
				if (excused)
					(*excused)++;
				continue;
			}
			cr_assert(want,
				  "round %d: producer %u message %u (%s) "
				  "delivered %u times",
				  round, p, i, i < a ? "acked" : "not acked",
				  n);
		}
	}
	return total;
}
