/*
 * ATTACK (held unless it prints BUG): clients SIGKILLed at random points
 * of lfipc_listener_connect() (and of their connection) must not exhaust
 * the backlog or max_conns. A server accepts, answers one message and
 * closes; each round a batch of clients connect and exchange a message,
 * each SIGKILLed after a random 0-3 ms; then a fresh client must connect
 * and get its answer within 2 s, and once the dead are collected the
 * listener status must show no waiting client and no connection.
 *
 * Build (from the worktree, library built in build/normal):
 *   cc -O2 -Iinclude -o /tmp/listener_kill_connect \
 *      tests/hostile/findings/listener_kill_connect.c \
 *      build/normal/.libs/liblfipc.a -lpthread
 * Run: /tmp/listener_kill_connect [rounds] [server]
 * With "server", the server is SIGKILLed at a random point of each round
 * too, and a new one takes the listener over (lfipc_listener_open).
 */
#define _GNU_SOURCE
#include <lfipc.h>
#include <lfipc/inspect.h>
#include <lfipc/listener.h>
#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS 1000000LL

static int client(lfipc_region *r, int64_t timeout)
{
	lfipc_conn *c;
	char buf[16];
	size_t n;
	int rc = lfipc_listener_connect(r, "lsn", timeout, &c);

	if (rc < 0)
		return rc;
	rc = lfipc_conn_send(c, "ping", 4, timeout);
	if (rc == 0)
		rc = lfipc_conn_recv(c, buf, sizeof(buf), &n, timeout);
	lfipc_conn_close(c);
	return rc;
}

/* A server process: takes the listener over (its predecessor closed it
 * or died), then accepts, answers one message and closes, for ever. */
static pid_t serve(lfipc_region *r)
{
	pid_t pid = fork();
	lfipc_listener *l2;

	if (pid != 0)
		return pid;
	while (lfipc_listener_open(r, "lsn", &l2) < 0)
		usleep(1000);
	for (;;) {
		lfipc_conn *c;
		char buf[16];
		size_t n;

		if (lfipc_listener_accept(l2, LFIPC_FOREVER, &c) < 0)
			continue;
		if (lfipc_conn_recv(c, buf, sizeof(buf), &n, 100 * MS) == 0)
			lfipc_conn_send(c, "pong", 4, 100 * MS);
		lfipc_conn_close(c);
	}
}

int main(int argc, char **argv)
{
	bool kill_server = argc > 2 && argv[2][0] == 's';
	int rounds = argc > 1 ? atoi(argv[1]) : 100;
	char name[64];
	lfipc_region *r;
	pid_t server;
	int bugs = 0;

	snprintf(name, sizeof(name), "/lfipc-review11-lk-%d", getpid());
	if (lfipc_region_create(name, 4 << 20, 0600, &r) < 0)
		return 2;
	{
		lfipc_listener *l;

		if (lfipc_listener_create(r, "lsn", 4, 8, 4096, &l) < 0)
			return 2;
		server = serve(r);
		lfipc_listener_close(l);
	}
	for (int i = 0; i < rounds && !bugs; i++) {
		pid_t kids[6];
		int rc;

		for (int k = 0; k < 6; k++) {
			kids[k] = fork();
			if (kids[k] == 0)
				_exit(client(r, LFIPC_FOREVER) == 0 ? 0 : 1);
		}
		for (int k = 0; k < 6; k++) {
			usleep(rand() % 3000);
			kill(kids[k], SIGKILL);
			waitpid(kids[k], NULL, 0);
			if (kill_server && k == 2) {
				kill(server, SIGKILL);
				waitpid(server, NULL, 0);
				server = serve(r);
			}
		}
		/* a restarted server may not have taken over yet: refused
		 * is right until it has (up to 2 s) */
		for (int t = 0; t < 200; t++) {
			rc = client(r, 2000 * MS);
			if (rc != -ECONNREFUSED)
				break;
			usleep(10000);
		}
		if (rc < 0) {
			printf("BUG: round %d: a fresh client failed: %s\n", i,
			       lfipc_strerror(rc));
			bugs++;
		}
	}
	{
		lfipc_listener_status st;
		int rc;

		client(r, 2000 * MS); /* collects the last dead */
		usleep(200000);
		LFIPC_STATUS_INIT(st);
		rc = lfipc_object_stat(r, "lsn", LFIPC_OBJ_LISTENER, &st);
		if (rc < 0 || st.waiting != 0 || st.connections > 1) {
			printf("BUG: after the rounds: rc %d, %u waiting, %u "
			       "connections\n", rc, st.waiting,
			       st.connections);
			bugs++;
		}
	}
	kill(server, SIGKILL);
	waitpid(server, NULL, 0);
	lfipc_region_close(r);
	lfipc_region_unlink(name);
	printf("%d rounds x 6 killed clients: %s\n", rounds,
	       bugs ? "BUG" : "held");
	return bugs ? 1 : 0;
}
