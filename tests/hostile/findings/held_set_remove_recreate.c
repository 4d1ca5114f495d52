/*
 * FINDING R2-1, variant without unmapping (lib/sync.c held set): thread T
 * holds RLock "l"; the lock is removed (lfipc_object_remove, T never uses
 * its old handle again) and RLock "m" is created in the freed block, at
 * the same address; thread U of the same process acquires "m"; T's stale
 * held-set entry (same address, the word carries this process's token)
 * lets T acquire "m" at once and release U's hold. See README.md R2-1.
 *
 * Build (source tree, library built in build/normal):
 *   cc -O2 -Iinclude -o held_set_remove_recreate \
 *      tests/hostile/findings/held_set_remove_recreate.c \
 *      build/normal/.libs/liblfipc.a -lpthread
 * Run: ./held_set_remove_recreate   (exit 1 and BUG on main 1a7fff6)
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
	lfipc_lock_close(la); printf("remove -> %d\n", lfipc_object_remove(ra, "l")); rb = ra; if (lfipc_lock_create(rb, "m", true, &lb)) return 3; goto made;
	lfipc_region_close(ra); /* misuse or a crash path: held lock unmapped */
	if (lfipc_region_create(NULL, 1 << 20, 0, &rb) ||
	    lfipc_lock_create(rb, "l", true, &lb))
		return 2;
made:
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
