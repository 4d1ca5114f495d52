/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <lfipc/pipe.h>
#include <lfipc/region.h>

#include "common/casfail.h"
#include "common/testhelp.h"
#include "internal/pipe_layout.h"
#include "internal/region.h"

#define RING ((size_t)64 * 1024)
#define REGION_SIZE ((size_t)4 << 20)
#define BIG ((size_t)64 << 20)
#define REAP_MS 20000

static lfipc_region *r;
static lfipc_conn *e0, *e1;
static char rname[64];

static void setup_duplex(void)
{
	cr_assert_eq(lfipc_region_create(NULL, REGION_SIZE, 0, &r), 0);
	cr_assert_eq(lfipc_pipe_create(r, "p", RING, true, &e0, &e1), 0);
}

static void setup_oneway(void)
{
	cr_assert_eq(lfipc_region_create(NULL, REGION_SIZE, 0, &r), 0);
	cr_assert_eq(lfipc_pipe_create(r, "p", RING, false, &e0, &e1), 0);
}

static void teardown(void)
{
	lfipc_conn_close(e0);
	lfipc_conn_close(e1);
	e0 = e1 = NULL;
	lfipc_region_close(r);
	r = NULL;
	if (rname[0])
		lfipc_region_unlink(rname);
	rname[0] = '\0';
}

static void fill(void *p, size_t n, uint64_t seed)
{
	uint64_t s = seed | 1;
	uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(th_rand(&s) >> 56);
}

/* ---- child bodies ------------------------------------------------------ */

/* Echo every message on end 1 back until end-of-file. */
static int child_echo(void *arg)
{
	size_t cap = BIG, len;
	uint8_t *buf = malloc(cap);
	int rc;

	(void)arg;
	if (!buf)
		return 10;
	lfipc_conn_close(e0); /* the parent's end: only the handle goes */
	e0 = NULL;
	for (;;) {
		rc = lfipc_conn_recv(e1, buf, cap, &len, LFIPC_FOREVER);
		if (rc == -EPIPE)
			break;
		if (rc != 0)
			return 11;
		if (lfipc_conn_send(e1, buf, len, LFIPC_FOREVER) != 0)
			return 12;
	}
	free(buf);
	return 0;
}

Test(pipe, round_trips_of_edge_sizes_keep_their_checksums_across_processes,
     .init = setup_duplex, .fini = teardown, .timeout = 120)
{
	const size_t sizes[] = {0,	  1,	    7,	      8,
				RING - 8, RING - 9, RING - 1, RING,
				RING + 1, 3 * RING, BIG};
	uint8_t *out = malloc(BIG), *in = malloc(BIG);
	pid_t pid;
	size_t len;

	cr_assert(out && in);
	pid = th_fork(child_echo, NULL);
	cr_assert_gt(pid, 0);
	lfipc_conn_close(e1); /* provisional in the parent: handed on */
	e1 = NULL;
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizes[k];

		fill(out, n, k + 1);
		memset(in, 0xee, n);
		cr_assert_eq(lfipc_conn_send(e0, out, n, LFIPC_FOREVER), 0,
			     "send %zu", n);
		cr_assert_eq(lfipc_conn_recv(e0, in, BIG, &len, LFIPC_FOREVER),
			     0, "recv %zu", n);
		cr_assert_eq(len, n);
		cr_assert_eq(th_sum(in, n), th_sum(out, n), "checksum %zu", n);
	}
	lfipc_conn_close(e0);
	e0 = NULL;
	cr_assert_eq(th_reap(pid, REAP_MS), 0);
	free(out);
	free(in);
}

/* Send count messages of random sizes with sequence numbers, then close. */
static int child_sender(void *arg)
{
	int count = *(int *)arg;
	uint8_t buf[3000];
	uint64_t s = 42;

	lfipc_conn_close(e0);
	e0 = NULL;
	for (int i = 0; i < count; i++) {
		size_t n = 8 + th_rand(&s) % (sizeof(buf) - 8);

		fill(buf, n, (uint64_t)i + 7);
		memcpy(buf, &i, sizeof(i));
		if (lfipc_conn_send(e1, buf, n, LFIPC_FOREVER) != 0)
			return 1;
	}
	lfipc_conn_close(e1);
	e1 = NULL;
	return 0;
}

Test(pipe, messages_arrive_whole_and_in_order_then_eof, .init = setup_oneway,
     .fini = teardown, .timeout = 900)
{
	int count = 20000 * th_scale(), i;
	uint8_t buf[3000], ref[3000];
	uint64_t s = 42;
	size_t len;
	pid_t pid = th_fork(child_sender, &count);

	cr_assert_gt(pid, 0);
	lfipc_conn_close(e1);
	e1 = NULL;
	for (i = 0; i < count; i++) {
		size_t n = 8 + th_rand(&s) % (sizeof(ref) - 8);
		int seq;

		fill(ref, n, (uint64_t)i + 7);
		memcpy(ref, &i, sizeof(i));
		cr_assert_eq(
		    lfipc_conn_recv(e0, buf, sizeof(buf), &len, LFIPC_FOREVER),
		    0);
		memcpy(&seq, buf, sizeof(seq));
		cr_assert_eq(seq, i);
		cr_assert_eq(len, n);
		cr_assert_eq(memcmp(buf, ref, n), 0);
	}
	cr_assert_eq(lfipc_conn_recv(e0, buf, sizeof(buf), &len, LFIPC_FOREVER),
		     -EPIPE);
	cr_assert_eq(lfipc_conn_poll(e0, LFIPC_NOWAIT), 1, "EOF is readable");
	cr_assert_eq(th_reap(pid, REAP_MS), 0);
}

/* ---- end-of-file ------------------------------------------------------- */

static int child_send_three_close(void *arg)
{
	(void)arg;
	for (int i = 0; i < 3; i++)
		if (lfipc_conn_send(e1, &i, sizeof(i), LFIPC_FOREVER) != 0)
			return 1;
	lfipc_conn_close(e1);
	e1 = NULL;
	return 0;
}

Test(pipe, close_gives_peer_the_rest_then_epipe_and_send_fails,
     .init = setup_duplex, .fini = teardown, .timeout = 30)
{
	pid_t pid = th_fork(child_send_three_close, NULL);
	size_t len;
	int v;

	cr_assert_gt(pid, 0);
	lfipc_conn_close(e1);
	e1 = NULL;
	cr_assert_eq(th_reap(pid, REAP_MS), 0);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(
		    lfipc_conn_recv(e0, &v, sizeof(v), &len, LFIPC_FOREVER), 0);
		cr_assert_eq(v, i);
	}
	cr_assert_eq(lfipc_conn_recv(e0, &v, sizeof(v), &len, LFIPC_FOREVER),
		     -EPIPE);
	cr_assert_eq(lfipc_conn_send(e0, &v, sizeof(v), LFIPC_FOREVER), -EPIPE);
	cr_assert_eq(lfipc_pipe_open(r, "p", 1, &e1), -EPIPE,
		     "a closed end cannot be attached again");
}

static int child_send_one_then_hang(void *arg)
{
	int v = 7;

	(void)arg;
	if (lfipc_conn_send(e1, &v, sizeof(v), LFIPC_FOREVER) != 0)
		return 1;
	for (;;)
		pause();
	return 0;
}

Test(pipe, sigkill_of_peer_gives_eof_and_unblocks_a_sender,
     .init = setup_duplex, .fini = teardown, .timeout = 30)
{
	pid_t pid = th_fork(child_send_one_then_hang, NULL);
	uint8_t blob[4096] = {0};
	size_t len;
	int v, rc, sends = 0;
	int64_t t0;

	cr_assert_gt(pid, 0);
	lfipc_conn_close(e1);
	e1 = NULL;
	cr_assert_eq(lfipc_conn_recv(e0, &v, sizeof(v), &len, 5000000000), 0);
	cr_assert_eq(v, 7);
	/* The peer is blocked in nothing; a receive waits for it. */
	cr_assert_eq(lfipc_conn_recv(e0, &v, sizeof(v), &len, 20000000),
		     -ETIMEDOUT);
	kill(pid, SIGKILL);
	cr_assert_eq(th_reap(pid, REAP_MS), 128 + SIGKILL);
	t0 = th_now_ns();
	cr_assert_eq(lfipc_conn_recv(e0, &v, sizeof(v), &len, LFIPC_FOREVER),
		     -EPIPE);
	cr_assert_lt(th_now_ns() - t0, 2000000000LL);
	/* A sender fails instead of filling the ring and blocking forever. */
	do {
		rc = lfipc_conn_send(e0, blob, sizeof(blob), LFIPC_FOREVER);
	} while (rc == 0 && ++sends < 1000);
	cr_assert_eq(rc, -EPIPE);
}

static int child_blocked_sender(void *arg)
{
	lfipc_conn *c = arg;
	size_t n = 1 << 20;
	uint8_t *big = calloc(1, n);
	int small = 5;

	if (!big)
		return 1;
	if (lfipc_conn_send(c, &small, sizeof(small), LFIPC_FOREVER) != 0)
		return 2;
	lfipc_conn_send(c, big, n, LFIPC_FOREVER); /* blocks mid-message */
	return 3;
}

Test(pipe, sender_killed_mid_message_delivers_no_partial_message,
     .init = setup_oneway, .fini = teardown, .timeout = 30)
{
	pid_t pid = th_fork(child_blocked_sender, e1);
	size_t n = 1 << 20, len;
	uint8_t *buf = malloc(n);
	int64_t t0;

	cr_assert(buf);
	cr_assert_gt(pid, 0);
	lfipc_conn_close(e1);
	e1 = NULL;
	cr_assert_eq(lfipc_conn_recv(e0, buf, n, &len, 5000000000), 0);
	cr_assert_eq(len, sizeof(int));
	cr_assert_eq(lfipc_conn_poll(e0, 5000000000), 1);
	usleep(50000); /* let it fill the ring and block */
	kill(pid, SIGKILL);
	cr_assert_eq(th_reap(pid, REAP_MS), 128 + SIGKILL);
	t0 = th_now_ns();
	len = 0;
	cr_assert_eq(lfipc_conn_recv(e0, buf, n, &len, LFIPC_FOREVER), -EPIPE);
	cr_assert_eq(len, 0, "nothing delivered");
	cr_assert_lt(th_now_ns() - t0, 2000000000LL);
	cr_assert_eq(lfipc_conn_recv(e0, buf, n, &len, LFIPC_NOWAIT), -EPIPE);
	free(buf);
}

Test(pipe, region_recover_closes_a_dead_holders_end, .init = setup_duplex,
     .fini = teardown, .timeout = 30)
{
	pid_t pid = th_fork(child_send_one_then_hang, NULL);
	size_t len;
	int v;

	cr_assert_gt(pid, 0);
	lfipc_conn_close(e1);
	e1 = NULL;
	cr_assert_eq(lfipc_conn_recv(e0, &v, sizeof(v), &len, 5000000000), 0);
	kill(pid, SIGKILL);
	cr_assert_eq(th_reap(pid, REAP_MS), 128 + SIGKILL);
	cr_assert_geq(lfipc_region_recover(r), 1);
	cr_assert_eq(lfipc_conn_send(e0, &v, sizeof(v), LFIPC_NOWAIT), -EPIPE,
		     "the closed mark is seen without a liveness check");
}

/* ---- buffers, timeouts, misuse ---------------------------------------- */

Test(pipe, short_buffer_returns_emsgsize_and_keeps_the_message,
     .init = setup_duplex, .fini = teardown)
{
	uint8_t msg[100], buf[100];
	size_t len = 0;

	fill(msg, sizeof(msg), 3);
	cr_assert_eq(lfipc_conn_send(e1, msg, sizeof(msg), LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_conn_recv(e0, buf, 10, &len, LFIPC_NOWAIT),
		     -EMSGSIZE);
	cr_assert_eq(len, sizeof(msg));
	cr_assert_eq(lfipc_conn_poll(e0, LFIPC_NOWAIT), 1);
	cr_assert_eq(lfipc_conn_recv(e0, buf, sizeof(buf), &len, LFIPC_NOWAIT),
		     0);
	cr_assert_eq(len, sizeof(msg));
	cr_assert_eq(memcmp(buf, msg, sizeof(msg)), 0);
}

static int child_send_big(void *arg)
{
	size_t n = *(size_t *)arg;
	uint8_t *b = malloc(n);

	if (!b)
		return 1;
	fill(b, n, 99);
	lfipc_conn_close(e0);
	e0 = NULL;
	return lfipc_conn_send(e1, b, n, LFIPC_FOREVER) == 0 ? 0 : 2;
}

Test(pipe, short_buffer_keeps_a_message_larger_than_the_ring,
     .init = setup_duplex, .fini = teardown, .timeout = 30)
{
	size_t n = 5 * RING + 3, len = 0;
	uint8_t *buf = malloc(n), *ref = malloc(n), small[64];
	pid_t pid;

	cr_assert(buf && ref);
	fill(ref, n, 99);
	pid = th_fork(child_send_big, &n);
	cr_assert_gt(pid, 0);
	lfipc_conn_close(e1);
	e1 = NULL;
	cr_assert_eq(lfipc_conn_poll(e0, 5000000000), 1);
	cr_assert_eq(
	    lfipc_conn_recv(e0, small, sizeof(small), &len, LFIPC_NOWAIT),
	    -EMSGSIZE);
	cr_assert_eq(len, n);
	cr_assert_eq(lfipc_conn_recv(e0, buf, n, &len, LFIPC_FOREVER), 0);
	cr_assert_eq(len, n);
	cr_assert_eq(memcmp(buf, ref, n), 0);
	cr_assert_eq(th_reap(pid, REAP_MS), 0);
	free(buf);
	free(ref);
}

Test(pipe, nowait_and_timeouts_on_empty_and_full_rings, .init = setup_duplex,
     .fini = teardown)
{
	uint8_t blob[1000] = {0};
	size_t len;
	int64_t t0;
	int n = 0;

	cr_assert_eq(
	    lfipc_conn_recv(e0, blob, sizeof(blob), &len, LFIPC_NOWAIT),
	    -EAGAIN);
	t0 = th_now_ns();
	cr_assert_eq(lfipc_conn_recv(e0, blob, sizeof(blob), &len, 30000000),
		     -ETIMEDOUT);
	cr_assert_geq(th_now_ns() - t0, 29000000);
	while (lfipc_conn_send(e1, blob, sizeof(blob), LFIPC_NOWAIT) == 0)
		n++;
	cr_assert_eq(n, RING / 1008, "a 1000-byte message costs 1008 bytes");
	cr_assert_eq(lfipc_conn_send(e1, blob, sizeof(blob), LFIPC_NOWAIT),
		     -EAGAIN);
	cr_assert_eq(lfipc_conn_send(e1, blob, sizeof(blob), 20000000),
		     -ETIMEDOUT);
	cr_assert_eq(
	    lfipc_conn_recv(e0, blob, sizeof(blob), &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_conn_send(e1, blob, sizeof(blob), LFIPC_NOWAIT), 0);
}

static int child_send_after_delay(void *arg)
{
	int v = 1;

	(void)arg;
	usleep(100000);
	return lfipc_conn_send(e1, &v, sizeof(v), LFIPC_FOREVER) == 0 ? 0 : 1;
}

Test(pipe, poll_times_out_then_wakes_when_a_message_arrives,
     .init = setup_duplex, .fini = teardown, .timeout = 30)
{
	int64_t t0 = th_now_ns(), dt;
	pid_t pid;

	cr_assert_eq(lfipc_conn_poll(e0, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_conn_poll(e0, 50000000), 0);
	dt = th_now_ns() - t0;
	cr_assert_geq(dt, 49000000);
	cr_assert_lt(dt, 2000000000LL);
	pid = th_fork(child_send_after_delay, NULL);
	cr_assert_gt(pid, 0);
	t0 = th_now_ns();
	cr_assert_eq(lfipc_conn_poll(e0, 10000000000LL), 1);
	dt = th_now_ns() - t0;
	cr_assert_geq(dt, 50000000, "waited for the child");
	cr_assert_lt(dt, 5000000000LL);
	cr_assert_eq(th_reap(pid, REAP_MS), 0);
}

Test(pipe, one_way_ends_refuse_the_wrong_direction_with_ebadf,
     .init = setup_oneway, .fini = teardown)
{
	int v = 1;
	size_t len;

	cr_assert_eq(lfipc_conn_send(e0, &v, sizeof(v), LFIPC_NOWAIT), -EBADF);
	cr_assert_eq(lfipc_conn_recv(e1, &v, sizeof(v), &len, LFIPC_NOWAIT),
		     -EBADF);
	cr_assert_eq(lfipc_conn_poll(e1, LFIPC_NOWAIT), -EBADF);
	cr_assert_eq(lfipc_conn_send(e1, &v, sizeof(v), LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_conn_recv(e0, &v, sizeof(v), &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_conn_end(e0), 0);
	cr_assert_eq(lfipc_conn_end(e1), 1);
}

Test(pipe, bad_arguments_are_einval, .init = setup_duplex, .fini = teardown)
{
	lfipc_conn *a, *b;
	size_t len;

	cr_assert_eq(
	    lfipc_pipe_create(r, "q", LFIPC_PIPE_MAX_RING + 1, true, &a, &b),
	    -EINVAL);
	cr_assert_eq(lfipc_pipe_create(r, "p", 0, true, &a, &b), -EEXIST);
	cr_assert_eq(lfipc_pipe_open(r, "p", 2, &a), -EINVAL);
	cr_assert_eq(lfipc_pipe_open(r, "nope", 0, &a), -ENOENT);
	cr_assert_eq(lfipc_conn_send(e0, NULL, 3, LFIPC_NOWAIT), -EINVAL);
	cr_assert_eq(lfipc_conn_recv(e0, NULL, 3, &len, LFIPC_NOWAIT), -EINVAL);
	cr_assert_eq(lfipc_conn_send(e0, NULL, 0, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_conn_recv(e1, NULL, 0, &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(len, 0);
}

Test(pipe, an_end_held_by_a_live_process_cannot_be_attached_twice,
     .init = setup_duplex, .fini = teardown)
{
	lfipc_conn *x;
	int v = 3;
	size_t len;

	cr_assert_eq(lfipc_pipe_open(r, "p", 1, &x), -EBUSY);
	lfipc_conn_close(e1); /* provisional: handed on, not closed */
	e1 = NULL;
	cr_assert_eq(lfipc_pipe_open(r, "p", 1, &e1), 0);
	cr_assert_eq(lfipc_pipe_open(r, "p", 1, &x), -EBUSY);
	cr_assert_eq(lfipc_conn_send(e1, &v, sizeof(v), LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_conn_recv(e0, &v, sizeof(v), &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(v, 3);
}

/* A process that is not a fork child: opens the region and the end by
 * name (it only inherits the name). */
static int child_attach_by_name(void *arg)
{
	lfipc_region *o;
	lfipc_conn *c;
	char msg[] = "hello from afar";
	size_t len;
	int rc;

	(void)arg;
	if (lfipc_region_open(rname, &o) != 0)
		return 1;
	for (int i = 0; i < 500; i++) { /* the parent hands the end on */
		rc = lfipc_pipe_open(o, "p", 1, &c);
		if (rc != -EBUSY)
			break;
		usleep(2000);
	}
	if (rc != 0)
		return 2;
	if (lfipc_conn_send(c, msg, sizeof(msg), LFIPC_FOREVER) != 0)
		return 3;
	if (lfipc_conn_recv(c, msg, sizeof(msg), &len, LFIPC_FOREVER) != 0 ||
	    strcmp(msg, "reply") != 0)
		return 4;
	lfipc_conn_close(c);
	lfipc_region_close(o);
	return 0;
}

Test(pipe, another_process_attaches_an_end_by_name, .fini = teardown,
     .timeout = 30)
{
	char buf[64];
	size_t len;
	pid_t pid;

	th_name(rname, sizeof(rname), "pipe");
	cr_assert_eq(lfipc_region_create(rname, REGION_SIZE, 0600, &r), 0);
	cr_assert_eq(lfipc_pipe_create(r, "p", 0, true, &e0, &e1), 0);
	pid = th_fork(child_attach_by_name, NULL);
	cr_assert_gt(pid, 0);
	usleep(20000);
	lfipc_conn_close(e1);
	e1 = NULL;
	cr_assert_eq(lfipc_conn_recv(e0, buf, sizeof(buf), &len, 10000000000),
		     0);
	cr_assert_str_eq(buf, "hello from afar");
	cr_assert_eq(lfipc_conn_send(e0, "reply", 6, LFIPC_FOREVER), 0);
	cr_assert_eq(lfipc_conn_recv(e0, buf, sizeof(buf), &len, 10000000000),
		     -EPIPE);
	cr_assert_eq(th_reap(pid, REAP_MS), 0);
}

/* ---- corrupt shared memory and misuse --------------------------------- */

/* Find the pipe's block in a second mapping of the region: its geometry
 * starts with PIPE_MAGIC, PIPE_VERSION (internal/pipe_layout.h). */
static struct pipe_shm *find_pipe(uint8_t *base, size_t size)
{
	for (size_t off = 0; off + sizeof(struct pipe_shm) <= size; off += 64) {
		struct pipe_geom g;

		memcpy(&g, base + off, sizeof(g));
		if (g.magic == PIPE_MAGIC && g.version == PIPE_VERSION)
			return (struct pipe_shm *)(void *)(base + off);
	}
	return NULL;
}

static uint8_t *map_region(void)
{
	uint8_t *base = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE,
			     MAP_SHARED, lfipc_region_fd(r), 0);

	cr_assert_neq(base, MAP_FAILED);
	return base;
}

/* The header of the frame at position pos of ring 0 (data to end 0). */
static uint8_t *hdr_at(struct pipe_shm *p, uint64_t pos)
{
	return (uint8_t *)p + sizeof(struct pipe_shm) + (pos & (RING - 1));
}

Test(pipe, corrupt_positions_and_headers_give_eproto_once_then_it_works,
     .init = setup_duplex, .fini = teardown)
{
	uint8_t *base = map_region(), buf[256];
	struct pipe_shm *p = find_pipe(base, REGION_SIZE);
	struct pipe_dir *d0;
	uint64_t save, hdr, bad;
	size_t len;
	int v = 1, w = 0;

	cr_assert_not_null(p);
	d0 = &p->dir[0]; /* data to end 0 */

	/* A tail beyond the ring: the receiver drops it all, once. */
	save = atomic_load(&d0->tail);
	atomic_store(&d0->tail, save + 10 * RING);
	cr_assert_eq(lfipc_conn_recv(e0, buf, sizeof(buf), &len, LFIPC_NOWAIT),
		     -EPROTO);
	cr_assert_eq(atomic_load(&d0->head), save + 10 * RING);
	cr_assert_eq(lfipc_conn_poll(e0, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_conn_send(e1, &v, sizeof(v), LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_conn_recv(e0, &w, sizeof(w), &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(w, v);
	save = atomic_load(&d0->head);

	/* A head off a frame boundary: the receiver's own word, repaired. */
	atomic_store(&d0->head, save + 3);
	cr_assert_eq(lfipc_conn_recv(e0, buf, sizeof(buf), &len, LFIPC_NOWAIT),
		     -EPROTO);
	cr_assert_eq(lfipc_conn_recv(e0, buf, sizeof(buf), &len, LFIPC_NOWAIT),
		     -EAGAIN);

	/* A head far behind: the writer sees an over-full ring, waits for
	 * the receiver's repair within its timeout, then gives -EPROTO. */
	atomic_store(&d0->head, save - 5 * RING);
	cr_assert_eq(lfipc_conn_send(e1, &v, sizeof(v), LFIPC_NOWAIT), -EPROTO);
	cr_assert_eq(lfipc_conn_send(e1, &v, sizeof(v), 2 * 1000000), -EPROTO);
	cr_assert_eq(lfipc_conn_poll(e0, LFIPC_NOWAIT), -EPROTO);
	cr_assert_eq(lfipc_conn_send(e1, &v, sizeof(v), LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_conn_recv(e0, &w, sizeof(w), &len, LFIPC_NOWAIT), 0);

	/* A header with a bad tag, then one claiming a frame that is not all
	 * there: each dropped with one -EPROTO; the next message arrives. */
	save = atomic_load(&d0->head);
	cr_assert_eq(lfipc_conn_send(e1, &v, sizeof(v), LFIPC_NOWAIT), 0);
	memcpy(&hdr, hdr_at(p, save), sizeof(hdr));
	bad = hdr ^ ((uint64_t)1 << 60);
	memcpy(hdr_at(p, save), &bad, sizeof(bad));
	cr_assert_eq(lfipc_conn_recv(e0, buf, sizeof(buf), &len, LFIPC_NOWAIT),
		     -EPROTO);
	cr_assert_eq(lfipc_conn_recv(e0, buf, sizeof(buf), &len, LFIPC_NOWAIT),
		     -EAGAIN);
	save = atomic_load(&d0->head);
	cr_assert_eq(lfipc_conn_send(e1, &v, sizeof(v), LFIPC_NOWAIT), 0);
	bad = hdr + 200;
	memcpy(hdr_at(p, save), &bad, sizeof(bad));
	cr_assert_eq(lfipc_conn_recv(e0, buf, sizeof(buf), &len, LFIPC_NOWAIT),
		     -EPROTO);
	v = 77;
	cr_assert_eq(lfipc_conn_send(e1, &v, sizeof(v), LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_conn_recv(e0, &w, sizeof(w), &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(len, sizeof(v));
	cr_assert_eq(w, 77);

	/* A corrupt geometry is refused at open. */
	p->geom.cap ^= 0x40;
	lfipc_conn_close(e1);
	e1 = NULL;
	cr_assert_eq(lfipc_pipe_open(r, "p", 1, &e1), -EPROTO);
	munmap(base, REGION_SIZE);
}

/* What two senders on one end leave behind: sender A and sender B both
 * read tail T; B publishes its frame first, the receiver takes everything
 * up to B's end, then A publishes its own (shorter) end: the tail has gone
 * back behind the receiver's head. Today's misuse must not break the pipe
 * for good: the next message gets through after at most one -EPROTO on
 * each side. */
static void stale_tail(struct pipe_shm *p)
{
	struct pipe_dir *d0 = &p->dir[0];
	uint64_t t = atomic_load(&d0->tail);
	uint8_t b[40] = {2}, buf[64];
	size_t len;

	cr_assert_eq(lfipc_conn_send(e1, b, sizeof(b), LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_conn_recv(e0, buf, sizeof(buf), &len, LFIPC_NOWAIT),
		     0);
	atomic_store(&d0->tail, t + 16); /* A's 8-byte message: 16 bytes */
}

Test(pipe, a_stale_tail_from_two_senders_costs_one_eproto_then_it_works,
     .init = setup_duplex, .fini = teardown)
{
	uint8_t *base = map_region();
	struct pipe_shm *p = find_pipe(base, REGION_SIZE);
	uint64_t v = 0x1122334455667788u, w = 0;
	size_t len;

	cr_assert_not_null(p);
	/* The receiver comes first. */
	stale_tail(p);
	cr_assert_eq(lfipc_conn_recv(e0, &w, sizeof(w), &len, LFIPC_NOWAIT),
		     -EPROTO);
	cr_assert_eq(lfipc_conn_send(e1, &v, sizeof(v), LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_conn_recv(e0, &w, sizeof(w), &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(w, v);
	/* The sender comes first (NOWAIT: it cannot wait for the repair). */
	stale_tail(p);
	cr_assert_eq(lfipc_conn_send(e1, &v, sizeof(v), LFIPC_NOWAIT), -EPROTO);
	cr_assert_eq(lfipc_conn_recv(e0, &w, sizeof(w), &len, LFIPC_NOWAIT),
		     -EPROTO);
	v++;
	cr_assert_eq(lfipc_conn_send(e1, &v, sizeof(v), LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_conn_recv(e0, &w, sizeof(w), &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(w, v);
	munmap(base, REGION_SIZE);
}

struct rx_count {
	lfipc_conn *c;
	uint64_t got;
	int eproto, rc;
	_Atomic bool senders_done;
};

static void *thread_recv_one(void *arg)
{
	struct rx_count *x = arg;
	size_t len;

	for (;;) {
		x->rc = lfipc_conn_recv(x->c, &x->got, sizeof(x->got), &len,
					10 * 1000 * 1000 * 1000LL);
		if (x->rc != -EPROTO)
			return NULL;
		x->eproto++;
	}
}

Test(pipe, a_waiting_sender_gets_through_once_a_blocked_receiver_repairs,
     .init = setup_duplex, .fini = teardown)
{
	uint8_t *base = map_region();
	struct pipe_shm *p = find_pipe(base, REGION_SIZE);
	struct rx_count x = {0};
	uint64_t v = 42;
	pthread_t th;

	cr_assert_not_null(p);
	stale_tail(p);
	/* The receiver is already blocked when the sender finds the mess. */
	x.c = e0;
	cr_assert_eq(pthread_create(&th, NULL, thread_recv_one, &x), 0);
	usleep(20000);
	cr_assert_eq(lfipc_conn_send(e1, &v, sizeof(v), 5000 * 1000000LL), 0);
	pthread_join(th, NULL);
	cr_assert_eq(x.rc, 0);
	cr_assert_eq(x.got, 42);
	cr_assert_leq(x.eproto, 1);
	munmap(base, REGION_SIZE);
}

struct misuse {
	lfipc_conn *c;
	int id, sent;
};

static void *thread_misuse_send(void *arg)
{
	struct misuse *m = arg;
	uint8_t msg[200];

	for (int i = 0; i < 20000; i++) {
		size_t n = 1 + (size_t)((i * 37 + m->id * 11) % 190);

		memset(msg, m->id, n);
		if (lfipc_conn_send(m->c, msg, n, LFIPC_NOWAIT) == 0)
			m->sent++;
	}
	return NULL;
}

static void *thread_drain(void *arg)
{
	struct rx_count *x = arg;
	size_t size = 256, len;
	uint8_t *buf = malloc(size);
	int64_t end = th_now_ns() + 60 * INT64_C(1000000000);
	int rc;

	/* Until the senders are done and then nothing came for 50 ms. A
	 * header the racing senders tore may announce a longer message than
	 * they send: take it with a larger buffer (up to 1 MiB; -EMSGSIZE
	 * consumes nothing, so a small buffer would loop here for ever).
	 * Anything else that keeps this from ending within 60 s is a
	 * failure (x->rc), not a hang. */
	while ((rc = lfipc_conn_recv(x->c, buf, size, &len,
				     50 * 1000000LL)) != -ETIMEDOUT ||
	       !atomic_load(&x->senders_done)) {
		if (rc == -EPROTO)
			x->eproto++;
		if (rc == -EMSGSIZE && len <= ((size_t)1 << 20)) {
			uint8_t *b = realloc(buf, len);

			if (b) {
				buf = b;
				size = len;
			}
		}
		if (th_now_ns() > end) {
			x->rc = rc ? rc : -EAGAIN;
			break;
		}
	}
	free(buf);
	return NULL;
}

/* Real misuse: four threads sending on one end at once. Whatever they
 * did to the pipe, once they stop a single sender's messages arrive. (The
 * threads race on the ring's bytes, which is the misuse itself:
 * ThreadSanitizer would report it, so that build skips it; the
 * deterministic tests above cover the repair there.) */
Test(pipe, four_threads_sending_on_one_end_leave_a_pipe_that_recovers,
     .init = setup_duplex, .fini = teardown, .timeout = 120)
{
	struct misuse m[4];
	struct rx_count x = {0};
	pthread_t th[4], rx;
	uint64_t v, w;
	size_t len;
	int rc, eproto = 0;

	if (th_tsan())
		return;
	x.c = e0;
	cr_assert_eq(pthread_create(&rx, NULL, thread_drain, &x), 0);
	for (int i = 0; i < 4; i++) {
		m[i] = (struct misuse){e1, i + 1, 0};
		cr_assert_eq(
		    pthread_create(&th[i], NULL, thread_misuse_send, &m[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	atomic_store(&x.senders_done, true);
	pthread_join(rx, NULL);
	cr_assert_eq(x.rc, 0, "the drain did not end in 60 s: last %d", x.rc);
	cr_assert_gt(m[0].sent + m[1].sent + m[2].sent + m[3].sent, 0);
	/* The misuse is over (and the receiver drained until it timed out,
	 * repairing whatever it found): ten messages in a row get through,
	 * with at most one -EPROTO (a repair) before the first. */
	for (v = 1; v <= 10; v++) {
		rc = lfipc_conn_send(e1, &v, sizeof(v), LFIPC_NOWAIT);
		if (rc == -EPROTO && eproto++ == 0) {
			lfipc_conn_poll(e0, LFIPC_NOWAIT); /* repairs */
			rc = lfipc_conn_send(e1, &v, sizeof(v), LFIPC_NOWAIT);
		}
		cr_assert_eq(rc, 0, "send %d (message %d)", rc, (int)v);
		rc = lfipc_conn_recv(e0, &w, sizeof(w), &len, LFIPC_NOWAIT);
		if (rc == -EPROTO && eproto++ == 0)
			rc = lfipc_conn_recv(e0, &w, sizeof(w), &len,
					     LFIPC_NOWAIT);
		cr_assert_eq(rc, 0, "recv %d (message %d)", rc, (int)v);
		cr_assert_eq(w, v);
	}
}

/* ---- threads (what ThreadSanitizer checks) ---------------------------- */

static void *thread_echo(void *arg)
{
	lfipc_conn *c = arg;
	uint8_t buf[5000];
	size_t len;

	while (lfipc_conn_recv(c, buf, sizeof(buf), &len, LFIPC_FOREVER) == 0)
		if (lfipc_conn_send(c, buf, len, LFIPC_FOREVER) != 0)
			break;
	lfipc_conn_close(c);
	return NULL;
}

Test(pipe, ping_pong_between_threads_keeps_every_byte, .init = setup_duplex,
     .fini = teardown, .timeout = 900)
{
	pthread_t t;
	uint8_t out[5000], in[5000];
	uint64_t s = 5;
	size_t len;
	int n = 2000 * th_scale();

	/* A small ring makes the larger messages stream. */
	lfipc_conn_close(e0);
	lfipc_conn_close(e1);
	cr_assert_eq(lfipc_pipe_create(r, "small", 256, true, &e0, &e1), 0);
	cr_assert_eq(pthread_create(&t, NULL, thread_echo, e1), 0);
	e1 = NULL;
	for (int i = 0; i < n; i++) {
		size_t m = th_rand(&s) % sizeof(out);

		fill(out, m, (uint64_t)i);
		cr_assert_eq(lfipc_conn_send(e0, out, m, LFIPC_FOREVER), 0);
		cr_assert_eq(
		    lfipc_conn_recv(e0, in, sizeof(in), &len, LFIPC_FOREVER),
		    0);
		cr_assert_eq(len, m);
		cr_assert_eq(memcmp(in, out, m), 0);
	}
	lfipc_conn_close(e0);
	e0 = NULL;
	pthread_join(t, NULL);
}

static int child_take_over_and_wait(void *arg)
{
	int v = 9;

	(void)arg;
	if (lfipc_conn_send(e1, &v, sizeof(v), LFIPC_FOREVER) != 0)
		return 1;
	usleep(300000);
	return 0;
}

Test(pipe, a_fork_child_using_an_inherited_end_takes_it_over,
     .init = setup_duplex, .fini = teardown, .timeout = 30)
{
	size_t len;
	int v = 0;
	pid_t pid;

	/* The parent uses end 1 first, then a child uses its copy. */
	cr_assert_eq(lfipc_conn_send(e1, &v, sizeof(v), LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_conn_recv(e0, &v, sizeof(v), &len, LFIPC_NOWAIT), 0);
	pid = th_fork(child_take_over_and_wait, NULL);
	cr_assert_gt(pid, 0);
	cr_assert_eq(lfipc_conn_recv(e0, &v, sizeof(v), &len, 5000000000LL), 0);
	cr_assert_eq(v, 9);
	cr_assert_eq(lfipc_conn_send(e1, &v, sizeof(v), LFIPC_NOWAIT), -EBUSY,
		     "the parent no longer holds end 1");
	lfipc_conn_close(e1); /* frees the handle only */
	e1 = NULL;
	cr_assert_eq(lfipc_conn_recv(e0, &v, sizeof(v), &len, 50000000),
		     -ETIMEDOUT, "end 1 is still open in the child");
	cr_assert_eq(th_reap(pid, REAP_MS), 0);
	cr_assert_eq(lfipc_conn_recv(e0, &v, sizeof(v), &len, 5000000000LL),
		     -EPIPE, "the child exited: end-of-file");
}

static int child_poll_closed_end(void *arg)
{
	int *go = arg;
	size_t len;
	char c;
	int v, rc;

	if (read(go[0], &c, 1) != 1)
		return 2;
	rc = lfipc_conn_poll(e0, LFIPC_NOWAIT);
	if (rc != 1)
		return 10 + (rc < 0 ? -rc : rc) % 100;
	rc = lfipc_conn_recv(e0, &v, sizeof(v), &len, LFIPC_NOWAIT);
	return rc == -EPIPE ? 0 : 120;
}

/*
 * tests/hostile/findings/pipe_poll_epipe.c: a fork child polling through
 * an inherited handle after the parent closed that end got -EPIPE, which
 * poll's header did not list. Poll says readable (1): the next receive
 * does not wait, it returns -EPIPE (pipe.h).
 */
Test(pipe, poll_on_an_end_its_holder_closed_is_readable_then_recv_is_epipe,
     .init = setup_duplex, .fini = teardown, .timeout = 30)
{
	int go[2];
	pid_t pid;

	cr_assert_eq(pipe(go), 0);
	cr_assert_eq(lfipc_conn_poll(e0, LFIPC_NOWAIT), 0, "claims end 0");
	pid = th_fork(child_poll_closed_end, go);
	cr_assert_gt(pid, 0);
	lfipc_conn_close(e0); /* the parent holds end 0: closes it */
	e0 = NULL;
	cr_assert_eq(write(go[1], "x", 1), 1);
	cr_assert_eq(th_reap(pid, REAP_MS), 0);
	close(go[0]);
	close(go[1]);
}

/*
 * A header whose frame would fit the ring but is not all there (torn by
 * two senders on one end, or forged) announcing more than the reader's
 * buffer holds: -EMSGSIZE consumes nothing, so a reader with a short
 * buffer met the same header on every call, for good (the misuse test
 * above spun on it for 45 minutes). The reader resynchronises instead,
 * and the next message gets through.
 */
Test(pipe, a_torn_header_longer_than_the_buffer_is_resynchronised,
     .init = setup_duplex, .fini = teardown)
{
	uint8_t *base = map_region();
	struct pipe_shm *p = find_pipe(base, REGION_SIZE);
	uint8_t buf[64];
	uint64_t at, hdr;
	size_t len = 0;
	int v = 5, w = 0;

	cr_assert_not_null(p);
	at = atomic_load(&p->dir[0].tail);
	cr_assert_eq(lfipc_conn_send(e1, &v, sizeof(v), LFIPC_NOWAIT), 0);
	/* 16 bytes published; the header claims a 208-byte frame */
	hdr = (uint64_t)200 | (FRAME_TAG << 48);
	memcpy(hdr_at(p, at), &hdr, sizeof(hdr));
	cr_assert_eq(lfipc_conn_recv(e0, buf, sizeof(buf), &len, LFIPC_NOWAIT),
		     -EPROTO);
	v = 6;
	cr_assert_eq(lfipc_conn_send(e1, &v, sizeof(v), LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_conn_recv(e0, &w, sizeof(w), &len, LFIPC_NOWAIT), 0);
	cr_assert_eq(len, sizeof(w));
	cr_assert_eq(w, 6);
	munmap(base, REGION_SIZE);
}

/*
 * A writer abandoned a frame larger than the ring at its timeout (cut)
 * and published its next, small, frame there, before the reader looked:
 * the reader's first look at tail shows the abandoned frame's bytes and
 * the next frame's together. It must stop at the cut, drop the abandoned
 * part and return the small message; it copied the small frame into the
 * abandoned one instead (a hostile review's stress test, one thread per
 * end: a message returned with another's bytes in it, then -EPROTO). The
 * state is what such a writer leaves, written here directly.
 */
Test(pipe, a_reader_behind_a_cut_stops_at_it_and_gets_the_next_message,
     .init = setup_duplex, .fini = teardown, .timeout = 30)
{
	uint8_t *base = map_region();
	struct pipe_shm *p = find_pipe(base, REGION_SIZE);
	size_t big = 2 * RING, len = 0;
	uint8_t *buf = malloc(big);
	uint64_t at, hdr;
	int v = 7, w = 0;

	cr_assert_not_null(p);
	cr_assert_not_null(buf);
	at = atomic_load(&p->dir[0].tail);
	/* the abandoned frame: its header and 56 bytes, then the cut */
	hdr = (uint64_t)big | (FRAME_TAG << 48);
	memcpy(hdr_at(p, at), &hdr, sizeof(hdr));
	memset(hdr_at(p, at + 8), 0xee, 56);
	atomic_store(&p->dir[0].cut, at + 64);
	/* the next frame, at the cut: 4 bytes */
	hdr = (uint64_t)sizeof(v) | (FRAME_TAG << 48);
	memcpy(hdr_at(p, at + 64), &hdr, sizeof(hdr));
	memcpy(hdr_at(p, at + 72), &v, sizeof(v));
	atomic_store(&p->dir[0].tail, at + 80);
	cr_assert_eq(lfipc_conn_recv(e0, buf, big, &len, 100 * 1000000LL), 0);
	cr_assert_eq(len, sizeof(v));
	memcpy(&w, buf, sizeof(w));
	cr_assert_eq(w, 7);
	cr_assert_eq(lfipc_conn_recv(e0, buf, big, &len, LFIPC_NOWAIT),
		     -EAGAIN);
	free(buf);
	munmap(base, REGION_SIZE);
}

/*
 * A forged frame length (a frame larger than the ring, that never comes)
 * held a receiver whose buffer was large enough for as long as the sender
 * lived, whatever its timeout. Now the receive gives the frame up at its
 * timeout; the calls after it drop the rest of the forged frame within
 * their own timeouts.
 */
Test(pipe, a_forged_frame_length_holds_a_receiver_no_longer_than_its_timeout,
     .init = setup_duplex, .fini = teardown, .timeout = 60)
{
	uint8_t *base = map_region();
	struct pipe_shm *p = find_pipe(base, REGION_SIZE);
	size_t big = 4 * RING, len;
	uint8_t *buf = malloc(big);
	uint64_t at, hdr;
	int64_t t0, dt;
	int v = 5;

	cr_assert_not_null(p);
	cr_assert_not_null(buf);
	at = atomic_load(&p->dir[0].tail);
	cr_assert_eq(lfipc_conn_send(e1, &v, sizeof(v), LFIPC_NOWAIT), 0);
	hdr = (uint64_t)big | (FRAME_TAG << 48);
	memcpy(hdr_at(p, at), &hdr, sizeof(hdr));
	t0 = th_now_ns();
	cr_assert_eq(lfipc_conn_recv(e0, buf, big, &len, 100 * 1000000LL),
		     -ETIMEDOUT);
	dt = th_now_ns() - t0;
	cr_assert_lt(dt, 2000 * 1000000LL, "took %lld ms",
		     (long long)(dt / 1000000));
	cr_assert_eq(lfipc_conn_recv(e0, buf, big, &len, LFIPC_NOWAIT),
		     -EAGAIN);
	cr_assert_eq(lfipc_conn_poll(e0, 10 * 1000000LL), 0);
	free(buf);
	munmap(base, REGION_SIZE);
}

/* ---- owner words under a peer that rewrites them ---------------------- */

/* The library's address of x, a place in our second mapping base. */
static void *lib_addr(uint8_t *base, void *x)
{
	return r->base + ((uint8_t *)x - base);
}

#define PMS ((int64_t)1000000)
/* The CAS bound (1 s, internal/wait.h) plus a scheduling allowance. */
#define PIPE_BOUND_MAX_NS (4000 * PMS)

/* An end's owner word free, and the peer moving it between free values
 * (0, CLAIMED) before every CAS of the claim (lib/pipe.c, claim_end). On
 * main the open never returned. */
Test(pipe, open_returns_eproto_while_a_peer_rewrites_a_free_end,
     .init = setup_duplex, .fini = teardown, .timeout = 30)
{
	uint8_t *base = map_region();
	struct pipe_shm *p = find_pipe(base, REGION_SIZE);
	lfipc_conn *c = NULL;
	int64_t took;
	int rc;

	cr_assert_not_null(p);
	lfipc_conn_close(e0); /* end 0 closed: then made free again */
	e0 = NULL;
	atomic_store(&p->ends.owner[0], 0);
	cf_start(lib_addr(base, &p->ends.owner[0]), &p->ends.owner[0],
		 OWN_CLAIMED);
	CF_TIMED(took, rc = lfipc_pipe_open(r, "p", 0, &c));
	cr_assert_eq(rc, -EPROTO, "open: %d after %lld ms", rc,
		     (long long)(took / PMS));
	cr_assert_lt(took, PIPE_BOUND_MAX_NS, "open took %lld ms",
		     (long long)(took / PMS));
	atomic_store(&p->ends.owner[0], 0);
	cr_assert_eq(lfipc_pipe_open(r, "p", 0, &e0), 0);
	cr_assert_eq(lfipc_conn_send(e1, "x", 1, LFIPC_NOWAIT), 0);
	munmap(base, REGION_SIZE);
}

/* The peer moves the CLAIMED bit of the end the caller holds before every
 * CAS of its close (lib/pipe.c, lfipc_conn_close). On main the close never
 * returned; now it gives up after the bound and the end stays ours. */
Test(pipe, close_returns_while_a_peer_rewrites_its_end,
     .init = setup_duplex, .fini = teardown, .timeout = 30)
{
	uint8_t *base = map_region();
	struct pipe_shm *p = find_pipe(base, REGION_SIZE);
	lfipc_conn *c;
	uint32_t mine;
	int64_t took;

	cr_assert_not_null(p);
	cr_assert_eq(lfipc_conn_send(e1, "a", 1, LFIPC_NOWAIT), 0); /* claim */
	mine = atomic_load(&p->ends.owner[1]);
	cr_assert_eq(mine & OWN_CLAIMED, OWN_CLAIMED);
	cf_start(lib_addr(base, &p->ends.owner[1]), &p->ends.owner[1],
		 OWN_CLAIMED);
	CF_TIMED(took, lfipc_conn_close(e1); e1 = NULL);
	cr_assert_lt(took, PIPE_BOUND_MAX_NS, "close took %lld ms",
		     (long long)(took / PMS));
	/* The end is still this process's: nobody else may open it. */
	cr_assert_eq(atomic_load(&p->ends.owner[1]) & ~OWN_CLAIMED,
		     mine & ~OWN_CLAIMED);
	cr_assert_eq(lfipc_pipe_open(r, "p", 1, &c), -EBUSY);
	munmap(base, REGION_SIZE);
}

static uint8_t *own_base;
static struct pipe_shm *own_p;

/* A fork child sends through its inherited end 1 while the peer moves
 * the CLAIMED bit of the parent's word before every CAS of the take-over
 * (lib/pipe_io.c, own): -ETIMEDOUT by the send's timeout; then, the peer
 * gone, the send takes the end over. */
static int child_send_under_rewrites(void *arg)
{
	_Atomic uint32_t *w = &own_p->ends.owner[1];
	int64_t t0, took;
	int rc;

	(void)arg;
	cf_start(lib_addr(own_base, w), w, OWN_CLAIMED);
	t0 = th_now_ns();
	rc = lfipc_conn_send(e1, "x", 1, 200 * PMS);
	took = th_now_ns() - t0;
	if (cf_stop() < 1000)
		return 2;
	if (rc != -ETIMEDOUT)
		return 10 + (rc < 0 ? -rc : rc) % 100;
	if (took < 200 * PMS || took > 200 * PMS + PIPE_BOUND_MAX_NS)
		return 3;
	return lfipc_conn_send(e1, "y", 1, LFIPC_NOWAIT) == 0 ? 0 : 4;
}

Test(pipe, a_take_over_honours_the_timeout_while_a_peer_rewrites_the_end,
     .init = setup_duplex, .fini = teardown, .timeout = 60)
{
	size_t len;
	pid_t pid;
	char c;

	own_base = map_region();
	own_p = find_pipe(own_base, REGION_SIZE);
	cr_assert_not_null(own_p);
	cr_assert_eq(lfipc_conn_send(e1, "a", 1, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_conn_recv(e0, &c, 1, &len, LFIPC_NOWAIT), 0);
	pid = th_fork(child_send_under_rewrites, NULL);
	cr_assert_gt(pid, 0);
	cr_assert_eq(th_reap(pid, REAP_MS), 0);
	cr_assert_eq(lfipc_conn_recv(e0, &c, 1, &len, 5000 * PMS), 0);
	cr_assert_eq(c, 'y');
	munmap(own_base, REGION_SIZE);
}
