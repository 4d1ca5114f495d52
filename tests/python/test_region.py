# SPDX-License-Identifier: MIT
"""Regions: named and anonymous, the default region, objects by name,
closing, and re-attaching in other processes."""
import os
import pickle

import pytest

import helpers
import lfipc


def test_named_region_create_open_unlink(shm_name):
    name = shm_name()
    with lfipc.Region(name, 1 << 20, create=True) as r:
        assert r.name == name and r.size >= 1 << 20
        with pytest.raises(FileExistsError):
            lfipc.Region(name, 1 << 20, create=True)
        r2 = lfipc.Region(name)
        assert r2._key == r._key
        q = r.Queue(4, name="q")
        r2.Queue(name="q", create=False).put("through r2")
        assert q.get() == "through r2"
        r2.close()
    lfipc.unlink_region(name)
    with pytest.raises(FileNotFoundError):
        lfipc.Region(name)


def test_open_or_create(shm_name):
    name = shm_name()
    a = lfipc.Region(name, 1 << 20, create=None)
    b = lfipc.Region(name, 1 << 20, create=None)
    assert a._key == b._key
    a.unlink()
    with pytest.raises(FileNotFoundError):
        lfipc.Region(name, create=False)


def test_stats_and_remove(region):
    s0 = region.stats()
    assert s0["participants"] == 1 and s0["objects"] == 0
    region.Lock(name="l")
    s1 = region.stats()
    assert s1["objects"] == 1 and s1["bytes_free"] < s0["bytes_free"]
    region.remove("l")
    assert region.stats()["objects"] == 0
    with pytest.raises(FileNotFoundError):
        region.remove("l")


def test_closing_a_region_keeps_its_objects_working(region):
    q = region.Queue(4)
    region.close()
    assert region.closed
    q.put(1)
    assert q.get() == 1
    with pytest.raises(ValueError):
        region.Queue(4)


def test_the_default_region_grows_when_full():
    r0 = lfipc.default_region()
    big = lfipc.Queue(200000)          # too big for a 32 MiB region
    assert big.region is not r0
    assert big.region.size > 200000 * 256
    big.put("ok")
    assert big.get() == "ok"


def test_set_default_region(region):
    old = lfipc.default_region()
    try:
        lfipc.set_default_region(region)
        assert lfipc.Lock().region is region
    finally:
        lfipc.set_default_region(old)
    with pytest.raises(TypeError):
        lfipc.set_default_region("no")


def test_unpickling_in_the_same_process_reuses_the_mapping(region):
    e = region.Event()
    e2 = pickle.loads(pickle.dumps(e))
    assert e2.region is region


def test_object_names_are_checked(region):
    with pytest.raises(ValueError):
        region.Lock(name="")
    with pytest.raises(ValueError):
        region.Lock(name="x" * 100)


def _open_by_name(rname, out_name):
    r = lfipc.Region(rname)
    q = r.Queue(name=out_name, create=False)
    lock = r.Lock(name="lk", create=False)
    with lock:
        q.put(("pid", os.getpid()))


def test_unrelated_process_opens_objects_by_name(shm_name):
    name = shm_name()
    r = lfipc.Region(name, 1 << 20, create=True)
    try:
        q = r.Queue(4, name="out")
        r.Lock(name="lk")
        helpers.run("spawn", _open_by_name, name, "out")
        tag, pid = q.get(timeout=10)
        assert tag == "pid" and pid != os.getpid()
    finally:
        r.unlink()


def _get_and_use(q_in, q_out):
    lock = q_in.get(timeout=120)
    q_out.put(lock.acquire(timeout=60))
    lock.release()


def test_anonymous_region_object_sent_through_a_queue_to_a_child(shm_name):
    # a Lock of an anonymous region, pickled after the child started
    # (outside process creation): the child opens the region through /proc
    anon = lfipc.Region(size=1 << 20)
    lock = anon.Lock()
    r = lfipc.Region(shm_name(), 1 << 20, create=True)
    q_in, q_out = r.Queue(2), r.Queue(2)
    p = helpers.start("spawn", _get_and_use, q_in, q_out)
    q_in.put(lock)
    assert q_out.get(timeout=120) is True
    helpers.reap([p])
    assert not lock.locked()


def test_the_typing_stubs_cover_the_public_names():
    import ast
    import os
    stub = os.path.join(os.path.dirname(lfipc.__file__), "__init__.pyi")
    tree = ast.parse(open(stub).read())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname for a in node.names if a.asname)
    assert set(lfipc.__all__) <= names, set(lfipc.__all__) - names
    for name in lfipc.__all__:
        obj = getattr(lfipc, name)
        if getattr(obj, "__module__", "").startswith("lfipc"):
            assert obj.__doc__, f"{name} has no docstring"
