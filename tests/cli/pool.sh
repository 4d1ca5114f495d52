#!/bin/sh
# The README's worker pool, inspected while it runs (lfipc show / ps), then
# stopped through its control Listener: every result arrived and the
# region is gone.
. "$(dirname "$0")/lib.sh"
[ -x examples/pool ] || { echo "examples/pool not built"; exit 99; }

R=/$P-pool
./examples/pool "$R" 3 >"$T/pool" 2>&1 &
pool=$!
HOLDERS="$pool"
for _ in $(seq 1 500); do
	grep -q "^ready" "$T/pool" && break
	sleep 0.02
done
grep -q "^ready $pool$" "$T/pool" || { cat "$T/pool"; fail "pool did not start"; }
run 0 "$LFIPC" show "$R"
for o in "jobs *queue" "results *queue" "done *array" "stop *event" "control *listener"; do
	grep -q "^$o " "$T/out" || { cat "$T/out"; fail "no '$o'"; }
done
out_has "4 participants alive, 0 dead"
grep "^control " "$T/out" | grep -q "server_pid=$pool server_alive" || fail "listener: $(cat "$T/out")"
run 0 "$LFIPC" --json ps "$R"
json_check "len(j) == 4 and all(p['state'] == 'alive' for p in j) and $pool in [p['pid'] for p in j]"
run 0 "$LFIPC" --json show "$R" jobs
json_check "j['objects'][0]['status']['joinable'] and j['objects'][0]['status']['capacity'] == 256"
run 0 "$FIX" send "$R" control stop
wait "$pool" || { cat "$T/pool"; fail "pool failed"; }
grep -q "bad 0 workers failed 0" "$T/pool" || { cat "$T/pool"; fail "pool results"; }
[ -e "/dev/shm$R" ] && fail "pool left its region"
exit 0
