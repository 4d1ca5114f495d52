/* SPDX-License-Identifier: MIT */
/*
 * throughput: one producer process streams to one consumer process, by
 * message size, for every channel peer that is a queue (floors included);
 * the same runner as the P x C tables, so its 1x1 figures are theirs.
 */
#include "config.h"

#include <string.h>

#include "../bench.h"

static const char T_TP[] = "Throughput, 1 producer x 1 consumer";

static void run(void)
{
	stream_table(T_TP, 1, 1, opt.sizes, opt.nsz, 0, 0, true);
}

static bool in_kernel(const struct row *r)
{
	return !strcmp(r->wait, "kernel");
}

static bool user_space(const struct row *r)
{
	return !in_kernel(r);
}

static bool lfipc_or_kernel(const struct row *r)
{
	return in_kernel(r) || !strcmp(r->sys, "lfipc queue") ||
	       !strcmp(r->sys, "lfipc pipe");
}

/*
 * Two charts, so that no chart has more lines than styles can tell apart:
 * the user-space systems (lfipc, rings, mutex+cond, the floor), and the
 * kernel ones next to lfipc queue and pipe.
 */
static void plot(struct plot *pl)
{
	FILE *g = plot_script(pl);
	static const char *const titles[2] = {"shared-memory queues and rings",
					      "kernel IPC against lfipc"};
	static const char *const png[2] = {"throughput.png",
					   "throughput-kernel.png"};
	static const char *const dat[2] = {"throughput.dat",
					   "throughput-kernel.dat"};
	bool (*const keep[2])(const struct row *) = {user_space,
						     lfipc_or_kernel};

	if (!has_rows(T_TP))
		return;
	for (int i = 0; i < 2; i++) {
		plot_output(pl, png[i]);
		fprintf(
		    g,
		    "set logscale xy 2\nset xlabel 'message size (bytes)'\n"
		    "set ylabel 'million messages / s (median)'\n"
		    "set title 'lfipc-bench: 1 producer x 1 consumer, %s'\n",
		    titles[i]);
		if (!plot_series(pl, T_TP, dat[i], keep[i]))
			fprintf(g, "plot 0 title 'no data'\n");
	}
}

const struct scenario scen_throughput = {
    .name = "throughput",
    .what = "1 producer x 1 consumer streaming, by message size",
    .run = run,
    .plot = plot,
};
