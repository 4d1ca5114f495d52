/* SPDX-License-Identifier: MIT */
/*
 * bridge/internal.h - what the files of liblfipc-bridge share (never
 * installed): the protocol, the layout of the shared state words, the
 * handle, small helpers and the functions one file calls in another.
 *   bridge.c       opening, the state Arrays, run/stop/close, statistics,
 *                  the spin of both sides (lfipc__bridge_spin())
 *   bridge_tx.c    the sender: recovery, batches, the acknowledgement window
 *   bridge_rx.c    the receiver: streams, runs into the queue, acknowledgements
 *   bridge_sock.c  ZeroMQ sockets and options, CURVE, the ZAP handler, keys
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
 *         whose message is gone: see "Recovery" below). Flag DATA_LAZY:
 *         the sender's window keeps room for as much again after this
 *         frame, so its acknowledgement may wait (the receiver folds it
 *         into a later one, ACK_DELAY_NS at most); without it the
 *         receiver acknowledges at once (as one that does not know the
 *         flag always does).
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
 * every target lfipc supports). State words are written and read seq_cst
 * (their order against the queue operations around them is what makes a
 * crash recoverable, and only a restarted process reads them), except the
 * sender's entries, written once per message: their words are ordered by
 * the seq_cst store that follows them (TX_NEXT, TX_RELEASING = 0) and the
 * entry's seq is a release store after its offset. Counters are relaxed:
 * they order nothing and only `lfipc-bridge stat` reads them.
 * A crash is the only concurrency on the state words (one sender, one
 * receiver per queue, held by the Array's Lock); stat only reads.
 *
 * Sender state "<queue>.btx" (TX_* below): entry (TX_ENT + 3 * (seq %
 * table)) holds seq (0 = empty), at +1 the offset of the peeked message
 * from the Array's data (both in one mapping of one region, so the
 * offset is the same in every process), and at +2 its tag: TX_TAG_SET |
 * the slot's seq when it was peeked (lfipc_queue_peeked_seq(): position
 * + 1 of the slot's lap, mod 2^32), 0 if the queue could not say. The
 * offset says which slot, the tag which lap of it. A state of TX_MAGIC
 * (made by a sender from before tags) has two words an entry, seq and
 * offset, at TX_ENT + 2 * (seq % table): it is read and kept so
 * (tx_entry_words(); its entries are matched by offset alone, as
 * before), never converted. In-flight sequence numbers are
 * always one contiguous range [A, next), at most table long. The table
 * has window + TX_SPARE entries for the window of the sender that made
 * the Array; every later sender reads table from the Array's length
 * (tx_table()) and keeps its window at most table - TX_SPARE.
 *   peek:    a run of up to 64 (lfipc_queue_peek_many), then per
 *            message entry.off = off; entry.seq = s; then, once per
 *            batch, next = the batch's last s + 1; then send. (entry.tag
 *            is stored with entry.off, before entry.seq. A crash
 *            between the peek and the entries leaves up to 64 peeked
 *            messages without one: orphans that get new numbers, never
 *            sent, so never duplicates.)
 *            Entries at or above next are unsent: a restarted sender
 *            takes the one at next (died between it and next) and
 *            forgets the others (their messages come back as orphans
 *            and get new numbers).
 *   ack:     per run [s, e) of up to REL_MAX acknowledged numbers:
 *            releasing_end = e; releasing = s;
 *            lfipc_queue_release_many(their messages);
 *            entry.seq = 0 for each; releasing = 0.
 * Recovery (a new sender after a crash or a stop): the region's recovery
 * turns the dead process's peeked slots into orphans, in the same slots,
 * which recovery takes with lfipc_queue_peek_orphans() (orphans only,
 * never the head message a peek takes when its rescue fails): an orphan
 * whose offset and tag are an entry's is that entry's message and keeps
 * its sequence number, so the receiver drops it if it had it (an orphan
 * keeps the seq its dead consumer peeked it with, through its repair and
 * rescue). An orphan at an entry's offset with another tag is a newer
 * message of that slot (the entry's message went to another consumer of
 * the source, and a third one peeked the new message and died): it gets
 * a new number (matched by offset alone, it was sent under the entry's
 * number, which the receiver had, and lost). An unknown tag, on either
 * side (a state from before tags, or a slot word the queue could not
 * read), leaves the offset alone to decide, as before. Recovery ends
 * when the queue holds no orphans and no dead claims any more (or after
 * RECOVER_NS, counting what is still missing in TX_DUP_POSSIBLE); entries
 * left are messages gone elsewhere: they become VOID records (counted
 * too while the queue holds messages peeked by live consumers besides
 * us: one may be a closed predecessor's of this process, coming back
 * when it closes the region). An orphan whose stored length a peer
 * scribbled (above the queue's message size) is dropped by the queue
 * (-EPROTO): its entry stays unmatched and becomes VOID too, uncounted
 * (a message never delivered is no duplicate).
 * A crash between `releasing = s` and `releasing = 0` leaves every number of
 * the run [s, e) ambiguous (released or not, and its slot maybe reused): they
 * are not matched; a message that turns up at one of their offsets (and
 * tags, where both are known) during recovery gets a new sequence number
 * and counts in TX_DUP_POSSIBLE (never a loss). So does, when recovery
 * ends, each number of the run whose message did not turn up: released,
 * or not and taken as an orphan by another consumer of the source, which
 * delivered it again (it was acknowledged); the queue cannot tell the two
 * apart, so each entry of the run counts once per recovery, an upper
 * bound (less the corrupt orphans recovery met). The run stays in the
 * state (releasing, releasing_end and its entries) until recovery ends,
 * so that a sender killed in its recovery leaves it to the next (which
 * counts it again, what the killed one counted too); recovery keeps
 * the numbers from the run's oldest to its last new one within the table,
 * and clears the run's entries, then releasing, after it published its
 * new numbers. releasing_end is read only while releasing is set, and
 * written before it: a crash between the two leaves releasing 0 (nothing
 * released yet). State written before runs has releasing_end 0: the run
 * is s alone.
 *
 * Limits of the sender's words, which a reader checks before it trusts
 * them (shared memory is a peer's output):
 *   the Array: U64, with its Lock, of tx_words_ew(w, ew) words for a
 *            window w of 1..LFIPC_BRIDGE_MAX_WINDOW and ew 3 (TX_MAGIC2)
 *            or 2 (TX_MAGIC) words an entry (tx_entry_words() > 0);
 *            anything else, or another kind of object under the name, is
 *            -EPROTO.
 *   magic:   0 (not made yet: a sender makes the words), TX_MAGIC2 (three
 *            words an entry) or TX_MAGIC (two: made before tags). Read
 *            once, at open with the Lock held (b->magic). A sender from
 *            before tags refuses TX_MAGIC2 (-EPROTO), so it never writes
 *            two-word entries into a three-word table.
 *   stream:  non-zero once magic is set. A sender reads it once, at
 *            open, and uses what it read: a rewrite while it runs changes
 *            neither its frames nor the acknowledgements it takes.
 *   next:    0 before magic is set, then 1..TX_NEXT_MAX = 2^63. A
 *            sender that starts at 1 and numbers 10^9 messages a second
 *            reaches 2^63 in 292 years; the upper half of the range keeps
 *            next + table, s + 1 and the wire's numbers from wrapping
 *            past 2^64. Above it: -EPROTO, from lfipc_bridge_send_open()
 *            and lfipc_bridge_stats_read() alike. Each reads the word
 *            once and checks what it read: send_open in tx_recover(),
 *            with the Lock held, on the value it then uses. A sender
 *            never raises it past the limit: at 2^63 it gives no number
 *            more (recovery leaves the orphans left to the run, and the
 *            run ends with -EPROTO when it would peek).
 *   entries: seq in [next - table, next] at index seq % table (below
 *            next when next is 2^63); any other is forgotten by recovery
 *            (its message comes back as an orphan). An offset and a tag
 *            are only compared with those of peeked messages, never
 *            followed. A tag word other than 0 and TX_TAG_SET | a
 *            32-bit seq is read as 0, no tag (tx_tag_word()). Entries
 *            at one offset whose tags do not tell them apart (one tag,
 *            or one without) cannot all be true: none is matched, each
 *            counts in TX_DUP_POSSIBLE and becomes VOID (drop_twins()).
 *   releasing, releasing_end: 0, or the run [releasing, releasing_end)
 *            of at most REL_MAX numbers; any other end is taken as the
 *            one number releasing. Only its numbers below next count
 *            (one at or above was never published, so never released:
 *            its entry is one recorded before its next).
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
#ifndef LFIPC_BRIDGE_INTERNAL_H
#define LFIPC_BRIDGE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <zmq.h>

#include <lfipc/bridge.h>
#include <lfipc/inspect.h>
#include <lfipc/queue.h>
#include <lfipc/sync.h>
#include <lfipc/value.h>

/* ---- shared state layout ------------------------------------------------ */

#define TX_MAGIC UINT64_C(0x3130585442464c4c) /* "LLFBTX01" */
/* A sender's state whose entries have a third word, the tag (below) */
#define TX_MAGIC2 UINT64_C(0x3230585442464c4c) /* "LLFBTX02" */
#define RX_MAGIC UINT64_C(0x3130585242464c4c) /* "LLFBRX01" */

enum {
	TX_MAGIC_W,   /* TX_MAGIC once initialised, 0 before */
	TX_STREAM,    /* random non-zero stream id */
	TX_NEXT,      /* next sequence number to give: 1..TX_NEXT_MAX */
	TX_RELEASING, /* seq being released, 0 none */
	TX_SENT,      /* counters up to TX_INFLIGHT (relaxed) */
	TX_RESENT,
	TX_ACKED,
	TX_BATCHES,
	TX_SESSIONS,
	TX_DUP_POSSIBLE,
	TX_INFLIGHT,
	TX_RELEASING_END, /* end (exclusive) of the run being released */
	TX_ENT = 16,
	/* entries beyond the window: room for what recovery may add */
	TX_SPARE = 64
};

/* The largest TX_NEXT a sender's state may hold (the limits above). */
#define TX_NEXT_MAX (UINT64_C(1) << 63)

/* Whether next, a TX_NEXT read once, is within its limits (0 included:
 * the word of a state whose magic is not set yet). */
static inline bool tx_next_ok(uint64_t next)
{
	return next <= TX_NEXT_MAX;
}

/* Words per entry: seq, offset and tag (TX_MAGIC2, the state a sender
 * makes); seq and offset (TX_MAGIC, a state made before tags). */
#define TX_EW 3u
#define TX_EW_OLD 2u
/* An entry's tag word: TX_TAG_SET | the peeked slot's seq
 * (lfipc_queue_peeked_seq()); 0 no tag known (matched by offset alone). */
#define TX_TAG_SET (UINT64_C(1) << 32)

/* An entry's tag word as read (once) from the state: itself if it is one
 * a sender writes (0, or TX_TAG_SET | a 32-bit seq), else 0: no tag, the
 * entry matched by its offset alone (a tag with bits no sender writes
 * matched no orphan, and the entry's message, which the receiver had,
 * went again under a new number, counted nowhere). */
static inline uint64_t tx_tag_word(uint64_t w)
{
	return (w & ~(TX_TAG_SET | UINT32_MAX)) == 0 ? w : 0;
}

/* Words of a sender's state Array of ew words per entry whose table has
 * room for window. */
static inline size_t tx_words_ew(unsigned window, unsigned ew)
{
	return TX_ENT + ew * ((size_t)window + TX_SPARE);
}

/* Words of the state Array a sender makes for window. */
static inline size_t tx_words(unsigned window)
{
	return tx_words_ew(window, TX_EW);
}

/* The table of a sender's state Array of len words with ew words per
 * entry, or 0 if no sender makes an Array of that length (a peer's, or
 * junk). */
static inline uint64_t tx_table(size_t len, unsigned ew)
{
	if (len < tx_words_ew(1, ew) ||
	    len > tx_words_ew(LFIPC_BRIDGE_MAX_WINDOW, ew) ||
	    (len - TX_ENT) % ew != 0)
		return 0;
	return (len - TX_ENT) / ew;
}

/* The words per entry of a sender's state Array of len words whose magic
 * word holds magic (read once by the caller): TX_EW for TX_MAGIC2,
 * TX_EW_OLD for TX_MAGIC, and for 0 (no sender set it yet: nothing is in
 * the table) TX_EW if a table of that shape fits len, else TX_EW_OLD (an
 * Array made by a sender from before tags that died before its magic).
 * 0: the length fits no table of that shape, or another magic. */
static inline unsigned tx_entry_words(uint64_t magic, size_t len)
{
	if (magic == TX_MAGIC2 || (magic == 0 && tx_table(len, TX_EW)))
		return tx_table(len, TX_EW) ? TX_EW : 0;
	if (magic == TX_MAGIC || magic == 0)
		return tx_table(len, TX_EW_OLD) ? TX_EW_OLD : 0;
	return 0;
}

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

/* ---- wire format ------------------------------------------------------- */

#define WIRE_MAGIC UINT32_C(0x3142464c) /* "LFB1" */
#define HDR_LEN 40
#define ACK_LEN 24
#define VOID_LEN UINT32_MAX
#define ACK_BUSY 0x1u
#define ACK_NACK 0x2u
#define ACK_FIN 0x4u
#define DATA_LAZY 0x1u /* DATA flag: the sender has room, ack may wait */
#define MAX_WIRE ((int64_t)64 << 20)

#define DEF_WINDOW 16384u /* at most: see lfipc__bridge_open() */
#define DEF_BATCH 1024u
#define DEF_BATCH_BYTES ((size_t)256 << 10)
#define DEF_RESEND_NS INT64_C(500000000)
#define SLICE_NS INT64_C(100000000)
#define ACK_DELAY_NS INT64_C(1000000)
#define ACK_DELAY_MAX 32u
#define RUN_MAX 64 /* messages per put into the destination */
#define REL_MAX 64 /* messages per release from the source */
/* Spins in a row that saw something and took nothing, before a side stops
 * spinning (see struct lfipc_bridge, spin_miss). */
#define SPIN_MISS_MAX 8
#define ZAP_EP "inproc://zeromq.zap.01"
#define MON_EP "inproc://lfipc-bridge-monitor"

/* Frame buffers of the sender, reused: a frame handed to ZeroMQ is freed
 * by ZeroMQ's I/O thread once written (frame_free()), which puts it back
 * here. Each entry is NULL or an idle buffer of FRAME_CAP bytes; a thread
 * takes one with an exchange to NULL and gives one back with a CAS from
 * NULL, so neither can take a buffer twice (no ABA: nothing is compared
 * but NULL). At most POOL_N buffers are ever made (a frame that finds none
 * idle when all are made gets a buffer of ZeroMQ's own), so a buffer given
 * back always finds an entry, and every buffer is back once ZeroMQ's
 * context is terminated: lfipc_bridge_close() frees them. POOL_N covers
 * what ZeroMQ holds (SNDHWM data frames) and the one being written. */
#define POOL_N 24

struct frame_pool {
	_Atomic(void *) buf[POOL_N];
	size_t cap;  /* bytes of each buffer */
	unsigned made; /* buffers made (the sender's thread only) */
};

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
	/* The one wait of each side is a poll(2) on plain fds: the sockets'
	 * ZMQ_FD (sfd; xfd: the sender's monitor, the receiver's ZAP handler,
	 * or -1) and the sender's source queue (qfd, its LFIPC_FD_GET).
	 * ZMQ_FD only says that the socket's state may have changed, and a
	 * send can take that news in without saying so: sdirty (set by every
	 * send on sock) means "read sock until EAGAIN before sleeping". */
	int qfd, sfd, xfd;
	bool sdirty;
	bool qready; /* sender: peek (qfd readable, or not asked since) */
	/* lfipc_bridge_set_spin(), both sides: spin_ns (0: no spin), spun
	 * (what the side is taking came from a spin, not its poll) and
	 * spin_miss, the spins in a row that saw something and then found
	 * nothing to take: the sender's peek nothing (a put still in
	 * progress, or a dead or stopped producer's), the receiver's reads no
	 * frame (news of ZeroMQ's that carried none: a connection made or
	 * lost). After SPIN_MISS_MAX of them the side stops spinning until
	 * it takes a message (tx_wait(), rx_wait()). */
	int64_t spin_ns;
	bool spun;
	unsigned spin_miss;
	char endpoint[256];
	lfipc_bridge_opts o;
	unsigned char (*allow)[32];
	size_t nallow;
	/* sender */
	uint64_t table;	   /* entries of the state's table: tx_table() */
	unsigned ew;	   /* words per entry: tx_entry_words() */
	uint64_t magic;	   /* TX_MAGIC_W, read once at open */
	struct flight *fl; /* [table], index seq % table */
	uint64_t a, b, sent_upto, max_sent;
	uint64_t published; /* the TX_NEXT last stored */
	uint64_t stream;    /* TX_STREAM, read once at open (non-zero) */
	uint64_t ack_asked; /* end of the last frame sent without DATA_LAZY */
	struct frame_pool *pool; /* frames: see struct frame_pool */
	/* news_at: the last word from the receiver, or the send of a frame
	 * from the oldest unacknowledged number, whichever came later; the
	 * resend timer runs resend_ivl from it */
	int64_t news_at, resend_ivl, fin_at;
	bool src_done, fin_sent, fin_acked;
	bool probing, probe_out; /* resending after silence: one batch
				  * (probe_out once sent) until news */
	/* peeks in a row that said -EPROTO (see PEEK_EPROTO_MAX in
	 * bridge_tx.c): 0 after any other answer */
	unsigned peek_eproto;
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

static inline int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A pause in a busy wait (the spin of either side). */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

static inline void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static inline void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t get32(const unsigned char *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static inline uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static inline int zerr(void)
{
	int e = zmq_errno();

	return e > 0 ? -e : -EIO;
}

static inline uint64_t ld(lfipc_bridge *b, int i)
{
	return atomic_load(&b->w[i]);
}

static inline void st(lfipc_bridge *b, int i, uint64_t v)
{
	atomic_store(&b->w[i], v);
}

static inline void count(lfipc_bridge *b, int i, uint64_t n)
{
	/* relaxed: a statistic; read only by lfipc_bridge_stats_read(). */
	atomic_fetch_add_explicit(&b->w[i], n, memory_order_relaxed);
}

static inline uint64_t offset_of(lfipc_bridge *b, const void *p)
{
	return (uint64_t)((uintptr_t)p - (uintptr_t)b->w);
}

/* bridge.c: checked arguments, the handle, the queue and the state Array
 * "<queue>.btx" (tx) or "<queue>.brx" with its Lock held. */
int lfipc__bridge_open(lfipc_region *r, const char *queue, const char *endpoint,
		       const lfipc_bridge_opts *opts, bool tx,
		       lfipc_bridge **out);
/* bridge_sock.c */
int lfipc__bridge_set_int(void *sock, int opt, int v);
int lfipc__bridge_sock_open(lfipc_bridge *b, int type,
			    const lfipc_bridge_opts *o);
int lfipc__bridge_zap(lfipc_bridge *b);
int lfipc__bridge_fd(void *sock);
int lfipc__bridge_poll(int sfd, int xfd, int qfd, int64_t timeout_ns,
		       short revents[3]);
/* bridge.c: the spin of either side (lfipc_bridge_set_spin()) */
int lfipc__bridge_spin(lfipc_bridge *b, int64_t until,
		       bool (*look)(lfipc_bridge *b, void *arg), void *arg,
		       unsigned every, unsigned pauses);
/* bridge_tx.c, bridge_rx.c: the loops of lfipc_bridge_run() */
int lfipc__bridge_tx_run(lfipc_bridge *b);
int lfipc__bridge_rx_run(lfipc_bridge *b);

#endif
