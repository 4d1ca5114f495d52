# SPDX-License-Identifier: MIT
"""Blocking calls release the GIL and Ctrl-C (SIGINT) interrupts them
with KeyboardInterrupt: the binding sleeps in one interruptible library
call (lfipc_thread_set_interruptible) and runs the signal handlers when
it returns -EINTR. The tests bound the delay generously (1 s, the
machine is shared); bench/py_bench.py measures it. An idle blocked call
wakes no more often than the library's own wait does (at most once a
second)."""
import os
import signal
import threading
import time

import pytest

import lfipc

BOUND = 1.0


def _interrupt_after(delay):
    """Send SIGINT to this process after delay seconds; returns a list
    that receives the moment it was sent."""
    sent = []

    def fire():
        time.sleep(delay)
        sent.append(time.monotonic())
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
    threading.Thread(target=fire, daemon=True).start()
    return sent


@pytest.fixture(autouse=True)
def default_sigint():
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def _check_interrupts(call):
    sent = _interrupt_after(0.2)
    with pytest.raises(KeyboardInterrupt):
        call()
    late = time.monotonic() - sent[0]
    assert late < BOUND, f"KeyboardInterrupt {late:.3f} s after SIGINT"


def _full_queue(region):
    q = region.Queue(1)
    q.put(0)
    return q


def _held_lock(region, kind):
    lock = getattr(region, kind)()
    t = threading.Thread(target=lock.acquire)
    t.start()
    t.join()
    return lock


CASES = {
    "Queue.get": lambda r: r.Queue(2).get,
    "Queue.put": lambda r: lambda: _full_queue(r).put(1),
    "Queue.get_many": lambda r: r.Queue(2).get_many,
    "Queue.put_many": lambda r: lambda: _full_queue(r).put_many([1, 2]),
    "SimpleQueue.get": lambda r: r.SimpleQueue().get,
    "JoinableQueue.join": lambda r: _joinable_pending(r).join,
    "Lock.acquire": lambda r: _held_lock(r, "Lock").acquire,
    "RLock.acquire": lambda r: _held_lock(r, "RLock").acquire,
    "Semaphore.acquire": lambda r: r.Semaphore(0).acquire,
    "Event.wait": lambda r: r.Event().wait,
    "Connection.recv": lambda r: r.Pipe()[0].recv,
    "Connection.poll": lambda r: lambda: r.Pipe()[0].poll(None),
    "wait": lambda r: lambda: lfipc.wait([r.Queue(2), r.Event()]),
    "wait with an fd": lambda r: lambda: lfipc.wait([r.Queue(2),
                                                     _idle_fd()]),
}


_fds = []


def _idle_fd():
    """The read end of a pipe nobody writes (closed at exit)."""
    if not _fds:
        _fds.extend(os.pipe())
    return _fds[0]


def _joinable_pending(region):
    q = region.JoinableQueue(2)
    q.put(1)
    return q


@pytest.mark.parametrize("name", sorted(CASES))
def test_ctrl_c_interrupts_a_blocked_call(region, name):
    call = CASES[name](region)
    _check_interrupts(call)


def test_ctrl_c_interrupts_condition_wait_with_the_lock_held_after(region):
    c = region.Condition()
    with c:
        _check_interrupts(c.wait)
        # as threading's: the lock is held again when the exception
        # propagates
        c.notify()


def test_ctrl_c_interrupts_barrier_wait_and_breaks_the_barrier(region):
    b = region.Barrier(2)
    _check_interrupts(b.wait)
    assert b.broken


def test_blocked_calls_release_the_gil(region):
    q = region.Queue(2)
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.001)
    t = threading.Thread(target=tick)
    t.start()
    time.sleep(0.05)
    t0 = time.monotonic()
    with pytest.raises(lfipc.Empty):
        q.get(timeout=0.5)
    t1 = time.monotonic()
    stop.set()
    t.join(10)
    # the other thread kept running in the middle of the wait
    inside = [x for x in ticks if t0 + 0.1 < x < t1 - 0.1]
    assert len(inside) > 10


def _voluntary_switches(tid):
    with open(f"/proc/self/task/{tid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches in /proc")


def _idle_recv(region):
    a, b = region.Pipe()
    return b.recv, lambda: a.send(1)


def _idle_get(region):
    q = region.Queue(2)
    return q.get, lambda: q.put(1)


def _idle_wait(region):
    q = region.Queue(2)
    return lambda: lfipc.wait([q]), lambda: q.put(1)


def _idle_event(region):
    e = region.Event()
    return e.wait, e.set


def _idle_lock(region):
    lock = region.Lock()
    held, release = threading.Event(), threading.Event()

    def own():
        with lock:
            held.set()
            release.wait(60)
    threading.Thread(target=own, daemon=True).start()
    assert held.wait(10)
    return lock.acquire, release.set


IDLE_CASES = {
    "Queue.get": _idle_get,
    "Connection.recv": _idle_recv,
    "Event.wait": _idle_event,
    "Lock.acquire": _idle_lock,
    "wait": _idle_wait,
}


@pytest.mark.parametrize("name", sorted(IDLE_CASES))
def test_an_idle_blocked_call_wakes_at_most_once_a_second(region, name):
    # (Semaphore, Condition and Barrier are not here: the library's own
    # waits for them still sleep in short slices.)
    call, release = IDLE_CASES[name](region)
    tid = []
    started = threading.Event()

    def run():
        tid.append(threading.get_native_id())
        started.set()
        call()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert started.wait(10)
    time.sleep(0.3)                     # asleep in the library by now
    t0, n0 = time.monotonic(), _voluntary_switches(tid[0])
    time.sleep(2)
    t1, n1 = time.monotonic(), _voluntary_switches(tid[0])
    assert t.is_alive()
    release()
    t.join(30)
    assert not t.is_alive()
    # every wake-up of a sleeping thread ends in a voluntary switch when
    # it sleeps again; the old 20 ms chunks made about 100 here
    assert n1 - n0 <= int(t1 - t0) + 1, \
        f"{n1 - n0} wake-ups in {t1 - t0:.2f} s"
