/* SPDX-License-Identifier: MIT */
/*
 * wait_any.c - lfipc_wait_any(): the public wait-for-any over queues,
 * connections and events. Each primitive gives a non-consuming readiness
 * callback of its handle (lfipc__queue_any, ...); the waiting itself is
 * the wait layer's lfipc__wait_any (wait.c).
 */
#include "config.h"

#include <errno.h>

#include <lfipc/wait.h>

#include "internal/wait.h"

int lfipc_wait_any(const struct lfipc_waitable *v, unsigned n,
		   int64_t timeout_ns)
{
	struct lfipc_any a[LFIPC_WAIT_ANY_MAX];
	lfipc_region *r = NULL, *ri;
	lfipc_deadline dl;
	int rc, result;

	if (!v || n == 0 || n > LFIPC_WAIT_ANY_MAX)
		return -EINVAL;
	/* Once, here: claiming a connection's end may register a fork child,
	 * which waits within the same deadline. */
	dl = lfipc__deadline(timeout_ns);
	for (unsigned i = 0; i < n; i++) {
		if (!v[i].obj)
			return -EINVAL;
		switch (v[i].kind) {
		case LFIPC_WAIT_QUEUE:
			rc = lfipc__queue_any(v[i].obj, v[i].side, &a[i], &ri);
			break;
		case LFIPC_WAIT_CONN:
			rc = lfipc__conn_any(v[i].obj, v[i].side, dl, &a[i],
					     &ri);
			break;
		case LFIPC_WAIT_EVENT:
			rc = lfipc__event_any(v[i].obj, &a[i], &ri);
			break;
		default:
			rc = -EINVAL;
		}
		if (rc < 0)
			return rc;
		if (r && ri != r)
			return -EINVAL; /* partners' tokens are per region */
		r = ri;
	}
	rc = lfipc__wait_any(r, a, n, dl, 0, &result);
	/* A peek never fails: result is 0 whenever rc is an index. */
	return rc;
}
