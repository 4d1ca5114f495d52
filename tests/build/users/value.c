/* SPDX-License-Identifier: MIT */
/* Edges of Value and Array. (1) The atomics: a producer writes data[i] and
 * stores i+1 into element 0 of an I64 Array; the consumer loads it until
 * it sees i+1, reads data[i], and acknowledges in element 1 by exchange,
 * compare-exchange or fetch-add in turn, which the producer loads before
 * writing the next. (2) The embedded lock: two threads update an F64
 * Array under lfipc_array_lock(), through lfipc_array_data() and through
 * lfipc_array_get()/set(); the totals must be exact. */
#include <sched.h>

#include "users.h"

#define N 300
#define M 1000

static uint32_t data[N];
static lfipc_array *sync_a, *acct;

static int64_t load(size_t i)
{
	int64_t v;

	CHECK_RC(lfipc_array_load(sync_a, i, &v), 0);
	return v;
}

static void *producer(void *arg)
{
	for (uint32_t i = 0; i < N; i++) {
		data[i] = user_mix(i);
		CHECK_RC(lfipc_array_store(sync_a, 0, (int64_t)i + 1), 0);
		while (load(1) != (int64_t)i + 1)
			sched_yield();
	}
	return arg;
}

static void *updater(void *arg)
{
	lfipc_lock *l = lfipc_array_lock(acct);

	for (uint32_t i = 0; i < M; i++) {
		double *d, x;

		CHECK_RC(lfipc_lock_acquire(l, LFIPC_FOREVER), 0);
		d = lfipc_array_data(acct);
		d[0] += 1.0;
		CHECK_RC(lfipc_array_get(acct, 1, 1, &x), 0);
		x += 2.0;
		CHECK_RC(lfipc_array_set(acct, 1, 1, &x), 0);
		CHECK_RC(lfipc_lock_release(l), 0);
	}
	return arg;
}

int main(void)
{
	lfipc_region *r = user_region();
	double totals[2];
	pthread_t a, b;

	CHECK_RC(lfipc_array_create(r, "sync", LFIPC_I64, 2, false, &sync_a),
		 0);
	a = user_spawn(producer, NULL);
	for (uint32_t i = 0; i < N; i++) {
		int64_t old = -1;

		while (load(0) != (int64_t)i + 1)
			sched_yield();
		CHECK(data[i] == user_mix(i));
		switch (i % 3) {
		case 0:
			CHECK_RC(lfipc_array_exchange(sync_a, 1, (int64_t)i + 1,
						      &old),
				 0);
			break;
		case 1:
			CHECK_RC(lfipc_array_cas(sync_a, 1, i, (int64_t)i + 1),
				 0);
			old = i;
			break;
		default:
			CHECK_RC(lfipc_array_fetch_add(sync_a, 1, 1, &old), 0);
		}
		CHECK(old == (int64_t)i);
	}
	user_join(a);

	CHECK_RC(lfipc_array_create(r, "acct", LFIPC_F64, 2, true, &acct), 0);
	a = user_spawn(updater, NULL);
	b = user_spawn(updater, NULL);
	user_join(a);
	user_join(b);
	CHECK_RC(lfipc_array_get(acct, 0, 2, totals), 0);
	CHECK(totals[0] == 2.0 * M && totals[1] == 4.0 * M);
	lfipc_array_close(sync_a);
	lfipc_array_close(acct);
	lfipc_region_close(r);
	puts("ok");
	return 0;
}
