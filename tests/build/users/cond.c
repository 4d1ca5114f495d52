/* SPDX-License-Identifier: MIT */
/* Edge: lfipc_cond_notify -> lfipc_cond_wait (the Condition's lock hands
 * the data over). (1) A bounded buffer of 4 in plain memory, guarded by a
 * Lock, with Conditions "not_empty" and "not_full" over it: the producer
 * writes data[i] (outside the lock) and appends i; the consumer waits,
 * takes i and reads data[i]. (2) A Condition with its own embedded RLock
 * (created with NULL) and lfipc_cond_wait_for(): a flag and a value. */
#include "users.h"

#define N 1000
#define CAP 4

static uint32_t data[N];
static uint32_t buf[CAP], head, count; /* guarded by the Lock */
static uint32_t flag, value;	       /* guarded by the embedded RLock */
static lfipc_cond *not_empty, *not_full, *ready;

static void *producer(void *arg)
{
	lfipc_lock *l = lfipc_cond_lock(not_full);

	for (uint32_t i = 0; i < N; i++) {
		data[i] = user_mix(i);
		CHECK_RC(lfipc_lock_acquire(l, LFIPC_FOREVER), 0);
		while (count == CAP)
			CHECK_RC(lfipc_cond_wait(not_full, LFIPC_FOREVER), 0);
		buf[(head + count) % CAP] = i;
		count++;
		CHECK(lfipc_cond_notify(not_empty, 1) >= 0);
		CHECK_RC(lfipc_lock_release(l), 0);
	}
	return arg;
}

static bool is_flagged(void *arg)
{
	return *(uint32_t *)arg != 0;
}

static void *setter(void *arg)
{
	lfipc_lock *l = lfipc_cond_lock(ready);

	CHECK_RC(lfipc_lock_acquire(l, LFIPC_FOREVER), 0);
	value = user_mix(7);
	flag = 1;
	CHECK(lfipc_cond_notify_all(ready) >= 0);
	CHECK_RC(lfipc_lock_release(l), 0);
	return arg;
}

int main(void)
{
	lfipc_region *r = user_region();
	lfipc_lock *l;
	pthread_t t;

	CHECK_RC(lfipc_lock_create(r, "lock", false, &l), 0);
	CHECK_RC(lfipc_cond_create(r, "not_empty", l, &not_empty), 0);
	CHECK_RC(lfipc_cond_create(r, "not_full", l, &not_full), 0);
	t = user_spawn(producer, NULL);
	for (uint32_t i = 0; i < N; i++) {
		uint32_t got;

		CHECK_RC(lfipc_lock_acquire(l, LFIPC_FOREVER), 0);
		while (count == 0)
			CHECK_RC(lfipc_cond_wait(not_empty, LFIPC_FOREVER), 0);
		got = buf[head];
		head = (head + 1) % CAP;
		count--;
		CHECK(lfipc_cond_notify(not_full, 1) >= 0);
		CHECK_RC(lfipc_lock_release(l), 0);
		CHECK(got == i);
		CHECK(data[i] == user_mix(i));
	}
	user_join(t);

	CHECK_RC(lfipc_cond_create(r, "ready", NULL, &ready), 0);
	CHECK_RC(lfipc_lock_acquire(lfipc_cond_lock(ready), LFIPC_FOREVER), 0);
	t = user_spawn(setter, NULL);
	CHECK_RC(lfipc_cond_wait_for(ready, is_flagged, &flag, LFIPC_FOREVER),
		 0);
	CHECK(value == user_mix(7));
	CHECK_RC(lfipc_lock_release(lfipc_cond_lock(ready)), 0);
	user_join(t);

	lfipc_cond_close(not_empty);
	lfipc_cond_close(not_full);
	lfipc_cond_close(ready);
	lfipc_lock_close(l);
	lfipc_region_close(r);
	puts("ok");
	return 0;
}
