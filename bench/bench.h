/* SPDX-License-Identifier: MIT */
/*
 * lfipc-bench: the interface between the harness, the peers and the
 * scenarios. See doc/bench.md ("Adding a peer or a scenario").
 *
 * - The harness (harness.c, run.c, report.c, plot.c, main.c) owns timing,
 *   pinning, processes, repetitions, statistics, sequence checks and the
 *   output formats.
 * - A peer (peers/<name>.c) is one system under test: a message channel
 *   (send/recv between processes, two directions), a lock (acquire and
 *   release), or both. It knows nothing about timing or checks.
 * - A scenario (scenarios/<name>.c) makes one or more result tables: it
 *   picks the peers it can measure by their flags and calls the runners.
 *
 * Both are registered by the list BENCH_PARTS in mk/bench.am: the build
 * generates registry.c from it (bench/mkregistry.sh), in that order, which
 * is the order of the rows in every table.
 */
#ifndef LFIPC_BENCH_H
#define LFIPC_BENCH_H

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <sys/types.h>

/* ThreadSanitizer cannot see liburcu's own atomics: that peer is skipped. */
#if defined(__SANITIZE_THREAD__)
#define BENCH_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BENCH_TSAN 1
#endif
#endif

#define MAXMSG 4096 /* largest message size */
#define RCAP 1024   /* capacity of every ring (lfipc queue, ck, DPDK, ...) */
#define MAXW 64	    /* most worker processes of one run */
#define MAXBURST 32 /* largest burst of a peer's send_many/recv_many */

/* ---- options (main.c) ---------------------------------------------------- */

struct bench_opt {
	int reps;
	long rtt_n;  /* round trips per latency figure (all repetitions) */
	long tp_n;   /* messages per throughput run */
	long lock_n; /* lock operations per run */
	long hand_n; /* lock hand-off round trips per figure (all reps) */
	int death_n; /* owner-death trials */
	bool pin;
	int fmt;	   /* 0 table, 1 csv, 2 json */
	const char *plot;  /* --plot DIR */
	const char *only;  /* --only: comma-separated scenario names */
	const char *peers; /* --peers: only peers whose name has one of these */
	bool tiny;	   /* --tiny: smoke test for make check */
	bool quick;	   /* --quick */
	long long corrupt; /* --corrupt-seq N: test the checks (-1 off) */
	double deadline;   /* seconds a streaming run may take */
	const size_t *sizes; /* message sizes */
	int nsz;
	int npc, pcs[8][2]; /* --pc PxC */
	int nlp, lprocs[8]; /* --lock-procs N */
};
extern struct bench_opt opt;
extern int ncpu;

/* ---- peers --------------------------------------------------------------- */

enum peer_flags {
	PF_CHAN = 1u << 0,     /* a message channel: open/send/recv/close */
	PF_MPMC = 1u << 1,     /* several senders and receivers per direction */
	PF_THREADS = 1u << 2,  /* in-process only: workers are threads */
	PF_PINGPONG = 1u << 3, /* a one-slot hand-off: latency table only */
	PF_FLOOR = 1u << 4,    /* not a system: a physical limit */
	PF_LOCK = 1u << 5,     /* a lock: lock_open/acquire/release/... */
	PF_ROBUST =
	    1u << 6, /* lock: the next acquirer learns of a dead owner */
	PF_NO_OWNER = 1u << 7, /* lock: a semaphore (hand-off runs as a pair) */
	PF_BURST = 1u << 8,    /* channel: moves bursts (streaming only) */
	PF_COUNT = 1u << 9     /* channel: carries an 8-byte count only */
};

/*
 * One system under test. Only the members its flags name are used.
 *
 * Channels have two directions, 0 and 1 (a ping-pong sends on 0 and
 * answers on 1; a stream uses 0). open() runs in the parent before the
 * workers are forked (so its state, in MAP_SHARED memory or an lfipc
 * region, is inherited) and returns the channel or NULL; close() runs
 * after they were reaped. send/recv move exactly n bytes and return 0, or
 * -1 on any failure; a busy-polling peer must call bench_spin() in its
 * wait loop (it returns true when the run was aborted: give up with -1).
 * A peer with burst > 0 (flag PF_BURST) moves messages in bursts of up to burst
 * through send_many/recv_many, which return how many they moved (>= 1) or -1.
 *
 * Locks: lock_open() in the parent (shared state), acquire returns 0, 1
 * when it acquired from a dead owner (the lock is usable again), -1 on
 * failure; release returns 0 or -1. A PF_NO_OWNER lock (a semaphore) runs
 * the hand-off as a pair of them, each opened at 1 and acquired once.
 *
 * missing: when the peer was compiled out (configure did not find it, or
 * the build cannot run it), why; the report prints it as a note.
 * note: a fact about how the peer is measured, printed as a note when the
 * peer is used.
 */
struct peer {
	const char *name; /* the row's "system" */
	const char *wait; /* spin+futex, busy, futex, kernel */
	unsigned flags;
	const char *missing;
	const char *note;

	void *(*open)(size_t msz);
	int (*send)(void *ch, int dir, const void *m, size_t n);
	int (*recv)(void *ch, int dir, void *m, size_t n);
	int burst;
	int (*send_many)(void *ch, int dir, const void *const *m, size_t n,
			 int k);
	int (*recv_many)(void *ch, int dir, void *buf, size_t n, int k);
	void (*close)(void *ch);

	void *(*lock_open)(void);
	int (*acquire)(void *l);
	int (*release)(void *l);
	void (*lock_close)(void *l);
};

/* The registration table (registry.c, generated from mk/bench.am). */
extern const struct peer *const bench_peers[];
extern const int bench_npeers;

/* Is p present and does it have every flag in all and none in none? */
bool peer_is(const struct peer *p, unsigned all, unsigned none);

/* ---- scenarios ----------------------------------------------------------- */

struct plot;

/*
 * One scenario: --only name (or its group, e.g. "lock") selects it; run()
 * adds its rows; plot() (optional) adds its charts to --plot DIR.
 */
struct scenario {
	const char *name;
	const char *group;
	const char *what; /* one line for --help */
	void (*run)(void);
	void (*plot)(struct plot *pl);
};
extern const struct scenario *const bench_scenarios[];
extern const int bench_nscenarios;

/* ---- helpers (harness.c) ------------------------------------------------- */

uint64_t now_ns(void);
void pin(int cpu);     /* the calling thread, cpu mod ncpu */
void *shmem(size_t n); /* MAP_SHARED anonymous, exits on failure */
void shmem_free(void *p, size_t n);
bool aborted(void);    /* the current run was aborted */
bool bench_spin(void); /* one busy-wait step; true: aborted */
long futex_op(atomic_uint *w, int op, unsigned v, const struct timespec *t);
void bench_note(const char *s); /* a note line for the report header */
void progress(const char *what, const char *sys, const char *param);

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/*
 * Sequence numbers: every message carries its number in its first and
 * last 8 bytes (8-byte messages: once). fill_tx is what a sender writes:
 * with --corrupt-seq N, message N of every sender is damaged.
 */
void fill(char *b, size_t n, uint64_t seq);
void fill_tx(char *b, size_t n, uint64_t seq);
bool check(const char *b, size_t n, uint64_t seq);
#define SEQ_MASK ((1ull << 40) - 1) /* a message number: producer << 40 | i */

/* ---- workers (harness.c) ------------------------------------------------- */

struct job;
typedef int (*job_fn)(struct job *);
struct job {
	job_fn fn;
	const struct peer *p;
	void *ch; /* the peer's channel or lock */
	void *arg;
	size_t msz;
	long n, warm;
	int k, P, C, cpu;
	bool thr; /* a thread of this process, not a forked process */
	int rc;
	pid_t pid;
	pthread_t th;
};

/*
 * Run state shared with the workers. A worker that fails sets abort and (a
 * process) signals the parent, which may be blocked in a receive: see
 * RUN_ARM in run.c.
 */
struct sync {
	atomic_int ready, go, abort;
	_Atomic uint64_t t_start, t_end; /* min start, max end (lock runs) */
	atomic_uint waited; /* max share of a window spent waiting, per mille */
	_Atomic uint64_t sleeps; /* voluntary context switches in the windows */
};
extern struct sync *sy;

void reset_sync(void);
int spawn(struct job *j); /* 0, or -1 (nothing started) */
int join(struct job *j);  /* 0 the worker succeeded, -1 */
void stop(struct job *j); /* after a failure: kill or abort it */
int reap(pid_t pid);
int reap_deadline(pid_t pid, int ms);
void start_child(int cpu); /* pin, say ready, wait for go */
void start_parent(int nchild);
void note_start(void); /* min of the workers' start times */
void note_end(void);   /* max of their end times */
void spin_ns(uint64_t ns);

/*
 * How long the calling thread was runnable but not running (waiting for a
 * CPU taken by another process) during a measured window: wait_start()
 * at its start, wait_end() at its end records the share of the window in
 * sy->waited (the largest of the run's workers). A busy-polling system
 * whose partner waits for a CPU measures the scheduler, not itself; the
 * report marks rows whose runs waited over 10% (LOADED). It also counts
 * the thread's sleeps (voluntary context switches) into sy->sleeps.
 */
struct wclock {
	int fd;
	uint64_t rd, t;
	long nvcsw; /* voluntary context switches (sleeps) at the start */
};
void wait_start(struct wclock *w);
void wait_end(struct wclock *w);

/*
 * The escape of a run: a failing worker process sends SIGUSR1 (sets bad),
 * the run's deadline SIGALRM after secs (sets dl). The parent may be
 * blocked anywhere (a receive, a full ring); the handler jumps back here.
 * RUN_DISARM() before leaving the function that armed it.
 */
extern sigjmp_buf fail_jb;
extern volatile sig_atomic_t fail_armed;
void set_deadline(double sec); /* SIGALRM in sec seconds; 0 cancels */
#define RUN_ARM(bad, dl, secs)                                                 \
	do {                                                                   \
		switch (sigsetjmp(fail_jb, 1)) {                               \
		case 0:                                                        \
			fail_armed = 1;                                        \
			set_deadline(secs);                                    \
			break;                                                 \
		case 1:                                                        \
			(bad) = 1;                                             \
			break;                                                 \
		default:                                                       \
			(dl) = 1;                                              \
			break;                                                 \
		}                                                              \
	} while (0)
#define RUN_DISARM()                                                           \
	do {                                                                   \
		fail_armed = 0;                                                \
		set_deadline(0);                                               \
	} while (0)

/* ---- runners (run.c) ----------------------------------------------------- */

/* A 1x1 or ping-pong run that takes this long has hung: FAILED. */
#define HANG_SEC 120.0

/*
 * One ping-pong run of n round trips of msz bytes through channel peer p
 * (parent CPU0 sends on 0, child CPU1 answers on 1); before each send the
 * sender waits delay ns (0: none). Fills lat[] (ns per round trip, sorted).
 * Returns 0, or -1 when a check or a worker failed.
 */
int run_pingpong(const struct peer *p, size_t msz, long n, uint64_t delay,
		 double *lat);

/*
 * A ping-pong table: percentile rows, by message size, for every channel
 * peer that moves single messages (the floors included, at every size; a
 * doorbell such as eventfd carries only its 8-byte count, so it runs at
 * the first size only); n_all round trips per figure over all repetitions.
 */
void pingpong_table(const char *table, const size_t *sizes, int nsz, long n_all,
		    uint64_t delay);

/*
 * One streaming run: P producer and C consumer workers on direction 0 of
 * channel peer p; each producer sends n messages after a warm-up of n / 10.
 * Returns Mmsg/s or -1; *dl is set when the run hit opt.deadline (it
 * collapsed): the figure is then what was delivered by then.
 */
double run_stream(const struct peer *p, size_t msz, int P, int C, long n,
		  bool *dl);

/*
 * A streaming table: one row per channel peer with every flag in all (and
 * none in none), for each message size, P x C; param "PxC size" (or "size"
 * when bare_param).
 */
void stream_table(const char *table, int P, int C, const size_t *sizes, int nsz,
		  unsigned all, unsigned none, bool bare_param);

/*
 * procs worker processes each run op(arg) n times after a warm-up of n /
 * 10 (op returns 0, or -1 to fail the run): ns per op (procs 1) or the
 * total Mops/s, or -1 (lockrun.c).
 */
double op_run(int procs, long n, int (*op)(void *arg), void *arg);

/* Lock runners (lockrun.c), for lock peers. */
/* n acquire+count+release per process: ns per pair (procs 1) or Mops/s. */
double lock_run(const struct peer *p, int procs, long n);
/* One hand-off run of n round trips, sorted into rt[] (ns): 0 or -1. */
int handoff_run(const struct peer *p, long n, uint64_t delay, double *rt);
/* Owner SIGKILLed: us until the waiter learnt it, or -1. */
double death_run(const struct peer *p);

/* ---- results (report.c) -------------------------------------------------- */

struct row {
	const char *table, *sys, *wait, *unit;
	char param[40];
	int nv;	       /* number of values: 1 or 5 percentiles */
	double v[5];   /* medians over repetitions */
	double lo, hi; /* spread of v[0] */
	bool failed, lower_better;
	bool deadline;	/* a run was stopped at opt.deadline */
	bool floor;	/* a physical limit, not a system */
	double waited;	/* largest share of a run spent waiting for a CPU */
	int order;	/* creation order */
	int tord, pord; /* first row of the table / of table+param */
};
extern struct row rows[];
extern int nrows;

struct row *newrow(const char *table, const char *sys, const char *wait,
		   const char *unit, const char *param);
/* Note the run that just ended: how long its workers waited for a CPU. */
void row_waited(struct row *r);
/* Fill a one-value row from rep samples (sorted here); rep < 1 fails it. */
void setrow(struct row *r, double *v, int rep);
/* Sort samples ascending. */
void sort_samples(double *v, long n);
/*
 * n trials of trial(kind, seed), seeds i * 7919 + 13, into lat[] sorted:
 * 0, or -1 as soon as a trial fails (returns < 0).
 */
int run_trials(double (*trial)(int kind, unsigned seed), int kind, long n,
	       double *lat);
/* Percentiles over pooled samples, spread over the repetitions' p50s. */
void pool_row(struct row *r, double *all, long total, double *p50s, int rep);

/* A run of row r just returned x: note its CPU wait; trace it. */
void row_ran(struct row *r, double x);
/*
 * Measure the one-value rows r[0..n): fn(ctx[i]) for row i, opt.reps times
 * (reps if > 0), the repetitions outermost, so that every row's runs are
 * spread over the same stretch of time (a change of load on the machine
 * hits every row alike). A negative result fails the row; fn sets *dl when
 * its run hit the deadline: that figure is the row's, marked DEADLINE, and
 * the row runs no more.
 */
void repeat_rows(struct row **r, void **ctx, int n, int reps,
		 double (*fn)(void *ctx, bool *dl));
/*
 * The same for percentile rows: fn(ctx[i], lat) fills lat[0..per) with one
 * run's samples (sorted) and returns 0 or -1; each row pools its
 * repetitions' samples (pool_row).
 */
void repeat_pooled(struct row **r, void **ctx, int n, long per,
		   int (*fn)(void *ctx, double *lat));
/*
 * A row of table for every peer with every flag in all and none in none
 * (at most MAXPEERS): r[i], and ctx[i] = the peer. Returns how many.
 */
#define MAXPEERS 64
int peer_rows(struct row **r, void **ctx, const char *table, const char *unit,
	      const char *param, unsigned all, unsigned none);
/* repeat_rows() of one row. */
void repeat(struct row *r, int reps, double (*fn)(void *ctx, bool *dl),
	    void *ctx);

void print_header(void);
void print_results(void);

/* ---- plots (plot.c) ------------------------------------------------------ */

/* Does table have a row that did not fail? */
bool has_rows(const char *table);
FILE *plot_data(struct plot *pl, const char *name); /* DIR/name, or NULL */
FILE *plot_script(struct plot *pl);		    /* plot.gp */
void plot_output(struct plot *pl, const char *png); /* names a chart */
/*
 * One line per system of table (rows for which keep, when given, is true):
 * x = the number that starts param, y = the median; data in DIR/dat. Every
 * series gets its own colour, dash and point; lfipc series are drawn
 * thick, floors medium. Returns the number of series.
 */
int plot_series(struct plot *pl, const char *table, const char *dat,
		bool (*keep)(const struct row *r));
/* Run every selected scenario's plot() and gnuplot, in DIR. */
void plot_all(const char *dir, bool (*selected)(const struct scenario *));

#endif
