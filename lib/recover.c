/* SPDX-License-Identifier: MIT */
/*
 * recover.c - lfipc_region_recover(): each object's descriptor
 * (internal/objtype.h) repairs what dead participants left in it.
 */
#include "config.h"

#include <errno.h>

#include "internal/objtype.h"
#include "internal/region.h"

static int recover_one(lfipc_region *r, unsigned type, uint64_t off,
		       uint64_t size, void *arg)
{
	const struct lfipc__objtype *t = lfipc__objtype(type);

	(void)arg;
	return t && t->recover ? t->recover(r, off, size) : 0;
}

int lfipc_region_recover(lfipc_region *r)
{
	if (!r)
		return -EINVAL;
	/* Taking the region lock repairs a dead holder's half-done create or
	 * remove; then each object repairs its own in-flight work. */
	return lfipc__obj_foreach(r, recover_one, NULL);
}
