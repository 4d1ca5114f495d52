/* SPDX-License-Identifier: MIT */
/*
 * cond.c - Condition: multiprocessing.Condition over lfipc_cond (and its
 * lock, through lock.c).
 */
#include "pylfipc.h"

#include <errno.h>

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

PyObject *lfpy_cond_open(PyTypeObject *type, RegionObject *ro, char kind,
			 const char *name, PyObject *extra)
{
	lfipc_cond *c;
	int rc;

	if (lfpy_region_use(ro) < 0)
		return NULL;
	rc = lfipc_cond_open(ro->r, name, &c);
	if (rc < 0) {
		lfpy_region_unuse(ro);
		return lfpy_err(rc);
	}
	return cond_wrap(type ? type : &ConditionType, ro, c, name);
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

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O$OOO", kwlist, &lock,
					 &region, &name, &create))
		return NULL;
	if (lfpy_open_unless_create(create, type, region, name, LFPY_KIND_COND,
				    0, NULL, lfpy_cond_open, &res))
		return res;
	if (lock != Py_None) {
		PyObject *lock_region;

		cc.lock = lfpy_lock_handle(lock);
		if (!cc.lock) {
			PyErr_SetString(PyExc_TypeError,
					"Condition(lock): lock must be an "
					"lfipc Lock or RLock");
			return NULL;
		}
		lock_region = (PyObject *)((LfpyObject *)lock)->ro;
		if (region != Py_None && region != lock_region) {
			PyErr_SetString(PyExc_ValueError,
					"a Condition lives in its lock's region");
			return NULL;
		}
		region = lock_region;
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

	if (lfpy_parse_block_timeout("acquire", args, nargs, kwnames, NULL,
				     NULL, &t) < 0)
		return NULL;
	return lfpy_bool(lfpy_lock_acquire(lfipc_cond_lock(self->c),
					   (PyObject *)self, t,
					   &self->owner_died));
}

static PyObject *cond_release(CondObject *self, PyObject *unused)
{
	if (lfpy_lock_release(lfipc_cond_lock(self->c), (PyObject *)self) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *cond_enter(CondObject *self, PyObject *unused)
{
	return lfpy_bool(lfpy_lock_acquire(lfipc_cond_lock(self->c),
					   (PyObject *)self, LFIPC_FOREVER,
					   &self->owner_died));
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
		/* Waiting again after an interruption (-EINTR) loses no
		 * notify: the wait returns with the lock held, and a notify
		 * that chose this waiter wins over the interruption. */
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

static PyObject *cond_wait(CondObject *self, PyObject *const *args,
			   Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *timeout = Py_None;
	int64_t t;

	if (lfpy_parse_timeout("wait", args, nargs, kwnames, &timeout, &t) < 0)
		return NULL;
	return lfpy_bool(cond_wait_impl(self, t));
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

/* The tail of notify() and notify_all(). */
static PyObject *notified(int rc)
{
	if (rc == -EPERM) {
		PyErr_SetString(PyExc_AssertionError, "lock is not owned");
		return NULL;
	}
	return lfpy_none(rc);
}

static PyObject *cond_notify(CondObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"n", NULL};
	Py_ssize_t n = 1;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|n:notify", kwlist, &n))
		return NULL;
	if (n < 0)
		n = 0;
	return notified(lfipc_cond_notify(self->c, n > UINT32_MAX
							   ? UINT32_MAX
							   : (unsigned)n));
}

static PyObject *cond_notify_all(CondObject *self, PyObject *unused)
{
	return notified(lfipc_cond_notify_all(self->c));
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
	 METH_FASTCALL | METH_KEYWORDS,
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
	LFPY_TYPE_HEAD("lfipc.Condition", CondObject, cond_dealloc,
		       cond_repr),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "Condition(lock=None, *, region=None, name=None, "
		  "create=True)\n--\n\nA process-shared condition variable "
		  "(multiprocessing.Condition) over an lfipc Lock or RLock "
		  "(default: a new RLock). No spurious wake-ups. " LFPY_SYNC_KW_DOC,
	.tp_methods = cond_methods,
	.tp_getset = cond_getset,
	.tp_new = cond_new,
};
