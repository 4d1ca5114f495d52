/* SPDX-License-Identifier: MIT */
/*
 * lfipc/common.h - definitions shared by every lfipc header.
 *
 * Conventions that hold for the whole library:
 *  - Functions that can fail return 0 (or a non-negative count) on success
 *    and a negative errno value on failure. errno is never the channel.
 *  - Blocking calls take a timeout_ns: LFIPC_NOWAIT (0) does not block and
 *    returns -EAGAIN where it would; LFIPC_FOREVER (exactly -1) waits until
 *    done; any other negative value means "already expired" (a computed
 *    "deadline - now" that went negative): the call makes its one attempt
 *    and returns -ETIMEDOUT where it would block; a positive value is a
 *    relative duration in nanoseconds on CLOCK_MONOTONIC (immune to
 *    wall-clock changes), and expiry returns -ETIMEDOUT. Waits restart
 *    internally after signals (EINTR is never returned) and keep the
 *    original deadline.
 *  - The library never prints, never aborts on bad input and never exits.
 *  - Shared memory is untrusted: a region whose contents make no sense yields
 *    -EPROTO, never a crash or a hang.
 */
#ifndef LFIPC_COMMON_H
#define LFIPC_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#if defined(LFIPC_BUILDING)
#define LFIPC_API __attribute__((visibility("default")))
#else
#define LFIPC_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** Do not block: return -EAGAIN where the call would have to wait. */
#define LFIPC_NOWAIT ((int64_t)0)
/** Block until the call can complete (exactly -1; any other negative
 * timeout has already expired: -ETIMEDOUT after one attempt). */
#define LFIPC_FOREVER ((int64_t)-1)

/** Longest object name, in bytes, without the terminating NUL. */
#define LFIPC_NAME_MAX 63

/**
 * Describe an error code returned by lfipc.
 *
 * err is a negative errno value as returned by lfipc functions (a positive
 * value is accepted too). Codes that lfipc returns get a message that is
 * true of every lfipc call that returns them (-EPROTO, -EOWNERDEAD, -EPIPE,
 * ...); what a code means for one particular call is in that call's
 * comment. Other codes get the C library's description.
 *
 * Return: a static string, never NULL. Thread-safe.
 */
LFIPC_API const char *lfipc_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* LFIPC_COMMON_H */
