/* SPDX-License-Identifier: MIT */
/*
 * internal/guard.h - survive the truncation of a named region's file.
 *
 * Any process with write access to a named region's file can ftruncate()
 * it, and then every access to a mapped page past the new end raises
 * SIGBUS, which kills the process. A named POSIX shared-memory file cannot
 * be sealed against that (tmpfs refuses F_ADD_SEALS on files not created
 * by memfd_create), so for every mapping that is not sealed with
 * F_SEAL_SHRINK the library installs a SIGBUS handler that, for a fault
 * inside a registered mapping, grows the file back to the mapping's size
 * and lets the access repeat: the lost pages read as zeros (which the
 * library treats like any other corruption), and nobody dies. Faults
 * elsewhere go to the handler that was installed before (or kill the
 * process, as they would have without lfipc). See README "Security notes".
 */
#ifndef LFIPC_INTERNAL_GUARD_H
#define LFIPC_INTERNAL_GUARD_H

#include <stdbool.h>
#include <stdint.h>

/* Does fd's file refuse to shrink (memfd with F_SEAL_SHRINK)? */
bool lfipc__guard_sealed(int fd);

/*
 * Watch the mapping [base, base + size) of fd (which stays open until
 * lfipc__guard_remove): install the handler on first use. Returns false
 * when all guard slots are taken (the mapping then is not protected).
 */
bool lfipc__guard_add(void *base, uint64_t size, int fd);

/* Stop watching base; returns once no handler uses its slot any more.
 * Call it before munmap() and before closing the fd. No-op if not added. */
void lfipc__guard_remove(void *base);

#endif /* LFIPC_INTERNAL_GUARD_H */
