"""DHN: Deep Hashing Network (Zhu, Long, Wang, Cao; AAAI 2016).

With ``s_ij = 1`` iff two images share a label and ``θ_ij = ½⟨u_i, u_j⟩``:
the pairwise cross-entropy ``log(1 + e^θ) − s·θ`` (a stable softplus),
averaged over the ``B²`` in-batch pairs, plus ``λ·Σ_k log cosh(|u_ik| − 1)``
averaged over bits. Equations and the scaling of λ: docs/baselines.md §3.
"""

import keras
from keras import ops

from keras_dhsps.losses.base import HashingLoss
from keras_dhsps.losses.pairwise import hard_pair_likelihood


def _log_cosh(x):
    """``log cosh(x) = |x| + log(1 + e^(−2|x|)) − log 2``, overflow-free."""
    ax = ops.abs(x)
    return ax + ops.softplus(-2.0 * ax) - 0.6931471805599453


def dhn_loss(
    labels,
    codes,
    *,
    scale=0.5,
    quantization_weight=0.1,
    include_diagonal=True,
):
    """DHN loss per anchor image (Zhu et al., AAAI 2016, eq. 3, 6 and 7).

    Args:
        labels: ``(B, C)`` multi-hot labels.
        codes: ``(B, K)`` relaxed codes.
        scale: the factor on the inner product, ``θ = scale·⟨u_i,u_j⟩``;
            the paper's ½ (which relates θ to the Hamming distance,
            ``dist_H = ½(K − ⟨b_i,b_j⟩)``).
        quantization_weight: λ, weight of ``mean_k log cosh(|u_ik| − 1)``.
        include_diagonal: keep the ``i = j`` pairs in the pair mean.

    Returns:
        ``(B,)`` tensor ``(1/B) Σ_j [log(1+e^θ_ij) − s_ij θ_ij]
        + λ·(1/K) Σ_k log cosh(|u_ik| − 1)``.
    """
    codes = ops.cast(codes, "float32")
    # [pairwise cross-entropy on s = share ≥ 1 label, θ = ½⟨u_i,u_j⟩, eq. 1, 3]
    pairs = hard_pair_likelihood(
        labels, codes, scale=scale, include_diagonal=include_diagonal
    )
    # [log-cosh quantization, eq. 6]
    quantization = ops.mean(_log_cosh(ops.abs(codes) - 1.0), axis=1)
    return pairs + quantization_weight * quantization


@keras.saving.register_keras_serializable(package="keras_dhsps")
class DHNLoss(HashingLoss):
    """Keras loss wrapping :func:`dhn_loss`; ``y_true`` are multi-hot labels.

    Reference:
        Zhu, Long, Wang, Cao. "Deep Hashing Network for Efficient Similarity
        Retrieval." AAAI 2016.

    Example:
    >>> model.compile(optimizer="adam", loss=keras_dhsps.losses.DHNLoss())
    """

    loss_fn = staticmethod(dhn_loss)

    def __init__(
        self,
        scale=0.5,
        quantization_weight=0.1,
        include_diagonal=True,
        name="dhn_loss",
        **kwargs,
    ):
        super().__init__(
            name=name,
            scale=scale,
            quantization_weight=quantization_weight,
            include_diagonal=include_diagonal,
            **kwargs,
        )
