/* SPDX-License-Identifier: MIT */
/*
 * test_queue_orphans.c - lfipc_queue_peek_orphans(): it takes a dead
 * consumer's messages and nothing else (never a head message, not even
 * when the orphan count lies), says -EAGAIN when there is none and while
 * the queue lock is busy (takes over a dead holder's), drops an orphan of
 * corrupt length, and shares the orphans with a concurrent consumer's
 * gets, each message taken once; lfipc_queue_peeked_seq() tells two laps
 * of a slot apart, and an orphan keeps the tag of the lap its dead
 * consumer peeked it in. Part of the test_queue program (its own suite).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lfipc/inspect.h>
#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "common/qtest.h"
#include "common/testhelp.h"

static lfipc_queue *oq; /* the queue the children work on */
static pid_t kid;	/* a child left running, killed at the end */

/* Kill and reap a child a failed test left running, then the region. */
static void teardown(void)
{
	if (kid > 0) {
		kill(kid, SIGKILL);
		th_reap(kid, QT_REAP_MS);
		kid = 0;
	}
	qt_teardown();
}

TestSuite(queue_orphans, .init = qt_setup, .fini = teardown, .timeout = 120);

/* A child that peeks arg messages of oq and dies holding them. */
static int peek_and_die(void *arg)
{
	int n = *(const int *)arg;

	for (int i = 0; i < n; i++) {
		const void *m;
		size_t len;

		if (lfipc_queue_peek(oq, &m, &len, LFIPC_NOWAIT))
			return 10 + i;
	}
	return 0;
}

/* Make the first n messages of oq orphans: a child peeks them and exits,
 * and the region's recovery orphans its claims. */
static void orphan_first(int n)
{
	lfipc_queue_status st;

	cr_assert_eq(th_reap(th_fork(peek_and_die, &n), QT_REAP_MS), 0);
	cr_assert_geq(lfipc_region_recover(qt_r), n);
	memset(&st, 0, sizeof(st));
	st.struct_size = sizeof(st);
	cr_assert_eq(lfipc_queue_stat(oq, &st), 0);
	cr_assert_eq(st.orphans, (size_t)n);
}

/* The int a peeked message holds. */
static int val(const void *m, size_t len)
{
	int v;

	cr_assert_eq(len, sizeof(int));
	memcpy(&v, m, sizeof(v));
	return v;
}

Test(queue_orphans, it_takes_the_orphans_and_never_a_head_message)
{
	const void *m[8];
	size_t lens[8];
	bool seen[3] = {false};
	int next = 3;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 8, 8, 0, &oq), 0);
	cr_assert_eq(put_ints(oq, 0, 8, LFIPC_NOWAIT), 8);
	orphan_first(3);
	/* asked for 8: the three orphans, not the five head messages */
	cr_assert_eq(lfipc_queue_peek_orphans(oq, m, lens, 8), 3);
	for (int i = 0; i < 3; i++) {
		int v = val(m[i], lens[i]);

		cr_assert(v >= 0 && v < 3, "message %d is no orphan", v);
		cr_assert_not(seen[v], "orphan %d twice", v);
		seen[v] = true;
	}
	cr_assert_eq(lfipc_queue_peek_orphans(oq, m, lens, 8), -EAGAIN);
	cr_assert_eq(lfipc_queue_qsize(oq), 5, "the head messages stay");
	cr_assert_eq(lfipc_queue_release_many(oq, m, 3), 3);
	cr_assert_eq(get_ints(oq, 8, &next), 5);
	cr_assert(lfipc_queue_empty(oq));
	lfipc_queue_close(oq);
}

Test(queue_orphans, it_says_eagain_when_there_is_no_orphan)
{
	const void *m[4];
	size_t lens[4];
	int next = 0;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 4, 8, 0, &oq), 0);
	cr_assert_eq(lfipc_queue_peek_orphans(oq, m, lens, 4), -EAGAIN,
		     "empty");
	cr_assert_eq(put_ints(oq, 0, 4, LFIPC_NOWAIT), 4);
	cr_assert_eq(lfipc_queue_peek_orphans(oq, m, lens, 4), -EAGAIN,
		     "messages, but no orphan");
	cr_assert_eq(lfipc_queue_qsize(oq), 4);
	cr_assert_eq(lfipc_queue_peek_orphans(oq, m, lens, 0), -EINVAL);
	cr_assert_eq(lfipc_queue_peek_orphans(oq, NULL, lens, 1), -EINVAL);
	cr_assert_eq(lfipc_queue_peek_orphans(oq, m, NULL, 1), -EINVAL);
	cr_assert_eq(lfipc_queue_peek_orphans(NULL, m, lens, 1), -EINVAL);
	cr_assert_eq(get_ints(oq, 4, &next), 4, "nothing was taken");
	lfipc_queue_close(oq);
}

/* A count that says orphans where there are none (written by a peer): the
 * rescue finds none and the head stays where it is; the count is 0 after. */
Test(queue_orphans, a_lying_orphan_count_gets_no_head_message)
{
	struct qpeer qp;
	const void *m[4];
	size_t lens[4];
	int next = 0;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 4, 8, 0, &oq), 0);
	cr_assert_eq(put_ints(oq, 0, 4, LFIPC_NOWAIT), 4);
	qp_open(qt_r, "q", &qp);
	atomic_store(&qp.h->orphans, 3);
	cr_assert_eq(lfipc_queue_peek_orphans(oq, m, lens, 4), -EAGAIN);
	cr_assert_eq(atomic_load(&qp.h->orphans), 0);
	cr_assert_eq(get_ints(oq, 4, &next), 4, "nothing was taken");
	qp_close(&qp);
	lfipc_queue_close(oq);
}

/* A child that peeks one message of oq (so that its token is in the
 * slot's word), says so on the pipe arg and waits to be killed. */
static int peek_and_wait(void *arg)
{
	int *fds = arg;
	const void *m;
	size_t len;

	if (lfipc_queue_peek(oq, &m, &len, LFIPC_NOWAIT))
		return 1;
	if (write(fds[1], "p", 1) != 1)
		return 2;
	for (;;)
		pause();
}

/*
 * The queue lock held by a live participant (the token of a child, as a
 * clear of its would hold it): no orphan can be had, -EAGAIN, where a
 * peek takes the head message. Once the holder is dead, the lock is taken
 * over and the orphans come.
 */
Test(queue_orphans, a_busy_queue_lock_gives_eagain_and_no_head_message)
{
	struct qpeer qp;
	const void *m[4], *h;
	size_t lens[4], hl;
	uint32_t tok;
	int fds[2], v[2];
	pid_t pid;
	char c;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 8, 8, 0, &oq), 0);
	cr_assert_eq(put_ints(oq, 0, 8, LFIPC_NOWAIT), 8);
	/* a live child peeks message 0: its token is in slot 0's word */
	cr_assert_eq(pipe(fds), 0);
	kid = pid = th_fork(peek_and_wait, fds);
	cr_assert_eq(read(fds[0], &c, 1), 1);
	orphan_first(2); /* messages 1 and 2 */
	qp_open(qt_r, "q", &qp);
	tok = (uint32_t)(atomic_load(qp_word(&qp, 0)) >> 32) & LFIPC_Q_CL_TOK;
	cr_assert_neq(tok, 0);
	atomic_store(&qp.h->lock, tok); /* the child holds the lock */
	cr_assert_eq(lfipc_queue_peek_orphans(oq, m, lens, 4), -EAGAIN);
	cr_assert_eq(atomic_load(&qp.h->orphans), 2, "no orphan taken");
	/* what a peek does there: its rescue fails, it takes the head */
	cr_assert_eq(lfipc_queue_peek(oq, &h, &hl, LFIPC_NOWAIT), 0);
	cr_assert_eq(val(h, hl), 3, "the head message, not an orphan");
	cr_assert_eq(lfipc_queue_release(oq, h), 0);
	/* the holder dies: its lock is taken over */
	kill(pid, SIGKILL);
	kid = 0;
	cr_assert_eq(th_reap(pid, QT_REAP_MS), 128 + SIGKILL);
	cr_assert_eq(lfipc_queue_peek_orphans(oq, m, lens, 4), 2);
	v[0] = val(m[0], lens[0]);
	v[1] = val(m[1], lens[1]);
	cr_assert((v[0] == 1 && v[1] == 2) || (v[0] == 2 && v[1] == 1),
		  "orphans %d and %d", v[0], v[1]);
	cr_assert_eq(atomic_load(&qp.h->lock), 0, "let go");
	cr_assert_eq(lfipc_queue_release_many(oq, m, 2), 2);
	/* the child's message: a dead claim, then an orphan */
	cr_assert_geq(lfipc_region_recover(qt_r), 1);
	cr_assert_eq(lfipc_queue_peek_orphans(oq, m, lens, 4), 1);
	cr_assert_eq(val(m[0], lens[0]), 0);
	cr_assert_eq(lfipc_queue_release(oq, m[0]), 0);
	cr_assert_eq(lfipc_queue_qsize(oq), 4, "messages 4 to 7 stay");
	qp_close(&qp);
	close(fds[0]);
	close(fds[1]);
	lfipc_queue_close(oq);
}

/* An orphan whose stored length exceeds msg_size (written by a peer) is
 * dropped, as a peek drops such a message: -EPROTO when it was all. */
Test(queue_orphans, an_orphan_of_corrupt_length_is_dropped)
{
	struct qpeer qp;
	const void *m[4];
	size_t lens[4];
	int next = 1;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 4, 8, 0, &oq), 0);
	cr_assert_eq(put_ints(oq, 0, 4, LFIPC_NOWAIT), 4);
	orphan_first(1);
	qp_open(qt_r, "q", &qp);
	*qp_len(&qp, 0) = 9;
	cr_assert_eq(lfipc_queue_peek_orphans(oq, m, lens, 4), -EPROTO);
	cr_assert_eq(lfipc_queue_peek_orphans(oq, m, lens, 4), -EAGAIN);
	cr_assert_eq(lfipc_queue_qsize(oq), 3);
	{
		lfipc_queue_status st = {.struct_size = sizeof(st)};

		cr_assert_eq(lfipc_queue_stat(oq, &st), 0);
		cr_assert_eq(st.corrupt, 1, "the orphan's drop is counted");
	}
	cr_assert_eq(get_ints(oq, 4, &next), 3);
	qp_close(&qp);
	lfipc_queue_close(oq);
}

/* The start line of the race below, in memory shared with the child:
 * [0] the child got its first message (it is registered), [1] go. */
static _Atomic int *line;

/* A consumer in another process: gets what it can (LFIPC_NOWAIT) until
 * the queue is empty, and writes each int it got to the pipe arg. After
 * its first (registered), it waits at the start line for the parent, so
 * that both then race, each spinning on its own CPU until the go. */
static int get_all(void *arg)
{
	int *fds = arg;
	bool first = true;

	close(fds[0]);
	for (int misses = 0; misses < 1000;) {
		int v[2]; /* msg_size 8 */
		size_t len;
		int rc = lfipc_queue_get(oq, v, sizeof(v), &len, LFIPC_NOWAIT);

		if (rc == -EAGAIN) {
			misses++;
			continue;
		}
		if (rc || len != sizeof(int))
			return 1;
		if (write(fds[1], v, sizeof(int)) != sizeof(int))
			return 2;
		if (first) {
			atomic_store(&line[0], 1);
			while (!atomic_load(&line[1]))
				;
		}
		first = false;
		misses = 0;
	}
	return 0;
}

/*
 * 200 orphans and 200 head messages; another process gets them all (its
 * gets take orphans first) while we take orphans: we get orphans only,
 * the other consumer the rest, each message once.
 */
Test(queue_orphans, orphans_shared_with_a_concurrent_consumer_go_once)
{
	enum { ORPH = 200, ALL = 400 };
	unsigned char got[ALL] = {0};
	lfipc_queue_status st;
	const void *m[4];
	size_t lens[4];
	int fds[2], mine = 0, theirs = 0, their_orphans = 0, v;
	pid_t pid;

	line = mmap(NULL, 2 * sizeof(*line), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(line, MAP_FAILED);
	cr_assert_eq(lfipc_queue_create(qt_r, "q", 512, 8, 0, &oq), 0);
	cr_assert_eq(put_ints(oq, 0, ORPH, LFIPC_NOWAIT), ORPH);
	orphan_first(ORPH);
	cr_assert_eq(put_ints(oq, ORPH, ALL, LFIPC_NOWAIT), ALL - ORPH);
	cr_assert_eq(pipe(fds), 0);
	kid = pid = th_fork(get_all, fds);
	close(fds[1]);
	for (int i = 0; !atomic_load(&line[0]); i++) {
		cr_assert_lt(i, 10000, "the consumer got none");
		usleep(1000);
	}
	atomic_store(&line[1], 1); /* go */
	for (int i = 0;; i++) {
		int k = lfipc_queue_peek_orphans(oq, m, lens, 1 + i % 4);

		if (k == -EAGAIN) {
			memset(&st, 0, sizeof(st));
			st.struct_size = sizeof(st);
			cr_assert_eq(lfipc_queue_stat(oq, &st), 0);
			if (st.orphans == 0)
				break;
			continue; /* the lock was the other's */
		}
		cr_assert_gt(k, 0);
		for (int j = 0; j < k; j++) {
			v = val(m[j], lens[j]);
			cr_assert(v >= 0 && v < ORPH, "message %d is no orphan",
				  v);
			cr_assert_eq(got[v]++, 0, "message %d twice", v);
			mine++;
		}
		cr_assert_eq(lfipc_queue_release_many(oq, m, (size_t)k), k);
	}
	kid = 0;
	cr_assert_eq(th_reap(pid, QT_REAP_MS), 0);
	while (read(fds[0], &v, sizeof(v)) == sizeof(v)) {
		cr_assert(v >= 0 && v < ALL);
		cr_assert_eq(got[v]++, 0, "message %d twice", v);
		theirs++;
		their_orphans += v < ORPH;
	}
	close(fds[0]);
	munmap(line, 2 * sizeof(*line));
	cr_log_info("%d orphans ours, %d messages theirs (%d orphans)", mine,
		    theirs, their_orphans);
	cr_assert_eq(mine + theirs, ALL);
	cr_assert(lfipc_queue_empty(oq));
	lfipc_queue_close(oq);
}

/* A second thread of the process calls peek_orphans (arg: the queue). */
static void *peek_orphans_thread(void *arg)
{
	const void *m[4];
	size_t lens[4];

	return (void *)(intptr_t)lfipc_queue_peek_orphans(arg, m, lens, 4);
}

/*
 * A single-consumer queue: the orphans of a dead role holder are taken
 * (its role with them), and while a live thread holds the role another
 * one gets -EBUSY, no orphan taken.
 */
Test(queue_orphans, a_single_consumer_queue_gives_the_role_or_ebusy)
{
	const void *m[4];
	size_t lens[4];
	void *ret;
	pthread_t t;
	int next = 2;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 8, 8,
					LFIPC_QUEUE_SINGLE_CONSUMER, &oq),
		     0);
	cr_assert_eq(put_ints(oq, 0, 6, LFIPC_NOWAIT), 6);
	orphan_first(2);
	cr_assert_eq(lfipc_queue_peek_orphans(oq, m, lens, 1), 1,
		     "the dead holder's role is taken over");
	cr_assert_eq(val(m[0], lens[0]), 0);
	cr_assert_eq(pthread_create(&t, NULL, peek_orphans_thread, oq), 0);
	cr_assert_eq(pthread_join(t, &ret), 0);
	cr_assert_eq((int)(intptr_t)ret, -EBUSY, "another thread holds it");
	cr_assert_eq(lfipc_queue_peek_orphans(oq, m + 1, lens + 1, 4), 1);
	cr_assert_eq(val(m[1], lens[1]), 1);
	cr_assert_eq(lfipc_queue_release_many(oq, m, 2), 2);
	cr_assert_eq(get_ints(oq, 4, &next), 4);
	lfipc_queue_close(oq);
}

/*
 * A JoinableQueue counts an orphan taken here as got at its release, and
 * one dropped for its corrupt length as done: with task_done for the rest,
 * join has nothing left to wait for.
 */
Test(queue_orphans, a_joinable_queue_counts_orphans_got_and_dropped)
{
	struct qpeer qp;
	const void *m[4];
	size_t lens[4];
	int next = 3;

	cr_assert_eq(
	    lfipc_queue_create(qt_r, "q", 8, 8, LFIPC_QUEUE_JOINABLE, &oq), 0);
	cr_assert_eq(put_ints(oq, 0, 5, LFIPC_NOWAIT), 5);
	orphan_first(3);
	qp_open(qt_r, "q", &qp);
	*qp_len(&qp, 1) = 9; /* message 1: corrupt */
	cr_assert_eq(lfipc_queue_peek_orphans(oq, m, lens, 4), 2);
	cr_assert_eq(val(m[0], lens[0]) + val(m[1], lens[1]), 0 + 2);
	cr_assert_eq(lfipc_queue_join(oq, LFIPC_NOWAIT), -EAGAIN);
	cr_assert_eq(lfipc_queue_release_many(oq, m, 2), 2);
	cr_assert_eq(get_ints(oq, 2, &next), 2);
	for (int i = 0; i < 4; i++) /* 0, 2, 3 and 4 */
		cr_assert_eq(lfipc_queue_task_done(oq), 0);
	cr_assert_eq(lfipc_queue_task_done(oq), -EINVAL, "one too many");
	cr_assert_eq(lfipc_queue_join(oq, LFIPC_NOWAIT), 0);
	qp_close(&qp);
	lfipc_queue_close(oq);
}

/* ---- the position tag of a peeked message --------------------------- */

/*
 * lfipc_queue_peeked_seq(): a message in slot 0 of a 2-slot ring in lap 0
 * (position 0) and one in the same slot two laps later (position 4) have
 * different tags, position + 1; a slot not peeked by the caller is
 * -EPROTO, a pointer that is no message -EINVAL.
 */
Test(queue_orphans, peeked_seq_tells_two_laps_of_a_slot_apart)
{
	const void *m0, *m4;
	size_t len;
	uint32_t s0, s4, x = 77;
	int next = 1;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 2, 8, 0, &oq), 0);
	cr_assert_eq(put_ints(oq, 0, 1, LFIPC_NOWAIT), 1);
	cr_assert_eq(lfipc_queue_peek(oq, &m0, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(val(m0, len), 0);
	cr_assert_eq(lfipc_queue_peeked_seq(oq, m0, &s0), 0);
	cr_assert_eq(s0, 1, "position 0: tag %u", s0);
	cr_assert_eq(lfipc_queue_release(oq, m0), 0);
	cr_assert_eq(lfipc_queue_peeked_seq(oq, m0, &x), -EPROTO, "released");
	cr_assert_eq(x, 77, "written on an error");
	cr_assert_eq(lfipc_queue_peeked_seq(oq, &x, &x), -EINVAL);
	cr_assert_eq(lfipc_queue_peeked_seq(oq, (const char *)m0 + 1, &x),
		     -EINVAL);
	cr_assert_eq(lfipc_queue_peeked_seq(oq, m0, NULL), -EINVAL);
	cr_assert_eq(lfipc_queue_peeked_seq(NULL, m0, &x), -EINVAL);
	/* positions 1 to 3 through, 4 in slot 0 again */
	cr_assert_eq(put_ints(oq, 1, 3, LFIPC_NOWAIT), 2);
	cr_assert_eq(get_ints(oq, 2, &next), 2);
	cr_assert_eq(put_ints(oq, 3, 5, LFIPC_NOWAIT), 2);
	cr_assert_eq(get_ints(oq, 1, &next), 1);
	cr_assert_eq(lfipc_queue_peek(oq, &m4, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(val(m4, len), 4);
	cr_assert_eq(m4, m0, "not the same slot");
	cr_assert_eq(lfipc_queue_peeked_seq(oq, m4, &s4), 0);
	cr_assert_eq(s4, 5, "position 4: tag %u", s4);
	cr_assert_neq(s4, s0);
	cr_assert_eq(lfipc_queue_release(oq, m4), 0);
	lfipc_queue_close(oq);
}

/*
 * Found by a hostile review: peeked_seq checked the claim of the slot's
 * word, not its seq, which a peer can rewrite keeping the claim: it said
 * 0 and a seq that is no lap of that slot (position seq - 1 lies in
 * another). A seq out of its slot is now -EPROTO, as a claim not ours;
 * a later lap of the slot cannot be told from its own.
 */
Test(queue_orphans, peeked_seq_refuses_a_seq_of_another_slot)
{
	_Atomic uint64_t *w;
	struct qpeer qp;
	const void *m;
	uint64_t w0;
	uint32_t t, x = 77;
	size_t len;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", 4, 8, 0, &oq), 0);
	cr_assert_eq(put_ints(oq, 0, 1, LFIPC_NOWAIT), 1);
	cr_assert_eq(lfipc_queue_peek(oq, &m, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_peeked_seq(oq, m, &t), 0);
	cr_assert_eq(t, 1);
	qp_open(qt_r, "q", &qp);
	w = qp_word(&qp, 0);
	w0 = atomic_load(w);
	/* position 1's seq: slot 1's, our claim kept */
	atomic_store(w, qp_mkword(t + 1, (uint32_t)(w0 >> 32)));
	cr_expect_eq(lfipc_queue_peeked_seq(oq, m, &x), -EPROTO);
	cr_expect_eq(x, 77, "written on an error");
	/* position 4's: slot 0 a lap later */
	atomic_store(w, qp_mkword(t + 4, (uint32_t)(w0 >> 32)));
	cr_expect_eq(lfipc_queue_peeked_seq(oq, m, &x), 0);
	cr_expect_eq(x, t + 4);
	atomic_store(w, w0);
	cr_assert_eq(lfipc_queue_release(oq, m), 0);
	qp_close(&qp);
	lfipc_queue_close(oq);
}

/* What a child saw of the message it peeked: its tag, and 1 once
 * written. */
struct seen_tag {
	_Atomic uint32_t tag;
	_Atomic int done;
};

static struct seen_tag *seen_tag;

/* A child that peeks one message of oq, writes its tag to seen_tag, and
 * waits to be killed. */
static int peek_tag_and_wait(void *arg)
{
	const void *m;
	size_t len;
	uint32_t t;

	(void)arg;
	if (lfipc_queue_peek(oq, &m, &len, LFIPC_NOWAIT))
		return 1;
	if (lfipc_queue_peeked_seq(oq, m, &t))
		return 2;
	atomic_store(&seen_tag->tag, t);
	atomic_store(&seen_tag->done, 1);
	for (;;)
		pause();
}

/*
 * An orphan keeps the lap it had: a consumer SIGKILLed while it held a
 * message peeked in a later lap of its slot (position 5 of a 2-slot ring)
 * leaves an orphan whose tag, once rescued by lfipc_queue_peek_orphans(),
 * is the one the dead consumer saw, not that of any other lap of the
 * slot.
 */
Test(queue_orphans, an_orphan_keeps_the_tag_its_dead_consumer_peeked_it_in)
{
	const void *m;
	size_t len;
	uint32_t t;
	int next = 0;

	seen_tag = mmap(NULL, sizeof(*seen_tag), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(seen_tag, MAP_FAILED);
	cr_assert_eq(lfipc_queue_create(qt_r, "q", 2, 8, 0, &oq), 0);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(put_ints(oq, i, i + 1, LFIPC_NOWAIT), 1);
		cr_assert_eq(get_ints(oq, 1, &next), 1);
	}
	cr_assert_eq(put_ints(oq, 5, 7, LFIPC_NOWAIT), 2);
	kid = th_fork(peek_tag_and_wait, NULL);
	for (int i = 0; !atomic_load(&seen_tag->done); i++) {
		cr_assert_lt(i, 10000, "the child peeked nothing");
		usleep(1000);
	}
	cr_assert_eq(atomic_load(&seen_tag->tag), 6, "position 5: tag %u",
		     atomic_load(&seen_tag->tag));
	kill(kid, SIGKILL);
	th_reap(kid, QT_REAP_MS);
	kid = 0;
	cr_assert_geq(lfipc_region_recover(qt_r), 1);
	cr_assert_eq(lfipc_queue_peek_orphans(oq, &m, &len, 1), 1);
	cr_assert_eq(val(m, len), 5);
	cr_assert_eq(lfipc_queue_peeked_seq(oq, m, &t), 0);
	cr_assert_eq(t, atomic_load(&seen_tag->tag),
		     "the rescued orphan's tag %u, the dead consumer's %u", t,
		     atomic_load(&seen_tag->tag));
	cr_assert_eq(lfipc_queue_release(oq, m), 0);
	/* the head message, position 6, in the other slot: its own tag */
	cr_assert_eq(lfipc_queue_peek(oq, &m, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(val(m, len), 6);
	cr_assert_eq(lfipc_queue_peeked_seq(oq, m, &t), 0);
	cr_assert_eq(t, 7);
	cr_assert_eq(lfipc_queue_release(oq, m), 0);
	munmap(seen_tag, sizeof(*seen_tag));
	lfipc_queue_close(oq);
}
