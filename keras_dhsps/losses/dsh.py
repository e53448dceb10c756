"""DSH: Deep Supervised Hashing (Liu, Wang, Shan, Chen; CVPR 2016).

With ``y_ij = 0`` for similar pairs (a shared label), 1 otherwise, and
``D_ij = ‖u_i − u_j‖²``: the contrastive loss
``½(1 − y)·D + ½·y·max(m − D, 0)`` with margin ``m = 2K``, averaged over
the ``B²`` in-batch pairs, plus ``α·‖ |u_i| − 1 ‖₁`` per anchor (α = 0.01).
docs/baselines.md §6.
"""

import keras
from keras import ops

from keras_dhsps.losses.base import HashingLoss
from keras_dhsps.losses.pairwise import pair_mean
from keras_dhsps.losses.similarity import hard_similarity


def dsh_loss(
    labels,
    codes,
    *,
    margin=None,
    quantization_weight=0.01,
    include_diagonal=True,
):
    """DSH loss per anchor image (Liu et al., CVPR 2016, eq. 4).

    Args:
        labels: ``(B, C)`` multi-hot labels.
        codes: ``(B, K)`` relaxed codes.
        margin: m; None means ``2K`` (the paper's setting).
        quantization_weight: α, weight of ``‖ |u_i| − 1 ‖₁``.
        include_diagonal: keep the ``i = j`` pairs (distance 0, similar,
            so zero loss) in the pair mean.

    Returns:
        ``(B,)`` tensor ``(1/B) Σ_j [½ s D_ij + ½ (1−s) max(m − D_ij, 0)]
        + α Σ_k | |u_ik| − 1 |`` with ``s = 1 − y`` the similarity.
    """
    codes = ops.cast(codes, "float32")
    num_bits = ops.cast(ops.shape(codes)[1], "float32")
    m = 2.0 * num_bits if margin is None else margin
    similarity = ops.cast(hard_similarity(labels), "float32")
    # [D_ij = ‖u_i − u_j‖², via ‖u_i‖² + ‖u_j‖² − 2⟨u_i,u_j⟩]
    sq_norms = ops.sum(ops.square(codes), axis=1)
    inner = ops.matmul(codes, ops.transpose(codes))
    distance = ops.maximum(
        sq_norms[:, None] + sq_norms[None, :] - 2.0 * inner, 0.0
    )
    # [contrastive loss, eq. 4]
    pair_losses = 0.5 * similarity * distance + 0.5 * (
        1.0 - similarity
    ) * ops.relu(m - distance)
    # [α‖ |u| − 1 ‖₁]
    regulariser = ops.sum(ops.abs(ops.abs(codes) - 1.0), axis=1)
    return pair_mean(pair_losses, include_diagonal) + (
        quantization_weight * regulariser
    )


@keras.saving.register_keras_serializable(package="keras_dhsps")
class DSHLoss(HashingLoss):
    """Keras loss wrapping :func:`dsh_loss`; ``y_true`` are multi-hot labels.

    Reference:
        Liu, Wang, Shan, Chen. "Deep Supervised Hashing for Fast Image
        Retrieval." CVPR 2016.
    """

    loss_fn = staticmethod(dsh_loss)

    def __init__(
        self,
        margin=None,
        quantization_weight=0.01,
        include_diagonal=True,
        name="dsh_loss",
        **kwargs,
    ):
        super().__init__(
            name=name,
            margin=margin,
            quantization_weight=quantization_weight,
            include_diagonal=include_diagonal,
            **kwargs,
        )
