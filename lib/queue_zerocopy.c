/* SPDX-License-Identifier: MIT */
/*
 * queue_zerocopy.c - a Queue's zero-copy calls: reserve/commit (a put
 * written in the slot) and peek/release (a get read in the slot, one or
 * many released; and a peek of orphans only, whose claims are rescues,
 * queue_recover.c). The claims, the publication and the release are the
 * put and get paths' own (queue_putget.c, through lfipc__q_claim_put,
 * lfipc__q_publish, lfipc__q_get_msg and lfipc__q_release; a peek of many
 * claims its batches as get_many does, queue_bulk.c, lfipc__q_get_batch);
 * internal/queue.h describes the shared words.
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

#include <lfipc/queue.h>

#include "internal/proc.h"
#include "internal/queue.h"
#include "internal/shm.h"

/* Find the slot of a zero-copy pointer; NULL if it is not one of ours.
 * The stride (a multiple of 64, from the handle) is usually a power of
 * two: a mask then, not a 64-bit division (tens of cycles, per message of
 * a release_many). */
static qslot *slot_of(lfipc_queue *q, const void *data)
{
	const unsigned char *p = data;
	uint64_t off, st = q->stride;

	if (!p || p < q->slots + SLOT_HDR || p >= q->slots + q->total)
		return NULL;
	off = (uint64_t)(p - q->slots);
	if ((st & (st - 1)) == 0 ? (off & (st - 1)) != SLOT_HDR
				 : off % st != SLOT_HDR)
		return NULL;
	return (qslot *)(q->slots + off - SLOT_HDR);
}

int lfipc_queue_reserve(lfipc_queue *q, void **slot, int64_t timeout_ns)
{
	qslot *s;
	uint64_t p;
	struct qwait c = {.s = &s, .pos = &p};
	int rc;

	if (!q || !slot)
		return -EINVAL;
	rc = lfipc__q_claim_put(q, &c, timeout_ns);
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
	return lfipc__q_publish(q, s, pos_near(atomic_load(&q->h->enq_pos), wseq(w)),
		       tok);
}

int lfipc_queue_peek(lfipc_queue *q, const void **msg, size_t *len,
		     int64_t timeout_ns)
{
	qslot *s;
	uint64_t w, l;
	uint32_t tok;
	int rc;

	if (!q || !msg || !len)
		return -EINVAL;
	rc = lfipc__q_get_msg(q, &s, &w, &tok, &l, timeout_ns);
	if (rc)
		return rc;
	*msg = s->data;
	*len = l;
	return 0;
}

/* The claims are get_many's (get_batch_claim(): runs of consecutive FULL
 * slots, the shared get position moved and not_full looked at once per
 * run), without its copies and releases: each slot stays READING by the
 * caller, exactly as after as many single peeks, so a crash after the
 * call, or inside it, leaves them to recovery as it leaves peeked ones. */
int lfipc_queue_peek_many(lfipc_queue *q, const void **msgs, size_t *lens,
			  size_t n, int64_t timeout_ns)
{
	qslot *s[BULK_MAX];
	uint64_t w[BULK_MAX];
	struct qdl dl = {.timeout_ns = timeout_ns};
	size_t done = 0, corrupt = 0;
	uint32_t tok = 0;

	if (!q || !msgs || !lens || n == 0 || n > INT32_MAX)
		return -EINVAL;
	/* corrupt messages count towards n, as in get_many */
	while (done + corrupt < n) {
		size_t left = n - done - corrupt;
		int m = left > BULK_MAX ? BULK_MAX : (int)left;
		int k = lfipc__q_get_batch(q, s, w, m, done == 0 && !corrupt,
					   &tok, &dl);

		if (k < 0) {
			if (done)
				break;
			return corrupt ? -EPROTO : k;
		}
		for (int j = 0; j < k; j++) {
			/* once: checked, then used */
			uint64_t l = lfipc__shm_ld64(&s[j]->len);

			if (l > q->msg_size) {
				lfipc__q_release(q, s[j], w[j], tok, false);
				corrupt++;
				continue;
			}
			msgs[done] = s[j]->data;
			lens[done++] = l;
		}
		if (k < m)
			break;
	}
	if (done == 0)
		return -EPROTO; /* only corrupt messages were claimed */
	return (int)done;
}

/* Orphans only: each is taken by a rescue (lfipc__q_rescue(), under the
 * queue lock, tried once and never waited for), which claims nothing but
 * an ORPHAN slot, so no message that was never a dead consumer's comes
 * back from here; no head is looked at (the rescue touches deq_pos only
 * to put the orphan it took behind it), and neither the wait layer nor
 * the get fd is involved. Each slot stays READING by the
 * caller, as after a peek: a crash after the call, or inside it, leaves it
 * to recovery, which orphans it again. A stored length is read once,
 * checked and used as in peek_many. */
int lfipc_queue_peek_orphans(lfipc_queue *q, const void **msgs, size_t *lens,
			     size_t n)
{
	struct qdl dl = {.timeout_ns = LFIPC_NOWAIT};
	size_t done = 0, corrupt = 0;
	uint32_t tok;
	int rc;

	if (!q || !msgs || !lens || n == 0 || n > INT32_MAX)
		return -EINVAL;
	if ((rc = lfipc__q_self_get(q, &tok)))
		return rc;
	/* a JoinableQueue consumer adopts its task entry before it claims
	 * (lfipc__q_tasks_adopt()): a failure claims nothing */
	if (q->joinable && (rc = q_tasks_adopt(q, tok, &dl)))
		return rc;
	while (done + corrupt < n) {
		qslot *s;
		uint64_t w, l;

		/* Q5 (try_claim_get()): relaxed, a hint that spares the
		 * lock's line when there is no orphan; lfipc__q_rescue()
		 * re-reads the count under the lock. */
		if (!atomic_load_explicit(&q->h->orphans,
					  memory_order_relaxed) ||
		    !lfipc__q_rescue(q, tok, &s, &w, NULL))
			break; /* none, or the lock busy: -EAGAIN below */
		l = lfipc__shm_ld64(&s->len); /* once: checked, then used */
		if (l > q->msg_size) {
			lfipc__q_release(q, s, w, tok, false);
			corrupt++;
			continue;
		}
		msgs[done] = s->data;
		lens[done++] = l;
	}
	if (done)
		return (int)done;
	return corrupt ? -EPROTO : -EAGAIN;
}

/* The slot *s of a message msg of q peeked by this process (token *tok),
 * and its word *w, read once and checked: READING(p, tok). -EINVAL msg is
 * not a message of q (or q is NULL); -EPROTO the word is anything else
 * (as in commit). Always inline: release is a peek's fast path, and gcc
 * left it out of line (a call and the out-values through memory). */
static inline __attribute__((always_inline)) int
peeked_slot(lfipc_queue *q, const void *msg, qslot **s, uint32_t *tok,
	    uint64_t *w)
{
	if (!q)
		return -EINVAL;
	*s = slot_of(q, msg);
	if (!*s || lfipc__self(q->r, tok))
		return -EINVAL;
	*w = atomic_load(&(*s)->word);
	return wclaim(*w) == (*tok | CL_R) ? 0 : -EPROTO;
}

/* The slot word's seq, read once, checked as release checks it (READING
 * by our token) and taken from the local: READING(p, T) holds seq p + 1,
 * which the repair of a dead reader (ORPHAN(p)) and the rescue of the
 * orphan (READING(p, T') again) keep (queue_recover.c), so an orphan's
 * tag is that of the lap its dead consumer peeked it in. Off every hot
 * path: one load of a line the caller's own claim wrote. */
int lfipc_queue_peeked_seq(lfipc_queue *q, const void *msg, uint32_t *seq)
{
	qslot *s;
	uint32_t tok;
	uint64_t w;
	int rc;

	if (!seq)
		return -EINVAL;
	if ((rc = peeked_slot(q, msg, &s, &tok, &w)))
		return rc;
	/* and its seq a lap of this slot (position seq - 1 is in it): a
	 * peer that rewrote the seq and kept our claim gets -EPROTO, as one
	 * that rewrote the claim (a later lap it may write is not telling) */
	if (slot_at(q, (uint32_t)(wseq(w) - 1u)) != s)
		return -EPROTO;
	*seq = wseq(w);
	return 0;
}

int lfipc_queue_release(lfipc_queue *q, const void *msg)
{
	qslot *s;
	uint32_t tok;
	uint64_t w;
	int rc;

	if ((rc = peeked_slot(q, msg, &s, &tok, &w)))
		return rc;
	/* Q6 (as release_slot()), but a seq_cst CAS from the word checked,
	 * not a store: another thread of this process (the same token)
	 * releasing the same message at the same time then loses with
	 * -EPROTO, instead of storing a stale FREE over the claim of a
	 * producer that took the slot after the first release. A
	 * JoinableQueue counts the message through the entry's record as
	 * it frees the slot (lfipc__q_count_free1(); a count whose CAS
	 * failed is taken back). */
	if (q->joinable) {
		if (!lfipc__q_count_free1(q, tok, s, w, QF_CAS, NULL))
			return -EPROTO;
	} else if (!q_free_slot(q, s, w, QF_CAS)) {
		return -EPROTO;
	}
	ev_wake(q, &q->h->not_full);
	return 0;
}

/* release_many() on a JoinableQueue: in chunks of up to 64 messages,
 * the words loaded and checked first (READING by tok; the chunk ends at
 * the first that is not), then counted through the entry's record as the
 * slots are freed by release CASes (lfipc__q_count_free(), QF_CAS_REL:
 * runs of consecutive positions, each counted in one store). Stops where
 * a check or a CAS fails. Returns the messages released. */
static size_t release_counted(lfipc_queue *q, const void *const *msgs,
			      qslot *const *first, size_t n, uint32_t tok)
{
	qslot *s[BULK_MAX];
	uint64_t w[BULK_MAX];
	size_t k = 0;

	while (k < n) {
		int m = 0, f;

		while (m < (int)BULK_MAX && k + (size_t)m < n) {
			size_t i = k + (size_t)m;

			s[m] = i < BULK_MAX ? first[i] : slot_of(q, msgs[i]);
			w[m] = atomic_load(&s[m]->word);
			if (wclaim(w[m]) != (tok | CL_R))
				break;
			m++;
		}
		f = m ? lfipc__q_count_free(q, tok, s, w, m, QF_CAS_REL, NULL)
		      : 0;
		k += (size_t)f;
		if (f < (int)BULK_MAX)
			break;
	}
	return k;
}

/* release_many() on a plain queue: each slot released by a release CAS
 * from the word checked, up to the first that is not READING by tok or
 * whose CAS fails. Returns the messages released. */
static size_t release_plain(lfipc_queue *q, const void *const *msgs,
			    qslot *const *first, size_t n, uint32_t tok)
{
	size_t k;

	for (k = 0; k < n; k++) {
		qslot *s = k < BULK_MAX ? first[k] : slot_of(q, msgs[k]);
		uint64_t w = atomic_load(&s->word);

		if (wclaim(w) != (tok | CL_R))
			break;
		/* Q11 (as get_many's batch, queue_bulk.c; a single
		 * release's Q6 is a seq_cst CAS): release CAS from the word
		 * checked; pairs with the producer's claiming CAS or load
		 * (acquire: the caller's reads of the payload are done
		 * before it writes a new one). Failure (relaxed: nothing is
		 * read from it) means another thread of this process
		 * released the slot first: stop, as for any slot not ours.
		 * The seq_cst fence of the caller orders the run's CASes
		 * before the one look at not_full. */
		if (!q_free_slot(q, s, w, QF_CAS_REL))
			break;
	}
	return k;
}

/* Each slot is released by its own CAS, as lfipc_queue_release() does it
 * but with release order and one fence per run (Q11, as get_many): a
 * crash after some of them leaves the others READING by a dead
 * token, which recovery orphans and delivers again, the state that as
 * many single releases leave. What a run shares is what get_many shares:
 * one look at not_full (and at most one wake) and one JoinableQueue got
 * increment. Each word is checked just before its CAS, from the word
 * checked: a pointer given twice stops the run at its second occurrence
 * (its slot is free by then), and of two threads of this process
 * releasing the same slot at once only one does; neither frees a slot a
 * producer may have claimed since. What a check cannot see: a pointer
 * given twice whose slot another thread of this process peeked again
 * between the two occurrences (the token is the process's): that
 * thread's message is released (include/lfipc/queue.h). */
int lfipc_queue_release_many(lfipc_queue *q, const void *const *msgs, size_t n)
{
	qslot *first[BULK_MAX]; /* the slots of msgs[0 .. BULK_MAX-1] */
	uint32_t tok;
	size_t k;

	if (!q || !msgs || n == 0 || n > INT32_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		qslot *s = slot_of(q, msgs[i]);

		if (!s)
			return -EINVAL;
		if (i < BULK_MAX)
			first[i] = s;
	}
	if (lfipc__self(q->r, &tok))
		return -EINVAL;
	k = q->joinable ? release_counted(q, msgs, first, n, tok)
			: release_plain(q, msgs, first, n, tok);
	if (k == 0)
		return -EPROTO;
	/* Q11: one full fence for the run instead of a seq_cst CAS per
	 * slot (K1 before K2): a producer that announced itself on not_full
	 * (seq_cst) before this fence in the total order is seen by
	 * ev_wake() below; one after it sees every slot released. */
	atomic_thread_fence(memory_order_seq_cst);
	ev_wake(q, &q->h->not_full);
	return (int)k;
}
