# SPDX-License-Identifier: MIT
"""Queue, SimpleQueue and JoinableQueue: multiprocessing's semantics and
lfipc's additions (clear, exact qsize, shutdown, bulk, large pickles)."""
import pickle
import queue
import threading
import time

import pytest

import helpers
import lfipc


def test_fifo_order_and_types(region):
    q = region.Queue(100)
    items = [1, "two", (3, 4.0), {"five": [5]}, None, b"\x00" * 10]
    for it in items:
        q.put(it)
    assert q.qsize() == len(items)
    assert [q.get() for _ in items] == items
    assert q.empty()


def test_get_nowait_on_empty_raises_empty(region):
    q = region.Queue(4)
    with pytest.raises(queue.Empty):
        q.get_nowait()
    with pytest.raises(queue.Empty):
        q.get(False)
    with pytest.raises(queue.Empty):
        q.get(block=True, timeout=0)


def test_put_nowait_on_full_raises_full_and_keeps_items(region):
    q = region.Queue(3)
    for i in range(3):
        q.put_nowait(i)
    assert q.full() and q.qsize() == 3
    with pytest.raises(queue.Full):
        q.put_nowait(99)
    with pytest.raises(queue.Full):
        q.put(99, False)
    assert [q.get() for _ in range(3)] == [0, 1, 2]


def test_timed_get_waits_at_least_its_timeout(region):
    q = region.Queue(4)
    t0 = time.monotonic()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.2)
    dt = time.monotonic() - t0
    assert 0.2 <= dt < 5


def test_timed_put_waits_at_least_its_timeout(region):
    q = region.Queue(1)
    q.put(0)
    t0 = time.monotonic()
    with pytest.raises(queue.Full):
        q.put(1, timeout=0.2)
    assert 0.2 <= time.monotonic() - t0 < 5


def test_blocked_get_is_woken_by_a_put_from_another_thread(region):
    q = region.Queue(4)
    threading.Timer(0.1, q.put, args=("late",)).start()
    assert q.get(timeout=10) == "late"


def test_maxsize_zero_means_the_default_capacity(region):
    q = region.Queue()
    assert q.maxsize == lfipc._lfipc.QUEUE_DEFAULT_CAPACITY


def test_qsize_is_exact(region):
    q = region.Queue(1000)
    for i in range(777):
        q.put(i)
    assert q.qsize() == 777
    for i in range(300):
        q.get()
    assert q.qsize() == 477


def test_close_makes_put_and_get_raise_valueerror(region):
    q = region.Queue(4)
    q.put(1)
    with pytest.raises(AssertionError):
        q.join_thread()          # not closed yet, as multiprocessing
    q.close()
    assert q.closed
    with pytest.raises(ValueError):
        q.put(2)
    with pytest.raises(ValueError):
        q.get()
    q.join_thread()
    q.cancel_join_thread()
    # another handle of the same queue is not closed
    q2 = pickle.loads(pickle.dumps(q))
    assert q2.get() == 1


def test_clear_returns_the_number_discarded(region):
    q = region.Queue(1000)
    for i in range(500):
        q.put(i)
    assert q.clear() == 500
    assert q.qsize() == 0 and q.empty()
    assert q.clear() == 0
    q.put("after")
    assert q.get() == "after"


def test_clear_while_threads_put_and_get_counts_everything(region):
    q = region.Queue(64)
    n_put = 20000
    got = []
    stop = threading.Event()

    def producer():
        for i in range(n_put):
            q.put(i)
        stop.set()

    def consumer():
        while True:
            try:
                got.append(q.get(timeout=0.05))
            except queue.Empty:
                if stop.is_set() and q.empty():
                    return

    cleared = 0
    ts = [threading.Thread(target=producer), threading.Thread(target=consumer)]
    for t in ts:
        t.start()
    while not stop.is_set():
        cleared += q.clear()
        time.sleep(0.001)
    for t in ts:
        t.join(60)
    cleared += q.clear()
    assert len(got) + cleared == n_put
    assert len(set(got)) == len(got)
    assert got == sorted(got)     # one producer: FIFO kept across clears


def test_large_pickles_round_trip_through_spill_blocks(region):
    q = region.Queue(8)
    free0 = region.stats()["bytes_free"]
    big = [bytes([i % 251]) * (100_000 + i) for i in range(3)]
    for b in big:
        q.put(b)
    assert q.qsize() == 3
    assert [q.get() for _ in big] == big
    # the spill blocks were freed by the consumer
    assert region.stats()["bytes_free"] == free0


def test_a_pickle_of_several_megabytes_arrives_whole(region):
    q = lfipc.Region(size=64 << 20).Queue(4)
    payload = {"data": bytes(range(256)) * 20000, "tail": "end"}
    q.put(payload)
    assert q.get(timeout=10) == payload


def test_a_pickle_larger_than_the_region_raises_not_truncates(region):
    q = region.Queue(4)
    with pytest.raises(MemoryError):
        q.put(b"x" * (16 << 20))
    assert q.qsize() == 0
    q.put("ok")
    assert q.get() == "ok"


def test_clear_frees_the_blocks_of_spilled_messages(region):
    q = region.Queue(32)
    free0 = region.stats()["bytes_free"]
    for i in range(10):
        q.put(b"y" * 5000)
        q.put(i)
    assert region.stats()["bytes_free"] < free0
    assert q.clear() == 20
    assert region.stats()["bytes_free"] == free0
    q.put("x")
    assert q.get() == "x"


def test_msg_size_sets_what_goes_in_place(region):
    q = region.Queue(4, msg_size=4096)
    assert q.msg_size == 4096
    free0 = region.stats()["bytes_free"]
    q.put(b"z" * 4000)          # fits a slot: no spill block
    assert region.stats()["bytes_free"] == free0
    assert q.get() == b"z" * 4000
    with pytest.raises(ValueError):
        region.Queue(4, msg_size=8)


def test_shutdown_fails_puts_and_drains_gets(region):
    q = region.Queue(8)
    q.put(1)
    q.put(2)
    assert not q.is_shutdown
    q.shutdown()
    assert q.is_shutdown
    with pytest.raises(lfipc.ShutDown):
        q.put(3)
    assert q.get() == 1
    assert q.get() == 2
    with pytest.raises(lfipc.ShutDown):
        q.get()
    with pytest.raises(lfipc.ShutDown):
        q.get(timeout=5)


def test_shutdown_immediate_discards_what_is_left(region):
    q = region.Queue(8)
    for i in range(5):
        q.put(i)
    q.shutdown(immediate=True)
    assert q.qsize() == 0
    with pytest.raises(lfipc.ShutDown):
        q.get_nowait()


def test_shutdown_wakes_every_blocked_get_and_put(region):
    q = region.Queue(1)
    full = region.Queue(1)
    full.put(0)
    results = []

    def getter():
        try:
            q.get()
        except lfipc.ShutDown:
            results.append("get")

    def putter():
        try:
            full.put(1)
        except lfipc.ShutDown:
            results.append("put")

    ts = [threading.Thread(target=getter) for _ in range(3)]
    ts.append(threading.Thread(target=putter))
    for t in ts:
        t.start()
    time.sleep(0.2)
    q.shutdown()
    full.shutdown()
    for t in ts:
        t.join(10)
    assert not any(t.is_alive() for t in ts)
    assert sorted(results) == ["get", "get", "get", "put"]


def test_put_many_and_get_many_keep_order(region):
    q = region.Queue(1000)
    items = list(range(300)) + [b"L" * 3000]
    assert q.put_many(items) == len(items)
    assert q.qsize() == len(items)
    out = []
    while len(out) < len(items):
        out += q.get_many(64)
    assert out == items
    with pytest.raises(queue.Empty):
        q.get_many(10, block=False)


def test_put_many_into_a_full_queue(region):
    q = region.Queue(10)
    assert q.put_many(range(25), block=False) == 10
    with pytest.raises(queue.Full):
        q.put_many([1], block=False)
    t0 = time.monotonic()
    with pytest.raises(queue.Full):
        q.put_many([1, 2], timeout=0.1)
    assert time.monotonic() - t0 >= 0.1
    assert q.get_many(100) == list(range(10))


def test_put_many_waits_for_room_until_all_are_in(region):
    q = region.Queue(4)
    got = []

    def consumer():
        for _ in range(40):
            got.append(q.get(timeout=10))
    t = threading.Thread(target=consumer)
    t.start()
    assert q.put_many(range(40)) == 40
    t.join(10)
    assert got == list(range(40))


def test_unpicklable_objects_raise_in_put_and_leave_the_queue_alone(region):
    q = region.Queue(4)
    with pytest.raises((TypeError, pickle.PicklingError, AttributeError)):
        q.put(lambda: 1)
    assert q.qsize() == 0


def test_joinable_queue_task_done_and_join(region):
    q = region.JoinableQueue(10)
    for i in range(5):
        q.put(i)
    assert q.join(timeout=0.05) is False
    for _ in range(5):
        q.get()
        q.task_done()
    assert q.join(timeout=1) is True
    q.join()
    with pytest.raises(ValueError):
        q.task_done()


def test_joinable_queue_join_waits_for_a_worker_thread(region):
    q = region.JoinableQueue(100)
    done = []

    def worker():
        while True:
            item = q.get()
            if item is None:
                q.task_done()
                return
            done.append(item)
            q.task_done()
    t = threading.Thread(target=worker)
    t.start()
    for i in range(50):
        q.put(i)
    q.put(None)
    q.join()
    assert done == list(range(50))
    t.join(10)


def test_joinable_queue_clear_counts_as_done(region):
    q = region.JoinableQueue(10)
    for i in range(7):
        q.put(i)
    q.put(b"s" * 1000)          # spilled: clear drains it
    q.get()
    q.task_done()
    assert q.clear() == 7
    assert q.join(timeout=1) is True


def test_simple_queue(region):
    q = region.SimpleQueue()
    assert q.empty()
    q.put([1, 2])
    assert not q.empty()
    assert q.get() == [1, 2]
    q.close()
    with pytest.raises(ValueError):
        q.put(1)


def test_module_level_queue_uses_the_default_region():
    q = lfipc.Queue(3)
    assert q.region is lfipc.default_region()
    q.put("d")
    assert q.get() == "d"


def test_pickled_queue_is_the_same_queue(region):
    q = region.Queue(4)
    q2 = pickle.loads(pickle.dumps(q))
    assert q2.name == q.name and q2 is not q
    q.put("via q")
    assert q2.get() == "via q"
    jq = region.JoinableQueue(4)
    assert type(pickle.loads(pickle.dumps(jq))) is lfipc.JoinableQueue


def test_lfipc_objects_travel_through_a_queue(region):
    q = region.Queue(4)
    lock = region.Lock()
    q.put(lock)
    lock2 = q.get()
    assert lock2.name == lock.name
    assert lock.acquire()
    assert lock2.locked()
    lock.release()


def test_open_by_name(region):
    q = region.Queue(5, name="jobs")
    q2 = region.Queue(name="jobs", create=False)
    q.put(7)
    assert q2.get() == 7
    with pytest.raises(FileExistsError):
        region.Queue(5, name="jobs")
    with pytest.raises(FileNotFoundError):
        region.Queue(name="nope", create=False)


def test_help_documents_the_methods():
    doc = lfipc.Queue.__doc__ + lfipc.Queue.clear.__doc__
    assert "clear()" in doc and "discarded" in doc
    assert "queue.Full" in lfipc.Queue.put.__doc__


def test_fileno_is_not_available_yet(region):
    import io
    with pytest.raises(io.UnsupportedOperation):
        region.Queue(2).fileno()


# ---- across processes -------------------------------------------------------

NPROD, NCONS, PER = 3, 2, 3000


def _producer(i, q):
    for s in range(PER):
        q.put((i, s, (i * 7919 + s) % 65521))


def _consumer(i, q, out):
    got = []
    while True:
        item = q.get(timeout=120)
        if item is None:
            break
        got.append(item)
    out.put(got)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_producers_and_consumers_across_processes(method):
    q = lfipc.Queue(256)
    out = lfipc.Queue(16)
    cons = [helpers.start(method, _consumer, i, q, out) for i in range(NCONS)]
    prods = [helpers.start(method, _producer, i, q) for i in range(NPROD)]
    assert helpers.reap(prods, 150) == [0] * NPROD
    for _ in range(NCONS):
        q.put(None)
    results = [out.get(timeout=60) for _ in range(NCONS)]
    assert helpers.reap(cons, 60) == [0] * NCONS
    seen = {}
    for got in results:
        last = {}
        for p, s, c in got:
            assert c == (p * 7919 + s) % 65521
            assert s > last.get(p, -1)      # per-producer order
            last[p] = s
            seen[(p, s)] = seen.get((p, s), 0) + 1
    assert len(seen) == NPROD * PER and set(seen.values()) == {1}


def _big_echo(q_in, q_out):
    q_out.put(q_in.get(timeout=120))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_large_pickles_across_processes(method):
    q_in, q_out = lfipc.Queue(2), lfipc.Queue(2)
    payload = bytes(range(256)) * 4096        # 1 MiB
    p = helpers.start(method, _big_echo, q_in, q_out)
    q_in.put(payload)
    assert q_out.get(timeout=120) == payload
    assert helpers.reap([p]) == [0]
