/* SPDX-License-Identifier: MIT */
/*
 * death.c - death words armed through glibc's robust list (the push).
 *
 * When a thread exits (SIGKILL, exit, exec), the kernel walks the robust
 * list that the thread registered with set_robust_list(2) (glibc registers
 * one per thread: struct pthread's robust_head) and, for every entry whose
 * futex word (entry + futex_offset, -32 with glibc) holds the thread's TID,
 * sets OWNER_DIED, clears the TID and wakes one sleeper. It does so in
 * exit_mm(), before the address space is torn down: earlier than the OFD
 * lock drop (exit_files(), after the teardown), 0.5 ms for a small owner
 * and 17 ms for a 128 MB one on the machine this was measured on.
 *
 * Layout per participant (one per region handle): 8 KiB of address space
 * A: the region page that holds our slot's death word, mapped MAP_SHARED at
 * A, and a private anonymous page at A + 4096 that holds our node: `prev`
 * at E - 8, `next` at E, with E = A + 4096 + 8 + 8 * (slot % 3), so that
 * E - 32 is the word at offset 4072 + 8 * (slot % 3) of the shared page.
 * No pointer that glibc or the kernel follows is ever in shared memory: a
 * peer that scribbles on the region can at most clear or fake the mark
 * (which it could equally do to any lock word), never redirect a write.
 *
 * The node is linked into the list of the thread that registered (the
 * linking thread) exactly as glibc's ENQUEUE_MUTEX_BOTH links a robust
 * mutex: at the head, doubly linked, the head's own `prev` being the word
 * just before robust_head in struct pthread. Only the linking thread ever
 * touches its list (glibc's rule too), with signals blocked.
 *
 * Thread exit of the linking thread (pthread_exit or return; never process
 * death): a pthread key destructor disarms the word (:= 0, wake all) and
 * unlinks the node before the kernel's walk could mark it, and sets the
 * handle's death_thread to 0 so that the next lfipc call of any thread
 * re-arms on that thread. A thread that ends by a raw SYS_exit skips the
 * destructor: the kernel marks the word although the process lives (the
 * "false alarm" of doc/architecture.md, handled by LFIPC_SLOT_MT and the
 * hint window in wait.c only for slots used by several threads).
 *
 * Multi-threaded slots: the first time a thread other than the linking
 * thread obtains the token (lfipc__self), the slot's LFIPC_SLOT_MT flag is
 * set (seq_cst) before the token is returned to it. For such a slot a mark
 * is only a hint: its other threads may still run for a moment after the
 * linking thread reached exit_mm(), so the OFD lock decides.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal/death.h"
#include "internal/proc.h"
#include "internal/wait.h"

_Thread_local char lfipc__thread_anchor
    __attribute__((tls_model("initial-exec")));

/* One linked node (or one whose link is left to its thread). */
struct lfipc_death_rec {
	struct lfipc_death_rec *next, *prev; /* all records, under death_mu */
	lfipc_region *r;	/* NULL: orphan, the handle was closed */
	uint8_t *map;		/* 8 KiB: shared page, private page */
	void **node;		/* E: node[0] = next, node[-1] = prev */
	pid_t tid;		/* the linking thread */
	unsigned epoch;		/* lfipc__fork_epoch when linked */
};

/* The kernel's struct robust_list_head (uapi linux/futex.h). */
struct rl_head {
	void *list;
	long futex_offset;
	void *list_op_pending;
};

static pthread_mutex_t death_mu = PTHREAD_MUTEX_INITIALIZER;
static struct lfipc_death_rec *recs;
static pthread_key_t exit_key;
static pthread_once_t death_once = PTHREAD_ONCE_INIT;
static _Atomic int push_state; /* 0 unknown, 1 usable, -1 not */
static _Thread_local pid_t my_tid;
static _Thread_local bool exiting; /* our key destructor ran */

static pid_t self_tid(void)
{
	if (my_tid == 0)
		my_tid = (pid_t)syscall(SYS_gettid);
	return my_tid;
}

static void thread_exit(void *arg);

static void atfork_prepare(void)
{
	pthread_mutex_lock(&death_mu);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&death_mu);
}

/* glibc empties the forking thread's robust list in the child (it does
 * not inherit robust mutexes), so no record is linked here: unmap them
 * all; the child registers slots of its own. */
static void atfork_child(void)
{
	struct lfipc_death_rec *d, *nx;

	for (d = recs; d; d = nx) {
		nx = d->next;
		if (d->r) {
			d->r->proc.death_rec = NULL;
			/* D1: relaxed: the child is single-threaded here. */
			atomic_store_explicit(&d->r->proc.death_thread, 0,
					      memory_order_relaxed);
		}
		munmap(d->map, 8192);
		free(d);
	}
	recs = NULL;
	my_tid = 0;
	pthread_mutex_unlock(&death_mu);
}

static void death_init(void)
{
	pthread_key_create(&exit_key, thread_exit);
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

bool lfipc__death_push_ok(void)
{
	/* D2: relaxed: a cache of a value every thread computes alike. */
	int st = atomic_load_explicit(&push_state, memory_order_relaxed);
	struct rl_head *head = NULL;
	size_t len = 0;

	if (st != 0)
		return st > 0 && lfipc__wait_have_waitv();
	st = -1;
#ifdef __GLIBC__
	/* glibc registers its head per thread with futex_offset = the offset
	 * of a mutex's lock word from its list entry: -32 on every 64-bit
	 * glibc target (the layout our node mimics). */
	if (sizeof(void *) == 8 &&
	    syscall(SYS_get_robust_list, 0, &head, &len) == 0 && head &&
	    len == sizeof(struct rl_head) && head->futex_offset == -32)
		st = 1;
#endif
	atomic_store_explicit(&push_state, st, memory_order_relaxed);
	return st > 0 && lfipc__wait_have_waitv();
}

uint32_t lfipc__death_pushed_slots(const lfipc_region *r)
{
	return lfipc__death_push_ok() ? r->death_slots : 0;
}

/* Link / unlink node E into / out of the calling thread's list, as glibc's
 * ENQUEUE_MUTEX_BOTH / DEQUEUE_MUTEX do (entries point at their `next`
 * field; an entry's `prev` is the word before it; low bit 0 = not PI). */
static void list_link(void **node)
{
	struct rl_head *head = NULL;
	size_t len = 0;
	void **first;

	if (syscall(SYS_get_robust_list, 0, &head, &len) != 0 || !head)
		return;
	first = (void **)((uintptr_t)head->list & ~(uintptr_t)1);
	first[-1] = node; /* first->prev (robust_prev when first == head) */
	node[0] = head->list;
	node[-1] = head;
	/* The node is complete before the kernel can reach it. */
	atomic_signal_fence(memory_order_seq_cst);
	head->list = node;
}

static void list_unlink(void **node)
{
	void **next = (void **)((uintptr_t)node[0] & ~(uintptr_t)1);
	void **prev = (void **)((uintptr_t)node[-1] & ~(uintptr_t)1);

	if (!next || !prev)
		return;
	next[-1] = node[-1];
	prev[0] = node[0];
	/* Out of the list before the entry's own pointers are cleared. */
	atomic_signal_fence(memory_order_seq_cst);
	node[0] = NULL;
	node[-1] = NULL;
}

/* Run fn(node) with every signal blocked: a handler on this thread that
 * takes a glibc robust mutex must not see the list half-linked. */
static void with_signals_blocked(void (*fn)(void **), void **node)
{
	sigset_t all, old;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	fn(node);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void rec_remove(struct lfipc_death_rec *d)
{
	if (d->prev)
		d->prev->next = d->next;
	else
		recs = d->next;
	if (d->next)
		d->next->prev = d->prev;
}

/* Unlink (on its thread), unmap and free; death_mu held. */
static void rec_destroy(struct lfipc_death_rec *d)
{
	with_signals_blocked(list_unlink, d->node);
	munmap(d->map, 8192);
	rec_remove(d);
	free(d);
}

/* Disarm d's word (the handle is still open); death_mu held. */
static void rec_disarm(struct lfipc_death_rec *d)
{
	lfipc_region *r = d->r;
	_Atomic uint32_t *w = lfipc__death_word_at(r, r->proc.slot);

	/* D3: seq_cst store; the wake below makes sleepers re-read it. */
	atomic_store(w, 0);
	lfipc__wake_word(w, INT_MAX);
	r->proc.death_rec = NULL;
	d->r = NULL;
}

/* Free the orphans this thread left (handles closed by other threads). */
static void reap_orphans(pid_t tid)
{
	struct lfipc_death_rec *d, *nx;
	unsigned epoch = atomic_load_explicit(&lfipc__fork_epoch,
					      memory_order_relaxed);

	for (d = recs; d; d = nx) {
		nx = d->next;
		if (!d->r && d->tid == tid && d->epoch == epoch)
			rec_destroy(d);
	}
}

static void thread_exit(void *arg)
{
	struct lfipc_death_rec *d, *nx;
	pid_t tid = self_tid();

	(void)arg;
	exiting = true;
	pthread_mutex_lock(&death_mu);
	for (d = recs; d; d = nx) {
		nx = d->next;
		if (d->tid != tid)
			continue;
		if (d->r) {
			lfipc_region *r = d->r;

			rec_disarm(d);
			/* D4: relaxed: the next lfipc__self of any thread
			 * takes the slow path (reg_mu) and re-arms; an
			 * exchange, as lfipc__death_other_thread CASes. */
			atomic_exchange_explicit(&r->proc.death_thread, 0,
						 memory_order_relaxed);
		}
		rec_destroy(d);
	}
	pthread_mutex_unlock(&death_mu);
}

/* Map the death page and the node page and link the node on the calling
 * thread. reg_mu held. Return: the record, or NULL (no push for it). */
static struct lfipc_death_rec *link_new(lfipc_region *r, uint32_t slot)
{
	struct lfipc_death_rec *d;
	uint64_t page = r->death_off + (uint64_t)(slot / LFIPC_DEATH_PER_PAGE) *
					       4096;
	uint8_t *map;

	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	map = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED) {
		free(d);
		return NULL;
	}
	if (mmap(map, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 r->fd, (off_t)page) == MAP_FAILED) {
		munmap(map, 8192);
		free(d);
		return NULL;
	}
	d->r = r;
	d->map = map;
	d->node = (void **)(map + 4096 + 8 + 8 * (slot % LFIPC_DEATH_PER_PAGE));
	d->tid = self_tid();
	d->epoch = atomic_load_explicit(&lfipc__fork_epoch,
					memory_order_relaxed);
	with_signals_blocked(list_link, d->node);
	d->next = recs;
	if (recs)
		recs->prev = d;
	recs = d;
	r->proc.death_rec = d;
	/* Destructor runs only for threads whose key value is non-NULL. */
	pthread_setspecific(exit_key, (void *)1);
	return d;
}

void lfipc__death_arm(lfipc_region *r, uint32_t slot)
{
	_Atomic uint32_t *w = lfipc__death_word_at(r, slot);
	struct lfipc_proc_slot *ps =
	    (struct lfipc_proc_slot *)(r->base + r->proc_off) + slot;
	uintptr_t thread = LFIPC_DEATH_ANY_THREAD;

	pthread_once(&death_once, death_init);
	/* D5: seq_cst: no checker that sees the generation published after
	 * this (R1, release) sees the previous incarnation's flag or mark. */
	atomic_store(&ps->flags, 0);
	if (w) {
		bool push = lfipc__death_push_ok() && !exiting;

		atomic_store(w, push ? (uint32_t)self_tid() & LFIPC_DW_TID : 0);
		if (push) {
			pthread_mutex_lock(&death_mu);
			reap_orphans(self_tid());
			if (link_new(r, slot))
				thread = lfipc__thread_id();
			else
				atomic_store(w, 0);
			pthread_mutex_unlock(&death_mu);
		}
	}
	/* D6: relaxed: read by this process's lfipc__self (P4), published
	 * with the token by P2 (release). */
	atomic_store_explicit(&r->proc.death_thread, thread,
			      memory_order_relaxed);
}

void lfipc__death_disarm(lfipc_region *r)
{
	struct lfipc_death_rec *d;
	pid_t tid = self_tid();

	pthread_mutex_lock(&death_mu);
	d = r->proc.death_rec;
	if (d) {
		rec_disarm(d);
		if (d->tid == tid) {
			rec_destroy(d);
		} else {
			/* Another thread's list holds the node: leave it to
			 * that thread (its exit or its next registration),
			 * but drop the region page now so the word is a
			 * private 0 that no later TID can match. */
			mmap(d->map, 4096, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		}
	}
	pthread_mutex_unlock(&death_mu);
}

void lfipc__death_other_thread(lfipc_region *r)
{
	uintptr_t me = lfipc__thread_id();
	_Atomic uint32_t *w = lfipc__death_word_at(r, r->proc.slot);

	for (;;) {
		/* D7: relaxed; written under reg_mu (held) or, to 0 only, by
		 * the linking thread's exit (D4), hence the CAS below. */
		uintptr_t t = atomic_load_explicit(&r->proc.death_thread,
						   memory_order_relaxed);
		uintptr_t want = LFIPC_DEATH_ANY_THREAD;

		if (t == LFIPC_DEATH_ANY_THREAD || t == me)
			return;
		if (t == 0 && w && lfipc__death_push_ok() && !exiting) {
			/* The linking thread exited: re-arm on this one (no
			 * new generation: the participant is the same). No
			 * record exists, so no exit races with this. */
			pthread_mutex_lock(&death_mu);
			reap_orphans(self_tid());
			/* D8: seq_cst, then wake: sleepers see it armed. */
			atomic_store(w, (uint32_t)self_tid() & LFIPC_DW_TID);
			if (link_new(r, r->proc.slot))
				want = me;
			else
				atomic_store(w, 0);
			pthread_mutex_unlock(&death_mu);
			lfipc__wake_word(w, INT_MAX);
		} else if (t != 0 && r->proc.slot < r->proc_cap) {
			/* A second thread uses the token. D9: seq_cst: set
			 * before this thread receives the token, so before
			 * any write it makes under the token; a checker
			 * that reads the mark reads this flag after it. */
			atomic_fetch_or(
			    &((struct lfipc_proc_slot *)(r->base +
							 r->proc_off) +
			      r->proc.slot)
				 ->flags,
			    LFIPC_SLOT_MT);
		}
		if (atomic_compare_exchange_strong_explicit(
			&r->proc.death_thread, &t, want, memory_order_relaxed,
			memory_order_relaxed))
			return;
		/* the linking thread exited meanwhile (D4): look again */
	}
}

bool lfipc__death_marked(lfipc_region *r, uint32_t slot)
{
	_Atomic uint32_t *w = lfipc__death_word_at(r, slot);
	uint32_t v;

	if (!w)
		return false;
	/* D10: seq_cst; the kernel's mark is a locked cmpxchg. */
	v = atomic_load(w);
	if (!(v & LFIPC_DW_DIED) || (v & LFIPC_DW_TID))
		return false;
	/* D11: seq_cst, after D10; pairs with D9. */
	return !(atomic_load(&((struct lfipc_proc_slot *)(r->base +
							  r->proc_off) +
				slot)
				  ->flags) &
		 LFIPC_SLOT_MT);
}

void lfipc__death_wake(lfipc_region *r, uint32_t slot)
{
	_Atomic uint32_t *w = lfipc__death_word_at(r, slot);

	if (w)
		lfipc__wake_word(w, INT_MAX);
}

enum lfipc_death_state lfipc__death_peek(lfipc_region *r, uint32_t token,
					 _Atomic uint32_t **word,
					 uint32_t *val)
{
	struct lfipc_proc_slot *ps;
	uint32_t slot, g, v, fl;
	_Atomic uint32_t *w;

	*word = NULL;
	*val = 0;
	if (!r || token == 0 || (token & ~LFIPC_TOKEN_MASK))
		return LFIPC_DEATH_NONE;
	slot = (token >> LFIPC_TOKEN_GEN_BITS) - 1;
	w = lfipc__death_word_at(r, slot);
	if (slot >= r->proc_cap || !w)
		return LFIPC_DEATH_NONE;
	ps = (struct lfipc_proc_slot *)(r->base + r->proc_off) + slot;
	/* D12: acquire, pairs with R1 (the registrant's generation bump
	 * after D5): the word read below is this incarnation's or later. */
	g = atomic_load_explicit(&ps->gen, memory_order_acquire);
	/* D13: seq_cst (the sleeper's W3 family: a change after it either
	 * fails the futex compare or wakes us). */
	v = atomic_load(w);
	*word = w;
	*val = v;
	if (!(g & 1u) ||
	    (g & LFIPC_TOKEN_GEN_MASK) != (token & LFIPC_TOKEN_GEN_MASK))
		return LFIPC_DEATH_GONE;
	if (v & LFIPC_DW_DIED) {
		/* D14: seq_cst, after D13; pairs with D9. */
		fl = atomic_load(&ps->flags);
		if (v & LFIPC_DW_TID)
			return LFIPC_DEATH_OFF; /* re-armed oddly: slices */
		return (fl & LFIPC_SLOT_MT) ? LFIPC_DEATH_HINT
					    : LFIPC_DEATH_DIED;
	}
	return (v & LFIPC_DW_TID) ? LFIPC_DEATH_ARMED : LFIPC_DEATH_OFF;
}
