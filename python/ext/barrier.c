/* SPDX-License-Identifier: MIT */
/*
 * barrier.c - Barrier: multiprocessing.Barrier over lfipc_barrier.
 */
#include "pylfipc.h"

#include <errno.h>

typedef struct {
	LFPY_HEAD
	lfipc_barrier *b;
	PyObject *action;
	PyObject *timeout; /* default timeout (None or seconds) */
} BarrierObject;

/*
 * One wait. It is one library call with the whole timeout (a barrier
 * wait cannot be cut into pieces: a party's timeout breaks the barrier),
 * interruptible: a signal handler that runs while it sleeps breaks the
 * barrier (lfipc_thread_set_interruptible), as an exception in
 * threading.Barrier.wait does; the handler's exception (KeyboardInterrupt)
 * is raised, or, if it raised nothing, the next attempt finds the barrier
 * broken (BrokenBarrierError). The action runs inside the call, in the
 * party that completes the cycle, and takes the GIL to run.
 */
struct bwait {
	lfipc_barrier *b;
	PyObject *exc_type, *exc_val, *exc_tb; /* the action's exception */
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

static int bwait_fn(void *p, int64_t t)
{
	struct bwait *w = p;
	int rc;

	cur_wait = w;
	rc = lfipc_barrier_wait(w->b, t);
	cur_wait = NULL;
	return rc;
}

static int barrier_wait_impl(BarrierObject *self, int64_t t, struct bwait *w)
{
	int rc;

	*w = (struct bwait){.b = self->b};
	/* no try holding the GIL first: a wait is not undone */
	if (t == LFIPC_NOWAIT)
		rc = lfpy_uninterruptible(bwait_fn, w, t);
	else
		rc = lfpy_block(bwait_fn, w, t);
	if (rc == LFPY_EXC) {
		Py_CLEAR(w->exc_type);
		Py_CLEAR(w->exc_val);
		Py_CLEAR(w->exc_tb);
	}
	return rc;
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

PyObject *lfpy_barrier_open(PyTypeObject *type, RegionObject *ro, char kind,
			    const char *name, PyObject *extra)
{
	PyObject *action = Py_None, *timeout = Py_None;
	lfipc_barrier *b;
	int rc;

	if (extra && extra != Py_None &&
	    !PyArg_ParseTuple(extra, "OO", &action, &timeout))
		return NULL;
	if (lfpy_region_use(ro) < 0)
		return NULL;
	rc = lfipc_barrier_open(ro->r, name, &b);
	if (rc < 0) {
		lfpy_region_unuse(ro);
		return lfpy_err(rc);
	}
	return barrier_wrap(type ? type : &BarrierType, ro, b, name, action,
			    timeout);
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
	PyObject *name = Py_None, *create = Py_True, *res, *extra;
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
	extra = Py_BuildValue("(OO)", action, timeout);
	if (!extra)
		return NULL;
	cr = lfpy_open_unless_create(create, type, region, name,
				     LFPY_KIND_BARRIER, 0, extra,
				     lfpy_barrier_open, &res);
	Py_DECREF(extra);
	if (cr)
		return res;
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

static PyObject *barrier_wait(BarrierObject *self, PyObject *const *args,
			      Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *timeout = Py_None;
	struct bwait w;
	int64_t t;
	int rc;

	if (lfpy_parse_timeout("wait", args, nargs, kwnames, &timeout, &t) < 0)
		return NULL;
	if (timeout == Py_None && lfpy_timeout1(self->timeout, &t) < 0)
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
	 METH_FASTCALL | METH_KEYWORDS,
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
	LFPY_TYPE_HEAD("lfipc.Barrier", BarrierObject, barrier_dealloc,
		       barrier_repr),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE |
		    Py_TPFLAGS_HAVE_GC,
	.tp_doc = "Barrier(parties, action=None, timeout=None, *, region=None, "
		  "name=None, create=True)\n--\n\nA process-shared barrier "
		  "(multiprocessing.Barrier). The action runs in the party "
		  "that completes a cycle; it is pickled by reference with "
		  "the barrier. " LFPY_SYNC_KW_DOC,
	.tp_traverse = (traverseproc)barrier_traverse,
	.tp_clear = (inquiry)barrier_clear,
	.tp_methods = barrier_methods,
	.tp_getset = barrier_getset,
	.tp_new = barrier_new,
};
