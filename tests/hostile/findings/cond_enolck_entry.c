/*
 * Probe (lib/cond.c + lib/sync.c): after lfipc_cond_wait() returns
 * -ENOLCK (its lock could not be re-taken within max(timeout, 1 s)
 * because another thread of the same process holds it), the waiter must
 * hold nothing: a following acquire must wait (RLock: -ETIMEDOUT), a
 * release must be -EPERM. A held-set entry left behind would let it in
 * (same process token in the word).
 *
 * Build (source tree, library built in build/normal):
 *   cc -O2 -Iinclude -o cond_enolck_entry \
 *      tests/hostile/findings/cond_enolck_entry.c \
 *      build/normal/.libs/liblfipc.a -lpthread
 * Run: ./cond_enolck_entry   (exit 1 and BUG when the waiter got in)
 */
#define _GNU_SOURCE
#include <lfipc.h>
#include <pthread.h>
#include <stdio.h>
#include <errno.h>
#include <stdatomic.h>
#include <unistd.h>

static lfipc_cond *c;
static _Atomic int u_holds, t_done;

static void *thr_u(void *a)
{
	(void)a;
	usleep(2000); /* T is inside cond_wait, the lock is free */
	if (lfipc_lock_acquire(lfipc_cond_lock(c), 1000000000LL))
		return NULL;
	atomic_store(&u_holds, 1);
	while (!atomic_load(&t_done))
		usleep(1000);
	lfipc_lock_release(lfipc_cond_lock(c));
	return NULL;
}

int main(void)
{
	lfipc_region *r;
	pthread_t u;
	if (lfipc_region_create(NULL, 1 << 20, 0, &r) ||
	    lfipc_cond_create(r, "c", NULL, &c))
		return 2;
	if (lfipc_lock_acquire(lfipc_cond_lock(c), 0))
		return 2;
	pthread_create(&u, NULL, thr_u, NULL);
	int w = lfipc_cond_wait(c, 10000000);
	int a = lfipc_lock_acquire(lfipc_cond_lock(c), 100000000);
	int rel = lfipc_lock_release(lfipc_cond_lock(c));
	atomic_store(&t_done, 1);
	pthread_join(u, NULL);
	printf("u held: %d; cond_wait -> %d; acquire -> %d; release -> %d\n",
	       atomic_load(&u_holds), w, a, rel);
	int bug = w == -ENOLCK && (a == 0 || (rel == 0 && a != 0));
	if (bug)
		printf("BUG: after -ENOLCK the waiter got into the lock U holds\n");
	return bug;
}
