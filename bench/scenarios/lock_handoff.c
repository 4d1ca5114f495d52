/* SPDX-License-Identifier: MIT */
/*
 * lock-handoff: ownership ping-pong between two processes (handoff_run in
 * lockrun.c), the waiter just arriving or asleep for 50 us; percentiles of
 * the round trips. A semaphore without owners runs as a pair.
 */
#include "config.h"

#include <stdlib.h>

#include "../bench.h"

static void run(void)
{
	long per = opt.hand_n / opt.reps > 50 ? opt.hand_n / opt.reps : 50;
	double *rt = malloc(sizeof(double) * (size_t)(per * opt.reps));
	double p50s[64];
	static const uint64_t delays[2] = {0, 50000};
	static const char *const dnames[2] = {"waiter arriving",
					      "waiter asleep (50 us)"};

	for (int di = 0; di < 2 && rt; di++)
		for (int k = 0; k < bench_npeers; k++) {
			const struct peer *p = bench_peers[k];
			struct row *r;
			int rep;

			if (!peer_is(p, PF_LOCK, 0))
				continue;
			progress("lock hand-off", p->name, dnames[di]);
			r = newrow("Lock hand-off round trip, 2 processes",
				   p->name,
				   p->flags & PF_NO_OWNER ? "futex (sem pair)"
							  : p->wait,
				   "ns", dnames[di]);
			r->nv = 5;
			r->lower_better = true;
			r->floor = p->flags & PF_FLOOR;
			for (rep = 0; rep < opt.reps; rep++) {
				double *lat = rt + per * rep;

				if (handoff_run(p, per, delays[di], lat)) {
					r->failed = true;
					break;
				}
				row_waited(r);
				p50s[rep] = lat[per / 2];
			}
			pool_row(r, rt, per * rep, p50s, rep);
		}
	free(rt);
}

const struct scenario scen_lock_handoff = {
    .name = "lock-handoff",
    .group = "lock",
    .what = "ownership ping-pong between two processes, percentiles",
    .run = run,
};
