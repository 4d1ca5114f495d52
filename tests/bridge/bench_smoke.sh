#!/bin/sh
# bridge_bench runs, in a tiny configuration, and prints its figures (it
# never gates on performance).
out=$(./bench/bridge_bench -n 3000 -r 1 -l 200) || exit 1
echo "$out"
echo "$out" | grep -q "bridge / raw batched" || exit 1
echo "$out" | grep -q "latency p50" || exit 1
