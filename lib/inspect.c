/* SPDX-License-Identifier: MIT */
/*
 * inspect.c - the generic half of lfipc/inspect.h: listing a region's
 * objects and participants, the caller-sized status structures, and status
 * by name through each type's descriptor (internal/objtype.h). The typed
 * half (what a queue's status says) lives with each type.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include <lfipc/inspect.h>

#include "internal/objtype.h"
#include "internal/proc.h"
#include "internal/region.h"
#include "internal/shm.h"

const char *lfipc_obj_type_name(int type)
{
	const struct lfipc__objtype *t =
	    type > 0 ? lfipc__objtype((unsigned)type) : NULL;

	return t ? t->name : "unknown";
}

int lfipc__status_out(void *dst, const void *src, size_t full, size_t min)
{
	size_t want, n;

	if (!dst)
		return -EINVAL;
	memcpy(&want, dst, sizeof(want));
	if (want < min)
		return -EINVAL;
	n = want < full ? want : full;
	/* everything after struct_size, up to what the caller has */
	memcpy((char *)dst + sizeof(size_t), (const char *)src + sizeof(size_t),
	       n - sizeof(size_t));
	if (want > n)
		memset((char *)dst + n, 0, want - n);
	return 0;
}

/* Largest status structure of any type, for a private copy. */
union any_status {
	lfipc_queue_status q;
	lfipc_lock_status l;
	lfipc_sem_status s;
	lfipc_cond_status c;
	lfipc_event_status e;
	lfipc_barrier_status b;
	lfipc_array_status a;
	lfipc_pipe_status p;
	char room[1024];
};

int lfipc__obj_status(lfipc_region *r, const struct lfipc__objtype *t,
		      uint64_t off, uint64_t size, void *st)
{
	union any_status tmp;
	size_t want;
	int rc;

	if (!st || !t || !t->status || t->status_size > sizeof(tmp))
		return -EINVAL;
	memcpy(&want, st, sizeof(want));
	if (want < t->status_min)
		return -EINVAL;
	memset(&tmp, 0, sizeof(tmp));
	tmp.q.struct_size = t->status_size;
	rc = t->status(r, off, size, &tmp);
	if (rc < 0)
		return rc;
	return lfipc__status_out(st, &tmp, t->status_size, t->status_min);
}

void lfipc__holder(lfipc_region *r, uint32_t token, lfipc_holder *h)
{
	struct lfipc__slotinfo si;
	uint32_t slot;

	memset(h, 0, sizeof(*h));
	token &= LFIPC_TOKEN_MASK;
	if (token == 0)
		return;
	slot = (token >> LFIPC_TOKEN_GEN_BITS) - 1;
	if (lfipc__proc_slot_info(&r->proc, slot, &si) == 0)
		h->pid = (pid_t)si.pid;
	h->alive = lfipc__token_alive(r, token);
}

/* ---- listing objects ------------------------------------------------- */

static pid_t token_pid(lfipc_region *r, uint32_t token)
{
	lfipc_holder h;

	lfipc__holder(r, token, &h);
	return h.pid;
}

static int entry_out(lfipc_region *r, const struct lfipc__dirinfo *d,
		     lfipc_object_entry *out)
{
	lfipc_object_entry e;

	memset(&e, 0, sizeof(e));
	e.struct_size = sizeof(e);
	memcpy(e.name, d->name, sizeof(e.name));
	e.type = (int)d->type;
	e.bytes = (size_t)((d->size + LFIPC_GRANULE - 1) / LFIPC_GRANULE *
			   LFIPC_GRANULE);
	e.creator_pid = token_pid(r, d->creator);
	return lfipc__status_out(out, &e, sizeof(e), sizeof(e));
}

int lfipc_object_next(lfipc_region *r, unsigned *cursor,
		      lfipc_object_entry *out)
{
	struct lfipc__dirinfo d;
	uint32_t c;
	size_t want;
	int rc;

	if (!r || !cursor || !out)
		return -EINVAL;
	memcpy(&want, out, sizeof(want));
	if (want < sizeof(lfipc_object_entry))
		return -EINVAL;
	c = *cursor;
	rc = lfipc__dir_next(r, &c, &d);
	*cursor = c;
	if (rc <= 0)
		return rc;
	rc = entry_out(r, &d, out);
	return rc < 0 ? rc : 1;
}

int lfipc_object_find(lfipc_region *r, const char *name,
		      lfipc_object_entry *out)
{
	struct lfipc__dirinfo d;
	size_t want;
	int rc;

	if (!r || !out)
		return -EINVAL;
	memcpy(&want, out, sizeof(want));
	if (want < sizeof(lfipc_object_entry))
		return -EINVAL;
	rc = lfipc__dir_lookup(r, name, &d);
	if (rc < 0)
		return rc;
	return entry_out(r, &d, out);
}

int lfipc_object_stat(lfipc_region *r, const char *name, int type, void *st)
{
	const struct lfipc__objtype *t =
	    type > 0 ? lfipc__objtype((unsigned)type) : NULL;
	struct lfipc__dirinfo d;
	int rc;

	if (!r || !t || !st)
		return -EINVAL;
	rc = lfipc__dir_lookup(r, name, &d);
	if (rc < 0)
		return rc;
	if (d.type != t->type)
		return -EMEDIUMTYPE;
	return lfipc__obj_status(r, t, d.off, d.size, st);
}

/* ---- participants ---------------------------------------------------- */

int lfipc_participant_next(lfipc_region *r, unsigned *cursor,
			   lfipc_participant_info *out)
{
	lfipc_participant_info p;
	struct lfipc__slotinfo si;
	uint32_t self = 0;
	size_t want;

	if (!r || !cursor || !out)
		return -EINVAL;
	memcpy(&want, out, sizeof(want));
	if (want < sizeof(p))
		return -EINVAL;
	(void)lfipc__self(r, &self);
	for (; *cursor < r->proc_cap; (*cursor)++) {
		uint32_t i = *cursor;

		if (lfipc__proc_slot_info(&r->proc, i, &si) < 0 ||
		    si.state == LFIPC_SLOT_FREE)
			continue;
		memset(&p, 0, sizeof(p));
		p.struct_size = sizeof(p);
		p.slot = i;
		p.pid = (pid_t)si.pid;
		p.state = si.state == LFIPC_SLOT_ALIVE ? LFIPC_PART_ALIVE
						       : LFIPC_PART_DEAD;
		p.since_ns = si.since_ns;
		p.self = self != 0 &&
			 (self >> LFIPC_TOKEN_GEN_BITS) - 1 == i &&
			 si.state == LFIPC_SLOT_ALIVE;
		(*cursor)++;
		return lfipc__status_out(out, &p, sizeof(p), sizeof(p)) < 0 ? -EINVAL : 1;
	}
	return 0;
}

/* ---- region ---------------------------------------------------------- */

int lfipc_region_stat(lfipc_region *r, lfipc_region_status *st)
{
	lfipc_region_status s;
	struct lfipc__slotinfo si;
	struct lfipc_hdr *h;
	uint64_t free_g;
	size_t want;
	int rc;

	if (!r || !st)
		return -EINVAL;
	memcpy(&want, st, sizeof(want));
	if (want < sizeof(s))
		return -EINVAL;
	memset(&s, 0, sizeof(s));
	s.struct_size = sizeof(s);
	rc = lfipc__region_lock(r);
	if (rc < 0)
		return rc;
	h = lfipc__hdr(r);
	free_g = lfipc__shm_ld64(&h->granules_free);
	s.bytes_free = free_g <= r->heap_granules
			       ? (size_t)(free_g * LFIPC_GRANULE)
			       : 0;
	s.objects = lfipc__shm_ld32(&h->nobjects);
	s.largest_free = (size_t)lfipc__heap_largest_free(r);
	lfipc__region_unlock(r);
	if (s.objects > r->dir_cap)
		s.objects = r->dir_cap;
	s.size = (size_t)r->size;
	s.objects_max = r->dir_cap;
	s.participants_max = r->proc_cap;
	s.layout_version = LFIPC_LAYOUT_VERSION;
	for (uint32_t i = 0; i < r->proc_cap; i++) {
		if (lfipc__proc_slot_info(&r->proc, i, &si) < 0)
			continue;
		if (si.state == LFIPC_SLOT_ALIVE)
			s.participants++;
		else if (si.state == LFIPC_SLOT_DEAD)
			s.dead++;
	}
	s.stale = s.participants == 0;
	return lfipc__status_out(st, &s, sizeof(s), sizeof(s));
}

/* ---- sizes ----------------------------------------------------------- */

static uint64_t bytes_of(const struct lfipc__objtype *t, uint64_t size)
{
	uint64_t align = t->align ? t->align : LFIPC_HOT_ALIGN;

	if (size == 0)
		return 0;
	return (size + LFIPC_GRANULE - 1) / LFIPC_GRANULE * LFIPC_GRANULE +
	       (align > LFIPC_GRANULE ? align - LFIPC_GRANULE : 0);
}

uint64_t lfipc__obj_bytes(const struct lfipc__objtype *t, const void *shape)
{
	return bytes_of(t, t->size(shape));
}

size_t lfipc_obj_bytes(int type, unsigned arg)
{
	const struct lfipc__objtype *t =
	    type > 0 ? lfipc__objtype((unsigned)type) : NULL;

	if (!t || !t->size_arg)
		return 0;
	return (size_t)bytes_of(t, t->size_arg(arg));
}
