#!/bin/sh
# lfipc rm: refuses a region with live participants unless --force; never
# removes a file that is not an lfipc region.
. "$(dirname "$0")/lib.sh"

R=/$P-a
run 0 "$FIX" create "$R"
hold "$R"
run 3 "$LFIPC" rm "$R"
grep -q "live participants" "$T/err" || fail "rm message: $(cat "$T/err")"
[ -e "/dev/shm$R" ] || fail "rm removed a live region"
# A stopped participant is alive too.
kill -STOP "$HOLDER"
run 3 "$LFIPC" --json rm "$R"
kill -CONT "$HOLDER"
run 0 "$LFIPC" --json rm --force "$R"
json_check "j == {'removed': '$R'}"
[ -e "/dev/shm$R" ] && fail "rm --force left the region"

# Once its only participant is dead, a plain rm removes it.
R2=/$P-b
run 0 "$FIX" create "$R2"
hold "$R2"
kill9 "$HOLDER"
run 0 "$LFIPC" rm "${R2#/}"
out_has "removed $R2"
[ -e "/dev/shm$R2" ] && fail "rm left the stale region"

head -c 4096 /dev/urandom >"/dev/shm/$P-junk"
run 1 "$LFIPC" rm "$P-junk"
run 1 "$LFIPC" rm --force "$P-junk"
[ -e "/dev/shm/$P-junk" ] || fail "rm removed a file that is not a region"
exit 0
