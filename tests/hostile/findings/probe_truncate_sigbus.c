/*
 * FINDING (lfipc_region_probe() dies of SIGBUS when a peer truncates the
 * file while it reads; lib/region.c, owner life3): probe maps the file
 * read-only with a raw mmap() of its fstat() size and then reads the
 * header and the participant table. The mappings of region handles are
 * watched by the truncation guard (internal/guard.h), this one is not:
 * a process with write access that shrinks the file (ftruncate) between
 * the fstat and the reads kills the caller with SIGBUS. `lfipc ls` and
 * `lfipc gc` probe every file in /dev/shm, so one hostile file that
 * flips its size crashes them for every user. Shared memory is untrusted:
 * it should be -EPROTO (use the guard, or read with pread() instead of a
 * mapping).
 *
 * Build (from the worktree, library built in build/normal):
 *   cc -O2 -Iinclude -o /tmp/probe_truncate_sigbus \
 *      tests/hostile/findings/probe_truncate_sigbus.c \
 *      build/normal/.libs/liblfipc.a -lpthread
 * Run: /tmp/probe_truncate_sigbus   prints "BUG: probe killed by SIGBUS"
 * and exits 1 when the probing child dies of a signal.
 */
#define _GNU_SOURCE
#include <lfipc.h>
#include <lfipc/inspect.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
	char name[64];
	lfipc_region *r;
	size_t size = 1 << 20;
	pid_t flipper, prober;
	int st, fd;

	snprintf(name, sizeof(name), "/lfipc-review11-tr-%d", getpid());
	if (lfipc_region_create(name, size, 0600, &r) < 0)
		return 2;
	lfipc_region_close(r);
	flipper = fork();
	if (flipper == 0) {
		fd = shm_open(name, O_RDWR, 0);
		for (;;) {
			/* keep page 0 (the header), drop the rest, restore */
			ftruncate(fd, 4096);
			ftruncate(fd, size);
		}
	}
	prober = fork();
	if (prober == 0) {
		for (int i = 0; i < 200000; i++) {
			lfipc_region_status s;

			LFIPC_STATUS_INIT(s);
			(void)lfipc_region_probe(name, &s);
		}
		_exit(0);
	}
	waitpid(prober, &st, 0);
	kill(flipper, SIGKILL);
	waitpid(flipper, NULL, 0);
	lfipc_region_unlink(name);
	if (WIFSIGNALED(st)) {
		printf("BUG: probe killed by %s\n", strsignal(WTERMSIG(st)));
		return 1;
	}
	printf("probe survived 200000 calls\n");
	return 0;
}
