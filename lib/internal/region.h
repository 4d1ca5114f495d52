/* SPDX-License-Identifier: MIT */
/*
 * internal/region.h - the region handle and the generic object directory
 * that the typed create/open functions of every component build on.
 */
#ifndef LFIPC_INTERNAL_REGION_H
#define LFIPC_INTERNAL_REGION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lfipc/inspect.h>
#include <lfipc/region.h>

#include "internal/futex.h"
#include "internal/layout.h"
#include "internal/proc.h"

/* Object types in the directory: the public lfipc_obj_type
 * (lfipc/inspect.h; the table in lib/types.c says which values exist) and
 * two internal values. Never renumber: they are in the layout. */
#define LFIPC_OBJ_NONE 0u
/* a directory entry being created (journalled, not openable) */
#define LFIPC_OBJ_INIT 0xffu

/* The per-process handle: the mapping (region.c), the region lock's
 * process-local half (alloc.c) and the participant state (proc.c). The
 * layout fields are private copies made when the region was validated:
 * never re-read from shared memory. */
struct lfipc_region {
	uint8_t *base;
	uint64_t size;
	int fd;			/* the mapping's fd (ours, O_CLOEXEC) */
	bool named;
	/* validated layout */
	uint64_t proc_off, dir_off, bitmap_off, heap_off, heap_granules;
	uint32_t proc_cap, dir_cap;
	uint64_t death_off, poll_off;
	uint32_t death_slots, poll_cap;
	uint8_t uuid[16];

	/* Serialises this process's threads on the region lock: the shared
	 * lock word holds a per-process token, so two threads of one process
	 * cannot tell each other apart there. Taken before the shared lock;
	 * held across fork by proc's atfork handlers (proc.fork_hold). */
	pthread_mutex_t lock_mu;

	struct lfipc__proc proc; /* participant identity; see proc.c */
	struct lfipc_poll_cache *poll_cache; /* poll.c: connected sockets */
};

/* This process's token in r (internal/proc.h, lfipc__proc_self), for a
 * call without a timeout: a fork child's registration waits for the gate
 * up to LFIPC_GATE_WAIT_NS, then fails with -EBUSY. */
static inline int lfipc__self(lfipc_region *r, uint32_t *tok)
{
	return lfipc__proc_self(&r->proc, tok);
}

/* The same for a call with a deadline dl: a registration waits until dl
 * at most (-EAGAIN for LFIPC_DL_NOW, -ETIMEDOUT). */
static inline int lfipc__self_until(lfipc_region *r, uint32_t *tok,
				    lfipc_deadline dl)
{
	return lfipc__proc_self_until(&r->proc, tok, dl);
}

/* The same for a call with an API timeout (LFIPC_NOWAIT, LFIPC_FOREVER or
 * nanoseconds) that computes its deadline later: a registration waits
 * within the timeout and leaves in *timeout_ns what is left of it
 * (internal/proc.h, lfipc__proc_self_timed). The fast path leaves
 * *timeout_ns alone and reads no clock. */
static inline int lfipc__self_timed(lfipc_region *r, uint32_t *tok,
				    int64_t *timeout_ns)
{
	if (lfipc__proc_self_fast(&r->proc, tok))
		return 0;
	return lfipc__proc_self_timed(&r->proc, tok, timeout_ns);
}

/* r's token as it stands, never registering (lfipc__proc_token_now). */
static inline uint32_t lfipc__self_peek(lfipc_region *r)
{
	return lfipc__proc_token_now(&r->proc);
}

/* lfipc__self() without its slow path (lfipc__proc_self_fast): true and
 * *tok, or false: call lfipc__self(). */
static inline bool lfipc__self_fast(lfipc_region *r, uint32_t *tok)
{
	return lfipc__proc_self_fast(&r->proc, tok);
}

/* Is the participant behind token alive? Tokens that are malformed, refer to
 * a slot out of range, or to an old generation are dead. Costs one
 * F_OFD_GETLK (about 0.2 us) when the generation matches; a token found dead
 * is retired so later checks of it make no system call. */
static inline bool lfipc__token_alive(lfipc_region *r, uint32_t token)
{
	return lfipc__proc_alive(&r->proc, token);
}

/* lfipc__proc_maybe_alive for a handle: token not dead as far as the
 * region's memory tells (no system call). */
static inline bool lfipc__token_maybe_alive(lfipc_region *r, uint32_t token)
{
	return lfipc__proc_maybe_alive(&r->proc, token);
}

/* The pid its slot records for token (internal/proc.h,
 * lfipc__proc_token_pid: a hint), or 0 for a bad token. */
static inline pid_t lfipc__token_pid(lfipc_region *r, uint32_t token)
{
	return lfipc__proc_token_pid(&r->proc, token);
}

/* The handle a participant state is embedded in. Only for the death-word
 * hooks proc.c calls (death.c works on the mapping); every handle's
 * struct lfipc__proc is its proc member. */
static inline lfipc_region *lfipc__proc_region(struct lfipc__proc *p)
{
	return (lfipc_region *)((char *)p - offsetof(struct lfipc_region, proc));
}

static inline struct lfipc_hdr *lfipc__hdr(const lfipc_region *r)
{
	return (struct lfipc_hdr *)r->base;
}

/* True when [off, off+len) lies inside the region's heap. */
static inline bool lfipc__heap_range_ok(const lfipc_region *r, uint64_t off,
					uint64_t len)
{
	uint64_t end = r->heap_off + r->heap_granules * LFIPC_GRANULE;

	return off >= r->heap_off && off <= end && len <= end - off;
}

static inline void *lfipc__at(const lfipc_region *r, uint64_t off)
{
	return r->base + off;
}

static inline uint64_t lfipc__off(const lfipc_region *r, const void *p)
{
	return (uint64_t)((const uint8_t *)p - r->base);
}

/*
 * Validate an object name: 0; -EINVAL NULL or empty; -ENAMETOOLONG longer
 * than LFIPC_NAME_MAX.
 */
int lfipc__name_check(const char *name);

/*
 * Create the object name of the given type with size bytes aligned to align
 * (a power of two; 0 means LFIPC_HOT_ALIGN). The block is zeroed, then init
 * (if not NULL) is called with the block while the region lock is held and
 * must only write into the block (it must not call back into the region);
 * a non-zero return from init aborts the creation and is returned. The
 * object becomes visible to lfipc__obj_open only when all of this is done;
 * a creator that dies half-way leaves nothing behind (journal).
 *
 * *off_out is the offset this call computed and checked itself ([off,
 * off + size) lies inside the heap, aligned to align); it is never read
 * back from the directory, so a caller may use it without re-checking
 * whatever another process writes into the region meanwhile.
 *
 * Return: 0 and *off_out; -EEXIST; -ENOSPC no room in the heap or the
 * directory; -EINVAL; -ENAMETOOLONG; -EPROTO corrupt region; -EUSERS.
 */
int lfipc__obj_create(lfipc_region *r, const char *name, unsigned type,
		      uint64_t size, uint64_t align,
		      int (*init)(void *block, uint64_t size, void *arg),
		      void *arg, uint64_t *off_out);

/*
 * Find the object name. On success *off_out and *size_out describe a block
 * that lies inside the heap (the component then validates its contents).
 * They come from one snapshot of the directory entry, validated before it
 * is returned: never re-read from shared memory.
 *
 * Return: 0; -ENOENT; -EINVAL the object has another type (or bad name);
 * -ENAMETOOLONG; -EPROTO the directory entry points outside the heap.
 */
int lfipc__obj_open(lfipc_region *r, const char *name, unsigned type,
		    uint64_t *off_out, uint64_t *size_out);

/*
 * Run fn(r, type, off, size, arg) for each published object, with the
 * region lock NOT held (a snapshot is taken first: each entry read once
 * and validated, so off and size lie inside the heap). Used by
 * lfipc_region_recover(). Returns the sum of fn's non-negative returns, or
 * the first negative one.
 */
int lfipc__obj_foreach(lfipc_region *r,
		       int (*fn)(lfipc_region *r, unsigned type, uint64_t off,
				 uint64_t size, void *arg),
		       void *arg);

/* One published directory entry, snapshotted under the region lock and
 * validated (off and size lie inside the heap, name is NUL-terminated). */
struct lfipc__dirinfo {
	unsigned type;
	uint64_t off, size;
	uint32_t creator; /* token of the creating participant */
	char name[LFIPC_NAME_MAX + 1];
};

/*
 * The first published, sane entry at directory index >= *cursor; *cursor
 * moves past it. Return: 1 and *out; 0 none left; -EUSERS/-EPROTO taking
 * the region lock.
 */
int lfipc__dir_next(lfipc_region *r, uint32_t *cursor,
		    struct lfipc__dirinfo *out);

/* The published entry called name. Return: 0; -ENOENT; -EPROTO not sane;
 * -EINVAL/-ENAMETOOLONG bad name; errors of the region lock. */
int lfipc__dir_lookup(lfipc_region *r, const char *name,
		      struct lfipc__dirinfo *out);

/* The largest free run of the heap, in bytes. Region lock held. */
uint64_t lfipc__heap_largest_free(lfipc_region *r);

/* Take / drop the region lock (robust; recovers the journal on owner death).
 * It waits until this thread's region-lock deadline, which is
 * LFIPC_DL_NEVER unless set (below). Return: 0; -EUSERS; -EPROTO; with a
 * deadline set, -EAGAIN (LFIPC_DL_NOW) or -ETIMEDOUT. */
int lfipc__region_lock(lfipc_region *r);

/* lfipc__region_lock() until dl (lfipc__deadline()), whatever this
 * thread's region-lock deadline: 0; -EUSERS; -EPROTO; -EAGAIN (dl is
 * LFIPC_DL_NOW); -ETIMEDOUT. A stopped process holding the region lock
 * (SIGSTOP inside a create or remove) holds the caller no longer than dl. */
int lfipc__region_lock_until(lfipc_region *r, lfipc_deadline dl);

/* Set this thread's region-lock deadline to dl and return the one it
 * replaces. A call with a timeout sets it around the library calls it
 * makes (object lookup, create, remove), so that every region-lock wait
 * on its path is bounded by its own deadline, and restores it before it
 * returns; those calls then return -ETIMEDOUT/-EAGAIN from the lock. */
lfipc_deadline lfipc__region_lock_deadline(lfipc_deadline dl);
void lfipc__region_unlock(lfipc_region *r);


#endif /* LFIPC_INTERNAL_REGION_H */
