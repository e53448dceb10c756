"""Bit-reproducible training for a fixed seed (``train.deterministic``)."""

from __future__ import annotations

import logging
import os

import keras

logger = logging.getLogger(__name__)


def enable_determinism() -> None:
    """Makes training bit-reproducible for a fixed seed, per backend.

    * TensorFlow backend: ``tf.config.experimental.enable_op_determinism()``
      (process-wide; there is no per-call switch; slower on GPUs).
    * JAX: deterministic on CPU already; on a GPU, XLA's deterministic
      kernels must be chosen before JAX starts
      (``XLA_FLAGS=--xla_gpu_deterministic_ops=true``): a warning says so
      when the flag is missing.
    * PyTorch: ``torch.use_deterministic_algorithms(True)``.

    The batch stream itself is deterministic for a fixed seed with every
    reader.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        torch.use_deterministic_algorithms(True)
    elif backend == "jax":
        _check_jax_flags()


def _check_jax_flags() -> None:
    """Warns when JAX runs on a GPU without XLA's deterministic kernels."""
    import jax

    flags = os.environ.get("XLA_FLAGS", "")
    on_gpu = any(d.platform != "cpu" for d in jax.devices())
    if on_gpu and "xla_gpu_deterministic_ops=true" not in flags:
        logger.warning(
            "train.deterministic under JAX on a GPU needs "
            "XLA_FLAGS=--xla_gpu_deterministic_ops=true set before "
            "JAX starts"
        )
