/* SPDX-License-Identifier: MIT */
/*
 * mutex + condition variable queue: a RCAP-slot ring in MAP_SHARED memory
 * guarded by a process-shared pthread mutex with two process-shared
 * condition variables, one ring per direction: what most people write by
 * hand.
 */
#include "config.h"

#include <pthread.h>
#include <string.h>

#include "../bench.h"

struct mcq {
	pthread_mutex_t m;
	pthread_cond_t ne, nf;
	uint64_t head, tail;
	char slot[RCAP][MAXMSG];
};

static void *mcq_open(size_t msz)
{
	struct mcq *q = shmem(2 * sizeof(*q));
	pthread_mutexattr_t ma;
	pthread_condattr_t ca;

	(void)msz;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_condattr_init(&ca);
	pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
	for (int i = 0; i < 2; i++) {
		pthread_mutex_init(&q[i].m, &ma);
		pthread_cond_init(&q[i].ne, &ca);
		pthread_cond_init(&q[i].nf, &ca);
	}
	return q;
}

static int mcq_send(void *ch, int d, const void *m, size_t n)
{
	struct mcq *q = (struct mcq *)ch + d;

	pthread_mutex_lock(&q->m);
	while (q->tail - q->head == RCAP)
		pthread_cond_wait(&q->nf, &q->m);
	memcpy(q->slot[q->tail % RCAP], m, n);
	q->tail++;
	pthread_cond_signal(&q->ne);
	pthread_mutex_unlock(&q->m);
	return 0;
}

static int mcq_recv(void *ch, int d, void *m, size_t n)
{
	struct mcq *q = (struct mcq *)ch + d;

	pthread_mutex_lock(&q->m);
	while (q->tail == q->head)
		pthread_cond_wait(&q->ne, &q->m);
	memcpy(m, q->slot[q->head % RCAP], n);
	q->head++;
	pthread_cond_signal(&q->nf);
	pthread_mutex_unlock(&q->m);
	return 0;
}

static void mcq_close(void *ch)
{
	shmem_free(ch, 2 * sizeof(struct mcq));
}

const struct peer peer_mutex_cond = {
    .name = "mutex+cond queue",
    .wait = "futex",
    .flags = PF_CHAN | PF_MPMC,
    .open = mcq_open,
    .send = mcq_send,
    .recv = mcq_recv,
    .close = mcq_close,
};
