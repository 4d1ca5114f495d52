/* SPDX-License-Identifier: MIT */
/* poll.c - fd pollers of wait queues; see internal/poll.h. */
#include "config.h"

#include "internal/poll.h"

void lfipc__poll_ring(lfipc_region *r, struct lfipc_wq *wq)
{
	(void)r;
	(void)wq;
}
