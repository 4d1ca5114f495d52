/* SPDX-License-Identifier: MIT */
/*
 * bridge_rx.c - the receiving side of lfipc-bridge: streams and their
 * state words, runs of in-order messages put into the destination queue,
 * duplicates dropped, acknowledgements (delayed for lone messages), the
 * end of stream. The protocol and the state words are described in
 * internal.h.
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int lfipc_bridge_recv_open(lfipc_region *r, const char *queue,
			   const char *endpoint, const lfipc_bridge_opts *opts,
			   lfipc_bridge **out)
{
	lfipc_bridge *b;
	uint64_t magic;
	size_t len;
	int rc;

	if (!out)
		return -EINVAL;
	if ((rc = lfipc__bridge_open(r, queue, endpoint, opts, false, &b)))
		goto fail;
	magic = ld(b, RX_MAGIC_W); /* read once, checked, used */
	if (magic == 0) {
		st(b, RX_MAGIC_W, RX_MAGIC);
	} else if (magic != RX_MAGIC) {
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
	if ((rc = lfipc__bridge_sock_open(b, ZMQ_ROUTER, opts)) ||
	    (rc = zmq_setsockopt(b->sock, ZMQ_MAXMSGSIZE, &(int64_t){MAX_WIRE},
				 sizeof(int64_t))
		      ? zerr()
		      : 0))
		goto fail;
	if (zmq_bind(b->sock, endpoint)) {
		rc = zerr();
		goto fail;
	}
	b->xfd = -1;
	if ((rc = b->sfd = lfipc__bridge_fd(b->sock)) < 0 ||
	    (b->zap && (rc = b->xfd = lfipc__bridge_fd(b->zap)) < 0))
		goto fail;
	b->sdirty = true;
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
	b->sdirty = true; /* see internal.h: read sock before sleeping */
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
 * consumer of the destination is being woken. So is a frame the sender
 * marked DATA_LAZY (lazy: its window has room). Anything else (a batch,
 * a NACK, a FIN, another stream) goes at once. Acknowledgements are
 * cumulative: a later one replaces a delayed one of the same stream. */
static int rx_ack(lfipc_bridge *b, zmq_msg_t *id, uint64_t stream,
		  uint64_t next, unsigned flags, uint32_t n, bool lazy)
{
	int rc;

	if (b->ack_stream && b->ack_stream != stream && (rc = rx_flush(b)))
		return rc;
	if (flags || (n != 1 && !lazy)) {
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
		return rx_ack(b, id, stream, atomic_load(&s[1]), ACK_FIN, 0,
			      false);
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
	if (rc == 0 && run.n) {
		rc = rx_put(b, id, stream, s, &run, &next);
		/* A lone message: its put woke the destination's consumer;
		 * on a loaded machine it may share this thread's CPU, and
		 * what this thread does next (reading the socket to EAGAIN,
		 * then its poll) is its latency: let it go first. */
		if (rc == 0 && cnt == 1)
			sched_yield();
	}
	if (rc && rc != -EINTR)
		return rc;
	{
		int rc2 = rx_ack(b, id, stream, next, flags, cnt,
				 (p[5] & DATA_LAZY) != 0);

		return rc ? rc : rc2;
	}
}

/* What the receiver's look in its spin saw: its fds' revents, as
 * lfipc__bridge_poll() gives them, and that call's return. */
struct rx_seen {
	short ev[3];
	int rc;
};

/* The receiver's look in its spin (lfipc__bridge_spin()): one poll(2)
 * without a wait on its socket's ZMQ_FD and the ZAP handler's, the fds its
 * sleep would watch. Nothing cheaper tells that a frame came: ZeroMQ's
 * I/O thread says so to the socket by a command in its mailbox, whose
 * eventfd ZMQ_FD is, and a zmq_msg_recv() or a ZMQ_EVENTS with
 * ZMQ_DONTWAIT that finds nothing makes the same poll of that fd (and a
 * getpid(), libzmq's check for a fork): two system calls, 2.7 us of CPU
 * each time on a 2-vCPU VM, where this one is 1.3 (doc/bridge.md,
 * Receiver). */
static bool rx_look(lfipc_bridge *b, void *arg)
{
	struct rx_seen *l = arg;

	l->rc = lfipc__bridge_poll(b->sfd, b->xfd, -1, 0, l->ev);
	return l->rc || l->ev[0] || l->ev[1];
}

/* The receiver's spin: a clock reading, stop flag and sched_yield() every
 * RX_SPIN_EVERY looks, RX_SPIN_PAUSES pauses between two looks (a look is
 * a system call of about 1.3 us: one every 2 us or so, a sched_yield()
 * every 8 or so, as the sender's spin yields). */
#define RX_SPIN_EVERY 4
#define RX_SPIN_PAUSES 16

/* The receiver's one place of waiting, from t: until its socket's fd or
 * the ZAP handler's says something, or the delayed acknowledgement is
 * due, or a slice has passed (so that a stop request is seen); not at all
 * after a send on sock (sdirty: read it first). ev: what the fds said.
 * Spins first if asked to (lfipc_bridge_set_spin()), so that a frame that
 * comes soon is read without the wake-up of a sleeping thread: not past
 * the delayed acknowledgement's due (the spin does not put it off), not
 * after the end of stream (no frame comes but a repeated FIN), and not
 * after SPIN_MISS_MAX spins in a row that saw news and read no frame
 * (until a frame comes). Each wake-up of the poll that follows (a frame,
 * the acknowledgement's due, a slice) brings it back to one spin more:
 * a quiet or stopped sender costs a spin per 100 ms slice, a lone message
 * a spin from its frame to its acknowledgement's due (1 ms at most) and
 * one after the acknowledgement (doc/bridge.md, Receiver). */
static int rx_wait(lfipc_bridge *b, int64_t t, short ev[3])
{
	int64_t due = b->ack_stream ? b->ack_due : t + SLICE_NS;
	struct rx_seen l;
	int rc;

	b->spun = false;
	if (!b->sdirty && b->spin_ns > 0 && b->spin_miss < SPIN_MISS_MAX &&
	    !b->fin_done) {
		rc = lfipc__bridge_spin(
		    b, b->ack_stream ? b->ack_due : INT64_MAX, rx_look, &l,
		    RX_SPIN_EVERY, RX_SPIN_PAUSES);
		if (rc < 0)
			return rc; /* stopped */
		if (rc) {
			memcpy(ev, l.ev, sizeof(l.ev));
			b->spun = true;
			return l.rc;
		}
		/* the poll's timeout from now: the spin took its time */
		t = now_ns();
		if (!b->ack_stream)
			due = t + SLICE_NS;
	}
	return lfipc__bridge_poll(b->sfd, b->xfd, -1, b->sdirty ? 0 : due - t,
				  ev);
}

int lfipc__bridge_rx_run(lfipc_bridge *b)
{
	zmq_msg_t id, body;
	int rc = 0;

	zmq_msg_init(&id);
	zmq_msg_init(&body);
	zmq_msg_init(&b->ack_id);
	/* After an end of stream, stay (up to 2 s) to answer the sender's
	 * repeated FIN if the acknowledgement was lost with a connection. */
	while (!b->fin_done || now_ns() < b->fin_until) {
		int64_t t = now_ns();
		bool got = false;
		short ev[3];

		if (atomic_load(&b->stop)) {
			rc = -EINTR;
			break;
		}
		if (b->ack_stream && t >= b->ack_due && (rc = rx_flush(b)))
			break;
		/* After a send on sock (an acknowledgement), its fd may not
		 * tell what came meanwhile: read first, sleep after. */
		if ((rc = rx_wait(b, t, ev)))
			break;
		while (ev[1] && (rc = lfipc__bridge_zap(b)) == 1)
			;
		if (rc < 0)
			break;
		/* Every frame waiting, until EAGAIN: that also takes in the
		 * commands ZeroMQ's I/O thread left, so the fd tells the
		 * next arrival. */
		while (ev[0] || b->sdirty) {
			if (zmq_msg_recv(&id, b->sock, ZMQ_DONTWAIT) < 0) {
				if (zmq_errno() != EAGAIN)
					rc = zerr();
				else
					b->sdirty = false;
				break;
			}
			if (!zmq_msg_more(&id) ||
			    zmq_msg_recv(&body, b->sock, 0) < 0)
				continue;
			got = true;
			b->spin_miss = 0;
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
		if (b->spun && !got && b->spin_miss < SPIN_MISS_MAX)
			b->spin_miss++; /* news of ZeroMQ's, no frame */
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
