# SPDX-License-Identifier: MIT
"""Value, Array, RawValue, RawArray: ctypes objects in shared memory with
multiprocessing.sharedctypes's behaviour."""
import ctypes
import pickle

import pytest

import helpers
import lfipc
from multiprocessing import sharedctypes


@pytest.mark.parametrize("code,val", [
    ("c", b"x"), ("u", "é"), ("b", -5), ("B", 250), ("h", -300),
    ("H", 60000), ("i", -70000), ("I", 4000000000), ("l", -(1 << 40)),
    ("L", 1 << 63), ("q", -(1 << 62)), ("Q", (1 << 64) - 1), ("f", 1.5),
    ("d", 2.25),
])
def test_value_of_every_typecode(region, code, val):
    v = region.Value(code, val)
    assert v.value == val
    raw = region.RawValue(code, val)
    assert raw.value == val
    assert type(raw) is lfipc._sharedctypes.typecode_to_type[code]


def test_value_with_a_ctypes_type_and_no_initialiser(region):
    v = region.Value(ctypes.c_double)
    assert v.value == 0.0
    v.value = 3.5
    assert v.get_obj().value == 3.5


def test_value_get_lock_and_get_obj(region):
    v = region.Value("i", 7)
    assert isinstance(v, sharedctypes.Synchronized)
    lock = v.get_lock()
    assert isinstance(lock, lfipc.RLock)
    with v.get_lock():
        v.value += 1
    assert v.value == 8
    assert isinstance(v.get_obj(), ctypes.c_int)
    with v:                       # the wrapper is a context manager too
        assert lock.locked()
    assert "c_int(8)" in repr(v)


def test_value_lock_false_returns_the_raw_ctypes_object(region):
    v = region.Value("d", 1.0, lock=False)
    assert type(v) is ctypes.c_double


def test_value_with_a_given_lock(region):
    lock = region.Lock()
    v = region.Value("i", 0, lock=lock)
    assert v.get_lock() is lock
    with pytest.raises(AttributeError):
        region.Value("i", 0, lock="not a lock")


def test_array_from_size_and_from_initialiser(region):
    a = region.Array("i", 4)
    assert a[:] == [0, 0, 0, 0] and len(a) == 4
    b = region.Array("d", [1.0, 2.0, 3.0])
    assert b[:] == [1.0, 2.0, 3.0]
    assert isinstance(b, sharedctypes.SynchronizedArray)


def test_array_slicing(region):
    a = region.Array("i", range(10))
    assert a[2:5] == [2, 3, 4]
    assert a[::3] == [0, 3, 6, 9]
    a[2:5] = [20, 30, 40]
    assert a[:6] == [0, 1, 20, 30, 40, 5]
    a[-1] = 99
    assert a[9] == 99
    with pytest.raises(IndexError):
        a[10]


def test_char_array_value_and_raw(region):
    s = region.Array("c", b"hello")
    assert isinstance(s, sharedctypes.SynchronizedString)
    assert s.value == b"hello" and s.raw == b"hello"
    s.value = b"hi"
    assert s.value == b"hi" and s.raw == b"hi\0lo"


def test_raw_array_is_a_ctypes_array(region):
    a = region.RawArray("h", [1, 2, 3])
    assert isinstance(a, ctypes.Array) and a._type_ is ctypes.c_short
    assert list(a) == [1, 2, 3]
    z = region.RawArray(ctypes.c_uint8, 16)
    assert bytes(z) == bytes(16)


def test_structures_are_stored_as_bytes(region):
    class Point(ctypes.Structure):
        _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_double)]
    p = region.RawValue(Point, 3, 4.5)
    assert (p.x, p.y) == (3, 4.5)
    sp = region.Value(Point, 1, 2.0)
    assert sp.x == 1 and sp.y == 2.0


def test_pickled_value_shares_memory(region):
    v = region.Value("q", 1)
    v2 = pickle.loads(pickle.dumps(v))
    v.value = 42
    assert v2.value == 42
    assert v2.get_lock().name is None
    with v2.get_lock():
        assert v.get_lock().locked()


def test_pickled_array_shares_memory(region):
    a = region.Array("i", 3)
    a2 = pickle.loads(pickle.dumps(a))
    a[1] = 5
    assert a2[:] == [0, 5, 0]


def test_open_value_by_name(region):
    v = region.Value("i", 3, name="counter")
    w = region.Value("i", name="counter", create=False)
    v.value = 11
    assert w.value == 11
    with pytest.raises(ValueError):
        region.Value("d", name="counter", create=False)


def _incr(i, v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def _fill(a):
    for i in range(len(a)):
        a[i] = i * i


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_value_increments_across_processes(method):
    v = lfipc.Value("i", 0)
    helpers.run(method, _incr, v, 2000, n=3)
    assert v.value == 6000


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_raw_array_across_processes(method):
    a = lfipc.RawArray("l", 10)
    helpers.run(method, _fill, a)
    assert list(a) == [i * i for i in range(10)]
