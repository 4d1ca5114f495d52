/* SPDX-License-Identifier: MIT */
/*
 * lfipc-bench --plot DIR: every selected scenario with a plot() hook writes
 * its data files and its part of DIR/plot.gp through the helpers below;
 * then gnuplot runs once (re-run by hand: cd DIR && gnuplot plot.gp).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

struct plot {
	const char *dir;
	FILE *gp;
	char pngs[512]; /* the charts, for the closing message */
};

static bool find_gnuplot(char *out, size_t n)
{
	const char *path = getenv("PATH");

	if (GNUPLOT_PATH[0] && access(GNUPLOT_PATH, X_OK) == 0) {
		snprintf(out, n, "%s", GNUPLOT_PATH);
		return true;
	}
	while (path && *path) {
		size_t l = strcspn(path, ":");

		snprintf(out, n, "%.*s/gnuplot", (int)l, path);
		if (l && access(out, X_OK) == 0)
			return true;
		path += l + (path[l] == ':');
	}
	return false;
}

bool has_rows(const char *table)
{
	for (int i = 0; i < nrows; i++)
		if (rows[i].table == table && !rows[i].failed)
			return true;
	return false;
}

FILE *plot_data(struct plot *pl, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", pl->dir, name);
	f = fopen(path, "w");
	if (!f)
		perror(path);
	return f;
}

FILE *plot_script(struct plot *pl)
{
	return pl->gp;
}

void plot_output(struct plot *pl, const char *png)
{
	size_t l = strlen(pl->pngs);

	fprintf(pl->gp, "set output '%s'\n", png);
	snprintf(pl->pngs + l, sizeof(pl->pngs) - l, " %s", png);
}

/* Series names for gnuplot: single quotes would end the string. */
static void gp_title(FILE *g, const char *s)
{
	fputc('\'', g);
	for (; *s; s++)
		fputc(*s == '\'' ? '`' : *s, g);
	fputc('\'', g);
}

/*
 * Sixteen colours that stay apart on white (the first eight also for the
 * common colour blindnesses, as far as eight can): a chart of up to 16
 * lines (the largest, user-space throughput, has 15) gives each its own
 * colour; past 16 the colours come round again with another dash
 * pattern, so 48 series pass before a colour and a dash repeat together.
 * Each series also has its own point type.
 */
#define NPAL 16
static const char *const palette[NPAL] = {
    "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9",
    "#000000", "#999933", "#882255", "#44aa99", "#aa4499", "#117733",
    "#6a3d9a", "#b15928", "#888888", "#ff1f5b"};

int plot_series(struct plot *pl, const char *table, const char *dat,
		bool (*keep)(const struct row *r))
{
	const char *done[64];
	int nd = 0;
	FILE *d = plot_data(pl, dat);

	if (!d)
		return 0;
	for (int i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		bool seen = false, lf = !strncmp(r->sys, "lfipc", 5);

		if (r->table != table || r->failed || (keep && !keep(r)))
			continue;
		for (int k = 0; k < nd; k++)
			seen |= !strcmp(done[k], r->sys);
		if (seen || nd >= 64)
			continue;
		done[nd] = r->sys;
		fprintf(d, "# %s\n", r->sys);
		for (int k = i; k < nrows; k++)
			if (rows[k].table == table && !rows[k].failed &&
			    !strcmp(rows[k].sys, r->sys))
				fprintf(d, "%ld %.6g\n", atol(rows[k].param),
					rows[k].v[0]);
		fprintf(d, "\n\n");
		fprintf(pl->gp,
			"%s'%s' index %d using 1:2 with linespoints "
			"lc rgb '%s' dt %d pt %d lw %s title ",
			nd ? ", \\\n     " : "plot ", dat, nd,
			palette[nd % NPAL], 1 + (nd / NPAL) % 3, 1 + nd % 13,
			lf	   ? "3"
			: r->floor ? "2"
				   : "1.5");
		gp_title(pl->gp, r->sys);
		nd++;
	}
	if (nd)
		fprintf(pl->gp, "\n");
	fclose(d);
	return nd;
}

void plot_all(const char *dir, bool (*selected)(const struct scenario *))
{
	struct plot pl = {.dir = dir};
	char gp[4096], path[4096];
	pid_t pid;
	int st;

	if (!find_gnuplot(gp, sizeof(gp))) {
		fprintf(stderr, "lfipc-bench: gnuplot not found; --plot "
				"skipped (apt-get install gnuplot-nox)\n");
		return;
	}
	if (mkdir(dir, 0777) && errno != EEXIST) {
		perror(dir);
		return;
	}
	snprintf(path, sizeof(path), "%s/plot.gp", dir);
	pl.gp = fopen(path, "w");
	if (!pl.gp) {
		perror(path);
		return;
	}
	fprintf(pl.gp, "# written by lfipc-bench; run: cd DIR && gnuplot "
		       "plot.gp\n"
		       "set terminal png noenhanced size 1100,650\n"
		       "set key outside right\n"
		       "set grid\n");
	for (int i = 0; i < bench_nscenarios; i++) {
		const struct scenario *s = bench_scenarios[i];

		if (s->plot && selected(s)) {
			s->plot(&pl);
			fprintf(pl.gp, "reset\nset key outside right\n"
				       "set grid\n");
		}
	}
	fclose(pl.gp);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		int log;

		if (chdir(dir))
			_exit(127);
		log = open("gnuplot.log", O_WRONLY | O_CREAT | O_TRUNC, 0666);
		if (log >= 0) {
			dup2(log, 1);
			dup2(log, 2);
		}
		execl(gp, "gnuplot", "plot.gp", (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0)
		fprintf(stderr,
			"lfipc-bench: gnuplot failed; see %s/plot.gp "
			"and gnuplot.log\n",
			dir);
	else
		fprintf(stderr, "lfipc-bench: wrote%s in %s\n", pl.pngs, dir);
}
