// SPDX-License-Identifier: MIT
/*
 * lfipc-bench - compare lfipc with the IPC mechanisms people would otherwise
 * pick, side by side, in one run, on this machine.
 *
 * Method (as DPDK's ring_perf_autotest and the published queue benchmarks
 * do): processes created by fork() (liburcu, an in-process queue, runs in
 * threads), pinned parent CPU0 / children CPU1.. when there are >= 2 CPUs
 * (--no-pin disables), a warm-up before each measured run, every message
 * carrying its sequence number in its first and last 8 bytes which the
 * receiver checks (a failed check prints FAILED instead of a number and the
 * exit status is 1), several repetitions reported as median and min..max,
 * and a warning when max/min > 1.5. See doc/bench.md.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lfipc/pipe.h>
#include <lfipc/queue.h>
#include <lfipc/region.h>
#include <lfipc/sync.h>

/* ThreadSanitizer cannot see liburcu's own atomics: skip that peer there. */
#if defined(__SANITIZE_THREAD__)
#define BENCH_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BENCH_TSAN 1
#endif
#endif
#if defined(BENCH_TSAN) && defined(HAVE_URCU)
#undef HAVE_URCU
#define URCU_TSAN 1
#endif

#ifdef HAVE_CK
#include <ck_ring.h>
#endif
#ifdef HAVE_URCU
#define _LGPL_SOURCE 1
#include <urcu/wfcqueue.h>
#endif
#ifdef HAVE_DPDK
#include <rte_ring.h>
#include <rte_ring_elem.h>
#endif

#if defined(__GNUC__) && !defined(__clang__)
#define COMPILER "gcc " __VERSION__
#else
#define COMPILER __VERSION__
#endif

#define MAXMSG 4096
#define RCAP                                                                   \
	1024 /* capacity of every ring (lfipc queue, ck, DPDK, mutex+cond) */

/* ---- options and helpers ------------------------------------------------ */

static struct {
	int reps;
	long rtt_n;  /* round trips per latency figure (all repetitions) */
	long tp_n;   /* messages per throughput run */
	long lock_n; /* lock operations per run */
	long hand_n; /* lock hand-off round trips per figure (all reps) */
	int death_n; /* owner-death trials */
	bool pin;
	int fmt; /* 0 table, 1 csv, 2 json */
	const char *plot;
	bool tiny;	    /* --tiny: smoke test for make check */
	long long corrupt;  /* --corrupt-seq N: test the checks (-1 off) */
	int nlp, lprocs[8]; /* contended lock process counts */
	const char *only;   /* --only: comma-separated scenario names */
	double deadline;    /* seconds a P x C run may take */
} opt = {5,    100000, 200000, 200000, 20000, 11,   true, 0,
	 NULL, false,  -1,     0,      {0},   NULL, 5.0};

/* Is scenario name selected (--only absent, or name in its list)? */
static bool want(const char *name)
{
	size_t n = strlen(name);

	if (!opt.only)
		return true;
	for (const char *p = opt.only; *p;) {
		size_t l = strcspn(p, ",");

		if (l == n && !strncmp(p, name, n))
			return true;
		p += l + (p[l] == ',');
	}
	return false;
}

static int ncpu;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Pin the calling thread (a process's only thread, or one worker thread). */
static void pin(int cpu)
{
	cpu_set_t s;

	if (!opt.pin || ncpu < 2)
		return;
	CPU_ZERO(&s);
	CPU_SET(cpu % ncpu, &s);
	sched_setaffinity(0, sizeof(s), &s);
}

static void *shmem(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	return p;
}

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static bool aborted(void);

/*
 * One step of a busy wait: true when the run was aborted. (Busy loops must
 * look: under ThreadSanitizer a signal is only delivered at a call.)
 */
static bool spin_stop(void)
{
	relax();
	return aborted();
}

static void fill(char *b, size_t n, uint64_t seq)
{
	memcpy(b, &seq, 8);
	if (n >= 16)
		memcpy(b + n - 8, &seq, 8);
}

/*
 * What a sender writes: the sequence number, except that --corrupt-seq N
 * damages message N (first 8 bytes) so that the checks can be seen to fire.
 */
static void fill_tx(char *b, size_t n, uint64_t seq)
{
	fill(b, n, seq);
	if (opt.corrupt >= 0 &&
	    (seq & ((1ull << 40) - 1)) == (uint64_t)opt.corrupt) {
		uint64_t bad = seq ^ 0x5a5a5a5aull;

		memcpy(b, &bad, 8);
	}
}

static bool check(const char *b, size_t n, uint64_t seq)
{
	uint64_t a, z = seq;

	memcpy(&a, b, 8);
	if (n >= 16)
		memcpy(&z, b + n - 8, 8);
	return a == seq && z == seq;
}

static long futex(atomic_uint *w, int op, unsigned v)
{
	return syscall(SYS_futex, w, op, v, NULL, NULL, 0);
}

/* ---- results ------------------------------------------------------------- */

struct row {
	const char *table, *sys, *note, *unit;
	char param[40];
	int nv;	       /* number of values: 1 or 5 percentiles */
	double v[5];   /* medians over repetitions */
	double lo, hi; /* spread of v[0] */
	bool failed, lower_better;
	bool deadline;	/* a run was stopped at opt.deadline */
	int order;	/* creation order */
	int tord, pord; /* first row of the table / of table+param */
};

#define MAXROWS 1024
static struct row rows[MAXROWS];
static int nrows;

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmpd);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static const char *pct_names[5] = {"p50", "p90", "p99", "p99.9", "max"};

static void progress(const char *what, const char *sys, const char *param)
{
	if (isatty(2))
		fprintf(stderr, "\r\033[K[lfipc-bench] %s: %s %s", what, sys,
			param);
}

static struct row *newrow(const char *table, const char *sys, const char *note,
			  const char *unit, const char *param)
{
	struct row *r;

	if (nrows >= MAXROWS) {
		fprintf(stderr, "lfipc-bench: too many result rows\n");
		exit(2);
	}
	r = &rows[nrows];
	memset(r, 0, sizeof(*r));
	r->order = nrows++;
	r->table = table;
	r->sys = sys;
	r->note = note;
	r->unit = unit;
	snprintf(r->param, sizeof(r->param), "%s", param);
	r->nv = 1;
	return r;
}

/* Fill a one-value row from rep samples (sorted here). */
static void setrow(struct row *r, double *v, int rep)
{
	if (r->failed || rep < 1) {
		r->failed = true;
		return;
	}
	qsort(v, (size_t)rep, sizeof(double), cmpd);
	r->lo = v[0];
	r->hi = v[rep - 1];
	r->v[0] = median(v, rep);
}

/* ---- process / thread plumbing ------------------------------------------ */

struct sync {
	atomic_int ready, go, abort;
	_Atomic uint64_t t_start, t_end; /* min start, max end (lock runs) */
};
static struct sync *sy;

static void reset_sync(void)
{
	atomic_store(&sy->ready, 0);
	atomic_store(&sy->go, 0);
	atomic_store(&sy->abort, 0);
	atomic_store(&sy->t_start, 0);
	atomic_store(&sy->t_end, 0);
}

static bool aborted(void)
{
	return atomic_load(&sy->abort) != 0;
}

/*
 * A failing child process sets sy->abort and sends SIGUSR1 to the parent,
 * which may be blocked in a receive that will never complete (its own copy
 * of a pipe's write end keeps the pipe open, a futex has no one to wake it):
 * the handler jumps back to the run, which marks it FAILED, kills the rest
 * and throws the channel away.
 */
static sigjmp_buf fail_jb;
static volatile sig_atomic_t fail_armed;

static void on_fail_signal(int s)
{
	if (fail_armed) {
		fail_armed = 0;
		siglongjmp(fail_jb, s == SIGALRM ? 2 : 1);
	}
}

/* One-shot deadline for a run (SIGALRM); 0 cancels. */
static void set_deadline(double sec)
{
	struct itimerval it = {{0, 0}, {0, 0}};

	it.it_value.tv_sec = (time_t)sec;
	it.it_value.tv_usec = (suseconds_t)((sec - (double)(time_t)sec) * 1e6);
	setitimer(ITIMER_REAL, &it, NULL);
}

struct job;
typedef int (*job_fn)(struct job *);
struct job {
	job_fn fn;
	const struct chan *c;
	size_t msz;
	long n, warm;
	int k, P, C, cpu;
	bool thr;
	int rc;
	pid_t pid;
	pthread_t th;
};

static void *job_thread(void *a)
{
	struct job *j = a;

	j->rc = j->fn(j);
	if (j->rc)
		atomic_store(&sy->abort, 1);
	return NULL;
}

static int spawn(struct job *j)
{
	if (j->thr) {
		sigset_t all, old;
		int rc;

		/* the run's SIGUSR1/SIGALRM jump belongs to the main thread */
		sigemptyset(&all);
		sigaddset(&all, SIGUSR1);
		sigaddset(&all, SIGALRM);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		rc = pthread_create(&j->th, NULL, job_thread, j);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return rc ? -1 : 0;
	}
	/*
	 * No jump out of fork(): the library's fork handlers take a lock, and
	 * the run must know the child's pid before it can be stopped.
	 */
	sigset_t sigs, old;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGALRM);
	sigprocmask(SIG_BLOCK, &sigs, &old);
	j->pid = fork();
	if (j->pid != 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		return j->pid < 0 ? -1 : 0;
	}
	fail_armed = 0; /* the child never jumps */
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (j->fn(j)) {
		atomic_store(&sy->abort, 1);
		kill(getppid(), SIGUSR1);
		_exit(1);
	}
	_exit(0);
}

static int reap(pid_t pid)
{
	int st;
	pid_t w;

	while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	if (w != pid)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* Reap pid within ms milliseconds; kill it (and fail) when it is late. */
static int reap_deadline(pid_t pid, int ms)
{
	uint64_t end = now_ns() + (uint64_t)ms * 1000000u;
	struct timespec d = {0, 200000};
	int st;

	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);

		if (w == pid)
			return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
		if (w < 0 && errno != EINTR)
			return -1;
		if (now_ns() > end) {
			kill(pid, SIGKILL);
			reap(pid);
			return -1;
		}
		nanosleep(&d, NULL);
	}
}

static int join(struct job *j)
{
	if (j->thr) {
		pthread_join(j->th, NULL);
		return j->rc;
	}
	return reap(j->pid);
}

/* Stop a job after a failure: processes are killed, threads see abort. */
static void stop(struct job *j)
{
	atomic_store(&sy->abort, 1);
	if (!j->thr && j->pid > 0)
		kill(j->pid, SIGKILL);
}

static void start_child(int cpu)
{
	pin(cpu);
	atomic_fetch_add(&sy->ready, 1);
	while (!atomic_load(&sy->go))
		relax();
}

static void start_parent(int nchild)
{
	while (atomic_load(&sy->ready) < nchild && !aborted())
		sched_yield();
	atomic_store(&sy->go, 1);
}

/* ---- channels: one ops table per system ---------------------------------- */

/*
 * dir 0 carries parent -> child, dir 1 child -> parent. send/recv return 0
 * or -1. init is called in the parent before the workers start; fini after
 * they were reaped.
 */
struct chan {
	const char *name, *wait;
	bool pp_only; /* latency only (eventfd, bare cache line / futex) */
	bool thr;     /* workers are threads of one process (liburcu) */
	bool mpmc;    /* safe with several senders and receivers */
	bool tp;      /* in the 1x1 throughput table */
	int (*init)(size_t msz);
	int (*send)(int dir, const void *m, size_t n);
	int (*recv)(int dir, void *m, size_t n);
	void (*fini)(void);
};

/* pipe(2) */
static int pfd[2][2];
static int rw_full(int fd, void *m, size_t n, bool wr)
{
	size_t done = 0;

	while (done < n) {
		ssize_t k = wr ? write(fd, (char *)m + done, n - done)
			       : read(fd, (char *)m + done, n - done);
		if (k <= 0) {
			if (k < 0 && errno == EINTR && !aborted())
				continue;
			return -1;
		}
		done += (size_t)k;
	}
	return 0;
}
static int pipe_init(size_t msz)
{
	(void)msz;
	if (pipe(pfd[0]))
		return -1;
	if (pipe(pfd[1])) {
		close(pfd[0][0]);
		close(pfd[0][1]);
		return -1;
	}
	return 0;
}
static int pipe_send(int d, const void *m, size_t n)
{
	return rw_full(pfd[d][1], (void *)m, n, true);
}
static int pipe_recv(int d, void *m, size_t n)
{
	return rw_full(pfd[d][0], m, n, false);
}
static void pipe_fini(void)
{
	for (int i = 0; i < 2; i++)
		close(pfd[i][0]), close(pfd[i][1]);
}

/* socketpair(SOCK_SEQPACKET): one socket per side, full duplex */
static int sv[2];
static int sp_init(size_t msz)
{
	(void)msz;
	return socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv);
}
static int sp_send(int d, const void *m, size_t n)
{
	return send(sv[d], m, n, 0) == (ssize_t)n ? 0 : -1;
}
static int sp_recv(int d, void *m, size_t n)
{
	ssize_t k;

	while ((k = recv(sv[1 - d], m, n, 0)) < 0 && errno == EINTR &&
	       !aborted())
		;
	return k == (ssize_t)n ? 0 : -1;
}
static void sp_fini(void)
{
	close(sv[0]);
	close(sv[1]);
}

/* POSIX message queues (mq_maxmsg 10: the default /proc/sys/fs/mqueue/msg_max)
 */
static mqd_t mq[2];
static int mq_init_(size_t msz)
{
	struct mq_attr a = {.mq_maxmsg = 10, .mq_msgsize = (long)msz};
	char nm[64];

	for (int i = 0; i < 2; i++) {
		snprintf(nm, sizeof(nm), "/lfipc-bench-%d-%d", (int)getpid(),
			 i);
		mq[i] = mq_open(nm, O_RDWR | O_CREAT | O_EXCL, 0600, &a);
		if (mq[i] == (mqd_t)-1) {
			if (i)
				mq_close(mq[0]);
			return -1;
		}
		mq_unlink(nm);
	}
	return 0;
}
static int mq_send_(int d, const void *m, size_t n)
{
	int rc;

	while ((rc = mq_send(mq[d], m, n, 0)) < 0 && errno == EINTR &&
	       !aborted())
		;
	return rc;
}
static int mq_recv_(int d, void *m, size_t n)
{
	char b[MAXMSG + 64];
	ssize_t k;

	while ((k = mq_receive(mq[d], b, sizeof(b), NULL)) < 0 &&
	       errno == EINTR && !aborted())
		;
	if (k != (ssize_t)n)
		return -1;
	memcpy(m, b, n);
	return 0;
}
static void mq_fini(void)
{
	mq_close(mq[0]);
	mq_close(mq[1]);
}

/* eventfd (latency only: carries the 8-byte sequence number as its count) */
static int efd[2];
static int ev_init(size_t msz)
{
	(void)msz;
	efd[0] = eventfd(0, 0);
	efd[1] = eventfd(0, 0);
	return efd[0] < 0 || efd[1] < 0 ? -1 : 0;
}
static int ev_send(int d, const void *m, size_t n)
{
	uint64_t v;

	(void)n;
	memcpy(&v, m, 8);
	v++; /* a count of 0 cannot be written */
	return write(efd[d], &v, 8) == 8 ? 0 : -1;
}
static int ev_recv(int d, void *m, size_t n)
{
	uint64_t v;

	if (read(efd[d], &v, 8) != 8)
		return -1;
	v--;
	memset(m, 0, n);
	fill(m, n, v);
	return 0;
}
static void ev_fini(void)
{
	close(efd[0]);
	close(efd[1]);
}

/* mutex + condition variable queue over process-shared pthread objects */
struct mcq {
	pthread_mutex_t m;
	pthread_cond_t ne, nf;
	uint64_t head, tail;
	char slot[RCAP][MAXMSG];
};
static struct mcq *mcq;
static int mcq_init(size_t msz)
{
	pthread_mutexattr_t ma;
	pthread_condattr_t ca;

	(void)msz;
	mcq = shmem(2 * sizeof(*mcq));
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_condattr_init(&ca);
	pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
	for (int i = 0; i < 2; i++) {
		pthread_mutex_init(&mcq[i].m, &ma);
		pthread_cond_init(&mcq[i].ne, &ca);
		pthread_cond_init(&mcq[i].nf, &ca);
	}
	return 0;
}
static int mcq_send(int d, const void *m, size_t n)
{
	struct mcq *q = &mcq[d];

	pthread_mutex_lock(&q->m);
	while (q->tail - q->head == RCAP)
		pthread_cond_wait(&q->nf, &q->m);
	memcpy(q->slot[q->tail % RCAP], m, n);
	q->tail++;
	pthread_cond_signal(&q->ne);
	pthread_mutex_unlock(&q->m);
	return 0;
}
static int mcq_recv(int d, void *m, size_t n)
{
	struct mcq *q = &mcq[d];

	pthread_mutex_lock(&q->m);
	while (q->tail == q->head)
		pthread_cond_wait(&q->ne, &q->m);
	memcpy(m, q->slot[q->head % RCAP], n);
	q->head++;
	pthread_cond_signal(&q->nf);
	pthread_mutex_unlock(&q->m);
	return 0;
}
static void mcq_fini(void)
{
	munmap(mcq, 2 * sizeof(*mcq));
}

#ifdef HAVE_CK
/*
 * ck_ring in MAP_SHARED memory, copying whole messages into the ring (the
 * typed CK_RING_PROTOTYPE interface, one entry type per message size),
 * like an lfipc queue. ck_ring_init takes a power of two and holds one
 * less: capacity RCAP - 1.
 */
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
	ck_ring_t ring;
	char pad[64];
};
static struct ckq *ckq;
static char *ckbuf[2];
static size_t ck_msz;
static int ck_init_(size_t msz)
{
	if (msz != 8 && msz != 64 && msz != 256 && msz != 4096)
		return -1;
	ck_msz = msz;
	ckq = shmem(2 * sizeof(*ckq));
	for (int i = 0; i < 2; i++) {
		ckbuf[i] = shmem(RCAP * msz);
		ck_ring_init(&ckq[i].ring, RCAP);
	}
	return 0;
}
#define CK_OP(kind, op, name, T)                                               \
	ck_ring_##op##_##kind##_##name(&q->ring, (struct T *)(void *)b,        \
				       (struct T *)(void *)m)
static bool ck_put(bool mp, int d, const void *m)
{
	struct ckq *q = &ckq[d];
	char *b = ckbuf[d];

	switch (ck_msz) {
	case 8:
		return mp ? CK_OP(mpmc, enqueue, ck8, ck8)
			  : CK_OP(spsc, enqueue, ck8, ck8);
	case 64:
		return mp ? CK_OP(mpmc, enqueue, ck64, ck64)
			  : CK_OP(spsc, enqueue, ck64, ck64);
	case 256:
		return mp ? CK_OP(mpmc, enqueue, ck256, ck256)
			  : CK_OP(spsc, enqueue, ck256, ck256);
	default:
		return mp ? CK_OP(mpmc, enqueue, ck4096, ck4096)
			  : CK_OP(spsc, enqueue, ck4096, ck4096);
	}
}
static bool ck_get(bool mp, int d, void *m)
{
	struct ckq *q = &ckq[d];
	char *b = ckbuf[d];

	switch (ck_msz) {
	case 8:
		return mp ? CK_OP(mpmc, dequeue, ck8, ck8)
			  : CK_OP(spsc, dequeue, ck8, ck8);
	case 64:
		return mp ? CK_OP(mpmc, dequeue, ck64, ck64)
			  : CK_OP(spsc, dequeue, ck64, ck64);
	case 256:
		return mp ? CK_OP(mpmc, dequeue, ck256, ck256)
			  : CK_OP(spsc, dequeue, ck256, ck256);
	default:
		return mp ? CK_OP(mpmc, dequeue, ck4096, ck4096)
			  : CK_OP(spsc, dequeue, ck4096, ck4096);
	}
}
static int ck_send_sp(int d, const void *m, size_t n)
{
	(void)n;
	while (!ck_put(false, d, m))
		if (spin_stop())
			return -1;
	return 0;
}
static int ck_recv_sc(int d, void *m, size_t n)
{
	(void)n;
	while (!ck_get(false, d, m))
		if (spin_stop())
			return -1;
	return 0;
}
static int ck_send_mp(int d, const void *m, size_t n)
{
	(void)n;
	while (!ck_put(true, d, m))
		if (spin_stop())
			return -1;
	return 0;
}
static int ck_recv_mc(int d, void *m, size_t n)
{
	(void)n;
	while (!ck_get(true, d, m))
		if (spin_stop())
			return -1;
	return 0;
}
static void ck_fini(void)
{
	for (int i = 0; i < 2; i++)
		munmap(ckbuf[i], RCAP * ck_msz);
	munmap(ckq, 2 * sizeof(*ckq));
}
#endif

#ifdef HAVE_DPDK
/*
 * DPDK rte_ring in MAP_SHARED memory: rte_ring_init() on memory sized by
 * rte_ring_get_memsize_elem(), messages copied in as ring elements
 * (rte_ring_*_elem, element size = message size). No EAL: rte_eal_init is
 * never called and no hugepages are used; rte_ring_init and the inline
 * enqueue/dequeue need no EAL state. Capacity RCAP - 1 (no RING_F_EXACT_SZ).
 */
static struct rte_ring *drg[2];
static size_t drg_sz;
static int dpdk_init(size_t msz, unsigned flags)
{
	ssize_t sz = rte_ring_get_memsize_elem((unsigned)msz, RCAP);

	if (sz < 0)
		return -1;
	drg_sz = (size_t)sz;
	for (int i = 0; i < 2; i++) {
		drg[i] = shmem(drg_sz);
		if (rte_ring_init(drg[i], i ? "lfipc-bench-1" : "lfipc-bench-0",
				  RCAP, flags)) {
			munmap(drg[i], drg_sz);
			if (i)
				munmap(drg[0], drg_sz);
			return -1;
		}
	}
	return 0;
}
static int dpdk_init_sp(size_t msz)
{
	return dpdk_init(msz, RING_F_SP_ENQ | RING_F_SC_DEQ);
}
static int dpdk_init_mp(size_t msz)
{
	return dpdk_init(msz, 0);
}
static int dpdk_send(int d, const void *m, size_t n)
{
	while (rte_ring_enqueue_elem(drg[d], (void *)(uintptr_t)m,
				     (unsigned)n) != 0)
		if (spin_stop())
			return -1;
	return 0;
}
static int dpdk_recv(int d, void *m, size_t n)
{
	while (rte_ring_dequeue_elem(drg[d], m, (unsigned)n) != 0)
		if (spin_stop())
			return -1;
	return 0;
}
static void dpdk_fini(void)
{
	munmap(drg[0], drg_sz);
	munmap(drg[1], drg_sz);
}
#endif

#ifdef HAVE_URCU
/*
 * liburcu wfcqueue: an in-process (threads only) unbounded queue of
 * malloc'ed nodes, busy-polled. Producers stop 4096 messages ahead of the
 * consumers (counted in batches of 64) so that memory stays bounded, as a
 * real user must.
 */
struct unode {
	struct cds_wfcq_node n;
	char data[];
};
struct uq {
	struct cds_wfcq_head h;
	char pad1[64];
	struct cds_wfcq_tail t;
	char pad2[64];
	_Atomic long sent;
	char pad3[64];
	_Atomic long done;
};
static struct uq *uq;
_Static_assert(offsetof(struct unode, n) == 0, "node first");
static _Thread_local long u_sent[2], u_done[2];
#define U_BATCH 64
#define U_AHEAD 4096
static int urcu_init(size_t msz)
{
	(void)msz;
	if (posix_memalign((void **)&uq, 64, 2 * sizeof(*uq)))
		return -1;
	for (int i = 0; i < 2; i++) {
		cds_wfcq_init(&uq[i].h, &uq[i].t);
		atomic_store(&uq[i].sent, 0);
		atomic_store(&uq[i].done, 0);
	}
	return 0;
}
static int urcu_send(int d, const void *m, size_t n)
{
	struct uq *q = &uq[d];
	struct unode *e = malloc(sizeof(*e) + n);

	if (!e)
		return -1;
	cds_wfcq_node_init(&e->n);
	memcpy(e->data, m, n);
	cds_wfcq_enqueue(&q->h, &q->t, &e->n);
	if (++u_sent[d] % U_BATCH == 0) {
		atomic_fetch_add(&q->sent, U_BATCH);
		while (atomic_load(&q->sent) - atomic_load(&q->done) >
		       U_AHEAD) {
			if (aborted())
				return -1;
			relax();
		}
	}
	return 0;
}
static int urcu_recv(int d, void *m, size_t n)
{
	struct uq *q = &uq[d];
	struct cds_wfcq_node *nd;
	struct unode *e;

	while (!(nd = cds_wfcq_dequeue_blocking(&q->h, &q->t))) {
		if (aborted())
			return -1;
		relax();
	}
	e = (struct unode *)(void *)nd; /* n is the first member */
	memcpy(m, e->data, n);
	free(e);
	if (++u_done[d] % U_BATCH == 0)
		atomic_fetch_add(&q->done, U_BATCH);
	return 0;
}
static void urcu_fini(void)
{
	struct cds_wfcq_node *nd;

	for (int i = 0; i < 2; i++) {
		while ((nd = cds_wfcq_dequeue_blocking(&uq[i].h, &uq[i].t)))
			free(nd); /* n is the first member of the node */
		cds_wfcq_destroy(&uq[i].h, &uq[i].t);
	}
	free(uq);
}
#endif

/* bare cache-line ping-pong: the physical limit of a busy handoff */
static _Atomic uint64_t *cl;
static int cl_init(size_t msz)
{
	(void)msz;
	cl = shmem(4096);
	return 0;
}
static int cl_send(int d, const void *m, size_t n)
{
	uint64_t s;

	(void)n;
	memcpy(&s, m, 8);
	atomic_store(&cl[d * 16], s + 1);
	return 0;
}
static int cl_recv(int d, void *m, size_t n)
{
	uint64_t v;

	while ((v = atomic_load(&cl[d * 16])) == 0)
		if (spin_stop())
			return -1;
	atomic_store(&cl[d * 16], 0);
	memset(m, 0, n);
	fill(m, n, v - 1);
	return 0;
}
static void cl_fini(void)
{
	munmap((void *)cl, 4096);
}

/* bare futex wait/wake ping-pong: the physical limit of a sleeping handoff */
static atomic_uint *fw;
static int fx_init(size_t msz)
{
	(void)msz;
	fw = shmem(4096);
	return 0;
}
static int fx_send(int d, const void *m, size_t n)
{
	uint64_t s;

	(void)n;
	memcpy(&s, m, 8);
	atomic_store(&fw[d * 32], (unsigned)s + 1);
	futex(&fw[d * 32], FUTEX_WAKE, 1);
	return 0;
}
static int fx_recv(int d, void *m, size_t n)
{
	unsigned v;

	while ((v = atomic_load(&fw[d * 32])) == 0)
		futex(&fw[d * 32], FUTEX_WAIT, 0);
	atomic_store(&fw[d * 32], 0);
	memset(m, 0, n);
	fill(m, n, v - 1);
	return 0;
}
static void fx_fini(void)
{
	munmap((void *)fw, 4096);
}

/* lfipc pipe: a duplex pipe in an anonymous region; parent end 0, child 1 */
static lfipc_region *lreg;
static lfipc_conn *lend[2];
static int lp_init(size_t msz)
{
	(void)msz;
	if (lfipc_region_create(NULL, 4 << 20, 0, &lreg))
		return -1;
	if (lfipc_pipe_create(lreg, "bench", 64 * 1024, true, &lend[0],
			      &lend[1])) {
		lfipc_region_close(lreg);
		return -1;
	}
	return 0;
}
static int lp_send(int d, const void *m, size_t n)
{
	return lfipc_conn_send(lend[d], m, n, LFIPC_FOREVER) ? -1 : 0;
}
static int lp_recv(int d, void *m, size_t n)
{
	size_t len = 0;

	if (lfipc_conn_recv(lend[1 - d], m, n, &len, LFIPC_FOREVER) < 0)
		return -1;
	return len == n ? 0 : -1;
}
static void lp_fini(void)
{
	lfipc_conn_close(lend[0]);
	lfipc_conn_close(lend[1]);
	lfipc_region_close(lreg);
}

/*
 * lfipc queue: two queues (one per direction) in an anonymous region.
 * "blocking" waits with LFIPC_FOREVER (spin, then futex); "busy" polls with
 * LFIPC_NOWAIT, as a busy-polling ring user would.
 */
static lfipc_region *qreg;
static lfipc_queue *lq[2];
static int lq_init(size_t msz)
{
	size_t rsz = 2 * RCAP * (msz + 64) + (4 << 20);

	if (lfipc_region_create(NULL, rsz, 0, &qreg))
		return -1;
	if (lfipc_queue_create(qreg, "q0", RCAP, msz, 0, &lq[0]) ||
	    lfipc_queue_create(qreg, "q1", RCAP, msz, 0, &lq[1])) {
		lfipc_region_close(qreg);
		return -1;
	}
	return 0;
}
static int lq_send(int d, const void *m, size_t n)
{
	return lfipc_queue_put(lq[d], m, n, LFIPC_FOREVER) ? -1 : 0;
}
static int lq_recv(int d, void *m, size_t n)
{
	size_t len = 0;

	if (lfipc_queue_get(lq[d], m, n, &len, LFIPC_FOREVER))
		return -1;
	return len == n ? 0 : -1;
}
static int lq_send_busy(int d, const void *m, size_t n)
{
	int rc;

	while ((rc = lfipc_queue_put(lq[d], m, n, LFIPC_NOWAIT)) == -EAGAIN)
		if (spin_stop())
			return -1;
	return rc ? -1 : 0;
}
static int lq_recv_busy(int d, void *m, size_t n)
{
	size_t len = 0;
	int rc;

	while ((rc = lfipc_queue_get(lq[d], m, n, &len, LFIPC_NOWAIT)) ==
	       -EAGAIN)
		if (spin_stop())
			return -1;
	return rc || len != n ? -1 : 0;
}
static void lq_fini(void)
{
	lfipc_queue_close(lq[0]);
	lfipc_queue_close(lq[1]);
	lfipc_region_close(qreg);
}

/*                name, wait, pp_only, thr, mpmc, tp, ops */
static const struct chan chans[] = {
    {"lfipc queue", "spin+futex", false, false, true, true, lq_init, lq_send,
     lq_recv, lq_fini},
    {"lfipc queue busy", "busy", false, false, true, true, lq_init,
     lq_send_busy, lq_recv_busy, lq_fini},
    {"lfipc pipe", "spin+futex", false, false, false, true, lp_init, lp_send,
     lp_recv, lp_fini},
#ifdef HAVE_CK
    {"ck_ring spsc", "busy", false, false, false, true, ck_init_, ck_send_sp,
     ck_recv_sc, ck_fini},
    {"ck_ring mpmc", "busy", false, false, true, true, ck_init_, ck_send_mp,
     ck_recv_mc, ck_fini},
#endif
#ifdef HAVE_DPDK
    {"DPDK rte_ring spsc", "busy", false, false, false, true, dpdk_init_sp,
     dpdk_send, dpdk_recv, dpdk_fini},
    {"DPDK rte_ring mpmc", "busy", false, false, true, true, dpdk_init_mp,
     dpdk_send, dpdk_recv, dpdk_fini},
#endif
#ifdef HAVE_URCU
    {"liburcu wfcqueue (threads)", "busy", false, true, true, true, urcu_init,
     urcu_send, urcu_recv, urcu_fini},
#endif
    {"mutex+cond queue", "futex", false, false, true, true, mcq_init, mcq_send,
     mcq_recv, mcq_fini},
    {"pipe(2)", "kernel", false, false, false, true, pipe_init, pipe_send,
     pipe_recv, pipe_fini},
    {"socketpair seqpacket", "kernel", false, false, false, true, sp_init,
     sp_send, sp_recv, sp_fini},
    {"POSIX mq", "kernel", false, false, true, true, mq_init_, mq_send_,
     mq_recv_, mq_fini},
    {"eventfd", "kernel", true, false, false, false, ev_init, ev_send, ev_recv,
     ev_fini},
    {"bare cache line", "busy", true, false, false, false, cl_init, cl_send,
     cl_recv, cl_fini},
    {"bare futex", "futex", true, false, false, false, fx_init, fx_send,
     fx_recv, fx_fini},
};
#define NCHANS (sizeof(chans) / sizeof(chans[0]))

/* ---- runners --------------------------------------------------------------
 */

/*
 * Arm the escape of a run: SIGUSR1 from a failing worker process sets
 * badvar, the deadline (SIGALRM after secs) sets dlvar. The parent may be
 * blocked anywhere (a receive, a full ring, waitpid); it jumps back here.
 */
#define ARM(badvar, dlvar, secs)                                               \
	do {                                                                   \
		switch (sigsetjmp(fail_jb, 1)) {                               \
		case 0:                                                        \
			fail_armed = 1;                                        \
			set_deadline(secs);                                    \
			break;                                                 \
		case 1:                                                        \
			(badvar) = 1;                                          \
			break;                                                 \
		default:                                                       \
			(dlvar) = 1;                                           \
			break;                                                 \
		}                                                              \
	} while (0)
#define DISARM()                                                               \
	do {                                                                   \
		fail_armed = 0;                                                \
		set_deadline(0);                                               \
	} while (0)

/* A 1x1 or ping-pong run that takes this long has hung: FAILED. */
#define HANG_SEC 120.0

static int pp_child(struct job *j)
{
	char m[MAXMSG];

	start_child(j->cpu);
	for (long i = 0; i < j->warm + j->n; i++) {
		if (j->c->recv(0, m, j->msz) || !check(m, j->msz, (uint64_t)i))
			return -1;
		if (j->c->send(1, m, j->msz))
			return -1;
	}
	return 0;
}

/*
 * One ping-pong run of n round trips of msz bytes: fills lat[] (ns, sorted).
 * Returns 0, or -1 when a sequence check failed or a worker failed.
 */
static int run_pp(const struct chan *c, size_t msz, long n, double *lat)
{
	char m[MAXMSG];
	struct job j = {.fn = pp_child,
			.c = c,
			.msz = msz,
			.n = n,
			.warm = n / 10 + 10,
			.cpu = 1,
			.thr = c->thr};
	volatile int bad = 0;
	volatile long i = 0;

	if (c->init(msz))
		return -1;
	reset_sync();
	pin(0);
	if (spawn(&j)) {
		c->fini();
		return -1;
	}
	ARM(bad, bad, HANG_SEC);
	if (!bad) {
		start_parent(1);
		for (i = 0; i < j.warm + n && !bad; i++) {
			uint64_t t0 = now_ns();

			fill_tx(m, msz, (uint64_t)i);
			if (c->send(0, m, msz) || c->recv(1, m, msz) ||
			    !check(m, msz, (uint64_t)i))
				bad = 1;
			if (i >= j.warm)
				lat[i - j.warm] = (double)(now_ns() - t0);
		}
	}
	DISARM();
	if (bad)
		stop(&j);
	if (join(&j))
		bad = 1;
	c->fini();
	if (bad)
		return -1;
	qsort(lat, (size_t)n, sizeof(*lat), cmpd);
	return 0;
}

static int tp_child(struct job *j)
{
	char m[MAXMSG];

	start_child(j->cpu);
	for (long i = 0; i < j->warm + j->n; i++) {
		fill_tx(m, j->msz, (uint64_t)i);
		if (j->c->send(0, m, j->msz))
			return -1;
	}
	return 0;
}

/* One throughput run: child sends warm + n messages, parent receives; Mmsg/s.
 */
static double run_tp(const struct chan *c, size_t msz, long n)
{
	char m[MAXMSG];
	struct job j = {.fn = tp_child,
			.c = c,
			.msz = msz,
			.n = n,
			.warm = n / 10,
			.cpu = 1,
			.thr = c->thr};
	volatile int bad = 0;
	volatile uint64_t t0 = 0, t1 = 0;

	if (c->init(msz))
		return -1;
	reset_sync();
	pin(0);
	if (spawn(&j)) {
		c->fini();
		return -1;
	}
	ARM(bad, bad, HANG_SEC);
	if (!bad) {
		start_parent(1);
		t0 = now_ns();
		for (long i = 0; i < j.warm + n; i++) {
			if (i == j.warm)
				t0 = now_ns();
			if (c->recv(0, m, msz) || !check(m, msz, (uint64_t)i)) {
				bad = 1;
				break;
			}
		}
		t1 = now_ns();
	}
	DISARM();
	if (bad)
		stop(&j);
	if (join(&j))
		bad = 1;
	c->fini();
	return bad ? -1 : (double)n / ((double)(t1 - t0) / 1e3);
}

/*
 * P producer x C consumer workers over direction 0 of a channel. Each
 * message carries (producer << 40 | i); every consumer checks that each
 * producer's numbers arrive strictly increasing, and the consumers' total
 * count and sum must equal what was sent. The parent sends one end marker
 * per consumer after the producers finished. Returns Mmsg/s or -1.
 */
struct mp {
	_Atomic uint64_t count, sum, t_end;
	atomic_int bad, pdone, cdone;
	struct {
		_Atomic uint64_t n;
		char pad[56];
	} got[64]; /* per consumer: messages received so far */
};
static struct mp *mp;
#define END_MARK UINT64_MAX
#define MAXW 64

static int mp_worker(struct job *j)
{
	char m[MAXMSG];
	uint64_t last[MAXW], cnt = 0, sum = 0, v, t, e;

	start_child(j->cpu);
	if (j->k < j->P) {
		for (long i = 0; i < j->n; i++) {
			fill_tx(m, j->msz,
				((uint64_t)j->k << 40) | (uint64_t)i);
			if (j->c->send(0, m, j->msz) || aborted())
				return -1;
		}
		/* the last producer to finish sends one end mark per consumer
		 */
		if (atomic_fetch_add(&mp->pdone, 1) == j->P - 1)
			for (int k = 0; k < j->C; k++) {
				fill(m, j->msz, END_MARK);
				if (j->c->send(0, m, j->msz))
					return -1;
			}
		return 0;
	}
	for (int p = 0; p < j->P; p++)
		last[p] = UINT64_MAX;
	for (;;) {
		if (j->c->recv(0, m, j->msz))
			return -1;
		memcpy(&v, m, 8);
		if (v == END_MARK)
			break;
		unsigned p = (unsigned)(v >> 40);
		uint64_t i = v & ((1ull << 40) - 1);
		if (p >= (unsigned)j->P || !check(m, j->msz, v) ||
		    (last[p] != UINT64_MAX && i <= last[p]))
			atomic_store(&mp->bad, 1);
		else
			last[p] = i;
		cnt++;
		sum += v;
		/* relaxed: a progress count the parent reads only after the
		 * deadline, to compute a rate; it orders nothing. */
		atomic_store_explicit(&mp->got[j->k - j->P].n, cnt,
				      memory_order_relaxed);
	}
	atomic_fetch_add(&mp->count, cnt);
	atomic_fetch_add(&mp->sum, sum);
	t = now_ns();
	e = atomic_load(&mp->t_end);
	while (t > e && !atomic_compare_exchange_weak(&mp->t_end, &e, t))
		;
	atomic_fetch_add(&mp->cdone, 1);
	return 0;
}

/* Wait until *ctr reaches want; false when the run was aborted. */
/*
 * Wait until *ctr reaches want: 0; -1 the run was aborted; 1 the deadline
 * end (ns, 0 none) passed.
 */
static int wait_count(atomic_int *ctr, int want, uint64_t end)
{
	struct timespec d = {0, 50000};

	while (atomic_load(ctr) < want) {
		if (aborted())
			return -1;
		if (end && now_ns() > end)
			return 1;
		nanosleep(&d, NULL);
	}
	return 0;
}

/*
 * Returns Mmsg/s or -1. When the run is still going at opt.deadline
 * seconds (a design that collapses when oversubscribed), everyone is
 * stopped, *dl is set and the rate is what the consumers received (every
 * message still order-checked) divided by the time.
 */
static double run_mpmc(const struct chan *c, size_t msz, int P, int C, long n,
		       bool *dl)
{
	static struct job j[MAXW];
	int bad = 0, dead = 0, started = 0, rc;
	uint64_t t0 = 0, t1, want = 0, got = 0, end;

	*dl = false;
	if (P + C > MAXW || C > 64 || c->init(msz))
		return -1;
	reset_sync();
	atomic_store(&mp->count, 0);
	atomic_store(&mp->sum, 0);
	atomic_store(&mp->t_end, 0);
	atomic_store(&mp->bad, 0);
	atomic_store(&mp->pdone, 0);
	atomic_store(&mp->cdone, 0);
	for (int k = 0; k < C; k++)
		atomic_store(&mp->got[k].n, 0);
	/*
	 * The parent only sleeps and watches: a failed worker sets sy->abort
	 * (wait_count sees it), the deadline is checked by wait_count, and
	 * then every worker is killed (processes) or sees sy->abort (threads).
	 */
	for (int k = 0; k < P + C && !bad; k++) {
		j[k] = (struct job){.fn = mp_worker,
				    .c = c,
				    .msz = msz,
				    .n = n,
				    .k = k,
				    .P = P,
				    .C = C,
				    .cpu = k + 1,
				    .thr = c->thr};
		if (spawn(&j[k]))
			bad = 1;
		else
			started = k + 1;
	}
	if (!bad) {
		start_parent(P + C);
		t0 = now_ns();
		end = t0 + (uint64_t)(opt.deadline * 1e9);
		rc = wait_count(&mp->cdone, C, end);
		if (rc < 0)
			bad = 1;
		else if (rc > 0)
			dead = 1;
	}
	t1 = now_ns();
	if (bad || dead) {
		atomic_store(&sy->abort, 1);
		for (int k = 0; k < started; k++)
			stop(&j[k]);
	}
	for (int k = 0; k < started; k++)
		if (join(&j[k]) && !dead)
			bad = 1;
	c->fini();
	if (bad || atomic_load(&mp->bad))
		return -1;
	if (dead) {
		*dl = true;
		for (int k = 0; k < C; k++)
			got += atomic_load(&mp->got[k].n);
		return (double)got / ((double)(t1 - t0) / 1e3);
	}
	for (int p = 0; p < P; p++)
		for (long i = 0; i < n; i++)
			want += ((uint64_t)p << 40) | (uint64_t)i;
	if (atomic_load(&mp->count) != (uint64_t)P * (uint64_t)n ||
	    atomic_load(&mp->sum) != want)
		return -1;
	return (double)P * (double)n /
	       ((double)(atomic_load(&mp->t_end) - t0) / 1e3);
}

/*
 * Bulk: lfipc_queue_put_many / get_many with bursts of 8 and 32, 1x1, the
 * receiver checking every sequence number. Mmsg/s or -1.
 */
static int bulk_child(struct job *j)
{
	static char m[32][MAXMSG];
	const void *ptr[32];
	size_t lens[32];
	int burst = j->k;

	start_child(j->cpu);
	for (long i = 0; i < j->n;) {
		int k = (int)(j->n - i < burst ? j->n - i : burst), got;

		for (int x = 0; x < k; x++) {
			fill_tx(m[x], j->msz, (uint64_t)(i + x));
			ptr[x] = m[x];
			lens[x] = j->msz;
		}
		got = lfipc_queue_put_many(lq[0], ptr, lens, (size_t)k,
					   LFIPC_FOREVER);
		if (got <= 0)
			return -1;
		i +=
		    got; /* an unsent tail of the burst is rebuilt next round */
	}
	return 0;
}

static const struct chan bulk_chan = {"lfipc queue bulk",
				      "spin+futex",
				      false,
				      false,
				      false,
				      false,
				      lq_init,
				      lq_send,
				      lq_recv,
				      lq_fini};

static double run_bulk(size_t msz, int burst, long n)
{
	static char m[32][MAXMSG];
	size_t lens[32];
	struct job j = {.fn = bulk_child,
			.c = &bulk_chan,
			.msz = msz,
			.n = n,
			.k = burst,
			.cpu = 1};
	volatile int bad = 0;
	volatile uint64_t t0 = 0, t1 = 0;

	if (lq_init(msz))
		return -1;
	reset_sync();
	pin(0);
	if (spawn(&j)) {
		lq_fini();
		return -1;
	}
	ARM(bad, bad, HANG_SEC);
	if (!bad) {
		start_parent(1);
		t0 = now_ns();
		for (long i = 0; i < n && !bad;) {
			int got =
			    lfipc_queue_get_many(lq[0], m, MAXMSG, lens,
						 (size_t)burst, LFIPC_FOREVER);
			if (got <= 0)
				bad = 1;
			for (int x = 0; x < got && !bad; x++, i++)
				if (lens[x] != msz ||
				    !check(m[x], msz, (uint64_t)i))
					bad = 1;
		}
		t1 = now_ns();
	}
	DISARM();
	if (bad)
		stop(&j);
	if (join(&j))
		bad = 1;
	lq_fini();
	return bad ? -1 : (double)n / ((double)(t1 - t0) / 1e3);
}

/* ---- scenarios ----------------------------------------------------------- */

static const char *T_PP = "Ping-pong round trip latency";
static const char *T_TP = "Throughput, 1 producer x 1 consumer";
static const char *T_PC = "Queue throughput, P producers x C consumers";
static const char *T_OS = "Oversubscribed: producers + consumers > cores";
static const char *T_CL = "Queue clear";
static const char *T_LU = "Lock acquire+release, uncontended";
static const char *T_LH = "Lock hand-off round trip, 2 processes";
static const char *T_LC = "Lock contended throughput, N processes";
static const char *T_LD =
    "Lock owner SIGKILLed: time to the next acquirer's EOWNERDEAD";

/*
 * Percentiles over the pooled samples of all repetitions (n per rep, rep
 * reps, in all[]), the spread from each repetition's own p50 (p50s[]).
 */
static void pool_row(struct row *r, double *all, long total, double *p50s,
		     int rep)
{
	if (r->failed || rep < 1 || total < 1) {
		r->failed = true;
		return;
	}
	qsort(all, (size_t)total, sizeof(*all), cmpd);
	r->v[0] = all[total / 2];
	r->v[1] = all[total * 9 / 10];
	r->v[2] = all[total * 99 / 100];
	r->v[3] = all[total * 999 / 1000];
	r->v[4] = all[total - 1];
	qsort(p50s, (size_t)rep, sizeof(*p50s), cmpd);
	r->lo = p50s[0];
	r->hi = p50s[rep - 1];
}

static void scen_pingpong(const size_t *sizes, int nsz)
{
	long per = opt.rtt_n / opt.reps > 100 ? opt.rtt_n / opt.reps : 100;
	double *all = malloc(sizeof(double) * (size_t)(per * opt.reps));
	double p50s[64];

	for (int s = 0; s < nsz; s++) {
		char param[32];

		snprintf(param, sizeof(param), "%zu B", sizes[s]);
		for (size_t k = 0; k < NCHANS; k++) {
			const struct chan *c = &chans[k];
			struct row *r;
			int rep;

			if (c->pp_only && s != 0)
				continue;
			progress("ping-pong", c->name, param);
			r = newrow(T_PP, c->name, c->wait, "ns", param);
			r->nv = 5;
			r->lower_better = true;
			for (rep = 0; rep < opt.reps; rep++) {
				double *lat = all + per * rep;

				if (run_pp(c, sizes[s], per, lat)) {
					r->failed = true;
					break;
				}
				p50s[rep] = lat[per / 2];
			}
			pool_row(r, all, per * rep, p50s, rep);
		}
	}
	free(all);
}

static void scen_throughput(const size_t *sizes, int nsz)
{
	double v[64];

	for (int s = 0; s < nsz; s++) {
		char param[32];

		snprintf(param, sizeof(param), "%zu B", sizes[s]);
		for (size_t k = 0; k < NCHANS; k++) {
			const struct chan *c = &chans[k];
			struct row *r;
			int rep;

			if (!c->tp)
				continue;
			progress("throughput 1x1", c->name, param);
			r = newrow(T_TP, c->name, c->wait, "Mmsg/s", param);
			for (rep = 0; rep < opt.reps; rep++) {
				double x = run_tp(c, sizes[s], opt.tp_n);

				if (x < 0) {
					r->failed = true;
					break;
				}
				v[rep] = x;
			}
			setrow(r, v, rep);
		}
		for (int b = 0; b < 2; b++) {
			static const char *bn[2] = {"lfipc queue burst 8",
						    "lfipc queue burst 32"};
			static const int bursts[2] = {8, 32};
			struct row *r;
			int rep;

			progress("throughput 1x1", bn[b], param);
			r = newrow(T_TP, bn[b], "spin+futex", "Mmsg/s", param);
			for (rep = 0; rep < opt.reps; rep++) {
				double x =
				    run_bulk(sizes[s], bursts[b], opt.tp_n);
				if (x < 0) {
					r->failed = true;
					break;
				}
				v[rep] = x;
			}
			setrow(r, v, rep);
		}
	}
}

static void scen_mpmc(const size_t *sizes, int nsz, int P, int C,
		      const char *table)
{
	double v[64];

	for (int s = 0; s < nsz; s++) {
		char param[40];

		snprintf(param, sizeof(param), "%dx%d %zu B", P, C, sizes[s]);
		for (size_t k = 0; k < NCHANS; k++) {
			const struct chan *c = &chans[k];
			struct row *r;
			int rep;

			if (!c->mpmc)
				continue;
			progress(table, c->name, param);
			r = newrow(table, c->name, c->wait, "Mmsg/s", param);
			for (rep = 0; rep < opt.reps; rep++) {
				bool dl;
				double x = run_mpmc(c, sizes[s], P, C,
						    opt.tp_n / P, &dl);
				if (x < 0) {
					r->failed = true;
					break;
				}
				v[rep] = x;
				if (dl) {
					/* collapsed: one run is the figure */
					r->deadline = true;
					rep++;
					break;
				}
			}
			setrow(r, v, rep);
		}
	}
}

/*
 * Clear: lfipc_queue_clear() with 10, 1,000 and 1,000,000 messages queued
 * (8 B), and the first put+get after it (which must return the new message).
 */
static void scen_clear(void)
{
	static const long lens[3] = {10, 1000, 1000000};
	static const long lens_tiny[3] = {10, 100, 1000};
	char m[64];

	for (int li = 0; li < 3; li++) {
		long L = opt.tiny ? lens_tiny[li] : lens[li];
		double vc[64], vf[64];
		struct row *rc, *rf;
		char param[32];
		int rep;

		snprintf(param, sizeof(param), "%ld queued", L);
		progress("clear", "lfipc queue", param);
		rc = newrow(T_CL, "lfipc_queue_clear", "-", "ns", param);
		rf =
		    newrow(T_CL, "first put+get after clear", "-", "ns", param);
		rc->lower_better = rf->lower_better = true;
		for (rep = -1; rep < opt.reps; rep++) { /* -1: warm-up */
			lfipc_region *reg;
			lfipc_queue *q;
			uint64_t t0, t1, t2;
			int64_t got;
			size_t len;
			bool ok = true;

			if (lfipc_region_create(
				NULL, (size_t)L * 128 + (8 << 20), 0, &reg)) {
				rc->failed = rf->failed = true;
				break;
			}
			if (lfipc_queue_create(reg, "c", (size_t)L + 1, 8, 0,
					       &q)) {
				lfipc_region_close(reg);
				rc->failed = rf->failed = true;
				break;
			}
			for (long i = 0; i < L && ok; i++) {
				fill(m, 8, (uint64_t)i);
				ok =
				    lfipc_queue_put(q, m, 8, LFIPC_NOWAIT) == 0;
			}
			fill(m, 8, 424242);
			t0 = now_ns();
			got = lfipc_queue_clear(q);
			t1 = now_ns();
			ok = ok && got == L &&
			     lfipc_queue_put(q, m, 8, LFIPC_NOWAIT) == 0 &&
			     lfipc_queue_get(q, m, sizeof(m), &len,
					     LFIPC_NOWAIT) == 0 &&
			     len == 8 && check(m, 8, 424242);
			t2 = now_ns();
			lfipc_queue_close(q);
			lfipc_region_close(reg);
			if (!ok) {
				rc->failed = rf->failed = true;
				break;
			}
			if (rep >= 0) {
				vc[rep] = (double)(t1 - t0);
				vf[rep] = (double)(t2 - t1);
			}
		}
		setrow(rc, vc, rep);
		setrow(rf, vf, rep);
	}
}

/* ---- locks -----------------------------------------------------------------
 */

enum { LK_LFIPC, LK_LFIPC_R, LK_PTHREAD, LK_ROBUST, LK_SEM, LK_N };
static const char *lk_names[LK_N] = {"lfipc Lock", "lfipc RLock",
				     "pthread mutex (pshared)",
				     "pthread mutex (robust)", "POSIX sem_t"};
static const char *lk_wait[LK_N] = {"spin+futex", "spin+futex", "futex",
				    "futex", "futex"};

/* Shared state of one lock run. count is protected by the lock under test. */
struct lk {
	pthread_mutex_t m;
	sem_t sem, hs[2]; /* hs: the hand-off semaphore pair */
	uint64_t count;
	atomic_int inside; /* processes inside the critical section */
	atomic_int holder; /* hand-off: who holds it (-1 nobody) */
	atomic_int waiting[2];
	_Atomic uint64_t seq, t_rel;
	atomic_int dead_rc, held, about;
	_Atomic uint64_t t_acq;
	double lat[]; /* hand-off samples, indexed by seq - 1 */
};
static struct lk *lk;
static size_t lk_size;
static lfipc_region *lkreg;
static lfipc_lock *lkl;

static int lk_setup(int kind, long nlat)
{
	pthread_mutexattr_t ma;

	lk_size = sizeof(*lk) + sizeof(double) * (size_t)nlat;
	lk = shmem(lk_size);
	atomic_store(&lk->holder, -1);
	if (kind == LK_LFIPC || kind == LK_LFIPC_R) {
		if (lfipc_region_create(NULL, 1 << 20, 0, &lkreg))
			return -1;
		if (lfipc_lock_create(lkreg, "bench", kind == LK_LFIPC_R,
				      &lkl)) {
			lfipc_region_close(lkreg);
			return -1;
		}
		return 0;
	}
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	if (kind == LK_ROBUST)
		pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&lk->m, &ma);
	pthread_mutexattr_destroy(&ma);
	sem_init(&lk->sem, 1, 1);
	sem_init(&lk->hs[0], 1, 0);
	sem_init(&lk->hs[1], 1, 0);
	return 0;
}

static void lk_teardown(int kind)
{
	if (kind == LK_LFIPC || kind == LK_LFIPC_R) {
		lfipc_lock_close(lkl);
		lfipc_region_close(lkreg);
	}
	munmap(lk, lk_size);
}

/* Acquire: 0, 1 acquired from a dead owner (EOWNERDEAD), -1 error. */
static int lk_acq(int kind)
{
	int rc;

	switch (kind) {
	case LK_LFIPC:
	case LK_LFIPC_R:
		rc = lfipc_lock_acquire(lkl, LFIPC_FOREVER);
		return rc == 0 ? 0 : rc == -EOWNERDEAD ? 1 : -1;
	case LK_PTHREAD:
		return pthread_mutex_lock(&lk->m) ? -1 : 0;
	case LK_ROBUST:
		rc = pthread_mutex_lock(&lk->m);
		if (rc == EOWNERDEAD)
			return pthread_mutex_consistent(&lk->m) ? -1 : 1;
		return rc ? -1 : 0;
	default:
		while (sem_wait(&lk->sem))
			if (errno != EINTR)
				return -1;
		return 0;
	}
}

static int lk_rel(int kind)
{
	switch (kind) {
	case LK_LFIPC:
	case LK_LFIPC_R:
		return lfipc_lock_release(lkl) ? -1 : 0;
	case LK_PTHREAD:
	case LK_ROBUST:
		return pthread_mutex_unlock(&lk->m) ? -1 : 0;
	default:
		return sem_post(&lk->sem) ? -1 : 0;
	}
}

static void note_start(void)
{
	uint64_t t = now_ns(), e = atomic_load(&sy->t_start);

	while ((e == 0 || t < e) &&
	       !atomic_compare_exchange_weak(&sy->t_start, &e, t))
		;
}

static void note_end(void)
{
	uint64_t t = now_ns(), e = atomic_load(&sy->t_end);

	while (t > e && !atomic_compare_exchange_weak(&sy->t_end, &e, t))
		;
}

/* Uncontended / contended: n acquire+count+release per process. */
static int lock_worker(struct job *j)
{
	int kind = j->k;

	start_child(j->cpu);
	for (long i = -j->warm; i < j->n; i++) {
		if (i == 0)
			note_start();
		if (lk_acq(kind) != 0)
			return -1;
		if (atomic_fetch_add_explicit(&lk->inside, 1,
					      memory_order_relaxed) != 0)
			return -1; /* relaxed: a check only; the lock orders */
		lk->count++;
		atomic_fetch_sub_explicit(&lk->inside, 1,
					  memory_order_relaxed); /* as above */
		if (lk_rel(kind))
			return -1;
	}
	note_end();
	return 0;
}

/* Returns ns per acquire+release (procs == 1) or total Mops/s, or -1. */
static double lock_run(int kind, int procs, long n)
{
	static struct job j[MAXW];
	bool bad = false;
	double dt;
	int started = 0;

	if (procs > MAXW || lk_setup(kind, 0))
		return -1;
	reset_sync();
	for (int p = 0; p < procs; p++) {
		j[p] = (struct job){.fn = lock_worker,
				    .n = n,
				    .k = kind,
				    .warm = n / 10,
				    .cpu = p};
		if (spawn(&j[p])) {
			bad = true;
			break;
		}
		started++;
	}
	if (!bad)
		start_parent(procs);
	for (int p = 0; p < started; p++)
		if (reap_deadline(j[p].pid, 600000))
			bad = true;
	dt = (double)(atomic_load(&sy->t_end) - atomic_load(&sy->t_start));
	if (lk->count != (uint64_t)procs * (uint64_t)(n + n / 10))
		bad = true;
	lk_teardown(kind);
	if (bad || dt <= 0)
		return -1;
	return procs == 1 ? dt / (double)n
			  : (double)procs * (double)n / (dt / 1e3);
}

/*
 * Hand-off: ownership ping-pong between two processes. Process 0 starts
 * holding the lock. The holder waits until the other process announced it
 * is about to block in acquire (waiting[]), waits a further j->warm ns (0:
 * the waiter has just arrived; 50 us: it is asleep in the kernel for any
 * lock that spins less than that), stamps t_rel and releases. The waiter
 * stamps its acquisition; one sample = t_acquired - t_rel. Each acquisition
 * increments seq, which must alternate between the processes, and the
 * inside counter checks mutual exclusion. For POSIX semaphores the pair
 * hs[] is used: release = post the other's, acquire = wait on one's own.
 */
static int ho_acq(int kind, int me)
{
	if (kind != LK_SEM)
		return lk_acq(kind) == 0 ? 0 : -1;
	while (sem_wait(&lk->hs[me]))
		if (errno != EINTR)
			return -1;
	return 0;
}

static int ho_rel(int kind, int me)
{
	if (kind != LK_SEM)
		return lk_rel(kind);
	return sem_post(&lk->hs[1 - me]) ? -1 : 0;
}

static void spin_ns(uint64_t ns)
{
	uint64_t end = now_ns() + ns;

	while (now_ns() < end)
		relax();
}

static int ho_release(int kind, int me, uint64_t delay, bool last)
{
	int other = 1 - me;

	if (!last) {
		while (!atomic_load(&lk->waiting[other])) {
			if (aborted())
				return -1;
			relax();
		}
		spin_ns(delay);
	}
	atomic_fetch_sub(&lk->inside, 1);
	atomic_store(&lk->t_rel, now_ns());
	return ho_rel(kind, me);
}

static int ho_worker(struct job *j)
{
	int kind = j->k, me = j->cpu, other = 1 - me;
	uint64_t delay = (uint64_t)j->warm;
	long n = j->n;

	if (me == 0) {
		if (kind != LK_SEM && lk_acq(kind) != 0)
			return -1;
		atomic_fetch_add(&lk->inside, 1);
		atomic_store(&lk->holder, 0);
	}
	start_child(me);
	if (me == 0 && ho_release(kind, me, delay, false))
		return -1;
	for (long i = 0; i < n; i++) {
		uint64_t s, t1;

		while (atomic_load(&lk->holder) != other) {
			if (aborted())
				return -1;
			relax();
		}
		atomic_store(&lk->waiting[me], 1);
		if (ho_acq(kind, me))
			return -1;
		t1 = now_ns();
		atomic_store(&lk->waiting[me], 0);
		if (atomic_fetch_add(&lk->inside, 1) != 0)
			return -1;
		s = atomic_load(&lk->seq) + 1;
		if (s != (uint64_t)(2 * i + 2 - me))
			return -1;
		atomic_store(&lk->seq, s);
		lk->lat[s - 1] = (double)(t1 - atomic_load(&lk->t_rel));
		atomic_store(&lk->holder, me);
		if (ho_release(kind, me, delay, me == 0 && i == n - 1))
			return -1;
	}
	return 0;
}

/* One hand-off run: 2n hand-offs; fills lat (sorted round trips). */
static int handoff_run(int kind, long n, uint64_t delay, double *rt)
{
	struct job j[2];
	long warm = n / 10 + 5, tot = n + warm;
	bool bad = false;
	int started = 0;

	if (lk_setup(kind, 2 * tot))
		return -1;
	reset_sync();
	for (int p = 0; p < 2; p++) {
		j[p] = (struct job){.fn = ho_worker,
				    .n = tot,
				    .k = kind,
				    .cpu = p,
				    .warm = (long)delay};
		if (spawn(&j[p])) {
			bad = true;
			break;
		}
		started++;
	}
	if (!bad)
		start_parent(2);
	for (int p = 0; p < started; p++)
		if (reap_deadline(j[p].pid, 600000)) {
			bad = true;
			atomic_store(&sy->abort, 1);
		}
	if (!bad && atomic_load(&lk->seq) != (uint64_t)(2 * tot))
		bad = true;
	/* a round trip = two consecutive hand-offs (there and back) */
	for (long i = 0; !bad && i < n; i++)
		rt[i] = lk->lat[2 * (warm + i)] + lk->lat[2 * (warm + i) + 1];
	lk_teardown(kind);
	if (bad)
		return -1;
	qsort(rt, (size_t)n, sizeof(*rt), cmpd);
	return 0;
}

/*
 * Owner death: H acquires and sleeps; W announces itself and blocks in
 * acquire; the parent waits 2 ms, stamps t0 and SIGKILLs H. W stamps its
 * return, which must be EOWNERDEAD. Sample = t_return - t0 (us).
 */
static int death_holder(struct job *j)
{
	if (lk_acq(j->k) != 0)
		return -1;
	atomic_store(&lk->held, 1);
	for (;;)
		pause();
	return 0;
}

static int death_waiter(struct job *j)
{
	int rc;

	pin(1);
	while (!atomic_load(&lk->held))
		relax();
	atomic_store(&lk->about, 1);
	rc = lk_acq(j->k);
	atomic_store(&lk->t_acq, now_ns());
	atomic_store(&lk->dead_rc, rc);
	if (rc < 0)
		return -1;
	return lk_rel(j->k);
}

static double death_run(int kind)
{
	struct job h = {.fn = death_holder, .k = kind};
	struct job w = {.fn = death_waiter, .k = kind};
	struct timespec d = {0, 2000000};
	uint64_t t0;
	bool bad = false;

	if (lk_setup(kind, 0))
		return -1;
	reset_sync();
	if (spawn(&h)) {
		lk_teardown(kind);
		return -1;
	}
	if (spawn(&w)) {
		kill(h.pid, SIGKILL);
		reap(h.pid);
		lk_teardown(kind);
		return -1;
	}
	while (!atomic_load(&lk->about) && !aborted())
		sched_yield(); /* H may share this CPU */
	nanosleep(&d, NULL);
	t0 = now_ns();
	kill(h.pid, SIGKILL);
	reap(h.pid);
	if (reap_deadline(w.pid, 10000))
		bad = true;
	if (atomic_load(&lk->dead_rc) != 1)
		bad = true;
	double us = (double)(atomic_load(&lk->t_acq) - t0) / 1e3;
	lk_teardown(kind);
	return bad ? -1 : us;
}

static void scen_locks(void)
{
	double v[64], p50s[64];
	long per = opt.hand_n / opt.reps > 50 ? opt.hand_n / opt.reps : 50;
	double *rt = malloc(sizeof(double) * (size_t)(per * opt.reps));
	static const uint64_t delays[2] = {0, 50000};
	static const char *dnames[2] = {"waiter arriving",
					"waiter asleep (50 us)"};

	for (int k = 0; k < LK_N; k++) {
		struct row *r;
		int rep;

		progress("locks", lk_names[k], "uncontended");
		r = newrow(T_LU, lk_names[k], lk_wait[k], "ns", "1 process");
		r->lower_better = true;
		for (rep = 0; rep < opt.reps; rep++) {
			double x = lock_run(k, 1, opt.lock_n);

			if (x < 0) {
				r->failed = true;
				break;
			}
			v[rep] = x;
		}
		setrow(r, v, rep);
	}
	for (int di = 0; di < 2; di++)
		for (int k = 0; k < LK_N; k++) {
			struct row *r;
			int rep;

			progress("lock hand-off", lk_names[k], dnames[di]);
			r = newrow(T_LH, lk_names[k],
				   k == LK_SEM ? "futex (sem pair)"
					       : lk_wait[k],
				   "ns", dnames[di]);
			r->nv = 5;
			r->lower_better = true;
			for (rep = 0; rep < opt.reps; rep++) {
				double *lat = rt + per * rep;

				if (handoff_run(k, per, delays[di], lat)) {
					r->failed = true;
					break;
				}
				p50s[rep] = lat[per / 2];
			}
			pool_row(r, rt, per * rep, p50s, rep);
		}
	for (int pi = 0; pi < opt.nlp; pi++) {
		char param[32];
		int np = opt.lprocs[pi];

		snprintf(param, sizeof(param), "%d processes", np);
		for (int k = 0; k < LK_N; k++) {
			struct row *r;
			int rep;

			progress("locks contended", lk_names[k], param);
			r = newrow(T_LC, lk_names[k], lk_wait[k], "Mops/s",
				   param);
			for (rep = 0; rep < opt.reps; rep++) {
				double x = lock_run(k, np, opt.lock_n / np);

				if (x < 0) {
					r->failed = true;
					break;
				}
				v[rep] = x;
			}
			setrow(r, v, rep);
		}
	}
	for (int k = 0; k < LK_N; k++) {
		struct row *r;
		int t;

		if (k == LK_PTHREAD || k == LK_SEM)
			continue; /* never recover: the waiter blocks forever */
		progress("lock owner death", lk_names[k], "");
		r = newrow(T_LD, lk_names[k], lk_wait[k], "us",
			   "holder SIGKILLed");
		r->lower_better = true;
		for (t = 0; t < opt.death_n && t < 64; t++) {
			double x = death_run(k);

			if (x < 0) {
				r->failed = true;
				break;
			}
			v[t] = x;
		}
		setrow(r, v, t);
	}
	free(rt);
}

/* ---- output -------------------------------------------------------------- */

static const char *notes[32];
static int nnotes;

static void add_note(const char *s)
{
	if (nnotes < 32)
		notes[nnotes++] = s;
}

static struct {
	char cpu[256], kernel[300], pinning[64];
} mach;

static void machine(void)
{
	char line[512];
	struct utsname u;
	FILE *f = fopen("/proc/cpuinfo", "r");

	snprintf(mach.cpu, sizeof(mach.cpu), "unknown");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "model name", 10)) {
			char *p = strchr(line, ':');

			if (p) {
				snprintf(mach.cpu, sizeof(mach.cpu), "%s",
					 p + 2);
				mach.cpu[strcspn(mach.cpu, "\n")] = 0;
			}
			break;
		}
	if (f)
		fclose(f);
	uname(&u);
	snprintf(mach.kernel, sizeof(mach.kernel), "%s %s", u.sysname,
		 u.release);
	snprintf(mach.pinning, sizeof(mach.pinning), "%s",
		 opt.pin && ncpu >= 2 ? "parent CPU0, workers CPU1.. mod cores"
				      : "none");
}

/* A CSV field, quoted (RFC 4180) when it holds a comma, quote or newline. */
static void csv_field(const char *s, bool last)
{
	if (strpbrk(s, ",\"\r\n")) {
		putchar('"');
		for (; *s; s++) {
			if (*s == '"')
				putchar('"');
			putchar(*s);
		}
		putchar('"');
	} else {
		fputs(s, stdout);
	}
	putchar(last ? '\n' : ',');
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

/* CSV comment lines carry no commas, so naive splitters stay consistent. */
static void csv_comment(const char *key, const char *val)
{
	printf("# %s: ", key);
	for (; *val; val++)
		putchar(*val == ',' ? ';' : *val);
	putchar('\n');
}

static void header(void)
{
	char reps[32];

	snprintf(reps, sizeof(reps), "%d", opt.reps);
	if (opt.fmt == 2) {
		printf("{\"tool\":\"lfipc-bench %s\",\"machine\":{\"cpu\":",
		       PACKAGE_VERSION);
		json_str(mach.cpu);
		printf(",\"cores\":%d,\"kernel\":", ncpu);
		json_str(mach.kernel);
		printf(",\"compiler\":");
		json_str(COMPILER);
		printf(",\"pinning\":");
		json_str(mach.pinning);
		printf(",\"repetitions\":%d},\n\"notes\":[", opt.reps);
		for (int i = 0; i < nnotes; i++) {
			printf("%s\n ", i ? "," : "");
			json_str(notes[i]);
		}
		printf("],\n\"results\":[");
		return;
	}
	if (opt.fmt == 1) {
		char cores[16];

		snprintf(cores, sizeof(cores), "%d", ncpu);
		csv_comment("lfipc-bench", PACKAGE_VERSION);
		csv_comment("cpu", mach.cpu);
		csv_comment("cores", cores);
		csv_comment("kernel", mach.kernel);
		csv_comment("compiler", COMPILER);
		csv_comment("pinning", mach.pinning);
		csv_comment("repetitions", reps);
		for (int i = 0; i < nnotes; i++)
			csv_comment("note", notes[i]);
		printf("table,system,wait,param,metric,unit,value,min,max,"
		       "vs_lfipc,status\n");
		return;
	}
	printf("lfipc-bench %s\n", PACKAGE_VERSION);
	printf("CPU: %s; %d cores; kernel %s; compiler %s\n", mach.cpu, ncpu,
	       mach.kernel, COMPILER);
	printf("pinning: %s; repetitions: %d (median, spread min..max of the "
	       "first figure); every message sequence-checked\n",
	       mach.pinning, opt.reps);
	for (int i = 0; i < nnotes; i++)
		printf("note: %s\n", notes[i]);
}

static const struct row *lfipc_ref(const struct row *r)
{
	for (int i = 0; i < nrows; i++)
		if (rows[i].table == r->table &&
		    !strcmp(rows[i].param, r->param) &&
		    !strncmp(rows[i].sys, "lfipc", 5))
			return rows[i].failed ? NULL : &rows[i];
	return NULL;
}

static int decimals(const char *unit)
{
	return unit[0] == 'M' ? 3 : unit[0] == 'u' ? 1 : 0;
}

static int cmprow(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	if (x->tord != y->tord)
		return x->tord - y->tord;
	if (x->pord != y->pord)
		return x->pord - y->pord;
	return x->order - y->order;
}

/* Group rows by table (first appearance), then parameter, stably. */
static void sort_rows(void)
{
	for (int i = 0; i < nrows; i++) {
		rows[i].tord = rows[i].pord = i;
		for (int k = 0; k < i; k++)
			if (rows[k].table == rows[i].table) {
				rows[i].tord = rows[k].tord;
				break;
			}
		for (int k = 0; k < i; k++)
			if (rows[k].table == rows[i].table &&
			    !strcmp(rows[k].param, rows[i].param)) {
				rows[i].pord = rows[k].pord;
				break;
			}
	}
	qsort(rows, (size_t)nrows, sizeof(rows[0]), cmprow);
}

static void print_results(void)
{
	const char *last = NULL;
	bool first = true, anywide = false, anydl = false;

	for (int i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		const struct row *ref = lfipc_ref(r);
		bool wide = !r->failed && r->lo > 0 && r->hi / r->lo > 1.5;
		int dp = decimals(r->unit);
		char ratio[32] = "-", rnum[32] = "", num[3][32];

		if (ref && !r->failed && ref->v[0] > 0 &&
		    strcmp(r->note, "-")) {
			snprintf(ratio, sizeof(ratio), "%.2fx",
				 r->v[0] / ref->v[0]);
			snprintf(rnum, sizeof(rnum), "%.4f",
				 r->v[0] / ref->v[0]);
		}
		anywide |= wide;
		if (opt.fmt == 1) {
			for (int x = 0; x < r->nv; x++) {
				csv_field(r->table, false);
				csv_field(r->sys, false);
				csv_field(r->note, false);
				csv_field(r->param, false);
				csv_field(r->nv == 5 ? pct_names[x] : "median",
					  false);
				csv_field(r->unit, false);
				if (r->failed) {
					printf("FAILED,,,,FAILED\n");
					continue;
				}
				snprintf(num[0], 32, "%.3f", r->v[x]);
				snprintf(num[1], 32, "%.3f", r->lo);
				snprintf(num[2], 32, "%.3f", r->hi);
				csv_field(num[0], false);
				csv_field(x ? "" : num[1], false);
				csv_field(x ? "" : num[2], false);
				csv_field(x ? "" : rnum, false);
				csv_field(r->deadline ? "deadline"
					  : wide      ? "ok-wide"
						      : "ok",
					  true);
			}
			continue;
		}
		if (opt.fmt == 2) {
			printf("%s\n {\"table\":", first ? "" : ",");
			json_str(r->table);
			printf(",\"system\":");
			json_str(r->sys);
			printf(",\"wait\":");
			json_str(r->note);
			printf(",\"param\":");
			json_str(r->param);
			printf(",\"unit\":");
			json_str(r->unit);
			printf(",\"metrics\":[");
			for (int x = 0; x < r->nv; x++)
				printf("%s\"%s\"", x ? "," : "",
				       r->nv == 5 ? pct_names[x] : "median");
			if (r->failed) {
				printf("],\"status\":\"FAILED\",\"median\":"
				       "\"FAILED\"}");
			} else {
				printf("],\"status\":\"%s\",\"min\":%.3f,"
				       "\"max\":%.3f,\"vs_lfipc\":%s,"
				       "\"median\":[",
				       r->deadline ? "deadline"
				       : wide	   ? "ok-wide"
						   : "ok",
				       r->lo, r->hi, rnum[0] ? rnum : "null");
				for (int x = 0; x < r->nv; x++)
					printf("%s%.3f", x ? "," : "", r->v[x]);
				printf("]}");
			}
			first = false;
			continue;
		}
		if (r->table != last) {
			last = r->table;
			printf("\n## %s (%s, %s)\n\n", r->table, r->unit,
			       r->lower_better ? "lower is better"
					       : "higher is better");
			if (r->nv == 5)
				printf("| param | system | wait | p50 | p90 | "
				       "p99 | p99.9 | max | p50 min..max | "
				       "p50 / lfipc |\n|---|---|---|---:|---:|"
				       "---:|---:|---:|---|---:|\n");
			else
				printf("| param | system | wait | median | "
				       "min..max | / lfipc |\n"
				       "|---|---|---|---:|---|---:|\n");
		}
		printf("| %s | %s | %s |", r->param, r->sys, r->note);
		if (r->failed) {
			for (int x = 0; x < r->nv; x++)
				printf(" FAILED |");
			printf(" - | - |\n");
			continue;
		}
		for (int x = 0; x < r->nv; x++)
			printf(" %.*f |", dp, r->v[x]);
		printf(" %.*f..%.*f%s%s | %s |\n", dp, r->lo, dp, r->hi,
		       wide ? " WIDE" : "", r->deadline ? " DEADLINE" : "",
		       ratio);
		anydl |= r->deadline;
	}
	if (opt.fmt == 2)
		printf("\n]}\n");
	if (opt.fmt == 0) {
		printf("\n/ lfipc: this row's (p50 or median) figure divided "
		       "by the first lfipc row of the same table and param.\n");
		if (anywide)
			printf("WIDE: max/min over repetitions > 1.5; the "
			       "machine was noisy, rerun.\n");
		if (anydl)
			printf("DEADLINE: the run was still going after %g s "
			       "(it collapsed); the figure is what was "
			       "delivered, sequence-checked, by then; that "
			       "system's repetitions stopped there.\n",
			       opt.deadline);
	}
}

/* ---- plots -----------------------------------------------------------------
 */

static bool find_gnuplot(char *out, size_t n)
{
	const char *path = getenv("PATH");

	if (GNUPLOT_PATH[0] && access(GNUPLOT_PATH, X_OK) == 0) {
		snprintf(out, n, "%s", GNUPLOT_PATH);
		return true;
	}
	while (path && *path) {
		size_t l = strcspn(path, ":");

		snprintf(out, n, "%.*s/gnuplot", (int)l, path);
		if (l && access(out, X_OK) == 0)
			return true;
		path += l + (path[l] == ':');
	}
	return false;
}

static bool has_rows(const char *table)
{
	for (int i = 0; i < nrows; i++)
		if (rows[i].table == table && !rows[i].failed)
			return true;
	return false;
}

/* Series names for gnuplot: single quotes would end the string. */
static void gp_title(FILE *g, const char *s)
{
	fputc('\'', g);
	for (; *s; s++)
		fputc(*s == '\'' ? '`' : *s, g);
	fputc('\'', g);
}

/* Write one block per system: "x y" lines; returns the number of blocks. */
static int write_series(FILE *d, FILE *g, const char *table, const char *dat,
			bool *firstplot)
{
	const char *done[64];
	int nd = 0;

	for (int i = 0; i < nrows; i++) {
		bool seen = false;

		if (rows[i].table != table || rows[i].failed)
			continue;
		for (int k = 0; k < nd; k++)
			seen |= !strcmp(done[k], rows[i].sys);
		if (seen || nd >= 64)
			continue;
		done[nd] = rows[i].sys;
		fprintf(d, "# %s\n", rows[i].sys);
		for (int k = i; k < nrows; k++)
			if (rows[k].table == table && !rows[k].failed &&
			    !strcmp(rows[k].sys, rows[i].sys))
				fprintf(d, "%ld %.6g\n", atol(rows[k].param),
					rows[k].v[0]);
		fprintf(d, "\n\n");
		fprintf(g, "%s'%s' index %d using 1:2 with linespoints title ",
			*firstplot ? "plot " : ", \\\n     ", dat, nd);
		gp_title(g, rows[i].sys);
		*firstplot = false;
		nd++;
	}
	if (nd)
		fprintf(g, "\n");
	return nd;
}

static void plot(void)
{
	char gp[4096], path[4096];
	FILE *d, *g;
	bool fp;
	pid_t pid;
	int st;

	if (!find_gnuplot(gp, sizeof(gp))) {
		fprintf(stderr, "lfipc-bench: gnuplot not found; --plot "
				"skipped (apt-get install gnuplot-nox)\n");
		return;
	}
	if (mkdir(opt.plot, 0777) && errno != EEXIST) {
		perror(opt.plot);
		return;
	}
	snprintf(path, sizeof(path), "%s/plot.gp", opt.plot);
	g = fopen(path, "w");
	if (!g) {
		perror(path);
		return;
	}
	fprintf(g, "# written by lfipc-bench; run: cd DIR && gnuplot plot.gp\n"
		   "set terminal png noenhanced size 1000,600\n"
		   "set key outside right\n"
		   "set grid\n");

	/* throughput by message size */
	snprintf(path, sizeof(path), "%s/throughput.dat", opt.plot);
	d = has_rows(T_TP) ? fopen(path, "w") : NULL;
	if (d) {
		fprintf(g, "set output 'throughput.png'\nset logscale xy 2\n"
			   "set xlabel 'message size (bytes)'\n"
			   "set ylabel 'million messages / s (median)'\n"
			   "set title 'lfipc-bench: throughput, 1 producer x 1 "
			   "consumer, by message size'\n");
		fp = true;
		write_series(d, g, T_TP, "throughput.dat", &fp);
		fclose(d);
		fprintf(g, "unset logscale\n");
	}

	/* latency percentiles at the smallest message size */
	snprintf(path, sizeof(path), "%s/latency.dat", opt.plot);
	d = has_rows(T_PP) ? fopen(path, "w") : NULL;
	if (d) {
		const char *p0 = NULL;

		fprintf(d, "# system p50 p90 p99 p99.9 (ns)\n");
		for (int i = 0; i < nrows; i++) {
			if (rows[i].table != T_PP || rows[i].failed)
				continue;
			if (!p0)
				p0 = rows[i].param;
			if (strcmp(rows[i].param, p0))
				continue;
			fputc('"', d);
			for (const char *s = rows[i].sys; *s; s++)
				fputc(*s == '"' ? '\'' : *s, d);
			fprintf(d, "\" %.0f %.0f %.0f %.0f\n", rows[i].v[0],
				rows[i].v[1], rows[i].v[2], rows[i].v[3]);
		}
		fclose(d);
		fprintf(g,
			"set output 'latency.png'\nset logscale y\n"
			"set style data histograms\n"
			"set style histogram clustered gap 1\n"
			"set style fill solid 0.8 border -1\n"
			"set boxwidth 0.9\nset xtics rotate by -35 scale 0\n"
			"set xlabel ''\nset ylabel 'round trip, ns (log)'\n"
			"set title 'lfipc-bench: ping-pong round-trip "
			"percentiles (%s)'\n"
			"plot 'latency.dat' using 2:xtic(1) title 'p50', "
			"'' using 3 title 'p90', '' using 4 title 'p99', "
			"'' using 5 title 'p99.9'\n"
			"unset logscale\nunset style\nset xtics norotate\n"
			"set style data linespoints\n",
			p0 ? p0 : "");
	}

	/* clear time by queue length */
	snprintf(path, sizeof(path), "%s/clear.dat", opt.plot);
	d = has_rows(T_CL) ? fopen(path, "w") : NULL;
	if (d) {
		fprintf(g, "set output 'clear.png'\nset logscale xy 10\n"
			   "set xlabel 'messages queued'\nset ylabel 'ns "
			   "(median)'\nset title 'lfipc-bench: "
			   "lfipc_queue_clear by queue length'\n");
		fp = true;
		write_series(d, g, T_CL, "clear.dat", &fp);
		fclose(d);
	}
	fclose(g);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		int log;

		if (chdir(opt.plot))
			_exit(127);
		log = open("gnuplot.log", O_WRONLY | O_CREAT | O_TRUNC, 0666);
		if (log >= 0) {
			dup2(log, 1);
			dup2(log, 2);
		}
		execl(gp, "gnuplot", "plot.gp", (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0)
		fprintf(stderr,
			"lfipc-bench: gnuplot failed; see %s/plot.gp "
			"and gnuplot.log\n",
			opt.plot);
	else
		fprintf(stderr, "lfipc-bench: wrote%s%s%s in %s\n",
			has_rows(T_TP) ? " throughput.png" : "",
			has_rows(T_PP) ? " latency.png" : "",
			has_rows(T_CL) ? " clear.png" : "", opt.plot);
}

/* ---- main
 * -------------------------------------------------------------------- */

static uint64_t t_all, t_lap;
static char laps[256];

/* Note how long the scenario that just ended took (for stderr). */
static void lap(const char *name)
{
	uint64_t t = now_ns();
	size_t l = strlen(laps);

	if (!t_lap)
		t_lap = t_all;
	if (want(name))
		snprintf(laps + l, sizeof(laps) - l, "%s%s %.1f s",
			 l ? ", " : "", name, (double)(t - t_lap) / 1e9);
	t_lap = t;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: lfipc-bench [--quick|--full|--tiny] [--reps N]\n"
		"                   [--format table|csv|json] [--plot DIR]\n"
		"                   [--pc PxC]...  queue P producers x C "
		"consumers (default 1x1 2x2)\n"
		"                   [--lock-procs N]...  contended lock "
		"processes (default 2 4)\n"
		"                   [--only latency,throughput,pc,oversub,"
		"clear,lock]\n"
		"                   [--deadline SEC]  limit of one P x C run "
		"(default 5, --quick 1)\n"
		"                   [--no-pin] [--corrupt-seq N]\n"
		"See doc/bench.md.\n");
}

int main(int argc, char **argv)
{
	static const size_t sizes_def[] = {8, 64, 256, 4096};
	static const size_t sizes_tiny[] = {64};
	static const size_t sizes_quick[] = {8, 256};
	const size_t *sizes = sizes_def;
	int nsz = 4, npc = 0, pcs[8][2];
	bool quick = false;
	struct sigaction sa;

	ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			opt.reps = 3;
			opt.rtt_n = 6000;
			opt.tp_n = 20000;
			opt.lock_n = 20000;
			quick = true;
			opt.hand_n = 1500;
			opt.death_n = 5;
			opt.deadline = 1.0;
			sizes = sizes_quick;
			nsz = 2;
		} else if (!strcmp(argv[i], "--full")) {
			opt.reps = 7;
			opt.rtt_n = 1000000;
			opt.tp_n = 2000000;
			opt.lock_n = 2000000;
			quick = false;
			opt.hand_n = 100000;
			opt.death_n = 31;
			opt.deadline = 20.0;
			sizes = sizes_def;
			nsz = 4;
		} else if (!strcmp(argv[i], "--tiny")) {
			opt.tiny = true;
			opt.reps = 2;
			opt.rtt_n = 400;
			opt.tp_n = 1000;
			opt.lock_n = 1000;
			opt.hand_n = 200;
			opt.death_n = 2;
			opt.deadline = 1.0;
			sizes = sizes_tiny;
			nsz = 1;
		} else if (!strcmp(argv[i], "--pc") && i + 1 < argc) {
			int p, c;

			if (sscanf(argv[++i], "%dx%d", &p, &c) != 2 || p < 1 ||
			    c < 1 || p > 32 || c > 32 || npc >= 8) {
				usage();
				return 2;
			}
			pcs[npc][0] = p;
			pcs[npc++][1] = c;
		} else if (!strcmp(argv[i], "--lock-procs") && i + 1 < argc) {
			int n = atoi(argv[++i]);

			if (n < 2 || n > MAXW || opt.nlp >= 8) {
				usage();
				return 2;
			}
			opt.lprocs[opt.nlp++] = n;
		} else if (!strcmp(argv[i], "--no-pin")) {
			opt.pin = false;
		} else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
			opt.reps = atoi(argv[++i]);
			if (opt.reps < 1 || opt.reps > 64) {
				usage();
				return 2;
			}
		} else if (!strcmp(argv[i], "--format") && i + 1 < argc) {
			i++;
			if (!strcmp(argv[i], "table"))
				opt.fmt = 0;
			else if (!strcmp(argv[i], "csv"))
				opt.fmt = 1;
			else if (!strcmp(argv[i], "json"))
				opt.fmt = 2;
			else {
				usage();
				return 2;
			}
		} else if (!strcmp(argv[i], "--plot") && i + 1 < argc) {
			opt.plot = argv[++i];
		} else if (!strcmp(argv[i], "--deadline") && i + 1 < argc) {
			opt.deadline = atof(argv[++i]);
			if (opt.deadline < 0.01 || opt.deadline > 3600) {
				usage();
				return 2;
			}
		} else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
			opt.only = argv[++i];
		} else if (!strcmp(argv[i], "--corrupt-seq") && i + 1 < argc) {
			opt.corrupt = atoll(argv[++i]);
		} else if (!strcmp(argv[i], "--help") ||
			   !strcmp(argv[i], "-h")) {
			usage();
			return 0;
		} else {
			usage();
			return 2;
		}
	}
	if (npc == 0) {
		pcs[0][0] = pcs[0][1] = 1;
		pcs[1][0] = pcs[1][1] = 2;
		npc = 2;
	}
	if (opt.nlp == 0) {
		opt.lprocs[0] = 2;
		opt.lprocs[1] = 4;
		opt.nlp = 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fail_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL); /* no SA_RESTART: interrupt the wait */
	sigaction(SIGALRM, &sa, NULL);

#ifndef HAVE_CK
	add_note("Concurrency Kit (ck_ring.h) not found at configure time: "
		 "ck_ring skipped (apt-get install libck-dev, reconfigure)");
#endif
#if defined(URCU_TSAN)
	add_note("liburcu wfcqueue skipped: built with ThreadSanitizer, "
		 "which cannot see liburcu's atomics");
#elif !defined(HAVE_URCU)
	add_note("liburcu not found at configure time: wfcqueue skipped "
		 "(apt-get install liburcu-dev, reconfigure)");
#endif
#ifdef HAVE_DPDK
	add_note("DPDK rte_ring: rte_ring_init() on MAP_SHARED memory, "
		 "without rte_eal_init() or hugepages");
#else
	add_note("DPDK (libdpdk) not found at configure time: rte_ring "
		 "skipped (apt-get install libdpdk-dev, reconfigure)");
#endif
#ifdef HAVE_URCU
	add_note("liburcu wfcqueue is in-process: its workers are threads of "
		 "one process, not processes; malloc per message");
#endif
	add_note("owner death: a plain pshared mutex or a POSIX semaphore "
		 "never recovers (the waiter blocks forever), so only robust "
		 "mutexes are compared");
	if (opt.corrupt >= 0)
		add_note("--corrupt-seq: one message per run is deliberately "
			 "damaged; every message table must show FAILED");

	sy = shmem(4096);
	mp = shmem(sizeof(*mp));
	machine();
	header();
	fflush(stdout);
	t_all = now_ns();
	if (want("latency")) /* --quick: the smallest size only */
		scen_pingpong(sizes, quick ? 1 : nsz);
	lap("latency");
	if (want("throughput"))
		scen_throughput(sizes, nsz);
	lap("throughput");
	for (int i = 0; i < npc && want("pc"); i++)
		scen_mpmc(sizes, nsz, pcs[i][0], pcs[i][1], T_PC);
	lap("pc");
	if (want("oversub"))
		scen_mpmc(sizes, 1, 2 * ncpu, 2 * ncpu, T_OS);
	lap("oversub");
	if (want("clear"))
		scen_clear();
	lap("clear");
	if (want("lock"))
		scen_locks();
	lap("lock");
	if (isatty(2))
		fprintf(stderr, "\r\033[K");
	sort_rows();
	print_results();
	fflush(stdout);
	fprintf(stderr, "lfipc-bench: %.1f s (%s)\n",
		(double)(now_ns() - t_all) / 1e9, laps);
	if (opt.plot)
		plot();
	for (int i = 0; i < nrows; i++)
		if (rows[i].failed)
			return 1;
	return 0;
}
