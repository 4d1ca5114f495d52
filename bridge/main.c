/* SPDX-License-Identifier: MIT */
/*
 * lfipc-bridge - move the messages of a local Queue to a Queue on another
 * host over ZeroMQ, at-least-once (see doc/bridge.md).
 *
 *   lfipc-bridge send --region R --queue Q --to tcp://host:port [opts]
 *   lfipc-bridge recv --bind tcp://0.0.0.0:port --region R --queue Q [opts]
 *   lfipc-bridge stat --region R --queue Q
 *   lfipc-bridge keygen FILE
 *
 * Exit status: 0 done (end of stream) or stopped by SIGTERM / SIGINT;
 * 1 an error; 2 a usage error.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lfipc/bridge.h>
#include <lfipc/inspect.h>
#include <lfipc/region.h>

/* The handler may run on any thread that has the signals unblocked,
 * ZeroMQ's I/O threads included, so both words are atomics (lock-free,
 * so async-signal-safe), not volatile: a volatile word read by another
 * thread is a data race. Both seq_cst: the main thread stores running
 * then loads stop_asked, the handler stores stop_asked then loads
 * running, so at least one of the two sees the other's store. */
static _Atomic(lfipc_bridge *) running;
static atomic_int stop_asked;
/* Handlers between their look at running and their stop: main, having
 * set running to NULL, waits for 0 before it frees the bridge (seq_cst
 * both ways, the same Dekker pairing: the handler counts itself, then
 * loads running; main stores NULL, then loads the count). Without it a
 * handler on a ZeroMQ thread could store into a bridge main had freed. */
static atomic_int in_handler;

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stop_asked, 1);
	atomic_fetch_add(&in_handler, 1);
	/* async-signal-safe (an atomic store); NULL: no-op */
	lfipc_bridge_stop(atomic_load(&running));
	atomic_fetch_sub(&in_handler, 1);
}

/* No handler uses the bridge after this returns (see in_handler). */
static void stop_handlers_using(void)
{
	atomic_store(&running, NULL);
	while (atomic_load(&in_handler) != 0)
		sched_yield(); /* a handler runs a few instructions */
}

/* Catch SIGTERM and SIGINT from the start, and unblock them (a parent may
 * have blocked them, as the tests do): one that comes while the side
 * opens stops it as soon as it runs, instead of killing it. */
static void catch_stop_signals(void)
{
	struct sigaction sa;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
}

static int usage(void)
{
	fputs("usage:\n"
	      "  lfipc-bridge send --region R --queue Q --to ENDPOINT\n"
	      "                    (--curve-key FILE --curve-server FILE |\n"
	      "                     --insecure) [--window N] [--batch N]\n"
	      "                    [--batch-bytes N] [--resend-ms N]\n"
	      "                    [--spin-us N] [--quiet]\n"
	      "  lfipc-bridge recv --bind ENDPOINT --region R --queue Q\n"
	      "                    (--curve-key FILE [--curve-allow FILE] |\n"
	      "                     --insecure) [--endpoint-file F]\n"
	      "                    [--spin-us N] [--quiet]\n"
	      "  lfipc-bridge stat --region R --queue Q\n"
	      "  lfipc-bridge keygen FILE    (writes FILE and FILE.pub)\n"
	      "options (a command refuses one it does not use):\n"
	      "  --curve-key FILE     this side's secret key (from keygen)\n"
	      "  --curve-server FILE  send: the receiver's public key\n"
	      "  --curve-allow FILE   recv: accepted senders' public keys,\n"
	      "                       one per line (default: any that knows\n"
	      "                       the receiver's public key)\n"
	      "  --insecure           plain TCP: no encryption, no "
	      "authentication\n"
	      "  --window N  --batch N  --batch-bytes N  --resend-ms N\n"
	      "                       send: see doc/bridge.md\n"
	      "  --spin-us N          send: look at an empty source queue,\n"
	      "                       recv: at the socket, for up to N us\n"
	      "                       (at most 10000) before sleeping:\n"
	      "                       lower latency, a busy CPU\n"
	      "  --endpoint-file F    recv: write the bound endpoint to F\n"
	      "  --quiet              send, recv: no progress lines\n",
	      stderr);
	return 2;
}

/* Read the keys (40-character Z85 lines; '#' comments) of path into a
 * NULL-terminated array of strings. */
static char **read_keys(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[256], **v = NULL;
	size_t n = 0;

	if (!f) {
		fprintf(stderr, "lfipc-bridge: %s: %s\n", path,
			strerror(errno));
		return NULL;
	}
	while (fgets(line, sizeof(line), f)) {
		size_t l = strcspn(line, " \t\r\n");
		char **nv;

		if (line[0] == '#' || l == 0)
			continue;
		if (l != LFIPC_BRIDGE_KEY_LEN) {
			fprintf(stderr, "lfipc-bridge: %s: not a key: %.*s\n",
				path, (int)l, line);
			goto bad;
		}
		line[l] = '\0';
		nv = realloc(v, (n + 2) * sizeof(*v));
		if (!nv)
			goto bad;
		v = nv;
		v[n] = strdup(line);
		if (!v[n])
			goto bad;
		v[++n] = NULL;
	}
	fclose(f);
	if (n == 0)
		fprintf(stderr, "lfipc-bridge: %s: no key\n", path);
	return v;
bad:
	fclose(f);
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	return NULL;
}

static void free_keys(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static int write_file(const char *path, const char *text, mode_t mode)
{
	char tmp[4096];
	int fd;
	size_t len = strlen(text);

	if (snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid()) >=
	    (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len || close(fd)) {
		unlink(tmp);
		return -EIO;
	}
	return rename(tmp, path) ? -errno : 0;
}

static int keygen(const char *path)
{
	char pub[LFIPC_BRIDGE_KEY_LEN + 1], sec[LFIPC_BRIDGE_KEY_LEN + 1];
	char text[LFIPC_BRIDGE_KEY_LEN + 2], pubpath[4096];
	int rc = lfipc_bridge_keypair(pub, sec);

	if (rc) {
		fprintf(stderr, "lfipc-bridge: keygen: %s\n",
			lfipc_strerror(rc));
		return 1;
	}
	snprintf(pubpath, sizeof(pubpath), "%s.pub", path);
	snprintf(text, sizeof(text), "%s\n", sec);
	if ((rc = write_file(path, text, 0600)) == 0) {
		snprintf(text, sizeof(text), "%s\n", pub);
		rc = write_file(pubpath, text, 0644);
	}
	if (rc) {
		fprintf(stderr, "lfipc-bridge: keygen %s: %s\n", path,
			strerror(-rc));
		return 1;
	}
	return 0;
}

static int stat_cmd(lfipc_region *r, const char *queue)
{
	lfipc_bridge_stats s;
	int rc = lfipc_bridge_stats_read(r, queue, &s);

	if (rc) {
		fprintf(stderr, "lfipc-bridge: stat %s: %s\n", queue,
			lfipc_strerror(rc));
		return 1;
	}
	const struct {
		bool on;
		const char *name;
		uint64_t v;
	} row[] = {
	    {s.has_tx, "tx.next_seq", s.tx_next_seq},
	    {s.has_tx, "tx.inflight", s.tx_inflight},
	    {s.has_tx, "tx.sent", s.tx_sent},
	    {s.has_tx, "tx.resent", s.tx_resent},
	    {s.has_tx, "tx.acked", s.tx_acked},
	    {s.has_tx, "tx.batches", s.tx_batches},
	    {s.has_tx, "tx.sessions", s.tx_sessions},
	    {s.has_tx, "tx.dup_possible", s.tx_dup_possible},
	    {s.has_rx, "rx.received", s.rx_received},
	    {s.has_rx, "rx.dup_dropped", s.rx_dup_dropped},
	    {s.has_rx, "rx.out_of_order", s.rx_out_of_order},
	    {s.has_rx, "rx.batches", s.rx_batches},
	    {s.has_rx, "rx.sessions", s.rx_sessions},
	    {s.has_rx, "rx.streams", s.rx_streams},
	    {s.has_rx, "rx.auth_denied", s.rx_auth_denied},
	    {s.has_rx, "rx.dup_possible", s.rx_dup_possible},
	};

	if (s.has_tx)
		printf("tx.stream %016llx\n", (unsigned long long)s.tx_stream);
	for (size_t i = 0; i < sizeof(row) / sizeof(row[0]); i++)
		if (row[i].on)
			printf("%s %llu\n", row[i].name,
			       (unsigned long long)row[i].v);
	printf("dup_possible %llu\n", (unsigned long long)s.dup_possible);
	/* The queue itself (the sender's source, the receiver's
	 * destination), if it is one: how many it holds, and how many it
	 * dropped as corrupt (a scribbled length: the sender skips them,
	 * doc/bridge.md, Security). */
	{
		lfipc_queue_status qs = {.struct_size = sizeof(qs)};

		if (lfipc_object_stat(r, queue, LFIPC_OBJ_QUEUE, &qs) == 0)
			printf("queue.depth %zu\nqueue.corrupt %llu\n",
			       qs.depth, (unsigned long long)qs.corrupt);
	}
	return 0;
}

static long num(const char *s, long lo, long hi, bool *bad)
{
	char *end;
	long v = strtol(s, &end, 10);

	/* A refused value returns 0: the callers scale what they get
	 * (--spin-us N * 1000, --resend-ms N * 1000000) before the refusal
	 * is acted on, and LONG_MAX (strtol's overflow) scaled is undefined
	 * behaviour. */
	if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
		*bad = true;
		return 0;
	}
	return v;
}

/* The commands that take options, as bits of what an option is for. */
enum { C_SEND = 1, C_RECV = 2, C_STAT = 4 };

static unsigned cmd_bit(const char *cmd)
{
	return strcmp(cmd, "send") == 0	  ? C_SEND
	       : strcmp(cmd, "recv") == 0 ? C_RECV
	       : strcmp(cmd, "stat") == 0 ? C_STAT
					  : 0;
}

/* A command refuses an option it does not use (a --window given to a
 * receiver, a --bind to a sender) instead of ignoring it: whoever wrote it
 * meant something that would not happen. One line, exit status 2. */
static int refuse(const char *cmd, const char *opt)
{
	fprintf(stderr, "lfipc-bridge: %s does not take --%.*s\n", cmd,
		(int)strcspn(opt, "="), opt);
	return 2;
}

int main(int argc, char **argv)
{
	enum {
		O_REGION = 256,
		O_QUEUE,
		O_TO,
		O_BIND,
		O_KEY,
		O_SERVER,
		O_ALLOW,
		O_INSECURE,
		O_WINDOW,
		O_BATCH,
		O_BATCH_BYTES,
		O_RESEND,
		O_SPIN,
		O_EPFILE,
		O_QUIET
	};
	static const struct option longopts[] = {
	    {"region", required_argument, NULL, O_REGION},
	    {"queue", required_argument, NULL, O_QUEUE},
	    {"to", required_argument, NULL, O_TO},
	    {"bind", required_argument, NULL, O_BIND},
	    {"curve-key", required_argument, NULL, O_KEY},
	    {"curve-server", required_argument, NULL, O_SERVER},
	    {"curve-allow", required_argument, NULL, O_ALLOW},
	    {"insecure", no_argument, NULL, O_INSECURE},
	    {"window", required_argument, NULL, O_WINDOW},
	    {"batch", required_argument, NULL, O_BATCH},
	    {"batch-bytes", required_argument, NULL, O_BATCH_BYTES},
	    {"resend-ms", required_argument, NULL, O_RESEND},
	    {"spin-us", required_argument, NULL, O_SPIN},
	    {"endpoint-file", required_argument, NULL, O_EPFILE},
	    {"quiet", no_argument, NULL, O_QUIET},
	    {NULL, 0, NULL, 0}};
	/* The commands each option is for, by its value less O_REGION. */
	static const unsigned char uses[] = {
	    C_SEND | C_RECV | C_STAT, /* region */
	    C_SEND | C_RECV | C_STAT, /* queue */
	    C_SEND,		      /* to */
	    C_RECV,		      /* bind */
	    C_SEND | C_RECV,	      /* curve-key */
	    C_SEND,		      /* curve-server */
	    C_RECV,		      /* curve-allow */
	    C_SEND | C_RECV,	      /* insecure */
	    C_SEND,		      /* window */
	    C_SEND,		      /* batch */
	    C_SEND,		      /* batch-bytes */
	    C_SEND,		      /* resend-ms */
	    C_SEND | C_RECV,	      /* spin-us */
	    C_RECV,		      /* endpoint-file */
	    C_SEND | C_RECV,	      /* quiet */
	};
	const char *cmd, *region = NULL, *queue = NULL, *to = NULL;
	const char *bind = NULL, *keyf = NULL, *serverf = NULL;
	const char *allowf = NULL, *epfile = NULL;
	char **key = NULL, **server = NULL, **allow = NULL;
	lfipc_bridge_opts o = {0};
	lfipc_region *r = NULL;
	lfipc_bridge *b = NULL;
	bool bad = false, quiet = false, tx;
	int64_t spin = 0; /* --spin-us, in ns */
	int c, rc, status = 1;
	unsigned cb;

	_Static_assert(sizeof(uses) ==
			   sizeof(longopts) / sizeof(longopts[0]) - 1,
		       "an entry of uses[] per option");
	if (argc < 2)
		return usage();
	cmd = argv[1];
	if (strcmp(cmd, "keygen") == 0) {
		/* FILE only: an option here would be taken for a file name */
		for (int i = 2; i < argc; i++)
			if (strncmp(argv[i], "--", 2) == 0 && argv[i][2])
				return refuse(cmd, argv[i] + 2);
		return argc == 3 ? keygen(argv[2]) : usage();
	}
	if (!(cb = cmd_bit(cmd)))
		return usage();
	optind = 2;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		/* before its value is looked at: the option is the error */
		if (c >= O_REGION && c <= O_QUIET && !(uses[c - O_REGION] & cb))
			for (int i = 0; longopts[i].name; i++)
				if (longopts[i].val == c)
					return refuse(cmd, longopts[i].name);
		switch (c) {
		case O_REGION:
			region = optarg;
			break;
		case O_QUEUE:
			queue = optarg;
			break;
		case O_TO:
			to = optarg;
			break;
		case O_BIND:
			bind = optarg;
			break;
		case O_KEY:
			keyf = optarg;
			break;
		case O_SERVER:
			serverf = optarg;
			break;
		case O_ALLOW:
			allowf = optarg;
			break;
		case O_INSECURE:
			o.insecure = true;
			break;
		case O_WINDOW:
			o.window = (unsigned)num(optarg, 1,
						 LFIPC_BRIDGE_MAX_WINDOW, &bad);
			break;
		case O_BATCH:
			o.batch = (unsigned)num(optarg, 1, 65536, &bad);
			break;
		case O_BATCH_BYTES:
			o.batch_bytes = (size_t)num(optarg, 1, 1 << 26, &bad);
			break;
		case O_RESEND:
			o.resend_ns = num(optarg, 1, 3600000, &bad) * 1000000;
			break;
		case O_SPIN:
			spin = num(optarg, 0, LFIPC_BRIDGE_MAX_SPIN_NS / 1000,
				   &bad) *
			       1000;
			break;
		case O_EPFILE:
			epfile = optarg;
			break;
		case O_QUIET:
			quiet = true;
			break;
		default:
			return usage();
		}
	}
	if (bad || optind != argc || !region || !queue)
		return usage();
	/* --insecure is "no CURVE": with a key file it was ignored (the key
	 * won), and without --curve-key a --curve-server or a --curve-allow
	 * list was (plain TCP, any peer): an option silently ignored. */
	if (o.insecure && (keyf || serverf || allowf)) {
		const char *k = keyf ? "key" : serverf ? "server" : "allow";

		fprintf(stderr,
			"lfipc-bridge: %s does not take --insecure with "
			"--curve-%s\n",
			cmd, k);
		return 2;
	}
	if (strcmp(cmd, "stat") == 0) {
		rc = lfipc_region_open(region, &r);
		if (rc) {
			fprintf(stderr, "lfipc-bridge: region %s: %s\n", region,
				lfipc_strerror(rc));
			return 1;
		}
		status = stat_cmd(r, queue);
		lfipc_region_close(r);
		return status;
	}
	tx = cb == C_SEND;
	if (tx ? !to : !bind)
		return usage();
	catch_stop_signals();
	if (!keyf && !o.insecure) {
		fputs("lfipc-bridge: give --curve-key (see keygen), or "
		      "--insecure for plain TCP\n",
		      stderr);
		return 2;
	}
	if ((keyf && !(key = read_keys(keyf))) ||
	    (serverf && !(server = read_keys(serverf))) ||
	    (allowf && !(allow = read_keys(allowf))))
		goto out;
	if (key) {
		o.curve_secret = key[0];
		o.insecure = false;
		if (tx && !server) {
			fputs("lfipc-bridge: send with --curve-key needs "
			      "--curve-server\n",
			      stderr);
			status = 2;
			goto out;
		}
		o.curve_server = server ? server[0] : NULL;
		o.curve_allow = (const char *const *)allow;
	}
	rc = lfipc_region_open(region, &r);
	if (rc) {
		fprintf(stderr, "lfipc-bridge: region %s: %s\n", region,
			lfipc_strerror(rc));
		goto out;
	}
	rc = tx ? lfipc_bridge_send_open(r, queue, to, &o, &b)
		: lfipc_bridge_recv_open(r, queue, bind, &o, &b);
	if (rc == 0)
		rc = lfipc_bridge_set_spin(b, spin);
	if (rc) {
		fprintf(stderr, "lfipc-bridge: %s %s: %s\n", cmd, queue,
			lfipc_strerror(rc));
		goto out;
	}
	atomic_store(&running, b);
	if (atomic_load(&stop_asked)) /* a signal before running was set */
		lfipc_bridge_stop(b);
	if (!tx) {
		char ep[256];

		lfipc_bridge_endpoint(b, ep, sizeof(ep));
		if (!quiet)
			fprintf(stderr, "lfipc-bridge: listening on %s\n", ep);
		if (epfile) {
			strncat(ep, "\n", sizeof(ep) - strlen(ep) - 1);
			if ((rc = write_file(epfile, ep, 0644))) {
				fprintf(stderr, "lfipc-bridge: %s: %s\n",
					epfile, strerror(-rc));
				goto out;
			}
		}
	}
	rc = lfipc_bridge_run(b);
	if (rc == 0 || rc == -EINTR) {
		status = 0;
		if (!quiet)
			fprintf(stderr, "lfipc-bridge: %s\n",
				rc ? "stopped" : "end of stream");
	} else {
		fprintf(stderr, "lfipc-bridge: %s %s: %s\n", cmd, queue,
			lfipc_strerror(rc));
	}
out:
	stop_handlers_using();
	lfipc_bridge_close(b);
	lfipc_region_close(r);
	free_keys(key);
	free_keys(server);
	free_keys(allow);
	return status;
}
