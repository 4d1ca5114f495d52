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
	static const uint64_t delays[2] = {0, 50000};
	static const char *const dnames[2] = {"waiter arriving",
					      "waiter asleep (50 us)"};
	const struct peer *pp[64];
	struct row *r[64];
	double *rt[64], p50s[64][64];
	int done[64];

	for (int di = 0; di < 2; di++) {
		int n = 0;

		for (int k = 0; k < bench_npeers && n < 64; k++) {
			const struct peer *p = bench_peers[k];

			if (!peer_is(p, PF_LOCK, 0))
				continue;
			pp[n] = p;
			r[n] = newrow(
			    "Lock hand-off round trip, 2 processes", p->name,
			    p->flags & PF_NO_OWNER ? "futex (sem pair)"
						   : p->wait,
			    "ns", dnames[di]);
			r[n]->nv = 5;
			r[n]->lower_better = true;
			r[n]->floor = p->flags & PF_FLOOR;
			rt[n] =
			    malloc(sizeof(double) * (size_t)(per * opt.reps));
			r[n]->failed = !rt[n];
			done[n++] = 0;
		}
		/* the repetitions outermost, as in repeat_rows() */
		for (int rep = 0; rep < opt.reps; rep++)
			for (int i = 0; i < n; i++) {
				double *lat = rt[i] + per * done[i];

				if (r[i]->failed)
					continue;
				progress("lock hand-off", pp[i]->name,
					 dnames[di]);
				if (handoff_run(pp[i], per, delays[di], lat)) {
					r[i]->failed = true;
					continue;
				}
				row_ran(r[i], lat[per / 2]);
				p50s[i][done[i]++] = lat[per / 2];
			}
		for (int i = 0; i < n; i++) {
			pool_row(r[i], rt[i], per * done[i], p50s[i], done[i]);
			free(rt[i]);
		}
	}
}

const struct scenario scen_lock_handoff = {
    .name = "lock-handoff",
    .group = "lock",
    .what = "ownership ping-pong between two processes, percentiles",
    .run = run,
};
