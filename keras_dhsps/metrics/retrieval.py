r"""Retrieval metrics for Hamming ranking, as the field defines them.

mAP@k, NDCG@k, ACG@k, WAP@k, precision@k and precision/recall within a
Hamming radius, with DSRH's definitions (Zhao et al., CVPR 2015): ties broken
by database index, binary relevance for mAP and precision, graded relevance
for NDCG, ACG and WAP. The formulas and the worked example the docstrings
share are in docs/metrics.md §5.
"""

from __future__ import annotations

import numpy.typing as npt

from keras_dhsps.metrics import _engine
from keras_dhsps.metrics._inputs import RetrievalInputs
from keras_dhsps.metrics._inputs import check_choice
from keras_dhsps.metrics._inputs import prepare
from keras_dhsps.metrics._inputs import resolve_k
from keras_dhsps.metrics._specs import EMPTY_QUERIES
from keras_dhsps.metrics._specs import EMPTY_QUERIES_NDCG
from keras_dhsps.metrics._summaries import DENOMINATORS
from keras_dhsps.metrics._summaries import EMPTY_BALL
from keras_dhsps.metrics._summaries import TIES
from keras_dhsps.metrics._summaries import check_radius
from keras_dhsps.metrics._summaries import precision_at
from keras_dhsps.metrics._summaries import radius_precision_recall
from keras_dhsps.metrics._summaries import reduce_metric

__all__ = [
    "acg_at_k",
    "mean_average_precision",
    "ndcg_at_k",
    "precision_at_k",
    "precision_recall_at_radius",
    "wap_at_k",
]


def _one_metric(
    inputs: RetrievalInputs,
    name: str,
    k: object,
    *,
    ties: str = "stable",
    denominator: str = "retrieved",
    empty_queries: str = "zero",
    chunk_size: int | None,
    num_threads: int | None,
) -> float:
    """Metric ``name`` of `_specs.METRICS` at cut-off ``k``, alone: the
    engine for that one statistic, then `reduce_metric`."""
    cutoff = resolve_k(k, inputs.num_items)
    request = {name: (cutoff,)}
    if ties == "stable":
        plan = _engine.Plan(cutoffs=request, denominator=denominator)
    else:
        plan = _engine.Plan(tie_cutoffs=request, denominator=denominator)
    stats = _engine.compute(inputs, plan, chunk_size, num_threads)
    return reduce_metric(stats, name, cutoff, ties, empty_queries)


def mean_average_precision(
    query_codes: npt.ArrayLike,
    query_labels: npt.ArrayLike,
    database_codes: npt.ArrayLike,
    database_labels: npt.ArrayLike,
    *,
    k: int | str = "all",
    denominator: str = "retrieved",
    empty_queries: str = "zero",
    ties: str = "stable",
    chunk_size: int | None = None,
    num_threads: int | None = None,
) -> float:
    r"""mAP@k of Hamming ranking, binary relevance (shares >= 1 label).

    .. math:: AP@k(q) = \frac{1}{D(q)} \sum_{n=1}^{k} \mathrm{rel}(n)\,
              \frac{1}{n}\sum_{i \le n} \mathrm{rel}(i), \qquad
              mAP@k = \operatorname{mean}_q AP@k(q)

    Args:
        query_codes: ``(Q, K)`` real-valued or ±1 codes; ``u >= 0`` -> +1.
        query_labels: ``(Q, C)`` multi-hot labels.
        database_codes: ``(N, K)`` codes.
        database_labels: ``(N, C)`` multi-hot labels.
        k: cut-off, a positive int or ``"all"``; larger than N means N.
        denominator: :math:`D(q)`. ``"retrieved"`` (default): relevant items
            in the top k, the DSRH / HashNet / DeepHash-pytorch ``CalcTopMap``
            convention. ``"all_relevant"``: relevant items in the whole
            database (classic IR AP; TF-Similarity ``MapAtK``).
            ``"min_k_relevant"``: ``min(k, all relevant)`` (the usual IR
            AP@k normaliser).
        empty_queries: a query is empty when :math:`D(q) = 0` (no relevant
            item in the top k for "retrieved", none in the database
            otherwise). ``"zero"`` (default): it scores 0 and counts in the
            mean (DeepHash-pytorch). ``"skip"``: it is left out of the mean
            (THU DeepHash, HashNet); 0.0 if every query is empty.
        ties: ``"stable"`` (default): ties broken by database index.
            ``"expected"``: the expectation over uniformly random orders
            within each tie group, ``"worst"`` / ``"best"``: the min / max
            over those orders (He et al., CVPR 2018; `tie_aware`). With
            ``"skip"``, a query is skipped only if it is empty in every
            order; in the orders where it is empty it scores 0.
        chunk_size: queries per chunk (memory ~45 bytes x chunk_size x N
            per thread); None chooses about 256K query-item pairs (~11 MiB),
            fewer when that would leave a thread idle.
        num_threads: threads that process chunks in parallel (NumPy
            releases the GIL in the sorts and arithmetic). None: one per
            CPU this process may use, at most 8, and with the default
            chunk_size fewer for small problems (at least 2**15 query-item
            pairs a thread). The result does not depend on it: every query
            is computed by one thread, alone.

    Returns:
        mAP as a Python float.

    Raises:
        InvalidInputError: (a ``ValueError``) for malformed arrays or options.

    Example (docs/metrics.md §5.1): the ranking is 0, 1, 2, 3 with
    rel = 1, 0, 1, 1 and 3 relevant items. AP@all = (1/1 + 2/3 + 3/4) / 3;
    the other order of the tie gives (1 + 1 + 3/4) / 3, so the tie-aware
    expectation is their mean. AP@2 with "retrieved" has one hit (P@1 = 1),
    so 1/1 = 1.0; with "all_relevant" it is 1/3.

    >>> args = ([[1.0, 1.0]], [[1, 1, 0]],
    ...         [[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]],
    ...         [[1, 0, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1]])
    >>> round(mean_average_precision(*args), 5)
    0.80556
    >>> round(mean_average_precision(*args, ties="expected"), 5)
    0.86111
    >>> mean_average_precision(*args, k=2)
    1.0
    >>> round(mean_average_precision(*args, k=2, denominator="all_relevant"), 4)
    0.3333
    """
    check_choice(denominator, "denominator", DENOMINATORS)
    check_choice(empty_queries, "empty_queries", EMPTY_QUERIES)
    check_choice(ties, "ties", TIES)
    inputs = prepare(query_codes, query_labels, database_codes, database_labels)
    return _one_metric(
        inputs,
        "map",
        k,
        ties=ties,
        denominator=denominator,
        empty_queries=empty_queries,
        chunk_size=chunk_size,
        num_threads=num_threads,
    )


def ndcg_at_k(
    query_codes: npt.ArrayLike,
    query_labels: npt.ArrayLike,
    database_codes: npt.ArrayLike,
    database_labels: npt.ArrayLike,
    *,
    k: int | str,
    empty_queries: str = "zero",
    ties: str = "stable",
    chunk_size: int | None = None,
    num_threads: int | None = None,
) -> float:
    r"""NDCG@k with graded relevance r = number of shared labels (DSRH).

    .. math:: NDCG@k(q) = \frac{\sum_{n \le k} (2^{r(n)} - 1) /
              \log_2(n + 1)}{IDCG@k(q)}

    IDCG@k is the same sum over the ideal order of the *whole database*
    (items sorted by r descending), truncated at k. The result is the mean
    of the per-query ratios (not a ratio of means, as one peer computes).

    Args:
        query_codes, query_labels, database_codes, database_labels: as in
            `mean_average_precision`.
        k: cut-off, a positive int or ``"all"``; larger than N means N.
        empty_queries: a query sharing no label with any database item has
            IDCG = 0. ``"zero"`` (default): it scores 0. ``"skip"``: left out
            of the mean. ``"one"``: it scores 1 (TALR's ``tieNDCG``).
        ties: ``"stable"``, ``"expected"``, ``"worst"`` or ``"best"``, as in
            `mean_average_precision`.
        chunk_size: as in `mean_average_precision`.
        num_threads: as in `mean_average_precision`.

    Returns:
        NDCG as a Python float.

    Example (docs/metrics.md §5.1): r = 1, 0, 2, 1 in rank order, so
    DCG@3 = 1/log2(2) + 0 + 3/log2(4) = 2.5; the ideal order r = 2, 1, 1, 0
    gives IDCG@3 = 3 + 1/log2(3) + 1/2 = 4.13093; NDCG@3 = 0.60519.

    >>> args = ([[1.0, 1.0]], [[1, 1, 0]],
    ...         [[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]],
    ...         [[1, 0, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1]])
    >>> round(ndcg_at_k(*args, k=3), 5)
    0.60519
    """
    check_choice(empty_queries, "empty_queries", EMPTY_QUERIES_NDCG)
    check_choice(ties, "ties", TIES)
    inputs = prepare(query_codes, query_labels, database_codes, database_labels)
    return _one_metric(
        inputs,
        "ndcg",
        k,
        ties=ties,
        empty_queries=empty_queries,
        chunk_size=chunk_size,
        num_threads=num_threads,
    )


def acg_at_k(
    query_codes: npt.ArrayLike,
    query_labels: npt.ArrayLike,
    database_codes: npt.ArrayLike,
    database_labels: npt.ArrayLike,
    *,
    k: int | str,
    chunk_size: int | None = None,
    num_threads: int | None = None,
) -> float:
    r"""Average cumulative gain: mean shared labels over the top k (DSRH).

    .. math:: ACG@k(q) = \frac{1}{k} \sum_{n \le k} r(n)

    Every query counts (an empty query scores 0). A k larger than N means N,
    and the sum is then divided by N.

    Args:
        query_codes, query_labels, database_codes, database_labels: as in
            `mean_average_precision`.
        k: cut-off, a positive int or ``"all"``.
        chunk_size: as in `mean_average_precision`.
        num_threads: as in `mean_average_precision`.

    Returns:
        ACG as a Python float.

    Example (docs/metrics.md §5.1): r = 1, 0, 2, 1, so
    ACG@3 = (1 + 0 + 2) / 3 = 1.0 and ACG@2 = 0.5.

    >>> args = ([[1.0, 1.0]], [[1, 1, 0]],
    ...         [[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]],
    ...         [[1, 0, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1]])
    >>> acg_at_k(*args, k=2)
    0.5
    """
    inputs = prepare(query_codes, query_labels, database_codes, database_labels)
    return _one_metric(
        inputs, "acg", k, chunk_size=chunk_size, num_threads=num_threads
    )


def wap_at_k(
    query_codes: npt.ArrayLike,
    query_labels: npt.ArrayLike,
    database_codes: npt.ArrayLike,
    database_labels: npt.ArrayLike,
    *,
    k: int | str,
    empty_queries: str = "zero",
    chunk_size: int | None = None,
    num_threads: int | None = None,
) -> float:
    r"""Weighted mAP (DSRH): AP with precision replaced by ACG.

    .. math:: WAP@k(q) = \frac{1}{N_{rel}(q, k)} \sum_{n \le k}
              \mathrm{rel}(n)\, ACG@n(q), \quad
              N_{rel}(q, k) = \sum_{n \le k} \mathrm{rel}(n)

    Because ACG counts shared labels, WAP can exceed 1 (an IDHN user reports
    1.2507 on NUS-WIDE).

    Args:
        query_codes, query_labels, database_codes, database_labels: as in
            `mean_average_precision`.
        k: cut-off, a positive int or ``"all"``.
        empty_queries: a query with no relevant item in the top k:
            ``"zero"`` (default) scores 0, ``"skip"`` leaves it out.
        chunk_size: as in `mean_average_precision`.
        num_threads: as in `mean_average_precision`.

    Returns:
        WAP as a Python float.

    Example (docs/metrics.md §5.1): r = 1, 0, 2, 1 and ACG@1..4 =
    1, 1/2, 1, 1; the relevant ranks are 1, 3, 4, so WAP@4 = (1 + 1 + 1) / 3
    = 1.0 and WAP@2 = 1 / 1 = 1.0.

    >>> args = ([[1.0, 1.0]], [[1, 1, 0]],
    ...         [[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]],
    ...         [[1, 0, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1]])
    >>> wap_at_k(*args, k=4)
    1.0
    """
    check_choice(empty_queries, "empty_queries", EMPTY_QUERIES)
    inputs = prepare(query_codes, query_labels, database_codes, database_labels)
    return _one_metric(
        inputs,
        "wap",
        k,
        empty_queries=empty_queries,
        chunk_size=chunk_size,
        num_threads=num_threads,
    )


def precision_at_k(
    query_codes: npt.ArrayLike,
    query_labels: npt.ArrayLike,
    database_codes: npt.ArrayLike,
    database_labels: npt.ArrayLike,
    *,
    k: int | str,
    chunk_size: int | None = None,
    num_threads: int | None = None,
) -> float:
    r"""Precision of the top k (``P@N`` in hashing papers), all queries.

    .. math:: P@k(q) = \frac{1}{k} \sum_{n \le k} \mathrm{rel}(n)

    A k larger than N means N (the precision of the whole database).

    Example (docs/metrics.md §5.1): rel = 1, 0, 1, 1, so P@2 = 0.5.

    >>> args = ([[1.0, 1.0]], [[1, 1, 0]],
    ...         [[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]],
    ...         [[1, 0, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1]])
    >>> precision_at_k(*args, k=2)
    0.5
    """
    inputs = prepare(query_codes, query_labels, database_codes, database_labels)
    cutoff = resolve_k(k, inputs.num_items)
    stats = _engine.compute(
        inputs, _engine.Plan(hits_at=(cutoff,)), chunk_size, num_threads
    )
    return precision_at(stats.hits[:, 0], cutoff)


def precision_recall_at_radius(
    query_codes: npt.ArrayLike,
    query_labels: npt.ArrayLike,
    database_codes: npt.ArrayLike,
    database_labels: npt.ArrayLike,
    *,
    radius: int = 2,
    empty_ball: str = "zero",
    empty_queries: str = "zero",
    chunk_size: int | None = None,
    num_threads: int | None = None,
) -> tuple[float, float]:
    r"""Precision and recall of Hamming lookup within radius r (DHN, HashNet).

    .. math:: P_r(q) = \frac{|\{n: d_n \le r, \mathrm{rel}_n\}|}
              {|\{n: d_n \le r\}|}, \qquad
              R_r(q) = \frac{|\{n: d_n \le r, \mathrm{rel}_n\}|}
              {|\{n: \mathrm{rel}_n\}|}

    The ball includes distance r itself (faiss ``range_search`` is strict:
    "<= 2" needs radius 3 there). A radius above K means K.

    Args:
        query_codes, query_labels, database_codes, database_labels: as in
            `mean_average_precision`.
        radius: Hamming radius, default 2.
        empty_ball: a query with nothing within the radius: ``"zero"``
            (default) scores precision 0 and counts (THU DeepHash, HashNet);
            ``"skip"`` leaves it out of the precision mean (higher numbers at
            long codes; say so when you use it).
        empty_queries: a query with no relevant item in the database has an
            undefined recall: ``"zero"`` (default) counts 0, ``"skip"``
            leaves it out of the recall mean.
        chunk_size: as in `mean_average_precision`.
        num_threads: as in `mean_average_precision`.

    Returns:
        ``(precision, recall)`` as Python floats.

    Example (docs/metrics.md §5.1): within radius 1 lie items 0, 1,
    2, of which 0 and 2 are relevant: precision 2/3; the database holds 3
    relevant items: recall 2/3.

    >>> args = ([[1.0, 1.0]], [[1, 1, 0]],
    ...         [[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]],
    ...         [[1, 0, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1]])
    >>> [round(v, 4) for v in precision_recall_at_radius(*args, radius=1)]
    [0.6667, 0.6667]
    """
    check_choice(empty_ball, "empty_ball", EMPTY_BALL)
    check_choice(empty_queries, "empty_queries", EMPTY_QUERIES)
    inputs = prepare(query_codes, query_labels, database_codes, database_labels)
    r = check_radius(radius, inputs.num_bits)
    plan = _engine.Plan(ball_counts=True, total_relevant=True)
    stats = _engine.compute(inputs, plan, chunk_size, num_threads)
    return radius_precision_recall(
        stats, r, empty_ball=empty_ball, empty_queries=empty_queries
    )
