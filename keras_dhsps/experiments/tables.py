"""Result tables: train every cell of a table, evaluate, write the results.

A table is methods × code lengths × seeds on one dataset, described by a
:class:`TableConfig` that a ``reproduce/configs/*.py`` file returns from
``get_config(arg)``. :func:`run_table` trains and evaluates each cell with
the one training loop (:func:`keras_dhsps.training.fit.fit`), and writes into the
output directory:

* ``cells/<config hash>.json``: one finished cell (config, metrics, curves,
  history, seconds). Cells already there are not recomputed, so an
  interrupted table resumes where it stopped.
* ``results.json``: every number, each cell's config, and the aggregated
  mean ± std per method and code length;
* ``results.md``: the Markdown table (method × bits, one column per metric;
  every mAP twice: database-index order, the peers' convention, and the
  tie-aware expectation, which does not depend on the order of the
  database list; cited reference values with their sources under it);
* ``pr_curve.png``: precision-recall curves by Hamming radius, one panel
  per code length, one line per method (first seed).

All files are written atomically.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time

from keras_dhsps.config import ExperimentConfig
from keras_dhsps.config import LossConfig
from keras_dhsps.config import config_hash
from keras_dhsps.config import load_config_file
from keras_dhsps.config import to_dict
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import read_json
from keras_dhsps.utils.files import write_json
from keras_dhsps.utils.files import write_text


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
            :func:`load_reference` (the paper's own, or others' published
            re-runs, each under its own heading); None for none.
    """

    name: str
    title: str
    base: ExperimentConfig
    methods: tuple[Method, ...]
    bits: tuple[int, ...] = (12, 24, 32, 48)
    seeds: tuple[int, ...] = (0,)
    metrics: tuple[str, ...] = ("map@all", "ndcg@100")
    reference: dict | None = None


#: Reference kinds and the column heading each gets. ``paper`` values come
#: from the IDHN paper itself; ``rerun`` values are others' published
#: re-runs of IDHN (never headed "paper").
REFERENCE_COLUMNS = {
    "paper": "paper",
    "rerun": "reported by others (re-run)",
}
#: Fields every entry needs, and those a ``rerun`` entry adds (a re-run is
#: only comparable with its protocol and backbone stated).
_REFERENCE_FIELDS = {"method", "bits", "metric", "value", "source"}
_RERUN_FIELDS = {"protocol", "backbone"}


def load_reference(*paths: str) -> dict:
    """Reads reference-values JSON files into ``{(method, bits, metric):
    [entry, ...]}``, each entry ``{"value", "source", "kind", "protocol",
    "backbone"}`` (the last two None for the paper).

    A file holds ``{"note": str, "kind": "paper" | "rerun", "values":
    [{"method", "bits", "metric", "value", "source"[, "protocol",
    "backbone"]}, ...]}``; ``kind`` defaults to ``"paper"``, and ``rerun``
    entries also need ``protocol`` and ``backbone``. Every value must cite
    where it came from. Cells with no entry stay empty: nothing is invented.

    Raises:
        DHSPSError: missing file, unknown kind, or an entry lacking a field
            or with an empty source.
    """
    reference = {}
    for path in paths:
        if not os.path.isfile(path):
            raise DHSPSError(f"reference file not found: {path}")
        document = read_json(path)
        kind = document.get("kind", "paper")
        if kind not in REFERENCE_COLUMNS:
            raise DHSPSError(
                f"{path}: kind={kind!r}; allowed: {', '.join(REFERENCE_COLUMNS)}"
            )
        required = _REFERENCE_FIELDS | (
            _RERUN_FIELDS if kind == "rerun" else set()
        )
        for number, entry in enumerate(document.get("values", []), start=1):
            missing = sorted(required - set(entry)) or [
                field
                for field in sorted(required - {"value", "bits"})
                if not str(entry[field]).strip()
            ]
            if missing:
                raise DHSPSError(f"{path}: entry {number} lacks {missing}")
            key = (entry["method"], int(entry["bits"]), entry["metric"])
            reference.setdefault(key, []).append(
                {
                    "value": float(entry["value"]),
                    "source": entry["source"],
                    "kind": kind,
                    "protocol": entry.get("protocol"),
                    "backbone": entry.get("backbone"),
                }
            )
    return reference


def load_table_config(spec: str) -> TableConfig:
    """Loads a table config file (``FILE.py[:arg]``); see
    :func:`keras_dhsps.config.load_config_file`."""
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
    """The experiment of one cell (a shallow method keeps the base loss).

    Table cells always compute the tie-aware expected mAP
    (``eval.tie_aware``) beside the database-index order: with short codes
    many items share a Hamming distance, and index order then ranks them by
    the order of a list file (on a database sorted by class it moves
    mAP@1000 by 0.02 at 12 bits with random codes), so both are reported.
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
    cell = {"config": to_dict(config)}
    if method.shallow is not None:
        from keras_dhsps.experiments.shallow import fit_and_evaluate

        cell["shallow"] = {
            "name": method.shallow,
            "params": method.shallow_params,
        }
        report = fit_and_evaluate(
            method.shallow, method.shallow_params, config, dataset
        )
        history, seconds = {}, report["train_seconds"]
    else:
        from keras_dhsps.retrieval.evaluation import evaluate_retrieval
        from keras_dhsps.training.fit import fit

        result = fit(config, dataset=dataset, data_root=data_root, verbose=0)
        report = evaluate_retrieval(
            result.model,
            result.dataset,
            config.eval,
            input_config=config.input,
        )
        history, seconds = result.history, result.seconds
    return {
        **cell,
        "metrics": report["metrics"],
        "curves": report["curves"],
        "counts": report["counts"],
        "history": history,
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


def _ours(row: dict, key: str, seeds: int) -> str:
    stats = row["metrics"].get(key)
    if stats is None:
        return "—"
    text = f"{stats['mean']:.4f}"
    return text + (f" ± {stats['std']:.4f}" if seeds > 1 else "")


def _reference_kinds(reference: dict) -> list[str]:
    present = {
        entry["kind"] for entries in reference.values() for entry in entries
    }
    return [kind for kind in REFERENCE_COLUMNS if kind in present] or ["paper"]


def _referenced(table, key: str) -> bool:
    """Whether metric ``key`` gets reference and Δ columns: every metric of
    a table whose reference file is still empty (room for the values),
    else the metrics that have a cited value."""
    reference = table.reference
    if reference is None:
        return False
    return not reference or any(metric == key for _, _, metric in reference)


def _footnote(entry: dict, sources: list) -> str:
    """``[n]``: the entry's source number, in order of first use."""
    cited = (entry["source"], entry["protocol"], entry["backbone"])
    if cited not in sources:
        sources.append(cited)
    return f"[{sources.index(cited) + 1}]"


def _metric_cells(table, row: dict, key: str, sources: list) -> list[str]:
    """The columns of one metric: [reference columns,] ours (index order),
    [ours tie-aware, for mAP,] [Δ = ours − the one reference value]."""
    ours = [_ours(row, key, len(table.seeds))]
    if key.startswith("map@"):
        ours.append(_ours(row, f"{key}/tie_mean", len(table.seeds)))
    if not _referenced(table, key):
        return ours
    entries = table.reference.get((row["method"], row["bits"], key), [])
    cells = []
    for kind in _reference_kinds(table.reference):
        cited = [
            f"{entry['value']:.4f} {_footnote(entry, sources)}"
            for entry in entries
            if entry["kind"] == kind
        ]
        cells.append(" / ".join(cited) or "—")
    stats = row["metrics"].get(key)
    delta = "—"
    if len(entries) == 1 and stats is not None:
        delta = f"{stats['mean'] - entries[0]['value']:+.4f}"
    return cells + ours + [delta]


def _headers(table) -> list[str]:
    headers = []
    for key in table.metrics:
        referenced = _referenced(table, key)
        if referenced:
            headers += [
                f"{key} {REFERENCE_COLUMNS[kind]}"
                for kind in _reference_kinds(table.reference)
            ]
        headers.append(f"{key} ours" if referenced else key)
        if key.startswith("map@"):
            headers.append(f"{key} tie-aware")
        if referenced:
            headers.append(f"{key} Δ")
    return headers


def _notes(table, sources: list) -> list[str]:
    notes = [
        "",
        "mAP columns: database-index order breaks Hamming ties (the peers' "
        "convention, comparable with their numbers); *tie-aware* is the "
        "expectation over random orders within ties (He et al., CVPR 2018), "
        "which does not depend on the order of the database list.",
    ]
    if table.reference is None:
        return notes
    headings = ", ".join(
        f'"{REFERENCE_COLUMNS[kind]}"'
        for kind in _reference_kinds(table.reference)
    )
    if not sources:
        return notes + [
            "",
            f"Column {headings}: no value transcribed yet (— = no cited "
            "value; none is invented).",
        ]
    notes += ["", f"Sources of column {headings} (Δ = ours − that value):"]
    for number, (source, protocol, backbone) in enumerate(sources, start=1):
        extra = "; ".join(x for x in (protocol, backbone) if x)
        notes.append(f"[{number}] {source}" + (f" — {extra}" if extra else ""))
    return notes


def render_markdown(table: TableConfig, summary: dict) -> str:
    """The Markdown table of :func:`summarize`'s rows, with the cited
    reference values and their sources under it."""
    plural = "s" if len(table.seeds) > 1 else ""
    headers = _headers(table)
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
    sources = []
    for row in summary["rows"]:
        cells = [
            cell
            for key in table.metrics
            for cell in _metric_cells(table, row, key, sources)
        ]
        lines.append(
            f"| {row['method']} | {row['bits']} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines + _notes(table, sources)) + "\n"


def _plot(table: TableConfig, cells: dict, path: str) -> None:
    from keras_dhsps.experiments.plots import plot_precision_recall

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
