"""Training callbacks: validation mAP, step-exact checkpoints, the run's
history.

The global step is the optimizer's count of updates
(``model.optimizer.iterations``, :func:`global_step`), saved with the
optimizer's state (docs/training.md §5).
"""

from __future__ import annotations

import json
import os
import threading

import keras
import numpy as np

from keras_dhsps.data.base import Split
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import read_json_file
from keras_dhsps.utils.files import sha256_file
from keras_dhsps.utils.files import write_json
from keras_dhsps.utils.space import require_space
from keras_dhsps.utils.space import variables_bytes


class NonFiniteLossError(DHSPSError, FloatingPointError):
    """Training produced a NaN or infinite loss (see :class:`StopOnNaN`)."""


def label_statistics(labels) -> str:
    """One line describing a batch's ``(B, C)`` multi-hot labels."""
    labels = np.asarray(labels)
    per_image = labels.reshape(len(labels), -1).sum(axis=1)
    if not len(per_image):
        return "an empty batch"
    return (
        f"batch of {len(per_image)} images, {int((per_image == 0).sum())} "
        f"with no label, labels per image min {per_image.min():g} "
        f"mean {per_image.mean():.3g} max {per_image.max():g}"
    )


def global_step(model) -> int:
    """Training steps done so far: ``model.optimizer.iterations``."""
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


class StopOnNaN(keras.callbacks.Callback):
    """Stops training at the first NaN or infinite loss with an error.

    Replaces ``keras.callbacks.TerminateOnNaN``, which stops quietly: this
    raises :class:`NonFiniteLossError` naming the global step and the
    offending batch's label statistics (recovered through ``labels_at``,
    as the batch stream is deterministic).

    It never makes a training step wait. A callback with a per-batch hook
    that is not ``async_safe`` makes Keras read every step's logs on the
    main thread, so every step waits for the device and the host cannot
    prepare the next batch meanwhile. This one is ``async_safe``: under JAX
    and PyTorch Keras runs the per-batch check on a worker thread, where
    reading the loss waits for that step alone (under TensorFlow, Keras
    runs callbacks in line). The check only records the first bad step: on
    the worker thread it never touches ``self.model``, whose JAX accessor
    would copy the training state into the model while the main thread
    donates those buffers to the next step. The next batch's begin hook, on
    the main thread, asks training to stop; the error is raised at the end
    of that epoch, once every check has run. This callback comes first in
    the run's list, so the error is raised before that epoch's history and
    checkpoint are written; mid-epoch checkpoints refuse non-finite weights
    themselves (:class:`StepCheckpoint`).

    Args:
        labels_at: ``labels_at(step)`` returns the labels of the batch of
            global step ``step`` (0-based); None leaves them out.
    """

    async_safe = True

    def __init__(self, labels_at=None):
        super().__init__()
        self.labels_at = labels_at
        self._lock = threading.Lock()
        self._epoch_start = 0
        self._first_bad = None  # (0-based global step, loss)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = global_step(self.model)

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = float(loss)  # waits for this step alone (a worker thread)
        if np.isfinite(loss):
            return
        step = self._epoch_start + int(batch)  # batch: index in this epoch
        with self._lock:
            if self._first_bad is None or step < self._first_bad[0]:
                self._first_bad = (step, loss)

    def on_train_batch_begin(self, batch, logs=None):
        if self._first_bad is not None:  # main thread: the model may be used
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self._first_bad is None:
            return
        step, loss = self._first_bad
        detail = ""
        if self.labels_at is not None:
            detail = f"; {label_statistics(self.labels_at(step))}"
        raise NonFiniteLossError(
            f"loss is {loss} at training step {step + 1} (global "
            f"batch {step} of the seeded stream){detail}; lower the "
            "learning rate or check the labels"
        )


class BestModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """``keras.callbacks.ModelCheckpoint`` saving at epoch ends only
    (``save_freq="epoch"``), marked ``async_safe``: its per-batch hook then
    does nothing, and unmarked it would make every training step wait
    (see :class:`StopOnNaN`)."""

    async_safe = True

    def __init__(self, filepath, **kwargs):
        super().__init__(filepath, save_freq="epoch", **kwargs)

    def _save_model(self, epoch, batch, logs):
        require_space(self.filepath, variables_bytes(self.model))
        try:
            super()._save_model(epoch, batch, logs)
        except OSError as error:
            raise DHSPSError(
                f"cannot write {self.filepath}: {error.strerror or error}"
            ) from None


class RetrievalValidation(keras.callbacks.Callback):
    """Logs ``val_map`` (mAP@all) every ``every`` epochs on training data.

    Queries are the ``validation`` split (carved from training data) and the
    retrieval set is the ``train`` split, so model selection never sees the
    test queries or the database. The value is added to the epoch's logs,
    where ``History``, ``ModelCheckpoint(monitor="val_map", mode="max")`` and
    TensorBoard find it.

    Args:
        validation: the validation split (queries).
        train: the training split (retrieval set).
        every: evaluate every this many epochs (and after the last one).
        batch_size: encoding batch size.
        reader, input_config: see :func:`keras_dhsps.retrieval.evaluation.encode`.
    """

    def __init__(
        self,
        validation: Split,
        train: Split,
        every=1,
        batch_size=256,
        reader=None,
        input_config=None,
    ):
        super().__init__()
        self.reader = reader
        self.input_config = input_config
        self.validation = validation
        self.train = train
        self.every = max(int(every), 1)
        self.batch_size = batch_size

    def on_epoch_end(self, epoch, logs=None):
        last = self.params and epoch + 1 == self.params.get("epochs")
        if (epoch + 1) % self.every and not last:
            return
        from keras_dhsps.metrics import mean_average_precision
        from keras_dhsps.retrieval.evaluation import encode

        query_codes = encode(
            self.model,
            self.validation,
            batch_size=self.batch_size,
            reader=self.reader,
        )
        train_codes = encode(
            self.model,
            self.train,
            batch_size=self.batch_size,
            reader=self.reader,
        )
        value = mean_average_precision(
            query_codes, self.validation.labels, train_codes, self.train.labels
        )
        if logs is not None:
            logs["val_map"] = float(value)


CHECKPOINT_STATE = "checkpoint.json"


def _all_finite(variables) -> bool:
    """Whether every value of ``variables`` is finite (no NaN, no inf)."""
    return all(
        np.isfinite(keras.ops.convert_to_numpy(variable)).all()
        for variable in variables
        if keras.backend.is_float_dtype(variable.dtype)
    )


def _seed_generators(model):
    """Every ``SeedGenerator`` of ``model`` (dropout and other random
    layers), in a stable order. Their states are not in ``.weights.h5``."""
    generators = []
    for layer in model._flatten_layers(include_self=True, recursive=True):
        generators.extend(getattr(layer, "_seed_generators", ()))
    return generators


class StepCheckpoint(keras.callbacks.Callback):
    """Saves a resumable training state every ``every`` steps.

    Unlike ``keras.callbacks.BackupAndRestore``, which resumes at the start
    of the interrupted epoch with mid-epoch weights, the state here records
    the global step, so :func:`keras_dhsps.training.fit.fit` resumes at the exact
    batch and ends with the weights of an uninterrupted run. A state is the
    model's weights with the optimizer's (``step-N.weights.h5``: Adam
    moments, iteration count = the global step) plus ``checkpoint.json``
    holding the step, the random layers' seed states and the running
    metrics of the epoch in progress (so a resumed epoch is averaged over
    all its steps); the JSON is replaced atomically after the weights are
    written, so a crash while saving leaves the previous state valid.

    A state due in the middle of an epoch is saved as the next batch
    begins (the same state as after the last one): a per-batch end hook
    would make every step wait for the device (see :class:`StopOnNaN`).
    There the NaN guard's check of the last step may still be running, so
    a mid-epoch state with non-finite weights is not written.

    Args:
        directory: where states are written (created if missing).
        every: save every this many steps; 0 saves at the end of each epoch.
            A state due on an epoch's last step is saved at the epoch's end,
            after :class:`RunHistory` has written that epoch.
    """

    def __init__(self, directory, every=0):
        super().__init__()
        self.directory = os.fspath(directory)
        self.every = max(int(every), 0)
        self._epoch_start = 0

    def _due(self, step):
        return not self.every or step % self.every == 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = global_step(self.model)

    def on_train_batch_begin(self, batch, logs=None):
        done = self._epoch_start + int(batch)  # steps done, this one next
        if self.every and batch and done % self.every == 0:
            if _all_finite(self.model.weights):
                self.save()

    def on_epoch_end(self, epoch, logs=None):
        if self._due(global_step(self.model)):
            self.save()

    def on_train_end(self, logs=None):
        self.save()

    def save(self):
        """Writes the state of the current step."""
        os.makedirs(self.directory, exist_ok=True)
        model = self.model
        step = global_step(model)
        weights = f"step-{step}.weights.h5"
        path = os.path.join(self.directory, weights)
        # HDF5 would take the interpreter down on a full disk: ask first.
        require_space(path, variables_bytes(model, optimizer=True))
        model.save_weights(path)
        state = {
            "step": step,
            "weights": weights,
            # HDF5 can loop forever on a damaged file (docs/reliability.md
            # §13): resume checks the bytes before Keras opens them.
            "sha256": sha256_file(path),
            "seed_states": [
                np.asarray(keras.ops.convert_to_numpy(g.state)).tolist()
                for g in _seed_generators(model)
            ],
            "metric_states": {
                v.path: np.asarray(keras.ops.convert_to_numpy(v)).tolist()
                for v in model.metrics_variables
            },
        }
        write_json(os.path.join(self.directory, CHECKPOINT_STATE), state)
        for name in os.listdir(self.directory):
            if name.endswith(".weights.h5") and name != weights:
                os.remove(os.path.join(self.directory, name))


def restore_checkpoint(directory, model):
    """Loads the latest :class:`StepCheckpoint` state into ``model``.

    ``model`` must be compiled with its optimizer built, so the optimizer's
    variables exist to receive their saved values (the global step among
    them).

    Returns:
        The running metric values saved with the state (variable path ->
        value, for :class:`RunHistory`), or None when there is no state.

    Raises:
        DHSPSError: the state is unreadable or belongs to another model.
    """
    path = os.path.join(os.fspath(directory), CHECKPOINT_STATE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as file:
            state = json.load(file)
        weights = os.path.join(os.fspath(directory), state["weights"])
        if "sha256" in state and sha256_file(weights) != state["sha256"]:
            raise ValueError(f"{state['weights']} changed since it was saved")
        model.load_weights(weights)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DHSPSError(
            f"{path}: unreadable checkpoint ({error}); delete the "
            "checkpoints directory to start over"
        ) from None
    generators = _seed_generators(model)
    if len(generators) != len(state["seed_states"]):
        raise DHSPSError(
            f"{path}: {len(state['seed_states'])} seed states for "
            f"{len(generators)} random layers; not this model's checkpoint"
        )
    for generator, value in zip(generators, state["seed_states"], strict=True):
        generator.state.assign(np.asarray(value, dtype=generator.state.dtype))
    return state.get("metric_states", {})


class RunHistory(keras.callbacks.Callback):
    """Keeps the per-epoch logs of a run, across interruptions.

    At each epoch's end the epoch's logs are appended to ``history`` and,
    with a ``path``, the whole history is written there atomically (before
    :class:`StepCheckpoint` saves, so a checkpoint never runs ahead of the
    history). A run resumed in the middle of an epoch first restores the
    running metrics saved with the checkpoint (``metric_states``), so that
    epoch is averaged over all its steps, as in an uninterrupted run.

    Args:
        path: the JSON file (``RUN/history.json``), or None.
        history: the logs of the epochs already done (key -> list).
        metric_states: running metric values to restore at the start of the
            first epoch (variable path -> value), or None.
    """

    def __init__(self, path=None, history=None, metric_states=None):
        super().__init__()
        self.path = path
        self.history = {k: list(v) for k, v in (history or {}).items()}
        self.metric_states = metric_states

    def on_epoch_begin(self, epoch, logs=None):
        if not self.metric_states:
            return
        for variable in self.model.metrics_variables:
            if variable.path in self.metric_states:
                variable.assign(
                    np.asarray(
                        self.metric_states[variable.path], variable.dtype
                    )
                )
        self.metric_states = None

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        if self.path is not None:
            write_json(self.path, self.history)


def read_history(path, epochs: int) -> dict:
    """The first ``epochs`` epochs of a :class:`RunHistory` file ({} when
    there is none). Epochs written after the last checkpoint are dropped:
    the resumed run trains them again."""
    if not os.path.isfile(path):
        return {}
    history = read_json_file(path, "training history")
    if not _is_history(history):
        raise DHSPSError(
            f"{path}: not a training history (a JSON object of per-epoch "
            "lists of numbers)"
        )
    return {key: list(values)[:epochs] for key, values in history.items()}


def _is_history(value) -> bool:
    def number(x):
        return x is None or (
            isinstance(x, (int, float)) and not isinstance(x, bool)
        )

    return isinstance(value, dict) and all(
        isinstance(values, list) and all(map(number, values))
        for values in value.values()
    )
