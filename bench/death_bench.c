/* SPDX-License-Identifier: MIT */
/*
 * death_bench.c - Lock owner SIGKILLed: time until the next acquirer,
 * asleep in acquire, returns -EOWNERDEAD. Against a glibc robust
 * process-shared pthread mutex in the same run (the kernel wakes its
 * waiter from the same robust-list walk), trials interleaved round-robin
 * so every mechanism sees the same load.
 *
 * Per trial: a holder process acquires and pauses; a waiter process
 * announces itself and blocks in acquire; the parent waits 2 ms (the
 * waiter is asleep: the wait layer spins 4 us at most), stamps t0 and
 * SIGKILLs the holder; the waiter stamps its return. Sample = return - t0.
 *
 * Modes: push (lfipc Lock, death word), fallback (lfipc Lock with the
 * push disabled in the waiter: sliced OFD probes), robust (pthread).
 *
 * Usage: death_bench [-n trials-per-mode] [-m modes] [-r] (default 200,
 * push,fallback,robust; -r runs the measured processes SCHED_FIFO 20, so
 * that other tenants of a loaded machine delay them less). Not
 * installed, not run by make check.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lfipc/region.h>
#include <lfipc/sync.h>

#include "internal/wait.h"

enum { M_PUSH, M_FALLBACK, M_ROBUST, M_N };
static const char *mname[M_N] = {"lfipc Lock, death push",
				 "lfipc Lock, fallback slices",
				 "pthread robust mutex"};
static const char *mkey[M_N] = {"push", "fallback", "robust"};

struct shm {
	pthread_mutex_t mu;
	_Atomic int held, about, rc;
	_Atomic int64_t t_ret;
};

static struct shm *sh;
static lfipc_lock *lk;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int acq(int m)
{
	int rc;

	if (m == M_ROBUST) {
		rc = pthread_mutex_lock(&sh->mu);
		if (rc == EOWNERDEAD)
			pthread_mutex_consistent(&sh->mu);
		return rc == 0 ? 0 : rc == EOWNERDEAD ? 1 : -1;
	}
	rc = lfipc_lock_acquire(lk, LFIPC_FOREVER);
	return rc == 0 ? 0 : rc == -EOWNERDEAD ? 1 : -1;
}

static void rel(int m)
{
	if (m == M_ROBUST)
		pthread_mutex_unlock(&sh->mu);
	else
		lfipc_lock_release(lk);
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double trial(int m)
{
	pid_t h, w;
	int64_t t0;
	int st;

	atomic_store(&sh->held, 0);
	atomic_store(&sh->about, 0);
	atomic_store(&sh->rc, -9);
	h = fork();
	if (h == 0) {
		if (acq(m) != 0)
			_exit(1);
		atomic_store(&sh->held, 1);
		for (;;)
			pause();
	}
	while (!atomic_load(&sh->held))
		sched_yield();
	w = fork();
	if (w == 0) {
		int rc;

		lfipc__wait_force_fallback(m == M_FALLBACK);
		(void)lfipc__wait_have_waitv();
		/* register this child (slot, death word) before the clock */
		if (m != M_ROBUST && lfipc_lock_acquire(lk, LFIPC_NOWAIT) !=
					 -EAGAIN)
			_exit(1);
		atomic_store(&sh->about, 1);
		rc = acq(m);
		atomic_store(&sh->t_ret, now_ns());
		atomic_store(&sh->rc, rc);
		if (rc >= 0)
			rel(m);
		_exit(0);
	}
	while (!atomic_load(&sh->about))
		sched_yield();
	nanosleep(&(struct timespec){0, 2000000}, NULL);
	t0 = now_ns();
	kill(h, SIGKILL);
	waitpid(h, &st, 0);
	waitpid(w, &st, 0);
	if (atomic_load(&sh->rc) != 1)
		return -1;
	return (double)(atomic_load(&sh->t_ret) - t0) / 1e3;
}

int main(int argc, char **argv)
{
	int n = 200, opt;
	bool on[M_N] = {true, true, true};
	double *v[M_N];
	int nv[M_N] = {0}, fails[M_N] = {0};
	pthread_mutexattr_t ma;
	lfipc_region *r;

	while ((opt = getopt(argc, argv, "n:m:r")) != -1) {
		if (opt == 'r') {
			struct sched_param sp = {.sched_priority = 20};

			if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0)
				perror("sched_setscheduler");
		} else if (opt == 'n') {
			n = atoi(optarg);
		} else if (opt == 'm') {
			for (int i = 0; i < M_N; i++)
				on[i] = strstr(optarg, mkey[i]) != NULL;
		} else {
			fprintf(stderr, "usage: %s [-n trials] [-m modes] [-r]\n",
				argv[0]);
			return 2;
		}
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&sh->mu, &ma);
	if (lfipc_region_create(NULL, (size_t)1 << 20, 0, &r) ||
	    lfipc_lock_create(r, "death", false, &lk))
		return 1;
	for (int m = 0; m < M_N; m++)
		v[m] = calloc((size_t)n, sizeof(double));
	for (int t = 0; t < n; t++)
		for (int m = 0; m < M_N; m++) {
			double x;

			if (!on[m])
				continue;
			x = trial(m);
			if (x < 0)
				fails[m]++;
			else
				v[m][nv[m]++] = x;
		}
	printf("owner SIGKILLed -> waiter returns EOWNERDEAD, us "
	       "(%d trials per mode, interleaved)\n",
	       n);
	printf("%-30s %8s %8s %8s %8s %8s %6s\n", "mechanism", "p50", "p90",
	       "p99", "max", "p50/rob", "fail");
	for (int m = 0; m < M_N; m++)
		qsort(v[m], (size_t)nv[m], sizeof(double), cmpd);
	for (int m = 0; m < M_N; m++) {
		double p50, rob;

		if (!on[m] || nv[m] == 0)
			continue;
		p50 = v[m][nv[m] / 2];
		rob = nv[M_ROBUST] ? v[M_ROBUST][nv[M_ROBUST] / 2] : 0;
		printf("%-30s %8.0f %8.0f %8.0f %8.0f %8.2f %6d\n", mname[m],
		       p50, v[m][nv[m] * 9 / 10], v[m][nv[m] * 99 / 100],
		       v[m][nv[m] - 1], rob > 0 ? p50 / rob : 0, fails[m]);
	}
	lfipc_lock_close(lk);
	lfipc_region_close(r);
	return 0;
}
