/* SPDX-License-Identifier: MIT */
/*
 * sem.c - Semaphore and BoundedSemaphore: multiprocessing's semaphores
 * over lfipc_sem.
 */
#include "pylfipc.h"

#include <errno.h>

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

PyObject *lfpy_sem_open(PyTypeObject *type, RegionObject *ro, char kind,
			const char *name, PyObject *extra)
{
	lfipc_sem *s;
	int rc;

	if (!type)
		type = kind == LFPY_KIND_BSEM ? &BoundedSemaphoreType
					      : &SemaphoreType;
	if (lfpy_region_use(ro) < 0)
		return NULL;
	rc = lfipc_sem_open(ro->r, name, &s);
	if (rc < 0) {
		lfpy_region_unuse(ro);
		return lfpy_err(rc);
	}
	return sem_wrap(type, ro, s, kind, name);
}

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

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|L$OOO", kwlist, &value,
					 &region, &name, &create))
		return NULL;
	if (lfpy_open_unless_create(create, type, region, name, kind,
				    0, NULL, lfpy_sem_open, &res))
		return res;
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
	int rc = lfpy_call(sem_fn, self->s, t);

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

	if (lfpy_parse_block_timeout("acquire", args, nargs, kwnames, NULL,
				     NULL, &t) < 0)
		return NULL;
	return lfpy_bool(sem_acquire_impl(self, t));
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
	return lfpy_none(rc);
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
	return lfpy_bool(sem_acquire_impl(self, LFIPC_FOREVER));
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
	LFPY_TYPE_HEAD("lfipc.Semaphore", SemObject, sem_dealloc,
		       sem_repr),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "Semaphore(value=1, *, region=None, name=None, create=True)"
		  "\n--\n\nA process-shared counting semaphore "
		  "(multiprocessing.Semaphore), without owner. " LFPY_SYNC_KW_DOC,
	.tp_methods = sem_methods,
	.tp_getset = sem_getset,
	.tp_new = sem_new,
};

PyTypeObject BoundedSemaphoreType = {
	LFPY_TYPE_HEAD("lfipc.BoundedSemaphore", SemObject, sem_dealloc,
		       sem_repr),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "BoundedSemaphore(value=1, *, region=None, name=None, "
		  "create=True)\n--\n\nA Semaphore whose release() above the "
		  "initial value raises ValueError. " LFPY_SYNC_KW_DOC,
	.tp_base = &SemaphoreType,
	.tp_new = sem_new,
};
