"""Precision-recall plots (matplotlib, no display needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from keras_dhsps.io_utils import atomic_write  # noqa: E402


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
        1, count, figsize=(4.2 * count, 4.0), squeeze=False
    )
    recipe = ""
    for axis, (panel_title, lines) in zip(axes[0], panels.items(), strict=False):
        for label, curve in lines.items():
            axis.plot(curve["recall"], curve["precision"], marker=".", label=label)
            recipe = curve.get("recipe", recipe)
        axis.set_title(panel_title)
        axis.set_xlabel("recall")
        axis.set_ylabel("precision")
        axis.set_xlim(0.0, 1.0)
        axis.set_ylim(0.0, 1.05)
        axis.grid(alpha=0.3)
        axis.legend(loc="lower left", fontsize="small")
    figure.suptitle(title + (f"\n{recipe}" if recipe else ""), fontsize="small")
    figure.tight_layout()
    atomic_write(path, lambda temporary: figure.savefig(temporary, dpi=120, format=path.rsplit(".", 1)[-1]))
    plt.close(figure)
