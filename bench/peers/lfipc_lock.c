/* SPDX-License-Identifier: MIT */
/*
 * lfipc Lock and RLock (lfipc_lock_create(..., recursive), used at depth
 * 1) in an anonymous region; robust: a dead owner's waiter gets
 * -EOWNERDEAD.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include <lfipc/region.h>
#include <lfipc/sync.h>

#include "../bench.h"

struct ll {
	lfipc_region *r;
	lfipc_lock *l;
};

static void *ll_open(bool recursive)
{
	struct ll *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	if (lfipc_region_create(NULL, 1 << 20, 0, &c->r)) {
		free(c);
		return NULL;
	}
	if (lfipc_lock_create(c->r, "bench", recursive, &c->l)) {
		lfipc_region_close(c->r);
		free(c);
		return NULL;
	}
	return c;
}

static void *ll_open_plain(void)
{
	return ll_open(false);
}

static void *ll_open_rec(void)
{
	return ll_open(true);
}

static int ll_acquire(void *l)
{
	int rc = lfipc_lock_acquire(((struct ll *)l)->l, LFIPC_FOREVER);

	return rc == 0 ? 0 : rc == -EOWNERDEAD ? 1 : -1;
}

static int ll_release(void *l)
{
	return lfipc_lock_release(((struct ll *)l)->l) ? -1 : 0;
}

static void ll_close(void *l)
{
	struct ll *c = l;

	lfipc_lock_close(c->l);
	lfipc_region_close(c->r);
	free(c);
}

#define LL_OPS                                                                 \
	.acquire = ll_acquire, .release = ll_release, .lock_close = ll_close

const struct peer peer_lfipc_lock = {
    .name = "lfipc Lock",
    .wait = "spin+futex",
    .flags = PF_LOCK | PF_ROBUST,
    .lock_open = ll_open_plain,
    LL_OPS,
};

const struct peer peer_lfipc_rlock = {
    .name = "lfipc RLock",
    .wait = "spin+futex",
    .flags = PF_LOCK | PF_ROBUST,
    .lock_open = ll_open_rec,
    LL_OPS,
};
