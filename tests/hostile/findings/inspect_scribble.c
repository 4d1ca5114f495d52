/*
 * ATTACK (held unless it prints BUG): inspection and Listener calls under
 * a peer that scribbles shared memory. A region holds one object of each
 * type and a listener; a scribbler process writes random bytes (and
 * random 32/64-bit words: 0, ~0, small, huge) into the used directory
 * entries, the first 384 bytes of every object (its header; the
 * listener's control part and records), and the participant table; a
 * victim, built with ASan+UBSan,
 * loops lfipc_object_next + lfipc_object_stat of every entry,
 * lfipc_participant_next, lfipc_region_stat, lfipc_region_probe,
 * lfipc_listener_open/accept(NOWAIT)/connect(1 ms) and every *_stat
 * through a handle. A victim that dies of a signal or an ASan report, or
 * that makes no progress for 5 s, is a BUG (the header and the region
 * lock are not scribbled: a peer can always make a lock look held).
 *
 * Build (from the worktree, library built in build/asan):
 *   cc -g -O1 -fsanitize=address,undefined -Iinclude -Ilib -Ibuild/asan \
 *      -o /tmp/inspect_scribble tests/hostile/findings/inspect_scribble.c \
 *      build/asan/.libs/liblfipc.a -lpthread
 * Run: ASAN_OPTIONS=detect_leaks=0 /tmp/inspect_scribble [seconds]
 * With TOOL=build/asan/tools/lfipc it also runs `lfipc --json show/ps/ls`
 * on the region every 100 ms and checks exit status and JSON.
 */
#define _GNU_SOURCE
#include <lfipc.h>
#include <lfipc/inspect.h>
#include <lfipc/listener.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal/layout.h"

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct shared {
	_Atomic int64_t beat;
	_Atomic uint64_t calls, eproto;
	_Atomic int where;
	_Atomic uint64_t site_calls[16], site_err[16];
	_Atomic int site_last[16];
};

static char name[64];
static struct shared *sh;

static void call(int rc, int where)
{
	atomic_store(&sh->where, where);
	atomic_fetch_add(&sh->calls, 1);
	atomic_fetch_add(&sh->site_calls[where], 1);
	if (rc < 0) {
		atomic_fetch_add(&sh->site_err[where], 1);
		atomic_store(&sh->site_last[where], rc);
	}
	if (rc == -EPROTO)
		atomic_fetch_add(&sh->eproto, 1);
	atomic_store(&sh->beat, now_ns());
}

static void victim(void)
{
	lfipc_region *r;
	union {
		size_t struct_size;
		char room[1024];
	} st;

	if (lfipc_region_open(name, &r) < 0)
		_exit(3);
	for (;;) {
		lfipc_object_entry e;
		lfipc_participant_info p;
		lfipc_region_status rs;
		lfipc_listener *l = NULL;
		lfipc_conn *c;
		unsigned cur = 0;
		int rc;

		LFIPC_STATUS_INIT(e);
		while ((rc = lfipc_object_next(r, &cur, &e)) == 1) {
			memset(&st, 0, sizeof(st));
			st.struct_size = sizeof(lfipc_pipe_status) > 0 ? 1000 : 0;
			call(lfipc_object_stat(r, e.name, e.type, &st), 1);
			LFIPC_STATUS_INIT(e);
		}
		call(rc, 2);
		cur = 0;
		LFIPC_STATUS_INIT(p);
		while ((rc = lfipc_participant_next(r, &cur, &p)) == 1)
			LFIPC_STATUS_INIT(p);
		call(rc, 3);
		LFIPC_STATUS_INIT(rs);
		call(lfipc_region_stat(r, &rs), 4);
		LFIPC_STATUS_INIT(rs);
		call(lfipc_region_probe(name, &rs), 5);
		rc = lfipc_listener_open(r, "lsn", &l);
		call(rc, 6);
		call(lfipc_listener_connect(r, "lsn", 1000000, &c), 7);
		if (l) {
			if (lfipc_listener_accept(l, LFIPC_NOWAIT, &c) == 0)
				lfipc_conn_close(c);
			call(0, 8);
			lfipc_listener_close(l);
		}
		{
			lfipc_queue *q;
			lfipc_lock *lk;
			lfipc_event *ev;
			lfipc_conn *pc;

			if (lfipc_queue_open(r, "q", &q) == 0) {
				memset(&st, 0, sizeof(st));
				st.struct_size = 1000;
				call(lfipc_queue_stat(q, (void *)&st), 9);
				lfipc_queue_close(q);
			}
			if (lfipc_lock_open(r, "l", &lk) == 0) {
				memset(&st, 0, sizeof(st));
				st.struct_size = 1000;
				call(lfipc_lock_stat(lk, (void *)&st), 10);
				lfipc_lock_close(lk);
			}
			if (lfipc_event_open(r, "e", &ev) == 0) {
				memset(&st, 0, sizeof(st));
				st.struct_size = 1000;
				call(lfipc_event_stat(ev, (void *)&st), 11);
				lfipc_event_close(ev);
			}
			if (lfipc_pipe_open(r, "p", 0, &pc) == 0) {
				memset(&st, 0, sizeof(st));
				st.struct_size = 1000;
				call(lfipc_conn_stat(pc, (void *)&st), 12);
				lfipc_conn_close(pc);
			}
		}
	}
}

/* Targets: the used directory entries, the first 256 bytes of each
 * object's block (its header), the listener's control part and records,
 * and the participant table. */
static void scribbler(uint8_t *base, const struct lfipc_hdr *h)
{
	static const uint64_t vals[] = {0, ~0ull, 1, 7, 0x7fffffff, 0x80000000,
					1u << 20, 4096, 0xffffffff00000000ull};
	uint64_t tgt[64][2];
	int nt = 0;

	for (uint32_t i = 0; i < h->dir_cap && nt < 60; i++) {
		const struct lfipc_dirent *d =
		    (const struct lfipc_dirent *)(base + h->dir_off) + i;

		if (d->name_len == 0)
			continue;
		tgt[nt][0] = h->dir_off + (uint64_t)i * sizeof(*d);
		tgt[nt++][1] = 40; /* type, name_len, off, size, creator, gen */
		tgt[nt][0] = d->off;
		tgt[nt++][1] = d->size < 256 + 4 * 32 ? d->size : 256 + 4 * 32;
	}
	tgt[nt][0] = h->proc_off;
	tgt[nt++][1] = 4 * sizeof(struct lfipc_proc_slot);
	static uint8_t save[64][512];

	for (int t = 0; t < nt; t++)
		memcpy(save[t], base + tgt[t][0], tgt[t][1]);
	srand(getpid());
	for (long k = 0;; k++) {
		int t = rand() % nt;

		/* every 4th flip, put everything back first: the victims
		 * then see one to four bad fields at a time, not a ruin */
		if (k % 4 == 0) {
			usleep(1000);
			for (int u = 0; u < nt; u++)
				memcpy(base + tgt[u][0], save[u], tgt[u][1]);
		}
		uint64_t off = tgt[t][0] + (uint64_t)rand() % tgt[t][1];
		uint8_t *p = base + (off & ~7ull);

		if (off >= (1u << 20))
			continue;
		switch (rand() % 3) {
		case 0:
			base[off] = (uint8_t)rand();
			break;
		case 1:
			*(volatile uint32_t *)(base + (off & ~3ull)) =
			    (uint32_t)vals[rand() % 9];
			break;
		default:
			*(volatile uint64_t *)p = vals[rand() % 9];
		}
	}
}

int main(int argc, char **argv)
{
	int seconds = argc > 1 ? atoi(argv[1]) : 60;
	lfipc_region *r;
	pid_t scrib, vic = 0;
	int64_t end, last_calls_t;
	int bugs = 0, victims = 0;
	uint64_t last_calls = 0;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	snprintf(name, sizeof(name), "/lfipc-review11-is-%d", getpid());
	if (lfipc_region_create(name, 1 << 20, 0600, &r) < 0)
		return 2;
	{
		lfipc_queue *q;
		lfipc_lock *l;
		lfipc_sem *s;
		lfipc_cond *c;
		lfipc_event *e;
		lfipc_barrier *b;
		lfipc_array *a;
		lfipc_conn *p0, *p1;
		lfipc_listener *ls;

		lfipc_queue_create(r, "q", 16, 64, LFIPC_QUEUE_JOINABLE, &q);
		lfipc_queue_put(q, "x", 1, LFIPC_NOWAIT);
		lfipc_lock_create(r, "l", false, &l);
		lfipc_lock_create(r, "rl", true, &l);
		lfipc_sem_create(r, "s", 3, 0, &s);
		lfipc_cond_create(r, "c", NULL, &c);
		lfipc_event_create(r, "e", &e);
		lfipc_barrier_create(r, "b", 3, &b);
		lfipc_array_create(r, "a", LFIPC_I64, 8, true, &a);
		lfipc_pipe_create(r, "p", 4096, true, &p0, &p1);
		lfipc_listener_create(r, "lsn", 2, 4, 0, &ls);
		lfipc_listener_close(ls);
	}
	lfipc_region_close(r);
	{
		int fd = shm_open(name, O_RDWR, 0);
		uint8_t *base = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
				     MAP_SHARED, fd, 0);
		struct lfipc_hdr h = *(struct lfipc_hdr *)base;

		scrib = fork();
		if (scrib == 0)
			scribbler(base, &h);
	}
	end = now_ns() + (int64_t)seconds * 1000000000;
	last_calls_t = now_ns();
	while (now_ns() < end && !bugs) {
		int st;

		if (!vic) {
			vic = fork();
			if (vic == 0)
				victim();
			victims++;
			last_calls_t = now_ns();
		}
		if (getenv("TOOL")) {
			/* TOOL=path/to/lfipc (an ASan build): show, ps and ls
			 * with --json must exit 0 or 1 with valid JSON of
			 * bounded size, within 10 s */
			char cmd[512];
			int rc;

			snprintf(cmd, sizeof(cmd),
				 "for v in 'show %s' 'ps %s' 'ls lfipc-review11-is-*'; do "
				 "timeout 10 %s --json $v > /tmp/r11-tool.out 2>/tmp/r11-tool.err; "
				 "rc=$?; [ $rc -le 1 ] || { echo \"BUG: lfipc --json $v "
				 "exit $rc\"; cat /tmp/r11-tool.err | head -20; exit 1; }; "
				 "[ $rc = 1 ] || python3 -c 'import json,sys; "
				 "d=open(\"/tmp/r11-tool.out\",\"rb\").read(); "
				 "assert len(d) < 1<<20; json.loads(d)' || "
				 "{ echo \"BUG: lfipc --json $v: bad JSON\"; exit 1; }; done",
				 name, name, getenv("TOOL"));
			rc = system(cmd);
			atomic_fetch_add(&sh->site_calls[13], 1);
			if (rc != 0)
				bugs++;
		}
		usleep(100000);
		if (waitpid(vic, &st, WNOHANG) == vic) {
			if (WIFSIGNALED(st) || WEXITSTATUS(st) != 3) {
				printf("BUG: victim died: %s %d (last call "
				       "site %d)\n",
				       WIFSIGNALED(st) ? "signal" : "exit",
				       WIFSIGNALED(st) ? WTERMSIG(st)
						       : WEXITSTATUS(st),
				       atomic_load(&sh->where));
				bugs++;
			}
			vic = 0;
			continue;
		}
		if (atomic_load(&sh->calls) != last_calls) {
			last_calls = atomic_load(&sh->calls);
			last_calls_t = now_ns();
		} else if (now_ns() - last_calls_t > 5000000000) {
			char cmd[128];

			printf("BUG: victim %d made no call for 5 s (after "
			       "call site %d)\n",
			       vic, atomic_load(&sh->where));
			snprintf(cmd, sizeof(cmd),
				 "gdb -q -batch -p %d -ex bt 2>/dev/null | "
				 "grep '^#'",
				 vic);
			kill(scrib, SIGSTOP);
			system(cmd);
			bugs++;
		}
		if (rand() % 20 == 0) { /* a fresh victim now and then */
			kill(vic, SIGKILL);
			waitpid(vic, NULL, 0);
			vic = 0;
		}
	}
	if (vic) {
		kill(vic, SIGKILL);
		waitpid(vic, NULL, 0);
	}
	kill(scrib, SIGKILL);
	waitpid(scrib, NULL, 0);
	lfipc_region_unlink(name);
	printf("lfipc tool rounds (show, ps, ls): %llu\n",
	       (unsigned long long)atomic_load(&sh->site_calls[13]));
	for (int i = 1; i < 13; i++)
		printf("call site %d: %llu calls, %llu errors (last: %s)\n",
		       i, (unsigned long long)atomic_load(&sh->site_calls[i]),
		       (unsigned long long)atomic_load(&sh->site_err[i]),
		       lfipc_strerror(atomic_load(&sh->site_last[i])));
	printf("%d s, %d victims, %llu calls (%llu -EPROTO): %s\n", seconds,
	       victims, (unsigned long long)atomic_load(&sh->calls),
	       (unsigned long long)atomic_load(&sh->eproto),
	       bugs ? "BUG" : "held");
	return bugs ? 1 : 0;
}
