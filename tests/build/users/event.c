/* SPDX-License-Identifier: MIT */
/* Edge: lfipc_event_set -> lfipc_event_wait. Ping-pong over two Events:
 * A writes ping[k] and sets "ping"; B waits, clears it, reads ping[k],
 * writes pong[k] and sets "pong"; A waits, clears it and reads pong[k]. */
#include "users.h"

#define ROUNDS 300

static uint32_t ping[ROUNDS], pong[ROUNDS];
static lfipc_event *e_ping, *e_pong;

static void *thread_b(void *arg)
{
	for (uint32_t k = 0; k < ROUNDS; k++) {
		CHECK_RC(lfipc_event_wait(e_ping, LFIPC_FOREVER), 0);
		CHECK_RC(lfipc_event_clear(e_ping), 0);
		CHECK(ping[k] == user_mix(k));
		pong[k] = user_mix(k + ROUNDS);
		CHECK_RC(lfipc_event_set(e_pong), 0);
	}
	return arg;
}

int main(void)
{
	lfipc_region *r = user_region();
	pthread_t b;

	CHECK_RC(lfipc_event_create(r, "ping", &e_ping), 0);
	CHECK_RC(lfipc_event_create(r, "pong", &e_pong), 0);
	b = user_spawn(thread_b, NULL);
	for (uint32_t k = 0; k < ROUNDS; k++) {
		ping[k] = user_mix(k);
		CHECK_RC(lfipc_event_set(e_ping), 0);
		CHECK_RC(lfipc_event_wait(e_pong, LFIPC_FOREVER), 0);
		CHECK_RC(lfipc_event_clear(e_pong), 0);
		CHECK(pong[k] == user_mix(k + ROUNDS));
	}
	user_join(b);
	CHECK(!lfipc_event_is_set(e_ping) && !lfipc_event_is_set(e_pong));
	lfipc_event_close(e_ping);
	lfipc_event_close(e_pong);
	lfipc_region_close(r);
	puts("ok");
	return 0;
}
