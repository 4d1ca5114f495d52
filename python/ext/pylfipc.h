/* SPDX-License-Identifier: MIT */
/*
 * pylfipc.h - declarations shared by the files of the lfipc._lfipc
 * extension module (the CPython binding of liblfipc).
 *
 * Every Python object of the binding holds a strong reference to its
 * Region object and a per-process library handle. The region is unmapped
 * only when its Region object is closed and no object of the binding still
 * uses it (RegionObject.nobjs), so a handle never outlives its mapping.
 *
 * Blocking: a call first tries without waiting, holding the GIL; when it
 * would block it releases the GIL and waits in chunks of at most
 * LFPY_CHUNK_NS, checking for signals (PyErr_CheckSignals) between chunks,
 * so Ctrl-C raises KeyboardInterrupt promptly. The library's own waits
 * restart after EINTR; an interruptible wait in the library would make the
 * chunks unnecessary.
 */
#ifndef PYLFIPC_H
#define PYLFIPC_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdbool.h>
#include <stdint.h>

#include <lfipc.h>

/* Longest chunk of one blocking library call between signal checks. */
#define LFPY_CHUNK_NS ((int64_t)20 * 1000 * 1000)

/* Object kinds, as stored in pickles (one character each). */
#define LFPY_KIND_QUEUE 'Q'
#define LFPY_KIND_SIMPLEQUEUE 'S'
#define LFPY_KIND_JQUEUE 'J'
#define LFPY_KIND_LOCK 'L'
#define LFPY_KIND_RLOCK 'R'
#define LFPY_KIND_SEM 's'
#define LFPY_KIND_BSEM 'b'
#define LFPY_KIND_EVENT 'E'
#define LFPY_KIND_COND 'C'
#define LFPY_KIND_BARRIER 'B'
#define LFPY_KIND_ARRAY 'A'
#define LFPY_KIND_CONN 'P'

typedef struct {
	PyObject_HEAD
	lfipc_region *r;     /* NULL once unmapped */
	PyObject *name;      /* str for a named region, None for anonymous */
	Py_ssize_t nobjs;    /* live binding objects using this region */
	int closing;         /* close() was called: unmap when nobjs == 0 */
	size_t size;
	unsigned long long dev, ino; /* identity of the region's file */
	PyObject *weakreflist;
	PyObject *dict;
} RegionObject;

/*
 * The part every object of the binding (not Region) starts with. ro holds
 * one use of the region (lfpy_region_use), released by lfpy_obj_clear()
 * after the object's library handle is closed.
 */
#define LFPY_HEAD                                                            \
	PyObject_HEAD                                                        \
	RegionObject *ro;                                                    \
	PyObject *weakreflist;                                               \
	char name[LFIPC_NAME_MAX + 1]; /* "" for an embedded lock */

typedef struct {
	LFPY_HEAD
} LfpyObject;

/* Fill the common part of a new object: a reference to ro (whose use the
 * caller took for it) and the name. */
void lfpy_obj_set(void *self, RegionObject *ro, const char *name);
/* The common part of a dealloc, after the library handle is closed. */
void lfpy_obj_clear(void *self);
/* Getters of the common part: "name" (None if empty) and "region". */
PyObject *lfpy_obj_get_name(PyObject *self, void *c);
PyObject *lfpy_obj_get_region(PyObject *self, void *c);
#define LFPY_GETSET_COMMON                                                   \
	{"name", lfpy_obj_get_name, NULL, "the object's name in its region"}, \
	{"region", lfpy_obj_get_region, NULL, "the object's Region"}

/* Module state (single-phase module: one interpreter). */
struct lfpy_state {
	PyObject *empty;	  /* queue.Empty */
	PyObject *full;		  /* queue.Full */
	PyObject *shutdown;	  /* queue.ShutDown (3.13) or lfipc.ShutDown */
	PyObject *broken_barrier; /* threading.BrokenBarrierError */
	PyObject *buffer_too_short; /* multiprocessing.BufferTooShort */
	PyObject *owner_dead_warning; /* lfipc.OwnerDeadWarning */
	PyObject *unsupported;	  /* io.UnsupportedOperation */
	PyObject *loads;	  /* pickle.loads */
	PyObject *pickler_type;	  /* pickle.Pickler (_pickle's) */
	PyObject *copyreg_table;  /* copyreg.dispatch_table */
	PyObject *extra_reducers; /* ForkingPickler._extra_reducers or NULL */
	PyObject *default_region_hook; /* callable(min_bytes, fresh) */
	PyObject *rebuild;	  /* _lfipc._rebuild */
};

extern struct lfpy_state lfpy;
extern PyTypeObject RegionType, QueueType, SimpleQueueType, JoinableQueueType,
	LockType, RLockType, SemaphoreType, BoundedSemaphoreType, EventType,
	ConditionType, BarrierType, SharedArrayType, ConnectionType;

/* ---- module.c ------------------------------------------------------- */

/* Raise the exception for library error rc (< 0): OSError(errno, text),
 * which Python maps to its subclass (FileExistsError, ...). Returns NULL. */
PyObject *lfpy_err(int rc);
int lfpy_err_int(int rc); /* the same, returning -1 */
/* None for rc >= 0, else lfpy_err(rc). */
PyObject *lfpy_none(int rc);

/*
 * Parse METH_FASTCALL | METH_KEYWORDS arguments: names[0..n) in order,
 * the first nreq of them required; out[i] keeps the caller's default when
 * the argument is absent (borrowed references). Return 0 or -1 with
 * TypeError.
 */
int lfpy_args(const char *fname, PyObject *const *args, Py_ssize_t nargs,
	      PyObject *kwnames, int nreq, int n, const char *const *names,
	      PyObject **out);

/* Convert multiprocessing's (block, timeout) to a library timeout. A false
 * block means LFIPC_NOWAIT; a None timeout LFIPC_FOREVER; a number is
 * seconds (negative counts as 0). Return 0, or -1 with an exception. */
int lfpy_timeout(PyObject *block, PyObject *timeout, int64_t *out);
/* Only a timeout (None = forever). */
int lfpy_timeout1(PyObject *timeout, int64_t *out);

int64_t lfpy_now_ns(void);

typedef int (*lfpy_waitfn)(void *ctx, int64_t timeout_ns);
/*
 * Run fn(ctx, t) until it returns something other than -EAGAIN or
 * -ETIMEDOUT or timeout_ns has passed, releasing the GIL during each call
 * and checking for signals between calls of at most LFPY_CHUNK_NS. The
 * caller has already tried with LFIPC_NOWAIT. Return: fn's result,
 * -ETIMEDOUT when the timeout passed, or LFPY_EXC with a Python exception
 * set (a signal handler raised).
 */
#define LFPY_EXC (-100000)
int lfpy_block(lfpy_waitfn fn, void *ctx, int64_t timeout_ns);

/* Pickle obj with multiprocessing's reducers (Connections, sockets, shared
 * ctypes, ...) as multiprocessing does, protocol 5. New bytes or NULL. */
PyObject *lfpy_dumps(PyObject *obj);
/* pickle.loads of len bytes at p. */
PyObject *lfpy_loads(const void *p, size_t len);

/* A fresh object name "<kind><tag>.<counter>" (unique in this process
 * incarnation; creation retries on -EEXIST). buf >= 40 bytes. */
void lfpy_autoname(char kind, char *buf, size_t buflen);

/* Resolve the region argument of a constructor: a Region, or None for the
 * default region (with room for about need bytes; fresh: a new one).
 * New reference, or NULL with an exception. */
RegionObject *lfpy_region_arg(PyObject *region, size_t need, bool fresh);
/* Object name argument: NULL/None -> auto name into buf; else the str's
 * UTF-8 (checked: 1..maxlen bytes, no NUL). 0 or -1 with exception. */
int lfpy_name_arg(PyObject *name, char kind, char *buf, size_t maxlen);

/*
 * Create an object: resolve the region argument (None: the default region,
 * asked for about need bytes), make the name (name_arg None: automatic,
 * retried on -EEXIST), call fn(r, name, ctx) and, if the default region is
 * full (-ENOSPC), retry once in a fresh default region. On success returns
 * the region (new reference, one use taken: lfpy_region_use) with the name
 * in name_out (LFIPC_NAME_MAX + 1 bytes); NULL with an exception otherwise.
 */
typedef int (*lfpy_createfn)(lfipc_region *r, const char *name, void *ctx);
RegionObject *lfpy_create(PyObject *region_arg, PyObject *name_arg, char kind,
			  size_t need, size_t maxname, lfpy_createfn fn,
			  void *ctx, char *name_out);

/* Take/drop a use of the region by a binding object. */
int lfpy_region_use(RegionObject *ro); /* -1 with ValueError if closed */
void lfpy_region_unuse(RegionObject *ro);

/* (region, kind, name, extra) -> the (callable, args) of __reduce__. */
PyObject *lfpy_reduce(RegionObject *ro, char kind, const char *name,
		      PyObject *extra);

/* Warn that a lock was taken over from a dead owner (OwnerDeadWarning).
 * Return 0, or -1 if the warning was turned into an exception. */
int lfpy_warn_owner_dead(PyObject *lock);

/* ---- per-type constructors used by _rebuild and by other types ------- */
PyObject *lfpy_queue_open(RegionObject *ro, char kind, const char *name);
PyObject *lfpy_lock_open(RegionObject *ro, char kind, const char *name);
PyObject *lfpy_lock_wrap(RegionObject *ro, lfipc_lock *l, PyObject *owner,
			 PyObject *owner_name);
lfipc_lock *lfpy_lock_handle(PyObject *lock); /* NULL if not our Lock */
void lfpy_lock_set_owner_died(PyObject *lock, int died);
PyObject *lfpy_sync_open(RegionObject *ro, char kind, const char *name,
			 PyObject *extra);
PyObject *lfpy_array_open(RegionObject *ro, const char *name);
PyObject *lfpy_conn_open(RegionObject *ro, const char *name, int end,
			 int readable, int writable);

int lfpy_region_type_init(PyObject *m);
int lfpy_queue_types_init(PyObject *m);
int lfpy_sync_types_init(PyObject *m);
int lfpy_array_type_init(PyObject *m);
int lfpy_pipe_types_init(PyObject *m);
extern PyMethodDef lfpy_pipe_functions[];

#endif /* PYLFIPC_H */
