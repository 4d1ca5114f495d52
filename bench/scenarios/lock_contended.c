/* SPDX-License-Identifier: MIT */
/*
 * lock-contended: N processes (--lock-procs, default 2 and 4) acquire,
 * increment a shared counter and release in a loop; total pairs per second.
 */
#include "config.h"

#include "../bench.h"

struct ctx {
	const struct peer *p;
	int np;
};

static double once(void *ctx, bool *dl)
{
	struct ctx *c = ctx;

	(void)dl;
	return lock_run(c->p, c->np, opt.lock_n / c->np);
}

static void run(void)
{
	static struct ctx c[MAXPEERS];
	struct row *r[MAXPEERS];
	void *ctx[MAXPEERS];

	for (int i = 0; i < opt.nlp; i++) {
		char param[32];
		int n;

		snprintf(param, sizeof(param), "%d processes", opt.lprocs[i]);
		n = peer_rows(r, ctx, "Lock contended throughput, N processes",
			      "Mops/s", param, PF_LOCK, 0);
		for (int k = 0; k < n; k++) {
			c[k] = (struct ctx){ctx[k], opt.lprocs[i]};
			ctx[k] = &c[k];
		}
		repeat_rows(r, ctx, n, 0, once);
	}
}

const struct scenario scen_lock_contended = {
    .name = "lock-contended",
    .group = "lock",
    .what = "N processes (--lock-procs) hammer one lock, Mops/s",
    .run = run,
};
