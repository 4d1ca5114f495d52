#!/bin/sh
# make check: run lfipc-bench once in a tiny configuration. It proves that
# the tool runs, that every sequence check passes (exit 0, no FAILED), that
# the checks do fire on a damaged message (--corrupt-seq), that the csv
# parses with one column count and the json parses, and, when gnuplot is
# installed, that --plot draws its PNG charts; and that --only rejects a
# misspelt scenario name. Never gates on performance.
set -e
B=${builddir:-.}/bench/lfipc-bench
[ -x "$B" ] || B=./bench/lfipc-bench
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# 0. the command line: --version, and --only rejects a misspelt name
"$B" --version | grep -q '^lfipc-bench ' || { echo "--version: no version line"; exit 1; }
if "$B" --only latncy > /dev/null 2> "$out/only.err"; then
	echo "--only latncy: accepted"; exit 1
fi
grep -q "unknown scenario 'latncy'" "$out/only.err" && grep -q 'latency' "$out/only.err" ||
	{ echo "--only latncy: no error listing the valid names:"; cat "$out/only.err"; exit 1; }

# 1. csv (and the plots from the same run)
"$B" --tiny --format csv --plot "$out/plots" > "$out/r.csv" 2> "$out/r.err" || {
	echo "lfipc-bench --tiny failed:"; cat "$out/r.err"; grep FAILED "$out/r.csv"; exit 1; }
if grep -q FAILED "$out/r.csv"; then echo "FAILED rows:"; grep FAILED "$out/r.csv"; exit 1; fi
if command -v python3 > /dev/null; then
	python3 - "$out/r.csv" <<'PY'
import csv, sys
lines = [l for l in open(sys.argv[1]) if not l.startswith('#')]
rows = list(csv.reader(lines))
head, data = rows[0], rows[1:]
assert head[0] == 'table' and head[-1] == 'status', head
bad = [r for r in data if len(r) != len(head)]
assert not bad, 'inconsistent column count: %r' % bad[:3]
for r in data:
    d = dict(zip(head, r))
    assert d['status'] in ('ok', 'ok-wide', 'ok-loaded', 'deadline'), r
    float(d['value'])
tables = {r[0] for r in data}
assert any(',' in t for t in tables), 'no quoted field was exercised'
assert len(data) >= 40, 'too few rows: %d' % len(data)
for must in ('lfipc Lock', 'lfipc RLock', 'pthread mutex (robust)',
             'bare cache line (floor)', 'bare futex lock (floor)',
             'bare SPSC ring (floor)', 'cold cache line (floor)'):
    assert any(r[1] == must for r in data), must
print('bench smoke: %d csv rows, %d columns each' % (len(data), len(head)))
PY
else
	n=$(grep -c ',ok' "$out/r.csv")
	[ "$n" -ge 40 ] || { echo "too few rows: $n"; exit 1; }
fi

# 2. json
"$B" --tiny --only clear,lock --format json > "$out/r.json" 2>/dev/null
if command -v python3 > /dev/null; then
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["machine"]["cores"] >= 1; assert len(d["results"]) >= 10; assert all(r["status"] in ("ok", "ok-wide", "ok-loaded", "deadline") for r in d["results"])' "$out/r.json"
fi

# 3. the checks fire: message 50 of every run is damaged by the sender
# (1x1 only: an oversubscribed run may stop at its deadline before the
# damaged message arrives; it uses the same code as 1x1)
if "$B" --tiny --only latency,throughput,pc --pc 1x1 --corrupt-seq 50 \
	--format csv > "$out/c.csv" 2>/dev/null; then
	echo "--corrupt-seq: exit status 0, expected 1"; exit 1
fi
if grep -v '^#' "$out/c.csv" | sed 1d | grep -v ',FAILED$' | grep .; then
	echo "--corrupt-seq: rows above were not FAILED"; exit 1
fi
nf=$(grep -c ',FAILED$' "$out/c.csv")
[ "$nf" -ge 20 ] || { echo "--corrupt-seq: only $nf FAILED rows"; exit 1; }
echo "bench smoke: --corrupt-seq gives $nf FAILED rows and exit status 1"

# 4. plots
if command -v gnuplot > /dev/null; then
	for f in throughput throughput-kernel latency clear; do
		p="$out/plots/$f.png"
		[ -s "$p" ] || { echo "--plot: $p missing"; cat "$out/r.err"; exit 1; }
		head -c 4 "$p" | od -An -c | grep -q 'P   N   G' ||
			{ echo "--plot: $p is not a PNG"; exit 1; }
	done
	echo "bench smoke: --plot wrote 4 PNG charts"
else
	echo "bench smoke: gnuplot not installed, --plot check skipped"
fi
