"""Data-parallel training with ``tf.distribute`` over the global batch.

IDHN's loss is pairwise, so a per-replica loss would compare only ``B/R``
images. :class:`GlobalBatchLoss` all-gathers every replica's codes and
labels, evaluates the wrapped loss on the global batch and keeps the
replica's own rows, so a step equals a one-device step on the same global
batch. TensorFlow is imported only when a strategy is made or the loss runs
under one; under JAX (``keras.distribution.DataParallel``) or PyTorch the
wrapper is the wrapped loss. Why, what is tested: docs/training.md §8.
"""

from __future__ import annotations

import contextlib
import importlib

import keras

try:  # Keras has no public spelling of "tracing for shape inference only".
    from keras.src.backend.common.symbolic_scope import in_symbolic_scope
except ImportError:  # pragma: no cover - a Keras that moved it

    def in_symbolic_scope():
        return False


from keras_dhsps.training import STRATEGIES
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.errors import UnknownNameError
from keras_dhsps.utils.import_hooks import installed


def check_strategy(name):
    """Refuses, before any work, a strategy that cannot run here: an
    unknown name, or a distributed strategy without TensorFlow or under
    another Keras backend. Imports no TensorFlow.

    Raises:
        UnknownNameError: unknown ``name``.
        DHSPSError: TensorFlow is not installed, or Keras runs on another
            backend (a ``tf.distribute`` strategy would not reach its step).
    """
    if name not in STRATEGIES:
        raise UnknownNameError(
            f"unknown strategy {name!r}; known strategies: "
            f"{', '.join(STRATEGIES)}"
        )
    if name == "default":
        return
    install = (
        "pip install 'keras_dhsps[gpu]' or 'keras_dhsps[cpu]', "
        "with KERAS_BACKEND=tensorflow"
    )
    if not installed("tensorflow"):
        raise DHSPSError(
            f"strategy {name!r} needs TensorFlow (tf.distribute): {install}; "
            "under JAX use keras.distribution.DataParallel"
        )
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise DHSPSError(
            f"strategy {name!r} needs the TensorFlow backend, not "
            f"KERAS_BACKEND={backend}: {install}; under JAX use "
            "keras.distribution.DataParallel"
        )


def _tensorflow_for(name):
    """The ``tensorflow`` module for strategy ``name`` (see
    :func:`check_strategy`)."""
    check_strategy(name)
    return importlib.import_module("tensorflow")


def make_strategy(name="default", devices=None):
    """A ``tf.distribute`` strategy by name.

    Args:
        name: ``"default"`` (no distribution), ``"mirrored"`` (all local
            GPUs, or ``devices``) or ``"multi_worker_mirrored"`` (the
            cluster in the ``TF_CONFIG`` environment variable).
        devices: for ``"mirrored"``: device names, e.g. ``["/cpu:0",
            "/cpu:1"]``; None takes every local GPU (or the CPU).

    Returns:
        A ``tf.distribute.Strategy``; for ``"default"`` without TensorFlow
        or under another backend, None (no distribution).

    Raises:
        UnknownNameError: unknown ``name``.
        DHSPSError: a distributed strategy without TensorFlow or under
            another Keras backend.
    """
    check_strategy(name)
    if name == "default":
        if keras.backend.backend() != "tensorflow":
            return None
        return _tensorflow_for(name).distribute.get_strategy()
    tf = _tensorflow_for(name)
    if name == "mirrored":
        cross_device_ops = None
        if devices and all("cpu" in str(d).lower() for d in devices):
            # Collective all-reduce across CPU replicas mis-orders the
            # loss's replica-context all-reduces against the gradient
            # all-reduce inside Keras' fit; reducing to one device has no
            # collective keys to mis-order.
            cross_device_ops = tf.distribute.ReductionToOneDevice()
        return tf.distribute.MirroredStrategy(
            devices, cross_device_ops=cross_device_ops
        )
    return tf.distribute.MultiWorkerMirroredStrategy()


def strategy_scope(strategy):
    """``strategy.scope()``, or a no-op context when ``strategy`` is None."""
    if strategy is None:
        return contextlib.nullcontext()
    return strategy.scope()


def num_replicas(strategy):
    """Replicas in sync under ``strategy`` (1 when None)."""
    return 1 if strategy is None else int(strategy.num_replicas_in_sync)


def _replica_context():
    """The replica context when several replicas run in sync, else None.

    None also while Keras infers output shapes (``compute_output_spec``
    traces the loss in a scratch graph on the first replica only): a
    collective created there would advance that replica's collective keys
    and misalign every later collective across replicas.
    """
    if in_symbolic_scope() or keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def gather_global_batch(labels, codes):
    """All-gathers ``labels`` and ``codes`` along the batch axis.

    Returns:
        ``(global_labels, global_codes, start, size)``: the concatenation of
        every replica's rows in replica order, and where this replica's
        ``size`` rows start in it. Outside a multi-replica context the
        inputs are returned unchanged with ``start = 0``.

    Every replica must hold the same number of rows: training batches
    drop their remainder, so each global batch splits evenly.
    """
    context = _replica_context()
    if context is None:
        return labels, codes, 0, keras.ops.shape(codes)[0]
    import tensorflow as tf

    size = tf.shape(codes)[0]
    replicas = context.num_replicas_in_sync
    start = context.replica_id_in_sync_group * size
    after = (replicas - 1) * size - start

    def gather(value):
        # Each replica places its rows at its offset in a zero tensor of the
        # global batch; a summing all-reduce then yields every row. This is
        # ReplicaContext.all_gather for equal slices, built on the float
        # all-reduce only: all_gather's own integer shape exchange, mixed
        # with the optimizer's gradient all-reduce, can run in a different
        # order on different replicas and abort the collectives.
        value = tf.cast(value, codes.dtype)
        padding = [[start, after]] + [[0, 0]] * (len(value.shape) - 1)
        return context.all_reduce(
            tf.distribute.ReduceOp.SUM, tf.pad(value, padding)
        )

    # Every replica must hold the same number of rows (training batches
    # drop their remainder).
    tf.debugging.assert_equal(
        tf.shape(labels)[0], size, message="labels and codes differ in rows"
    )
    global_labels = tf.cast(gather(labels), labels.dtype)
    global_codes = gather(codes)
    return global_labels, global_codes, start, size


@keras.saving.register_keras_serializable(package="keras_dhsps")
class GlobalBatchLoss(keras.losses.Loss):
    """Evaluates a pairwise loss over the batch of all replicas.

    ``call(labels, codes)`` gathers every replica's labels and codes, calls
    the wrapped loss's ``call`` on the global batch (per-anchor values) and
    returns this replica's rows, so the reduction, Keras' ``1/R`` replica
    scaling and the gradient all-reduce give the one-device step. Outside a
    multi-replica context it is the wrapped loss.

    Args:
        loss: a ``keras.losses.Loss`` whose ``call`` returns one value per
            image (every loss in ``keras_dhsps.losses``), or its serialized
            config.
        name: defaults to the wrapped loss's name.
        **kwargs: ``reduction``/``dtype`` of ``keras.losses.Loss``; the
            reduction defaults to the wrapped loss's.

    Example:
    >>> strategy = keras_dhsps.training.distribution.make_strategy("mirrored")
    >>> with strategy.scope():
    ...     model.compile(optimizer, loss=GlobalBatchLoss(IDHNLoss()))
    """

    def __init__(self, loss, name=None, **kwargs):
        if isinstance(loss, dict):
            loss = keras.saving.deserialize_keras_object(loss)
        kwargs.setdefault("reduction", loss.reduction)
        super().__init__(name=name or loss.name, **kwargs)
        self.loss = loss

    def call(self, y_true, y_pred):
        labels, codes, start, size = gather_global_batch(y_true, y_pred)
        per_anchor = self.loss.call(labels, codes)
        return per_anchor[start : start + size]

    def get_config(self):
        config = super().get_config()
        config.update({"loss": keras.saving.serialize_keras_object(self.loss)})
        return config


__all__ = [
    "STRATEGIES",
    "GlobalBatchLoss",
    "gather_global_batch",
    "make_strategy",
    "num_replicas",
    "strategy_scope",
]
