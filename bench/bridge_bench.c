/* SPDX-License-Identifier: MIT */
/*
 * bridge_bench - lfipc-bridge against raw ZeroMQ PUSH/PULL over loopback
 * TCP, in one run (doc/bridge.md, Numbers).
 *
 *   bridge_bench [-n MESSAGES] [-r REPEATS] [-l LATENCY_SAMPLES] [-s SIZE]
 *                [-t | -L] [-B | -Z] [-P] [-R] [-F] [-T] [-q SLOTS]
 *                [-w WINDOW] [-b BATCH] [-S SPIN_US [-e tx | -e rx]]
 *
 * -s one message size instead of 64 B and 4 KiB; -t throughput only, -L
 * latency only, -B the bridge only, -Z raw ZeroMQ only, -P of raw ZeroMQ
 * only the packed row (the rows not run read 0): for profiling one of
 * them; -q the slots of every Queue of the bench (default: 32768, at
 * most 16 MiB of payload: 4096 at 4 KiB; the bridge's default window,
 * three quarters of the source queue up to 16384, is then 16384 and
 * 3072); -w the bridge's window (default: the bridge's own); -b messages
 * per ZeroMQ message of both the bridge and raw ZeroMQ packed (default
 * 1024, the bridge's own default); -S both sides of the bridge spin up to
 * SPIN_US before they sleep, the sender on its empty source queue, the
 * receiver on its socket (lfipc_bridge_set_spin(); default 0, as the
 * bridge's; before session 21 the sender alone), -e tx only the sender,
 * -e rx only the receiver (the latency lines say which sides spun); -T
 * after each throughput run, the
 * CPU time per message and the context switches of each thread (by
 * name: ZeroMQ's I/O threads are "ZMQbg/IO/0", the consumer is the main
 * thread), from /proc; -R also the relay, -F also the floor (both
 * below).
 *
 * Throughput: a producer thread puts n messages of 64 B, then of 4 KiB,
 * into a Queue, 64 per lfipc_queue_put_many; the bridge's sender and
 * receiver (threads, each with its own ZeroMQ context) move them to a
 * second Queue; a consumer thread takes them, 64 per
 * lfipc_queue_get_many. Raw ZeroMQ moves the same messages from a PUSH to
 * a PULL socket, one ZeroMQ message per message, and packed the way the
 * bridge packs them (up to 1024 messages or 256 KiB per ZeroMQ message,
 * the same records { u32 length, bytes }), its receiver copying each
 * message out as a consumer of the bridge gets a copy. Raw ZeroMQ gets a
 * context (I/O thread) per side, as two hosts have, and its default
 * high-water marks. Also the CPU time of the whole process per message
 * (all its threads), less sensitive to other load than the rates.
 * Latency: one message at a time, the next sent when the last arrived,
 * after a warm-up of a lap of the queues' slots (lat()); one-way time
 * from before the put (send) to after the get (recv) on
 * CLOCK_MONOTONIC. Each figure is the median of the repeats, with
 * min..max. The bridge and raw ZeroMQ take turns at going first, repeat
 * by repeat; "bridge / raw batched" is the ratio of the two medians,
 * "repeat by repeat" the median of each repeat's own ratio (its two runs
 * taken one after the other, under the same load).
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include <lfipc.h>
#include <lfipc/bridge.h>

#define BATCH_DEF 1024
#define BATCH_BYTES ((size_t)256 << 10) /* the bridge's default */

static unsigned window; /* -w; 0: the bridge's default */
static int64_t spin_ns;  /* -S, in us; 0: the bridge's default */
static unsigned spin_sides = 3; /* -e: 1 the sender, 2 the receiver */
static bool per_thread; /* -T: each throughput run's CPU time by thread */
static long qslots; /* -q; 0: slots_for() */
static int pack = BATCH_DEF; /* -b: messages per ZeroMQ message, both paths */

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

/* ---- the two paths, behind one interface ----------------------------------
 *
 * A path moves messages of one size from a sending thread to a receiving
 * one: the bridge (put into a Queue, lfipc-bridge's sender and receiver,
 * get from a second Queue) or raw ZeroMQ (a PUSH and a PULL socket, each
 * in its own context: its own I/O thread, as two hosts have). The
 * throughput and latency loops below are the same for both.
 */
struct path {
	/* bridge */
	char src[64], dst[64];
	lfipc_region *rs, *rd;
	lfipc_queue *qs, *qd;
	lfipc_bridge *tx, *rx;
	pthread_t ttx, trx; /* trx: also the relay's thread */
	/* raw ZeroMQ */
	void *ctx, *ctx2, *push, *pull;
	zmq_msg_t m;
	int batch; /* messages per ZeroMQ message (1: one per message) */
	/* both */
	size_t size;
	char *buf;  /* the receiver's: one message, or 64 for the bridge */
	char *sbuf; /* the sender's: 64 messages, or one packed batch */
};

struct ops {
	const char *name;
	void (*up)(struct path *p); /* allocates buf and sbuf */
	void (*down)(struct path *p);
	/* send n messages (the sending thread) */
	void (*send)(struct path *p, long n);
	/* wait for at least one message, take what is there, return how
	 * many (the receiving thread) */
	long (*recv)(struct path *p);
};

static void *run_bridge(void *arg)
{
	int rc = lfipc_bridge_run(arg);

	if (rc && rc != -EINTR)
		die("lfipc_bridge_run", rc);
	return NULL;
}

/* Slots of each Queue for messages of size bytes: -q, or 32768 up to
 * 16 MiB of payload (room for the bridge's default window of 16384 at
 * 64 B, 4096 slots at 4 KiB). */
static long slots_for(size_t size)
{
	long s = 32768;

	if (qslots)
		return qslots;
	while ((size_t)s * size > ((size_t)16 << 20) && s > 64)
		s /= 2;
	return s;
}

/* The source and destination regions and queues of a path, and the
 * producer's and consumer's buffers. Return: 0 or -errno. */
static int queues_up(struct path *p)
{
	int rc;

	snprintf(p->src, sizeof(p->src), "/lfipc-bb-%ld-s", (long)getpid());
	snprintf(p->dst, sizeof(p->dst), "/lfipc-bb-%ld-d", (long)getpid());
	if ((rc = lfipc_region_create(p->src, 64 << 20, 0600, &p->rs)) ||
	    (rc = lfipc_region_create(p->dst, 64 << 20, 0600, &p->rd)) ||
	    (rc = lfipc_queue_create(p->rs, "q", slots_for(p->size), p->size, 0,
				     &p->qs)) ||
	    (rc = lfipc_queue_create(p->rd, "q", slots_for(p->size), p->size, 0,
				     &p->qd)))
		return rc;
	p->buf = malloc(64 * p->size);
	p->sbuf = calloc(64, p->size);
	return 0;
}

/* Undo queues_up()'s regions and queues (the buffers are the caller's). */
static void queues_down(struct path *p)
{
	lfipc_queue_close(p->qs);
	lfipc_queue_close(p->qd);
	lfipc_region_close(p->rs);
	lfipc_region_close(p->rd);
	lfipc_region_unlink(p->src);
	lfipc_region_unlink(p->dst);
}

static void bridge_up(struct path *p)
{
	lfipc_bridge_opts o = {
	    .insecure = true, .batch = pack, .window = window};
	char ep[256];
	int rc;

	if ((rc = queues_up(p)) ||
	    (rc = lfipc_bridge_recv_open(p->rd, "q", "tcp://127.0.0.1:*", &o,
					 &p->rx)) ||
	    (rc = lfipc_bridge_endpoint(p->rx, ep, sizeof(ep))) ||
	    (rc = lfipc_bridge_send_open(p->rs, "q", ep, &o, &p->tx)) ||
	    (rc = lfipc_bridge_set_spin(p->tx, spin_sides & 1 ? spin_ns : 0)) ||
	    (rc = lfipc_bridge_set_spin(p->rx, spin_sides & 2 ? spin_ns : 0)))
		die("set up the bridge", rc);
	pthread_create(&p->trx, NULL, run_bridge, p->rx);
	pthread_create(&p->ttx, NULL, run_bridge, p->tx);
	pthread_setname_np(p->trx, "bb-recv"); /* for perf and top */
	pthread_setname_np(p->ttx, "bb-send");
}

static void bridge_down(struct path *p)
{
	lfipc_queue_shutdown(p->qs); /* the end of stream stops both */
	pthread_join(p->ttx, NULL);
	pthread_join(p->trx, NULL);
	lfipc_bridge_close(p->tx);
	lfipc_bridge_close(p->rx);
	queues_down(p);
}

/* Up to 64 messages per lfipc_queue_put_many, as the consumer takes them
 * 64 at a time (bridge_recv) and raw ZeroMQ's sender hands a whole batch
 * to ZeroMQ at once: neither end of either path pays a call per message. */
static void bridge_send(struct path *p, long n)
{
	const void *m[64];
	size_t lens[64];

	for (long i = 0; i < n;) {
		int k = 0, rc;

		for (; k < 64 && i + k < n; k++) {
			long v = i + k;

			m[k] = p->sbuf + (size_t)k * p->size;
			lens[k] = p->size;
			memcpy(p->sbuf + (size_t)k * p->size, &v, sizeof(v));
		}
		rc = lfipc_queue_put_many(p->qs, m, lens, (size_t)k,
					  LFIPC_FOREVER);
		if (rc < 1)
			die("put", rc < 0 ? rc : -EIO);
		i += rc; /* the loop builds the rest again */
	}
}

static long bridge_recv(struct path *p)
{
	size_t lens[64];
	int k = lfipc_queue_get_many(p->qd, p->buf, p->size, lens, 64,
				     INT64_C(30000000000));

	if (k < 0)
		die("get", k);
	return k;
}

/* The relay (-R): the bridge's path with ZeroMQ and the network taken
 * out. One thread moves messages from the source Queue to the
 * destination Queue, 64 per lfipc_queue_get_many and put_many: the same
 * two queue hops, the same two sleeping hand-offs (producer to the
 * mover, mover to the consumer) and as many copies as the bridge's
 * sender and receiver make. What the bridge costs above raw ZeroMQ
 * cannot be less than what this costs. */
static void *run_relay(void *arg)
{
	struct path *p = arg;
	const void *m[64];
	size_t lens[64];
	char *buf = malloc(64 * p->size);

	pthread_setname_np(pthread_self(), "bb-relay");
	for (;;) {
		int k = lfipc_queue_get_many(p->qs, buf, p->size, lens, 64,
					     LFIPC_FOREVER);

		if (k == -EPIPE)
			break;
		if (k < 0)
			die("relay get", k);
		for (int i = 0; i < k; i++)
			m[i] = buf + (size_t)i * p->size;
		for (int done = 0; done < k;) {
			int rc = lfipc_queue_put_many(
			    p->qd, m + done, lens + done, (size_t)(k - done),
			    LFIPC_FOREVER);

			if (rc < 1)
				die("relay put", rc < 0 ? rc : -EIO);
			done += rc;
		}
	}
	free(buf);
	return NULL;
}

static void relay_up(struct path *p)
{
	int rc = queues_up(p);

	if (rc)
		die("set up the relay", rc);
	pthread_create(&p->trx, NULL, run_relay, p);
}

static void relay_down(struct path *p)
{
	lfipc_queue_shutdown(p->qs);
	pthread_join(p->trx, NULL);
	queues_down(p);
}

/* Frames handed to ZeroMQ, counted by the floor's sender after it wrote
 * each (release) and read by frame_free() on ZeroMQ's I/O thread before
 * it frees one (acquire). ZeroMQ hands the frame over in code that
 * ThreadSanitizer does not see (bridge/tsan_zmq.c); this pair makes the
 * hand-off visible to it, one atomic per frame, as the bridge's frame
 * pool does. Encoding: a count of frames, never read for its value. */
static atomic_ulong floor_frames;

/* The floor (-F): the bridge's path without the bridge. Two threads,
 * each with its own ZeroMQ context, move messages from the source Queue
 * to the destination Queue over a PUSH/PULL pair: the sender takes up to
 * the batch's messages with lfipc_queue_get_many (64 per call, waiting
 * only for the first) straight into one frame, { messages at a stride of
 * the size, then one u32 length each }, and sends it; the receiver puts
 * a frame's messages with lfipc_queue_put_many, 64 per call, from the
 * ZeroMQ message itself. No window, no acknowledgement, no sequence
 * numbers, no peek: it loses messages if a side dies, which the bridge
 * must not. The same queue hops, ZeroMQ's same work and the same
 * sleeping hand-offs as the bridge; what the bridge costs above it is
 * its own logic. An empty frame ends the stream. */
static void frame_free(void *data, void *hint)
{
	(void)hint;
	/* acquire: pairs with the release increment in run_floor_tx() */
	(void)atomic_load_explicit(&floor_frames, memory_order_acquire);
	free(data);
}

static void *run_floor_tx(void *arg)
{
	struct path *p = arg;
	size_t cap = BATCH_BYTES / p->size, lens[64];
	uint32_t *l32;

	if (cap < 1)
		cap = 1;
	if (cap > (size_t)pack)
		cap = (size_t)pack;
	l32 = malloc(cap * 4);
	pthread_setname_np(pthread_self(), "bb-fsend");
	for (;;) {
		/* taken straight into the frame: one copy, as the bridge's
		 * sender makes (from a peeked slot into its frame) */
		char *frame = malloc(cap * (p->size + 4));
		size_t k = 0;
		zmq_msg_t m;
		int rc = 0;

		while (k < cap) {
			size_t want = cap - k < 64 ? cap - k : 64;

			rc = lfipc_queue_get_many(p->qs, frame + k * p->size,
						  p->size, lens, want,
						  k ? LFIPC_NOWAIT
						    : LFIPC_FOREVER);
			if (rc <= 0)
				break;
			for (int i = 0; i < rc; i++)
				l32[k + (size_t)i] = (uint32_t)lens[i];
			k += (size_t)rc;
		}
		if (rc < 0 && rc != -EAGAIN && rc != -EPIPE)
			die("floor get", rc);
		if (!k) {
			free(frame);
			break; /* shut down and empty */
		}
		/* the lengths follow the messages */
		memcpy(frame + k * p->size, l32, k * 4);
		/* release: pairs with the acquire load in frame_free() */
		atomic_fetch_add_explicit(&floor_frames, 1,
					  memory_order_release);
		if (zmq_msg_init_data(&m, frame, k * (p->size + 4), frame_free,
				      NULL) ||
		    zmq_msg_send(&m, p->push, 0) < 0)
			die("floor zmq_send", 1);
	}
	zmq_send(p->push, "", 0, 0);
	free(l32);
	return NULL;
}

static void *run_floor_rx(void *arg)
{
	struct path *p = arg;
	zmq_msg_t m;

	pthread_setname_np(pthread_self(), "bb-frecv");
	zmq_msg_init(&m);
	for (;;) {
		const char *d;
		size_t len, k;
		const void *ms[64];
		size_t lens[64];

		if (zmq_msg_recv(&m, p->pull, 0) < 0)
			die("floor zmq_recv", 1);
		d = zmq_msg_data(&m);
		len = zmq_msg_size(&m);
		if (!len)
			break;
		k = len / (p->size + 4);
		for (size_t done = 0; done < k;) {
			size_t c = k - done < 64 ? k - done : 64;
			int rc;

			for (size_t i = 0; i < c; i++) {
				uint32_t l;

				memcpy(&l, d + k * p->size + (done + i) * 4, 4);
				ms[i] = d + (done + i) * p->size;
				lens[i] = l;
			}
			rc = lfipc_queue_put_many(p->qd, ms, lens, c,
						  LFIPC_FOREVER);
			if (rc < 1)
				die("floor put", rc < 0 ? rc : -EIO);
			done += (size_t)rc;
		}
	}
	zmq_msg_close(&m);
	return NULL;
}

static void zmq_pair_up(struct path *p)
{
	char ep[256];
	size_t len = sizeof(ep);

	p->ctx = zmq_ctx_new();
	p->ctx2 = zmq_ctx_new();
	p->push = zmq_socket(p->ctx2, ZMQ_PUSH);
	p->pull = zmq_socket(p->ctx, ZMQ_PULL);
	if (zmq_bind(p->pull, "tcp://127.0.0.1:*") ||
	    zmq_getsockopt(p->pull, ZMQ_LAST_ENDPOINT, ep, &len) ||
	    zmq_connect(p->push, ep))
		die("zmq set up", 1);
}

static void zmq_pair_down(struct path *p)
{
	int zero = 0;

	zmq_setsockopt(p->push, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_close(p->push);
	zmq_close(p->pull);
	zmq_ctx_term(p->ctx);
	zmq_ctx_term(p->ctx2);
}

static void floor_up(struct path *p)
{
	int rc = queues_up(p);

	if (rc)
		die("set up the floor", rc);
	zmq_pair_up(p);
	pthread_create(&p->ttx, NULL, run_floor_tx, p);
	pthread_create(&p->trx, NULL, run_floor_rx, p);
}

static void floor_down(struct path *p)
{
	lfipc_queue_shutdown(p->qs); /* the sender's empty frame stops both */
	pthread_join(p->ttx, NULL);
	pthread_join(p->trx, NULL);
	zmq_pair_down(p);
	queues_down(p);
}

static void raw_up(struct path *p)
{
	zmq_pair_up(p);
	zmq_msg_init(&p->m);
	p->buf = malloc(p->size);
	p->sbuf = calloc((size_t)p->batch, 4 + p->size);
}

static void raw_down(struct path *p)
{
	zmq_msg_close(&p->m);
	zmq_pair_down(p);
}

/* Pack records { len u32, message } the way the bridge does (up to pack
 * messages and BATCH_BYTES bytes per ZeroMQ message), or send each
 * message alone (batch 1). */
static void raw_send(struct path *p, long n)
{
	size_t rec = 4 + p->size;
	char *buf = p->sbuf;

	for (long i = 0; i < n;) {
		int k = 0;

		while (k < p->batch && i < n &&
		       (k == 0 || (size_t)(k + 1) * p->size <= BATCH_BYTES)) {
			uint32_t l = (uint32_t)p->size;

			memcpy(buf + (size_t)k * rec, &l, 4);
			memcpy(buf + (size_t)k * rec + 4, &i, sizeof(i));
			k++;
			i++;
		}
		if (p->batch == 1
			? zmq_send(p->push, buf + 4, p->size, 0) < 0
			: zmq_send(p->push, buf, (size_t)k * rec, 0) < 0)
			die("zmq_send", 1);
	}
}

/* One ZeroMQ message; the receiver copies each message out of it, as a
 * consumer of the bridge gets a copy of each. */
static long raw_recv(struct path *p)
{
	const char *d;
	size_t len, at = 0;
	long got = 0;

	if (zmq_msg_recv(&p->m, p->pull, 0) < 0)
		die("zmq_recv", 1);
	d = zmq_msg_data(&p->m);
	len = zmq_msg_size(&p->m);
	if (p->batch == 1) {
		memcpy(p->buf, d, len);
		return 1;
	}
	while (at + 4 <= len) {
		uint32_t l;

		memcpy(&l, d + at, 4);
		memcpy(p->buf, d + at + 4, l);
		at += 4 + l;
		got++;
	}
	return got;
}

static const struct ops BRIDGE = {"bridge", bridge_up, bridge_down, bridge_send,
				  bridge_recv};
static const struct ops RELAY = {"relay", relay_up, relay_down, bridge_send,
				 bridge_recv};
static const struct ops FLOOR = {"floor", floor_up, floor_down, bridge_send,
				 bridge_recv};
static const struct ops RAW = {"raw ZeroMQ", raw_up, raw_down, raw_send,
			       raw_recv};

struct sender {
	const struct ops *o;
	struct path *p;
	long n;
	int64_t cpu_ns; /* the producer's CPU time, and its context */
	long switches;	/* switches, taken before it exits (for -T) */
};

static void *sender(void *arg)
{
	struct sender *s = arg;
	struct timespec ts;
	struct rusage ru;

	pthread_setname_np(pthread_self(), "bb-producer");
	s->o->send(s->p, s->n);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	s->cpu_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	if (getrusage(RUSAGE_THREAD, &ru) == 0)
		s->switches = ru.ru_nvcsw + ru.ru_nivcsw;
	return NULL;
}

/* -T: the CPU time (schedstat's first field, ns) and context switches
 * (voluntary and not) of every thread of the process, from
 * /proc/self/task, by thread id and name. */
#define TASKS_MAX 64

struct tasks {
	int n;
	struct {
		long tid;
		char comm[20];
		long long ns, sw;
	} t[TASKS_MAX];
};

static long long task_read(long tid, const char *file, const char *key)
{
	char path[96], line[256];
	long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%ld/%s", tid, file);
	if (!(f = fopen(path, "r")))
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (!key) {
			v = atoll(line);
			break;
		}
		if (!strncmp(line, key, strlen(key)))
			v += atoll(line + strlen(key));
	}
	fclose(f);
	return v;
}

static void tasks_snap(struct tasks *s)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	s->n = 0;
	while (d && (e = readdir(d)) && s->n < TASKS_MAX) {
		long tid = atol(e->d_name);
		char path[96];
		FILE *f;

		if (tid <= 0)
			continue;
		s->t[s->n].tid = tid;
		snprintf(path, sizeof(path), "/proc/self/task/%ld/comm", tid);
		s->t[s->n].comm[0] = 0;
		if ((f = fopen(path, "r"))) {
			if (fgets(s->t[s->n].comm, sizeof(s->t[s->n].comm), f))
				s->t[s->n].comm[strcspn(s->t[s->n].comm, "\n")] =
				    0;
			fclose(f);
		}
		s->t[s->n].ns = task_read(tid, "schedstat", NULL);
		s->t[s->n].sw =
		    task_read(tid, "status", "voluntary_ctxt_switches:") +
		    task_read(tid, "status", "nonvoluntary_ctxt_switches:");
		s->n++;
	}
	if (d)
		closedir(d);
}

/* Print b - a by thread name (threads of one name added up; a thread
 * not in a started after it, from 0), per message: CPU ns, and context
 * switches per 1000 messages; the producer's (gone by then) from *s. */
static void tasks_print(const char *name, size_t size, const struct tasks *a,
			const struct tasks *b, const struct sender *s, long n)
{
	char seen[TASKS_MAX] = {0};
	double tns = 0;

	printf("  -T %s %zu B: ns per message (context switches per 1000 "
	       "messages) by thread:",
	       name, size);
	for (int i = 0; i < b->n; i++) {
		long long ns = 0, sw = 0;

		if (seen[i])
			continue;
		for (int j = i; j < b->n; j++) {
			if (strcmp(b->t[j].comm, b->t[i].comm))
				continue;
			seen[j] = 1;
			ns += b->t[j].ns;
			sw += b->t[j].sw;
			for (int k = 0; k < a->n; k++)
				if (a->t[k].tid == b->t[j].tid) {
					ns -= a->t[k].ns;
					sw -= a->t[k].sw;
				}
		}
		if (ns * 2 < n) /* under 0.5 ns per message: idle */
			continue;
		tns += (double)ns / (double)n;
		printf(" %s %.0f (%.1f)", b->t[i].comm, (double)ns / (double)n,
		       (double)sw * 1000 / (double)n);
	}
	tns += (double)s->cpu_ns / (double)n;
	printf(" bb-producer %.0f (%.1f); total %.0f\n",
	       (double)s->cpu_ns / (double)n,
	       (double)s->switches * 1000 / (double)n, tns);
}

static int64_t cpu_ns(void) /* of the whole process: every thread */
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Messages per second: a thread sends n, this one receives them. The
 * CPU time the process spent per message meanwhile (every thread: less
 * sensitive to other load than the rate) goes to *cpu, the bridge's
 * messages per batch (its sender's count) to *per_batch. */
static double tput(const struct ops *o, size_t size, int batch, long n,
		   double *cpu, double *per_batch)
{
	struct path p = {.size = size, .batch = batch};
	struct sender s = {o, &p, n, 0, 0};
	lfipc_bridge_stats st;
	pthread_t t;
	long got = 0;
	int64_t t0, c0;

	struct tasks ta, tb;

	o->up(&p);
	if (per_thread)
		tasks_snap(&ta);
	t0 = now_ns();
	c0 = cpu_ns();
	pthread_create(&t, NULL, sender, &s);
	while (got < n)
		got += o->recv(&p);
	t0 = now_ns() - t0;
	*cpu = (double)(cpu_ns() - c0) / (double)n;
	pthread_join(t, NULL);
	if (per_thread) {
		tasks_snap(&tb);
		tasks_print(batch > 1 ? o->name : "raw ZeroMQ one-per-message",
			    size, &ta, &tb, &s, n);
	}
	if (per_batch && lfipc_bridge_stats_read(p.rs, "q", &st) == 0)
		*per_batch = (double)st.tx_sent / (double)st.tx_batches;
	o->down(&p);
	free(p.buf);
	free(p.sbuf);
	return (double)n * 1e9 / (double)t0;
}

/* One-way latency of one message at a time, the next sent when the last
 * arrived, in microseconds: the median, and the 99th percentile in *p99.
 * The warm-up passes a whole lap of the queues' slots first, so that the
 * samples are of a service in its steady state: the pages of a fresh
 * queue come in on first touch, and at 4 KiB a sample that takes a fresh
 * slot in both queues made about eight page faults (9,036 faults in 1,100
 * messages through the bridge; 823 with 64-slot queues). Raw ZeroMQ gets
 * the same warm-up (its buffers are reused from the first message). */
static double lat(const struct ops *o, size_t size, int samples, double *p99)
{
	struct path p = {.size = size, .batch = 1};
	double *v = malloc(sizeof(double) * (size_t)samples);
	int warm = 100 + (int)slots_for(size);
	double p50;

	o->up(&p);
	for (int i = -warm; i < samples; i++) {
		int64_t t0 = now_ns();

		o->send(&p, 1);
		if (o->recv(&p) != 1)
			die("latency: not one message", -EIO);
		if (i >= 0)
			v[i] = (double)(now_ns() - t0) / 1000.0;
	}
	o->down(&p);
	free(p.buf);
	free(p.sbuf);
	qsort(v, (size_t)samples, sizeof(double), cmp_d);
	p50 = v[samples / 2];
	*p99 = v[samples * 99 / 100];
	free(v);
	return p50;
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

/* The ratios a[i] / b[i] of the r repeats, each pair taken one after the
 * other under the same load, summarised. */
static struct fig ratios(const double *a, const double *b, int r)
{
	double q[64];

	for (int i = 0; i < r; i++)
		q[i] = b[i] > 0 ? a[i] / b[i] : 0;
	return summarise(q, r);
}

/* The median and range of each of n rows of r samples (sorts them). */
static void summarise_rows(struct fig *f, double *const *rows, int n, int r)
{
	for (int i = 0; i < n; i++)
		f[i] = summarise(rows[i], r);
}

static void usage(void)
{
	fprintf(stderr, "usage: bridge_bench [-n MESSAGES] [-r REPEATS] "
			"[-l LATENCY_SAMPLES] [-s SIZE] [-t | -L] [-B | -Z] "
			"[-P] [-R] [-F] [-T] [-q SLOTS] [-w WINDOW] "
			"[-b BATCH] [-S SPIN_US [-e tx | -e rx]]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	long n = 1000000;
	int reps = 5, samples = 5000, c, nsizes = 2;
	size_t sizes[2] = {64, 4096};
	bool do_tput = true, do_lat = true, do_raw = true, do_br = true;
	bool do_relay = false, do_r1 = true, do_floor = false;
	char spin_txt[64];
	const char *spun = spin_txt; /* which sides spin, for the report */

	while ((c = getopt(argc, argv, "n:r:l:s:tLBZPRFTw:b:q:S:e:")) != -1) {
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
		case 's': /* one size only */
			sizes[0] = (size_t)atol(optarg);
			nsizes = 1;
			break;
		case 't': /* throughput only */
			do_lat = false;
			break;
		case 'L': /* latency only */
			do_tput = false;
			break;
		case 'B': /* the bridge only */
			do_raw = false;
			break;
		case 'Z': /* raw ZeroMQ only */
			do_br = false;
			break;
		case 'T': /* per thread: CPU time and context switches */
			per_thread = true;
			break;
		case 'P': /* raw ZeroMQ: the packed row only */
			do_r1 = false;
			break;
		case 'R': /* also the relay: two queue hops, no network */
			do_relay = true;
			break;
		case 'F': /* also the floor: queues and ZeroMQ, no bridge */
			do_floor = true;
			break;
		case 'q': /* slots of both queues (default: slots_for()) */
			qslots = atol(optarg);
			break;
		case 'w':
			window = (unsigned)atoi(optarg);
			break;
		case 'b': /* batch of both paths (default BATCH_DEF) */
			pack = atoi(optarg);
			break;
		case 'e': /* the side that spins: tx or rx (default both) */
			spin_sides = strcmp(optarg, "tx") == 0	 ? 1
				     : strcmp(optarg, "rx") == 0 ? 2
								 : 0;
			if (!spin_sides)
				usage();
			break;
		case 'S': /* the spin of both sides (-e: one), us */
			spin_ns = atol(optarg);
			if (spin_ns < 0 ||
			    spin_ns > LFIPC_BRIDGE_MAX_SPIN_NS / 1000)
				usage();
			spin_ns *= 1000;
			break;
		default:
			usage();
		}
	}
	if (pack < 1 || n < 1 || qslots < 0 || qslots > (1 << 24) || reps < 1 || reps > 64 || samples < 100 || sizes[0] < 8 ||
	    sizes[0] > (1 << 20))
		usage();
	if (spin_ns == 0)
		spun = "no spin";
	else
		snprintf(spin_txt, sizeof(spin_txt), "spin %lld us: %s",
			 (long long)(spin_ns / 1000),
			 spin_sides == 3   ? "sender and receiver"
			 : spin_sides == 1 ? "sender only"
					   : "receiver only");
	printf("# lfipc-bridge vs raw ZeroMQ PUSH/PULL, tcp://127.0.0.1, "
	       "%ld messages x %d repeats, %d latency samples; "
	       "median [min..max]\n",
	       n, reps, samples);
	for (int s = 0; s < nsizes; s++) {
		size_t size = sizes[s];
		double b[64], r1[64], rb[64], bl[64], rl[64], b99[64], r99[64];
		double per[64], cb[64], crb[64], cr1[64];
		double qt[64], cq[64], ql[64], q99[64];
		double ft[64], cf[64], fl[64], f99[64];
		long ns = size > 1024 ? n / 4 : n;

		for (int i = 0; i < reps; i++) { /* interleaved: same load */
			b[i] = rb[i] = r1[i] = per[i] = 0;
			cb[i] = crb[i] = cr1[i] = 0;
			bl[i] = rl[i] = b99[i] = r99[i] = 0;
			qt[i] = cq[i] = ql[i] = q99[i] = 0;
			ft[i] = cf[i] = fl[i] = f99[i] = 0;
			if (do_tput && do_relay)
				qt[i] = tput(&RELAY, size, pack, ns, &cq[i],
					     NULL) /
					1e6;
			if (do_lat && do_relay)
				ql[i] = lat(&RELAY, size, samples, &q99[i]);
			if (do_tput && do_floor)
				ft[i] = tput(&FLOOR, size, pack, ns, &cf[i],
					     NULL) /
					1e6;
			if (do_lat && do_floor)
				fl[i] = lat(&FLOOR, size, samples, &f99[i]);
			/* the bridge and raw ZeroMQ take turns at going
			 * first, so that neither always meets the machine
			 * as the other left it */
			for (int k = 0; k < 2; k++) {
				bool raw_now = (k == 0) == (i % 2 == 1);

				if (!raw_now && do_tput && do_br)
					b[i] = tput(&BRIDGE, size, pack, ns,
						    &cb[i], &per[i]) /
					       1e6;
				if (raw_now && do_tput && do_raw) {
					rb[i] = tput(&RAW, size, pack, ns,
						     &crb[i], NULL) /
						1e6;
					if (do_r1)
						r1[i] = tput(&RAW, size, 1, ns,
							     &cr1[i], NULL) /
							1e6;
				}
			}
			for (int k = 0; k < 2; k++) {
				bool raw_now = (k == 0) == (i % 2 == 1);

				if (!raw_now && do_lat && do_br)
					bl[i] = lat(&BRIDGE, size, samples,
						    &b99[i]);
				if (raw_now && do_lat && do_raw)
					rl[i] = lat(&RAW, size, samples,
						    &r99[i]);
			}
		}
		printf("\n%zu-byte messages (%ld per throughput run)\n", size,
		       ns);
		if (do_tput) {
			struct fig f[7], q = ratios(b, rb, reps);

			summarise_rows(f,
				       (double *[]){b, rb, r1, per, cb, crb, cr1},
				       7, reps);
			printf("  throughput, M msg/s: bridge %.3f [%.3f..%.3f]"
			       "  raw batched %.3f [%.3f..%.3f]  raw "
			       "one-per-message %.3f [%.3f..%.3f]\n",
			       f[0].med, f[0].lo, f[0].hi, f[1].med, f[1].lo,
			       f[1].hi, f[2].med, f[2].lo, f[2].hi);
			printf("  bridge / raw batched = %.2f   bridge / raw "
			       "one-per-message = %.2f   bridge messages per "
			       "batch %.1f [%.1f..%.1f]\n",
			       f[0].med / f[1].med, f[0].med / f[2].med,
			       f[3].med, f[3].lo, f[3].hi);
			if (do_br && do_raw)
				printf("  bridge / raw batched, repeat by "
				       "repeat: %.2f [%.2f..%.2f]\n",
				       q.med, q.lo, q.hi);
			printf("  CPU time per message (all threads), ns: "
			       "bridge %.0f [%.0f..%.0f]  raw batched %.0f "
			       "[%.0f..%.0f]  raw one-per-message %.0f "
			       "[%.0f..%.0f]\n",
			       f[4].med, f[4].lo, f[4].hi, f[5].med, f[5].lo,
			       f[5].hi, f[6].med, f[6].lo, f[6].hi);
		}
		if (do_lat) {
			struct fig f[4];

			summarise_rows(f, (double *[]){bl, rl, b99, r99}, 4,
				       reps);
			printf("  latency p50, us: bridge %.1f [%.1f..%.1f]  "
			       "raw %.1f [%.1f..%.1f]  added %.1f (%s)\n",
			       f[0].med, f[0].lo, f[0].hi, f[1].med, f[1].lo,
			       f[1].hi, f[0].med - f[1].med, spun);
			printf("  latency p99, us: bridge %.1f  raw %.1f\n",
			       f[2].med, f[3].med);
		}
		if (do_floor) {
			struct fig f[4], fb, fr, fbl, frl;

			summarise_rows(f, (double *[]){ft, cf, fl, f99}, 4,
				       reps);
			fb = summarise(b, reps);
			fr = summarise(rb, reps);
			fbl = summarise(bl, reps);
			frl = summarise(rl, reps);
			printf("  floor (queue hops and ZeroMQ, no bridge "
			       "logic): throughput %.3f [%.3f..%.3f] M msg/s, "
			       "CPU per message %.0f [%.0f..%.0f] ns, latency "
			       "p50 %.1f [%.1f..%.1f] us, p99 %.1f us\n",
			       f[0].med, f[0].lo, f[0].hi, f[1].med, f[1].lo,
			       f[1].hi, f[2].med, f[2].lo, f[2].hi, f[3].med);
			if (do_tput && do_raw && do_br)
				printf("  floor / raw batched = %.2f   bridge / "
				       "floor = %.2f\n",
				       f[0].med / fr.med, fb.med / f[0].med);
			if (do_lat && do_raw && do_br)
				printf("  latency p50 added: floor %.1f  bridge "
				       "above the floor %.1f us\n",
				       f[2].med - frl.med, fbl.med - f[2].med);
		}
		if (do_relay) {
			struct fig f[4];

			summarise_rows(f, (double *[]){qt, cq, ql, q99}, 4,
				       reps);
			printf("  relay (two queue hops, no network): "
			       "throughput %.3f [%.3f..%.3f] M msg/s, CPU per "
			       "message %.0f [%.0f..%.0f] ns, latency p50 %.1f "
			       "[%.1f..%.1f] us, p99 %.1f us\n",
			       f[0].med, f[0].lo, f[0].hi, f[1].med, f[1].lo,
			       f[1].hi, f[2].med, f[2].lo, f[2].hi, f[3].med);
		}
	}
	return 0;
}
