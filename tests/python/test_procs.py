# SPDX-License-Identifier: MIT
"""Every kind of object passes to children under fork, spawn and
forkserver, and to concurrent.futures.ProcessPoolExecutor initialisers
and tasks."""
import concurrent.futures as cf
import multiprocessing as mp

import pytest

import helpers
import lfipc


def _use_everything(objs, out):
    q, jq, sq, lock, rlock, sem, bsem, ev, cond, bar, val, arr, raw, conn = objs
    q.put("q")
    jq.put("jq")
    sq.put("sq")
    with lock, rlock, rlock:
        val.value += 1
    sem.release()
    assert bsem.acquire(timeout=60)
    ev.set()
    with cond:
        cond.notify_all()
    arr[0] = 11
    raw[1] = 22
    conn.send("conn")
    out.put(bar.wait(120))


@pytest.mark.parametrize("method", helpers.METHODS)
def test_every_object_reaches_the_child(method):
    a, b = lfipc.Pipe()
    objs = (lfipc.Queue(4), lfipc.JoinableQueue(4), lfipc.SimpleQueue(),
            lfipc.Lock(), lfipc.RLock(), lfipc.Semaphore(0),
            lfipc.BoundedSemaphore(1), lfipc.Event(), lfipc.Condition(),
            lfipc.Barrier(2), lfipc.Value("i", 5), lfipc.Array("i", 2),
            lfipc.RawArray("i", 2), b)
    out = lfipc.Queue(2)
    p = helpers.start(method, _use_everything, objs, out)
    q, jq, sq, lock, rlock, sem, bsem, ev, cond, bar, val, arr, raw, _ = objs
    idx = bar.wait(120)
    assert sorted([idx, out.get(timeout=120)]) == [0, 1]
    helpers.reap([p])
    assert (q.get(), jq.get(), sq.get()) == ("q", "jq", "sq")
    assert sem.get_value() == 1 and bsem.get_value() == 0
    assert ev.is_set() and val.value == 6
    assert arr[0] == 11 and raw[1] == 22
    assert a.recv() == "conn"
    assert not lock.locked() and not rlock.locked()


_init_state = {}


def _init(q, v):
    _init_state["q"], _init_state["v"] = q, v


def _task(i):
    with _init_state["v"].get_lock():
        _init_state["v"].value += i
    _init_state["q"].put(i)
    return i * 2


@pytest.mark.parametrize("method", helpers.METHODS)
def test_process_pool_executor_initialiser(method):
    q = lfipc.Queue(64)
    v = lfipc.Value("q", 0)
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context(method),
                                initializer=_init, initargs=(q, v)) as ex:
        assert list(ex.map(_task, range(10), timeout=120)) == \
            [i * 2 for i in range(10)]
    assert sorted(q.get(timeout=10) for _ in range(10)) == list(range(10))
    assert v.value == sum(range(10))


def _task_with_queue(q, i):
    q.put(i)
    return i


def test_objects_as_executor_task_arguments():
    # pickled outside process creation: anonymous regions are reopened
    # through /proc/<pid>/fd of the sender
    q = lfipc.Queue(16)
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as ex:
        futs = [ex.submit(_task_with_queue, q, i) for i in range(4)]
        assert [f.result(timeout=120) for f in futs] == list(range(4))
    assert sorted(q.get(timeout=10) for _ in range(4)) == list(range(4))
