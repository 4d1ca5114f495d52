/* SPDX-License-Identifier: MIT */
/*
 * lfipc/value.h - Value and Array: typed C scalars in shared memory.
 *
 * An Array is len elements of one C scalar type, stored in place in the
 * region, created and opened by name like every other object; a Value is an
 * Array of length 1 (as multiprocessing.Value / multiprocessing.Array).
 *
 * Element layout: element i lives at lfipc_array_data(a) + i * size, where
 * size is sizeof the C type of lfipc_type_size() (int8_t ... uint64_t,
 * float, double, char, bool), and the data start is aligned to 64 bytes, so
 * every element is naturally aligned and the data can be used as a plain C
 * array of that type.
 *
 * Integer types (LFIPC_I8 ... LFIPC_U64 and LFIPC_CHAR) offer lock-free
 * atomic load, store, exchange, fetch-add and compare-exchange on one
 * element (C11 atomics on the element itself, sequentially consistent, no
 * system call). LFIPC_F32, LFIPC_F64 and LFIPC_BOOL do not: -EINVAL.
 * Values travel as int64_t; for LFIPC_U64 the int64_t carries the 64-bit
 * pattern (convert with (uint64_t)v and (int64_t)u). LFIPC_CHAR has the
 * range of C char on this platform (CHAR_MIN..CHAR_MAX).
 *
 * An Array created with_lock also embeds a recursive Lock (an RLock, as
 * Python's Value(lock=True).get_lock()) for compound updates; it is taken
 * over with -EOWNERDEAD if its holder dies. lfipc_array_get() and
 * lfipc_array_set() do NOT take it: they are plain copies. Hold the lock
 * around them (and around any direct access through lfipc_array_data())
 * when other processes write concurrently, or use the atomic operations.
 *
 * Error conventions of this header: an index or slice outside the array is
 * -ERANGE; a value that does not fit the element type is -EOVERFLOW (like
 * Python's OverflowError; nothing is stored, never a silent truncation);
 * an atomic operation on a non-integer type, or a NULL argument, is -EINVAL.
 *
 * Handles (lfipc_array *) belong to one process; any number of its threads
 * may use one handle at once, except that lfipc_array_close() must not race
 * with other calls on the same handle.
 */
#ifndef LFIPC_VALUE_H
#define LFIPC_VALUE_H

#include <lfipc/common.h>
#include <lfipc/region.h>
#include <lfipc/sync.h> /* lfipc_lock, for lfipc_array_lock() */

#ifdef __cplusplus
extern "C" {
#endif

/** Element types. Never renumbered: they are stored in shared memory. */
typedef enum {
	LFIPC_I8,   /**< int8_t */
	LFIPC_U8,   /**< uint8_t */
	LFIPC_I16,  /**< int16_t */
	LFIPC_U16,  /**< uint16_t */
	LFIPC_I32,  /**< int32_t */
	LFIPC_U32,  /**< uint32_t */
	LFIPC_I64,  /**< int64_t */
	LFIPC_U64,  /**< uint64_t */
	LFIPC_F32,  /**< float */
	LFIPC_F64,  /**< double */
	LFIPC_CHAR, /**< char (an integer type here) */
	LFIPC_BOOL  /**< bool (C _Bool) */
} lfipc_type;

typedef struct lfipc_array lfipc_array;

/**
 * Size in bytes of one element of type t (sizeof the C type).
 *
 * Return: 1, 2, 4 or 8; 0 when t is not an lfipc_type.
 * Concurrency: pure function.
 */
LFIPC_API size_t lfipc_type_size(lfipc_type t);

/**
 * Create the Array name of len elements of type in region r, all zero
 * (0, 0.0, '\0' or false), and open a handle to it.
 *
 * with_lock: also embed a recursive Lock, returned by lfipc_array_lock().
 *
 * Return: 0 and *out; -EINVAL bad type, len 0, NULL argument, or a name
 * that is NULL or empty; -ENAMETOOLONG name longer than LFIPC_NAME_MAX;
 * -EEXIST the name exists; -ENOSPC no room in the region; -EOVERFLOW
 * len * element size overflows; -ENOMEM; -EPROTO the region is corrupt;
 * -EUSERS no free participant slot.
 * May block briefly on the region's internal lock.
 * Concurrency: any thread.
 */
LFIPC_API int lfipc_array_create(lfipc_region *r, const char *name,
				 lfipc_type type, size_t len, bool with_lock,
				 lfipc_array **out);

/**
 * Open the existing Array name in r. Its header (type, length, layout,
 * embedded lock) is validated and copied into the handle; it is never
 * re-read from shared memory afterwards.
 *
 * Return: 0 and *out; -ENOENT no such object; -EINVAL the object is not
 * an Array, or a NULL argument; -ENAMETOOLONG; -EPROTO the header makes no
 * sense (corrupt); -ENOMEM.
 * May block briefly on the region's internal lock.
 * Concurrency: any thread.
 */
LFIPC_API int lfipc_array_open(lfipc_region *r, const char *name,
			       lfipc_array **out);

/**
 * Free the handle (and the handle of the embedded lock, if any). The Array
 * itself stays in the region (lfipc_object_remove() deletes it). Does not
 * release the lock if this process holds it. NULL is a no-op.
 * Concurrency: no other thread may use a at the same time.
 */
LFIPC_API void lfipc_array_close(lfipc_array *a);

/**
 * The elements, in place: a C array of lfipc_array_len(a) elements of the
 * C type of lfipc_array_type(a), 64-byte aligned. Plain accesses through it
 * are not atomic; see the header comment.
 *
 * Return: the pointer; NULL when a is NULL.
 */
LFIPC_API void *lfipc_array_data(lfipc_array *a);

/** Number of elements (1 for a Value); 0 when a is NULL. */
LFIPC_API size_t lfipc_array_len(const lfipc_array *a);

/** Element type; LFIPC_I8 when a is NULL. */
LFIPC_API lfipc_type lfipc_array_type(const lfipc_array *a);

/**
 * The embedded recursive Lock, owned by the handle (lfipc_array_close()
 * frees it; never lfipc_lock_close() it yourself). Use it with
 * lfipc_lock_acquire() / lfipc_lock_release() from lfipc/sync.h.
 *
 * Return: the lock; NULL if the Array was created without one (or a NULL).
 */
LFIPC_API lfipc_lock *lfipc_array_lock(lfipc_array *a);

/**
 * Copy elements [start, start + n) into out (n * element size bytes).
 * A plain copy: does not take the lock, not atomic as a whole.
 *
 * Return: 0; -ERANGE the slice is not inside the array; -EINVAL out is
 * NULL while n > 0, or a is NULL. n == 0 with start <= len is a no-op.
 * Does not block. Concurrency: any thread; see the header comment.
 */
LFIPC_API int lfipc_array_get(lfipc_array *a, size_t start, size_t n,
			      void *out);

/**
 * Copy n elements from in into [start, start + n).
 * A plain copy: does not take the lock, not atomic as a whole. LFIPC_BOOL
 * elements must hold 0 or 1 (as C bool); other bytes are stored as given.
 *
 * Return: 0; -ERANGE the slice is not inside the array; -EINVAL in is
 * NULL while n > 0, or a is NULL.
 * Does not block. Concurrency: any thread; see the header comment.
 */
LFIPC_API int lfipc_array_set(lfipc_array *a, size_t start, size_t n,
			      const void *in);

/**
 * Atomically load element i into *out (sign- or zero-extended; for
 * LFIPC_U64 the bit pattern).
 *
 * Return: 0; -ERANGE i >= len; -EINVAL non-integer type or NULL argument.
 * Lock-free, no system call. Concurrency: any thread or process.
 */
LFIPC_API int lfipc_array_load(lfipc_array *a, size_t i, int64_t *out);

/**
 * Atomically store v into element i.
 *
 * Return: 0; -ERANGE i >= len; -EOVERFLOW v does not fit the element type
 * (nothing stored); -EINVAL non-integer type or NULL a.
 * Lock-free, no system call. Concurrency: any thread or process.
 */
LFIPC_API int lfipc_array_store(lfipc_array *a, size_t i, int64_t v);

/**
 * Atomically replace element i by v; the previous value goes to *old
 * (old may be NULL).
 *
 * Return: 0; -ERANGE i >= len; -EOVERFLOW v does not fit (nothing
 * stored); -EINVAL non-integer type or NULL a.
 * Lock-free, no system call. Concurrency: any thread or process.
 */
LFIPC_API int lfipc_array_exchange(lfipc_array *a, size_t i, int64_t v,
				   int64_t *old);

/**
 * Atomically add delta to element i; the previous value goes to *old (old
 * may be NULL). The arithmetic wraps modulo 2^bits of the element, like
 * C's atomic_fetch_add (delta is reduced modulo 2^bits too, so -1 on an
 * unsigned element subtracts one); it never fails for overflow.
 *
 * Return: 0; -ERANGE i >= len; -EINVAL non-integer type or NULL a.
 * Lock-free, no system call. Concurrency: any thread or process.
 */
LFIPC_API int lfipc_array_fetch_add(lfipc_array *a, size_t i, int64_t delta,
				    int64_t *old);

/**
 * Atomically: if element i equals expected, replace it by desired.
 *
 * Return: 0 replaced; -EAGAIN element i did not equal expected (nothing
 * changed); -ERANGE i >= len; -EOVERFLOW expected or desired does not fit
 * the element type; -EINVAL non-integer type or NULL a.
 * Lock-free, no system call. Concurrency: any thread or process.
 */
LFIPC_API int lfipc_array_cas(lfipc_array *a, size_t i, int64_t expected,
			      int64_t desired);

/**
 * lfipc_array_open_or_create() - open the Array name, or create it.
 *
 * Open-or-create: if the object exists with this type and shape, open
 * it; if the name is free, create it; one atomic step under the region
 * lock, so any number of processes and threads may race on one name and
 * all get the same object. Return: as the create call, except that
 * -EEXIST means the name exists with another type or shape (another element type, length, or
 * lock choice).
 * Does not block (beyond the region's internal lock). Thread-safe.
 */
LFIPC_API int lfipc_array_open_or_create(lfipc_region *r, const char *name,
					 lfipc_type type, size_t len,
					 bool with_lock, lfipc_array **out);

#ifdef __cplusplus
}
#endif

#endif /* LFIPC_VALUE_H */
