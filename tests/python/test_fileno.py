# SPDX-License-Identifier: MIT
"""fileno() of Queue, Connection and Event (the library's pollable fds:
level-triggered, readable while the operation would not block, owned by
the object) with select, selectors and asyncio; lfipc.wait()."""
import asyncio
import gc
import os
import select
import selectors
import threading
import time

import pytest

import helpers
import lfipc


def readable(fd, timeout=0.0):
    return bool(select.select([fd], [], [], timeout)[0])


def test_queue_fileno_follows_get(region):
    q = region.Queue(4)
    fd = q.fileno()
    assert fd == q.fileno() and fd >= 0
    with pytest.raises(lfipc.Empty):
        q.get_nowait()
    assert not readable(fd)
    q.put("x")
    assert readable(fd, 5.0)
    assert q.get_nowait() == "x"
    with pytest.raises(lfipc.Empty):
        q.get_nowait()          # the would-block answer drains the fd
    assert not readable(fd)


def test_queue_fileno_is_readable_after_shutdown(region):
    q = region.Queue(4)
    fd = q.fileno()
    with pytest.raises(lfipc.Empty):
        q.get_nowait()
    assert not readable(fd)
    q.shutdown()
    assert readable(fd, 5.0)


def test_queue_put_fileno_follows_put(region):
    q = region.Queue(1)
    fd = q.put_fileno()
    assert fd != q.fileno()
    q.put(1)
    with pytest.raises(lfipc.Full):
        q.put_nowait(2)
    assert not readable(fd)
    assert q.get() == 1
    assert readable(fd, 5.0)


def test_connection_fileno_follows_recv_with_a_selector(region):
    a, b = region.Pipe()
    sel = selectors.DefaultSelector()
    sel.register(b, selectors.EVENT_READ)   # through b.fileno()
    try:
        assert not b.poll()
        assert sel.select(0) == []
        threading.Timer(0.05, a.send, args=({"n": 1},)).start()
        ready = sel.select(10)
        assert [k.fileobj for k, _ in ready] == [b]
        assert b.recv() == {"n": 1}
        assert not b.poll()            # drains the fd
        assert sel.select(0) == []
        a.close()
        assert sel.select(10) and b.poll()   # end of file is readiness
        with pytest.raises(EOFError):
            b.recv()
    finally:
        sel.close()


def test_one_way_pipe_ends_watch_their_own_side(region):
    r, w = region.Pipe(duplex=False)
    assert readable(w.fileno(), 5.0)        # room to send
    assert w.fileno() == w.send_fileno()
    with pytest.raises(OSError):
        r.send_fileno()
    assert r.fileno() != w.fileno()


def test_event_fileno_follows_the_flag(region):
    e = region.Event()
    fd = e.fileno()
    assert not e.wait(0)
    assert not readable(fd)
    e.set()
    assert readable(fd, 5.0)
    e.clear()
    assert not e.wait(0)
    assert not readable(fd)


def test_the_fd_lives_and_dies_with_its_object(region):
    q = region.Queue(2)
    fd = q.fileno()
    os.fstat(fd)
    del q
    gc.collect()
    with pytest.raises(OSError):
        os.fstat(fd)
    q = region.Queue(2)
    q.close()
    with pytest.raises(ValueError):
        q.fileno()
    a, b = region.Pipe()
    b.fileno()
    b.close()
    with pytest.raises(OSError):
        b.fileno()


def _produce(q, n):
    for i in range(n):
        q.put(i)
        if i % 100 == 0:
            time.sleep(0.001)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_asyncio_add_reader_gets_every_item_from_another_process(region,
                                                                 method):
    n = 2000
    q = region.Queue(64)
    got = []

    async def consume():
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def on_ready():
            while True:
                try:
                    got.append(q.get_nowait())
                except lfipc.Empty:
                    break
            if len(got) == n and not done.done():
                done.set_result(None)
        loop.add_reader(q.fileno(), on_ready)
        try:
            await asyncio.wait_for(done, 60)
        finally:
            loop.remove_reader(q.fileno())

    p = helpers.start(method, _produce, q, n)
    try:
        asyncio.run(consume())
    finally:
        assert helpers.reap([p]) == [0]
    assert got == list(range(n))


def test_wait_returns_the_ready_objects(region):
    q, e = region.Queue(2), region.Event()
    a, b = region.Pipe()
    assert lfipc.wait([q, b, e], 0) == []
    assert lfipc.wait([q, b, e], 0.05) == []
    e.set()
    a.send(1)
    assert lfipc.wait([q, b, e], 10) == [b, e]
    threading.Timer(0.05, q.put, args=(7,)).start()
    assert lfipc.wait([q], 10) == [q]
    assert q.get_nowait() == 7


def test_wait_makes_no_fd_for_lfipc_objects(region):
    before = len(os.listdir("/proc/self/fd"))
    q, e = region.Queue(2), region.Event()
    q.put(1)
    assert lfipc.wait([q, e], 0) == [q]
    assert len(os.listdir("/proc/self/fd")) == before


def _exit_soon():
    time.sleep(0.1)


def test_wait_mixes_lfipc_objects_with_process_sentinels(region):
    q = region.Queue(2)
    a, b = region.Pipe()
    p = helpers.start("fork", _exit_soon)
    try:
        assert lfipc.wait([q, b, p.sentinel], 30) == [p.sentinel]
        a.send("x")
        assert lfipc.wait([q, b, p.sentinel], 0) == [b, p.sentinel]
        assert b.recv() == "x"
        # b's fd is still readable, but wait() checks through b
        assert lfipc.wait([q, b], 0) == []
        assert lfipc.wait([b, p.sentinel], 0) == [p.sentinel]
    finally:
        helpers.reap([p])


def test_wait_across_regions_and_beyond_eight_objects(region):
    other = lfipc.Region(size=4 << 20)
    try:
        qs = [region.Queue(2) for _ in range(9)]
        e = other.Event()
        assert lfipc.wait(qs + [e], 0) == []
        qs[8].put(1)
        e.set()
        assert lfipc.wait(qs + [e], 10) == [qs[8], e]
    finally:
        del e
        other.close()
