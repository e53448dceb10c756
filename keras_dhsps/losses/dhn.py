"""DHN: Deep Hashing Network (Zhu, Long, Wang, Cao; AAAI 2016).

For relaxed codes ``u`` (B×K) and multi-hot labels ``y`` (B×C), with the
hard similarity ``s_ij = 1`` iff the two images share at least one label:

* pairwise likelihood ``p(s_ij | u_i, u_j) = σ(θ_ij)^s (1 − σ(θ_ij))^(1−s)``
  with ``θ_ij = ½⟨u_i, u_j⟩`` (paper eq. 1);
* its negative log, the pairwise cross-entropy
  ``log(1 + e^θ) − s·θ`` (eq. 3), written as a stable softplus;
* the pairwise quantization loss ``Σ_k log cosh(|u_ik| − 1)``, the smooth
  surrogate of ``‖ |u| − 1 ‖₁`` (eq. 5 and 6); the objective is
  ``L + λ·Q`` (eq. 7).

Equation numbers are as we read them in the proceedings version and have not
been re-checked against the typeset PDF (as for IDHN, docs/method.md §8).

Reduction, as for the IDHN loss in this package: the pair term is averaged
over the ``B²`` in-batch pairs (the paper sums over all training pairs) and
the quantization term over the ``K`` bits (the paper sums), so the paper's
``λ`` corresponds to ``λ_here = λ_paper·K·B`` up to the pair count. The
DeepHash-pytorch port (``DHN.py``) uses an L1 quantization term instead of
log cosh and pairs each batch with a memory bank of all training codes.
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
