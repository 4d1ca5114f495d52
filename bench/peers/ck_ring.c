/* SPDX-License-Identifier: MIT */
/*
 * Concurrency Kit ck_ring in MAP_SHARED memory, copying whole messages into
 * the ring (the typed CK_RING_PROTOTYPE interface, one entry type per
 * message size), like an lfipc queue; busy-polled. ck_ring_init takes a
 * power of two and holds one less: capacity RCAP - 1.
 */
#include "config.h"

#include "../bench.h"

#define CK_MISSING                                                             \
	"Concurrency Kit (ck_ring.h) not found at configure time: ck_ring "    \
	"skipped (apt-get install libck-dev, reconfigure)"

#ifdef HAVE_CK
#include <ck_ring.h>

struct ck8 {
	char b[8];
};
struct ck64 {
	char b[64];
};
struct ck256 {
	char b[256];
};
struct ck4096 {
	char b[4096];
};
CK_RING_PROTOTYPE(ck8, ck8)
CK_RING_PROTOTYPE(ck64, ck64)
CK_RING_PROTOTYPE(ck256, ck256)
CK_RING_PROTOTYPE(ck4096, ck4096)

struct ckq {
	struct {
		ck_ring_t ring;
		char pad[64];
	} q[2];
	char *buf[2];
	size_t msz;
};

static void *ck_open(size_t msz)
{
	struct ckq *c;

	if (msz != 8 && msz != 64 && msz != 256 && msz != 4096)
		return NULL;
	c = shmem(sizeof(*c));
	c->msz = msz;
	for (int i = 0; i < 2; i++) {
		c->buf[i] = shmem(RCAP * msz);
		ck_ring_init(&c->q[i].ring, RCAP);
	}
	return c;
}

#define CK_OP(kind, op, name, T)                                               \
	ck_ring_##op##_##kind##_##name(r, (struct T *)(void *)b,               \
				       (struct T *)(void *)m)
#define CK_SIZES(kind, op)                                                     \
	switch (c->msz) {                                                      \
	case 8:                                                                \
		return CK_OP(kind, op, ck8, ck8);                              \
	case 64:                                                               \
		return CK_OP(kind, op, ck64, ck64);                            \
	case 256:                                                              \
		return CK_OP(kind, op, ck256, ck256);                          \
	default:                                                               \
		return CK_OP(kind, op, ck4096, ck4096);                        \
	}

static bool ck_put(struct ckq *c, bool mp, int d, const void *m)
{
	ck_ring_t *r = &c->q[d].ring;
	char *b = c->buf[d];

	if (mp)
		CK_SIZES(mpmc, enqueue)
	CK_SIZES(spsc, enqueue)
}

static bool ck_get(struct ckq *c, bool mp, int d, void *m)
{
	ck_ring_t *r = &c->q[d].ring;
	char *b = c->buf[d];

	if (mp)
		CK_SIZES(mpmc, dequeue)
	CK_SIZES(spsc, dequeue)
}

static int ck_send_sp(void *ch, int d, const void *m, size_t n)
{
	(void)n;
	while (!ck_put(ch, false, d, m))
		if (bench_spin())
			return -1;
	return 0;
}

static int ck_recv_sc(void *ch, int d, void *m, size_t n)
{
	(void)n;
	while (!ck_get(ch, false, d, m))
		if (bench_spin())
			return -1;
	return 0;
}

static int ck_send_mp(void *ch, int d, const void *m, size_t n)
{
	(void)n;
	while (!ck_put(ch, true, d, m))
		if (bench_spin())
			return -1;
	return 0;
}

static int ck_recv_mc(void *ch, int d, void *m, size_t n)
{
	(void)n;
	while (!ck_get(ch, true, d, m))
		if (bench_spin())
			return -1;
	return 0;
}

static void ck_close(void *ch)
{
	struct ckq *c = ch;

	for (int i = 0; i < 2; i++)
		shmem_free(c->buf[i], RCAP * c->msz);
	shmem_free(c, sizeof(*c));
}

#define CK_SPSC                                                                \
	.open = ck_open, .send = ck_send_sp, .recv = ck_recv_sc,               \
	.close = ck_close
#define CK_MPMC                                                                \
	.open = ck_open, .send = ck_send_mp, .recv = ck_recv_mc,               \
	.close = ck_close
#else
#define CK_SPSC .missing = CK_MISSING
#define CK_MPMC .missing = CK_MISSING
#endif

const struct peer peer_ck_ring_spsc = {
    .name = "ck_ring spsc",
    .wait = "busy",
    .flags = PF_CHAN,
    CK_SPSC,
};

const struct peer peer_ck_ring_mpmc = {
    .name = "ck_ring mpmc",
    .wait = "busy",
    .flags = PF_CHAN | PF_MPMC,
    CK_MPMC,
};
