/* SPDX-License-Identifier: MIT */
/*
 * pipe_bench - lfipc Pipe against pipe(2) and an AF_UNIX SOCK_SEQPACKET
 * socketpair between two processes (round-trip latency and one-way
 * throughput, 8 and 256-byte messages), and Value fetch_add against a
 * Lock-protected add.
 *
 * usage: pipe_bench [-m cross|same|free] [-n ITERS] [-t MSGS] [-r RUNS]
 *   -m  cross: parent on CPU 0, child on CPU 1 (default); same: both on
 *       CPU 0; free: unpinned
 *   -n  round trips per run (default 50000)
 *   -t  messages per throughput run (default 1000000)
 *   -r  runs per figure (default 3); the median run is printed with the
 *       spread (min..max) of its main figure over the runs
 *
 * Prints markdown tables. Never part of make check.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lfipc/pipe.h>
#include <lfipc/region.h>
#include <lfipc/sync.h>
#include <lfipc/value.h>

enum chan { CH_LFIPC, CH_PIPE, CH_SEQPACKET, CH_N };
static const char *chan_name[CH_N] = {"lfipc Pipe (duplex, 64 KiB ring)",
				      "pipe(2) write/read",
				      "AF_UNIX SOCK_SEQPACKET socketpair"};

static int mode_cpu_parent = 0, mode_cpu_child = 1; /* -1: unpinned */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void pin(int cpu)
{
	cpu_set_t s;

	if (cpu < 0)
		return;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	sched_setaffinity(0, sizeof(s), &s);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void die(const char *what, int err)
{
	fprintf(stderr, "pipe_bench: %s: %s\n", what, strerror(err));
	exit(1);
}

/* One channel: both directions, ends for "a" (parent) and "b" (child). */
struct chan_ends {
	enum chan kind;
	lfipc_region *r;
	lfipc_conn *la, *lb;
	int fa_r, fa_w, fb_r, fb_w; /* fds: a reads fa_r writes fa_w, ... */
};

static void chan_open(struct chan_ends *c, enum chan kind)
{
	int p1[2], p2[2], sv[2], rc;

	memset(c, 0, sizeof(*c));
	c->kind = kind;
	switch (kind) {
	case CH_LFIPC:
		rc = lfipc_region_create(NULL, 4 << 20, 0, &c->r);
		if (rc == 0)
			rc = lfipc_pipe_create(c->r, "bench", 64 * 1024, true,
					       &c->la, &c->lb);
		if (rc < 0)
			die("lfipc", -rc);
		break;
	case CH_PIPE:
		if (pipe(p1) || pipe(p2))
			die("pipe", errno);
		c->fa_r = p1[0], c->fb_w = p1[1];
		c->fb_r = p2[0], c->fa_w = p2[1];
		break;
	default:
		if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv))
			die("socketpair", errno);
		c->fa_r = c->fa_w = sv[0];
		c->fb_r = c->fb_w = sv[1];
		break;
	}
}

static void chan_close(struct chan_ends *c)
{
	if (c->kind == CH_LFIPC) {
		lfipc_conn_close(c->la);
		lfipc_conn_close(c->lb);
		lfipc_region_close(c->r);
		return;
	}
	close(c->fa_r);
	close(c->fb_r);
	if (c->kind == CH_PIPE) {
		close(c->fa_w);
		close(c->fb_w);
	}
}

/* Send / receive one message of n bytes as side b (child) or a. */
static void xsend(struct chan_ends *c, bool a, const void *m, size_t n)
{
	if (c->kind == CH_LFIPC) {
		int rc =
		    lfipc_conn_send(a ? c->la : c->lb, m, n, LFIPC_FOREVER);
		if (rc)
			die("lfipc send", -rc);
	} else if (write(a ? c->fa_w : c->fb_w, m, n) != (ssize_t)n) {
		die("write", errno);
	}
}

static void xrecv(struct chan_ends *c, bool a, void *m, size_t n)
{
	if (c->kind == CH_LFIPC) {
		size_t len;
		int rc = lfipc_conn_recv(a ? c->la : c->lb, m, n, &len,
					 LFIPC_FOREVER);
		if (rc || len != n)
			die("lfipc recv", rc ? -rc : EPROTO);
		return;
	}
	/* pipe(2) is a byte stream: read until the message is complete. */
	for (size_t got = 0; got < n;) {
		ssize_t k =
		    read(a ? c->fa_r : c->fb_r, (char *)m + got, n - got);

		if (k <= 0)
			die("read", k ? errno : EPIPE);
		got += (size_t)k;
	}
}

static void child_setup(struct chan_ends *c)
{
	pin(mode_cpu_child);
	if (c->kind == CH_LFIPC) {
		lfipc_conn_close(c->la);
		c->la = NULL;
	}
}

/* Round trips: returns sorted per-iteration latencies in lat[]. */
static void run_rtt(enum chan kind, size_t n, int iters, int64_t *lat)
{
	struct chan_ends c;
	char buf[256] = {0};
	pid_t pid;
	int st;

	chan_open(&c, kind);
	pid = fork();
	if (pid == 0) {
		child_setup(&c);
		for (int i = 0; i < iters + 1000; i++) {
			xrecv(&c, false, buf, n);
			xsend(&c, false, buf, n);
		}
		_exit(0);
	}
	if (kind == CH_LFIPC) {
		lfipc_conn_close(c.lb);
		c.lb = NULL;
	}
	for (int i = 0; i < 1000; i++) { /* warm up */
		xsend(&c, true, buf, n);
		xrecv(&c, true, buf, n);
	}
	for (int i = 0; i < iters; i++) {
		int64_t t0 = now_ns();

		xsend(&c, true, buf, n);
		xrecv(&c, true, buf, n);
		lat[i] = now_ns() - t0;
	}
	waitpid(pid, &st, 0);
	chan_close(&c);
	qsort(lat, (size_t)iters, sizeof(*lat), cmp_i64);
}

/* One-way throughput from child (b) to parent (a): messages per second. */
static double run_tput(enum chan kind, size_t n, int msgs)
{
	struct chan_ends c;
	char buf[256] = {0};
	int64_t t0;
	pid_t pid;
	int st;

	chan_open(&c, kind);
	pid = fork();
	if (pid == 0) {
		child_setup(&c);
		xrecv(&c, false, buf, 1); /* start signal */
		for (int i = 0; i < msgs; i++)
			xsend(&c, false, buf, n);
		_exit(0);
	}
	if (kind == CH_LFIPC) {
		lfipc_conn_close(c.lb);
		c.lb = NULL;
	}
	t0 = now_ns();
	xsend(&c, true, buf, 1);
	for (int i = 0; i < msgs; i++)
		xrecv(&c, true, buf, n);
	t0 = now_ns() - t0;
	waitpid(pid, &st, 0);
	chan_close(&c);
	return msgs / (t0 / 1e9);
}

static int64_t pct(const int64_t *s, int n, double p)
{
	int i = (int)(p * (n - 1));

	return s[i];
}

static void bench_rtt(int iters, int runs)
{
	const size_t sizes[] = {8, 256};
	int64_t *lat = malloc(sizeof(*lat) * (size_t)iters);

	printf("\n### Round trip (ping-pong), ns\n\n");
	printf("| channel | payload B | N | p50 | p99 | p999 | min | spread "
	       "p50 |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
	for (int k = 0; k < CH_N; k++) {
		for (int s = 0; s < 2; s++) {
			int64_t p50[16], row[16][4];
			int med;

			for (int r = 0; r < runs; r++) {
				run_rtt((enum chan)k, sizes[s], iters, lat);
				p50[r] = row[r][0] = pct(lat, iters, 0.5);
				row[r][1] = pct(lat, iters, 0.99);
				row[r][2] = pct(lat, iters, 0.999);
				row[r][3] = lat[0];
			}
			/* the run whose p50 is the median */
			int64_t sorted[16];

			memcpy(sorted, p50, sizeof(int64_t) * (size_t)runs);
			qsort(sorted, (size_t)runs, sizeof(int64_t), cmp_i64);
			for (med = 0; med < runs; med++)
				if (p50[med] == sorted[runs / 2])
					break;
			printf("| %s | %zu | %d | %lld | %lld | %lld | %lld | "
			       "%lld..%lld |\n",
			       chan_name[k], sizes[s], iters,
			       (long long)row[med][0], (long long)row[med][1],
			       (long long)row[med][2], (long long)row[med][3],
			       (long long)sorted[0],
			       (long long)sorted[runs - 1]);
			fflush(stdout);
		}
	}
	free(lat);
}

static void bench_tput(int msgs, int runs)
{
	const size_t sizes[] = {8, 256};

	printf("\n### One-way throughput, messages/s\n\n");
	printf("| channel | payload B | N | msgs/s (median) | MB/s | spread "
	       "|\n|---|---:|---:|---:|---:|---:|\n");
	for (int k = 0; k < CH_N; k++) {
		for (int s = 0; s < 2; s++) {
			double v[16];

			for (int r = 0; r < runs; r++)
				v[r] = run_tput((enum chan)k, sizes[s], msgs);
			qsort(v, (size_t)runs, sizeof(double), cmp_dbl);
			printf("| %s | %zu | %d | %.0f | %.1f | %.0f..%.0f |\n",
			       chan_name[k], sizes[s], msgs, v[runs / 2],
			       v[runs / 2] * (double)sizes[s] / 1e6, v[0],
			       v[runs - 1]);
			fflush(stdout);
		}
	}
}

/* ---- Value fetch_add against a Lock-protected add --------------------- */

static double value_loop(lfipc_array *a, bool locked, int n)
{
	int64_t *d = lfipc_array_data(a);
	lfipc_lock *l = lfipc_array_lock(a);
	int64_t t0 = now_ns();

	for (int i = 0; i < n; i++) {
		if (locked) {
			if (lfipc_lock_acquire(l, LFIPC_FOREVER) != 0)
				die("lock", EPROTO);
			d[1] += 1;
			lfipc_lock_release(l);
		} else {
			lfipc_array_fetch_add(a, 0, 1, NULL);
		}
	}
	return (double)(now_ns() - t0) / n;
}

/* ns per add with procs processes adding at once (median of runs). */
static double value_run(bool locked, int procs, int n, int runs)
{
	double v[16];

	for (int r = 0; r < runs; r++) {
		lfipc_region *reg;
		lfipc_array *a;
		int64_t t0, total;
		pid_t pids[2];
		int st;

		if (lfipc_region_create(NULL, 1 << 20, 0, &reg) ||
		    lfipc_array_create(reg, "v", LFIPC_I64, 2, true, &a))
			die("value create", EPROTO);
		t0 = now_ns();
		for (int p = 0; p < procs; p++) {
			pids[p] = fork();
			if (pids[p] == 0) {
				pin(p == 0 ? mode_cpu_parent : mode_cpu_child);
				value_loop(a, locked, n);
				_exit(0);
			}
		}
		for (int p = 0; p < procs; p++)
			waitpid(pids[p], &st, 0);
		total = now_ns() - t0;
		lfipc_array_load(a, locked ? 1 : 0, &t0);
		if (locked)
			t0 = ((int64_t *)lfipc_array_data(a))[1];
		if (t0 != (int64_t)procs * n)
			die("value total", EPROTO);
		v[r] = (double)total / ((double)procs * n);
		lfipc_array_close(a);
		lfipc_region_close(reg);
	}
	qsort(v, (size_t)runs, sizeof(double), cmp_dbl);
	return v[runs / 2];
}

static void bench_value(int runs)
{
	int n = 5000000;

	printf("\n### Value: ns per add (wall time / total adds, including "
	       "fork)\n\n| operation | processes | adds each | ns/add "
	       "(median) |\n|---|---:|---:|---:|\n");
	for (int procs = 1; procs <= 2; procs++) {
		printf("| lfipc_array_fetch_add | %d | %d | %.1f |\n", procs, n,
		       value_run(false, procs, n, runs));
		printf("| lfipc_lock_acquire + add + release | %d | %d | "
		       "%.1f |\n",
		       procs, n, value_run(true, procs, n, runs));
		fflush(stdout);
	}
}

int main(int argc, char **argv)
{
	int iters = 50000, msgs = 1000000, runs = 3, opt;
	const char *mode = "cross";

	while ((opt = getopt(argc, argv, "m:n:t:r:")) != -1) {
		switch (opt) {
		case 'm':
			mode = optarg;
			break;
		case 'n':
			iters = atoi(optarg);
			break;
		case 't':
			msgs = atoi(optarg);
			break;
		case 'r':
			runs = atoi(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: %s [-m cross|same|free] [-n "
				"ITERS] [-t MSGS] [-r RUNS]\n",
				argv[0]);
			return 2;
		}
	}
	if (runs < 1 || runs > 16 || iters < 1 || msgs < 1)
		return 2;
	if (!strcmp(mode, "same"))
		mode_cpu_child = 0;
	else if (!strcmp(mode, "free"))
		mode_cpu_parent = mode_cpu_child = -1;
	pin(mode_cpu_parent);
	printf("pipe_bench: mode %s, %d runs per figure\n", mode, runs);
	bench_rtt(iters, runs);
	bench_tput(msgs, runs);
	bench_value(runs);
	return 0;
}
