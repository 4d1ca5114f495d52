#!/bin/sh
# lfipc --help, --version and the exit status of bad command lines.
. "$(dirname "$0")/lib.sh"

run 0 "$LFIPC" --help
for verb in ls show ps recover clear rm gc --json --force --dry-run; do
	out_has "$verb"
done
out_has "Exit status"
run 0 "$LFIPC" --version
grep -q "^lfipc [0-9][0-9.]*$" "$T/out" || fail "version: $(cat "$T/out")"
run 2 "$LFIPC"
run 2 "$LFIPC" frobnicate
run 2 "$LFIPC" --no-such-option ls
run 2 "$LFIPC" show
run 2 "$LFIPC" ps a b
run 2 "$LFIPC" clear onlyregion
run 2 "$LFIPC" rm
run 2 "$LFIPC" --force ls
run 2 "$LFIPC" --dry-run rm x
# A region that does not exist is a failure, not a usage error.
run 1 "$LFIPC" show "/$P-none"
run 1 "$LFIPC" ps "$P-none"
run 1 "$LFIPC" recover "$P-none"
run 1 "$LFIPC" clear "$P-none" q
run 1 "$LFIPC" rm "$P-none"
grep -q "$P-none: " "$T/err" || fail "rm error: $(cat "$T/err")"
exit 0
