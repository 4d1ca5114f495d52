#!/bin/sh
# Issue 15: nothing in lfipc trips a user's AddressSanitizer build.
# `make install DESTDIR=...`, then build the programs of tests/build/users
# (one or more per object type: Queue and JoinableQueue in every way of
# putting and getting, Lock, RLock, Semaphore, Event, Condition, Barrier,
# Value/Array, Pipe, each in a region) the way a user would: their code
# with -fsanitize=address and `pkg-config --cflags --libs lfipc`, the
# normal library. Message buffers are heap blocks of exactly their size,
# every handle is closed, and LeakSanitizer is on: each must run clean.
# The controls overflow.c (8 bytes) and overflow33.c (33 bytes, a length
# the library copies inline unless ASan is in the process) hand the library
# a buffer one byte short and must be reported. In a --enable-sanitizer=address tree the installed
# library carries ASan and UBSan itself, and the programs link their
# runtimes too; a ThreadSanitizer tree is skipped (ASan and TSan cannot
# share a process).
# Program lists are split into words on purpose:
# shellcheck disable=SC2086
. "$(dirname "$0")/users.sh"

san=$(users_var SAN_LDFLAGS)
case $san in
*thread*) users_skip "the library of this tree is built with $san" ;;
esac
users_install asan
cflags="-fsanitize=address $(pkg-config --cflags lfipc)"
libs="-fsanitize=address $san $(pkg-config --libs lfipc)"
echo "compile: $CC -c ... $cflags"
echo "link:    $CC ... $libs"
ASAN_OPTIONS="detect_leaks=1 halt_on_error=1"
UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1"
export ASAN_OPTIONS UBSAN_OPTIONS

users_compile probe "-fsanitize=address" probe
users_link probe probe "-fsanitize=address" probe
users_run probe probe
[ "$(users_rc probe probe)" = 0 ] || {
	users_show probe probe
	users_skip "ASan programs do not run on this machine"
}

controls="overflow overflow33"
users_compile obj "$cflags" $users_programs $controls
users_link asan obj "$libs" $users_programs $controls
users_run asan $users_programs $controls

reported() { # PROG: did a sanitizer report something?
	grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' \
		"$tmp/asan/$1.out" 2>/dev/null
}
for p in $users_programs; do
	if [ "$(users_rc asan "$p")" != 0 ] || reported "$p"; then
		users_show asan "$p" 60
		users_bad "asan/$p: exit $(users_rc asan "$p"), a report or a failed check"
	else
		echo "PASS: asan/$p: no report"
	fi
done
for p in $controls; do
	if grep -q 'ERROR: AddressSanitizer: heap-buffer-overflow' "$tmp/asan/$p.out" 2>/dev/null; then
		echo "PASS: asan/$p: the control overflow is reported"
	else
		users_show asan "$p"
		users_bad "asan/$p: the control overflow was not reported: ASan sees nothing"
	fi
done
[ "$users_fail" -eq 0 ] || { echo "$users_fail failures"; exit 1; }
echo "PASS: every program runs clean under ASan against the installed liblfipc"
