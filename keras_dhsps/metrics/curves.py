"""Precision-recall and precision@N curves, JSON-serializable.

Three PR recipes coexist in the field, so every curve dict carries a
``"recipe"`` string naming its convention: `pr_curve_by_radius` (Hamming
ball ``d <= r`` for every ``r``), `pr_curve_by_rank` (rank positions, ties
by database index) and `precision_at_n_curve` (top N on a grid). Relevance
is binary (shares >= 1 label). docs/metrics.md §7.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy.typing as npt

from keras_dhsps.metrics import _engine
from keras_dhsps.metrics._inputs import check_choice
from keras_dhsps.metrics._inputs import prepare
from keras_dhsps.metrics._inputs import resolve_k
from keras_dhsps.metrics._specs import EMPTY_QUERIES
from keras_dhsps.metrics._summaries import EMPTY_BALL
from keras_dhsps.metrics._summaries import default_rank_grid
from keras_dhsps.metrics._summaries import pr_curve_by_radius as _pr_by_radius
from keras_dhsps.metrics._summaries import pr_curve_by_rank as _pr_by_rank
from keras_dhsps.metrics._summaries import (
    precision_at_n_curve as _precision_at_n,
)
from keras_dhsps.utils.codes import InvalidInputError

__all__ = [
    "DEFAULT_PRECISION_AT_N",
    "pr_curve_by_radius",
    "pr_curve_by_rank",
    "precision_at_n_curve",
]

# The top-N grid of hashing papers' precision@N plots (100..1000 step 100),
# extended down to 1 and up to 5000.
DEFAULT_PRECISION_AT_N = (
    1,
    5,
    10,
    20,
    50,
    100,
    200,
    300,
    400,
    500,
    600,
    700,
    800,
    900,
    1000,
    2000,
    5000,
)


def pr_curve_by_radius(
    query_codes: npt.ArrayLike,
    query_labels: npt.ArrayLike,
    database_codes: npt.ArrayLike,
    database_labels: npt.ArrayLike,
    *,
    empty_ball: str = "zero",
    empty_queries: str = "zero",
    chunk_size: int | None = None,
    num_threads: int | None = None,
) -> dict:
    """Precision and recall of Hamming lookup at every radius ``0..K``.

    Args:
        query_codes, query_labels, database_codes, database_labels: as in
            `mean_average_precision`.
        empty_ball: an empty ball counts as precision 0 (``"zero"``, default)
            or is left out of that radius's mean (``"skip"``).
        empty_queries: a query with no relevant item in the database counts
            as recall 0 (``"zero"``, default) or is left out (``"skip"``).
        chunk_size: as in `mean_average_precision`.
        num_threads: as in `mean_average_precision`.

    Returns:
        ``{"radius": [0..K], "precision": [...], "recall": [...],
        "recipe": str}`` of plain Python numbers.

    Example (docs/metrics.md §5.1): the ball of radius 0 holds item 0
    (relevant), radius 1 adds items 1 and 2 (one relevant), radius 2 adds
    item 3 (relevant); 3 relevant items in all.

    >>> args = ([[1.0, 1.0]], [[1, 1, 0]],
    ...         [[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]],
    ...         [[1, 0, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1]])
    >>> curve = pr_curve_by_radius(*args)
    >>> curve["radius"], [round(p, 4) for p in curve["precision"]]
    ([0, 1, 2], [1.0, 0.6667, 0.75])
    >>> [round(r, 4) for r in curve["recall"]]
    [0.3333, 0.6667, 1.0]
    """
    check_choice(empty_ball, "empty_ball", EMPTY_BALL)
    check_choice(empty_queries, "empty_queries", EMPTY_QUERIES)
    inputs = prepare(query_codes, query_labels, database_codes, database_labels)
    plan = _engine.Plan(ball_counts=True, total_relevant=True)
    stats = _engine.compute(inputs, plan, chunk_size, num_threads)
    return _pr_by_radius(
        stats, empty_ball=empty_ball, empty_queries=empty_queries
    )


def pr_curve_by_rank(
    query_codes: npt.ArrayLike,
    query_labels: npt.ArrayLike,
    database_codes: npt.ArrayLike,
    database_labels: npt.ArrayLike,
    *,
    ranks: Sequence[int] | None = None,
    num_points: int = 100,
    empty_queries: str = "zero",
    chunk_size: int | None = None,
    num_threads: int | None = None,
) -> dict:
    """Precision ``hits(n)/n`` and recall ``hits(n)/R`` at rank positions.

    Args:
        query_codes, query_labels, database_codes, database_labels: as in
            `mean_average_precision`.
        ranks: rank positions (>= 1; larger than N means N). None: about
            ``num_points`` positions evenly spaced over ``1..N``, N included.
        num_points: see ``ranks``.
        empty_queries: a query with no relevant item in the database counts
            as recall 0 (``"zero"``, default) or is left out of the recall
            mean (``"skip"``). Precision always averages over every query.
        chunk_size: as in `mean_average_precision`.
        num_threads: as in `mean_average_precision`.

    Returns:
        ``{"rank": [...], "precision": [...], "recall": [...],
        "recipe": str}``; ``"rank"`` holds the effective positions.
    """
    check_choice(empty_queries, "empty_queries", EMPTY_QUERIES)
    inputs = prepare(query_codes, query_labels, database_codes, database_labels)
    grid = _rank_grid(ranks, num_points, inputs.num_items)
    plan = _engine.Plan(hits_at=grid, total_relevant=True)
    stats = _engine.compute(inputs, plan, chunk_size, num_threads)
    return _pr_by_rank(
        stats.hits, stats.total_relevant, grid, empty_queries=empty_queries
    )


def precision_at_n_curve(
    query_codes: npt.ArrayLike,
    query_labels: npt.ArrayLike,
    database_codes: npt.ArrayLike,
    database_labels: npt.ArrayLike,
    *,
    n: Sequence[int] = DEFAULT_PRECISION_AT_N,
    chunk_size: int | None = None,
    num_threads: int | None = None,
) -> dict:
    """Precision of the top N for each N of a grid, averaged over queries.

    Args:
        query_codes, query_labels, database_codes, database_labels: as in
            `mean_average_precision`.
        n: the grid; values larger than the database mean the whole database.
        chunk_size: as in `mean_average_precision`.
        num_threads: as in `mean_average_precision`.

    Returns:
        ``{"n": [...requested...], "precision": [...], "recipe": str}``.
    """
    inputs = prepare(query_codes, query_labels, database_codes, database_labels)
    requested = tuple(n)
    effective = tuple(resolve_k(v, inputs.num_items, "n") for v in requested)
    stats = _engine.compute(
        inputs, _engine.Plan(hits_at=effective), chunk_size, num_threads
    )
    return _precision_at_n(stats.hits, requested, effective)


def _rank_grid(
    ranks: Sequence[int] | None, num_points: int, num_items: int
) -> tuple[int, ...]:
    if ranks is None:
        if (
            isinstance(num_points, bool)
            or not isinstance(num_points, int)
            or (num_points < 2)
        ):
            raise InvalidInputError(
                f"num_points must be an int >= 2; got {num_points!r}"
            )
        return default_rank_grid(num_items, num_points)
    return tuple(sorted({resolve_k(v, num_items, "ranks") for v in ranks}))
