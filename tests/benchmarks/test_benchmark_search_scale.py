"""benchmarks/search_scale.py runs end to end on a tiny database, every
method agreeing, and its trained-like codes are what it says they are."""

from __future__ import annotations

import importlib.util
import json
import pathlib

import numpy as np
import pytest

from tests.paths import REPO


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location(
        "search_scale", pathlib.Path(REPO) / "benchmarks" / "search_scale.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_run_is_identical_across_methods(bench, tmp_path, capsys):
    output = tmp_path / "rows.json"
    argv = ["--sizes", "3000", "--bits", "64,24", "--queries", "30"]
    argv += ["--flat-queries", "10", "--ks", "1,20", "--radii", "0,2"]
    assert bench.main([*argv, "--json", str(output)]) == 0
    rows = json.loads(output.read_text())
    assert all(row["identical"] for row in rows)
    assert {row["method"] for row in rows} >= {"flat-numpy", "mih-numpy"}
    assert "identical results across methods: True" in capsys.readouterr().out


def test_trained_like_codes_flip_five_bits_in_64(bench):
    rng = np.random.default_rng(0)
    flips = bench._flip_words(rng, (20000, 1))
    share = np.unpackbits(flips.view(np.uint8)).mean()
    assert abs(share - 5 / 64) < 0.003
    centres = rng.integers(0, 2**64, (3, 1), dtype=np.uint64)
    codes = bench.make_codes(rng, 50, 64, "trained", centres)
    assert codes.shape == (50, 8) and codes.dtype == np.uint8
