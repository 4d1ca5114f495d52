#!/bin/sh
# lfipc ps: participants alive and dead; lfipc itself is not listed.
. "$(dirname "$0")/lib.sh"

R=/$P-a
run 0 "$FIX" create "$R"
run 0 "$LFIPC" --json ps "$R"
json_check "j == []"
hold "$R"
a=$HOLDER
hold "$R"
b=$HOLDER
run 0 "$LFIPC" ps "$R"
grep -q " $a alive" "$T/out" || fail "no live $a: $(cat "$T/out")"
grep -q " $b alive" "$T/out" || fail "no live $b: $(cat "$T/out")"
kill9 "$a"
run 0 "$LFIPC" ps "$R"
grep -q " $a dead" "$T/out" || fail "$a not dead: $(cat "$T/out")"
grep -q " $b alive" "$T/out" || fail "$b not alive: $(cat "$T/out")"
run 0 "$LFIPC" ps --json "$R"
json_check "sorted((p['pid'], p['state']) for p in j) == sorted([($a, 'dead'), ($b, 'alive')])"
json_check "all(p['age_s'] >= 0 for p in j)"
exit 0
