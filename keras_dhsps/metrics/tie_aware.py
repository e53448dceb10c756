r"""Tie-aware AP and NDCG: expectation and bounds over orders within ties.

Following He et al., "Hashing as Tie-Aware Learning to Rank" (CVPR 2018,
``kunhe/TALR``), each group of items at one Hamming distance is taken as
ordered uniformly at random; per query this computes the expected AP / NDCG
over those orders in closed form, and the best and worst case. The
derivation (notation ``n_g``, ``r_g``, ``N_g``, ``R_g``, ``H``) is in
docs/metrics.md §6.
"""

from __future__ import annotations

import numpy as np

__all__ = ["tie_aware_average_precision", "tie_aware_dcg", "ideal_dcg"]


def _span(prefix: np.ndarray, start: np.ndarray, stop: np.ndarray, k: int):
    """``sum_{i=start+1}^{stop} w_i`` for positions truncated at ``k``."""
    return prefix[np.minimum(stop, k)] - prefix[np.minimum(start, k)]


def tie_aware_average_precision(
    group_sizes: np.ndarray,
    group_relevant: np.ndarray,
    k: int,
    *,
    denominator: str,
    total_relevant: np.ndarray,
    harmonic: np.ndarray,
    log_factorial: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Expected, worst and best AP@k per query, over orders within ties.

    Args:
        group_sizes: ``(Q, G)`` items per distance, in ranking order.
        group_relevant: ``(Q, G)`` relevant items per distance.
        k: the effective cut-off, ``1 <= k <= N``.
        denominator: ``"retrieved"``, ``"all_relevant"`` or
            ``"min_k_relevant"`` (see `mean_average_precision`).
        total_relevant: ``(Q,)`` relevant items in the whole database.
        harmonic: ``H[0..N]``, ``H[n] = sum_{i<=n} 1/i``.
        log_factorial: ``log(n!)`` for ``n = 0..N``.

    Returns:
        ``(expected, worst, best, always_empty)``, each ``(Q,)``;
        ``always_empty`` marks queries whose denominator is 0 in every order.
    """
    n = group_sizes.astype(np.int64)
    r = group_relevant.astype(np.int64)
    before = np.cumsum(n, axis=1) - n
    rel_before = np.cumsum(r, axis=1) - r
    full = before + n <= k
    sums = _full_group_sums(n, r, before, rel_before, harmonic, full)
    rel_full = np.where(full, r, 0).sum(axis=1)

    def denominators(x: np.ndarray, rel_prefix, row: int | slice):
        if denominator == "retrieved":
            return rel_prefix + x
        if denominator == "all_relevant":
            return np.broadcast_to(total_relevant[row], np.shape(x))
        return np.broadcast_to(np.minimum(k, total_relevant[row]), np.shape(x))

    # [no group cut by k] the top k is a union of whole groups.
    zeros = np.zeros(n.shape[0], dtype=np.int64)
    den = denominators(zeros, rel_full, slice(None)).astype(np.float64)
    safe = np.where(den > 0, den, 1.0)
    expected, best, worst = (np.where(den > 0, s / safe, 0.0) for s in sums)
    always_empty = den == 0

    # [the group cut by k] enumerate x relevant among its first m positions.
    cut = (before < k) & (before + n > k)
    for q in np.flatnonzero(cut.any(axis=1)):
        g = int(np.argmax(cut[q]))
        counts = (int(n[q, g]), int(r[q, g]), before[q, g], rel_before[q, g])
        x, p, gains = _cut_group(counts, k, harmonic, log_factorial)
        # Groups before g* are full; rel_full counts them (g* is not full).
        d = denominators(x, rel_full[q], q).astype(np.float64)
        ok = d > 0
        safe_d = np.where(ok, d, 1.0)
        e_x, best_x, worst_x = gains
        s_exp, s_best, s_worst = (s[q] for s in sums)
        expected[q] = np.sum(p * np.where(ok, (s_exp + e_x) / safe_d, 0.0))
        best[q] = np.max(np.where(ok, (s_best + best_x) / safe_d, 0.0))
        worst[q] = np.min(np.where(ok, (s_worst + worst_x) / safe_d, 0.0))
        always_empty[q] = not ok.any()
    return expected, worst, best, always_empty


def _full_group_sums(n, r, before, rel_before, h, full):
    """Sums over the full groups of ``E_g``, ``S+_g`` and ``S-_g`` (module
    docstring), each ``(Q,)``."""
    end = before + n
    a = h[end] - h[before]
    b = n - (before + 1) * a
    c = np.where(n > 1, (r - 1) / np.maximum(n - 1, 1), 0.0)
    expected_g = np.where(
        n > 0, r / np.maximum(n, 1) * ((rel_before + 1) * a + c * b), 0.0
    )
    best_g = r - (before - rel_before) * (h[before + r] - h[before])
    worst_g = r - (end - r - rel_before) * (h[end] - h[end - r])
    return tuple(
        np.where(full, s, 0.0).sum(axis=1)
        for s in (expected_g, best_g, worst_g)
    )


def _cut_group(counts, k, h, lf):
    """For the group cut by k, holding ``size`` items, ``rel`` relevant,
    after ``n0`` items and ``r0`` relevant ones: the possible numbers ``x``
    of relevant items among its first ``m = k - n0`` positions, their
    hypergeometric probabilities, and the group's ``(E_{m,x}, S+_{m,x},
    S-_{m,x})``."""
    size, rel, n0, r0 = counts
    m = int(k - n0)
    x = np.arange(max(0, m - (size - rel)), min(m, rel) + 1)
    log_p = (
        lf[rel]
        - lf[x]
        - lf[rel - x]
        + lf[size - rel]
        - lf[m - x]
        - lf[size - rel - m + x]
        - (lf[size] - lf[m] - lf[size - m])
    )
    p = np.exp(log_p - log_p.max())
    p /= p.sum()
    a_m = h[n0 + m] - h[n0]
    b_m = m - (n0 + 1) * a_m
    c_x = (x - 1) / (m - 1) if m > 1 else np.zeros(x.shape)
    e_x = x / m * ((r0 + 1) * a_m + c_x * b_m)
    best_x = x - (n0 - r0) * (h[n0 + x] - h[n0])
    worst_x = x - (n0 + m - x - r0) * (h[n0 + m] - h[n0 + m - x])
    return x, p, (e_x, best_x, worst_x)


def ideal_dcg(
    value_counts: np.ndarray,
    k: int,
    gains: np.ndarray,
    discount_prefix: np.ndarray,
) -> np.ndarray:
    """IDCG@k from the counts of each relevance value in the whole database.

    Args:
        value_counts: ``(Q, V)`` items with ``r = 0 .. V-1`` shared labels.
        k: effective cut-off.
        gains: ``(V,)`` gain of each value (``2^r - 1``).
        discount_prefix: ``D[0..N]``, ``D[n] = sum_{i<=n} 1/log2(i+1)``.

    Returns:
        ``(Q,)`` ideal DCG: values sorted descending, truncated at ``k``.
    """
    counts = value_counts.astype(np.int64)
    # Items with a larger value rank before value v in the ideal order.
    above = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1] - counts
    span = _span(discount_prefix, above, above + counts, k)
    return span @ gains


def tie_aware_dcg(
    histogram: np.ndarray,
    k: int,
    gains: np.ndarray,
    discount_prefix: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected, worst and best DCG@k per query over orders within ties.

    Args:
        histogram: ``(Q, G, V)`` items per (distance, relevance value).
        k: effective cut-off.
        gains: ``(V,)`` gains, nondecreasing in the value.
        discount_prefix: ``D[0..N]`` as in `ideal_dcg`.

    Returns:
        ``(expected, worst, best)``, each ``(Q,)``.
    """
    counts = histogram.astype(np.int64)
    sizes = counts.sum(axis=2)
    before = np.cumsum(sizes, axis=1) - sizes
    group_span = _span(discount_prefix, before, before + sizes, k)
    mean_gain = (counts @ gains) / np.maximum(sizes, 1)
    expected = (mean_gain * group_span).sum(axis=1)
    # Best: each group sorted by value descending; worst: ascending.
    above = np.cumsum(counts[..., ::-1], axis=2)[..., ::-1] - counts
    below = np.cumsum(counts, axis=2) - counts
    start = before[..., None] + above
    best = (_span(discount_prefix, start, start + counts, k) @ gains).sum(1)
    start = before[..., None] + below
    worst = (_span(discount_prefix, start, start + counts, k) @ gains).sum(1)
    return expected, worst, best
