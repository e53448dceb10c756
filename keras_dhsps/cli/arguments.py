"""Argument types and flags shared by several ``dhsps`` commands, and the
experiment config that ``train`` and ``evaluate`` build from them."""

from __future__ import annotations

import argparse
import json

from keras_dhsps.config import ExperimentConfig
from keras_dhsps.config import from_dict
from keras_dhsps.config import load_config_file
from keras_dhsps.config import override
from keras_dhsps.data.options import check_options
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import read_json_file

#: The dedicated flags of ``train`` and ``evaluate`` and the config keys
#: they set (``--set`` sets any key).
_CONFIG_FLAGS = (
    ("dataset", "data.name"),
    ("bits", "model.bits"),
    ("loss", "loss.name"),
    ("epochs", "train.epochs"),
    ("batch_size", "train.batch_size"),
    ("seed", "train.seed"),
)


def at_least(minimum: int):
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {minimum}, got {text!r}"
            )
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def formats(text: str) -> list[str]:
    """``--format``'s comma-separated figure formats (png, pdf, svg)."""
    values = [
        value.strip().lower() for value in text.split(",") if value.strip()
    ]
    allowed = {"png", "pdf", "svg"}
    unknown = [value for value in values if value not in allowed]
    if unknown or not values:
        raise DHSPSError(
            "--format takes a comma-separated list of "
            f"{', '.join(sorted(allowed))}; got {text!r}"
        )
    return values


def add_config_flags(parser) -> None:
    """``--config``, ``--dataset``, ``--data-root`` and ``--set``."""
    parser.add_argument(
        "--config",
        help="experiment config: a .py file with get_config(arg) "
        "(FILE.py[:ARG]) or a run's config.json",
    )
    parser.add_argument("--dataset", help="dataset name, e.g. digits-mosaic")
    parser.add_argument(
        "--data-root",
        "--root",
        dest="data_root",
        help="dataset directory (--root is an alias)",
    )
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set train.epochs=5 (repeatable)",
    )


def experiment_config(args) -> ExperimentConfig:
    """The config the flags of :func:`add_config_flags` (and ``train``'s
    dedicated ones) describe, every field validated."""
    if args.config is None:
        config = ExperimentConfig()
    elif args.config.split(":")[0].endswith(".json"):
        config = from_dict(read_json_file(args.config, "config file"))
    else:
        config = load_config_file(args.config, ExperimentConfig)
    assignments = list(args.set or [])
    for flag, key in _CONFIG_FLAGS:
        value = getattr(args, flag, None)
        if value is not None:
            assignments.append(f"{key}={json.dumps(value)}")
    config = override(config, *assignments)
    check_options(config.data)
    return config


def require_training(config) -> None:
    """``train`` and ``reproduce`` train: 0 epochs would write an untrained
    model (the library allows 0 to build the initial model)."""
    if config.train.epochs < 1:
        raise DHSPSError(
            f"train.epochs={config.train.epochs} is not allowed here; "
            "expected an integer >= 1"
        )
