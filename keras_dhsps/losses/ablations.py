"""IDHN ablations: soft-only, no quantization, and DeepHash-pytorch's variant.

The hard-only ablation lives with the IDHN loss (:func:`hard_only_loss` in
``keras_dhsps.losses.idhn``). Here: :func:`soft_only_loss` /
:class:`IDHNSoftOnlyLoss` (IDHN's MSE term on every pair, no cross-entropy),
:class:`IDHNNoQuantizationLoss` (α = 0), and :func:`idhn_dhp_loss` /
:class:`IDHNDHPLoss`, the loss of DeepHash-pytorch's ``IDHN.py``
(docs/method.md §2.9) with an optional FIFO memory bank. Symbols follow
docs/method.md §2; docs/baselines.md §2.
"""

import keras
from keras import ops

from keras_dhsps.losses.base import HashingLoss
from keras_dhsps.losses.idhn import IDHNLoss
from keras_dhsps.losses.pairwise import l1_quantization
from keras_dhsps.losses.pairwise import pair_mean
from keras_dhsps.losses.pairwise import pairwise_cross_entropy
from keras_dhsps.losses.similarity import hard_pair_mask
from keras_dhsps.losses.similarity import soft_similarity


def soft_only_loss(
    labels,
    codes,
    *,
    soft_weight=0.1,
    quantization_weight=0.1,
    include_diagonal=True,
):
    """The soft-only ablation of IDHN: the MSE term on all pairs, no CE.

    Every pair, hard or soft, gets IDHN's soft-pair term
    ``γ·K·((⟨u_i,u_j⟩ + K)/(2K) − s_ij)²`` (docs/method.md §2.6) with the
    cosine similarity ``s_ij`` as target; the quantization term and the
    reduction are IDHN's. This isolates what the cross-entropy on hard pairs
    adds. Hyperparameters keep IDHN's defaults so the ablation changes one
    thing.

    Args:
        labels: ``(B, C)`` multi-hot labels.
        codes: ``(B, K)`` relaxed codes.
        soft_weight: γ.
        quantization_weight: α.
        include_diagonal: as in ``idhn_loss``.

    Returns:
        ``(B,)`` per-anchor losses.
    """
    codes = ops.cast(codes, "float32")
    num_bits = ops.cast(ops.shape(codes)[1], "float32")
    similarity = ops.cast(soft_similarity(labels), "float32")
    inner = ops.matmul(codes, ops.transpose(codes))
    # [MSE on the fraction of agreeing bits, every pair]
    agreement = (inner + num_bits) / (2.0 * num_bits)
    pair_losses = soft_weight * num_bits * ops.square(agreement - similarity)
    # [quantization]
    return pair_mean(pair_losses, include_diagonal) + (
        quantization_weight * l1_quantization(codes)
    )


@keras.saving.register_keras_serializable(package="keras_dhsps")
class IDHNSoftOnlyLoss(HashingLoss):
    """Keras loss wrapping :func:`soft_only_loss` (the soft-only ablation).

    Reference:
        Zhang, Zou, Lin, Chen, Wang. "Improved Deep Hashing With Soft
        Pairwise Similarity for Multi-Label Image Retrieval." IEEE TMM 2019.
    """

    loss_fn = staticmethod(soft_only_loss)

    def __init__(
        self,
        soft_weight=0.1,
        quantization_weight=0.1,
        include_diagonal=True,
        name="idhn_soft_only_loss",
        **kwargs,
    ):
        super().__init__(
            name=name,
            soft_weight=soft_weight,
            quantization_weight=quantization_weight,
            include_diagonal=include_diagonal,
            **kwargs,
        )


@keras.saving.register_keras_serializable(package="keras_dhsps")
class IDHNNoQuantizationLoss(IDHNLoss):
    """IDHN without its quantization term: ``IDHNLoss`` with α = 0.

    Same arguments as :class:`~keras_dhsps.losses.IDHNLoss`; only the
    default of ``quantization_weight`` (α) changes, from 0.1 to 0.
    """

    def __init__(
        self,
        quantization_weight=0.0,
        name="idhn_no_quantization_loss",
        **kwargs,
    ):
        super().__init__(
            quantization_weight=quantization_weight, name=name, **kwargs
        )


def _softsign(x):
    return x / (1.0 + ops.abs(x))


def _dhp_partners(codes, labels, bank_codes, bank_labels, bank_mask):
    """Partner codes, labels and float mask: the bank's, or the batch's.

    Bank codes are constants; in-batch pairs let gradients flow through
    both ends of a pair. A missing mask uses every partner.
    """
    if bank_codes is None:
        partners, partner_labels = codes, labels
    else:
        partners = ops.stop_gradient(ops.cast(bank_codes, "float32"))
        partner_labels = ops.cast(bank_labels, "float32")
    if bank_mask is None:
        bank_mask = ops.ones((ops.shape(partners)[0],), "float32")
    return partners, partner_labels, ops.cast(bank_mask, "float32")


def _dhp_cosine(labels, partner_labels, epsilon):
    """DHP's label cosine, with ``epsilon`` added to the norm product."""
    norms = ops.sqrt(ops.sum(ops.square(labels), axis=1))
    partner_norms = ops.sqrt(ops.sum(ops.square(partner_labels), axis=1))
    return ops.matmul(labels, ops.transpose(partner_labels)) / (
        norms[:, None] * partner_norms[None, :] + epsilon
    )


def idhn_dhp_loss(
    labels,
    codes,
    *,
    bank_labels=None,
    bank_codes=None,
    bank_mask=None,
    scale=0.5,
    soft_weight=0.1,
    quantization_weight=0.1,
    apply_softsign=False,
    hard_low=0.01,
    hard_high=0.99,
    epsilon=1e-5,
):
    """DeepHash-pytorch's IDHN loss per anchor image (docs/method.md §2.9).

    Ports ``DPSHLoss.forward`` of ``swuxyj/DeepHash-pytorch`` ``IDHN.py``
    (the class name there is a copy-paste leftover); its terms, their
    weights and how they differ from the authors' code are the DHP column
    of docs/method.md §2.9. With ``U``, ``Y`` the codes and labels each
    anchor is paired with (the memory bank, or the batch itself when no
    bank is given), ``s`` the label cosine with ε on the norm product and
    ``θ = scale·⟨u, U⟩``, a pair costs ``log(1 + e^θ) − s·θ`` if hard
    (``s > 0.99`` or ``s < 0.01``), else ``γ·(θ + K − 2Ks)²`` — θ being the
    *scaled* product, this is zero at ``⟨u,U⟩ = 2K(2s − 1)``, twice the
    official target; the mean over all (anchor, partner) pairs is added to
    ``λ·mean | |u| − 1 |``.

    DHP applies softsign to the network's *linear* output inside the loss.
    With ``keras_dhsps``'s ``activation="softsign"`` head the model already
    has, which is the same function, so ``apply_softsign`` defaults to
    False; set it only for a linear head (never on top of tanh/softsign).

    Args:
        labels: ``(B, C)`` multi-hot labels.
        codes: ``(B, K)`` codes (after softsign unless ``apply_softsign``).
        bank_labels: ``(M, C)`` partner labels, or None for in-batch pairs.
        bank_codes: ``(M, K)`` partner codes (treated as constants), or None.
        bank_mask: ``(M,)`` 1 for bank slots to use, 0 for empty ones; None
            means all.
        scale: DHP's ``alpha`` (0.5), ``θ = scale·⟨u, U⟩``.
        soft_weight: DHP's ``gamma`` (0.1), γ above.
        quantization_weight: DHP's ``lambda`` (0.1), λ above.
        apply_softsign: apply ``z/(1+|z|)`` to ``codes`` first (and to the
            in-batch partners; a bank is assumed already squashed).
        hard_low: DHP's 0.01.
        hard_high: DHP's 0.99.
        epsilon: DHP's 1e-5, added to the product of the label norms.

    Returns:
        ``(B,)`` per-anchor losses whose mean is DHP's ``loss1 + loss2``.
    """
    codes = ops.cast(codes, "float32")
    labels = ops.cast(labels, "float32")
    if apply_softsign:
        codes = _softsign(codes)
    num_bits = ops.cast(ops.shape(codes)[1], "float32")
    partners, partner_labels, bank_mask = _dhp_partners(
        codes, labels, bank_codes, bank_labels, bank_mask
    )
    similarity = _dhp_cosine(labels, partner_labels, epsilon)
    hard = hard_pair_mask(similarity, hard_low=hard_low, hard_high=hard_high)
    theta = scale * ops.matmul(codes, ops.transpose(partners))
    # [hard term: stable log(1 + e^θ) − sθ]
    log_loss = pairwise_cross_entropy(similarity, theta)
    # [soft term: γ(θ + K − 2Ks)²]
    mse_loss = ops.square(theta + num_bits - 2.0 * num_bits * similarity)
    pair_losses = hard * log_loss + soft_weight * (1.0 - hard) * mse_loss
    pair_mean = ops.sum(pair_losses * bank_mask[None, :], axis=1) / (
        ops.maximum(ops.sum(bank_mask), 1.0)
    )
    # [quantization]
    return pair_mean + quantization_weight * l1_quantization(codes)


@keras.saving.register_keras_serializable(package="keras_dhsps")
class IDHNDHPLoss(keras.losses.Loss):
    """DeepHash-pytorch's IDHN variant (:func:`idhn_dhp_loss`), optional bank.

    With ``memory_size=0`` (default) each batch is paired with itself,
    ``B²`` pairs as in the official IDHN code, but with DHP's formula.

    With ``memory_size=M > 0`` the loss keeps a FIFO ring buffer of the last
    ``M`` training codes and labels in non-trainable ``keras.Variable`` s.
    On every call the current batch (codes after softsign, no gradient) is
    written into the ring *before* the loss, as DHP does, and each anchor is
    paired with every filled slot (so with its own stored copy too).

    How this differs from DHP's bank, honestly stated:

    * DHP's bank is index-addressed: ``U[ind] = u`` with one row per training
      image (``N × K``), so after the first epoch every anchor sees *all* N
      training images, each with the code from its latest visit. The
      training pipeline here yields ``(images, labels)`` without indices, so
      the ring holds the *last M* codes instead; with ``M ≥ N`` and the
      training set seen once per epoch in full batches it holds every image
      once, but in a reshuffled pipeline stale duplicates and gaps can occur
      when ``M`` is not a multiple of the batch size.
    * DHP's bank starts at zero and its empty rows stay in the mean (each
      adds the constant ``log 2`` and no gradient); here empty slots are
      masked out of the mean.
    * The ring must be at least one batch long (``M ≥ B``); larger batches
      overwrite themselves in an unspecified order.
    * Every call updates the ring, so a ``model.evaluate`` that computes the
      loss writes evaluation codes into it; the project's validation callback
      computes retrieval metrics, not the loss, so training is unaffected.
    * The update uses ``Variable.assign`` inside the traced train step: it
      works under the TensorFlow backend (the project's) and in eager mode;
      JAX's stateless ``jit`` cannot carry it, so use ``memory_size=0`` there.
    * The bank is state, not configuration: it is not saved and restarts
      empty after reloading.

    Args:
        memory_size: M, ring length in images; 0 for in-batch pairs.
        bits: K, required when ``memory_size > 0`` (sizes the ring).
        num_classes: C, required when ``memory_size > 0``.
        scale: DHP's ``alpha`` (0.5).
        soft_weight: DHP's ``gamma`` (0.1).
        quantization_weight: DHP's ``lambda`` (0.1).
        apply_softsign: apply softsign to the model output (linear heads only).
        hard_low: hard-dissimilar threshold (0.01).
        hard_high: hard-similar threshold (0.99).
        epsilon: added to the product of label norms (1e-5).
    """

    def __init__(
        self,
        memory_size=0,
        bits=None,
        num_classes=None,
        scale=0.5,
        soft_weight=0.1,
        quantization_weight=0.1,
        apply_softsign=False,
        hard_low=0.01,
        hard_high=0.99,
        epsilon=1e-5,
        name="idhn_dhp_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if memory_size < 0:
            raise ValueError(
                "`memory_size` must be ≥ 0. "
                f"Received: memory_size={memory_size}"
            )
        if memory_size and (bits is None or num_classes is None):
            raise ValueError(
                "A memory bank needs `bits` and `num_classes`. Received: "
                f"bits={bits}, num_classes={num_classes}"
            )
        self.memory_size = memory_size
        self.bits = bits
        self.num_classes = num_classes
        self.scale = scale
        self.soft_weight = soft_weight
        self.quantization_weight = quantization_weight
        self.apply_softsign = apply_softsign
        self.hard_low = hard_low
        self.hard_high = hard_high
        self.epsilon = epsilon
        if memory_size:
            self.bank_codes = keras.Variable(
                ops.zeros((memory_size, bits)),
                trainable=False,
                name="bank_codes",
            )
            self.bank_labels = keras.Variable(
                ops.zeros((memory_size, num_classes)),
                trainable=False,
                name="bank_labels",
            )
            self.bank_filled = keras.Variable(
                ops.zeros((memory_size,)), trainable=False, name="bank_filled"
            )
            self.bank_position = keras.Variable(
                0, dtype="int32", trainable=False, name="bank_position"
            )

    def _update_bank(self, labels, codes):
        """Writes the batch at the ring position; returns the new ring."""
        batch = ops.shape(codes)[0]
        slots = ops.mod(
            self.bank_position + ops.arange(batch, dtype="int32"),
            self.memory_size,
        )
        slots = ops.expand_dims(slots, 1)
        bank_codes = ops.scatter_update(
            ops.convert_to_tensor(self.bank_codes),
            slots,
            ops.stop_gradient(codes),
        )
        bank_labels = ops.scatter_update(
            ops.convert_to_tensor(self.bank_labels), slots, labels
        )
        bank_filled = ops.scatter_update(
            ops.convert_to_tensor(self.bank_filled),
            slots,
            ops.ones((batch,), "float32"),
        )
        self.bank_codes.assign(bank_codes)
        self.bank_labels.assign(bank_labels)
        self.bank_filled.assign(bank_filled)
        self.bank_position.assign(
            ops.mod(self.bank_position + batch, self.memory_size)
        )
        return bank_labels, bank_codes, bank_filled

    def call(self, y_true, y_pred):
        options = dict(
            scale=self.scale,
            soft_weight=self.soft_weight,
            quantization_weight=self.quantization_weight,
            hard_low=self.hard_low,
            hard_high=self.hard_high,
            epsilon=self.epsilon,
        )
        if not self.memory_size:
            return idhn_dhp_loss(
                y_true, y_pred, apply_softsign=self.apply_softsign, **options
            )
        codes = ops.cast(y_pred, "float32")
        if self.apply_softsign:
            codes = _softsign(codes)
        labels = ops.cast(y_true, "float32")
        bank_labels, bank_codes, bank_filled = self._update_bank(labels, codes)
        return idhn_dhp_loss(
            labels,
            codes,
            bank_labels=bank_labels,
            bank_codes=bank_codes,
            bank_mask=bank_filled,
            **options,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "memory_size": self.memory_size,
                "bits": self.bits,
                "num_classes": self.num_classes,
                "scale": self.scale,
                "soft_weight": self.soft_weight,
                "quantization_weight": self.quantization_weight,
                "apply_softsign": self.apply_softsign,
                "hard_low": self.hard_low,
                "hard_high": self.hard_high,
                "epsilon": self.epsilon,
            }
        )
        return config
