/* SPDX-License-Identifier: MIT */
/*
 * lfipc/queue.h - Queue and JoinableQueue: a bounded multi-producer
 * multi-consumer queue of byte messages living in a shared region.
 *
 * A queue is created by name in a region with a capacity (messages) and a
 * maximum message size (bytes); every message is any length from 0 up to
 * that size and is copied into a fixed-size slot of a ring. Unless created
 * with LFIPC_QUEUE_SINGLE_PRODUCER or LFIPC_QUEUE_SINGLE_CONSUMER, any number
 * of threads and processes may put and get at once, through handles from
 * lfipc_queue_create() / lfipc_queue_open() (one handle may be shared by
 * the threads of a process). Messages are delivered in FIFO order of their
 * puts (per producer, strictly).
 *
 * Fast paths: a put into a queue that is not full and a get from a queue
 * that is not empty make no system call when nobody sleeps. A caller that
 * must wait spins briefly (only with more than one CPU), then sleeps
 * through the wait layer: a waiter on a healthy queue wakes at most once a
 * second when nothing happens; the death of the producer whose message it
 * waits for (or of the consumer whose slot a put needs) wakes it at once
 * where the kernel supports it (glibc robust list and futex_waitv), else
 * within growing slices of 0.6 ms to 1 s.
 *
 * Timeouts (every call that may block): LFIPC_NOWAIT returns -EAGAIN at once
 * where the call would wait; LFIPC_FOREVER waits until done; any other value
 * is a relative CLOCK_MONOTONIC duration in nanoseconds and expiry returns
 * -ETIMEDOUT.
 *
 * Bulk: lfipc_queue_put_many() and lfipc_queue_get_many() move up to 64
 * messages per pass over the shared positions and event words, each
 * message still claimed in its own slot, so they keep every guarantee of
 * the single calls (FIFO, crash safety, clear, shutdown).
 *
 * Crash safety: a producer killed in the middle of a put leaves no hole that
 * blocks consumers (the put never returned, so its message may be dropped);
 * a consumer killed in the middle of a get, before the get released the
 * message's slot, does not lose the message: it is delivered to another
 * consumer (in a JoinableQueue the get counts the message a few
 * instructions before that release; from then on it is the dead
 * consumer's, as after a return, and written off as its task:
 * lfipc_queue_join() reports -EOWNERDEAD); a process killed inside a
 * clear leaves
 * no slot held (the next clear, waiter or recovery undoes its half-done
 * step). Dead participants are noticed by a caller that keeps finding the
 * same slot claimed (also with LFIPC_NOWAIT), by waiters at the end of a
 * sleep slice (whose work is bounded, whatever the capacity), by
 * lfipc_queue_clear() and by lfipc_region_recover().
 *
 * Shared memory is untrusted: nonsense read from it yields -EPROTO, never
 * an out-of-bounds access, crash or hang.
 */
#ifndef LFIPC_QUEUE_H
#define LFIPC_QUEUE_H

#include <lfipc/common.h>
#include <lfipc/region.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A per-process handle to a queue. */
typedef struct lfipc_queue lfipc_queue;

/** lfipc_queue_create() flag: a JoinableQueue (task_done / join). */
#define LFIPC_QUEUE_JOINABLE 0x1u

/**
 * lfipc_queue_create() flag: a single-producer queue. One thread at a time
 * holds the producer role: the first that puts (put, put_many, reserve)
 * takes it, and keeps it until it closes the handle it took it through or
 * its process dies (then the next producer takes it over, and a put the dead
 * one left half-done is repaired as in a multi-producer queue). A put from
 * any other thread or process meanwhile fails with -EBUSY, without
 * touching the queue. In exchange a put claims its slot and moves the put
 * position with plain stores instead of compare-and-swap loops.
 */
#define LFIPC_QUEUE_SINGLE_PRODUCER 0x2u
/**
 * lfipc_queue_create() flag: a single-consumer queue; the consumer role
 * (get, get_many, peek) is held like the producer role of
 * LFIPC_QUEUE_SINGLE_PRODUCER, and a get from anybody else fails with
 * -EBUSY. A killed consumer's claimed messages are delivered to the next
 * one, as in a multi-consumer queue. In exchange a get moves the get
 * position with a store instead of a compare-and-swap; a clear waits for
 * the consumer over the few instructions between its claim and that store
 * (see lfipc_queue_clear()).
 */
#define LFIPC_QUEUE_SINGLE_CONSUMER 0x4u

/** Largest capacity accepted by lfipc_queue_create(). */
#define LFIPC_QUEUE_MAX_CAPACITY ((size_t)1 << 30)
/** Largest message size accepted by lfipc_queue_create(). */
#define LFIPC_QUEUE_MAX_MSG_SIZE ((size_t)1 << 24)

/**
 * Create the queue name in region r holding up to capacity messages of up
 * to msg_size bytes each. flags: 0 or any of LFIPC_QUEUE_JOINABLE,
 * LFIPC_QUEUE_SINGLE_PRODUCER, LFIPC_QUEUE_SINGLE_CONSUMER.
 *
 * Return: 0 and *out; -EINVAL r, name or out NULL, capacity 0 or above
 * LFIPC_QUEUE_MAX_CAPACITY, msg_size above LFIPC_QUEUE_MAX_MSG_SIZE, unknown
 * flags; -EEXIST; -ENOSPC no room in the region; -ENAMETOOLONG; -ENOMEM;
 * -EPROTO corrupt region; -EUSERS too many participants.
 * Does not block (beyond the region lock). Thread-safe.
 */
LFIPC_API int lfipc_queue_create(lfipc_region *r, const char *name,
				 size_t capacity, size_t msg_size,
				 unsigned flags, lfipc_queue **out);

/**
 * Open the existing queue name in region r.
 *
 * Return: 0 and *out; -ENOENT; -EINVAL not a queue or NULL arguments;
 * -ENAMETOOLONG; -EPROTO the queue's header makes no sense; -ENOMEM.
 * Does not block. Thread-safe.
 */
LFIPC_API int lfipc_queue_open(lfipc_region *r, const char *name,
			       lfipc_queue **out);

/**
 * Release this handle (not the queue; the queue lives until
 * lfipc_object_remove()), and the producer or consumer role of a
 * single-producer or single-consumer queue that was taken through it.
 * NULL is a no-op. No call may be in progress on the handle, and a slot
 * reserved or peeked through it must have been committed or released
 * first.
 */
LFIPC_API void lfipc_queue_close(lfipc_queue *q);

/**
 * Copy len bytes at msg into the queue as one message, waiting for room up
 * to timeout_ns.
 *
 * Return: 0 the message is in the queue; -EMSGSIZE len > msg_size; -EINVAL
 * q NULL or msg NULL with len > 0; -EAGAIN full and LFIPC_NOWAIT;
 * -ETIMEDOUT; -EINTR (an interruptible thread only: see
 * lfipc_thread_set_interruptible()); -EPIPE the queue was shut down; -EPROTO
 * corrupt queue (also: another process kept rewriting the word of the slot
 * the put claims, or the put position, for about a second, or the word of
 * the slot it publishes while another live participant held the queue
 * lock; with a timeout, the put returns -ETIMEDOUT at its end instead, with
 * LFIPC_NOWAIT -EAGAIN after its one attempt, and the message is not put);
 * -EUSERS; -EBUSY
 * a single-producer queue whose producer role another live thread or
 * process holds.
 * May block. Safe against concurrent puts, gets, clears and crashes.
 */
LFIPC_API int lfipc_queue_put(lfipc_queue *q, const void *msg, size_t len,
			      int64_t timeout_ns);

/**
 * Take the oldest message, copying it into buf (buf_size bytes) and its
 * length into *len (len may be NULL), waiting for one up to timeout_ns.
 *
 * Return: 0; -EMSGSIZE buf_size is smaller than msg_size (checked before
 * anything is taken, so no message is ever truncated or lost); -EINVAL q or
 * buf NULL; -EAGAIN empty and LFIPC_NOWAIT; -ETIMEDOUT; -EINTR (an
 * interruptible thread only: see lfipc_thread_set_interruptible()); -EPIPE
 * the queue is shut down and empty; -EPROTO corrupt queue (a message whose
 * stored length exceeds msg_size is dropped, and counts as got and settled
 * in a JoinableQueue; also: another process kept rewriting the word of the
 * oldest message's slot, or the get position, for about a second; with a
 * timeout, the get returns -ETIMEDOUT at its end instead, with
 * LFIPC_NOWAIT -EAGAIN after its one attempt); -EUSERS; -EBUSY
 * a single-consumer queue whose consumer role another live thread or
 * process holds.
 * May block. Safe against concurrent puts, gets, clears and crashes.
 */
LFIPC_API int lfipc_queue_get(lfipc_queue *q, void *buf, size_t buf_size,
			      size_t *len, int64_t timeout_ns);

/**
 * Put up to n messages (msgs[i], lens[i]) in order, as a bulk operation:
 * the messages go into consecutive positions claimed slot by slot, while
 * the queue's shared put position is moved and the sleeping consumers are
 * looked for once per run of up to 64 messages (not once per message).
 * Waits (up to timeout_ns) only until the first message fits; then puts as
 * many as fit without waiting. The messages of one call are consecutive in
 * the queue unless another producer's put lands between two runs; they are
 * always in order.
 *
 * Return: how many were put (1..n; the first ones, in order: messages
 * msgs[0 .. ret-1] are in the queue, the others are not), or -EMSGSIZE
 * (some lens[i] > msg_size, checked before anything is put), -EINVAL (n 0
 * or above INT32_MAX, NULL arguments), -EAGAIN, -ETIMEDOUT, -EINTR (an
 * interruptible thread only: see lfipc_thread_set_interruptible()), -EPIPE,
 * -EPROTO, -EUSERS, -EBUSY as lfipc_queue_put() when none was put. A
 * shutdown that comes during the call ends it early with the count put
 * before it, and so does another process that keeps rewriting the put
 * position or a slot's word for about a second, or until the call's
 * timeout (the messages of the run it could not move the put position past
 * are not put).
 * May block (only for the first message). Safe like lfipc_queue_put(): a
 * producer killed inside the call leaves no hole that blocks consumers; the
 * messages it had not yet published are dropped (the call never returned,
 * so none was acknowledged).
 */
LFIPC_API int lfipc_queue_put_many(lfipc_queue *q, const void *const *msgs,
				   const size_t *lens, size_t n,
				   int64_t timeout_ns);

/**
 * Get up to n messages, oldest first, as a bulk operation: message i is
 * copied to (char *)bufs + i * stride, its length to lens[i]. Consecutive
 * messages are claimed slot by slot, while the queue's shared get position
 * is moved, the sleeping producers are looked for and (JoinableQueue) the
 * caller's count of tasks is updated once per run of up to 64 consecutive
 * messages. Waits (up to timeout_ns) only for the first; then takes what
 * is there, up to n.
 *
 * Return: how many were taken (1..n), or -EMSGSIZE stride < msg_size
 * (checked before anything is taken), -EINVAL (n 0 or above INT32_MAX,
 * NULL arguments), -EAGAIN, -ETIMEDOUT, -EINTR (an interruptible thread
 * only: see lfipc_thread_set_interruptible()), -EPIPE (shut down and empty),
 * -EPROTO, -EUSERS, -EBUSY as lfipc_queue_get() when none was taken (also
 * -EPROTO or -ETIMEDOUT as lfipc_queue_get() for another process that keeps
 * rewriting a slot's word or the get position). A
 * message whose stored length exceeds msg_size is dropped (counted as got
 * and settled at once in a JoinableQueue, and towards n) and the others
 * close up over it;
 * -EPROTO if only such messages were taken.
 * May block (only for the first message). Safe like lfipc_queue_get(): if
 * the process dies inside the call, every message it had claimed but not
 * yet released is delivered to another consumer (a message already copied
 * into bufs and released is gone with the process, and so is, in a
 * JoinableQueue, one already counted: each run is counted just before its
 * releases, and written off with the dead process's tasks).
 */
LFIPC_API int lfipc_queue_get_many(lfipc_queue *q, void *bufs, size_t stride,
				   size_t *lens, size_t n, int64_t timeout_ns);

/**
 * Zero-copy put, step 1: claim the next free slot and return a pointer to
 * its msg_size-byte payload in *slot. Write the message there, then call
 * lfipc_queue_commit(). Messages behind an uncommitted slot wait for it, so
 * commit promptly.
 *
 * Return: 0; -EINVAL; -EAGAIN; -ETIMEDOUT; -EINTR (an interruptible thread
 * only: see lfipc_thread_set_interruptible()); -EPIPE; -EPROTO; -EUSERS;
 * -EBUSY (as lfipc_queue_put()).
 * May block. If the process dies before commit, the slot is skipped.
 */
LFIPC_API int lfipc_queue_reserve(lfipc_queue *q, void **slot,
				  int64_t timeout_ns);

/**
 * Zero-copy put, step 2: publish the slot returned by lfipc_queue_reserve()
 * with a message of len bytes.
 *
 * Return: 0 (also when a concurrent clear discarded the message); -EINVAL
 * slot is not a slot of this queue (or q is NULL); -EMSGSIZE len >
 * msg_size (the slot stays reserved); -EPROTO the slot's state is not
 * "reserved by this process": another process overwrote it, or the slot
 * was committed already (a caller error that the shared state cannot tell
 * from corruption). A slot is reserved by the process, not by the thread
 * (the threads of a process share its token): a slot committed a second
 * time after another thread of this process reserved it again (it went
 * round the ring meanwhile) publishes that thread's message as it stands,
 * half written, and that thread's commit then says -EPROTO. Commit each
 * reservation once. Does not block; when another process keeps flipping
 * the slot's word (corrupt or hostile memory) it stops retrying after a few
 * hundred attempts and publishes the message with a plain store under the
 * queue lock (-EPROTO when a live participant holds the lock for about a
 * second meanwhile).
 */
LFIPC_API int lfipc_queue_commit(lfipc_queue *q, void *slot, size_t len);

/**
 * Zero-copy get, step 1: claim the oldest message and return a pointer to
 * it in place (*msg) and its length (*len). Call lfipc_queue_release() when
 * done with it; the slot is not reused before that.
 *
 * Return: 0; -EINVAL; -EAGAIN; -ETIMEDOUT; -EINTR (an interruptible thread
 * only: see lfipc_thread_set_interruptible()); -EPIPE; -EPROTO; -EUSERS;
 * -EBUSY (as lfipc_queue_get()).
 * May block. If the process dies before release, the message is delivered
 * to another consumer.
 */
LFIPC_API int lfipc_queue_peek(lfipc_queue *q, const void **msg, size_t *len,
			       int64_t timeout_ns);

/**
 * Zero-copy get, step 1 for many: claim up to n of the oldest messages, as
 * lfipc_queue_peek() does one, and return pointers to them in place
 * (msgs[i]) and their lengths (lens[i]), in queue order. Consecutive
 * messages are claimed slot by slot while the queue's shared get position
 * is moved and the sleeping producers are looked for once per run of up
 * to 64, as lfipc_queue_get_many() does. Waits (up to timeout_ns) only for
 * the first; then takes what is there, up to n. Give each back with
 * lfipc_queue_release() or lfipc_queue_release_many().
 *
 * Return: how many were claimed (1..n), or -EINVAL (n 0 or above
 * INT32_MAX, NULL arguments), -EAGAIN, -ETIMEDOUT, -EINTR, -EPIPE, -EPROTO,
 * -EUSERS, -EBUSY as lfipc_queue_peek() when none was claimed. A message
 * whose stored length exceeds msg_size is dropped (counted as got and
 * settled in a JoinableQueue, and towards n) and the others close up over
 * it; -EPROTO if only such messages were claimed.
 * May block (only for the first message). If the process dies before
 * releasing them, the messages are delivered to another consumer, as
 * after lfipc_queue_peek().
 */
LFIPC_API int lfipc_queue_peek_many(lfipc_queue *q, const void **msgs,
				    size_t *lens, size_t n, int64_t timeout_ns);

/**
 * Zero-copy get of orphans only: claim up to n orphans, as
 * lfipc_queue_peek() claims a message, and return pointers to them in
 * place (msgs[i]) and their lengths (lens[i]). An orphan is a message
 * whose consumer died after claiming it (a get, get_many or peek that
 * never returned, a peek never released), once the death was noticed
 * (lfipc_region_recover() notices every one at once; a waiter's slice,
 * a clear and a consumer stuck on it notice them too). Gets and peeks
 * hand orphans out before the oldest message, but when they find the
 * queue's lock busy they take the oldest message instead; this call never
 * takes anything but an orphan: a caller that must tell a dead consumer's
 * message from a new one (a restarted consumer taking back what its dead
 * predecessor had peeked) can use it where lfipc_queue_peek() cannot
 * tell. Orphans come in the order they are found in the ring, not
 * necessarily in queue order. Give each back with lfipc_queue_release()
 * or lfipc_queue_release_many().
 *
 * Return: how many were claimed (1..n); -EAGAIN none could be had now:
 * the queue holds no orphan, or the queue lock is held by another
 * participant (a clear, or another consumer's rescue or repair; the lock
 * of a dead holder is taken over), or another consumer took the orphans
 * first: try again later (lfipc_queue_stat() counts the orphans, and
 * the dead claims that are not orphans yet); -EINVAL q, msgs or lens
 * NULL, n 0 or above INT32_MAX; -EPROTO only orphans whose stored length
 * exceeds msg_size were claimed (each is dropped, counted as got and
 * settled in a JoinableQueue, and towards n); -EUSERS; -EBUSY a
 * single-consumer queue whose consumer role another live thread or
 * process holds.
 * Does not block: it tries the queue lock once per orphan, never waits
 * for it or for an orphan, and does not change the readiness of
 * lfipc_queue_fd(). Concurrency: any number of producers and consumers,
 * threads or processes; of two callers (or a get) racing for one orphan,
 * one claims it. If the process dies before releasing them, the messages
 * are orphans again, as after lfipc_queue_peek().
 */
LFIPC_API int lfipc_queue_peek_orphans(lfipc_queue *q, const void **msgs,
				       size_t *lens, size_t n);

/**
 * The position tag of a message this process holds peeked (returned by
 * lfipc_queue_peek(), lfipc_queue_peek_many() or
 * lfipc_queue_peek_orphans() and not released yet): the sequence number
 * of its slot's lap, the message's position in the queue plus one, mod
 * 2^32. A slot of the ring holds one message per lap, so two messages
 * that were in the same slot in different laps have different tags
 * (unless their positions are a multiple of 2^32 apart). An orphan keeps
 * the tag it had when its dead consumer peeked it: the caller that takes
 * it with lfipc_queue_peek_orphans() gets the same tag, so a restarted
 * consumer that recorded (slot, tag) of what it peeked can tell its dead
 * predecessor's message from a newer one in the same slot. The tag is
 * read from the slot's word, which another process can write: compare
 * it, never use it as a position. A slot is peeked by the process, not
 * by the thread (the threads of a process share its token): once another
 * thread released msg and a thread of this process peeked its slot again
 * (a later lap), this says 0 and the tag of that thread's message.
 *
 * Return: 0 and *seq; -EINVAL q or seq NULL, msg not a message of this
 * queue, or no participant token; -EPROTO the slot is not peeked by
 * this process (released already, or rewritten by another process), or
 * its word's seq is no lap of that slot (rewritten).
 * Does not block, changes nothing. Concurrency: any thread of the
 * process that peeked the message.
 */
LFIPC_API int lfipc_queue_peeked_seq(lfipc_queue *q, const void *msg,
				     uint32_t *seq);

/**
 * Zero-copy get, step 2: give back the slot returned by lfipc_queue_peek().
 *
 * Return: 0; -EINVAL msg is not a message of this queue (or q is NULL);
 * -EPROTO the slot's state is not "peeked by this process": another
 * process overwrote it, or the message was released already (a caller
 * error that the shared state cannot tell from corruption), or another
 * thread of this process released it at the same time (only one of them
 * releases it); nothing was changed. Does not block. In a JoinableQueue,
 * a process killed while two of its threads release one message at once
 * may leave that message counted twice (one task too few unfinished:
 * join returns while it is outstanding; doc/queue-record.md): release a
 * peeked message from one thread.
 */
LFIPC_API int lfipc_queue_release(lfipc_queue *q, const void *msg);

/**
 * Zero-copy get, step 2 for many: give back the slots of msgs[0 .. n-1],
 * each returned by lfipc_queue_peek() to this process and not released
 * yet, in that order, as a bulk operation: each slot is released by its
 * own store, as lfipc_queue_release() does it, while the sleeping
 * producers are looked for (and woken) once and, in a JoinableQueue, the
 * caller's count of messages got is updated once per run of consecutive
 * messages.
 *
 * Return: how many were released (1..n; the first ones: msgs[0 .. ret-1]
 * are released; if ret < n, msgs[ret] is not "peeked by this process and
 * not released" and neither it nor any after it was changed), or -EINVAL
 * (q or msgs NULL, n 0 or above INT32_MAX, or some msgs[i] is not a
 * message of this queue: checked before anything is released), -EPROTO
 * (msgs[0] is not peeked by this process, as for lfipc_queue_release():
 * nothing was changed). A pointer given twice stops the call at its second
 * occurrence, and of two threads releasing the same slots at once only one
 * releases each slot; but ownership is the process's: if another thread
 * of this process peeked a slot again between the two occurrences of its
 * pointer, that thread's message is released. Never give a pointer twice.
 * Does not block. Concurrency: as lfipc_queue_release(). Crash safety: a
 * process killed inside the call leaves the messages it had not released
 * yet as peeked by a dead process, so they are delivered to another
 * consumer (those released before are gone, as after single releases); in
 * a JoinableQueue the count stays exact, as for lfipc_queue_get_many():
 * each run is counted, and marked counted, in one store before its
 * releases, and a run counted is gone with the process like one released
 * (doc/queue.md, "The in-flight record").
 */
LFIPC_API int lfipc_queue_release_many(lfipc_queue *q, const void *const *msgs,
				       size_t n);

/**
 * Discard every message in the queue, in constant time whatever the number
 * of messages, while producers and consumers keep running. Messages being
 * put at the same moment are either discarded or stay in the queue; none is
 * delivered twice or lost uncounted. A slot reserved but not yet committed
 * is discarded too (its commit still returns 0): a clear never waits for a
 * producer or a consumer, except in a LFIPC_QUEUE_SINGLE_CONSUMER queue for
 * a consumer between its claim of the oldest message and its move of the
 * get position (a few instructions; if that consumer dies there, the clear
 * leaves its message to be delivered again, as a killed consumer's).
 * For a JoinableQueue the discarded messages count
 * as done. A message whose consumer died in the middle of a get, waiting to
 * be delivered again, is not discarded.
 *
 * Clears are serialised with each other (a short lock in the queue, taken
 * over when its holder dies): a clear waits while another one runs.
 *
 * Return: the number of messages discarded (>= 0); -EINVAL; -EPROTO the
 * queue's shared state makes no sense (also: another process kept
 * rewriting the oldest message's slot word or a position for about a
 * second); -EBUSY another clear has been in
 * progress for over a second (its process is stopped, or the lock word is
 * corrupt), or, in a single-consumer queue, the consumer has been stopped
 * for over a second between its claim and its move of the get position;
 * -EUSERS. Does not block otherwise.
 */
LFIPC_API int64_t lfipc_queue_clear(lfipc_queue *q);

/** Number of messages a get would return (holes left by dead producers are
 * not counted, messages of dead consumers waiting to be delivered again
 * are): exact when quiescent, also after a crash once the dead participant
 * was noticed (lfipc_region_recover() does it at once); always within
 * [0, capacity]. A JoinableQueue's hole that a process is dropping
 * counts, as a message being read (lfipc_queue_stat()'s reading), for
 * the few instructions of its drop, or for as long as that process is
 * stopped there. Does not block. 0 for NULL. */
LFIPC_API size_t lfipc_queue_qsize(const lfipc_queue *q);
/** lfipc_queue_qsize() == 0. */
LFIPC_API bool lfipc_queue_empty(const lfipc_queue *q);
/** lfipc_queue_qsize() == capacity. */
LFIPC_API bool lfipc_queue_full(const lfipc_queue *q);
/** The capacity given at creation (0 for NULL). */
LFIPC_API size_t lfipc_queue_capacity(const lfipc_queue *q);
/** The maximum message size given at creation (0 for NULL). */
LFIPC_API size_t lfipc_queue_msg_size(const lfipc_queue *q);

/**
 * Shut the queue down for good: later puts fail with -EPIPE, gets drain the
 * messages left and then return -EPIPE instead of blocking; every waiter
 * (put, get, join) wakes. Idempotent.
 *
 * Return: 0; -EINVAL. Does not block.
 */
LFIPC_API int lfipc_queue_shutdown(lfipc_queue *q);

/**
 * A pollable file descriptor for the queue (see LFIPC_FD_GET in
 * lfipc/common.h for the contract every lfipc fd follows): side
 * LFIPC_FD_GET is readable when a get would not block (a message is there,
 * or the queue is shut down); LFIPC_FD_PUT when a put would not block
 * (room, or shut down). The fd is made at the first call for that side
 * (a socket and an entry of the region's poll table) and is the same at
 * later calls; lfipc_queue_close() closes it. It stops being readable when
 * a get (a put) through this handle returns -EAGAIN or -ETIMEDOUT. Not
 * made readable by a producer's death inside a put (the next get repairs
 * that: call it with LFIPC_NOWAIT now and then if that matters).
 *
 * Return: the fd (>= 0); -EINVAL q is NULL or side is neither
 * LFIPC_FD_GET nor LFIPC_FD_PUT; -ENOSPC the region's poll table is full;
 * -EADDRINUSE the socket name was taken by someone else 8 times; -ENOMEM;
 * -EUSERS (no participant slot); another negative errno of socket(2) or
 * bind(2) (e.g. -EAFNOSUPPORT, -EMFILE). Does not block. Thread-safe.
 */
LFIPC_API int lfipc_queue_fd(lfipc_queue *q, int side);

/**
 * JoinableQueue: mark one task (a message taken by a get) as processed.
 *
 * Every task is charged to the process that got it. task_done settles one
 * of the caller's own outstanding tasks; when the caller has none, it
 * settles one that another process got (a task handed over to the caller,
 * which Python allows): one a live process got if there is one (a check
 * of another process's liveness is a system call), else one of a dead
 * process whose tasks were not written off yet. The caller's own tasks
 * are those counted since its first get on the queue. When a process dies
 * (or closes the region) with tasks it got and nobody settled, they are
 * written off as done once the death is noticed (by join, at the end of
 * each of its sleep slices or at each LFIPC_NOWAIT call, or by
 * lfipc_region_recover()); a process that was handed one of them and
 * calls task_done for it later gets -EINVAL if nothing else is
 * outstanding.
 *
 * Return: 0; -EINVAL not a joinable queue, or no task outstanding (called
 * more times than messages were got: Python's ValueError; one call too
 * many that meets another process dropping a dead producer's hole in a
 * window of a few instructions returns 0 instead and settles the hole,
 * the count staying exact: doc/queue-record.md); -EUSERS;
 * -EPROTO another process kept rewriting the task count for about a
 * second (corrupt or hostile memory): nothing was settled.
 * Does not block (at most that second under such a writer). Thread- and
 * process-safe.
 */
LFIPC_API int lfipc_queue_task_done(lfipc_queue *q);

/**
 * JoinableQueue: wait until every message ever put has been got and
 * settled (task_done, or written off because the process that got it died;
 * see lfipc_queue_task_done()), or was discarded by a clear, or dropped as
 * a hole (its producer died mid-put, or its put failed at shutdown).
 * join does not wait for a dead process: at the end of each sleep slice
 * (and at each LFIPC_NOWAIT call) it writes off the tasks of dead
 * processes and repairs a dead producer's hole at the head. A process
 * killed at any instruction of a get, a release, a clear or the drop of a
 * hole leaves the count exact (a hole whose dropper died mid-drop is
 * written off with that process's tasks: counted by
 * lfipc_queue_tasks_abandoned(), reported by -EOWNERDEAD), also with a
 * second thread of the process counting at the same moment; one killed
 * while two other threads of its process were counting messages or
 * dropping a hole at the same moment can still leave positions uncounted
 * (give join a timeout; doc/queue.md, Crash recovery).
 * Any number of joiners, in any process.
 *
 * Return: 0; -EOWNERDEAD all done, but tasks were written off since the
 * last join that reported it (each write-off is reported to one join
 * only; lfipc_queue_tasks_abandoned() counts them); -EINVAL not joinable;
 * -EAGAIN LFIPC_NOWAIT and not done; -ETIMEDOUT; -EINTR (an interruptible
 * thread only: see lfipc_thread_set_interruptible()); -EUSERS. May block.
 */
LFIPC_API int lfipc_queue_join(lfipc_queue *q, int64_t timeout_ns);

/**
 * JoinableQueue statistics: the number of tasks written off so far because
 * the process that got them died before they were settled (0 for a plain
 * Queue or NULL). A process killed in the middle of a write-off may leave
 * it a few low. Does not block.
 */
LFIPC_API uint64_t lfipc_queue_tasks_abandoned(const lfipc_queue *q);

/**
 * lfipc_queue_open_or_create() - open the Queue name, or create it with
 * lfipc_queue_create(r, name, capacity, msg_size, flags, out).
 *
 * Open-or-create: if the object exists with this type and shape, open
 * it; if the name is free, create it; one atomic step under the region
 * lock, so any number of processes and threads may race on one name and
 * all get the same object. Return: as the create call, except that
 * -EEXIST means the name exists with another type or shape (another
 * capacity, message size or flags: JoinableQueue, single-producer,
 * single-consumer).
 * Does not block (beyond the region's internal lock). Thread-safe.
 */
LFIPC_API int lfipc_queue_open_or_create(lfipc_region *r, const char *name,
					 size_t capacity, size_t msg_size,
					 unsigned flags, lfipc_queue **out);

#ifdef __cplusplus
}
#endif

#endif /* LFIPC_QUEUE_H */
