"""What each config field may hold: :data:`RULES`, and the loss's params.

A :class:`Rule` is a test and the words that describe what it allows; a
bad value raises :class:`ConfigError` naming the key, the value and those
words, on one line. Loss parameters are checked against the loss's
constructor (:func:`keras_dhsps.config.registry.loss_parameters`) and, by name,
:data:`LOSS_PARAMETERS`.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import sys
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

from keras_dhsps.config import registry
from keras_dhsps.utils.errors import ConfigError

# The values of config fields whose code lives above config (the hasher,
# training, the image store): defined here, imported there.
#: ``model.activation`` (``keras_dhsps.models.hasher``).
ACTIVATIONS = ("tanh", "softsign")
#: ``train.precision`` (``keras_dhsps.training.fit``).
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
#: ``train.schedule`` (``keras_dhsps.training.optimizers``).
SCHEDULES = ("step", "cosine", "constant")
#: ``input.resize``: how images reach the stored size (the image store, the
#: pipeline and the export).
RESIZE_MODES = ("direct", "resize_crop", "shorter_side_crop")
#: ``input.store``: ``"memory"`` keeps a decoded store (in RAM or
#: memory-mapped), ``"none"`` decodes on every read.
STORES = ("memory", "none")


@dataclasses.dataclass(frozen=True)
class Rule:
    """What a field may hold: ``test(value)`` and its description."""

    allowed: str
    test: Callable[[Any], bool]

    def check(self, key: str, value: Any) -> None:
        """Raises :class:`ConfigError` unless ``value`` passes."""
        if not self.test(value):
            raise ConfigError(
                f"{key}={show_value(value)} is not allowed; "
                f"expected {self.allowed}"
            )


def show_value(value: Any) -> str:
    """``value`` as a user wrote it: JSON where it can be."""
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
        "one of " + ", ".join(show_value(c) for c in choices),
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


ANYTHING = Rule("any value", lambda value: True)
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
    # A dataset's name and options are checked against its loader by
    # keras_dhsps.data.options.check_options, where the config is used.
    "data.name": TEXT,
    "data.seed": integer(0),
    "data.options": MAPPING,
    "model.backbone": one_of(*sorted(registry.BACKBONES)),
    "model.bits": integer(1),
    "model.activation": one_of(*ACTIVATIONS),
    "model.image_size": optional(tuple_of(integer(1), "integers >= 1", 2)),
    "model.backbone_weights": optional(TEXT),
    "loss.name": TEXT,  # and a loss of keras_dhsps.config.registry.LOSS_CLASSES
    "loss.params": MAPPING,  # checked by check_loss_params
    # 0 builds the initial model without training (library use); the
    # CLI's train and reproduce ask for at least 1.
    "train.epochs": integer(0),
    "train.batch_size": integer(2),  # a batch of one has no pair
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

#: A loss parameter's rule, by its name: one meaning in every loss. A
#: parameter whose default is None may also be null; a parameter not
#: listed here (a plugin's) takes any value.
LOSS_PARAMETERS: dict[str, Rule] = {
    "beta": POSITIVE,
    "scale": POSITIVE,
    "continuation": POSITIVE,
    "epsilon": POSITIVE,
    "soft_weight": NON_NEGATIVE,
    "quantization_weight": NON_NEGATIVE,
    "margin": NON_NEGATIVE,
    "hard_low": PROBABILITY,
    "hard_high": PROBABILITY,
    "include_diagonal": BOOL,
    "apply_softsign": BOOL,
    "memory_size": integer(0),
    "seed": integer(0),
    "bits": integer(1),
    "num_classes": integer(1),
}


def loss_parameter_rules(name: str) -> dict[str, Rule] | None:
    """Loss ``name``'s keyword parameters -> their rules; None for a name
    that is neither the package's nor in a loaded
    ``keras_dhsps.losses.LOSSES`` (where a plugin registers)."""
    defaults = registry.loss_parameters(name)
    if defaults is None:
        defaults = _plugin_parameters(name)
    if defaults is None:
        return None
    return {
        param: _parameter_rule(param, default)
        for param, default in defaults.items()
    }


def _parameter_rule(param: str, default: Any) -> Rule:
    rule = LOSS_PARAMETERS.get(param, ANYTHING)
    return optional(rule) if default is None else rule


def _plugin_parameters(name: str) -> Mapping[str, Any] | None:
    """A loss added to ``keras_dhsps.losses.LOSSES`` at run time: its
    constructor's signature. Looked up only when that module is loaded,
    which registering a loss implies (so no Keras is imported here)."""
    plugins = getattr(sys.modules.get("keras_dhsps.losses"), "LOSSES", {})
    if name not in plugins:
        return None
    parameters = inspect.signature(plugins[name].__init__).parameters
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return {
        p.name: p.default
        for p in parameters.values()
        if p.name not in registry.NOT_LOSS_PARAMETERS and p.kind not in variadic
    }


def check_loss_params(name: str, params: dict) -> None:
    """Raises :class:`ConfigError` unless loss ``name`` is known and takes
    each of ``params`` with a value its rule allows."""
    rules = loss_parameter_rules(name)
    if rules is None:
        raise ConfigError(
            f"loss.name={show_value(name)} is not a known loss; known: "
            + ", ".join(sorted(registry.LOSS_CLASSES))
        )
    for param, value in params.items():
        if param not in rules:
            raise ConfigError(
                f"loss.params: {name} takes no parameter {param!r}; "
                f"allowed: {', '.join(sorted(rules)) or 'none'}"
            )
        rules[param].check(f"loss.params.{param}", value)
