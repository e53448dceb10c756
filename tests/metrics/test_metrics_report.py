"""retrieval_report: keys, JSON, agreement with the single metrics, no
mutation of the caller's arrays, chunking."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keras_dhsps import metrics
from keras_dhsps.utils.codes import InvalidInputError


def random_arrays(
    seed=0, num_queries=20, num_items=150, num_bits=12, num_labels=5
):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((num_queries, num_bits)).astype(np.float32),
        (rng.random((num_queries, num_labels)) < 0.3).astype(np.uint8),
        rng.standard_normal((num_items, num_bits)).astype(np.float32),
        (rng.random((num_items, num_labels)) < 0.3).astype(np.uint8),
    )


def test_default_report_keys_and_json():
    report = metrics.retrieval_report(*random_arrays())
    assert set(report) == {"metrics", "curves", "settings"}
    assert list(report["metrics"]) == [
        "map@all",
        "ndcg@100",
        "acg@100",
        "wap@100",
        "precision@r2",
        "recall@r2",
    ]
    assert all(type(v) is float for v in report["metrics"].values())
    curves = report["curves"]
    assert set(curves) == {"pr_by_radius", "pr_by_rank", "precision_at_n"}
    assert set(curves["pr_by_radius"]) == {
        "radius",
        "precision",
        "recall",
        "recipe",
    }
    assert set(curves["pr_by_rank"]) == {
        "rank",
        "precision",
        "recall",
        "recipe",
    }
    assert set(curves["precision_at_n"]) == {"n", "precision", "recipe"}
    assert curves["pr_by_radius"]["radius"] == list(range(13))
    assert curves["pr_by_rank"]["rank"][0] == 1
    assert curves["pr_by_rank"]["rank"][-1] == 150
    assert curves["precision_at_n"]["n"] == list(metrics.DEFAULT_PRECISION_AT_N)
    # Strict JSON (no NaN) of plain Python types round-trips exactly.
    text = json.dumps(report, allow_nan=False)
    assert json.loads(text) == report
    settings = report["settings"]
    assert settings["num_queries"] == 20 and settings["num_bits"] == 12
    assert settings["map_denominator"] == "retrieved"


def test_report_agrees_with_single_metric_functions():
    arrays = random_arrays(1)
    report = metrics.retrieval_report(
        *arrays,
        map_at=("all", 50, 5000),
        ndcg_at=(10, 100),
        acg_at=(10,),
        wap_at=(10, 20),
        radius=(0, 2),
        precision_at_n=(1, 10, 1000),
        map_denominator="all_relevant",
        empty_queries="skip",
        empty_ball="skip",
    )
    m = report["metrics"]
    for k in ("all", 50, 5000):
        assert m[f"map@{k}"] == metrics.mean_average_precision(
            *arrays, k=k, denominator="all_relevant", empty_queries="skip"
        )
    # map@5000 > N = 150: the whole database, key keeps the request.
    assert m["map@5000"] == m["map@all"]
    for k in (10, 100):
        assert m[f"ndcg@{k}"] == pytest.approx(
            metrics.ndcg_at_k(*arrays, k=k, empty_queries="skip")
        )
    assert m["acg@10"] == pytest.approx(metrics.acg_at_k(*arrays, k=10))
    for k in (10, 20):
        assert m[f"wap@{k}"] == pytest.approx(
            metrics.wap_at_k(*arrays, k=k, empty_queries="skip")
        )
    for r in (0, 2):
        p, rec = metrics.precision_recall_at_radius(
            *arrays, radius=r, empty_ball="skip", empty_queries="skip"
        )
        assert m[f"precision@r{r}"] == pytest.approx(p)
        assert m[f"recall@r{r}"] == pytest.approx(rec)
    curves = report["curves"]
    assert curves["pr_by_radius"] == metrics.pr_curve_by_radius(
        *arrays, empty_ball="skip", empty_queries="skip"
    )
    expected = metrics.precision_at_n_curve(*arrays, n=(1, 10, 1000))
    assert curves["precision_at_n"]["precision"] == pytest.approx(
        expected["precision"]
    )
    by_rank = metrics.pr_curve_by_rank(*arrays, empty_queries="skip")
    assert curves["pr_by_rank"]["rank"] == by_rank["rank"]
    assert curves["pr_by_rank"]["recall"] == pytest.approx(by_rank["recall"])


def test_report_without_curves_or_radius():
    report = metrics.retrieval_report(
        *random_arrays(),
        radius=(),
        curves=False,
        map_at=(5,),
        ndcg_at=(),
        acg_at=(),
        wap_at=(),
    )
    assert report["curves"] == {}
    assert list(report["metrics"]) == ["map@5"]


def test_report_does_not_modify_inputs_and_accepts_read_only_arrays():
    arrays = random_arrays(2)
    copies = [a.copy() for a in arrays]
    for a in arrays:
        a.flags.writeable = False
    metrics.retrieval_report(*arrays, tie_aware=True, map_at=("all", 10))
    for a, b in zip(arrays, copies, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype


def test_report_is_independent_of_chunk_size():
    arrays = random_arrays(3, num_queries=13)
    reference = metrics.retrieval_report(*arrays, tie_aware=True)
    for chunk_size in (1, 4, 13, 100):
        other = metrics.retrieval_report(
            *arrays, tie_aware=True, chunk_size=chunk_size
        )
        for key, value in reference["metrics"].items():
            assert other["metrics"][key] == pytest.approx(value, abs=1e-12)
        for name, curve in reference["curves"].items():
            for field, values in curve.items():
                if field == "recipe":
                    assert other["curves"][name][field] == values
                else:
                    assert other["curves"][name][field] == pytest.approx(
                        values, abs=1e-12
                    )


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(map_at=(0,)), "map_at"),
        (dict(ndcg_at=("top",)), "ndcg_at"),
        (dict(radius=-2), "radius"),
        (dict(map_denominator="x"), "map_denominator"),
        (dict(empty_ball="x"), "empty_ball"),
        (dict(tie_aware="yes"), "tie_aware"),
        (dict(pr_rank_points=1), "pr_rank_points"),
        (dict(precision_at_n=(0,)), "precision_at_n"),
    ],
)
def test_report_rejects_bad_options(kwargs, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        metrics.retrieval_report(*random_arrays(), **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        # Full sort to rank N, no NDCG: groups come from the sorted order.
        dict(map_at=("all",), ndcg_at=(), acg_at=(), wap_at=()),
        # NDCG too: one (distance, relevance) histogram gives both.
        dict(map_at=("all",), ndcg_at=(7,), acg_at=(), wap_at=()),
        # No full sort (top-k selection), groups from a histogram.
        dict(map_at=(3,), ndcg_at=(), acg_at=(), wap_at=(), curves=False),
    ],
)
def test_every_engine_path_gives_the_same_radius_and_tie_numbers(kwargs):
    arrays = random_arrays(4, num_queries=9, num_items=200, num_bits=7)
    report = metrics.retrieval_report(
        *arrays, radius=(0, 1, 3), tie_aware=True, **kwargs
    )["metrics"]
    for r in (0, 1, 3):
        p, rec = metrics.precision_recall_at_radius(*arrays, radius=r)
        assert report[f"precision@r{r}"] == pytest.approx(p, abs=1e-12)
        assert report[f"recall@r{r}"] == pytest.approx(rec, abs=1e-12)
    for k in kwargs["map_at"]:
        for key, ties in [
            ("tie_mean", "expected"),
            ("tie_min", "worst"),
            ("tie_max", "best"),
        ]:
            assert report[f"map@{k}/{key}"] == pytest.approx(
                metrics.mean_average_precision(*arrays, k=k, ties=ties),
                abs=1e-12,
            )


@pytest.mark.parametrize(
    "num_bits, num_labels", [(48, 10), (64, 21), (130, 38)]
)
def test_full_report_matches_oracle_at_paper_code_lengths(num_bits, num_labels):
    # Regression: with the default radius the engine keys a histogram by
    # distance × (C + 1) + shared labels; computed in the distances' uint8
    # dtype that product wrapped around past 255 (K = 48, C = 10: up to 528),
    # which corrupted NDCG and the radius numbers only at real code lengths.
    from tests.metric_oracles import oracle_acg
    from tests.metric_oracles import oracle_map
    from tests.metric_oracles import oracle_ndcg
    from tests.metric_oracles import oracle_precision_recall_radius
    from tests.metric_oracles import oracle_wap
    from tests.metric_oracles import queries

    arrays = random_arrays(
        5,
        num_queries=12,
        num_items=120,
        num_bits=num_bits,
        num_labels=num_labels,
    )
    # Half the database copies query codes, so small radii are not empty.
    q_codes, q_labels, db_codes, db_labels = arrays
    db_codes = db_codes.copy()
    db_codes[:60] = np.repeat(q_codes, 5, axis=0)
    report = metrics.retrieval_report(
        q_codes,
        q_labels,
        db_codes,
        db_labels,
        ndcg_at=(10, 100),
        acg_at=(10,),
        wap_at=(10,),
    )["metrics"]
    qs = queries(q_codes, q_labels, db_codes, db_labels)
    assert report["map@all"] == pytest.approx(oracle_map(qs, "all"), abs=1e-12)
    assert report["ndcg@10"] == pytest.approx(oracle_ndcg(qs, 10), abs=1e-12)
    assert report["ndcg@100"] == pytest.approx(oracle_ndcg(qs, 100), abs=1e-12)
    assert report["acg@10"] == pytest.approx(oracle_acg(qs, 10), abs=1e-12)
    assert report["wap@10"] == pytest.approx(oracle_wap(qs, 10), abs=1e-12)
    precision, recall = oracle_precision_recall_radius(qs, 2)
    assert precision > 0
    assert report["precision@r2"] == pytest.approx(precision, abs=1e-12)
    assert report["recall@r2"] == pytest.approx(recall, abs=1e-12)
