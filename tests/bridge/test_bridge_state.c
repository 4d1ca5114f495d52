/* SPDX-License-Identifier: MIT */
/*
 * test_bridge_state.c - the sender's state Array "<queue>.btx" against a
 * hostile peer and dead claims: a restarted sender that must not peek past
 * dead claims, a window kept to the state's table, scribbled states (in
 * process and through the real program), every shape at and near the
 * limits, a scribbled entry one table back, and the exact error for
 * another kind of object under the state's name, a state without its
 * Lock and a TX_NEXT above its limit, more orphans than the table holds,
 * the stream id rewritten while the sender runs, a sender killed in its
 * recovery of a run being released, a run scribbled at TX_NEXT,
 * orphans that no rescue can take, (disabled: a known loss) a new
 * message in the slot of an entry whose message another consumer took,
 * a sender opened again in the process that closed one, senders killed
 * over and over in their recovery, and a sender at the limit of TX_NEXT.
 * The world is world.h's, the binary test_bridge's.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <lfipc.h>
#include <lfipc/bridge.h>

#include "bridge/world.h"
#include "common/testhelp.h"

/* ---- a restarted sender while dead claims cannot be rescued ------------- */

static int clear_forever(void *arg)
{
	(void)arg;
	for (;;)
		lfipc_queue_clear(W.qs);
	return 0;
}

/* A sender that peeks its window towards an endpoint nobody listens on. */
static int send_nowhere(void *arg)
{
	lfipc_bridge *b;

	if (lfipc_bridge_send_open(W.rs, "q", "tcp://127.0.0.1:1", arg, &b))
		return 3;
	lfipc_bridge_run(b);
	return 4;
}

static void qstat(lfipc_queue_status *st)
{
	memset(st, 0, sizeof(*st));
	st->struct_size = sizeof(*st);
	cr_assert_eq(lfipc_queue_stat(W.qs, st), 0);
}

/* W.prod: a clearer of the source stopped while it holds the queue lock
 * (our own clear then says -EBUSY; busy for over a second: a few tries).
 * A dead process's peeked slots cannot become orphans until it dies. */
static void stop_a_clearer_holding_the_lock(void)
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
			cr_skip_test("never caught the clearer holding the lock");
	}
}

/* Wait (20 s at most) until the source queue has n messages peeked. */
static void wait_peeked(size_t n)
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

/*
 * Found by a hostile review: a clearer stopped while it holds the source
 * queue's lock keeps a dead sender's peeked slots from becoming orphans
 * (a rescue only tries the lock). The restarted sender's recovery then
 * peeked every new message while it waited for them (5,984 of 6,000,
 * beyond its 4,160-entry table: messages forgotten, others sent twice).
 * It must peek nothing new while dead claims wait, give up after its 5 s,
 * and count each of the dead sender's messages as a possible duplicate.
 */
Test(bridge, a_restarted_sender_peeks_nothing_new_while_dead_claims_wait,
     .fini = fini, .timeout = 120)
{
	lfipc_bridge_opts o;
	lfipc_queue_status st;
	lfipc_bridge_stats s;
	lfipc_bridge *b;

	world_up(8192, 16, 16);
	memset(&o, 0, sizeof(o));
	o.insecure = true;
	o.window = 16;
	stop_a_clearer_holding_the_lock();
	for (uint64_t i = 0; i < 6000; i++)
		cr_assert_eq(lfipc_queue_put(W.qs, &i, sizeof(i), LFIPC_NOWAIT),
			     0);
	/* sender A peeks its window, then dies: 16 dead claims */
	W.tx = th_fork(send_nowhere, &o);
	wait_peeked(16);
	usleep(50000);
	kill_reap(&W.tx);
	qstat(&st);
	cr_assert_eq(st.dead_claims, 16);
	cr_assert_eq(st.reading, 0);
	/* sender B: recovery waits (the lock stays held), peeks nothing */
	cr_assert_eq(lfipc_bridge_send_open(W.rs, "q", "tcp://127.0.0.1:1",
					    &o, &b),
		     0);
	qstat(&st);
	cr_assert_eq(st.reading, 0, "sender B peeked %zu", st.reading);
	cr_assert_eq(st.dead_claims, 16);
	lfipc_bridge_close(b);
	stats(W.rs, &s);
	cr_assert_eq(s.tx_dup_possible, 16);
	kill_reap(&W.prod);
}

/* Make the source queue's sender state as a sender with options *o does
 * (opened and closed at once, towards nowhere). */
static void make_state(const lfipc_bridge_opts *o)
{
	lfipc_bridge *b;

	cr_assert_eq(lfipc_bridge_send_open(W.rs, "q", "tcp://127.0.0.1:1", o,
					    &b),
		     0);
	lfipc_bridge_close(b);
}

/* The sender's state is sized for the window of the sender that made it
 * (16 bytes per message in the source region): a later sender asking for
 * more keeps to it, and peeks no more than it holds. */
Test(bridge, a_sender_keeps_to_the_window_its_state_was_made_for,
     .fini = fini, .timeout = 120)
{
	lfipc_bridge_opts o;
	lfipc_queue_status st;
	lfipc_array *a;

	world_up(1024, 16, 16);
	memset(&o, 0, sizeof(o));
	o.insecure = true;
	o.window = 16;
	make_state(&o);
	cr_assert_eq(lfipc_array_open(W.rs, "q.btx", &a), 0);
	cr_assert_eq(lfipc_array_len(a), 16 + 2 * (16 + 64));
	lfipc_array_close(a);
	for (uint64_t i = 0; i < 500; i++)
		cr_assert_eq(lfipc_queue_put(W.qs, &i, sizeof(i), LFIPC_NOWAIT),
			     0);
	o.window = 400;
	W.tx = th_fork(send_nowhere, &o);
	wait_peeked(16);
	usleep(200000);
	qstat(&st);
	cr_assert_eq(st.reading, 16, "window 16 made the state, peeked %zu",
		     st.reading);
	kill_reap(&W.tx);
}

/* A state Array of a sender's shape but scribbled by a hostile peer: every
 * table length at and near the limits, TX_NEXT at 0, 1 and near 2^64,
 * entries pointing anywhere, TX_RELEASING runs of any width. A sender
 * refuses it (-EPROTO) or recovers and runs; it never crashes, hangs or
 * touches memory out of bounds (run under AddressSanitizer). */
struct scribble {
	size_t table;
	uint64_t next, rel, rel_end, seed;
	int mode; /* 0 random words, 1 entries around next, 2 all at next */
};

/* The real program on the scribbled state, to nowhere, stopped by SIGTERM
 * after a while (forked children that make threads meet ThreadSanitizer's
 * "dup thread with used id"): 0 recovered and ran, 3 refused. */
static int run_scribbled(void)
{
	const char *v[] = {"send",  "--to",	"tcp://127.0.0.1:1",
			   "--region", W.src, "--queue", "q",
			   "--insecure", NULL};
	const char *log;
	char path[300];
	pid_t pid;
	int st;

	snprintf(path, sizeof(path), "%s/log", W.dir);
	unlink(path);
	pid = spawn(v);
	usleep(300000);
	kill(pid, SIGTERM);
	st = th_reap(pid, 30000);
	log = log_tail();
	if (strstr(log, "Sanitizer") || strstr(log, "runtime error"))
		return 100;
	if (st == 1 && strstr(log, "makes no sense"))
		return 3;
	return st;
}

Test(bridge, a_scribbled_state_is_refused_or_recovered, .fini = fini,
     .timeout = 600)
{
	const uint64_t top = UINT64_MAX;
	const struct scribble c[] = {
	    {1 + 64, 1, 0, 0, 1, 0},
	    {1 + 64, 0, 0, 0, 2, 0},
	    {1 + 64, top, 0, 0, 3, 1},
	    {1 + 64, top - 1, top - 3, top, 4, 2},
	    {16 + 64, 1000, 990, 2000, 5, 1},
	    {16 + 64, 1000, 990, 995, 6, 2},
	    {16 + 64, 3, 1, 0, 7, 1},
	    {16 + 64, top, 1, top, 8, 0},
	    {4096 + 64, 100000, 99000, 99999, 9, 1},
	    {4096 + 64, top - 10, top - 4000, top - 20, 10, 1},
	    {LFIPC_BRIDGE_MAX_WINDOW + 64, 1ull << 40, (1ull << 40) - 100,
	     (1ull << 40) + 100, 11, 1},
	    {LFIPC_BRIDGE_MAX_WINDOW + 64, top, top - 70000, top, 12, 2},
	    {LFIPC_BRIDGE_MAX_WINDOW + 64, 5, 0, 0, 13, 0},
	    {16 + 64, 200, 150, 250, 14, 3},
	};

	world_up(1024, 16, 16);
	for (uint64_t i = 0; i < 500; i++)
		cr_assert_eq(lfipc_queue_put(W.qs, &i, sizeof(i), LFIPC_NOWAIT),
			     0);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		size_t len = 16 + 2 * c[i].table;
		uint64_t seed = c[i].seed, *w;
		lfipc_array *a;
		int st;

		cr_assert_eq(lfipc_array_create(W.rs, "q.btx", LFIPC_U64, len,
						true, &a),
			     0, "case %zu", i);
		w = lfipc_array_data(a);
		for (size_t k = 0; k < len; k++)
			w[k] = th_rand(&seed);
		w[0] = 0x3130585442464c4cull;
		w[1] = seed | 1;
		w[2] = c[i].next;
		w[3] = c[i].rel;
		w[11] = c[i].rel_end;
		for (size_t k = 0; k < c[i].table; k++) {
			uint64_t s = th_rand(&seed);

			if (c[i].mode == 1) /* a plausible seq, any offset */
				s = c[i].next - (th_rand(&seed) % (c[i].table + 3));
			if (c[i].mode == 2)
				s = c[i].next - k;
			if (c[i].mode == 3) /* consistent: seq at its index */
				s = c[i].next - c[i].table - 1 +
				    ((k - (c[i].next - c[i].table - 1)) %
				     c[i].table);
			w[16 + 2 * k] = s;
		}
		st = run_scribbled();
		cr_expect(st == 0 || st == 3,
			  "case %zu: sender ended with %d; log: %s", i, st,
			  log_tail());
		cr_log_info("case %zu: %s", i, st == 0 ? "recovered, ran"
					       : st == 3 ? "refused"
							 : "FAILED");
		lfipc_array_close(a);
		cr_assert_eq(lfipc_object_remove(W.rs, "q.btx"), 0);
		/* give back what the dead or closed sender held */
		lfipc_region_recover(W.rs);
	}
}

/* The lengths at and next to the limits of what a sender makes, the fixed
 * length of the versions before round 11, the other element types, an
 * Array without its Lock, and another kind of object
 * under the name: accepted exactly when a sender could have made it. */
Test(bridge, state_shapes_at_the_limits, .fini = fini, .timeout = 120)
{
	static const struct {
		lfipc_type type;
		size_t len;
		bool lock;
		int want;
	} c[] = {
	    {LFIPC_U64, 1, true, -EPROTO},
	    {LFIPC_U64, 16, true, -EPROTO},
	    {LFIPC_U64, 16 + 2 * 65 - 2, true, -EPROTO},
	    {LFIPC_U64, 16 + 2 * 65 - 1, true, -EPROTO},
	    {LFIPC_U64, 16 + 2 * 65, true, 0}, /* window 1 */
	    {LFIPC_U64, 16 + 2 * 65 + 1, true, -EPROTO},
	    {LFIPC_U64, 16 + 2 * 65 + 2, true, 0},
	    {LFIPC_U64, 16 + 2 * (LFIPC_BRIDGE_MAX_WINDOW + 64) - 1, true,
	     -EPROTO},
	    {LFIPC_U64, 16 + 2 * (LFIPC_BRIDGE_MAX_WINDOW + 64), true, 0},
	    {LFIPC_U64, 16 + 2 * (LFIPC_BRIDGE_MAX_WINDOW + 64) + 2, true,
	     -EPROTO},
	    {LFIPC_U64, 16 + 2 * (4096 + 64), true, 0}, /* before round 11 */
	    {LFIPC_U64, 16 + 2 * (16 + 64), false, -EPROTO}, /* no Lock */
	    {LFIPC_U8, 16 + 2 * (16 + 64), true, -EPROTO},
	    {LFIPC_U32, 16 + 2 * (16 + 64), true, -EPROTO},
	    {LFIPC_F64, 16 + 2 * (16 + 64), true, -EPROTO},
	};
	lfipc_bridge_opts o;
	lfipc_bridge_stats s;
	lfipc_queue *q;
	lfipc_bridge *b = NULL;
	int rc;

	world_up(64, 16, 16);
	memset(&o, 0, sizeof(o));
	o.insecure = true;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		lfipc_array *a;

		b = NULL;
		rc = lfipc_array_create(W.rs, "q.btx", c[i].type, c[i].len,
					c[i].lock, &a);
		cr_assert_eq(rc, 0, "case %zu: create %d", i, rc);
		rc = lfipc_bridge_send_open(W.rs, "q", "tcp://127.0.0.1:1", &o,
					    &b);
		cr_expect_eq(rc, c[i].want, "case %zu: %d", i, rc);
		if (rc == 0) {
			lfipc_bridge_close(b);
			stats(W.rs, &s);
			cr_assert(s.has_tx);
		} else { /* stat refuses what send_open refuses */
			cr_expect_eq(lfipc_bridge_stats_read(W.rs, "q", &s),
				     c[i].want, "case %zu", i);
		}
		lfipc_array_close(a);
		cr_assert_eq(lfipc_object_remove(W.rs, "q.btx"), 0);
	}
	/* a Queue under the state's name */
	cr_assert_eq(lfipc_queue_create(W.rs, "q.btx", 4, 16, 0, &q), 0);
	rc = lfipc_bridge_send_open(W.rs, "q", "tcp://127.0.0.1:1", &o, &b);
	cr_expect_neq(rc, 0);
	cr_log_info("a Queue named q.btx: send_open %d (%s)", rc,
		    strerror(-rc));
	lfipc_queue_close(q);
	cr_assert_eq(lfipc_object_remove(W.rs, "q.btx"), 0);
}

/* A scribbled state whose oldest entry is one number further back than
 * any sender leaves (TX_NEXT - table - 1, at the index of TX_NEXT - 1):
 * recovery must not send one message under two numbers. */
struct alias_arg {
	size_t table;
};

/* In a forked hostile peer: open the source queue and the sender's state,
 * peek n messages (into m[], if m), and return the state's words (NULL on
 * any failure). The peer then scribbles and dies holding the peeks. */
static uint64_t *peer_peeks(const void **m, int n)
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
		if (m)
			m[i] = p;
	}
	return lfipc_array_data(a);
}

/* Write the entry at the index of number at in a table of table entries
 * (the entries start at word 16, two words each): number seq, offset
 * off. */
static void put_entry(uint64_t *w, size_t table, uint64_t at, uint64_t seq,
		      uint64_t off)
{
	w[16 + 2 * (at % table)] = seq;
	w[17 + 2 * (at % table)] = off;
}

/* Start both sides (the sender with args) and the consumer, which marks
 * what arrives in the returned Array "seen" of the destination. */
static lfipc_array *start_all(const char *const *args)
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
static lfipc_array *after_a_peer(int (*peer)(void *), void *arg,
				 const char *const *args)
{
	cr_assert_eq(th_reap(th_fork(peer, arg), 10000), 0);
	return start_all(args);
}

/* Shut the source down and expect both sides and the consumer to end
 * cleanly. */
static void shut_down_all(void)
{
	lfipc_queue_shutdown(W.qs);
	expect_exit0(&W.tx, "sender");
	expect_exit0(&W.rx, "receiver");
	expect_exit0(&W.cons, "consumer");
}

static int peek_and_scribble(void *arg)
{
	const struct alias_arg *x = arg;
	const void *m[2];
	uint64_t *w, next = 200;

	if (!(w = peer_peeks(m, 2)))
		return 10;
	w[2] = next;
	put_entry(w, x->table, next - 1, next - x->table - 1,
		  (uint64_t)((uintptr_t)m[0] - (uintptr_t)w));
	put_entry(w, x->table, next - 2, next - 2,
		  (uint64_t)((uintptr_t)m[1] - (uintptr_t)w));
	_exit(0); /* dies holding the two peeks */
}

Test(bridge, a_scribbled_entry_one_table_back_sends_no_message_twice,
     .fini = fini, .timeout = 120)
{
	static const char *const win[] = {"--insecure", "--window", "16",
					  NULL};
	struct alias_arg x = {16 + 64};
	lfipc_bridge_opts o;
	lfipc_bridge_stats s, t;
	lfipc_array *seenv;
	uint8_t *seen;

	world_up(1024, 1024, MSG);
	memset(&o, 0, sizeof(o));
	o.insecure = true;
	o.window = 16;
	make_state(&o);
	for (uint64_t i = 0; i < 10; i++) {
		struct msg m = {i, check_of(i)};

		cr_assert_eq(
		    lfipc_queue_put(W.qs, &m, sizeof(m), LFIPC_NOWAIT), 0);
	}
	seenv = after_a_peer(peek_and_scribble, &x, win);
	for (int i = 0; lfipc_queue_qsize(W.qs) > 0 || i < 100; i++) {
		cr_assert_lt(i, 10000, "not all sent");
		usleep(1000);
	}
	usleep(1500000);
	shut_down_all();
	seen = lfipc_array_data(seenv);
	stats(W.rs, &s);
	stats(W.rd, &t);
	for (uint64_t i = 0; i < 10; i++) {
		cr_expect_geq(seen[i], 1, "message %llu lost",
			      (unsigned long long)i);
		cr_expect(seen[i] <= 1 + s.tx_dup_possible + t.rx_dup_possible,
			  "message %llu delivered %u times (%llu counted "
			  "possible)",
			  (unsigned long long)i, seen[i],
			  (unsigned long long)(s.tx_dup_possible +
					       t.rx_dup_possible));
	}
	lfipc_array_close(seenv);
}

/* A sender's state scribbled by a peer (every word but the Array's shape:
 * the magic word, the stream, TX_NEXT, the ambiguous run and each entry
 * random, or small numbers near the table's size) costs a clear error or
 * a recovery, never a crash or a read out of bounds (run-all runs this
 * under AddressSanitizer). */
Test(bridge, a_scribbled_sender_state_costs_an_error_or_a_recovery,
     .fini = fini, .timeout = 300)
{
	lfipc_bridge_opts o;
	lfipc_bridge_stats s;
	uint64_t seed = (uint64_t)getpid() * 2654435761u;
	int opened = 0;

	world_up(64, 16, 16);
	memset(&o, 0, sizeof(o));
	o.insecure = true;
	o.window = 16;
	for (uint64_t i = 0; i < 40; i++)
		cr_assert_eq(lfipc_queue_put(W.qs, &i, sizeof(i), LFIPC_NOWAIT),
			     0);
	for (int round = 0; round < 300; round++) {
		lfipc_bridge *b = NULL;
		lfipc_array *a;
		size_t len;
		int rc;

		cr_assert_eq(lfipc_bridge_send_open(W.rs, "q",
						    "tcp://127.0.0.1:1", &o,
						    &b),
			     0, "round %d: a fresh state", round);
		lfipc_bridge_close(b);
		cr_assert_eq(lfipc_array_open(W.rs, "q.btx", &a), 0);
		len = lfipc_array_len(a);
		for (size_t i = round % 3 == 0 ? 0 : 1; i < len; i++) {
			uint64_t r = th_rand(&seed);
			int64_t v = (int64_t)(round % 2 ? r : r % (3 * len));

			if (th_rand(&seed) % 4 != 0)
				cr_assert_eq(lfipc_array_store(a, i, v), 0);
		}
		lfipc_array_close(a);
		b = NULL;
		rc = lfipc_bridge_send_open(W.rs, "q", "tcp://127.0.0.1:1", &o,
					    &b);
		cr_assert(rc == 0 || rc == -EPROTO, "round %d: %d", round, rc);
		if (rc == 0) {
			opened++;
			lfipc_bridge_close(b);
		} else {
			cr_assert_null(b);
		}
		rc = lfipc_bridge_stats_read(W.rs, "q", &s);
		cr_assert(rc == 0 || rc == -EPROTO, "round %d: stat %d",
			  round, rc);
		cr_assert_eq(lfipc_object_remove(W.rs, "q.btx"), 0);
	}
	cr_log_info("scribbled states: %d recovered from, %d refused", opened,
		    300 - opened);
	cr_assert_gt(opened, 0);
}

/* ---- hostile state objects: the exact error ---------------------------- */

#define STATE_TX_MAGIC 0x3130585442464c4cull /* word 0 of a sender's state */
#define STATE_TX_NEXT 2 /* the word of the sender's next sequence number */
#define STATE_TX_RELEASING 3 /* the first number of the run being released */
#define STATE_TX_RELEASING_END 11 /* and its end */

static const char *const NOWHERE = "tcp://127.0.0.1:1";

/* The options of a side over plain TCP with window (0: the default). */
static lfipc_bridge_opts plain(unsigned window)
{
	lfipc_bridge_opts o;

	memset(&o, 0, sizeof(o));
	o.insecure = true;
	o.window = window;
	return o;
}

/* The objects in region r: a refused open must have made none. */
static unsigned objects_in(lfipc_region *r)
{
	lfipc_object_entry e;
	unsigned cursor = 0, n = 0;
	int rc;

	LFIPC_STATUS_INIT(e);
	while ((rc = lfipc_object_next(r, &cursor, &e)) == 1)
		n++;
	cr_assert_eq(rc, 0);
	return n;
}

/* Take the world down now (the test's .fini then does nothing more) and
 * check that nothing of it is left in /dev/shm. */
static void expect_nothing_left(void)
{
	char src[sizeof(W.src)], dst[sizeof(W.dst)];
	struct dirent *d;
	DIR *shm;

	memcpy(src, W.src, sizeof(src)); /* "/name": /dev/shm/name */
	memcpy(dst, W.dst, sizeof(dst));
	cr_assert(src[0] == '/' && dst[0] == '/');
	fini();
	shm = opendir("/dev/shm");
	cr_assert(shm);
	while ((d = readdir(shm)))
		cr_expect(!strstr(d->d_name, src + 1) &&
			      !strstr(d->d_name, dst + 1),
			  "left in /dev/shm: %s", d->d_name);
	closedir(shm);
}

/* Another kind of object under the name of a side's state (a peer's, or
 * junk) is refused as an Array of the wrong shape is, with -EPROTO (it
 * was -EINVAL, the error of a bad argument), by the side's open and by
 * stat alike; the refusals make no object. */
Test(bridge, a_queue_under_the_state_name_is_refused_with_eproto, .fini = fini,
     .timeout = 60)
{
	lfipc_bridge_opts o = plain(0);
	lfipc_bridge_stats s;
	lfipc_bridge *b;
	lfipc_queue *q, *q2;

	world_up(64, 16, 16);
	cr_assert_eq(lfipc_queue_create(W.rs, "q.btx", 4, 16, 0, &q), 0);
	b = NULL;
	cr_expect_eq(lfipc_bridge_send_open(W.rs, "q", NOWHERE, &o, &b),
		     -EPROTO);
	cr_expect_null(b);
	cr_expect_eq(lfipc_bridge_stats_read(W.rs, "q", &s), -EPROTO);
	/* the receiver's state, "q.brx", the same (refused before a bind) */
	cr_assert_eq(lfipc_queue_create(W.rd, "q.brx", 4, 16, 0, &q2), 0);
	b = NULL;
	cr_expect_eq(
	    lfipc_bridge_recv_open(W.rd, "q", "tcp://127.0.0.1:*", &o, &b),
	    -EPROTO);
	cr_expect_null(b);
	cr_expect_eq(lfipc_bridge_stats_read(W.rd, "q", &s), -EPROTO);
	lfipc_queue_close(q);
	lfipc_queue_close(q2);
	cr_expect_eq(objects_in(W.rs), 2, "the source: q and q.btx alone");
	cr_expect_eq(objects_in(W.rd), 2, "the destination: q and q.brx alone");
	cr_assert_eq(lfipc_object_remove(W.rs, "q.btx"), 0);
	cr_assert_eq(lfipc_object_remove(W.rd, "q.brx"), 0);
	expect_nothing_left();
}

/* A state Array of a sender's element type and length, whose words are a
 * sender's, but made without its Lock: stat refuses it exactly as
 * send_open does (it used to read its counters). */
Test(bridge, a_state_without_its_lock_is_refused_by_send_open_and_stat_alike,
     .fini = fini, .timeout = 60)
{
	lfipc_bridge_opts o = plain(0);
	lfipc_bridge_stats s;
	lfipc_bridge *b = NULL;
	lfipc_array *a;
	uint64_t *w;
	int rc, rs;

	world_up(64, 16, 16);
	cr_assert_eq(lfipc_array_create(W.rs, "q.btx", LFIPC_U64,
					16 + 2 * (16 + 64), false, &a),
		     0);
	w = lfipc_array_data(a);
	w[0] = STATE_TX_MAGIC;
	w[1] = 12345; /* the stream */
	w[STATE_TX_NEXT] = 1;
	rc = lfipc_bridge_send_open(W.rs, "q", NOWHERE, &o, &b);
	rs = lfipc_bridge_stats_read(W.rs, "q", &s);
	cr_expect_eq(rc, -EPROTO, "send_open %d", rc);
	cr_expect_null(b);
	cr_expect_eq(rs, rc, "stat %d, send_open %d", rs, rc);
	lfipc_array_close(a);
	cr_expect_eq(objects_in(W.rs), 2, "the source: q and q.btx alone");
	cr_assert_eq(lfipc_object_remove(W.rs, "q.btx"), 0);
	expect_nothing_left();
}

static void *take_and_give(void *lock)
{
	int rc = lfipc_lock_acquire(lock, LFIPC_NOWAIT);

	if (rc == 0)
		lfipc_lock_release(lock);
	return (void *)(intptr_t)rc;
}

/* Whether the Lock of a is free: another thread of this process (a Lock
 * is owned by a thread) takes it at once, and gives it back. */
static bool lock_free(lfipc_array *a)
{
	pthread_t t;
	void *rc;

	cr_assert_eq(
	    pthread_create(&t, NULL, take_and_give, lfipc_array_lock(a)), 0);
	cr_assert_eq(pthread_join(t, &rc), 0);
	return rc == NULL;
}

/* The sender's next sequence number (TX_NEXT) is at most 2^63 (the
 * limits in bridge/internal.h). A state at the limit opens and reads; one
 * above it is refused with -EPROTO by send_open and stat alike, and a
 * refused open leaves the state's Lock free. */
Test(bridge, a_tx_next_above_2_63_is_refused_by_send_open_and_stat,
     .fini = fini, .timeout = 60)
{
	static const struct {
		uint64_t next;
		int want;
	} c[] = {
	    {UINT64_C(1) << 63, 0},
	    {(UINT64_C(1) << 63) + 1, -EPROTO},
	    {UINT64_MAX, -EPROTO},
	    {UINT64_MAX - 1, -EPROTO},
	    {1, 0},
	};
	lfipc_bridge_opts o = plain(16);
	lfipc_bridge_stats s;
	lfipc_array *a;
	uint64_t *w;

	world_up(64, 16, 16);
	make_state(&o);
	cr_assert_eq(lfipc_array_open(W.rs, "q.btx", &a), 0);
	w = lfipc_array_data(a);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		lfipc_bridge *b = NULL;
		int rc;

		w[STATE_TX_NEXT] = c[i].next;
		rc = lfipc_bridge_stats_read(W.rs, "q", &s);
		cr_expect_eq(rc, c[i].want, "case %zu: stat %d", i, rc);
		if (rc == 0)
			cr_expect_eq(s.tx_next_seq, c[i].next, "case %zu", i);
		rc = lfipc_bridge_send_open(W.rs, "q", NOWHERE, &o, &b);
		cr_expect_eq(rc, c[i].want, "case %zu: send_open %d", i, rc);
		if (rc == 0)
			lfipc_bridge_close(b);
		else
			cr_expect_null(b);
		cr_expect(lock_free(a), "case %zu: the Lock is left held", i);
	}
	lfipc_array_close(a);
	cr_expect_eq(objects_in(W.rs), 2, "the source: q and q.btx alone");
	cr_assert_eq(lfipc_object_remove(W.rs, "q.btx"), 0);
	expect_nothing_left();
}

/* The state's Lock is an RLock, which grants its holder a second acquire:
 * a second sender (or receiver) opened by the thread that runs the first
 * must still get -EBUSY, and the first's close must leave the state free
 * for the next. */
Test(bridge, a_second_side_of_the_same_thread_is_busy, .fini = fini,
     .timeout = 60)
{
	lfipc_bridge_opts o = plain(16);
	lfipc_bridge *b1 = NULL, *b2 = NULL;

	world_up(64, 16, 16);
	cr_assert_eq(lfipc_bridge_send_open(W.rs, "q", NOWHERE, &o, &b1), 0);
	cr_expect_eq(lfipc_bridge_send_open(W.rs, "q", NOWHERE, &o, &b2),
		     -EBUSY);
	cr_expect_null(b2);
	lfipc_bridge_close(b1);
	b1 = NULL;
	cr_assert_eq(lfipc_bridge_send_open(W.rs, "q", NOWHERE, &o, &b1), 0);
	lfipc_bridge_close(b1);

	cr_assert_eq(
	    lfipc_bridge_recv_open(W.rd, "q", "tcp://127.0.0.1:*", &o, &b1), 0);
	cr_expect_eq(
	    lfipc_bridge_recv_open(W.rd, "q", "tcp://127.0.0.1:*", &o, &b2),
	    -EBUSY);
	cr_expect_null(b2);
	lfipc_bridge_close(b1);
	cr_assert_eq(lfipc_object_remove(W.rs, "q.btx"), 0);
	cr_assert_eq(lfipc_object_remove(W.rd, "q.brx"), 0);
	expect_nothing_left();
}

/* ---- a pile of orphans, and the stream rewritten while the sender runs -- */

/* Whether every number in [from, to) is in "seen" (delivered at least
 * once), waiting up to ms for it. */
static bool seen_all(lfipc_array *seen, uint64_t from, uint64_t to, int ms)
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

/* Put the messages numbered [from, to) into the source. */
static void put_range(uint64_t from, uint64_t to)
{
	for (uint64_t i = from; i < to; i++) {
		struct msg m = {i, check_of(i)};

		cr_assert_eq(
		    lfipc_queue_put(W.qs, &m, sizeof(m), LFIPC_NOWAIT), 0);
	}
}

/* Each of the numbers [0, n) delivered, and no more often than the
 * duplicates both sides counted as possible. */
static void expect_each_once(lfipc_array *seen, uint64_t n)
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
	cr_log_info("%llu extra copies, %llu counted possible",
		    (unsigned long long)extra,
		    (unsigned long long)(s.tx_dup_possible + t.rx_dup_possible));
	cr_expect_leq(extra, s.tx_dup_possible + t.rx_dup_possible,
		      "%llu extra copies delivered (%llu counted possible)",
		      (unsigned long long)extra,
		      (unsigned long long)(s.tx_dup_possible +
					   t.rx_dup_possible));
}

struct pile_arg {
	size_t table;
	int n;
};

/* A hostile peer: peek n messages of the source, write one entry of the
 * sender's state (TX_NEXT 10, number 9, an offset no message has), and
 * die holding the peeks. */
static int peek_pile_and_scribble(void *arg)
{
	const struct pile_arg *x = arg;
	uint64_t *w, next = 10;

	if (!(w = peer_peeks(NULL, x->n)))
		return 10;
	w[STATE_TX_NEXT] = next;
	put_entry(w, x->table, next - 1, next - 1, 8); /* no message's offset */
	_exit(0);
}

/*
 * Found by a hostile review: a peer that dies holding more peeked messages
 * than the state's table has entries (200 for 65), after writing one entry
 * that matches none of them, made recovery give every orphan a new number:
 * 201 numbers in flight over 65 entries, so that numbers one table apart
 * shared a flight (one message sent under up to four numbers, 135 never
 * sent nor released: the source never emptied). Recovery must keep the
 * numbers in flight within the table and leave the other orphans to the
 * run: each message delivered, no duplicate beyond those counted.
 */
Test(bridge, more_orphans_than_the_table_holds_send_no_message_twice,
     .fini = fini, .timeout = 120)
{
	static const char *const win[] = {"--insecure", "--window", "1", NULL};
	struct pile_arg x = {1 + 64, 200};
	lfipc_bridge_opts o = plain(1);
	lfipc_array *seen;

	world_up(1024, 1024, MSG);
	make_state(&o);
	put_range(0, (uint64_t)x.n);
	seen = after_a_peer(peek_pile_and_scribble, &x, win);
	for (int i = 0; lfipc_queue_qsize(W.qs) > 0; i++) {
		cr_assert_lt(i, 20000, "%zu messages never left the source",
			     lfipc_queue_qsize(W.qs));
		usleep(1000);
	}
	shut_down_all();
	expect_each_once(seen, (uint64_t)x.n);
	lfipc_array_close(seen);
}

/*
 * Found by a hostile review: the sender read its stream id from the state
 * for every frame and every acknowledgement. A peer that rewrote the word
 * while it ran stalled the stream (0: the receiver drops every frame) or
 * made the receiver take the window re-sent under the new id as a new
 * stream's. The sender reads it once, at open: rewrites change nothing.
 */
Test(bridge, a_stream_id_rewritten_while_the_sender_runs_changes_nothing,
     .fini = fini, .timeout = 120)
{
	static const char *const win[] = {"--insecure", "--window", "16", NULL};
	static const uint64_t junk[] = {0, 0x5eed5eed};
	lfipc_bridge_opts o = plain(16);
	lfipc_array *seen, *st;
	uint64_t *w;

	world_up(1024, 1024, MSG);
	make_state(&o);
	cr_assert_eq(lfipc_array_open(W.rs, "q.btx", &st), 0);
	w = lfipc_array_data(st);
	seen = start_all(win);
	for (uint64_t round = 0; round <= 2; round++) {
		if (round > 0)
			__atomic_store_n(&w[1], junk[round - 1],
					 __ATOMIC_SEQ_CST);
		put_range(10 * round, 10 * round + 10);
		cr_assert(seen_all(seen, 10 * round, 10 * round + 10, 10000),
			  "round %llu: not delivered", (unsigned long long)round);
	}
	shut_down_all();
	expect_each_once(seen, 30);
	lfipc_array_close(st);
	lfipc_array_close(seen);
}

/* ---- a sender dying in its recovery ------------------------------------- */

/* A hostile peer as a sender killed while it released the run [1, 5)
 * (acknowledged: the peer puts copies of its four messages into the
 * destination, as the receiver had), holding their peeks and a fifth,
 * recorded as number 5 but not yet published (TX_NEXT 5). */
static int die_releasing(void *arg)
{
	const size_t table = *(const size_t *)arg;
	const void *m[5];
	lfipc_region *r;
	lfipc_queue *q;
	uint64_t *w;

	if (!(w = peer_peeks(m, 5)))
		return 10;
	if (lfipc_region_open(W.dst, &r) || lfipc_queue_open(r, "q", &q))
		return 11;
	for (uint64_t k = 0; k < 5; k++) {
		if (k < 4 && lfipc_queue_put(q, m[k], MSG, LFIPC_NOWAIT))
			return 12;
		put_entry(w, table, k + 1, k + 1,
			  (uint64_t)((uintptr_t)m[k] - (uintptr_t)w));
	}
	w[STATE_TX_NEXT] = 5;
	w[STATE_TX_RELEASING_END] = 5;
	w[STATE_TX_RELEASING] = 1;
	_exit(0);
}

/*
 * Found by a stress of the SIGKILL tests under load (4 and 6 duplicates,
 * none counted, in 2 of 36 runs): a sender killed while it released a run
 * leaves the run ambiguous (released or not), and its successor counts
 * each message that turns up at one of the run's offsets as a possible
 * duplicate. But the successor cleared the run from the state when its
 * recovery began: killed before the messages turned up (it waits while a
 * stopped clearer keeps them dead claims; under load, while they come
 * back), it left the next sender nothing to count them by. Recovery must
 * keep the run in the state until it ends.
 */
Test(bridge, a_sender_killed_in_its_recovery_leaves_the_count_to_the_next,
     .fini = fini, .timeout = 120)
{
	static const char *const win[] = {"--insecure", "--window", "16", NULL};
	lfipc_bridge_opts o = plain(16);
	size_t table = 16 + 64;
	lfipc_bridge_stats s;
	lfipc_array *seen;

	world_up(1024, 1024, MSG);
	make_state(&o);
	stop_a_clearer_holding_the_lock();
	put_range(0, 10);
	cr_assert_eq(th_reap(th_fork(die_releasing, &table), 10000), 0);
	/* sender B recovers: past its scan of the state once it published
	 * number 5 (TX_NEXT 6), then waiting (5 s at most) for the dead
	 * claims the stopped clearer keeps; killed there */
	W.tx = th_fork(send_nowhere, &o);
	for (int i = 0;; i++) {
		stats(W.rs, &s);
		if (s.tx_next_seq == 6)
			break;
		cr_assert_lt(i, 20000, "sender B never recovered");
		usleep(1000);
	}
	kill_reap(&W.tx);
	stats(W.rs, &s);
	cr_assert_eq(s.tx_dup_possible, 0, "sender B was not killed in time");
	kill_reap(&W.prod); /* the queue lock's holder dies: rescues go on */
	seen = start_all(win);
	for (int i = 0; lfipc_queue_qsize(W.qs) > 0 || !seen_all(seen, 0, 10, 0);
	     i++) {
		cr_assert_lt(i, 20000, "not all delivered");
		usleep(1000);
	}
	shut_down_all();
	expect_each_once(seen, 10);
	stats(W.rs, &s);
	cr_assert_eq(s.tx_dup_possible, 4);
	lfipc_array_close(seen);
}

/* ---- an ambiguous run at TX_NEXT ---------------------------------------- */

#define STATE_RX_MAGIC 0x3130585242464c4cull /* word 0 of a receiver's state */
#define STATE_RX_WORDS (16 + 4 * LFIPC_BRIDGE_MAX_STREAMS)

/* A hostile peer: dies holding the peek of the source's first message
 * after writing a state whose run being released is [5, 6), at TX_NEXT 5
 * itself, with an entry for number 5 at an offset no message has. */
static int die_releasing_next(void *arg)
{
	const size_t table = *(const size_t *)arg;
	uint64_t *w;

	if (!(w = peer_peeks(NULL, 1)))
		return 10;
	put_entry(w, table, 5, 5, 8);
	w[STATE_TX_NEXT] = 5;
	w[STATE_TX_RELEASING_END] = 6;
	w[STATE_TX_RELEASING] = 5;
	_exit(0);
}

/*
 * Found by a hostile review of the fix above: recovery keeps the run's
 * entries and clears each at its end if it still holds the run's number.
 * A run reaching TX_NEXT (scribbled: no sender releases a number it has
 * not published) kept the entry at TX_NEXT, the number recovery gives the
 * first orphan: the orphan's entry, written over it, was then cleared. Its
 * message, sent under that number by a sender that dies, came back to the
 * next as a message without an entry: a new number, a duplicate nobody
 * counted. Numbers at or above TX_NEXT are not part of a run.
 */
Test(bridge, a_run_at_tx_next_leaves_the_entry_of_its_new_number,
     .fini = fini, .timeout = 120)
{
	static const char *const win[] = {"--insecure", "--window", "16", NULL};
	lfipc_bridge_opts o = plain(16);
	size_t table = 16 + 64;
	struct msg m0 = {0, check_of(0)};
	lfipc_array *seen, *st, *rx;
	uint64_t *w, *r, next;
	unsigned ents = 0;

	world_up(1024, 1024, MSG);
	make_state(&o);
	put_range(0, 1);
	cr_assert_eq(th_reap(th_fork(die_releasing_next, &table), 10000), 0);
	cr_assert_eq(lfipc_array_open(W.rs, "q.btx", &st), 0);
	w = lfipc_array_data(st);
	/* sender B: recovers (message 0 gets a number), sends to nowhere,
	 * and is killed */
	W.tx = th_fork(send_nowhere, &o);
	for (int i = 0;
	     __atomic_load_n(&w[STATE_TX_RELEASING], __ATOMIC_SEQ_CST) != 0 ||
	     __atomic_load_n(&w[STATE_TX_NEXT], __ATOMIC_SEQ_CST) <= 5;
	     i++) {
		cr_assert_lt(i, 20000, "sender B never recovered");
		usleep(1000);
	}
	usleep(200000);
	kill_reap(&W.tx);
	next = __atomic_load_n(&w[STATE_TX_NEXT], __ATOMIC_SEQ_CST);
	for (size_t k = 0; k < table; k++)
		ents += w[16 + 2 * k] != 0;
	cr_expect_eq(ents, 1, "%u entries for the message sender B sent", ents);
	/* as if B's frame had arrived: message 0 in the destination, and
	 * the receiver's state at B's next */
	cr_assert_eq(lfipc_array_create(W.rd, "q.brx", LFIPC_U64,
					STATE_RX_WORDS, true, &rx),
		     0);
	r = lfipc_array_data(rx);
	r[16] = w[1]; /* the stream */
	r[17] = next;
	__atomic_store_n(&r[0], STATE_RX_MAGIC, __ATOMIC_SEQ_CST);
	cr_assert_eq(lfipc_queue_put(W.qd, &m0, sizeof(m0), LFIPC_NOWAIT), 0);
	put_range(1, 10);
	seen = start_all(win);
	for (int i = 0; lfipc_queue_qsize(W.qs) > 0 || !seen_all(seen, 0, 10, 0);
	     i++) {
		cr_assert_lt(i, 20000, "not all delivered");
		usleep(1000);
	}
	usleep(300000); /* anything more would come now */
	shut_down_all();
	expect_each_once(seen, 10);
	lfipc_array_close(rx);
	lfipc_array_close(st);
	lfipc_array_close(seen);
}

/* ---- orphans behind a stopped clearer ----------------------------------- */

/*
 * Found by a hostile review: recovery gave up after its 5 s only while the
 * queue held dead claims and no orphan. Orphans that no rescue can take (a
 * clearer stopped while it holds the queue lock; the orphans made before,
 * by a predecessor's recovery or a waiting producer's sweep) made every
 * peek of a drained source fail, and recovery looked again at once, for
 * ever: the sender spun on a CPU and never started. It must give up after
 * its 5 s there too, counting what is still missing.
 */
Test(bridge, a_restarted_sender_gives_up_on_orphans_no_rescue_can_take,
     .fini = fini, .timeout = 120)
{
	static const char *const win[] = {"--insecure", "--window", "16", NULL};
	lfipc_bridge_opts o = plain(16);
	size_t table = 16 + 64;
	lfipc_queue_status q;
	lfipc_bridge_stats s;
	lfipc_array *seen;

	world_up(1024, 1024, MSG);
	make_state(&o);
	put_range(0, 5);
	cr_assert_eq(th_reap(th_fork(die_releasing, &table), 10000), 0);
	lfipc_region_recover(W.rs); /* the peer's five peeks: orphans */
	qstat(&q);
	cr_assert_eq(q.orphans, 5);
	stop_a_clearer_holding_the_lock();
	W.tx = th_fork(send_nowhere, &o);
	for (int i = 0;; i++) {
		stats(W.rs, &s);
		if (s.tx_dup_possible > 0)
			break;
		cr_assert_lt(i, 20000,
			     "sender B's recovery never gave up (orphans no "
			     "rescue can take)");
		usleep(1000);
	}
	cr_expect_eq(s.tx_dup_possible, 5);
	kill_reap(&W.tx);
	kill_reap(&W.prod); /* the queue lock's holder dies: rescues go on */
	seen = start_all(win);
	for (int i = 0; lfipc_queue_qsize(W.qs) > 0 || !seen_all(seen, 0, 5, 0);
	     i++) {
		cr_assert_lt(i, 20000, "not all delivered");
		usleep(1000);
	}
	shut_down_all();
	expect_each_once(seen, 5);
	lfipc_array_close(seen);
}

/* ---- a new message in the slot of an entry whose message left ---------- */

/* A hostile peer as a sender that sent the source's four messages as
 * numbers 1 to 4 (it puts copies into the destination, as the receiver
 * had; the test writes the receiver's state), holding their peeks
 * (TX_NEXT 5, no run being released). */
static int die_after_sending(void *arg)
{
	const size_t table = *(const size_t *)arg;
	const void *m[4];
	lfipc_region *r;
	lfipc_queue *q;
	uint64_t *w;

	if (!(w = peer_peeks(m, 4)))
		return 10;
	if (lfipc_region_open(W.dst, &r) || lfipc_queue_open(r, "q", &q))
		return 11;
	for (uint64_t k = 0; k < 4; k++) {
		if (lfipc_queue_put(q, m[k], MSG, LFIPC_NOWAIT))
			return 12;
		put_entry(w, table, k + 1, k + 1,
			  (uint64_t)((uintptr_t)m[k] - (uintptr_t)w));
	}
	w[STATE_TX_NEXT] = 5;
	_exit(0);
}

/*
 * Found by a hostile review (not fixed): recovery takes an orphan by
 * peeking, and a peek whose rescue finds the queue lock busy (a stopped
 * clearer) or the orphans gone (another consumer took them) takes the
 * head message instead. At the offset of an entry whose message another
 * consumer took (doc/bridge.md: "its number becomes VOID"), a new message
 * put in that slot is then matched to the entry and sent under its old
 * number, which the receiver had: dropped as a duplicate, released on the
 * acknowledgement, lost ("message 4 lost"). The bridge's public queue
 * API cannot tell a rescued orphan from a head message (neither a peek of
 * orphans alone nor a message's position is exposed), so the test is
 * disabled until it can: enable it to see the loss.
 */
Test(bridge, a_new_message_in_the_slot_of_an_entry_gone_elsewhere_is_not_lost,
     .fini = fini, .timeout = 120, .disabled = true)
{
	static const char *const win[] = {"--insecure", "--window", "16", NULL};
	lfipc_bridge_opts o = plain(16);
	size_t table = 16 + 64;
	struct msg m4 = {4, check_of(4)}, got;
	lfipc_queue_status q;
	lfipc_bridge_stats s;
	lfipc_array *seen, *st, *rx;
	uint64_t *r, *w;
	size_t len;

	world_up(4, 1024, MSG);
	make_state(&o);
	put_range(0, 4);
	cr_assert_eq(th_reap(th_fork(die_after_sending, &table), 10000), 0);
	cr_assert_eq(lfipc_array_open(W.rs, "q.btx", &st), 0);
	w = lfipc_array_data(st);
	cr_assert_eq(lfipc_array_create(W.rd, "q.brx", LFIPC_U64,
					STATE_RX_WORDS, true, &rx),
		     0);
	r = lfipc_array_data(rx);
	r[16] = w[1]; /* the stream, numbers 1 to 4 in */
	r[17] = 5;
	__atomic_store_n(&r[0], STATE_RX_MAGIC, __ATOMIC_SEQ_CST);
	lfipc_region_recover(W.rs); /* the peer's four peeks: orphans */
	qstat(&q);
	cr_assert_eq(q.orphans, 4);
	/* another consumer takes the orphan of slot 0 (message 0, number 1:
	 * already delivered) */
	cr_assert_eq(lfipc_queue_get(W.qs, &got, sizeof(got), &len,
				     LFIPC_NOWAIT),
		     0);
	if (got.seq != 0)
		cr_skip_test("the rescue took message %llu, not slot 0's",
			     (unsigned long long)got.seq);
	stop_a_clearer_holding_the_lock();
	/* message 4 goes into slot 0, the slot of number 1's entry */
	cr_assert_eq(lfipc_queue_put(W.qs, &m4, sizeof(m4), LFIPC_NOWAIT), 0);
	W.tx = th_fork(send_nowhere, &o);
	for (int i = 0;; i++) {
		stats(W.rs, &s);
		if (s.tx_dup_possible > 0)
			break;
		cr_assert_lt(i, 20000, "sender B's recovery never gave up");
		usleep(1000);
	}
	kill_reap(&W.tx);
	kill_reap(&W.prod);
	seen = start_all(win);
	for (int i = 0; lfipc_queue_qsize(W.qs) > 0; i++) {
		cr_assert_lt(i, 20000, "the source never emptied");
		usleep(1000);
	}
	seen_all(seen, 0, 5, 2000);
	shut_down_all();
	expect_each_once(seen, 5);
	lfipc_array_close(rx);
	lfipc_array_close(st);
	lfipc_array_close(seen);
}

/* ---- a sender closed and opened again in the same process --------------- */

static void *run_sender(void *b)
{
	return (void *)(intptr_t)lfipc_bridge_run(b);
}

/*
 * Found by a hostile review: lfipc_bridge_close() leaves the sender's
 * messages peeked until the process closes the region. A sender opened
 * again in the same process before that finds them claimed by a live
 * participant (its own process): neither orphans nor dead claims. Its
 * recovery ended at once and made every entry VOID; the messages stayed
 * peeked, and when the region was closed they came back as orphans to
 * the running sender, which gave them new numbers: the receiver had them
 * under the old ones, so each was delivered twice (4 extra copies, 0
 * counted possible). The queue's API cannot say whose the live claims
 * are: with live claims besides its own left, recovery counts each
 * unmatched entry as a possible duplicate.
 */
Test(bridge, a_sender_opened_again_in_the_same_process_counts_what_comes_back,
     .fini = fini, .timeout = 120)
{
	static const char *const win[] = {"--insecure", "--window", "16", NULL};
	lfipc_bridge_opts o = plain(16);
	lfipc_array *seen, *st, *rx;
	lfipc_bridge *b;
	pthread_t t;
	uint64_t *r, *w;
	void *rc;

	world_up(1024, 1024, MSG);
	make_state(&o);
	put_range(0, 4);
	/* sender A, in this process: peeks and sends the four messages (to
	 * nowhere), then is stopped and closed */
	cr_assert_eq(lfipc_bridge_send_open(W.rs, "q", NOWHERE, &o, &b), 0);
	cr_assert_eq(pthread_create(&t, NULL, run_sender, b), 0);
	wait_peeked(4);
	usleep(200000);
	lfipc_bridge_stop(b);
	cr_assert_eq(pthread_join(t, &rc), 0);
	lfipc_bridge_close(b);
	cr_assert_eq(lfipc_array_open(W.rs, "q.btx", &st), 0);
	w = lfipc_array_data(st);
	cr_assert_eq(w[STATE_TX_NEXT], 5);
	/* as if A's frames had arrived: the four messages in the
	 * destination, the receiver's state at A's next */
	for (uint64_t i = 0; i < 4; i++) {
		struct msg m = {i, check_of(i)};

		cr_assert_eq(
		    lfipc_queue_put(W.qd, &m, sizeof(m), LFIPC_NOWAIT), 0);
	}
	cr_assert_eq(lfipc_array_create(W.rd, "q.brx", LFIPC_U64,
					STATE_RX_WORDS, true, &rx),
		     0);
	r = lfipc_array_data(rx);
	r[16] = w[1];
	r[17] = 5;
	__atomic_store_n(&r[0], STATE_RX_MAGIC, __ATOMIC_SEQ_CST);
	/* sender B, in this process too: recovers, and is closed */
	cr_assert_eq(lfipc_bridge_send_open(W.rs, "q", NOWHERE, &o, &b), 0);
	lfipc_bridge_close(b);
	lfipc_array_close(st);
	/* the process closes the region: its peeks go back to the queue */
	lfipc_queue_close(W.qs);
	lfipc_region_close(W.rs);
	cr_assert_eq(lfipc_region_open(W.src, &W.rs), 0);
	cr_assert_eq(lfipc_queue_open(W.rs, "q", &W.qs), 0);
	seen = start_all(win);
	for (int i = 0; lfipc_queue_qsize(W.qs) > 0 || !seen_all(seen, 0, 4, 0);
	     i++) {
		cr_assert_lt(i, 20000, "not all delivered");
		usleep(1000);
	}
	usleep(300000);
	shut_down_all();
	expect_each_once(seen, 4);
	lfipc_array_close(rx);
	lfipc_array_close(seen);
}

/* ---- senders killed over and over in their recovery --------------------- */

/* A hostile peer as a sender killed inside the release of the run [1, 33)
 * (acknowledged: the peer puts copies of its 32 messages into the
 * destination; the test writes the receiver's state) after the release of
 * the run's first 16, holding the peeks of the other 48, numbered up to
 * 64 (TX_NEXT 65). */
static int die_releasing_half(void *arg)
{
	const size_t table = *(const size_t *)arg;
	const void *m[64];
	lfipc_region *r, *rs;
	lfipc_queue *q, *src;
	lfipc_array *a;
	uint64_t *w;
	size_t l;

	/* peer_peeks(), with the source's handle kept for the release */
	if (lfipc_region_open(W.src, &rs) || lfipc_queue_open(rs, "q", &src) ||
	    lfipc_array_open(rs, "q.btx", &a))
		return 10;
	for (int i = 0; i < 64; i++)
		if (lfipc_queue_peek(src, &m[i], &l, LFIPC_NOWAIT))
			return 10;
	w = lfipc_array_data(a);
	if (lfipc_region_open(W.dst, &r) || lfipc_queue_open(r, "q", &q))
		return 11;
	for (uint64_t k = 0; k < 64; k++) {
		if (k < 32 && lfipc_queue_put(q, m[k], MSG, LFIPC_NOWAIT))
			return 12;
		put_entry(w, table, k + 1, k + 1,
			  (uint64_t)((uintptr_t)m[k] - (uintptr_t)w));
	}
	w[STATE_TX_NEXT] = 65;
	w[STATE_TX_RELEASING_END] = 33;
	w[STATE_TX_RELEASING] = 1;
	if (lfipc_queue_release_many(src, m, 16) != 16)
		return 13;
	_exit(0);
}

/* Senders killed at random moments of their recovery (and just after),
 * 40 one after the other, while new messages come into the run's released
 * slots: each message delivered, no duplicate beyond those counted. (On
 * a63cf53, where recovery cleared the run as it began: 16 extra copies, 0
 * counted possible, in each of 3 runs.) */
Test(bridge, senders_killed_over_and_over_in_their_recovery_lose_nothing,
     .fini = fini, .timeout = 180)
{
	static const char *const win[] = {"--insecure", "--window", "64", NULL};
	lfipc_bridge_opts o = plain(64);
	size_t table = 64 + 64;
	uint64_t seed = (uint64_t)getpid() * 2654435761u, put = 64;
	lfipc_array *seen, *st, *rx;
	uint64_t *r, *w;

	world_up(64, 1024, MSG);
	make_state(&o);
	put_range(0, 64);
	cr_assert_eq(th_reap(th_fork(die_releasing_half, &table), 10000), 0);
	cr_assert_eq(lfipc_array_open(W.rs, "q.btx", &st), 0);
	w = lfipc_array_data(st);
	cr_assert_eq(lfipc_array_create(W.rd, "q.brx", LFIPC_U64,
					STATE_RX_WORDS, true, &rx),
		     0);
	r = lfipc_array_data(rx);
	r[16] = w[1];
	r[17] = 33; /* numbers 1 to 32 in */
	__atomic_store_n(&r[0], STATE_RX_MAGIC, __ATOMIC_SEQ_CST);
	for (int round = 0; round < 40; round++) {
		if (put < 80) { /* into the 16 slots the peer released */
			put_range(put, put + 4);
			put += 4;
		}
		W.tx = th_fork(send_nowhere, &o);
		usleep(th_rand(&seed) % 4000);
		kill_reap(&W.tx);
	}
	seen = start_all(win);
	for (int i = 0;
	     lfipc_queue_qsize(W.qs) > 0 || !seen_all(seen, 0, put, 0); i++) {
		cr_assert_lt(i, 30000, "not all delivered");
		usleep(1000);
	}
	usleep(300000);
	shut_down_all();
	expect_each_once(seen, put);
	lfipc_array_close(rx);
	lfipc_array_close(st);
	lfipc_array_close(seen);
}

/* ---- TX_NEXT at its limit ----------------------------------------------- */

/*
 * Found by a hostile review: a state whose TX_NEXT is at its limit, 2^63,
 * is accepted (the limits in bridge/internal.h), but the sender numbered
 * on past it (its run, and recovery's entry at TX_NEXT): TX_NEXT 2^63 + 3
 * after three messages, which every later send_open and stat refused with
 * -EPROTO. A sender at the limit gives no number more: it ends with
 * -EPROTO, and leaves a state the next one opens.
 */
Test(bridge, a_sender_at_the_tx_next_limit_leaves_a_state_the_next_opens,
     .fini = fini, .timeout = 60)
{
	lfipc_bridge_opts o = plain(16);
	lfipc_bridge_stats s;
	lfipc_bridge *b = NULL;
	size_t table = 16 + 64;
	lfipc_array *st;
	uint64_t *w;

	world_up(64, 16, MSG);
	make_state(&o);
	cr_assert_eq(lfipc_array_open(W.rs, "q.btx", &st), 0);
	w = lfipc_array_data(st);
	w[STATE_TX_NEXT] = UINT64_C(1) << 63;
	/* an entry at TX_NEXT too (recovery takes it, and raised next) */
	put_entry(w, table, UINT64_C(1) << 63, UINT64_C(1) << 63, 8);
	put_range(0, 3);
	W.tx = th_fork(send_nowhere, &o);
	usleep(500000);
	kill_reap(&W.tx);
	cr_expect_eq(lfipc_bridge_stats_read(W.rs, "q", &s), 0,
		     "TX_NEXT left at 2^63 + %llu",
		     (unsigned long long)(w[STATE_TX_NEXT] -
					  (UINT64_C(1) << 63)));
	cr_expect_eq(lfipc_bridge_send_open(W.rs, "q", NOWHERE, &o, &b), 0);
	lfipc_bridge_close(b);
	lfipc_array_close(st);
}
