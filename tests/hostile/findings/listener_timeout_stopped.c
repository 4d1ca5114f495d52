/*
 * FINDING (lfipc_listener_connect() and lfipc_listener_accept() ignore
 * their timeout while a stopped peer holds the region lock;
 * lib/listener.c, owner life3): both take the listener's own lock with
 * the caller's deadline, but then call region-lock users with no deadline
 * at all: attach() -> lfipc__obj_get() (connect), gc() -> rec_drop() ->
 * lfipc_object_remove(), make_pending() -> lfipc_pipe_create() and
 * lfipc__obj_open(), accept -> lfipc_pipe_open(). lfipc__region_lock()
 * waits with LFIPC_DL_NEVER. So a SIGSTOPped process of the region that
 * happens to be inside any create/remove (here a churner creating and
 * removing a Queue) makes connect(100 ms) and accept(100 ms) block for
 * as long as it stays stopped. listener.h promises "Blocks until
 * accepted, up to timeout_ns"; the brief says a stopped peer must not
 * make a call exceed its timeout. Suggested fix: a timed region lock
 * (lfipc__region_lock_until(r, dl)) for every path of connect/accept,
 * returning -ETIMEDOUT/-EAGAIN; the rest of the library can keep the
 * untimed one.
 *
 * Build (from the worktree, library built in build/normal):
 *   cc -O2 -Iinclude -o /tmp/listener_timeout_stopped \
 *      tests/hostile/findings/listener_timeout_stopped.c \
 *      build/normal/.libs/liblfipc.a -lpthread
 * Run: /tmp/listener_timeout_stopped [rounds]
 *   prints "BUG: connect(100 ms) still blocked after 2 s ..." (or the same
 *   for accept) and exits 1.
 */
#define _GNU_SOURCE
#include <lfipc.h>
#include <lfipc/listener.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct shared {
	_Atomic int64_t accept_since; /* 0: not inside accept */
	_Atomic int ready;
};

static char name[64];

/* Wait for pid up to ms; true if it exited. */
static bool reap(pid_t pid, int ms)
{
	for (int i = 0; i < ms; i++) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return true;
		usleep(1000);
	}
	return false;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 20;
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	lfipc_region *r;
	pid_t server, churner;
	int bugs = 0;

	snprintf(name, sizeof(name), "/lfipc-review11-lt-%d", getpid());
	if (lfipc_region_create(name, 1 << 20, 0600, &r) < 0)
		return 2;
	server = fork();
	if (server == 0) {
		lfipc_listener *l;
		lfipc_conn *c;

		if (lfipc_listener_create(r, "lsn", 4, 8, 0, &l) < 0)
			_exit(2);
		atomic_store(&sh->ready, 1);
		for (;;) {
			atomic_store(&sh->accept_since, now_ns());
			if (lfipc_listener_accept(l, 100000000, &c) == 0)
				lfipc_conn_close(c);
			atomic_store(&sh->accept_since, 0);
		}
	}
	while (!atomic_load(&sh->ready))
		usleep(1000);
	churner = fork();
	if (churner == 0) {
		for (;;) {
			lfipc_queue *q;

			if (lfipc_queue_create(r, "churn", 8, 64, 0, &q) == 0)
				lfipc_queue_close(q);
			lfipc_object_remove(r, "churn");
		}
	}
	for (int i = 0; i < rounds && !bugs; i++) {
		pid_t client;
		int64_t t0, since;

		usleep(20000 + rand() % 20000);
		kill(churner, SIGSTOP);
		t0 = now_ns();
		client = fork();
		if (client == 0) {
			lfipc_conn *c;
			int rc = lfipc_listener_connect(r, "lsn", 100000000, &c);

			if (rc == 0)
				lfipc_conn_close(c);
			_exit(0);
		}
		if (!reap(client, 2000)) {
			printf("BUG: connect(100 ms) still blocked after 2 s "
			       "(round %d; a peer is stopped)\n", i);
			bugs++;
			if (getenv("BT")) { /* BT=1: the client's stack */
				char cmd[128];

				snprintf(cmd, sizeof(cmd),
					 "gdb -q -batch -p %d -ex bt 2>/dev/null"
					 " | grep '^#'", client);
				system(cmd);
			}
			kill(client, SIGKILL);
			waitpid(client, NULL, 0);
		}
		since = atomic_load(&sh->accept_since);
		if (since && since < t0 - 200000000 + 0 &&
		    now_ns() - since > 2000000000) {
			printf("BUG: accept(100 ms) blocked for %.1f s (round "
			       "%d; a peer is stopped)\n",
			       (now_ns() - since) / 1e9, i);
			bugs++;
		}
		kill(churner, SIGCONT);
	}
	kill(churner, SIGKILL);
	kill(server, SIGKILL);
	waitpid(churner, NULL, 0);
	waitpid(server, NULL, 0);
	lfipc_region_close(r);
	lfipc_region_unlink(name);
	if (!bugs)
		printf("%d rounds: every connect/accept kept its timeout\n",
		       rounds);
	return bugs ? 1 : 0;
}
