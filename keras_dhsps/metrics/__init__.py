"""Retrieval metrics for Hamming ranking: pure NumPy, chunked, tie-aware.

Every convention the field's scripts disagree on (binarization, ties, the
AP denominator, queries with no relevant item, empty Hamming balls, binary
vs graded relevance) is a named keyword-only option with a documented
default; inputs are never modified. Start with `retrieval_report`, which
computes everything in one pass; the single-metric functions share its
definitions. Definitions and conventions: docs/metrics.md.
"""

from __future__ import annotations

from keras_dhsps.metrics.curves import DEFAULT_PRECISION_AT_N
from keras_dhsps.metrics.curves import pr_curve_by_radius
from keras_dhsps.metrics.curves import pr_curve_by_rank
from keras_dhsps.metrics.curves import precision_at_n_curve
from keras_dhsps.metrics.ranking import hamming_ranking
from keras_dhsps.metrics.relevance import label_relevance
from keras_dhsps.metrics.relevance import shared_label_counts
from keras_dhsps.metrics.report import retrieval_report
from keras_dhsps.metrics.retrieval import acg_at_k
from keras_dhsps.metrics.retrieval import mean_average_precision
from keras_dhsps.metrics.retrieval import ndcg_at_k
from keras_dhsps.metrics.retrieval import precision_at_k
from keras_dhsps.metrics.retrieval import precision_recall_at_radius
from keras_dhsps.metrics.retrieval import wap_at_k

__all__ = [
    "DEFAULT_PRECISION_AT_N",
    "acg_at_k",
    "hamming_ranking",
    "label_relevance",
    "mean_average_precision",
    "ndcg_at_k",
    "pr_curve_by_radius",
    "pr_curve_by_rank",
    "precision_at_k",
    "precision_at_n_curve",
    "precision_recall_at_radius",
    "retrieval_report",
    "shared_label_counts",
    "wap_at_k",
]
