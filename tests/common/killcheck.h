/* SPDX-License-Identifier: MIT */
/*
 * killcheck.h - the kill-and-check harness of the queue's crash tests.
 *
 * A round forks KC_P producer and KC_C consumer processes on one queue
 * (kc_q), SIGKILLs some of them at random moments, lets the survivors
 * drain the queue after a shutdown, and checks the ledger the children
 * kept in shared memory: every message a put acknowledged is delivered
 * exactly once, except what the test's excuse function accepts (a message
 * a killed consumer held, a message a killed bulk consumer had copied out).
 * Every message is {producer, sequence, checksum, 0}: a wrong one is
 * counted as bad. Children are reaped with a deadline: a hang is a
 * failure, never a hung test.
 */
#ifndef LFIPC_TEST_KILLCHECK_H
#define LFIPC_TEST_KILLCHECK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <lfipc/queue.h>

#define KC_P 2	    /* producers per round */
#define KC_C 2	    /* consumers per round */
#define KC_MAX 4096 /* messages per producer */
#define KC_B 8	    /* largest batch of the bulk workers */
#define KC_REAP_MS 60000

struct kc_ledger {
	_Atomic uint32_t acked[KC_P];	 /* puts that returned success */
	_Atomic uint32_t inflight[KC_C]; /* (p << 16 | seq) + 1 peeked */
	_Atomic uint8_t seen[KC_P][KC_MAX];
	_Atomic uint32_t bad; /* malformed messages got */
	/* bulk consumers get_many straight into here, so that after a kill
	 * the parent can see what a consumer had taken but not recorded */
	uint32_t cbuf[KC_C][KC_B][4];
};

struct kc_round {
	pid_t prod[KC_P], cons[KC_C], extra;
	bool pk[KC_P], ck[KC_C]; /* killed */
};

/* The ledger (a shared mapping, inherited by the children) and the queue
 * the workers use. */
extern struct kc_ledger *kc;
extern lfipc_queue *kc_q;

void kc_init(void);
void kc_fini(void);

/* Workers (fork children; arg is the producer or consumer index). */
int kc_producer(void *arg);	 /* put, until -EPIPE */
int kc_bulk_producer(void *arg); /* put_many of 1..KC_B */
int kc_consumer(void *arg);	 /* peek + release */
int kc_bulk_consumer(void *arg); /* get_many of 1..KC_B into cbuf */
int kc_clearer(void *arg);	 /* clear, for ever */

/* Record a message got by consumer cid (-1: the parent's drain). */
void kc_record(int cid, const void *m, size_t len);

/* Clear the ledger, fork the consumers and then the producers. */
void kc_start(struct kc_round *rd, int (*prod)(void *), int (*cons)(void *));

/* Sleep a random while, SIGKILL one producer and (if cons_too and a coin
 * says so) one consumer, sleep again, then SIGKILL every producer; reap
 * the killed. */
void kc_kill(struct kc_round *rd, uint64_t *rng, bool cons_too);

/* Shut the queue down, reap the live consumers (each must exit 0 before
 * the deadline), drain what is left and check that the drain ends with
 * -EPIPE and nothing malformed was got. */
void kc_finish(struct kc_round *rd, int round);

/* Is message (p, i), seen n times, excused? */
typedef bool kc_excuse(const struct kc_round *rd, uint32_t p, uint32_t i,
		       unsigned n);

/* A message seen twice is excused when a killed consumer had it peeked
 * (it was delivered again after the kill). */
kc_excuse kc_dup_if_peeked;
/* An acknowledged message never seen is excused when a killed bulk
 * consumer had it in its get_many buffer (it was got, not yet recorded). */
kc_excuse kc_lost_if_copied;

/* Check exactly-once delivery of the acknowledged messages (at most once
 * for the others); excuse may be NULL. Returns the number acknowledged;
 * *excused counts the excused messages. */
uint64_t kc_check(const struct kc_round *rd, int round, kc_excuse *excuse,
		  uint64_t *excused);

#endif
