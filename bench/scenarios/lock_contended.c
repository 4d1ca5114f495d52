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
	static struct ctx c[64];
	struct row *r[64];
	void *ctx[64];

	for (int i = 0; i < opt.nlp; i++) {
		char param[32];
		int n = 0;

		snprintf(param, sizeof(param), "%d processes", opt.lprocs[i]);
		for (int k = 0; k < bench_npeers && n < 64; k++) {
			const struct peer *p = bench_peers[k];

			if (!peer_is(p, PF_LOCK, 0))
				continue;
			c[n] = (struct ctx){p, opt.lprocs[i]};
			r[n] = newrow("Lock contended throughput, N processes",
				      p->name, p->wait, "Mops/s", param);
			r[n]->floor = p->flags & PF_FLOOR;
			ctx[n] = &c[n];
			n++;
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
