/* SPDX-License-Identifier: MIT */
/*
 * internal/sync.h - locks embedded in other objects.
 *
 * A Value/Array (and anything else that wants one) embeds a Lock in its own
 * block instead of creating a named one: it reserves lfipc__lock_shm_size()
 * bytes at a 64-byte-aligned offset of its block, initialises them with
 * lfipc__lock_shm_init() inside its create-time init callback, and hands out
 * a handle made by lfipc__lock_attach(). lfipc_lock_close() on such a handle
 * frees only the handle.
 */
#ifndef LFIPC_INTERNAL_SYNC_H
#define LFIPC_INTERNAL_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include <lfipc/sync.h>

#include "internal/futex.h"
#include "internal/region.h"
#include "internal/wait.h"

/* Bytes an embedded lock needs (a multiple of 64). */
uint64_t lfipc__lock_shm_size(void);

/* Initialise lock memory (already zeroed) as a Lock or an RLock. */
void lfipc__lock_shm_init(void *mem, bool recursive);

/* Make a handle for the lock memory at region offset off; validates it.
 * Return: 0 and *out; -EPROTO not valid lock memory; -ENOMEM. */
int lfipc__lock_attach(lfipc_region *r, uint64_t off, lfipc_lock **out);

/* Region offset of a lock's memory and the region it lives in (a Condition
 * records the offset so that lfipc_cond_open can attach the same lock). */
uint64_t lfipc__lock_off(const lfipc_lock *l);
/* Status of the lock memory at off (named or embedded; lfipc/inspect.h):
 * fills *st including struct_size. Return: 0; -EPROTO. */
int lfipc__lock_status_at(lfipc_region *r, uint64_t off,
			  lfipc_lock_status *st);
lfipc_region *lfipc__lock_region(const lfipc_lock *l);

/* Does the calling thread hold l (at any depth)? */
bool lfipc__lock_held(const lfipc_lock *l);

/* Release l completely, whatever its depth, and store the depth released
 * in *depth (1 for a Lock). Return: 0; -EPERM the calling thread does not
 * hold it. A Condition's wait calls this before sleeping. */
int lfipc__lock_release_all(lfipc_lock *l, uint32_t *depth);

/* Acquire l until deadline (LFIPC_DL_NEVER: no limit) and restore depth
 * (>= 1) saved by lfipc__lock_release_all. Return: 0; -EOWNERDEAD acquired
 * from a dead owner (depth is restored all the same); -ETIMEDOUT not
 * acquired by the deadline (the lock is not held); -EUSERS/-errno
 * registering. Never -EINTR (LFIPC_WAIT_NOINTR). */
int lfipc__lock_reacquire(lfipc_lock *l, uint32_t depth,
			  lfipc_deadline deadline);

/* lfipc_lock_acquire() with an absolute deadline (lfipc__deadline()) and
 * LFIPC_WAIT_* flags (see lfipc__mutex_lock). Return: as
 * lfipc_lock_acquire(): -EAGAIN for LFIPC_DL_NOW, -ETIMEDOUT for any other
 * deadline that passed. */
int lfipc__lock_acquire_until(lfipc_lock *l, lfipc_deadline deadline,
			      unsigned flags);

/*
 * Take the internal guard Lock of an object (a tracked Semaphore, a
 * Barrier) on behalf of a caller whose deadline is deadline: the guard
 * never makes a call outlast its caller's timeout, also while a stopped
 * (SIGSTOP) process sits inside it. Spins briefly first, even when the
 * deadline is now (LFIPC_NOWAIT): a running holder leaves within
 * nanoseconds. flags: LFIPC_WAIT_* (LFIPC_WAIT_NOINTR for a caller that
 * must not fail with -EINTR: a release, a reset, a recovery). Return: 0;
 * -EOWNERDEAD taken from a dead holder (repair what it left); -ETIMEDOUT
 * not taken by the deadline; -EINTR (lfipc__wait_eintr(flags));
 * -EUSERS/-errno.
 */
int lfipc__guard_acquire(lfipc_lock *guard, lfipc_deadline deadline,
			 unsigned flags);

/* lfipc__guard_acquire() for a caller with a timeout (lfipc__deadline)
 * instead of a deadline: a free guard is taken without a clock read. */
int lfipc__guard_acquire_for(lfipc_lock *guard, int64_t timeout_ns,
			     unsigned flags);

/* Is l held by a process that died (a takeover would succeed)? One
 * liveness check (a system call) when l is held. */
bool lfipc__lock_owner_dead(const lfipc_lock *l);

#endif /* LFIPC_INTERNAL_SYNC_H */
