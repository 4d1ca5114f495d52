/*
 * FINDING (lfipc_region_probe() blocks for ever on a FIFO; lib/region.c,
 * owner life3): inspect.h says probe "Does not block". It opens the name
 * with shm_open(O_RDONLY), which on a FIFO in /dev/shm waits for a
 * writer, for ever. Anybody who can write to /dev/shm can put a FIFO
 * under a region's name (or swap one in between the scandir() and the
 * probe of `lfipc ls`/`lfipc gc`, which filter on d_type first), and the
 * supervisor that probes hangs. Suggested fix: open with O_NONBLOCK (or
 * O_PATH first) and refuse anything that is not S_ISREG with -EPROTO;
 * the same check belongs in remove_named() and lfipc_region_open().
 *
 * Build (from the worktree, library built in build/normal):
 *   cc -O2 -Iinclude -o /tmp/probe_fifo_blocks \
 *      tests/hostile/findings/probe_fifo_blocks.c \
 *      build/normal/.libs/liblfipc.a -lpthread
 * Run: /tmp/probe_fifo_blocks   prints "BUG: probe of a FIFO still
 * blocked after 3 s" and exits 1.
 */
#define _GNU_SOURCE
#include <lfipc.h>
#include <lfipc/inspect.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	char name[64], path[96];
	pid_t kid;
	int st = 0, done = 0;

	snprintf(name, sizeof(name), "/lfipc-review11-ff-%d", getpid());
	snprintf(path, sizeof(path), "/dev/shm%s", name);
	if (mkfifo(path, 0600) < 0)
		return 2;
	kid = fork();
	if (kid == 0) {
		lfipc_region_status s;

		LFIPC_STATUS_INIT(s);
		printf("probe: %d\n", lfipc_region_probe(name, &s));
		_exit(0);
	}
	for (int i = 0; i < 300 && !done; i++) {
		usleep(10000);
		done = waitpid(kid, &st, WNOHANG) == kid;
	}
	if (!done) {
		kill(kid, SIGKILL);
		waitpid(kid, NULL, 0);
	}
	unlink(path);
	if (!done) {
		printf("BUG: probe of a FIFO still blocked after 3 s\n");
		return 1;
	}
	printf("probe returned\n");
	return 0;
}
