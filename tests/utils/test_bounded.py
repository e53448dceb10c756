"""Work in a child bounded in time (keras_dhsps.utils.bounded): its items
come back, and a hang, a crash, a DHSPSError or a bug ends as documented.

The children run the generator functions below (this module, imported by
name in a fresh interpreter).
"""

import contextlib
import os
import signal
import time

import numpy as np
import pytest

from keras_dhsps.utils.bounded import ChildError
from keras_dhsps.utils.bounded import bounded_stream
from keras_dhsps.utils.errors import DHSPSError

HERE = "tests.utils.test_bounded"


def counts(n, size):
    for i in range(n):
        yield i, np.full(size, i, np.uint8)


def hangs_after_one(pid_file):
    with open(pid_file, "w") as file:
        file.write(str(os.getpid()))
    yield "first"
    while True:  # as HDF5 does on a damaged global heap
        pass


def crashes():
    yield "first"
    os.kill(os.getpid(), signal.SIGSEGV)


def refuses():
    raise DHSPSError("f.h5: not a code database")
    yield


def has_a_bug():
    yield 1 / 0


def _stream(target, *args, limit_s=10.0):
    return bounded_stream(
        f"{HERE}:{target}",
        args,
        failure="f.h5: not readable",
        reader="the reader",
        limit_s=limit_s,
    )


def test_items_come_back_in_order_large_ones_whole():
    items = list(_stream("counts", 3, 40 << 20))  # 40 MiB each
    assert [i for i, _ in items] == [0, 1, 2]
    assert all(block.shape == (40 << 20,) for _, block in items)
    assert all((block == i).all() for i, block in items)


def test_a_child_that_hangs_is_killed_after_the_limit(tmp_path):
    pid_file = tmp_path / "pid"
    # 3 s: the first item comes after the child's start, which a loaded
    # 2-core machine can make slow; the second never comes.
    items = _stream("hangs_after_one", str(pid_file), limit_s=3.0)
    assert next(items) == "first"
    start = time.monotonic()
    with pytest.raises(DHSPSError) as raised:
        next(items)
    assert 2.9 < time.monotonic() - start < 8
    assert str(raised.value) == (
        "f.h5: not readable (reading it did not finish in 3 s)"
    )
    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(int(pid_file.read_text()), 0)


def test_a_child_that_crashes_is_one_line():
    with pytest.raises(DHSPSError) as raised:
        list(_stream("crashes"))
    assert str(raised.value) == (
        "f.h5: not readable (the reader crashed reading it: SIGSEGV)"
    )


def test_a_dhsps_error_in_the_child_keeps_its_message():
    with pytest.raises(DHSPSError) as raised:
        list(_stream("refuses"))
    assert str(raised.value) == "f.h5: not a code database"


def test_a_bug_in_the_child_keeps_its_traceback():
    with pytest.raises(ChildError, match="ZeroDivisionError"):
        list(_stream("has_a_bug"))


def test_leaving_early_kills_the_child(tmp_path):
    pid_file = tmp_path / "pid"
    with contextlib.closing(_stream("hangs_after_one", str(pid_file))) as it:
        assert next(it) == "first"
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)
