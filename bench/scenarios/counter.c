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

static int worker(struct job *j)
{
	struct cnt *c = j->arg;
	int64_t *d = lfipc_array_data(c->a);
	lfipc_lock *l = lfipc_array_lock(c->a);
	struct wclock w = {.fd = -1};

	start_child(j->cpu);
	for (long i = -j->warm; i < j->n; i++) {
		if (i == 0) {
			note_start();
			wait_start(&w);
		}
		if (c->kind == C_FETCH_ADD) {
			if (lfipc_array_fetch_add(c->a, 0, 1, NULL))
				return -1;
		} else if (c->kind == C_LOCKED) {
			if (lfipc_lock_acquire(l, LFIPC_FOREVER))
				return -1;
			d[0]++;
			if (lfipc_lock_release(l))
				return -1;
		} else {
			atomic_fetch_add(c->bare, 1);
		}
	}
	wait_end(&w);
	note_end();
	return 0;
}

struct ctx {
	int kind, procs;
};

static double once(void *ctx, bool *dl)
{
	struct ctx *x = ctx;
	struct cnt c = {.kind = x->kind};
	struct job j[2];
	lfipc_region *reg;
	long n = opt.lock_n;
	int64_t v = -1;
	bool bad = false;
	int started = 0;
	double dt;

	(void)dl;
	if (lfipc_region_create(NULL, 1 << 20, 0, &reg))
		return -1;
	if (lfipc_array_create(reg, "v", LFIPC_I64, 1, true, &c.a)) {
		lfipc_region_close(reg);
		return -1;
	}
	c.bare = shmem(64);
	reset_sync();
	for (int k = 0; k < x->procs; k++) {
		j[k] = (struct job){
		    .fn = worker, .arg = &c, .n = n, .warm = n / 10, .cpu = k};
		if (spawn(&j[k])) {
			bad = true;
			break;
		}
		started++;
	}
	if (!bad)
		start_parent(x->procs);
	for (int k = 0; k < started; k++)
		if (reap_deadline(j[k].pid, 600000))
			bad = true;
	dt = (double)(atomic_load(&sy->t_end) - atomic_load(&sy->t_start));
	if (x->kind == C_FLOOR)
		v = atomic_load(c.bare);
	else if (x->kind == C_LOCKED)
		v = ((int64_t *)lfipc_array_data(c.a))[0];
	else if (lfipc_array_load(c.a, 0, &v))
		bad = true;
	if (v != (int64_t)x->procs * (n + n / 10))
		bad = true;
	shmem_free(c.bare, 64);
	lfipc_array_close(c.a);
	lfipc_region_close(reg);
	if (bad || dt <= 0)
		return -1;
	return (double)x->procs * (double)n / (dt / 1e3);
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
