/* SPDX-License-Identifier: MIT */
/* fanout: 1 producer to 8 consumers, smallest size. */
#include "config.h"

#include "../bench.h"

static void run(void)
{
	stream_table("Fan-out: 1 producer x 8 consumers", 1, 8, opt.sizes, 1,
		     PF_MPMC, 0, false);
}

const struct scenario scen_fanout = {
    .name = "fanout",
    .what = "1 producer x 8 consumers, smallest size",
    .run = run,
};
