/* SPDX-License-Identifier: MIT */
/*
 * pipe.c - two connected ends carrying framed byte messages: creation,
 * attachment, closing, recovery, status. The block layout, the owner
 * words and the handle are in internal/pipe.h; the messages (framing,
 * streaming, waiting, readiness) in pipe_io.c.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <lfipc/pipe.h>

#include "internal/pipe.h"
#include "internal/poll.h"
#include "internal/proc.h"
#include "internal/objtype.h"
#include "internal/recover.h"
#include "internal/region.h"
#include "internal/shm.h"
#include "internal/wait.h"

static uint64_t geom_check(const struct pipe_geom *g)
{
	const uint8_t *b = (const uint8_t *)g;
	uint64_t x = UINT64_C(0xcbf29ce484222325);

	for (size_t i = 0; i < offsetof(struct pipe_geom, check); i++)
		x = (x ^ b[i]) * UINT64_C(0x100000001b3);
	return x;
}

static uint64_t pipe_total(uint64_t cap, bool duplex)
{
	return sizeof(struct pipe_shm) + cap * (duplex ? 2 : 1);
}

/* ---- creation, attachment, closing -------------------------------------- */

struct init_arg {
	uint64_t cap;
	bool duplex;
	uint32_t owner;
	int only; /* -1: the creator holds both ends; 0 or 1: it claims only
		     that end, the other is free (open-or-create) */
};

/* Runs under the region lock on the zeroed block, before publication. */
static int pipe_init(void *block, uint64_t size, void *argp)
{
	const struct init_arg *a = argp;
	struct pipe_shm *p = block;
	struct pipe_geom *g = &p->geom;

	(void)size;
	g->magic = PIPE_MAGIC;
	g->version = PIPE_VERSION;
	g->duplex = a->duplex;
	g->cap = a->cap;
	g->ring_off[0] = sizeof(struct pipe_shm);
	g->ring_off[1] = a->duplex ? sizeof(struct pipe_shm) + a->cap : 0;
	g->total = pipe_total(a->cap, a->duplex);
	g->check = geom_check(g);
	/* Both ends held provisionally by the creator. The block is
	 * published by the region lock's release, after these stores. */
	if (a->only < 0) {
		atomic_init(&p->ends.owner[0], a->owner);
		atomic_init(&p->ends.owner[1], a->owner);
	} else {
		atomic_init(&p->ends.owner[a->only], a->owner | OWN_CLAIMED);
	}
	return 0;
}

static int make_conn(lfipc_region *r, struct pipe_shm *p, uint64_t cap,
		     bool duplex, int end, uint32_t tok, bool claimed,
		     lfipc_conn **out)
{
	lfipc_conn *c = calloc(1, sizeof(*c));
	uint8_t *base = (uint8_t *)p;
	int rx = end, tx = 1 - end;

	if (!c)
		return -ENOMEM;
	c->r = r;
	c->p = p;
	c->end = end;
	c->cap = cap;
	c->mask = cap - 1;
	if (duplex || rx == 0) {
		c->rx = &p->dir[rx];
		c->rx_ring =
		    base + sizeof(struct pipe_shm) + (uint64_t)rx * cap;
	}
	if (duplex || tx == 0) {
		c->tx = &p->dir[tx];
		c->tx_ring =
		    base + sizeof(struct pipe_shm) + (uint64_t)tx * cap;
	}
	c->mine = &p->ends.owner[end];
	c->peer = &p->ends.owner[1 - end];
	c->tok = tok;
	c->claimed = claimed;
	pthread_mutex_init(&c->poller_mu, NULL);
	for (int i = 0; i < 2; i++)
		c->epfd[i] = c->pidfd[i] = -1;
	*out = c;
	return 0;
}

static uint64_t ring_size(size_t ring_bytes)
{
	uint64_t cap = LFIPC_PIPE_MIN_RING;

	if (ring_bytes == 0)
		return LFIPC_PIPE_DEFAULT_RING;
	while (cap < ring_bytes)
		cap <<= 1;
	return cap;
}

int lfipc_pipe_create(lfipc_region *r, const char *name, size_t ring_bytes,
		      bool duplex, lfipc_conn **end0, lfipc_conn **end1)
{
	struct init_arg ia;
	uint64_t off;
	struct pipe_shm *p;
	int rc;

	if (end0)
		*end0 = NULL;
	if (end1)
		*end1 = NULL;
	if (!r || !end0 || !end1 || ring_bytes > LFIPC_PIPE_MAX_RING)
		return -EINVAL;
	rc = lfipc__name_check(name);
	if (rc < 0)
		return rc;
	rc = lfipc__self(r, &ia.owner);
	if (rc < 0)
		return rc;
	ia.cap = ring_size(ring_bytes);
	ia.duplex = duplex;
	ia.only = -1;
	rc = lfipc__obj_create(r, name, LFIPC_OBJ_PIPE,
			       pipe_total(ia.cap, duplex), PIPE_HOT, pipe_init,
			       &ia, &off);
	if (rc < 0)
		return rc;
	p = lfipc__at(r, off);
	rc = make_conn(r, p, ia.cap, duplex, 0, ia.owner, false, end0);
	if (rc == 0)
		rc = make_conn(r, p, ia.cap, duplex, 1, ia.owner, false, end1);
	if (rc < 0) {
		free(*end0);
		*end0 = NULL;
		return rc;
	}
	return 0;
}

/* Validate the geometry of the pipe at off (size bytes). Return 0 and the
 * private copy; -EPROTO. The copy is made once, byte by byte through
 * volatile loads (a memcpy may be turned into loads the compiler repeats),
 * and only the copy is checked and used. */
static int geom_load(lfipc_region *r, uint64_t off, uint64_t size,
		     struct pipe_geom *g)
{
	if (size < sizeof(struct pipe_shm) ||
	    !lfipc__heap_range_ok(r, off, sizeof(struct pipe_shm)))
		return -EPROTO;
	lfipc__shm_copy(g, lfipc__at(r, off), sizeof(*g));
	if (g->magic != PIPE_MAGIC || g->version != PIPE_VERSION ||
	    g->check != geom_check(g) || g->duplex > 1 ||
	    g->cap < LFIPC_PIPE_MIN_RING || g->cap > LFIPC_PIPE_MAX_RING ||
	    (g->cap & (g->cap - 1)) != 0 ||
	    g->ring_off[0] != sizeof(struct pipe_shm) ||
	    g->ring_off[1] !=
		(g->duplex ? sizeof(struct pipe_shm) + g->cap : 0) ||
	    g->total != pipe_total(g->cap, g->duplex) || g->total > size ||
	    !lfipc__heap_range_ok(r, off, g->total))
		return -EPROTO;
	return 0;
}

static int claim_end(lfipc_region *r, struct pipe_shm *p,
		     const struct pipe_geom *g, int end, uint32_t self,
		     lfipc_conn **out);

int lfipc_pipe_open(lfipc_region *r, const char *name, int end,
		    lfipc_conn **out)
{
	struct pipe_geom g;
	struct pipe_shm *p;
	uint64_t off, size;
	uint32_t self;
	int rc;

	if (out)
		*out = NULL;
	if (!r || !out || (end != 0 && end != 1))
		return -EINVAL;
	rc = lfipc__obj_open(r, name, LFIPC_OBJ_PIPE, &off, &size);
	if (rc < 0)
		return rc;
	rc = geom_load(r, off, size, &g);
	if (rc < 0)
		return rc;
	rc = lfipc__self(r, &self);
	if (rc < 0)
		return rc;
	p = lfipc__at(r, off);
	return claim_end(r, p, &g, end, self, out);
}

/* Claim end of the validated pipe p for self and make its connection. */
static int claim_end(lfipc_region *r, struct pipe_shm *p,
		     const struct pipe_geom *g, int end, uint32_t self,
		     lfipc_conn **out)
{
	struct lfipc_cas_bound b = LFIPC_CAS_BOUND_INIT;
	uint32_t v, t;
	int rc;

	v = atomic_load(&p->ends.owner[end]);
	for (;;) {
		if (v & OWN_CLOSED)
			return -EPIPE;
		t = OWN_TOKEN(v);
		if (t == self)
			return -EBUSY;
		if (t != 0)
			return lfipc__token_alive(r, t) ? -EBUSY : -EPIPE;
		if (atomic_compare_exchange_strong(&p->ends.owner[end], &v,
						   self | OWN_CLAIMED))
			break;
		/* A peer that rewrites the word without end (between free
		 * values): -EPROTO after the CAS bound (internal/wait.h). */
		rc = lfipc__cas_retry(&b, LFIPC_DL_NEVER);
		if (rc < 0)
			return rc;
	}
	rc = make_conn(r, p, g->cap, g->duplex, end, self, true, out);
	if (rc < 0) {
		/* Hand the end back: nobody used it. */
		v = self | OWN_CLAIMED;
		atomic_compare_exchange_strong(&p->ends.owner[end], &v, 0);
	}
	return rc;
}

/* Wake everybody who may sleep on pipe p (after an end closed). */
static void wake_all(lfipc_region *r, struct pipe_shm *p)
{
	for (int d = 0; d < 2; d++) {
		lfipc__wake(r, &p->dir[d].rd_wq, NULL, INT32_MAX);
		lfipc__wake(r, &p->dir[d].wr_wq, NULL, INT32_MAX);
	}
}

void lfipc_conn_close(lfipc_conn *c)
{
	uint32_t self, v, nv;

	if (!c)
		return;
	if (lfipc__self(c->r, &self) == 0 && self == c->tok) {
		struct lfipc_cas_bound b = LFIPC_CAS_BOUND_INIT;

		/* A peer that rewrites the word without end (our token,
		 * the CLAIMED bit moving): we give up after the CAS bound
		 * (internal/wait.h); the end stays ours until our death is
		 * seen (recovery closes it then). */
		v = atomic_load(c->mine);
		while (OWN_TOKEN(v) == self && !(v & OWN_CLOSED)) {
			/* Claimed: close it. Provisional: hand it on. */
			nv = (v & OWN_CLAIMED) ? (v | OWN_CLOSED) : 0;
			if (atomic_compare_exchange_strong(c->mine, &v, nv)) {
				if (!nv)
					break;
				wake_all(c->r, c->p);
				/* C2: release the end: token 0 says this
				 * process touches the pipe no more, so it may
				 * be removed (lfipc__pipe_ends_done). */
				atomic_store(c->mine, OWN_CLOSED | OWN_CLAIMED);
				break;
			}
			if (lfipc__cas_retry(&b, LFIPC_DL_NEVER) < 0)
				break;
		}
	}
	for (int i = 0; i < 2; i++) {
		if (c->pidfd[i] >= 0)
			close(c->pidfd[i]);
		if (c->epfd[i] >= 0)
			close(c->epfd[i]);
		/* C1': relaxed: closing excludes every other use. */
		lfipc__poller_close(
		    atomic_load_explicit(&c->poller[i], memory_order_relaxed));
	}
	pthread_mutex_destroy(&c->poller_mu);
	free(c);
}

int lfipc_conn_end(const lfipc_conn *c)
{
	return c ? c->end : -EINVAL;
}

/*
 * Recovery: an end whose holder died is marked closed and everybody
 * sleeping on the pipe is woken, so the peer sees end-of-file now rather
 * than after its next sleep slice. An unfinished frame the dead writer left
 * is discarded by the reader when it gets there.
 */
int lfipc__pipe_recover(lfipc_region *r, uint64_t off, uint64_t size)
{
	struct pipe_geom g;
	struct pipe_shm *p;
	int rc = geom_load(r, off, size, &g), n = 0;

	if (rc < 0)
		return rc;
	p = lfipc__at(r, off);
	for (int e = 0; e < 2; e++) {
		uint32_t v = atomic_load(&p->ends.owner[e]);
		uint32_t t = OWN_TOKEN(v);

		if ((v & OWN_CLOSED) || t == 0 || lfipc__token_alive(r, t))
			continue;
		if (atomic_compare_exchange_strong(&p->ends.owner[e], &v,
						   v | OWN_CLOSED)) {
			wake_all(r, p);
			n++;
		}
	}
	return n;
}

/*
 * Which ends of the pipe at off are finished for good: bit e set when the
 * holder of end e died, or closed it and is done with the pipe (C2 in
 * lfipc_conn_close() cleared the token). An end held by nobody (handed on)
 * is not finished; nor is one whose live closer is still waking the peer.
 */
int lfipc__pipe_ends_done(lfipc_region *r, uint64_t off, uint64_t size)
{
	struct pipe_geom g;
	struct pipe_shm *p;
	int rc = geom_load(r, off, size, &g), done = 0;

	if (rc < 0)
		return rc;
	p = lfipc__at(r, off);
	for (int e = 0; e < 2; e++) {
		/* C3: seq_cst; pairs with C2: the closer's last writes to
		 * the pipe happen before a token-0 word is seen. */
		uint32_t v = atomic_load(&p->ends.owner[e]);
		uint32_t t = OWN_TOKEN(v);

		if (t == 0 ? (v & OWN_CLOSED) != 0
			   : !lfipc__token_alive(r, t))
			done |= 1 << e;
	}
	return done;
}

/* ---- descriptor, status, open-or-create ------------------------------ */

static uint64_t pipe_size(const void *shape)
{
	const struct init_arg *a = shape;

	return pipe_total(a->cap, a->duplex);
}

static int pipe_same_shape(lfipc_region *r, uint64_t off, uint64_t size,
			   const void *shape)
{
	const struct init_arg *a = shape;
	struct pipe_geom g;

	if (geom_load(r, off, size, &g) < 0)
		return -EPROTO;
	return g.cap == a->cap && (g.duplex != 0) == a->duplex ? 0 : -EEXIST;
}

static int pipe_status(lfipc_region *r, uint64_t off, uint64_t size,
		       void *out)
{
	lfipc_pipe_status *st = out;
	struct pipe_geom g;
	struct pipe_shm *p;
	int rc;

	rc = geom_load(r, off, size, &g);
	if (rc < 0)
		return rc;
	p = lfipc__at(r, off);
	st->duplex = g.duplex != 0;
	st->ring_bytes = (size_t)g.cap;
	for (int e = 0; e < 2; e++) {
		lfipc_pipe_end_status *es = &st->end[e];
		struct pipe_dir *d = &p->dir[e];
		/* P9: relaxed loads: a diagnostic snapshot for people. */
		uint32_t v = atomic_load_explicit(&p->ends.owner[e],
						  memory_order_relaxed);

		es->closed = (v & OWN_CLOSED) != 0;
		es->held = OWN_TOKEN(v) != 0 && !es->closed;
		lfipc__holder(r, OWN_TOKEN(v), &es->holder);
		if (!g.duplex && e == 1)
			continue; /* nothing is ever sent to end 1 */
		{
			uint64_t tail = atomic_load_explicit(
			    &d->tail, memory_order_relaxed);
			uint64_t head = atomic_load_explicit(
			    &d->head, memory_order_relaxed);

			es->bytes_buffered =
			    tail - head <= g.cap ? (size_t)(tail - head) : 0;
		}
		es->reader_sleeping = lfipc__wq_sleepers(&d->rd_wq) != 0;
		es->writer_sleeping = lfipc__wq_sleepers(&d->wr_wq) != 0;
	}
	return 0;
}

const struct lfipc__objtype lfipc__pipe_type = {
	.type = LFIPC_OBJ_PIPE,
	.name = "pipe",
	.align = PIPE_HOT,
	.size = pipe_size,
	.init = pipe_init,
	.same_shape = pipe_same_shape,
	.recover = lfipc__pipe_recover,
	.status = pipe_status,
	.status_size = sizeof(lfipc_pipe_status),
	.status_min = sizeof(lfipc_pipe_status),
};

int lfipc_conn_stat(const lfipc_conn *c, lfipc_pipe_status *st)
{
	if (!c)
		return -EINVAL;
	return lfipc__obj_status(c->r, &lfipc__pipe_type,
				 lfipc__off(c->r, c->p),
				 pipe_total(c->cap, c->rx && c->tx), st);
}

size_t lfipc_pipe_bytes(size_t ring_bytes, bool duplex)
{
	struct init_arg ia = {0, duplex, 0, -1};

	if (ring_bytes > LFIPC_PIPE_MAX_RING)
		return 0;
	ia.cap = ring_size(ring_bytes);
	return lfipc__obj_bytes(&lfipc__pipe_type, &ia);
}

int lfipc_pipe_open_or_create(lfipc_region *r, const char *name,
			      size_t ring_bytes, bool duplex, int end,
			      lfipc_conn **out)
{
	struct init_arg ia;
	struct pipe_geom g;
	uint64_t off, size;
	bool created;
	int rc;

	if (out)
		*out = NULL;
	if (!r || !out || (end != 0 && end != 1) ||
	    ring_bytes > LFIPC_PIPE_MAX_RING)
		return -EINVAL;
	rc = lfipc__self(r, &ia.owner);
	if (rc < 0)
		return rc;
	ia.cap = ring_size(ring_bytes);
	ia.duplex = duplex;
	ia.only = end;
	rc = lfipc__obj_get(r, name, &lfipc__pipe_type, &ia, LFIPC__GET_EITHER,
			    &off, &size, &created);
	if (rc < 0)
		return rc;
	rc = geom_load(r, off, size, &g);
	if (rc < 0)
		return rc;
	if (created)
		return make_conn(r, lfipc__at(r, off), g.cap, g.duplex, end,
				 ia.owner, true, out);
	return claim_end(r, lfipc__at(r, off), &g, end, ia.owner, out);
}
