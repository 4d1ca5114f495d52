/* SPDX-License-Identifier: MIT */
/*
 * lock-death: the holder is SIGKILLed while a waiter is blocked; time until
 * the waiter's acquire says the owner died. Robust locks only: any other
 * lock's waiter would block forever.
 */
#include "config.h"

#include "../bench.h"

static double once(void *ctx, bool *dl)
{
	(void)dl;
	return death_run(ctx);
}

static void run(void)
{
	struct row *r[MAXPEERS];
	void *ctx[MAXPEERS];
	int n = peer_rows(r, ctx,
			  "Lock owner SIGKILLed: time to the next acquirer's "
			  "EOWNERDEAD",
			  "us", "holder SIGKILLed", PF_LOCK | PF_ROBUST, 0);

	for (int i = 0; i < n; i++)
		r[i]->lower_better = true;
	repeat_rows(r, ctx, n, opt.death_n < 64 ? opt.death_n : 64, once);
}

const struct scenario scen_lock_death = {
    .name = "lock-death",
    .group = "lock",
    .what = "holder SIGKILLed: time until the waiter learns it (us)",
    .run = run,
};
