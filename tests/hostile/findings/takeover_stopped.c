/*
 * ATTACK (held unless it prints BUG): a SIGSTOPped participant keeps its
 * region. Each round a child opens-or-creates the region and is stopped
 * at a random moment after it registered (or while registering); then
 * lfipc_region_create_ex(TAKEOVER), lfipc_region_remove(name, 0) and
 * `lfipc gc` (if a path to the tool is given) are tried; the file must
 * keep its inode while the child is stopped and be taken over once it is
 * SIGKILLed.
 *
 * Build (from the worktree, library built in build/normal):
 *   cc -O2 -Iinclude -o /tmp/takeover_stopped \
 *      tests/hostile/findings/takeover_stopped.c \
 *      build/normal/.libs/liblfipc.a -lpthread
 * Run: /tmp/takeover_stopped [rounds] [path/to/lfipc]
 */
#define _GNU_SOURCE
#include <lfipc.h>
#include <lfipc/inspect.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 50;
	const char *tool = argc > 2 ? argv[2] : NULL;
	_Atomic int *ready = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char name[64], path[96], cmd[256];
	int bugs = 0, refused = 0;

	snprintf(name, sizeof(name), "/lfipc-review11-ts-%d", getpid());
	snprintf(path, sizeof(path), "/dev/shm%s", name);
	for (int i = 0; i < rounds && !bugs; i++) {
		struct stat a, b;
		lfipc_region *r;
		pid_t kid;

		atomic_store(ready, 0);
		kid = fork();
		if (kid == 0) {
			int rc = lfipc_region_create_ex(
			    name, 256 * 1024, 0600,
			    LFIPC_REGION_OPEN_OR_CREATE | LFIPC_REGION_TAKEOVER,
			    &r);

			atomic_store(ready, rc == 0 ? 1 : -1);
			for (;;)
				pause();
		}
		while (atomic_load(ready) == 0)
			;
		usleep(rand() % 200);
		kill(kid, SIGSTOP);
		if (atomic_load(ready) < 0 || stat(path, &a) < 0) {
			kill(kid, SIGKILL);
			waitpid(kid, NULL, 0);
			continue;
		}
		for (int k = 0; k < 20; k++) {
			int rc = lfipc_region_create_ex(name, 256 * 1024, 0600,
							LFIPC_REGION_TAKEOVER,
							&r);

			if (rc == 0) {
				printf("BUG: takeover won while the "
				       "participant %d is stopped\n", kid);
				lfipc_region_close(r);
				bugs++;
			}
			rc = lfipc_region_remove(name, 0);
			if (rc == 0) {
				printf("BUG: remove(0) removed a region of a "
				       "stopped participant\n");
				bugs++;
			}
			refused++;
		}
		if (tool) {
			snprintf(cmd, sizeof(cmd),
				 "%s gc 'lfipc-review11-ts-*' >/dev/null", tool);
			system(cmd);
		}
		if (stat(path, &b) < 0 || a.st_ino != b.st_ino) {
			printf("BUG: the stopped participant's region was "
			       "replaced or removed\n");
			bugs++;
		}
		kill(kid, SIGKILL);
		waitpid(kid, NULL, 0);
		if (lfipc_region_create_ex(name, 256 * 1024, 0600,
					   LFIPC_REGION_TAKEOVER, &r) != 0) {
			printf("BUG: no takeover after the participant died\n");
			bugs++;
		} else {
			lfipc_region_close(r);
		}
	}
	lfipc_region_unlink(name);
	printf("%d rounds, %d refused takeovers/removes: %s\n", rounds,
	       refused, bugs ? "BUG" : "held");
	return bugs ? 1 : 0;
}
