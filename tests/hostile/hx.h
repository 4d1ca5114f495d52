/* SPDX-License-Identifier: MIT */
/*
 * hx.h - the table of object types and public operations that the
 * hostile-peer test (test_hostile.c) and the fuzz harness (fuzz.c) drive.
 *
 * Every public call goes through HX_CALL(), which times it and checks its
 * result against the call's documented error codes (-EPROTO is always
 * allowed: "shared memory is untrusted"). A call that returns an
 * undocumented code, or that blocks for longer than its budget (its
 * timeout, plus what its header comment allows beyond it) plus one sleep
 * slice plus a scheduling allowance, is a violation, reported through
 * hx_ctx.violation. The time the process spent stopped or waiting for a
 * CPU during the call is not counted (hx_off_cpu_ns()).
 *
 * A new object type is one struct hx_type entry in hx_types[] (hx_ops.c);
 * a new operation is one function and one line in its type's op table.
 */
#ifndef LFIPC_HX_H
#define LFIPC_HX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lfipc.h>

#include "common/testhelp.h"

/* One process's context: its region handle, the timeout of this op and
 * the bookkeeping of HX_CALL. */
struct hx_ctx {
	lfipc_region *r;
	int64_t timeout_ns; /* LFIPC_NOWAIT or a few ms, per op */
	int64_t slack_ns;   /* scheduling allowance beyond budget + slice */
	/* How long a call may wait, beyond its timeout, for a lock that a
	 * live process holds and that it takes with no time limit by its
	 * documentation (the region lock; a Condition's lock after a wait). */
	int64_t hold_ns;
	const char *region_name; /* for lfipc_region_open(); NULL: none */
	bool all_ends;	 /* a pipe open attaches both ends (one process) */
	const char *obj; /* the object of the running op (for reports) */
	uint64_t rng;
	/* Called on a violation (before HX_CALL returns). off_cpu_ns: the
	 * part of elapsed_ns this process was stopped or waiting for a CPU,
	 * which does not count against the budget. */
	void (*violation)(struct hx_ctx *cx, const char *call, int64_t rc,
			  int64_t elapsed_ns, int64_t off_cpu_ns,
			  int64_t budget_ns, const char *why);
	/* Nanoseconds this process has spent stopped so far (SIGSTOP by a
	 * test), or NULL. */
	int64_t (*stopped_ns)(struct hx_ctx *cx);
	bool verbose; /* print the calls excused as off CPU too */
	/* Called around every call (NULL: nothing), e.g. to arm a watchdog
	 * and to tell a parent which call runs. */
	void (*enter)(struct hx_ctx *cx, const char *call, int64_t budget_ns);
	void (*leave)(struct hx_ctx *cx);
	/* Statistics. */
	uint64_t calls, errors, eproto, violations;
	uint64_t excused;      /* past the limit, but not net of off-CPU time */
	int64_t worst_over_ns; /* most a call ran past its budget, raw */
	const char *worst_call;
	/* Most a call ran past its budget less its time off CPU: what the
	 * limit (one slice plus slack_ns) is compared with. */
	int64_t worst_net_ns;
	const char *worst_net_call;
	void *user;
};

/* Zero-terminated list of errno values (positive) a call may return
 * besides 0, a non-negative count and -EPROTO. */
#define HX_ERRS(...) ((const int[]){__VA_ARGS__, 0})
#define HX_NOERRS ((const int[]){0})

/* Opening a region waits "up to about one second" for a creator that is
 * still initialising it (a zero magic). */
#define HX_REGION_OPEN_NS ((int64_t)1000 * 1000 * 1000)

/* Budget of a call that takes cx->timeout_ns. */
#define HX_TMO(cx) ((cx)->timeout_ns < 0 ? INT64_MAX : (cx)->timeout_ns)

/* The why of a violation that is only an undocumented error code. */
#define HX_WHY_ERRNO "undocumented error code"
#define HX_WHY_BLOCKED "blocked past its budget plus a slice"

void hx_check(struct hx_ctx *cx, const char *call, int64_t budget_ns,
	      const int *errs, int64_t rc, int64_t elapsed_ns,
	      int64_t off_cpu_ns);

/* Time this process has spent off CPU so far although it wanted to run
 * (runnable without a CPU: run_delay of /proc/thread-self/schedstat) or
 * was stopped (cx->stopped_ns): on a loaded machine tens of milliseconds
 * per call, not time the call blocked. */
int64_t hx_off_cpu_ns(struct hx_ctx *cx);

/* Run expr (a public call) timed and checked; evaluates to its result
 * (int64_t). budget_ns: how long it may block by its documentation. */
#define HX_CALL(cx, call, budget_ns, errs, expr)                               \
	({                                                                     \
		int64_t hx_b_ = (budget_ns);                                   \
		if ((cx)->enter)                                               \
			(cx)->enter((cx), (call), hx_b_);                      \
		int64_t hx_o0_ = hx_off_cpu_ns(cx);                            \
		int64_t hx_t0_ = th_now_ns();                                  \
		int64_t hx_rc_ = (int64_t)(expr);                              \
		int64_t hx_el_ = th_now_ns() - hx_t0_;                         \
		int64_t hx_off_ = hx_off_cpu_ns(cx) - hx_o0_;                  \
		if ((cx)->leave)                                               \
			(cx)->leave((cx));                                     \
		hx_check((cx), (call), hx_b_, (errs), hx_rc_, hx_el_,          \
			 hx_off_);                                             \
		hx_rc_;                                                        \
	})

/* Report a violation that is not about a return code or a duration (a
 * pointer or a length out of range). */
void hx_fail(struct hx_ctx *cx, const char *call, int64_t rc, const char *why);

/* Does [p, p + n) lie inside cx->r's mapping? */
bool hx_in_region(const struct hx_ctx *cx, const void *p, size_t n);

/* One instance of an object type, as one process sees it. */
struct hx_obj {
	const struct hx_type *t;
	char name[LFIPC_NAME_MAX + 1];
	bool open;
	union {
		lfipc_queue *q;
		lfipc_lock *l;
		lfipc_sem *s;
		lfipc_cond *c;
		lfipc_event *e;
		lfipc_barrier *b;
		lfipc_array *a;
		lfipc_conn *end[2];
	} h;
	unsigned got; /* JoinableQueue: gets not yet task_done */
};

struct hx_op {
	const char *name;
	unsigned weight; /* relative frequency in the hostile test */
	void (*run)(struct hx_ctx *cx, struct hx_obj *o);
};

struct hx_type {
	const char *name;
	unsigned arg; /* a variant (flags, parties, element type, ...) */
	/* Create / open o->name into o->h; return the call's result. */
	int (*create)(struct hx_ctx *cx, struct hx_obj *o);
	int (*open)(struct hx_ctx *cx, struct hx_obj *o);
	void (*close)(struct hx_obj *o);
	/* Put some content in (messages, values), or NULL. */
	void (*fill)(struct hx_ctx *cx, struct hx_obj *o);
	const struct hx_op *ops; /* terminated by an entry with run NULL */
};

extern const struct hx_type hx_types[];
extern const size_t hx_ntypes;

/* Create, open, close, remove an instance through the table (timed and
 * checked); open/create set o->open on success. Return the call's rc. */
int hx_create(struct hx_ctx *cx, struct hx_obj *o);
int hx_open(struct hx_ctx *cx, struct hx_obj *o);
void hx_close(struct hx_obj *o);
int hx_remove(struct hx_ctx *cx, struct hx_obj *o);

/* Run every op of o's type once (the fuzzer), or one chosen by weight. */
void hx_run_all(struct hx_ctx *cx, struct hx_obj *o);
void hx_run_one(struct hx_ctx *cx, struct hx_obj *o);

/* Region-wide operations: stats, recover, a second handle by fd. */
void hx_region_ops(struct hx_ctx *cx);

#endif /* LFIPC_HX_H */
