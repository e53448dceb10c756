"""A digits-mosaic run that learns, on whichever Keras backend is active.

Slow (minutes), so not in the ``backend_neutral`` subset of ``make test``;
run it under each backend with
``KERAS_BACKEND=jax pytest -m slow tests/training/test_backend_learning.py`` (or
``torch``).
"""

import pytest

from keras_dhsps.config import EvalConfig
from keras_dhsps.config import ExperimentConfig
from keras_dhsps.config import ModelConfig
from keras_dhsps.config import TrainConfig
from keras_dhsps.data import load_dataset
from keras_dhsps.retrieval.evaluation import evaluate_retrieval
from keras_dhsps.training.fit import fit


@pytest.mark.slow
def test_digits_mosaic_training_learns_on_every_backend():
    # The default digits-mosaic (2,000 train, 500 query, 2,000 database),
    # 30 epochs x 31 steps of 64, 32 bits. Measured on the 2-core CPU
    # machine: mAP@all 0.779 (TensorFlow, NumPy reader), 0.781 (TensorFlow,
    # tf.data), 0.817 (JAX, NumPy reader), 0.798 (PyTorch 2.13 CPU, NumPy
    # reader, 44 s); random codes score the fraction
    # of relevant pairs, 0.45-0.50. The bound 0.70 is ~0.08 under the
    # lowest measured run and ~0.2 above chance.
    data = load_dataset("digits-mosaic")
    config = ExperimentConfig(
        model=ModelConfig(bits=32),
        train=TrainConfig(epochs=30, batch_size=64, seed=0),
    )
    result = fit(config, dataset=data, verbose=0, reader="numpy")
    report = evaluate_retrieval(result.model, data, EvalConfig(), curves=False)
    assert report["metrics"]["map@all"] > 0.70
