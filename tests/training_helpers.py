"""Helpers shared by the training tests (every backend)."""

import keras

from keras_dhsps.config import DataConfig
from keras_dhsps.config import ExperimentConfig
from keras_dhsps.config import ModelConfig
from keras_dhsps.config import TrainConfig


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
