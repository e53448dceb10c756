"""The hasher: shapes, activations, .keras round trip under safe_mode."""

import keras
import numpy as np
import pytest

from keras_dhsps import losses
from keras_dhsps.models.hasher import HASH_LAYER_NAME
from keras_dhsps.models.hasher import build_hasher
from keras_dhsps.utils.errors import UnknownNameError


@pytest.mark.parametrize("activation", ["tanh", "softsign"])
def test_codes_shape_and_range(rng, activation):
    model = build_hasher("small_cnn", 12, activation=activation)
    images = rng.integers(0, 256, (3, 32, 32, 3)).astype("float32")
    codes = np.asarray(model(images))
    assert codes.shape == (3, 12)
    assert (np.abs(codes) < 1).all()
    assert model.get_layer(HASH_LAYER_NAME).units == 12


def test_softsign_is_z_over_one_plus_abs_z(rng):
    model = build_hasher("small_cnn", 8, activation="softsign")
    images = rng.integers(0, 256, (2, 32, 32, 3)).astype("float32")
    features = model.get_layer("backbone")(images)
    layer = model.get_layer(HASH_LAYER_NAME)
    z = np.asarray(features) @ np.asarray(layer.kernel) + np.asarray(layer.bias)
    np.testing.assert_allclose(
        np.asarray(model(images)), z / (1 + np.abs(z)), atol=1e-5
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="activation"):
        build_hasher("small_cnn", 12, activation="sigmoid")
    with pytest.raises(ValueError, match="bits"):
        build_hasher("small_cnn", 0)
    with pytest.raises(UnknownNameError, match="unknown backbone 'nope'"):
        build_hasher("nope", 12)


def test_keras_round_trip_with_safe_mode(tmp_path, rng):
    model = build_hasher("small_cnn", 24)
    model.compile(optimizer="adam", loss=losses.IDHNLoss(soft_weight=0.2))
    # Built (as after training) so its state round-trips too.
    model.optimizer.build(model.trainable_variables)
    images = rng.integers(0, 256, (4, 32, 32, 3)).astype("float32")
    path = str(tmp_path / "hasher.keras")
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(
        np.asarray(restored(images)), np.asarray(model(images)), atol=1e-6
    )
    assert isinstance(restored.loss, losses.IDHNLoss)
    assert restored.loss.soft_weight == 0.2
