/* SPDX-License-Identifier: MIT */
/*
 * clear: lfipc_queue_clear() with 10, 1,000 and 1,000,000 messages queued
 * (8 B), the first put+get after it (which must return the new message),
 * and beside them the cold-miss floor: in a MAP_SHARED buffer the size of
 * that queue's ring (one 64-byte slot per position, a power of two of
 * them, as lfipc lays out 8-byte messages), written line by line from the
 * start as the puts wrote the ring, the time to read its first line again,
 * timed exactly as clear is (one call between two clock reads). That line
 * is where the oldest message was: clear and the next put+get must touch
 * such lines, and when the buffer is larger than the caches and the TLB's
 * reach, each costs a cache miss and a TLB miss (a page walk, nested under
 * a hypervisor). So a clear that costs more with a longer queue is paying
 * cold misses, not work per message.
 *
 * huge: the same clear of a 1,000,000-message queue and the 1x1 stream
 * (8 B) through a ring of 1,048,576 slots, each in a region of ordinary
 * pages and in one of huge pages (LFIPC_REGION_HUGE), the cold line too
 * in a buffer of each kind (MAP_HUGETLB), interleaved repetitions. It
 * needs about 100 huge pages of 2 MiB reserved (echo 100 >
 * /proc/sys/vm/nr_hugepages as root); without them only the ordinary
 * rows run, and a note says why.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "../bench.h"

static const char T_CL[] = "Queue clear";

static size_t ring_bytes(long L)
{
	size_t n = 1;

	while (n < (size_t)L + 1)
		n <<= 1;
	return n * 64;
}

/* A buffer of n bytes of huge pages (n rounded up), or NULL. */
static void *huge_buf(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static const char HUGE_MISSING[] =
    "huge: no huge pages to be had (-ENOMEM/-EOPNOTSUPP), huge-page rows "
    "left out; reserve them as root: echo 100 > /proc/sys/vm/nr_hugepages";

/* One repetition: clear, first put+get, cold line (ns), in a region made
 * with rflags; false on failure. */
static bool clear_once(long L, unsigned rflags, double *tc, double *tf,
		       double *tz)
{
	lfipc_region *reg;
	lfipc_queue *q;
	uint64_t t0, t1, t2;
	int64_t got;
	size_t len, bsz = ring_bytes(L);
	char m[64];
	volatile char *b;
	bool ok = true;

	if (lfipc_region_create_ex(NULL, (size_t)L * 128 + (8 << 20), 0,
				   rflags, &reg))
		return false;
	if (lfipc_queue_create(reg, "c", (size_t)L + 1, 8, 0, &q)) {
		lfipc_region_close(reg);
		return false;
	}
	for (long i = 0; i < L && ok; i++) {
		fill(m, 8, (uint64_t)i);
		ok = lfipc_queue_put(q, m, 8, LFIPC_NOWAIT) == 0;
	}
	fill(m, 8, 424242);
	t0 = now_ns();
	got = lfipc_queue_clear(q);
	t1 = now_ns();
	ok = ok && got == L && lfipc_queue_put(q, m, 8, LFIPC_NOWAIT) == 0 &&
	     lfipc_queue_get(q, m, sizeof(m), &len, LFIPC_NOWAIT) == 0 &&
	     len == 8 && check(m, 8, 424242);
	t2 = now_ns();
	lfipc_queue_close(q);
	lfipc_region_close(reg);
	*tc = (double)(t1 - t0);
	*tf = (double)(t2 - t1);

	if (rflags & LFIPC_REGION_HUGE) {
		bsz = (bsz + (2 << 20) - 1) & ~(size_t)((2 << 20) - 1);
		b = huge_buf(bsz);
		if (!b)
			return false;
	} else {
		b = shmem(bsz);
	}
	for (size_t i = 0; i < bsz; i += 64)
		b[i] = (char)i;
	t0 = now_ns();
	(void)b[0];
	t1 = now_ns();
	munmap((void *)(uintptr_t)b, bsz);
	*tz = (double)(t1 - t0);
	return ok;
}

static void run(void)
{
	static const long lens[3] = {10, 1000, 1000000};
	static const long lens_tiny[3] = {10, 100, 1000};

	for (int li = 0; li < 3; li++) {
		long L = opt.tiny ? lens_tiny[li] : lens[li];
		double vc[64], vf[64], vz[64];
		struct row *rc, *rf, *rz;
		char param[32];
		int rep;

		snprintf(param, sizeof(param), "%ld queued", L);
		progress("clear", "lfipc queue", param);
		rc = newrow(T_CL, "lfipc_queue_clear", "-", "ns", param);
		rf =
		    newrow(T_CL, "first put+get after clear", "-", "ns", param);
		rz = newrow(T_CL, "cold cache line (floor)", "-", "ns", param);
		rc->lower_better = rf->lower_better = rz->lower_better = true;
		rz->floor = true;
		for (rep = -1; rep < opt.reps; rep++) { /* -1: warm-up */
			double c, f, z;

			if (!clear_once(L, 0, &c, &f, &z)) {
				rc->failed = rf->failed = rz->failed = true;
				break;
			}
			if (rep >= 0)
				vc[rep] = c, vf[rep] = f, vz[rep] = z;
		}
		setrow(rc, vc, rep);
		setrow(rf, vf, rep);
		setrow(rz, vz, rep);
	}
}

static void plot(struct plot *pl)
{
	FILE *g = plot_script(pl);

	if (!has_rows(T_CL))
		return;
	plot_output(pl, "clear.png");
	fprintf(g, "set logscale xy 10\nset xlabel 'messages queued'\n"
		   "set ylabel 'ns (median)'\n"
		   "set title 'lfipc-bench: lfipc_queue_clear by queue length, "
		   "beside one cold cache line in a buffer of the ring''s "
		   "size'\n");
	plot_series(pl, T_CL, "clear.dat", NULL);
}

const struct scenario scen_clear = {
    .name = "clear",
    .what = "lfipc_queue_clear by queue length, beside the cold-miss floor",
    .run = run,
    .plot = plot,
};

/* ---- huge: the 1M queue with and without huge pages ------------------- */

static const char T_HG[] = "Huge pages: clear of a 1M-message queue";
static const char T_HS[] = "Huge pages: 1x1 stream through a 1M-slot queue";
#define BIG_CAP ((size_t)1 << 20)

struct big {
	lfipc_region *r;
	lfipc_queue *q[2];
};

static void big_close(void *ch)
{
	struct big *c = ch;

	lfipc_queue_close(c->q[0]);
	lfipc_queue_close(c->q[1]);
	lfipc_region_close(c->r);
	free(c);
}

/* Direction 0 (the stream's) has BIG_CAP slots, direction 1 a few. */
static void *big_open(size_t msz, unsigned rflags)
{
	struct big *c = calloc(1, sizeof(*c));
	size_t cap = opt.tiny ? 1024 : BIG_CAP;

	if (!c)
		return NULL;
	if (lfipc_region_create_ex(NULL, cap * 128 + (8 << 20), 0, rflags,
				   &c->r)) {
		free(c);
		return NULL;
	}
	if (lfipc_queue_create(c->r, "q0", cap, msz, 0, &c->q[0]) ||
	    lfipc_queue_create(c->r, "q1", 64, msz, 0, &c->q[1])) {
		big_close(c);
		return NULL;
	}
	return c;
}

static void *big_open_4k(size_t msz)
{
	return big_open(msz, 0);
}

static void *big_open_huge(size_t msz)
{
	return big_open(msz, LFIPC_REGION_HUGE);
}

static int big_send(void *ch, int d, const void *m, size_t n)
{
	struct big *c = ch;

	return lfipc_queue_put(c->q[d], m, n, LFIPC_FOREVER) ? -1 : 0;
}

static int big_recv(void *ch, int d, void *m, size_t n)
{
	struct big *c = ch;
	size_t len = 0;

	if (lfipc_queue_get(c->q[d], m, n, &len, LFIPC_FOREVER))
		return -1;
	return len == n ? 0 : -1;
}

/* Not registered (static): only this scenario runs them. */
static const struct peer big_4k = {
    .name = "1x1 stream 8 B, 4 KiB pages",
    .wait = "spin+futex",
    .flags = PF_CHAN | PF_MPMC,
    .open = big_open_4k,
    .send = big_send,
    .recv = big_recv,
    .close = big_close,
};
static const struct peer big_huge = {
    .name = "1x1 stream 8 B, huge pages",
    .wait = "spin+futex",
    .flags = PF_CHAN | PF_MPMC,
    .open = big_open_huge,
    .send = big_send,
    .recv = big_recv,
    .close = big_close,
};

static double big_stream(void *ctx, bool *dl)
{
	/* 4 passes round the ring per run */
	long n = opt.tiny ? 4096 : (long)(4 * BIG_CAP);

	return run_stream(ctx, 8, 1, 1, n, dl);
}

/*
 * The hypothesis, measured: ns per dependent load of a random
 * cache line in a buffer of bsz bytes of ordinary or huge pages (a
 * pointer chase through every line in one random cycle, Sattolo's
 * shuffle), so that each load misses the caches and, with ordinary pages
 * once the buffer outgrows the TLB's reach, the TLB. Timed in the
 * thread's CPU time: a chase of a million loads lasts long enough to be
 * preempted on a loaded machine, and time spent waiting for a CPU is not
 * a load's cost. Returns -1 when the buffer cannot be had.
 */
static double chase_ns(size_t bsz, bool huge, long steps)
{
	size_t n = bsz / 64;
	uint64_t *b = huge ? huge_buf(bsz) : shmem(bsz);
	uint64_t seed = 0x9e3779b97f4a7c15u;
	struct timespec t0, t1;
	size_t at = 0;

	if (!b)
		return -1;
	for (size_t i = 0; i < n; i++)
		b[i * 8] = i;
	for (size_t i = n - 1; i > 0; i--) { /* Sattolo: one cycle */
		size_t j, t;

		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		j = (size_t)(seed % i);
		t = b[i * 8], b[i * 8] = b[j * 8], b[j * 8] = t;
	}
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	for (long k = 0; k < steps; k++)
		at = *(volatile uint64_t *)&b[at * 8];
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
	munmap(b, bsz);
	return at < n ? ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
			 (double)(t1.tv_nsec - t0.tv_nsec)) /
			    (double)steps
		      : -1;
}

/* Can a region of size bytes have huge pages now? */
static bool huge_available(size_t size)
{
	lfipc_region *r;

	if (lfipc_region_create_ex(NULL, size, 0, LFIPC_REGION_HUGE, &r)) {
		bench_note(HUGE_MISSING);
		fprintf(stderr, "lfipc-bench: %s\n", HUGE_MISSING);
		return false;
	}
	lfipc_region_close(r);
	return true;
}

static void huge_run(void)
{
	long L = opt.tiny ? 1000 : 1000000;
	static const unsigned fl[2] = {0, LFIPC_REGION_HUGE};
	static const char *const pg[2] = {"4 KiB pages", "huge pages"};
	static char param[32], sys[3][2][48];
	static const char *const csys[2] = {
	    "random cache line, chased (floor), 4 KiB pages",
	    "random cache line, chased (floor), huge pages"};
	struct row *r[3][2], *s[2], *cr[2];
	double cv[2][64];
	void *ctx[2] = {(void *)&big_4k, (void *)&big_huge};
	double v[3][2][64];
	int rep, k[2] = {0, 0};
	int nh = huge_available((size_t)L * 128 + (8 << 20)) ? 2 : 1;

	snprintf(param, sizeof(param), "%ld queued", L);
	for (int h = 0; h < nh; h++) {
		snprintf(sys[0][h], sizeof(sys[0][h]), "lfipc_queue_clear, %s",
			 pg[h]);
		snprintf(sys[1][h], sizeof(sys[1][h]),
			 "first put+get after clear, %s", pg[h]);
		snprintf(sys[2][h], sizeof(sys[2][h]),
			 "cold cache line (floor), %s", pg[h]);
		for (int x = 0; x < 3; x++) {
			r[x][h] = newrow(T_HG, sys[x][h], "-", "ns", param);
			r[x][h]->lower_better = true;
		}
		r[2][h]->floor = true;
		cr[h] = newrow(T_HG, csys[h], "-", "ns", param);
		cr[h]->lower_better = cr[h]->floor = true;
	}
	/* interleaved: both kinds of pages see the same load */
	for (rep = -1; rep < opt.reps; rep++) /* -1: warm-up */
		for (int h = 0; h < nh; h++) {
			double c, f, z;

			progress("huge", "clear", pg[h]);
			if (r[0][h]->failed)
				continue;
			if (!clear_once(L, fl[h], &c, &f, &z)) {
				r[0][h]->failed = r[1][h]->failed =
				    r[2][h]->failed = true;
				continue;
			}
			if (rep >= 0) {
				cv[h][k[h]] = chase_ns(
				    ring_bytes(L), h == 1,
				    opt.tiny ? 10000 : 1000000);
				cr[h]->failed |= cv[h][k[h]] < 0;
				v[0][h][k[h]] = c;
				v[1][h][k[h]] = f;
				v[2][h][k[h]++] = z;
			}
		}
	for (int h = 0; h < nh; h++)
		for (int x = 0; x < 3; x++)
			if (!r[x][h]->failed)
				setrow(r[x][h], v[x][h], k[h]);
	for (int h = 0; h < nh; h++)
		if (!cr[h]->failed)
			setrow(cr[h], cv[h], k[h]);

	for (int h = 0; h < nh; h++)
		s[h] = newrow(T_HS, ((const struct peer *)ctx[h])->name,
			      "spin+futex", "Mmsg/s",
			      opt.tiny ? "1024 slots" : "1048576 slots");
	repeat_rows(s, ctx, nh, 0, big_stream);
}

const struct scenario scen_huge = {
    .name = "huge",
    .what = "clear and 1x1 stream of a 1M-slot queue, with and without "
	    "huge pages",
    .run = huge_run,
};
