/* SPDX-License-Identifier: MIT */
/*
 * internal/objtype.h - one descriptor per object type.
 *
 * Everything the generic layers (directory, recovery, listing, status,
 * open-or-create) need to know about a type is in its descriptor, defined
 * next to the type's code (lib/<type>.c) and listed once in the table of
 * lib/types.c. region.c, alloc.c, recover.c and inspect.c know no type.
 *
 * Adding a primitive: its lib/<x>.c defines `const struct lfipc__objtype
 * lfipc__<x>_type`, its create/open/open-or-create call lfipc__obj_get()
 * with it, and lib/types.c gets one line. See doc/architecture.md.
 */
#ifndef LFIPC_INTERNAL_OBJTYPE_H
#define LFIPC_INTERNAL_OBJTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "internal/region.h"

struct lfipc__objtype {
	unsigned type;	  /* lfipc_obj_type: the directory's type value */
	const char *name; /* lfipc_obj_type_name() */
	/* Block alignment in the heap (0: LFIPC_HOT_ALIGN). */
	uint64_t align;
	/*
	 * Creation: the block size for the shape (the type's own argument
	 * structure; 0: invalid shape), and the initialiser that
	 * lfipc__obj_create() runs on the zeroed block under the region lock.
	 */
	uint64_t (*size)(const void *shape);
	/* For types whose shape is one number (lfipc_obj_bytes()): the block
	 * size for it (0: invalid); NULL for the others. */
	uint64_t (*size_arg)(unsigned arg);
	int (*init)(void *block, uint64_t size, void *shape);
	/*
	 * Open-or-create: does the existing, published block at off (size
	 * bytes, inside the heap) have this shape? 0 yes, -EEXIST another
	 * shape, -EPROTO contents that make no sense. Called under the region
	 * lock; reads each word once.
	 */
	int (*same_shape)(lfipc_region *r, uint64_t off, uint64_t size,
			  const void *shape);
	/* lfipc_region_recover(): items recovered (>= 0) or -errno. NULL:
	 * nothing can be left behind by a dead participant. */
	int (*recover)(lfipc_region *r, uint64_t off, uint64_t size);
	/*
	 * Status: fill *st (the type's status structure, private and zeroed
	 * by the caller, of status_size bytes) from the block at off. Must
	 * not crash on garbage: -EPROTO.
	 */
	int (*status)(lfipc_region *r, uint64_t off, uint64_t size, void *st);
	size_t status_size;	/* sizeof the current status structure */
	size_t status_min;	/* sizeof its first version */
};

/* The descriptor of a type, or NULL for NONE, INIT and unknown values. */
const struct lfipc__objtype *lfipc__objtype(unsigned type);

/*
 * Find-or-create the object name of type t:
 *   LFIPC__GET_CREATE  create it (-EEXIST if the name exists);
 *   LFIPC__GET_OPEN    open it (-ENOENT if it does not exist; -EINVAL
 *                      another type; shape is not looked at);
 *   LFIPC__GET_EITHER  open it if it exists with the same type and shape
 *                      (-EEXIST another type or shape), else create it.
 * All under the region lock in one step, so racing processes agree on one
 * object. off_out and size_out are validated locals (inside the heap);
 * *created tells which happened (may be NULL).
 * Return: 0; as lfipc__obj_create() and lfipc__obj_open().
 */
enum { LFIPC__GET_CREATE = 1, LFIPC__GET_OPEN = 2, LFIPC__GET_EITHER = 3 };
int lfipc__obj_get(lfipc_region *r, const char *name,
		   const struct lfipc__objtype *t, void *shape, int mode,
		   uint64_t *off_out, uint64_t *size_out, bool *created);

/*
 * Copy a filled private status *src (full bytes, the current structure)
 * into the caller's *dst, whose first member struct_size the caller set:
 * write only struct_size bytes, zero what this library does not know,
 * leave struct_size as it was. Return: 0; -EINVAL dst NULL or struct_size
 * below min.
 */
int lfipc__status_out(void *dst, const void *src, size_t full, size_t min);

/* Status of the block at off through its descriptor, into the caller's
 * structure st (struct_size checked). Return: as the descriptor's status,
 * and -EINVAL. */
int lfipc__obj_status(lfipc_region *r, const struct lfipc__objtype *t,
		      uint64_t off, uint64_t size, void *st);

/* Region bytes a block of t of this shape occupies: its granules plus the
 * worst alignment padding. 0 when the shape is invalid. */
uint64_t lfipc__obj_bytes(const struct lfipc__objtype *t, const void *shape);

/* Who holds something, from a participant token: pid from the slot (0 if
 * token is 0 or malformed), alive from lfipc__token_alive(). */
void lfipc__holder(lfipc_region *r, uint32_t token, lfipc_holder *h);

#endif /* LFIPC_INTERNAL_OBJTYPE_H */
