#!/bin/sh
# The README quick start's demo runs and finds every message intact (in
# every build, so also under the sanitizers). Run from the build directory.
set -u
[ -x examples/demo ] || { echo "examples/demo not built"; exit 99; }
./examples/demo 4 50000
