"""Tests for the two-rate Adam and the schedules (authors' protocol)."""

import keras
import numpy as np
import pytest

from keras_dhsps.config import TrainConfig
from keras_dhsps.training.fit import build_optimizer
from keras_dhsps.training.optimizers import LayerwiseAdam
from keras_dhsps.training.optimizers import make_schedule
from keras_dhsps.utils.errors import UnknownNameError


def two_layer_model():
    inputs = keras.Input((3,))
    x = keras.layers.Dense(2, name="fc7")(inputs)
    outputs = keras.layers.Dense(2, name="hash_layer")(x)
    return keras.Model(inputs, outputs)


def values(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def zero(variables):
    # Start from 0 so the step is read without float32 cancellation.
    for variable in variables:
        variable.assign(keras.ops.zeros(variable.shape))


def test_first_adam_step_is_rate_times_multiplier():
    # Adam's first step is lr·m̂/(√v̂ + ε) = lr·g/(|g| + ε) ≈ lr·sign(g):
    # 1e-3 on the hash layer and 1e-3 × 0.01 = 1e-5 on the backbone.
    model = two_layer_model()
    optimizer = build_optimizer(TrainConfig(backbone_lr_multiplier=0.01))
    variables = model.trainable_variables
    zero(variables)
    before = values(variables)
    grads = [keras.ops.full(v.shape, 0.5) for v in variables]
    optimizer.apply(grads, variables)
    for variable, old in zip(variables, before, strict=True):
        step = old - keras.ops.convert_to_numpy(variable)
        expected = 1e-3 if variable.path.startswith("hash_layer") else 1e-5
        np.testing.assert_allclose(step, expected, rtol=1e-4)


def test_rates_follow_the_step_decay():
    # At step 500 the decayed rates are half the constant ones, for the hash
    # layer (5e-4) and the backbone (5e-6) alike.
    steps = {}
    for schedule in ("step", "constant"):
        model = two_layer_model()
        optimizer = build_optimizer(
            TrainConfig(schedule=schedule, backbone_lr_multiplier=0.01)
        )
        variables = model.trainable_variables
        optimizer.build(variables)
        optimizer.iterations.assign(500)
        zero(variables)
        optimizer.apply(
            [keras.ops.full(v.shape, -2.0) for v in variables], variables
        )
        steps[schedule] = {v.path: values([v])[0] for v in variables}
    for path, step in steps["step"].items():
        expected = 0.5 * steps["constant"][path]
        np.testing.assert_allclose(step, expected, rtol=1e-5)
    hash_step = steps["step"]["hash_layer/kernel"][0, 0]
    backbone_step = steps["step"]["fc7/kernel"][0, 0]
    np.testing.assert_allclose(backbone_step, 0.01 * hash_step, rtol=1e-5)


def test_moments_are_per_variable():
    # Gradient only on the hash layer: the backbone's Adam state stays zero,
    # as with a separate optimizer for it.
    model = two_layer_model()
    optimizer = LayerwiseAdam(1e-3, {"hash_layer": 1.0}, 0.01)
    variables = model.trainable_variables
    grads = [
        keras.ops.full(v.shape, 1.0 if v.path.startswith("hash_layer") else 0.0)
        for v in variables
    ]
    optimizer.apply(grads, variables)
    for variable in variables:
        index = optimizer._get_variable_index(variable)
        m = keras.ops.convert_to_numpy(optimizer._momentums[index])
        if variable.path.startswith("hash_layer"):
            np.testing.assert_allclose(m, 0.1)  # (1 − β1)·g
        else:
            assert not np.any(m)


def test_authors_schedule_values():
    # 3,125 iterations at ×0.5 every 500: 1e-3 ... 1.5625e-5 at the end.
    schedule = make_schedule("step", 1e-3, decay_steps=500, decay_rate=0.5)
    for step, rate in [
        (0, 1e-3),
        (499, 1e-3),
        (500, 5e-4),
        (1000, 2.5e-4),
        (3124, 1.5625e-5),
    ]:
        assert float(schedule(step)) == pytest.approx(rate)


def test_other_schedules():
    cosine = make_schedule("cosine", 1e-3, total_steps=100)
    assert float(cosine(0)) == pytest.approx(1e-3)
    assert float(cosine(50)) == pytest.approx(5e-4)
    assert float(cosine(100)) == pytest.approx(0.0, abs=1e-9)
    assert make_schedule("constant", 1e-3) == 1e-3
    assert make_schedule("step", 1e-3, decay_steps=0) == 1e-3
    with pytest.raises(UnknownNameError, match="cosine"):
        make_schedule("linear", 1e-3)
    with pytest.raises(ValueError, match="total_steps"):
        make_schedule("cosine", 1e-3)


def test_optimizer_config_round_trip():
    optimizer = build_optimizer(TrainConfig(backbone_lr_multiplier=0.1))
    config = optimizer.get_config()
    clone = LayerwiseAdam.from_config(config)
    assert clone.multipliers == {"hash_layer": 1.0}
    assert clone.default_multiplier == 0.1
    assert clone.epsilon == 1e-8
    assert float(clone.learning_rate) == pytest.approx(1e-3)
    serialized = keras.optimizers.serialize(optimizer)
    revived = keras.optimizers.deserialize(serialized)
    assert isinstance(revived, LayerwiseAdam)
