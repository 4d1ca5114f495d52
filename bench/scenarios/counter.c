/* SPDX-License-Identifier: MIT */
/*
 * counter: a shared 64-bit counter incremented by N processes (1 and 2) in
 * a loop: lfipc_array_fetch_add against the add people write with a Lock
 * (the Array's own lock around a plain add), beside the floor, a bare C11
 * atomic_fetch_add on MAP_SHARED memory. Total adds per second; the final
 * value must equal the number of adds. lfipc-only, like clear: no peers.
 */
#include "config.h"

#include <lfipc/region.h>
#include <lfipc/sync.h>
#include <lfipc/value.h>

#include "../bench.h"

enum { C_FETCH_ADD, C_LOCKED, C_FLOOR, C_N };
static const char *const names[C_N] = {"lfipc_array_fetch_add",
				       "lfipc Lock + add",
				       "bare atomic_fetch_add (floor)"};
static const char *const waits[C_N] = {"atomic", "spin+futex", "atomic"};

struct cnt {
	int kind;
	lfipc_array *a;
	_Atomic int64_t *bare;
};

static int add(void *arg)
{
	struct cnt *c = arg;
	lfipc_lock *l;

	if (c->kind == C_FETCH_ADD)
		return lfipc_array_fetch_add(c->a, 0, 1, NULL) ? -1 : 0;
	if (c->kind == C_FLOOR) {
		atomic_fetch_add(c->bare, 1);
		return 0;
	}
	l = lfipc_array_lock(c->a);
	if (lfipc_lock_acquire(l, LFIPC_FOREVER))
		return -1;
	((int64_t *)lfipc_array_data(c->a))[0]++;
	return lfipc_lock_release(l) ? -1 : 0;
}

struct ctx {
	int kind, procs;
};

static double once(void *ctx, bool *dl)
{
	struct ctx *x = ctx;
	struct cnt c = {.kind = x->kind};
	lfipc_region *reg;
	long n = opt.lock_n;
	int64_t v = -1;
	double rate;

	(void)dl;
	if (lfipc_region_create(NULL, 1 << 20, 0, &reg))
		return -1;
	if (lfipc_array_create(reg, "v", LFIPC_I64, 1, true, &c.a)) {
		lfipc_region_close(reg);
		return -1;
	}
	c.bare = shmem(64);
	rate = op_run(x->procs, n, add, &c);
	if (x->kind == C_FLOOR)
		v = atomic_load(c.bare);
	else if (x->kind == C_LOCKED)
		v = ((int64_t *)lfipc_array_data(c.a))[0];
	else if (lfipc_array_load(c.a, 0, &v))
		rate = -1;
	if (v != (int64_t)x->procs * (n + n / 10))
		rate = -1;
	shmem_free(c.bare, 64);
	lfipc_array_close(c.a);
	lfipc_region_close(reg);
	if (rate < 0)
		return -1;
	/* op_run gives ns per add for one process: Mops/s throughout */
	return x->procs == 1 ? 1e3 / rate : rate;
}

static void run(void)
{
	static struct ctx x[C_N];
	struct row *r[C_N];
	void *ctx[C_N];

	for (int procs = 1; procs <= 2; procs++) {
		char param[32];

		snprintf(param, sizeof(param), "%d process%s", procs,
			 procs > 1 ? "es" : "");
		for (int k = 0; k < C_N; k++) {
			x[k] = (struct ctx){k, procs};
			r[k] = newrow("Shared counter increments, N processes",
				      names[k], waits[k], "Mops/s", param);
			r[k]->floor = k == C_FLOOR;
			ctx[k] = &x[k];
		}
		repeat_rows(r, ctx, C_N, 0, once);
	}
}

const struct scenario scen_counter = {
    .name = "counter",
    .what = "Value fetch_add against a Lock-protected add, 1 and 2 processes",
    .run = run,
};
