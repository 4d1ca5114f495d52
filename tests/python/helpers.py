# SPDX-License-Identifier: MIT
"""Helpers of the binding's tests: region names that the leftover check
of tests/run-all recognises, and child processes reaped with a deadline
(a hung child is killed and fails the test, never hangs the suite)."""
import itertools
import multiprocessing as mp
import os
import signal
import time

_seq = itertools.count()

METHODS = ("fork", "spawn", "forkserver")


def shm_name():
    run = os.environ.get("LFIPC_TEST_RUN", "manual")
    return f"/lfipc-t-{run}-py{os.getpid()}-{next(_seq)}"


def start(method, target, *args):
    p = mp.get_context(method).Process(target=target, args=args)
    p.start()
    return p


def reap(procs, timeout=120.0):
    """Join every process by a common deadline; kill the late ones and
    fail. Returns the exit codes."""
    deadline = time.monotonic() + timeout
    late = []
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            late.append(p)
    for p in late:
        os.kill(p.pid, signal.SIGKILL)
        p.join(5)
    assert not late, f"{len(late)} child process(es) still running after {timeout} s"
    return [p.exitcode for p in procs]


def run(method, target, *args, n=1, timeout=120.0):
    """Start n processes running target(*args) (n > 1: target(i, *args)),
    reap them, and assert that each exited with 0."""
    if n == 1:
        procs = [start(method, target, *args)]
    else:
        procs = [start(method, target, i, *args) for i in range(n)]
    codes = reap(procs, timeout)
    assert codes == [0] * len(procs), f"exit codes {codes}"
