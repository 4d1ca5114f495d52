/* SPDX-License-Identifier: MIT */
/* Edge: lfipc_queue_reserve/commit -> lfipc_queue_peek/release, and back:
 * the producer writes data[i] and the message straight into the reserved
 * slot; the consumer reads the message in place and data[i], then releases
 * the slot, which a later reserve hands to the producer to write again (a
 * queue of 4 slots: the release -> reserve edge is exercised as often). */
#include "users.h"

#define N 2000
#define MSG 64

static uint32_t data[N];
static lfipc_queue *q;

static void *producer(void *arg)
{
	for (uint32_t i = 0; i < N; i++) {
		void *slot;
		unsigned char *m;

		data[i] = user_mix(i);
		CHECK_RC(lfipc_queue_reserve(q, &slot, LFIPC_FOREVER), 0);
		m = slot;
		memcpy(m, &i, 4);
		for (size_t k = 4; k < MSG; k++)
			m[k] = (unsigned char)(i ^ k);
		CHECK_RC(lfipc_queue_commit(q, slot, MSG), 0);
	}
	return arg;
}

int main(void)
{
	lfipc_region *r = user_region();
	pthread_t t;

	CHECK_RC(lfipc_queue_create(r, "q", 4, MSG, 0, &q), 0);
	t = user_spawn(producer, NULL);
	for (uint32_t i = 0; i < N; i++) {
		const void *msg;
		const unsigned char *m;
		size_t len;
		uint32_t got;

		CHECK_RC(lfipc_queue_peek(q, &msg, &len, LFIPC_FOREVER), 0);
		m = msg;
		CHECK(len == MSG);
		memcpy(&got, m, 4);
		CHECK(got == i);
		for (size_t k = 4; k < MSG; k++)
			CHECK(m[k] == (unsigned char)(i ^ k));
		CHECK(data[i] == user_mix(i));
		CHECK_RC(lfipc_queue_release(q, msg), 0);
	}
	user_join(t);
	lfipc_queue_close(q);
	lfipc_region_close(r);
	puts("ok");
	return 0;
}
