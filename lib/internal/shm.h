/* SPDX-License-Identifier: MIT */
/*
 * internal/shm.h - reading untrusted shared memory exactly once.
 *
 * Every byte of a region can be rewritten by another process at any moment,
 * so a value read from it is read once into a local, the local is
 * validated, and only the local is used afterwards. A plain C read does not
 * guarantee that: the compiler may load a field again where the source uses
 * the variable holding it (it did: lfipc__obj_open validated a directory
 * entry's offset and then re-loaded it from shared memory). These helpers
 * make the single load explicit:
 *
 *   - plain (non-atomic) fields are read through a volatile lvalue, which
 *     the compiler must load exactly once where it is written;
 *   - _Atomic fields are read with atomic_load_explicit (the compiler never
 *     repeats an atomic load either), with the memory order the caller's
 *     protocol needs, labelled at the call site as usual;
 *   - structures are copied with lfipc__shm_copy(), a byte-wise volatile
 *     copy whose result is a private snapshot; validate the snapshot, never
 *     the original.
 *
 * Plain fields are the immutable ones (written once at creation before the
 * object was published with a release store, or under a lock): in a
 * well-behaved region no other thread writes them concurrently, so a
 * volatile load is not a data race that ThreadSanitizer would report.
 */
#ifndef LFIPC_INTERNAL_SHM_H
#define LFIPC_INTERNAL_SHM_H

#include <stddef.h>
#include <stdint.h>

static inline uint8_t lfipc__shm_ld8(const void *p)
{
	return *(const volatile uint8_t *)p;
}

static inline uint32_t lfipc__shm_ld32(const void *p)
{
	return *(const volatile uint32_t *)p;
}

static inline uint64_t lfipc__shm_ld64(const void *p)
{
	return *(const volatile uint64_t *)p;
}

/* Copy n bytes of shared memory at src into private memory at dst, reading
 * each byte once. Use it for a header that is validated as a whole. */
static inline void lfipc__shm_copy(void *dst, const void *src, size_t n)
{
	const volatile uint8_t *s = (const volatile uint8_t *)src;
	uint8_t *d = (uint8_t *)dst;

	for (size_t i = 0; i < n; i++)
		d[i] = s[i];
}

#endif /* LFIPC_INTERNAL_SHM_H */
