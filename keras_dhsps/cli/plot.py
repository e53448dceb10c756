"""``dhsps plot curves REPORT.json... -o PREFIX``: PR and P@N curves;
``dhsps plot examples QUERIES.h5 DATABASE.h5 -o PREFIX``: a grid of
retrieval examples."""

from __future__ import annotations

import os
from collections.abc import Sequence

from keras_dhsps.cli.arguments import at_least
from keras_dhsps.cli.arguments import formats
from keras_dhsps.experiments.plots import plot_pr_curves
from keras_dhsps.experiments.plots import plot_precision_at_n
from keras_dhsps.experiments.plots import plot_retrieval_examples
from keras_dhsps.retrieval.collection import read_database
from keras_dhsps.retrieval.examples import retrieval_examples
from keras_dhsps.retrieval.index import BACKENDS
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import check_writable_output
from keras_dhsps.utils.files import read_json_file


def add_arguments(parser) -> None:
    kinds = parser.add_subparsers(dest="plot_kind", required=True)
    curves = kinds.add_parser(
        "curves", help="PR (by radius and rank) and P@N curves of result files"
    )
    curves.add_argument(
        "results", nargs="+", help="report JSON files (dhsps evaluate/train)"
    )
    curves.add_argument("--labels", help="comma-separated line labels")
    examples = kinds.add_parser(
        "examples", help="grid of queries and their top results"
    )
    examples.add_argument(
        "queries", help="code database (or shard manifest) of the queries"
    )
    examples.add_argument(
        "database", help="code database (or shard manifest) to search"
    )
    examples.add_argument("-n", "--num-queries", type=at_least(1), default=4)
    examples.add_argument("-k", type=at_least(1), default=8)
    examples.add_argument("--seed", type=int, default=0)
    examples.add_argument("--backend", default="auto", choices=BACKENDS)
    for kind in (curves, examples):
        _add_output_flags(kind)
    curves.set_defaults(handler=run_curves)
    examples.set_defaults(handler=run_examples)


def _add_output_flags(parser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        help="output prefix (PREFIX_pr.png, ...) or an existing directory",
    )
    parser.add_argument(
        "--format",
        type=str,
        default="png,pdf",
        help="comma-separated formats (png, pdf, svg); default png,pdf",
    )
    parser.add_argument("--title", default="")


def run_curves(args) -> None:
    args.format = formats(args.format)
    pr_paths = _output_paths(args.output, "pr", args.format)
    pn_paths = _output_paths(args.output, "precision_at_n", args.format)
    _check_outputs(pr_paths + pn_paths)
    labels = args.labels.split(",") if args.labels else None
    if labels is not None and len(labels) != len(args.results):
        raise DHSPSError(
            f"--labels has {len(labels)} names for {len(args.results)} results"
        )
    results = {}
    for position, path in enumerate(args.results):
        label = labels[position] if labels else _result_label(path)
        if label in results:
            label = f"{label} ({position + 1})"
        results[label] = _read_report(path)
    for path in pr_paths:
        plot_pr_curves(results, path, title=args.title)
    for path in pn_paths:
        plot_precision_at_n(results, path, title=args.title)
    for path in pr_paths + pn_paths:
        print(f"wrote {path}")


def run_examples(args) -> None:
    args.format = formats(args.format)
    outputs = _output_paths(args.output, "examples", args.format)
    _check_outputs(outputs)
    examples = retrieval_examples(
        read_database(args.queries),
        read_database(args.database),
        num_queries=args.num_queries,
        k=args.k,
        seed=args.seed,
        backend=args.backend,
    )
    for path in outputs:
        plot_retrieval_examples(examples, path, title=args.title)
        print(f"wrote {path}")


def _read_report(path: str) -> dict:
    """A report JSON file (``dhsps evaluate --output``, ``dhsps train``)."""
    return read_json_file(path, "report", kind=dict)


def _output_paths(prefix: str, name: str, extensions: Sequence[str]):
    """The figure files of ``name``: ``PREFIX_name.EXT`` or, for a
    directory, ``PREFIX/name.EXT``."""
    if os.path.isdir(prefix) or prefix.endswith(os.sep):
        base = os.path.join(prefix, name)
    else:
        base = f"{prefix}_{name}"
    return [f"{base}.{extension.lstrip('.')}" for extension in extensions]


def _result_label(path: str) -> str:
    """A curve's default label: the file's name, or its folder's for a
    run's ``report.json``."""
    stem = os.path.splitext(os.path.basename(path))[0]
    parent = os.path.basename(os.path.dirname(os.path.abspath(path)))
    return parent if stem == "report" and parent else stem


def _check_outputs(paths) -> None:
    for path in paths:
        check_writable_output(path)
