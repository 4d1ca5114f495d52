/* SPDX-License-Identifier: MIT */
/*
 * test_alloc_stress.c - long create/remove churn with random sizes and
 * alignments from several processes x threads; every block carries its
 * owner's pattern and is verified before removal; at the end the heap is
 * exactly as free as at the start and not fragmented (the whole free space
 * comes back as one block). Seconds in `make check`, minutes in
 * `make stress` (LFIPC_STRESS_SCALE).
 *
 * White-box: links the library statically (see mk/region.am).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <lfipc/region.h>

#include "common/heapcheck.h"
#include "common/testhelp.h"
#include "internal/region.h"

#define BLOB LFIPC_OBJ_EVENT
#define RSIZE ((size_t)8 << 20)
#define NPROC 3
#define NTHR 2
#define LIVE 12

static lfipc_region *r;

struct board {
	_Atomic long creates, removes, enospc;
	_Atomic int errors;
	char why[128];
};
static struct board *bd;

static void fail(const char *what, const char *nm, int rc)
{
	if (atomic_fetch_add(&bd->errors, 1) == 0)
		snprintf(bd->why, sizeof(bd->why), "%s %.40s: %d", what, nm,
			 rc);
}

struct arg {
	int id;
	int64_t end;
};

static void *churn(void *p)
{
	struct arg *a = p;
	struct {
		uint64_t off, size, seed;
		bool live;
	} o[LIVE];
	uint64_t rnd = 0xabcdefull * (uint64_t)(a->id + 3);
	char nm[32];
	long n = 0;

	memset(o, 0, sizeof(o));
	while (!atomic_load(&bd->errors)) {
		int k = (int)(th_rand(&rnd) % LIVE), rc;

		if ((++n & 63) == 0 && th_now_ns() > a->end)
			break;
		snprintf(nm, sizeof(nm), "s%d-%d", a->id, k);
		if (!o[k].live) {
			/* mostly small, sometimes large; random alignment */
			uint64_t sz = (th_rand(&rnd) % 8)
					  ? 1 + th_rand(&rnd) % 2000
					  : 1 + th_rand(&rnd) % 200000;
			uint64_t al = (uint64_t)64 << (th_rand(&rnd) % 7);

			o[k].size = sz;
			o[k].seed = th_rand(&rnd);
			rc = lfipc__obj_create(r, nm, BLOB, sz, al, NULL, NULL,
					       &o[k].off);
			if (rc == -ENOSPC) {
				atomic_fetch_add(&bd->enospc, 1);
				continue;
			}
			if (rc != 0 || o[k].off % al) {
				fail("create", nm, rc);
				break;
			}
			th_fill(lfipc__at(r, o[k].off), sz, o[k].seed);
			o[k].live = true;
			atomic_fetch_add(&bd->creates, 1);
		} else {
			if (th_check(lfipc__at(r, o[k].off), o[k].size,
				     o[k].seed) != -1) {
				fail("overwritten (overlap)", nm, 0);
				break;
			}
			rc = lfipc_object_remove(r, nm);
			if (rc != 0) {
				fail("remove", nm, rc);
				break;
			}
			o[k].live = false;
			atomic_fetch_add(&bd->removes, 1);
		}
	}
	for (int k = 0; k < LIVE; k++) {
		if (!o[k].live)
			continue;
		snprintf(nm, sizeof(nm), "s%d-%d", a->id, k);
		if (th_check(lfipc__at(r, o[k].off), o[k].size, o[k].seed) !=
		    -1)
			fail("overwritten at end", nm, 0);
		if (lfipc_object_remove(r, nm) != 0)
			fail("final remove", nm, -1);
		atomic_fetch_add(&bd->removes, 1);
	}
	return NULL;
}

static int proc_main(int p, int64_t end)
{
	pthread_t t[NTHR];
	struct arg a[NTHR];
	int nthr = NTHR;

	if (th_tsan()) { /* TSan: no thread in a child of a fork */
		a[0] = (struct arg){.id = p * NTHR, .end = end};
		churn(&a[0]);
		return atomic_load(&bd->errors) ? 1 : 0;
	}
	for (int i = 0; i < nthr; i++) {
		a[i] = (struct arg){.id = p * NTHR + i, .end = end};
		if (pthread_create(&t[i], NULL, churn, &a[i]) != 0)
			return 2;
	}
	for (int i = 0; i < nthr; i++)
		pthread_join(t[i], NULL);
	return atomic_load(&bd->errors) ? 1 : 0;
}

Test(alloc_stress, churn_from_processes_and_threads_keeps_heap_exact,
     .timeout = 900)
{
	pid_t pids[NPROC];
	size_t free0;
	int64_t end = th_now_ns() + 3000000000LL * th_scale();
	lfipc_region_info info;
	char msg[200];
	uint64_t off;

	bd = mmap(NULL, sizeof(*bd), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(bd, MAP_FAILED);
	cr_assert_eq(lfipc_region_create(NULL, RSIZE, 0, &r), 0);
	cr_assert_eq(lfipc_region_stats(r, &info), 0);
	free0 = info.bytes_free;
	for (int p = 0; p < NPROC; p++) {
		pids[p] = fork();
		cr_assert_geq(pids[p], 0);
		if (pids[p] == 0)
			_exit(proc_main(p, end));
	}
	cr_assert_eq(th_reap_all(pids, NPROC, 60000 + 3000 * th_scale()), 0,
		     "%s", bd->why);
	cr_assert_eq(atomic_load(&bd->errors), 0, "%s", bd->why);
	cr_log_info("%ld creates, %ld removes, %ld ENOSPC",
		    atomic_load(&bd->creates), atomic_load(&bd->removes),
		    atomic_load(&bd->enospc));
	cr_assert_eq(atomic_load(&bd->creates), atomic_load(&bd->removes));
	cr_assert_gt(atomic_load(&bd->creates), 1000);
	cr_assert_eq(lfipc_region_stats(r, &info), 0);
	cr_assert_eq(info.objects, 0);
	cr_assert_eq(info.bytes_free, free0);
	cr_assert_eq(th_heap_check(r, msg, sizeof(msg)), 0, "%s", msg);
	/* no fragmentation left behind: the whole heap is one block */
	cr_assert_eq(
	    lfipc__obj_create(r, "all", BLOB, free0, 0, NULL, NULL, &off), 0);
	cr_assert_eq(lfipc_object_remove(r, "all"), 0);
	lfipc_region_close(r);
	munmap(bd, sizeof(*bd));
}
