"""benchmarks/step_overlap.py runs and reports its three ways against the
baseline of the same run (the figures are in benchmarks/README.md)."""

import os
import subprocess
import sys

import pytest

from tests.paths import REPO

ROOT = REPO


def test_step_overlap_reports_every_way_against_its_baseline():
    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=ROOT)
    completed = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "step_overlap.py")]
        + ["--host-ms", "0", "2", "--steps", "2", "--repeats", "1"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in completed.stdout.splitlines()
        if line.startswith("| ") and line[2].isdigit()
    ]
    assert [(row[0], row[1]) for row in rows] == [
        (host, way)
        for host in ("0", "2")
        for way in (
            "no callback",
            "NaN guard (StopOnNaN)",
            "per-step wait (TerminateOnNaN)",
        )
    ]
    assert all(float(row[2]) > 0 for row in rows)
    assert [row[3] for row in rows[::3]] == ["1.00", "1.00"]
    assert completed.stdout.startswith("backend jax")
