"""MirroredStrategy over two logical CPUs equals one device on the same
global batch (the pairwise loss sees every pair)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

# Logical devices must be configured before TensorFlow initializes, so the
# comparison runs in a fresh interpreter.
SCRIPT = textwrap.dedent(
    """
    import json
    import os
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import numpy as np
    from keras_dhsps.config import DataConfig, ExperimentConfig
    from keras_dhsps.config import ModelConfig, TrainConfig
    from keras_dhsps.data import load_dataset
    from keras_dhsps.distribute import GlobalBatchLoss, make_strategy
    from keras_dhsps.losses import IDHNLoss
    from keras_dhsps.train import fit

    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 6)).astype("float32")
    # Labels with hard-similar, hard-dissimilar and soft pairs, including
    # pairs split across the two replicas (rows 0-3 and 4-7).
    y = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [1, 1, 1],
                  [1, 0, 0], [0, 1, 1], [0, 0, 1], [1, 1, 0]], "float32")

    def build():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((6,))
        h = keras.layers.Dense(5, activation="tanh", name="fc")(inputs)
        out = keras.layers.Dense(4, activation="tanh", name="hash_layer")(h)
        return keras.Model(inputs, out)

    def reference():
        model = build()
        with tf.GradientTape() as tape:
            loss = IDHNLoss()(y, model(x))
        grads = tape.gradient(loss, model.trainable_variables)
        return float(loss), [g.numpy() for g in grads]

    def mirrored_step(wrap):
        strategy = make_strategy("mirrored", ["/cpu:0", "/cpu:1"])
        with strategy.scope():
            model = build()
            loss = GlobalBatchLoss(IDHNLoss()) if wrap else IDHNLoss()
            model.compile(keras.optimizers.SGD(1.0), loss, jit_compile=False)
            # As train.fit does: an optimizer built before the first step.
            model.optimizer.build(model.trainable_variables)
        before = [v.numpy() for v in model.trainable_variables]
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
        logs = model.fit(data, epochs=1, verbose=0, shuffle=False).history
        after = [v.numpy() for v in model.trainable_variables]
        # SGD with rate 1: w' = w - g.
        grads = [b - a for b, a in zip(before, after)]
        return logs["loss"][0], grads, strategy.num_replicas_in_sync

    def close(a, b):
        return bool(np.allclose(a, b, rtol=1e-5, atol=1e-6))

    ref_loss, ref_grads = reference()
    out = {"replicas": None}
    for wrap in (True, False):
        loss, grads, out["replicas"] = mirrored_step(wrap)
        out[f"loss_{wrap}"] = loss
        out[f"loss_close_{wrap}"] = close(loss, ref_loss)
        out[f"grads_close_{wrap}"] = all(
            close(g, r) for g, r in zip(grads, ref_grads))
        out[f"max_grad_{wrap}"] = max(float(np.abs(g).max()) for g in grads)
    out["ref_loss"] = ref_loss

    # The training entry point runs under the strategy too.
    dataset = load_dataset("digits-mosaic", num_train=32, num_validation=8,
                           num_query=8, num_database=16)
    config = ExperimentConfig(model=ModelConfig(bits=8),
                              train=TrainConfig(epochs=1, batch_size=16))
    result = fit(config, dataset=dataset, verbose=0,
                 strategy=make_strategy("mirrored", ["/cpu:0", "/cpu:1"]))
    out["fit_loss"] = result.history["loss"][0]
    out["fit_iterations"] = int(result.model.optimizer.iterations.numpy())
    print("RESULT " + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def result():
    env = dict(os.environ, KERAS_BACKEND="tensorflow", CUDA_VISIBLE_DEVICES="")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        cwd=repo,
        timeout=300,
    )
    lines = [
        line
        for line in completed.stdout.splitlines()
        if line.startswith("RESULT ")
    ]
    assert completed.returncode == 0 and lines, completed.stderr[-4000:]
    return json.loads(lines[-1][len("RESULT ") :])


def test_two_replicas_equal_one_device(result):
    assert result["replicas"] == 2
    assert result["loss_close_True"], result
    assert result["grads_close_True"], result
    assert result["max_grad_True"] > 1e-4  # the step did something


def test_per_replica_loss_would_differ(result):
    # Control: without gathering, each replica sees 4 images and 16 pairs
    # instead of 8 and 64; loss and gradients differ from one device.
    assert not result["loss_close_False"], result
    assert not result["grads_close_False"], result


def test_fit_accepts_a_strategy(result):
    assert result["fit_iterations"] == 2  # 32 images / global batch 16
    assert 0.0 < result["fit_loss"] < 10.0


def test_global_batch_loss_is_the_wrapped_loss_on_one_device():
    import keras
    import numpy as np

    from keras_dhsps.distribute import GlobalBatchLoss
    from keras_dhsps.losses import IDHNLoss

    rng = np.random.default_rng(0)
    labels = (rng.random((6, 4)) < 0.5).astype("float32")
    labels[:, 0] = 1.0
    codes = np.tanh(rng.normal(size=(6, 8))).astype("float32")
    inner = IDHNLoss(beta=3.0)
    wrapped = GlobalBatchLoss(inner)
    assert float(wrapped(labels, codes)) == pytest.approx(
        float(inner(labels, codes)), rel=1e-6
    )
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(wrapped)
    )
    assert isinstance(revived, GlobalBatchLoss)
    assert isinstance(revived.loss, IDHNLoss) and revived.loss.beta == 3.0
    assert float(revived(labels, codes)) == pytest.approx(
        float(inner(labels, codes)), rel=1e-6
    )


def test_make_strategy_rejects_unknown_names():
    from keras_dhsps.distribute import make_strategy
    from keras_dhsps.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="mirrored"):
        make_strategy("tpu")
