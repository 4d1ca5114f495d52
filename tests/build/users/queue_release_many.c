/* SPDX-License-Identifier: MIT */
/* Edge: lfipc_queue_peek_many/release_many -> lfipc_queue_reserve: the
 * consumer reads runs of messages in place and data[i], then releases the
 * run with one call (release stores and one fence per run), and a later
 * reserve hands each slot to the producer to write again (a queue of 8
 * slots, runs of up to 5: the release -> reserve edge of every slot of a
 * run is exercised, the run often spanning the ring's end). */
#include "users.h"

#define N 3000
#define MSG 64
#define RUN 5

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

	CHECK_RC(lfipc_queue_create(r, "q", 8, MSG, 0, &q), 0);
	t = user_spawn(producer, NULL);
	for (uint32_t i = 0; i < N;) {
		const void *msg[RUN];
		size_t len[RUN];
		size_t want = N - i < RUN ? N - i : RUN;
		int n = lfipc_queue_peek_many(q, msg, len, want, LFIPC_FOREVER);

		CHECK(n >= 1 && (size_t)n <= want);
		for (int j = 0; j < n; j++, i++) {
			const unsigned char *m = msg[j];
			uint32_t got;

			CHECK(len[j] == MSG);
			memcpy(&got, m, 4);
			CHECK(got == i);
			for (size_t k = 4; k < MSG; k++)
				CHECK(m[k] == (unsigned char)(i ^ k));
			CHECK(data[i] == user_mix(i));
		}
		CHECK_RC(lfipc_queue_release_many(q, msg, (size_t)n), n);
	}
	user_join(t);
	lfipc_queue_close(q);
	lfipc_region_close(r);
	puts("ok");
	return 0;
}
