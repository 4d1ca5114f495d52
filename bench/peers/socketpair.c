/* SPDX-License-Identifier: MIT */
/* socketpair(AF_UNIX, SOCK_SEQPACKET): one socket per side, full duplex. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../bench.h"

static void *sp_open(size_t msz)
{
	int *sv = malloc(2 * sizeof(int));

	(void)msz;
	if (sv && socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv)) {
		free(sv);
		sv = NULL;
	}
	return sv;
}

static int sp_send(void *ch, int d, const void *m, size_t n)
{
	int *sv = ch;
	ssize_t k;

	while ((k = send(sv[d], m, n, 0)) < 0 && errno == EINTR && !aborted())
		;
	return k == (ssize_t)n ? 0 : -1;
}

static int sp_recv(void *ch, int d, void *m, size_t n)
{
	int *sv = ch;
	ssize_t k;

	while ((k = recv(sv[1 - d], m, n, 0)) < 0 && errno == EINTR &&
	       !aborted())
		;
	return k == (ssize_t)n ? 0 : -1;
}

static void sp_close(void *ch)
{
	int *sv = ch;

	close(sv[0]);
	close(sv[1]);
	free(sv);
}

const struct peer peer_socketpair = {
    .name = "socketpair seqpacket",
    .wait = "kernel",
    .flags = PF_CHAN,
    .open = sp_open,
    .send = sp_send,
    .recv = sp_recv,
    .close = sp_close,
};
