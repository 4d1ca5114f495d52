#define _GNU_SOURCE
#include <lfipc.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>
#define SZ (1 << 20)
int main(void){
	lfipc_region *r; lfipc_queue *q; lfipc_lock *l; lfipc_sem *s;
	if (lfipc_region_create("/r9trunc", SZ, 0600, &r) || lfipc_queue_create(r, "q", 64, 64, 0, &q) ||
	    lfipc_lock_create(r, "l", false, &l) || lfipc_sem_create_ex(r, "s", 1, LFIPC_SEM_TRACK_HOLDERS, &s)) return 2;
	int fd = lfipc_region_fd(r); lfipc_region_unlink("/r9trunc");
	pid_t v = fork();
	if (v == 0) { long ok = 0, err = 0; char m[64] = "x"; size_t len;
		for (long i = 0; i < 20000; i++) {
			int a = lfipc_queue_put(q, m, 8, 1000000), b = lfipc_queue_get(q, m, 64, &len, 1000000);
			int c = lfipc_lock_acquire(l, 1000000); if (c == 0 || c == -EOWNERDEAD) lfipc_lock_release(l);
			int d = lfipc_sem_acquire(s, 0); if (!d) lfipc_sem_release(s);
			lfipc_region_recover(r);
			if (a || b) err++; else ok++; }
		printf("victim: %ld ok rounds, %ld with errors\n", ok, err); fflush(stdout); _exit(0); }
	pid_t h = fork();
	if (h == 0) { for (;;) { if (ftruncate(fd, 4096)) { printf("ftruncate: refused\n"); fflush(stdout); _exit(0); } usleep(200); if (ftruncate(fd, SZ)) {} usleep(300); } }
	int st; waitpid(v, &st, 0); kill(h, SIGKILL); waitpid(h, NULL, 0);
	if (WIFSIGNALED(st)) { printf("BUG victim killed by signal %d\n", WTERMSIG(st)); return 1; }
	printf("victim exit %d\n", WEXITSTATUS(st)); return WEXITSTATUS(st);
}
