#!/bin/sh
# One wait layer (issue 10, doc/architecture.md "Waiting"): the library
# sleeps on a futex only in lib/wait.c, which alone calls lib/futex.c. No
# other file of lib/ makes a futex call (lfipc__futex_wait, _waitv, _wake),
# a raw futex system call, or a sleep slice of its own (lfipc__slice_end):
# a primitive describes what it waits for to lfipc__wait_until() and wakes
# with lfipc__wake() or lfipc__wake_word().
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top/lib" || exit 99
ls wait.c futex.c >/dev/null || exit 99
bad=$(grep -nE 'lfipc__futex_(wait|waitv|wake)\>|SYS_futex|lfipc__slice_end' \
	*.c internal/*.h | grep -vE '^(wait\.c|futex\.c|internal/futex\.h):')
if [ -n "$bad" ]; then
	echo "FAIL: waiting outside lib/wait.c:"
	echo "$bad"
	exit 1
fi
# Nor a sleep or a yield of its own: the waits without a futex word (the
# registration gate, the queue clear's waits, an open racing with a
# create) go through lfipc__wait_retry(), wait.c's back-off.
bad=$(grep -nE '\<(nanosleep|clock_nanosleep|usleep|sleep|sched_yield|pause|poll|ppoll|select|epoll_wait)[[:space:]]*\(' \
	*.c internal/*.h | grep -vE '^(wait\.c|futex\.c):' |
	grep -vE '^[^:]+:[0-9]+:[[:space:]]*(/?\*|//)')
if [ -n "$bad" ]; then
	echo "FAIL: sleeping outside lib/wait.c:"
	echo "$bad"
	exit 1
fi
# The checks themselves must be able to fail: wait.c does call the futex
# layer, and does sleep.
grep -qE 'lfipc__futex_(wait|wake)\>' wait.c || { echo "FAIL: the pattern matches nothing in wait.c"; exit 1; }
grep -qE '\<nanosleep[[:space:]]*\(' wait.c || { echo "FAIL: the sleep pattern matches nothing in wait.c"; exit 1; }
echo "only lib/wait.c calls the futex layer and sleeps"
