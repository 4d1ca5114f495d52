/* SPDX-License-Identifier: MIT */
/*
 * heapcheck.h - white-box consistency check of a region's directory and heap
 * bitmap, for tests that link the library statically (internal symbols).
 *
 * th_heap_check() takes the region lock and verifies that
 *  - every used directory entry is sane (inside the heap, on granules),
 *  - no two objects' blocks overlap,
 *  - the bitmap has exactly the granules of the objects set,
 *  - the header's free-granule and object counters agree with both.
 */
#ifndef LFIPC_TEST_HEAPCHECK_H
#define LFIPC_TEST_HEAPCHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/proc.h"
#include "internal/region.h"

/* Return 0, or -1 with a description in msg. */
static inline int th_heap_check(lfipc_region *r, char *msg, size_t n)
{
	struct lfipc_hdr *h = lfipc__hdr(r);
	const struct lfipc_dirent *dir =
	    (const struct lfipc_dirent *)(r->base + r->dir_off);
	const uint64_t *bm = (const uint64_t *)(r->base + r->bitmap_off);
	uint8_t *own = calloc(r->heap_granules, 1);
	uint64_t used = 0, g, nobj = 0;
	int rc = -1;

	msg[0] = '\0';
	if (!own) {
		snprintf(msg, n, "out of memory");
		return -1;
	}
	if (lfipc__region_lock(r) < 0) {
		snprintf(msg, n, "region lock failed");
		free(own);
		return -1;
	}
	for (uint32_t i = 0; i < r->dir_cap; i++) {
		const struct lfipc_dirent *d = &dir[i];
		uint64_t first, count;

		if (d->type == LFIPC_OBJ_NONE)
			continue;
		if (d->type == LFIPC_OBJ_INIT) {
			snprintf(msg, n, "entry %u still INIT", i);
			goto out;
		}
		if (d->size == 0 || !lfipc__heap_range_ok(r, d->off, d->size) ||
		    (d->off - r->heap_off) % LFIPC_GRANULE) {
			snprintf(msg, n, "entry %u outside the heap", i);
			goto out;
		}
		first = (d->off - r->heap_off) / LFIPC_GRANULE;
		count = (d->size + LFIPC_GRANULE - 1) / LFIPC_GRANULE;
		for (g = first; g < first + count; g++) {
			if (own[g]) {
				snprintf(msg, n,
					 "entry %u overlaps another at "
					 "granule %llu",
					 i, (unsigned long long)g);
				goto out;
			}
			own[g] = 1;
		}
		used += count;
		nobj++;
	}
	for (g = 0; g < r->heap_granules; g++) {
		int bit = (int)((bm[g / 64] >> (g & 63)) & 1);

		if (bit != own[g]) {
			snprintf(msg, n,
				 "bitmap bit %llu is %d, objects say %d",
				 (unsigned long long)g, bit, own[g]);
			goto out;
		}
	}
	if (h->granules_free != r->heap_granules - used) {
		snprintf(msg, n, "granules_free %llu, expected %llu",
			 (unsigned long long)h->granules_free,
			 (unsigned long long)(r->heap_granules - used));
		goto out;
	}
	if (h->nobjects != nobj) {
		snprintf(msg, n, "nobjects %u, expected %llu", h->nobjects,
			 (unsigned long long)nobj);
		goto out;
	}
	if (h->jnl_op != LFIPC_JNL_NONE) {
		snprintf(msg, n, "journal not clear: op %u", h->jnl_op);
		goto out;
	}
	rc = 0;
out:
	lfipc__region_unlock(r);
	free(own);
	return rc;
}

#endif
