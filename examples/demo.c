/* SPDX-License-Identifier: MIT */
/*
 * demo.c - the README quick start: one anonymous region, forked workers,
 * data passed through the region and checked.
 *
 * With the Queue component: each of W producer processes puts N messages
 * (producer id, sequence number, payload, checksum) into one Queue; the
 * parent gets all W*N of them and checks every checksum and that each
 * producer's messages arrive in order. Before the Queue exists, the same
 * run passes the data through one Pipe per worker instead.
 *
 *   demo [workers [messages-per-worker]]
 *
 * Exit status 0 when everything arrived intact, 1 otherwise.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lfipc/region.h>

/* The Queue is used as soon as its header exists (LFIPC_DEMO_NO_QUEUE
 * forces the Pipe version). */
#if defined(__has_include) && !defined(LFIPC_DEMO_NO_QUEUE)
#if __has_include(<lfipc/queue.h>)
#include <lfipc/queue.h>
#define DEMO_QUEUE 1
#endif
#endif

#define TIMEOUT_NS ((int64_t)10 * 1000 * 1000 * 1000)

struct msg {
	uint32_t worker;
	uint32_t seq;
	uint64_t payload[5];
	uint64_t sum;
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	return x;
}

static void make_msg(struct msg *m, uint32_t w, uint32_t seq)
{
	m->worker = w;
	m->seq = seq;
	m->sum = 0;
	for (int i = 0; i < 5; i++) {
		m->payload[i] = mix(((uint64_t)w << 40) ^ ((uint64_t)seq << 8) ^
				    (uint64_t)i);
		m->sum ^= mix(m->payload[i] + (uint64_t)i);
	}
}

static int msg_ok(const struct msg *m)
{
	uint64_t s = 0;

	for (int i = 0; i < 5; i++)
		s ^= mix(m->payload[i] + (uint64_t)i);
	return s == m->sum;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int die(const char *what, int rc)
{
	fprintf(stderr, "demo: %s: %s\n", what, lfipc_strerror(rc));
	return 1;
}

#ifdef DEMO_QUEUE
static int worker(lfipc_region *r, uint32_t w, uint32_t n)
{
	lfipc_queue *q;
	struct msg m;
	int rc = lfipc_queue_open(r, "demo", &q);

	if (rc < 0)
		return die("worker: queue_open", rc);
	for (uint32_t i = 0; i < n; i++) {
		make_msg(&m, w, i);
		rc = lfipc_queue_put(q, &m, sizeof(m), TIMEOUT_NS);
		if (rc < 0)
			return die("worker: put", rc);
	}
	lfipc_queue_close(q);
	return 0;
}

static int consume(lfipc_region *r, uint32_t nw, uint32_t n, uint64_t *bad)
{
	lfipc_queue *q;
	uint32_t *next = calloc(nw, sizeof(*next));
	struct msg m;
	size_t len;
	int rc = lfipc_queue_open(r, "demo", &q);

	if (rc < 0 || !next)
		return die("queue_open", rc < 0 ? rc : -ENOMEM);
	for (uint64_t k = 0; k < (uint64_t)nw * n; k++) {
		rc = lfipc_queue_get(q, &m, sizeof(m), &len, TIMEOUT_NS);
		if (rc < 0) {
			free(next);
			return die("get", rc);
		}
		if (len != sizeof(m) || m.worker >= nw || !msg_ok(&m) ||
		    m.seq != next[m.worker])
			(*bad)++;
		else
			next[m.worker]++;
	}
	lfipc_queue_close(q);
	free(next);
	return 0;
}

static int setup(lfipc_region *r, uint32_t nw)
{
	lfipc_queue *q;
	int rc = lfipc_queue_create(r, "demo", 1024, sizeof(struct msg), 0, &q);

	(void)nw;
	if (rc < 0)
		return die("queue_create", rc);
	lfipc_queue_close(q);
	return 0;
}
#define DEMO_WHAT "a Queue"
#else
/*
 * Until the Queue is built: one one-way Pipe per worker. Worker w sends on
 * end 1 of pipe w (inherited across fork: its first send claims the end)
 * and closes it, which the parent sees as end-of-file after the last
 * message; the parent receives from all end 0s in turn.
 */
#include <lfipc/pipe.h>

static lfipc_conn **g_rx, **g_tx;

static int worker(lfipc_region *r, uint32_t w, uint32_t n)
{
	struct msg m;
	int rc;

	(void)r;
	for (uint32_t i = 0; i < n; i++) {
		make_msg(&m, w, i);
		rc = lfipc_conn_send(g_tx[w], &m, sizeof(m), TIMEOUT_NS);
		if (rc < 0)
			return die("worker: send", rc);
	}
	lfipc_conn_close(g_tx[w]); /* the parent reads end-of-file */
	return 0;
}

static int consume(lfipc_region *r, uint32_t nw, uint32_t n, uint64_t *bad)
{
	uint32_t *next = calloc(nw, sizeof(*next)), open_ends = nw;
	struct msg m;
	size_t len;
	int rc;

	(void)r;
	if (!next)
		return 1;
	for (uint32_t w = 0; w < nw; w++)
		lfipc_conn_close(g_tx[w]); /* hands end 1 on to the worker */
	while (open_ends > 0) {
		uint32_t got = 0;

		for (uint32_t w = 0; w < nw; w++) {
			for (int k = 0; g_rx[w] && k < 256; k++) {
				rc = lfipc_conn_recv(g_rx[w], &m, sizeof(m),
						     &len, LFIPC_NOWAIT);
				if (rc == -EAGAIN)
					break;
				if (rc == -EPIPE) { /* worker w is done */
					lfipc_conn_close(g_rx[w]);
					g_rx[w] = NULL;
					open_ends--;
					break;
				}
				if (rc < 0) {
					free(next);
					return die("recv", rc);
				}
				got++;
				if (len != sizeof(m) || m.worker != w ||
				    !msg_ok(&m) || m.seq != next[w])
					(*bad)++;
				else
					next[w]++;
			}
		}
		if (got == 0) {
			for (uint32_t w = 0; w < nw; w++) {
				if (g_rx[w]) {
					lfipc_conn_poll(g_rx[w], 1000000);
					break;
				}
			}
		}
	}
	for (uint32_t w = 0; w < nw; w++)
		if (next[w] != n)
			(*bad)++;
	free(next);
	return 0;
}

static int setup(lfipc_region *r, uint32_t nw)
{
	char name[32];
	int rc;

	g_rx = calloc(nw, sizeof(*g_rx));
	g_tx = calloc(nw, sizeof(*g_tx));
	if (!g_rx || !g_tx)
		return 1;
	for (uint32_t w = 0; w < nw; w++) {
		snprintf(name, sizeof(name), "demo-%u", w);
		rc = lfipc_pipe_create(r, name, 0, false, &g_rx[w], &g_tx[w]);
		if (rc < 0)
			return die("pipe_create", rc);
	}
	return 0;
}
#define DEMO_WHAT "Pipes (the Queue is not built yet)"
#endif

int main(int argc, char **argv)
{
	uint32_t nw = argc > 1 ? (uint32_t)atoi(argv[1]) : 4;
	uint32_t n = argc > 2 ? (uint32_t)atoi(argv[2]) : 250000;
	lfipc_region *r;
	lfipc_region_info info;
	uint64_t bad = 0;
	pid_t *pids;
	double t0, t1;
	int rc, failed = 0;

	if (nw < 1 || nw > 64 || n < 1 || n > 10000000) {
		fprintf(stderr, "usage: demo [workers 1-64 [messages]]\n");
		return 2;
	}
	/* 4 MiB, plus 64 KiB rings for the Pipes */
	rc = lfipc_region_create(
	    NULL, ((size_t)4 << 20) + (size_t)nw * 256 * 1024, 0, &r);
	if (rc < 0)
		return die("region_create", rc);
	if (setup(r, nw))
		return 1;
	pids = calloc(nw, sizeof(*pids));
	if (!pids)
		return 1;
	t0 = now_s();
	for (uint32_t w = 0; w < nw; w++) {
		pids[w] = fork();
		if (pids[w] < 0) {
			perror("fork");
			return 1;
		}
		if (pids[w] == 0)
			_exit(worker(r, w, n));
	}
	if (consume(r, nw, n, &bad))
		failed = 1;
	for (uint32_t w = 0; w < nw; w++) {
		int st;

		if (waitpid(pids[w], &st, 0) != pids[w] || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0)
			failed = 1;
	}
	t1 = now_s();
	if (lfipc_region_stats(r, &info) == 0)
		printf("region: %zu KiB, %u objects, %u participant(s) left\n",
		       info.size / 1024, info.objects, info.participants);
	printf("%u workers x %u messages of %zu bytes through " DEMO_WHAT
	       ": %" PRIu64 " messages, checksums and order %s, "
	       "%.2f M messages/s\n",
	       nw, n, sizeof(struct msg), (uint64_t)nw * n,
	       bad ? "WRONG" : "OK", (double)nw * n / (t1 - t0) / 1e6);
	free(pids);
	lfipc_region_close(r);
	return failed || bad ? 1 : 0;
}
