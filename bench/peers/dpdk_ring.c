/* SPDX-License-Identifier: MIT */
/*
 * DPDK rte_ring in MAP_SHARED memory: rte_ring_init() on memory sized by
 * rte_ring_get_memsize_elem(), messages copied in as ring elements
 * (rte_ring_*_elem, element size = message size); busy-polled. No EAL:
 * rte_eal_init is never called and no hugepages are used; rte_ring_init
 * and the inline enqueue/dequeue need no EAL state. Capacity RCAP - 1 (no
 * RING_F_EXACT_SZ).
 */
#include "config.h"

#include "../bench.h"

#ifdef HAVE_DPDK
#include <rte_ring.h>
#include <rte_ring_elem.h>

struct drg {
	struct rte_ring *r[2];
	size_t sz;
};

static void *dpdk_open(size_t msz, unsigned flags)
{
	ssize_t sz = rte_ring_get_memsize_elem((unsigned)msz, RCAP);
	struct drg *c;

	if (sz < 0)
		return NULL;
	c = shmem(sizeof(*c));
	c->sz = (size_t)sz;
	for (int i = 0; i < 2; i++) {
		c->r[i] = shmem(c->sz);
		if (rte_ring_init(c->r[i],
				  i ? "lfipc-bench-1" : "lfipc-bench-0", RCAP,
				  flags)) {
			for (int k = 0; k <= i; k++)
				shmem_free(c->r[k], c->sz);
			shmem_free(c, sizeof(*c));
			return NULL;
		}
	}
	return c;
}

static void *dpdk_open_sp(size_t msz)
{
	return dpdk_open(msz, RING_F_SP_ENQ | RING_F_SC_DEQ);
}

static void *dpdk_open_mp(size_t msz)
{
	return dpdk_open(msz, 0);
}

static int dpdk_send(void *ch, int d, const void *m, size_t n)
{
	struct drg *c = ch;

	while (rte_ring_enqueue_elem(c->r[d], (void *)(uintptr_t)m,
				     (unsigned)n) != 0)
		if (bench_spin())
			return -1;
	return 0;
}

static int dpdk_recv(void *ch, int d, void *m, size_t n)
{
	struct drg *c = ch;

	while (rte_ring_dequeue_elem(c->r[d], m, (unsigned)n) != 0)
		if (bench_spin())
			return -1;
	return 0;
}

static void dpdk_close(void *ch)
{
	struct drg *c = ch;

	shmem_free(c->r[0], c->sz);
	shmem_free(c->r[1], c->sz);
	shmem_free(c, sizeof(*c));
}

#define DPDK_NOTE                                                              \
	"DPDK rte_ring: rte_ring_init() on MAP_SHARED memory, without "        \
	"rte_eal_init() or hugepages"
#define DPDK_SP                                                                \
	.open = dpdk_open_sp, .send = dpdk_send, .recv = dpdk_recv,            \
	.close = dpdk_close, .note = DPDK_NOTE
#define DPDK_MP                                                                \
	.open = dpdk_open_mp, .send = dpdk_send, .recv = dpdk_recv,            \
	.close = dpdk_close, .note = DPDK_NOTE
#else
#define DPDK_MISSING                                                           \
	"DPDK (libdpdk) not found at configure time: rte_ring skipped "        \
	"(apt-get install libdpdk-dev, reconfigure)"
#define DPDK_SP .missing = DPDK_MISSING
#define DPDK_MP .missing = DPDK_MISSING
#endif

const struct peer peer_dpdk_ring_spsc = {
    .name = "DPDK rte_ring spsc",
    .wait = "busy",
    .flags = PF_CHAN,
    DPDK_SP,
};

const struct peer peer_dpdk_ring_mpmc = {
    .name = "DPDK rte_ring mpmc",
    .wait = "busy",
    .flags = PF_CHAN | PF_MPMC,
    DPDK_MP,
};
