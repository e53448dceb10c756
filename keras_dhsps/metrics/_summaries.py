"""Reductions from per-query statistics (the engine's output) to numbers.

Shared by the single-metric functions, the curve functions and
`retrieval_report`, so that a metric has exactly one definition: a ranked
metric reduces with `reduce_metric` as its `_specs.MetricSpec` declares.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from keras_dhsps.metrics._engine import QueryStats
from keras_dhsps.metrics._engine import StatKey
from keras_dhsps.metrics._inputs import is_integer_at_least
from keras_dhsps.metrics._specs import METRICS
from keras_dhsps.utils.codes import InvalidInputError

EMPTY_BALL = ("zero", "skip")
DENOMINATORS = ("retrieved", "all_relevant", "min_k_relevant")
TIES = ("stable", "expected", "worst", "best")
TIE_STATS = {"expected": "tie_mean", "worst": "tie_min", "best": "tie_max"}


def reduce_mean(values: np.ndarray, empty: np.ndarray, mode: str) -> float:
    """Mean over queries; ``empty`` queries count 0 (``"zero"``), are left
    out (``"skip"``; 0.0 if every query is empty) or count 1 (``"one"``)."""
    if mode == "zero":
        return float(np.mean(np.where(empty, 0.0, values)))
    if mode == "one":
        return float(np.mean(np.where(empty, 1.0, values)))
    kept = values[~empty]
    return float(np.mean(kept)) if kept.size else 0.0


def reduce_metric(
    stats: QueryStats,
    name: str,
    k: int,
    ties: str = "stable",
    empty_queries: str = "zero",
) -> float:
    """The mean over queries of metric ``name`` at effective cut-off ``k``,
    in stable order or, for ``ties`` in `TIE_STATS`, its tie-aware
    expectation or bound; empty queries as ``empty_queries`` says (a metric
    that cannot be empty takes the plain mean)."""
    if ties == "stable":
        values = stats[StatKey(name, k)]
        empty_key = StatKey(name, k, "empty")
    else:
        values = stats[StatKey(name, k, TIE_STATS[ties])]
        empty_key = StatKey(name, k, "tie_empty")
    if METRICS[name].empty_modes is None:
        return float(np.mean(values))
    return reduce_mean(values, stats[empty_key], empty_queries)


def _column_means(values: np.ndarray, empty: np.ndarray, mode: str) -> list:
    """`reduce_mean` applied to each column of ``(Q, M)`` arrays."""
    return [
        reduce_mean(values[:, j], empty[:, j], mode)
        for j in range(values.shape[1])
    ]


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    safe = np.where(denominator > 0, denominator, 1)
    return np.where(denominator > 0, numerator / safe, 0.0)


def precision_at(hits: np.ndarray, n: int) -> float:
    """Mean precision of the top ``n`` from ``(Q,)`` hits at rank n."""
    return float(np.mean(hits / n))


def check_radius(radius: object, num_bits: int) -> int:
    """A Hamming radius ``r >= 0``; radii above K mean K (the whole
    database)."""
    if not is_integer_at_least(radius, 0):
        raise InvalidInputError(
            f"radius must be a non-negative int; got {radius!r}"
        )
    return int(min(int(radius), num_bits))


def radius_precision_recall(
    stats: QueryStats,
    radius: int,
    *,
    empty_ball: str,
    empty_queries: str,
) -> tuple[float, float]:
    """Mean precision and recall of the Hamming ball ``{d <= radius}``."""
    size = stats.ball_size[:, radius]
    hits = stats.ball_relevant[:, radius]
    total = stats.total_relevant
    precision = reduce_mean(_ratio(hits, size), size == 0, empty_ball)
    recall = reduce_mean(_ratio(hits, total), total == 0, empty_queries)
    return precision, recall


def pr_curve_by_radius(
    stats: QueryStats, *, empty_ball: str, empty_queries: str
) -> dict:
    """PR curve over radii ``0..K`` (THU DeepHash's Hamming-lookup curve)."""
    size, hits = stats.ball_size, stats.ball_relevant
    total = stats.total_relevant[:, None]
    ball_empty = size == 0
    query_empty = np.broadcast_to(total == 0, hits.shape)
    recipe = (
        "Hamming lookup: for each radius r = 0..K, precision and recall of "
        "the ball {d <= r} per query, averaged over queries; an empty ball "
        f"{'counts as precision 0' if empty_ball == 'zero' else 'is skipped'}"
        "; a query with no relevant item in the database "
        f"{'counts as recall 0' if empty_queries == 'zero' else 'is skipped'}"
        "; relevant = shares >= 1 label"
    )
    return {
        "radius": list(range(size.shape[1])),
        "precision": _column_means(_ratio(hits, size), ball_empty, empty_ball),
        "recall": _column_means(
            _ratio(hits, total), query_empty, empty_queries
        ),
        "recipe": recipe,
    }


def pr_curve_by_rank(
    hits: np.ndarray,
    total_relevant: np.ndarray,
    ranks: Sequence[int],
    *,
    empty_queries: str,
) -> dict:
    """PR curve at rank positions (``hits`` columns = ``ranks``)."""
    ranks_array = np.asarray(ranks)
    total = total_relevant[:, None]
    query_empty = np.broadcast_to(total == 0, hits.shape)
    recipe = (
        "Hamming ranking, ties broken by database index: at rank n, "
        "precision hits(n)/n and recall hits(n)/R per query (R = relevant "
        "items in the database), averaged over queries; precision keeps "
        "every query, a query with R = 0 "
        f"{'counts as recall 0' if empty_queries == 'zero' else 'is skipped'}"
        "; relevant = shares >= 1 label"
    )
    return {
        "rank": [int(n) for n in ranks],
        "precision": [float(v) for v in np.mean(hits / ranks_array, axis=0)],
        "recall": _column_means(
            _ratio(hits, total), query_empty, empty_queries
        ),
        "recipe": recipe,
    }


def precision_at_n_curve(
    hits: np.ndarray, requested: Sequence[int], effective: Sequence[int]
) -> dict:
    """Precision of the top n (``hits`` columns = ``effective``), averaged
    over all queries."""
    values = np.mean(hits / np.asarray(effective), axis=0)
    return {
        "n": [int(n) for n in requested],
        "precision": [float(v) for v in values],
        "recipe": (
            "precision of the top n of the Hamming ranking (ties broken by "
            "database index), averaged over all queries; n larger than the "
            "database means the whole database; relevant = shares >= 1 label"
        ),
    }


def default_rank_grid(num_items: int, num_points: int) -> tuple[int, ...]:
    """About ``num_points`` ranks evenly spaced over ``1..N``, with N."""
    grid = np.unique(
        np.round(np.linspace(1, num_items, max(int(num_points), 2)))
    ).astype(np.int64)
    return tuple(int(n) for n in grid)
