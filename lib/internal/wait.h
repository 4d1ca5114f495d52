/* SPDX-License-Identifier: MIT */
/*
 * internal/wait.h - the wait layer: the only place that sleeps.
 *
 * Layers: futex (system calls) -> wait (this) -> primitives. A primitive
 * keeps its fast path (no system call) and describes everything else to
 * this layer:
 *
 *   - a wait queue (struct lfipc_wq, internal/layout.h) per waitable side
 *     of the object, in shared memory next to the object's hot word;
 *   - a readiness callback (lfipc_ready_fn) that attempts the operation
 *     once and, when it cannot complete, says which 32-bit word to sleep on
 *     and whose death should end the sleep (struct lfipc_sleep);
 *   - one call to lfipc__wake() after every state change that may let a
 *     waiter proceed.
 *
 * lfipc__wait_until() then owns the rest: the NOWAIT and timeout mapping,
 * the one spin-then-sleep policy, the announce / re-check / sleep protocol
 * that cannot lose a wake-up, sleeping on the partners' death words
 * together with the object word (so a partner's death wakes the waiter at
 * once), the fallback slices when a death cannot be pushed, signals, and
 * passing a consumed wake-up on when the waiter leaves without using it.
 *
 * The lost-wake-up argument (labels W1-W5 and K1-K3 in wait.c):
 *
 *   sleeper: W1 waiters += 1    (seq_cst RMW on wq->waiters)
 *            W2 e = wq->seq     (seq_cst load; arm it: CAS bit 0 on)
 *            W3 ready()         (its state loads are seq_cst)
 *            W4 futex_waitv(word == val [or seq == e], death words ...)
 *            W5 waiters -= 1    (seq_cst RMW)
 *   waker:   K1 state change    (seq_cst store or RMW, in the primitive)
 *            K2 n = wq->waiters (seq_cst load, in lfipc__wake)
 *            K3 if n: seq += 2, FUTEX_WAKE, ring armed pollers; a
 *               broadcast on seq instead: if seq is armed, seq += 1
 *               (disarmed) and FUTEX_WAKE all, else no system call
 *
 * In the single total order S of seq_cst operations either K2 <S W1, so
 * K1 <S W3 and W3 sees the change (no sleep), or W1 <S K2, so the waker
 * sees n >= 1 and wakes; the kernel's compare-and-queue in W4 is atomic
 * with respect to FUTEX_WAKE, so either W4 sees the new word / seq (returns
 * at once) or it is queued before the wake. A broadcast that finds seq
 * disarmed at K3 skips the wake: a sleeper whose W1 preceded K2 armed seq
 * at W2 with the value e; if W2 <S K3, a broadcast disarmed it after W2,
 * so seq != e from then on (W4 returns at once) and that broadcast wakes
 * every thread queued before it; if K3 <S W2, then K1 <S W3 and W3 sees the
 * change. Only broadcasts disarm, so a wake of some sleepers never hides
 * the others. A primitive's K1 must
 * therefore be seq_cst, and its ready() must read the state with seq_cst
 * loads (an acquire load after a seq_cst RMW is not ordered in S). On
 * x86-64 both cost nothing extra. ThreadSanitizer does not model futexes:
 * every happens-before edge comes from these atomics alone.
 *
 * Sides whose state is one 32-bit word that changes at every relevant
 * transition (a semaphore count, an event word) sleep on that word
 * (struct lfipc_sleep.word) and the waker passes it as wake_word; sides
 * whose state is elsewhere (queue positions, pipe positions), or whose
 * word can come back to the value a sleeper read (a Lock word re-taken by
 * the same owner, which lfipc__wake_one relies on) leave word NULL and
 * sleep on wq->seq, which every wake that makes a system call changes.
 */
#ifndef LFIPC_INTERNAL_WAIT_H
#define LFIPC_INTERNAL_WAIT_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal/futex.h"
#include "internal/region.h"

/* Deadlines with a meaning (besides absolute times and LFIPC_DL_NEVER):
 * LFIPC_DL_NOW  LFIPC_NOWAIT: one attempt, then -EAGAIN;
 * LFIPC_DL_PAST a timeout that had already expired (a negative one other
 *               than LFIPC_FOREVER): one attempt, then -ETIMEDOUT. */
#define LFIPC_DL_NOW ((lfipc_deadline)-1)
#define LFIPC_DL_PAST ((lfipc_deadline)0)

/*
 * The one mapping of an API timeout to a deadline: LFIPC_NOWAIT (0) ->
 * LFIPC_DL_NOW; LFIPC_FOREVER (exactly -1) -> LFIPC_DL_NEVER; any other
 * negative value (e.g. a computed "deadline - now" that went negative) ->
 * LFIPC_DL_PAST; else now + timeout_ns, saturating at LFIPC_DL_NEVER.
 * Call it once at API entry: the same deadline survives spurious wake-ups
 * and signals.
 */
lfipc_deadline lfipc__deadline(int64_t timeout_ns);

/* The one mapping of "not ready when the deadline passed" to an error:
 * -EAGAIN for LFIPC_DL_NOW, -ETIMEDOUT otherwise. */
static inline int lfipc__deadline_error(lfipc_deadline dl)
{
	return dl == LFIPC_DL_NOW ? -EAGAIN : -ETIMEDOUT;
}

/* Lock the process-local mutex mu until dl. Return: 0; -EAGAIN (dl is
 * LFIPC_DL_NOW) or -ETIMEDOUT when dl passed first; for LFIPC_DL_NEVER
 * the result of pthread_mutex_lock(), negated. */
int lfipc__pthread_lock_until(pthread_mutex_t *mu, lfipc_deadline dl);

/* What a not-ready attempt tells the wait layer to sleep on. */
#define LFIPC_WAIT_PARTNERS 2
struct lfipc_sleep {
	/* Sleep while *word == val; NULL: sleep on the queue's seq (never
	 * NULL when the wait has no queue). */
	_Atomic uint32_t *word;
	uint32_t val;
	/* Tokens whose death must end the sleep (0: none). The primitive
	 * checks their liveness itself when called with check = true. */
	uint32_t partner[LFIPC_WAIT_PARTNERS];
	/* A second word whose change ends the sleep too (NULL: none), for a
	 * waiter whose partners change while it sleeps (a Barrier's first
	 * party watches the latest arrival). Its waker wakes it with
	 * lfipc__wake(); a wake-up on it is not a hand-off (no check, no
	 * pass-on). Without futex_waitv it is polled by fallback slices. */
	_Atomic uint32_t *word2;
	uint32_t val2;
	/* Some partners whose death matters are not named (more than
	 * LFIPC_WAIT_PARTNERS): poll them by fallback slices, calling
	 * ready() with check = true at the end of each. */
	bool unwatched;
	/* This attempt found the object ready but another thread took it
	 * first (a lost race: a Lock re-taken by its releaser). Spinning
	 * then only takes the line from the winner: the spin stops. */
	bool lost;
};

/*
 * A primitive's readiness callback: attempt the operation once.
 * Return: 1 done (the operation happened; lfipc__wait_until returns 0);
 * 0 not ready (fill *s: wait_until zeroes it before each call); < 0 an
 * error that wait_until returns as is (also -EOWNERDEAD after a takeover,
 * which is a success for the caller).
 * check = true asks the primitive to decide its partners' liveness now
 * (lfipc__token_alive, which may cost a system call) and to recover from a
 * dead partner inside the callback (take over, skip, break). wait_until
 * asks for it before the first sleep unless every partner's death is
 * pushed, after a death-word wake-up, at the end of each fallback slice and
 * once more before it returns -ETIMEDOUT / -EAGAIN (so NOWAIT still takes
 * over a dead owner's lock).
 * State loads that decide "not ready" must be seq_cst (W3).
 */
typedef int (*lfipc_ready_fn)(void *ctx, struct lfipc_sleep *s, bool check);

/* Flags of lfipc__wait_until. */
enum {
	/* Return -EINTR when a signal handler ran during a sleep, whatever
	 * the thread's switch says (lfipc_thread_set_interruptible). */
	LFIPC_WAIT_EINTR = 1u << 0,
	/* Do not spin before sleeping. */
	LFIPC_WAIT_NOSPIN = 1u << 1,
	/* Never return -EINTR, whatever the thread's switch says: for the
	 * internal waits whose caller cannot undo what it did before (a
	 * Condition re-taking its lock, the region lock, a release taking
	 * its object's guard). */
	LFIPC_WAIT_NOINTR = 1u << 2,
};

/*
 * Does a sleep that a signal handler interrupted end a wait with these
 * flags? LFIPC_WAIT_NOINTR: no; LFIPC_WAIT_EINTR: yes; else the calling
 * thread's switch (lfipc_thread_set_interruptible, default off). The
 * default (go on sleeping until the same deadline) is what every public
 * call did before the switch existed.
 */
bool lfipc__wait_eintr(unsigned flags);

/*
 * The only wait loop. Calls ready(ctx, &s, false) first (the caller has
 * already failed its fast path), then, until ready() completes or fails or
 * the deadline passes: spins up to LFIPC_SPIN_NS while nobody sleeps on wq
 * (and more than one CPU is online), then announces itself on wq and
 * sleeps on s.word (or wq->seq) and on the death words of s.partner[] at
 * once, for at most one safety slice (1 s) when every partner's death is
 * pushed, or for the fallback slices (0.625 ms doubling to 1 s) when not.
 * Blocks unless dl is LFIPC_DL_NOW or LFIPC_DL_PAST.
 *
 * wq may be NULL for a word that has no wait queue (a Condition waiter's
 * slot, a Listener's bell): the waiter then neither announces itself nor
 * spins, ready() must name s.word, and the waker must call
 * lfipc__wake_word() after every change of that word, unconditionally
 * (the lost-wake-up argument is then the kernel's alone: the futex
 * compare-and-queue on the very word the waker changed).
 *
 * Return: 0 (ready returned 1); ready()'s negative return (when it
 * fails after a wake-up, e.g. at its CAS bound, that wake-up is passed on
 * to the next sleeper; -EOWNERDEAD is a success and keeps it); -EAGAIN not
 * ready and dl == LFIPC_DL_NOW; -ETIMEDOUT the deadline passed; -EINTR a
 * signal handler interrupted a sleep and lfipc__wait_eintr(flags): ready()
 * did not complete, and a wake-up the sleep consumed is passed on.
 * Concurrency: any number of threads and processes; r may be NULL only
 * when ready() never names a partner.
 */
int lfipc__wait_until(lfipc_region *r, struct lfipc_wq *wq,
		      lfipc_ready_fn ready, void *ctx, lfipc_deadline dl,
		      unsigned flags);

/*
 * Waker side, after the state change K1 (which must be seq_cst, or
 * release stores followed by one seq_cst fence: Q11, doc/queue.md): one load
 * of wq->waiters; nothing more when it is 0 (no system call: the zero-cost
 * rule). Else bump wq->seq, FUTEX_WAKE up to n sleepers (all when any
 * wait-for-any waiter is announced) on wake_word (the primitive's state
 * word, or NULL for wq->seq), and ring the armed fd pollers of wq. A
 * broadcast on wq->seq (wake_word NULL, n INT32_MAX) makes the system
 * call only when a sleeper armed seq since the last one: waiters that
 * were woken but have not run yet cost nothing more.
 * n: 1 for a hand-off to one waiter, INT32_MAX for a broadcast.
 */
void lfipc__wake(lfipc_region *r, struct lfipc_wq *wq,
		 _Atomic uint32_t *wake_word, int n);

/*
 * Hand-off wake for a side whose sleepers sleep on wq->seq (s.word NULL)
 * and take the object for themselves (a Lock): after K1, wake one sleeper
 * only when a sleeper armed seq since the last such wake (K3: disarm,
 * then FUTEX_WAKE one). A woken sleeper that has not run yet still counts
 * in wq->waiters; the releases until it runs make no system call (the
 * releaser re-taking the lock meanwhile pays nothing), and the woken one
 * arms seq again before it looks at the state (W2) or leaves, so that the
 * next release wakes the next sleeper (Drepper's rule for the woken
 * waiter, through the event count). Wait-for-any waiters and armed fd
 * pollers get lfipc__wake(). A sleeper on the object word instead of seq
 * could miss the release after a skipped one: the same owner re-taking
 * the word makes it look unchanged to the futex compare.
 */
void lfipc__wake_one(lfipc_region *r, struct lfipc_wq *wq);

/*
 * Wake up to n sleepers on word, which has no wait queue (the waiters
 * passed wq = NULL), or is a death word: always one system call. Call it
 * after the change of word that the sleepers wait for.
 */
void lfipc__wake_word(_Atomic uint32_t *word, int n);

struct lfipc_poller;

/*
 * lfipc__wait_until, for an object that may have an fd poller p (NULL:
 * none): when the wait ends with "not ready" (-EAGAIN or -ETIMEDOUT), arm
 * p (poll.h P1, P2: the fd stops being readable) and attempt once more
 * (P3); if that attempt completes, return its result instead, else the
 * error (the fd then becomes readable at the next wake of wq). This is the
 * level-triggered contract of every public fd: readable until an
 * operation reports "would block".
 */
int lfipc__wait_poll(lfipc_region *r, struct lfipc_wq *wq,
		     lfipc_ready_fn ready, void *ctx, lfipc_deadline dl,
		     unsigned flags, struct lfipc_poller *p);

/* One object of a wait-for-any: its queue and readiness callback. */
struct lfipc_any {
	struct lfipc_wq *wq;
	lfipc_ready_fn ready;
	void *ctx;
};
#define LFIPC_WAIT_ANY_MAX 8

/*
 * The public lfipc_wait_any() (lib/wait_any.c) asks each primitive for a
 * non-consuming readiness callback of one of its handles: it fills *a
 * (ctx = the handle) and *r. Return: 0; -EINVAL bad side; -EBADF; -EBUSY
 * and the like from claiming a connection's end (which may register a
 * fork child: that waits until dl at most).
 */
struct lfipc_queue;
struct lfipc_conn;
struct lfipc_event;
int lfipc__queue_any(struct lfipc_queue *q, int side, struct lfipc_any *a,
		     lfipc_region **r);
int lfipc__conn_any(struct lfipc_conn *c, int side, lfipc_deadline dl,
		    struct lfipc_any *a, lfipc_region **r);
int lfipc__event_any(struct lfipc_event *e, struct lfipc_any *a,
		     lfipc_region **r);

/*
 * Wait until the first of v[0..n-1] completes (its ready() returned 1: the
 * operation happened on that object only) or fails, or the deadline
 * passes. The waiter announces itself on every queue as a wait-for-any
 * waiter (so wakers wake all sleepers: a multiplexer never swallows the
 * one wake-up a dedicated waiter needed) and sleeps on every object's word
 * and its partners' death words at once. Items are tried in order, so an
 * earlier item wins a tie. Blocks like lfipc__wait_until.
 * Return: the index of the object whose ready() completed or failed, with
 * *result = 0 or that ready()'s negative return (e.g. -EOWNERDEAD after a
 * takeover); -EAGAIN (LFIPC_DL_NOW), -ETIMEDOUT, -EINTR
 * (lfipc__wait_eintr(flags)) when none did; -EINVAL n is 0 or above
 * LFIPC_WAIT_ANY_MAX.
 */
int lfipc__wait_any(lfipc_region *r, const struct lfipc_any *v, unsigned n,
		    lfipc_deadline dl, unsigned flags, int *result);

/* Spin budget before a sleep, in nanoseconds: about half of a measured
 * sleeping hand-off (wake + sleep), so spinning never costs more than
 * about twice the best case. It is the most a thread spins: each thread
 * halves its budget after a spin that ran out and stops spinning below
 * LFIPC_SPIN_MIN_NS or when it was preempted while spinning
 * (LFIPC_SPIN_PREEMPT_NS: oversubscribed cores), probing again every
 * LFIPC_SPIN_PROBE-th wait with LFIPC_SPIN_PROBE_NS (wait.c,
 * spin_budget). */
#define LFIPC_SPIN_NS 4000
#define LFIPC_SPIN_MIN_NS 250
#define LFIPC_SPIN_PREEMPT_NS ((int64_t)50000)
#define LFIPC_SPIN_PROBE 16u
/* A probe's budget: longer than LFIPC_SPIN_NS, so that it outlasts a
 * partner's wake-up from a futex sleep (12 to 35 us on this VM,
 * depending on the host's phase). Two threads that hand messages to each
 * other and have both stopped spinning each find the other asleep at
 * every wait, and only a spin that outlasts the other's wake-up gets
 * them out: with a 4 us probe they stayed asleep for good whenever the
 * wake-up took longer than that (a ping-pong at 50 us instead of 0.25). */
#define LFIPC_SPIN_PROBE_NS ((int64_t)64000)
/* A thread yields the CPU at every LFIPC_NOWAIT_YIELD-th failed NOWAIT
 * attempt (busy pollers on oversubscribed cores). */
#define LFIPC_NOWAIT_YIELD 64u
/* Safety slice while every partner's death is pushed (issue 10: an idle
 * waiter wakes at most once a second). */
#define LFIPC_SAFETY_SLICE_NS ((int64_t)1000000000)
/* Fallback slices: first and maximum length. */
#define LFIPC_FALLBACK_SLICE0_NS ((int64_t)625000)
#define LFIPC_FALLBACK_SLICE_MAX_NS ((int64_t)1000000000)
/* A death-word wake-up for a multi-threaded owner is a hint: probe its
 * liveness every LFIPC_HINT_PROBE_NS for up to LFIPC_HINT_WINDOW_NS, then
 * treat it as a false alarm and fall back to slices for that owner. */
#define LFIPC_HINT_PROBE_NS ((int64_t)50000)
#define LFIPC_HINT_WINDOW_NS ((int64_t)20000000)

/*
 * Test switch: true forces the fallback (no death push, no futex_waitv)
 * for the whole process, as if the kernel or the C library lacked them.
 * The environment variable LFIPC_WAIT_FALLBACK=1 sets it at start-up.
 */
void lfipc__wait_force_fallback(bool on);

/* Test switch: the safety slice (LFIPC_SAFETY_SLICE_NS by default; a
 * test sets it very long so that a lost wake-up hangs instead of being
 * hidden by the next slice). ns <= 0 restores the default. */
void lfipc__wait_set_safety_slice(int64_t ns);

/*
 * Test hook: the library calls lfipc__test_point() at a few points inside
 * a race window, so that a test can act there (kill a peer, rewrite a
 * word) deterministically. One relaxed load when no hook is set; only on
 * slow paths (before a sleep, after a liveness verdict).
 */
enum lfipc_test_point {
	/* wait.c partners(): a partner's death word was seen armed, WAITERS
	 * not set yet; arg: the word */
	LFIPC_TP_DEATH_PEEKED,
	/* pipe_io.c peer_gone(): the other end's holder was found dead, the
	 * end not marked closed yet; arg: the connection */
	LFIPC_TP_PEER_JUDGED,
	/* queue_tasks.c join_result(): the count already reported
	 * (abandoned_seen) was read, the abandoned count not yet; arg: the
	 * queue */
	LFIPC_TP_JOIN_LOADED,
	/* queue_tasks.c run_count_free(): a JoinableQueue consumer's record
	 * was stored COUNTED, no slot of its run freed yet; arg: the
	 * queue */
	LFIPC_TP_QREC_COUNTED,
	/* queue_tasks.c lfipc__q_tasks_drop_hole(), each step of a
	 * JoinableQueue's drop of a hole (arg: the queue): the record held
	 * HOLE, rec_pos stored; the slot claimed (READING); enq_pos moved;
	 * the record stored COUNTED; the slot freed and deq_pos moved;
	 * settled */
	LFIPC_TP_QHOLE_HELD,
	LFIPC_TP_QHOLE_CLAIMED,
	LFIPC_TP_QHOLE_MOVED,
	LFIPC_TP_QHOLE_COUNTED,
	LFIPC_TP_QHOLE_FREED,
	LFIPC_TP_QHOLE_SETTLED,
	/* queue.c clear_move(), each step of a clear's count, the lock and
	 * the head held (arg: the queue): the head held, no record yet; the
	 * record open; deq_pos moved; `cleared` stored; the head let go,
	 * the record not closed yet */
	LFIPC_TP_CLEAR_HELD,
	LFIPC_TP_CLEAR_RECORDED,
	LFIPC_TP_CLEAR_MOVED,
	LFIPC_TP_CLEAR_COUNTED,
	LFIPC_TP_CLEAR_FREED,
	/* queue_recover.c clear_recover(): a taker of a dead clearer's lock
	 * has read its open record and acted on it, the record not closed
	 * yet (arg: the queue) */
	LFIPC_TP_CLEAR_RECOVERED,
	/* queue_tasks.c lfipc__q_count_free(), _free1(): a consumer that
	 * found both records of its entry held by other threads of its
	 * process freed its run's slots the old way and has not counted
	 * them yet (the window that remains); arg: the queue */
	LFIPC_TP_QREC_OLDWAY,
};
void lfipc__set_test_hook(void (*fn)(enum lfipc_test_point point, void *arg));
void lfipc__test_point(enum lfipc_test_point point, void *arg);

/* Test switches: the calling thread's spin budget (wait.c, spin_budget);
 * setting it also makes the thread's next wait a probe when the budget is
 * below LFIPC_SPIN_MIN_NS. */
int64_t lfipc__wait_spin_budget(void);
void lfipc__wait_set_spin_budget(int64_t ns);

/* Can this process sleep on several words at once (futex_waitv)? Decided
 * at the first use and cached; false under lfipc__wait_force_fallback. */
bool lfipc__wait_have_waitv(void);

/*
 * A non-blocking attempt for lfipc__wait_retry: 1 done, 0 not yet (try
 * again later), < 0 an error that lfipc__wait_retry returns as is. check
 * = false during the spin: only the cheap attempt (a CAS, a few loads);
 * true before each sleep and once more at the deadline: the attempt may
 * also make system calls (a liveness probe, and the recovery from a dead
 * holder it decides).
 */
typedef int (*lfipc_try_fn)(void *ctx, bool check);

/* lfipc__wait_retry's policy: spin (re-attempt with a pause) for up to
 * LFIPC_RETRY_SPIN_NS, then sleep LFIPC_RETRY_SLEEP0_NS, doubling up to
 * LFIPC_RETRY_SLEEP_MAX_NS between attempts. */
#define LFIPC_RETRY_SPIN_NS ((int64_t)4000)
#define LFIPC_RETRY_SLEEP0_NS ((int64_t)20000)
#define LFIPC_RETRY_SLEEP_MAX_NS ((int64_t)1000000)

/*
 * Retry try(ctx) with back-off until it completes or fails or dl passes. The
 * only wait on no shared word (every other wait names a word and goes through
 * lfipc__wait_until): the wait for a condition that no waker announces and
 * that has no futex word: an OFD lock held by another process (proc.c's
 * registration gate); a holder of a short critical section that never wakes
 * anybody (the queue's clear lock and its single consumer's move of the get
 * position, lib/queue.c); an open waiting for a creator to size the region's
 * file, where no page exists yet to put a futex word on (lib/region.c). One
 * attempt first; nothing more when dl is LFIPC_DL_NOW or LFIPC_DL_PAST (no
 * sleep at all); then, with more than one CPU online, attempts with a pause
 * between them for up to LFIPC_RETRY_SPIN_NS (a holder on another CPU that is
 * about to let go costs no sleep); then an attempt with check = true before
 * each sleep, the sleeps growing from LFIPC_RETRY_SLEEP0_NS to
 * LFIPC_RETRY_SLEEP_MAX_NS (a holder that lets go after a few microseconds
 * costs tens of microseconds, a long hold at most about one attempt a
 * millisecond), each one cut at dl; and a last attempt with check = true at
 * dl. Signals do not end it (a nanosleep that a handler interrupts is followed
 * by one more attempt). Why a back-off rather than a kernel wait: wait.c,
 * above lfipc__wait_retry.
 * Return: 0 (try returned 1); try's negative return; -EAGAIN (dl is
 * LFIPC_DL_NOW) or -ETIMEDOUT when dl passed first. Concurrency: any thread;
 * touches nothing but what try() touches.
 */
int lfipc__wait_retry(lfipc_try_fn try, void *ctx, lfipc_deadline dl);

/*
 * The bound of a CAS retry loop on a shared word. A peer that rewrites the
 * word without end (buggy or hostile: doc/hostile.md, "CAS retry loops")
 * makes every CAS fail; this bound turns the live-lock into an error.
 * Declare one struct lfipc_cas_bound per loop, zeroed
 * (LFIPC_CAS_BOUND_INIT), and call lfipc__cas_retry() after each failed
 * CAS only, so that the first attempt's success path pays nothing. It
 * counts the failures (a private counter); at every LFIPC_CAS_YIELD-th it
 * yields the CPU (a stopped-then-resumed peer or an oversubscribed
 * machine gets it), and at every LFIPC_CAS_CLOCK-th it reads the clock:
 * the loop may last LFIPC_CAS_BOUND_NS from that first reading, or until
 * dl when dl is an absolute deadline that comes first. Legitimate
 * contention never makes a CAS fail for a second in a row: every failure
 * is another thread's success.
 * Return: 0 retry; -EPROTO the bound passed (the word changed without
 * end); lfipc__deadline_error(dl) (-ETIMEDOUT) dl passed first.
 * LFIPC_DL_NOW and LFIPC_DL_PAST are deadlines that have passed: the
 * first look (the LFIPC_CAS_CLOCK-th failure, no clock read) ends the
 * loop with -EAGAIN / -ETIMEDOUT, so that a NOWAIT call stays one
 * attempt (a thousand failed CAS, never a second of them) and gets the
 * error its API documents. LFIPC_DL_NEVER gets the bound alone.
 */
struct lfipc_cas_bound {
	uint32_t fails; /* failed CAS so far */
	int64_t end;	/* 0 until the first clock reading */
};
#define LFIPC_CAS_BOUND_INIT {0, 0}
#define LFIPC_CAS_YIELD 256u
#define LFIPC_CAS_CLOCK 1024u
/* The same second as LFIPC_SYNC_GRACE_NS (include/lfipc/sync.h). */
#define LFIPC_CAS_BOUND_NS ((int64_t)1000000000)
/* A fast path that has no deadline yet (it runs before the clock is read)
 * gives up after this many failed CAS and takes its slow path, whose loop
 * is bounded by the caller's deadline. */
#define LFIPC_CAS_FAST_TRIES 64u

int lfipc__cas_slow(struct lfipc_cas_bound *b, lfipc_deadline dl);

/* Count one failed CAS of b: true when the bound's slow part
 * (lfipc__cas_slow()) is due, at every LFIPC_CAS_YIELD-th. For a loop
 * that does something of its own there first (the queue's, which makes
 * its deadline only then, and its publication's store under the lock);
 * the others call lfipc__cas_retry(). */
static inline bool lfipc__cas_count(struct lfipc_cas_bound *b)
{
	return __builtin_expect(++b->fails % LFIPC_CAS_YIELD == 0, 0);
}

static inline int lfipc__cas_retry(struct lfipc_cas_bound *b, lfipc_deadline dl)
{
	return lfipc__cas_count(b) ? lfipc__cas_slow(b, dl) : 0;
}

#endif /* LFIPC_INTERNAL_WAIT_H */
