/* SPDX-License-Identifier: MIT */
/* internal/poll.h - fd pollers of wait queues (the doorbells). */
#ifndef LFIPC_INTERNAL_POLL_H
#define LFIPC_INTERNAL_POLL_H

#include "internal/region.h"

/* Ring every armed poller of wq (called by lfipc__wake when wq's waiters
 * word counts armed pollers). */
void lfipc__poll_ring(lfipc_region *r, struct lfipc_wq *wq);

#endif /* LFIPC_INTERNAL_POLL_H */
