"""A table's human-readable outputs: ``results.md`` and ``pr_curve.png``.

:func:`render_markdown` writes method × bits rows, one column per metric
(every mAP twice: database-index order and the tie-aware expectation),
with cited reference values, Δ and their sources under it.
:func:`plot_table` draws precision-recall curves by Hamming radius.
"""

from __future__ import annotations

from keras_dhsps.experiments.references import REFERENCE_COLUMNS
from keras_dhsps.experiments.table_config import TableConfig
from keras_dhsps.experiments.table_config import cell_key

_TIE_NOTE = (
    "mAP columns: database-index order breaks Hamming ties (the peers' "
    "convention, comparable with their numbers); *tie-aware* is the "
    "expectation over random orders within ties (He et al., CVPR 2018), "
    "which does not depend on the order of the database list."
)


def render_markdown(table: TableConfig, summary: dict) -> str:
    """The Markdown table of :func:`keras_dhsps.experiments.runner.summarize`'s
    rows, with the cited reference values and their sources under it."""
    headers = _headers(table)
    lines = [
        f"# {table.title}",
        "",
        _description(table),
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


def plot_table(table: TableConfig, cells: dict, path: str) -> None:
    """Precision-recall curves by Hamming radius: one panel per code
    length, one line per method (first seed)."""
    from keras_dhsps.experiments.plots import plot_precision_recall

    seed = table.seeds[0]
    panels = {
        f"{bits} bits": {
            method.label: cells[cell_key(table, method, bits, seed)]["curves"][
                "pr_by_radius"
            ]
            for method in table.methods
        }
        for bits in table.bits
    }
    plot_precision_recall(panels, path, title=table.title)


def _description(table: TableConfig) -> str:
    seeds = len(table.seeds)
    return (
        f"Dataset `{table.base.data.name}`; {seeds} seed"
        + ("s (mean ± std)" if seeds > 1 else "")
        + f"; {table.base.train.epochs} epochs; metrics on the query split "
        "against the database split; model = last epoch."
    )


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


def _referenced(table: TableConfig, key: str) -> bool:
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
    cells = [
        " / ".join(
            f"{entry['value']:.4f} {_footnote(entry, sources)}"
            for entry in entries
            if entry["kind"] == kind
        )
        or "—"
        for kind in _reference_kinds(table.reference)
    ]
    stats = row["metrics"].get(key)
    delta = "—"
    if len(entries) == 1 and stats is not None:
        delta = f"{stats['mean'] - entries[0]['value']:+.4f}"
    return cells + ours + [delta]


def _headers(table: TableConfig) -> list[str]:
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


def _notes(table: TableConfig, sources: list) -> list[str]:
    notes = ["", _TIE_NOTE]
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
