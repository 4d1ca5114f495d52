/*
 * ATTACK (held unless it prints BUG): a creator SIGSTOPped in the middle
 * of lfipc_region_create(). Each round a child creates the region and is
 * stopped after a random 0-400 us; if the region is then still being
 * set up (probe: initialising), TAKEOVER must not take it (-EEXIST),
 * remove(name, 0) must refuse (-EBUSY), and OPEN_OR_CREATE must return
 * within 3 s with an error. The child is then let go and must finish.
 * Prints the errors OPEN_OR_CREATE returned.
 *
 * FOUND: (1) a creator stopped between shm_open(O_EXCL) and its gate
 * lock (file size 0) loses its region: TAKEOVER and remove(name, 0) see
 * an empty unlocked file, call it stale and unlink it; once continued,
 * the creator returns success on a file without a name (the "round N:
 * creator returned success on an unlinked file" line) - the
 * deterministic form of takeover_race.c. (2) OPEN_OR_CREATE took 3.2-3.4 s
 * (-EBUSY): lfipc__gate_lock() counts 1000 sleeps of 1 ms (proc.c), the
 * defect fixed for map_and_validate (finding 4 of README.md), and after
 * the 1 s wait for the magic it returns -EPROTO, which region.h reserves
 * for "a file that is not a valid lfipc region", for a live creator.
 *
 * Build (from the worktree, library built in build/normal):
 *   cc -O2 -Iinclude -o /tmp/creator_stopped \
 *      tests/hostile/findings/creator_stopped.c \
 *      build/normal/.libs/liblfipc.a -lpthread
 * Run: /tmp/creator_stopped [rounds]
 */
#define _GNU_SOURCE
#include <lfipc.h>
#include <lfipc/inspect.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 200, bugs = 0, caught = 0;
	int ooc_err[200] = {0};
	char name[64];

	snprintf(name, sizeof(name), "/lfipc-review11-cs-%d", getpid());
	for (int i = 0; i < rounds && bugs < 3; i++) {
		lfipc_region_status s;
		lfipc_region *r;
		pid_t kid;
		int rc, st;

		lfipc_region_unlink(name);
		kid = fork();
		if (kid == 0) {
			struct stat fs;

			rc = lfipc_region_create(name, 4 << 20, 0600, &r);
			if (rc == 0 && fstat(lfipc_region_fd(r), &fs) == 0 &&
			    fs.st_nlink == 0)
				_exit(3); /* "created" a region with no name */
			_exit(rc == 0 ? 0 : 1);
		}
		usleep(rand() % 400);
		kill(kid, SIGSTOP);
		LFIPC_STATUS_INIT(s);
		if (lfipc_region_probe(name, &s) == 0 && s.initialising) {
			int64_t t0;

			caught++;
			{
				/* where the creator stopped: file size and
				 * whether it holds the gate (LFIPC_GATE_BYTE
				 * is byte 0 of the lock range: see below) */
				char path[96];
				struct stat fs;

				snprintf(path, sizeof(path), "/dev/shm%s", name);
				if (stat(path, &fs) == 0)
					printf("round %d: creator stopped, file "
					       "size %lld\n", i,
					       (long long)fs.st_size);
			}
			rc = lfipc_region_create_ex(name, 4 << 20, 0600,
						    LFIPC_REGION_TAKEOVER, &r);
			if (rc != -EEXIST) {
				printf("BUG: TAKEOVER of a region whose "
				       "creator is stopped: %s\n",
				       lfipc_strerror(rc));
				bugs++;
				if (rc == 0)
					lfipc_region_close(r);
			}
			rc = rc == 0 ? -EBUSY /* ours now, closed */
				     : lfipc_region_remove(name, 0);
			if (rc != -EBUSY) {
				printf("BUG: remove(0) of a region whose "
				       "creator is stopped: %s\n",
				       lfipc_strerror(rc));
				bugs++;
			}
			t0 = now_ns();
			rc = lfipc_region_create_ex(
			    name, 4 << 20, 0600, LFIPC_REGION_OPEN_OR_CREATE,
			    &r);
			if (now_ns() - t0 > 3000000000) {
				printf("BUG: OPEN_OR_CREATE took %.1f s\n",
				       (now_ns() - t0) / 1e9);
				bugs++;
			}
			if (rc == 0)
				lfipc_region_close(r);
			else if (-rc < 200)
				ooc_err[-rc]++;
		}
		kill(kid, SIGCONT);
		waitpid(kid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			printf("BUG: round %d: the creator %s after "
			       "SIGCONT\n", i,
			       WIFEXITED(st) && WEXITSTATUS(st) == 3
				   ? "returned success on an unlinked file"
				   : "failed");
			bugs++;
		}
	}
	lfipc_region_unlink(name);
	for (int e = 0; e < 200; e++)
		if (ooc_err[e])
			printf("OPEN_OR_CREATE while the creator was stopped: "
			       "%s x %d\n", strerror(e), ooc_err[e]);
	printf("%d rounds, %d with the creator stopped while initialising: "
	       "%s\n", rounds, caught, bugs ? "BUG" : "held");
	return bugs ? 1 : 0;
}
