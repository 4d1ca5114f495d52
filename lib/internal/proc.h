/* SPDX-License-Identifier: MIT */
/*
 * internal/proc.h - participants: who is attached, who is alive.
 *
 * Token encoding (32 bits; what every owner field in the region stores):
 *
 *   bits  0..18  low 19 bits of the slot's generation (always odd, so != 0)
 *   bits 19..29  slot index + 1 (1..LFIPC_PROC_SLOTS)
 *   bits 30..31  always 0: free for the caller's flags (WAITERS etc.)
 *
 * Token 0 means "nobody". A token is alive while its slot's generation still
 * equals the token's and the slot's liveness byte is locked by another open
 * file description (the kernel drops that lock when the process dies, so PID
 * reuse and zombies cannot fool it). A dead token stays dead: the slot moves
 * to a new generation before it is reused (19 bits: the same token value
 * comes back only after 2^18 registrations of one slot).
 *
 * Only proc.c decides liveness.
 *
 * Layering: proc knows nothing of the region handle. Its state is a
 * struct lfipc__proc, embedded in the handle (internal/region.h), which
 * hands it what it needs of the mapping at init (the participant table,
 * its capacity, the probing fd). region.h wraps the calls for a handle
 * (lfipc__self(r, ...), lfipc__token_alive(r, ...)).
 */
#ifndef LFIPC_INTERNAL_PROC_H
#define LFIPC_INTERNAL_PROC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "internal/futex.h"
#include "internal/layout.h"

#define LFIPC_TOKEN_MASK UINT32_C(0x3fffffff)
#define LFIPC_TOKEN_GEN_BITS 19
#define LFIPC_TOKEN_GEN_MASK ((UINT32_C(1) << LFIPC_TOKEN_GEN_BITS) - 1)

extern _Atomic unsigned lfipc__fork_epoch;

/* death_thread below: every thread may use the token without the slow
 * path (slot marked multi-threaded, or no push in this process). */
#define LFIPC_DEATH_ANY_THREAD ((uintptr_t)1)

/* The calling thread's identity for death_thread (address of a TLS byte;
 * initial-exec: one %fs-relative lea). Defined in death.c. */
extern _Thread_local char lfipc__thread_anchor
    __attribute__((tls_model("initial-exec")));

static inline uintptr_t lfipc__thread_id(void)
{
	return (uintptr_t)&lfipc__thread_anchor;
}

struct lfipc_death_rec;

/* A handle's participant state (one per open region handle). */
struct lfipc__proc {
	/* from the mapping, set by lfipc__proc_init */
	int fd;			/* probing description: holds no lock */
	struct lfipc_proc_slot *table;
	uint32_t cap;
	pthread_mutex_t *fork_hold; /* the owner's lock to hold across fork
				       (taken before reg_mu), or NULL */
	/* participant identity */
	pthread_mutex_t reg_mu;		/* serialises (re)registration */
	_Atomic uint32_t token;		/* 0: not registered */
	_Atomic unsigned fork_epoch;	/* lfipc__fork_epoch at registration */
	int lock_fd;			/* our own open file description */
	uint32_t slot;
	/* death word of our slot (death.c): the TLS anchor of the thread
	 * whose robust list links it, LFIPC_DEATH_ANY_THREAD once the slot is
	 * marked multi-threaded or has no push, 0 = re-arm on the next call */
	_Atomic uintptr_t death_thread;
	struct lfipc_death_rec *death_rec; /* guarded by death.c's lock */
	struct lfipc__proc *next;	/* list of open handles, for atfork */
};

void lfipc__proc_init(struct lfipc__proc *p, int fd, void *table,
		      uint32_t cap, pthread_mutex_t *fork_hold);
void lfipc__proc_destroy(struct lfipc__proc *p);
/* Register at open (untimed: the gate wait is LFIPC_GATE_WAIT_NS at most).
 * Return: 0; -EUSERS; -EBUSY the gate stayed held; -errno. */
int lfipc__proc_register(struct lfipc__proc *p);
void lfipc__proc_unregister(struct lfipc__proc *p); /* at close */
void lfipc__proc_track(struct lfipc__proc *p);	/* add to the atfork list */
void lfipc__proc_untrack(struct lfipc__proc *p);

/*
 * The slow path of lfipc__proc_self_until: register if this process has no
 * token in p yet (a fork child's first call), else hand out the token
 * (and arm this thread's death word, death.c). Waits for another thread
 * of ours registering (reg_mu) and for the region's gate (proc.c,
 * claim_slot) until dl: a registration never makes a call exceed its
 * caller's deadline, and with LFIPC_DL_NOW it never sleeps.
 * LFIPC_DL_NEVER (an untimed call, or LFIPC_FOREVER) waits for the gate
 * up to LFIPC_GATE_WAIT_NS. Return: 0 and *tok; -EAGAIN (LFIPC_DL_NOW)
 * or -ETIMEDOUT the gate or reg_mu stayed held until dl; -EBUSY the gate
 * stayed held for LFIPC_GATE_WAIT_NS (LFIPC_DL_NEVER); -EUSERS no free
 * slot; other negative errno from open/fcntl.
 */
int lfipc__proc_reregister(struct lfipc__proc *p, uint32_t *tok,
			   lfipc_deadline dl);

/* How long an untimed registration waits for the gate (a remover deciding
 * is quick unless stopped). */
#define LFIPC_GATE_WAIT_NS ((int64_t)1000000000)

/* This process's token in p if it has one already (false in a fork child
 * that has not registered yet): never registers, never a system call. */
static inline bool lfipc__proc_self_known(struct lfipc__proc *p, uint32_t *tok)
{
	/* P1: acquire, pairs with P2 in lfipc__proc_reregister(): the token
	 * read below belongs to this fork epoch. */
	if (atomic_load_explicit(&p->fork_epoch, memory_order_acquire) !=
	    atomic_load_explicit(&lfipc__fork_epoch, memory_order_relaxed))
		return false;
	/* P3: relaxed, ordered by P1. */
	*tok = atomic_load_explicit(&p->token, memory_order_relaxed);
	return *tok != 0;
}

/* The fast path of every lfipc__proc_self*: this process has its token
 * in p and this thread may use it without the slow path. No system call,
 * no clock. */
static inline bool lfipc__proc_self_fast(struct lfipc__proc *p, uint32_t *tok)
{
	if (lfipc__proc_self_known(p, tok)) {
		/* P4: relaxed; only this process writes it (death.c). A
		 * thread other than the one whose robust list carries our
		 * death word takes the slow path once, which marks the slot
		 * multi-threaded before it hands out the token. */
		uintptr_t t = atomic_load_explicit(&p->death_thread,
						   memory_order_relaxed);
		if (t == lfipc__thread_id() || t == LFIPC_DEATH_ANY_THREAD)
			return true;
	}
	return false;
}

/* p's token as it stands (0: none), never registering: only to confirm
 * that a token the calling thread took earlier (and wrote into a word)
 * is still p's, not to hand one out. */
static inline uint32_t lfipc__proc_token_now(struct lfipc__proc *p)
{
	/* P5: relaxed: a token changes only from 0 (registration) or to 0
	 * (unregistration at close, the atfork child handler); the thread
	 * that took one earlier saw it set (P1/P3), and compares it with
	 * its own earlier reading: no data is read through it. */
	return atomic_load_explicit(&p->token, memory_order_relaxed);
}

/*
 * This process's token, registering first if this is a fork child that
 * has not done so yet, waiting for that until dl (lfipc__proc_reregister
 * gives the errors).
 */
static inline int lfipc__proc_self_until(struct lfipc__proc *p, uint32_t *tok,
					 lfipc_deadline dl)
{
	return lfipc__proc_self_fast(p, tok) ? 0
					     : lfipc__proc_reregister(p, tok, dl);
}

/* lfipc__proc_self_until for an untimed call (LFIPC_DL_NEVER). */
static inline int lfipc__proc_self(struct lfipc__proc *p, uint32_t *tok)
{
	return lfipc__proc_self_until(p, tok, LFIPC_DL_NEVER);
}

/*
 * The slow path of lfipc__self_timed (internal/region.h): register until
 * the deadline of *timeout_ns (an API timeout: LFIPC_NOWAIT, LFIPC_FOREVER
 * or nanoseconds), then leave in *timeout_ns what is left of it for the
 * call's own wait (a negative value other than LFIPC_FOREVER when nothing
 * is: already expired). LFIPC_FOREVER waits at the gate as long as it is
 * held (no LFIPC_GATE_WAIT_NS bound). Return: as lfipc__proc_reregister.
 */
int lfipc__proc_self_timed(struct lfipc__proc *p, uint32_t *tok,
			   int64_t *timeout_ns);

/* Is the participant behind token alive? Tokens that are malformed, refer to
 * a slot out of range, or to an old generation are dead. Costs one
 * F_OFD_GETLK (0.2 us on bare metal, about 1 us on a paravirtualised guest)
 * when the generation matches; a token found dead is retired so later
 * checks of it make no system call. */
bool lfipc__proc_alive(struct lfipc__proc *p, uint32_t token);

/* What lfipc__proc_alive() learns without a system call: false when the
 * region's memory says token is dead (malformed, out of range, an old or
 * retired generation, the death word of its single-threaded slot marked);
 * true when only the kernel could tell. Retires nothing. For a caller that
 * found token alive a moment ago (queue_recover.c's sweep memo). */
bool lfipc__proc_maybe_alive(struct lfipc__proc *p, uint32_t token);

/*
 * The words of token's slot that tell its death without a system call,
 * for a caller that asks often about one token (a Pipe's sender about its
 * receiver): the slot's generation and its death word (NULL: none).
 * lfipc__death_hinted() reads them. false for a malformed token or a slot
 * out of range (dead). The addresses are the region's: valid while it is
 * mapped.
 */
struct lfipc_death_hint {
	uint32_t tok;		/* the token they are of; 0 none yet */
	_Atomic uint32_t *gen;	/* its slot's generation word */
	_Atomic uint32_t *word; /* its slot's death word, or NULL */
};
bool lfipc__proc_death_words(struct lfipc__proc *p, uint32_t token,
			     struct lfipc_death_hint *h);

/* Does the region's memory hint that h's token died: its slot's
 * generation is not the token's (or says free), or its death word is
 * marked by the kernel (whatever its threads: for a multi-threaded slot
 * a hint only)? A few loads; lfipc__proc_alive() decides. false for a
 * live participant, and for a dead one whose death the kernel did not
 * push (no robust list: the fallback). */
static inline bool lfipc__death_hinted(const struct lfipc_death_hint *h)
{
	/* L1: acquire, as token_slot(). */
	uint32_t g = atomic_load_explicit(h->gen, memory_order_acquire), v;

	if (!(g & 1u) ||
	    (g & LFIPC_TOKEN_GEN_MASK) != (h->tok & LFIPC_TOKEN_GEN_MASK))
		return true;
	if (!h->word)
		return false;
	/* D10 (death.c): seq_cst; the kernel's mark is a locked cmpxchg. */
	v = atomic_load(h->word);
	return (v & LFIPC_DW_DIED) && !(v & LFIPC_DW_TID);
}

/* Number of those F_OFD_GETLK probes made by this process, for tests that
 * count a sweep's system calls. */
extern _Atomic uint64_t lfipc__proc_probes;

/* What a participant slot says, for listings (inspect.c): liveness from
 * its lock, pid and since_ns as registered (diagnostics). A slot whose
 * owner closed cleanly is FREE; one whose owner died is DEAD until a new
 * registration reuses it (unregistration clears pid; death does not). */
enum { LFIPC_SLOT_FREE = 0, LFIPC_SLOT_ALIVE = 1, LFIPC_SLOT_DEAD = 2 };
struct lfipc__slotinfo {
	int state;
	uint32_t gen, pid;
	int64_t since_ns;
};

/* Probe slot i of the participant table at table (cap slots) of the file
 * behind fd, a description that holds no liveness lock itself (it may be
 * read-only: a probe tests, it never locks). Return: 0; -EINVAL; -errno
 * from fcntl. */
int lfipc__slot_probe(int fd, const void *table, uint32_t cap, uint32_t i,
		      struct lfipc__slotinfo *out);
int lfipc__proc_slot_info(struct lfipc__proc *p, uint32_t i,
			  struct lfipc__slotinfo *out);

/* In a fork child, on its only thread (the atfork child handler): empty
 * the calling thread's set of held locks (the parent's holds) and forget
 * its cached kernel thread id (sync.c). */
void lfipc__sync_fork_child(void);

/* Lock the gate byte (LFIPC_GATE_BYTE) of the file behind fd with type
 * (F_RDLCK, F_WRLCK, F_UNLCK), retrying with the wait layer's back-off
 * (lfipc__wait_retry) until dl (LFIPC_DL_NOW: one attempt, no sleep).
 * Return: 0; -EAGAIN (LFIPC_DL_NOW) or -ETIMEDOUT still held by another
 * at dl; -errno. */
int lfipc__gate_lock(int fd, short type, lfipc_deadline dl);

/*
 * A tag of the calling thread, unique among the threads this process has
 * run (a counter, never 0; 2^32 - 1 thread creations before it wraps). A
 * fork child's thread keeps its parent thread's tag, which is enough: its
 * token differs. For owner words that name a thread of a participant
 * (token, tag), e.g. a queue's single-producer role.
 */
uint32_t lfipc__thread_tag_slow(void);
extern _Thread_local uint32_t lfipc__thread_tag_v
    __attribute__((tls_model("initial-exec")));

static inline uint32_t lfipc__thread_tag(void)
{
	uint32_t t = lfipc__thread_tag_v;

	return t ? t : lfipc__thread_tag_slow();
}

/* Count live participants (stats). */
unsigned lfipc__proc_count_live(struct lfipc__proc *p);

/* The pid its slot records for token (as its holder saw it: in another
 * pid namespace it names another process), or 0 for a bad token. A hint:
 * a caller that opens a pidfd from it must confirm the token alive after
 * pidfd_open (then the pid still named the holder when the pidfd was
 * made: the OFD lock drops before the process can be reaped). */
pid_t lfipc__proc_token_pid(struct lfipc__proc *p, uint32_t token);

#endif /* LFIPC_INTERNAL_PROC_H */
