/* SPDX-License-Identifier: MIT */
/*
 * Review 19: the CAS retry bound (internal/wait.h, lfipc_cas_bound) under
 * legitimate contention, and what its give-ups leave behind.
 *
 * Legitimate contention must never reach the bound: processes x threads
 * hammering one Semaphore, Event, Lock and Queue get no -EPROTO and no
 * -ETIMEDOUT before their deadline, and the counts come out exact.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <lfipc/inspect.h>
#include <lfipc/queue.h>
#include <lfipc/region.h>
#include <lfipc/sync.h>

#include "common/testhelp.h"
#include "common/casfail.h"
#include "internal/queue.h"
#include "internal/region.h"
#include "internal/sync_layout.h"
#include "internal/wait.h"

#define REGION_SIZE ((size_t)4 << 20)
#define MS ((int64_t)1000000)
#define NPROC 2
#define NTHR 4
/* A timeout no well-behaved contention comes near. */
#define OP_TIMEOUT (5000 * MS)

static lfipc_region *r;
static uint8_t *base; /* a second mapping of the whole region */

/* Results of every worker, in memory shared across fork. */
struct board {
	_Atomic long ops;      /* operations that succeeded */
	_Atomic long eproto;   /* -EPROTO seen */
	_Atomic long other;    /* any other unexpected return */
	_Atomic int first_rc;  /* the first unexpected return */
	_Atomic long inside;   /* holders inside a critical section now */
	_Atomic long too_many; /* more holders inside than allowed */
	long plain;	       /* a counter only the Lock protects */
	_Atomic long sum_in, sum_out; /* queue checksums */
	_Atomic long got;	      /* messages got */
};
static struct board *bd;

static void setup(void)
{
	cr_assert_eq(lfipc_region_create(NULL, REGION_SIZE, 0, &r), 0);
	base = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		    lfipc_region_fd(r), 0);
	cr_assert_neq(base, MAP_FAILED);
	bd = mmap(NULL, sizeof(*bd), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(bd, MAP_FAILED);
	memset(bd, 0, sizeof(*bd));
}

static void teardown(void)
{
	munmap(bd, sizeof(*bd));
	munmap(base, REGION_SIZE);
	lfipc_region_close(r);
	r = NULL;
}

TestSuite(review19, .init = setup, .fini = teardown, .timeout = 120);

static void bad(int rc)
{
	int zero = 0;

	if (rc == -EPROTO)
		atomic_fetch_add(&bd->eproto, 1);
	else
		atomic_fetch_add(&bd->other, 1);
	atomic_compare_exchange_strong(&bd->first_rc, &zero, rc);
}

/* How long each stress worker runs: 1 s in make check. */
static int64_t stress_ns(void)
{
	return 1000 * MS * th_scale();
}

/* Run fn in NTHR threads here, or in one under TSan (a fork child of a
 * process with threads must not make threads there). */
struct work {
	void *(*fn)(void *);
	void *arg;
};

static int run_threads(struct work *w)
{
	pthread_t t[NTHR];
	int n = th_tsan() ? 1 : NTHR;

	if (n == 1) {
		w->fn(w->arg);
		return 0;
	}
	for (int i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, w->fn, w->arg) != 0)
			return 2;
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	return 0;
}

static int child_main(void *arg)
{
	return run_threads(arg);
}

/* NPROC - 1 children and this process, each with its threads. */
/* Stop and continue a child every 20 ms until end (a debugger, a job
 * control shell): its threads stop in the middle of their CAS loops. */
struct chaos {
	pid_t pid;
	int64_t end;
	pthread_t t;
};

static void *chaos_main(void *p)
{
	struct chaos *c = p;

	while (th_now_ns() < c->end) {
		kill(c->pid, SIGSTOP);
		usleep(20000);
		kill(c->pid, SIGCONT);
		usleep(20000);
	}
	kill(c->pid, SIGCONT);
	return NULL;
}

static void run_everywhere_chaos(void *(*fn)(void *), void *arg,
				 int64_t chaos_end)
{
	struct work w = {fn, arg};
	pid_t pids[NPROC - 1];
	struct chaos c = {0, chaos_end, 0};

	for (int p = 0; p < NPROC - 1; p++) {
		pids[p] = th_fork(child_main, &w);
		cr_assert_geq(pids[p], 0);
	}
	if (chaos_end) {
		c.pid = pids[0];
		cr_assert_eq(pthread_create(&c.t, NULL, chaos_main, &c), 0);
	}
	if (th_tsan()) {
		/* threads here only: the children are single-threaded */
		pthread_t t[NTHR];

		for (int i = 0; i < NTHR; i++)
			cr_assert_eq(pthread_create(&t[i], NULL, fn, arg), 0);
		for (int i = 0; i < NTHR; i++)
			pthread_join(t[i], NULL);
	} else {
		cr_assert_eq(run_threads(&w), 0);
	}
	if (chaos_end)
		pthread_join(c.t, NULL);
	cr_assert_eq(th_reap_all(pids, NPROC - 1, 60000), 0);
}

static void run_everywhere(void *(*fn)(void *), void *arg)
{
	run_everywhere_chaos(fn, arg, 0);
}

/* ---- Semaphore -------------------------------------------------------- */

#define SEM_UNITS 3

struct sem_arg {
	int64_t end;
	bool nowait; /* acquire with LFIPC_NOWAIT, retrying -EAGAIN */
};

static void *sem_worker(void *p)
{
	struct sem_arg *a = p;
	lfipc_sem *s;
	int rc;

	rc = lfipc_sem_open(r, "s", &s);
	if (rc) {
		bad(rc);
		return NULL;
	}
	while (th_now_ns() < a->end) {
		rc =
		    lfipc_sem_acquire(s, a->nowait ? LFIPC_NOWAIT : OP_TIMEOUT);
		if (rc == -EAGAIN && a->nowait)
			continue;
		if (rc) {
			bad(rc);
			break;
		}
		if (atomic_fetch_add(&bd->inside, 1) >= SEM_UNITS)
			atomic_fetch_add(&bd->too_many, 1);
		atomic_fetch_sub(&bd->inside, 1);
		rc = lfipc_sem_release(s);
		if (rc) {
			bad(rc);
			break;
		}
		atomic_fetch_add(&bd->ops, 1);
	}
	lfipc_sem_close(s);
	return NULL;
}

static void sem_stress(bool nowait, bool chaos)
{
	struct sem_arg a = {th_now_ns() + stress_ns(), nowait};
	lfipc_sem *s;

	cr_assert_eq(lfipc_sem_create(r, "s", SEM_UNITS, false, &s), 0);
	run_everywhere_chaos(sem_worker, &a, chaos ? a.end : 0);
	cr_log_info("sem: %ld acquire/release pairs", atomic_load(&bd->ops));
	cr_assert_eq(atomic_load(&bd->eproto), 0);
	cr_assert_eq(atomic_load(&bd->other), 0, "first: %d",
		     atomic_load(&bd->first_rc));
	cr_assert_eq(atomic_load(&bd->too_many), 0);
	cr_assert_eq(lfipc_sem_value(s), SEM_UNITS);
	cr_assert_gt(atomic_load(&bd->ops), 1000);
	lfipc_sem_close(s);
}

Test(review19, sem_acquire_release_contention_never_gives_eproto)
{
	sem_stress(false, false);
}

Test(review19, sem_nowait_acquire_release_contention_never_gives_eproto)
{
	sem_stress(true, false);
}

/* The same while one process is stopped and continued every 20 ms. */
Test(review19, sem_contention_with_a_stopped_process_never_gives_eproto)
{
	sem_stress(false, true);
}

/* ---- Event ------------------------------------------------------------ */

static void *event_worker(void *p)
{
	int64_t end = *(int64_t *)p;
	lfipc_event *e;
	uint64_t seed = (uint64_t)th_now_ns() | 1;
	int rc;

	rc = lfipc_event_open(r, "e", &e);
	if (rc) {
		bad(rc);
		return NULL;
	}
	while (th_now_ns() < end) {
		switch (th_rand(&seed) % 3) {
		case 0:
			rc = lfipc_event_set(e);
			break;
		case 1:
			rc = lfipc_event_clear(e);
			break;
		default:
			/* a set comes within microseconds */
			rc = lfipc_event_wait(e, LFIPC_NOWAIT);
			if (rc == -EAGAIN)
				rc = 0;
			break;
		}
		if (rc) {
			bad(rc);
			break;
		}
		atomic_fetch_add(&bd->ops, 1);
	}
	lfipc_event_close(e);
	return NULL;
}

Test(review19, event_set_clear_contention_never_gives_eproto)
{
	int64_t end = th_now_ns() + stress_ns();
	lfipc_event *e;

	cr_assert_eq(lfipc_event_create(r, "e", &e), 0);
	run_everywhere(event_worker, &end);
	cr_log_info("event: %ld calls", atomic_load(&bd->ops));
	cr_assert_eq(atomic_load(&bd->eproto), 0);
	cr_assert_eq(atomic_load(&bd->other), 0, "first: %d",
		     atomic_load(&bd->first_rc));
	cr_assert_gt(atomic_load(&bd->ops), 1000);
	lfipc_event_close(e);
}

/* ---- Lock ------------------------------------------------------------- */

static void *lock_worker(void *p)
{
	int64_t end = *(int64_t *)p;
	lfipc_lock *l;
	int rc;

	rc = lfipc_lock_open(r, "l", &l);
	if (rc) {
		bad(rc);
		return NULL;
	}
	while (th_now_ns() < end) {
		rc = lfipc_lock_acquire(l, OP_TIMEOUT);
		if (rc) {
			bad(rc);
			break;
		}
		if (atomic_fetch_add(&bd->inside, 1) != 0)
			atomic_fetch_add(&bd->too_many, 1);
		bd->plain++;
		atomic_fetch_sub(&bd->inside, 1);
		rc = lfipc_lock_release(l);
		if (rc) {
			bad(rc);
			break;
		}
		atomic_fetch_add(&bd->ops, 1);
	}
	lfipc_lock_close(l);
	return NULL;
}

static void lock_stress(bool chaos)
{
	int64_t end = th_now_ns() + stress_ns();
	lfipc_lock *l;

	cr_assert_eq(lfipc_lock_create(r, "l", false, &l), 0);
	run_everywhere_chaos(lock_worker, &end, chaos ? end : 0);
	cr_log_info("lock: %ld sections", atomic_load(&bd->ops));
	cr_assert_eq(atomic_load(&bd->eproto), 0);
	cr_assert_eq(atomic_load(&bd->other), 0, "first: %d",
		     atomic_load(&bd->first_rc));
	cr_assert_eq(atomic_load(&bd->too_many), 0);
	cr_assert_eq(bd->plain, atomic_load(&bd->ops));
	cr_assert_gt(atomic_load(&bd->ops), 1000);
	lfipc_lock_close(l);
}

Test(review19, lock_contention_never_gives_eproto_and_counts_exactly)
{
	lock_stress(false);
}

/* The same while one process is stopped and continued every 20 ms (its
 * threads stop holding the Lock, too). */
Test(review19, lock_contention_with_a_stopped_process_counts_exactly)
{
	lock_stress(true);
}

/* ---- Queue ------------------------------------------------------------ */

static void *queue_worker(void *p)
{
	int64_t end = *(int64_t *)p;
	uint64_t seed = (uint64_t)th_now_ns() | 1;
	lfipc_queue *q;
	long v, got;
	size_t len;
	int rc;

	rc = lfipc_queue_open(r, "q", &q);
	if (rc) {
		bad(rc);
		return NULL;
	}
	while (th_now_ns() < end) {
		v = (long)(th_rand(&seed) % 1000000) + 1;
		rc = lfipc_queue_put(q, &v, sizeof(v), OP_TIMEOUT);
		if (rc) {
			bad(rc);
			break;
		}
		atomic_fetch_add(&bd->sum_in, v);
		rc = lfipc_queue_get(q, &got, sizeof(got), &len, OP_TIMEOUT);
		if (rc || len != sizeof(got)) {
			bad(rc ? rc : -EMSGSIZE);
			break;
		}
		atomic_fetch_add(&bd->sum_out, got);
		rc = lfipc_queue_task_done(q);
		if (rc) {
			bad(rc);
			break;
		}
		atomic_fetch_add(&bd->ops, 1);
	}
	lfipc_queue_close(q);
	return NULL;
}

static void queue_stress(bool chaos)
{
	int64_t end = th_now_ns() + stress_ns();
	lfipc_queue *q;
	long dummy;

	cr_assert_eq(lfipc_queue_create(r, "q", 4, sizeof(long),
					LFIPC_QUEUE_JOINABLE, &q),
		     0);
	run_everywhere_chaos(queue_worker, &end, chaos ? end : 0);
	cr_log_info("queue: %ld put/get/task_done", atomic_load(&bd->ops));
	cr_assert_eq(atomic_load(&bd->eproto), 0);
	cr_assert_eq(atomic_load(&bd->other), 0, "first: %d",
		     atomic_load(&bd->first_rc));
	cr_assert_eq(atomic_load(&bd->sum_in), atomic_load(&bd->sum_out));
	cr_assert_eq(
	    lfipc_queue_get(q, &dummy, sizeof(dummy), NULL, LFIPC_NOWAIT),
	    -EAGAIN);
	cr_assert_eq(lfipc_queue_join(q, 1000 * MS), 0);
	cr_assert_gt(atomic_load(&bd->ops), 1000);
	lfipc_queue_close(q);
}

Test(review19, joinable_queue_contention_never_gives_eproto_and_sums_match)
{
	queue_stress(false);
}

/* The same while one process is stopped and continued every 20 ms. */
Test(review19, joinable_queue_with_a_stopped_process_sums_match)
{
	queue_stress(true);
}

/* ---- the bound's deadline under a peer that rewrites the word --------- */

static uint8_t *find(uint32_t magic)
{
	for (size_t off = 0; off + 64 <= REGION_SIZE; off += 64) {
		uint32_t w;

		memcpy(&w, base + off, sizeof(w));
		if (w == magic)
			return base + off;
	}
	return NULL;
}

/* The library's address of what blk points to in the second mapping. */
static void *lib_addr(const uint8_t *blk)
{
	return r->base + (blk - base);
}

#define SEM_DATA(blk) ((blk) + 16)
#define SEM_DATA_HI(blk) ((blk) + 20)

/* How long a NOWAIT call may take under the peer: its first look at the
 * clock (LFIPC_CAS_CLOCK failed CAS, each costing the peer two signals
 * and two mprotect calls) with room for a sanitized build, well below
 * the bound's second. */
#define NOWAIT_MAX_NS (700 * MS)

/*
 * LFIPC_NOWAIT is one attempt (internal/wait.h, LFIPC_DL_NOW), and
 * lfipc_lock_acquire() documents -EAGAIN for it while a peer rewrites the
 * word ("until the deadline when that comes first: -ETIMEDOUT / -EAGAIN").
 * On main the CAS bound let LFIPC_DL_NOW spin for its whole second: a
 * NOWAIT acquire returned -EPROTO after about 1.2 s.
 */
Test(review19,
     lock_nowait_acquire_returns_eagain_at_once_under_a_rewriting_peer,
     .timeout = 30)
{
	lfipc_lock *l;
	uint8_t *blk;
	int64_t took;
	int rc;

	cr_assert_eq(lfipc_lock_create(r, "l", false, &l), 0);
	blk = find(SYNC_LOCK_MAGIC);
	cr_assert_not_null(blk);
	/* The word names nobody (a flag bit alone: taken over at once);
	 * the peer moves the flag bits before every CAS. */
	atomic_store((_Atomic uint32_t *)(blk + 8), UINT32_C(0x40000000));
	cf_start(lib_addr(blk + 8), blk + 8, UINT32_C(0x40000000));
	CF_TIMED(took, rc = lfipc_lock_acquire(l, LFIPC_NOWAIT));
	cr_assert_eq(rc, -EAGAIN, "acquire: %d after %lld ms", rc,
		     (long long)(took / MS));
	cr_assert_lt(took, NOWAIT_MAX_NS, "acquire took %lld ms",
		     (long long)(took / MS));
	/* An expired timeout is a deadline that passed: -ETIMEDOUT. */
	atomic_store((_Atomic uint32_t *)(blk + 8), UINT32_C(0x40000000));
	cf_start(lib_addr(blk + 8), blk + 8, UINT32_C(0x40000000));
	CF_TIMED(took, rc = lfipc_lock_acquire(l, -5));
	cr_assert_eq(rc, -ETIMEDOUT, "acquire: %d after %lld ms", rc,
		     (long long)(took / MS));
	cr_assert_lt(took, NOWAIT_MAX_NS, "acquire took %lld ms",
		     (long long)(took / MS));
	/* The peer stopped: the word naming nobody is taken over. */
	rc = lfipc_lock_acquire(l, LFIPC_NOWAIT);
	cr_assert(rc == 0 || rc == -EOWNERDEAD, "acquire: %d", rc);
	cr_assert_eq(lfipc_lock_release(l), 0);
	lfipc_lock_close(l);
}

/* The same for a Semaphore with a unit to take: the peer moves the unused
 * upper half of its value word before every CAS. On main: -EPROTO after
 * about 1.2 s. */
Test(review19, sem_nowait_acquire_returns_eagain_at_once_under_a_rewriting_peer,
     .timeout = 30)
{
	lfipc_sem *s;
	uint8_t *blk;
	int64_t took;
	int rc;

	cr_assert_eq(lfipc_sem_create(r, "s", 1, false, &s), 0);
	blk = find(SEM_MAGIC);
	cr_assert_not_null(blk);
	cf_start(lib_addr(SEM_DATA(blk)), SEM_DATA_HI(blk), 1);
	CF_TIMED(took, rc = lfipc_sem_acquire(s, LFIPC_NOWAIT));
	cr_assert_eq(rc, -EAGAIN, "acquire: %d after %lld ms", rc,
		     (long long)(took / MS));
	cr_assert_lt(took, NOWAIT_MAX_NS, "acquire took %lld ms",
		     (long long)(took / MS));
	/* The peer stopped: the unit is still there, and taken. */
	atomic_store((_Atomic uint32_t *)SEM_DATA_HI(blk), 0);
	cr_assert_eq(lfipc_sem_value(s), 1);
	cr_assert_eq(lfipc_sem_acquire(s, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_sem_value(s), 0);
	lfipc_sem_close(s);
}

/* A token whose participant slot lies past the table: always dead. */
#define DEAD_TOKEN ((UINT32_C(2046) << 19) | 1u)

/* A single-producer queue whose role word names a dead producer, the
 * peer moving its thread tag before every CAS of role_take(). On main a
 * NOWAIT put returned -EPROTO after about 1.2 s. */
Test(review19, queue_nowait_put_returns_eagain_at_once_under_a_rewriting_peer,
     .timeout = 30)
{
	_Atomic uint64_t *role;
	lfipc_queue *q;
	uint8_t *at;
	uint64_t v = 0;
	int64_t took;
	size_t len;
	int rc;

	cr_assert_eq(
	    lfipc_queue_create(r, "q", 4, 8, LFIPC_QUEUE_SINGLE_PRODUCER, &q),
	    0);
	role = &q->h->role[LFIPC_Q_ROLE_PUT];
	at = base + ((uint8_t *)role - r->base);
	atomic_store((_Atomic uint64_t *)at, LFIPC_Q_ROLE(DEAD_TOKEN, 0));
	/* The tag is the low half (x86-64: the first four bytes). */
	cf_start((void *)role, at, 1);
	CF_TIMED(took, rc = lfipc_queue_put(q, "12345678", 8, LFIPC_NOWAIT));
	cr_assert_eq(rc, -EAGAIN, "put: %d after %lld ms", rc,
		     (long long)(took / MS));
	cr_assert_lt(took, NOWAIT_MAX_NS, "put took %lld ms",
		     (long long)(took / MS));
	cr_assert_eq(lfipc_queue_put(q, "12345678", 8, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_get(q, &v, 8, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(memcmp(&v, "12345678", 8), 0);
	lfipc_queue_close(q);
}

/* ---- a give-up must not swallow a wake-up ----------------------------- */

struct sleeper {
	lfipc_sem *s;
	int64_t timeout;
	int rc;
	int64_t done; /* when the acquire returned */
};

static void *sleep_acquire(void *p)
{
	struct sleeper *a = p;

	a->rc = lfipc_sem_acquire(a->s, a->timeout);
	a->done = th_now_ns();
	return NULL;
}

/* Wait until the semaphore has n sleepers, and a little more, so that the
 * last one is in its futex wait. */
static void until_sleepers(lfipc_sem *s, unsigned n)
{
	lfipc_sem_status st = {.struct_size = sizeof(st)};
	int64_t end = th_now_ns() + 5000 * MS;

	do {
		cr_assert_eq(lfipc_sem_stat(s, &st), 0);
		cr_assert_lt(th_now_ns(), end, "%u sleepers", st.waiters);
		usleep(1000);
	} while (st.waiters < n);
	usleep(30000);
}

/*
 * Two acquirers sleep on a Semaphore; a unit arrives with its wake-up of
 * one (the release's K1 and K3, done here through the second mapping and
 * the wait layer, since the peer would fail the release's own CAS). The
 * woken one (the first sleeper: the kernel wakes in order) meets a peer
 * that rewrites the word before each of its CAS and gives up at its
 * deadline from inside its readiness callback. The wake-up it consumed
 * must go on to the other sleeper, which then takes the unit at once. On
 * main it did not: the other slept on with a unit there until the end of
 * its safety slice (1 s; set longer here) or, as here, its own deadline.
 */
Test(review19, a_sleeper_that_gives_up_in_its_cas_loop_passes_its_wake_on,
     .timeout = 60)
{
	struct sleeper a = {.timeout = 300 * MS}, b = {.timeout = 5000 * MS};
	struct sem_shm *lib;
	pthread_t ta, tb;
	uint8_t *blk;

	/* The peer is the fault handler of casfail.h, running in the
	 * sleeper's thread on state the main thread set: ThreadSanitizer
	 * cannot see the page fault that orders them. */
	if (th_tsan())
		cr_skip_test("casfail.h's handler in a second thread");
	lfipc__wait_set_safety_slice(60000 * MS);
	cr_assert_eq(lfipc_sem_create(r, "s", 0, false, &a.s), 0);
	b.s = a.s;
	blk = find(SEM_MAGIC);
	cr_assert_not_null(blk);
	lib = lib_addr(blk);
	cr_assert_eq(pthread_create(&ta, NULL, sleep_acquire, &a), 0);
	until_sleepers(a.s, 1);
	cr_assert_eq(pthread_create(&tb, NULL, sleep_acquire, &b), 0);
	until_sleepers(a.s, 2);
	cf_start(lib_addr(SEM_DATA(blk)), SEM_DATA_HI(blk), 1);
	atomic_store((_Atomic uint32_t *)SEM_DATA(blk), 1);
	lfipc__wake(r, &lib->wq, (_Atomic uint32_t *)(void *)&lib->data, 1);
	pthread_join(ta, NULL);
	cr_assert_gt(cf_stop(), 1000);
	pthread_join(tb, NULL);
	lfipc__wait_set_safety_slice(0);
	cr_assert_eq(a.rc, -ETIMEDOUT, "woken sleeper: %d", a.rc);
	cr_assert_eq(b.rc, 0, "other sleeper: %d", b.rc);
	cr_assert_lt(b.done - a.done, 1000 * MS,
		     "the other sleeper took the unit %lld ms after the "
		     "woken one gave up",
		     (long long)((b.done - a.done) / MS));
	cr_assert_eq(lfipc_sem_value(a.s), 0);
	lfipc_sem_close(a.s);
}
