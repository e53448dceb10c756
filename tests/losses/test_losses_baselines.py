"""Deep baselines and IDHN ablations against the NumPy oracles."""

from __future__ import annotations

import inspect
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_dhsps import losses
from keras_dhsps.losses import csq as csq_module
from tests import loss_oracles as oracle
from tests.keras_harness import run_serialization_test

ATOL = 1e-5
NEW_LOSSES = {
    "dhn": losses.DHNLoss,
    "dpsh": losses.DPSHLoss,
    "hashnet": losses.HashNetLoss,
    "dsh": losses.DSHLoss,
    "csq": losses.CSQLoss,
    "idhn_soft_only": losses.IDHNSoftOnlyLoss,
    "idhn_no_quantization": losses.IDHNNoQuantizationLoss,
    "idhn_dhp": losses.IDHNDHPLoss,
}


def random_batch(seed, batch=7, classes=5, bits=12, spread=1.0):
    """Multi-hot labels (every row ≥ 1 label) and tanh codes."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((batch, classes)) < 0.35).astype("float32")
    empty = labels.sum(axis=1) == 0
    labels[empty, rng.integers(0, classes, empty.sum())] = 1.0
    codes = np.tanh(spread * rng.normal(size=(batch, bits))).astype("float32")
    return labels, codes


def per_anchor(loss, labels, codes):
    return np.asarray(loss.call(labels, codes))


# ---------------------------------------------------------------- oracles


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("include_diagonal", [True, False])
def test_pairwise_losses_match_oracles(seed, include_diagonal):
    labels, codes = random_batch(seed, spread=1.5)
    diag = dict(include_diagonal=include_diagonal)
    cases = [
        (losses.DHNLoss(**diag), oracle.dhn(labels, codes, **diag)),
        (
            losses.DHNLoss(scale=0.3, quantization_weight=0.7, **diag),
            oracle.dhn(labels, codes, scale=0.3, lam=0.7, **diag),
        ),
        (losses.DPSHLoss(**diag), oracle.dpsh(labels, codes, **diag)),
        (
            losses.DPSHLoss(scale=1.0, quantization_weight=2.0, **diag),
            oracle.dpsh(labels, codes, scale=1.0, eta=2.0, **diag),
        ),
        (losses.HashNetLoss(**diag), oracle.hashnet(labels, codes, **diag)),
        (
            losses.HashNetLoss(scale=0.4, continuation=3.0, **diag),
            oracle.hashnet(labels, codes, scale=0.4, continuation=3.0, **diag),
        ),
        (losses.DSHLoss(**diag), oracle.dsh(labels, codes, **diag)),
        (
            losses.DSHLoss(margin=5.0, quantization_weight=0.3, **diag),
            oracle.dsh(labels, codes, margin=5.0, alpha=0.3, **diag),
        ),
        (
            losses.IDHNSoftOnlyLoss(**diag),
            oracle.soft_only(labels, codes, **diag),
        ),
        (
            losses.IDHNSoftOnlyLoss(
                soft_weight=0.5, quantization_weight=0.2, **diag
            ),
            oracle.soft_only(labels, codes, gamma=0.5, alpha=0.2, **diag),
        ),
    ]
    for loss, expected in cases:
        got = per_anchor(loss, labels, codes)
        assert got.shape == (len(labels),), loss.name
        np.testing.assert_allclose(
            got, expected, rtol=1e-5, atol=ATOL, err_msg=loss.name
        )
        np.testing.assert_allclose(
            float(loss(labels, codes)), expected.mean(), rtol=1e-5, atol=ATOL
        )


@pytest.mark.parametrize("seed", [0, 1])
def test_idhn_dhp_in_batch_matches_deephash_pytorch_port(seed):
    labels, codes = random_batch(seed)
    # Soft pairs need overlapping label sets: add a shared class to half.
    labels[::2, 0] = 1.0
    raw = (3.0 * np.random.default_rng(seed).normal(size=codes.shape)).astype(
        "float32"
    )
    np.testing.assert_allclose(
        per_anchor(losses.IDHNDHPLoss(), labels, codes),
        oracle.idhn_dhp(labels, codes),
        rtol=1e-5,
        atol=ATOL,
    )
    np.testing.assert_allclose(
        per_anchor(
            losses.IDHNDHPLoss(
                apply_softsign=True, scale=0.25, soft_weight=0.3
            ),
            labels,
            raw,
        ),
        oracle.idhn_dhp(labels, raw, softsign=True, alpha=0.25, gamma=0.3),
        rtol=1e-5,
        atol=ATOL,
    )


def test_no_quantization_is_idhn_with_alpha_zero():
    labels, codes = random_batch(3)
    np.testing.assert_allclose(
        per_anchor(losses.IDHNNoQuantizationLoss(), labels, codes),
        per_anchor(losses.IDHNLoss(quantization_weight=0.0), labels, codes),
        atol=1e-7,
    )
    # ... and differs from IDHN by exactly α·mean| |u| − 1 |.
    gap = per_anchor(losses.IDHNLoss(), labels, codes) - per_anchor(
        losses.IDHNNoQuantizationLoss(), labels, codes
    )
    np.testing.assert_allclose(
        gap, 0.1 * np.mean(np.abs(np.abs(codes) - 1), axis=1), atol=ATOL
    )


# --------------------------------------------------------------------- CSQ


def test_csq_centres_are_hadamard_rows_and_negations():
    centres = losses.hash_centers(num_classes=12, bits=8)
    h = oracle.sylvester_hadamard(8)
    np.testing.assert_array_equal(centres, np.concatenate([h, -h])[:12])
    # Any two distinct centres are at Hamming distance K/2 or K.
    dist = (8 - centres @ centres.T) / 2
    off = dist[~np.eye(12, dtype=bool)]
    assert set(off.tolist()) <= {4.0, 8.0}


def test_csq_centres_fall_back_to_seeded_bernoulli():
    # 2K = 8 < C = 10, and K = 12 is not a power of two: both random.
    for classes, bits in [(10, 4), (3, 12)]:
        a = losses.hash_centers(classes, bits, seed=5)
        assert a.shape == (classes, bits)
        assert set(np.unique(a).tolist()) == {-1.0, 1.0}
        np.testing.assert_array_equal(
            a, losses.hash_centers(classes, bits, seed=5)
        )
        assert not np.array_equal(a, losses.hash_centers(classes, bits, 6))
    with pytest.raises(ValueError):
        losses.hash_centers(0, 8)


@pytest.mark.parametrize("bits,seed", [(8, 0), (12, 3)])
def test_csq_matches_oracle(bits, seed):
    labels, codes = random_batch(seed, classes=5, bits=bits)
    # Row 0 has labels {0, 1}: with Hadamard rows 0 and 1 the sum is 0 on
    # half the bits, so the tie-break vector is exercised.
    labels[0] = [1, 1, 0, 0, 0]
    centres = losses.hash_centers(5, bits, seed)
    tie = csq_module.tie_break_center(bits, seed)
    loss = losses.CSQLoss(seed=seed, quantization_weight=0.5)
    np.testing.assert_allclose(
        per_anchor(loss, labels, codes),
        oracle.csq(labels, codes, centres, tie, lam=0.5),
        rtol=1e-5,
        atol=ATOL,
    )


def test_csq_best_and_worst_case():
    labels = np.eye(4, dtype="float32")
    centres = losses.hash_centers(4, 8)
    loss = losses.CSQLoss()
    # Codes on their centre: BCE(1, 1) = BCE(0, 0) = 0, quantization 0.
    np.testing.assert_allclose(per_anchor(loss, labels, centres), 0, atol=1e-6)
    # Codes on the opposite corner: every bit costs −log(1e-7) = 16.1181
    # (the clamp), quantization 0, so each anchor's loss is 16.1181.
    np.testing.assert_allclose(
        per_anchor(loss, labels, -centres), -math.log(1e-7), rtol=1e-5
    )


def test_csq_rejects_wrong_class_count():
    labels, codes = random_batch(0, classes=5, bits=8)
    with pytest.raises(ValueError, match="num_classes=6"):
        losses.CSQLoss(num_classes=6)(labels, codes)


# ---------------------------------------------------- analytic batches

K = 8
ONES = np.ones(K, "float32")


def test_dhn_best_and_worst_case():
    same = np.array([[1, 0], [1, 0]], "float32")
    # Identical ±1 codes, similar pair: θ = ½K = 4 for every pair (diagonal
    # too), loss log(1 + e^4) − 4 = log(1 + e^−4) = 0.0181499; log cosh(0) = 0.
    best = per_anchor(losses.DHNLoss(), same, np.stack([ONES, ONES]))
    np.testing.assert_allclose(best, math.log1p(math.exp(-4)), rtol=1e-5)
    # Opposite codes, similar pair: off-diagonal θ = −4, loss
    # log(1 + e^−4) + 4; diagonal as before; mean = log(1 + e^−4) + 2.
    worst = per_anchor(losses.DHNLoss(), same, np.stack([ONES, -ONES]))
    np.testing.assert_allclose(worst, math.log1p(math.exp(-4)) + 2, rtol=1e-5)


def test_dpsh_quantization_is_zero_on_binary_codes_only():
    same = np.array([[1, 0], [1, 0]], "float32")
    binary = per_anchor(
        losses.DPSHLoss(scale=0.0, quantization_weight=1.0),
        same,
        np.stack([ONES, -ONES]),
    )
    # scale 0: every pair costs log 2; (u − sgn u)² = 0.
    np.testing.assert_allclose(binary, math.log(2), rtol=1e-6)
    half = per_anchor(
        losses.DPSHLoss(scale=0.0, quantization_weight=1.0),
        same,
        np.stack([0.5 * ONES, -0.5 * ONES]),
    )
    # (0.5 − 1)² = 0.25 per bit.
    np.testing.assert_allclose(half, math.log(2) + 0.25, rtol=1e-6)


def test_hashnet_balanced_weights_on_analytic_batch():
    # Two images, disjoint labels. Pairs: 2 similar (diagonal), 2 dissimilar,
    # so |S| = 4, |S1| = |S0| = 2 and every weight is 2. Opposite ±1 codes,
    # α = 10/K: diagonal θ = 10 (s = 1) and off-diagonal θ = −10 (s = 0) both
    # cost log(1 + e^−10); per anchor (1/2)(2ℓ + 2ℓ) = 2ℓ.
    labels = np.array([[1, 0], [0, 1]], "float32")
    got = per_anchor(losses.HashNetLoss(), labels, np.stack([ONES, -ONES]))
    np.testing.assert_allclose(got, 2 * math.log1p(math.exp(-10)), rtol=1e-5)
    # Imbalance: 3 images, one class. All 9 pairs similar, |S0| = 0: weights
    # are |S|/|S1| = 1 and nothing divides by zero. Zero codes: θ = 0, log 2.
    got = per_anchor(
        losses.HashNetLoss(), np.ones((3, 1)), np.zeros((3, K), "float32")
    )
    np.testing.assert_allclose(got, math.log(2), rtol=1e-6)


def test_hashnet_continuation_sharpens_towards_sign():
    codes = np.array([[0.3, -0.2, 0.9, -0.6]], "float32")
    sharp = np.asarray(losses.hashnet.continuation_codes(codes, 50.0))
    np.testing.assert_allclose(sharp, np.sign(codes), atol=1e-3)
    same = np.asarray(losses.hashnet.continuation_codes(codes, 1.0))
    np.testing.assert_array_equal(same, codes)


def test_dsh_best_and_worst_case():
    similar = np.array([[1, 0], [1, 0]], "float32")
    dissimilar = np.array([[1, 0], [0, 1]], "float32")
    # Similar, identical ±1 codes: D = 0 and | |u| − 1 | = 0.
    np.testing.assert_allclose(
        per_anchor(losses.DSHLoss(), similar, np.stack([ONES, ONES])), 0.0
    )
    # Dissimilar, identical codes: off-diagonal ½·max(2K − 0, 0) = K = 8,
    # diagonal 0 (similar to itself, D = 0); per anchor 8/2 = 4.
    np.testing.assert_allclose(
        per_anchor(losses.DSHLoss(), dissimilar, np.stack([ONES, ONES])), 4.0
    )
    # Dissimilar, opposite codes: D = 4K = 32 > m = 16, no loss.
    np.testing.assert_allclose(
        per_anchor(losses.DSHLoss(), dissimilar, np.stack([ONES, -ONES])), 0.0
    )
    # Similar, opposite codes: ½·32 = 16 off-diagonal; per anchor 8.
    np.testing.assert_allclose(
        per_anchor(losses.DSHLoss(), similar, np.stack([ONES, -ONES])), 8.0
    )


def test_soft_only_best_and_worst_case():
    # cos({0,1}, {1,2}) = 1/2. Orthogonal ±1 codes agree on half the bits:
    # (0 + 4)/8 − 1/2 = 0; diagonal (4 + 4)/8 − 1 = 0. Loss 0.
    labels = np.array([[1, 1, 0], [0, 1, 1]], "float32")
    u1 = np.array([1, 1, 1, 1], "float32")
    u2 = np.array([1, 1, -1, -1], "float32")
    loss = losses.IDHNSoftOnlyLoss()
    np.testing.assert_allclose(
        per_anchor(loss, labels, np.stack([u1, u2])), 0.0, atol=1e-7
    )
    # Opposite codes: agreement 0, off-diagonal γK(0 − ½)² = 0.1·4·¼ = 0.1,
    # per anchor 0.1/2 = 0.05. Hard pairs get the MSE too (no CE): identical
    # labels with opposite codes cost γK(0 − 1)² = 0.4, per anchor 0.2.
    np.testing.assert_allclose(
        per_anchor(loss, labels, np.stack([u1, -u1])), 0.05, rtol=1e-6
    )
    np.testing.assert_allclose(
        per_anchor(loss, labels[[0, 0]], np.stack([u1, -u1])), 0.2, rtol=1e-6
    )


def test_idhn_dhp_soft_target_is_twice_the_official_one():
    # DHP's soft term γ(θ + K − 2Ks)² with θ = ½⟨u,U⟩ is zero at
    # θ = K(2s − 1), i.e. ⟨u,U⟩ = 2K(2s − 1); the official IDHN term is zero
    # at ⟨u,U⟩ = K(2s − 1). (At s = ½ both are 0, so use another s.)
    # Labels {0,1} vs {0}: s = 1/√2 ≈ 0.70711 (soft), less DHP's ε.
    labels = np.array([[1, 1], [1, 0]], "float32")
    s = 1 / math.sqrt(2) / (1 + 1e-5 / math.sqrt(2))  # DHP's ε on the norm
    bits = 4
    u = np.array([[1, 0, 0, 0]], "float32")
    target_inner = 2 * bits * (2 * s - 1)  # 2K(2s − 1) = 3.3137
    partner = np.array([[target_inner, 0, 0, 0]], "float32")
    got = np.asarray(
        losses.idhn_dhp_loss(
            labels[:1],
            u,
            bank_labels=labels[1:],
            bank_codes=partner,
            quantization_weight=0.0,
        )
    )
    np.testing.assert_allclose(got, 0.0, atol=1e-5)
    # At the official target (⟨u,U⟩ = K(2s − 1)) DHP's term is not zero:
    # θ = ½K(2s − 1), loss γ(θ − K(2s − 1))² = γ(½K(2s − 1))² = 0.1·(0.8284)².
    official = np.array([[target_inner / 2, 0, 0, 0]], "float32")
    got = np.asarray(
        losses.idhn_dhp_loss(
            labels[:1],
            u,
            bank_labels=labels[1:],
            bank_codes=official,
            quantization_weight=0.0,
        )
    )
    np.testing.assert_allclose(
        got, 0.1 * (bits * (2 * s - 1) / 2) ** 2, rtol=1e-4
    )


# ------------------------------------------------------------- memory bank


def test_idhn_dhp_ring_buffer_matches_oracle_over_several_batches():
    memory, bits, classes, batch = 8, 6, 4, 3
    loss = losses.IDHNDHPLoss(
        memory_size=memory, bits=bits, num_classes=classes
    )
    ring_u = np.zeros((memory, bits))
    ring_y = np.zeros((memory, classes))
    filled = np.zeros(memory, bool)
    position = 0
    for step in range(4):  # 12 images through an 8-slot ring: it wraps.
        labels, codes = random_batch(10 + step, batch, classes, bits)
        for r in range(batch):
            ring_u[(position + r) % memory] = codes[r]
            ring_y[(position + r) % memory] = labels[r]
            filled[(position + r) % memory] = True
        position = (position + batch) % memory
        expected = oracle.idhn_dhp(
            labels, codes, bank_y=ring_y[filled], bank_u=ring_u[filled]
        )
        got = per_anchor(loss, labels, codes)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=ATOL)
    assert int(np.asarray(loss.bank_position)) == 12 % memory
    np.testing.assert_allclose(np.asarray(loss.bank_codes), ring_u, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(loss.bank_filled), np.ones(8))


def test_idhn_dhp_bank_updates_inside_model_fit():
    memory, bits, classes, batch = 8, 6, 3, 4
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 5)).astype("float32")
    y = np.eye(classes, dtype="float32")[rng.integers(0, classes, 12)]
    model = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(bits, activation="softsign")]
    )
    loss = losses.IDHNDHPLoss(
        memory_size=memory, bits=bits, num_classes=classes
    )
    model.compile(optimizer="sgd", loss=loss)
    history = model.fit(
        x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0
    )
    assert np.isfinite(history.history["loss"][0])
    # Three batches of 4 through 8 slots: position 12 mod 8 = 4; slots 0–3
    # hold images 8–11 (the last batch), slots 4–7 images 4–7.
    assert int(np.asarray(loss.bank_position)) == 4
    np.testing.assert_array_equal(
        np.asarray(loss.bank_labels), y[[8, 9, 10, 11, 4, 5, 6, 7]]
    )
    assert np.all(np.abs(np.asarray(loss.bank_codes)) > 0)


def test_idhn_dhp_bank_needs_its_shapes():
    with pytest.raises(ValueError, match="bits"):
        losses.IDHNDHPLoss(memory_size=4)
    with pytest.raises(ValueError, match="memory_size"):
        losses.IDHNDHPLoss(memory_size=-1)


# --------------------------------------------------------- gradient signs


def _grad_wrt_first(loss, labels, codes):
    codes = tf.Variable(codes)
    with tf.GradientTape() as tape:
        value = ops.mean(loss.call(labels, codes))
    return tape.gradient(value, codes).numpy()[0]


PAIR_LOSSES = {
    "dhn": lambda: losses.DHNLoss(
        quantization_weight=0.0, include_diagonal=False
    ),
    "dpsh": lambda: losses.DPSHLoss(
        quantization_weight=0.0, include_diagonal=False
    ),
    "hashnet": lambda: losses.HashNetLoss(include_diagonal=False),
    "dsh": lambda: losses.DSHLoss(
        quantization_weight=0.0, include_diagonal=False
    ),
    "soft_only": lambda: losses.IDHNSoftOnlyLoss(
        quantization_weight=0.0, include_diagonal=False
    ),
}


@pytest.mark.parametrize("name", sorted(PAIR_LOSSES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_pulls_similar_and_pushes_dissimilar(name, seed):
    rng = np.random.default_rng(seed)
    codes = (0.3 * rng.normal(size=(2, K))).astype("float32")
    towards = codes[1] - codes[0]  # moving u_1 along this brings it to u_2
    loss = PAIR_LOSSES[name]()
    similar = np.array([[1, 0], [1, 0]], "float32")
    dissimilar = np.array([[1, 0], [0, 1]], "float32")
    # Directional derivative of the loss along "towards": negative (moving
    # closer lowers it) for a similar pair, positive for a dissimilar one.
    assert _grad_wrt_first(loss, similar, codes) @ towards < 0
    assert _grad_wrt_first(loss, dissimilar, codes) @ towards > 0


def test_idhn_dhp_gradient_signs_and_detached_bank():
    rng = np.random.default_rng(4)
    u = tf.Variable((0.3 * rng.normal(size=(1, K))).astype("float32"))
    bank = tf.Variable((0.3 * rng.normal(size=(1, K))).astype("float32"))
    for labels, bank_labels, sign in [
        ([[1.0, 0.0]], [[1.0, 0.0]], -1),  # hard similar: pull
        ([[1.0, 0.0]], [[0.0, 1.0]], 1),  # hard dissimilar: push
    ]:
        with tf.GradientTape(persistent=True) as tape:
            value = ops.mean(
                losses.idhn_dhp_loss(
                    np.array(labels, "float32"),
                    u,
                    bank_labels=np.array(bank_labels, "float32"),
                    bank_codes=bank,
                    quantization_weight=0.0,
                )
            )
        grad = tape.gradient(value, u).numpy()[0]
        assert sign * (grad @ bank.numpy()[0]) > 0
        assert tape.gradient(value, bank) is None  # the bank is a constant


def test_csq_gradient_points_away_from_centre():
    labels = np.eye(2, dtype="float32")
    centres = losses.hash_centers(2, K)
    codes = tf.Variable(np.zeros((2, K), "float32"))
    with tf.GradientTape() as tape:
        value = ops.mean(losses.CSQLoss().call(labels, codes))
    grad = tape.gradient(value, codes).numpy()
    # Descending moves each code towards its centre: −grad ∝ +centre.
    assert np.all(np.sign(-grad) == centres)


# ------------------------------------------------- registry and configs


def test_registry_names_build_the_right_classes():
    for name, cls in NEW_LOSSES.items():
        assert losses.LOSSES[name] is cls
        assert isinstance(losses.get_loss(name), cls)


def _non_default_arguments(cls):
    """A value different from the default for every __init__ argument."""
    values = {}
    for param in inspect.signature(cls.__init__).parameters.values():
        if param.name in ("self", "kwargs", "name"):
            continue
        default = param.default
        if isinstance(default, bool):
            values[param.name] = not default
        elif param.name == "memory_size":
            values[param.name] = 6
        elif param.name in ("bits", "num_classes", "seed"):
            values[param.name] = 7 if param.name != "bits" else 4
        elif default is None:
            values[param.name] = 3.5
        else:
            values[param.name] = float(default) + 0.25
    return values


@pytest.mark.parametrize("name", sorted(NEW_LOSSES))
def test_config_round_trip(name):
    cls = NEW_LOSSES[name]
    arguments = _non_default_arguments(cls)
    loss = cls(**arguments, name=f"custom_{name}")
    config = loss.get_config()
    for key, value in arguments.items():
        assert config[key] == value, key
    assert config["name"] == f"custom_{name}"
    restored = run_serialization_test(loss)
    classes = arguments.get("num_classes", 7)
    bits = arguments.get("bits", 4)
    labels, codes = random_batch(0, batch=5, classes=classes, bits=bits)
    np.testing.assert_allclose(
        per_anchor(restored, labels, codes),
        per_anchor(cls(**arguments), labels, codes),
        rtol=1e-6,
    )


@pytest.mark.parametrize("name", sorted(NEW_LOSSES))
def test_constructible_without_arguments_and_finite(name):
    labels, codes = random_batch(1)
    loss = NEW_LOSSES[name]()
    value = float(loss(labels, codes))
    assert np.isfinite(value) and value >= 0.0


# ------------------------------------------------- inside model.fit


def _tiny_model(bits):
    return keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(bits, activation="tanh")]
    )


@pytest.mark.parametrize("name", sorted(NEW_LOSSES))
def test_every_loss_trains_in_a_compiled_fit(name):
    # The traced train step sees symbolic shapes: CSQ's lazy centres and
    # HashNet's 10/K must resolve there too, and a few SGD steps must lower
    # the loss on a fixed batch.
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 5)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 16)]
    params = {"memory_size": 16, "bits": 8, "num_classes": 3}
    loss = losses.get_loss(name, **(params if name == "idhn_dhp" else {}))
    model = _tiny_model(8)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=loss)
    history = model.fit(
        x, y, batch_size=16, epochs=8, shuffle=False, verbose=0
    ).history["loss"]
    assert np.all(np.isfinite(history))
    assert history[-1] < history[0], history


def test_hashnet_continuation_takes_effect_after_retrace():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 5)).astype("float32")
    y = np.eye(2, dtype="float32")[rng.integers(0, 2, 8)]
    model = _tiny_model(8)
    loss = losses.HashNetLoss()
    model.compile(optimizer="sgd", loss=loss)
    before = model.evaluate(x, y, verbose=0)
    loss.continuation = 5.0
    model.make_test_function(force=True)
    after = model.evaluate(x, y, verbose=0)
    expected = oracle.hashnet(y, np.asarray(model(x)), continuation=5.0).mean()
    assert abs(after - before) > 1e-4
    np.testing.assert_allclose(after, expected, rtol=1e-4)
