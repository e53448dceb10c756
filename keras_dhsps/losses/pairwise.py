"""Pairwise building blocks shared by IDHN, its ablations and the baselines.

All take in-batch pairs: ``(B, B)`` matrices over the codes ``u`` (B×K) and
labels ``y`` (B×C) of one batch, and return one value per anchor image.
"""

from keras import ops

from keras_dhsps.losses.similarity import hard_similarity


def pair_mean(pair_losses, include_diagonal):
    """Per-anchor mean over the batch: ``(1/B) Σ_j`` or ``(1/(B−1)) Σ_{j≠i}``."""
    if include_diagonal:
        return ops.mean(pair_losses, axis=1)
    batch = ops.shape(pair_losses)[0]
    off_diagonal = 1.0 - ops.eye(batch, dtype=pair_losses.dtype)
    count = ops.maximum(ops.cast(batch, pair_losses.dtype) - 1.0, 1.0)
    return ops.sum(pair_losses * off_diagonal, axis=1) / count


def l1_quantization(codes):
    """Per-anchor ``mean_k | |u_ik| − 1 |`` (docs/method.md §2.7)."""
    return ops.mean(ops.abs(ops.abs(codes) - 1.0), axis=1)


def pairwise_cross_entropy(similarity, theta):
    """``log(1 + e^θ) − s·θ`` without overflow or cancellation.

    Written as ``(1 − s)·softplus(θ) + s·softplus(−θ)``, which equals it for
    every s (``softplus(θ) − θ = softplus(−θ)``) and keeps full float32
    precision where the naive form subtracts two large numbers (at θ = 10,
    s = 1 the naive form is off by 0.4 %).
    """
    return (1.0 - similarity) * ops.softplus(theta) + similarity * ops.softplus(
        -theta
    )


def hard_pair_likelihood(labels, codes, *, scale, include_diagonal=True):
    """Per-anchor mean of the pairwise likelihood on the hard similarity.

    ``(1/B) Σ_j log(1 + e^θ_ij) − s_ij θ_ij`` with ``θ_ij = scale·⟨u_i,u_j⟩``
    and ``s_ij = 1`` iff images i and j share a label: the pair term of DHN
    and DPSH (scale ½) and of IDHN's hard-only ablation (scale β/K).

    Args:
        labels: ``(B, C)`` multi-hot labels.
        codes: ``(B, K)`` relaxed codes (float32).
        scale: the factor on the inner product.
        include_diagonal: keep the ``i = j`` pairs in the mean.
    """
    similarity = ops.cast(hard_similarity(labels), "float32")
    theta = scale * ops.matmul(codes, ops.transpose(codes))
    return pair_mean(
        pairwise_cross_entropy(similarity, theta), include_diagonal
    )
