"""One trainer per run directory (keras_dhsps.utils.locks)."""

import json
import logging
import os

import pytest

from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.locks import RunLock
from tests.child import run_python


def test_a_second_holder_is_refused_naming_the_first(tmp_path):
    with RunLock(str(tmp_path)):
        with pytest.raises(DHSPSError, match=f"process {os.getpid()} on"):
            with RunLock(str(tmp_path)):
                pass


def test_the_lock_is_free_again_after_its_holder_leaves(tmp_path):
    with RunLock(str(tmp_path)):
        pass
    with RunLock(str(tmp_path)) as lock:
        assert json.loads(open(lock.path).read())["pid"] == os.getpid()


def test_a_lock_left_by_a_killed_process_is_taken_over_and_said(
    tmp_path, caplog
):
    code = (
        "import os, sys\n"
        "from keras_dhsps.utils.locks import RunLock\n"
        "lock = RunLock(sys.argv[1]).__enter__()\n"
        "print(os.getpid(), flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    done = run_python(code, tmp_path, timeout=60)
    dead = int(done.stdout.split()[0])
    with caplog.at_level(logging.WARNING, logger="keras_dhsps"):
        with RunLock(str(tmp_path)):
            pass
    assert f"left by process {dead}" in caplog.text
    assert "no longer running" in caplog.text
