"""Relevance between queries and database items from multi-hot labels.

Binary relevance (shares >= 1 label) for mAP, precision and recall; graded
relevance ``r = <y_q, y_n>`` (the number of shared labels) for NDCG, ACG and
WAP. Labels are packed into words and never modified (docs/metrics.md §3).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from keras_dhsps.metrics._inputs import check_labels
from keras_dhsps.metrics._inputs import pack_labels
from keras_dhsps.utils.codes import InvalidInputError
from keras_dhsps.utils.codes import describe

__all__ = ["label_relevance", "shared_label_counts"]


def shared_label_counts(
    query_labels: npt.ArrayLike, database_labels: npt.ArrayLike
) -> npt.NDArray[np.int32]:
    r"""Graded relevance :math:`r_{qn} = \langle y_q, y_n \rangle`.

    Args:
        query_labels: ``(Q, C)`` multi-hot labels (0/1 or bool).
        database_labels: ``(N, C)`` multi-hot labels.

    Returns:
        ``(Q, N)`` ``int32`` number of shared labels.

    Raises:
        InvalidInputError: non-2-D, non-0/1 or mismatched class counts.

    Example:

    >>> q = [[1, 0, 1, 0]]
    >>> db = [[1, 0, 1, 1], [0, 1, 0, 0], [0, 0, 1, 0]]
    >>> shared_label_counts(q, db)
    array([[2, 0, 1]], dtype=int32)
    >>> label_relevance(q, db)
    array([[ True, False,  True]])
    """
    query = check_labels(query_labels, "query_labels")
    database = check_labels(database_labels, "database_labels")
    if query.shape[1] != database.shape[1]:
        raise InvalidInputError(
            "query_labels and database_labels must have the same number of "
            f"classes; got query_labels with {describe(query)} and "
            f"database_labels with {describe(database)}"
        )
    q_words, d_words = pack_labels(query), pack_labels(database)
    out = np.zeros((query.shape[0], database.shape[0]), dtype=np.int32)
    for w in range(q_words.shape[1]):
        out += np.bitwise_count(q_words[:, w, None] & d_words[None, :, w])
    return out


def label_relevance(
    query_labels: npt.ArrayLike, database_labels: npt.ArrayLike
) -> npt.NDArray[np.bool_]:
    """Binary relevance: True where query and item share >= 1 label.

    Args:
        query_labels: ``(Q, C)`` multi-hot labels.
        database_labels: ``(N, C)`` multi-hot labels.

    Returns:
        ``(Q, N)`` bool.
    """
    return shared_label_counts(query_labels, database_labels) > 0
