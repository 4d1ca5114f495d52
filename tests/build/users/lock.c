/* SPDX-License-Identifier: MIT */
/* Edge: lfipc_lock_release -> lfipc_lock_acquire, for a Lock and an RLock
 * (taken at depth 2). Two threads increment plain counters under them, with
 * blocking, LFIPC_NOWAIT and timed acquires; the totals must be exact. */
#include "users.h"

#define N 2000

static uint64_t c_lock, c_rlock;
static lfipc_lock *l, *rl;

static void take(lfipc_lock *k, uint32_t i)
{
	int rc;

	switch (i % 3) {
	case 0:
		CHECK_RC(lfipc_lock_acquire(k, LFIPC_FOREVER), 0);
		break;
	case 1:
		while ((rc = lfipc_lock_acquire(k, LFIPC_NOWAIT)) == -EAGAIN)
			;
		CHECK_RC(rc, 0);
		break;
	default:
		while ((rc = lfipc_lock_acquire(k, 1000 * 1000)) == -ETIMEDOUT)
			;
		CHECK_RC(rc, 0);
	}
}

static void *worker(void *arg)
{
	for (uint32_t i = 0; i < N; i++) {
		take(l, i);
		c_lock++;
		CHECK_RC(lfipc_lock_release(l), 0);

		take(rl, i);
		CHECK_RC(lfipc_lock_acquire(rl, LFIPC_NOWAIT), 0); /* depth 2 */
		c_rlock += 2;
		CHECK_RC(lfipc_lock_release(rl), 0);
		c_rlock--; /* still held at depth 1 */
		CHECK_RC(lfipc_lock_release(rl), 0);
	}
	return arg;
}

int main(void)
{
	lfipc_region *r = user_region();
	pthread_t a, b;

	CHECK_RC(lfipc_lock_create(r, "lock", false, &l), 0);
	CHECK_RC(lfipc_lock_create(r, "rlock", true, &rl), 0);
	a = user_spawn(worker, NULL);
	b = user_spawn(worker, NULL);
	user_join(a);
	user_join(b);
	CHECK(c_lock == 2 * N);
	CHECK(c_rlock == 2 * N);
	CHECK(!lfipc_lock_locked(l) && !lfipc_lock_locked(rl));
	lfipc_lock_close(l);
	lfipc_lock_close(rl);
	lfipc_region_close(r);
	puts("ok");
	return 0;
}
