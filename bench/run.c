/* SPDX-License-Identifier: MIT */
/*
 * lfipc-bench runners: the ping-pong and the streaming run, the same for
 * every channel peer (floors included), so that every row of a table is
 * measured by the same processes, pinning, message size, timing and loop.
 */
#include "config.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* ---- ping-pong ----------------------------------------------------------- */

static int pp_child(struct job *j)
{
	char m[MAXMSG];
	struct wclock w;

	start_child(j->cpu);
	wait_start(&w);
	for (long i = 0; i < j->warm + j->n; i++) {
		if (j->p->recv(j->ch, 0, m, j->msz) ||
		    !check(m, j->msz, (uint64_t)i))
			return -1;
		if (j->p->send(j->ch, 1, m, j->msz))
			return -1;
	}
	wait_end(&w);
	return 0;
}

int run_pingpong(const struct peer *p, size_t msz, long n, uint64_t delay,
		 double *lat)
{
	char m[MAXMSG];
	struct job j = {.fn = pp_child,
			.p = p,
			.msz = msz,
			.n = n,
			.warm = n / 10 + 10,
			.cpu = 1,
			.thr = p->flags & PF_THREADS};
	volatile int bad = 0;
	volatile long i = 0;
	struct wclock w = {.fd = -1};

	j.ch = p->open(msz);
	if (!j.ch)
		return -1;
	reset_sync();
	pin(0);
	if (spawn(&j)) {
		p->close(j.ch);
		return -1;
	}
	RUN_ARM(bad, bad, HANG_SEC);
	if (!bad) {
		start_parent(1);
		wait_start(&w);
		for (i = 0; i < j.warm + n && !bad; i++) {
			uint64_t t0;

			if (delay)
				spin_ns(delay);
			t0 = now_ns();
			fill_tx(m, msz, (uint64_t)i);
			if (p->send(j.ch, 0, m, msz) ||
			    p->recv(j.ch, 1, m, msz) ||
			    !check(m, msz, (uint64_t)i))
				bad = 1;
			if (i >= j.warm)
				lat[i - j.warm] = (double)(now_ns() - t0);
		}
		wait_end(&w);
	}
	RUN_DISARM();
	if (bad)
		stop(&j);
	if (join(&j))
		bad = 1;
	p->close(j.ch);
	if (bad)
		return -1;
	qsort(lat, (size_t)n, sizeof(*lat), cmpd);
	return 0;
}

struct pp_ctx {
	const struct peer *p;
	size_t msz;
	long n;
	uint64_t delay;
};

static int pp_rep(void *ctx, double *lat)
{
	struct pp_ctx *c = ctx;

	return run_pingpong(c->p, c->msz, c->n, c->delay, lat);
}

void pingpong_table(const char *table, const size_t *sizes, int nsz, long n_all,
		    uint64_t delay)
{
	long per = n_all / opt.reps > 100 ? n_all / opt.reps : 100;
	static struct pp_ctx c[MAXPEERS];
	struct row *r[MAXPEERS];
	void *ctx[MAXPEERS];

	for (int s = 0; s < nsz; s++) {
		char param[32];
		int n;

		snprintf(param, sizeof(param), "%zu B", sizes[s]);
		/* a doorbell carries its 8-byte count: first size only */
		n = peer_rows(r, ctx, table, "ns", param, PF_CHAN,
			      PF_BURST | (s ? PF_COUNT : 0));
		for (int i = 0; i < n; i++) {
			c[i] = (struct pp_ctx){ctx[i], sizes[s], per, delay};
			ctx[i] = &c[i];
			r[i]->nv = 5;
			r[i]->lower_better = true;
		}
		repeat_pooled(r, ctx, n, per, pp_rep);
	}
}

/* ---- streaming ------------------------------------------------------------
 *
 * P producers and C consumers, all worker processes (threads for an
 * in-process peer), worker k pinned to CPU k + 1 mod cores; the parent only
 * sleeps until the consumers are done, so it never takes a worker's CPU.
 * Two phases, each ended by one mark per consumer sent by the last producer
 * to finish it: a warm-up of n / 10 messages per producer, then, after a
 * barrier of all workers (whose release is t0), the n measured messages;
 * the figure is P * n / (t0 .. the last consumer's end). Every message is
 * (producer << 40 | i); with one consumer every producer's numbers must
 * arrive consecutively, with several strictly increasing, and at the end
 * the consumers' count and sum must equal what was sent.
 */

#define WARM_MARK (UINT64_MAX - 1)
#define END_MARK UINT64_MAX

struct stream {
	_Atomic uint64_t count, sum, t0;
	atomic_int bad, pwarm, pdone;
	atomic_uint arrived, go, cdone; /* go, cdone: futex words */
	struct {
		_Atomic uint64_t n;
		char pad[56];
	} got[MAXW]; /* per consumer: measured messages received so far */
};
static struct stream *st;

/* All P + C workers meet between the phases; the last one stamps t0. */
static int barrier(int n)
{
	struct timespec slice = {0, 10000000};
	uint64_t end = now_ns() + 20000;

	if ((int)atomic_fetch_add(&st->arrived, 1) == n - 1) {
		atomic_store(&st->t0, now_ns());
		atomic_store(&st->go, 1);
		futex_op(&st->go, FUTEX_WAKE, INT32_MAX, NULL);
		return 0;
	}
	while (!atomic_load(&st->go)) {
		if (aborted())
			return -1;
		if (now_ns() < end)
			relax();
		else
			futex_op(&st->go, FUTEX_WAIT, 0, &slice);
	}
	return 0;
}

/* Send one mark to each consumer. */
static int marks(struct job *j, uint64_t mark)
{
	char m[MAXMSG];

	for (int k = 0; k < j->C; k++) {
		fill(m, j->msz, mark);
		if (j->p->send(j->ch, 0, m, j->msz))
			return -1;
	}
	return 0;
}

/* Send messages [from, to) of producer j->k (in bursts if the peer has). */
static int produce(struct job *j, long from, long to)
{
	char m[MAXBURST][MAXMSG];
	const void *ptr[MAXBURST];
	const struct peer *p = j->p;
	uint64_t tag = (uint64_t)j->k << 40;

	for (long i = from; i < to;) {
		int k = 1, got;

		if (p->burst)
			k = (int)(to - i < p->burst ? to - i : p->burst);
		for (int x = 0; x < k; x++) {
			fill_tx(m[x], j->msz, tag | (uint64_t)(i + x));
			ptr[x] = m[x];
		}
		if (p->burst)
			got = p->send_many(j->ch, 0, ptr, j->msz, k);
		else
			got = p->send(j->ch, 0, m[0], j->msz) ? -1 : 1;
		if (got < 1)
			return -1;
		i +=
		    got; /* an unsent tail of the burst is rebuilt next round */
	}
	return 0;
}

struct cstate {
	uint64_t last[MAXW], cnt, sum, marks;
	bool one; /* the only consumer: numbers must be consecutive */
};

/* Receive until this consumer has its mark; count measured messages. */
static int consume(struct job *j, struct cstate *cs, uint64_t mark,
		   bool measured)
{
	char m[MAXBURST][MAXMSG];
	const struct peer *p = j->p;
	uint64_t got_n = 0, shown = 0;
	int ci = j->k - j->P;

	for (;;) {
		int k;

		if (p->burst)
			k = p->recv_many(j->ch, 0, m, j->msz, p->burst);
		else
			k = p->recv(j->ch, 0, m[0], j->msz) ? -1 : 1;
		if (k < 1)
			return -1;
		for (int x = 0; x < k; x++) {
			uint64_t v, i;
			unsigned pr;

			memcpy(&v, m[x], 8);
			if (v == mark) {
				cs->marks++;
				continue;
			}
			pr = (unsigned)(v >> 40);
			i = v & SEQ_MASK;
			if (pr >= (unsigned)j->P) {
				atomic_store(&st->bad, 1);
				continue;
			}
			if (cs->marks || !check(m[x], j->msz, v) ||
			    (cs->one ? i != cs->last[pr] + 1
				     : cs->last[pr] != UINT64_MAX &&
					   i <= cs->last[pr]))
				atomic_store(&st->bad, 1);
			cs->last[pr] = i;
			cs->cnt++;
			cs->sum += v;
			got_n++;
		}
		if (measured && (got_n - shown >= 64 || cs->marks)) {
			/* relaxed: a progress count (every 64 messages) the
			 * parent reads only after the deadline, to compute a
			 * rate; it orders nothing. */
			atomic_store_explicit(&st->got[ci].n, got_n,
					      memory_order_relaxed);
			shown = got_n;
		}
		if (cs->marks) {
			/* a burst took other consumers' marks: pass them on */
			for (; cs->marks > 1; cs->marks--) {
				fill(m[0], j->msz, mark);
				if (p->send(j->ch, 0, m[0], j->msz))
					return -1;
			}
			cs->marks = 0;
			return 0;
		}
	}
}

static int stream_worker(struct job *j)
{
	int n = j->P + j->C;
	struct wclock w;

	start_child(j->cpu);
	if (j->k < j->P) {
		if (produce(j, 0, j->warm))
			return -1;
		if (atomic_fetch_add(&st->pwarm, 1) == j->P - 1 &&
		    marks(j, WARM_MARK))
			return -1;
		if (barrier(n))
			return -1;
		wait_start(&w);
		if (produce(j, j->warm, j->warm + j->n))
			return -1;
		wait_end(&w);
		if (atomic_fetch_add(&st->pdone, 1) == j->P - 1 &&
		    marks(j, END_MARK))
			return -1;
		return 0;
	}
	struct cstate cs = {.one = j->C == 1};

	for (int p = 0; p < j->P; p++)
		cs.last[p] = UINT64_MAX; /* none yet; UINT64_MAX + 1 is 0 */
	if (consume(j, &cs, WARM_MARK, false) || barrier(n))
		return -1;
	wait_start(&w);
	if (consume(j, &cs, END_MARK, true))
		return -1;
	wait_end(&w);
	atomic_fetch_add(&st->count, cs.cnt);
	atomic_fetch_add(&st->sum, cs.sum);
	note_end();
	atomic_fetch_add(&st->cdone, 1);
	futex_op(&st->cdone, FUTEX_WAKE, 1, NULL);
	return 0;
}

/*
 * Sleep until the consumers are done: 0; -1 a worker failed; 1 the
 * deadline end passed.
 */
static int wait_consumers(int C, uint64_t end)
{
	for (;;) {
		unsigned v = atomic_load(&st->cdone);
		uint64_t t = now_ns();
		struct timespec d;

		if ((int)v >= C)
			return 0;
		if (aborted())
			return -1;
		if (t >= end)
			return 1;
		t = end - t < 10000000 ? end - t : 10000000;
		d.tv_sec = 0;
		d.tv_nsec = (long)t;
		futex_op(&st->cdone, FUTEX_WAIT, v, &d);
	}
}

double run_stream(const struct peer *p, size_t msz, int P, int C, long n,
		  bool *dl)
{
	static struct job j[MAXW];
	int bad = 0, dead = 0, started = 0, rc;
	uint64_t t0, t1, want = 0, got = 0, end;
	long warm = n / 10;
	void *ch;

	*dl = false;
	if (P + C > MAXW || P > MAXW || C > MAXW)
		return -1;
	if (!st)
		st = shmem(sizeof(*st));
	memset(st, 0, sizeof(*st));
	ch = p->open(msz);
	if (!ch)
		return -1;
	reset_sync();
	pin(0);
	for (int k = 0; k < P + C && !bad; k++) {
		j[k] = (struct job){.fn = stream_worker,
				    .p = p,
				    .ch = ch,
				    .msz = msz,
				    .n = n,
				    .warm = warm,
				    .k = k,
				    .P = P,
				    .C = C,
				    .cpu = k + 1,
				    .thr = p->flags & PF_THREADS};
		if (spawn(&j[k]))
			bad = 1;
		else
			started = k + 1;
	}
	if (!bad) {
		start_parent(P + C);
		end = now_ns() + (uint64_t)(opt.deadline * 1e9);
		rc = wait_consumers(C, end);
		if (rc < 0)
			bad = 1;
		else if (rc > 0)
			dead = 1;
	}
	t1 = now_ns();
	if (bad || dead)
		for (int k = 0; k < started; k++)
			stop(&j[k]);
	for (int k = 0; k < started; k++)
		if (join(&j[k]) && !dead)
			bad = 1;
	p->close(ch);
	t0 = atomic_load(&st->t0);
	if (bad || atomic_load(&st->bad))
		return -1;
	if (dead) {
		*dl = true;
		if (!t0)
			return 0; /* it collapsed in the warm-up */
		for (int k = 0; k < C; k++)
			got += atomic_load(&st->got[k].n);
		return (double)got / ((double)(t1 - t0) / 1e3);
	}
	for (int pr = 0; pr < P; pr++)
		for (long i = 0; i < warm + n; i++)
			want += ((uint64_t)pr << 40) | (uint64_t)i;
	if (atomic_load(&st->count) != (uint64_t)P * (uint64_t)(warm + n) ||
	    atomic_load(&st->sum) != want)
		return -1;
	return (double)P * (double)n /
	       ((double)(atomic_load(&sy->t_end) - t0) / 1e3);
}

struct stream_ctx {
	const struct peer *p;
	size_t msz;
	int P, C;
};

static double stream_rep(void *ctx, bool *dl)
{
	struct stream_ctx *c = ctx;

	return run_stream(c->p, c->msz, c->P, c->C, opt.tp_n / c->P, dl);
}

void stream_table(const char *table, int P, int C, const size_t *sizes, int nsz,
		  unsigned all, unsigned none, bool bare_param)
{
	static struct stream_ctx c[MAXPEERS];
	struct row *r[MAXPEERS];
	void *ctx[MAXPEERS];

	for (int s = 0; s < nsz; s++) {
		char param[40];
		int n;

		if (bare_param)
			snprintf(param, sizeof(param), "%zu B", sizes[s]);
		else
			snprintf(param, sizeof(param), "%dx%d %zu B", P, C,
				 sizes[s]);
		n = peer_rows(r, ctx, table, "Mmsg/s", param, PF_CHAN | all,
			      PF_PINGPONG | none);
		for (int i = 0; i < n; i++) {
			c[i] = (struct stream_ctx){ctx[i], sizes[s], P, C};
			ctx[i] = &c[i];
		}
		repeat_rows(r, ctx, n, 0, stream_rep);
	}
}
