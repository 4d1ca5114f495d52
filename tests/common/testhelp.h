/* SPDX-License-Identifier: MIT */
/* testhelp.h - helpers shared by lfipc's tests. */
#ifndef LFIPC_TESTHELP_H
#define LFIPC_TESTHELP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A region name unique to this process and call: "/lfipc-t-<pid>-<n>-tag". */
void th_name(char *buf, size_t n, const char *tag);

/* Stress scale from LFIPC_STRESS_SCALE (>= 1; 1 in make check). */
int th_scale(void);

/* Fork a child that runs fn(arg) and _exit()s with its return value. */
pid_t th_fork(int (*fn)(void *arg), void *arg);

/*
 * Wait for pid until timeout_ms; past it, SIGKILL and reap it.
 * Return: its exit status (0..255) when it exited, 128+sig when a signal
 * ended it, -1 when the deadline passed (it was killed), -2 on error.
 */
int th_reap(pid_t pid, int timeout_ms);

/* Reap n children; return how many did not exit with status 0. */
int th_reap_all(const pid_t *pids, int n, int timeout_ms);

/* Monotonic nanoseconds. */
int64_t th_now_ns(void);

/* Cheap per-thread PRNG (xorshift64*). */
uint64_t th_rand(uint64_t *state);

/* FNV-1a checksum of a buffer. */
uint64_t th_sum(const void *p, size_t n);

#endif
