/* SPDX-License-Identifier: MIT */
/*
 * queue_bench - the numbers issue 3 asks for: put+get throughput (8 B and
 * 256 B, 1P1C and 2P2C processes) of lfipc_queue against a bare SPSC ring
 * and Concurrency Kit's ck_ring (spsc, mpmc) placed in the same kind of
 * shared memory; clear time for 10 and 1,000,000 messages and the first
 * put+get after it; ping-pong round trip (busy and sleeping); and
 * lfipc_queue_put_many / get_many in bursts of 8 and 32 next to single
 * put / get (8 B, 1P1C and 2P2C).
 *
 * Usage: queue_bench [reps] [messages] [bulk]   (medians over reps, with
 * the min..max of the reps after each; "bulk" runs only the bulk table)
 */
#include <ck_ring.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lfipc/queue.h>
#include <lfipc/region.h>

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Sorts v: afterwards v[0] is the minimum and v[n - 1] the maximum. */
static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return v[n / 2];
}

static void *shm(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

/* ---- the channels ---------------------------------------------------- */

#define RING 1024
#define MAXMSG 256

/* Bare SPSC ring of fixed slots (the floor). */
struct spsc {
	_Alignas(128) _Atomic uint64_t head;
	_Alignas(128) _Atomic uint64_t tail;
	_Alignas(128) unsigned char slot[RING][MAXMSG];
};

/* ck_ring with a shared buffer of fixed slots and a free list ring. */
struct ckq {
	ck_ring_t ring, free;
	ck_ring_buffer_t rb[RING], fb[RING];
	unsigned char slot[RING][MAXMSG];
};

enum kind { K_LFIPC, K_SPSC, K_CK_SPSC, K_CK_MPMC };
static const char *kname[] = {"lfipc_queue", "bare_spsc", "ck_ring_spsc",
			      "ck_ring_mpmc"};

struct chan {
	enum kind k;
	lfipc_queue *q;
	struct spsc *s;
	struct ckq *c;
	size_t msg;
};

static void ch_put(struct chan *ch, const void *m)
{
	switch (ch->k) {
	case K_LFIPC:
		while (lfipc_queue_put(ch->q, m, ch->msg, LFIPC_FOREVER))
			;
		break;
	case K_SPSC: {
		uint64_t t =
		    atomic_load_explicit(&ch->s->tail, memory_order_relaxed);
		while (t - atomic_load_explicit(&ch->s->head,
						memory_order_acquire) >=
		       RING)
			;
		memcpy(ch->s->slot[t % RING], m, ch->msg);
		atomic_store_explicit(&ch->s->tail, t + 1,
				      memory_order_release);
		break;
	}
	case K_CK_SPSC:
	case K_CK_MPMC: {
		void *idx;
		bool mp = ch->k == K_CK_MPMC;

		while (
		    !(mp ? ck_ring_dequeue_mpmc(&ch->c->free, ch->c->fb, &idx)
			 : ck_ring_dequeue_spsc(&ch->c->free, ch->c->fb, &idx)))
			;
		memcpy(ch->c->slot[(uintptr_t)idx], m, ch->msg);
		while (
		    !(mp ? ck_ring_enqueue_mpmc(&ch->c->ring, ch->c->rb, idx)
			 : ck_ring_enqueue_spsc(&ch->c->ring, ch->c->rb, idx)))
			;
		break;
	}
	}
}

static void ch_get(struct chan *ch, void *m)
{
	switch (ch->k) {
	case K_LFIPC:
		while (lfipc_queue_get(ch->q, m, MAXMSG, NULL, LFIPC_FOREVER))
			;
		break;
	case K_SPSC: {
		uint64_t h =
		    atomic_load_explicit(&ch->s->head, memory_order_relaxed);
		while (atomic_load_explicit(&ch->s->tail,
					    memory_order_acquire) == h)
			;
		memcpy(m, ch->s->slot[h % RING], ch->msg);
		atomic_store_explicit(&ch->s->head, h + 1,
				      memory_order_release);
		break;
	}
	case K_CK_SPSC:
	case K_CK_MPMC: {
		void *idx;
		bool mp = ch->k == K_CK_MPMC;

		while (
		    !(mp ? ck_ring_dequeue_mpmc(&ch->c->ring, ch->c->rb, &idx)
			 : ck_ring_dequeue_spsc(&ch->c->ring, ch->c->rb, &idx)))
			;
		memcpy(m, ch->c->slot[(uintptr_t)idx], ch->msg);
		while (
		    !(mp ? ck_ring_enqueue_mpmc(&ch->c->free, ch->c->fb, idx)
			 : ck_ring_enqueue_spsc(&ch->c->free, ch->c->fb, idx)))
			;
		break;
	}
	}
}

static lfipc_region *reg;
static int qn;

static void ch_make(struct chan *ch, enum kind k, size_t msg)
{
	char name[32];

	memset(ch, 0, sizeof(*ch));
	ch->k = k;
	ch->msg = msg;
	if (k == K_LFIPC) {
		snprintf(name, sizeof(name), "b%d", qn++);
		if (lfipc_queue_create(reg, name, RING, MAXMSG, 0, &ch->q)) {
			fprintf(stderr, "queue_create failed\n");
			exit(1);
		}
	} else if (k == K_SPSC) {
		ch->s = shm(sizeof(*ch->s));
	} else {
		ch->c = shm(sizeof(*ch->c));
		ck_ring_init(&ch->c->ring, RING);
		ck_ring_init(&ch->c->free, RING);
		/* A ck ring of size N holds N - 1 entries. Fill the free
		 * list with the enqueue its users will use: the spsc one
		 * moves only p_tail, and the mpmc one reserves through
		 * p_head, so after an spsc fill every mpmc enqueue of a
		 * returned index fails and the run never ends. */
		for (uintptr_t i = 0; i < RING - 1; i++) {
			if (k == K_CK_MPMC)
				ck_ring_enqueue_mpmc(&ch->c->free, ch->c->fb,
						     (void *)i);
			else
				ck_ring_enqueue_spsc(&ch->c->free, ch->c->fb,
						     (void *)i);
		}
	}
}

static void ch_free(struct chan *ch)
{
	if (ch->q)
		lfipc_queue_close(ch->q);
	if (ch->s)
		munmap(ch->s, sizeof(*ch->s));
	if (ch->c)
		munmap(ch->c, sizeof(*ch->c));
}

/* np producers and nc consumer processes move n messages; Mmsg/s. */
static double throughput(enum kind k, size_t msg, int np, int nc, long n)
{
	struct chan ch;
	pid_t pids[8];
	int64_t t0, t1;
	_Atomic int *go = shm(4096);

	ch_make(&ch, k, msg);
	for (int i = 0; i < np + nc; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			unsigned char m[MAXMSG] = {1};
			long cnt = i < np ? n / np : n / nc;

			while (!atomic_load(go))
				;
			for (long j = 0; j < cnt; j++) {
				if (i < np)
					ch_put(&ch, m);
				else
					ch_get(&ch, m);
			}
			_exit(0);
		}
	}
	t0 = now_ns();
	atomic_store(go, 1);
	for (int i = 0; i < np + nc; i++)
		waitpid(pids[i], NULL, 0);
	t1 = now_ns();
	ch_free(&ch);
	munmap((void *)go, 4096);
	return (double)(n / np * np) / ((double)(t1 - t0) / 1e3);
}

/* np producer and np consumer processes move n messages through an
 * lfipc_queue in bursts of up to `burst` (1: put / get; otherwise put_many
 * / get_many); Mmsg/s. */
static double bulk_throughput(size_t msg, int np, int burst, long n)
{
	struct chan ch;
	pid_t pids[16];
	int64_t t0, t1;
	_Atomic int *go = shm(4096);

	ch_make(&ch, K_LFIPC, msg);
	for (int i = 0; i < 2 * np; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			static unsigned char m[64][MAXMSG];
			const void *mp[64];
			size_t lens[64];
			long cnt = n / np;

			for (int j = 0; j < 64; j++) {
				mp[j] = m[j];
				lens[j] = msg;
			}
			while (!atomic_load(go))
				;
			for (long j = 0; j < cnt;) {
				long b = cnt - j < burst ? cnt - j : burst;
				int rc;

				if (burst == 1 && i < np)
					rc = lfipc_queue_put(ch.q, m[0], msg,
							     LFIPC_FOREVER)
						 ? -1
						 : 1;
				else if (burst == 1)
					rc =
					    lfipc_queue_get(ch.q, m[0], MAXMSG,
							    NULL, LFIPC_FOREVER)
						? -1
						: 1;
				else if (i < np)
					rc = lfipc_queue_put_many(
					    ch.q, mp, lens, (size_t)b,
					    LFIPC_FOREVER);
				else
					rc = lfipc_queue_get_many(
					    ch.q, m, MAXMSG, lens, (size_t)b,
					    LFIPC_FOREVER);
				if (rc > 0)
					j += rc;
			}
			_exit(0);
		}
	}
	t0 = now_ns();
	atomic_store(go, 1);
	for (int i = 0; i < 2 * np; i++)
		waitpid(pids[i], NULL, 0);
	t1 = now_ns();
	ch_free(&ch);
	munmap((void *)go, 4096);
	return (double)(n / np * np) / ((double)(t1 - t0) / 1e3);
}

static void bulk_table(int reps, long n)
{
	double v[64];
	int bursts[3] = {1, 8, 32};

	printf("# lfipc_queue bulk: Mmsg/s, 8 B, median of %d runs of %ld "
	       "msgs (burst 1 = put/get)\n",
	       reps, n);
	printf("%-14s %5s %6s %10s  %s\n", "impl", "PxC", "burst", "Mmsg/s",
	       "min..max");
	for (int pc = 1; pc <= 2; pc++) {
		for (int b = 0; b < 3; b++) {
			for (int i = 0; i < reps; i++)
				v[i] = bulk_throughput(8, pc, bursts[b], n);
			double md = median(v, reps);

			printf("%-14s %3dx%d %6d %10.2f  %.2f..%.2f\n",
			       bursts[b] == 1 ? "put/get" : "put/get_many", pc,
			       pc, bursts[b], md, v[0], v[reps - 1]);
			fflush(stdout);
		}
	}
}

/* ping-pong round trip through two lfipc queues, in ns. */
static double pingpong(bool sleeping, long n)
{
	lfipc_queue *a, *b;
	char name[32], m[8] = {0};
	pid_t pid;
	int64_t t0;

	snprintf(name, sizeof(name), "p%d", qn++);
	lfipc_queue_create(reg, name, 16, 8, 0, &a);
	snprintf(name, sizeof(name), "p%d", qn++);
	lfipc_queue_create(reg, name, 16, 8, 0, &b);
	pid = fork();
	if (pid == 0) {
		for (long i = 0; i < n; i++) {
			if (sleeping)
				while (lfipc_queue_get(a, m, 8, NULL,
						       LFIPC_FOREVER))
					;
			else
				while (lfipc_queue_get(a, m, 8, NULL,
						       LFIPC_NOWAIT))
					;
			lfipc_queue_put(b, m, 8, LFIPC_FOREVER);
		}
		_exit(0);
	}
	t0 = now_ns();
	for (long i = 0; i < n; i++) {
		lfipc_queue_put(a, m, 8, LFIPC_FOREVER);
		if (sleeping) {
			/* give the peer time to fall asleep */
			usleep(50);
			while (lfipc_queue_get(b, m, 8, NULL, LFIPC_FOREVER))
				;
		} else {
			while (lfipc_queue_get(b, m, 8, NULL, LFIPC_NOWAIT))
				;
		}
	}
	double rt = (double)(now_ns() - t0) / (double)n;
	waitpid(pid, NULL, 0);
	lfipc_queue_close(a);
	lfipc_queue_close(b);
	return sleeping ? rt - 50000.0 * 0 : rt;
}

/* clear of `fill` messages: ns for clear, ns for the next put+get. */
static void clear_time(size_t fill, double *tc, double *tpg)
{
	lfipc_queue *q;
	char name[32];
	uint64_t v = 0;
	int64_t t0, t1, t2;

	snprintf(name, sizeof(name), "c%d", qn++);
	if (lfipc_queue_create(reg, name, fill, 8, 0, &q)) {
		fprintf(stderr, "clear queue create failed\n");
		exit(1);
	}
	for (size_t i = 0; i < fill; i++)
		lfipc_queue_put(q, &v, 8, LFIPC_NOWAIT);
	t0 = now_ns();
	int64_t got = lfipc_queue_clear(q);
	t1 = now_ns();
	lfipc_queue_put(q, &v, 8, LFIPC_NOWAIT);
	lfipc_queue_get(q, &v, 8, NULL, LFIPC_NOWAIT);
	t2 = now_ns();
	if (got != (int64_t)fill)
		fprintf(stderr, "clear returned %lld\n", (long long)got);
	*tc = (double)(t1 - t0);
	*tpg = (double)(t2 - t1);
	lfipc_queue_close(q);
	lfipc_object_remove(reg, name);
}

int main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : 5;
	long n = argc > 2 ? atol(argv[2]) : 1000000;
	double v[64];

	if (reps < 1 || reps > 64)
		reps = 5;
	if (lfipc_region_create(NULL, (size_t)256 << 20, 0, &reg)) {
		fprintf(stderr, "region_create failed\n");
		return 1;
	}
	if (argc > 3 && strcmp(argv[3], "bulk") == 0) {
		bulk_table(reps, n);
		lfipc_region_close(reg);
		return 0;
	}
	printf("# put+get throughput, Mmsg/s, median of %d runs of %ld msgs\n",
	       reps, n);
	printf("%-14s %6s %5s %10s  %s\n", "impl", "bytes", "PxC", "Mmsg/s",
	       "min..max");
	size_t sizes[2] = {8, 256};
	for (int si = 0; si < 2; si++) {
		for (int pc = 1; pc <= 2; pc++) {
			for (int k = 0; k < 4; k++) {
				if (pc == 2 && (k == K_SPSC || k == K_CK_SPSC))
					continue;
				for (int i = 0; i < reps; i++)
					v[i] = throughput((enum kind)k,
							  sizes[si], pc, pc, n);
				double md = median(v, reps);

				printf("%-14s %6zu %3dx%d %10.2f  %.2f..%.2f\n",
				       kname[k], sizes[si], pc, pc, md, v[0],
				       v[reps - 1]);
				fflush(stdout);
			}
		}
	}
	bulk_table(reps, n);
	size_t fills[2] = {10, 1000000};
	for (int f = 0; f < 2; f++) {
		double tc[64], tpg[64];

		for (int i = 0; i < reps; i++)
			clear_time(fills[f], &tc[i], &tpg[i]);
		double mc = median(tc, reps), mp = median(tpg, reps);

		printf("clear of %7zu msgs: %8.0f ns (%.0f..%.0f); next "
		       "put+get %6.0f ns (%.0f..%.0f)\n",
		       fills[f], mc, tc[0], tc[reps - 1], mp, tpg[0],
		       tpg[reps - 1]);
	}
	for (int i = 0; i < reps; i++)
		v[i] = pingpong(false, 100000);
	double mb = median(v, reps);

	printf("ping-pong round trip busy:     %8.0f ns (%.0f..%.0f)\n", mb,
	       v[0], v[reps - 1]);
	for (int i = 0; i < reps; i++)
		v[i] = pingpong(true, 2000);
	double ms = median(v, reps);

	printf("ping-pong round trip sleeping: %8.0f ns (%.0f..%.0f; incl. 50 "
	       "us pause)\n",
	       ms, v[0], v[reps - 1]);
	lfipc_region_close(reg);
	return 0;
}
