/* SPDX-License-Identifier: MIT */
/*
 * internal/layout.h - the byte layout of a region (layout version 1).
 *
 * All multi-byte fields are native-endian; all offsets are from the region
 * base. Nothing in the region is a pointer.
 *
 *   0                 struct lfipc_hdr (one page)
 *   proc_off          struct lfipc_proc_slot[LFIPC_PROC_SLOTS]
 *   dir_off           struct lfipc_dirent[dir_cap]
 *   bitmap_off        uint64_t[ceil(heap_granules / 64)], bit set = used
 *   heap_off          heap_granules * LFIPC_GRANULE bytes of object memory
 *
 * The whole layout is a function of the region size (layout_compute() in
 * region.c); an opener recomputes it and refuses a header that disagrees.
 */
#ifndef LFIPC_INTERNAL_LAYOUT_H
#define LFIPC_INTERNAL_LAYOUT_H

#include <stdatomic.h>
#include <stdint.h>

#include <lfipc/common.h>

#define LFIPC_MAGIC UINT64_C(0x314752435049464c) /* "LFIPCRG1" */
#define LFIPC_LAYOUT_VERSION 1u
#define LFIPC_HDR_SIZE 4096u
#define LFIPC_GRANULE 64u	/* allocation unit and minimum alignment */
#define LFIPC_CACHELINE 64u
#define LFIPC_HOT_ALIGN 128u	/* hot words: own 128 B (adjacent-line prefetch) */
#define LFIPC_PROC_SLOTS 1024u	/* participant table size */
#define LFIPC_DIR_MIN 64u
#define LFIPC_DIR_MAX 4096u
#define LFIPC_REGION_MAX_SIZE ((uint64_t)1 << 40)
/* Liveness byte of participant slot i: LFIPC_LIVE_BASE + i, far past EOF. */
#define LFIPC_LIVE_BASE ((int64_t)1 << 42)
/*
 * The gate byte, just below the liveness bytes (OFD locks, see proc.c):
 *   - a creator holds it write-locked until the region is initialised,
 *     then read-locked until it is registered;
 *   - a registrant holds it read-locked while it claims its slot;
 *   - a remover (lfipc_region_remove, takeover) write-locks the gate and
 *     every liveness byte in one fcntl: granted only when nobody is alive,
 *     creating or registering, and nobody can start while it holds them.
 */
#define LFIPC_GATE_BYTE (LFIPC_LIVE_BASE - 1)

/* Journal operations of the region lock holder (see alloc.c). */
enum { LFIPC_JNL_NONE = 0, LFIPC_JNL_CREATE = 1, LFIPC_JNL_REMOVE = 2 };

struct lfipc_hdr {
	/*
	 * Immutable after creation. magic is stored last by the creator
	 * (release) and loaded first by an opener (acquire); the opener then
	 * copies and validates the rest and never reads it from shared memory
	 * again.
	 */
	_Atomic uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;
	uint64_t size;
	uint64_t proc_off;
	uint32_t proc_cap;
	uint32_t dir_cap;
	uint64_t dir_off;
	uint64_t bitmap_off;
	uint64_t heap_off;
	uint64_t heap_granules;
	uint64_t layout_sum; /* FNV-1a of the fields from version to here */
	uint8_t pad0[128 - 80];

	/*
	 * Region lock (offset 128, own 128-byte block): a robust mutex word
	 * (internal/mutex.h) guarding the directory, the bitmap, the journal
	 * and the counters below.
	 */
	_Atomic uint32_t lock;
	uint8_t pad1[128 - 4];

	/* Guarded by lock (offset 256). jnl_op is atomic only so that the
	 * compiler keeps its stores, in order, around the changes they
	 * announce (a holder may die at any instruction; see alloc.c). */
	_Atomic uint32_t jnl_op; /* LFIPC_JNL_* in progress */
	uint32_t jnl_dir;	/* directory index it touches */
	uint64_t jnl_first;	/* first heap granule it touches */
	uint64_t jnl_count;	/* number of granules */
	uint64_t granules_free;
	uint32_t nobjects;
	uint32_t dir_gen;	/* bumped on every directory change */
};

/* Participant slot. gen: odd = a live incarnation, even = free or dead; each
 * registration moves it to a new odd value. pid and since_ns are for
 * diagnostics only, never trusted for liveness. */
struct lfipc_proc_slot {
	_Atomic uint32_t gen;
	_Atomic uint32_t pid;
	_Atomic int64_t since_ns;
	uint8_t pad[64 - 16];
};

/* Directory entry; every field is guarded by the region lock. type 0 =
 * free. off/size are validated against the heap before any use. */
struct lfipc_dirent {
	uint32_t type;
	uint32_t name_len;
	uint64_t off;
	uint64_t size;
	uint32_t creator; /* token of the creating participant (diagnostics) */
	uint32_t gen;
	char name[LFIPC_NAME_MAX + 1];
	uint8_t pad[128 - 96];
};

_Static_assert(sizeof(struct lfipc_hdr) <= LFIPC_HDR_SIZE, "header fits");
_Static_assert(sizeof(struct lfipc_proc_slot) == 64, "proc slot size");
_Static_assert(sizeof(struct lfipc_dirent) == 128, "dirent size");

#endif /* LFIPC_INTERNAL_LAYOUT_H */
