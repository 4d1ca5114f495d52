/* SPDX-License-Identifier: MIT */
/*
 * casfail.h - a peer that rewrites one shared word just before every CAS
 * the library makes on it (header-only, Criterion, x86-64 Linux).
 *
 * A hostile writer thread or process that stores into the word in a tight
 * loop does not make a CAS retry loop live-lock on a machine with a few
 * cores: the victim re-reads the word from its failed CAS and its next CAS
 * usually comes before the writer gets the cache line back (measured: an
 * Event's set returned 0 at once). A peer on many cores, or one timed by
 * a scheduler, can. This helper times it exactly, so that a test of the
 * bound (internal/wait.h, lfipc_cas_bound) fails on an unbounded loop
 * every time:
 *
 *   - the page of the word is made read-only in the library's mapping;
 *   - a write to it faults (a locked CMPXCHG writes even when it fails);
 *     the SIGSEGV handler, when the faulting address is the word, changes
 *     the word through the test's second mapping (+= step at bump), makes
 *     the page writable and sets the trap flag;
 *   - the CAS runs, finds the word changed, fails; the SIGTRAP after that
 *     one instruction clears the trap flag and protects the page again.
 *
 * cf_stop() ends the rewriting (the page stays writable), so that a test
 * checks the call succeeds once the peer stops. One word per process at a
 * time; Criterion runs each test in a process of its own. Other writes to
 * the page (another field of the same block) go through unharmed, a fault
 * and a trap each.
 */
#ifndef LFIPC_TEST_CASFAIL_H
#define LFIPC_TEST_CASFAIL_H

#include <criterion/criterion.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#define CF_TRAP_FLAG 0x100 /* EFLAGS.TF */
#ifndef REG_EFL
#define REG_EFL 17 /* glibc's <sys/ucontext.h>, without _GNU_SOURCE */
#endif

static struct {
	uintptr_t page;		  /* the word's page, library's mapping */
	uintptr_t word;		  /* the word, library's mapping */
	_Atomic uint32_t *bump;	  /* what the peer changes (second map) */
	uint32_t step;		  /* by how much, at each CAS */
	int toggle;		  /* toggle step's bits instead of adding */
	volatile sig_atomic_t on; /* rewriting */
	volatile unsigned long n; /* rewrites so far */
} cf;

static void cf_segv(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	uintptr_t a = (uintptr_t)si->si_addr;
	long pg = sysconf(_SC_PAGESIZE);

	if (a - cf.page >= (uintptr_t)pg) {
		/* Not ours: die as we would have. */
		signal(sig, SIG_DFL);
		return;
	}
	if (cf.on && a == cf.word) {
		if (cf.toggle)
			atomic_fetch_xor_explicit(cf.bump, cf.step,
						  memory_order_relaxed);
		else
			atomic_fetch_add_explicit(cf.bump, cf.step,
						  memory_order_relaxed);
		cf.n++;
	}
	mprotect((void *)cf.page, (size_t)pg, PROT_READ | PROT_WRITE);
	uc->uc_mcontext.gregs[REG_EFL] |= CF_TRAP_FLAG;
}

static void cf_trap(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;

	(void)sig;
	(void)si;
	uc->uc_mcontext.gregs[REG_EFL] &= ~(greg_t)CF_TRAP_FLAG;
	if (cf.on)
		mprotect((void *)cf.page, (size_t)sysconf(_SC_PAGESIZE),
			 PROT_READ);
}

/* Rewrite word (an address in the library's mapping of the region) before
 * every write to it: *bump (the same or a nearby word, through a second
 * mapping) += step. */
static inline void cf_start(void *word, void *bump, uint32_t step)
{
	struct sigaction sa;
	long pg = sysconf(_SC_PAGESIZE);

	memset(&sa, 0, sizeof(sa));
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sa.sa_sigaction = cf_segv;
	cr_assert_eq(sigaction(SIGSEGV, &sa, NULL), 0);
	sa.sa_sigaction = cf_trap;
	cr_assert_eq(sigaction(SIGTRAP, &sa, NULL), 0);
	cf.word = (uintptr_t)word;
	cf.page = cf.word & ~(uintptr_t)(pg - 1);
	cf.bump = bump;
	cf.step = step;
	cf.toggle = 0;
	cf.n = 0;
	cf.on = 1;
	cr_assert_eq(mprotect((void *)cf.page, (size_t)pg, PROT_READ), 0);
}

/* cf_start, the peer toggling step's bits (between two values) instead of
 * adding step. */
static inline void cf_start_xor(void *word, void *bump, uint32_t step)
{
	cf_start(word, bump, step);
	cf.toggle = 1;
}

/* The peer stops: the page is writable again. Return: the rewrites. */
static inline unsigned long cf_stop(void)
{
	cf.on = 0;
	cr_assert_eq(mprotect((void *)cf.page, (size_t)sysconf(_SC_PAGESIZE),
			      PROT_READ | PROT_WRITE),
		     0);
	return cf.n;
}

/* Run the statements while the peer rewrites the word, stop the peer,
 * and leave in took the nanoseconds they took. The peer must have
 * rewritten it more than min times (CF_TIMED: 1,000, past the CAS bound's
 * first clock reading), or the test proves nothing. CF_TIMED_MIN: for a
 * loop that ends at its first sign of the peer (the publication's store
 * under the queue lock, at the 256th failed CAS). */
#define CF_TIMED_MIN(took, min, ...)                                           \
	do {                                                                   \
		int64_t cf_t0_ = th_now_ns();                                  \
		__VA_ARGS__;                                                   \
		(took) = th_now_ns() - cf_t0_;                                 \
		cr_assert_gt(cf_stop(), (min));                                \
	} while (0)
#define CF_TIMED(took, ...) CF_TIMED_MIN(took, 1000, __VA_ARGS__)

/* The timed call said want, in lo ns or more and less than hi (the
 * messages give the time in ms). */
#define CF_EXPECT(rc, want, took, lo, hi)                                      \
	do {                                                                   \
		cr_assert_eq((rc), (want), "rc %d after %lld ms", (int)(rc),   \
			     (long long)((took) / 1000000));                   \
		cr_assert_geq((took), (lo), "took %lld ms",                    \
			      (long long)((took) / 1000000));                  \
		cr_assert_lt((took), (hi), "took %lld ms",                     \
			     (long long)((took) / 1000000));                   \
	} while (0)

#endif /* LFIPC_TEST_CASFAIL_H */
