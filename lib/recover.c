/* SPDX-License-Identifier: MIT */
/*
 * recover.c - lfipc_region_recover(): the one place that knows every object
 * type, so that region.c and alloc.c need not know any of them.
 */
#include "config.h"

#include <errno.h>

#include "internal/recover.h"
#include "internal/region.h"

lfipc__recover_fn lfipc__recover_for_type(unsigned type)
{
	switch (type) {
	case LFIPC_OBJ_QUEUE:
		return lfipc__queue_recover;
	case LFIPC_OBJ_LOCK:
		return lfipc__lock_recover;
	case LFIPC_OBJ_SEM:
		return lfipc__sem_recover;
	case LFIPC_OBJ_COND:
		return lfipc__cond_recover;
	case LFIPC_OBJ_BARRIER:
		return lfipc__barrier_recover;
	case LFIPC_OBJ_ARRAY:
		return lfipc__array_recover;
	case LFIPC_OBJ_PIPE:
		return lfipc__pipe_recover;
	case LFIPC_OBJ_LISTENER:
		return lfipc__listener_recover;
	default:
		return NULL; /* Event: no owner, nothing to recover */
	}
}

static int recover_one(lfipc_region *r, unsigned type, uint64_t off,
		       uint64_t size, void *arg)
{
	lfipc__recover_fn fn = lfipc__recover_for_type(type);

	(void)arg;
	return fn ? fn(r, off, size) : 0;
}

int lfipc_region_recover(lfipc_region *r)
{
	if (!r)
		return -EINVAL;
	/* Taking the region lock repairs a dead holder's half-done create or
	 * remove; then each object repairs its own in-flight work. */
	return lfipc__obj_foreach(r, recover_one, NULL);
}
