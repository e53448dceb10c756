"""The shared Keras harness fails when a round trip breaks.

Each broken layer below has one defect that a real bug could introduce; the
harness must reject it (an AssertionError, or for a Lambda layer Keras'
own safe-mode refusal). The broken classes are registered under a package of
their own; only the correct ``HarnessScale`` takes a ``keras_dhsps>`` key.
"""

import keras
import numpy as np
import pytest

from keras_dhsps.models.layers import SubtractMean
from tests.keras_harness import assert_config_round_trip
from tests.keras_harness import assert_keras_file_round_trip
from tests.keras_harness import assert_serialization_round_trip
from tests.keras_harness import run_serialization_test

TEST_PACKAGE = "keras_dhsps_harness_test"


@keras.saving.register_keras_serializable(package="keras_dhsps")
class HarnessScale(keras.layers.Layer):
    """A correct layer: multiplies by ``factor``."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        return inputs * self.factor

    def get_config(self):
        config = super().get_config()
        config.update({"factor": self.factor})
        return config


@keras.saving.register_keras_serializable(package=TEST_PACKAGE)
class ForgetsFactor(HarnessScale):
    """``get_config`` drops an ``__init__`` argument."""

    def get_config(self):
        config = super().get_config()
        del config["factor"]
        return config


@keras.saving.register_keras_serializable(package=TEST_PACKAGE)
class RoundsFactor(HarnessScale):
    """``from_config`` does not restore the value it was given."""

    @classmethod
    def from_config(cls, config):
        config = dict(config, factor=round(config["factor"]))
        return cls(**config)


class Unregistered(HarnessScale):
    """Never registered: cannot be deserialized by name."""


def test_a_correct_layer_passes_and_is_revived():
    layer = HarnessScale(2.5, name="scale")
    revived = run_serialization_test(layer)
    assert revived.factor == 2.5 and revived.name == "scale"


def test_missing_init_argument_in_config_fails():
    with pytest.raises(AssertionError, match="factor"):
        assert_config_round_trip(ForgetsFactor(3.0))


def test_config_that_changes_on_revival_fails():
    with pytest.raises(AssertionError):
        assert_config_round_trip(RoundsFactor(2.5))


def test_registry_key_outside_the_package_fails():
    # RoundsFactor is registered, but not as keras_dhsps>RoundsFactor.
    with pytest.raises(AssertionError):
        assert_serialization_round_trip(RoundsFactor(2.0))


def test_unregistered_class_fails():
    with pytest.raises(AssertionError):
        assert_serialization_round_trip(Unregistered(2.0))


def test_keras_file_round_trip_reloads_in_safe_mode(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, SubtractMean([1.0, 2.0, 3.0])(inputs))
    data = np.arange(6, dtype="float32").reshape(2, 3)
    reloaded = assert_keras_file_round_trip(model, data, tmp_path)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(reloaded(data)), data - [1.0, 2.0, 3.0]
    )


def test_keras_file_round_trip_refuses_a_lambda_layer(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x + 1)(inputs))
    data = np.zeros((1, 3), dtype="float32")
    with pytest.raises(ValueError, match="unsafe|Lambda|safe_mode"):
        assert_keras_file_round_trip(model, data, tmp_path)
