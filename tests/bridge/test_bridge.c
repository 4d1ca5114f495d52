/* SPDX-License-Identifier: MIT */
/*
 * test_bridge.c - lfipc-bridge end to end on 127.0.0.1: the real program,
 * fork+exec'd, SIGKILLed, SIGSTOPped and restarted, between two regions
 * of this machine. Every message carries a sequence number and a check
 * word; the consumer counts each number it sees.
 *
 * Scale: LFIPC_STRESS_SCALE (1 in make check) sets the number of SIGKILL
 * rounds per side, 20 x scale up to the 200 of issue 14 (make stress).
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

#include <lfipc.h>
#include <lfipc/bridge.h>

#include "common/testhelp.h"

#define REGION_SIZE ((size_t)24 << 20)
#define MSG 16

struct msg {
	uint64_t seq, check;
};

static uint64_t check_of(uint64_t seq)
{
	return seq * 0x9e3779b97f4a7c15ull ^ 0x5bd1e995u;
}

/* One test's world: a source region and queue, a destination region and
 * queue, and the two bridge processes between them. */
static struct world {
	char src[64], dst[64], epfile[256], dir[128];
	char ep[256];
	lfipc_region *rs, *rd;
	lfipc_queue *qs, *qd;
	pid_t tx, rx, prod, cons; /* killed and reaped by fini() */
	/* RSS is to measure live memory: under AddressSanitizer its
	 * quarantine keeps every freed block resident (each re-sent batch,
	 * 256 KiB, stayed: +1.5 MiB in 2.5 s), so spawn() turns it off */
	bool live_rss;
} W;

static void world_up(size_t src_cap, size_t dst_cap, size_t msg_size)
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

static void kill_reap(pid_t *pid)
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
	lfipc_region_unlink(W.src);
	lfipc_region_unlink(W.dst);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", W.dir);
	if (system(cmd) != 0)
		cr_log_warn("could not remove %s", W.dir);
}

static void fini(void)
{
	world_down();
}

/* The last of what the bridge processes wrote to stderr (their log), for
 * failure messages: a sanitizer's report, an error. */
static const char *log_tail(void)
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
static pid_t spawn(const char *const *args)
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
static void start_rx(const char *const *extra)
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

static void start_tx(const char *const *extra)
{
	const char *v[32] = {"send", "--to",	W.ep, "--region",
			     W.src,  "--queue", "q",  "--quiet"};
	int n = 8;

	push(v, &n, extra);
	W.tx = spawn(v);
}

static const char *const INSECURE[] = {"--insecure", NULL};

static void stats(lfipc_region *r, lfipc_bridge_stats *s)
{
	cr_assert_eq(lfipc_bridge_stats_read(r, "q", s), 0);
}

/* ---- producers and consumers ------------------------------------------ */

struct prod {
	const char *region;
	uint64_t n;  /* messages to put; 0: until ctl[0] is set */
	size_t size; /* message size (>= 16) */
	uint64_t cap; /* n 0: put at most this many, then wait (0: no cap) */
};

/* Put n numbered messages, then shut the source queue down. Counts in the
 * Array "ctl" of the source region: [0] stop, [1] messages put. With n 0
 * and a cap, it stops putting at the cap and waits for the stop (the
 * numbers must stay below the size of the consumer's record). */
static int producer(void *arg)
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

static lfipc_array *ctl_create(void)
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

static int consume_into(lfipc_queue *q, uint8_t *seen, uint64_t max,
			uint64_t *got, bool in_order)
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

static int consumer(void *arg)
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
static void expect_exit0(pid_t *pid, const char *who)
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

/* ---- tests --------------------------------------------------------------- */

Test(bridge, moves_a_million_messages_in_order_exactly_once, .fini = fini,
     .timeout = 900)
{
	uint64_t n = 1000000, got = 0;
	struct prod p = {W.src, 0, MSG, 0};
	uint8_t *seen;
	lfipc_bridge_stats s;

	world_up(4096, 4096, MSG);
	p.region = W.src;
	p.n = n;
	lfipc_array_close(ctl_create());
	start_rx(INSECURE);
	start_tx(INSECURE);
	W.prod = th_fork(producer, &p);
	seen = calloc(n, 1);
	cr_assert(seen);
	cr_assert_eq(consume_into(W.qd, seen, n, &got, true), 0);
	cr_assert_eq(got, n);
	for (uint64_t i = 0; i < n; i++)
		cr_assert_eq(seen[i], 1, "seq %llu seen %u times",
			     (unsigned long long)i, seen[i]);
	expect_exit0(&W.prod, "producer");
	expect_exit0(&W.tx, "sender");
	expect_exit0(&W.rx, "receiver");
	stats(W.rs, &s);
	cr_assert(s.has_tx);
	cr_assert_eq(s.tx_acked, n);
	cr_assert_eq(s.tx_sent, n);
	cr_assert_eq(s.tx_inflight, 0);
	stats(W.rd, &s);
	cr_assert(s.has_rx);
	cr_assert_eq(s.rx_received, n);
	cr_assert_eq(s.dup_possible, 0);
	cr_assert_lt(s.rx_batches, n / 4, "no batching: %llu batches",
		     (unsigned long long)s.rx_batches);
	cr_log_info("1M: %llu batches, %llu copies dropped",
		    (unsigned long long)s.rx_batches,
		    (unsigned long long)s.rx_dup_dropped);
	free(seen);
}

/* Fail at once, with its status, if the producer or the consumer child
 * has ended before its time (instead of a stall found minutes later). */
static void expect_alive(pid_t *pid, const char *who)
{
	int st;

	if (*pid <= 0 || waitpid(*pid, &st, WNOHANG) != *pid)
		return;
	*pid = 0; /* reaped: fini() must not kill the number again */
	cr_assert_fail("%s ended early, status %d (signal %d)", who,
		       WIFEXITED(st) ? WEXITSTATUS(st) : -1,
		       WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static int rounds(void)
{
	int r = 20 * th_scale();

	return r > 200 ? 200 : r;
}

/* SIGKILL rounds of either side between a source queue of src_cap slots
 * of msg_size bytes and a destination of dst_cap; windows[] (0-ended,
 * NULL: the default) are the --window of the successive senders. */
static void sigkill_rounds(size_t src_cap, size_t dst_cap, size_t msg_size,
			   const char *const *windows);

Test(bridge, sigkill_of_either_side_loses_no_acknowledged_message, .fini = fini,
     .timeout = 900)
{
	sigkill_rounds(1024, 256, MSG, NULL);
}

/* The default window of a big source queue (32768 slots: 16384, 16 KiB
 * batches of 64 B messages), as lfipc-bridge runs by default. */
Test(bridge, sigkill_with_the_default_big_window_loses_nothing,
     .fini = fini, .timeout = 900)
{
	sigkill_rounds(32768, 4096, 64, NULL);
}

/* Each restarted sender asks for another window than the one that made
 * the state (smaller, bigger, the default). */
Test(bridge, sigkill_with_changing_windows_loses_nothing, .fini = fini,
     .timeout = 900)
{
	static const char *const w[] = {"16", "16384", "0", "1", "3000",
					"65536", "100", NULL};

	sigkill_rounds(32768, 4096, 64, w);
}

static void start_tx_window(const char *const *windows, int i)
{
	const char *v[4] = {"--insecure", NULL, NULL, NULL};
	const char *wv;
	int n = 0;

	if (!windows) {
		start_tx(INSECURE);
		return;
	}
	while (windows[n])
		n++;
	wv = windows[i % n];
	if (strcmp(wv, "0") != 0) {
		v[1] = "--window";
		v[2] = wv;
	}
	start_tx(v);
}

static void sigkill_rounds(size_t src_cap, size_t dst_cap, size_t msg_size,
			   const char *const *windows)
{
	const uint64_t max = (uint64_t)8 << 20;
	struct prod p = {NULL, 0, msg_size, 0};
	int ntx = 0;
	lfipc_array *ctl, *seenv;
	lfipc_bridge_stats s, t;
	uint64_t seed = (uint64_t)getpid() * 7919, produced = 0, dups = 0;
	int64_t v;
	int nr = rounds();
	uint8_t *seen;

	world_up(src_cap, dst_cap, msg_size);
	p.region = W.src;
	/* a bridge moving over 400,000 messages a second fills the record
	 * in the 200 rounds of make stress */
	p.cap = max - 200000;
	ctl = ctl_create();
	cr_assert_eq(
	    lfipc_array_create(W.rd, "seen", LFIPC_U8, max, false, &seenv), 0);
	start_rx(INSECURE);
	start_tx_window(windows, ntx++);
	W.prod = th_fork(producer, &p);
	W.cons = th_fork(consumer, W.dst);
	for (int i = 0; i < 2 * nr; i++) {
		bool tx = (th_rand(&seed) & 1) ? i % 2 == 0 : i % 2 == 1;

		/* a side lives 10..150 ms: long enough to start (exec, region,
		 * connection) and move messages, short enough to die at any
		 * point of its work */
		usleep(10000 + th_rand(&seed) % 140000);
		expect_alive(&W.prod, "producer");
		expect_alive(&W.cons, "consumer");
		cr_assert_eq(lfipc_array_load(ctl, 1, &v), 0);
		cr_assert_lt((uint64_t)v, max - 100000, "too many messages");
		if (tx) {
			kill_reap(&W.tx);
			start_tx_window(windows, ntx++);
		} else {
			kill_reap(&W.rx);
			start_rx(INSECURE);
		}
	}
	cr_assert_eq(lfipc_array_store(ctl, 0, 1), 0); /* producer: stop */
	expect_exit0(&W.prod, "producer");
	expect_exit0(&W.tx, "sender");
	expect_exit0(&W.rx, "receiver");
	expect_exit0(&W.cons, "consumer");
	cr_assert_eq(lfipc_array_load(ctl, 1, &v), 0);
	produced = (uint64_t)v;
	seen = lfipc_array_data(seenv);
	for (uint64_t i = 0; i < produced; i++) {
		cr_assert_geq(seen[i], 1, "message %llu of %llu lost",
			      (unsigned long long)i,
			      (unsigned long long)produced);
		dups += seen[i] - 1u;
	}
	for (uint64_t i = produced; i < max; i++)
		cr_assert_eq(seen[i], 0);
	stats(W.rs, &s);
	stats(W.rd, &t);
	/* (tx.acked is a statistic: a kill between a release and its count
	 * leaves it one low, so it is not compared with produced here) */
	cr_assert_leq(
	    dups, s.tx_dup_possible + t.rx_dup_possible,
	    "%llu duplicates, %llu counted", (unsigned long long)dups,
	    (unsigned long long)(s.tx_dup_possible + t.rx_dup_possible));
	cr_log_info("%d kills per side, %llu messages, %llu duplicates "
		    "delivered (%llu counted possible), %llu copies dropped",
		    nr, (unsigned long long)produced, (unsigned long long)dups,
		    (unsigned long long)(s.tx_dup_possible + t.rx_dup_possible),
		    (unsigned long long)t.rx_dup_dropped);
	lfipc_array_close(seenv);
	lfipc_array_close(ctl);
}

static long rss_kib(pid_t pid)
{
	char path[64];
	long pages = 0, rss = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/statm", (long)pid);
	f = fopen(path, "r");
	cr_assert(f);
	cr_assert_eq(fscanf(f, "%ld %ld", &pages, &rss), 2);
	fclose(f);
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Wait until pid is stopped (kill() only queues the SIGSTOP). */
static void wait_stopped(pid_t pid)
{
	char path[64], buf[512], *p;
	int64_t end = th_now_ns() + INT64_C(120000000000);

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	for (;; usleep(1000)) {
		FILE *f = fopen(path, "r");
		size_t k;

		cr_assert(f);
		k = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[k] = '\0';
		p = strrchr(buf, ')'); /* the state follows the name */
		if (p && p[1] == ' ' && (p[2] == 'T' || p[2] == 't'))
			return;
		cr_assert_lt(th_now_ns(), end, "%ld never stopped", (long)pid);
	}
}

static void stopped_receiver(size_t src_cap, size_t dst_cap, size_t size);

Test(bridge, stopped_receiver_blocks_producers_and_sender_memory_stays_flat,
     .fini = fini, .timeout = 900)
{
	stopped_receiver(256, 64, 4096);
}

/* The same with the default window of a big source queue: 16384 messages
 * of 64 B in flight, each resend a whole 1 MiB window. */
Test(bridge, stopped_receiver_with_the_big_default_window, .fini = fini,
     .timeout = 900)
{
	stopped_receiver(32768, 4096, 64);
}

static void stopped_receiver(size_t src_cap, size_t dst_cap, size_t size)
{
	struct prod p = {NULL, 0, size, 0};
	lfipc_bridge_stats s, t;
	lfipc_array *ctl;
	int64_t b;
	long r1, r2;
	uint64_t got;
	uint8_t *seen;
	const uint64_t max = (uint64_t)4 << 20;

	world_up(src_cap, dst_cap, size);
	W.live_rss = true;
	p.region = W.src;
	ctl = ctl_create();
	start_rx(INSECURE);
	start_tx(INSECURE);
	W.prod = th_fork(producer, &p);
	/* the destination fills first (nobody takes from it yet) */
	for (int64_t end = th_now_ns() + INT64_C(120000000000);
	     !lfipc_queue_full(W.qd); usleep(1000))
		cr_assert_lt(th_now_ns(), end, "the destination never filled");
	cr_assert_eq(kill(W.rx, SIGSTOP), 0);
	wait_stopped(W.rx);
	stats(W.rd, &t); /* frozen now: the receiver is stopped */
	/* Everything fills up: the source (the sender's window holds peeked
	 * slots: they count as taken). Waited for, however slow the
	 * machine: no fixed sleep decides it. */
	for (int64_t end = th_now_ns() + INT64_C(120000000000);;
	     usleep(10000)) {
		stats(W.rs, &s);
		if (lfipc_queue_qsize(W.qs) + s.tx_inflight ==
		    lfipc_queue_capacity(W.qs))
			break;
		cr_assert_lt(th_now_ns(), end,
			     "the source never filled: %zu + %llu in it",
			     lfipc_queue_qsize(W.qs),
			     (unsigned long long)s.tx_inflight);
	}
	/* Resends meet a stopped peer. The first ones may still fill what
	 * is bounded anyway (ZeroMQ's pipes up to their high-water marks,
	 * the allocator's caches: one TSan run grew 1.4 MiB in the 2.5 s
	 * right after the fill, and 6 of 6 re-runs did not); memory that
	 * grows with the resends grows in every interval. So the growth is
	 * measured over 2.5 s after a first second of them. */
	usleep(1000000);
	r1 = rss_kib(W.tx);
	usleep(2500000);
	r2 = rss_kib(W.tx);
	/* Back-pressure, exactly: a put beyond the source's capacity needs a
	 * release, a release an acknowledgement, and the stopped receiver
	 * has acknowledged at most what it put. (Acknowledgements it sent
	 * before it stopped may still land: no equality over time.) */
	cr_assert_eq(lfipc_array_load(ctl, 1, &b), 0);
	cr_assert_leq((uint64_t)b, lfipc_queue_capacity(W.qs) + t.rx_received,
		      "producer not blocked: %lld puts, %zu + %llu possible",
		      (long long)b, lfipc_queue_capacity(W.qs),
		      (unsigned long long)t.rx_received);
	cr_assert_lt(r2 - r1, 1024, "sender RSS grew from %ld to %ld KiB", r1,
		     r2);
	cr_log_info("sender RSS %ld -> %ld KiB while the receiver was stopped",
		    r1, r2);
	cr_assert_eq(kill(W.rx, SIGCONT), 0);
	cr_assert_eq(lfipc_array_store(ctl, 0, 1), 0);
	seen = calloc(max, 1);
	cr_assert(seen);
	cr_assert_eq(consume_into(W.qd, seen, max, &got, true), 0);
	expect_exit0(&W.prod, "producer");
	cr_assert_eq(lfipc_array_load(ctl, 1, &b), 0);
	cr_assert_eq(got, (uint64_t)b);
	expect_exit0(&W.tx, "sender");
	expect_exit0(&W.rx, "receiver");
	free(seen);
	lfipc_array_close(ctl);
}

static void keygen(const char *name)
{
	char path[256];
	const char *v[] = {"keygen", path, NULL};

	snprintf(path, sizeof(path), "%s/%s", W.dir, name);
	cr_assert_eq(th_reap(spawn(v), 120000), 0);
}

/* Put one message into the source and report whether it arrives within
 * ms milliseconds. */
static bool one_arrives(int ms)
{
	char buf[MSG] = "hello";
	size_t len;

	cr_assert_eq(lfipc_queue_put(W.qs, buf, sizeof(buf), LFIPC_NOWAIT), 0);
	return lfipc_queue_get(W.qd, buf, sizeof(buf), &len,
			       (int64_t)ms * 1000000) == 0;
}

Test(bridge, curve_round_trip_works_and_a_wrong_key_is_refused, .fini = fini,
     .timeout = 900)
{
	char skey[256], spub[256], ckey[256], cpub[256], wkey[256], opub[256];
	const char *rxo[] = {"--curve-key", skey, "--curve-allow", cpub, NULL};
	const char *good[] = {"--curve-key", ckey, "--curve-server", spub,
			      NULL};
	const char *wrong[] = {"--curve-key", wkey, "--curve-server", spub,
			       NULL};
	const char *badsrv[] = {"--curve-key", ckey, "--curve-server", opub,
				NULL};
	lfipc_bridge_stats s;

	world_up(64, 64, MSG);
	keygen("server");
	keygen("client");
	keygen("wrong");
	keygen("other");
	snprintf(skey, sizeof(skey), "%s/server", W.dir);
	snprintf(spub, sizeof(spub), "%s/server.pub", W.dir);
	snprintf(ckey, sizeof(ckey), "%s/client", W.dir);
	snprintf(cpub, sizeof(cpub), "%s/client.pub", W.dir);
	snprintf(wkey, sizeof(wkey), "%s/wrong", W.dir);
	snprintf(opub, sizeof(opub), "%s/other.pub", W.dir);
	start_rx(rxo);

	/* a client key the receiver does not allow */
	start_tx(wrong);
	/* wait for the refusal (the sender's start-up is slow under the
	 * sanitizers and a loaded machine), then for nothing to arrive */
	for (int64_t end = th_now_ns() + INT64_C(120000000000);;) {
		stats(W.rd, &s);
		if (s.rx_auth_denied >= 1)
			break;
		cr_assert_lt(th_now_ns(), end, "no refusal counted; log: %s",
			     log_tail());
		usleep(10000);
	}
	cr_assert_not(one_arrives(1500), "an unknown client got through");
	kill(W.tx, SIGTERM);
	expect_exit0(&W.tx, "sender (SIGTERM)");

	/* a sender that expects another server key */
	start_tx(badsrv);
	cr_assert_not(one_arrives(1500), "delivered to the wrong server key");
	kill(W.tx, SIGTERM);
	expect_exit0(&W.tx, "sender (SIGTERM)");

	/* the right keys: one more, then the two that were waiting */
	start_tx(good);
	cr_assert(one_arrives(120000), "CURVE round trip failed; log: %s",
		  log_tail());
	for (int i = 0; i < 2; i++) {
		char buf[MSG];
		size_t len;

		cr_assert_eq(lfipc_queue_get(W.qd, buf, sizeof(buf), &len,
					     INT64_C(120000000000)),
			     0);
		cr_assert_str_eq(buf, "hello");
	}
	cr_assert_eq(lfipc_queue_shutdown(W.qs), 0);
	expect_exit0(&W.tx, "sender");
	expect_exit0(&W.rx, "receiver");
	cr_assert(lfipc_queue_empty(W.qd));
}

Test(bridge, plain_tcp_needs_insecure_and_stat_prints_counters, .fini = fini,
     .timeout = 900)
{
	const char *noflag[] = {"send",	    "--to", "tcp://127.0.0.1:1",
				"--region", NULL,   "--queue",
				"q",	    NULL};
	char path[256], line[256];
	int fd, st;
	bool found = false;
	FILE *f;
	pid_t pid;

	world_up(64, 64, MSG);
	noflag[4] = W.src;
	cr_assert_eq(th_reap(spawn(noflag), 120000), 2);
	start_rx(INSECURE);
	start_tx(INSECURE);
	cr_assert(one_arrives(120000), "nothing arrived; log: %s", log_tail());
	kill(W.rx, SIGTERM);
	expect_exit0(&W.rx, "receiver (SIGTERM)");
	kill(W.tx, SIGTERM);
	expect_exit0(&W.tx, "sender (SIGTERM)");

	snprintf(path, sizeof(path), "%s/stat.out", W.dir);
	pid = fork();
	if (pid == 0) {
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 1);
		const char *v[] = {BRIDGE_PROG, "stat", "--region", W.dst,
				   "--queue",	"q",	NULL};

		execv(BRIDGE_PROG, (char *const *)v);
		_exit(127);
	}
	st = th_reap(pid, 120000);
	cr_assert_eq(st, 0);
	f = fopen(path, "r");
	cr_assert(f);
	while (fgets(line, sizeof(line), f))
		found |= strcmp(line, "rx.received 1\n") == 0;
	fclose(f);
	cr_assert(found, "stat did not print rx.received 1");
}

/* A SIGTERM at any moment of a side's start-up (before it has opened its
 * region, while it connects or binds, once it runs) stops it cleanly with
 * status 0: it is never killed by it, nor left running. */
/* ---- a restarted sender while dead claims cannot be rescued ------------- */

static int clear_forever(void *arg)
{
	(void)arg;
	for (;;)
		lfipc_queue_clear(W.qs);
	return 0;
}

/* A sender that peeks its window towards an endpoint nobody listens on. */
static int send_nowhere(void *arg)
{
	lfipc_bridge *b;

	if (lfipc_bridge_send_open(W.rs, "q", "tcp://127.0.0.1:1", arg, &b))
		return 3;
	lfipc_bridge_run(b);
	return 4;
}

static void qstat(lfipc_queue_status *st)
{
	memset(st, 0, sizeof(*st));
	st->struct_size = sizeof(*st);
	cr_assert_eq(lfipc_queue_stat(W.qs, st), 0);
}

/* Wait (20 s at most) until the source queue has n messages peeked. */
static void wait_peeked(size_t n)
{
	lfipc_queue_status st;

	for (int i = 0;; i++) {
		qstat(&st);
		if (st.reading >= n)
			break;
		cr_assert_lt(i, 20000, "the sender peeked %zu of %zu",
			     st.reading, n);
		usleep(1000);
	}
}

/*
 * Found by a hostile review: a clearer stopped while it holds the source
 * queue's lock keeps a dead sender's peeked slots from becoming orphans
 * (a rescue only tries the lock). The restarted sender's recovery then
 * peeked every new message while it waited for them (5,984 of 6,000,
 * beyond its 4,160-entry table: messages forgotten, others sent twice).
 * It must peek nothing new while dead claims wait, give up after its 5 s,
 * and count each of the dead sender's messages as a possible duplicate.
 */
Test(bridge, a_restarted_sender_peeks_nothing_new_while_dead_claims_wait,
     .fini = fini, .timeout = 120)
{
	lfipc_bridge_opts o;
	lfipc_queue_status st;
	lfipc_bridge_stats s;
	lfipc_bridge *b;
	int tries = 0;
	uint64_t seed = (uint64_t)getpid();

	world_up(8192, 16, 16);
	memset(&o, 0, sizeof(o));
	o.insecure = true;
	o.window = 16;
	/* a clearer stopped while it holds the queue lock: our own clear
	 * then says -EBUSY (busy for over a second: a few tries) */
	W.prod = th_fork(clear_forever, NULL);
	for (;;) {
		int st_;

		usleep(2000 + th_rand(&seed) % 3000);
		kill(W.prod, SIGSTOP);
		cr_assert_eq(waitpid(W.prod, &st_, WUNTRACED), W.prod);
		if (lfipc_queue_clear(W.qs) == -EBUSY)
			break;
		kill(W.prod, SIGCONT);
		if (++tries == 300)
			cr_skip_test("never caught the clearer holding the lock");
	}
	for (uint64_t i = 0; i < 6000; i++)
		cr_assert_eq(lfipc_queue_put(W.qs, &i, sizeof(i), LFIPC_NOWAIT),
			     0);
	/* sender A peeks its window, then dies: 16 dead claims */
	W.tx = th_fork(send_nowhere, &o);
	wait_peeked(16);
	usleep(50000);
	kill_reap(&W.tx);
	qstat(&st);
	cr_assert_eq(st.dead_claims, 16);
	cr_assert_eq(st.reading, 0);
	/* sender B: recovery waits (the lock stays held), peeks nothing */
	cr_assert_eq(lfipc_bridge_send_open(W.rs, "q", "tcp://127.0.0.1:1",
					    &o, &b),
		     0);
	qstat(&st);
	cr_assert_eq(st.reading, 0, "sender B peeked %zu", st.reading);
	cr_assert_eq(st.dead_claims, 16);
	lfipc_bridge_close(b);
	stats(W.rs, &s);
	cr_assert_eq(s.tx_dup_possible, 16);
	kill_reap(&W.prod);
}

/* Make the source queue's sender state as a sender with options *o does
 * (opened and closed at once, towards nowhere). */
static void make_state(const lfipc_bridge_opts *o)
{
	lfipc_bridge *b;

	cr_assert_eq(lfipc_bridge_send_open(W.rs, "q", "tcp://127.0.0.1:1", o,
					    &b),
		     0);
	lfipc_bridge_close(b);
}

/* The sender's state is sized for the window of the sender that made it
 * (16 bytes per message in the source region): a later sender asking for
 * more keeps to it, and peeks no more than it holds. */
Test(bridge, a_sender_keeps_to_the_window_its_state_was_made_for,
     .fini = fini, .timeout = 120)
{
	lfipc_bridge_opts o;
	lfipc_queue_status st;
	lfipc_array *a;

	world_up(1024, 16, 16);
	memset(&o, 0, sizeof(o));
	o.insecure = true;
	o.window = 16;
	make_state(&o);
	cr_assert_eq(lfipc_array_open(W.rs, "q.btx", &a), 0);
	cr_assert_eq(lfipc_array_len(a), 16 + 2 * (16 + 64));
	lfipc_array_close(a);
	for (uint64_t i = 0; i < 500; i++)
		cr_assert_eq(lfipc_queue_put(W.qs, &i, sizeof(i), LFIPC_NOWAIT),
			     0);
	o.window = 400;
	W.tx = th_fork(send_nowhere, &o);
	wait_peeked(16);
	usleep(200000);
	qstat(&st);
	cr_assert_eq(st.reading, 16, "window 16 made the state, peeked %zu",
		     st.reading);
	kill_reap(&W.tx);
}

/* A state Array of a sender's shape but scribbled by a hostile peer: every
 * table length at and near the limits, TX_NEXT at 0, 1 and near 2^64,
 * entries pointing anywhere, TX_RELEASING runs of any width. A sender
 * refuses it (-EPROTO) or recovers and runs; it never crashes, hangs or
 * touches memory out of bounds (run under AddressSanitizer). */
struct scribble {
	size_t table;
	uint64_t next, rel, rel_end, seed;
	int mode; /* 0 random words, 1 entries around next, 2 all at next */
};

/* The real program on the scribbled state, to nowhere, stopped by SIGTERM
 * after a while (forked children that make threads meet ThreadSanitizer's
 * "dup thread with used id"): 0 recovered and ran, 3 refused. */
static int run_scribbled(void)
{
	const char *v[] = {"send",  "--to",	"tcp://127.0.0.1:1",
			   "--region", W.src, "--queue", "q",
			   "--insecure", NULL};
	const char *log;
	char path[300];
	pid_t pid;
	int st;

	snprintf(path, sizeof(path), "%s/log", W.dir);
	unlink(path);
	pid = spawn(v);
	usleep(300000);
	kill(pid, SIGTERM);
	st = th_reap(pid, 30000);
	log = log_tail();
	if (strstr(log, "Sanitizer") || strstr(log, "runtime error"))
		return 100;
	if (st == 1 && strstr(log, "makes no sense"))
		return 3;
	return st;
}

Test(bridge, a_scribbled_state_is_refused_or_recovered, .fini = fini,
     .timeout = 600)
{
	const uint64_t top = UINT64_MAX;
	const struct scribble c[] = {
	    {1 + 64, 1, 0, 0, 1, 0},
	    {1 + 64, 0, 0, 0, 2, 0},
	    {1 + 64, top, 0, 0, 3, 1},
	    {1 + 64, top - 1, top - 3, top, 4, 2},
	    {16 + 64, 1000, 990, 2000, 5, 1},
	    {16 + 64, 1000, 990, 995, 6, 2},
	    {16 + 64, 3, 1, 0, 7, 1},
	    {16 + 64, top, 1, top, 8, 0},
	    {4096 + 64, 100000, 99000, 99999, 9, 1},
	    {4096 + 64, top - 10, top - 4000, top - 20, 10, 1},
	    {LFIPC_BRIDGE_MAX_WINDOW + 64, 1ull << 40, (1ull << 40) - 100,
	     (1ull << 40) + 100, 11, 1},
	    {LFIPC_BRIDGE_MAX_WINDOW + 64, top, top - 70000, top, 12, 2},
	    {LFIPC_BRIDGE_MAX_WINDOW + 64, 5, 0, 0, 13, 0},
	    {16 + 64, 200, 150, 250, 14, 3},
	};

	world_up(1024, 16, 16);
	for (uint64_t i = 0; i < 500; i++)
		cr_assert_eq(lfipc_queue_put(W.qs, &i, sizeof(i), LFIPC_NOWAIT),
			     0);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		size_t len = 16 + 2 * c[i].table;
		uint64_t seed = c[i].seed, *w;
		lfipc_array *a;
		int st;

		cr_assert_eq(lfipc_array_create(W.rs, "q.btx", LFIPC_U64, len,
						true, &a),
			     0, "case %zu", i);
		w = lfipc_array_data(a);
		for (size_t k = 0; k < len; k++)
			w[k] = th_rand(&seed);
		w[0] = 0x3130585442464c4cull;
		w[1] = seed | 1;
		w[2] = c[i].next;
		w[3] = c[i].rel;
		w[11] = c[i].rel_end;
		for (size_t k = 0; k < c[i].table; k++) {
			uint64_t s = th_rand(&seed);

			if (c[i].mode == 1) /* a plausible seq, any offset */
				s = c[i].next - (th_rand(&seed) % (c[i].table + 3));
			if (c[i].mode == 2)
				s = c[i].next - k;
			if (c[i].mode == 3) /* consistent: seq at its index */
				s = c[i].next - c[i].table - 1 +
				    ((k - (c[i].next - c[i].table - 1)) %
				     c[i].table);
			w[16 + 2 * k] = s;
		}
		st = run_scribbled();
		cr_expect(st == 0 || st == 3,
			  "case %zu: sender ended with %d; log: %s", i, st,
			  log_tail());
		cr_log_info("case %zu: %s", i, st == 0 ? "recovered, ran"
					       : st == 3 ? "refused"
							 : "FAILED");
		lfipc_array_close(a);
		cr_assert_eq(lfipc_object_remove(W.rs, "q.btx"), 0);
		/* give back what the dead or closed sender held */
		lfipc_region_recover(W.rs);
	}
}

/* The lengths at and next to the limits of what a sender makes, the fixed
 * length of the versions before round 11, the other element types, an
 * Array without its Lock, and another kind of object
 * under the name: accepted exactly when a sender could have made it. */
Test(bridge, state_shapes_at_the_limits, .fini = fini, .timeout = 120)
{
	static const struct {
		lfipc_type type;
		size_t len;
		bool lock;
		int want;
	} c[] = {
	    {LFIPC_U64, 1, true, -EPROTO},
	    {LFIPC_U64, 16, true, -EPROTO},
	    {LFIPC_U64, 16 + 2 * 65 - 2, true, -EPROTO},
	    {LFIPC_U64, 16 + 2 * 65 - 1, true, -EPROTO},
	    {LFIPC_U64, 16 + 2 * 65, true, 0}, /* window 1 */
	    {LFIPC_U64, 16 + 2 * 65 + 1, true, -EPROTO},
	    {LFIPC_U64, 16 + 2 * 65 + 2, true, 0},
	    {LFIPC_U64, 16 + 2 * (LFIPC_BRIDGE_MAX_WINDOW + 64) - 1, true,
	     -EPROTO},
	    {LFIPC_U64, 16 + 2 * (LFIPC_BRIDGE_MAX_WINDOW + 64), true, 0},
	    {LFIPC_U64, 16 + 2 * (LFIPC_BRIDGE_MAX_WINDOW + 64) + 2, true,
	     -EPROTO},
	    {LFIPC_U64, 16 + 2 * (4096 + 64), true, 0}, /* before round 11 */
	    {LFIPC_U64, 16 + 2 * (16 + 64), false, -EPROTO}, /* no Lock */
	    {LFIPC_U8, 16 + 2 * (16 + 64), true, -EPROTO},
	    {LFIPC_U32, 16 + 2 * (16 + 64), true, -EPROTO},
	    {LFIPC_F64, 16 + 2 * (16 + 64), true, -EPROTO},
	};
	lfipc_bridge_opts o;
	lfipc_bridge_stats s;
	lfipc_queue *q;
	lfipc_bridge *b = NULL;
	int rc;

	world_up(64, 16, 16);
	memset(&o, 0, sizeof(o));
	o.insecure = true;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		lfipc_array *a;

		b = NULL;
		rc = lfipc_array_create(W.rs, "q.btx", c[i].type, c[i].len,
					c[i].lock, &a);
		cr_assert_eq(rc, 0, "case %zu: create %d", i, rc);
		rc = lfipc_bridge_send_open(W.rs, "q", "tcp://127.0.0.1:1", &o,
					    &b);
		cr_expect_eq(rc, c[i].want, "case %zu: %d", i, rc);
		if (rc == 0) {
			lfipc_bridge_close(b);
			stats(W.rs, &s);
			cr_assert(s.has_tx);
		} else if (c[i].lock) {
			/* (stat reads the counters of one without a Lock) */
			cr_expect_eq(lfipc_bridge_stats_read(W.rs, "q", &s),
				     c[i].want, "case %zu", i);
		}
		lfipc_array_close(a);
		cr_assert_eq(lfipc_object_remove(W.rs, "q.btx"), 0);
	}
	/* a Queue under the state's name */
	cr_assert_eq(lfipc_queue_create(W.rs, "q.btx", 4, 16, 0, &q), 0);
	rc = lfipc_bridge_send_open(W.rs, "q", "tcp://127.0.0.1:1", &o, &b);
	cr_expect_neq(rc, 0);
	cr_log_info("a Queue named q.btx: send_open %d (%s)", rc,
		    strerror(-rc));
	lfipc_queue_close(q);
	cr_assert_eq(lfipc_object_remove(W.rs, "q.btx"), 0);
}

/* With the big default window (16384 in flight), either side SIGSTOPped
 * for seconds: the other one, asked to stop (SIGTERM), still stops within
 * a few resend intervals, its memory flat meanwhile; restarted and let go
 * on, nothing is lost. */
static void stop_reap_within(pid_t *pid, const char *who, int ms)
{
	int64_t t0 = th_now_ns();
	int st;

	cr_assert_eq(kill(*pid, SIGTERM), 0);
	st = th_reap(*pid, ms);
	*pid = 0;
	cr_assert_eq(st, 0, "%s asked to stop ended with %d after %lld ms; "
		     "log: %s", who, st,
		     (long long)((th_now_ns() - t0) / 1000000), log_tail());
	cr_log_info("%s stopped in %lld ms while its peer was stopped", who,
		    (long long)((th_now_ns() - t0) / 1000000));
}

/* SIGSTOP one side (the receiver if rx), check the other's RSS stays flat
 * for 2 s, ask the other to stop (SIGTERM: it must exit within 3 s),
 * start it again and SIGCONT the stopped one. */
static void stop_while_the_peer_is_stopped(bool rx)
{
	pid_t *peer = rx ? &W.rx : &W.tx, *side = rx ? &W.tx : &W.rx;
	const char *who = rx ? "sender" : "receiver";
	long r1, r2;

	cr_assert_eq(kill(*peer, SIGSTOP), 0);
	wait_stopped(*peer);
	usleep(1000000);
	r1 = rss_kib(*side);
	usleep(2000000);
	r2 = rss_kib(*side);
	cr_expect_lt(r2 - r1, 1024, "%s RSS %ld -> %ld KiB", who, r1, r2);
	stop_reap_within(side, who, 3000);
	if (rx)
		start_tx(INSECURE);
	else
		start_rx(INSECURE);
	cr_assert_eq(kill(*peer, SIGCONT), 0);
}

Test(bridge, a_side_stops_on_request_while_the_big_window_peer_is_stopped,
     .fini = fini, .timeout = 600)
{
	const uint64_t max = (uint64_t)8 << 20;
	struct prod p = {NULL, 0, 64, 0};
	lfipc_array *ctl, *seenv;
	lfipc_bridge_stats s;
	int64_t v;
	uint8_t *seen;

	world_up(32768, 4096, 64);
	W.live_rss = true;
	p.region = W.src;
	p.cap = max - 200000;
	ctl = ctl_create();
	cr_assert_eq(
	    lfipc_array_create(W.rd, "seen", LFIPC_U8, max, false, &seenv), 0);
	start_rx(INSECURE);
	start_tx(INSECURE);
	W.prod = th_fork(producer, &p);
	W.cons = th_fork(consumer, W.dst);
	for (int64_t end = th_now_ns() + INT64_C(60000000000);; usleep(10000)) {
		if (lfipc_bridge_stats_read(W.rs, "q", &s) == 0 &&
		    s.tx_inflight >= 8192)
			break;
		cr_assert_lt(th_now_ns(), end, "never 8192 in flight");
	}
	/* the receiver stopped: the sender resends into it, then is asked
	 * to stop; then the other way round */
	stop_while_the_peer_is_stopped(true);
	usleep(500000);
	stop_while_the_peer_is_stopped(false);
	usleep(1000000);
	cr_assert_eq(lfipc_array_store(ctl, 0, 1), 0); /* producer: stop */
	expect_exit0(&W.prod, "producer");
	expect_exit0(&W.tx, "sender");
	expect_exit0(&W.rx, "receiver");
	expect_exit0(&W.cons, "consumer");
	cr_assert_eq(lfipc_array_load(ctl, 1, &v), 0);
	seen = lfipc_array_data(seenv);
	for (uint64_t i = 0; i < (uint64_t)v; i++)
		cr_assert_geq(seen[i], 1, "message %llu of %lld lost",
			      (unsigned long long)i, (long long)v);
	lfipc_array_close(seenv);
	lfipc_array_close(ctl);
}

/* A scribbled state whose oldest entry is one number further back than
 * any sender leaves (TX_NEXT - table - 1, at the index of TX_NEXT - 1):
 * recovery must not send one message under two numbers. */
struct alias_arg {
	size_t table;
};

static int peek_and_scribble(void *arg)
{
	const struct alias_arg *x = arg;
	lfipc_region *r;
	lfipc_queue *q;
	lfipc_array *a;
	const void *m1, *m2;
	size_t l;
	uint64_t *w, next = 200;

	if (lfipc_region_open(W.src, &r) || lfipc_queue_open(r, "q", &q) ||
	    lfipc_array_open(r, "q.btx", &a))
		return 10;
	if (lfipc_queue_peek(q, &m1, &l, LFIPC_NOWAIT) ||
	    lfipc_queue_peek(q, &m2, &l, LFIPC_NOWAIT))
		return 11;
	w = lfipc_array_data(a);
	w[2] = next;
	w[16 + 2 * ((next - 1) % x->table)] = next - x->table - 1;
	w[17 + 2 * ((next - 1) % x->table)] =
	    (uint64_t)((uintptr_t)m1 - (uintptr_t)w);
	w[16 + 2 * ((next - 2) % x->table)] = next - 2;
	w[17 + 2 * ((next - 2) % x->table)] =
	    (uint64_t)((uintptr_t)m2 - (uintptr_t)w);
	_exit(0); /* dies holding the two peeks */
}

Test(bridge, a_scribbled_entry_one_table_back_sends_no_message_twice,
     .fini = fini, .timeout = 120)
{
	static const char *const win[] = {"--insecure", "--window", "16",
					  NULL};
	struct alias_arg x = {16 + 64};
	lfipc_bridge_opts o;
	lfipc_bridge_stats s, t;
	lfipc_array *seenv;
	uint8_t *seen;
	pid_t pid;

	world_up(1024, 1024, MSG);
	memset(&o, 0, sizeof(o));
	o.insecure = true;
	o.window = 16;
	make_state(&o);
	for (uint64_t i = 0; i < 10; i++) {
		struct msg m = {i, check_of(i)};

		cr_assert_eq(
		    lfipc_queue_put(W.qs, &m, sizeof(m), LFIPC_NOWAIT), 0);
	}
	pid = th_fork(peek_and_scribble, &x);
	cr_assert_eq(th_reap(pid, 10000), 0);
	cr_assert_eq(
	    lfipc_array_create(W.rd, "seen", LFIPC_U8, 1024, false, &seenv), 0);
	start_rx(INSECURE);
	start_tx(win);
	W.cons = th_fork(consumer, W.dst);
	for (int i = 0; lfipc_queue_qsize(W.qs) > 0 || i < 100; i++) {
		cr_assert_lt(i, 10000, "not all sent");
		usleep(1000);
	}
	usleep(1500000);
	lfipc_queue_shutdown(W.qs);
	expect_exit0(&W.tx, "sender");
	expect_exit0(&W.rx, "receiver");
	expect_exit0(&W.cons, "consumer");
	seen = lfipc_array_data(seenv);
	stats(W.rs, &s);
	stats(W.rd, &t);
	for (uint64_t i = 0; i < 10; i++) {
		cr_expect_geq(seen[i], 1, "message %llu lost",
			      (unsigned long long)i);
		cr_expect(seen[i] <= 1 + s.tx_dup_possible + t.rx_dup_possible,
			  "message %llu delivered %u times (%llu counted "
			  "possible)",
			  (unsigned long long)i, seen[i],
			  (unsigned long long)(s.tx_dup_possible +
					       t.rx_dup_possible));
	}
	lfipc_array_close(seenv);
}

/* A sender's state scribbled by a peer (every word but the Array's shape:
 * the magic word, the stream, TX_NEXT, the ambiguous run and each entry
 * random, or small numbers near the table's size) costs a clear error or
 * a recovery, never a crash or a read out of bounds (run-all runs this
 * under AddressSanitizer). */
Test(bridge, a_scribbled_sender_state_costs_an_error_or_a_recovery,
     .fini = fini, .timeout = 300)
{
	lfipc_bridge_opts o;
	lfipc_bridge_stats s;
	uint64_t seed = (uint64_t)getpid() * 2654435761u;
	int opened = 0;

	world_up(64, 16, 16);
	memset(&o, 0, sizeof(o));
	o.insecure = true;
	o.window = 16;
	for (uint64_t i = 0; i < 40; i++)
		cr_assert_eq(lfipc_queue_put(W.qs, &i, sizeof(i), LFIPC_NOWAIT),
			     0);
	for (int round = 0; round < 300; round++) {
		lfipc_bridge *b = NULL;
		lfipc_array *a;
		size_t len;
		int rc;

		cr_assert_eq(lfipc_bridge_send_open(W.rs, "q",
						    "tcp://127.0.0.1:1", &o,
						    &b),
			     0, "round %d: a fresh state", round);
		lfipc_bridge_close(b);
		cr_assert_eq(lfipc_array_open(W.rs, "q.btx", &a), 0);
		len = lfipc_array_len(a);
		for (size_t i = round % 3 == 0 ? 0 : 1; i < len; i++) {
			uint64_t r = th_rand(&seed);
			int64_t v = (int64_t)(round % 2 ? r : r % (3 * len));

			if (th_rand(&seed) % 4 != 0)
				cr_assert_eq(lfipc_array_store(a, i, v), 0);
		}
		lfipc_array_close(a);
		b = NULL;
		rc = lfipc_bridge_send_open(W.rs, "q", "tcp://127.0.0.1:1", &o,
					    &b);
		cr_assert(rc == 0 || rc == -EPROTO, "round %d: %d", round, rc);
		if (rc == 0) {
			opened++;
			lfipc_bridge_close(b);
		} else {
			cr_assert_null(b);
		}
		rc = lfipc_bridge_stats_read(W.rs, "q", &s);
		cr_assert(rc == 0 || rc == -EPROTO, "round %d: stat %d",
			  round, rc);
		cr_assert_eq(lfipc_object_remove(W.rs, "q.btx"), 0);
	}
	cr_log_info("scribbled states: %d recovered from, %d refused", opened,
		    300 - opened);
	cr_assert_gt(opened, 0);
}

Test(bridge, sigterm_at_any_moment_of_start_up_stops_a_side_cleanly,
     .fini = fini, .timeout = 900)
{
	const char *tx[] = {"send",	"--to",	      "tcp://127.0.0.1:1",
			    "--region", NULL,	      "--queue",
			    "q",	"--insecure", NULL};
	const char *rx[] = {
	    "recv",    "--bind", "tcp://127.0.0.1:*", "--region", NULL,
	    "--queue", "q",	 "--insecure",	      "--quiet",  NULL};
	uint64_t seed = (uint64_t)getpid() * 104729;

	world_up(64, 64, MSG);
	tx[4] = W.src;
	rx[4] = W.dst;
	for (int i = 0; i < 20; i++) {
		bool send = i % 2 == 0;
		pid_t pid = spawn(send ? tx : rx);
		int st;

		/* 0 to 20 ms after the fork: from before the exec to well
		 * into the run */
		usleep(th_rand(&seed) % 20000);
		cr_assert_eq(kill(pid, SIGTERM), 0);
		st = th_reap(pid, 120000);
		cr_assert_eq(st, 0,
			     "%s, SIGTERM after start-up %d: status %d; "
			     "log: %s",
			     send ? "sender" : "receiver", i, st, log_tail());
	}
}
