/* SPDX-License-Identifier: MIT */
/*
 * world.h - the test world of tests/bridge/test_bridge*.c: two regions of
 * this machine with a queue each, the real lfipc-bridge fork+exec'd
 * between them, and the producers and consumers of numbered messages.
 * Each message carries a sequence number and a check word.
 *
 * One test at a time uses the world (Criterion runs each test in a process
 * of its own): W is that test's, world_up() fills it and fini() (the
 * tests' .fini) kills and reaps every child it names, unlinks both regions
 * and removes the test's directory, so a failed test leaves nothing in
 * /dev/shm or /tmp.
 */
#ifndef LFIPC_TEST_BRIDGE_WORLD_H
#define LFIPC_TEST_BRIDGE_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <lfipc.h>
#include <lfipc/bridge.h>

#define MSG 16 /* the size of a message that is a struct msg alone */

struct msg {
	uint64_t seq, check;
};

/* One test's world: a source region and queue, a destination region and
 * queue, and the two bridge processes between them. */
struct world {
	char src[64], dst[64], epfile[256], dir[128];
	char ep[256];
	lfipc_region *rs, *rd;
	lfipc_queue *qs, *qd;
	pid_t tx, rx, prod, cons; /* killed and reaped by fini() */
	/* RSS is to measure live memory: under AddressSanitizer its
	 * quarantine keeps every freed block resident (each re-sent batch,
	 * 256 KiB, stayed: +1.5 MiB in 2.5 s), so spawn() turns it off */
	bool live_rss;
};

/* The world of the running test (world.c). */
extern struct world W;

/* The arguments of a side that runs plain TCP: {"--insecure", NULL}. */
extern const char *const INSECURE[];

/* The check word of sequence number seq. */
uint64_t check_of(uint64_t seq);

/* Fill W: unique region names, the test's directory, both regions and
 * their queues "q" (src_cap and dst_cap slots of msg_size bytes). */
void world_up(size_t src_cap, size_t dst_cap, size_t msg_size);

/* SIGKILL *pid (if > 0), reap it, and set *pid to 0. */
void kill_reap(pid_t *pid);

/* The tests' .fini: kill and reap W's children, close and unlink both
 * regions, remove the test's directory. A test may call it first (to
 * check what is left); the .fini after it then does no harm. */
void fini(void);

/* The last 2 KiB of what the bridge processes wrote to stderr (their log),
 * for failure messages. The text is static: valid until the next call. */
const char *log_tail(void);

/* fork+exec lfipc-bridge with args (NULL-terminated, without argv[0]),
 * stdout to /dev/null and stderr to the log; a SIGTERM sent at any moment
 * after it returns stops the program cleanly (exit 0). */
pid_t spawn(const char *const *args);

/* Start the receiver into W.dst (binding a free port the first time, the
 * same port on a restart), extra arguments appended, and wait until it
 * listens (W.ep holds its endpoint). */
void start_rx(const char *const *extra);

/* Start the sender from W.src to W.ep, extra arguments appended. */
void start_tx(const char *const *extra);

/* Read the bridge's counters of queue "q" of r; the test fails if that
 * fails. */
void stats(lfipc_region *r, lfipc_bridge_stats *s);

/* What a producer puts (producer()). */
struct prod {
	const char *region;
	uint64_t n;  /* messages to put; 0: until ctl[0] is set */
	size_t size; /* message size (>= 16) */
	uint64_t cap; /* n 0: put at most this many, then wait (0: no cap) */
};

/* A child's body (th_fork(producer, &prod)): put numbered messages into
 * queue "q" of prod->region, then shut it down. Counts in the Array "ctl"
 * of that region: [0] stop, [1] messages put. Returns 0, or a code. */
int producer(void *arg);

/* Create the producer's Array "ctl" (2 x I64) in the source region. */
lfipc_array *ctl_create(void);

/* Consume q until it is shut down and empty, counting each sequence
 * number in seen[] (max numbers; in_order: each must follow the last),
 * and the messages in *got. Returns 0, or a code (20 + an errno value for
 * an error, 21 a bad message, 22 out of order). */
int consume_into(lfipc_queue *q, uint8_t *seen, uint64_t max, uint64_t *got,
		 bool in_order);

/* A child's body (th_fork(consumer, W.dst)): consume_into() queue "q" of
 * the region named arg, counting into its Array "seen" of U8. */
int consumer(void *arg);

/* Wait for *pid (a bridge side, a producer, a consumer) to exit with
 * status 0; the test fails with where the stream stood and the log if it
 * does not. Sets *pid to 0. */
void expect_exit0(pid_t *pid, const char *who);

/* A stream as the SIGKILL and SIGSTOP tests run it, between the sides of
 * W: a producer child puts numbered messages into the source until it is
 * told to stop, and a consumer child counts each number it takes from the
 * destination. */
struct stream {
	lfipc_array *ctl;  /* the producer's (producer()): [0] stop, [1] put */
	lfipc_array *seen; /* "seen" of the destination: U8 per number */
	uint64_t max;	   /* numbers seen holds (the producer stops putting
			    * 200,000 below) */
};

/* After world_up() (and W.live_rss, if wanted): make s's Arrays, start
 * the receiver, the sender with tx_extra (start_tx()), the producer of
 * msg_size-byte messages and the consumer. */
void stream_up(struct stream *s, size_t msg_size, const char *const *tx_extra);

/* Stop the producer; wait for it, both sides and the consumer to exit 0;
 * check that every message put was seen at least once and no other
 * number at all; close s's Arrays. Returns the messages put, and in *dups
 * the extra copies seen. */
uint64_t stream_down(struct stream *s, uint64_t *dups);

#endif
