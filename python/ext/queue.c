/* SPDX-License-Identifier: MIT */
/*
 * queue.c - Queue, SimpleQueue and JoinableQueue: multiprocessing's
 * queues over lfipc_queue, carrying pickles.
 *
 * Message encoding (one lfipc message per Python object):
 *   - a pickle (protocol 5, so its first byte is 0x80 PROTO), in place,
 *     when it fits the queue's message size;
 *   - otherwise a spill descriptor: byte 0x01, the pickle's length as 8
 *     bytes little-endian, then the name of a block of the same region (an
 *     lfipc Array of uint8) that holds the pickle. The consumer that gets
 *     the descriptor reads the block and removes it.
 *
 * Each queue has a companion Array of int64, "<name>~m":
 *   [0] spill blocks in existence (incremented before a block is made,
 *       decremented when it is removed), so clear() knows whether it may
 *       discard in O(1) or must take the messages out to free their blocks;
 *   [1] the sequence that names the spill blocks;
 *   [2] 1 once shutdown() was called through the binding.
 */
#include "pylfipc.h"

#include <errno.h>
#include <string.h>

#define SPILL_TAG 0x01
#define PICKLE_TAG 0x80
#define SPILL_HDR 9
/* Default slot size: a slot of 256 bytes holds a pickle of up to 240. */
#define DEFAULT_MSG_SIZE 240
/* The smallest message size: a spill descriptor must fit. */
#define MIN_MSG_SIZE (SPILL_HDR + LFIPC_NAME_MAX + 8)
/* Capacity of a queue made with maxsize <= 0 (queues are bounded). */
#define DEFAULT_CAPACITY 16384
#define STACK_BUF 4096
#define META_LEN 4
enum { META_SPILLS, META_SEQ, META_SHUTDOWN };

typedef struct {
	LFPY_HEAD
	lfipc_queue *q;
	lfipc_array *meta;
	size_t msg_size, capacity;
	unsigned spill_id;
	char kind;
	int closed;
} QueueObject;

static int is_joinable(QueueObject *self)
{
	return self->kind == LFPY_KIND_JQUEUE;
}

/* ---- setup ------------------------------------------------------------- */

static unsigned fnv1a(const char *s)
{
	unsigned h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

/* Open the companion array, making it if it is missing (a creator that
 * died between the two creations, or a queue made by a C program). */
static int meta_attach(lfipc_region *r, const char *qname, lfipc_array **out)
{
	char name[LFIPC_NAME_MAX + 1];
	int rc, i;

	snprintf(name, sizeof name, "%s~m", qname);
	for (i = 0; i < 10; i++) {
		rc = lfipc_array_open(r, name, out);
		if (rc != -ENOENT)
			return rc;
		rc = lfipc_array_create(r, name, LFIPC_I64, META_LEN, false,
					out);
		if (rc != -EEXIST)
			return rc;
	}
	return -EEXIST;
}

static PyObject *queue_wrap(PyTypeObject *type, RegionObject *ro, char kind,
			    const char *name, lfipc_queue *q)
{
	QueueObject *self;
	int rc;

	self = (QueueObject *)type->tp_alloc(type, 0);
	if (!self) {
		lfipc_queue_close(q);
		lfpy_region_unuse(ro);
		return NULL;
	}
	lfpy_obj_set(self, ro, name);
	self->q = q;
	self->kind = kind;
	self->msg_size = lfipc_queue_msg_size(q);
	self->capacity = lfipc_queue_capacity(q);
	self->spill_id = fnv1a(name);
	rc = meta_attach(ro->r, name, &self->meta);
	if (rc < 0) {
		Py_DECREF(self);
		return lfpy_err(rc);
	}
	return (PyObject *)self;
}

static PyTypeObject *kind_type(char kind)
{
	if (kind == LFPY_KIND_JQUEUE)
		return &JoinableQueueType;
	if (kind == LFPY_KIND_SIMPLEQUEUE)
		return &SimpleQueueType;
	return &QueueType;
}

static PyObject *queue_open_typed(PyTypeObject *type, RegionObject *ro,
				  char kind, const char *name)
{
	lfipc_queue *q;
	int rc;

	if (lfpy_region_use(ro) < 0)
		return NULL;
	rc = lfipc_queue_open(ro->r, name, &q);
	if (rc < 0) {
		lfpy_region_unuse(ro);
		return lfpy_err(rc);
	}
	return queue_wrap(type, ro, kind, name, q);
}

PyObject *lfpy_queue_open(RegionObject *ro, char kind, const char *name)
{
	return queue_open_typed(kind_type(kind), ro, kind, name);
}

struct qcreate {
	size_t cap, msg_size;
	unsigned flags;
	lfipc_queue *q;
};

static int qcreate_fn(lfipc_region *r, const char *name, void *p)
{
	struct qcreate *c = p;
	lfipc_array *meta;
	int rc;

	rc = lfipc_queue_create(r, name, c->cap, c->msg_size, c->flags, &c->q);
	if (rc < 0)
		return rc;
	/* the companion now, so that a full region fails the creation */
	rc = meta_attach(r, name, &meta);
	if (rc < 0) {
		lfipc_queue_close(c->q);
		lfipc_object_remove(r, name);
		return rc;
	}
	lfipc_array_close(meta);
	return 0;
}

static char type_kind(PyTypeObject *type)
{
	if (PyType_IsSubtype(type, &JoinableQueueType))
		return LFPY_KIND_JQUEUE;
	if (PyType_IsSubtype(type, &SimpleQueueType))
		return LFPY_KIND_SIMPLEQUEUE;
	return LFPY_KIND_QUEUE;
}

static PyObject *queue_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"maxsize", "region", "name", "create",
				 "msg_size", NULL};
	Py_ssize_t maxsize = 0, msg_size = DEFAULT_MSG_SIZE;
	PyObject *region = Py_None, *name = Py_None, *create = Py_True;
	char kind = type_kind(type);
	char qname[LFIPC_NAME_MAX + 1];
	struct qcreate c;
	RegionObject *ro;
	PyObject *res;
	size_t n, stride;
	int cr;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|n$OOOn", kwlist, &maxsize,
					 &region, &name, &create, &msg_size))
		return NULL;
	cr = PyObject_IsTrue(create);
	if (cr < 0)
		return NULL;
	if (!cr) {
		if (name == Py_None) {
			PyErr_SetString(PyExc_ValueError,
					"create=False needs the name of the queue");
			return NULL;
		}
		ro = lfpy_region_arg(region, 0, false);
		if (!ro)
			return NULL;
		if (lfpy_name_arg(name, kind, qname, LFIPC_NAME_MAX - 2) < 0) {
			Py_DECREF(ro);
			return NULL;
		}
		res = queue_open_typed(type, ro, kind, qname);
		Py_DECREF(ro);
		return res;
	}
	if (msg_size < MIN_MSG_SIZE ||
	    (size_t)msg_size > LFIPC_QUEUE_MAX_MSG_SIZE) {
		PyErr_Format(PyExc_ValueError, "msg_size must be %d to %zu",
			     MIN_MSG_SIZE, LFIPC_QUEUE_MAX_MSG_SIZE);
		return NULL;
	}
	c.cap = maxsize <= 0 ? DEFAULT_CAPACITY : (size_t)maxsize;
	if (c.cap > LFIPC_QUEUE_MAX_CAPACITY) {
		PyErr_Format(PyExc_ValueError, "maxsize above %zu",
			     LFIPC_QUEUE_MAX_CAPACITY);
		return NULL;
	}
	c.msg_size = (size_t)msg_size;
	c.flags = kind == LFPY_KIND_JQUEUE ? LFIPC_QUEUE_JOINABLE : 0;
	for (n = 2; n < c.cap; n <<= 1)
		;
	stride = (16 + c.msg_size + 63) & ~(size_t)63;
	ro = lfpy_create(region, name, 'q', 1024 + n * stride + 4096,
			 LFIPC_NAME_MAX - 2, qcreate_fn, &c, qname);
	if (!ro)
		return NULL;
	res = queue_wrap(type, ro, kind, qname, c.q);
	Py_DECREF(ro);
	return res;
}

static void queue_dealloc(QueueObject *self)
{
	lfipc_array_close(self->meta);
	if (self->q)
		lfipc_queue_close(self->q);
	lfpy_obj_clear(self);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ---- error mapping -------------------------------------------------------- */

static PyObject *queue_raise(QueueObject *self, int rc, int putting)
{
	if (rc == LFPY_EXC)
		return NULL;
	if (rc == -EAGAIN || rc == -ETIMEDOUT) {
		PyErr_SetNone(putting ? lfpy.full : lfpy.empty);
		return NULL;
	}
	if (rc == -EPIPE) {
		PyErr_SetString(lfpy.shutdown, "the queue is shut down");
		return NULL;
	}
	return lfpy_err(rc);
}

static int check_open(QueueObject *self)
{
	if (self->closed) {
		PyErr_Format(PyExc_ValueError, "Queue %R is closed",
			     (PyObject *)self);
		return -1;
	}
	return 0;
}

/* ---- put ----------------------------------------------------------------- */

struct qop {
	lfipc_queue *q;
	const void *msg;
	size_t len;
	void *buf;
	size_t bufsz;
	size_t *lenp;
	const void *const *msgs;
	const size_t *lens;
	size_t n;
};

static int put_fn(void *p, int64_t t)
{
	struct qop *o = p;

	return lfipc_queue_put(o->q, o->msg, o->len, t);
}

static int get_fn(void *p, int64_t t)
{
	struct qop *o = p;

	return lfipc_queue_get(o->q, o->buf, o->bufsz, o->lenp, t);
}

static int put_many_fn(void *p, int64_t t)
{
	struct qop *o = p;

	return lfipc_queue_put_many(o->q, o->msgs, o->lens, o->n, t);
}

static int get_many_fn(void *p, int64_t t)
{
	struct qop *o = p;

	return lfipc_queue_get_many(o->q, o->buf, o->bufsz, o->lenp, o->n, t);
}

static int join_fn(void *p, int64_t t)
{
	struct qop *o = p;

	return lfipc_queue_join(o->q, t);
}

static int put_raw(QueueObject *self, const void *msg, size_t len,
		   int64_t timeout)
{
	struct qop o = {.q = self->q, .msg = msg, .len = len};
	int rc = lfipc_queue_put(self->q, msg, len, LFIPC_NOWAIT);

	if (rc == -EAGAIN && timeout != LFIPC_NOWAIT)
		rc = lfpy_block(put_fn, &o, timeout);
	return rc;
}

static void spill_name(QueueObject *self, int64_t seq, char *buf, size_t n)
{
	snprintf(buf, n, "~%08x.%llx", self->spill_id,
		 (unsigned long long)seq);
}

static void spill_count(QueueObject *self, int64_t delta)
{
	lfipc_array_fetch_add(self->meta, META_SPILLS, delta, NULL);
}

/*
 * Store a pickle too large for a slot in a block of the region and write
 * its descriptor to desc (MIN_MSG_SIZE bytes); *desc_len gets its length.
 * Return 0 or a negative errno (nothing left behind).
 */
static int spill_make(QueueObject *self, const char *data, size_t len,
		      unsigned char *desc, size_t *desc_len)
{
	char name[LFIPC_NAME_MAX + 1];
	lfipc_array *a;
	int64_t seq;
	size_t nl;
	int rc, tries = 0;

	spill_count(self, 1);
	do {
		lfipc_array_fetch_add(self->meta, META_SEQ, 1, &seq);
		spill_name(self, seq, name, sizeof name);
		rc = lfipc_array_create(self->ro->r, name, LFIPC_U8, len, false,
					&a);
	} while (rc == -EEXIST && ++tries < 100);
	if (rc < 0) {
		spill_count(self, -1);
		return rc;
	}
	memcpy(lfipc_array_data(a), data, len);
	lfipc_array_close(a);
	desc[0] = SPILL_TAG;
	for (int i = 0; i < 8; i++)
		desc[1 + i] = (unsigned char)((uint64_t)len >> (8 * i));
	nl = strlen(name);
	memcpy(desc + SPILL_HDR, name, nl);
	*desc_len = SPILL_HDR + nl;
	return 0;
}

/* Remove the spill block a descriptor names (a message that was not put,
 * or one taken by clear()). */
static void spill_drop(QueueObject *self, const unsigned char *desc,
		       size_t len)
{
	char name[LFIPC_NAME_MAX + 1];
	size_t nl = len - SPILL_HDR;

	if (len <= SPILL_HDR || nl > LFIPC_NAME_MAX)
		return;
	memcpy(name, desc + SPILL_HDR, nl);
	name[nl] = '\0';
	if (lfipc_object_remove(self->ro->r, name) == 0)
		spill_count(self, -1);
}

static PyObject *put_obj(QueueObject *self, PyObject *obj, int64_t timeout)
{
	unsigned char desc[MIN_MSG_SIZE];
	const char *p;
	size_t len, dlen;
	PyObject *data;
	int rc;

	if (check_open(self) < 0)
		return NULL;
	data = lfpy_dumps(obj);
	if (!data)
		return NULL;
	p = PyBytes_AS_STRING(data);
	len = (size_t)PyBytes_GET_SIZE(data);
	if (len <= self->msg_size) {
		rc = put_raw(self, p, len, timeout);
	} else {
		rc = spill_make(self, p, len, desc, &dlen);
		if (rc == 0) {
			rc = put_raw(self, desc, dlen, timeout);
			if (rc < 0)
				spill_drop(self, desc, dlen);
		} else if (rc == -ENOSPC) {
			Py_DECREF(data);
			PyErr_Format(PyExc_MemoryError,
				     "lfipc: no room in the queue's region for a "
				     "message of %zu bytes (size the region, or "
				     "the queue's msg_size, for it)",
				     len);
			return NULL;
		}
	}
	Py_DECREF(data);
	if (rc < 0)
		return queue_raise(self, rc, 1);
	Py_RETURN_NONE;
}

/* ---- get ----------------------------------------------------------------- */

/* Decode one message taken from the queue (frees its spill block). */
static PyObject *decode(QueueObject *self, const unsigned char *m, size_t len)
{
	char name[LFIPC_NAME_MAX + 1];
	lfipc_array *a;
	uint64_t n = 0;
	size_t nl;
	PyObject *r;
	int rc;

	if (len > 0 && m[0] == PICKLE_TAG)
		return lfpy_loads(m, len);
	if (len <= SPILL_HDR || m[0] != SPILL_TAG ||
	    len - SPILL_HDR > LFIPC_NAME_MAX) {
		PyErr_SetString(PyExc_OSError,
				"lfipc: a queue message that is not a pickle "
				"(put by something other than the Python binding?)");
		return NULL;
	}
	for (int i = 0; i < 8; i++)
		n |= (uint64_t)m[1 + i] << (8 * i);
	nl = len - SPILL_HDR;
	memcpy(name, m + SPILL_HDR, nl);
	name[nl] = '\0';
	rc = lfipc_array_open(self->ro->r, name, &a);
	if (rc < 0)
		return lfpy_err(rc);
	if (lfipc_array_type(a) != LFIPC_U8 || lfipc_array_len(a) != n) {
		lfipc_array_close(a);
		return lfpy_err(-EPROTO);
	}
	r = lfpy_loads(lfipc_array_data(a), (size_t)n);
	lfipc_array_close(a);
	if (lfipc_object_remove(self->ro->r, name) == 0)
		spill_count(self, -1);
	return r;
}

static PyObject *get_obj(QueueObject *self, int64_t timeout)
{
	unsigned char stack[STACK_BUF], *buf = stack;
	size_t len = 0;
	struct qop o;
	PyObject *r;
	int rc;

	if (check_open(self) < 0)
		return NULL;
	if (self->msg_size > sizeof stack) {
		buf = PyMem_Malloc(self->msg_size);
		if (!buf)
			return PyErr_NoMemory();
	}
	rc = lfipc_queue_get(self->q, buf, self->msg_size, &len, LFIPC_NOWAIT);
	if (rc == -EAGAIN && timeout != LFIPC_NOWAIT) {
		o = (struct qop){.q = self->q, .buf = buf,
				 .bufsz = self->msg_size, .lenp = &len};
		rc = lfpy_block(get_fn, &o, timeout);
	}
	if (rc < 0)
		r = queue_raise(self, rc, 0);
	else
		r = decode(self, buf, len);
	if (buf != stack)
		PyMem_Free(buf);
	return r;
}

/* ---- methods -------------------------------------------------------------- */

static const char *const put_names[] = {"obj", "block", "timeout"};

static PyObject *queue_put(QueueObject *self, PyObject *const *args,
			   Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *a[3] = {NULL, Py_True, Py_None};
	int64_t t;

	if (lfpy_args("put", args, nargs, kwnames, 1, 3, put_names, a) < 0 ||
	    lfpy_timeout(a[1], a[2], &t) < 0)
		return NULL;
	return put_obj(self, a[0], t);
}

static PyObject *queue_get(QueueObject *self, PyObject *const *args,
			   Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *a[2] = {Py_True, Py_None};
	int64_t t;

	if (lfpy_args("get", args, nargs, kwnames, 0, 2, put_names + 1, a) < 0 ||
	    lfpy_timeout(a[0], a[1], &t) < 0)
		return NULL;
	return get_obj(self, t);
}

static PyObject *queue_put_nowait(QueueObject *self, PyObject *obj)
{
	return put_obj(self, obj, LFIPC_NOWAIT);
}

static PyObject *queue_get_nowait(QueueObject *self, PyObject *unused)
{
	return get_obj(self, LFIPC_NOWAIT);
}

static PyObject *queue_put_many(QueueObject *self, PyObject *args,
				PyObject *kw)
{
	static char *kwlist[] = {"items", "block", "timeout", NULL};
	PyObject *items, *block = Py_True, *timeout = Py_None;
	PyObject *seq = NULL, *datas = NULL;
	unsigned char(*descs)[MIN_MSG_SIZE] = NULL;
	const void **msgs = NULL;
	size_t *lens = NULL;
	Py_ssize_t n, i, done = 0;
	int64_t t, deadline;
	PyObject *res = NULL;
	int rc = 0;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OO:put_many", kwlist,
					 &items, &block, &timeout) ||
	    lfpy_timeout(block, timeout, &t) < 0 || check_open(self) < 0)
		return NULL;
	seq = PySequence_Fast(items, "put_many() needs an iterable");
	if (!seq)
		return NULL;
	n = PySequence_Fast_GET_SIZE(seq);
	if (n == 0) {
		Py_DECREF(seq);
		return PyLong_FromLong(0);
	}
	datas = PyList_New(n);
	msgs = PyMem_Calloc((size_t)n, sizeof *msgs);
	lens = PyMem_Calloc((size_t)n, sizeof *lens);
	descs = PyMem_Calloc((size_t)n, sizeof *descs);
	if (!datas || !msgs || !lens || !descs) {
		PyErr_NoMemory();
		goto out;
	}
	for (i = 0; i < n; i++) {
		PyObject *d = lfpy_dumps(PySequence_Fast_GET_ITEM(seq, i));

		if (!d)
			goto unspill;
		PyList_SET_ITEM(datas, i, d);
		msgs[i] = PyBytes_AS_STRING(d);
		lens[i] = (size_t)PyBytes_GET_SIZE(d);
		if (lens[i] > self->msg_size) {
			rc = spill_make(self, msgs[i], lens[i], descs[i],
					&lens[i]);
			if (rc < 0) {
				lens[i] = 0;
				lfpy_err(rc);
				goto unspill;
			}
			msgs[i] = descs[i];
		}
	}
	deadline = t > 0 ? lfpy_now_ns() + t : 0;
	while (done < n) {
		struct qop o = {.q = self->q, .msgs = msgs + done,
				.lens = lens + done, .n = (size_t)(n - done)};

		rc = lfipc_queue_put_many(self->q, o.msgs, o.lens, o.n,
					  LFIPC_NOWAIT);
		if (rc == -EAGAIN && t != LFIPC_NOWAIT) {
			int64_t left = t < 0 ? LFIPC_FOREVER
					     : deadline - lfpy_now_ns();

			rc = left == 0 || (t > 0 && left < 0)
				     ? -ETIMEDOUT
				     : lfpy_block(put_many_fn, &o, left);
		}
		if (rc <= 0)
			break;
		done += rc;
	}
	if (done > 0 || rc >= 0) {
		if (rc == LFPY_EXC)
			PyErr_Clear(); /* report what was put; the signal
					  runs again at the next check */
		res = PyLong_FromSsize_t(done);
	} else {
		queue_raise(self, rc, 1);
	}
	i = n;
unspill:
	/* free the blocks of the spilled messages that were not put */
	for (Py_ssize_t j = done; j < i; j++)
		if (msgs[j] == descs[j] && lens[j] > 0)
			spill_drop(self, descs[j], lens[j]);
out:
	Py_XDECREF(datas);
	Py_DECREF(seq);
	PyMem_Free(msgs);
	PyMem_Free(lens);
	PyMem_Free(descs);
	return res;
}

static PyObject *queue_get_many(QueueObject *self, PyObject *args,
				PyObject *kw)
{
	static char *kwlist[] = {"max_items", "block", "timeout", NULL};
	PyObject *block = Py_True, *timeout = Py_None, *list = NULL;
	PyObject *err_type = NULL, *err_val = NULL, *err_tb = NULL;
	Py_ssize_t max_items = 64;
	unsigned char *bufs;
	size_t *lens;
	int64_t t;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|nOO:get_many", kwlist,
					 &max_items, &block, &timeout) ||
	    lfpy_timeout(block, timeout, &t) < 0 || check_open(self) < 0)
		return NULL;
	if (max_items < 1 || max_items > INT32_MAX) {
		PyErr_SetString(PyExc_ValueError, "max_items must be >= 1");
		return NULL;
	}
	if ((size_t)max_items > self->capacity)
		max_items = (Py_ssize_t)self->capacity;
	bufs = PyMem_Malloc((size_t)max_items * self->msg_size);
	lens = PyMem_Calloc((size_t)max_items, sizeof *lens);
	if (!bufs || !lens) {
		PyMem_Free(bufs);
		PyMem_Free(lens);
		return PyErr_NoMemory();
	}
	rc = lfipc_queue_get_many(self->q, bufs, self->msg_size, lens,
				  (size_t)max_items, LFIPC_NOWAIT);
	if (rc == -EAGAIN && t != LFIPC_NOWAIT) {
		struct qop o = {.q = self->q, .buf = bufs,
				.bufsz = self->msg_size, .lenp = lens,
				.n = (size_t)max_items};

		rc = lfpy_block(get_many_fn, &o, t);
	}
	if (rc < 0) {
		queue_raise(self, rc, 0);
		goto out;
	}
	list = PyList_New(0);
	for (int i = 0; i < rc; i++) {
		unsigned char *m = bufs + (size_t)i * self->msg_size;
		PyObject *o;

		if (!list || err_type) {
			/* after a failure, still free the spill blocks */
			if (lens[i] > SPILL_HDR && m[0] == SPILL_TAG)
				spill_drop(self, m, lens[i]);
			continue;
		}
		o = decode(self, m, lens[i]);
		if (!o || PyList_Append(list, o) < 0)
			PyErr_Fetch(&err_type, &err_val, &err_tb);
		Py_XDECREF(o);
	}
	if (err_type) {
		Py_CLEAR(list);
		PyErr_Restore(err_type, err_val, err_tb);
	}
out:
	PyMem_Free(bufs);
	PyMem_Free(lens);
	return list;
}

/*
 * Discard every message. O(1) (lfipc_queue_clear) unless spill blocks
 * exist: then the messages are taken out in bulk, so that the blocks of
 * the discarded ones are freed, and counted (task_done for a
 * JoinableQueue, where a clear's discards count as done).
 */
static int64_t clear_impl(QueueObject *self)
{
	int64_t spills = 0, total = 0;
	unsigned char *bufs;
	size_t lens[64];
	int rc;

	lfipc_array_load(self->meta, META_SPILLS, &spills);
	if (spills <= 0)
		return lfipc_queue_clear(self->q);
	bufs = PyMem_Malloc(64 * self->msg_size);
	if (!bufs) {
		PyErr_NoMemory();
		return LFPY_EXC;
	}
	for (;;) {
		rc = lfipc_queue_get_many(self->q, bufs, self->msg_size, lens,
					  64, LFIPC_NOWAIT);
		if (rc <= 0)
			break;
		for (int i = 0; i < rc; i++) {
			unsigned char *m = bufs + (size_t)i * self->msg_size;

			if (lens[i] > SPILL_HDR && m[0] == SPILL_TAG)
				spill_drop(self, m, lens[i]);
			if (is_joinable(self))
				lfipc_queue_task_done(self->q);
		}
		total += rc;
	}
	PyMem_Free(bufs);
	if (rc < 0 && rc != -EAGAIN && rc != -EPIPE)
		return rc;
	return total;
}

static PyObject *queue_clear(QueueObject *self, PyObject *unused)
{
	int64_t n = clear_impl(self);

	if (n == LFPY_EXC)
		return NULL;
	if (n < 0)
		return lfpy_err((int)n);
	return PyLong_FromLongLong(n);
}

static PyObject *queue_qsize(QueueObject *self, PyObject *unused)
{
	return PyLong_FromSize_t(lfipc_queue_qsize(self->q));
}

static PyObject *queue_empty(QueueObject *self, PyObject *unused)
{
	return PyBool_FromLong(lfipc_queue_empty(self->q));
}

static PyObject *queue_full(QueueObject *self, PyObject *unused)
{
	return PyBool_FromLong(lfipc_queue_full(self->q));
}

static PyObject *queue_close(QueueObject *self, PyObject *unused)
{
	self->closed = 1;
	Py_RETURN_NONE;
}

static PyObject *queue_join_thread(QueueObject *self, PyObject *unused)
{
	if (!self->closed) {
		PyErr_Format(PyExc_AssertionError, "Queue %R not closed",
			     (PyObject *)self);
		return NULL;
	}
	Py_RETURN_NONE;
}

static PyObject *queue_cancel_join_thread(QueueObject *self, PyObject *unused)
{
	Py_RETURN_NONE;
}

static PyObject *queue_shutdown(QueueObject *self, PyObject *args,
				PyObject *kw)
{
	static char *kwlist[] = {"immediate", NULL};
	int immediate = 0, rc;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|p:shutdown", kwlist,
					 &immediate))
		return NULL;
	lfipc_array_store(self->meta, META_SHUTDOWN, 1);
	rc = lfipc_queue_shutdown(self->q);
	if (rc < 0)
		return lfpy_err(rc);
	if (immediate) {
		int64_t n = clear_impl(self);

		if (n == LFPY_EXC)
			return NULL;
		if (n < 0)
			return lfpy_err((int)n);
	}
	Py_RETURN_NONE;
}

static PyObject *queue_is_shutdown(QueueObject *self, void *c)
{
	int64_t v = 0;

	lfipc_array_load(self->meta, META_SHUTDOWN, &v);
	return PyBool_FromLong(v != 0);
}

static PyObject *queue_task_done(QueueObject *self, PyObject *unused)
{
	int rc = lfipc_queue_task_done(self->q);

	if (rc == -EINVAL) {
		PyErr_SetString(PyExc_ValueError,
				"task_done() called too many times");
		return NULL;
	}
	if (rc < 0)
		return lfpy_err(rc);
	Py_RETURN_NONE;
}

static PyObject *queue_join(QueueObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"timeout", NULL};
	PyObject *timeout = Py_None;
	struct qop o = {.q = self->q};
	int64_t t;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:join", kwlist,
					 &timeout) ||
	    lfpy_timeout1(timeout, &t) < 0)
		return NULL;
	rc = lfipc_queue_join(self->q, LFIPC_NOWAIT);
	if (rc == -EAGAIN && t != LFIPC_NOWAIT)
		rc = lfpy_block(join_fn, &o, t);
	if (rc == -EAGAIN || rc == -ETIMEDOUT)
		Py_RETURN_FALSE;
	if (rc == LFPY_EXC)
		return NULL;
	if (rc < 0)
		return lfpy_err(rc);
	Py_RETURN_TRUE;
}

static PyObject *queue_fileno(QueueObject *self, PyObject *unused)
{
	PyErr_SetString(lfpy.unsupported,
			"lfipc queues have no file descriptor yet");
	return NULL;
}

static PyObject *queue_reduce(QueueObject *self, PyObject *unused)
{
	return lfpy_reduce(self->ro, self->kind, self->name, NULL);
}

static PyObject *queue_repr(QueueObject *self)
{
	return PyUnicode_FromFormat("<lfipc.%s name='%s' qsize=%zu maxsize=%zu>",
				    _PyType_Name(Py_TYPE(self)), self->name,
				    lfipc_queue_qsize(self->q), self->capacity);
}

static PyObject *queue_get_maxsize(QueueObject *self, void *c)
{
	return PyLong_FromSize_t(self->capacity);
}

static PyObject *queue_get_msg_size(QueueObject *self, void *c)
{
	return PyLong_FromSize_t(self->msg_size);
}

static PyObject *queue_get_closed(QueueObject *self, void *c)
{
	return PyBool_FromLong(self->closed);
}

#define QUEUE_COMMON_METHODS                                                  \
	{"put", (PyCFunction)(void (*)(void))queue_put,                       \
	 METH_FASTCALL | METH_KEYWORDS,                                       \
	 "put(obj, block=True, timeout=None)\n\nPickle obj and append it. "   \
	 "If the queue is full, wait (block) up to timeout seconds (None: "   \
	 "forever) for room; raise queue.Full if there is none. Raises "      \
	 "ShutDown after shutdown(), ValueError after close(). A pickle "     \
	 "larger than msg_size goes through a spill block in the region."},   \
	{"get", (PyCFunction)(void (*)(void))queue_get,                       \
	 METH_FASTCALL | METH_KEYWORDS,                                       \
	 "get(block=True, timeout=None)\n\nRemove and return the oldest "     \
	 "item, waiting up to timeout seconds (None: forever) for one; "      \
	 "raise queue.Empty if there is none. After shutdown(), the items "   \
	 "left are returned, then ShutDown is raised instead of waiting. "    \
	 "Releases the GIL while waiting; Ctrl-C interrupts it."},            \
	{"close", (PyCFunction)queue_close, METH_NOARGS,                      \
	 "close()\n\nThis process will not use the queue any more: later "    \
	 "put() and get() through this object raise ValueError (as in "      \
	 "multiprocessing). Other processes are not affected."},              \
	{"__reduce__", (PyCFunction)queue_reduce, METH_NOARGS, NULL},         \
	{"fileno", (PyCFunction)queue_fileno, METH_NOARGS,                    \
	 "fileno()\n\nNot available yet: raises io.UnsupportedOperation."}

static PyMethodDef queue_methods[] = {
	QUEUE_COMMON_METHODS,
	{"put_nowait", (PyCFunction)queue_put_nowait, METH_O,
	 "put_nowait(obj)\n\nput(obj, False)."},
	{"get_nowait", (PyCFunction)queue_get_nowait, METH_NOARGS,
	 "get_nowait()\n\nget(False)."},
	{"put_many", (PyCFunction)(void (*)(void))queue_put_many,
	 METH_VARARGS | METH_KEYWORDS,
	 "put_many(items, block=True, timeout=None) -> int\n\nPut the items "
	 "in order, in bulk; wait for room as put() does. Returns how many "
	 "were put (fewer than given only when the timeout passed or block "
	 "is false); raises queue.Full if none could be."},
	{"get_many", (PyCFunction)(void (*)(void))queue_get_many,
	 METH_VARARGS | METH_KEYWORDS,
	 "get_many(max_items=64, block=True, timeout=None) -> list\n\nTake "
	 "up to max_items items, oldest first, in bulk; wait (as get()) only "
	 "for the first. Raises queue.Empty if none came."},
	{"qsize", (PyCFunction)queue_qsize, METH_NOARGS,
	 "qsize() -> int\n\nThe number of items in the queue: exact when no "
	 "put or get is in progress (unlike multiprocessing's), never "
	 "outside [0, maxsize]."},
	{"empty", (PyCFunction)queue_empty, METH_NOARGS,
	 "empty() -> bool\n\nqsize() == 0."},
	{"full", (PyCFunction)queue_full, METH_NOARGS,
	 "full() -> bool\n\nqsize() == maxsize."},
	{"clear", (PyCFunction)queue_clear, METH_NOARGS,
	 "clear() -> int\n\nDiscard every item and return how many were "
	 "discarded; safe while other threads and processes put and get "
	 "(an item put at the same moment is either discarded or stays, "
	 "never lost uncounted). Constant time, unless spilled (large) "
	 "items exist: then the items are taken out in bulk to free their "
	 "blocks. In a JoinableQueue the discarded items count as done."},
	{"shutdown", (PyCFunction)(void (*)(void))queue_shutdown,
	 METH_VARARGS | METH_KEYWORDS,
	 "shutdown(immediate=False)\n\nShut the queue down for every "
	 "process (Python 3.13's queue.Queue.shutdown): put() raises "
	 "ShutDown; get() returns the items left, then raises ShutDown "
	 "instead of blocking; every waiting put, get and join wakes. With "
	 "immediate=True the items left are discarded first (as clear())."},
	{"join_thread", (PyCFunction)queue_join_thread, METH_NOARGS,
	 "join_thread()\n\nmultiprocessing compatibility: there is no feeder "
	 "thread; raises AssertionError unless close() was called."},
	{"cancel_join_thread", (PyCFunction)queue_cancel_join_thread,
	 METH_NOARGS,
	 "cancel_join_thread()\n\nmultiprocessing compatibility: nothing to "
	 "do (a put() is complete when it returns)."},
	{NULL},
};

static PyGetSetDef queue_getset[] = {
	LFPY_GETSET_COMMON,
	{"maxsize", (getter)queue_get_maxsize, NULL,
	 "capacity in items (maxsize <= 0 at creation gives 16384)"},
	{"msg_size", (getter)queue_get_msg_size, NULL,
	 "largest pickle stored in a slot; larger ones are spilled"},
	{"closed", (getter)queue_get_closed, NULL,
	 "close() was called on this object"},
	{"is_shutdown", (getter)queue_is_shutdown, NULL,
	 "shutdown() was called (by any process, through the binding)"},
	{NULL},
};

static PyMethodDef jqueue_methods[] = {
	{"task_done", (PyCFunction)queue_task_done, METH_NOARGS,
	 "task_done()\n\nMark one item taken by get() as processed; raises "
	 "ValueError when called more times than items were taken."},
	{"join", (PyCFunction)(void (*)(void))queue_join,
	 METH_VARARGS | METH_KEYWORDS,
	 "join(timeout=None) -> bool\n\nWait until every item put has been "
	 "processed (task_done) or discarded by clear(). Returns False if "
	 "the timeout (an lfipc addition) passed first. Interruptible."},
	{NULL},
};

static PyMethodDef squeue_methods[] = {
	QUEUE_COMMON_METHODS,
	{"empty", (PyCFunction)queue_empty, METH_NOARGS,
	 "empty() -> bool\n\nTrue if the queue holds no item."},
	{NULL},
};

#define QUEUE_DOC_TAIL                                                        \
	"\n\nmaxsize <= 0 means 16384 items: lfipc queues are bounded, so a "  \
	"put() into a full queue waits (multiprocessing's never does, and "     \
	"buffers in a feeder thread instead). Keywords: region (an "            \
	"lfipc.Region; default: the process's default region), name (for "     \
	"other processes to open it; default: automatic), create=False to "    \
	"open an existing queue by name, msg_size (bytes of a slot; larger "    \
	"pickles are spilled into blocks of the region). Picklable: a child "   \
	"process gets the same queue."

PyTypeObject QueueType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "lfipc.Queue",
	.tp_basicsize = sizeof(QueueObject),
	.tp_dealloc = (destructor)queue_dealloc,
	.tp_repr = (reprfunc)queue_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "Queue(maxsize=0, *, region=None, name=None, create=True, "
		  "msg_size=240)\n--\n\n"
		  "A process-shared FIFO queue of picklable objects, "
		  "multiprocessing.Queue's interface plus clear(), exact "
		  "qsize(), shutdown(), put_many() and get_many()."
		  QUEUE_DOC_TAIL,
	.tp_weaklistoffset = offsetof(QueueObject, weakreflist),
	.tp_methods = queue_methods,
	.tp_getset = queue_getset,
	.tp_new = queue_new,
};

PyTypeObject SimpleQueueType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "lfipc.SimpleQueue",
	.tp_basicsize = sizeof(QueueObject),
	.tp_dealloc = (destructor)queue_dealloc,
	.tp_repr = (reprfunc)queue_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "SimpleQueue(*, region=None, name=None, create=True, "
		  "msg_size=240)\n--\n\n"
		  "multiprocessing.SimpleQueue: put(), get(), empty(), close()."
		  QUEUE_DOC_TAIL,
	.tp_weaklistoffset = offsetof(QueueObject, weakreflist),
	.tp_methods = squeue_methods,
	.tp_getset = queue_getset,
	.tp_new = queue_new,
};

PyTypeObject JoinableQueueType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "lfipc.JoinableQueue",
	.tp_basicsize = sizeof(QueueObject),
	.tp_dealloc = (destructor)queue_dealloc,
	.tp_repr = (reprfunc)queue_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "JoinableQueue(maxsize=0, *, region=None, name=None, "
		  "create=True, msg_size=240)\n--\n\n"
		  "A Queue with task_done() and join(), as "
		  "multiprocessing.JoinableQueue." QUEUE_DOC_TAIL,
	.tp_weaklistoffset = offsetof(QueueObject, weakreflist),
	.tp_methods = jqueue_methods,
	.tp_base = &QueueType,
	.tp_new = queue_new,
};

int lfpy_queue_types_init(PyObject *m)
{
	if (PyType_Ready(&QueueType) < 0 ||
	    PyType_Ready(&SimpleQueueType) < 0 ||
	    PyType_Ready(&JoinableQueueType) < 0)
		return -1;
	Py_INCREF(&QueueType);
	Py_INCREF(&SimpleQueueType);
	Py_INCREF(&JoinableQueueType);
	if (PyModule_AddObject(m, "Queue", (PyObject *)&QueueType) < 0 ||
	    PyModule_AddObject(m, "SimpleQueue", (PyObject *)&SimpleQueueType) <
		    0 ||
	    PyModule_AddObject(m, "JoinableQueue",
			       (PyObject *)&JoinableQueueType) < 0)
		return -1;
	return PyModule_AddIntConstant(m, "QUEUE_DEFAULT_CAPACITY",
				       DEFAULT_CAPACITY) ||
	       PyModule_AddIntConstant(m, "QUEUE_DEFAULT_MSG_SIZE",
				       DEFAULT_MSG_SIZE);
}
