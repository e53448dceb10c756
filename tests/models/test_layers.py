"""Tests for keras_dhsps.models.layers: LRN against Caffe's formula and TF's op."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_dhsps.models.layers import LocalResponseNormalization
from keras_dhsps.models.layers import ReverseChannels
from keras_dhsps.models.layers import SubtractMean
from tests.keras_harness import assert_keras_file_round_trip
from tests.keras_harness import run_serialization_test


def caffe_lrn(a, local_size, alpha, beta, k):
    """Caffe ACROSS_CHANNELS LRN, written as loops: b = a / (k + α/n Σa²)^β."""
    out = np.empty_like(a, dtype="float64")
    channels = a.shape[-1]
    half = (local_size - 1) // 2
    for c in range(channels):
        lo, hi = max(0, c - half), min(channels, c + half + 1)
        total = np.sum(a[..., lo:hi].astype("float64") ** 2, axis=-1)
        out[..., c] = a[..., c] / (k + alpha / local_size * total) ** beta
    return out


def test_lrn_matches_caffe_formula_and_tf_op():
    rng = np.random.default_rng(0)
    # Large activations (as after conv1) so the normalization matters.
    x = rng.normal(scale=200.0, size=(2, 3, 3, 11)).astype("float32")
    layer = LocalResponseNormalization.from_caffe(5, 1e-4, 0.75, 1.0)
    # from_caffe converts to TF's convention: radius 2, alpha 1e-4 / 5.
    assert layer.depth_radius == 2
    assert layer.alpha == pytest.approx(2e-5)
    got = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(got, caffe_lrn(x, 5, 1e-4, 0.75, 1.0), rtol=1e-5)
    tf_ref = tf.nn.local_response_normalization(
        x, depth_radius=2, bias=1.0, alpha=2e-5, beta=0.75
    ).numpy()
    np.testing.assert_allclose(got, tf_ref, rtol=1e-5)
    # The normalization is not the identity at this scale.
    assert np.max(np.abs(got - x)) > 1.0


def test_lrn_hand_computed_single_channel():
    # One channel, radius 0: b = a / (1 + 0.5 a²)^1 ; a = 2 -> 2 / 3.
    layer = LocalResponseNormalization(0, alpha=0.5, beta=1.0, bias=1.0)
    x = np.full((1, 1, 1, 1), 2.0, "float32")
    got = keras.ops.convert_to_numpy(layer(x))
    assert got[0, 0, 0, 0] == pytest.approx(2.0 / 3.0)


def test_lrn_float16_policy_does_not_overflow():
    x = np.full((1, 2, 2, 8), 300.0, "float32")  # 300² > float16 max / 5
    layer = LocalResponseNormalization(dtype="mixed_float16")
    y = layer(x)
    assert keras.backend.standardize_dtype(y.dtype) == "float16"
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(y)))
    ref = LocalResponseNormalization()(x)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(y).astype("float32"),
        keras.ops.convert_to_numpy(ref),
        rtol=1e-2,
    )


def test_lrn_rejects_bad_parameters():
    with pytest.raises(ValueError, match="local_size"):
        LocalResponseNormalization.from_caffe(local_size=4)
    with pytest.raises(ValueError, match="depth_radius"):
        LocalResponseNormalization(depth_radius=-1)


def test_channel_layers_values():
    x = np.array([[[[10.0, 20.0, 30.0]]]], "float32")
    flipped = keras.ops.convert_to_numpy(ReverseChannels()(x))
    np.testing.assert_array_equal(flipped, [[[[30.0, 20.0, 10.0]]]])
    centred = keras.ops.convert_to_numpy(SubtractMean([1.0, 2.0, 3.0])(x))
    np.testing.assert_array_equal(centred, [[[[9.0, 18.0, 27.0]]]])


@pytest.mark.parametrize(
    "layer",
    [
        LocalResponseNormalization(3, 1e-3, 0.5, 2.0, name="lrn"),
        ReverseChannels(name="flip"),
        SubtractMean([1.0, 2.0, 3.0], name="mean"),
    ],
)
def test_layer_serialization_round_trip(layer):
    revived = run_serialization_test(layer)
    x = np.random.default_rng(1).normal(size=(1, 2, 2, 3)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(revived(x)),
        keras.ops.convert_to_numpy(layer(x)),
    )


def test_model_with_layers_reloads_in_safe_mode(tmp_path):
    inputs = keras.Input((4, 4, 3))
    x = ReverseChannels()(inputs)
    x = SubtractMean([1.0, 2.0, 3.0])(x)
    x = LocalResponseNormalization(1, 1e-2)(x)
    model = keras.Model(inputs, x)
    data = np.random.default_rng(2).uniform(0, 255, (2, 4, 4, 3))
    assert_keras_file_round_trip(model, data.astype("float32"), tmp_path)


def test_grouped_conv_equals_keras_grouped_conv():
    from keras_dhsps.models.layers import GroupedConv2D

    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 6, 6, 8)).astype("float32")
    ours = GroupedConv2D(6, 3, groups=2, padding="same")
    reference = keras.layers.Conv2D(6, 3, groups=2, padding="same")
    ours.build(x.shape)
    reference.build(x.shape)
    assert [w.shape for w in ours.weights] == [(3, 3, 4, 6), (6,)]
    reference.set_weights(ours.get_weights())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(ours(x)),
        keras.ops.convert_to_numpy(reference(x)),
        rtol=1e-4,
        atol=1e-4,
    )
    # Not the ungrouped convolution: group 0's filters ignore channels 4-7.
    x2 = x.copy()
    x2[..., 4:] = 0.0
    y, y2 = (keras.ops.convert_to_numpy(ours(v)) for v in (x, x2))
    np.testing.assert_allclose(y[..., :3], y2[..., :3], rtol=1e-5, atol=1e-5)
    assert not np.allclose(y[..., 3:], y2[..., 3:])
    clone = run_serialization_test(ours)
    assert clone.groups == 2
