"""The reproduce runner on the smoke table: outputs, aggregation, resume."""

import json
import os

import pytest

from keras_dhsps import tables
from keras_dhsps.errors import DHSPSError

CONFIG = os.path.join(
    os.path.dirname(__file__), "..", "reproduce", "configs", "digits_mosaic.py"
)


def test_config_variants_load():
    default = tables.load_table_config(CONFIG)
    assert default.bits == (12, 24, 32, 48)
    assert [m.loss.name for m in default.methods] == ["idhn", "idhn_hard_only"]
    full = tables.load_table_config(CONFIG + ":full")
    assert (
        len(full.seeds) == 3
        and full.base.train.epochs > default.base.train.epochs
    )
    with pytest.raises(ValueError, match="unknown arg"):
        tables.load_table_config(CONFIG + ":huge")


def test_missing_config_and_missing_get_config(tmp_path):
    with pytest.raises(DHSPSError, match="config file not found"):
        tables.load_table_config(str(tmp_path / "nope.py"))
    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n")
    with pytest.raises(DHSPSError, match="defines no get_config"):
        tables.load_table_config(str(empty))


def test_smoke_table_writes_results_and_resumes(tmp_path, monkeypatch):
    table = tables.load_table_config(CONFIG + ":smoke")
    out = str(tmp_path / "results")
    messages = []
    results = tables.run_table(
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

    monkeypatch.setattr(tables, "_run_cell", no_training)
    again = tables.run_table(table, out)
    assert again["rows"] == results["rows"]


def test_markdown_shows_mean_and_std_over_seeds():
    table = tables.load_table_config(CONFIG + ":full")
    summary = {
        "rows": [
            {
                "method": "IDHN",
                "bits": 12,
                "metrics": {
                    "map@all": {"mean": 0.5, "std": 0.25},
                    "ndcg@100": {"mean": 0.75, "std": 0.0},
                },
            }
        ]
    }
    text = tables.render_markdown(table, summary)
    assert "| IDHN | 12 | 0.5000 ± 0.2500 | 0.7500 ± 0.0000 |" in text
    assert "3 seeds (mean ± std)" in text


CONFIGS_DIR = os.path.join(
    os.path.dirname(__file__), "..", "reproduce", "configs"
)
PAPER_TABLES = [
    "paper_voc2012",
    "paper_mirflickr25k",
    "paper_nuswide21",
    "paper_iapr_tc12",
]


@pytest.mark.parametrize("name", tables.list_tables(CONFIGS_DIR))
def test_every_table_names_real_datasets_backbones_losses_and_hashers(name):
    from keras_dhsps.backbones import BACKBONES
    from keras_dhsps.data import DATASETS
    from keras_dhsps.losses import LOSSES
    from keras_dhsps.shallow import SHALLOW_HASHERS

    for arg in (None, "smoke"):
        table = tables.load_table_config(
            tables.table_config_path(name, CONFIGS_DIR)
            + (f":{arg}" if arg else "")
        )
        assert table.base.data.name in DATASETS
        assert table.base.model.backbone in BACKBONES
        for method in table.methods:
            assert (
                (method.loss.name in LOSSES)
                if method.loss
                else (method.shallow in SHALLOW_HASHERS)
            )
    smoke = tables.load_table_config(
        tables.table_config_path(name, CONFIGS_DIR) + ":smoke"
    )
    assert (
        smoke.base.data.name == "digits-mosaic" and smoke.base.train.epochs <= 1
    )


def test_paper_tables_cover_four_datasets_four_code_lengths_and_baselines():
    for name in PAPER_TABLES:
        table = tables.load_table_config(
            tables.table_config_path(name, CONFIGS_DIR)
        )
        assert table.bits == (12, 24, 32, 48)
        labels = [method.label for method in table.methods]
        for method in (
            "IDHN",
            "DHN",
            "DPSH",
            "HashNet",
            "DSH",
            "CSQ",
            "LSH",
            "ITQ",
            "SH",
            "SDH",
        ):
            assert method in labels
        assert [metric.split("@")[0] for metric in table.metrics] == [
            "map",
            "wap",
            "ndcg",
            "acg",
        ]
        assert table.reference is not None  # a paper column, even if empty


def test_unknown_table_lists_known_ones():
    with pytest.raises(DHSPSError, match="unknown table 'nope'.*paper_voc2012"):
        tables.table_config_path("nope", CONFIGS_DIR)


def test_reference_values_need_a_source(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(
        json.dumps(
            {
                "values": [
                    {
                        "method": "IDHN",
                        "bits": 48,
                        "metric": "map@all",
                        "value": 0.8,
                        "source": "Table 3",
                    }
                ]
            }
        )
    )
    assert tables.load_reference(str(good)) == {
        ("IDHN", 48, "map@all"): {"value": 0.8, "source": "Table 3"}
    }
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "values": [
                    {
                        "method": "IDHN",
                        "bits": 48,
                        "metric": "map@all",
                        "value": 0.8,
                        "source": " ",
                    }
                ]
            }
        )
    )
    with pytest.raises(DHSPSError, match="entry 1 lacks"):
        tables.load_reference(str(bad))


def test_markdown_paper_ours_delta_columns():
    import dataclasses

    table = dataclasses.replace(
        tables.load_table_config(CONFIG),
        metrics=("map@all",),
        reference={
            ("IDHN", 12, "map@all"): {"value": 0.75, "source": "paper Table 2"}
        },
    )
    summary = {
        "rows": [
            {
                "method": "IDHN",
                "bits": 12,
                "metrics": {"map@all": {"mean": 0.5, "std": 0.0}},
            },
            {
                "method": "hard-only",
                "bits": 12,
                "metrics": {"map@all": {"mean": 0.25, "std": 0.0}},
            },
        ]
    }
    text = tables.render_markdown(table, summary)
    # 0.5 − 0.75 = −0.25; the row without a cited value shows dashes.
    assert "| IDHN | 12 | 0.7500 | 0.5000 | -0.2500 |" in text
    assert "| hard-only | 12 | — | 0.2500 | — |" in text
    assert "paper Table 2" in text


def test_smoke_every_table_through_the_cli(tmp_path, capsys):
    from keras_dhsps.cli import main

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
    names = tables.list_tables(CONFIGS_DIR)
    for name in names:
        with open(os.path.join(out, name, "results.json")) as handle:
            results = json.load(handle)
        table = tables.load_table_config(
            tables.table_config_path(name, CONFIGS_DIR) + ":smoke"
        )
        assert len(results["rows"]) == len(table.methods) * len(table.bits)
        for row in results["rows"]:
            for metric in table.metrics:
                assert 0.0 <= row["metrics"][metric]["mean"] <= (None or 10.0)
    # Paper tables share their smoke cells through the common cache.
    cached = os.listdir(os.path.join(out, "cells"))
    paper = tables.load_table_config(
        tables.table_config_path("paper_voc2012", CONFIGS_DIR) + ":smoke"
    )
    assert len(cached) < sum(
        len(
            tables.load_table_config(
                tables.table_config_path(n, CONFIGS_DIR) + ":smoke"
            ).methods
        )
        for n in names
    )
    assert len(paper.methods) == 10
