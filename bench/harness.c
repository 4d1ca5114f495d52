/* SPDX-License-Identifier: MIT */
/*
 * lfipc-bench harness: clocks, pinning, shared memory, sequence numbers,
 * and the workers (processes made by fork(), or threads for in-process
 * peers) with their start line and failure signalling.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

int ncpu;
struct sync *sy;
sigjmp_buf fail_jb;
volatile sig_atomic_t fail_armed;

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void pin(int cpu)
{
	cpu_set_t s;

	if (!opt.pin || ncpu < 2)
		return;
	CPU_ZERO(&s);
	CPU_SET(cpu % ncpu, &s);
	sched_setaffinity(0, sizeof(s), &s);
}

void *shmem(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("lfipc-bench: mmap");
		exit(2);
	}
	return p;
}

void shmem_free(void *p, size_t n)
{
	munmap(p, n);
}

bool aborted(void)
{
	return atomic_load(&sy->abort) != 0;
}

/* Busy loops must look: under ThreadSanitizer a signal arrives at a call. */
bool bench_spin(void)
{
	relax();
	return aborted();
}

long futex_op(atomic_uint *w, int op, unsigned v, const struct timespec *t)
{
	return syscall(SYS_futex, w, op, v, t, NULL, 0);
}

void spin_ns(uint64_t ns)
{
	uint64_t end = now_ns() + ns;

	while (now_ns() < end)
		relax();
}

void progress(const char *what, const char *sys, const char *param)
{
	if (isatty(2))
		fprintf(stderr, "\r\033[K[lfipc-bench] %s: %s %s", what, sys,
			param);
}

/* Is part the exact name of a peer? */
static bool peer_name(const char *part)
{
	for (int k = 0; k < bench_npeers; k++)
		if (!strcmp(bench_peers[k]->name, part))
			return true;
	return false;
}

/*
 * Is name selected by --peers: one of its comma-separated parts is the
 * name, or is in the name and is no peer's exact name?
 */
static bool peer_selected(const char *name)
{
	char part[64];

	if (!opt.peers)
		return true;
	for (const char *s = opt.peers; *s;) {
		size_t l = strcspn(s, ",");

		snprintf(part, sizeof(part), "%.*s", (int)l, s);
		if (l && (!strcmp(name, part) ||
			  (strstr(name, part) && !peer_name(part))))
			return true;
		s += l + (s[l] == ',');
	}
	return false;
}

bool peer_is(const struct peer *p, unsigned all, unsigned none)
{
	return !p->missing && (p->flags & all) == all && !(p->flags & none) &&
	       peer_selected(p->name);
}

/* ---- sequence numbers ---------------------------------------------------- */

void fill(char *b, size_t n, uint64_t seq)
{
	memcpy(b, &seq, 8);
	if (n >= 16)
		memcpy(b + n - 8, &seq, 8);
}

void fill_tx(char *b, size_t n, uint64_t seq)
{
	fill(b, n, seq);
	if (opt.corrupt >= 0 && (seq & SEQ_MASK) == (uint64_t)opt.corrupt) {
		uint64_t bad = seq ^ 0x5a5a5a5aull;

		memcpy(b, &bad, 8);
	}
}

bool check(const char *b, size_t n, uint64_t seq)
{
	uint64_t a, z = seq;

	memcpy(&a, b, 8);
	if (n >= 16)
		memcpy(&z, b + n - 8, 8);
	return a == seq && z == seq;
}

/* ---- workers ------------------------------------------------------------- */

/* Time runnable but waiting for a CPU (ns), from the kernel's schedstat. */
static uint64_t run_delay(int fd)
{
	char b[96];
	unsigned long long run = 0, wait = 0;
	ssize_t n = fd < 0 ? -1 : pread(fd, b, sizeof(b) - 1, 0);

	if (n <= 0)
		return 0;
	b[n] = 0;
	return sscanf(b, "%llu %llu", &run, &wait) == 2 ? wait : 0;
}

static long sleeps_now(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_THREAD, &ru) ? 0 : ru.ru_nvcsw;
}

void wait_start(struct wclock *w)
{
	w->nvcsw = sleeps_now();
	w->fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
	/* the clock first: a wait counted in rd must lie inside the window */
	w->t = now_ns();
	w->rd = run_delay(w->fd);
}

void wait_end(struct wclock *w)
{
	uint64_t rd = run_delay(w->fd), t = now_ns();
	unsigned pm, e;

	atomic_fetch_add(&sy->sleeps, (uint64_t)(sleeps_now() - w->nvcsw));
	if (w->fd < 0)
		return;
	close(w->fd);
	w->fd = -1;
	if (t <= w->t || rd < w->rd)
		return;
	pm = (unsigned)((rd - w->rd) * 1000 / (t - w->t));
	if (pm > 1000)
		pm = 1000;
	e = atomic_load(&sy->waited);
	while (pm > e && !atomic_compare_exchange_weak(&sy->waited, &e, pm))
		;
}

void reset_sync(void)
{
	atomic_store(&sy->ready, 0);
	atomic_store(&sy->go, 0);
	atomic_store(&sy->abort, 0);
	atomic_store(&sy->t_start, 0);
	atomic_store(&sy->t_end, 0);
	atomic_store(&sy->waited, 0);
	atomic_store(&sy->sleeps, 0);
}

void set_deadline(double sec)
{
	struct itimerval it = {{0, 0}, {0, 0}};

	it.it_value.tv_sec = (time_t)sec;
	it.it_value.tv_usec = (suseconds_t)((sec - (double)(time_t)sec) * 1e6);
	setitimer(ITIMER_REAL, &it, NULL);
}

static void *job_thread(void *a)
{
	struct job *j = a;

	j->rc = j->fn(j);
	if (j->rc)
		atomic_store(&sy->abort, 1);
	return NULL;
}

int spawn(struct job *j)
{
	sigset_t sigs, old;

	/* the run's SIGUSR1/SIGALRM jump belongs to the main thread */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGALRM);
	if (j->thr) {
		int rc;

		pthread_sigmask(SIG_BLOCK, &sigs, &old);
		rc = pthread_create(&j->th, NULL, job_thread, j);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return rc ? -1 : 0;
	}
	/*
	 * No jump out of fork(): the library's fork handlers take a lock, and
	 * the run must know the child's pid before it can be stopped.
	 */
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

int reap(pid_t pid)
{
	int st;
	pid_t w;

	while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	if (w != pid)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

int reap_deadline(pid_t pid, int ms)
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

int join(struct job *j)
{
	if (j->thr) {
		pthread_join(j->th, NULL);
		return j->rc;
	}
	return reap(j->pid);
}

void stop(struct job *j)
{
	atomic_store(&sy->abort, 1);
	if (!j->thr && j->pid > 0)
		kill(j->pid, SIGKILL);
}

void start_child(int cpu)
{
	unsigned i = 0;

	pin(cpu);
	atomic_fetch_add(&sy->ready, 1);
	while (!atomic_load(&sy->go))
		if (++i % 256 == 0)
			sched_yield(); /* more workers than cores */
		else
			relax();
}

void start_parent(int nchild)
{
	while (atomic_load(&sy->ready) < nchild && !aborted())
		sched_yield();
	atomic_store(&sy->go, 1);
}

void note_start(void)
{
	uint64_t t = now_ns(), e = atomic_load(&sy->t_start);

	while ((e == 0 || t < e) &&
	       !atomic_compare_exchange_weak(&sy->t_start, &e, t))
		;
}

void note_end(void)
{
	uint64_t t = now_ns(), e = atomic_load(&sy->t_end);

	while (t > e && !atomic_compare_exchange_weak(&sy->t_end, &e, t))
		;
}
