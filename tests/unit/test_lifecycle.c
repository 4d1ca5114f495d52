/* SPDX-License-Identifier: MIT */
/* Lifecycle: open-or-create of regions and objects under races, stale
 * regions taken over only when every participant is dead, and
 * lfipc_region_remove() refusing live regions. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
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
