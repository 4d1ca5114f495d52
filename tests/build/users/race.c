/* SPDX-License-Identifier: MIT */
/* Control: a real race, which every sanitizer build must report. As
 * queue_put_get.c, but the producer writes data[i] after putting i, so
 * the hand-off through the queue does not order the write before the
 * consumer's read. If this program ran clean, the TSan checks of the
 * other programs would prove nothing. */
#include "users.h"

#define N 200

static uint32_t data[N];
static lfipc_queue *q;

static void *producer(void *arg)
{
	for (uint32_t i = 0; i < N; i++) {
		CHECK_RC(lfipc_queue_put(q, &i, sizeof i, LFIPC_FOREVER), 0);
		data[i] = user_mix(i); /* too late: the consumer may read it */
	}
	return arg;
}

int main(void)
{
	lfipc_region *r = user_region();
	uint32_t sum = 0;
	pthread_t t;

	CHECK_RC(lfipc_queue_create(r, "q", 8, sizeof(uint32_t), 0, &q), 0);
	t = user_spawn(producer, NULL);
	for (uint32_t i = 0; i < N; i++) {
		uint32_t got;

		CHECK_RC(
		    lfipc_queue_get(q, &got, sizeof got, NULL, LFIPC_FOREVER),
		    0);
		CHECK(got == i);
		sum += data[i]; /* the racy read: any value is possible */
	}
	user_join(t);
	lfipc_queue_close(q);
	lfipc_region_close(r);
	printf("ok %u\n", (unsigned)(sum & 1));
	return 0;
}
