# SPDX-License-Identifier: MIT
"""`make install` installs a package that the configured interpreter
imports, with its typing stubs and without libtool's .la file."""
import fcntl
import os
import subprocess
import sys
import tempfile

import pytest


@pytest.mark.timeout_s(600)
def test_make_install_gives_an_importable_package():
    build = os.environ.get("LFIPC_PY_BUILDDIR")
    if not build or not os.path.exists(os.path.join(build, "Makefile")):
        pytest.skip("needs the build tree (run by make check)")
    with tempfile.TemporaryDirectory(prefix="lfipc-pyinst.") as dest:
        # other tests install from this build tree in parallel: libtool's
        # relinking races without the lock tests/build/users.sh takes too
        with open(os.path.join(build, "install.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            r = subprocess.run([os.environ.get("MAKE", "make"), "-s", "-C",
                                build, "install", f"DESTDIR={dest}"],
                               capture_output=True, text=True, timeout=500)
        assert r.returncode == 0, r.stdout + r.stderr
        pkgs = [root for root, dirs, files in os.walk(dest)
                if "__init__.py" in files and root.endswith("/lfipc")]
        assert len(pkgs) == 1, pkgs
        files = set(os.listdir(pkgs[0]))
        assert {"__init__.py", "_sharedctypes.py", "__init__.pyi",
                "py.typed", "_lfipc.so"} <= files
        assert "_lfipc.la" not in files
        libdirs = [root for root, dirs, files in os.walk(dest)
                   if any(f.startswith("liblfipc.so") for f in files)]
        env = dict(os.environ,
                   PYTHONPATH=os.path.dirname(pkgs[0]),
                   LD_LIBRARY_PATH=":".join(libdirs))
        code = ("import lfipc; q = lfipc.Queue(2); q.put('ok'); "
                "print(lfipc.__file__, q.get())")
        r = subprocess.run([sys.executable, "-c", code], env=env,
                           capture_output=True, text=True, timeout=120,
                           cwd=dest)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(pkgs[0]) and r.stdout.strip().endswith("ok")
