/* SPDX-License-Identifier: MIT */
/*
 * The floors of a hand-off between two CPUs, run by the same ping-pong as
 * every system (same processes, pinning, message size, timing and loop):
 *
 * - bare cache line: per direction one slot, a sequence word followed by
 *   the message, in MAP_SHARED memory. The sender copies the message in
 *   and then stores the next sequence number (release); the receiver polls
 *   the word until it changes (acquire) and copies the message out. The
 *   receiver never writes the slot, so a one-way trip is the least a
 *   busy hand-off can cost: the sender's store invalidates the line in the
 *   receiver's cache, the receiver's load fetches it back (for messages
 *   of more than 56 bytes, also the message's further lines).
 * - bare futex: the same slot, but the receiver sleeps in FUTEX_WAIT on
 *   the sequence word and the sender always calls FUTEX_WAKE: the least a
 *   sleeping hand-off costs (two system calls and a wake-up).
 *
 * Shared words: seq (per direction) counts the messages sent in that
 * direction; only its sender writes it. Each process counts what it has
 * seen in process-private memory (the struct is copied by fork()).
 */
#include "config.h"

#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>

#include "../bench.h"

struct slot {
	_Alignas(64) atomic_uint seq;
	char data[MAXMSG];
};

struct fs {
	struct slot *s; /* [2], shared */
	unsigned sent[2], seen[2];
	bool sleep;
};

static void *fs_open(size_t msz, bool sleep)
{
	struct fs *c = calloc(1, sizeof(*c));

	(void)msz;
	if (!c)
		return NULL;
	c->s = shmem(2 * sizeof(struct slot));
	c->sleep = sleep;
	return c;
}

static void *fs_open_busy(size_t msz)
{
	return fs_open(msz, false);
}

static void *fs_open_futex(size_t msz)
{
	return fs_open(msz, true);
}

static int fs_send(void *ch, int d, const void *m, size_t n)
{
	struct fs *c = ch;
	struct slot *s = &c->s[d];

	memcpy(s->data, m, n);
	/* F1: release: publishes data; pairs with F2 in fs_recv(). */
	atomic_store_explicit(&s->seq, ++c->sent[d], memory_order_release);
	if (c->sleep)
		futex_op(&s->seq, FUTEX_WAKE, 1, NULL);
	return 0;
}

static int fs_recv(void *ch, int d, void *m, size_t n)
{
	struct fs *c = ch;
	struct slot *s = &c->s[d];
	unsigned want = c->seen[d] + 1;

	/* F2: acquire; pairs with F1 in fs_send(). */
	while (atomic_load_explicit(&s->seq, memory_order_acquire) != want) {
		if (c->sleep)
			futex_op(&s->seq, FUTEX_WAIT, want - 1, NULL);
		else if (bench_spin())
			return -1;
	}
	c->seen[d] = want;
	memcpy(m, s->data, n);
	return 0;
}

static void fs_close(void *ch)
{
	struct fs *c = ch;

	shmem_free(c->s, 2 * sizeof(struct slot));
	free(c);
}

const struct peer peer_floor_cacheline = {
    .name = "bare cache line (floor)",
    .wait = "busy",
    .flags = PF_CHAN | PF_PINGPONG | PF_FLOOR,
    .open = fs_open_busy,
    .send = fs_send,
    .recv = fs_recv,
    .close = fs_close,
};

const struct peer peer_floor_futex = {
    .name = "bare futex (floor)",
    .wait = "futex",
    .flags = PF_CHAN | PF_PINGPONG | PF_FLOOR,
    .open = fs_open_futex,
    .send = fs_send,
    .recv = fs_recv,
    .close = fs_close,
};
