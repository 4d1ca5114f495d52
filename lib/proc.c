/* SPDX-License-Identifier: MIT */
/*
 * proc.c - the participant registry and liveness decisions.
 *
 * Each handle owns a slot of the region's participant table and holds an
 * open-file-description (OFD) write lock on that slot's liveness byte
 * (LFIPC_LIVE_BASE + slot, far past the end of the file) through an open
 * file description of its own (lock_fd, a fresh open of /proc/self/fd/N).
 * The kernel drops the lock when the last descriptor of that description is
 * closed, which happens when the process dies (SIGKILL included, zombie or
 * not), so a checker that finds the byte unlocked knows the participant is
 * gone. Checkers probe through p->fd, a description that never holds a
 * liveness lock, so every registered participant (this process included)
 * shows up as a conflicting lock.
 *
 * fork: a child shares its parent's lock description through the inherited
 * lock_fd. The atfork child handler close()s it (which keeps the parent's
 * lock: the parent still references the description; F_UNLCK would drop
 * it) and bumps lfipc__fork_epoch, so the child registers a slot of its own
 * before its first operation that needs a token.
 *
 * Slot generation word (struct lfipc_proc_slot.gen): odd while a live
 * incarnation owns the slot; registration moves it to a new odd value (so
 * tokens of earlier incarnations stop matching), unregistration and a
 * checker that finds the owner dead move it to even.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal/death.h"
#include "internal/futex.h"
#include "internal/proc.h"
#include "internal/wait.h"

_Atomic unsigned lfipc__fork_epoch = 1;

/* initial-exec: one %fs-relative load, no __tls_get_addr call (see
 * thread_anchor in sync.c). */
_Thread_local uint32_t lfipc__thread_tag_v
    __attribute__((tls_model("initial-exec")));

uint32_t lfipc__thread_tag_slow(void)
{
	static _Atomic uint32_t next;
	uint32_t t;

	/* R4: relaxed: only uniqueness matters. */
	do
		t = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed) +
		    1;
	while (t == 0);
	lfipc__thread_tag_v = t;
	return t;
}

static pthread_mutex_t track_mu = PTHREAD_MUTEX_INITIALIZER;
static struct lfipc__proc *tracked;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_prepare(void)
{
	struct lfipc__proc *p;

	pthread_mutex_lock(&track_mu);
	/* lock_mu first: a thread holding it may still need reg_mu (in
	 * lfipc__self), never the other way round. Holding lock_mu means no
	 * thread of ours is inside the region lock at the fork, so the child
	 * never inherits a region lock word that carries our token. */
	for (p = tracked; p; p = p->next) {
		if (p->fork_hold)
			pthread_mutex_lock(p->fork_hold);
		pthread_mutex_lock(&p->reg_mu);
	}
}

static void atfork_parent(void)
{
	struct lfipc__proc *p;

	for (p = tracked; p; p = p->next) {
		pthread_mutex_unlock(&p->reg_mu);
		if (p->fork_hold)
			pthread_mutex_unlock(p->fork_hold);
	}
	pthread_mutex_unlock(&track_mu);
}

static void atfork_child(void)
{
	struct lfipc__proc *p;

	for (p = tracked; p; p = p->next) {
		/* Close, never F_UNLCK: the parent keeps its lock. */
		if (p->lock_fd >= 0)
			close(p->lock_fd);
		p->lock_fd = -1;
		/* F1: relaxed: the child is single-threaded here. */
		atomic_store_explicit(&p->token, 0, memory_order_relaxed);
		pthread_mutex_unlock(&p->reg_mu);
		if (p->fork_hold)
			pthread_mutex_unlock(p->fork_hold);
	}
	/* the forking thread's held locks are the parent's, and it has a
	 * new tid */
	lfipc__sync_fork_child();
	/* F2: relaxed: single-threaded; later threads are created after it. */
	atomic_fetch_add_explicit(&lfipc__fork_epoch, 1, memory_order_relaxed);
	pthread_mutex_unlock(&track_mu);
}

static void atfork_install(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

void lfipc__proc_init(struct lfipc__proc *p, int fd, void *table,
		      uint32_t cap, pthread_mutex_t *fork_hold)
{
	p->fd = fd;
	p->table = table;
	p->cap = cap;
	p->fork_hold = fork_hold;
	p->lock_fd = -1;
	pthread_mutex_init(&p->reg_mu, NULL);
}

void lfipc__proc_destroy(struct lfipc__proc *p)
{
	pthread_mutex_destroy(&p->reg_mu);
}

void lfipc__proc_track(struct lfipc__proc *p)
{
	pthread_once(&atfork_once, atfork_install);
	pthread_mutex_lock(&track_mu);
	p->next = tracked;
	tracked = p;
	pthread_mutex_unlock(&track_mu);
}

void lfipc__proc_untrack(struct lfipc__proc *p)
{
	struct lfipc__proc **pp;

	pthread_mutex_lock(&track_mu);
	for (pp = &tracked; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	pthread_mutex_unlock(&track_mu);
}

static struct lfipc_proc_slot *slot_at(const struct lfipc__proc *p, uint32_t i)
{
	return (struct lfipc_proc_slot *)p->table + i;
}

static int live_lock(int fd, int cmd, short type, uint32_t slot,
		     struct flock *fl)
{
	memset(fl, 0, sizeof(*fl));
	fl->l_type = type;
	fl->l_whence = SEEK_SET;
	fl->l_start = LFIPC_LIVE_BASE + (off_t)slot;
	fl->l_len = 1;
	return fcntl(fd, cmd, fl) == 0 ? 0 : -errno;
}

/* Open a description of our own on the region's file. */
static int open_own_description(const struct lfipc__proc *p)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", p->fd);
	fd = open(path, O_RDWR | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

static int claim_slot_gated(struct lfipc__proc *p, int fd);

/* One attempt at the gate lock for lfipc__wait_retry: 1 taken, 0 held by
 * another description, -errno. */
struct gate_try {
	int fd;
	short type;
};

static int gate_try(void *ctx, bool check)
{
	const struct gate_try *g = ctx;
	struct flock fl;

	(void)check; /* the attempt is the liveness test: a dead holder's
			lock is gone */
	memset(&fl, 0, sizeof(fl));
	fl.l_type = g->type;
	fl.l_whence = SEEK_SET;
	fl.l_start = LFIPC_GATE_BYTE;
	fl.l_len = 1;
	if (fcntl(g->fd, F_OFD_SETLK, &fl) == 0)
		return 1;
	return errno == EAGAIN || errno == EACCES ? 0 : -errno;
}

/*
 * The gate is held (write-locked) only by a remover deciding whether a
 * region is stale, which takes a few system calls, unless it is stopped.
 * Nothing wakes a waiter when it lets go, and the kernel's own wait
 * (F_OFD_SETLKW) has no timeout (wait.c, lfipc__wait_retry, says why a
 * signal or a helper thread to bound it is not an option): so the wait is
 * the wait layer's back-off, which spins a few microseconds, then sleeps
 * 20 us doubling to 1 ms, each attempt a non-blocking F_OFD_SETLK, until
 * the caller's deadline. A SIGKILLed holder's lock is dropped by the
 * kernel, and the next attempt takes it.
 */
int lfipc__gate_lock(int fd, short type, lfipc_deadline dl)
{
	struct gate_try g = {fd, type};

	return lfipc__wait_retry(gate_try, &g, dl);
}

/* Claim a slot: called with reg_mu held. The gate is read-locked around
 * the claim, so a remover (which write-locks the gate and every liveness
 * byte at once) sees either no registrant or a registered one. The wait
 * for the gate ends at dl (the caller's deadline: -EAGAIN for
 * LFIPC_DL_NOW, -ETIMEDOUT); an untimed registration (LFIPC_DL_NEVER)
 * waits up to LFIPC_GATE_WAIT_NS, then fails with -EBUSY, unless forever
 * (a call made with LFIPC_FOREVER: it waits as long as the gate is held,
 * as the call itself would). */
static int claim_slot(struct lfipc__proc *p, lfipc_deadline dl, bool forever)
{
	lfipc_deadline gdl = dl == LFIPC_DL_NEVER && !forever
				     ? lfipc__deadline(LFIPC_GATE_WAIT_NS)
				     : dl;
	int fd, rc;

	fd = open_own_description(p);
	if (fd < 0)
		return fd;
	rc = lfipc__gate_lock(fd, F_RDLCK, gdl);
	if (rc < 0) {
		close(fd);
		return rc == -ETIMEDOUT && dl == LFIPC_DL_NEVER ? -EBUSY : rc;
	}
	rc = claim_slot_gated(p, fd);
	lfipc__gate_lock(fd, F_UNLCK, LFIPC_DL_NOW);
	if (rc < 0)
		close(fd);
	return rc;
}

/*
 * The retries of R1 in try_slot(), whose first CAS failed leaving g.
 * Besides the registrant (us, holding the slot's OFD lock), only a
 * liveness check writes gen: it retires a dead incarnation's odd g to
 * g + 1 with a CAS (lfipc__proc_alive()), once, and fails if gen moved.
 * So between well-behaved peers this loop ends within a few turns; a peer
 * that rewrites gen before each CAS would keep it here for ever. After
 * the CAS bound (internal/wait.h, no deadline: about a second) a store
 * ends it: under the OFD lock a store of (g | 1) + 2 is as good as the
 * CAS. A retirer's CAS from the odd g it saw either came first (its
 * g + 1 is below our (g | 1) + 2) or fails on our value; a retirer of an
 * older generation fails too. The registrant thus gets a generation no
 * earlier incarnation's token names, unless the peer keeps writing gen
 * (then nothing the registrant does could help: the peer decides what
 * its tokens' liveness reads as). Returns the g that the new generation
 * is made from.
 */
static uint32_t gen_retry(struct lfipc_proc_slot *s, uint32_t g)
{
	struct lfipc_cas_bound b = LFIPC_CAS_BOUND_INIT;

	for (;;) {
		if (lfipc__cas_retry(&b, LFIPC_DL_NEVER) < 0) {
			/* R1 after the bound: release store (its acquire
			 * half, towards U1 of the predecessor, is the
			 * acquire load of g); pairs with the acquire load
			 * in lfipc__token_alive(), as the CAS did. */
			g = atomic_load_explicit(&s->gen, memory_order_acquire);
			atomic_store_explicit(&s->gen, (g | 1u) + 2u,
					      memory_order_release);
			return g;
		}
		/* R1: as in try_slot(). */
		if (atomic_compare_exchange_weak_explicit(
			&s->gen, &g, (g | 1u) + 2u, memory_order_acq_rel,
			memory_order_relaxed))
			return g;
	}
}

/* Take slot if nobody live holds it, as the new incarnation of p.
 * Return: 0 taken; 1 held by a live participant; -errno from fcntl. */
static int try_slot(struct lfipc__proc *p, int fd, uint32_t slot)
{
	struct lfipc_proc_slot *s;
	struct flock fl;
	uint32_t g;
	int rc;

	rc = live_lock(fd, F_OFD_SETLK, F_WRLCK, slot, &fl);
	if (rc == -EAGAIN || rc == -EACCES)
		return 1; /* a live participant holds it */
	if (rc < 0)
		return rc;
	s = slot_at(p, slot);
	p->slot = slot;
	/* Death word and flags of the new incarnation, before R1. */
	lfipc__death_arm(lfipc__proc_region(p), slot);
	/* R1: acq_rel CAS; pairs with the acquire load in
	 * lfipc__token_alive(): whoever sees the new generation sees the pid
	 * written below too (diagnostics only). A dead predecessor's odd
	 * generation is retired by skipping past it, so its tokens never
	 * match again. */
	g = atomic_load_explicit(&s->gen, memory_order_relaxed);
	if (!atomic_compare_exchange_weak_explicit(&s->gen, &g, (g | 1u) + 2u,
						   memory_order_acq_rel,
						   memory_order_relaxed))
		g = gen_retry(s, g);
	g = (g | 1u) + 2u;
	/* Sleepers still watching the previous incarnation's word look
	 * again (they now see the generation mismatch). */
	lfipc__death_wake(lfipc__proc_region(p), slot);
	/* R2: relaxed: diagnostics, never used for decisions. */
	atomic_store_explicit(&s->pid, (uint32_t)getpid(), memory_order_relaxed);
	atomic_store_explicit(&s->since_ns, lfipc__now_ns(),
			      memory_order_relaxed);
	p->lock_fd = fd;
	p->slot = slot;
	/* R3: relaxed; published by P2 (release on fork_epoch). */
	atomic_store_explicit(&p->token,
			      ((slot + 1) << LFIPC_TOKEN_GEN_BITS) |
				      (g & LFIPC_TOKEN_GEN_MASK),
			      memory_order_relaxed);
	return 0;
}

struct slot_age {
	int64_t since_ns;
	uint32_t slot;
};

static int slot_age_cmp(const void *a, const void *b)
{
	const struct slot_age *x = a, *y = b;

	if (x->since_ns != y->since_ns)
		return x->since_ns < y->since_ns ? -1 : 1;
	return x->slot < y->slot ? -1 : x->slot > y->slot;
}

/*
 * The slot rule (doc/architecture.md, "Participants and liveness"), in
 * order:
 *   1. a dead participant's slot that names this process's own pid: its
 *      entry would read as this process in a listing, so it goes first
 *      (this is also where a reused PID meets its predecessor's slot);
 *   then, first among the slots that have a death word (slot <
 *   death_slots; all slots when the push is unavailable), then among the
 *   others:
 *   2. a slot that names no pid (never used, or left by a clean close);
 *   3. a dead participant's slot, the oldest registration first.
 * So a dead participant stays listed (lfipc_participant_next) until the
 * slots of its kind have no free slot left or its pid registers again, and
 * a registrant never loses its death push (internal/death.h) to the dead
 * of a busy region: before this order, 16 trials of fork, kill and
 * register filled the 32 death words of a 1 MiB region with dead
 * participants and every later participant fell back to polled slices
 * (bench/death_bench's "push" then read like its "fallback"). The pids
 * and times read here are a preference only (R0: relaxed, read once each,
 * never trusted): the OFD lock in try_slot() decides.
 */
static int claim_range(struct lfipc__proc *p, int fd, uint32_t lo,
		       uint32_t hi, struct slot_age *age)
{
	uint32_t slot, n;
	int rc;

	for (slot = lo; slot < hi; slot++) {
		if (atomic_load_explicit(&slot_at(p, slot)->pid,
					 memory_order_relaxed) != 0)
			continue;
		rc = try_slot(p, fd, slot);
		if (rc <= 0)
			return rc;
	}
	for (slot = lo, n = 0; slot < hi; slot++) {
		if (age) {
			age[n].since_ns = atomic_load_explicit(
				&slot_at(p, slot)->since_ns,
				memory_order_relaxed);
			age[n++].slot = slot;
		} else if ((rc = try_slot(p, fd, slot)) <= 0) {
			return rc; /* no memory to sort: slot order */
		}
	}
	if (!age)
		return 1;
	qsort(age, n, sizeof(*age), slot_age_cmp);
	for (slot = 0; slot < n; slot++)
		if ((rc = try_slot(p, fd, age[slot].slot)) <= 0)
			return rc;
	return 1;
}

static int claim_slot_gated(struct lfipc__proc *p, int fd)
{
	uint32_t me = (uint32_t)getpid(), slot, split;
	struct slot_age *age;
	int rc;

	for (slot = 0; slot < p->cap; slot++) {
		if (atomic_load_explicit(&slot_at(p, slot)->pid,
					 memory_order_relaxed) != me)
			continue;
		rc = try_slot(p, fd, slot);
		if (rc <= 0)
			return rc;
	}
	split = lfipc__death_pushed_slots(lfipc__proc_region(p));
	if (split > p->cap)
		split = p->cap;
	age = malloc(p->cap * sizeof(*age));
	rc = claim_range(p, fd, 0, split, age);
	if (rc > 0)
		rc = claim_range(p, fd, split, p->cap, age);
	free(age);
	return rc > 0 ? -EUSERS : rc;
}

/*
 * Take reg_mu for a caller with deadline dl. Its holders are quick (a
 * thread's first use of the token, a close, a fork's handlers) except a
 * thread registering this process, which may wait at the gate up to its
 * own deadline: only while this process has no token is our wait for it
 * bounded by dl. (A bound in every case would make a thread's first
 * LFIPC_NOWAIT call fail with -EAGAIN whenever another thread of ours
 * happened to be in its own first call.)
 */
static int reg_lock(struct lfipc__proc *p, lfipc_deadline dl)
{
	uint32_t tok;

	if (pthread_mutex_trylock(&p->reg_mu) == 0)
		return 0;
	if (dl == LFIPC_DL_NEVER || lfipc__proc_self_known(p, &tok))
		return -pthread_mutex_lock(&p->reg_mu);
	return lfipc__pthread_lock_until(&p->reg_mu, dl);
}

static int reregister(struct lfipc__proc *p, uint32_t *tok,
		      lfipc_deadline dl, bool forever)
{
	unsigned epoch;
	int rc;

	rc = reg_lock(p, dl);
	if (rc < 0)
		return rc;
	epoch = atomic_load_explicit(&lfipc__fork_epoch, memory_order_relaxed);
	if (atomic_load_explicit(&p->fork_epoch, memory_order_relaxed) !=
		    epoch ||
	    atomic_load_explicit(&p->token, memory_order_relaxed) == 0) {
		if (p->lock_fd >= 0) {
			/* inherited from the parent: close, never unlock */
			close(p->lock_fd);
			p->lock_fd = -1;
		}
		atomic_store_explicit(&p->token, 0, memory_order_relaxed);
		rc = claim_slot(p, dl, forever);
		/* P2: release, pairs with P1 in lfipc__self(). */
		if (rc == 0)
			atomic_store_explicit(&p->fork_epoch, epoch,
					      memory_order_release);
	}
	if (rc == 0)
		lfipc__death_other_thread(lfipc__proc_region(p));
	*tok = atomic_load_explicit(&p->token, memory_order_relaxed);
	pthread_mutex_unlock(&p->reg_mu);
	return rc;
}

int lfipc__proc_reregister(struct lfipc__proc *p, uint32_t *tok,
			   lfipc_deadline dl)
{
	return reregister(p, tok, dl, false);
}

int lfipc__proc_self_timed(struct lfipc__proc *p, uint32_t *tok,
			   int64_t *timeout_ns)
{
	lfipc_deadline dl = lfipc__deadline(*timeout_ns);
	int64_t left;
	int rc = reregister(p, tok, dl, *timeout_ns == LFIPC_FOREVER);

	if (rc < 0 || dl == LFIPC_DL_NOW || dl == LFIPC_DL_NEVER ||
	    dl == LFIPC_DL_PAST)
		return rc;
	/* What is left for the call's own wait; none left: a negative
	 * value other than LFIPC_FOREVER, which lfipc__deadline() maps to
	 * "already expired". */
	left = dl - lfipc__now_ns();
	*timeout_ns = left > 0 ? left : -2;
	return rc;
}

int lfipc__proc_register(struct lfipc__proc *p)
{
	uint32_t tok;

	p->lock_fd = -1;
	return lfipc__proc_reregister(p, &tok, LFIPC_DL_NEVER);
}

void lfipc__proc_unregister(struct lfipc__proc *p)
{
	uint32_t tok = atomic_load_explicit(&p->token, memory_order_relaxed);

	pthread_mutex_lock(&p->reg_mu);
	if (tok != 0 && p->lock_fd >= 0 &&
	    atomic_load_explicit(&p->fork_epoch, memory_order_relaxed) ==
		    atomic_load_explicit(&lfipc__fork_epoch,
					 memory_order_relaxed)) {
		struct lfipc_proc_slot *s = slot_at(p, p->slot);
		uint32_t g;

		lfipc__death_disarm(lfipc__proc_region(p));
		g = atomic_load_explicit(&s->gen, memory_order_relaxed);

		/* U1: release: everything this participant did happens before
		 * a checker's acquire load (R1's partner) that sees it gone. */
		/* R2 again: pid 0 marks a slot left by a clean close, so a
		 * listing tells it apart from a dead participant's. */
		atomic_store_explicit(&s->pid, 0, memory_order_relaxed);
		if ((g & LFIPC_TOKEN_GEN_MASK) == (tok & LFIPC_TOKEN_GEN_MASK) &&
		    (g & 1u))
			atomic_compare_exchange_strong_explicit(
				&s->gen, &g, g + 1, memory_order_release,
				memory_order_relaxed);
	}
	if (p->lock_fd >= 0)
		close(p->lock_fd);
	p->lock_fd = -1;
	atomic_store_explicit(&p->token, 0, memory_order_relaxed);
	pthread_mutex_unlock(&p->reg_mu);
}

_Atomic uint64_t lfipc__proc_probes;

/* The generation word of token's slot, loaded as L1, or NULL for a token
 * that names no slot (*g then unset). */
static struct lfipc_proc_slot *token_slot(struct lfipc__proc *p,
					  uint32_t token, uint32_t *slot,
					  uint32_t *g)
{
	struct lfipc_proc_slot *s;

	if (token == 0 || (token & ~LFIPC_TOKEN_MASK))
		return NULL;
	*slot = (token >> LFIPC_TOKEN_GEN_BITS) - 1;
	if (*slot >= p->cap)
		return NULL;
	s = slot_at(p, *slot);
	/* L1: acquire, pairs with R1/U1. */
	*g = atomic_load_explicit(&s->gen, memory_order_acquire);
	return s;
}

bool lfipc__proc_maybe_alive(struct lfipc__proc *p, uint32_t token)
{
	uint32_t slot, g;

	if (!token_slot(p, token, &slot, &g))
		return false;
	if (!(g & 1u) ||
	    (g & LFIPC_TOKEN_GEN_MASK) != (token & LFIPC_TOKEN_GEN_MASK))
		return false;
	return !lfipc__death_marked(lfipc__proc_region(p), slot);
}

bool lfipc__proc_death_words(struct lfipc__proc *p, uint32_t token,
			     struct lfipc_death_hint *h)
{
	struct lfipc_proc_slot *s;
	uint32_t slot, g;

	if (!(s = token_slot(p, token, &slot, &g)))
		return false;
	h->tok = token;
	h->gen = &s->gen;
	h->word = lfipc__death_word_at(lfipc__proc_region(p), slot);
	return true;
}

bool lfipc__proc_alive(struct lfipc__proc *p, uint32_t token)
{
	struct lfipc_proc_slot *s;
	struct flock fl;
	uint32_t slot, g;
	int rc;

	s = token_slot(p, token, &slot, &g);
	if (!s)
		return false;
	if (!(g & 1u) ||
	    (g & LFIPC_TOKEN_GEN_MASK) != (token & LFIPC_TOKEN_GEN_MASK))
		return false;
	/* The kernel marked the death word of this incarnation's linking
	 * thread, and no other thread of it ever used the token: dead
	 * (death.c; the marks of a multi-threaded slot are only hints). */
	if (!lfipc__death_marked(lfipc__proc_region(p), slot)) {
		/* N1: relaxed: a count for tests, ordered with nothing. */
		atomic_fetch_add_explicit(&lfipc__proc_probes, 1,
					  memory_order_relaxed);
		rc = live_lock(p->fd, F_OFD_GETLK, F_WRLCK, slot, &fl);
		if (rc < 0 || fl.l_type != F_UNLCK)
			return true; /* held, or undecidable: never death */
	}
	/* The incarnation is gone. Retire it so later checks of its tokens
	 * need no system call, and wake every sleeper on its death word so
	 * they all learn it now (the kernel wakes one; a death found by the
	 * OFD probe wakes none). A registrant racing with us moves gen on,
	 * and then this CAS fails harmlessly. */
	if (atomic_compare_exchange_strong_explicit(&s->gen, &g, g + 1,
						    memory_order_acq_rel,
						    memory_order_relaxed))
		lfipc__death_wake(lfipc__proc_region(p), slot);
	return false;
}

pid_t lfipc__proc_token_pid(struct lfipc__proc *p, uint32_t token)
{
	uint32_t slot;

	if (token == 0 || (token & ~LFIPC_TOKEN_MASK))
		return 0;
	slot = (token >> LFIPC_TOKEN_GEN_BITS) - 1;
	if (slot >= p->cap)
		return 0;
	/* L2: relaxed: a hint (diagnostics, pidfd_open); the caller
	 * confirms the token alive afterwards. */
	return (pid_t)atomic_load_explicit(&slot_at(p, slot)->pid,
					   memory_order_relaxed);
}

unsigned lfipc__proc_count_live(struct lfipc__proc *p)
{
	unsigned n = 0;
	uint32_t i;

	for (i = 0; i < p->cap; i++) {
		struct lfipc_proc_slot *s = slot_at(p, i);
		uint32_t g = atomic_load_explicit(&s->gen, memory_order_acquire);

		if ((g & 1u) &&
		    lfipc__proc_alive(p, ((i + 1) << LFIPC_TOKEN_GEN_BITS) |
						  (g & LFIPC_TOKEN_GEN_MASK)))
			n++;
	}
	return n;
}

int lfipc__slot_probe(int fd, const void *table, uint32_t cap, uint32_t i,
		      struct lfipc__slotinfo *out)
{
	const struct lfipc_proc_slot *s =
	    (const struct lfipc_proc_slot *)table + i;
	struct flock fl;
	uint32_t g;
	int rc;

	if (i >= cap)
		return -EINVAL;
	/* L1: acquire, pairs with R1/U1 (and R2 is read after it). */
	g = atomic_load_explicit(&((struct lfipc_proc_slot *)s)->gen,
				 memory_order_acquire);
	/* R2: relaxed, diagnostics only. */
	out->pid = atomic_load_explicit(&((struct lfipc_proc_slot *)s)->pid,
					memory_order_relaxed);
	out->since_ns = atomic_load_explicit(
	    &((struct lfipc_proc_slot *)s)->since_ns, memory_order_relaxed);
	out->gen = g;
	rc = live_lock(fd, F_OFD_GETLK, F_WRLCK, i, &fl);
	if (rc < 0)
		return rc;
	if (fl.l_type != F_UNLCK)
		out->state = LFIPC_SLOT_ALIVE; /* locked: a live holder */
	else if ((g & 1u) || out->pid != 0)
		out->state = LFIPC_SLOT_DEAD;
	else
		out->state = LFIPC_SLOT_FREE;
	return 0;
}

int lfipc__proc_slot_info(struct lfipc__proc *p, uint32_t i,
			  struct lfipc__slotinfo *out)
{
	return lfipc__slot_probe(p->fd, p->table, p->cap, i, out);
}
