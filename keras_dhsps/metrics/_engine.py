"""The one chunked pass behind every metric: per-query statistics.

For each chunk of queries the stages run once each, where a requested
metric needs them: `distances` (popcount), `relevance` (graded or binary),
`ranking` (stable; full sort or `stable_top_k`), `histograms` (per
distance), then the per-query statistics of `_specs.METRICS`; the callers
reduce them with `keras_dhsps.metrics._summaries`. `Needs.of` derives what
runs from the metrics' declarations; chunks run on a thread pool
(`compute`). Stages, memory and threads: docs/metrics.md §9.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import math
import threading
from collections.abc import Callable
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from keras_dhsps.metrics import tie_aware
from keras_dhsps.metrics._inputs import RetrievalInputs
from keras_dhsps.metrics._inputs import check_chunk_size
from keras_dhsps.metrics._inputs import check_num_threads
from keras_dhsps.metrics._inputs import default_chunk_size
from keras_dhsps.metrics._inputs import default_num_threads
from keras_dhsps.metrics._specs import METRICS
from keras_dhsps.utils.codes import distance_dtype
from keras_dhsps.utils.codes import shares_a_label
from keras_dhsps.utils.codes import word_distances

# Above this fraction of the database the ranking is a full stable sort;
# below it, a top-k selection (`stable_top_k`) that only sorts candidates,
# and ranked relevance comes from the gathered labels of the top items.
_SELECT_FRACTION = 0.25

TIE_STATISTICS = ("tie_mean", "tie_min", "tie_max", "tie_empty")


class StatKey(NamedTuple):
    """A per-query statistic: metric name, effective cut-off, and
    ``"value"``, ``"empty"`` or one of `TIE_STATISTICS`. (A named tuple:
    built and hashed for every chunk, cheaper than a frozen dataclass.)"""

    metric: str
    k: int
    statistic: str = "value"


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to compute. Cut-offs are effective (``1 <= k <= N``).

    Attributes:
        cutoffs: metric name (a key of `_specs.METRICS`) -> cut-offs, in
            stable order.
        tie_cutoffs: metric name -> cut-offs for the tie-aware expectation
            and bounds.
        denominator: AP denominator, see `mean_average_precision`.
        hits_at: ranks at which to record hits (precision@N, PR by rank).
        ball_counts: record, for every radius, the items and relevant items
            within it (precision/recall at radius, PR by radius).
        total_relevant: record relevant items in the whole database.
    """

    cutoffs: Mapping[str, tuple[int, ...]] = dataclasses.field(
        default_factory=dict
    )
    tie_cutoffs: Mapping[str, tuple[int, ...]] = dataclasses.field(
        default_factory=dict
    )
    denominator: str = "retrieved"
    hits_at: tuple[int, ...] = ()
    ball_counts: bool = False
    total_relevant: bool = False

    def __post_init__(self) -> None:
        for name in self.cutoffs:
            if name not in METRICS:
                raise ValueError(f"no metric {name!r} in _specs.METRICS")
        for name in self.tie_cutoffs:
            if name not in METRICS or METRICS[name].tie_aware is None:
                raise ValueError(f"metric {name!r} has no tie-aware form")

    def ranked_metrics(self):
        """``(spec, cut-offs)`` of the metrics in stable order."""
        return [(METRICS[n], ks) for n, ks in self.cutoffs.items() if ks]

    def tie_metrics(self):
        """``(spec, cut-offs)`` of the tie-aware metrics."""
        return [(METRICS[n], ks) for n, ks in self.tie_cutoffs.items() if ks]


@dataclasses.dataclass(frozen=True)
class Needs:
    """Which stages and intermediate arrays a plan needs, derived once."""

    k_max: int  # ranking depth (0: no ranking)
    full_sort: bool  # full stable argsort, else top-k selection
    binary: bool  # relevance as bool (no metric reads shared labels)
    total: bool  # relevant items in the whole database
    groups: bool  # items and relevant items per distance
    value_counts: bool  # items per relevance value (ideal DCG)
    value_histogram: bool  # items per (distance, relevance value)
    full_relevance: bool  # relevance of the whole database
    groups_from_sort: bool  # group bounds from the full sort, for free

    @classmethod
    def of(cls, plan: Plan, num_items: int) -> Needs:
        ranked, tied = plan.ranked_metrics(), plan.tie_metrics()
        specs = [spec for spec, _ in ranked + tied]
        cutoffs = [k for _, ks in ranked for k in ks]
        k_max = max(cutoffs + list(plan.hits_at), default=0)
        full_sort = k_max > _SELECT_FRACTION * num_items
        total = plan.total_relevant or any(
            spec.uses_total(plan.denominator) for spec in specs
        )
        tie_inputs = {spec.tie_input for spec, _ in tied}
        groups = plan.ball_counts or "groups" in tie_inputs
        value_counts = any(spec.ideal for spec in specs)
        # One bincount of (distance, relevance value) keys yields both the
        # per-distance groups and the value counts behind the ideal DCG.
        value_histogram = "value_histogram" in tie_inputs or (
            groups and value_counts
        )
        return cls(
            k_max=k_max,
            full_sort=full_sort,
            binary=not any(spec.graded for spec in specs),
            total=total,
            groups=groups,
            value_counts=value_counts,
            value_histogram=value_histogram,
            full_relevance=total or value_counts or groups or full_sort,
            # With a full sort down to rank N, group boundaries come from
            # the sorted distances and relevant counts from the hits.
            groups_from_sort=(
                groups and k_max == num_items and not value_histogram
            ),
        )


@dataclasses.dataclass(frozen=True)
class Tables:
    """Per-rank and per-value constants shared by every chunk."""

    inverse_rank: np.ndarray  # 1/n, n = 1..N
    discount: np.ndarray  # 1/log2(n + 1)
    discount_prefix: np.ndarray  # D[n] = sum_{i<=n} discount
    harmonic: np.ndarray  # H[n] = sum_{i<=n} 1/i
    log_factorial: np.ndarray  # log(n!), n = 0..N
    gains: np.ndarray  # 2^r - 1, r = 0..C

    @classmethod
    def of(cls, num_items: int, num_labels: int) -> Tables:
        ranks = np.arange(1, num_items + 1, dtype=np.float64)
        inverse_rank = 1.0 / ranks
        discount = 1.0 / np.log2(ranks + 1.0)
        values = np.arange(num_labels + 1, dtype=np.float64)
        return cls(
            inverse_rank=inverse_rank,
            discount=discount,
            discount_prefix=_prefix(discount),
            harmonic=_prefix(inverse_rank),
            log_factorial=_prefix(np.log(ranks)),
            gains=np.exp2(values) - 1.0,
        )


@dataclasses.dataclass
class QueryStats:
    """The engine's output: arrays with one row per query.

    Attributes:
        per_cutoff: `StatKey` -> ``(Q,)`` values (0 where empty) or empty
            flags.
        hits: ``(Q, len(plan.hits_at))`` relevant items in the top n.
        ball_size, ball_relevant: ``(Q, K + 1)`` items and relevant items
            within each radius (cumulative over radius).
        total_relevant: ``(Q,)`` relevant items in the whole database.
    """

    per_cutoff: dict[StatKey, np.ndarray]
    hits: np.ndarray | None = None
    ball_size: np.ndarray | None = None
    ball_relevant: np.ndarray | None = None
    total_relevant: np.ndarray | None = None

    def __getitem__(self, key: StatKey) -> np.ndarray:
        return self.per_cutoff[key]

    @classmethod
    def allocate(cls, plan: Plan, needs: Needs, shape: tuple[int, int]):
        """Zeroed outputs for ``shape = (Q, K + 1)``."""
        num_queries, num_groups = shape

        def zeros(columns=(), dtype=np.float64):
            return np.zeros((num_queries, *columns), dtype=dtype)

        per_cutoff = {}
        for spec, ks in plan.ranked_metrics():
            for k in ks:
                per_cutoff[StatKey(spec.name, k)] = zeros()
                if spec.empty_modes is not None:
                    per_cutoff[StatKey(spec.name, k, "empty")] = zeros(
                        dtype=bool
                    )
        for spec, ks in plan.tie_metrics():
            for k in ks:
                for statistic in TIE_STATISTICS:
                    dtype = bool if statistic == "tie_empty" else np.float64
                    key = StatKey(spec.name, k, statistic)
                    per_cutoff[key] = zeros(dtype=dtype)
        ball = (num_groups,)
        return cls(
            per_cutoff,
            hits=zeros((len(plan.hits_at),), np.int64)
            if plan.hits_at
            else None,
            ball_size=zeros(ball, np.int64) if plan.ball_counts else None,
            ball_relevant=zeros(ball, np.int64) if plan.ball_counts else None,
            total_relevant=zeros(dtype=np.int64) if needs.total else None,
        )


def _prefix(values: np.ndarray) -> np.ndarray:
    """``P[0] = 0, P[n] = sum_{i<=n} values[i-1]``."""
    out = np.zeros(values.shape[0] + 1, dtype=np.float64)
    np.cumsum(values, out=out[1:])
    return out


class _Workspace:
    """Flat buffers reused by every chunk: large temporaries are allocated
    once per thread instead of once per chunk (fresh pages cost more than
    the arithmetic on them)."""

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """A C-contiguous ``shape`` view on buffer ``name``, grown if
        needed; contents are undefined."""
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < size or buffer.dtype != dtype:
            buffer = np.empty(size, dtype=dtype)
            self._buffers[name] = buffer
        return buffer[:size].reshape(shape)


@dataclasses.dataclass(frozen=True)
class Context:
    """What every chunk of one call shares (read-only), derived once so
    that the per-chunk code does no planning."""

    inputs: RetrievalInputs
    plan: Plan
    needs: Needs
    tables: Tables
    ranked_metrics: list  # (spec, cut-offs), stable order
    tie_metrics: list  # (spec, cut-offs), tie-aware
    hits_columns: np.ndarray  # plan.hits_at - 1
    distance_dtype: np.dtype
    graded_dtype: np.dtype  # shared-label counts
    relevance_dtype: np.dtype  # bool where every metric is binary
    num_groups: int  # distances 0..K
    num_values: int  # shared labels 0..C

    @classmethod
    def of(cls, inputs: RetrievalInputs, plan: Plan) -> Context:
        needs = Needs.of(plan, inputs.num_items)
        graded_dtype = distance_dtype(
            inputs.query_label_words.shape[1],
            inputs.query_label_words.itemsize,
        )
        return cls(
            inputs=inputs,
            plan=plan,
            needs=needs,
            tables=Tables.of(inputs.num_items, inputs.num_labels),
            ranked_metrics=plan.ranked_metrics(),
            tie_metrics=plan.tie_metrics(),
            hits_columns=np.asarray(plan.hits_at, dtype=np.intp) - 1,
            distance_dtype=distance_dtype(
                inputs.query_words.shape[1], inputs.query_words.itemsize
            ),
            graded_dtype=graded_dtype,
            relevance_dtype=(
                np.dtype(np.bool_) if needs.binary else graded_dtype
            ),
            num_groups=inputs.num_bits + 1,
            num_values=inputs.num_labels + 1,
        )


# --------------------------------------------------------------------------
# Stages 1-4: distances, relevance, ranking, histograms.
# --------------------------------------------------------------------------
def distances(context: Context, rows: slice, workspace: _Workspace):
    """Stage 1: ``(Qc, N)`` Hamming distances of the chunk's queries."""
    inputs = context.inputs
    shape = (rows.stop - rows.start, inputs.num_items)
    return word_distances(
        inputs.query_words[rows],
        inputs.database_words,
        out=workspace.get("dist", shape, context.distance_dtype),
    )


def relevance(context: Context, rows: slice, workspace: _Workspace):
    """Stage 2: ``(Qc, N)`` relevance to the whole database (shared labels,
    or bool when every metric is binary), or None when not needed."""
    if not context.needs.full_relevance:
        return None
    inputs = context.inputs
    shape = (rows.stop - rows.start, inputs.num_items)
    out = workspace.get("graded", shape, context.relevance_dtype)
    query_labels = inputs.query_label_words[rows]
    if context.needs.binary:
        return shares_a_label(
            query_labels, inputs.database_label_words, out=out
        )
    return word_distances(
        query_labels, inputs.database_label_words, out=out, combine="and"
    )


def ranking(
    context: Context,
    rows: slice,
    dist: np.ndarray,
    graded: np.ndarray | None,
    workspace: _Workspace,
):
    """Stage 3: the relevance of the top ``k_max`` items in stable order,
    ``(Qc, k_max)``, and with `Needs.groups_from_sort` the ``(Qc, K + 1)``
    rank bounds of each distance (else None). ``(None, None)`` when no
    metric ranks."""
    needs, inputs = context.needs, context.inputs
    if not needs.k_max:
        return None, None
    size, k_max = dist.shape[0], needs.k_max
    ranked = workspace.get("ranked", (size, k_max), context.relevance_dtype)
    # A 2-D radix argsort beats row-by-row calls at every size.
    order = np.argsort(dist, axis=1, kind="stable") if needs.full_sort else None
    bounds = None
    if needs.groups_from_sort:
        bounds = np.empty((size, context.num_groups), dtype=np.int64)
        sorted_buffer = workspace.get(
            "sorted", (inputs.num_items,), context.distance_dtype
        )
        group_values = np.arange(
            context.num_groups, dtype=context.distance_dtype
        )
    query_labels = inputs.query_label_words[rows]
    for i in range(size):
        top = (
            order[i, :k_max]
            if needs.full_sort
            else stable_top_k(dist[i], k_max)
        )
        if graded is not None:
            np.take(graded[i], top, out=ranked[i], mode="clip")
        else:
            ranked[i] = _gathered_shared_labels(
                query_labels[i : i + 1],
                inputs.database_label_words,
                top[None, :],
                context.graded_dtype,
            )[0]
        if bounds is not None:
            sorted_dist = np.take(
                dist[i], order[i], out=sorted_buffer, mode="clip"
            )
            bounds[i] = np.searchsorted(sorted_dist, group_values, "right")
    return ranked, bounds


@dataclasses.dataclass
class Histograms:
    """Stage 4's output, each ``None`` unless needed: ``value_counts``
    ``(Qc, C + 1)`` items per relevance value; ``group_sizes`` and
    ``group_relevant`` ``(Qc, K + 1)`` items and relevant items per
    distance; ``value_histogram`` ``(Qc, K + 1, C + 1)`` items per
    (distance, relevance value)."""

    value_counts: np.ndarray | None = None
    group_sizes: np.ndarray | None = None
    group_relevant: np.ndarray | None = None
    value_histogram: np.ndarray | None = None


def histograms(
    context: Context,
    dist: np.ndarray,
    graded: np.ndarray | None,
    workspace: _Workspace,
) -> Histograms:
    """Stage 4: per-distance and per-value counts by ``np.bincount`` of
    combined keys, one pass over the chunk (see `Histograms`). Groups that
    come from the sort (`Needs.groups_from_sort`) are left to
    `Chunk.groups_from_bounds`."""
    needs = context.needs
    num_groups, num_values = context.num_groups, context.num_values
    out = Histograms()
    if needs.value_histogram:
        keys = workspace.get("keys", dist.shape, np.intp)
        # Compute in intp: in the distances' own (uint8) dtype,
        # distance × (C + 1) wraps around once it passes 255.
        np.multiply(dist, num_values, out=keys, dtype=np.intp)
        keys += graded
        hist = _row_histograms(keys, num_groups * num_values).reshape(
            -1, num_groups, num_values
        )
        out.value_histogram = hist
        out.value_counts = hist.sum(axis=1)
        out.group_sizes = hist.sum(axis=2)
        out.group_relevant = out.group_sizes - hist[:, :, 0]
    elif needs.groups and not needs.groups_from_sort:
        keys = dist.astype(np.uint16 if num_groups < 32768 else np.intp)
        keys *= 2
        keys += graded > 0
        hist = _row_histograms(keys, 2 * num_groups).reshape(-1, num_groups, 2)
        out.group_sizes = hist.sum(axis=2)
        out.group_relevant = hist[:, :, 1]
    if needs.value_counts and out.value_counts is None:
        out.value_counts = _row_histograms(graded, num_values)
    return out


def _total_relevant(
    graded: np.ndarray | None, counts: Histograms, num_items: int
) -> np.ndarray:
    """``(Qc,)`` relevant items in the whole database, from whichever
    counts stage 4 made, else from the relevance."""
    if counts.group_relevant is not None:
        return counts.group_relevant.sum(axis=1)
    if counts.value_counts is not None:
        return num_items - counts.value_counts[:, 0]
    return np.count_nonzero(graded, axis=1)


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


# --------------------------------------------------------------------------
# Stage 5: per-query statistics.
# --------------------------------------------------------------------------
class Chunk:
    """One chunk's intermediate arrays, as the metric definitions
    (`_specs`) read them. Derived arrays are computed on first use."""

    def __init__(
        self,
        context: Context,
        workspace: _Workspace,
        ranked: np.ndarray | None,
        counts: Histograms,
        total_relevant: np.ndarray | None,
    ) -> None:
        self.tables = context.tables
        self.denominator = context.plan.denominator
        self.workspace = workspace
        self.ranked = ranked
        self.total_relevant = total_relevant
        self.value_histogram = counts.value_histogram
        self.value_counts = counts.value_counts
        self.group_sizes = counts.group_sizes
        self.group_relevant = counts.group_relevant
        self._ideal: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # Computed on first use. (Not functools.cached_property: on Python
        # 3.11 it takes a lock shared by every instance, i.e. every thread.)
        self._relevant: np.ndarray | None = None
        self._hits: np.ndarray | None = None

    @property
    def relevant(self) -> np.ndarray:
        """``(Qc, k_max)`` bool: the ranked item shares >= 1 label."""
        if self._relevant is None:
            if self.ranked.dtype == np.bool_:  # binary relevance already
                self._relevant = self.ranked
            else:
                out = self.workspace.get(
                    "relevant", self.ranked.shape, np.bool_
                )
                self._relevant = np.greater(self.ranked, 0, out=out)
        return self._relevant

    @property
    def hits(self) -> np.ndarray:
        """``(Qc, k_max)`` int32: relevant items in the top n."""
        if self._hits is None:
            out = self.workspace.get("hits", self.ranked.shape, np.int32)
            self._hits = np.cumsum(
                self.relevant, axis=1, dtype=np.int32, out=out
            )
        return self._hits

    def ideal_dcg(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(ideal DCG@k with 0 replaced by 1, ideal DCG@k == 0)``."""
        if k not in self._ideal:
            ideal = tie_aware.ideal_dcg(
                self.value_counts,
                k,
                self.tables.gains,
                self.tables.discount_prefix,
            )
            empty = ideal <= 0
            self._ideal[k] = (np.where(empty, 1.0, ideal), empty)
        return self._ideal[k]

    def groups_from_bounds(self, bounds: np.ndarray) -> None:
        """Per-distance groups from the rank bounds of a full sort: sizes
        are differences of the bounds, relevant items those of the hits."""
        hits = self.hits
        ball_relevant = np.where(
            bounds > 0,
            np.take_along_axis(hits, np.maximum(bounds - 1, 0), axis=1),
            0,
        )
        self.group_sizes = np.diff(bounds, axis=1, prepend=0)
        self.group_relevant = np.diff(ball_relevant, axis=1, prepend=0)


def per_query_statistics(
    chunk: Chunk, context: Context, out: QueryStats, rows: slice
) -> None:
    """Stage 5: writes every requested statistic of the chunk's rows."""
    plan = context.plan
    for spec, ks in context.ranked_metrics:
        for k, (values, empty) in spec.ranked(chunk, ks).items():
            out.per_cutoff[StatKey(spec.name, k)][rows] = values
            if empty is not None:
                out.per_cutoff[StatKey(spec.name, k, "empty")][rows] = empty
    for spec, ks in context.tie_metrics:
        for k, values in spec.tie_aware(chunk, ks).items():
            for statistic, value in zip(TIE_STATISTICS, values, strict=True):
                out.per_cutoff[StatKey(spec.name, k, statistic)][rows] = value
    if plan.hits_at:
        out.hits[rows] = chunk.hits[:, context.hits_columns]
    if plan.ball_counts:
        out.ball_size[rows] = np.cumsum(chunk.group_sizes, axis=1)
        out.ball_relevant[rows] = np.cumsum(chunk.group_relevant, axis=1)
    if out.total_relevant is not None:
        out.total_relevant[rows] = chunk.total_relevant


def process_chunk(
    context: Context, out: QueryStats, rows: slice, workspace: _Workspace
) -> None:
    """Stages 1-5 for the queries ``rows``; writes only those rows."""
    dist = distances(context, rows, workspace)
    graded = relevance(context, rows, workspace)
    ranked, bounds = ranking(context, rows, dist, graded, workspace)
    counts = histograms(context, dist, graded, workspace)
    total = None
    if context.needs.total:
        total = _total_relevant(graded, counts, context.inputs.num_items)
    chunk = Chunk(context, workspace, ranked, counts, total)
    if bounds is not None:
        chunk.groups_from_bounds(bounds)
    per_query_statistics(chunk, context, out, rows)


# --------------------------------------------------------------------------
# The pass: chunks on a thread pool.
# --------------------------------------------------------------------------
def compute(
    inputs: RetrievalInputs,
    plan: Plan,
    chunk_size: int | None = None,
    num_threads: int | None = None,
) -> QueryStats:
    """Runs the chunked pass and returns the per-query statistics.

    ``chunk_size`` and ``num_threads`` are validated here, for every public
    function that calls the engine; None chooses `default_chunk_size` and
    `default_num_threads`. See `run_chunks` for the threads.

    Returns:
        `QueryStats`: for every ranked metric and cut-off k,
        ``StatKey(name, k)`` (0 where empty) and, if the metric can be
        empty, ``StatKey(name, k, "empty")``; for tie-aware cut-offs
        ``StatKey(name, k, s)`` for ``s`` in `TIE_STATISTICS`; and the
        hits, ball counts and totals the plan asks for.
    """
    num_queries, num_items = inputs.num_queries, inputs.num_items
    chunk_size = check_chunk_size(chunk_size, num_items)
    num_threads = check_num_threads(num_threads)
    if num_threads is None:
        num_threads = default_num_threads()
    if chunk_size is None:
        chunk_size = default_chunk_size(num_queries, num_items, num_threads)
    chunk_size = min(chunk_size, num_queries)
    context = Context.of(inputs, plan)
    out = QueryStats.allocate(
        plan, context.needs, (num_queries, context.num_groups)
    )
    starts = range(0, num_queries, chunk_size)
    chunks = [slice(s, min(s + chunk_size, num_queries)) for s in starts]
    run_chunks(
        functools.partial(process_chunk, context, out), chunks, num_threads
    )
    return out


def run_chunks(
    process: Callable[[slice, _Workspace], None],
    chunks: list[slice],
    num_threads: int,
) -> None:
    """Calls ``process(rows, workspace)`` for every chunk, on threads.

    Thread ``t`` of ``n = min(num_threads, len(chunks))`` takes chunks
    ``t, t + n, t + 2n, ...`` with its own `_Workspace`: the calling thread
    takes share 0, a ``concurrent.futures.ThreadPoolExecutor`` the others
    (NumPy releases the GIL in the sorts, gathers and arithmetic). Every
    query is computed by one thread, alone, into disjoint rows, so the
    result is the same for every thread count. The first exception (any
    thread) is re-raised here; the other threads stop before their next
    chunk.
    """
    num_threads = max(1, min(num_threads, len(chunks)))
    failed = threading.Event()

    def run_share(index: int) -> None:
        if index:  # names the pool's thread after its share
            threading.current_thread().name = f"keras_dhsps-metrics-{index}"
        workspace = _Workspace()  # buffers are per thread
        for rows in chunks[index::num_threads]:
            if failed.is_set():
                return
            try:
                process(rows, workspace)
            except BaseException:
                failed.set()
                raise

    if num_threads == 1:
        run_share(0)
        return
    with concurrent.futures.ThreadPoolExecutor(num_threads - 1) as pool:
        shares = [pool.submit(run_share, t) for t in range(1, num_threads)]
        try:
            run_share(0)
        finally:
            concurrent.futures.wait(shares)
    for share in shares:
        share.result()  # re-raises a worker's exception


__all__ = ["Plan", "QueryStats", "StatKey", "compute", "stable_top_k"]
