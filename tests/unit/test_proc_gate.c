/* SPDX-License-Identifier: MIT */
/*
 * test_proc_gate.c - a fork child's registration waiting at the region's
 * gate (lib/proc.c, claim_slot): a timed or NOWAIT first call gives up at
 * its own deadline while a stopped process holds the gate, an untimed one
 * at the default bound (-EBUSY), a gate held for a moment is taken as
 * soon as it is let go, and a holder's death frees it; a question that
 * needs no token (lfipc_lock_owned) does not wait there. Part of the
 * test_proc program (its own suite).
 *
 * The holder takes the gate as a remover does (an OFD write lock on the
 * gate byte), through a description of its own.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lfipc/queue.h>
#include <lfipc/region.h>
#include <lfipc/sync.h>

#include "common/testhelp.h"
#include "internal/layout.h"
#include "internal/region.h"

#define GSIZE ((size_t)1 << 20)
#define REAP_MS 10000
#define MS ((int64_t)1000000)

static char gname[64];
static lfipc_region *gr;
static lfipc_queue *gq;
static pid_t holder_pid; /* killed and reaped by gteardown if still there */

static void gsetup(void)
{
	th_name(gname, sizeof(gname), "gate");
	cr_assert_eq(lfipc_region_create(gname, GSIZE, 0, &gr), 0);
	cr_assert_eq(lfipc_queue_create(gr, "q", 4, 8, 0, &gq), 0);
}

static void gteardown(void)
{
	/* A failed assertion must not leave a stopped holder behind (it
	 * would hold the test runner's output open for good). */
	if (holder_pid > 0) {
		kill(holder_pid, SIGKILL);
		th_reap(holder_pid, REAP_MS);
		holder_pid = 0;
	}
	lfipc_queue_close(gq);
	gq = NULL;
	lfipc_region_close(gr);
	gr = NULL;
	lfipc_region_unlink(gname);
}

TestSuite(gate, .init = gsetup, .fini = gteardown, .timeout = 60);

/* The holder: takes the gate, says 'g' on up, then either holds it until
 * killed (hold_us < 0) or waits for a byte on go and lets go hold_us
 * later (exit closes its description: the kernel drops the lock), having
 * written the time (CLOCK_MONOTONIC, the same in every process) on up
 * just before. */
struct holder {
	int up[2], go[2];
	int hold_us;
};

static int hold_gate(void *arg)
{
	struct holder *h = arg;
	char path[128], c;
	struct flock fl;
	int64_t t;
	int fd;

	snprintf(path, sizeof(path), "/dev/shm%s", gname);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 1;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = LFIPC_GATE_BYTE;
	fl.l_len = 1;
	if (fcntl(fd, F_OFD_SETLK, &fl) != 0)
		return 2;
	if (write(h->up[1], "g", 1) != 1)
		return 3;
	if (h->hold_us < 0)
		for (;;)
			pause();
	if (read(h->go[0], &c, 1) != 1)
		return 4;
	usleep((useconds_t)h->hold_us);
	t = th_now_ns();
	return th_write_all(h->up[1], &t, sizeof(t)) == 0 ? 0 : 5;
}

static pid_t start_holder(struct holder *h, int hold_us)
{
	pid_t pid;
	char c;

	h->hold_us = hold_us;
	cr_assert_eq(pipe(h->up), 0);
	cr_assert_eq(pipe(h->go), 0);
	pid = th_fork(hold_gate, h);
	cr_assert_gt(pid, 0);
	holder_pid = pid;
	cr_assert_eq(read(h->up[0], &c, 1), 1, "the holder has the gate");
	return pid;
}

static void close_holder(struct holder *h)
{
	close(h->up[0]);
	close(h->up[1]);
	close(h->go[0]);
	close(h->go[1]);
}

/* What a registrant child reports: each call's result, duration and end
 * (CLOCK_MONOTONIC). */
struct report {
	int rc[3];
	int64_t ns[3], end[3];
};

/* Run fn in a fork child (its first lfipc call registers it) and read
 * back its report. */
static pid_t child_report(int (*fn)(void *), int *rd)
{
	int fds[2];
	pid_t pid;

	cr_assert_eq(pipe(fds), 0);
	pid = th_fork(fn, &fds[1]);
	cr_assert_gt(pid, 0);
	close(fds[1]);
	*rd = fds[0];
	return pid;
}

static int send_report(int fd, const struct report *rp)
{
	return th_write_all(fd, rp, sizeof(*rp)) == 0 ? 0 : 9;
}

/* A first call with a 20 ms timeout, then one with LFIPC_NOWAIT, then an
 * untimed one (lfipc_queue_clear). */
static int first_calls(void *arg)
{
	struct report rp = {{0}, {0}, {0}};
	char buf[8];
	int64_t t;

	t = th_now_ns();
	rp.rc[0] = lfipc_queue_get(gq, buf, sizeof(buf), NULL, 20 * MS);
	rp.ns[0] = th_now_ns() - t;
	t = th_now_ns();
	rp.rc[1] = lfipc_queue_get(gq, buf, sizeof(buf), NULL, LFIPC_NOWAIT);
	rp.ns[1] = th_now_ns() - t;
	t = th_now_ns();
	rp.rc[2] = (int)lfipc_queue_clear(gq);
	rp.ns[2] = th_now_ns() - t;
	return send_report(*(int *)arg, &rp);
}

/*
 * A stopped process holds the gate (a remover SIGSTOPped while it decides,
 * or a debugger): a child's first call registers it, and the wait for the
 * gate is part of the call: a 20 ms get returns -ETIMEDOUT near 20 ms, a
 * NOWAIT get -EAGAIN at once (on main both took the 1 s gate bound and
 * returned -EBUSY), an untimed call -EBUSY at the default bound.
 */
Test(gate, a_child_first_call_gives_up_at_its_own_deadline_while_a_stopped_process_holds_the_gate)
{
	struct holder h;
	struct report rp;
	pid_t hp, cp;
	int rd;

	hp = start_holder(&h, -1);
	cr_assert_eq(kill(hp, SIGSTOP), 0);
	cp = child_report(first_calls, &rd);
	cr_assert_eq(th_read_all(rd, &rp, sizeof(rp)), 0);
	close(rd);
	cr_assert_eq(th_reap(cp, REAP_MS), 0);
	cr_log_info("timed %d in %.1f ms, nowait %d in %.3f ms, untimed %d "
		    "in %.1f ms",
		    rp.rc[0], rp.ns[0] / 1e6, rp.rc[1], rp.ns[1] / 1e6,
		    rp.rc[2], rp.ns[2] / 1e6);
	cr_assert_eq(rp.rc[0], -ETIMEDOUT);
	cr_assert_geq(rp.ns[0], 19 * MS, "it waited until its deadline");
	cr_assert_lt(rp.ns[0], 500 * MS, "and no longer (deadline: 20 ms)");
	cr_assert_eq(rp.rc[1], -EAGAIN);
	cr_assert_lt(rp.ns[1], 500 * MS, "LFIPC_NOWAIT does not sleep");
	cr_assert_eq(rp.rc[2], -EBUSY, "an untimed call: the default bound");
	cr_assert_geq(rp.ns[2], 900 * MS);
	cr_assert_lt(rp.ns[2], 5000 * MS);
	kill(hp, SIGKILL);
	cr_assert_eq(th_reap(hp, REAP_MS), 128 + SIGKILL);
	holder_pid = 0;
	close_holder(&h);
}

/* The holder of the running test, for the children that talk to it. */
static struct holder *cur_holder;

/* An untimed registration (lfipc__self) after telling the holder to go
 * on (it lets go 2 ms later). */
static int untimed_register(void *arg)
{
	struct report rp = {{0}, {0}, {0}};
	uint32_t tok;
	int64_t t;

	if (write(cur_holder->go[1], "x", 1) != 1)
		return 8;
	t = th_now_ns();
	rp.rc[0] = lfipc__self(gr, &tok);
	rp.end[0] = th_now_ns();
	rp.ns[0] = rp.end[0] - t;
	return send_report(*(int *)arg, &rp);
}

/*
 * A live holder lets go of the gate 2 ms after the registrant started to
 * wait for it: the registrant (untimed: it could wait a second) gets it as
 * soon as it is free, within the back-off's longest sleep (1 ms), and
 * registers. Its duration is logged, not asserted (a loaded machine
 * stretches it); that it waited for the release is asserted (it ended
 * after the holder's last look at the clock).
 */
Test(gate, a_gate_held_for_a_moment_is_taken_when_let_go)
{
	struct holder h;
	struct report rp;
	int64_t t_rel;
	pid_t hp, cp;
	int rd;

	hp = start_holder(&h, 2000);
	cur_holder = &h;
	cp = child_report(untimed_register, &rd);
	cr_assert_eq(th_read_all(rd, &rp, sizeof(rp)), 0);
	close(rd);
	cr_assert_eq(th_reap(cp, REAP_MS), 0);
	cr_assert_eq(th_reap(hp, REAP_MS), 0);
	holder_pid = 0;
	cr_assert_eq(th_read_all(h.up[0], &t_rel, sizeof(t_rel)), 0);
	cr_log_info("registered after %.3f ms, %.3f ms after the holder let "
		    "go",
		    rp.ns[0] / 1e6, (rp.end[0] - t_rel) / 1e6);
	cr_assert_eq(rp.rc[0], 0);
	cr_assert_geq(rp.end[0], t_rel, "it waited for the holder");
	close_holder(&h);
}

/* A first call with get_timeout on a queue that holds a message, after
 * saying so on the holder's go pipe if there is one to tell (cur_holder
 * NULL: nobody to tell). */
static int64_t get_timeout;

static int first_get(void *arg)
{
	struct report rp = {{0}, {0}, {0}};
	char buf[8];
	int64_t t;

	if (cur_holder && write(cur_holder->go[1], "x", 1) != 1)
		return 8;
	t = th_now_ns();
	rp.rc[0] = lfipc_queue_get(gq, buf, sizeof(buf), NULL, get_timeout);
	rp.end[0] = th_now_ns();
	rp.ns[0] = rp.end[0] - t;
	rp.rc[1] = rp.rc[0] == 0 && memcmp(buf, "m", 2) == 0 ? 0 : -1;
	return send_report(*(int *)arg, &rp);
}

/*
 * The holder is SIGKILLed while a child's first call waits for the gate:
 * the kernel drops its OFD lock, and the child registers and gets its
 * message, long before its 10 s timeout.
 */
Test(gate, a_holder_killed_while_holding_the_gate_frees_it)
{
	struct holder h;
	struct report rp;
	int64_t t_kill;
	pid_t hp, cp;
	int rd;
	char c;

	cr_assert_eq(lfipc_queue_put(gq, "m", 2, LFIPC_NOWAIT), 0);
	hp = start_holder(&h, -1);
	cur_holder = &h;
	get_timeout = 10000 * MS;
	cp = child_report(first_get, &rd);
	cr_assert_eq(read(h.go[0], &c, 1), 1, "the child starts its get");
	usleep(50000); /* let the child wait at the gate */
	t_kill = th_now_ns();
	kill(hp, SIGKILL);
	cr_assert_eq(th_reap(hp, REAP_MS), 128 + SIGKILL);
	holder_pid = 0;
	cr_assert_eq(th_read_all(rd, &rp, sizeof(rp)), 0);
	close(rd);
	cr_assert_eq(th_reap(cp, REAP_MS), 0);
	cr_log_info("got after %.1f ms", rp.ns[0] / 1e6);
	cr_assert_eq(rp.rc[0], 0);
	cr_assert_eq(rp.rc[1], 0, "the message");
	cr_assert_geq(rp.end[0], t_kill, "it waited for the holder");
	cr_assert_lt(rp.ns[0], 9000 * MS, "the death ended the wait");
	close_holder(&h);
}

/*
 * LFIPC_FOREVER means what it says at the gate too: a child's first call
 * waits as long as a stopped holder keeps the gate (here 1.5 s, past the
 * untimed bound of 1 s, where it used to fail with -EBUSY), and completes
 * once the holder is gone.
 */
Test(gate, a_child_first_call_with_forever_outwaits_a_stopped_holder)
{
	struct holder h;
	struct report rp;
	int64_t t_kill;
	pid_t hp, cp;
	int rd;

	cr_assert_eq(lfipc_queue_put(gq, "m", 2, LFIPC_NOWAIT), 0);
	hp = start_holder(&h, -1);
	cr_assert_eq(kill(hp, SIGSTOP), 0);
	cur_holder = NULL;
	get_timeout = LFIPC_FOREVER;
	cp = child_report(first_get, &rd);
	usleep(1500000);
	t_kill = th_now_ns();
	kill(hp, SIGKILL);
	cr_assert_eq(th_reap(hp, REAP_MS), 128 + SIGKILL);
	holder_pid = 0;
	cr_assert_eq(th_read_all(rd, &rp, sizeof(rp)), 0);
	close(rd);
	cr_assert_eq(th_reap(cp, REAP_MS), 0);
	cr_log_info("got %d after %.1f ms", rp.rc[0], rp.ns[0] / 1e6);
	cr_assert_eq(rp.rc[0], 0, "LFIPC_FOREVER gave up (%d)", rp.rc[0]);
	cr_assert_eq(rp.rc[1], 0, "the message");
	cr_assert_geq(rp.end[0], t_kill, "it waited for the holder");
	close_holder(&h);
}

/* The lock of the running test, for the child that asks about it. */
static lfipc_lock *glock;

/* lfipc_lock_owned() on glock (held by the parent) as the child's first
 * call. */
static int first_owned(void *arg)
{
	struct report rp = {{0}, {0}, {0}};
	int64_t t;

	t = th_now_ns();
	rp.rc[0] = lfipc_lock_owned(glock);
	rp.ns[0] = th_now_ns() - t;
	return send_report(*(int *)arg, &rp);
}

/*
 * Found by a hostile review: lfipc_lock_owned() ("does not block") asked
 * for the process's token, which in a fork child that had not registered
 * yet is a registration: a participant slot taken by a question, and a
 * wait at the gate, 1 s behind a stopped holder. A fork child holds no
 * lock (its set of held locks is emptied at fork): the answer is false,
 * at once, and the parent, which holds the lock, still owns it.
 */
Test(gate, lock_owned_in_a_child_does_not_wait_at_the_gate)
{
	struct holder h;
	struct report rp;
	pid_t hp, cp;
	int rd;

	cr_assert_eq(lfipc_lock_create(gr, "l", true, &glock), 0);
	cr_assert_eq(lfipc_lock_acquire(glock, LFIPC_NOWAIT), 0);
	hp = start_holder(&h, -1);
	cr_assert_eq(kill(hp, SIGSTOP), 0);
	cp = child_report(first_owned, &rd);
	cr_assert_eq(th_read_all(rd, &rp, sizeof(rp)), 0);
	close(rd);
	cr_assert_eq(th_reap(cp, REAP_MS), 0);
	cr_log_info("owned %d in %.3f ms", rp.rc[0], rp.ns[0] / 1e6);
	cr_assert_eq(rp.rc[0], 0, "a fork child holds no lock");
	cr_assert_lt(rp.ns[0], 200 * MS, "it waited at the gate");
	cr_assert(lfipc_lock_owned(glock), "the parent holds it");
	kill(hp, SIGKILL);
	cr_assert_eq(th_reap(hp, REAP_MS), 128 + SIGKILL);
	holder_pid = 0;
	close_holder(&h);
	cr_assert_eq(lfipc_lock_release(glock), 0);
	lfipc_lock_close(glock);
	glock = NULL;
}
