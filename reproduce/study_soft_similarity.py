"""The soft-similarity study (issue 15): label statistics, budgets, run.

Run from the repository root (``export PYTHONPATH=$PWD``):

    python reproduce/study_soft_similarity.py statistics
        # label_statistics.{json,md}: in-batch s_ij of each dataset's
        # synthetic train split beside the real label matrix (seconds)
    python reproduce/study_soft_similarity.py budgets
        # budgets.{json,png}: one training budget per dataset, chosen on
        # validation mAP curves up to 120 epochs (see the config's
        # docstring; 10 runs, ~1 h; finished runs are kept and skipped)
    python reproduce/study_soft_similarity.py run [--smoke]
        # every part of reproduce/configs/study_soft_similarity.py, then
        # study.{json,md} and soft_vs_gain.png
    python reproduce/study_soft_similarity.py compare
        # rerun.md: the cells finished at each part's budget, and for every
        # finished part IDHN − hard-only beside the 30-epoch run's
        # (30-epochs/study.json); trains nothing (seconds)

Outputs go to ``--output`` (default
``reproduce/results/study_soft_similarity``; ``run`` keeps each part's
table in ``<output>/<part>/`` and the cell cache in ``<output>/cells``,
so an interrupted run resumes).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, "configs", "study_soft_similarity.py")
DEFAULT_OUTPUT = os.path.join(HERE, "results", "study_soft_similarity")
METRICS = ("map@all", "map@all/tie_mean", "ndcg@100", "acg@100", "wap@100")
#: The budget runs: one per dataset and method, 48 bits, seed 0.
BUDGET_METHODS = {"IDHN": "idhn", "hard-only": "idhn_hard_only"}
BUDGET_EVERY = 10
BUDGET_MAX_EPOCHS = 120
BUDGET_TOLERANCE = 0.005
BUDGET_LOOKAHEAD = 2
#: The parts a smoke run covers: a few cells of each kind (digits-mosaic, a
#: label-mosaic, the γ sensitivity), so the tests stay under a minute.
SMOKE_PARTS = ("digits-mosaic", "mirflickr25k", "gamma")


def _config_module():
    spec = importlib.util.spec_from_file_location("study_config", CONFIG)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def label_statistics(output: str) -> dict:
    """Writes ``label_statistics.{json,md}``; returns the JSON content."""
    from keras_dhsps.data import load_dataset
    from keras_dhsps.data.label_mosaic import similarity_statistics
    from keras_dhsps.data.peers import peer_labels
    from keras_dhsps.utils.files import write_json
    from keras_dhsps.utils.files import write_text

    study = _config_module()
    rows = {}
    for part in study.DATASET_PARTS:
        synthetic = load_dataset(study.dataset_name(part), seed=0)
        rows[part] = {
            "synthetic train split": similarity_statistics(
                synthetic.split("train").labels
            )
        }
        if part != "digits-mosaic":
            rows[part]["real (peers' train list)"] = similarity_statistics(
                peer_labels(part, "train")
            )
        rows[part]["info"] = dict(synthetic.info)
    write_json(os.path.join(output, "label_statistics.json"), rows)
    write_text(
        os.path.join(output, "label_statistics.md"), _statistics_markdown(rows)
    )
    return rows


def _statistics_markdown(rows: dict) -> str:
    first = next(iter(rows.values()))["synthetic train split"]
    edges = first["histogram"]["edges"]
    bins = [f"[{a:g}, {b:g})" for a, b in zip(edges, edges[1:], strict=False)]
    bins[-1] = bins[-1][:-1] + "]"
    lines = [
        "# In-batch label similarity s_ij of the study's datasets",
        "",
        "Pairs i < j inside batches of 64 of a random order (the pairs a "
        "training step sees); s = |Y_i ∩ Y_j| / sqrt(|Y_i||Y_j|); hard: "
        "s < 0.01 (dissimilar) or s > 0.99 (identical), soft otherwise. "
        "Synthetic: the train split (2,000 rows) of the study's dataset, "
        "seed 0; real: every labelled row of the peers' train list.",
        "",
        "| dataset | labels of | classes | labels/image | dissimilar | "
        "identical | soft | " + " | ".join(bins) + " |",
        "|---|---|---:|---:|---:|---:|---:|" + "---:|" * len(bins),
    ]
    for part, sources in rows.items():
        for source, stats in sources.items():
            if source == "info":
                continue
            fractions = stats["histogram"]["fractions"]
            lines.append(
                f"| {part} | {source} | {stats['classes']} | "
                f"{stats['labels_per_image']:.2f} | {stats['dissimilar']:.3f}"
                f" | {stats['identical']:.3f} | {stats['soft']:.3f} | "
                + " | ".join(f"{value:.3f}" for value in fractions)
                + " |"
            )
    return "\n".join(lines) + "\n"


def choose_budget(val_maps: dict[int, float]) -> int | None:
    """The first checkpoint after which validation mAP rises by less than
    ``BUDGET_TOLERANCE`` over the next ``BUDGET_LOOKAHEAD`` checkpoints
    (the plateau); None when the curve is still rising at its end."""
    epochs = sorted(val_maps)
    for index, epoch in enumerate(epochs[:-BUDGET_LOOKAHEAD]):
        ahead = epochs[index + 1 : index + 1 + BUDGET_LOOKAHEAD]
        rise = max(val_maps[later] for later in ahead) - val_maps[epoch]
        if rise < BUDGET_TOLERANCE:
            return epoch
    return None


def budget_procedure(every: int, max_epochs: int) -> str:
    """The text of ``budgets.json``'s ``procedure``: a file whose procedure
    differs is not resumed from."""
    return (
        f"{', '.join(BUDGET_METHODS)}; 48 bits, seed 0; one run of "
        f"{max_epochs} epochs per dataset and method, validation mAP@all "
        "(validation split queries against the training images, never the "
        f"query split) every {every} epochs; a method's budget is the first "
        f"checkpoint after which validation mAP rises by less than "
        f"{BUDGET_TOLERANCE} over the next {BUDGET_LOOKAHEAD} checkpoints "
        "(the last checkpoint, flagged plateau: false, when there is none); "
        "the dataset's budget is the larger of its methods' budgets"
    )


def validation_curve(part, loss, *, every, max_epochs, smoke=False):
    """Validation mAP (checkpoint epoch -> mAP) of one run of ``loss`` on
    ``part`` (48 bits, seed 0), read every ``every`` epochs."""
    from keras_dhsps.config import LossConfig
    from keras_dhsps.training.fit import fit

    study = _config_module()
    base = study.base_experiment(part, max_epochs)
    data = base.data
    if smoke:
        data = dataclasses.replace(data, options=dict(study.SMOKE_DATA))
    config = dataclasses.replace(
        base,
        data=data,
        model=dataclasses.replace(base.model, bits=48),
        loss=LossConfig(loss),
        train=dataclasses.replace(base.train, validation_every=every),
    )
    history = fit(config, verbose=0).history
    epochs = range(every, max_epochs + 1, every)
    return dict(zip(epochs, history["val_map"], strict=True))


def _method_budget(curve: dict[int, float]) -> dict:
    chosen = choose_budget(curve)
    return {
        "epochs": max(curve) if chosen is None else chosen,
        "plateau": chosen is not None,
        "validation_map": {str(k): v for k, v in sorted(curve.items())},
    }


def _dataset_budget(methods: dict) -> dict:
    """A dataset's entry once every method has its curve: the larger of
    the methods' budgets."""
    return {
        "epochs": max(method["epochs"] for method in methods.values()),
        "plateau": all(method["plateau"] for method in methods.values()),
        "methods": methods,
    }


def _finished_budgets(path: str, procedure: str) -> dict:
    """The datasets (and methods) of an earlier ``budgets.json`` made by
    the same procedure; {} otherwise."""
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        earlier = json.load(handle)
    if earlier.get("procedure") != procedure:
        return {}
    return earlier["budgets"]


def select_budgets(
    output: str, *, smoke: bool = False, parts=None, curve=validation_curve
) -> dict:
    """Trains each method of ``BUDGET_METHODS`` once per dataset with
    validation mAP every 10 epochs up to 120 (smoke: every epoch up to 3);
    writes ``budgets.json`` and ``budgets.png`` after each run (so an
    interruption loses one run at most), skipping the runs an earlier
    ``budgets.json`` of this procedure holds."""
    from keras_dhsps.utils.files import write_json

    every, max_epochs = (1, 3) if smoke else (BUDGET_EVERY, BUDGET_MAX_EPOCHS)
    procedure = budget_procedure(every, max_epochs)
    path = os.path.join(output, "budgets.json")
    budgets = _finished_budgets(path, procedure)
    for part in parts or _config_module().DATASET_PARTS:
        methods = budgets.get(part, {}).get("methods", {})
        for method, loss in BUDGET_METHODS.items():
            if method in methods:
                continue
            methods[method] = _method_budget(
                curve(
                    part, loss, every=every, max_epochs=max_epochs, smoke=smoke
                )
            )
            print(f"{part} {method}: {methods[method]}", flush=True)
            budgets[part] = {"methods": methods}
            if len(methods) == len(BUDGET_METHODS):
                budgets[part] = _dataset_budget(methods)
            write_json(path, {"procedure": procedure, "budgets": budgets})
            plot_budgets(budgets, os.path.join(output, "budgets.png"))
    if budgets:  # also redraws the figure of a finished file
        plot_budgets(budgets, os.path.join(output, "budgets.png"))
    return {"procedure": procedure, "budgets": budgets}


def _save_png(figure, path: str) -> None:
    """Writes ``figure`` to ``path`` atomically, then closes it."""
    from keras_dhsps.experiments.plots import plt

    figure.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    figure.savefig(path + ".tmp.png", dpi=120)
    plt.close(figure)
    os.replace(path + ".tmp.png", path)


def plot_budgets(budgets: dict, path: str) -> None:
    """Validation mAP against epochs, one colour per dataset, IDHN solid and
    hard-only dashed; a star marks each method's budget."""
    from keras_dhsps.experiments.plots import plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    styles = dict(zip(BUDGET_METHODS, ("-", "--"), strict=True))
    for index, (part, entry) in enumerate(budgets.items()):
        colour = f"C{index}"
        for method, chosen in entry["methods"].items():
            curve = {int(k): v for k, v in chosen["validation_map"].items()}
            epochs = sorted(curve)
            axis.plot(
                epochs,
                [curve[epoch] for epoch in epochs],
                styles[method],
                color=colour,
                label=f"{part}, {method}",
            )
            axis.plot(
                chosen["epochs"], curve[chosen["epochs"]], "*", color=colour
            )
    axis.set_xlabel("epochs")
    axis.set_ylabel("validation mAP@all (48 bits, seed 0)")
    axis.set_title("budgets: ★ first checkpoint of the plateau", fontsize=9)
    axis.legend(fontsize=7, ncol=2)
    _save_png(figure, path)


def _soft_fractions(parts) -> dict[str, float]:
    """Fraction of soft in-batch pairs of each dataset's (full-size) train
    split, seed 0."""
    from keras_dhsps.data import load_dataset
    from keras_dhsps.data.label_mosaic import similarity_statistics

    study = _config_module()
    return {
        part: similarity_statistics(
            load_dataset(study.dataset_name(part), seed=0).split("train").labels
        )["soft"]
        for part in parts
    }


def difference_in_sd(first: dict, second: dict) -> float | None:
    """``(mean₁ − mean₂) / sqrt((sd₁² + sd₂²) / 2)``: a difference of two
    methods' seed means in pooled standard deviations; None when both
    spreads are zero (one seed)."""
    pooled = math.sqrt((first["std"] ** 2 + second["std"] ** 2) / 2)
    if pooled == 0:
        return None
    return (first["mean"] - second["mean"]) / pooled


def summarize_study(results: dict, soft: dict) -> dict:
    """``results``: part -> run_table's results. Per dataset and bits:
    every method's metrics and IDHN − hard-only in pooled sd."""
    rows = []
    for part, result in results.items():
        if part == "gamma":
            continue
        by_key = {(row["method"], row["bits"]): row for row in result["rows"]}
        for bits in sorted({row["bits"] for row in result["rows"]}):
            idhn = by_key[("IDHN", bits)]["metrics"]
            hard = by_key[("hard-only", bits)]["metrics"]
            rows.append(
                {
                    "dataset": part,
                    "bits": bits,
                    "soft_pairs": soft[part],
                    "idhn_minus_hard_only": {
                        key: {
                            "difference": idhn[key]["mean"] - hard[key]["mean"],
                            "in_sd": difference_in_sd(idhn[key], hard[key]),
                        }
                        for key in METRICS
                        if key in idhn and key in hard
                    },
                }
            )
    return {"rows": rows}


def _format_sd(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}"


def study_markdown(summary: dict) -> str:
    """The head of study.md: IDHN − hard-only per dataset and bits."""
    lines = [
        "# When does soft similarity help?",
        "",
        "IDHN − hard-only: difference of seed means, and in pooled standard "
        "deviations (sd) in brackets; soft pairs: fraction of in-batch "
        "pairs with 0.01 ≤ s ≤ 0.99 in the dataset's train split.",
        "",
        "| dataset | soft pairs | bits | " + " | ".join(METRICS) + " |",
        "|---|---:|---:|" + "---:|" * len(METRICS),
    ]
    for row in summary["rows"]:
        cells = []
        for key in METRICS:
            diff = row["idhn_minus_hard_only"].get(key)
            cells.append(
                "—"
                if diff is None
                else f"{diff['difference']:+.4f} "
                f"({_format_sd(diff['in_sd'])} sd)"
            )
        lines.append(
            f"| {row['dataset']} | {row['soft_pairs']:.3f} | {row['bits']} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines) + "\n"


def _part_tables(output: str, parts) -> str:
    """Each part's ``results.md`` (mean ± std over seeds), one heading
    level down, so study.md holds every number in one file."""
    sections = []
    for part in parts:
        with open(
            os.path.join(output, part, "results.md"), encoding="utf-8"
        ) as f:
            sections.append("\n#" + f.read())
    return "".join(sections)


def plot_soft_vs_gain(summary: dict, path: str) -> None:
    """IDHN − hard-only (pooled sd) against the fraction of soft pairs,
    one marker per dataset, code length and metric."""
    from keras_dhsps.experiments.plots import plt

    figure, axis = plt.subplots(figsize=(6.5, 4.5))
    for key, marker in (("map@all", "o"), ("ndcg@100", "s")):
        for bits, colour in ((12, "tab:blue"), (48, "tab:orange")):
            points = [
                (row["soft_pairs"], row["idhn_minus_hard_only"][key]["in_sd"])
                for row in summary["rows"]
                if row["bits"] == bits
                and row["idhn_minus_hard_only"].get(key, {}).get("in_sd")
                is not None
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                axis.scatter(
                    xs,
                    ys,
                    marker=marker,
                    color=colour,
                    label=f"{key}, {bits} bits",
                )
    for row in summary["rows"]:
        if row["bits"] == min(r["bits"] for r in summary["rows"]):
            axis.annotate(
                row["dataset"], (row["soft_pairs"], 0), fontsize=7, rotation=90
            )
    axis.axhline(0, color="grey", linewidth=0.8)
    axis.set_xlabel("fraction of soft pairs (0.01 ≤ s ≤ 0.99)")
    axis.set_ylabel("IDHN − hard-only (pooled sd)")
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=8)
    else:  # one seed: no spread, no difference in sd to plot
        axis.set_title("no points: a single seed has no spread", fontsize=9)
    _save_png(figure, path)


def run_study(output: str, *, smoke: bool = False) -> dict:
    """Runs every part (cached cells are reused) and writes study.json,
    study.md and soft_vs_gain.png."""
    from keras_dhsps.experiments.runner import run_table
    from keras_dhsps.experiments.table_config import load_table_config
    from keras_dhsps.utils.files import write_json
    from keras_dhsps.utils.files import write_text

    study = _config_module()
    results = {}
    for part in SMOKE_PARTS if smoke else study.PARTS:
        spec = f"{CONFIG}:{part}-smoke" if smoke else f"{CONFIG}:{part}"
        table = load_table_config(spec)

        def progress(done, total, message, part=part):
            print(f"[{part} {done}/{total}] {message}", flush=True)

        results[part] = run_table(
            table,
            os.path.join(output, part),
            progress=progress,
            cells_dir=os.path.join(output, "cells"),
        )
    soft = _soft_fractions([part for part in results if part != "gamma"])
    summary = summarize_study(results, soft)
    # "seconds" is this invocation's wall time (cached cells cost nothing);
    # "train_seconds" sums every cell's training once (parts share cells).
    cells = {
        key: cell for r in results.values() for key, cell in r["cells"].items()
    }
    summary["seconds"] = sum(result["seconds"] for result in results.values())
    summary["train_seconds"] = sum(
        cell["train_seconds"] for cell in cells.values()
    )
    write_json(os.path.join(output, "study.json"), summary)
    write_text(
        os.path.join(output, "study.md"),
        study_markdown(summary) + _part_tables(output, results),
    )
    plot_soft_vs_gain(summary, os.path.join(output, "soft_vs_gain.png"))
    return summary


def compare_with_30_epochs(output: str) -> str:
    """Writes ``rerun.md`` from the cell cache: how many cells of each part
    are done at its budget and, for the parts that are complete, IDHN −
    hard-only (difference of seed means) beside the 30-epoch run's."""
    from keras_dhsps.experiments.runner import summarize
    from keras_dhsps.experiments.table_config import cell_key
    from keras_dhsps.experiments.table_config import load_table_config
    from keras_dhsps.experiments.table_config import table_cells
    from keras_dhsps.utils.files import read_json
    from keras_dhsps.utils.files import write_text

    study = _config_module()
    old = read_json(os.path.join(output, "30-epochs", "study.json"))["rows"]
    old = {(row["dataset"], row["bits"]): row for row in old}
    counts, complete = [], {}
    for part in study.PARTS:
        table = load_table_config(f"{CONFIG}:{part}")
        keys = [cell_key(table, *cell) for cell in table_cells(table)]
        paths = {
            key: os.path.join(output, "cells", f"{key}.json") for key in keys
        }
        done = {
            key: path for key, path in paths.items() if os.path.isfile(path)
        }
        counts.append(
            f"| {part} | {table.title} | {len(done)} / {len(paths)} |"
        )
        if len(done) == len(paths):
            cells = {key: read_json(path) for key, path in done.items()}
            complete[part] = summarize(table, cells)
    new = summarize_study(complete, {part: None for part in complete})["rows"]
    lines = [
        "# The study re-run at the measured budgets: progress",
        "",
        "Written by `python reproduce/study_soft_similarity.py compare` from "
        "the cell cache (`cells/`).",
        "",
        "| part | table | cells done |",
        "|---|---|---:|",
        *counts,
        "",
        "IDHN − hard-only (difference of seed means) of the finished parts, "
        "at the budget and at 30 epochs (`30-epochs/study.json`):",
        "",
        "| dataset | bits | metric | at the budget | at 30 epochs |",
        "|---|---:|---|---:|---:|",
    ]
    for row in new:
        before = old[(row["dataset"], row["bits"])]["idhn_minus_hard_only"]
        for metric in ("map@all", "ndcg@100"):
            after = row["idhn_minus_hard_only"][metric]["difference"]
            lines.append(
                f"| {row['dataset']} | {row['bits']} | {metric} | "
                f"{after:+.4f} | {before[metric]['difference']:+.4f} |"
            )
    text = "\n".join(lines) + "\n"
    write_text(os.path.join(output, "rerun.md"), text)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "command", choices=("statistics", "budgets", "run", "compare")
    )
    parser.add_argument("--output", default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--smoke", action="store_true", help="tiny splits, one epoch (tests)"
    )
    args = parser.parse_args(argv)
    if args.smoke and os.path.abspath(args.output) == DEFAULT_OUTPUT:
        # Smoke numbers must never overwrite the committed results.
        parser.error("--smoke needs --output (not the results directory)")
    if args.command == "statistics":
        label_statistics(args.output)
    elif args.command == "budgets":
        select_budgets(args.output, smoke=args.smoke)
    elif args.command == "compare":
        print(compare_with_30_epochs(args.output), end="")
    else:
        summary = run_study(args.output, smoke=args.smoke)
        print(
            f"wrote {args.output} in {summary['seconds']:.0f} s "
            f"({summary['train_seconds']:.0f} s of training in its cells)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
