/* SPDX-License-Identifier: MIT */
/* POSIX sem_t in MAP_SHARED memory, sem_init(.., pshared = 1, 1), as a lock. */
#include "config.h"

#include <errno.h>
#include <semaphore.h>

#include "../bench.h"

static void *ps_open(void)
{
	sem_t *s = shmem(sizeof(*s));

	sem_init(s, 1, 1);
	return s;
}

static int ps_acquire(void *l)
{
	while (sem_wait(l))
		if (errno != EINTR)
			return -1;
	return 0;
}

static int ps_release(void *l)
{
	return sem_post(l) ? -1 : 0;
}

static void ps_close(void *l)
{
	sem_destroy(l);
	shmem_free(l, sizeof(sem_t));
}

const struct peer peer_posix_sem = {
    .name = "POSIX sem_t",
    .wait = "futex",
    .flags = PF_LOCK | PF_NO_OWNER,
    .lock_open = ps_open,
    .acquire = ps_acquire,
    .release = ps_release,
    .lock_close = ps_close,
};
