"""Tie-aware AP and NDCG (He et al., CVPR 2018): expectation and bounds.

The oracle enumerates every order of the database that is sorted by
Hamming distance (all permutations inside each tie group) and averages the
stable-order metric over them; min and max over the same orders are the
bounds.
"""

from __future__ import annotations

import numpy as np
import pytest

from keras_dhsps import metrics

try:
    from tests import metric_oracles as oracle
except ImportError:
    from tests import metric_oracles as oracle

# Worked example of keras_dhsps.metrics.retrieval. Query code (+1, +1),
# labels (1, 1, 0). Database (code; labels; distance d; shared labels r):
#   0: (+1, +1); (1, 0, 0); d = 0; r = 1
#   1: (-1, +1); (0, 0, 1); d = 1; r = 0
#   2: (+1, -1); (1, 1, 0); d = 1; r = 2
#   3: (-1, -1); (0, 1, 1); d = 2; r = 1
EXAMPLE = (
    [[1.0, 1.0]],
    [[1, 1, 0]],
    [[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]],
    [[1, 0, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1]],
)


def test_map_tie_aware_worked_example():
    # Items 1 and 2 tie. Order 0,1,2,3 -> rel 1,0,1,1:
    #   AP = (1/1 + 2/3 + 3/4) / 3 = 29/36 = 0.805556 (the stable order).
    # Order 0,2,1,3 -> rel 1,1,0,1: AP = (1 + 1 + 3/4) / 3 = 33/36.
    # Expectation (both orders equally likely) = 31/36.
    assert metrics.mean_average_precision(*EXAMPLE) == pytest.approx(29 / 36)
    assert metrics.mean_average_precision(
        *EXAMPLE, ties="expected"
    ) == pytest.approx(31 / 36)
    assert metrics.mean_average_precision(
        *EXAMPLE, ties="worst"
    ) == pytest.approx(29 / 36)
    assert metrics.mean_average_precision(
        *EXAMPLE, ties="best"
    ) == pytest.approx(33 / 36)


def test_map_tie_aware_cut_inside_a_tie_group():
    # k = 2 cuts the tie group {1, 2} after its first position.
    # "retrieved": order 0,1 -> rel 1,0 -> AP = 1/1 = 1; order 0,2 ->
    #   rel 1,1 -> AP = (1 + 1)/2 = 1. Every order gives 1.
    # "all_relevant" (3 relevant): 0,1 -> 1/3; 0,2 -> (1 + 1)/3 = 2/3;
    #   expectation 1/2, min 1/3, max 2/3.
    for ties, want in [("expected", 1.0), ("worst", 1.0), ("best", 1.0)]:
        assert metrics.mean_average_precision(
            *EXAMPLE, k=2, ties=ties
        ) == pytest.approx(want)
    for ties, want in [("expected", 0.5), ("worst", 1 / 3), ("best", 2 / 3)]:
        assert metrics.mean_average_precision(
            *EXAMPLE, k=2, ties=ties, denominator="all_relevant"
        ) == pytest.approx(want)


def test_ndcg_tie_aware_worked_example():
    # r in rank order: stable 1,0,2,1; other order 1,2,0,1.
    # IDCG@3 (ideal 2,1,1) = 3 + 1/log2(3) + 1/2.
    # DCG@3 stable = 1 + 0 + 3/2; other = 1 + 3/log2(3) + 0.
    ideal = 3 + 1 / np.log2(3) + 0.5
    stable = 2.5 / ideal
    other = (1 + 3 / np.log2(3)) / ideal
    assert metrics.ndcg_at_k(*EXAMPLE, k=3) == pytest.approx(stable)
    assert metrics.ndcg_at_k(*EXAMPLE, k=3, ties="expected") == pytest.approx(
        (stable + other) / 2
    )
    assert metrics.ndcg_at_k(*EXAMPLE, k=3, ties="worst") == pytest.approx(
        stable
    )
    assert metrics.ndcg_at_k(*EXAMPLE, k=3, ties="best") == pytest.approx(other)


def tiny_cases():
    """Random single queries with at most 7 database items (<= 5040 orders)."""
    for seed in range(40):
        rng = np.random.default_rng(seed)
        num_items = int(rng.integers(1, 8))
        num_bits = int(rng.integers(1, 4))
        num_labels = int(rng.integers(1, 4))
        qc = rng.standard_normal((1, num_bits))
        dc = rng.standard_normal((num_items, num_bits))
        ql = (rng.random((1, num_labels)) < 0.6).astype(int)
        dl = (rng.random((num_items, num_labels)) < 0.5).astype(int)
        yield seed, (qc, ql, dc, dl)


@pytest.mark.parametrize(
    "denominator", ["retrieved", "all_relevant", "min_k_relevant"]
)
def test_tie_aware_ap_equals_mean_over_all_permutations(denominator):
    checked = 0
    for seed, arrays in tiny_cases():
        (q,) = oracle.queries(*arrays)
        for k in range(1, q.n + 1):
            mean, low, high = oracle.oracle_tie_stats(
                q,
                lambda ranked, k=k, q=q: oracle.average_precision(
                    ranked, k, denominator, q.total_relevant
                )[0],
            )
            got = [
                metrics.mean_average_precision(
                    *arrays, k=k, denominator=denominator, ties=ties
                )
                for ties in ("expected", "worst", "best")
            ]
            np.testing.assert_allclose(
                got,
                [mean, low, high],
                atol=1e-12,
                err_msg=f"seed={seed} k={k}",
            )
            checked += 1
    assert checked > 100


def test_tie_aware_ndcg_equals_mean_over_all_permutations():
    for seed, arrays in tiny_cases():
        (q,) = oracle.queries(*arrays)
        for k in range(1, q.n + 1):
            mean, low, high = oracle.oracle_tie_stats(
                q, lambda ranked, k=k: oracle.ndcg(ranked, k)[0]
            )
            got = [
                metrics.ndcg_at_k(*arrays, k=k, ties=ties)
                for ties in ("expected", "worst", "best")
            ]
            np.testing.assert_allclose(
                got,
                [mean, low, high],
                atol=1e-12,
                err_msg=f"seed={seed} k={k}",
            )


def test_stable_value_lies_within_the_tie_bounds():
    rng = np.random.default_rng(5)
    arrays = (
        rng.standard_normal((30, 6)),
        (rng.random((30, 4)) < 0.3).astype(int),
        rng.standard_normal((200, 6)),
        (rng.random((200, 4)) < 0.3).astype(int),
    )
    for k in (10, 50, "all"):
        for fn in (metrics.mean_average_precision, metrics.ndcg_at_k):
            stable = fn(*arrays, k=k)
            low = fn(*arrays, k=k, ties="worst")
            mean = fn(*arrays, k=k, ties="expected")
            high = fn(*arrays, k=k, ties="best")
            assert low - 1e-12 <= stable <= high + 1e-12
            assert low - 1e-12 <= mean <= high + 1e-12
            # 6 bits and 200 items: ties are large and do move the number.
            assert high - low > 1e-3


def test_distinct_distances_make_the_bounds_collapse():
    # With all distances distinct there is one order: mean = min = max =
    # the stable value. Database codes at distances 0, 1, 2, 3 from q.
    q = [[1.0, 1.0, 1.0]]
    db = [[1, 1, 1], [1, 1, -1], [1, -1, -1], [-1, -1, -1]]
    ql, dl = [[1, 0]], [[0, 1], [1, 0], [1, 1], [0, 1]]
    for k in (1, 2, 3, "all"):
        values = [
            metrics.mean_average_precision(q, ql, db, dl, k=k, ties=t)
            for t in ("stable", "expected", "worst", "best")
        ]
        np.testing.assert_allclose(values, values[0], atol=1e-12)


def test_tie_aware_skip_leaves_out_queries_empty_in_every_order():
    # Query 0 shares no label with any item: empty in every order.
    # Query 1 has the worked example's AP distribution (29/36, 33/36).
    qc = [[1.0, 1.0], [1.0, 1.0]]
    ql = [[0, 0, 1], [1, 1, 0]]
    dc = EXAMPLE[2]
    dl = [[1, 0, 0], [0, 0, 0], [1, 1, 0], [0, 1, 0]]
    zero = metrics.mean_average_precision(qc, ql, dc, dl, ties="expected")
    skip = metrics.mean_average_precision(
        qc, ql, dc, dl, ties="expected", empty_queries="skip"
    )
    assert zero == pytest.approx((0 + 31 / 36) / 2)
    assert skip == pytest.approx(31 / 36)


def test_report_tie_keys_agree_with_the_functions():
    rng = np.random.default_rng(8)
    arrays = (
        rng.standard_normal((12, 5)),
        (rng.random((12, 3)) < 0.4).astype(int),
        rng.standard_normal((60, 5)),
        (rng.random((60, 3)) < 0.4).astype(int),
    )
    report = metrics.retrieval_report(
        *arrays,
        map_at=("all", 10),
        ndcg_at=(5,),
        tie_aware=True,
        curves=False,
        map_denominator="all_relevant",
    )["metrics"]
    for key, ties in [
        ("tie_mean", "expected"),
        ("tie_min", "worst"),
        ("tie_max", "best"),
    ]:
        for k in ("all", 10):
            assert report[f"map@{k}/{key}"] == pytest.approx(
                metrics.mean_average_precision(
                    *arrays, k=k, ties=ties, denominator="all_relevant"
                )
            )
        assert report[f"ndcg@5/{key}"] == pytest.approx(
            metrics.ndcg_at_k(*arrays, k=5, ties=ties)
        )
