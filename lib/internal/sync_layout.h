/* SPDX-License-Identifier: MIT */
/*
 * internal/sync_layout.h - the shared-memory layouts of Lock/RLock,
 * Semaphore, Event, Condition and Barrier.
 *
 * One definition for the library (lib/sync.c, sem.c, event.c, cond.c,
 * barrier.c) and for the white-box tests that scribble on these objects:
 * a test finds a field with offsetof() on these structures, never by a
 * hand-typed offset. The protocol of each object (who writes which word,
 * with which memory order) is described in its .c file; this header only
 * fixes the bytes. Every structure is part of the region layout version
 * (internal/layout.h): never reorder fields without bumping it.
 *
 * Plain (non-atomic) fields are immutable after creation; a reader loads
 * each of them once with lfipc__shm_ld32/64 (internal/shm.h) and validates
 * the local. _Atomic fields are loaded with explicit atomics.
 */
#ifndef LFIPC_INTERNAL_SYNC_LAYOUT_H
#define LFIPC_INTERNAL_SYNC_LAYOUT_H

#include <stdatomic.h>
#include <stdint.h>

#include <lfipc/sync.h>

#include "internal/layout.h"

/* ---- Lock / RLock (lib/sync.c), 64 bytes, named or embedded ---------- */

#define SYNC_LOCK_MAGIC UINT32_C(0x4c4b4c46) /* "FLKL" */
#define SYNC_LOCK_SIZE 64u

/* The owning thread and an RLock's depth are not shared: the owner keeps
 * them in its own memory (lib/sync.c), where no peer can rewrite them. The
 * two fields that held them stay in the layout, written by nobody. */
struct lock_shm {
	uint32_t magic;		 /* SYNC_LOCK_MAGIC */
	uint32_t recursive;	 /* 0 Lock, 1 RLock */
	_Atomic uint32_t word;	 /* robust mutex word (internal/mutex.h) */
	_Atomic uint32_t depth_hint; /* diagnostics only (sync.c) */
	_Atomic uint64_t tid_hint;   /* diagnostics only (sync.c) */
	struct lfipc_wq wq;	 /* sleepers on word (internal/wait.h) */
	uint8_t pad[SYNC_LOCK_SIZE - 40];
};
_Static_assert(sizeof(struct lock_shm) == SYNC_LOCK_SIZE, "lock layout");

/* ---- Semaphore (lib/sem.c) ------------------------------------------- */

#define SEM_MAGIC UINT32_C(0x4d455346) /* "FSEM" */
#define SEM_GUARD_OFF 64u	       /* tracked: embedded guard Lock */
#define SEM_TRACK_OFF 128u	       /* tracked: struct sem_track */

struct sem_shm {
	uint32_t magic;	      /* SEM_MAGIC */
	uint32_t flags;	      /* LFIPC_SEM_BOUNDED | LFIPC_SEM_TRACK_HOLDERS */
	uint32_t max;	      /* largest value */
	uint32_t pad0;
	_Atomic uint64_t data; /* value (bits 0..31) | nwaiters (32..63) */
	uint8_t pad1[40];
};
_Static_assert(sizeof(struct sem_shm) == 64, "sem layout");

struct sem_holder {
	_Atomic uint32_t token; /* 0: none */
	_Atomic uint32_t count; /* units held by token */
};

/* Guarded by the embedded guard Lock; the j* fields are the redo journal. */
struct sem_track {
	_Atomic uint32_t recovered;  /* units returned from dead holders, not
					yet handed out */
	_Atomic uint32_t jactive;    /* journal below must be (re)applied */
	_Atomic uint32_t jslot;	     /* holder slot to set */
	_Atomic uint32_t jtoken;     /* its new token */
	_Atomic uint32_t jcount;     /* its new count */
	_Atomic uint32_t jvalue;     /* new value */
	_Atomic uint32_t jrecovered; /* new recovered */
	uint32_t pad;
	struct sem_holder holders[LFIPC_PROC_SLOTS];
};

#define SEM_TRACKED_SIZE (SEM_TRACK_OFF + sizeof(struct sem_track))

/* ---- Event (lib/event.c), 64 bytes ----------------------------------- */

#define EVENT_MAGIC UINT32_C(0x54564546) /* "FEVT" */

struct event_shm {
	uint32_t magic;	       /* EVENT_MAGIC */
	_Atomic uint32_t word; /* SET | generation (lib/event.c) */
	struct lfipc_wq wq;    /* waiters and pollers (internal/wait.h) */
	uint8_t pad[40];
};
_Static_assert(sizeof(struct event_shm) == 64, "event layout");

/* ---- Condition (lib/cond.c) ------------------------------------------ */

#define COND_MAGIC UINT32_C(0x444e4f43) /* "COND" */
#define COND_LOCK_OFF 64u		/* embedded RLock */
#define COND_RING_OFF 128u		/* struct cond_slot[nslots] */
#define COND_NSLOTS ((uint32_t)LFIPC_COND_WAITERS_MAX)

struct cond_shm {
	uint32_t magic;		/* COND_MAGIC */
	uint32_t nslots;	/* COND_NSLOTS */
	uint64_t lock_off;	/* region offset of the lock's memory */
	uint32_t embedded;	/* 1: the lock is at COND_LOCK_OFF */
	_Atomic uint32_t wseq;	/* next ticket */
	_Atomic uint32_t nwait; /* WAITING slots (may only be too high) */
	uint8_t pad[36];
};
_Static_assert(sizeof(struct cond_shm) == 64, "cond layout");

struct cond_slot {
	_Atomic uint32_t state;	 /* COND_SLOT_*; the waiter's futex word */
	_Atomic uint32_t token;	 /* the waiter's participant token */
	_Atomic uint32_t ticket; /* age order */
	uint32_t pad;
};

enum { COND_SLOT_FREE = 0, COND_SLOT_WAITING = 1, COND_SLOT_SIGNALED = 2 };

#define COND_SIZE (COND_RING_OFF + COND_NSLOTS * sizeof(struct cond_slot))

/* ---- Barrier (lib/barrier.c) ----------------------------------------- */

#define BARRIER_MAGIC UINT32_C(0x52524142) /* "BARR" */
#define BARRIER_GUARD_OFF 64u		   /* embedded guard Lock */
#define BARRIER_WAITERS_OFF 128u	   /* u32 token[parties] */

struct barrier_shm {
	uint32_t magic;		/* BARRIER_MAGIC */
	uint32_t parties;	/* 1..LFIPC_BARRIER_PARTIES_MAX */
	_Atomic uint32_t seq;	/* cycle << 1 | BROKEN */
	_Atomic uint32_t count; /* parties waiting in the current cycle */
	_Atomic uint64_t hist;	/* bit c % 64: cycle c ended broken */
	uint8_t pad[40];
};
_Static_assert(sizeof(struct barrier_shm) == 64, "barrier layout");

#endif /* LFIPC_INTERNAL_SYNC_LAYOUT_H */
