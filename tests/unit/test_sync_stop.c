/* SPDX-License-Identifier: MIT */
/*
 * Stopped peers and lost wake-ups. A process stopped with SIGSTOP is alive
 * (never taken for dead), but it must not make any call outlast its
 * caller's timeout, wherever it stopped: inside a tracked Semaphore's or a
 * Barrier's internal guard, holding a Lock, a Condition's lock, or as the
 * peer of a Pipe. And a Lock waiter that gives up after being woken must
 * pass the wake-up on.
 *
 * White-box (linked with the static library): a child takes an object's
 * internal guard through the internal API and stops itself there, so the
 * "stopped inside" state is reached every time, not by chance. A watchdog
 * process continues it after WATCHDOG_MS, so a call that wrongly waits for
 * the stopped peer returns late (and fails the check) instead of hanging.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lfipc/pipe.h>
#include <lfipc/region.h>
#include <lfipc/sync.h>

#include "common/testhelp.h"
#include "internal/mutex.h"
#include "internal/region.h"
#include "internal/sync.h"
#include "internal/sync_layout.h"

#define REGION_SIZE ((size_t)1 << 20)
#define REAP_MS 30000
#define MS ((int64_t)1000000)
#define WATCHDOG_MS 3000
/* A call honours its timeout when it returns within the timeout plus this
 * (a sleep slice is 10 ms; the rest is scheduling on a loaded machine).
 * A call that waits for the stopped peer takes WATCHDOG_MS or more. */
#define SLACK (1000 * MS)

static lfipc_region *r;

static void setup(void)
{
	cr_assert_eq(lfipc_region_create(NULL, REGION_SIZE, 0, &r), 0);
}

static void teardown(void)
{
	lfipc_region_close(r);
	r = NULL;
}

TestSuite(stop, .init = setup, .fini = teardown, .timeout = 120);

/* ---- a stopped process holding a lock ---------------------------------- */

/* Region offset of the object name's block. */
static uint64_t block_of(const char *name, unsigned type)
{
	uint64_t off, size;

	cr_assert_eq(lfipc__obj_open(r, name, type, &off, &size), 0);
	return off;
}

static int hold_and_stop(void *arg)
{
	lfipc_lock *l;
	int rc;

	if (lfipc__lock_attach(r, *(uint64_t *)arg, &l) != 0)
		return 10;
	rc = lfipc_lock_acquire(l, LFIPC_FOREVER);
	if (rc != 0 && rc != -EOWNERDEAD)
		return 11;
	raise(SIGSTOP); /* stopped inside */
	if (lfipc_lock_release(l) != 0)
		return 12;
	lfipc_lock_close(l);
	return 0;
}

static int continue_later(void *arg)
{
	usleep(WATCHDOG_MS * 1000);
	kill(*(pid_t *)arg, SIGCONT);
	return 0;
}

struct stopped {
	pid_t holder, watchdog;
};

/* Fork a process that takes the lock memory at lock_off and stops while
 * holding it, and a watchdog that continues it after WATCHDOG_MS. */
static struct stopped stop_holding(uint64_t lock_off)
{
	static uint64_t off;
	struct stopped s;
	siginfo_t si;

	off = lock_off;
	s.holder = th_fork(hold_and_stop, &off);
	cr_assert_gt(s.holder, 0);
	memset(&si, 0, sizeof(si));
	cr_assert_eq(waitid(P_PID, s.holder, &si, WSTOPPED | WEXITED), 0);
	cr_assert_eq(si.si_code, CLD_STOPPED, "holder exited: %d",
		     si.si_status);
	s.watchdog = th_fork(continue_later, &s.holder);
	return s;
}

static void resume(struct stopped s)
{
	kill(s.holder, SIGCONT);
	cr_assert_eq(th_reap(s.holder, REAP_MS), 0);
	kill(s.watchdog, SIGKILL);
	th_reap(s.watchdog, REAP_MS);
}

/* Run the call, check it returned want within timeout + SLACK. */
#define HONOURS(call, timeout, want)                                         \
	do {                                                                 \
		int64_t t0_ = th_now_ns(), dt_;                              \
		int rc_ = (call);                                            \
		dt_ = th_now_ns() - t0_;                                     \
		cr_assert_eq(rc_, (want), "%s: %d", #call, rc_);             \
		cr_assert_lt(dt_, (timeout) + SLACK,                         \
			     "%s took %lld ms with a stopped peer", #call,   \
			     (long long)(dt_ / MS));                         \
	} while (0)

Test(stop, tracked_semaphore_calls_honour_their_timeout_past_a_stopped_guard)
{
	lfipc_sem *s;
	struct stopped st;

	cr_assert_eq(
	    lfipc_sem_create_ex(r, "s", 3, LFIPC_SEM_TRACK_HOLDERS, &s), 0);
	cr_assert_eq(lfipc_sem_acquire(s, LFIPC_NOWAIT), 0);
	st = stop_holding(block_of("s", LFIPC_OBJ_SEM) + SEM_GUARD_OFF);
	/* Units are there, but the guard is held by a stopped process. */
	HONOURS(lfipc_sem_acquire(s, LFIPC_NOWAIT), 0, -EAGAIN);
	HONOURS(lfipc_sem_acquire(s, 50 * MS), 50 * MS, -ETIMEDOUT);
	/* A release (no timeout) gives up after the grace, changing
	 * nothing: the unit is still ours. */
	HONOURS(lfipc_sem_release(s), LFIPC_SYNC_GRACE_NS, -EBUSY);
	cr_assert_eq(lfipc_sem_value(s), 2);
	/* Recovery skips it rather than waiting. */
	HONOURS(lfipc_region_recover(r), LFIPC_SLICE_NS, 0);
	resume(st);
	cr_assert_eq(lfipc_sem_release(s), 0, "the unit was still ours");
	cr_assert_eq(lfipc_sem_acquire(s, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_sem_release(s), 0);
	cr_assert_eq(lfipc_sem_value(s), 3);
	lfipc_sem_close(s);
}

Test(stop, barrier_wait_honours_its_timeout_past_a_stopped_guard)
{
	lfipc_barrier *b;
	struct stopped st;

	cr_assert_eq(lfipc_barrier_create(r, "b", 2, &b), 0);
	st = stop_holding(block_of("b", LFIPC_OBJ_BARRIER) + BARRIER_GUARD_OFF);
	HONOURS(lfipc_barrier_wait(b, LFIPC_NOWAIT), 0, -EAGAIN);
	/* A party that timed out breaks the barrier, even one that could
	 * not arrive; abort needs no guard either. */
	cr_assert(lfipc_barrier_broken(b));
	HONOURS(lfipc_barrier_wait(b, 50 * MS), 50 * MS, -ETIMEDOUT);
	HONOURS(lfipc_barrier_abort(b), 0, 0);
	HONOURS(lfipc_region_recover(r), 0, 0);
	/* A reset (no timeout) gives up after the grace, changing nothing. */
	HONOURS(lfipc_barrier_reset(b), LFIPC_SYNC_GRACE_NS, -EBUSY);
	cr_assert(lfipc_barrier_broken(b));
	resume(st);
	cr_assert_eq(lfipc_barrier_reset(b), 0);
	cr_assert(!lfipc_barrier_broken(b));
	lfipc_barrier_close(b);
}

Test(stop, lock_and_rlock_acquire_honour_their_timeout_past_a_stopped_owner)
{
	lfipc_lock *l, *rl;
	struct stopped st;

	cr_assert_eq(lfipc_lock_create(r, "l", false, &l), 0);
	cr_assert_eq(lfipc_lock_create(r, "rl", true, &rl), 0);
	st = stop_holding(block_of("l", LFIPC_OBJ_LOCK));
	HONOURS(lfipc_lock_acquire(l, LFIPC_NOWAIT), 0, -EAGAIN);
	HONOURS(lfipc_lock_acquire(l, 50 * MS), 50 * MS, -ETIMEDOUT);
	resume(st);
	st = stop_holding(block_of("rl", LFIPC_OBJ_LOCK));
	HONOURS(lfipc_lock_acquire(rl, 50 * MS), 50 * MS, -ETIMEDOUT);
	resume(st);
	cr_assert_eq(lfipc_lock_acquire(l, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_lock_release(l), 0);
	lfipc_lock_close(l);
	lfipc_lock_close(rl);
}

static int notify_one(void *arg)
{
	lfipc_cond *c = arg;
	lfipc_lock *l = lfipc_cond_lock(c);
	int rc;

	if (lfipc_lock_acquire(l, 10000 * MS) != 0)
		return 10;
	rc = lfipc_cond_notify(c, 1);
	lfipc_lock_release(l);
	return rc == 1 ? 0 : 11;
}

Test(stop, condition_wait_honours_its_timeout_past_a_stopped_lock_holder)
{
	static uint64_t off;
	lfipc_cond *c;
	lfipc_lock *l;
	struct stopped st;
	siginfo_t si;
	pid_t pid;

	cr_assert_eq(lfipc_cond_create(r, "c", NULL, &c), 0);
	l = lfipc_cond_lock(c);
	cr_assert_eq(lfipc_lock_acquire(l, LFIPC_FOREVER), 0);
	/* A process waits for the lock; once our wait releases it, it takes
	 * it and stops. Our timeout passes and we cannot re-take the lock:
	 * -ENOLCK after the timeout and its grace (1 s: the larger of
	 * the timeout and LFIPC_SYNC_GRACE_NS), without the lock. */
	off = lfipc__lock_off(l);
	st.holder = th_fork(hold_and_stop, &off);
	st.watchdog = th_fork(continue_later, &st.holder);
	HONOURS(lfipc_cond_wait(c, 500 * MS), 500 * MS + LFIPC_SYNC_GRACE_NS,
		-ENOLCK);
	memset(&si, 0, sizeof(si));
	cr_assert_eq(waitid(P_PID, st.holder, &si, WSTOPPED | WEXITED), 0);
	cr_assert_eq(si.si_code, CLD_STOPPED);
	cr_assert(!lfipc__lock_held(l));
	cr_assert_eq(lfipc_lock_release(l), -EPERM);
	resume(st);
	/* The slot it left is not counted by a notify: notify(1) reaches
	 * the live waiter that comes next. */
	cr_assert_eq(lfipc_lock_acquire(l, LFIPC_FOREVER), 0);
	pid = th_fork(notify_one, c);
	cr_assert_eq(lfipc_cond_wait(c, 10000 * MS), 0);
	cr_assert_eq(lfipc_lock_release(l), 0);
	cr_assert_eq(th_reap(pid, REAP_MS), 0);
	lfipc_cond_close(c);
}

/* ---- a stopped pipe peer ------------------------------------------------ */

Test(stop, pipe_calls_honour_their_timeout_with_a_stopped_peer)
{
	lfipc_conn *e0, *e1;
	uint8_t buf[256] = {0};
	size_t len;
	pid_t pid;
	siginfo_t si;

	cr_assert_eq(lfipc_pipe_create(r, "p", 256, true, &e0, &e1), 0);
	/* The peer claims end 1, then stops (alive, holding it). */
	pid = fork();
	if (pid == 0) {
		lfipc_conn_close(e0);
		_exit(lfipc_conn_poll(e1, LFIPC_NOWAIT) == 0 &&
			      raise(SIGSTOP) == 0
			  ? 0
			  : 1);
	}
	cr_assert_eq(waitid(P_PID, pid, &si, WSTOPPED | WEXITED), 0);
	cr_assert_eq(si.si_code, CLD_STOPPED);
	HONOURS(lfipc_conn_recv(e0, buf, sizeof(buf), &len, LFIPC_NOWAIT), 0,
		-EAGAIN);
	HONOURS(lfipc_conn_recv(e0, buf, sizeof(buf), &len, 50 * MS), 50 * MS,
		-ETIMEDOUT);
	HONOURS(lfipc_conn_poll(e0, 50 * MS), 50 * MS, 0);
	/* Fill the ring, then a send that fits must wait, and time out. */
	while (lfipc_conn_send(e0, buf, 64, LFIPC_NOWAIT) == 0)
		;
	HONOURS(lfipc_conn_send(e0, buf, 64, 50 * MS), 50 * MS, -ETIMEDOUT);
	kill(pid, SIGCONT);
	cr_assert_eq(th_reap(pid, REAP_MS), 0);
	lfipc_conn_close(e0);
	lfipc_conn_close(e1);
}

/* Messages larger than the ring stream through it; a call in the middle
 * of one honours its timeout too: the message is then given up and never
 * delivered in part, and the next message gets through. */
#define PRING 4096
#define BIGMSG (3 * PRING)

static lfipc_conn *p0, *p1;
static uint8_t big[BIGMSG], got[BIGMSG];

/* A stopped peer process for end 1: claim it, stop, then run fn. */
static pid_t peer_stopped(int (*fn)(void))
{
	siginfo_t si;
	pid_t pid = fork();

	if (pid == 0) {
		lfipc_conn_close(p0);
		if (lfipc_conn_poll(p1, LFIPC_NOWAIT) != 0)
			_exit(30);
		raise(SIGSTOP);
		_exit(fn());
	}
	cr_assert_gt(pid, 0);
	cr_assert_eq(waitid(P_PID, pid, &si, WSTOPPED | WEXITED), 0);
	cr_assert_eq(si.si_code, CLD_STOPPED);
	return pid;
}

/* The next message must be the small one (the big one was given up). */
static int expect_small(void)
{
	uint64_t v = 0;
	size_t len;
	int rc = lfipc_conn_recv(p1, got, sizeof(got), &len, 20000 * MS);

	if (rc != 0)
		return 40 + (-rc % 50);
	memcpy(&v, got, sizeof(v));
	return len == sizeof(v) && v == 0x5eedull ? 0 : 31;
}

Test(stop, a_send_larger_than_the_ring_honours_its_timeout_and_is_given_up)
{
	uint64_t v = 0x5eedull;
	pid_t pid, wd;

	cr_assert_eq(lfipc_pipe_create(r, "p", PRING, true, &p0, &p1), 0);
	th_fill(big, sizeof(big), 7);
	pid = peer_stopped(expect_small);
	wd = th_fork(continue_later, &pid);
	/* NOWAIT cannot stream: nothing is written. */
	HONOURS(lfipc_conn_send(p0, big, sizeof(big), LFIPC_NOWAIT), 0,
		-EAGAIN);
	/* A timed send fills the ring, then its timeout passes. */
	HONOURS(lfipc_conn_send(p0, big, sizeof(big), 50 * MS), 50 * MS,
		-ETIMEDOUT);
	kill(pid, SIGCONT);
	cr_assert_eq(lfipc_conn_send(p0, &v, sizeof(v), 20000 * MS), 0);
	cr_assert_eq(th_reap(pid, REAP_MS), 0, "the receiver got something else");
	kill(wd, SIGKILL);
	th_reap(wd, REAP_MS);
	lfipc_conn_close(p0);
	lfipc_conn_close(p1);
}

/* Send a big message, then a small one. */
static int send_big_then_small(void *arg)
{
	uint64_t v = 0x5eedull;

	(void)arg;
	lfipc_conn_close(p1);
	if (lfipc_conn_send(p0, big, sizeof(big), LFIPC_FOREVER) != 0)
		return 1;
	return lfipc_conn_send(p0, &v, sizeof(v), LFIPC_FOREVER) == 0 ? 0 : 2;
}

Test(stop, a_receive_larger_than_the_ring_honours_its_timeout_and_drops_it)
{
	struct stopped st;
	siginfo_t si;
	uint64_t v;
	size_t len;

	cr_assert_eq(lfipc_pipe_create(r, "p", PRING, true, &p0, &p1), 0);
	th_fill(big, sizeof(big), 9);
	cr_assert_eq(lfipc_conn_poll(p1, LFIPC_NOWAIT), 0); /* claim end 1 */
	st.holder = th_fork(send_big_then_small, NULL);
	/* The writer fills the ring with the start of the big message and
	 * waits for room; stop it there. */
	while (lfipc_conn_poll(p1, LFIPC_NOWAIT) != 1)
		usleep(1000);
	usleep(50000);
	kill(st.holder, SIGSTOP);
	cr_assert_eq(waitid(P_PID, st.holder, &si, WSTOPPED | WEXITED), 0);
	cr_assert_eq(si.si_code, CLD_STOPPED);
	st.watchdog = th_fork(continue_later, &st.holder);
	HONOURS(lfipc_conn_recv(p1, got, sizeof(got), &len, 50 * MS), 50 * MS,
		-ETIMEDOUT);
	kill(st.holder, SIGCONT);
	/* The rest of the big message is dropped; the small one arrives. */
	cr_assert_eq(lfipc_conn_recv(p1, got, sizeof(got), &len, 20000 * MS),
		     0);
	cr_assert_eq(len, sizeof(v));
	memcpy(&v, got, sizeof(v));
	cr_assert_eq(v, 0x5eedull);
	resume(st);
	lfipc_conn_close(p0);
	lfipc_conn_close(p1);
}

/* ---- Event: no owner, nothing to wait for but the flag ------------------ */

static int set_then_stop(void *arg)
{
	raise(SIGSTOP);
	return lfipc_event_set(arg);
}

Test(stop, event_wait_honours_its_timeout_while_the_setter_is_stopped)
{
	lfipc_event *e;
	pid_t pid;
	siginfo_t si;

	cr_assert_eq(lfipc_event_create(r, "e", &e), 0);
	pid = th_fork(set_then_stop, e);
	cr_assert_eq(waitid(P_PID, pid, &si, WSTOPPED | WEXITED), 0);
	HONOURS(lfipc_event_wait(e, 50 * MS), 50 * MS, -ETIMEDOUT);
	kill(pid, SIGCONT);
	cr_assert_eq(lfipc_event_wait(e, 10000 * MS), 0);
	cr_assert_eq(th_reap(pid, REAP_MS), 0);
	lfipc_event_close(e);
}

/* ---- a Lock waiter that gives up must pass its wake-up on --------------- */

/* Is pid blocked in futex(2) on addr, or in futex_waitv(2) (whose first
 * argument is its vector: the caller knows pid waits on nothing else),
 * per /proc/pid/syscall? */
static bool in_futex_on(pid_t pid, const void *addr)
{
	char path[64], line[256], want[64], wantv[16];
	FILE *f;
	bool yes = false;

	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	snprintf(want, sizeof(want), "%d %p ", SYS_futex, addr);
	snprintf(wantv, sizeof(wantv), "%d ", 449 /* SYS_futex_waitv */);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (fgets(line, sizeof(line), f))
		yes = strncmp(line, want, strlen(want)) == 0 ||
		      strncmp(line, wantv, strlen(wantv)) == 0;
	fclose(f);
	return yes;
}

static int acquire_timed(void *arg)
{
	int rc = lfipc_lock_acquire(arg, 300 * MS);

	return rc == -ETIMEDOUT ? 0 : 20 + (rc < 0 ? -rc : rc) % 100;
}

/*
 * W1 sleeps on the lock forever (stood for by its count in the lock's wait
 * queue, so the kernel's wake-up cannot go to it); W2 sleeps with a
 * timeout and is the one the release wakes. The owner releases and at once
 * re-takes the lock on the fast path. W2 then finds its deadline passed
 * and the lock held: it gives up. The owner's next release must still
 * wake W1 (findings/sync/lock_lost_wakeup_timeout.c): with the wait layer
 * a release wakes whenever the queue counts a sleeper, so W1's count must
 * survive W2's departure, and W2 passes on the wake-up it consumed. To
 * make the race certain, W2 is stopped while asleep in the futex and
 * continued after the release, the re-take and its deadline.
 */
Test(stop, a_lock_waiter_giving_up_after_a_wake_passes_the_wake_on)
{
	struct lock_shm *ls;
	lfipc_lock *l;
	pid_t w2 = -1;
	siginfo_t si;
	int64_t end;
	uint32_t v;

	cr_assert_eq(lfipc_lock_create(r, "l", false, &l), 0);
	ls = lfipc__at(r, block_of("l", LFIPC_OBJ_LOCK));
	cr_assert_eq(lfipc_lock_acquire(l, LFIPC_FOREVER), 0);
	atomic_fetch_add(&ls->wq.waiters, 1); /* W1 */
	end = th_now_ns() + 20000 * MS;
	for (;;) {
		cr_assert_lt(th_now_ns(), end, "W2 never seen asleep");
		if (w2 < 0)
			w2 = th_fork(acquire_timed, l);
		if (atomic_load(&ls->wq.waiters) < 2 ||
		    !in_futex_on(w2, &ls->word)) {
			usleep(100);
			continue;
		}
		kill(w2, SIGSTOP);
		cr_assert_eq(waitid(P_PID, w2, &si, WSTOPPED | WEXITED), 0);
		if (si.si_code == CLD_STOPPED && in_futex_on(w2, &ls->word))
			break;
		/* it had just left the futex (a slice ended), or it exited:
		 * start again */
		kill(w2, SIGKILL);
		th_reap(w2, REAP_MS);
		w2 = -1;
		cr_assert_eq(lfipc_lock_release(l), 0);
		cr_assert_eq(lfipc_lock_acquire(l, LFIPC_FOREVER), 0);
		atomic_store(&ls->wq.waiters, 1);
	}
	cr_assert_eq(lfipc_lock_release(l), 0); /* counted: wakes one */
	cr_assert_eq(lfipc_lock_acquire(l, LFIPC_NOWAIT), 0); /* fast path */
	usleep(400 * 1000); /* W2's deadline passes */
	kill(w2, SIGCONT);
	cr_assert_eq(th_reap(w2, REAP_MS), 0, "W2 did not time out");
	/* W1 still sleeps: the queue must still count it (and only it), or
	 * the next release would not wake it. */
	v = (uint32_t)atomic_load(&ls->wq.waiters);
	cr_assert_eq(v, 1, "W1 is left asleep uncounted (%u)", v);
	atomic_fetch_sub(&ls->wq.waiters, 1);
	cr_assert_eq(lfipc_lock_release(l), 0);
	lfipc_lock_close(l);
}
