/* SPDX-License-Identifier: MIT */
/* Edge: lfipc_queue_put -> lfipc_queue_get. A producer thread writes
 * data[i], then puts a message of 4..16 bytes carrying i; the consumer
 * gets it and reads data[i]. A queue of 8 slots, so slots are reused
 * hundreds of times. */
#include "users.h"

#define N 2000
#define MSG 16

static uint32_t data[N];
static lfipc_queue *q;

static size_t msg_len(uint32_t i)
{
	return 4 + i % (MSG - 3);
}

static void *producer(void *arg)
{
	for (uint32_t i = 0; i < N; i++) {
		unsigned char m[MSG];
		size_t len = msg_len(i);
		void *heap;

		data[i] = user_mix(i);
		memcpy(m, &i, 4);
		for (size_t k = 4; k < len; k++)
			m[k] = (unsigned char)(i + k);
		heap = user_dup(m, len);
		CHECK_RC(lfipc_queue_put(q, heap, len, LFIPC_FOREVER), 0);
		free(heap);
	}
	return arg;
}

int main(void)
{
	lfipc_region *r = user_region();
	unsigned char *buf = malloc(MSG);
	pthread_t t;

	CHECK(buf != NULL);
	CHECK_RC(lfipc_queue_create(r, "q", 8, MSG, 0, &q), 0);
	t = user_spawn(producer, NULL);
	for (uint32_t i = 0; i < N; i++) {
		size_t len = 0;
		uint32_t got;

		CHECK_RC(lfipc_queue_get(q, buf, MSG, &len, LFIPC_FOREVER), 0);
		CHECK(len == msg_len(i));
		memcpy(&got, buf, 4);
		CHECK(got == i);
		for (size_t k = 4; k < len; k++)
			CHECK(buf[k] == (unsigned char)(i + k));
		CHECK(data[i] == user_mix(i));
	}
	user_join(t);
	free(buf);
	lfipc_queue_close(q);
	lfipc_region_close(r);
	puts("ok");
	return 0;
}
