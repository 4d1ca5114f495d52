# SPDX-License-Identifier: MIT
"""Blocking calls release the GIL and Ctrl-C (SIGINT) interrupts them
with KeyboardInterrupt. The library retries EINTR itself, so the binding
waits in chunks of at most 20 ms and runs signal handlers in between:
the tests bound the delay generously (1 s, the machine is shared);
bench/py_bench.py measures it."""
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
}


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
