/* SPDX-License-Identifier: MIT */
/*
 * lfipc/wait.h - wait for the first of several objects to become ready,
 * as Python's multiprocessing.connection.wait() does for connections, but
 * across object kinds: queues (either side), pipe connections (either
 * side) and events, in one region.
 *
 * For an event loop, use the objects' file descriptors instead
 * (lfipc_queue_fd, lfipc_conn_fd, lfipc_event_fd; see LFIPC_FD_GET in
 * lfipc/common.h): lfipc_wait_any() is for a thread that has nothing else
 * to wait for.
 */
#ifndef LFIPC_WAIT_H
#define LFIPC_WAIT_H

#include <lfipc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Kinds of object lfipc_wait_any() can wait for (lfipc_waitable.kind). */
enum lfipc_wait_kind {
	LFIPC_WAIT_QUEUE = 1, /**< obj is an lfipc_queue * */
	LFIPC_WAIT_CONN = 2,  /**< obj is an lfipc_conn * */
	LFIPC_WAIT_EVENT = 3  /**< obj is an lfipc_event * (side ignored) */
};

/** One object to wait for, and for which operation. */
struct lfipc_waitable {
	int kind;  /**< enum lfipc_wait_kind */
	int side;  /**< LFIPC_FD_GET (get, recv) or LFIPC_FD_PUT (put, send) */
	void *obj; /**< the handle */
};

/** Most objects one lfipc_wait_any() call waits for. */
#define LFIPC_WAIT_ANY_MAX 8

/**
 * Wait until the first of v[0..n-1] is ready, or timeout_ns passes.
 *
 * Ready means what readable means for that object's fd: a get (recv) or a
 * put (send) would not block, or the object is shut down (a queue) or its
 * peer is gone (a connection, whose recv then reports end-of-file); an
 * event is set. Nothing is taken: call the operation (with LFIPC_NOWAIT)
 * afterwards, and expect -EAGAIN now and then when other processes
 * compete for the same object. An event that is set and cleared again
 * before this call looks is not reported. Objects are looked at in order,
 * so an earlier one wins a tie. A queue's producer or a connection's peer
 * that dies wakes the wait at once where the kernel pushes deaths (see
 * lfipc_queue_get()); a peer's death counts as ready.
 *
 * Return: the index (>= 0) of a ready object; -EAGAIN none was ready and
 * timeout_ns was LFIPC_NOWAIT; -ETIMEDOUT none became ready in time;
 * -EINVAL v is NULL, n is 0 or above LFIPC_WAIT_ANY_MAX, an entry's kind
 * or side is not one of the above, its obj is NULL, or the objects are
 * not all in one region; -EBADF a connection cannot do that side (a
 * one-way pipe's other end); -EBUSY another process holds a connection's
 * end; -EUSERS no participant slot. Blocks (through the wait layer: an
 * idle wait wakes at most once a second). Thread-safe; several threads
 * and processes may wait for the same objects.
 */
LFIPC_API int lfipc_wait_any(const struct lfipc_waitable *v, unsigned n,
			     int64_t timeout_ns);

#ifdef __cplusplus
}
#endif

#endif /* LFIPC_WAIT_H */
