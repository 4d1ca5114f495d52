/* SPDX-License-Identifier: MIT */
/*
 * lfipc/sync.h - process-shared synchronisation primitives.
 *
 * Lock and RLock (Python's multiprocessing.Lock and RLock), Semaphore and
 * BoundedSemaphore, Condition, Event and Barrier.
 *
 * Ownership is per thread: the lock word holds the owning process's token
 * and the handle records the owning thread, so a release by another thread
 * (of any process) is -EPERM, like an error-checking pthread mutex.
 * A lock whose owning process died while holding it is taken over by the
 * next acquirer, who gets -EOWNERDEAD (and then holds the lock).
 */
#ifndef LFIPC_SYNC_H
#define LFIPC_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include <lfipc/common.h>
#include <lfipc/region.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lfipc_lock lfipc_lock; /* Lock and RLock */
typedef struct lfipc_sem lfipc_sem;   /* Semaphore, BoundedSemaphore */
typedef struct lfipc_cond lfipc_cond;
typedef struct lfipc_event lfipc_event;
typedef struct lfipc_barrier lfipc_barrier;

/**
 * lfipc_lock_create() - create the Lock (or RLock) called name in r.
 * @r:         the region.
 * @name:      object name (1..LFIPC_NAME_MAX bytes).
 * @recursive: true for an RLock (the owner may acquire again; it must
 *             release as many times).
 * @out:       receives the handle (free it with lfipc_lock_close()).
 *
 * Return: 0; -EEXIST name taken; -ENOSPC no room; -EINVAL bad argument
 * (NULL or empty name);
 * -ENAMETOOLONG; -ENOMEM; -EPROTO corrupt region; -EUSERS.
 * Does not block. Thread-safe.
 */
LFIPC_API int lfipc_lock_create(lfipc_region *r, const char *name,
				bool recursive, lfipc_lock **out);

/**
 * lfipc_lock_open() - open the Lock or RLock called name.
 *
 * Return: 0 and *out; -ENOENT; -EINVAL not a lock (or bad argument);
 * -ENAMETOOLONG; -EPROTO the block is not valid lock memory; -ENOMEM.
 * Does not block. Thread-safe.
 */
LFIPC_API int lfipc_lock_open(lfipc_region *r, const char *name,
			      lfipc_lock **out);

/**
 * lfipc_lock_close() - free the handle (the shared lock stays). NULL is
 * ignored. Closing a handle whose lock this thread holds leaves the lock
 * held. Not safe concurrently with other calls on the same handle.
 */
LFIPC_API void lfipc_lock_close(lfipc_lock *l);

/**
 * lfipc_lock_acquire() - acquire the lock.
 * @timeout_ns: LFIPC_NOWAIT, LFIPC_FOREVER or a relative timeout.
 *
 * Return: 0 acquired; -EOWNERDEAD acquired, the previous owner process died
 * holding it (the protected data may be inconsistent; an RLock restarts at
 * depth 1); -EAGAIN LFIPC_NOWAIT and held by someone else; -ETIMEDOUT;
 * -EDEADLK a plain Lock already held by the calling thread; -EOVERFLOW RLock
 * depth would exceed UINT32_MAX; -EUSERS/-errno registering this process.
 * Blocks (futex, in 10 ms slices that check the owner's liveness).
 * Thread-safe; handles may be shared by threads.
 */
LFIPC_API int lfipc_lock_acquire(lfipc_lock *l, int64_t timeout_ns);

/**
 * lfipc_lock_release() - release the lock (one level of an RLock).
 *
 * Return: 0; -EPERM the calling thread does not hold it.
 * Does not block. Thread-safe.
 */
LFIPC_API int lfipc_lock_release(lfipc_lock *l);

/**
 * lfipc_lock_locked() - is the lock held by anyone right now (a snapshot)?
 * Does not block. Thread-safe.
 */
LFIPC_API bool lfipc_lock_locked(const lfipc_lock *l);

/**
 * lfipc_lock_is_recursive() - true for an RLock. Thread-safe.
 */
LFIPC_API bool lfipc_lock_is_recursive(const lfipc_lock *l);

/* ---- Semaphore and BoundedSemaphore ---------------------------------- */

/* ---- Event ------------------------------------------------------------ */

/* ---- Condition -------------------------------------------------------- */

/* ---- Barrier ---------------------------------------------------------- */

#ifdef __cplusplus
}
#endif

#endif /* LFIPC_SYNC_H */
