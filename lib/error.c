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
	switch (err) {
	case 0:
		return "success";
	case EAGAIN:
		return "operation would block (LFIPC_NOWAIT)";
	case ETIMEDOUT:
		return "timed out";
	case EPROTO:
		return "region or object is corrupt, not lfipc's, or of "
		       "another layout version";
	case EOWNERDEAD:
		return "acquired; the previous owner died holding it";
	case EPIPE:
		return "closed: the queue was shut down, the peer closed or "
		       "died, or the barrier is broken";
	case EMSGSIZE:
		return "message too large for the queue, or buffer too small "
		       "for the message";
	case ENOSPC:
		return "no space left in the region (or the directory is full)";
	case EUSERS:
		return "too many participants attached to the region";
	case EEXIST:
		return "an object or region of that name exists";
	case ENOENT:
		return "no object or region of that name";
	case EPERM:
		return "not the owner";
	case EOVERFLOW:
		return "released more times than acquired (bounded semaphore "
		       "or counter limit)";
	case ENAMETOOLONG:
		return "name too long";
	case EINVAL:
		return "invalid argument (or object of another type)";
	case EBUSY:
		return "held by another process (a pipe end, or an internal "
		       "lock held by a process that does not progress: "
		       "try again later)";
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
