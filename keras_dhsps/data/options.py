"""Checks a config's dataset (name and options) before any work is done."""

from __future__ import annotations

import inspect

# The package itself, read when called: keras_dhsps.data imports this
# module before it defines its DATASETS.
from keras_dhsps import data
from keras_dhsps.config.rules import show_value
from keras_dhsps.utils.errors import ConfigError


def check_options(data_config) -> None:
    """Raises :class:`ConfigError` unless ``data_config.name`` is in
    ``keras_dhsps.data.DATASETS`` and its loader takes each of
    ``data_config.options`` (a ``keras_dhsps.config.DataConfig``)."""
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
