"""Retrieval plots with matplotlib (no display needed): PR and P@N curves,
and a grid of retrieval examples. The file format follows the extension of
the output path (PNG, PDF, SVG); every file is written atomically.

Curves come from ``keras_dhsps.metrics.retrieval_report(...)["curves"]``
(also saved in a run's ``report.json``); each carries a ``"recipe"`` string
naming its conventions, printed under the figure title.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from keras_dhsps.utils.errors import DHSPSError  # noqa: E402
from keras_dhsps.utils.files import atomic_write  # noqa: E402

#: Output formats ``dhsps plot`` writes by default.
DEFAULT_FORMATS = ("png", "pdf")


def _save(figure, path: str) -> None:
    extension = os.path.splitext(path)[1].lstrip(".").lower()
    if not extension:
        raise DHSPSError(
            f"{path}: give the plot file an extension (.png, .pdf)"
        )
    atomic_write(
        path,
        lambda temporary: figure.savefig(temporary, dpi=120, format=extension),
    )
    plt.close(figure)


def _recipe_title(title: str, recipes: list[str], width: float) -> str:
    """The title and the curves' recipes, wrapped to a figure ``width``
    inches wide (a long recipe on one line was cut off on both sides)."""
    import textwrap

    # "small" text is ~10 pt; an average character is ~0.55 em wide.
    columns = max(int(width * 72 / (10 * 0.55)), 20)
    unique = list(dict.fromkeys(r for r in recipes if r))
    lines = [
        line
        for text in [title, *unique]
        for line in textwrap.wrap(text, columns)
    ]
    return "\n".join(lines)


def _short_name(path: str, limit: int = 18) -> str:
    """A file name cut in the middle to ``limit`` characters."""
    name = os.path.basename(path)
    if len(name) <= limit:
        return name
    keep = limit - 1
    return name[: (keep + 1) // 2] + "…" + name[-(keep // 2) :]


def plot_precision_recall(panels: dict, path: str, *, title: str = "") -> None:
    """Draws precision-recall curves, one panel per key of ``panels``.

    Args:
        panels: panel title -> {line label -> curve}, each curve a dict with
            ``"precision"``, ``"recall"`` lists and a ``"recipe"`` string
            (as in ``retrieval_report(...)["curves"]``).
        path: output file; the format follows its extension (PNG, PDF).
        title: figure title.
    """
    count = max(len(panels), 1)
    figure, axes = plt.subplots(
        1,
        count,
        figsize=(4.2 * count, 4.0),
        squeeze=False,
        layout="constrained",
    )
    recipes = []
    for axis, (panel_title, lines) in zip(
        axes[0], panels.items(), strict=False
    ):
        for label, curve in lines.items():
            axis.plot(
                curve["recall"], curve["precision"], marker=".", label=label
            )
            recipes.append(curve.get("recipe", ""))
        axis.set_title(panel_title)
        axis.set_xlabel("recall")
        axis.set_ylabel("precision")
        axis.set_xlim(0.0, 1.0)
        axis.set_ylim(0.0, 1.05)
        axis.grid(alpha=0.3)
        axis.legend(loc="lower left", fontsize="small")
    figure.suptitle(
        _recipe_title(title, recipes[-1:], 4.2 * count), fontsize="small"
    )
    _save(figure, path)


def _curves(results: Mapping[str, dict], key: str) -> dict[str, dict]:
    lines = {}
    for label, report in results.items():
        curves = report.get("curves") or {}
        if not isinstance(curves, dict) or not isinstance(
            curves.get(key), dict
        ):
            raise DHSPSError(
                f"result {label!r} has no {key!r} curve (evaluate with "
                "curves enabled)"
            )
        lines[label] = curves[key]
    return lines


def plot_pr_curves(
    results: Mapping[str, dict], path: str, *, title: str = ""
) -> None:
    """PR curves of several methods, by Hamming radius and by rank.

    Args:
        results: line label -> a retrieval report (with ``"curves"``).
        path: output file (PNG, PDF, ...).
        title: figure title.

    Raises:
        DHSPSError: a report without the PR curves.
    """
    plot_precision_recall(
        {
            "PR by Hamming radius": _curves(results, "pr_by_radius"),
            "PR by rank": _curves(results, "pr_by_rank"),
        },
        path,
        title=title,
    )


def plot_precision_at_n(
    results: Mapping[str, dict], path: str, *, title: str = ""
) -> None:
    """Precision of the top N against N, one line per result.

    Args:
        results: line label -> a retrieval report (with ``"curves"``).
        path: output file (PNG, PDF, ...).
        title: figure title.
    """
    lines = _curves(results, "precision_at_n")
    figure, axis = plt.subplots(figsize=(5.0, 4.0), layout="constrained")
    for label, curve in lines.items():
        axis.plot(curve["n"], curve["precision"], marker=".", label=label)
    axis.set_xlabel("number of retrieved items N")
    axis.set_ylabel("precision@N")
    axis.set_ylim(0.0, 1.05)
    axis.grid(alpha=0.3)
    axis.legend(loc="lower left", fontsize="small")
    recipes = [curve.get("recipe", "") for curve in lines.values()]
    figure.suptitle(_recipe_title(title, recipes[-1:], 5.0), fontsize="small")
    _save(figure, path)


def _thumbnail(path: str, size: int) -> np.ndarray:
    """An RGB thumbnail; a grey square when the file cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((size, size))
            return np.asarray(image)
    except (OSError, ValueError):
        return np.full((size, size, 3), 128, dtype=np.uint8)


def plot_retrieval_examples(
    examples: Sequence[Mapping],
    path: str,
    *,
    title: str = "",
    thumbnail_size: int = 96,
) -> None:
    """A grid: one row per query, the query then its top results.

    Results known to be relevant get a green frame and a ``✓``, irrelevant
    ones a red frame and ``✗``; relevance ``None`` (labels unknown) gets
    no mark. Each result is captioned with its Hamming distance.

    Args:
        examples: one dict per query: ``{"query": image path, "results":
            [{"path": ..., "distance": int, "relevant": bool | None}, ...]}``.
        path: output file (PNG, PDF, ...).
        title: figure title.
        thumbnail_size: longest side of each thumbnail, in pixels.

    Raises:
        DHSPSError: no examples.
    """
    if not examples:
        raise DHSPSError("no retrieval examples to plot")
    columns = 1 + max(len(example["results"]) for example in examples)
    rows = len(examples)
    # Constrained layout keeps each row's captions (the query's file name
    # below it) clear of the next row's titles.
    figure, axes = plt.subplots(
        rows,
        columns,
        figsize=(1.6 * columns, 2.0 * rows),
        squeeze=False,
        layout="constrained",
    )
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
        for spine in axis.spines.values():
            spine.set_visible(False)
    for row, example in enumerate(examples):
        axis = axes[row, 0]
        axis.imshow(_thumbnail(example["query"], thumbnail_size))
        axis.set_title("query", fontsize="small")
        axis.set_xlabel(_short_name(example["query"]), fontsize="x-small")
        for column, result in enumerate(example["results"], start=1):
            axis = axes[row, column]
            axis.imshow(_thumbnail(result["path"], thumbnail_size))
            relevant = result.get("relevant")
            caption = f"d={int(result['distance'])}"
            if relevant is not None:
                color = "tab:green" if relevant else "tab:red"
                caption += " ✓" if relevant else " ✗"
                for spine in axis.spines.values():
                    spine.set_visible(True)
                    spine.set_color(color)
                    spine.set_linewidth(3)
            axis.set_title(caption, fontsize="small")
    if title:
        figure.suptitle(
            _recipe_title(title, [], 1.6 * columns), fontsize="small"
        )
    _save(figure, path)
