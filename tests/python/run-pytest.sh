#!/bin/sh
# Run one tests/python/*.py file with pytest and the interpreter configure
# chose (PYTHON), against the package assembled in the build tree. Called
# by `make check` (the automake log compiler for .py tests) with the test
# file as its argument; exits 77 (SKIP) when the binding cannot be tested
# here, and always within a time limit.
set -u
t=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
shift
skip() { echo "SKIP: $*"; exit 77; }
[ "${LFIPC_HAVE_PYTHON:-no}" = yes ] || skip "the Python binding is not built (no Python headers; apt-get install python3-dev)"
[ "${LFIPC_HAVE_PYTEST:-no}" = yes ] || skip "$PYTHON has no pytest (apt-get install python3-pytest, or configure PYTHON=...)"
case ${LFIPC_SANITIZER:-} in
*thread*)
	# The interpreter is not instrumented: TSan cannot see the GIL's
	# happens-before edges, so every object Python hands between threads
	# would be reported, and libtsan cannot be loaded into an
	# uninstrumented process after start-up anyway. The library's own
	# concurrency is covered by the C suites under TSan.
	skip "ThreadSanitizer build: the Python interpreter is not instrumented" ;;
*address*)
	# ASan must be the first library loaded: preload the runtime the
	# library was built with. CPython's arenas are not leak-checked.
	asan=$(${CC:-cc} -print-file-name=libasan.so)
	[ -f "$asan" ] || skip "no libasan.so to preload"
	LD_PRELOAD=$asan; export LD_PRELOAD
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"; export ASAN_OPTIONS
	PYTHONMALLOC=malloc; export PYTHONMALLOC ;;
esac
PYTHONPATH=$LFIPC_PY_BUILDDIR/python${PYTHONPATH:+:$PYTHONPATH}
export PYTHONPATH
PYTHONDONTWRITEBYTECODE=1; export PYTHONDONTWRITEBYTECODE
cd "$LFIPC_PY_SRCDIR/tests/python" || exit 99
# The tests import the binding from the build tree, whose
# python/lfipc/.libs/_lfipc.so libtool relinks in place during a `make
# install` (test_install.py, tests/build/users.sh and man.sh install from
# this tree while other tests run): a process importing it meanwhile found
# no module (seen once, a spawned child of test_fileno.py under load). The
# installers hold install.lock exclusively; the importers share it.
# test_install.py takes it itself.
lock=
case $t in
*/test_install.py) ;;
*) command -v flock >/dev/null &&
	lock="flock -s $LFIPC_PY_BUILDDIR/install.lock" ;;
esac
exec $lock timeout -k 10 ${LFIPC_PY_TIMEOUT:-600} "$PYTHON" -m pytest -q \
	-p no:cacheprovider -o console_output_style=classic "$t" "$@"
