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
