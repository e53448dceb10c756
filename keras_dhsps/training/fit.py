"""The one training entry point: ``fit(config) -> TrainResult``.

Used by the CLI, the reproduce runner and the tests: it builds the dataset,
the hasher, the loss and the two-rate Adam of the authors' protocol
(docs/method.md §3) from an :class:`~keras_dhsps.config.ExperimentConfig`
and runs ``model.fit`` on the seeded training stream
(:class:`keras_dhsps.data.stream.TrainingStream`), with resumable
checkpoints, a NaN guard, validation and the best model in ``run_dir``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time

import keras

from keras_dhsps.config import PRECISIONS
from keras_dhsps.config import ExperimentConfig
from keras_dhsps.config import TrainConfig
from keras_dhsps.config import backbone_lr_multiplier
from keras_dhsps.data import load_configured_dataset
from keras_dhsps.data.base import RetrievalDataset
from keras_dhsps.data.base import steps_per_epoch
from keras_dhsps.data.options import check_options
from keras_dhsps.data.readers import choose_reader
from keras_dhsps.data.sizes import model_image_size
from keras_dhsps.data.sizes import stored_image_size
from keras_dhsps.data.splits import carve_validation
from keras_dhsps.data.stream import TrainingStream
from keras_dhsps.losses import get_loss
from keras_dhsps.models.hasher import HASH_LAYER_NAME
from keras_dhsps.models.hasher import build_hasher
from keras_dhsps.training.callbacks import BestModelCheckpoint
from keras_dhsps.training.callbacks import RetrievalValidation
from keras_dhsps.training.callbacks import RunHistory
from keras_dhsps.training.callbacks import StepCheckpoint
from keras_dhsps.training.callbacks import StopOnNaN
from keras_dhsps.training.callbacks import global_step
from keras_dhsps.training.callbacks import read_history
from keras_dhsps.training.callbacks import restore_checkpoint
from keras_dhsps.training.determinism import enable_determinism
from keras_dhsps.training.optimizers import LayerwiseAdam
from keras_dhsps.training.optimizers import make_schedule
from keras_dhsps.training.rundir import BEST_MODEL_FILE
from keras_dhsps.training.rundir import CHECKPOINTS_DIR
from keras_dhsps.training.rundir import HISTORY_FILE
from keras_dhsps.training.rundir import LOGS_DIR
from keras_dhsps.training.rundir import RunDirectory
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.import_hooks import installed
from keras_dhsps.utils.terminal import progress_verbosity

logger = logging.getLogger(__name__)

BACKBONE_NAME = "backbone"


@dataclasses.dataclass
class TrainResult:
    """What :func:`fit` returns.

    Attributes:
        model: the trained hasher (final step: the authors' protocol; the
            best-``val_map`` model is in ``run_dir/best.keras``).
        history: per-epoch logs (``loss``, and ``val_map`` when validation
            is on) of the whole run, each epoch averaged over its own steps,
            also for epochs run before an interruption (kept in
            ``run_dir/history.json``).
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


#: With ``train.validation_every = None`` and a run directory, validation runs
#: about this many times per run (and after the last epoch).
AUTO_VALIDATIONS = 10


def validation_every(train_config: TrainConfig, dataset, run_dir) -> int:
    """Epochs between validation-mAP evaluations (0: none).

    ``train.validation_every`` when set (0: off). When it is None, a run that keeps
    a run directory (so ``best.keras`` has a place) on a dataset with a
    ``validation`` split of its own validates about
    :data:`AUTO_VALIDATIONS` times (every ``ceil(epochs / 10)`` epochs and
    after the last). Validation is never carved out of the training images
    unless ``validation_every`` asks for it, so turning it on by default
    changes no trained weights.
    """
    if train_config.validation_every is not None:
        return int(train_config.validation_every)
    validation = dataset.splits.get("validation")
    if run_dir is None or validation is None or not len(validation):
        return 0
    return max(1, -(-int(train_config.epochs) // AUTO_VALIDATIONS))


def _train_and_validation(dataset, train_config, every):
    train_split = dataset.split("train")
    if not every:
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


def _strategy_scope(strategy):
    if strategy is None:
        return contextlib.nullcontext()
    from keras_dhsps.training.distribution import strategy_scope

    return strategy_scope(strategy)


def _build_model(config: ExperimentConfig, total_steps: int, strategy):
    """The compiled hasher, its optimizer built on every variable (so a
    frozen warm-up and the later full training share one optimizer
    state), and ``compile_model(frozen)`` for each training segment."""
    train_config = config.train
    loss = get_loss(config.loss.name, **config.loss.params)
    if strategy is not None:
        from keras_dhsps.training.distribution import GlobalBatchLoss

        loss = GlobalBatchLoss(loss)
    with _strategy_scope(strategy):
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
                input_size=stored_image_size(config),
                random_crop=config.input.random_crop,
                random_flip=config.input.random_flip,
                seed=train_config.seed,
            )

    def compile_model(frozen):
        with _strategy_scope(strategy):
            model.get_layer(BACKBONE_NAME).trainable = not frozen
            model.compile(
                optimizer=getattr(model, "optimizer", None) or optimizer,
                loss=loss,
                jit_compile=train_config.jit_compile,
            )

    compile_model(frozen=False)
    with _strategy_scope(strategy):
        model.optimizer.build(model.trainable_variables)
    return model, compile_model


def _resume(run_dir, model, steps_per_epoch) -> RunHistory:
    """Restores ``run_dir``'s checkpoint into ``model`` and returns the
    run's history callback holding the epochs already done."""
    if run_dir is None:
        return RunHistory()
    metric_states = restore_checkpoint(
        os.path.join(run_dir, CHECKPOINTS_DIR), model
    )
    epochs_done, offset = divmod(global_step(model), steps_per_epoch)
    path = os.path.join(run_dir, HISTORY_FILE)
    return RunHistory(
        path,
        read_history(path, epochs_done),
        # Only a run resumed within an epoch continues its running means.
        metric_states if offset else None,
    )


def _callbacks(config, run_dir, stream, history, validation, extra):
    """The callbacks of a run, in order: the NaN guard, validation (so the
    best model, the history and the user's callbacks see ``val_map``),
    the history, then the checkpoint (after the history it covers)."""
    train_config = config.train
    result = [StopOnNaN(stream.labels)]
    if validation is not None:
        split, every = validation
        result.append(
            RetrievalValidation(
                split,
                stream.split,
                every=every,
                reader=stream.reader,
                input_config=stream.input_config,
            )
        )
        if run_dir is not None:
            best = max(history.history.get("val_map", ()), default=None)
            result.append(
                BestModelCheckpoint(
                    os.path.join(run_dir, BEST_MODEL_FILE),
                    monitor="val_map",
                    mode="max",
                    save_best_only=True,
                    initial_value_threshold=best,
                )
            )
    result.append(history)
    if run_dir is not None:
        result.append(
            StepCheckpoint(
                os.path.join(run_dir, CHECKPOINTS_DIR),
                train_config.checkpoint_every,
            )
        )
        if train_config.tensorboard:
            result.extend(_tensorboard(os.path.join(run_dir, LOGS_DIR)))
    return result + list(extra)


def _tensorboard(directory):
    if not installed("tensorboard"):
        logger.warning(
            "tensorboard is not installed: no TensorBoard logs "
            "(pip install tensorboard)"
        )
        return []
    return [keras.callbacks.TensorBoard(directory)]


class _StopAfterFirstEpoch(keras.callbacks.Callback):
    """Ends a ``model.fit`` call after its first epoch: the rest of an
    interrupted epoch runs as a fit up to the run's last epoch, so the
    progress bar says "Epoch 7/20", not "Epoch 7/7"."""

    stopped = False

    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = self.stopped = True


def _train(model, compile_model, stream, callbacks, train_config, verbose):
    """Runs ``model.fit`` for each segment from the model's global step to
    the end of the run (see :func:`_segments`)."""
    epoch_steps = steps_per_epoch(len(stream.split), stream.batch_size)
    for initial_epoch, epochs, steps, frozen in _segments(
        global_step(model),
        train_config.epochs,
        epoch_steps,
        train_config.freeze_backbone_epochs,
    ):
        compile_model(frozen)
        stopper = _StopAfterFirstEpoch()
        partial = steps != epoch_steps
        model.fit(
            stream.batches(global_step(model)),
            initial_epoch=initial_epoch,
            epochs=max(train_config.epochs, epochs) if partial else epochs,
            steps_per_epoch=steps,
            callbacks=callbacks + ([stopper] if partial else []),
            verbose=verbose,
            shuffle=False,  # the stream is shuffled by the reader
        )
        if model.stop_training and not stopper.stopped:  # a user's stop
            break
    model.get_layer(BACKBONE_NAME).trainable = True


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
    """Trains a hasher as ``config`` says; returns a :class:`TrainResult`.

    Args:
        config: the experiment.
        dataset, data_root: an already loaded dataset, else the one of
            ``config.data`` (under ``data_root`` when read from disk).
        callbacks, verbose: extra Keras callbacks; ``model.fit``'s verbose.
        run_dir: the run directory (:mod:`keras_dhsps.training.rundir`): the config
            (``config.json``, written first; a directory holding another
            config's run is refused), the final ``model.keras``,
            checkpoints (``checkpoints/``), the per-epoch
            history (``history.json``, written at each epoch's end),
            TensorBoard logs (``logs/``, when the ``tensorboard`` package is
            installed) and the best-``val_map`` model (``best.keras``; with
            validation on, see :func:`validation_every`) go. If it holds a
            checkpoint, training resumes from it. None keeps nothing on
            disk.
        strategy: a ``tf.distribute.Strategy`` (see
            :func:`keras_dhsps.training.distribution.make_strategy`); its replicas split
            each batch of ``config.train.batch_size`` images and the loss
            sees the whole batch. None trains on the default device.
        reader: ``"tf.data"`` or ``"numpy"`` (every backend; see
            :mod:`keras_dhsps.data.readers`); None: ``tf.data`` where
            TensorFlow is installed, else ``numpy``.

    Raises:
        DHSPSError: bad precision, schedule or validation fraction, or an
            unreadable checkpoint in ``run_dir``.
        NonFiniteLossError: the loss became NaN or infinite (a
            ``DHSPSError`` naming the step and the batch's label
            statistics); the last checkpoint before it is kept.
    """
    check_options(config.data)
    train_config = config.train
    if train_config.deterministic:
        enable_determinism()
    keras.utils.set_random_seed(train_config.seed)
    if dataset is None:
        dataset = load_configured_dataset(config.data, root=data_root)
    lock = RunDirectory(run_dir).lock() if run_dir else contextlib.nullcontext()
    with lock:
        if run_dir is not None:
            RunDirectory(run_dir).claim(config)
        return _fit(
            config, dataset, callbacks, verbose, run_dir, strategy, reader
        )


def _fit(config, dataset, callbacks, verbose, run_dir, strategy, reader):
    """:func:`fit` once its run directory is claimed and locked."""
    train_config = config.train
    every = validation_every(train_config, dataset, run_dir)
    train_split, validation_split = _train_and_validation(
        dataset, train_config, every
    )
    epoch_steps = steps_per_epoch(len(train_split), train_config.batch_size)
    model, compile_model = _build_model(
        config, train_config.epochs * epoch_steps, strategy
    )
    history = _resume(run_dir, model, epoch_steps)
    initial_step = global_step(model)
    if initial_step:
        total = train_config.epochs * epoch_steps
        logger.info(
            "resuming %s at step %d of %d", run_dir, initial_step, total
        )
    stream = TrainingStream(
        train_split,
        choose_reader(reader),
        train_config.batch_size,
        model_image_size(model),
        train_config.seed,
        config.input,
    )
    validation = None if validation_split is None else (validation_split, every)
    all_callbacks = _callbacks(
        config, run_dir, stream, history, validation, callbacks
    )
    start = time.perf_counter()
    _train(
        model,
        compile_model,
        stream,
        all_callbacks,
        train_config,
        progress_verbosity(verbose),
    )
    if run_dir is not None:
        RunDirectory(run_dir).write_model(model)
    return TrainResult(
        model=model,
        history=history.history,
        dataset=dataset,
        seconds=time.perf_counter() - start,
        initial_step=initial_step,
    )
