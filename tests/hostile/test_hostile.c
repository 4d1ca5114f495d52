/* SPDX-License-Identifier: MIT */
/*
 * test_hostile.c - a hostile peer against victims that run every public
 * operation of every object type (the table of hx_ops.c).
 *
 * The parent creates a named region with one instance of every type, then
 * forks
 *  - one hostile process that maps the region's memory directly and flips
 *    header fields, directory entries, participant slots, bitmap words and
 *    the words of object blocks (headers, slots, lengths, counters, ring
 *    bytes) between their real value and absurd ones: 0, all-ones, huge,
 *    off by one, just outside the heap or the region, another object's
 *    offset or size, a flipped bit; each target is flipped for up to 10 ms
 *    (the window between a check and a use) and then put back, or left
 *    absurd for a while; in phases of 0.1 to 0.4 s on one kind of target
 *    (region-wide words, one object's directory entry, one object's
 *    block), and the victims turn to the object flipped;
 *  - victims (built with AddressSanitizer: the build's sanitizer, or in a
 *    build without one a sanitized copy of the library; see
 *    mk/hostile.am) that open the region by name and loop over random
 *    operations with short timeouts, re-creating objects that were removed
 *    or made unusable;
 * and, while they run, stops a random victim now and then (SIGSTOP for up
 * to STOP_MAX_MS): a stopped peer is alive, and others must still honour
 * their timeouts.
 *
 * Pass: no victim crashes or triggers a sanitizer report; every result is
 * 0, a count, -EPROTO or an error its header documents; no call blocks
 * longer than its budget (timeout, plus what its documentation allows)
 * plus one slice (10 ms) plus a scheduling allowance (SLACK_MS, or
 * LFIPC_HOSTILE_SLACK_MS), not counting the time its own process was
 * stopped or runnable without a CPU (run_delay in schedstat: on a loaded
 * machine that can be tens of milliseconds, while a call that blocks by a
 * bug sleeps). Every child is reaped with a deadline; a victim stuck 5 s
 * past its budget prints its stack and exits. The region is unlinked.
 *
 * The hostile writer never writes the token of a live participant into a
 * word (it clears such a token first, see safe()): a peer that makes a lock
 * look held by a live process for ever blocks the calls that wait for that
 * lock without a time limit by design (the region lock, a Condition's lock
 * after the wait), which is not a defect.
 *
 * Duration: RUN_MS * LFIPC_STRESS_SCALE (LFIPC_HOSTILE_MS overrides).
 * To study one finding: LFIPC_HOSTILE_TYPES=queue,lock (and "region")
 * restricts victims and writer to those types, LFIPC_HOSTILE_FIELDS=
 * dirent.off,hdr. the writer to targets whose name starts so (as printed
 * in the list of the last flips), LFIPC_HOSTILE_VERBOSE=1 prints the
 * calls that were excused. tests/hostile/findings/ has what it found.
 * Exit: 0 pass, 1 fail (automake test protocol).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal/futex.h"
#include "internal/layout.h"
#include "internal/objtype.h"
#include "internal/proc.h"
#include "internal/region.h"
#include "internal/shm.h"

#include "hostile/hx.h"

#define MS ((int64_t)1000000)
#define REGION_SIZE ((size_t)1 << 20)
#define NVICTIMS 3
#define RUN_MS 3000
/* The scheduling allowance beyond budget + one slice. What it is compared
 * with is a call's overshoot net of its own time stopped or runnable
 * without a CPU; each victim prints its worst. Measured with the ASan
 * build on a loaded 2-core machine (two busy loops 9 nice levels above
 * the victims, 30 victims): raw overshoots up to 1.2 s, net at most
 * 1.9 ms. A call that really blocks sleeps, which adds nothing to its
 * time off CPU, so it is still over the limit (and the watchdog ends a
 * call stuck WATCHDOG_MS past its budget). */
#define SLACK_MS 20
#define STOP_MAX_MS 60
#define HOLD_MS (STOP_MAX_MS + 40)
#define WATCHDOG_MS 5000
#define FLIP_RING 16
#define PHASE_MIN_MS 100
#define PHASE_MAX_MS 400
#define EXIT_VIOLATION 3
#define EXIT_HANG 4

/* What the hostile writer did last (printed when a victim fails). */
struct flip {
	uint64_t off, value, real;
	unsigned width, times;
	char what[40];
};

/* Per-victim state the parent reads. */
struct vstate {
	_Atomic int64_t stopped_ns; /* time stopped, added before SIGCONT */
	_Atomic uint64_t calls, eproto, violations, excused;
	_Atomic int64_t worst_over_ns, worst_net_ns;
	char worst_call[40], worst_net_call[40];
	char cur_call[40];
};

struct shared {
	_Atomic int stop;
	/* The object the hostile writer is flipping now: 2 * its hx_types
	 * index, + 1 when the flips are in its directory entry (-1: none).
	 * Victims turn to it half of the time, so that calls meet the flips:
	 * opens (and recovery) for a directory entry, operations otherwise. */
	_Atomic int focus;
	_Atomic uint64_t nflips;
	struct flip ring[FLIP_RING];
	struct vstate v[NVICTIMS];
};

static struct shared *sh;
static char region_name[64];

/* ---- victims ------------------------------------------------------------- */

static struct vstate *me;
static const char *volatile cur_call;

/* Provided by the sanitizer runtimes: a symbolised stack. */
void __sanitizer_print_stack_trace(void) __attribute__((weak));

static void on_watchdog(int sig)
{
	static const char msg[] = "hostile: victim stuck in ";
	void *bt[64];
	int n = backtrace(bt, 64);
	const char *c = cur_call ? cur_call : "?";

	(void)sig;
	(void)!write(2, msg, sizeof(msg) - 1);
	(void)!write(2, c, strlen(c));
	(void)!write(2, "\n", 1);
	if (__sanitizer_print_stack_trace)
		__sanitizer_print_stack_trace();
	else
		backtrace_symbols_fd(bt, n, 2);
	_exit(EXIT_HANG);
}

static void v_enter(struct hx_ctx *cx, const char *call, int64_t budget_ns)
{
	int64_t ms =
	    budget_ns == INT64_MAX ? 60000 : budget_ns / MS + WATCHDOG_MS;
	struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};

	(void)cx;
	cur_call = call;
	snprintf(me->cur_call, sizeof(me->cur_call), "%s", call);
	setitimer(ITIMER_REAL, &it, NULL);
}

static void v_leave(struct hx_ctx *cx)
{
	struct itimerval it = {{0, 0}, {0, 0}};

	(void)cx;
	setitimer(ITIMER_REAL, &it, NULL);
}

static void v_violation(struct hx_ctx *cx, const char *call, int64_t rc,
			int64_t elapsed_ns, int64_t off_cpu_ns,
			int64_t budget_ns, const char *why)
{
	fprintf(stderr,
		"hostile: VIOLATION pid %d: %s (%s) returned %lld (%s): %s "
		"(%.1f ms, %.1f ms of it stopped or waiting for a CPU; "
		"budget %.1f ms, timeout %lld ns)\n",
		getpid(), call, cx->obj ? cx->obj : "-", (long long)rc,
		rc < 0 ? strerror((int)-rc) : "-", why, elapsed_ns / 1e6,
		off_cpu_ns / 1e6, budget_ns / 1e6, (long long)cx->timeout_ns);
}

static int64_t v_stopped_ns(struct hx_ctx *cx)
{
	(void)cx;
	return atomic_load(&me->stopped_ns);
}

static int64_t slack_ns(void)
{
	const char *s = getenv("LFIPC_HOSTILE_SLACK_MS");

	return (s ? atoll(s) : SLACK_MS) * MS;
}

static void ctx_init(struct hx_ctx *cx, lfipc_region *r, uint64_t seed)
{
	memset(cx, 0, sizeof(*cx));
	cx->r = r;
	cx->rng = seed | 1;
	cx->slack_ns = slack_ns();
	cx->hold_ns = HOLD_MS * MS;
	cx->region_name = region_name;
}

/* LFIPC_HOSTILE_TYPES="queue,pipe" restricts the victims to those types
 * (and "region" to the region-wide operations), to study one finding. */
static bool type_wanted(const char *only, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = only; p && *p;
	     p += strcspn(p, ",") + (p[strcspn(p, ",")] != 0))
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == 0))
			return true;
	return !only;
}

/* Does name start with one of the comma-separated prefixes (NULL: all)? */
static bool prefix_wanted(const char *list, const char *name)
{
	for (const char *p = list; p && *p;) {
		size_t n = strcspn(p, ",");

		if (n && strncmp(p, name, n) == 0)
			return true;
		p += n + (p[n] == ',');
	}
	return !list;
}

static int victim(int idx)
{
	struct hx_obj objs[64];
	struct hx_ctx cx;
	lfipc_region *r = NULL;
	int64_t give_up = th_now_ns() + 2000 * MS;
	int rc;

	me = &sh->v[idx];
	signal(SIGALRM, on_watchdog);
	{
		void *bt[1];

		backtrace(bt, 1); /* load libgcc now, not in the handler */
	}
	/* The header may be absurd at this instant: retry for a while. */
	while ((rc = lfipc_region_open(region_name, &r)) != 0) {
		if ((rc != -EPROTO && rc != -EUSERS) || th_now_ns() > give_up) {
			fprintf(stderr, "hostile: victim cannot open: %d\n",
				rc);
			return 1;
		}
		usleep(1000);
	}
	ctx_init(&cx, r, th_now_ns() ^ ((uint64_t)getpid() << 32));
	cx.violation = v_violation;
	cx.stopped_ns = v_stopped_ns;
	cx.verbose = getenv("LFIPC_HOSTILE_VERBOSE") != NULL;
	cx.enter = v_enter;
	cx.leave = v_leave;
	memset(objs, 0, sizeof(objs));
	for (size_t i = 0; i < hx_ntypes; i++) {
		objs[i].t = &hx_types[i];
		snprintf(objs[i].name, sizeof(objs[i].name), "%s",
			 hx_types[i].name);
	}
	static const int64_t timeouts[] = {LFIPC_NOWAIT, LFIPC_NOWAIT,
					   LFIPC_NOWAIT, 1 * MS, 3 * MS};
	const char *only = getenv("LFIPC_HOSTILE_TYPES");
	while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
		int focus =
		    atomic_load_explicit(&sh->focus, memory_order_relaxed);
		bool focused = focus >= 0 && th_rand(&cx.rng) % 2;
		size_t k = focused ? (size_t)focus / 2
				   : th_rand(&cx.rng) % (hx_ntypes + 1);
		struct hx_obj *o = &objs[k];
		unsigned p = (unsigned)(th_rand(&cx.rng) % 100);

		cx.timeout_ns = timeouts[th_rand(&cx.rng) % 5];
		if (k < hx_ntypes && !type_wanted(only, o->t->name))
			continue;
		if (focused && (focus & 1)) { /* its directory entry */
			if (p < 20)
				hx_region_ops(&cx);
			hx_close(o);
		}
		if (k == hx_ntypes) {
			if (type_wanted(only, "region"))
				hx_region_ops(&cx);
		} else if (!o->open) {
			rc = hx_open(&cx, o);
			if (rc == -ENOENT)
				hx_create(&cx, o);
			else if (rc < 0 && p < 15 && hx_remove(&cx, o) == 0)
				hx_create(&cx, o);
		} else if (p == 0) {
			hx_remove(&cx, o);
		} else if (p < 10) {
			hx_close(o); /* opens are targets too */
		} else {
			hx_run_one(&cx, o);
		}
	}
	for (size_t i = 0; i < hx_ntypes; i++)
		hx_close(&objs[i]);
	lfipc_region_close(r);
	atomic_store(&me->calls, cx.calls);
	atomic_store(&me->eproto, cx.eproto);
	atomic_store(&me->violations, cx.violations);
	atomic_store(&me->excused, cx.excused);
	atomic_store(&me->worst_over_ns, cx.worst_over_ns);
	snprintf(me->worst_call, sizeof(me->worst_call), "%s",
		 cx.worst_call ? cx.worst_call : "-");
	atomic_store(&me->worst_net_ns, cx.worst_net_ns);
	snprintf(me->worst_net_call, sizeof(me->worst_net_call), "%s",
		 cx.worst_net_call ? cx.worst_net_call : "-");
	return cx.violations ? EXIT_VIOLATION : 0;
}

static int victim_main(void *arg)
{
	/* exit(), not _exit(): LeakSanitizer checks the victim at exit. */
	exit(victim((int)(intptr_t)arg));
}

/* ---- the hostile writer -------------------------------------------------- */

struct hostile {
	uint8_t *map;
	struct lfipc_hdr h; /* the header as created: private geometry */
	lfipc_region *r;    /* for lfipc__token_alive() */
	uint64_t rng;
	/* The current phase: PHASE_MIN_MS to PHASE_MAX_MS on one kind of
	 * target (region-wide words, or one object's directory entry, or
	 * one object's block), so that the victims' calls concentrate on
	 * what is being flipped. */
	int64_t phase_end;
	int phase;
	uint32_t phase_di;
};

enum { PH_REGION, PH_DIRENT, PH_BLOCK };

#define FIELD(s, f, name)                                                      \
	{                                                                      \
		offsetof(struct s, f), sizeof(((struct s *)0)->f), name        \
	}

static const struct field {
	size_t off, width;
	const char *name;
} hdr_fields[] =
    {
	FIELD(lfipc_hdr, magic, "hdr.magic"),
	FIELD(lfipc_hdr, version, "hdr.version"),
	FIELD(lfipc_hdr, hdr_size, "hdr.hdr_size"),
	FIELD(lfipc_hdr, size, "hdr.size"),
	FIELD(lfipc_hdr, proc_off, "hdr.proc_off"),
	FIELD(lfipc_hdr, proc_cap, "hdr.proc_cap"),
	FIELD(lfipc_hdr, dir_cap, "hdr.dir_cap"),
	FIELD(lfipc_hdr, dir_off, "hdr.dir_off"),
	FIELD(lfipc_hdr, bitmap_off, "hdr.bitmap_off"),
	FIELD(lfipc_hdr, heap_off, "hdr.heap_off"),
	FIELD(lfipc_hdr, heap_granules, "hdr.heap_granules"),
	FIELD(lfipc_hdr, layout_sum, "hdr.layout_sum"),
	FIELD(lfipc_hdr, lock, "hdr.lock"),
	FIELD(lfipc_hdr, jnl_op, "hdr.jnl_op"),
	FIELD(lfipc_hdr, jnl_dir, "hdr.jnl_dir"),
	FIELD(lfipc_hdr, jnl_first, "hdr.jnl_first"),
	FIELD(lfipc_hdr, jnl_count, "hdr.jnl_count"),
	FIELD(lfipc_hdr, granules_free, "hdr.granules_free"),
	FIELD(lfipc_hdr, nobjects, "hdr.nobjects"),
	FIELD(lfipc_hdr, dir_gen, "hdr.dir_gen"),
},
  dirent_fields[] =
      {
	  FIELD(lfipc_dirent, type, "dirent.type"),
	  FIELD(lfipc_dirent, name_len, "dirent.name_len"),
	  FIELD(lfipc_dirent, off, "dirent.off"),
	  FIELD(lfipc_dirent, size, "dirent.size"),
	  FIELD(lfipc_dirent, creator, "dirent.creator"),
	  FIELD(lfipc_dirent, gen, "dirent.gen"),
	  {offsetof(struct lfipc_dirent, name), 4, "dirent.name[0..3]"},
},
  proc_fields[] = {
      FIELD(lfipc_proc_slot, gen, "proc.gen"),
      FIELD(lfipc_proc_slot, pid, "proc.pid"),
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t hrand(struct hostile *x, uint64_t n)
{
	return n ? th_rand(&x->rng) % n : 0;
}

static uint64_t heap_end(const struct hostile *x)
{
	return x->h.heap_off + x->h.heap_granules * LFIPC_GRANULE;
}

/* A used directory entry's block (entry *di if want, else a random one),
 * checked against the private geometry (the hostile writer trusts shared
 * memory no more than the library). */
static bool some_block(struct hostile *x, bool want, uint32_t *di,
		       uint64_t *off, uint64_t *size)
{
	for (int tries = 0; tries < (want ? 1 : 64); tries++) {
		uint32_t i = want ? *di : (uint32_t)hrand(x, x->h.dir_cap);
		const struct lfipc_dirent *d =
		    (const void *)(x->map + x->h.dir_off +
				   (uint64_t)i * sizeof(*d));
		uint32_t type = *(const volatile uint32_t *)&d->type;
		uint64_t o = *(const volatile uint64_t *)&d->off;
		uint64_t s = *(const volatile uint64_t *)&d->size;

		/* Entries being created (INIT) are targets too. */
		if (type == 0 ||
		    (!lfipc__objtype(type) && type != LFIPC_OBJ_INIT))
			continue;
		if (o < x->h.heap_off || o > heap_end(x) || s == 0 ||
		    s > heap_end(x) - o)
			continue;
		*di = i;
		*off = o;
		*size = s;
		return true;
	}
	return false;
}

static uint64_t load(const struct hostile *x, uint64_t off, unsigned width)
{
	if (width == 8)
		return atomic_load((_Atomic uint64_t *)(x->map + off));
	if (width == 4)
		return atomic_load((_Atomic uint32_t *)(x->map + off));
	return *(volatile uint8_t *)(x->map + off);
}

static void store(struct hostile *x, uint64_t off, unsigned width, uint64_t v)
{
	if (width == 8)
		atomic_store((_Atomic uint64_t *)(x->map + off), v);
	else if (width == 4)
		atomic_store((_Atomic uint32_t *)(x->map + off), (uint32_t)v);
	else
		*(volatile uint8_t *)(x->map + off) = (uint8_t)v;
}

/* Clear the token of a live participant from each 32-bit lane of v (see
 * the header comment). */
static uint64_t safe(struct hostile *x, uint64_t v, unsigned width)
{
	for (unsigned lane = 0; lane * 4 < width; lane++) {
		uint32_t w = (uint32_t)(v >> (32 * lane));
		uint32_t t = w & LFIPC_TOKEN_MASK;

		if (t && lfipc__token_alive(x->r, t))
			v &= ~((uint64_t)LFIPC_TOKEN_MASK << (32 * lane));
	}
	return v;
}

/* An absurd (or plausible) value for a word whose real value is real, in
 * a block at block_off (0 if none). */
static uint64_t absurd(struct hostile *x, uint64_t real, uint64_t block_off)
{
	uint32_t di;
	uint64_t o = 0, s = 0;
	bool other = some_block(x, false, &di, &o, &s);

	switch (hrand(x, 20)) {
	case 0:
		return 0;
	case 1:
		return ~UINT64_C(0);
	case 2:
		return UINT64_C(1) << (40 + hrand(x, 23));
	case 3:
		return real + 1;
	case 4:
		return real - 1;
	case 5:
		return heap_end(x); /* just outside the heap */
	case 6:
		return heap_end(x) - 8;
	case 7:
		return x->h.size;
	case 8:
		return x->h.size + LFIPC_GRANULE;
	case 9:
		return other ? o : 0; /* another object's offset */
	case 10:
		return other ? s : 1; /* another object's size */
	case 11: /* relative: from this block to another object */
		return other && block_off ? o - block_off : real * 2;
	case 12: /* relative: to just outside the region */
		return block_off ? x->h.size - block_off : real + 4096;
	case 13:
		return real ^ (UINT64_C(1) << hrand(x, 64));
	case 14:
		return UINT64_C(0x80000000);
	case 15:
		return UINT64_C(0x7fffffff);
	case 16:
		return real + LFIPC_GRANULE;
	case 17:
		return x->h.heap_off - LFIPC_GRANULE;
	case 18:
		return (uint64_t) - (int64_t)(1 + hrand(x, 64));
	default:
		return th_rand(&x->rng);
	}
}

/* Tell the victims which type directory entry di holds (by its name).
 * Return false when LFIPC_HOSTILE_TYPES leaves that type out: its memory
 * is then no target either. */
static bool set_focus(struct hostile *x, uint32_t di, bool dirent)
{
	const char *only = getenv("LFIPC_HOSTILE_TYPES");
	char name[LFIPC_NAME_MAX + 1];

	lfipc__shm_copy(name,
			x->map + x->h.dir_off +
			    (uint64_t)di * sizeof(struct lfipc_dirent) +
			    offsetof(struct lfipc_dirent, name),
			LFIPC_NAME_MAX);
	name[LFIPC_NAME_MAX] = 0;
	for (size_t i = 0; i < hx_ntypes; i++)
		if (strcmp(name, hx_types[i].name) == 0) {
			atomic_store(&sh->focus, 2 * (int)i + dirent);
			return type_wanted(only, name);
		}
	return only == NULL;
}

/* Choose a target word: its offset, width and a name for the report. */
static bool pick(struct hostile *x, uint64_t *off, unsigned *width,
		 uint64_t *block_off, char *what, size_t n)
{
	uint64_t k, bo, bs;
	uint32_t di = x->phase_di;
	const struct field *f;
	int64_t now = th_now_ns();

	*block_off = 0;
	if (now >= x->phase_end ||
	    (x->phase != PH_REGION && !some_block(x, true, &di, &bo, &bs))) {
		k = hrand(x, 100);
		x->phase = k < 15 ? PH_REGION : k < 50 ? PH_DIRENT : PH_BLOCK;
		x->phase_end =
		    now + (PHASE_MIN_MS +
			   (int64_t)hrand(x, PHASE_MAX_MS - PHASE_MIN_MS)) *
			      MS;
		atomic_store(&sh->focus, -1);
		if (x->phase != PH_REGION &&
		    !some_block(x, false, &x->phase_di, &bo, &bs))
			x->phase = PH_REGION;
		di = x->phase_di;
	}
	k = x->phase == PH_REGION ? hrand(x, 100) : 100;
	if (x->phase == PH_DIRENT) {
		/* Half of the time off or size, the fields that place it. */
		f = &dirent_fields[hrand(x, 2)
				       ? 2 + hrand(x, 2)
				       : hrand(x, NELEM(dirent_fields))];
		*off = x->h.dir_off +
		       (uint64_t)di * sizeof(struct lfipc_dirent) + f->off;
		if (!set_focus(x, di, true))
			goto unwanted;
		*width = (unsigned)f->width;
		snprintf(what, n, "%s[%u]", f->name, di);
	} else if (k < 55) {
		f = &hdr_fields[hrand(x, NELEM(hdr_fields))];
		*off = f->off;
		*width = (unsigned)f->width;
		snprintf(what, n, "%s", f->name);
	} else if (k < 85) {
		uint64_t slot = hrand(x, 8);

		f = &proc_fields[hrand(x, NELEM(proc_fields))];
		*off = x->h.proc_off + slot * sizeof(struct lfipc_proc_slot) +
		       f->off;
		*width = (unsigned)f->width;
		snprintf(what, n, "%s[%llu]", f->name,
			 (unsigned long long)slot);
	} else if (k < 100) {
		uint64_t words = (x->h.heap_granules + 63) / 64;

		*off = x->h.bitmap_off + 8 * hrand(x, words);
		*width = 8;
		snprintf(what, n, "bitmap+%llu",
			 (unsigned long long)(*off - x->h.bitmap_off));
	} else {
		uint64_t at;

		/* Half of the time in the first 1 KiB: object headers. */
		at = hrand(x, (hrand(x, 2) && bs > 1024) ? 1024 : bs);
		*width = hrand(x, 3) ? 8 : 4;
		at &= ~(uint64_t)(*width - 1);
		if (at + *width > bs)
			return false;
		*off = bo + at;
		*block_off = bo;
		if (!set_focus(x, di, false))
			goto unwanted;
		snprintf(what, n, "block[%u]+%llu", di, (unsigned long long)at);
	}
	/* LFIPC_HOSTILE_FIELDS=dirent.off,hdr: only targets whose name
	 * starts so (to study one finding). */
	if (prefix_wanted(getenv("LFIPC_HOSTILE_FIELDS"), what))
		return true;
unwanted:
	x->phase_end = 0; /* this phase may offer none: choose another */
	return false;
}

static int hostile(void *arg)
{
	lfipc_region *r = arg;
	struct hostile x = {.r = r, .rng = (uint64_t)th_now_ns() | 1};
	int fd = lfipc_region_fd(r);

	x.map =
	    mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (x.map == MAP_FAILED)
		return 1;
	memcpy(&x.h, x.map, sizeof(x.h));
	while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
		uint64_t off, real, bad, good, block_off;
		unsigned width, times = 0;
		int64_t until;
		struct flip *f;
		char what[40];

		if (!pick(&x, &off, &width, &block_off, what, sizeof(what)))
			continue;
		real = load(&x, off, width);
		bad = safe(&x, absurd(&x, real, block_off), width);
		good = safe(&x, real, width);
		f = &sh->ring[atomic_fetch_add(&sh->nflips, 1) % FLIP_RING];
		*f = (struct flip){off, bad, real, width, 0, ""};
		snprintf(f->what, sizeof(f->what), "%s", what);
		/* Between plausible and absurd, for 0.1 to 10 ms: the
		 * window between a check and a use. */
		until = th_now_ns() + (int64_t)(100 + hrand(&x, 10000)) * 1000;
		do {
			for (int i = 0; i < 64; i++, times++) {
				store(&x, off, width, bad);
				for (volatile int s = (int)hrand(&x, 200);
				     s > 0; s--)
					;
				store(&x, off, width, good);
			}
		} while (th_now_ns() < until);
		f->times = times;
		if (hrand(&x, 4) == 0) { /* leave it absurd for a while */
			store(&x, off, width, bad);
			usleep((useconds_t)hrand(&x, 3000));
			store(&x, off, width, good);
		}
		usleep(100); /* leave the CPUs to the victims */
	}
	munmap(x.map, REGION_SIZE);
	return 0;
}

/* ---- parent -------------------------------------------------------------- */

static void p_violation(struct hx_ctx *cx, const char *call, int64_t rc,
			int64_t elapsed_ns, int64_t off_cpu_ns,
			int64_t budget_ns, const char *why)
{
	(void)cx;
	(void)off_cpu_ns;
	(void)budget_ns;
	fprintf(stderr, "hostile: setup %s returned %lld: %s (%.1f ms)\n", call,
		(long long)rc, why, elapsed_ns / 1e6);
}

static void print_flips(void)
{
	uint64_t n = atomic_load(&sh->nflips);

	fprintf(stderr, "hostile: the last flips (oldest first):\n");
	for (uint64_t i = n > FLIP_RING ? n - FLIP_RING : 0; i < n; i++) {
		const struct flip *f = &sh->ring[i % FLIP_RING];

		fprintf(stderr,
			"  %-26s off %#llx width %u: %#llx <-> %#llx x%u\n",
			f->what, (unsigned long long)f->off, f->width,
			(unsigned long long)f->real,
			(unsigned long long)f->value, f->times);
	}
}

int main(void)
{
	const char *ms_env = getenv("LFIPC_HOSTILE_MS");
	int64_t run_ms = ms_env ? atoll(ms_env) : (int64_t)RUN_MS * th_scale();
	pid_t vic[NVICTIMS], hpid;
	struct hx_ctx cx;
	lfipc_region *r;
	uint64_t seed = (uint64_t)th_now_ns();
	int64_t end;
	int fails = 0, rc;

	setvbuf(stderr, NULL, _IOLBF, 0);
	/* Five busy processes: yield to the tests that run beside this one
	 * in a parallel make check (timing here discounts time off CPU). */
	(void)!nice(10);
	th_name(region_name, sizeof(region_name), "hostile");
	rc = lfipc_region_create(region_name, REGION_SIZE, 0, &r);
	if (rc) {
		fprintf(stderr, "hostile: region_create: %d\n", rc);
		return 1;
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		lfipc_region_unlink(region_name);
		return 1;
	}
	atomic_store(&sh->focus, -1);
	/* One instance of every type; the handles are closed (a pipe's
	 * ends are handed on, for the victims to attach). */
	ctx_init(&cx, r, seed);
	cx.violation = p_violation;
	for (size_t i = 0; i < hx_ntypes; i++) {
		struct hx_obj o = {.t = &hx_types[i]};

		snprintf(o.name, sizeof(o.name), "%s", hx_types[i].name);
		if (hx_create(&cx, &o) != 0)
			fails++;
		hx_close(&o);
	}
	hpid = th_fork(hostile, r);
	for (int i = 0; i < NVICTIMS; i++)
		vic[i] = th_fork(victim_main, (void *)(intptr_t)i);
	/* Meanwhile: stop a random victim now and then. */
	end = th_now_ns() + run_ms * MS;
	while (th_now_ns() < end) {
		int i = (int)(th_rand(&seed) % NVICTIMS);
		int64_t t0;

		usleep((useconds_t)(50000 + th_rand(&seed) % 200000));
		t0 = th_now_ns();
		kill(vic[i], SIGSTOP);
		usleep((useconds_t)(1000 * (1 + th_rand(&seed) % STOP_MAX_MS)));
		/* Counted before it runs again, so that it sees the time. */
		atomic_fetch_add(&sh->v[i].stopped_ns, th_now_ns() - t0);
		kill(vic[i], SIGCONT);
	}
	atomic_store(&sh->stop, 1);
	for (int i = 0; i < NVICTIMS; i++) {
		struct vstate *v = &sh->v[i];
		int st = th_reap(vic[i], 30000);

		fprintf(stderr,
			"hostile: victim %d: %llu calls, %llu -EPROTO, %llu "
			"violations (%llu excused: stopped or off CPU), worst "
			"overshoot "
			"%.1f ms (%s), %.1f ms net of time off CPU (%s); "
			"exit %d\n",
			i, (unsigned long long)v->calls,
			(unsigned long long)v->eproto,
			(unsigned long long)v->violations,
			(unsigned long long)v->excused, v->worst_over_ns / 1e6,
			v->worst_call, v->worst_net_ns / 1e6, v->worst_net_call,
			st);
		if (st != 0) {
			fails++;
			fprintf(stderr,
				"hostile: victim %d FAILED (%s), in %s\n", i,
				st == EXIT_VIOLATION ? "violations"
				: st == EXIT_HANG    ? "stuck"
				: st == 1	     ? "sanitizer report"
				: st > 128	     ? "killed by a signal"
						     : "error",
				v->cur_call);
		}
	}
	if (th_reap(hpid, 10000) != 0) {
		fprintf(stderr, "hostile: the hostile writer failed\n");
		fails++;
	}
	if (fails)
		print_flips();
	fprintf(stderr, "hostile: %llu flips in %lld ms\n",
		(unsigned long long)atomic_load(&sh->nflips),
		(long long)run_ms);
	lfipc_region_close(r);
	lfipc_region_unlink(region_name);
	munmap(sh, sizeof(*sh));
	return fails ? 1 : 0;
}
