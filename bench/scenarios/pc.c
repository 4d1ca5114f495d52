/* SPDX-License-Identifier: MIT */
/*
 * pc: P producers x C consumers on one queue (--pc PxC, default 1x1 and
 * 2x2), by message size, for the peers that allow several of each.
 */
#include "config.h"

#include "../bench.h"

static void run(void)
{
	for (int i = 0; i < opt.npc; i++)
		stream_table("Queue throughput, P producers x C consumers",
			     opt.pcs[i][0], opt.pcs[i][1], opt.sizes, opt.nsz,
			     PF_MPMC, 0, false);
}

const struct scenario scen_pc = {
    .name = "pc",
    .what = "P producers x C consumers (--pc), by message size",
    .run = run,
};
