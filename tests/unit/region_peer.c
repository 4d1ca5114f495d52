/* SPDX-License-Identifier: MIT */
/*
 * region_peer - an unrelated process for the region tests (started with
 * fork+exec, so it shares nothing with the test but what it opens).
 *
 *   region_peer name NAME OBJ SEED REPLY RSEED
 *   region_peer fd SOCKFD OBJ SEED REPLY RSEED
 *	Open the region by name, or from an fd received over the Unix socket
 *	SOCKFD (SCM_RIGHTS); open object OBJ, check that its bytes are the
 *	pattern of SEED; create object REPLY of the same size filled with the
 *	pattern of RSEED. Exit 0 on success, 10+n on failure n.
 *   region_peer register NAME
 *	Open the region by name, register, write "<pid> <token>\n" to stdout,
 *	then wait until stdin reaches EOF; exit 0.
 *   region_peer holdlock NAME
 *	Open the region by name, take the region lock, write "locked\n" to
 *	stdout, then hold it until stdin reaches EOF (the test stops or
 *	kills it meanwhile: a peer stopped inside a create or remove).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lfipc/region.h>

#include "common/testhelp.h"
#include "internal/proc.h"
#include "internal/region.h"

#define PEER_TYPE LFIPC_OBJ_EVENT

int main(int argc, char **argv)
{
	lfipc_region *r;
	uint64_t off, size, roff;
	int rc;

	if (argc == 3 && strcmp(argv[1], "register") == 0) {
		uint32_t tok;
		char c;

		if (lfipc_region_open(argv[2], &r) < 0)
			return 10;
		if (lfipc__self(r, &tok) < 0)
			return 11;
		printf("%d %u\n", (int)getpid(), tok);
		fflush(stdout);
		while (read(0, &c, 1) > 0)
			;
		lfipc_region_close(r);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "holdlock") == 0) {
		char c;

		if (lfipc_region_open(argv[2], &r) < 0)
			return 10;
		if (lfipc__region_lock(r) < 0)
			return 11;
		printf("locked\n");
		fflush(stdout);
		while (read(0, &c, 1) > 0)
			;
		lfipc__region_unlock(r);
		lfipc_region_close(r);
		return 0;
	}
	if (argc != 7)
		return 2;
	if (strcmp(argv[1], "name") == 0) {
		rc = lfipc_region_open(argv[2], &r);
	} else if (strcmp(argv[1], "fd") == 0) {
		int fd = th_recv_fd(atoi(argv[2]));

		if (fd < 0)
			return 12;
		rc = lfipc_region_open_fd(fd, &r);
		close(fd);
	} else {
		return 2;
	}
	if (rc < 0)
		return 13;
	if (lfipc__obj_open(r, argv[3], PEER_TYPE, &off, &size) < 0)
		return 14;
	if (th_check(lfipc__at(r, off), size, strtoull(argv[4], NULL, 0)) != -1)
		return 15;
	if (lfipc__obj_create(r, argv[5], PEER_TYPE, size, 0, NULL, NULL,
			      &roff) < 0)
		return 16;
	th_fill(lfipc__at(r, roff), size, strtoull(argv[6], NULL, 0));
	lfipc_region_close(r);
	return 0;
}
