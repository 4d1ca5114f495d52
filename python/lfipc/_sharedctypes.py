# SPDX-License-Identifier: MIT
"""Value, Array, RawValue and RawArray over lfipc storage.

As in multiprocessing.sharedctypes, the objects are ctypes objects whose
memory is shared: RawValue/RawArray return the ctypes object itself,
Value/Array a synchronized wrapper (get_lock(), get_obj(), .value,
indexing and slicing under the lock). The memory is an lfipc Array (of the
C type when it is one of lfipc's scalar types, else of bytes), so C
programs can open it by name too. With lock=True the lock is the RLock
embedded in that Array.

Pickling (for child processes, or through an lfipc Queue or Pipe) sends
the Array's region and name: the child maps the same memory. A raw ctypes
object pickled by plain pickle (outside multiprocessing's ForkingPickler,
which lfipc's queues and pipes use) is copied, as multiprocessing's is.
"""

import ctypes
from multiprocessing import sharedctypes as _mpsc
from multiprocessing.reduction import ForkingPickler as _ForkingPickler

from . import _lfipc

typecode_to_type = {
    "c": ctypes.c_char, "u": ctypes.c_wchar,
    "b": ctypes.c_byte, "B": ctypes.c_ubyte,
    "h": ctypes.c_short, "H": ctypes.c_ushort,
    "i": ctypes.c_int, "I": ctypes.c_uint,
    "l": ctypes.c_long, "L": ctypes.c_ulong,
    "q": ctypes.c_longlong, "Q": ctypes.c_ulonglong,
    "f": ctypes.c_float, "d": ctypes.c_double,
}

# lfipc_type of lfipc/value.h (stored in shared memory, never renumbered)
_I8, _U8, _I16, _U16, _I32, _U32, _I64, _U64, _F32, _F64, _CHAR, _BOOL = \
    range(12)
_SIGNED = {1: _I8, 2: _I16, 4: _I32, 8: _I64}
_UNSIGNED = {1: _U8, 2: _U16, 4: _U32, 8: _U64}


def _element_type(type_):
    """The lfipc element type holding ctypes type_, or None."""
    code = getattr(type_, "_type_", None)
    if not isinstance(code, str):
        return None
    size = ctypes.sizeof(type_)
    if code in "bhilq":
        return _SIGNED.get(size)
    if code in "BHILQ":
        return _UNSIGNED.get(size)
    return {"f": _F32, "d": _F64, "c": _CHAR, "?": _BOOL}.get(code)


def _ctype(typecode_or_type):
    return typecode_to_type.get(typecode_or_type, typecode_or_type)


def _storage(type_, length, lock, region, name, create):
    """The SharedArray for length elements of type_ (None: one value)."""
    n = 1 if length is None else length
    et = _element_type(type_)
    if not create:
        st = _lfipc.SharedArray(region=region, name=name, create=False)
    elif et is None:
        st = _lfipc.SharedArray(_U8, ctypes.sizeof(type_) * n, lock,
                                region=region, name=name)
    else:
        st = _lfipc.SharedArray(et, n, lock, region=region, name=name)
    if st.nbytes != ctypes.sizeof(type_) * n:
        raise ValueError(f"lfipc: {st!r} is not a {type_.__name__} "
                         f"of length {n}")
    return st


def _reduce_ctype(obj):
    wrapper = getattr(obj, "_wrapper", None)
    if wrapper is None:  # not shared: pickle it as ctypes does (a copy)
        return obj.__reduce__()
    if isinstance(obj, ctypes.Array):
        return _rebuild_ctype, (obj._type_, wrapper, obj._length_)
    return _rebuild_ctype, (type(obj), wrapper, None)


def _rebuild_ctype(type_, wrapper, length):
    """A ctypes object of type_ (an array of length, if not None) over the
    memory of wrapper (an lfipc SharedArray, or multiprocessing's heap
    BufferWrapper: both have create_memoryview())."""
    if length is not None:
        type_ = type_ * length
    # multiprocessing's pickler (used for child processes, and by lfipc's
    # queues and pipes) sends the storage, not a copy
    _ForkingPickler.register(type_, _reduce_ctype)
    obj = type_.from_buffer(wrapper.create_memoryview())
    obj._wrapper = wrapper
    return obj


def _new(typecode_or_type, length, lock, region, name, create):
    type_ = _ctype(typecode_or_type)
    st = _storage(type_, length, lock, region, name, create)
    return _rebuild_ctype(type_, st, length)


def RawValue(typecode_or_type, *args, region=None, name=None, create=True):
    """RawValue(typecode_or_type, *args) -> ctypes object in shared memory
    (zeroed, then initialised with args), without a lock."""
    obj = _new(typecode_or_type, None, False, region, name, create)
    if create and args:
        obj.__init__(*args)
    return obj


def RawArray(typecode_or_type, size_or_initializer, *, region=None,
             name=None, create=True):
    """RawArray(typecode_or_type, size_or_initializer) -> ctypes array in
    shared memory, zeroed (an int) or filled from a sequence."""
    if isinstance(size_or_initializer, int):
        return _new(typecode_or_type, size_or_initializer, False, region,
                    name, create)
    init = list(size_or_initializer)
    obj = _new(typecode_or_type, len(init), False, region, name, create)
    if create:
        obj.__init__(*init)
    return obj


def _check_lock(lock):
    if lock not in (True, False, None) and not hasattr(lock, "acquire"):
        raise AttributeError(f"{lock!r} has no method 'acquire'")


def _synchronize(obj, lock):
    """Wrap obj with lock (True/None: the storage's embedded RLock)."""
    if lock is True or lock is None:
        lock = obj._wrapper._lfipc_lock()
    if isinstance(obj, ctypes._SimpleCData):
        return Synchronized(obj, lock)
    if isinstance(obj, ctypes.Array):
        if obj._type_ is ctypes.c_char:
            return SynchronizedString(obj, lock)
        return SynchronizedArray(obj, lock)
    return _mpsc.synchronized(obj, lock)


def Value(typecode_or_type, *args, lock=True, region=None, name=None,
          create=True):
    """Value(typecode_or_type, *args, lock=True) -> a synchronized shared
    ctypes object (multiprocessing.Value): .value, get_lock(), get_obj().
    lock=True (or None) uses a new RLock embedded in the storage, a given
    lock (anything with acquire/release) is used as is, lock=False returns
    the raw ctypes object."""
    _check_lock(lock)
    with_lock = lock is True or lock is None
    obj = _new(typecode_or_type, None, with_lock, region, name, create)
    if create and args:
        obj.__init__(*args)
    if lock is False:
        return obj
    return _synchronize(obj, lock)


def Array(typecode_or_type, size_or_initializer, *, lock=True, region=None,
          name=None, create=True):
    """Array(typecode_or_type, size_or_initializer, *, lock=True) -> a
    synchronized shared ctypes array (multiprocessing.Array): indexing
    and slicing under the lock, get_lock(), get_obj(); .value and .raw
    for 'c'."""
    _check_lock(lock)
    with_lock = lock is True or lock is None
    if isinstance(size_or_initializer, int):
        obj = _new(typecode_or_type, size_or_initializer, with_lock, region,
                   name, create)
    else:
        init = list(size_or_initializer)
        obj = _new(typecode_or_type, len(init), with_lock, region, name,
                   create)
        if create:
            obj.__init__(*init)
    if lock is False:
        return obj
    return _synchronize(obj, lock)


def _rebuild_synchronized(cls, type_, storage, length, lock):
    obj = _rebuild_ctype(type_, storage, length)
    return cls(obj, lock)


class _Picklable:
    """Pickles as storage + type + lock, with any pickler (not only while
    spawning a process, as multiprocessing's wrappers)."""

    def __reduce__(self):
        obj = self._obj
        if isinstance(obj, ctypes.Array):
            return _rebuild_synchronized, (type(self), obj._type_,
                                           obj._wrapper, obj._length_,
                                           self._lock)
        return _rebuild_synchronized, (type(self), type(obj), obj._wrapper,
                                       None, self._lock)


class Synchronized(_Picklable, _mpsc.Synchronized):
    """A shared ctypes value and its lock (multiprocessing's Synchronized):
    .value reads and writes under the lock; get_lock(), get_obj()."""


class SynchronizedArray(_Picklable, _mpsc.SynchronizedArray):
    """A shared ctypes array and its lock: len(), indexing and slicing
    under the lock; get_lock(), get_obj()."""


class SynchronizedString(_Picklable, _mpsc.SynchronizedString):
    """A shared c_char array and its lock: also .value and .raw."""
