/* SPDX-License-Identifier: MIT */
/*
 * liburcu wfcqueue: an in-process (threads only) unbounded queue of
 * malloc'ed nodes, busy-polled. Producers stop U_AHEAD messages ahead of
 * the consumers (counted in batches of U_BATCH) so that memory stays
 * bounded, as a real user must.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "../bench.h"

#if defined(HAVE_URCU) && !defined(BENCH_TSAN)
#define _LGPL_SOURCE 1
#include <urcu/wfcqueue.h>

struct unode {
	struct cds_wfcq_node n;
	char data[];
};
_Static_assert(offsetof(struct unode, n) == 0, "node first");

struct uq {
	struct cds_wfcq_head h;
	char pad1[64];
	struct cds_wfcq_tail t;
	char pad2[64];
	_Atomic long sent;
	char pad3[64];
	_Atomic long done;
};
static _Thread_local long u_sent[2], u_done[2];
#define U_BATCH 64
#define U_AHEAD 4096

static void *urcu_open(size_t msz)
{
	struct uq *q;

	(void)msz;
	if (posix_memalign((void **)&q, 64, 2 * sizeof(*q)))
		return NULL;
	for (int i = 0; i < 2; i++) {
		cds_wfcq_init(&q[i].h, &q[i].t);
		atomic_store(&q[i].sent, 0);
		atomic_store(&q[i].done, 0);
	}
	return q;
}

static int urcu_send(void *ch, int d, const void *m, size_t n)
{
	struct uq *q = (struct uq *)ch + d;
	struct unode *e = malloc(sizeof(*e) + n);

	if (!e)
		return -1;
	cds_wfcq_node_init(&e->n);
	memcpy(e->data, m, n);
	cds_wfcq_enqueue(&q->h, &q->t, &e->n);
	if (++u_sent[d] % U_BATCH == 0) {
		atomic_fetch_add(&q->sent, U_BATCH);
		while (atomic_load(&q->sent) - atomic_load(&q->done) > U_AHEAD)
			if (bench_spin())
				return -1;
	}
	return 0;
}

static int urcu_recv(void *ch, int d, void *m, size_t n)
{
	struct uq *q = (struct uq *)ch + d;
	struct cds_wfcq_node *nd;
	struct unode *e;

	while (!(nd = cds_wfcq_dequeue_blocking(&q->h, &q->t)))
		if (bench_spin())
			return -1;
	e = (struct unode *)(void *)nd; /* n is the first member */
	memcpy(m, e->data, n);
	free(e);
	if (++u_done[d] % U_BATCH == 0)
		atomic_fetch_add(&q->done, U_BATCH);
	return 0;
}

static void urcu_close(void *ch)
{
	struct uq *q = ch;
	struct cds_wfcq_node *nd;

	for (int i = 0; i < 2; i++) {
		while ((nd = cds_wfcq_dequeue_blocking(&q[i].h, &q[i].t)))
			free(nd); /* n is the first member of the node */
		cds_wfcq_destroy(&q[i].h, &q[i].t);
	}
	free(q);
}

#define URCU_OPS                                                               \
	.open = urcu_open, .send = urcu_send, .recv = urcu_recv,               \
	.close = urcu_close,                                                   \
	.note = "liburcu wfcqueue is in-process: its workers are threads of "  \
		"one process, not processes; malloc per message"
#elif defined(HAVE_URCU)
#define URCU_OPS                                                               \
	.missing = "liburcu wfcqueue skipped: built with ThreadSanitizer, "    \
		   "which cannot see liburcu's atomics"
#else
#define URCU_OPS                                                               \
	.missing = "liburcu not found at configure time: wfcqueue skipped "    \
		   "(apt-get install liburcu-dev, reconfigure)"
#endif

const struct peer peer_urcu_wfcq = {
    .name = "liburcu wfcqueue (threads)",
    .wait = "busy",
    .flags = PF_CHAN | PF_MPMC | PF_THREADS,
    URCU_OPS,
};
