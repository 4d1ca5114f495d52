/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/testhelp.h"

void th_name(char *buf, size_t n, const char *tag)
{
	static _Atomic unsigned counter;
	const char *run = getenv("LFIPC_TEST_RUN");

	/* tests/run-all sets LFIPC_TEST_RUN so that it checks for leftovers
	 * of its own run only, not of another run on the same machine. */
	snprintf(buf, n, "/lfipc-t-%s%s%d-%u-%s", run ? run : "",
		 run ? "-" : "", (int)getpid(), atomic_fetch_add(&counter, 1),
		 tag ? tag : "r");
}

int th_scale(void)
{
	const char *s = getenv("LFIPC_STRESS_SCALE");
	int v = s ? atoi(s) : 1;

	return v < 1 ? 1 : v;
}

pid_t th_fork(int (*fn)(void *arg), void *arg)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn(arg) & 0xff);
	return pid;
}

int64_t th_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Read a small /proc/<pid>/<what> file into buf (NUL-terminated, the
 * newlines but the last turned into " | "); "" when it cannot. */
static void proc_read(pid_t pid, const char *what, char *buf, size_t n)
{
	char path[64];
	FILE *f;
	size_t len;

	buf[0] = 0;
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
	f = fopen(path, "r");
	if (!f)
		return;
	len = fread(buf, 1, n - 1, f);
	fclose(f);
	buf[len] = 0;
	while (len > 0 && buf[len - 1] == '\n')
		buf[--len] = 0;
	for (char *c = buf; *c; c++)
		if (*c == '\n')
			*c = ';';
}

void th_proc_state(pid_t pid, char *buf, size_t n)
{
	char stat[512], sched[128], wchan[128], sys[256];
	const char *st = "";
	long long run_ns = -1, wait_ns = -1;

	proc_read(pid, "stat", stat, sizeof(stat));
	proc_read(pid, "schedstat", sched, sizeof(sched));
	proc_read(pid, "wchan", wchan, sizeof(wchan));
	proc_read(pid, "syscall", sys, sizeof(sys));
	if (strrchr(stat, ')'))
		st = strrchr(stat, ')') + 2; /* "S ppid ..." */
	if (sscanf(sched, "%lld %lld", &run_ns, &wait_ns) != 2)
		run_ns = wait_ns = -1;
	snprintf(buf, n,
		 "state %.1s, ran %lld us, waited for a CPU %lld us, wchan "
		 "%s, syscall %s",
		 st, run_ns / 1000, wait_ns / 1000, wchan[0] ? wchan : "?",
		 sys[0] ? sys : "?");
}

/*
 * Say on stderr where a child that outlived its deadline is, before it is
 * killed, so that a failure seen once in CI tells a hang from a crawl
 * (th_proc_state), and, when readable, its kernel stack.
 */
static void reap_report(pid_t pid, int timeout_ms)
{
	char state[600], stack[1024];

	th_proc_state(pid, state, sizeof(state));
	proc_read(pid, "stack", stack, sizeof(stack));
	fprintf(stderr, "th_reap: pid %d still there after %d ms: %s, stack %s\n",
		(int)pid, timeout_ms, state, stack[0] ? stack : "?");
}

/* The time pid's main thread has spent runnable but waiting for a CPU
 * (the second field of /proc/<pid>/schedstat, which counts a cgroup's
 * throttled time too), in ns; -1 when it cannot be read. */
static long long run_delay_ns(pid_t pid)
{
	char buf[128];
	long long run, delay;

	proc_read(pid, "schedstat", buf, sizeof(buf));
	return sscanf(buf, "%lld %lld", &run, &delay) == 2 ? delay : -1;
}

/* th_reap and th_reap_run: starved_ok says whether the time the child
 * waited for a CPU is left out of timeout_ms (up to 20 x timeout_ms). */
static int reap(pid_t pid, int timeout_ms, bool starved_ok)
{
	int64_t start = th_now_ns(), budget = (int64_t)timeout_ms * 1000000;
	long long d0 = starved_ok ? run_delay_ns(pid) : -1;
	int st;

	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		int64_t used = th_now_ns() - start;

		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			return -2;
		if (used >= budget && d0 >= 0 && used < 20 * budget) {
			long long d = run_delay_ns(pid);

			if (d >= d0)
				used -= d - d0;
		}
		if (used >= budget) {
			reap_report(pid, timeout_ms);
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		usleep(1000);
	}
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -2;
}

int th_reap(pid_t pid, int timeout_ms)
{
	return reap(pid, timeout_ms, false);
}

int th_reap_run(pid_t pid, int timeout_ms)
{
	return reap(pid, timeout_ms, true);
}

int th_reap_all(const pid_t *pids, int n, int timeout_ms)
{
	int64_t end = th_now_ns() + (int64_t)timeout_ms * 1000000;
	int bad = 0;

	for (int i = 0; i < n; i++) {
		int64_t left = (end - th_now_ns()) / 1000000;

		if (th_reap(pids[i], left > 0 ? (int)left : 0) != 0)
			bad++;
	}
	return bad;
}

uint64_t th_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

uint64_t th_sum(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ull;

	while (n--) {
		h ^= *b++;
		h *= 0x100000001b3ull;
	}
	return h;
}

int th_send_fd(int sock, int fd)
{
	char byte = 'F';
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {0};
	struct cmsghdr *c;

	memset(&u, 0, sizeof(u));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof(u.buf);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	while (sendmsg(sock, &msg, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

int th_recv_fd(int sock)
{
	char byte;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {0};
	struct cmsghdr *c;
	ssize_t n;
	int fd;

	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof(u.buf);
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -EPIPE;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
		return -EPROTO;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

char *th_helper_path(char *buf, size_t n, const char *prog)
{
	char exe[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (len < 0)
		len = 0;
	exe[len] = '\0';
	slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	/* libtool may run the real binary from .libs/ */
	if (slash && strlen(exe) >= 6 &&
	    strcmp(exe + strlen(exe) - 6, "/.libs") == 0)
		exe[strlen(exe) - 6] = '\0';
	snprintf(buf, n, "%s/%s", slash ? exe : ".", prog);
	return buf;
}

static uint8_t pattern_byte(uint64_t seed, size_t i)
{
	uint64_t x = seed ^ ((uint64_t)(i / 8) * 0x9e3779b97f4a7c15ull);

	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 32;
	return (uint8_t)(x >> ((i & 7) * 8));
}

void th_fill(void *p, size_t n, uint64_t seed)
{
	uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		b[i] = pattern_byte(seed, i);
}

long th_check(const void *p, size_t n, uint64_t seed)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != pattern_byte(seed, i))
			return (long)i;
	return -1;
}

int th_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int th_read_all(int fd, void *p, size_t n)
{
	char *c = p;

	while (n > 0) {
		ssize_t r = read(fd, c, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

/*
 * Criterion under ThreadSanitizer (Criterion issue #274): BoxFort maps its
 * inheritable arena at an address it draws with rand_r() from
 * [0x2000'0000'0000, 0x6000'0000'0000) and gives up after a few tries if
 * the address is taken. ThreadSanitizer reserves almost all of that range
 * (shadow, meta, protected gaps), so every Criterion binary aborts with
 * "Could not initialize inheritable arena". In TSan builds the test
 * programs (which all link this file) interpose rand_r() so the draw falls
 * in [0x5600'0000'0000, 0x5680'0000'0000): application memory for TSan,
 * unused by PIE binaries. Nothing else in the tests uses rand_r().
 */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TH_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define TH_TSAN 1
#endif
bool th_tsan(void)
{
#ifdef TH_TSAN
	return true;
#else
	return false;
#endif
}

#ifdef TH_TSAN
int rand_r(unsigned int *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return (int)(0x360000u + ((*seed >> 8) & 0x7fffu));
}
#endif

/*
 * LeakSanitizer: Criterion 2.4 leaks one small allocation of its own in the
 * runner process; that is not ours to fix, so the test programs (which all
 * link this file) suppress leaks whose stack is inside libcriterion.
 */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TH_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define TH_ASAN 1
#endif
#ifdef TH_ASAN
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libcriterion.so\n";
}
#endif
