"""HashNet (Cao, Long, Wang, Yu; ICCV 2017): weighted pairwise likelihood.

With ``s_ij = 1`` iff two images share a label and ``θ_ij = α⟨h_i, h_j⟩``
(α = 10/K): ``Σ_ij w_ij (log(1 + e^θ) − s·θ) / |S|`` with balance weights
``w_ij = |S|/|S_1|`` (similar) or ``|S|/|S_0|`` (dissimilar) over the
in-batch pairs. No quantization term: continuation ``h = tanh(β·atanh(u))``
with β the ``continuation`` argument (``tanh(βz)`` for a tanh head). How to
raise β during training: docs/baselines.md §5.
"""

import keras
from keras import ops

from keras_dhsps.losses.base import HashingLoss
from keras_dhsps.losses.pairwise import pair_mean
from keras_dhsps.losses.pairwise import pairwise_cross_entropy
from keras_dhsps.losses.similarity import hard_similarity

# Keeps atanh finite for saturated codes: atanh(1 − 1e-6) ≈ 7.25.
_ATANH_CLIP = 1.0 - 1e-6


def continuation_codes(codes, continuation):
    """``tanh(β·atanh(u))``: HashNet's ``tanh(βz)`` for a tanh head's ``u``."""
    if continuation == 1.0:
        return codes
    clipped = ops.clip(codes, -_ATANH_CLIP, _ATANH_CLIP)
    return ops.tanh(continuation * ops.arctanh(clipped))


def hashnet_loss(
    labels,
    codes,
    *,
    scale=None,
    continuation=1.0,
    include_diagonal=True,
):
    """HashNet loss per anchor image (Cao et al., ICCV 2017, eq. 4–6).

    Args:
        labels: ``(B, C)`` multi-hot labels.
        codes: ``(B, K)`` relaxed codes from a tanh head.
        scale: α, ``θ = α⟨h_i,h_j⟩``; None means ``10/K`` (authors' code).
        continuation: β of the continuation ``h = tanh(β·atanh(u))``.
        include_diagonal: count the ``i = j`` pairs in ``S`` (and ``S_1``).

    Returns:
        ``(B,)`` tensor ``(1/B) Σ_j w_ij [log(1+e^θ_ij) − s_ij θ_ij]``; its
        batch mean is ``Σ_ij w_ij ℓ_ij / |S|``.
    """
    codes = ops.cast(codes, "float32")
    batch = ops.shape(codes)[0]
    num_bits = ops.shape(codes)[1]
    alpha = 10.0 / num_bits if scale is None else scale
    similarity = ops.cast(hard_similarity(labels), "float32")
    # [continuation h = tanh(βz), eq. 7]
    hashes = continuation_codes(codes, continuation)
    theta = alpha * ops.matmul(hashes, ops.transpose(hashes))
    # [pairwise cross-entropy]
    pair_losses = pairwise_cross_entropy(similarity, theta)
    # [balance weights |S|/|S_1|, |S|/|S_0|, eq. 4]
    if include_diagonal:
        used = ops.ones_like(similarity)
    else:
        used = 1.0 - ops.eye(batch, dtype="float32")
    num_similar = ops.sum(similarity * used)
    num_dissimilar = ops.sum((1.0 - similarity) * used)
    num_pairs = num_similar + num_dissimilar
    weights = ops.stop_gradient(
        similarity * num_pairs / ops.maximum(num_similar, 1.0)
        + (1.0 - similarity) * num_pairs / ops.maximum(num_dissimilar, 1.0)
    )
    return pair_mean(weights * pair_losses, include_diagonal)


@keras.saving.register_keras_serializable(package="keras_dhsps")
class HashNetLoss(HashingLoss):
    """Keras loss wrapping :func:`hashnet_loss`; ``y_true`` are labels.

    ``continuation`` is a plain attribute read when the train function is
    traced: after changing it, call ``model.make_train_function(force=True)``
    (docs/baselines.md §5).

    Reference:
        Cao, Long, Wang, Yu. "HashNet: Deep Learning to Hash by
        Continuation." ICCV 2017.
    """

    loss_fn = staticmethod(hashnet_loss)

    def __init__(
        self,
        scale=None,
        continuation=1.0,
        include_diagonal=True,
        name="hashnet_loss",
        **kwargs,
    ):
        super().__init__(
            name=name,
            scale=scale,
            continuation=continuation,
            include_diagonal=include_diagonal,
            **kwargs,
        )
