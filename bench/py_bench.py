#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""lfipc from Python against multiprocessing, in one run.

Usage, from a build tree (or anywhere once `make install` put lfipc on
the interpreter's path):

    python3 ../../bench/py_bench.py [--quick] [--runs N]

Every figure is the median of N runs (5; 3 with --quick) with the
minimum and maximum; the last column is lfipc's figure over
multiprocessing's (a time) or multiprocessing's over lfipc's (a
throughput), so above 1 means lfipc is better. Scenarios:

  queue      put+get throughput of small objects ((i, "item") tuples)
             from this process to a consumer process, Queue(1024) both.
  pipe       round trip of a small object (send/recv) and of 8 bytes
             (send_bytes/recv_bytes) through a duplex Pipe to an echoing
             process; the object round trip also with the two processes
             pinned to CPUs 0 and 1 (the scheduler otherwise tends to put
             a woken process on its waker's CPU, where a waiter's brief
             spin cannot see the peer run).
  lock       uncontended acquire+release in one process.
  value      `with v.get_lock(): v.value += 1` in one process.
  clear      100,000 items queued, then discarded: lfipc's clear();
             multiprocessing's Manager-served clear (the known
             workaround: a queue.Queue subclass with clear() registered
             with a BaseManager, filled by a server-side method); and
             draining a multiprocessing.Queue with get_nowait().
  interrupt  SIGINT to KeyboardInterrupt while blocked in Queue.get().

Processes are started with fork. Children signal readiness before the
clock starts, so start-up is not timed. A checksum on the consumer side
proves every queue item arrived.
"""

import argparse
import multiprocessing as mp
import os
import queue
import signal
import statistics
import sys
import threading
import time
from multiprocessing.managers import BaseManager

# Run from a build tree: its python/ directory holds the package.
_here = os.path.join(os.getcwd(), "python")
if os.path.exists(os.path.join(_here, "lfipc", "__init__.py")):
    sys.path.insert(0, _here)
import lfipc  # noqa: E402

CTX = mp.get_context("fork")


def summary(values):
    v = sorted(values)
    return statistics.median(v), v[0], v[-1]


def fmt(stat, unit):
    med, lo, hi = stat
    if unit == "k/s":
        return f"{med:,.1f} k/s ({lo:,.1f}..{hi:,.1f})"
    if med >= 10000:
        return f"{med / 1000:,.1f} µs ({lo / 1000:,.1f}..{hi / 1000:,.1f})"
    return f"{med:,.0f} ns ({lo:,.0f}..{hi:,.0f})"


# ---- queue throughput ---------------------------------------------------------

def _consume(q, n, ready, result):
    ready.set()
    s = 0
    for _ in range(n):
        s += q.get()[0]
    result.put(s)


def queue_tput(make_queue, make_event, n, runs):
    out = []
    for _ in range(runs):
        q, ready, result = make_queue(1024), make_event(), make_queue(4)
        p = CTX.Process(target=_consume, args=(q, n, ready, result))
        p.start()
        ready.wait()
        t0 = time.perf_counter_ns()
        for i in range(n):
            q.put((i, "item"))
        s = result.get()
        dt = time.perf_counter_ns() - t0
        p.join()
        assert s == n * (n - 1) // 2, "queue lost or changed items"
        out.append(n / (dt / 1e9) / 1e3)
    return out


# ---- pipe round trip --------------------------------------------------------------

def _echo(conn, n, use_bytes, cpu=None):
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    if use_bytes:
        for _ in range(n):
            conn.send_bytes(conn.recv_bytes())
    else:
        for _ in range(n):
            conn.send(conn.recv())


def pipe_rtt(make_pipe, n, runs, use_bytes, pin=False):
    a, b = make_pipe()
    p = CTX.Process(target=_echo,
                    args=(b, n * runs + 1, use_bytes, 1 if pin else None))
    p.start()
    mask = os.sched_getaffinity(0)
    if pin:
        os.sched_setaffinity(0, {0})
    out = []
    if use_bytes:
        msg = b"12345678"
        a.send_bytes(msg)
        a.recv_bytes()
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            for _ in range(n):
                a.send_bytes(msg)
                a.recv_bytes()
            out.append((time.perf_counter_ns() - t0) / n)
    else:
        a.send(0)
        a.recv()
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            for i in range(n):
                a.send(i)
                a.recv()
            out.append((time.perf_counter_ns() - t0) / n)
    p.join()
    os.sched_setaffinity(0, mask)
    return out


# ---- lock and value -------------------------------------------------------------------

def lock_cost(lock, n, runs):
    out = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            lock.acquire()
            lock.release()
        out.append((time.perf_counter_ns() - t0) / n)
    return out


def value_add(v, n, runs):
    out = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            with v.get_lock():
                v.value += 1
        out.append((time.perf_counter_ns() - t0) / n)
    return out


# ---- clear ---------------------------------------------------------------------------

CLEAR_N = 100_000


def lfipc_clear(runs):
    region = lfipc.Region(size=64 << 20)
    q = region.Queue(CLEAR_N)
    batch = [(i, "item") for i in range(1000)]
    out = []
    for _ in range(runs):
        for _ in range(CLEAR_N // len(batch)):
            q.put_many(batch)
        assert q.qsize() == CLEAR_N
        t0 = time.perf_counter_ns()
        n = q.clear()
        out.append(time.perf_counter_ns() - t0)
        assert n == CLEAR_N and q.qsize() == 0
    return out


class ClearableQueue(queue.Queue):
    """The workaround: a queue.Queue served by a Manager, with clear()."""

    def clear(self):
        with self.mutex:
            n = len(self.queue)
            self.queue.clear()
            self.unfinished_tasks = 0
            self.not_full.notify_all()
            return n

    def fill(self, n):          # setup only, done inside the server
        for i in range(n):
            self.put((i, "item"))


class QueueManager(BaseManager):
    pass


QueueManager.register("ClearableQueue", ClearableQueue)


def manager_clear(runs):
    out = []
    with QueueManager(ctx=CTX) as m:
        q = m.ClearableQueue()
        for _ in range(runs):
            q.fill(CLEAR_N)
            t0 = time.perf_counter_ns()
            n = q.clear()
            out.append(time.perf_counter_ns() - t0)
            assert n == CLEAR_N
    return out


def mp_drain(runs):
    out = []
    for _ in range(runs):
        q = mp.Queue()
        for i in range(CLEAR_N):
            q.put((i, "item"))
        got = 0
        t0 = time.perf_counter_ns()
        while got < CLEAR_N:
            try:
                q.get_nowait()
                got += 1
            except queue.Empty:
                pass        # the feeder thread has not written it yet
        out.append(time.perf_counter_ns() - t0)
        q.close()
        q.join_thread()
    return out


# ---- interrupt latency --------------------------------------------------------------------

def interrupt_latency(q, runs):
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    out = []
    try:
        for _ in range(runs):
            sent = []

            def fire():
                time.sleep(0.05)
                sent.append(time.perf_counter_ns())
                signal.pthread_kill(threading.main_thread().ident,
                                    signal.SIGINT)
            t = threading.Thread(target=fire)
            t.start()
            try:
                q.get(timeout=10)
            except KeyboardInterrupt:
                out.append(time.perf_counter_ns() - sent[0])
            t.join()
    finally:
        signal.signal(signal.SIGINT, old)
    return out


# ---- main ------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="fewer runs and iterations")
    ap.add_argument("--runs", type=int, default=0)
    args = ap.parse_args()
    runs = args.runs or (3 if args.quick else 5)
    k = 1 if args.quick else 4
    print(f"# py_bench: Python {sys.version.split()[0]} "
          f"({sys.executable}), {os.cpu_count()} CPUs, {runs} runs, "
          f"start method fork", flush=True)

    rows = []

    def row(name, lf, mpv, unit, bigger_better=False):
        a, b = summary(lf), summary(mpv)
        ratio = a[0] / b[0] if bigger_better else b[0] / a[0]
        rows.append((name, fmt(a, unit), fmt(b, unit), ratio))
        print(f"{name:42s} lfipc {fmt(a, unit):32s} multiprocessing "
              f"{fmt(b, unit):32s} x{ratio:,.1f}", flush=True)

    n = 50_000 * k
    row("Queue put+get, 2 processes (items/s)",
        queue_tput(lfipc.Queue, lfipc.Event, n, runs),
        queue_tput(mp.Queue, mp.Event, n // 10, runs), "k/s", True)
    n = 5_000 * k
    row("Pipe round trip, object (send/recv)",
        pipe_rtt(lfipc.Pipe, n, runs, False),
        pipe_rtt(mp.Pipe, n // 5, runs, False), "ns")
    row("Pipe round trip, 8 bytes (send_bytes)",
        pipe_rtt(lfipc.Pipe, n, runs, True),
        pipe_rtt(mp.Pipe, n // 5, runs, True), "ns")
    if len(os.sched_getaffinity(0)) >= 2 and {0, 1} <= os.sched_getaffinity(0):
        row("Pipe round trip, object, pinned to CPUs 0/1",
            pipe_rtt(lfipc.Pipe, n, runs, False, True),
            pipe_rtt(mp.Pipe, n // 5, runs, False, True), "ns")
    n = 200_000 * k
    row("Lock acquire+release, uncontended",
        lock_cost(lfipc.Lock(), n, runs), lock_cost(mp.Lock(), n, runs),
        "ns")
    n = 100_000 * k
    row("Value += 1 under get_lock()",
        value_add(lfipc.Value("q", 0), n, runs),
        value_add(mp.Value("q", 0), n, runs), "ns")
    lf = lfipc_clear(runs)
    row("clear 100,000 items: Manager-served clear()", lf,
        manager_clear(runs), "ns")
    row("clear 100,000 items: get_nowait() drain", lf, mp_drain(runs), "ns")
    row("Ctrl-C to KeyboardInterrupt in Queue.get()",
        interrupt_latency(lfipc.Queue(2), 3 * runs),
        interrupt_latency(mp.Queue(2), 3 * runs), "ns")

    print()
    print("| scenario | lfipc | multiprocessing | lfipc advantage |")
    print("|---|---:|---:|---:|")
    for name, a, b, ratio in rows:
        print(f"| {name} | {a} | {b} | {ratio:,.1f}x |")


if __name__ == "__main__":
    main()
