/* SPDX-License-Identifier: MIT */
/* Control for the ASan check: a user bug that only the library's own
 * access shows. The message buffer is 7 bytes on the heap, but put is
 * told it has 8, so lfipc_queue_put() reads one byte past it; an ASan
 * build must report the heap-buffer-overflow (libc's memcpy, called by
 * the uninstrumented library, is intercepted). If this program ran
 * clean, the ASan checks of the other programs would prove nothing. */
#include "users.h"

int main(void)
{
	lfipc_region *r = user_region();
	char *msg = malloc(7);
	lfipc_queue *q;

	CHECK(msg != NULL);
	memcpy(msg, "abcdefg", 7);
	CHECK_RC(lfipc_queue_create(r, "q", 4, 8, 0, &q), 0);
	CHECK_RC(lfipc_queue_put(q, msg, 8, LFIPC_NOWAIT), 0); /* the bug */
	free(msg);
	lfipc_queue_close(q);
	lfipc_region_close(r);
	puts("ok");
	return 0;
}
