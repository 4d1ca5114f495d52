/* SPDX-License-Identifier: MIT */
/*
 * event.c - Event: multiprocessing.Event over lfipc_event.
 */
#include "pylfipc.h"

#include <errno.h>

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

PyObject *lfpy_event_open(PyTypeObject *type, RegionObject *ro, char kind,
			  const char *name, PyObject *extra)
{
	lfipc_event *e;
	int rc;

	if (lfpy_region_use(ro) < 0)
		return NULL;
	rc = lfipc_event_open(ro->r, name, &e);
	if (rc < 0) {
		lfpy_region_unuse(ro);
		return lfpy_err(rc);
	}
	return event_wrap(type ? type : &EventType, ro, e, name);
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

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|$OOO", kwlist, &region,
					 &name, &create))
		return NULL;
	if (lfpy_open_unless_create(create, type, region, name, LFPY_KIND_EVENT,
				    0, NULL, lfpy_event_open, &res))
		return res;
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

static PyObject *event_wait(EventObject *self, PyObject *const *args,
			    Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *timeout = Py_None;
	int64_t t;

	if (lfpy_parse_timeout("wait", args, nargs, kwnames, &timeout, &t) < 0)
		return NULL;
	return lfpy_waited(lfpy_call(event_fn, self->e, t));
}

static PyObject *event_reduce(EventObject *self, PyObject *unused)
{
	return lfpy_reduce(self->ro, LFPY_KIND_EVENT, self->name, NULL);
}

static PyObject *event_fileno(EventObject *self, PyObject *unused)
{
	int fd = lfipc_event_fd(self->e);

	return fd < 0 ? lfpy_err(fd) : PyLong_FromLong(fd);
}

int lfpy_event_waitable(PyObject *o, struct lfipc_waitable *w)
{
	if (!PyObject_TypeCheck(o, &EventType))
		return 0;
	*w = (struct lfipc_waitable){.kind = LFIPC_WAIT_EVENT,
				     .side = LFIPC_FD_GET,
				     .obj = ((EventObject *)o)->e};
	return 1;
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
	 METH_FASTCALL | METH_KEYWORDS,
	 "wait(timeout=None) -> bool\n\nWait until the flag is set, up to "
	 "timeout seconds (None: forever). Returns True if it was set "
	 "(also if a set() happened while waiting and a clear() since), "
	 "False on timeout. Interruptible."},
	{"fileno", (PyCFunction)event_fileno, METH_NOARGS,
	 "fileno() -> int\n\nA file descriptor that is readable while the "
	 "flag is set, for selectors, select and asyncio's add_reader. It "
	 "stays readable after a clear() until a wait(0) (or a wait that "
	 "times out) through this object returns False; a set event keeps "
	 "it readable (remove it from the loop once seen). Closed when the "
	 "object is freed (never close it yourself)."},
	{"__reduce__", (PyCFunction)event_reduce, METH_NOARGS, NULL},
	{NULL},
};

static PyGetSetDef event_getset[] = {
	LFPY_GETSET_COMMON,
	{NULL},
};

PyTypeObject EventType = {
	LFPY_TYPE_HEAD("lfipc.Event", EventObject, event_dealloc,
		       event_repr),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "Event(*, region=None, name=None, create=True)\n--\n\n"
		  "A process-shared flag (multiprocessing.Event). " LFPY_SYNC_KW_DOC,
	.tp_methods = event_methods,
	.tp_getset = event_getset,
	.tp_new = event_new,
};
