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
 * would block it releases the GIL and makes one library call with the
 * caller's whole timeout, with the thread made interruptible
 * (lfipc_thread_set_interruptible): a signal whose handler runs during
 * the sleep ends the call with -EINTR, having done nothing; the binding
 * then runs Python's handlers (PyErr_CheckSignals), raises what they
 * raise (KeyboardInterrupt) or calls again with the time left. An idle
 * waiter so wakes no more often than the library's own waits do.
 */
#ifndef PYLFIPC_H
#define PYLFIPC_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdbool.h>
#include <stdint.h>

#include <lfipc.h>

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

/* The first fields of the PyTypeObject of an object type with LFPY_HEAD
 * (Python name, C struct, dealloc and repr functions). */
#define LFPY_TYPE_HEAD(pyname, obj, dealloc, repr)                           \
	PyVarObject_HEAD_INIT(NULL, 0) /* ends with a comma */             \
	.tp_name = pyname,                                                    \
	.tp_basicsize = sizeof(obj), .tp_dealloc = (destructor)(dealloc),     \
	.tp_repr = (reprfunc)(repr),                                          \
	.tp_weaklistoffset = offsetof(obj, weakreflist)

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
/* The tail of a call returning a bool from r: 1 True, 0 False, < 0 NULL
 * (the exception is already set). */
PyObject *lfpy_bool(int r);
/* The result of a wait that returns whether it happened (Event.wait,
 * JoinableQueue.join): True for rc >= 0, False for -EAGAIN/-ETIMEDOUT,
 * NULL for LFPY_EXC (exception set) or another error (lfpy_err). */
PyObject *lfpy_waited(int rc);

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

/*
 * Parse the arguments of multiprocessing's blocking calls (METH_FASTCALL |
 * METH_KEYWORDS): "([lead,] block=True, timeout=None)" into a library
 * timeout *t (lfpy_timeout). lead names a leading argument (NULL: none);
 * it is required when *lead_out is NULL, else *lead_out is its default.
 * Return 0, or -1 with an exception.
 */
int lfpy_parse_block_timeout(const char *fname, PyObject *const *args,
			     Py_ssize_t nargs, PyObject *kwnames,
			     const char *lead, PyObject **lead_out, int64_t *t);
/* The same for "(timeout=...)": *timeout_out keeps the caller's default
 * when the argument is absent; *t is lfpy_timeout1 of the result. */
int lfpy_parse_timeout(const char *fname, PyObject *const *args,
		       Py_ssize_t nargs, PyObject *kwnames,
		       PyObject **timeout_out, int64_t *t);

int64_t lfpy_now_ns(void);

typedef int (*lfpy_waitfn)(void *ctx, int64_t timeout_ns);
/*
 * Call fn(ctx, t) without the GIL, interruptible, with t the time left of
 * timeout_ns (LFIPC_FOREVER: forever), until it returns something other
 * than -EINTR; after an -EINTR run the signal handlers. fn must do nothing
 * when it returns -EINTR (every library call honours that, except a pipe
 * message larger than the ring: see pipe.c). The caller has already tried
 * with LFIPC_NOWAIT. Return: fn's result (-ETIMEDOUT when the timeout
 * passed), or LFPY_EXC with a Python exception set (a signal handler
 * raised).
 */
#define LFPY_EXC (-100000)
int lfpy_block(lfpy_waitfn fn, void *ctx, int64_t timeout_ns);
/* fn(ctx, timeout_ns) once without the GIL, not interruptible (for what
 * must not be abandoned half-way). Return fn's result. */
int lfpy_uninterruptible(lfpy_waitfn fn, void *ctx, int64_t timeout_ns);
/* fn(ctx, LFIPC_NOWAIT) holding the GIL, then, if it returned -EAGAIN and
 * timeout_ns is not LFIPC_NOWAIT, lfpy_block(fn, ctx, timeout_ns). */
int lfpy_call(lfpy_waitfn fn, void *ctx, int64_t timeout_ns);

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

/* ---- opening objects by name ---------------------------------------- */

/*
 * Open the existing object name of kind in ro as a Python object of type
 * (NULL: the kind's own type); extra is what its __reduce__ pickled
 * (None if nothing). The openers of _rebuild and of create=False.
 * New reference, or NULL with an exception.
 */
typedef PyObject *(*lfpy_openfn)(PyTypeObject *type, RegionObject *ro,
				 char kind, const char *name, PyObject *extra);
PyObject *lfpy_queue_open(PyTypeObject *type, RegionObject *ro, char kind,
			  const char *name, PyObject *extra);
PyObject *lfpy_lock_open(PyTypeObject *type, RegionObject *ro, char kind,
			 const char *name, PyObject *extra);
PyObject *lfpy_sem_open(PyTypeObject *type, RegionObject *ro, char kind,
			const char *name, PyObject *extra);
PyObject *lfpy_event_open(PyTypeObject *type, RegionObject *ro, char kind,
			  const char *name, PyObject *extra);
PyObject *lfpy_cond_open(PyTypeObject *type, RegionObject *ro, char kind,
			 const char *name, PyObject *extra);
PyObject *lfpy_barrier_open(PyTypeObject *type, RegionObject *ro, char kind,
			    const char *name, PyObject *extra);
/*
 * A constructor's create argument: if it is false, open the existing
 * object instead: the name argument is required (ValueError otherwise;
 * at most maxname bytes, 0: LFIPC_NAME_MAX), region as for
 * lfpy_region_arg, then *res = open(type, region, kind, name, extra).
 * Return 1 when the constructor is done (*res: the object, or NULL with
 * an exception), 0 when it is to create the object.
 */
int lfpy_open_unless_create(PyObject *create, PyTypeObject *type,
			    PyObject *region, PyObject *name, char kind,
			    size_t maxname, PyObject *extra, lfpy_openfn open,
			    PyObject **res);

/* The keyword paragraph of the synchronisation types' docstrings. */
#define LFPY_SYNC_KW_DOC                                                     \
	"Keywords: region (an lfipc.Region; default: the process's default "  \
	"region), name (default: automatic), create=False to open an "        \
	"existing object by name. Picklable: a child process gets the same "  \
	"object."

/* ---- used across types ------------------------------------------------ */

/*
 * acquire() of Lock, RLock and Condition (their lfipc_lock l, shown as
 * who in messages): 1 acquired, 0 not, -1 error (an exception is set; if
 * it comes from an OwnerDeadWarning turned into an error, the lock is
 * held). *owner_died reports a dead previous owner.
 */
int lfpy_lock_acquire(lfipc_lock *l, PyObject *who, int64_t t,
		      int *owner_died);
/* release() of Lock, RLock and Condition: 0, or -1 with the exception
 * multiprocessing raises. */
int lfpy_lock_release(lfipc_lock *l, PyObject *who);
PyObject *lfpy_lock_wrap(RegionObject *ro, lfipc_lock *l, PyObject *owner,
			 PyObject *owner_name);
lfipc_lock *lfpy_lock_handle(PyObject *lock); /* NULL if not our Lock */
void lfpy_lock_set_owner_died(PyObject *lock, int died);
PyObject *lfpy_array_open(RegionObject *ro, const char *name);
PyObject *lfpy_conn_open(RegionObject *ro, const char *name, int end,
			 int readable, int writable);

/*
 * The lfipc_waitable of o (its get/recv side, as its fileno() watches) if
 * o is an object lfipc_wait_any() can wait for: 1 and *w filled; 0 o is
 * of another type; -1 with an exception (closed).
 */
int lfpy_queue_waitable(PyObject *o, struct lfipc_waitable *w);
int lfpy_conn_waitable(PyObject *o, struct lfipc_waitable *w);
int lfpy_event_waitable(PyObject *o, struct lfipc_waitable *w);

/* PyType_Ready and add to module m each of types[0..n). 0 or -1. */
int lfpy_add_types(PyObject *m, PyTypeObject *const *types, size_t n);

int lfpy_region_type_init(PyObject *m);
int lfpy_queue_types_init(PyObject *m);
int lfpy_array_type_init(PyObject *m);
int lfpy_pipe_types_init(PyObject *m);
extern PyMethodDef lfpy_pipe_functions[];
extern PyMethodDef lfpy_wait_functions[];

#endif /* PYLFIPC_H */
