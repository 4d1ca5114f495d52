/* SPDX-License-Identifier: MIT */
/*
 * sync.c - Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition and
 * Barrier: multiprocessing.synchronize's interface over lfipc/sync.h.
 *
 * A Lock whose owner process died holding it is taken over by the next
 * acquire(), which returns True, sets the lock object's owner_died
 * attribute and issues an lfipc.OwnerDeadWarning (a RuntimeWarning: a
 * warnings filter can turn it into an exception, raised with the lock
 * held).
 */
#include "pylfipc.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

/* ---- Lock and RLock ------------------------------------------------------- */

typedef struct {
	LFPY_HEAD
	lfipc_lock *l;
	PyObject *owner; /* the object whose handle owns l (embedded), or NULL */
	char kind;
	int owner_died;
} LockObject;

static int lock_fn(void *p, int64_t t)
{
	return lfipc_lock_acquire(p, t);
}

static int sleep_fn(void *p, int64_t t)
{
	struct timespec ts = {.tv_sec = t / 1000000000,
			      .tv_nsec = t % 1000000000};

	nanosleep(&ts, NULL);
	return -ETIMEDOUT;
}

/*
 * acquire() of Lock, RLock and Condition: 1 acquired, 0 not, -1 error (an
 * exception is set; if it comes from an OwnerDeadWarning turned into an
 * error, the lock is held). *owner_died reports a dead previous owner.
 */
static int acquire_impl(lfipc_lock *l, PyObject *who, int64_t t,
			int *owner_died)
{
	int rc = lfipc_lock_acquire(l, LFIPC_NOWAIT);

	if (rc == -EAGAIN && t != LFIPC_NOWAIT)
		rc = lfpy_block(lock_fn, l, t);
	switch (rc) {
	case 0:
		*owner_died = 0;
		return 1;
	case -EOWNERDEAD:
		*owner_died = 1;
		return lfpy_warn_owner_dead(who) < 0 ? -1 : 1;
	case -EAGAIN:
	case -ETIMEDOUT:
		return 0;
	case -EDEADLK:
		/* A plain Lock already held by this thread: multiprocessing
		 * would wait (forever, or for the timeout). */
		if (t == LFIPC_NOWAIT)
			return 0;
		if (t > 0) {
			rc = lfpy_block(sleep_fn, NULL, t);
			return rc == LFPY_EXC ? -1 : 0;
		}
		PyErr_Format(PyExc_RuntimeError,
			     "%R.acquire() would wait forever: this thread "
			     "already holds the lock",
			     who);
		return -1;
	case LFPY_EXC:
		return -1;
	}
	lfpy_err(rc);
	return -1;
}

static PyObject *lock_wrap(PyTypeObject *type, RegionObject *ro,
			   lfipc_lock *l, PyObject *owner, const char *name)
{
	LockObject *self = (LockObject *)type->tp_alloc(type, 0);

	if (!self) {
		if (!owner)
			lfipc_lock_close(l);
		lfpy_region_unuse(ro);
		return NULL;
	}
	lfpy_obj_set(self, ro, name);
	self->l = l;
	self->owner = Py_XNewRef(owner);
	self->kind = lfipc_lock_is_recursive(l) ? LFPY_KIND_RLOCK
						: LFPY_KIND_LOCK;
	return (PyObject *)self;
}

PyObject *lfpy_lock_wrap(RegionObject *ro, lfipc_lock *l, PyObject *owner,
			 PyObject *unused)
{
	if (lfpy_region_use(ro) < 0)
		return NULL;
	return lock_wrap(lfipc_lock_is_recursive(l) ? &RLockType : &LockType,
			 ro, l, owner, NULL);
}

lfipc_lock *lfpy_lock_handle(PyObject *o)
{
	if (!PyObject_TypeCheck(o, &LockType))
		return NULL;
	return ((LockObject *)o)->l;
}

void lfpy_lock_set_owner_died(PyObject *o, int died)
{
	if (PyObject_TypeCheck(o, &LockType))
		((LockObject *)o)->owner_died = died;
}

static PyObject *lock_open_typed(PyTypeObject *type, RegionObject *ro,
				 char kind, const char *name)
{
	lfipc_lock *l;
	int rc;

	if (lfpy_region_use(ro) < 0)
		return NULL;
	rc = lfipc_lock_open(ro->r, name, &l);
	if (rc == 0 && lfipc_lock_is_recursive(l) != (kind == LFPY_KIND_RLOCK)) {
		lfipc_lock_close(l);
		rc = -EINVAL;
	}
	if (rc < 0) {
		lfpy_region_unuse(ro);
		return lfpy_err(rc);
	}
	return lock_wrap(type, ro, l, NULL, name);
}

PyObject *lfpy_lock_open(RegionObject *ro, char kind, const char *name)
{
	return lock_open_typed(kind == LFPY_KIND_RLOCK ? &RLockType : &LockType,
			       ro, kind, name);
}

static int lock_create_fn(lfipc_region *r, const char *name, void *p)
{
	void **c = p;

	return lfipc_lock_create(r, name, *(bool *)c[0], (lfipc_lock **)c[1]);
}

static PyObject *lock_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"region", "name", "create", NULL};
	PyObject *region = Py_None, *name = Py_None, *create = Py_True, *res;
	bool rec = PyType_IsSubtype(type, &RLockType);
	char kind = rec ? LFPY_KIND_RLOCK : LFPY_KIND_LOCK;
	char lname[LFIPC_NAME_MAX + 1];
	lfipc_lock *l = NULL;
	void *c[2] = {&rec, &l};
	RegionObject *ro;
	int cr;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|$OOO", kwlist, &region,
					 &name, &create))
		return NULL;
	cr = PyObject_IsTrue(create);
	if (cr < 0)
		return NULL;
	if (!cr) {
		if (name == Py_None) {
			PyErr_SetString(PyExc_ValueError,
					"create=False needs the object's name");
			return NULL;
		}
		if (lfpy_name_arg(name, kind, lname, LFIPC_NAME_MAX) < 0)
			return NULL;
		ro = lfpy_region_arg(region, 0, false);
		if (!ro)
			return NULL;
		res = lock_open_typed(type, ro, kind, lname);
		Py_DECREF(ro);
		return res;
	}
	ro = lfpy_create(region, name, kind, 4096, LFIPC_NAME_MAX,
			 lock_create_fn, c, lname);
	if (!ro)
		return NULL;
	res = lock_wrap(type, ro, l, NULL, lname);
	Py_DECREF(ro);
	return res;
}

static void lock_dealloc(LockObject *self)
{
	if (!self->owner && self->l)
		lfipc_lock_close(self->l);
	Py_XDECREF(self->owner);
	lfpy_obj_clear(self);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static const char *const acquire_names[] = {"block", "timeout"};

/* (block=True, timeout=None) of the acquire() methods. */
static int acquire_args(PyObject *const *args, Py_ssize_t nargs,
			PyObject *kwnames, int64_t *t)
{
	PyObject *a[2] = {Py_True, Py_None};

	if (nargs == 0 && !kwnames) {
		*t = LFIPC_FOREVER;
		return 0;
	}
	if (lfpy_args("acquire", args, nargs, kwnames, 0, 2, acquire_names,
		      a) < 0)
		return -1;
	return lfpy_timeout(a[0], a[1], t);
}

static PyObject *lock_acquire(LockObject *self, PyObject *const *args,
			      Py_ssize_t nargs, PyObject *kwnames)
{
	int64_t t;
	int r;

	if (acquire_args(args, nargs, kwnames, &t) < 0)
		return NULL;
	r = acquire_impl(self->l, (PyObject *)self, t, &self->owner_died);
	if (r < 0)
		return NULL;
	return PyBool_FromLong(r);
}

/* release() of Lock, RLock and Condition. */
static int release_impl(lfipc_lock *l, PyObject *who)
{
	int rc = lfipc_lock_release(l);

	if (rc == 0)
		return 0;
	if (rc != -EPERM) {
		lfpy_err(rc);
		return -1;
	}
	if (lfipc_lock_is_recursive(l))
		PyErr_SetString(PyExc_AssertionError,
				"attempt to release recursive lock not owned "
				"by thread");
	else if (!lfipc_lock_locked(l))
		PyErr_SetString(PyExc_ValueError,
				"semaphore or lock released too many times");
	else
		PyErr_Format(PyExc_RuntimeError,
			     "%R is held by another thread or process (an "
			     "lfipc Lock is released by its owner)",
			     who);
	return -1;
}

static PyObject *lock_release(LockObject *self, PyObject *unused)
{
	if (release_impl(self->l, (PyObject *)self) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *lock_enter(LockObject *self, PyObject *unused)
{
	int r = acquire_impl(self->l, (PyObject *)self, LFIPC_FOREVER,
			     &self->owner_died);

	if (r < 0)
		return NULL;
	return PyBool_FromLong(r);
}

static PyObject *lock_exit(LockObject *self, PyObject *args)
{
	return lock_release(self, NULL);
}

static PyObject *lock_locked(LockObject *self, PyObject *unused)
{
	return PyBool_FromLong(lfipc_lock_locked(self->l));
}

static PyObject *lock_reduce(LockObject *self, PyObject *unused)
{
	if (self->owner) /* an embedded lock: rebuilt through its owner */
		return Py_BuildValue("(N())",
				     PyObject_GetAttrString(self->owner,
							    "_lfipc_lock"));
	return lfpy_reduce(self->ro, self->kind, self->name, NULL);
}

static PyObject *lock_repr(LockObject *self)
{
	return PyUnicode_FromFormat("<lfipc.%s name='%s' %s>",
				    _PyType_Name(Py_TYPE(self)), self->name,
				    lfipc_lock_locked(self->l) ? "locked"
							       : "unlocked");
}

static PyObject *lock_get_owner_died(LockObject *self, void *c)
{
	return PyBool_FromLong(self->owner_died);
}

static PyMethodDef lock_methods[] = {
	{"acquire", (PyCFunction)(void (*)(void))lock_acquire,
	 METH_FASTCALL | METH_KEYWORDS,
	 "acquire(block=True, timeout=None) -> bool\n\nAcquire the lock, "
	 "waiting up to timeout seconds (None: forever) if block. Returns "
	 "whether it was acquired. If its previous owner process died "
	 "holding it, the lock is taken over: True is returned, owner_died "
	 "is set and an lfipc.OwnerDeadWarning issued (the data the lock "
	 "protects may be half-updated). Releases the GIL while waiting; "
	 "Ctrl-C interrupts it."},
	{"release", (PyCFunction)lock_release, METH_NOARGS,
	 "release()\n\nRelease the lock (one level of an RLock). Only the "
	 "owning thread may release: ValueError if the lock is not held, "
	 "RuntimeError if another thread or process holds it (a Lock; "
	 "AssertionError for an RLock, as multiprocessing)."},
	{"locked", (PyCFunction)lock_locked, METH_NOARGS,
	 "locked() -> bool\n\nIs the lock held by anybody (a snapshot)?"},
	{"__enter__", (PyCFunction)lock_enter, METH_NOARGS, NULL},
	{"__exit__", (PyCFunction)lock_exit, METH_VARARGS, NULL},
	{"__reduce__", (PyCFunction)lock_reduce, METH_NOARGS, NULL},
	{NULL},
};

static PyGetSetDef lock_getset[] = {
	{"owner_died", (getter)lock_get_owner_died, NULL,
	 "True if the last acquire() through this object took the lock "
	 "over from a process that died holding it"},
	LFPY_GETSET_COMMON,
	{NULL},
};

#define SYNC_KW_DOC                                                          \
	"Keywords: region (an lfipc.Region; default: the process's default "  \
	"region), name (default: automatic), create=False to open an "        \
	"existing object by name. Picklable: a child process gets the same "  \
	"object."

PyTypeObject LockType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "lfipc.Lock",
	.tp_basicsize = sizeof(LockObject),
	.tp_dealloc = (destructor)lock_dealloc,
	.tp_repr = (reprfunc)lock_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "Lock(*, region=None, name=None, create=True)\n--\n\n"
		  "A process-shared non-recursive lock (multiprocessing.Lock) "
		  "with an owner: the owning thread releases it, and if the "
		  "owning process dies the next acquire() takes it over "
		  "(owner_died, OwnerDeadWarning). Re-acquiring it from the "
		  "owning thread without a timeout raises RuntimeError "
		  "instead of deadlocking. " SYNC_KW_DOC,
	.tp_weaklistoffset = offsetof(LockObject, weakreflist),
	.tp_methods = lock_methods,
	.tp_getset = lock_getset,
	.tp_new = lock_new,
};

PyTypeObject RLockType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "lfipc.RLock",
	.tp_basicsize = sizeof(LockObject),
	.tp_dealloc = (destructor)lock_dealloc,
	.tp_repr = (reprfunc)lock_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "RLock(*, region=None, name=None, create=True)\n--\n\n"
		  "A process-shared recursive lock (multiprocessing.RLock): "
		  "the owning thread may acquire it again and must release it "
		  "as many times. A dead owner is handled as for Lock. "
		  SYNC_KW_DOC,
	.tp_weaklistoffset = offsetof(LockObject, weakreflist),
	.tp_base = &LockType,
	.tp_new = lock_new,
};

/* ---- Semaphore and BoundedSemaphore ----------------------------------------- */

typedef struct {
	LFPY_HEAD
	lfipc_sem *s;
	char kind;
} SemObject;

static int sem_fn(void *p, int64_t t)
{
	return lfipc_sem_acquire(p, t);
}

static PyObject *sem_wrap(PyTypeObject *type, RegionObject *ro, lfipc_sem *s,
			  char kind, const char *name)
{
	SemObject *self = (SemObject *)type->tp_alloc(type, 0);

	if (!self) {
		lfipc_sem_close(s);
		lfpy_region_unuse(ro);
		return NULL;
	}
	lfpy_obj_set(self, ro, name);
	self->s = s;
	self->kind = kind;
	return (PyObject *)self;
}

struct sem_create {
	unsigned value;
	bool bounded;
	lfipc_sem *s;
};

static int sem_create_fn(lfipc_region *r, const char *name, void *p)
{
	struct sem_create *c = p;

	return lfipc_sem_create(r, name, c->value, c->bounded, &c->s);
}

static PyObject *open_by_name(PyTypeObject *type, PyObject *region,
			      PyObject *name, char kind, PyObject *extra);

static PyObject *sem_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"value", "region", "name", "create", NULL};
	PyObject *region = Py_None, *name = Py_None, *create = Py_True, *res;
	bool bounded = PyType_IsSubtype(type, &BoundedSemaphoreType);
	char kind = bounded ? LFPY_KIND_BSEM : LFPY_KIND_SEM;
	char sname[LFIPC_NAME_MAX + 1];
	long long value = 1;
	struct sem_create c;
	RegionObject *ro;
	int cr;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|L$OOO", kwlist, &value,
					 &region, &name, &create))
		return NULL;
	cr = PyObject_IsTrue(create);
	if (cr < 0)
		return NULL;
	if (!cr)
		return open_by_name(type, region, name, kind, NULL);
	if (value < 0) {
		PyErr_SetString(PyExc_ValueError,
				"semaphore initial value must be >= 0");
		return NULL;
	}
	if (value > LFIPC_SEM_VALUE_MAX) {
		PyErr_SetString(PyExc_OverflowError,
				"semaphore initial value is too large");
		return NULL;
	}
	c.value = (unsigned)value;
	c.bounded = bounded;
	ro = lfpy_create(region, name, kind, 4096, LFIPC_NAME_MAX,
			 sem_create_fn, &c, sname);
	if (!ro)
		return NULL;
	res = sem_wrap(type, ro, c.s, kind, sname);
	Py_DECREF(ro);
	return res;
}

static void sem_dealloc(SemObject *self)
{
	lfipc_sem_close(self->s);
	lfpy_obj_clear(self);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static int sem_acquire_impl(SemObject *self, int64_t t)
{
	int rc = lfipc_sem_acquire(self->s, LFIPC_NOWAIT);

	if (rc == -EAGAIN && t != LFIPC_NOWAIT)
		rc = lfpy_block(sem_fn, self->s, t);
	if (rc == 0 || rc == -EOWNERDEAD)
		return 1;
	if (rc == -EAGAIN || rc == -ETIMEDOUT)
		return 0;
	if (rc != LFPY_EXC)
		lfpy_err(rc);
	return -1;
}

static PyObject *sem_acquire(SemObject *self, PyObject *const *args,
			     Py_ssize_t nargs, PyObject *kwnames)
{
	int64_t t;
	int r;

	if (acquire_args(args, nargs, kwnames, &t) < 0)
		return NULL;
	r = sem_acquire_impl(self, t);
	if (r < 0)
		return NULL;
	return PyBool_FromLong(r);
}

static PyObject *sem_release(SemObject *self, PyObject *unused)
{
	int rc = lfipc_sem_release(self->s);

	if (rc == -EOVERFLOW) {
		if (self->kind == LFPY_KIND_BSEM)
			PyErr_SetString(PyExc_ValueError,
					"semaphore or lock released too many "
					"times");
		else
			PyErr_SetString(PyExc_OverflowError,
					"semaphore value would exceed its "
					"maximum");
		return NULL;
	}
	if (rc < 0)
		return lfpy_err(rc);
	Py_RETURN_NONE;
}

static PyObject *sem_get_value(SemObject *self, PyObject *unused)
{
	int v = lfipc_sem_value(self->s);

	if (v < 0)
		return lfpy_err(v);
	return PyLong_FromLong(v);
}

static PyObject *sem_enter(SemObject *self, PyObject *unused)
{
	int r = sem_acquire_impl(self, LFIPC_FOREVER);

	if (r < 0)
		return NULL;
	return PyBool_FromLong(r);
}

static PyObject *sem_exit(SemObject *self, PyObject *args)
{
	return sem_release(self, NULL);
}

static PyObject *sem_reduce(SemObject *self, PyObject *unused)
{
	return lfpy_reduce(self->ro, self->kind, self->name, NULL);
}

static PyObject *sem_repr(SemObject *self)
{
	if (self->kind == LFPY_KIND_BSEM)
		return PyUnicode_FromFormat(
			"<lfipc.BoundedSemaphore name='%s' value=%d maxvalue=%u>",
			self->name, lfipc_sem_value(self->s),
			lfipc_sem_max(self->s));
	return PyUnicode_FromFormat("<lfipc.Semaphore name='%s' value=%d>",
				    self->name, lfipc_sem_value(self->s));
}

static PyMethodDef sem_methods[] = {
	{"acquire", (PyCFunction)(void (*)(void))sem_acquire,
	 METH_FASTCALL | METH_KEYWORDS,
	 "acquire(block=True, timeout=None) -> bool\n\nTake one unit, "
	 "waiting up to timeout seconds (None: forever) while the value is "
	 "0. Returns whether a unit was taken. Interruptible."},
	{"release", (PyCFunction)sem_release, METH_NOARGS,
	 "release()\n\nReturn one unit (any thread or process may). A "
	 "BoundedSemaphore raises ValueError above its initial value."},
	{"get_value", (PyCFunction)sem_get_value, METH_NOARGS,
	 "get_value() -> int\n\nThe current value (a snapshot)."},
	{"__enter__", (PyCFunction)sem_enter, METH_NOARGS, NULL},
	{"__exit__", (PyCFunction)sem_exit, METH_VARARGS, NULL},
	{"__reduce__", (PyCFunction)sem_reduce, METH_NOARGS, NULL},
	{NULL},
};

static PyGetSetDef sem_getset[] = {
	LFPY_GETSET_COMMON,
	{NULL},
};

PyTypeObject SemaphoreType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "lfipc.Semaphore",
	.tp_basicsize = sizeof(SemObject),
	.tp_dealloc = (destructor)sem_dealloc,
	.tp_repr = (reprfunc)sem_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "Semaphore(value=1, *, region=None, name=None, create=True)"
		  "\n--\n\nA process-shared counting semaphore "
		  "(multiprocessing.Semaphore), without owner. " SYNC_KW_DOC,
	.tp_weaklistoffset = offsetof(SemObject, weakreflist),
	.tp_methods = sem_methods,
	.tp_getset = sem_getset,
	.tp_new = sem_new,
};

PyTypeObject BoundedSemaphoreType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "lfipc.BoundedSemaphore",
	.tp_basicsize = sizeof(SemObject),
	.tp_dealloc = (destructor)sem_dealloc,
	.tp_repr = (reprfunc)sem_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "BoundedSemaphore(value=1, *, region=None, name=None, "
		  "create=True)\n--\n\nA Semaphore whose release() above the "
		  "initial value raises ValueError. " SYNC_KW_DOC,
	.tp_weaklistoffset = offsetof(SemObject, weakreflist),
	.tp_base = &SemaphoreType,
	.tp_new = sem_new,
};

/* ---- Event ------------------------------------------------------------------ */

typedef struct {
	LFPY_HEAD
	lfipc_event *e;
} EventObject;

static int event_fn(void *p, int64_t t)
{
	return lfipc_event_wait(p, t);
}

static PyObject *event_wrap(PyTypeObject *type, RegionObject *ro,
			    lfipc_event *e, const char *name)
{
	EventObject *self = (EventObject *)type->tp_alloc(type, 0);

	if (!self) {
		lfipc_event_close(e);
		lfpy_region_unuse(ro);
		return NULL;
	}
	lfpy_obj_set(self, ro, name);
	self->e = e;
	return (PyObject *)self;
}

static int event_create_fn(lfipc_region *r, const char *name, void *p)
{
	return lfipc_event_create(r, name, (lfipc_event **)p);
}

static PyObject *event_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"region", "name", "create", NULL};
	PyObject *region = Py_None, *name = Py_None, *create = Py_True, *res;
	char ename[LFIPC_NAME_MAX + 1];
	lfipc_event *e;
	RegionObject *ro;
	int cr;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|$OOO", kwlist, &region,
					 &name, &create))
		return NULL;
	cr = PyObject_IsTrue(create);
	if (cr < 0)
		return NULL;
	if (!cr)
		return open_by_name(type, region, name, LFPY_KIND_EVENT, NULL);
	ro = lfpy_create(region, name, LFPY_KIND_EVENT, 4096, LFIPC_NAME_MAX,
			 event_create_fn, &e, ename);
	if (!ro)
		return NULL;
	res = event_wrap(type, ro, e, ename);
	Py_DECREF(ro);
	return res;
}

static void event_dealloc(EventObject *self)
{
	lfipc_event_close(self->e);
	lfpy_obj_clear(self);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *event_set(EventObject *self, PyObject *unused)
{
	return lfpy_none(lfipc_event_set(self->e));
}

static PyObject *event_clear(EventObject *self, PyObject *unused)
{
	return lfpy_none(lfipc_event_clear(self->e));
}

static PyObject *event_is_set(EventObject *self, PyObject *unused)
{
	return PyBool_FromLong(lfipc_event_is_set(self->e));
}

static PyObject *event_wait(EventObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"timeout", NULL};
	PyObject *timeout = Py_None;
	int64_t t;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:wait", kwlist,
					 &timeout) ||
	    lfpy_timeout1(timeout, &t) < 0)
		return NULL;
	rc = lfipc_event_wait(self->e, LFIPC_NOWAIT);
	if (rc == -EAGAIN && t != LFIPC_NOWAIT)
		rc = lfpy_block(event_fn, self->e, t);
	if (rc == 0)
		Py_RETURN_TRUE;
	if (rc == -EAGAIN || rc == -ETIMEDOUT)
		Py_RETURN_FALSE;
	if (rc == LFPY_EXC)
		return NULL;
	return lfpy_err(rc);
}

static PyObject *event_reduce(EventObject *self, PyObject *unused)
{
	return lfpy_reduce(self->ro, LFPY_KIND_EVENT, self->name, NULL);
}

static PyObject *event_repr(EventObject *self)
{
	return PyUnicode_FromFormat("<lfipc.Event name='%s' %s>", self->name,
				    lfipc_event_is_set(self->e) ? "set"
								: "unset");
}

static PyMethodDef event_methods[] = {
	{"set", (PyCFunction)event_set, METH_NOARGS,
	 "set()\n\nSet the flag and wake every waiter."},
	{"clear", (PyCFunction)event_clear, METH_NOARGS,
	 "clear()\n\nClear the flag."},
	{"is_set", (PyCFunction)event_is_set, METH_NOARGS,
	 "is_set() -> bool\n\nThe flag."},
	{"wait", (PyCFunction)(void (*)(void))event_wait,
	 METH_VARARGS | METH_KEYWORDS,
	 "wait(timeout=None) -> bool\n\nWait until the flag is set, up to "
	 "timeout seconds (None: forever). Returns True if it was set "
	 "(also if a set() happened while waiting and a clear() since), "
	 "False on timeout. Interruptible."},
	{"__reduce__", (PyCFunction)event_reduce, METH_NOARGS, NULL},
	{NULL},
};

static PyGetSetDef event_getset[] = {
	LFPY_GETSET_COMMON,
	{NULL},
};

PyTypeObject EventType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "lfipc.Event",
	.tp_basicsize = sizeof(EventObject),
	.tp_dealloc = (destructor)event_dealloc,
	.tp_repr = (reprfunc)event_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "Event(*, region=None, name=None, create=True)\n--\n\n"
		  "A process-shared flag (multiprocessing.Event). " SYNC_KW_DOC,
	.tp_weaklistoffset = offsetof(EventObject, weakreflist),
	.tp_methods = event_methods,
	.tp_getset = event_getset,
	.tp_new = event_new,
};

/* ---- Condition -------------------------------------------------------------- */

typedef struct {
	LFPY_HEAD
	lfipc_cond *c;
	int owner_died;
} CondObject;

static PyObject *cond_wrap(PyTypeObject *type, RegionObject *ro,
			   lfipc_cond *c, const char *name)
{
	CondObject *self = (CondObject *)type->tp_alloc(type, 0);

	if (!self) {
		lfipc_cond_close(c);
		lfpy_region_unuse(ro);
		return NULL;
	}
	lfpy_obj_set(self, ro, name);
	self->c = c;
	return (PyObject *)self;
}

struct cond_create {
	lfipc_lock *lock;
	lfipc_cond *c;
};

static int cond_create_fn(lfipc_region *r, const char *name, void *p)
{
	struct cond_create *cc = p;

	return lfipc_cond_create(r, name, cc->lock, &cc->c);
}

static PyObject *cond_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"lock", "region", "name", "create", NULL};
	PyObject *lock = Py_None, *region = Py_None, *name = Py_None;
	PyObject *create = Py_True, *res;
	char cname[LFIPC_NAME_MAX + 1];
	struct cond_create cc = {0};
	RegionObject *ro;
	int cr;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O$OOO", kwlist, &lock,
					 &region, &name, &create))
		return NULL;
	cr = PyObject_IsTrue(create);
	if (cr < 0)
		return NULL;
	if (!cr)
		return open_by_name(type, region, name, LFPY_KIND_COND, NULL);
	if (lock != Py_None) {
		LockObject *lo;

		if (!PyObject_TypeCheck(lock, &LockType)) {
			PyErr_SetString(PyExc_TypeError,
					"Condition(lock): lock must be an "
					"lfipc Lock or RLock");
			return NULL;
		}
		lo = (LockObject *)lock;
		if (region != Py_None && region != (PyObject *)lo->ro) {
			PyErr_SetString(PyExc_ValueError,
					"a Condition lives in its lock's region");
			return NULL;
		}
		region = (PyObject *)lo->ro;
		cc.lock = lo->l;
	}
	ro = lfpy_create(region, name, LFPY_KIND_COND, 8192, LFIPC_NAME_MAX,
			 cond_create_fn, &cc, cname);
	if (!ro)
		return NULL;
	res = cond_wrap(type, ro, cc.c, cname);
	Py_DECREF(ro);
	return res;
}

static void cond_dealloc(CondObject *self)
{
	lfipc_cond_close(self->c);
	lfpy_obj_clear(self);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *cond_acquire(CondObject *self, PyObject *const *args,
			      Py_ssize_t nargs, PyObject *kwnames)
{
	int64_t t;
	int r;

	if (acquire_args(args, nargs, kwnames, &t) < 0)
		return NULL;
	r = acquire_impl(lfipc_cond_lock(self->c), (PyObject *)self, t,
			 &self->owner_died);
	if (r < 0)
		return NULL;
	return PyBool_FromLong(r);
}

static PyObject *cond_release(CondObject *self, PyObject *unused)
{
	if (release_impl(lfipc_cond_lock(self->c), (PyObject *)self) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *cond_enter(CondObject *self, PyObject *unused)
{
	int r = acquire_impl(lfipc_cond_lock(self->c), (PyObject *)self,
			     LFIPC_FOREVER, &self->owner_died);

	if (r < 0)
		return NULL;
	return PyBool_FromLong(r);
}

static PyObject *cond_exit(CondObject *self, PyObject *args)
{
	return cond_release(self, NULL);
}

static int cond_fn(void *p, int64_t t)
{
	return lfipc_cond_wait(p, t);
}

/* 1 notified, 0 timed out, -1 exception (the lock is held in every case). */
static int cond_wait_impl(CondObject *self, int64_t t)
{
	int rc;

	if (t == LFIPC_NOWAIT) {
		Py_BEGIN_ALLOW_THREADS
		rc = lfipc_cond_wait(self->c, LFIPC_NOWAIT);
		Py_END_ALLOW_THREADS
	} else {
		/* Waiting again after a chunk's timeout loses no notify: the
		 * wait returns with the lock held, and a notifier must hold
		 * it. */
		rc = lfpy_block(cond_fn, self->c, t);
	}
	switch (rc) {
	case 0:
		return 1;
	case -EAGAIN:
	case -ETIMEDOUT:
		return 0;
	case -EOWNERDEAD:
		self->owner_died = 1;
		return lfpy_warn_owner_dead((PyObject *)self) < 0 ? -1 : 1;
	case -EPERM:
		PyErr_SetString(PyExc_AssertionError,
				"must acquire() condition before using wait()");
		return -1;
	case LFPY_EXC:
		return -1;
	}
	lfpy_err(rc);
	return -1;
}

static PyObject *cond_wait(CondObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"timeout", NULL};
	PyObject *timeout = Py_None;
	int64_t t;
	int r;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:wait", kwlist,
					 &timeout) ||
	    lfpy_timeout1(timeout, &t) < 0)
		return NULL;
	r = cond_wait_impl(self, t);
	if (r < 0)
		return NULL;
	return PyBool_FromLong(r);
}

static PyObject *cond_wait_for(CondObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"predicate", "timeout", NULL};
	PyObject *pred, *timeout = Py_None, *result;
	int64_t t, deadline = 0;
	int truth;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:wait_for", kwlist,
					 &pred, &timeout) ||
	    lfpy_timeout1(timeout, &t) < 0)
		return NULL;
	if (t > 0)
		deadline = lfpy_now_ns() + t;
	for (;;) {
		result = PyObject_CallNoArgs(pred);
		if (!result)
			return NULL;
		truth = PyObject_IsTrue(result);
		if (truth != 0)
			break;
		if (t == LFIPC_NOWAIT)
			break;
		if (t > 0) {
			int64_t left = deadline - lfpy_now_ns();

			if (left <= 0)
				break;
			Py_DECREF(result);
			if (cond_wait_impl(self, left) < 0)
				return NULL;
		} else {
			Py_DECREF(result);
			if (cond_wait_impl(self, LFIPC_FOREVER) < 0)
				return NULL;
		}
	}
	if (truth < 0) {
		Py_DECREF(result);
		return NULL;
	}
	return result;
}

static PyObject *cond_notify(CondObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"n", NULL};
	Py_ssize_t n = 1;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|n:notify", kwlist, &n))
		return NULL;
	if (n < 0)
		n = 0;
	rc = lfipc_cond_notify(self->c, n > UINT32_MAX ? UINT32_MAX
							: (unsigned)n);
	if (rc == -EPERM) {
		PyErr_SetString(PyExc_AssertionError, "lock is not owned");
		return NULL;
	}
	if (rc < 0)
		return lfpy_err(rc);
	Py_RETURN_NONE;
}

static PyObject *cond_notify_all(CondObject *self, PyObject *unused)
{
	int rc = lfipc_cond_notify_all(self->c);

	if (rc == -EPERM) {
		PyErr_SetString(PyExc_AssertionError, "lock is not owned");
		return NULL;
	}
	if (rc < 0)
		return lfpy_err(rc);
	Py_RETURN_NONE;
}

static PyObject *cond_lock_object(CondObject *self, PyObject *unused)
{
	return lfpy_lock_wrap(self->ro, lfipc_cond_lock(self->c),
			      (PyObject *)self, NULL);
}

static PyObject *cond_reduce(CondObject *self, PyObject *unused)
{
	return lfpy_reduce(self->ro, LFPY_KIND_COND, self->name, NULL);
}

static PyObject *cond_repr(CondObject *self)
{
	return PyUnicode_FromFormat("<lfipc.Condition name='%s'>", self->name);
}

static PyObject *cond_get_owner_died(CondObject *self, void *c)
{
	return PyBool_FromLong(self->owner_died);
}

static PyMethodDef cond_methods[] = {
	{"acquire", (PyCFunction)(void (*)(void))cond_acquire,
	 METH_FASTCALL | METH_KEYWORDS,
	 "acquire(block=True, timeout=None) -> bool\n\nAcquire the "
	 "condition's lock (see Lock.acquire)."},
	{"release", (PyCFunction)cond_release, METH_NOARGS,
	 "release()\n\nRelease the condition's lock."},
	{"wait", (PyCFunction)(void (*)(void))cond_wait,
	 METH_VARARGS | METH_KEYWORDS,
	 "wait(timeout=None) -> bool\n\nRelease the lock (every level of an "
	 "RLock), wait for a notify up to timeout seconds, re-acquire. "
	 "Returns False on timeout. The lock must be held (else "
	 "AssertionError). Interruptible (the lock is held again when "
	 "KeyboardInterrupt propagates)."},
	{"wait_for", (PyCFunction)(void (*)(void))cond_wait_for,
	 METH_VARARGS | METH_KEYWORDS,
	 "wait_for(predicate, timeout=None)\n\nWait until predicate() is "
	 "true, up to timeout seconds in total; return its last value."},
	{"notify", (PyCFunction)(void (*)(void))cond_notify,
	 METH_VARARGS | METH_KEYWORDS,
	 "notify(n=1)\n\nWake up to n of the waiting threads (oldest "
	 "first). The lock must be held (else AssertionError)."},
	{"notify_all", (PyCFunction)cond_notify_all, METH_NOARGS,
	 "notify_all()\n\nWake every waiting thread."},
	{"_lfipc_lock", (PyCFunction)cond_lock_object, METH_NOARGS,
	 "the condition's lock as an lfipc Lock/RLock object"},
	{"__enter__", (PyCFunction)cond_enter, METH_NOARGS, NULL},
	{"__exit__", (PyCFunction)cond_exit, METH_VARARGS, NULL},
	{"__reduce__", (PyCFunction)cond_reduce, METH_NOARGS, NULL},
	{NULL},
};

static PyGetSetDef cond_getset[] = {
	{"owner_died", (getter)cond_get_owner_died, NULL,
	 "the last acquire (or wait's re-acquire) took the lock over from a "
	 "dead process"},
	LFPY_GETSET_COMMON,
	{NULL},
};

PyTypeObject ConditionType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "lfipc.Condition",
	.tp_basicsize = sizeof(CondObject),
	.tp_dealloc = (destructor)cond_dealloc,
	.tp_repr = (reprfunc)cond_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "Condition(lock=None, *, region=None, name=None, "
		  "create=True)\n--\n\nA process-shared condition variable "
		  "(multiprocessing.Condition) over an lfipc Lock or RLock "
		  "(default: a new RLock). No spurious wake-ups. " SYNC_KW_DOC,
	.tp_weaklistoffset = offsetof(CondObject, weakreflist),
	.tp_methods = cond_methods,
	.tp_getset = cond_getset,
	.tp_new = cond_new,
};

/* ---- Barrier ---------------------------------------------------------------- */

typedef struct {
	LFPY_HEAD
	lfipc_barrier *b;
	PyObject *action;
	PyObject *timeout; /* default timeout (None or seconds) */
} BarrierObject;

/*
 * One wait, run by a helper thread: a barrier wait cannot be cut into
 * chunks (a party's timeout breaks the barrier), so the calling thread
 * waits for the helper instead, checking for signals; on Ctrl-C it aborts
 * the barrier (which wakes the helper) and raises.
 */
struct bwait {
	lfipc_barrier *b;
	int64_t timeout;
	int rc, done;
	BarrierObject *self;
	PyObject *exc_type, *exc_val, *exc_tb; /* the action's exception */
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static _Thread_local struct bwait *cur_wait;

static int action_cb(void *arg)
{
	BarrierObject *self = arg;
	PyGILState_STATE g = PyGILState_Ensure();
	PyObject *r = PyObject_CallNoArgs(self->action);
	int rc = 0;

	if (!r) {
		if (cur_wait && !cur_wait->exc_type)
			PyErr_Fetch(&cur_wait->exc_type, &cur_wait->exc_val,
				    &cur_wait->exc_tb);
		else
			PyErr_WriteUnraisable(self->action);
		rc = 1;
	}
	Py_XDECREF(r);
	PyGILState_Release(g);
	return rc;
}

static void *bwait_main(void *p)
{
	struct bwait *w = p;
	int rc;

	cur_wait = w;
	rc = lfipc_barrier_wait(w->b, w->timeout);
	cur_wait = NULL;
	pthread_mutex_lock(&w->mu);
	w->rc = rc;
	w->done = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static int barrier_wait_impl(BarrierObject *self, int64_t t, struct bwait *w)
{
	pthread_condattr_t ca;
	pthread_t th;
	int interrupted = 0;

	*w = (struct bwait){.b = self->b, .timeout = t, .self = self};
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&th, NULL, bwait_main, w) != 0) {
		/* no thread: wait here, not interruptible */
		Py_BEGIN_ALLOW_THREADS
		bwait_main(w);
		Py_END_ALLOW_THREADS
		goto out;
	}
	Py_BEGIN_ALLOW_THREADS
	pthread_mutex_lock(&w->mu);
	while (!w->done) {
		struct timespec ts;
		int64_t end = lfpy_now_ns() + LFPY_CHUNK_NS;

		ts.tv_sec = end / 1000000000;
		ts.tv_nsec = end % 1000000000;
		pthread_cond_timedwait(&w->cv, &w->mu, &ts);
		if (w->done || interrupted)
			continue;
		pthread_mutex_unlock(&w->mu);
		Py_BLOCK_THREADS
		if (PyErr_CheckSignals()) {
			interrupted = 1;
			lfipc_barrier_abort(self->b);
		}
		Py_UNBLOCK_THREADS
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	pthread_join(th, NULL);
	Py_END_ALLOW_THREADS
out:
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	if (interrupted) {
		Py_XDECREF(w->exc_type);
		Py_XDECREF(w->exc_val);
		Py_XDECREF(w->exc_tb);
		return LFPY_EXC;
	}
	return w->rc;
}

static PyObject *barrier_wrap(PyTypeObject *type, RegionObject *ro,
			      lfipc_barrier *b, const char *name,
			      PyObject *action, PyObject *timeout)
{
	BarrierObject *self = (BarrierObject *)type->tp_alloc(type, 0);

	if (!self) {
		lfipc_barrier_close(b);
		lfpy_region_unuse(ro);
		return NULL;
	}
	lfpy_obj_set(self, ro, name);
	self->b = b;
	self->action = action == Py_None ? NULL : Py_XNewRef(action);
	self->timeout = Py_NewRef(timeout ? timeout : Py_None);
	if (self->action)
		lfipc_barrier_set_action(b, action_cb, self);
	return (PyObject *)self;
}

struct barrier_create {
	unsigned parties;
	lfipc_barrier *b;
};

static int barrier_create_fn(lfipc_region *r, const char *name, void *p)
{
	struct barrier_create *c = p;

	return lfipc_barrier_create(r, name, c->parties, &c->b);
}

static PyObject *barrier_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"parties", "action", "timeout", "region",
				 "name", "create", NULL};
	PyObject *action = Py_None, *timeout = Py_None, *region = Py_None;
	PyObject *name = Py_None, *create = Py_True, *res;
	char bname[LFIPC_NAME_MAX + 1];
	struct barrier_create c;
	Py_ssize_t parties = 0;
	RegionObject *ro;
	int64_t t;
	int cr;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|nOO$OOO", kwlist,
					 &parties, &action, &timeout, &region,
					 &name, &create))
		return NULL;
	if (action != Py_None && !PyCallable_Check(action)) {
		PyErr_SetString(PyExc_TypeError, "action must be callable");
		return NULL;
	}
	if (lfpy_timeout1(timeout, &t) < 0)
		return NULL;
	cr = PyObject_IsTrue(create);
	if (cr < 0)
		return NULL;
	if (!cr) {
		PyObject *extra = Py_BuildValue("(OO)", action, timeout);

		if (!extra)
			return NULL;
		res = open_by_name(type, region, name, LFPY_KIND_BARRIER, extra);
		Py_DECREF(extra);
		return res;
	}
	if (parties < 1 || parties > (Py_ssize_t)LFIPC_BARRIER_PARTIES_MAX) {
		PyErr_Format(PyExc_ValueError, "parties must be 1 to %u",
			     LFIPC_BARRIER_PARTIES_MAX);
		return NULL;
	}
	c.parties = (unsigned)parties;
	ro = lfpy_create(region, name, LFPY_KIND_BARRIER, 8192 + 16 * parties,
			 LFIPC_NAME_MAX, barrier_create_fn, &c, bname);
	if (!ro)
		return NULL;
	res = barrier_wrap(type, ro, c.b, bname, action, timeout);
	Py_DECREF(ro);
	return res;
}

static int barrier_traverse(BarrierObject *self, visitproc visit, void *arg)
{
	Py_VISIT(self->action);
	Py_VISIT(self->timeout);
	return 0;
}

static int barrier_clear(BarrierObject *self)
{
	if (self->b)
		lfipc_barrier_set_action(self->b, NULL, NULL);
	Py_CLEAR(self->action);
	Py_CLEAR(self->timeout);
	return 0;
}

static void barrier_dealloc(BarrierObject *self)
{
	PyObject_GC_UnTrack(self);
	barrier_clear(self);
	lfipc_barrier_close(self->b);
	lfpy_obj_clear(self);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *barrier_wait(BarrierObject *self, PyObject *args,
			      PyObject *kw)
{
	static char *kwlist[] = {"timeout", NULL};
	PyObject *timeout = Py_None;
	struct bwait w;
	int64_t t;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:wait", kwlist,
					 &timeout))
		return NULL;
	if (timeout == Py_None)
		timeout = self->timeout;
	if (lfpy_timeout1(timeout, &t) < 0)
		return NULL;
	rc = barrier_wait_impl(self, t, &w);
	if (rc >= 0)
		return PyLong_FromLong(rc);
	if (rc == LFPY_EXC)
		return NULL;
	if (rc == -ECANCELED && w.exc_type) {
		PyErr_Restore(w.exc_type, w.exc_val, w.exc_tb);
		return NULL;
	}
	Py_XDECREF(w.exc_type);
	Py_XDECREF(w.exc_val);
	Py_XDECREF(w.exc_tb);
	if (rc == -EPIPE || rc == -ETIMEDOUT || rc == -EAGAIN ||
	    rc == -ECANCELED) {
		PyErr_SetNone(lfpy.broken_barrier);
		return NULL;
	}
	return lfpy_err(rc);
}

static PyObject *barrier_abort(BarrierObject *self, PyObject *unused)
{
	return lfpy_none(lfipc_barrier_abort(self->b));
}

static PyObject *barrier_reset(BarrierObject *self, PyObject *unused)
{
	return lfpy_none(lfipc_barrier_reset(self->b));
}

static PyObject *barrier_reduce(BarrierObject *self, PyObject *unused)
{
	PyObject *extra = Py_BuildValue("(OO)",
					self->action ? self->action : Py_None,
					self->timeout ? self->timeout : Py_None);
	PyObject *r;

	if (!extra)
		return NULL;
	r = lfpy_reduce(self->ro, LFPY_KIND_BARRIER, self->name, extra);
	Py_DECREF(extra);
	return r;
}

static PyObject *barrier_repr(BarrierObject *self)
{
	return PyUnicode_FromFormat(
		"<lfipc.Barrier name='%s' parties=%u waiting=%u%s>", self->name,
		lfipc_barrier_parties(self->b),
		lfipc_barrier_n_waiting(self->b),
		lfipc_barrier_broken(self->b) ? " broken" : "");
}

static PyObject *barrier_get_parties(BarrierObject *self, void *c)
{
	return PyLong_FromUnsignedLong(lfipc_barrier_parties(self->b));
}

static PyObject *barrier_get_n_waiting(BarrierObject *self, void *c)
{
	return PyLong_FromUnsignedLong(lfipc_barrier_n_waiting(self->b));
}

static PyObject *barrier_get_broken(BarrierObject *self, void *c)
{
	return PyBool_FromLong(lfipc_barrier_broken(self->b));
}

static PyMethodDef barrier_methods[] = {
	{"wait", (PyCFunction)(void (*)(void))barrier_wait,
	 METH_VARARGS | METH_KEYWORDS,
	 "wait(timeout=None) -> int\n\nWait until every party has called "
	 "wait(); return this party's arrival index (0 .. parties-1, the "
	 "last one ran the action). Raises threading.BrokenBarrierError if "
	 "the barrier is or gets broken (abort(), reset(), a party's "
	 "timeout, a party that died while waiting); an exception of the "
	 "action propagates in the party that ran it. Ctrl-C interrupts it "
	 "and breaks the barrier for the other parties."},
	{"abort", (PyCFunction)barrier_abort, METH_NOARGS,
	 "abort()\n\nBreak the barrier: waiting and future wait() calls "
	 "raise BrokenBarrierError until reset()."},
	{"reset", (PyCFunction)barrier_reset, METH_NOARGS,
	 "reset()\n\nReturn the barrier to its empty state; parties "
	 "waiting now get BrokenBarrierError."},
	{"__reduce__", (PyCFunction)barrier_reduce, METH_NOARGS, NULL},
	{NULL},
};

static PyGetSetDef barrier_getset[] = {
	{"parties", (getter)barrier_get_parties, NULL, "number of parties"},
	{"n_waiting", (getter)barrier_get_n_waiting, NULL,
	 "parties waiting now"},
	{"broken", (getter)barrier_get_broken, NULL, "is it broken?"},
	LFPY_GETSET_COMMON,
	{NULL},
};

PyTypeObject BarrierType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "lfipc.Barrier",
	.tp_basicsize = sizeof(BarrierObject),
	.tp_dealloc = (destructor)barrier_dealloc,
	.tp_repr = (reprfunc)barrier_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE |
		    Py_TPFLAGS_HAVE_GC,
	.tp_doc = "Barrier(parties, action=None, timeout=None, *, region=None, "
		  "name=None, create=True)\n--\n\nA process-shared barrier "
		  "(multiprocessing.Barrier). The action runs in the party "
		  "that completes a cycle; it is pickled by reference with "
		  "the barrier. " SYNC_KW_DOC,
	.tp_weaklistoffset = offsetof(BarrierObject, weakreflist),
	.tp_traverse = (traverseproc)barrier_traverse,
	.tp_clear = (inquiry)barrier_clear,
	.tp_methods = barrier_methods,
	.tp_getset = barrier_getset,
	.tp_new = barrier_new,
};

/* ---- opening by name ------------------------------------------------------------ */

static PyObject *sync_open_typed(PyTypeObject *type, RegionObject *ro,
				 char kind, const char *name, PyObject *extra)
{
	void *h = NULL;
	int rc;

	if (lfpy_region_use(ro) < 0)
		return NULL;
	switch (kind) {
	case LFPY_KIND_SEM:
	case LFPY_KIND_BSEM:
		rc = lfipc_sem_open(ro->r, name, (lfipc_sem **)&h);
		break;
	case LFPY_KIND_EVENT:
		rc = lfipc_event_open(ro->r, name, (lfipc_event **)&h);
		break;
	case LFPY_KIND_COND:
		rc = lfipc_cond_open(ro->r, name, (lfipc_cond **)&h);
		break;
	case LFPY_KIND_BARRIER:
		rc = lfipc_barrier_open(ro->r, name, (lfipc_barrier **)&h);
		break;
	default:
		rc = -EINVAL;
	}
	if (rc < 0) {
		lfpy_region_unuse(ro);
		return lfpy_err(rc);
	}
	switch (kind) {
	case LFPY_KIND_SEM:
	case LFPY_KIND_BSEM:
		return sem_wrap(type, ro, h, kind, name);
	case LFPY_KIND_EVENT:
		return event_wrap(type, ro, h, name);
	case LFPY_KIND_COND:
		return cond_wrap(type, ro, h, name);
	}
	{
		PyObject *action = Py_None, *timeout = Py_None;

		if (extra && extra != Py_None &&
		    !PyArg_ParseTuple(extra, "OO", &action, &timeout)) {
			lfipc_barrier_close(h);
			lfpy_region_unuse(ro);
			return NULL;
		}
		return barrier_wrap(type, ro, h, name, action, timeout);
	}
}

PyObject *lfpy_sync_open(RegionObject *ro, char kind, const char *name,
			 PyObject *extra)
{
	PyTypeObject *type;

	switch (kind) {
	case LFPY_KIND_SEM:
		type = &SemaphoreType;
		break;
	case LFPY_KIND_BSEM:
		type = &BoundedSemaphoreType;
		break;
	case LFPY_KIND_EVENT:
		type = &EventType;
		break;
	case LFPY_KIND_COND:
		type = &ConditionType;
		break;
	default:
		type = &BarrierType;
	}
	return sync_open_typed(type, ro, kind, name, extra);
}

static PyObject *open_by_name(PyTypeObject *type, PyObject *region,
			      PyObject *name, char kind, PyObject *extra)
{
	char oname[LFIPC_NAME_MAX + 1];
	RegionObject *ro;
	PyObject *res;

	if (!name || name == Py_None) {
		PyErr_SetString(PyExc_ValueError,
				"create=False needs the object's name");
		return NULL;
	}
	if (lfpy_name_arg(name, kind, oname, LFIPC_NAME_MAX) < 0)
		return NULL;
	ro = lfpy_region_arg(region, 0, false);
	if (!ro)
		return NULL;
	res = sync_open_typed(type, ro, kind, oname, extra);
	Py_DECREF(ro);
	return res;
}

int lfpy_sync_types_init(PyObject *m)
{
	PyTypeObject *types[] = {&LockType,	 &RLockType,
				 &SemaphoreType, &BoundedSemaphoreType,
				 &EventType,	 &ConditionType,
				 &BarrierType};

	for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
		const char *n;

		if (PyType_Ready(types[i]) < 0)
			return -1;
		n = strrchr(types[i]->tp_name, '.') + 1;
		Py_INCREF(types[i]);
		if (PyModule_AddObject(m, n, (PyObject *)types[i]) < 0)
			return -1;
	}
	return 0;
}
