/* SPDX-License-Identifier: MIT */
/*
 * wakeup: the ping-pong again, but the sender waits 50 us before each
 * round trip (not timed), so that a receiver that sleeps when idle is
 * asleep: the round trip then includes waking it (twice). Smallest size.
 */
#include "config.h"

#include "../bench.h"

static void run(void)
{
	pingpong_table(
	    "Ping-pong round trip after 50 us idle (receiver asleep)",
	    opt.sizes, 1, opt.rtt_n / 10, 50000);
}

const struct scenario scen_wakeup = {
    .name = "wakeup",
    .what = "ping-pong after 50 us idle: the cost of waking a sleeper",
    .run = run,
};
