/* SPDX-License-Identifier: MIT */
/*
 * test_alloc.c - the object directory and the heap allocator: error codes,
 * alignment, exhaustion, reuse, and concurrent create/remove from processes
 * and threads with overlap and free-space checks.
 *
 * White-box: links the library statically (see mk/region.am).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lfipc/region.h>

#include "common/heapcheck.h"
#include "common/testhelp.h"
#include "internal/region.h"

#define BLOB LFIPC_OBJ_EVENT
#define RSIZE ((size_t)1 << 20)

static lfipc_region *r;
static size_t free0;

static size_t bytes_free(lfipc_region *rg)
{
	lfipc_region_info info;

	cr_assert_eq(lfipc_region_stats(rg, &info), 0);
	return info.bytes_free;
}

static unsigned nobjects(lfipc_region *rg)
{
	lfipc_region_info info;

	cr_assert_eq(lfipc_region_stats(rg, &info), 0);
	return info.objects;
}

static void consistent(lfipc_region *rg)
{
	char msg[200];

	cr_assert_eq(th_heap_check(rg, msg, sizeof(msg)), 0, "%s", msg);
}

static void setup(void)
{
	cr_assert_eq(lfipc_region_create(NULL, RSIZE, 0, &r), 0);
	free0 = bytes_free(r);
}

static void teardown(void)
{
	lfipc_region_close(r);
	r = NULL;
}

static int mk(const char *name, uint64_t size, uint64_t *off)
{
	uint64_t o;

	return lfipc__obj_create(r, name, BLOB, size, 0, NULL, NULL,
				 off ? off : &o);
}

TestSuite(alloc, .init = setup, .fini = teardown, .timeout = 60);

Test(alloc, fresh_region_has_free_heap_and_no_objects)
{
	cr_assert_gt(free0, RSIZE / 2);
	cr_assert_lt(free0, RSIZE);
	cr_assert_eq(nobjects(r), 0);
	consistent(r);
}

Test(alloc, duplicate_name_returns_eexist)
{
	cr_assert_eq(mk("a", 100, NULL), 0);
	cr_assert_eq(mk("a", 100, NULL), -EEXIST);
	cr_assert_eq(lfipc__obj_create(r, "a", LFIPC_OBJ_QUEUE, 10, 0, NULL,
				       NULL, &(uint64_t){0}),
		     -EEXIST);
	cr_assert_eq(nobjects(r), 1);
}

Test(alloc, missing_object_returns_enoent)
{
	uint64_t off, size;

	cr_assert_eq(lfipc__obj_open(r, "nope", BLOB, &off, &size), -ENOENT);
	cr_assert_eq(lfipc_object_remove(r, "nope"), -ENOENT);
	cr_assert_eq(mk("x", 1, NULL), 0);
	cr_assert_eq(lfipc_object_remove(r, "x"), 0);
	cr_assert_eq(lfipc_object_remove(r, "x"), -ENOENT);
	cr_assert_eq(lfipc__obj_open(r, "x", BLOB, &off, &size), -ENOENT);
}

Test(alloc, open_with_wrong_type_returns_einval)
{
	uint64_t off, size;

	cr_assert_eq(mk("typed", 100, NULL), 0);
	cr_assert_eq(lfipc__obj_open(r, "typed", LFIPC_OBJ_LOCK, &off, &size),
		     -EINVAL);
	cr_assert_eq(lfipc__obj_open(r, "typed", BLOB, &off, &size), 0);
	cr_assert_eq(size, 100);
}

Test(alloc, name_longer_than_name_max_returns_enametoolong)
{
	char n63[LFIPC_NAME_MAX + 1], n64[LFIPC_NAME_MAX + 2];
	uint64_t off, size;

	memset(n63, 'n', sizeof(n63) - 1);
	n63[sizeof(n63) - 1] = '\0';
	memset(n64, 'n', sizeof(n64) - 1);
	n64[sizeof(n64) - 1] = '\0';
	cr_assert_eq(mk(n64, 10, NULL), -ENAMETOOLONG);
	cr_assert_eq(lfipc__obj_open(r, n64, BLOB, &off, &size), -ENAMETOOLONG);
	cr_assert_eq(lfipc_object_remove(r, n64), -ENAMETOOLONG);
	cr_assert_eq(mk(n63, 10, NULL), 0);
	cr_assert_eq(lfipc__obj_open(r, n63, BLOB, &off, &size), 0);
	cr_assert_eq(lfipc_object_remove(r, n63), 0);
}

Test(alloc, bad_arguments_return_einval)
{
	uint64_t off, size;

	cr_assert_eq(mk("", 10, NULL), -EINVAL);
	cr_assert_eq(mk(NULL, 10, NULL), -EINVAL);
	cr_assert_eq(mk("z", 0, NULL), -EINVAL);
	cr_assert_eq(
	    lfipc__obj_create(r, "z", LFIPC_OBJ_NONE, 10, 0, NULL, NULL, &off),
	    -EINVAL);
	cr_assert_eq(
	    lfipc__obj_create(r, "z", LFIPC_OBJ_INIT, 10, 0, NULL, NULL, &off),
	    -EINVAL);
	cr_assert_eq(lfipc__obj_create(r, "z", BLOB, 10, 96, NULL, NULL, &off),
		     -EINVAL);
	cr_assert_eq(
	    lfipc__obj_create(r, "z", BLOB, 10, 8192, NULL, NULL, &off),
	    -EINVAL);
	cr_assert_eq(lfipc__obj_create(r, "z", BLOB, 10, 0, NULL, NULL, NULL),
		     -EINVAL);
	cr_assert_eq(lfipc__obj_open(r, "", BLOB, &off, &size), -EINVAL);
	cr_assert_eq(lfipc_object_remove(r, ""), -EINVAL);
	cr_assert_eq(lfipc_object_remove(r, NULL), -EINVAL);
	cr_assert_eq(nobjects(r), 0);
	cr_assert_eq(bytes_free(r), free0);
}

Test(alloc, blocks_are_zeroed_aligned_and_inside_the_heap)
{
	const uint64_t aligns[] = {0, 64, 128, 256, 1024, 4096};
	char nm[16];

	for (int i = 0; i < 60; i++) {
		uint64_t a = aligns[i % 6], off, size = 1 + (uint64_t)i * 37;
		uint8_t *p;

		snprintf(nm, sizeof(nm), "b%d", i);
		cr_assert_eq(
		    lfipc__obj_create(r, nm, BLOB, size, a, NULL, NULL, &off),
		    0);
		cr_assert(lfipc__heap_range_ok(r, off, size));
		cr_assert_eq(off % (a ? a : LFIPC_HOT_ALIGN), 0,
			     "offset %llu align %llu", (unsigned long long)off,
			     (unsigned long long)a);
		p = lfipc__at(r, off);
		for (uint64_t k = 0; k < size; k++)
			cr_assert_eq(p[k], 0);
		memset(p, 0xff, size); /* dirty it for the next user */
		if (i % 2)
			cr_assert_eq(lfipc_object_remove(r, nm), 0);
	}
	consistent(r);
}

static int init_fill(void *block, uint64_t size, void *arg)
{
	th_fill(block, size, *(uint64_t *)arg);
	return 0;
}

static int init_fail(void *block, uint64_t size, void *arg)
{
	memset(block, 0x55, size);
	return -EIO;
}

Test(alloc, init_callback_runs_before_publish_and_its_error_leaves_nothing)
{
	uint64_t seed = 99, off, size;

	cr_assert_eq(
	    lfipc__obj_create(r, "init", BLOB, 3000, 0, init_fill, &seed, &off),
	    0);
	cr_assert_eq(lfipc__obj_open(r, "init", BLOB, &off, &size), 0);
	cr_assert_eq(th_check(lfipc__at(r, off), size, 99), -1);
	cr_assert_eq(
	    lfipc__obj_create(r, "bad", BLOB, 3000, 0, init_fail, NULL, &off),
	    -EIO);
	cr_assert_eq(lfipc__obj_open(r, "bad", BLOB, &off, &size), -ENOENT);
	cr_assert_eq(nobjects(r), 1);
	cr_assert_eq(lfipc_object_remove(r, "init"), 0);
	cr_assert_eq(bytes_free(r), free0);
	consistent(r);
}

Test(alloc, heap_exhaustion_returns_enospc_and_removal_restores_free_space)
{
	char nm[16];
	int n = 0, rc;

	cr_assert_eq(mk("huge", free0 + 1, NULL), -ENOSPC);
	cr_assert_eq(mk("huge", (uint64_t)1 << 50, NULL), -ENOSPC);
	for (;;) {
		snprintf(nm, sizeof(nm), "e%d", n);
		rc = mk(nm, 20000, NULL);
		if (rc == -ENOSPC)
			break;
		cr_assert_eq(rc, 0);
		n++;
	}
	cr_assert_gt(n, 10);
	cr_assert_lt(bytes_free(r), 20000 + LFIPC_HOT_ALIGN);
	consistent(r);
	for (int i = 0; i < n; i++) {
		snprintf(nm, sizeof(nm), "e%d", i);
		cr_assert_eq(lfipc_object_remove(r, nm), 0);
	}
	cr_assert_eq(bytes_free(r), free0);
	cr_assert_eq(nobjects(r), 0);
	/* the whole heap comes back as one block: no fragmentation left */
	cr_assert_eq(mk("all", free0, NULL), 0);
	cr_assert_eq(bytes_free(r), 0);
	cr_assert_eq(mk("one-more", 1, NULL), -ENOSPC);
	cr_assert_eq(lfipc_object_remove(r, "all"), 0);
	cr_assert_eq(bytes_free(r), free0);
}

Test(alloc, full_directory_returns_enospc)
{
	char nm[16];
	unsigned cap = r->dir_cap, i;

	for (i = 0; i < cap; i++) {
		snprintf(nm, sizeof(nm), "d%u", i);
		cr_assert_eq(mk(nm, 1, NULL), 0, "entry %u", i);
	}
	cr_assert_eq(nobjects(r), cap);
	cr_assert_eq(mk("overflow", 1, NULL), -ENOSPC);
	cr_assert_gt(bytes_free(r), 0);
	cr_assert_eq(lfipc_object_remove(r, "d7"), 0);
	cr_assert_eq(mk("overflow", 1, NULL), 0);
	consistent(r);
}

Test(alloc, freed_holes_are_reused_first_fit)
{
	uint64_t off_a, off_b, off_c;

	cr_assert_eq(mk("a", 4096, &off_a), 0);
	cr_assert_eq(mk("b", 4096, &off_b), 0);
	cr_assert_eq(mk("c", 4096, NULL), 0);
	cr_assert_eq(lfipc_object_remove(r, "a"), 0);
	cr_assert_eq(mk("a2", 1000, &off_c), 0);
	cr_assert_eq(off_c, off_a);
	cr_assert_eq(lfipc_object_remove(r, "b"), 0);
	cr_assert_eq(lfipc_object_remove(r, "a2"), 0);
	/* a and b coalesced */
	cr_assert_eq(mk("ab", 8192, &off_c), 0);
	cr_assert_eq(off_c, off_a);
	consistent(r);
}

Test(alloc, objects_are_visible_through_a_second_handle)
{
	lfipc_region *b;
	uint64_t off, off2, size;
	int fd = lfipc_region_fd(r);

	cr_assert_eq(lfipc_region_open_fd(fd, &b), 0);
	cr_assert_eq(mk("shared", 500, &off), 0);
	cr_assert_eq(lfipc__obj_open(b, "shared", BLOB, &off2, &size), 0);
	cr_assert_eq(off, off2);
	cr_assert_eq(lfipc_object_remove(b, "shared"), 0);
	cr_assert_eq(lfipc__obj_open(r, "shared", BLOB, &off2, &size), -ENOENT);
	lfipc_region_close(b);
	cr_assert_eq(bytes_free(r), free0);
}

/* ---- concurrency
 * -------------------------------------------------------------- */

#define LIVE 6

struct churn {
	lfipc_region *r;
	int id; /* unique worker id across processes and threads */
	int iters;
	int errors; /* pattern mismatches or unexpected return codes */
	char why[128];
};

/* Create/remove loop: each object is filled with its owner's pattern right
 * after creation and verified just before removal, so two live blocks that
 * overlap are caught. */
static void *churn_thread(void *arg)
{
	struct churn *c = arg;
	struct {
		char name[32];
		uint64_t off, size, seed;
		bool live;
	} o[LIVE];
	uint64_t rnd = 0x1234567ull + (uint64_t)c->id * 7919;

	memset(o, 0, sizeof(o));
	for (int it = 0; it < c->iters && !c->errors; it++) {
		int k = (int)(th_rand(&rnd) % LIVE);
		int rc;

		if (!o[k].live) {
			snprintf(o[k].name, sizeof(o[k].name), "w%d-%d-%d",
				 c->id, k, it);
			o[k].size = 1 + th_rand(&rnd) % 3000;
			o[k].seed = ((uint64_t)c->id << 32) | (uint64_t)it;
			rc = lfipc__obj_create(c->r, o[k].name, BLOB, o[k].size,
					       (th_rand(&rnd) & 1) ? 64 : 0,
					       NULL, NULL, &o[k].off);
			if (rc != 0) {
				snprintf(c->why, sizeof(c->why),
					 "create %.40s: %d", o[k].name, rc);
				c->errors++;
				break;
			}
			th_fill(lfipc__at(c->r, o[k].off), o[k].size,
				o[k].seed);
			o[k].live = true;
		} else {
			uint64_t off, size;

			rc =
			    lfipc__obj_open(c->r, o[k].name, BLOB, &off, &size);
			if (rc != 0 || off != o[k].off || size != o[k].size) {
				snprintf(c->why, sizeof(c->why),
					 "open %.40s: %d", o[k].name, rc);
				c->errors++;
				break;
			}
			if (th_check(lfipc__at(c->r, off), size, o[k].seed) !=
			    -1) {
				snprintf(
				    c->why, sizeof(c->why),
				    "%.40s overwritten: overlapping blocks",
				    o[k].name);
				c->errors++;
				break;
			}
			rc = lfipc_object_remove(c->r, o[k].name);
			if (rc != 0) {
				snprintf(c->why, sizeof(c->why),
					 "remove %.40s: %d", o[k].name, rc);
				c->errors++;
				break;
			}
			o[k].live = false;
		}
	}
	for (int k = 0; k < LIVE; k++) {
		if (!o[k].live)
			continue;
		if (th_check(lfipc__at(c->r, o[k].off), o[k].size, o[k].seed) !=
			-1 &&
		    !c->errors) {
			snprintf(c->why, sizeof(c->why), "%.40s overwritten",
				 o[k].name);
			c->errors++;
		}
		if (lfipc_object_remove(c->r, o[k].name) != 0 && !c->errors) {
			snprintf(c->why, sizeof(c->why), "final remove");
			c->errors++;
		}
	}
	return NULL;
}

/* Run nthreads churn threads in this process; return total errors. */
static int churn_threads(lfipc_region *rg, int base_id, int nthreads, int iters,
			 char *why, size_t whylen)
{
	pthread_t t[8];
	struct churn c[8];
	int errors = 0;

	if (nthreads == 1) { /* inline: no thread at all */
		c[0] = (struct churn){.r = rg, .id = base_id, .iters = iters};
		churn_thread(&c[0]);
		if (c[0].errors)
			snprintf(why, whylen, "%.100s", c[0].why);
		return c[0].errors;
	}
	for (int i = 0; i < nthreads; i++) {
		c[i] =
		    (struct churn){.r = rg, .id = base_id + i, .iters = iters};
		cr_assert_eq(pthread_create(&t[i], NULL, churn_thread, &c[i]),
			     0);
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(t[i], NULL);
		if (c[i].errors && why[0] == '\0')
			snprintf(why, whylen, "%.100s", c[i].why);
		errors += c[i].errors;
	}
	return errors;
}

Test(alloc, threads_of_one_process_create_and_remove_concurrently)
{
	char why[128] = "";
	int iters = 2000 * th_scale();

	cr_assert_eq(churn_threads(r, 0, 4, iters, why, sizeof(why)), 0, "%s",
		     why);
	cr_assert_eq(nobjects(r), 0);
	cr_assert_eq(bytes_free(r), free0);
	consistent(r);
}

Test(alloc, processes_and_threads_create_and_remove_concurrently,
     .timeout = 120)
{
	enum { NPROC = 3, NTHR = 2 };
	pid_t pids[NPROC];
	int iters = 1500 * th_scale();
	lfipc_region_info info;

	/* fork first, then threads (ThreadSanitizer forbids the reverse) */
	for (int p = 0; p < NPROC; p++) {
		pids[p] = fork();
		cr_assert_geq(pids[p], 0);
		if (pids[p] == 0) {
			char why[128] = "";
			/* TSan: no thread in a child of this fork */
			int e = churn_threads(r, 100 + p * NTHR,
					      th_tsan() ? 1 : NTHR, iters, why,
					      sizeof(why));

			if (e)
				fprintf(stderr, "worker %d: %s\n", p, why);
			_exit(e ? 1 : 0);
		}
	}
	/* the parent churns too, single-threaded */
	{
		struct churn c = {.r = r, .id = 1, .iters = iters};

		churn_thread(&c);
		cr_expect_eq(c.errors, 0, "%s", c.why);
	}
	cr_assert_eq(th_reap_all(pids, NPROC, 100000), 0);
	cr_assert_eq(lfipc_region_stats(r, &info), 0);
	cr_assert_eq(info.objects, 0);
	cr_assert_eq(info.bytes_free, free0);
	cr_assert_eq(info.participants, 1);
	consistent(r);
}

static _Atomic int spin_stop;

static void *lock_spinner(void *arg)
{
	char nm[16];
	uint64_t off;
	int i = 0;

	while (!atomic_load(&spin_stop)) {
		snprintf(nm, sizeof(nm), "sp%d", i++ % 4);
		if (lfipc__obj_create(r, nm, BLOB, 100, 0, NULL, NULL, &off) !=
			0 ||
		    lfipc_object_remove(r, nm) != 0)
			return (void *)1;
	}
	return NULL;
}

Test(alloc, fork_while_another_thread_holds_the_region_lock_is_safe,
     .timeout = 60)
{
	pthread_t t;
	void *res;
	int n = 100 * th_scale();

	if (th_tsan())
		cr_skip_test("ThreadSanitizer cannot follow fork with threads");
	atomic_store(&spin_stop, 0);
	cr_assert_eq(pthread_create(&t, NULL, lock_spinner, NULL), 0);
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();

		cr_assert_geq(pid, 0);
		if (pid == 0) {
			/* the child never inherits a held region lock */
			uint64_t off;

			if (lfipc__obj_create(r, "child", BLOB, 64, 0, NULL,
					      NULL, &off) != 0 ||
			    lfipc_object_remove(r, "child") != 0)
				_exit(1);
			_exit(0);
		}
		cr_assert_eq(th_reap(pid, 10000), 0, "child %d", i);
	}
	atomic_store(&spin_stop, 1);
	pthread_join(t, &res);
	cr_assert_null(res);
	cr_assert_eq(nobjects(r), 0);
	cr_assert_eq(bytes_free(r), free0);
	consistent(r);
}

/* ---- hostile peer: directory fields rewritten between two reads --------
 *
 * Regression tests of issue 9 (findings sync/hostile_create_off.c,
 * sync/toctou_dirent_reload.c, queue/dirent_toctou.c): a peer process that
 * maps the region flips one field of a directory entry between a plausible
 * and an absurd value, as fast as it can, while a victim process loops one
 * operation for a while. The victim must never be handed (or use) a block
 * outside the heap: it checks every block it gets and touches its first and
 * last byte. Both run as children, so a crash is an exit status, and both
 * are reaped with a deadline.
 */

#define HOSTILE_ABSURD (UINT64_C(1) << 44) /* far outside any mapping */

static struct lfipc_dirent *dirent_of(lfipc_region *rg, const char *name)
{
	struct lfipc_dirent *dir =
	    (struct lfipc_dirent *)((uint8_t *)rg->base + rg->dir_off);

	for (uint32_t i = 0; i < rg->dir_cap; i++)
		if (dir[i].type != LFIPC_OBJ_NONE &&
		    strcmp(dir[i].name, name) == 0)
			return &dir[i];
	return NULL;
}

struct flip {
	_Atomic uint64_t *word; /* the field (a plain uint64_t in the layout) */
	uint64_t good, bad;
};

/* The hostile peer: flips *word until killed. */
static int flipper(void *arg)
{
	const struct flip *f = arg;

	for (;;) {
		atomic_store_explicit(f->word, f->bad, memory_order_relaxed);
		for (volatile int s = 0; s < 3; s++)
			;
		atomic_store_explicit(f->word, f->good, memory_order_relaxed);
		for (volatile int s = 0; s < 3; s++)
			;
	}
	return 0;
}

/* The hostile peer of the create path: rewrites the offset of every entry
 * that is being created (type INIT) until killed. */
static int init_entry_scribbler(void *arg)
{
	struct lfipc_dirent *dir =
	    (struct lfipc_dirent *)((uint8_t *)r->base + r->dir_off);

	(void)arg;
	for (;;)
		for (uint32_t i = 0; i < r->dir_cap; i++)
			if (atomic_load_explicit(
				(_Atomic uint32_t *)&dir[i].type,
				memory_order_relaxed) == LFIPC_OBJ_INIT)
				atomic_store_explicit(
				    (_Atomic uint64_t *)&dir[i].off,
				    HOSTILE_ABSURD, memory_order_relaxed);
	return 0;
}

/* A block handed out must lie inside the heap; touch both ends. */
static bool block_ok(uint64_t off, uint64_t size)
{
	if (size == 0 || !lfipc__heap_range_ok(r, off, size))
		return false;
	*(volatile uint8_t *)lfipc__at(r, off) += 0;
	*(volatile uint8_t *)lfipc__at(r, off + size - 1) += 0;
	return true;
}

static int64_t victim_end(void)
{
	return th_now_ns() + (int64_t)th_scale() * 1000000000;
}

/* Exit codes: 0 fine, 1 a block outside the heap, 2 an unexpected code. */
static int victim_open(void *arg)
{
	int64_t end = victim_end();
	long ok = 0;

	(void)arg;
	while (th_now_ns() < end) {
		uint64_t off, size;
		int rc = lfipc__obj_open(r, "x", BLOB, &off, &size);

		if (rc == 0 && !block_ok(off, size))
			return 1;
		if (rc != 0 && rc != -EPROTO)
			return 2;
		ok += rc == 0;
	}
	return ok > 0 ? 0 : 3;
}

static int victim_remove(void *arg)
{
	int64_t end = victim_end();

	(void)arg;
	while (th_now_ns() < end) {
		uint64_t off;
		int rc = lfipc_object_remove(r, "x");

		if (rc != 0 && rc != -EPROTO)
			return 2;
		if (rc == 0) {
			rc = mk("x", 1000, &off);
			if (rc != 0)
				return 2;
			if (!block_ok(off, 1000))
				return 1;
		}
	}
	return 0;
}

static int check_snapshot(lfipc_region *rg, unsigned type, uint64_t off,
			  uint64_t size, void *arg)
{
	(void)rg, (void)type, (void)arg;
	return block_ok(off, size) ? 0 : -EFAULT;
}

static int victim_foreach(void *arg)
{
	int64_t end = victim_end();

	(void)arg;
	while (th_now_ns() < end) {
		int rc = lfipc__obj_foreach(r, check_snapshot, NULL);

		if (rc == -EFAULT)
			return 1;
		if (rc != 0)
			return 2;
	}
	return 0;
}

static int victim_create(void *arg)
{
	int64_t end = victim_end();
	long ok = 0;
	int k = 0;

	(void)arg;
	while (th_now_ns() < end) {
		char nm[16];
		uint64_t off;
		int rc;

		/* a fresh name each time: a remove may meet an entry the
		 * peer has rewritten (-EPROTO) */
		snprintf(nm, sizeof(nm), "big%d", k++ % 8);
		rc = mk(nm, RSIZE / 16, &off);
		if (rc == 0) {
			if (!block_ok(off, RSIZE / 16))
				return 1;
			ok++;
			rc = lfipc_object_remove(r, nm);
		}
		if (rc != 0 && rc != -EPROTO && rc != -EEXIST && rc != -ENOSPC)
			return 2;
	}
	return ok > 0 ? 0 : 3;
}

/* Run victim against hostile; return the victim's th_reap status. */
static int against_peer(int (*hostile)(void *), void *harg,
			int (*victim)(void *))
{
	pid_t h = th_fork(hostile, harg), v;
	int st;

	cr_assert_gt(h, 0);
	v = th_fork(victim, NULL);
	cr_assert_gt(v, 0);
	st = th_reap(v, 30000 * th_scale());
	kill(h, SIGKILL);
	cr_assert_eq(th_reap(h, 10000), 128 + SIGKILL);
	cr_expect_eq(st, 0,
		     "victim status %d (1: a block outside the heap, 2: an "
		     "unexpected error code, 3: never succeeded, 128+n: "
		     "killed by signal n)",
		     st);
	return st;
}

/* Object "x" in place; a peer flips one field of its entry while victim
 * runs; afterwards the good value is restored and the heap must be
 * consistent (the victim never acted on the absurd value). */
static void flip_entry_during(size_t field, int (*victim)(void *))
{
	struct lfipc_dirent *d;
	struct flip f;

	cr_assert_eq(mk("x", 1000, NULL), 0);
	d = dirent_of(r, "x");
	cr_assert_not_null(d);
	f.word = (_Atomic uint64_t *)((uint8_t *)d + field);
	f.good = atomic_load(f.word);
	f.bad = HOSTILE_ABSURD;
	cr_assert_eq(against_peer(flipper, &f, victim), 0);
	atomic_store(f.word, f.good);
	consistent(r);
}

Test(alloc, open_never_hands_out_an_offset_a_peer_rewrote_after_the_check,
     .timeout = 120)
{
	flip_entry_during(offsetof(struct lfipc_dirent, off), victim_open);
}

Test(alloc, remove_never_frees_a_size_a_peer_rewrote_after_the_check,
     .timeout = 120)
{
	flip_entry_during(offsetof(struct lfipc_dirent, size), victim_remove);
}

Test(alloc, recover_snapshot_never_holds_an_offset_a_peer_rewrote,
     .timeout = 120)
{
	flip_entry_during(offsetof(struct lfipc_dirent, off), victim_foreach);
}

Test(alloc, create_hands_out_its_own_offset_whatever_a_peer_writes_there,
     .timeout = 120)
{
	cr_assert_eq(against_peer(init_entry_scribbler, NULL, victim_create),
		     0);
}
