/* SPDX-License-Identifier: MIT */
/*
 * pipe.c - Pipe() and Connection: multiprocessing.connection's interface
 * over lfipc/pipe.h.
 *
 * Each end is held by one process at a time (see lfipc/pipe.h). A
 * Connection that this process has not used yet can move to another
 * process by pickling: __reduce__ hands the end on (closes this process's
 * provisional handle), and the unpickler attaches it. A Connection that
 * was used can move only by fork(). An object whose end was handed on
 * re-attaches it on its next use (an error if the other process has it).
 */
#include "pylfipc.h"

#include <errno.h>
#include <string.h>

#define STACK_BUF 4096

typedef struct {
	LFPY_HEAD
	lfipc_conn *c;	/* NULL when closed or handed on */
	int end;
	int readable, writable;
	int closed;	/* close() was called */
	int used;	/* a send, recv or poll went through this object */
} ConnObject;

static PyObject *conn_wrap(RegionObject *ro, lfipc_conn *c, const char *name,
			   int end, int readable, int writable)
{
	ConnObject *self = PyObject_New(ConnObject, &ConnectionType);

	if (!self) {
		lfipc_conn_close(c);
		lfpy_region_unuse(ro);
		return NULL;
	}
	lfpy_obj_set(self, ro, name);
	self->c = c;
	self->end = end;
	self->readable = readable;
	self->writable = writable;
	self->closed = 0;
	self->used = 0;
	return (PyObject *)self;
}

PyObject *lfpy_conn_open(RegionObject *ro, const char *name, int end,
			 int readable, int writable)
{
	lfipc_conn *c;
	int rc;

	if (end != 0 && end != 1) {
		PyErr_SetString(PyExc_ValueError, "end must be 0 or 1");
		return NULL;
	}
	if (lfpy_region_use(ro) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = lfipc_pipe_open(ro->r, name, end, &c);
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		lfpy_region_unuse(ro);
		return lfpy_err(rc);
	}
	return conn_wrap(ro, c, name, end, readable, writable);
}

static void conn_dealloc(ConnObject *self)
{
	lfipc_conn_close(self->c);
	lfpy_obj_clear(self);
	PyObject_Free(self);
}

/* The handle for an operation, re-attaching a handed-on end. */
static lfipc_conn *handle(ConnObject *self)
{
	int rc;

	if (self->closed) {
		PyErr_SetString(PyExc_OSError, "handle is closed");
		return NULL;
	}
	if (!self->c) {
		Py_BEGIN_ALLOW_THREADS
		rc = lfipc_pipe_open(self->ro->r, self->name, self->end,
				     &self->c);
		Py_END_ALLOW_THREADS
		if (rc < 0) {
			self->c = NULL;
			lfpy_err(rc);
			return NULL;
		}
	}
	self->used = 1;
	return self->c;
}

static lfipc_conn *readable(ConnObject *self)
{
	lfipc_conn *c = handle(self);

	if (c && !self->readable) {
		PyErr_SetString(PyExc_OSError, "connection is write-only");
		return NULL;
	}
	return c;
}

static lfipc_conn *writable(ConnObject *self)
{
	lfipc_conn *c = handle(self);

	if (c && !self->writable) {
		PyErr_SetString(PyExc_OSError, "connection is read-only");
		return NULL;
	}
	return c;
}

static PyObject *conn_raise(int rc)
{
	switch (rc) {
	case LFPY_EXC:
		return NULL;
	case -EBADF:
		PyErr_SetString(PyExc_OSError, "wrong direction for this end "
					       "of a one-way pipe");
		return NULL;
	}
	return lfpy_err(rc);
}

/* ---- send -------------------------------------------------------------- */

/* One send or receive, for lfpy_block and lfpy_uninterruptible. */
struct cop {
	lfipc_conn *c;
	const void *msg; /* send */
	void *buf;	 /* receive */
	size_t len;	 /* the message's length; the buffer's size */
	size_t *lenp;	 /* receive: the length received or needed */
};

static int send_fn(void *p, int64_t t)
{
	struct cop *o = p;

	return lfipc_conn_send(o->c, o->msg, o->len, t);
}

static int recv_fn(void *p, int64_t t)
{
	struct cop *o = p;

	return lfipc_conn_recv(o->c, o->buf, o->len, o->lenp, t);
}

static int poll_fn(void *p, int64_t t)
{
	int rc = lfipc_conn_poll(p, t);

	return rc == 0 ? -ETIMEDOUT : rc;
}

/*
 * A message of at most SMALL_MSG bytes fits every ring (the smallest ring
 * is LFIPC_PIPE_MIN_RING, each frame has an 8-byte header), so it moves
 * all or nothing: it is tried holding the GIL and waited for
 * interruptibly (an interrupted call moved nothing). A longer one may be
 * larger than the ring: it may wait for the other side even with
 * LFIPC_NOWAIT, and a call that is interrupted (or whose timeout passes)
 * while it streams gives the message up (lfipc/pipe.h). So it is moved
 * in one call without the GIL (the other side may be a thread of this
 * process), without a timeout and not interruptible: while it streams,
 * Ctrl-C waits until the other side has taken it, or is gone.
 */
#define SMALL_MSG (LFIPC_PIPE_MIN_RING - 8)

static int send_raw(lfipc_conn *c, const void *msg, size_t len)
{
	struct cop o = {.c = c, .msg = msg, .len = len};

	if (len <= SMALL_MSG)
		return lfpy_call(send_fn, &o, LFIPC_FOREVER);
	return lfpy_uninterruptible(send_fn, &o, LFIPC_FOREVER);
}

static PyObject *conn_send_bytes(ConnObject *self, PyObject *args,
				 PyObject *kw)
{
	static char *kwlist[] = {"buf", "offset", "size", NULL};
	Py_ssize_t offset = 0, size = -1;
	PyObject *size_o = Py_None;
	lfipc_conn *c;
	Py_buffer view;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "y*|nO:send_bytes", kwlist,
					 &view, &offset, &size_o))
		return NULL;
	c = writable(self);
	if (!c)
		goto fail;
	if (size_o != Py_None) {
		size = PyLong_AsSsize_t(size_o);
		if (size == -1 && PyErr_Occurred())
			goto fail;
	}
	if (offset < 0) {
		PyErr_SetString(PyExc_ValueError, "offset is negative");
		goto fail;
	}
	if (view.len < offset) {
		PyErr_SetString(PyExc_ValueError, "buffer length < offset");
		goto fail;
	}
	if (size_o == Py_None) {
		size = view.len - offset;
	} else if (size < 0) {
		PyErr_SetString(PyExc_ValueError, "size is negative");
		goto fail;
	} else if (offset + size > view.len) {
		PyErr_SetString(PyExc_ValueError,
				"buffer length < offset + size");
		goto fail;
	}
	rc = send_raw(c, (char *)view.buf + offset, (size_t)size);
	PyBuffer_Release(&view);
	if (rc < 0)
		return conn_raise(rc);
	Py_RETURN_NONE;
fail:
	PyBuffer_Release(&view);
	return NULL;
}

static PyObject *conn_send(ConnObject *self, PyObject *obj)
{
	lfipc_conn *c = writable(self);
	PyObject *data;
	int rc;

	if (!c)
		return NULL;
	data = lfpy_dumps(obj);
	if (!data)
		return NULL;
	rc = send_raw(c, PyBytes_AS_STRING(data),
		      (size_t)PyBytes_GET_SIZE(data));
	Py_DECREF(data);
	if (rc < 0)
		return conn_raise(rc);
	Py_RETURN_NONE;
}

/* ---- receive ------------------------------------------------------------- */

/* The rest of a message whose size is known to be need: it is there (its
 * header is), though a long one may still be streaming in. */
static int recv_known(lfipc_conn *c, void *buf, size_t need, size_t *len)
{
	struct cop o = {.c = c, .buf = buf, .len = need, .lenp = len};

	return lfpy_uninterruptible(recv_fn, &o, LFIPC_FOREVER);
}

/*
 * Receive one message into buf (bufsz bytes), waiting for one. Return 0
 * and *len; -EMSGSIZE (*len: the size needed; nothing consumed); -EPIPE
 * end of file; LFPY_EXC; other negative errno.
 */
static int recv_into(lfipc_conn *c, void *buf, size_t bufsz, size_t *len)
{
	struct cop o = {.c = c, .buf = buf, .lenp = len};
	int rc;

	/* With at most SMALL_MSG bytes of buffer the receive never streams
	 * (a longer message is refused with -EMSGSIZE, nothing consumed). */
	o.len = bufsz < SMALL_MSG ? bufsz : SMALL_MSG;
	/* Straight to the blocking call, without a first LFIPC_NOWAIT
	 * attempt holding the GIL: in a request/reply exchange the reply is
	 * rarely there yet, and a NOWAIT receive that finds nothing must
	 * decide whether the writer still lives before it says -EAGAIN (a
	 * system call, as much as the whole wait). The library's wait tries
	 * once, spins briefly, then sleeps. */
	rc = lfpy_block(recv_fn, &o, LFIPC_FOREVER);
	if (rc == -EMSGSIZE && o.len < bufsz && *len <= bufsz)
		rc = recv_known(c, buf, bufsz, len);
	return rc;
}

static PyObject *recv_error(int rc)
{
	if (rc == -EPIPE) {
		PyErr_SetNone(PyExc_EOFError);
		return NULL;
	}
	return conn_raise(rc);
}

/*
 * The one receive path: the next message, into buf (bufsz bytes) when it
 * fits, else, if it is at most maxlen bytes, into a new bytes object
 * *big. Return 0 (*len: its length; *big NULL or the bytes); -EMSGSIZE
 * it is longer than maxlen (*len: its length; nothing consumed); -1 with
 * an exception (recv_error's at end of file and on errors).
 */
static int recv_msg(lfipc_conn *c, void *buf, size_t bufsz, size_t maxlen,
		    size_t *len, PyObject **big)
{
	int rc = recv_into(c, buf, bufsz, len);

	*big = NULL;
	if (rc == 0)
		return 0;
	if (rc != -EMSGSIZE) {
		recv_error(rc);
		return -1;
	}
	if (*len > maxlen)
		return -EMSGSIZE;
	if (*len > PY_SSIZE_T_MAX) {
		PyErr_NoMemory();
		return -1;
	}
	*big = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)*len);
	if (!*big)
		return -1;
	rc = recv_known(c, PyBytes_AS_STRING(*big), *len, len);
	if (rc < 0) {
		Py_CLEAR(*big);
		recv_error(rc);
		return -1;
	}
	return 0;
}

static PyObject *conn_recv_bytes(ConnObject *self, PyObject *args,
				 PyObject *kw)
{
	static char *kwlist[] = {"maxlength", NULL};
	char stack[STACK_BUF];
	size_t len = 0, bufsz = sizeof stack, maxlen = SIZE_MAX;
	PyObject *maxo = Py_None, *big;
	lfipc_conn *c;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:recv_bytes", kwlist,
					 &maxo))
		return NULL;
	c = readable(self);
	if (!c)
		return NULL;
	if (maxo != Py_None) {
		Py_ssize_t m = PyLong_AsSsize_t(maxo);

		if (m == -1 && PyErr_Occurred())
			return NULL;
		if (m < 0) {
			PyErr_SetString(PyExc_ValueError, "negative maxlength");
			return NULL;
		}
		maxlen = (size_t)m;
		/* a message above maxlength must not be taken */
		if (maxlen < bufsz)
			bufsz = maxlen;
	}
	rc = recv_msg(c, stack, bufsz, maxlen, &len, &big);
	if (rc == -EMSGSIZE) {
		/* as multiprocessing: the connection becomes unusable for
		 * receiving (here the message stays where it was) */
		if (self->writable)
			self->readable = 0;
		else {
			lfipc_conn_close(self->c);
			self->c = NULL;
			self->closed = 1;
		}
		PyErr_SetString(PyExc_OSError, "bad message length");
		return NULL;
	}
	if (rc < 0)
		return NULL;
	return big ? big : PyBytes_FromStringAndSize(stack, (Py_ssize_t)len);
}

static PyObject *conn_recv(ConnObject *self, PyObject *unused)
{
	char stack[STACK_BUF];
	lfipc_conn *c = readable(self);
	size_t len = 0;
	PyObject *big, *r;

	if (!c || recv_msg(c, stack, sizeof stack, SIZE_MAX, &len, &big) < 0)
		return NULL;
	r = lfpy_loads(big ? PyBytes_AS_STRING(big) : stack, len);
	Py_XDECREF(big);
	return r;
}

static PyObject *conn_recv_bytes_into(ConnObject *self, PyObject *args,
				      PyObject *kw)
{
	static char *kwlist[] = {"buf", "offset", NULL};
	Py_ssize_t offset = 0;
	PyObject *big, *r = NULL;
	lfipc_conn *c;
	Py_buffer view;
	size_t len = 0;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "w*|n:recv_bytes_into",
					 kwlist, &view, &offset))
		return NULL;
	c = readable(self);
	if (!c)
		goto out;
	if (offset < 0) {
		PyErr_SetString(PyExc_ValueError, "negative offset");
		goto out;
	}
	if (offset > view.len) {
		PyErr_SetString(PyExc_ValueError, "offset too large");
		goto out;
	}
	if (recv_msg(c, (char *)view.buf + offset,
		     (size_t)(view.len - offset), SIZE_MAX, &len, &big) < 0)
		goto out;
	if (big) {
		/* too small: the whole message goes with the exception */
		PyErr_SetObject(lfpy.buffer_too_short, big);
		Py_DECREF(big);
		goto out;
	}
	r = PyLong_FromSize_t(len);
out:
	PyBuffer_Release(&view);
	return r;
}

static PyObject *conn_poll(ConnObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"timeout", NULL};
	PyObject *timeout = NULL;
	lfipc_conn *c;
	int64_t t;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:poll", kwlist,
					 &timeout))
		return NULL;
	c = readable(self);
	if (!c)
		return NULL;
	/* poll() with no argument does not wait; poll(None) waits forever */
	if (!timeout)
		t = LFIPC_NOWAIT;
	else if (lfpy_timeout1(timeout, &t) < 0)
		return NULL;
	rc = lfipc_conn_poll(c, LFIPC_NOWAIT);
	if (rc == 0 && t != LFIPC_NOWAIT) {
		rc = lfpy_block(poll_fn, c, t);
		if (rc == -ETIMEDOUT)
			rc = 0;
	}
	if (rc < 0)
		return conn_raise(rc);
	return PyBool_FromLong(rc);
}

static PyObject *conn_close(ConnObject *self, PyObject *unused)
{
	lfipc_conn_close(self->c);
	self->c = NULL;
	self->closed = 1;
	Py_RETURN_NONE;
}

static PyObject *conn_enter(ConnObject *self, PyObject *unused)
{
	return Py_NewRef((PyObject *)self);
}

static PyObject *conn_exit(ConnObject *self, PyObject *args)
{
	return conn_close(self, NULL);
}

/* The side fileno() and wait() watch: receiving, or sending for the send
 * end of a one-way pipe. */
static int conn_side(ConnObject *self)
{
	return self->readable ? LFIPC_FD_GET : LFIPC_FD_PUT;
}

/* The library's fd of one side (lfipc/common.h LFIPC_FD_GET), made at the
 * first call (which claims the end, as a recv does), closed by close(). */
static PyObject *conn_fd(ConnObject *self, int side)
{
	lfipc_conn *c = side == LFIPC_FD_GET ? readable(self) : writable(self);
	int fd;

	if (!c)
		return NULL;
	fd = lfipc_conn_fd(c, side);
	return fd < 0 ? conn_raise(fd) : PyLong_FromLong(fd);
}

static PyObject *conn_fileno(ConnObject *self, PyObject *unused)
{
	return conn_fd(self, conn_side(self));
}

static PyObject *conn_send_fileno(ConnObject *self, PyObject *unused)
{
	return conn_fd(self, LFIPC_FD_PUT);
}

int lfpy_conn_waitable(PyObject *o, struct lfipc_waitable *w)
{
	ConnObject *self = (ConnObject *)o;
	lfipc_conn *c;

	if (!PyObject_TypeCheck(o, &ConnectionType))
		return 0;
	c = handle(self);
	if (!c)
		return -1;
	*w = (struct lfipc_waitable){.kind = LFIPC_WAIT_CONN,
				     .side = conn_side(self), .obj = c};
	return 1;
}

static PyObject *conn_reduce(ConnObject *self, PyObject *unused)
{
	if (self->closed) {
		PyErr_SetString(PyExc_OSError, "handle is closed");
		return NULL;
	}
	if (self->used) {
		PyErr_SetString(PyExc_ValueError,
				"this lfipc Connection was used in this "
				"process; a used end moves to another process "
				"only by fork()");
		return NULL;
	}
	/* hand the end on: the unpickling process attaches it */
	lfipc_conn_close(self->c);
	self->c = NULL;
	return Py_BuildValue("O(OCs(iii))", lfpy.rebuild, (PyObject *)self->ro,
			     LFPY_KIND_CONN, self->name, self->end,
			     self->readable, self->writable);
}

static PyObject *conn_repr(ConnObject *self)
{
	return PyUnicode_FromFormat("<lfipc.Connection pipe='%s' end=%d%s>",
				    self->name, self->end,
				    self->closed ? " closed" : "");
}

static PyObject *conn_get_closed(ConnObject *self, void *c)
{
	return PyBool_FromLong(self->closed);
}

static PyObject *conn_get_readable(ConnObject *self, void *c)
{
	return PyBool_FromLong(self->readable);
}

static PyObject *conn_get_writable(ConnObject *self, void *c)
{
	return PyBool_FromLong(self->writable);
}

static PyObject *conn_get_end(ConnObject *self, void *c)
{
	return PyLong_FromLong(self->end);
}

static PyMethodDef conn_methods[] = {
	{"send", (PyCFunction)conn_send, METH_O,
	 "send(obj)\n\nSend a picklable object (any size: a message larger "
	 "than the pipe's ring streams through it). Waits for room; raises "
	 "BrokenPipeError if the other end is closed or its process died."},
	{"recv", (PyCFunction)conn_recv, METH_NOARGS,
	 "recv()\n\nReceive an object sent with send(); waits for one. "
	 "Raises EOFError when the other end is closed (or its process "
	 "died) and nothing is left. Interruptible."},
	{"send_bytes", (PyCFunction)(void (*)(void))conn_send_bytes,
	 METH_VARARGS | METH_KEYWORDS,
	 "send_bytes(buf, offset=0, size=None)\n\nSend size bytes of a "
	 "bytes-like object from offset as one message."},
	{"recv_bytes", (PyCFunction)(void (*)(void))conn_recv_bytes,
	 METH_VARARGS | METH_KEYWORDS,
	 "recv_bytes(maxlength=None) -> bytes\n\nReceive one message. If "
	 "it is longer than maxlength, raise OSError (and, as "
	 "multiprocessing, stop receiving on this connection)."},
	{"recv_bytes_into", (PyCFunction)(void (*)(void))conn_recv_bytes_into,
	 METH_VARARGS | METH_KEYWORDS,
	 "recv_bytes_into(buf, offset=0) -> int\n\nReceive one message into "
	 "a writable buffer at offset; return its length. If it does not "
	 "fit, raise multiprocessing.BufferTooShort with the whole message "
	 "as args[0]."},
	{"poll", (PyCFunction)(void (*)(void))conn_poll,
	 METH_VARARGS | METH_KEYWORDS,
	 "poll(timeout=0.0) -> bool\n\nWhether a message (or end of file) "
	 "can be received, waiting up to timeout seconds (None: forever)."},
	{"close", (PyCFunction)conn_close, METH_NOARGS,
	 "close()\n\nClose this end (the other end gets EOFError after "
	 "what is left, if this process used it)."},
	{"fileno", (PyCFunction)conn_fileno, METH_NOARGS,
	 "fileno() -> int\n\nA file descriptor that is readable while a "
	 "recv() would not block (a message, or end of file: the other end "
	 "closed or its process died), for selectors, select, asyncio's "
	 "add_reader and multiprocessing.connection.wait. On the send end of "
	 "a one-way pipe it watches send() instead (see send_fileno). "
	 "Level-triggered: it stays readable after a recv() until a recv "
	 "or poll() through this object finds nothing (poll() returns "
	 "False), so on readiness receive while poll() is True. Claims the "
	 "end as a recv does; closed by close()."},
	{"send_fileno", (PyCFunction)conn_send_fileno, METH_NOARGS,
	 "send_fileno() -> int\n\nAs fileno(), for send(): readable while "
	 "a send() of a message that fits the free room would not block "
	 "(room, or the other end is gone)."},
	{"__enter__", (PyCFunction)conn_enter, METH_NOARGS, NULL},
	{"__exit__", (PyCFunction)conn_exit, METH_VARARGS, NULL},
	{"__reduce__", (PyCFunction)conn_reduce, METH_NOARGS, NULL},
	{NULL},
};

static PyGetSetDef conn_getset[] = {
	{"closed", (getter)conn_get_closed, NULL, "close() was called"},
	{"readable", (getter)conn_get_readable, NULL, "can receive"},
	{"writable", (getter)conn_get_writable, NULL, "can send"},
	{"end", (getter)conn_get_end, NULL, "which end of the pipe: 0 or 1"},
	LFPY_GETSET_COMMON,
	{NULL},
};

PyTypeObject ConnectionType = {
	LFPY_TYPE_HEAD("lfipc.Connection", ConnObject, conn_dealloc,
		       conn_repr),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "One end of an lfipc Pipe "
		  "(multiprocessing.connection.Connection's interface). Made "
		  "by Pipe(); picklable before its first use (the end then "
		  "moves to the unpickling process).",
	.tp_methods = conn_methods,
	.tp_getset = conn_getset,
};

struct pipe_create {
	size_t ring;
	bool duplex;
	lfipc_conn *e0, *e1;
};

static int pipe_create_fn(lfipc_region *r, const char *name, void *p)
{
	struct pipe_create *c = p;

	return lfipc_pipe_create(r, name, c->ring, c->duplex, &c->e0, &c->e1);
}

static PyObject *mod_pipe(PyObject *mod, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"duplex", "region", "name", "ring_bytes",
				 NULL};
	PyObject *region = Py_None, *name = Py_None, *a, *b;
	struct pipe_create c = {.duplex = true};
	char pname[LFIPC_NAME_MAX + 1];
	Py_ssize_t ring = 0;
	RegionObject *ro;
	int duplex = 1;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|p$OOn:Pipe", kwlist,
					 &duplex, &region, &name, &ring))
		return NULL;
	if (ring < 0) {
		PyErr_SetString(PyExc_ValueError, "ring_bytes must be >= 0");
		return NULL;
	}
	c.ring = (size_t)ring;
	c.duplex = duplex;
	ro = lfpy_create(region, name, LFPY_KIND_CONN,
			 2 * (ring ? (size_t)ring : LFIPC_PIPE_DEFAULT_RING) +
				 8192,
			 LFIPC_NAME_MAX, pipe_create_fn, &c, pname);
	if (!ro)
		return NULL;
	/* two uses: one per end (lfpy_create took the first) */
	if (lfpy_region_use(ro) < 0) {
		lfipc_conn_close(c.e0);
		lfipc_conn_close(c.e1);
		lfpy_region_unuse(ro);
		Py_DECREF(ro);
		return NULL;
	}
	a = conn_wrap(ro, c.e0, pname, 0, 1, duplex);
	b = a ? conn_wrap(ro, c.e1, pname, 1, duplex, 1) : NULL;
	if (!a) {
		lfipc_conn_close(c.e1);
		lfpy_region_unuse(ro);
	}
	Py_DECREF(ro);
	if (!b) {
		Py_XDECREF(a);
		return NULL;
	}
	return Py_BuildValue("(NN)", a, b);
}

static PyObject *mod_connection(PyObject *mod, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"name", "end", "region", NULL};
	PyObject *region = Py_None, *r;
	const char *name;
	RegionObject *ro;
	int end;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "si|O:Connection", kwlist,
					 &name, &end, &region))
		return NULL;
	ro = lfpy_region_arg(region, 0, false);
	if (!ro)
		return NULL;
	r = lfpy_conn_open(ro, name, end, 1, 1);
	Py_DECREF(ro);
	return r;
}

PyMethodDef lfpy_pipe_functions[] = {
	{"Pipe", (PyCFunction)(void (*)(void))mod_pipe,
	 METH_VARARGS | METH_KEYWORDS,
	 "Pipe(duplex=True, *, region=None, name=None, ring_bytes=0)\n--\n\n"
	 "Return (conn1, conn2), the two Connection ends of a new pipe "
	 "(multiprocessing.Pipe). With duplex=False, conn1 only receives "
	 "and conn2 only sends. ring_bytes: each direction's ring (default "
	 "64 KiB; any message size works). region/name as for the other "
	 "objects."},
	{"open_connection", (PyCFunction)(void (*)(void))mod_connection,
	 METH_VARARGS | METH_KEYWORDS,
	 "open_connection(name, end, region=None) -> Connection\n--\n\n"
	 "Attach end 0 or 1 of the named pipe in region (an unrelated "
	 "process's way to a Pipe). The end must not be held by a live "
	 "process."},
	{NULL},
};

int lfpy_pipe_types_init(PyObject *m)
{
	if (PyType_Ready(&ConnectionType) < 0)
		return -1;
	Py_INCREF(&ConnectionType);
	return PyModule_AddObject(m, "Connection", (PyObject *)&ConnectionType);
}
