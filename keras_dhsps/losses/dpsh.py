"""DPSH: Deep Pairwise-Supervised Hashing (Li, Wang, Kang; IJCAI 2016).

With ``s_ij = 1`` iff two images share a label, ``Θ_ij = ½⟨u_i, u_j⟩`` and
``b_i = sgn(u_i)`` (no gradient): the negative log-likelihood
``log(1 + e^Θ) − s·Θ`` averaged over the ``B²`` in-batch pairs, plus
``η·‖b_i − u_i‖²`` averaged over bits. docs/baselines.md §4.
"""

import keras
from keras import ops

from keras_dhsps.losses.base import HashingLoss
from keras_dhsps.losses.pairwise import hard_pair_likelihood


def _sign(codes):
    """``+1`` where ``u ≥ 0`` else ``−1`` (the project's binarisation)."""
    return ops.where(ops.greater_equal(codes, 0.0), 1.0, -1.0)


def dpsh_loss(
    labels,
    codes,
    *,
    scale=0.5,
    quantization_weight=0.1,
    include_diagonal=True,
):
    """DPSH loss per anchor image (Li et al., IJCAI 2016, eq. 2 and 4).

    Args:
        labels: ``(B, C)`` multi-hot labels.
        codes: ``(B, K)`` relaxed codes.
        scale: factor on the inner product, ``Θ = scale·⟨u_i,u_j⟩`` (½).
        quantization_weight: η, weight of ``mean_k (u_ik − b_ik)²``.
        include_diagonal: keep the ``i = j`` pairs in the pair mean.

    Returns:
        ``(B,)`` tensor ``(1/B) Σ_j [log(1+e^Θ_ij) − s_ij Θ_ij]
        + η·(1/K) Σ_k (u_ik − sgn(u_ik))²``.
    """
    codes = ops.cast(codes, "float32")
    # [negative log-likelihood with Θ_ij = ½⟨u_i,u_j⟩, eq. 2]
    pairs = hard_pair_likelihood(
        labels, codes, scale=scale, include_diagonal=include_diagonal
    )
    # [η‖b − u‖², eq. 4; b = sgn(u) fixed]
    binary = ops.stop_gradient(_sign(codes))
    quantization = ops.mean(ops.square(codes - binary), axis=1)
    return pairs + quantization_weight * quantization


@keras.saving.register_keras_serializable(package="keras_dhsps")
class DPSHLoss(HashingLoss):
    """Keras loss wrapping :func:`dpsh_loss`; ``y_true`` are multi-hot labels.

    Reference:
        Li, Wang, Kang. "Feature Learning based Deep Supervised Hashing with
        Pairwise Labels." IJCAI 2016.
    """

    loss_fn = staticmethod(dpsh_loss)

    def __init__(
        self,
        scale=0.5,
        quantization_weight=0.1,
        include_diagonal=True,
        name="dpsh_loss",
        **kwargs,
    ):
        super().__init__(
            name=name,
            scale=scale,
            quantization_weight=quantization_weight,
            include_diagonal=include_diagonal,
            **kwargs,
        )
