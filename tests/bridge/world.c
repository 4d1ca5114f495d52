/* SPDX-License-Identifier: MIT */
/*
 * world.c - the test world of the bridge tests (world.h): the regions, the
 * real lfipc-bridge fork+exec'd, producers and consumers of numbered
 * messages.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "bridge/world.h"
#include "common/testhelp.h"

#define REGION_SIZE ((size_t)24 << 20)

struct world W;

const char *const INSECURE[] = {"--insecure", NULL};

uint64_t check_of(uint64_t seq)
{
	return seq * 0x9e3779b97f4a7c15ull ^ 0x5bd1e995u;
}

void world_up(size_t src_cap, size_t dst_cap, size_t msg_size)
{
	memset(&W, 0, sizeof(W));
	th_name(W.src, sizeof(W.src), "bsrc");
	th_name(W.dst, sizeof(W.dst), "bdst");
	snprintf(W.dir, sizeof(W.dir), "/tmp/lfipc-bridge-test-%ld",
		 (long)getpid());
	mkdir(W.dir, 0700);
	snprintf(W.epfile, sizeof(W.epfile), "%s/ep", W.dir);
	cr_assert_eq(lfipc_region_create(W.src, REGION_SIZE, 0600, &W.rs), 0);
	cr_assert_eq(lfipc_region_create(W.dst, REGION_SIZE, 0600, &W.rd), 0);
	cr_assert_eq(lfipc_queue_create(W.rs, "q", src_cap, msg_size, 0, &W.qs),
		     0);
	cr_assert_eq(lfipc_queue_create(W.rd, "q", dst_cap, msg_size, 0, &W.qd),
		     0);
}

void kill_reap(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGKILL);
		th_reap(*pid, 10000);
	}
	*pid = 0;
}

static void world_down(void)
{
	char cmd[256];

	kill_reap(&W.tx);
	kill_reap(&W.rx);
	kill_reap(&W.prod);
	kill_reap(&W.cons);
	lfipc_queue_close(W.qs);
	lfipc_queue_close(W.qd);
	lfipc_region_close(W.rs);
	lfipc_region_close(W.rd);
	W.qs = W.qd = NULL; /* a second fini() closes nothing twice */
	W.rs = W.rd = NULL;
	lfipc_region_unlink(W.src);
	lfipc_region_unlink(W.dst);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", W.dir);
	if (system(cmd) != 0)
		cr_log_warn("could not remove %s", W.dir);
}

void fini(void)
{
	world_down();
}

/* The last of what the bridge processes wrote to stderr (their log), for
 * failure messages: a sanitizer's report, an error. */
const char *log_tail(void)
{
	static char text[2048];
	char path[300];
	size_t k = 0;
	long size;
	FILE *f;

	text[0] = '\0';
	snprintf(path, sizeof(path), "%s/log", W.dir);
	f = fopen(path, "r");
	if (!f)
		return text;
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > 0)
		fseek(f,
		      size > (long)sizeof(text) - 1
			  ? size - (long)sizeof(text) + 1
			  : 0,
		      SEEK_SET);
	k = fread(text, 1, sizeof(text) - 1, f);
	text[k] = '\0';
	fclose(f);
	return text;
}

/* fork+exec lfipc-bridge with args (NULL-terminated, without argv[0]).
 * SIGTERM stays blocked until lfipc-bridge has its handler: a SIGTERM the
 * test sends at any moment after spawn() stops it cleanly (exit 0), never
 * kills it, however slowly it starts. */
pid_t spawn(const char *const *args)
{
	const char *argv[40];
	int n = 0;
	pid_t pid;
	sigset_t term, old;

	argv[n++] = BRIDGE_PROG;
	while (*args && n < 39)
		argv[n++] = *args++;
	argv[n] = NULL;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, &old);
	pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		char log[300];

		if (fd >= 0)
			dup2(fd, 1);
		/* errors of every bridge process, for failure messages */
		snprintf(log, sizeof(log), "%s/log", W.dir);
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0)
			dup2(fd, 2);
		if (W.live_rss) { /* AddressSanitizer: no freed memory kept */
			const char *o = getenv("ASAN_OPTIONS");
			char env[512];

			snprintf(env, sizeof(env), "%s%squarantine_size_mb=0",
				 o ? o : "", o && *o ? ":" : "");
			setenv("ASAN_OPTIONS", env, 1);
		}
		execv(BRIDGE_PROG, (char *const *)argv);
		_exit(127);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	cr_assert_gt(pid, 0);
	return pid;
}

static void push(const char **v, int *n, const char *const *extra)
{
	while (extra && *extra)
		v[(*n)++] = *extra++;
	v[*n] = NULL;
}

/* Start the receiver (binding a free port the first time, the same port
 * on a restart) and wait until it listens. */
void start_rx(const char *const *extra)
{
	const char *v[32] = {"recv",
			     "--bind",
			     W.ep[0] ? W.ep : "tcp://127.0.0.1:*",
			     "--region",
			     W.dst,
			     "--queue",
			     "q",
			     "--endpoint-file",
			     W.epfile,
			     "--quiet"};
	int n = 10;
	int64_t end = th_now_ns() + INT64_C(120000000000);

	push(v, &n, extra);
	unlink(W.epfile);
	W.rx = spawn(v);
	for (;;) {
		FILE *f = fopen(W.epfile, "r");
		int st;

		if (f) {
			char line[256];

			cr_assert(fgets(line, sizeof(line), f));
			fclose(f);
			line[strcspn(line, "\n")] = '\0';
			snprintf(W.ep, sizeof(W.ep), "%s", line);
			return;
		}
		if (waitpid(W.rx, &st, WNOHANG) != 0) {
			W.rx = 0;
			cr_assert_fail("receiver exited before listening: %s",
				       log_tail());
		}
		cr_assert_lt(th_now_ns(), end, "receiver never listened");
		usleep(2000);
	}
}

void start_tx(const char *const *extra)
{
	const char *v[32] = {"send", "--to",	W.ep, "--region",
			     W.src,  "--queue", "q",  "--quiet"};
	int n = 8;

	push(v, &n, extra);
	W.tx = spawn(v);
}

void stats(lfipc_region *r, lfipc_bridge_stats *s)
{
	cr_assert_eq(lfipc_bridge_stats_read(r, "q", s), 0);
}

/* ---- producers and consumers ------------------------------------------ */

/* Put n numbered messages, then shut the source queue down. Counts in the
 * Array "ctl" of the source region: [0] stop, [1] messages put. With n 0
 * and a cap, it stops putting at the cap and waits for the stop (the
 * numbers must stay below the size of the consumer's record). */
int producer(void *arg)
{
	const struct prod *p = arg;
	lfipc_region *r;
	lfipc_queue *q;
	lfipc_array *ctl;
	char buf[4096] = {0};
	int64_t stop = 0;

	if (lfipc_region_open(p->region, &r) || lfipc_queue_open(r, "q", &q) ||
	    lfipc_array_open(r, "ctl", &ctl))
		return 10;
	for (uint64_t i = 0; p->n == 0 || i < p->n; i++) {
		struct msg m = {i, check_of(i)};

		if (p->n == 0 && (i & 63) == 0) {
			lfipc_array_load(ctl, 0, &stop);
			while (!stop && p->cap && i >= p->cap) {
				usleep(1000);
				lfipc_array_load(ctl, 0, &stop);
			}
			if (stop)
				break;
		}
		memcpy(buf, &m, sizeof(m));
		if (lfipc_queue_put(q, buf, p->size, LFIPC_FOREVER))
			return 11;
		lfipc_array_store(ctl, 1, (int64_t)(i + 1));
	}
	lfipc_queue_shutdown(q);
	return 0;
}

lfipc_array *ctl_create(void)
{
	lfipc_array *ctl;

	cr_assert_eq(lfipc_array_create(W.rs, "ctl", LFIPC_I64, 2, false, &ctl),
		     0);
	return ctl;
}

/* Consume the destination until it is shut down and empty, counting each
 * sequence number in seen[] (an Array "seen" of U8 in the destination
 * region, so that a consumer child can fill it). Returns 0, or a code.
 * A quiet spell ends it only after IDLE_NS: a loaded machine may starve
 * the bridge for a minute (a restart of a side is an exec, a region
 * recovery and a reconnection); the tests' own deadlines bound the rest. */
#define IDLE_NS INT64_C(600000000000)

int consume_into(lfipc_queue *q, uint8_t *seen, uint64_t max, uint64_t *got,
		 bool in_order)
{
	static char bufs[64][4096];
	size_t lens[64];
	uint64_t expect = 0;
	int64_t idle_end = th_now_ns() + IDLE_NS;

	*got = 0;
	for (;;) {
		int n = lfipc_queue_get_many(q, bufs, sizeof(bufs[0]), lens, 64,
					     INT64_C(1000000000));

		if (n == -ETIMEDOUT && th_now_ns() < idle_end)
			continue;
		if (n == -EPIPE)
			return 0;
		if (n < 0) /* 20 + the error number */
			return 20 + (-n < 200 ? -n : 0);
		idle_end = th_now_ns() + IDLE_NS;
		for (int i = 0; i < n; i++) {
			struct msg m;

			memcpy(&m, bufs[i], sizeof(m));
			if (lens[i] < sizeof(m) || m.check != check_of(m.seq) ||
			    m.seq >= max)
				return 21;
			if (in_order && m.seq != expect)
				return 22;
			expect = m.seq + 1;
			if (seen[m.seq] < 255)
				seen[m.seq]++;
			(*got)++;
		}
	}
}

int consumer(void *arg)
{
	const char *region = arg;
	lfipc_region *r;
	lfipc_queue *q;
	lfipc_array *seen;
	uint64_t got;

	if (lfipc_region_open(region, &r) || lfipc_queue_open(r, "q", &q) ||
	    lfipc_array_open(r, "seen", &seen))
		return 10;
	return consume_into(q, lfipc_array_data(seen), lfipc_array_len(seen),
			    &got, false);
}

/* Wait for pid to exit with status 0 (a bridge side finishing its
 * stream). */
void expect_exit0(pid_t *pid, const char *who)
{
	int st = th_reap(*pid, 300000);

	*pid = 0;
	if (st != 0) { /* say where the stream stood */
		lfipc_bridge_stats a = {0}, b = {0};

		lfipc_bridge_stats_read(W.rs, "q", &a);
		lfipc_bridge_stats_read(W.rd, "q", &b);
		cr_log_error("tx next %llu inflight %llu acked %llu; rx "
			     "received %llu dropped %llu out_of_order %llu; "
			     "source qsize %zu, destination qsize %zu",
			     (unsigned long long)a.tx_next_seq,
			     (unsigned long long)a.tx_inflight,
			     (unsigned long long)a.tx_acked,
			     (unsigned long long)b.rx_received,
			     (unsigned long long)b.rx_dup_dropped,
			     (unsigned long long)b.rx_out_of_order,
			     lfipc_queue_qsize(W.qs), lfipc_queue_qsize(W.qd));
	}
	cr_assert_eq(st, 0, "%s ended with %d; log: %s", who, st, log_tail());
}

/* ---- a stream between the two sides ------------------------------------- */

/* The record of sequence numbers: a bridge moving over 400,000 messages a
 * second fills it in the 200 rounds of make stress, so the producer stops
 * putting 200,000 below. */
#define STREAM_MAX ((uint64_t)8 << 20)

void stream_up(struct stream *s, size_t msg_size, const char *const *tx_extra)
{
	struct prod p = {W.src, 0, msg_size, STREAM_MAX - 200000};

	s->max = STREAM_MAX;
	s->ctl = ctl_create();
	cr_assert_eq(
	    lfipc_array_create(W.rd, "seen", LFIPC_U8, s->max, false, &s->seen),
	    0);
	start_rx(INSECURE);
	start_tx(tx_extra);
	W.prod = th_fork(producer, &p);
	W.cons = th_fork(consumer, W.dst);
}

uint64_t stream_down(struct stream *s, uint64_t *dups)
{
	const uint8_t *seen = lfipc_array_data(s->seen);
	uint64_t produced;
	int64_t v;

	cr_assert_eq(lfipc_array_store(s->ctl, 0, 1), 0); /* producer: stop */
	expect_exit0(&W.prod, "producer");
	expect_exit0(&W.tx, "sender");
	expect_exit0(&W.rx, "receiver");
	expect_exit0(&W.cons, "consumer");
	cr_assert_eq(lfipc_array_load(s->ctl, 1, &v), 0);
	produced = (uint64_t)v;
	*dups = 0;
	for (uint64_t i = 0; i < produced; i++) {
		cr_assert_geq(seen[i], 1, "message %llu of %llu lost",
			      (unsigned long long)i,
			      (unsigned long long)produced);
		*dups += seen[i] - 1u;
	}
	for (uint64_t i = produced; i < s->max; i++)
		cr_assert_eq(seen[i], 0, "message %llu seen, %llu put",
			     (unsigned long long)i,
			     (unsigned long long)produced);
	lfipc_array_close(s->seen);
	lfipc_array_close(s->ctl);
	return produced;
}
