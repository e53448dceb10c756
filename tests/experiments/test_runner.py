"""The table runner on the smoke tables: outputs, aggregation, resume."""

import json
import os

from keras_dhsps.experiments import runner
from keras_dhsps.experiments.table_config import list_tables
from keras_dhsps.experiments.table_config import load_table_config
from keras_dhsps.experiments.table_config import table_config_path
from tests.paths import REPO

CONFIGS_DIR = os.path.join(REPO, "reproduce", "configs")
CONFIG = os.path.join(CONFIGS_DIR, "digits_mosaic.py")


def test_smoke_table_writes_results_and_resumes(tmp_path, monkeypatch):
    table = load_table_config(CONFIG + ":smoke")
    out = str(tmp_path / "results")
    messages = []
    results = runner.run_table(
        table,
        out,
        progress=lambda done, total, msg: messages.append((done, total)),
    )
    assert messages[-1] == (4, 4)
    for name in ("results.json", "results.md", "pr_curve.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0
    with open(os.path.join(out, "results.json")) as handle:
        stored = json.load(handle)
    assert stored["rows"] == results["rows"]
    assert len(stored["cells"]) == 4
    rows = {(row["method"], row["bits"]): row for row in stored["rows"]}
    assert set(rows) == {
        ("IDHN", 12),
        ("IDHN", 24),
        ("hard-only", 12),
        ("hard-only", 24),
    }
    for cell in stored["cells"].values():
        key = (
            "IDHN" if cell["config"]["loss"]["name"] == "idhn" else "hard-only",
            cell["config"]["model"]["bits"],
        )
        # One seed: the row's mean is the cell's value itself.
        assert (
            rows[key]["metrics"]["map@all"]["mean"]
            == cell["metrics"]["map@all"]
        )
    markdown = open(os.path.join(out, "results.md")).read()
    assert "| IDHN | 12 |" in markdown and "| hard-only | 24 |" in markdown

    # A rerun finds every cell on disk and trains nothing.
    def no_training(*args, **kwargs):
        raise AssertionError("a finished cell was recomputed")

    monkeypatch.setattr(runner, "_run_cell", no_training)
    again = runner.run_table(table, out)
    assert again["rows"] == results["rows"]


def test_smoke_every_table_through_the_cli(tmp_path, capsys):
    from keras_dhsps.cli.main import main

    out = str(tmp_path / "results")
    status = main(
        [
            "--verbose",
            "0",
            "reproduce",
            "--all",
            "--smoke",
            "--configs-dir",
            CONFIGS_DIR,
            "--output",
            out,
        ]
    )
    assert status == 0
    names = list_tables(CONFIGS_DIR)
    for name in names:
        with open(os.path.join(out, name, "results.json")) as handle:
            results = json.load(handle)
        table = load_table_config(
            table_config_path(name, CONFIGS_DIR) + ":smoke"
        )
        assert len(results["rows"]) == len(table.methods) * len(table.bits)
        for row in results["rows"]:
            for metric in table.metrics:
                assert 0.0 <= row["metrics"][metric]["mean"] <= (None or 10.0)
    # Paper tables share their smoke cells through the common cache.
    cached = os.listdir(os.path.join(out, "cells"))
    paper = load_table_config(
        table_config_path("paper_voc2012", CONFIGS_DIR) + ":smoke"
    )
    assert len(cached) < sum(
        len(
            load_table_config(
                table_config_path(n, CONFIGS_DIR) + ":smoke"
            ).methods
        )
        for n in names
    )
    assert len(paper.methods) == 10
