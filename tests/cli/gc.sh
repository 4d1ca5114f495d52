#!/bin/sh
# lfipc gc: removes stale regions only (never a live one, never a file that
# is not an lfipc region); --dry-run removes nothing.
. "$(dirname "$0")/lib.sh"

S1=/$P-stale1
S2=/$P-stale2
L=/$P-live
for r in "$S1" "$S2" "$L"; do run 0 "$FIX" create "$r"; done
hold "$S1"
kill9 "$HOLDER" # S1: a dead participant; S2: none ever after creation
hold "$L"
head -c 4096 /dev/urandom >"/dev/shm/$P-junk"

run 0 "$LFIPC" gc --dry-run "$P-*"
out_has "would remove $S1"
out_has "would remove $S2"
out_lacks "$L"
out_lacks junk
for r in "$S1" "$S2" "$L"; do [ -e "/dev/shm$r" ] || fail "dry run removed $r"; done

run 0 "$LFIPC" --json gc "$P-*"
json_check "sorted(e['name'] for e in j) == ['$S1', '$S2'] and all(e['removed'] for e in j)"
[ -e "/dev/shm$S1" ] && fail "gc left $S1"
[ -e "/dev/shm$S2" ] && fail "gc left $S2"
[ -e "/dev/shm$L" ] || fail "gc removed the live region"
[ -e "/dev/shm/$P-junk" ] || fail "gc removed a file that is not a region"

run 0 "$LFIPC" --json gc "$P-*"
json_check "j == []"
exit 0
