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
	for (int i = 0; i < opt.nlp; i++) {
		char param[32];

		snprintf(param, sizeof(param), "%d processes", opt.lprocs[i]);
		for (int k = 0; k < bench_npeers; k++) {
			struct ctx c = {bench_peers[k], opt.lprocs[i]};
			struct row *r;

			if (!peer_is(c.p, PF_LOCK, 0))
				continue;
			progress("lock contended", c.p->name, param);
			r = newrow("Lock contended throughput, N processes",
				   c.p->name, c.p->wait, "Mops/s", param);
			r->floor = c.p->flags & PF_FLOOR;
			repeat(r, 0, once, &c);
		}
	}
}

const struct scenario scen_lock_contended = {
    .name = "lock-contended",
    .group = "lock",
    .what = "N processes (--lock-procs) hammer one lock, Mops/s",
    .run = run,
};
