/* SPDX-License-Identifier: MIT */
/* Edge: lfipc_barrier_wait -> lfipc_barrier_wait of the other parties, and
 * the action. Three threads, 200 cycles: each writes its own slot of the
 * cycle, waits, and reads every party's slot and what the action (run by
 * the party that completes the cycle) wrote. */
#include "users.h"

#define PARTIES 3
#define CYCLES 200

static uint32_t slot[CYCLES][PARTIES];
static uint32_t action_out[CYCLES], action_cycle;
static lfipc_barrier *b;

static int action(void *arg)
{
	action_out[action_cycle] = user_mix(action_cycle);
	action_cycle++;
	return arg ? 1 : 0;
}

static void *party(void *arg)
{
	uint32_t me = (uint32_t)(uintptr_t)arg;
	uint32_t arrivals = 0;

	for (uint32_t c = 0; c < CYCLES; c++) {
		int rc;

		slot[c][me] = user_mix(c * PARTIES + me);
		rc = lfipc_barrier_wait(b, LFIPC_FOREVER);
		CHECK(rc >= 0 && rc < PARTIES);
		if (rc == PARTIES - 1)
			arrivals++;
		for (uint32_t p = 0; p < PARTIES; p++)
			CHECK(slot[c][p] == user_mix(c * PARTIES + p));
		CHECK(action_out[c] == user_mix(c));
	}
	return (void *)(uintptr_t)arrivals;
}

int main(void)
{
	lfipc_region *r = user_region();
	pthread_t t[PARTIES];
	uintptr_t completed = 0;

	CHECK_RC(lfipc_barrier_create(r, "b", PARTIES, &b), 0);
	lfipc_barrier_set_action(b, action, NULL);
	for (uint32_t p = 0; p < PARTIES; p++)
		t[p] = user_spawn(party, (void *)(uintptr_t)p);
	for (uint32_t p = 0; p < PARTIES; p++) {
		void *ret;

		CHECK(pthread_join(t[p], &ret) == 0);
		completed += (uintptr_t)ret;
	}
	CHECK(completed == CYCLES && action_cycle == CYCLES);
	CHECK(!lfipc_barrier_broken(b));
	lfipc_barrier_close(b);
	lfipc_region_close(r);
	puts("ok");
	return 0;
}
