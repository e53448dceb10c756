"""The table config schema: methods × code lengths × seeds on one dataset.

A ``reproduce/configs/*.py`` file returns a :class:`TableConfig` from
``get_config(arg)``; this module loads and locates those files, applies
``key=value`` overrides, and derives each cell's experiment and cache key.
"""

from __future__ import annotations

import dataclasses
import os

from keras_dhsps.config import ExperimentConfig
from keras_dhsps.config import LossConfig
from keras_dhsps.config import config_hash
from keras_dhsps.config import load_config_file
from keras_dhsps.config import override
from keras_dhsps.config import to_dict
from keras_dhsps.utils.errors import DHSPSError

#: The repository's table configs: beside the package in a checkout, so
#: ``--table NAME`` works from any directory.
CONFIGS_DIR = os.path.join(
    os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ),
    "reproduce",
    "configs",
)


@dataclasses.dataclass(frozen=True)
class Method:
    """A row group of a table: a display label and how its codes are made.

    Exactly one of ``loss`` (a deep method: the hasher trained with this
    loss) and ``shallow`` (a name in ``keras_dhsps.experiments.shallow.SHALLOW_HASHERS``
    fit on the backbone's features of the training split) is set.
    """

    label: str
    loss: LossConfig | None = None
    shallow: str | None = None
    shallow_params: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.loss is None) == (self.shallow is None):
            raise ValueError(
                f"method {self.label!r}: set exactly one of loss and shallow"
            )


@dataclasses.dataclass(frozen=True)
class TableConfig:
    """A table: ``methods × bits × seeds`` cells sharing ``base``.

    Attributes:
        name: file-name-safe table name.
        title: one line for the Markdown header.
        base: the experiment every cell starts from.
        methods: the methods (losses) compared.
        bits: code lengths.
        seeds: training seeds; more than one gives mean ± std.
        metrics: metric keys shown in ``results.md`` (all are in JSON).
        reference: cited values to print beside ours, from
            :func:`keras_dhsps.experiments.references.load_reference` (the
            paper's own, or others' published re-runs, each under its own
            heading); None for none.
    """

    name: str
    title: str
    base: ExperimentConfig
    methods: tuple[Method, ...]
    bits: tuple[int, ...] = (12, 24, 32, 48)
    seeds: tuple[int, ...] = (0,)
    metrics: tuple[str, ...] = ("map@all", "ndcg@100")
    reference: dict | None = None


def load_table_config(spec: str) -> TableConfig:
    """Loads a table config file (``FILE.py[:arg]``); see
    :func:`keras_dhsps.config.load_config_file`."""
    return load_config_file(spec, TableConfig)


def table_config_path(name: str, configs_dir: str = CONFIGS_DIR) -> str:
    """The config file of table ``name`` (``<configs_dir>/<name>.py``).

    Raises:
        DHSPSError: no such table; the message lists the known ones.
    """
    path = os.path.join(configs_dir, f"{name}.py")
    if not os.path.isfile(path):
        known = list_tables(configs_dir) if os.path.isdir(configs_dir) else []
        raise DHSPSError(
            f"unknown table {name!r} (no {path}); known tables: "
            f"{', '.join(known) or 'none'}"
        )
    return path


def list_tables(configs_dir: str = CONFIGS_DIR) -> list[str]:
    """Names of the table configs in ``configs_dir`` (``common.py`` aside)."""
    return sorted(
        config_name(entry)
        for entry in os.listdir(configs_dir)
        if entry.endswith(".py") and entry != "common.py"
    )


def config_name(path: str) -> str:
    """The file name of a config without directory and extension."""
    return os.path.splitext(os.path.basename(path))[0]


def with_overrides(table: TableConfig, *assignments: str) -> TableConfig:
    """``table`` with ``"key=value"`` overrides applied to its base config."""
    if not assignments:
        return table
    try:
        base = override(table.base, *assignments)
    except (ValueError, TypeError) as error:
        raise DHSPSError(str(error)) from None
    return dataclasses.replace(table, base=base)


def table_cells(table: TableConfig):
    """Yields ``(method, bits, seed)`` of every cell, in table order."""
    for method in table.methods:
        for bits in table.bits:
            for seed in table.seeds:
                yield method, bits, seed


def cell_config(
    table: TableConfig, method: Method, bits: int, seed: int
) -> ExperimentConfig:
    """The experiment of one cell (a shallow method keeps the base loss).

    Cells always compute the tie-aware expected mAP (``eval.tie_aware``)
    beside the database-index order, so both are reported.
    """
    base = table.base
    return dataclasses.replace(
        base,
        name=f"{table.name}/{method.label}/{bits}bits/seed{seed}",
        loss=method.loss or base.loss,
        model=dataclasses.replace(base.model, bits=bits),
        train=dataclasses.replace(base.train, seed=seed),
        eval=dataclasses.replace(base.eval, tie_aware=True),
    )


def cell_key(table: TableConfig, method: Method, bits: int, seed: int) -> str:
    """The hash a cell's results are stored under: the experiment less its
    descriptive ``name``, and the shallow method if any, so tables that
    share a cell share its results."""
    experiment = to_dict(cell_config(table, method, bits, seed))
    experiment.pop("name")
    return config_hash(
        {
            "experiment": experiment,
            "shallow": method.shallow,
            "shallow_params": method.shallow_params,
        }
    )
