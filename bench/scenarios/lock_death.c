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
	struct row *r[64];
	void *ctx[64];
	int n = 0;

	for (int k = 0; k < bench_npeers && n < 64; k++) {
		const struct peer *p = bench_peers[k];

		if (!peer_is(p, PF_LOCK | PF_ROBUST, 0))
			continue;
		r[n] = newrow("Lock owner SIGKILLed: time to the next "
			      "acquirer's EOWNERDEAD",
			      p->name, p->wait, "us", "holder SIGKILLed");
		r[n]->lower_better = true;
		ctx[n++] = (void *)(uintptr_t)p;
	}
	repeat_rows(r, ctx, n, opt.death_n < 64 ? opt.death_n : 64, once);
}

const struct scenario scen_lock_death = {
    .name = "lock-death",
    .group = "lock",
    .what = "holder SIGKILLed: time until the waiter learns it (us)",
    .run = run,
};
