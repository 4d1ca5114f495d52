/* SPDX-License-Identifier: MIT */
/* killpoint.c - the ptrace stepping harness (killpoint.h). */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "killpoint.h"
#include "testhelp.h"

/* The [vdso] mapping of one victim (fork children share the parent's
 * layout, but read the child's own). */
static pid_t vd_pid = -1;
static uintptr_t vd_lo, vd_hi;

/* The int3 in place: victim, address, the word it replaced, and the
 * stack pointer the return leaves. */
static pid_t bp_pid = -1;
static uintptr_t bp_at, bp_sp;
static long bp_word;

/* The last step made (kpt_step()): of st_pid, from outside the vDSO? */
static pid_t st_pid = -1;
static bool st_out;

static long vd_calls; /* calls stepped over so far (kpt_vdso_calls()) */

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
	if (vd_pid == p) /* a pid used again */
		vd_pid = -1;
	if (bp_pid == p)
		bp_pid = -1;
	if (st_pid == p)
		st_pid = -1;
	cr_assert_eq(waitpid(p, &st, 0), p);
	cr_assert(WIFSTOPPED(st), "the victim stops before its call");
	return p;
}

/* ---- the vDSO ----------------------------------------------------------
 *
 * Single-stepping clock_gettime() inside the vDSO can loop for ever on a
 * kvm-clock guest (the pvclock read retries while its version moves,
 * review 23, rev23-F2), and makes every wait that reads the clock slow.
 * The vDSO holds no state of the library's: a kill point inside it is the
 * same, for the library, as one at the call instruction. So a step that
 * lands in the victim's [vdso] mapping (/proc/<pid>/maps) from outside
 * it (a call, or a tail jump: either way [rsp] then holds the address the
 * vDSO function returns to) is followed by a run to that address: an int3
 * poked there (PTRACE_POKETEXT), PTRACE_CONT, the trap, the byte restored
 * and rip moved back onto it. The call counts as one step. A stop other
 * than the trap while it runs (a signal) is suppressed, as the stepping
 * below suppresses signals, and it runs on; one that does not reach the
 * trap within the step's asleep_ms is asleep (KPT_ASLEEP): the int3 stays
 * until the victim comes to it (kpt_wait_stop() then restores it) or is
 * detached (kpt_detach()) or killed. A step into the vDSO that was itself
 * asleep is run over when kpt_wait_stop() sees it end there. Mid-function
 * (a victim found inside the vDSO with no return address known, which
 * these victims never are: they stop only at their raise() and at steps)
 * it is stepped through as before, bounded by KPT_MAX_STEPS. The int3 is
 * poked into the victim's private copy of the page (copy on write).
 */

long kpt_vdso_calls(void)
{
	return vd_calls;
}

static void vd_find(pid_t p)
{
	char path[64], line[256];
	FILE *f;

	if (vd_pid == p)
		return;
	vd_pid = p;
	vd_lo = vd_hi = 0;
	snprintf(path, sizeof path, "/proc/%d/maps", (int)p);
	f = fopen(path, "r");
	cr_assert(f, "%s", path);
	while (fgets(line, sizeof line, f)) {
		uintmax_t lo, hi;

		if (strstr(line, "[vdso]") &&
		    sscanf(line, "%jx-%jx", &lo, &hi) == 2) {
			vd_lo = (uintptr_t)lo;
			vd_hi = (uintptr_t)hi;
			break;
		}
	}
	fclose(f);
}

static uintptr_t reg(pid_t p, size_t off)
{
	long v;

	errno = 0;
	v = ptrace(PTRACE_PEEKUSER, p, (void *)off, 0);
	cr_assert_eq(errno, 0, "PTRACE_PEEKUSER");
	return (uintptr_t)v;
}

#if defined(__x86_64__)
#define KPT_RIP offsetof(struct user_regs_struct, rip)
#define KPT_RSP offsetof(struct user_regs_struct, rsp)
#define KPT_VDSO 1
#else /* elsewhere the vDSO is stepped through, as before */
#define KPT_RIP 0
#define KPT_RSP 0
#define KPT_VDSO 0
#endif

static bool in_vdso(pid_t p, uintptr_t pc)
{
	if (!KPT_VDSO)
		return false;
	vd_find(p);
	return pc >= vd_lo && pc < vd_hi;
}

/* Take the int3 out of stopped victim p; with at_trap (p stopped by it),
 * also move rip back onto the restored instruction. */
static void bp_remove(pid_t p, bool at_trap)
{
	if (bp_pid != p)
		return;
	cr_assert_eq(ptrace(PTRACE_POKETEXT, p, (void *)bp_at, bp_word), 0,
		     "restore the byte under the int3");
	if (at_trap)
		cr_assert_eq(ptrace(PTRACE_POKEUSER, p, (void *)KPT_RIP, bp_at),
			     0, "rip back onto it");
	bp_pid = -1;
}

/* p stopped with SIGTRAP: is it our int3 (restored then: the call is
 * over)? */
static bool bp_hit(pid_t p)
{
	if (bp_pid != p || reg(p, KPT_RIP) != bp_at + 1)
		return false;
	cr_assert_eq(reg(p, KPT_RSP), bp_sp,
		     "the vDSO function returned, not a deeper call");
	bp_remove(p, true);
	vd_calls++;
	return true;
}

bool kpt_in_vdso_run(pid_t p)
{
	return bp_pid == p;
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
static bool wait_stop(pid_t p, int ms, int *sig)
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

/* Run stopped victim p to the int3 in place (bp_*), within ms a stop.
 * 1 there; KPT_ASLEEP; KPT_ERROR. */
static long vd_run(pid_t p, int ms)
{
	int sig;

	for (int n = 0;; n++) {
		cr_assert_lt(n, 1000, "the victim keeps stopping in the vDSO");
		if (ptrace(PTRACE_CONT, p, 0, 0) != 0)
			return KPT_ERROR;
		if (!wait_stop(p, ms, &sig))
			return KPT_ASLEEP;
		if (sig == SIGTRAP && bp_hit(p))
			return 1;
		/* a signal: suppressed (as a step suppresses it), run on */
	}
}

/* Victim p has just stepped into the vDSO from outside: run it to the
 * address at [rsp] (the vDSO function's return). 1 done; 0 no return
 * address to run to (stepped through instead); KPT_ASLEEP; KPT_ERROR. */
static long vd_over(pid_t p, int ms)
{
	uintptr_t sp = reg(p, KPT_RSP), ret;
	long w;

	errno = 0;
	ret = (uintptr_t)ptrace(PTRACE_PEEKDATA, p, (void *)sp, 0);
	if (errno || in_vdso(p, ret))
		return 0;
	w = ptrace(PTRACE_PEEKTEXT, p, (void *)ret, 0);
	if (errno)
		return 0;
	cr_assert_eq(
	    ptrace(PTRACE_POKETEXT, p, (void *)ret, (w & ~0xffL) | 0xcc), 0,
	    "an int3 at the vDSO call's return");
	bp_pid = p;
	bp_at = ret;
	bp_sp = sp + 8;
	bp_word = w;
	return vd_run(p, ms);
}

static int ms_left(int64_t end)
{
	int64_t left = (end - th_now_ns()) / 1000000;

	return left > 0 ? (int)left : 0;
}

/* A step left asleep (KPT_ASLEEP) ends here: when it entered the vDSO,
 * with the run over it; when it was that run, at the int3. */
bool kpt_wait_stop(pid_t p, int ms, int *sig)
{
	int64_t end = th_now_ns() + (int64_t)ms * 1000000;
	long r = 1;
	int s;

	if (!wait_stop(p, ms, &s))
		return false;
	if (bp_pid == p) { /* asleep in a run over the vDSO */
		if (!(s == SIGTRAP && bp_hit(p)))
			r = vd_run(p, ms_left(end)); /* a signal: run on */
		s = SIGTRAP;
	} else if (s == SIGTRAP && st_pid == p && st_out &&
		   in_vdso(p, reg(p, KPT_RIP))) {
		r = vd_over(p, ms_left(end)); /* the step was a call */
	}
	if (r == KPT_ASLEEP)
		return false;
	cr_assert_geq(r, 0, "a run over the vDSO: %ld", r);
	if (sig)
		*sig = s;
	return true;
}

long kpt_step(pid_t p, long k, int asleep_ms, long *made)
{
	bool was_in;
	long n = 0, r;
	int sig;

	/* left asleep in a run over the vDSO, since stopped by a signal:
	 * the rest of that step */
	if (bp_pid == p) {
		r = vd_run(p, asleep_ms);
		if (r != 1) {
			if (made)
				*made = 0;
			return r;
		}
	}
	was_in = KPT_VDSO && in_vdso(p, reg(p, KPT_RIP));
	for (;;) {
		if (k >= 0 && n >= k)
			return n;
		if (k < 0 && n >= KPT_MAX_STEPS)
			return KPT_LONG;
		st_pid = p;
		st_out = !was_in;
		if (ptrace(PTRACE_SINGLESTEP, p, 0, 0) != 0)
			return KPT_ERROR;
		if (!wait_stop(p, asleep_ms, &sig)) {
			if (made)
				*made = n;
			return KPT_ASLEEP;
		}
		if (sig == SIGSTOP)
			return k < 0 ? n : KPT_ENDED;
		n++;
		if (!KPT_VDSO || !in_vdso(p, reg(p, KPT_RIP))) {
			was_in = false;
			continue;
		}
		if (!was_in) { /* in from outside: this step is the call */
			r = vd_over(p, asleep_ms);
			if (r == KPT_ASLEEP && made)
				*made = n - 1;
			if (r < 0)
				return r;
			was_in = r == 0;
		}
	}
}

void kpt_detach(pid_t p)
{
	int sig = 0;

	if (bp_pid != p && ptrace(PTRACE_DETACH, p, 0, SIGSTOP) == 0)
		return;
	/* asleep in a step or a run over the vDSO: stop it there first (a
	 * stop it has made already, reported or not yet, will do) */
	if (!look(p, &sig)) {
		errno = 0;
		ptrace(PTRACE_PEEKUSER, p, (void *)KPT_RIP, 0);
		if (errno) {
			kill(p, SIGSTOP);
			cr_assert(wait_stop(p, 2000, &sig), "the victim stops");
		}
	}
	/* at the int3 (rip past it), or short of it */
	if (!bp_hit(p))
		bp_remove(p, false);
	cr_assert_eq(ptrace(PTRACE_DETACH, p, 0, SIGSTOP), 0, "detach");
}

void kpt_kill(pid_t p)
{
	if (bp_pid == p)
		bp_pid = -1; /* its memory goes with it */
	kill(p, SIGKILL);
	cr_assert_eq(th_reap(p, 10000), 128 + SIGKILL, "the victim is reaped");
}
