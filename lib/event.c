/* SPDX-License-Identifier: MIT */
/*
 * event.c - Event: a flag that threads and processes wait for.
 *
 * Block layout (64 bytes; struct event_shm in internal/sync_layout.h):
 *   0  u32 magic   EVENT_MAGIC, written once at init
 *   4  u32 word    the event word, also the futex word:
 *                    bit  0     SET
 *                    bit  1     WAITERS: someone may sleep on the word
 *                    bits 2..31 generation: +1 on every clear->set change
 *   8  pad to 64
 *
 * set() turns SET on and advances the generation in one CAS and wakes
 * everyone when WAITERS was on. A waiter returns 0 when SET is on or the
 * generation moved since it started, so a set followed at once by a clear
 * is not missed. Nothing here has an owner; a setter that dies between its
 * CAS and its wake delays sleepers by at most one slice (they sleep in
 * slices and re-read the word).
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <lfipc/sync.h>

#include "internal/futex.h"
#include "internal/objtype.h"
#include "internal/region.h"
#include "internal/shm.h"
#include "internal/sync_layout.h"

#define EV_SET UINT32_C(1)
#define EV_WAITERS UINT32_C(2)
#define EV_GEN_ONE UINT32_C(4)

struct lfipc_event {
	struct event_shm *s;
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
	e->s = s;
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
	free(e);
}

int lfipc_event_set(lfipc_event *e)
{
	uint32_t v;

	if (!e)
		return -EINVAL;
	/* E5: relaxed guess for the E1 CAS (also its failure order); a set
	 * flag seen here needs no ordering: set() then does nothing. */
	v = atomic_load_explicit(&e->s->word, memory_order_relaxed);
	do {
		if (v & EV_SET)
			return 0;
		/* E1: release, pairs with E3: what the setter did before
		 * set() happens before a waiter returns. */
	} while (!atomic_compare_exchange_weak_explicit(
	    &e->s->word, &v, ((v | EV_SET) & ~EV_WAITERS) + EV_GEN_ONE,
	    memory_order_release, memory_order_relaxed));
	if (v & EV_WAITERS)
		lfipc__futex_wake(&e->s->word, INT32_MAX);
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

int lfipc_event_wait(lfipc_event *e, int64_t timeout_ns)
{
	lfipc_deadline deadline;
	uint32_t v, gen;

	if (!e)
		return -EINVAL;
	/* E3: acquire, pairs with E1. */
	v = atomic_load_explicit(&e->s->word, memory_order_acquire);
	if (v & EV_SET)
		return 0;
	gen = v & ~(EV_SET | EV_WAITERS);
	deadline = lfipc__deadline(timeout_ns);
	for (;;) {
		if ((v & EV_SET) || (v & ~(EV_SET | EV_WAITERS)) != gen)
			return 0;
		if (lfipc__expired(deadline))
			return timeout_ns == LFIPC_NOWAIT ? -EAGAIN
							  : -ETIMEDOUT;
		if (!(v & EV_WAITERS)) {
			/* E4: acquire, pairs with E1: on failure the value
			 * read may be a set. Announcing publishes nothing. */
			if (!atomic_compare_exchange_strong_explicit(
				&e->s->word, &v, v | EV_WAITERS,
				memory_order_acquire, memory_order_acquire))
				continue;
			v |= EV_WAITERS;
		}
		lfipc__futex_wait(&e->s->word, v,
				  lfipc__slice_end(deadline, LFIPC_SLICE_NS));
		/* E3: acquire, pairs with E1. */
		v = atomic_load_explicit(&e->s->word, memory_order_acquire);
	}
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
	st->waiters = (w & EV_WAITERS) != 0;
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
	/* event_status() does not use r beyond the range check, which a
	 * handle's own memory passes; the handle keeps no region. */
	if (!st)
		return -EINVAL;
	{
		lfipc_event_status tmp = {sizeof(tmp), false, false};
		/* E6: relaxed: a diagnostic snapshot. */
		uint32_t w =
		    atomic_load_explicit(&e->s->word, memory_order_relaxed);

		tmp.set = (w & EV_SET) != 0;
		tmp.waiters = (w & EV_WAITERS) != 0;
		return lfipc__status_out(st, &tmp, sizeof(tmp), sizeof(tmp));
	}
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
