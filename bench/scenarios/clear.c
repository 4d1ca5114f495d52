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
 */
#include "config.h"

#include <string.h>

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

/* One repetition: clear, first put+get, cold line (ns); false on failure. */
static bool clear_once(long L, double *tc, double *tf, double *tz)
{
	lfipc_region *reg;
	lfipc_queue *q;
	uint64_t t0, t1, t2;
	int64_t got;
	size_t len, bsz = ring_bytes(L);
	char m[64];
	volatile char *b;
	bool ok = true;

	if (lfipc_region_create(NULL, (size_t)L * 128 + (8 << 20), 0, &reg))
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

	b = shmem(bsz);
	for (size_t i = 0; i < bsz; i += 64)
		b[i] = (char)i;
	t0 = now_ns();
	(void)b[0];
	t1 = now_ns();
	shmem_free((void *)(uintptr_t)b, bsz);
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

			if (!clear_once(L, &c, &f, &z)) {
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
