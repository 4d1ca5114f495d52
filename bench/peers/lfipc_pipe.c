/* SPDX-License-Identifier: MIT */
/*
 * lfipc pipe: one duplex Pipe (64 KiB per direction) in an anonymous
 * region; the parent holds end 0 and the child end 1 (both inherited), so
 * direction 0 is sent on end 0 and received on end 1, and back. One sender
 * and one receiver per direction.
 */
#include "config.h"

#include <stdlib.h>

#include <lfipc/pipe.h>
#include <lfipc/region.h>

#include "../bench.h"

struct lp {
	lfipc_region *r;
	lfipc_conn *end[2];
};

static void *lp_open(size_t msz)
{
	struct lp *c = calloc(1, sizeof(*c));

	(void)msz;
	if (!c)
		return NULL;
	if (lfipc_region_create(NULL, 4 << 20, 0, &c->r)) {
		free(c);
		return NULL;
	}
	if (lfipc_pipe_create(c->r, "bench", 64 * 1024, true, &c->end[0],
			      &c->end[1])) {
		lfipc_region_close(c->r);
		free(c);
		return NULL;
	}
	return c;
}

static int lp_send(void *ch, int d, const void *m, size_t n)
{
	struct lp *c = ch;

	return lfipc_conn_send(c->end[d], m, n, LFIPC_FOREVER) ? -1 : 0;
}

static int lp_recv(void *ch, int d, void *m, size_t n)
{
	struct lp *c = ch;
	size_t len = 0;

	if (lfipc_conn_recv(c->end[1 - d], m, n, &len, LFIPC_FOREVER) < 0)
		return -1;
	return len == n ? 0 : -1;
}

static void lp_close(void *ch)
{
	struct lp *c = ch;

	lfipc_conn_close(c->end[0]);
	lfipc_conn_close(c->end[1]);
	lfipc_region_close(c->r);
	free(c);
}

const struct peer peer_lfipc_pipe = {
    .name = "lfipc pipe",
    .wait = "spin+futex",
    .flags = PF_CHAN,
    .open = lp_open,
    .send = lp_send,
    .recv = lp_recv,
    .close = lp_close,
};
