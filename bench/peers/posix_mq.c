/* SPDX-License-Identifier: MIT */
/*
 * POSIX message queues, one per direction, 10 messages of the message size
 * (10: the default /proc/sys/fs/mqueue/msg_max for unprivileged users).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../bench.h"

struct pmq {
	mqd_t q[2];
};

static void *mq_open_(size_t msz)
{
	struct mq_attr a = {.mq_maxmsg = 10, .mq_msgsize = (long)msz};
	struct pmq *c = malloc(sizeof(*c));
	char nm[64];

	if (!c)
		return NULL;
	for (int i = 0; i < 2; i++) {
		snprintf(nm, sizeof(nm), "/lfipc-bench-%d-%d", (int)getpid(),
			 i);
		c->q[i] = mq_open(nm, O_RDWR | O_CREAT | O_EXCL, 0600, &a);
		if (c->q[i] == (mqd_t)-1) {
			if (i)
				mq_close(c->q[0]);
			free(c);
			return NULL;
		}
		mq_unlink(nm);
	}
	return c;
}

static int mq_send_(void *ch, int d, const void *m, size_t n)
{
	struct pmq *c = ch;
	int rc;

	while ((rc = mq_send(c->q[d], m, n, 0)) < 0 && errno == EINTR &&
	       !aborted())
		;
	return rc;
}

static int mq_recv_(void *ch, int d, void *m, size_t n)
{
	struct pmq *c = ch;
	char b[MAXMSG + 64];
	ssize_t k;

	while ((k = mq_receive(c->q[d], b, sizeof(b), NULL)) < 0 &&
	       errno == EINTR && !aborted())
		;
	if (k != (ssize_t)n)
		return -1;
	memcpy(m, b, n);
	return 0;
}

static void mq_close_(void *ch)
{
	struct pmq *c = ch;

	mq_close(c->q[0]);
	mq_close(c->q[1]);
	free(c);
}

const struct peer peer_posix_mq = {
    .name = "POSIX mq",
    .wait = "kernel",
    .flags = PF_CHAN | PF_MPMC,
    .open = mq_open_,
    .send = mq_send_,
    .recv = mq_recv_,
    .close = mq_close_,
};
