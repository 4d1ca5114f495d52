/* SPDX-License-Identifier: MIT */
/*
 * eventfd, one per direction: a doorbell, not a queue. Its 8-byte count
 * carries the sequence number (plus one: a count of 0 cannot be written),
 * so it is in the ping-pong table only.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../bench.h"

static void *ev_open(size_t msz)
{
	int *fd = malloc(2 * sizeof(int));

	(void)msz;
	if (!fd)
		return NULL;
	fd[0] = eventfd(0, 0);
	fd[1] = eventfd(0, 0);
	if (fd[0] < 0 || fd[1] < 0) {
		if (fd[0] >= 0)
			close(fd[0]);
		if (fd[1] >= 0)
			close(fd[1]);
		free(fd);
		return NULL;
	}
	return fd;
}

static int ev_send(void *ch, int d, const void *m, size_t n)
{
	int *fd = ch;
	uint64_t v;

	(void)n;
	memcpy(&v, m, 8);
	v++;
	return write(fd[d], &v, 8) == 8 ? 0 : -1;
}

static int ev_recv(void *ch, int d, void *m, size_t n)
{
	int *fd = ch;
	uint64_t v;

	if (read(fd[d], &v, 8) != 8)
		return -1;
	memset(m, 0, n);
	fill(m, n, v - 1);
	return 0;
}

static void ev_close(void *ch)
{
	int *fd = ch;

	close(fd[0]);
	close(fd[1]);
	free(fd);
}

const struct peer peer_eventfd = {
    .name = "eventfd",
    .wait = "kernel",
    .flags = PF_CHAN | PF_PINGPONG | PF_COUNT,
    .open = ev_open,
    .send = ev_send,
    .recv = ev_recv,
    .close = ev_close,
};
