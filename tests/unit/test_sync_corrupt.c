/* SPDX-License-Identifier: MIT */
/* Shared memory is untrusted: Semaphore, Event, Condition and Barrier
 * memory overwritten with garbage gives errors (-EPROTO at open, or a
 * clean error or result from an operation), never a crash or a hang. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <lfipc/region.h>
#include <lfipc/inspect.h>
#include <lfipc/sync.h>

#include "common/testhelp.h"
#include "common/casfail.h"
#include "internal/layout.h"
#include "internal/region.h"
#include "internal/sync_layout.h"

#define REGION_SIZE ((size_t)1 << 20)
#define MS ((int64_t)1000000)

static lfipc_region *r;
static uint8_t *base; /* a second mapping of the whole region */

static void setup(void)
{
	cr_assert_eq(lfipc_region_create(NULL, REGION_SIZE, 0, &r), 0);
	base = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		    lfipc_region_fd(r), 0);
	cr_assert_neq(base, MAP_FAILED);
}

static void teardown(void)
{
	munmap(base, REGION_SIZE);
	lfipc_region_close(r);
	r = NULL;
}

TestSuite(sync_corrupt, .init = setup, .fini = teardown, .timeout = 120);

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

/* Overwrite one random 32-bit word among the first n bytes after the
 * magic, with a random or an extreme value. */
static void scribble(uint8_t *blk, size_t n, uint64_t *seed)
{
	static const uint32_t extremes[] = {
	    0, 1, 0x7fffffffu, 0x80000000u, 0xffffffffu, 0xfffffffeu};
	size_t at = 4 + (th_rand(seed) % ((n - 4) / 4)) * 4;
	uint32_t v = (th_rand(seed) & 1)
			 ? (uint32_t)th_rand(seed)
			 : extremes[th_rand(seed) %
				    (sizeof(extremes) / sizeof(extremes[0]))];

	memcpy(blk + at, &v, sizeof(v));
}

Test(sync_corrupt, bad_magic_is_eproto_for_every_type)
{
	lfipc_sem *s;
	lfipc_event *e;
	lfipc_cond *c;
	lfipc_barrier *b;
	uint32_t magics[] = {SEM_MAGIC, EVENT_MAGIC, COND_MAGIC, BARRIER_MAGIC};

	cr_assert_eq(lfipc_sem_create(r, "s", 1, false, &s), 0);
	cr_assert_eq(lfipc_event_create(r, "e", &e), 0);
	cr_assert_eq(lfipc_cond_create(r, "c", NULL, &c), 0);
	cr_assert_eq(lfipc_barrier_create(r, "b", 2, &b), 0);
	for (size_t i = 0; i < 4; i++) {
		uint8_t *blk = find(magics[i]);

		cr_assert_not_null(blk, "magic %zu not found", i);
		blk[0] ^= 0xff;
	}
	cr_assert_eq(lfipc_sem_open(r, "s", &s), -EPROTO);
	cr_assert_eq(lfipc_event_open(r, "e", &e), -EPROTO);
	cr_assert_eq(lfipc_cond_open(r, "c", &c), -EPROTO);
	cr_assert_eq(lfipc_barrier_open(r, "b", &b), -EPROTO);
}

Test(sync_corrupt, a_condition_pointing_at_no_lock_is_eproto)
{
	lfipc_lock *l;
	lfipc_cond *c;
	uint8_t *blk;
	uint64_t off;

	cr_assert_eq(lfipc_lock_create(r, "l", false, &l), 0);
	cr_assert_eq(lfipc_cond_create(r, "c", l, &c), 0);
	lfipc_cond_close(c);
	blk = find(COND_MAGIC);
	cr_assert_not_null(blk);
	off = (uint64_t)REGION_SIZE * 4; /* outside the region */
	((struct cond_shm *)(void *)blk)->lock_off = off;
	cr_assert_eq(lfipc_cond_open(r, "c", &c), -EPROTO);
	off = (uint64_t)(blk - base) + COND_RING_OFF; /* inside, not a lock */
	((struct cond_shm *)(void *)blk)->lock_off = off;
	cr_assert_eq(lfipc_cond_open(r, "c", &c), -EPROTO);
	lfipc_lock_close(l);
}

static void exercise_sem(void)
{
	lfipc_sem *s;

	if (lfipc_sem_open(r, "s", &s) != 0)
		return;
	lfipc_sem_acquire(s, LFIPC_NOWAIT);
	lfipc_sem_release(s);
	lfipc_sem_acquire(s, 1 * MS);
	cr_assert_geq(lfipc_sem_value(s), 0);
	cr_assert_leq((unsigned)lfipc_sem_value(s), lfipc_sem_max(s));
	lfipc_sem_close(s);
}

static void exercise_event(void)
{
	lfipc_event *e;

	if (lfipc_event_open(r, "e", &e) != 0)
		return;
	lfipc_event_wait(e, 1 * MS);
	lfipc_event_set(e);
	cr_assert_eq(lfipc_event_wait(e, LFIPC_NOWAIT), 0);
	lfipc_event_clear(e);
	lfipc_event_close(e);
}

static void exercise_cond(void)
{
	lfipc_cond *c;
	int rc;

	if (lfipc_cond_open(r, "c", &c) != 0)
		return;
	rc = lfipc_lock_acquire(lfipc_cond_lock(c), 5 * MS);
	if (rc == 0 || rc == -EOWNERDEAD) {
		lfipc_cond_notify(c, 3);
		lfipc_cond_wait(c, 1 * MS);
		lfipc_cond_notify_all(c);
		lfipc_lock_release(lfipc_cond_lock(c));
	}
	lfipc_cond_close(c);
}

static void exercise_barrier(void)
{
	lfipc_barrier *b;
	int rc;

	if (lfipc_barrier_open(r, "b", &b) != 0)
		return;
	rc = lfipc_barrier_wait(b, 1 * MS);
	cr_assert(rc == 0 || rc == 1 || rc == -ETIMEDOUT || rc == -EPIPE ||
		      rc == -EPROTO,
		  "rc %d", rc);
	lfipc_barrier_n_waiting(b);
	lfipc_barrier_reset(b);
	lfipc_barrier_abort(b);
	lfipc_barrier_reset(b);
	lfipc_barrier_close(b);
}

Test(sync_corrupt, random_garbage_in_shared_words_never_crashes_or_hangs)
{
	uint64_t seed = 0x5eed0001u;
	lfipc_sem *s, *ts;
	lfipc_event *e;
	lfipc_cond *c;
	lfipc_barrier *b;
	uint8_t *blk[4];
	uint8_t save[4][4096];
	/* The header words of each, and of the Condition its first four
	 * slots, of the Barrier its first two arrival tokens. */
	size_t span[4] = {sizeof(struct sem_shm), sizeof(struct event_shm),
			  COND_RING_OFF + 4 * sizeof(struct cond_slot),
			  BARRIER_WAITERS_OFF + 2 * sizeof(uint32_t)};
	int rounds = 500 * th_scale();

	cr_assert_eq(lfipc_sem_create(r, "s", 1, false, &s), 0);
	cr_assert_eq(
	    lfipc_sem_create_ex(r, "ts", 1, LFIPC_SEM_TRACK_HOLDERS, &ts), 0);
	cr_assert_eq(lfipc_event_create(r, "e", &e), 0);
	cr_assert_eq(lfipc_cond_create(r, "c", NULL, &c), 0);
	cr_assert_eq(lfipc_barrier_create(r, "b", 2, &b), 0);
	lfipc_sem_close(s);
	lfipc_event_close(e);
	lfipc_cond_close(c);
	lfipc_barrier_close(b);
	blk[0] = find(SEM_MAGIC);
	blk[1] = find(EVENT_MAGIC);
	blk[2] = find(COND_MAGIC);
	blk[3] = find(BARRIER_MAGIC);
	for (int i = 0; i < 4; i++) {
		cr_assert_not_null(blk[i]);
		memcpy(save[i], blk[i], span[i]);
	}
	for (int k = 0; k < rounds; k++) {
		int t = k % 4;

		for (int n = 0; n < 3; n++)
			scribble(blk[t], span[t], &seed);
		switch (t) {
		case 0:
			exercise_sem();
			break;
		case 1:
			exercise_event();
			break;
		case 2:
			exercise_cond();
			break;
		default:
			exercise_barrier();
			break;
		}
		if (k % 16 == 15) /* start over from good memory now and then */
			memcpy(blk[t], save[t], span[t]);
	}
	/* A tracked semaphore with garbage in its journal and holder table. */
	uint8_t *tblk = NULL;
	for (size_t off = 0; off + 64 <= REGION_SIZE; off += 64) {
		struct sem_shm sh;

		memcpy(&sh, base + off, sizeof(sh));
		if (sh.magic == SEM_MAGIC &&
		    sh.flags == LFIPC_SEM_TRACK_HOLDERS)
			tblk = base + off;
	}
	cr_assert_not_null(tblk);
	for (int k = 0; k < 200; k++) {
		uint32_t v = (uint32_t)th_rand(&seed);
		/* the journal and the first holder entries */
		size_t at = SEM_TRACK_OFF + (th_rand(&seed) % 64) * 4;

		memcpy(tblk + at, &v, sizeof(v));
		cr_assert(lfipc_sem_acquire(ts, LFIPC_NOWAIT) <= 0);
		lfipc_sem_release(ts);
		int rc = lfipc_region_recover(r);

		cr_assert(rc >= 0 || rc == -EPROTO, "recover: %d", rc);
	}
	lfipc_sem_close(ts);
}

/* ---- finding 1: the lock memory around the word ---------------------- */

/* The bytes of a lock's memory between its word and its wait queue:
 * where the owning thread and an RLock's depth used to be shared. */
#define LOCK_OWNER_AT (offsetof(struct lock_shm, word) + 4)
#define LOCK_OWNER_END offsetof(struct lock_shm, wq)

static void scribble_owner(uint8_t *lk, uint64_t *seed)
{
	for (size_t at = LOCK_OWNER_AT; at < LOCK_OWNER_END; at += 4) {
		uint32_t v = (uint32_t)th_rand(seed);

		__atomic_store_n((uint32_t *)(lk + at), v, __ATOMIC_RELAXED);
	}
}

/*
 * tests/hostile/findings/lock_thread_field.c: a peer rewrote the owning
 * thread recorded in the lock's memory while the lock was held, and the
 * owner's release failed with -EPERM, leaving the lock held for ever.
 * Nothing but the word may decide who holds a lock.
 */
Test(sync_corrupt, a_rewritten_lock_memory_does_not_stop_the_owner_releasing)
{
	uint64_t seed = 0x5eed0002u;
	lfipc_lock *l;
	uint8_t *lk;

	for (int recursive = 0; recursive < 2; recursive++) {
		char name[8] = {'l', (char)('0' + recursive), 0};

		cr_assert_eq(lfipc_lock_create(r, name, recursive, &l), 0);
		lk = find(SYNC_LOCK_MAGIC);
		cr_assert_not_null(lk);
		cr_assert_eq(lfipc_lock_acquire(l, LFIPC_NOWAIT), 0);
		if (recursive)
			cr_assert_eq(lfipc_lock_acquire(l, LFIPC_NOWAIT), 0);
		scribble_owner(lk, &seed);
		cr_assert_eq(lfipc_lock_release(l), 0, "recursive %d",
			     recursive);
		if (recursive) {
			cr_assert(lfipc_lock_locked(l));
			scribble_owner(lk, &seed);
			cr_assert_eq(lfipc_lock_release(l), 0);
		}
		cr_assert_not(lfipc_lock_locked(l));
		cr_assert_eq(lfipc_lock_release(l), -EPERM);
		lfipc_lock_close(l);
		cr_assert_eq(lfipc_object_remove(r, name), 0);
	}
}

/* The word of the held lock of kind recursive (its magic, its kind, a
 * non-zero word: the only lock of the test region held at the time). */
static _Atomic uint32_t *held_word(int recursive)
{
	for (size_t off = 0; off + 64 <= REGION_SIZE; off += 64) {
		struct lock_shm *s = (struct lock_shm *)(base + off);

		if (__atomic_load_n(&s->magic, __ATOMIC_RELAXED) ==
			SYNC_LOCK_MAGIC &&
		    __atomic_load_n(&s->recursive, __ATOMIC_RELAXED) ==
			(uint32_t)recursive &&
		    atomic_load(&s->word) != 0)
			return &s->word;
	}
	return NULL;
}

/*
 * The owner's release frees the word with one CAS from exactly the token
 * its acquire wrote; a word that a peer rewrote meanwhile is judged as
 * before by its owner bits (internal/mutex.h): flag bits 30..31 set beside
 * our token leave it ours (released); another token, or 0, is not ours
 * (-EPERM, and the word is left as the peer wrote it). Each at depth 1
 * and, for an RLock, at depth 2.
 */
Test(sync_corrupt, a_rewritten_lock_word_is_judged_by_its_owner_bits)
{
	for (int recursive = 0; recursive < 2; recursive++) {
		char name[8] = {'w', (char)('0' + recursive), 0};
		lfipc_lock_status st = {.struct_size = sizeof(st)};
		_Atomic uint32_t *w;
		uint32_t tok, other;
		lfipc_lock *l;
		pid_t mine;

		cr_assert_eq(lfipc_lock_create(r, name, recursive, &l), 0);
		/* flag bits beside our token: still ours */
		for (int d = 0; d <= recursive; d++)
			cr_assert_eq(lfipc_lock_acquire(l, LFIPC_NOWAIT), 0);
		w = held_word(recursive);
		cr_assert_not_null(w);
		tok = atomic_load(w);
		cr_assert_eq(tok & 0xc0000000u, 0);
		for (int d = recursive; d >= 0; d--) {
			atomic_store(w, tok | (d ? 0x40000000u : 0xc0000000u));
			cr_assert_eq(lfipc_lock_release(l), 0, "recursive %d",
				     recursive);
		}
		cr_assert_eq(atomic_load(w), 0);
		/* another token (the next slot), then 0: not ours */
		other = (tok + (UINT32_C(1) << 19)) & 0x3fffffffu;
		for (int k = 0; k < 2; k++) {
			uint32_t v = k ? 0 : other;

			for (int d = 0; d <= recursive; d++)
				cr_assert_eq(
				    lfipc_lock_acquire(l, LFIPC_NOWAIT), 0);
			cr_assert_eq(atomic_load(w), tok);
			cr_assert_eq(lfipc_object_stat(r, name, LFIPC_OBJ_LOCK,
						       &st),
				     0);
			mine = st.holder.tid;
			cr_assert_neq(mine, 0);
			atomic_store(w, v);
			cr_assert_eq(lfipc_lock_release(l), -EPERM);
			cr_assert_eq(atomic_load(w), v);
			/* a refused release leaves the holder's hints
			 * (with v = 0 the lock reads free: no holder) */
			cr_assert_eq(lfipc_object_stat(r, name, LFIPC_OBJ_LOCK,
						       &st),
				     0);
			cr_assert_eq(st.holder.tid, v ? mine : 0,
				     "tid %d, was %d", (int)st.holder.tid,
				     (int)mine);
			cr_assert_eq(lfipc_lock_release(l), -EPERM);
			atomic_store(w, 0); /* the peer lets go */
		}
		/* the thread's set was left clean: the fast paths again */
		cr_assert_eq(lfipc_lock_acquire(l, LFIPC_NOWAIT), 0);
		cr_assert_eq(atomic_load(w), tok);
		cr_assert_eq(lfipc_lock_release(l), 0);
		cr_assert_eq(atomic_load(w), 0);
		lfipc_lock_close(l);
		cr_assert_eq(lfipc_object_remove(r, name), 0);
	}
}

static uint8_t *guards[2];

/* The hostile peer: rewrites both guards' owner bytes, without end. */
static int rewrite_guards(void *arg)
{
	uint64_t seed = 0x5eed0003u;

	(void)arg;
	for (;;)
		for (int i = 0; i < 2; i++)
			scribble_owner(guards[i], &seed);
	return 0;
}

/* The victim: every call that takes a Barrier's or a tracked
 * Semaphore's internal guard, for 300 ms. */
static int take_guards(void *arg)
{
	lfipc_barrier *b;
	lfipc_sem *s;
	int64_t end = th_now_ns() + 300 * MS;
	long n = 0;

	(void)arg;
	if (lfipc_barrier_open(r, "b", &b) || lfipc_sem_open(r, "ts", &s))
		return 2;
	while (th_now_ns() < end || n < 100) {
		if (lfipc_barrier_abort(b) != 0 || lfipc_barrier_reset(b) != 0)
			return 3;
		if (lfipc_barrier_wait(b, LFIPC_NOWAIT) != -EAGAIN)
			return 4;
		if (lfipc_sem_acquire(s, LFIPC_NOWAIT) != 0 ||
		    lfipc_sem_release(s) != 0)
			return 5;
		if (lfipc_region_recover(r) < 0)
			return 6;
		n++;
	}
	return 0;
}

/*
 * The same rewrite while a Barrier's and a tracked Semaphore's internal
 * guard are held: their release failed, the guard stayed held by a live
 * process, and every later call (abort, reset, recover, even a NOWAIT
 * acquire) hung. Every call must succeed, and the victim finish.
 */
Test(sync_corrupt, rewriting_a_guard_while_held_hangs_no_call)
{
	lfipc_barrier *b;
	lfipc_sem *s;
	pid_t hostile, victim;
	int rc;

	cr_assert_eq(lfipc_barrier_create(r, "b", 2, &b), 0);
	cr_assert_eq(
	    lfipc_sem_create_ex(r, "ts", 1, LFIPC_SEM_TRACK_HOLDERS, &s), 0);
	guards[0] = NULL;
	for (size_t off = 0, n = 0; off + 64 <= REGION_SIZE && n < 2;
	     off += 64) {
		uint32_t w;

		memcpy(&w, base + off, sizeof(w));
		if (w == SYNC_LOCK_MAGIC)
			guards[n++] = base + off;
	}
	cr_assert_not_null(guards[0]);
	cr_assert_not_null(guards[1]);
	hostile = th_fork(rewrite_guards, NULL);
	victim = th_fork(take_guards, NULL);
	rc = th_reap(victim, 20000);
	kill(hostile, SIGKILL);
	th_reap(hostile, 5000);
	cr_assert_eq(rc, 0, "victim: %d (-1: hung in a guard)", rc);
	lfipc_barrier_close(b);
	lfipc_sem_close(s);
}

/* ---- CAS retry loops under a peer that rewrites their word ------------ */

/* The library's address of what blk points to in the second mapping. */
static void *lib_addr(const uint8_t *blk)
{
	return r->base + (blk - base);
}

/* How long a call that takes no timeout may last under the peer: the
 * bound (1 s, LFIPC_CAS_BOUND_NS in internal/wait.h) plus a scheduling
 * allowance for a loaded or sanitized build (each rewrite costs two
 * signals and two mprotect calls). */
#define CAS_BOUND_MAX_NS (4000 * MS)

/* On main, set() retried its CAS for as long as the peer rewrote the word:
 * the call never returned (the test's timeout). */
Test(sync_corrupt, event_set_returns_eproto_while_a_peer_rewrites_its_word,
     .timeout = 30)
{
	lfipc_event *e;
	uint8_t *blk;
	int64_t took;
	int rc;

	cr_assert_eq(lfipc_event_create(r, "e", &e), 0);
	blk = find(EVENT_MAGIC);
	cr_assert_not_null(blk);
	/* The event word (offset 4): SET stays clear, the generation
	 * moves before every CAS. */
	cf_start(lib_addr(blk + 4), blk + 4, 4);
	CF_TIMED(took, rc = lfipc_event_set(e));
	cr_assert_eq(rc, -EPROTO, "set: %d after %lld ms", rc,
		     (long long)(took / MS));
	cr_assert_lt(took, CAS_BOUND_MAX_NS, "set took %lld ms",
		     (long long)(took / MS));
	cr_assert_eq(lfipc_event_set(e), 0);
	cr_assert(lfipc_event_is_set(e));
	lfipc_event_close(e);
}

/* The value word of the Semaphore whose block is blk: data (offset 16),
 * and its upper half (unused, 0), which the peer moves so that the value
 * stays sane and every CAS on data fails. */
#define SEM_DATA(blk) ((blk) + 16)
#define SEM_DATA_HI(blk) ((blk) + 20)

/* On main, release() retried its CAS for ever under the peer. */
Test(sync_corrupt, sem_release_returns_eproto_while_a_peer_rewrites_its_word,
     .timeout = 30)
{
	lfipc_sem *s;
	uint8_t *blk;
	int64_t took;
	int rc;

	cr_assert_eq(lfipc_sem_create(r, "s", 0, false, &s), 0);
	blk = find(SEM_MAGIC);
	cr_assert_not_null(blk);
	cf_start(lib_addr(SEM_DATA(blk)), SEM_DATA_HI(blk), 1);
	CF_TIMED(took, rc = lfipc_sem_release(s));
	cr_assert_eq(rc, -EPROTO, "release: %d after %lld ms", rc,
		     (long long)(took / MS));
	cr_assert_lt(took, CAS_BOUND_MAX_NS, "release took %lld ms",
		     (long long)(took / MS));
	cr_assert_eq(lfipc_sem_value(s), 0);
	cr_assert_eq(lfipc_sem_release(s), 0);
	cr_assert_eq(lfipc_sem_value(s), 1);
	lfipc_sem_close(s);
}

/* On main, acquire() retried its CAS for ever under the peer (fast path
 * and readiness callback alike), past its timeout. */
Test(sync_corrupt,
     sem_acquire_honours_its_timeout_while_a_peer_rewrites_its_word,
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
	CF_TIMED(took, rc = lfipc_sem_acquire(s, 200 * MS));
	cr_assert_eq(rc, -ETIMEDOUT, "acquire: %d after %lld ms", rc,
		     (long long)(took / MS));
	cr_assert_geq(took, 200 * MS);
	cr_assert_lt(took, 200 * MS + CAS_BOUND_MAX_NS,
		     "acquire took %lld ms", (long long)(took / MS));
	cr_assert_eq(lfipc_sem_acquire(s, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_sem_value(s), 0);
	lfipc_sem_close(s);
}

/* A tracked release sets the value under the semaphore's guard; on main
 * that was a CAS loop that a peer rewriting the word kept going for
 * ever. It is one store now: the release succeeds. */
Test(sync_corrupt,
     tracked_sem_release_completes_while_a_peer_rewrites_its_word,
     .timeout = 30)
{
	lfipc_sem *s;
	uint8_t *blk;
	int64_t t0, took;
	int rc;

	cr_assert_eq(
	    lfipc_sem_create_ex(r, "ts", 1, LFIPC_SEM_TRACK_HOLDERS, &s), 0);
	blk = find(SEM_MAGIC);
	cr_assert_not_null(blk);
	cr_assert_eq(lfipc_sem_acquire(s, LFIPC_NOWAIT), 0);
	cf_start(lib_addr(SEM_DATA(blk)), SEM_DATA_HI(blk), 1);
	t0 = th_now_ns();
	rc = lfipc_sem_release(s);
	took = th_now_ns() - t0;
	cr_assert_geq(cf_stop(), 1);
	cr_assert_eq(rc, 0, "release: %d after %lld ms", rc,
		     (long long)(took / MS));
	cr_assert_lt(took, CAS_BOUND_MAX_NS, "release took %lld ms",
		     (long long)(took / MS));
	cr_assert_eq(lfipc_sem_value(s), 1);
	cr_assert_eq(lfipc_sem_acquire(s, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_sem_release(s), 0);
	lfipc_sem_close(s);
}

/* An Event with an fd whose poller is armed (a NOWAIT wait through the
 * handle that found it clear arms it): one poller counted in the wait
 * queue's waiters word (offset 16 of the block: bits 40..55). */
static uint8_t *armed_event(lfipc_event **e)
{
	uint8_t *blk;

	cr_assert_eq(lfipc_event_create(r, "e", e), 0);
	blk = find(EVENT_MAGIC);
	cr_assert_not_null(blk);
	cr_assert_geq(lfipc_event_fd(*e), 0);
	cr_assert_eq(lfipc_event_wait(*e, LFIPC_NOWAIT), -EAGAIN);
	cr_assert_eq((atomic_load((_Atomic uint64_t *)(blk + 16)) >> 40) &
			 0xffff,
		     1);
	return blk;
}

/* A set rings the armed poller and counts it down (lib/poll.c,
 * poller_count_down). The peer moves the waiters word's top byte (bits
 * 56..63 in its upper half) before every CAS. On main the count-down
 * retried for ever and the set never returned. */
Test(sync_corrupt, event_set_rings_its_poller_while_a_peer_rewrites_the_count,
     .timeout = 30)
{
	lfipc_event *e;
	uint8_t *blk;
	int64_t t0, took;
	int rc;

	blk = armed_event(&e);
	cf_start(lib_addr(blk + 16), blk + 20, UINT32_C(1) << 24);
	CF_TIMED(took, rc = lfipc_event_set(e));
	cr_assert_eq(rc, 0);
	cr_assert_lt(took, CAS_BOUND_MAX_NS, "set took %lld ms",
		     (long long)(took / MS));
	/* The peer stopped: the next arm and ring count down again. */
	cr_assert_eq(lfipc_event_clear(e), 0);
	cr_assert_eq(lfipc_event_wait(e, LFIPC_NOWAIT), -EAGAIN);
	t0 = th_now_ns();
	cr_assert_eq(lfipc_event_set(e), 0);
	cr_assert_lt(th_now_ns() - t0, 500 * MS);
	lfipc_event_close(e);
}

/* Closing the fd frees its poll-table entry by CAS on the entry's state
 * (gen in bits 0..31, armed in 32..63: lib/poll.c, release). The peer
 * moves the armed half before every CAS. On main the close never
 * returned. */
Test(sync_corrupt, event_close_frees_its_poller_while_a_peer_rewrites_it,
     .timeout = 30)
{
	struct lfipc_poll_entry *pe = NULL;
	lfipc_event *e;
	uint8_t *at;
	int64_t took;

	armed_event(&e);
	for (uint32_t i = 0; i < r->poll_cap; i++) {
		struct lfipc_poll_entry *x =
		    (struct lfipc_poll_entry *)(base + r->poll_off) + i;

		if (atomic_load(&x->state) & 1u)
			pe = x;
	}
	cr_assert_not_null(pe);
	at = (uint8_t *)pe;
	cf_start(lib_addr(at), at + 4, 2);
	CF_TIMED(took, lfipc_event_close(e));
	cr_assert_lt(took, CAS_BOUND_MAX_NS, "close took %lld ms",
		     (long long)(took / MS));
	/* The entry stays claimed by this process (one entry lost until
	 * it is gone); a new fd still gets one. */
	cr_assert_eq(lfipc_event_open(r, "e", &e), 0);
	cr_assert_geq(lfipc_event_fd(e), 0);
	cr_assert_eq(lfipc_event_set(e), 0);
	lfipc_event_close(e);
}

/* The Lock's word (offset 8) names nobody (owner bits 0, a flag bit set:
 * taken over at once) and the peer moves its flag bits before every CAS
 * of the readiness callback (lib/mutex.c, M4/M5). On main the acquire
 * retried for ever, past its timeout. */
static uint8_t *rewritten_lock(lfipc_lock **l)
{
	uint8_t *blk;

	cr_assert_eq(lfipc_lock_create(r, "l", false, l), 0);
	blk = find(SYNC_LOCK_MAGIC);
	cr_assert_not_null(blk);
	atomic_store((_Atomic uint32_t *)(blk + 8), UINT32_C(0x40000000));
	cf_start(lib_addr(blk + 8), blk + 8, UINT32_C(0x40000000));
	return blk;
}

Test(sync_corrupt,
     lock_acquire_honours_its_timeout_while_a_peer_rewrites_its_word,
     .timeout = 30)
{
	lfipc_lock *l;
	uint8_t *blk;
	int64_t took;
	int rc;

	blk = rewritten_lock(&l);
	CF_TIMED(took, rc = lfipc_lock_acquire(l, 200 * MS));
	cr_assert_eq(rc, -ETIMEDOUT, "acquire: %d after %lld ms", rc,
		     (long long)(took / MS));
	cr_assert_geq(took, 200 * MS);
	cr_assert_lt(took, 200 * MS + CAS_BOUND_MAX_NS,
		     "acquire took %lld ms", (long long)(took / MS));
	/* The peer stopped: a word naming nobody is taken over. */
	atomic_store((_Atomic uint32_t *)(blk + 8), UINT32_C(0x40000000));
	rc = lfipc_lock_acquire(l, LFIPC_NOWAIT);
	cr_assert(rc == 0 || rc == -EOWNERDEAD, "acquire: %d", rc);
	cr_assert_eq(lfipc_lock_release(l), 0);
	lfipc_lock_close(l);
}

Test(sync_corrupt,
     lock_acquire_forever_returns_eproto_while_a_peer_rewrites_its_word,
     .timeout = 30)
{
	lfipc_lock *l;
	int64_t took;
	int rc;

	rewritten_lock(&l);
	CF_TIMED(took, rc = lfipc_lock_acquire(l, LFIPC_FOREVER));
	cr_assert_eq(rc, -EPROTO, "acquire: %d after %lld ms", rc,
		     (long long)(took / MS));
	cr_assert_lt(took, CAS_BOUND_MAX_NS, "acquire took %lld ms",
		     (long long)(took / MS));
	lfipc_lock_close(l);
}
