/* SPDX-License-Identifier: MIT */
/*
 * state_help.c - the helpers of state_help.h.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <lfipc.h>
#include <lfipc/bridge.h>

#include "bridge/state_help.h"
#include "bridge/world.h"
#include "common/testhelp.h"

const char *const WINDOW_16[] = {"--insecure", "--window", "16", NULL};

static int clear_forever(void *arg)
{
	(void)arg;
	for (;;)
		lfipc_queue_clear(W.qs);
	return 0;
}

/* A sender that peeks its window towards an endpoint nobody listens on. */
int send_nowhere(void *arg)
{
	lfipc_bridge *b;

	if (lfipc_bridge_send_open(W.rs, "q", "tcp://127.0.0.1:1", arg, &b))
		return 3;
	lfipc_bridge_run(b);
	return 4;
}

/* The source queue's status (asserted to succeed). */
void qstat(lfipc_queue_status *st)
{
	memset(st, 0, sizeof(*st));
	st->struct_size = sizeof(*st);
	cr_assert_eq(lfipc_queue_stat(W.qs, st), 0);
}

/* W.prod: a clearer of the source stopped while it holds the queue lock
 * (our own clear then says -EBUSY; busy for over a second: a few tries).
 * A dead process's peeked slots cannot become orphans until it dies. */
void stop_a_clearer_holding_the_lock(void)
{
	uint64_t seed = (uint64_t)getpid();

	W.prod = th_fork(clear_forever, NULL);
	for (int tries = 0;;) {
		int st;

		usleep(2000 + th_rand(&seed) % 3000);
		kill(W.prod, SIGSTOP);
		cr_assert_eq(waitpid(W.prod, &st, WUNTRACED), W.prod);
		if (lfipc_queue_clear(W.qs) == -EBUSY)
			return;
		kill(W.prod, SIGCONT);
		if (++tries == 300)
			cr_skip_test(
			    "never caught the clearer holding the lock");
	}
}

/* Wait (20 s at most) until the source queue has n messages peeked. */
void wait_peeked(size_t n)
{
	lfipc_queue_status st;

	for (int i = 0;; i++) {
		qstat(&st);
		if (st.reading >= n)
			break;
		cr_assert_lt(i, 20000, "the sender peeked %zu of %zu",
			     st.reading, n);
		usleep(1000);
	}
}

/* Make the source queue's sender state as a sender with options *o does
 * (opened and closed at once, towards nowhere). */
void make_state(const lfipc_bridge_opts *o)
{
	lfipc_bridge *b;

	cr_assert_eq(
	    lfipc_bridge_send_open(W.rs, "q", "tcp://127.0.0.1:1", o, &b), 0);
	lfipc_bridge_close(b);
}

/* In a forked hostile peer: open the source queue and the sender's state,
 * peek n messages (into m[], if m), and return the state's words (NULL on
 * any failure). The peer then scribbles and dies holding the peeks. */
uint32_t peer_tags[64];

uint64_t *peer_peeks(const void **m, int n)
{
	lfipc_region *r;
	lfipc_queue *q;
	lfipc_array *a;
	const void *p;
	size_t l;

	if (lfipc_region_open(W.src, &r) || lfipc_queue_open(r, "q", &q) ||
	    lfipc_array_open(r, "q.btx", &a))
		return NULL;
	for (int i = 0; i < n; i++) {
		if (lfipc_queue_peek(q, &p, &l, LFIPC_NOWAIT))
			return NULL;
		if (i < 64 && lfipc_queue_peeked_seq(q, p, &peer_tags[i]))
			return NULL;
		if (m)
			m[i] = p;
	}
	return lfipc_array_data(a);
}

/* Write the entry at the index of number at in a table of table entries
 * (the entries start at word 16, three words each, as a sender makes
 * them: seq, offset, tag): number seq, offset off, no tag (0: matched by
 * its offset alone). put_entry_tag(): with tag, the slot's seq. */
void put_entry(uint64_t *w, size_t table, uint64_t at, uint64_t seq,
	       uint64_t off)
{
	w[16 + 3 * (at % table)] = seq;
	w[17 + 3 * (at % table)] = off;
	w[18 + 3 * (at % table)] = 0;
}

void put_entry_tag(uint64_t *w, size_t table, uint64_t at, uint64_t seq,
		   uint64_t off, uint32_t tag)
{
	put_entry(w, table, at, seq, off);
	w[18 + 3 * (at % table)] = (UINT64_C(1) << 32) | tag;
}

/* Write a sender's next number and the run [from, end) it was releasing
 * (its end first, as a sender does). */
void put_run(uint64_t *w, uint64_t next, uint64_t from, uint64_t end)
{
	w[STATE_TX_NEXT] = next;
	w[STATE_TX_RELEASING_END] = end;
	w[STATE_TX_RELEASING] = from;
}

/* Start both sides (the sender with args) and the consumer, which marks
 * what arrives in the returned Array "seen" of the destination. */
lfipc_array *start_all(const char *const *args)
{
	lfipc_array *seen;

	cr_assert_eq(
	    lfipc_array_create(W.rd, "seen", LFIPC_U8, 1024, false, &seen), 0);
	start_rx(INSECURE);
	start_tx(args);
	W.cons = th_fork(consumer, W.dst);
	return seen;
}

/* Run the hostile peer in a child and reap it, then start_all(args). */
lfipc_array *after_a_peer(int (*peer)(void *), void *arg,
			  const char *const *args)
{
	cr_assert_eq(th_reap(th_fork(peer, arg), 10000), 0);
	return start_all(args);
}

/* Shut the source down and expect both sides and the consumer to end
 * cleanly. */
void shut_down_all(void)
{
	lfipc_queue_shutdown(W.qs);
	expect_exit0(&W.tx, "sender");
	expect_exit0(&W.rx, "receiver");
	expect_exit0(&W.cons, "consumer");
}

/* The options of a side over plain TCP with window (0: the default). */
lfipc_bridge_opts plain(unsigned window)
{
	lfipc_bridge_opts o;

	memset(&o, 0, sizeof(o));
	o.insecure = true;
	o.window = window;
	return o;
}

/* Whether every number in [from, to) is in "seen" (delivered at least
 * once), waiting up to ms for it. */
bool seen_all(lfipc_array *seen, uint64_t from, uint64_t to, int ms)
{
	for (int i = 0;; i++) {
		uint64_t k = from;

		for (; k < to; k++) {
			int64_t v;

			cr_assert_eq(lfipc_array_load(seen, k, &v), 0);
			if (v == 0)
				break;
		}
		if (k == to)
			return true;
		if (i == ms)
			return false;
		usleep(1000);
	}
}

/* Wait (ms at most) until the source is empty and each of the numbers
 * [0, n) was delivered. */
void wait_all_delivered(lfipc_array *seen, uint64_t n, int ms)
{
	for (int i = 0;
	     lfipc_queue_qsize(W.qs) > 0 || !seen_all(seen, 0, n, 0); i++) {
		cr_assert_lt(i, ms, "not all delivered");
		usleep(1000);
	}
}

/* Put the messages numbered [from, to) into the source. */
void put_range(uint64_t from, uint64_t to)
{
	for (uint64_t i = from; i < to; i++) {
		struct msg m = {i, check_of(i)};

		cr_assert_eq(lfipc_queue_put(W.qs, &m, sizeof(m), LFIPC_NOWAIT),
			     0);
	}
}

/* Each of the numbers [0, n) delivered, and no more often than the
 * duplicates both sides counted as possible. */
void expect_each_once(lfipc_array *seen, uint64_t n)
{
	lfipc_bridge_stats s, t;
	uint64_t extra = 0;

	stats(W.rs, &s);
	stats(W.rd, &t);
	for (uint64_t i = 0; i < n; i++) {
		int64_t v;

		cr_assert_eq(lfipc_array_load(seen, i, &v), 0);
		cr_expect_geq(v, 1, "message %llu lost", (unsigned long long)i);
		if (v > 1)
			extra += (uint64_t)v - 1;
	}
	cr_log_info(
	    "%llu extra copies, %llu counted possible",
	    (unsigned long long)extra,
	    (unsigned long long)(s.tx_dup_possible + t.rx_dup_possible));
	cr_expect_leq(
	    extra, s.tx_dup_possible + t.rx_dup_possible,
	    "%llu extra copies delivered (%llu counted possible)",
	    (unsigned long long)extra,
	    (unsigned long long)(s.tx_dup_possible + t.rx_dup_possible));
}
