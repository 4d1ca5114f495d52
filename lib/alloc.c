/* SPDX-License-Identifier: MIT */
/*
 * alloc.c - the object directory and the heap allocator.
 *
 * The heap is an array of LFIPC_GRANULE-byte granules with one bit each in
 * the bitmap (1 = used). Allocation is first fit over the bitmap, so freed
 * neighbours coalesce by construction and create/remove churn cannot
 * fragment the heap without bound: any run of free granules is usable.
 * Create/remove are rare (they are not on any data path), so the linear
 * scan (a few microseconds for a 64 MiB region) is the right trade.
 *
 * Everything here is guarded by the region lock (a robust mutex in the
 * header). A holder that dies half-way is repaired by the next acquirer
 * from the journal (jnl_*), written before any change:
 *   CREATE: undo - clear its granules and its directory entry (the create
 *           never returned, so the object never existed);
 *   REMOVE: redo - clear its granules and its directory entry.
 * Both are idempotent; afterwards the counters are recomputed from the
 * bitmap and the directory, so they are exact whatever the holder had
 * written.
 *
 * The lock orders well-behaved processes only: any process that maps the
 * region can rewrite a directory entry, the journal or the bitmap at any
 * moment. So every word of them is read once (internal/shm.h) into a
 * local, the local is validated, and only the local is used: a directory
 * entry becomes a struct dent snapshot, and every offset and length handed
 * to memset, bits_set, a component's init callback or a caller is a
 * validated local (or computed here from local values), never re-read.
 * What a hostile writer can still do is make the directory or the counters
 * lie (wrong objects found, space leaked or handed out twice): that is
 * corruption, reported as -EPROTO where it is detected, never a write
 * outside the heap.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <lfipc/region.h>

#include "internal/mutex.h"
#include "internal/objtype.h"
#include "internal/proc.h"
#include "internal/region.h"
#include "internal/shm.h"

static struct lfipc_dirent *dir_at(const lfipc_region *r, uint32_t i)
{
	return (struct lfipc_dirent *)(r->base + r->dir_off) + i;
}

static uint64_t *bitmap(const lfipc_region *r)
{
	return (uint64_t *)(r->base + r->bitmap_off);
}

static void bits_set(lfipc_region *r, uint64_t first, uint64_t n, bool on)
{
	uint64_t *bm = bitmap(r);
	uint64_t i, w, bit;

	for (i = first; i < first + n; i++) {
		if ((i & 63) == 0 && first + n - i >= 64) {
			bm[i / 64] = on ? ~UINT64_C(0) : 0;
			i += 63;
			continue;
		}
		w = lfipc__shm_ld64(&bm[i / 64]);
		bit = UINT64_C(1) << (i & 63);
		bm[i / 64] = on ? w | bit : w & ~bit;
	}
}

static uint64_t count_free(const lfipc_region *r)
{
	const uint64_t *bm = bitmap(r);
	uint64_t words = r->heap_granules / 64, used = 0, i;
	unsigned tail = r->heap_granules & 63;

	for (i = 0; i < words; i++)
		used += (uint64_t)__builtin_popcountll(lfipc__shm_ld64(&bm[i]));
	if (tail)
		used += (uint64_t)__builtin_popcountll(
		    lfipc__shm_ld64(&bm[words]) & ((UINT64_C(1) << tail) - 1));
	return r->heap_granules - used;
}

/* The lock holder's counter updates: each word read once. A hostile
 * writer can make them lie (stats clamp what they report); repair()
 * recomputes them from the bitmap and the directory. */
static void counters_add(struct lfipc_hdr *h, int64_t granules, int objects)
{
	h->granules_free =
	    lfipc__shm_ld64(&h->granules_free) + (uint64_t)granules;
	h->nobjects = lfipc__shm_ld32(&h->nobjects) + (uint32_t)objects;
}

static uint32_t dir_gen_bump(struct lfipc_hdr *h)
{
	uint32_t g = lfipc__shm_ld32(&h->dir_gen) + 1;

	h->dir_gen = g;
	return g;
}

/*
 * A private snapshot of one directory entry: each field loaded exactly once
 * from shared memory. Validate the snapshot (dent_sane), then use only it.
 */
struct dent {
	uint32_t type;
	uint32_t name_len;
	uint64_t off;
	uint64_t size;
};

static void dent_load(const lfipc_region *r, uint32_t i, struct dent *e)
{
	const struct lfipc_dirent *d = dir_at(r, i);

	e->type = lfipc__shm_ld32(&d->type);
	e->name_len = lfipc__shm_ld32(&d->name_len);
	e->off = lfipc__shm_ld64(&d->off);
	e->size = lfipc__shm_ld64(&d->size);
}

static bool dent_published(const struct dent *e)
{
	return e->type != LFIPC_OBJ_NONE && e->type != LFIPC_OBJ_INIT;
}

/* Does a snapshot describe a block inside the heap, on granules? */
static bool dent_sane(const lfipc_region *r, const struct dent *e)
{
	return e->size > 0 && lfipc__heap_range_ok(r, e->off, e->size) &&
	       (e->off - r->heap_off) % LFIPC_GRANULE == 0 &&
	       e->name_len <= LFIPC_NAME_MAX && e->name_len > 0;
}

/* The granules of a sane snapshot. */
static void dent_blocks(const lfipc_region *r, const struct dent *e,
			uint64_t *first, uint64_t *count)
{
	*first = (e->off - r->heap_off) / LFIPC_GRANULE;
	*count = (e->size + LFIPC_GRANULE - 1) / LFIPC_GRANULE;
}

/*
 * The journal word. A holder may be killed at any instruction and the next
 * holder reads the memory it left, so what counts is the order in which its
 * stores reach memory, and the compiler must neither drop nor move them.
 * With a plain field GCC removed the REMOVE store of lfipc_object_remove()
 * altogether (dead store: nothing it could see read it before the final
 * NONE), so a remover killed after clearing the bitmap left a published
 * entry on free granules. The stores are atomic:
 * J1: seq_cst store of the operation after the jnl_dir/first/count fields
 *     and before any change (an atomic store is neither removed nor moved
 *     across by the compiler, and on x86 it is a full barrier);
 * J2: release store of NONE after every change; pairs with J3.
 * J3: relaxed load in repair(): the region lock (acquired by takeover, M4)
 *     orders it; a dead holder's stores are in memory in program order.
 */
static void jnl_begin(struct lfipc_hdr *h, uint32_t op)
{
	atomic_store(&h->jnl_op, op); /* J1 */
}

static void jnl_end(struct lfipc_hdr *h)
{
	/* J2: release, pairs with J3. */
	atomic_store_explicit(&h->jnl_op, LFIPC_JNL_NONE, memory_order_release);
}

/* Repair after a holder died: apply the journal, recount. */
static int repair(lfipc_region *r)
{
	struct lfipc_hdr *h = lfipc__hdr(r);
	/* J3: relaxed, ordered by the region lock; see J2. */
	uint32_t op = atomic_load_explicit(&h->jnl_op, memory_order_relaxed);
	uint32_t di = lfipc__shm_ld32(&h->jnl_dir), i, n = 0;
	uint64_t first = lfipc__shm_ld64(&h->jnl_first);
	uint64_t count = lfipc__shm_ld64(&h->jnl_count);

	if (op == LFIPC_JNL_CREATE || op == LFIPC_JNL_REMOVE) {
		if (di >= r->dir_cap || first > r->heap_granules ||
		    count > r->heap_granules - first)
			return -EPROTO;
		bits_set(r, first, count, false);
		memset(dir_at(r, di), 0, sizeof(struct lfipc_dirent));
	}
	jnl_end(h);
	for (i = 0; i < r->dir_cap; i++) {
		struct dent e;

		dent_load(r, i, &e);
		if (e.type == LFIPC_OBJ_NONE)
			continue;
		/* an INIT entry outside the journal cannot exist; clear it
		 * (and anything that points outside the heap) */
		if (e.type == LFIPC_OBJ_INIT || !dent_sane(r, &e)) {
			memset(dir_at(r, i), 0, sizeof(struct lfipc_dirent));
			continue;
		}
		n++;
	}
	h->nobjects = n;
	h->granules_free = count_free(r);
	dir_gen_bump(h);
	return 0;
}

/* The deadline of this thread's region-lock waits (lfipc__region_lock_
 * deadline()): LFIPC_DL_NEVER except inside a call that bounds them. */
static _Thread_local lfipc_deadline region_dl = LFIPC_DL_NEVER;

lfipc_deadline lfipc__region_lock_deadline(lfipc_deadline dl)
{
	lfipc_deadline old = region_dl;

	region_dl = dl;
	return old;
}

int lfipc__region_lock(lfipc_region *r)
{
	return lfipc__region_lock_until(r, region_dl);
}

int lfipc__region_lock_until(lfipc_region *r, lfipc_deadline dl)
{
	uint32_t self;
	int rc = lfipc__self_until(r, &self, dl);

	if (rc < 0)
		return rc;
	/* The word holds our process's token, shared by all our threads:
	 * they take turns on lock_mu first (without it a second thread would
	 * see itself as the owner and get -EDEADLK). */
	rc = lfipc__pthread_lock_until(&r->lock_mu, dl);
	if (rc < 0)
		return rc;
	rc = lfipc__mutex_lock(r, &lfipc__hdr(r)->lock, &lfipc__hdr(r)->lock_wq,
			       self, dl, LFIPC_WAIT_NOINTR, false);
	if (rc == -EOWNERDEAD) {
		rc = repair(r);
		if (rc < 0)
			lfipc__mutex_unlock(r, &lfipc__hdr(r)->lock,
					    &lfipc__hdr(r)->lock_wq, self);
	}
	if (rc < 0)
		pthread_mutex_unlock(&r->lock_mu);
	return rc;
}

void lfipc__region_unlock(lfipc_region *r)
{
	uint32_t self;

	if (lfipc__self(r, &self) == 0)
		lfipc__mutex_unlock(r, &lfipc__hdr(r)->lock,
				    &lfipc__hdr(r)->lock_wq, self);
	pthread_mutex_unlock(&r->lock_mu);
}

int lfipc__name_check(const char *name)
{
	size_t n;

	if (!name || !name[0])
		return -EINVAL;
	n = strnlen(name, LFIPC_NAME_MAX + 1);
	return n > LFIPC_NAME_MAX ? -ENAMETOOLONG : 0;
}

/* Does entry d hold the name name[0..len)? Each byte is loaded once and
 * only compared (a copy into a buffer and memcmp cost 3x more: byte stores
 * then wide loads stall store forwarding). */
static bool name_is(const struct lfipc_dirent *d, const char *name, size_t len)
{
	for (size_t k = 0; k < len; k++)
		if (lfipc__shm_ld8(&d->name[k]) != (uint8_t)name[k])
			return false;
	return true;
}

/* Find the published entry called name and snapshot it into *e; -1 if
 * none. Lock held. The snapshot is not validated yet. Each field is loaded
 * once, and only as far as needed to rule the entry out. */
static int dir_find(lfipc_region *r, const char *name, size_t len,
		    struct dent *e)
{
	uint32_t i;

	for (i = 0; i < r->dir_cap; i++) {
		const struct lfipc_dirent *d = dir_at(r, i);

		e->type = lfipc__shm_ld32(&d->type);
		if (!dent_published(e))
			continue;
		e->name_len = lfipc__shm_ld32(&d->name_len);
		if (e->name_len != len)
			continue;
		if (!name_is(d, name, len))
			continue;
		e->off = lfipc__shm_ld64(&d->off);
		e->size = lfipc__shm_ld64(&d->size);
		return (int)i;
	}
	return -1;
}

/* First fit of count granules whose start is a multiple of galign. */
static int64_t heap_find(lfipc_region *r, uint64_t count, uint64_t galign)
{
	const uint64_t *bm = bitmap(r);
	uint64_t i = 0, run = 0, start = 0;

	/* start + count <= heap_granules whatever the bitmap says: the
	 * result is bounded by the loop, not by shared memory. */
	while (i < r->heap_granules) {
		uint64_t w = lfipc__shm_ld64(&bm[i / 64]);

		if ((i & 63) == 0 && run == 0 && w == ~UINT64_C(0)) {
			i += 64;
			continue;
		}
		if (w & (UINT64_C(1) << (i & 63))) {
			run = 0;
			i++;
			continue;
		}
		if (run == 0) {
			if (i % galign) {
				i++;
				continue;
			}
			start = i;
		}
		if (++run == count)
			return (int64_t)start;
		i++;
	}
	return -1;
}

/* Arguments of a creation, checked before the region lock is taken. */
struct mk {
	unsigned type;
	uint64_t size, align, count, galign;
	int (*init)(void *block, uint64_t size, void *arg);
	void *arg;
};

static int mk_check(lfipc_region *r, const char *name, struct mk *m)
{
	if (!lfipc__objtype(m->type) || m->size == 0)
		return -EINVAL;
	if (m->align == 0)
		m->align = LFIPC_HOT_ALIGN;
	if ((m->align & (m->align - 1)) || m->align > 4096)
		return -EINVAL;
	if (m->size > r->heap_granules * LFIPC_GRANULE)
		return -ENOSPC;
	(void)name;
	m->count = (m->size + LFIPC_GRANULE - 1) / LFIPC_GRANULE;
	m->galign = m->align > LFIPC_GRANULE ? m->align / LFIPC_GRANULE : 1;
	return 0;
}

/* Create name (not in the directory: the caller looked) with the region
 * lock held. */
static int create_locked(lfipc_region *r, const char *name, size_t len,
			 const struct mk *m, uint64_t *off_out)
{
	struct lfipc_hdr *h = lfipc__hdr(r);
	struct lfipc_dirent *d;
	uint64_t off;
	int64_t first;
	uint32_t self, i, di = UINT32_MAX;
	int rc;

	rc = lfipc__self(r, &self);
	if (rc < 0)
		return rc;
	for (i = 0; i < r->dir_cap; i++) {
		if (lfipc__shm_ld32(&dir_at(r, i)->type) == LFIPC_OBJ_NONE) {
			di = i;
			break;
		}
	}
	if (di == UINT32_MAX)
		return -ENOSPC;
	first = heap_find(r, m->count, m->galign);
	if (first < 0)
		return -ENOSPC;
	/* The block is computed here from local values and checked once
	 * more; it is what init, the zeroing and the caller get. The copy
	 * written into the entry below is for other processes only and is
	 * never read back. */
	off = r->heap_off + (uint64_t)first * LFIPC_GRANULE;
	if (!lfipc__heap_range_ok(r, off, m->count * LFIPC_GRANULE) ||
	    off % m->align != 0)
		return -EPROTO;
	/* journal first, then the changes (undone if we die) */
	h->jnl_dir = di;
	h->jnl_first = (uint64_t)first;
	h->jnl_count = m->count;
	jnl_begin(h, LFIPC_JNL_CREATE);
	bits_set(r, (uint64_t)first, m->count, true);
	d = dir_at(r, di);
	memset(d, 0, sizeof(*d));
	d->type = LFIPC_OBJ_INIT;
	d->name_len = (uint32_t)len;
	memcpy(d->name, name, len);
	d->off = off;
	d->size = m->size;
	d->creator = self;
	memset(lfipc__at(r, off), 0, m->count * LFIPC_GRANULE);
	if (m->init) {
		rc = m->init(lfipc__at(r, off), m->size, m->arg);
		if (rc != 0) {
			bits_set(r, (uint64_t)first, m->count, false);
			memset(d, 0, sizeof(*d));
			jnl_end(h);
			return rc;
		}
	}
	d->type = m->type;
	d->gen = dir_gen_bump(h);
	counters_add(h, -(int64_t)m->count, 1);
	jnl_end(h);
	*off_out = off;
	return 0;
}

int lfipc__obj_create(lfipc_region *r, const char *name, unsigned type,
		      uint64_t size, uint64_t align,
		      int (*init)(void *block, uint64_t size, void *arg),
		      void *arg, uint64_t *off_out)
{
	struct mk m = {type, size, align, 0, 0, init, arg};
	struct dent e;
	size_t len;
	int rc;

	if (!r || !off_out)
		return -EINVAL;
	rc = lfipc__name_check(name);
	if (rc < 0)
		return rc;
	rc = mk_check(r, name, &m);
	if (rc < 0)
		return rc;
	len = strlen(name);
	rc = lfipc__region_lock(r);
	if (rc < 0)
		return rc;
	if (dir_find(r, name, len, &e) >= 0)
		rc = -EEXIST;
	else
		rc = create_locked(r, name, len, &m, off_out);
	lfipc__region_unlock(r);
	return rc;
}

int lfipc__obj_open(lfipc_region *r, const char *name, unsigned type,
		    uint64_t *off_out, uint64_t *size_out)
{
	struct dent e;
	int rc;

	if (!r || !off_out || !size_out)
		return -EINVAL;
	rc = lfipc__name_check(name);
	if (rc < 0)
		return rc;
	rc = lfipc__region_lock(r);
	if (rc < 0)
		return rc;
	if (dir_find(r, name, strlen(name), &e) < 0)
		rc = -ENOENT;
	else if (!dent_sane(r, &e))
		rc = -EPROTO;
	else if (e.type != type)
		rc = -EINVAL;
	lfipc__region_unlock(r);
	if (rc == 0) {
		*off_out = e.off;
		*size_out = e.size;
	}
	return rc;
}

int lfipc__obj_get(lfipc_region *r, const char *name,
		   const struct lfipc__objtype *t, void *shape, int mode,
		   uint64_t *off_out, uint64_t *size_out, bool *created)
{
	struct mk m = {0};
	struct dent e;
	size_t len;
	int rc;

	if (created)
		*created = false;
	if (!r || !t || !off_out || !size_out)
		return -EINVAL;
	if (mode == LFIPC__GET_OPEN)
		return lfipc__obj_open(r, name, t->type, off_out, size_out);
	rc = lfipc__name_check(name);
	if (rc < 0)
		return rc;
	m.type = t->type;
	m.size = t->size(shape);
	m.align = t->align;
	m.init = t->init;
	m.arg = shape;
	if (m.size == 0)
		return -EINVAL;
	rc = mk_check(r, name, &m);
	if (rc < 0)
		return rc;
	len = strlen(name);
	rc = lfipc__region_lock(r);
	if (rc < 0)
		return rc;
	if (dir_find(r, name, len, &e) < 0) {
		rc = create_locked(r, name, len, &m, off_out);
		if (rc == 0) {
			*size_out = m.size;
			if (created)
				*created = true;
		}
	} else if (mode != LFIPC__GET_EITHER) {
		rc = -EEXIST;
	} else if (!dent_sane(r, &e)) {
		rc = -EPROTO;
	} else if (e.type != t->type) {
		rc = -EEXIST;
	} else {
		rc = t->same_shape ? t->same_shape(r, e.off, e.size, shape) : 0;
		if (rc == 0) {
			*off_out = e.off;
			*size_out = e.size;
		}
	}
	lfipc__region_unlock(r);
	return rc;
}

int lfipc_object_remove(lfipc_region *r, const char *name)
{
	struct lfipc_hdr *h;
	struct dent e;
	uint64_t first, count;
	int rc, i;

	if (!r)
		return -EINVAL;
	rc = lfipc__name_check(name);
	if (rc < 0)
		return rc;
	rc = lfipc__region_lock(r);
	if (rc < 0)
		return rc;
	h = lfipc__hdr(r);
	i = dir_find(r, name, strlen(name), &e);
	if (i < 0) {
		rc = -ENOENT;
		goto out;
	}
	if (!dent_sane(r, &e)) {
		rc = -EPROTO;
		goto out;
	}
	dent_blocks(r, &e, &first, &count);
	h->jnl_dir = (uint32_t)i;
	h->jnl_first = first;
	h->jnl_count = count;
	jnl_begin(h, LFIPC_JNL_REMOVE);
	bits_set(r, first, count, false);
	memset(dir_at(r, (uint32_t)i), 0, sizeof(struct lfipc_dirent));
	counters_add(h, (int64_t)count, -1);
	dir_gen_bump(h);
	jnl_end(h);
	rc = 0;
out:
	lfipc__region_unlock(r);
	return rc;
}

int lfipc_region_stats(const lfipc_region *cr, lfipc_region_info *out)
{
	lfipc_region *r = (lfipc_region *)cr;
	struct lfipc_hdr *h;
	uint64_t free_g;
	int rc;

	if (!r || !out)
		return -EINVAL;
	rc = lfipc__region_lock(r);
	if (rc < 0)
		return rc;
	h = lfipc__hdr(r);
	free_g = lfipc__shm_ld64(&h->granules_free);
	memset(out, 0, sizeof(*out));
	out->size = r->size;
	out->bytes_free =
	    free_g <= r->heap_granules ? free_g * LFIPC_GRANULE : 0;
	out->objects = lfipc__shm_ld32(&h->nobjects);
	lfipc__region_unlock(r);
	out->participants = lfipc__proc_count_live(&r->proc);
	return 0;
}

int lfipc__obj_foreach(lfipc_region *r,
		       int (*fn)(lfipc_region *r, unsigned type, uint64_t off,
				 uint64_t size, void *arg),
		       void *arg)
{
	struct dent *s;
	uint32_t i, n = 0;
	int rc, total = 0;

	s = calloc(r->dir_cap, sizeof(*s));
	if (!s)
		return -ENOMEM;
	rc = lfipc__region_lock(r);
	if (rc < 0) {
		free(s);
		return rc;
	}
	for (i = 0; i < r->dir_cap; i++) {
		dent_load(r, i, &s[n]);
		if (dent_published(&s[n]) && lfipc__objtype(s[n].type) &&
		    dent_sane(r, &s[n]))
			n++;
	}
	lfipc__region_unlock(r);
	for (i = 0; i < n; i++) {
		rc = fn(r, s[i].type, s[i].off, s[i].size, arg);
		if (rc < 0) {
			total = rc;
			break;
		}
		total += rc;
	}
	free(s);
	return total;
}

/* Snapshot the published entry i into *out if it is sane. Lock held. */
static bool dir_info(lfipc_region *r, uint32_t i, struct lfipc__dirinfo *out)
{
	const struct lfipc_dirent *d = dir_at(r, i);
	struct dent e;

	dent_load(r, i, &e);
	if (!dent_published(&e) || !dent_sane(r, &e))
		return false;
	out->type = e.type;
	out->off = e.off;
	out->size = e.size;
	out->creator = lfipc__shm_ld32(&d->creator);
	/* name_len <= LFIPC_NAME_MAX: checked by dent_sane */
	for (uint32_t k = 0; k < e.name_len; k++)
		out->name[k] = (char)lfipc__shm_ld8(&d->name[k]);
	out->name[e.name_len] = '\0';
	return true;
}

int lfipc__dir_next(lfipc_region *r, uint32_t *cursor,
		    struct lfipc__dirinfo *out)
{
	uint32_t i;
	int rc;

	if (*cursor >= r->dir_cap)
		return 0;
	rc = lfipc__region_lock(r);
	if (rc < 0)
		return rc;
	for (i = *cursor; i < r->dir_cap; i++)
		if (dir_info(r, i, out))
			break;
	lfipc__region_unlock(r);
	*cursor = i < r->dir_cap ? i + 1 : r->dir_cap;
	return i < r->dir_cap ? 1 : 0;
}

int lfipc__dir_lookup(lfipc_region *r, const char *name,
		      struct lfipc__dirinfo *out)
{
	struct dent e;
	int rc, i;

	rc = lfipc__name_check(name);
	if (rc < 0)
		return rc;
	rc = lfipc__region_lock(r);
	if (rc < 0)
		return rc;
	i = dir_find(r, name, strlen(name), &e);
	if (i < 0)
		rc = -ENOENT;
	else if (!dir_info(r, (uint32_t)i, out))
		rc = -EPROTO;
	lfipc__region_unlock(r);
	return rc;
}

/* The largest run of free granules, in bytes (region status). Lock held. */
uint64_t lfipc__heap_largest_free(lfipc_region *r)
{
	const uint64_t *bm = bitmap(r);
	uint64_t i, run = 0, best = 0;

	for (i = 0; i < r->heap_granules; i++) {
		uint64_t w = lfipc__shm_ld64(&bm[i / 64]);

		if ((i & 63) == 0 && w == ~UINT64_C(0)) {
			run = 0;
			i += 63;
			continue;
		}
		if (w & (UINT64_C(1) << (i & 63)))
			run = 0;
		else if (++run > best)
			best = run;
	}
	return best * LFIPC_GRANULE;
}
