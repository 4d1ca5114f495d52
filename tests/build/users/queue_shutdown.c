/* SPDX-License-Identifier: MIT */
/* Edge: lfipc_queue_shutdown -> the waiters it wakes. One kind of waiter
 * at a time, each on its own queue: get, get_many and peek on an empty
 * queue, then put, put_many and reserve on a full one. The main thread
 * starts the waiter, writes sdata[kind], lets it wait and shuts the queue
 * down; the waiter gets -EPIPE and reads sdata[kind]. */
#include <time.h>

#include "users.h"

enum { GET, GET_MANY, PEEK, PUT, PUT_MANY, RESERVE, KINDS };

static uint32_t sdata[KINDS];
static lfipc_queue *q[KINDS];

static void *getter(void *arg)
{
	int kind = (int)(intptr_t)arg;
	uint32_t m;
	size_t len;
	const void *msg;

	switch (kind) {
	case GET:
		CHECK_RC(
		    lfipc_queue_get(q[kind], &m, sizeof m, NULL, LFIPC_FOREVER),
		    -EPIPE);
		break;
	case GET_MANY:
		CHECK_RC(lfipc_queue_get_many(q[kind], &m, sizeof m, &len, 1,
					      LFIPC_FOREVER),
			 -EPIPE);
		break;
	default:
		CHECK_RC(lfipc_queue_peek(q[kind], &msg, &len, LFIPC_FOREVER),
			 -EPIPE);
	}
	CHECK(sdata[kind] == user_mix((uint32_t)kind));
	return arg;
}

static void *putter(void *arg)
{
	int kind = (int)(intptr_t)arg;
	uint32_t m = 7;
	const void *msgs[1] = {&m};
	size_t lens[1] = {sizeof m};
	void *slot;

	switch (kind) {
	case PUT:
		CHECK_RC(lfipc_queue_put(q[kind], &m, sizeof m, LFIPC_FOREVER),
			 -EPIPE);
		break;
	case PUT_MANY:
		CHECK_RC(
		    lfipc_queue_put_many(q[kind], msgs, lens, 1, LFIPC_FOREVER),
		    -EPIPE);
		break;
	default:
		CHECK_RC(lfipc_queue_reserve(q[kind], &slot, LFIPC_FOREVER),
			 -EPIPE);
	}
	CHECK(sdata[kind] == user_mix((uint32_t)kind));
	return arg;
}

int main(void)
{
	static const char *const names[KINDS] = {"get", "get_many", "peek",
						 "put", "put_many", "reserve"};
	lfipc_region *r = user_region();
	struct timespec pause = {0, 10 * 1000 * 1000};

	for (int kind = 0; kind < KINDS; kind++) {
		uint32_t m = 1;
		pthread_t t;

		CHECK_RC(lfipc_queue_create(r, names[kind], 1, sizeof m, 0,
					    &q[kind]),
			 0);
		if (kind >= PUT) /* full */
			CHECK_RC(lfipc_queue_put(q[kind], &m, sizeof m,
						 LFIPC_NOWAIT),
				 0);
		t = user_spawn(kind >= PUT ? putter : getter,
			       (void *)(intptr_t)kind);
		sdata[kind] = user_mix((uint32_t)kind);
		nanosleep(&pause, NULL); /* let it wait (not needed to pass) */
		CHECK_RC(lfipc_queue_shutdown(q[kind]), 0);
		user_join(t);
		if (kind >= PUT) { /* the full queue drains, then -EPIPE */
			CHECK_RC(lfipc_queue_get(q[kind], &m, sizeof m, NULL,
						 LFIPC_NOWAIT),
				 0);
			CHECK(m == 1);
		}
		CHECK_RC(
		    lfipc_queue_get(q[kind], &m, sizeof m, NULL, LFIPC_NOWAIT),
		    -EPIPE);
		lfipc_queue_close(q[kind]);
	}
	lfipc_region_close(r);
	puts("ok");
	return 0;
}
