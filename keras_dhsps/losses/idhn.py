"""The IDHN loss (Zhang et al., IEEE TMM 2019; arXiv 1803.02987).

Matches ``hashing_loss`` of the authors' code (pectinid16/IDHN ``train.py``,
lines 37-48), term by term in docs/method.md §2: ``s_ij = cos(y_i, y_j)``;
hard pairs (``s < 0.01`` or ``s > 0.99``) ``log(1 + e^θ) − s·θ`` with
``θ = β⟨u_i,u_j⟩/K``; soft pairs ``γ·K·((⟨u_i,u_j⟩ + K)/(2K) − s)²``; plus
``α·mean(| |u| − 1 |)``; the mean over all ``B²`` in-batch pairs. The
authors' ``belta``, ``gama``, ``alpha`` are ``beta`` (5), ``soft_weight``
(γ, 0.1) and ``quantization_weight`` (α, 0.1) here.
"""

import keras
from keras import ops

from keras_dhsps.losses.base import HashingLoss
from keras_dhsps.losses.pairwise import hard_pair_likelihood
from keras_dhsps.losses.pairwise import l1_quantization
from keras_dhsps.losses.pairwise import pair_mean
from keras_dhsps.losses.pairwise import pairwise_cross_entropy
from keras_dhsps.losses.similarity import hard_pair_mask
from keras_dhsps.losses.similarity import soft_similarity


def _cross_entropy(similarity, inner, num_bits, beta):
    """``log(1 + e^θ) − s·θ``, θ = β⟨u_i,u_j⟩/K (docs/method.md §2.5), in
    the overflow- and cancellation-free form of ``pairwise_cross_entropy``."""
    return pairwise_cross_entropy(similarity, beta * inner / num_bits)


def idhn_loss(
    labels,
    codes,
    *,
    beta=5.0,
    soft_weight=0.1,
    quantization_weight=0.1,
    hard_low=0.01,
    hard_high=0.99,
    include_diagonal=True,
):
    """IDHN loss per anchor image; its batch mean is the authors' objective.

    Args:
        labels: ``(B, C)`` multi-hot labels.
        codes: ``(B, K)`` relaxed codes in ``(−1, 1)`` (tanh or softsign).
        beta: scale of the inner product in the cross-entropy,
            ``θ = beta·⟨u_i,u_j⟩/K``, so ``θ ∈ (−beta, beta)`` at every K.
            Larger values make the likelihood σ(θ) sharper.
        soft_weight: γ, weight of the MSE term on soft pairs. The term carries
            a factor K so its gradient w.r.t. the inner product is bounded by
            γ at every code length.
        quantization_weight: α, weight of the L1 pull of each bit to ±1.
        hard_low: similarities below this count as hard dissimilar (s = 0).
        hard_high: similarities above this count as hard similar (s = 1).
        include_diagonal: keep the ``i = j`` pairs in the mean, as the
            authors' code does (each is a hard pair with s = 1). With False
            the mean runs over the ``B − 1`` other images.

    Returns:
        ``(B,)`` tensor: ``(1/B) Σ_j ℓ(i, j) + α·(1/K) Σ_k | |u_ik| − 1 |``,
        whose mean over the batch is
        ``(1/B²) Σ_ij ℓ(i, j) + α·mean| |u| − 1 |``.
    """
    codes = ops.cast(codes, "float32")
    num_bits = ops.cast(ops.shape(codes)[1], "float32")
    # [soft similarity s_ij]
    similarity = ops.cast(soft_similarity(labels), "float32")
    # [hard/soft masks]
    hard = hard_pair_mask(similarity, hard_low=hard_low, hard_high=hard_high)
    soft = 1.0 - hard
    inner = ops.matmul(codes, ops.transpose(codes))
    # [hard pairs: cross-entropy]
    hard_loss = _cross_entropy(similarity, inner, num_bits, beta)
    # [soft pairs: MSE on the fraction of agreeing bits]
    agreement = (inner + num_bits) / (2.0 * num_bits)
    soft_loss = soft_weight * num_bits * ops.square(agreement - similarity)
    pair_losses = hard * hard_loss + soft * soft_loss
    # [quantization]
    return pair_mean(pair_losses, include_diagonal) + (
        quantization_weight * l1_quantization(codes)
    )


def hard_only_loss(
    labels,
    codes,
    *,
    beta=5.0,
    quantization_weight=0.1,
    include_diagonal=True,
):
    """The hard-only ablation of IDHN: DHN's similarity, IDHN's everything else.

    Every pair that shares at least one label is counted similar (s = 1),
    every other pair dissimilar (s = 0), and all pairs get IDHN's
    cross-entropy ``log(1 + e^θ) − s·θ`` with ``θ = β⟨u_i,u_j⟩/K``; the
    quantization term and the reduction are IDHN's. This isolates what the
    soft similarity and its MSE term add.

    Args:
        labels: ``(B, C)`` multi-hot labels.
        codes: ``(B, K)`` relaxed codes.
        beta: inner-product scale, as in :func:`idhn_loss`.
        quantization_weight: α, as in :func:`idhn_loss`.
        include_diagonal: as in :func:`idhn_loss`.

    Returns:
        ``(B,)`` per-anchor losses.
    """
    codes = ops.cast(codes, "float32")
    num_bits = ops.cast(ops.shape(codes)[1], "float32")
    return hard_pair_likelihood(
        labels, codes, scale=beta / num_bits, include_diagonal=include_diagonal
    ) + quantization_weight * l1_quantization(codes)


@keras.saving.register_keras_serializable(package="keras_dhsps")
class IDHNLoss(HashingLoss):
    """Keras loss wrapping :func:`idhn_loss`; ``y_true`` are the labels.

    Constructible with no arguments: the code length K is read from the
    codes' shape and the defaults are the authors' values (β = 5, γ = 0.1,
    α = 0.1, thresholds 0.01/0.99, diagonal included).

    Example:
    >>> loss = keras_dhsps.losses.IDHNLoss()
    >>> model.compile(optimizer="adam", loss=loss)
    """

    loss_fn = staticmethod(idhn_loss)

    def __init__(
        self,
        beta=5.0,
        soft_weight=0.1,
        quantization_weight=0.1,
        hard_low=0.01,
        hard_high=0.99,
        include_diagonal=True,
        name="idhn_loss",
        **kwargs,
    ):
        super().__init__(
            name=name,
            beta=beta,
            soft_weight=soft_weight,
            quantization_weight=quantization_weight,
            hard_low=hard_low,
            hard_high=hard_high,
            include_diagonal=include_diagonal,
            **kwargs,
        )


@keras.saving.register_keras_serializable(package="keras_dhsps")
class HardOnlyLoss(HashingLoss):
    """Keras loss wrapping :func:`hard_only_loss` (the hard-only ablation)."""

    loss_fn = staticmethod(hard_only_loss)

    def __init__(
        self,
        beta=5.0,
        quantization_weight=0.1,
        include_diagonal=True,
        name="hard_only_loss",
        **kwargs,
    ):
        super().__init__(
            name=name,
            beta=beta,
            quantization_weight=quantization_weight,
            include_diagonal=include_diagonal,
            **kwargs,
        )
