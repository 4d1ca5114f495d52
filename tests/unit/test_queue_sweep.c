/* SPDX-License-Identifier: MIT */
/*
 * test_queue_sweep.c - what the sweeps for dead claimants cost: a slice's
 * sweep (SWEEP_SLOTS slots) and an explicit recovery (every slot) ask the
 * kernel whether a claimant lives (an F_OFD_GETLK each, about a
 * microsecond on this kind of guest) once per claimant and sweep, not once
 * per slot it holds; the caller's own claims cost no question at all. A
 * consumer with thousands of peeked messages (the bridge's sender) made a
 * thousand system calls per sweep before. The probes are counted by the
 * library (lfipc__proc_probes). Part of the test_queue program.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "common/qtest.h"
#include "common/testhelp.h"
#include "internal/death.h"
#include "internal/proc.h"

TestSuite(queue_sweep, .init = qt_setup, .fini = qt_teardown, .timeout = 120);

#define SW_SLOTS 4096
#define SW_HELD 2048 /* messages peeked and held */

static lfipc_queue *sq;

/* Put n ints and peek them all, holding every one. */
static void put_and_hold(int n)
{
	for (int i = 0; i < n; i += 256)
		cr_assert_eq(put_ints(sq, i, i + 256, LFIPC_NOWAIT), 256);
	for (int i = 0; i < n; i++) {
		const void *m;
		size_t len;

		cr_assert_eq(lfipc_queue_peek(sq, &m, &len, LFIPC_NOWAIT), 0);
	}
}

/* Fruitless gets (every message is held) until more than POLL_CHECK of
 * them made this process sweep at least one slice, then an explicit
 * recovery that looks at every slot: the probes it all took. */
static uint64_t probes_of_sweeps(void)
{
	uint64_t p0 = atomic_load(&lfipc__proc_probes);
	char buf[16];
	size_t len;

	for (int i = 0; i < 2 * 1024 + 1; i++)
		if (lfipc_queue_get(sq, buf, sizeof(buf), &len,
				    LFIPC_NOWAIT) != -EAGAIN)
			return UINT64_MAX;
	if (lfipc_region_recover(qt_r) != 0)
		return UINT64_MAX;
	return atomic_load(&lfipc__proc_probes) - p0;
}

/* A child: sweep another process's held messages; exit with the number
 * of probes (capped), 255 on an error. */
static int sweep_child(void *arg)
{
	uint64_t n = probes_of_sweeps();

	(void)arg;
	return n == UINT64_MAX ? 255 : n > 250 ? 250 : (int)n;
}

Test(queue_sweep, a_live_consumers_held_messages_cost_one_probe_per_sweep)
{
	int rc;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", SW_SLOTS, 16, 0, &sq), 0);
	put_and_hold(SW_HELD);
	/* Two slice sweeps of 1024 slots (2048 gets: each POLL_CHECK-th
	 * fruitless one sweeps) and a recovery of all 4096: half of the
	 * slots are this process's. One probe per sweep that meets them:
	 * at most 3; one per slot would be thousands. */
	rc = th_reap(th_fork(sweep_child, NULL), QT_REAP_MS);
	cr_assert_geq(rc, 1, "no probe at all: the test proves nothing");
	cr_assert_leq(rc, 3, "%d probes for one live claimant", rc);
	lfipc_queue_close(sq);
}

Test(queue_sweep, the_callers_own_held_messages_cost_no_probe)
{
	cr_assert_eq(lfipc_queue_create(qt_r, "q", SW_SLOTS, 16, 0, &sq), 0);
	put_and_hold(SW_HELD);
	cr_assert_eq(probes_of_sweeps(), 0);
	lfipc_queue_close(sq);
}

/* ---- what the memo must not hide: dead claimants among live ones ------- */

#define SW_KIDS_MAX 12

/* A consumer in a child: on 'p' peek one message and answer with its int,
 * on anything else (or EOF) leave, holding what it peeked. */
struct peeker {
	int cmd[2], ack[2];
};

static int peeker_main(void *arg)
{
	struct peeker *pk = arg;
	char c;

	/* never outlive the test, whatever fails in it */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	alarm(120);
	close(pk->cmd[1]);
	close(pk->ack[0]);
	while (th_read_all(pk->cmd[0], &c, 1) == 0 && c == 'p') {
		const void *m;
		size_t len;
		int v = -1;

		if (lfipc_queue_peek(sq, &m, &len, LFIPC_NOWAIT) == 0 &&
		    len == sizeof(int))
			memcpy(&v, m, sizeof(v));
		if (th_write_all(pk->ack[1], &v, sizeof(v)))
			return 1;
	}
	pause(); /* hold them until killed */
	return 0;
}

struct kids {
	int n;
	pid_t pid[SW_KIDS_MAX];
	struct peeker pk[SW_KIDS_MAX];
	int owner[SW_SLOTS]; /* message value -> kid that peeked it */
	int held[SW_KIDS_MAX];
};

static void kids_start(struct kids *k, int n)
{
	k->n = n;
	for (int i = 0; i < n; i++) {
		cr_assert_eq(pipe(k->pk[i].cmd), 0);
		cr_assert_eq(pipe(k->pk[i].ack), 0);
		k->pid[i] = th_fork(peeker_main, &k->pk[i]);
		cr_assert_gt(k->pid[i], 0);
		close(k->pk[i].cmd[0]);
		close(k->pk[i].ack[1]);
		k->held[i] = 0;
	}
}

/* Kid i peeks one message. */
static void kid_peek(struct kids *k, int i)
{
	char c = 'p';
	int v;

	cr_assert_eq(th_write_all(k->pk[i].cmd[1], &c, 1), 0);
	cr_assert_eq(th_read_all(k->pk[i].ack[0], &v, sizeof(v)), 0);
	cr_assert(v >= 0 && v < SW_SLOTS, "kid %d peeked %d", i, v);
	k->owner[v] = i;
	k->held[i]++;
}

static void kid_kill(struct kids *k, int i)
{
	kill(k->pid[i], SIGKILL);
	cr_assert_eq(th_reap(k->pid[i], QT_REAP_MS), 128 + SIGKILL);
	close(k->pk[i].cmd[1]);
	close(k->pk[i].ack[0]);
	k->pid[i] = 0;
}

static void kids_end(struct kids *k)
{
	for (int i = 0; i < k->n; i++)
		if (k->pid[i] > 0)
			kid_kill(k, i);
}

/* Get what is there (NOWAIT, at most tries attempts): every message got
 * must be one of kid dead's, each once; returns how many came. */
static int get_dead_kids(struct kids *k, int dead, int want, long tries,
			 long *used)
{
	static bool seen[SW_SLOTS];
	int got = 0;
	long t;

	memset(seen, 0, sizeof(seen));
	for (t = 0; t < tries && got < want; t++) {
		int buf[4], v;
		size_t len;
		int rc =
		    lfipc_queue_get(sq, buf, sizeof(buf), &len, LFIPC_NOWAIT);

		if (rc == -EAGAIN)
			continue;
		v = buf[0];
		cr_assert_eq(rc, 0, "get: %d", rc);
		cr_assert(v >= 0 && v < SW_SLOTS);
		cr_assert_eq(k->owner[v], dead, "%d was kid %d's, not %d's", v,
			     k->owner[v], dead);
		cr_assert(!seen[v], "%d twice", v);
		seen[v] = true;
		got++;
	}
	if (used)
		*used = t;
	return got;
}

/* n kids take the messages in turn (kid i % n peeks message i), one of
 * them is SIGKILLed holding its share. */
static void interleave(struct kids *k, int n, int msgs)
{
	cr_assert_eq(lfipc_queue_create(qt_r, "q", SW_SLOTS, 16, 0, &sq), 0);
	for (int i = 0; i < msgs; i += 256)
		cr_assert_eq(put_ints(sq, i, i + 256, LFIPC_NOWAIT), 256);
	kids_start(k, n);
	for (int i = 0; i < msgs; i++)
		kid_peek(k, i % n);
}

Test(queue_sweep,
     a_recovery_finds_every_message_of_a_killed_consumer_among_live_ones)
{
	static struct kids k;

	interleave(&k, 2, 2048);
	kid_kill(&k, 1);
	cr_assert_eq(lfipc_region_recover(qt_r), k.held[1],
		     "the dead consumer's %d held messages", k.held[1]);
	cr_assert_eq(get_dead_kids(&k, 1, k.held[1], 2 * k.held[1], NULL),
		     k.held[1]);
	cr_assert_eq(lfipc_region_recover(qt_r), 0, "the live one's stay");
	kids_end(&k);
	cr_assert_eq(lfipc_region_recover(qt_r), k.held[0]);
	lfipc_queue_close(sq);
}

Test(queue_sweep, slices_alone_find_a_killed_consumers_messages_within_a_lap)
{
	static struct kids k;
	long used;
	/* one slice per POLL_CHECK fruitless polls, SWEEP_SLOTS slots each:
	 * N / SWEEP_SLOTS slices see the whole ring; one more for luck. */
	long bound = (SW_SLOTS / 1024 + 1) * 1024L + 2048;

	interleave(&k, 2, 2048);
	kid_kill(&k, 0);
	cr_assert_eq(get_dead_kids(&k, 0, k.held[0], bound, &used), k.held[0],
		     "only some of the dead consumer's messages came back");
	cr_assert_leq(used, bound);
	kids_end(&k);
	lfipc_queue_close(sq);
}

Test(queue_sweep, more_live_claimants_than_the_memo_holds_hide_no_dead_one)
{
	static struct kids k;

	interleave(&k, 11, 2048);
	kid_kill(&k, 7);
	cr_assert_eq(lfipc_region_recover(qt_r), k.held[7]);
	cr_assert_eq(get_dead_kids(&k, 7, k.held[7], 4 * k.held[7], NULL),
		     k.held[7]);
	kid_kill(&k, 0);
	kid_kill(&k, 10);
	cr_assert_eq(lfipc_region_recover(qt_r), k.held[0] + k.held[10]);
	kids_end(&k);
	lfipc_queue_close(sq);
}

/* A claim in the name of an earlier incarnation of a live participant's
 * slot (same slot index, older generation) is a dead claimant's, though
 * the memo holds the live one by then: its slot is not the token. */
Test(queue_sweep, an_older_generation_of_a_live_claimants_slot_is_dead)
{
	static struct kids k;
	struct qpeer qp;
	uint32_t tok, old;
	int planted = 0;

	interleave(&k, 2, 2048);
	qp_open(qt_r, "q", &qp);
	/* message v sits at position v; kid 0 holds the even ones */
	tok = lfipc__qclaim(atomic_load(qp_word(&qp, 0))) & LFIPC_Q_CL_TOK;
	cr_assert_eq(k.owner[0], 0);
	old = (tok & ~LFIPC_TOKEN_GEN_MASK) | ((tok - 4) & LFIPC_TOKEN_GEN_MASK);
	for (uint32_t p = 1; p < 2048; p += 64) {
		uint64_t w = atomic_load(qp_word(&qp, p));

		cr_assert_eq(k.owner[p], 1);
		atomic_store(qp_word(&qp, p),
			     qp_mkword(lfipc__qseq(w), old | LFIPC_Q_CL_R));
		k.owner[p] = 2; /* "kid 2": the dead incarnation */
		planted++;
	}
	cr_assert_eq(lfipc_region_recover(qt_r), planted);
	cr_assert_eq(get_dead_kids(&k, 2, planted, 4 * planted, NULL),
		     planted);
	qp_close(&qp);
	kids_end(&k);
	lfipc_queue_close(sq);
}

/* A fork child's first call is a recovery: it registers a token of its
 * own, so the parent's held messages are a live claimant's, not its own
 * and not dead. */
static int recover_child(void *arg)
{
	int n = lfipc_region_recover(qt_r);

	(void)arg;
	return n < 0 ? 255 : n > 250 ? 250 : n;
}

Test(queue_sweep, a_fork_child_recovering_first_thing_leaves_the_parents_claims)
{
	const void *m[64];
	size_t len;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", SW_SLOTS, 16, 0, &sq), 0);
	cr_assert_eq(put_ints(sq, 0, 64, LFIPC_NOWAIT), 64);
	for (int i = 0; i < 64; i++)
		cr_assert_eq(lfipc_queue_peek(sq, &m[i], &len, LFIPC_NOWAIT),
			     0);
	cr_assert_eq(th_reap(th_fork(recover_child, NULL), QT_REAP_MS), 0);
	cr_assert_eq(lfipc_region_recover(qt_r), 0);
	for (int i = 0; i < 64; i++)
		cr_assert_eq(lfipc_queue_release(sq, m[i]), 0,
			     "message %d still ours", i);
	lfipc_queue_close(sq);
}

/* A thread that peeked and ended: its process lives, so its messages are
 * a live claimant's for everyone (the caller and a fork child alike). */
static void *peek_and_end(void *arg)
{
	const void **m = arg;
	size_t len;

	for (int i = 0; i < 64; i++)
		if (lfipc_queue_peek(sq, &m[i], &len, LFIPC_NOWAIT) != 0)
			return (void *)1;
	return NULL;
}

Test(queue_sweep, an_ended_threads_held_messages_are_its_live_processs)
{
	const void *m[64];
	pthread_t t;
	void *ret;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", SW_SLOTS, 16, 0, &sq), 0);
	cr_assert_eq(put_ints(sq, 0, 64, LFIPC_NOWAIT), 64);
	cr_assert_eq(pthread_create(&t, NULL, peek_and_end, m), 0);
	cr_assert_eq(pthread_join(t, &ret), 0);
	cr_assert_null(ret);
	cr_assert_eq(lfipc_region_recover(qt_r), 0);
	cr_assert_eq(th_reap(th_fork(recover_child, NULL), QT_REAP_MS), 0);
	for (int i = 0; i < 64; i++)
		cr_assert_eq(lfipc_queue_release(sq, m[i]), 0);
	lfipc_queue_close(sq);
}

/* ---- a claimant killed while an explicit recovery looks ---------------- */

#define SW_BIG (512u * 1024) /* slots: a recovery looks for milliseconds */

/* A consumer in a child: peek every message, say so, wait to be killed. */
static int peek_all_child(void *arg)
{
	int *fd = arg;
	const void *m;
	size_t len;
	char x = 1;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	alarm(120);
	for (uint32_t i = 0; i < SW_BIG; i++)
		if (lfipc_queue_peek(sq, &m, &len, LFIPC_NOWAIT) != 0)
			return 1;
	if (th_write_all(fd[1], &x, 1))
		return 1;
	pause();
	return 0;
}

struct killer {
	pid_t pid;
	uint32_t tok;  /* the child's token */
	uint64_t p0;   /* probes before the recovery */
	int64_t t_dead; /* when its death showed in the region's memory */
};

/* Kill the child as soon as the recovery has asked about it once (the
 * first probe of this process), then note when the kernel's death push
 * marked its word (what lfipc__token_alive reads without a system call). */
static void *kill_at_first_probe(void *arg)
{
	struct killer *kl = arg;
	_Atomic uint32_t *w;
	uint32_t v;

	while (atomic_load(&lfipc__proc_probes) == kl->p0)
		;
	kill(kl->pid, SIGKILL);
	for (int64_t t0 = th_now_ns(); th_now_ns() - t0 < 2000000000;) {
		enum lfipc_death_state st =
		    lfipc__death_peek(qt_r, kl->tok, &w, &v);

		/* marked, or retired already by whoever saw the mark */
		if (st == LFIPC_DEATH_DIED || st == LFIPC_DEATH_GONE) {
			kl->t_dead = th_now_ns();
			break;
		}
	}
	return NULL;
}

Test(queue_sweep, a_claimant_killed_during_a_recovery_is_repaired_by_it,
     .timeout = 240)
{
	struct killer kl;
	int fd[2], n1 = 0, n2, tries;
	pthread_t t;
	char x;
	bool conclusive = false;

	if (!lfipc__death_push_ok())
		cr_skip_test("no death push here: the kill shows only in the "
			     "OFD lock");
	cr_assert_eq(lfipc_queue_create(qt_r, "q", SW_BIG, 8, 0, &sq), 0);
	for (tries = 0; tries < 5 && !conclusive; tries++) {
		int64_t t0, t1;
		struct qpeer qp;

		for (uint32_t i = 0; i < SW_BIG; i += 256)
			cr_assert_eq(put_ints(sq, 0, 256, LFIPC_NOWAIT), 256);
		cr_assert_eq(pipe(fd), 0);
		memset(&kl, 0, sizeof(kl));
		kl.pid = th_fork(peek_all_child, fd);
		cr_assert_gt(kl.pid, 0);
		cr_assert_eq(th_read_all(fd[0], &x, 1), 0, "the child holds all");
		close(fd[0]);
		close(fd[1]);
		qp_open(qt_r, "q", &qp);
		kl.tok = lfipc__qclaim(atomic_load(qp_word(&qp, 0))) &
			 LFIPC_Q_CL_TOK;
		/* Between the child's first slot and its second half, a
		 * dead reader's claims (a peer's writing): the recovery
		 * repairs them one by one, which takes long enough for the
		 * child's death to show before it reaches the second half. */
		for (uint32_t i = 1; i < SW_BIG / 2; i++) {
			uint64_t w = atomic_load(qp_word(&qp, i));

			atomic_store(qp_word(&qp, i),
				     qp_mkword(lfipc__qseq(w),
					       QP_DEAD_TOKEN | LFIPC_Q_CL_R));
		}
		qp_close(&qp);
		kl.p0 = atomic_load(&lfipc__proc_probes);
		cr_assert_eq(pthread_create(&t, NULL, kill_at_first_probe, &kl),
			     0);
		t0 = th_now_ns();
		n1 = lfipc_region_recover(qt_r);
		t1 = th_now_ns();
		cr_assert_eq(pthread_join(t, NULL), 0);
		cr_assert_eq(th_reap(kl.pid, QT_REAP_MS), 128 + SIGKILL);
		n2 = lfipc_region_recover(qt_r);
		cr_assert_eq(n1 + n2, (int)SW_BIG, "%d + %d", n1, n2);
		/* every message back: the orphans, in some order */
		for (uint32_t i = 0; i < SW_BIG; i++) {
			int buf[2];

			cr_assert_eq(lfipc_queue_get(sq, buf, sizeof(buf), NULL,
						     LFIPC_NOWAIT),
				     0);
		}
		/* the death showed with a quarter of the look still to go:
		 * that quarter's slots must have been repaired by it */
		conclusive = kl.t_dead && kl.t_dead < t1 - (t1 - t0) / 4;
		cr_log_info("try %d: %.2f ms look, death shown at %.2f ms, "
			    "%d repaired by it",
			    tries, (t1 - t0) / 1e6,
			    kl.t_dead ? (kl.t_dead - t0) / 1e6 : -1.0, n1);
	}
	if (!conclusive)
		cr_skip_test("the kill never showed early enough to tell");
	cr_assert_gt(n1, (int)SW_BIG / 2 - 1,
		     "the claimant's death showed with a quarter of the look "
		     "to go, before its second half, yet none of its slots "
		     "was repaired by it");
	lfipc_queue_close(sq);
}

/* A handle closed holding peeked messages (against the contract) and a
 * new handle of the same process: the new one has another token, so the
 * old claims are a dead incarnation's, not "the caller's own". */
Test(queue_sweep, a_reopened_handles_token_is_not_its_closed_predecessors)
{
	lfipc_region *r2, *r3;
	lfipc_queue *q2;
	const void *m;
	size_t len;

	cr_assert_eq(lfipc_queue_create(qt_r, "q", SW_SLOTS, 16, 0, &sq), 0);
	cr_assert_eq(put_ints(sq, 0, 64, LFIPC_NOWAIT), 64);
	cr_assert_eq(lfipc_region_open_fd(lfipc_region_fd(qt_r), &r2), 0);
	cr_assert_eq(lfipc_queue_open(r2, "q", &q2), 0);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(lfipc_queue_peek(q2, &m, &len, LFIPC_NOWAIT), 0);
	lfipc_queue_close(q2);
	lfipc_region_close(r2);
	cr_assert_eq(lfipc_region_open_fd(lfipc_region_fd(qt_r), &r3), 0);
	cr_assert_eq(lfipc_region_recover(r3), 10);
	lfipc_region_close(r3);
	lfipc_queue_close(sq);
}
