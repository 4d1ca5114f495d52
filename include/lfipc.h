/* SPDX-License-Identifier: MIT */
/* lfipc.h - umbrella header: includes every lfipc component header. */
#ifndef LFIPC_H
#define LFIPC_H

#include <lfipc/common.h>
#include <lfipc/region.h>
#include <lfipc/sync.h>
#include <lfipc/queue.h>
#include <lfipc/value.h>
#include <lfipc/pipe.h>
#include <lfipc/wait.h>
#include <lfipc/listener.h>
#include <lfipc/inspect.h>

#endif /* LFIPC_H */
