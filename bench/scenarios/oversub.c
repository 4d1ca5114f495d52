/* SPDX-License-Identifier: MIT */
/*
 * oversub: 2 x cores producers and 2 x cores consumers (4x4 on 2 cores),
 * smallest size. A design in which everyone waits for a preempted process
 * collapses here (see the deadline in doc/bench.md).
 */
#include "config.h"

#include "../bench.h"

static void run(void)
{
	stream_table("Oversubscribed: producers + consumers > cores", 2 * ncpu,
		     2 * ncpu, opt.sizes, 1, PF_MPMC, 0, false);
}

const struct scenario scen_oversub = {
    .name = "oversub",
    .what = "2 x cores producers x 2 x cores consumers, smallest size",
    .run = run,
};
