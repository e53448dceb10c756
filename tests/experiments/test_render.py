"""The Markdown of a table: our columns, reference columns, Δ, sources."""

import os

import pytest

from keras_dhsps.experiments.render import render_markdown
from keras_dhsps.experiments.table_config import load_table_config
from keras_dhsps.experiments.table_config import table_config_path
from tests.paths import REPO

CONFIGS_DIR = os.path.join(REPO, "reproduce", "configs")
CONFIG = os.path.join(CONFIGS_DIR, "digits_mosaic.py")


def test_markdown_shows_mean_and_std_over_seeds():
    table = load_table_config(CONFIG + ":full")
    summary = {
        "rows": [
            {
                "method": "IDHN",
                "bits": 12,
                "metrics": {
                    "map@all": {"mean": 0.5, "std": 0.25},
                    "map@all/tie_mean": {"mean": 0.625, "std": 0.125},
                    "ndcg@100": {"mean": 0.75, "std": 0.0},
                },
            }
        ]
    }
    text = render_markdown(table, summary)
    # mAP twice: index order, then the tie-aware expectation.
    assert "| method | bits | map@all | map@all tie-aware | ndcg@100 |" in text
    assert (
        "| IDHN | 12 | 0.5000 ± 0.2500 | 0.6250 ± 0.1250 | 0.7500 ± 0.0000 |"
        in text
    )
    assert "3 seeds (mean ± std)" in text
    assert "tie-aware* is the expectation" in text


def _summary(*rows):
    return {
        "rows": [
            {
                "method": method,
                "bits": 12,
                "metrics": {"map@all": {"mean": value, "std": 0.0}},
            }
            for method, value in rows
        ]
    }


def test_markdown_paper_ours_delta_columns():
    import dataclasses

    table = dataclasses.replace(
        load_table_config(CONFIG),
        metrics=("map@all",),
        reference={
            ("IDHN", 12, "map@all"): [
                {
                    "value": 0.75,
                    "source": "paper Table 2",
                    "kind": "paper",
                    "protocol": None,
                    "backbone": None,
                }
            ]
        },
    )
    text = render_markdown(table, _summary(("IDHN", 0.5), ("hard-only", 0.25)))
    # 0.5 − 0.75 = −0.25; the row without a cited value shows dashes; no
    # tie-aware value in these rows (—).
    assert (
        "| method | bits | map@all paper | map@all ours | map@all tie-aware "
        "| map@all Δ |" in text
    )
    assert "| IDHN | 12 | 0.7500 [1] | 0.5000 | — | -0.2500 |" in text
    assert "| hard-only | 12 | — | 0.2500 | — | — |" in text
    assert "[1] paper Table 2" in text


def test_markdown_rerun_column_cites_every_source_never_paper():
    import dataclasses

    def rerun(value, source):
        return {
            "value": value,
            "source": source,
            "kind": "rerun",
            "protocol": "1,000 query / 4,000 train",
            "backbone": "AlexNet",
        }

    table = dataclasses.replace(
        load_table_config(CONFIG),
        metrics=("map@all",),
        reference={
            ("IDHN", 12, "map@all"): [rerun(0.74, "A"), rerun(0.7128, "B")],
            ("hard-only", 12, "map@all"): [rerun(0.5, "A")],
        },
    )
    text = render_markdown(table, _summary(("IDHN", 0.5), ("hard-only", 0.25)))
    assert "map@all reported by others (re-run)" in text
    assert "paper" not in text
    # Two values for one cell: both shown, no single Δ; source A keeps its
    # number [1] when cited again.
    assert "| IDHN | 12 | 0.7400 [1] / 0.7128 [2] | 0.5000 | — | — |" in text
    assert "| hard-only | 12 | 0.5000 [1] | 0.2500 | — | -0.2500 |" in text
    assert "[1] A — 1,000 query / 4,000 train; AlexNet" in text
    assert "[2] B — 1,000 query / 4,000 train; AlexNet" in text


@pytest.mark.parametrize(
    "name, metric, values",
    [
        ("rerun_hyp2_mirflickr25k", "map@1000", [0.827, 0.823, 0.822, 0.828]),
        ("rerun_hyp2_nuswide21", "map@5000", [0.772, 0.790, 0.795, 0.803]),
    ],
)
def test_hyp2_rerun_tables_match_their_protocol_and_print_the_source(
    name, metric, values
):
    table = load_table_config(table_config_path(name, CONFIGS_DIR))
    assert table.bits == (12, 24, 36, 48)
    assert table.base.eval.map_at == (int(metric.split("@")[1]),)
    assert table.metrics[0] == metric
    rows = [
        {"method": "IDHN", "bits": bits, "metrics": {}} for bits in table.bits
    ]
    text = render_markdown(table, {"rows": rows})
    for bits, value in zip(table.bits, values, strict=True):
        assert f"| IDHN | {bits} | {value:.4f} [1] | — | — | — |" in text
    assert f"| {metric} reported by others (re-run) |" in text
    assert '[1] Xu et al., "HyP2 Loss' in text and "AlexNet" in text
    # Only the metric with cited values gets a reference column.
    assert "wap@100 reported by others" not in text
    assert "paper" not in text
