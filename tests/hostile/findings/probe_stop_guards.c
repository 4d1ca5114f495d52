/* child hammers barrier/sem (tracked)/cond ops; parent SIGSTOPs it at random
 * points and times every call of its own against timeout + 1 s grace + slice */
#define _GNU_SOURCE
#include <lfipc.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
static int64_t now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return (int64_t)t.tv_sec*1000000000+t.tv_nsec;}
static lfipc_barrier *b; static lfipc_sem *s; static lfipc_cond *c; static lfipc_region *r;
static long slow;
#define LIM (50LL*1000000)
#define T(expr, to) do { int64_t t0 = now(); int rc_ = (expr); int64_t d = now() - t0; \
	if (d > (to) + LIM) { slow++; printf("SLOW %s -> %d after %lld ms\n", #expr, rc_, (long long)(d/1000000)); } } while (0)
int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 50;
	if (lfipc_region_create(NULL, 1 << 20, 0, &r) || lfipc_barrier_create(r, "b", 2, &b) ||
	    lfipc_sem_create_ex(r, "s", 1, LFIPC_SEM_TRACK_HOLDERS, &s) || lfipc_cond_create(r, "c", NULL, &c))
		{ printf("setup\n"); return 2; }
	pid_t ch = fork();
	if (ch == 0) {
		for (;;) {
			lfipc_barrier_wait(b, 0); lfipc_barrier_reset(b);
			if (lfipc_sem_acquire(s, 0) == 0) lfipc_sem_release(s);
			if (lfipc_lock_acquire(lfipc_cond_lock(c), 1000000) == 0) {
				int rc = lfipc_cond_wait(c, 100000);
				if (rc != -ENOLCK) lfipc_lock_release(lfipc_cond_lock(c));
			}
			lfipc_region_recover(r);
		}
	}
	srand(getpid());
	for (int i = 0; i < rounds; i++) {
		usleep(rand() % 3000);
		kill(ch, SIGSTOP);
		T(lfipc_barrier_wait(b, 0), 0);
		T(lfipc_barrier_wait(b, 10000000), 10000000);
		T(lfipc_barrier_reset(b), 0);
		T(lfipc_barrier_abort(b), 0);
		T(lfipc_barrier_reset(b), 0);
		T(lfipc_sem_acquire(s, 0) == 0 ? lfipc_sem_release(s) : -1, 0);
		T(lfipc_sem_acquire(s, 5000000) == 0 ? lfipc_sem_release(s) : -1, 5000000);
		T(lfipc_region_recover(r), 0);
		{ int64_t t0 = now(); int rc = lfipc_lock_acquire(lfipc_cond_lock(c), 5000000);
		  if (rc == 0) { int w = lfipc_cond_wait(c, 5000000); int64_t d = now() - t0;
			if (d > 5000000 * 2 + LIM) { slow++; printf("SLOW cond_wait -> %d %lld ms\n", w, (long long)(d/1000000)); }
			if (w != -ENOLCK) lfipc_lock_release(lfipc_cond_lock(c)); } }
		kill(ch, SIGCONT);
	}
	kill(ch, SIGKILL); waitpid(ch, NULL, 0);
	printf("%d stop rounds, %ld slow calls\n", rounds, slow);
	return slow != 0;
}
