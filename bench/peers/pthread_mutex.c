/* SPDX-License-Identifier: MIT */
/*
 * pthread mutex in MAP_SHARED memory: PTHREAD_PROCESS_SHARED, and also
 * PTHREAD_MUTEX_ROBUST (the kernel releases it when its owner dies; the
 * next acquirer gets EOWNERDEAD and calls pthread_mutex_consistent).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>

#include "../bench.h"

static void *pm_open(bool robust)
{
	pthread_mutex_t *m = shmem(sizeof(*m));
	pthread_mutexattr_t ma;

	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	if (robust)
		pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(m, &ma);
	pthread_mutexattr_destroy(&ma);
	return m;
}

static void *pm_open_plain(void)
{
	return pm_open(false);
}

static void *pm_open_robust(void)
{
	return pm_open(true);
}

static int pm_acquire(void *l)
{
	int rc = pthread_mutex_lock(l);

	if (rc == EOWNERDEAD)
		return pthread_mutex_consistent(l) ? -1 : 1;
	return rc ? -1 : 0;
}

static int pm_release(void *l)
{
	return pthread_mutex_unlock(l) ? -1 : 0;
}

static void pm_close(void *l)
{
	shmem_free(l, sizeof(pthread_mutex_t));
}

#define PM_OPS                                                                 \
	.acquire = pm_acquire, .release = pm_release, .lock_close = pm_close

const struct peer peer_pthread_mutex = {
    .name = "pthread mutex (pshared)",
    .wait = "futex",
    .flags = PF_LOCK,
    .note = "owner death: a plain pshared mutex or a POSIX semaphore never "
	    "recovers (the waiter blocks forever), so only robust locks are "
	    "compared",
    .lock_open = pm_open_plain,
    PM_OPS,
};

const struct peer peer_pthread_mutex_robust = {
    .name = "pthread mutex (robust)",
    .wait = "futex",
    .flags = PF_LOCK | PF_ROBUST,
    .lock_open = pm_open_robust,
    PM_OPS,
};
