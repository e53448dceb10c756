"""Shallow hashing baselines on fixed (backbone) features, in NumPy/SciPy.

:class:`LSH`, :class:`ITQ`, :class:`SpectralHashing` and :class:`SDH` each
have ``fit(features[, labels]) -> self`` and ``encode(features) -> (N,
bits) int8`` codes in ``{−1, +1}`` (``+1`` where the projection is
``≥ 0``); all are seeded and deterministic. :func:`fit_and_evaluate` is
the one training path of a baseline in a table.
"""

from __future__ import annotations

import inspect
import math
import time

import numpy as np
from numpy.typing import ArrayLike
from numpy.typing import NDArray

from keras_dhsps.utils.errors import DHSPSError

__all__ = [
    "ITQ",
    "LSH",
    "SDH",
    "SHALLOW_HASHERS",
    "SpectralHashing",
    "fit_and_evaluate",
    "make_hasher",
]


def _as_features(features: ArrayLike, name: str = "features") -> NDArray:
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(
            f"`{name}` must be a non-empty (N, D) array. "
            f"Received shape {array.shape}"
        )
    return array


def _check_bits(bits: int) -> int:
    if int(bits) < 1:
        raise ValueError(f"`bits` must be positive. Received: bits={bits}")
    return int(bits)


def _binarize(values: NDArray) -> NDArray:
    """``+1`` where ``v ≥ 0`` else ``−1``, as int8."""
    return np.where(values >= 0, 1, -1).astype(np.int8)


def _pca(centered: NDArray, components: int) -> NDArray:
    """Top ``components`` principal directions, ``(D, components)``.

    Signs are fixed (largest-magnitude entry of each direction positive) so
    the result does not depend on the LAPACK build.
    """
    if components > centered.shape[1]:
        raise ValueError(
            f"Cannot take {components} principal components of "
            f"{centered.shape[1]}-dimensional features"
        )
    covariance = centered.T @ centered / max(len(centered) - 1, 1)
    values, vectors = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1][:components]
    vectors = vectors[:, order]
    largest = np.argmax(np.abs(vectors), axis=0)
    flip = np.sign(vectors[largest, np.arange(components)])
    return vectors * np.where(flip == 0, 1.0, flip)


class _Hasher:
    """Shared ``encode`` plumbing: subclasses implement ``_project``."""

    bits: int
    _fitted = False

    def encode(self, features: ArrayLike) -> NDArray:
        """Codes of ``features``: ``(N, bits)`` int8 in ``{−1, +1}``."""
        if not self._fitted:
            raise DHSPSError(f"{type(self).__name__} must be fit before encode")
        array = _as_features(features)
        if array.shape[1] != self.dimension_:
            raise ValueError(
                f"{type(self).__name__} was fit on {self.dimension_}-d "
                f"features. Received shape {array.shape}"
            )
        return _binarize(self._project(array))

    def fit_encode(self, features: ArrayLike, labels: ArrayLike | None = None):
        """``fit`` then ``encode`` the same features."""
        return self.fit(features, labels).encode(features)


class LSH(_Hasher):
    """Sign random projections: ``b = sgn(Wᵀ(x − μ))``, ``W ~ N(0, I)``.

    For two vectors at angle θ (after centring), each bit differs with
    probability θ/π (Charikar, "Similarity estimation techniques from
    rounding algorithms", STOC 2002; Goemans–Williamson's hyperplane lemma).

    Args:
        bits: K.
        center: subtract the training mean first (CNN features are
            non-negative, so uncentred hyperplanes through the origin
            rarely split them).
        seed: seed of the projection matrix.
    """

    def __init__(self, bits: int, *, center: bool = True, seed: int = 0):
        self.bits = _check_bits(bits)
        self.center = center
        self.seed = seed

    def fit(self, features: ArrayLike, labels: ArrayLike | None = None) -> LSH:
        """Draws the projections; ``labels`` are ignored (unsupervised)."""
        array = _as_features(features)
        self.dimension_ = array.shape[1]
        self.mean_ = (
            array.mean(axis=0) if self.center else np.zeros(self.dimension_)
        )
        rng = np.random.default_rng(self.seed)
        self.projection_ = rng.standard_normal((self.dimension_, self.bits))
        self._fitted = True
        return self

    def _project(self, array: NDArray) -> NDArray:
        return (array - self.mean_) @ self.projection_


class ITQ(_Hasher):
    """Iterative quantization (Gong & Lazebnik, CVPR 2011).

    PCA to K dimensions, ``V = (X − μ)W``, then a rotation R minimising the
    quantization loss ``Q(B, R) = ‖B − VR‖²_F`` (paper eq. 2) by alternating
    ``B = sgn(VR)`` and the orthogonal Procrustes solution
    ``R = Ŝ Sᵀ`` from the SVD ``BᵀV = S Ω Ŝᵀ`` (§2.3), starting from a
    random orthogonal R; each step cannot increase Q. ``quantization_losses_``
    records Q after each of the ``iterations`` rotation updates.

    Args:
        bits: K (at most the feature dimension).
        iterations: alternations (paper: 50).
        seed: seed of the initial rotation.
    """

    def __init__(self, bits: int, *, iterations: int = 50, seed: int = 0):
        self.bits = _check_bits(bits)
        self.iterations = int(iterations)
        self.seed = seed

    def fit(self, features: ArrayLike, labels: ArrayLike | None = None) -> ITQ:
        """Learns PCA and the rotation; ``labels`` are ignored."""
        array = _as_features(features)
        self.dimension_ = array.shape[1]
        self.mean_ = array.mean(axis=0)
        centered = array - self.mean_
        self.projection_ = _pca(centered, self.bits)
        projected = centered @ self.projection_
        rng = np.random.default_rng(self.seed)
        rotation, _ = np.linalg.qr(rng.standard_normal((self.bits, self.bits)))
        losses = []
        for _ in range(self.iterations):
            binary = np.where(projected @ rotation >= 0, 1.0, -1.0)
            left, _, right_t = np.linalg.svd(binary.T @ projected)
            rotation = right_t.T @ left.T
            losses.append(float(np.sum((binary - projected @ rotation) ** 2)))
        self.rotation_ = rotation
        self.quantization_losses_ = losses
        self._fitted = True
        return self

    def _project(self, array: NDArray) -> NDArray:
        return (array - self.mean_) @ self.projection_ @ self.rotation_


class SpectralHashing(_Hasher):
    """Spectral hashing (Weiss, Torralba & Fergus, NIPS 2008).

    Assumes the data are uniform in a box aligned with its principal axes
    (§3.1): along a PC of range ``[a, b]`` the Laplacian eigenfunctions are
    ``Φ_k(x) = sin(π/2 + kπ/(b − a)·(x − a))`` with eigenvalue
    ``1 − e^{−ε²/2·|kπ/(b−a)|²}``, increasing in ``(kπ/(b−a))²`` (eq. 6–7).
    The K bits are the signs of the K single-axis eigenfunctions with the
    smallest eigenvalues, the constant one (k = 0) excluded (the authors'
    ``trainSH.m``/``compressSH.m``: modes up to
    ``ceil((K + 1)·(b − a)/max(b − a))`` per axis, ``min(K, D)`` PCs).

    ``modes_`` is ``(K, P)``: row i holds the frequency k of bit i on its
    one non-zero PC axis.

    Args:
        bits: K.
    """

    def __init__(self, bits: int):
        self.bits = _check_bits(bits)

    def fit(
        self, features: ArrayLike, labels: ArrayLike | None = None
    ) -> SpectralHashing:
        """Learns PCA, the box and the modes; ``labels`` are ignored."""
        array = _as_features(features)
        self.dimension_ = array.shape[1]
        self.mean_ = array.mean(axis=0)
        centered = array - self.mean_
        components = min(self.bits, self.dimension_)
        self.projection_ = _pca(centered, components)
        projected = centered @ self.projection_
        eps = np.finfo(np.float64).eps
        self.minimum_ = projected.min(axis=0) - eps
        self.maximum_ = projected.max(axis=0) + eps
        ranges = self.maximum_ - self.minimum_
        max_mode = np.ceil((self.bits + 1) * ranges / ranges.max()).astype(int)
        modes = [np.zeros(components, int)]
        for axis in range(components):
            for k in range(1, max_mode[axis]):
                mode = np.zeros(components, int)
                mode[axis] = k
                modes.append(mode)
        modes = np.array(modes)
        eigen = np.sum((modes * (math.pi / ranges)) ** 2, axis=1)
        order = np.argsort(eigen, kind="stable")
        # The longest axis alone offers K non-constant modes, so there are
        # always at least K + 1 candidates.
        self.modes_ = modes[order[1 : self.bits + 1]]
        self._fitted = True
        return self

    def _project(self, array: NDArray) -> NDArray:
        offset = (array - self.mean_) @ self.projection_ - self.minimum_
        omegas = self.modes_ * (math.pi / (self.maximum_ - self.minimum_))
        # Each bit: Π_axes sin(π/2 + ω·(x − a)); axes with ω = 0 give 1.
        return np.prod(
            np.sin(offset[:, None, :] * omegas[None, :, :] + math.pi / 2),
            axis=2,
        )


class SDH(_Hasher):
    """Supervised discrete hashing (Shen et al., CVPR 2015).

    Minimises ``‖Y − BW‖² + λ‖W‖² + ν‖B − F(X)‖²`` over binary ``B``
    (eq. 5, with the label matrix ``Y`` (N×C) multi-hot, so multi-label data
    need no change), a linear classifier ``W`` and the hash function
    ``F(x) = φ(x)ᵀP`` on RBF features ``φ(x) = exp(−‖x − a_j‖²/(2σ²))`` of
    ``num_anchors`` training anchors ``a_j`` (eq. 3, centred). Alternates:

    * G-step ``W = (BᵀB + λI)⁻¹BᵀY`` (eq. 7);
    * F-step ``P = (φᵀφ + δI)⁻¹φᵀB`` (eq. 4, δ a small ridge);
    * B-step by discrete cyclic coordinate descent (eq. 10–13):
      with ``Q = YWᵀ + νF(X)``, each bit column
      ``b_k = sgn(q_k − B_{−k} W_{−k} w_kᵀ)``.

    Args:
        bits: K.
        num_anchors: m RBF anchors sampled from the training set (paper:
            1,000; fewer when N is smaller).
        sigma: RBF width; None means the mean anchor distance.
        regularization: λ (paper: 1).
        penalty: ν (paper: 1e-5).
        iterations: outer alternations (paper: 5).
        dcc_iterations: DCC sweeps over the bits per B-step.
        ridge: δ of the F-step.
        seed: seed of the anchors and of the initial B.
    """

    def __init__(
        self,
        bits: int,
        *,
        num_anchors: int = 1000,
        sigma: float | None = None,
        regularization: float = 1.0,
        penalty: float = 1e-5,
        iterations: int = 5,
        dcc_iterations: int = 5,
        ridge: float = 1e-2,
        seed: int = 0,
    ):
        self.bits = _check_bits(bits)
        self.num_anchors = int(num_anchors)
        self.sigma = sigma
        self.regularization = regularization
        self.penalty = penalty
        self.iterations = int(iterations)
        self.dcc_iterations = int(dcc_iterations)
        self.ridge = ridge
        self.seed = seed

    def _anchor_sq_distances(self, array: NDArray) -> NDArray:
        sq = (
            np.sum(array**2, axis=1)[:, None]
            + np.sum(self.anchors_**2, axis=1)[None, :]
            - 2.0 * array @ self.anchors_.T
        )
        return np.maximum(sq, 0.0)

    def _kernel(self, array: NDArray) -> NDArray:
        """Centred RBF features ``φ(x) − mean_train φ``."""
        phi = np.exp(-self._anchor_sq_distances(array) / (2.0 * self.sigma_**2))
        return phi - self.kernel_mean_

    def fit(self, features: ArrayLike, labels: ArrayLike | None = None) -> SDH:
        """Learns the anchors, W and P from features and multi-hot labels."""
        array = _as_features(features)
        if labels is None:
            raise ValueError("SDH is supervised: `labels` are required")
        targets = np.asarray(labels, dtype=np.float64)
        if targets.ndim != 2 or len(targets) != len(array):
            raise ValueError(
                "`labels` must be (N, C) with one row per feature row. "
                f"Received {targets.shape} for features {array.shape}"
            )
        self.dimension_ = array.shape[1]
        rng = np.random.default_rng(self.seed)
        count = min(self.num_anchors, len(array))
        self.anchors_ = array[rng.choice(len(array), count, replace=False)]
        self.kernel_mean_ = 0.0
        if self.sigma is None:
            distances = np.sqrt(self._anchor_sq_distances(array))
            self.sigma_ = float(np.mean(distances)) or 1.0
        else:
            self.sigma_ = float(self.sigma)
        phi = self._kernel(array)
        self.kernel_mean_ = phi.mean(axis=0)
        phi = phi - self.kernel_mean_
        gram_inverse_phi_t = np.linalg.solve(
            phi.T @ phi + self.ridge * np.eye(count), phi.T
        )
        codes = np.where(
            rng.standard_normal((len(array), self.bits)) >= 0, 1.0, -1.0
        )
        eye = np.eye(self.bits)
        for _ in range(self.iterations):
            # [G-step: ridge regression of the labels on the codes]
            weights = np.linalg.solve(
                codes.T @ codes + self.regularization * eye, codes.T @ targets
            )
            # [F-step: ridge regression of the codes on the kernel features]
            hash_fn = gram_inverse_phi_t @ codes
            # [B-step: discrete cyclic coordinate descent]
            q = targets @ weights.T + self.penalty * (phi @ hash_fn)
            for _ in range(self.dcc_iterations):
                for k in range(self.bits):
                    rest = np.arange(self.bits) != k
                    column = q[:, k] - codes[:, rest] @ (
                        weights[rest] @ weights[k]
                    )
                    codes[:, k] = np.where(column >= 0, 1.0, -1.0)
        self.weights_ = np.linalg.solve(
            codes.T @ codes + self.regularization * eye, codes.T @ targets
        )
        self.hash_projection_ = gram_inverse_phi_t @ codes
        self._fitted = True
        return self

    def _project(self, array: NDArray) -> NDArray:
        return self._kernel(array) @ self.hash_projection_


SHALLOW_HASHERS = {
    "lsh": LSH,
    "itq": ITQ,
    "sh": SpectralHashing,
    "sdh": SDH,
}


def make_hasher(name: str, bits: int, params: dict, seed: int) -> _Hasher:
    """The hasher registered under ``name`` with keyword ``params``; the
    seeded ones get ``seed`` unless ``params`` sets it (SH is
    deterministic and takes none)."""
    if name not in SHALLOW_HASHERS:
        raise DHSPSError(
            f"unknown shallow hasher {name!r}; known: "
            f"{', '.join(sorted(SHALLOW_HASHERS))}"
        )
    hasher_class = SHALLOW_HASHERS[name]
    params = dict(params)
    if "seed" in inspect.signature(hasher_class).parameters:
        params.setdefault("seed", seed)
    return hasher_class(bits, **params)


def fit_and_evaluate(name: str, params: dict, config, dataset) -> dict:
    """The one training path of a shallow baseline.

    Extracts the backbone's features (``config.model``: backbone, image
    size, weights; seeded by ``config.train.seed``) of the train, query and
    database splits, read as the deep cells read them (``config.input``:
    resize mode, centre crop, the image store they share), fits hasher
    ``name`` on the training features and labels with ``config.model.bits``
    bits, and scores query codes against database codes with
    ``config.eval``.

    Returns:
        :func:`keras_dhsps.retrieval.evaluation.report_from_codes`' dict plus
        ``train_seconds`` (the fit alone, not the feature extraction).
    """
    import keras

    from keras_dhsps.models.hasher import build_feature_extractor
    from keras_dhsps.retrieval.evaluation import encode
    from keras_dhsps.retrieval.evaluation import report_from_codes

    keras.utils.set_random_seed(config.train.seed)
    extractor = build_feature_extractor(
        config.model.backbone,
        image_size=config.model.image_size,
        weights=config.model.backbone_weights,
    )
    features = {
        split: encode(
            extractor, dataset.split(split), input_config=config.input
        )
        for split in ("train", "query", "database")
    }
    hasher = make_hasher(name, config.model.bits, params, config.train.seed)
    start = time.perf_counter()
    hasher.fit(features["train"], dataset.split("train").labels)
    seconds = time.perf_counter() - start
    report = report_from_codes(
        hasher.encode(features["query"]),
        dataset.split("query").labels,
        hasher.encode(features["database"]),
        dataset.split("database").labels,
        config.eval,
    )
    return {**report, "train_seconds": seconds}
