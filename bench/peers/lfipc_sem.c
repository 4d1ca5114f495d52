/* SPDX-License-Identifier: MIT */
/*
 * lfipc Semaphore opened at 1, as a lock: acquire = lfipc_sem_acquire,
 * release = lfipc_sem_release. Plain (no owner: its hand-off runs as a
 * pair), and with LFIPC_SEM_TRACK_HOLDERS, whose units have holders (only
 * a holder may release one, so its hand-off runs as a lock's) and come
 * back with -EOWNERDEAD when their holder dies (robust).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include <lfipc/region.h>
#include <lfipc/sync.h>

#include "../bench.h"

struct ls {
	lfipc_region *r;
	lfipc_sem *s;
};

static void *ls_open(unsigned flags)
{
	struct ls *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	if (lfipc_region_create(NULL, 1 << 20, 0, &c->r)) {
		free(c);
		return NULL;
	}
	if (lfipc_sem_create_ex(c->r, "bench", 1, flags, &c->s)) {
		lfipc_region_close(c->r);
		free(c);
		return NULL;
	}
	return c;
}

static void *ls_open_plain(void)
{
	return ls_open(0);
}

static void *ls_open_tracked(void)
{
	return ls_open(LFIPC_SEM_TRACK_HOLDERS);
}

static int ls_acquire(void *l)
{
	int rc = lfipc_sem_acquire(((struct ls *)l)->s, LFIPC_FOREVER);

	return rc == 0 ? 0 : rc == -EOWNERDEAD ? 1 : -1;
}

static int ls_release(void *l)
{
	return lfipc_sem_release(((struct ls *)l)->s) ? -1 : 0;
}

static void ls_close(void *l)
{
	struct ls *c = l;

	lfipc_sem_close(c->s);
	lfipc_region_close(c->r);
	free(c);
}

#define LS_OPS                                                                 \
	.acquire = ls_acquire, .release = ls_release, .lock_close = ls_close

const struct peer peer_lfipc_sem = {
    .name = "lfipc Semaphore",
    .wait = "spin+futex",
    .flags = PF_LOCK | PF_NO_OWNER,
    .lock_open = ls_open_plain,
    LS_OPS,
};

const struct peer peer_lfipc_sem_tracked = {
    .name = "lfipc Semaphore (tracked)",
    .wait = "spin+futex",
    .flags = PF_LOCK | PF_ROBUST,
    .lock_open = ls_open_tracked,
    LS_OPS,
};
