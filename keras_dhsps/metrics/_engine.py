"""The one chunked pass behind every metric: per-query statistics.

For each chunk of queries the engine computes, once,

1. Hamming distances to the whole database by popcount (``uint8``);
2. where needed, graded relevance ``r = popcount(labels_q & labels_n)`` (the
   number of shared labels) for the whole database;
3. where needed, the stable ranking, ties in database-index order: a full
   ``np.argsort(kind="stable")`` (a radix sort on ``uint8`` distances) when
   ``k_max`` exceeds a quarter of the database, else `stable_top_k`, which
   sorts only the items within the k-th distance; then the graded relevance
   of the top ``k_max`` items in that order;
4. where needed, per-distance histograms of (relevant, all) items or of
   relevance values, for Hamming-ball metrics and tie-aware metrics;

and then every requested per-query statistic from cumulative sums over the
ranked relevance. Relevance is kept as bool when no statistic needs the
number of shared labels. Chunks run on several threads, by default one per
CPU (see `compute`). Memory is bounded by the chunk size (about 45 bytes per
query-item pair, per thread); the per-query outputs are ``O(Q)`` or
``O(Q K)``.
"""

from __future__ import annotations

import dataclasses
import math
import threading

import numpy as np

from keras_dhsps.codes import distance_dtype
from keras_dhsps.codes import shares_a_label
from keras_dhsps.codes import word_distances
from keras_dhsps.metrics import tie_aware
from keras_dhsps.metrics._inputs import RetrievalInputs
from keras_dhsps.metrics._inputs import check_chunk_size
from keras_dhsps.metrics._inputs import check_num_threads
from keras_dhsps.metrics._inputs import default_chunk_size
from keras_dhsps.metrics._inputs import default_num_threads

# Above this fraction of the database the ranking is a full stable sort;
# below it, a top-k selection (`stable_top_k`) that only sorts candidates,
# and ranked relevance comes from the gathered labels of the top items.
_SELECT_FRACTION = 0.25


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to compute. Cut-offs are effective (``1 <= k <= N``).

    Attributes:
        map_at: AP@k cut-offs (stable order).
        denominator: AP denominator, see `mean_average_precision`.
        ndcg_at, acg_at, wap_at: cut-offs for those metrics (stable order).
        hits_at: ranks at which to record hits (precision@N, PR by rank).
        ball_counts: record, for every radius, the items and relevant items
            within it (precision/recall at radius, PR by radius).
        total_relevant: record relevant items in the whole database.
        tie_map_at, tie_ndcg_at: cut-offs for tie-aware AP / NDCG.
    """

    map_at: tuple[int, ...] = ()
    denominator: str = "retrieved"
    ndcg_at: tuple[int, ...] = ()
    acg_at: tuple[int, ...] = ()
    wap_at: tuple[int, ...] = ()
    hits_at: tuple[int, ...] = ()
    ball_counts: bool = False
    total_relevant: bool = False
    tie_map_at: tuple[int, ...] = ()
    tie_ndcg_at: tuple[int, ...] = ()


def _positions_table(num_items: int) -> tuple[np.ndarray, np.ndarray]:
    """``1/n`` and ``1/log2(n+1)`` for ranks ``n = 1..N``."""
    ranks = np.arange(1, num_items + 1, dtype=np.float64)
    return 1.0 / ranks, 1.0 / np.log2(ranks + 1.0)


def _prefix(values: np.ndarray) -> np.ndarray:
    """``P[0] = 0, P[n] = sum_{i<=n} values[i-1]``."""
    out = np.zeros(values.shape[0] + 1, dtype=np.float64)
    np.cumsum(values, out=out[1:])
    return out


def _gathered_shared_labels(
    query_words: np.ndarray,
    database_words: np.ndarray,
    top: np.ndarray,
    dtype: np.dtype,
) -> np.ndarray:
    """Shared labels of ``top`` ``(Q, k)`` database items only."""
    shared = np.zeros(top.shape, dtype=dtype)
    for w in range(query_words.shape[1]):
        column = database_words[:, w][top]
        column &= query_words[:, w, None]
        shared += np.bitwise_count(column).astype(dtype, copy=False)
    return shared


def _row_histograms(keys: np.ndarray, num_bins: int) -> np.ndarray:
    """Per-row ``np.bincount`` of small non-negative integer keys."""
    out = np.empty((keys.shape[0], num_bins), dtype=np.int64)
    for i in range(keys.shape[0]):
        out[i] = np.bincount(keys[i], minlength=num_bins)
    return out


def stable_top_k(distances: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k nearest items, by (distance, index), without a full
    sort.

    Finds the smallest threshold t with ``#{d <= t} >= k`` (estimated from a
    strided sample, then checked and corrected with exact counts), keeps the
    candidates ``d <= t`` in index order and sorts only those, stably.
    Equal to ``np.argsort(distances, kind="stable")[:k]``.
    """
    num_items = distances.shape[0]
    stride = max(1, num_items // 8192)
    sample = np.bincount(distances[::stride])
    expected = np.cumsum(sample) * (num_items / max(sample.sum(), 1))
    t = int(min(np.searchsorted(expected, k), expected.shape[0] - 1))
    count = np.count_nonzero(distances <= t)
    while count < k:
        t += 1
        count = np.count_nonzero(distances <= t)
    while t > 0:
        below = np.count_nonzero(distances <= t - 1)
        if below < k:
            break
        t, count = t - 1, below
    candidates = np.flatnonzero(distances <= t)
    order = np.argsort(distances[candidates], kind="stable")[:k]
    return candidates[order]


def compute(
    inputs: RetrievalInputs,
    plan: Plan,
    chunk_size: int | None = None,
    num_threads: int | None = None,
) -> dict[str, np.ndarray]:
    """Runs the chunked pass and returns per-query statistics.

    Chunks of queries are independent: with ``num_threads > 1`` the calling
    thread and ``num_threads - 1`` workers each take every
    ``num_threads``-th chunk (NumPy releases the GIL in the sorts, gathers
    and arithmetic), each with its own buffers, writing disjoint rows of the
    outputs, so the result is the same for every thread count. None chooses
    `default_num_threads`; a worker's exception is re-raised here.

    Returns:
        A dict of arrays with ``Q`` rows: ``"ap@k"`` (0 where the denominator
        is 0) and ``"ap@k/empty"``; ``"ndcg@k"`` and ``"ndcg@k/empty"`` (ideal
        DCG 0); ``"acg@k"``; ``"wap@k"`` and ``"wap@k/empty"``; ``"hits"``
        ``(Q, len(hits_at))``; ``"ball_size"`` and ``"ball_relevant"``
        ``(Q, K + 1)``, cumulative over radius; ``"total_relevant"``; and for
        tie-aware cut-offs ``"ap@k/tie_mean"``, ``"/tie_min"``, ``"/tie_max"``,
        ``"/tie_empty"`` and ``"ndcg@k/tie_mean"``, ``"/tie_min"``,
        ``"/tie_max"`` (empty as ``"ndcg@k/empty"``).
    """
    num_queries, num_items = inputs.num_queries, inputs.num_items
    num_groups = inputs.num_bits + 1  # distances 0..K
    num_values = inputs.num_labels + 1  # shared labels 0..C
    graded_dtype = distance_dtype(
        inputs.query_label_words.shape[1], inputs.query_label_words.itemsize
    )
    # Validated here, for every public function that calls the engine.
    chunk_size = check_chunk_size(chunk_size, num_items)
    num_threads = check_num_threads(num_threads)
    if num_threads is None:
        num_threads = default_num_threads()
    if chunk_size is None:
        chunk_size = default_chunk_size(num_queries, num_items, num_threads)
    chunk_size = min(chunk_size, num_queries)

    ranked_ks = plan.map_at + plan.ndcg_at + plan.acg_at + plan.wap_at
    k_max = max(ranked_ks + plan.hits_at, default=0)
    full_sort = k_max > _SELECT_FRACTION * num_items
    ndcg_ks = tuple(sorted(set(plan.ndcg_at) | set(plan.tie_ndcg_at)))
    need_total = plan.total_relevant or (
        plan.denominator != "retrieved" and bool(plan.map_at or plan.tie_map_at)
    )
    need_groups = plan.ball_counts or bool(plan.tie_map_at)
    need_value_counts = bool(ndcg_ks)
    # One bincount of (distance, relevance value) keys yields both the
    # per-distance groups and the value counts behind the ideal DCG.
    need_value_histogram = bool(plan.tie_ndcg_at) or (
        need_groups and need_value_counts
    )
    full_graded = need_total or need_value_counts or need_groups or full_sort
    # Statistics that only ask "shares >= 1 label?" (mAP, precision, recall,
    # hits) skip the popcount and keep relevance as bool.
    binary_relevance = not (
        plan.ndcg_at or plan.acg_at or plan.wap_at or plan.tie_ndcg_at
    )
    relevance_dtype = np.dtype(np.bool_) if binary_relevance else graded_dtype
    # With a full sort down to rank N, group boundaries come from the sorted
    # distances and relevant counts from the cumulative hits, for free.
    groups_from_sort = (
        need_groups and k_max == num_items and not need_value_histogram
    )

    inverse_rank, discount = _positions_table(num_items)
    gains = np.exp2(np.arange(num_values, dtype=np.float64)) - 1.0
    discount_prefix = _prefix(discount)
    if plan.tie_map_at:
        harmonic = _prefix(inverse_rank)
        log_factorial = _prefix(
            np.log(np.arange(1, num_items + 1, dtype=np.float64))
        )

    out: dict[str, np.ndarray] = {}

    def new(key: str, shape=(), dtype=np.float64) -> None:
        out[key] = np.zeros((num_queries, *shape), dtype=dtype)

    for k in plan.map_at:
        new(f"ap@{k}"), new(f"ap@{k}/empty", dtype=bool)
    for k in ndcg_ks:
        new(f"ndcg@{k}/empty", dtype=bool)
    for k in plan.ndcg_at:
        new(f"ndcg@{k}")
    for k in plan.acg_at:
        new(f"acg@{k}")
    for k in plan.wap_at:
        new(f"wap@{k}"), new(f"wap@{k}/empty", dtype=bool)
    if plan.hits_at:
        new("hits", (len(plan.hits_at),), np.int64)
    if plan.ball_counts:
        new("ball_size", (num_groups,), np.int64)
        new("ball_relevant", (num_groups,), np.int64)
    if need_total:
        new("total_relevant", dtype=np.int64)
    for k in plan.tie_map_at:
        for stat in ("tie_mean", "tie_min", "tie_max"):
            new(f"ap@{k}/{stat}")
        new(f"ap@{k}/tie_empty", dtype=bool)
    for k in plan.tie_ndcg_at:
        for stat in ("tie_mean", "tie_min", "tie_max"):
            new(f"ndcg@{k}/{stat}")

    dist_dtype = distance_dtype(
        inputs.query_words.shape[1], inputs.query_words.itemsize
    )
    group_values = np.arange(num_groups, dtype=dist_dtype)

    def process_chunk(rows: slice, workspace: _Workspace) -> None:
        size = rows.stop - rows.start
        shape = (size, num_items)
        qlabels = inputs.query_label_words[rows]
        # [1. distances]
        dist = word_distances(
            inputs.query_words[rows],
            inputs.database_words,
            out=workspace.get("dist", shape, dist_dtype),
        )
        # [2. relevance over the whole database: shared labels, or bool]
        graded = None
        if full_graded and binary_relevance:
            graded = shares_a_label(
                qlabels,
                inputs.database_label_words,
                out=workspace.get("graded", shape, relevance_dtype),
            )
        elif full_graded:
            graded = word_distances(
                qlabels,
                inputs.database_label_words,
                out=workspace.get("graded", shape, relevance_dtype),
                combine="and",
            )
        # [3. stable ranking (full sort or top-k selection)]
        ranked = bounds = None
        if k_max:
            ranked = workspace.get("ranked", (size, k_max), relevance_dtype)
            # A 2-D radix argsort beats row-by-row calls at every size.
            order = (
                np.argsort(dist, axis=1, kind="stable") if full_sort else None
            )
            if groups_from_sort:
                bounds = np.empty((size, num_groups), dtype=np.int64)
                sorted_buffer = workspace.get(
                    "sorted", (num_items,), dist_dtype
                )
            for i in range(size):
                if full_sort:
                    top = order[i, :k_max]
                else:
                    top = stable_top_k(dist[i], k_max)
                if graded is not None:
                    np.take(graded[i], top, out=ranked[i], mode="clip")
                else:
                    ranked[i] = _gathered_shared_labels(
                        qlabels[i : i + 1],
                        inputs.database_label_words,
                        top[None, :],
                        graded_dtype,
                    )[0]
                if bounds is not None:
                    sorted_dist = np.take(
                        dist[i], order[i], out=sorted_buffer, mode="clip"
                    )
                    bounds[i] = np.searchsorted(
                        sorted_dist, group_values, side="right"
                    )
            del order
        # [4. histograms by distance / relevance value]
        value_counts = group_sizes = group_relevant = hist = None
        if need_value_histogram:
            keys = workspace.get("keys", dist.shape, np.intp)
            # Compute in intp: in the distances' own (uint8) dtype,
            # distance × (C + 1) wraps around once it passes 255.
            np.multiply(dist, num_values, out=keys, dtype=np.intp)
            keys += graded
            hist = _row_histograms(keys, num_groups * num_values).reshape(
                -1, num_groups, num_values
            )
            value_counts = hist.sum(axis=1)
            group_sizes = hist.sum(axis=2)
            group_relevant = group_sizes - hist[:, :, 0]
        elif need_groups and not groups_from_sort:
            keys = dist.astype(np.uint16 if num_groups < 32768 else np.intp)
            keys *= 2
            keys += graded > 0
            hist = _row_histograms(keys, 2 * num_groups).reshape(
                -1, num_groups, 2
            )
            del keys
            group_sizes = hist.sum(axis=2)
            group_relevant = hist[:, :, 1]
            hist = None
        if need_value_counts and value_counts is None:
            value_counts = _row_histograms(graded, num_values)
        if need_total:
            if group_relevant is not None:
                total = group_relevant.sum(axis=1)
            elif value_counts is not None:
                total = num_items - value_counts[:, 0]
            else:
                total = np.count_nonzero(graded, axis=1)
            out["total_relevant"][rows] = total
        # [5. ranked statistics]
        hits = None
        if ranked is not None:
            hits = _ranked_statistics(
                ranked,
                plan,
                out,
                rows,
                inverse_rank,
                discount,
                gains,
                out.get("total_relevant"),
                workspace,
            )
        if groups_from_sort:
            ball_relevant = np.where(
                bounds > 0,
                np.take_along_axis(hits, np.maximum(bounds - 1, 0), axis=1),
                0,
            )
            group_sizes = np.diff(bounds, axis=1, prepend=0)
            group_relevant = np.diff(ball_relevant, axis=1, prepend=0)
        del hits
        if plan.ball_counts:
            out["ball_size"][rows] = np.cumsum(group_sizes, axis=1)
            out["ball_relevant"][rows] = np.cumsum(group_relevant, axis=1)
        # [6. NDCG normalisation and tie-aware statistics]
        for k in ndcg_ks:
            ideal = tie_aware.ideal_dcg(value_counts, k, gains, discount_prefix)
            empty = ideal <= 0
            out[f"ndcg@{k}/empty"][rows] = empty
            safe = np.where(empty, 1.0, ideal)
            if k in plan.ndcg_at:
                dcg = out[f"ndcg@{k}"][rows]
                out[f"ndcg@{k}"][rows] = np.where(empty, 0.0, dcg / safe)
            if k in plan.tie_ndcg_at:
                stats = tie_aware.tie_aware_dcg(hist, k, gains, discount_prefix)
                for name, dcg in zip(
                    ("tie_mean", "tie_min", "tie_max"), stats, strict=True
                ):
                    out[f"ndcg@{k}/{name}"][rows] = np.where(
                        empty, 0.0, dcg / safe
                    )
        for k in plan.tie_map_at:
            total = out["total_relevant"][rows] if need_total else None
            mean, worst, best, empty = tie_aware.tie_aware_average_precision(
                group_sizes,
                group_relevant,
                k,
                denominator=plan.denominator,
                total_relevant=total,
                harmonic=harmonic,
                log_factorial=log_factorial,
            )
            out[f"ap@{k}/tie_mean"][rows] = mean
            out[f"ap@{k}/tie_min"][rows] = worst
            out[f"ap@{k}/tie_max"][rows] = best
            out[f"ap@{k}/tie_empty"][rows] = empty

    starts = range(0, num_queries, chunk_size)
    chunks = [slice(s, min(s + chunk_size, num_queries)) for s in starts]
    num_threads = max(1, min(num_threads, len(chunks)))
    errors: list[BaseException] = []
    failed = threading.Event()  # the other threads stop after their chunk

    def run_share(share: list[slice]) -> None:
        try:
            workspace = _Workspace()  # buffers are per thread
            for rows in share:
                if failed.is_set():
                    return
                process_chunk(rows, workspace)
        except BaseException as error:  # re-raised in the calling thread
            errors.append(error)
            failed.set()

    workers = [
        threading.Thread(
            target=run_share,
            args=(chunks[t::num_threads],),
            name=f"keras_dhsps-metrics-{t}",
        )
        for t in range(1, num_threads)
    ]
    for worker in workers:
        worker.start()
    run_share(chunks[0::num_threads])  # the calling thread takes a share
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    return out


def _row_dot(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``matrix @ vector`` without BLAS: multithreaded OpenBLAS gemv runs
    25x slower than this loop on a busy 2-core machine."""
    return np.einsum("ij,j->i", matrix, vector)


def _view(buffer: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A C-contiguous ``shape`` view on the start of a flat buffer."""
    return buffer[: math.prod(shape)].reshape(shape)


class _Workspace:
    """Flat buffers reused by every chunk: large temporaries are allocated
    once per call instead of once per chunk (fresh pages cost more than the
    arithmetic on them)."""

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < size or buffer.dtype != dtype:
            buffer = np.empty(size, dtype=dtype)
            self._buffers[name] = buffer
        return _view(buffer, shape)


def _ranked_statistics(
    ranked: np.ndarray,
    plan: Plan,
    out: dict[str, np.ndarray],
    rows: slice,
    inverse_rank: np.ndarray,
    discount: np.ndarray,
    gains: np.ndarray,
    total_relevant: np.ndarray | None,
    workspace: _Workspace,
) -> np.ndarray | None:
    """AP, DCG (unnormalised), ACG, WAP and hits from ranked relevance.

    ``ranked`` is ``(Qc, k_max)``: shared labels of the items in stable
    ranking order. With ``rel_n = [r_n > 0]`` and ``hits_n = sum_{i<=n}
    rel_i``: AP@k numerator ``sum_{n<=k} rel_n hits_n / n``; ACG@k ``=
    sum_{n<=k} r_n / k``; WAP@k numerator ``sum_{n<=k} rel_n ACG@n`` with
    ``ACG@n = G_n / n``, ``G_n = sum_{i<=n} r_i``; DCG@k ``= sum_{n<=k}
    (2^{r_n} - 1) / log2(n + 1)``. Sums up to several k are matrix-vector
    products on column slices (`_row_dot`), over integer cumulative sums
    (float cumulative sums are several times slower).

    Returns:
        The ``(Qc, k_max)`` ``int32`` hits (a workspace view), or None when
        no statistic needed them.
    """
    shape = ranked.shape
    if ranked.dtype == np.bool_:  # binary relevance already
        relevant = ranked
    else:
        relevant = workspace.get("relevant", shape, np.bool_)
        np.greater(ranked, 0, out=relevant)
    hits = None
    if (
        plan.map_at
        or plan.wap_at
        or plan.hits_at
        or plan.ball_counts
        or (plan.tie_map_at)
    ):
        hits = workspace.get("hits", shape, np.int32)
        np.cumsum(relevant, axis=1, dtype=np.int32, out=hits)
    if plan.map_at:
        k_top = max(plan.map_at)
        # Integer product, then a mixed-type dot: half the cost of writing
        # the product as float64.
        weighted = workspace.get("weighted_int", (shape[0], k_top), np.int32)
        np.multiply(hits[:, :k_top], relevant[:, :k_top], out=weighted)
        for k in plan.map_at:
            numerator = _row_dot(weighted[:, :k], inverse_rank[:k])
            if plan.denominator == "retrieved":
                den = hits[:, k - 1]
            elif plan.denominator == "all_relevant":
                den = total_relevant[rows]
            else:
                den = np.minimum(k, total_relevant[rows])
            empty = den == 0
            out[f"ap@{k}"][rows] = np.where(
                empty, 0.0, numerator / np.where(empty, 1, den)
            )
            out[f"ap@{k}/empty"][rows] = empty
    for k in plan.acg_at:
        out[f"acg@{k}"][rows] = ranked[:, :k].sum(axis=1, dtype=np.int64) / k
    if plan.wap_at:
        k_top = max(plan.wap_at)
        cumulative = workspace.get("cumulative", (shape[0], k_top), np.int64)
        np.cumsum(ranked[:, :k_top], axis=1, dtype=np.int64, out=cumulative)
        cumulative *= relevant[:, :k_top]
        weighted = cumulative
        for k in plan.wap_at:
            numerator = _row_dot(weighted[:, :k], inverse_rank[:k])
            den = hits[:, k - 1]
            empty = den == 0
            out[f"wap@{k}"][rows] = np.where(
                empty, 0.0, numerator / np.where(empty, 1, den)
            )
            out[f"wap@{k}/empty"][rows] = empty
    if plan.ndcg_at:
        k_top = max(plan.ndcg_at)
        weighted = workspace.get("weighted", (shape[0], k_top), np.float64)
        np.take(gains, ranked[:, :k_top], out=weighted, mode="clip")
        for k in plan.ndcg_at:
            out[f"ndcg@{k}"][rows] = _row_dot(weighted[:, :k], discount[:k])
    if plan.hits_at:
        out["hits"][rows] = hits[:, np.asarray(plan.hits_at) - 1]
    return hits


__all__ = ["Plan", "compute"]
