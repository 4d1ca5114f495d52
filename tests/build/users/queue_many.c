/* SPDX-License-Identifier: MIT */
/* Edge: lfipc_queue_put_many -> lfipc_queue_get_many. The producer writes
 * data[i] for a batch of up to 16 messages, then puts the batch; the
 * consumer takes bursts of up to 8 and reads data[i] of each. */
#include "users.h"

#define N 3000
#define BATCH 16
#define BURST 8

static uint32_t data[N];
static lfipc_queue *q;

static void *producer(void *arg)
{
	uint32_t next = 0;

	while (next < N) {
		uint32_t *m = malloc(BATCH * sizeof *m);
		const void *msgs[BATCH];
		size_t lens[BATCH];
		size_t n = 1 + next % BATCH;
		int put;

		CHECK(m != NULL);
		if (n > N - next)
			n = N - next;
		for (size_t k = 0; k < n; k++) {
			data[next + k] = user_mix(next + (uint32_t)k);
			m[k] = next + (uint32_t)k;
			msgs[k] = &m[k];
			lens[k] = sizeof m[k];
		}
		put = lfipc_queue_put_many(q, msgs, lens, n, LFIPC_FOREVER);
		CHECK(put >= 1 && (size_t)put <= n);
		next +=
		    (uint32_t)put; /* the rest is written again: same values */
		free(m);
	}
	return arg;
}

int main(void)
{
	lfipc_region *r = user_region();
	uint32_t *bufs = malloc(BURST * sizeof *bufs);
	size_t lens[BURST];
	uint32_t i = 0;
	pthread_t t;

	CHECK(bufs != NULL);
	CHECK_RC(lfipc_queue_create(r, "q", 32, sizeof(uint32_t), 0, &q), 0);
	t = user_spawn(producer, NULL);
	while (i < N) {
		int got = lfipc_queue_get_many(q, bufs, sizeof *bufs, lens,
					       BURST, LFIPC_FOREVER);

		CHECK(got >= 1 && got <= BURST);
		for (int k = 0; k < got; k++, i++) {
			CHECK(lens[k] == sizeof(uint32_t));
			CHECK(bufs[k] == i);
			CHECK(data[i] == user_mix(i));
		}
	}
	user_join(t);
	free(bufs);
	lfipc_queue_close(q);
	lfipc_region_close(r);
	puts("ok");
	return 0;
}
