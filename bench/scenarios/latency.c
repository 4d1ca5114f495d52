/* SPDX-License-Identifier: MIT */
/*
 * latency: ping-pong round trips between two processes, percentiles, by
 * message size (pingpong_table in run.c).
 */
#include "config.h"

#include <string.h>

#include "../bench.h"

static const char T_PP[] = "Ping-pong round trip latency";

static void run(void)
{
	/* --quick: the smallest size only */
	pingpong_table(T_PP, opt.sizes, opt.quick ? 1 : opt.nsz, opt.rtt_n, 0);
}

/* p50/p90/p99/p99.9 of every system at the smallest size, log scale. */
static void plot(struct plot *pl)
{
	const char *p0 = NULL;
	FILE *d, *g = plot_script(pl);

	if (!has_rows(T_PP) || !(d = plot_data(pl, "latency.dat")))
		return;
	fprintf(d, "# system p50 p90 p99 p99.9 (ns)\n");
	for (int i = 0; i < nrows; i++) {
		if (rows[i].table != T_PP || rows[i].failed)
			continue;
		if (!p0)
			p0 = rows[i].param;
		if (strcmp(rows[i].param, p0))
			continue;
		fputc('"', d);
		for (const char *s = rows[i].sys; *s; s++)
			fputc(*s == '"' ? '\'' : *s, d);
		fprintf(d, "\" %.0f %.0f %.0f %.0f\n", rows[i].v[0],
			rows[i].v[1], rows[i].v[2], rows[i].v[3]);
	}
	fclose(d);
	plot_output(pl, "latency.png");
	fprintf(g,
		"set logscale y\nset style data histograms\n"
		"set style histogram clustered gap 1\n"
		"set style fill solid 0.8 border -1\n"
		"set boxwidth 0.9\nset xtics rotate by -35 scale 0\n"
		"set ylabel 'round trip, ns (log)'\n"
		"set title 'lfipc-bench: ping-pong round-trip percentiles "
		"(%s)'\n"
		"plot 'latency.dat' using 2:xtic(1) title 'p50', "
		"'' using 3 title 'p90', '' using 4 title 'p99', "
		"'' using 5 title 'p99.9'\n",
		p0 ? p0 : "");
}

const struct scenario scen_latency = {
    .name = "latency",
    .what = "ping-pong round trip percentiles, by message size",
    .run = run,
    .plot = plot,
};
