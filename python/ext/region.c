/* SPDX-License-Identifier: MIT */
/*
 * region.c - lfipc._lfipc.Region: one mapped region (the base class of
 * lfipc.Region, which adds pickling, the registry and the factories).
 */
#include "pylfipc.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

/* Default size of a region created without one (bytes). */
#define REGION_DEFAULT_SIZE ((size_t)32 << 20)

int lfpy_region_use(RegionObject *ro)
{
	if (!ro->r || ro->closing) {
		PyErr_SetString(PyExc_ValueError, "lfipc region is closed");
		return -1;
	}
	ro->nobjs++;
	return 0;
}

static void region_unmap(RegionObject *ro)
{
	lfipc_region *r = ro->r;

	ro->r = NULL;
	lfipc_region_close(r);
}

void lfpy_region_unuse(RegionObject *ro)
{
	if (--ro->nobjs == 0 && ro->closing && ro->r)
		region_unmap(ro);
}

static int identify(RegionObject *ro)
{
	struct stat st;
	int fd = lfipc_region_fd(ro->r);

	if (fd < 0 || fstat(fd, &st) < 0)
		return lfpy_err_int(fd < 0 ? fd : -errno);
	ro->dev = (unsigned long long)st.st_dev;
	ro->ino = (unsigned long long)st.st_ino;
	ro->size = (size_t)st.st_size;
	return 0;
}

static int open_named(const char *name, size_t size, int create, int mode,
		      lfipc_region **r)
{
	int rc, tries;

	if (create == 1)
		return lfipc_region_create(name, size, (mode_t)mode, r);
	if (create == 0)
		return lfipc_region_open(name, r);
	/* open or create (until the library offers it in one call): a
	 * creator that loses the race opens what the winner made */
	for (tries = 0; tries < 100; tries++) {
		rc = lfipc_region_open(name, r);
		if (rc != -ENOENT)
			return rc;
		rc = lfipc_region_create(name, size, (mode_t)mode, r);
		if (rc != -EEXIST)
			return rc;
	}
	return -EEXIST;
}

static int region_init(RegionObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"name", "size", "create", "mode", "fd", NULL};
	PyObject *name = Py_None, *create = Py_False;
	Py_ssize_t size = 0;
	int mode = LFIPC_REGION_DEFAULT_MODE, fd = -1, cr, rc;
	const char *cname = NULL;
	lfipc_region *r = NULL;

	if (self->r) {
		PyErr_SetString(PyExc_RuntimeError, "Region already initialised");
		return -1;
	}
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|OnOii:Region", kwlist,
					 &name, &size, &create, &mode, &fd))
		return -1;
	if (size < 0) {
		PyErr_SetString(PyExc_ValueError, "size must be >= 0");
		return -1;
	}
	if (size == 0)
		size = (Py_ssize_t)REGION_DEFAULT_SIZE;
	if (create == Py_None) {
		cr = -1;
	} else {
		cr = PyObject_IsTrue(create);
		if (cr < 0)
			return -1;
	}
	if (name != Py_None) {
		if (!PyUnicode_Check(name)) {
			PyErr_SetString(PyExc_TypeError, "name must be a str or None");
			return -1;
		}
		cname = PyUnicode_AsUTF8(name);
		if (!cname)
			return -1;
	}
	Py_BEGIN_ALLOW_THREADS
	if (fd >= 0)
		rc = lfipc_region_open_fd(fd, &r);
	else if (!cname)
		rc = lfipc_region_create(NULL, (size_t)size, 0, &r);
	else
		rc = open_named(cname, (size_t)size, cr, mode, &r);
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		PyObject *a = Py_BuildValue("(isO)", -rc, lfipc_strerror(rc),
					    name);

		if (a) {
			PyErr_SetObject(PyExc_OSError, a);
			Py_DECREF(a);
		}
		return -1;
	}
	self->r = r;
	Py_XSETREF(self->name, Py_NewRef(fd >= 0 ? Py_None : name));
	if (identify(self) < 0) {
		region_unmap(self);
		return -1;
	}
	return 0;
}

static void region_dealloc(RegionObject *self)
{
	if (self->weakreflist)
		PyObject_ClearWeakRefs((PyObject *)self);
	if (self->r)
		region_unmap(self);
	Py_XDECREF(self->name);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static lfipc_region *live(RegionObject *self)
{
	if (!self->r || self->closing) {
		PyErr_SetString(PyExc_ValueError, "lfipc region is closed");
		return NULL;
	}
	return self->r;
}

static PyObject *region_close(RegionObject *self, PyObject *unused)
{
	self->closing = 1;
	if (self->r && self->nobjs == 0)
		region_unmap(self);
	Py_RETURN_NONE;
}

static PyObject *region_enter(RegionObject *self, PyObject *unused)
{
	if (!live(self))
		return NULL;
	return Py_NewRef((PyObject *)self);
}

static PyObject *region_exit(RegionObject *self, PyObject *args)
{
	return region_close(self, NULL);
}

static PyObject *region_unlink(RegionObject *self, PyObject *unused)
{
	int rc;

	if (self->name == Py_None) {
		PyErr_SetString(PyExc_ValueError,
				"an anonymous region has no name to unlink");
		return NULL;
	}
	rc = lfipc_region_unlink(PyUnicode_AsUTF8(self->name));
	if (rc < 0)
		return lfpy_err(rc);
	Py_RETURN_NONE;
}

static PyObject *region_recover(RegionObject *self, PyObject *unused)
{
	lfipc_region *r = live(self);
	int rc;

	if (!r)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = lfipc_region_recover(r);
	Py_END_ALLOW_THREADS
	if (rc < 0)
		return lfpy_err(rc);
	return PyLong_FromLong(rc);
}

static PyObject *region_stats(RegionObject *self, PyObject *unused)
{
	lfipc_region *r = live(self);
	lfipc_region_info info;
	int rc;

	if (!r)
		return NULL;
	rc = lfipc_region_stats(r, &info);
	if (rc < 0)
		return lfpy_err(rc);
	return Py_BuildValue("{snsnsIsI}", "size", (Py_ssize_t)info.size,
			     "bytes_free", (Py_ssize_t)info.bytes_free,
			     "objects", info.objects, "participants",
			     info.participants);
}

static PyObject *region_remove(RegionObject *self, PyObject *arg)
{
	lfipc_region *r = live(self);
	const char *name;
	int rc;

	if (!r)
		return NULL;
	name = PyUnicode_AsUTF8(arg);
	if (!name)
		return NULL;
	rc = lfipc_object_remove(r, name);
	if (rc < 0)
		return lfpy_err(rc);
	Py_RETURN_NONE;
}

static PyObject *region_get_fd(RegionObject *self, void *c)
{
	lfipc_region *r = live(self);

	return r ? PyLong_FromLong(lfipc_region_fd(r)) : NULL;
}

static PyObject *region_get_closed(RegionObject *self, void *c)
{
	return PyBool_FromLong(!self->r || self->closing);
}

static PyObject *region_get_key(RegionObject *self, void *c)
{
	return Py_BuildValue("(KK)", self->dev, self->ino);
}

static PyObject *region_get_size(RegionObject *self, void *c)
{
	return PyLong_FromSize_t(self->size);
}

static PyObject *region_get_name(RegionObject *self, void *c)
{
	return Py_NewRef(self->name ? self->name : Py_None);
}

static PyObject *region_get_nobjs(RegionObject *self, void *c)
{
	return PyLong_FromSsize_t(self->nobjs);
}

static PyMethodDef region_methods[] = {
	{"close", (PyCFunction)region_close, METH_NOARGS,
	 "close(): unmap the region in this process once no object of it is "
	 "in use here any more (objects already made keep working; no new "
	 "ones). Does not unlink a named region."},
	{"unlink", (PyCFunction)region_unlink, METH_NOARGS,
	 "unlink(): remove the region's name (shm_unlink); processes that "
	 "mapped it keep using it."},
	{"recover", (PyCFunction)region_recover, METH_NOARGS,
	 "recover() -> int: recover now whatever dead processes held (locks, "
	 "queue slots, semaphore units); returns the number of items."},
	{"stats", (PyCFunction)region_stats, METH_NOARGS,
	 "stats() -> dict: size, bytes_free, objects, participants."},
	{"remove", (PyCFunction)region_remove, METH_O,
	 "remove(name): delete the named object and free its memory. Every "
	 "handle of it, in every process, must be unused afterwards."},
	{"__enter__", (PyCFunction)region_enter, METH_NOARGS, NULL},
	{"__exit__", (PyCFunction)region_exit, METH_VARARGS, NULL},
	{NULL},
};

static PyGetSetDef region_getset[] = {
	{"fd", (getter)region_get_fd, NULL,
	 "the region's file descriptor (owned by the region: never close it)"},
	{"closed", (getter)region_get_closed, NULL, "close() was called"},
	{"name", (getter)region_get_name, NULL,
	 "the region's name, None for an anonymous region"},
	{"size", (getter)region_get_size, NULL, "bytes mapped"},
	{"_key", (getter)region_get_key, NULL,
	 "identity of the region's file: (st_dev, st_ino)"},
	{"_nobjs", (getter)region_get_nobjs, NULL,
	 "objects of the binding using this region in this process"},
	{NULL},
};

PyTypeObject RegionType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "lfipc._lfipc.Region",
	.tp_basicsize = sizeof(RegionObject),
	.tp_dealloc = (destructor)region_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "Region(name=None, size=0, create=False, mode=0o600, fd=-1)\n"
		  "--\n\n"
		  "A shared-memory region mapped in this process (C core).",
	.tp_weaklistoffset = offsetof(RegionObject, weakreflist),
	.tp_methods = region_methods,
	.tp_getset = region_getset,
	.tp_init = (initproc)region_init,
	.tp_new = PyType_GenericNew,
};

int lfpy_region_type_init(PyObject *m)
{
	if (PyType_Ready(&RegionType) < 0)
		return -1;
	Py_INCREF(&RegionType);
	if (PyModule_AddObject(m, "Region", (PyObject *)&RegionType) < 0)
		return -1;
	return PyModule_AddObject(m, "REGION_DEFAULT_SIZE",
				  PyLong_FromSize_t(REGION_DEFAULT_SIZE));
}
