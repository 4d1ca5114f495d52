/* SPDX-License-Identifier: MIT */
/*
 * internal/value.h - the shared layout of an Array block (lib/value.c), for
 * the library and for white-box tests, so neither re-types offsets by hand.
 *
 * Block layout (offsets from the block start; every field is written once,
 * by the create-time init callback under the region lock, before the object
 * is published, and only read afterwards):
 *
 *   0                      struct lfipc_array_hdr (64 bytes)
 *   LFIPC_ARRAY_HDR_SIZE   embedded lock memory (lfipc__lock_shm_size()
 *                          bytes), only when created with a lock
 *   data_off               len elements of the C type, data_off % 64 == 0
 *
 * An opener recomputes the layout from (type, len, lock) and refuses a
 * header that disagrees with it or with the block size (-EPROTO).
 */
#ifndef LFIPC_INTERNAL_VALUE_H
#define LFIPC_INTERNAL_VALUE_H

#include <stddef.h>
#include <stdint.h>

#define LFIPC_ARRAY_MAGIC UINT32_C(0x59415241) /* "ARAY" */
#define LFIPC_ARRAY_VERSION 1u
#define LFIPC_ARRAY_HDR_SIZE 64u
#define LFIPC_ARRAY_DATA_ALIGN 64u

struct lfipc_array_hdr {
	uint32_t magic;	    /* LFIPC_ARRAY_MAGIC */
	uint32_t version;   /* LFIPC_ARRAY_VERSION */
	uint32_t type;	    /* lfipc_type */
	uint32_t elem_size; /* sizeof the C type */
	uint64_t len;	    /* number of elements, >= 1 */
	uint64_t lock_off;  /* from the block start; 0: no lock */
	uint64_t data_off;  /* from the block start */
	uint64_t check;	    /* lfipc__array_hdr_check() of the fields above */
	uint8_t pad[LFIPC_ARRAY_HDR_SIZE - 48];
};
_Static_assert(sizeof(struct lfipc_array_hdr) == LFIPC_ARRAY_HDR_SIZE,
	       "array hdr");

/* FNV-1a of the header fields before check (of a private copy). */
static inline uint64_t lfipc__array_hdr_check(const struct lfipc_array_hdr *h)
{
	const uint8_t *p = (const uint8_t *)h;
	uint64_t x = UINT64_C(0xcbf29ce484222325);

	for (size_t i = 0; i < offsetof(struct lfipc_array_hdr, check); i++)
		x = (x ^ p[i]) * UINT64_C(0x100000001b3);
	return x;
}

#endif /* LFIPC_INTERNAL_VALUE_H */
