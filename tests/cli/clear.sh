#!/bin/sh
# lfipc clear: discards a queue's messages and says how many.
. "$(dirname "$0")/lib.sh"

R=/$P-a
run 0 "$FIX" create "$R"
hold "$R"
run 0 "$LFIPC" clear "$R" q
out_has "cleared 5 messages"
run 0 "$LFIPC" --json show "$R" q
json_check "j['objects'][0]['status']['depth'] == 0 and j['objects'][0]['status']['cleared'] == 5 and j['objects'][0]['status']['corrupt'] == 0"
run 0 "$LFIPC" --json clear "$R" q
json_check "j == {'region': '$R', 'queue': 'q', 'cleared': 0}"
run 1 "$LFIPC" clear "$R" nosuchqueue
run 1 "$LFIPC" clear "$R" lock # not a queue
exit 0
