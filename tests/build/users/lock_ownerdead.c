/* SPDX-License-Identifier: MIT */
/* Edge: lfipc_lock_release -> lfipc_lock_acquire returning -EOWNERDEAD.
 * Lock ownership is per thread but owner death is per process (a thread
 * that exits holding a Lock leaves it held while its process lives), so a
 * process has to die: a child, forked before any thread exists, takes the
 * Lock after thread A released it and is SIGKILLed holding it. Thread A
 * wrote data under the Lock; thread B recovers the Lock (-EOWNERDEAD) and
 * reads data. The pipes that sequence the three only connect each thread
 * with the child, never A with B. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "users.h"

static uint32_t data[64];
static lfipc_lock *l;
static int to_child[2], from_child[2];

static void *thread_a(void *arg)
{
	char go = 'g';

	CHECK_RC(lfipc_lock_acquire(l, LFIPC_FOREVER), 0);
	for (uint32_t k = 0; k < 64; k++)
		data[k] = user_mix(k);
	CHECK_RC(lfipc_lock_release(l), 0);
	CHECK(write(to_child[1], &go, 1) == 1); /* the child may take it */
	return arg;
}

static void *thread_b(void *arg)
{
	char held;

	CHECK(read(from_child[0], &held, 1) == 1); /* the child holds it */
	CHECK_RC(lfipc_lock_acquire(l, LFIPC_FOREVER), -EOWNERDEAD);
	for (uint32_t k = 0; k < 64; k++)
		CHECK(data[k] == user_mix(k));
	CHECK_RC(lfipc_lock_release(l), 0);
	return arg;
}

int main(void)
{
	lfipc_region *r = user_region();
	pthread_t a, b;
	int status;
	pid_t pid;

	CHECK_RC(lfipc_lock_create(r, "lock", false, &l), 0);
	CHECK(pipe(to_child) == 0 && pipe(from_child) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		char c;

		if (read(to_child[0], &c, 1) != 1 ||
		    lfipc_lock_acquire(l, LFIPC_FOREVER) != 0)
			_exit(1);
		if (write(from_child[1], &c, 1) != 1)
			_exit(2);
		raise(SIGKILL); /* dies holding the Lock */
		_exit(3);
	}
	close(to_child[0]);
	close(from_child[1]);
	a = user_spawn(thread_a, NULL);
	b = user_spawn(thread_b, NULL);
	user_join(a);
	user_join(b);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	close(to_child[1]);
	close(from_child[0]);
	lfipc_lock_close(l);
	lfipc_region_close(r);
	puts("ok");
	return 0;
}
