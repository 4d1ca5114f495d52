/* SPDX-License-Identifier: MIT */
/*
 * test_races.c - race windows held open with the test hook
 * (lfipc__set_test_hook, internal/wait.h): the hook runs at a named point
 * inside the window and makes the other party's move there, so each race
 * is played the same way every run. Found by an audit of every
 * compare-exchange for the value a failed one leaves behind. (The death
 * word's window is in test_death.c, beside the push it breaks.)
 *
 * White-box: links the static archive to reach the hook; the region per
 * test is wait_common.h's (each test runs in a process of its own, so the
 * hook needs no reset).
 */
#include "wait_common.h"

#include "internal/pipe.h"
#include "internal/queue.h"

#define MS ((int64_t)1000000)

TestSuite(races, .init = setup, .fini = teardown, .timeout = 60);

/* ---- a pipe end taken over while its dead holder is judged -------------- */

/*
 * The reader found the other end's holder dead and is about to mark the
 * end closed when a fork child of that holder, holding its handle, takes
 * the end over (allowed: include/lfipc/pipe.h) and sends. The reader's
 * CAS fails; it must judge the new holder (alive) and wait for its data.
 * Before, it returned -EPIPE anyway, without marking the end closed, and
 * its next recv read the child's message: data after end-of-file.
 */
static int go_fd[2], ack_fd[2], cpid_fd[2];

struct heir {
	lfipc_conn *e1;
};

/* The holder's child: on "go", take end 1 over, say so, then send. */
static int heir_main(void *p)
{
	struct heir *h = p;
	char c;
	int rc;

	if (read(go_fd[0], &c, 1) != 1)
		return 4;
	rc = lfipc_conn_poll(h->e1, LFIPC_NOWAIT); /* own(): takes it over */
	if (write(ack_fd[1], &rc, sizeof(rc)) != sizeof(rc))
		return 5;
	/* after the reader's verdict (the bug: -EPIPE at once, before the
	 * message could be there to read) */
	usleep(200 * 1000);
	return lfipc_conn_send(h->e1, "hello", 5, 10000 * MS) == 0 ? 0 : 6;
}

/* The holder: claim end 1, fork the heir, tell its pid, die holding it. */
static int holder_main(void *p)
{
	struct heir *h = p;
	pid_t c;

	if (lfipc_conn_poll(h->e1, LFIPC_NOWAIT) < 0)
		return 3;
	c = th_fork(heir_main, h);
	if (write(cpid_fd[1], &c, sizeof(c)) != sizeof(c))
		return 3;
	return 0; /* exits holding end 1, never closing it */
}

static void heir_takes_over(enum lfipc_test_point point, void *arg)
{
	int rc = -99;

	(void)arg;
	if (point != LFIPC_TP_PEER_JUDGED)
		return;
	lfipc__set_test_hook(NULL); /* once */
	cr_assert_eq(write(go_fd[1], "g", 1), 1);
	cr_assert_eq(read(ack_fd[0], &rc, sizeof(rc)), (ssize_t)sizeof(rc));
	cr_assert_geq(rc, 0, "the heir's takeover: %d", rc);
}

Test(races, a_pipe_end_taken_over_by_the_dead_holders_child_is_not_eof)
{
	struct heir h;
	lfipc_conn *e0;
	pid_t holder, heir = -1;
	char buf[16];
	size_t len = 0;

	/* the heir is re-parented to us when the holder exits */
	cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	cr_assert_eq(pipe(go_fd), 0);
	cr_assert_eq(pipe(ack_fd), 0);
	cr_assert_eq(pipe(cpid_fd), 0);
	cr_assert_eq(lfipc_pipe_create(r, "p", 0, true, &e0, &h.e1), 0);
	cr_assert_geq(lfipc_conn_poll(e0, LFIPC_NOWAIT), 0); /* claim end 0 */
	holder = th_fork(holder_main, &h);
	cr_assert_eq(read(cpid_fd[0], &heir, sizeof(heir)),
		     (ssize_t)sizeof(heir));
	cr_assert_eq(th_reap(holder, REAP_MS), 0);
	lfipc__set_test_hook(heir_takes_over);
	cr_assert_eq(lfipc_conn_recv(e0, buf, sizeof(buf), &len, 10000 * MS),
		     0, "end-of-file while a live heir holds the end");
	cr_assert_eq(len, 5);
	cr_assert_eq(memcmp(buf, "hello", 5), 0);
	cr_assert_eq(th_reap(heir, REAP_MS), 0);
	lfipc_conn_close(e0);
	lfipc_conn_close(h.e1);
	for (int i = 0; i < 2; i++) {
		close(go_fd[i]);
		close(ack_fd[i]);
		close(cpid_fd[i]);
	}
}

/* ---- a join that read an old count of write-offs ------------------------ */

/* A consumer that takes one task and dies holding it. */
static int take_a_task_and_die(void *p)
{
	char buf[16];
	size_t len;

	return lfipc_queue_get(p, buf, sizeof(buf), &len, 10000 * MS) ? 3 : 0;
}

/* One task written off: put, a consumer dies holding it, recovery. */
static void write_one_off(lfipc_queue *q)
{
	cr_assert_eq(lfipc_queue_put(q, "m", 1, LFIPC_NOWAIT), 0);
	cr_assert_eq(th_reap(th_fork(take_a_task_and_die, q), REAP_MS), 0);
	cr_assert_geq(lfipc_region_recover(r), 0);
}

static lfipc_queue *jq;
static int join_b = 1;

/* Join A read abandoned_seen = 0 (its first load), abandoned = 1 not yet:
 * a second write-off, and join B reports both (abandoned_seen 0 -> 2)
 * before A goes on. */
static void another_join_reports_more(enum lfipc_test_point point, void *arg)
{
	(void)arg;
	if (point != LFIPC_TP_JOIN_LOADED)
		return;
	lfipc__set_test_hook(NULL); /* once */
	write_one_off(jq);
	join_b = lfipc_queue_join(jq, 10000 * MS);
}

/*
 * "Each write-off is reported to one join only" (include/lfipc/queue.h):
 * a join that read the count before another join reported a later one
 * must not report again. Before, its failed CAS read the other's larger
 * value, found it unequal to its own and moved it back: -EOWNERDEAD to A,
 * and once more to the next join C, for write-offs B had reported.
 */
Test(races, a_join_with_an_old_count_does_not_report_write_offs_again)
{
	cr_assert_eq(
	    lfipc_queue_create(r, "q", 8, 16, LFIPC_QUEUE_JOINABLE, &jq), 0);
	write_one_off(jq);
	cr_assert_eq(lfipc_queue_tasks_abandoned(jq), 1);
	lfipc__set_test_hook(another_join_reports_more);
	cr_assert_eq(lfipc_queue_join(jq, 10000 * MS), 0, "join A");
	cr_assert_eq(join_b, -EOWNERDEAD, "join B");
	cr_assert_eq(lfipc_queue_tasks_abandoned(jq), 2);
	cr_assert_eq(lfipc_queue_join(jq, 10000 * MS), 0, "join C");
	lfipc_queue_close(jq);
}

/* ---- hostile values of the shared words --------------------------------- */

/*
 * abandoned_seen scribbled ahead of abandoned (a peer's stray write, a
 * corrupt block): with `(int64_t)(a - seen) > 0` every later join
 * compares its count with a seen that is ahead and reports nothing; up to
 * 2^63 - 1 write-offs go unreported. With `seen != a` the next join moved it
 * back and reported once: it healed. It must still heal.
 */
Test(races, a_scribbled_abandoned_seen_does_not_hide_later_write_offs)
{
	cr_assert_eq(
	    lfipc_queue_create(r, "q", 8, 16, LFIPC_QUEUE_JOINABLE, &jq), 0);
	write_one_off(jq);
	cr_assert_eq(lfipc_queue_join(jq, 10000 * MS), -EOWNERDEAD);
	atomic_store(&jq->h->abandoned_seen, UINT64_C(1) << 40);
	write_one_off(jq);
	cr_assert_eq(lfipc_queue_tasks_abandoned(jq), 2);
	cr_assert_eq(lfipc_queue_join(jq, 10000 * MS), -EOWNERDEAD,
		     "a write-off after the scribble, unreported");
	cr_assert_eq(lfipc_queue_join(jq, 10000 * MS), 0, "reported once");
	write_one_off(jq);
	cr_assert_eq(lfipc_queue_join(jq, 10000 * MS), -EOWNERDEAD);
	lfipc_queue_close(jq);
}

/*
 * peer_gone() judging a word that a peer rewrites without end (through
 * ever new dead tokens, so that every CAS may fail): its 8 rounds end in
 * "not gone", the wait sleeps by slices and looks again; the caller's
 * timeout must hold, and each verdict costs at most 8 liveness checks.
 */
static _Atomic uint32_t *pw;
static _Atomic int pw_stop;
static _Atomic unsigned judged;

static void *rewrite_peer_word(void *p)
{
	uint32_t v = atomic_load(pw), slot = OWN_TOKEN(v) >>
					     LFIPC_TOKEN_GEN_BITS;

	(void)p;
	for (uint32_t i = 1; !atomic_load(&pw_stop); i++)
		atomic_store(pw, OWN_CLAIMED | slot << LFIPC_TOKEN_GEN_BITS |
				     ((OWN_TOKEN(v) + 2 * i) &
				      ((1u << LFIPC_TOKEN_GEN_BITS) - 1)));
	return NULL;
}

static void count_judged(enum lfipc_test_point point, void *arg)
{
	(void)arg;
	if (point == LFIPC_TP_PEER_JUDGED)
		atomic_fetch_add(&judged, 1);
}

static int claim_and_exit(void *p)
{
	return lfipc_conn_poll(p, LFIPC_NOWAIT) < 0 ? 3 : 0;
}

Test(races, a_pipe_owner_word_rewritten_without_end_keeps_the_timeout)
{
	lfipc_conn *e0, *e1;
	pthread_t t;
	char buf[16];
	size_t len = 0;
	int64_t t0, dt;
	int rc;

	cr_assert_eq(lfipc_pipe_create(r, "p", 0, true, &e0, &e1), 0);
	cr_assert_geq(lfipc_conn_poll(e0, LFIPC_NOWAIT), 0);
	cr_assert_eq(th_reap(th_fork(claim_and_exit, e1), REAP_MS), 0);
	pw = e0->peer;
	atomic_store(&judged, 0);
	lfipc__set_test_hook(count_judged);
	cr_assert_eq(pthread_create(&t, NULL, rewrite_peer_word, NULL), 0);
	usleep(10000);
	t0 = th_now_ns();
	rc = lfipc_conn_recv(e0, buf, sizeof(buf), &len, 300 * MS);
	dt = th_now_ns() - t0;
	atomic_store(&pw_stop, 1);
	pthread_join(t, NULL);
	lfipc__set_test_hook(NULL);
	/* the rewrites reached peer_gone()'s window, and recv still left */
	cr_assert_geq(atomic_load(&judged), 1);
	cr_assert(rc == -EPIPE || rc == -ETIMEDOUT, "recv: %d", rc);
	cr_assert_lt(dt, 2000 * MS, "recv took %lld ms", (long long)(dt / MS));
	lfipc_conn_close(e0);
	lfipc_conn_close(e1);
}
