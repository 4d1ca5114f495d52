/* SPDX-License-Identifier: MIT */
/*
 * bridge_tx.c - the sending side of lfipc-bridge: taking messages from the
 * source queue with peek, recovery of a predecessor's in-flight messages,
 * DATA and FIN frames, the window of unacknowledged messages and its
 * release on acknowledgements, resends, and the sender's one wait. The
 * protocol and the state words are described in internal.h.
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "internal.h"

/* Messages per lfipc_queue_peek_many() of the sender. */
#define PEEK_MAX 64

/* The index of seq in the table (and in b->fl): seq % table. table is
 * read from the state's length at start (any size, not a power of two),
 * so a division: the loops over consecutive numbers take it once and
 * then step with next_ix() (a 64-bit division per message and use cost
 * the sender 77 → 65 ns per message at 64 B: doc/bridge-perf.md, round 12). */
static inline uint64_t ix_of(const lfipc_bridge *b, uint64_t seq)
{
	return seq % b->table;
}

static inline uint64_t next_ix(const lfipc_bridge *b, uint64_t i)
{
	return i + 1 == b->table ? 0 : i + 1;
}

/* Entry i of the table: [0] seq, [1] offset, [2] tag (b->ew words:
 * the tag only in a state of TX_MAGIC2). */
static _Atomic uint64_t *entry_at(lfipc_bridge *b, uint64_t i)
{
	return &b->w[TX_ENT + b->ew * i];
}

/* The tag word of a message we hold peeked: TX_TAG_SET | its slot's seq,
 * or 0 if the queue cannot say (the slot's word rewritten by a peer: the
 * entry is then matched by its offset alone, as before tags). */
static uint64_t tag_of(lfipc_bridge *b, const void *msg)
{
	uint32_t t;

	return lfipc_queue_peeked_seq(b->q, msg, &t) ? 0 : TX_TAG_SET | t;
}

/* Record the n peeked messages as sequence numbers b->b, b->b + 1, ...
 * and advance. TX_NEXT follows once per batch (tx_publish(), before
 * anything is sent): a restarted sender forgets entries above the TX_NEXT
 * it reads (their messages come back as orphans and get new numbers:
 * never sent, so never a duplicate) and takes the one at TX_NEXT
 * (tx_recover()). */
static void tx_record(lfipc_bridge *b, const void *const *msg,
		      const size_t *len, int n)
{
	uint64_t s = b->b, i = ix_of(b, s);

	for (int k = 0; k < n; k++, s++, i = next_ix(b, i)) {
		_Atomic uint64_t *e = entry_at(b, i);

		/* relaxed: the release store of the entry's seq orders it */
		atomic_store_explicit(&e[1], offset_of(b, msg[k]),
				      memory_order_relaxed);
		if (b->ew == TX_EW)
			/* relaxed: ordered as the offset */
			atomic_store_explicit(&e[2], tag_of(b, msg[k]),
					      memory_order_relaxed);
		/* release: partner the seq_cst load of the seq in
		 * tx_recover(), which reads the offset and the tag after it
		 * (a crash is the only concurrency: this orders the stores
		 * for whoever reads them after it) */
		atomic_store_explicit(&e[0], s, memory_order_release);
		b->fl[i].msg = msg[k];
		b->fl[i].len = len[k];
	}
	b->b = s;
}

/* TX_NEXT = b->b, once per batch instead of once per message: before any
 * frame that carries the numbers recorded since goes out. */
static void tx_publish(lfipc_bridge *b)
{
	if (b->published != b->b) {
		st(b, TX_NEXT, b->b);
		b->published = b->b;
	}
}

struct rent {
	uint64_t off, seq, tag;
	bool twin; /* another entry at its offset with its lap: below */
};

/* By offset, then tag (an unknown tag, below TX_TAG_SET, first). */
static int rent_cmp(const void *x, const void *y)
{
	const struct rent *p = x, *q = y;

	if (p->off != q->off)
		return p->off < q->off ? -1 : 1;
	return p->tag < q->tag ? -1 : p->tag > q->tag;
}

/* The first of e[0 .. n-1] (in rent_cmp's order) not before (off, tag),
 * or n. */
static size_t rent_at(const struct rent *e, size_t n, uint64_t off,
		      uint64_t tag)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t m = lo + (hi - lo) / 2;

		if (e[m].off < off || (e[m].off == off && e[m].tag < tag))
			lo = m + 1;
		else
			hi = m;
	}
	return lo;
}

/* Entries at one offset whose tags do not tell them apart (two with one
 * tag, or two or more where one has none) cannot all be true: a slot
 * holds one message a lap, so a peer wrote one of them, and the orphan
 * at that offset may be any one's message (matched to the first met, it
 * went under a number the receiver had, and was dropped: lost). None of
 * them is matched: their entries are forgotten (VOID), each counts as a
 * possible duplicate (the orphan there gets a new number, and so does the
 * message of the entry a peer rewrote, which comes back elsewhere), and
 * e[0 .. *n-1], sorted, keeps the others. Returns how many went. */
static size_t drop_twins(lfipc_bridge *b, struct rent *e, size_t *n)
{
	size_t k = 0, twins = 0;

	for (size_t i = 0, j; i < *n; i = j) {
		bool untagged = false;

		for (j = i; j < *n && e[j].off == e[i].off; j++)
			untagged |= !(e[j].tag & TX_TAG_SET);
		for (size_t x = i; x < j; x++) {
			e[x].twin =
			    j - i > 1 &&
			    (untagged || (x > i && e[x].tag == e[x - 1].tag) ||
			     (x + 1 < j && e[x].tag == e[x + 1].tag));
			twins += e[x].twin;
		}
	}
	if (!twins)
		return 0;
	/* counted before they are forgotten: a crash between leaves them
	 * to the next sender, which counts them again */
	count(b, TX_DUP_POSSIBLE, twins);
	for (size_t x = 0; x < *n; x++) {
		if (!e[x].twin)
			e[k++] = e[x];
		else
			atomic_store(&entry_at(b, ix_of(b, e[x].seq))[0], 0);
	}
	*n = k;
	return twins;
}

/* The entry of an orphan at offset off with tag word tag in e[0 .. n-1]
 * (drop_twins() done), or NULL. One without a tag is alone at its offset
 * and takes any orphan there; an orphan without a tag takes the entry at
 * its offset if it is alone there (*unsure: it is not, and the orphan may
 * be any one's). */
static struct rent *rent_of(struct rent *e, size_t n, uint64_t off,
			    uint64_t tag, bool *unsure)
{
	size_t i = rent_at(e, n, off, 0);

	*unsure = false;
	if (i == n || e[i].off != off)
		return NULL;
	if (!(e[i].tag & TX_TAG_SET))
		return &e[i];
	if (!(tag & TX_TAG_SET)) {
		*unsure = i + 1 < n && e[i + 1].off == off;
		return *unsure ? NULL : &e[i];
	}
	i = rent_at(e, n, off, tag);
	return i < n && e[i].off == off && e[i].tag == tag ? &e[i] : NULL;
}

/* Whether an entry's tag word et and an orphan's tw say the same lap of
 * the slot: either unknown (a state from before tags, or a slot word the
 * queue could not read) leaves the offset alone to decide. */
static bool same_lap(uint64_t et, uint64_t tw)
{
	return !(et & TX_TAG_SET) || !(tw & TX_TAG_SET) || et == tw;
}

/* Remove the entry of (off, tag) from v[0 .. *n-1], t[0 .. *n-1] if it is
 * there: true if it was. */
static bool take_off(uint64_t *v, uint64_t *t, size_t *n, uint64_t off,
		     uint64_t tag)
{
	for (size_t i = 0; i < *n; i++)
		if (v[i] == off && same_lap(t[i], tag)) {
			--*n;
			v[i] = v[*n];
			t[i] = t[*n];
			return true;
		}
	return false;
}

/* Entries of e[0 .. n-1] left unmatched (seq not 0) below sent_hi, the
 * TX_NEXT the dead sender published: each message may have been sent,
 * and had by the receiver, before another consumer took it as an orphan:
 * delivered twice, once by us. (An entry whose message came back corrupt,
 * and was dropped by the queue, is unmatched too, and delivered once at
 * most: the caller takes the corrupt orphans it met off the count.) */
static size_t gone_after_sending(const struct rent *e, size_t n,
				 uint64_t sent_hi)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += e[i].seq != 0 && e[i].seq < sent_hi;
	return k;
}

/* How long a new sender waits for the dead one's peeked messages to come
 * back (its claims rescued into orphans, and the orphans handed out). */
#define RECOVER_NS ((int64_t)5 * 1000 * 1000 * 1000)

/* The source queue's orphans and dead claims, and its messages peeked by
 * live consumers, ours included (lfipc_queue_stat(); a scan of its slots,
 * so called once per round of recovery, not per message). An error of the
 * status call reads as one dead claim: recovery then waits, RECOVER_NS at
 * most. */
static void dead_ones(lfipc_bridge *b, size_t *orphans, size_t *dead_claims,
		      size_t *reading)
{
	lfipc_queue_status st;

	memset(&st, 0, sizeof(st));
	st.struct_size = sizeof(st);
	if (lfipc_queue_stat(b->q, &st) < 0) {
		st.orphans = 0;
		st.dead_claims = 1;
		st.reading = 0;
	}
	*orphans = st.orphans;
	*dead_claims = st.dead_claims;
	*reading = st.reading;
}

/* After a crash or stop: take back the predecessor's messages (see the
 * file comment, Recovery). */
static int tx_recover(lfipc_bridge *b)
{
	uint64_t next = ld(b, TX_NEXT), amb = ld(b, TX_RELEASING);
	uint64_t amb_end = ld(b, TX_RELEASING_END), lo = UINT64_MAX;
	uint64_t amb_off[REL_MAX], amb_tag[REL_MAX], amb_seq[REL_MAX];
	uint64_t oldest, keep_hi, sent_hi;
	struct rent *ents;
	size_t k, n = 0, left, namb = 0, namb0, orphans = 0, dead_claims = 0;
	size_t unsent = 0, reading = 0, held = 0, live = 0, ncorrupt = 0;
	bool full = false, corrupt = false;
	int rc = 0;

	if (next == 0 || !tx_next_ok(next))
		return -EPROTO; /* read once, checked, used */
	sent_hi = next;
	/* the ambiguous run [amb, amb_end): one number in state from before
	 * runs (amb_end 0), and in nonsense */
	if (amb == 0 || amb_end <= amb || amb_end - amb > REL_MAX)
		amb_end = amb + 1;
	/* and only below next: a number at or above it was never published,
	 * so never sent nor released (a scribbled run there kept the entry
	 * at next, which the first new number then took over, and cleared
	 * that number's entry at the end) */
	if (amb_end > next)
		amb_end = amb < next ? next : amb;
	/* the highest number kept: next (an entry there is one recorded
	 * before its next), unless next is at its limit, TX_NEXT_MAX, where
	 * no number more may be given (taking it raised next past the limit:
	 * a state every later sender refused) */
	keep_hi = next < TX_NEXT_MAX ? next : next - 1;
	ents = malloc(sizeof(*ents) * b->table);
	if (!ents)
		return -ENOMEM;
	for (uint64_t i = 0; i < b->table; i++) {
		_Atomic uint64_t *e = entry_at(b, i);
		uint64_t s = atomic_load(&e[0]), off = atomic_load(&e[1]);
		/* read once, checked: bits no sender writes, no tag */
		uint64_t tag =
		    b->ew == TX_EW ? tx_tag_word(atomic_load(&e[2])) : 0;

		if (s == 0)
			continue;
		/* recorded after the last TX_NEXT, never sent: its message
		 * comes back as an orphan and gets a new number */
		unsent += ix_of(b, s) == i && s > keep_hi &&
			  s - keep_hi <= b->table;
		/* kept: [next - table, next], whose numbers from the oldest
		 * to next are at most table (one entry per index): one
		 * further back would share its flight with next - 1 and
		 * send one message under two numbers */
		if (ix_of(b, s) != i || s > keep_hi ||
		    (next > b->table && s < next - b->table)) {
			atomic_store(&e[0], 0); /* nonsense: forget it */
			continue;
		}
		if (amb && s >= amb && s < amb_end) {
			/* kept in the state until recovery ends (a sender
			 * dying in it leaves the run to the next one) */
			amb_seq[namb] = s;
			amb_tag[namb] = tag;
			amb_off[namb++] = off;
			continue;
		}
		ents[n].off = off;
		ents[n].seq = s;
		ents[n].tag = tag;
		n++;
		if (s < lo)
			lo = s;
		if (s + 1 > next)
			next = s + 1; /* died between entry and next */
	}
	st(b, TX_NEXT, next);
	b->published = next;
	qsort(ents, n, sizeof(*ents), rent_cmp);
	drop_twins(b, ents, &n);
	b->a = n ? lo : next;
	b->b = next;
	/* the oldest number with an entry: the run's kept ones included */
	oldest = b->a;
	for (size_t i = 0; i < namb; i++)
		if (amb_seq[i] < oldest)
			oldest = amb_seq[i];
	namb0 = namb;
	for (uint64_t s = b->a; s < next; s++)
		b->fl[ix_of(b, s)].msg = NULL; /* VOID until matched */
	/* Every message the dead sender had peeked comes back as an orphan,
	 * in its slot; but a rescue that finds the queue lock busy leaves
	 * the slot for a later one, and another consumer may take it first.
	 * So recovery takes orphans and nothing else
	 * (lfipc_queue_peek_orphans(): a peek would take the head message
	 * then, and one in the slot of an entry would pass for the entry's),
	 * by rounds: while the queue holds orphans, take that many (each is
	 * the dead sender's: matched to its entry, or, if it peeked the
	 * message before writing the entry, recorded under a new number);
	 * while it holds no orphan but dead claims, take nothing and let the
	 * region's recovery rescue them. It ends when the queue holds
	 * neither, or after RECOVER_NS (a stopped clearer holding the queue
	 * lock would keep us here: its dead claims wait, and so do its
	 * orphans, which no rescue can take while the lock is held), and
	 * records no more messages than the orphans it took. */
	left = n;
	for (int64_t until = now_ns() + RECOVER_NS;;) {
		const void *msg;
		size_t len;
		struct rent *hit;
		uint64_t off, tag;
		bool unsure;

		if (left == 0 && namb == 0 && unsent == 0)
			break; /* nothing of the dead one's can turn up */
		dead_ones(b, &orphans, &dead_claims, &reading);
		/* peeked by a live consumer other than us (held: what we
		 * peeked since we started) */
		live = reading > held ? reading - held : 0;
		/* Orphans are bounded (each is an entry's, or takes a
		 * number of the table) but corrupt ones, which the queue
		 * drops, are not: a peer that keeps making them (or a
		 * queue that says -EPROTO without dropping anything) keeps
		 * the count up. Once one was seen, RECOVER_NS holds here
		 * too. */
		if (corrupt && orphans > 0 && now_ns() >= until)
			break;
		if (orphans == 0) {
			if (dead_claims == 0 || now_ns() >= until)
				break;
			lfipc_region_recover(b->r);
			nanosleep(&(struct timespec){0, 1000000}, NULL);
			continue;
		}
		for (k = 0; k < orphans; k++) {
			/* An orphan that matches no entry takes a new number,
			 * and the numbers in flight [a, b) must stay within
			 * the table (one index each: one number further would
			 * share its flight with a, one message sent under
			 * two numbers; the entries of the ambiguous run, kept
			 * until the end, count too). A sender's own orphans
			 * never get there (window + TX_SPARE); a scribbled
			 * state's or a foreign consumer's may: with table
			 * numbers in flight, peek no more, and leave the
			 * orphans left to the run (new messages, within its
			 * window). */
			if (b->b - oldest >= b->table ||
			    b->b >= TX_NEXT_MAX) { /* no number left */
				full = true;
				break;
			}
			/* Orphans only: a peek whose rescue found the queue
			 * lock busy, or the orphans taken by another
			 * consumer, took the head message instead, and a new
			 * message in the slot of an entry whose message had
			 * gone elsewhere was matched to the entry, sent under
			 * its old number and dropped by the receiver as a
			 * duplicate: lost. */
			rc = lfipc_queue_peek_orphans(b->q, &msg, &len, 1);
			if (rc == -EPROTO) {
				/* A corrupt orphan (its stored length above
				 * the queue's message size): the queue
				 * dropped it (counted as done in a
				 * JoinableQueue), and it can never be
				 * delivered. Its entry, if it had one, stays
				 * unmatched and becomes VOID below, as that of
				 * a message gone elsewhere; a message never
				 * delivered is no possible duplicate. */
				corrupt = true;
				ncorrupt++;
				rc = 0;
				continue;
			}
			if (rc < 0)
				break; /* -EAGAIN: none to take (below) */
			rc = 0;
			held++;
			off = offset_of(b, msg);
			tag = tag_of(b, msg);
			hit = rent_of(ents, n, off, tag, &unsure);
			/* The entry's message only if it is in the lap the
			 * entry's tag says: a newer message in the slot of an
			 * entry whose message went to another consumer,
			 * peeked by a third that died, is an orphan at the
			 * entry's offset too, and sent under the entry's
			 * number it was dropped by the receiver (if it had
			 * that number): lost. An unknown tag (the state from
			 * before tags, or a slot word the queue could not
			 * read) leaves the offset alone to decide. */
			if (hit && hit->seq != 0) {
				b->fl[ix_of(b, hit->seq)].msg = msg;
				b->fl[ix_of(b, hit->seq)].len = len;
				hit->seq = 0;
				left--;
				continue;
			}
			if (take_off(amb_off, amb_tag, &namb, off, tag) ||
			    unsure)
				count(b, TX_DUP_POSSIBLE, 1);
			tx_record(b, &msg, &len, 1); /* a new number */
		}
		if (rc == -EAGAIN) {
			rc = 0;
			/* Orphans counted but none to take: a rescue found
			 * the queue lock busy (or another consumer took
			 * them: the next round's count says so). A stopped
			 * lock holder keeps them there as it keeps dead
			 * claims: wait as for those, RECOVER_NS at most,
			 * looking again in a while (at once, we spun for as
			 * long as it stayed stopped). */
			if (k == 0) {
				if (now_ns() >= until)
					break;
				nanosleep(&(struct timespec){0, 1000000},
					  NULL);
			}
		}
		if (rc || full)
			break;
	}
	/* Given up with orphans or dead claims left (RECOVER_NS passed, or
	 * the table full): each unmatched entry's message, and each of the
	 * ambiguous run's not seen yet, may still come under a new number,
	 * so each counts as a possible duplicate. So, too, when messages are
	 * left peeked by a live consumer: a predecessor closed in this
	 * process (lfipc_bridge_close() leaves its peeks until the process
	 * closes the region), whose messages are then neither orphans nor
	 * dead claims, and come back later, as orphans, under new numbers. */
	if (rc == 0 && left + namb > 0 &&
	    (orphans > 0 || dead_claims > 0 || live > 0))
		count(b, TX_DUP_POSSIBLE, left + namb);
	/* Ended: each of the ambiguous run's members that did not turn up
	 * was released by the dead sender, or was not and went, as an
	 * orphan, to another consumer of the source, which then delivered
	 * it a second time (it was acknowledged: the receiver had it). Both
	 * leave the slot free in its next lap, and nothing tells them apart:
	 * each counts (an upper bound, the run's length at most), as does
	 * each unmatched entry the dead sender may have sent. A corrupt
	 * orphan (dropped by the queue: its message nobody gets) is taken
	 * off the count as one of these; one that was not (an entry never
	 * published, a message peeked before its entry: a peer scribbled
	 * its length) may leave the count one low. */
	else if (rc == 0 &&
		 (k = gone_after_sending(ents, n, sent_hi) + namb) > ncorrupt)
		count(b, TX_DUP_POSSIBLE, k - ncorrupt);
	/* Entries left unmatched are VOID records (their messages went to
	 * another consumer): the receiver skips their numbers. Forget their
	 * offsets, which a later message may occupy (counted above first: a
	 * crash between leaves them to the next sender, which counts them
	 * again). */
	for (size_t i = 0; i < n; i++)
		if (ents[i].seq != 0)
			atomic_store(&entry_at(b, ix_of(b, ents[i].seq))[0], 0);
	free(ents);
	tx_publish(b);
	/* Only now, with every number recovery gave published, forget the
	 * ambiguous run: first its entries (those a new number has not taken
	 * over), then the word. A sender dying before this leaves both, and
	 * the next one counts the run's members again (what turns up at
	 * their offsets, and what does not). An error leaves them to the
	 * next sender too. */
	for (size_t i = 0; rc == 0 && i < namb0; i++) {
		uint64_t x = amb_seq[i];

		atomic_compare_exchange_strong(&entry_at(b, ix_of(b, x))[0],
					       &x, 0);
	}
	if (rc == 0)
		st(b, TX_RELEASING, 0);
	b->sent_upto = b->a;
	b->max_sent = b->b; /* anything below may have been sent before */
	return rc;
}

int lfipc_bridge_send_open(lfipc_region *r, const char *queue,
			   const char *endpoint, const lfipc_bridge_opts *opts,
			   lfipc_bridge **out)
{
	lfipc_bridge *b;
	uint64_t magic;
	int rc;

	if (!out)
		return -EINVAL;
	if ((rc = lfipc__bridge_open(r, queue, endpoint, opts, true, &b)))
		goto fail;
	b->fl = calloc(b->table, sizeof(*b->fl));
	b->pool = calloc(1, sizeof(*b->pool));
	if (!b->fl || !b->pool) {
		rc = -ENOMEM;
		goto fail;
	}
	/* The magic word and the stream, each read once: the stream goes
	 * into every frame and decides which acknowledgements are ours, and
	 * a peer that rewrites the word while we run must change neither
	 * (stream 0 made the receiver drop every frame, another id made it
	 * take the re-sent window as a new stream's). */
	magic = b->magic; /* read once, by lfipc__bridge_open() */
	if (magic == 0) {
		uint64_t id = 0;

		while (id == 0)
			if (getrandom(&id, sizeof(id), 0) != sizeof(id))
				id = (uint64_t)now_ns() ^
				     ((uint64_t)getpid() << 32);
		st(b, TX_STREAM, id);
		st(b, TX_NEXT, 1);
		/* the shape of entries that lfipc__bridge_open() chose */
		st(b, TX_MAGIC_W, b->ew == TX_EW ? TX_MAGIC2 : TX_MAGIC);
		b->stream = id;
	} else {
		b->stream = ld(b, TX_STREAM);
		if ((magic != TX_MAGIC && magic != TX_MAGIC2) ||
		    b->stream == 0) {
			rc = -EPROTO;
			goto fail;
		}
	}
	for (int i = 0; i < POOL_N; i++)
		atomic_init(&b->pool->buf[i], NULL);
	b->pool->cap = HDR_LEN + 4 * (size_t)b->o.batch + b->o.batch_bytes;
	count(b, TX_SESSIONS, 1);
	if ((rc = tx_recover(b)))
		goto fail;
	if ((rc = b->qfd = lfipc_queue_fd(b->q, LFIPC_FD_GET)) < 0)
		goto fail;
	if ((rc = lfipc__bridge_sock_open(b, ZMQ_DEALER, opts)) ||
	    (rc = lfipc__bridge_set_int(b->sock, ZMQ_IMMEDIATE, 1)) ||
	    (rc = lfipc__bridge_set_int(b->sock, ZMQ_RECONNECT_IVL, 50)) ||
	    (rc = lfipc__bridge_set_int(b->sock, ZMQ_RECONNECT_IVL_MAX, 1000)))
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
	if ((rc = b->sfd = lfipc__bridge_fd(b->sock)) < 0 ||
	    (rc = b->xfd = lfipc__bridge_fd(b->mon)) < 0)
		goto fail;
	b->sdirty = b->qready = true;
	snprintf(b->endpoint, sizeof(b->endpoint), "%s", endpoint);
	b->news_at = now_ns();
	b->resend_ivl = b->o.resend_ns;
	*out = b;
	return 0;
fail:
	lfipc_bridge_close(b);
	return rc;
}

/* An idle frame buffer (see struct frame_pool), a new one while fewer than
 * POOL_N are made, or NULL: then the frame takes a buffer of ZeroMQ's. */
static void *frame_get(struct frame_pool *fp)
{
	void *p;

	for (int i = 0; i < POOL_N; i++) {
		/* relaxed: a hint; the exchange decides */
		if (!atomic_load_explicit(&fp->buf[i], memory_order_relaxed))
			continue;
		/* acquire: pairs with the release CAS in frame_free(): what
		 * ZeroMQ's I/O thread did with the buffer (wrote it to the
		 * socket) comes before our writes into it */
		p = atomic_exchange_explicit(&fp->buf[i], NULL,
					     memory_order_acquire);
		if (p)
			return p;
	}
	if (fp->made == POOL_N || !(p = malloc(fp->cap)))
		return NULL;
	fp->made++;
	return p;
}

/* ZeroMQ's free function for a frame in a pooled buffer (called by its I/O
 * thread once the frame is written, or by zmq_msg_close()): back to an
 * empty entry, which there always is (see struct frame_pool). */
static void frame_free(void *data, void *hint)
{
	struct frame_pool *fp = hint;

	for (int i = 0; i < POOL_N; i++) {
		void *none = NULL;

		/* release: pairs with the acquire exchange in frame_get() */
		if (atomic_compare_exchange_strong_explicit(
			&fp->buf[i], &none, data, memory_order_release,
			memory_order_relaxed))
			return;
	}
	free(data); /* not reached: at most POOL_N buffers exist */
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
	uint64_t s = b->sent_upto, first = s, i0 = ix_of(b, s), i = i0;
	size_t used = HDR_LEN, bytes = 0;
	uint32_t n = 0;
	unsigned flags = 0;
	bool full = false;
	unsigned char *p;
	zmq_msg_t m;

	/* What fits, then the frame built in place in ZeroMQ's message
	 * (zmq_send() would copy a buffer of ours once more). */
	for (; s + n < b->b; i = next_ix(b, i)) {
		const struct flight *f = &b->fl[i];
		size_t len = f->msg ? f->len : 0;

		if (n == b->o.batch ||
		    (n > 0 && bytes + len > b->o.batch_bytes)) {
			full = true;
			break;
		}
		used += 4 + len;
		bytes += len;
		n++;
	}
	if (n == 0)
		return 0;
	full = full || n == b->o.batch;
	/* A full frame (a backlog) whose acknowledgement the window can do
	 * without for now: the receiver may fold it into a later one. An
	 * acknowledgement wakes four threads on the way back (the
	 * receiver's ZeroMQ I/O thread, the sender's, then this one); one
	 * per frame cost more CPU than the frame's records. Asked for at
	 * once (no flag) when the window is past half full and no earlier
	 * ask is still unanswered, and for every partial frame (no
	 * backlog) and probe. */
	if (full && !b->probing &&
	    ((s + n - b->a) * 2 <= b->o.window || b->ack_asked > b->a))
		flags = DATA_LAZY;
	/* In a buffer of ours, reused (a fresh 256 KiB buffer per frame
	 * came from mmap: its pages faulted in and zeroed, then unmapped,
	 * each time), or of ZeroMQ's for an outsized frame. */
	p = used <= b->pool->cap ? frame_get(b->pool) : NULL;
	if (p && zmq_msg_init_data(&m, p, used, frame_free, b->pool)) {
		frame_free(p, b->pool);
		return zerr();
	}
	if (!p) {
		if (zmq_msg_init_size(&m, used))
			return zerr();
		p = zmq_msg_data(&m);
	}
	hdr(p, 'D', (uint8_t)flags, b->stream, b->a, first, n);
	p += HDR_LEN;
	i = i0;
	for (uint32_t k = 0; k < n; k++, s++, i = next_ix(b, i)) {
		const struct flight *f = &b->fl[i];

		put32(p, f->msg ? (uint32_t)f->len : VOID_LEN);
		if (f->msg && f->len)
			memcpy(p + 4, f->msg, f->len);
		p += 4 + (f->msg ? f->len : 0);
	}
	tx_publish(b);
	b->sdirty = true;
	if (zmq_msg_send(&m, b->sock, ZMQ_DONTWAIT) < 0) {
		int e = zmq_errno();

		zmq_msg_close(&m);
		return e == EAGAIN ? 0 : e > 0 ? -e : -EIO;
	}
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
	if (!flags)
		b->ack_asked = s;
	/* A frame from the oldest unacknowledged number (nothing older in
	 * flight: the receiver owed no word before it) starts the resend
	 * timer: from the last news alone, a message sent after a quiet
	 * longer than resend_ivl was sent again at once, before its
	 * acknowledgement could come. After the send, off the message's
	 * path. */
	if (first == b->a)
		b->news_at = now_ns();
	b->sent_upto = s;
	return 1;
}

static int tx_fin(lfipc_bridge *b)
{
	unsigned char p[HDR_LEN];

	hdr(p, 'F', 0, b->stream, b->a, b->b, 0);
	b->sdirty = true;
	if (zmq_send(b->sock, p, sizeof(p), ZMQ_DONTWAIT) < 0)
		return zmq_errno() == EAGAIN ? 0 : zerr();
	b->fin_sent = true;
	b->fin_at = now_ns();
	return 0;
}

/* Release everything below next (an acknowledgement), in runs of up to
 * REL_MAX with one lfipc_queue_release_many() each: one wake-up of the
 * source's producers per run, not one per message. */
static int tx_ack(lfipc_bridge *b, uint64_t next)
{
	if (next > b->b)
		return 0; /* not a number we gave: ignore */
	while (b->a < next) {
		uint64_t s = b->a, e = next - s > REL_MAX ? s + REL_MAX : next;
		const void *m[REL_MAX];
		uint64_t i0 = ix_of(b, s), i = i0;
		int k = 0, rc;

		for (uint64_t t = s; t < e; t++, i = next_ix(b, i))
			if (b->fl[i].msg)
				m[k++] = b->fl[i].msg;
		st(b, TX_RELEASING_END, e);
		st(b, TX_RELEASING, s);
		if (k &&
		    (rc = lfipc_queue_release_many(b->q, m, (size_t)k)) != k)
			return rc < 0 ? rc : -EPROTO;
		i = i0;
		for (uint64_t t = s; t < e; t++, i = next_ix(b, i)) {
			/* relaxed: ordered before the seq_cst store of
			 * TX_RELEASING = 0, which is what a restarted sender
			 * reads first */
			atomic_store_explicit(&entry_at(b, i)[0], 0,
					      memory_order_relaxed);
			b->fl[i].msg = NULL;
		}
		st(b, TX_RELEASING, 0);
		b->a = e;
		count(b, TX_ACKED, e - s);
	}
	if (b->sent_upto < b->a)
		b->sent_upto = b->a;
	return 0;
}

/* Handle every connection event waiting: each new connection (the
 * receiver restarted, the network came back) gets everything
 * unacknowledged again at once. Only called when the monitor's fd said
 * something happened; read until EAGAIN, so its fd tells the next. */
static void tx_mon(lfipc_bridge *b)
{
	for (;;) { /* new connections: two frames (event, address) each */
		zmq_msg_t f;
		int n, more;

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
		b->ack_asked = 0;
		b->probing = b->probe_out = false;
		b->news_at = now_ns();
		b->resend_ivl = b->o.resend_ns;
	}
}

/* Handle every acknowledgement waiting, reading until EAGAIN (which also
 * takes in every command ZeroMQ's I/O thread left for the socket, so its
 * fd tells the next change: sdirty false). The number handled, or a
 * negative errno; b->fin_acked once the FIN is acknowledged. */
static int tx_acks(lfipc_bridge *b)
{
	unsigned char p[ACK_LEN];
	int rc, n, got = 0;

	for (;;) {
		n = zmq_recv(b->sock, p, sizeof(p), ZMQ_DONTWAIT);
		if (n < 0) {
			if (zmq_errno() != EAGAIN)
				return zerr();
			b->sdirty = false;
			return got;
		}
		if (n != ACK_LEN || get32(p) != WIRE_MAGIC || p[4] != 'A' ||
		    get64(p + 8) != b->stream)
			continue; /* not ours: ignore */
		got++;
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
			b->fin_acked = true;
	}
}

/* Peeks in a row that said -EPROTO before the sender stops watching the
 * source (tx_watch_source()). Each such peek of a corrupt length dropped
 * up to PEEK_MAX messages, so this many let a run of thousands through at
 * full speed; but the queue says -EPROTO for nonsense it cannot drop too
 * (a slot word out of its lap, a corrupt role word): that consumes
 * nothing and comes back at once, for good, with the fd readable. After
 * PEEK_EPROTO_MAX the sender peeks once per slice without news (tx_wait()
 * sets qready then), a sleep between, until a peek says anything else. */
#define PEEK_EPROTO_MAX 64

/* The sender's look in its spin (lfipc__bridge_spin()): whether the
 * source queue holds a message, from reads of its positions (no system
 * call, so a look every pause, and the clock, the stop flag and a
 * sched_yield() every 64 looks). */
static bool tx_look(lfipc_bridge *b, void *arg)
{
	(void)arg;
	return !lfipc_queue_empty(b->q);
}

/* The earlier of due and the sender's timers that run: the resend of
 * what is unacknowledged, and the FIN's repeat. */
static int64_t tx_timers_due(const lfipc_bridge *b, int64_t due)
{
	if (b->a < b->sent_upto && b->news_at + b->resend_ivl < due)
		due = b->news_at + b->resend_ivl;
	if (b->fin_sent && b->fin_at + b->resend_ivl < due)
		due = b->fin_at + b->resend_ivl;
	return due;
}

/* Whether the sender would take from the source now: not ended, room in
 * the window, and less than a batch waiting to be sent (a batch that met a
 * full pipe waits for ZeroMQ's room, not for the source). The one test of
 * it: the run loop peeks, and goes back to the peek without a sleep, only
 * while it holds, and only then is the source worth a spin or a watch of
 * its fd (tx_wait()): a backlog behind a full pipe keeps the queue not
 * empty and its fd readable. */
static bool tx_can_take(const lfipc_bridge *b)
{
	return !b->src_done && b->b - b->a < b->o.window &&
	       b->b - b->sent_upto < b->o.batch;
}

/* Whether tx_wait() watches the source (its fd, a spin): the sender would
 * take from it, and it has not said -EPROTO to PEEK_EPROTO_MAX peeks in a
 * row (a queue whose nonsense no peek gets past keeps its fd readable: a
 * poll on it returned at once, for good). */
static bool tx_watch_source(const lfipc_bridge *b)
{
	return tx_can_take(b) && b->peek_eproto < PEEK_EPROTO_MAX;
}

/* The sender's one place of waiting: until the source queue has a message
 * (when the window has room for one), an acknowledgement or a connection
 * event arrives, ZeroMQ has room for a batch that met a full pipe (the
 * socket's fd signals that too), or the next timer (resend, FIN) is due;
 * at most one slice, so that a stop request and a producer's death inside
 * a put (which does not make the fd readable) are seen. busy: work is
 * known to wait (a full batch was taken), so only look. A send since the
 * last look at the acknowledgements (sdirty) may have taken in the
 * socket's news without its fd saying so: read them first, and sleep only
 * if there were none. Then handles what it saw. */
static int tx_wait(lfipc_bridge *b, int64_t t, bool busy)
{
	int64_t due = t + SLICE_NS;
	short ev[3];
	int rc;

	if (b->sdirty && (rc = tx_acks(b)) != 0) {
		if (rc < 0)
			return rc;
		busy = true; /* news: back to work after a look at the rest */
	}
	if (!busy && b->sent_upto < b->b && !b->probe_out) {
		/* A batch met a full pipe, and the room made since may have
		 * been taken in (by the send, or by tx_acks()) without the
		 * fd saying so: ask the socket (two system calls, only
		 * here). */
		int zev;
		size_t l = sizeof(zev);

		if (zmq_getsockopt(b->sock, ZMQ_EVENTS, &zev, &l))
			return zerr();
		if (zev & (ZMQ_POLLIN | ZMQ_POLLOUT))
			busy = b->sdirty = true; /* read and send first */
	}
	/* Nothing to do but wait for the source (the window has room): spin
	 * first, if asked to, so that a message coming soon leaves without a
	 * sleeping thread's wake-up on its path. Not while the receiver is
	 * silent (probing): no latency is won then, and each resend (every
	 * 8 ms at most with --resend-ms 1) would wake it to a whole spin.
	 * An acknowledgement that wakes it (or that it reads after a spin)
	 * brings it back here for another whole spin: a lone message costs
	 * two, kept for the messages the second one catches (doc/bridge.md,
	 * Sender). */
	if (!busy && b->spin_ns > 0 && b->spin_miss < SPIN_MISS_MAX &&
	    !b->probing && tx_watch_source(b)) {
		/* not past a timer: a resend due inside a spin waited for
		 * its end, late by up to the spin (--resend-ms 3 --spin-us
		 * 10000: 10 ms instead of 3) */
		rc = lfipc__bridge_spin(b, tx_timers_due(b, INT64_MAX), tx_look,
					NULL, 64, 1);
		if (rc < 0)
			return rc; /* stopped */
		if (rc) {
			b->qready = b->spun = true;
			return 0;
		}
		/* the poll's timeout from now: the spin took its time */
		t = now_ns();
		due = t + SLICE_NS;
	}
	due = tx_timers_due(b, due);
	if ((rc = lfipc__bridge_poll(b->sfd, b->xfd,
				     tx_watch_source(b) ? b->qfd : -1,
				     busy ? 0 : due - t, ev)))
		return rc;
	/* The queue's fd, or a whole slice without news: look at the
	 * queue (a producer that died inside a put leaves the fd silent). */
	if (ev[2] || (!busy && !ev[0] && !ev[1]))
		b->qready = true;
	if (ev[1])
		tx_mon(b);
	/* A message waits (and the window has room, or qfd was not
	 * watched): peek and send it first, and read the acknowledgements
	 * after it, before the next sleep (sdirty): else the message waits
	 * for the commands ZeroMQ's I/O thread left for the socket (a
	 * mailbox read: three to six system calls), which on a loaded
	 * machine, with every thread of the path on one CPU, is latency.
	 * Connection events are not put off: a new connection must get
	 * the window again before anything newer. */
	if (ev[0] && ev[2]) {
		b->sdirty = true;
		return 0;
	}
	if (ev[0] && (rc = tx_acks(b)) < 0)
		return rc;
	return 0;
}

int lfipc__bridge_tx_run(lfipc_bridge *b)
{
	int rc;

	st(b, TX_INFLIGHT, b->b - b->a);
	for (;;) {
		bool more = false, emptied = false, sent = false;
		int64_t t;

		if (atomic_load(&b->stop))
			return -EINTR;
		/* Take what the source holds, without waiting (a NOWAIT peek
		 * that finds nothing also drains the queue's fd, a system
		 * call: so only when the fd said there is something, qready):
		 * a backlog fills a batch, a lone message goes alone, at
		 * once. */
		while (b->qready && tx_can_take(b)) {
			const void *msg[PEEK_MAX];
			size_t len[PEEK_MAX], want;

			/* as many as the batch and the window take, in runs
			 * (lfipc_queue_peek_many: one move of the queue's get
			 * position per run, not one per message) */
			want = b->o.batch - (b->b - b->sent_upto);
			if (want > b->o.window - (b->b - b->a))
				want = b->o.window - (b->b - b->a);
			if (want > PEEK_MAX)
				want = PEEK_MAX;
			/* TX_NEXT stays within its limit (a state above it is
			 * refused): at the limit, no number is left to give */
			if (b->b >= TX_NEXT_MAX)
				return -EPROTO;
			if (want > TX_NEXT_MAX - b->b)
				want = TX_NEXT_MAX - b->b;
			rc = lfipc_queue_peek_many(b->q, msg, len, want,
						   LFIPC_NOWAIT);
			if (rc != -EPROTO)
				b->peek_eproto = 0; /* a run of them ends */
			if (rc == -EAGAIN) {
				b->qready = false; /* the fd tells the next */
				b->spin_miss += b->spun;
				b->spun = false;
				break;
			}
			if (rc == -EPIPE) {
				b->src_done = true;
				break;
			}
			if (rc == -EPROTO) {
				/* Only corrupt messages were claimed (a
				 * stored length above the queue's message
				 * size): the queue dropped each (counted as
				 * done in a JoinableQueue), and no peek can
				 * return it. Skip them and go on (ending the
				 * sender here let a peer that scribbled one
				 * slot's length stop the bridge). Messages
				 * were consumed, but a source of corrupt ones
				 * only must not keep the loop from its other
				 * duties (a stop, acknowledgements, timers):
				 * to them first, then back to the peek after
				 * a look (tx_wait(), busy: more below). */
				b->spin_miss += b->spun;
				b->spun = false;
				if (b->peek_eproto < PEEK_EPROTO_MAX)
					b->peek_eproto++;
				if (b->peek_eproto == PEEK_EPROTO_MAX)
					b->qready = false; /* a slice tells */
				break;
			}
			if (rc < 0)
				return rc;
			b->spun = false;
			b->spin_miss = 0;
			tx_record(b, msg, len, rc);
			/* Fewer than asked for: the last ones there. Send them
			 * now, and let the peek that finds the queue empty
			 * (two system calls to drain the fd) come after, off
			 * the latency path. */
			if ((size_t)rc < want) {
				emptied = true;
				break;
			}
		}
		rc = 0;
		while (!b->probe_out && (rc = tx_send(b)) > 0) {
			sent = true;
			if (b->probing) {
				b->probe_out = true;
				break;
			}
		}
		if (rc < 0)
			return rc;
		/* The source may hold more (the fd said so, and no peek came
		 * short) and the sender would take it now: back to the peek
		 * after a look at the rest (tx_wait(), busy). A batch still
		 * unsent (it met a full pipe, or a probe is out) waits for
		 * ZeroMQ's room or the receiver's news, which the socket's fd
		 * tells (tx_wait()), not for more of the source: sleep, or
		 * the loop comes back here at once for good. */
		more = b->qready && !emptied && tx_can_take(b);
		/* The frame just sent woke ZeroMQ's I/O thread; what this
		 * thread does next (reading acknowledgements, the peek that
		 * drains the queue's fd: five system calls or more) is off
		 * the message's path only if the I/O thread runs on another
		 * CPU. On a loaded machine it may not: let it go first. */
		if (sent && emptied) {
			sched_yield();
			/* Straight back to the peek, which drains the queue's
			 * fd (or finds the next message): a poll first would
			 * only report that fd, still readable. */
			continue;
		}
		st(b, TX_INFLIGHT, b->b - b->a);
		t = now_ns();
		if (b->a < b->sent_upto && t - b->news_at > b->resend_ivl) {
			/* Nothing heard: send again, one batch as a probe (what
			 * went before may still sit in ZeroMQ's queues) and
			 * the rest once the receiver answers. */
			b->sent_upto = b->a;
			b->ack_asked = 0;
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
		if (b->fin_acked)
			return 0; /* end of stream acknowledged */
	}
}
