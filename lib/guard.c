/* SPDX-License-Identifier: MIT */
/*
 * guard.c - the SIGBUS guard of mappings that can be truncated
 * (internal/guard.h explains why it exists).
 *
 * The handler runs asynchronously to everything, so the table of watched
 * mappings is a fixed array of slots read with atomics only, and the
 * handler makes only async-signal-safe calls (fstat, ftruncate, sigaction)
 * plus fallocate, a plain system call, and never loops on a fault it cannot
 * repair.
 *
 * Slot encoding:
 *   base  0 = free; 1 = claimed by lfipc__guard_add, being filled;
 *         else the mapping's address, published last;
 *   size, fd: valid while base is an address;
 *   busy  the number of handlers looking at the slot right now.
 * A remover moves base from the address to 1 first and waits until busy
 * is 0 before it frees the slot (base 0), so a handler that saw the
 * address keeps a valid fd until it is done. All accesses are seq_cst.
 *
 * The remover sleeps in the wait layer on busy (remove_wait); a handler
 * that leaves a slot whose base is 1 wakes it. The pairing: the handler's
 * G5 decrement, then its G6 load of base; the remover's G3' store of 1,
 * then its load of busy in busy_ready (all seq_cst). Either G6 sees 1 and
 * the handler wakes (after the decrement, so the futex compare fails or
 * the sleeper is queued), or G6 precedes the store and so does G5, which
 * the remover's load then sees.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal/guard.h"
#include "internal/wait.h"

#define GUARD_SLOTS 256

struct guard_slot {
	_Atomic uintptr_t base;
	_Atomic uint64_t size;
	_Atomic int fd;
	_Atomic uint32_t busy; /* also a futex word: see remove_wait() */
};

static struct guard_slot slots[GUARD_SLOTS];
static struct sigaction prev_action; /* read once, before installing */
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static uintptr_t page_size = 4096; /* set once, before installing */

bool lfipc__guard_sealed(int fd)
{
	int seals = fcntl(fd, F_GET_SEALS);

	return seals >= 0 && (seals & F_SEAL_SHRINK);
}

/*
 * Make the page at addr accessible again if it lies in a watched mapping:
 * grow the file back to the mapping's size when it is shorter (whoever
 * shrank it), then allocate the page. The page may have been restored
 * already by another process's handler between the fault and now; then
 * only the allocation is left. A page that cannot be allocated (a full
 * /dev/shm) is not repaired: the fault is passed on, never retried in a
 * loop. Return: true when the access can repeat.
 */
static bool repair(uintptr_t addr)
{
	bool fixed = false;

	for (int i = 0; i < GUARD_SLOTS && !fixed; i++) {
		struct guard_slot *s = &slots[i];
		uintptr_t base;

		/* G1: seq_cst, with G2: a remover that cleared base after
		 * this increment waits for us; one that cleared it before is
		 * seen as 0 below. */
		atomic_fetch_add(&s->busy, 1);
		base = atomic_load(&s->base); /* G2 */
		if (base > 1 && addr >= base) {
			uint64_t size = atomic_load(&s->size);
			int fd = atomic_load(&s->fd);
			off_t page = (off_t)((addr - base) & ~(page_size - 1));
			struct stat st;

			if (addr - base < size && fstat(fd, &st) == 0 &&
			    ((uint64_t)st.st_size >= size ||
			     ftruncate(fd, (off_t)size) == 0) &&
			    fallocate(fd, 0, page, (off_t)page_size) == 0)
				fixed = true;
		}
		atomic_fetch_sub(&s->busy, 1); /* G5 */
		/* G6: a remover waits for busy to drop: wake it (a system
		 * call, async-signal-safe; only while a remove is on). */
		if (atomic_load(&s->base) == 1)
			lfipc__wake_word(&s->busy, INT_MAX);
	}
	return fixed;
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;

	if (si->si_code == BUS_ADRERR && repair((uintptr_t)si->si_addr)) {
		errno = saved;
		return;
	}
	/* Not ours: what would have happened without lfipc. */
	if ((prev_action.sa_flags & SA_SIGINFO) && prev_action.sa_sigaction) {
		prev_action.sa_sigaction(sig, si, uc);
	} else if (prev_action.sa_handler != SIG_DFL &&
		   prev_action.sa_handler != SIG_IGN &&
		   !(prev_action.sa_flags & SA_SIGINFO)) {
		prev_action.sa_handler(sig);
	} else {
		/* default action: the access repeats and the kernel kills
		 * the process with SIGBUS, as without the guard */
		struct sigaction dfl;

		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		sigaction(sig, &dfl, NULL);
	}
	errno = saved;
}

static void install(void)
{
	struct sigaction sa;
	long ps = sysconf(_SC_PAGESIZE);

	if (ps > 0)
		page_size = (uintptr_t)ps;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	/* the previous action is complete before ours can run */
	sigaction(SIGBUS, NULL, &prev_action);
	sigaction(SIGBUS, &sa, NULL);
}

bool lfipc__guard_add(void *base, uint64_t size, int fd)
{
	pthread_once(&install_once, install);
	for (int i = 0; i < GUARD_SLOTS; i++) {
		struct guard_slot *s = &slots[i];
		uintptr_t zero = 0;

		/* G3: seq_cst claim; busy of a reused slot is 0 (G4). */
		if (!atomic_compare_exchange_strong(&s->base, &zero, 1))
			continue;
		atomic_store(&s->size, size);
		atomic_store(&s->fd, fd);
		atomic_store(&s->base, (uintptr_t)base); /* publish, G2 */
		return true;
	}
	return false;
}

/* Readiness of a remover: no handler looks at the slot any more. */
static int busy_ready(void *ctx, struct lfipc_sleep *sl, bool check)
{
	struct guard_slot *s = ctx;
	uint32_t v = atomic_load(&s->busy); /* W3 */

	(void)check;
	if (v == 0)
		return 1;
	sl->word = &s->busy;
	sl->val = v;
	return 0;
}

void lfipc__guard_remove(void *base)
{
	for (int i = 0; i < GUARD_SLOTS; i++) {
		struct guard_slot *s = &slots[i];
		uintptr_t b = (uintptr_t)base;

		if (!atomic_compare_exchange_strong(&s->base, &b, 1))
			continue;
		/* G4: wait out handlers that saw the address (G1/G2); the
		 * CAS above is G3' of the wake-up pairing. */
		lfipc__wait_until(NULL, NULL, busy_ready, s, LFIPC_DL_NEVER,
				  LFIPC_WAIT_NOINTR | LFIPC_WAIT_NOSPIN);
		atomic_store(&s->base, 0);
		return;
	}
}
