#define _GNU_SOURCE
#include <lfipc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>
struct sh { _Atomic int inside; _Atomic long viol, acq, dead, other, slow, maxd; };
static struct sh *sh; static lfipc_lock *l;
static int64_t now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return (int64_t)t.tv_sec*1000000000+t.tv_nsec;}
static void *worker(void *a){ (void)a;
	for (;;) { int64_t t0 = now(); int rc = lfipc_lock_acquire(l, 20000000);
		{ long d = now() - t0; if (d > 20000000 + 200000000) atomic_fetch_add(&sh->slow, 1); long m = atomic_load(&sh->maxd); while (d > m && !atomic_compare_exchange_weak(&sh->maxd, &m, d)); }
		if (rc == -ETIMEDOUT) continue;
		if (rc == -EOWNERDEAD) { atomic_fetch_add(&sh->dead, 1); atomic_store(&sh->inside, 0); }
		else if (rc) { atomic_fetch_add(&sh->other, 1); continue; }
		if (atomic_exchange(&sh->inside, 1)) atomic_fetch_add(&sh->viol, 1);
		atomic_fetch_add(&sh->acq, 1);
		for (volatile int i = 0; i < rand() % 2000; i++);
		atomic_store(&sh->inside, 0);
		if (lfipc_lock_release(l)) atomic_fetch_add(&sh->other, 1);
	} return NULL; }
int main(int argc, char **argv){
	int kills = argc > 1 ? atoi(argv[1]) : 300; lfipc_region *r;
	sh = mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0);
	if (lfipc_region_create(NULL, 1<<20, 0, &r) || lfipc_lock_create(r, "l", argc > 2, &l)) return 2;
	pid_t p[4];
	for (int i = 0; i < 4; i++) if (!(p[i] = fork())) { pthread_t t; srand(getpid()); pthread_create(&t, NULL, worker, NULL); worker(NULL); }
	for (int k = 0; k < kills; k++) { usleep(1000 + rand() % 5000); int i = rand() % 4;
		kill(p[i], SIGKILL); waitpid(p[i], NULL, 0);
		if (!(p[i] = fork())) { pthread_t t; srand(getpid()); pthread_create(&t, NULL, worker, NULL); worker(NULL); } }
	usleep(100000); long before = sh->acq; usleep(300000);
	printf("kills %d: acquisitions %ld, owner-dead %ld, violations %ld, other errors %ld, slow %ld, progress after %ld, max acquire %ld ms\n", kills, sh->acq, sh->dead, sh->viol, sh->other, sh->slow, sh->acq - before, sh->maxd / 1000000);
	for (int i = 0; i < 4; i++) { kill(p[i], SIGKILL); waitpid(p[i], NULL, 0); }
	return sh->viol || sh->other || sh->acq == before;
}
