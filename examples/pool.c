/* SPDX-License-Identifier: MIT */
/*
 * pool.c - a worker pool in a named region, to watch with `lfipc show`.
 *
 *   pool REGION [WORKERS [SECONDS]]
 *
 * Creates the named region REGION with a JoinableQueue "jobs", a Queue
 * "results", an Array "done" (one u64 counter per worker, with a lock), an
 * Event "stop" and a Listener "control"; forks WORKERS workers (default 3)
 * that take jobs, square them, put the results and count them. The parent
 * keeps feeding jobs and draining results for SECONDS seconds (default 0:
 * until SIGINT or SIGTERM, or until a client connects to "control" and
 * sends "stop"), then sets "stop", reaps the workers, checks that every
 * result arrived and is right, and removes the region.
 *
 * Prints "ready <pid>" on stdout once the region is set up and every
 * worker has registered in it (up to 5 s). Exit status 0
 * when every result was right, 1 otherwise.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lfipc.h>

#define MS ((int64_t)1000 * 1000)
#define MAX_WORKERS 64

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static int die(const char *what, int rc)
{
	fprintf(stderr, "pool: %s: %s\n", what, lfipc_strerror(rc));
	return 1;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct result {
	uint64_t job, square;
};

static int worker(lfipc_region *r, unsigned id)
{
	lfipc_queue *jobs, *results;
	lfipc_array *done;
	lfipc_event *stop;
	int rc;

	if ((rc = lfipc_queue_open(r, "jobs", &jobs)) < 0 ||
	    (rc = lfipc_queue_open(r, "results", &results)) < 0 ||
	    (rc = lfipc_array_open(r, "done", &done)) < 0 ||
	    (rc = lfipc_event_open(r, "stop", &stop)) < 0)
		return die("worker: open", rc);
	while (!lfipc_event_is_set(stop)) {
		struct result res;
		size_t len;

		rc = lfipc_queue_get(jobs, &res.job, sizeof(res.job), &len,
				     100 * MS);
		if (rc == -ETIMEDOUT || rc == -EPIPE)
			continue;
		if (rc < 0)
			return die("worker: get", rc);
		res.square = res.job * res.job;
		rc = lfipc_queue_put(results, &res, sizeof(res), 1000 * MS);
		if (rc < 0)
			return die("worker: put", rc);
		lfipc_array_fetch_add(done, id, 1, NULL);
		lfipc_queue_task_done(jobs);
	}
	return 0;
}

/* Serve one control connection without waiting: "stop" stops the pool. */
static void control(lfipc_listener *ctl)
{
	lfipc_conn *c;
	char buf[16];
	size_t len;

	if (lfipc_listener_accept(ctl, LFIPC_NOWAIT, &c) < 0)
		return;
	if (lfipc_conn_recv(c, buf, sizeof(buf), &len, 1000 * MS) == 0 &&
	    len == 4 && memcmp(buf, "stop", 4) == 0)
		stopping = 1;
	lfipc_conn_close(c);
}

int main(int argc, char **argv)
{
	unsigned workers = argc > 2 ? (unsigned)atoi(argv[2]) : 3;
	int64_t seconds = argc > 3 ? atoll(argv[3]) : 0, end;
	pid_t pids[MAX_WORKERS];
	lfipc_region *r;
	lfipc_queue *jobs, *results;
	lfipc_array *done;
	lfipc_event *stop;
	lfipc_listener *ctl;
	uint64_t next = 1, got = 0, bad = 0;
	int rc, failed = 0;

	if (argc < 2 || workers == 0 || workers > MAX_WORKERS) {
		fprintf(stderr, "usage: pool REGION [WORKERS [SECONDS]]\n");
		return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if ((rc = lfipc_region_create(argv[1], 4 << 20, 0, &r)) < 0)
		return die("region", rc);
	if ((rc = lfipc_queue_create(r, "jobs", 256, sizeof(uint64_t),
				     LFIPC_QUEUE_JOINABLE, &jobs)) < 0 ||
	    (rc = lfipc_queue_create(r, "results", 256, sizeof(struct result),
				     0, &results)) < 0 ||
	    (rc = lfipc_array_create(r, "done", LFIPC_U64, workers, true,
				     &done)) < 0 ||
	    (rc = lfipc_event_create(r, "stop", &stop)) < 0 ||
	    (rc = lfipc_listener_create(r, "control", 0, 0, 4096, &ctl)) < 0) {
		lfipc_region_unlink(argv[1]);
		return die("create", rc);
	}
	for (unsigned i = 0; i < workers; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			_exit(worker(r, i));
	}
	/* Ready once every worker has registered (on its first call). */
	for (int i = 0; i < 5000; i++) {
		lfipc_region_status st;

		LFIPC_STATUS_INIT(st);
		if (lfipc_region_stat(r, &st) == 0 &&
		    st.participants >= workers + 1)
			break;
		usleep(1000);
	}
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	end = seconds > 0 ? now_ns() + seconds * 1000 * MS : INT64_MAX;
	while (!stopping && now_ns() < end) {
		struct result res;
		size_t len;

		/* Keep a few jobs queued, so that a look finds work. */
		while (lfipc_queue_qsize(jobs) < 8 &&
		       lfipc_queue_put(jobs, &next, sizeof(next),
				       LFIPC_NOWAIT) == 0)
			next++;
		while (lfipc_queue_get(results, &res, sizeof(res), &len,
				       LFIPC_NOWAIT) == 0) {
			got++;
			bad += res.square != res.job * res.job;
		}
		control(ctl);
		usleep(1000);
	}
	lfipc_listener_close(ctl);
	/* Let the workers finish what is queued, then stop them. */
	lfipc_queue_join(jobs, 5000 * MS);
	lfipc_event_set(stop);
	for (unsigned i = 0; i < workers; i++) {
		int st;

		if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0)
			failed++;
	}
	{
		struct result res;
		size_t len;

		while (lfipc_queue_get(results, &res, sizeof(res), &len,
				       LFIPC_NOWAIT) == 0) {
			got++;
			bad += res.square != res.job * res.job;
		}
	}
	lfipc_region_close(r);
	lfipc_region_unlink(argv[1]);
	printf("jobs %llu results %llu bad %llu workers failed %d\n",
	       (unsigned long long)(next - 1), (unsigned long long)got,
	       (unsigned long long)bad, failed);
	return bad == 0 && failed == 0 && got == next - 1 ? 0 : 1;
}
