"""Result tables: train every cell of a table, evaluate, write the results.

A table is methods × code lengths × seeds on one dataset, described by a
:class:`TableConfig` that a ``reproduce/configs/*.py`` file returns from
``get_config(arg)``. :func:`run_table` trains and evaluates each cell with
the one training loop (:func:`keras_dhsps.train.fit`), and writes into the
output directory:

* ``cells/<config hash>.json``: one finished cell (config, metrics, curves,
  history, seconds). Cells already there are not recomputed, so an
  interrupted table resumes where it stopped.
* ``results.json``: every number, each cell's config, and the aggregated
  mean ± std per method and code length;
* ``results.md``: the Markdown table (method × bits, one column per metric);
* ``pr_curve.png``: precision-recall curves by Hamming radius, one panel
  per code length, one line per method (first seed).

All files are written atomically.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import os
import statistics
import sys
import time

from keras_dhsps.config import ExperimentConfig
from keras_dhsps.config import LossConfig
from keras_dhsps.config import config_hash
from keras_dhsps.config import to_dict
from keras_dhsps.errors import DHSPSError
from keras_dhsps.io_utils import read_json
from keras_dhsps.io_utils import write_json
from keras_dhsps.io_utils import write_text


@dataclasses.dataclass(frozen=True)
class Method:
    """A row group of a table: a display label and how its codes are made.

    Exactly one of ``loss`` (a deep method: the hasher trained with this
    loss) and ``shallow`` (a name in ``keras_dhsps.shallow.SHALLOW_HASHERS``
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
        reference: published values to print beside ours, from
            :func:`load_reference`; None for tables with no paper column.
    """

    name: str
    title: str
    base: ExperimentConfig
    methods: tuple[Method, ...]
    bits: tuple[int, ...] = (12, 24, 32, 48)
    seeds: tuple[int, ...] = (0,)
    metrics: tuple[str, ...] = ("map@all", "ndcg@100")
    reference: dict | None = None


def load_reference(path: str) -> dict:
    """Reads a reference-values JSON file into ``{(method, bits, metric):
    {"value", "source"}}``.

    The file holds ``{"note": str, "values": [{"method", "bits", "metric",
    "value", "source"}, ...]}``; every value must cite where it came from.
    Cells with no entry stay empty in the table: nothing is invented.

    Raises:
        DHSPSError: missing file, or an entry without a value or a source.
    """
    if not os.path.isfile(path):
        raise DHSPSError(f"reference file not found: {path}")
    entries = read_json(path).get("values", [])
    reference = {}
    for number, entry in enumerate(entries, start=1):
        missing = {"method", "bits", "metric", "value", "source"} - set(entry)
        if missing or not str(entry.get("source", "")).strip():
            raise DHSPSError(
                f"{path}: entry {number} lacks {sorted(missing) or ['source']}"
            )
        key = (entry["method"], int(entry["bits"]), entry["metric"])
        reference[key] = {
            "value": float(entry["value"]),
            "source": entry["source"],
        }
    return reference


def load_config_file(spec: str, expected: type):
    """Loads ``path/to/config.py[:arg]`` and returns ``get_config(arg)``.

    Args:
        spec: the file, optionally followed by ``:`` and the ``arg``.
        expected: the type ``get_config`` must return.

    Raises:
        DHSPSError: missing file, no ``get_config`` in it, or a result that
            is not an ``expected``.
    """
    path, _, arg = spec.partition(":")
    if not os.path.isfile(path):
        raise DHSPSError(f"config file not found: {path}")
    module_name = "keras_dhsps_config_" + config_name(path)
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise DHSPSError(f"cannot import config file: {path}")
    module = importlib.util.module_from_spec(module_spec)
    # Configs may import their siblings (``from common import ...``).
    directory = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, directory)
    try:
        module_spec.loader.exec_module(module)
    finally:
        sys.path.remove(directory)
    if not hasattr(module, "get_config"):
        raise DHSPSError(f"{path}: defines no get_config(arg=None)")
    config = module.get_config(arg or None)
    if not isinstance(config, expected):
        raise DHSPSError(
            f"{path}: get_config returned a {type(config).__name__}, "
            f"expected {expected.__name__}"
        )
    return config


def load_table_config(spec: str) -> TableConfig:
    """Loads a table config file (``FILE.py[:arg]``); see
    :func:`load_config_file`."""
    return load_config_file(spec, TableConfig)


def table_config_path(name: str, configs_dir: str = "reproduce/configs") -> str:
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


def list_tables(configs_dir: str = "reproduce/configs") -> list[str]:
    """Names of the table configs in ``configs_dir`` (``common.py`` aside)."""
    return sorted(
        config_name(entry)
        for entry in os.listdir(configs_dir)
        if entry.endswith(".py") and entry != "common.py"
    )


def with_overrides(table: TableConfig, *assignments: str) -> TableConfig:
    """``table`` with ``"key=value"`` overrides applied to its base config."""
    from keras_dhsps.config import override

    if not assignments:
        return table
    try:
        base = override(table.base, *assignments)
    except (ValueError, TypeError) as error:
        raise DHSPSError(str(error)) from None
    return dataclasses.replace(table, base=base)


def config_name(path: str) -> str:
    """The file name of a config without directory and extension."""
    return os.path.splitext(os.path.basename(path))[0]


def cell_config(
    table: TableConfig, method: Method, bits: int, seed: int
) -> ExperimentConfig:
    """The experiment of one cell (a shallow method keeps the base loss)."""
    base = table.base
    return dataclasses.replace(
        base,
        name=f"{table.name}/{method.label}/{bits}bits/seed{seed}",
        loss=method.loss or base.loss,
        model=dataclasses.replace(base.model, bits=bits),
        train=dataclasses.replace(base.train, seed=seed),
    )


def cell_key(table: TableConfig, method: Method, bits: int, seed: int) -> str:
    """The hash a cell's results are stored under.

    It covers everything that determines the result (the experiment less
    its descriptive ``name``, and the shallow method if any), so tables that
    share a cell share its results.
    """
    experiment = to_dict(cell_config(table, method, bits, seed))
    experiment.pop("name")
    return config_hash(
        {
            "experiment": experiment,
            "shallow": method.shallow,
            "shallow_params": method.shallow_params,
        }
    )


def _cells(table: TableConfig):
    for method in table.methods:
        for bits in table.bits:
            for seed in table.seeds:
                yield method, bits, seed


def _run_cell(
    config: ExperimentConfig, method: Method, dataset, data_root
) -> dict:
    if method.shallow is not None:
        return _run_shallow_cell(config, method, dataset)
    from keras_dhsps.evaluation import evaluate_retrieval
    from keras_dhsps.train import fit

    result = fit(config, dataset=dataset, data_root=data_root, verbose=0)
    report = evaluate_retrieval(result.model, result.dataset, config.eval)
    return {
        "config": to_dict(config),
        "metrics": report["metrics"],
        "curves": report["curves"],
        "counts": report["counts"],
        "history": result.history,
        "train_seconds": result.seconds,
    }


def _run_shallow_cell(
    config: ExperimentConfig, method: Method, dataset
) -> dict:
    """Fits a shallow hasher on backbone features of the training split."""
    import keras

    from keras_dhsps.evaluation import encode
    from keras_dhsps.evaluation import report_from_codes
    from keras_dhsps.models import build_feature_extractor
    from keras_dhsps.shallow import SHALLOW_HASHERS

    keras.utils.set_random_seed(config.train.seed)
    extractor = build_feature_extractor(
        config.model.backbone,
        image_size=config.model.image_size,
        weights=config.model.backbone_weights,
    )
    features = {
        name: encode(extractor, dataset.split(name))
        for name in ("train", "query", "database")
    }
    start = time.perf_counter()
    hasher_class = SHALLOW_HASHERS[method.shallow]
    params = dict(method.shallow_params)
    if "seed" in inspect.signature(hasher_class).parameters:
        params.setdefault("seed", config.train.seed)  # SH is deterministic
    hasher = hasher_class(config.model.bits, **params).fit(
        features["train"], dataset.split("train").labels
    )
    seconds = time.perf_counter() - start
    report = report_from_codes(
        hasher.encode(features["query"]),
        dataset.split("query").labels,
        hasher.encode(features["database"]),
        dataset.split("database").labels,
        config.eval,
    )
    return {
        "config": to_dict(config),
        "shallow": {"name": method.shallow, "params": method.shallow_params},
        "metrics": report["metrics"],
        "curves": report["curves"],
        "counts": report["counts"],
        "history": {},
        "train_seconds": seconds,
    }


def _aggregate(values: list[float]) -> dict:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "values": values,
    }


def summarize(table: TableConfig, cells: dict) -> dict:
    """Mean ± std per method, code length and metric over seeds."""
    rows = []
    for method in table.methods:
        for bits in table.bits:
            runs = [
                cells[cell_key(table, method, bits, seed)]
                for seed in table.seeds
            ]
            keys = sorted(runs[0]["metrics"])
            rows.append(
                {
                    "method": method.label,
                    "bits": bits,
                    "seeds": list(table.seeds),
                    "metrics": {
                        key: _aggregate([run["metrics"][key] for run in runs])
                        for key in keys
                    },
                    "train_seconds": _aggregate(
                        [run["train_seconds"] for run in runs]
                    ),
                }
            )
    return {"table": table.name, "title": table.title, "rows": rows}


def render_markdown(table: TableConfig, summary: dict) -> str:
    """The Markdown table of :func:`summarize`'s rows."""
    plural = "s" if len(table.seeds) > 1 else ""
    reference = table.reference
    if reference is None:
        headers = list(table.metrics)
    else:
        headers = [
            f"{metric} {column}"
            for metric in table.metrics
            for column in ("paper", "ours", "Δ")
        ]
    lines = [
        f"# {table.title}",
        "",
        f"Dataset `{table.base.data.name}`; {len(table.seeds)} seed{plural}"
        + (" (mean ± std)" if len(table.seeds) > 1 else "")
        + f"; {table.base.train.epochs} epochs; metrics on the query split "
        "against the database split; model = last epoch.",
        "",
        "| method | bits | " + " | ".join(headers) + " |",
        "|---|---:|" + "---:|" * len(headers),
    ]
    for row in summary["rows"]:
        cells = []
        for key in table.metrics:
            stats = row["metrics"].get(key)
            ours = "—" if stats is None else f"{stats['mean']:.4f}"
            if stats is not None and len(table.seeds) > 1:
                ours += f" ± {stats['std']:.4f}"
            if reference is None:
                cells.append(ours)
                continue
            paper = reference.get((row["method"], row["bits"], key))
            if paper is None or stats is None:
                cells.extend(
                    [
                        "—" if paper is None else f"{paper['value']:.4f}",
                        ours,
                        "—",
                    ]
                )
            else:
                delta = stats["mean"] - paper["value"]
                cells.extend([f"{paper['value']:.4f}", ours, f"{delta:+.4f}"])
        lines.append(
            f"| {row['method']} | {row['bits']} | " + " | ".join(cells) + " |"
        )
    if reference is not None:
        sources = sorted({entry["source"] for entry in reference.values()})
        lines += [
            "",
            "Paper column: "
            + ("; ".join(sources) if sources else "no value transcribed yet")
            + " (— = no cited value; none is invented).",
        ]
    return "\n".join(lines) + "\n"


def _plot(table: TableConfig, cells: dict, path: str) -> None:
    from keras_dhsps.plots import plot_precision_recall

    seed = table.seeds[0]
    panels = {}
    for bits in table.bits:
        panels[f"{bits} bits"] = {
            method.label: cells[cell_key(table, method, bits, seed)]["curves"][
                "pr_by_radius"
            ]
            for method in table.methods
        }
    plot_precision_recall(panels, path, title=table.title)


def run_table(
    table: TableConfig,
    output_dir: str,
    *,
    data_root: str | None = None,
    progress=None,
    cells_dir: str | None = None,
) -> dict:
    """Trains and evaluates every cell of ``table``; writes the results.

    Args:
        table: the table.
        output_dir: where results go (created if missing).
        data_root: dataset directory for datasets read from disk.
        progress: optional ``progress(done, total, message)`` callable.
        cells_dir: the cell cache (default ``<output_dir>/cells``); tables
            given the same one compute a shared cell once.

    Returns:
        The contents written to ``results.json``.
    """
    from keras_dhsps.data import load_configured_dataset

    dataset = load_configured_dataset(table.base.data, root=data_root)
    cells_dir = cells_dir or os.path.join(output_dir, "cells")
    cells = {}
    todo = list(_cells(table))
    start = time.perf_counter()
    for done, (method, bits, seed) in enumerate(todo):
        config = cell_config(table, method, bits, seed)
        key = cell_key(table, method, bits, seed)
        path = os.path.join(cells_dir, f"{key}.json")
        if os.path.exists(path):
            cells[key] = read_json(path)
            status = "cached"
        else:
            cells[key] = _run_cell(config, method, dataset, data_root)
            write_json(path, cells[key])
            status = f"{cells[key]['train_seconds']:.0f}s"
        if progress is not None:
            mean_ap = cells[key]["metrics"].get("map@all")
            progress(
                done + 1,
                len(todo),
                f"{method.label} {bits} bits seed {seed}: "
                f"mAP@all {mean_ap:.4f} ({status})",
            )
    summary = summarize(table, cells)
    results = {
        **summary,
        "dataset": dataset.summary(),
        "seconds": time.perf_counter() - start,
        "cells": {key: cell for key, cell in sorted(cells.items())},
    }
    write_json(os.path.join(output_dir, "results.json"), results)
    write_text(
        os.path.join(output_dir, "results.md"), render_markdown(table, summary)
    )
    _plot(table, cells, os.path.join(output_dir, "pr_curve.png"))
    return results
