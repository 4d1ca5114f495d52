/* SPDX-License-Identifier: MIT */
/* error.c - lfipc_strerror(). */
#include "config.h"

#include <errno.h>
#include <string.h>

#include <lfipc/common.h>

const char *lfipc_strerror(int err)
{
	if (err < 0)
		err = -err;
	/*
	 * Each text must be true of every call that returns the code: one
	 * errno serves several components (-EOVERFLOW is a value that does not
	 * fit an Array element and a bounded semaphore released once too
	 * often; -EAGAIN is LFIPC_NOWAIT and a failed compare-and-swap). What
	 * a code means for one call is in that call's header comment.
	 */
	switch (err) {
	case 0:
		return "success";
	case EAGAIN:
		return "not done now: the call would have to wait "
		       "(LFIPC_NOWAIT), or a compared value differed";
	case ETIMEDOUT:
		return "timed out";
	case EPROTO:
		return "shared memory makes no sense: corrupt, not lfipc's, "
		       "or of another layout version";
	case EOWNERDEAD:
		return "done, taking over from a process that died holding "
		       "what was acquired";
	case EPIPE:
		return "closed or broken: shut down, the other end closed or "
		       "died, or the barrier is broken";
	case EMSGSIZE:
		return "message too large, or buffer too small for the message";
	case ENOSPC:
		return "no space left (in the region, its directory, or the "
		       "system's shared memory)";
	case EUSERS:
		return "too many users: the participant table or a waiter "
		       "table is full";
	case EEXIST:
		return "an object or region of that name exists";
	case ENOENT:
		return "no object or region of that name";
	case EPERM:
		return "not permitted: the caller does not hold what the "
		       "operation needs";
	case EOVERFLOW:
		return "value or count out of range (too large for its type "
		       "or its limit)";
	case ENAMETOOLONG:
		return "name too long";
	case EINVAL:
		return "invalid argument (or object of another type)";
	case ERANGE:
		return "index or slice outside the object";
	case EDEADLK:
		return "would deadlock: the calling thread already holds it";
	case EBUSY:
		return "busy: in use by another process or operation (a pipe "
		       "end, or an internal lock held by a process that does "
		       "not progress: try again later)";
	case ECANCELED:
		return "cancelled: an action failed";
	case ENOLCK:
		return "the lock could not be re-taken in time: it is not "
		       "held on return";
	default:
		break;
	}
#ifdef HAVE_STRERRORDESC_NP
	{
		const char *s = strerrordesc_np(err);

		if (s)
			return s;
	}
#endif
	return "unknown error";
}
