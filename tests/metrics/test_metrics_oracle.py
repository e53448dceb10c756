"""Agreement with an independent brute-force oracle on random data.

The oracle (tests/metric_oracles.py) ranks with Python's ``sorted`` by
(distance, index) and evaluates each definition with plain loops. Random
cases use few bits and few labels so that ties, empty queries and empty
Hamming balls all occur.
"""

from __future__ import annotations

import numpy as np
import pytest

from keras_dhsps import metrics
from tests import metric_oracles as oracle


def random_case(
    seed, num_queries=7, num_items=23, num_bits=5, num_labels=4, density=0.3
):
    rng = np.random.default_rng(seed)
    qc = rng.standard_normal((num_queries, num_bits))
    dc = rng.standard_normal((num_items, num_bits))
    ql = (rng.random((num_queries, num_labels)) < density).astype(np.int64)
    dl = (rng.random((num_items, num_labels)) < density).astype(np.int64)
    return qc, ql, dc, dl


CASES = [
    dict(seed=0),
    dict(seed=1, num_bits=3, num_labels=2),  # huge ties
    dict(seed=2, num_bits=12, num_items=31, num_labels=6),  # K % 8 != 0
    dict(seed=3, num_bits=9, density=0.15),  # many empty queries
    dict(seed=4, num_bits=70, num_items=15, num_labels=3),  # two words
    dict(seed=5, num_items=1),
    dict(seed=6, num_bits=300, num_items=12, num_labels=3),  # uint16 distances
    dict(seed=7, num_bits=4, num_items=12, num_labels=260, density=0.02),
]


@pytest.fixture(params=range(len(CASES)), ids=lambda i: f"case{i}")
def case(request):
    arrays = random_case(**CASES[request.param])
    return arrays, oracle.queries(*arrays)


@pytest.mark.parametrize("k", [1, 3, 10, "all", 1000])
@pytest.mark.parametrize(
    "denominator", ["retrieved", "all_relevant", "min_k_relevant"]
)
@pytest.mark.parametrize("empty", ["zero", "skip"])
def test_map_matches_oracle(case, k, denominator, empty):
    arrays, qs = case
    got = metrics.mean_average_precision(
        *arrays, k=k, denominator=denominator, empty_queries=empty
    )
    assert got == pytest.approx(
        oracle.oracle_map(qs, k, denominator, empty), abs=1e-12
    )


@pytest.mark.parametrize("k", [1, 4, "all", 500])
@pytest.mark.parametrize("empty", ["zero", "skip", "one"])
def test_ndcg_matches_oracle(case, k, empty):
    arrays, qs = case
    got = metrics.ndcg_at_k(*arrays, k=k, empty_queries=empty)
    assert got == pytest.approx(oracle.oracle_ndcg(qs, k, empty), abs=1e-12)


@pytest.mark.parametrize("k", [1, 5, "all", 99])
def test_acg_and_wap_match_oracle(case, k):
    arrays, qs = case
    assert metrics.acg_at_k(*arrays, k=k) == pytest.approx(
        oracle.oracle_acg(qs, k), abs=1e-12
    )
    for empty in ("zero", "skip"):
        assert metrics.wap_at_k(
            *arrays, k=k, empty_queries=empty
        ) == pytest.approx(oracle.oracle_wap(qs, k, empty), abs=1e-12)


@pytest.mark.parametrize("radius", [0, 1, 2, 3, 100])
def test_radius_metrics_match_oracle(case, radius):
    arrays, qs = case
    for empty_ball in ("zero", "skip"):
        for empty in ("zero", "skip"):
            got = metrics.precision_recall_at_radius(
                *arrays,
                radius=radius,
                empty_ball=empty_ball,
                empty_queries=empty,
            )
            want = oracle.oracle_precision_recall_radius(
                qs, radius, empty_ball, empty
            )
            assert got == pytest.approx(want, abs=1e-12)


def test_curves_match_oracle(case):
    arrays, qs = case
    num_bits, num_items = arrays[0].shape[1], arrays[2].shape[0]
    by_radius = metrics.pr_curve_by_radius(*arrays)
    assert by_radius["radius"] == list(range(num_bits + 1))
    for r in by_radius["radius"]:
        p, rec = oracle.oracle_precision_recall_radius(qs, r)
        assert by_radius["precision"][r] == pytest.approx(p, abs=1e-12)
        assert by_radius["recall"][r] == pytest.approx(rec, abs=1e-12)
    ranks = [1, 2, 5, num_items, num_items + 10]
    by_rank = metrics.pr_curve_by_rank(
        *arrays, ranks=ranks, empty_queries="skip"
    )
    effective = sorted({min(n, num_items) for n in ranks})
    assert by_rank["rank"] == effective
    precision, recall = oracle.oracle_pr_by_rank(qs, effective, "skip")
    np.testing.assert_allclose(by_rank["precision"], precision, atol=1e-12)
    np.testing.assert_allclose(by_rank["recall"], recall, atol=1e-12)
    curve = metrics.precision_at_n_curve(*arrays, n=ranks)
    assert curve["n"] == ranks
    np.testing.assert_allclose(
        curve["precision"],
        [
            sum(oracle.precision_at(q.ranked(), n) for q in qs) / len(qs)
            for n in ranks
        ],
        atol=1e-12,
    )


def test_ranking_matches_oracle(case):
    arrays, qs = case
    distances, indices = metrics.hamming_ranking(arrays[0], arrays[2])
    for q, dist_row, index_row in zip(qs, distances, indices, strict=True):
        assert list(index_row) == q.order
        assert list(dist_row) == [q.dist[j] for j in q.order]


@pytest.mark.parametrize("chunk_size", [1, 2, 5, 1000])
def test_report_matches_oracle_for_any_chunk_size(chunk_size):
    arrays = random_case(11, num_queries=9, num_items=40, num_bits=6)
    qs = oracle.queries(*arrays)
    report = metrics.retrieval_report(
        *arrays,
        map_at=("all", 7),
        ndcg_at=(5, "all"),
        acg_at=(3,),
        wap_at=(6,),
        radius=(1, 2),
        precision_at_n=(1, 10, 100),
        chunk_size=chunk_size,
    )
    m = report["metrics"]
    assert m["map@all"] == pytest.approx(oracle.oracle_map(qs, "all"))
    assert m["map@7"] == pytest.approx(oracle.oracle_map(qs, 7))
    assert m["ndcg@5"] == pytest.approx(oracle.oracle_ndcg(qs, 5))
    assert m["ndcg@all"] == pytest.approx(oracle.oracle_ndcg(qs, "all"))
    assert m["acg@3"] == pytest.approx(oracle.oracle_acg(qs, 3))
    assert m["wap@6"] == pytest.approx(oracle.oracle_wap(qs, 6))
    for r in (1, 2):
        p, rec = oracle.oracle_precision_recall_radius(qs, r)
        assert m[f"precision@r{r}"] == pytest.approx(p)
        assert m[f"recall@r{r}"] == pytest.approx(rec)


def test_top_k_selection_path_matches_full_sort():
    # k_max well below a quarter of the database takes the selection path
    # (`stable_top_k`); compare with the oracle on a larger database.
    arrays = random_case(
        21, num_queries=5, num_items=400, num_bits=8, num_labels=5
    )
    qs = oracle.queries(*arrays)
    for k in (1, 10, 50, 99):
        assert metrics.mean_average_precision(*arrays, k=k) == pytest.approx(
            oracle.oracle_map(qs, k), abs=1e-12
        )
        assert metrics.ndcg_at_k(*arrays, k=k) == pytest.approx(
            oracle.oracle_ndcg(qs, k), abs=1e-12
        )
        assert metrics.wap_at_k(*arrays, k=k) == pytest.approx(
            oracle.oracle_wap(qs, k), abs=1e-12
        )
