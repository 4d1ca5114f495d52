/* SPDX-License-Identifier: MIT */
/*
 * internal/pipe_layout.h - the shared-memory layout of a Pipe.
 *
 * One definition for lib/pipe.c and the white-box tests (offsetof(), never
 * hand-typed offsets). The protocol is described in lib/pipe.c. Pipe
 * layout version 2 (the wait queues): never reorder fields.
 *
 *   0      struct pipe_geom (128 B)   immutable after creation
 *   128    struct pipe_ends (128 B)   the two owner words
 *   256    struct pipe_dir dir[0]     carries data to end 0 (from end 1)
 *   512    struct pipe_dir dir[1]     carries data to end 1 (from end 0);
 *                                     unused in a one-way pipe
 *   768    ring 0 (cap bytes), then ring 1 (duplex only)
 */
#ifndef LFIPC_INTERNAL_PIPE_LAYOUT_H
#define LFIPC_INTERNAL_PIPE_LAYOUT_H

#include <stdatomic.h>
#include <stdint.h>

#include "internal/layout.h"

#define PIPE_MAGIC UINT32_C(0x45504950) /* "PIPE" */
#define PIPE_VERSION 2u
#define PIPE_HOT 128u

/* A frame: an 8-byte header (bits 0..47 length, 48..63 FRAME_TAG), the
 * bytes, padding to a multiple of 8. */
#define FRAME_HDR 8u
#define FRAME_TAG UINT64_C(0x4c46)
#define FRAME_LEN_MASK ((UINT64_C(1) << 48) - 1)

/* Owner word of an end. */
#define OWN_CLOSED UINT32_C(0x40000000)
#define OWN_CLAIMED UINT32_C(0x80000000)

struct pipe_geom {
	uint32_t magic;
	uint32_t version;
	uint32_t duplex;
	uint32_t pad0;
	uint64_t cap;	      /* ring bytes of each direction, power of 2 */
	uint64_t ring_off[2]; /* from the block start; [1] 0 if one-way */
	uint64_t total;	      /* bytes of the block used */
	uint64_t check;	      /* FNV-1a of the fields above */
	uint8_t pad[PIPE_HOT - 56];
};

struct pipe_ends {
	_Atomic uint32_t owner[2];
	uint8_t pad[PIPE_HOT - 8];
};

struct pipe_dir {
	/* The writer's block: written by the writer on every send. */
	_Atomic uint64_t tail;
	struct lfipc_wq rd_wq;	/* the reader waits here (internal/wait.h) */
	_Atomic uint64_t cut;	/* the writer last abandoned the frame it
				   was streaming here (0: never) */
	uint8_t pad0[PIPE_HOT - 32];
	/* The reader's block: written by the reader on every receive. */
	_Atomic uint64_t head;
	struct lfipc_wq wr_wq;	/* the writer waits here */
	_Atomic uint64_t skip;	/* the reader drops bytes up to here: the
				   rest of a frame it gave up (0: none) */
	uint8_t pad1[PIPE_HOT - 32];
};

struct pipe_shm {
	struct pipe_geom geom;
	struct pipe_ends ends;
	struct pipe_dir dir[2];
};

_Static_assert(sizeof(struct pipe_geom) == PIPE_HOT, "geom size");
_Static_assert(sizeof(struct pipe_dir) == 2 * PIPE_HOT, "dir size");
_Static_assert(sizeof(struct pipe_shm) == 768, "pipe shm size");

#endif /* LFIPC_INTERNAL_PIPE_LAYOUT_H */
