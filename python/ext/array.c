/* SPDX-License-Identifier: MIT */
/*
 * array.c - SharedArray: an lfipc Array exposed through the buffer
 * protocol, the storage under lfipc's Value, Array, RawValue and RawArray
 * (ctypes objects made with from_buffer, in lfipc/_sharedctypes.py).
 */
#include "pylfipc.h"

#include <errno.h>
#include <string.h>

typedef struct {
	LFPY_HEAD
	lfipc_array *a;
	Py_ssize_t nbytes;
} ArrayObject;

static PyObject *array_wrap(RegionObject *ro, lfipc_array *a,
			    const char *name)
{
	ArrayObject *self = PyObject_New(ArrayObject, &SharedArrayType);

	if (!self) {
		lfipc_array_close(a);
		lfpy_region_unuse(ro);
		return NULL;
	}
	lfpy_obj_set(self, ro, name);
	self->a = a;
	self->nbytes = (Py_ssize_t)(lfipc_array_len(a) *
				    lfipc_type_size(lfipc_array_type(a)));
	return (PyObject *)self;
}

PyObject *lfpy_array_open(RegionObject *ro, const char *name)
{
	lfipc_array *a;
	int rc;

	if (lfpy_region_use(ro) < 0)
		return NULL;
	rc = lfipc_array_open(ro->r, name, &a);
	if (rc < 0) {
		lfpy_region_unuse(ro);
		return lfpy_err(rc);
	}
	return array_wrap(ro, a, name);
}

struct array_create {
	int type;
	size_t len;
	bool lock;
	lfipc_array *a;
};

static int array_create_fn(lfipc_region *r, const char *name, void *p)
{
	struct array_create *c = p;

	return lfipc_array_create(r, name, (lfipc_type)c->type, c->len,
				  c->lock, &c->a);
}

static PyObject *array_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"type", "length", "lock", "region", "name",
				 "create", NULL};
	PyObject *region = Py_None, *name = Py_None, *create = Py_True, *res;
	struct array_create c = {0};
	char aname[LFIPC_NAME_MAX + 1];
	Py_ssize_t len = 1;
	RegionObject *ro;
	int lock = 0, cr;
	size_t esz;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|inp$OOO", kwlist, &c.type,
					 &len, &lock, &region, &name, &create))
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
		if (lfpy_name_arg(name, LFPY_KIND_ARRAY, aname,
				  LFIPC_NAME_MAX) < 0)
			return NULL;
		ro = lfpy_region_arg(region, 0, false);
		if (!ro)
			return NULL;
		res = lfpy_array_open(ro, aname);
		Py_DECREF(ro);
		return res;
	}
	esz = lfipc_type_size((lfipc_type)c.type);
	if (esz == 0) {
		PyErr_SetString(PyExc_ValueError, "unknown lfipc element type");
		return NULL;
	}
	if (len < 1 || (size_t)len > PY_SSIZE_T_MAX / esz) {
		PyErr_SetString(PyExc_ValueError, "length must be >= 1");
		return NULL;
	}
	c.len = (size_t)len;
	c.lock = lock;
	ro = lfpy_create(region, name, 'v', (size_t)len * esz + 4096,
			 LFIPC_NAME_MAX, array_create_fn, &c, aname);
	if (!ro)
		return NULL;
	res = array_wrap(ro, c.a, aname);
	Py_DECREF(ro);
	return res;
}

static void array_dealloc(ArrayObject *self)
{
	lfipc_array_close(self->a);
	lfpy_obj_clear(self);
	PyObject_Free(self);
}

static int array_getbuffer(ArrayObject *self, Py_buffer *view, int flags)
{
	return PyBuffer_FillInfo(view, (PyObject *)self,
				 lfipc_array_data(self->a), self->nbytes, 0,
				 flags);
}

static PyBufferProcs array_as_buffer = {
	.bf_getbuffer = (getbufferproc)array_getbuffer,
};

static PyObject *array_memoryview(ArrayObject *self, PyObject *unused)
{
	return PyMemoryView_FromObject((PyObject *)self);
}

static PyObject *array_lock(ArrayObject *self, PyObject *unused)
{
	lfipc_lock *l = lfipc_array_lock(self->a);

	if (!l)
		Py_RETURN_NONE;
	return lfpy_lock_wrap(self->ro, l, (PyObject *)self, NULL);
}

static PyObject *array_reduce(ArrayObject *self, PyObject *unused)
{
	return lfpy_reduce(self->ro, LFPY_KIND_ARRAY, self->name, NULL);
}

static PyObject *array_repr(ArrayObject *self)
{
	return PyUnicode_FromFormat("<lfipc._lfipc.SharedArray name='%s' "
				    "type=%d length=%zu>",
				    self->name, (int)lfipc_array_type(self->a),
				    lfipc_array_len(self->a));
}

static PyObject *array_get_type(ArrayObject *self, void *c)
{
	return PyLong_FromLong((long)lfipc_array_type(self->a));
}

static PyObject *array_get_length(ArrayObject *self, void *c)
{
	return PyLong_FromSize_t(lfipc_array_len(self->a));
}

static PyObject *array_get_nbytes(ArrayObject *self, void *c)
{
	return PyLong_FromSsize_t(self->nbytes);
}

static PyMethodDef array_methods[] = {
	{"create_memoryview", (PyCFunction)array_memoryview, METH_NOARGS,
	 "create_memoryview() -> memoryview of the elements (in place)"},
	{"_lfipc_lock", (PyCFunction)array_lock, METH_NOARGS,
	 "the embedded RLock (an lfipc RLock object), or None"},
	{"__reduce__", (PyCFunction)array_reduce, METH_NOARGS, NULL},
	{NULL},
};

static PyGetSetDef array_getset[] = {
	{"type", (getter)array_get_type, NULL, "lfipc element type number"},
	{"length", (getter)array_get_length, NULL, "number of elements"},
	{"nbytes", (getter)array_get_nbytes, NULL, "size in bytes"},
	LFPY_GETSET_COMMON,
	{NULL},
};

PyTypeObject SharedArrayType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "lfipc._lfipc.SharedArray",
	.tp_basicsize = sizeof(ArrayObject),
	.tp_dealloc = (destructor)array_dealloc,
	.tp_repr = (reprfunc)array_repr,
	.tp_as_buffer = &array_as_buffer,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "SharedArray(type, length, lock=False, *, region=None, "
		  "name=None, create=True)\n--\n\nAn lfipc Array (its "
		  "elements through the buffer protocol): the storage of "
		  "lfipc.Value and lfipc.Array.",
	.tp_weaklistoffset = offsetof(ArrayObject, weakreflist),
	.tp_methods = array_methods,
	.tp_getset = array_getset,
	.tp_new = array_new,
};

int lfpy_array_type_init(PyObject *m)
{
	if (PyType_Ready(&SharedArrayType) < 0)
		return -1;
	Py_INCREF(&SharedArrayType);
	return PyModule_AddObject(m, "SharedArray", (PyObject *)&SharedArrayType);
}
