/* SPDX-License-Identifier: MIT */
/*
 * lfipc-bench results: rows, statistics over repetitions, the machine
 * facts and notes, and the three text formats (Markdown table, CSV, JSON).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "bench.h"

#if defined(__GNUC__) && !defined(__clang__)
#define COMPILER "gcc " __VERSION__
#else
#define COMPILER __VERSION__
#endif

#define MAXROWS 2048
struct row rows[MAXROWS];
int nrows;

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

void sort_samples(double *v, long n)
{
	qsort(v, (size_t)n, sizeof(*v), cmpd);
}

int run_trials(double (*trial)(int kind, unsigned seed), int kind, long n,
	       double *lat)
{
	for (long i = 0; i < n; i++) {
		lat[i] = trial(kind, (unsigned)(i * 7919 + 13));
		if (lat[i] < 0)
			return -1;
	}
	sort_samples(lat, n);
	return 0;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmpd);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static const char *pct_names[5] = {"p50", "p90", "p99", "p99.9", "max"};

struct row *newrow(const char *table, const char *sys, const char *wait,
		   const char *unit, const char *param)
{
	struct row *r;

	if (nrows >= MAXROWS) {
		fprintf(stderr, "lfipc-bench: too many result rows\n");
		exit(2);
	}
	r = &rows[nrows];
	memset(r, 0, sizeof(*r));
	r->order = nrows++;
	r->table = table;
	r->sys = sys;
	r->wait = wait;
	r->unit = unit;
	snprintf(r->param, sizeof(r->param), "%s", param);
	r->nv = 1;
	return r;
}

/* Fill a one-value row from rep samples (sorted here). */
void setrow(struct row *r, double *v, int rep)
{
	if (r->failed || rep < 1) {
		r->failed = true;
		return;
	}
	qsort(v, (size_t)rep, sizeof(double), cmpd);
	r->lo = v[0];
	r->hi = v[rep - 1];
	r->v[0] = median(v, rep);
}

/*
 * Percentiles over the pooled samples of all repetitions (n per rep, rep
 * reps, in all[]), the spread from each repetition's own p50 (p50s[]).
 */
void pool_row(struct row *r, double *all, long total, double *p50s, int rep)
{
	if (r->failed || rep < 1 || total < 1) {
		r->failed = true;
		return;
	}
	qsort(all, (size_t)total, sizeof(*all), cmpd);
	r->v[0] = all[total / 2];
	r->v[1] = all[total * 9 / 10];
	r->v[2] = all[total * 99 / 100];
	r->v[3] = all[total * 999 / 1000];
	r->v[4] = all[total - 1];
	qsort(p50s, (size_t)rep, sizeof(*p50s), cmpd);
	r->lo = p50s[0];
	r->hi = p50s[rep - 1];
}

void row_waited(struct row *r)
{
	double w = atomic_load(&sy->waited) / 1000.0;

	if (w > r->waited)
		r->waited = w;
}

void row_ran(struct row *r, double x)
{
	row_waited(r);
	if (getenv("LFIPC_BENCH_TRACE"))
		fprintf(stderr,
			"run: %s | %s | %s | %.3f %s | waited %.1f%% | "
			"sleeps %llu\n",
			r->table, r->sys, r->param, x, r->unit,
			atomic_load(&sy->waited) / 10.0,
			(unsigned long long)atomic_load(&sy->sleeps));
}

void repeat_rows(struct row **r, void **ctx, int n, int reps,
		 double (*fn)(void *ctx, bool *dl))
{
	double(*v)[64] = calloc((size_t)n, sizeof(*v));
	int *k = calloc((size_t)n, sizeof(int));
	bool *stop = calloc((size_t)n, sizeof(bool));

	if (!v || !k || !stop) {
		fprintf(stderr, "lfipc-bench: out of memory\n");
		exit(2);
	}
	if (reps <= 0 || reps > 64)
		reps = opt.reps;
	for (int rep = 0; rep < reps; rep++)
		for (int i = 0; i < n; i++) {
			bool dl = false;
			double x;

			if (stop[i])
				continue;
			progress(r[i]->table, r[i]->sys, r[i]->param);
			x = fn(ctx[i], &dl);
			row_ran(r[i], x);
			if (x < 0) {
				r[i]->failed = stop[i] = true;
				continue;
			}
			v[i][k[i]++] = x;
			if (dl) /* collapsed: one run is the figure */
				r[i]->deadline = stop[i] = true;
		}
	for (int i = 0; i < n; i++)
		setrow(r[i], v[i], k[i]);
	free(v);
	free(k);
	free(stop);
}

void repeat_pooled(struct row **r, void **ctx, int n, long per,
		   int (*fn)(void *ctx, double *lat))
{
	double **all = calloc((size_t)n, sizeof(*all));
	double(*p50s)[64] = calloc((size_t)n, sizeof(*p50s));
	int *k = calloc((size_t)n, sizeof(int));

	if (!all || !p50s || !k) {
		fprintf(stderr, "lfipc-bench: out of memory\n");
		exit(2);
	}
	for (int i = 0; i < n; i++) {
		all[i] = malloc(sizeof(double) * (size_t)(per * opt.reps));
		r[i]->failed |= !all[i];
	}
	for (int rep = 0; rep < opt.reps; rep++)
		for (int i = 0; i < n; i++) {
			double *lat;

			if (r[i]->failed)
				continue;
			lat = all[i] + per * k[i];
			progress(r[i]->table, r[i]->sys, r[i]->param);
			if (fn(ctx[i], lat)) {
				r[i]->failed = true;
				continue;
			}
			row_ran(r[i], lat[per / 2]);
			p50s[i][k[i]++] = lat[per / 2];
		}
	for (int i = 0; i < n; i++) {
		pool_row(r[i], all[i], per * k[i], p50s[i], k[i]);
		free(all[i]);
	}
	free(all);
	free(p50s);
	free(k);
}

int peer_rows(struct row **r, void **ctx, const char *table, const char *unit,
	      const char *param, unsigned all, unsigned none)
{
	int n = 0;

	for (int k = 0; k < bench_npeers && n < MAXPEERS; k++) {
		const struct peer *p = bench_peers[k];

		if (!peer_is(p, all, none))
			continue;
		r[n] = newrow(table, p->name, p->wait, unit, param);
		r[n]->floor = p->flags & PF_FLOOR;
		ctx[n++] = (void *)(uintptr_t)p;
	}
	return n;
}

void repeat(struct row *r, int reps, double (*fn)(void *ctx, bool *dl),
	    void *ctx)
{
	repeat_rows(&r, &ctx, 1, reps, fn);
}

/* ---- header -------------------------------------------------------------- */

static const char *notes[64];
static int nnotes;

void bench_note(const char *s)
{
	for (int i = 0; i < nnotes; i++)
		if (!strcmp(notes[i], s))
			return;
	if (nnotes < 64)
		notes[nnotes++] = s;
}

static struct {
	char cpu[256], kernel[300], pinning[64];
} mach;

static void machine(void)
{
	char line[512];
	struct utsname u;
	FILE *f = fopen("/proc/cpuinfo", "r");

	snprintf(mach.cpu, sizeof(mach.cpu), "unknown");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "model name", 10)) {
			char *p = strchr(line, ':');

			if (p) {
				snprintf(mach.cpu, sizeof(mach.cpu), "%s",
					 p + 2);
				mach.cpu[strcspn(mach.cpu, "\n")] = 0;
			}
			break;
		}
	if (f)
		fclose(f);
	uname(&u);
	snprintf(mach.kernel, sizeof(mach.kernel), "%s %s", u.sysname,
		 u.release);
	snprintf(mach.pinning, sizeof(mach.pinning), "%s",
		 opt.pin && ncpu >= 2 ? "parent CPU0, workers CPU1.. mod cores"
				      : "none");
}

/* A CSV field, quoted (RFC 4180) when it holds a comma, quote or newline. */
static void csv_field(const char *s, bool last)
{
	if (strpbrk(s, ",\"\r\n")) {
		putchar('"');
		for (; *s; s++) {
			if (*s == '"')
				putchar('"');
			putchar(*s);
		}
		putchar('"');
	} else {
		fputs(s, stdout);
	}
	putchar(last ? '\n' : ',');
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

/* CSV comment lines carry no commas, so naive splitters stay consistent. */
static void csv_comment(const char *key, const char *val)
{
	printf("# %s: ", key);
	for (; *val; val++)
		putchar(*val == ',' ? ';' : *val);
	putchar('\n');
}

void print_header(void)
{
	char reps[32];

	machine();
	for (int k = 0; k < bench_npeers; k++) {
		const struct peer *p = bench_peers[k];

		if (p->missing)
			bench_note(p->missing);
		else if (p->note)
			bench_note(p->note);
	}

	snprintf(reps, sizeof(reps), "%d", opt.reps);
	if (opt.fmt == 2) {
		printf("{\"tool\":\"lfipc-bench %s\",\"machine\":{\"cpu\":",
		       PACKAGE_VERSION);
		json_str(mach.cpu);
		printf(",\"cores\":%d,\"kernel\":", ncpu);
		json_str(mach.kernel);
		printf(",\"compiler\":");
		json_str(COMPILER);
		printf(",\"pinning\":");
		json_str(mach.pinning);
		printf(",\"repetitions\":%d},\n\"notes\":[", opt.reps);
		for (int i = 0; i < nnotes; i++) {
			printf("%s\n ", i ? "," : "");
			json_str(notes[i]);
		}
		printf("],\n\"results\":[");
		return;
	}
	if (opt.fmt == 1) {
		char cores[16];

		snprintf(cores, sizeof(cores), "%d", ncpu);
		csv_comment("lfipc-bench", PACKAGE_VERSION);
		csv_comment("cpu", mach.cpu);
		csv_comment("cores", cores);
		csv_comment("kernel", mach.kernel);
		csv_comment("compiler", COMPILER);
		csv_comment("pinning", mach.pinning);
		csv_comment("repetitions", reps);
		for (int i = 0; i < nnotes; i++)
			csv_comment("note", notes[i]);
		printf("table,system,wait,param,metric,unit,value,min,max,"
		       "vs_lfipc,status\n");
		return;
	}
	printf("lfipc-bench %s\n", PACKAGE_VERSION);
	printf("CPU: %s; %d cores; kernel %s; compiler %s\n", mach.cpu, ncpu,
	       mach.kernel, COMPILER);
	printf("pinning: %s; repetitions: %d (median, spread min..max of the "
	       "first figure); every message sequence-checked\n",
	       mach.pinning, opt.reps);
	for (int i = 0; i < nnotes; i++)
		printf("note: %s\n", notes[i]);
}

static const struct row *lfipc_ref(const struct row *r)
{
	for (int i = 0; i < nrows; i++)
		if (rows[i].table == r->table &&
		    !strcmp(rows[i].param, r->param) &&
		    !strncmp(rows[i].sys, "lfipc", 5))
			return rows[i].failed ? NULL : &rows[i];
	return NULL;
}

static int decimals(const char *unit)
{
	return unit[0] == 'M' ? 3 : unit[0] == 'u' ? 1 : 0;
}

static int cmprow(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	if (x->tord != y->tord)
		return x->tord - y->tord;
	if (x->pord != y->pord)
		return x->pord - y->pord;
	return x->order - y->order;
}

/* Group rows by table (first appearance), then parameter, stably. */
static void sort_rows(void)
{
	for (int i = 0; i < nrows; i++) {
		rows[i].tord = rows[i].pord = i;
		for (int k = 0; k < i; k++)
			if (rows[k].table == rows[i].table) {
				rows[i].tord = rows[k].tord;
				break;
			}
		for (int k = 0; k < i; k++)
			if (rows[k].table == rows[i].table &&
			    !strcmp(rows[k].param, rows[i].param)) {
				rows[i].pord = rows[k].pord;
				break;
			}
	}
	qsort(rows, (size_t)nrows, sizeof(rows[0]), cmprow);
}

/* A worker waited for a CPU over this share of a run: LOADED. */
#define LOADED 0.10

static const char *status(const struct row *r, bool wide)
{
	return r->deadline	     ? "deadline"
	       : r->waited >= LOADED ? "ok-loaded"
	       : wide		     ? "ok-wide"
				     : "ok";
}

void print_results(void)
{
	const char *last = NULL;
	bool first = true, anywide = false, anydl = false, anyload = false;

	sort_rows();

	for (int i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		const struct row *ref = lfipc_ref(r);
		bool wide = !r->failed && r->lo > 0 && r->hi / r->lo > 1.5;
		int dp = decimals(r->unit);
		char ratio[32] = "-", rnum[32] = "", num[3][32];

		if (ref && !r->failed && ref->v[0] > 0 &&
		    strcmp(r->wait, "-")) {
			snprintf(ratio, sizeof(ratio), "%.2fx",
				 r->v[0] / ref->v[0]);
			snprintf(rnum, sizeof(rnum), "%.4f",
				 r->v[0] / ref->v[0]);
		}
		anywide |= wide;
		if (opt.fmt == 1) {
			for (int x = 0; x < r->nv; x++) {
				csv_field(r->table, false);
				csv_field(r->sys, false);
				csv_field(r->wait, false);
				csv_field(r->param, false);
				csv_field(r->nv == 5 ? pct_names[x] : "median",
					  false);
				csv_field(r->unit, false);
				if (r->failed) {
					printf("FAILED,,,,FAILED\n");
					continue;
				}
				snprintf(num[0], 32, "%.3f", r->v[x]);
				snprintf(num[1], 32, "%.3f", r->lo);
				snprintf(num[2], 32, "%.3f", r->hi);
				csv_field(num[0], false);
				csv_field(x ? "" : num[1], false);
				csv_field(x ? "" : num[2], false);
				csv_field(x ? "" : rnum, false);
				csv_field(status(r, wide), true);
			}
			continue;
		}
		if (opt.fmt == 2) {
			printf("%s\n {\"table\":", first ? "" : ",");
			json_str(r->table);
			printf(",\"system\":");
			json_str(r->sys);
			printf(",\"wait\":");
			json_str(r->wait);
			printf(",\"param\":");
			json_str(r->param);
			printf(",\"unit\":");
			json_str(r->unit);
			printf(",\"metrics\":[");
			for (int x = 0; x < r->nv; x++)
				printf("%s\"%s\"", x ? "," : "",
				       r->nv == 5 ? pct_names[x] : "median");
			if (r->failed) {
				printf("],\"status\":\"FAILED\",\"median\":"
				       "\"FAILED\"}");
			} else {
				printf("],\"status\":\"%s\",\"min\":%.3f,"
				       "\"max\":%.3f,\"vs_lfipc\":%s,"
				       "\"waited\":%.3f,\"median\":[",
				       status(r, wide), r->lo, r->hi,
				       rnum[0] ? rnum : "null", r->waited);
				for (int x = 0; x < r->nv; x++)
					printf("%s%.3f", x ? "," : "", r->v[x]);
				printf("]}");
			}
			first = false;
			continue;
		}
		if (r->table != last) {
			last = r->table;
			printf("\n## %s (%s, %s)\n\n", r->table, r->unit,
			       r->lower_better ? "lower is better"
					       : "higher is better");
			if (r->nv == 5)
				printf("| param | system | wait | p50 | p90 | "
				       "p99 | p99.9 | max | p50 min..max | "
				       "p50 / lfipc |\n|---|---|---|---:|---:|"
				       "---:|---:|---:|---|---:|\n");
			else
				printf("| param | system | wait | median | "
				       "min..max | / lfipc |\n"
				       "|---|---|---|---:|---|---:|\n");
		}
		printf("| %s | %s | %s |", r->param, r->sys, r->wait);
		if (r->failed) {
			for (int x = 0; x < r->nv; x++)
				printf(" FAILED |");
			printf(" - | - |\n");
			continue;
		}
		for (int x = 0; x < r->nv; x++)
			printf(" %.*f |", dp, r->v[x]);
		printf(" %.*f..%.*f%s%s", dp, r->lo, dp, r->hi,
		       wide ? " WIDE" : "", r->deadline ? " DEADLINE" : "");
		if (r->waited >= LOADED)
			printf(" LOADED %.0f%%", r->waited * 100);
		printf(" | %s |\n", ratio);
		anydl |= r->deadline;
		anyload |= r->waited >= LOADED;
	}
	if (opt.fmt == 2)
		printf("\n]}\n");
	if (opt.fmt == 0) {
		printf("\n/ lfipc: this row's (p50 or median) figure divided "
		       "by the first lfipc row of the same table and param.\n");
		if (anywide)
			printf("WIDE: max/min over repetitions > 1.5; the "
			       "machine was noisy, rerun.\n");
		if (anyload)
			printf(
			    "LOADED: in some run of this row a worker waited "
			    "for a CPU (runnable, not running) over %.0f%% of "
			    "the measured time: other load on the machine. "
			    "Busy-polling rows then measure the scheduler; "
			    "rerun on an idle machine.\n",
			    LOADED * 100);
		if (anydl)
			printf("DEADLINE: the run was still going after %g s "
			       "(it collapsed); the figure is what was "
			       "delivered, sequence-checked, by then; that "
			       "system's repetitions stopped there.\n",
			       opt.deadline);
	}
}
