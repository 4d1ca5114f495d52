/* SPDX-License-Identifier: MIT */
/*
 * internal/pipe.h - what the files of the Pipe share (private): the
 * handle of an end and the owner-word encoding.
 *
 * The files: pipe.c (create, open, claim, close, recovery, status,
 * open-or-create) and pipe_io.c (the messages: framing, streaming, the
 * readiness callbacks and waiting of recv/send/poll, the claim of an end
 * on first use, fds and wait-for-any). The shared-memory layout is in
 * internal/pipe_layout.h (shared with the tests):
 *
 *   0      struct pipe_geom (128 B)   immutable after creation
 *   128    struct pipe_ends (128 B)   the two owner words
 *   256    struct pipe_dir dir[0]     carries data to end 0 (from end 1)
 *   512    struct pipe_dir dir[1]     carries data to end 1 (from end 0);
 *                                     unused in a one-way pipe
 *   768    ring 0 (cap bytes), then ring 1 (duplex only)
 *
 * Owner word of end e (32 bits):
 *   bits  0..29  token of the participant holding the end (0: nobody;
 *                with OWN_CLOSED: the closer no longer touches the pipe)
 *   bit  30      OWN_CLOSED: closed, or its holder found dead; final
 *   bit  31      OWN_CLAIMED: the holder has used the end (else it holds it
 *                provisionally, as the creator does)
 */
#ifndef LFIPC_INTERNAL_PIPE_H
#define LFIPC_INTERNAL_PIPE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <lfipc/pipe.h>

#include "internal/pipe_layout.h"
#include "internal/proc.h"

struct lfipc_poller;

#define OWN_TOKEN(v) ((v)&LFIPC_TOKEN_MASK)

/* The handle of one end (private memory of its process). */
struct lfipc_conn {
	lfipc_region *r;
	struct pipe_shm *p;
	int end;
	uint64_t cap, mask;
	struct pipe_dir *rx, *tx; /* NULL: this end cannot do that */
	uint8_t *rx_ring, *tx_ring;
	_Atomic uint32_t *mine, *peer;
	uint32_t tok; /* token this handle holds its end under */
	bool claimed; /* tok has OWN_CLAIMED on the end */
	/* fd pollers (lfipc_conn_fd), made on first use: [0] recv, [1]
	 * send. C1: acquire / release: complete before seen. */
	_Atomic(struct lfipc_poller *) poller[2];
	pthread_mutex_t poller_mu; /* guards the fields below */
	/* The public fds (lfipc_conn_fd): an epoll set of the poller's
	 * doorbell and a pidfd of the peer's process, so that the peer's
	 * death makes it readable too; -1 until made. */
	int epfd[2], pidfd[2];
	uint32_t watched[2]; /* the peer token pidfd[] watches */
	/* Spin-or-sleep hint of each side ([LFIPC_FD_GET] receiving,
	 * [LFIPC_FD_PUT] sending), private to this handle: bits 0..7 how
	 * many blocking waits in a row outlasted the wait layer's spin
	 * (saturating at SPIN_MISSES), bits 8..31 a count of blocking
	 * waits. S1: relaxed loads and stores: a heuristic; a lost update
	 * between two threads of one end only costs a spin or a sleep. */
	_Atomic uint32_t spin[2];
	/* The words that tell the receiving peer's death (tok 0: none
	 * yet), looked at by each send (peer_gone_send()); the sender's
	 * own (one sender per end at a time). */
	struct lfipc_death_hint peer_hint;
};

#endif /* LFIPC_INTERNAL_PIPE_H */
