/* SPDX-License-Identifier: MIT */
/* Lifecycle: open-or-create of regions and objects under races, stale
 * regions taken over only when every participant is dead, and
 * lfipc_region_remove() refusing live regions. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lfipc.h>

#include "common/testhelp.h"

#define REGION_SIZE ((size_t)1 << 20)
#define REAP_MS 30000
#define NRACE 6

static char rname[64];

static void setup(void)
{
	th_name(rname, sizeof(rname), "life");
}

static void teardown(void)
{
	lfipc_region_unlink(rname);
}

TestSuite(lifecycle, .init = setup, .fini = teardown, .timeout = 120);

/* ---- open-or-create of regions ---------------------------------------- */

struct race {
	const char *name;
	int fds[2]; /* a start gate: children block until it closes */
};

static void wait_gate(struct race *g)
{
	char c;

	close(g->fds[1]);
	(void)!read(g->fds[0], &c, 1);
}

/* Each racer open-or-creates the region and the queue in it, puts its
 * number, and reports success by its exit status. */
static int region_racer(void *arg)
{
	struct race *g = arg;
	lfipc_region *mine;
	lfipc_queue *q;
	int me = (int)getpid();

	wait_gate(g);
	if (lfipc_region_create_ex(g->name, REGION_SIZE, 0,
				   LFIPC_REGION_OPEN_OR_CREATE, &mine) != 0)
		return 1;
	if (lfipc_queue_open_or_create(mine, "q", 64, 16, 0, &q) != 0)
		return 2;
	if (lfipc_queue_put(q, &me, sizeof(me), LFIPC_NOWAIT) != 0)
		return 3;
	lfipc_queue_close(q);
	lfipc_region_close(mine);
	return 0;
}

Test(lifecycle, racing_open_or_create_makes_one_region_and_one_queue)
{
	for (int round = 0; round < 5; round++) {
		struct race g = {rname, {-1, -1}};
		pid_t pids[NRACE];
		lfipc_region *r;
		lfipc_queue *q;
		int got[NRACE], n = 0, v, rc = 0;
		char buf[16];
		size_t len;

		cr_assert_eq(pipe(g.fds), 0);
		for (int i = 0; i < NRACE; i++)
			pids[i] = th_fork(region_racer, &g);
		close(g.fds[0]);
		close(g.fds[1]); /* go */
		cr_assert_eq(th_reap_all(pids, NRACE, REAP_MS), 0);
		cr_assert_eq(lfipc_region_open(rname, &r), 0);
		cr_assert_eq(lfipc_queue_open(r, "q", &q), 0);
		while (n < NRACE && (rc = lfipc_queue_get(q, buf, sizeof(buf),
							  &len, LFIPC_NOWAIT)) == 0) {
			cr_assert_eq(len, sizeof(v));
			memcpy(&v, buf, sizeof(v));
			got[n++] = v;
		}
		cr_assert_eq(lfipc_queue_get(q, buf, sizeof(buf), &len,
					     LFIPC_NOWAIT),
			     -EAGAIN);
		/* every racer's put landed in the one queue */
		cr_assert_eq(n, NRACE, "round %d: %d puts in the queue (%d)",
			     round, n, rc);
		for (int i = 0; i < NRACE; i++) {
			int found = 0;

			for (int k = 0; k < n; k++)
				found += got[k] == pids[i];
			cr_assert_eq(found, 1);
		}
		lfipc_queue_close(q);
		lfipc_region_close(r);
		cr_assert_eq(lfipc_region_remove(rname, 0), 0);
	}
}

Test(lifecycle, open_or_create_refuses_another_size_and_unknown_flags)
{
	lfipc_region *a, *b;

	cr_assert_eq(lfipc_region_create_ex(rname, REGION_SIZE, 0,
					    LFIPC_REGION_OPEN_OR_CREATE, &a),
		     0);
	cr_assert_eq(lfipc_region_create_ex(rname, 2 * REGION_SIZE, 0,
					    LFIPC_REGION_OPEN_OR_CREATE, &b),
		     -EEXIST);
	cr_assert_null(b);
	cr_assert_eq(lfipc_region_create_ex(rname, REGION_SIZE, 0, 0, &b),
		     -EEXIST);
	cr_assert_eq(lfipc_region_create_ex(rname, REGION_SIZE, 0, 0x100, &b),
		     -EINVAL);
	cr_assert_eq(lfipc_region_create_ex(rname, REGION_SIZE, 0,
					    LFIPC_REGION_OPEN_OR_CREATE, &b),
		     0);
	lfipc_region_close(b);
	lfipc_region_close(a);
}

/* ---- open-or-create of every object type ------------------------------ */

Test(lifecycle, objects_open_or_create_same_shape_and_refuse_another)
{
	lfipc_region *r;
	lfipc_queue *q1, *q2;
	lfipc_lock *l1, *l2;
	lfipc_sem *s1, *s2;
	lfipc_event *e1, *e2;
	lfipc_barrier *b1, *b2;
	lfipc_array *a1, *a2;
	lfipc_cond *c1, *c2;
	lfipc_conn *p0, *p1, *px;

	cr_assert_eq(lfipc_region_create(rname, REGION_SIZE, 0, &r), 0);

	cr_assert_eq(lfipc_queue_open_or_create(r, "q", 8, 16, 0, &q1), 0);
	cr_assert_eq(lfipc_queue_open_or_create(r, "q", 8, 16, 0, &q2), 0);
	cr_assert_eq(lfipc_queue_put(q1, "x", 1, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_qsize(q2), 1); /* the same queue */
	cr_assert_eq(lfipc_queue_open_or_create(r, "q", 9, 16, 0, &q2),
		     -EEXIST);
	cr_assert_eq(lfipc_queue_open_or_create(r, "q", 8, 17, 0, &q2),
		     -EEXIST);
	cr_assert_eq(lfipc_queue_open_or_create(r, "q", 8, 16,
						LFIPC_QUEUE_JOINABLE, &q2),
		     -EEXIST);
	cr_assert_eq(lfipc_queue_open_or_create(r, "q", 0, 16, 0, &q2),
		     -EINVAL);

	cr_assert_eq(lfipc_lock_open_or_create(r, "l", true, &l1), 0);
	cr_assert_eq(lfipc_lock_open_or_create(r, "l", true, &l2), 0);
	cr_assert_eq(lfipc_lock_acquire(l1, LFIPC_NOWAIT), 0);
	cr_assert(lfipc_lock_locked(l2));
	cr_assert_eq(lfipc_lock_release(l1), 0);
	cr_assert_eq(lfipc_lock_open_or_create(r, "l", false, &l2), -EEXIST);
	/* another type under the name */
	cr_assert_eq(lfipc_event_open_or_create(r, "l", &e2), -EEXIST);

	cr_assert_eq(lfipc_sem_open_or_create(r, "s", 2, LFIPC_SEM_BOUNDED,
					      &s1),
		     0);
	cr_assert_eq(lfipc_sem_open_or_create(r, "s", 2, LFIPC_SEM_BOUNDED,
					      &s2),
		     0);
	cr_assert_eq(lfipc_sem_acquire(s1, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_sem_value(s2), 1);
	cr_assert_eq(lfipc_sem_open_or_create(r, "s", 3, LFIPC_SEM_BOUNDED,
					      &s2),
		     -EEXIST);
	cr_assert_eq(lfipc_sem_open_or_create(r, "s", 2, 0, &s2), -EEXIST);

	cr_assert_eq(lfipc_event_open_or_create(r, "e", &e1), 0);
	cr_assert_eq(lfipc_event_open_or_create(r, "e", &e2), 0);
	cr_assert_eq(lfipc_event_set(e1), 0);
	cr_assert(lfipc_event_is_set(e2));

	cr_assert_eq(lfipc_barrier_open_or_create(r, "b", 2, &b1), 0);
	cr_assert_eq(lfipc_barrier_open_or_create(r, "b", 2, &b2), 0);
	cr_assert_eq(lfipc_barrier_open_or_create(r, "b", 3, &b2), -EEXIST);

	cr_assert_eq(lfipc_array_open_or_create(r, "a", LFIPC_I64, 4, false,
						&a1),
		     0);
	cr_assert_eq(lfipc_array_open_or_create(r, "a", LFIPC_I64, 4, false,
						&a2),
		     0);
	cr_assert_eq(lfipc_array_store(a1, 3, 42), 0);
	{
		int64_t v;

		cr_assert_eq(lfipc_array_load(a2, 3, &v), 0);
		cr_assert_eq(v, 42);
	}
	cr_assert_eq(lfipc_array_open_or_create(r, "a", LFIPC_I32, 4, false,
						&a2),
		     -EEXIST);
	cr_assert_eq(lfipc_array_open_or_create(r, "a", LFIPC_I64, 5, false,
						&a2),
		     -EEXIST);

	cr_assert_eq(lfipc_cond_open_or_create(r, "c", NULL, &c1), 0);
	cr_assert_eq(lfipc_cond_open_or_create(r, "c", NULL, &c2), 0);
	cr_assert_eq(lfipc_cond_open_or_create(r, "c", l1, &c2), -EEXIST);

	/* a pipe rendezvous: first caller creates holding end 0 only */
	cr_assert_eq(lfipc_pipe_open_or_create(r, "p", 0, false, 0, &p0), 0);
	cr_assert_eq(lfipc_pipe_open_or_create(r, "p", 0, false, 1, &p1), 0);
	cr_assert_eq(lfipc_pipe_open_or_create(r, "p", 0, false, 1, &px),
		     -EBUSY);
	cr_assert_eq(lfipc_pipe_open_or_create(r, "p", 0, true, 1, &px),
		     -EEXIST);
	cr_assert_eq(lfipc_conn_send(p1, "hi", 2, LFIPC_NOWAIT), 0);
	{
		char buf[8];
		size_t len;

		cr_assert_eq(lfipc_conn_recv(p0, buf, sizeof(buf), &len,
					     LFIPC_NOWAIT),
			     0);
		cr_assert_eq(len, 2);
	}

	lfipc_queue_close(q1);
	lfipc_queue_close(q2);
	lfipc_lock_close(l1);
	lfipc_lock_close(l2);
	lfipc_sem_close(s1);
	lfipc_sem_close(s2);
	lfipc_event_close(e1);
	lfipc_event_close(e2);
	lfipc_barrier_close(b1);
	lfipc_barrier_close(b2);
	lfipc_array_close(a1);
	lfipc_array_close(a2);
	lfipc_cond_close(c1);
	lfipc_cond_close(c2);
	lfipc_conn_close(p0);
	lfipc_conn_close(p1);
	lfipc_region_close(r);
}

/* Racers open-or-create one lock and count under it. */
static int lock_racer(void *arg)
{
	struct race *g = arg;
	lfipc_region *mine;
	lfipc_lock *l;
	lfipc_array *a;
	int64_t v;

	wait_gate(g);
	if (lfipc_region_open(g->name, &mine) != 0)
		return 1;
	if (lfipc_lock_open_or_create(mine, "l", false, &l) != 0 ||
	    lfipc_array_open_or_create(mine, "n", LFIPC_I64, 1, false, &a) != 0)
		return 2;
	for (int i = 0; i < 1000; i++) {
		if (lfipc_lock_acquire(l, LFIPC_FOREVER) != 0)
			return 3;
		lfipc_array_load(a, 0, &v);
		lfipc_array_store(a, 0, v + 1);
		lfipc_lock_release(l);
	}
	return 0;
}

Test(lifecycle, racing_object_open_or_create_agrees_on_one_lock)
{
	struct race g = {rname, {-1, -1}};
	pid_t pids[NRACE];
	lfipc_region *r;
	lfipc_array *a;
	int64_t v;

	cr_assert_eq(lfipc_region_create(rname, REGION_SIZE, 0, &r), 0);
	cr_assert_eq(pipe(g.fds), 0);
	for (int i = 0; i < NRACE; i++)
		pids[i] = th_fork(lock_racer, &g);
	close(g.fds[0]);
	close(g.fds[1]);
	cr_assert_eq(th_reap_all(pids, NRACE, REAP_MS), 0);
	cr_assert_eq(lfipc_array_open(r, "n", &a), 0);
	cr_assert_eq(lfipc_array_load(a, 0, &v), 0);
	cr_assert_eq(v, NRACE * 1000); /* one lock: no lost update */
	lfipc_array_close(a);
	lfipc_region_close(r);
}

/* ---- stale regions ---------------------------------------------------- */

static int join_and_die(void *arg)
{
	lfipc_region *mine;
	lfipc_event *e;

	if (lfipc_region_open(arg, &mine) != 0)
		return 1;
	if (lfipc_event_open_or_create(mine, "mark", &e) != 0)
		return 1;
	raise(SIGKILL);
	return 2;
}

static int join_and_stop(void *arg)
{
	lfipc_region *mine;

	if (lfipc_region_open(arg, &mine) != 0)
		return 1;
	raise(SIGSTOP);
	pause();
	return 0;
}

/* Create rname, attach `n` participants that are SIGKILLed, and leave it
 * with no live participant. */
static void make_stale(int n)
{
	lfipc_region *r;

	cr_assert_eq(lfipc_region_create(rname, REGION_SIZE, 0, &r), 0);
	for (int i = 0; i < n; i++) {
		pid_t pid = th_fork(join_and_die, rname);

		cr_assert_eq(th_reap(pid, REAP_MS), 128 + SIGKILL);
	}
	/* the creator dies too: simulate by a child that created */
	lfipc_region_close(r);
}

Test(lifecycle, takeover_replaces_a_region_whose_participants_all_died)
{
	lfipc_region *r;
	lfipc_region_status st;
	lfipc_object_entry ent;

	make_stale(3);
	LFIPC_STATUS_INIT(st);
	cr_assert_eq(lfipc_region_probe(rname, &st), 0);
	cr_assert(st.stale);
	cr_assert_eq(st.participants, 0);
	cr_assert_eq(st.dead, 3);
	cr_assert_eq(st.objects, 1);
	/* without the flag: the name is taken */
	cr_assert_eq(lfipc_region_create(rname, REGION_SIZE, 0, &r), -EEXIST);
	cr_assert_eq(lfipc_region_create_ex(rname, REGION_SIZE, 0,
					    LFIPC_REGION_TAKEOVER, &r),
		     0);
	/* a fresh region: the old objects are gone */
	LFIPC_STATUS_INIT(ent);
	cr_assert_eq(lfipc_object_find(r, "mark", &ent), -ENOENT);
	LFIPC_STATUS_INIT(st);
	cr_assert_eq(lfipc_region_stat(r, &st), 0);
	cr_assert_eq(st.dead, 0);
	cr_assert_eq(st.participants, 1);
	lfipc_region_close(r);
}

Test(lifecycle, takeover_with_open_or_create_opens_a_live_region)
{
	lfipc_region *a, *b;
	lfipc_event *e;
	lfipc_object_entry ent;

	cr_assert_eq(lfipc_region_create(rname, REGION_SIZE, 0, &a), 0);
	cr_assert_eq(lfipc_event_create(a, "keep", &e), 0);
	cr_assert_eq(lfipc_region_create_ex(rname, REGION_SIZE, 0,
					    LFIPC_REGION_TAKEOVER |
						LFIPC_REGION_OPEN_OR_CREATE,
					    &b),
		     0);
	LFIPC_STATUS_INIT(ent);
	cr_assert_eq(lfipc_object_find(b, "keep", &ent), 0);
	lfipc_event_close(e);
	lfipc_region_close(b);
	lfipc_region_close(a);
}

Test(lifecycle, takeover_and_remove_are_refused_while_a_participant_lives)
{
	lfipc_region *r;
	lfipc_region_status st;
	pid_t pid;

	make_stale(2);
	pid = th_fork(join_and_stop, rname);
	/* wait until it has registered and stopped */
	for (int i = 0; i < 5000; i++) {
		LFIPC_STATUS_INIT(st);
		cr_assert_eq(lfipc_region_probe(rname, &st), 0);
		if (st.participants == 1)
			break;
		usleep(1000);
	}
	cr_assert_eq(st.participants, 1);
	cr_assert(!st.stale);
	cr_assert_eq(lfipc_region_create_ex(rname, REGION_SIZE, 0,
					    LFIPC_REGION_TAKEOVER, &r),
		     -EEXIST);
	cr_assert_eq(lfipc_region_remove(rname, 0), -EBUSY);
	LFIPC_STATUS_INIT(st);
	cr_assert_eq(lfipc_region_probe(rname, &st), 0); /* still there */
	/* now kill the stopped participant: the region becomes stale */
	kill(pid, SIGKILL);
	cr_assert_eq(th_reap(pid, REAP_MS), 128 + SIGKILL);
	cr_assert_eq(lfipc_region_remove(rname, 0), 0);
	cr_assert_eq(lfipc_region_probe(rname, &st), -ENOENT);
}

Test(lifecycle, remove_refuses_the_callers_own_live_handle_unless_forced)
{
	lfipc_region *r;
	lfipc_region_status st;

	cr_assert_eq(lfipc_region_create(rname, REGION_SIZE, 0, &r), 0);
	cr_assert_eq(lfipc_region_remove(rname, 0), -EBUSY);
	cr_assert_eq(lfipc_region_remove(rname, LFIPC_REGION_FORCE), 0);
	LFIPC_STATUS_INIT(st);
	cr_assert_eq(lfipc_region_probe(rname, &st), -ENOENT);
	cr_assert_eq(lfipc_region_remove(rname, 0), -ENOENT);
	cr_assert_eq(lfipc_region_remove(rname, 0x10), -EINVAL);
	lfipc_region_close(r);
}

Test(lifecycle, remove_leaves_files_that_are_not_regions_alone)
{
	int fd = shm_open(rname, O_RDWR | O_CREAT | O_EXCL, 0600);
	char junk[8192];
	lfipc_region *r;

	cr_assert_geq(fd, 0);
	memset(junk, 'x', sizeof(junk));
	cr_assert_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	cr_assert_eq(lfipc_region_remove(rname, LFIPC_REGION_FORCE), -EPROTO);
	cr_assert_eq(lfipc_region_create_ex(rname, REGION_SIZE, 0,
					    LFIPC_REGION_TAKEOVER, &r),
		     -EEXIST);
	fd = shm_open(rname, O_RDONLY, 0);
	cr_assert_geq(fd, 0);
	close(fd);
}

/* Files that are not lfipc regions but start with zeros, and a FIFO:
 * neither remove (even forced) nor takeover touches them (review11
 * rm_not_ours.sh: an empty file or a zero first word counted as ours). */
static void make_file(const char *name, size_t size, const char *after_zero)
{
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	if (after_zero)
		cr_assert_eq(pwrite(fd, after_zero, strlen(after_zero), 8),
			     (ssize_t)strlen(after_zero));
	close(fd);
}

static void assert_left_alone(const char *name)
{
	char path[128];
	lfipc_region *r;

	cr_assert_eq(lfipc_region_remove(name, 0), -EPROTO, "%s", name);
	cr_assert_eq(lfipc_region_remove(name, LFIPC_REGION_FORCE), -EPROTO,
		     "%s", name);
	cr_assert_eq(lfipc_region_create_ex(name, REGION_SIZE, 0,
					    LFIPC_REGION_TAKEOVER, &r),
		     -EEXIST, "%s", name);
	snprintf(path, sizeof(path), "/dev/shm%s", name);
	cr_assert_eq(access(path, F_OK), 0, "%s was removed", name);
}

Test(lifecycle, files_that_start_with_zeros_and_fifos_are_not_regions)
{
	char path[128];

	make_file(rname, 0, NULL); /* empty */
	assert_left_alone(rname);
	lfipc_region_unlink(rname);
	make_file(rname, 65536, NULL); /* zeros, not a region's size */
	assert_left_alone(rname);
	lfipc_region_unlink(rname);
	make_file(rname, REGION_SIZE, "other program data"); /* word 0 is 0 */
	assert_left_alone(rname);
	lfipc_region_unlink(rname);
	snprintf(path, sizeof(path), "/dev/shm%s", rname);
	cr_assert_eq(mkfifo(path, 0600), 0);
	assert_left_alone(rname);
	lfipc_region_unlink(rname);
}

/* A FIFO under a region's name: the probe (`lfipc ls`, `lfipc gc`) says
 * -EPROTO at once instead of waiting for a writer (review11's R3). The
 * probe runs in a child reaped with a deadline, so a regression fails. */
static int child_probe(void *arg)
{
	lfipc_region_status st;

	st.struct_size = sizeof(st);
	return lfipc_region_probe(arg, &st) == -EPROTO ? 0 : 1;
}

Test(lifecycle, the_probe_of_a_fifo_is_eproto_and_does_not_block)
{
	char path[128];
	pid_t pid;

	snprintf(path, sizeof(path), "/dev/shm%s", rname);
	cr_assert_eq(mkfifo(path, 0600), 0);
	pid = th_fork(child_probe, (void *)rname);
	cr_assert_gt(pid, 0);
	cr_assert_eq(th_reap(pid, 5000), 0, "the probe blocked or failed");
	lfipc_region_unlink(rname);
}

/* What an older lfipc's creator left when it died before writing the
 * header (a region-sized file of zeros, nobody holding its locks) is
 * removed, but only when the locks prove nobody is in it: not forced. */
Test(lifecycle, a_zero_region_left_by_a_dead_creator_is_removed_unforced)
{
	char path[128];
	lfipc_region *r;

	make_file(rname, REGION_SIZE, NULL);
	cr_assert_eq(lfipc_region_remove(rname, 0), 0);
	snprintf(path, sizeof(path), "/dev/shm%s", rname);
	cr_assert_eq(access(path, F_OK), -1);
	make_file(rname, REGION_SIZE, NULL);
	cr_assert_eq(lfipc_region_create_ex(rname, REGION_SIZE, 0,
					    LFIPC_REGION_TAKEOVER, &r),
		     0);
	lfipc_region_close(r);
}

/* Half the processes take over one name again and again while the other
 * half remove it (unforced: stale only) in a loop. A winner's region must
 * keep its name while it lives, and no two winners may live at once
 * (review11 takeover_race.c: the creator's empty, unlocked file was taken
 * for a stale one and unlinked under it). */
struct tk_shared {
	_Atomic int live, two, unlinked, wins, stop;
};

static struct tk_shared *tk;

static int tk_winner(void *arg)
{
	const char *name = arg;
	int64_t end = th_now_ns() + (int64_t)600 * 1000000;

	while (th_now_ns() < end) {
		lfipc_region *r;
		struct stat st;

		if (lfipc_region_create_ex(name, 256 * 1024, 0600,
					   LFIPC_REGION_TAKEOVER, &r) != 0)
			continue;
		atomic_fetch_add(&tk->wins, 1);
		if (atomic_fetch_add(&tk->live, 1) != 0)
			atomic_fetch_add(&tk->two, 1);
		if (fstat(lfipc_region_fd(r), &st) == 0 && st.st_nlink == 0)
			atomic_fetch_add(&tk->unlinked, 1);
		usleep(50);
		if (fstat(lfipc_region_fd(r), &st) == 0 && st.st_nlink == 0)
			atomic_fetch_add(&tk->unlinked, 1);
		atomic_fetch_sub(&tk->live, 1);
		lfipc_region_close(r);
	}
	return 0;
}

static int tk_remover(void *arg)
{
	while (!atomic_load(&tk->stop))
		(void)lfipc_region_remove(arg, 0);
	return 0;
}

Test(lifecycle, racing_takeovers_and_removers_never_unlink_a_live_region)
{
	pid_t w[2], rm[2];

	tk = mmap(NULL, sizeof(*tk), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(tk, MAP_FAILED);
	for (int i = 0; i < 2; i++) {
		w[i] = th_fork(tk_winner, rname);
		rm[i] = th_fork(tk_remover, rname);
	}
	cr_assert_eq(th_reap_all(w, 2, REAP_MS), 0);
	atomic_store(&tk->stop, 1);
	cr_assert_eq(th_reap_all(rm, 2, REAP_MS), 0);
	cr_assert_gt(atomic_load(&tk->wins), 0);
	cr_assert_eq(atomic_load(&tk->unlinked), 0,
		     "%d winners found their region unlinked (%d wins)",
		     atomic_load(&tk->unlinked), atomic_load(&tk->wins));
	cr_assert_eq(atomic_load(&tk->two), 0, "two live winners %d times",
		     atomic_load(&tk->two));
	munmap(tk, sizeof(*tk));
}

/* lfipc_region_probe() reads a file that a peer keeps shrinking and
 * growing back: -EPROTO or a status, never a SIGBUS (review11
 * probe_truncate_sigbus.c: it read the header through a raw mapping). */
static int probe_loop(void *arg)
{
	int64_t end = th_now_ns() + (int64_t)500 * 1000000;
	int n = 0;

	while (th_now_ns() < end || n < 1000) {
		lfipc_region_status s;
		int rc;

		LFIPC_STATUS_INIT(s);
		rc = lfipc_region_probe(arg, &s);
		if (rc != 0 && rc != -EPROTO)
			return 1;
		n++;
	}
	return 0;
}

static int truncate_loop(void *arg)
{
	int fd = shm_open(arg, O_RDWR, 0);

	if (fd < 0)
		return 1;
	for (;;) {
		/* keep the header page, drop the rest, restore */
		(void)!ftruncate(fd, 4096);
		(void)!ftruncate(fd, (off_t)REGION_SIZE);
	}
}

Test(lifecycle, probe_of_a_file_being_truncated_is_never_a_crash)
{
	lfipc_region *r;
	pid_t flipper, prober;

	cr_assert_eq(lfipc_region_create(rname, REGION_SIZE, 0600, &r), 0);
	lfipc_region_close(r);
	flipper = th_fork(truncate_loop, rname);
	prober = th_fork(probe_loop, rname);
	cr_assert_eq(th_reap(prober, REAP_MS), 0, "the prober died or failed");
	kill(flipper, SIGKILL);
	cr_assert_eq(th_reap(flipper, REAP_MS), 128 + SIGKILL);
}

/* Racers take over one stale region at once: exactly one region results
 * and every racer ends up in it (open-or-create + takeover). */
struct race2 {
	const char *name;
	int go[2];   /* start gate */
	int hold[2]; /* racers stay registered until this closes */
};

static int takeover_racer(void *arg)
{
	struct race2 *g = arg;
	lfipc_region *mine;
	lfipc_array *a;
	char c;

	close(g->go[1]);
	close(g->hold[1]);
	(void)!read(g->go[0], &c, 1);
	if (lfipc_region_create_ex(g->name, REGION_SIZE, 0,
				   LFIPC_REGION_TAKEOVER |
				       LFIPC_REGION_OPEN_OR_CREATE,
				   &mine) != 0)
		return 1;
	if (lfipc_array_open_or_create(mine, "n", LFIPC_I64, 1, false, &a) !=
	    0)
		return 2;
	if (lfipc_array_fetch_add(a, 0, 1, NULL) != 0)
		return 3;
	(void)!read(g->hold[0], &c, 1);
	return 0;
}

Test(lifecycle, racing_takeovers_end_in_one_region)
{
	struct race2 g = {rname, {-1, -1}, {-1, -1}};
	pid_t pids[NRACE];
	lfipc_region *r;
	lfipc_array *a;
	int64_t v = -1;

	make_stale(1);
	cr_assert_eq(pipe(g.go), 0);
	cr_assert_eq(pipe(g.hold), 0);
	for (int i = 0; i < NRACE; i++)
		pids[i] = th_fork(takeover_racer, &g);
	close(g.go[0]);
	close(g.go[1]); /* go */
	close(g.hold[0]);
	/* wait until all racers counted themselves in the one region */
	for (int i = 0; i < 10000 && v != NRACE; i++) {
		if (lfipc_region_open(rname, &r) == 0) {
			if (lfipc_array_open(r, "n", &a) == 0) {
				lfipc_array_load(a, 0, &v);
				lfipc_array_close(a);
			}
			lfipc_region_close(r);
		}
		if (v != NRACE)
			usleep(1000);
	}
	close(g.hold[1]);
	cr_assert_eq(th_reap_all(pids, NRACE, REAP_MS), 0);
	cr_assert_eq(v, NRACE);
}

/* ---- sizes ------------------------------------------------------------ */

Test(lifecycle, size_helpers_give_a_region_that_fits)
{
	size_t need = lfipc_queue_bytes(1000, 256, 0) +
		      lfipc_pipe_bytes(65536, true) +
		      lfipc_array_bytes(LFIPC_F64, 10000, true) +
		      lfipc_obj_bytes(LFIPC_OBJ_LOCK, 0) +
		      lfipc_obj_bytes(LFIPC_OBJ_SEM, LFIPC_SEM_TRACK_HOLDERS) +
		      lfipc_obj_bytes(LFIPC_OBJ_BARRIER, 4);
	size_t size = lfipc_region_size_for(need, 6);
	lfipc_region *r;
	lfipc_queue *q;
	lfipc_conn *p0, *p1;
	lfipc_array *a;
	lfipc_lock *l;
	lfipc_sem *s;
	lfipc_barrier *b;

	cr_assert_gt(need, 1000 * 256);
	cr_assert_geq(size, LFIPC_REGION_MIN_SIZE);
	cr_assert_eq(size % (size_t)sysconf(_SC_PAGESIZE), 0);
	cr_assert_eq(lfipc_queue_bytes(0, 8, 0), 0);
	cr_assert_eq(lfipc_obj_bytes(LFIPC_OBJ_QUEUE, 1), 0);
	cr_assert_eq(lfipc_region_create(rname, size, 0, &r), 0);
	cr_assert_eq(lfipc_queue_create(r, "q", 1000, 256, 0, &q), 0);
	cr_assert_eq(lfipc_pipe_create(r, "p", 65536, true, &p0, &p1), 0);
	cr_assert_eq(lfipc_array_create(r, "a", LFIPC_F64, 10000, true, &a), 0);
	cr_assert_eq(lfipc_lock_create(r, "l", false, &l), 0);
	cr_assert_eq(lfipc_sem_create_ex(r, "s", 1, LFIPC_SEM_TRACK_HOLDERS,
					 &s),
		     0);
	cr_assert_eq(lfipc_barrier_create(r, "b", 4, &b), 0);
	lfipc_queue_close(q);
	lfipc_conn_close(p0);
	lfipc_conn_close(p1);
	lfipc_array_close(a);
	lfipc_lock_close(l);
	lfipc_sem_close(s);
	lfipc_barrier_close(b);
	lfipc_region_close(r);
}
