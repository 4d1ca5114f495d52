/* SPDX-License-Identifier: MIT */
/*
 * lfipc/common.h - definitions shared by every lfipc header.
 *
 * Conventions that hold for the whole library:
 *  - Functions that can fail return 0 (or a non-negative count) on success
 *    and a negative errno value on failure. errno is never the channel.
 *  - Blocking calls take a timeout_ns: LFIPC_NOWAIT (0) does not block and
 *    returns -EAGAIN where it would; LFIPC_FOREVER (exactly -1) waits until
 *    done; any other negative value means "already expired" (a computed
 *    "deadline - now" that went negative): the call makes its one attempt
 *    and returns -ETIMEDOUT where it would block; a positive value is a
 *    relative duration in nanoseconds on CLOCK_MONOTONIC (immune to
 *    wall-clock changes), and expiry returns -ETIMEDOUT. Waits restart
 *    internally after signals and keep the original deadline: EINTR is
 *    never returned, unless the calling thread asked for it with
 *    lfipc_thread_set_interruptible() (below).
 *  - The library never prints, never aborts on bad input and never exits.
 *  - Shared memory is untrusted: a region whose contents make no sense yields
 *    -EPROTO, never a crash or a hang.
 */
#ifndef LFIPC_COMMON_H
#define LFIPC_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#if defined(LFIPC_BUILDING)
#define LFIPC_API __attribute__((visibility("default")))
#else
#define LFIPC_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** Do not block: return -EAGAIN where the call would have to wait. */
#define LFIPC_NOWAIT ((int64_t)0)
/** Block until the call can complete (exactly -1; any other negative
 * timeout has already expired: -ETIMEDOUT after one attempt). */
#define LFIPC_FOREVER ((int64_t)-1)

/**
 * Pollable file descriptors (lfipc_queue_fd, lfipc_conn_fd, lfipc_event_fd)
 * follow one level-triggered contract. Each fd watches one operation of
 * one object: LFIPC_FD_GET (a get, a recv, an event wait) or LFIPC_FD_PUT
 * (a put, a send). It reports POLLIN (EPOLLIN; readable for select) when
 * that operation would not block: the operation is possible, or the object
 * is shut down or (a Pipe) its peer is gone, so the operation returns an
 * error at once. It may also be readable spuriously (another process took
 * the message first). It stops being readable only when the operation,
 * called through this same handle, returns -EAGAIN or -ETIMEDOUT (that
 * call drains the fd); then it becomes readable again at the next change
 * that may let the operation proceed (a put, a get, a send, a recv, a set,
 * a shutdown, a close; a Pipe peer's death only where the header says so).
 * So an event loop, on readiness, calls the operation with LFIPC_NOWAIT
 * until -EAGAIN. POLLOUT of the fd means nothing (use LFIPC_FD_PUT).
 * The fd belongs to the handle: it is the same fd at every call, closed by
 * the handle's close; never close it yourself. It works with epoll, poll
 * and select, in any process that opened the region, within one network
 * namespace (it is an abstract AF_UNIX datagram socket). An object nobody
 * polls pays nothing: its operations make no extra system call.
 */
#define LFIPC_FD_GET 0
#define LFIPC_FD_PUT 1

/**
 * Make the calling thread's blocking lfipc calls interruptible by signals
 * (on != 0), or restore the default (on == 0).
 *
 * Off (the default for every thread): a signal handler that runs while a
 * call sleeps does not end the call; it goes on sleeping until it
 * completes or its original deadline passes, and never returns -EINTR.
 * On: when a signal handler interrupts the call's sleep, the call returns
 * -EINTR at once, having done nothing: nothing taken, put, sent, received
 * or acquired, and a wake-up the sleep consumed is passed on to another
 * waiter. A language binding turns this on, sleeps in the call with an
 * unlimited timeout, and runs its own signal handling (KeyboardInterrupt)
 * when the call returns -EINTR, instead of sleeping in short slices.
 *
 * The calls it concerns, and what -EINTR leaves behind (everything else
 * as after an -ETIMEDOUT of the same call):
 *  - lfipc_queue_put, _get, _peek, _put_many, _get_many, _join: nothing
 *    moved (the _many forms return -EINTR only when none had moved yet;
 *    later they return the count, as at a timeout);
 *  - lfipc_conn_send, lfipc_conn_recv, lfipc_conn_poll: nothing sent or
 *    taken; except for a message larger than the ring, interrupted while
 *    it streams: it is abandoned exactly as at a timeout (the receiver
 *    never sees it; a receiver drops the rest of it at its next call);
 *  - lfipc_lock_acquire: not acquired; lfipc_sem_acquire: no unit taken;
 *    lfipc_event_wait: nothing; lfipc_wait_any: nothing;
 *  - lfipc_cond_wait (and lfipc_cond_wait_for, which returns it): the lock
 *    is held again at return, as for every return of lfipc_cond_wait
 *    except -ENOLCK; a notify that chose this waiter before it left wins
 *    (the call returns 0), so no notify is lost;
 *  - lfipc_barrier_wait: like its timeout, the interrupted wait breaks the
 *    barrier (the other parties get -EPIPE, as Python's
 *    threading.Barrier does when a wait raises), unless the cycle had
 *    already tripped (then the call returns its index);
 *  - lfipc_listener_accept: no connection taken; lfipc_listener_connect:
 *    no connection made (a request the server had not taken yet is
 *    withdrawn).
 * Internal waits that must finish what they started (a Condition
 * re-taking its lock, the region's allocation lock, a release or a reset
 * taking an object's guard) are never interrupted; they are bounded by
 * LFIPC_SYNC_GRACE_NS or by the caller's timeout.
 *
 * Only a signal whose handler runs while the call sleeps in the kernel
 * ends it: one that arrives just before the call goes to sleep, or while
 * it runs, is not seen by the call (the window every EINTR-based design
 * has: CPython's own lock acquisition has it too); a binding that must
 * never miss one checks its pending signals before each call. A handler
 * installed with SA_RESTART may also let the kernel restart the sleep
 * instead of interrupting it; install it without SA_RESTART (Python's
 * handlers are). Calls made with LFIPC_NOWAIT never sleep, so never
 * return -EINTR.
 *
 * Return: the previous setting (0 or 1). Never blocks; never fails.
 * Concurrency: the setting belongs to the calling thread (thread-local);
 * other threads and processes are unaffected.
 */
LFIPC_API int lfipc_thread_set_interruptible(int on);

/** Longest object name, in bytes, without the terminating NUL. */
#define LFIPC_NAME_MAX 63

/**
 * Describe an error code returned by lfipc.
 *
 * err is a negative errno value as returned by lfipc functions (a positive
 * value is accepted too). Codes that lfipc returns get a message that is
 * true of every lfipc call that returns them (-EPROTO, -EOWNERDEAD, -EPIPE,
 * ...); what a code means for one particular call is in that call's
 * comment. Other codes get the C library's description.
 *
 * Return: a static string, never NULL. Thread-safe.
 */
LFIPC_API const char *lfipc_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* LFIPC_COMMON_H */
