/* SPDX-License-Identifier: MIT */
/* killpoint.c - the ptrace stepping harness (killpoint.h). */
#include "config.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "killpoint.h"
#include "testhelp.h"

long kpt_stride(void)
{
	const char *e = getenv("LFIPC_KILLPOINT_STRIDE");
	long s = e ? atol(e) : KPT_STRIDE;

	return s < 1 ? 1 : s;
}

bool kpt_ptrace_works(void)
{
	int st;
	pid_t p = fork();

	cr_assert_geq(p, 0);
	if (p == 0) {
		if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0)
			_exit(1);
		_exit(0);
	}
	cr_assert_eq(waitpid(p, &st, 0), p);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

pid_t kpt_fork(void (*fn)(void *), void *arg)
{
	int st;
	pid_t p = fork();

	cr_assert_geq(p, 0);
	if (p == 0) {
		ptrace(PTRACE_TRACEME, 0, 0, 0);
		fn(arg);
		_exit(0);
	}
	cr_assert_eq(waitpid(p, &st, 0), p);
	cr_assert(WIFSTOPPED(st), "the victim stops before its call");
	return p;
}

/* One look at p: 1 stopped (*sig), 0 not yet. */
static int look(pid_t p, int *sig)
{
	int st;
	pid_t w = waitpid(p, &st, WNOHANG);

	cr_assert_geq(w, 0, "waitpid");
	if (w != p)
		return 0;
	cr_assert(WIFSTOPPED(st), "the victim lives (status %#x)", st);
	if (sig)
		*sig = WSTOPSIG(st);
	return 1;
}

/* A stop is reported to the tracer with SIGCHLD: wait for that signal
 * (blocked meanwhile) rather than poll, so that a step costs one round
 * trip. */
bool kpt_wait_stop(pid_t p, int ms, int *sig)
{
	int64_t end = th_now_ns() + (int64_t)ms * 1000000;
	sigset_t chld, old;
	int r = 0;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &chld, &old);
	for (;;) {
		int64_t left = end - th_now_ns();
		struct timespec ts;

		r = look(p, sig);
		if (r || left <= 0)
			break;
		ts.tv_sec = left / 1000000000;
		ts.tv_nsec = left % 1000000000;
		sigtimedwait(&chld, NULL, &ts);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r == 1;
}

long kpt_step(pid_t p, long k, int asleep_ms, long *made)
{
	long n = 0;
	int sig;

	for (;;) {
		if (k >= 0 && n >= k)
			return n;
		if (k < 0 && n >= KPT_MAX_STEPS)
			return KPT_LONG;
		if (ptrace(PTRACE_SINGLESTEP, p, 0, 0) != 0)
			return KPT_ERROR;
		if (!kpt_wait_stop(p, asleep_ms, &sig)) {
			if (made)
				*made = n;
			return KPT_ASLEEP;
		}
		if (sig == SIGSTOP)
			return k < 0 ? n : KPT_ENDED;
		n++;
	}
}

void kpt_kill(pid_t p)
{
	kill(p, SIGKILL);
	cr_assert_eq(th_reap(p, 10000), 128 + SIGKILL, "the victim is reaped");
}
