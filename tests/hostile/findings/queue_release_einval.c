/*
 * FINDING (wrong error code; lib/queue.c, owner r-queue): when another
 * process rewrote the word of a slot that this process peeked (or
 * reserved), lfipc_queue_release() (and lfipc_queue_commit()) return
 * -EINVAL, which their headers reserve for a caller error ("msg is not a
 * message of this queue peeked by this process"); lfipc_queue_commit()
 * even documents -EPROTO for exactly this case ("another process
 * overwrote the slot's state"). release/commit compare the slot word's
 * claim with this process's token and report any mismatch as -EINVAL
 * (queue.c lfipc_queue_release: `if (wclaim(w) != (tok | CL_R)) return
 * -EINVAL;`, lfipc_queue_commit the same). The handle does not remember
 * which slots it handed out, so it cannot tell misuse from corruption.
 * Found by tests/hostile/test_hostile (flips of the slot word while a
 * victim held a peek: "queue_release returned -22: undocumented error
 * code"); still so with r-queue 777f114.
 *
 * The slot word is the first 8 bytes of the slot, 16 bytes before the
 * message (struct qslot in lib/queue.c: word, len, data).
 *
 * Build (from the source tree, library built out of tree in build/):
 *   cc -O2 -Iinclude -o queue_release_einval \
 *      tests/hostile/findings/queue_release_einval.c build/.libs/liblfipc.a -lpthread
 * Run: ./queue_release_einval   (exit status 1 and "BUG" on -EINVAL)
 */
#define _GNU_SOURCE
#include <lfipc.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

int main(void)
{
	lfipc_region *r;
	lfipc_queue *q;
	const void *msg;
	size_t len;
	int rc;

	if (lfipc_region_create(NULL, 1 << 20, 0, &r) ||
	    lfipc_queue_create(r, "q", 4, 16, 0, &q) ||
	    lfipc_queue_put(q, "hello", 5, LFIPC_NOWAIT) ||
	    lfipc_queue_peek(q, &msg, &len, LFIPC_NOWAIT))
		return 2;
	/* What a peer does: the slot word becomes garbage. */
	__atomic_store_n((uint64_t *)((const char *)msg - 16),
			 UINT64_C(0xdeadbeefdeadbeef), __ATOMIC_SEQ_CST);
	rc = lfipc_queue_release(q, msg);
	printf("%s: lfipc_queue_release -> %d\n",
	       rc == -EINVAL ? "BUG (-EINVAL for corruption, not misuse)"
			     : "ok",
	       rc);
	return rc == -EINVAL;
}
