# SPDX-License-Identifier: MIT
"""Pipe and Connection: multiprocessing.connection's semantics."""
import array
import io
import pickle

import pytest

import helpers
import lfipc
from multiprocessing import BufferTooShort


def test_send_and_recv_objects_both_ways(region):
    a, b = region.Pipe()
    a.send({"x": [1, 2, 3]})
    assert b.recv() == {"x": [1, 2, 3]}
    b.send(("reply", None))
    assert a.recv() == ("reply", None)
    assert a.readable and a.writable and b.readable and b.writable


def test_messages_arrive_in_order(region):
    a, b = region.Pipe()
    for i in range(200):
        a.send(i)
    assert [b.recv() for _ in range(200)] == list(range(200))


def test_send_bytes_with_offset_and_size(region):
    a, b = region.Pipe()
    a.send_bytes(b"0123456789")
    a.send_bytes(b"0123456789", 3)
    a.send_bytes(b"0123456789", 2, 4)
    a.send_bytes(array.array("i", [1, 2, 3]), 4, 4)
    a.send_bytes(b"")
    assert b.recv_bytes() == b"0123456789"
    assert b.recv_bytes() == b"3456789"
    assert b.recv_bytes() == b"2345"
    assert b.recv_bytes() == array.array("i", [2]).tobytes()
    assert b.recv_bytes() == b""


@pytest.mark.parametrize("args,msg", [
    ((-1,), "offset is negative"),
    ((11,), "buffer length < offset"),
    ((0, -1), "size is negative"),
    ((5, 6), "buffer length < offset + size"),
])
def test_send_bytes_checks_its_arguments(region, args, msg):
    a, b = region.Pipe()
    with pytest.raises(ValueError) as ei:
        a.send_bytes(b"0123456789", *args)
    assert str(ei.value) == msg


def test_recv_bytes_maxlength(region):
    a, b = region.Pipe()
    a.send_bytes(b"short")
    assert b.recv_bytes(10) == b"short"
    with pytest.raises(ValueError):
        b.recv_bytes(-1)
    a.send_bytes(b"much too long")
    with pytest.raises(OSError, match="bad message length"):
        b.recv_bytes(4)
    with pytest.raises(OSError):     # receiving is off, as multiprocessing
        b.recv_bytes()


def test_recv_bytes_into_with_offset(region):
    a, b = region.Pipe()
    buf = bytearray(10)
    a.send_bytes(b"abc")
    assert b.recv_bytes_into(buf) == 3
    a.send_bytes(b"xyz")
    assert b.recv_bytes_into(buf, 5) == 3
    assert bytes(buf) == b"abc\0\0xyz\0\0"
    with pytest.raises(ValueError):
        b.recv_bytes_into(buf, -1)
    with pytest.raises(ValueError):
        b.recv_bytes_into(buf, 11)


def test_recv_bytes_into_too_small_raises_buffertooshort(region):
    a, b = region.Pipe()
    a.send_bytes(b"0123456789")
    a.send_bytes(b"next")
    with pytest.raises(BufferTooShort) as ei:
        b.recv_bytes_into(bytearray(4))
    assert ei.value.args[0] == b"0123456789"
    assert b.recv_bytes() == b"next"


def test_poll(region):
    a, b = region.Pipe()
    assert b.poll() is False
    assert b.poll(0.05) is False
    a.send(1)
    assert b.poll() is True and b.poll(None) is True
    assert b.recv() == 1


def test_close_gives_eof_to_the_peer(region):
    a, b = region.Pipe()
    a.send("last")
    a.close()
    assert a.closed
    assert b.poll(5) is True
    assert b.recv() == "last"
    with pytest.raises(EOFError):
        b.recv()
    with pytest.raises(BrokenPipeError):
        b.send("x")


def test_closed_connection_raises_oserror(region):
    a, b = region.Pipe()
    a.close()
    for op in (lambda: a.send(1), a.recv, a.poll, a.fileno,
               lambda: a.send_bytes(b"")):
        with pytest.raises(OSError, match="handle is closed"):
            op()


def test_context_manager_closes(region):
    a, b = region.Pipe()
    with a as c:
        assert c is a
    assert a.closed


def test_one_way_pipe(region):
    r, w = region.Pipe(duplex=False)
    assert r.readable and not r.writable
    assert w.writable and not w.readable
    w.send("one way")
    assert r.recv() == "one way"
    with pytest.raises(OSError, match="read-only"):
        r.send(1)
    with pytest.raises(OSError, match="write-only"):
        w.recv()


def test_messages_larger_than_the_ring_stream_through(region):
    a, b = region.Pipe(ring_bytes=4096)
    import threading
    big = bytes(range(256)) * 4000          # 1 MB through a 4 KiB ring
    t = threading.Thread(target=a.send_bytes, args=(big,))
    t.start()
    assert b.recv_bytes() == big
    t.join(30)
    obj = {"k": list(range(50000))}
    t = threading.Thread(target=a.send, args=(obj,))
    t.start()
    assert b.recv() == obj
    t.join(30)


def test_fileno_is_not_available_yet(region):
    a, b = region.Pipe()
    with pytest.raises(io.UnsupportedOperation):
        a.fileno()


def test_a_used_connection_does_not_pickle(region):
    a, b = region.Pipe()
    a.send(1)
    with pytest.raises(ValueError):
        pickle.dumps(a)
    b2 = pickle.loads(pickle.dumps(b))   # unused: the end moves
    assert b2.recv() == 1
    with pytest.raises(OSError):        # b's end is held by b2 now
        b.recv()


def test_open_connection_by_name(region):
    c0, c1 = region.Pipe(name="p1")
    # the creator holds both ends (provisionally, until it uses them or
    # hands them on): a second attach is refused
    with pytest.raises(OSError):
        region.open_connection("p1", 0)
    c0.close()                        # never used: hands the end on
    a0 = region.open_connection("p1", 0)
    c1.send("hello")
    assert a0.recv() == "hello"


# ---- across processes -------------------------------------------------------

def _echo(conn, n):
    for _ in range(n):
        conn.send(conn.recv())
    conn.close()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_echo_across_processes(method):
    a, b = lfipc.Pipe()
    p = helpers.start(method, _echo, b, 100)
    b.close()
    for i in range(100):
        a.send((i, "x" * i))
        assert a.recv() == (i, "x" * i)
    with pytest.raises(EOFError):
        a.recv()
    helpers.reap([p])


def _big_sender(conn):
    conn.send_bytes(b"\xab" * (3 << 20))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_large_message_across_processes(method):
    r, w = lfipc.Pipe(duplex=False)
    p = helpers.start(method, _big_sender, w)
    w.close()
    assert r.recv_bytes() == b"\xab" * (3 << 20)
    helpers.reap([p])
