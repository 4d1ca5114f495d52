/*
 * FINDING (exclusion violation, lib/sync.c held set): the thread-local
 * set of held locks is keyed by the lock memory's address, and an entry
 * is trusted when the shared word carries this process's token. A thread
 * T that still has an entry for address X (it held an RLock there when
 * the region was closed, or when the lock was removed) and later meets a
 * different lock at the same address X that another thread U of the same
 * process holds (same token: same process, same proc slot) takes it as
 * its own: lfipc_lock_acquire() on the RLock returns 0 at once (depth 2)
 * while U holds it, and lfipc_lock_release() by T releases U's lock.
 *
 * Here: region A, T acquires RLock "l" and the region is closed (the
 * mapping goes); region B of the same size is created and mapped at the
 * same address (mmap reuses the hole), U acquires RLock "l" of B, T then
 * acquires it too.
 *
 * Build (source tree, library built in build/normal):
 *   cc -O2 -Iinclude -o held_set_stale_address \
 *      tests/hostile/findings/held_set_stale_address.c \
 *      build/normal/.libs/liblfipc.a -lpthread
 * Run: ./held_set_stale_address   (exit 1 and BUG when T got the lock U holds)
 * Fix: key the entry by something a new lock cannot share: e.g. drop a
 * thread's entries of a region when the region (or the lock object) is
 * closed/removed, or key by (region generation/identity, offset) plus a
 * per-lock creation generation stored in the lock memory and copied into
 * the entry, compared on every use.
 */
#define _GNU_SOURCE
#include <lfipc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <unistd.h>

static lfipc_lock *la, *lb;
static pthread_barrier_t pb;
static int t_rc = 99, t_rel = 99;

static void *thr_t(void *a)
{
	(void)a;
	printf("T acquire A -> %d\n", lfipc_lock_acquire(la, 1000000000LL));
	pthread_barrier_wait(&pb); /* A closed, B made, U holds B's lock */
	pthread_barrier_wait(&pb);
	t_rc = lfipc_lock_acquire(lb, 200000000LL); /* must be -ETIMEDOUT */
	t_rel = lfipc_lock_release(lb);             /* must be -EPERM */
	return NULL;
}

int main(void)
{
	lfipc_region *ra, *rb;
	pthread_t t;
	if (lfipc_region_create(NULL, 1 << 20, 0, &ra) ||
	    lfipc_lock_create(ra, "l", true, &la))
		return 2;
	pthread_barrier_init(&pb, NULL, 2);
	pthread_create(&t, NULL, thr_t, NULL);
	usleep(100000);
	lfipc_lock_close(la);
	lfipc_region_close(ra); /* misuse or a crash path: held lock unmapped */
	if (lfipc_region_create(NULL, 1 << 20, 0, &rb) ||
	    lfipc_lock_create(rb, "l", true, &lb))
		return 2;
	printf("U acquire B -> %d\n", lfipc_lock_acquire(lb, 1000000000LL));
	pthread_barrier_wait(&pb);
	pthread_barrier_wait(&pb);
	pthread_join(t, NULL);
	printf("T acquire B while U holds it -> %d (want -ETIMEDOUT %d)\n", t_rc, -ETIMEDOUT);
	printf("T release B -> %d (want -EPERM %d)\n", t_rel, -EPERM);
	int bug = t_rc == 0 || t_rel == 0;
	if (bug)
		printf("BUG: thread T was let into a lock thread U holds\n");
	return bug;
}
