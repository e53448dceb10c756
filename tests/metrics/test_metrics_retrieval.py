"""Hand-computed rankings for every metric and every named convention."""

from __future__ import annotations

import numpy as np
import pytest

from keras_dhsps import metrics
from keras_dhsps.metrics._engine import stable_top_k
from keras_dhsps.utils.codes import InvalidInputError

L2 = np.log2

# One query, 6 database items, 4 bits, 3 classes.
# Query: code (+1, +1, +1, +1), labels (1, 1, 0).
#   item  code              labels     d   r (shared)  rel
#   0     (-1, -1, +1, +1)  (1, 1, 0)  2   2           1
#   1     (+1, +1, +1, +1)  (0, 0, 1)  0   0           0
#   2     (+1, +1, +1, -1)  (0, 1, 0)  1   1           1
#   3     (+1, +1, +1, +1)  (1, 0, 1)  0   1           1
#   4     (-1, -1, -1, -1)  (0, 0, 1)  4   0           0
#   5     (+1, -1, +1, +1)  (1, 1, 1)  1   2           1
# Ranking by (d, index): 1, 3 | 2, 5 | 0 | 4  (ties at d = 0 and d = 1)
#   r in rank order:   0, 1, 1, 2, 2, 0
#   rel in rank order: 0, 1, 1, 1, 1, 0; 4 relevant items in the database.
Q_CODES = np.array([[1.0, 1.0, 1.0, 1.0]])
Q_LABELS = np.array([[1, 1, 0]])
DB_CODES = np.array(
    [
        [-1, -1, 1, 1],
        [1, 1, 1, 1],
        [1, 1, 1, -1],
        [1, 1, 1, 1],
        [-1, -1, -1, -1],
        [1, -1, 1, 1],
    ],
    dtype=np.float64,
)
DB_LABELS = np.array(
    [
        [1, 1, 0],
        [0, 0, 1],
        [0, 1, 0],
        [1, 0, 1],
        [0, 0, 1],
        [1, 1, 1],
    ]
)
ARGS = (Q_CODES, Q_LABELS, DB_CODES, DB_LABELS)


def test_ranking_breaks_ties_by_database_index():
    distances, indices = metrics.hamming_ranking(Q_CODES, DB_CODES)
    np.testing.assert_array_equal(indices, [[1, 3, 2, 5, 0, 4]])
    np.testing.assert_array_equal(distances, [[0, 0, 1, 1, 2, 4]])
    distances, indices = metrics.hamming_ranking(Q_CODES, DB_CODES, k=3)
    np.testing.assert_array_equal(indices, [[1, 3, 2]])


def test_relevance_binary_and_graded():
    np.testing.assert_array_equal(
        metrics.shared_label_counts(Q_LABELS, DB_LABELS), [[2, 0, 1, 1, 0, 2]]
    )
    np.testing.assert_array_equal(
        metrics.label_relevance(Q_LABELS, DB_LABELS),
        [[True, False, True, True, False, True]],
    )


def test_map_all_hand_computed():
    # Relevant at ranks 2, 3, 4, 5: AP = (1/2 + 2/3 + 3/4 + 4/5) / 4.
    want = (1 / 2 + 2 / 3 + 3 / 4 + 4 / 5) / 4
    assert metrics.mean_average_precision(*ARGS) == pytest.approx(want)
    assert metrics.mean_average_precision(*ARGS, k="all") == pytest.approx(want)


@pytest.mark.parametrize(
    "denominator, k, want",
    [
        # Top 3 = rel 0, 1, 1: numerator 1/2 + 2/3.
        ("retrieved", 3, (1 / 2 + 2 / 3) / 2),  # 2 hits in the top 3
        ("all_relevant", 3, (1 / 2 + 2 / 3) / 4),  # 4 relevant in database
        ("min_k_relevant", 3, (1 / 2 + 2 / 3) / 3),  # min(3, 4)
        # Top 2 = rel 0, 1: numerator 1/2.
        ("retrieved", 2, (1 / 2) / 1),
        ("all_relevant", 2, (1 / 2) / 4),
        ("min_k_relevant", 2, (1 / 2) / 2),
        # Top 1 = rel 0: no hit. "retrieved" -> empty query -> 0.
        ("retrieved", 1, 0.0),
        ("all_relevant", 1, 0.0),
    ],
)
def test_map_denominator_options(denominator, k, want):
    got = metrics.mean_average_precision(*ARGS, k=k, denominator=denominator)
    assert got == pytest.approx(want)


def test_map_k_larger_than_database_is_the_whole_database():
    # k = 10 > N = 6: the whole database, not an error and never a
    # negative slice (DeepHash-pytorch's topK = -1 drops the last item).
    assert metrics.mean_average_precision(*ARGS, k=10) == pytest.approx(
        metrics.mean_average_precision(*ARGS, k="all")
    )
    assert metrics.mean_average_precision(*ARGS, k=6) == pytest.approx(
        metrics.mean_average_precision(*ARGS, k="all")
    )


def two_queries():
    # Query A = the worked query. Query B: labels (0, 0, 0) -> no item is
    # relevant: an "empty query" under every denominator.
    qc = np.vstack([Q_CODES, Q_CODES])
    ql = np.array([[1, 1, 0], [0, 0, 0]])
    return qc, ql, DB_CODES, DB_LABELS


def test_empty_queries_zero_or_skip():
    ap_a = (1 / 2 + 2 / 3 + 3 / 4 + 4 / 5) / 4
    args = two_queries()
    assert metrics.mean_average_precision(*args) == pytest.approx(ap_a / 2)
    assert metrics.mean_average_precision(
        *args, empty_queries="skip"
    ) == pytest.approx(ap_a)
    # "retrieved" at k = 1: query A has no hit in its top 1 either, so
    # both queries are empty; skip leaves nothing -> 0.0 by definition.
    assert (
        metrics.mean_average_precision(*args, k=1, empty_queries="skip") == 0.0
    )


def test_ndcg_hand_computed():
    # r in rank order 0, 1, 1, 2, 2, 0; gains 2^r - 1 = 0, 1, 1, 3, 3, 0.
    # DCG@3 = 0/log2(2) + 1/log2(3) + 1/log2(4).
    # Ideal order from the whole database: r = 2, 2, 1, 1, 0, 0.
    # IDCG@3 = 3/log2(2) + 3/log2(3) + 1/log2(4).
    want3 = (1 / L2(3) + 1 / L2(4)) / (3 + 3 / L2(3) + 1 / L2(4))
    assert metrics.ndcg_at_k(*ARGS, k=3) == pytest.approx(want3)
    # NDCG@all: DCG adds 3/log2(5) + 3/log2(6); IDCG adds 1/log2(5).
    dcg = 1 / L2(3) + 1 / L2(4) + 3 / L2(5) + 3 / L2(6)
    idcg = 3 + 3 / L2(3) + 1 / L2(4) + 1 / L2(5)
    assert metrics.ndcg_at_k(*ARGS, k="all") == pytest.approx(dcg / idcg)
    assert metrics.ndcg_at_k(*ARGS, k=100) == pytest.approx(dcg / idcg)


def test_ndcg_ideal_order_uses_the_whole_database_not_the_top_k():
    # A common bug sorts only the retrieved top k to build the ideal. At
    # k = 1 the top item has r = 0, so a top-k ideal gives IDCG 0; the
    # whole-database ideal puts an r = 2 item first: IDCG@1 = 3, NDCG = 0.
    assert metrics.ndcg_at_k(*ARGS, k=1) == 0.0
    # At k = 2: DCG = 1/log2(3); IDCG = 3 + 3/log2(3).
    assert metrics.ndcg_at_k(*ARGS, k=2) == pytest.approx(
        (1 / L2(3)) / (3 + 3 / L2(3))
    )


def test_ndcg_is_mean_of_per_query_ratios_and_empty_options():
    # Query A as above; query B has no relevant item (IDCG = 0).
    args = two_queries()
    ndcg_a = (1 / L2(3) + 1 / L2(4)) / (3 + 3 / L2(3) + 1 / L2(4))
    assert metrics.ndcg_at_k(*args, k=3) == pytest.approx(ndcg_a / 2)
    assert metrics.ndcg_at_k(*args, k=3, empty_queries="skip") == pytest.approx(
        ndcg_a
    )
    assert metrics.ndcg_at_k(*args, k=3, empty_queries="one") == pytest.approx(
        (ndcg_a + 1) / 2
    )


def test_ndcg_mean_of_ratios_differs_from_ratio_of_means():
    # Two queries with different IDCG: query A (above) and query C, code
    # equal to item 0's, labels (1, 1, 1): item 0 at d = 0 with r = 2.
    qc = np.vstack([Q_CODES, DB_CODES[0]])
    ql = np.array([[1, 1, 0], [1, 1, 1]])
    per_query = [
        metrics.ndcg_at_k(
            qc[i : i + 1], ql[i : i + 1], DB_CODES, DB_LABELS, k=3
        )
        for i in range(2)
    ]
    both = metrics.ndcg_at_k(qc, ql, DB_CODES, DB_LABELS, k=3)
    assert both == pytest.approx(np.mean(per_query))


def test_acg_hand_computed():
    # r = 0, 1, 1, 2, 2, 0.
    assert metrics.acg_at_k(*ARGS, k=1) == 0.0
    assert metrics.acg_at_k(*ARGS, k=3) == pytest.approx(2 / 3)
    assert metrics.acg_at_k(*ARGS, k=5) == pytest.approx(6 / 5)
    # k > N: the whole database, divided by N = 6.
    assert metrics.acg_at_k(*ARGS, k=50) == pytest.approx(6 / 6)


def test_wap_hand_computed():
    # ACG@n for n = 1..5: 0, 1/2, 2/3, 4/4, 6/5; relevant at n = 2..5.
    want = (1 / 2 + 2 / 3 + 1 + 6 / 5) / 4
    assert metrics.wap_at_k(*ARGS, k=5) == pytest.approx(want)
    assert metrics.wap_at_k(*ARGS, k=1) == 0.0  # no hit: empty -> 0
    args = two_queries()
    assert metrics.wap_at_k(*args, k=5) == pytest.approx(want / 2)
    assert metrics.wap_at_k(*args, k=5, empty_queries="skip") == pytest.approx(
        want
    )


def test_wap_can_exceed_one():
    # Every item shares both query labels: r = 2 everywhere, ACG@n = 2,
    # so WAP = 2 (DSRH's WAP is not bounded by 1; IDHN#2 reports 1.25).
    db_labels = np.tile([1, 1, 0], (6, 1))
    assert metrics.wap_at_k(
        Q_CODES, Q_LABELS, DB_CODES, db_labels, k=4
    ) == pytest.approx(2.0)


def test_precision_at_k_hand_computed():
    # rel = 0, 1, 1, 1, 1, 0.
    assert metrics.precision_at_k(*ARGS, k=1) == 0.0
    assert metrics.precision_at_k(*ARGS, k=2) == pytest.approx(1 / 2)
    assert metrics.precision_at_k(*ARGS, k=4) == pytest.approx(3 / 4)
    assert metrics.precision_at_k(*ARGS, k=60) == pytest.approx(4 / 6)


def test_precision_recall_at_radius_hand_computed():
    # d <= 0: items 1, 3 -> 1 relevant (3): precision 1/2, recall 1/4.
    # d <= 1: items 1, 3, 2, 5 -> 3 relevant: precision 3/4, recall 3/4.
    # d <= 2: adds item 0 (relevant): 4/5 and 4/4.
    for radius, want in [
        (0, (1 / 2, 1 / 4)),
        (1, (3 / 4, 3 / 4)),
        (2, (4 / 5, 1.0)),
        (3, (4 / 5, 1.0)),
        (4, (4 / 6, 1.0)),
        (99, (4 / 6, 1.0)),
    ]:
        got = metrics.precision_recall_at_radius(*ARGS, radius=radius)
        assert got == pytest.approx(want), radius
    assert metrics.precision_recall_at_radius(*ARGS) == pytest.approx(
        (4 / 5, 1.0)
    )  # default radius 2, distance 2 included


def test_empty_ball_zero_or_skip():
    # Query B: code (-1, +1, -1, +1) is at distance >= 2 from every item
    # (d = 2, 2, 3, 2, 2, 3), so its ball of radius 1 is empty.
    qc = np.array([[1.0, 1.0, 1.0, 1.0], [-1.0, 1.0, -1.0, 1.0]])
    ql = np.array([[1, 1, 0], [1, 1, 0]])
    args = (qc, ql, DB_CODES, DB_LABELS)
    # Query A: precision 3/4, recall 3/4; query B: empty ball, recall 0.
    assert metrics.precision_recall_at_radius(*args, radius=1) == pytest.approx(
        (3 / 8, 3 / 8)
    )
    assert metrics.precision_recall_at_radius(
        *args, radius=1, empty_ball="skip"
    ) == pytest.approx((3 / 4, 3 / 8))


def test_recall_of_query_without_relevant_items_zero_or_skip():
    args = two_queries()  # query B has no relevant item in the database
    assert metrics.precision_recall_at_radius(*args, radius=1) == pytest.approx(
        (3 / 8, 3 / 8)
    )
    assert metrics.precision_recall_at_radius(
        *args, radius=1, empty_queries="skip"
    ) == pytest.approx((3 / 8, 3 / 4))


def test_curves_hand_computed():
    by_radius = metrics.pr_curve_by_radius(*ARGS)
    assert by_radius["radius"] == [0, 1, 2, 3, 4]
    assert by_radius["precision"] == pytest.approx(
        [1 / 2, 3 / 4, 4 / 5, 4 / 5, 4 / 6]
    )
    assert by_radius["recall"] == pytest.approx([1 / 4, 3 / 4, 1, 1, 1])
    assert "empty ball counts as precision 0" in by_radius["recipe"]
    by_rank = metrics.pr_curve_by_rank(*ARGS, ranks=[1, 2, 4, 6])
    assert by_rank["precision"] == pytest.approx([0, 1 / 2, 3 / 4, 4 / 6])
    assert by_rank["recall"] == pytest.approx([0, 1 / 4, 3 / 4, 1])
    assert "ties broken by database index" in by_rank["recipe"]
    default = metrics.pr_curve_by_rank(*ARGS)
    assert default["rank"] == [1, 2, 3, 4, 5, 6]
    curve = metrics.precision_at_n_curve(*ARGS, n=(1, 2, 4, 100))
    assert curve["n"] == [1, 2, 4, 100]
    assert curve["precision"] == pytest.approx([0, 1 / 2, 3 / 4, 4 / 6])


def test_database_order_moves_stable_ap_but_not_the_tie_expectation():
    # Swapping the tied items 1 and 3 (both at d = 0) changes the stable
    # ranking to 3, 1, 2, 5, 0, 4 -> rel 1, 0, 1, 1, 1, 0:
    # AP = (1/1 + 2/3 + 3/4 + 4/5) / 4, different from the original.
    perm = [0, 3, 2, 1, 4, 5]
    swapped = (Q_CODES, Q_LABELS, DB_CODES[perm], DB_LABELS[perm])
    assert metrics.mean_average_precision(*swapped) == pytest.approx(
        (1 + 2 / 3 + 3 / 4 + 4 / 5) / 4
    )
    for ties in ("expected", "worst", "best"):
        assert metrics.mean_average_precision(
            *swapped, ties=ties
        ) == pytest.approx(metrics.mean_average_precision(*ARGS, ties=ties))


def test_codes_real_pm1_and_dtypes_agree():
    rng = np.random.default_rng(0)
    relaxed = rng.uniform(-1, 1, size=(5, 12))
    relaxed[0, 0] = 0.0  # binarized to +1
    db = rng.uniform(-1, 1, size=(30, 12))
    ql = (rng.random((5, 4)) < 0.4).astype(int)
    dl = (rng.random((30, 4)) < 0.4).astype(int)
    base = metrics.mean_average_precision(relaxed, ql, db, dl)
    signs = np.where(relaxed >= 0, 1, -1).astype(np.int8)
    db_signs = np.where(db >= 0, 1, -1)
    assert metrics.mean_average_precision(signs, ql, db_signs, dl) == base
    assert (
        metrics.mean_average_precision(
            relaxed.astype(np.float32), ql, db.astype(np.float16), dl
        )
        == base
    )
    for dtype in (bool, np.float32, np.int8, np.uint8):
        assert (
            metrics.mean_average_precision(
                relaxed, ql.astype(dtype), db, dl.astype(dtype)
            )
            == base
        )


def test_many_labels_use_several_label_words():
    # 70 classes -> two 64-bit label words; shared counts span both.
    rng = np.random.default_rng(1)
    ql = (rng.random((3, 70)) < 0.2).astype(int)
    dl = (rng.random((9, 70)) < 0.2).astype(int)
    np.testing.assert_array_equal(
        metrics.shared_label_counts(ql, dl), ql @ dl.T
    )


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(k=0), "positive int or 'all'"),
        (dict(k=-1), "never -1"),
        (dict(k=2.5), "positive int"),
        (dict(k=True), "positive int"),
        (dict(k="ALL"), "positive int"),
        (dict(denominator="all"), "denominator must be one of"),
        (dict(empty_queries="one"), "empty_queries must be one of"),
        (dict(ties="random"), "ties must be one of"),
        (dict(chunk_size=0), "chunk_size"),
    ],
)
def test_map_rejects_bad_options(kwargs, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        metrics.mean_average_precision(*ARGS, **kwargs)


@pytest.mark.parametrize(
    "args, argument",
    [
        ((Q_CODES[0], Q_LABELS, DB_CODES, DB_LABELS), "query_codes"),
        (
            (Q_CODES, Q_LABELS, DB_CODES[:, :3], DB_LABELS),
            "same number of bits",
        ),
        (
            (Q_CODES, Q_LABELS[:, :2], DB_CODES, DB_LABELS),
            "same number of classes",
        ),
        (
            (Q_CODES, Q_LABELS * 2, DB_CODES, DB_LABELS),
            "query_labels must be multi-hot",
        ),
        (
            (Q_CODES, Q_LABELS, DB_CODES, DB_LABELS[:5]),
            "database_labels must have one row",
        ),
        (
            (np.vstack([Q_CODES] * 2), Q_LABELS, DB_CODES, DB_LABELS),
            "query_labels must have one row",
        ),
        (
            (Q_CODES[:0], Q_LABELS[:0], DB_CODES, DB_LABELS),
            "at least one query",
        ),
        ((Q_CODES, Q_LABELS, DB_CODES[:0], DB_LABELS[:0]), "at least one item"),
        ((Q_CODES * np.nan, Q_LABELS, DB_CODES, DB_LABELS), "finite"),
        (
            (Q_CODES, Q_LABELS.astype(str), DB_CODES, DB_LABELS),
            "bool or numeric",
        ),
    ],
)
def test_inputs_are_validated_at_the_boundary(args, argument):
    with pytest.raises(ValueError, match=argument) as info:
        metrics.mean_average_precision(*args)
    assert "shape" in str(info.value) or "positive" in str(info.value)


def test_radius_and_grid_validation():
    with pytest.raises(InvalidInputError, match="radius"):
        metrics.precision_recall_at_radius(*ARGS, radius=-1)
    with pytest.raises(InvalidInputError, match="empty_ball"):
        metrics.precision_recall_at_radius(*ARGS, empty_ball="one")
    with pytest.raises(InvalidInputError, match="num_points"):
        metrics.pr_curve_by_rank(*ARGS, num_points=1)
    with pytest.raises(InvalidInputError, match="ranks"):
        metrics.pr_curve_by_rank(*ARGS, ranks=[0, 3])


def test_stable_top_k_equals_stable_argsort():
    rng = np.random.default_rng(0)
    for _trial in range(30):
        n = int(rng.integers(1, 3000))
        spread = int(rng.integers(1, 50))
        d = rng.integers(0, spread, size=n).astype(np.uint8)
        for k in {1, max(1, n // 7), n}:
            np.testing.assert_array_equal(
                stable_top_k(d, k), np.argsort(d, kind="stable")[:k]
            )
    same = np.zeros(100, dtype=np.uint8)  # one giant tie
    np.testing.assert_array_equal(stable_top_k(same, 10), np.arange(10))
