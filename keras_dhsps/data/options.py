"""Checks a config's dataset (name, options, size) before any work is done.

Each option is checked by its name (:data:`OPTION_RULES`, declared once: a
name means the same in every dataset), else by the type of its default in
the loader's signature; a dataset generated in memory that would not fit
in this machine's memory is refused with its estimate.
"""

from __future__ import annotations

import inspect
import os

# The package itself, read when called: keras_dhsps.data imports this
# module before it defines its DATASETS.
from keras_dhsps import data
from keras_dhsps.config.rules import BOOL
from keras_dhsps.config.rules import TEXT
from keras_dhsps.config.rules import Rule
from keras_dhsps.config.rules import integer
from keras_dhsps.config.rules import number
from keras_dhsps.config.rules import one_of
from keras_dhsps.config.rules import optional
from keras_dhsps.config.rules import show_value
from keras_dhsps.utils.errors import ConfigError

#: What an option may hold, by name. A split that is scored or trained on
#: may not be empty; the validation split may (validation is then off).
OPTION_RULES: dict[str, Rule] = {
    "num_train": integer(2),
    "num_query": integer(1),
    "num_database": integer(1),
    "num_validation": integer(0),
    "validation_fraction": number(0, 1),
    "max_digits": one_of(1, 2, 3, 4),
    "num_labels": one_of(24, 38),
    "num_images": integer(1),
    "num_classes": integer(1),
    "top_k": integer(1),
    "lists_dir": optional(TEXT),
    "manifest_dir": optional(TEXT),
    "drop_unlabelled": BOOL,
    "include_difficult": BOOL,
    "year": one_of(2014, 2017),
}

#: Bytes of one generated image (uint8 H × W × 3) by dataset prefix.
_GENERATED_IMAGE_BYTES = {
    "digits-mosaic": 32 * 32 * 3,
    "label-mosaic": 32 * 32 * 3,
}


def check_options(data_config) -> None:
    """Raises :class:`ConfigError` unless ``data_config.name`` is in
    ``keras_dhsps.data.DATASETS`` and its loader takes each of
    ``data_config.options`` with an allowed value, and a generated dataset
    fits in memory (a ``keras_dhsps.config.DataConfig``)."""
    datasets = data.DATASETS
    if data_config.name not in datasets:
        raise ConfigError(
            f"data.name={show_value(data_config.name)} is not a known "
            "dataset; known: " + ", ".join(sorted(datasets))
        )
    signature = inspect.signature(datasets[data_config.name])
    try:
        signature.bind(None, data_config.seed, **data_config.options)
    except TypeError:
        raise ConfigError(_unknown_options(data_config, signature)) from None
    defaults = _defaults(signature)
    for name, value in data_config.options.items():
        _rule(name, defaults.get(name)).check(f"data.options.{name}", value)
    _check_memory(data_config.name, {**defaults, **data_config.options})


def _defaults(signature: inspect.Signature) -> dict:
    return {
        p.name: p.default
        for p in signature.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
        and p.default is not inspect.Parameter.empty
    }


def _rule(name: str, default) -> Rule:
    """The option's own rule, else one from its default's type."""
    if name in OPTION_RULES:
        return OPTION_RULES[name]
    if isinstance(default, bool):
        return BOOL
    if isinstance(default, int):
        return integer(0)
    if isinstance(default, float):
        return number(0)
    return Rule("any JSON value", lambda value: True)


def _unknown_options(data_config, signature: inspect.Signature) -> str:
    names = [
        p.name
        for p in list(signature.parameters.values())[2:]
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    unknown = sorted(set(data_config.options) - set(names))
    return (
        f"data.options: {data_config.name} takes no option "
        f"{', '.join(map(repr, unknown))}; allowed: {', '.join(names)}"
    )


def available_memory() -> int:
    """Bytes of memory available to a new allocation (Linux's
    ``MemAvailable``; elsewhere the physical memory)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _check_memory(name: str, options: dict) -> None:
    image_bytes = _GENERATED_IMAGE_BYTES.get(name.split(":")[0])
    if image_bytes is None:
        return
    count = sum(
        int(value)
        for key, value in options.items()
        if key.startswith("num_") and key != "num_labels"
    )
    needed, available = count * image_bytes, available_memory()
    if needed > available:
        raise ConfigError(
            f"data.options: {name} with {count:,} images needs about "
            f"{_size(needed)} of memory; {_size(available)} is available"
        )


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.2f} {unit}" if unit != "B" else f"{count} B"
        count /= 1024
    return f"{count} B"
