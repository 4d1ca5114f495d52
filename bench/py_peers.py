#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Python multiprocessing figures for the README's comparison tables.

Measures, on this machine, what lfipc replaces: multiprocessing.Pipe round
trips, multiprocessing.Queue put+get throughput between two processes,
Lock acquire+release, Value += under its lock, and clearing a Manager
queue item by item. Prints one line per figure with the median and the
min..max of 5 runs. Usage: python3 bench/py_peers.py [--quick]
"""
import multiprocessing as mp
import statistics
import sys
import time

QUICK = "--quick" in sys.argv
RUNS = 3 if QUICK else 5


def report(name, values, unit):
    values = sorted(values)
    print(f"{name:44s} median {statistics.median(values):12.1f} {unit}"
          f"  (min {values[0]:.1f}, max {values[-1]:.1f})", flush=True)


def pipe_echo(conn, n):
    for _ in range(n):
        conn.send_bytes(conn.recv_bytes())


def pipe_rtt(size, n):
    a, b = mp.Pipe()
    p = mp.Process(target=pipe_echo, args=(b, n * RUNS))
    p.start()
    msg = b"x" * size
    out = []
    for _ in range(RUNS):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            a.send_bytes(msg)
            a.recv_bytes()
        out.append((time.perf_counter_ns() - t0) / n)
    p.join()
    return out


def queue_consumer(q, n):
    for _ in range(n):
        q.get()


def queue_tput(size, n):
    out = []
    msg = b"x" * size
    for _ in range(RUNS):
        q = mp.Queue(1024)
        p = mp.Process(target=queue_consumer, args=(q, n))
        p.start()
        t0 = time.perf_counter_ns()
        for _ in range(n):
            q.put(msg)
        p.join()
        out.append(n / ((time.perf_counter_ns() - t0) / 1e9) / 1e3)
    return out


def lock_cost(n):
    lock = mp.Lock()
    out = []
    for _ in range(RUNS):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            lock.acquire()
            lock.release()
        out.append((time.perf_counter_ns() - t0) / n)
    return out


def value_add(n):
    v = mp.Value("q", 0)
    out = []
    for _ in range(RUNS):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            with v.get_lock():
                v.value += 1
        out.append((time.perf_counter_ns() - t0) / n)
    return out


def manager_clear(n):
    out = []
    with mp.Manager() as m:
        for _ in range(RUNS):
            q = m.Queue()
            for i in range(n):
                q.put(i)
            t0 = time.perf_counter_ns()
            while not q.empty():
                q.get_nowait()
            out.append((time.perf_counter_ns() - t0) / 1e6)
    return out


def main():
    mp.set_start_method("fork")
    scale = 1 if QUICK else 4
    print(f"# Python {sys.version.split()[0]} multiprocessing, "
          f"{mp.cpu_count()} CPUs, {RUNS} runs", flush=True)
    for size in (8, 256):
        report(f"mp.Pipe round trip {size} B", pipe_rtt(size, 5000 * scale),
               "ns")
    for size in (8, 256):
        report(f"mp.Queue 1x1 put+get {size} B",
               queue_tput(size, 20000 * scale), "kmsg/s")
    report("mp.Lock acquire+release", lock_cost(100000 * scale), "ns")
    report("mp.Value += 1 under get_lock()", value_add(100000 * scale), "ns")
    report("Manager().Queue() clear of 10000 items",
           manager_clear(10000), "ms")


if __name__ == "__main__":
    main()
