/* SPDX-License-Identifier: MIT */
/*
 * internal/queue.h - what the files of the Queue share (private). A Queue
 * (and JoinableQueue) is a Vyukov-style bounded MPMC ring in a shared
 * region whose every claim is visible, with its claimant's token, in the
 * slot word itself (so a dead claimant can always be identified), with
 * futex event counts for blocking and an O(1) clear. See doc/queue.md.
 *
 * The files: queue.c (create, open, close, clear, sizes, shutdown,
 * readiness, status), queue_putget.c (the put and get paths, the
 * single-producer/consumer roles, waiting), queue_bulk.c (put_many and
 * get_many), queue_zerocopy.c (reserve/commit, peek/release, the peek
 * of orphans only), queue_recover.c (the queue lock, holes, dead
 * claimants, orphans, explicit recovery) and queue_tasks.c (JoinableQueue
 * counting, join).
 * What queue_putget.c and queue_bulk.c both make on every call or slot is
 * inline in internal/queue_fast.h.
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
 *   done              JoinableQueue: positions dropped as a hole by a
 *                     dropper that could not hold its record (a hole is
 *                     otherwise counted as got and settled at once, as a
 *                     corrupt message is: lfipc__q_tasks_drop_hole()).
 *   cleared           positions discarded by clears (written only by the
 *                     lock holder, with a store); the clear record
 *                     (clr_d, clr_e, clr_cb) lets the taker of a dead
 *                     clearer's lock make it agree with deq_pos
 *                     (clear_move() in queue.c).
 *   abandoned(_seen)  JoinableQueue: tasks written off because the process
 *                     that got them died (and how many join has reported).
 *   task table        JoinableQueue: per participant, messages got (got
 *                     + the in-flight records' cnt) and tasks settled,
 *                     the owner, and two in-flight records (rec[k],
 *                     rec_pos[k]: internal/queue_layout.h gives their
 *                     encoding).
 *                     Unfinished tasks = enq_pos - done -
 *                     cleared - sum(settled).
 *
 * Memory order: every access to a slot word, a position, the lock and the
 * counters is seq_cst (the payload is published by the seq_cst CAS that
 * makes a slot FULL and acquired by the seq_cst CAS that claims it; the
 * same total order gives the wait layer's pairing of "change state (K1),
 * then look for sleepers (K2)" with "announce (W1), then look at the state
 * (W3)" that makes lost wake-ups impossible: internal/wait.h). The few
 * relaxed, acquire or release accesses are labelled Q<n> with their
 * partner (Q19: the in-flight record, lib/queue_tasks.c).
 *
 * Shared memory is untrusted: every shared word is read once into a local
 * (an atomic load, or lfipc__shm_ld* for the plain fields), the local is
 * validated and only the local is used.
 */
#ifndef LFIPC_INTERNAL_QUEUE_H
#define LFIPC_INTERNAL_QUEUE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <lfipc/queue.h>

#include "internal/poll.h"
#include "internal/queue_layout.h"
#include "internal/region.h"
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
#define QUEUE_FLAGS                                                            \
	(LFIPC_QUEUE_JOINABLE | LFIPC_QUEUE_SINGLE_PRODUCER |                  \
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
	/* Private: 1 while the first attempt of this handle's last put call
	 * found its slot free (the next call then prefetches its slot for
	 * writing, slot_prefetch_w()), 0 after one found the queue full:
	 * while the queue is full the slot a put wants is the one a consumer
	 * works on next, and a prefetch for writing would take its line
	 * away from that consumer. Only first attempts count: a put that
	 * waited and then found room says nothing about the next one (with
	 * a full queue every call waits and then succeeds). Q18: relaxed, a
	 * hint; written only when it changes. */
	_Atomic uint8_t put_pref;
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

/*
 * Ask for the cache lines of slot s that hold its word and the first
 * `bytes` bytes of its payload in the state a write needs (x86:
 * PREFETCHW), before the first load of the word. A load alone fetches a
 * line that the other side wrote last as shared, and the store or CAS that
 * follows then pays a second transfer to upgrade it: with the prefetch in
 * flight the load waits for the one exclusive fetch. A prefetch reads and
 * writes nothing in the C sense (no data race, nothing for TSan), so it
 * may touch a slot we do not own yet; the callers only make it when they
 * expect to write the slot (see put_pref in struct lfipc_queue).
 */
static inline void slot_prefetch_w(const lfipc_queue *q, const qslot *s,
				   uint64_t bytes)
{
	const char *a = (const char *)s;
	uint64_t end = SLOT_HDR + (bytes < q->msg_size ? bytes : q->msg_size);

	/* A few lines: memcpy's own prefetching handles longer messages. */
	if (end > 256)
		end = 256;

	for (uint64_t o = 0; o < end; o += 64) {
#if defined(__x86_64__) || defined(__i386__)
		__asm__ __volatile__("prefetchw %0" : : "m"(a[o]));
#else
		__builtin_prefetch(a + o, 1, 3);
#endif
	}
}

/* Copy a message of n bytes into or out of a slot the caller holds
 * claimed (so the bytes are ours, no atomics needed). Messages of 4 to 64
 * bytes, the common small cases, are copied with two fixed-size, possibly
 * overlapping, moves (of 4, 8, 16 or 32 bytes) that the compiler inlines
 * instead of a call of the C library's memcpy, which dominated a burst's
 * per-message cost at 8 bytes, and whose two calls cost 22 of an SPSC
 * put+get's 408 instructions at 64 bytes (doc/perf.md, "SPSC 64 and
 * 256 B").
 * Every byte read lies in [src, src + n).
 *
 * Not while an AddressSanitizer runtime is in the process (a user's ASan
 * build links one; this library is not instrumented): then every copy is
 * a call of memcpy, whose interceptor checks the user's buffer, so that a
 * buffer shorter than the length the user gave is reported
 * (tests/build/asan-users.sh, its control program). __asan_init is a weak
 * reference: null without the runtime, one load of a constant and a
 * predicted branch per copy. */
extern void __asan_init(void) __attribute__((weak));

static inline void msg_copy(void *dst, const void *src, uint64_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	if (__builtin_expect(&__asan_init != NULL, 0)) {
		if (n)
			memcpy(d, s, n);
		return;
	}
	/* Up to 16 bytes first: an 8-byte message pays two comparisons, as
	 * before the 17-64 byte cases were added. */
	if (n <= 16) {
		if (n >= 8) {
			memcpy(d, s, 8);
			memcpy(d + n - 8, s + n - 8, 8);
		} else if (n >= 4) {
			memcpy(d, s, 4);
			memcpy(d + n - 4, s + n - 4, 4);
		} else if (n) {
			memcpy(d, s, n);
		}
	} else if (n <= 32) {
		memcpy(d, s, 16);
		memcpy(d + n - 16, s + n - 16, 16);
	} else if (n <= 64) {
		memcpy(d, s, 32);
		memcpy(d + n - 32, s + n - 32, 32);
	} else {
		memcpy(d, s, n);
	}
}

/* ---- the CAS bound of the queue's retry loops ------------------------ */

/* The deadline of a put or get call for the CAS bound of its claim loops
 * (internal/wait.h, lfipc__cas_retry; doc/hostile.md, "CAS retry loops"):
 * the call's timeout as given, made a deadline (set) only when a loop
 * reaches the bound's slow part or when the wait layer needs it, whichever
 * comes first. So the first attempt, and a loop whose CAS fails a few
 * times under ordinary contention, read no clock. */
struct qdl {
	int64_t timeout_ns;
	lfipc_deadline dl;
	bool set;
};

/* The deadline of d (made on first use); NULL d: LFIPC_DL_NEVER, the
 * bound alone (a bulk call's later segments, which do not wait). */
static inline lfipc_deadline qdl_get(struct qdl *d)
{
	if (!d)
		return LFIPC_DL_NEVER;
	if (!d->set) {
		d->dl = lfipc__deadline(d->timeout_ns);
		d->set = true;
	}
	return d->dl;
}

/* lfipc__cas_retry() for a loop whose deadline is d: called after a
 * failed CAS (or a helped position) only; the deadline is made only at
 * the bound's slow part, where lfipc__cas_retry() may read the clock.
 * Return: 0 retry; -EPROTO or -ETIMEDOUT (lfipc__cas_retry()). */
static inline int q_cas_retry(struct lfipc_cas_bound *b, struct qdl *d)
{
	return lfipc__cas_count(b) ? lfipc__cas_slow(b, qdl_get(d)) : 0;
}

bool lfipc__q_pos_retry(_Atomic uint64_t *pos, uint64_t to, uint64_t v,
			struct qdl *dl);

/* Move the position word *pos forward to `to`, never backwards (another
 * participant may have helped it further). The first CAS is inline; its
 * retries (lfipc__q_pos_retry) have the CAS bound, after which they give
 * up: a peer that keeps rewriting the word keeps it wherever it likes
 * anyway. The callers cope with a position that lags: claims help enq_pos
 * and deq_pos on past claimed slots (try_claim_put(), try_claim_get()); a
 * lagging hole_hi makes qsize() count a hole as a message; a bulk put
 * gives up the run it could not move enq_pos past (put_batch_claim()).
 * Returns false when it gave up (*pos may lag `to`). pos_advance_dl():
 * the same within the deadline dl of a call that has one (a bulk call's
 * moves of its run), which ends the retries when it comes first. */
static inline bool pos_advance_dl(_Atomic uint64_t *pos, uint64_t to,
				  struct qdl *dl)
{
	uint64_t v = atomic_load(pos);

	if ((int64_t)(to - v) <= 0 || atomic_compare_exchange_weak(pos, &v, to))
		return true;
	return lfipc__q_pos_retry(pos, to, v, dl);
}

static inline bool pos_advance(_Atomic uint64_t *pos, uint64_t to)
{
	return pos_advance_dl(pos, to, NULL);
}

/*
 * After a state change (K1, seq_cst: every change of a slot word, position,
 * closed or task counter in this file is): wake the waiters of wq, all of
 * them. One is not enough: a get woken by the publication of position p+1
 * cannot take it while p is still being written, and the wake-up of p's
 * publication may then go to another sleeper, leaving p+1 to nobody. No
 * system call when nobody waits or polls (wait.h, K2).
 */
static inline void ev_wake(lfipc_queue *q, struct lfipc_wq *wq)
{
	/* K2: seq_cst, after the caller's K1; lfipc__wake() loads the word
	 * again. Looked at here first so that the fast path makes no call
	 * when nobody sleeps or polls: one load of a line that stays shared
	 * while the waiters word does not change. */
	if (atomic_load(&wq->waiters))
		lfipc__wake(q->r, wq, NULL, INT32_MAX);
}

/* A waiter of this handle: what its readiness callback needs. */
struct qwait {
	lfipc_queue *q;
	uint32_t tok;
	bool nowait;
	unsigned tries; /* readiness calls made so far (get: the first
			 * may claim blind, try_claim_get(); put: the first
			 * may prefetch, put_prefetch()) */
	bool pref;    /* put: a single put, whose first attempt may
		       * prefetch its slot (bulk and zero-copy calls do not) */
	uint64_t len; /* put: the message's length (what put_prefetch()
		       * fetches) */
	qslot **s;
	uint64_t *pos, *w, *head;
	struct qdl dl; /* the call's deadline for the CAS bound of its
			* claim loops (timeout_ns set by lfipc__q_wait_run()
			* and get_claim_wait()) */
};

/* Claims per batch of the bulk calls (queue_bulk.c, queue_zerocopy.c):
 * the slots of one batch are held (claimed) together until the batch is
 * copied and published or released. */
#define BULK_MAX 64

/* queue.c: the object (each function's comment is at its definition) */
int lfipc__q_handle(lfipc_region *r, uint64_t off, uint64_t size,
		    lfipc_queue **out);

/* queue_putget.c: put and get (each function's comment is at its definition) */
uint32_t lfipc__q_blocker(const lfipc_queue *q, uint64_t pos);
int lfipc__q_put_ready(void *ctx, struct lfipc_sleep *sl, bool check);
int lfipc__q_get_ready(void *ctx, struct lfipc_sleep *sl, bool check);
int lfipc__q_wait_run(struct qwait *c, int side, struct lfipc_wq *wq,
		      lfipc_ready_fn ready, int64_t timeout_ns);
int lfipc__q_claim_put(lfipc_queue *q, struct qwait *c, int64_t timeout_ns);
int lfipc__q_publish(lfipc_queue *q, qslot *s, uint64_t p, uint32_t tok);
int lfipc__q_get_msg(lfipc_queue *q, qslot **s, uint64_t *w, uint32_t *tok,
		     uint64_t *len, int64_t timeout_ns);
void lfipc__q_release(lfipc_queue *q, qslot *s, uint64_t w, uint32_t tok,
		      bool count);
int lfipc__q_self_get(lfipc_queue *q, uint32_t *tok);
int lfipc__q_claim_once(lfipc_queue *q, uint32_t tok, qslot **s, uint64_t *pos,
			uint64_t len, bool first, struct qdl *dl);
int lfipc__q_try_claim_get(lfipc_queue *q, uint32_t tok, qslot **s_out,
			   uint64_t *w_out, uint64_t *head_out, bool blind,
			   struct qdl *dl);

/* queue_bulk.c: the bulk calls (each function's comment is at its
 * definition) */
int lfipc__q_get_batch(lfipc_queue *q, qslot **s, uint64_t *w, int m,
		       bool first, uint32_t *tok, struct qdl *dl);

/* queue_recover.c: recovery (each function's comment is at its definition) */
void lfipc__q_clear_undo(lfipc_queue *q);
bool lfipc__q_lock_try(lfipc_queue *q, uint32_t tok);
void lfipc__q_lock_release(lfipc_queue *q);
bool lfipc__q_drop_hole(lfipc_queue *q, qslot *s, uint64_t w, uint64_t p,
			struct qdl *dl);
void lfipc__q_drop_holes(lfipc_queue *q);
void lfipc__q_drop_holes_dl(lfipc_queue *q, struct qdl *dl);
int lfipc__q_repair(lfipc_queue *q, uint32_t tok, qslot *s, uint64_t w);
int lfipc__q_orphan_locked(lfipc_queue *q, qslot *s, uint64_t w);
void lfipc__q_rec_resolve(lfipc_queue *q, uint32_t who, uint32_t k,
			  uint64_t r, uint64_t p);
int lfipc__q_lock_repair(lfipc_queue *q, uint32_t tok);
int lfipc__q_slice_check(lfipc_queue *q, uint32_t tok);
void lfipc__q_poll_tick(lfipc_queue *q, uint32_t tok);
bool lfipc__q_stuck(lfipc_queue *q, uint64_t w);
int lfipc__q_rescue(lfipc_queue *q, uint32_t tok, qslot **s_out,
		    uint64_t *w_out, struct qdl *dl);
int lfipc__q_check_all(lfipc_queue *q, uint32_t tok);

/* queue_tasks.c: JoinableQueue counting (each function's comment is at its
 * definition) */
int lfipc__q_tasks_adopt(lfipc_queue *q, uint32_t tok, struct qdl *dl);
int lfipc__q_tasks_reap(lfipc_queue *q);
/* How a consumer frees a slot (q_free_slot(), lfipc__q_count_free()): a
 * seq_cst store (get), a release store (get_many, a fence after), a
 * seq_cst CAS (release), a release CAS (release_many, a fence after). */
enum { QF_STORE, QF_STORE_REL, QF_CAS, QF_CAS_REL };

/* Free slot s (word w, READING by the caller, or by a dead consumer whose
 * COUNTED record covers it) for its next lap, FREE(p + N), the one place
 * that does it, `how` a constant at each call: 1 freed, 0 the CAS of
 * QF_CAS / QF_CAS_REL failed (the word is not w: another thread of the
 * process released it first, or a recoverer did). */
static inline __attribute__((always_inline)) int
q_free_slot(const lfipc_queue *q, qslot *s, uint64_t w, int how)
{
	uint64_t nw = mkword(wseq(w) - 1 + (uint32_t)q->n, 0);

	switch (how) {
	case QF_STORE:
		/* Q6: seq_cst store; pairs with the producer's claiming CAS
		 * (the caller's reads of the payload are done before it
		 * writes a new one) and, in the total order, with a sleeping
		 * producer's announcement on not_full (the caller's
		 * ev_wake()). */
		atomic_store(&s->word, nw);
		return 1;
	case QF_STORE_REL:
		/* Q11: release store; pairs with the producer's claiming CAS
		 * or load (acquire: the payload reads before it). The
		 * caller's seq_cst fence after its batch orders the batch
		 * before its one look at not_full. */
		atomic_store_explicit(&s->word, nw, memory_order_release);
		return 1;
	case QF_CAS:
		/* Q6, as QF_STORE, but a CAS from the word checked: of two
		 * threads of one process releasing one message only one
		 * frees it, never over a producer's newer claim. */
		return atomic_compare_exchange_strong(&s->word, &w, nw);
	default:
		/* Q11, as QF_STORE_REL, but a CAS from the word checked (as
		 * QF_CAS); failure relaxed: nothing is read from it. */
		return atomic_compare_exchange_strong_explicit(
		    &s->word, &w, nw, memory_order_release,
		    memory_order_relaxed);
	}
}
int lfipc__q_count_free(lfipc_queue *q, uint32_t tok, qslot *const *s,
			const uint64_t *w, int k, int how, struct qdl *dl);
int lfipc__q_count_free1(lfipc_queue *q, uint32_t tok, qslot *s, uint64_t w,
			 int how, struct qdl *dl);
void lfipc__q_tasks_settle_own(lfipc_queue *q, uint32_t tok, uint64_t k);
bool lfipc__q_rec_covers(lfipc_queue *q, uint32_t who, uint64_t w,
			 uint32_t *k, uint64_t *r, uint64_t *p);
int lfipc__q_tasks_drop_hole(lfipc_queue *q, qslot *s, uint64_t w, uint64_t p,
			     struct qdl *dl);

/* The task entry of token tok (its participant slot, modulo the table). */
static inline struct lfipc_qtask *q_task_of(const lfipc_queue *q,
					    uint32_t tok)
{
	return &q->tasks[((tok >> LFIPC_TOKEN_GEN_BITS) - 1) %
			 LFIPC_PROC_SLOTS];
}

/* A JoinableQueue consumer about to claim messages (and again before it
 * counts and frees the slots of its messages): adopt its entry first
 * (lfipc__q_tasks_adopt(), out of line only the first time per process
 * and queue). 0, or the adoption gave up: -ETIMEDOUT, -EPROTO. */
static inline int q_tasks_adopt(lfipc_queue *q, uint32_t tok, struct qdl *dl)
{
	if (atomic_load(&q_task_of(q, tok)->owner) != tok)
		return lfipc__q_tasks_adopt(q, tok, dl);
	return 0;
}

#endif /* LFIPC_INTERNAL_QUEUE_H */
