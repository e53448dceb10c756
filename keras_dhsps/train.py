"""The one training entry point: ``fit(config) -> TrainResult``.

Used by the CLI, by the reproduce runner and by the tests. It builds the
dataset, the hasher, the loss and the two-rate Adam of the authors' protocol
(IDHN_NOTES.md §3) from an :class:`~keras_dhsps.config.ExperimentConfig` and
runs ``model.fit``; the same call covers paper-scale training:

* backbones from ``keras_dhsps.backbones`` with local or ImageNet weights
  (``ModelConfig.backbone_weights``);
* the backbone at ``backbone_lr_multiplier`` × the hash layer's rate, with
  the authors' step decay, cosine or constant schedules, and an optional
  warm-up with the backbone frozen (``freeze_backbone_epochs``);
* resumable checkpoints every N steps in ``run_dir`` (a rerun with the same
  ``run_dir`` continues at the saved step and, for a fixed seed with
  deterministic ops, ends with the weights of an uninterrupted run),
  a NaN guard (:class:`~keras_dhsps.callbacks.StopOnNaN`: a NaN or
  infinite loss raises an error naming the step and the batch's labels),
  TensorBoard logs and the best-``val_map`` model on a
  validation split carved from training data (never the query set);
* mixed precision and XLA as config switches;
* ``tf.distribute`` strategies, with the pairwise loss over the global batch
  (:mod:`keras_dhsps.distribute`).

Training reads an endless, seeded stream of shuffled batches (one pass per
epoch, last partial batch dropped), so a resumed run skips exactly the
batches already used. The reader is ``tf.data``
(:mod:`keras_dhsps.data.pipeline`, the default where TensorFlow is
installed; skipped batches are still read) or NumPy
(:mod:`keras_dhsps.data.feed`, every Keras backend, the default without
TensorFlow; batch ``s`` is a pure function of the seed and ``s``, so
skipped batches are never read). Nothing here imports TensorFlow unless
it is the backend, the reader or a strategy is given.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import logging
import os
import time

import keras
import numpy as np

from keras_dhsps.callbacks import RetrievalValidation
from keras_dhsps.callbacks import StepCheckpoint
from keras_dhsps.callbacks import StopOnNaN
from keras_dhsps.callbacks import restore_checkpoint
from keras_dhsps.config import ExperimentConfig
from keras_dhsps.config import TrainConfig
from keras_dhsps.config import backbone_lr_multiplier
from keras_dhsps.data import feed
from keras_dhsps.data import load_configured_dataset
from keras_dhsps.data.base import RetrievalDataset
from keras_dhsps.data.base import Split
from keras_dhsps.errors import DHSPSError
from keras_dhsps.losses import get_loss
from keras_dhsps.models import HASH_LAYER_NAME
from keras_dhsps.models import build_hasher
from keras_dhsps.optimizers import LayerwiseAdam
from keras_dhsps.optimizers import make_schedule

logger = logging.getLogger(__name__)

#: ``TrainConfig.precision`` values (Keras dtype policies).
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
BACKBONE_NAME = "backbone"


@dataclasses.dataclass
class TrainResult:
    """What :func:`fit` returns.

    Attributes:
        model: the trained hasher (final step: the authors' protocol; the
            best-``val_map`` model is in ``run_dir/best.keras``).
        history: per-epoch logs (``loss``, and ``val_map`` when validation
            is on) of the epochs this call ran.
        dataset: the dataset it was trained on (for evaluation).
        seconds: wall-clock training time of this call.
        initial_step: the step it resumed from (0 for a fresh run).
    """

    model: keras.Model
    history: dict
    dataset: RetrievalDataset
    seconds: float
    initial_step: int = 0


def build_optimizer(
    train_config: TrainConfig,
    total_steps: int | None = None,
    *,
    backbone_multiplier: float | None = None,
) -> LayerwiseAdam:
    """Adam at ``learning_rate`` on the hash layer and
    ``learning_rate × backbone_lr_multiplier`` elsewhere, both following
    ``train_config.schedule`` (authors: ×``decay_rate`` every
    ``decay_steps`` steps). ``backbone_multiplier`` overrides
    ``train_config.backbone_lr_multiplier`` (see
    :func:`keras_dhsps.config.backbone_lr_multiplier`)."""
    if backbone_multiplier is None:
        backbone_multiplier = train_config.backbone_lr_multiplier
    if backbone_multiplier is None:
        backbone_multiplier = 1.0
    learning_rate = make_schedule(
        train_config.schedule,
        train_config.learning_rate,
        decay_steps=train_config.decay_steps,
        decay_rate=train_config.decay_rate,
        total_steps=total_steps,
    )
    return LayerwiseAdam(
        learning_rate,
        multipliers={HASH_LAYER_NAME: 1.0},
        default_multiplier=backbone_multiplier,
        epsilon=train_config.adam_epsilon,
    )


@contextlib.contextmanager
def precision_scope(precision):
    """Builds layers under ``precision``'s dtype policy, then restores the
    previous global policy (the policy stays on the layers built inside).

    Raises:
        DHSPSError: unknown precision.
    """
    if precision not in PRECISIONS:
        raise DHSPSError(
            f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}"
        )
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def carve_validation(split: Split, fraction: float, seed: int):
    """Splits ``split`` into (train, validation) by a seeded permutation.

    The validation images are removed from training, so model selection
    uses images the model was not trained on and never the query set.

    Raises:
        DHSPSError: the fraction leaves no image on one side.
    """
    count = len(split)
    size = int(round(count * fraction))
    if not 0 < size < count:
        raise DHSPSError(
            f"validation_fraction={fraction} of {count} training images "
            "leaves an empty split"
        )
    order = np.random.default_rng(seed).permutation(count)

    def subset(index):
        index = np.sort(index)
        if split.images is not None:
            return Split(labels=split.labels[index], images=split.images[index])
        return Split(
            labels=split.labels[index],
            paths=tuple(split.paths[i] for i in index),
        )

    return subset(order[size:]), subset(order[:size])


def _train_and_validation(dataset, train_config):
    train_split = dataset.split("train")
    if not train_config.validation_every:
        return train_split, None
    validation = dataset.splits.get("validation")
    if validation is not None and len(validation):
        return train_split, validation
    return carve_validation(
        train_split, train_config.validation_fraction, train_config.seed
    )


def _segments(start, epochs, steps_per_epoch, freeze_epochs):
    """``(initial_epoch, epochs, steps_per_epoch, frozen)`` for each
    ``model.fit`` call from global step ``start``: the rest of a partly
    done epoch, then whole epochs up to the end of the frozen warm-up and
    up to the end of the run."""
    segments = []
    step = start
    total = epochs * steps_per_epoch
    while step < total:
        epoch, offset = divmod(step, steps_per_epoch)
        frozen = epoch < freeze_epochs
        if offset:
            remaining = steps_per_epoch - offset
            segments.append((epoch, epoch + 1, remaining, frozen))
            step += steps_per_epoch - offset
            continue
        end = min(freeze_epochs, epochs) if frozen else epochs
        segments.append((epoch, end, steps_per_epoch, frozen))
        step = end * steps_per_epoch
    return segments


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
        import jax

        flags = os.environ.get("XLA_FLAGS", "")
        on_gpu = any(d.platform != "cpu" for d in jax.devices())
        if on_gpu and "xla_gpu_deterministic_ops=true" not in flags:
            logger.warning(
                "train.deterministic under JAX on a GPU needs "
                "XLA_FLAGS=--xla_gpu_deterministic_ops=true set before "
                "JAX starts"
            )


def training_stream(split, reader, *, batch_size, image_size, seed, start=0):
    """The endless seeded training stream of ``split`` from global step
    ``start``: a ``tf.data.Dataset`` (``reader="tf.data"``) or a generator
    of NumPy batches (``"numpy"``, every backend)."""
    if reader == "numpy":
        return feed.training_batches(
            split,
            batch_size=batch_size,
            image_size=image_size,
            seed=seed,
            start=start,
        )
    if reader != "tf.data":
        raise DHSPSError(f"unknown reader {reader!r}; known: tf.data, numpy")
    from keras_dhsps.data.pipeline import make_dataset

    # A new dataset object per fit call: a reused one would continue its
    # shuffle seed generator and give a resumed run another order. The
    # skipped batches are read and decoded.
    return (
        make_dataset(
            split,
            batch_size=batch_size,
            image_size=image_size,
            training=True,
            seed=seed,
        )
        .repeat()
        .skip(start)
    )


def stream_labels(split, reader, *, batch_size, image_size, seed, step):
    """The labels of batch ``step`` of :func:`training_stream`."""
    if reader == "numpy":
        return feed.training_labels(
            split, batch_size=batch_size, seed=seed, step=step
        )
    stream = training_stream(
        split,
        reader,
        batch_size=batch_size,
        image_size=image_size,
        seed=seed,
        start=step,
    )
    for _, labels in stream.take(1):
        return keras.ops.convert_to_numpy(labels)
    return np.zeros((0, 0))


def fit(
    config: ExperimentConfig,
    *,
    dataset: RetrievalDataset | None = None,
    data_root: str | None = None,
    callbacks=(),
    verbose="auto",
    run_dir: str | None = None,
    strategy=None,
    reader: str | None = None,
) -> TrainResult:
    """Trains a hasher as ``config`` says.

    Args:
        config: the experiment.
        dataset: an already loaded dataset (else loaded from ``config.data``
            and ``data_root``).
        data_root: dataset directory for datasets read from disk.
        callbacks: extra Keras callbacks.
        verbose: passed to ``model.fit`` (1 shows a progress bar).
        run_dir: where checkpoints (``checkpoints/``), TensorBoard logs
            (``logs/``, when the ``tensorboard`` package is installed) and
            the best-``val_map`` model (``best.keras``) go. If it holds a
            checkpoint, training resumes from it. None keeps nothing on
            disk.
        strategy: a ``tf.distribute.Strategy`` (see
            :func:`keras_dhsps.distribute.make_strategy`); its replicas split
            each batch of ``config.train.batch_size`` images and the loss
            sees the whole batch. None trains on the default device.
        reader: ``"tf.data"`` or ``"numpy"`` (:mod:`keras_dhsps.data.feed`,
            for every backend); None: ``tf.data`` where TensorFlow is
            installed, else ``numpy``.

    Returns:
        A :class:`TrainResult`.

    Raises:
        DHSPSError: bad precision, schedule or validation fraction, or an
            unreadable checkpoint in ``run_dir``.
        NonFiniteLossError: the loss became NaN or infinite (a
            ``DHSPSError`` naming the step and the batch's label
            statistics); the last checkpoint before it is kept.
    """
    train_config = config.train
    if train_config.deterministic:
        enable_determinism()
    reader = reader or feed.default_reader()
    keras.utils.set_random_seed(train_config.seed)
    if dataset is None:
        dataset = load_configured_dataset(config.data, root=data_root)
    train_split, validation_split = _train_and_validation(dataset, train_config)
    batch_size = train_config.batch_size
    steps_per_epoch = max(len(train_split) // batch_size, 1)
    total_steps = train_config.epochs * steps_per_epoch

    scope = contextlib.nullcontext  # a new context per use
    loss = get_loss(config.loss.name, **config.loss.params)
    if strategy is not None:
        from keras_dhsps.distribute import GlobalBatchLoss
        from keras_dhsps.distribute import strategy_scope

        def scope():
            return strategy_scope(strategy)

        loss = GlobalBatchLoss(loss)
    with scope():
        try:
            optimizer = build_optimizer(
                train_config,
                total_steps,
                backbone_multiplier=backbone_lr_multiplier(config),
            )
        except (KeyError, ValueError) as error:
            raise DHSPSError(str(error)) from None
        with precision_scope(train_config.precision):
            model = build_hasher(
                config.model.backbone,
                config.model.bits,
                activation=config.model.activation,
                image_size=config.model.image_size,
                weights=config.model.backbone_weights,
            )

        def compile_model(frozen):
            model.get_layer(BACKBONE_NAME).trainable = not frozen
            model.compile(
                optimizer=getattr(model, "optimizer", None) or optimizer,
                loss=loss,
                jit_compile=train_config.jit_compile,
            )

        # Build the optimizer on every variable first, so a frozen warm-up
        # and the later full training share one optimizer state.
        compile_model(frozen=False)
        model.optimizer.build(model.trainable_variables)

    checkpoint_dir = None
    initial_step = 0
    if run_dir is not None:
        checkpoint_dir = os.path.join(run_dir, "checkpoints")
        initial_step = restore_checkpoint(checkpoint_dir, model)

    _, height, width, _ = model.input_shape

    def stream_from(step):
        return training_stream(
            train_split,
            reader,
            batch_size=batch_size,
            image_size=(height, width),
            seed=train_config.seed,
            start=step,
        )

    def labels_at(step):
        # The stream is deterministic: the batch of ``step`` is recoverable.
        return stream_labels(
            train_split,
            reader,
            batch_size=batch_size,
            image_size=(height, width),
            seed=train_config.seed,
            step=step,
        )

    nan_guard = StopOnNaN(labels_at, step=initial_step)
    all_callbacks = [nan_guard]
    checkpoint = None
    if checkpoint_dir is not None:
        checkpoint = StepCheckpoint(
            checkpoint_dir, train_config.checkpoint_every, step=initial_step
        )
        all_callbacks.append(checkpoint)
    all_callbacks.extend(callbacks)
    if validation_split is not None:
        all_callbacks.append(
            RetrievalValidation(
                validation_split,
                train_split,
                every=train_config.validation_every,
                reader=reader,
            )
        )
        if run_dir is not None:
            all_callbacks.append(
                keras.callbacks.ModelCheckpoint(
                    os.path.join(run_dir, "best.keras"),
                    monitor="val_map",
                    mode="max",
                    save_best_only=True,
                )
            )
    if run_dir is not None and train_config.tensorboard:
        if importlib.util.find_spec("tensorboard") is None:
            logger.warning(
                "tensorboard is not installed: no TensorBoard logs "
                "(pip install tensorboard)"
            )
        else:
            all_callbacks.append(
                keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"))
            )

    history = {}
    start = time.perf_counter()
    step = initial_step
    for initial_epoch, epochs, steps, frozen in _segments(
        initial_step,
        train_config.epochs,
        steps_per_epoch,
        train_config.freeze_backbone_epochs,
    ):
        with scope():
            compile_model(frozen)
        nan_guard.step = step
        if checkpoint is not None:
            checkpoint.step = step
        logs = model.fit(
            stream_from(step),
            initial_epoch=initial_epoch,
            epochs=epochs,
            steps_per_epoch=steps,
            callbacks=all_callbacks,
            verbose=verbose,
            shuffle=False,  # the stream is shuffled by the reader
        ).history
        for key, values in logs.items():
            history.setdefault(key, []).extend(float(v) for v in values)
        step += (epochs - initial_epoch - 1) * steps_per_epoch + steps
        if model.stop_training:  # a user's early stop.
            break
    model.get_layer(BACKBONE_NAME).trainable = True
    return TrainResult(
        model=model,
        history=history,
        dataset=dataset,
        seconds=time.perf_counter() - start,
        initial_step=initial_step,
    )
