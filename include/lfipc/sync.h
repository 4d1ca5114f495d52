/* SPDX-License-Identifier: MIT */
/*
 * lfipc/sync.h - process-shared synchronisation primitives.
 *
 * Lock and RLock (Python's multiprocessing.Lock and RLock), Semaphore and
 * BoundedSemaphore, Condition, Event and Barrier.
 *
 * Every object lives in a region, is created and opened by name, and works
 * between processes and between threads. Blocking calls sleep through the
 * library's wait layer (lib/wait.c, which also holds the argument that no
 * wake-up is lost): on the object's futex word and, at once, on the death
 * words of whoever they wait for, so the kernel wakes them when that
 * process dies (doc/architecture.md, "Waiting"); an idle waiter wakes at
 * most once a second. Uncontended operations make no system call.
 *
 * Lock ownership is per thread: the lock word holds the owning process's
 * token, and the owning thread records the lock (and an RLock's depth) in
 * its own memory, where no other process can change it; so a release by
 * another thread (of any process) is -EPERM, like an error-checking
 * pthread mutex, and nothing another process writes into the lock's
 * memory, short of its word, can make the owner's release fail.
 * A lock whose owning process died while holding it is taken over by the
 * next acquirer, who gets -EOWNERDEAD (and then holds the lock).
 *
 * A Semaphore has no owner unless created with LFIPC_SEM_TRACK_HOLDERS. A
 * Condition has no internal lock: its state changes only under the user's
 * Lock/RLock. A Barrier breaks (-EPIPE) on abort, timeout, a failed action
 * or a dead waiting party. Event.wait returns 0 if a set happened while it
 * waited. See doc/sync.md for the design and the differences from Python.
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
 * LFIPC_SYNC_GRACE_NS - the grace period (1 s) of the calls that take no
 * timeout but may have to wait for another process: a tracked
 * lfipc_sem_release() and lfipc_barrier_reset() wait at most this long for
 * the object's internal guard (which a running process holds for
 * nanoseconds) and then give up with -EBUSY, having changed nothing; the
 * guard stays held that long only by a process that does not progress
 * (stopped with SIGSTOP, or hostile). lfipc_cond_wait() gives itself at
 * least this long after its timeout to re-take its lock (-ENOLCK).
 */
#define LFIPC_SYNC_GRACE_NS ((int64_t)1000000000)

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
 * -EINTR not acquired (an interruptible thread only: see
 * lfipc_thread_set_interruptible()); -EDEADLK a plain Lock already held
 * by the calling thread; -EOVERFLOW RLock
 * depth would exceed UINT32_MAX; -ENOMEM the calling thread holds more
 * than 4 locks at once and its record of them could not grow;
 * -EUSERS/-errno registering this process; -EPROTO another process kept
 * rewriting the lock's word (free, or naming nobody or a dead owner) for
 * about LFIPC_SYNC_GRACE_NS (corrupt or hostile memory; until the deadline
 * when that comes first: -ETIMEDOUT / -EAGAIN).
 * Blocks (futex): a sleeping waiter is woken by the release, or by the
 * kernel when the owner process dies (its death word, doc/architecture.md);
 * where that push is unavailable it checks the owner's liveness in slices
 * of 0.625 ms growing to 1 s. Thread-safe; handles may be shared by
 * threads, and ownership is the thread's across every handle of the lock
 * in its process.
 */
LFIPC_API int lfipc_lock_acquire(lfipc_lock *l, int64_t timeout_ns);

/**
 * lfipc_lock_release() - release the lock (one level of an RLock).
 *
 * Return: 0; -EPERM the calling thread does not hold it (also when another
 * process rewrote the lock's word since it was taken: it is then not the
 * caller's any more).
 * Does not block. Thread-safe.
 */
LFIPC_API int lfipc_lock_release(lfipc_lock *l);

/**
 * lfipc_lock_locked() - is the lock held by anyone right now (a snapshot)?
 * Does not block. Thread-safe.
 */
LFIPC_API bool lfipc_lock_locked(const lfipc_lock *l);

/**
 * lfipc_lock_owned() - does the calling thread hold the lock (through this
 * handle's region)? For an RLock this tells whether an acquire would be a
 * re-entry, which lfipc_lock_acquire() grants with 0 like a first hold
 * (Python's RLock._is_owned()). False for NULL. Never registers the
 * process (a fork child's first call: false, at once).
 * Does not block. Thread-safe.
 */
LFIPC_API bool lfipc_lock_owned(const lfipc_lock *l);

/**
 * lfipc_lock_is_recursive() - true for an RLock. Thread-safe.
 */
LFIPC_API bool lfipc_lock_is_recursive(const lfipc_lock *l);

/* ---- Semaphore and BoundedSemaphore ---------------------------------- */

/** Flags for lfipc_sem_create_ex(). */
#define LFIPC_SEM_BOUNDED 0x1u	     /* BoundedSemaphore: max = initial value */
#define LFIPC_SEM_TRACK_HOLDERS 0x2u /* return units held by dead processes */

/** Largest value a Semaphore can hold (Python's SEM_VALUE_MAX on Linux). */
#define LFIPC_SEM_VALUE_MAX INT32_MAX

/**
 * lfipc_sem_create() - create the Semaphore (or BoundedSemaphore) name.
 * @value:   initial value, 0..LFIPC_SEM_VALUE_MAX.
 * @bounded: true for a BoundedSemaphore: a release that would raise the
 *           value above the initial value fails with -EOVERFLOW.
 *
 * Same as lfipc_sem_create_ex(r, name, value, bounded ? LFIPC_SEM_BOUNDED
 * : 0, out). A Semaphore has no owner: any thread or process may release
 * what another acquired (the producer/consumer pattern).
 *
 * Return: 0; -EEXIST; -ENOSPC; -EINVAL bad argument or value too large;
 * -ENAMETOOLONG; -ENOMEM; -EPROTO corrupt region; -EUSERS.
 * Does not block. Thread-safe.
 */
LFIPC_API int lfipc_sem_create(lfipc_region *r, const char *name,
			       unsigned value, bool bounded, lfipc_sem **out);

/**
 * lfipc_sem_create_ex() - lfipc_sem_create() with flags.
 * @flags: LFIPC_SEM_BOUNDED and/or LFIPC_SEM_TRACK_HOLDERS.
 *
 * With LFIPC_SEM_TRACK_HOLDERS the semaphore records how many units each
 * process holds. Units held by a process that dies are returned to the
 * semaphore (by a waiter, which the holder's death wakes where the kernel
 * pushes deaths and while at most two processes hold units, else within
 * its sleep slices of 0.625 ms growing to 1 s; or by
 * lfipc_region_recover()), and each acquire that takes such a unit returns
 * -EOWNERDEAD instead of 0, once per unit. Units must then be released by
 * the process that acquired them: a release by a process that holds none
 * is -EPERM. Every change of a tracked semaphore goes through a small
 * internal robust lock with a redo journal, so a process killed at any
 * instruction neither loses nor duplicates a unit; an untracked semaphore
 * is a single lock-free word.
 *
 * Return: as lfipc_sem_create(); -EINVAL unknown flags.
 */
LFIPC_API int lfipc_sem_create_ex(lfipc_region *r, const char *name,
				  unsigned value, unsigned flags,
				  lfipc_sem **out);

/**
 * lfipc_sem_open() - open the Semaphore called name.
 *
 * Return: 0; -ENOENT; -EINVAL not a semaphore; -ENAMETOOLONG; -EPROTO not
 * valid semaphore memory; -ENOMEM. Does not block. Thread-safe.
 */
LFIPC_API int lfipc_sem_open(lfipc_region *r, const char *name,
			     lfipc_sem **out);

/** lfipc_sem_close() - free the handle (units held stay held). NULL ok. */
LFIPC_API void lfipc_sem_close(lfipc_sem *s);

/**
 * lfipc_sem_acquire() - take one unit, waiting while the value is 0.
 * @timeout_ns: LFIPC_NOWAIT, LFIPC_FOREVER or a relative timeout.
 *
 * Return: 0; -EOWNERDEAD (tracked only) acquired a unit recovered from a
 * dead holder; -EAGAIN LFIPC_NOWAIT and the value is 0; -ETIMEDOUT;
 * -EINTR no unit taken (an interruptible thread only: see
 * lfipc_thread_set_interruptible()); -EPROTO corrupt semaphore memory
 * (also: another process kept rewriting the semaphore's word for about
 * LFIPC_SYNC_GRACE_NS, or until the deadline: then -ETIMEDOUT);
 * -EUSERS/-errno registering.
 * Tracked only: -EAGAIN/-ETIMEDOUT also when another process sits inside
 * the semaphore's internal guard until the deadline (a running one leaves
 * it within nanoseconds; a stopped one does not, and never makes this call
 * outlast its timeout).
 * Blocks through the wait layer: woken by a release (no system call on
 * the release while nobody sleeps); an idle waiter wakes at most once a
 * second. Thread-safe.
 */
LFIPC_API int lfipc_sem_acquire(lfipc_sem *s, int64_t timeout_ns);

/**
 * lfipc_sem_release() - return one unit, waking one waiter.
 *
 * Return: 0; -EOVERFLOW the value is already at its maximum (the initial
 * value of a BoundedSemaphore, LFIPC_SEM_VALUE_MAX otherwise; Python's
 * "released too many times"); -EPERM (tracked only) this process holds no
 * unit; -EBUSY (tracked only) another process held the semaphore's internal
 * guard for LFIPC_SYNC_GRACE_NS (it is stopped, or does not progress):
 * nothing changed, the unit is still the caller's (release it again
 * later); -ENOMEM/-EUSERS/-errno (tracked only) as lfipc_lock_acquire();
 * -EPROTO another process kept rewriting the semaphore's word for about
 * LFIPC_SYNC_GRACE_NS (corrupt or hostile memory): nothing changed.
 * Does not block, except that a tracked release (it has no timeout) waits
 * while another process is inside the internal guard: nanoseconds, at most
 * LFIPC_SYNC_GRACE_NS. Thread-safe.
 */
LFIPC_API int lfipc_sem_release(lfipc_sem *s);

/**
 * lfipc_sem_value() - the current value (a snapshot, >= 0), or a negative
 * errno for a NULL handle. Does not block. Thread-safe.
 */
LFIPC_API int lfipc_sem_value(const lfipc_sem *s);

/** lfipc_sem_max() - the largest value release may reach. Thread-safe. */
LFIPC_API unsigned lfipc_sem_max(const lfipc_sem *s);

/* ---- Event ------------------------------------------------------------ */

/**
 * lfipc_event_create() - create the Event name, initially clear.
 *
 * Return: 0; -EEXIST; -ENOSPC; -EINVAL; -ENAMETOOLONG; -ENOMEM; -EPROTO;
 * -EUSERS. Does not block. Thread-safe.
 */
LFIPC_API int lfipc_event_create(lfipc_region *r, const char *name,
				 lfipc_event **out);

/**
 * lfipc_event_open() - open the Event called name.
 * Return: 0; -ENOENT; -EINVAL not an event; -ENAMETOOLONG; -EPROTO; -ENOMEM.
 */
LFIPC_API int lfipc_event_open(lfipc_region *r, const char *name,
			       lfipc_event **out);

/** lfipc_event_close() - free the handle. NULL is ignored. */
LFIPC_API void lfipc_event_close(lfipc_event *e);

/**
 * lfipc_event_set() - set the flag and wake every waiter. Setting a set
 * event does nothing. Return: 0; -EINVAL; -EPROTO another process kept
 * rewriting the event's word for about a second (corrupt or hostile
 * memory), the flag was not set. Does not block (at most that second
 * under such a writer). Thread-safe.
 */
LFIPC_API int lfipc_event_set(lfipc_event *e);

/** lfipc_event_clear() - clear the flag. Return: 0; -EINVAL. */
LFIPC_API int lfipc_event_clear(lfipc_event *e);

/** lfipc_event_is_set() - the flag (a snapshot). Thread-safe. */
LFIPC_API bool lfipc_event_is_set(const lfipc_event *e);

/**
 * lfipc_event_wait() - wait until the event is set.
 *
 * Returns 0 when the flag is set on entry, or when a set happened while
 * waiting, even if it was cleared again before this waiter ran (the
 * semantics of threading.Event: a set is never missed; Python's
 * multiprocessing.Event re-reads the flag instead and may miss it).
 *
 * Return: 0; -ETIMEDOUT (-EAGAIN for LFIPC_NOWAIT) not set;
 * -EINTR (an interruptible thread only: see
 * lfipc_thread_set_interruptible()); -EINVAL.
 * Blocks (through the wait layer: an idle waiter wakes at most once a
 * second, so a setter that dies between setting and waking delays nobody
 * longer than that). Thread-safe.
 */
LFIPC_API int lfipc_event_wait(lfipc_event *e, int64_t timeout_ns);

/**
 * lfipc_event_fd() - a pollable file descriptor that is readable when the
 * event is set (see LFIPC_FD_GET in lfipc/common.h for the contract every
 * lfipc fd follows). It stops being readable when lfipc_event_wait()
 * through this handle returns -EAGAIN or -ETIMEDOUT (so a clear alone
 * does not make it unreadable: the loop's wait(LFIPC_NOWAIT) does), and
 * becomes readable again at the next set. Made at the first call, then
 * the same fd; lfipc_event_close() closes it.
 *
 * Return: the fd (>= 0); -EINVAL e is NULL; -ENOSPC the region's poll
 * table is full; -EADDRINUSE the socket name was taken 8 times; -ENOMEM;
 * -EUSERS; -EMFILE or another negative errno of socket(2) or bind(2).
 * Does not block. Thread-safe.
 */
LFIPC_API int lfipc_event_fd(lfipc_event *e);

/* ---- Condition -------------------------------------------------------- */

/** Most threads that can wait on one Condition at the same time. */
#define LFIPC_COND_WAITERS_MAX 256

/**
 * lfipc_cond_create() - create the Condition name over lock.
 * @lock: a Lock or RLock of the same region, or NULL for a new RLock
 *        embedded in the Condition (Python's default); lfipc_cond_lock()
 *        returns it.
 *
 * The Condition remembers where lock lives: lfipc_cond_open() in another
 * process attaches the same lock. Remove a Condition before its Lock.
 *
 * Return: 0; -EEXIST; -ENOSPC; -EINVAL bad argument or lock in another
 * region; -ENAMETOOLONG; -ENOMEM; -EPROTO; -EUSERS. Does not block.
 */
LFIPC_API int lfipc_cond_create(lfipc_region *r, const char *name,
				lfipc_lock *lock, lfipc_cond **out);

/**
 * lfipc_cond_open() - open the Condition called name (and its lock).
 * Return: 0; -ENOENT; -EINVAL not a condition; -ENAMETOOLONG; -EPROTO the
 * condition or its lock is not valid memory; -ENOMEM.
 */
LFIPC_API int lfipc_cond_open(lfipc_region *r, const char *name,
			      lfipc_cond **out);

/** lfipc_cond_close() - free the handle (and its lock handle). NULL ok. */
LFIPC_API void lfipc_cond_close(lfipc_cond *c);

/**
 * lfipc_cond_lock() - the Condition's lock, to acquire before wait and
 * notify and release after. Owned by the condition handle: do not close it.
 */
LFIPC_API lfipc_lock *lfipc_cond_lock(lfipc_cond *c);

/**
 * lfipc_cond_wait() - release the lock, wait for a notify, re-acquire.
 *
 * The caller must hold the lock; every recursion level of an RLock is
 * released and restored. On return the lock is held again, whatever the
 * result (also after a timeout), except -ENOLCK. There are no spurious
 * wake-ups: 0 means a notify chose this waiter. A notify that chose this
 * waiter after its timeout expired but before it re-took the lock still
 * counts (0), so no notify is ever lost.
 *
 * Re-taking the lock: after a notify or the timeout, the wait re-takes
 * the lock, waiting for it for at most a grace of timeout_ns or
 * LFIPC_SYNC_GRACE_NS (1 s), whichever is larger, past its timeout; so a
 * wait returns within twice its timeout or its timeout plus 1 s, even
 * when a process stopped (SIGSTOP) while holding the lock. Ordinary
 * contention lets go far sooner: -ENOLCK means that another thread held
 * the lock all that time without progress (stopped, or holding it for
 * ever). With LFIPC_FOREVER the lock is always re-taken, and -ENOLCK never
 * returned.
 *
 * Return: 0 notified; -ETIMEDOUT (-EAGAIN for LFIPC_NOWAIT) not notified;
 * -EINTR not notified, the lock held again (an interruptible thread only:
 * see lfipc_thread_set_interruptible());
 * -EOWNERDEAD re-acquired the lock from a process that died holding it
 * (notified or not: re-check the state); -ENOLCK the lock could not be
 * re-taken within the grace: the lock is NOT held on this return (do not
 * release it), and the wait may or may not have been notified: acquire
 * the lock (with a timeout of your choice), then re-check the state, as
 * after a timeout; -EPERM the caller does not hold the lock; -EUSERS
 * LFIPC_COND_WAITERS_MAX threads already wait; -EPROTO corrupt condition
 * memory; -EUSERS/-errno registering (the lock is then not held).
 * Blocks through the wait layer, on the waiter's own slot (a notify wakes
 * exactly the waiters it chose); an idle waiter wakes at most once a
 * second. Thread-safe.
 */
LFIPC_API int lfipc_cond_wait(lfipc_cond *c, int64_t timeout_ns);

/**
 * lfipc_cond_wait_for() - wait until pred(arg) returns true.
 *
 * Calls pred with the lock held, first before waiting; waits and calls it
 * again after each notify, until it is true or timeout_ns has passed in
 * total. The lock is held on return.
 *
 * Return: 0 the predicate is true; -ETIMEDOUT it is still false at the
 * deadline (-EAGAIN for LFIPC_NOWAIT); -EOWNERDEAD the lock was taken from
 * a dead owner at some point (the predicate's last value is unknown to the
 * caller: re-check); -ENOLCK the lock could not be re-taken within the
 * grace and is NOT held (see lfipc_cond_wait(); each wait inside gets its
 * own grace); -EINTR a wait inside was interrupted (an interruptible
 * thread only: see lfipc_thread_set_interruptible()), the lock is held;
 * other errors as lfipc_cond_wait().
 */
LFIPC_API int lfipc_cond_wait_for(lfipc_cond *c, bool (*pred)(void *),
				  void *arg, int64_t timeout_ns);

/**
 * lfipc_cond_notify() - wake at most n of the threads waiting now, oldest
 * first. Waiters that died are skipped and do not count.
 *
 * Return: how many were woken (>= 0); -EPERM the caller does not hold the
 * lock; -EPROTO corrupt condition memory. Does not block. Thread-safe.
 */
LFIPC_API int lfipc_cond_notify(lfipc_cond *c, unsigned n);

/** lfipc_cond_notify_all() - lfipc_cond_notify(c, UINT_MAX). */
LFIPC_API int lfipc_cond_notify_all(lfipc_cond *c);

/* ---- Barrier ---------------------------------------------------------- */

/** Largest number of parties a Barrier can have. */
#define LFIPC_BARRIER_PARTIES_MAX 65536u

/**
 * lfipc_barrier_create() - create the Barrier name for parties parties.
 *
 * Return: 0; -EEXIST; -ENOSPC; -EINVAL parties 0 or above
 * LFIPC_BARRIER_PARTIES_MAX, or bad argument; -ENAMETOOLONG; -ENOMEM;
 * -EPROTO; -EUSERS. Does not block. Thread-safe.
 */
LFIPC_API int lfipc_barrier_create(lfipc_region *r, const char *name,
				   unsigned parties, lfipc_barrier **out);

/**
 * lfipc_barrier_open() - open the Barrier called name.
 * Return: 0; -ENOENT; -EINVAL not a barrier; -ENAMETOOLONG; -EPROTO; -ENOMEM.
 */
LFIPC_API int lfipc_barrier_open(lfipc_region *r, const char *name,
				 lfipc_barrier **out);

/** lfipc_barrier_close() - free the handle. NULL is ignored. */
LFIPC_API void lfipc_barrier_close(lfipc_barrier *b);

/**
 * lfipc_barrier_set_action() - run action(arg) in the party whose wait
 * completes a cycle through this handle, before the others are released
 * (Python's Barrier(action=)). The action belongs to the handle, not to
 * the shared barrier: a process sets it on its own handle. A non-zero
 * return breaks the barrier. NULL removes it. Not thread-safe against
 * lfipc_barrier_wait() on the same handle.
 */
LFIPC_API void lfipc_barrier_set_action(lfipc_barrier *b,
					int (*action)(void *arg), void *arg);

/**
 * lfipc_barrier_wait() - wait until parties threads have called wait.
 *
 * Return: the arrival index, 0..parties-1 (each exactly once per cycle;
 * parties-1 is the one that completed it and ran the action); -EPIPE the
 * barrier is or became broken (by lfipc_barrier_abort(), a reset while
 * waiting, another party's timeout, a failed action, or a waiting party
 * that died); -ETIMEDOUT this party's timeout expired, which breaks the
 * barrier for the others (-EAGAIN for LFIPC_NOWAIT), also when it could
 * not arrive because another process sat inside the barrier's internal
 * guard until the deadline (e.g. a stopped one); -EINTR (an interruptible
 * thread only: see lfipc_thread_set_interruptible()) as -ETIMEDOUT, the
 * barrier is broken; -ECANCELED the action
 * returned non-zero (the barrier is broken); -EPROTO corrupt barrier
 * memory; -EUSERS/-errno registering.
 *
 * A party that dies while waiting, arriving or inside the action breaks
 * the barrier: the party that watches it (doc/sync.md) is woken by the
 * kernel at the death where deaths are pushed (else it finds it within
 * its sleep slices of 0.625 ms growing to 1 s) and breaks the barrier,
 * and the party that would complete the cycle checks every waiting party
 * first. A party that dies before it arrives can only be covered by a
 * timeout. Blocks through the wait layer; an idle waiter wakes at most
 * once a second. Thread-safe.
 */
LFIPC_API int lfipc_barrier_wait(lfipc_barrier *b, int64_t timeout_ns);

/**
 * lfipc_barrier_abort() - break the barrier: current and future waits
 * return -EPIPE until lfipc_barrier_reset(). Return: 0; -EINVAL.
 * Does not block (one atomic operation). Thread-safe.
 */
LFIPC_API int lfipc_barrier_abort(lfipc_barrier *b);

/**
 * lfipc_barrier_reset() - return the barrier to its empty state; threads
 * waiting now get -EPIPE. Return: 0; -EINVAL; -EBUSY another process held
 * the barrier's internal guard for LFIPC_SYNC_GRACE_NS (it is stopped, or
 * does not progress): nothing changed (call it again later);
 * -ENOMEM/-EUSERS/-errno as lfipc_lock_acquire().
 * Takes the internal guard (it has no timeout): waits while another
 * process is inside it, nanoseconds, at most LFIPC_SYNC_GRACE_NS.
 * Thread-safe.
 */
LFIPC_API int lfipc_barrier_reset(lfipc_barrier *b);

/** lfipc_barrier_parties() - the number of parties. */
LFIPC_API unsigned lfipc_barrier_parties(const lfipc_barrier *b);

/** lfipc_barrier_n_waiting() - parties waiting now (0 when broken). */
LFIPC_API unsigned lfipc_barrier_n_waiting(const lfipc_barrier *b);

/** lfipc_barrier_broken() - is the barrier broken? */
LFIPC_API bool lfipc_barrier_broken(const lfipc_barrier *b);

/**
 * lfipc_lock_open_or_create() - open the Lock/RLock name, or create it.
 *
 * Open-or-create: if the object exists with this type and shape, open
 * it; if the name is free, create it; one atomic step under the region
 * lock, so any number of processes and threads may race on one name and
 * all get the same object. Return: as the create call, except that
 * -EEXIST means the name exists with another type or shape (a Lock where an RLock was asked, or the reverse).
 * Does not block (beyond the region's internal lock). Thread-safe.
 */
LFIPC_API int lfipc_lock_open_or_create(lfipc_region *r, const char *name,
					bool recursive, lfipc_lock **out);

/**
 * lfipc_sem_open_or_create() - open the Semaphore name, or create it
 * with lfipc_sem_create_ex(r, name, value, flags, out).
 *
 * Open-or-create: if the object exists with this type and shape, open
 * it; if the name is free, create it; one atomic step under the region
 * lock, so any number of processes and threads may race on one name and
 * all get the same object. Return: as the create call, except that
 * -EEXIST means the name exists with another type or shape (other flags, or a BoundedSemaphore of another maximum; the value of
 * an existing unbounded semaphore is its state, not its shape).
 * Does not block (beyond the region's internal lock). Thread-safe.
 */
LFIPC_API int lfipc_sem_open_or_create(lfipc_region *r, const char *name,
				       unsigned value, unsigned flags,
				       lfipc_sem **out);

/**
 * lfipc_event_open_or_create() - open the Event name, or create it clear.
 *
 * Open-or-create: if the object exists with this type and shape, open
 * it; if the name is free, create it; one atomic step under the region
 * lock, so any number of processes and threads may race on one name and
 * all get the same object. Return: as the create call, except that
 * -EEXIST means the name exists with another type or shape.
 * Does not block (beyond the region's internal lock). Thread-safe.
 */
LFIPC_API int lfipc_event_open_or_create(lfipc_region *r, const char *name,
					 lfipc_event **out);

/**
 * lfipc_cond_open_or_create() - open the Condition name, or create it
 * as lfipc_cond_create() does.
 *
 * Open-or-create: if the object exists with this type and shape, open
 * it; if the name is free, create it; one atomic step under the region
 * lock, so any number of processes and threads may race on one name and
 * all get the same object. Return: as the create call, except that
 * -EEXIST means the name exists with another type or shape (another lock: a given one where an own one exists, or the reverse).
 * Does not block (beyond the region's internal lock). Thread-safe.
 */
LFIPC_API int lfipc_cond_open_or_create(lfipc_region *r, const char *name,
					lfipc_lock *lock, lfipc_cond **out);

/**
 * lfipc_barrier_open_or_create() - open the Barrier name, or create it.
 *
 * Open-or-create: if the object exists with this type and shape, open
 * it; if the name is free, create it; one atomic step under the region
 * lock, so any number of processes and threads may race on one name and
 * all get the same object. Return: as the create call, except that
 * -EEXIST means the name exists with another type or shape (another number of parties).
 * Does not block (beyond the region's internal lock). Thread-safe.
 */
LFIPC_API int lfipc_barrier_open_or_create(lfipc_region *r,
					   const char *name, unsigned parties,
					   lfipc_barrier **out);

#ifdef __cplusplus
}
#endif

#endif /* LFIPC_SYNC_H */
