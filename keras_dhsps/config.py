"""Typed experiment configuration: frozen dataclasses, JSON round trip.

An :class:`ExperimentConfig` fully determines a training run and its
evaluation (dataset, model, loss, optimizer, schedule, seed). Configs are
immutable; :func:`override` returns a modified copy from ``key=value``
strings such as ``"train.epochs=3"``, the form the CLI's ``--set`` takes.
Data roots are not part of a config: they come from the command line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which dataset and how to feed it.

    Attributes:
        name: a name in ``keras_dhsps.data.DATASETS``.
        seed: seed of the split protocol (and of generated datasets).
        options: dataset-specific keyword arguments (split sizes, ...).
    """

    name: str = "digits-mosaic"
    seed: int = 0
    options: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The hasher: ``keras_dhsps.models.build_hasher`` arguments."""

    backbone: str = "small_cnn"
    bits: int = 48
    activation: str = "tanh"
    image_size: tuple | None = None
    #: Backbone weights: None (random init), "imagenet" (keras.applications
    #: backbones; downloaded by Keras) or a local file (bvlc_alexnet.npy,
    #: a no-top .h5, or a .weights.h5).
    backbone_weights: str | None = None


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """A loss from ``keras_dhsps.losses.LOSSES`` and its keyword params."""

    name: str = "idhn"
    params: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimizer, schedule and budget (authors' values where they apply).

    Attributes:
        epochs: passes over the training split.
        batch_size: B; the loss sees all B² in-batch pairs.
        learning_rate: the hash layer's Adam rate (authors: 1e-3).
        backbone_lr_multiplier: the backbone's rate relative to the hash
            layer's. ``None`` (default): the authors' 0.01 when the
            backbone starts from pretrained weights
            (``model.backbone_weights`` set), 1.0 when it is trained from
            scratch; see :func:`backbone_lr_multiplier`.
        decay_steps: multiply both rates by ``decay_rate`` every this many
            steps (authors: 500, 0.5); 0 disables the decay.
        decay_rate: see ``decay_steps``.
        adam_epsilon: authors (TF1 default): 1e-8.
        seed: seeds weights init, shuffling and dropout.
        validation_every: epochs between validation-mAP evaluations (0: off).
        schedule: ``"step"`` (authors: × ``decay_rate`` every
            ``decay_steps``), ``"cosine"`` (cosine decay to 0 over the run)
            or ``"constant"``.
        freeze_backbone_epochs: train only the hash layer for this many
            epochs first (warm-up); 0 trains everything from the start.
        checkpoint_every: with a ``run_dir``, save a resumable checkpoint
            every this many steps (0: at the end of every epoch).
        precision: ``"float32"``, ``"mixed_float16"`` or ``"mixed_bfloat16"``
            (the loss is computed in float32 either way).
        jit_compile: XLA for the train step: ``true``, ``false`` or
            ``"auto"`` (Keras decides).
        validation_fraction: when validation is on and the dataset has no
            ``validation`` split, carve this fraction out of ``train``.
        tensorboard: with a ``run_dir``, write TensorBoard logs there.
        deterministic: call ``tf.config.experimental.enable_op_determinism()``
            before training, so a fixed seed gives bit-identical weights
            (also across a kill and resume); process-wide and slower.
    """

    epochs: int = 100
    batch_size: int = 128
    learning_rate: float = 1e-3
    backbone_lr_multiplier: float | None = None
    decay_steps: int = 500
    decay_rate: float = 0.5
    adam_epsilon: float = 1e-8
    seed: int = 0
    validation_every: int = 0
    schedule: str = "step"
    freeze_backbone_epochs: int = 0
    checkpoint_every: int = 0
    precision: str = "float32"
    jit_compile: bool | str = "auto"
    validation_fraction: float = 0.1
    tensorboard: bool = True
    deterministic: bool = False


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Which retrieval metrics to report (see ``keras_dhsps.metrics``)."""

    map_at: tuple = ("all",)
    ndcg_at: tuple = (100,)
    acg_at: tuple = (100,)
    wap_at: tuple = (100,)
    radius: int = 2
    #: Also report, for every mAP and NDCG cut-off, the expectation (and
    #: bounds) over random orders within Hamming ties, beside the
    #: database-index order (``"map@all/tie_mean"``, ...).
    tie_aware: bool = False


@dataclasses.dataclass(frozen=True)
class InputConfig:
    """How images reach the model: decoding, the image store, augmentation.

    Attributes:
        resize: one of ``keras_dhsps.data.pipeline.RESIZE_MODES``:
            ``"direct"`` (the authors': straight to the model's size),
            ``"resize_crop"`` (to ``resize_to``, then crop) or
            ``"shorter_side_crop"``.
        resize_to: the stored size before cropping (``resize_crop``), or
            its first entry is the shorter side (``shorter_side_crop``).
        random_crop: training crops a random window (cropping modes only).
        random_flip: training flips half the images left-right.
        store: ``"memory"`` decodes each image once into a uint8 store
            shared by every epoch (memory-mapped in ``store_dir`` beyond
            ``memory_budget_mb``); ``"none"`` decodes every epoch.
        store_dir: where memory-mapped stores are kept (None: the user's
            cache directory).
        memory_budget_mb: the most RAM an in-memory store may take.
        shuffle_buffer: shuffle buffer in images (None: the whole split).
        deterministic: keep the element order of parallel decoding, so two
            runs with one seed see identical batches.
    """

    resize: str = "direct"
    resize_to: tuple = (256, 256)
    random_crop: bool = False
    random_flip: bool = False
    store: str = "memory"
    store_dir: str | None = None
    memory_budget_mb: int = 2048
    shuffle_buffer: int | None = None
    deterministic: bool = False


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything that determines one training run and its evaluation."""

    name: str = "experiment"
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    input: InputConfig = dataclasses.field(default_factory=InputConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)


def backbone_lr_multiplier(config: ExperimentConfig) -> float:
    """The backbone's learning-rate multiplier ``config`` trains with:
    ``train.backbone_lr_multiplier`` when set, else the authors' 0.01 for a
    backbone with pretrained weights and 1.0 for one trained from scratch
    (at 0.01 a randomly initialised backbone barely moves)."""
    if config.train.backbone_lr_multiplier is not None:
        return config.train.backbone_lr_multiplier
    return 0.01 if config.model.backbone_weights else 1.0


def to_dict(config: Any) -> dict:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _build(cls: type, values: dict) -> Any:
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} field(s) {unknown}; "
            f"known: {sorted(fields)}"
        )
    kwargs = {}
    for key, value in values.items():
        field_type = fields[key].type
        default = getattr(cls(), key)
        if dataclasses.is_dataclass(default):
            kwargs[key] = _build(type(default), value)
        elif isinstance(value, list) and (
            isinstance(default, tuple) or "tuple" in str(field_type)
        ):
            kwargs[key] = tuple(value)
        else:
            kwargs[key] = value
    return cls(**kwargs)


def from_dict(values: dict) -> ExperimentConfig:
    """Inverse of :func:`to_dict` for an :class:`ExperimentConfig`."""
    return _build(ExperimentConfig, values)


def config_hash(config: Any) -> str:
    """A short stable hash of a config (or a JSON-ready dict of one): the
    key its results are stored under."""
    values = config if isinstance(config, dict) else to_dict(config)
    text = json.dumps(values, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def override(config: ExperimentConfig, *assignments: str) -> ExperimentConfig:
    """Returns a copy of ``config`` with ``"a.b=value"`` assignments applied.

    Values are parsed as JSON when they parse (``3``, ``0.5``, ``true``,
    ``[12, 24]``, ``{"beta": 5}``) and kept as strings otherwise.

    Raises:
        ValueError: malformed assignment or unknown key.
    """
    values = to_dict(config)
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep or not key:
            raise ValueError(
                f"expected KEY=VALUE (e.g. train.epochs=3), got {assignment!r}"
            )
        *parents, leaf = key.strip().split(".")
        node = values
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise ValueError(f"unknown config key {key!r}")
            node = node[part]
        if (
            leaf not in node
            and parents
            and parents[-1]
            not in (
                "options",
                "params",
            )
        ):
            raise ValueError(f"unknown config key {key!r}")
        node[leaf] = _parse_value(raw.strip())
    return from_dict(values)
