"""Hamming ranking with a deterministic tie-break: the database index.

Items are ranked by ``(distance, database index)`` with
``np.argsort(kind="stable")`` on ``uint8`` distances, so AP and NDCG never
depend on an arbitrary tie order (docs/metrics.md §4).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from keras_dhsps.metrics._inputs import check_chunk_size
from keras_dhsps.metrics._inputs import default_chunk_size
from keras_dhsps.metrics._inputs import prepare_codes
from keras_dhsps.metrics._inputs import resolve_k
from keras_dhsps.utils.codes import InvalidInputError
from keras_dhsps.utils.codes import describe
from keras_dhsps.utils.codes import word_distances

__all__ = ["hamming_ranking"]


def hamming_ranking(
    query_codes: npt.ArrayLike,
    database_codes: npt.ArrayLike,
    *,
    k: int | str = "all",
    chunk_size: int | None = None,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
    """Ranks the database for every query by Hamming distance, stably.

    Args:
        query_codes: ``(Q, K)`` real-valued or ±1 codes (``>= 0`` -> +1).
        database_codes: ``(N, K)`` codes.
        k: how many items to return per query: a positive int (larger than
            ``N`` means ``N``) or ``"all"``.
        chunk_size: queries per chunk; None chooses about 256K pairs a chunk.

    Returns:
        ``(distances, indices)``, both ``(Q, min(k, N))``: ``int32`` Hamming
        distances in nondecreasing order, and ``int64`` database indices,
        ascending within equal distances.

    Raises:
        InvalidInputError: malformed codes, mismatched code lengths, bad k.

    Example:

    >>> q = [[1, 1, 1, 1]]
    >>> db = [[-1, 1, 1, 1], [1, 1, 1, 1], [1, 1, -1, 1], [1, 1, 1, 1]]
    >>> distances, indices = hamming_ranking(q, db)
    >>> distances, indices   # items 1 and 3 tie at 0, items 0 and 2 at 1
    (array([[0, 0, 1, 1]], dtype=int32), array([[1, 3, 0, 2]]))
    """
    query = prepare_codes(query_codes, "query_codes")
    database = prepare_codes(database_codes, "database_codes")
    q_bits = np.asarray(query_codes).shape[1]
    d_bits = np.asarray(database_codes).shape[1]
    if q_bits != d_bits or database.shape[0] == 0:
        raise InvalidInputError(
            "query_codes and database_codes must have the same number of "
            "bits and the database at least one item; got query_codes with "
            f"{describe(np.asarray(query_codes))} and database_codes with "
            f"{describe(np.asarray(database_codes))}"
        )
    num_items = database.shape[0]
    top = resolve_k(k, num_items)
    chunk = check_chunk_size(chunk_size, num_items) or default_chunk_size(
        max(query.shape[0], 1), num_items
    )
    distances = np.empty((query.shape[0], top), dtype=np.int32)
    indices = np.empty((query.shape[0], top), dtype=np.int64)
    for start in range(0, query.shape[0], chunk):
        stop = min(start + chunk, query.shape[0])
        dist = word_distances(query[start:stop], database)
        order = np.argsort(dist, axis=1, kind="stable")[:, :top]
        indices[start:stop] = order
        distances[start:stop] = np.take_along_axis(dist, order, axis=1)
    return distances, indices
