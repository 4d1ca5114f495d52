/* SPDX-License-Identifier: MIT */
/*
 * types.c - the table of object types: the one place that lists them.
 * A new primitive adds its descriptor here (internal/objtype.h).
 */
#include "config.h"

#include "internal/objtype.h"

extern const struct lfipc__objtype lfipc__queue_type;
extern const struct lfipc__objtype lfipc__lock_type;
extern const struct lfipc__objtype lfipc__sem_type;
extern const struct lfipc__objtype lfipc__cond_type;
extern const struct lfipc__objtype lfipc__event_type;
extern const struct lfipc__objtype lfipc__barrier_type;
extern const struct lfipc__objtype lfipc__array_type;
extern const struct lfipc__objtype lfipc__pipe_type;
extern const struct lfipc__objtype lfipc__listener_type;

static const struct lfipc__objtype *const types[] = {
	&lfipc__queue_type, &lfipc__lock_type,	  &lfipc__sem_type,
	&lfipc__cond_type,  &lfipc__event_type,	  &lfipc__barrier_type,
	&lfipc__array_type, &lfipc__pipe_type,	  &lfipc__listener_type,
};

const struct lfipc__objtype *lfipc__objtype(unsigned type)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i]->type == type)
			return types[i];
	return NULL;
}
