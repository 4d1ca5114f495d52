/* SPDX-License-Identifier: MIT */
/*
 * lock.c - Lock and RLock: multiprocessing.synchronize's locks over
 * lfipc_lock.
 *
 * A Lock whose owner process died holding it is taken over by the next
 * acquire(), which returns True, sets the lock object's owner_died
 * attribute and issues an lfipc.OwnerDeadWarning (a RuntimeWarning: a
 * warnings filter can turn it into an exception, raised with the lock
 * held). Condition (cond.c) acquires and releases its lock through the
 * same functions.
 */
#include "pylfipc.h"

#include <errno.h>
#include <time.h>

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

	/* the time left is the caller's business (lfpy_block) */
	return nanosleep(&ts, NULL) ? -EINTR : -ETIMEDOUT;
}

int lfpy_lock_acquire(lfipc_lock *l, PyObject *who, int64_t t,
		      int *owner_died)
{
	int rc = lfpy_call(lock_fn, l, t);

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

PyObject *lfpy_lock_open(PyTypeObject *type, RegionObject *ro, char kind,
			 const char *name, PyObject *extra)
{
	lfipc_lock *l;
	int rc;

	if (!type)
		type = kind == LFPY_KIND_RLOCK ? &RLockType : &LockType;
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

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|$OOO", kwlist, &region,
					 &name, &create))
		return NULL;
	if (lfpy_open_unless_create(create, type, region, name, kind,
				    0, NULL, lfpy_lock_open, &res))
		return res;
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

static PyObject *lock_acquire(LockObject *self, PyObject *const *args,
			      Py_ssize_t nargs, PyObject *kwnames)
{
	int64_t t;

	if (lfpy_parse_block_timeout("acquire", args, nargs, kwnames, NULL,
				     NULL, &t) < 0)
		return NULL;
	return lfpy_bool(lfpy_lock_acquire(self->l, (PyObject *)self, t,
					   &self->owner_died));
}

int lfpy_lock_release(lfipc_lock *l, PyObject *who)
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
	if (lfpy_lock_release(self->l, (PyObject *)self) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *lock_enter(LockObject *self, PyObject *unused)
{
	return lfpy_bool(lfpy_lock_acquire(self->l, (PyObject *)self,
					   LFIPC_FOREVER, &self->owner_died));
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

PyTypeObject LockType = {
	LFPY_TYPE_HEAD("lfipc.Lock", LockObject, lock_dealloc,
		       lock_repr),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "Lock(*, region=None, name=None, create=True)\n--\n\n"
		  "A process-shared non-recursive lock (multiprocessing.Lock) "
		  "with an owner: the owning thread releases it, and if the "
		  "owning process dies the next acquire() takes it over "
		  "(owner_died, OwnerDeadWarning). Re-acquiring it from the "
		  "owning thread without a timeout raises RuntimeError "
		  "instead of deadlocking. " LFPY_SYNC_KW_DOC,
	.tp_methods = lock_methods,
	.tp_getset = lock_getset,
	.tp_new = lock_new,
};

PyTypeObject RLockType = {
	LFPY_TYPE_HEAD("lfipc.RLock", LockObject, lock_dealloc,
		       lock_repr),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "RLock(*, region=None, name=None, create=True)\n--\n\n"
		  "A process-shared recursive lock (multiprocessing.RLock): "
		  "the owning thread may acquire it again and must release it "
		  "as many times. A dead owner is handled as for Lock. "
		  LFPY_SYNC_KW_DOC,
	.tp_base = &LockType,
	.tp_new = lock_new,
};
