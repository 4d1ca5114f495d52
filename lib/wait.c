/* SPDX-License-Identifier: MIT */
/*
 * wait.c - the only wait loops: lfipc__wait_until (and its wait-for-any
 * form) for the waits on a word, lfipc__wait_retry, the back-off for the
 * few that have no word and no waker (at the end of the file). See
 * internal/wait.h for the contract and the lost-wake-up argument (labels
 * W1-W5, K1-K3 below).
 *
 * Per sleep, a waiter sleeps on up to 1 + LFIPC_WAIT_PARTNERS words with
 * futex_waitv: the object word (or the queue's seq) and the death word of
 * each partner (internal/death.h). What it learns from each death word
 * chooses the slice:
 *
 *   ARMED  the kernel will mark and wake it at the partner's death: no
 *          polling; the waiter sets WAITERS (the kernel wakes a sleeper
 *          only then) and sleeps up to the safety slice (1 s);
 *   DIED / GONE  the partner is dead by proc.c's verdict: call ready()
 *          with check = true (it takes over / skips / breaks);
 *   HINT   marked, but the slot was used by several threads: probe the
 *          OFD lock every 50 us for up to 20 ms, then call it a false
 *          alarm (a raw SYS_exit of the linking thread) and fall back;
 *   OFF / NONE  no push: fallback slices, 0.625 ms doubling to 1 s, with
 *          a liveness check at the end of each. A death word that exists
 *          is still slept on, so that the process that finds the death
 *          by probing wakes everybody (proc.c, lfipc__death_wake).
 *
 * The kernel wakes one sleeper per mark; a waiter that finds a word marked
 * wakes all the others on it (pass-on), so every waiter learns it at once.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lfipc/common.h>

#include "internal/death.h"
#include "internal/futex.h"
#include "internal/poll.h"
#include "internal/proc.h"
#include "internal/wait.h"

#define WQ_ONE UINT64_C(1)
#define WQ_ONE_MASK ((UINT64_C(1) << 24) - 1)
#define WQ_ANY_ONE (UINT64_C(1) << 24)
#define WQ_ANY_MASK (((UINT64_C(1) << 16) - 1) << 24)
#define WQ_POLL_SHIFT 40
#define WQ_POLL_MASK (((UINT64_C(1) << 16) - 1) << WQ_POLL_SHIFT)
#define WQ_BAD_MASK (~((UINT64_C(1) << 56) - 1))
#define WQ_SEQ_ARMED 1u /* bit 0 of wq->seq (internal/layout.h) */

static _Atomic int waitv_state; /* 0 unknown, 1 usable, -1 not */
/* lfipc_thread_set_interruptible(): this thread's switch, read by the
 * thread only. */
static _Thread_local bool interruptible;
static _Atomic int forced = -1; /* -1 unknown, 0 no, 1 forced fallback */
static _Atomic int64_t safety_ns = LFIPC_SAFETY_SLICE_NS;

lfipc_deadline lfipc__deadline(int64_t timeout_ns)
{
	int64_t now;

	if (timeout_ns == LFIPC_NOWAIT)
		return LFIPC_DL_NOW;
	if (timeout_ns == LFIPC_FOREVER)
		return LFIPC_DL_NEVER;
	if (timeout_ns < 0)
		return LFIPC_DL_PAST;
	now = lfipc__now_ns();
	if (timeout_ns > LFIPC_DL_NEVER - now)
		return LFIPC_DL_NEVER;
	return now + timeout_ns;
}

/* pthread_mutex_clocklock() would take the monotonic deadline as it is,
 * but ThreadSanitizer does not intercept it (it then reports every unlock
 * as one of an unlocked mutex); so the deadline is converted to
 * CLOCK_REALTIME for pthread_mutex_timedlock(). A wall-clock step during
 * the wait moves this one deadline. */
int lfipc__pthread_lock_until(pthread_mutex_t *mu, lfipc_deadline dl)
{
	struct timespec ts;
	int64_t left, at;

	if (dl == LFIPC_DL_NEVER)
		return -pthread_mutex_lock(mu);
	left = dl - lfipc__now_ns();
	if (left <= 0)
		return pthread_mutex_trylock(mu) == 0 ? 0
						       : lfipc__deadline_error(dl);
	clock_gettime(CLOCK_REALTIME, &ts);
	at = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + left;
	ts.tv_sec = at / 1000000000;
	ts.tv_nsec = at % 1000000000;
	return pthread_mutex_timedlock(mu, &ts) == 0 ? 0 : -ETIMEDOUT;
}

int lfipc_thread_set_interruptible(int on)
{
	bool was = interruptible;

	interruptible = on != 0;
	return was;
}

bool lfipc__wait_eintr(unsigned flags)
{
	if (flags & LFIPC_WAIT_NOINTR)
		return false;
	return (flags & LFIPC_WAIT_EINTR) || interruptible;
}

void lfipc__wait_force_fallback(bool on)
{
	/* V1: relaxed: a test switch, set while nothing waits. */
	atomic_store_explicit(&forced, on ? 1 : 0, memory_order_relaxed);
}

void lfipc__wait_set_safety_slice(int64_t ns)
{
	/* V1: relaxed, a test switch. */
	atomic_store_explicit(&safety_ns, ns > 0 ? ns : LFIPC_SAFETY_SLICE_NS,
			      memory_order_relaxed);
}

/* Test hook (lfipc__set_test_hook); V1: relaxed, a test switch. */
static void (*_Atomic test_hook)(enum lfipc_test_point point, void *arg);

void lfipc__set_test_hook(void (*fn)(enum lfipc_test_point point, void *arg))
{
	atomic_store_explicit(&test_hook, fn, memory_order_relaxed);
}

void lfipc__test_point(enum lfipc_test_point point, void *arg)
{
	void (*fn)(enum lfipc_test_point, void *) =
	    atomic_load_explicit(&test_hook, memory_order_relaxed);

	if (fn)
		fn(point, arg);
}

static bool fallback_forced(void)
{
	/* V1: relaxed, as above. */
	int f = atomic_load_explicit(&forced, memory_order_relaxed);

	if (f < 0) {
		const char *e = getenv("LFIPC_WAIT_FALLBACK");

		f = e && e[0] == '1';
		atomic_store_explicit(&forced, f, memory_order_relaxed);
	}
	return f == 1;
}

bool lfipc__wait_have_waitv(void)
{
	/* V2: relaxed: a cache of what the kernel said. */
	int st = atomic_load_explicit(&waitv_state, memory_order_relaxed);

	if (fallback_forced())
		return false;
	if (st == 0) {
		/* A word that differs: futex_waitv returns at once with
		 * EAGAIN where it exists and is allowed. */
		_Atomic uint32_t probe = 1;
		struct lfipc_futex_wv v = {&probe, 0};

		st = lfipc__futex_waitv(&v, 1, LFIPC_DL_NEVER) == -EAGAIN ? 1
									   : -1;
		atomic_store_explicit(&waitv_state, st, memory_order_relaxed);
	}
	return st > 0;
}

/* CAS attempts on wq->seq before seq_arm/seq_disarm stop retrying. */
#define SEQ_CAS_TRIES 64

/*
 * W2 for a sleeper that may sleep on wq->seq: arm the word (bit 0, the
 * encoding is in internal/layout.h) and return its armed value, which the
 * sleep compares. seq_cst: read-modify-write or load, before W3.
 */
static uint32_t seq_arm(struct lfipc_wq *wq)
{
	uint32_t e = atomic_load(&wq->seq);

	/* Bounded: a peer that rewrites the word without end must not
	 * keep us here past the caller's deadline. After SEQ_CAS_TRIES
	 * failures the value is returned unarmed: the sleep on it ends at
	 * once if the word moves again, or at the slice's end (capped by
	 * the deadline), at worst one slice late if a broadcast skipped
	 * it; only a peer that scribbles on the word can cause that. */
	for (int i = 0; !(e & WQ_SEQ_ARMED) && i < SEQ_CAS_TRIES; i++)
		if (atomic_compare_exchange_strong(&wq->seq, &e,
						   e | WQ_SEQ_ARMED))
			return e | WQ_SEQ_ARMED;
	return e;
}

/*
 * K3 of a broadcast on wq->seq: disarm it (armed value + 1). Return false
 * when it was not armed: every thread that slept on it since the last
 * broadcast has been woken by that broadcast already (a woken waiter that
 * has not run yet still counts in wq->waiters: without this, every state
 * change until it runs would cost a system call), and whoever arms it
 * again (W2) looks at the state after our K1.
 */
static bool seq_disarm(struct lfipc_wq *wq)
{
	uint32_t e = atomic_load(&wq->seq);

	for (int i = 0; e & WQ_SEQ_ARMED; i++) {
		if (i == SEQ_CAS_TRIES)
			return true; /* a peer rewrites it: wake anyway */
		if (atomic_compare_exchange_strong(&wq->seq, &e, e + 1))
			return true;
	}
	return false;
}

void lfipc__wake(lfipc_region *r, struct lfipc_wq *wq,
		 _Atomic uint32_t *wake_word, int n)
{
	/* K2: seq_cst, after the caller's seq_cst K1. */
	uint64_t w = atomic_load(&wq->waiters);

	if (w == 0)
		return; /* nobody sleeps, nobody polls: no system call */
	if (w & (WQ_ONE_MASK | WQ_ANY_MASK | WQ_BAD_MASK)) {
		/* A wait-for-any waiter must not swallow the one wake-up a
		 * dedicated waiter needed: wake them all then. */
		if (w & (WQ_ANY_MASK | WQ_BAD_MASK))
			n = INT_MAX;
		if (!wake_word && n >= INT32_MAX) {
			/* K3: seq_cst: a broadcast on seq, only when a
			 * sleeper armed it since the last one. */
			if (seq_disarm(wq))
				lfipc__futex_wake(&wq->seq, INT_MAX);
		} else {
			/* K3: seq_cst: sleepers on seq compare it in W4;
			 * a wake of some of them leaves it armed. */
			atomic_fetch_add(&wq->seq, 2);
			lfipc__futex_wake(wake_word ? wake_word : &wq->seq,
					  n);
		}
	}
	if (r && (w & (WQ_POLL_MASK | WQ_BAD_MASK)))
		lfipc__poll_ring(r, wq);
}

void lfipc__wake_one(lfipc_region *r, struct lfipc_wq *wq)
{
	/* K2: seq_cst, after the caller's seq_cst K1. */
	uint64_t w = atomic_load(&wq->waiters);

	if (w == 0)
		return;
	/* Wait-for-any waiters, pollers, a corrupt word; or more than one
	 * counted sleeper: the one woken last may not run for long (stopped
	 * or killed before it re-arms, or just not scheduled yet) and still
	 * counts, so skipping the wake until it re-arms would leave the
	 * others asleep for up to a safety slice (findings/
	 * lock_woken_stopped.c on branch review6: ~750 ms). Then wake one
	 * and leave the count armed, as every release did before. */
	if (w & ~WQ_ONE_MASK || (w & WQ_ONE_MASK) > WQ_ONE) {
		lfipc__wake(r, wq, NULL, 1);
		return;
	}
	/* K3: seq_cst: one counted sleeper: disarm, then wake it; nothing
	 * when it was not armed (woken already, it has not looked yet:
	 * nobody else sleeps, and a new sleeper arms again in W2). */
	if (seq_disarm(wq))
		lfipc__futex_wake(&wq->seq, 1);
}

void lfipc__wake_word(_Atomic uint32_t *word, int n)
{
	lfipc__futex_wake(word, n);
}

/* W5: leave wq (NULL: a wait without a queue). seq_cst (release would
 * do). */
static void unannounce(struct lfipc_wq *wq)
{
	if (wq)
		atomic_fetch_sub(&wq->waiters, WQ_ONE);
}

/* State of one wait_until call (the per-partner hint windows). */
struct wstate {
	uint32_t hint_tok[LFIPC_WAIT_PARTNERS];
	int64_t hint_end[LFIPC_WAIT_PARTNERS];
	uint32_t alarm_tok[LFIPC_WAIT_PARTNERS]; /* false alarms: slices */
	uint32_t checked_tok[LFIPC_WAIT_PARTNERS];
};

static bool tok_in(const uint32_t *v, uint32_t t)
{
	for (int i = 0; i < LFIPC_WAIT_PARTNERS; i++)
		if (v[i] == t)
			return true;
	return false;
}

static void tok_put(uint32_t *v, uint32_t t)
{
	for (int i = 0; i < LFIPC_WAIT_PARTNERS; i++)
		if (v[i] == 0 || v[i] == t) {
			v[i] = t;
			return;
		}
	v[0] = t;
}

/* Slice policy of one sleep, from the partners' death words. */
enum slice_kind { SL_SAFETY, SL_FALLBACK, SL_HINT, SL_CHECK };

/*
 * Checks a wait makes without sleeping in between, for a wait on n
 * objects: one per partner the death words say died (SL_CHECK), plus one
 * before the first sleep without the push. checked_tok remembers only
 * LFIPC_WAIT_PARTNERS tokens, so partners that keep changing among more
 * dead tokens than that (a word rewritten by a peer, owners that die one
 * after another) would make every pass an SL_CHECK: the loop then never
 * slept and never looked at the deadline. Past this many, the wait sleeps
 * a fallback slice and checks at its end; every pass looks at the
 * deadline.
 */
#define QUICK_CHECKS(n) (1u + (unsigned)(n) * LFIPC_WAIT_PARTNERS)

/*
 * Add the partners' death words to fv (after fv[0]) and decide the slice.
 * SL_CHECK: a partner is dead by the verdict: call ready(check) first.
 * Every partner's word is added even then: past QUICK_CHECKS the caller
 * sleeps instead of checking, and a live partner's death must still wake
 * that sleep (before, a dead partner ahead of it left its word out, and
 * its death was seen at the slice's end: up to 1 s late).
 */
static enum slice_kind partners(lfipc_region *r, const struct lfipc_sleep *s,
				struct wstate *st, struct lfipc_futex_wv *fv,
				unsigned *nfv, int64_t now)
{
	enum slice_kind k = s->unwatched ? SL_FALLBACK : SL_SAFETY;
	bool waitv = lfipc__wait_have_waitv(), dead = false;

	for (int i = 0; i < LFIPC_WAIT_PARTNERS; i++) {
		uint32_t p = s->partner[i], v;
		_Atomic uint32_t *w;
		enum lfipc_death_state ds;

		if (p == 0)
			continue;
		ds = lfipc__death_peek(r, p, &w, &v);
		if (ds == LFIPC_DEATH_DIED || ds == LFIPC_DEATH_GONE) {
			if (!tok_in(st->checked_tok, p)) {
				if (ds == LFIPC_DEATH_DIED)
					/* pass-on: the kernel woke one */
					lfipc__futex_wake(w, INT_MAX);
				tok_put(st->checked_tok, p);
				dead = true;
			} else {
				/* checked already and still not resolved
				 * (the primitive moved on, or the word is
				 * forged) */
				k = SL_FALLBACK;
			}
		} else if (ds == LFIPC_DEATH_HINT && !tok_in(st->alarm_tok, p)) {
			int j;

			for (j = 0; j < LFIPC_WAIT_PARTNERS; j++)
				if (st->hint_tok[j] == p)
					break;
			if (j == LFIPC_WAIT_PARTNERS) {
				lfipc__futex_wake(w, INT_MAX); /* pass-on */
				j = st->hint_tok[0] ? 1 : 0;
				st->hint_tok[j] = p;
				st->hint_end[j] = now + LFIPC_HINT_WINDOW_NS;
			}
			if (now < st->hint_end[j]) {
				if (k != SL_FALLBACK)
					k = SL_HINT;
			} else {
				/* a false alarm: the partner lives on
				 * with a marked word; poll it by slices */
				tok_put(st->alarm_tok, p);
				k = SL_FALLBACK;
			}
		} else if (ds == LFIPC_DEATH_ARMED && waitv) {
			uint32_t seen = v;

			lfipc__test_point(LFIPC_TP_DEATH_PEEKED, w);
			/* The kernel wakes a sleeper only with WAITERS set.
			 * W1b: seq_cst CAS; a failure means the word moved
			 * (mark, disarm, re-arm): sleep on what we saw, v,
			 * so that the futex compare returns at once. The CAS
			 * works on a copy: on failure it stores the word's
			 * new value in `expected`, and sleeping on that one
			 * (a mark the kernel made without a wake, since
			 * WAITERS was clear) slept a whole safety slice
			 * (1 s) past the partner's death. */
			if (!(v & LFIPC_DW_WAITERS)) {
				if (atomic_compare_exchange_strong(
					w, &seen, v | LFIPC_DW_WAITERS))
					v |= LFIPC_DW_WAITERS;
				else if (seen == (v | LFIPC_DW_WAITERS))
					/* another waiter set it: as if we
					 * had seen it set (the kernel wakes
					 * at the death); saves a round */
					v = seen;
			}
		} else {
			k = SL_FALLBACK;
		}
		if (w && waitv && *nfv < LFIPC_FUTEX_WV_MAX)
			fv[(*nfv)++] = (struct lfipc_futex_wv){w, v};
	}
	return dead ? SL_CHECK : k;
}

/* Add s->word2 to fv. Without futex_waitv it cannot be slept on: poll
 * it by fallback slices (*k). Return: its index in fv, or 0 (none). */
static unsigned add_word2(const struct lfipc_sleep *s,
			  struct lfipc_futex_wv *fv, unsigned *nfv,
			  enum slice_kind *k)
{
	if (!s->word2)
		return 0;
	if (lfipc__wait_have_waitv() && *nfv < LFIPC_FUTEX_WV_MAX) {
		fv[*nfv] = (struct lfipc_futex_wv){s->word2, s->val2};
		return (*nfv)++;
	}
	if (*k == SL_SAFETY)
		*k = SL_FALLBACK;
	return 0;
}

/* Length of the next sleep for slice kind k. */
static int64_t slice_len(enum slice_kind k, int64_t fb_slice)
{
	if (k == SL_HINT)
		return LFIPC_HINT_PROBE_NS;
	if (k == SL_SAFETY)
		/* V1: relaxed, a test switch. */
		return atomic_load_explicit(&safety_ns, memory_order_relaxed);
	return fb_slice;
}

/*
 * The spin policy: spin only while spinning pays. Spinning pays when the
 * partner runs on another CPU and acts within the budget; it wastes the
 * CPU the partner needs when cores are oversubscribed (more runnable
 * threads than cores: the partner is preempted, often by the spinner
 * itself). Each thread learns from its own spins (spin-failure feedback,
 * as glibc's adaptive mutex does):
 *   - a spin that ends with the operation done doubles the budget, up
 *     to LFIPC_SPIN_NS;
 *   - a spin that runs out halves it; below LFIPC_SPIN_MIN_NS the thread
 *     stops spinning and sleeps at once;
 *   - a spin during which the thread itself was preempted (a gap of
 *     LFIPC_SPIN_PREEMPT_NS between two clock reads that are 64 pauses
 *     apart) is oversubscription: the budget drops to 0 at once;
 *   - a thread that does not spin tries again every LFIPC_SPIN_PROBE-th
 *     wait, so it learns when cores free up: with LFIPC_SPIN_PROBE_NS,
 *     more than a partner's wake-up (a partner that answers in more than
 *     the probe, a pipe's round trip or one waking from a futex sleep,
 *     would fail every short probe and the thread would sleep at every
 *     wait for good); a probe that runs out leaves the budget as it
 *     was.
 * Thread-local, read and written by its thread only.
 */
static _Thread_local int64_t spin_ns = LFIPC_SPIN_NS;
static _Thread_local unsigned spin_skipped;

static int64_t spin_budget(void)
{
	if (spin_ns >= LFIPC_SPIN_MIN_NS)
		return spin_ns;
	if (++spin_skipped % LFIPC_SPIN_PROBE != 0)
		return 0;
	return LFIPC_SPIN_PROBE_NS; /* a probe */
}

/* Spin up to budget ns calling ready(); adapt spin_ns to the outcome.
 * Return: ready()'s non-zero return, or 0 (ran out). */
static int spin(lfipc_ready_fn ready, void *ctx, struct lfipc_sleep *s,
		int64_t budget)
{
	bool probe = spin_ns < LFIPC_SPIN_MIN_NS;
	int64_t t0 = lfipc__now_ns(), last = t0;
	int rc;

	for (unsigned i = 1;; i++) {
		lfipc__cpu_relax();
		if ((i & 63) == 0) {
			int64_t now = lfipc__now_ns();

			if (now - last >= LFIPC_SPIN_PREEMPT_NS) {
				spin_ns = 0; /* preempted: oversubscribed */
				return 0;
			}
			last = now;
			if (now - t0 >= budget)
				break;
		}
		memset(s, 0, sizeof(*s));
		rc = ready(ctx, s, false);
		if (rc != 0) {
			spin_ns = budget >= LFIPC_SPIN_NS / 2 ? LFIPC_SPIN_NS
							      : 2 * budget;
			return rc;
		}
		if (s->lost)
			break; /* a winner runs on: a spin only slows it */
	}
	if (!probe)
		spin_ns = budget / 2;
	return 0;
}

int64_t lfipc__wait_spin_budget(void)
{
	return spin_ns;
}

void lfipc__wait_set_spin_budget(int64_t ns)
{
	spin_ns = ns;
	spin_skipped = LFIPC_SPIN_PROBE - 1; /* the next wait may probe */
}

/*
 * A caller that polls with LFIPC_NOWAIT never sleeps here; when it polls
 * in a loop on oversubscribed cores it keeps the CPU from the partner it
 * waits for until the scheduler preempts it (the busy-polling collapse).
 * Every LFIPC_NOWAIT_YIELD-th failed NOWAIT attempt of a thread yields
 * the CPU: nothing when no other thread is runnable (one system call per
 * LFIPC_NOWAIT_YIELD failures), the partner's turn when one is.
 */
static _Thread_local unsigned nowait_fails;

static void nowait_failed(void)
{
	if (++nowait_fails % LFIPC_NOWAIT_YIELD == 0)
		sched_yield();
}

int lfipc__wait_until(lfipc_region *r, struct lfipc_wq *wq,
		      lfipc_ready_fn ready, void *ctx, lfipc_deadline dl,
		      unsigned flags)
{
	struct lfipc_sleep s;
	struct wstate st;
	int64_t fb_slice = LFIPC_FALLBACK_SLICE0_NS, now;
	bool check = false, woken = false, first = true;
	unsigned quick = 0; /* checks without a sleep since the last sleep */
	_Atomic uint32_t *slept = NULL; /* the word of the last sleep */
	int rc;

	memset(&s, 0, sizeof(s));
	rc = ready(ctx, &s, false);
	if (rc != 0)
		return rc > 0 ? 0 : rc;
	if (dl == LFIPC_DL_NOW || dl == LFIPC_DL_PAST || lfipc__expired(dl))
		goto expired;
	/* Spin while nobody sleeps yet and recent spins paid: a hand-off on
	 * another CPU is then near (one time-based policy for every
	 * primitive, spin_budget()). Without a queue we cannot tell: no
	 * spin. */
	if (!(flags & LFIPC_WAIT_NOSPIN) && wq && lfipc__ncpus() > 1 &&
	    /* V3: relaxed: only decides whether to spin. */
	    atomic_load_explicit(&wq->waiters, memory_order_relaxed) == 0) {
		int64_t budget = spin_budget();

		if (budget > 0) {
			rc = spin(ready, ctx, &s, budget);
			if (rc != 0)
				return rc > 0 ? 0 : rc;
		}
	}
	memset(&st, 0, sizeof(st));
	for (;;) {
		struct lfipc_futex_wv fv[2 + LFIPC_WAIT_PARTNERS];
		unsigned nfv = 1, w2;
		enum slice_kind k;
		int64_t len;
		uint32_t e = 0;

		if (wq) {
			/* W1: seq_cst: announce before looking at the
			 * state. */
			atomic_fetch_add(&wq->waiters, WQ_ONE);
			/* W2: seq_cst, before W3. */
			e = seq_arm(wq);
		}
		memset(&s, 0, sizeof(s));
		/* W3: ready()'s seq_cst state loads. */
		rc = ready(ctx, &s, check);
		check = false;
		if (rc == 0 && !wq && !s.word)
			rc = -EINVAL; /* nothing to sleep on: a bug */
		if (rc != 0) {
			unannounce(wq); /* W5 */
			if (rc > 0 || rc == -EOWNERDEAD || !woken)
				return rc > 0 ? 0 : rc;
			/* ready() failed after a wake-up (a CAS bound, a
			 * guard's deadline): the wake-up goes on. */
			s.word = slept;
			goto leave;
		}
		fv[0] = s.word ? (struct lfipc_futex_wv){s.word, s.val}
			       : (struct lfipc_futex_wv){&wq->seq, e};
		slept = s.word;
		now = lfipc__now_ns();
		k = partners(r, &s, &st, fv, &nfv, now);
		w2 = add_word2(&s, fv, &nfv, &k);
		if ((k == SL_CHECK || (first && k == SL_FALLBACK)) &&
		    quick < QUICK_CHECKS(1)) {
			/* a dead partner, or no push: decide liveness
			 * before sleeping */
			unannounce(wq); /* W5 */
			check = true;
			first = false;
			quick++;
			if (lfipc__expired(dl))
				goto expired;
			continue;
		}
		if (k == SL_CHECK)
			k = SL_FALLBACK; /* see QUICK_CHECKS */
		first = false;
		quick = 0;
		len = slice_len(k, fb_slice);
		if (nfv > 1)
			rc = lfipc__futex_waitv(fv, nfv,
						lfipc__slice_end(dl, len));
		else
			rc = lfipc__futex_wait(fv[0].word, fv[0].val,
					       lfipc__slice_end(dl, len));
		unannounce(wq); /* W5 */
		woken = rc == 0;
		if (rc > 0 && (unsigned)rc != w2) {
			check = true; /* a death word woke us */
		} else if (rc == -ETIMEDOUT) {
			if (lfipc__expired(dl))
				goto expired;
			check = true; /* slice end: probe the partners */
			if (k == SL_FALLBACK &&
			    fb_slice < LFIPC_FALLBACK_SLICE_MAX_NS)
				fb_slice *= 2;
		} else if (rc == -EINTR) {
			if (lfipc__wait_eintr(flags))
				goto leave; /* ready() did not complete */
		} else if (rc == -ENOSYS || rc == -EPERM) {
			/* futex_waitv refused after all: never again */
			atomic_store_explicit(&waitv_state, -1,
					      memory_order_relaxed);
		} else if (rc < 0 && rc != -EAGAIN) {
			goto leave; /* -EFAULT and the like: not our words */
		}
		if (lfipc__expired(dl))
			goto expired;
	}

expired:
	/* A woken waiter that leaves without looping again arms seq first
	 * (W2), as the loop would: a hand-off wake (lfipc__wake_one) that
	 * woke it skips the next ones until it has. */
	if (woken && wq)
		(void)seq_arm(wq);
	/* One attempt that decides the partners' liveness: NOWAIT takes
	 * over a dead owner's lock; a timeout does not hide a death. */
	memset(&s, 0, sizeof(s));
	rc = ready(ctx, &s, true);
	if (rc != 0)
		return rc > 0 ? 0 : rc;
	rc = lfipc__deadline_error(dl);
	if (dl == LFIPC_DL_NOW)
		nowait_failed();
leave:
	/* We may have consumed a wake-up meant for whoever goes next (a
	 * hand-off to one waiter): pass it on. */
	if (woken && wq)
		lfipc__wake(r, wq, s.word, 1);
	else if (woken && s.word)
		lfipc__wake_word(s.word, 1);
	return rc;
}

int lfipc__wait_poll(lfipc_region *r, struct lfipc_wq *wq,
		     lfipc_ready_fn ready, void *ctx, lfipc_deadline dl,
		     unsigned flags, struct lfipc_poller *p)
{
	struct lfipc_sleep s;
	int rc = lfipc__wait_until(r, wq, ready, ctx, dl, flags), rc2;

	if (!p || (rc != -EAGAIN && rc != -ETIMEDOUT))
		return rc;
	lfipc__poller_arm(p); /* P1, P2 */
	memset(&s, 0, sizeof(s));
	rc2 = ready(ctx, &s, false); /* P3 */
	if (rc2 != 0)
		return rc2 > 0 ? 0 : rc2;
	return rc;
}

/* Try every item once, in order. Return: the index of the first that
 * completed or failed (*err: 0, or its negative return), or -1. */
static int any_try(const struct lfipc_any *v, unsigned n,
		   struct lfipc_sleep *s, bool check, int *err)
{
	for (unsigned i = 0; i < n; i++) {
		int rc;

		memset(&s[i], 0, sizeof(s[i]));
		rc = v[i].ready(v[i].ctx, &s[i], check);
		if (rc > 0)
			return (int)i;
		if (rc < 0) {
			*err = rc;
			return (int)i;
		}
	}
	return -1;
}

static void any_announce(const struct lfipc_any *v, unsigned n, bool on)
{
	for (unsigned i = 0; i < n; i++)
		if (on)
			/* W1: seq_cst */
			atomic_fetch_add(&v[i].wq->waiters, WQ_ANY_ONE);
		else
			/* W5: seq_cst */
			atomic_fetch_sub(&v[i].wq->waiters, WQ_ANY_ONE);
}

int lfipc__wait_any(lfipc_region *r, const struct lfipc_any *v, unsigned n,
		    lfipc_deadline dl, unsigned flags, int *result)
{
	struct lfipc_sleep s[LFIPC_WAIT_ANY_MAX];
	struct lfipc_futex_wv fv[LFIPC_FUTEX_WV_MAX];
	uint32_t e[LFIPC_WAIT_ANY_MAX];
	struct wstate st;
	int64_t fb_slice = LFIPC_FALLBACK_SLICE0_NS;
	bool check = false, first = true;
	unsigned quick = 0; /* as in lfipc__wait_until */
	int i, err = 0, rc;

	if (n == 0 || n > LFIPC_WAIT_ANY_MAX || !v || !result)
		return -EINVAL;
	memset(&st, 0, sizeof(st));
	if (dl == LFIPC_DL_NOW || dl == LFIPC_DL_PAST || lfipc__expired(dl))
		goto expired;
	for (;;) {
		enum slice_kind k = SL_SAFETY;
		unsigned nfv = 0;
		int64_t len;

		any_announce(v, n, true);
		for (unsigned j = 0; j < n; j++)
			e[j] = seq_arm(v[j].wq); /* W2: seq_cst */
		i = any_try(v, n, s, check, &err); /* W3 */
		check = false;
		if (i >= 0) {
			any_announce(v, n, false);
			*result = err;
			return i;
		}
		for (unsigned j = 0; j < n; j++)
			fv[nfv++] = s[j].word
					? (struct lfipc_futex_wv){s[j].word,
								  s[j].val}
					: (struct lfipc_futex_wv){&v[j].wq->seq,
								  e[j]};
		for (unsigned j = 0; j < n; j++) {
			enum slice_kind kj = partners(r, &s[j], &st, fv, &nfv,
						      lfipc__now_ns());

			/* a wake-up on it counts as a death word's below:
			 * one extra check */
			add_word2(&s[j], fv, &nfv, &kj);
			if (kj > k)
				k = kj;
		}
		if ((k == SL_CHECK || (first && k == SL_FALLBACK)) &&
		    quick < QUICK_CHECKS(n)) {
			any_announce(v, n, false);
			check = true;
			first = false;
			quick++;
			if (lfipc__expired(dl))
				goto expired;
			continue;
		}
		if (k == SL_CHECK)
			k = SL_FALLBACK; /* see QUICK_CHECKS */
		first = false;
		quick = 0;
		len = slice_len(k, fb_slice);
		if (lfipc__wait_have_waitv())
			rc = lfipc__futex_waitv(fv, nfv,
						lfipc__slice_end(dl, len));
		else /* one word at a time: poll the others by slices */
			rc = lfipc__futex_wait(fv[0].word, fv[0].val,
					       lfipc__slice_end(
						   dl, n > 1 ? fb_slice : len));
		any_announce(v, n, false);
		if (rc == -ETIMEDOUT || (!lfipc__wait_have_waitv() && n > 1)) {
			check = true;
			if (fb_slice < LFIPC_FALLBACK_SLICE_MAX_NS)
				fb_slice *= 2;
		} else if (rc >= (int)n) {
			check = true; /* a death word */
		} else if (rc == -EINTR && lfipc__wait_eintr(flags)) {
			return -EINTR; /* nothing was taken */
		}
		if (lfipc__expired(dl))
			goto expired;
	}

expired:
	i = any_try(v, n, s, true, &err);
	if (i >= 0) {
		*result = err;
		return i;
	}
	return lfipc__deadline_error(dl);
}

/* ---- waits on no shared word -------------------------------------------- */

/*
 * Back-off for a condition without a waker (internal/wait.h). Why not a
 * kernel wait: the only such condition with a kernel-side wait is the
 * registration gate, an OFD lock, and F_OFD_SETLKW has no timeout: the
 * only ways to end it at a deadline are a signal (a timer signal and a
 * handler the library would install in the application: not acceptable)
 * or a thread of our own blocked in it and cancelled (a background thread
 * per wait, and a cancellation that has to be joined: more costly than
 * what it saves). A stopped holder would keep F_OFD_SETLKW asleep for good.
 * The holders it waits for are short (a remover deciding, a registrant
 * claiming a slot) unless stopped, so polling with a back-off that grows
 * to 1 ms costs at most about a millisecond of latency after the release
 * (or the kernel's drop of a dead holder's lock), and at most about a
 * thousand attempts a second while a stopped holder lasts, each bounded by
 * the caller's deadline.
 */
int lfipc__wait_retry(lfipc_try_fn try, void *ctx, lfipc_deadline dl)
{
	int64_t sleep_ns = LFIPC_RETRY_SLEEP0_NS, now, left;
	int rc = try(ctx, false);

	if (rc != 0)
		return rc > 0 ? 0 : rc;
	if (dl == LFIPC_DL_NOW || dl == LFIPC_DL_PAST)
		goto expired;
	if (lfipc__ncpus() > 1) {
		int64_t t0 = lfipc__now_ns();

		for (;;) {
			lfipc__cpu_relax();
			if (lfipc__now_ns() - t0 >= LFIPC_RETRY_SPIN_NS)
				break;
			rc = try(ctx, false);
			if (rc != 0)
				return rc > 0 ? 0 : rc;
		}
	}
	for (;;) {
		rc = try(ctx, true);
		if (rc != 0)
			return rc > 0 ? 0 : rc;
		now = lfipc__now_ns();
		if (now >= dl)
			break;
		left = dl - now;
		if (left > sleep_ns)
			left = sleep_ns;
		nanosleep(&(struct timespec){left / 1000000000,
					     left % 1000000000},
			  NULL);
		if (sleep_ns < LFIPC_RETRY_SLEEP_MAX_NS)
			sleep_ns = sleep_ns * 2 < LFIPC_RETRY_SLEEP_MAX_NS
					   ? sleep_ns * 2
					   : LFIPC_RETRY_SLEEP_MAX_NS;
	}
expired:
	rc = try(ctx, true);
	if (rc != 0)
		return rc > 0 ? 0 : rc;
	return lfipc__deadline_error(dl);
}

/* ---- the bound of CAS retry loops --------------------------------------- */

/* Every LFIPC_CAS_YIELD-th failure of one loop (internal/wait.h). */
int lfipc__cas_slow(struct lfipc_cas_bound *b, lfipc_deadline dl)
{
	int64_t now;

	sched_yield();
	if (b->fails % LFIPC_CAS_CLOCK != 0)
		return 0;
	/* LFIPC_NOWAIT and an expired timeout are one attempt: their
	 * deadline has passed at the first look (no clock needed). */
	if (dl == LFIPC_DL_NOW || dl == LFIPC_DL_PAST)
		return lfipc__deadline_error(dl);
	now = lfipc__now_ns();
	if (b->end == 0) {
		b->end = now + LFIPC_CAS_BOUND_NS;
		if (dl != LFIPC_DL_NEVER && dl < b->end)
			b->end = dl;
	}
	if (now < b->end)
		return 0;
	if (dl != LFIPC_DL_NEVER && dl <= now)
		return lfipc__deadline_error(dl);
	return -EPROTO;
}
