/* SPDX-License-Identifier: MIT */
/*
 * test_queue_lengths.c - message lengths through every copy path of the
 * Queue: single and bulk calls, MPMC and single-producer/consumer modes,
 * the small messages the library copies with fixed-size moves (4-64
 * bytes, in steps of 4, 8, 16 and 32) and the longer ones it hands to
 * memcpy. Part of the test_queue
 * program (its own suite).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "common/qtest.h"
#include "common/testhelp.h"

TestSuite(queue_lengths, .init = qt_setup, .fini = qt_teardown,
	  .timeout = 120);

/* Every length from 0 to the message size comes out byte for byte, with
 * its length, through single and bulk calls, in MPMC and in SP/SC mode
 * (small messages are copied by fixed-size moves that may overlap). */
Test(queue_lengths, every_length_up_to_the_message_size_comes_out_intact)
{
	static const unsigned modes[] = {
	    0, LFIPC_QUEUE_SINGLE_PRODUCER | LFIPC_QUEUE_SINGLE_CONSUMER};
	enum { MS = 80 };

	for (int m = 0; m < 2; m++) {
		lfipc_queue *q;
		char name[8];
		unsigned char in[MS + 1][MS], out[MS + 1][MS + 8];
		const void *msgs[MS + 1];
		size_t lens[MS + 1], olens[MS + 1];

		snprintf(name, sizeof(name), "q%d", m);
		cr_assert_eq(
		    lfipc_queue_create(qt_r, name, 128, MS, modes[m], &q), 0);
		for (int n = 0; n <= MS; n++) {
			for (int i = 0; i < MS; i++)
				in[n][i] = (unsigned char)(n * 31 + i + 1);
			msgs[n] = in[n];
			lens[n] = (size_t)n;
		}
		/* single put, single get */
		for (int n = 0; n <= MS; n++) {
			size_t len = 999;

			memset(out[n], 0xee, sizeof(out[n]));
			cr_assert_eq(lfipc_queue_put(q, in[n], (size_t)n,
						     LFIPC_NOWAIT),
				     0);
			cr_assert_eq(lfipc_queue_get(q, out[n], MS, &len,
						     LFIPC_NOWAIT),
				     0);
			cr_assert_eq(len, (size_t)n);
			cr_assert_eq(memcmp(out[n], in[n], (size_t)n), 0);
			for (int i = n; i < MS + 8; i++)
				cr_assert_eq(out[n][i], 0xee,
					     "length %d: byte %d written", n,
					     i);
		}
		/* bulk put, bulk get */
		memset(out, 0xee, sizeof(out));
		cr_assert_eq(lfipc_queue_put_many(q, msgs, lens, MS + 1,
						  LFIPC_NOWAIT),
			     MS + 1);
		cr_assert_eq(lfipc_queue_get_many(q, out, MS + 8, olens,
						  MS + 1, LFIPC_NOWAIT),
			     MS + 1);
		for (int n = 0; n <= MS; n++) {
			cr_assert_eq(olens[n], (size_t)n);
			cr_assert_eq(memcmp(out[n], in[n], (size_t)n), 0);
			for (int i = n; i < MS + 8; i++)
				cr_assert_eq(out[n][i], 0xee,
					     "bulk length %d: byte %d written",
					     n, i);
		}
		cr_assert(lfipc_queue_empty(q));
		lfipc_queue_close(q);
	}
}
