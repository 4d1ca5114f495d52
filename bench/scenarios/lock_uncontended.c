/* SPDX-License-Identifier: MIT */
/*
 * lock-uncontended: one process, acquire + count + release in a loop, ns per
 * pair, for every lock peer. Nothing else is timed: no mutual-exclusion
 * check (one process cannot break it; lock-contended checks it), so the
 * bare futex lock floor is exactly its two atomic read-modify-writes (a CAS
 * to take it, a fetch_sub to release it and learn whether anybody sleeps)
 * plus the counted increment, and every other row pays what it adds to
 * them.
 */
#include "config.h"

#include "../bench.h"

struct un {
	const struct peer *p;
	void *l;
	uint64_t count; /* protected by the lock; checked at the end */
};

static int un_op(void *arg)
{
	struct un *u = arg;

	if (u->p->acquire(u->l) != 0)
		return -1;
	u->count++;
	return u->p->release(u->l);
}

static double once(void *ctx, bool *dl)
{
	const struct peer *p = ctx;
	long n = opt.lock_n;
	/* shared: the worker is a child process; the parent checks count */
	struct un *u = shmem(sizeof(*u));
	double x = -1;

	(void)dl;
	u->p = p;
	u->count = 0;
	u->l = p->lock_open();
	if (u->l) {
		x = op_run(1, n, un_op, u);
		if (u->count != (uint64_t)(n + n / 10))
			x = -1;
		p->lock_close(u->l);
	}
	shmem_free(u, sizeof(*u));
	return x;
}

static void run(void)
{
	struct row *r[MAXPEERS];
	void *ctx[MAXPEERS];
	int n = peer_rows(r, ctx, "Lock acquire+release, uncontended", "ns",
			  "1 process", PF_LOCK, 0);

	for (int i = 0; i < n; i++)
		r[i]->lower_better = true;
	repeat_rows(r, ctx, n, 0, once);
}

const struct scenario scen_lock_uncontended = {
    .name = "lock-uncontended",
    .group = "lock",
    .what = "acquire+release in one process, ns per pair",
    .run = run,
};
