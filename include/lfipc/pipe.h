/* SPDX-License-Identifier: MIT */
/*
 * lfipc/pipe.h - Pipe: two connected ends carrying framed byte messages.
 *
 * lfipc_pipe_create() makes a named pipe object in a region with two ends,
 * end 0 and end 1. A duplex pipe carries messages both ways; a one-way pipe
 * (duplex = false, as multiprocessing.Pipe(duplex=False)) carries them from
 * end 1 to end 0 only: end 0 only receives, end 1 only sends. Each direction
 * is a single-producer single-consumer byte ring of ring_bytes bytes; a
 * message is one frame (an 8-byte length header, then the bytes). Messages
 * arrive whole and in order. A message of any length (up to
 * LFIPC_PIPE_MSG_MAX) may be sent: one larger than the ring streams through
 * it while the receiver drains it. The fast paths (a send that fits, a
 * receive of a message that is there) make no system call; a waiting side
 * spins briefly (only with more than one CPU) and then sleeps through the
 * wait layer, and is woken only when it announced itself; an idle waiter
 * whose peer lives wakes at most once a second.
 *
 * Ownership of the ends. Each end is held by one participant (process) at a
 * time, which is what makes crash detection possible:
 *  - lfipc_pipe_create() gives the creator handles to both ends. It holds
 *    them provisionally: the first send, recv or poll through a handle
 *    claims its end for the calling process.
 *  - lfipc_pipe_open() attaches an end from another process by name and
 *    claims it. An end held by a live process (claimed or provisional)
 *    cannot be attached a second time: -EBUSY. An end that was closed, or
 *    whose holder died, cannot be attached again: -EPIPE.
 *  - fork(): a child inherits its parent's handles. The first send, recv or
 *    poll through an inherited handle moves the end to the child (a process
 *    that uses an end it no longer holds gets -EBUSY). So the usual idiom
 *    works: create, fork, the child uses end 1 and closes end 0, the parent
 *    uses end 0 and closes end 1.
 *  - lfipc_conn_close() by the holder of a claimed end closes it: the peer
 *    reads what is left, then end-of-file (-EPIPE), and its sends fail with
 *    -EPIPE. Closing a handle to an end that this process holds only
 *    provisionally (never used it) or no longer holds (a fork child took it
 *    over) just frees the handle and hands the end on: it does not close it.
 *  - When the holder of an end dies (even by SIGKILL, even in the middle of
 *    a send), the peer sees end-of-file the same way: at once if it is
 *    waiting and the kernel pushes the death (glibc's robust list and
 *    futex_waitv), else within the growing fallback slices (0.6 ms to
 *    1 s), at its next call otherwise (a send that finds room: at once
 *    with the kernel's push; without it, once the ring is full). A
 *    message sent before the death and not yet received is lost with the
 *    receiver, as with an OS pipe. A message that the dead writer had
 *    not finished is discarded, never delivered in part.
 *  - An end that nobody holds (created, handed on, not yet attached) is not
 *    closed: the peer waits for it to be attached and used.
 *
 * Several threads or processes using the same end at once is a misuse (as
 * in Python: messages may interleave or be lost), but it never touches
 * memory outside the pipe's block and never crashes: everything read from
 * shared memory is validated, and nonsense yields -EPROTO. The pipe
 * recovers once the misuse stops: the receiver, on finding the ring
 * inconsistent, drops what it holds and returns -EPROTO once; a sender
 * that finds it inconsistent waits (within its timeout) for that repair.
 *
 * Timeouts are honoured by every call, also in the middle of a message
 * larger than the ring and while the peer is stopped (SIGSTOP). A message
 * that fits in the ring is written all at once. A larger one streams
 * through it; if the sender's timeout passes in the middle, the message is
 * given up: the receiver drops the part it got and never delivers it, and
 * the next message gets through. If the receiver's timeout passes in the
 * middle of such a message, the receiver gives it up: its next call drops
 * the rest. LFIPC_NOWAIT cannot move a message larger than the ring: a
 * send returns -EAGAIN at once (nothing written), a receive gives the
 * message up as soon as it would have to wait; use a timeout for those.
 */
#ifndef LFIPC_PIPE_H
#define LFIPC_PIPE_H

#include <lfipc/common.h>
#include <lfipc/region.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A handle to one end of a pipe (a "connection", as in Python). */
typedef struct lfipc_conn lfipc_conn;

/** Ring size used when lfipc_pipe_create() is given ring_bytes == 0. */
#define LFIPC_PIPE_DEFAULT_RING ((size_t)64 * 1024)
/** Smallest and largest ring sizes (ring_bytes is rounded up to a power of
 * two within these bounds). */
#define LFIPC_PIPE_MIN_RING ((size_t)256)
#define LFIPC_PIPE_MAX_RING ((size_t)1 << 30)
/** Longest message, in bytes (2^48 - 1). */
#define LFIPC_PIPE_MSG_MAX ((((uint64_t)1) << 48) - 1)

/**
 * Create the pipe name in region r and return handles to both ends.
 *
 * ring_bytes: size of the byte ring of each direction, rounded up to a
 * power of two (0: LFIPC_PIPE_DEFAULT_RING); each message costs its length
 * plus 8 bytes, rounded up to a multiple of 8. duplex: true for a two-way
 * pipe; false for a one-way pipe in which end 0 only receives and end 1
 * only sends. The creator holds both ends provisionally (see the header
 * comment).
 *
 * Return: 0 and *end0, *end1; -EINVAL ring_bytes above LFIPC_PIPE_MAX_RING,
 * NULL argument, or a NULL or empty name; -ENAMETOOLONG; -EEXIST the name
 * exists; -ENOSPC no room in the region; -ENOMEM; -EPROTO corrupt region;
 * -EUSERS no free participant slot.
 * May block briefly on the region's internal lock.
 * Concurrency: any thread.
 */
LFIPC_API int lfipc_pipe_create(lfipc_region *r, const char *name,
				size_t ring_bytes, bool duplex,
				lfipc_conn **end0, lfipc_conn **end1);

/**
 * Attach end (0 or 1) of the existing pipe name in r and claim it for this
 * process. The pipe's geometry is validated and copied into the handle.
 *
 * Return: 0 and *out; -ENOENT no such object; -EINVAL end is not 0 or 1,
 * the object is not a pipe, or a NULL argument; -ENAMETOOLONG; -EBUSY the
 * end is held by a live process (this one included); -EPIPE the end was
 * closed, or its holder died; -EPROTO the pipe's memory makes no sense
 * (also: another process kept rewriting the end's word for about a
 * second); -ENOMEM; -EUSERS.
 * May block briefly on the region's internal lock.
 * Concurrency: any thread.
 */
LFIPC_API int lfipc_pipe_open(lfipc_region *r, const char *name, int end,
			      lfipc_conn **out);

/**
 * Send the len bytes at msg as one message (len may be 0; msg may then be
 * NULL).
 *
 * Blocks while the ring lacks room, up to timeout_ns (LFIPC_NOWAIT,
 * LFIPC_FOREVER or nanoseconds); see the header comment for messages
 * larger than the ring.
 *
 * Return: 0; -EAGAIN no room and LFIPC_NOWAIT (always, for a message
 * larger than the ring); -ETIMEDOUT (a message larger than the ring that
 * was started is given up, never delivered); -EINTR (an interruptible
 * thread only: see lfipc_thread_set_interruptible(); as -ETIMEDOUT); -EPIPE the
 * other end was closed or its holder died (also in the middle of a large
 * message, which the receiver then discards), or this handle's own end
 * was closed or its holder died; -EBADF this is the receive
 * end of a one-way pipe; -EMSGSIZE len > LFIPC_PIPE_MSG_MAX; -EBUSY
 * another process holds this end; -EINVAL NULL c, or msg NULL with len > 0;
 * -EPROTO the pipe's memory makes no sense (several senders on this end,
 * or corruption) and the receiver did not repair it before the timeout
 * (nothing was sent; try again after the receiver's next call); -EUSERS.
 * Concurrency: one sender per end at a time (see the header comment).
 */
LFIPC_API int lfipc_conn_send(lfipc_conn *c, const void *msg, size_t len,
			      int64_t timeout_ns);

/**
 * Receive the next message into buf (buf_size bytes); *len gets its length.
 *
 * When buf_size is too small, nothing is consumed: -EMSGSIZE with *len set
 * to the size needed, and the message stays to be received with a larger
 * buffer. Blocks while no message is there, up to timeout_ns.
 *
 * Return: 0 and *len; -EMSGSIZE buffer too small (*len = size needed);
 * -EAGAIN nothing there and LFIPC_NOWAIT; -ETIMEDOUT (in the middle of a
 * message larger than the ring, that message is given up: the next call
 * drops its rest; buf may hold part of it); -EINTR (an interruptible
 * thread only: see lfipc_thread_set_interruptible(); as -ETIMEDOUT); -EPIPE
 * end-of-file: the other end was closed or its holder died, and every
 * complete message it sent has been received (also when this handle's own
 * end was closed, or its holder died: e.g. a fork child's inherited handle
 * to an end that the parent closed); -EBADF this is the send end of a
 * one-way pipe; -EBUSY another process holds this end; -EINVAL NULL c or
 * len, or buf NULL with buf_size > 0; -EPROTO the ring was inconsistent
 * (several senders on the other end, or corruption): what it held was
 * dropped and the pipe resynchronised, so the next call works.
 * Concurrency: one receiver per end at a time (see the header comment).
 */
LFIPC_API int lfipc_conn_recv(lfipc_conn *c, void *buf, size_t buf_size,
			      size_t *len, int64_t timeout_ns);

/**
 * Wait up to timeout_ns until a message can be received or end-of-file is
 * reached (both count as readable: the next lfipc_conn_recv() does not
 * wait for a message to start).
 *
 * Return: 1 readable, which includes every case in which the next
 * lfipc_conn_recv() returns -EPIPE at once (end-of-file, or this handle's
 * own end was closed or its holder died: poll never returns -EPIPE); 0 not
 * readable when the timeout expired (also for LFIPC_NOWAIT); -EINTR (an
 * interruptible thread only: see lfipc_thread_set_interruptible()); -EBADF
 * the send end of a one-way pipe; -EBUSY another process holds this end;
 * -EINVAL NULL c; -EPROTO as lfipc_conn_recv() (the ring was dropped and
 * resynchronised).
 * Concurrency: as lfipc_conn_recv().
 */
LFIPC_API int lfipc_conn_poll(lfipc_conn *c, int64_t timeout_ns);

/**
 * A pollable file descriptor for this end (see LFIPC_FD_GET in
 * lfipc/common.h for the contract every lfipc fd follows): side
 * LFIPC_FD_GET is readable when lfipc_conn_recv() would not block (a
 * message, or end-of-file: the peer closed its end or died);
 * LFIPC_FD_PUT when lfipc_conn_send() of a message that fits the free
 * room would not block (room, or the peer is gone: -EPIPE). The peer's
 * death makes it readable at once where the kernel has pidfd_open(2)
 * (Linux 5.3+) and the peer runs in this pid namespace; else the next
 * recv/send finds it. The fd is an epoll set (of a doorbell socket and the
 * peer's pidfd), so it can itself be added to epoll, poll or select. It
 * is made at the first call for that side, then the same; the handle's
 * close closes it. It stops being readable when a recv (send) through
 * this handle returns -EAGAIN or -ETIMEDOUT. Claims the end like a
 * recv/send does.
 *
 * Return: the fd (>= 0); -EINVAL c is NULL or side is neither
 * LFIPC_FD_GET nor LFIPC_FD_PUT; -EBADF this end cannot do that (the send
 * end of a one-way pipe asked for LFIPC_FD_GET, or the receive end for
 * LFIPC_FD_PUT); -EBUSY another process holds this end; -EPIPE this end
 * was closed; -ENOSPC the region's poll table is full; -EADDRINUSE the
 * socket name was taken 8 times; -ENOMEM; -EUSERS; -EMFILE or another
 * negative errno of socket(2), bind(2) or epoll_create1(2).
 * Does not block. Thread-safe.
 */
LFIPC_API int lfipc_conn_fd(lfipc_conn *c, int side);

/**
 * Close this handle. If this process holds the end and has claimed it
 * (used it, or attached it with lfipc_pipe_open()), the end is closed: the
 * peer receives what is left, then -EPIPE, and its sends fail with -EPIPE.
 * Otherwise only the handle is freed (see the header comment). NULL is a
 * no-op. The pipe object stays in the region until lfipc_object_remove().
 * Does not block; when another process keeps rewriting the end's word
 * (corrupt or hostile memory) it gives up after about a second and the
 * end stays this process's until it ends.
 * Concurrency: no other thread may use c at the same time.
 */
LFIPC_API void lfipc_conn_close(lfipc_conn *c);

/**
 * Which end c is: 0 or 1; -EINVAL when c is NULL.
 */
LFIPC_API int lfipc_conn_end(const lfipc_conn *c);

/**
 * lfipc_pipe_open_or_create() - a rendezvous on a named Pipe: take end
 * `end` (0 or 1) of the pipe name, creating the pipe if needed. A
 * creation here claims only that end and leaves the other free for
 * lfipc_pipe_open() or another lfipc_pipe_open_or_create() (unlike
 * lfipc_pipe_create(), which hands out both ends).
 *
 * Open-or-create: if the object exists with this type and shape, open
 * it; if the name is free, create it; one atomic step under the region
 * lock, so any number of processes and threads may race on one name and
 * all get the same object. Return: as the create call, except that
 * -EEXIST means the name exists with another type or shape (another ring size or direction); -EBUSY a live
 * participant holds that end; -EPIPE that end was closed or its holder
 * died (the pipe is spent: remove it and make a new one).
 * Does not block (beyond the region's internal lock). Thread-safe.
 */
LFIPC_API int lfipc_pipe_open_or_create(lfipc_region *r, const char *name,
					size_t ring_bytes, bool duplex, int end,
					lfipc_conn **out);

#ifdef __cplusplus
}
#endif

#endif /* LFIPC_PIPE_H */
