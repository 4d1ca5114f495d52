/* SPDX-License-Identifier: MIT */
/*
 * qtest.h - what the queue's test files share (header-only, Criterion):
 *
 *   - the fixture: a fresh 64 MiB anonymous region per test (qt_r);
 *   - put_ints() / get_ints(): runs of ints through put_many / get_many,
 *     checked in order;
 *   - a queue seen from outside, as a buggy, hostile or killed peer leaves
 *     it: the region's file mapped a second time and the queue's block
 *     read or written through the library's own layout
 *     (internal/queue_layout.h), never through offsets typed by hand.
 */
#ifndef LFIPC_TEST_QTEST_H
#define LFIPC_TEST_QTEST_H

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lfipc/queue.h>
#include <lfipc/region.h>

#include "internal/layout.h"
#include "internal/queue_layout.h"

#define QT_REGION_SIZE ((size_t)64 << 20)
#define QT_REAP_MS 60000

static lfipc_region *qt_r;

static inline void qt_setup(void)
{
	cr_assert_eq(lfipc_region_create(NULL, QT_REGION_SIZE, 0, &qt_r), 0);
}

static inline void qt_teardown(void)
{
	lfipc_region_close(qt_r);
	qt_r = NULL;
}

/* Put ints lo..hi-1 with one put_many; returns its result. */
static inline int put_ints(lfipc_queue *q, int lo, int hi, int64_t timeout_ns)
{
	int v[256];
	const void *m[256];
	size_t lens[256];

	for (int i = 0; i < hi - lo; i++) {
		v[i] = lo + i;
		m[i] = &v[i];
		lens[i] = sizeof(int);
	}
	return lfipc_queue_put_many(q, m, lens, (size_t)(hi - lo), timeout_ns);
}

/* get_many up to n ints; checks that they are next, next+1, ... */
static inline int get_ints(lfipc_queue *q, int n, int *next)
{
	int bufs[256][2];
	size_t lens[256];
	int rc = lfipc_queue_get_many(q, bufs, sizeof(bufs[0]), lens, (size_t)n,
				      LFIPC_NOWAIT);

	for (int i = 0; i < rc; i++) {
		cr_assert_eq(lens[i], sizeof(int));
		cr_assert_eq(bufs[i][0], *next, "got %d, want %d", bufs[i][0],
			     *next);
		(*next)++;
	}
	return rc;
}

/* A token whose participant slot lies past the table: always dead. */
#define QP_DEAD_TOKEN ((UINT32_C(2046) << 19) | 1u)

struct qpeer {
	uint8_t *base; /* our own second mapping of the region */
	size_t len;
	uint64_t off, size;   /* the queue's block */
	uint8_t *q;	      /* base + off */
	struct lfipc_qhdr *h; /* the header, in our mapping */
};

static inline void qp_open(lfipc_region *rg, const char *name, struct qpeer *qp)
{
	struct stat st;
	const struct lfipc_hdr *h;
	const struct lfipc_dirent *dir;
	int fd = lfipc_region_fd(rg);

	cr_assert_geq(fd, 0);
	cr_assert_eq(fstat(fd, &st), 0);
	qp->len = (size_t)st.st_size;
	qp->base =
	    mmap(NULL, qp->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(qp->base, MAP_FAILED);
	h = (const struct lfipc_hdr *)qp->base;
	dir = (const struct lfipc_dirent *)(qp->base + h->dir_off);
	for (uint32_t i = 0; i < h->dir_cap; i++) {
		if (dir[i].type == 1 /* queue */ &&
		    dir[i].name_len == strlen(name) &&
		    memcmp(dir[i].name, name, dir[i].name_len) == 0) {
			qp->off = dir[i].off;
			qp->size = dir[i].size;
			qp->q = qp->base + qp->off;
			qp->h = (struct lfipc_qhdr *)qp->q;
			return;
		}
	}
	cr_assert_fail("queue %s not in the directory", name);
}

static inline void qp_close(struct qpeer *qp)
{
	munmap(qp->base, qp->len);
}

static inline struct lfipc_qslot *qp_slot(struct qpeer *qp, uint64_t i)
{
	return (struct lfipc_qslot *)(qp->q + sizeof(struct lfipc_qhdr) +
				      i * qp->h->stride);
}

static inline _Atomic uint64_t *qp_word(struct qpeer *qp, uint64_t i)
{
	return &qp_slot(qp, i)->word;
}

static inline uint64_t *qp_len(struct qpeer *qp, uint64_t i)
{
	return &qp_slot(qp, i)->len;
}

/* Entry i of a JoinableQueue's task table. */
static inline struct lfipc_qtask *qp_task(struct qpeer *qp, uint32_t i)
{
	return (struct lfipc_qtask *)(qp->q + qp->h->tasks_off) + i;
}

/* The messages entry t counts as got: got + each record's cnt
 * (lib/internal/queue_layout.h). */
static inline uint64_t qp_task_got(struct lfipc_qtask *t)
{
	uint64_t g = atomic_load(&t->got);

	for (uint32_t k = 0; k < LFIPC_QREC_K; k++)
		g += lfipc__qrec_cnt(atomic_load(&t->rec[k]));
	return g;
}

#define qp_mkword lfipc__qword

/* A producer thread: one put of "p" that may block forever. */
static inline void *put_forever(void *arg)
{
	return (void *)(intptr_t)lfipc_queue_put(arg, "p", 1, LFIPC_FOREVER);
}

/* Wait until a producer has announced itself asleep on the queue's
 * not_full (sleepers: wait.c's low 24 bits of the waiters word). */
static inline void producer_sleeps(struct qpeer *qp)
{
	const uint64_t sleepers = (UINT64_C(1) << 24) - 1;

	for (int i = 0; i < 5000; i++) {
		if (atomic_load(&qp->h->not_full.waiters) & sleepers)
			break;
		usleep(1000);
	}
	cr_assert(atomic_load(&qp->h->not_full.waiters) & sleepers,
		  "the producer sleeps");
}

#endif
