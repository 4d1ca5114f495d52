// SPDX-License-Identifier: MIT
/*
 * lfipc-bench - compare lfipc with the IPC mechanisms people would otherwise
 * pick, side by side, in one run, on this machine.
 *
 * Method (as DPDK's ring_perf_autotest and the anchor measurements do):
 * two processes created by fork(), pinned parent CPU0 / child CPU1 when
 * there are >= 2 CPUs (--no-pin disables), a warm-up before each measured
 * run, every message carrying its sequence number in its first and last
 * 8 bytes which the receiver checks (a failed check prints FAILED instead
 * of a number), several repetitions reported as median and min..max, and a
 * warning when max/min > 1.5.
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
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lfipc/region.h>
#include <lfipc/pipe.h>
#include <lfipc/queue.h>

#ifdef HAVE_CK
#include <ck_ring.h>
#endif

#define MAXMSG 4096
#define QCAP 64

/* ---- options and helpers ------------------------------------------------ */

static struct {
	int reps;
	long rtt_n;    /* round trips per latency run */
	long tp_n;     /* messages per throughput run */
	long lock_n;   /* lock operations per process */
	bool pin;
	int fmt;       /* 0 table, 1 csv, 2 json */
	const char *plot;
	bool tiny;     /* --tiny: smoke test for make check */
} opt = { 5, 100000, 200000, 200000, true, 0, NULL, false };

static int ncpu;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

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

static void fill(char *b, size_t n, uint64_t seq)
{
	memcpy(b, &seq, 8);
	if (n >= 16)
		memcpy(b + n - 8, &seq, 8);
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
	char param[32];
	int nv;           /* number of values: 1 or 5 percentiles */
	double v[5];      /* medians over repetitions */
	double lo, hi;    /* spread of v[0] */
	bool failed, lower_better;
};

static struct row rows[512];
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

static const char *pct_names[5] = { "p50", "p90", "p99", "p99.9", "max" };

static void progress(const char *what, const char *sys, const char *param)
{
	if (isatty(2))
		fprintf(stderr, "\r\033[K[lfipc-bench] %s: %s %s", what, sys,
			param);
}

/* ---- channels: one ops table per system ---------------------------------- */

/*
 * dir 0 carries parent -> child, dir 1 child -> parent. send/recv return 0
 * or -1. init is called in the parent before fork; fini after the child
 * was reaped.
 */
struct chan {
	const char *name, *wait;
	bool lfipc, pp_only;
	int (*init)(size_t msz);
	int (*send)(int dir, const void *m, size_t n);
	int (*recv)(int dir, void *m, size_t n);
	void (*fini)(void);
	bool mpmc; /* safe with several senders and receivers */
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
			if (k < 0 && errno == EINTR)
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
	return pipe(pfd[0]) || pipe(pfd[1]) ? -1 : 0;
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

/* socketpair(SOCK_SEQPACKET) */
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
	return recv(sv[1 - d], m, n, 0) == (ssize_t)n ? 0 : -1;
}
static void sp_fini(void)
{
	close(sv[0]);
	close(sv[1]);
}

/* POSIX message queues */
static mqd_t mq[2];
static int mq_init_(size_t msz)
{
	struct mq_attr a = { .mq_maxmsg = 10, .mq_msgsize = (long)msz };
	char nm[64];

	for (int i = 0; i < 2; i++) {
		snprintf(nm, sizeof(nm), "/lfipc-bench-%d-%d", (int)getpid(), i);
		mq[i] = mq_open(nm, O_RDWR | O_CREAT | O_EXCL, 0600, &a);
		if (mq[i] == (mqd_t)-1)
			return -1;
		mq_unlink(nm);
	}
	return 0;
}
static int mq_send_(int d, const void *m, size_t n)
{
	return mq_send(mq[d], m, n, 0);
}
static int mq_recv_(int d, void *m, size_t n)
{
	char b[MAXMSG + 64];

	if (mq_receive(mq[d], b, sizeof(b), NULL) != (ssize_t)n)
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
	char slot[QCAP][MAXMSG];
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
	while (q->tail - q->head == QCAP)
		pthread_cond_wait(&q->nf, &q->m);
	memcpy(q->slot[q->tail % QCAP], m, n);
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
	memcpy(m, q->slot[q->head % QCAP], n);
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
 * ck_ring spsc in MAP_SHARED memory. ck_ring carries pointer-sized values,
 * so it carries slot indexes into a payload slab of 2 * capacity slots: the
 * producer can run at most capacity - 1 ahead, so the slot it writes was
 * consumed (and copied out) a full capacity earlier.
 */
struct ckq {
	ck_ring_t ring;
	ck_ring_buffer_t buf[QCAP];
	uint64_t n;
	char slab[2 * QCAP][MAXMSG];
};
static struct ckq *ckq;
static int ck_init_(size_t msz)
{
	(void)msz;
	ckq = shmem(2 * sizeof(*ckq));
	ck_ring_init(&ckq[0].ring, QCAP);
	ck_ring_init(&ckq[1].ring, QCAP);
	return 0;
}
static int ck_send_(int d, const void *m, size_t n)
{
	struct ckq *q = &ckq[d];
	uintptr_t i = q->n++ % (2 * QCAP);

	memcpy(q->slab[i], m, n);
	while (!ck_ring_enqueue_spsc(&q->ring, q->buf, (void *)(i + 1)))
		relax();
	return 0;
}
static int ck_recv_(int d, void *m, size_t n)
{
	struct ckq *q = &ckq[d];
	void *v;

	while (!ck_ring_dequeue_spsc(&q->ring, q->buf, &v))
		relax();
	memcpy(m, q->slab[(uintptr_t)v - 1], n);
	return 0;
}
static void ck_fini(void)
{
	munmap(ckq, 2 * sizeof(*ckq));
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
		relax();
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
static size_t lq_cap = 1024;
static int lq_init(size_t msz)
{
	size_t rsz = 2 * lq_cap * (msz + 64) + (4 << 20);

	if (lfipc_region_create(NULL, rsz, 0, &qreg))
		return -1;
	if (lfipc_queue_create(qreg, "q0", lq_cap, msz, 0, &lq[0]) ||
	    lfipc_queue_create(qreg, "q1", lq_cap, msz, 0, &lq[1])) {
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
		relax();
	return rc ? -1 : 0;
}
static int lq_recv_busy(int d, void *m, size_t n)
{
	size_t len = 0;
	int rc;

	while ((rc = lfipc_queue_get(lq[d], m, n, &len, LFIPC_NOWAIT)) ==
	       -EAGAIN)
		relax();
	return rc || len != n ? -1 : 0;
}
static void lq_fini(void)
{
	lfipc_queue_close(lq[0]);
	lfipc_queue_close(lq[1]);
	lfipc_region_close(qreg);
}

static const struct chan chans[] = {
	{ "lfipc queue", "spin+futex", true, false, lq_init, lq_send, lq_recv,
	  lq_fini, true },
	{ "lfipc queue busy", "busy", true, false, lq_init, lq_send_busy,
	  lq_recv_busy, lq_fini, true },
	{ "lfipc pipe", "spin+futex", true, false, lp_init, lp_send, lp_recv,
	  lp_fini, false },
#ifdef HAVE_CK
	{ "ck_ring spsc", "busy", false, false, ck_init_, ck_send_, ck_recv_,
	  ck_fini, false },
#endif
	{ "mutex+cond queue", "futex", false, false, mcq_init, mcq_send,
	  mcq_recv, mcq_fini, true },
	{ "pipe(2)", "kernel", false, false, pipe_init, pipe_send, pipe_recv,
	  pipe_fini, false },
	{ "socketpair seqpacket", "kernel", false, false, sp_init, sp_send,
	  sp_recv, sp_fini, false },
	{ "POSIX mq", "kernel", false, false, mq_init_, mq_send_, mq_recv_,
	  mq_fini, true },
	{ "eventfd", "kernel", false, true, ev_init, ev_send, ev_recv,
	  ev_fini, false },
	{ "bare cache line", "busy", false, true, cl_init, cl_send, cl_recv,
	  cl_fini, false },
	{ "bare futex", "futex", false, true, fx_init, fx_send, fx_recv,
	  fx_fini, false },
};

/* ---- process plumbing ---------------------------------------------------- */

struct sync {
	atomic_int ready, go;
	_Atomic uint64_t t_start, t_end; /* min start, max end (lock runs) */
};
static struct sync *sy;

static int reap(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static void start_child(void)
{
	pin(1);
	atomic_fetch_add(&sy->ready, 1);
	while (!atomic_load(&sy->go))
		relax();
}

static void start_parent(int nchild)
{
	while (atomic_load(&sy->ready) < nchild)
		sched_yield();
	atomic_store(&sy->go, 1);
}

/*
 * One ping-pong run of n round trips of msz bytes: fills lat[] (ns, sorted).
 * Returns 0, or -1 when a sequence check failed or a process failed.
 */
static int run_pp(const struct chan *c, size_t msz, long n, double *lat)
{
	static char m[MAXMSG];
	long warm = n / 10 + 10;
	int bad = 0;
	pid_t pid;

	if (c->init(msz))
		return -1;
	memset(sy, 0, sizeof(*sy));
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		start_child();
		for (long i = 0; i < warm + n; i++) {
			if (c->recv(0, m, msz) || !check(m, msz, (uint64_t)i))
				_exit(1);
			if (c->send(1, m, msz))
				_exit(1);
		}
		_exit(0);
	}
	pin(0);
	start_parent(1);
	for (long i = 0; i < warm + n && !bad; i++) {
		uint64_t t0 = now_ns();

		fill(m, msz, (uint64_t)i);
		if (c->send(0, m, msz) || c->recv(1, m, msz) ||
		    !check(m, msz, (uint64_t)i))
			bad = 1;
		if (i >= warm)
			lat[i - warm] = (double)(now_ns() - t0);
	}
	if (bad)
		kill(pid, SIGKILL);
	if (reap(pid))
		bad = 1;
	c->fini();
	qsort(lat, (size_t)n, sizeof(*lat), cmpd);
	return bad ? -1 : 0;
}

/* One throughput run: child sends n messages, parent receives; msg/s. */
static double run_tp(const struct chan *c, size_t msz, long n)
{
	static char m[MAXMSG];
	long warm = n / 10;
	bool bad = false;
	uint64_t t0 = 0;
	pid_t pid;

	if (c->init(msz))
		return -1;
	memset(sy, 0, sizeof(*sy));
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		start_child();
		for (long i = 0; i < warm + n; i++) {
			fill(m, msz, (uint64_t)i);
			if (c->send(0, m, msz))
				_exit(1);
		}
		_exit(0);
	}
	pin(0);
	start_parent(1);
	for (long i = 0; i < warm + n; i++) {
		if (i == warm)
			t0 = now_ns();
		if (c->recv(0, m, msz) || !check(m, msz, (uint64_t)i)) {
			bad = true;
			break;
		}
	}
	double dt = (double)(now_ns() - t0);
	if (bad)
		kill(pid, SIGKILL);
	if (reap(pid))
		bad = true;
	c->fini();
	return bad ? -1 : (double)n / (dt / 1e9);
}

/* ---- scenarios ----------------------------------------------------------- */

static struct row *newrow(const char *table, const char *sys,
			  const char *note, const char *unit, const char *param)
{
	struct row *r = &rows[nrows < 511 ? nrows++ : 511];

	memset(r, 0, sizeof(*r));
	r->table = table;
	r->sys = sys;
	r->note = note;
	r->unit = unit;
	snprintf(r->param, sizeof(r->param), "%s", param);
	return r;
}

static void scen_pingpong(const size_t *sizes, int nsz)
{
	double *lat = malloc(sizeof(double) * (size_t)opt.rtt_n);
	double pv[5][64];

	for (int s = 0; s < nsz; s++) {
		char param[32];

		snprintf(param, sizeof(param), "%zu B", sizes[s]);
		for (size_t k = 0; k < sizeof(chans) / sizeof(chans[0]); k++) {
			const struct chan *c = &chans[k];
			struct row *r;
			int rep;

			if (c->pp_only && sizes[s] != sizes[0])
				continue;
			progress("ping-pong", c->name, param);
			r = newrow("Ping-pong round trip latency", c->name,
				   c->wait, "ns", param);
			r->nv = 5;
			r->lower_better = true;
			for (rep = 0; rep < opt.reps; rep++) {
				long n = opt.rtt_n;

				if (run_pp(c, sizes[s], n, lat)) {
					r->failed = true;
					break;
				}
				pv[0][rep] = lat[n / 2];
				pv[1][rep] = lat[n * 9 / 10];
				pv[2][rep] = lat[n * 99 / 100];
				pv[3][rep] = lat[n * 999 / 1000];
				pv[4][rep] = lat[n - 1];
			}
			if (r->failed)
				continue;
			for (int j = 0; j < 5; j++) {
				if (j == 0) {
					qsort(pv[0], (size_t)rep, sizeof(double),
					      cmpd);
					r->lo = pv[0][0];
					r->hi = pv[0][rep - 1];
				}
				r->v[j] = median(pv[j], rep);
			}
		}
	}
	free(lat);
}

static void scen_throughput(const size_t *sizes, int nsz)
{
	double v[64];

	for (int s = 0; s < nsz; s++) {
		char param[32];

		snprintf(param, sizeof(param), "%zu B", sizes[s]);
		for (size_t k = 0; k < sizeof(chans) / sizeof(chans[0]); k++) {
			const struct chan *c = &chans[k];
			struct row *r;
			int rep;

			if (c->pp_only)
				continue;
			progress("throughput 1x1", c->name, param);
			r = newrow("Throughput, 1 producer x 1 consumer process",
				   c->name, c->wait, "Mmsg/s", param);
			r->nv = 1;
			for (rep = 0; rep < opt.reps; rep++) {
				double x = run_tp(c, sizes[s], opt.tp_n);

				if (x < 0) {
					r->failed = true;
					break;
				}
				v[rep] = x / 1e6;
			}
			if (r->failed)
				continue;
			qsort(v, (size_t)rep, sizeof(double), cmpd);
			r->lo = v[0];
			r->hi = v[rep - 1];
			r->v[0] = median(v, rep);
		}
	}
}


/*
 * P producer x C consumer processes over direction 0 of a channel. Each
 * message carries (producer << 40 | i); every consumer checks that each
 * producer's numbers arrive strictly increasing, and the consumers' total
 * count and sum must equal what was sent. The parent sends one end marker
 * per consumer after the producers finished. Returns Mmsg/s or -1.
 */
struct mp {
	_Atomic uint64_t count, sum, t_end;
	atomic_int bad;
};
static struct mp *mp;
#define END_MARK UINT64_MAX

static double run_mpmc(const struct chan *c, size_t msz, int P, int C,
		       long n)
{
	static char m[MAXMSG];
	pid_t pid[128];
	bool bad = false;
	uint64_t t0, want = 0;

	if (c->init(msz))
		return -1;
	memset(sy, 0, sizeof(*sy));
	memset(mp, 0, sizeof(*mp));
	for (int k = 0; k < P + C; k++) {
		pid[k] = fork();
		if (pid[k] < 0)
			return -1;
		if (pid[k])
			continue;
		pin(k + 1);
		atomic_fetch_add(&sy->ready, 1);
		while (!atomic_load(&sy->go))
			relax();
		if (k < P) {
			for (long i = 0; i < n; i++) {
				fill(m, msz, ((uint64_t)k << 40) | (uint64_t)i);
				if (c->send(0, m, msz))
					_exit(1);
			}
			_exit(0);
		}
		uint64_t last[128], cnt = 0, sum = 0, v;

		for (int p = 0; p < P; p++)
			last[p] = UINT64_MAX;
		for (;;) {
			if (c->recv(0, m, msz))
				_exit(1);
			memcpy(&v, m, 8);
			if (v == END_MARK)
				break;
			unsigned p = (unsigned)(v >> 40);
			uint64_t i = v & ((1ull << 40) - 1);
			if (p >= (unsigned)P || !check(m, msz, v) ||
			    (last[p] != UINT64_MAX && i <= last[p]))
				atomic_store(&mp->bad, 1);
			else
				last[p] = i;
			cnt++;
			sum += v;
		}
		atomic_fetch_add(&mp->count, cnt);
		atomic_fetch_add(&mp->sum, sum);
		uint64_t t = now_ns(), e = atomic_load(&mp->t_end);
		while (t > e && !atomic_compare_exchange_weak(&mp->t_end, &e, t))
			;
		_exit(0);
	}
	start_parent(P + C);
	t0 = now_ns();
	for (int k = 0; k < P; k++)
		if (reap(pid[k]))
			bad = true;
	for (int k = 0; k < C && !bad; k++) {
		fill(m, msz, END_MARK);
		if (c->send(0, m, msz))
			bad = true;
	}
	if (bad)
		for (int k = P; k < P + C; k++)
			kill(pid[k], SIGKILL);
	for (int k = P; k < P + C; k++)
		if (reap(pid[k]))
			bad = true;
	c->fini();
	for (int p = 0; p < P; p++)
		for (long i = 0; i < n; i++)
			want += ((uint64_t)p << 40) | (uint64_t)i;
	if (bad || atomic_load(&mp->bad) ||
	    atomic_load(&mp->count) != (uint64_t)P * (uint64_t)n ||
	    atomic_load(&mp->sum) != want)
		return -1;
	return (double)P * (double)n /
	       ((double)(atomic_load(&mp->t_end) - t0) / 1e3);
}

static int npc, pcs[8][2];

static void scen_mpmc(const size_t *sizes, int nsz, int P, int C,
		      const char *table)
{
	double v[64];

	for (int s = 0; s < nsz; s++) {
		char param[32];

		snprintf(param, sizeof(param), "%dx%d %zu B", P, C, sizes[s]);
		for (size_t k = 0; k < sizeof(chans) / sizeof(chans[0]); k++) {
			const struct chan *c = &chans[k];
			struct row *r;
			int rep;

			if (!c->mpmc)
				continue;
			progress(table, c->name, param);
			r = newrow(table, c->name, c->wait, "Mmsg/s", param);
			r->nv = 1;
			for (rep = 0; rep < opt.reps; rep++) {
				double x = run_mpmc(c, sizes[s], P, C,
						    opt.tp_n / P);
				if (x < 0) {
					r->failed = true;
					break;
				}
				v[rep] = x;
			}
			if (r->failed)
				continue;
			qsort(v, (size_t)rep, sizeof(double), cmpd);
			r->lo = v[0];
			r->hi = v[rep - 1];
			r->v[0] = median(v, rep);
		}
	}
}

/*
 * Bulk: lfipc_queue_put_many / get_many with bursts of 8 and 32, 1x1, the
 * receiver checking every sequence number. Mmsg/s or -1.
 */
static double run_bulk(size_t msz, int burst, long n)
{
	static char m[32][MAXMSG];
	const void *ptr[32];
	size_t lens[32];
	bool bad = false;
	uint64_t t0;
	pid_t pid;

	if (lq_init(msz))
		return -1;
	memset(sy, 0, sizeof(*sy));
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		start_child();
		for (long i = 0; i < n;) {
			int k = (int)(n - i < burst ? n - i : burst), got;

			for (int j = 0; j < k; j++) {
				fill(m[j], msz, (uint64_t)(i + j));
				ptr[j] = m[j];
				lens[j] = msz;
			}
			got = lfipc_queue_put_many(lq[0], ptr, lens,
						   (size_t)k, LFIPC_FOREVER);
			if (got <= 0)
				_exit(1);
			i += got;
			/* unsent tail of the burst is rebuilt next round */
		}
		_exit(0);
	}
	pin(0);
	start_parent(1);
	t0 = now_ns();
	for (long i = 0; i < n && !bad;) {
		int got = lfipc_queue_get_many(lq[0], m, MAXMSG, lens,
					       (size_t)burst, LFIPC_FOREVER);
		if (got <= 0)
			bad = true;
		for (int j = 0; j < got && !bad; j++, i++)
			if (lens[j] != msz || !check(m[j], msz, (uint64_t)i))
				bad = true;
	}
	double dt = (double)(now_ns() - t0);
	if (bad)
		kill(pid, SIGKILL);
	if (reap(pid))
		bad = true;
	lq_fini();
	return bad ? -1 : (double)n / (dt / 1e3);
}

static void scen_bulk(const size_t *sizes, int nsz)
{
	static const int bursts[2] = { 8, 32 };
	double v[64];

	for (int s = 0; s < nsz; s++)
		for (int b = 0; b < 2; b++) {
			char param[32], *sys = malloc(48);
			struct row *r;
			int rep;

			snprintf(param, sizeof(param), "%zu B", sizes[s]);
			snprintf(sys, 48, "lfipc queue burst %d", bursts[b]);
			progress("bulk", sys, param);
			r = newrow("Throughput, 1 producer x 1 consumer process",
				   sys, "spin+futex", "Mmsg/s", param);
			r->nv = 1;
			for (rep = 0; rep < opt.reps; rep++) {
				double x = run_bulk(sizes[s], bursts[b],
						    opt.tp_n);
				if (x < 0) {
					r->failed = true;
					break;
				}
				v[rep] = x;
			}
			if (r->failed)
				continue;
			qsort(v, (size_t)rep, sizeof(double), cmpd);
			r->lo = v[0];
			r->hi = v[rep - 1];
			r->v[0] = median(v, rep);
		}
}

/*
 * Clear: lfipc_queue_clear() with 10, 1,000 and 1,000,000 messages queued
 * (8 B), and the first put+get after it (which must return the new message).
 */
static void scen_clear(void)
{
	static const long lens[3] = { 10, 1000, 1000000 };
	char m[64];

	for (int li = 0; li < 3; li++) {
		long L = opt.tiny && lens[li] > 1000 ? 1000 : lens[li];
		double vc[64], vf[64];
		struct row *rc, *rf;
		char param[32];
		int rep;

		snprintf(param, sizeof(param), "%ld queued", L);
		progress("clear", "lfipc queue", param);
		rc = newrow("Queue clear", "lfipc_queue_clear", "-", "ns",
			    param);
		rf = newrow("Queue clear", "first put+get after clear", "-",
			    "ns", param);
		rc->nv = rf->nv = 1;
		rc->lower_better = rf->lower_better = true;
		for (rep = 0; rep < opt.reps; rep++) {
			lfipc_region *reg;
			lfipc_queue *q;
			uint64_t t0, t1, t2;
			int64_t got;
			size_t len;
			bool ok = true;

			if (lfipc_region_create(NULL,
						(size_t)L * 128 + (8 << 20), 0,
						&reg)) {
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
				ok = lfipc_queue_put(q, m, 8, LFIPC_NOWAIT) == 0;
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
			vc[rep] = (double)(t1 - t0);
			vf[rep] = (double)(t2 - t1);
		}
		if (rc->failed)
			continue;
		qsort(vc, (size_t)rep, sizeof(double), cmpd);
		qsort(vf, (size_t)rep, sizeof(double), cmpd);
		rc->lo = vc[0];
		rc->hi = vc[rep - 1];
		rc->v[0] = median(vc, rep);
		rf->lo = vf[0];
		rf->hi = vf[rep - 1];
		rf->v[0] = median(vf, rep);
	}
}

/* Locks: a counter protected by the lock; the final count is the check. */
struct lk {
	pthread_mutex_t m, rm;
	sem_t sem;
	uint64_t count;
};
static struct lk *lk;

static void lk_acq(int kind)
{
	if (kind == 0)
		pthread_mutex_lock(&lk->m);
	else if (kind == 1) {
		if (pthread_mutex_lock(&lk->rm) == EOWNERDEAD)
			pthread_mutex_consistent(&lk->rm);
	} else
		while (sem_wait(&lk->sem))
			;
}
static void lk_rel(int kind)
{
	if (kind == 0)
		pthread_mutex_unlock(&lk->m);
	else if (kind == 1)
		pthread_mutex_unlock(&lk->rm);
	else
		sem_post(&lk->sem);
}

static double lock_run(int kind, int procs, long n)
{
	pid_t pid[64];
	bool bad = false;

	lk->count = 0;
	memset(sy, 0, sizeof(*sy));
	for (int p = 0; p < procs; p++) {
		pid[p] = fork();
		if (pid[p] == 0) {
			uint64_t t, e;

			pin(p);
			atomic_fetch_add(&sy->ready, 1);
			while (!atomic_load(&sy->go))
				relax();
			t = now_ns();
			e = atomic_load(&sy->t_start);
			while ((e == 0 || t < e) &&
			       !atomic_compare_exchange_weak(&sy->t_start, &e, t))
				;
			for (long i = 0; i < n; i++) {
				lk_acq(kind);
				lk->count++;
				lk_rel(kind);
			}
			t = now_ns();
			e = atomic_load(&sy->t_end);
			while (t > e &&
			       !atomic_compare_exchange_weak(&sy->t_end, &e, t))
				;
			_exit(0);
		}
	}
	start_parent(procs);
	for (int p = 0; p < procs; p++)
		if (reap(pid[p]))
			bad = true;
	double dt = (double)(atomic_load(&sy->t_end) - atomic_load(&sy->t_start));
	if (bad || lk->count != (uint64_t)procs * (uint64_t)n)
		return -1;
	return dt / (double)(procs * n);
}

static void scen_locks(void)
{
	static const char *names[3] = { "pthread mutex (pshared)",
					"pthread mutex (robust)",
					"POSIX sem_t" };
	pthread_mutexattr_t ma;
	double v[64];
	int procs[3] = { 1, 2, 4 };

	lk = shmem(sizeof(*lk));
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutex_init(&lk->m, &ma);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&lk->rm, &ma);
	sem_init(&lk->sem, 1, 1);
	for (int pi = 0; pi < 3; pi++) {
		char param[32];

		snprintf(param, sizeof(param), "%d proc", procs[pi]);
		for (int k = 0; k < 3; k++) {
			struct row *r;
			int rep;

			progress("locks", names[k], param);
			r = newrow(procs[pi] == 1
					   ? "Lock acquire+release, uncontended"
					   : "Lock acquire+release, contended "
					     "(per operation)",
				   names[k], "futex", "ns/op", param);
			r->nv = 1;
			r->lower_better = true;
			for (rep = 0; rep < opt.reps; rep++) {
				double x = lock_run(k, procs[pi],
						    opt.lock_n / procs[pi]);
				if (x < 0) {
					r->failed = true;
					break;
				}
				v[rep] = x;
			}
			if (r->failed)
				continue;
			qsort(v, (size_t)rep, sizeof(double), cmpd);
			r->lo = v[0];
			r->hi = v[rep - 1];
			r->v[0] = median(v, rep);
		}
	}
	munmap(lk, sizeof(*lk));
}

/* ---- output -------------------------------------------------------------- */

static void header(void)
{
	char model[256] = "unknown", line[512];
	struct utsname u;
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "model name", 10)) {
			char *p = strchr(line, ':');

			if (p) {
				snprintf(model, sizeof(model), "%s", p + 2);
				model[strcspn(model, "\n")] = 0;
			}
			break;
		}
	if (f)
		fclose(f);
	uname(&u);
	const char *pinning = opt.pin && ncpu >= 2
				      ? "parent CPU0, child CPU1"
				      : "none";
	if (opt.fmt == 2) {
		printf("{\"machine\":{\"cpu\":\"%s\",\"cores\":%d,"
		       "\"kernel\":\"%s %s\",\"compiler\":\"%s\","
		       "\"pinning\":\"%s\",\"repetitions\":%d},\n\"results\":[",
		       model, ncpu, u.sysname, u.release, __VERSION__, pinning,
		       opt.reps);
		return;
	}
	if (opt.fmt == 1) {
		printf("# cpu=%s; cores=%d; kernel=%s %s; compiler=%s; "
		       "pinning=%s; repetitions=%d\n",
		       model, ncpu, u.sysname, u.release, __VERSION__, pinning,
		       opt.reps);
		printf("table,system,wait,param,metric,unit,median,min,max,"
		       "status\n");
		return;
	}
	printf("lfipc-bench %s\n", PACKAGE_VERSION);
	printf("CPU: %s; %d cores; kernel %s %s; compiler gcc %s\n", model,
	       ncpu, u.sysname, u.release, __VERSION__);
	printf("pinning: %s; repetitions: %d (median, spread min..max of the "
	       "first figure); sequence-checked messages\n",
	       pinning, opt.reps);
}

static const struct row *lfipc_ref(const struct row *r)
{
	for (int i = 0; i < nrows; i++)
		if (rows[i].table == r->table &&
		    !strcmp(rows[i].param, r->param) &&
		    !strncmp(rows[i].sys, "lfipc", 5) && !rows[i].failed)
			return &rows[i];
	return NULL;
}

static void print_results(void)
{
	const char *last = NULL;
	bool first = true;

	for (int i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		const struct row *ref = lfipc_ref(r);
		bool wide = !r->failed && r->lo > 0 && r->hi / r->lo > 1.5;
		char ratio[32] = "-";

		if (ref && !r->failed && ref->v[0] > 0 && strcmp(r->note, "-"))
			snprintf(ratio, sizeof(ratio), "%.2fx",
				 r->v[0] / ref->v[0]);
		if (opt.fmt == 1) {
			for (int j = 0; j < r->nv; j++)
				printf("\"%s\",\"%s\",%s,%s,%s,%s,%.3f,%.3f,"
				       "%.3f,%s\n",
				       r->table, r->sys, r->note, r->param,
				       r->nv == 5 ? pct_names[j] : "rate",
				       r->unit, r->v[j], j ? r->v[j] : r->lo,
				       j ? r->v[j] : r->hi,
				       r->failed ? "FAILED" : "ok");
			continue;
		}
		if (opt.fmt == 2) {
			printf("%s\n {\"table\":\"%s\",\"system\":\"%s\","
			       "\"wait\":\"%s\",\"param\":\"%s\","
			       "\"unit\":\"%s\",\"status\":\"%s\","
			       "\"min\":%.3f,\"max\":%.3f,\"median\":[",
			       first ? "" : ",", r->table, r->sys, r->note,
			       r->param, r->unit, r->failed ? "FAILED" : "ok",
			       r->lo, r->hi);
			for (int j = 0; j < r->nv; j++)
				printf("%s%.3f", j ? "," : "", r->v[j]);
			printf("]}");
			first = false;
			continue;
		}
		if (r->table != last) {
			last = r->table;
			printf("\n## %s (%s, %s)\n\n", r->table, r->unit,
			       r->lower_better ? "lower is better"
					       : "higher is better");
			if (r->nv == 5)
				printf("| size | system | wait | p50 | p90 | "
				       "p99 | p99.9 | max | p50 min..max | "
				       "p50 / lfipc |\n|---|---|---|---|---|"
				       "---|---|---|---|---|\n");
			else
				printf("| param | system | wait | median | "
				       "min..max | / lfipc |\n"
				       "|---|---|---|---|---|---|\n");
		}
		printf("| %s | %s | %s |", r->param, r->sys, r->note);
		if (r->failed) {
			for (int j = 0; j < r->nv; j++)
				printf(" FAILED |");
			printf(" - | - |\n");
			continue;
		}
		for (int j = 0; j < r->nv; j++)
			printf(" %.*f |", r->unit[0] == 'M' ? 3 : 0, r->v[j]);
		printf(" %.*f..%.*f%s | %s |\n", r->unit[0] == 'M' ? 3 : 0,
		       r->lo, r->unit[0] == 'M' ? 3 : 0, r->hi,
		       wide ? " WIDE" : "", ratio);
	}
	if (opt.fmt == 2)
		printf("\n]}\n");
	if (opt.fmt == 0)
		printf("\nWIDE: max/min over repetitions > 1.5; the machine "
		       "was noisy, rerun.\n");
}

static void plot(void)
{
	char path[4096];
	FILE *d, *g;

	if (!GNUPLOT_PATH[0]) {
		fprintf(stderr, "lfipc-bench: gnuplot not found at configure "
				"time; --plot skipped\n");
		return;
	}
	snprintf(path, sizeof(path), "%s/throughput.dat", opt.plot);
	d = fopen(path, "w");
	if (!d) {
		perror(path);
		return;
	}
	for (int i = 0; i < nrows; i++)
		if (!strncmp(rows[i].table, "Throughput", 10) &&
		    !rows[i].failed)
			fprintf(d, "\"%s\" %d %.4f\n", rows[i].sys,
				atoi(rows[i].param), rows[i].v[0]);
	fclose(d);
	snprintf(path, sizeof(path), "%s/latency.dat", opt.plot);
	d = fopen(path, "w");
	for (int i = 0; d && i < nrows; i++)
		if (rows[i].nv == 5 && !rows[i].failed &&
		    atoi(rows[i].param) == 8)
			fprintf(d, "\"%s\" %.0f %.0f %.0f %.0f\n", rows[i].sys,
				rows[i].v[0], rows[i].v[1], rows[i].v[2],
				rows[i].v[3]);
	if (d)
		fclose(d);
	g = popen(GNUPLOT_PATH, "w");
	if (!g)
		return;
	fprintf(g,
		"set terminal png size 900,600\nset datafile separator ' '\n"
		"set output '%s/throughput.png'\nset logscale xy\n"
		"set xlabel 'message size (B)'\nset ylabel 'Mmsg/s'\n"
		"set title 'lfipc-bench: throughput 1x1 by message size'\n"
		"plot for [s in system(\"cut -d'\\\"' -f2 %s/throughput.dat | "
		"sort -u | tr ' ' '_'\")] '%s/throughput.dat' using "
		"(strcol(1) eq s ? $2 : NaN):3 with linespoints title s\n"
		"unset logscale x\nset output '%s/latency.png'\n"
		"set style data histograms\nset style fill solid\n"
		"set ylabel 'ns (8 B round trip)'\nset xtics rotate by -30\n"
		"set title 'lfipc-bench: round-trip percentiles'\n"
		"plot '%s/latency.dat' using 2:xtic(1) title 'p50', '' using 3 "
		"title 'p90', '' using 4 title 'p99', '' using 5 title "
		"'p99.9'\n",
		opt.plot, opt.plot, opt.plot, opt.plot, opt.plot);
	pclose(g);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: lfipc-bench [--quick|--full|--tiny] [--reps N] "
		"[--format table|csv|json]\n"
		"                   [--pc PxC]... (default 1x1 and 2x2)"
		"\n"
		"                   [--plot DIR] [--no-pin]\n");
}

int main(int argc, char **argv)
{
	static const size_t sizes_def[] = { 8, 64, 256, 4096 };
	static const size_t sizes_tiny[] = { 64 };
	static const size_t sizes_quick[] = { 8, 256 };
	const size_t *sizes = sizes_def;
	int nsz = 4;

	ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			opt.reps = 3;
			opt.rtt_n = 2000;
			opt.tp_n = 20000;
			opt.lock_n = 20000;
			sizes = sizes_quick;
			nsz = 2;
		} else if (!strcmp(argv[i], "--full")) {
			opt.reps = 7;
			opt.rtt_n = 1000000;
			opt.tp_n = 2000000;
			opt.lock_n = 2000000;
		} else if (!strcmp(argv[i], "--tiny")) {
			opt.tiny = true;
			opt.reps = 2;
			opt.rtt_n = 200;
			opt.tp_n = 1000;
			opt.lock_n = 1000;
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
		} else if (!strcmp(argv[i], "--no-pin")) {
			opt.pin = false;
		} else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
			opt.reps = atoi(argv[++i]);
			if (opt.reps < 1 || opt.reps > 64)
				opt.reps = 5;
		} else if (!strcmp(argv[i], "--format") && i + 1 < argc) {
			i++;
			opt.fmt = !strcmp(argv[i], "csv")	 ? 1
				  : !strcmp(argv[i], "json") ? 2
							     : 0;
		} else if (!strcmp(argv[i], "--plot") && i + 1 < argc) {
			opt.plot = argv[++i];
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
	sy = shmem(4096);
	header();
	fflush(stdout);
	scen_pingpong(sizes, nsz);
	scen_throughput(sizes, nsz);
	scen_bulk(sizes, nsz);
	mp = shmem(4096);
	for (int i = 0; i < npc; i++)
		scen_mpmc(sizes, nsz, pcs[i][0], pcs[i][1],
			  "Queue throughput, P producer x C consumer processes");
	scen_mpmc(sizes, 1, 2 * ncpu, 2 * ncpu,
		  "Oversubscribed: producers and consumers > cores");
	scen_clear();
	scen_locks();
	if (isatty(2))
		fprintf(stderr, "\r\033[K");
	print_results();
#ifndef HAVE_CK
	if (opt.fmt == 0)
		printf("note: Concurrency Kit not found at configure time; "
		       "ck_ring skipped\n");
#endif
	if (opt.plot)
		plot();
	for (int i = 0; i < nrows; i++)
		if (rows[i].failed)
			return 1;
	return 0;
}
