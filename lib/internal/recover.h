/* SPDX-License-Identifier: MIT */
/*
 * internal/recover.h - per-component recovery of dead participants' work.
 *
 * Each function examines the object at off (size bytes, already checked to
 * lie inside the heap) and repairs whatever dead participants left in
 * flight there; it returns how many items it recovered (>= 0) or a negative
 * errno (-EPROTO for contents that make no sense). It must be safe to run
 * concurrently with every operation on the object and with other
 * recoverers.
 */
#ifndef LFIPC_INTERNAL_RECOVER_H
#define LFIPC_INTERNAL_RECOVER_H

#include "internal/region.h"

int lfipc__queue_recover(lfipc_region *r, uint64_t off, uint64_t size);
int lfipc__lock_recover(lfipc_region *r, uint64_t off, uint64_t size);
int lfipc__sem_recover(lfipc_region *r, uint64_t off, uint64_t size);
int lfipc__cond_recover(lfipc_region *r, uint64_t off, uint64_t size);
int lfipc__barrier_recover(lfipc_region *r, uint64_t off, uint64_t size);
int lfipc__array_recover(lfipc_region *r, uint64_t off, uint64_t size);
int lfipc__pipe_recover(lfipc_region *r, uint64_t off, uint64_t size);

/* Bit e set: end e of the pipe at off is finished for good (its holder
 * died, or closed it and no longer touches the pipe); -EPROTO. Used by the
 * listener to know when a connection's Pipe may be removed. */
int lfipc__pipe_ends_done(lfipc_region *r, uint64_t off, uint64_t size);

#endif /* LFIPC_INTERNAL_RECOVER_H */
