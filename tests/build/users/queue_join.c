/* SPDX-License-Identifier: MIT */
/* Edge: lfipc_queue_task_done -> lfipc_queue_join. A worker thread gets
 * each job, writes its result into results[] and calls task_done; the
 * main thread puts a round of jobs, joins, and reads the round's results
 * (20 rounds of 50). Shutdown ends the worker. */
#include "users.h"

#define ROUNDS 20
#define JOBS 50

static uint32_t results[ROUNDS * JOBS];
static lfipc_queue *q;

static void *worker(void *arg)
{
	uint32_t job;
	int rc;

	while ((rc = lfipc_queue_get(q, &job, sizeof job, NULL,
				     LFIPC_FOREVER)) == 0) {
		CHECK(job < ROUNDS * JOBS);
		results[job] = user_mix(job);
		CHECK_RC(lfipc_queue_task_done(q), 0);
	}
	CHECK_RC(rc, -EPIPE);
	return arg;
}

int main(void)
{
	lfipc_region *r = user_region();
	pthread_t t;

	CHECK_RC(lfipc_queue_create(r, "jobs", 16, sizeof(uint32_t),
				    LFIPC_QUEUE_JOINABLE, &q),
		 0);
	t = user_spawn(worker, NULL);
	for (uint32_t round = 0; round < ROUNDS; round++) {
		for (uint32_t k = 0; k < JOBS; k++) {
			uint32_t job = round * JOBS + k;

			CHECK_RC(
			    lfipc_queue_put(q, &job, sizeof job, LFIPC_FOREVER),
			    0);
		}
		CHECK_RC(lfipc_queue_join(q, LFIPC_FOREVER), 0);
		for (uint32_t k = 0; k < JOBS; k++)
			CHECK(results[round * JOBS + k] ==
			      user_mix(round * JOBS + k));
	}
	CHECK_RC(lfipc_queue_shutdown(q), 0);
	user_join(t);
	lfipc_queue_close(q);
	lfipc_region_close(r);
	puts("ok");
	return 0;
}
