"""CSQ: Central Similarity Quantization (Yuan et al., CVPR 2020).

Each class gets a ±1 hash centre (Hadamard rows when K is a power of two
and ``2K >= C``, else seeded Bernoulli vectors); an image's centre is the
sign of the sum of its labels' centres (ties from a fixed random vector).
The loss is the bitwise cross-entropy between ``(u + 1)/2`` and
``(c + 1)/2`` plus ``λ·mean_k (|u_k| − 1)²`` (λ = 1e-4). Equations and
deviations from the authors' code: docs/baselines.md §7.
"""

from __future__ import annotations

import keras
import numpy as np
import scipy.linalg
from keras import ops
from numpy.typing import NDArray

# log(p) is evaluated at max(p, _EPSILON): finite for saturated codes
# (PyTorch's BCELoss clamps the log at −100 for the same reason).
_EPSILON = 1e-7


def hash_centers(num_classes: int, bits: int, seed: int = 0) -> NDArray:
    """CSQ hash centres, one ±1 row per class.

    Args:
        num_classes: C.
        bits: K.
        seed: seed of the Bernoulli draw (used when K is not a power of two
            or ``2K < C``).

    Returns:
        ``(C, K)`` float32 array of ±1; rows of ``[H_K; −H_K]`` when a
        Hadamard matrix can be used (any two rows then differ in exactly
        ``K/2`` bits, or ``K`` for a row and its negation).
    """
    if num_classes < 1 or bits < 1:
        raise ValueError(
            "`num_classes` and `bits` must be positive. "
            f"Received: num_classes={num_classes}, bits={bits}"
        )
    power_of_two = bits & (bits - 1) == 0
    if power_of_two and 2 * bits >= num_classes:
        hadamard = scipy.linalg.hadamard(bits).astype(np.float32)
        return np.concatenate([hadamard, -hadamard])[:num_classes]
    rng = np.random.default_rng([seed, 0])
    return rng.choice(np.array([-1.0, 1.0], np.float32), (num_classes, bits))


def tie_break_center(bits: int, seed: int = 0) -> NDArray:
    """The fixed ±1 vector used where a multi-label centre sum is 0."""
    rng = np.random.default_rng([seed, 1])
    return rng.choice(np.array([-1.0, 1.0], np.float32), bits)


def multi_label_centers(labels, centers, tie_break):
    """``sign(Σ_c y_c h_c)`` per image, zeros replaced by ``tie_break``.

    Args:
        labels: ``(B, C)`` multi-hot labels.
        centers: ``(C, K)`` ±1 class centres.
        tie_break: ``(K,)`` ±1.

    Returns:
        ``(B, K)`` ±1 float tensor.
    """
    labels = ops.cast(labels, "float32")
    total = ops.matmul(labels, ops.cast(centers, "float32"))
    tie = ops.broadcast_to(ops.cast(tie_break, "float32"), ops.shape(total))
    return ops.where(
        ops.greater(total, 0.0),
        1.0,
        ops.where(ops.less(total, 0.0), -1.0, tie),
    )


def csq_loss(
    labels,
    codes,
    *,
    centers,
    tie_break,
    quantization_weight=1e-4,
):
    """CSQ loss per image (Yuan et al., CVPR 2020, eq. 6–8).

    Args:
        labels: ``(B, C)`` multi-hot labels.
        codes: ``(B, K)`` relaxed codes in ``(−1, 1)``.
        centers: ``(C, K)`` ±1 class centres (:func:`hash_centers`).
        tie_break: ``(K,)`` ±1 (:func:`tie_break_center`).
        quantization_weight: λ.

    Returns:
        ``(B,)`` tensor ``(1/K) Σ_k BCE((u_k+1)/2, (c_k+1)/2)
        + λ·(1/K) Σ_k (|u_k| − 1)²``.
    """
    codes = ops.cast(codes, "float32")
    # [multi-label hash centre]
    target = (multi_label_centers(labels, centers, tie_break) + 1.0) / 2.0
    # [central similarity: BCE to the centre, eq. 6]
    prob = (codes + 1.0) / 2.0
    log_p = ops.log(ops.maximum(prob, _EPSILON))
    log_not_p = ops.log(ops.maximum(1.0 - prob, _EPSILON))
    central = -ops.mean(target * log_p + (1.0 - target) * log_not_p, axis=1)
    # [quantization, eq. 7]
    quantization = ops.mean(ops.square(ops.abs(codes) - 1.0), axis=1)
    return central + quantization_weight * quantization


@keras.saving.register_keras_serializable(package="keras_dhsps")
class CSQLoss(keras.losses.Loss):
    """Keras loss wrapping :func:`csq_loss`; ``y_true`` are multi-hot labels.

    Constructible with no arguments: the centres are built on first use from
    the labels' width C and the codes' width K, deterministically from
    ``(C, K, seed)``, so a reloaded loss has the same centres.

    Args:
        num_classes: C, optional; when given, labels of another width raise.
        seed: seed of the Bernoulli centres and of the tie-break vector.
        quantization_weight: λ (authors: 1e-4).

    Reference:
        Yuan, Wang, Wu, Sun, Feng, Tay, Feng. "Central Similarity
        Quantization for Efficient Image and Video Retrieval." CVPR 2020.
    """

    def __init__(
        self,
        num_classes=None,
        seed=0,
        quantization_weight=1e-4,
        name="csq_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.seed = seed
        self.quantization_weight = quantization_weight

    def call(self, y_true, y_pred):
        classes = y_true.shape[-1]
        bits = y_pred.shape[-1]
        if classes is None or bits is None:
            raise ValueError(
                "CSQLoss needs static label and code widths. Received: "
                f"labels {y_true.shape}, codes {y_pred.shape}"
            )
        if self.num_classes is not None and classes != self.num_classes:
            raise ValueError(
                f"CSQLoss was built for num_classes={self.num_classes}. "
                f"Received labels of width {classes}"
            )
        return csq_loss(
            y_true,
            y_pred,
            centers=hash_centers(int(classes), int(bits), self.seed),
            tie_break=tie_break_center(int(bits), self.seed),
            quantization_weight=self.quantization_weight,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "seed": self.seed,
                "quantization_weight": self.quantization_weight,
            }
        )
        return config
