/* SPDX-License-Identifier: MIT */
/*
 * cli_fixture - participants for the lfipc command's shell tests.
 *
 *   cli_fixture create REGION
 *	Create the named region REGION with a Lock "lock", a Queue "q"
 *	(capacity 16) holding 5 messages, an Event "ev", a Semaphore "sem",
 *	a Barrier "bar", an Array "arr", a Pipe "pipe" and a Listener "lsn";
 *	close it and exit 0 (nobody is left registered).
 *   cli_fixture hold REGION
 *	Open REGION, acquire "lock", attach end 1 of "pipe", become the
 *	server of "lsn" (each if still free), print "ready <pid>", then
 *	wait to be killed.
 *   cli_fixture send REGION LISTENER MESSAGE
 *	Open REGION, connect to LISTENER (waiting up to 10 s to be
 *	accepted), send MESSAGE, wait for the server to close; exit 0.
 *
 * Exit status 1 (with a message) on any failure.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <lfipc.h>

static int die(const char *what, int rc)
{
	fprintf(stderr, "cli_fixture: %s: %s\n", what, lfipc_strerror(rc));
	return 1;
}

static int create(const char *name)
{
	lfipc_region *r;
	lfipc_lock *l;
	lfipc_queue *q;
	lfipc_event *e;
	lfipc_sem *s;
	lfipc_barrier *b;
	lfipc_array *a;
	lfipc_conn *e0, *e1;
	lfipc_listener *n;
	int rc;

	if ((rc = lfipc_region_create(name, 1 << 20, 0, &r)) < 0)
		return die("region", rc);
	if ((rc = lfipc_lock_create(r, "lock", false, &l)) < 0 ||
	    (rc = lfipc_queue_create(r, "q", 16, 32, 0, &q)) < 0 ||
	    (rc = lfipc_event_create(r, "ev", &e)) < 0 ||
	    (rc = lfipc_sem_create(r, "sem", 2, true, &s)) < 0 ||
	    (rc = lfipc_barrier_create(r, "bar", 3, &b)) < 0 ||
	    (rc = lfipc_array_create(r, "arr", LFIPC_I32, 4, false, &a)) < 0 ||
	    (rc = lfipc_pipe_create(r, "pipe", 256, true, &e0, &e1)) < 0 ||
	    (rc = lfipc_listener_create(r, "lsn", 2, 4, 256, &n)) < 0)
		return die("create", rc);
	for (int i = 0; i < 5; i++)
		if ((rc = lfipc_queue_put(q, "msg", 3, LFIPC_NOWAIT)) < 0)
			return die("put", rc);
	lfipc_listener_close(n);
	lfipc_conn_close(e0);
	lfipc_conn_close(e1);
	lfipc_region_close(r);
	return 0;
}

static int hold(const char *name)
{
	lfipc_region *r;
	lfipc_lock *l;
	lfipc_conn *c;
	lfipc_listener *n;
	int rc;

	if ((rc = lfipc_region_open(name, &r)) < 0)
		return die("open", rc);
	/* The first holder gets all three; later ones whatever is free. */
	if ((rc = lfipc_lock_open(r, "lock", &l)) < 0)
		return die("lock", rc);
	rc = lfipc_lock_acquire(l, LFIPC_NOWAIT);
	if (rc < 0 && rc != -EAGAIN && rc != -EOWNERDEAD)
		return die("acquire", rc);
	rc = lfipc_pipe_open(r, "pipe", 1, &c);
	if (rc < 0 && rc != -EBUSY && rc != -EPIPE)
		return die("pipe", rc);
	rc = lfipc_listener_open(r, "lsn", &n);
	if (rc < 0 && rc != -EBUSY)
		return die("listener", rc);
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	for (;;)
		pause();
}

static int send_msg(const char *name, const char *lsn, const char *msg)
{
	const int64_t ten_s = (int64_t)10 * 1000 * 1000 * 1000;
	lfipc_region *r;
	lfipc_conn *c;
	char buf[8];
	size_t len;
	int rc;

	if ((rc = lfipc_region_open(name, &r)) < 0)
		return die("open", rc);
	if ((rc = lfipc_listener_connect(r, lsn, ten_s, &c)) < 0)
		return die("connect", rc);
	if ((rc = lfipc_conn_send(c, msg, strlen(msg), ten_s)) < 0)
		return die("send", rc);
	rc = lfipc_conn_recv(c, buf, sizeof(buf), &len, ten_s);
	if (rc != -EPIPE)
		return die("waiting for the server to close", rc);
	lfipc_conn_close(c);
	lfipc_region_close(r);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "create") == 0)
		return create(argv[2]);
	if (argc == 3 && strcmp(argv[1], "hold") == 0)
		return hold(argv[2]);
	if (argc == 5 && strcmp(argv[1], "send") == 0)
		return send_msg(argv[2], argv[3], argv[4]);
	fprintf(stderr, "usage: cli_fixture create|hold REGION\n"
			"       cli_fixture send REGION LISTENER MESSAGE\n");
	return 2;
}
