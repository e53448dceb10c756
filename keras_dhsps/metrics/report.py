"""`retrieval_report`: every retrieval metric in one chunked pass
(docs/metrics.md §8)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from keras_dhsps.metrics import _engine
from keras_dhsps.metrics._inputs import RetrievalInputs
from keras_dhsps.metrics._inputs import as_cutoffs
from keras_dhsps.metrics._inputs import check_choice
from keras_dhsps.metrics._inputs import k_label
from keras_dhsps.metrics._inputs import prepare
from keras_dhsps.metrics._inputs import resolve_k
from keras_dhsps.metrics._specs import EMPTY_QUERIES
from keras_dhsps.metrics._specs import METRICS
from keras_dhsps.metrics._summaries import DENOMINATORS
from keras_dhsps.metrics._summaries import EMPTY_BALL
from keras_dhsps.metrics._summaries import TIE_STATS
from keras_dhsps.metrics._summaries import check_radius
from keras_dhsps.metrics._summaries import default_rank_grid
from keras_dhsps.metrics._summaries import pr_curve_by_radius
from keras_dhsps.metrics._summaries import pr_curve_by_rank
from keras_dhsps.metrics._summaries import precision_at_n_curve
from keras_dhsps.metrics._summaries import radius_precision_recall
from keras_dhsps.metrics._summaries import reduce_metric
from keras_dhsps.metrics.curves import DEFAULT_PRECISION_AT_N
from keras_dhsps.utils.codes import InvalidInputError

__all__ = ["retrieval_report"]


def retrieval_report(
    query_codes: npt.ArrayLike,
    query_labels: npt.ArrayLike,
    database_codes: npt.ArrayLike,
    database_labels: npt.ArrayLike,
    *,
    map_at: Sequence[int | str] = ("all",),
    ndcg_at: Sequence[int | str] = (100,),
    acg_at: Sequence[int | str] = (100,),
    wap_at: Sequence[int | str] = (100,),
    radius: int | Sequence[int] = 2,
    precision_at_n: Sequence[int] = DEFAULT_PRECISION_AT_N,
    tie_aware: bool = False,
    curves: bool = True,
    chunk_size: int | None = None,
    num_threads: int | None = None,
    map_denominator: str = "retrieved",
    empty_queries: str = "zero",
    empty_ball: str = "zero",
    pr_rank_points: int = 100,
) -> dict:
    """Computes every retrieval metric from codes and labels in one pass.

    Conventions are those of the single-metric functions (see
    `keras_dhsps.metrics.retrieval`): codes binarized with ``u >= 0`` -> +1,
    Hamming ranking with ties broken by database index, binary relevance
    (shares >= 1 label) for mAP, precision and recall, graded relevance (the
    number of shared labels) for NDCG, ACG and WAP. Inputs are not modified.

    Args:
        query_codes: ``(Q, K)`` real-valued or ±1 codes.
        query_labels: ``(Q, C)`` multi-hot labels.
        database_codes: ``(N, K)`` codes.
        database_labels: ``(N, C)`` multi-hot labels.
        map_at: mAP cut-offs (ints or ``"all"``) -> keys ``"map@all"``,
            ``"map@5000"``; a cut-off above N means N (the key keeps the
            requested value).
        ndcg_at: NDCG cut-offs -> ``"ndcg@100"``.
        acg_at: ACG cut-offs -> ``"acg@100"``.
        wap_at: WAP cut-offs -> ``"wap@100"``.
        radius: Hamming radius (or radii) for lookup precision and recall ->
            ``"precision@r2"``, ``"recall@r2"``; ``()`` for none.
        precision_at_n: the grid of the ``"precision_at_n"`` curve.
        tie_aware: also report, for every mAP and NDCG cut-off, the
            expectation, min and max over random orders within Hamming ties
            (He et al., CVPR 2018): ``"map@all/tie_mean"``,
            ``"map@all/tie_min"``, ``"map@all/tie_max"``, ``"ndcg@100/..."``.
        curves: compute the curves (PR by radius, PR by rank, P@N).
        chunk_size: queries per chunk (about 45 bytes per query-item pair
            of temporaries, per thread); None chooses about 256K pairs
            (~11 MiB), fewer when that would leave a thread idle.
        num_threads: threads for the chunks; None: one per available CPU,
            at most 8, fewer for small problems. See
            `mean_average_precision`.
        map_denominator: ``"retrieved"`` (default), ``"all_relevant"`` or
            ``"min_k_relevant"``, see `mean_average_precision`.
        empty_queries: ``"zero"`` (default) or ``"skip"`` for queries with
            no relevant item (in the top k for mAP/WAP with "retrieved", in
            the database for NDCG and recall).
        empty_ball: ``"zero"`` (default) or ``"skip"`` for an empty Hamming
            ball in precision at radius.
        pr_rank_points: about how many rank positions the PR-by-rank curve
            samples, evenly spaced over ``1..N``.

    Returns:
        ``{"metrics": {name: float}, "curves": {"pr_by_radius": {...},
        "pr_by_rank": {...}, "precision_at_n": {...}}, "settings": {...}}``,
        JSON-serializable; each curve carries a ``"recipe"`` string, and
        ``"settings"`` records the conventions and sizes. ``"curves"`` is
        empty when ``curves=False``.

    Raises:
        InvalidInputError: (a ``ValueError``) for malformed arrays or options.

    Example (docs/metrics.md §5.1: ranking 0, 1, 2, 3 with items 1 and 2
    tied; r = 1, 0, 2, 1). The tie moves mAP@all between 29/36 (stable
    order) and 33/36 (item 2 first), mean 31/36; mAP@2 is 1 in both orders
    (one hit at rank 1, or two hits at ranks 1 and 2). NDCG@3 is 2.5 /
    4.13093 in the stable order and (1 + 3 / log2(3)) / 4.13093 with item 2
    first.

    >>> import json
    >>> args = ([[1.0, 1.0]], [[1, 1, 0]],
    ...         [[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]],
    ...         [[1, 0, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1]])
    >>> report = retrieval_report(*args, map_at=("all", 2), ndcg_at=(3,),
    ...                          acg_at=(3,), wap_at=(4,), radius=1,
    ...                          tie_aware=True)
    >>> {key: round(value, 5) for key, value in report["metrics"].items()}
    ... # doctest: +NORMALIZE_WHITESPACE
    {'map@all': 0.80556, 'map@2': 1.0, 'ndcg@3': 0.60519, 'acg@3': 1.0,
     'wap@4': 1.0, 'precision@r1': 0.66667, 'recall@r1': 0.66667,
     'map@all/tie_mean': 0.86111, 'map@all/tie_min': 0.80556,
     'map@all/tie_max': 0.91667, 'map@2/tie_mean': 1.0, 'map@2/tie_min': 1.0,
     'map@2/tie_max': 1.0, 'ndcg@3/tie_mean': 0.65273,
     'ndcg@3/tie_min': 0.60519, 'ndcg@3/tie_max': 0.70028}
    >>> sorted(report["curves"])
    ['pr_by_radius', 'pr_by_rank', 'precision_at_n']
    >>> _ = json.dumps(report)  # plain Python numbers, lists and strings only
    """
    _check_options(
        map_denominator, empty_queries, empty_ball, tie_aware, curves
    )
    inputs = prepare(query_codes, query_labels, database_codes, database_labels)
    cutoffs = _resolved_cutoffs(
        {"map": map_at, "ndcg": ndcg_at, "acg": acg_at, "wap": wap_at},
        inputs.num_items,
    )
    radii = [
        check_radius(r, inputs.num_bits) for r in as_cutoffs(radius, "radius")
    ]
    requested_n = tuple(as_cutoffs(precision_at_n, "precision_at_n"))
    effective_n = tuple(
        resolve_k(n, inputs.num_items, "precision_at_n") for n in requested_n
    )
    _check_pr_rank_points(pr_rank_points)
    rank_grid = ()
    if curves:
        rank_grid = default_rank_grid(inputs.num_items, pr_rank_points)
    hits_at = tuple(sorted(set(rank_grid) | set(effective_n if curves else ())))
    plan = _plan(
        cutoffs, tie_aware, map_denominator, hits_at, bool(radii) or curves
    )
    stats = _engine.compute(inputs, plan, chunk_size, num_threads)
    metrics = _metric_values(
        stats, plan, cutoffs, radii, empty_queries, empty_ball
    )
    curve_dicts: dict[str, dict] = {}
    if curves:
        curve_dicts = _curves(
            stats,
            hits_at,
            rank_grid,
            (requested_n, effective_n),
            empty_queries=empty_queries,
            empty_ball=empty_ball,
        )
    settings = _settings(
        inputs, map_denominator, empty_queries, empty_ball, tie_aware
    )
    return {"metrics": metrics, "curves": curve_dicts, "settings": settings}


def _plan(
    cutoffs: dict[str, dict[str, int]],
    tie_aware: bool,
    map_denominator: str,
    hits_at: tuple[int, ...],
    lookup: bool,
) -> _engine.Plan:
    """The engine's plan: each metric at its distinct effective cut-offs,
    tie-aware where asked and defined, hits for the curves, and Hamming
    ball counts and totals for ``lookup`` (radii or curves)."""
    unique = {
        name: tuple(sorted(set(c.values()))) for name, c in cutoffs.items()
    }
    return _engine.Plan(
        cutoffs=unique,
        tie_cutoffs={
            name: ks
            for name, ks in unique.items()
            if tie_aware and METRICS[name].tie_aware is not None
        },
        denominator=map_denominator,
        hits_at=hits_at,
        ball_counts=lookup,
        total_relevant=lookup,
    )


def _curves(
    stats: _engine.QueryStats,
    hits_at: tuple[int, ...],
    rank_grid: tuple[int, ...],
    precision_at_n: tuple[tuple[int, ...], tuple[int, ...]],
    *,
    empty_queries: str,
    empty_ball: str,
) -> dict[str, dict]:
    """The report's ``"curves"``; ``stats.hits`` columns are ``hits_at``,
    ``precision_at_n`` is ``(requested, effective)`` N."""
    column = {n: j for j, n in enumerate(hits_at)}
    requested_n, effective_n = precision_at_n

    def hits_for(ranks):
        return stats.hits[:, [column[n] for n in ranks]]

    return {
        "pr_by_radius": pr_curve_by_radius(
            stats, empty_ball=empty_ball, empty_queries=empty_queries
        ),
        "pr_by_rank": pr_curve_by_rank(
            hits_for(rank_grid),
            stats.total_relevant,
            rank_grid,
            empty_queries=empty_queries,
        ),
        "precision_at_n": precision_at_n_curve(
            hits_for(effective_n), requested_n, effective_n
        ),
    }


def _check_options(
    map_denominator: str,
    empty_queries: str,
    empty_ball: str,
    tie_aware: object,
    curves: object,
) -> None:
    """Validates the report's convention options (one error line each)."""
    check_choice(map_denominator, "map_denominator", DENOMINATORS)
    check_choice(empty_queries, "empty_queries", EMPTY_QUERIES)
    check_choice(empty_ball, "empty_ball", EMPTY_BALL)
    if not isinstance(tie_aware, (bool, np.bool_)):
        raise InvalidInputError(f"tie_aware must be a bool; got {tie_aware!r}")
    if not isinstance(curves, (bool, np.bool_)):
        raise InvalidInputError(f"curves must be a bool; got {curves!r}")


def _check_pr_rank_points(pr_rank_points: object) -> None:
    if (
        not isinstance(pr_rank_points, int)
        or isinstance(pr_rank_points, bool)
        or (pr_rank_points < 2)
    ):
        raise InvalidInputError(
            f"pr_rank_points must be an int >= 2; got {pr_rank_points!r}"
        )


def _resolved_cutoffs(
    requested: dict[str, Sequence[int | str]], num_items: int
) -> dict[str, dict[str, int]]:
    """metric name -> {key label ("all", "5000"): effective cut-off}."""
    resolved = {}
    for name, values in requested.items():
        argument = f"{name}_at"
        resolved[name] = {}
        for k in as_cutoffs(values, argument):
            effective = resolve_k(k, num_items, argument)  # validates first
            resolved[name][k_label(k)] = effective
    return resolved


def _metric_values(
    stats: _engine.QueryStats,
    plan: _engine.Plan,
    cutoffs: dict[str, dict[str, int]],
    radii: list[int],
    empty_queries: str,
    empty_ball: str,
) -> dict[str, float]:
    """The report's ``"metrics"``: metrics in stable order (registry
    order), lookup at each radius, then the tie-aware statistics."""
    metrics: dict[str, float] = {}
    for name, labels in cutoffs.items():
        for label, k in labels.items():
            metrics[f"{name}@{label}"] = reduce_metric(
                stats, name, k, "stable", empty_queries
            )
    for r in radii:
        precision, recall = radius_precision_recall(
            stats, r, empty_ball=empty_ball, empty_queries=empty_queries
        )
        metrics[f"precision@r{r}"] = precision
        metrics[f"recall@r{r}"] = recall
    for name in plan.tie_cutoffs:
        for label, k in cutoffs[name].items():
            for ties, statistic in TIE_STATS.items():
                metrics[f"{name}@{label}/{statistic}"] = reduce_metric(
                    stats, name, k, ties, empty_queries
                )
    return metrics


def _settings(
    inputs: RetrievalInputs,
    map_denominator: str,
    empty_queries: str,
    empty_ball: str,
    tie_aware: bool,
) -> dict:
    """The report's ``"settings"``: conventions and sizes."""
    return {
        "binarization": "u >= 0 -> +1",
        "ranking": "Hamming distance, ties broken by database index",
        "relevance": (
            "binary: shares >= 1 label (mAP, precision, recall); graded: "
            "number of shared labels (NDCG, ACG, WAP)"
        ),
        "ndcg": "gain 2^r - 1, discount log2(n + 1), ideal order from the "
        "whole database, mean of per-query ratios",
        "map_denominator": map_denominator,
        "empty_queries": empty_queries,
        "empty_ball": empty_ball,
        "tie_aware": bool(tie_aware),
        "num_queries": inputs.num_queries,
        "num_database": inputs.num_items,
        "num_bits": inputs.num_bits,
        "num_classes": inputs.num_labels,
    }
