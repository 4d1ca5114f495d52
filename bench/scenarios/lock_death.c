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
	for (int k = 0; k < bench_npeers; k++) {
		const struct peer *p = bench_peers[k];
		struct row *r;

		if (!peer_is(p, PF_LOCK | PF_ROBUST, 0))
			continue;
		progress("lock owner death", p->name, "");
		r = newrow("Lock owner SIGKILLed: time to the next acquirer's "
			   "EOWNERDEAD",
			   p->name, p->wait, "us", "holder SIGKILLed");
		r->lower_better = true;
		repeat(r, opt.death_n < 64 ? opt.death_n : 64, once,
		       (void *)(uintptr_t)p);
	}
}

const struct scenario scen_lock_death = {
    .name = "lock-death",
    .group = "lock",
    .what = "holder SIGKILLed: time until the waiter learns it (us)",
    .run = run,
};
