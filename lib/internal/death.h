/* SPDX-License-Identifier: MIT */
/*
 * internal/death.h - death words: the kernel tells waiters that a
 * participant died (the push), see lib/death.c for the mechanism.
 *
 * Each participant slot s < death_slots has a 32-bit death word in the
 * region's death area (encoding in internal/layout.h). A registrant stores
 * the TID of its registering thread in it and links a robust-list node
 * (in private memory) into that thread's glibc robust list, so that when
 * the thread dies (SIGKILL, exit, exec) the kernel marks the word
 * OWNER_DIED and wakes a sleeper on it. Waiters (wait.c) sleep on the
 * object word and the partner's death word at once (futex_waitv).
 *
 * The verdict stays in proc.c (lfipc__token_alive): an OWNER_DIED mark
 * with the slot's generation unchanged counts as death only for a slot
 * that was never used by a second thread (LFIPC_SLOT_MT clear); for the
 * others it is a hint and the OFD lock decides.
 *
 * Measured (bench/death_bench -n 250 -r: Lock owner SIGKILLed -> sleeping
 * waiter's -EOWNERDEAD, SCHED_FIFO, 2-CPU VM at load average 25): p50
 * 321 us, p99 810 us; a glibc robust pthread mutex in the same run 544 us,
 * 1.5 ms. Only slots < death_slots have a word, so proc.c gives them to
 * the living first (lfipc__death_pushed_slots).
 */
#ifndef LFIPC_INTERNAL_DEATH_H
#define LFIPC_INTERNAL_DEATH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal/layout.h"
#include "internal/region.h"

/* LFIPC_DEATH_ANY_THREAD and lfipc__thread_id() (the participant's
 * death_thread) are in internal/proc.h, which lfipc__proc_self needs. */

/* Death word of slot, or NULL when the slot has none. */
static inline _Atomic uint32_t *lfipc__death_word_at(const lfipc_region *r,
						     uint32_t slot)
{
	if (slot >= r->death_slots)
		return NULL;
	return (_Atomic uint32_t *)(r->base + r->death_off +
				    (uint64_t)(slot / LFIPC_DEATH_PER_PAGE) *
					4096 +
				    LFIPC_DEATH_WORD_OFF +
				    8 * (slot % LFIPC_DEATH_PER_PAGE));
}

/* What a waiter learns from a partner's death word (lfipc__death_peek). */
enum lfipc_death_state {
	LFIPC_DEATH_NONE,  /* no word (slot beyond the area, bad token) */
	LFIPC_DEATH_GONE,  /* the token's generation is no longer current */
	LFIPC_DEATH_OFF,   /* disarmed: no push now, fall back to slices */
	LFIPC_DEATH_ARMED, /* a death will be pushed */
	LFIPC_DEATH_DIED,  /* marked, single-threaded slot: dead */
	LFIPC_DEATH_HINT,  /* marked, multi-threaded slot: ask the OFD lock */
};

/*
 * Look at token's death word: *word (its address, NULL for NONE) and *val
 * (the value read once, seq_cst) describe what to sleep on.
 */
enum lfipc_death_state lfipc__death_peek(lfipc_region *r, uint32_t token,
					 _Atomic uint32_t **word,
					 uint32_t *val);

/* proc.c's verdict helper: slot's word is marked OWNER_DIED and the slot
 * is single-threaded (read after the caller checked the generation). */
bool lfipc__death_marked(lfipc_region *r, uint32_t slot);

/* Wake every sleeper on slot's death word (no write: the word may belong
 * to the slot's next incarnation already). */
void lfipc__death_wake(lfipc_region *r, uint32_t slot);

/*
 * Registration (proc.c, reg_mu held, on the registering thread): store
 * the calling thread's TID (or 0 without push) in slot's word and clear
 * the slot's flags BEFORE the generation is bumped; link the node.
 * lfipc__death_wake(r, slot) after the bump.
 */
void lfipc__death_arm(lfipc_region *r, uint32_t slot);

/* Unregistration (proc.c, reg_mu held): disarm (word := 0, wake all)
 * before the generation moves to even; unlink and unmap when called on
 * the linking thread, else leave the node to that thread (the shared page
 * is replaced by a private zero page at once). */
void lfipc__death_disarm(lfipc_region *r);

/*
 * Slow path of lfipc__self() for a registered token (reg_mu held): the
 * calling thread is not the linking thread. Re-arm on it when the linking
 * thread has exited, else mark the slot multi-threaded (before the token
 * is returned to this thread).
 */
void lfipc__death_other_thread(lfipc_region *r);

/* How many of r's slots (from slot 0) can have their death pushed: the
 * slots with a death word, or 0 when !lfipc__death_push_ok(). proc.c
 * prefers them when it claims a slot. */
uint32_t lfipc__death_pushed_slots(const lfipc_region *r);

/* Can this process link death words (glibc robust list with the expected
 * offset, futex_waitv, no forced fallback)? Cached. */
bool lfipc__death_push_ok(void);

#endif /* LFIPC_INTERNAL_DEATH_H */
