/* SPDX-License-Identifier: MIT */
/*
 * poll.c - fd pollers of wait queues (doorbells); see internal/poll.h for
 * the protocol (P1-P3, R1) and the contract.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal/poll.h"
#include "internal/proc.h"
#include "internal/wait.h"

#define STATE(gen, armed) ((uint64_t)(gen) | ((uint64_t)(armed) << 32))
#define GEN(st) ((uint32_t)(st))
#define ARMED(st) ((uint32_t)((st) >> 32))
#define POLLER_COUNT(w) (((w) >> 40) & 0xffff)
#define MAX_ENTRIES 64 /* entries of one poller (wait-for-any) */

/* ---- transport ------------------------------------------------------------ */

/*
 * The doorbell transport: everything that knows it is a socket is here.
 * A name is the abstract socket address "\0lfipc:<uuid>:<home>:<gen>".
 */
struct doorbell_ops {
	/* A bound, non-blocking, close-on-exec fd that becomes readable
	 * when rung. Return: fd, or -errno (-EADDRINUSE: name taken). */
	int (*open)(const struct sockaddr_un *a, socklen_t len);
	/* An fd to ring the doorbell named a. Return: fd, or -errno. */
	int (*connect)(const struct sockaddr_un *a, socklen_t len);
	/* Ring: 0; -EAGAIN already readable (full); -ECONNREFUSED or
	 * -ENOENT nobody there; other -errno. */
	int (*ring)(int fd);
	/* Empty the doorbell (P1). */
	void (*drain)(int fd);
	/* Make the doorbell fd readable (its owner rings itself). */
	void (*ring_self)(int fd);
};

static int sock_open(const struct sockaddr_un *a, socklen_t len)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int small = 1;

	if (fd < 0)
		return -errno;
	/* a doorbell holds a few bytes at most */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	if (bind(fd, (const struct sockaddr *)a, len) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

static int sock_connect(const struct sockaddr_un *a, socklen_t len)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)a, len) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

static int sock_ring(int fd)
{
	return send(fd, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

static void sock_drain(int fd)
{
	char buf[16];

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
		;
}

static void sock_ring_self(int fd)
{
	struct sockaddr_un a;
	socklen_t len = sizeof(a);

	/* our own bound name: a datagram to it makes fd readable */
	if (getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		sendto(fd, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL,
		       (const struct sockaddr *)&a, len);
}

static const struct doorbell_ops doorbell = {
    sock_open, sock_connect, sock_ring, sock_drain, sock_ring_self};

static socklen_t doorbell_name(const lfipc_region *r, uint32_t home,
			       uint32_t gen, struct sockaddr_un *a)
{
	int n;

	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "lfipc:");
	for (int i = 0; i < 16; i++)
		n += snprintf(a->sun_path + 1 + n, sizeof(a->sun_path) - 1 - n,
			      "%02x", r->uuid[i]);
	n += snprintf(a->sun_path + 1 + n, sizeof(a->sun_path) - 1 - n,
		      ":%u:%u", home, gen);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

/* ---- the table ------------------------------------------------------------ */

struct lfipc_poller {
	lfipc_region *r;
	int fd;
	uint32_t n;
	uint32_t idx[MAX_ENTRIES];
	uint32_t gen[MAX_ENTRIES];
};

/* Per-process cache of connected doorbells, one per home entry. */
struct lfipc_poll_cache {
	pthread_mutex_t mu;
	int *fd;
	uint32_t *gen;
};

static pthread_mutex_t cache_init_mu = PTHREAD_MUTEX_INITIALIZER;

static struct lfipc_poll_entry *entry(const lfipc_region *r, uint32_t i)
{
	return (struct lfipc_poll_entry *)(r->base + r->poll_off) + i;
}

/* A queue at region offset off, if that is a sane place for one. */
static struct lfipc_wq *wq_at(const lfipc_region *r, uint32_t off)
{
	if (off % 8 != 0 || (uint64_t)off + sizeof(struct lfipc_wq) > r->size)
		return NULL;
	return (struct lfipc_wq *)(r->base + off);
}

/* waiters -= one poller, never below zero pollers (a forged or stale
 * count must not borrow from the other fields). A peer that rewrites the
 * word without end makes us give up after the CAS bound (internal/wait.h,
 * about a second): the count stays one too high, which costs later wakes
 * of wq a ring each (a scan of the table), nothing else. */
static void poller_count_down(struct lfipc_wq *wq)
{
	struct lfipc_cas_bound b = LFIPC_CAS_BOUND_INIT;
	/* Q1: seq_cst load and CAS (the R1 / reclaim side of P2). */
	uint64_t w = atomic_load(&wq->waiters);

	while (POLLER_COUNT(w) != 0 &&
	       !atomic_compare_exchange_weak(&wq->waiters, &w,
					     w - LFIPC_WQ_POLLER))
		if (lfipc__cas_retry(&b, LFIPC_DL_NEVER) < 0)
			return;
}

/* Claim a free entry for wq: its index and new (odd) gen. */
static int claim(lfipc_region *r, struct lfipc_wq *wq, uint32_t token,
		 uint32_t home, uint32_t home_gen, uint32_t *idx,
		 uint32_t *gen)
{
	for (uint32_t i = 0; i < r->poll_cap; i++) {
		struct lfipc_poll_entry *e = entry(r, i);
		/* Q2: seq_cst */
		uint64_t st = atomic_load(&e->state);
		uint32_t g = GEN(st);

		if (g & 1u)
			continue;
		/* Q3: seq_cst CAS even -> odd, disarmed. The fields below
		 * are stored before the entry is ever armed (P2, seq_cst),
		 * so a waker that sees it armed sees them. */
		if (!atomic_compare_exchange_strong(&e->state, &st,
						    STATE(g + 1, 0)))
			continue;
		atomic_store(&e->obj_off, (uint32_t)lfipc__off(r, wq));
		atomic_store(&e->token, token);
		atomic_store(&e->home, home == UINT32_MAX ? i : home);
		atomic_store(&e->home_gen, home == UINT32_MAX ? g + 1
							      : home_gen);
		*idx = i;
		*gen = g + 1;
		return 0;
	}
	return -ENOSPC;
}

/* Free entry i of incarnation gen: disarm (counting down) and move gen
 * to even. Conditional on gen throughout. Return: true when we freed it;
 * false also when a peer kept rewriting the state word (its armed half)
 * past the CAS bound (internal/wait.h): the entry then stays claimed by
 * our token, one entry lost until a reclaimer frees it after this process
 * is gone. */
static bool release(lfipc_region *r, uint32_t i, uint32_t gen)
{
	struct lfipc_poll_entry *e = entry(r, i);
	struct lfipc_cas_bound b = LFIPC_CAS_BOUND_INIT;
	/* Q4: seq_cst */
	uint64_t st = atomic_load(&e->state);
	uint32_t off = atomic_load(&e->obj_off);

	while (GEN(st) == gen) {
		if (atomic_compare_exchange_weak(&e->state, &st,
						 STATE(gen + 1, 0))) {
			struct lfipc_wq *wq = wq_at(r, off);

			if (ARMED(st) == 1 && wq)
				poller_count_down(wq);
			return true;
		}
		if (lfipc__cas_retry(&b, LFIPC_DL_NEVER) < 0)
			return false;
	}
	return false;
}

int lfipc__poller_open(lfipc_region *r, struct lfipc_wq *wq,
		       struct lfipc_poller **out)
{
	struct lfipc_poller *p;
	uint32_t token;
	int rc = -EADDRINUSE;

	if (!r || !wq || !out || !wq_at(r, (uint32_t)lfipc__off(r, wq)))
		return -EINVAL;
	rc = lfipc__self(r, &token);
	if (rc < 0)
		return rc;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->r = r;
	for (int attempt = 0; attempt < 8; attempt++) {
		struct sockaddr_un a;
		socklen_t len;

		rc = claim(r, wq, token, UINT32_MAX, 0, &p->idx[0], &p->gen[0]);
		if (rc < 0)
			break;
		len = doorbell_name(r, p->idx[0], p->gen[0], &a);
		p->fd = doorbell.open(&a, len);
		if (p->fd >= 0) {
			p->n = 1;
			*out = p;
			return 0;
		}
		rc = p->fd;
		release(r, p->idx[0], p->gen[0]);
		/* -EADDRINUSE: a squatter or a stale socket; the next
		 * claim gives another name */
		if (rc != -EADDRINUSE)
			break;
	}
	free(p);
	return rc;
}

int lfipc__poller_add(struct lfipc_poller *p, struct lfipc_wq *wq)
{
	uint32_t token;
	int rc;

	if (!p || !wq || !wq_at(p->r, (uint32_t)lfipc__off(p->r, wq)))
		return -EINVAL;
	if (p->n == MAX_ENTRIES)
		return -ENOSPC;
	rc = lfipc__self(p->r, &token);
	if (rc < 0)
		return rc;
	rc = claim(p->r, wq, token, p->idx[0], p->gen[0], &p->idx[p->n],
		   &p->gen[p->n]);
	if (rc == 0)
		p->n++;
	return rc;
}

int lfipc__poller_fd(const struct lfipc_poller *p)
{
	return p ? p->fd : -EINVAL;
}

void lfipc__poller_arm(struct lfipc_poller *p)
{
	/* P1 */
	doorbell.drain(p->fd);
	for (uint32_t k = 0; k < p->n; k++) {
		struct lfipc_poll_entry *e = entry(p->r, p->idx[k]);
		uint64_t st = STATE(p->gen[k], 0);
		struct lfipc_wq *wq;

		/* P2: seq_cst CAS 0 -> 1 of our incarnation only (a
		 * reclaimer that freed it wins; we are then disarmed). */
		if (!atomic_compare_exchange_strong(&e->state, &st,
						    STATE(p->gen[k], 1)))
			continue;
		wq = wq_at(p->r, atomic_load(&e->obj_off));
		if (wq)
			/* P2': seq_cst, before the caller's P3 loads. */
			atomic_fetch_add(&wq->waiters, LFIPC_WQ_POLLER);
	}
}

int lfipc__poller_fd_once(lfipc_region *r, struct lfipc_wq *wq,
			  _Atomic(struct lfipc_poller *) *slot,
			  pthread_mutex_t *mu, bool (*now_ready)(void *),
			  void *ctx)
{
	struct lfipc_poller *p;
	int rc = 0;

	/* F1: acquire, pairs with F2: the poller is complete. */
	p = atomic_load_explicit(slot, memory_order_acquire);
	if (p)
		return p->fd;
	pthread_mutex_lock(mu);
	/* F1': relaxed: under mu, which orders it with F2. */
	p = atomic_load_explicit(slot, memory_order_relaxed);
	if (!p) {
		rc = lfipc__poller_open(r, wq, &p);
		if (rc == 0) {
			lfipc__poller_arm(p);
			/* P3 of the first arm: ready already -> readable */
			if (now_ready(ctx))
				doorbell.ring_self(p->fd);
			/* F2: release, pairs with F1. */
			atomic_store_explicit(slot, p, memory_order_release);
		}
	}
	pthread_mutex_unlock(mu);
	return rc < 0 ? rc : p->fd;
}

void lfipc__poller_close(struct lfipc_poller *p)
{
	if (!p)
		return;
	for (uint32_t k = 0; k < p->n; k++)
		release(p->r, p->idx[k], p->gen[k]);
	close(p->fd);
	free(p);
}

static struct lfipc_poll_cache *cache_get(lfipc_region *r)
{
	struct lfipc_poll_cache *c;

	pthread_mutex_lock(&cache_init_mu);
	c = r->poll_cache;
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (c) {
			c->fd = malloc(sizeof(int) * r->poll_cap);
			c->gen = calloc(r->poll_cap, sizeof(uint32_t));
			if (!c->fd || !c->gen) {
				free(c->fd);
				free(c->gen);
				free(c);
				c = NULL;
			} else {
				for (uint32_t i = 0; i < r->poll_cap; i++)
					c->fd[i] = -1;
				pthread_mutex_init(&c->mu, NULL);
				r->poll_cache = c;
			}
		}
	}
	pthread_mutex_unlock(&cache_init_mu);
	return c;
}

void lfipc__poll_cache_free(lfipc_region *r)
{
	struct lfipc_poll_cache *c = r->poll_cache;

	if (!c)
		return;
	for (uint32_t i = 0; i < r->poll_cap; i++)
		if (c->fd[i] >= 0)
			close(c->fd[i]);
	pthread_mutex_destroy(&c->mu);
	free(c->fd);
	free(c->gen);
	free(c);
	r->poll_cache = NULL;
}

/* Ring the doorbell named (home, gen). Return as doorbell.ring. */
static int ring(lfipc_region *r, uint32_t home, uint32_t gen)
{
	struct lfipc_poll_cache *c = cache_get(r);
	struct sockaddr_un a;
	socklen_t len;
	int rc;

	if (!c)
		return -ENOMEM;
	pthread_mutex_lock(&c->mu);
	if (c->fd[home] < 0 || c->gen[home] != gen) {
		if (c->fd[home] >= 0)
			close(c->fd[home]);
		len = doorbell_name(r, home, gen, &a);
		c->fd[home] = doorbell.connect(&a, len);
		c->gen[home] = gen;
	}
	rc = c->fd[home] < 0 ? c->fd[home] : doorbell.ring(c->fd[home]);
	if (rc == -ECONNREFUSED || rc == -ENOENT) {
		if (c->fd[home] >= 0)
			close(c->fd[home]);
		c->fd[home] = -1;
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

void lfipc__poll_ring(lfipc_region *r, struct lfipc_wq *wq)
{
	uint32_t off = (uint32_t)lfipc__off(r, wq);

	for (uint32_t i = 0; i < r->poll_cap; i++) {
		struct lfipc_poll_entry *e = entry(r, i);
		/* R1a: seq_cst, read once; the fields after it were stored
		 * before the arm we see (Q3). */
		uint64_t st = atomic_load(&e->state);
		uint32_t g = GEN(st), home, hg, tok;
		int rc;

		if (!(g & 1u) || ARMED(st) != 1 ||
		    atomic_load(&e->obj_off) != off)
			continue;
		home = atomic_load(&e->home);
		hg = atomic_load(&e->home_gen);
		tok = atomic_load(&e->token);
		/* R1: seq_cst CAS armed 1 -> 0 of this incarnation only. */
		if (!atomic_compare_exchange_strong(&e->state, &st,
						    STATE(g, 0)))
			continue;
		poller_count_down(wq);
		if (home >= r->poll_cap)
			continue; /* forged: nobody to ring */
		rc = ring(r, home, hg);
		if ((rc == -ECONNREFUSED || rc == -ENOENT) &&
		    !lfipc__token_alive(r, tok))
			release(r, i, g); /* its poller died */
	}
}

int lfipc__poll_reclaim(lfipc_region *r)
{
	int n = 0;

	for (uint32_t i = 0; i < r->poll_cap; i++) {
		/* Q5: seq_cst */
		uint64_t st = atomic_load(&entry(r, i)->state);

		if ((GEN(st) & 1u) &&
		    !lfipc__token_alive(r, atomic_load(&entry(r, i)->token)) &&
		    release(r, i, GEN(st)))
			n++;
	}
	return n;
}
