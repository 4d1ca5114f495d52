/* SPDX-License-Identifier: MIT */
/*
 * queue.c - Queue and JoinableQueue: a Vyukov-style bounded MPMC ring in a
 * shared region whose every claim is visible, with its claimant's token, in
 * the slot word itself (so a dead claimant can always be identified), with
 * futex event counts for blocking and an O(1) clear. See doc/queue.md.
 *
 * The shared layout and the slot-word encoding are in
 * internal/queue_layout.h (shared with the tests). The shared words:
 *
 *   enq_pos, deq_pos  64-bit positions (monotonic; slot = pos & (N-1)).
 *                     Every position below enq_pos has been claimed by a
 *                     producer; every position below deq_pos has been
 *                     claimed by a consumer, dropped as a hole or discarded
 *                     by a clear. A bulk call's run may claim consecutive
 *                     positions beyond the word before moving it past all
 *                     of them at once (see "bulk operations").
 *   not_empty,        wait queues (struct lfipc_wq, internal/wait.h): get,
 *   not_full, joined  put and join wait on them through the wait layer.
 *   closed            0 open, anything else shut down.
 *   lock              the queue lock: token of its holder, 0 free. Held by
 *                     a clear, and by whoever changes the set of ORPHAN
 *                     slots (a repair making one, a rescue taking one).
 *                     Taken over from a dead holder, which undoes a
 *                     half-done clear and recounts the orphans.
 *   orphans           the number of ORPHAN slots: changed only by the lock
 *                     holder, so it is exact whenever the lock is free
 *                     (a holder killed in between is followed by a
 *                     take-over, which recounts).
 *   hole_hi           every TOMB lies below this position (raised before a
 *                     TOMB is made); qsize() counts holes only below it.
 *   sweep             where the next slice-end sweep for dead claimants
 *                     starts (each sweep looks at SWEEP_SLOTS slots).
 *   orphan_at         slot index where the last rescue found an orphan.
 *   done              JoinableQueue: positions dropped (discarded by a clear
 *                     or a hole, or a corrupt message).
 *   abandoned(_seen)  JoinableQueue: tasks written off because the process
 *                     that got them died (and how many join has reported).
 *   task table        JoinableQueue: per participant, messages got and
 *                     tasks settled. Unfinished tasks = enq_pos - done -
 *                     sum(settled).
 *
 * Memory order: every access to a slot word, a position, the lock and the
 * counters is seq_cst (the payload is published by the seq_cst CAS that
 * makes a slot FULL and acquired by the seq_cst CAS that claims it; the
 * same total order gives the wait layer's pairing of "change state (K1),
 * then look for sleepers (K2)" with "announce (W1), then look at the state
 * (W3)" that makes lost wake-ups impossible: internal/wait.h). The few
 * relaxed accesses are labelled Q<n>.
 *
 * Shared memory is untrusted: every shared word is read once into a local
 * (an atomic load, or lfipc__shm_ld* for the plain fields), the local is
 * validated and only the local is used.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <lfipc/queue.h>

#include "internal/poll.h"
#include "internal/proc.h"
#include "internal/queue_layout.h"
#include "internal/objtype.h"
#include "internal/recover.h"
#include "internal/region.h"
#include "internal/shm.h"
#include "internal/wait.h"

#define CL_W LFIPC_Q_CL_W
#define CL_R LFIPC_Q_CL_R
#define CL_WR LFIPC_Q_CL_WR
#define CL_TOK LFIPC_Q_CL_TOK
#define TOMB LFIPC_Q_TOMB
#define ORPHAN LFIPC_Q_ORPHAN
#define CLR LFIPC_Q_CLR
#define SLOT_HDR LFIPC_Q_SLOT_HDR
/* A clear waits at most this long for another live clearer. */
#define CLEAR_WAIT_NS ((int64_t)1000 * 1000 * 1000)
/* Slots a slice-end sweep looks at: bounds a slice's work whatever N. */
#define SWEEP_SLOTS 1024u
/* A head seen unchanged and claimed this many times in a row has its
 * claimant's liveness checked (a dead producer's hole is then repaired). */
#define STUCK_CHECK 64u
/* Every this many fruitless LFIPC_NOWAIT calls, do a slice's checks. */
#define POLL_CHECK 1024u
/* Flags lfipc_queue_create() accepts and a queue header may hold. */
#define QUEUE_FLAGS                                                          \
	(LFIPC_QUEUE_JOINABLE | LFIPC_QUEUE_SINGLE_PRODUCER |                \
	 LFIPC_QUEUE_SINGLE_CONSUMER)

typedef struct lfipc_qhdr qhdr;
typedef struct lfipc_qslot qslot;

struct lfipc_queue {
	lfipc_region *r;
	qhdr *h;
	unsigned char *slots;
	struct lfipc_qtask *tasks; /* JoinableQueue: the task table */
	uint64_t cap, n, mask, msg_size, stride, total;
	unsigned flags; /* as created (QUEUE_FLAGS) */
	bool joinable;
	bool single[2]; /* [LFIPC_Q_ROLE_PUT], [LFIPC_Q_ROLE_GET]: the mode */
	/* The role word value taken through this handle (0 none), given
	 * back by lfipc_queue_close(). Q10: relaxed: read by close, which
	 * runs after every call on the handle. */
	_Atomic uint64_t role_held[2];
	/* Private to this process (the threads sharing the handle): the
	 * last in-flight head word seen and how often in a row, and the
	 * fruitless NOWAIT calls. Q7: relaxed, counters only; no ordering
	 * with anything else is needed. */
	_Atomic uint64_t stuck_w;
	_Atomic uint32_t stuck_n;
	_Atomic uint32_t polls;
	/* fd pollers (lfipc_queue_fd), made on first use: [0] get, [1] put.
	 * Q9: acquire / release: the poller is complete before it is seen. */
	_Atomic(struct lfipc_poller *) poller[2];
	pthread_mutex_t poller_mu; /* serialises their creation */
};

#define mkword lfipc__qword
#define wseq lfipc__qseq
#define wclaim lfipc__qclaim

/* Signed distance a - b of two 32-bit sequence numbers. */
static inline int32_t sdiff(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b);
}

/* The 64-bit position with low 32 bits seq that is nearest to ref. */
static inline uint64_t pos_near(uint64_t ref, uint32_t seq)
{
	return ref + (uint64_t)(int64_t)sdiff(seq, (uint32_t)ref);
}

/* The largest |sdiff| between a slot's seq and the position that the
 * shared position word points at, in a queue that is not corrupt, is N + 1
 * (see doc/queue.md); anything further means a peer wrote nonsense. */
static inline bool seq_sane(const lfipc_queue *q, int32_t d)
{
	return d >= -(int64_t)q->n - 2 && d <= (int64_t)q->n + 2;
}

static inline qslot *slot_at(const lfipc_queue *q, uint64_t pos)
{
	return (qslot *)(q->slots + (pos & q->mask) * q->stride);
}

/* Move the position word *pos forward to `to`, never backwards (another
 * participant may have helped it further). */
static void pos_advance(_Atomic uint64_t *pos, uint64_t to)
{
	uint64_t v = atomic_load(pos);

	while ((int64_t)(to - v) > 0 &&
	       !atomic_compare_exchange_weak(pos, &v, to))
		;
}

/* ---- waking ---------------------------------------------------------- */

/*
 * After a state change (K1, seq_cst: every change of a slot word, position,
 * closed or task counter in this file is): wake the waiters of wq, all of
 * them. One is not enough: a get woken by the publication of position p+1
 * cannot take it while p is still being written, and the wake-up of p's
 * publication may then go to another sleeper, leaving p+1 to nobody. No
 * system call when nobody waits or polls (wait.h, K2).
 */
static void ev_wake(lfipc_queue *q, struct lfipc_wq *wq)
{
	lfipc__wake(q->r, wq, NULL, INT32_MAX);
}

/* ---- create / open --------------------------------------------------- */

struct geom {
	uint64_t cap, n, msg_size, stride;
	unsigned flags;
};

/* The geometry of a queue of this shape, or -EINVAL. */
static int q_geom(size_t capacity, size_t msg_size, unsigned flags,
		  struct geom *g)
{
	if (capacity == 0 || capacity > LFIPC_QUEUE_MAX_CAPACITY ||
	    msg_size > LFIPC_QUEUE_MAX_MSG_SIZE ||
	    (flags & ~QUEUE_FLAGS))
		return -EINVAL;
	g->cap = capacity;
	/* at least 2 slots: with one, FULL(p) and FREE(p + 1) look alike */
	g->n = 2;
	while (g->n < capacity)
		g->n <<= 1;
	g->msg_size = msg_size;
	g->stride = (SLOT_HDR + msg_size + 63) & ~(uint64_t)63;
	g->flags = flags;
	return 0;
}

static uint64_t block_size(const struct geom *g)
{
	return sizeof(qhdr) + g->n * g->stride +
	       ((g->flags & LFIPC_QUEUE_JOINABLE) ? LFIPC_Q_TASKS_SIZE : 0);
}

static int q_init(void *block, uint64_t size, void *arg)
{
	const struct geom *g = arg;
	qhdr *h = block;
	unsigned char *slots = (unsigned char *)block + sizeof(*h);
	uint64_t i;

	if (size < block_size(g))
		return -ENOSPC;
	h->magic = LFIPC_Q_MAGIC;
	h->version = LFIPC_Q_VERSION;
	h->flags = g->flags;
	h->capacity = g->cap;
	h->nslots = g->n;
	h->msg_size = g->msg_size;
	h->stride = g->stride;
	h->slots_off = sizeof(*h);
	h->tasks_off = (g->flags & LFIPC_QUEUE_JOINABLE)
			   ? sizeof(*h) + g->n * g->stride
			   : 0;
	for (i = 0; i < g->n; i++) {
		qslot *s = (qslot *)(slots + i * g->stride);

		atomic_init(&s->word, mkword((uint32_t)i, 0));
	}
	return 0;
}

/* Validate the geometry of the queue at off (size bytes, inside the heap)
 * and build a handle. Each shared field is read exactly once (a volatile
 * load), so a peer changing them meanwhile cannot make a checked value
 * differ from a used one; nothing here is read from shared memory again. */
static int q_handle(lfipc_region *r, uint64_t off, uint64_t size,
		    lfipc_queue **out)
{
	qhdr *h = lfipc__at(r, off);
	lfipc_queue *q;
	uint64_t n, stride, ms, cap, soff, toff, slots_end;
	uint32_t flags, version;

	if (off % LFIPC_GRANULE || size < sizeof(*h) ||
	    lfipc__shm_ld64(&h->magic) != LFIPC_Q_MAGIC)
		return -EPROTO;
	version = lfipc__shm_ld32(&h->version);
	n = lfipc__shm_ld64(&h->nslots);
	cap = lfipc__shm_ld64(&h->capacity);
	ms = lfipc__shm_ld64(&h->msg_size);
	stride = lfipc__shm_ld64(&h->stride);
	soff = lfipc__shm_ld64(&h->slots_off);
	toff = lfipc__shm_ld64(&h->tasks_off);
	flags = lfipc__shm_ld32(&h->flags);
	if (version != LFIPC_Q_VERSION || n < 2 || (n & (n - 1)) ||
	    n > (uint64_t)LFIPC_QUEUE_MAX_CAPACITY || cap == 0 || cap > n ||
	    ms > LFIPC_QUEUE_MAX_MSG_SIZE || stride < SLOT_HDR + ms ||
	    stride % 64 || stride > LFIPC_QUEUE_MAX_MSG_SIZE + 128 ||
	    soff != sizeof(*h) || (size - sizeof(*h)) / stride < n ||
	    (flags & ~(uint32_t)QUEUE_FLAGS))
		return -EPROTO;
	slots_end = sizeof(*h) + n * stride; /* <= size, no overflow */
	if ((flags & LFIPC_QUEUE_JOINABLE)
		? (toff != slots_end || size - slots_end < LFIPC_Q_TASKS_SIZE)
		: toff != 0)
		return -EPROTO;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->r = r;
	q->h = h;
	q->slots = (unsigned char *)h + sizeof(*h);
	q->tasks =
	    toff ? (struct lfipc_qtask *)((unsigned char *)h + toff) : NULL;
	q->cap = cap;
	q->n = n;
	q->mask = n - 1;
	q->msg_size = ms;
	q->stride = stride;
	q->total = n * stride;
	q->flags = flags;
	q->joinable = flags & LFIPC_QUEUE_JOINABLE;
	q->single[LFIPC_Q_ROLE_PUT] = flags & LFIPC_QUEUE_SINGLE_PRODUCER;
	q->single[LFIPC_Q_ROLE_GET] = flags & LFIPC_QUEUE_SINGLE_CONSUMER;
	pthread_mutex_init(&q->poller_mu, NULL);
	*out = q;
	return 0;
}

int lfipc_queue_create(lfipc_region *r, const char *name, size_t capacity,
		       size_t msg_size, unsigned flags, lfipc_queue **out)
{
	struct geom g;
	uint64_t off, size;
	int rc;

	if (!r || !out)
		return -EINVAL;
	rc = q_geom(capacity, msg_size, flags, &g);
	if (rc)
		return rc;
	rc = lfipc__name_check(name);
	if (rc)
		return rc;
	size = block_size(&g);
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
	uint32_t tok;

	if (!q)
		return;
	for (int i = 0; i < 2; i++)
		/* Q9': relaxed: closing excludes every other use. */
		lfipc__poller_close(atomic_load_explicit(
		    &q->poller[i], memory_order_relaxed));
	pthread_mutex_destroy(&q->poller_mu);
	/* A fork child closing a handle it inherited has another token (or
	 * none yet): the role taken through it is its parent's, not given
	 * back here. */
	for (int i = 0; i < 2 && lfipc__proc_self_known(&q->r->proc, &tok);
	     i++) {
		/* Q10: relaxed (see struct lfipc_queue). */
		uint64_t v = atomic_load_explicit(&q->role_held[i],
						  memory_order_relaxed);

		/* still ours: give it back (a dead holder's successor may
		 * have it by now, then this fails and leaves it) */
		if (v && (uint32_t)(v >> 32) == tok)
			atomic_compare_exchange_strong(&q->h->role[i], &v, 0);
	}
	free(q);
}

/* ---- single-producer / single-consumer roles ------------------------ */

/* The role word o of role i is not the caller's (me = its token and
 * thread tag): take the role if nobody holds it or its holder's process is
 * dead (a half-done put or get of it is repaired as a dead participant's
 * in a multi-producer or multi-consumer queue), else -EBUSY. A holder that
 * is another thread of the caller's process counts as alive. A nonsense
 * word names a dead token (lfipc__token_alive()), so it is taken over. */
static int role_take(lfipc_queue *q, int i, uint64_t me, uint64_t o)
{
	uint32_t tok = (uint32_t)(me >> 32);

	for (;;) {
		uint32_t ot = (uint32_t)(o >> 32);

		if (o != 0 && (ot == tok || lfipc__token_alive(q->r, ot)))
			return -EBUSY;
		if (atomic_compare_exchange_strong(&q->h->role[i], &o, me)) {
			/* Q10: relaxed (see struct lfipc_queue). */
			atomic_store_explicit(&q->role_held[i], me,
					      memory_order_relaxed);
			return 0;
		}
		if (o == me)
			return 0;
	}
}

/* Before a put (i = LFIPC_Q_ROLE_PUT) or a get (LFIPC_Q_ROLE_GET) by tok:
 * in a queue with that single role, hold it. 0 or -EBUSY. One load of a
 * line nobody writes while the role stays put. */
static inline int role_hold(lfipc_queue *q, int i, uint32_t tok)
{
	uint64_t me, o;

	if (!q->single[i])
		return 0;
	me = LFIPC_Q_ROLE(tok, lfipc__thread_tag());
	o = atomic_load(&q->h->role[i]);
	return o == me ? 0 : role_take(q, i, me, o);
}

/* The token of the caller, holding role i if the queue has it single. */
static int self_in_role(lfipc_queue *q, int i, uint32_t *tok)
{
	int rc = lfipc__self(q->r, tok);

	return rc ? rc : role_hold(q, i, *tok);
}

/* ---- the queue lock and the orphan count ----------------------------- */

/* Count the ORPHAN slots and store the count. Only the lock holder calls
 * it, and only the lock holder makes or takes orphans, so the count is
 * exact when it stores it. O(N): run after a take-over from a dead holder
 * (which may have died between changing a slot and the count) and when a
 * rescue found the count too high. */
static void orphans_recount(lfipc_queue *q)
{
	uint32_t k = 0;

	for (uint64_t i = 0; i < q->n; i++)
		if (wclaim(atomic_load(&slot_at(q, i)->word)) == ORPHAN)
			k++;
	atomic_store(&q->h->orphans, k);
}

/* Undo what a clearer that died holding the lock left at the head: a head
 * it had marked but not yet moved deq_pos past. A marked FULL/TOMB head
 * (CLR at deq_pos) becomes TOMB, so that the next get (or drop_holes())
 * drops and counts it: that message was being discarded anyway. A DISCARD
 * head goes back to WRITING for its producer, whose publish retries (see
 * publish_slot()). Called with the lock taken over. */
static void clear_undo(lfipc_queue *q)
{
	for (int tries = 0; tries < 64; tries++) {
		uint64_t d = atomic_load(&q->h->deq_pos);
		qslot *s = slot_at(q, d);
		uint64_t w = atomic_load(&s->word);
		uint32_t c = wclaim(w);
		uint64_t nw;

		if (wseq(w) == (uint32_t)(d + 1) && c == CLR) {
			pos_advance(&q->h->hole_hi, d + 1);
			nw = mkword(wseq(w), TOMB);
		} else if (wseq(w) == (uint32_t)d && (c & CL_WR) == CL_WR &&
			   (c & CL_TOK)) {
			nw = mkword(wseq(w), (c & CL_TOK) | CL_W);
		} else {
			return;
		}
		if (atomic_compare_exchange_strong(&s->word, &w, nw)) {
			ev_wake(q, &q->h->not_empty);
			return;
		}
	}
}

/* The lock was held by a dead participant and is now ours: undo its
 * half-done clear and recount the orphans it may have been changing. */
static void lock_recover(lfipc_queue *q)
{
	clear_undo(q);
	orphans_recount(q);
}

/* Take the lock for tok if it is free, or held by a dead participant (then
 * recover first). Never waits. */
static bool lock_try(lfipc_queue *q, uint32_t tok)
{
	uint32_t c = 0;

	if (atomic_compare_exchange_strong(&q->h->lock, &c, tok))
		return true;
	/* c == tok: another thread of this process holds it */
	if (c == tok || lfipc__token_alive(q->r, c) ||
	    !atomic_compare_exchange_strong(&q->h->lock, &c, tok))
		return false;
	lock_recover(q);
	return true;
}

static void lock_release(lfipc_queue *q)
{
	atomic_store(&q->h->lock, 0);
}

/* ---- holes ------------------------------------------------------------ */

/* Drop the hole TOMB(p) (word w) of slot s at deq_pos: straight to
 * FREE(p + N), never through READING, so that a participant dying here
 * cannot turn the hole into an ORPHAN that would be delivered as a
 * message. Its producer may have died before moving enq_pos past it (and
 * past the rest of its run): every position up to p is claimed, so move
 * it now, before counting p as done, or join's count would undercount.
 * Returns false when the word changed meanwhile. */
static bool drop_hole(lfipc_queue *q, qslot *s, uint64_t w, uint64_t p)
{
	qhdr *h = q->h;
	uint64_t p2 = p;

	if (!atomic_compare_exchange_strong(&s->word, &w,
					    mkword((uint32_t)(p + q->n), 0)))
		return false;
	pos_advance(&h->enq_pos, p + 1);
	atomic_compare_exchange_strong(&h->deq_pos, &p2, p + 1);
	if (q->joinable) {
		atomic_fetch_add(&h->done, 1);
		ev_wake(q, &h->joined);
	}
	ev_wake(q, &h->not_full);
	return true;
}

/* Drop every hole at the head. Whoever makes a TOMB calls this after, so a
 * hole at the head never waits for a consumer (none may come: a put that
 * gives its slot up at shutdown may be the last participant). */
static void drop_holes(lfipc_queue *q)
{
	for (uint64_t i = 0; i <= q->n; i++) {
		uint64_t d = atomic_load(&q->h->deq_pos);
		qslot *s = slot_at(q, d);
		uint64_t w = atomic_load(&s->word);

		if (w != mkword((uint32_t)(d + 1), TOMB))
			return;
		drop_hole(q, s, w, d);
	}
}

/* ---- dead claimants -------------------------------------------------- */

/* A dead consumer's READING(p) became ORPHAN(p). A get run claims a run
 * of positions beyond deq_pos before moving it once; if its consumer died
 * in between, p lies at or beyond deq_pos, and every position from
 * deq_pos to p is that run's (now orphaned too). Move deq_pos past p, so
 * that orphans lie behind deq_pos, as everything else assumes (clear's
 * "enq_pos - deq_pos <= N + 1", the capacity test). */
static void orphan_behind(lfipc_queue *q, uint32_t seq)
{
	uint64_t d = atomic_load(&q->h->deq_pos);
	uint64_t p = pos_near(d, seq - 1);

	if ((int64_t)(p - d) >= 0 && p - d < q->n)
		pos_advance(&q->h->deq_pos, p + 1);
}

/* Slot s holds READING (word w) of a dead consumer: make it ORPHAN under
 * the lock, counting it first (a kill in between leaves the lock to a
 * take-over, which recounts). */
static int orphan(lfipc_queue *q, uint32_t tok, qslot *s, uint64_t w)
{
	qhdr *h = q->h;
	uint64_t nw = mkword(wseq(w), ORPHAN);

	if (!lock_try(q, tok))
		return 0; /* busy: the next slice tries again */
	atomic_fetch_add(&h->orphans, 1);
	if (!atomic_compare_exchange_strong(&s->word, &w, nw)) {
		atomic_fetch_sub(&h->orphans, 1);
		lock_release(q);
		return 0;
	}
	orphan_behind(q, wseq(nw));
	lock_release(q);
	return 1;
}

/* Slot s holds word w claimed by a token (WRITING, DISCARD or READING):
 * if the claimant is dead, turn WRITING into TOMB, DISCARD into CLR (the
 * clear already accounted for it) and READING into ORPHAN. tok is the
 * caller's token. Returns 1 when it repaired something. */
static int repair(lfipc_queue *q, uint32_t tok, qslot *s, uint64_t w)
{
	uint32_t c = wclaim(w), who = c & CL_TOK;
	uint64_t nw;

	if (who == 0 || !(c & CL_WR) || lfipc__token_alive(q->r, who))
		return 0;
	if ((c & CL_WR) == CL_R) {
		if (!orphan(q, tok, s, w))
			return 0;
	} else {
		if ((c & CL_WR) == CL_WR) {
			nw = mkword(wseq(w) + 1, CLR);
		} else {
			/* every TOMB lies below hole_hi: raise it first */
			pos_advance(
			    &q->h->hole_hi,
			    pos_near(atomic_load(&q->h->enq_pos), wseq(w)) + 1);
			nw = mkword(wseq(w) + 1, TOMB);
		}
		if (!atomic_compare_exchange_strong(&s->word, &w, nw))
			return 0;
	}
	ev_wake(q, &q->h->not_empty);
	ev_wake(q, &q->h->not_full);
	return 1;
}

/* If the lock is held by a dead participant, take it over, recover and
 * release it. Returns 1 when it did. */
static int lock_repair(lfipc_queue *q, uint32_t tok)
{
	uint32_t holder = atomic_load(&q->h->lock);

	if (holder == 0 || holder == tok || lfipc__token_alive(q->r, holder) ||
	    !atomic_compare_exchange_strong(&q->h->lock, &holder, tok))
		return 0;
	lock_recover(q);
	lock_release(q);
	drop_holes(q);
	return 1;
}

/* Repair the slot of position pos if its claimant is dead. */
static int check_slot(lfipc_queue *q, uint32_t tok, uint64_t pos)
{
	qslot *s = slot_at(q, pos);
	uint64_t w = atomic_load(&s->word);

	if ((wclaim(w) & CL_TOK) && repair(q, tok, s, w)) {
		drop_holes(q);
		return 1;
	}
	return 0;
}

/*
 * What a waiter does at the end of a sleep slice, in O(1) whatever N: take
 * over a dead holder's lock; repair the head (a dead producer's hole there
 * blocks consumers and join) and the slot producers claim next (a dead
 * consumer's slot of the previous lap blocks them); and sweep SWEEP_SLOTS
 * more slots for dead readers, from a cursor shared by every waiter of the
 * queue, so that their messages are found and delivered again (within
 * N / SWEEP_SLOTS slices of one waiter).
 */
static int slice_check(lfipc_queue *q, uint32_t tok)
{
	uint64_t i0, k = q->n < SWEEP_SLOTS ? q->n : SWEEP_SLOTS;
	int n = 0;

	n += lock_repair(q, tok);
	n += check_slot(q, tok, atomic_load(&q->h->deq_pos));
	n += check_slot(q, tok, atomic_load(&q->h->enq_pos));
	/* Q1: relaxed: a cursor only; any value sweeps some slots. */
	i0 = atomic_fetch_add_explicit(&q->h->sweep, k, memory_order_relaxed);
	for (uint64_t i = 0; i < k; i++) {
		qslot *s = slot_at(q, i0 + i);
		/* Q2: relaxed; repair() re-validates with a CAS. */
		uint64_t w =
		    atomic_load_explicit(&s->word, memory_order_relaxed);

		if ((wclaim(w) & CL_TOK) && (wclaim(w) & CL_WR))
			n += repair(q, tok, s, w);
	}
	drop_holes(q);
	return n;
}

/* A fruitless LFIPC_NOWAIT call: every POLL_CHECK of them in this process
 * does a slice's checks, so that a caller that only polls is not blocked
 * for ever by a dead participant, at O(1) amortised cost. */
static void poll_tick(lfipc_queue *q, uint32_t tok)
{
	/* Q7: relaxed (see struct lfipc_queue). */
	uint32_t k =
	    atomic_fetch_add_explicit(&q->polls, 1, memory_order_relaxed) + 1;

	if (k % POLL_CHECK == 0)
		slice_check(q, tok);
}

/* The word w of a slot that keeps a caller waiting (a head in flight, a
 * slot still held by the previous lap) was seen again. True every
 * STUCK_CHECK-th time in a row: time to look whether its claimant lives
 * (one system call per STUCK_CHECK attempts, none on a moving queue). */
static bool stuck(lfipc_queue *q, uint64_t w)
{
	uint32_t k;

	/* Q7: relaxed (see struct lfipc_queue). */
	if (atomic_load_explicit(&q->stuck_w, memory_order_relaxed) != w) {
		atomic_store_explicit(&q->stuck_w, w, memory_order_relaxed);
		atomic_store_explicit(&q->stuck_n, 1, memory_order_relaxed);
		return false;
	}
	k = atomic_fetch_add_explicit(&q->stuck_n, 1, memory_order_relaxed) + 1;
	return k % STUCK_CHECK == 0;
}

/* ---- JoinableQueue tasks --------------------------------------------- */

static struct lfipc_qtask *task_of(const lfipc_queue *q, uint32_t tok)
{
	return &q->tasks[((tok >> LFIPC_TOKEN_GEN_BITS) - 1) %
			 LFIPC_PROC_SLOTS];
}

/* Settle every task of entry t not settled yet (its participants are
 * dead): raise settled to the value of got read first. Idempotent, so any
 * number of participants may do it at once, and a kill anywhere leaves
 * either nothing or all of it done. */
static void write_off(lfipc_queue *q, struct lfipc_qtask *t, uint64_t g)
{
	uint64_t s = atomic_load(&t->settled);

	while ((int64_t)(g - s) > 0) {
		if (atomic_compare_exchange_weak(&t->settled, &s, g)) {
			/* statistics only: a kill here under-counts them */
			atomic_fetch_add(&q->h->abandoned, g - s);
			ev_wake(q, &q->h->joined);
			return;
		}
	}
}

/* Messages delivered to tok: count them in its entry. The entry of a new
 * incarnation of a participant slot still holds its dead predecessor's
 * tasks: write them off before adopting it. */
static void tasks_got(lfipc_queue *q, uint32_t tok, uint64_t k)
{
	struct lfipc_qtask *t = task_of(q, tok);

	if (atomic_load(&t->owner) != tok) {
		write_off(q, t, atomic_load(&t->got));
		atomic_store(&t->owner, tok);
	}
	atomic_fetch_add(&t->got, k);
}

/* Write off the unsettled tasks of every dead participant. got is loaded
 * before owner: a new incarnation stores owner before its first got
 * increment, so a got value that includes its tasks is always followed by
 * the live owner, never by its dead predecessor. O(participants). */
static int tasks_reap(lfipc_queue *q)
{
	int n = 0;

	for (uint32_t i = 0; i < LFIPC_PROC_SLOTS; i++) {
		struct lfipc_qtask *t = &q->tasks[i];
		uint64_t g = atomic_load(&t->got);

		if ((int64_t)(g - atomic_load(&t->settled)) <= 0)
			continue;
		if (!lfipc__token_alive(q->r, atomic_load(&t->owner))) {
			write_off(q, t, g);
			n++;
		}
	}
	return n;
}

/* Settle one task of entry t; false when it has none outstanding. */
static bool task_settle(struct lfipc_qtask *t)
{
	uint64_t s = atomic_load(&t->settled);

	while ((int64_t)(atomic_load(&t->got) - s) > 0)
		if (atomic_compare_exchange_weak(&t->settled, &s, s + 1))
			return true;
	return false;
}

/* ---- recovery -------------------------------------------------------- */

/* Repair every dead claimant's slot, O(N): for an explicit recovery, and
 * once before a get reports a shut-down queue as drained (a dead reader's
 * message nobody has noticed yet must not be left behind). */
static int check_all(lfipc_queue *q, uint32_t tok)
{
	int n = lock_repair(q, tok);

	for (uint64_t i = 0; i < q->n; i++)
		n += check_slot(q, tok, i);
	drop_holes(q);
	return n;
}

int lfipc__queue_recover(lfipc_region *r, uint64_t off, uint64_t size)
{
	lfipc_queue *q;
	uint32_t tok;
	int rc, n;

	rc = q_handle(r, off, size, &q);
	if (rc)
		return rc;
	rc = lfipc__self(r, &tok);
	if (rc) {
		free(q);
		return rc;
	}
	/* A supervisor's explicit call: look at every slot. */
	n = check_all(q, tok);
	if (q->joinable)
		n += tasks_reap(q);
	free(q);
	return n;
}

/* ---- producer side --------------------------------------------------- */

/* Claim slot s (word w, position p) for writing by tok and help enq_pos. */
static bool put_cas(lfipc_queue *q, qslot *s, uint64_t w, uint64_t p,
		    uint32_t tok)
{
	uint64_t p2 = p;

	if (!atomic_compare_exchange_strong(&s->word, &w,
					    mkword((uint32_t)p, tok | CL_W)))
		return false;
	atomic_compare_exchange_strong(&q->h->enq_pos, &p2, p + 1);
	return true;
}

/*
 * Single-producer mode: claim slot s, FREE(p), for the role holder tok. In
 * this mode nobody but the role holder claims a FREE slot (consumers,
 * clears and repairs only act on claimed slots and on positions below
 * enq_pos), so after seeing FREE(p) the claim is a plain store, not a CAS.
 * Q9: relaxed: ordered before the seq_cst store of enq_pos that follows
 * (sp_advance()); whoever relies on "below enq_pos means claimed" loads
 * enq_pos first (seq_cst), and to anybody else FREE(p) and WRITING(p) look
 * alike ("not published yet"). Checked with tests/model/queue_recovery.pml
 * (SPFAST=1). Returns s, or NULL when slot p is not FREE(p) or the queue is
 * full at p (the caller then takes the general way).
 */
static qslot *sp_claim(lfipc_queue *q, uint64_t p, uint64_t deq, uint32_t tok)
{
	qslot *s = slot_at(q, p);

	if (q->cap != q->n && (int64_t)(p - deq) >= (int64_t)q->cap)
		return NULL;
	if (atomic_load(&s->word) != mkword((uint32_t)p, 0))
		return NULL;
	atomic_store_explicit(&s->word, mkword((uint32_t)p, tok | CL_W),
			      memory_order_relaxed);
	return s;
}

/* Single-producer mode: move enq_pos to `to` after the role holder's own
 * claims. Nobody else moves it past a position the holder has not claimed
 * (a consumer dropping a hole moves it at most past that hole, which lies
 * below the holder's claims), so a store does, never moving it backwards.
 * seq_cst: the Dekker pairing with shutdown (claim_once()). */
static void sp_advance(lfipc_queue *q, uint64_t to)
{
	atomic_store(&q->h->enq_pos, to);
}

/* Try to claim one slot for writing. 1: *pos_out, *s_out claimed;
 * 0: full; -EPROTO: the shared words make no sense. */
static int try_claim_put(lfipc_queue *q, uint32_t tok, qslot **s_out,
			 uint64_t *pos_out)
{
	qhdr *h = q->h;
	uint64_t p = atomic_load(&h->enq_pos);

	if (q->single[LFIPC_Q_ROLE_PUT]) {
		qslot *s = sp_claim(q, p,
				    q->cap != q->n ? atomic_load(&h->deq_pos)
						   : 0,
				    tok);

		if (s) {
			sp_advance(q, p + 1);
			*s_out = s;
			*pos_out = p;
			return 1;
		}
	}
	for (;;) {
		qslot *s = slot_at(q, p);
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
		if (d < 0) {
			/* the previous lap still holds it: full, unless its
			 * claimant is dead (checked now and then) */
			if ((c & CL_TOK) && stuck(q, w) && repair(q, tok, s, w))
				continue;
			return 0;
		}
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
 * -EPROTO when the word was overwritten. The word may go WRITING ->
 * DISCARD (a clear) -> WRITING (the undo of that clearer's death) any
 * number of times while we look: retry while it is ours in either form. */
static int publish_slot(qslot *s, uint64_t p, uint32_t tok)
{
	const uint64_t mine = mkword((uint32_t)p, tok | CL_W);
	const uint64_t disc = mkword((uint32_t)p, tok | CL_WR);
	uint64_t w = mine;

	for (;;) {
		/* Q3: seq_cst CAS (release for the payload; pairs with the
		 * consumer's claiming CAS in try_claim_get() or
		 * get_run_claim(), and orders against the waiter flag load
		 * in ev_wake). */
		if (w == mine &&
		    atomic_compare_exchange_strong(
			&s->word, &w, mkword((uint32_t)(p + 1), 0)))
			return 0;
		/* A clear took the slot (DISCARD): the message is
		 * discarded; hand the slot over as CLR, the clear has
		 * counted it. */
		if (w == disc &&
		    atomic_compare_exchange_strong(
			&s->word, &w, mkword((uint32_t)(p + 1), CLR)))
			return 1;
		if (w != mine && w != disc)
			return -EPROTO;
	}
}

/* A slot published at position p behind deq_pos (a clear passed it while
 * it was being written) is free for the next lap at once, so producers
 * asleep on a full queue must hear of it. Q8: seq_cst loads: the publish
 * CAS (K1), then the K2 load of the waiters word (internal/wait.h). The
 * deq_pos line is read only when producers wait or poll. */
static void wake_if_behind(lfipc_queue *q, uint64_t p)
{
	if (atomic_load(&q->h->not_full.waiters) &&
	    (int64_t)(atomic_load(&q->h->deq_pos) - p) > 0)
		ev_wake(q, &q->h->not_full);
}

/* Publish the slot at position p claimed by tok and wake whom it concerns.
 * Returns 0 (also when a clear discarded it meanwhile) or -EPROTO. */
static int publish(lfipc_queue *q, qslot *s, uint64_t p, uint32_t tok)
{
	int rc = publish_slot(s, p, tok);

	if (rc == 0) {
		ev_wake(q, &q->h->not_empty);
		wake_if_behind(q, p);
	} else if (rc == 1) {
		ev_wake(q, &q->h->not_full);
	}
	return rc < 0 ? rc : 0;
}

/* Give up position p of slot s, claimed by tok and not published: TOMB(p),
 * as a dead producer's (a slot a clear discarded meanwhile, DISCARD,
 * becomes CLR). Retries like publish_slot(). The caller then drops the
 * holes at the head (drop_holes()) and wakes not_empty. */
static void give_up_slot(lfipc_queue *q, qslot *s, uint64_t p, uint32_t tok)
{
	const uint64_t mine = mkword((uint32_t)p, tok | CL_W);
	const uint64_t disc = mkword((uint32_t)p, tok | CL_WR);
	uint64_t w = mine;

	pos_advance(&q->h->hole_hi, p + 1); /* before the TOMB exists */
	for (;;) {
		if (w == mine &&
		    atomic_compare_exchange_strong(
			&s->word, &w, mkword((uint32_t)(p + 1), TOMB)))
			return;
		if (w == disc &&
		    atomic_compare_exchange_strong(
			&s->word, &w, mkword((uint32_t)(p + 1), CLR)))
			return;
		if (w != mine && w != disc)
			return; /* overwritten: nothing of ours left */
	}
}

/* A put that claimed position p of slot s and then found the queue shut
 * down gives the position up. The hole it leaves is dropped at once if it
 * is at the head: the consumers may all have returned -EPIPE already (they
 * saw the queue closed and empty before our claim), and a hole nobody
 * drops would keep join waiting and qsize() above 0 for ever. */
static int put_closed(lfipc_queue *q, qslot *s, uint64_t p, uint32_t tok)
{
	give_up_slot(q, s, p, tok);
	drop_holes(q);
	ev_wake(q, &q->h->not_empty);
	return -EPIPE;
}

/* One claim attempt: 0 claimed, 1 full, or a negative errno. The seq_cst
 * load of closed after the claim pairs with the seq_cst store in
 * lfipc_queue_shutdown(): either the shutdown comes later in the total
 * order (and a get that then sees "closed" also sees our enq_pos, so it
 * waits for our message), or we see it and give the position up. */
static int claim_once(lfipc_queue *q, uint32_t tok, qslot **s, uint64_t *pos)
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

/* The token of the participant whose claim on the slot of position pos
 * keeps a waiter waiting (a producer writing the head, a consumer of the
 * previous lap still reading the slot producers need), or 0: the wait
 * layer sleeps on its death word too, so its death ends the sleep. */
static uint32_t blocker(const lfipc_queue *q, uint64_t pos)
{
	/* Q10: relaxed: a hint; the checks re-read the word (slice_check). */
	uint64_t w = atomic_load_explicit(&slot_at(q, pos)->word,
					  memory_order_relaxed);

	return wclaim(w) & CL_TOK;
}

/* A waiter of this handle: what its readiness callback needs. */
struct qwait {
	lfipc_queue *q;
	uint32_t tok;
	bool nowait;
	qslot **s;
	uint64_t *pos, *w, *head;
};

/* The checks a waiter makes when the wait layer asks for them (check:
 * before the first sleep without the death push, after a partner's death
 * word woke it, at each slice end): O(1) whatever N (slice_check); a
 * caller that only polls makes them every POLL_CHECK attempts. */
static void qwait_check(struct qwait *c)
{
	if (c->nowait)
		poll_tick(c->q, c->tok);
	else
		slice_check(c->q, c->tok);
}

/* Readiness callback of a put (internal/wait.h). */
static int put_ready(void *ctx, struct lfipc_sleep *sl, bool check)
{
	struct qwait *c = ctx;
	int rc;

	if (check)
		qwait_check(c);
	/* Q4: seq_cst: the W3 load of the wait protocol against the store of
	 * lfipc_queue_shutdown() (K1). Also an early exit only; the
	 * authoritative check is the seq_cst load after the claim
	 * (claim_once). */
	if (atomic_load(&c->q->h->closed))
		return -EPIPE;
	rc = claim_once(c->q, c->tok, c->s, c->pos);
	if (rc <= 0)
		return rc == 0 ? 1 : rc;
	sl->partner[0] = blocker(c->q, atomic_load(&c->q->h->enq_pos));
	return 0;
}

/* The poller of side (0 get, 1 put), or NULL when nobody made an fd. */
static struct lfipc_poller *poller_of(lfipc_queue *q, int side)
{
	/* Q9: acquire, pairs with the release in lfipc_queue_fd(). */
	return atomic_load_explicit(&q->poller[side], memory_order_acquire);
}

/* Wait through the wait layer on wq until ready() completes, the call
 * fails or timeout_ns passes. The first attempt reads no clock. */
static int qwait_run(struct qwait *c, int side, struct lfipc_wq *wq,
		     lfipc_ready_fn ready, int64_t timeout_ns)
{
	struct lfipc_sleep sl = {0};
	int rc = ready(c, &sl, false);

	if (rc)
		return rc > 0 ? 0 : rc;
	return lfipc__wait_poll(c->q->r, wq, ready, c,
				lfipc__deadline(timeout_ns), 0,
				side < 0 ? NULL : poller_of(c->q, side));
}

/* Claim one slot for a put, waiting until timeout_ns passes. */
static int claim_put(lfipc_queue *q, qslot **s, uint64_t *pos,
		     uint32_t *tok_out, int64_t timeout_ns)
{
	struct qwait c = {q, 0, timeout_ns == LFIPC_NOWAIT, s, pos, NULL, NULL};
	int rc = lfipc__self(q->r, &c.tok);

	if (rc)
		return rc;
	*tok_out = c.tok;
	return qwait_run(&c, 1, &q->h->not_full, put_ready, timeout_ns);
}

int lfipc_queue_put(lfipc_queue *q, const void *msg, size_t len,
		    int64_t timeout_ns)
{
	qslot *s;
	uint64_t p;
	uint32_t tok;
	int rc;

	if (!q || (!msg && len))
		return -EINVAL;
	if (len > q->msg_size)
		return -EMSGSIZE;
	rc = self_in_role(q, LFIPC_Q_ROLE_PUT, &tok);
	if (rc)
		return rc;
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

/* Extend a put run: claim position p, the one after the caller's previous
 * claim, for tok without touching enq_pos. deq is a value deq_pos had at or
 * after the run's first claim (for the capacity test; a stale value only
 * stops the run early). Returns the slot, or NULL when p is not free for
 * us. */
static qslot *put_run_claim(lfipc_queue *q, uint64_t p, uint64_t deq,
			    uint32_t tok)
{
	qslot *s = slot_at(q, p);
	uint64_t w, nw = mkword((uint32_t)p, tok | CL_W);
	uint32_t c;

	if (q->single[LFIPC_Q_ROLE_PUT])
		return sp_claim(q, p, deq, tok);
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
		qslot *s;
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
		if (q->single[LFIPC_Q_ROLE_PUT])
			sp_advance(q, p + 1);
		else
			pos_advance(&q->h->enq_pos, p + 1);
		/* As in claim_once(): either our claims and enq_pos moving
		 * past them come before the shutdown in the total order, or
		 * we see it and give the run up (its first position was
		 * checked already and stays). */
		if (atomic_load(&q->h->closed)) {
			for (int i = start; i < k; i++)
				give_up_slot(q, slot_at(q, pos[i]), pos[i],
					     *tok);
			drop_holes(q);
			ev_wake(q, &q->h->not_empty);
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
	int rc;

	if (!q || !msgs || !lens || n == 0 || n > INT32_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (lens[i] > q->msg_size)
			return -EMSGSIZE;
		if (!msgs[i] && lens[i])
			return -EINVAL;
	}
	rc = self_in_role(q, LFIPC_Q_ROLE_PUT, &tok);
	if (rc)
		return rc;
	while (done < n) {
		int m = n - done > BULK_MAX ? BULK_MAX : (int)(n - done);
		int k = put_batch_claim(q, pos, m, done == 0, &tok, timeout_ns);
		bool woke_e = false, woke_f = false;
		int bad = -1;

		if (k < 0)
			return done ? (int)done : k;
		for (int j = 0; j < k; j++) {
			qslot *s = slot_at(q, pos[j]);

			if (lens[done + j])
				memcpy(s->data, msgs[done + j], lens[done + j]);
			s->len = lens[done + j];
		}
		for (int j = 0; j < k; j++) {
			qslot *s = slot_at(q, pos[j]);

			if (bad >= 0) {
				/* after a corrupt slot: give the rest up, so
				 * the count returned is exact */
				give_up_slot(q, s, pos[j], tok);
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
			ev_wake(q, &q->h->not_empty);
		if (woke_f)
			ev_wake(q, &q->h->not_full);
		else if (k > 0)
			wake_if_behind(q, pos[0]);
		if (bad >= 0) {
			drop_holes(q);
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
static qslot *slot_of(lfipc_queue *q, const void *data)
{
	const unsigned char *p = data;
	uint64_t off;

	if (!p || p < q->slots + SLOT_HDR || p >= q->slots + q->total)
		return NULL;
	off = (uint64_t)(p - q->slots);
	if (off % q->stride != SLOT_HDR)
		return NULL;
	return (qslot *)(q->slots + off - SLOT_HDR);
}

int lfipc_queue_reserve(lfipc_queue *q, void **slot, int64_t timeout_ns)
{
	qslot *s;
	uint64_t p;
	uint32_t tok;
	int rc;

	if (!q || !slot)
		return -EINVAL;
	rc = self_in_role(q, LFIPC_Q_ROLE_PUT, &tok);
	if (rc)
		return rc;
	rc = claim_put(q, &s, &p, &tok, timeout_ns);
	if (rc)
		return rc;
	*slot = s->data;
	return 0;
}

int lfipc_queue_commit(lfipc_queue *q, void *slot, size_t len)
{
	qslot *s;
	uint32_t tok, c;
	uint64_t w;

	if (!q)
		return -EINVAL;
	s = slot_of(q, slot);
	if (!s || lfipc__self(q->r, &tok))
		return -EINVAL;
	w = atomic_load(&s->word);
	c = wclaim(w);
	/* ours: WRITING(p, tok) or DISCARD(p, tok). Anything else is not
	 * the caller's: a word rewritten by another process, or a slot
	 * committed already (the word cannot tell the two apart). */
	if ((c & ~CL_R) != (tok | CL_W))
		return -EPROTO;
	if (len > q->msg_size)
		return -EMSGSIZE;
	s->len = len;
	/* The position of a claimed slot is its seq (mod 2^32), within a
	 * lap of enq_pos. */
	return publish(q, s, pos_near(atomic_load(&q->h->enq_pos), wseq(w)),
		       tok);
}

/* ---- consumer side --------------------------------------------------- */

/* Take an ORPHAN (a message whose consumer died mid-get) for tok, under
 * the lock, starting where the last one was found (a dead get_many leaves
 * a run of them). 1: claimed (*s_out, its new word *w_out); 0: none, or
 * the lock is busy (the next get tries again). */
static int rescue(lfipc_queue *q, uint32_t tok, qslot **s_out, uint64_t *w_out)
{
	qhdr *h = q->h;
	uint64_t start;

	if (!lock_try(q, tok))
		return 0;
	if (atomic_load(&h->orphans) == 0) {
		lock_release(q);
		return 0;
	}
	start = atomic_load(&h->orphan_at);
	for (uint64_t i = 0; i < q->n; i++) {
		qslot *s = slot_at(q, start + i);
		uint64_t w = atomic_load(&s->word);
		uint64_t nw = mkword(wseq(w), tok | CL_R);

		if (wclaim(w) == ORPHAN &&
		    atomic_compare_exchange_strong(&s->word, &w, nw)) {
			atomic_store(&h->orphan_at, start + i + 1);
			atomic_fetch_sub(&h->orphans, 1);
			lock_release(q);
			*s_out = s;
			*w_out = nw;
			return 1;
		}
	}
	/* None left: the count was too high (a peer wrote it). We hold the
	 * lock, so the true count is 0. */
	atomic_store(&h->orphans, 0);
	lock_release(q);
	return 0;
}

/* Try to claim the oldest message. 1: claimed (*s_out, its word *w_out;
 * *head_out the position when it was claimed at the head, UINT64_MAX for a
 * rescued orphan); 0: empty (or the head is in flight); -EPROTO: nonsense
 * in shared memory. */
static int try_claim_get(lfipc_queue *q, uint32_t tok, qslot **s_out,
			 uint64_t *w_out, uint64_t *head_out)
{
	qhdr *h = q->h;
	uint64_t p;

	/* Q5: relaxed; a hint, re-read under the lock by rescue(). */
	if (atomic_load_explicit(&h->orphans, memory_order_relaxed) &&
	    rescue(q, tok, s_out, w_out)) {
		*head_out = UINT64_MAX;
		return 1;
	}
	p = atomic_load(&h->deq_pos);
	for (;;) {
		qslot *s = slot_at(q, p);
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
			/* With capacity < N, a producer's room is positional
			 * (enq_pos - deq_pos < capacity): moving deq_pos made
			 * room, also for a peek that releases much later. */
			if (q->cap != q->n)
				ev_wake(q, &h->not_full);
			*s_out = s;
			*w_out = nw;
			*head_out = p;
			return 1;
		}
		if (d == 0 && c == TOMB) {
			if (drop_hole(q, s, w, p))
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
		if (d < 0 || c == CLR) {
			/* Empty, in flight, or held by a clear. A head that
			 * stays claimed is checked now and then: its
			 * producer (or the clearer) may be dead. */
			if ((c & CL_TOK) && stuck(q, w) && repair(q, tok, s, w))
				continue;
			if (c == CLR && stuck(q, w) && lock_repair(q, tok))
				continue;
			return 0;
		}
		/* the head is claimed by a reader (or orphaned, or already
		 * released) and deq_pos lags: help. */
		if (atomic_compare_exchange_strong(&h->deq_pos, &p2, p + 1))
			p = p + 1;
		else
			p = p2;
	}
}

/* Give back a slot claimed for reading by tok (word w = READING(p, tok)):
 * free it for lap p + N. delivered: the message was handed to the caller
 * (a JoinableQueue counts it as got by tok) rather than dropped as
 * corrupt (counted as done). */
static void release_slot(lfipc_queue *q, qslot *s, uint64_t w, uint32_t tok,
			 bool delivered)
{
	/* Q6: seq_cst store; pairs with the producer's claiming CAS. */
	atomic_store(&s->word, mkword(wseq(w) - 1 + (uint32_t)q->n, 0));
	if (q->joinable) {
		if (delivered) {
			tasks_got(q, tok, 1);
		} else {
			atomic_fetch_add(&q->h->done, 1);
			ev_wake(q, &q->h->joined);
		}
	}
	ev_wake(q, &q->h->not_full);
}

static bool looks_empty(lfipc_queue *q)
{
	uint64_t e = atomic_load(&q->h->enq_pos);
	uint64_t d = atomic_load(&q->h->deq_pos);

	return (int64_t)(e - d) <= 0 && !atomic_load(&q->h->orphans);
}

/* Shut down and nothing left for a get: -EPIPE. Before saying so, make
 * sure no dead consumer holds a message that nobody has noticed yet (it
 * would become an orphan for the next get). */
static bool drained(lfipc_queue *q, uint32_t tok)
{
	if (!atomic_load(&q->h->closed) || !looks_empty(q))
		return false;
	return check_all(q, tok) == 0 || looks_empty(q);
}

/* Readiness callback of a get (internal/wait.h). */
static int get_ready(void *ctx, struct lfipc_sleep *sl, bool check)
{
	struct qwait *c = ctx;
	int rc;

	if (check)
		qwait_check(c);
	rc = try_claim_get(c->q, c->tok, c->s, c->w, c->head);
	if (rc)
		return rc;
	if (drained(c->q, c->tok))
		return -EPIPE;
	sl->partner[0] = blocker(c->q, atomic_load(&c->q->h->deq_pos));
	return 0;
}

static int claim_get(lfipc_queue *q, qslot **s, uint64_t *w, uint64_t *head,
		     uint32_t *tok_out, int64_t timeout_ns)
{
	struct qwait c = {q, 0, timeout_ns == LFIPC_NOWAIT, s, NULL, w, head};
	int rc = lfipc__self(q->r, &c.tok);

	if (rc)
		return rc;
	*tok_out = c.tok;
	return qwait_run(&c, 0, &q->h->not_empty, get_ready, timeout_ns);
}

int lfipc_queue_get(lfipc_queue *q, void *buf, size_t buf_size, size_t *len,
		    int64_t timeout_ns)
{
	qslot *s;
	uint64_t w, l, head;
	uint32_t tok;
	int rc;

	if (!q || !buf)
		return -EINVAL;
	if (buf_size < q->msg_size)
		return -EMSGSIZE;
	rc = self_in_role(q, LFIPC_Q_ROLE_GET, &tok);
	if (rc)
		return rc;
	rc = claim_get(q, &s, &w, &head, &tok, timeout_ns);
	if (rc)
		return rc;
	l = lfipc__shm_ld64(&s->len); /* once: checked, then used */
	if (l > q->msg_size) {
		release_slot(q, s, w, tok, false);
		return -EPROTO;
	}
	memcpy(buf, s->data, l);
	if (len)
		*len = l;
	release_slot(q, s, w, tok, true);
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
static qslot *get_run_claim(lfipc_queue *q, uint64_t p, uint32_t tok,
			    uint64_t *w_out)
{
	qslot *s = slot_at(q, p);
	uint64_t w = mkword((uint32_t)(p + 1), 0);
	uint64_t nw = mkword((uint32_t)(p + 1), tok | CL_R);

	/* A CAS from the exact FULL(p) word, without a load first (the line
	 * is usually in the producer's cache: one transfer, not two). It
	 * acquires the payload (pairs with Q3 in publish_slot()). */
	if (!atomic_compare_exchange_strong(&s->word, &w, nw))
		return NULL;
	*w_out = nw;
	return s;
}

/* Claim up to m messages for a get batch into s[], w[] (first: the call's
 * first batch, which may wait up to timeout_ns). Returns the number claimed
 * (>= 1) or a negative errno when none was. */
static int get_batch_claim(lfipc_queue *q, qslot **s, uint64_t *w, int m,
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
	qslot *s[BULK_MAX];
	uint64_t w[BULK_MAX];
	size_t done = 0;
	uint32_t tok = 0;
	int corrupt = 0, rc;

	if (!q || !bufs || !lens || n == 0 || n > INT32_MAX)
		return -EINVAL;
	if (stride < q->msg_size)
		return -EMSGSIZE;
	rc = self_in_role(q, LFIPC_Q_ROLE_GET, &tok);
	if (rc)
		return rc;
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
			/* once: checked, then used */
			uint64_t l = lfipc__shm_ld64(&s[j]->len);

			if (l > q->msg_size) {
				bad++;
			} else {
				memcpy((char *)bufs + (done + good) * stride,
				       s[j]->data, l);
				lens[done + good] = l;
				good++;
			}
			/* Q11: release store; pairs with the producer's
			 * claiming CAS or load (acquire: our copy of the
			 * payload above is done before it writes a new one).
			 * The seq_cst fence below orders the batch's stores
			 * before the one look at not_full. */
			atomic_store_explicit(
			    &s[j]->word,
			    mkword(wseq(w[j]) - 1 + (uint32_t)q->n, 0),
			    memory_order_release);
		}
		/* Q11: one full fence for the batch instead of a seq_cst
		 * store per slot: a producer that announced itself on
		 * not_full (seq_cst) before this fence in the total order
		 * is seen by ev_wake() below; one after it sees every slot
		 * released (the Dekker pairing of release_slot()). */
		atomic_thread_fence(memory_order_seq_cst);
		if (q->joinable) {
			if (good)
				tasks_got(q, tok, (uint64_t)good);
			if (bad) {
				atomic_fetch_add(&q->h->done, (uint64_t)bad);
				ev_wake(q, &q->h->joined);
			}
		}
		/* one look at not_full for the whole batch */
		ev_wake(q, &q->h->not_full);
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
	qslot *s;
	uint64_t w, l, head;
	uint32_t tok;
	int rc;

	if (!q || !msg || !len)
		return -EINVAL;
	rc = self_in_role(q, LFIPC_Q_ROLE_GET, &tok);
	if (rc)
		return rc;
	rc = claim_get(q, &s, &w, &head, &tok, timeout_ns);
	if (rc)
		return rc;
	l = lfipc__shm_ld64(&s->len); /* once: checked, then used */
	if (l > q->msg_size) {
		release_slot(q, s, w, tok, false);
		return -EPROTO;
	}
	*msg = s->data;
	*len = l;
	return 0;
}

int lfipc_queue_release(lfipc_queue *q, const void *msg)
{
	qslot *s;
	uint32_t tok;
	uint64_t w;

	if (!q)
		return -EINVAL;
	s = slot_of(q, msg);
	if (!s || lfipc__self(q->r, &tok))
		return -EINVAL;
	w = atomic_load(&s->word);
	/* ours: READING(p, tok); anything else, as in commit. */
	if (wclaim(w) != (tok | CL_R))
		return -EPROTO;
	release_slot(q, s, w, tok, true);
	return 0;
}

/* ---- clear ----------------------------------------------------------- */

/* Take the lock for tok. 0; -EBUSY another live participant has held it
 * for CLEAR_WAIT_NS (it is stopped, or the word is corrupt). */
static int clear_lock(lfipc_queue *q, uint32_t tok)
{
	int64_t t0 = 0;
	unsigned spins = 0;

	for (;;) {
		uint32_t c = 0;

		if (atomic_compare_exchange_strong(&q->h->lock, &c, tok))
			return 0;
		if (++spins % 256 == 0) {
			int64_t now = lfipc__now_ns();

			if (c != tok && lock_try(q, tok))
				return 0; /* taken over from a dead holder */
			if (t0 == 0)
				t0 = now;
			else if (now - t0 > CLEAR_WAIT_NS)
				return -EBUSY;
			sched_yield();
		}
		lfipc__cpu_relax();
	}
}

/* The clear proper, with the lock held: hold the head slot in the slot
 * word (CLR or DISCARD), move deq_pos past everything claimed so far,
 * account for it, let go of the head. Returns the number discarded or
 * -EPROTO. */
static int64_t clear_locked(lfipc_queue *q)
{
	qhdr *h = q->h;

	for (;;) {
		uint64_t d = atomic_load(&h->deq_pos);
		uint64_t e = atomic_load(&h->enq_pos);
		qslot *s = slot_at(q, d);
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
	/* Q10: relaxed: a statistics counter (lfipc_queue_stat), ordered
	 * with nothing. */
	if (n > 0)
		atomic_fetch_add_explicit(&q->h->cleared, (uint64_t)n,
					  memory_order_relaxed);
	lock_release(q);
	drop_holes(q); /* a take-over may have left the head a TOMB */
	ev_wake(q, &q->h->not_full);
	ev_wake(q, &q->h->joined);
	/* consumers that saw the held head as "in flight" look again */
	ev_wake(q, &q->h->not_empty);
	return n;
}

/* ---- sizes, shutdown, join ------------------------------------------- */

size_t lfipc_queue_qsize(const lfipc_queue *q)
{
	uint64_t e, d, hh;
	int64_t n;

	if (!q)
		return 0;
	e = atomic_load(&q->h->enq_pos);
	d = atomic_load(&q->h->deq_pos);
	hh = atomic_load(&q->h->hole_hi);
	n = (int64_t)(e - d);
	if (n < 0)
		n = 0;
	/* Holes (TOMB) are not messages. They lie below hole_hi, so in a
	 * queue that never had one below deq_pos this costs nothing; else
	 * the positions up to hole_hi are looked at (at most N + 1). */
	if ((int64_t)(hh - d) > 0) {
		uint64_t end = (int64_t)(hh - e) < 0 ? hh : e;

		for (uint64_t x = d; (int64_t)(end - x) > 0 && x - d <= q->n;
		     x++)
			if (atomic_load(&slot_at(q, x)->word) ==
			    mkword((uint32_t)(x + 1), TOMB))
				n--;
	}
	/* Orphans (behind deq_pos) are messages still to be delivered. */
	n += atomic_load(&q->h->orphans);
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
	ev_wake(q, &q->h->not_empty);
	ev_wake(q, &q->h->not_full);
	return 0;
}

/* Positions a readiness look steps over (slots whose claimant has not
 * moved the position word yet); beyond, it answers "not ready". */
#define PEEK_STEPS 64u

/*
 * Would a get (a put) not block now? Nothing is claimed (fds, wait-for-any):
 * a get would not block when the queue is shut down, holds an orphan, or
 * its head slot is FULL; a put when the queue is shut down or the slot at
 * its position is free for this lap within the capacity. Slots already
 * claimed at the position (the claimant has not moved the position word
 * yet) and holes are stepped over. seq_cst loads (W3 of a wait-for-any).
 */
static bool get_now(void *ctx)
{
	lfipc_queue *q = ctx;
	uint64_t p;

	if (atomic_load(&q->h->closed) || atomic_load(&q->h->orphans))
		return true;
	p = atomic_load(&q->h->deq_pos);
	for (unsigned i = 0; i < PEEK_STEPS; i++, p++) {
		uint64_t w = atomic_load(&slot_at(q, p)->word);

		if (wseq(w) != (uint32_t)(p + 1))
			return false; /* empty or being written */
		if (wclaim(w) == 0)
			return true; /* FULL */
		if (wclaim(w) == CLR)
			return false; /* held by a clear */
		/* READING, ORPHAN, TOMB: look at the next position */
	}
	return false;
}

static bool put_now(void *ctx)
{
	lfipc_queue *q = ctx;
	uint64_t p;

	if (atomic_load(&q->h->closed))
		return true;
	p = atomic_load(&q->h->enq_pos);
	for (unsigned i = 0; i < PEEK_STEPS; i++, p++) {
		uint64_t w = atomic_load(&slot_at(q, p)->word);

		if ((int64_t)(p - atomic_load(&q->h->deq_pos)) >=
		    (int64_t)q->cap)
			return false;
		if (wseq(w) != (uint32_t)p)
			return false; /* the previous lap holds it */
		if (wclaim(w) == 0)
			return true;
		/* claimed for this lap: look at the next position */
	}
	return false;
}

/* Non-consuming readiness callbacks for lfipc_wait_any (wait_any.c). */
static int peek_ready(lfipc_queue *q, bool now, uint64_t pos,
		      struct lfipc_sleep *sl, bool check)
{
	uint32_t tok;

	if (check && lfipc__self(q->r, &tok) == 0)
		slice_check(q, tok);
	if (now)
		return 1;
	sl->partner[0] = blocker(q, pos);
	return 0;
}

static int get_peek(void *ctx, struct lfipc_sleep *sl, bool check)
{
	lfipc_queue *q = ctx;

	return peek_ready(q, get_now(q), atomic_load(&q->h->deq_pos), sl,
			  check);
}

static int put_peek(void *ctx, struct lfipc_sleep *sl, bool check)
{
	lfipc_queue *q = ctx;

	return peek_ready(q, put_now(q), atomic_load(&q->h->enq_pos), sl,
			  check);
}

int lfipc__queue_any(lfipc_queue *q, int side, struct lfipc_any *a,
		     lfipc_region **r)
{
	if (side != LFIPC_FD_GET && side != LFIPC_FD_PUT)
		return -EINVAL;
	a->wq = side == LFIPC_FD_GET ? &q->h->not_empty : &q->h->not_full;
	a->ready = side == LFIPC_FD_GET ? get_peek : put_peek;
	a->ctx = q;
	*r = q->r;
	return 0;
}

int lfipc_queue_fd(lfipc_queue *q, int side)
{
	if (!q || (side != LFIPC_FD_GET && side != LFIPC_FD_PUT))
		return -EINVAL;
	return lfipc__poller_fd_once(
	    q->r, side == LFIPC_FD_GET ? &q->h->not_empty : &q->h->not_full,
	    &q->poller[side], &q->poller_mu,
	    side == LFIPC_FD_GET ? get_now : put_now, q);
}

int lfipc_queue_task_done(lfipc_queue *q)
{
	uint32_t tok;

	if (!q || !q->joinable || lfipc__self(q->r, &tok))
		return -EINVAL;
	/* The caller's own task first; else one another process got (the
	 * task was handed over, as Python allows). */
	if (!task_settle(task_of(q, tok))) {
		uint32_t i;

		for (i = 0; i < LFIPC_PROC_SLOTS; i++)
			if (task_settle(&q->tasks[i]))
				break;
		if (i == LFIPC_PROC_SLOTS)
			return -EINVAL;
	}
	ev_wake(q, &q->h->joined);
	return 0;
}

static bool all_done(lfipc_queue *q)
{
	/* settled and done first, enq_pos last: each only grows, so a put,
	 * get and task_done racing with these loads can only make the count
	 * of unfinished tasks look higher (join returns late), never lower
	 * (join returning while a task is outstanding). */
	uint64_t sum = 0, d, e;

	for (uint32_t i = 0; i < LFIPC_PROC_SLOTS; i++)
		sum += atomic_load(&q->tasks[i].settled);
	d = atomic_load(&q->h->done);
	e = atomic_load(&q->h->enq_pos);
	return (int64_t)(e - d - sum) <= 0;
}

/* All done: 0, or -EOWNERDEAD the first time after tasks were written off
 * (reported to one join only). */
static int join_result(lfipc_queue *q)
{
	uint64_t a = atomic_load(&q->h->abandoned);
	uint64_t seen = atomic_load(&q->h->abandoned_seen);

	while (seen != a) {
		if (atomic_compare_exchange_weak(&q->h->abandoned_seen, &seen,
						 a))
			return -EOWNERDEAD;
	}
	return 0;
}

/* Readiness callback of a join (internal/wait.h): a poller must see the
 * dead written off too, so its checks reap dead task holders. */
static int join_ready(void *ctx, struct lfipc_sleep *sl, bool check)
{
	struct qwait *c = ctx;
	int rc;

	if (check) {
		tasks_reap(c->q);
		slice_check(c->q, c->tok);
	}
	if (!all_done(c->q))
		return 0;
	rc = join_result(c->q);
	return rc ? rc : 1;
}

int lfipc_queue_join(lfipc_queue *q, int64_t timeout_ns)
{
	struct qwait c = {q, 0, false, NULL, NULL, NULL, NULL};
	int rc;

	if (!q || !q->joinable)
		return -EINVAL;
	rc = lfipc__self(q->r, &c.tok);
	if (rc)
		return rc;
	return qwait_run(&c, -1, &q->h->joined, join_ready, timeout_ns);
}

uint64_t lfipc_queue_tasks_abandoned(const lfipc_queue *q)
{
	return q && q->joinable ? atomic_load(&q->h->abandoned) : 0;
}

/* ---- descriptor, status, open-or-create ------------------------------ */

static uint64_t q_size(const void *shape)
{
	return block_size(shape);
}

static int q_same_shape(lfipc_region *r, uint64_t off, uint64_t size,
			const void *shape)
{
	const struct geom *g = shape;
	lfipc_queue *q;
	int rc = q_handle(r, off, size, &q);

	if (rc < 0)
		return rc == -ENOMEM ? rc : -EPROTO;
	rc = q->cap == g->cap && q->msg_size == g->msg_size &&
		     q->flags == g->flags
		 ? 0
		 : -EEXIST;
	free(q);
	return rc;
}

/* Status through a validated handle. Diagnostic snapshot: every shared
 * word is read once, relaxed (Q11), and nothing is derived from a word
 * beyond counting. */
static void q_fill(const lfipc_queue *q, lfipc_queue_status *st)
{
	qhdr *h = q->h;

	st->depth = lfipc_queue_qsize(q);
	st->capacity = q->cap;
	st->msg_size = q->msg_size;
	st->joinable = q->joinable;
	/* Q11: relaxed loads: a snapshot for people, ordered with nothing. */
	st->shut_down =
	    atomic_load_explicit(&h->closed, memory_order_relaxed) != 0;
	st->consumers_sleeping = lfipc__wq_sleepers(&h->not_empty) != 0;
	st->producers_sleeping = lfipc__wq_sleepers(&h->not_full) != 0;
	st->puts = atomic_load_explicit(&h->enq_pos, memory_order_relaxed);
	st->gets = atomic_load_explicit(&h->deq_pos, memory_order_relaxed);
	st->cleared = atomic_load_explicit(&h->cleared, memory_order_relaxed);
	for (uint64_t i = 0; i < q->n; i++) {
		uint32_t c = wclaim(atomic_load_explicit(
		    &slot_at(q, i)->word, memory_order_relaxed));
		uint32_t tok = c & LFIPC_Q_CL_TOK;

		if (c == TOMB) {
			st->holes++;
		} else if (c == ORPHAN) {
			st->orphans++;
		} else if (tok != 0 && (c & CL_WR) != CL_WR) {
			if (!lfipc__token_alive(q->r, tok))
				st->dead_claims++;
			else if (c & CL_W)
				st->writing++;
			else
				st->reading++;
		}
	}
	if (q->joinable) {
		uint64_t settled = 0;

		for (uint32_t i = 0; i < LFIPC_PROC_SLOTS; i++)
			settled += atomic_load_explicit(&q->tasks[i].settled,
							memory_order_relaxed);
		st->tasks_unfinished =
		    st->puts -
		    atomic_load_explicit(&h->done, memory_order_relaxed) -
		    settled;
		if ((int64_t)st->tasks_unfinished < 0)
			st->tasks_unfinished = 0;
		st->tasks_abandoned =
		    atomic_load_explicit(&h->abandoned, memory_order_relaxed);
	}
}

static int q_status(lfipc_region *r, uint64_t off, uint64_t size, void *st)
{
	lfipc_queue *q;
	int rc = q_handle(r, off, size, &q);

	if (rc < 0)
		return rc;
	q_fill(q, st);
	free(q);
	return 0;
}

const struct lfipc__objtype lfipc__queue_type = {
	.type = LFIPC_OBJ_QUEUE,
	.name = "queue",
	.align = 128,
	.size = q_size,
	.init = q_init,
	.same_shape = q_same_shape,
	.recover = lfipc__queue_recover,
	.status = q_status,
	.status_size = sizeof(lfipc_queue_status),
	.status_min = sizeof(lfipc_queue_status),
};

int lfipc_queue_stat(const lfipc_queue *q, lfipc_queue_status *st)
{
	lfipc_queue_status tmp;

	if (!q)
		return -EINVAL;
	memset(&tmp, 0, sizeof(tmp));
	tmp.struct_size = sizeof(tmp);
	q_fill(q, &tmp);
	return lfipc__status_out(st, &tmp, sizeof(tmp), sizeof(tmp));
}

size_t lfipc_queue_bytes(size_t capacity, size_t msg_size, unsigned flags)
{
	struct geom g;

	if (q_geom(capacity, msg_size, flags, &g) < 0)
		return 0;
	return lfipc__obj_bytes(&lfipc__queue_type, &g);
}

int lfipc_queue_open_or_create(lfipc_region *r, const char *name,
			       size_t capacity, size_t msg_size,
			       unsigned flags, lfipc_queue **out)
{
	struct geom g;
	uint64_t off, size;
	int rc;

	if (!r || !out)
		return -EINVAL;
	rc = q_geom(capacity, msg_size, flags, &g);
	if (rc < 0)
		return rc;
	rc = lfipc__obj_get(r, name, &lfipc__queue_type, &g, LFIPC__GET_EITHER,
			    &off, &size, NULL);
	if (rc)
		return rc;
	return q_handle(r, off, size, out);
}
