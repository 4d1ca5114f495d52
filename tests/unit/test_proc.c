/* SPDX-License-Identifier: MIT */
/*
 * test_proc.c - the participant registry: registration, fork children,
 * liveness of SIGKILLed participants (zombie, reaped, PID reused), slot
 * reuse, and the region lock taken over from a dead holder.
 *
 * White-box: links the library statically (see mk/region.am).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lfipc/region.h>

#include "common/casfail.h"
#include "common/heapcheck.h"
#include "common/testhelp.h"
#include "internal/mutex.h"
#include "internal/proc.h"
#include "internal/region.h"

#define RSIZE ((size_t)1 << 20)

static char name[64];
static lfipc_region *r;

static void setup(void)
{
	th_name(name, sizeof(name), "proc");
	cr_assert_eq(lfipc_region_create(name, RSIZE, 0, &r), 0);
}

static void teardown(void)
{
	lfipc_region_close(r);
	r = NULL;
	lfipc_region_unlink(name);
}

TestSuite(proc, .init = setup, .fini = teardown, .timeout = 60);

static unsigned participants(lfipc_region *rg)
{
	lfipc_region_info info;

	cr_assert_eq(lfipc_region_stats(rg, &info), 0);
	return info.participants;
}

static uint32_t my_token(lfipc_region *rg)
{
	uint32_t t;

	cr_assert_eq(lfipc__self(rg, &t), 0);
	return t;
}

static uint32_t token_slot(uint32_t t)
{
	return (t >> LFIPC_TOKEN_GEN_BITS) - 1;
}

/*
 * A forked child that registers (its first operation), sends its token on
 * a pipe and then waits until *ctl is closed (or it is killed).
 */
static pid_t registered_child(lfipc_region *rg, uint32_t *tok, int *ctl)
{
	int up[2], down[2];
	pid_t pid;

	cr_assert_eq(pipe(up), 0);
	cr_assert_eq(pipe(down), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		uint32_t t;
		char c;

		close(up[0]);
		close(down[1]);
		if (lfipc__self(rg, &t) != 0)
			_exit(1);
		if (th_write_all(up[1], &t, sizeof(t)) != 0)
			_exit(2);
		while (read(down[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	cr_assert_eq(th_read_all(up[0], tok, sizeof(*tok)), 0);
	close(up[0]);
	*ctl = down[1];
	return pid;
}

Test(proc, creator_is_one_participant)
{
	cr_assert_eq(participants(r), 1);
	cr_assert(lfipc__token_alive(r, my_token(r)));
}

Test(proc, all_threads_of_a_process_share_one_token)
{
	uint32_t t0 = my_token(r), t1 = 0;
	pthread_t th;

	cr_assert_eq(
	    pthread_create(&th, NULL, (void *(*)(void *))(void *)my_token, r),
	    0);
	pthread_join(th, NULL);
	cr_assert_eq(lfipc__self(r, &t1), 0);
	cr_assert_eq(t0, t1);
	cr_assert_eq(participants(r), 1);
}

Test(proc, malformed_or_stale_tokens_are_dead)
{
	uint32_t t = my_token(r);

	cr_assert_not(lfipc__token_alive(r, 0));
	cr_assert_not(lfipc__token_alive(r, t | 0x40000000u));
	cr_assert_not(lfipc__token_alive(r, t | 0x80000000u));
	/* slot index past the table */
	cr_assert_not(lfipc__token_alive(
	    r, ((LFIPC_PROC_SLOTS + 1) << LFIPC_TOKEN_GEN_BITS) | 1u));
	/* our slot, an older generation */
	cr_assert_not(lfipc__token_alive(r, t - 2));
	cr_assert_not(lfipc__token_alive(r, t + 2));
	cr_assert(lfipc__token_alive(r, t));
}

Test(proc, fork_child_registers_with_its_own_token)
{
	uint32_t tp = my_token(r), tc;
	int ctl;
	pid_t pid = registered_child(r, &tc, &ctl);

	cr_assert_neq(tc, 0);
	cr_assert_neq(tc, tp);
	cr_assert(lfipc__token_alive(r, tc));
	cr_assert(lfipc__token_alive(r, tp));
	cr_assert_eq(participants(r), 2);
	close(ctl); /* the child exits without closing the region */
	cr_assert_eq(th_reap(pid, 10000), 0);
	cr_assert_not(lfipc__token_alive(r, tc));
	cr_assert(lfipc__token_alive(r, tp), "parent's lock went with child");
	cr_assert_eq(participants(r), 1);
	cr_assert_eq(my_token(r), tp);
}

Test(proc, fork_child_closing_the_region_leaves_the_parent_registered)
{
	uint32_t tp = my_token(r);
	uint64_t off;
	pid_t pid;

	/* one child closes without ever registering, one after registering */
	for (int registered = 0; registered < 2; registered++) {
		pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			uint32_t t;

			if (registered && lfipc__self(r, &t) != 0)
				_exit(1);
			lfipc_region_close(r);
			_exit(0);
		}
		cr_assert_eq(th_reap(pid, 10000), 0);
		cr_assert(lfipc__token_alive(r, tp));
		cr_assert_eq(participants(r), 1);
	}
	/* the region lock still works for the parent */
	cr_assert_eq(lfipc__obj_create(r, "after", LFIPC_OBJ_EVENT, 64, 0, NULL,
				       NULL, &off),
		     0);
}

Test(proc, sigkilled_participant_is_dead_while_still_a_zombie)
{
	uint32_t tc;
	int ctl;
	pid_t pid = registered_child(r, &tc, &ctl);
	siginfo_t si;

	cr_assert(lfipc__token_alive(r, tc));
	cr_assert_eq(participants(r), 2);
	cr_assert_eq(kill(pid, SIGKILL), 0);
	/* wait for it to die, but leave it unreaped */
	memset(&si, 0, sizeof(si));
	cr_assert_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	cr_assert_eq(si.si_pid, pid);
	cr_assert_not(lfipc__token_alive(r, tc), "zombie counted as alive");
	cr_assert_eq(participants(r), 1);
	cr_assert_eq(th_reap(pid, 10000), 128 + SIGKILL);
	close(ctl);
	cr_assert_not(lfipc__token_alive(r, tc));
}

/* ---- PID reuse
 * ---------------------------------------------------------------- */

/*
 * Start a process whose PID is exactly want (clone3 with set_tid, which
 * needs CAP_SYS_ADMIN over the PID namespace; else steer
 * /proc/sys/kernel/ns_last_pid). If argv is not NULL the child execs it
 * with stdin/stdout on the given fds, else it just pauses.
 * Return: the pid (== want), or -1 when the machine refuses.
 */
static pid_t spawn_with_pid(pid_t want, char *const argv[], int in, int out)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		pid_t pid;

		if (attempt == 0) {
			struct clone_args ca;

			memset(&ca, 0, sizeof(ca));
			ca.exit_signal = SIGCHLD;
			ca.set_tid = (uint64_t)(uintptr_t)&want;
			ca.set_tid_size = 1;
			pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
		} else {
			int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
			char buf[32];
			int n;

			if (fd < 0)
				return -1;
			n = snprintf(buf, sizeof(buf), "%d", (int)want - 1);
			if (write(fd, buf, (size_t)n) != n) {
				close(fd);
				return -1;
			}
			close(fd);
			pid = fork();
		}
		if (pid == 0) {
			/* raw child: only async-signal-safe system calls */
			if (argv) {
				dup2(in, 0);
				dup2(out, 1);
				syscall(SYS_execve, argv[0], argv, environ);
			} else {
				for (;;)
					syscall(SYS_pause);
			}
			syscall(SYS_exit_group, 99);
		}
		if (pid == want)
			return pid;
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
	}
	return -1;
}

Test(proc, sigkilled_participant_stays_dead_after_its_pid_is_reused)
{
	uint32_t tc, tn;
	int ctl, in[2], out[2];
	pid_t pid = registered_child(r, &tc, &ctl), again;
	char path[4096], line[64];
	char *argv[] = {path, (char *)"register", name, NULL};
	int npid;
	FILE *f;

	cr_assert_eq(kill(pid, SIGKILL), 0);
	cr_assert_eq(th_reap(pid, 10000), 128 + SIGKILL);
	close(ctl);

	/* 1: a process that reuses the PID but never touches the region */
	again = spawn_with_pid(pid, NULL, -1, -1);
	if (again < 0) {
		cr_log_warn("this machine refuses to hand out a chosen PID "
			    "(clone3 set_tid and ns_last_pid): PID reuse "
			    "not exercised; zombie detection is tested in "
			    "sigkilled_participant_is_dead_while_still_a_"
			    "zombie");
		cr_assert_not(lfipc__token_alive(r, tc));
		return;
	}
	cr_assert_not(lfipc__token_alive(r, tc), "fooled by PID reuse");
	cr_assert_eq(participants(r), 1);
	kill(again, SIGKILL);
	cr_assert_eq(th_reap(again, 10000), 128 + SIGKILL);

	/* 2: a second participant killed, then a process with its PID that
	 * registers (and lands in the dead one's slot: a registrant takes a
	 * dead slot that names its own pid before any free one, proc.c) */
	pid = registered_child(r, &tc, &ctl);
	cr_assert_eq(kill(pid, SIGKILL), 0);
	cr_assert_eq(th_reap(pid, 10000), 128 + SIGKILL);
	close(ctl);
	th_helper_path(path, sizeof(path), "region_peer");
	cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	again = spawn_with_pid(pid, argv, in[0], out[1]);
	cr_assert_eq(again, pid);
	close(in[0]);
	close(out[1]);
	f = fdopen(out[0], "r");
	cr_assert_not_null(fgets(line, sizeof(line), f));
	cr_assert_eq(sscanf(line, "%d %u", &npid, &tn), 2);
	cr_assert_eq(npid, pid);
	cr_assert_eq(token_slot(tn), token_slot(tc), "slot not reused");
	cr_assert_neq(tn, tc);
	cr_assert(lfipc__token_alive(r, tn));
	cr_assert_not(lfipc__token_alive(r, tc), "fooled by PID reuse");
	cr_assert_eq(participants(r), 2);
	close(in[1]); /* the peer closes the region and exits */
	cr_assert_eq(th_reap(again, 10000), 0);
	fclose(f);
	cr_assert_not(lfipc__token_alive(r, tn));
	cr_assert_eq(participants(r), 1);
}

Test(proc, parent_killed_while_its_child_lives_is_detected)
{
	int up[2], gup[2], down[2];
	uint32_t tm, tg;
	pid_t mid;
	int st;

	cr_assert_eq(pipe(up), 0);
	cr_assert_eq(pipe(gup), 0);
	cr_assert_eq(pipe(down), 0);
	mid = fork();
	cr_assert_geq(mid, 0);
	if (mid == 0) {
		/* middle: registers, forks a grandchild that registers too */
		uint32_t t;
		char c;

		close(down[1]);
		if (lfipc__self(r, &t) != 0)
			_exit(1);
		if (fork() == 0) {
			if (lfipc__self(r, &t) != 0)
				_exit(1);
			th_write_all(gup[1], &t, sizeof(t));
			while (read(down[0], &c, 1) > 0)
				;
			_exit(0);
		}
		th_write_all(up[1], &t, sizeof(t));
		for (;;)
			pause();
	}
	close(up[1]);
	close(gup[1]);
	close(down[0]);
	cr_assert_eq(th_read_all(up[0], &tm, sizeof(tm)), 0);
	cr_assert_eq(th_read_all(gup[0], &tg, sizeof(tg)), 0);
	close(up[0]);
	close(gup[0]);
	cr_assert(lfipc__token_alive(r, tm));
	cr_assert(lfipc__token_alive(r, tg));
	cr_assert_neq(tm, tg);
	cr_assert_eq(participants(r), 3);
	cr_assert_eq(kill(mid, SIGKILL), 0);
	cr_assert_eq(waitpid(mid, &st, 0), mid);
	cr_assert_not(lfipc__token_alive(r, tm), "dead parent alive");
	cr_assert(lfipc__token_alive(r, tg), "child died with its parent");
	cr_assert_eq(participants(r), 2);
	close(down[1]); /* the grandchild (reparented, not ours) exits */
	for (int i = 0; i < 1000 && lfipc__token_alive(r, tg); i++)
		usleep(10000);
	cr_assert_not(lfipc__token_alive(r, tg));
	cr_assert_eq(participants(r), 1);
}

/* 1,074 forks: about 10 s of CPU under ThreadSanitizer, and a loaded
 * machine may stretch that several times over. */
Test(proc, dead_participants_slots_are_reclaimed, .timeout = 600)
{
	/* more short-lived participants than the table has slots */
	int n = LFIPC_PROC_SLOTS + 50;

	for (int i = 0; i < n; i += 50) {
		pid_t pids[50];

		for (int k = 0; k < 50; k++) {
			pids[k] = fork();
			cr_assert_geq(pids[k], 0);
			if (pids[k] == 0) {
				uint32_t t;

				_exit(lfipc__self(r, &t) == 0 ? 0 : 1);
			}
		}
		cr_assert_eq(th_reap_all(pids, 50, 120000), 0);
	}
	cr_assert_eq(participants(r), 1);
}

Test(proc, region_lock_of_a_killed_holder_is_taken_over)
{
	int up[2];
	pid_t pid;
	char c;
	uint64_t off;
	lfipc_region_info info;

	cr_assert_eq(pipe(up), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (lfipc__region_lock(r) != 0)
			_exit(1);
		th_write_all(up[1], "L", 1);
		for (;;)
			pause();
	}
	cr_assert_eq(th_read_all(up[0], &c, 1), 0);
	cr_assert(!lfipc__mutex_owner_dead(r, &lfipc__hdr(r)->lock));
	cr_assert_eq(kill(pid, SIGKILL), 0);
	cr_assert_eq(th_reap(pid, 10000), 128 + SIGKILL);
	cr_assert(lfipc__mutex_owner_dead(r, &lfipc__hdr(r)->lock));
	cr_assert_eq(lfipc__obj_create(r, "after", LFIPC_OBJ_EVENT, 64, 0, NULL,
				       NULL, &off),
		     0);
	cr_assert_eq(lfipc_region_stats(r, &info), 0);
	cr_assert_eq(info.objects, 1);
	cr_assert_eq(info.participants, 1);
	close(up[0]);
	close(up[1]);
}

/* ---- registration under a peer that rewrites a slot's generation ----- */

static struct lfipc_proc_slot *gen_slot; /* the library's mapping */
static _Atomic uint32_t *gen_peer;	 /* the same word, a second map */

/* A fork child registers (R1 in lib/proc.c, try_slot()) while the peer
 * toggles the gen word of the slot it takes before every write to it.
 * The CAS bound ends the CAS retries after about a second and a store
 * (under the slot's OFD lock) makes the new generation. */
static int child_registers_under_rewrites(void *arg)
{
	uint32_t t = 0, slot = (uint32_t)(uintptr_t)arg;
	int64_t t0, took;
	int rc;

	cf_start_xor((void *)&gen_slot->gen, (void *)gen_peer, 4);
	t0 = th_now_ns();
	rc = lfipc__self(r, &t);
	took = th_now_ns() - t0;
	if (cf_stop() < 1000)
		return 2;
	if (rc != 0)
		return 10 + (rc < 0 ? -rc : rc) % 100;
	if (took > (int64_t)4000 * 1000 * 1000)
		return 3;
	if (token_slot(t) != slot)
		return 4; /* not the slot the peer rewrote */
	/* The generation of the token is the slot's, odd: alive. */
	if (!lfipc__token_alive(r, t) || !(atomic_load(gen_peer) & 1u))
		return 5;
	return 0;
}

/* On main the child never returned from its registration. */
Test(proc, registration_ends_while_a_peer_rewrites_the_slots_generation)
{
	struct stat st;
	uint32_t slot = token_slot(my_token(r)) + 1; /* the next free slot */
	int fd = lfipc_region_fd(r);
	uint8_t *base;
	pid_t pid;

	cr_assert_eq(fstat(fd, &st), 0);
	base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
		    MAP_SHARED, fd, 0);
	cr_assert_neq(base, MAP_FAILED);
	gen_slot = &r->proc.table[slot];
	gen_peer =
	    (_Atomic uint32_t *)(base + ((uint8_t *)&gen_slot->gen - r->base));
	pid = th_fork(child_registers_under_rewrites, (void *)(uintptr_t)slot);
	cr_assert_gt(pid, 0);
	cr_assert_eq(th_reap(pid, 30000), 0);
	/* The child is gone: its slot's generation names nobody alive. */
	cr_assert(lfipc__token_alive(r, my_token(r)));
	cr_assert_eq(participants(r), 1);
	munmap(base, (size_t)st.st_size);
}
