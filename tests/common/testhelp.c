/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/testhelp.h"

void th_name(char *buf, size_t n, const char *tag)
{
	static _Atomic unsigned counter;

	snprintf(buf, n, "/lfipc-t-%d-%u-%s", (int)getpid(),
		 atomic_fetch_add(&counter, 1), tag ? tag : "r");
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

int th_reap(pid_t pid, int timeout_ms)
{
	int64_t end = th_now_ns() + (int64_t)timeout_ms * 1000000;
	int st;

	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);

		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			return -2;
		if (th_now_ns() >= end) {
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
