"""The experiment config: seven frozen dataclasses and their JSON round trip.

An :class:`ExperimentConfig` fully determines a training run and its
evaluation. Every section checks its fields against :data:`RULES` when it
is built (directly, by :func:`from_dict` or by :func:`override`);
:func:`override` returns a modified copy from ``"train.epochs=3"``-style
strings (the CLI's ``--set``). Data roots are not part of a config.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from keras_dhsps.config.rules import RULES
from keras_dhsps.config.rules import check_loss_params
from keras_dhsps.config.rules import show_value
from keras_dhsps.utils.errors import ConfigError

#: class name -> its section in an :class:`ExperimentConfig`.
_SECTIONS = {
    "DataConfig": "data",
    "ModelConfig": "model",
    "LossConfig": "loss",
    "TrainConfig": "train",
    "EvalConfig": "eval",
    "InputConfig": "input",
}


class _Validated:
    """Checks every field against :data:`RULES` after ``__init__``."""

    def __post_init__(self) -> None:
        section = _SECTIONS.get(type(self).__name__)
        for field in dataclasses.fields(self):
            key = f"{section}.{field.name}" if section else field.name
            value = getattr(self, field.name)
            rule = RULES.get(key)
            if rule is not None:
                rule.check(key, value)
            elif not isinstance(value, type(field.default_factory())):
                raise ConfigError(f"{key}: expected a config section")
        self._check_together()

    def _check_together(self) -> None:
        """Checks between fields (the loss's params, crop and resize)."""


@dataclasses.dataclass(frozen=True)
class DataConfig(_Validated):
    """Which dataset and how to feed it.

    Attributes:
        name: a name in ``keras_dhsps.data.DATASETS``.
        seed: seed of the split protocol (and of generated datasets).
        options: dataset-specific keyword arguments (split sizes, ...).

    The name and options are checked against the dataset's loader where
    the config is put to work (``keras_dhsps.data.options.check_options``).
    """

    name: str = "digits-mosaic"
    seed: int = 0
    options: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ModelConfig(_Validated):
    """The hasher: ``keras_dhsps.models.hasher.build_hasher`` arguments."""

    backbone: str = "small_cnn"
    bits: int = 48
    activation: str = "tanh"
    image_size: tuple | None = None
    #: Backbone weights: None (random init), "imagenet" (keras.applications
    #: backbones; downloaded by Keras) or a local file (bvlc_alexnet.npy,
    #: a no-top .h5, or a .weights.h5).
    backbone_weights: str | None = None


@dataclasses.dataclass(frozen=True)
class LossConfig(_Validated):
    """A loss from ``keras_dhsps.losses.LOSSES`` and its keyword params."""

    name: str = "idhn"
    params: dict = dataclasses.field(default_factory=dict)

    def _check_together(self) -> None:
        check_loss_params(self.name, self.params)


@dataclasses.dataclass(frozen=True)
class TrainConfig(_Validated):
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
        validation_every: epochs between validation-mAP evaluations on a
            validation split (never the queries); 0: off. ``None``
            (default): automatic — about ten times per run when there is a
            run directory (so ``best.keras`` has a place) and the dataset
            has a validation split of its own; off otherwise (see
            :func:`keras_dhsps.training.fit.validation_every`).
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
        deterministic: make training bit-reproducible for a fixed seed
            (also across a kill and resume), per backend: TensorFlow's op
            determinism (process-wide, slower), nothing more on JAX/CPU
            (XLA's deterministic GPU kernels need
            ``XLA_FLAGS=--xla_gpu_deterministic_ops=true`` set before JAX
            starts), ``torch.use_deterministic_algorithms`` under PyTorch;
            see :func:`keras_dhsps.training.fit.enable_determinism`.
    """

    epochs: int = 100
    batch_size: int = 128
    learning_rate: float = 1e-3
    backbone_lr_multiplier: float | None = None
    decay_steps: int = 500
    decay_rate: float = 0.5
    adam_epsilon: float = 1e-8
    seed: int = 0
    validation_every: int | None = None
    schedule: str = "step"
    freeze_backbone_epochs: int = 0
    checkpoint_every: int = 0
    precision: str = "float32"
    jit_compile: bool | str = "auto"
    validation_fraction: float = 0.1
    tensorboard: bool = True
    deterministic: bool = False


@dataclasses.dataclass(frozen=True)
class EvalConfig(_Validated):
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
class InputConfig(_Validated):
    """How images reach the model: decoding, the image store, augmentation.

    Attributes:
        resize: one of ``keras_dhsps.config.RESIZE_MODES``:
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

    Crop and flip run inside the model (``keras_dhsps.models.layers.CropImages``
    and ``FlipImages``, training only), so on a GPU they run there; the
    store holds uint8 images at the stored size.
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

    def _check_together(self) -> None:
        if self.random_crop and self.resize == "direct":
            raise ConfigError(
                "input.random_crop=true needs a cropping input.resize "
                '("resize_crop" or "shorter_side_crop"); got "direct"'
            )


@dataclasses.dataclass(frozen=True)
class ExperimentConfig(_Validated):
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


def _build(cls: type, values: Any, prefix: str = "") -> Any:
    if not isinstance(values, dict):
        raise ConfigError(
            f"{prefix.rstrip('.') or 'config'}={show_value(values)} is not "
            "allowed; expected a JSON object of its fields"
        )
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {', '.join(prefix + k for k in unknown)}; "
            f"known in {prefix.rstrip('.') or 'the config'}: "
            f"{', '.join(sorted(fields))}"
        )
    kwargs = {}
    for key, value in values.items():
        field = fields[key]
        if field.default_factory is not dataclasses.MISSING and (
            dataclasses.is_dataclass(field.default_factory)
        ):
            kwargs[key] = _build(field.default_factory, value, f"{key}.")
        elif isinstance(value, list) and "tuple" in str(field.type):
            kwargs[key] = tuple(value)
        else:
            kwargs[key] = value
    return cls(**kwargs)


def from_dict(values: dict) -> ExperimentConfig:
    """Inverse of :func:`to_dict` for an :class:`ExperimentConfig`.

    Raises:
        ConfigError: an unknown key or a value its field does not allow.
    """
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
        ConfigError (a ValueError): malformed assignment, unknown key or a
            value the field does not allow.
    """
    values = to_dict(config)
    for assignment in assignments:
        _assign(values, assignment)
    return from_dict(values)


def _assign(values: dict, assignment: str) -> None:
    """Applies one ``"a.b=value"`` to the JSON-ready dict of a config."""
    key, sep, raw = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(
            f"expected KEY=VALUE (e.g. train.epochs=3), got {assignment!r}"
        )
    *parents, leaf = key.split(".")
    node = values
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise ConfigError(f"unknown config key {key!r}")
        node = node[part]
    free_form = parents and parents[-1] in ("options", "params")
    if leaf not in node and not free_form:
        raise ConfigError(
            f"unknown config key {key!r}; known in "
            f"{'.'.join(parents) or 'the config'}: "
            f"{', '.join(sorted(node))}"
        )
    node[leaf] = _parse_value(raw.strip())
