/* SPDX-License-Identifier: MIT */
/*
 * value.c - Value and Array: typed C scalars in place in the region.
 *
 * The block layout is in internal/value.h. An opener (and recovery) copies
 * the header once out of shared memory, recomputes the layout from (type,
 * len, lock) and refuses a header that disagrees with it or with the block
 * size (-EPROTO); the handle keeps the validated copy. The elements are
 * the only mutable shared words: plain C scalars, accessed
 * either plainly (get/set/data, under the user's own synchronisation) or
 * through C11 atomics of the same size (load/store/...; all seq_cst, so
 * there are no weaker orders to pair).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lfipc/sync.h>
#include <lfipc/value.h>

#include "internal/objtype.h"
#include "internal/recover.h"
#include "internal/region.h"
#include "internal/shm.h"
#include "internal/sync.h"
#include "internal/value.h"

#define ARRAY_NTYPES 12u

/* An element is accessed through the _Atomic type of the same size; that is
 * only sound when those are lock-free and laid out like the plain type. */
_Static_assert(ATOMIC_CHAR_LOCK_FREE == 2, "8-bit atomics are lock-free");
_Static_assert(ATOMIC_SHORT_LOCK_FREE == 2, "16-bit atomics are lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics are lock-free");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics are lock-free");
_Static_assert(sizeof(_Atomic uint8_t) == 1 && _Alignof(_Atomic uint8_t) == 1,
	       "atomic u8 layout");
_Static_assert(sizeof(_Atomic uint16_t) == 2 && _Alignof(_Atomic uint16_t) == 2,
	       "atomic u16 layout");
_Static_assert(sizeof(_Atomic uint32_t) == 4 && _Alignof(_Atomic uint32_t) == 4,
	       "atomic u32 layout");
_Static_assert(sizeof(_Atomic uint64_t) == 8 && _Alignof(_Atomic uint64_t) == 8,
	       "atomic u64 layout");

struct lfipc_array {
	lfipc_region *r;
	uint8_t *data;
	size_t len;
	size_t esize;
	lfipc_type type;
	bool integer;
	int64_t min, max; /* value range of an integer type (U64: all) */
	lfipc_lock *lock;
};

static const uint8_t type_size[ARRAY_NTYPES] = {
    [LFIPC_I8] = sizeof(int8_t),   [LFIPC_U8] = sizeof(uint8_t),
    [LFIPC_I16] = sizeof(int16_t), [LFIPC_U16] = sizeof(uint16_t),
    [LFIPC_I32] = sizeof(int32_t), [LFIPC_U32] = sizeof(uint32_t),
    [LFIPC_I64] = sizeof(int64_t), [LFIPC_U64] = sizeof(uint64_t),
    [LFIPC_F32] = sizeof(float),   [LFIPC_F64] = sizeof(double),
    [LFIPC_CHAR] = sizeof(char),   [LFIPC_BOOL] = sizeof(bool),
};

size_t lfipc_type_size(lfipc_type t)
{
	if ((unsigned)t >= ARRAY_NTYPES)
		return 0;
	return type_size[t];
}

static bool type_is_integer(lfipc_type t)
{
	return t <= LFIPC_U64 || t == LFIPC_CHAR;
}

static void type_range(lfipc_type t, int64_t *min, int64_t *max)
{
	switch (t) {
	case LFIPC_I8:
		*min = INT8_MIN, *max = INT8_MAX;
		break;
	case LFIPC_U8:
		*min = 0, *max = UINT8_MAX;
		break;
	case LFIPC_I16:
		*min = INT16_MIN, *max = INT16_MAX;
		break;
	case LFIPC_U16:
		*min = 0, *max = UINT16_MAX;
		break;
	case LFIPC_I32:
		*min = INT32_MIN, *max = INT32_MAX;
		break;
	case LFIPC_U32:
		*min = 0, *max = UINT32_MAX;
		break;
	case LFIPC_CHAR:
		*min = CHAR_MIN, *max = CHAR_MAX;
		break;
	default: /* I64, and U64 whose int64_t carries the bit pattern */
		*min = INT64_MIN, *max = INT64_MAX;
		break;
	}
}

static bool type_signed(lfipc_type t)
{
	switch (t) {
	case LFIPC_I8:
	case LFIPC_I16:
	case LFIPC_I32:
	case LFIPC_I64:
		return true;
	case LFIPC_CHAR:
		return CHAR_MIN < 0;
	default:
		return false;
	}
}

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* The block layout for (type, len, lock). Return 0; -EOVERFLOW. */
static int layout(lfipc_type type, uint64_t len, bool with_lock,
		  uint64_t *lock_off, uint64_t *data_off, uint64_t *total)
{
	uint64_t esize = type_size[type], off = LFIPC_ARRAY_HDR_SIZE, bytes;

	*lock_off = 0;
	if (with_lock) {
		*lock_off = off;
		off = round_up(off + lfipc__lock_shm_size(),
			       LFIPC_ARRAY_DATA_ALIGN);
	}
	*data_off = off;
	if (len > (UINT64_MAX / 2 - off) / esize)
		return -EOVERFLOW;
	bytes = len * esize;
	*total = round_up(off + bytes, LFIPC_ARRAY_DATA_ALIGN);
	return 0;
}

struct init_arg {
	lfipc_type type;
	uint64_t len, lock_off, data_off;
	uint64_t total; /* block size, from layout() */
};

/* Runs under the region lock, on the zeroed block, before publication. */
static int array_init(void *block, uint64_t size, void *argp)
{
	const struct init_arg *a = argp;
	struct lfipc_array_hdr *h = block;

	(void)size;
	h->magic = LFIPC_ARRAY_MAGIC;
	h->version = LFIPC_ARRAY_VERSION;
	h->type = (uint32_t)a->type;
	h->elem_size = type_size[a->type];
	h->len = a->len;
	h->lock_off = a->lock_off;
	h->data_off = a->data_off;
	h->check = lfipc__array_hdr_check(h);
	if (a->lock_off)
		lfipc__lock_shm_init((uint8_t *)block + a->lock_off, true);
	return 0;
}

/* Build a handle for the validated block at off. */
static int make_handle(lfipc_region *r, uint64_t off, lfipc_type type,
		       uint64_t len, uint64_t lock_off, uint64_t data_off,
		       lfipc_array **out)
{
	lfipc_array *a = calloc(1, sizeof(*a));
	int rc;

	if (!a)
		return -ENOMEM;
	a->r = r;
	a->data = (uint8_t *)lfipc__at(r, off + data_off);
	a->len = (size_t)len;
	a->esize = type_size[type];
	a->type = type;
	a->integer = type_is_integer(type);
	type_range(type, &a->min, &a->max);
	if (lock_off) {
		rc = lfipc__lock_attach(r, off + lock_off, &a->lock);
		if (rc < 0) {
			free(a);
			return rc;
		}
	}
	*out = a;
	return 0;
}

int lfipc_array_create(lfipc_region *r, const char *name, lfipc_type type,
		       size_t len, bool with_lock, lfipc_array **out)
{
	struct init_arg ia;
	uint64_t total, off;
	int rc;

	if (out)
		*out = NULL;
	if (!r || !out || (unsigned)type >= ARRAY_NTYPES || len == 0)
		return -EINVAL;
	rc = lfipc__name_check(name);
	if (rc < 0)
		return rc;
	rc = layout(type, len, with_lock, &ia.lock_off, &ia.data_off, &total);
	if (rc < 0)
		return rc;
	ia.type = type;
	ia.len = len;
	rc = lfipc__obj_create(r, name, LFIPC_OBJ_ARRAY, total,
			       LFIPC_ARRAY_DATA_ALIGN, array_init, &ia, &off);
	if (rc < 0)
		return rc;
	return make_handle(r, off, type, len, ia.lock_off, ia.data_off, out);
}

/*
 * Copy the header of the block [off, off + size) out of shared memory, once,
 * and validate the copy; the layout it describes goes to *h, *lock_off and
 * *data_off. off and size are checked here too, whoever passed them.
 * Return: 0; -EPROTO.
 */
static int hdr_load(lfipc_region *r, uint64_t off, uint64_t size,
		    struct lfipc_array_hdr *h, uint64_t *lock_off,
		    uint64_t *data_off)
{
	uint64_t total;

	if (size < sizeof(*h) || !lfipc__heap_range_ok(r, off, size))
		return -EPROTO;
	lfipc__shm_copy(h, lfipc__at(r, off), sizeof(*h));
	if (h->magic != LFIPC_ARRAY_MAGIC ||
	    h->version != LFIPC_ARRAY_VERSION || h->type >= ARRAY_NTYPES ||
	    h->elem_size != type_size[h->type] || h->len == 0 ||
	    h->len > SIZE_MAX || h->check != lfipc__array_hdr_check(h))
		return -EPROTO;
	if (layout((lfipc_type)h->type, h->len, h->lock_off != 0, lock_off,
		   data_off, &total) < 0)
		return -EPROTO;
	if (*lock_off != h->lock_off || *data_off != h->data_off ||
	    total > size)
		return -EPROTO;
	return 0;
}

int lfipc_array_open(lfipc_region *r, const char *name, lfipc_array **out)
{
	struct lfipc_array_hdr h;
	uint64_t off, size, lock_off, data_off;
	int rc;

	if (out)
		*out = NULL;
	if (!r || !out)
		return -EINVAL;
	rc = lfipc__obj_open(r, name, LFIPC_OBJ_ARRAY, &off, &size);
	if (rc < 0)
		return rc;
	rc = hdr_load(r, off, size, &h, &lock_off, &data_off);
	if (rc < 0)
		return rc;
	return make_handle(r, off, (lfipc_type)h.type, h.len, lock_off,
			   data_off, out);
}

void lfipc_array_close(lfipc_array *a)
{
	if (!a)
		return;
	if (a->lock)
		lfipc_lock_close(a->lock);
	free(a);
}

void *lfipc_array_data(lfipc_array *a)
{
	return a ? a->data : NULL;
}

size_t lfipc_array_len(const lfipc_array *a)
{
	return a ? a->len : 0;
}

lfipc_type lfipc_array_type(const lfipc_array *a)
{
	return a ? a->type : LFIPC_I8;
}

lfipc_lock *lfipc_array_lock(lfipc_array *a)
{
	return a ? a->lock : NULL;
}

static int slice_check(const lfipc_array *a, size_t start, size_t n,
		       const void *p)
{
	if (!a || (n > 0 && !p))
		return -EINVAL;
	if (start > a->len || n > a->len - start)
		return -ERANGE;
	return 0;
}

int lfipc_array_get(lfipc_array *a, size_t start, size_t n, void *out)
{
	int rc = slice_check(a, start, n, out);

	if (rc == 0 && n > 0)
		memcpy(out, a->data + start * a->esize, n * a->esize);
	return rc;
}

int lfipc_array_set(lfipc_array *a, size_t start, size_t n, const void *in)
{
	int rc = slice_check(a, start, n, in);

	if (rc == 0 && n > 0)
		memcpy(a->data + start * a->esize, in, n * a->esize);
	return rc;
}

/* Element i of an integer array; -ERANGE / -EINVAL. */
static int int_elem(lfipc_array *a, size_t i, void **p)
{
	if (!a)
		return -EINVAL;
	if (!a->integer)
		return -EINVAL;
	if (i >= a->len)
		return -ERANGE;
	*p = a->data + i * a->esize;
	return 0;
}

static bool fits(const lfipc_array *a, int64_t v)
{
	return v >= a->min && v <= a->max;
}

/* Widen the raw bits of an element to the API's int64_t. */
static int64_t widen(const lfipc_array *a, uint64_t raw)
{
	bool sgn = type_signed(a->type);

	switch (a->esize) {
	case 1:
		return sgn ? (int64_t)(int8_t)raw : (int64_t)(uint8_t)raw;
	case 2:
		return sgn ? (int64_t)(int16_t)raw : (int64_t)(uint16_t)raw;
	case 4:
		return sgn ? (int64_t)(int32_t)raw : (int64_t)(uint32_t)raw;
	default:
		return (int64_t)raw;
	}
}

/* The element operations. All are seq_cst read-modify-writes or loads on
 * the element itself (no weaker order to pair). Arithmetic is done on the
 * unsigned type of the element's size, so it wraps like C. */
enum elem_op { OP_LOAD, OP_STORE, OP_XCHG, OP_ADD, OP_CAS };

#define ELEM_OP(T, p, op, v, expected, ok)                                     \
	do {                                                                   \
		_Atomic T *e = (_Atomic T *)(p);                               \
		T x = (T)(v), ex = (T)(expected);                              \
		switch (op) {                                                  \
		case OP_LOAD:                                                  \
			raw = atomic_load(e);                                  \
			break;                                                 \
		case OP_STORE:                                                 \
			atomic_store(e, x);                                    \
			break;                                                 \
		case OP_XCHG:                                                  \
			raw = atomic_exchange(e, x);                           \
			break;                                                 \
		case OP_ADD:                                                   \
			raw = atomic_fetch_add(e, x);                          \
			break;                                                 \
		case OP_CAS:                                                   \
			ok = atomic_compare_exchange_strong(e, &ex, x);        \
			raw = ex;                                              \
			break;                                                 \
		}                                                              \
	} while (0)

static int elem_op(lfipc_array *a, size_t i, enum elem_op op, uint64_t v,
		   uint64_t expected, int64_t *old)
{
	uint64_t raw = 0;
	bool ok = true;
	void *p;
	int rc = int_elem(a, i, &p);

	if (rc < 0)
		return rc;
	switch (a->esize) {
	case 1:
		ELEM_OP(uint8_t, p, op, v, expected, ok);
		break;
	case 2:
		ELEM_OP(uint16_t, p, op, v, expected, ok);
		break;
	case 4:
		ELEM_OP(uint32_t, p, op, v, expected, ok);
		break;
	default:
		ELEM_OP(uint64_t, p, op, v, expected, ok);
		break;
	}
	if (old)
		*old = widen(a, raw);
	return ok ? 0 : -EAGAIN;
}

int lfipc_array_load(lfipc_array *a, size_t i, int64_t *out)
{
	if (!out)
		return -EINVAL;
	return elem_op(a, i, OP_LOAD, 0, 0, out);
}

int lfipc_array_store(lfipc_array *a, size_t i, int64_t v)
{
	void *p;
	int rc = int_elem(a, i, &p);

	if (rc < 0)
		return rc;
	if (!fits(a, v))
		return -EOVERFLOW;
	return elem_op(a, i, OP_STORE, (uint64_t)v, 0, NULL);
}

int lfipc_array_exchange(lfipc_array *a, size_t i, int64_t v, int64_t *old)
{
	void *p;
	int rc = int_elem(a, i, &p);

	if (rc < 0)
		return rc;
	if (!fits(a, v))
		return -EOVERFLOW;
	return elem_op(a, i, OP_XCHG, (uint64_t)v, 0, old);
}

int lfipc_array_fetch_add(lfipc_array *a, size_t i, int64_t delta, int64_t *old)
{
	/* delta is reduced modulo 2^bits by the conversion to the element's
	 * unsigned type: wrap-around arithmetic, as documented. */
	return elem_op(a, i, OP_ADD, (uint64_t)delta, 0, old);
}

int lfipc_array_cas(lfipc_array *a, size_t i, int64_t expected, int64_t desired)
{
	void *p;
	int rc = int_elem(a, i, &p);

	if (rc < 0)
		return rc;
	if (!fits(a, expected) || !fits(a, desired))
		return -EOVERFLOW;
	return elem_op(a, i, OP_CAS, (uint64_t)desired, (uint64_t)expected,
		       NULL);
}

/*
 * Recovery: the only thing a dead participant can leave behind in an Array
 * is its embedded lock held; the next acquirer takes it over (-EOWNERDEAD),
 * and recovering it eagerly is the lock's own business when the sync
 * component offers it for embedded locks. The elements themselves are
 * always consistent (each update is one atomic or one plain store).
 */
int lfipc__array_recover(lfipc_region *r, uint64_t off, uint64_t size)
{
	struct lfipc_array_hdr h;
	uint64_t lock_off, data_off;

	return hdr_load(r, off, size, &h, &lock_off, &data_off);
}

/* ---- descriptor, status, open-or-create ------------------------------ */

static uint64_t array_size(const void *shape)
{
	return ((const struct init_arg *)shape)->total;
}

static int array_same_shape(lfipc_region *r, uint64_t off, uint64_t size,
			    const void *shape)
{
	const struct init_arg *a = shape;
	struct lfipc_array_hdr h;
	uint64_t lock_off, data_off;

	if (hdr_load(r, off, size, &h, &lock_off, &data_off) < 0)
		return -EPROTO;
	return h.type == (uint32_t)a->type && h.len == a->len &&
		       (lock_off != 0) == (a->lock_off != 0)
		   ? 0
		   : -EEXIST;
}

static int array_status(lfipc_region *r, uint64_t off, uint64_t size,
			void *out)
{
	lfipc_array_status *st = out;
	struct lfipc_array_hdr h;
	uint64_t lock_off, data_off;
	int rc;

	rc = hdr_load(r, off, size, &h, &lock_off, &data_off);
	if (rc < 0)
		return rc;
	st->type = (lfipc_type)h.type;
	st->length = (size_t)h.len;
	st->elem_size = h.elem_size;
	st->has_lock = lock_off != 0;
	if (lock_off)
		return lfipc__lock_status_at(r, off + lock_off, &st->lock);
	return 0;
}

const struct lfipc__objtype lfipc__array_type = {
	.type = LFIPC_OBJ_ARRAY,
	.name = "array",
	.align = LFIPC_ARRAY_DATA_ALIGN,
	.size = array_size,
	.init = array_init,
	.same_shape = array_same_shape,
	.recover = lfipc__array_recover,
	.status = array_status,
	.status_size = sizeof(lfipc_array_status),
	.status_min = sizeof(lfipc_array_status),
};

int lfipc_array_stat(const lfipc_array *a, lfipc_array_status *st)
{
	lfipc_array_status tmp;

	if (!a)
		return -EINVAL;
	memset(&tmp, 0, sizeof(tmp));
	tmp.struct_size = sizeof(tmp);
	tmp.type = a->type;
	tmp.length = a->len;
	tmp.elem_size = a->esize;
	tmp.has_lock = a->lock != NULL;
	if (a->lock) {
		int rc = lfipc__lock_status_at(a->r, lfipc__lock_off(a->lock),
					       &tmp.lock);
		if (rc < 0)
			return rc;
	}
	return lfipc__status_out(st, &tmp, sizeof(tmp), sizeof(tmp));
}

/* The shape of an array: its layout, or -EINVAL. */
static int array_shape(lfipc_type type, size_t len, bool with_lock,
		       struct init_arg *ia)
{
	if ((unsigned)type >= ARRAY_NTYPES || len == 0)
		return -EINVAL;
	if (layout(type, len, with_lock, &ia->lock_off, &ia->data_off,
		   &ia->total) < 0)
		return -EINVAL;
	ia->type = type;
	ia->len = len;
	return 0;
}

size_t lfipc_array_bytes(lfipc_type type, size_t len, bool with_lock)
{
	struct init_arg ia;

	if (array_shape(type, len, with_lock, &ia) < 0)
		return 0;
	return lfipc__obj_bytes(&lfipc__array_type, &ia);
}

int lfipc_array_open_or_create(lfipc_region *r, const char *name,
			       lfipc_type type, size_t len, bool with_lock,
			       lfipc_array **out)
{
	struct init_arg ia;
	uint64_t off, size;
	int rc;

	if (out)
		*out = NULL;
	if (!r || !out)
		return -EINVAL;
	rc = array_shape(type, len, with_lock, &ia);
	if (rc < 0)
		return rc;
	rc = lfipc__obj_get(r, name, &lfipc__array_type, &ia,
			    LFIPC__GET_EITHER, &off, &size, NULL);
	if (rc < 0)
		return rc;
	return make_handle(r, off, type, len, ia.lock_off, ia.data_off, out);
}
