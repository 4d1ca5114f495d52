# users.sh - sourced by tsan-users.sh and asan-users.sh (run from the build
# directory, as make check does). Installs this build tree into a
# temporary DESTDIR, points pkg-config and the dynamic loader at it as a
# user's system would have them, and builds and runs the small programs of
# tests/build/users, $jobs at a time (compiled once, linked once per
# library they are checked against).
set -u
MAKE=${MAKE:-make}
CC=${CC:-cc}
users_src=$(cd "$(dirname "$0")/users" && pwd)
jobs=$(nproc 2>/dev/null || echo 2)
users_fail=0
# The programs of tests/build/users: each hands data over one edge.
# shellcheck disable=SC2034 # used by the scripts that source this
users_programs="queue_put_get queue_many queue_zerocopy queue_release_many
queue_clear queue_shutdown queue_join lock lock_ownerdead sem event cond
barrier value pipe"

users_skip() {
	echo "SKIP: $*"
	exit 77
}

users_bad() {
	echo "FAIL: $*"
	users_fail=$((users_fail + 1))
}

# The value of a variable of the build tree's Makefile (as configured).
users_var() {
	sed -n "s/^$1 = //p" Makefile
}

# users_install TAG: make install DESTDIR=$tmp; sets tmp and libdir.
users_install() {
	command -v pkg-config >/dev/null 2>&1 || users_skip "no pkg-config"
	[ -f Makefile ] || { echo "run from the build directory"; exit 99; }
	tmp=$(mktemp -d "/tmp/lfipc-$1.XXXXXX") || exit 99
	trap 'rm -rf "$tmp"' EXIT
	# Tests that install run in parallel in one build tree: libtool's
	# relinking of one would race with another's (install.lock, shared
	# with tests/python/test_install.py).
	if ! flock install.lock $MAKE install DESTDIR="$tmp/root" \
		>"$tmp/install.log" 2>&1; then
		cat "$tmp/install.log"
		echo "FAIL: make install"
		exit 1
	fi
	pc=$(find "$tmp/root" -name lfipc.pc)
	[ -n "$pc" ] || { echo "FAIL: lfipc.pc not installed"; exit 1; }
	libdir=$(dirname "$(dirname "$pc")")
	PKG_CONFIG_PATH=$libdir/pkgconfig
	PKG_CONFIG_SYSROOT_DIR=$tmp/root
	LD_LIBRARY_PATH=$libdir
	export PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR LD_LIBRARY_PATH
}

# users_job LOG CMD...: run CMD in the background with its output in LOG,
# waiting for the running ones after every $jobs.
users_n=0
users_job() {
	log=$1
	shift
	"$@" >"$log" 2>&1 &
	users_n=$((users_n + 1))
	[ $((users_n % jobs)) -ne 0 ] || wait
}

# users_compile DIR "CFLAGS" PROG...: compile users/PROG.c into
# $tmp/DIR/PROG.o with the user's own flags and pkg-config's --cflags.
users_compile() {
	dir=$1
	flags=$2
	shift 2
	mkdir -p "$tmp/$dir"
	for p in "$@"; do
		# shellcheck disable=SC2086
		users_job "$tmp/$dir/$p.log" $CC -std=gnu11 -Wall -Wextra \
			-Werror -g -pthread -I"$users_src" $flags \
			-c "$users_src/$p.c" -o "$tmp/$dir/$p.o"
	done
	wait
	for p in "$@"; do
		[ -f "$tmp/$dir/$p.o" ] && continue
		cat "$tmp/$dir/$p.log"
		users_bad "$p.c does not compile with: $CC $flags"
	done
}

# users_link DIR OBJDIR "LIBS" PROG...: link $tmp/OBJDIR/PROG.o into
# $tmp/DIR/PROG with the user's own flags and pkg-config's --libs.
users_link() {
	dir=$1
	objdir=$2
	flags=$3
	shift 3
	mkdir -p "$tmp/$dir"
	for p in "$@"; do
		[ -f "$tmp/$objdir/$p.o" ] || continue
		# shellcheck disable=SC2086
		users_job "$tmp/$dir/$p.log" $CC -g -pthread \
			"$tmp/$objdir/$p.o" -o "$tmp/$dir/$p" $flags
	done
	wait
	for p in "$@"; do
		[ -x "$tmp/$dir/$p" ] && continue
		cat "$tmp/$dir/$p.log"
		users_bad "$dir/$p does not link with: $CC $flags"
	done
}

# users_run DIR PROG...: run each program of $tmp/DIR (at most 2 minutes),
# its output in $tmp/DIR/PROG.out and its exit status in PROG.rc.
users_run() {
	dir=$1
	shift
	for p in "$@"; do
		[ -x "$tmp/$dir/$p" ] || continue
		# shellcheck disable=SC2016 # expanded by that sh
		users_job /dev/null sh -c \
			'timeout 120 "$1" >"$1.out" 2>&1; echo $? >"$1.rc"' \
			sh "$tmp/$dir/$p"
	done
	wait
}

users_rc() {
	cat "$tmp/$1/$2.rc" 2>/dev/null || echo none
}

users_show() {
	sed 's/^/    /' "$tmp/$1/$2.out" | head -n "${3:-40}"
}
