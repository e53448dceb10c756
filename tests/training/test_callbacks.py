"""The NaN guard's worker-thread check never touches the model."""

import threading
import types

import pytest

from keras_dhsps.training.callbacks import NonFiniteLossError
from keras_dhsps.training.callbacks import StopOnNaN


def test_the_nan_check_on_a_worker_thread_only_records_the_step():
    # Under JAX, reading ``callback.model`` copies the training state into
    # the model; done on Keras' worker thread while the main thread donates
    # those buffers to the next step, it read deleted buffers (CI, stop 24).
    model = types.SimpleNamespace(stop_training=False)
    guard = StopOnNaN()
    guard.set_model(model)
    guard._epoch_start = 8  # what on_epoch_begin reads from the optimizer
    worker = threading.Thread(
        target=guard.on_train_batch_end, args=(1, {"loss": float("nan")})
    )
    worker.start()
    worker.join()
    assert model.stop_training is False  # the worker left the model alone
    guard.on_train_batch_begin(2)  # main thread: now training stops
    assert model.stop_training is True
    with pytest.raises(NonFiniteLossError, match=r"at training step 10 \("):
        guard.on_epoch_end(0)


def test_a_finite_loss_neither_stops_nor_raises():
    model = types.SimpleNamespace(stop_training=False)
    guard = StopOnNaN()
    guard.set_model(model)
    guard.on_train_batch_end(0, {"loss": 0.5})
    guard.on_train_batch_begin(1)
    guard.on_epoch_end(0)
    assert model.stop_training is False
