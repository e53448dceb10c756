"""The one training entry point: ``fit(config) -> TrainResult``.

Used by the CLI, by the reproduce runner and by the tests. It builds the
dataset, the hasher, the loss and the two-rate Adam of the authors' protocol
(IDHN_NOTES.md §3) from an :class:`~keras_dhsps.config.ExperimentConfig` and
runs ``model.fit``.
"""

from __future__ import annotations

import dataclasses
import time

import keras

from keras_dhsps.callbacks import RetrievalValidation
from keras_dhsps.config import ExperimentConfig
from keras_dhsps.config import TrainConfig
from keras_dhsps.data import load_dataset
from keras_dhsps.data.base import RetrievalDataset
from keras_dhsps.data.pipeline import make_dataset
from keras_dhsps.losses import get_loss
from keras_dhsps.models import HASH_LAYER_NAME
from keras_dhsps.models import build_hasher
from keras_dhsps.optimizers import LayerwiseAdam
from keras_dhsps.optimizers import step_decay


@dataclasses.dataclass
class TrainResult:
    """What :func:`fit` returns.

    Attributes:
        model: the trained hasher (final epoch: the authors' protocol).
        history: per-epoch logs (``loss``, and ``val_map`` when validation
            is on).
        dataset: the dataset it was trained on (for evaluation).
        seconds: wall-clock training time.
    """

    model: keras.Model
    history: dict
    dataset: RetrievalDataset
    seconds: float


def build_optimizer(train_config: TrainConfig) -> LayerwiseAdam:
    """Adam at ``learning_rate`` on the hash layer and
    ``learning_rate × backbone_lr_multiplier`` elsewhere, both decayed by
    ``decay_rate`` every ``decay_steps`` steps."""
    learning_rate = train_config.learning_rate
    if train_config.decay_steps:
        learning_rate = step_decay(
            learning_rate, train_config.decay_steps, train_config.decay_rate
        )
    return LayerwiseAdam(
        learning_rate,
        multipliers={HASH_LAYER_NAME: 1.0},
        default_multiplier=train_config.backbone_lr_multiplier,
        epsilon=train_config.adam_epsilon,
    )


def fit(
    config: ExperimentConfig,
    *,
    dataset: RetrievalDataset | None = None,
    data_root: str | None = None,
    callbacks=(),
    verbose="auto",
) -> TrainResult:
    """Trains a hasher as ``config`` says.

    Args:
        config: the experiment.
        dataset: an already loaded dataset (else loaded from ``config.data``
            and ``data_root``).
        data_root: dataset directory for datasets read from disk.
        callbacks: extra Keras callbacks.
        verbose: passed to ``model.fit`` (1 shows a progress bar).

    Returns:
        A :class:`TrainResult`.
    """
    keras.utils.set_random_seed(config.train.seed)
    if dataset is None:
        dataset = load_dataset(
            config.data.name,
            root=data_root,
            seed=config.data.seed,
            **config.data.options,
        )
    model = build_hasher(
        config.model.backbone,
        config.model.bits,
        activation=config.model.activation,
        image_size=config.model.image_size,
    )
    model.compile(
        optimizer=build_optimizer(config.train),
        loss=get_loss(config.loss.name, **config.loss.params),
    )
    _, height, width, _ = model.input_shape
    train_split = dataset.split("train")
    batches = make_dataset(
        train_split,
        batch_size=config.train.batch_size,
        image_size=(height, width),
        training=True,
        seed=config.train.seed,
    )
    all_callbacks = [keras.callbacks.TerminateOnNaN(), *callbacks]
    if config.train.validation_every and len(
        dataset.splits.get("validation", ())
    ):
        all_callbacks.append(
            RetrievalValidation(
                dataset.split("validation"),
                train_split,
                every=config.train.validation_every,
            )
        )
    start = time.perf_counter()
    history = model.fit(
        batches,
        epochs=config.train.epochs,
        callbacks=all_callbacks,
        verbose=verbose,
    )
    return TrainResult(
        model=model,
        history={key: [float(v) for v in values] for key, values in history.history.items()},
        dataset=dataset,
        seconds=time.perf_counter() - start,
    )
