/* SPDX-License-Identifier: MIT */
/*
 * bridge.c - a Queue across hosts over ZeroMQ (liblfipc-bridge): what both
 * sides share: opening (arguments, the queue, the state Array and its
 * Lock), run, stop, close, the statistics read from the state words, and
 * the spin before a side's sleep (lfipc_bridge_set_spin()).
 * The protocol and the state words are described in internal.h.
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Open the Array name of a side's state. The arguments are valid here
 * (the caller made name), so an -EINVAL of lfipc_array_open() means that
 * another kind of object holds the name (a peer's, or junk): -EPROTO,
 * like an Array of the wrong shape. */
static int state_array_open(lfipc_region *r, const char *name, lfipc_array **a)
{
	int rc = lfipc_array_open(r, name, a);

	return rc == -EINVAL ? -EPROTO : rc;
}

/* Whether a has the shape of a state Array of that side: U64 elements,
 * the length such a side makes, and its Lock. Opening the side and
 * reading its counters accept exactly the same Arrays. */
static bool state_shape_ok(lfipc_array *a, bool tx)
{
	size_t len = lfipc_array_len(a);

	return lfipc_array_type(a) == LFIPC_U64 &&
	       (tx ? tx_table(len, TX_EW) != 0 || tx_table(len, TX_EW_OLD) != 0
		   : len == RX_WORDS) &&
	       lfipc_array_lock(a) != NULL;
}

/* Open or create the state Array "<queue>.btx" (tx) or "<queue>.brx", of
 * U64 with a Lock (made with room for the sender's window), and take its
 * lock without waiting. A sender takes its table from the Array's length
 * and keeps its window within it. */
static int state_open(lfipc_bridge *b, const char *queue, bool tx)
{
	const char *suffix = tx ? ".btx" : ".brx";
	size_t words = tx ? tx_words(b->o.window) : RX_WORDS;
	char name[LFIPC_NAME_MAX + 2];
	int rc;

	if (snprintf(name, sizeof(name), "%s%s", queue, suffix) >
	    LFIPC_NAME_MAX)
		return -ENAMETOOLONG;
	rc = lfipc_array_create(b->r, name, LFIPC_U64, words, true, &b->st);
	if (rc == -EEXIST)
		rc = state_array_open(b->r, name, &b->st);
	if (rc)
		return rc;
	if (!state_shape_ok(b->st, tx))
		return -EPROTO;
	/* The Array's Lock is an RLock: a second side of the same thread
	 * would be granted it again. */
	if (lfipc_lock_owned(lfipc_array_lock(b->st)))
		return -EBUSY;
	rc = lfipc_lock_acquire(lfipc_array_lock(b->st), LFIPC_NOWAIT);
	if (rc == -EAGAIN)
		return -EBUSY;
	if (rc && rc != -EOWNERDEAD)
		return rc;
	/* From here lfipc_bridge_close() releases the lock. */
	b->w = (_Atomic uint64_t *)lfipc_array_data(b->st);
	if (tx) {
		/* The magic word, read once with the Lock held (the shape of
		 * the entries hangs on it) and used by send_open. */
		b->magic = atomic_load(&b->w[TX_MAGIC_W]);
		b->ew = tx_entry_words(b->magic, lfipc_array_len(b->st));
		if (!b->ew)
			return -EPROTO;
		b->table = tx_table(lfipc_array_len(b->st), b->ew);
		if (b->o.window > b->table - TX_SPARE)
			b->o.window = (unsigned)(b->table - TX_SPARE);
	}
	return 0;
}

static int check_opts(const lfipc_bridge_opts *o, bool tx)
{
	if (o->window > LFIPC_BRIDGE_MAX_WINDOW)
		return -EINVAL;
	if (!o->curve_secret && !o->insecure)
		return -EINVAL; /* plain TCP only when asked for */
	if (o->curve_secret && tx && !o->curve_server)
		return -EINVAL;
	return 0;
}

static lfipc_bridge *bridge_new(lfipc_region *r, bool tx,
				const lfipc_bridge_opts *o)
{
	lfipc_bridge *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->tx = tx;
	b->r = r;
	b->o = *o;
	b->o.curve_secret = NULL; /* not kept: the caller owns the strings */
	b->o.curve_server = NULL;
	b->o.curve_allow = NULL;
	if (!b->o.batch)
		b->o.batch = DEF_BATCH;
	if (!b->o.batch_bytes)
		b->o.batch_bytes = DEF_BATCH_BYTES;
	if (b->o.resend_ns <= 0)
		b->o.resend_ns = DEF_RESEND_NS;
	atomic_init(&b->stop, 0);
	return b;
}

/* What both sides start with: checked arguments, the handle, the queue,
 * and the state Array "<queue><suffix>" with its Lock held. */
int lfipc__bridge_open(lfipc_region *r, const char *queue, const char *endpoint,
		       const lfipc_bridge_opts *opts, bool tx,
		       lfipc_bridge **out)
{
	lfipc_bridge_opts none = {0};
	const lfipc_bridge_opts *o = opts ? opts : &none;
	lfipc_bridge *b;
	int rc;

	*out = NULL;
	if (!r || !queue || !endpoint)
		return -EINVAL;
	if ((rc = check_opts(o, tx)))
		return rc;
	b = bridge_new(r, tx, o);
	if (!b)
		return -ENOMEM;
	*out = b;
	if ((rc = lfipc_queue_open(r, queue, &b->q)))
		return rc;
	if (!b->o.window) {
		/* Three quarters of the source queue, at most DEF_WINDOW:
		 * while the window is in flight, the producers fill the last
		 * quarter, which the sender takes the moment an
		 * acknowledgement opens the window again. */
		size_t cap = lfipc_queue_capacity(b->q);

		cap -= cap / 4;
		b->o.window = cap < 1 ? 1 : cap > DEF_WINDOW ? DEF_WINDOW
							     : (unsigned)cap;
	}
	return state_open(b, queue, tx);
}

int lfipc_bridge_set_spin(lfipc_bridge *b, int64_t spin_ns)
{
	if (!b || spin_ns < 0 || spin_ns > LFIPC_BRIDGE_MAX_SPIN_NS)
		return -EINVAL;
	b->spin_ns = spin_ns;
	return 0;
}

/* The spin of either side (lfipc_bridge_set_spin()), before the sleep of
 * its poll: look(b, arg) for up to b->spin_ns from now, and not past until
 * (a timer's due: the spin does not put it off), with pauses cpu_relax()
 * between two looks; after each run of `every` looks, a look at the stop
 * flag and the clock, and a sched_yield() (a thread that shares this CPU,
 * often the one whose work the look waits for, runs). 1: look() saw
 * something; 0: the spin ran out; -EINTR: lfipc_bridge_stop() was
 * called (ends the spin at once, where a false return left the poll
 * after it to sleep up to a slice). */
int lfipc__bridge_spin(lfipc_bridge *b, int64_t until,
		       bool (*look)(lfipc_bridge *b, void *arg), void *arg,
		       unsigned every, unsigned pauses)
{
	int64_t end = now_ns() + b->spin_ns;

	if (end > until)
		end = until;
	for (unsigned i = 1;; i++) {
		if (look(b, arg))
			return 1;
		if (i % every == 0) {
			if (atomic_load(&b->stop))
				return -EINTR;
			if (now_ns() >= end)
				return 0;
			sched_yield();
		}
		for (unsigned k = 0; k < pauses; k++)
			cpu_relax();
	}
}

int lfipc_bridge_run(lfipc_bridge *b)
{
	if (!b)
		return -EINVAL;
	return b->tx ? lfipc__bridge_tx_run(b) : lfipc__bridge_rx_run(b);
}

void lfipc_bridge_stop(lfipc_bridge *b)
{
	if (b)
		atomic_store(&b->stop, 1);
}

int lfipc_bridge_endpoint(const lfipc_bridge *b, char *buf, size_t size)
{
	if (!b || !buf)
		return -EINVAL;
	if (strlen(b->endpoint) >= size)
		return -ENOBUFS;
	memcpy(buf, b->endpoint, strlen(b->endpoint) + 1);
	return 0;
}

void lfipc_bridge_close(lfipc_bridge *b)
{
	if (!b)
		return;
	if (b->sock)
		zmq_close(b->sock);
	if (b->zap)
		zmq_close(b->zap);
	if (b->mon)
		zmq_close(b->mon);
	if (b->ctx)
		zmq_ctx_term(b->ctx);
	if (b->w)
		lfipc_lock_release(lfipc_array_lock(b->st));
	lfipc_array_close(b->st);
	lfipc_queue_close(b->q);
	if (b->pool) /* every frame is back once the context is gone */
		for (int i = 0; i < POOL_N; i++)
			free(atomic_load(&b->pool->buf[i]));
	free(b->pool);
	free(b->allow);
	free(b->fl);
	free(b);
}

static int stats_open(lfipc_region *r, const char *queue, bool tx,
		      lfipc_array **a)
{
	const char *suffix = tx ? ".btx" : ".brx";
	char name[LFIPC_NAME_MAX + 2];
	int64_t m;
	int rc;

	if (snprintf(name, sizeof(name), "%s%s", queue, suffix) >
	    LFIPC_NAME_MAX)
		return -ENAMETOOLONG;
	rc = state_array_open(r, name, a);
	if (rc)
		return rc;
	if (!state_shape_ok(*a, tx) || lfipc_array_load(*a, 0, &m) ||
	    (tx ? !tx_entry_words((uint64_t)m, lfipc_array_len(*a))
		: m != 0 && (uint64_t)m != RX_MAGIC)) {
		lfipc_array_close(*a);
		*a = NULL;
		return -EPROTO;
	}
	return 0;
}

int lfipc_bridge_stats_read(lfipc_region *r, const char *queue,
			    lfipc_bridge_stats *out)
{
	lfipc_array *a;
	int rc;

	if (!r || !queue || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	rc = stats_open(r, queue, true, &a);
	if (rc == 0) {
		_Atomic uint64_t *w = (_Atomic uint64_t *)lfipc_array_data(a);
		uint64_t next = atomic_load(&w[TX_NEXT]); /* read once */

		if (!tx_next_ok(next)) {
			lfipc_array_close(a);
			return -EPROTO;
		}
		out->has_tx = true;
		out->tx_stream = atomic_load(&w[TX_STREAM]);
		out->tx_next_seq = next;
		out->tx_inflight = atomic_load(&w[TX_INFLIGHT]);
		out->tx_sent = atomic_load(&w[TX_SENT]);
		out->tx_resent = atomic_load(&w[TX_RESENT]);
		out->tx_acked = atomic_load(&w[TX_ACKED]);
		out->tx_batches = atomic_load(&w[TX_BATCHES]);
		out->tx_sessions = atomic_load(&w[TX_SESSIONS]);
		out->tx_dup_possible = atomic_load(&w[TX_DUP_POSSIBLE]);
		lfipc_array_close(a);
	} else if (rc != -ENOENT) {
		return rc;
	}
	rc = stats_open(r, queue, false, &a);
	if (rc == 0) {
		_Atomic uint64_t *w = (_Atomic uint64_t *)lfipc_array_data(a);

		out->has_rx = true;
		out->rx_received = atomic_load(&w[RX_RECEIVED]);
		out->rx_dup_dropped = atomic_load(&w[RX_DUP_DROPPED]);
		out->rx_dup_possible = atomic_load(&w[RX_DUP_POSSIBLE]);
		out->rx_out_of_order = atomic_load(&w[RX_OUT_OF_ORDER]);
		out->rx_batches = atomic_load(&w[RX_BATCHES]);
		out->rx_sessions = atomic_load(&w[RX_SESSIONS]);
		out->rx_auth_denied = atomic_load(&w[RX_AUTH_DENIED]);
		for (int i = 0; i < LFIPC_BRIDGE_MAX_STREAMS; i++)
			out->rx_streams += atomic_load(&w[RX_ST + 4 * i]) != 0;
		lfipc_array_close(a);
	} else if (rc != -ENOENT) {
		return rc;
	}
	out->dup_possible = out->tx_dup_possible + out->rx_dup_possible;
	return out->has_tx || out->has_rx ? 0 : -ENOENT;
}
