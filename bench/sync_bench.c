/* SPDX-License-Identifier: MIT */
/*
 * sync_bench - uncontended Lock and Semaphore acquire+release against
 * process-shared pthread mutexes and POSIX semaphores, a two-process
 * semaphore ping-pong, and the time from a holder's SIGKILL to the next
 * acquirer's -EOWNERDEAD. Prints medians and min..max of 7 runs.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lfipc/region.h>
#include <lfipc/sync.h>

#define RUNS 7
#define ITERS 2000000

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void report(const char *what, double *v, const char *unit)
{
	qsort(v, RUNS, sizeof(*v), cmp);
	printf("%-34s median %8.1f %s  (min %.1f, max %.1f)\n", what,
	       v[RUNS / 2], unit, v[0], v[RUNS - 1]);
}

int main(void)
{
	lfipc_region *r;
	lfipc_lock *l;
	pthread_mutex_t *m;
	pthread_mutexattr_t ma;
	sem_t *sem;
	double v[RUNS], t0;

	if (lfipc_region_create(NULL, 1 << 20, 0, &r) ||
	    lfipc_lock_create(r, "bench", false, &l))
		return 1;
	m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		 -1, 0);
	if (m == MAP_FAILED)
		return 1;
	sem = (sem_t *)(m + 2);

	for (int k = 0; k < RUNS; k++) {
		t0 = now();
		for (int i = 0; i < ITERS; i++) {
			lfipc_lock_acquire(l, LFIPC_FOREVER);
			lfipc_lock_release(l);
		}
		v[k] = (now() - t0) / ITERS;
	}
	report("lfipc Lock acquire+release", v, "ns");

	for (int robust = 0; robust < 2; robust++) {
		pthread_mutexattr_init(&ma);
		pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
		if (robust)
			pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
		pthread_mutex_init(&m[robust], &ma);
		for (int k = 0; k < RUNS; k++) {
			t0 = now();
			for (int i = 0; i < ITERS; i++) {
				pthread_mutex_lock(&m[robust]);
				pthread_mutex_unlock(&m[robust]);
			}
			v[k] = (now() - t0) / ITERS;
		}
		report(robust ? "pthread robust pshared mutex"
			      : "pthread pshared mutex",
		       v, "ns");
	}

	sem_init(sem, 1, 1);
	for (int k = 0; k < RUNS; k++) {
		t0 = now();
		for (int i = 0; i < ITERS; i++) {
			sem_wait(sem);
			sem_post(sem);
		}
		v[k] = (now() - t0) / ITERS;
	}
	report("sem_wait+sem_post (pshared)", v, "ns");

	for (unsigned flags = 0; flags <= LFIPC_SEM_TRACK_HOLDERS;
	     flags += LFIPC_SEM_TRACK_HOLDERS) {
		lfipc_sem *ls;

		if (lfipc_sem_create_ex(r, flags ? "tsem" : "sem", 1, flags,
					&ls))
			return 1;
		for (int k = 0; k < RUNS; k++) {
			t0 = now();
			for (int i = 0; i < ITERS; i++) {
				lfipc_sem_acquire(ls, LFIPC_FOREVER);
				lfipc_sem_release(ls);
			}
			v[k] = (now() - t0) / ITERS;
		}
		report(flags ? "lfipc Semaphore (tracked) acq+rel"
			     : "lfipc Semaphore acquire+release",
		       v, "ns");
		lfipc_sem_close(ls);
	}

	/* Ping-pong between two processes over two semaphores: one round
	 * trip = two hand-offs. */
	{
		lfipc_sem *ping, *pong;
		sem_t *pp = (sem_t *)(m + 4), *pq = pp + 1;
		enum { RT = 20000 };

		if (lfipc_sem_create(r, "ping", 0, false, &ping) ||
		    lfipc_sem_create(r, "pong", 0, false, &pong))
			return 1;
		sem_init(pp, 1, 0);
		sem_init(pq, 1, 0);
		for (int lib = 0; lib < 2; lib++) {
			pid_t pid = fork();

			if (pid == 0) {
				for (int i = 0; i < RUNS * RT; i++) {
					if (lib) {
						sem_wait(pp);
						sem_post(pq);
					} else {
						lfipc_sem_acquire(
						    ping, LFIPC_FOREVER);
						lfipc_sem_release(pong);
					}
				}
				_exit(0);
			}
			for (int k = 0; k < RUNS; k++) {
				t0 = now();
				for (int i = 0; i < RT; i++) {
					if (lib) {
						sem_post(pp);
						sem_wait(pq);
					} else {
						lfipc_sem_release(ping);
						lfipc_sem_acquire(
						    pong, LFIPC_FOREVER);
					}
				}
				v[k] = (now() - t0) / RT;
			}
			waitpid(pid, NULL, 0);
			report(lib ? "POSIX sem ping-pong round trip"
				   : "lfipc Semaphore ping-pong round trip",
			       v, "ns");
		}
		lfipc_sem_close(ping);
		lfipc_sem_close(pong);
	}

	for (int k = 0; k < RUNS; k++) {
		pid_t pid = fork();
		int rc;

		if (pid == 0) {
			lfipc_lock_acquire(l, LFIPC_FOREVER);
			for (;;)
				pause();
		}
		while (!lfipc_lock_locked(l))
			usleep(100);
		t0 = now();
		kill(pid, SIGKILL);
		rc = lfipc_lock_acquire(l, LFIPC_FOREVER);
		v[k] = (now() - t0) / 1e6;
		waitpid(pid, NULL, 0);
		if (rc != -EOWNERDEAD)
			return 2;
		lfipc_lock_release(l);
	}
	report("SIGKILL -> next -EOWNERDEAD", v, "ms");
	lfipc_lock_close(l);
	lfipc_region_close(r);
	return 0;
}
