"""benchmarks/metrics_speed.py: its reference loop is an independent oracle
for our mAP, and the VOC2012 case runs end to end with its value check."""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import shutil

import numpy as np
import pytest

from keras_dhsps import metrics
from tests.paths import REPO

ROOT = pathlib.Path(REPO)


@pytest.fixture(scope="module")
def bench():
    saved = dict(os.environ)  # the script pins BLAS threads on import
    try:
        spec = importlib.util.spec_from_file_location(
            "metrics_speed", ROOT / "benchmarks" / "metrics_speed.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.mark.parametrize("k", [5, 40, 200])  # 200 > N: the whole database
def test_reference_loop_with_stable_ties_equals_our_map(bench, k):
    rng = np.random.default_rng(3)
    q_codes = rng.standard_normal((30, 6)).astype(np.float32)  # many ties
    db_codes = rng.standard_normal((120, 6)).astype(np.float32)
    q_labels = (rng.random((30, 5)) < 0.3).astype(np.int64)
    db_labels = (rng.random((120, 5)) < 0.3).astype(np.int64)
    q_b = np.where(q_codes >= 0, 1.0, -1.0).astype(np.float32)
    r_b = np.where(db_codes >= 0, 1.0, -1.0).astype(np.float32)
    reference = bench.calc_top_map(
        r_b, q_b, db_labels, q_labels, k, sort_kind="stable"
    )
    ours = metrics.mean_average_precision(
        q_codes, q_labels, db_codes, db_labels, k=k, num_threads=2
    )
    assert ours == pytest.approx(reference, abs=1e-12)


def test_voc2012_case_runs_and_passes_its_value_check(bench, tmp_path, capsys):
    out = tmp_path / "result.json"
    status = bench.main(
        ["--case", "voc2012-labels", "--repeat", "1", "--json", str(out)]
    )
    assert status == 0  # (b) equals the stable reference to 1e-9
    printed = capsys.readouterr().out
    assert "(a')" in printed and "1 thread" in printed
    result = json.loads(out.read_text())["results"][0]
    assert result["queries"] == 1000 and result["database"] == 6540
    assert result["abs_diff_vs_stable"] < 1e-12


needs_git = pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(),
    reason="needs git and a git checkout",
)


@needs_git
def test_a_git_revision_loads_beside_this_tree(bench, tmp_path):
    old_map, _ = bench.load_revision("HEAD", tmp_path)
    # The old copy runs from the extracted tree, and this tree's package is
    # back in place afterwards.
    assert old_map.__code__.co_filename.startswith(str(tmp_path))
    new_file = metrics.mean_average_precision.__code__.co_filename
    assert not new_file.startswith(str(tmp_path))
    import keras_dhsps.metrics._engine as engine

    assert pathlib.Path(engine.__file__).is_relative_to(ROOT)
    rng = np.random.default_rng(4)
    args = (
        rng.standard_normal((9, 8)),
        (rng.random((9, 4)) < 0.4).astype(np.uint8),
        rng.standard_normal((50, 8)),
        (rng.random((50, 4)) < 0.4).astype(np.uint8),
    )
    assert old_map(*args, k=20) == metrics.mean_average_precision(*args, k=20)


@needs_git
def test_baseline_option_prints_old_over_new(bench, tmp_path, capsys):
    out = tmp_path / "baseline.json"
    status = bench.main(
        [
            "--case",
            "voc2012-labels",
            "--baseline",
            "HEAD",
            "--repeat",
            "1",
            "--json",
            str(out),
        ]
    )
    assert status == 0  # the same numbers from both trees
    assert "old/new" in capsys.readouterr().out
    rows = json.loads(out.read_text())["baseline"]
    assert [(r["what"], r["threads"]) for r in rows][1::2] == [
        ("b", 1),
        ("c", 1),
    ]
    assert all(r["same_numbers"] and r["wall_ratio"] > 0 for r in rows)
