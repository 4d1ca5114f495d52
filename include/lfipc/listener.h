/* SPDX-License-Identifier: MIT */
/*
 * lfipc/listener.h - Listener and Client: a named rendezvous where a server
 * accepts connections one after another, each a fresh Pipe of its own (the
 * C counterpart of Python's multiprocessing.connection.Listener / Client).
 *
 * A server creates a listener in a region (lfipc_listener_create) and calls
 * lfipc_listener_accept() in a loop; any process that has the region open,
 * related or not, calls lfipc_listener_connect() with the listener's name
 * and gets its own connection (an lfipc_conn, end 1 of a new duplex Pipe);
 * accept returns the server's side of it (end 0). Messages then go both
 * ways with lfipc_conn_send() / lfipc_conn_recv(), and either side ends the
 * connection with lfipc_conn_close() (the other reads end-of-file, -EPIPE).
 *
 * Lifecycle without anybody recreating anything:
 *  - A client that closes its connection or dies (SIGKILL included) leaves
 *    nothing behind for good: its end is closed for the server (-EPIPE), and
 *    once both ends are closed the connection's Pipe object is removed and
 *    its record reused by a later connect or accept. A restarted client just
 *    connects again.
 *  - A server that dies (or closes its listener handle) is seen by clients:
 *    connections it had accepted read end-of-file, a client waiting to be
 *    accepted gets -ECONNREFUSED at once (the kernel wakes it at the
 *    server's death where deaths are pushed, else within its sleep slices
 *    of 0.625 ms growing to 1 s), and
 *    new connects get -ECONNREFUSED at once. A restarted server takes the
 *    listener over with lfipc_listener_open().
 *
 * The backlog bounds how many clients may wait to be accepted at once; a
 * connect that finds it full fails at once with -EBUSY (it does not wait
 * for room). max_conns bounds the connections in existence at once
 * (waiting plus accepted and not yet closed by both sides), because each
 * one is a Pipe in the region: ring_bytes * 2 + 768 bytes of region memory.
 *
 * Each connection's Pipe is named "<listener>#<hex id>" in the region (so
 * the listener's own name is at most LFIPC_LISTENER_NAME_MAX bytes); do not
 * create objects with such names yourself.
 *
 * One process at a time is the listener's server: the one that created it
 * or took it over with lfipc_listener_open(). Any number of its threads may
 * call lfipc_listener_accept() on the handle at once; a fork child that
 * inherits the handle is not the server (-EPERM). lfipc_listener_connect()
 * may be called by any number of threads and processes at once.
 */
#ifndef LFIPC_LISTENER_H
#define LFIPC_LISTENER_H

#include <lfipc/common.h>
#include <lfipc/pipe.h>
#include <lfipc/region.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A server's handle to a listener. */
typedef struct lfipc_listener lfipc_listener;

/** Backlog used when lfipc_listener_create() is given backlog == 0. */
#define LFIPC_LISTENER_DEFAULT_BACKLOG 16u
/** Connections used when lfipc_listener_create() is given max_conns == 0. */
#define LFIPC_LISTENER_DEFAULT_CONNS 64u
/** Largest max_conns. */
#define LFIPC_LISTENER_MAX_CONNS 4096u
/** Longest listener name: LFIPC_NAME_MAX less room for "#<8 hex digits>". */
#define LFIPC_LISTENER_NAME_MAX (LFIPC_NAME_MAX - 9)

/**
 * Create the listener name in region r and become its server.
 *
 * backlog: how many clients may wait to be accepted at once (0:
 * LFIPC_LISTENER_DEFAULT_BACKLOG). max_conns: how many connections may
 * exist at once, waiting or accepted (0: LFIPC_LISTENER_DEFAULT_CONNS; at
 * least backlog, at most LFIPC_LISTENER_MAX_CONNS). ring_bytes: the ring
 * size of each connection's Pipe, as lfipc_pipe_create() takes it (0:
 * LFIPC_PIPE_DEFAULT_RING).
 *
 * Return: 0 and *out; -EINVAL NULL argument, empty name, backlog greater
 * than max_conns, max_conns above LFIPC_LISTENER_MAX_CONNS, ring_bytes
 * above LFIPC_PIPE_MAX_RING; -ENAMETOOLONG name longer than
 * LFIPC_LISTENER_NAME_MAX; -EEXIST the name exists; -ENOSPC no room in the
 * region; -ENOMEM; -EPROTO corrupt region; -EUSERS no free participant
 * slot.
 * May block briefly on the region's internal lock.
 * Concurrency: any thread.
 */
LFIPC_API int lfipc_listener_create(lfipc_region *r, const char *name,
				    unsigned backlog, unsigned max_conns,
				    size_t ring_bytes, lfipc_listener **out);

/**
 * Become the server of the existing listener name in r: for a server that
 * restarts after its predecessor died or closed its handle. Connections the
 * predecessor accepted are not handed over (their clients read end-of-file
 * when it died); clients still waiting to be accepted are.
 *
 * Return: 0 and *out; -ENOENT no such object; -EINVAL the object is not a
 * listener, or a NULL argument; -ENAMETOOLONG; -EBUSY a live process is
 * its server (this one included); -EPROTO the listener's memory makes no
 * sense (also: another process kept rewriting its server word for about a
 * second); -ENOMEM; -EUSERS.
 * May block briefly on the region's internal lock.
 * Concurrency: any thread; of racing processes one becomes the server and
 * the others get -EBUSY.
 */
LFIPC_API int lfipc_listener_open(lfipc_region *r, const char *name,
				  lfipc_listener **out);

/**
 * Accept the next connection (the oldest waiting client first) and return
 * the server's end of it in *out. Clients that died or gave up while
 * waiting are skipped, and connections closed by both sides are reclaimed
 * on the way.
 *
 * Blocks while no client waits, up to timeout_ns (LFIPC_NOWAIT,
 * LFIPC_FOREVER or nanoseconds), through the wait layer: an idle wait
 * wakes at most once a second.
 *
 * Return: 0 and *out; -EAGAIN nobody waits and LFIPC_NOWAIT; -ETIMEDOUT;
 * -EINTR (an interruptible thread only: see
 * lfipc_thread_set_interruptible());
 * -EPERM this process is not the listener's server (a fork child with an
 * inherited handle); -EINVAL NULL argument; -EPROTO the listener's memory
 * makes no sense; -ENOMEM; -EUSERS.
 * Concurrency: any number of the server's threads at once.
 */
LFIPC_API int lfipc_listener_accept(lfipc_listener *l, int64_t timeout_ns,
				    lfipc_conn **out);

/**
 * Stop serving and free the handle. Clients waiting to be accepted, and
 * later connects, get -ECONNREFUSED until a server takes the listener over
 * with lfipc_listener_open(); connections already accepted are not
 * affected. The listener stays in the region until lfipc_object_remove(),
 * which does not remove the Pipes of connections that still exist (they
 * are named "<listener>#<hex id>": remove them too, or wait until they are
 * closed and a last connect or accept has reclaimed them). NULL is a
 * no-op.
 * Concurrency: no other thread may use l at the same time.
 */
LFIPC_API void lfipc_listener_close(lfipc_listener *l);

/**
 * Connect to the listener name in r (Python's Client): wait until its
 * server accepts, and return this side of the new connection in *out.
 *
 * Blocks until accepted, up to timeout_ns. A client that gives up (timeout)
 * leaves nothing behind: the server never sees its connection, or reads
 * end-of-file on it if it accepted at that very moment.
 *
 * Return: 0 and *out; -ECONNREFUSED the listener has no live server, or
 * its server died or closed it while we waited; -EBUSY the backlog is full
 * or max_conns connections exist, or the names of new connections'
 * Pipes ("<listener>#<hex id>", nine in a row) are taken by objects that
 * are no connection of this listener, such as the Pipes an earlier
 * listener of the same name left (at once, whatever the timeout; a later
 * connect tries other names); -EAGAIN
 * not accepted at once and LFIPC_NOWAIT; -ETIMEDOUT; -EINTR (an
 * interruptible thread only: see lfipc_thread_set_interruptible());
 * -ENOENT no such object;
 * -EINVAL the object is not a listener, or a NULL argument; -ENAMETOOLONG;
 * -ENOSPC no room in the region for the connection's Pipe; -EPROTO the
 * listener's memory makes no sense; -ENOMEM; -EUSERS.
 * Concurrency: any number of threads and processes at once.
 */
LFIPC_API int lfipc_listener_connect(lfipc_region *r, const char *name,
				     int64_t timeout_ns, lfipc_conn **out);

/**
 * Listener status: lfipc_object_stat(r, name, LFIPC_OBJ_LISTENER, &st)
 * (lfipc/inspect.h) fills it without serving or connecting; the caller
 * sets struct_size, as for every status structure there. Connections
 * closed by both sides but not yet reclaimed (the next connect or accept
 * does that) still count in connections.
 */
typedef struct lfipc_listener_status {
	size_t struct_size;   /**< set by the caller: sizeof(this struct) */
	bool serving;	      /**< a process is its server (maybe dead) */
	pid_t server_pid;     /**< its pid (diagnostic), 0 if none */
	bool server_alive;    /**< false: it died; clients are refused */
	unsigned backlog;     /**< clients that may wait at once */
	unsigned max_conns;   /**< connections that may exist at once */
	unsigned waiting;     /**< clients waiting to be accepted */
	unsigned connections; /**< accepted, not yet closed by both sides */
	size_t ring_bytes;    /**< ring size of each connection's Pipe */
} lfipc_listener_status;

#ifdef __cplusplus
}
#endif

#endif /* LFIPC_LISTENER_H */
