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
 * gone. Checkers probe through r->fd, a description that never holds a
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
#include <string.h>
#include <unistd.h>

#include "internal/futex.h"
#include "internal/proc.h"

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
static lfipc_region *tracked;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_prepare(void)
{
	lfipc_region *r;

	pthread_mutex_lock(&track_mu);
	/* lock_mu first: a thread holding it may still need reg_mu (in
	 * lfipc__self), never the other way round. Holding lock_mu means no
	 * thread of ours is inside the region lock at the fork, so the child
	 * never inherits a region lock word that carries our token. */
	for (r = tracked; r; r = r->next) {
		pthread_mutex_lock(&r->lock_mu);
		pthread_mutex_lock(&r->reg_mu);
	}
}

static void atfork_parent(void)
{
	lfipc_region *r;

	for (r = tracked; r; r = r->next) {
		pthread_mutex_unlock(&r->reg_mu);
		pthread_mutex_unlock(&r->lock_mu);
	}
	pthread_mutex_unlock(&track_mu);
}

static void atfork_child(void)
{
	lfipc_region *r;

	for (r = tracked; r; r = r->next) {
		/* Close, never F_UNLCK: the parent keeps its lock. */
		if (r->lock_fd >= 0)
			close(r->lock_fd);
		r->lock_fd = -1;
		/* F1: relaxed: the child is single-threaded here. */
		atomic_store_explicit(&r->token, 0, memory_order_relaxed);
		pthread_mutex_unlock(&r->reg_mu);
		pthread_mutex_unlock(&r->lock_mu);
	}
	/* F2: relaxed: single-threaded; later threads are created after it. */
	atomic_fetch_add_explicit(&lfipc__fork_epoch, 1, memory_order_relaxed);
	pthread_mutex_unlock(&track_mu);
}

static void atfork_install(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

void lfipc__proc_track(lfipc_region *r)
{
	pthread_once(&atfork_once, atfork_install);
	pthread_mutex_lock(&track_mu);
	r->next = tracked;
	tracked = r;
	pthread_mutex_unlock(&track_mu);
}

void lfipc__proc_untrack(lfipc_region *r)
{
	lfipc_region **pp;

	pthread_mutex_lock(&track_mu);
	for (pp = &tracked; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	}
	pthread_mutex_unlock(&track_mu);
}

static struct lfipc_proc_slot *slot_at(const lfipc_region *r, uint32_t i)
{
	return (struct lfipc_proc_slot *)(r->base + r->proc_off) + i;
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
static int open_own_description(const lfipc_region *r)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", r->fd);
	fd = open(path, O_RDWR | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

/* Claim a slot: called with reg_mu held. */
static int claim_slot(lfipc_region *r)
{
	struct flock fl;
	uint32_t i, start, slot;
	int fd, rc;

	fd = open_own_description(r);
	if (fd < 0)
		return fd;
	start = (uint32_t)getpid() % r->proc_cap;
	for (i = 0; i < r->proc_cap; i++) {
		struct lfipc_proc_slot *s;
		uint32_t g;

		slot = (start + i) % r->proc_cap;
		rc = live_lock(fd, F_OFD_SETLK, F_WRLCK, slot, &fl);
		if (rc == -EAGAIN || rc == -EACCES)
			continue; /* a live participant holds it */
		if (rc < 0) {
			close(fd);
			return rc;
		}
		s = slot_at(r, slot);
		/* R1: acq_rel CAS; pairs with the acquire load in
		 * lfipc__token_alive(): whoever sees the new generation sees
		 * the pid written below too (diagnostics only). A dead
		 * predecessor's odd generation is retired by skipping past
		 * it, so its tokens never match again. */
		g = atomic_load_explicit(&s->gen, memory_order_relaxed);
		while (!atomic_compare_exchange_weak_explicit(
			&s->gen, &g, (g | 1u) + 2u, memory_order_acq_rel,
			memory_order_relaxed))
			;
		g = (g | 1u) + 2u;
		/* R2: relaxed: diagnostics, never used for decisions. */
		atomic_store_explicit(&s->pid, (uint32_t)getpid(),
				      memory_order_relaxed);
		atomic_store_explicit(&s->since_ns, lfipc__now_ns(),
				      memory_order_relaxed);
		r->lock_fd = fd;
		r->slot = slot;
		/* R3: relaxed; published by P2 (release on fork_epoch). */
		atomic_store_explicit(&r->token,
				      ((slot + 1) << LFIPC_TOKEN_GEN_BITS) |
					      (g & LFIPC_TOKEN_GEN_MASK),
				      memory_order_relaxed);
		return 0;
	}
	close(fd);
	return -EUSERS;
}

int lfipc__proc_reregister(lfipc_region *r, uint32_t *tok)
{
	unsigned epoch;
	int rc = 0;

	pthread_mutex_lock(&r->reg_mu);
	epoch = atomic_load_explicit(&lfipc__fork_epoch, memory_order_relaxed);
	if (atomic_load_explicit(&r->fork_epoch, memory_order_relaxed) !=
		    epoch ||
	    atomic_load_explicit(&r->token, memory_order_relaxed) == 0) {
		if (r->lock_fd >= 0) {
			/* inherited from the parent: close, never unlock */
			close(r->lock_fd);
			r->lock_fd = -1;
		}
		atomic_store_explicit(&r->token, 0, memory_order_relaxed);
		rc = claim_slot(r);
		/* P2: release, pairs with P1 in lfipc__self(). */
		if (rc == 0)
			atomic_store_explicit(&r->fork_epoch, epoch,
					      memory_order_release);
	}
	*tok = atomic_load_explicit(&r->token, memory_order_relaxed);
	pthread_mutex_unlock(&r->reg_mu);
	return rc;
}

int lfipc__proc_register(lfipc_region *r)
{
	uint32_t tok;

	r->lock_fd = -1;
	return lfipc__proc_reregister(r, &tok);
}

void lfipc__proc_unregister(lfipc_region *r)
{
	uint32_t tok = atomic_load_explicit(&r->token, memory_order_relaxed);

	pthread_mutex_lock(&r->reg_mu);
	if (tok != 0 && r->lock_fd >= 0 &&
	    atomic_load_explicit(&r->fork_epoch, memory_order_relaxed) ==
		    atomic_load_explicit(&lfipc__fork_epoch,
					 memory_order_relaxed)) {
		struct lfipc_proc_slot *s = slot_at(r, r->slot);
		uint32_t g = atomic_load_explicit(&s->gen, memory_order_relaxed);

		/* U1: release: everything this participant did happens before
		 * a checker's acquire load (R1's partner) that sees it gone. */
		if ((g & LFIPC_TOKEN_GEN_MASK) == (tok & LFIPC_TOKEN_GEN_MASK) &&
		    (g & 1u))
			atomic_compare_exchange_strong_explicit(
				&s->gen, &g, g + 1, memory_order_release,
				memory_order_relaxed);
	}
	if (r->lock_fd >= 0)
		close(r->lock_fd);
	r->lock_fd = -1;
	atomic_store_explicit(&r->token, 0, memory_order_relaxed);
	pthread_mutex_unlock(&r->reg_mu);
}

bool lfipc__token_alive(lfipc_region *r, uint32_t token)
{
	struct lfipc_proc_slot *s;
	struct flock fl;
	uint32_t slot, g;
	int rc;

	if (token == 0 || (token & ~LFIPC_TOKEN_MASK))
		return false;
	slot = (token >> LFIPC_TOKEN_GEN_BITS) - 1;
	if (slot >= r->proc_cap)
		return false;
	s = slot_at(r, slot);
	/* L1: acquire, pairs with R1/U1. */
	g = atomic_load_explicit(&s->gen, memory_order_acquire);
	if (!(g & 1u) ||
	    (g & LFIPC_TOKEN_GEN_MASK) != (token & LFIPC_TOKEN_GEN_MASK))
		return false;
	rc = live_lock(r->fd, F_OFD_GETLK, F_WRLCK, slot, &fl);
	if (rc < 0 || fl.l_type != F_UNLCK)
		return true; /* held, or undecidable: never declare death */
	/* Nobody holds the byte: the incarnation is gone. Retire it so later
	 * checks of its tokens need no system call. A registrant racing with
	 * us moves gen on, and then this CAS fails harmlessly. */
	atomic_compare_exchange_strong_explicit(&s->gen, &g, g + 1,
						memory_order_acq_rel,
						memory_order_relaxed);
	return false;
}

unsigned lfipc__proc_count_live(lfipc_region *r)
{
	unsigned n = 0;
	uint32_t i;

	for (i = 0; i < r->proc_cap; i++) {
		struct lfipc_proc_slot *s = slot_at(r, i);
		uint32_t g = atomic_load_explicit(&s->gen, memory_order_acquire);

		if ((g & 1u) &&
		    lfipc__token_alive(r, ((i + 1) << LFIPC_TOKEN_GEN_BITS) |
						  (g & LFIPC_TOKEN_GEN_MASK)))
			n++;
	}
	return n;
}
