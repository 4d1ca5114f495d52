/* SPDX-License-Identifier: MIT */
/* fanin: 8 producers into 1 consumer, smallest size. */
#include "config.h"

#include "../bench.h"

static void run(void)
{
	stream_table("Fan-in: 8 producers x 1 consumer", 8, 1, opt.sizes, 1,
		     PF_MPMC, 0, false);
}

const struct scenario scen_fanin = {
    .name = "fanin",
    .what = "8 producers x 1 consumer, smallest size",
    .run = run,
};
