/*
 * FINDING (undocumented error code; lib/pipe.c + include/lfipc/pipe.h,
 * owner r-sync): lfipc_conn_poll() returns -EPIPE, which its header does
 * not list ("1 readable; 0 ...; -EBADF; -EBUSY; -EINVAL; -EPROTO"). It
 * comes from own() (the end of this handle was closed, or its holder
 * died), through rx_begin(). Reached without any hostile peer: a fork
 * child polls through an inherited handle after the parent closed that
 * end. (send and recv list -EPIPE; poll should too, or return 1 as for
 * end-of-file.) Found by tests/hostile/test_hostile on every run
 * ("conn_poll returned -32: undocumented error code").
 *
 * Build (from the source tree, library built out of tree in build/):
 *   cc -O2 -Iinclude -o pipe_poll_epipe \
 *      tests/hostile/findings/pipe_poll_epipe.c build/.libs/liblfipc.a -lpthread
 * Run: ./pipe_poll_epipe   (exit status 1 and "BUG" when poll gave -EPIPE)
 */
#define _GNU_SOURCE
#include <lfipc.h>
#include <errno.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	lfipc_region *r;
	lfipc_conn *e0, *e1;
	int go[2], st = 0;

	if (lfipc_region_create(NULL, 1 << 20, 0, &r) ||
	    lfipc_pipe_create(r, "p", 0, true, &e0, &e1) || pipe(go))
		return 2;
	if (lfipc_conn_poll(e0, LFIPC_NOWAIT) < 0) /* claims end 0 */
		return 2;
	pid_t child = fork();
	if (child == 0) {
		char c;

		if (read(go[0], &c, 1) != 1)
			_exit(2);
		int rc = lfipc_conn_poll(e0, LFIPC_NOWAIT);
		printf("%s: lfipc_conn_poll -> %d\n",
		       rc == -EPIPE ? "BUG (undocumented -EPIPE)" : "ok", rc);
		fflush(stdout);
		_exit(rc == -EPIPE);
	}
	lfipc_conn_close(e0); /* the parent holds end 0: closes it */
	(void)!write(go[1], "x", 1);
	waitpid(child, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 2;
}
