/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdalign.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <lfipc/pipe.h>
#include <lfipc/region.h>
#include <lfipc/sync.h>
#include <lfipc/value.h>

#include "common/testhelp.h"
#include "internal/recover.h"
#include "internal/region.h"
#include "internal/value.h"

#define REGION_SIZE ((size_t)4 << 20)
#define REAP_MS 30000

static lfipc_region *r;
static char rname[64];

static void setup(void)
{
	cr_assert_eq(lfipc_region_create(NULL, REGION_SIZE, 0, &r), 0);
}

static void teardown(void)
{
	lfipc_region_close(r);
	r = NULL;
	if (rname[0])
		lfipc_region_unlink(rname);
	rname[0] = '\0';
}

/* ---- layout ------------------------------------------------------------ */

#define CHECK_LAYOUT(T, tag)                                                   \
	do {                                                                   \
		lfipc_array *a;                                                \
		T *v, x;                                                       \
		cr_assert_eq(lfipc_type_size(tag), sizeof(T));                 \
		cr_assert_eq(lfipc_array_create(r, #T, tag, 5, false, &a), 0); \
		v = lfipc_array_data(a);                                       \
		cr_assert_eq((uintptr_t)v % 64, 0);                            \
		cr_assert_eq((uintptr_t)&v[3] % alignof(T), 0);                \
		cr_assert_eq((uintptr_t)&v[3] - (uintptr_t)v, 3 * sizeof(T));  \
		for (int i = 0; i < 5; i++)                                    \
			cr_assert(v[i] == (T)0, "zeroed");                     \
		v[3] = (T)1;                                                   \
		cr_assert_eq(lfipc_array_get(a, 3, 1, &x), 0);                 \
		cr_assert(x == (T)1);                                          \
		x = (T)0;                                                      \
		cr_assert_eq(lfipc_array_set(a, 4, 1, &x), 0);                 \
		cr_assert(v[4] == (T)0);                                       \
		cr_assert_eq(lfipc_array_len(a), 5);                           \
		cr_assert_eq(lfipc_array_type(a), tag);                        \
		lfipc_array_close(a);                                          \
	} while (0)

Test(value, elements_are_laid_out_as_the_c_type, .init = setup,
     .fini = teardown)
{
	CHECK_LAYOUT(int8_t, LFIPC_I8);
	CHECK_LAYOUT(uint8_t, LFIPC_U8);
	CHECK_LAYOUT(int16_t, LFIPC_I16);
	CHECK_LAYOUT(uint16_t, LFIPC_U16);
	CHECK_LAYOUT(int32_t, LFIPC_I32);
	CHECK_LAYOUT(uint32_t, LFIPC_U32);
	CHECK_LAYOUT(int64_t, LFIPC_I64);
	CHECK_LAYOUT(uint64_t, LFIPC_U64);
	CHECK_LAYOUT(float, LFIPC_F32);
	CHECK_LAYOUT(double, LFIPC_F64);
	CHECK_LAYOUT(char, LFIPC_CHAR);
	CHECK_LAYOUT(bool, LFIPC_BOOL);
	cr_assert_eq(lfipc_type_size((lfipc_type)12), 0);
}

Test(value, slices_are_bounds_checked, .init = setup, .fini = teardown)
{
	lfipc_array *a;
	double in[4] = {1.5, 2.5, 3.5, 4.5}, out[4] = {0};

	cr_assert_eq(lfipc_array_create(r, "d", LFIPC_F64, 4, false, &a), 0);
	cr_assert_eq(lfipc_array_set(a, 0, 4, in), 0);
	cr_assert_eq(lfipc_array_get(a, 1, 3, out), 0);
	cr_assert_eq(out[0], 2.5);
	cr_assert_eq(out[2], 4.5);
	cr_assert_eq(lfipc_array_get(a, 2, 3, out), -ERANGE);
	cr_assert_eq(lfipc_array_set(a, 4, 1, in), -ERANGE);
	cr_assert_eq(lfipc_array_get(a, SIZE_MAX, 2, out), -ERANGE);
	cr_assert_eq(lfipc_array_get(a, 1, SIZE_MAX, out), -ERANGE);
	cr_assert_eq(lfipc_array_get(a, 4, 0, out), 0, "empty slice at end");
	cr_assert_eq(lfipc_array_get(a, 5, 0, out), -ERANGE);
	cr_assert_eq(lfipc_array_get(a, 0, 1, NULL), -EINVAL);
	cr_assert_eq(lfipc_array_lock(a), NULL);
	lfipc_array_close(a);
}

Test(value, create_rejects_bad_arguments, .init = setup, .fini = teardown)
{
	lfipc_array *a;
	lfipc_conn *c0, *c1;

	cr_assert_eq(lfipc_array_create(r, "x", LFIPC_I32, 0, false, &a),
		     -EINVAL);
	cr_assert_eq(lfipc_array_create(r, "x", (lfipc_type)12, 1, false, &a),
		     -EINVAL);
	cr_assert_eq(lfipc_array_create(r, "", LFIPC_I32, 1, false, &a),
		     -EINVAL);
	cr_assert_eq(
	    lfipc_array_create(r, "x", LFIPC_I64, SIZE_MAX / 4, false, &a),
	    -EOVERFLOW);
	cr_assert_eq(lfipc_array_create(r, "x", LFIPC_I64, 1 << 20, false, &a),
		     -ENOSPC);
	cr_assert_eq(lfipc_array_create(r, "x", LFIPC_I64, 1, false, &a), 0);
	lfipc_array_close(a);
	cr_assert_eq(lfipc_array_create(r, "x", LFIPC_I64, 1, false, &a),
		     -EEXIST);
	cr_assert_eq(lfipc_array_open(r, "none", &a), -ENOENT);
	cr_assert_eq(lfipc_pipe_create(r, "pipe", 0, true, &c0, &c1), 0);
	cr_assert_eq(lfipc_array_open(r, "pipe", &a), -EINVAL);
	lfipc_conn_close(c0);
	lfipc_conn_close(c1);
}

/* ---- atomic operations -------------------------------------------------- */

Test(value, atomic_operations_respect_each_integer_range, .init = setup,
     .fini = teardown)
{
	lfipc_array *a;
	int64_t old, v;

	cr_assert_eq(lfipc_array_create(r, "u8", LFIPC_U8, 2, false, &a), 0);
	cr_assert_eq(lfipc_array_store(a, 0, 255), 0);
	cr_assert_eq(lfipc_array_store(a, 0, 256), -EOVERFLOW);
	cr_assert_eq(lfipc_array_store(a, 0, -1), -EOVERFLOW);
	cr_assert_eq(lfipc_array_fetch_add(a, 0, 1, &old), 0);
	cr_assert_eq(old, 255);
	cr_assert_eq(lfipc_array_load(a, 0, &v), 0);
	cr_assert_eq(v, 0, "wraps like C");
	cr_assert_eq(lfipc_array_fetch_add(a, 0, -1, NULL), 0);
	cr_assert_eq(lfipc_array_load(a, 0, &v), 0);
	cr_assert_eq(v, 255);
	cr_assert_eq(lfipc_array_load(a, 2, &v), -ERANGE);
	cr_assert_eq(lfipc_array_store(a, 2, 1), -ERANGE);
	cr_assert_eq(lfipc_array_fetch_add(a, 2, 1, NULL), -ERANGE);
	cr_assert_eq(lfipc_array_cas(a, 2, 0, 1), -ERANGE);
	lfipc_array_close(a);

	cr_assert_eq(lfipc_array_create(r, "i16", LFIPC_I16, 1, false, &a), 0);
	cr_assert_eq(lfipc_array_store(a, 0, INT16_MIN), 0);
	cr_assert_eq(lfipc_array_load(a, 0, &v), 0);
	cr_assert_eq(v, INT16_MIN, "sign-extended");
	cr_assert_eq(lfipc_array_store(a, 0, INT16_MAX + 1), -EOVERFLOW);
	cr_assert_eq(lfipc_array_cas(a, 0, 5, 6), -EAGAIN);
	cr_assert_eq(lfipc_array_cas(a, 0, INT16_MIN, 6), 0);
	cr_assert_eq(lfipc_array_cas(a, 0, 6, 1 << 20), -EOVERFLOW);
	cr_assert_eq(lfipc_array_exchange(a, 0, -7, &old), 0);
	cr_assert_eq(old, 6);
	cr_assert_eq(lfipc_array_load(a, 0, &v), 0);
	cr_assert_eq(v, -7);
	lfipc_array_close(a);

	cr_assert_eq(lfipc_array_create(r, "u32", LFIPC_U32, 1, false, &a), 0);
	cr_assert_eq(lfipc_array_store(a, 0, UINT32_MAX), 0);
	cr_assert_eq(lfipc_array_load(a, 0, &v), 0);
	cr_assert_eq(v, (int64_t)UINT32_MAX, "zero-extended");
	cr_assert_eq(lfipc_array_store(a, 0, (int64_t)UINT32_MAX + 1),
		     -EOVERFLOW);
	lfipc_array_close(a);

	cr_assert_eq(lfipc_array_create(r, "u64", LFIPC_U64, 1, false, &a), 0);
	cr_assert_eq(lfipc_array_store(a, 0, (int64_t)UINT64_MAX), 0);
	cr_assert_eq(((uint64_t *)lfipc_array_data(a))[0], UINT64_MAX);
	cr_assert_eq(lfipc_array_fetch_add(a, 0, 2, &old), 0);
	cr_assert_eq((uint64_t)old, UINT64_MAX);
	cr_assert_eq(((uint64_t *)lfipc_array_data(a))[0], 1);
	lfipc_array_close(a);

	cr_assert_eq(lfipc_array_create(r, "c", LFIPC_CHAR, 1, false, &a), 0);
	cr_assert_eq(lfipc_array_store(a, 0, 'A'), 0);
	cr_assert_eq(*(char *)lfipc_array_data(a), 'A');
	cr_assert_eq(lfipc_array_store(a, 0, (int64_t)CHAR_MAX + 1),
		     -EOVERFLOW);
	lfipc_array_close(a);
}

Test(value, atomic_operations_on_non_integers_are_einval, .init = setup,
     .fini = teardown)
{
	const lfipc_type t[] = {LFIPC_F32, LFIPC_F64, LFIPC_BOOL};
	const char *names[] = {"f", "d", "b"};

	for (int k = 0; k < 3; k++) {
		lfipc_array *a;
		int64_t v;

		cr_assert_eq(
		    lfipc_array_create(r, names[k], t[k], 1, false, &a), 0);
		cr_assert_eq(lfipc_array_load(a, 0, &v), -EINVAL);
		cr_assert_eq(lfipc_array_store(a, 0, 1), -EINVAL);
		cr_assert_eq(lfipc_array_exchange(a, 0, 1, &v), -EINVAL);
		cr_assert_eq(lfipc_array_fetch_add(a, 0, 1, &v), -EINVAL);
		cr_assert_eq(lfipc_array_cas(a, 0, 0, 1), -EINVAL);
		lfipc_array_close(a);
	}
}

/* ---- across processes --------------------------------------------------- */

#define NPROC 4
static int iters;

static int child_add(void *arg)
{
	lfipc_array *a;

	(void)arg;
	if (lfipc_array_open(r, "ctr", &a) != 0)
		return 1;
	for (int i = 0; i < iters; i++) {
		if (lfipc_array_fetch_add(a, 0, 1, NULL) != 0)
			return 2;
		if (lfipc_array_fetch_add(a, 1, -1, NULL) != 0)
			return 3;
	}
	lfipc_array_close(a);
	return 0;
}

Test(value, fetch_add_from_many_processes_reaches_the_exact_total,
     .init = setup, .fini = teardown, .timeout = 60)
{
	lfipc_array *a;
	pid_t pids[NPROC];
	int64_t v;

	iters = 100000 * th_scale();
	cr_assert_eq(lfipc_array_create(r, "ctr", LFIPC_I64, 2, false, &a), 0);
	for (int i = 0; i < NPROC; i++) {
		pids[i] = th_fork(child_add, NULL);
		cr_assert_gt(pids[i], 0);
	}
	cr_assert_eq(th_reap_all(pids, NPROC, REAP_MS), 0);
	cr_assert_eq(lfipc_array_load(a, 0, &v), 0);
	cr_assert_eq(v, (int64_t)NPROC * iters);
	cr_assert_eq(lfipc_array_load(a, 1, &v), 0);
	cr_assert_eq(v, -(int64_t)NPROC * iters);
	lfipc_array_close(a);
}

/* A compound, non-atomic update: two elements that must stay equal, and a
 * read-modify-write of a double. */
static int child_locked(void *arg)
{
	lfipc_array *a;
	lfipc_lock *l;
	double *d;

	(void)arg;
	if (lfipc_array_open(r, "acc", &a) != 0)
		return 1;
	l = lfipc_array_lock(a);
	d = lfipc_array_data(a);
	if (!l)
		return 2;
	for (int i = 0; i < iters; i++) {
		int rc = lfipc_lock_acquire(l, LFIPC_FOREVER);

		if (rc != 0)
			return 3;
		if (d[0] != d[1])
			return 4;
		d[0] = d[0] + 1.0;
		d[1] = d[1] + 1.0;
		if (lfipc_lock_release(l) != 0)
			return 5;
	}
	lfipc_array_close(a);
	return 0;
}

Test(value, compound_updates_under_the_lock_are_exact, .init = setup,
     .fini = teardown, .timeout = 60)
{
	lfipc_array *a;
	pid_t pids[NPROC];
	double out[2];

	iters = 20000 * th_scale();
	cr_assert_eq(lfipc_array_create(r, "acc", LFIPC_F64, 2, true, &a), 0);
	cr_assert_not_null(lfipc_array_lock(a));
	for (int i = 0; i < NPROC; i++) {
		pids[i] = th_fork(child_locked, NULL);
		cr_assert_gt(pids[i], 0);
	}
	cr_assert_eq(th_reap_all(pids, NPROC, REAP_MS), 0);
	cr_assert_eq(lfipc_array_get(a, 0, 2, out), 0);
	cr_assert_eq(out[0], (double)NPROC * iters);
	cr_assert_eq(out[1], out[0]);
	/* The lock is recursive, as Python's Value(lock=True). */
	cr_assert_eq(lfipc_lock_acquire(lfipc_array_lock(a), LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_lock_acquire(lfipc_array_lock(a), LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_lock_release(lfipc_array_lock(a)), 0);
	cr_assert_eq(lfipc_lock_release(lfipc_array_lock(a)), 0);
	lfipc_array_close(a);
}

static int child_die_holding_lock(void *arg)
{
	lfipc_array *a;

	(void)arg;
	if (lfipc_array_open(r, "held", &a) != 0)
		return 1;
	if (lfipc_lock_acquire(lfipc_array_lock(a), LFIPC_FOREVER) != 0)
		return 2;
	kill(getpid(), SIGKILL);
	return 3;
}

Test(value, lock_of_a_process_killed_holding_it_is_taken_over, .init = setup,
     .fini = teardown, .timeout = 30)
{
	lfipc_array *a;
	pid_t pid;

	cr_assert_eq(lfipc_array_create(r, "held", LFIPC_I32, 1, true, &a), 0);
	pid = th_fork(child_die_holding_lock, NULL);
	cr_assert_eq(th_reap(pid, REAP_MS), 128 + SIGKILL);
	cr_assert_eq(lfipc_lock_acquire(lfipc_array_lock(a), 5000000000LL),
		     -EOWNERDEAD);
	cr_assert_eq(lfipc_lock_release(lfipc_array_lock(a)), 0);
	lfipc_array_close(a);
}

static int child_open_by_name(void *arg)
{
	lfipc_region *o;
	lfipc_array *a;
	int32_t v[3];

	(void)arg;
	if (lfipc_region_open(rname, &o) != 0)
		return 1;
	if (lfipc_array_open(o, "shared", &a) != 0)
		return 2;
	if (lfipc_array_len(a) != 3 || lfipc_array_type(a) != LFIPC_I32)
		return 3;
	if (lfipc_array_get(a, 0, 3, v) != 0 || v[0] != 10 || v[2] != 30)
		return 4;
	if (lfipc_array_store(a, 1, 21) != 0)
		return 5;
	lfipc_array_close(a);
	lfipc_region_close(o);
	return 0;
}

Test(value, another_process_opens_the_array_by_name_and_shares_it,
     .fini = teardown, .timeout = 30)
{
	lfipc_array *a;
	int32_t v[3] = {10, 20, 30};
	int64_t x;
	pid_t pid;

	th_name(rname, sizeof(rname), "value");
	cr_assert_eq(lfipc_region_create(rname, REGION_SIZE, 0600, &r), 0);
	cr_assert_eq(lfipc_array_create(r, "shared", LFIPC_I32, 3, true, &a),
		     0);
	cr_assert_eq(lfipc_array_set(a, 0, 3, v), 0);
	pid = th_fork(child_open_by_name, NULL);
	cr_assert_eq(th_reap(pid, REAP_MS), 0);
	cr_assert_eq(lfipc_array_load(a, 1, &x), 0);
	cr_assert_eq(x, 21);
	lfipc_array_close(a);
}

/* The header of an Array created without a lock: it sits just before the
 * data (internal/value.h). */
static struct lfipc_array_hdr *hdr_of(lfipc_array *a)
{
	return (struct lfipc_array_hdr *)((uint8_t *)lfipc_array_data(a) -
					  LFIPC_ARRAY_HDR_SIZE);
}

Test(value, open_refuses_a_corrupt_header_with_eproto, .init = setup,
     .fini = teardown)
{
	struct lfipc_array_hdr *h;
	lfipc_array *a, *b;

	cr_assert_eq(lfipc_array_create(r, "c", LFIPC_I32, 8, false, &a), 0);
	h = hdr_of(a);
	cr_assert_eq(h->magic, LFIPC_ARRAY_MAGIC);
	cr_assert_eq(h->len, 8);
	cr_assert_eq(lfipc_array_open(r, "c", &b), 0);
	lfipc_array_close(b);

	h->len = UINT64_C(1) << 40; /* runs past the block */
	cr_assert_eq(lfipc_array_open(r, "c", &b), -EPROTO);
	h->check = lfipc__array_hdr_check(h); /* even with a valid sum */
	cr_assert_eq(lfipc_array_open(r, "c", &b), -EPROTO);
	h->len = 8;
	h->check = lfipc__array_hdr_check(h);
	h->type = 99; /* no such type */
	cr_assert_eq(lfipc_array_open(r, "c", &b), -EPROTO);
	h->type = LFIPC_I64; /* a valid type, but not this size or checksum */
	cr_assert_eq(lfipc_array_open(r, "c", &b), -EPROTO);
	h->type = LFIPC_I32;
	cr_assert_eq(lfipc_array_open(r, "c", &b), 0);
	lfipc_array_close(b);
	lfipc_array_close(a);
}

Test(value, recover_checks_the_block_and_the_whole_header, .init = setup,
     .fini = teardown)
{
	struct lfipc_array_hdr *h;
	lfipc_array *a;
	uint64_t off, size;

	cr_assert_eq(lfipc_array_create(r, "c", LFIPC_I32, 8, false, &a), 0);
	cr_assert_eq(lfipc__obj_open(r, "c", LFIPC_OBJ_ARRAY, &off, &size), 0);
	cr_assert_eq(lfipc__array_recover(r, off, size), 0);
	cr_assert_eq(lfipc_region_recover(r), 0);
	/* a block outside the heap, or too small for a header: refused
	 * before anything is read */
	cr_assert_eq(lfipc__array_recover(r, UINT64_C(1) << 44, size), -EPROTO);
	cr_assert_eq(lfipc__array_recover(r, off, size + (UINT64_C(1) << 44)),
		     -EPROTO);
	cr_assert_eq(lfipc__array_recover(r, off, 8), -EPROTO);
	/* a header with a valid magic and checksum that describes more
	 * elements than the block holds */
	h = hdr_of(a);
	h->len = UINT64_C(1) << 40;
	h->check = lfipc__array_hdr_check(h);
	cr_assert_eq(lfipc__array_recover(r, off, size), -EPROTO);
	cr_assert_eq(lfipc_region_recover(r), -EPROTO);
	h->len = 8;
	h->check = lfipc__array_hdr_check(h);
	cr_assert_eq(lfipc_region_recover(r), 0);
	lfipc_array_close(a);
}

/* ---- threads (ThreadSanitizer sees the atomics) ------------------------ */

static void *thread_add(void *arg)
{
	lfipc_array *a = arg;

	for (int i = 0; i < iters; i++) {
		int64_t v;

		lfipc_array_fetch_add(a, 0, 1, NULL);
		do
			lfipc_array_load(a, 1, &v);
		while (lfipc_array_cas(a, 1, v, v + 3) == -EAGAIN);
	}
	return NULL;
}

Test(value, fetch_add_and_cas_loops_from_threads_are_exact, .init = setup,
     .fini = teardown, .timeout = 60)
{
	lfipc_array *a;
	pthread_t t[3];
	int64_t v;

	iters = 50000 * th_scale();
	cr_assert_eq(lfipc_array_create(r, "t", LFIPC_U32, 2, false, &a), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, thread_add, a), 0);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(lfipc_array_load(a, 0, &v), 0);
	cr_assert_eq(v, 3 * iters);
	cr_assert_eq(lfipc_array_load(a, 1, &v), 0);
	cr_assert_eq(v, 9 * iters);
	lfipc_array_close(a);
}
