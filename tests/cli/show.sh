#!/bin/sh
# lfipc show: every object with its status, live and after the holder's death.
. "$(dirname "$0")/lib.sh"

R=/$P-a
run 0 "$FIX" create "$R"
hold "$R"
run 0 "$LFIPC" show "$R"
for o in "lock *lock" "q *queue" "ev *event" "sem *semaphore" "bar *barrier" \
	"arr *array" "pipe *pipe" "lsn *listener"; do
	grep -q "^$o " "$T/out" || { cat "$T/out"; fail "no '$o'"; }
done
grep "^q " "$T/out" | grep -q "depth=5 capacity=16" || fail "queue: $(grep '^q ' "$T/out")"
grep "^lock " "$T/out" | grep -q "holder_pid=$HOLDER holder_alive" || fail "lock: $(grep '^lock ' "$T/out")"
# The region line does not count lfipc itself.
out_has "1 participants alive, 0 dead"

run 0 "$LFIPC" --json show "$R"
json_check "j['region']['name'] == '$R' and len(j['objects']) == 8"
json_check "[o for o in j['objects'] if o['name'] == 'q'][0]['status']['depth'] == 5"
json_check "[o for o in j['objects'] if o['name'] == 'lock'][0]['status']['holder_pid'] == $HOLDER"
json_check "[o for o in j['objects'] if o['name'] == 'lock'][0]['status']['holder_alive']"
json_check "[o for o in j['objects'] if o['name'] == 'sem'][0]['status']['value'] == 2"
json_check "[o for o in j['objects'] if o['name'] == 'bar'][0]['status']['parties'] == 3"
json_check "[o for o in j['objects'] if o['name'] == 'arr'][0]['status']['length'] == 4"
json_check "[o for o in j['objects'] if o['name'] == 'lsn'][0]['status']['backlog'] == 2"
json_check "[o for o in j['objects'] if o['name'] == 'lsn'][0]['status']['server_pid'] == $HOLDER"
json_check "[o for o in j['objects'] if o['name'] == 'pipe'][0]['status']['end1_pid'] == $HOLDER"

kill9 "$HOLDER"
run 0 "$LFIPC" --json show "$R" lock
json_check "len(j['objects']) == 1 and j['objects'][0]['type'] == 'lock'"
json_check "j['objects'][0]['status']['locked'] and not j['objects'][0]['status']['holder_alive']"
json_check "j['region']['dead'] == 1 and j['region']['participants'] == 0"
run 0 "$LFIPC" show "$R" lock
grep "^lock " "$T/out" | grep -q "holder_pid=$HOLDER" || fail "dead holder: $(cat "$T/out")"
out_has "0 participants alive, 1 dead"
run 1 "$LFIPC" show "$R" nosuchobject
run 1 "$LFIPC" --json show "$R" nosuchobject
exit 0
