/* SPDX-License-Identifier: MIT */
/*
 * lfipc queue: two queues (one per direction) of RCAP messages in an
 * anonymous region. "spin+futex" waits with LFIPC_FOREVER (the library
 * spins briefly, then sleeps on a futex); "busy" polls with LFIPC_NOWAIT
 * as a busy-polling ring user would; the burst variants move runs of 8 or
 * 32 messages with lfipc_queue_put_many / get_many. The "SPSC" rows use
 * queues created with LFIPC_QUEUE_SINGLE_PRODUCER | _SINGLE_CONSUMER (one
 * sender and one receiver per direction, as the SPSC rings they are
 * compared with).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "../bench.h"

struct lq {
	lfipc_region *r;
	lfipc_queue *q[2];
};

static void *lq_open_mode(size_t msz, unsigned flags)
{
	struct lq *c = calloc(1, sizeof(*c));
	size_t rsz = 2 * RCAP * (msz + 64) + (4 << 20);

	if (!c)
		return NULL;
	if (lfipc_region_create(NULL, rsz, 0, &c->r)) {
		free(c);
		return NULL;
	}
	if (lfipc_queue_create(c->r, "q0", RCAP, msz, flags, &c->q[0]) ||
	    lfipc_queue_create(c->r, "q1", RCAP, msz, flags, &c->q[1])) {
		lfipc_region_close(c->r);
		free(c);
		return NULL;
	}
	return c;
}

static void *lq_open(size_t msz)
{
	return lq_open_mode(msz, 0);
}

static void *lq_open_spsc(size_t msz)
{
	return lq_open_mode(msz, LFIPC_QUEUE_SINGLE_PRODUCER |
				     LFIPC_QUEUE_SINGLE_CONSUMER);
}

static void lq_close(void *ch)
{
	struct lq *c = ch;

	lfipc_queue_close(c->q[0]);
	lfipc_queue_close(c->q[1]);
	lfipc_region_close(c->r);
	free(c);
}

static int lq_send(void *ch, int d, const void *m, size_t n)
{
	struct lq *c = ch;

	return lfipc_queue_put(c->q[d], m, n, LFIPC_FOREVER) ? -1 : 0;
}

static int lq_recv(void *ch, int d, void *m, size_t n)
{
	struct lq *c = ch;
	size_t len = 0;

	if (lfipc_queue_get(c->q[d], m, n, &len, LFIPC_FOREVER))
		return -1;
	return len == n ? 0 : -1;
}

static int lq_send_busy(void *ch, int d, const void *m, size_t n)
{
	struct lq *c = ch;
	int rc;

	while ((rc = lfipc_queue_put(c->q[d], m, n, LFIPC_NOWAIT)) == -EAGAIN)
		if (bench_spin())
			return -1;
	return rc ? -1 : 0;
}

static int lq_recv_busy(void *ch, int d, void *m, size_t n)
{
	struct lq *c = ch;
	size_t len = 0;
	int rc;

	while ((rc = lfipc_queue_get(c->q[d], m, n, &len, LFIPC_NOWAIT)) ==
	       -EAGAIN)
		if (bench_spin())
			return -1;
	return rc || len != n ? -1 : 0;
}

static int lq_send_many(void *ch, int d, const void *const *m, size_t n, int k)
{
	struct lq *c = ch;
	size_t lens[MAXBURST];

	for (int x = 0; x < k; x++)
		lens[x] = n;
	return lfipc_queue_put_many(c->q[d], m, lens, (size_t)k, LFIPC_FOREVER);
}

static int lq_recv_many(void *ch, int d, void *buf, size_t n, int k)
{
	struct lq *c = ch;
	size_t lens[MAXBURST];
	int got = lfipc_queue_get_many(c->q[d], buf, MAXMSG, lens, (size_t)k,
				       LFIPC_FOREVER);

	for (int x = 0; x < got; x++)
		if (lens[x] != n)
			return -1;
	return got;
}

#define LQ_OPS .open = lq_open, .close = lq_close

const struct peer peer_lfipc_queue = {
    .name = "lfipc queue",
    .wait = "spin+futex",
    .flags = PF_CHAN | PF_MPMC,
    LQ_OPS,
    .send = lq_send,
    .recv = lq_recv,
};

const struct peer peer_lfipc_queue_busy = {
    .name = "lfipc queue busy",
    .wait = "busy",
    .flags = PF_CHAN | PF_MPMC,
    LQ_OPS,
    .send = lq_send_busy,
    .recv = lq_recv_busy,
};

const struct peer peer_lfipc_queue_burst8 = {
    .name = "lfipc queue burst 8",
    .wait = "spin+futex",
    .flags = PF_CHAN | PF_MPMC | PF_BURST,
    LQ_OPS,
    .send = lq_send,
    .recv = lq_recv,
    .burst = 8,
    .send_many = lq_send_many,
    .recv_many = lq_recv_many,
};

const struct peer peer_lfipc_queue_burst32 = {
    .name = "lfipc queue burst 32",
    .wait = "spin+futex",
    .flags = PF_CHAN | PF_MPMC | PF_BURST,
    LQ_OPS,
    .send = lq_send,
    .recv = lq_recv,
    .burst = 32,
    .send_many = lq_send_many,
    .recv_many = lq_recv_many,
};

const struct peer peer_lfipc_queue_spsc = {
    .name = "lfipc queue SPSC",
    .wait = "spin+futex",
    .flags = PF_CHAN,
    .open = lq_open_spsc,
    .close = lq_close,
    .send = lq_send,
    .recv = lq_recv,
};

const struct peer peer_lfipc_queue_spsc_busy = {
    .name = "lfipc queue SPSC busy",
    .wait = "busy",
    .flags = PF_CHAN,
    .open = lq_open_spsc,
    .close = lq_close,
    .send = lq_send_busy,
    .recv = lq_recv_busy,
};

const struct peer peer_lfipc_queue_spsc_burst32 = {
    .name = "lfipc queue SPSC burst 32",
    .wait = "spin+futex",
    .flags = PF_CHAN | PF_BURST,
    .open = lq_open_spsc,
    .close = lq_close,
    .send = lq_send,
    .recv = lq_recv,
    .burst = 32,
    .send_many = lq_send_many,
    .recv_many = lq_recv_many,
};
