/* SPDX-License-Identifier: MIT */
/*
 * module.c - the lfipc._lfipc module: errors, timeouts, interruptible
 * blocking (lfpy_block), pickling, object names and unpickling (_rebuild).
 */
#include "pylfipc.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

struct lfpy_state lfpy;

/* ---- errors ------------------------------------------------------------ */

PyObject *lfpy_err(int rc)
{
	PyObject *args;

	if (rc >= 0)
		rc = -EPROTO;
	args = Py_BuildValue("(is)", -rc, lfipc_strerror(rc));
	if (args) {
		PyErr_SetObject(PyExc_OSError, args);
		Py_DECREF(args);
	}
	return NULL;
}

int lfpy_err_int(int rc)
{
	lfpy_err(rc);
	return -1;
}

PyObject *lfpy_none(int rc)
{
	if (rc < 0)
		return lfpy_err(rc);
	Py_RETURN_NONE;
}

PyObject *lfpy_bool(int r)
{
	return r < 0 ? NULL : PyBool_FromLong(r);
}

PyObject *lfpy_waited(int rc)
{
	if (rc == -EAGAIN || rc == -ETIMEDOUT)
		Py_RETURN_FALSE;
	if (rc == LFPY_EXC)
		return NULL;
	if (rc < 0)
		return lfpy_err(rc);
	Py_RETURN_TRUE;
}

/* ---- timeouts and blocking ---------------------------------------------- */

int64_t lfpy_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int lfpy_args(const char *fname, PyObject *const *args, Py_ssize_t nargs,
	      PyObject *kwnames, int nreq, int n, const char *const *names,
	      PyObject **out)
{
	Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
	unsigned seen = 0;

	if (nargs > n) {
		PyErr_Format(PyExc_TypeError,
			     "%s() takes at most %d arguments (%zd given)",
			     fname, n, nargs);
		return -1;
	}
	for (Py_ssize_t i = 0; i < nargs; i++) {
		out[i] = args[i];
		seen |= 1u << i;
	}
	for (Py_ssize_t k = 0; k < nkw; k++) {
		PyObject *key = PyTuple_GET_ITEM(kwnames, k);
		int i;

		for (i = 0; i < n; i++)
			if (PyUnicode_CompareWithASCIIString(key, names[i]) == 0)
				break;
		if (i == n) {
			PyErr_Format(PyExc_TypeError,
				     "%s() got an unexpected keyword argument "
				     "'%U'",
				     fname, key);
			return -1;
		}
		if (seen & (1u << i)) {
			PyErr_Format(PyExc_TypeError,
				     "%s() got multiple values for argument "
				     "'%s'",
				     fname, names[i]);
			return -1;
		}
		out[i] = args[nargs + k];
		seen |= 1u << i;
	}
	for (int i = 0; i < nreq; i++)
		if (!(seen & (1u << i))) {
			PyErr_Format(PyExc_TypeError,
				     "%s() missing required argument '%s'",
				     fname, names[i]);
			return -1;
		}
	return 0;
}

int lfpy_timeout1(PyObject *timeout, int64_t *out)
{
	double s;

	if (!timeout || timeout == Py_None) {
		*out = LFIPC_FOREVER;
		return 0;
	}
	s = PyFloat_AsDouble(timeout);
	if (s == -1.0 && PyErr_Occurred())
		return -1;
	if (s != s) {
		PyErr_SetString(PyExc_ValueError, "timeout is NaN");
		return -1;
	}
	if (s <= 0) {
		*out = LFIPC_NOWAIT;
		return 0;
	}
	/* about 292 years: beyond it, wait forever */
	if (s > 9.2e9) {
		*out = LFIPC_FOREVER;
		return 0;
	}
	*out = (int64_t)(s * 1e9);
	if (*out == 0)
		*out = 1;
	return 0;
}

int lfpy_timeout(PyObject *block, PyObject *timeout, int64_t *out)
{
	if (block && block != Py_True) {
		int b = PyObject_IsTrue(block);

		if (b < 0)
			return -1;
		if (!b) {
			*out = LFIPC_NOWAIT;
			return 0;
		}
	}
	return lfpy_timeout1(timeout, out);
}

int lfpy_parse_block_timeout(const char *fname, PyObject *const *args,
			     Py_ssize_t nargs, PyObject *kwnames,
			     const char *lead, PyObject **lead_out, int64_t *t)
{
	const char *names[3] = {lead, "block", "timeout"};
	PyObject *a[3] = {lead_out ? *lead_out : NULL, Py_True, Py_None};
	int skip = lead ? 0 : 1;

	if (nargs == 0 && !kwnames && !lead) {
		*t = LFIPC_FOREVER; /* the common acquire() and get() */
		return 0;
	}
	if (lfpy_args(fname, args, nargs, kwnames, lead && !a[0] ? 1 : 0,
		      3 - skip, names + skip, a + skip) < 0)
		return -1;
	if (lead)
		*lead_out = a[0];
	return lfpy_timeout(a[1], a[2], t);
}

int lfpy_parse_timeout(const char *fname, PyObject *const *args,
		       Py_ssize_t nargs, PyObject *kwnames,
		       PyObject **timeout_out, int64_t *t)
{
	static const char *const names[] = {"timeout"};

	if (lfpy_args(fname, args, nargs, kwnames, 0, 1, names, timeout_out) <
	    0)
		return -1;
	return lfpy_timeout1(*timeout_out, t);
}

int lfpy_call(lfpy_waitfn fn, void *ctx, int64_t timeout)
{
	int rc = fn(ctx, LFIPC_NOWAIT);

	if (rc == -EAGAIN && timeout != LFIPC_NOWAIT)
		rc = lfpy_block(fn, ctx, timeout);
	return rc;
}

int lfpy_block(lfpy_waitfn fn, void *ctx, int64_t timeout)
{
	int64_t deadline = timeout < 0 ? 0 : lfpy_now_ns() + timeout;

	for (;;) {
		int64_t t = timeout;
		int rc, prev;

		if (timeout >= 0) {
			t = deadline - lfpy_now_ns();
			if (t <= 0)
				return -ETIMEDOUT;
		}
		/* A signal that came before the call sleeps does not end
		 * the sleep (lfipc_thread_set_interruptible): run the
		 * handlers of those that came so far. */
		if (PyErr_CheckSignals())
			return LFPY_EXC;
		Py_BEGIN_ALLOW_THREADS
		prev = lfipc_thread_set_interruptible(1);
		rc = fn(ctx, t);
		lfipc_thread_set_interruptible(prev);
		Py_END_ALLOW_THREADS
		if (rc != -EINTR)
			return rc;
	}
}

int lfpy_uninterruptible(lfpy_waitfn fn, void *ctx, int64_t timeout)
{
	int rc, prev;

	Py_BEGIN_ALLOW_THREADS
	prev = lfipc_thread_set_interruptible(0);
	rc = fn(ctx, timeout);
	lfipc_thread_set_interruptible(prev);
	Py_END_ALLOW_THREADS
	return rc;
}

/* ---- pickling ------------------------------------------------------------ */

/*
 * A file-like sink for pickle.Pickler: write() keeps the bytes object it is
 * given (the usual case: one write per dump) or accumulates several.
 */
typedef struct {
	PyObject_HEAD
	PyObject *first;   /* the first write (bytes), or NULL */
	PyObject *more;	   /* bytearray of every write when more than one */
} SinkObject;

static PyObject *sink_write(SinkObject *self, PyObject *b)
{
	Py_buffer view;
	Py_ssize_t n;

	if (PyObject_GetBuffer(b, &view, PyBUF_SIMPLE) < 0)
		return NULL;
	n = view.len;
	if (!self->first && !self->more && PyBytes_CheckExact(b)) {
		Py_INCREF(b);
		self->first = b;
	} else {
		if (!self->more) {
			self->more = PyByteArray_FromStringAndSize(NULL, 0);
			if (!self->more)
				goto fail;
			if (self->first) {
				PyObject *r = PyNumber_InPlaceAdd(self->more,
								  self->first);
				if (!r)
					goto fail;
				Py_DECREF(r);
				Py_CLEAR(self->first);
			}
		}
		PyObject *chunk = PyBytes_FromStringAndSize(view.buf, view.len);
		if (!chunk)
			goto fail;
		PyObject *r = PyNumber_InPlaceAdd(self->more, chunk);
		Py_DECREF(chunk);
		if (!r)
			goto fail;
		Py_DECREF(r);
	}
	PyBuffer_Release(&view);
	return PyLong_FromSsize_t(n);
fail:
	PyBuffer_Release(&view);
	return NULL;
}

/* Take what was written as one bytes object and reset the sink. */
static PyObject *sink_take(SinkObject *self)
{
	PyObject *r;

	if (self->more) {
		r = PyBytes_FromStringAndSize(PyByteArray_AS_STRING(self->more),
					      PyByteArray_GET_SIZE(self->more));
		Py_CLEAR(self->more);
		Py_CLEAR(self->first);
		return r;
	}
	if (self->first) {
		r = self->first;
		self->first = NULL;
		return r;
	}
	return PyBytes_FromStringAndSize(NULL, 0);
}

static void sink_dealloc(SinkObject *self)
{
	Py_XDECREF(self->first);
	Py_XDECREF(self->more);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef sink_methods[] = {
	{"write", (PyCFunction)sink_write, METH_O, NULL},
	{NULL},
};

static PyTypeObject SinkType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "lfipc._lfipc._Sink",
	.tp_basicsize = sizeof(SinkObject),
	.tp_dealloc = (destructor)sink_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_methods = sink_methods,
	.tp_new = PyType_GenericNew,
};

/*
 * One cached Pickler (with its sink) for the common case; a call that finds
 * it busy (a reducer that re-enters put, or another thread while the
 * first pickles) makes its own. The cached one is rebuilt when a reducer
 * was registered since (the dispatch tables grew).
 */
static struct {
	PyObject *sink, *dump, *clear_memo;
	Py_ssize_t n_copyreg, n_extra;
	int busy;
} pk;

static PyObject *make_pickler(PyObject *sink)
{
	PyObject *p, *table;

	p = PyObject_CallFunction(lfpy.pickler_type, "Oi", sink, 5);
	if (!p)
		return NULL;
	table = PyDict_Copy(lfpy.copyreg_table);
	if (!table)
		goto fail;
	if (lfpy.extra_reducers && PyDict_Update(table, lfpy.extra_reducers)) {
		Py_DECREF(table);
		goto fail;
	}
	if (PyObject_SetAttrString(p, "dispatch_table", table)) {
		Py_DECREF(table);
		goto fail;
	}
	Py_DECREF(table);
	return p;
fail:
	Py_DECREF(p);
	return NULL;
}

static Py_ssize_t dict_size(PyObject *d)
{
	return d && PyDict_Check(d) ? PyDict_GET_SIZE(d) : 0;
}

static int pk_refresh(void)
{
	Py_ssize_t nc = dict_size(lfpy.copyreg_table);
	Py_ssize_t ne = dict_size(lfpy.extra_reducers);
	PyObject *sink, *p;

	if (pk.dump && nc == pk.n_copyreg && ne == pk.n_extra)
		return 0;
	Py_CLEAR(pk.dump);
	Py_CLEAR(pk.clear_memo);
	Py_CLEAR(pk.sink);
	sink = PyObject_CallNoArgs((PyObject *)&SinkType);
	if (!sink)
		return -1;
	p = make_pickler(sink);
	if (!p) {
		Py_DECREF(sink);
		return -1;
	}
	pk.dump = PyObject_GetAttrString(p, "dump");
	pk.clear_memo = PyObject_GetAttrString(p, "clear_memo");
	Py_DECREF(p);
	if (!pk.dump || !pk.clear_memo) {
		Py_CLEAR(pk.dump);
		Py_CLEAR(pk.clear_memo);
		Py_DECREF(sink);
		return -1;
	}
	pk.sink = sink;
	pk.n_copyreg = nc;
	pk.n_extra = ne;
	return 0;
}

PyObject *lfpy_dumps(PyObject *obj)
{
	PyObject *r, *sink, *p;

	if (!pk.busy) {
		if (pk_refresh())
			return NULL;
		pk.busy = 1;
		r = PyObject_CallNoArgs(pk.clear_memo);
		if (r) {
			Py_DECREF(r);
			r = PyObject_CallOneArg(pk.dump, obj);
		}
		pk.busy = 0;
		if (!r) {
			/* drop whatever a failed dump wrote */
			Py_XDECREF(sink_take((SinkObject *)pk.sink));
			return NULL;
		}
		Py_DECREF(r);
		return sink_take((SinkObject *)pk.sink);
	}
	sink = PyObject_CallNoArgs((PyObject *)&SinkType);
	if (!sink)
		return NULL;
	p = make_pickler(sink);
	if (!p) {
		Py_DECREF(sink);
		return NULL;
	}
	r = PyObject_CallMethod(p, "dump", "O", obj);
	Py_DECREF(p);
	if (!r) {
		Py_DECREF(sink);
		return NULL;
	}
	Py_DECREF(r);
	r = sink_take((SinkObject *)sink);
	Py_DECREF(sink);
	return r;
}

PyObject *lfpy_loads(const void *p, size_t len)
{
	PyObject *mv, *r;

	mv = PyMemoryView_FromMemory((char *)p, (Py_ssize_t)len, PyBUF_READ);
	if (!mv)
		return NULL;
	r = PyObject_CallOneArg(lfpy.loads, mv);
	Py_DECREF(mv);
	return r;
}

/* ---- names ------------------------------------------------------------- */

/* Tag of this process incarnation, renewed in a fork child (pid reuse and
 * forks of one parent must not collide: creation retries on -EEXIST too). */
static unsigned name_tag;
static volatile int name_tag_stale = 1;
static unsigned long long name_counter;

static void name_atfork_child(void)
{
	name_tag_stale = 1;
}

void lfpy_autoname(char kind, char *buf, size_t buflen)
{
	if (name_tag_stale) {
		unsigned t = 0;

		if (getrandom(&t, sizeof t, GRND_NONBLOCK) != sizeof t)
			t = (unsigned)lfpy_now_ns();
		name_tag = t ^ ((unsigned)getpid() << 12);
		name_tag_stale = 0;
	}
	snprintf(buf, buflen, "%c%08x.%llx", kind, name_tag, name_counter++);
}

int lfpy_name_arg(PyObject *name, char kind, char *buf, size_t maxlen)
{
	const char *s;
	Py_ssize_t n;

	if (!name || name == Py_None) {
		lfpy_autoname(kind, buf, maxlen + 1);
		return 0;
	}
	if (!PyUnicode_Check(name)) {
		PyErr_SetString(PyExc_TypeError, "name must be a str or None");
		return -1;
	}
	s = PyUnicode_AsUTF8AndSize(name, &n);
	if (!s)
		return -1;
	if (n < 1 || (size_t)n > maxlen || strlen(s) != (size_t)n) {
		PyErr_Format(PyExc_ValueError,
			     "object name must be 1 to %zu bytes without NUL",
			     maxlen);
		return -1;
	}
	memcpy(buf, s, (size_t)n + 1);
	return 0;
}

/* ---- regions ------------------------------------------------------------- */

RegionObject *lfpy_region_arg(PyObject *region, size_t need, bool fresh)
{
	PyObject *r;

	if (region && region != Py_None) {
		if (!PyObject_TypeCheck(region, &RegionType)) {
			PyErr_SetString(PyExc_TypeError,
					"region must be an lfipc.Region or None");
			return NULL;
		}
		Py_INCREF(region);
		return (RegionObject *)region;
	}
	if (!lfpy.default_region_hook) {
		PyErr_SetString(PyExc_RuntimeError,
				"lfipc: no default region hook (import lfipc)");
		return NULL;
	}
	r = PyObject_CallFunction(lfpy.default_region_hook, "nO",
				  (Py_ssize_t)need, fresh ? Py_True : Py_False);
	if (!r)
		return NULL;
	if (!PyObject_TypeCheck(r, &RegionType)) {
		Py_DECREF(r);
		PyErr_SetString(PyExc_TypeError,
				"default region hook returned no Region");
		return NULL;
	}
	return (RegionObject *)r;
}

RegionObject *lfpy_create(PyObject *region_arg, PyObject *name_arg, char kind,
			  size_t need, size_t maxname, lfpy_createfn fn,
			  void *ctx, char *name_out)
{
	bool deflt = !region_arg || region_arg == Py_None;
	bool fresh = false;
	RegionObject *ro;
	int rc, tries = 0;

	if (lfpy_name_arg(name_arg, kind, name_out, maxname) < 0)
		return NULL;
	ro = lfpy_region_arg(region_arg, need, false);
	if (!ro)
		return NULL;
	for (;;) {
		if (lfpy_region_use(ro) < 0) {
			Py_DECREF(ro);
			return NULL;
		}
		rc = fn(ro->r, name_out, ctx);
		if (rc == 0)
			return ro;
		lfpy_region_unuse(ro);
		if (PyErr_Occurred())
			break;
		if (rc == -EEXIST && (!name_arg || name_arg == Py_None) &&
		    ++tries < 1000) {
			lfpy_autoname(kind, name_out, maxname + 1);
			continue;
		}
		if (rc == -ENOSPC && deflt && !fresh) {
			fresh = true;
			Py_DECREF(ro);
			ro = lfpy_region_arg(NULL, need, true);
			if (!ro)
				return NULL;
			continue;
		}
		lfpy_err(rc);
		break;
	}
	Py_DECREF(ro);
	return NULL;
}

void lfpy_obj_set(void *o, RegionObject *ro, const char *name)
{
	LfpyObject *self = o;

	self->ro = (RegionObject *)Py_NewRef((PyObject *)ro);
	self->weakreflist = NULL;
	snprintf(self->name, sizeof self->name, "%s", name ? name : "");
}

void lfpy_obj_clear(void *o)
{
	LfpyObject *self = o;

	if (self->weakreflist)
		PyObject_ClearWeakRefs((PyObject *)self);
	if (self->ro) {
		lfpy_region_unuse(self->ro);
		Py_CLEAR(self->ro);
	}
}

PyObject *lfpy_obj_get_name(PyObject *o, void *c)
{
	LfpyObject *self = (LfpyObject *)o;

	if (!self->name[0])
		Py_RETURN_NONE;
	return PyUnicode_FromString(self->name);
}

PyObject *lfpy_obj_get_region(PyObject *o, void *c)
{
	LfpyObject *self = (LfpyObject *)o;

	return Py_NewRef(self->ro ? (PyObject *)self->ro : Py_None);
}

PyObject *lfpy_reduce(RegionObject *ro, char kind, const char *name,
		      PyObject *extra)
{
	return Py_BuildValue("O(OCsO)", lfpy.rebuild, (PyObject *)ro,
			     (int)kind, name, extra ? extra : Py_None);
}

int lfpy_warn_owner_dead(PyObject *lock)
{
	return PyErr_WarnFormat(
		lfpy.owner_dead_warning, 2,
		"%R: acquired from a process that died holding it; the state it "
		"protects may be inconsistent",
		lock);
}

int lfpy_open_unless_create(PyObject *create, PyTypeObject *type,
			    PyObject *region, PyObject *name, char kind,
			    size_t maxname, PyObject *extra, lfpy_openfn open,
			    PyObject **res)
{
	char oname[LFIPC_NAME_MAX + 1];
	int cr = PyObject_IsTrue(create);
	RegionObject *ro;

	*res = NULL;
	if (cr > 0)
		return 0;
	if (cr < 0)
		return 1;
	if (!name || name == Py_None) {
		PyErr_SetString(PyExc_ValueError,
				"create=False needs the object's name");
		return 1;
	}
	if (lfpy_name_arg(name, kind, oname, maxname ? maxname
						     : LFIPC_NAME_MAX) < 0)
		return 1;
	ro = lfpy_region_arg(region, 0, false);
	if (!ro)
		return 1;
	*res = open(type, ro, kind, oname, extra);
	Py_DECREF(ro);
	return 1;
}

int lfpy_add_types(PyObject *m, PyTypeObject *const *types, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *name = strrchr(types[i]->tp_name, '.') + 1;

		if (PyType_Ready(types[i]) < 0)
			return -1;
		Py_INCREF(types[i]);
		if (PyModule_AddObject(m, name, (PyObject *)types[i]) < 0) {
			Py_DECREF(types[i]);
			return -1;
		}
	}
	return 0;
}

/* _rebuild(region, kind, name, extra): the unpickler of every object. */
static PyObject *mod_rebuild(PyObject *mod, PyObject *args)
{
	RegionObject *ro;
	int kind;
	const char *name;
	PyObject *extra;
	lfpy_openfn open;

	if (!PyArg_ParseTuple(args, "O!CsO:_rebuild", &RegionType, &ro, &kind,
			      &name, &extra))
		return NULL;
	switch (kind) {
	case LFPY_KIND_QUEUE:
	case LFPY_KIND_SIMPLEQUEUE:
	case LFPY_KIND_JQUEUE:
		open = lfpy_queue_open;
		break;
	case LFPY_KIND_LOCK:
	case LFPY_KIND_RLOCK:
		open = lfpy_lock_open;
		break;
	case LFPY_KIND_SEM:
	case LFPY_KIND_BSEM:
		open = lfpy_sem_open;
		break;
	case LFPY_KIND_EVENT:
		open = lfpy_event_open;
		break;
	case LFPY_KIND_COND:
		open = lfpy_cond_open;
		break;
	case LFPY_KIND_BARRIER:
		open = lfpy_barrier_open;
		break;
	case LFPY_KIND_ARRAY:
		return lfpy_array_open(ro, name);
	case LFPY_KIND_CONN: {
		int end, rd, wr;

		if (!PyArg_ParseTuple(extra, "iii", &end, &rd, &wr))
			return NULL;
		return lfpy_conn_open(ro, name, end, rd, wr);
	}
	default:
		PyErr_Format(PyExc_ValueError, "unknown lfipc object kind %c",
			     kind);
		return NULL;
	}
	return open(NULL, ro, (char)kind, name, extra);
}

static PyObject *mod_set_hooks(PyObject *mod, PyObject *args)
{
	PyObject *hook, *owner_dead, *shutdown;

	if (!PyArg_ParseTuple(args, "OOO", &hook, &owner_dead, &shutdown))
		return NULL;
	Py_XSETREF(lfpy.default_region_hook, Py_NewRef(hook));
	Py_XSETREF(lfpy.owner_dead_warning, Py_NewRef(owner_dead));
	Py_XSETREF(lfpy.shutdown, Py_NewRef(shutdown));
	Py_RETURN_NONE;
}

static PyObject *mod_strerror(PyObject *mod, PyObject *arg)
{
	long e = PyLong_AsLong(arg);

	if (e == -1 && PyErr_Occurred())
		return NULL;
	return PyUnicode_FromString(lfipc_strerror((int)e));
}

static PyObject *mod_unlink_region(PyObject *mod, PyObject *arg)
{
	const char *name = PyUnicode_AsUTF8(arg);
	int rc;

	if (!name)
		return NULL;
	rc = lfipc_region_unlink(name);
	if (rc < 0)
		return lfpy_err(rc);
	Py_RETURN_NONE;
}

static PyObject *mod_dumps(PyObject *mod, PyObject *obj)
{
	return lfpy_dumps(obj);
}

static PyMethodDef module_methods[] = {
	{"_rebuild", mod_rebuild, METH_VARARGS,
	 "_rebuild(region, kind, name, extra): re-attach a pickled object."},
	{"_set_hooks", mod_set_hooks, METH_VARARGS,
	 "_set_hooks(default_region, OwnerDeadWarning, ShutDown): set by "
	 "the lfipc package at import."},
	{"strerror", mod_strerror, METH_O,
	 "strerror(errno) -> str: lfipc's description of an error number."},
	{"_unlink_region", mod_unlink_region, METH_O,
	 "_unlink_region(name): shm_unlink a region's name."},
	{"_dumps", mod_dumps, METH_O,
	 "_dumps(obj) -> bytes: pickle as the queues and pipes do."},
	{NULL},
};

static struct PyModuleDef lfipc_module = {
	PyModuleDef_HEAD_INIT,
	.m_name = "lfipc._lfipc",
	.m_doc = "C core of the lfipc package (see help(lfipc)).",
	.m_size = -1,
	.m_methods = module_methods,
};

static PyObject *import_attr(const char *mod, const char *attr)
{
	PyObject *m = PyImport_ImportModule(mod), *a;

	if (!m)
		return NULL;
	a = PyObject_GetAttrString(m, attr);
	Py_DECREF(m);
	return a;
}

static int import_state(void)
{
	if (!(lfpy.empty = import_attr("queue", "Empty")) ||
	    !(lfpy.full = import_attr("queue", "Full")) ||
	    !(lfpy.broken_barrier = import_attr("threading",
						 "BrokenBarrierError")) ||
	    !(lfpy.buffer_too_short = import_attr("multiprocessing",
						   "BufferTooShort")) ||
	    !(lfpy.loads = import_attr("pickle", "loads")) ||
	    !(lfpy.pickler_type = import_attr("pickle", "Pickler")) ||
	    !(lfpy.copyreg_table = import_attr("copyreg", "dispatch_table")))
		return -1;
	lfpy.extra_reducers = import_attr("multiprocessing.reduction",
					  "ForkingPickler");
	if (lfpy.extra_reducers) {
		PyObject *fp = lfpy.extra_reducers;

		lfpy.extra_reducers = PyObject_GetAttrString(fp,
							     "_extra_reducers");
		Py_DECREF(fp);
	}
	if (!lfpy.extra_reducers || !PyDict_Check(lfpy.extra_reducers)) {
		/* not fatal: pickle with copyreg's reducers only */
		PyErr_Clear();
		Py_CLEAR(lfpy.extra_reducers);
	}
	lfpy.shutdown = Py_NewRef(PyExc_Exception);
	lfpy.owner_dead_warning = Py_NewRef(PyExc_RuntimeWarning);
	return 0;
}

PyMODINIT_FUNC PyInit__lfipc(void);

PyMODINIT_FUNC PyInit__lfipc(void)
{
	static PyTypeObject *const sync_types[] = {
		&LockType,	&RLockType, &SemaphoreType, &BoundedSemaphoreType,
		&EventType, &ConditionType, &BarrierType,
	};
	PyObject *m;

	if (PyType_Ready(&SinkType) < 0)
		return NULL;
	m = PyModule_Create(&lfipc_module);
	if (!m)
		return NULL;
	if (import_state() < 0)
		goto fail;
	lfpy.rebuild = PyObject_GetAttrString(m, "_rebuild");
	if (!lfpy.rebuild)
		goto fail;
	if (lfpy_region_type_init(m) || lfpy_queue_types_init(m) ||
	    lfpy_add_types(m, sync_types,
			   sizeof sync_types / sizeof *sync_types) ||
	    lfpy_array_type_init(m) || lfpy_pipe_types_init(m))
		goto fail;
	if (PyModule_AddFunctions(m, lfpy_pipe_functions) ||
	    PyModule_AddFunctions(m, lfpy_wait_functions))
		goto fail;
	pthread_atfork(NULL, NULL, name_atfork_child);
#define ADD_INT(n) PyModule_AddIntConstant(m, #n, n)
	if (ADD_INT(LFIPC_NAME_MAX) ||
	    PyModule_AddObject(m, "REGION_MIN_SIZE",
			       PyLong_FromSize_t(LFIPC_REGION_MIN_SIZE)) ||
	    PyModule_AddObject(m, "QUEUE_MAX_CAPACITY",
			       PyLong_FromSize_t(LFIPC_QUEUE_MAX_CAPACITY)) ||
	    PyModule_AddObject(m, "QUEUE_MAX_MSG_SIZE",
			       PyLong_FromSize_t(LFIPC_QUEUE_MAX_MSG_SIZE)) ||
	    PyModule_AddObject(m, "BARRIER_PARTIES_MAX",
			       PyLong_FromUnsignedLong(LFIPC_BARRIER_PARTIES_MAX)) ||
	    ADD_INT(LFIPC_SEM_VALUE_MAX) || ADD_INT(LFIPC_COND_WAITERS_MAX))
		goto fail;
#undef ADD_INT
	return m;
fail:
	Py_DECREF(m);
	return NULL;
}
