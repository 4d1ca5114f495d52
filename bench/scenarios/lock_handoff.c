/* SPDX-License-Identifier: MIT */
/*
 * lock-handoff: ownership ping-pong between two processes (handoff_run in
 * lockrun.c), the waiter just arriving or asleep for 50 us; percentiles of
 * the round trips. A semaphore without owners runs as a pair.
 */
#include "config.h"

#include "../bench.h"

struct ho_ctx {
	const struct peer *p;
	long n;
	uint64_t delay;
};

static int once(void *ctx, double *lat)
{
	struct ho_ctx *c = ctx;

	return handoff_run(c->p, c->n, c->delay, lat);
}

static void run(void)
{
	long per = opt.hand_n / opt.reps > 50 ? opt.hand_n / opt.reps : 50;
	static const uint64_t delays[2] = {0, 50000};
	static const char *const dnames[2] = {"waiter arriving",
					      "waiter asleep (50 us)"};
	static struct ho_ctx c[MAXPEERS];
	struct row *r[MAXPEERS];
	void *ctx[MAXPEERS];

	for (int di = 0; di < 2; di++) {
		int n =
		    peer_rows(r, ctx, "Lock hand-off round trip, 2 processes",
			      "ns", dnames[di], PF_LOCK, 0);

		for (int i = 0; i < n; i++) {
			c[i] = (struct ho_ctx){ctx[i], per, delays[di]};
			ctx[i] = &c[i];
			r[i]->nv = 5;
			r[i]->lower_better = true;
			if (c[i].p->flags & PF_NO_OWNER)
				r[i]->wait = "futex (sem pair)";
		}
		repeat_pooled(r, ctx, n, per, once);
	}
}

const struct scenario scen_lock_handoff = {
    .name = "lock-handoff",
    .group = "lock",
    .what = "ownership ping-pong between two processes, percentiles",
    .run = run,
};
