/* SPDX-License-Identifier: MIT */
/*
 * internal/region.h - the region handle and the generic object directory
 * that the typed create/open functions of every component build on.
 */
#ifndef LFIPC_INTERNAL_REGION_H
#define LFIPC_INTERNAL_REGION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <lfipc/inspect.h>
#include <lfipc/region.h>

#include "internal/layout.h"

/* Object types in the directory: the public lfipc_obj_type
 * (lfipc/inspect.h; values 1..LFIPC_OBJ_TYPE_MAX) and two internal values.
 * Never renumber: they are in the layout. */
#define LFIPC_OBJ_NONE 0u
#define LFIPC_OBJ_TYPE_MAX 9u
/* a directory entry being created (journalled, not openable) */
#define LFIPC_OBJ_INIT 0xffu

/* The per-process handle. The layout fields are private copies made when
 * the region was validated: never re-read from shared memory. */
struct lfipc_region {
	uint8_t *base;
	uint64_t size;
	int fd;			/* the mapping's fd (ours, O_CLOEXEC) */
	bool named;
	/* validated layout */
	uint64_t proc_off, dir_off, bitmap_off, heap_off, heap_granules;
	uint32_t proc_cap, dir_cap;

	/* Serialises this process's threads on the region lock: the shared
	 * lock word holds a per-process token, so two threads of one process
	 * cannot tell each other apart there. Taken before the shared lock;
	 * held across fork by the atfork handlers (proc.c). */
	pthread_mutex_t lock_mu;

	/* participant identity; see proc.c */
	pthread_mutex_t reg_mu;		/* serialises (re)registration */
	_Atomic uint32_t token;		/* 0: not registered */
	_Atomic unsigned fork_epoch;	/* lfipc__fork_epoch at registration */
	int lock_fd;			/* our own open file description */
	uint32_t slot;

	struct lfipc_region *next;	/* list of open regions, for atfork */
};

static inline struct lfipc_hdr *lfipc__hdr(const lfipc_region *r)
{
	return (struct lfipc_hdr *)r->base;
}

/* True when [off, off+len) lies inside the region's heap. */
static inline bool lfipc__heap_range_ok(const lfipc_region *r, uint64_t off,
					uint64_t len)
{
	uint64_t end = r->heap_off + r->heap_granules * LFIPC_GRANULE;

	return off >= r->heap_off && off <= end && len <= end - off;
}

static inline void *lfipc__at(const lfipc_region *r, uint64_t off)
{
	return r->base + off;
}

static inline uint64_t lfipc__off(const lfipc_region *r, const void *p)
{
	return (uint64_t)((const uint8_t *)p - r->base);
}

/*
 * Validate an object name: 0; -EINVAL NULL or empty; -ENAMETOOLONG longer
 * than LFIPC_NAME_MAX.
 */
int lfipc__name_check(const char *name);

/*
 * Create the object name of the given type with size bytes aligned to align
 * (a power of two; 0 means LFIPC_HOT_ALIGN). The block is zeroed, then init
 * (if not NULL) is called with the block while the region lock is held and
 * must only write into the block (it must not call back into the region);
 * a non-zero return from init aborts the creation and is returned. The
 * object becomes visible to lfipc__obj_open only when all of this is done;
 * a creator that dies half-way leaves nothing behind (journal).
 *
 * *off_out is the offset this call computed and checked itself ([off,
 * off + size) lies inside the heap, aligned to align); it is never read
 * back from the directory, so a caller may use it without re-checking
 * whatever another process writes into the region meanwhile.
 *
 * Return: 0 and *off_out; -EEXIST; -ENOSPC no room in the heap or the
 * directory; -EINVAL; -ENAMETOOLONG; -EPROTO corrupt region; -EUSERS.
 */
int lfipc__obj_create(lfipc_region *r, const char *name, unsigned type,
		      uint64_t size, uint64_t align,
		      int (*init)(void *block, uint64_t size, void *arg),
		      void *arg, uint64_t *off_out);

/*
 * Find the object name. On success *off_out and *size_out describe a block
 * that lies inside the heap (the component then validates its contents).
 * They come from one snapshot of the directory entry, validated before it
 * is returned: never re-read from shared memory.
 *
 * Return: 0; -ENOENT; -EINVAL the object has another type (or bad name);
 * -ENAMETOOLONG; -EPROTO the directory entry points outside the heap.
 */
int lfipc__obj_open(lfipc_region *r, const char *name, unsigned type,
		    uint64_t *off_out, uint64_t *size_out);

/*
 * Run fn(r, type, off, size, arg) for each published object, with the
 * region lock NOT held (a snapshot is taken first: each entry read once
 * and validated, so off and size lie inside the heap). Used by
 * lfipc_region_recover(). Returns the sum of fn's non-negative returns, or
 * the first negative one.
 */
int lfipc__obj_foreach(lfipc_region *r,
		       int (*fn)(lfipc_region *r, unsigned type, uint64_t off,
				 uint64_t size, void *arg),
		       void *arg);

/* Take / drop the region lock (robust; recovers the journal on owner death).
 * Return: 0; -EUSERS; -EPROTO. */
int lfipc__region_lock(lfipc_region *r);
void lfipc__region_unlock(lfipc_region *r);

/*
 * Per-type recovery, called by lfipc_region_recover() for each object:
 * returns the number of items recovered from dead participants (>= 0) or a
 * negative errno. Defined by each component; a component with nothing to
 * recover does not define one (see recover.c).
 */
typedef int (*lfipc__recover_fn)(lfipc_region *r, uint64_t off, uint64_t size);
lfipc__recover_fn lfipc__recover_for_type(unsigned type);

#endif /* LFIPC_INTERNAL_REGION_H */
