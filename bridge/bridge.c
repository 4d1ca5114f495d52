/* SPDX-License-Identifier: MIT */
/*
 * bridge.c - a Queue across hosts over ZeroMQ (liblfipc-bridge).
 *
 * Public API of liblfipc only (queue, value, sync, region): this library
 * lives beside liblfipc, not inside it.
 *
 * Wire format (little-endian, one ZeroMQ frame each; the receiver's ROUTER
 * adds the sender's identity frame in front):
 *   DATA  magic u32 "LFB1", type u8 'D', flags u8, u16 0, stream u64,
 *         low u64, first u64, count u32, u32 0, then count records
 *         { len u32, len bytes } with sequence numbers first, first+1, ...
 *         A record of len VOID_LEN carries no message (a sequence number
 *         whose message is gone: see "Recovery" below).
 *   FIN   the same header, type 'F', count 0: first is the sender's next
 *         sequence number; every earlier one is acknowledged.
 *   ACK   magic, type 'A', flags (ACK_BUSY, ACK_NACK, ACK_FIN), u16 0,
 *         stream u64, next u64: every sequence number below next is in the
 *         destination queue (cumulative).
 * low is the sender's oldest unacknowledged sequence number: everything
 * below it was acknowledged once, by this receiver or by one whose state
 * was lost, so a receiver whose next is lower may jump to it.
 *
 * Shared state. Both sides keep an Array of uint64_t in their own region,
 * accessed with C11 atomics on the elements (the Array's elements are
 * plain uint64_t of 8-byte alignment, which _Atomic uint64_t matches on
 * every target lfipc supports). State words are written and read seq_cst:
 * their order against the queue operations around them is what makes a
 * crash recoverable, and only a restarted process reads them. Counters are
 * relaxed: they order nothing and only `lfipc-bridge stat` reads them.
 * A crash is the only concurrency on the state words (one sender, one
 * receiver per queue, held by the Array's Lock); stat only reads.
 *
 * Sender state "<queue>.btx" (TX_* below): entry (TX_ENT + 2 * (seq %
 * TX_TABLE)) holds seq (0 = empty) and, at +1, the offset of the peeked
 * message from the Array's data (both in one mapping of one region, so the
 * offset is the same in every process). In-flight sequence numbers are
 * always one contiguous range [A, next), at most TX_TABLE long.
 *   peek:    entry.off = off; entry.seq = s; next = s + 1; then send.
 *   ack:     releasing = s; lfipc_queue_release(); entry.seq = 0;
 *            releasing = 0.
 * Recovery (a new sender after a crash or a stop): the region's recovery
 * turns the dead process's peeked slots into orphans, which the queue
 * hands out first, in the same slots: a peeked message whose offset is an
 * entry's is that entry's message and keeps its sequence number, so the
 * receiver drops it if it had it. Recovery ends when the queue holds no
 * orphans and no dead claims any more (or after RECOVER_NS, counting what
 * is still missing in TX_DUP_POSSIBLE); entries left are messages gone
 * elsewhere: they become VOID records. A crash between `releasing = s` and `entry.seq = 0`
 * leaves s ambiguous (released or not, and its slot maybe reused): it is
 * not matched; if a message turns up at its offset during recovery it gets
 * a new sequence number and counts in TX_DUP_POSSIBLE (never a loss).
 *
 * Receiver state "<queue>.brx": per stream (RX_ST + 4 * i) its id, next
 * (every sequence number below is in the queue), committing and its count
 * k (1..RUN_MAX; 0 in state written before runs existed: one message).
 * The in-order messages of a frame go in runs of up to RUN_MAX:
 *   k = n; committing = s; m = lfipc_queue_put_many(n messages);
 *   next = s + m; committing = 0.
 * A crash between the put and `next = s + m` leaves committing == next:
 * up to k of the messages may be in the queue; the restarted receiver
 * takes them again when they are re-sent (never a loss) and counts k in
 * RX_DUP_POSSIBLE.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include <lfipc/bridge.h>
#include <lfipc/inspect.h>
#include <lfipc/queue.h>
#include <lfipc/sync.h>
#include <lfipc/value.h>

/* ---- shared state layout ------------------------------------------------ */

#define TX_MAGIC UINT64_C(0x3130585442464c4c) /* "LLFBTX01" */
#define RX_MAGIC UINT64_C(0x3130585242464c4c) /* "LLFBRX01" */

enum {
	TX_MAGIC_W,   /* TX_MAGIC once initialised, 0 before */
	TX_STREAM,    /* random non-zero stream id */
	TX_NEXT,      /* next sequence number to give (>= 1) */
	TX_RELEASING, /* seq being released, 0 none */
	TX_SENT,      /* counters from here on (relaxed) */
	TX_RESENT,
	TX_ACKED,
	TX_BATCHES,
	TX_SESSIONS,
	TX_DUP_POSSIBLE,
	TX_INFLIGHT,
	TX_ENT = 16,
	/* room for a full window, plus the two messages recovery may add */
	TX_TABLE = LFIPC_BRIDGE_MAX_WINDOW + 64,
	TX_WORDS = TX_ENT + 2 * TX_TABLE
};

enum {
	RX_MAGIC_W,
	RX_RECEIVED, /* counters (relaxed) */
	RX_DUP_DROPPED,
	RX_DUP_POSSIBLE,
	RX_OUT_OF_ORDER,
	RX_BATCHES,
	RX_AUTH_DENIED,
	RX_FINS,
	RX_SESSIONS,
	RX_ST = 16, /* per stream: id, next, committing, its count */
	RX_WORDS = RX_ST + 4 * LFIPC_BRIDGE_MAX_STREAMS
};

/* ---- wire format -----------------------------------------------------------
 */

#define WIRE_MAGIC UINT32_C(0x3142464c) /* "LFB1" */
#define HDR_LEN 40
#define ACK_LEN 24
#define VOID_LEN UINT32_MAX
#define ACK_BUSY 0x1u
#define ACK_NACK 0x2u
#define ACK_FIN 0x4u
#define MAX_WIRE ((int64_t)64 << 20)

#define DEF_WINDOW 1024u
#define DEF_BATCH 256u
#define DEF_BATCH_BYTES ((size_t)256 << 10)
#define DEF_RESEND_NS INT64_C(500000000)
#define SLICE_NS INT64_C(100000000)
#define ACK_DELAY_NS INT64_C(1000000)
#define ACK_DELAY_MAX 32u
#define RUN_MAX 64 /* messages per put into the destination */
#define ZAP_EP "inproc://zeromq.zap.01"
#define MON_EP "inproc://lfipc-bridge-monitor"

struct flight {
	const void *msg; /* peeked slot; NULL: a VOID record */
	size_t len;
};

struct lfipc_bridge {
	bool tx;
	atomic_int stop;
	lfipc_region *r;
	lfipc_queue *q;
	lfipc_array *st;
	_Atomic uint64_t *w;
	void *ctx, *sock, *zap, *mon;
	int qfd; /* sender: the source queue's LFIPC_FD_GET */
	char endpoint[256];
	lfipc_bridge_opts o;
	unsigned char (*allow)[32];
	size_t nallow;
	/* sender */
	struct flight *fl; /* [TX_TABLE], index seq % TX_TABLE */
	uint64_t a, b, sent_upto, max_sent;
	int64_t news_at, resend_ivl, fin_at;
	bool src_done, fin_sent;
	bool probing, probe_out; /* resending after silence: one batch
				  * (probe_out once sent) until news */
	unsigned char *buf;
	size_t bufcap;
	/* receiver */
	bool fin_done;
	int64_t fin_until; /* answers repeated FINs until then */
	/* a delayed acknowledgement (ack_stream 0: none): see rx_ack() */
	zmq_msg_t ack_id;
	uint64_t ack_stream, ack_next;
	unsigned ack_n;
	int64_t ack_due;
};

/* ---- small helpers ------------------------------------------------------- */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static int zerr(void)
{
	int e = zmq_errno();

	return e > 0 ? -e : -EIO;
}

static uint64_t ld(lfipc_bridge *b, int i)
{
	return atomic_load(&b->w[i]);
}

static void st(lfipc_bridge *b, int i, uint64_t v)
{
	atomic_store(&b->w[i], v);
}

static void count(lfipc_bridge *b, int i, uint64_t n)
{
	/* relaxed: a statistic; read only by lfipc_bridge_stats_read(). */
	atomic_fetch_add_explicit(&b->w[i], n, memory_order_relaxed);
}

static uint64_t offset_of(lfipc_bridge *b, const void *p)
{
	return (uint64_t)((uintptr_t)p - (uintptr_t)b->w);
}

/* Open or create the state Array name (words elements of U64, with a
 * Lock) and take its lock without waiting. */
static int state_open(lfipc_bridge *b, const char *queue, const char *suffix,
		      size_t words)
{
	char name[LFIPC_NAME_MAX + 2];
	int rc;

	if (snprintf(name, sizeof(name), "%s%s", queue, suffix) >
	    LFIPC_NAME_MAX)
		return -ENAMETOOLONG;
	rc = lfipc_array_create(b->r, name, LFIPC_U64, words, true, &b->st);
	if (rc == -EEXIST)
		rc = lfipc_array_open(b->r, name, &b->st);
	if (rc)
		return rc;
	if (lfipc_array_type(b->st) != LFIPC_U64 ||
	    lfipc_array_len(b->st) != words || !lfipc_array_lock(b->st))
		return -EPROTO;
	rc = lfipc_lock_acquire(lfipc_array_lock(b->st), LFIPC_NOWAIT);
	if (rc == -EAGAIN)
		return -EBUSY;
	if (rc && rc != -EOWNERDEAD)
		return rc;
	b->w = (_Atomic uint64_t *)lfipc_array_data(b->st);
	return 0;
}

static int set_key(void *sock, int opt, const char *z85)
{
	unsigned char bin[32];

	if (!z85 || strlen(z85) != LFIPC_BRIDGE_KEY_LEN ||
	    !zmq_z85_decode(bin, z85))
		return -EINVAL;
	return zmq_setsockopt(sock, opt, bin, sizeof(bin)) ? zerr() : 0;
}

static int set_int(void *sock, int opt, int v)
{
	return zmq_setsockopt(sock, opt, &v, sizeof(v)) ? zerr() : 0;
}

/* Context, socket and security common to both sides. */
static int sock_open(lfipc_bridge *b, int type, const lfipc_bridge_opts *o)
{
	int rc;

	b->ctx = zmq_ctx_new();
	if (!b->ctx)
		return zerr();
	b->sock = zmq_socket(b->ctx, type);
	if (!b->sock)
		return zerr();
	/* Data frames: a high-water mark of 16, so ZeroMQ holds little.
	 * Acknowledgements (24 bytes) flow the other way: a high one, as a
	 * ROUTER drops what meets a full pipe, and a lost acknowledgement of
	 * the end of stream would leave the sender waiting. */
	if ((rc = set_int(b->sock, ZMQ_LINGER, 1000)) ||
	    (rc = set_int(b->sock, ZMQ_SNDHWM, b->tx ? 16 : 4096)) ||
	    (rc = set_int(b->sock, ZMQ_RCVHWM, b->tx ? 4096 : 16)) ||
	    (rc = set_int(b->sock, ZMQ_HEARTBEAT_IVL, 1000)) ||
	    (rc = set_int(b->sock, ZMQ_HEARTBEAT_TIMEOUT, 5000)))
		return rc;
	if (!o->curve_secret)
		return 0;
	if (!zmq_has("curve"))
		return -ENOTSUP;
	if (b->tx) {
		char pub[LFIPC_BRIDGE_KEY_LEN + 1];

		if ((rc = lfipc_bridge_public_key(o->curve_secret, pub)) ||
		    (rc = set_key(b->sock, ZMQ_CURVE_SERVERKEY,
				  o->curve_server)) ||
		    (rc = set_key(b->sock, ZMQ_CURVE_PUBLICKEY, pub)) ||
		    (rc = set_key(b->sock, ZMQ_CURVE_SECRETKEY,
				  o->curve_secret)))
			return rc;
		return 0;
	}
	if (o->curve_allow) {
		size_t n = 0;

		while (o->curve_allow[n])
			n++;
		b->allow = calloc(n ? n : 1, sizeof(*b->allow));
		if (!b->allow)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++)
			if (strlen(o->curve_allow[i]) != LFIPC_BRIDGE_KEY_LEN ||
			    !zmq_z85_decode(b->allow[i], o->curve_allow[i]))
				return -EINVAL;
		b->nallow = n;
		/* The ZAP handler must be bound before the socket that uses
		 * it; run() answers its requests. */
		b->zap = zmq_socket(b->ctx, ZMQ_REP);
		if (!b->zap)
			return zerr();
		if (zmq_bind(b->zap, ZAP_EP))
			return zerr();
	}
	if ((rc = set_int(b->sock, ZMQ_CURVE_SERVER, 1)) ||
	    (rc = set_key(b->sock, ZMQ_CURVE_SECRETKEY, o->curve_secret)))
		return rc;
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
	if (!b->o.window)
		b->o.window = DEF_WINDOW;
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
static int bridge_open(lfipc_region *r, const char *queue, const char *endpoint,
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
	return tx ? state_open(b, queue, ".btx", TX_WORDS)
		  : state_open(b, queue, ".brx", RX_WORDS);
}

/* ---- sender -------------------------------------------------------------- */

static _Atomic uint64_t *entry(lfipc_bridge *b, uint64_t seq)
{
	return &b->w[TX_ENT + 2 * (seq % TX_TABLE)];
}

/* Record the peeked message as sequence number b->b and advance. */
static void tx_record(lfipc_bridge *b, const void *msg, size_t len)
{
	uint64_t s = b->b;
	_Atomic uint64_t *e = entry(b, s);

	atomic_store(&e[1], offset_of(b, msg));
	atomic_store(&e[0], s);
	st(b, TX_NEXT, s + 1);
	b->fl[s % TX_TABLE].msg = msg;
	b->fl[s % TX_TABLE].len = len;
	b->b = s + 1;
}

struct rent {
	uint64_t off, seq;
};

static int rent_cmp(const void *x, const void *y)
{
	const struct rent *p = x, *q = y;

	return p->off < q->off ? -1 : p->off > q->off;
}

/* How long a new sender waits for the dead one's peeked messages to come
 * back (its claims rescued into orphans, and the orphans handed out). */
#define RECOVER_NS ((int64_t)5 * 1000 * 1000 * 1000)

/* The source queue's orphans and dead claims (lfipc_queue_stat(); a scan
 * of its slots, so called once per round of recovery, not per message).
 * An error of the status call reads as one dead claim: recovery then
 * waits, RECOVER_NS at most. */
static void dead_ones(lfipc_bridge *b, size_t *orphans, size_t *dead_claims)
{
	lfipc_queue_status st;

	memset(&st, 0, sizeof(st));
	st.struct_size = sizeof(st);
	if (lfipc_queue_stat(b->q, &st) < 0) {
		st.orphans = 0;
		st.dead_claims = 1;
	}
	*orphans = st.orphans;
	*dead_claims = st.dead_claims;
}

/* After a crash or stop: take back the predecessor's messages (see the
 * file comment, Recovery). */
static int tx_recover(lfipc_bridge *b)
{
	uint64_t next = ld(b, TX_NEXT), amb = ld(b, TX_RELEASING);
	uint64_t amb_off = 0, lo = UINT64_MAX;
	struct rent *ents;
	size_t n = 0, left, orphans = 0, dead_claims = 0;
	bool have_amb = false;
	int rc = 0;

	if (next == 0)
		return -EPROTO;
	ents = malloc(sizeof(*ents) * TX_TABLE);
	if (!ents)
		return -ENOMEM;
	for (uint64_t i = 0; i < TX_TABLE; i++) {
		_Atomic uint64_t *e = &b->w[TX_ENT + 2 * i];
		uint64_t s = atomic_load(&e[0]), off = atomic_load(&e[1]);

		if (s == 0)
			continue;
		if (s % TX_TABLE != i || s >= next + 1 ||
		    (next > TX_TABLE + 1 && s < next - TX_TABLE - 1)) {
			atomic_store(&e[0], 0); /* nonsense: forget it */
			continue;
		}
		if (s == amb) {
			have_amb = true;
			amb_off = off;
			atomic_store(&e[0], 0);
			continue;
		}
		ents[n].off = off;
		ents[n].seq = s;
		n++;
		if (s < lo)
			lo = s;
		if (s + 1 > next)
			next = s + 1; /* died between entry and next */
	}
	st(b, TX_RELEASING, 0);
	st(b, TX_NEXT, next);
	qsort(ents, n, sizeof(*ents), rent_cmp);
	b->a = n ? lo : next;
	b->b = next;
	for (uint64_t s = b->a; s < next; s++)
		b->fl[s % TX_TABLE].msg = NULL; /* VOID until matched */
	/* Every message the dead sender had peeked comes back as an orphan,
	 * and the queue hands orphans out before anything else; but a rescue
	 * that finds the queue lock busy leaves the slot for a later one.
	 * So recovery goes by rounds: while the queue holds orphans, take
	 * that many (each is the dead sender's: matched to its entry, or, if
	 * it peeked the message before writing the entry, recorded under a
	 * new number); while it holds no orphan but dead claims, peek nothing
	 * (a peek would hand out a new message ahead of them) and let the
	 * region's recovery rescue them. It ends when the queue holds
	 * neither, or after RECOVER_NS (a stopped clearer holding the queue
	 * lock would keep us here), and records no more messages than the
	 * orphans it took. */
	left = n;
	for (int64_t until = now_ns() + RECOVER_NS;;) {
		const void *msg;
		size_t len, k;
		struct rent key, *hit;

		if (left == 0 && !have_amb)
			break; /* nothing of the dead one's can turn up */
		dead_ones(b, &orphans, &dead_claims);
		if (orphans == 0) {
			if (dead_claims == 0 || now_ns() >= until)
				break;
			lfipc_region_recover(b->r);
			nanosleep(&(struct timespec){0, 1000000}, NULL);
			continue;
		}
		for (k = 0; k < orphans; k++) {
			rc = lfipc_queue_peek(b->q, &msg, &len, LFIPC_NOWAIT);
			if (rc)
				break; /* -EAGAIN: a clear took the orphans */
			key.off = offset_of(b, msg);
			hit = n ? bsearch(&key, ents, n, sizeof(*ents),
					  rent_cmp)
				: NULL;
			if (hit && hit->seq != 0) {
				b->fl[hit->seq % TX_TABLE].msg = msg;
				b->fl[hit->seq % TX_TABLE].len = len;
				hit->seq = 0;
				left--;
				continue;
			}
			if (have_amb && key.off == amb_off) {
				count(b, TX_DUP_POSSIBLE, 1);
				have_amb = false;
			}
			tx_record(b, msg, len); /* a new sequence number */
		}
		if (rc == -EAGAIN || rc == -EPIPE)
			rc = 0;
		if (rc)
			break;
	}
	/* Given up with orphans or dead claims left (RECOVER_NS passed):
	 * each unmatched entry's message may still come, under a new
	 * number, so each counts as a possible duplicate. */
	if (rc == 0 && left > 0 && (orphans > 0 || dead_claims > 0))
		count(b, TX_DUP_POSSIBLE, left);
	/* Entries left unmatched are VOID records (their messages went to
	 * another consumer): the receiver skips their numbers. Forget their
	 * offsets, which a later message may occupy. */
	for (size_t i = 0; i < n; i++)
		if (ents[i].seq != 0)
			atomic_store(&entry(b, ents[i].seq)[0], 0);
	free(ents);
	b->sent_upto = b->a;
	b->max_sent = b->b; /* anything below may have been sent before */
	return rc;
}

int lfipc_bridge_send_open(lfipc_region *r, const char *queue,
			   const char *endpoint, const lfipc_bridge_opts *opts,
			   lfipc_bridge **out)
{
	lfipc_bridge *b;
	int rc;

	if (!out)
		return -EINVAL;
	if ((rc = bridge_open(r, queue, endpoint, opts, true, &b)))
		goto fail;
	b->fl = calloc(TX_TABLE, sizeof(*b->fl));
	b->bufcap = HDR_LEN + b->o.batch_bytes + 4 * (size_t)b->o.batch;
	b->buf = malloc(b->bufcap);
	if (!b->fl || !b->buf) {
		rc = -ENOMEM;
		goto fail;
	}
	if (ld(b, TX_MAGIC_W) == 0) {
		uint64_t id = 0;

		while (id == 0)
			if (getrandom(&id, sizeof(id), 0) != sizeof(id))
				id = (uint64_t)now_ns() ^
				     ((uint64_t)getpid() << 32);
		st(b, TX_STREAM, id);
		st(b, TX_NEXT, 1);
		st(b, TX_MAGIC_W, TX_MAGIC);
	} else if (ld(b, TX_MAGIC_W) != TX_MAGIC || ld(b, TX_STREAM) == 0) {
		rc = -EPROTO;
		goto fail;
	}
	count(b, TX_SESSIONS, 1);
	if ((rc = tx_recover(b)))
		goto fail;
	if ((rc = b->qfd = lfipc_queue_fd(b->q, LFIPC_FD_GET)) < 0)
		goto fail;
	if ((rc = sock_open(b, ZMQ_DEALER, opts)) ||
	    (rc = set_int(b->sock, ZMQ_IMMEDIATE, 1)) ||
	    (rc = set_int(b->sock, ZMQ_RECONNECT_IVL, 50)) ||
	    (rc = set_int(b->sock, ZMQ_RECONNECT_IVL_MAX, 1000)))
		goto fail;
	/* Each new connection (the receiver restarted, or the network
	 * came back) gets everything unacknowledged again at once: what was
	 * in flight on the old one is gone. */
	if (zmq_socket_monitor(b->sock, MON_EP,
			       ZMQ_EVENT_HANDSHAKE_SUCCEEDED) ||
	    !(b->mon = zmq_socket(b->ctx, ZMQ_PAIR)) ||
	    zmq_connect(b->mon, MON_EP) || zmq_connect(b->sock, endpoint)) {
		rc = zerr();
		goto fail;
	}
	snprintf(b->endpoint, sizeof(b->endpoint), "%s", endpoint);
	b->news_at = now_ns();
	b->resend_ivl = b->o.resend_ns;
	*out = b;
	return 0;
fail:
	lfipc_bridge_close(b);
	return rc;
}

static void hdr(unsigned char *p, uint8_t type, uint8_t flags, uint64_t stream,
		uint64_t low, uint64_t first, uint32_t n)
{
	put32(p, WIRE_MAGIC);
	p[4] = type;
	p[5] = flags;
	p[6] = p[7] = 0;
	put64(p + 8, stream);
	put64(p + 16, low);
	put64(p + 24, first);
	put32(p + 32, n);
	put32(p + 36, 0);
}

/* Send one batch from sent_upto. 1 sent, 0 nothing to send or no room in
 * ZeroMQ (EAGAIN), negative on error. */
static int tx_send(lfipc_bridge *b)
{
	uint64_t s = b->sent_upto, first = s;
	size_t used = HDR_LEN, bytes = 0;
	uint32_t n = 0;

	while (s < b->b && n < b->o.batch) {
		const struct flight *f = &b->fl[s % TX_TABLE];
		size_t len = f->msg ? f->len : 0;

		if (n > 0 && bytes + len > b->o.batch_bytes)
			break;
		if (used + 4 + len > b->bufcap) {
			unsigned char *nb = realloc(b->buf, used + 4 + len);

			if (!nb)
				return -ENOMEM;
			b->buf = nb;
			b->bufcap = used + 4 + len;
		}
		put32(b->buf + used, f->msg ? (uint32_t)len : VOID_LEN);
		if (len)
			memcpy(b->buf + used + 4, f->msg, len);
		used += 4 + len;
		bytes += len;
		n++;
		s++;
	}
	if (n == 0)
		return 0;
	hdr(b->buf, 'D', 0, ld(b, TX_STREAM), b->a, first, n);
	if (zmq_send(b->sock, b->buf, used, ZMQ_DONTWAIT) < 0)
		return zmq_errno() == EAGAIN ? 0 : zerr();
	if (s > b->max_sent) {
		uint64_t fresh =
		    s - (first > b->max_sent ? first : b->max_sent);

		count(b, TX_SENT, fresh);
		count(b, TX_RESENT, n - fresh);
		b->max_sent = s;
	} else {
		count(b, TX_RESENT, n);
	}
	count(b, TX_BATCHES, 1);
	b->sent_upto = s;
	return 1;
}

static int tx_fin(lfipc_bridge *b)
{
	unsigned char p[HDR_LEN];

	hdr(p, 'F', 0, ld(b, TX_STREAM), b->a, b->b, 0);
	if (zmq_send(b->sock, p, sizeof(p), ZMQ_DONTWAIT) < 0)
		return zmq_errno() == EAGAIN ? 0 : zerr();
	b->fin_sent = true;
	b->fin_at = now_ns();
	return 0;
}

/* Release everything below next (an acknowledgement). */
static int tx_ack(lfipc_bridge *b, uint64_t next)
{
	int rc;

	if (next > b->b)
		return 0; /* not a number we gave: ignore */
	while (b->a < next) {
		uint64_t s = b->a;
		struct flight *f = &b->fl[s % TX_TABLE];

		st(b, TX_RELEASING, s);
		if (f->msg && (rc = lfipc_queue_release(b->q, f->msg)))
			return rc;
		atomic_store(&entry(b, s)[0], 0);
		st(b, TX_RELEASING, 0);
		f->msg = NULL;
		b->a = s + 1;
		count(b, TX_ACKED, 1);
	}
	if (b->sent_upto < b->a)
		b->sent_upto = b->a;
	return 0;
}

/* Handle every connection event (mon: the monitor said it has one) and
 * every acknowledgement (acks: the socket said it has one) waiting. 1 if
 * the FIN was acknowledged. Each look costs ZeroMQ a system call or two:
 * only where zmq_poll saw something. */
static int tx_poll_acks(lfipc_bridge *b, bool mon, bool acks)
{
	unsigned char p[ACK_LEN];
	int rc, n;

	for (; mon;) { /* new connections: two frames (event, address) each */
		zmq_msg_t f;
		int more;

		zmq_msg_init(&f);
		n = zmq_msg_recv(&f, b->mon, ZMQ_DONTWAIT);
		more = n >= 0 && zmq_msg_more(&f);
		zmq_msg_close(&f);
		if (n < 0)
			break;
		if (more) {
			zmq_msg_init(&f);
			zmq_msg_recv(&f, b->mon, 0);
			zmq_msg_close(&f);
		}
		b->sent_upto = b->a;
		b->probing = b->probe_out = false;
		b->news_at = now_ns();
		b->resend_ivl = b->o.resend_ns;
	}
	for (; acks;) {
		n = zmq_recv(b->sock, p, sizeof(p), ZMQ_DONTWAIT);
		if (n < 0)
			return zmq_errno() == EAGAIN ? 0 : zerr();
		if (n != ACK_LEN || get32(p) != WIRE_MAGIC || p[4] != 'A' ||
		    get64(p + 8) != ld(b, TX_STREAM))
			continue; /* not ours: ignore */
		b->news_at = now_ns();
		b->resend_ivl = b->o.resend_ns;
		b->probing = b->probe_out = false;
		if ((rc = tx_ack(b, get64(p + 16))))
			return rc;
		if (p[5] & ACK_NACK) {
			uint64_t from = get64(p + 16);

			if (from >= b->a && from < b->sent_upto)
				b->sent_upto = from;
		}
		if ((p[5] & ACK_FIN) && b->fin_sent)
			return 1;
	}
	return 0;
}

/* The sender's one place of waiting: until the source queue has a message
 * (when the window has room for one), an acknowledgement or a connection
 * event arrives, ZeroMQ has room for a batch that is waiting, or the next
 * timer (resend, FIN) is due; at most one slice, so that a stop request
 * and a producer's death inside a put (which does not make the fd
 * readable) are seen. busy: work is known to wait (a full batch was
 * taken), so only look. Then handles the acknowledgements and connection
 * events it saw: 1 if the FIN was acknowledged. */
static int tx_wait(lfipc_bridge *b, int64_t t, bool busy)
{
	zmq_pollitem_t it[3] = {{b->sock, 0, ZMQ_POLLIN, 0},
				{b->mon, 0, ZMQ_POLLIN, 0},
				{NULL, b->qfd, ZMQ_POLLIN, 0}};
	int64_t due = t + SLICE_NS;
	int n = 2;

	if (b->sent_upto < b->b && !b->probe_out)
		it[0].events |= ZMQ_POLLOUT; /* a batch met a full pipe */
	if (!b->src_done && b->b - b->a < b->o.window)
		n = 3;
	if (b->a < b->sent_upto && b->news_at + b->resend_ivl < due)
		due = b->news_at + b->resend_ivl;
	if (b->fin_sent && b->fin_at + b->resend_ivl < due)
		due = b->fin_at + b->resend_ivl;
	due = busy ? 0 : due > t ? (due - t + 999999) / 1000000 : 0;
	if (zmq_poll(it, n, (long)due) < 0) {
		if (zmq_errno() != EINTR)
			return zerr();
		it[0].revents = it[1].revents = ZMQ_POLLIN; /* look anyway */
	}
	return tx_poll_acks(b, it[1].revents & ZMQ_POLLIN,
			    it[0].revents & ZMQ_POLLIN);
}

static int tx_run(lfipc_bridge *b)
{
	int rc;

	st(b, TX_INFLIGHT, b->b - b->a);
	for (;;) {
		bool more = false;
		int64_t t;

		if (atomic_load(&b->stop))
			return -EINTR;
		/* Take what the source holds, without waiting (a NOWAIT peek
		 * that finds nothing also drains the queue's fd): a backlog
		 * fills a batch, a lone message goes alone, at once. */
		while (!b->src_done && b->b - b->a < b->o.window) {
			const void *msg;
			size_t len;

			rc = lfipc_queue_peek(b->q, &msg, &len, LFIPC_NOWAIT);
			if (rc == -EAGAIN)
				break;
			if (rc == -EPIPE) {
				b->src_done = true;
				break;
			}
			if (rc)
				return rc;
			tx_record(b, msg, len);
			if (b->b - b->sent_upto >= b->o.batch) {
				more = true; /* the source may hold more */
				break;
			}
		}
		rc = 0;
		while (!b->probe_out && (rc = tx_send(b)) > 0) {
			if (b->probing) {
				b->probe_out = true;
				break;
			}
		}
		if (rc < 0)
			return rc;
		st(b, TX_INFLIGHT, b->b - b->a);
		t = now_ns();
		if (b->a < b->sent_upto && t - b->news_at > b->resend_ivl) {
			/* Nothing heard: send again, one batch as a probe (what
			 * went before may still sit in ZeroMQ's queues) and
			 * the rest once the receiver answers. */
			b->sent_upto = b->a;
			b->probing = true;
			b->probe_out = false;
			b->news_at = t;
			if (b->resend_ivl < 8 * b->o.resend_ns)
				b->resend_ivl *= 2;
			more = true;
		}
		if (b->src_done && b->a == b->b &&
		    (!b->fin_sent || t - b->fin_at > b->resend_ivl)) {
			if ((rc = tx_fin(b)))
				return rc;
		}
		if ((rc = tx_wait(b, t, more)) < 0)
			return rc;
		if (rc == 1)
			return 0; /* end of stream acknowledged */
	}
}

/* ---- receiver ------------------------------------------------------------ */

int lfipc_bridge_recv_open(lfipc_region *r, const char *queue,
			   const char *endpoint, const lfipc_bridge_opts *opts,
			   lfipc_bridge **out)
{
	lfipc_bridge *b;
	size_t len;
	int rc;

	if (!out)
		return -EINVAL;
	if ((rc = bridge_open(r, queue, endpoint, opts, false, &b)))
		goto fail;
	if (ld(b, RX_MAGIC_W) == 0) {
		st(b, RX_MAGIC_W, RX_MAGIC);
	} else if (ld(b, RX_MAGIC_W) != RX_MAGIC) {
		rc = -EPROTO;
		goto fail;
	}
	count(b, RX_SESSIONS, 1);
	for (int i = 0; i < LFIPC_BRIDGE_MAX_STREAMS; i++) {
		_Atomic uint64_t *s = &b->w[RX_ST + 4 * i];
		uint64_t c = atomic_load(&s[2]), k = atomic_load(&s[3]);

		if (k == 0 || k > RUN_MAX) /* state from before runs; junk */
			k = k ? RUN_MAX : 1;
		if (c != 0 && c == atomic_load(&s[1])) /* died in a put */
			count(b, RX_DUP_POSSIBLE, k);
		atomic_store(&s[2], 0);
	}
	if ((rc = sock_open(b, ZMQ_ROUTER, opts)) ||
	    (rc = zmq_setsockopt(b->sock, ZMQ_MAXMSGSIZE, &(int64_t){MAX_WIRE},
				 sizeof(int64_t))
		      ? zerr()
		      : 0))
		goto fail;
	if (zmq_bind(b->sock, endpoint)) {
		rc = zerr();
		goto fail;
	}
	len = sizeof(b->endpoint);
	if (zmq_getsockopt(b->sock, ZMQ_LAST_ENDPOINT, b->endpoint, &len))
		snprintf(b->endpoint, sizeof(b->endpoint), "%s", endpoint);
	*out = b;
	return 0;
fail:
	lfipc_bridge_close(b);
	return rc;
}

/* The state words of stream id, claiming a free entry for a new one. */
static _Atomic uint64_t *rx_stream(lfipc_bridge *b, uint64_t id)
{
	_Atomic uint64_t *free_s = NULL;

	for (int i = 0; i < LFIPC_BRIDGE_MAX_STREAMS; i++) {
		_Atomic uint64_t *s = &b->w[RX_ST + 4 * i];
		uint64_t v = atomic_load(&s[0]);

		if (v == id)
			return s;
		if (v == 0 && !free_s)
			free_s = s;
	}
	if (free_s) {
		atomic_store(&free_s[1], 0);
		atomic_store(&free_s[2], 0);
		atomic_store(&free_s[0], id);
	}
	return free_s;
}

static int rx_reply(lfipc_bridge *b, zmq_msg_t *id, uint64_t stream,
		    uint64_t next, unsigned flags)
{
	unsigned char p[ACK_LEN];

	put32(p, WIRE_MAGIC);
	p[4] = 'A';
	p[5] = (unsigned char)flags;
	p[6] = p[7] = 0;
	put64(p + 8, stream);
	put64(p + 16, next);
	if (zmq_send(b->sock, zmq_msg_data(id), zmq_msg_size(id),
		     ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
	    zmq_send(b->sock, p, sizeof(p), ZMQ_DONTWAIT) < 0) {
		/* EAGAIN / EHOSTUNREACH: the sender is gone or slow; its
		 * resend timer covers a lost acknowledgement. */
		if (zmq_errno() != EAGAIN && zmq_errno() != EHOSTUNREACH)
			return zerr();
	}
	return 0;
}

/* Send the delayed acknowledgement, if any. */
static int rx_flush(lfipc_bridge *b)
{
	uint64_t stream = b->ack_stream;

	b->ack_stream = 0;
	return stream ? rx_reply(b, &b->ack_id, stream, b->ack_next, 0) : 0;
}

/* Acknowledge a frame of n records. A lone message (the sender has no
 * backlog) is acknowledged up to ACK_DELAY_NS later, or after
 * ACK_DELAY_MAX of them, with what follows it from the same stream: else
 * the acknowledgement of each message wakes three threads (this one's
 * send, both sides' ZeroMQ I/O threads, then the sender) just as the
 * consumer of the destination is being woken. Anything else (a batch, a
 * NACK, a FIN, another stream) goes at once. Acknowledgements are
 * cumulative: a later one replaces a delayed one of the same stream. */
static int rx_ack(lfipc_bridge *b, zmq_msg_t *id, uint64_t stream,
		  uint64_t next, unsigned flags, uint32_t n)
{
	int rc;

	if (b->ack_stream && b->ack_stream != stream && (rc = rx_flush(b)))
		return rc;
	if (flags || n != 1) {
		b->ack_stream = 0;
		return rx_reply(b, id, stream, next, flags);
	}
	if (!b->ack_stream) {
		if (zmq_msg_copy(&b->ack_id, id))
			return rx_reply(b, id, stream, next, 0);
		b->ack_stream = stream;
		b->ack_n = 0;
		b->ack_due = now_ns() + ACK_DELAY_NS;
	}
	b->ack_next = next;
	return ++b->ack_n >= ACK_DELAY_MAX ? rx_flush(b) : 0;
}

/* The run of in-order messages of one frame waiting to go into the
 * destination queue, put together (lfipc_queue_put_many: one wake-up of
 * the destination's consumers per run, not one per message). */
struct run {
	const void *msg[RUN_MAX];
	size_t len[RUN_MAX];
	unsigned n;
};

/* Put the run's messages as sequence numbers *next, *next + 1, ..., waiting
 * in slices (telling the sender it is alive meanwhile): committing = *next
 * and its count (what a crash inside the put may have put), the put, then
 * next advanced over what went in, committing = 0. */
static int rx_put(lfipc_bridge *b, zmq_msg_t *id, uint64_t stream,
		  _Atomic uint64_t *s, struct run *r, uint64_t *next)
{
	unsigned done = 0;

	while (done < r->n) {
		int rc;

		atomic_store(&s[3], r->n - done);
		atomic_store(&s[2], *next);
		rc = lfipc_queue_put_many(b->q, r->msg + done, r->len + done,
					  r->n - done, SLICE_NS);
		if (rc > 0) {
			done += (unsigned)rc;
			*next += (unsigned)rc;
			atomic_store(&s[1], *next);
		}
		atomic_store(&s[2], 0);
		if (rc > 0) {
			count(b, RX_RECEIVED, (unsigned)rc);
			continue;
		}
		if (rc != -ETIMEDOUT)
			return rc;
		if (atomic_load(&b->stop))
			return -EINTR;
		if ((rc = rx_reply(b, id, stream, *next, ACK_BUSY)))
			return rc;
	}
	r->n = 0;
	return 0;
}

static int rx_data(lfipc_bridge *b, zmq_msg_t *id, const unsigned char *p,
		   size_t n)
{
	uint64_t stream, low, first, next;
	uint32_t cnt;
	unsigned flags = 0;
	_Atomic uint64_t *s;
	size_t at = HDR_LEN;
	struct run run;
	int rc = 0;

	run.n = 0;
	if (n < HDR_LEN || get32(p) != WIRE_MAGIC ||
	    (p[4] != 'D' && p[4] != 'F'))
		return 0; /* not ours: ignore */
	stream = get64(p + 8);
	low = get64(p + 16);
	first = get64(p + 24);
	cnt = get32(p + 32);
	if (stream == 0)
		return 0;
	s = rx_stream(b, stream);
	if (!s)
		return 0; /* table full: the sender retries */
	count(b, RX_BATCHES, 1);
	next = atomic_load(&s[1]);
	if (low > next) {
		next = low; /* everything below was acknowledged before */
		atomic_store(&s[1], next);
	}
	if (p[4] == 'F') {
		if (first > next)
			atomic_store(&s[1], first);
		lfipc_queue_shutdown(b->q);
		if (!b->fin_done) {
			count(b, RX_FINS, 1);
			b->fin_done = true;
			b->fin_until = now_ns() + 2 * SLICE_NS * 10;
		}
		return rx_ack(b, id, stream, atomic_load(&s[1]), ACK_FIN, 0);
	}
	if (b->fin_done)
		return 0; /* the queue is shut down: nothing goes in */
	/* next + run.n: the sequence number the next record must have */
	for (uint32_t i = 0; i < cnt && rc == 0; i++) {
		uint64_t seq = first + i;
		uint32_t len;

		if (at + 4 > n)
			break;
		len = get32(p + at);
		at += 4;
		if (len != VOID_LEN && len > n - at)
			break; /* truncated: take what came whole */
		if (seq > next + run.n) {
			count(b, RX_OUT_OF_ORDER, 1);
			flags |= ACK_NACK;
			break;
		}
		if (seq < next + run.n) {
			count(b, RX_DUP_DROPPED, len != VOID_LEN);
		} else if (len == VOID_LEN) {
			if (run.n &&
			    (rc = rx_put(b, id, stream, s, &run, &next)))
				break;
			atomic_store(&s[1], ++next);
		} else {
			run.msg[run.n] = p + at;
			run.len[run.n++] = len;
			if (run.n == RUN_MAX)
				rc = rx_put(b, id, stream, s, &run, &next);
		}
		if (len != VOID_LEN)
			at += len;
	}
	if (rc == 0 && run.n)
		rc = rx_put(b, id, stream, s, &run, &next);
	if (rc && rc != -EINTR)
		return rc;
	{
		int rc2 = rx_ack(b, id, stream, next, flags, cnt);

		return rc ? rc : rc2;
	}
}

/* Answer one ZAP request (RFC 27): accept a CURVE client whose key is in
 * the allow list. */
static int rx_zap(lfipc_bridge *b)
{
	zmq_msg_t f[8];
	int nf = 0, more = 1, rc = 0;
	bool ok = false;

	while (more && nf < 8) {
		zmq_msg_init(&f[nf]);
		if (zmq_msg_recv(&f[nf], b->zap, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&f[nf]);
			rc = zmq_errno() == EAGAIN ? 0 : zerr();
			goto out;
		}
		more = zmq_msg_more(&f[nf]);
		nf++;
	}
	while (more) { /* more frames than RFC 27 has: drain them */
		zmq_msg_t x;

		zmq_msg_init(&x);
		if (zmq_msg_recv(&x, b->zap, 0) < 0) {
			zmq_msg_close(&x);
			break;
		}
		more = zmq_msg_more(&x);
		zmq_msg_close(&x);
	}
	if (nf >= 7 && zmq_msg_size(&f[5]) == 5 &&
	    !memcmp(zmq_msg_data(&f[5]), "CURVE", 5) &&
	    zmq_msg_size(&f[6]) == 32)
		for (size_t i = 0; i < b->nallow && !ok; i++)
			ok = !memcmp(zmq_msg_data(&f[6]), b->allow[i], 32);
	if (!ok)
		count(b, RX_AUTH_DENIED, 1);
	if (nf >= 2) {
		const char *code = ok ? "200" : "400";
		const char *text = ok ? "OK" : "key not allowed";

		if (zmq_send(b->zap, "1.0", 3, ZMQ_SNDMORE) < 0 ||
		    zmq_send(b->zap, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]),
			     ZMQ_SNDMORE) < 0 ||
		    zmq_send(b->zap, code, 3, ZMQ_SNDMORE) < 0 ||
		    zmq_send(b->zap, text, strlen(text), ZMQ_SNDMORE) < 0 ||
		    zmq_send(b->zap, "", 0, ZMQ_SNDMORE) < 0 ||
		    zmq_send(b->zap, "", 0, 0) < 0)
			rc = zerr();
	}
out:
	for (int i = 0; i < nf; i++)
		zmq_msg_close(&f[i]);
	return rc;
}

static int rx_run(lfipc_bridge *b)
{
	zmq_msg_t id, body;
	int rc = 0;

	zmq_msg_init(&id);
	zmq_msg_init(&body);
	zmq_msg_init(&b->ack_id);
	/* After an end of stream, stay (up to 2 s) to answer the sender's
	 * repeated FIN if the acknowledgement was lost with a connection. */
	while (!b->fin_done || now_ns() < b->fin_until) {
		zmq_pollitem_t it[2] = {{b->sock, 0, ZMQ_POLLIN, 0},
					{b->zap, 0, ZMQ_POLLIN, 0}};
		long ms = SLICE_NS / 1000000;
		int64_t t = now_ns();

		if (atomic_load(&b->stop)) {
			rc = -EINTR;
			break;
		}
		if (b->ack_stream && t >= b->ack_due && (rc = rx_flush(b)))
			break;
		if (b->ack_stream)
			ms = (long)((b->ack_due - t + 999999) / 1000000);
		if (zmq_poll(it, b->zap ? 2 : 1, ms) < 0) {
			if (zmq_errno() == EINTR)
				continue;
			rc = zerr();
			break;
		}
		if (b->zap && (it[1].revents & ZMQ_POLLIN) && (rc = rx_zap(b)))
			break;
		if (!(it[0].revents & ZMQ_POLLIN))
			continue;
		for (;;) {
			if (zmq_msg_recv(&id, b->sock, ZMQ_DONTWAIT) < 0) {
				if (zmq_errno() != EAGAIN)
					rc = zerr();
				break;
			}
			if (!zmq_msg_more(&id) ||
			    zmq_msg_recv(&body, b->sock, 0) < 0)
				continue;
			while (zmq_msg_more(&body)) /* extra frames: drop */
				if (zmq_msg_recv(&body, b->sock, 0) < 0)
					break;
			rc = rx_data(b, &id, zmq_msg_data(&body),
				     zmq_msg_size(&body));
			if (rc)
				break;
		}
		if (rc)
			break;
	}
	if (rc == 0 || rc == -EINTR) {
		int rc2 = rx_flush(b);

		rc = rc ? rc : rc2;
	}
	zmq_msg_close(&b->ack_id);
	zmq_msg_close(&id);
	zmq_msg_close(&body);
	return rc;
}

/* ---- common ----------------------------------------------------------------
 */

int lfipc_bridge_run(lfipc_bridge *b)
{
	if (!b)
		return -EINVAL;
	return b->tx ? tx_run(b) : rx_run(b);
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
	free(b->allow);
	free(b->fl);
	free(b->buf);
	free(b);
}

static int stats_open(lfipc_region *r, const char *queue, const char *suffix,
		      size_t words, uint64_t magic, lfipc_array **a)
{
	char name[LFIPC_NAME_MAX + 2];
	int64_t m;
	int rc;

	if (snprintf(name, sizeof(name), "%s%s", queue, suffix) >
	    LFIPC_NAME_MAX)
		return -ENAMETOOLONG;
	rc = lfipc_array_open(r, name, a);
	if (rc)
		return rc;
	if (lfipc_array_type(*a) != LFIPC_U64 || lfipc_array_len(*a) != words ||
	    lfipc_array_load(*a, 0, &m) || (m != 0 && (uint64_t)m != magic)) {
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
	rc = stats_open(r, queue, ".btx", TX_WORDS, TX_MAGIC, &a);
	if (rc == 0) {
		_Atomic uint64_t *w = (_Atomic uint64_t *)lfipc_array_data(a);

		out->has_tx = true;
		out->tx_stream = atomic_load(&w[TX_STREAM]);
		out->tx_next_seq = atomic_load(&w[TX_NEXT]);
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
	rc = stats_open(r, queue, ".brx", RX_WORDS, RX_MAGIC, &a);
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

int lfipc_bridge_keypair(char pub[LFIPC_BRIDGE_KEY_LEN + 1],
			 char sec[LFIPC_BRIDGE_KEY_LEN + 1])
{
	if (!pub || !sec)
		return -EINVAL;
	if (!zmq_has("curve"))
		return -ENOTSUP;
	return zmq_curve_keypair(pub, sec) ? zerr() : 0;
}

int lfipc_bridge_public_key(const char *sec, char pub[LFIPC_BRIDGE_KEY_LEN + 1])
{
	if (!sec || !pub || strlen(sec) != LFIPC_BRIDGE_KEY_LEN)
		return -EINVAL;
	if (!zmq_has("curve"))
		return -ENOTSUP;
	return zmq_curve_public(pub, sec) ? -EINVAL : 0;
}
