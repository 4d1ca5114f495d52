#!/bin/sh
# lfipc ls: lfipc regions only, with participants alive and dead, stale.
. "$(dirname "$0")/lib.sh"

R=/$P-a
run 0 "$FIX" create "$R"
# Files in /dev/shm that are not lfipc regions: listed never, changed never.
head -c 8192 /dev/urandom >"/dev/shm/$P-junk"
: >"/dev/shm/$P-empty"
cp "/dev/shm/$P-junk" "$T/junk"

run 0 "$LFIPC" ls "$P-*"
out_has "$R "
out_lacks "junk"
out_lacks "empty"
grep "$R " "$T/out" | grep -q stale || fail "a region nobody uses is stale"

hold "$R"
run 0 "$LFIPC" ls "$P-*"
line=$(grep "$R " "$T/out")
set -- $line
[ "$4" = 1 ] && [ "$5" = 0 ] && [ "$6" = live ] || fail "live holder: $line"
run 0 "$LFIPC" --json ls "$P-*"
json_check "len(j) == 1 and j[0]['name'] == '$R' and j[0]['participants'] == 1 and j[0]['dead'] == 0 and not j[0]['stale'] and j[0]['objects'] == 8 and j[0]['size'] >= 1048576"

kill9 "$HOLDER"
run 0 "$LFIPC" ls "$P-*"
line=$(grep "$R " "$T/out")
set -- $line
[ "$4" = 0 ] && [ "$5" = 1 ] && [ "$6" = stale ] || fail "killed holder: $line"
run 0 "$LFIPC" ls --json "$P-*"
json_check "j[0]['participants'] == 0 and j[0]['dead'] == 1 and j[0]['stale']"

# Without a pattern every region is listed, ours among them.
run 0 "$LFIPC" --json ls
json_check "'$R' in [e['name'] for e in j]"
run 0 "$LFIPC" --json ls "$P-nothing-*"
json_check "j == []"
cmp -s "/dev/shm/$P-junk" "$T/junk" || fail "ls changed a file that is not a region"
exit 0
