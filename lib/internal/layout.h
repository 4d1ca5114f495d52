/* SPDX-License-Identifier: MIT */
/*
 * internal/layout.h - the byte layout of a region (layout version 3: the Lock moved its generation word).
 *
 * All multi-byte fields are native-endian; all offsets are from the region
 * base. Nothing in the region is a pointer.
 *
 *   0                 struct lfipc_hdr (one page)
 *   proc_off          struct lfipc_proc_slot[LFIPC_PROC_SLOTS]
 *   death_off         death area: death_slots words, 3 per page (page-aligned)
 *   poll_off          struct lfipc_poll_entry[poll_cap] (page-aligned)
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

/*
 * Wait queue: one per waitable side of an object (internal/wait.h has the
 * protocol). Zeroed memory is an empty queue.
 *   seq      the futex word of sides whose state is not one 32-bit word
 *            bit 0   armed: a thread may sleep on seq; set by every
 *                    sleeper before it looks at the state (W2)
 *            the word changes at every wake by a waker that saw waiters
 *            (K3): a broadcast on seq adds 1 to an armed word (clearing
 *            bit 0) and makes the system call, and skips both when the
 *            word is not armed (nobody slept on it since the last
 *            broadcast); every other wake adds 2
 *   waiters  bits  0..23  threads announced in a single-object wait
 *            bits 24..39  threads announced in a wait-for-any
 *            bits 40..55  armed fd pollers of this side
 *            bits 56..63  0 (anything else is corrupt: wake all)
 */
struct lfipc_wq {
	_Atomic uint32_t seq;
	uint32_t pad;
	_Atomic uint64_t waiters;
};

/* Threads announced on wq (single-object and wait-for-any waits), for
 * status reports: one relaxed load, a snapshot that orders nothing. */
static inline unsigned lfipc__wq_sleepers(struct lfipc_wq *wq)
{
	uint64_t w = atomic_load_explicit(&wq->waiters, memory_order_relaxed);

	return (unsigned)(w & 0xffffffu) + (unsigned)((w >> 24) & 0xffffu);
}

#define LFIPC_MAGIC UINT64_C(0x314752435049464c) /* "LFIPCRG1" */
#define LFIPC_LAYOUT_VERSION 4u
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
 *   - a creator of an older lfipc held it until it was registered (a
 *     creator now registers before its file has a name: region.c);
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
	uint64_t death_off;   /* death area (wait.c, death.c) */
	uint64_t poll_off;    /* poll table (poll.c) */
	uint32_t death_slots; /* slots 0..death_slots-1 have a death word */
	uint32_t poll_cap;    /* entries in the poll table */
	uint8_t uuid[16];     /* random at creation; names poller sockets */
	uint64_t layout_sum;  /* FNV-1a of the fields from version to here */
	uint8_t pad0[128 - 120];

	/*
	 * Region lock (offset 128, own 128-byte block): a robust mutex word
	 * (internal/mutex.h) guarding the directory, the bitmap, the journal
	 * and the counters below, and the wait queue of its sleepers
	 * (internal/wait.h; offset 136).
	 */
	_Atomic uint32_t lock;
	uint32_t lock_pad;
	struct lfipc_wq lock_wq;
	uint8_t pad1[128 - 24];

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
 * diagnostics only, never trusted for liveness. flags (death.c): bit 0
 * LFIPC_SLOT_MT = the token was used by a thread other than the one whose
 * robust list carries the slot's death word; cleared by the registrant
 * before it publishes the new generation. */
struct lfipc_proc_slot {
	_Atomic uint32_t gen;
	_Atomic uint32_t pid;
	_Atomic int64_t since_ns;
	_Atomic uint32_t flags;
	uint8_t pad[64 - 20];
};
#define LFIPC_SLOT_MT UINT32_C(1)

/*
 * Death area: slot s < death_slots has a death word (32 bits) at
 * death_off + (s / 3) * 4096 + 4072 + 8 * (s % 3): in the last 24 bytes of
 * a page, so that a robust-list node placed in a private page mapped right
 * after it (glibc's futex_offset -32) reaches it. Encoding (the kernel's
 * robust-futex format):
 *   bits  0..29  TID of the thread whose robust list links the word
 *                (0 = disarmed: no push for this slot now)
 *   bit  30      OWNER_DIED: set only by the kernel when that thread exits
 *                (it also clears the TID)
 *   bit  31      WAITERS: set by a waiter before it sleeps on the word
 * See lib/death.c.
 */
#define LFIPC_DEATH_PER_PAGE 3u
#define LFIPC_DEATH_WORD_OFF 4072u
#define LFIPC_DW_TID UINT32_C(0x3fffffff)
#define LFIPC_DW_DIED UINT32_C(0x40000000)
#define LFIPC_DW_WAITERS UINT32_C(0x80000000)

/*
 * Poll table entry (poll.c), 32 bytes. Every field is read once and
 * validated; a forged entry can at most cause a 1-byte datagram to a
 * socket of this region's name space (a spurious readiness).
 *   state    gen (bits 0..31) | armed (bits 32..63). gen odd = in use;
 *            claiming moves it even -> odd, freeing odd -> even (+1), and
 *            the poller's socket name includes its home entry's gen.
 *            armed 1 = ring the poller at the next change of obj_off's
 *            queue. One 64-bit word, so that every change of armed is
 *            conditional on the incarnation (a reclaimer never steals a
 *            later poller's arm).
 *   obj_off  region offset of the polled wait queue (struct lfipc_wq)
 *   token    poller's participant token (a dead one's entry is reclaimed)
 *   home     index of the entry whose (index, gen) names the poller's
 *            socket (itself for the first entry of a poller)
 *   home_gen that entry's gen when the socket was bound
 */
struct lfipc_poll_entry {
	_Atomic uint64_t state;
	_Atomic uint32_t obj_off;
	_Atomic uint32_t token;
	_Atomic uint32_t home;
	_Atomic uint32_t home_gen;
	uint8_t pad[8];
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
_Static_assert(sizeof(struct lfipc_wq) == 16, "wait queue size");
_Static_assert(sizeof(struct lfipc_poll_entry) == 32, "poll entry size");

#endif /* LFIPC_INTERNAL_LAYOUT_H */
