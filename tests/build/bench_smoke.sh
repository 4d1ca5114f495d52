#!/bin/sh
# Run lfipc-bench once in a tiny configuration: the tool runs, every
# sequence check passes (exit 0, no FAILED), and the csv and json parse.
# Never gates on performance.
set -e
B=${builddir:-.}/bench/lfipc-bench
[ -x "$B" ] || B=./bench/lfipc-bench
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$B" --tiny --format csv > "$out/r.csv" 2>/dev/null
if grep -q FAILED "$out/r.csv"; then echo "FAILED rows"; cat "$out/r.csv"; exit 1; fi
# every data line has 10 fields and a numeric median
awk -F, 'NR>2 { if (NF < 10 || $(NF-3) !~ /^[0-9.]+$/ || $NF != "ok") { print "bad line: " $0; bad=1 } } END { exit bad }' "$out/r.csv"
n=$(grep -c ',ok$' "$out/r.csv")
[ "$n" -ge 10 ] || { echo "too few rows: $n"; exit 1; }
"$B" --tiny --format json > "$out/r.json" 2>/dev/null
if command -v python3 >/dev/null; then
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["results"]) >= 10' "$out/r.json"
fi
echo "bench smoke: $n csv rows ok"
