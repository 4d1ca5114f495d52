/* SPDX-License-Identifier: MIT */
/* Edge: lfipc_queue_clear -> what it unblocks. (1) A JoinableQueue holds
 * 10 messages that nobody gets; a thread writes cdata and clears them
 * (they count as done), and the main thread's join returns and reads
 * cdata. (2) A full queue: a producer thread waits in put; the main
 * thread writes pdata and clears; the put returns and the producer reads
 * pdata. */
#include <time.h>

#include "users.h"

static uint32_t cdata, pdata;
static lfipc_queue *qj, *qf;

static void *clearer(void *arg)
{
	cdata = user_mix(1);
	CHECK_RC(lfipc_queue_clear(qj), 10);
	return arg;
}

static void *producer(void *arg)
{
	uint32_t m = 99;

	CHECK_RC(lfipc_queue_put(qf, &m, sizeof m, LFIPC_FOREVER), 0);
	CHECK(pdata == user_mix(2));
	return arg;
}

int main(void)
{
	lfipc_region *r = user_region();
	struct timespec pause = {0, 20 * 1000 * 1000};
	int64_t cleared;
	uint32_t m, left = 0;
	pthread_t t;

	/* (1) clear -> join */
	CHECK_RC(lfipc_queue_create(r, "qj", 64, sizeof m, LFIPC_QUEUE_JOINABLE,
				    &qj),
		 0);
	for (m = 0; m < 10; m++)
		CHECK_RC(lfipc_queue_put(qj, &m, sizeof m, LFIPC_NOWAIT), 0);
	t = user_spawn(clearer, NULL);
	CHECK_RC(lfipc_queue_join(qj, LFIPC_FOREVER), 0);
	CHECK(cdata == user_mix(1));
	user_join(t);

	/* (2) clear -> a put waiting for room */
	CHECK_RC(lfipc_queue_create(r, "qf", 4, sizeof m, 0, &qf), 0);
	for (m = 0; m < 4; m++)
		CHECK_RC(lfipc_queue_put(qf, &m, sizeof m, LFIPC_NOWAIT), 0);
	t = user_spawn(producer, NULL);
	pdata = user_mix(2);
	nanosleep(&pause, NULL); /* let the put wait (not needed to pass) */
	cleared = lfipc_queue_clear(qf);
	CHECK(cleared == 4 || cleared == 5);
	user_join(t);
	while (lfipc_queue_get(qf, &m, sizeof m, NULL, LFIPC_NOWAIT) == 0) {
		CHECK(m == 99);
		left++;
	}
	CHECK(cleared + left == 5);

	lfipc_queue_close(qj);
	lfipc_queue_close(qf);
	lfipc_region_close(r);
	puts("ok");
	return 0;
}
