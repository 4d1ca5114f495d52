/* SPDX-License-Identifier: MIT */
/* pipe(2): one pipe per direction; whole messages by write/read loops. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "../bench.h"

struct kp {
	int fd[2][2];
};

static void *kp_open(size_t msz)
{
	struct kp *c = malloc(sizeof(*c));

	(void)msz;
	if (!c)
		return NULL;
	if (pipe(c->fd[0])) {
		free(c);
		return NULL;
	}
	if (pipe(c->fd[1])) {
		close(c->fd[0][0]);
		close(c->fd[0][1]);
		free(c);
		return NULL;
	}
	return c;
}

static int rw_full(int fd, void *m, size_t n, bool wr)
{
	size_t done = 0;

	while (done < n) {
		ssize_t k = wr ? write(fd, (char *)m + done, n - done)
			       : read(fd, (char *)m + done, n - done);
		if (k <= 0) {
			if (k < 0 && errno == EINTR && !aborted())
				continue;
			return -1;
		}
		done += (size_t)k;
	}
	return 0;
}

static int kp_send(void *ch, int d, const void *m, size_t n)
{
	struct kp *c = ch;

	return rw_full(c->fd[d][1], (void *)(uintptr_t)m, n, true);
}

static int kp_recv(void *ch, int d, void *m, size_t n)
{
	struct kp *c = ch;

	return rw_full(c->fd[d][0], m, n, false);
}

static void kp_close(void *ch)
{
	struct kp *c = ch;

	for (int i = 0; i < 2; i++)
		close(c->fd[i][0]), close(c->fd[i][1]);
	free(c);
}

const struct peer peer_pipe = {
    .name = "pipe(2)",
    .wait = "kernel",
    .flags = PF_CHAN,
    .open = kp_open,
    .send = kp_send,
    .recv = kp_recv,
    .close = kp_close,
};
