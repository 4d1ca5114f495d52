/* SPDX-License-Identifier: MIT */
/*
 * internal/queue_layout.h - the shared layout of a Queue (layout version 7)
 * and the encoding of its slot words. lib/queue.c and the tests that look
 * at a queue from outside (crash and hostile tests) include this one
 * definition, so no offset is typed twice. doc/queue.md explains every
 * field and state; this header is the reference for the bytes.
 *
 * A queue is one block in the region (128-byte aligned):
 *
 *   0                 struct lfipc_qhdr (768 bytes)
 *   slots_off         nslots slots of stride bytes (struct lfipc_qslot)
 *   tasks_off         JoinableQueue only: struct lfipc_qtask[LFIPC_PROC_SLOTS]
 *                     (0 in a plain Queue)
 */
#ifndef LFIPC_INTERNAL_QUEUE_LAYOUT_H
#define LFIPC_INTERNAL_QUEUE_LAYOUT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "internal/layout.h"

#define LFIPC_Q_MAGIC UINT64_C(0x6c66697063517565) /* "lfipcQue" */
/* 6: a task record's state 3 is HOLE (session 23): a library of layout 5
 * would take it for garbage and orphan the hole's slot. 7: a task entry
 * has two in-flight records (session 24): a library of layout 6 reads
 * record 0 only, so it would neither count record 1's cnt in the entry's
 * got (a write-off short of the dead one's tasks: join waiting for ever)
 * nor resolve record 1 of a dead process (its counted messages orphaned
 * and delivered again, or its claimed hole delivered as a message). */
#define LFIPC_Q_VERSION 7u

/*
 * Slot word (64 bits): low 32 bits seq, high 32 bits claim = two flag bits
 * and a participant token (internal/proc.h; 0 = nobody). For the slot of
 * position p (seq compared mod 2^32):
 *
 *   FREE(p)        seq p,     claim 0
 *   WRITING(p, T)  seq p,     claim T | CL_W
 *   FULL(p)        seq p + 1, claim 0
 *   TOMB(p)        seq p + 1, claim CL_W           a hole (no message)
 *   READING(p, T)  seq p + 1, claim T | CL_R
 *   ORPHAN(p)      seq p + 1, claim CL_R           a dead reader's message
 *   CLR(p)         seq p + 1, claim CL_W | CL_R    discarded by a clear
 *   DISCARD(p, T)  seq p,     claim T | CL_W | CL_R
 *   released       seq p + N, claim 0              = FREE(p + N)
 */
#define LFIPC_Q_CL_W UINT32_C(0x40000000)
#define LFIPC_Q_CL_R UINT32_C(0x80000000)
#define LFIPC_Q_CL_WR (LFIPC_Q_CL_W | LFIPC_Q_CL_R)
#define LFIPC_Q_CL_TOK UINT32_C(0x3fffffff)
#define LFIPC_Q_TOMB LFIPC_Q_CL_W
#define LFIPC_Q_ORPHAN LFIPC_Q_CL_R
#define LFIPC_Q_CLR LFIPC_Q_CL_WR

/* Role word value: participant token (high 32 bits) and a per-thread tag
 * of that process (low 32 bits, never 0; internal/proc.h). */
#define LFIPC_Q_ROLE(tok, tag) (((uint64_t)(tok) << 32) | (uint32_t)(tag))
#define LFIPC_Q_ROLE_PUT 0 /* index in role[]: the single producer */
#define LFIPC_Q_ROLE_GET 1 /* the single consumer */

/* Bytes before a slot's payload: the word and the length. */
#define LFIPC_Q_SLOT_HDR 16u

static inline uint64_t lfipc__qword(uint32_t seq, uint32_t claim)
{
	return (uint64_t)seq | ((uint64_t)claim << 32);
}

static inline uint32_t lfipc__qseq(uint64_t w)
{
	return (uint32_t)w;
}

static inline uint32_t lfipc__qclaim(uint64_t w)
{
	return (uint32_t)(w >> 32);
}

struct lfipc_qhdr {
	/* Geometry: written once at creation, before the directory entry
	 * publishes the block; read once by open, validated and cached in
	 * the handle, never read again. */
	uint64_t magic;
	uint32_t version;
	uint32_t flags;	   /* LFIPC_QUEUE_JOINABLE, _SINGLE_PRODUCER,
			    * _SINGLE_CONSUMER (or 0) */
	uint64_t capacity; /* messages, 1 <= capacity <= nslots */
	uint64_t nslots;   /* N, a power of two >= max(capacity, 2) */
	uint64_t msg_size;
	uint64_t stride;    /* slot size: SLOT_HDR + msg_size, to 64 */
	uint64_t slots_off; /* sizeof(struct lfipc_qhdr) */
	uint64_t tasks_off; /* JoinableQueue: the task table; else 0 */
	/* Role words of a single-producer / single-consumer queue (offset
	 * 64, 72; layout version 4): the holder of the role as
	 * LFIPC_Q_ROLE(token, thread tag), 0 nobody. Written only when the
	 * role changes hands, so this line stays shared in every cache. */
	_Atomic uint64_t role[2];
	uint8_t pad0[128 - 80];

	/* Hot words, each on its own 128 bytes. */
	_Atomic uint64_t enq_pos; /* offset 128 */
	uint8_t pad1[120];
	_Atomic uint64_t deq_pos; /* offset 256 */
	uint8_t pad2[120];
	/* Wait queues (internal/layout.h, internal/wait.h): gets wait on
	 * not_empty, puts on not_full, join on joined. */
	struct lfipc_wq not_empty; /* offset 384 */
	uint8_t pad3[128 - 16];
	struct lfipc_wq not_full; /* offset 512 */
	uint8_t pad4[128 - 16];

	/* Cold words (offset 640). */
	_Atomic uint32_t closed;    /* 0 open, else shut down */
	_Atomic uint32_t orphans;   /* ORPHAN slots; exact while `lock`
				     * is free (changed only under it) */
	uint32_t unused;	    /* 0 (was join's event count) */
	_Atomic uint32_t lock;	    /* token of the holder of the queue
				     * lock (clear, orphan bookkeeping);
				     * 0 free */
	_Atomic uint64_t done;	    /* JoinableQueue: holes dropped by a
				     * participant that could not hold
				     * its record (lfipc__q_drop_hole()) */
	_Atomic uint64_t hole_hi;   /* every TOMB lies below this position */
	_Atomic uint64_t sweep;	    /* next slot a slice-end sweep looks at */
	_Atomic uint64_t orphan_at; /* where the last orphan was found */
	_Atomic uint64_t abandoned; /* JoinableQueue: tasks written off */
	_Atomic uint64_t abandoned_seen; /* ... of which join has reported */
	struct lfipc_wq joined;	    /* offset 704: join waits on it */
	_Atomic uint64_t cleared;   /* offset 720: positions discarded
				     * by clears so far (layout 5: exact,
				     * counted by the JoinableQueue; written
				     * only by the holder of `lock`, with a
				     * store) */
	_Atomic uint64_t corrupt;   /* offset 728: messages dropped for a
				     * stored length above msg_size so far
				     * (statistics) */
	/* The clear record (offset 736, layout 5): written only by the
	 * holder of `lock`. clr_cb is LFIPC_Q_NOREC while no clear is
	 * between its record and its close; else the clear whose record it
	 * is discards positions clr_d .. clr_e - 1 (0 < clr_e - clr_d <=
	 * N + 1) and `cleared` was clr_cb before it. clr_d and clr_e are
	 * stored before clr_cb. See lfipc__q_clear_recover(). */
	_Atomic uint64_t clr_d;
	_Atomic uint64_t clr_e;
	_Atomic uint64_t clr_cb;
	uint8_t pad6[128 - 120];
};

/* clr_cb of no open clear record. */
#define LFIPC_Q_NOREC UINT64_MAX

struct lfipc_qslot {
	_Atomic uint64_t word;
	uint64_t len;
	unsigned char data[];
};

/*
 * JoinableQueue task entry of the participant in proc slot i (the entry
 * index is the token's slot index), 64 bytes. The messages delivered to
 * that slot's participants are got + REC_CNT(rec[0]) + REC_CNT(rec[1])
 * (the entry's "got" below): got counts those a consumer counted without
 * a record (the records were held by other threads of its process,
 * lfipc__q_count_free()), REC_CNT(rec[k]) those counted through record k.
 * settled counts the tasks settled for them (by their own task_done, by
 * another process's task_done, or written off after their death); both
 * only grow and settled <= the entry's got. owner is the token of the
 * participant that last got through this entry: when it is dead, its
 * outstanding tasks are written off (settled := the entry's got).
 * Unfinished tasks = enq_pos - done - cleared - sum(settled).
 *
 * rec[k] and rec_pos[k] (k < LFIPC_QREC_K = 2): the in-flight records.
 * The threads of a process share its token and its entry; a thread holds
 * record 0 if it can, else record 1 (else it takes the old ways: three
 * threads of a process counting at once). Two fit in the 64 bytes of the
 * entry; a third would not. Each is written only by the owner's threads
 * while it lives (the one that holds it: CLAIMED, COUNTED or HOLE), and
 * after its death by whoever resolves it (a repairer, the adoption by a
 * new incarnation), which only moves COUNTED or CLAIMED back to IDLE with
 * the same cnt, and HOLE to COUNTED(cnt + 1, 1) (then IDLE) or to IDLE.
 * The records are independent: each covers its own run, and recovery and
 * the adoption resolve each. rec[k] (64 bits):
 *
 *   bits 0..1   state: REC_IDLE 0, REC_CLAIMED 1 (held, nothing counted
 *               yet), REC_COUNTED 2 (the n slots from rec_pos are counted
 *               in cnt; those still READING by the owner are to be freed,
 *               not orphaned, if it dies), REC_HOLE 3 (n 1: dropping the
 *               hole TOMB(p) whose slot, once claimed, holds the word
 *               rec_pos = READING(p, owner); a slot with that word is a
 *               hole, to be counted and freed, never orphaned, if it
 *               dies)
 *   bits 2..8   n: the slots of the run in flight (1..64; 0 when IDLE)
 *   bits 9..63  cnt: messages counted through the record (mod 2^55)
 *
 * rec_pos[k]: the word READING(p, T) of the run's first slot (seq p + 1,
 * claim T | CL_R): the run is the n positions p .. p + n - 1, all READING
 * by T. A consumer: CAS rec IDLE(c) -> CLAIMED(c, n); store rec_pos; store
 * rec = COUNTED(c + n, n) (the count and "these slots are counted" in one
 * store); free the slots; store rec = IDLE(c + n). A JoinableQueue's
 * dropper of the hole TOMB(p) (lfipc__q_tasks_drop_hole()): CAS rec
 * IDLE(c) -> HOLE(c, 1); store rec_pos = READING(p, T); CAS the slot
 * TOMB(p) -> READING(p, T) (a loser stores IDLE(c)); move enq_pos past p;
 * store rec = COUNTED(c + 1, 1); free the slot, move deq_pos; settle one
 * task; store rec = IDLE(c + 1). doc/queue-record.md;
 * tests/model/task_record.pml, tests/model/hole_drop.pml.
 */
#define LFIPC_QREC_IDLE 0u
#define LFIPC_QREC_CLAIMED 1u
#define LFIPC_QREC_COUNTED 2u
#define LFIPC_QREC_HOLE 3u
#define LFIPC_QREC_NMAX 64u
#define LFIPC_QREC_K 2u /* records per entry */

static inline uint64_t lfipc__qrec(uint64_t cnt, uint32_t n, uint32_t state)
{
	return (cnt << 9) | ((uint64_t)(n & 127u) << 2) | (state & 3u);
}

static inline uint32_t lfipc__qrec_state(uint64_t rec)
{
	return (uint32_t)rec & 3u;
}

static inline uint32_t lfipc__qrec_n(uint64_t rec)
{
	return (uint32_t)(rec >> 2) & 127u;
}

static inline uint64_t lfipc__qrec_cnt(uint64_t rec)
{
	return rec >> 9;
}

struct lfipc_qtask {
	_Atomic uint64_t got;
	_Atomic uint64_t settled;
	_Atomic uint32_t owner;
	uint32_t pad0;
	/* the in-flight records (above), offset 24 */
	_Atomic uint64_t rec[LFIPC_QREC_K];
	/* their first slots' READING words, offset 40 */
	_Atomic uint64_t rec_pos[LFIPC_QREC_K];
	uint8_t pad[64 - 56];
};

_Static_assert(offsetof(struct lfipc_qhdr, role) == 64, "role");
_Static_assert(offsetof(struct lfipc_qhdr, enq_pos) == 128, "enq_pos");
_Static_assert(offsetof(struct lfipc_qhdr, deq_pos) == 256, "deq_pos");
_Static_assert(offsetof(struct lfipc_qhdr, not_empty) == 384, "not_empty");
_Static_assert(offsetof(struct lfipc_qhdr, not_full) == 512, "not_full");
_Static_assert(offsetof(struct lfipc_qhdr, closed) == 640, "closed");
_Static_assert(offsetof(struct lfipc_qhdr, joined) == 704, "joined");
_Static_assert(offsetof(struct lfipc_qhdr, cleared) == 720, "cleared");
_Static_assert(offsetof(struct lfipc_qhdr, corrupt) == 728, "corrupt");
_Static_assert(offsetof(struct lfipc_qhdr, clr_d) == 736, "clr_d");
_Static_assert(sizeof(struct lfipc_qhdr) == 6 * 128, "qhdr size");
_Static_assert(sizeof(struct lfipc_qslot) == LFIPC_Q_SLOT_HDR, "slot header");
_Static_assert(offsetof(struct lfipc_qtask, rec) == 24, "rec");
_Static_assert(offsetof(struct lfipc_qtask, rec_pos) == 40, "rec_pos");
_Static_assert(sizeof(struct lfipc_qtask) == 64, "task entry size");

/* Size of a JoinableQueue's task table. */
#define LFIPC_Q_TASKS_SIZE ((uint64_t)LFIPC_PROC_SLOTS * 64u)

#endif /* LFIPC_INTERNAL_QUEUE_LAYOUT_H */
