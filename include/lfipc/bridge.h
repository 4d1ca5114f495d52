/* SPDX-License-Identifier: MIT */
/*
 * lfipc/bridge.h - a Queue across hosts over ZeroMQ (liblfipc-bridge).
 *
 * A sender takes the messages of a local Queue and sends them, in batches,
 * to a receiver on another host, which puts them into a Queue there and
 * acknowledges them. Delivery is at-least-once: a message leaves the source
 * queue (lfipc_queue_release() of its peeked slot) only after the receiver
 * has put it into the destination queue and said so. Either side may be
 * SIGKILLed at any instruction and restarted: no message that the source
 * queue accepted is lost. Every message carries a per-stream sequence
 * number, and both sides keep their protocol state in a Value/Array in
 * their own region (the names "<queue>.btx" and "<queue>.brx"), so a
 * restarted side resumes where the dead one stopped and the receiver drops
 * re-sent copies. A duplicate can reach the destination queue only when a
 * side is killed inside one of two windows of a few instructions, or when
 * a restarted sender gives up waiting (5 s) for its predecessor's messages
 * (doc/bridge.md, Duplicates); each such event is counted
 * (lfipc_bridge_stats::dup_possible).
 *
 * Back-pressure: at most `window` messages are unacknowledged; a full
 * destination queue stops the receiver, hence the acknowledgements, hence
 * the sender, and the source queue fills up and blocks its producers.
 * The messages in flight stay in the source queue's slots (peeked), so
 * the sender copies nothing it has to keep.
 *
 * One sender per source queue and one receiver per destination queue (a
 * Lock in the state Array makes a second one fail with -EBUSY); a receiver
 * accepts up to LFIPC_BRIDGE_MAX_STREAMS senders. The sender must be the
 * only consumer of its source queue.
 *
 * This library links libzmq; it is built when configure finds it
 * (pkg-config lfipc-bridge). Its functions return 0 or a negative errno
 * value like the rest of lfipc; errors of ZeroMQ come back as their errno.
 */
#ifndef LFIPC_BRIDGE_H
#define LFIPC_BRIDGE_H

#include <lfipc/common.h>
#include <lfipc/region.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A sender or a receiver (one per process thread; not thread-safe). */
typedef struct lfipc_bridge lfipc_bridge;

/** Senders one receiver keeps state for. */
#define LFIPC_BRIDGE_MAX_STREAMS 16
/** Largest window (unacknowledged messages per sender). */
#define LFIPC_BRIDGE_MAX_WINDOW 65536
/** Longest spin of either side (lfipc_bridge_set_spin()). */
#define LFIPC_BRIDGE_MAX_SPIN_NS 10000000
/** Length of a CURVE key in Z85 text, without the terminating NUL. */
#define LFIPC_BRIDGE_KEY_LEN 40

/**
 * Options. Zero-initialise and set what you need; zero means the default.
 * Fields may be added at the end only with a new soname (the library
 * reads the whole struct): options added since are set on the handle
 * (lfipc_bridge_set_spin()).
 */
typedef struct lfipc_bridge_opts {
	/** Sender: most unacknowledged messages (at most
	 * LFIPC_BRIDGE_MAX_WINDOW; default three quarters of the source
	 * queue's capacity, at most 16384). The sender's state in the
	 * source region is sized for the window of its first start (16
	 * bytes per message); a later start with a larger window gets the
	 * first one's. */
	unsigned window;
	/** Sender: most messages in one ZeroMQ message (default 1024). */
	unsigned batch;
	/** Sender: most payload bytes in one ZeroMQ message (default 256 KiB;
	 * a single larger message is still sent, alone). */
	size_t batch_bytes;
	/** Sender: re-send what is unacknowledged after this long without
	 * news from the receiver (default 500 ms; doubles up to 8x while the
	 * receiver stays silent). */
	int64_t resend_ns;
	/** This side's CURVE secret key (Z85, 40 characters). NULL: plain
	 * TCP, which needs insecure = true. */
	const char *curve_secret;
	/** Sender with CURVE: the receiver's public key (Z85). */
	const char *curve_server;
	/** Receiver with CURVE: NULL-terminated list of the public keys (Z85)
	 * of the senders it accepts; NULL accepts any sender that knows the
	 * receiver's public key. */
	const char *const *curve_allow;
	/** Allow plain TCP (no encryption, no authentication). */
	bool insecure;
} lfipc_bridge_opts;

/**
 * Open a sender: the queue named queue in r is the source, endpoint a
 * ZeroMQ endpoint of a receiver ("tcp://host:port"). Creates (or resumes)
 * the sender's state Array "<queue>.btx" in r, takes its Lock, recovers
 * the region (messages a dead predecessor had peeked come back, and are
 * re-sent under their old sequence numbers), and connects (ZeroMQ connects
 * in the background; nothing waits for the receiver).
 *
 * Return: 0 and *out; -EINVAL NULL argument, bad option, or neither CURVE
 * keys nor insecure; -ENOENT no such queue; -EBUSY another sender runs on
 * this queue (also one this thread opened); -ENAMETOOLONG queue name too
 * long for "<queue>.btx"; -EPROTO the state is not a bridge's or makes no
 * sense (another kind of object under its name, an Array of another
 * element type or length or without its Lock, a next sequence number
 * above 2^63); -ENOTSUP libzmq without CURVE; -ENOMEM; other negative
 * errno values from ZeroMQ (bad endpoint) or lfipc (region full; from
 * lfipc_queue_fd(), which gives the sender the source queue's pollable
 * fd: -ENOSPC the region's poll table is full, -EMFILE).
 * Blocks only after a predecessor's death, while the source queue still
 * holds its peeked messages as claims not yet turned into orphans (their
 * rescue needs the queue's lock): 5 s at most, after which each message
 * still missing counts in tx_dup_possible (doc/bridge.md). Otherwise it
 * does not block (beyond lfipc's short internal locks).
 */
LFIPC_API int lfipc_bridge_send_open(lfipc_region *r, const char *queue,
				     const char *endpoint,
				     const lfipc_bridge_opts *opts,
				     lfipc_bridge **out);

/**
 * Open a receiver: binds endpoint (such as "tcp://0.0.0.0:5555"; the port
 * "*" picks a free one: see lfipc_bridge_endpoint()) and puts what arrives
 * into the existing queue named queue in r. Creates (or resumes) the state
 * Array "<queue>.brx" in r and takes its Lock.
 *
 * Return: 0 and *out; errors as lfipc_bridge_send_open() (-EBUSY: another
 * receiver runs on this queue), and -EADDRINUSE etc. from the bind.
 * Does not block.
 */
LFIPC_API int lfipc_bridge_recv_open(lfipc_region *r, const char *queue,
				     const char *endpoint,
				     const lfipc_bridge_opts *opts,
				     lfipc_bridge **out);

/**
 * Move messages until done or stopped.
 *
 * A sender is done when its source queue was shut down and every message
 * in it has been acknowledged and the receiver has acknowledged the end of
 * the stream (it shuts its destination queue down: consumers there drain
 * it, then get -EPIPE). A receiver is done when a sender's end of stream
 * has shut its destination queue down.
 *
 * Return: 0 done; -EINTR lfipc_bridge_stop() was called (what is in flight
 * stays recorded and is resumed by the next run or process); -EPROTO the
 * shared state or the source queue makes no sense; other negative errno
 * values from lfipc or ZeroMQ.
 * Blocks. Wakes at least every 100 ms to look at the stop flag.
 */
LFIPC_API int lfipc_bridge_run(lfipc_bridge *b);

/**
 * Before sleeping, keep looking for up to spin_ns for work (0, the
 * default after open: sleep at once). A sender looks at its empty source
 * queue, a receiver (since session 21) at its socket: a message that
 * comes meanwhile goes on without waking a sleeping thread, which costs
 * one-way latency (10 to 25 us per side on a 2-vCPU VM: doc/bridge.md),
 * at the price of a CPU kept busy for that long after each message or
 * batch, and as long again after the acknowledgement that follows it (a
 * lone message costs two spins: doc/bridge.md, Sender and Receiver), and
 * while idle for that long every 100 ms. A spin never runs past a timer
 * of the side (a resend, a delayed acknowledgement). Call it before
 * lfipc_bridge_run() or from the thread that runs it (a handle is not
 * thread-safe).
 *
 * Return: 0; -EINVAL b NULL, or spin_ns outside 0 ..
 * LFIPC_BRIDGE_MAX_SPIN_NS.
 */
LFIPC_API int lfipc_bridge_set_spin(lfipc_bridge *b, int64_t spin_ns);

/**
 * Ask lfipc_bridge_run() to return -EINTR soon (within about 100 ms).
 * Async-signal-safe (a SIGTERM handler may call it) and thread-safe.
 */
LFIPC_API void lfipc_bridge_stop(lfipc_bridge *b);

/**
 * The endpoint the socket is bound or connected to (for a receiver bound to
 * port "*", the port chosen), as a NUL-terminated string in buf.
 *
 * Return: 0; -EINVAL NULL argument; -ENOBUFS buf too small.
 * Does not block.
 */
LFIPC_API int lfipc_bridge_endpoint(const lfipc_bridge *b, char *buf,
				    size_t size);

/**
 * Close the sockets and the handle. Messages in flight stay peeked in the
 * source queue until this process closes the region (then they go back to
 * the queue, and the next sender re-sends them; a sender opened again in
 * this process before that cannot take them back, and counts each in
 * tx_dup_possible). NULL is a no-op.
 * Blocks up to 1 s to hand what ZeroMQ has queued to the network.
 */
LFIPC_API void lfipc_bridge_close(lfipc_bridge *b);

/** Counters of a queue's bridge sides, read from its state Arrays. */
typedef struct lfipc_bridge_stats {
	bool has_tx;		  /**< a sender ran on this queue */
	bool has_rx;		  /**< a receiver ran on this queue */
	uint64_t tx_stream;	  /**< the sender's stream id */
	uint64_t tx_next_seq;	  /**< next sequence number to give */
	uint64_t tx_inflight;	  /**< peeked, not yet acknowledged */
	uint64_t tx_sent;	  /**< messages sent (first time) */
	uint64_t tx_resent;	  /**< messages sent again */
	uint64_t tx_acked;	  /**< acknowledged and released */
	uint64_t tx_batches;	  /**< ZeroMQ messages sent */
	uint64_t tx_sessions;	  /**< sender starts on this queue */
	uint64_t tx_dup_possible; /**< see lfipc_bridge_stats::dup_possible */
	uint64_t rx_received;	  /**< messages put into the destination */
	uint64_t rx_dup_dropped;  /**< copies recognised and dropped */
	uint64_t rx_out_of_order; /**< batches refused for a gap (re-sent) */
	uint64_t rx_batches;	  /**< ZeroMQ messages received */
	uint64_t rx_sessions;	  /**< receiver starts on this queue */
	uint64_t rx_auth_denied;  /**< CURVE clients refused */
	uint64_t rx_streams;	  /**< senders known */
	uint64_t rx_dup_possible; /**< see below */
	/** Messages that may have been delivered twice: tx_dup_possible +
	 * rx_dup_possible (each is one crash inside its window). */
	uint64_t dup_possible;
} lfipc_bridge_stats;

/**
 * Read the counters of the bridge sides of the queue named queue in r.
 *
 * Return: 0 (has_tx / has_rx say which sides exist); -ENOENT neither
 * exists; -EINVAL NULL argument; -EPROTO a state is not a bridge's
 * (another kind of object under its name, an Array of another element
 * type or length or without its Lock, another magic word, a sender's next
 * sequence number above 2^63).
 * Does not block. Any thread or process, while the bridge runs.
 */
LFIPC_API int lfipc_bridge_stats_read(lfipc_region *r, const char *queue,
				      lfipc_bridge_stats *out);

/**
 * Make a CURVE key pair as Z85 text (LFIPC_BRIDGE_KEY_LEN characters and a
 * NUL each).
 *
 * Return: 0; -ENOTSUP libzmq without CURVE; -EINVAL NULL argument.
 */
LFIPC_API int lfipc_bridge_keypair(char pub[LFIPC_BRIDGE_KEY_LEN + 1],
				   char sec[LFIPC_BRIDGE_KEY_LEN + 1]);

/**
 * The public key (Z85) of the secret key sec (Z85).
 *
 * Return: 0; -EINVAL not a key; -ENOTSUP libzmq without CURVE.
 */
LFIPC_API int lfipc_bridge_public_key(const char *sec,
				      char pub[LFIPC_BRIDGE_KEY_LEN + 1]);

#ifdef __cplusplus
}
#endif

#endif /* LFIPC_BRIDGE_H */
