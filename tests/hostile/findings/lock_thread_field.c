/*
 * FINDING (hang, hostile peer; lib/sync.c + lib/barrier.c, owner r-sync):
 * a peer that rewrites the `thread` field of a lock's shared memory
 * (struct lock_shm in lib/sync.c: magic u32 @0, recursive @4, word @8,
 * depth @12, thread u64 @16) while the owner holds the lock makes the
 * owner's lfipc_lock_release() fail with -EPERM (sync.c: "thread !=
 * thread_id()"), so the lock word keeps the owner's token for ever: the
 * owner is alive, nobody takes it over. For a public Lock that is a
 * denial of service bounded by every caller's timeout; for the Barrier's
 * internal guard (barrier.c guard_unlock() ignores the -EPERM, and
 * guard_lock() waits with LFIPC_FOREVER) every later lfipc_barrier_wait,
 * _abort, _reset and lfipc_region_recover blocks for ever, in the owner
 * too (sync.c wait_sibling(): "held by another thread of this process").
 * The tracked Semaphore's guard is built the same way (sem.c).
 * Found by tests/hostile/test_hostile (victims stuck in barrier_abort,
 * barrier_reset, region_recover: lfipc__futex_wait < lfipc__mutex_lock or
 * wait_sibling < lfipc_lock_acquire < guard_lock).
 *
 * Build (from the source tree, library built out of tree in build/):
 *   cc -O2 -Iinclude -o lock_thread_field \
 *      tests/hostile/findings/lock_thread_field.c build/.libs/liblfipc.a -lpthread
 * Run: ./lock_thread_field   (exit status 1 and "BUG" when the victim hung)
 */
#define _GNU_SOURCE
#include <lfipc.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SIZE (1u << 20)
#define LOCK_MAGIC 0x4c4b4c46u /* "FLKL", first word of a lock's memory */

int main(void)
{
	lfipc_region *r;
	lfipc_barrier *b;
	uint8_t *m;
	uint8_t *guard = NULL;
	int fd[2];

	if (lfipc_region_create(NULL, SIZE, 0, &r) ||
	    lfipc_barrier_create(r, "b", 2, &b) || pipe(fd))
		return 2;
	m = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		 lfipc_region_fd(r), 0);
	/* The only lock in the region is the barrier's guard. */
	for (size_t off = 4096; off + 64 <= SIZE && !guard; off += 64)
		if (*(uint32_t *)(m + off) == LOCK_MAGIC)
			guard = m + off;
	if (!guard)
		return 2;
	pid_t victim = fork();
	if (victim == 0) { /* calls abort and reset (each takes the guard) */
		for (;;) {
			lfipc_barrier_abort(b);
			lfipc_barrier_reset(b);
			(void)!write(fd[1], "x", 1);
		}
	}
	pid_t hostile = fork();
	if (hostile == 0) { /* only writes shared memory */
		for (;;)
			__atomic_store_n((uint64_t *)(guard + 16), 0x1234,
					 __ATOMIC_RELAXED);
	}
	/* The victim makes progress as long as it writes to the pipe. */
	close(fd[1]);
	int stuck = 0;
	for (int s = 0; s < 30 && !stuck; s++) {
		struct timespec t = {0, 100000000};
		char buf[4096];

		nanosleep(&t, NULL);
		fcntl(fd[0], F_SETFL, O_NONBLOCK);
		stuck = read(fd[0], buf, sizeof(buf)) <= 0;
	}
	kill(hostile, SIGKILL);
	kill(victim, SIGKILL);
	waitpid(hostile, NULL, 0);
	waitpid(victim, NULL, 0);
	printf(stuck ? "BUG: the victim is stuck in barrier abort/reset "
		       "(guard held by itself, release failed)\n"
		     : "ok: no hang in 3 s\n");
	return stuck;
}
