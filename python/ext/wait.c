/* SPDX-License-Identifier: MIT */
/*
 * wait.c - lfipc._lfipc._wait_any(objects, timeout): the core of
 * lfipc.wait() (multiprocessing.connection.wait's interface) over
 * lfipc_wait_any(), for up to LFIPC_WAIT_ANY_MAX queues, connections and
 * events of one region. It makes no fd and costs the objects nothing.
 * Any other list (another kind of object, more objects, several regions)
 * gets NotImplemented, and lfipc.wait() falls back to selectors over the
 * objects' fileno().
 */
#include "pylfipc.h"

#include <errno.h>

struct any {
	struct lfipc_waitable v[LFIPC_WAIT_ANY_MAX];
	unsigned n;
};

static int any_fn(void *p, int64_t t)
{
	struct any *a = p;

	return lfipc_wait_any(a->v, a->n, t);
}

/* 1 and *w: o is one of ours; 0 not; -1 exception. */
static int waitable(PyObject *o, struct lfipc_waitable *w)
{
	int r = lfpy_queue_waitable(o, w);

	if (r == 0)
		r = lfpy_conn_waitable(o, w);
	if (r == 0)
		r = lfpy_event_waitable(o, w);
	return r;
}

static PyObject *mod_wait_any(PyObject *mod, PyObject *const *args,
			      Py_ssize_t nargs, PyObject *kwnames)
{
	static const char *const names[] = {"object_list", "timeout"};
	PyObject *a[2] = {NULL, Py_None}, *seq, *res = NULL;
	RegionObject *ro = NULL;
	struct any any = {.n = 0};
	Py_ssize_t n;
	int64_t t;
	int rc;

	if (lfpy_args("_wait_any", args, nargs, kwnames, 1, 2, names, a) < 0 ||
	    lfpy_timeout1(a[1], &t) < 0)
		return NULL;
	seq = PySequence_Fast(a[0], "wait() needs a list of objects");
	if (!seq)
		return NULL;
	n = PySequence_Fast_GET_SIZE(seq);
	if (n == 0 || n > LFIPC_WAIT_ANY_MAX) {
		res = Py_NewRef(Py_NotImplemented);
		goto out;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *o = PySequence_Fast_GET_ITEM(seq, i);
		int r = waitable(o, &any.v[i]);

		if (r < 0)
			goto out;
		if (r == 0 || (ro && ((LfpyObject *)o)->ro != ro)) {
			res = Py_NewRef(Py_NotImplemented);
			goto out;
		}
		ro = ((LfpyObject *)o)->ro;
	}
	any.n = (unsigned)n;
	rc = lfpy_call(any_fn, &any, t);
	if (rc == -EAGAIN || rc == -ETIMEDOUT) {
		res = PyList_New(0);
		goto out;
	}
	if (rc < 0) {
		if (rc != LFPY_EXC)
			lfpy_err(rc);
		goto out;
	}
	/* Object rc is ready; report every other one that is ready now
	 * too (in the caller's order), as multiprocessing's wait does. */
	res = PyList_New(0);
	for (Py_ssize_t i = 0; res && i < n; i++) {
		if (i != rc && lfipc_wait_any(&any.v[i], 1, LFIPC_NOWAIT) < 0)
			continue;
		if (PyList_Append(res, PySequence_Fast_GET_ITEM(seq, i)) < 0)
			Py_CLEAR(res);
	}
out:
	Py_DECREF(seq);
	return res;
}

PyMethodDef lfpy_wait_functions[] = {
	{"_wait_any", (PyCFunction)(void (*)(void))mod_wait_any,
	 METH_FASTCALL | METH_KEYWORDS,
	 "_wait_any(object_list, timeout=None) -> list or NotImplemented\n\n"
	 "lfipc.wait() over lfipc_wait_any() for up to 8 Queues, "
	 "Connections and Events of one region; NotImplemented for any "
	 "other list."},
	{NULL},
};
