/* SPDX-License-Identifier: MIT */
/*
 * queue.c - Queue and JoinableQueue: a Vyukov-style bounded MPMC ring in a
 * shared region whose every claim is visible, with its claimant's token, in
 * the slot word itself (so a dead claimant can always be identified), with
 * futex event counts for blocking and an O(1) clear. See doc/queue.md.
 *
 * Shared layout (struct qhdr, then N slots of stride bytes):
 *
 *   enq_pos, deq_pos  64-bit positions (monotonic; slot = pos & (N-1)), each
 *                     on its own 128-byte block. Every position below
 *                     enq_pos has been claimed by a producer; every position
 *                     below deq_pos has been claimed by a consumer or
 *                     discarded by a clear. A bulk call's run may claim
 *                     consecutive positions beyond the word before moving
 *                     it past all of them at once (see "bulk operations").
 *   not_empty,        event counts: bit 31 = somebody sleeps (EV_WAIT), bits
 *   not_full, joined  0..30 a counter bumped by every waker that saw EV_WAIT.
 *   closed            0 open, anything else shut down.
 *   orphans           upper bound on the number of slots in state ORPHAN.
 *   clearer           token of the participant running a clear, 0 none (the
 *                     clear lock: clears are serialised so that a dead
 *                     clearer can be identified and its half-done work
 *                     undone).
 *   done              JoinableQueue: positions dropped (discarded by a clear
 *                     or a dead producer's hole, or a corrupt message).
 *   got               JoinableQueue: messages handed out by get.
 *   tdone             JoinableQueue: task_done calls (never above got).
 *   Unfinished tasks = enq_pos - done - tdone.
 *
 * Slot word (64 bits): low 32 bits seq, high 32 bits claim = two flag bits
 * (CL_R bit 31, CL_W bit 30) and a participant token T (bits 0..29, 0 =
 * nobody). For the slot at position p (mod 2^32, compared wrap-safely;
 * N <= 2^30):
 *   FREE(p)        seq = p,     claim 0
 *   WRITING(p, T)  seq = p,     claim T | CL_W
 *   FULL(p)        seq = p + 1, claim 0
 *   TOMB(p)        seq = p + 1, claim CL_W: a dead producer's hole
 *   READING(p, T)  seq = p + 1, claim T | CL_R
 *   ORPHAN(p)      seq = p + 1, claim CL_R: a dead consumer's message,
 *                  waiting to be rescued by a live consumer
 *   CLR(p)         seq = p + 1, claim CL_W | CL_R: the message at p was
 *                  discarded by a clear. While deq_pos == p the clear that
 *                  made it (the clear-lock holder) still holds it; behind
 *                  deq_pos it is free for lap p + N.
 *   DISCARD(p, T)  seq = p,     claim T | CL_W | CL_R: a clear discarded
 *                  position p while producer T was still writing it; T's
 *                  publish turns it into CLR(p) instead of FULL(p).
 *   released       seq = p + N, claim 0 (= FREE(p + N))
 * A FULL(p), TOMB(p) or CLR(p) slot with deq_pos > p was discarded by a
 * clear: the producer of lap p + N may claim it directly.
 *
 * Memory order: every access to a slot word and to the positions is seq_cst
 * (the payload is published by the seq_cst CAS that makes a slot FULL and
 * acquired by the seq_cst CAS that claims it; the same total order gives
 * the Dekker-style pairing of "change state, then look at EV_WAIT" with
 * "set EV_WAIT, then look at the state" that makes lost wake-ups
 * impossible). The few relaxed loads are labelled Q<n> below.
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <lfipc/queue.h>

#include "internal/futex.h"
#include "internal/proc.h"
#include "internal/recover.h"
#include "internal/region.h"
#include "internal/wait.h"

#define Q_MAGIC UINT64_C(0x6c66697063517565) /* "lfipcQue" */
#define Q_VERSION 1u
#define CL_W UINT32_C(0x40000000)
#define CL_R UINT32_C(0x80000000)
#define CL_WR (CL_W | CL_R)
#define CL_TOK UINT32_C(0x3fffffff)
#define TOMB CL_W
#define ORPHAN CL_R
#define CLR CL_WR
#define EV_WAIT UINT32_C(0x80000000)
#define SLOT_HDR 16u
#define SPIN_MAX 2000
/* A clear waits at most this long for another live clearer. */
#define CLEAR_WAIT_NS ((int64_t)1000 * 1000 * 1000)

/* Geometry: written once at create (under the region lock), read only at
 * open and then cached in the handle. */
struct qhdr {
	uint64_t magic;
	uint32_t version, flags;
	uint64_t capacity, nslots, msg_size, stride, slots_off;
	uint8_t pad0[128 - 56];
	_Atomic uint64_t enq_pos;
	uint8_t pad1[120];
	_Atomic uint64_t deq_pos;
	uint8_t pad2[120];
	_Atomic uint32_t not_empty;
	uint8_t pad3[124];
	_Atomic uint32_t not_full;
	uint8_t pad4[124];
	_Atomic uint32_t closed;
	_Atomic uint32_t orphans;
	_Atomic uint32_t joined;
	_Atomic uint32_t clearer;
	_Atomic uint64_t done;
	_Atomic uint64_t got;
	_Atomic uint64_t tdone;
	uint8_t pad6[128 - 40];
};

_Static_assert(sizeof(struct qhdr) == 6 * 128, "qhdr layout");

struct qslot {
	_Atomic uint64_t word;
	uint64_t len;
	unsigned char data[];
};

struct lfipc_queue {
	lfipc_region *r;
	struct qhdr *h;
	unsigned char *slots;
	uint64_t cap, n, mask, msg_size, stride, total;
	bool joinable;
};

static inline uint64_t mkword(uint32_t seq, uint32_t claim)
{
	return (uint64_t)seq | ((uint64_t)claim << 32);
}

static inline uint32_t wseq(uint64_t w)
{
	return (uint32_t)w;
}

static inline uint32_t wclaim(uint64_t w)
{
	return (uint32_t)(w >> 32);
}

/* Signed distance a - b of two 32-bit sequence numbers. */
static inline int32_t sdiff(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b);
}

/* The largest |sdiff| between a slot's seq and the position that the
 * shared position word points at, in a queue that is not corrupt, is N + 1
 * (see doc/queue.md); anything further means a peer wrote nonsense. */
static inline bool seq_sane(const lfipc_queue *q, int32_t d)
{
	return d >= -(int64_t)q->n - 2 && d <= (int64_t)q->n + 2;
}

static inline struct qslot *slot_at(const lfipc_queue *q, uint64_t pos)
{
	return (struct qslot *)(q->slots + (pos & q->mask) * q->stride);
}

/* ---- event counts ---------------------------------------------------- */

static void ev_wake(_Atomic uint32_t *ev)
{
	uint32_t v = atomic_load(ev);

	if (!(v & EV_WAIT))
		return;
	while (!atomic_compare_exchange_weak(ev, &v, (v + 1) & ~EV_WAIT)) {
		if (!(v & EV_WAIT))
			return;
	}
	lfipc__futex_wake(ev, INT32_MAX);
}

/* Announce a sleeper; returns the value to wait on. */
static uint32_t ev_announce(_Atomic uint32_t *ev)
{
	return atomic_fetch_or(ev, EV_WAIT) | EV_WAIT;
}

/* ---- create / open --------------------------------------------------- */

struct geom {
	uint64_t cap, n, msg_size, stride;
	unsigned flags;
};

static int q_init(void *block, uint64_t size, void *arg)
{
	const struct geom *g = arg;
	struct qhdr *h = block;
	unsigned char *slots = (unsigned char *)block + sizeof(*h);
	uint64_t i;

	if (size < sizeof(*h) + g->n * g->stride)
		return -ENOSPC;
	h->magic = Q_MAGIC;
	h->version = Q_VERSION;
	h->flags = g->flags;
	h->capacity = g->cap;
	h->nslots = g->n;
	h->msg_size = g->msg_size;
	h->stride = g->stride;
	h->slots_off = sizeof(*h);
	for (i = 0; i < g->n; i++) {
		struct qslot *s = (struct qslot *)(slots + i * g->stride);

		atomic_init(&s->word, mkword((uint32_t)i, 0));
	}
	return 0;
}

/* Validate the geometry of the queue at off (size bytes, inside the heap)
 * and build a handle. Each shared field is read exactly once, so a peer
 * changing them meanwhile cannot make a checked value differ from a used
 * one; nothing here is read from shared memory again. */
static int q_handle(lfipc_region *r, uint64_t off, uint64_t size,
		    lfipc_queue **out)
{
	struct qhdr *h = lfipc__at(r, off);
	lfipc_queue *q;
	uint64_t n, stride, ms, cap, soff;
	uint32_t flags;

	if (off % LFIPC_GRANULE || size < sizeof(*h) || h->magic != Q_MAGIC ||
	    h->version != Q_VERSION)
		return -EPROTO;
	n = h->nslots;
	cap = h->capacity;
	ms = h->msg_size;
	stride = h->stride;
	soff = h->slots_off;
	flags = h->flags;
	if (n < 2 || (n & (n - 1)) || n > (uint64_t)LFIPC_QUEUE_MAX_CAPACITY ||
	    cap == 0 || cap > n || ms > LFIPC_QUEUE_MAX_MSG_SIZE ||
	    stride < SLOT_HDR + ms || stride % 64 ||
	    stride > LFIPC_QUEUE_MAX_MSG_SIZE + 128 || soff != sizeof(*h) ||
	    (size - sizeof(*h)) / stride < n ||
	    (flags & ~(uint32_t)LFIPC_QUEUE_JOINABLE))
		return -EPROTO;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->r = r;
	q->h = h;
	q->slots = (unsigned char *)h + sizeof(*h);
	q->cap = cap;
	q->n = n;
	q->mask = n - 1;
	q->msg_size = ms;
	q->stride = stride;
	q->total = n * stride;
	q->joinable = flags & LFIPC_QUEUE_JOINABLE;
	*out = q;
	return 0;
}

int lfipc_queue_create(lfipc_region *r, const char *name, size_t capacity,
		       size_t msg_size, unsigned flags, lfipc_queue **out)
{
	struct geom g;
	uint64_t off, size;
	int rc;

	if (!r || !out || capacity == 0 ||
	    capacity > LFIPC_QUEUE_MAX_CAPACITY ||
	    msg_size > LFIPC_QUEUE_MAX_MSG_SIZE ||
	    (flags & ~LFIPC_QUEUE_JOINABLE))
		return -EINVAL;
	rc = lfipc__name_check(name);
	if (rc)
		return rc;
	g.cap = capacity;
	/* at least 2 slots: with one, FULL(p) and FREE(p + 1) look alike */
	g.n = 2;
	while (g.n < capacity)
		g.n <<= 1;
	g.msg_size = msg_size;
	g.stride = (SLOT_HDR + msg_size + 63) & ~(uint64_t)63;
	g.flags = flags;
	size = sizeof(struct qhdr) + g.n * g.stride;
	rc = lfipc__obj_create(r, name, LFIPC_OBJ_QUEUE, size, 128, q_init, &g,
			       &off);
	if (rc)
		return rc;
	return q_handle(r, off, size, out);
}

int lfipc_queue_open(lfipc_region *r, const char *name, lfipc_queue **out)
{
	uint64_t off, size;
	int rc;

	if (!r || !out)
		return -EINVAL;
	rc = lfipc__obj_open(r, name, LFIPC_OBJ_QUEUE, &off, &size);
	if (rc)
		return rc;
	return q_handle(r, off, size, out);
}

void lfipc_queue_close(lfipc_queue *q)
{
	free(q);
}

/* ---- dead claimants -------------------------------------------------- */

static void pos_advance(_Atomic uint64_t *pos, uint64_t to);

/* A dead consumer's READING(p) became ORPHAN(p). A get run claims a run
 * of positions beyond deq_pos before moving it once; if its consumer died
 * in between, p lies at or beyond deq_pos, and every position from
 * deq_pos to p is that run's (now orphaned too). Move deq_pos past p, so
 * that orphans lie behind deq_pos, as everything else assumes (clear's
 * "enq_pos - deq_pos <= N + 1", the capacity test). */
static void orphan_behind(lfipc_queue *q, uint32_t seq)
{
	uint64_t d = atomic_load(&q->h->deq_pos);
	uint64_t p = d + (uint64_t)(int64_t)(int32_t)(seq - 1 - (uint32_t)d);

	if ((int64_t)(p - d) >= 0 && p - d < q->n)
		pos_advance(&q->h->deq_pos, p + 1);
}

/* Slot s holds word w claimed by token tok (WRITING, DISCARD or READING):
 * if the claimant is dead, turn WRITING into TOMB, DISCARD into CLR (the
 * clear already accounted for it) and READING into ORPHAN (moving deq_pos
 * past it, see orphan_behind). Returns 1 when it repaired something. */
static int repair(lfipc_queue *q, struct qslot *s, uint64_t w)
{
	uint32_t c = wclaim(w), tok = c & CL_TOK;
	uint64_t nw;

	if (tok == 0 || !(c & CL_WR))
		return 0;
	if (lfipc__token_alive(q->r, tok))
		return 0;
	if ((c & CL_WR) == CL_WR)
		nw = mkword(wseq(w) + 1, CLR);
	else if (c & CL_W)
		nw = mkword(wseq(w) + 1, TOMB);
	else
		nw = mkword(wseq(w), ORPHAN);
	/* Count the orphan before it exists, so that the counter is never
	 * below the number of ORPHAN slots (consumers scan while it is
	 * non-zero). */
	if (nw == mkword(wseq(w), ORPHAN))
		atomic_fetch_add(&q->h->orphans, 1);
	if (!atomic_compare_exchange_strong(&s->word, &w, nw)) {
		if (wclaim(nw) == ORPHAN)
			atomic_fetch_sub(&q->h->orphans, 1);
		return 0;
	}
	if (wclaim(nw) == ORPHAN)
		orphan_behind(q, wseq(nw));
	ev_wake(&q->h->not_empty);
	ev_wake(&q->h->not_full);
	return 1;
}

/* Undo what a clearer that died holding the clear lock left at the head:
 * a head it had marked but not yet moved deq_pos past. Called with the
 * lock taken over by the caller. A marked FULL/TOMB head (CLR at deq_pos)
 * becomes TOMB, so the next get drops (and counts) it: that message was
 * being discarded anyway. A DISCARD head goes back to WRITING for its
 * producer. Returns 1 when it changed something. */
static int clear_undo(lfipc_queue *q)
{
	for (int tries = 0; tries < 64; tries++) {
		uint64_t d = atomic_load(&q->h->deq_pos);
		struct qslot *s = slot_at(q, d);
		uint64_t w = atomic_load(&s->word);
		uint32_t c = wclaim(w);
		uint64_t nw;

		if (wseq(w) == (uint32_t)(d + 1) && c == CLR)
			nw = mkword(wseq(w), TOMB);
		else if (wseq(w) == (uint32_t)d && (c & CL_WR) == CL_WR &&
			 (c & CL_TOK))
			nw = mkword(wseq(w), (c & CL_TOK) | CL_W);
		else
			return 0;
		if (atomic_compare_exchange_strong(&s->word, &w, nw)) {
			ev_wake(&q->h->not_empty);
			return 1;
		}
	}
	return 0;
}

/* If the clear lock is held by a dead participant, take it over, undo its
 * half-done work and release it. Returns 1 when it did. */
static int clear_lock_repair(lfipc_queue *q, uint32_t holder)
{
	uint32_t tok;
	int n;

	if (holder == 0 || lfipc__token_alive(q->r, holder) ||
	    lfipc__self(q->r, &tok) ||
	    !atomic_compare_exchange_strong(&q->h->clearer, &holder, tok))
		return 0;
	n = clear_undo(q);
	atomic_store(&q->h->clearer, 0);
	return 1 + n;
}

/* Scan every slot for dead claimants (slow path only). */
static int scan_dead(lfipc_queue *q)
{
	uint64_t i;
	int n = 0;

	n += clear_lock_repair(q, atomic_load(&q->h->clearer)) ? 1 : 0;
	for (i = 0; i < q->n; i++) {
		struct qslot *s = slot_at(q, i);
		/* Q1: relaxed; repair() re-validates with a CAS. */
		uint64_t w =
		    atomic_load_explicit(&s->word, memory_order_relaxed);

		if (wclaim(w) & CL_TOK)
			n += repair(q, s, w);
	}
	return n;
}

int lfipc__queue_recover(lfipc_region *r, uint64_t off, uint64_t size)
{
	lfipc_queue *q;
	int rc;

	rc = q_handle(r, off, size, &q);
	if (rc)
		return rc;
	rc = scan_dead(q);
	free(q);
	return rc;
}

/* ---- producer side --------------------------------------------------- */

/* Claim slot s (word w, position p) for writing by tok and help enq_pos. */
static bool put_cas(lfipc_queue *q, struct qslot *s, uint64_t w, uint64_t p,
		    uint32_t tok)
{
	uint64_t p2 = p;

	if (!atomic_compare_exchange_strong(&s->word, &w,
					    mkword((uint32_t)p, tok | CL_W)))
		return false;
	atomic_compare_exchange_strong(&q->h->enq_pos, &p2, p + 1);
	return true;
}

/* Try to claim one slot for writing. 1: *pos_out, *s_out claimed;
 * 0: full; -EPROTO: the shared words make no sense. */
static int try_claim_put(lfipc_queue *q, uint32_t tok, struct qslot **s_out,
			 uint64_t *pos_out)
{
	struct qhdr *h = q->h;
	uint64_t p = atomic_load(&h->enq_pos);

	for (;;) {
		struct qslot *s = slot_at(q, p);
		uint64_t w = atomic_load(&s->word);
		int32_t d = sdiff(wseq(w), (uint32_t)p);
		uint32_t c = wclaim(w);
		uint64_t p2;

		if (q->cap != q->n && (int64_t)(p - atomic_load(&h->deq_pos)) >=
					  (int64_t)q->cap) {
			p2 = atomic_load(&h->enq_pos);
			if (p2 == p)
				return 0;
			p = p2;
			continue;
		}
		if (d == 0 && c == 0) {
			if (put_cas(q, s, w, p, tok)) {
				*s_out = s;
				*pos_out = p;
				return 1;
			}
			continue;
		}
		if (d == sdiff((uint32_t)(p - q->n + 1), (uint32_t)p) &&
		    (c == 0 || c == TOMB || c == CLR) &&
		    (int64_t)(atomic_load(&h->deq_pos) - (p - q->n)) > 0) {
			/* FULL / TOMB / CLR of the previous lap behind
			 * deq_pos: discarded by a clear, free for this lap. */
			if (put_cas(q, s, w, p, tok)) {
				*s_out = s;
				*pos_out = p;
				return 1;
			}
			continue;
		}
		p2 = atomic_load(&h->enq_pos);
		if (p2 != p) {
			p = p2;
			continue;
		}
		/* enq_pos was p when w was loaded: w must be within a lap. */
		if (!seq_sane(q, d))
			return -EPROTO;
		if (d < 0)
			return 0; /* the previous lap still holds it: full */
		/* slot p is claimed or beyond (its claimant has not moved
		 * enq_pos yet): help. */
		if (atomic_compare_exchange_strong(&h->enq_pos, &p2, p + 1))
			p = p + 1;
		else
			p = p2;
	}
}

/* Publish the slot at position p claimed by tok, without waking anybody.
 * Returns 0 published (the caller wakes not_empty), 1 a clear discarded it
 * meanwhile and it was handed over as CLR (the caller wakes not_full), or
 * -EPROTO when the word was overwritten. */
static int publish_slot(struct qslot *s, uint64_t p, uint32_t tok)
{
	uint64_t w = mkword((uint32_t)p, tok | CL_W);

	/* Q2: seq_cst CAS (release for the payload; pairs with the
	 * consumer's claiming CAS in try_claim_get() or get_run(), and orders
	 * against the waiter flag load in ev_wake). */
	if (atomic_compare_exchange_strong(&s->word, &w,
					   mkword((uint32_t)(p + 1), 0)))
		return 0;
	/* A clear took the slot (DISCARD): the message is discarded; hand
	 * the slot over as CLR, the clear has counted it. */
	if (w == mkword((uint32_t)p, tok | CL_WR) &&
	    atomic_compare_exchange_strong(&s->word, &w,
					   mkword((uint32_t)(p + 1), CLR)))
		return 1;
	return -EPROTO;
}

/* A slot published at position p behind deq_pos (a clear passed it while
 * it was being written) is free for the next lap at once, so producers
 * asleep on a full queue must hear of it. Q8: seq_cst loads: the publish
 * CAS, then these, against a sleeper's ev_announce, then its claim
 * attempt (Dekker). The deq_pos line is read only when producers sleep. */
static void wake_if_behind(lfipc_queue *q, uint64_t p)
{
	if ((atomic_load(&q->h->not_full) & EV_WAIT) &&
	    (int64_t)(atomic_load(&q->h->deq_pos) - p) > 0)
		ev_wake(&q->h->not_full);
}

/* Publish the slot at position p claimed by tok and wake whom it concerns.
 * Returns 0 (also when a clear discarded it meanwhile) or -EPROTO. */
static int publish(lfipc_queue *q, struct qslot *s, uint64_t p, uint32_t tok)
{
	int rc = publish_slot(s, p, tok);

	if (rc == 0) {
		ev_wake(&q->h->not_empty);
		wake_if_behind(q, p);
	} else if (rc == 1) {
		ev_wake(&q->h->not_full);
	}
	return rc < 0 ? rc : 0;
}

/* Give up position p of slot s, claimed by tok and not published: TOMB(p),
 * which the next get drops (and counts as done), as it would a dead
 * producer's; a slot a clear discarded meanwhile (DISCARD) becomes CLR.
 * The caller wakes not_empty (a consumer may wait for this head). */
static void give_up_slot(struct qslot *s, uint64_t p, uint32_t tok)
{
	uint64_t w = mkword((uint32_t)p, tok | CL_W);

	if (!atomic_compare_exchange_strong(&s->word, &w,
					    mkword((uint32_t)(p + 1), TOMB)) &&
	    w == mkword((uint32_t)p, tok | CL_WR))
		atomic_compare_exchange_strong(&s->word, &w,
					       mkword((uint32_t)(p + 1), CLR));
}

/* A put that claimed position p of slot s and then found the queue shut
 * down gives the position up. Without this, a claim made just after a get
 * saw "closed and empty" and returned -EPIPE would leave a message that no
 * consumer is waiting for. */
static int put_closed(lfipc_queue *q, struct qslot *s, uint64_t p, uint32_t tok)
{
	give_up_slot(s, p, tok);
	ev_wake(&q->h->not_empty);
	return -EPIPE;
}

/* One claim attempt: 0 claimed, 1 full, or a negative errno. The seq_cst
 * load of closed after the claim pairs with the seq_cst store in
 * lfipc_queue_shutdown(): either the shutdown comes later in the total
 * order (and a get that then sees "closed" also sees our enq_pos, so it
 * waits for our message), or we see it and give the position up. */
static int claim_once(lfipc_queue *q, uint32_t tok, struct qslot **s,
		      uint64_t *pos)
{
	int rc = try_claim_put(q, tok, s, pos);

	if (rc < 0)
		return rc;
	if (rc == 0)
		return 1;
	if (atomic_load(&q->h->closed))
		return put_closed(q, *s, *pos, tok);
	return 0;
}

/* Claim one slot for a put, waiting until deadline. */
static int claim_put(lfipc_queue *q, struct qslot **s, uint64_t *pos,
		     uint32_t *tok_out, int64_t timeout_ns)
{
	lfipc_deadline dl = 0;
	bool dl_set = false;
	uint32_t tok;
	int rc, spins = 0;

	rc = lfipc__self(q->r, &tok);
	if (rc)
		return rc;
	*tok_out = tok;
	for (;;) {
		uint32_t v;

		/* Q3: relaxed: an early exit only; the authoritative check
		 * is the seq_cst load after ev_announce() below. */
		if (atomic_load_explicit(&q->h->closed, memory_order_relaxed))
			return -EPIPE;
		rc = claim_once(q, tok, s, pos);
		if (rc <= 0)
			return rc;
		if (timeout_ns == LFIPC_NOWAIT)
			return -EAGAIN;
		if (!dl_set) {
			dl = lfipc__deadline(timeout_ns);
			dl_set = true;
		}
		if (lfipc__ncpus() > 1 && spins < SPIN_MAX) {
			spins++;
			lfipc__cpu_relax();
			continue;
		}
		v = ev_announce(&q->h->not_full);
		if (atomic_load(&q->h->closed))
			return -EPIPE;
		rc = claim_once(q, tok, s, pos);
		if (rc <= 0)
			return rc;
		if (lfipc__expired(dl))
			return -ETIMEDOUT;
		rc = lfipc__futex_wait(&q->h->not_full, v,
				       lfipc__slice_end(dl, LFIPC_SLICE_NS));
		if (rc == -ETIMEDOUT) {
			/* slice end: a dead consumer may hold the queue */
			scan_dead(q);
			if (lfipc__expired(dl))
				return -ETIMEDOUT;
		}
	}
}

int lfipc_queue_put(lfipc_queue *q, const void *msg, size_t len,
		    int64_t timeout_ns)
{
	struct qslot *s;
	uint64_t p;
	uint32_t tok;
	int rc;

	if (!q || (!msg && len))
		return -EINVAL;
	if (len > q->msg_size)
		return -EMSGSIZE;
	rc = claim_put(q, &s, &p, &tok, timeout_ns);
	if (rc)
		return rc;
	if (len)
		memcpy(s->data, msg, len);
	s->len = len;
	return publish(q, s, p, tok);
}

/* ---- bulk operations --------------------------------------------------
 *
 * A bulk call claims a run of consecutive positions p, p+1, ... after one
 * ordinary claim of p (which waits, helps and checks closed exactly like a
 * single put or get). Each further position is claimed by its own CAS on
 * its slot word, carrying the claimant's token as always (so a dead
 * claimant's slots are repaired one by one, exactly like a single put's or
 * get's); only the shared position word is moved once for the whole run,
 * and the event word is looked at once. A run stops at the first position
 * that is not in the expected state (another participant won it, the queue
 * is full or empty there, or the slot is in any unusual state); the next
 * segment of the call then starts with an ordinary claim, which deals with
 * whatever stopped the run. See doc/queue.md, "Bulk operations", for why a
 * run may be ahead of the position word. */

/* Claims per batch: the slots of one batch are held (claimed) together
 * until the batch is copied and published or released. */
#define BULK_MAX 64

/* Move the position word *pos forward to `to`, never backwards (another
 * participant may have helped it further). Every position below `to` that
 * the word skips is claimed by the caller, so nobody else can be relying on
 * the word staying at one of them (a clear holds only an unclaimed head). */
static void pos_advance(_Atomic uint64_t *pos, uint64_t to)
{
	uint64_t v = atomic_load(pos);

	while ((int64_t)(to - v) > 0 &&
	       !atomic_compare_exchange_weak(pos, &v, to))
		;
}

/* Extend a put run: claim position p, the one after the caller's previous
 * claim, for tok without touching enq_pos. deq is a value deq_pos had at or
 * after the run's first claim (for the capacity test; a stale value only
 * stops the run early). Returns the slot, or NULL when p is not free for
 * us. */
static struct qslot *put_run_claim(lfipc_queue *q, uint64_t p, uint64_t deq,
				   uint32_t tok)
{
	struct qslot *s = slot_at(q, p);
	uint64_t w, nw = mkword((uint32_t)p, tok | CL_W);
	uint32_t c;

	if (q->cap != q->n && (int64_t)(p - deq) >= (int64_t)q->cap)
		return NULL;
	/* FREE(p), the usual case: CAS without a load first (the line is
	 * usually in the last consumer's cache: one transfer, not two). */
	w = mkword((uint32_t)p, 0);
	if (atomic_compare_exchange_strong(&s->word, &w, nw))
		return s;
	c = wclaim(w);
	if (wseq(w) != (uint32_t)(p - q->n + 1) ||
	    !(c == 0 || c == TOMB || c == CLR) ||
	    (int64_t)(atomic_load(&q->h->deq_pos) - (p - q->n)) <= 0)
		return NULL; /* neither FREE(p) nor discarded by a clear */
	if (!atomic_compare_exchange_strong(&s->word, &w, nw))
		return NULL;
	return s;
}

/* Claim up to m positions for a put batch into pos[] (tok in *tok; first:
 * the call's first batch, which may wait up to timeout_ns). Returns the
 * number claimed (>= 1), or a negative errno when none was. Every position
 * returned was claimed, enq_pos moved past it and then `closed` seen 0
 * (seq_cst), so, as for a single put, no consumer can have given up on it. */
static int put_batch_claim(lfipc_queue *q, uint64_t *pos, int m, bool first,
			   uint32_t *tok, int64_t timeout_ns)
{
	int k = 0;

	while (k < m) {
		struct qslot *s;
		uint64_t p, deq = 0;
		int rc, start;

		if (first && k == 0)
			rc = claim_put(q, &s, &p, tok, timeout_ns);
		else
			rc = claim_once(q, *tok, &s, &p);
		if (rc)
			return k ? k : (rc == 1 ? -EAGAIN : rc);
		/* p is claimed, enq_pos is past it and closed was 0 after. */
		pos[k++] = p;
		start = k;
		if (q->cap != q->n)
			deq = atomic_load(&q->h->deq_pos);
		while (k < m && put_run_claim(q, p + 1, deq, *tok))
			pos[k++] = ++p;
		if (k == start)
			continue;
		pos_advance(&q->h->enq_pos, p + 1);
		/* As in claim_once(): either our claims and enq_pos moving
		 * past them come before the shutdown in the total order, or
		 * we see it and give the run up (its first position was
		 * checked already and stays). */
		if (atomic_load(&q->h->closed)) {
			for (int i = start; i < k; i++)
				give_up_slot(slot_at(q, pos[i]), pos[i], *tok);
			ev_wake(&q->h->not_empty);
			return start;
		}
	}
	return k;
}

int lfipc_queue_put_many(lfipc_queue *q, const void *const *msgs,
			 const size_t *lens, size_t n, int64_t timeout_ns)
{
	uint64_t pos[BULK_MAX];
	size_t i, done = 0;
	uint32_t tok = 0;

	if (!q || !msgs || !lens || n == 0 || n > INT32_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (lens[i] > q->msg_size)
			return -EMSGSIZE;
		if (!msgs[i] && lens[i])
			return -EINVAL;
	}
	while (done < n) {
		int m = n - done > BULK_MAX ? BULK_MAX : (int)(n - done);
		int k = put_batch_claim(q, pos, m, done == 0, &tok, timeout_ns);
		bool woke_e = false, woke_f = false;
		int bad = -1;

		if (k < 0)
			return done ? (int)done : k;
		for (int j = 0; j < k; j++) {
			struct qslot *s = slot_at(q, pos[j]);

			if (lens[done + j])
				memcpy(s->data, msgs[done + j], lens[done + j]);
			s->len = lens[done + j];
		}
		for (int j = 0; j < k; j++) {
			struct qslot *s = slot_at(q, pos[j]);
			int rc;

			if (bad >= 0) {
				/* after a corrupt slot: give the rest up, so
				 * the count returned is exact */
				give_up_slot(s, pos[j], tok);
				woke_e = true;
				continue;
			}
			rc = publish_slot(s, pos[j], tok);
			if (rc < 0)
				bad = j;
			else if (rc == 0)
				woke_e = true;
			else
				woke_f = true;
		}
		/* One look at each event word for the whole batch: it comes
		 * after every state change above in the total order. */
		if (woke_e)
			ev_wake(&q->h->not_empty);
		if (woke_f)
			ev_wake(&q->h->not_full);
		else if (k > 0)
			wake_if_behind(q, pos[0]);
		if (bad >= 0) {
			done += (size_t)bad;
			return done ? (int)done : -EPROTO;
		}
		done += (size_t)k;
		if (k < m)
			break;
	}
	return (int)done;
}

/* Find the slot of a zero-copy pointer; NULL if it is not one of ours. */
static struct qslot *slot_of(lfipc_queue *q, const void *data)
{
	const unsigned char *p = data;
	uint64_t off;

	if (!p || p < q->slots + SLOT_HDR || p >= q->slots + q->total)
		return NULL;
	off = (uint64_t)(p - q->slots);
	if (off % q->stride != SLOT_HDR)
		return NULL;
	return (struct qslot *)(q->slots + off - SLOT_HDR);
}

int lfipc_queue_reserve(lfipc_queue *q, void **slot, int64_t timeout_ns)
{
	struct qslot *s;
	uint64_t p;
	uint32_t tok;
	int rc;

	if (!q || !slot)
		return -EINVAL;
	rc = claim_put(q, &s, &p, &tok, timeout_ns);
	if (rc)
		return rc;
	*slot = s->data;
	return 0;
}

int lfipc_queue_commit(lfipc_queue *q, void *slot, size_t len)
{
	struct qslot *s;
	uint32_t tok, c;
	uint64_t w;

	if (!q)
		return -EINVAL;
	s = slot_of(q, slot);
	if (!s || lfipc__self(q->r, &tok))
		return -EINVAL;
	w = atomic_load(&s->word);
	c = wclaim(w);
	/* ours: WRITING(p, tok) or DISCARD(p, tok) */
	if ((c & ~CL_R) != (tok | CL_W))
		return -EINVAL;
	if (len > q->msg_size)
		return -EMSGSIZE;
	s->len = len;
	/* The position of a claimed slot is its seq (mod 2^32); publish()
	 * uses only its low 32 bits. */
	return publish(q, s, wseq(w), tok);
}

/* ---- consumer side --------------------------------------------------- */

/* Try to claim the oldest message. 1: claimed (*s_out, its word *w_out;
 * *head_out the position when it was claimed at the head, UINT64_MAX for a
 * rescued orphan); 0: empty (or the head is in flight); -EPROTO: nonsense
 * in shared memory. */
static int try_claim_get(lfipc_queue *q, uint32_t tok, struct qslot **s_out,
			 uint64_t *w_out, uint64_t *head_out)
{
	struct qhdr *h = q->h;
	uint64_t p;

	/* Q4: relaxed; a rescue is a slow path, validated by the CAS. */
	if (atomic_load_explicit(&h->orphans, memory_order_relaxed)) {
		uint64_t i;

		for (i = 0; i < q->n; i++) {
			struct qslot *s = slot_at(q, i);
			uint64_t w = atomic_load(&s->word);
			uint64_t nw = mkword(wseq(w), tok | CL_R);

			if (wclaim(w) == ORPHAN &&
			    atomic_compare_exchange_strong(&s->word, &w, nw)) {
				atomic_fetch_sub(&h->orphans, 1);
				*s_out = s;
				*w_out = nw;
				*head_out = UINT64_MAX;
				return 1;
			}
		}
	}
	p = atomic_load(&h->deq_pos);
	for (;;) {
		struct qslot *s = slot_at(q, p);
		uint64_t w = atomic_load(&s->word);
		int32_t d = sdiff(wseq(w), (uint32_t)(p + 1));
		uint32_t c = wclaim(w);
		uint64_t p2;

		if (d == 0 && c == 0) {
			uint64_t nw = mkword((uint32_t)(p + 1), tok | CL_R);

			if (!atomic_compare_exchange_strong(&s->word, &w, nw))
				continue;
			p2 = p;
			atomic_compare_exchange_strong(&h->deq_pos, &p2, p + 1);
			*s_out = s;
			*w_out = nw;
			*head_out = p;
			return 1;
		}
		if (d == 0 && c == TOMB) {
			/* A dead producer's hole: drop it. Straight to
			 * FREE(p + N), never through READING, so that a
			 * consumer dying here cannot turn the hole into an
			 * ORPHAN that would be delivered as a message. */
			if (!atomic_compare_exchange_strong(
				&s->word, &w, mkword((uint32_t)(p + q->n), 0)))
				continue;
			/* Its producer may have died before moving enq_pos
			 * past it (and past the rest of its run): every
			 * position up to p is claimed, so move it now, before
			 * counting p as done, or join's "enq_pos - done -
			 * tdone" would undercount. */
			pos_advance(&h->enq_pos, p + 1);
			p2 = p;
			atomic_compare_exchange_strong(&h->deq_pos, &p2, p + 1);
			if (q->joinable) {
				atomic_fetch_add(&h->done, 1);
				ev_wake(&h->joined);
			}
			ev_wake(&h->not_full);
			p = p + 1;
			continue;
		}
		p2 = atomic_load(&h->deq_pos);
		if (p2 != p) {
			p = p2;
			continue;
		}
		/* deq_pos was p when w was loaded: w must be within a lap. */
		if (!seq_sane(q, d))
			return -EPROTO;
		if (d < 0 || c == CLR)
			return 0; /* empty, in flight, or held by a clear */
		/* the head is claimed by a reader (or orphaned, or already
		 * released) and deq_pos lags: help. */
		if (atomic_compare_exchange_strong(&h->deq_pos, &p2, p + 1))
			p = p + 1;
		else
			p = p2;
	}
}

/* Give back a slot claimed for reading (word w = READING(p, tok)): free
 * it for lap p + N. delivered: the message was handed to the caller (a
 * JoinableQueue counts it as got) rather than dropped as corrupt (counted
 * as done). */
static void release_slot(lfipc_queue *q, struct qslot *s, uint64_t w,
			 bool delivered)
{
	/* Q5: seq_cst store; pairs with the producer's claiming CAS. */
	atomic_store(&s->word, mkword(wseq(w) - 1 + (uint32_t)q->n, 0));
	if (q->joinable) {
		if (delivered) {
			atomic_fetch_add(&q->h->got, 1);
		} else {
			atomic_fetch_add(&q->h->done, 1);
			ev_wake(&q->h->joined);
		}
	}
	ev_wake(&q->h->not_full);
}

static bool looks_empty(lfipc_queue *q)
{
	uint64_t e = atomic_load(&q->h->enq_pos);
	uint64_t d = atomic_load(&q->h->deq_pos);

	/* Q6: relaxed: a hint; a rescue is re-checked by try_claim_get. */
	return (int64_t)(e - d) <= 0 &&
	       !atomic_load_explicit(&q->h->orphans, memory_order_relaxed);
}

static int claim_get(lfipc_queue *q, struct qslot **s, uint64_t *w,
		     uint64_t *head, uint32_t *tok_out, int64_t timeout_ns)
{
	lfipc_deadline dl = 0;
	bool dl_set = false;
	uint32_t tok;
	int rc, spins = 0;

	rc = lfipc__self(q->r, &tok);
	if (rc)
		return rc;
	*tok_out = tok;
	for (;;) {
		uint32_t v;

		rc = try_claim_get(q, tok, s, w, head);
		if (rc)
			return rc < 0 ? rc : 0;
		if (atomic_load(&q->h->closed) && looks_empty(q))
			return -EPIPE;
		if (timeout_ns == LFIPC_NOWAIT)
			return -EAGAIN;
		if (!dl_set) {
			dl = lfipc__deadline(timeout_ns);
			dl_set = true;
		}
		if (lfipc__ncpus() > 1 && spins < SPIN_MAX) {
			spins++;
			lfipc__cpu_relax();
			continue;
		}
		v = ev_announce(&q->h->not_empty);
		rc = try_claim_get(q, tok, s, w, head);
		if (rc)
			return rc < 0 ? rc : 0;
		if (atomic_load(&q->h->closed) && looks_empty(q))
			return -EPIPE;
		if (lfipc__expired(dl))
			return -ETIMEDOUT;
		rc = lfipc__futex_wait(&q->h->not_empty, v,
				       lfipc__slice_end(dl, LFIPC_SLICE_NS));
		if (rc == -ETIMEDOUT) {
			scan_dead(q);
			if (lfipc__expired(dl))
				return -ETIMEDOUT;
		}
	}
}

int lfipc_queue_get(lfipc_queue *q, void *buf, size_t buf_size, size_t *len,
		    int64_t timeout_ns)
{
	struct qslot *s;
	uint64_t w, l, head;
	uint32_t tok;
	int rc;

	if (!q || !buf)
		return -EINVAL;
	if (buf_size < q->msg_size)
		return -EMSGSIZE;
	rc = claim_get(q, &s, &w, &head, &tok, timeout_ns);
	if (rc)
		return rc;
	l = s->len;
	if (l > q->msg_size) {
		release_slot(q, s, w, false);
		return -EPROTO;
	}
	memcpy(buf, s->data, l);
	if (len)
		*len = l;
	release_slot(q, s, w, true);
	return 0;
}

/* Extend a get run: claim position p, the one after the caller's previous
 * claim, for tok if it is FULL(p), without touching deq_pos. Anything else
 * (a hole, a clear's mark, another reader, nothing yet) ends the run and is
 * left to try_claim_get(). Why this cannot take a message a clear
 * discarded: the run's first position was claimed at the head, and every
 * position before p is claimed by us, so a clear either holds one of them
 * as its head (impossible: they are READING) or holds a later one, or its
 * range ends before the run starts. */
static struct qslot *get_run_claim(lfipc_queue *q, uint64_t p, uint32_t tok,
				   uint64_t *w_out)
{
	struct qslot *s = slot_at(q, p);
	uint64_t w = mkword((uint32_t)(p + 1), 0);
	uint64_t nw = mkword((uint32_t)(p + 1), tok | CL_R);

	/* A CAS from the exact FULL(p) word, without a load first (the line
	 * is usually in the producer's cache: one transfer, not two). It
	 * acquires the payload (pairs with Q2 in publish_slot()). */
	if (!atomic_compare_exchange_strong(&s->word, &w, nw))
		return NULL;
	*w_out = nw;
	return s;
}

/* Claim up to m messages for a get batch into s[], w[] (first: the call's
 * first batch, which may wait up to timeout_ns). Returns the number claimed
 * (>= 1) or a negative errno when none was. */
static int get_batch_claim(lfipc_queue *q, struct qslot **s, uint64_t *w, int m,
			   bool first, uint32_t *tok, int64_t timeout_ns)
{
	int k = 0;

	while (k < m) {
		uint64_t head;
		int rc, start;

		if (first && k == 0) {
			rc = claim_get(q, &s[k], &w[k], &head, tok, timeout_ns);
			if (rc)
				return rc;
		} else {
			rc = try_claim_get(q, *tok, &s[k], &w[k], &head);
			if (rc <= 0)
				return k ? k : (rc ? rc : -EAGAIN);
		}
		k++;
		if (head == UINT64_MAX)
			continue; /* a rescued orphan: no run behind it */
		start = k;
		while (k < m &&
		       (s[k] = get_run_claim(q, head + 1, *tok, &w[k]))) {
			k++;
			head++;
		}
		/* deq_pos is past the first claim already (try_claim_get
		 * moved or saw it moved); move it past the run before any of
		 * its slots is released. */
		if (k > start)
			pos_advance(&q->h->deq_pos, head + 1);
	}
	return k;
}

int lfipc_queue_get_many(lfipc_queue *q, void *bufs, size_t stride,
			 size_t *lens, size_t n, int64_t timeout_ns)
{
	struct qslot *s[BULK_MAX];
	uint64_t w[BULK_MAX];
	size_t done = 0;
	uint32_t tok = 0;
	int corrupt = 0;

	if (!q || !bufs || !lens || n == 0 || n > INT32_MAX)
		return -EINVAL;
	if (stride < q->msg_size)
		return -EMSGSIZE;
	/* corrupt messages taken count towards n, so a flood of them cannot
	 * keep the call going */
	while (done + (size_t)corrupt < n) {
		size_t left = n - done - (size_t)corrupt;
		int m = left > BULK_MAX ? BULK_MAX : (int)left;
		int k = get_batch_claim(q, s, w, m, done == 0 && !corrupt, &tok,
					timeout_ns);
		int good = 0, bad = 0;

		if (k < 0) {
			if (done)
				break;
			return corrupt ? -EPROTO : k;
		}
		for (int j = 0; j < k; j++) {
			uint64_t l = s[j]->len; /* read once */

			if (l > q->msg_size) {
				bad++;
			} else {
				memcpy((char *)bufs + (done + good) * stride,
				       s[j]->data, l);
				lens[done + good] = l;
				good++;
			}
			/* Q5: seq_cst store; pairs with the producer's
			 * claiming CAS (as in release_slot()). */
			atomic_store(
			    &s[j]->word,
			    mkword(wseq(w[j]) - 1 + (uint32_t)q->n, 0));
		}
		if (q->joinable) {
			if (good)
				atomic_fetch_add(&q->h->got, (uint64_t)good);
			if (bad) {
				atomic_fetch_add(&q->h->done, (uint64_t)bad);
				ev_wake(&q->h->joined);
			}
		}
		/* one look at not_full for the whole batch */
		ev_wake(&q->h->not_full);
		done += (size_t)good;
		corrupt += bad;
		if (k < m)
			break;
	}
	if (done == 0)
		return -EPROTO; /* only corrupt messages were taken */
	return (int)done;
}

int lfipc_queue_peek(lfipc_queue *q, const void **msg, size_t *len,
		     int64_t timeout_ns)
{
	struct qslot *s;
	uint64_t w, l, head;
	uint32_t tok;
	int rc;

	if (!q || !msg || !len)
		return -EINVAL;
	rc = claim_get(q, &s, &w, &head, &tok, timeout_ns);
	if (rc)
		return rc;
	l = s->len;
	if (l > q->msg_size) {
		release_slot(q, s, w, false);
		return -EPROTO;
	}
	*msg = s->data;
	*len = l;
	return 0;
}

int lfipc_queue_release(lfipc_queue *q, const void *msg)
{
	struct qslot *s;
	uint32_t tok;
	uint64_t w;

	if (!q)
		return -EINVAL;
	s = slot_of(q, msg);
	if (!s || lfipc__self(q->r, &tok))
		return -EINVAL;
	w = atomic_load(&s->word);
	if (wclaim(w) != (tok | CL_R))
		return -EINVAL;
	release_slot(q, s, w, true);
	return 0;
}

/* ---- clear ----------------------------------------------------------- */

/* Take the clear lock for tok. 0; -EBUSY another live participant has held
 * it for CLEAR_WAIT_NS (it is stopped, or the word is corrupt). */
static int clear_lock(lfipc_queue *q, uint32_t tok)
{
	int64_t t0 = 0;
	unsigned spins = 0;

	for (;;) {
		uint32_t c = 0;

		if (atomic_compare_exchange_strong(&q->h->clearer, &c, tok))
			return 0;
		if (++spins % 256 == 0) {
			int64_t now = lfipc__now_ns();

			if (c != tok && clear_lock_repair(q, c))
				continue;
			if (t0 == 0)
				t0 = now;
			else if (now - t0 > CLEAR_WAIT_NS)
				return -EBUSY;
			sched_yield();
		}
		lfipc__cpu_relax();
	}
}

/* The clear proper, with the clear lock held: hold the head slot in the
 * slot word (CLR or DISCARD), move deq_pos past everything claimed so far,
 * account for it, let go of the head. Returns the number discarded or
 * -EPROTO. */
static int64_t clear_locked(lfipc_queue *q)
{
	struct qhdr *h = q->h;

	for (;;) {
		uint64_t d = atomic_load(&h->deq_pos);
		uint64_t e = atomic_load(&h->enq_pos);
		struct qslot *s = slot_at(q, d);
		uint64_t w = atomic_load(&s->word);
		uint32_t c = wclaim(w), tok = c & CL_TOK, flags = c & CL_WR;
		int32_t df = sdiff(wseq(w), (uint32_t)(d + 1));
		uint64_t held, d2 = d;

		if ((int64_t)(e - d) <= 0)
			return 0;
		/* e - d <= N + 1 (N, plus one while a dropped TOMB's
		 * consumer has not moved deq_pos yet). */
		if ((uint64_t)(e - d) > q->n + 1) {
			if (d == atomic_load(&h->deq_pos) &&
			    e == atomic_load(&h->enq_pos))
				return -EPROTO;
			continue;
		}
		if (df == 0 && (c == 0 || c == TOMB)) {
			held = mkword(wseq(w), CLR); /* FULL/TOMB -> CLR */
		} else if (df == -1 && flags == CL_W && tok) {
			/* WRITING -> DISCARD: the producer keeps writing and
			 * hands the slot over as CLR when it publishes. */
			held = mkword(wseq(w), tok | CL_WR);
		} else if ((df == 0 && c == CLR) ||
			   (df == -1 && flags == CL_WR && tok)) {
			held = w; /* already ours (a retried attempt) */
		} else if ((df == 0 && flags == CL_R) ||
			   (df > 0 && df <= (int64_t)q->n + 1)) {
			/* head being read, orphaned or released while
			 * deq_pos lags: help it. */
			atomic_compare_exchange_strong(&h->deq_pos, &d2, d + 1);
			continue;
		} else {
			/* Nothing legitimate looks like this at the head of
			 * a non-empty queue, unless we read a stale mix. */
			if (d == atomic_load(&h->deq_pos) &&
			    e == atomic_load(&h->enq_pos) &&
			    w == atomic_load(&s->word))
				return -EPROTO;
			continue;
		}
		if (held != w &&
		    !atomic_compare_exchange_strong(&s->word, &w, held))
			continue;
		/* Nobody but us moves deq_pos while the head is held: every
		 * message claimed up to now is discarded. */
		e = atomic_load(&h->enq_pos);
		if ((uint64_t)(e - d) > q->n + 1 ||
		    !atomic_compare_exchange_strong(&h->deq_pos, &d2, e)) {
			clear_undo(q);
			return -EPROTO;
		}
		if (q->joinable)
			atomic_fetch_add(&h->done, e - d);
		/* Let go of the head: CLR(d) -> FREE(d + N). A DISCARD head
		 * is left to its producer (it becomes CLR, which producers of
		 * the next lap take because deq_pos is now past it). */
		w = mkword((uint32_t)(d + 1), CLR);
		atomic_compare_exchange_strong(&s->word, &w,
					       mkword((uint32_t)(d + q->n), 0));
		return (int64_t)(e - d);
	}
}

int64_t lfipc_queue_clear(lfipc_queue *q)
{
	uint32_t tok;
	int64_t n;
	int rc;

	if (!q)
		return -EINVAL;
	rc = lfipc__self(q->r, &tok);
	if (rc)
		return rc;
	rc = clear_lock(q, tok);
	if (rc)
		return rc;
	n = clear_locked(q);
	atomic_store(&q->h->clearer, 0);
	ev_wake(&q->h->not_full);
	ev_wake(&q->h->joined);
	/* consumers that saw the held head as "in flight" look again */
	ev_wake(&q->h->not_empty);
	return n;
}

/* ---- sizes, shutdown, join ------------------------------------------- */

size_t lfipc_queue_qsize(const lfipc_queue *q)
{
	int64_t n;

	if (!q)
		return 0;
	n = (int64_t)(atomic_load(&q->h->enq_pos) -
		      atomic_load(&q->h->deq_pos));
	if (n < 0)
		return 0;
	if ((uint64_t)n > q->cap)
		return q->cap;
	return (size_t)n;
}

bool lfipc_queue_empty(const lfipc_queue *q)
{
	return lfipc_queue_qsize(q) == 0;
}

bool lfipc_queue_full(const lfipc_queue *q)
{
	return q && lfipc_queue_qsize(q) == q->cap;
}

size_t lfipc_queue_capacity(const lfipc_queue *q)
{
	return q ? q->cap : 0;
}

size_t lfipc_queue_msg_size(const lfipc_queue *q)
{
	return q ? q->msg_size : 0;
}

int lfipc_queue_shutdown(lfipc_queue *q)
{
	if (!q)
		return -EINVAL;
	atomic_store(&q->h->closed, 1);
	atomic_fetch_or(&q->h->not_empty, EV_WAIT);
	atomic_fetch_or(&q->h->not_full, EV_WAIT);
	ev_wake(&q->h->not_empty);
	ev_wake(&q->h->not_full);
	return 0;
}

int lfipc_queue_task_done(lfipc_queue *q)
{
	uint64_t td;

	if (!q || !q->joinable)
		return -EINVAL;
	td = atomic_load(&q->h->tdone);
	do {
		if ((int64_t)(atomic_load(&q->h->got) - td) <= 0)
			return -EINVAL;
	} while (!atomic_compare_exchange_weak(&q->h->tdone, &td, td + 1));
	ev_wake(&q->h->joined);
	return 0;
}

static bool all_done(lfipc_queue *q)
{
	/* tdone and done first, enq_pos last: each only grows, so a put,
	 * get and task_done racing with these loads can only make the count
	 * of unfinished tasks look higher (join returns late), never lower
	 * (join returning while a task is outstanding). */
	uint64_t td = atomic_load(&q->h->tdone);
	uint64_t d = atomic_load(&q->h->done);
	uint64_t e = atomic_load(&q->h->enq_pos);

	return (int64_t)(e - d - td) <= 0;
}

int lfipc_queue_join(lfipc_queue *q, int64_t timeout_ns)
{
	lfipc_deadline dl;

	if (!q || !q->joinable)
		return -EINVAL;
	dl = lfipc__deadline(timeout_ns);
	for (;;) {
		uint32_t v;

		if (all_done(q))
			return 0;
		if (timeout_ns == LFIPC_NOWAIT)
			return -EAGAIN;
		v = ev_announce(&q->h->joined);
		if (all_done(q))
			return 0;
		if (lfipc__expired(dl))
			return -ETIMEDOUT;
		if (lfipc__futex_wait(&q->h->joined, v,
				      lfipc__slice_end(dl, LFIPC_SLICE_NS)) ==
		    -ETIMEDOUT)
			scan_dead(q);
	}
}
