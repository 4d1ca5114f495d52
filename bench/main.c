/* SPDX-License-Identifier: MIT */
/*
 * lfipc-bench - compare lfipc with the IPC mechanisms people would otherwise
 * pick, side by side, in one run, on this machine. This file: the command
 * line, and running the selected scenarios. The method is in doc/bench.md.
 */
#include "config.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

struct bench_opt opt = {
    .reps = 5,
    .rtt_n = 100000,
    .tp_n = 200000,
    .lock_n = 200000,
    .hand_n = 20000,
    .death_n = 11,
    .pin = true,
    .corrupt = -1,
    .deadline = 5.0,
};

static const size_t sizes_def[] = {8, 64, 256, 4096};
static const size_t sizes_tiny[] = {64};
static const size_t sizes_quick[] = {8, 256};

/* Does the comma-separated list have name? */
static bool in_list(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; *p;) {
		size_t l = strcspn(p, ",");

		if (l == n && !strncmp(p, name, n))
			return true;
		p += l + (p[l] == ',');
	}
	return false;
}

static bool selected(const struct scenario *s)
{
	return !opt.only || in_list(opt.only, s->name) ||
	       (s->group && in_list(opt.only, s->group));
}

static void list_names(FILE *f)
{
	const char *last_group = NULL;

	for (int i = 0; i < bench_nscenarios; i++) {
		const struct scenario *s = bench_scenarios[i];

		fprintf(f, " %s", s->name);
		if (s->group && (!last_group || strcmp(last_group, s->group)))
			fprintf(f, " %s", s->group);
		last_group = s->group;
	}
	fputc('\n', f);
}

/* Every name in --only must be a scenario or a group: 0, or -1 (printed). */
static int check_only(const char *list)
{
	for (const char *p = list; *p || p == list;) {
		size_t l = strcspn(p, ",");
		bool ok = false;

		for (int i = 0; i < bench_nscenarios && l; i++) {
			const struct scenario *s = bench_scenarios[i];

			ok |= strlen(s->name) == l && !strncmp(p, s->name, l);
			ok |= s->group && strlen(s->group) == l &&
			      !strncmp(p, s->group, l);
		}
		if (!ok) {
			fprintf(stderr,
				"lfipc-bench: --only: unknown scenario "
				"'%.*s'; valid names:",
				(int)l, p);
			list_names(stderr);
			return -1;
		}
		p += l + (p[l] == ',');
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: lfipc-bench [--quick|--full|--tiny] [--reps N]\n"
		   "                   [--format table|csv|json] [--plot DIR]\n"
		   "                   [--pc PxC]...  queue P producers x C "
		   "consumers (default 1x1 2x2)\n"
		   "                   [--lock-procs N]...  contended lock "
		   "processes (default 2 4)\n"
		   "                   [--only NAME,...]  scenarios (default "
		   "all):\n");
	for (int i = 0; i < bench_nscenarios; i++)
		fprintf(f, "                       %-17s %s\n",
			bench_scenarios[i]->name, bench_scenarios[i]->what);
	fprintf(f,
		"                       (lock selects every lock-* "
		"scenario)\n"
		"                   [--peers TEXT,...]  only the systems whose "
		"name contains one of these\n"
		"                   [--deadline SEC]  limit of one streaming "
		"run (default 5, --quick 1)\n"
		"                   [--no-pin] [--corrupt-seq N] [--version]\n"
		"The method and how to read the tables: %s\n",
		BENCH_DOC);
}

static void version(void)
{
	printf("lfipc-bench %s\npeers:", PACKAGE_VERSION);
	for (int k = 0; k < bench_npeers; k++)
		printf("%s %s%s", k ? "," : "", bench_peers[k]->name,
		       bench_peers[k]->missing ? " (not built)" : "");
	printf("\n");
}

/* Parse a positive number (strtol, the whole argument): -1 when it is not. */
static long number(const char *s)
{
	char *e;
	long v = strtol(s, &e, 10);

	return *s && !*e && v >= 0 ? v : -1;
}

static void preset(const char *name)
{
	if (!strcmp(name, "quick")) {
		opt.reps = 3, opt.rtt_n = 6000, opt.tp_n = 20000;
		opt.lock_n = 20000, opt.hand_n = 1500, opt.death_n = 5;
		opt.deadline = 1.0, opt.sizes = sizes_quick, opt.nsz = 2;
		opt.quick = true, opt.tiny = false;
	} else if (!strcmp(name, "full")) {
		opt.reps = 7, opt.rtt_n = 1000000, opt.tp_n = 2000000;
		opt.lock_n = 2000000, opt.hand_n = 100000, opt.death_n = 31;
		opt.deadline = 20.0, opt.sizes = sizes_def, opt.nsz = 4;
		opt.quick = opt.tiny = false;
	} else { /* tiny */
		opt.reps = 2, opt.rtt_n = 400, opt.tp_n = 1000;
		opt.lock_n = 1000, opt.hand_n = 200, opt.death_n = 2;
		opt.deadline = 1.0, opt.sizes = sizes_tiny, opt.nsz = 1;
		opt.tiny = true, opt.quick = false;
	}
}

static int parse(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--quick") || !strcmp(a, "--full") ||
		    !strcmp(a, "--tiny")) {
			preset(a + 2);
		} else if (!strcmp(a, "--pc") && v) {
			int p, c;

			i++;
			if (sscanf(v, "%dx%d", &p, &c) != 2 || p < 1 || c < 1 ||
			    p > 32 || c > 32 || opt.npc >= 8)
				return -1;
			opt.pcs[opt.npc][0] = p;
			opt.pcs[opt.npc++][1] = c;
		} else if (!strcmp(a, "--lock-procs") && v) {
			long n = number(argv[++i]);

			if (n < 2 || n > MAXW || opt.nlp >= 8)
				return -1;
			opt.lprocs[opt.nlp++] = (int)n;
		} else if (!strcmp(a, "--no-pin")) {
			opt.pin = false;
		} else if (!strcmp(a, "--reps") && v) {
			opt.reps = (int)number(argv[++i]);
			if (opt.reps < 1 || opt.reps > 64)
				return -1;
		} else if (!strcmp(a, "--format") && v) {
			i++;
			if (!strcmp(v, "table"))
				opt.fmt = 0;
			else if (!strcmp(v, "csv"))
				opt.fmt = 1;
			else if (!strcmp(v, "json"))
				opt.fmt = 2;
			else
				return -1;
		} else if (!strcmp(a, "--plot") && v) {
			opt.plot = argv[++i];
		} else if (!strcmp(a, "--deadline") && v) {
			opt.deadline = atof(argv[++i]);
			if (opt.deadline < 0.01 || opt.deadline > 3600)
				return -1;
		} else if (!strcmp(a, "--only") && v) {
			opt.only = argv[++i];
			if (check_only(opt.only))
				return -2;
		} else if (!strcmp(a, "--peers") && v) {
			opt.peers = argv[++i];
		} else if (!strcmp(a, "--corrupt-seq") && v) {
			opt.corrupt = number(argv[++i]);
			if (opt.corrupt < 0)
				return -1;
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "--version")) {
			version();
			exit(0);
		} else {
			return -1;
		}
	}
	return 0;
}

static void on_fail_signal(int s)
{
	if (fail_armed) {
		fail_armed = 0;
		siglongjmp(fail_jb, s == SIGALRM ? 2 : 1);
	}
}

int main(int argc, char **argv)
{
	char laps[512] = "";
	uint64_t t_all, t_lap;
	struct sigaction sa;
	int rc;

	ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	opt.sizes = sizes_def;
	opt.nsz = 4;
	rc = parse(argc, argv);
	if (rc) {
		if (rc == -1)
			usage(stderr);
		return 2;
	}
	if (opt.npc == 0) {
		opt.pcs[0][0] = opt.pcs[0][1] = 1;
		opt.pcs[1][0] = opt.pcs[1][1] = 2;
		opt.npc = 2;
	}
	if (opt.nlp == 0) {
		opt.lprocs[0] = 2;
		opt.lprocs[1] = 4;
		opt.nlp = 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fail_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL); /* no SA_RESTART: interrupt the wait */
	sigaction(SIGALRM, &sa, NULL);
	if (opt.corrupt >= 0)
		bench_note("--corrupt-seq: one message per run is deliberately "
			   "damaged; every message table must show FAILED");

	sy = shmem(4096);
	print_header();
	fflush(stdout);
	t_all = t_lap = now_ns();
	for (int i = 0; i < bench_nscenarios; i++) {
		const struct scenario *s = bench_scenarios[i];
		size_t l = strlen(laps);
		uint64_t t;

		if (!selected(s))
			continue;
		s->run();
		t = now_ns();
		snprintf(laps + l, sizeof(laps) - l, "%s%s %.1f s",
			 l ? ", " : "", s->name, (double)(t - t_lap) / 1e9);
		t_lap = t;
	}
	if (isatty(2))
		fprintf(stderr, "\r\033[K");
	print_results();
	fflush(stdout);
	fprintf(stderr, "lfipc-bench: %.1f s (%s)\n",
		(double)(now_ns() - t_all) / 1e9, laps);
	if (opt.plot)
		plot_all(opt.plot, selected);
	for (int i = 0; i < nrows; i++)
		if (rows[i].failed)
			return 1;
	return 0;
}
