"""Typed experiment configuration: frozen dataclasses, JSON round trip.

An :class:`ExperimentConfig` fully determines a training run and its
evaluation (dataset, model, loss, optimizer, schedule, seed). Configs are
immutable; :func:`override` returns a modified copy from ``key=value``
strings such as ``"train.epochs=3"``, the form the CLI's ``--set`` takes.
Data roots are not part of a config: they come from the command line.

Validation happens at the boundary: every section checks each of its
fields when it is built (directly, by :func:`from_dict` or by
:func:`override`) against a rule in :data:`RULES` (type, range, known
names), and the loss's ``params`` against that loss's parameters
(:data:`LOSS_PARAMS`; a loss registered in ``keras_dhsps.losses.LOSSES``
at run time is checked against its signature). A bad value raises
:class:`ConfigError` naming the key, the value and what is allowed, which
the CLI prints as one line.

Why a small hand-written, type-driven check and not pydantic: the fields
are a few scalars, tuples and two free-form dicts; what needs checking
beyond the type (positive sizes, fractions, registry names, a loss's own
parameter names) is ours and would be written as validators either way;
and pydantic's lax mode would coerce values (``"3"`` -> 3, lists ->
tuples inside ``params``) and so change the stored JSON and the config
hashes, while its multi-line reports would still need translating into
one line per error. Each rule is one line in :data:`RULES`.

This module imports no TensorFlow: the names of backbones, losses,
activations, precisions, schedules and resize modes are kept here as
constants (their registries live in modules that import Keras), and a
test checks that both lists agree. Dataset names come from
``keras_dhsps.data.DATASETS`` (TensorFlow-free), imported when needed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.abc
import importlib.util
import json
import math
import os
import sys
from collections.abc import Callable
from typing import Any

from keras_dhsps.utils.errors import ConfigError
from keras_dhsps.utils.errors import DHSPSError

# ------------------------------------------------------------ known names
#: ``keras_dhsps.models.backbones.BACKBONES``.
BACKBONE_NAMES = (
    "alexnet",
    "alexnet_authors_rgb",
    "efficientnet_b0",
    "efficientnet_b3",
    "resnet50",
    "small_cnn",
    "vgg16",
    "vgg19",
)
#: ``keras_dhsps.models.hasher.ACTIVATIONS``.
ACTIVATIONS = ("tanh", "softsign")
#: ``keras_dhsps.training.fit.PRECISIONS``.
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
#: ``keras_dhsps.training.optimizers.SCHEDULES``.
SCHEDULES = ("step", "cosine", "constant")
#: How images reach the stored size (``InputConfig.resize``; the one
#: definition, used by the image store, the pipeline and the export).
RESIZE_MODES = ("direct", "resize_crop", "shorter_side_crop")
#: ``InputConfig.store``: ``"memory"`` keeps a decoded store (in RAM or
#: memory-mapped), ``"none"`` decodes on every read.
STORES = ("memory", "none")


# ------------------------------------------------------------------ rules
@dataclasses.dataclass(frozen=True)
class Rule:
    """What a field may hold: ``test(value)`` and its description."""

    allowed: str
    test: Callable[[Any], bool]

    def check(self, key: str, value: Any) -> None:
        """Raises :class:`ConfigError` unless ``value`` passes."""
        if not self.test(value):
            raise ConfigError(
                f"{key}={_show(value)} is not allowed; expected {self.allowed}"
            )


def _show(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def integer(minimum: int) -> Rule:
    """An integer ``>= minimum`` (booleans are not integers here)."""
    return Rule(
        f"an integer >= {minimum}",
        lambda v: _is_int(v) and v >= minimum,
    )


def number(low: float, high: float | None = None, *, open_low=False) -> Rule:
    """A finite number in ``[low, high]`` (``(low, ...`` with ``open_low``;
    ``high`` None: no upper bound)."""
    bracket = "(" if open_low else "["
    text = (
        f"a number in {bracket}{low}, {'inf)' if high is None else f'{high}]'}"
    )

    def test(value: Any) -> bool:
        if not _is_number(value):
            return False
        above = value > low if open_low else value >= low
        return above and (high is None or value <= high)

    return Rule(text, test)


def one_of(*choices: Any) -> Rule:
    """One of ``choices``."""
    return Rule(
        "one of " + ", ".join(_show(c) for c in choices),
        lambda v: any(
            v is c or (v == c and type(v) is type(c)) for c in choices
        ),
    )


def optional(rule: Rule) -> Rule:
    """None or what ``rule`` allows."""
    return Rule(f"null or {rule.allowed}", lambda v: v is None or rule.test(v))


def tuple_of(
    rule: Rule,
    items: str,
    length: int | None = None,
    *,
    allow_empty: bool = False,
) -> Rule:
    """A tuple (a JSON list) of ``items`` that ``rule`` allows: non-empty
    unless ``allow_empty``, of ``length`` items when given."""
    if length is not None:
        count = f"a list of {length}"
    else:
        count = "a list" if allow_empty else "a non-empty list"
    return Rule(
        f"{count} of {items}",
        lambda v: (
            isinstance(v, tuple)
            and (allow_empty or len(v) > 0)
            and (length is None or len(v) == length)
            and all(rule.test(item) for item in v)
        ),
    )


BOOL = Rule("true or false", lambda v: isinstance(v, bool))
TEXT = Rule("a non-empty string", lambda v: isinstance(v, str) and v != "")
MAPPING = Rule("a JSON object", lambda v: isinstance(v, dict))
POSITIVE = number(0, open_low=True)
NON_NEGATIVE = number(0)
PROBABILITY = number(0, 1)
CUTOFF = Rule(
    'a positive integer or "all"', lambda v: v == "all" or integer(1).test(v)
)
_CUTOFFS = 'positive integers or "all"'

#: ``section.field`` -> its :class:`Rule` (every field has one).
RULES: dict[str, Rule] = {
    "name": TEXT,
    "data.name": TEXT,  # and a key of keras_dhsps.data.DATASETS
    "data.seed": integer(0),
    "data.options": MAPPING,  # checked against the dataset's loader
    "model.backbone": one_of(*BACKBONE_NAMES),
    "model.bits": integer(1),
    "model.activation": one_of(*ACTIVATIONS),
    "model.image_size": optional(tuple_of(integer(1), "integers >= 1", 2)),
    "model.backbone_weights": optional(TEXT),
    "loss.name": TEXT,  # and a key of LOSS_PARAMS
    "loss.params": MAPPING,  # checked against LOSS_PARAMS[name]
    # 0 builds the initial model without training (library use); the
    # CLI's train and reproduce ask for at least 1.
    "train.epochs": integer(0),
    "train.batch_size": integer(1),
    "train.learning_rate": POSITIVE,
    "train.backbone_lr_multiplier": optional(NON_NEGATIVE),
    "train.decay_steps": integer(0),
    "train.decay_rate": POSITIVE,
    "train.adam_epsilon": POSITIVE,
    "train.seed": integer(0),
    "train.validation_every": optional(integer(0)),
    "train.schedule": one_of(*SCHEDULES),
    "train.freeze_backbone_epochs": integer(0),
    "train.checkpoint_every": integer(0),
    "train.precision": one_of(*PRECISIONS),
    "train.jit_compile": one_of(True, False, "auto"),
    "train.validation_fraction": Rule(
        "a number in [0, 1)", lambda v: _is_number(v) and 0 <= v < 1
    ),
    "train.tensorboard": BOOL,
    "train.deterministic": BOOL,
    "eval.map_at": tuple_of(CUTOFF, _CUTOFFS),
    "eval.ndcg_at": tuple_of(CUTOFF, _CUTOFFS, allow_empty=True),
    "eval.acg_at": tuple_of(CUTOFF, _CUTOFFS, allow_empty=True),
    "eval.wap_at": tuple_of(CUTOFF, _CUTOFFS, allow_empty=True),
    "eval.radius": integer(0),
    "eval.tie_aware": BOOL,
    "input.resize": one_of(*RESIZE_MODES),
    "input.resize_to": tuple_of(integer(1), "integers >= 1", 2),
    "input.random_crop": BOOL,
    "input.random_flip": BOOL,
    "input.store": one_of(*STORES),
    "input.store_dir": optional(TEXT),
    "input.memory_budget_mb": integer(0),
    "input.shuffle_buffer": optional(integer(1)),
    "input.deterministic": BOOL,
}

_WEIGHT = NON_NEGATIVE
_INCLUDE_DIAGONAL = {"include_diagonal": BOOL}
#: loss name (``keras_dhsps.losses.LOSSES``) -> its keyword parameters
#: (those of the loss class, less Keras's ``name``) -> rule.
LOSS_PARAMS: dict[str, dict[str, Rule]] = {
    "idhn": {
        "beta": POSITIVE,
        "soft_weight": _WEIGHT,
        "quantization_weight": _WEIGHT,
        "hard_low": PROBABILITY,
        "hard_high": PROBABILITY,
        **_INCLUDE_DIAGONAL,
    },
    "idhn_hard_only": {
        "beta": POSITIVE,
        "quantization_weight": _WEIGHT,
        **_INCLUDE_DIAGONAL,
    },
    "idhn_soft_only": {
        "soft_weight": _WEIGHT,
        "quantization_weight": _WEIGHT,
        **_INCLUDE_DIAGONAL,
    },
    "idhn_no_quantization": {"quantization_weight": _WEIGHT},
    "idhn_dhp": {
        "memory_size": integer(0),
        "bits": optional(integer(1)),
        "num_classes": optional(integer(1)),
        "scale": POSITIVE,
        "soft_weight": _WEIGHT,
        "quantization_weight": _WEIGHT,
        "apply_softsign": BOOL,
        "hard_low": PROBABILITY,
        "hard_high": PROBABILITY,
        "epsilon": POSITIVE,
    },
    "dhn": {
        "scale": POSITIVE,
        "quantization_weight": _WEIGHT,
        **_INCLUDE_DIAGONAL,
    },
    "dpsh": {
        "scale": POSITIVE,
        "quantization_weight": _WEIGHT,
        **_INCLUDE_DIAGONAL,
    },
    "hashnet": {
        "scale": optional(POSITIVE),
        "continuation": POSITIVE,
        **_INCLUDE_DIAGONAL,
    },
    "dsh": {
        "margin": optional(NON_NEGATIVE),
        "quantization_weight": _WEIGHT,
        **_INCLUDE_DIAGONAL,
    },
    "csq": {
        "num_classes": optional(integer(1)),
        "seed": integer(0),
        "quantization_weight": _WEIGHT,
    },
}

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
        """Checks between fields (the loss's params, a dataset's options)."""


@dataclasses.dataclass(frozen=True)
class DataConfig(_Validated):
    """Which dataset and how to feed it.

    Attributes:
        name: a name in ``keras_dhsps.data.DATASETS``.
        seed: seed of the split protocol (and of generated datasets).
        options: dataset-specific keyword arguments (split sizes, ...).
    """

    name: str = "digits-mosaic"
    seed: int = 0
    options: dict = dataclasses.field(default_factory=dict)

    def _check_together(self) -> None:
        _check_data_options(self)


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
        _check_loss_params(self)


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
        resize: one of :data:`RESIZE_MODES`:
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


def _registered_loss_params(name: str) -> dict[str, Rule] | None:
    """Rules for a loss added to ``keras_dhsps.losses.LOSSES`` at run time
    (a plugin, a test): its keyword parameters by name, any value. Looked
    up only when that module is loaded, which registering a loss implies."""
    import inspect

    registry = getattr(sys.modules.get("keras_dhsps.losses"), "LOSSES", {})
    if name not in registry:
        return None
    parameters = inspect.signature(registry[name].__init__).parameters
    anything = Rule("any value", lambda value: True)
    return {
        p.name: anything
        for p in parameters.values()
        if p.name not in ("self", "name")
        and p.kind is not inspect.Parameter.VAR_KEYWORD
    }


def _check_loss_params(loss: LossConfig) -> None:
    allowed = LOSS_PARAMS.get(loss.name) or _registered_loss_params(loss.name)
    if allowed is None:
        raise ConfigError(
            f"loss.name={_show(loss.name)} is not a known loss; known: "
            + ", ".join(sorted(LOSS_PARAMS))
        )
    for param, value in loss.params.items():
        if param not in allowed:
            raise ConfigError(
                f"loss.params: {loss.name} takes no parameter {param!r}; "
                f"allowed: {', '.join(sorted(allowed)) or 'none'}"
            )
        allowed[param].check(f"loss.params.{param}", value)


def _check_data_options(data: DataConfig) -> None:
    import inspect

    from keras_dhsps.data import DATASETS

    if data.name not in DATASETS:  # the live registry: it imports no TF
        raise ConfigError(
            f"data.name={_show(data.name)} is not a known dataset; known: "
            + ", ".join(sorted(DATASETS))
        )
    signature = inspect.signature(DATASETS[data.name])
    try:
        signature.bind(None, data.seed, **data.options)
    except TypeError:
        names = [
            p.name
            for p in list(signature.parameters.values())[2:]
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        ]
        unknown = sorted(set(data.options) - set(names))
        raise ConfigError(
            f"data.options: {data.name} takes no option "
            f"{', '.join(map(repr, unknown))}; allowed: {', '.join(names)}"
        ) from None


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
            f"{prefix.rstrip('.') or 'config'}={_show(values)} is not "
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
    return from_dict(values)


# ------------------------------------------------------- config files
class _SiblingFinder(importlib.abc.MetaPathFinder):
    """Finds top-level modules that are files in one directory (a config
    file's ``from common import ...``) without touching ``sys.path``."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.loaded: list[str] = []

    def find_spec(self, fullname, path=None, target=None):
        candidate = os.path.join(self.directory, f"{fullname}.py")
        if path is not None or "." in fullname:
            return None
        if not os.path.isfile(candidate):
            return None
        self.loaded.append(fullname)
        return importlib.util.spec_from_file_location(fullname, candidate)


@contextlib.contextmanager
def _private_imports(directory: str, main_name: str):
    """Config files and their siblings import as modules while the block
    runs; afterwards ``sys.modules`` is as it was (shadowed modules of the
    same names come back)."""
    siblings = {
        name[:-3]
        for name in os.listdir(directory)
        if name.endswith(".py") and name[:-3].isidentifier()
    }
    saved = {
        name: sys.modules.pop(name)
        for name in siblings | {main_name}
        if name in sys.modules
    }
    finder = _SiblingFinder(directory)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        for name in [*finder.loaded, main_name]:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def _config_file_module(path: str):
    main_name = "_keras_dhsps_config_file"
    spec = importlib.util.spec_from_file_location(main_name, path)
    if spec is None or spec.loader is None:
        raise DHSPSError(f"cannot import config file: {path}")
    module = importlib.util.module_from_spec(spec)
    with _private_imports(os.path.dirname(os.path.abspath(path)), main_name):
        sys.modules[main_name] = module
        try:
            spec.loader.exec_module(module)
        except (SyntaxError, ImportError) as error:
            # Not Python, or an import that fails: the user's file, one line.
            raise DHSPSError(
                f"cannot import config file {path}: "
                f"{type(error).__name__}: {error}"
            ) from None
    return module


def load_config_file(spec: str, expected: type):
    """Loads ``path/to/config.py[:arg]`` and returns ``get_config(arg)``.

    The file is imported by path, not through ``sys.path``; it may import
    modules beside it (``from common import ...``), which are found in its
    directory and dropped from ``sys.modules`` afterwards, so two config
    directories with a ``common.py`` each never see each other's.

    Args:
        spec: the file, optionally followed by ``:`` and the ``arg``.
        expected: the type ``get_config`` must return.

    Raises:
        DHSPSError: missing file, a file that does not import (syntax
            error, failing import), no ``get_config`` in it, an ``arg`` it
            refuses, or a result that is not an ``expected``. Other errors
            in the file's own code keep their traceback.
    """
    path, _, arg = spec.partition(":")
    if not os.path.isfile(path):
        raise DHSPSError(f"config file not found: {path}")
    module = _config_file_module(path)
    if not hasattr(module, "get_config"):
        raise DHSPSError(f"{path}: defines no get_config(arg=None)")
    config = module.get_config(arg or None)
    if not isinstance(config, expected):
        raise DHSPSError(
            f"{path}: get_config returned a {type(config).__name__}, "
            f"expected {expected.__name__}"
        )
    return config
