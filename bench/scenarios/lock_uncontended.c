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
	struct row *r[MAXPEERS];
	void *ctx[MAXPEERS];
	int n = peer_rows(r, ctx, "Lock acquire+release, uncontended", "ns",
			  "1 process", PF_LOCK, 0);

	for (int i = 0; i < n; i++)
		r[i]->lower_better = true;
	repeat_rows(r, ctx, n, 0, once);
}

const struct scenario scen_lock_uncontended = {
    .name = "lock-uncontended",
    .group = "lock",
    .what = "acquire+release in one process, ns per pair",
    .run = run,
};
