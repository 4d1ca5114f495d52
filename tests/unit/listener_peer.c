/* SPDX-License-Identifier: MIT */
/*
 * listener_peer - an unrelated client for the listener tests (started with
 * fork+exec, so it shares nothing with the test but what it opens).
 *
 *   listener_peer REGION LISTENER ID COUNT
 *	Open the region by name, connect to the listener (waiting up to 60 s
 *	to be accepted: the test serves its peers one after another, so the
 *	last waits for all the others' exchanges, which a loaded sanitizer
 *	build makes slow), send COUNT messages "<ID> <seq>" with sequence
 *	numbers 0..COUNT-1, then receive one reply and check that it is the
 *	decimal sum of the sequence numbers plus ID; close. Exit 0 on success,
 *	10+n on failure n.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lfipc/listener.h>
#include <lfipc/region.h>

#define WAIT_NS ((int64_t)60 * 1000 * 1000 * 1000)

int main(int argc, char **argv)
{
	lfipc_region *r;
	lfipc_conn *c;
	char buf[64], want[32];
	long id, count;
	size_t len;
	long long sum = 0;

	if (argc != 5)
		return 2;
	id = atol(argv[3]);
	count = atol(argv[4]);
	if (lfipc_region_open(argv[1], &r) != 0)
		return 10;
	if (lfipc_listener_connect(r, argv[2], WAIT_NS, &c) != 0)
		return 11;
	for (long i = 0; i < count; i++) {
		int n = snprintf(buf, sizeof(buf), "%ld %ld", id, i);

		if (lfipc_conn_send(c, buf, (size_t)n, WAIT_NS) != 0)
			return 12;
		sum += i;
	}
	if (lfipc_conn_recv(c, buf, sizeof(buf) - 1, &len, WAIT_NS) != 0)
		return 13;
	buf[len] = '\0';
	snprintf(want, sizeof(want), "%lld", sum + id);
	if (strcmp(buf, want) != 0)
		return 14;
	lfipc_conn_close(c);
	lfipc_region_close(r);
	return 0;
}
