/* SPDX-License-Identifier: MIT */
/*
 * fuzz.c - fuzz targets for what a region's memory can say: the region
 * header (lfipc_region_open_fd), the directory and bitmap (every typed
 * open, create, remove, stats, recover), every object type's block (its
 * open, then every operation of hx_ops.c) and pipe framing (ring bytes and
 * positions under ends that are already attached and have traffic).
 *
 * One entry point, LLVMFuzzerTestOneInput(), serves libFuzzer
 * (clang -fsanitize=fuzzer,address: `make fuzz`) and fuzz_replay.c, which
 * feeds it the regression corpus in `make check` with any compiler.
 *
 * Input: byte 0 chooses the target (mod 4), byte 1 the object type or
 * name, byte 2 holds flags (bit 0: put content in before the bytes are
 * changed; bit 1: copy the rest of the input verbatim over the target's
 * bytes instead of patching; bit 2: the directory target's bytes are the
 * whole directory and bitmap, not the entry of the object of byte 1).
 * Otherwise the rest is a list of patches, each [offset: 2 bytes LE]
 * [width code: 1 byte][value: 1, 2, 4 or 8 bytes], applied to the
 * target's bytes (offset modulo their length), so that a small input
 * changes a few fields of an otherwise valid object.
 *
 * Each input starts from the same pristine region (a private copy of it
 * is restored first), so inputs are independent and reproducible. Every
 * call is checked as in the hostile-peer test. A pointer or a length
 * outside the region, or a call that blocks a second past its budget (not
 * counting time off CPU), aborts: a crash for libFuzzer; a call that
 * blocked does so only if it blocks again when the same input runs once
 * more (an input decides everything the library sees, so a hang of the
 * library repeats; a stall of the machine, such as a paused VM, which no
 * per-thread clock shows, does not). A result
 * outside the documented codes is printed, and aborts too when
 * LFIPC_FUZZ_STRICT is set (by default it does not, so that one known
 * wrong code does not stop the search for crashes).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/layout.h"
#include "internal/region.h"

#include "hostile/hx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { T_HEADER, T_DIRECTORY, T_OBJECT, T_PIPE, T_COUNT };

#define F_FILL 0x1u
#define F_RAW 0x2u
#define F_WHOLE 0x4u

static lfipc_region *r;
static uint8_t *pristine;
static bool strict;
static bool blocked;    /* a call blocked in this run of the input */
static bool confirming; /* this is the input's second run */

static void on_violation(struct hx_ctx *cx, const char *call, int64_t rc,
			 int64_t elapsed_ns, int64_t off_cpu_ns,
			 int64_t budget_ns, const char *why)
{
	fprintf(stderr,
		"fuzz: %s: %s (%s) returned %lld (%.1f ms, %.1f ms of it off "
		"CPU, budget %.1f ms)\n",
		why, call, cx->obj ? cx->obj : "-", (long long)rc,
		elapsed_ns / 1e6, off_cpu_ns / 1e6, budget_ns / 1e6);
	if (strcmp(why, HX_WHY_BLOCKED) == 0 && !confirming) {
		blocked = true; /* LLVMFuzzerTestOneInput runs it again */
		return;
	}
	if (strict || strcmp(why, HX_WHY_ERRNO) != 0)
		abort();
}

static void ctx_init(struct hx_ctx *cx, lfipc_region *reg, uint64_t seed)
{
	memset(cx, 0, sizeof(*cx));
	cx->r = reg;
	cx->rng = seed | 1;
	cx->timeout_ns = LFIPC_NOWAIT;
	cx->slack_ns = 1000 * 1000 * 1000; /* a hang, not a slow call */
	cx->violation = on_violation;
	cx->all_ends = true;
}

static void obj_init(struct hx_obj *o, size_t type)
{
	memset(o, 0, sizeof(*o));
	o->t = &hx_types[type % hx_ntypes];
	snprintf(o->name, sizeof(o->name), "%s", o->t->name);
}

/* One region, with one object of every type, and its pristine image. */
static int setup(void)
{
	struct hx_ctx cx;

	strict = getenv("LFIPC_FUZZ_STRICT") != NULL;
	if (lfipc_region_create(NULL, LFIPC_REGION_MIN_SIZE, 0, &r) != 0)
		return -1;
	ctx_init(&cx, r, 1);
	for (size_t i = 0; i < hx_ntypes; i++) {
		struct hx_obj o;

		obj_init(&o, i);
		if (hx_create(&cx, &o) != 0)
			return -1;
		hx_close(&o);
	}
	pristine = malloc(r->size);
	if (!pristine)
		return -1;
	memcpy(pristine, r->base, r->size);
	return 0;
}

/* The directory entry (region offset) and the block of the object called
 * name, from the pristine directory. */
static bool block_of(const char *name, uint64_t *dirent, uint64_t *off,
		     uint64_t *size)
{
	const struct lfipc_hdr *h = (const void *)pristine;

	for (uint32_t i = 0; i < h->dir_cap; i++) {
		const struct lfipc_dirent *d =
		    (const void *)(pristine + h->dir_off +
				   (uint64_t)i * sizeof(*d));

		if (d->type != LFIPC_OBJ_NONE &&
		    strncmp(d->name, name, sizeof(d->name)) == 0) {
			*dirent = h->dir_off + (uint64_t)i * sizeof(*d);
			*off = d->off;
			*size = d->size;
			return true;
		}
	}
	return false;
}

/* Apply the input to [area, area + len). */
static void apply(uint8_t *area, uint64_t len, const uint8_t *p, size_t n,
		  unsigned flags)
{
	if (len == 0)
		return;
	if (flags & F_RAW) {
		memcpy(area, p, n < len ? n : len);
		return;
	}
	while (n >= 3) {
		uint64_t off = (uint64_t)(p[0] | p[1] << 8) % len;
		size_t w = (size_t)1 << (p[2] & 3);

		p += 3;
		n -= 3;
		if (w > n)
			w = n;
		if (w > len - off)
			w = len - off;
		memcpy(area + off, p, w);
		p += w;
		n -= w;
	}
}

/* Every type: open through reg, every operation, close. */
static void every_object(struct hx_ctx *cx)
{
	for (size_t i = 0; i < hx_ntypes; i++) {
		struct hx_obj o;

		obj_init(&o, i);
		if (hx_open(cx, &o) == 0)
			hx_run_all(cx, &o);
		hx_close(&o);
	}
}

static void fuzz_header(struct hx_ctx *cx, const uint8_t *p, size_t n,
			unsigned flags)
{
	lfipc_region *r2;

	apply(r->base, LFIPC_HDR_SIZE, p, n, flags);
	if (HX_CALL(cx, "region_open_fd", HX_REGION_OPEN_NS,
		    HX_ERRS(ENOENT, EACCES, EINVAL, EUSERS, ENOMEM, EBADF),
		    lfipc_region_open_fd(r->fd, &r2)) != 0)
		return;
	cx->r = r2;
	hx_region_ops(cx);
	every_object(cx);
	cx->r = r;
	lfipc_region_close(r2);
}

static void fuzz_directory(struct hx_ctx *cx, unsigned pick, const uint8_t *p,
			   size_t n, unsigned flags)
{
	struct hx_obj o;
	uint64_t d, off, size;

	obj_init(&o, pick);
	if (!(flags & F_WHOLE) && block_of(o.name, &d, &off, &size))
		/* The entry of the object of type pick. */
		apply(r->base + d, sizeof(struct lfipc_dirent), p, n, flags);
	else /* the directory and the bitmap behind it */
		apply(r->base + r->dir_off, r->heap_off - r->dir_off, p, n,
		      flags);
	every_object(cx);
	hx_region_ops(cx);
	hx_remove(cx, &o);
	snprintf(o.name, sizeof(o.name), "new");
	if (hx_create(cx, &o) == 0)
		hx_run_all(cx, &o);
	hx_close(&o);
}

static void fuzz_object(struct hx_ctx *cx, size_t type, const uint8_t *p,
			size_t n, unsigned flags)
{
	struct hx_obj before, after;
	uint64_t d, off, size;

	obj_init(&before, type);
	obj_init(&after, type);
	if (!block_of(before.name, &d, &off, &size))
		return;
	/* Attached and with content before the bytes change: the handle's
	 * private copies then disagree with shared memory. */
	if ((flags & F_FILL) && hx_open(cx, &before) == 0 && before.t->fill)
		before.t->fill(cx, &before);
	apply(r->base + off, size, p, n, flags);
	if (hx_open(cx, &after) == 0)
		hx_run_all(cx, &after);
	hx_close(&after);
	if (before.open)
		hx_run_all(cx, &before);
	hx_close(&before);
	HX_CALL(cx, "region_recover", 0, HX_ERRS(EINVAL),
		lfipc_region_recover(r));
}

static void run_input(const uint8_t *data, size_t size)
{
	struct hx_ctx cx;
	unsigned target, arg, flags;
	size_t pipes[8], npipes = 0;

	target = data[0] % T_COUNT;
	arg = data[1];
	flags = data[2];
	data += 3;
	size -= 3;
	memcpy(r->base, pristine, r->size);
	ctx_init(&cx, r, arg);
	switch (target) {
	case T_HEADER:
		fuzz_header(&cx, data, size, flags);
		break;
	case T_DIRECTORY:
		fuzz_directory(&cx, arg, data, size, flags);
		break;
	case T_OBJECT:
		fuzz_object(&cx, arg, data, size, flags);
		break;
	default: /* pipe framing: a pipe with traffic */
		for (size_t i = 0; i < hx_ntypes && npipes < 8; i++)
			if (strncmp(hx_types[i].name, "pipe", 4) == 0)
				pipes[npipes++] = i;
		if (npipes)
			fuzz_object(&cx, pipes[arg % npipes], data, size,
				    flags | F_FILL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;

	if (!ready)
		ready = setup() == 0 ? 1 : -1;
	if (ready < 0)
		abort();
	if (size < 3)
		return 0;
	blocked = false;
	run_input(data, size);
	if (blocked) {
		fprintf(stderr, "fuzz: a call blocked: running the input again "
				"(it aborts if a call blocks again)\n");
		confirming = true;
		run_input(data, size);
		confirming = false;
	}
	return 0;
}
