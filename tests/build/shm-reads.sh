#!/bin/sh
# The foundation reads shared memory only through explicit single loads
# (volatile or atomic): tests/tools/shm-reads finds no plain and no repeated
# read of region memory in its files, compiled at -O2 (doc/hostile.md). A
# component joins the list when its files are clean. The primitives reach
# their blocks through pointers cached in their handles, so for them every
# pointer to a shared layout struct (lib/internal/*_layout.h) counts as
# shared; struct pipe_geom is left out: it is only ever a private copy
# (geom_load() fills it through lfipc__shm_copy).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(pwd)
command -v python3 >/dev/null 2>&1 || { echo "SKIP: no python3"; exit 77; }
[ -f "$build/config.h" ] || { echo "SKIP: run from a build tree"; exit 77; }
cd "$top" || exit 1
python3 tests/tools/shm-reads --build "$build" lib/alloc.c lib/region.c \
	lib/value.c lib/proc.c lib/recover.c lib/guard.c lib/error.c || exit 1
types=$(sed -n 's/^struct \([a-z_]*\) {.*/--shared-type \1/p' \
	lib/internal/*_layout.h | grep -v 'pipe_geom$' | sort -u)
# The Listener keeps its layout in lib/listener.c (struct lsn_*); the
# object table, inspection and the lfipc command read through the same
# pointers (tools/lfipc.c only through the public API, audited anyway: a
# hostile region must not crash `lfipc show`).
# shellcheck disable=SC2086 # one word per option
exec python3 tests/tools/shm-reads --build "$build" $types \
	--shared-type lsn_shm --shared-type lsn_ctl --shared-type lsn_rec \
	lib/queue.c lib/queue_putget.c lib/queue_bulk.c lib/queue_zerocopy.c \
	lib/queue_recover.c lib/queue_tasks.c \
	lib/pipe.c lib/pipe_io.c lib/sync.c lib/sem.c lib/cond.c lib/barrier.c \
	lib/event.c lib/mutex.c lib/wait.c lib/death.c lib/poll.c \
	lib/listener.c lib/types.c lib/inspect.c lib/wait_any.c tools/lfipc.c
