/* SPDX-License-Identifier: MIT */
/*
 * state_help.h - what test_bridge_state.c and test_bridge_recover.c share:
 * the sender's state words as the tests write them, hostile peers' moves
 * (peek and scribble, a clearer stopped holding the queue lock), the
 * start and end of both sides around them, and the checks of what was
 * delivered. The world (W, its processes) is world.h's.
 */
#ifndef LFIPC_TEST_BRIDGE_STATE_HELP_H
#define LFIPC_TEST_BRIDGE_STATE_HELP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lfipc.h>
#include <lfipc/bridge.h>

#define STATE_TX_MAGIC 0x3130585442464c4cull /* word 0 of a sender's state */
#define STATE_TX_NEXT 2	     /* the word of the sender's next sequence number */
#define STATE_TX_RELEASING 3 /* the first number of the run being released */
#define STATE_TX_RELEASING_END 11 /* and its end */

/* The sender of most tests here, "--insecure --window 16", and the table
 * of a state made for that window (its entries: window + 64). */
extern const char *const WINDOW_16[];
#define TABLE_16 (16 + 64)

/* An endpoint nobody listens on. */
#define NOWHERE "tcp://127.0.0.1:1"

/* A sender that peeks its window towards an endpoint nobody listens on. */
int send_nowhere(void *arg);

/* The source queue's status (asserted to succeed). */
void qstat(lfipc_queue_status *st);

/* W.prod: a clearer of the source stopped while it holds the queue lock
 * (our own clear then says -EBUSY; busy for over a second: a few tries).
 * A dead process's peeked slots cannot become orphans until it dies. */
void stop_a_clearer_holding_the_lock(void);

/* Wait (20 s at most) until the source queue has n messages peeked. */
void wait_peeked(size_t n);

/* Make the source queue's sender state as a sender with options *o does
 * (opened and closed at once, towards nowhere). */
void make_state(const lfipc_bridge_opts *o);

/* In a forked hostile peer: open the source queue and the sender's state,
 * peek n messages (into m[], if m), and return the state's words (NULL on
 * any failure). The peer then scribbles and dies holding the peeks. */
uint64_t *peer_peeks(const void **m, int n);

/* The tags (lfipc_queue_peeked_seq()) of what the last peer_peeks() of
 * this process peeked, in order (its first 64). */
extern uint32_t peer_tags[64];

/* Write the entry at the index of number at in a table of table entries
 * (the entries start at word 16, three words each, as a sender makes
 * them: seq, offset, tag): number seq, offset off, no tag (0: matched by
 * its offset alone). put_entry_tag(): with tag, the slot's seq. */
void put_entry(uint64_t *w, size_t table, uint64_t at, uint64_t seq,
	       uint64_t off);
void put_entry_tag(uint64_t *w, size_t table, uint64_t at, uint64_t seq,
		   uint64_t off, uint32_t tag);

/* Write a sender's next number and the run [from, end) it was releasing
 * (its end first, as a sender does). */
void put_run(uint64_t *w, uint64_t next, uint64_t from, uint64_t end);

/* Start both sides (the sender with args) and the consumer, which marks
 * what arrives in the returned Array "seen" of the destination. */
lfipc_array *start_all(const char *const *args);

/* Run the hostile peer in a child and reap it, then start_all(args). */
lfipc_array *after_a_peer(int (*peer)(void *), void *arg,
			  const char *const *args);

/* Shut the source down and expect both sides and the consumer to end
 * cleanly. */
void shut_down_all(void);

/* The options of a side over plain TCP with window (0: the default). */
lfipc_bridge_opts plain(unsigned window);

/* Whether every number in [from, to) is in "seen" (delivered at least
 * once), waiting up to ms for it. */
bool seen_all(lfipc_array *seen, uint64_t from, uint64_t to, int ms);

/* Wait (ms at most) until the source is empty and each of the numbers
 * [0, n) was delivered. */
void wait_all_delivered(lfipc_array *seen, uint64_t n, int ms);

/* Put the messages numbered [from, to) into the source. */
void put_range(uint64_t from, uint64_t to);

/* Each of the numbers [0, n) delivered, and no more often than the
 * duplicates both sides counted as possible. */
void expect_each_once(lfipc_array *seen, uint64_t n);

#endif
