"""Brute-force reference implementations of the retrieval metrics.

Written from the definitions (DSRH, Zhao et al. CVPR 2015; He et al. CVPR
2018 for ties) with plain Python loops over plain lists, without calling
anything from ``keras_dhsps``: no bit packing, no popcount, no cumulative
sums, no closed forms. Slow on purpose; use on small data only.
"""

from __future__ import annotations

import itertools
import math


def to_lists(array) -> list[list[float]]:
    return [[float(x) for x in row] for row in array]


def sign_bits(code: list[float]) -> list[int]:
    """u >= 0 -> +1, else -1."""
    return [1 if x >= 0 else -1 for x in code]


def hamming(a: list[int], b: list[int]) -> int:
    return sum(1 for x, y in zip(a, b, strict=True) if x != y)


def shared(a: list[float], b: list[float]) -> int:
    return sum(1 for x, y in zip(a, b, strict=True) if x != 0 and y != 0)


class Query:
    """One query against a database: distances, graded relevance, ranking."""

    def __init__(self, q_code, q_label, db_codes, db_labels):
        q_bits = sign_bits(q_code)
        self.dist = [hamming(q_bits, sign_bits(c)) for c in db_codes]
        self.graded = [shared(q_label, y) for y in db_labels]
        self.n = len(db_codes)
        # Ties broken by database index.
        self.order = sorted(range(self.n), key=lambda j: (self.dist[j], j))
        self.total_relevant = sum(1 for r in self.graded if r > 0)

    def ranked(self, order=None) -> list[int]:
        return [self.graded[j] for j in (order or self.order)]

    def tie_orders(self):
        """Every order that sorts by distance (all permutations of ties)."""
        groups = {}
        for j in range(self.n):
            groups.setdefault(self.dist[j], []).append(j)
        keys = sorted(groups)
        for combo in itertools.product(
            *(itertools.permutations(groups[d]) for d in keys)
        ):
            yield [j for group in combo for j in group]


def average_precision(ranked, k, denominator, total_relevant):
    """(AP, empty) with ranked = graded relevance in rank order."""
    k = min(k, len(ranked))
    hits, total = 0, 0.0
    for n in range(1, k + 1):
        if ranked[n - 1] > 0:
            hits += 1
            total += hits / n
    if denominator == "retrieved":
        den = hits
    elif denominator == "all_relevant":
        den = total_relevant
    else:
        den = min(k, total_relevant)
    return (total / den if den else 0.0), den == 0


def dcg(ranked, k):
    return sum(
        (2 ** ranked[n - 1] - 1) / math.log2(n + 1)
        for n in range(1, min(k, len(ranked)) + 1)
    )


def ndcg(ranked, k):
    """(NDCG, empty): IDCG from the whole database sorted by r desc."""
    ideal = dcg(sorted(ranked, reverse=True), k)
    return (dcg(ranked, k) / ideal if ideal > 0 else 0.0), ideal == 0


def acg(ranked, k):
    k = min(k, len(ranked))
    return sum(ranked[:k]) / k


def wap(ranked, k):
    """(WAP, empty): sum over relevant n <= k of ACG@n / relevant in top k."""
    k = min(k, len(ranked))
    total, hits = 0.0, 0
    for n in range(1, k + 1):
        if ranked[n - 1] > 0:
            hits += 1
            total += acg(ranked, n)
    return (total / hits if hits else 0.0), hits == 0


def precision_at(ranked, n):
    n = min(n, len(ranked))
    return sum(1 for r in ranked[:n] if r > 0) / n


def ball(query: Query, radius: int):
    """(items within radius, relevant items within radius)."""
    inside = [j for j in range(query.n) if query.dist[j] <= radius]
    return len(inside), sum(1 for j in inside if query.graded[j] > 0)


def mean(values, empties, mode):
    if mode == "zero":
        return sum(
            0.0 if e else v for v, e in zip(values, empties, strict=True)
        ) / len(values)
    if mode == "one":
        return sum(
            1.0 if e else v for v, e in zip(values, empties, strict=True)
        ) / len(values)
    kept = [v for v, e in zip(values, empties, strict=True) if not e]
    return sum(kept) / len(kept) if kept else 0.0


def queries(q_codes, q_labels, db_codes, db_labels) -> list[Query]:
    db_codes, db_labels = to_lists(db_codes), to_lists(db_labels)
    return [
        Query(c, y, db_codes, db_labels)
        for c, y in zip(to_lists(q_codes), to_lists(q_labels), strict=True)
    ]


def resolve(k, n):
    return n if k == "all" else min(k, n)


def oracle_map(qs, k, denominator="retrieved", empty="zero"):
    vals = [
        average_precision(
            q.ranked(), resolve(k, q.n), denominator, q.total_relevant
        )
        for q in qs
    ]
    return mean([v for v, _ in vals], [e for _, e in vals], empty)


def oracle_ndcg(qs, k, empty="zero"):
    vals = [ndcg(q.ranked(), resolve(k, q.n)) for q in qs]
    return mean([v for v, _ in vals], [e for _, e in vals], empty)


def oracle_acg(qs, k):
    return sum(acg(q.ranked(), resolve(k, q.n)) for q in qs) / len(qs)


def oracle_wap(qs, k, empty="zero"):
    vals = [wap(q.ranked(), resolve(k, q.n)) for q in qs]
    return mean([v for v, _ in vals], [e for _, e in vals], empty)


def oracle_precision_recall_radius(
    qs, radius, empty_ball="zero", empty_queries="zero"
):
    precisions, ball_empty, recalls, no_relevant = [], [], [], []
    for q in qs:
        size, hits = ball(q, radius)
        precisions.append(hits / size if size else 0.0)
        ball_empty.append(size == 0)
        recalls.append(hits / q.total_relevant if q.total_relevant else 0.0)
        no_relevant.append(q.total_relevant == 0)
    return (
        mean(precisions, ball_empty, empty_ball),
        mean(recalls, no_relevant, empty_queries),
    )


def oracle_pr_by_rank(qs, ranks, empty="zero"):
    precision, recall = [], []
    for n in ranks:
        precision.append(sum(precision_at(q.ranked(), n) for q in qs) / len(qs))
        values, empties = [], []
        for q in qs:
            hits = sum(1 for r in q.ranked()[: min(n, q.n)] if r > 0)
            values.append(hits / q.total_relevant if q.total_relevant else 0.0)
            empties.append(q.total_relevant == 0)
        recall.append(mean(values, empties, empty))
    return precision, recall


def oracle_tie_stats(query: Query, metric):
    """(mean, min, max) of metric(ranked) over every order of the ties."""
    values = [metric(query.ranked(order)) for order in query.tie_orders()]
    return sum(values) / len(values), min(values), max(values)
