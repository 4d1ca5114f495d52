#!/bin/sh
# lfipc recover: what a SIGKILLed participant held is recovered once.
. "$(dirname "$0")/lib.sh"

R=/$P-a
run 0 "$FIX" create "$R"
hold "$R"
run 0 "$LFIPC" --json recover "$R"
json_check "j['region'] == '$R' and j['recovered'] == 0"
kill9 "$HOLDER"
run 0 "$LFIPC" --json show "$R" lock
json_check "j['objects'][0]['status']['locked']"
run 0 "$LFIPC" recover "$R"
grep -q "^$R: recovered [1-9][0-9]* item" "$T/out" || fail "recover: $(cat "$T/out")"
# The dead holder's lock is free for the next acquirer now... or is handed
# to it with -EOWNERDEAD; either way nothing is left to recover.
run 0 "$LFIPC" --json recover "$R"
json_check "j['recovered'] == 0"
exit 0
