"""The metrics give the numbers of the implementation they replaced.

``tests/fixtures/metrics_reference.json`` holds every number of
`retrieval_report` and of the single-metric functions on fixed random
cases, computed by the engine as it was before it was split into stages
(commit "tests: fixture of the metrics' current numbers"). A refactor of
`keras_dhsps.metrics` must reproduce them to 1e-12. Regenerate (only after
a deliberate change of a definition, and say so in the commit) with::

    PYTHONPATH=. python tests/metrics/test_metrics_reference.py
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from keras_dhsps import metrics
from tests.paths import FIXTURES

FIXTURE = pathlib.Path(FIXTURES) / "metrics_reference.json"


def case_arrays(seed: int, num_bits: int, num_items: int):
    """Random codes with many ties (few bits), 6 labels, and two queries
    without labels (empty in every sense)."""
    rng = np.random.default_rng(seed)
    q_codes = rng.standard_normal((23, num_bits)).astype(np.float32)
    db_codes = rng.standard_normal((num_items, num_bits)).astype(np.float32)
    q_labels = (rng.random((23, 6)) < 0.2).astype(np.uint8)
    db_labels = (rng.random((num_items, 6)) < 0.2).astype(np.uint8)
    q_labels[:2] = 0
    return q_codes, q_labels, db_codes, db_labels


# Each engine path: full sort with NDCG (one (distance, relevance)
# histogram), full sort without graded metrics (groups from the sort), and
# top-k selection (groups from a histogram).
REPORT_CASES = {
    "full_sort_graded": dict(
        map_at=("all", 50, 500),
        ndcg_at=(10, "all"),
        acg_at=(10, 7),
        wap_at=(10, "all"),
        radius=(0, 2, 9),
        precision_at_n=(1, 10, 100, 1000),
        pr_rank_points=17,
    ),
    "full_sort_binary": dict(
        map_at=("all",), ndcg_at=(), acg_at=(), wap_at=(), radius=(1, 3)
    ),
    "top_k": dict(
        map_at=(20, 5),
        ndcg_at=(8,),
        acg_at=(3,),
        wap_at=(12,),
        radius=2,
        curves=False,
    ),
}
OPTIONS = [
    dict(map_denominator=d, empty_queries=e, empty_ball=b)
    for d, e, b in [
        ("retrieved", "zero", "zero"),
        ("all_relevant", "skip", "skip"),
        ("min_k_relevant", "zero", "skip"),
    ]
]


def reference_results() -> dict:
    """Every number of every case, as a JSON-able dict."""
    results = {}
    arrays = case_arrays(0, num_bits=8, num_items=300)
    for name, kwargs in REPORT_CASES.items():
        for i, options in enumerate(OPTIONS):
            report = metrics.retrieval_report(
                *arrays, tie_aware=True, chunk_size=5, **kwargs, **options
            )
            results[f"report/{name}/{i}"] = {
                "metrics": report["metrics"],
                "curves": report["curves"],
            }
    small = case_arrays(1, num_bits=6, num_items=120)
    for k in ("all", 40, 7):
        for ties in ("stable", "expected", "worst", "best"):
            for den in ("retrieved", "all_relevant", "min_k_relevant"):
                results[f"map/{k}/{ties}/{den}/skip"] = (
                    metrics.mean_average_precision(
                        *small,
                        k=k,
                        ties=ties,
                        denominator=den,
                        empty_queries="skip",
                    )
                )
            for empty in ("zero", "skip", "one"):
                results[f"ndcg/{k}/{ties}/{empty}"] = metrics.ndcg_at_k(
                    *small, k=k, ties=ties, empty_queries=empty
                )
        results[f"acg/{k}"] = metrics.acg_at_k(*small, k=k)
        results[f"wap/{k}/skip"] = metrics.wap_at_k(
            *small, k=k, empty_queries="skip"
        )
        results[f"precision/{k}"] = metrics.precision_at_k(*small, k=k)
    for r in (0, 1, 4):
        results[f"radius/{r}"] = list(
            metrics.precision_recall_at_radius(
                *small, radius=r, empty_ball="skip", empty_queries="skip"
            )
        )
    results["curve/radius"] = metrics.pr_curve_by_radius(*small)
    results["curve/rank"] = metrics.pr_curve_by_rank(*small, num_points=9)
    results["curve/precision_at_n"] = metrics.precision_at_n_curve(
        *small, n=(1, 5, 50, 500)
    )
    return results


def _assert_close(actual, expected, where: str) -> None:
    if isinstance(expected, dict):
        assert sorted(actual) == sorted(expected), where
        for key in expected:
            _assert_close(actual[key], expected[key], f"{where}/{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _assert_close(a, e, f"{where}[{i}]")
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=1e-12, abs=1e-12), where
    else:
        assert actual == expected, where


def test_every_number_equals_the_previous_implementation():
    expected = json.loads(FIXTURE.read_text())
    actual = json.loads(json.dumps(reference_results()))
    assert sorted(actual) == sorted(expected)
    _assert_close(actual, expected, "")


if __name__ == "__main__":
    FIXTURE.write_text(json.dumps(reference_results(), indent=1) + "\n")
