/* SPDX-License-Identifier: MIT */
/* Edge: lfipc_sem_release -> lfipc_sem_acquire. (1) A producer writes
 * data[i] and releases "items"; the consumer acquires "items" and reads
 * data[i]; a BoundedSemaphore "slots" of 8 keeps the producer at most 8
 * ahead (consumer releases, producer acquires). (2) A Semaphore created
 * with LFIPC_SEM_TRACK_HOLDERS and value 1 guards a plain counter that two
 * threads increment (its journaled path). */
#include "users.h"

#define N 2000
#define M 500

static uint32_t data[N];
static uint64_t counter;
static lfipc_sem *items, *slots, *tracked;

static void *producer(void *arg)
{
	for (uint32_t i = 0; i < N; i++) {
		CHECK_RC(lfipc_sem_acquire(slots, LFIPC_FOREVER), 0);
		data[i] = user_mix(i);
		CHECK_RC(lfipc_sem_release(items), 0);
	}
	return arg;
}

static void *incrementer(void *arg)
{
	for (uint32_t i = 0; i < M; i++) {
		CHECK_RC(lfipc_sem_acquire(tracked, LFIPC_FOREVER), 0);
		counter++;
		CHECK_RC(lfipc_sem_release(tracked), 0);
	}
	return arg;
}

int main(void)
{
	lfipc_region *r = user_region();
	pthread_t a, b;

	CHECK_RC(lfipc_sem_create(r, "items", 0, false, &items), 0);
	CHECK_RC(lfipc_sem_create(r, "slots", 8, true, &slots), 0);
	a = user_spawn(producer, NULL);
	for (uint32_t i = 0; i < N; i++) {
		CHECK_RC(lfipc_sem_acquire(items, LFIPC_FOREVER), 0);
		CHECK(data[i] == user_mix(i));
		CHECK_RC(lfipc_sem_release(slots), 0);
	}
	user_join(a);
	CHECK(lfipc_sem_value(items) == 0 && lfipc_sem_value(slots) == 8);
	CHECK_RC(lfipc_sem_release(slots), -EOVERFLOW);

	CHECK_RC(lfipc_sem_create_ex(r, "tracked", 1, LFIPC_SEM_TRACK_HOLDERS,
				     &tracked),
		 0);
	a = user_spawn(incrementer, NULL);
	b = user_spawn(incrementer, NULL);
	user_join(a);
	user_join(b);
	CHECK(counter == 2 * M);
	lfipc_sem_close(items);
	lfipc_sem_close(slots);
	lfipc_sem_close(tracked);
	lfipc_region_close(r);
	puts("ok");
	return 0;
}
