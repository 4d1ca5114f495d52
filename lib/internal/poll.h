/* SPDX-License-Identifier: MIT */
/*
 * internal/poll.h - fd pollers of wait queues: the doorbells that let an
 * lfipc object join an event loop (epoll, poll, select).
 *
 * A poller is one file descriptor (the "doorbell") and one or more entries
 * of the region's poll table (internal/layout.h), each naming a wait queue
 * (struct lfipc_wq) it watches. Protocol, with the wait layer's labels
 * (internal/wait.h):
 *
 *   poller arm (the operation on the object is about to return -EAGAIN):
 *     P1 drain the doorbell
 *     P2 per entry: armed 0 -> 1 (CAS on the entry's state, seq_cst), and
 *        then waiters += 1 << 40 on its queue (seq_cst)
 *     P3 the caller re-checks readiness (seq_cst loads) and, if ready,
 *        retries the operation instead of returning -EAGAIN
 *   waker (lfipc__wake, after K1 and K2 saw poller bits in waiters):
 *     R1 per entry of this queue: armed 1 -> 0 (CAS, seq_cst); on success
 *        waiters -= 1 << 40 and ring the poller's doorbell
 *
 * K1 <S K2 and P2 <S P3 in the total order S: either K2 sees P2's count
 * (ring) or P3 sees K1 (ready). The count moves only on armed transitions
 * (poller 0 -> 1: +1; waker or reclaimer 1 -> 0: -1), so it can be off by
 * one transiently in either direction: too high costs one useless table
 * scan, too low is harmless by the argument above.
 *
 * Level-triggered contract for the public fds built on this: the doorbell
 * is readable after a ring and stays readable until the next arm drains it;
 * the public call that re-arms is the one that returns -EAGAIN. Spurious
 * readiness is possible (a ring after a competitor took the item).
 *
 * Zero cost when nobody polls: the waker's one load of wq->waiters (K2,
 * which it makes for sleepers anyway) shows no poller bits; no system call.
 *
 * Transport: an abstract-namespace AF_UNIX datagram socket per poller,
 * named "\0lfipc:<region uuid>:<home>:<home gen>", rung by a 1-byte send
 * through a per-process cache of connected sockets. It sits behind the
 * small interface in poll.c (struct doorbell_ops) so another transport (a
 * FIFO, an eventfd passed by SCM_RIGHTS) can replace it. Works between
 * unrelated processes that can open the region, within one network
 * namespace.
 *
 * Hostile peers: the waker reads every entry field once, validates home
 * against the table size and derives the socket name from the region uuid
 * it cached at open; it never reads a name, a pid or an fd number from
 * shared memory. A forged entry can make it send one byte to some lfipc
 * socket of this region (spurious readiness), nothing else. A forged
 * waiters count costs it table scans, never memory safety.
 */
#ifndef LFIPC_INTERNAL_POLL_H
#define LFIPC_INTERNAL_POLL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal/region.h"

/* One unit of wq->waiters for an armed poller. */
#define LFIPC_WQ_POLLER (UINT64_C(1) << 40)

struct lfipc_poller;

/*
 * Open a poller of wq (a queue inside r's mapping): claim a poll-table
 * entry, create and bind the doorbell. The poller starts disarmed.
 * Return: 0 and *out; -ENOSPC the poll table is full; -EADDRINUSE the
 * socket name is squatted (8 attempts); -EINVAL; -ENOMEM; the errno of
 * socket(2)/bind(2) (e.g. -EAFNOSUPPORT); -EUSERS and the like from
 * registration.
 */
int lfipc__poller_open(lfipc_region *r, struct lfipc_wq *wq,
		       struct lfipc_poller **out);

/* Watch one more queue with the same doorbell (wait-for-any).
 * Return: 0; -ENOSPC; -EINVAL; -ENOMEM. */
int lfipc__poller_add(struct lfipc_poller *p, struct lfipc_wq *wq);

/* The doorbell's file descriptor (readable after a ring). */
int lfipc__poller_fd(const struct lfipc_poller *p);

/*
 * P1 + P2: drain the doorbell and arm every entry. The caller then
 * re-checks readiness (P3) before it reports "would block".
 */
void lfipc__poller_arm(struct lfipc_poller *p);

/*
 * The fd of the poller in *slot, made on first use (mu serialises the
 * making; *slot is published with release): open a poller of wq, arm it
 * and, when now_ready(ctx) says the operation would not block (P3 of that
 * first arm), make it readable at once. Later calls return the same fd.
 * Return: the fd (>= 0); the errors of lfipc__poller_open.
 */
int lfipc__poller_fd_once(lfipc_region *r, struct lfipc_wq *wq,
			  _Atomic(struct lfipc_poller *) *slot,
			  pthread_mutex_t *mu, bool (*now_ready)(void *),
			  void *ctx);

/* Disarm, free the entries (gen -> even), close the doorbell, free p. */
void lfipc__poller_close(struct lfipc_poller *p);

/* R1 for every armed entry of wq (called by lfipc__wake when wq's
 * waiters word counts pollers). Entries whose doorbell is gone and whose
 * token is dead are reclaimed on the way. */
void lfipc__poll_ring(lfipc_region *r, struct lfipc_wq *wq);

/* Reclaim the entries of dead pollers (any queue). Return: how many. */
int lfipc__poll_reclaim(lfipc_region *r);

/* Close the per-process ring cache of r (at region close). */
void lfipc__poll_cache_free(lfipc_region *r);

#endif /* LFIPC_INTERNAL_POLL_H */
