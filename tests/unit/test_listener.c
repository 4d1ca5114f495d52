/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lfipc/inspect.h>
#include <lfipc/listener.h>
#include <lfipc/region.h>

#include "common/casfail.h"
#include "common/testhelp.h"
#include "internal/region.h"

#define REGION_SIZE ((size_t)4 << 20)
#define RING ((size_t)4096)
#define REAP_MS 20000
/* How long a test waits for a state it expects (a client waiting, a Pipe
 * made): far beyond any delay of a loaded sanitizer build, and only spent
 * when the state never comes, i.e. on a failure. */
#define STATE_WAIT_NS ((int64_t)20 * 1000 * 1000 * 1000)
#define MS ((int64_t)1000 * 1000)
#define SEC ((int64_t)1000 * MS)

static lfipc_region *r;
static lfipc_listener *l;
static char rname[64];

static void setup(void)
{
	th_name(rname, sizeof(rname), "lsn");
	cr_assert_eq(lfipc_region_create(rname, REGION_SIZE, 0, &r), 0);
}

static void setup_listener(void)
{
	setup();
	cr_assert_eq(lfipc_listener_create(r, "L", 2, 4, RING, &l), 0);
}

static void teardown(void)
{
	lfipc_listener_close(l);
	l = NULL;
	lfipc_region_close(r);
	r = NULL;
	lfipc_region_unlink(rname);
}

static unsigned nobjects(void)
{
	lfipc_region_info info;

	cr_assert_eq(lfipc_region_stats(r, &info), 0);
	return info.objects;
}

/* Wait (up to STATE_WAIT_NS) until the region holds n objects. */
static bool wait_objects(unsigned n)
{
	int64_t end = th_now_ns() + STATE_WAIT_NS;

	for (;;) {
		if (nobjects() == n)
			return true;
		if (th_now_ns() > end)
			return false;
		usleep(1000);
	}
}

static lfipc_listener_status listener_stat(void)
{
	lfipc_listener_status st;

	memset(&st, 0, sizeof(st));
	st.struct_size = sizeof(st);
	cr_assert_eq(lfipc_object_stat(r, "L", LFIPC_OBJ_LISTENER, &st), 0);
	return st;
}

/* Wait (up to STATE_WAIT_NS) until n clients wait to be accepted. It only
 * looks (lfipc_object_stat): a probing connect would itself take a place
 * in the backlog while it tries. */
static bool wait_waiting(unsigned n)
{
	int64_t end = th_now_ns() + STATE_WAIT_NS;

	for (;;) {
		if (listener_stat().waiting == n)
			return true;
		if (th_now_ns() > end)
			return false;
		usleep(1000);
	}
}

/* ---- children ------------------------------------------------------------ */

/* Connect, send "ping <arg>", expect "pong <arg>", close. */
static int child_ping(void *arg)
{
	long id = (long)(intptr_t)arg;
	char buf[32], want[32];
	lfipc_conn *c;
	size_t len;
	int rc;

	rc = lfipc_listener_connect(r, "L", 10 * SEC, &c);
	if (rc != 0)
		return 10;
	snprintf(buf, sizeof(buf), "ping %ld", id);
	if (lfipc_conn_send(c, buf, strlen(buf), 10 * SEC) != 0)
		return 11;
	if (lfipc_conn_recv(c, buf, sizeof(buf) - 1, &len, 10 * SEC) != 0)
		return 12;
	buf[len] = '\0';
	snprintf(want, sizeof(want), "pong %ld", id);
	if (strcmp(buf, want) != 0)
		return 13;
	lfipc_conn_close(c);
	return 0;
}

/* Connect, send "hello", then wait to be killed. */
static int child_connect_and_hang(void *arg)
{
	lfipc_conn *c;

	(void)arg;
	if (lfipc_listener_connect(r, "L", 10 * SEC, &c) != 0)
		return 10;
	if (lfipc_conn_send(c, "hello", 5, 10 * SEC) != 0)
		return 11;
	for (;;)
		pause();
}

/* Connect and report the result as the exit status (errno value). */
static int child_connect_rc(void *arg)
{
	lfipc_conn *c;
	int rc = lfipc_listener_connect(r, "L", (int64_t)(intptr_t)arg, &c);

	if (rc == 0) {
		lfipc_conn_close(c);
		return 0;
	}
	return -rc;
}

/* Serve one ping: accept, receive "ping N", answer "pong N". */
static void serve_ping(lfipc_listener *srv)
{
	char buf[32];
	lfipc_conn *c;
	size_t len;

	cr_assert_eq(lfipc_listener_accept(srv, 10 * SEC, &c), 0);
	cr_assert_eq(lfipc_conn_recv(c, buf, sizeof(buf) - 1, &len, 10 * SEC),
		     0);
	buf[len] = '\0';
	cr_assert_eq(strncmp(buf, "ping ", 5), 0);
	buf[1] = 'o';
	cr_assert_eq(lfipc_conn_send(c, buf, len, 10 * SEC), 0);
	/* The client closes first; then ours reads end-of-file. */
	cr_assert_eq(lfipc_conn_recv(c, buf, sizeof(buf), &len, 10 * SEC),
		     -EPIPE);
	lfipc_conn_close(c);
}

/* ---- tests ------------------------------------------------------------------ */

Test(listener, create_checks_its_arguments, .init = setup, .fini = teardown)
{
	char longname[LFIPC_LISTENER_NAME_MAX + 2];

	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert_eq(lfipc_listener_create(r, longname, 0, 0, 0, &l),
		     -ENAMETOOLONG);
	cr_assert_eq(lfipc_listener_create(r, "L", 5, 4, 0, &l), -EINVAL);
	cr_assert_eq(lfipc_listener_create(r, "L", 1,
					   LFIPC_LISTENER_MAX_CONNS + 1, 0, &l),
		     -EINVAL);
	cr_assert_eq(lfipc_listener_create(NULL, "L", 0, 0, 0, &l), -EINVAL);
	cr_assert_eq(lfipc_listener_create(r, "L", 0, 0, 0, &l), 0);
	cr_assert_eq(lfipc_listener_create(r, "L", 0, 0, 0, &l), -EEXIST);
	cr_assert_null(l);
}

Test(listener, accept_without_clients_returns_eagain_or_times_out,
     .init = setup_listener, .fini = teardown)
{
	lfipc_conn *c = (lfipc_conn *)&c;
	int64_t t0;

	cr_assert_eq(lfipc_listener_accept(l, LFIPC_NOWAIT, &c), -EAGAIN);
	cr_assert_null(c);
	t0 = th_now_ns();
	cr_assert_eq(lfipc_listener_accept(l, 50 * MS, &c), -ETIMEDOUT);
	cr_assert_geq(th_now_ns() - t0, 50 * MS);
}

Test(listener, connect_to_nothing_or_to_a_closed_listener_is_refused,
     .init = setup_listener, .fini = teardown)
{
	lfipc_conn *c;

	cr_assert_eq(lfipc_listener_connect(r, "none", SEC, &c), -ENOENT);
	lfipc_listener_close(l);
	l = NULL;
	cr_assert_eq(lfipc_listener_connect(r, "L", SEC, &c), -ECONNREFUSED);
	/* A new server takes it over; then it serves again. */
	cr_assert_eq(lfipc_listener_open(r, "L", &l), 0);
	{
		lfipc_listener *l2;

		cr_assert_eq(lfipc_listener_open(r, "L", &l2), -EBUSY);
	}
	cr_assert_eq(lfipc_listener_connect(r, "L", LFIPC_NOWAIT, &c),
		     -EAGAIN);
}

Test(listener, clients_connect_one_after_another_each_with_a_fresh_pipe,
     .init = setup_listener, .fini = teardown, .timeout = 60)
{
	/* max_conns is 4: eight connections one after another need the
	 * records and Pipes of finished ones to be reused. */
	for (long i = 0; i < 8; i++) {
		pid_t pid = th_fork(child_ping, (void *)(intptr_t)i);

		cr_assert_gt(pid, 0);
		serve_ping(l);
		cr_assert_eq(th_reap(pid, REAP_MS), 0, "client %ld", i);
	}
	/* Once both sides closed, the next accept reclaims the last Pipe. */
	{
		lfipc_conn *c;

		cr_assert_eq(lfipc_listener_accept(l, LFIPC_NOWAIT, &c),
			     -EAGAIN);
	}
	cr_assert_eq(nobjects(), 1);
}

Test(listener, a_sigkilled_client_frees_its_connection_and_a_new_one_connects,
     .init = setup, .fini = teardown, .timeout = 60)
{
	lfipc_conn *c;
	char buf[16];
	size_t len;
	pid_t pid;

	/* One connection in all: the second client gets in only if the
	 * dead one's connection is freed. */
	cr_assert_eq(lfipc_listener_create(r, "L", 1, 1, RING, &l), 0);
	for (int round = 0; round < 3; round++) {
		pid = th_fork(child_connect_and_hang, NULL);
		cr_assert_gt(pid, 0);
		cr_assert_eq(lfipc_listener_accept(l, 10 * SEC, &c), 0);
		cr_assert_eq(lfipc_conn_recv(c, buf, sizeof(buf), &len,
					     10 * SEC),
			     0);
		cr_assert_eq(len, 5);
		cr_assert_eq(memcmp(buf, "hello", 5), 0);
		kill(pid, SIGKILL);
		cr_assert_eq(th_reap(pid, REAP_MS), 128 + SIGKILL);
		cr_assert_eq(lfipc_conn_recv(c, buf, sizeof(buf), &len,
					     10 * SEC),
			     -EPIPE);
		lfipc_conn_close(c);
	}
	/* A restarted client of the ordinary kind. */
	pid = th_fork(child_ping, (void *)(intptr_t)7);
	serve_ping(l);
	cr_assert_eq(th_reap(pid, REAP_MS), 0);
}

Test(listener, a_client_killed_while_waiting_is_skipped_and_reclaimed,
     .init = setup_listener, .fini = teardown, .timeout = 60)
{
	lfipc_conn *c;
	pid_t pid;

	pid = th_fork(child_connect_and_hang, NULL);
	cr_assert_gt(pid, 0);
	/* Its Pipe appears when it waits to be accepted. */
	cr_assert(wait_objects(2));
	kill(pid, SIGKILL);
	cr_assert_eq(th_reap(pid, REAP_MS), 128 + SIGKILL);
	cr_assert_eq(lfipc_listener_accept(l, LFIPC_NOWAIT, &c), -EAGAIN);
	cr_assert_eq(nobjects(), 1);
}

/* A process stopped while it holds the region lock (SIGSTOP inside any
 * object create or remove) holds connect and accept no longer than their
 * timeouts: -ETIMEDOUT, and -EAGAIN for LFIPC_NOWAIT (review11
 * listener_timeout_stopped.c: the lookup, the collection and the Pipe's
 * creation and opening waited for the region lock with no deadline). The
 * server is a child: its accept would otherwise hang the test. */
static int stop_ready[2], stop_go[2];

static int child_server_accept(void *arg)
{
	lfipc_listener *mine;
	lfipc_conn *c;
	char ch = 'r';
	int rc;

	(void)arg;
	if (lfipc_listener_create(r, "L", 2, 4, RING, &mine) != 0)
		return 1;
	if (write(stop_ready[1], &ch, 1) != 1 || read(stop_go[0], &ch, 1) != 1)
		return 2;
	rc = lfipc_listener_accept(mine, 100 * MS, &c);
	return rc == 0 ? 3 : -rc;
}

Test(listener, a_stopped_region_lock_holder_delays_no_call_past_its_timeout,
     .init = setup, .fini = teardown, .timeout = 120)
{
	char path[4096], line[16] = "";
	int to_peer[2], from_peer[2];
	pid_t srv, client, holder, x, x0;
	FILE *f;
	char ch;

	cr_assert_eq(pipe(stop_ready), 0);
	cr_assert_eq(pipe(stop_go), 0);
	srv = th_fork(child_server_accept, NULL);
	cr_assert_eq(read(stop_ready[0], &ch, 1), 1);
	/* a client waiting to be accepted: accept will open its Pipe */
	client = th_fork(child_connect_and_hang, NULL);
	cr_assert(wait_objects(2));
	/* an unrelated process takes the region lock and is stopped */
	cr_assert_eq(pipe(to_peer), 0);
	cr_assert_eq(pipe(from_peer), 0);
	th_helper_path(path, sizeof(path), "region_peer");
	holder = fork();
	cr_assert_geq(holder, 0);
	if (holder == 0) {
		dup2(to_peer[0], 0);
		dup2(from_peer[1], 1);
		execl(path, path, "holdlock", rname, (char *)NULL);
		_exit(127);
	}
	close(to_peer[0]);
	close(from_peer[1]);
	f = fdopen(from_peer[0], "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(line, sizeof(line), f));
	cr_assert_str_eq(line, "locked\n");
	kill(holder, SIGSTOP);

	x = th_fork(child_connect_rc, (void *)(intptr_t)(100 * MS));
	x0 = th_fork(child_connect_rc, (void *)(intptr_t)LFIPC_NOWAIT);
	cr_assert_eq(write(stop_go[1], &ch, 1), 1);
	/* 100 ms calls. The holder stays stopped until they are reaped:
	 * without a bound they would block for ever, so the reap deadline
	 * can be as long as any loaded sanitizer build needs to fork, run
	 * and exit (the exit codes say the calls timed out, not failed). */
	cr_assert_eq(th_reap(x, REAP_MS), ETIMEDOUT, "connect(100 ms)");
	cr_assert_eq(th_reap(x0, REAP_MS), EAGAIN, "connect(NOWAIT)");
	cr_assert_eq(th_reap(srv, REAP_MS), ETIMEDOUT, "accept(100 ms)");

	kill(holder, SIGKILL);
	cr_assert_eq(th_reap(holder, REAP_MS), 128 + SIGKILL);
	/* the client saw its server exit (-ECONNREFUSED) or is killed */
	kill(client, SIGKILL);
	cr_assert_geq(th_reap(client, REAP_MS), 0);
	fclose(f);
	close(to_peer[1]);
}

Test(listener, connect_that_times_out_leaves_nothing_behind,
     .init = setup_listener, .fini = teardown)
{
	lfipc_conn *c;
	int64_t t0 = th_now_ns();

	cr_assert_eq(lfipc_listener_connect(r, "L", 30 * MS, &c),
		     -ETIMEDOUT);
	cr_assert_geq(th_now_ns() - t0, 30 * MS);
	cr_assert_null(c);
	/* The server never sees it, and its Pipe goes. */
	cr_assert_eq(lfipc_listener_accept(l, LFIPC_NOWAIT, &c), -EAGAIN);
	cr_assert_eq(nobjects(), 1);
}

Test(listener, a_full_backlog_refuses_with_ebusy_until_one_is_accepted,
     .init = setup_listener, .fini = teardown, .timeout = 60)
{
	pid_t pids[2];
	lfipc_conn *c;

	/* Backlog 2: two clients wait, a third is turned away. The test
	 * waits for the two by looking at the status, not by connecting:
	 * a connect that tries while one client waits holds the second
	 * place itself, and the other client is refused (-EBUSY). */
	for (long i = 0; i < 2; i++) {
		pids[i] = th_fork(child_ping, (void *)(intptr_t)i);
		cr_assert_gt(pids[i], 0);
	}
	cr_assert(wait_waiting(2));
	cr_assert_eq(lfipc_listener_connect(r, "L", LFIPC_NOWAIT, &c), -EBUSY);
	cr_assert_eq(lfipc_listener_connect(r, "L", 10 * SEC, &c), -EBUSY);
	{
		lfipc_listener_status st = listener_stat();

		cr_assert_eq(st.waiting, 2);
		cr_assert_eq(st.connections, 0);
		cr_assert_eq(st.backlog, 2);
		cr_assert_eq(st.max_conns, 4);
		cr_assert(st.serving && st.server_alive);
		cr_assert_eq(st.server_pid, getpid());
	}
	serve_ping(l);
	serve_ping(l);
	cr_assert_eq(th_reap_all(pids, 2, REAP_MS), 0);
	/* Room again: a connect is only not accepted at once. */
	cr_assert_eq(lfipc_listener_connect(r, "L", LFIPC_NOWAIT, &c),
		     -EAGAIN);
}

static int srv_pipe[2];

/* A server in its own process: create the listener, say so, accept one
 * connection and keep it, then wait to be killed. */
static int child_server(void *arg)
{
	lfipc_listener *srv;
	lfipc_conn *c;

	(void)arg;
	if (lfipc_listener_create(r, "L", 4, 8, RING, &srv) != 0)
		return 10;
	if (write(srv_pipe[1], "r", 1) != 1)
		return 11;
	if (lfipc_listener_accept(srv, 10 * SEC, &c) != 0)
		return 12;
	for (;;)
		pause();
}

Test(listener, clients_see_the_server_die_and_a_restarted_server_takes_over,
     .init = setup, .fini = teardown, .timeout = 60)
{
	lfipc_conn *c;
	pid_t srv, waiter, pid;
	char ch;
	size_t len;

	cr_assert_eq(pipe(srv_pipe), 0);
	srv = th_fork(child_server, NULL);
	cr_assert_gt(srv, 0);
	cr_assert_eq(read(srv_pipe[0], &ch, 1), 1);
	cr_assert_eq(lfipc_listener_connect(r, "L", 10 * SEC, &c), 0);
	/* A second client waits to be accepted: the server never does. */
	waiter = th_fork(child_connect_rc, (void *)(intptr_t)(20 * SEC));
	cr_assert_gt(waiter, 0);
	cr_assert(wait_objects(3)); /* listener, two Pipes */
	kill(srv, SIGKILL);
	cr_assert_eq(th_reap(srv, REAP_MS), 128 + SIGKILL);
	{
		lfipc_listener_status st = listener_stat();

		cr_assert(st.serving);
		cr_assert_not(st.server_alive);
		cr_assert_eq(st.server_pid, srv);
		cr_assert_eq(st.connections, 1);
	}
	/* The accepted connection reads end-of-file; the waiting client and
	 * a new one are refused. */
	cr_assert_eq(lfipc_conn_recv(c, &ch, 1, &len, 10 * SEC), -EPIPE);
	cr_assert_eq(th_reap(waiter, REAP_MS), ECONNREFUSED);
	{
		lfipc_conn *c2;

		cr_assert_eq(lfipc_listener_connect(r, "L", SEC, &c2),
			     -ECONNREFUSED);
	}
	lfipc_conn_close(c);
	/* A restarted server takes the listener over and serves. */
	cr_assert_eq(lfipc_listener_open(r, "L", &l), 0);
	pid = th_fork(child_ping, (void *)(intptr_t)3);
	serve_ping(l);
	cr_assert_eq(th_reap(pid, REAP_MS), 0);
	close(srv_pipe[0]);
	close(srv_pipe[1]);
	/* Everything the dead server's connections used is reclaimed. */
	cr_assert_eq(lfipc_listener_accept(l, LFIPC_NOWAIT, &c), -EAGAIN);
	cr_assert_eq(nobjects(), 1);
}

Test(listener, a_fork_child_with_the_handle_is_not_the_server,
     .init = setup_listener, .fini = teardown)
{
	pid_t pid = fork();

	if (pid == 0) {
		lfipc_conn *c;

		_exit(lfipc_listener_accept(l, LFIPC_NOWAIT, &c) == -EPERM
			      ? 0
			      : 1);
	}
	cr_assert_gt(pid, 0);
	cr_assert_eq(th_reap(pid, REAP_MS), 0);
}

#define PEERS 6
#define MSGS 200

Test(listener, unrelated_processes_each_get_their_own_connection,
     .init = setup, .fini = teardown, .timeout = 120)
{
	pid_t pids[PEERS];
	char path[4096];
	int seen[PEERS] = {0};

	cr_assert_eq(lfipc_listener_create(r, "L", PEERS, PEERS, RING, &l), 0);
	th_helper_path(path, sizeof(path), "listener_peer");
	for (int i = 0; i < PEERS; i++) {
		char id[16], count[16];

		snprintf(id, sizeof(id), "%d", i);
		snprintf(count, sizeof(count), "%d", MSGS);
		pids[i] = fork();
		cr_assert_geq(pids[i], 0);
		if (pids[i] == 0) {
			execl(path, path, rname, "L", id, count, (char *)NULL);
			_exit(127);
		}
	}
	/* One connection at a time: its messages arrive whole, in order,
	 * all from one client. */
	for (int k = 0; k < PEERS; k++) {
		lfipc_conn *c;
		char buf[64];
		size_t len;
		long id = -1, seq;
		long long sum = 0;

		cr_assert_eq(lfipc_listener_accept(l, 20 * SEC, &c), 0);
		for (long i = 0; i < MSGS; i++) {
			long cid;

			cr_assert_eq(lfipc_conn_recv(c, buf, sizeof(buf) - 1,
						     &len, 20 * SEC),
				     0);
			buf[len] = '\0';
			cr_assert_eq(sscanf(buf, "%ld %ld", &cid, &seq), 2);
			if (i == 0)
				id = cid;
			cr_assert_eq(cid, id);
			cr_assert_eq(seq, i);
			sum += seq;
		}
		cr_assert(id >= 0 && id < PEERS);
		cr_assert_eq(seen[id]++, 0, "client %ld twice", id);
		len = (size_t)snprintf(buf, sizeof(buf), "%lld", sum + id);
		cr_assert_eq(lfipc_conn_send(c, buf, len, 20 * SEC), 0);
		cr_assert_eq(lfipc_conn_recv(c, buf, sizeof(buf), &len,
					     20 * SEC),
			     -EPIPE);
		lfipc_conn_close(c);
	}
	cr_assert_eq(th_reap_all(pids, PEERS, REAP_MS), 0);
}

/* ---- threads (no fork: also runs meaningfully under TSan) ---------------- */

#define THREADS 4
#define ROUNDS 25

static void *thread_client(void *arg)
{
	long id = (long)(intptr_t)arg;

	for (long k = 0; k < ROUNDS; k++) {
		lfipc_conn *c;
		int rc;
		long v = id * 1000 + k, back;
		size_t len;

		while ((rc = lfipc_listener_connect(r, "L", 10 * SEC, &c)) ==
		       -EBUSY)
			usleep(100);
		if (rc != 0)
			return (void *)1;
		if (lfipc_conn_send(c, &v, sizeof(v), 10 * SEC) != 0 ||
		    lfipc_conn_recv(c, &back, sizeof(back), &len, 10 * SEC) !=
			    0 ||
		    back != v + 1)
			return (void *)2;
		lfipc_conn_close(c);
	}
	return NULL;
}

static void *thread_server(void *arg)
{
	long *served = arg;

	while (__atomic_load_n(served, __ATOMIC_RELAXED) < THREADS * ROUNDS) {
		lfipc_conn *c;
		long v;
		size_t len;
		int rc = lfipc_listener_accept(l, 50 * MS, &c);

		if (rc == -ETIMEDOUT)
			continue;
		if (rc != 0)
			return (void *)1;
		if (lfipc_conn_recv(c, &v, sizeof(v), &len, 10 * SEC) == 0) {
			v++;
			if (lfipc_conn_send(c, &v, sizeof(v), 10 * SEC) == 0)
				__atomic_fetch_add(served, 1,
						   __ATOMIC_RELAXED);
		}
		lfipc_conn_close(c);
	}
	return NULL;
}

Test(listener, threads_connect_and_accept_at_once_with_exact_counts,
     .init = setup_listener, .fini = teardown, .timeout = 120)
{
	pthread_t cl[THREADS], sv[2];
	long served = 0;
	void *ret;

	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&sv[i], NULL, thread_server,
					    &served),
			     0);
	for (long i = 0; i < THREADS; i++)
		cr_assert_eq(pthread_create(&cl[i], NULL, thread_client,
					    (void *)(intptr_t)i),
			     0);
	for (int i = 0; i < THREADS; i++) {
		cr_assert_eq(pthread_join(cl[i], &ret), 0);
		cr_assert_null(ret, "client %d", i);
	}
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(pthread_join(sv[i], &ret), 0);
		cr_assert_null(ret, "server %d", i);
	}
	cr_assert_eq(served, THREADS * ROUNDS);
	{
		lfipc_conn *c;

		cr_assert_eq(lfipc_listener_accept(l, LFIPC_NOWAIT, &c),
			     -EAGAIN);
	}
	cr_assert_eq(nobjects(), 1);
}

/* ---- status ---------------------------------------------------------------- */

static _Atomic int toggling;

/* Stop and start serving, over and over: the server word goes from our
 * token to 0 and back. */
static void *toggle_server(void *arg)
{
	lfipc_listener *mine = arg;

	for (int i = 0; i < 2000; i++) {
		lfipc_listener_close(mine);
		if (lfipc_listener_open(r, "L", &mine) != 0) {
			atomic_store(&toggling, 0);
			return (void *)1;
		}
	}
	lfipc_listener_close(mine);
	atomic_store(&toggling, 0);
	return NULL;
}

Test(listener, status_describes_one_server_while_servers_come_and_go,
     .init = setup, .fini = teardown, .timeout = 120)
{
	lfipc_listener *mine;
	pthread_t t;
	void *ret;
	long looks = 0;

	cr_assert_eq(lfipc_listener_create(r, "L", 2, 4, RING, &mine), 0);
	atomic_store(&toggling, 1);
	cr_assert_eq(pthread_create(&t, NULL, toggle_server, mine), 0);
	/* serving, server_pid and server_alive come from one read of the
	 * server word: never "serving" without a pid, nor a pid without
	 * "serving". */
	while (atomic_load(&toggling)) {
		lfipc_listener_status st = listener_stat();

		cr_assert_eq(st.serving, st.server_pid != 0, "look %ld", looks);
		cr_assert_eq(st.serving, st.server_alive, "look %ld", looks);
		if (st.serving)
			cr_assert_eq(st.server_pid, getpid());
		looks++;
	}
	cr_assert_eq(pthread_join(t, &ret), 0);
	cr_assert_null(ret);
	cr_assert_gt(looks, 0);
	cr_assert_not(listener_stat().serving);
}

/* ---- leftover Pipes ------------------------------------------------------ */

Test(listener, pipes_left_under_connection_names_make_connect_busy_not_eexist,
     .init = setup_listener, .fini = teardown)
{
	lfipc_conn *e0, *e1, *c;
	char pn[LFIPC_NAME_MAX + 1];

	/* Pipes named as the next connections would be ("L#0".."L#8"),
	 * as an earlier listener "L" removed with its connections still
	 * there leaves them: no record of this listener knows them. */
	for (unsigned id = 0; id < 9; id++) {
		snprintf(pn, sizeof(pn), "L#%x", id);
		cr_assert_eq(lfipc_pipe_create(r, pn, RING, true, &e0, &e1), 0);
		lfipc_conn_close(e0);
		lfipc_conn_close(e1);
	}
	cr_assert_eq(lfipc_listener_connect(r, "L", LFIPC_NOWAIT, &c), -EBUSY);
	cr_assert_null(c);
	/* Nothing of ours was left, and the leftovers are untouched. */
	cr_assert_eq(nobjects(), 10);
	cr_assert_eq(listener_stat().waiting, 0);
	/* The next connect tries names past them. */
	cr_assert_eq(lfipc_listener_connect(r, "L", LFIPC_NOWAIT, &c), -EAGAIN);
	cr_assert_eq(lfipc_listener_accept(l, LFIPC_NOWAIT, &c), -EAGAIN);
	cr_assert_eq(nobjects(), 10);
}

/* ---- the server word under a peer that rewrites it -------------------- */

/* A token whose participant slot lies past the table: always dead. */
#define DEAD_TOKEN ((UINT32_C(2046) << 19) | 1u)

/* The listener's server word (after its 128-byte geometry, the second
 * word of its control line: lib/listener.c, struct lsn_ctl) names a dead
 * server, and the peer moves it to another dead one before every CAS of
 * lfipc_listener_open(). On main the open never returned. */
Test(listener, open_returns_eproto_while_a_peer_rewrites_the_server_word,
     .init = setup_listener, .fini = teardown, .timeout = 30)
{
	uint8_t *base = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE,
			     MAP_SHARED, lfipc_region_fd(r), 0);
	_Atomic uint32_t *server = NULL;
	int64_t took;
	int rc;

	cr_assert_neq(base, MAP_FAILED);
	for (size_t off = 0; off + 256 <= REGION_SIZE; off += 64) {
		uint32_t m;

		memcpy(&m, base + off, sizeof(m));
		if (m == UINT32_C(0x4e53494c)) /* LSN_MAGIC, "LISN" */
			server = (_Atomic uint32_t *)(base + off + 128 + 4);
	}
	cr_assert_not_null(server);
	lfipc_listener_close(l);
	l = NULL;
	atomic_store(server, DEAD_TOKEN);
	cf_start(r->base + ((uint8_t *)server - base), server, 2);
	CF_TIMED(took, rc = lfipc_listener_open(r, "L", &l));
	cr_assert_eq(rc, -EPROTO, "open: %d after %lld ms", rc,
		     (long long)(took / MS));
	cr_assert_lt(took, 4000 * MS, "open took %lld ms",
		     (long long)(took / MS));
	cr_assert_eq(lfipc_listener_open(r, "L", &l), 0);
	munmap(base, REGION_SIZE);
}
