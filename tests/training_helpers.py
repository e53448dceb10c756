"""Helpers shared by the training tests (every backend)."""

import keras

from keras_dhsps.config import DataConfig
from keras_dhsps.config import ExperimentConfig
from keras_dhsps.config import ModelConfig
from keras_dhsps.config import TrainConfig
from tests.conftest import TINY_SIZES


def small_config(*, bits, **train):
    """A digits-mosaic experiment with ``train`` overriding a short,
    seeded budget (2 epochs, seed 3)."""
    values = dict(epochs=2, seed=3)
    values.update(train)
    return ExperimentConfig(
        data=DataConfig(),
        model=ModelConfig(bits=bits),
        train=TrainConfig(**values),
    )


def weights_of(model):
    """Every weight of ``model`` as a NumPy array, in order."""
    return [keras.ops.convert_to_numpy(v) for v in model.weights]


class NaNLoss(keras.losses.Loss):
    """A test-only loss that is NaN on every batch."""

    def call(self, y_true, y_pred):
        return keras.ops.mean(y_pred, axis=-1) * float("nan")


class InterruptAt(keras.callbacks.Callback):
    """Simulates a crash after ``step`` training steps."""

    def __init__(self, step):
        super().__init__()
        self.step = step
        self.seen = 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.step:
            raise KeyboardInterrupt("simulated interruption")


def train_tiny_run(run_dir):
    """Trains an 8-bit hasher for one epoch on a tiny digits-mosaic into
    ``run_dir``; returns ``(fit's result, the dataset, the config)``."""
    from keras_dhsps.config import override
    from keras_dhsps.data import load_dataset
    from keras_dhsps.training.fit import fit

    config = override(
        ExperimentConfig(),
        "model.bits=8",
        "train.epochs=1",
        "train.batch_size=32",
        "train.validation_every=0",
        "train.tensorboard=false",
    )
    dataset = load_dataset("digits-mosaic", **TINY_SIZES)
    result = fit(config, dataset=dataset, verbose=0, run_dir=str(run_dir))
    return result, dataset, config


def backend_without_tensorflow():
    """The Keras backend a machine without TensorFlow runs here: the
    active one when it is not TensorFlow (``make test``'s JAX and PyTorch
    passes), else JAX."""
    import keras

    backend = keras.backend.backend()
    return "jax" if backend == "tensorflow" else backend


def run_without_tensorflow(script, timeout=300):
    """Runs ``script`` (Python source) in a subprocess under
    :func:`backend_without_tensorflow` with ``tests/`` importable, so it
    can start with ``import _block_tensorflow`` (TensorFlow made
    unimportable)."""
    import os

    from tests.child import run_python

    tests = os.path.dirname(os.path.abspath(__file__))
    path = os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])
    env = {"KERAS_BACKEND": backend_without_tensorflow(), "PYTHONPATH": path}
    return run_python(script, env=env, timeout=timeout)
