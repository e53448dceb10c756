"""Pairwise label similarity and the hard/soft pair masks of IDHN.

All functions take a batch of multi-hot labels ``y`` of shape ``(B, C)`` and
are written in ``keras.ops`` so they run under every Keras backend.
"""

import keras
from keras import ops


def soft_similarity(labels):
    """Cosine similarity of multi-hot label vectors (IDHN's s_ij).

    ``s_ij = <y_i, y_j> / (||y_i||_2 ||y_j||_2)``; for multi-hot vectors this is
    ``|Y_i ∩ Y_j| / sqrt(|Y_i| |Y_j|)``: 1 iff the two label sets are equal,
    0 iff they share nothing. This is the "pairwise quantified similarity
    calculated on the normalized semantic labels" of the paper's abstract and
    ``w_label`` in the authors' ``train.py`` (docs/method.md §2.2).

    The authors' code has no epsilon, so an all-zero label row gives NaN. Here
    the norm is clamped at 1e-12, which makes an unlabelled image dissimilar
    (s = 0) to every image instead; the dataset readers drop such images
    before training, as the authors did, so this is only a guard.

    Args:
        labels: ``(B, C)`` multi-hot labels, any numeric dtype.

    Returns:
        ``(B, B)`` float tensor with values in ``[0, 1]``.
    """
    labels = ops.cast(labels, keras.backend.floatx())
    norms = ops.sqrt(ops.sum(ops.square(labels), axis=1, keepdims=True))
    normalized = labels / ops.maximum(norms, 1e-12)
    similarity = ops.matmul(normalized, ops.transpose(normalized))
    return ops.clip(similarity, 0.0, 1.0)


def hard_similarity(labels):
    """DHN/DPSH similarity: 1 if two images share at least one label, else 0.

    This is the "hard" pairwise similarity that IDHN replaces; the hard-only
    ablation trains with it.

    Args:
        labels: ``(B, C)`` multi-hot labels.

    Returns:
        ``(B, B)`` float tensor of zeros and ones.
    """
    labels = ops.cast(labels, keras.backend.floatx())
    shared = ops.matmul(labels, ops.transpose(labels))
    return ops.cast(ops.greater(shared, 0.0), keras.backend.floatx())


def hard_pair_mask(similarity, *, hard_low=0.01, hard_high=0.99):
    """1 where a pair is *hard* (s < hard_low or s > hard_high), else 0.

    The thresholds only separate exact 0 and 1 from floating-point noise: the
    smallest non-zero cosine of real multi-label data is ~0.09 and the
    largest below 1 is ~0.96 (docs/method.md §2.3). Soft pairs are the rest.
    """
    is_hard = ops.logical_or(
        ops.less(similarity, hard_low), ops.greater(similarity, hard_high)
    )
    return ops.cast(is_hard, similarity.dtype)
