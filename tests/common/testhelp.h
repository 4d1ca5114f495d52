/* SPDX-License-Identifier: MIT */
/* testhelp.h - helpers shared by lfipc's tests. */
#ifndef LFIPC_TESTHELP_H
#define LFIPC_TESTHELP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A region name unique to this process and call: "/lfipc-t-<pid>-<n>-tag",
 * or "/lfipc-t-<run>-<pid>-<n>-tag" when LFIPC_TEST_RUN=<run> is set. */
void th_name(char *buf, size_t n, const char *tag);

/* Stress scale from LFIPC_STRESS_SCALE (>= 1; 1 in make check). */
int th_scale(void);

/* Fork a child that runs fn(arg) and _exit()s with its return value. */
pid_t th_fork(int (*fn)(void *arg), void *arg);

/*
 * Wait for pid until timeout_ms; past it, say on stderr where the child is
 * (its state, run and runqueue times, wchan, system call, kernel stack:
 * a hang and a starved child look different), SIGKILL and reap it.
 * Return: its exit status (0..255) when it exited, 128+sig when a signal
 * ended it, -1 when the deadline passed (it was killed), -2 on error.
 */
int th_reap(pid_t pid, int timeout_ms);

/*
 * th_reap for a bound on what the child does, not on how much CPU the
 * machine gives it: the time the child's main thread spent runnable but
 * waiting for a CPU (its schedstat run delay, a throttled cgroup's time
 * included) does not count against timeout_ms, up to 20 x timeout_ms in
 * all. A child that sleeps or spins past its bound still fails at
 * timeout_ms (on a loaded machine a spinner may get up to the 20 x);
 * one that is starved on a loaded CI machine gets the time it was
 * denied. Without /proc/<pid>/schedstat it is th_reap.
 */
int th_reap_run(pid_t pid, int timeout_ms);

/*
 * Where process pid is, in one line for a failure message, so that a
 * failure seen once in CI tells a hang from a crawl: its state (R
 * runnable, S sleeping, D, T stopped), the time it ran and the time it
 * waited for a CPU while runnable (schedstat: a starved process has
 * waited long, a spinning one has run long, a sleeper has done neither),
 * the kernel function it sleeps in and its system call (number and
 * arguments). Fields that cannot be read show as "?" or -1.
 */
void th_proc_state(pid_t pid, char *buf, size_t n);

/* Reap n children; return how many did not exit with status 0. */
int th_reap_all(const pid_t *pids, int n, int timeout_ms);

/* Monotonic nanoseconds. */
int64_t th_now_ns(void);

/* Cheap per-thread PRNG (xorshift64*). */
uint64_t th_rand(uint64_t *state);

/* FNV-1a checksum of a buffer. */
uint64_t th_sum(const void *p, size_t n);

/* Send fd over the Unix socket sock with SCM_RIGHTS (one byte of payload).
 * Return: 0, or -errno. */
int th_send_fd(int sock, int fd);

/* Receive one fd sent by th_send_fd. Return: the fd, or -errno. */
int th_recv_fd(int sock);

/*
 * Path of a helper program that lives next to the running test executable
 * (for fork+exec of an unrelated process). Writes into buf; returns buf.
 */
char *th_helper_path(char *buf, size_t n, const char *prog);

/* Fill / check a buffer with a pattern derived from seed. th_check returns
 * the index of the first wrong byte, or -1 when all match. */
void th_fill(void *p, size_t n, uint64_t seed);
long th_check(const void *p, size_t n, uint64_t seed);

/*
 * True in a ThreadSanitizer build. TSan cannot follow a fork() made while
 * other threads exist (Criterion's test workers may have some), so a child
 * of such a fork must not create threads: tests run their multi-threaded
 * parts without forking, or fork single-threaded workers, when this holds.
 */
bool th_tsan(void);

/* Write / read exactly n bytes on a pipe or socket (retrying EINTR and short
 * transfers). Return: 0, or -1 on error or early EOF. */
int th_write_all(int fd, const void *p, size_t n);
int th_read_all(int fd, void *p, size_t n);

#endif
