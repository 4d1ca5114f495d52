# SPDX-License-Identifier: MIT
"""Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition, Barrier:
multiprocessing's documented semantics, in threads and across
processes."""
import pickle
import threading
import time

import pytest

import helpers
import lfipc


# ---- Lock and RLock ------------------------------------------------------------

def test_lock_acquire_release_and_context_manager(region):
    lock = region.Lock()
    assert lock.acquire() is True
    assert lock.locked()
    lock.release()
    assert not lock.locked()
    with lock:
        assert lock.locked()
    assert not lock.locked()
    assert lock.owner_died is False


def test_lock_nonblocking_and_timed_acquire_from_another_thread(region):
    lock = region.Lock()
    lock.acquire()
    res = []

    def other():
        res.append(lock.acquire(False))
        res.append(lock.acquire(block=False))
        t0 = time.monotonic()
        res.append(lock.acquire(timeout=0.2))
        res.append(time.monotonic() - t0)
    t = threading.Thread(target=other)
    t.start()
    t.join(30)
    assert res[:3] == [False, False, False]
    assert 0.2 <= res[3] < 10
    lock.release()


def test_lock_waiter_gets_it_when_released(region):
    lock = region.Lock()
    lock.acquire()
    got = []
    t = threading.Thread(target=lambda: got.append(lock.acquire(timeout=10)))
    t.start()
    time.sleep(0.1)
    lock.release()
    t.join(30)
    assert got == [True]
    assert lock.locked()


def test_lock_reacquired_by_its_owner_does_not_deadlock(region):
    lock = region.Lock()
    lock.acquire()
    assert lock.acquire(False) is False
    t0 = time.monotonic()
    assert lock.acquire(timeout=0.1) is False
    assert time.monotonic() - t0 >= 0.1
    with pytest.raises(RuntimeError):
        lock.acquire()
    lock.release()


def test_releasing_an_unlocked_lock_raises_valueerror(region):
    lock = region.Lock()
    with pytest.raises(ValueError):
        lock.release()


def test_releasing_another_threads_lock_raises(region):
    lock = region.Lock()
    lock.acquire()
    err = []

    def other():
        try:
            lock.release()
        except RuntimeError as e:
            err.append(e)
    t = threading.Thread(target=other)
    t.start()
    t.join(30)
    assert len(err) == 1
    assert lock.locked()
    lock.release()


def test_rlock_is_recursive(region):
    rl = region.RLock()
    assert rl.acquire() and rl.acquire() and rl.acquire(False)
    rl.release()
    rl.release()
    assert rl.locked()
    rl.release()
    assert not rl.locked()
    with pytest.raises(AssertionError):
        rl.release()
    with rl:
        with rl:
            assert rl.locked()
    assert not rl.locked()


def test_rlock_held_by_another_thread(region):
    rl = region.RLock()
    rl.acquire()
    res = []
    t = threading.Thread(target=lambda: res.append(rl.acquire(timeout=0.1)))
    t.start()
    t.join(30)
    assert res == [False]
    rl.release()


def test_lock_pickles_to_the_same_lock(region):
    lock = region.Lock()
    l2 = pickle.loads(pickle.dumps(lock))
    assert type(l2) is lfipc.Lock and l2.name == lock.name
    lock.acquire()
    assert l2.locked()
    lock.release()
    assert type(pickle.loads(pickle.dumps(region.RLock()))) is lfipc.RLock


def test_lock_opened_as_the_wrong_type_fails(region):
    region.Lock(name="plain")
    with pytest.raises(OSError):
        region.RLock(name="plain", create=False)
    assert region.Lock(name="plain", create=False).name == "plain"


# ---- Semaphore ------------------------------------------------------------------

def test_semaphore_counts(region):
    s = region.Semaphore(2)
    assert s.get_value() == 2
    assert s.acquire() and s.acquire()
    assert s.get_value() == 0
    assert s.acquire(False) is False
    t0 = time.monotonic()
    assert s.acquire(timeout=0.1) is False
    assert time.monotonic() - t0 >= 0.1
    s.release()
    s.release()
    s.release()             # a Semaphore may go above its initial value
    assert s.get_value() == 3
    with s:
        assert s.get_value() == 2
    assert s.get_value() == 3


def test_semaphore_is_released_by_another_thread(region):
    s = region.Semaphore(0)
    threading.Timer(0.1, s.release).start()
    assert s.acquire(timeout=10)


def test_bounded_semaphore_refuses_too_many_releases(region):
    s = region.BoundedSemaphore(1)
    with pytest.raises(ValueError):
        s.release()
    s.acquire()
    s.release()
    assert s.get_value() == 1
    assert isinstance(s, lfipc.Semaphore)


def test_semaphore_value_must_be_nonnegative(region):
    with pytest.raises(ValueError):
        region.Semaphore(-1)
    assert region.Semaphore(0).get_value() == 0


# ---- Event --------------------------------------------------------------------

def test_event(region):
    e = region.Event()
    assert not e.is_set()
    assert e.wait(0) is False
    t0 = time.monotonic()
    assert e.wait(0.1) is False
    assert time.monotonic() - t0 >= 0.1
    e.set()
    assert e.is_set() and e.wait() is True and e.wait(0) is True
    e.clear()
    assert not e.is_set()


def test_event_wakes_every_waiter(region):
    e = region.Event()
    res = []
    ts = [threading.Thread(target=lambda: res.append(e.wait(10)))
          for _ in range(4)]
    for t in ts:
        t.start()
    time.sleep(0.1)
    e.set()
    for t in ts:
        t.join(30)
    assert res == [True] * 4


# ---- Condition ----------------------------------------------------------------

def test_condition_wait_and_notify(region):
    c = region.Condition()
    state = []

    def waiter():
        with c:
            ok = c.wait_for(lambda: bool(state), timeout=10)
            state.append(("woke", ok))
    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.1)
    with c:
        state.append("go")
        c.notify()
    t.join(30)
    assert state == ["go", ("woke", True)]


def test_condition_wait_times_out_with_the_lock_held(region):
    c = region.Condition()
    with c:
        t0 = time.monotonic()
        assert c.wait(0.1) is False
        assert time.monotonic() - t0 >= 0.1
        assert c.wait_for(lambda: False, timeout=0.1) is False
        c.notify()          # still held: no AssertionError


def test_condition_needs_the_lock(region):
    c = region.Condition()
    with pytest.raises(AssertionError):
        c.wait(0.01)
    with pytest.raises(AssertionError):
        c.notify()
    with pytest.raises(AssertionError):
        c.notify_all()


def test_condition_notify_all_and_notify_n(region):
    c = region.Condition(region.Lock())
    woke = []

    def waiter(i):
        with c:
            if c.wait(10):
                woke.append(i)
    ts = [threading.Thread(target=waiter, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    time.sleep(0.3)
    with c:
        c.notify(2)
    time.sleep(0.3)
    assert len(woke) == 2
    with c:
        c.notify_all()
    for t in ts:
        t.join(30)
    assert sorted(woke) == [0, 1, 2, 3]


def test_condition_with_an_rlock_held_twice(region):
    rl = region.RLock()
    c = region.Condition(rl)
    with rl:
        with c:
            assert c.wait(0.01) is False
        assert rl.locked()


def test_condition_lock_must_be_an_lfipc_lock(region):
    with pytest.raises(TypeError):
        region.Condition(threading.Lock())


# ---- Barrier ------------------------------------------------------------------

def test_barrier_indexes_and_action(region):
    ran = []
    b = region.Barrier(3, action=lambda: ran.append(1))
    idx = []
    ts = [threading.Thread(target=lambda: idx.append(b.wait(10)))
          for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert sorted(idx) == [0, 1, 2]
    assert ran == [1]
    assert b.parties == 3 and b.n_waiting == 0 and not b.broken


def test_barrier_timeout_breaks_it(region):
    b = region.Barrier(2, timeout=0.1)
    with pytest.raises(threading.BrokenBarrierError):
        b.wait()
    assert b.broken
    with pytest.raises(threading.BrokenBarrierError):
        b.wait(5)
    b.reset()
    assert not b.broken


def test_barrier_abort_wakes_the_waiters(region):
    b = region.Barrier(3)
    errs = []

    def w():
        try:
            b.wait(10)
        except threading.BrokenBarrierError:
            errs.append(1)
    ts = [threading.Thread(target=w) for _ in range(2)]
    for t in ts:
        t.start()
    time.sleep(0.2)
    assert b.n_waiting == 2
    b.abort()
    for t in ts:
        t.join(30)
    assert errs == [1, 1]


def test_barrier_action_exception_reaches_its_party(region):
    def boom():
        raise KeyError("action")
    b = region.Barrier(2, action=boom)
    out = []

    def w():
        try:
            b.wait(10)
            out.append("ok")
        except KeyError:
            out.append("key")
        except threading.BrokenBarrierError:
            out.append("broken")
    ts = [threading.Thread(target=w) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert sorted(out) == ["broken", "key"]


def _barrier_party(b, q):
    q.put(b.wait(120))


# ---- across processes -----------------------------------------------------------

def _locked_adder(i, lock, v, n):
    for _ in range(n):
        with lock:
            x = v.value
            v.value = x + 1


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_lock_gives_mutual_exclusion_across_processes(method):
    lock = lfipc.Lock()
    v = lfipc.Value("q", 0, lock=False)
    helpers.run(method, _locked_adder, lock, v, 2000, n=3)
    assert v.value == 6000


def _sem_worker(i, sem, inside, most):
    for _ in range(50):
        with sem:
            with inside.get_lock():
                inside.value += 1
                most.value = max(most.value, inside.value)
            time.sleep(0.0005)
            with inside.get_lock():
                inside.value -= 1


def test_semaphore_bounds_concurrency_across_processes():
    sem = lfipc.Semaphore(2)
    inside, most = lfipc.Value("i", 0), lfipc.Value("i", 0)
    helpers.run("fork", _sem_worker, sem, inside, most, n=4)
    assert inside.value == 0 and 1 <= most.value <= 2


def _event_setter(e):
    time.sleep(0.1)
    e.set()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_event_across_processes(method):
    e = lfipc.Event()
    p = helpers.start(method, _event_setter, e)
    assert e.wait(120)
    helpers.reap([p])


def _cond_producer(c, items):
    for i in range(5):
        with c:
            items[i] = i + 1
            c.notify_all()
        time.sleep(0.01)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_condition_across_processes(method):
    c = lfipc.Condition()
    items = lfipc.Array("i", 5, lock=False)
    p = helpers.start(method, _cond_producer, c, items)
    with c:
        assert c.wait_for(lambda: items[4] == 5, timeout=120)
    assert list(items) == [1, 2, 3, 4, 5]
    helpers.reap([p])


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_barrier_across_processes(method):
    b = lfipc.Barrier(3)
    q = lfipc.Queue(8)
    procs = [helpers.start(method, _barrier_party, b, q) for _ in range(2)]
    mine = b.wait(120)
    others = [q.get(timeout=120) for _ in range(2)]
    helpers.reap(procs)
    assert sorted(others + [mine]) == [0, 1, 2]
