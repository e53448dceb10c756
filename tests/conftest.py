"""Test setup: TensorFlow backend on CPU, quiet logs, seeded randomness.

Tests marked ``slow`` are excluded by default (pyproject.toml's addopts);
run them with ``pytest -m slow`` or ``make test-all``.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    """A fresh seeded NumPy generator per test."""
    return np.random.default_rng(1234)


@pytest.fixture
def deterministic_ops():
    """Under TensorFlow, op determinism for the test only (process-wide);
    JAX on the CPU is deterministic already."""
    import keras

    if keras.backend.backend() != "tensorflow":
        yield
        return
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config

    was_enabled = tf_config.is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    yield
    if not was_enabled:
        tf_config.disable_op_determinism()


@pytest.fixture
def decodes(monkeypatch) -> list:
    """Records the number of images of every decoding pass of the image
    store (``keras_dhsps.data.decoding.decoded_batches``)."""
    from keras_dhsps.data import decoding

    calls = []
    real = decoding.decoded_batches

    def counting(split, **kwargs):
        calls.append(len(split))
        return real(split, **kwargs)

    monkeypatch.setattr(decoding, "decoded_batches", counting)
    return calls


#: The tiny digits-mosaic split sizes every test that only needs *a*
#: dataset uses (built once per test run by :func:`tiny_dataset`).
TINY_SIZES = dict(
    num_train=64, num_validation=16, num_query=16, num_database=32
)


@pytest.fixture(scope="session")
def tiny_dataset():
    """The one tiny digits-mosaic dataset, built once per test run."""
    from keras_dhsps.data import load_dataset

    return load_dataset("digits-mosaic", **TINY_SIZES)
