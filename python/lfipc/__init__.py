# SPDX-License-Identifier: MIT
"""lfipc: multiprocessing's IPC primitives in shared memory, lock-free.

Replace ``import multiprocessing as mp`` by ``import lfipc as mp`` for the
primitives (Queue, SimpleQueue, JoinableQueue, Pipe, Lock, RLock,
Semaphore, BoundedSemaphore, Condition, Event, Barrier, Value, Array,
RawValue, RawArray): same names, signatures, behaviour and exceptions,
and they pass to child processes (fork, spawn, forkserver, concurrent.
futures initialisers) as multiprocessing's do. Processes themselves still
come from multiprocessing.

What lfipc adds:

- ``Queue.clear()`` returns the number of items discarded, in constant
  time, while other processes put and get; ``qsize()`` is exact;
  ``shutdown()`` wakes every waiter (Python 3.13's queue.Queue.shutdown);
  ``put_many()``/``get_many()`` move items in bulk.
- A process killed at any moment (SIGKILL) wedges nobody: a Lock it held
  is taken over by the next ``acquire()`` (``owner_died`` is set and an
  ``OwnerDeadWarning`` issued), a message it was reading goes to another
  consumer.
- Every blocking call releases the GIL and Ctrl-C interrupts it.

Where objects live: without ``region=``, in the process's default region
(an anonymous shared-memory region created on first use, inherited by
fork children and passed to spawned ones; a new one is added when it is
full). ``Region(name, size, create=True)`` makes a named region that
unrelated processes open with ``Region(name)``; its factories
(``region.Queue(...)``, ...) create objects in it, and ``name=`` lets
other processes open an object with ``create=False``.

Differences from multiprocessing worth knowing: queues are bounded
(``maxsize <= 0`` means 16384 items; a put into a full queue waits); a
Lock has an owner (only the acquiring thread releases it); a Pipe end
moves to another process by fork, or by pickling before its first use.
"""

import os
import queue as _queue
import threading as _threading
import time as _time
import weakref as _weakref

from multiprocessing import BufferTooShort, ProcessError, TimeoutError
from multiprocessing import connection as _mpconnection
from multiprocessing import context as _mpcontext
from multiprocessing import reduction as _reduction

from . import _lfipc
from ._lfipc import (
    Barrier,
    BoundedSemaphore,
    Condition,
    Connection,
    Event,
    JoinableQueue,
    Lock,
    Pipe,
    Queue,
    RLock,
    Semaphore,
    SimpleQueue,
    open_connection,
    strerror,
)

__all__ = [
    "Array", "Barrier", "BoundedSemaphore", "BrokenBarrierError",
    "BufferTooShort", "Condition", "Connection", "Empty", "Event", "Full",
    "JoinableQueue", "Lock", "OwnerDeadWarning", "Pipe", "ProcessError",
    "Queue", "RLock", "RawArray", "RawValue", "Region", "Semaphore",
    "ShutDown", "SimpleQueue", "Synchronized", "SynchronizedArray",
    "SynchronizedString", "TimeoutError", "Value", "default_region",
    "open_connection", "set_default_region", "strerror", "unlink_region",
    "wait",
]

__version__ = "0.1.0"

Empty = _queue.Empty
Full = _queue.Full
BrokenBarrierError = _threading.BrokenBarrierError

if hasattr(_queue, "ShutDown"):  # Python 3.13+
    ShutDown = _queue.ShutDown
else:
    class ShutDown(Exception):
        """Raised by put() on a queue that was shut down, and by get() on
        one that was shut down and is empty (queue.ShutDown in 3.13+)."""


class OwnerDeadWarning(RuntimeWarning):
    """A Lock (RLock, Condition, Value's lock) was acquired from a process
    that died holding it. The acquire succeeded and the lock is held; the
    data it protects may be half-updated. Turn it into an exception with
    ``warnings.simplefilter("error", lfipc.OwnerDeadWarning)``: acquire()
    then raises it with the lock held."""


# ---- regions --------------------------------------------------------------

# Regions mapped by this process, by the identity of their file, so that
# objects unpickled here re-use the mapping they belong to.
_regions = _weakref.WeakValueDictionary()
_regions_lock = _threading.Lock()


class Region(_lfipc.Region):
    """Region(name=None, size=0, create=False, mode=0o600)

    A shared-memory region and the objects in it.

    name=None makes an anonymous region (inherited by fork children, and
    passed to spawned children when an object of it is pickled for them).
    A name ("/something") is a POSIX shared-memory object that unrelated
    processes can open: create=True creates it (FileExistsError if it
    exists), create=False opens it (FileNotFoundError if it does not),
    create=None opens it or else creates it. size (bytes, at least
    REGION_MIN_SIZE; 0 means 32 MiB) is allocated up front. A named region
    stays until unlink() (or lfipc.unlink_region(name)).

    The factories (Queue, Lock, Value, ...) take the same arguments as the
    module-level ones and make their objects here; with name= other
    processes open them by name with create=False. Closing the region
    (close(), or leaving a ``with`` block) unmaps it once no object of it
    is in use in this process.
    """

    def __init__(self, name=None, size=0, create=False, mode=0o600, *,
                 fd=-1):
        super().__init__(name, size, create, mode, fd)
        with _regions_lock:
            _regions.setdefault(self._key, self)

    def __repr__(self):
        what = "anonymous" if self.name is None else repr(self.name)
        state = " closed" if self.closed else ""
        return f"<lfipc.Region {what} size={self.size}{state}>"

    def __reduce__(self):
        if self.name is not None:
            return _attach_named, (self.name, self._key)
        if _mpcontext.get_spawning_popen() is not None:
            # pickled for a child being spawned: the fd goes with it
            return _attach_fd, (self._key, _reduction.DupFd(self.fd))
        return _attach_proc, (self._key, os.getpid(), self.fd)

    # -- factories: the module-level ones, in this region --

    def Queue(self, maxsize=0, **kw):
        """Queue(maxsize=0, *, name=None, create=True, msg_size=240)"""
        return Queue(maxsize, region=self, **kw)

    def SimpleQueue(self, **kw):
        """SimpleQueue(*, name=None, create=True, msg_size=240)"""
        return SimpleQueue(region=self, **kw)

    def JoinableQueue(self, maxsize=0, **kw):
        """JoinableQueue(maxsize=0, *, name=None, create=True, msg_size=240)"""
        return JoinableQueue(maxsize, region=self, **kw)

    def Pipe(self, duplex=True, **kw):
        """Pipe(duplex=True, *, name=None, ring_bytes=0)"""
        return Pipe(duplex, region=self, **kw)

    def open_connection(self, name, end):
        """Attach end 0 or 1 of the pipe called name."""
        return open_connection(name, end, region=self)

    def Lock(self, **kw):
        """Lock(*, name=None, create=True)"""
        return Lock(region=self, **kw)

    def RLock(self, **kw):
        """RLock(*, name=None, create=True)"""
        return RLock(region=self, **kw)

    def Semaphore(self, value=1, **kw):
        """Semaphore(value=1, *, name=None, create=True)"""
        return Semaphore(value, region=self, **kw)

    def BoundedSemaphore(self, value=1, **kw):
        """BoundedSemaphore(value=1, *, name=None, create=True)"""
        return BoundedSemaphore(value, region=self, **kw)

    def Event(self, **kw):
        """Event(*, name=None, create=True)"""
        return Event(region=self, **kw)

    def Condition(self, lock=None, **kw):
        """Condition(lock=None, *, name=None, create=True)"""
        if lock is None:
            return Condition(region=self, **kw)
        return Condition(lock, **kw)

    def Barrier(self, parties=0, action=None, timeout=None, **kw):
        """Barrier(parties, action=None, timeout=None, *, name=None,
        create=True)"""
        return Barrier(parties, action, timeout, region=self, **kw)

    def Value(self, typecode_or_type, *args, lock=True, **kw):
        """Value(typecode_or_type, *args, lock=True, name=None,
        create=True)"""
        return Value(typecode_or_type, *args, lock=lock, region=self, **kw)

    def Array(self, typecode_or_type, size_or_initializer=None, *,
              lock=True, **kw):
        """Array(typecode_or_type, size_or_initializer, *, lock=True,
        name=None, create=True)"""
        return Array(typecode_or_type, size_or_initializer, lock=lock,
                     region=self, **kw)

    def RawValue(self, typecode_or_type, *args, **kw):
        """RawValue(typecode_or_type, *args, name=None, create=True)"""
        return RawValue(typecode_or_type, *args, region=self, **kw)

    def RawArray(self, typecode_or_type, size_or_initializer=None, **kw):
        """RawArray(typecode_or_type, size_or_initializer, name=None,
        create=True)"""
        return RawArray(typecode_or_type, size_or_initializer, region=self,
                        **kw)


def _known(key):
    with _regions_lock:
        r = _regions.get(key)
    if r is not None and not r.closed:
        return r
    return None


def _attach_named(name, key):
    r = _known(key)
    if r is None:
        r = Region(name)
    return r


def _adopt_fd(key, fd):
    try:
        r = _known(key)
        if r is None:
            r = Region(fd=fd)
    finally:
        os.close(fd)
    return r


def _attach_fd(key, dupfd):
    return _adopt_fd(key, dupfd.detach())


def _attach_proc(key, pid, fd):
    r = _known(key)
    if r is not None:
        return r
    # an anonymous region pickled outside process creation (into a queue,
    # a pool's task): reopen the sender's fd while the sender lives
    try:
        nfd = os.open(f"/proc/{pid}/fd/{fd}", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        raise OSError(
            e.errno,
            f"lfipc: cannot attach the anonymous region of process {pid} "
            f"({e.strerror}); use a named lfipc.Region to share objects "
            f"between unrelated processes") from None
    r = _adopt_fd(key, nfd)
    if r._key != tuple(key):
        raise OSError(f"lfipc: process {pid}'s fd {fd} is no longer the "
                      f"region that was pickled")
    return r


def unlink_region(name):
    """Remove the name of a named region (processes that mapped it keep
    using it)."""
    _lfipc._unlink_region(name)


# ---- the default region ------------------------------------------------------

_default = None
_default_lock = _threading.Lock()


def _default_region(need=0, fresh=False):
    global _default
    with _default_lock:
        if _default is None or _default.closed or fresh:
            size = max(_lfipc.REGION_DEFAULT_SIZE, 2 * need + (1 << 20))
            _default = Region(size=size)
        return _default


def default_region():
    """The region where objects made without region= go (created now if
    there is none yet)."""
    return _default_region()


def set_default_region(region):
    """Make objects made without region= go into region (a Region), or,
    with None, into a new anonymous region created when first needed."""
    global _default
    if region is not None and not isinstance(region, _lfipc.Region):
        raise TypeError("region must be an lfipc.Region or None")
    with _default_lock:
        _default = region


# ---- waiting for several objects -------------------------------------------


def wait(object_list, timeout=None):
    """Wait until at least one of object_list is ready, or timeout seconds
    (None: forever) pass; return the list of those ready (empty on
    timeout), as multiprocessing.connection.wait() does.

    Ready means what the object's fileno() watches: a Queue (any kind)
    whose get() would not block (an item, or shut down), a Connection
    whose recv() would not block (a message, or end of file; the send end
    of a one-way pipe: whose send() would not block), an Event that is
    set. Nothing is taken: call get_nowait() / recv() afterwards, and
    expect queue.Empty now and then when other processes compete for the
    same queue.

    Up to 8 lfipc objects of one region are waited for by the library
    itself (lfipc_wait_any: no file descriptor is made). Other lists may
    mix in anything multiprocessing.connection.wait() accepts
    (connections and sockets of multiprocessing, process sentinels, fds)
    and are waited for with selectors over fileno(); then a Queue's
    readiness can be stale (its fd stays readable until a get through it
    found it empty), so treat it as a hint. Interruptible (Ctrl-C)."""
    objs = list(object_list)
    ready = _lfipc._wait_any(objs, timeout) if objs else NotImplemented
    if ready is not NotImplemented:
        return ready
    deadline = None if timeout is None else _time.monotonic() + timeout
    while True:
        left = None if deadline is None else max(0.0,
                                                 deadline - _time.monotonic())
        # Connections and Events are checked again through the object,
        # which also makes a stale fd unreadable (so this never spins).
        ready = [o for o in _mpconnection.wait(objs, left) if _ready(o)]
        if ready or (deadline is not None and _time.monotonic() >= deadline):
            return ready


def _ready(obj):
    if isinstance(obj, Connection) and obj.readable:
        return obj.poll()
    if isinstance(obj, Event):
        return obj.wait(0)
    return True


_lfipc._set_hooks(_default_region, OwnerDeadWarning, ShutDown)

# Value, Array and friends are ctypes objects over lfipc storage.
from ._sharedctypes import (  # noqa: E402
    Array,
    RawArray,
    RawValue,
    Synchronized,
    SynchronizedArray,
    SynchronizedString,
    Value,
)
