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
# Its end of "pipe" is closed for the peer and its server word of "lsn"
# freed: two items. (Its Lock is not: the next acquirer takes it over and
# is told -EOWNERDEAD.)
run 0 "$LFIPC" recover "$R"
grep -q "^$R: recovered 2 items" "$T/out" || fail "recover: $(cat "$T/out")"
run 0 "$LFIPC" --json show "$R"
json_check "[o for o in j['objects'] if o['name'] == 'pipe'][0]['status']['end1_closed']"
json_check "[o for o in j['objects'] if o['name'] == 'lsn'][0]['status']['server_pid'] == 0"
run 0 "$LFIPC" --json recover "$R"
json_check "j['recovered'] == 0"
exit 0
