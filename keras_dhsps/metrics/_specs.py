r"""The ranked metrics, each declared once: what it needs, how it is computed
per query, how it reduces to one number.

A `MetricSpec` names its report key, the relevance it reads, what of the
whole database it needs, what its tie-aware variant reads and which
``empty_queries`` modes its reduction accepts; the engine derives its stages
from these declarations. The per-query functions read a :class:`Chunk`
(``ranked``, ``relevant``, ``hits``). Adding a ranked metric means adding a
function and a spec here (docs/metrics.md §9 has the sums).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any
from typing import Protocol

import numpy as np

from keras_dhsps.metrics import tie_aware


class Chunk(Protocol):
    """What a per-query function reads of one chunk; the engine's
    ``_engine.Chunk`` provides it (declared here, so the specs do not
    depend on the engine that runs them)."""

    tables: Any
    denominator: str
    workspace: Any
    ranked: np.ndarray | None
    total_relevant: np.ndarray | None
    value_histogram: np.ndarray | None
    group_sizes: np.ndarray | None
    group_relevant: np.ndarray | None

    @property
    def relevant(self) -> np.ndarray: ...

    @property
    def hits(self) -> np.ndarray: ...

    def ideal_dcg(self, k: int) -> tuple[np.ndarray, np.ndarray]: ...


# Per query: values, and which queries are empty (None: none can be).
PerQuery = tuple[np.ndarray, np.ndarray | None]
# Per query over orders within ties: expected, worst, best, always empty.
TiePerQuery = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

EMPTY_QUERIES = ("zero", "skip")
EMPTY_QUERIES_NDCG = ("zero", "skip", "one")


def row_dot(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``matrix @ vector`` without BLAS: multithreaded OpenBLAS gemv runs
    25x slower than this loop on a busy 2-core machine."""
    return np.einsum("ij,j->i", matrix, vector)


def _ratio_or_zero(numerator: np.ndarray, denominator: np.ndarray):
    """``numerator / denominator`` per query, 0 where the denominator is 0;
    also returns where it is 0 (the empty queries)."""
    empty = denominator == 0
    return np.where(empty, 0.0, numerator / np.where(empty, 1, denominator)), (
        empty
    )


def _never(denominator: str) -> bool:
    return False


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """One ranked metric: its needs, its per-query values, its reduction.

    Attributes:
        name: report key prefix (``"map"`` -> ``"map@all"``) and the
            engine's statistic name.
        graded: reads the number of shared labels (else shares >= 1 label).
        ranked: ``(chunk, ks) -> {k: (values, empty)}`` in stable order.
        empty_modes: accepted ``empty_queries``; None: every query counts
            (a plain mean), and ``ranked`` returns None for ``empty``.
        uses_total: ``(denominator) -> bool``: needs the relevant items of
            the whole database (``chunk.total_relevant``).
        ideal: needs the counts of each relevance value in the whole
            database (``chunk.ideal_dcg``).
        tie_aware: ``(chunk, ks, denominator) -> {k: (expected, worst,
            best, empty)}`` over orders within ties, or None.
        tie_input: what ``tie_aware`` reads: ``"groups"`` (items and
            relevant items per distance) or ``"value_histogram"``.
    """

    name: str
    graded: bool
    ranked: Callable[[Chunk, tuple[int, ...]], dict[int, PerQuery]]
    empty_modes: tuple[str, ...] | None
    uses_total: Callable[[str], bool] = _never
    ideal: bool = False
    tie_aware: Callable[..., dict[int, TiePerQuery]] | None = None
    tie_input: str | None = None


def _average_precision(chunk: Chunk, ks: tuple[int, ...]) -> dict:
    """AP@k: ``sum_{n<=k} rel_n hits_n / n`` over the denominator."""
    hits, relevant = chunk.hits, chunk.relevant
    k_top = max(ks)
    # Integer product, then a mixed-type dot: half the cost of writing
    # the product as float64.
    weighted = chunk.workspace.get(
        "weighted_int", (hits.shape[0], k_top), np.int32
    )
    np.multiply(hits[:, :k_top], relevant[:, :k_top], out=weighted)
    out = {}
    for k in ks:
        numerator = row_dot(weighted[:, :k], chunk.tables.inverse_rank[:k])
        if chunk.denominator == "retrieved":
            den = hits[:, k - 1]
        elif chunk.denominator == "all_relevant":
            den = chunk.total_relevant
        else:
            den = np.minimum(k, chunk.total_relevant)
        out[k] = _ratio_or_zero(numerator, den)
    return out


def _tie_aware_average_precision(chunk: Chunk, ks: tuple[int, ...]) -> dict:
    """Expected, worst and best AP@k over orders within ties."""
    return {
        k: tie_aware.tie_aware_average_precision(
            chunk.group_sizes,
            chunk.group_relevant,
            k,
            denominator=chunk.denominator,
            total_relevant=chunk.total_relevant,
            harmonic=chunk.tables.harmonic,
            log_factorial=chunk.tables.log_factorial,
        )
        for k in ks
    }


def _ndcg(chunk: Chunk, ks: tuple[int, ...]) -> dict:
    """DCG@k over the ideal DCG@k of the whole database."""
    k_top = max(ks)
    weighted = chunk.workspace.get(
        "weighted", (chunk.ranked.shape[0], k_top), np.float64
    )
    np.take(
        chunk.tables.gains, chunk.ranked[:, :k_top], out=weighted, mode="clip"
    )
    out = {}
    for k in ks:
        dcg = row_dot(weighted[:, :k], chunk.tables.discount[:k])
        safe_ideal, empty = chunk.ideal_dcg(k)
        out[k] = np.where(empty, 0.0, dcg / safe_ideal), empty
    return out


def _tie_aware_ndcg(chunk: Chunk, ks: tuple[int, ...]) -> dict:
    """Expected, worst and best NDCG@k over orders within ties."""
    out = {}
    for k in ks:
        safe_ideal, empty = chunk.ideal_dcg(k)
        dcgs = tie_aware.tie_aware_dcg(
            chunk.value_histogram,
            k,
            chunk.tables.gains,
            chunk.tables.discount_prefix,
        )
        ndcgs = tuple(np.where(empty, 0.0, dcg / safe_ideal) for dcg in dcgs)
        out[k] = (*ndcgs, empty)
    return out


def _acg(chunk: Chunk, ks: tuple[int, ...]) -> dict:
    """ACG@k: mean shared labels over the top k."""
    ranked = chunk.ranked
    return {
        k: (ranked[:, :k].sum(axis=1, dtype=np.int64) / k, None) for k in ks
    }


def _wap(chunk: Chunk, ks: tuple[int, ...]) -> dict:
    """WAP@k: ``sum_{n<=k} rel_n ACG@n`` over the relevant items."""
    k_top = max(ks)
    ranked = chunk.ranked
    cumulative = chunk.workspace.get(
        "cumulative", (ranked.shape[0], k_top), np.int64
    )
    np.cumsum(ranked[:, :k_top], axis=1, dtype=np.int64, out=cumulative)
    cumulative *= chunk.relevant[:, :k_top]
    out = {}
    for k in ks:
        numerator = row_dot(cumulative[:, :k], chunk.tables.inverse_rank[:k])
        out[k] = _ratio_or_zero(numerator, chunk.hits[:, k - 1])
    return out


# The registry, in report order.
METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec(
            name="map",
            graded=False,
            ranked=_average_precision,
            empty_modes=EMPTY_QUERIES,
            uses_total=lambda denominator: denominator != "retrieved",
            tie_aware=_tie_aware_average_precision,
            tie_input="groups",
        ),
        MetricSpec(
            name="ndcg",
            graded=True,
            ranked=_ndcg,
            empty_modes=EMPTY_QUERIES_NDCG,
            ideal=True,
            tie_aware=_tie_aware_ndcg,
            tie_input="value_histogram",
        ),
        MetricSpec(name="acg", graded=True, ranked=_acg, empty_modes=None),
        MetricSpec(
            name="wap", graded=True, ranked=_wap, empty_modes=EMPTY_QUERIES
        ),
    )
}
