#!/bin/sh
# The foundation reads shared memory only through explicit single loads
# (volatile or atomic): tests/tools/shm-reads finds no plain and no repeated
# read of region memory in its files, compiled at -O2 (doc/hostile.md). A
# component joins the list when its files are clean.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(pwd)
command -v python3 >/dev/null 2>&1 || { echo "SKIP: no python3"; exit 77; }
[ -f "$build/config.h" ] || { echo "SKIP: run from a build tree"; exit 77; }
cd "$top" || exit 1
exec python3 tests/tools/shm-reads --build "$build" lib/alloc.c lib/region.c \
	lib/value.c lib/proc.c lib/recover.c lib/guard.c lib/error.c
