/* SPDX-License-Identifier: MIT */
/*
 * internal/futex.h - the only door to futex(2), and the time helpers.
 *
 * Every futex here is process-shared: FUTEX_PRIVATE_FLAG is never used, so a
 * word in a MAP_SHARED region is matched across processes even when they map
 * it at different addresses. Waits take an absolute CLOCK_MONOTONIC deadline
 * (FUTEX_WAIT_BITSET), so a wait restarted after EINTR or a spurious wake-up
 * keeps its deadline. Callers always re-check their condition in a loop: a
 * return of 0 means "look again", never "the condition holds".
 *
 * The futex word is only a sleep/wake hint; ordering between threads comes
 * from C11 atomics on the words themselves (ThreadSanitizer does not model
 * futex(2)).
 */
#ifndef LFIPC_INTERNAL_FUTEX_H
#define LFIPC_INTERNAL_FUTEX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Absolute CLOCK_MONOTONIC time in nanoseconds; LFIPC_DL_NEVER = no limit.
 * Values <= 0 are in the past (internal/wait.h gives two of them a meaning:
 * LFIPC_DL_NOW for LFIPC_NOWAIT, LFIPC_DL_PAST for an expired timeout). API
 * timeouts become deadlines only through lfipc__deadline() (wait.c). */
typedef int64_t lfipc_deadline;
#define LFIPC_DL_NEVER INT64_MAX

/* A short bound (10 ms): how long lfipc_region_recover() gives a busy
 * guard. (It was the sleep slice of every waiter before the wait layer,
 * whose slices are in internal/wait.h; tests still use it as a
 * tolerance.) */
#define LFIPC_SLICE_NS ((int64_t)10 * 1000 * 1000)

/* Now on CLOCK_MONOTONIC, in nanoseconds. */
int64_t lfipc__now_ns(void);

/* min(deadline, now + slice_ns): the end of the next sleep slice
 * (0 <= slice_ns < 2^40). */
lfipc_deadline lfipc__slice_end(lfipc_deadline deadline, int64_t slice_ns);

/* True when deadline has passed (LFIPC_DL_NEVER never passes). */
bool lfipc__expired(lfipc_deadline deadline);

/*
 * Sleep while *word == expected, until woken or deadline (absolute
 * CLOCK_MONOTONIC ns; LFIPC_DL_NEVER: no limit).
 * Return: 0 woken (or spurious); -EAGAIN *word != expected on entry;
 * -ETIMEDOUT; -EINTR a signal arrived. Never -EFAULT-like errors for a
 * mapped word; any other kernel error is returned as is.
 */
int lfipc__futex_wait(_Atomic uint32_t *word, uint32_t expected,
		      lfipc_deadline deadline);

/* One word of a vectored wait: sleep while *word == val. */
struct lfipc_futex_wv {
	_Atomic uint32_t *word;
	uint32_t val;
};
#define LFIPC_FUTEX_WV_MAX 32

/*
 * Sleep while every v[i].word == v[i].val (futex_waitv(2), Linux 5.16+),
 * until one of them is woken or changes, or deadline passes.
 * Return: index of the word that was woken (>= 0; may be spurious);
 * -EAGAIN one of the words differed on entry; -ETIMEDOUT; -EINTR;
 * -ENOSYS / -EPERM the call is unavailable (a sandbox may refuse it: the
 * caller falls back to lfipc__futex_wait); -EINVAL n is 0 or too large.
 */
int lfipc__futex_waitv(const struct lfipc_futex_wv *v, unsigned n,
		       lfipc_deadline deadline);

/* Number of sleeping futex calls made by this process (waits and vectored
 * waits), for tests that count an idle waiter's wake-ups. */
extern _Atomic uint64_t lfipc__futex_sleeps;

/* Wake up to n sleepers on word (INT32_MAX: all). Return: number woken. */
int lfipc__futex_wake(_Atomic uint32_t *word, int n);

/* One iteration of a spin-wait: a pause instruction on x86 (no memory
 * effect, so no ThreadSanitizer concern). */
static inline void lfipc__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* How many CPUs are online (cached; >= 1). Spinning before a sleep only
 * pays when the peer can run at the same time, on another CPU; a process
 * pinned to one CPU still can, so its affinity is not what counts. */
int lfipc__ncpus(void);

#endif /* LFIPC_INTERNAL_FUTEX_H */
