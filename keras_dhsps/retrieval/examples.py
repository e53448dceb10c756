"""Retrieval examples: the top results of a few queries, for a figure.

:func:`retrieval_examples` searches one code database with a seeded choice
of another's codes; ``keras_dhsps.experiments.plots.plot_retrieval_examples``
draws what it returns (``dhsps plot examples`` does both).
"""

from __future__ import annotations

import numpy as np

from keras_dhsps.retrieval.index import HammingIndex
from keras_dhsps.utils.errors import DHSPSError


def retrieval_examples(
    queries,
    database,
    *,
    num_queries: int = 4,
    k: int = 8,
    seed: int = 0,
    backend: str = "auto",
) -> list[dict]:
    """Top-``k`` results of a few queries, relevance marked when known.

    Args:
        queries: a ``codedb.CodeDatabase`` of query images.
        database: a ``codedb.CodeDatabase`` to search.
        num_queries: how many queries (a seeded random choice, in order).
        k: results per query.
        seed: the choice's seed.
        backend: ``HammingIndex`` backend.

    Returns:
        ``plots.plot_retrieval_examples``'s examples; ``relevant`` is
        "shares at least one label" when both files hold labels, else None.
    """
    if queries.bits != database.bits:
        raise DHSPSError(
            f"query codes have {queries.bits} bits, database codes "
            f"{database.bits}"
        )
    if len(queries) == 0 or len(database) == 0:
        raise DHSPSError("no query or database codes to plot")
    count = min(num_queries, len(queries))
    chosen = np.sort(
        np.random.default_rng(seed).choice(len(queries), count, replace=False)
    )
    index = HammingIndex(database.bits, backend=backend)
    index.add(database.packed)
    distances, indices = index.search(queries.packed[chosen], k)
    return [
        {
            "query": queries.paths[query],
            "results": _results(queries, query, database, found, items),
        }
        for query, found, items in zip(chosen, distances, indices, strict=True)
    ]


def _results(queries, query, database, distances, indices) -> list[dict]:
    """One query's ranked results, up to the index's ``-1`` padding."""
    known = queries.labels is not None and database.labels is not None
    results = []
    for distance, item in zip(distances, indices, strict=True):
        if item < 0:
            break
        relevant = None
        if known:
            relevant = bool(
                np.any(queries.labels[query] & database.labels[item])
            )
        results.append(
            {
                "path": database.paths[item],
                "distance": int(distance),
                "relevant": relevant,
            }
        )
    return results
