/* SPDX-License-Identifier: MIT */
/* Listing and status (lfipc/inspect.h): objects, participants, and the
 * status of every object type, asserted field by field. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lfipc.h>

#include "common/testhelp.h"

#define REGION_SIZE ((size_t)4 << 20)
#define REAP_MS 30000
#define MS ((int64_t)1000000)

static lfipc_region *r;
static char rname[64];

static void setup(void)
{
	th_name(rname, sizeof(rname), "insp");
	cr_assert_eq(lfipc_region_create(rname, REGION_SIZE, 0, &r), 0);
}

static void teardown(void)
{
	lfipc_region_close(r);
	r = NULL;
	lfipc_region_unlink(rname);
}

TestSuite(inspect, .init = setup, .fini = teardown, .timeout = 60);

Test(inspect, type_names_are_stable)
{
	cr_assert_str_eq(lfipc_obj_type_name(LFIPC_OBJ_QUEUE), "queue");
	cr_assert_str_eq(lfipc_obj_type_name(LFIPC_OBJ_LOCK), "lock");
	cr_assert_str_eq(lfipc_obj_type_name(LFIPC_OBJ_SEM), "semaphore");
	cr_assert_str_eq(lfipc_obj_type_name(LFIPC_OBJ_COND), "condition");
	cr_assert_str_eq(lfipc_obj_type_name(LFIPC_OBJ_EVENT), "event");
	cr_assert_str_eq(lfipc_obj_type_name(LFIPC_OBJ_BARRIER), "barrier");
	cr_assert_str_eq(lfipc_obj_type_name(LFIPC_OBJ_ARRAY), "array");
	cr_assert_str_eq(lfipc_obj_type_name(LFIPC_OBJ_PIPE), "pipe");
	cr_assert_str_eq(lfipc_obj_type_name(0), "unknown");
	cr_assert_str_eq(lfipc_obj_type_name(99), "unknown");
}

Test(inspect, listing_returns_every_object_once_with_type_and_bytes)
{
	lfipc_queue *q;
	lfipc_lock *l;
	lfipc_event *e;
	lfipc_array *a;
	lfipc_object_entry ent;
	unsigned cur = 0, seen = 0;
	int rc;

	cr_assert_eq(lfipc_queue_create(r, "q", 8, 32, 0, &q), 0);
	cr_assert_eq(lfipc_lock_create(r, "l", false, &l), 0);
	cr_assert_eq(lfipc_event_create(r, "e", &e), 0);
	cr_assert_eq(lfipc_array_create(r, "a", LFIPC_I32, 100, true, &a), 0);
	LFIPC_STATUS_INIT(ent);
	while ((rc = lfipc_object_next(r, &cur, &ent)) == 1) {
		cr_assert_eq(ent.struct_size, sizeof(ent));
		cr_assert_eq(ent.creator_pid, getpid());
		cr_assert(ent.bytes > 0 && ent.bytes % 64 == 0);
		if (strcmp(ent.name, "q") == 0) {
			cr_assert_eq(ent.type, LFIPC_OBJ_QUEUE);
			cr_assert_geq(ent.bytes, 8 * 64);
			cr_assert_leq(ent.bytes, lfipc_queue_bytes(8, 32, 0));
			seen |= 1;
		} else if (strcmp(ent.name, "l") == 0) {
			cr_assert_eq(ent.type, LFIPC_OBJ_LOCK);
			seen |= 2;
		} else if (strcmp(ent.name, "e") == 0) {
			cr_assert_eq(ent.type, LFIPC_OBJ_EVENT);
			seen |= 4;
		} else if (strcmp(ent.name, "a") == 0) {
			cr_assert_eq(ent.type, LFIPC_OBJ_ARRAY);
			cr_assert_geq(ent.bytes, 400);
			seen |= 8;
		} else {
			cr_assert_fail("unexpected object %s", ent.name);
		}
	}
	cr_assert_eq(rc, 0);
	cr_assert_eq(seen, 15);
	cr_assert_eq(lfipc_object_next(r, &cur, &ent), 0); /* stays at end */
	cr_assert_eq(lfipc_object_find(r, "a", &ent), 0);
	cr_assert_eq(ent.type, LFIPC_OBJ_ARRAY);
	cr_assert_eq(lfipc_object_find(r, "zz", &ent), -ENOENT);
	lfipc_queue_close(q);
	lfipc_lock_close(l);
	lfipc_event_close(e);
	lfipc_array_close(a);
}

Test(inspect, struct_size_is_checked_and_only_that_much_is_written)
{
	lfipc_object_entry ent;
	struct {
		lfipc_region_status st;
		uint64_t canary;
	} big;
	lfipc_queue *q;

	cr_assert_eq(lfipc_queue_create(r, "q", 4, 8, 0, &q), 0);
	memset(&ent, 0, sizeof(ent));
	ent.struct_size = sizeof(size_t) + 4; /* older than version 1 */
	cr_assert_eq(lfipc_object_find(r, "q", &ent), -EINVAL);
	/* a newer caller's struct: the tail we do not know is zeroed */
	memset(&big, 0xab, sizeof(big));
	big.st.struct_size = sizeof(big);
	cr_assert_eq(lfipc_region_stat(r, &big.st), 0);
	cr_assert_eq(big.st.struct_size, sizeof(big));
	cr_assert_eq(big.canary, 0);
	cr_assert_eq(big.st.size, REGION_SIZE);
	cr_assert_eq(big.st.objects, 1);
	cr_assert_eq(big.st.participants, 1);
	cr_assert(!big.st.stale);
	cr_assert_geq(big.st.bytes_free, big.st.largest_free);
	cr_assert_gt(big.st.largest_free, 0);
	lfipc_queue_close(q);
}

static int participate_and_die(void *arg)
{
	lfipc_region *mine;

	if (lfipc_region_open(arg, &mine) != 0)
		return 1;
	raise(SIGKILL);
	return 2;
}

static int participate_and_close(void *arg)
{
	lfipc_region *mine;

	if (lfipc_region_open(arg, &mine) != 0)
		return 1;
	lfipc_region_close(mine);
	return 0;
}

Test(inspect, participants_list_self_and_dead_but_not_closed)
{
	lfipc_participant_info p;
	lfipc_region_status st;
	pid_t dead, closed;
	unsigned cur = 0, alive = 0, ndead = 0, self = 0;
	int64_t t0 = th_now_ns();

	dead = th_fork(participate_and_die, rname);
	cr_assert_eq(th_reap(dead, REAP_MS), 128 + SIGKILL);
	closed = th_fork(participate_and_close, rname);
	cr_assert_eq(th_reap(closed, REAP_MS), 0);
	LFIPC_STATUS_INIT(p);
	while (lfipc_participant_next(r, &cur, &p) == 1) {
		cr_assert_neq(p.pid, closed);
		if (p.state == LFIPC_PART_ALIVE) {
			alive++;
			cr_assert_eq(p.pid, getpid());
			cr_assert(p.self);
			cr_assert_lt(p.since_ns, t0);
			self++;
		} else {
			cr_assert_eq(p.state, LFIPC_PART_DEAD);
			cr_assert_eq(p.pid, dead);
			cr_assert(!p.self);
			cr_assert_geq(p.since_ns, t0);
			ndead++;
		}
	}
	cr_assert_eq(alive, 1);
	cr_assert_eq(self, 1);
	cr_assert_eq(ndead, 1);
	LFIPC_STATUS_INIT(st);
	cr_assert_eq(lfipc_region_stat(r, &st), 0);
	cr_assert_eq(st.participants, 1);
	cr_assert_eq(st.dead, 1);
}

Test(inspect, probe_sees_participants_without_joining)
{
	lfipc_region_status st;

	LFIPC_STATUS_INIT(st);
	cr_assert_eq(lfipc_region_probe(rname, &st), 0);
	cr_assert_eq(st.participants, 1);
	cr_assert_eq(st.size, REGION_SIZE);
	cr_assert_eq(st.layout_version, 4);
	cr_assert(!st.stale);
	cr_assert(!st.initialising);
	/* the probe did not register: still one */
	LFIPC_STATUS_INIT(st);
	cr_assert_eq(lfipc_region_stat(r, &st), 0);
	cr_assert_eq(st.participants, 1);
	lfipc_region_close(r);
	r = NULL;
	LFIPC_STATUS_INIT(st);
	cr_assert_eq(lfipc_region_probe(rname, &st), 0);
	cr_assert_eq(st.participants, 0);
	cr_assert_eq(st.dead, 0);
	cr_assert(st.stale);
	cr_assert_eq(lfipc_region_probe("/lfipc-no-such-region-x", &st),
		     -ENOENT);
}

Test(inspect, queue_status_counts_depth_puts_gets_and_clears)
{
	lfipc_queue *q;
	lfipc_queue_status st;
	char buf[32];
	size_t len;

	cr_assert_eq(lfipc_queue_create(r, "q", 16, 32, LFIPC_QUEUE_JOINABLE,
					&q),
		     0);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(lfipc_queue_put(q, "abc", 3, LFIPC_NOWAIT), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(lfipc_queue_get(q, buf, sizeof(buf), &len,
					     LFIPC_NOWAIT),
			     0);
	cr_assert_eq(lfipc_queue_task_done(q), 0);
	LFIPC_STATUS_INIT(st);
	cr_assert_eq(lfipc_queue_stat(q, &st), 0);
	cr_assert_eq(st.depth, 7);
	cr_assert_eq(st.capacity, 16);
	cr_assert_eq(st.msg_size, 32);
	cr_assert(st.joinable);
	cr_assert(!st.shut_down);
	cr_assert_eq(st.puts, 10);
	cr_assert_eq(st.gets, 3);
	cr_assert_eq(st.cleared, 0);
	cr_assert_eq(st.tasks_unfinished, 9);
	cr_assert_eq(st.writing + st.reading + st.holes + st.orphans +
			 st.dead_claims,
		     0);
	cr_assert_eq(lfipc_queue_clear(q), 7);
	cr_assert_eq(lfipc_queue_shutdown(q), 0);
	LFIPC_STATUS_INIT(st);
	cr_assert_eq(lfipc_object_stat(r, "q", LFIPC_OBJ_QUEUE, &st), 0);
	cr_assert_eq(st.depth, 0);
	cr_assert_eq(st.cleared, 7);
	cr_assert(st.shut_down);
	cr_assert_eq(st.tasks_unfinished, 2); /* clear settles what it drops */
	cr_assert_eq(lfipc_object_stat(r, "q", LFIPC_OBJ_LOCK, &st),
		     -EMEDIUMTYPE);
	cr_assert_eq(lfipc_object_stat(r, "nope", LFIPC_OBJ_QUEUE, &st),
		     -ENOENT);
	lfipc_queue_close(q);
}

struct sleeper {
	const char *rname;
	const char *what;
};

/* A child that blocks in a get on an empty queue (until killed). */
static int block_in_get(void *arg)
{
	lfipc_region *mine;
	lfipc_queue *q;
	char buf[32];
	size_t len;

	if (lfipc_region_open(arg, &mine) != 0 ||
	    lfipc_queue_open(mine, "q", &q) != 0)
		return 1;
	lfipc_queue_get(q, buf, sizeof(buf), &len, LFIPC_FOREVER);
	return 2;
}

Test(inspect, queue_status_shows_a_sleeping_consumer)
{
	lfipc_queue *q;
	lfipc_queue_status st;
	pid_t pid;
	int i;

	cr_assert_eq(lfipc_queue_create(r, "q", 4, 32, 0, &q), 0);
	pid = th_fork(block_in_get, rname);
	for (i = 0; i < 5000; i++) {
		LFIPC_STATUS_INIT(st);
		cr_assert_eq(lfipc_queue_stat(q, &st), 0);
		if (st.consumers_sleeping)
			break;
		usleep(1000);
	}
	kill(pid, SIGKILL);
	cr_assert_eq(th_reap(pid, REAP_MS), 128 + SIGKILL);
	cr_assert(st.consumers_sleeping);
	cr_assert(!st.producers_sleeping);
	lfipc_queue_close(q);
}

static int hold_lock_and_die(void *arg)
{
	lfipc_region *mine;
	lfipc_lock *l;

	if (lfipc_region_open(arg, &mine) != 0 ||
	    lfipc_lock_open(mine, "l", &l) != 0 ||
	    lfipc_lock_acquire(l, LFIPC_NOWAIT) != 0)
		return 1;
	raise(SIGKILL);
	return 2;
}

Test(inspect, lock_status_names_holder_pid_tid_depth_and_death)
{
	lfipc_lock *l, *rl;
	lfipc_lock_status st;
	pid_t pid;

	cr_assert_eq(lfipc_lock_create(r, "l", false, &l), 0);
	cr_assert_eq(lfipc_lock_create(r, "rl", true, &rl), 0);
	LFIPC_STATUS_INIT(st);
	cr_assert_eq(lfipc_lock_stat(l, &st), 0);
	cr_assert(!st.locked);
	cr_assert_eq(st.holder.pid, 0);
	cr_assert(!st.recursive);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(lfipc_lock_acquire(rl, LFIPC_NOWAIT), 0);
	LFIPC_STATUS_INIT(st);
	cr_assert_eq(lfipc_object_stat(r, "rl", LFIPC_OBJ_LOCK, &st), 0);
	cr_assert(st.recursive);
	cr_assert(st.locked);
	cr_assert_eq(st.depth, 3);
	cr_assert_eq(st.holder.pid, getpid());
	cr_assert_eq(st.holder.tid, (pid_t)syscall(SYS_gettid));
	cr_assert(st.holder.alive);
	cr_assert(!st.owner_died);
	cr_assert_eq(st.waiters, 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(lfipc_lock_release(rl), 0);

	pid = th_fork(hold_lock_and_die, rname);
	cr_assert_eq(th_reap(pid, REAP_MS), 128 + SIGKILL);
	LFIPC_STATUS_INIT(st);
	cr_assert_eq(lfipc_lock_stat(l, &st), 0);
	cr_assert(st.locked);
	cr_assert_eq(st.holder.pid, pid);
	cr_assert_gt(st.holder.tid, 0);
	cr_assert(!st.holder.alive);
	cr_assert(st.owner_died);
	cr_assert_eq(lfipc_lock_acquire(l, LFIPC_NOWAIT), -EOWNERDEAD);
	LFIPC_STATUS_INIT(st);
	cr_assert_eq(lfipc_lock_stat(l, &st), 0);
	cr_assert_eq(st.holder.pid, getpid());
	cr_assert(!st.owner_died);
	cr_assert_eq(lfipc_lock_release(l), 0);
	lfipc_lock_close(l);
	lfipc_lock_close(rl);
}

static int wait_on_lock(void *arg)
{
	lfipc_region *mine;
	lfipc_lock *l;

	if (lfipc_region_open(arg, &mine) != 0 ||
	    lfipc_lock_open(mine, "l", &l) != 0)
		return 1;
	lfipc_lock_acquire(l, LFIPC_FOREVER);
	return 2;
}

Test(inspect, lock_status_counts_waiters)
{
	lfipc_lock *l;
	lfipc_lock_status st;
	pid_t pids[2];
	int i;

	cr_assert_eq(lfipc_lock_create(r, "l", false, &l), 0);
	cr_assert_eq(lfipc_lock_acquire(l, LFIPC_NOWAIT), 0);
	pids[0] = th_fork(wait_on_lock, rname);
	pids[1] = th_fork(wait_on_lock, rname);
	for (i = 0; i < 5000; i++) {
		LFIPC_STATUS_INIT(st);
		cr_assert_eq(lfipc_lock_stat(l, &st), 0);
		if (st.waiters == 2)
			break;
		usleep(1000);
	}
	for (i = 0; i < 2; i++) {
		kill(pids[i], SIGKILL);
		cr_assert_eq(th_reap(pids[i], REAP_MS), 128 + SIGKILL);
	}
	cr_assert_eq(st.waiters, 2);
	cr_assert_eq(lfipc_lock_release(l), 0);
	lfipc_lock_close(l);
}

Test(inspect, sem_event_barrier_array_status)
{
	lfipc_sem *s, *t;
	lfipc_event *e;
	lfipc_barrier *b;
	lfipc_array *a;
	lfipc_sem_status ss;
	lfipc_event_status es;
	lfipc_barrier_status bs;
	lfipc_array_status as;

	cr_assert_eq(lfipc_sem_create(r, "s", 5, true, &s), 0);
	cr_assert_eq(lfipc_sem_acquire(s, LFIPC_NOWAIT), 0);
	LFIPC_STATUS_INIT(ss);
	cr_assert_eq(lfipc_sem_stat(s, &ss), 0);
	cr_assert_eq(ss.value, 4);
	cr_assert_eq(ss.max, 5);
	cr_assert(ss.bounded);
	cr_assert(!ss.tracked);
	cr_assert_eq(ss.waiters, 0);
	cr_assert_eq(lfipc_sem_create_ex(r, "t", 3, LFIPC_SEM_TRACK_HOLDERS,
					 &t),
		     0);
	cr_assert_eq(lfipc_sem_acquire(t, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_sem_acquire(t, LFIPC_NOWAIT), 0);
	LFIPC_STATUS_INIT(ss);
	cr_assert_eq(lfipc_object_stat(r, "t", LFIPC_OBJ_SEM, &ss), 0);
	cr_assert_eq(ss.value, 1);
	cr_assert(ss.tracked);
	cr_assert_eq(ss.holders, 1);
	cr_assert_eq(ss.held, 2);
	cr_assert_eq(ss.dead_held, 0);

	cr_assert_eq(lfipc_event_create(r, "e", &e), 0);
	LFIPC_STATUS_INIT(es);
	cr_assert_eq(lfipc_event_stat(e, &es), 0);
	cr_assert(!es.set);
	cr_assert_eq(lfipc_event_set(e), 0);
	LFIPC_STATUS_INIT(es);
	cr_assert_eq(lfipc_object_stat(r, "e", LFIPC_OBJ_EVENT, &es), 0);
	cr_assert(es.set);

	cr_assert_eq(lfipc_barrier_create(r, "b", 3, &b), 0);
	LFIPC_STATUS_INIT(bs);
	cr_assert_eq(lfipc_barrier_stat(b, &bs), 0);
	cr_assert_eq(bs.parties, 3);
	cr_assert_eq(bs.waiting, 0);
	cr_assert(!bs.broken);
	cr_assert_eq(lfipc_barrier_abort(b), 0);
	LFIPC_STATUS_INIT(bs);
	cr_assert_eq(lfipc_object_stat(r, "b", LFIPC_OBJ_BARRIER, &bs), 0);
	cr_assert(bs.broken);

	cr_assert_eq(lfipc_array_create(r, "a", LFIPC_F64, 7, true, &a), 0);
	LFIPC_STATUS_INIT(as);
	cr_assert_eq(lfipc_array_stat(a, &as), 0);
	cr_assert_eq(as.type, LFIPC_F64);
	cr_assert_eq(as.length, 7);
	cr_assert_eq(as.elem_size, 8);
	cr_assert(as.has_lock);
	cr_assert_eq(as.lock.struct_size, sizeof(as.lock));
	cr_assert(as.lock.recursive);
	cr_assert(!as.lock.locked);
	LFIPC_STATUS_INIT(as);
	cr_assert_eq(lfipc_object_stat(r, "a", LFIPC_OBJ_ARRAY, &as), 0);
	cr_assert_eq(as.length, 7);
	cr_assert_eq(lfipc_array_type(NULL), LFIPC_I8);

	lfipc_sem_close(s);
	lfipc_sem_release(t);
	lfipc_sem_release(t);
	lfipc_sem_close(t);
	lfipc_event_close(e);
	lfipc_barrier_close(b);
	lfipc_array_close(a);
}

Test(inspect, cond_status_counts_its_lock)
{
	lfipc_cond *c;
	lfipc_cond_status cs;

	cr_assert_eq(lfipc_cond_create(r, "c", NULL, &c), 0);
	cr_assert_eq(lfipc_lock_acquire(lfipc_cond_lock(c), LFIPC_NOWAIT), 0);
	LFIPC_STATUS_INIT(cs);
	cr_assert_eq(lfipc_cond_stat(c, &cs), 0);
	cr_assert(cs.own_lock);
	cr_assert_eq(cs.waiters, 0);
	cr_assert_eq(cs.waiters_max, LFIPC_COND_WAITERS_MAX);
	cr_assert(cs.lock.locked);
	cr_assert_eq(cs.lock.holder.pid, getpid());
	cr_assert_eq(lfipc_lock_release(lfipc_cond_lock(c)), 0);
	lfipc_cond_close(c);
}

Test(inspect, pipe_status_shows_ends_and_buffered_bytes)
{
	lfipc_conn *e0, *e1;
	lfipc_pipe_status ps;

	cr_assert_eq(lfipc_pipe_create(r, "p", 4096, false, &e0, &e1), 0);
	cr_assert_eq(lfipc_conn_send(e1, "hello", 5, LFIPC_NOWAIT), 0);
	LFIPC_STATUS_INIT(ps);
	cr_assert_eq(lfipc_conn_stat(e0, &ps), 0);
	cr_assert(!ps.duplex);
	cr_assert_eq(ps.ring_bytes, 4096);
	cr_assert(ps.end[0].held);
	cr_assert(!ps.end[0].closed);
	cr_assert_eq(ps.end[0].holder.pid, getpid());
	cr_assert(ps.end[0].holder.alive);
	cr_assert_eq(ps.end[0].bytes_buffered, 16); /* 8 header + 5 + pad */
	lfipc_conn_close(e1);
	LFIPC_STATUS_INIT(ps);
	cr_assert_eq(lfipc_object_stat(r, "p", LFIPC_OBJ_PIPE, &ps), 0);
	cr_assert(ps.end[1].closed);
	cr_assert(!ps.end[1].held);
	lfipc_conn_close(e0);
}

Test(inspect, status_of_garbage_is_eproto_not_a_crash)
{
	lfipc_queue *q;
	lfipc_queue_status st;
	lfipc_object_entry ent;
	lfipc_region *raw;
	uint8_t *base;
	size_t i;

	cr_assert_eq(lfipc_queue_create(r, "q", 4, 8, 0, &q), 0);
	lfipc_queue_close(q);
	LFIPC_STATUS_INIT(ent);
	cr_assert_eq(lfipc_object_find(r, "q", &ent), 0);
	/* scribble over the queue's header through a second mapping */
	cr_assert_eq(lfipc_region_open(rname, &raw), 0);
	{
		struct lfipc_region_status rs;
		unsigned cur = 0;

		LFIPC_STATUS_INIT(rs);
		cr_assert_eq(lfipc_region_stat(raw, &rs), 0);
		cr_assert_eq(lfipc_object_next(raw, &cur, &ent), 1);
	}
	/* find the block: the queue magic "lfipcQue" */
	base = NULL;
	{
		uint8_t *m = (uint8_t *)mmap(NULL, REGION_SIZE,
					    PROT_READ | PROT_WRITE, MAP_SHARED,
					    lfipc_region_fd(raw), 0);
		cr_assert_neq(m, MAP_FAILED);
		for (i = 0; i + 8 <= REGION_SIZE; i += 64) {
			uint64_t v;

			memcpy(&v, m + i, 8);
			if (v == UINT64_C(0x6c66697063517565)) {
				base = m + i;
				break;
			}
		}
		cr_assert_not_null(base);
		for (i = 8; i < 768; i++)
			base[i] = (uint8_t)(i * 37);
		LFIPC_STATUS_INIT(st);
		cr_assert_eq(lfipc_object_stat(r, "q", LFIPC_OBJ_QUEUE, &st),
			     -EPROTO);
		munmap(m, REGION_SIZE);
	}
	lfipc_region_close(raw);
}
