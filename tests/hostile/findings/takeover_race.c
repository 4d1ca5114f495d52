/*
 * FINDING (takeover/remove unlink a region that a live creator is making;
 * lib/region.c, owner life3): lfipc_region_create() creates the file with
 * O_CREAT|O_EXCL and only then takes the gate lock. In between, the file
 * is empty and unlocked, and remove_named() (lfipc_region_remove(name, 0),
 * or lfipc_region_create_ex(LFIPC_REGION_TAKEOVER) of a racing process)
 * treats an empty file as "ours" (looks_ours) and, finding no lock,
 * unlinks it. The creator then either
 *  - gets the gate (the remover closed its fd) and returns success on a
 *    file that no longer has a name: two processes "win" the takeover,
 *    each with a live region, and nobody can open the winner's; or
 *  - fails to get the gate (-EAGAIN) and goes to fail_unlink, which calls
 *    shm_unlink(name): that removes whatever the name means now, i.e. the
 *    live region of the process that won meanwhile.
 * Here P/2 processes race lfipc_region_create_ex(TAKEOVER) on one name
 * while P/2 others call lfipc_region_remove(name, 0) in a loop; each
 * winner checks that its file still has a link and counts live winners
 * in shared memory.
 *
 * Build (from the worktree, library built in build/normal):
 *   cc -O2 -Iinclude -o /tmp/takeover_race \
 *      tests/hostile/findings/takeover_race.c \
 *      build/normal/.libs/liblfipc.a -lpthread
 * Run: /tmp/takeover_race [rounds]   prints "BUG: ..." and exits 1 when a
 * winner holds an unlinked region or two winners are live at once.
 */
#define _GNU_SOURCE
#include <lfipc.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define P 4

struct shared {
	_Atomic int live;
	_Atomic int bug_unlinked, bug_two, wins, stop;
};

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 20000;
	char name[64];
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t kids[P];

	snprintf(name, sizeof(name), "/lfipc-review11-tk-%d", getpid());
	lfipc_region_unlink(name);
	for (int k = 0; k < P; k++) {
		kids[k] = fork();
		if (kids[k] == 0 && k >= P / 2) {
			/* a remover: lfipc_region_remove(name, 0) removes only
			 * stale regions, so it must never hit a live one */
			while (!atomic_load(&sh->stop))
				lfipc_region_remove(name, 0);
			_exit(0);
		}
		if (kids[k] == 0) {
			for (int i = 0; i < rounds && !atomic_load(&sh->stop);
			     i++) {
				lfipc_region *r;
				struct stat st;
				int rc = lfipc_region_create_ex(
				    name, 256 * 1024, 0600, LFIPC_REGION_TAKEOVER,
				    &r);

				if (rc < 0)
					continue;
				atomic_fetch_add(&sh->wins, 1);
				if (atomic_fetch_add(&sh->live, 1) != 0) {
					atomic_fetch_add(&sh->bug_two, 1);
				}
				if (fstat(lfipc_region_fd(r), &st) == 0 &&
				    st.st_nlink == 0)
					atomic_fetch_add(&sh->bug_unlinked, 1);
				usleep(50);
				atomic_fetch_sub(&sh->live, 1);
				lfipc_region_close(r);
			}
			_exit(0);
		}
	}
	for (int k = 0; k < P / 2; k++)
		waitpid(kids[k], NULL, 0);
	atomic_store(&sh->stop, 1);
	for (int k = P / 2; k < P; k++)
		waitpid(kids[k], NULL, 0);
	lfipc_region_unlink(name);
	printf("rounds %d x %d processes: %d wins, %d winners on an unlinked "
	       "file, %d times two live winners\n",
	       rounds, P, atomic_load(&sh->wins),
	       atomic_load(&sh->bug_unlinked), atomic_load(&sh->bug_two));
	if (atomic_load(&sh->bug_unlinked) || atomic_load(&sh->bug_two)) {
		printf("BUG: takeover won by a creator whose region was "
		       "unlinked by a racing takeover\n");
		return 1;
	}
	return 0;
}
