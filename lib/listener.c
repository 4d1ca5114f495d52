/* SPDX-License-Identifier: MIT */
/*
 * listener.c - Listener / Client: a rendezvous that hands each client a
 * fresh Pipe of its own (include/lfipc/listener.h).
 *
 * Shared layout (part of region layout version 1; never reorder):
 *
 *   0     struct lsn_geom (128 B)  immutable after creation
 *   128   struct lsn_ctl  (128 B)  lock, server, bell, next_id,
 *                                  lock_wq (the lock's wait queue)
 *   256   struct lsn_rec rec[nrec] (32 B each) one per connection
 *
 * Words:
 *   ctl.lock    a robust mutex word (internal/mutex.h). Every change of a
 *               record, and next_id, happens under it; its acquire and
 *               release order the plain fields (id, off, size) too.
 *   ctl.server  token of the server process; 0 when nobody serves. Changed
 *               by CAS only (create, open's takeover, close).
 *   ctl.bell    a counter bumped by each client that made a record waiting
 *               (PEND), and by the server's close; accept and waiting
 *               clients sleep on it through the wait layer (lib/wait.c,
 *               a word without a wait queue: every bump wakes), so an
 *               idle accept wakes once a second (the safety slice).
 *   rec.state   bits 30..31 the record's state, bits 0..29 a participant
 *               token (internal/proc.h):
 *                 FREE  0            unused
 *                 SETUP 1 | client   the lock holder is creating the Pipe
 *                                    "<name>#<id>" (seen by anybody else
 *                                    only if that holder died)
 *                 PEND  2 | client   the Pipe exists, end 1 claimed by the
 *                                    client, end 0 held by nobody; the
 *                                    client sleeps on this word
 *                 CONN  3 | client   accepted: the server claimed end 0
 *               A client's record leaves PEND only under the lock, by the
 *               server (CONN), or by the garbage collection below (FREE).
 *
 * Garbage collection runs under the lock at every connect and accept. It
 * frees a SETUP record (its creator died holding the lock: the Pipe, if it
 * got made, is removed), a PEND record whose end 1 is finished (the client
 * gave up, closed or died: the server never attached end 0, so nobody can
 * hold a handle to it), and a CONN record both of whose ends are finished
 * (each side closed its handle or died, so again no handle remains). This
 * is what lets a client die at any instruction and reconnect later without
 * anybody recreating anything.
 *
 * Threads of one process share one token, which the shared lock word cannot
 * tell apart; they take turns on a process-wide mutex first (held across
 * fork() by atfork handlers, so a child never inherits it locked).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lfipc/listener.h>

#include "internal/mutex.h"
#include "internal/objtype.h"
#include "internal/proc.h"
#include "internal/recover.h"
#include "internal/region.h"
#include "internal/shm.h"
#include "internal/wait.h"

#define LSN_MAGIC UINT32_C(0x4e53494c) /* "LISN" */
#define LSN_VERSION 1u
#define LSN_HOT 128u

#define REC_TAG(v) ((v) >> 30)
#define REC_TOK(v) ((v) & LFIPC_TOKEN_MASK)
enum { REC_FREE = 0, REC_SETUP = 1, REC_PEND = 2, REC_CONN = 3 };
#define REC(tag, tok) (((uint32_t)(tag) << 30) | (tok))

struct lsn_geom {
	uint32_t magic;
	uint32_t version;
	uint32_t backlog;
	uint32_t nrec;
	uint64_t ring;	/* ring_bytes for each connection's Pipe */
	uint64_t check; /* FNV-1a of the fields above */
	uint8_t pad[LSN_HOT - 32];
};

struct lsn_ctl {
	_Atomic uint32_t lock;
	_Atomic uint32_t server;
	_Atomic uint32_t bell;
	uint32_t next_id;	 /* guarded by lock */
	struct lfipc_wq lock_wq; /* sleepers on lock (internal/wait.h) */
	uint8_t pad[LSN_HOT - 32];
};

struct lsn_rec {
	_Atomic uint32_t state;
	uint32_t id;   /* guarded by lock */
	uint64_t off;  /* the Pipe's block; guarded by lock */
	uint64_t size;
	uint64_t pad;
};

struct lsn_shm {
	struct lsn_geom geom;
	struct lsn_ctl ctl;
	struct lsn_rec rec[];
};

_Static_assert(sizeof(struct lsn_geom) == LSN_HOT, "geom size");
_Static_assert(sizeof(struct lsn_ctl) == LSN_HOT, "ctl size");
_Static_assert(sizeof(struct lsn_rec) == 32, "rec size");

/* A validated view of one listener; the server's handle is one of these. */
struct lfipc_listener {
	lfipc_region *r;
	struct lsn_shm *p;
	uint32_t backlog, nrec;
	uint64_t ring;
	uint32_t tok; /* the server token this handle serves under */
	char name[LFIPC_LISTENER_NAME_MAX + 1];
};

extern const struct lfipc__objtype lfipc__listener_type;

/* ---- the process-wide turn (see the top comment) ------------------------ */

static pthread_mutex_t turn_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t turn_once = PTHREAD_ONCE_INIT;

static void turn_prepare(void)
{
	pthread_mutex_lock(&turn_mu);
}

static void turn_parent(void)
{
	pthread_mutex_unlock(&turn_mu);
}

static void turn_child(void)
{
	pthread_mutex_init(&turn_mu, NULL);
}

static void turn_init(void)
{
	pthread_atfork(turn_prepare, turn_parent, turn_child);
}

/* ---- geometry ------------------------------------------------------------ */

static uint64_t geom_check(const struct lsn_geom *g)
{
	const uint8_t *b = (const uint8_t *)g;
	uint64_t x = UINT64_C(0xcbf29ce484222325);

	for (size_t i = 0; i < offsetof(struct lsn_geom, check); i++)
		x = (x ^ b[i]) * UINT64_C(0x100000001b3);
	return x;
}

static uint64_t lsn_total(uint32_t nrec)
{
	return sizeof(struct lsn_shm) + (uint64_t)nrec * sizeof(struct lsn_rec);
}

/* Is the private copy g of a geometry sane for a block of size bytes? */
static bool geom_ok(const struct lsn_geom *g, uint64_t size)
{
	return g->magic == LSN_MAGIC && g->version == LSN_VERSION &&
	       g->check == geom_check(g) && g->nrec != 0 &&
	       g->nrec <= LFIPC_LISTENER_MAX_CONNS && g->backlog != 0 &&
	       g->backlog <= g->nrec && g->ring <= LFIPC_PIPE_MAX_RING &&
	       size >= sizeof(struct lsn_shm) && lsn_total(g->nrec) <= size;
}

/* Copy and validate the geometry of the block at off (size bytes, inside
 * the heap) and make a view of it; -EPROTO. */
static int view(lfipc_region *r, uint64_t off, uint64_t size,
		struct lfipc_listener *h)
{
	struct lsn_geom g;

	if (size < sizeof(g))
		return -EPROTO;
	lfipc__shm_copy(&g, lfipc__at(r, off), sizeof(g));
	if (!geom_ok(&g, size))
		return -EPROTO;
	memset(h, 0, sizeof(*h));
	h->r = r;
	h->p = lfipc__at(r, off);
	h->backlog = g.backlog;
	h->nrec = g.nrec;
	h->ring = g.ring;
	return 0;
}

/* Find and validate the listener name; fill *h (not its tok). The
 * geometry is copied once and only the copy is used. */
static int attach(lfipc_region *r, const char *name, struct lfipc_listener *h)
{
	uint64_t off, size;
	int rc;

	if (!r)
		return -EINVAL;
	rc = lfipc__name_check(name);
	if (rc < 0)
		return rc;
	if (strlen(name) > LFIPC_LISTENER_NAME_MAX)
		return -ENAMETOOLONG;
	rc = lfipc__obj_get(r, name, &lfipc__listener_type, NULL,
			    LFIPC__GET_OPEN, &off, &size, NULL);
	if (rc < 0)
		return rc;
	rc = view(r, off, size, h);
	if (rc == 0)
		strcpy(h->name, name);
	return rc;
}

/* attach() and this process's token. */
static int attach_self(lfipc_region *r, const char *name,
		       struct lfipc_listener *h, uint32_t *self)
{
	int rc = attach(r, name, h);

	return rc < 0 ? rc : lfipc__self(r, self);
}

static void pipe_name(const struct lfipc_listener *h, uint32_t id,
		      char buf[LFIPC_NAME_MAX + 1])
{
	snprintf(buf, LFIPC_NAME_MAX + 1, "%s#%x", h->name, id);
}

/* ---- the lock -------------------------------------------------------------- */

/* Take the listener lock for self until dl. A dead holder's lock is taken
 * over: the garbage collection that every holder runs first repairs what
 * it left. Return: 0; -ETIMEDOUT; -EAGAIN (dl is LFIPC_DL_NOW); -EDEADLK
 * (cannot happen: the turn serialises our threads). */
static int lock(struct lfipc_listener *h, uint32_t self, lfipc_deadline dl)
{
	int rc;

	pthread_once(&turn_once, turn_init);
	rc = lfipc__pthread_lock_until(&turn_mu, dl);
	if (rc < 0)
		return rc;
	rc = lfipc__mutex_lock(h->r, &h->p->ctl.lock, &h->p->ctl.lock_wq, self,
			       dl, 0, false);
	if (rc == -EOWNERDEAD)
		rc = 0;
	if (rc < 0)
		pthread_mutex_unlock(&turn_mu);
	return rc;
}

static void unlock(struct lfipc_listener *h, uint32_t self)
{
	lfipc__mutex_unlock(h->r, &h->p->ctl.lock, &h->p->ctl.lock_wq, self);
	pthread_mutex_unlock(&turn_mu);
}

/* ---- records (all under the lock) ------------------------------------------ */

/* A region-lock wait that the caller's deadline ended (the region lock
 * waits until the deadline connect and accept set: see
 * lfipc__region_lock_deadline()). */
static bool lock_expired(int rc)
{
	return rc == -ETIMEDOUT || rc == -EAGAIN;
}

/* Free record i (its Pipe is gone or was never ours). */
static void rec_free(struct lfipc_listener *h, uint32_t i)
{
	struct lsn_rec *rec = &h->p->rec[i];

	atomic_store(&rec->state, REC_FREE);
	/* Whoever sleeps on the word (a waiting client) looks again. */
	lfipc__wake_word(&rec->state, INT32_MAX);
}

/* Remove record i's Pipe (if it exists) and free the record. Return: 0;
 * -ETIMEDOUT/-EAGAIN the region lock was not had by the caller's
 * deadline: the record is left as it is, for a later collection. */
static int rec_drop(struct lfipc_listener *h, uint32_t i)
{
	struct lsn_rec *rec = &h->p->rec[i];
	char pn[LFIPC_NAME_MAX + 1];
	int rc;

	pipe_name(h, lfipc__shm_ld32(&rec->id), pn);
	rc = lfipc_object_remove(h->r, pn); /* -ENOENT: never made */
	if (lock_expired(rc))
		return rc;
	rec_free(h, i);
	return 0;
}

/* Which ends of record i's Pipe are finished (internal/recover.h); a
 * record whose block makes no sense counts as finished, so a corrupt
 * record is reclaimed rather than leaked. */
static int rec_done(struct lfipc_listener *h, uint32_t i)
{
	struct lsn_rec *rec = &h->p->rec[i];
	uint64_t off = lfipc__shm_ld64(&rec->off);
	uint64_t size = lfipc__shm_ld64(&rec->size);
	int d = lfipc__pipe_ends_done(h->r, off, size);

	return d < 0 ? 3 : d;
}

/* Garbage collection (see the top comment). Returns records freed, or
 * -ETIMEDOUT/-EAGAIN (rec_drop()) with the rest left for later. */
static int gc(struct lfipc_listener *h)
{
	int n = 0, rc;

	for (uint32_t i = 0; i < h->nrec; i++) {
		uint32_t v = atomic_load(&h->p->rec[i].state);
		bool drop;

		switch (REC_TAG(v)) {
		case REC_SETUP:
			drop = true;
			break;
		case REC_PEND:
			drop = (rec_done(h, i) & 2) != 0;
			break;
		case REC_CONN:
			drop = rec_done(h, i) == 3;
			break;
		default:
			drop = false;
		}
		if (drop) {
			rc = rec_drop(h, i);
			if (rc < 0)
				return rc;
			n++;
		}
	}
	return n;
}

static bool server_alive(struct lfipc_listener *h)
{
	uint32_t s = atomic_load(&h->p->ctl.server);

	return s != 0 && lfipc__token_alive(h->r, s);
}

static int expired_rc(int64_t timeout_ns)
{
	return timeout_ns == LFIPC_NOWAIT ? -EAGAIN : -ETIMEDOUT;
}

/* ---- create / open / close ------------------------------------------------ */

struct init_arg {
	struct lsn_geom g;
	uint32_t server;
};

static uint64_t lsn_size(const void *shape)
{
	const struct init_arg *a = shape;

	return lsn_total(a->g.nrec);
}

/* Runs under the region lock on the zeroed block, before publication. */
static int lsn_init(void *block, uint64_t size, void *shape)
{
	const struct init_arg *a = shape;
	struct lsn_shm *p = block;

	(void)size;
	p->geom = a->g;
	atomic_init(&p->ctl.server, a->server);
	return 0;
}

static int lsn_same_shape(lfipc_region *r, uint64_t off, uint64_t size,
			  const void *shape)
{
	const struct init_arg *a = shape;
	struct lfipc_listener h;

	if (view(r, off, size, &h) < 0)
		return -EPROTO;
	return h.backlog == a->g.backlog && h.nrec == a->g.nrec &&
		       h.ring == a->g.ring
		   ? 0
		   : -EEXIST;
}

static int handle_new(const struct lfipc_listener *h, uint32_t tok,
		      lfipc_listener **out)
{
	lfipc_listener *l = malloc(sizeof(*l));

	if (!l)
		return -ENOMEM;
	*l = *h;
	l->tok = tok;
	*out = l;
	return 0;
}

int lfipc_listener_create(lfipc_region *r, const char *name, unsigned backlog,
			  unsigned max_conns, size_t ring_bytes,
			  lfipc_listener **out)
{
	struct init_arg ia;
	struct lfipc_listener h;
	uint64_t off, size;
	int rc;

	if (out)
		*out = NULL;
	if (!r || !out || ring_bytes > LFIPC_PIPE_MAX_RING)
		return -EINVAL;
	rc = lfipc__name_check(name);
	if (rc < 0)
		return rc;
	if (strlen(name) > LFIPC_LISTENER_NAME_MAX)
		return -ENAMETOOLONG;
	if (backlog == 0)
		backlog = LFIPC_LISTENER_DEFAULT_BACKLOG;
	if (max_conns == 0)
		max_conns = backlog > LFIPC_LISTENER_DEFAULT_CONNS
				    ? backlog
				    : LFIPC_LISTENER_DEFAULT_CONNS;
	if (backlog > max_conns || max_conns > LFIPC_LISTENER_MAX_CONNS)
		return -EINVAL;
	rc = lfipc__self(r, &ia.server);
	if (rc < 0)
		return rc;
	memset(&ia.g, 0, sizeof(ia.g));
	ia.g.magic = LSN_MAGIC;
	ia.g.version = LSN_VERSION;
	ia.g.backlog = backlog;
	ia.g.nrec = max_conns;
	ia.g.ring = ring_bytes;
	ia.g.check = geom_check(&ia.g);
	rc = lfipc__obj_get(r, name, &lfipc__listener_type, &ia,
			    LFIPC__GET_CREATE, &off, &size, NULL);
	if (rc < 0)
		return rc;
	rc = view(r, off, size, &h);
	if (rc < 0)
		return rc;
	strcpy(h.name, name);
	return handle_new(&h, ia.server, out);
}

int lfipc_listener_open(lfipc_region *r, const char *name,
			lfipc_listener **out)
{
	struct lfipc_cas_bound b = LFIPC_CAS_BOUND_INIT;
	struct lfipc_listener h;
	uint32_t self, v;
	int rc;

	if (out)
		*out = NULL;
	if (!out)
		return -EINVAL;
	rc = attach_self(r, name, &h, &self);
	if (rc < 0)
		return rc;
	v = atomic_load(&h.p->ctl.server);
	for (;;) {
		if (v == self || (v != 0 && lfipc__token_alive(r, v)))
			return -EBUSY;
		if (atomic_compare_exchange_strong(&h.p->ctl.server, &v, self))
			break;
		/* A peer that rewrites the word without end (free or dead
		 * servers): -EPROTO after the CAS bound (internal/wait.h). */
		rc = lfipc__cas_retry(&b, LFIPC_DL_NEVER);
		if (rc < 0)
			return rc;
	}
	rc = handle_new(&h, self, out);
	if (rc < 0) {
		v = self;
		atomic_compare_exchange_strong(&h.p->ctl.server, &v, 0);
	}
	return rc;
}

void lfipc_listener_close(lfipc_listener *l)
{
	uint32_t v;

	if (!l)
		return;
	v = l->tok;
	if (atomic_compare_exchange_strong(&l->p->ctl.server, &v, 0)) {
		/* Waiting clients look again now and see nobody serves:
		 * they sleep on the bell too (C2 in connect), which moves
		 * after the store above (B2: seq_cst). */
		atomic_fetch_add(&l->p->ctl.bell, 1);
		lfipc__wake_word(&l->p->ctl.bell, INT32_MAX);
	}
	free(l);
}

/* ---- accept ------------------------------------------------------------------ */

/* The waiting record with the oldest id (wrap-safe), or -1; its state
 * and id as they were read (once) in *state and *id. */
static int64_t oldest_pending(struct lfipc_listener *h, uint32_t *state,
			      uint32_t *id)
{
	int64_t best = -1;

	for (uint32_t i = 0; i < h->nrec; i++) {
		uint32_t v = atomic_load(&h->p->rec[i].state), n;

		if (REC_TAG(v) != REC_PEND)
			continue;
		n = lfipc__shm_ld32(&h->p->rec[i].id);
		if (best < 0 || (int32_t)(n - *id) < 0) {
			best = i;
			*state = v;
			*id = n;
		}
	}
	return best;
}

/* A server waiting for the bell to move from what it saw before its scan
 * (A1). */
struct bell_wait {
	_Atomic uint32_t *bell;
	uint32_t seen;
};

/* Readiness callback of accept (internal/wait.h): a client rang. The bell
 * has no wait queue: a client always wakes it (B1). Whose death would we
 * watch? Nobody's: a dying client is reclaimed at the next scan. */
static int bell_ready(void *ctx, struct lfipc_sleep *s, bool check)
{
	struct bell_wait *w = ctx;
	/* A2: seq_cst; pairs with B1, as A1. */
	uint32_t v = atomic_load(w->bell);

	(void)check;
	if (v != w->seen)
		return 1;
	s->word = w->bell;
	s->val = v;
	return 0;
}

static int accept_until(lfipc_listener *l, lfipc_deadline dl,
			int64_t timeout_ns, lfipc_conn **out)
{
	struct bell_wait w;
	char pn[LFIPC_NAME_MAX + 1];
	uint32_t self, bell, v = 0, id = 0;
	int64_t i;
	int rc;

	if (out)
		*out = NULL;
	if (!l || !out)
		return -EINVAL;
	rc = lfipc__self_until(l->r, &self, dl);
	if (rc < 0)
		return rc;
	if (self != l->tok || atomic_load(&l->p->ctl.server) != self)
		return -EPERM;
	for (;;) {
		/* A1: seq_cst, before the scan: a client bumps the bell
		 * after it published its record (under the lock), so either
		 * the scan sees the record or the futex wait sees the new
		 * bell value. */
		bell = atomic_load(&l->p->ctl.bell);
		rc = lock(l, self, dl);
		if (rc == -ETIMEDOUT)
			return expired_rc(timeout_ns);
		if (rc < 0)
			return rc;
		rc = gc(l);
		if (rc < 0) {
			unlock(l, self);
			return rc;
		}
		/* Each pass attaches one record or frees one: at most nrec
		 * passes, even if a hostile peer keeps making records. */
		for (uint32_t pass = 0;
		     pass < l->nrec && (i = oldest_pending(l, &v, &id)) >= 0;
		     pass++) {
			struct lsn_rec *rec = &l->p->rec[i];

			/* v and id are the words oldest_pending() read and
			 * checked (a PEND record): only they are used. */
			pipe_name(l, id, pn);
			rc = lfipc_pipe_open(l->r, pn, 0, out);
			if (rc == 0) {
				atomic_store(&rec->state,
					     REC(REC_CONN, REC_TOK(v)));
				unlock(l, self);
				lfipc__wake_word(&rec->state, INT32_MAX);
				return 0;
			}
			if (rc == -ENOMEM || rc == -EUSERS ||
			    lock_expired(rc)) {
				unlock(l, self);
				return rc;
			}
			/* The record's Pipe is gone or not what it should
			 * be: drop it (its client is told it was refused)
			 * and take the next one. */
			rc = rec_drop(l, (uint32_t)i);
			if (rc < 0) {
				unlock(l, self);
				return rc;
			}
		}
		unlock(l, self);
		/* Until a client rings (or the deadline, or a signal when
		 * the thread is interruptible). */
		w = (struct bell_wait){&l->p->ctl.bell, bell};
		rc = lfipc__wait_until(l->r, NULL, bell_ready, &w, dl, 0);
		if (rc == -EAGAIN || rc == -ETIMEDOUT)
			return expired_rc(timeout_ns);
		if (rc < 0)
			return rc;
	}
}

int lfipc_listener_accept(lfipc_listener *l, int64_t timeout_ns,
			  lfipc_conn **out)
{
	lfipc_deadline dl = lfipc__deadline(timeout_ns);
	/* Every region-lock wait on the way (Pipe open, removals) ends by
	 * our deadline too: a stopped peer inside a create or remove holds
	 * the region lock. */
	lfipc_deadline old = lfipc__region_lock_deadline(dl);
	int rc = accept_until(l, dl, timeout_ns, out);

	lfipc__region_lock_deadline(old);
	return rc;
}

/* ---- connect ----------------------------------------------------------------- */

/* Under the lock: make record i the client's waiting connection. Return 0
 * and *e1 (end 1, claimed); a negative errno with the record freed. */
static int make_pending(struct lfipc_listener *h, uint32_t i, uint32_t self,
			lfipc_conn **e1)
{
	struct lsn_rec *rec = &h->p->rec[i];
	char pn[LFIPC_NAME_MAX + 1];
	lfipc_conn *e0 = NULL;
	uint64_t off, size;
	uint32_t id;
	int rc;

	/* An id can still be taken after 2^32 connections only by one that
	 * never ended: skip it. */
	for (int tries = 0;; tries++) {
		/* one load of the shared counter (a peer may rewrite it:
		 * any id will do, a clash is -EEXIST and retried) */
		id = lfipc__shm_ld32(&h->p->ctl.next_id);
		h->p->ctl.next_id = id + 1;
		rec->id = id;
		atomic_store(&rec->state, REC(REC_SETUP, self));
		pipe_name(h, id, pn);
		rc = lfipc_pipe_create(h->r, pn, h->ring, true, &e0, e1);
		if (rc != -EEXIST || tries == 8)
			break;
	}
	/* Nine names in a row taken by Pipes that no record knows (left by
	 * an earlier listener of this name, or made by somebody else):
	 * connections cannot be made now, as when max_conns exist. The ids
	 * moved past them, so a later connect tries fresh names. */
	if (rc == -EEXIST)
		rc = -EBUSY;
	if (rc < 0) {
		/* No Pipe of ours: the name may be another object's. */
		rec_free(h, i);
		return rc;
	}
	/* Claim end 1 (a poll claims), so that our death or close finishes
	 * it; hand end 0 on to whoever accepts. */
	rc = lfipc_conn_poll(*e1, LFIPC_NOWAIT);
	lfipc_conn_close(e0);
	if (rc >= 0)
		rc = lfipc__obj_open(h->r, pn, LFIPC_OBJ_PIPE, &off, &size);
	if (rc < 0) {
		lfipc_conn_close(*e1);
		*e1 = NULL;
		goto fail;
	}
	rec->off = off;
	rec->size = size;
	atomic_store(&rec->state, REC(REC_PEND, self));
	return 0;
fail:
	/* If the region lock is not had in time, the record stays in
	 * REC_SETUP, which the next collection drops. */
	(void)rec_drop(h, i);
	return rc;
}

/* A client waiting for the server to take its record. */
struct accepted_wait {
	struct lfipc_listener *h;
	struct lsn_rec *rec;
	uint32_t self;
};

/*
 * Readiness callback of connect (internal/wait.h): the server took the
 * record (1), dropped it or stopped serving (-ECONNREFUSED). Not ready:
 * sleep on the record's state, on the bell (which the server's close
 * moves after clearing ctl.server: the state does not change then), and
 * on the server's death word.
 */
static int accepted_ready(void *ctx, struct lfipc_sleep *s, bool check)
{
	struct accepted_wait *w = ctx;
	/* C2: seq_cst, before the load of server (pairs with B2). */
	uint32_t bell = atomic_load(&w->h->p->ctl.bell);
	/* C3: seq_cst (W3); the server stores REC_CONN, then wakes. */
	uint32_t v = atomic_load(&w->rec->state);
	uint32_t srv = atomic_load(&w->h->p->ctl.server);

	if (v == REC(REC_CONN, w->self))
		return 1;
	if (v != REC(REC_PEND, w->self) || srv == 0)
		return -ECONNREFUSED; /* dropped, or nobody serves */
	if (check && !lfipc__token_alive(w->h->r, srv))
		return -ECONNREFUSED;
	s->word = &w->rec->state;
	s->val = v;
	s->word2 = &w->h->p->ctl.bell;
	s->val2 = bell;
	s->partner[0] = srv;
	return 0;
}

static int connect_until(lfipc_region *r, const char *name,
			 lfipc_deadline dl, int64_t timeout_ns,
			 lfipc_conn **out)
{
	struct lfipc_listener h;
	struct accepted_wait w;
	lfipc_conn *e1;
	uint32_t self, v, pending = 0, free_i = UINT32_MAX;
	int rc;

	if (out)
		*out = NULL;
	if (!out)
		return -EINVAL;
	rc = attach_self(r, name, &h, &self);
	if (rc < 0)
		return rc;
	rc = lock(&h, self, dl);
	if (rc == -ETIMEDOUT)
		return expired_rc(timeout_ns);
	if (rc < 0)
		return rc;
	rc = gc(&h);
	if (rc < 0) {
		unlock(&h, self);
		return rc;
	}
	if (!server_alive(&h)) {
		unlock(&h, self);
		return -ECONNREFUSED;
	}
	for (uint32_t i = 0; i < h.nrec; i++) {
		v = atomic_load(&h.p->rec[i].state);
		if (REC_TAG(v) == REC_PEND)
			pending++;
		else if (v == REC_FREE && free_i == UINT32_MAX)
			free_i = i;
	}
	if (pending >= h.backlog || free_i == UINT32_MAX) {
		unlock(&h, self);
		return -EBUSY;
	}
	rc = make_pending(&h, free_i, self, &e1);
	unlock(&h, self);
	if (rc < 0)
		return rc;
	/* B1: seq_cst; pairs with A1 in lfipc_listener_accept(). */
	atomic_fetch_add(&h.p->ctl.bell, 1);
	lfipc__wake_word(&h.p->ctl.bell, INT32_MAX);

	w = (struct accepted_wait){&h, &h.p->rec[free_i], self};
	rc = lfipc__wait_until(r, NULL, accepted_ready, &w, dl, 0);
	if (rc == 0) {
		*out = e1;
		return 0;
	}
	if (rc == -EAGAIN || rc == -ETIMEDOUT)
		rc = expired_rc(timeout_ns);
	/* Give up: closing our claimed end finishes the connection, so the
	 * next garbage collection reclaims it; a server that accepted it at
	 * this very moment reads end-of-file. */
	lfipc_conn_close(e1);
	return rc;
}

int lfipc_listener_connect(lfipc_region *r, const char *name,
			   int64_t timeout_ns, lfipc_conn **out)
{
	lfipc_deadline dl = lfipc__deadline(timeout_ns);
	/* As in accept: the lookup, the collection and the Pipe's creation
	 * wait for the region lock until our deadline only. */
	lfipc_deadline old = lfipc__region_lock_deadline(dl);
	int rc = connect_until(r, name, dl, timeout_ns, out);

	lfipc__region_lock_deadline(old);
	return rc;
}

/* ---- status ---------------------------------------------------------------- */

static int lsn_status(lfipc_region *r, uint64_t off, uint64_t size, void *out)
{
	lfipc_listener_status *st = out;
	struct lfipc_listener h;
	lfipc_holder srv;
	uint32_t server;
	int rc = view(r, off, size, &h);

	if (rc < 0)
		return rc;
	/* S1: seq_cst loads; a snapshot for people and supervisors. The
	 * server word is read once: serving and the holder's pid and
	 * liveness describe the same token. */
	server = atomic_load(&h.p->ctl.server);
	lfipc__holder(r, server, &srv);
	st->serving = server != 0;
	st->server_pid = srv.pid;
	st->server_alive = srv.alive;
	st->backlog = h.backlog;
	st->max_conns = h.nrec;
	st->ring_bytes = h.ring ? h.ring : LFIPC_PIPE_DEFAULT_RING;
	for (uint32_t i = 0; i < h.nrec; i++) {
		uint32_t v = atomic_load(&h.p->rec[i].state);

		st->waiting += REC_TAG(v) == REC_PEND;
		st->connections += REC_TAG(v) == REC_CONN;
	}
	return 0;
}

/* ---- recovery ------------------------------------------------------------------ */

static int lsn_recover(lfipc_region *r, uint64_t off, uint64_t size)
{
	struct lfipc_listener h;
	uint32_t self, s;
	int rc = view(r, off, size, &h), n = 0;

	if (rc < 0)
		return rc;
	/* Pipes are removed by name, which recovery does not have (it has
	 * the block): it frees a dead server's word and a dead holder's
	 * mutex, and leaves the records to the next connect or accept. */
	s = atomic_load(&h.p->ctl.server);
	if (s != 0 && !lfipc__token_alive(r, s) &&
	    atomic_compare_exchange_strong(&h.p->ctl.server, &s, 0))
		n++;
	rc = lfipc__self(r, &self);
	if (rc < 0)
		return rc;
	/* A mutex whose holder died is taken over and released at once, so
	 * the next holder does not wait for a slice first. */
	if (lfipc__mutex_owner_dead(r, &h.p->ctl.lock) &&
	    lock(&h, self, lfipc__deadline(LFIPC_NOWAIT)) == 0) {
		unlock(&h, self);
		n++;
	}
	return n;
}

const struct lfipc__objtype lfipc__listener_type = {
	.type = LFIPC_OBJ_LISTENER,
	.name = "listener",
	.align = LSN_HOT,
	.size = lsn_size,
	.init = lsn_init,
	.same_shape = lsn_same_shape,
	.recover = lsn_recover,
	.status = lsn_status,
	.status_size = sizeof(lfipc_listener_status),
	.status_min = sizeof(lfipc_listener_status),
};
