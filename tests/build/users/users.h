/* SPDX-License-Identifier: MIT */
/*
 * users.h - what the small user programs of tests/build/users share.
 *
 * The programs are built the way a user builds against an installed lfipc
 * (tests/build/tsan-users.sh, asan-users.sh): the installed <lfipc.h>,
 * `pkg-config --cflags --libs lfipc` or `lfipc-tsan`, libc and pthreads;
 * nothing from the source tree but this header. Each program hands the
 * user's own plain (non-atomic) data from one thread to another through
 * one lfipc object only: threads are created before the data is written
 * and joined after it is read, so without lfipc nothing orders the write
 * before the read. Each checks the values it reads and exits 0 after
 * printing "ok"; a failed check prints where and exits 3.
 */
#ifndef LFIPC_TESTS_USERS_H
#define LFIPC_TESTS_USERS_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lfipc.h>

#define CHECK(e) ((e) ? (void)0 : user_fail(__FILE__, __LINE__, #e, 0))
/* An lfipc call that must return want (0, a count or a negative errno). */
#define CHECK_RC(call, want)                                                   \
	do {                                                                   \
		long long user_rc_ = (long long)(call);                        \
		if (user_rc_ != (long long)(want))                             \
			user_fail(__FILE__, __LINE__, #call, user_rc_);        \
	} while (0)

static inline void user_fail(const char *file, int line, const char *what,
			     long long rc)
{
	fprintf(stderr, "%s:%d: check failed: %s", file, line, what);
	if (rc < 0)
		fprintf(stderr, " returned %lld (%s)", rc,
			lfipc_strerror((int)rc));
	else if (rc > 0)
		fprintf(stderr, " returned %lld", rc);
	fputc('\n', stderr);
	exit(3);
}

/* The plain value a program writes for index i and checks on the other
 * side: not i itself, so a stale or zero read is seen. */
static inline uint32_t user_mix(uint32_t i)
{
	return (i + 1) * 2654435761u;
}

/* An anonymous region (memfd: nothing is left in /dev/shm). */
static inline lfipc_region *user_region(void)
{
	lfipc_region *r = NULL;

	CHECK_RC(lfipc_region_create(NULL, (size_t)4 << 20, 0, &r), 0);
	return r;
}

static inline pthread_t user_spawn(void *(*fn)(void *), void *arg)
{
	pthread_t t;

	CHECK(pthread_create(&t, NULL, fn, arg) == 0);
	return t;
}

static inline void user_join(pthread_t t)
{
	CHECK(pthread_join(t, NULL) == 0);
}

/* A heap copy of exactly len bytes, so ASan sees any access past it. */
static inline void *user_dup(const void *p, size_t len)
{
	void *c = malloc(len ? len : 1);

	CHECK(c != NULL);
	memcpy(c, p, len);
	return c;
}

#endif /* LFIPC_TESTS_USERS_H */
