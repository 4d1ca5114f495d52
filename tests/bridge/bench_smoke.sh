#!/bin/sh
# bridge_bench runs, in a tiny configuration, and prints its figures (it
# never gates on performance). Under ThreadSanitizer too: there it runs the
# sender and the receiver as two threads of one process, so TSan checks the
# bridge's own code across threads (libzmq's internals are suppressed:
# bridge/tsan_zmq.c).
out=$(./bench/bridge_bench -n 3000 -r 1 -l 200 -R -q 256) || exit 1
echo "$out"
echo "$out" | grep -q "bridge / raw batched" || exit 1
num='[0-9.]*'
echo "$out" | grep -q "repeat by repeat: $num \[$num\.\.$num\]" || exit 1
echo "$out" | grep -q "latency p50" || exit 1
echo "$out" | grep -q "relay (two queue hops" || exit 1
# -T (CPU time by thread), -P (raw packed only), -b (batch of both paths)
out=$(./bench/bridge_bench -t -P -T -b 64 -n 3000 -r 1 -s 64) || exit 1
echo "$out"
echo "$out" | grep -q -- "-T bridge 64 B: .*bb-send [0-9]" || exit 1
echo "$out" | grep -q -- "-T raw ZeroMQ 64 B: .*ZMQbg/IO/0 [0-9]" || exit 1
echo "$out" | grep -q "raw one-per-message 0.000" || exit 1
# -F (the floor: the queue hops and ZeroMQ without the bridge) with -T and
# -q (smaller queues than the default 4096 slots)
out=$(./bench/bridge_bench -F -T -q 1024 -n 3000 -r 1 -l 200 -s 64) || exit 1
echo "$out"
echo "$out" | grep -q "floor (queue hops and ZeroMQ, no bridge logic): throughput [0-9]" || exit 1
echo "$out" | grep -q "floor / raw batched = [0-9]" || exit 1
echo "$out" | grep -q "bridge above the floor" || exit 1
echo "$out" | grep -q -- "-T floor 64 B: .*bb-fsend [0-9]" || exit 1
# -S with -e: the latency line says which sides spun
out=$(./bench/bridge_bench -L -B -S 50 -e rx -r 1 -l 200 -s 64) || exit 1
echo "$out"
echo "$out" | grep -q "added .* (spin 50 us: receiver only)" || exit 1
