"""The table runner: train and evaluate every cell, write the results.

:func:`run_table` trains each cell with the one training loop
(:func:`keras_dhsps.training.fit.fit`) or fits a shallow baseline, and
writes atomically into the output directory ``cells/<key>.json`` (one
finished cell; an interrupted table resumes from them), ``results.json``
(every number, each cell's config, mean ± std per method and code length),
``results.md`` and ``pr_curve.png`` (:mod:`keras_dhsps.experiments.render`).
"""

from __future__ import annotations

import os
import statistics
import time

from keras_dhsps.config import ExperimentConfig
from keras_dhsps.config import to_dict
from keras_dhsps.experiments.render import plot_table
from keras_dhsps.experiments.render import render_markdown
from keras_dhsps.experiments.table_config import Method
from keras_dhsps.experiments.table_config import TableConfig
from keras_dhsps.experiments.table_config import cell_config
from keras_dhsps.experiments.table_config import cell_key
from keras_dhsps.experiments.table_config import table_cells
from keras_dhsps.utils.files import read_json
from keras_dhsps.utils.files import write_json
from keras_dhsps.utils.files import write_text


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
    todo = list(table_cells(table))
    start = time.perf_counter()
    for done, (method, bits, seed) in enumerate(todo, start=1):
        key = cell_key(table, method, bits, seed)
        cells[key], status = _cached_or_run(
            os.path.join(cells_dir, f"{key}.json"),
            cell_config(table, method, bits, seed),
            method,
            dataset,
            data_root,
        )
        if progress is not None:
            mean_ap = cells[key]["metrics"].get("map@all")
            progress(
                done,
                len(todo),
                f"{method.label} {bits} bits seed {seed}: "
                f"mAP@all {mean_ap:.4f} ({status})",
            )
    results = {
        **summarize(table, cells),
        "dataset": dataset.summary(),
        "seconds": time.perf_counter() - start,
        "cells": dict(sorted(cells.items())),
    }
    _write_outputs(table, results, cells, output_dir)
    return results


def summarize(table: TableConfig, cells: dict) -> dict:
    """Mean ± std per method, code length and metric over seeds."""
    rows = []
    for method in table.methods:
        for bits in table.bits:
            runs = [
                cells[cell_key(table, method, bits, seed)]
                for seed in table.seeds
            ]
            rows.append(
                {
                    "method": method.label,
                    "bits": bits,
                    "seeds": list(table.seeds),
                    "metrics": {
                        key: _aggregate([run["metrics"][key] for run in runs])
                        for key in sorted(runs[0]["metrics"])
                    },
                    "train_seconds": _aggregate(
                        [run["train_seconds"] for run in runs]
                    ),
                }
            )
    return {"table": table.name, "title": table.title, "rows": rows}


def _cached_or_run(
    path: str, config: ExperimentConfig, method: Method, dataset, data_root
) -> tuple[dict, str]:
    """The cell stored at ``path``, else computed and stored; with a
    status for the progress line ("cached" or the training seconds)."""
    if os.path.exists(path):
        return read_json(path), "cached"
    cell = _run_cell(config, method, dataset, data_root)
    write_json(path, cell)
    return cell, f"{cell['train_seconds']:.0f}s"


def _run_cell(
    config: ExperimentConfig, method: Method, dataset, data_root
) -> dict:
    """Trains (or fits) and evaluates one cell; returns its record."""
    if method.shallow is not None:
        cell, report, history, seconds = _run_shallow(config, method, dataset)
    else:
        cell, report, history, seconds = _run_deep(config, dataset, data_root)
    return {
        **cell,
        "metrics": report["metrics"],
        "curves": report["curves"],
        "counts": report["counts"],
        "history": history,
        "train_seconds": seconds,
    }


def _run_shallow(config: ExperimentConfig, method: Method, dataset):
    from keras_dhsps.experiments.shallow import fit_and_evaluate

    cell = {
        "config": to_dict(config),
        "shallow": {"name": method.shallow, "params": method.shallow_params},
    }
    report = fit_and_evaluate(
        method.shallow, method.shallow_params, config, dataset
    )
    return cell, report, {}, report["train_seconds"]


def _run_deep(config: ExperimentConfig, dataset, data_root):
    from keras_dhsps.retrieval.evaluation import evaluate_retrieval
    from keras_dhsps.training.fit import fit

    result = fit(config, dataset=dataset, data_root=data_root, verbose=0)
    report = evaluate_retrieval(
        result.model, result.dataset, config.eval, input_config=config.input
    )
    cell = {"config": to_dict(config)}
    return cell, report, result.history, result.seconds


def _aggregate(values: list[float]) -> dict:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "values": values,
    }


def _write_outputs(
    table: TableConfig, results: dict, cells: dict, output_dir: str
) -> None:
    """``results.json``, ``results.md`` and ``pr_curve.png``."""
    write_json(os.path.join(output_dir, "results.json"), results)
    summary = {key: results[key] for key in ("table", "title", "rows")}
    write_text(
        os.path.join(output_dir, "results.md"), render_markdown(table, summary)
    )
    plot_table(table, cells, os.path.join(output_dir, "pr_curve.png"))
