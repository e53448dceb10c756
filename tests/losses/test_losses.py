"""IDHN loss: hand-computed batches, an independent NumPy oracle, gradients.

The oracle below is written from docs/design.md §2 / docs/method.md
§2.2-2.8 with explicit loops over pairs, without calling keras_dhsps.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_dhsps import losses
from tests.keras_harness import run_serialization_test

LOG1P_EXP_MINUS_5 = math.log1p(math.exp(-5.0))  # 0.006715348489...


def oracle_idhn(
    labels,
    codes,
    beta=5.0,
    gamma=0.1,
    alpha=0.1,
    low=0.01,
    high=0.99,
    diagonal=True,
):
    """Mean IDHN loss over the batch, pair by pair (docs/design.md §2)."""
    labels = np.asarray(labels, np.float64)
    codes = np.asarray(codes, np.float64)
    batch, bits = codes.shape
    total, count = 0.0, 0
    for i in range(batch):
        for j in range(batch):
            if i == j and not diagonal:
                continue
            yi, yj = labels[i], labels[j]
            s = yi @ yj / (np.linalg.norm(yi) * np.linalg.norm(yj))
            inner = codes[i] @ codes[j]
            if s < low or s > high:
                theta = beta * inner / bits
                total += math.log(1.0 + math.exp(theta)) - s * theta
            else:
                total += gamma * bits * ((inner + bits) / (2 * bits) - s) ** 2
            count += 1
    pair_mean = total / count if diagonal else total / (batch * (batch - 1))
    quantization = np.mean(np.abs(np.abs(codes) - 1.0))
    return pair_mean + alpha * quantization


def oracle_hard_only(labels, codes, beta=5.0, alpha=0.1):
    labels = np.asarray(labels, np.float64)
    codes = np.asarray(codes, np.float64)
    batch, bits = codes.shape
    total = 0.0
    for i in range(batch):
        for j in range(batch):
            s = 1.0 if labels[i] @ labels[j] > 0 else 0.0
            theta = beta * (codes[i] @ codes[j]) / bits
            total += math.log(1.0 + math.exp(theta)) - s * theta
    return total / batch**2 + alpha * np.mean(np.abs(np.abs(codes) - 1.0))


def mean_loss(loss, labels, codes):
    return float(
        loss(np.asarray(labels, np.float32), np.asarray(codes, np.float32))
    )


def random_batch(rng, batch=16, bits=12, classes=5):
    labels = (rng.random((batch, classes)) < 0.35).astype(np.float32)
    labels[labels.sum(axis=1) == 0, rng.integers(classes)] = 1.0
    codes = np.tanh(rng.normal(size=(batch, bits)) * 1.5).astype(np.float32)
    return labels, codes


def test_identical_labels_perfect_codes():
    # Both images have label {0}: every pair (incl. the diagonal) is hard with
    # s = 1. Codes [1, 1] give <u_i, u_j> = 2, θ = 5·2/2 = 5 and
    # log(1 + e^5) − 5 = log(1 + e^-5) = 0.0067153 for each of the 4 pairs;
    # |u| = 1 so the quantization term is 0.
    labels = [[1, 0], [1, 0]]
    codes = [[1, 1], [1, 1]]
    value = mean_loss(losses.IDHNLoss(), labels, codes)
    assert value == pytest.approx(LOG1P_EXP_MINUS_5, rel=1e-5)


def test_disjoint_labels_opposite_codes():
    # s_12 = 0 (hard dissimilar), <u1, u2> = −2, θ = −5: log(1 + e^-5) − 0.
    # The diagonal pairs (s = 1, θ = 5) give the same value.
    labels = [[1, 0], [0, 1]]
    codes = [[1, 1], [-1, -1]]
    value = mean_loss(losses.IDHNLoss(), labels, codes)
    assert value == pytest.approx(LOG1P_EXP_MINUS_5, rel=1e-5)


def test_soft_pair_uses_scaled_mse():
    # y1 = {0, 1}, y2 = {0}: s_12 = 1/√2 = 0.70711, a soft pair.
    # u1 = [1, 1], u2 = [1, −1]: <u1, u2> = 0, agreement (0 + 2)/4 = 0.5,
    # ℓ_soft = γ·K·(0.5 − 0.70711)² = 0.1·2·0.042893 = 0.0085786.
    # Diagonal pairs: hard, s = 1, θ = 5 → 0.0067153 each.
    # Mean over the 4 pairs: (2·0.0067153 + 2·0.0085786)/4 = 0.0076470.
    labels = [[1, 1], [1, 0]]
    codes = [[1, 1], [1, -1]]
    soft = 0.1 * 2 * (0.5 - 1 / math.sqrt(2)) ** 2
    expected = (2 * LOG1P_EXP_MINUS_5 + 2 * soft) / 4
    value = mean_loss(losses.IDHNLoss(), labels, codes)
    # float32: the cosine 1/√2 carries ~1e-7 rounding, squared and scaled.
    assert value == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.0076470, abs=1e-7)


def test_quantization_term():
    # One image, u = [0.5, −0.5], K = 2. Diagonal pair: s = 1,
    # <u, u> = 0.5, θ = 5·0.5/2 = 1.25, log(1 + e^-1.25) = 0.251929.
    # Quantization: mean(| |u| − 1 |) = 0.5, times α = 0.1 → 0.05.
    value = mean_loss(losses.IDHNLoss(), [[1, 0, 0]], [[0.5, -0.5]])
    assert value == pytest.approx(math.log1p(math.exp(-1.25)) + 0.05, rel=1e-5)
    without = losses.IDHNLoss(quantization_weight=0.0)
    assert mean_loss(without, [[1, 0, 0]], [[0.5, -0.5]]) == pytest.approx(
        math.log1p(math.exp(-1.25)), rel=1e-5
    )


def test_hard_only_counts_any_shared_label_as_similar():
    # Same batch as the soft case, but s_12 = 1 (they share label 0):
    # <u1, u2> = 0 → θ = 0 → log 2 = 0.693147 for the two off-diagonal pairs.
    labels = [[1, 1], [1, 0]]
    codes = [[1, 1], [1, -1]]
    expected = (2 * LOG1P_EXP_MINUS_5 + 2 * math.log(2.0)) / 4
    value = mean_loss(losses.HardOnlyLoss(), labels, codes)
    assert value == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("bits", [12, 24, 48])
@pytest.mark.parametrize("diagonal", [True, False])
def test_matches_oracle_on_random_batches(rng, bits, diagonal):
    labels, codes = random_batch(rng, bits=bits)
    loss = losses.IDHNLoss(include_diagonal=diagonal)
    expected = oracle_idhn(labels, codes, diagonal=diagonal)
    assert mean_loss(loss, labels, codes) == pytest.approx(expected, abs=1e-5)


def test_random_batches_exercise_every_branch(rng):
    # Guard for the oracle test: the random batches must contain hard
    # similar, hard dissimilar and soft pairs, or the test proves little.
    labels, _ = random_batch(rng)
    s = np.asarray(losses.soft_similarity(labels))
    assert (s < 0.01).any() and (s > 0.99).any()
    assert ((s >= 0.01) & (s <= 0.99)).any()


def test_custom_hyperparameters_match_oracle(rng):
    labels, codes = random_batch(rng, bits=32)
    loss = losses.IDHNLoss(beta=3.0, soft_weight=0.5, quantization_weight=0.2)
    expected = oracle_idhn(labels, codes, beta=3.0, gamma=0.5, alpha=0.2)
    assert mean_loss(loss, labels, codes) == pytest.approx(expected, abs=1e-5)


def test_hard_only_matches_oracle(rng):
    labels, codes = random_batch(rng, bits=24)
    expected = oracle_hard_only(labels, codes)
    value = mean_loss(losses.HardOnlyLoss(), labels, codes)
    assert value == pytest.approx(expected, abs=1e-5)


def test_per_anchor_values_average_to_the_batch_loss(rng):
    labels, codes = random_batch(rng)
    per_anchor = np.asarray(losses.idhn_loss(labels, codes))
    assert per_anchor.shape == (16,)
    assert per_anchor.mean() == pytest.approx(
        oracle_idhn(labels, codes), abs=1e-5
    )


def test_gradient_matches_finite_differences_of_oracle(rng):
    labels, codes = random_batch(rng, batch=6, bits=8)
    codes64 = codes.astype(np.float64)
    variable = tf.Variable(codes)
    with tf.GradientTape() as tape:
        value = tf.reduce_mean(losses.idhn_loss(labels, variable))
    gradient = tape.gradient(value, variable).numpy()
    numeric = np.zeros_like(codes64)
    step = 1e-5
    for index in np.ndindex(codes64.shape):
        plus, minus = codes64.copy(), codes64.copy()
        plus[index] += step
        minus[index] -= step
        numeric[index] = (
            oracle_idhn(labels, plus) - oracle_idhn(labels, minus)
        ) / (2 * step)
    np.testing.assert_allclose(gradient, numeric, atol=2e-4)


def test_gradient_signs_pull_similar_together_and_push_dissimilar_apart():
    # Two images, K = 1, small codes (no quantization kink at |u| = 1).
    # Identical labels (s = 1): dL/du_1 < 0 when u_2 > 0, i.e. gradient
    # descent raises u_1 towards u_2. Disjoint labels (s = 0): the sign flips.
    codes = tf.Variable([[0.2], [0.3]])
    for labels, sign in (([[1, 0], [1, 0]], -1.0), ([[1, 0], [0, 1]], 1.0)):
        with tf.GradientTape() as tape:
            value = tf.reduce_mean(
                losses.idhn_loss(
                    np.asarray(labels, np.float32),
                    codes,
                    quantization_weight=0.0,
                )
            )
        gradient = tape.gradient(value, codes).numpy()
        # The diagonal pair always pushes |u_1| up (s = 1): compare to the
        # diagonal-free loss to isolate the pair term.
        with tf.GradientTape() as tape:
            pair_only = tf.reduce_mean(
                losses.idhn_loss(
                    np.asarray(labels, np.float32),
                    codes,
                    quantization_weight=0.0,
                    include_diagonal=False,
                )
            )
        pair_gradient = tape.gradient(pair_only, codes).numpy()
        assert np.sign(pair_gradient[0, 0]) == sign
        assert np.isfinite(gradient).all()


def test_soft_similarity_values():
    # {0,1} vs {0}: 1/√2; {0,1} vs {0,1}: 1; {0} vs {2}: 0; {0,1,2} vs {1,2}:
    # 2/√6 = 0.8165.
    labels = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1], [1, 1, 1], [0, 1, 1]])
    s = np.asarray(losses.soft_similarity(labels))
    assert s[0, 1] == pytest.approx(1 / math.sqrt(2), rel=1e-6)
    assert s[0, 0] == pytest.approx(1.0, rel=1e-6)
    assert s[1, 2] == 0.0
    assert s[3, 4] == pytest.approx(2 / math.sqrt(6), rel=1e-6)
    np.testing.assert_allclose(s, s.T)


def test_unlabelled_image_is_dissimilar_not_nan():
    s = np.asarray(losses.soft_similarity(np.array([[0, 0], [1, 0]])))
    assert np.isfinite(s).all() and s[0, 1] == 0.0


def test_hard_mask_thresholds():
    s = keras.ops.convert_to_tensor(
        np.array([0.0, 0.009, 0.01, 0.5, 0.99, 0.991, 1.0], np.float32)
    )
    mask = np.asarray(losses.hard_pair_mask(s))
    np.testing.assert_array_equal(mask, [1, 1, 0, 0, 0, 1, 1])
    wide = np.asarray(losses.hard_pair_mask(s, hard_low=0.6, hard_high=0.7))
    np.testing.assert_array_equal(wide, [1, 1, 1, 1, 1, 1, 1])


@pytest.mark.parametrize("cls", [losses.IDHNLoss, losses.HardOnlyLoss])
def test_config_round_trip_and_all_init_args_in_config(cls):
    run_serialization_test(cls())


def test_get_loss_by_name_and_unknown_name():
    assert isinstance(losses.get_loss("idhn", beta=3.0), losses.IDHNLoss)
    assert losses.get_loss("idhn", beta=3.0).beta == 3.0
    with pytest.raises(KeyError, match="unknown loss 'nope'"):
        losses.get_loss("nope")
