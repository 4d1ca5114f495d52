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
	struct row *r[64];
	void *ctx[64];
	int n = 0;

	for (int k = 0; k < bench_npeers && n < 64; k++) {
		const struct peer *p = bench_peers[k];

		if (!peer_is(p, PF_LOCK, 0))
			continue;
		r[n] = newrow("Lock acquire+release, uncontended", p->name,
			      p->wait, "ns", "1 process");
		r[n]->lower_better = true;
		r[n]->floor = p->flags & PF_FLOOR;
		ctx[n++] = (void *)(uintptr_t)p;
	}
	repeat_rows(r, ctx, n, 0, once);
}

const struct scenario scen_lock_uncontended = {
    .name = "lock-uncontended",
    .group = "lock",
    .what = "acquire+release in one process, ns per pair",
    .run = run,
};
