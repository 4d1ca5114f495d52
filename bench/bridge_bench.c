/* SPDX-License-Identifier: MIT */
/*
 * bridge_bench - lfipc-bridge against raw ZeroMQ PUSH/PULL over loopback
 * TCP, in one run (doc/bridge.md, Numbers).
 *
 *   bridge_bench [-n MESSAGES] [-r REPEATS] [-l LATENCY_SAMPLES]
 *
 * Throughput: a producer thread puts n messages of 64 B, then of 4 KiB,
 * into a Queue; the bridge's sender and receiver (threads, each with its
 * own ZeroMQ context) move them to a second Queue; a consumer thread takes
 * them. Raw ZeroMQ moves the same messages from a PUSH to a PULL socket,
 * one ZeroMQ message per message, and packed the way the bridge packs them
 * (up to 256 messages or 256 KiB per ZeroMQ message). Raw ZeroMQ gets a
 * context (I/O thread) per side, as two hosts have. Latency: one message at a
 * time, the next sent when the last arrived; one-way time from before the put
 * (send) to after the get (recv) on CLOCK_MONOTONIC. Each figure is the median
 * of the repeats, with min..max.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include <lfipc.h>
#include <lfipc/bridge.h>

#define BATCH 256
#define BATCH_BYTES ((size_t)256 << 10) /* the bridge's default */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "bridge_bench: %s: %s\n", what,
		rc < 0 ? lfipc_strerror(rc) : zmq_strerror(zmq_errno()));
	exit(1);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of the n samples v (and their 99th percentile in *p99);
 * frees v. */
static double p50_free(double *v, int n, double *p99)
{
	double p50;

	qsort(v, (size_t)n, sizeof(double), cmp_d);
	p50 = v[n / 2];
	*p99 = v[n * 99 / 100];
	free(v);
	return p50;
}

/* ---- the bridge -----------------------------------------------------------
 */

struct world {
	char src[64], dst[64];
	lfipc_region *rs, *rd;
	lfipc_queue *qs, *qd;
	lfipc_bridge *tx, *rx;
	pthread_t ttx, trx;
};

static void *run_bridge(void *arg)
{
	int rc = lfipc_bridge_run(arg);

	if (rc && rc != -EINTR)
		die("lfipc_bridge_run", rc);
	return NULL;
}

static void world_up(struct world *w, size_t size)
{
	lfipc_bridge_opts o = {.insecure = true, .batch = BATCH};
	char ep[256];
	int rc;

	snprintf(w->src, sizeof(w->src), "/lfipc-bb-%ld-s", (long)getpid());
	snprintf(w->dst, sizeof(w->dst), "/lfipc-bb-%ld-d", (long)getpid());
	if ((rc = lfipc_region_create(w->src, 64 << 20, 0600, &w->rs)) ||
	    (rc = lfipc_region_create(w->dst, 64 << 20, 0600, &w->rd)) ||
	    (rc = lfipc_queue_create(w->rs, "q", 4096, size, 0, &w->qs)) ||
	    (rc = lfipc_queue_create(w->rd, "q", 4096, size, 0, &w->qd)) ||
	    (rc = lfipc_bridge_recv_open(w->rd, "q", "tcp://127.0.0.1:*", &o,
					 &w->rx)) ||
	    (rc = lfipc_bridge_endpoint(w->rx, ep, sizeof(ep))) ||
	    (rc = lfipc_bridge_send_open(w->rs, "q", ep, &o, &w->tx)))
		die("set up the bridge", rc);
	pthread_create(&w->trx, NULL, run_bridge, w->rx);
	pthread_create(&w->ttx, NULL, run_bridge, w->tx);
}

static void world_down(struct world *w)
{
	lfipc_queue_shutdown(w->qs); /* the end of stream stops both */
	pthread_join(w->ttx, NULL);
	pthread_join(w->trx, NULL);
	lfipc_bridge_close(w->tx);
	lfipc_bridge_close(w->rx);
	lfipc_queue_close(w->qs);
	lfipc_queue_close(w->qd);
	lfipc_region_close(w->rs);
	lfipc_region_close(w->rd);
	lfipc_region_unlink(w->src);
	lfipc_region_unlink(w->dst);
}

struct prod {
	lfipc_queue *q;
	long n;
	size_t size;
};

static void *producer(void *arg)
{
	struct prod *p = arg;
	char *buf = calloc(1, p->size);

	for (long i = 0; i < p->n; i++) {
		memcpy(buf, &i, sizeof(i));
		if (lfipc_queue_put(p->q, buf, p->size, LFIPC_FOREVER))
			die("put", -EIO);
	}
	free(buf);
	return NULL;
}

/* Messages per second through the bridge. */
static double bridge_tput(size_t size, long n)
{
	struct world w;
	struct prod p;
	pthread_t t;
	char *bufs = malloc(64 * size);
	size_t lens[64];
	long got = 0;
	int64_t t0;

	world_up(&w, size);
	p = (struct prod){w.qs, n, size};
	t0 = now_ns();
	pthread_create(&t, NULL, producer, &p);
	while (got < n) {
		int k = lfipc_queue_get_many(w.qd, bufs, size, lens, 64,
					     INT64_C(30000000000));

		if (k < 0)
			die("get", k);
		got += k;
	}
	t0 = now_ns() - t0;
	pthread_join(t, NULL);
	world_down(&w);
	free(bufs);
	return (double)n * 1e9 / (double)t0;
}

static double bridge_lat(size_t size, int samples, double *p99)
{
	struct world w;
	double *v = malloc(sizeof(double) * (size_t)samples);
	char *buf = calloc(1, size);
	size_t len;

	world_up(&w, size);
	for (int i = -100; i < samples; i++) { /* 100 to warm up */
		int64_t t0 = now_ns();

		if (lfipc_queue_put(w.qs, buf, size, LFIPC_FOREVER) ||
		    lfipc_queue_get(w.qd, buf, size, &len,
				    INT64_C(30000000000)))
			die("latency", -EIO);
		if (i >= 0)
			v[i] = (double)(now_ns() - t0) / 1000.0;
	}
	world_down(&w);
	free(buf);
	return p50_free(v, samples, p99);
}

/* ---- raw ZeroMQ PUSH/PULL ------------------------------------------------ */

/* Two contexts, as two hosts have: each side its own I/O thread. */
struct raw {
	void *ctx, *ctx2, *push, *pull;
};

static void raw_up(struct raw *z)
{
	char ep[256];
	size_t len = sizeof(ep);

	z->ctx = zmq_ctx_new();
	z->ctx2 = zmq_ctx_new();
	z->push = zmq_socket(z->ctx2, ZMQ_PUSH);
	z->pull = zmq_socket(z->ctx, ZMQ_PULL);
	if (zmq_bind(z->pull, "tcp://127.0.0.1:*") ||
	    zmq_getsockopt(z->pull, ZMQ_LAST_ENDPOINT, ep, &len) ||
	    zmq_connect(z->push, ep))
		die("zmq set up", 1);
}

static void raw_down(struct raw *z)
{
	int zero = 0;

	zmq_setsockopt(z->push, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_close(z->push);
	zmq_close(z->pull);
	zmq_ctx_term(z->ctx);
	zmq_ctx_term(z->ctx2);
}

struct rawp {
	void *push;
	long n;
	size_t size;
	int batch;
};

static void *raw_sender(void *arg)
{
	struct rawp *p = arg;
	size_t rec = 4 + p->size;
	char *buf = calloc((size_t)p->batch, rec);

	for (long i = 0; i < p->n;) {
		int k = 0;

		/* the bridge's limits: BATCH messages, BATCH_BYTES bytes */
		while (k < p->batch && i < p->n &&
		       (k == 0 || (size_t)(k + 1) * p->size <= BATCH_BYTES)) {
			uint32_t l = (uint32_t)p->size;

			memcpy(buf + (size_t)k * rec, &l, 4);
			memcpy(buf + (size_t)k * rec + 4, &i, sizeof(i));
			k++;
			i++;
		}
		if (p->batch == 1) {
			if (zmq_send(p->push, buf + 4, p->size, 0) < 0)
				die("zmq_send", 1);
		} else if (zmq_send(p->push, buf, (size_t)k * rec, 0) < 0) {
			die("zmq_send", 1);
		}
	}
	free(buf);
	return NULL;
}

/* Messages per second through PUSH/PULL, batch messages per ZeroMQ
 * message; the receiver unpacks (copies out) each one, as a consumer of
 * the bridge gets each one. */
static double raw_tput(size_t size, long n, int batch)
{
	struct raw z;
	struct rawp p;
	pthread_t t;
	zmq_msg_t m;
	char *out = malloc(size);
	long got = 0;
	int64_t t0;

	raw_up(&z);
	p = (struct rawp){z.push, n, size, batch};
	zmq_msg_init(&m);
	t0 = now_ns();
	pthread_create(&t, NULL, raw_sender, &p);
	while (got < n) {
		const char *d;
		size_t len, at = 0;

		if (zmq_msg_recv(&m, z.pull, 0) < 0)
			die("zmq_recv", 1);
		d = zmq_msg_data(&m);
		len = zmq_msg_size(&m);
		if (batch == 1) {
			memcpy(out, d, len);
			got++;
			continue;
		}
		while (at + 4 <= len) {
			uint32_t l;

			memcpy(&l, d + at, 4);
			memcpy(out, d + at + 4, l);
			at += 4 + l;
			got++;
		}
	}
	t0 = now_ns() - t0;
	pthread_join(t, NULL);
	zmq_msg_close(&m);
	raw_down(&z);
	free(out);
	return (double)n * 1e9 / (double)t0;
}

static double raw_lat(size_t size, int samples, double *p99)
{
	struct raw z;
	double *v = malloc(sizeof(double) * (size_t)samples);
	char *buf = calloc(1, size);

	raw_up(&z);
	for (int i = -100; i < samples; i++) {
		int64_t t0 = now_ns();

		if (zmq_send(z.push, buf, size, 0) < 0 ||
		    zmq_recv(z.pull, buf, size, 0) < 0)
			die("zmq latency", 1);
		if (i >= 0)
			v[i] = (double)(now_ns() - t0) / 1000.0;
	}
	raw_down(&z);
	free(buf);
	return p50_free(v, samples, p99);
}

/* ---- report ------------------------------------------------------------- */

struct fig {
	double med, lo, hi;
};

static struct fig summarise(double *v, int r)
{
	struct fig f;

	qsort(v, (size_t)r, sizeof(double), cmp_d);
	f.med = v[r / 2];
	f.lo = v[0];
	f.hi = v[r - 1];
	return f;
}

int main(int argc, char **argv)
{
	long n = 1000000;
	int reps = 5, samples = 5000, c;
	const size_t sizes[] = {64, 4096};

	while ((c = getopt(argc, argv, "n:r:l:")) != -1) {
		switch (c) {
		case 'n':
			n = atol(optarg);
			break;
		case 'r':
			reps = atoi(optarg);
			break;
		case 'l':
			samples = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: bridge_bench [-n MESSAGES] "
					"[-r REPEATS] [-l LATENCY_SAMPLES]\n");
			return 2;
		}
	}
	if (n < 1 || reps < 1 || samples < 100)
		return 2;
	printf("# lfipc-bridge vs raw ZeroMQ PUSH/PULL, tcp://127.0.0.1, "
	       "%ld messages x %d repeats, %d latency samples; "
	       "median [min..max]\n",
	       n, reps, samples);
	for (size_t s = 0; s < 2; s++) {
		size_t size = sizes[s];
		double b[64], r1[64], rb[64], bl[64], rl[64], b99[64], r99[64];
		struct fig fb, f1, fbb, fbl, frl, fb99, fr99;
		long ns = size > 1024 ? n / 4 : n;

		if (reps > 64)
			reps = 64;
		for (int i = 0; i < reps; i++) { /* interleaved: same load */
			b[i] = bridge_tput(size, ns) / 1e6;
			rb[i] = raw_tput(size, ns, BATCH) / 1e6;
			r1[i] = raw_tput(size, ns, 1) / 1e6;
			bl[i] = bridge_lat(size, samples, &b99[i]);
			rl[i] = raw_lat(size, samples, &r99[i]);
		}
		fb = summarise(b, reps);
		fbb = summarise(rb, reps);
		f1 = summarise(r1, reps);
		fbl = summarise(bl, reps);
		frl = summarise(rl, reps);
		fb99 = summarise(b99, reps);
		fr99 = summarise(r99, reps);
		printf("\n%zu-byte messages (%ld per throughput run)\n", size,
		       ns);
		printf("  throughput, M msg/s: bridge %.3f [%.3f..%.3f]  "
		       "raw batched %.3f [%.3f..%.3f]  raw one-per-message "
		       "%.3f [%.3f..%.3f]\n",
		       fb.med, fb.lo, fb.hi, fbb.med, fbb.lo, fbb.hi, f1.med,
		       f1.lo, f1.hi);
		printf("  bridge / raw batched = %.2f   bridge / raw "
		       "one-per-message = %.2f\n",
		       fb.med / fbb.med, fb.med / f1.med);
		printf("  latency p50, us: bridge %.1f [%.1f..%.1f]  raw %.1f "
		       "[%.1f..%.1f]  added %.1f\n",
		       fbl.med, fbl.lo, fbl.hi, frl.med, frl.lo, frl.hi,
		       fbl.med - frl.med);
		printf("  latency p99, us: bridge %.1f  raw %.1f\n", fb99.med,
		       fr99.med);
	}
	return 0;
}
