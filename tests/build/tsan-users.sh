#!/bin/sh
# Issue 15: a user's ThreadSanitizer build sees lfipc's synchronisation.
# `make install DESTDIR=...`, then build each program of tests/build/users
# the way a user would: their code with -fsanitize=thread and
# `pkg-config --cflags --libs lfipc-tsan` (the instrumented variant). Each
# program hands the user's plain data between threads through one lfipc
# edge and must run with no TSan report. Two checks prove that this can
# fail: the control program race.c (a real race next to the queue) must be
# reported, and every edge program linked against the normal liblfipc
# (`pkg-config lfipc`, what issue 15 found) must be reported too: its
# atomics are invisible to TSan, so the variant is what makes them clean.
# If clang is installed, one edge and the control are also built with
# clang against the same gcc-built variant (the runtime comes with the
# program). SKIP where liblfipc-tsan is not built (--disable-tsan-variant,
# a --enable-sanitizer tree, a compiler without TSan).
# Program lists are split into words on purpose:
# shellcheck disable=SC2086
. "$(dirname "$0")/users.sh"

# Defects of the library these programs found, listed until lib/ is fixed
# (PROG:PATTERN, PATTERN a grep -E pattern of the report's SUMMARY line): the
# report is then an expected failure (XFAIL); a listed program that runs
# clean fails the test (XPASS) until its line is removed here.
known=""
edges=$users_programs
[ "$(users_var TSAN_VARIANT)" = yes ] ||
	users_skip "liblfipc-tsan is not built in this tree (configure: TSAN_VARIANT=$(users_var TSAN_VARIANT))"
users_install tsan
pkg-config --exists lfipc-tsan || { echo "FAIL: lfipc-tsan.pc not installed"; exit 1; }
# The same interface as liblfipc: the same exported symbols and versions.
abi() {
	nm -D --defined-only "$libdir/$1" | sed -n 's/^[0-9a-f]* [A-Z] //p' | sort
}
if [ "$(abi liblfipc.so)" != "$(abi liblfipc-tsan.so)" ] || [ -z "$(abi liblfipc.so)" ]; then
	abi liblfipc.so >"$tmp/abi.normal"
	abi liblfipc-tsan.so >"$tmp/abi.tsan"
	diff "$tmp/abi.normal" "$tmp/abi.tsan"
	users_bad "liblfipc-tsan.so does not export what liblfipc.so exports"
fi
cflags=$(pkg-config --cflags lfipc-tsan)
variant=$(pkg-config --libs lfipc-tsan)
normal="-fsanitize=thread $(pkg-config --libs lfipc)"
echo "compile: $CC -c ... $cflags"
echo "link:    $CC ... $variant"
echo "against the normal library: $CC ... $normal"
# The user's own options for a TSan run; halt at the first report.
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
export TSAN_OPTIONS

# A program that cannot run under TSan at all (kernel mapping layout) says
# nothing about lfipc: skip rather than fail.
users_compile probe "-fsanitize=thread" probe
users_link probe probe "-fsanitize=thread" probe
users_run probe probe
[ "$(users_rc probe probe)" = 0 ] || {
	users_show probe probe
	users_skip "TSan programs do not run on this machine"
}

# Each program is compiled once, and linked against both libraries.
users_compile obj "$cflags" $edges race
users_link variant obj "$variant" $edges race
users_link normal obj "$normal" $edges
clang=
if command -v clang >/dev/null 2>&1 &&
	clang -fsanitize=thread -pthread "$users_src/probe.c" \
		-o "$tmp/clang-probe" >/dev/null 2>&1 &&
	"$tmp/clang-probe" >/dev/null 2>&1; then
	clang=clang
	user_cc=$CC
	CC=clang
	users_compile clang "$cflags" queue_put_get race
	users_link clang clang "$variant" queue_put_get race
	CC=$user_cc
fi
users_run variant $edges race
# Only whether TSan reports matters here, not where: no symbolisation.
TSAN_OPTIONS="$TSAN_OPTIONS symbolize=0" users_run normal $edges
[ -n "$clang" ] && users_run clang queue_put_get race

reported() { # KIND PROG: did TSan report something?
	grep -q 'WARNING: ThreadSanitizer' "$tmp/$1/$2.out" 2>/dev/null
}
for p in $edges; do
	pattern=$(printf '%s\n' "$known" | sed -n "s/^$p://p")
	rc=$(users_rc variant "$p")
	if [ -n "$pattern" ]; then
		if [ "$rc" = 66 ] && grep 'SUMMARY: ThreadSanitizer' "$tmp/variant/$p.out" | head -1 | grep -Eq "$pattern"; then
			echo "XFAIL: variant/$p: the known defect is reported ($pattern)"
		elif [ "$rc" = 0 ] && ! reported variant "$p"; then
			users_bad "variant/$p: XPASS: runs clean now: remove it from \$known in $0"
		else
			users_show variant "$p" 60
			users_bad "variant/$p: exit $rc, not (only) the known defect"
		fi
	elif [ "$rc" != 0 ] || reported variant "$p"; then
		users_show variant "$p" 60
		users_bad "variant/$p: exit $rc, TSan report or failed check with liblfipc-tsan"
	else
		echo "PASS: variant/$p: no report"
	fi
	if reported normal "$p"; then
		echo "PASS: normal/$p: reported, as expected with the uninstrumented liblfipc"
	else
		users_show normal "$p"
		users_bad "normal/$p: no TSan report against the normal liblfipc: the program's hand-off does not depend on lfipc alone"
	fi
done
for k in variant $clang; do
	if reported "$k" race; then
		echo "PASS: $k/race: the control race is reported"
	else
		users_show "$k" race
		users_bad "$k/race: the control race was not reported: TSan sees nothing"
	fi
done
if [ -n "$clang" ]; then
	if [ "$(users_rc clang queue_put_get)" = 0 ] && ! reported clang queue_put_get; then
		echo "PASS: clang/queue_put_get: no report (clang's runtime, gcc-built liblfipc-tsan)"
	else
		users_show clang queue_put_get
		users_bad "clang/queue_put_get against liblfipc-tsan"
	fi
else
	echo "note: no clang with -fsanitize=thread; the clang check is skipped"
fi
[ "$users_fail" -eq 0 ] || { echo "$users_fail failures"; exit 1; }
xfail=$(printf '%s\n' "$known" | grep -c .)
echo "PASS: every edge is clean under TSan with liblfipc-tsan ($xfail known defect(s) reported as expected)"
