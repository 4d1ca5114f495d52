/* SPDX-License-Identifier: MIT */
/*
 * event.c - Event: a flag that threads and processes wait for.
 *
 * Block layout (64 bytes; struct event_shm in internal/sync_layout.h):
 *   0  u32 magic   EVENT_MAGIC, written once at init
 *   4  u32 word    the event word, also the futex word:
 *                    bit  0     SET
 *                    bit  1     0 (was WAITERS; never set now)
 *                    bits 2..31 generation: +1 on every clear->set change
 *   8  wait queue  struct lfipc_wq: waiters and fd pollers
 *  24  pad to 64
 *
 * set() turns SET on and advances the generation in one CAS (K1 of the
 * wait protocol, internal/wait.h) and then wakes every waiter through the
 * wait layer (no system call when nobody waits or polls). A waiter returns
 * 0 when SET is on or the generation moved since it started, so a set
 * followed at once by a clear is not missed; it sleeps on the word itself.
 * Nothing here has an owner; a setter that dies between its CAS and its
 * wake delays sleepers by at most the safety slice (1 s).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <lfipc/sync.h>

#include "internal/objtype.h"
#include "internal/poll.h"
#include "internal/region.h"
#include "internal/shm.h"
#include "internal/sync_layout.h"
#include "internal/wait.h"

#define EV_SET UINT32_C(1)
#define EV_GEN_ONE UINT32_C(4)

struct lfipc_event {
	lfipc_region *r;
	struct event_shm *s;
	/* fd poller (lfipc_event_fd), made on first use */
	_Atomic(struct lfipc_poller *) poller;
	pthread_mutex_t poller_mu;
};

static int event_init(void *block, uint64_t size, void *arg)
{
	struct event_shm *s = block;

	(void)arg;
	if (size < sizeof(*s))
		return -EINVAL;
	s->magic = EVENT_MAGIC;
	return 0;
}

static int event_attach(lfipc_region *r, uint64_t off, uint64_t size,
			lfipc_event **out)
{
	struct event_shm *s;
	lfipc_event *e;

	if (off % 64 != 0 || size < sizeof(*s) ||
	    !lfipc__heap_range_ok(r, off, sizeof(*s)))
		return -EPROTO;
	s = lfipc__at(r, off);
	if (lfipc__shm_ld32(&s->magic) != EVENT_MAGIC)
		return -EPROTO;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->r = r;
	e->s = s;
	pthread_mutex_init(&e->poller_mu, NULL);
	*out = e;
	return 0;
}

int lfipc_event_create(lfipc_region *r, const char *name, lfipc_event **out)
{
	uint64_t off;
	int rc;

	if (!r || !out)
		return -EINVAL;
	rc = lfipc__obj_create(r, name, LFIPC_OBJ_EVENT,
			       sizeof(struct event_shm), 64, event_init, NULL,
			       &off);
	if (rc < 0)
		return rc;
	return event_attach(r, off, sizeof(struct event_shm), out);
}

int lfipc_event_open(lfipc_region *r, const char *name, lfipc_event **out)
{
	uint64_t off, size;
	int rc;

	if (!r || !name || !out)
		return -EINVAL;
	rc = lfipc__obj_open(r, name, LFIPC_OBJ_EVENT, &off, &size);
	if (rc < 0)
		return rc;
	return event_attach(r, off, size, out);
}

void lfipc_event_close(lfipc_event *e)
{
	if (!e)
		return;
	/* E7: relaxed: closing excludes every other use. */
	lfipc__poller_close(
	    atomic_load_explicit(&e->poller, memory_order_relaxed));
	pthread_mutex_destroy(&e->poller_mu);
	free(e);
}

/* The rest of a set whose first CAS failed, out of line so that the
 * bound's bookkeeping stays off the fast path. A peer that rewrites the
 * word without end: -EPROTO after the bound (internal/wait.h), never a
 * live-lock. Return: 1 set by us, 0 already set, -EPROTO. */
static __attribute__((noinline)) int set_retry(lfipc_event *e, uint32_t v)
{
	struct lfipc_cas_bound b = LFIPC_CAS_BOUND_INIT;
	int rc;

	for (;;) {
		rc = lfipc__cas_retry(&b, LFIPC_DL_NEVER);
		if (rc < 0)
			return rc;
		if (v & EV_SET)
			return 0;
		/* E1, as in lfipc_event_set(). */
		if (atomic_compare_exchange_weak_explicit(
			&e->s->word, &v, (v | EV_SET) + EV_GEN_ONE,
			memory_order_seq_cst, memory_order_relaxed))
			return 1;
	}
}

int lfipc_event_set(lfipc_event *e)
{
	uint32_t v;
	int rc;

	if (!e)
		return -EINVAL;
	/* E5: relaxed guess for the E1 CAS (also its failure order); a set
	 * flag seen here needs no ordering: set() then does nothing. */
	v = atomic_load_explicit(&e->s->word, memory_order_relaxed);
	if (v & EV_SET)
		return 0;
	/* E1 = K1: seq_cst (release pairs with E3: what the setter did
	 * before set() happens before a waiter returns; seq_cst orders it
	 * before K2 in lfipc__wake). */
	if (!atomic_compare_exchange_weak_explicit(
		&e->s->word, &v, (v | EV_SET) + EV_GEN_ONE,
		memory_order_seq_cst, memory_order_relaxed)) {
		rc = set_retry(e, v);
		if (rc <= 0)
			return rc;
	}
	lfipc__wake(e->r, &e->s->wq, &e->s->word, INT32_MAX);
	return 0;
}

int lfipc_event_clear(lfipc_event *e)
{
	if (!e)
		return -EINVAL;
	/* E2: relaxed; clearing publishes nothing. */
	atomic_fetch_and_explicit(&e->s->word, ~EV_SET, memory_order_relaxed);
	return 0;
}

bool lfipc_event_is_set(const lfipc_event *e)
{
	/* E3: acquire, pairs with E1. */
	return e && (atomic_load_explicit(&e->s->word, memory_order_acquire) &
		     EV_SET);
}

/* A waiter: the generation it started in. */
struct ewait {
	lfipc_event *e;
	uint32_t gen;
};

/* Readiness callback (internal/wait.h): set, or set since we started. */
static int event_ready(void *ctx, struct lfipc_sleep *sl, bool check)
{
	struct ewait *w = ctx;
	/* E3': seq_cst (W3; acquire pairs with E1). */
	uint32_t v = atomic_load(&w->e->s->word);

	(void)check; /* nobody's death to check */
	if ((v & EV_SET) || (v & ~EV_SET) != w->gen)
		return 1;
	sl->word = &w->e->s->word;
	sl->val = v;
	return 0;
}

int lfipc_event_wait(lfipc_event *e, int64_t timeout_ns)
{
	struct ewait w = {e, 0};
	uint32_t v;

	if (!e)
		return -EINVAL;
	/* E3: acquire, pairs with E1. */
	v = atomic_load_explicit(&e->s->word, memory_order_acquire);
	if (v & EV_SET)
		return 0;
	w.gen = v & ~EV_SET;
	return lfipc__wait_poll(e->r, &e->s->wq, event_ready, &w,
				lfipc__deadline(timeout_ns), 0,
				/* E6: acquire, pairs with F2 (poll.c) */
				atomic_load_explicit(&e->poller,
						     memory_order_acquire));
}

static bool event_now(void *ctx)
{
	return lfipc_event_is_set(ctx);
}

/* Non-consuming readiness callback for lfipc_wait_any (wait_any.c). */
static int event_peek(void *ctx, struct lfipc_sleep *sl, bool check)
{
	lfipc_event *e = ctx;
	/* E3'': seq_cst (W3; acquire pairs with E1). */
	uint32_t v = atomic_load(&e->s->word);

	(void)check;
	if (v & EV_SET)
		return 1;
	sl->word = &e->s->word;
	sl->val = v;
	return 0;
}

int lfipc__event_any(lfipc_event *e, struct lfipc_any *a, lfipc_region **r)
{
	a->wq = &e->s->wq;
	a->ready = event_peek;
	a->ctx = e;
	*r = e->r;
	return 0;
}

int lfipc_event_fd(lfipc_event *e)
{
	if (!e)
		return -EINVAL;
	return lfipc__poller_fd_once(e->r, &e->s->wq, &e->poller,
				     &e->poller_mu, event_now, e);
}

/* ---- descriptor, status, open-or-create ------------------------------ */

static uint64_t event_size(const void *shape)
{
	(void)shape;
	return sizeof(struct event_shm);
}

static int event_same_shape(lfipc_region *r, uint64_t off, uint64_t size,
			    const void *shape)
{
	(void)shape;
	if (size < sizeof(struct event_shm) ||
	    lfipc__shm_ld32(lfipc__at(r, off)) != EVENT_MAGIC)
		return -EPROTO;
	return 0;
}

static int event_status(lfipc_region *r, uint64_t off, uint64_t size,
			void *out)
{
	lfipc_event_status *st = out;
	struct event_shm *s;
	uint32_t w;

	if (off % 64 != 0 || size < sizeof(*s) ||
	    !lfipc__heap_range_ok(r, off, sizeof(*s)))
		return -EPROTO;
	s = lfipc__at(r, off);
	if (lfipc__shm_ld32(&s->magic) != EVENT_MAGIC)
		return -EPROTO;
	/* E6: relaxed: a diagnostic snapshot. */
	w = atomic_load_explicit(&s->word, memory_order_relaxed);
	st->set = (w & EV_SET) != 0;
	st->waiters = lfipc__wq_sleepers(&s->wq) != 0;
	return 0;
}

static uint64_t event_size_arg(unsigned arg)
{
	(void)arg;
	return sizeof(struct event_shm);
}

const struct lfipc__objtype lfipc__event_type = {
	.type = LFIPC_OBJ_EVENT,
	.name = "event",
	.align = 64,
	.size = event_size,
	.size_arg = event_size_arg,
	.init = event_init,
	.same_shape = event_same_shape,
	.recover = NULL, /* no owner: nothing to recover */
	.status = event_status,
	.status_size = sizeof(lfipc_event_status),
	.status_min = sizeof(lfipc_event_status),
};

int lfipc_event_stat(const lfipc_event *e, lfipc_event_status *st)
{
	if (!e)
		return -EINVAL;
	return lfipc__obj_status(e->r, &lfipc__event_type,
				 lfipc__off(e->r, e->s), sizeof(struct event_shm),
				 st);
}

int lfipc_event_open_or_create(lfipc_region *r, const char *name,
			       lfipc_event **out)
{
	uint64_t off, size;
	int rc;

	if (!r || !out)
		return -EINVAL;
	rc = lfipc__obj_get(r, name, &lfipc__event_type, NULL,
			    LFIPC__GET_EITHER, &off, &size, NULL);
	if (rc < 0)
		return rc;
	return event_attach(r, off, size, out);
}
