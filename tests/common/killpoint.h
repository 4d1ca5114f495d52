/* SPDX-License-Identifier: MIT */
/*
 * killpoint.h - the ptrace stepping harness of the kill-point tests
 * (tests/crash/test_*_killpoint.c).
 *
 * A victim is a fork child traced by its parent (PTRACE_TRACEME), which
 * raises SIGSTOP right before the call under test and again right after
 * it. The parent single-steps it k instructions from the first stop and
 * then SIGKILLs it (or stops it for good), for every stride-th k from 0
 * to the call's length, each k on a fresh object. A victim whose call
 * sleeps in the kernel does not come back from a step: kpt_step() says
 * so (KPT_ASLEEP) instead of waiting for it. A call into the vDSO
 * (clock_gettime) is stepped over, not through, and counts as one step:
 * the vDSO holds none of the library's state, so a kill point inside it
 * is one at its call, and single-stepping its clock read can loop for
 * ever on a kvm-clock guest (x86-64; killpoint.c says how).
 */
#ifndef LFIPC_TEST_KILLPOINT_H
#define LFIPC_TEST_KILLPOINT_H

#include <stdbool.h>
#include <sys/types.h>

/* The default stride: every second instruction; under ASan (whose
 * instrumentation makes a call several times longer, every step a
 * ptrace round trip) every 16th. */
#if defined(__SANITIZE_ADDRESS__)
#define KPT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KPT_ASAN 1
#endif
#endif
#ifdef KPT_ASAN
#define KPT_STRIDE 16
#else
#define KPT_STRIDE 2
#endif

/* kpt_step() results besides a count of steps. */
#define KPT_ENDED (-1)	/* the victim reached its next SIGSTOP before k */
#define KPT_ERROR (-2)	/* ptrace refused the step */
#define KPT_ASLEEP (-3) /* the victim sleeps in a system call */
#define KPT_LONG (-4)	/* k < 0 and no SIGSTOP within KPT_MAX_STEPS */

/* A call measured (k < 0) longer than this is taken for one that loops
 * under single-stepping: clock_gettime in the vDSO on a kvm-clock guest
 * did (review 23, rev23-F2) until kpt_step() stepped over the vDSO; kept
 * as a bound. */
#define KPT_MAX_STEPS 2000000L

/* LFIPC_KILLPOINT_STRIDE, else KPT_STRIDE; at least 1. */
long kpt_stride(void);

/* Can this process trace a child (a test skips where it cannot)? */
bool kpt_ptrace_works(void);

/* Fork a victim: the child calls PTRACE_TRACEME, then fn(arg), then
 * _exit(0). The parent waits for the child's first stop (fn must raise
 * SIGSTOP before its call) and returns its pid. */
pid_t kpt_fork(void (*fn)(void *), void *arg);

/*
 * Single-step victim p (stopped) up to k instructions (k < 0: until its
 * next SIGSTOP). Returns the steps made when k was reached (or, k < 0,
 * when the victim raised SIGSTOP); KPT_ENDED when it raised SIGSTOP
 * before k; KPT_ERROR; KPT_LONG; KPT_ASLEEP when one step did not come
 * back within asleep_ms (the victim sleeps in the kernel: it is left in
 * that step; *made, when not NULL, gets the steps made before it). A
 * victim that dies while stepped fails the test. A step into the vDSO
 * runs (PTRACE_CONT) to the vDSO function's return and counts as one;
 * signals that stop the victim meanwhile are suppressed, as those that
 * stop a step are.
 */
long kpt_step(pid_t p, long k, int asleep_ms, long *made);

/* Wait up to ms for victim p, running or asleep in a step, to stop;
 * true when it did (by a signal: its status goes to *sig). A step that
 * was asleep ends as kpt_step() ends it: out of the vDSO (when it was a
 * call into it, the run over it follows here; false while that runs). */
bool kpt_wait_stop(pid_t p, int ms, int *sig);

/* Is victim p asleep in a run over the vDSO (an int3 of the harness in
 * it)? */
bool kpt_in_vdso_run(pid_t p);

/* Let go of victim p (stopped, or asleep in a step), stopped for real
 * (SIGSTOP, state T), with no int3 of the harness left in it. */
void kpt_detach(pid_t p);

/* The calls into the vDSO stepped over so far, by this process. */
long kpt_vdso_calls(void);

/* SIGKILL victim p and reap it; fails the test unless SIGKILL ended it. */
void kpt_kill(pid_t p);

#endif
