# SPDX-License-Identifier: MIT
"""pytest setup for the lfipc binding's tests (run by tests/python/
run-pytest.sh with the interpreter configure chose)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import helpers  # noqa: E402


@pytest.fixture
def region():
    """A fresh anonymous region for one test."""
    import lfipc
    r = lfipc.Region(size=8 << 20)
    yield r
    r.close()


@pytest.fixture
def shm_name():
    """A unique name for a named region; unlinked after the test."""
    names = []

    def make():
        n = helpers.shm_name()
        names.append(n)
        return n
    yield make
    import lfipc
    for n in names:
        try:
            lfipc.unlink_region(n)
        except FileNotFoundError:
            pass


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout_s(seconds): hard bound")


@pytest.fixture(autouse=True)
def _bound(request):
    """SIGALRM fails a test that runs past its bound (the child processes
    a test starts are reaped with deadlines by helpers.run)."""
    import signal
    m = request.node.get_closest_marker("timeout_s")
    secs = m.args[0] if m else 300

    def expired(signum, frame):
        raise TimeoutError(f"test exceeded its {secs} s bound")
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(secs)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
