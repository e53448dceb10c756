"""A full disk ends in one line, never a crash of the interpreter.

The file system is real: a small tmpfs, mounted where the tests run as
root (CI does); elsewhere this test is skipped and the simulated ENOSPC of
tests/utils/test_space.py stands for it. Training runs in a child process,
since HDF5 failing inside a write could take the test process down.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.paths import REPO


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=5500k", "tmpfs", str(mount)],
        capture_output=True,
    )
    if done.returncode != 0:
        pytest.skip("needs root to mount a tmpfs (simulated in test_space)")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_training_onto_a_full_disk_is_one_line_and_keeps_the_last_state(
    small_disk,
):
    run_dir = small_disk / "run"
    options = (
        '{"num_train": 64, "num_validation": 16, "num_query": 16, '
        '"num_database": 48}'
    )
    argv = [
        sys.executable, "-m", "keras_dhsps", "--verbose", "0", "train",
        "--epochs", "6", "--batch-size", "32", "--bits", "12",
        "--set", f"data.options={options}",
        "--set", "train.backbone_lr_multiplier=1.0",
        "--set", "train.tensorboard=false",
        "--output", str(run_dir),
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=REPO)
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=600, env=env
    )
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot write "), (
        lines
    )
    assert "not enough space left on the device (needs about" in lines[0]
    state = run_dir / "checkpoints" / "checkpoint.json"
    weights = json.loads(state.read_text())["weights"]
    assert (run_dir / "checkpoints" / weights).is_file()
    leftovers = [
        name for _, _, names in os.walk(run_dir) for name in names
        if name.startswith(".tmp")
    ]  # fmt: skip
    assert leftovers == []
