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
import os
import statistics
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
    """A row group of a table: a display label and its loss."""

    label: str
    loss: LossConfig


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
    """

    name: str
    title: str
    base: ExperimentConfig
    methods: tuple[Method, ...]
    bits: tuple[int, ...] = (12, 24, 32, 48)
    seeds: tuple[int, ...] = (0,)
    metrics: tuple[str, ...] = ("map@all", "ndcg@100")


def load_table_config(spec: str) -> TableConfig:
    """Loads ``path/to/config.py[:arg]`` and returns ``get_config(arg)``.

    Raises:
        DHSPSError: missing file, or no ``get_config`` in it.
    """
    path, _, arg = spec.partition(":")
    if not os.path.isfile(path):
        raise DHSPSError(f"config file not found: {path}")
    module_name = "keras_dhsps_config_" + config_name(path)
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise DHSPSError(f"cannot import config file: {path}")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise DHSPSError(f"{path}: defines no get_config(arg=None)")
    return module.get_config(arg or None)


def config_name(path: str) -> str:
    """The file name of a config without directory and extension."""
    return os.path.splitext(os.path.basename(path))[0]


def cell_config(
    table: TableConfig, method: Method, bits: int, seed: int
) -> ExperimentConfig:
    """The experiment of one cell."""
    base = table.base
    return dataclasses.replace(
        base,
        name=f"{table.name}/{method.label}/{bits}bits/seed{seed}",
        loss=method.loss,
        model=dataclasses.replace(base.model, bits=bits),
        train=dataclasses.replace(base.train, seed=seed),
    )


def _cells(table: TableConfig):
    for method in table.methods:
        for bits in table.bits:
            for seed in table.seeds:
                yield method, bits, seed


def _run_cell(config: ExperimentConfig, dataset, data_root) -> dict:
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
                cells[config_hash(cell_config(table, method, bits, seed))]
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
    lines = [
        f"# {table.title}",
        "",
        f"Dataset `{table.base.data.name}`; {len(table.seeds)} seed{plural}"
        + (" (mean ± std)" if len(table.seeds) > 1 else "")
        + f"; {table.base.train.epochs} epochs; metrics on the query split "
        "against the database split; model = last epoch.",
        "",
        "| method | bits | " + " | ".join(table.metrics) + " |",
        "|---|---:|" + "---:|" * len(table.metrics),
    ]
    for row in summary["rows"]:
        cells = []
        for key in table.metrics:
            stats = row["metrics"][key]
            text = f"{stats['mean']:.4f}"
            if len(table.seeds) > 1:
                text += f" ± {stats['std']:.4f}"
            cells.append(text)
        lines.append(
            f"| {row['method']} | {row['bits']} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def _plot(table: TableConfig, cells: dict, path: str) -> None:
    from keras_dhsps.plots import plot_precision_recall

    seed = table.seeds[0]
    panels = {}
    for bits in table.bits:
        panels[f"{bits} bits"] = {
            method.label: cells[
                config_hash(cell_config(table, method, bits, seed))
            ]["curves"]["pr_by_radius"]
            for method in table.methods
        }
    plot_precision_recall(panels, path, title=table.title)


def run_table(
    table: TableConfig,
    output_dir: str,
    *,
    data_root: str | None = None,
    progress=None,
) -> dict:
    """Trains and evaluates every cell of ``table``; writes the results.

    Args:
        table: the table.
        output_dir: where results go (created if missing).
        data_root: dataset directory for datasets read from disk.
        progress: optional ``progress(done, total, message)`` callable.

    Returns:
        The contents written to ``results.json``.
    """
    from keras_dhsps.data import load_dataset

    base = table.base
    dataset = load_dataset(
        base.data.name, root=data_root, seed=base.data.seed, **base.data.options
    )
    cells_dir = os.path.join(output_dir, "cells")
    cells = {}
    todo = list(_cells(table))
    start = time.perf_counter()
    for done, (method, bits, seed) in enumerate(todo):
        config = cell_config(table, method, bits, seed)
        key = config_hash(config)
        path = os.path.join(cells_dir, f"{key}.json")
        if os.path.exists(path):
            cells[key] = read_json(path)
            status = "cached"
        else:
            cells[key] = _run_cell(config, dataset, data_root)
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
