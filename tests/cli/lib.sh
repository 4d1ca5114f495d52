# Shared by the lfipc command's shell tests (tests/cli/*.sh); sourced, not
# run. Run from the build directory (as `make check` does).
#
# Each test makes its regions under a unique prefix ($P), starts
# participants with cli_fixture and kills them, and removes whatever it
# left on exit, also when it fails.
set -u
# The fixture and examples/pool exit (or are killed) with their handles
# open on purpose: the regions must outlive them for the command to
# inspect. LeakSanitizer would fail every such exit in the ASan build.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
export ASAN_OPTIONS
LFIPC=./tools/lfipc
FIX=./tests/cli/cli_fixture
[ -x "$LFIPC" ] && [ -x "$FIX" ] || { echo "lfipc or cli_fixture not built"; exit 99; }
command -v python3 >/dev/null || { echo "python3 is needed to check JSON"; exit 77; }
P=lfipc-t-${LFIPC_TEST_RUN:-x}-$$-cli-$(basename "$0" .sh)
T=$(mktemp -d) || exit 99
HOLDERS=""

cleanup() {
	for h in $HOLDERS; do kill -9 "$h" 2>/dev/null; done
	wait 2>/dev/null
	rm -f /dev/shm/"$P"*
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
	echo "FAIL: $*"
	exit 1
}

# run EXPECTED_STATUS CMD...: run CMD, stdout to $T/out, stderr to $T/err,
# and check its exit status.
run() {
	want=$1
	shift
	"$@" >"$T/out" 2>"$T/err"
	got=$?
	[ "$got" -eq "$want" ] || {
		cat "$T/out" "$T/err"
		fail "'$*' exited $got, expected $want"
	}
}

# The last output must be valid JSON; then evaluate a Python expression
# over it (as j) that must be true.
json_check() {
	python3 -m json.tool "$T/out" >/dev/null || {
		cat "$T/out"
		fail "invalid JSON from the last command"
	}
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' \
		"$T/out" "$1" || {
		cat "$T/out"
		fail "JSON check failed: $1"
	}
}

out_has() {
	grep -q -- "$1" "$T/out" || {
		cat "$T/out"
		fail "output lacks '$1'"
	}
}

out_lacks() {
	if grep -q -- "$1" "$T/out"; then
		cat "$T/out"
		fail "output has '$1'"
	fi
}

# hold REGION: start a participant that holds REGION's "lock"; sets
# HOLDER to its pid. It lives until killed.
hold() {
	f=$T/hold.$(date +%s%N)
	"$FIX" hold "$1" >"$f" 2>&1 &
	HOLDER=$!
	HOLDERS="$HOLDERS $HOLDER"
	for _ in $(seq 1 500); do
		grep -q "^ready $HOLDER\$" "$f" 2>/dev/null && return 0
		kill -0 "$HOLDER" 2>/dev/null || break
		sleep 0.02
	done
	cat "$f"
	fail "holder did not start"
}

# kill9 PID: SIGKILL a participant and wait until it is gone.
kill9() {
	kill -9 "$1"
	wait "$1" 2>/dev/null
	for _ in $(seq 1 500); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.01
	done
	fail "pid $1 did not die"
}
