#!/bin/sh
# Run the wait-layer, Lock and fd tests again with the death push disabled
# (LFIPC_WAIT_FALLBACK=1: no death words, no futex_waitv; fallback slices),
# so both paths run in every `make check`. Run from the build directory.
set -u
for t in tests/unit/test_wait tests/unit/test_sync tests/unit/test_fd; do
	[ -x "$t" ] || { echo "$t not built"; exit 99; }
done
LFIPC_WAIT_FALLBACK=1
export LFIPC_WAIT_FALLBACK
./tests/unit/test_wait && ./tests/unit/test_sync && ./tests/unit/test_fd
