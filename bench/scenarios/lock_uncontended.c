/* SPDX-License-Identifier: MIT */
/*
 * lock-uncontended: one process, acquire + count + release in a loop, ns per
 * pair, for every lock peer (the bare futex lock floor: one CAS and one
 * fetch_sub).
 */
#include "config.h"

#include "../bench.h"

static double once(void *ctx, bool *dl)
{
	(void)dl;
	return lock_run(ctx, 1, opt.lock_n);
}

static void run(void)
{
	for (int k = 0; k < bench_npeers; k++) {
		const struct peer *p = bench_peers[k];
		struct row *r;

		if (!peer_is(p, PF_LOCK, 0))
			continue;
		progress("lock uncontended", p->name, "");
		r = newrow("Lock acquire+release, uncontended", p->name,
			   p->wait, "ns", "1 process");
		r->lower_better = true;
		r->floor = p->flags & PF_FLOOR;
		repeat(r, 0, once, (void *)(uintptr_t)p);
	}
}

const struct scenario scen_lock_uncontended = {
    .name = "lock-uncontended",
    .group = "lock",
    .what = "acquire+release in one process, ns per pair",
    .run = run,
};
