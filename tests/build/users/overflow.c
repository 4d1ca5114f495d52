/* SPDX-License-Identifier: MIT */
/* Control for the ASan check: a user bug that only the library's own
 * access shows. The message buffer is OVERFLOW_LEN - 1 bytes on the heap,
 * but put is told it has OVERFLOW_LEN, so lfipc_queue_put() reads one
 * byte past it; an ASan build must report the heap-buffer-overflow (libc's
 * memcpy, called by the uninstrumented library, is intercepted). If this
 * program ran clean, the ASan checks of the other programs would prove
 * nothing. Here 8 bytes; overflow33.c builds this file at 33 bytes, a
 * length the library otherwise copies inline with fixed-size moves
 * (msg_copy(), lib/internal/queue.h), which only a call of memcpy in a
 * process with ASan makes visible. */
#include "users.h"

#ifndef OVERFLOW_LEN
#define OVERFLOW_LEN 8
#endif

int main(void)
{
	lfipc_region *r = user_region();
	char *msg = malloc(OVERFLOW_LEN - 1);
	lfipc_queue *q;

	CHECK(msg != NULL);
	memset(msg, 'a', OVERFLOW_LEN - 1);
	CHECK_RC(lfipc_queue_create(r, "q", 4, OVERFLOW_LEN, 0, &q), 0);
	/* the bug */
	CHECK_RC(lfipc_queue_put(q, msg, OVERFLOW_LEN, LFIPC_NOWAIT), 0);
	free(msg);
	lfipc_queue_close(q);
	lfipc_region_close(r);
	puts("ok");
	return 0;
}
