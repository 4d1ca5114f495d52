/* SPDX-License-Identifier: MIT */
/*
 * pipe_io.c - the messages of a Pipe: framing, streaming, waiting,
 * readiness (recv, send, poll, fds, wait-for-any). The block layout, the
 * owner words and the handle are in internal/pipe.h; creation, attachment,
 * closing and recovery of the ends in pipe.c.
 *
 * Each direction is a single-producer single-consumer byte ring. Positions
 * are 64-bit byte counters that only grow (they never wrap in practice; all
 * comparisons are differences, so wrap-safe anyway): the reader's head,
 * the writer's tail, tail - head <= cap always. A message is a frame that
 * starts at a position that is a multiple of 8: an 8-byte header (bits
 * 0..47 the length, bits 48..63 FRAME_TAG), the bytes, padding to a
 * multiple of 8. A frame of at most cap bytes is written whole and
 * published with one store of tail; a larger frame streams: the header and
 * the first bytes, then more as the reader makes room, tail published after
 * each chunk. A reader waits for the whole of a small frame (it is there as
 * soon as its header is), and refuses a too-small buffer having consumed
 * nothing, because the header arrives first. A streaming call whose
 * timeout passes gives the message up: the writer records where it stopped
 * in its cut word (the reader drops the frame there), the reader records
 * the frame's end in its skip word (its next call drops the rest); see
 * doc/pipe.md.
 *
 * Waiting goes through the wait layer (internal/wait.h): rd_wq, where the
 * reader of a direction waits, lives in the writer's block, which the
 * writer touches on each publication; wr_wq, where the writer waits, in
 * the reader's block. The readiness callbacks (tx_ready, rx_ready) load
 * the other side's index with seq_cst (W3); the other side stores its
 * index with seq_cst (K1) and then calls lfipc__wake (K2), so no wake-up
 * is lost (the argument is in wait.h). Closing an end sets OWN_CLOSED
 * (seq_cst) and then wakes every wait queue of the pipe. The peer's token
 * is the waiter's partner: its death word ends the sleep at once where
 * the death is pushed (else the fallback slices find it), and the check
 * the wait layer then asks for marks the end closed.
 *
 * Everything read from shared memory (positions, headers, owner words) is
 * read once into a local, validated, and only the local is used; all ring
 * accesses are masked, so a corrupt or misused pipe yields -EPROTO, never
 * an access outside the block.
 *
 * Resynchronisation. Several senders (or receivers) on one end are a
 * misuse that leaves the positions or frames inconsistent: a stale tail
 * published after a newer one puts tail behind head, two frames written at
 * the same place leave a header that does not match what follows. The
 * receiver owns the repair, so that two parties never repair at once: when
 * it finds tail - head outside 0..cap, a position off a frame boundary, a
 * header with a bad tag, or a small frame that is not all there, it drops
 * whatever the ring holds (head := tail rounded up to a frame boundary,
 * waking the writer) and returns -EPROTO once; the pipe works again from
 * the next message. A writer that finds the positions inconsistent does
 * not touch head: it wakes the receiver and waits (within its timeout) for
 * the repair, returning -EPROTO if its timeout passes first; a misaligned
 * tail (only a corrupt one can be) is rounded up by the writer, which owns
 * it. So once the misuse stops, each side gets at most one -EPROTO.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <lfipc/pipe.h>

#include "internal/pipe.h"
#include "internal/poll.h"
#include "internal/proc.h"
#include "internal/shm.h"
#include "internal/wait.h"

static uint64_t round8(uint64_t v)
{
	return (v + 7) & ~UINT64_C(7);
}

static void ring_put(uint8_t *ring, uint64_t mask, uint64_t pos,
		     const void *src, uint64_t n)
{
	uint64_t o = pos & mask, first = mask + 1 - o;

	if (n == 0)
		return; /* src may be NULL */
	if (first > n)
		first = n;
	memcpy(ring + o, src, first);
	if (n > first)
		memcpy(ring, (const uint8_t *)src + first, n - first);
}

static void ring_get(const uint8_t *ring, uint64_t mask, uint64_t pos,
		     void *dst, uint64_t n)
{
	uint64_t o = pos & mask, first = mask + 1 - o;

	if (n == 0)
		return; /* dst may be NULL */
	if (first > n)
		first = n;
	memcpy(dst, ring + o, first);
	if (n > first)
		memcpy((uint8_t *)dst + first, ring, n - first);
}

/* After a seq_cst state change (K1: an index, cut, an owner word): wake
 * whoever waits or polls on wq (no system call when nobody does). */
static void wake_wq(lfipc_conn *c, struct lfipc_wq *wq)
{
	lfipc__wake(c->r, wq, NULL, INT32_MAX);
}

/*
 * Is the other end gone (closed, or its holder dead)? The liveness check
 * costs a system call, so it is only made when live is true (before a
 * sleep). A dead holder's end is marked closed, once, for everybody.
 */
static bool peer_gone(lfipc_conn *c, bool live)
{
	uint32_t v = atomic_load(c->peer);

	/* A failed CAS stores the word's new value in v: judge it anew. It
	 * was taken for "gone either way", but a fork child of the dead
	 * holder may have taken the end over (own()): then the peer lives,
	 * and a reader told -EPIPE would read that child's data next. A
	 * peer that rewrites the word without end gets "not gone" after a
	 * few rounds; the next call looks again. */
	for (int i = 0; i < 8; i++) {
		uint32_t t = OWN_TOKEN(v);

		if (v & OWN_CLOSED)
			return true;
		if (!live || t == 0 || lfipc__token_alive(c->r, t))
			return false;
		lfipc__test_point(LFIPC_TP_PEER_JUDGED, c);
		if (atomic_compare_exchange_strong(c->peer, &v,
						   v | OWN_CLOSED))
			return true;
	}
	return false;
}

/*
 * peer_gone() for a send that finds room: the end closed, or its holder's
 * death hinted by the region's memory (lfipc__death_hinted(): its slot's
 * generation moved on, or the kernel's mark, with the robust-list push)
 * and then confirmed by peer_gone(c, true). No system call while the
 * peer lives, a few loads of lines that stay shared, so that a message
 * sent after the receiver's death is refused at once rather than taken
 * into a ring nobody reads. Without the push (the fallback) the death is
 * found when the ring is full, as before (tx_ready()).
 */
static bool peer_gone_send(lfipc_conn *c)
{
	uint32_t v = atomic_load(c->peer), t = OWN_TOKEN(v);

	if (v & OWN_CLOSED)
		return true;
	if (t == 0)
		return false;
	if (t != c->peer_hint.tok &&
	    !lfipc__proc_death_words(&c->r->proc, t, &c->peer_hint))
		return peer_gone(c, true); /* a token no slot has */
	return lfipc__death_hinted(&c->peer_hint) && peer_gone(c, true);
}

/*
 * Make sure this process holds c's end, claiming it if needed: the end is
 * held by nobody, provisionally by us, or by the token this handle was
 * made under (our parent, when we are a fork child using an inherited
 * handle). Return: 0; -EBUSY another live process holds it; -EPIPE it was
 * closed, or its holder died; -EUSERS and other errors of
 * lfipc__self_until (a fork child's registration waits until dl at most).
 */
static int own(lfipc_conn *c, lfipc_deadline dl)
{
	struct lfipc_cas_bound b = LFIPC_CAS_BOUND_INIT;
	uint32_t self, v, t;
	int rc = lfipc__self_until(c->r, &self, dl);

	if (rc < 0)
		return rc;
	/* O1: relaxed: only our own identity is compared; the word changes
	 * only when the end changes hands (claim, close, a dead holder), and
	 * a stale view merely sends us to the CAS below. */
	v = atomic_load_explicit(c->mine, memory_order_relaxed);
	if (c->claimed && c->tok == self && v == (self | OWN_CLAIMED))
		return 0;
	for (;;) {
		if (v & OWN_CLOSED)
			return -EPIPE;
		t = OWN_TOKEN(v);
		if (t != 0 && t != self && t != c->tok)
			return lfipc__token_alive(c->r, t) ? -EBUSY : -EPIPE;
		if (atomic_compare_exchange_strong(c->mine, &v,
						   self | OWN_CLAIMED))
			break;
		/* A peer that rewrites the word without end: the call's
		 * deadline (-ETIMEDOUT), else about a second (-EPROTO), the
		 * CAS bound of internal/wait.h. */
		rc = lfipc__cas_retry(&b, dl);
		if (rc < 0)
			return rc;
	}
	c->tok = self;
	c->claimed = true;
	return 0;
}

/* The peer's token, for the wait layer to watch its death word. */
static uint32_t peer_token(lfipc_conn *c)
{
	/* C2: relaxed: a hint; peer_gone() decides (seq_cst). */
	return OWN_TOKEN(atomic_load_explicit(c->peer, memory_order_relaxed));
}

/*
 * Keep the side's public fd watching the current peer's process (called
 * after the fd was armed, so a peer that took the end over since is
 * watched): replace the pidfd when the peer's token changed. The order
 * matters (pidfd_open, then the token confirmed alive): a pid reused by
 * another process after the peer died and was reaped is then never
 * watched in its place. A peer found dead makes the fd readable at once
 * (its doorbell rung here when peer_gone() finds the death, or by
 * lfipc__pipe_recover's wake-up; peer_gone() itself wakes nobody).
 */
static void watch_peer(lfipc_conn *c, int side)
{
	uint32_t t;
	int fd;

	pthread_mutex_lock(&c->poller_mu);
	t = peer_token(c);
	if (c->epfd[side] < 0 || t == c->watched[side])
		goto out;
	if (c->pidfd[side] >= 0) {
		epoll_ctl(c->epfd[side], EPOLL_CTL_DEL, c->pidfd[side], NULL);
		close(c->pidfd[side]);
		c->pidfd[side] = -1;
	}
	c->watched[side] = t;
	if (t == 0)
		goto out;
	fd = (int)syscall(SYS_pidfd_open, lfipc__token_pid(c->r, t), 0);
	if (fd >= 0) {
		struct epoll_event ev = {.events = EPOLLIN};

		if (!lfipc__token_alive(c->r, t) ||
		    epoll_ctl(c->epfd[side], EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			fd = -1;
		}
		c->pidfd[side] = fd;
	}
	/* No pidfd (another pid namespace, an old kernel, a dead peer):
	 * the peer's close still rings, its death is found by the next
	 * operation; a dead peer is marked closed by peer_gone(). */
	if (fd < 0 && peer_gone(c, true))
		lfipc__wake(c->r, side == LFIPC_FD_GET ? &c->rx->rd_wq
						       : &c->tx->wr_wq,
			    NULL, INT32_MAX);
out:
	pthread_mutex_unlock(&c->poller_mu);
}

/* A waiter of this handle: what its readiness callback needs. */
struct pwait {
	lfipc_conn *c;
	uint64_t pos, need;
	bool flag;   /* tx: streaming (in a frame); rx: inside a frame */
	bool bad;    /* tx: the reader's head made no sense */
	uint64_t *out;
};

/*
 * Spinning before a sleep pays only when the other side answers within
 * the spin (LFIPC_SPIN_NS). A peer that takes longer (a Python program
 * between two calls, a peer without a CPU of its own on a loaded machine)
 * makes every spin a loss: its CPU time is taken from the peer that should
 * answer, and the waiter sleeps anyway. So each side of a handle keeps a
 * hint (lfipc_conn.spin): after SPIN_MISSES waits in a row that lasted
 * longer than the spin, it waits without spinning (LFIPC_WAIT_NOSPIN),
 * except every SPIN_PROBE-th wait, which spins to find out whether the
 * peer has become quick again. A wait that ends after SPIN_QUICK_NS but
 * within the spin was caught by it and clears the misses; a shorter one
 * (ready at the first look) says nothing.
 */
#define SPIN_MISSES 4u
#define SPIN_PROBE 16u
#define SPIN_QUICK_NS 250

static unsigned spin_flags(lfipc_conn *c, int side)
{
	/* S1: relaxed, a heuristic (see lfipc_conn.spin). */
	uint32_t h = atomic_load_explicit(&c->spin[side], memory_order_relaxed);

	return (h & 0xff) >= SPIN_MISSES && (h >> 8) % SPIN_PROBE != 0
		   ? LFIPC_WAIT_NOSPIN
		   : 0;
}

static void spin_learn(lfipc_conn *c, int side, int64_t waited)
{
	/* S1: relaxed, a heuristic (see lfipc_conn.spin). */
	uint32_t h = atomic_load_explicit(&c->spin[side], memory_order_relaxed);
	uint32_t m = h & 0xff;

	if (waited > LFIPC_SPIN_NS)
		m = m < SPIN_MISSES ? m + 1 : m;
	else if (waited > SPIN_QUICK_NS)
		m = 0;
	atomic_store_explicit(&c->spin[side], (h & ~UINT32_C(0xff)) + 0x100 + m,
			      memory_order_relaxed);
}

/* Wait through the wait layer for ready(w), arming the side's fd poller
 * when the wait reports "would block". Return as lfipc__wait_until, with
 * -EAGAIN (LFIPC_NOWAIT) reported as -ETIMEDOUT: the callers map it back
 * with expired_rc(), which knows the caller's timeout. */
static int pwait_run(struct pwait *w, int side, struct lfipc_wq *wq,
		     lfipc_ready_fn ready, lfipc_deadline dl)
{
	/* C1: acquire, pairs with the release in lfipc__poller_fd_once. */
	struct lfipc_poller *p =
	    atomic_load_explicit(&w->c->poller[side], memory_order_acquire);
	bool blocking = dl != LFIPC_DL_NOW && dl != LFIPC_DL_PAST;
	int64_t t0 = blocking ? lfipc__now_ns() : 0;
	int rc = lfipc__wait_poll(w->c->r, wq, ready, w, dl,
				  blocking ? spin_flags(w->c, side) : 0, p);

	if (blocking && rc == 0)
		spin_learn(w->c, side, lfipc__now_ns() - t0);
	if (p && (rc == -EAGAIN || rc == -ETIMEDOUT))
		watch_peer(w->c, side);
	return rc == -EAGAIN ? -ETIMEDOUT : rc;
}

static int expired_rc(int64_t timeout_ns)
{
	return timeout_ns == 0 ? -EAGAIN : -ETIMEDOUT;
}

/* ---- writer side --------------------------------------------------------- */

/* Readiness callback of a writer (internal/wait.h). */
static int tx_ready(void *ctx, struct lfipc_sleep *sl, bool check)
{
	struct pwait *w = ctx;
	lfipc_conn *c = w->c;
	struct pipe_dir *d = c->tx;
	/* seq_cst (W3): pairs with the reader's seq_cst store of head in
	 * consume(): the bytes before head are no longer read. */
	uint64_t h = atomic_load(&d->head), used = w->pos - h;

	if (used > c->cap || (h & 7)) {
		if (w->flag)
			return -EPROTO;
		if (!w->bad) /* let a sleeping reader repair it */
			wake_wq(c, &d->rd_wq);
		w->bad = true;
	} else if (c->cap - used >= w->need) {
		*w->out = c->cap - used;
		return 1;
	}
	if (peer_gone(c, check))
		return -EPIPE;
	sl->partner[0] = peer_token(c);
	return 0;
}

/*
 * Wait until the ring has need bytes free for a writer at position pos.
 * Return: 0 and *free; -EPIPE the reader's end is gone; -ETIMEDOUT the
 * deadline passed; -EPROTO the reader's head makes no sense and did not
 * come right by the deadline (the reader repairs it: see the top comment;
 * a writer in the middle of a frame, streaming, does not wait for that).
 */
static int tx_wait(lfipc_conn *c, uint64_t pos, uint64_t need,
		   lfipc_deadline dl, bool streaming, uint64_t *free)
{
	struct pwait w = {c, pos, need, streaming, false, free};
	int rc = pwait_run(&w, LFIPC_FD_PUT, &c->tx->wr_wq, tx_ready, dl);

	return rc == -ETIMEDOUT && w.bad ? -EPROTO : rc;
}

/* Publish the writer's new tail and wake a sleeping reader. */
static void publish(lfipc_conn *c, uint64_t tail)
{
	atomic_store(&c->tx->tail, tail); /* K1: seq_cst */
	wake_wq(c, &c->tx->rd_wq);
}

int lfipc_conn_send(lfipc_conn *c, const void *msg, size_t len,
		    int64_t timeout_ns)
{
	uint64_t frame, pos, start, free, hdr, done, n, cut = 0, need;
	lfipc_deadline dl;
	int rc;

	if (!c || (!msg && len > 0))
		return -EINVAL;
	if ((uint64_t)len > LFIPC_PIPE_MSG_MAX)
		return -EMSGSIZE;
	dl = lfipc__deadline(timeout_ns);
	rc = own(c, dl);
	if (rc < 0)
		return rc;
	if (!c->tx)
		return -EBADF;
	if (peer_gone_send(c))
		return -EPIPE;
	frame = round8(FRAME_HDR + (uint64_t)len);
	/* T1: relaxed: the tail is stored only by this end's writer, which
	 * is us (several writers on one end are a misuse whose worst
	 * outcome is garbage within the ring, which the reader drops). Only
	 * a corrupt tail can be off a frame boundary: we own it, so round it
	 * up (the reader then drops what lies before). */
	start = round8(atomic_load_explicit(&c->tx->tail, memory_order_relaxed));
	need = frame;
	if (frame > c->cap) {
		/* It must stream, so it would have to wait. */
		if (timeout_ns == LFIPC_NOWAIT)
			return -EAGAIN;
		/* T2: relaxed: cut is ours too. A frame we abandoned must
		 * be behind the reader before we may abandon another (the
		 * reader knows one cut at a time): wait for an empty ring.
		 * cut stays where it is (it is never reset to 0): a reader
		 * that has consumed up to it but not yet looked at it
		 * (cut_at()) must still find it there, and a cut behind the
		 * reader is ignored by it. So once a frame has been
		 * abandoned, every later streaming send waits for an empty
		 * ring first. */
		cut = atomic_load_explicit(&c->tx->cut, memory_order_relaxed);
		need = cut ? c->cap : FRAME_HDR;
	}
	rc = tx_wait(c, start, need, dl, false, &free);
	if (rc == -ETIMEDOUT)
		return expired_rc(timeout_ns);
	if (rc < 0)
		return rc;
	hdr = (uint64_t)len | (FRAME_TAG << 48);
	ring_put(c->tx_ring, c->mask, start, &hdr, FRAME_HDR);
	if (frame <= c->cap) {
		ring_put(c->tx_ring, c->mask, start + FRAME_HDR, msg, len);
		publish(c, start + frame);
		return 0;
	}
	/* Larger than the ring: stream it, in chunks of the free room (a
	 * multiple of 8, so every published tail is a frame boundary or a
	 * multiple of 8 inside one). */
	done = FRAME_HDR;
	pos = start + FRAME_HDR;
	free -= FRAME_HDR;
	for (;;) {
		n = frame - done < free ? frame - done : free;
		if (done < FRAME_HDR + len) {
			uint64_t data = FRAME_HDR + len - done;

			ring_put(c->tx_ring, c->mask, pos,
				 (const uint8_t *)msg + (done - FRAME_HDR),
				 n < data ? n : data);
		}
		done += n;
		pos += n;
		publish(c, pos);
		if (done == frame)
			return 0;
		rc = tx_wait(c, pos, 1, dl, true, &free);
		if (rc == -ETIMEDOUT || rc == -EINTR) {
			/* Our timeout passed (or a signal interrupted us,
			 * lfipc_thread_set_interruptible) in the middle:
			 * abandon the message here. The reader drops what
			 * it got of it when it reaches pos, and our next
			 * frame starts at pos. seq_cst store (K1), then wake (K2) against
			 * rx_ready()'s load of cut (W3). */
			atomic_store(&c->tx->cut, pos);
			wake_wq(c, &c->tx->rd_wq);
			return rc == -EINTR ? rc : expired_rc(timeout_ns);
		}
		if (rc < 0)
			return rc;
	}
}

/* ---- reader side --------------------------------------------------------- */

/* Release the bytes before head to the writer and wake it if it sleeps. */
static void consume(lfipc_conn *c, uint64_t head)
{
	atomic_store(&c->rx->head, head); /* K1: seq_cst */
	wake_wq(c, &c->rx->wr_wq);
}

/* The receiver's repair of an inconsistent direction (see the top
 * comment): drop everything up to the writer's tail, rounded up to a frame
 * boundary. Return: -EPROTO, for the caller to pass on. */
static int rx_resync(lfipc_conn *c)
{
	/* seq_cst, as every load of tail (pairs with publish()). */
	consume(c, round8(atomic_load(&c->rx->tail)));
	return -EPROTO;
}

/* Inside a frame at pos: did the writer abandon the frame here? (seq_cst:
 * pairs with the writer's store of cut, made before it publishes the next
 * frame, which starts at pos.) */
static bool cut_at(lfipc_conn *c, uint64_t pos, bool inside)
{
	return inside && atomic_load(&c->rx->cut) == pos;
}

/* The a bytes readable at pos, but not past a cut ahead of pos: the
 * bytes after a cut are the next frame, not the rest of the abandoned
 * one. A reader whose last look at tail came before the writer's last
 * chunk is still behind the cut when the writer abandons the frame and
 * publishes its next (small) frame there; without this it copied that
 * frame into the abandoned one and returned it as good. Read after tail
 * (seq_cst both: the writer stores cut before it publishes what follows
 * it, so a tail past a cut comes with that cut). cut is read once; one
 * behind pos (or at it, handled by cut_at()) is a cut already passed. A
 * forged cut can only make the reader stop early (then -EPROTO). */
static uint64_t rx_upto_cut(lfipc_conn *c, uint64_t pos, uint64_t a)
{
	uint64_t k = atomic_load(&c->rx->cut) - pos;

	return k > 0 && k < a ? k : a;
}

/* Readiness callback of a reader (internal/wait.h). */
static int rx_ready(void *ctx, struct lfipc_sleep *sl, bool check)
{
	struct pwait *w = ctx;
	lfipc_conn *c = w->c;
	struct pipe_dir *d = c->rx;
	/* seq_cst (W3): pairs with the writer's seq_cst store of tail in
	 * publish(): the bytes before tail are written. */
	uint64_t t = atomic_load(&d->tail), a = t - w->pos;

	if (a > c->cap)
		return rx_resync(c);
	a = rx_upto_cut(c, w->pos, a);
	/* Before the bytes: what follows a cut is the next frame. */
	if (cut_at(c, w->pos, w->flag))
		return -ECANCELED;
	if (a >= w->need) {
		*w->out = a;
		return 1;
	}
	if (peer_gone(c, check)) {
		/* The writer's last tail store precedes its closing store,
		 * so this load sees everything it sent. */
		t = atomic_load(&d->tail);
		a = t - w->pos;
		if (a > c->cap)
			return rx_resync(c);
		a = rx_upto_cut(c, w->pos, a);
		if (a >= w->need) {
			*w->out = a;
			return 1;
		}
		if (a > 0)
			consume(c, t); /* an unfinished frame */
		return -EPIPE;
	}
	sl->partner[0] = peer_token(c);
	return 0;
}

/*
 * Wait until need bytes are readable at pos. inside: pos is inside a frame
 * (streaming), where the writer may abandon it. Return: 0 and *avail (the
 * readable bytes, >= need); -EPIPE the writer's end is gone and fewer than
 * need bytes are left (those are an unfinished frame: discarded);
 * -ECANCELED (inside only) the writer abandoned the frame at pos;
 * -ETIMEDOUT; -EPROTO the writer's tail makes no sense (the direction was
 * resynchronised).
 */
static int rx_wait(lfipc_conn *c, uint64_t pos, uint64_t need,
		   lfipc_deadline dl, bool inside, uint64_t *avail)
{
	struct pwait w = {c, pos, need, inside, false, avail};

	return pwait_run(&w, LFIPC_FD_GET, &c->rx->rd_wq, rx_ready, dl);
}

/* Most bytes a frame can span (a message of LFIPC_PIPE_MSG_MAX bytes). */
#define FRAME_MAX round8(FRAME_HDR + FRAME_LEN_MASK)

/*
 * Drop the rest of a frame that an earlier receive gave up in the middle
 * of (its timeout passed): the bytes up to skip, as they arrive, until
 * deadline dl, or up to where the writer abandoned it. Return: 0 and *head
 * past it; -ETIMEDOUT or -EINTR (still to do: the next call goes on);
 * -EPIPE; -EPROTO.
 */
static int rx_skip(lfipc_conn *c, uint64_t *head, lfipc_deadline dl)
{
	/* R2: relaxed: skip is ours (stored only by this end's reader). */
	uint64_t to = atomic_load_explicit(&c->rx->skip, memory_order_relaxed);
	uint64_t avail, n;
	int rc = 0;

	if (to == 0)
		return 0;
	/* Until head reaches to. Only a corrupt skip is off a frame
	 * boundary or out of reach: then it is forgotten at once. */
	while ((to & 7) == 0 && to - *head - 1 < FRAME_MAX) {
		rc = rx_wait(c, *head, 1, dl, true, &avail);
		if (rc == -ECANCELED) {
			rc = 0; /* the writer abandoned it here */
			break;
		}
		if (rc < 0)
			break;
		n = to - *head < avail ? to - *head : avail;
		*head += n;
		consume(c, *head);
	}
	if (rc == -ETIMEDOUT || rc == -EINTR)
		return rc; /* still to do: the next call goes on */
	atomic_store_explicit(&c->rx->skip, 0, memory_order_relaxed);
	/* After -EPIPE or -EPROTO the position moved: read it again. */
	*head = atomic_load_explicit(&c->rx->head, memory_order_relaxed);
	return rc;
}

/* Common start of recv and poll: claim the end, drop what an earlier call
 * gave up. Return 0 and *head; or an error. */
static int rx_begin(lfipc_conn *c, uint64_t *head, lfipc_deadline dl)
{
	int rc = own(c, dl);

	if (rc < 0)
		return rc;
	if (!c->rx)
		return -EBADF;
	/* R1: relaxed: head is stored only by this end's reader (us). */
	*head = atomic_load_explicit(&c->rx->head, memory_order_relaxed);
	if (*head & 7)
		return rx_resync(c);
	return rx_skip(c, head, dl);
}

int lfipc_conn_recv(lfipc_conn *c, void *buf, size_t buf_size, size_t *len,
		    int64_t timeout_ns)
{
	uint64_t h, avail, hdr, mlen, frame, done, n;
	lfipc_deadline dl;
	int rc;

	if (!c || !len || (!buf && buf_size > 0))
		return -EINVAL;
	dl = lfipc__deadline(timeout_ns);
	rc = rx_begin(c, &h, dl);
again:
	if (rc == 0)
		rc = rx_wait(c, h, FRAME_HDR, dl, false, &avail);
	if (rc == -ETIMEDOUT)
		return expired_rc(timeout_ns);
	if (rc < 0)
		return rc;
	/* The header is read once (a volatile load: the compiler may not
	 * fetch it again) and only this copy is checked and used. h is a
	 * multiple of 8 and the ring's size too, so it does not wrap. */
	hdr = lfipc__shm_ld64(c->rx_ring + (h & c->mask));
	if ((hdr >> 48) != FRAME_TAG)
		return rx_resync(c);
	mlen = hdr & FRAME_LEN_MASK;
	if (mlen > SIZE_MAX)
		return rx_resync(c);
	frame = round8(FRAME_HDR + mlen);
	/* A frame the ring holds whole is written whole: its header is
	 * visible only with all of it. One that is not all there was torn
	 * (two senders on one end) or forged: resynchronise, before the
	 * -EMSGSIZE below, which consumes nothing and so would stop a
	 * reader with a shorter buffer at this header for good. */
	if (frame <= c->cap && avail < frame)
		return rx_resync(c);
	if (mlen > buf_size) {
		*len = (size_t)mlen;
		return -EMSGSIZE; /* nothing consumed */
	}
	if (frame <= c->cap) {
		ring_get(c->rx_ring, c->mask, h + FRAME_HDR, buf, mlen);
		consume(c, h + frame);
		*len = (size_t)mlen;
		return 0;
	}
	/* Stream it out of the ring until done or our deadline. If the
	 * writer goes away, or abandons the message, the part copied is
	 * discarded (then end-of-file, or the next message). */
	done = 0;
	for (;;) {
		n = frame - done < avail ? frame - done : avail;
		if (done + n > FRAME_HDR && done < FRAME_HDR + mlen) {
			uint64_t from = done > FRAME_HDR ? done : FRAME_HDR;
			uint64_t to = done + n < FRAME_HDR + mlen
					  ? done + n
					  : FRAME_HDR + mlen;

			ring_get(c->rx_ring, c->mask, h + from,
				 (uint8_t *)buf + (from - FRAME_HDR),
				 to - from);
		}
		done += n;
		consume(c, h + done);
		if (done == frame)
			break;
		rc = rx_wait(c, h + done, 1, dl, true, &avail);
		if (rc == -ECANCELED) {
			h += done; /* abandoned: on to the next message */
			rc = 0;
			goto again;
		}
		if (rc == -ETIMEDOUT || rc == -EINTR) {
			/* R2: relaxed, ours. Give the message up (as at a
			 * timeout, also when a signal interrupted us): the
			 * next call drops its rest. */
			atomic_store_explicit(&c->rx->skip, h + frame,
					      memory_order_relaxed);
			return rc == -EINTR ? rc : expired_rc(timeout_ns);
		}
		if (rc < 0)
			return rc;
	}
	*len = (size_t)mlen;
	return 0;
}

int lfipc_conn_poll(lfipc_conn *c, int64_t timeout_ns)
{
	lfipc_deadline dl = lfipc__deadline(timeout_ns);
	uint64_t h, avail;
	int rc;

	if (!c)
		return -EINVAL;
	rc = rx_begin(c, &h, dl);
	if (rc == 0)
		rc = rx_wait(c, h, FRAME_HDR, dl, false, &avail);
	if (rc == 0 || rc == -EPIPE)
		return 1;
	return rc == -ETIMEDOUT ? 0 : rc;
}

/* Would a recv (a send of a small message) not block now? Nothing is
 * consumed (fds, wait-for-any). seq_cst loads (W3). */
static bool rx_now(void *ctx)
{
	lfipc_conn *c = ctx;

	return peer_gone(c, false) ||
	       atomic_load(&c->rx->tail) != atomic_load(&c->rx->head);
}

static bool tx_now(void *ctx)
{
	lfipc_conn *c = ctx;

	return peer_gone(c, false) ||
	       c->cap - (atomic_load(&c->tx->tail) -
			 atomic_load(&c->tx->head)) >= 2 * FRAME_HDR;
}

/* Non-consuming readiness callbacks for lfipc_wait_any (wait_any.c). */
static int peek_ready(lfipc_conn *c, bool (*now)(void *),
		      struct lfipc_sleep *sl, bool check)
{
	if (now(c) || (check && peer_gone(c, true)))
		return 1;
	sl->partner[0] = peer_token(c);
	return 0;
}

static int rx_peek(void *ctx, struct lfipc_sleep *sl, bool check)
{
	return peek_ready(ctx, rx_now, sl, check);
}

static int tx_peek(void *ctx, struct lfipc_sleep *sl, bool check)
{
	return peek_ready(ctx, tx_now, sl, check);
}

/* The checks of an fd or wait-for-any side: a side this end can do,
 * claimed like a recv/send (by dl). Return: 0; -EINVAL; -EBADF; own()'s
 * errors. */
static int side_own(lfipc_conn *c, int side, lfipc_deadline dl)
{
	if (side != LFIPC_FD_GET && side != LFIPC_FD_PUT)
		return -EINVAL;
	if (!(side == LFIPC_FD_GET ? c->rx : c->tx))
		return -EBADF;
	return own(c, dl);
}

int lfipc__conn_any(lfipc_conn *c, int side, lfipc_deadline dl,
		    struct lfipc_any *a, lfipc_region **r)
{
	int rc = side_own(c, side, dl);

	if (rc < 0)
		return rc;
	a->wq = side == LFIPC_FD_GET ? &c->rx->rd_wq : &c->tx->wr_wq;
	a->ready = side == LFIPC_FD_GET ? rx_peek : tx_peek;
	a->ctx = c;
	*r = c->r;
	return 0;
}

int lfipc_conn_fd(lfipc_conn *c, int side)
{
	struct epoll_event ev = {.events = EPOLLIN};
	int fd, rc;

	if (!c)
		return -EINVAL;
	rc = side_own(c, side, LFIPC_DL_NEVER);
	if (rc < 0)
		return rc;
	fd = lfipc__poller_fd_once(
	    c->r, side == LFIPC_FD_GET ? &c->rx->rd_wq : &c->tx->wr_wq,
	    &c->poller[side], &c->poller_mu, side == LFIPC_FD_GET ? rx_now
								   : tx_now,
	    c);
	if (fd < 0)
		return fd;
	pthread_mutex_lock(&c->poller_mu);
	rc = c->epfd[side];
	if (rc < 0) {
		rc = epoll_create1(EPOLL_CLOEXEC);
		if (rc < 0 || epoll_ctl(rc, EPOLL_CTL_ADD, fd, &ev) < 0) {
			int e = -errno;

			if (rc >= 0)
				close(rc);
			pthread_mutex_unlock(&c->poller_mu);
			return e;
		}
		c->epfd[side] = rc;
	}
	pthread_mutex_unlock(&c->poller_mu);
	watch_peer(c, side);
	return rc;
}

