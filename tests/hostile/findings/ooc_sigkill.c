/*
 * ATTACK (held unless it prints BUG): processes racing
 * lfipc_region_create_ex(OPEN_OR_CREATE | TAKEOVER) and
 * lfipc_queue_open_or_create() on one name, SIGKILLed at random moments.
 * After each round of kills, a fresh process must open-or-create the
 * region and the queue within 3 s, put and get a message, and the queue
 * shape must be the one asked for. Errors seen by the racers are counted
 * by code.
 *
 * Build (from the worktree, library built in build/normal):
 *   cc -O2 -Iinclude -o /tmp/ooc_sigkill tests/hostile/findings/ooc_sigkill.c \
 *      build/normal/.libs/liblfipc.a -lpthread
 * Run: /tmp/ooc_sigkill [rounds]
 */
#define _GNU_SOURCE
#include <lfipc.h>
#include <lfipc/inspect.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static char name[64];
static _Atomic int *errs; /* by -errno, up to 160 */

static int attempt(void)
{
	lfipc_region *r;
	lfipc_queue *q;
	int rc = lfipc_region_create_ex(name, 256 * 1024, 0600,
					LFIPC_REGION_OPEN_OR_CREATE |
					    LFIPC_REGION_TAKEOVER,
					&r);
	char buf[8];
	size_t n;

	if (rc < 0)
		return rc;
	rc = lfipc_queue_open_or_create(r, "q", 8, 8, 0, &q);
	if (rc == 0) {
		rc = lfipc_queue_put(q, "m", 1, 1000000000);
		if (rc == 0)
			rc = lfipc_queue_get(q, buf, sizeof(buf), &n,
					     1000000000);
		lfipc_queue_close(q);
	}
	lfipc_region_close(r);
	return rc;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 100, bugs = 0;

	errs = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	snprintf(name, sizeof(name), "/lfipc-review11-oc-%d", getpid());
	for (int i = 0; i < rounds && !bugs; i++) {
		pid_t kids[4], t;
		int st;

		for (int k = 0; k < 4; k++) {
			kids[k] = fork();
			if (kids[k] == 0)
				for (;;) {
					int rc = attempt();

					if (rc < 0 && -rc < 160)
						atomic_fetch_add(&errs[-rc], 1);
				}
		}
		for (int k = 0; k < 4; k++) {
			usleep(rand() % 4000);
			kill(kids[k], SIGKILL);
			waitpid(kids[k], NULL, 0);
		}
		t = fork();
		if (t == 0)
			_exit(attempt() == 0 ? 0 : 1);
		for (int ms = 0;; ms++) {
			if (waitpid(t, &st, WNOHANG) == t) {
				if (!WIFEXITED(st) || WEXITSTATUS(st)) {
					printf("BUG: round %d: a fresh open-or-"
					       "create failed\n", i);
					bugs++;
				}
				break;
			}
			if (ms == 3000) {
				printf("BUG: round %d: open-or-create hangs\n",
				       i);
				kill(t, SIGKILL);
				waitpid(t, NULL, 0);
				bugs++;
				break;
			}
			usleep(1000);
		}
	}
	lfipc_region_unlink(name);
	for (int e = 1; e < 160; e++)
		if (atomic_load(&errs[e]))
			printf("racers saw %s: %d\n", strerror(e),
			       atomic_load(&errs[e]));
	printf("%d rounds: %s\n", rounds, bugs ? "BUG" : "held");
	return bugs ? 1 : 0;
}
