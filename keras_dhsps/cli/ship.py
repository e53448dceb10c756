"""CLI subcommands for shipping a hasher: export, encode, search, plot.

* ``dhsps export MODEL -o DIR``: SavedModel with raw-image endpoints;
* ``dhsps encode MODEL IMAGES -o codes.h5``: an HDF5 code database of an
  image directory, a list file or a manifest split (progress bar);
* ``dhsps search MODEL codes.h5 QUERY_IMAGE... -k 20``: nearest images with
  their Hamming distances;
* ``dhsps plot curves REPORT.json... -o PREFIX``: PR and P@N curves;
  ``dhsps plot examples QUERIES.h5 DATABASE.h5 -o PREFIX``: a grid of
  retrieval examples.

``MODEL`` is a run directory (``dhsps train --output``), a ``.keras`` file
or a SavedModel written by ``dhsps export``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import numpy as np

from keras_dhsps.config import RESIZE_MODES
from keras_dhsps.utils.errors import DHSPSError

# Results per query that `dhsps search` prints by default.
_DEFAULT_K = 20


# ------------------------------------------------------------------ export
def _export(args) -> None:
    from keras_dhsps.serving.export import export_saved_model
    from keras_dhsps.training.rundir import load_hasher
    from keras_dhsps.utils.files import check_writable_output

    check_writable_output(args.output, directory=True)
    hasher = load_hasher(args.model)
    if hasher.model is None:
        raise DHSPSError(
            f"{args.model} is already a SavedModel; export a run directory "
            "or a .keras file"
        )
    metadata = export_saved_model(
        hasher.model,
        args.output,
        config=hasher.metadata.get("config"),
        overwrite=args.overwrite,
        resize=args.resize,
        resize_to=tuple(args.resize_to),
    )
    print(
        f"wrote {args.output} ({metadata['bits']} bits, input "
        f"{metadata['image_size'][0]}x{metadata['image_size'][1]}; endpoints "
        "serve, encode, encode_bytes, hasher, metadata)"
    )


# ------------------------------------------------------------------ encode
def _collection(source: str, *, data_root: str | None, split: str):
    """(paths, labels, extra metadata) of a directory, list file or manifest."""
    from keras_dhsps.data.image_lists import read_collection

    if os.path.isfile(os.path.join(source, "manifest.json")):
        from keras_dhsps.data.manifest import load_manifest

        if data_root is None:
            raise DHSPSError(
                f"{source} is a manifest: pass --data-root (the images' root)"
            )
        dataset = load_manifest(source, root=data_root)
        chosen = dataset.split(split)
        if len(chosen) == 0:
            raise DHSPSError(f"{source}: split {split!r} is empty")
        extra = {
            "source": os.path.abspath(source),
            "split": split,
            "class_names": list(dataset.class_names),
        }
        return chosen.paths, chosen.labels, extra
    if os.path.isfile(source):
        _require_utf8(source)
    paths, labels = read_collection(source, root=data_root)
    return paths, labels, {"source": os.path.abspath(source)}


def _require_utf8(path: str) -> None:
    """A list file must be UTF-8 text (a byte-order mark is fine)."""
    from keras_dhsps.utils.errors import DataError

    with open(path, "rb") as handle:
        for line_number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(
                    f"{path}:{line_number}: not UTF-8 text (expected an "
                    "image directory or a list file)"
                ) from None


def _encode(args) -> None:
    from keras_dhsps.utils.files import check_writable_output

    check_writable_output(args.output)
    paths, labels, extra = _collection(
        args.images, data_root=args.data_root, split=args.split
    )
    import keras

    from keras_dhsps.serving.encode import encode_collection
    from keras_dhsps.training.rundir import load_hasher

    hasher = load_hasher(args.model)
    bar = keras.utils.Progbar(
        len(paths), verbose=args.verbose, unit_name="image"
    )
    summary = encode_collection(
        hasher,
        paths,
        args.output,
        labels=labels,
        batch_size=args.batch_size,
        skip_bad_images=args.skip_bad_images,
        store_relaxed=args.store_relaxed,
        extra_metadata=extra,
        progress=lambda done, total: bar.update(done),
    )
    if summary["skipped"]:
        print(f"skipped {summary['skipped']} unreadable image(s):")
        for path in summary["skipped_paths"]:
            print(f"  {path}")
    print(
        f"wrote {args.output}: {summary['encoded']} codes of "
        f"{hasher.bits} bits" + ("" if labels is None else " with labels")
    )


# ------------------------------------------------------------------ search
def _read_query_images(paths: Sequence[str], hasher) -> np.ndarray:
    """Decodes query images (naming a file that fails) at the model size,
    as ``dhsps encode`` decodes them."""
    from keras_dhsps.data.decoding import read_image_files
    from keras_dhsps.utils.errors import DataError

    failures: list = []
    size = dict(resize=hasher.resize, size=hasher.stored_size)
    batches = list(read_image_files(paths, failures=failures, **size))
    if failures:
        position, reason = failures[0]
        raise DataError(f"{paths[position]}: {reason}")
    images = np.concatenate([images for _, images in batches])
    return hasher.crop_stored(images).astype(np.float32)


def _search(args) -> None:
    from keras_dhsps.retrieval.codedb import read_code_database
    from keras_dhsps.retrieval.codes import pack_codes
    from keras_dhsps.retrieval.index import HammingIndex

    database = read_code_database(args.codes)
    from keras_dhsps.training.rundir import load_hasher

    hasher = load_hasher(args.model)
    if hasher.bits != database.bits:
        raise DHSPSError(
            f"{args.model} makes {hasher.bits}-bit codes but {args.codes} "
            f"holds {database.bits}-bit codes"
        )
    images = _read_query_images(args.queries, hasher)
    packed = pack_codes(hasher.codes_from_preprocessed(images))
    index = HammingIndex(database.bits, backend=args.backend)
    index.add(database.packed)
    within = [None] * len(packed)
    if args.radius is not None:
        lims, distances, indices = index.range_search(packed, args.radius)
        rows = [
            (
                distances[lims[q] : lims[q + 1]][: args.k],
                indices[lims[q] : lims[q + 1]][: args.k],
            )
            for q in range(len(packed))
        ]
        within = [int(lims[q + 1] - lims[q]) for q in range(len(packed))]
    else:
        distances, indices = index.search(packed, args.k)
        rows = list(zip(distances, indices, strict=True))
    for query, row, count in zip(args.queries, rows, within, strict=True):
        _print_results(query, row, count, args, database.paths)


def _print_results(query, row, within, args, paths) -> None:
    """One query's ranked results; with ``--radius``, how many codes were
    within it when only the first ``k`` are shown."""
    print(f"query {query}")
    if within is not None:
        shown = min(within, args.k)
        more = f"; showing the first {shown} (-k)" if within > shown else ""
        print(f"{within} codes within radius {args.radius}{more}")
    print(f"{'rank':>6s} {'distance':>8s}  path")
    for rank, (distance, item) in enumerate(zip(*row, strict=True), start=1):
        if item < 0:
            break
        print(f"{rank:>6d} {int(distance):>8d}  {paths[item]}")


# -------------------------------------------------------------------- plot
def _output_paths(prefix: str, name: str, formats: Sequence[str]) -> list[str]:
    if os.path.isdir(prefix) or prefix.endswith(os.sep):
        base = os.path.join(prefix, name)
    else:
        base = f"{prefix}_{name}"
    return [f"{base}.{extension.lstrip('.')}" for extension in formats]


def _result_label(path: str) -> str:
    stem = os.path.splitext(os.path.basename(path))[0]
    parent = os.path.basename(os.path.dirname(os.path.abspath(path)))
    return parent if stem == "report" and parent else stem


def _plot_curves(args) -> None:
    from keras_dhsps.experiments.plots import plot_pr_curves
    from keras_dhsps.experiments.plots import plot_precision_at_n
    from keras_dhsps.utils.files import read_json

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
        if not os.path.isfile(path):
            raise DHSPSError(f"result file not found: {path}")
        try:
            report = read_json(path)
        except ValueError as error:
            raise DHSPSError(f"{path}: not valid JSON ({error})") from None
        if not isinstance(report, dict):
            raise DHSPSError(
                f"{path}: not a report (expected a JSON object, as written "
                "by dhsps evaluate --output or dhsps train)"
            )
        label = labels[position] if labels else _result_label(path)
        if label in results:
            label = f"{label} ({position + 1})"
        results[label] = report
    written = []
    for path in pr_paths:
        plot_pr_curves(results, path, title=args.title)
        written.append(path)
    for path in pn_paths:
        plot_precision_at_n(results, path, title=args.title)
        written.append(path)
    for path in written:
        print(f"wrote {path}")


def retrieval_examples(
    queries,
    database,
    *,
    num_queries: int = 4,
    k: int = 8,
    seed: int = 0,
    backend: str = "auto",
) -> list[dict]:
    """Top-``k`` results of a few queries, relevance marked when known.

    Args:
        queries: a ``codedb.CodeDatabase`` of query images.
        database: a ``codedb.CodeDatabase`` to search.
        num_queries: how many queries (a seeded random choice, in order).
        k: results per query.
        seed: the choice's seed.
        backend: ``HammingIndex`` backend.

    Returns:
        ``plots.plot_retrieval_examples``'s examples; ``relevant`` is
        "shares at least one label" when both files hold labels, else None.
    """
    from keras_dhsps.retrieval.index import HammingIndex

    if queries.bits != database.bits:
        raise DHSPSError(
            f"query codes have {queries.bits} bits, database codes "
            f"{database.bits}"
        )
    if len(queries) == 0 or len(database) == 0:
        raise DHSPSError("no query or database codes to plot")
    count = min(num_queries, len(queries))
    chosen = np.sort(
        np.random.default_rng(seed).choice(len(queries), count, replace=False)
    )
    index = HammingIndex(database.bits, backend=backend)
    index.add(database.packed)
    distances, indices = index.search(queries.packed[chosen], k)
    known = queries.labels is not None and database.labels is not None
    examples = []
    for row, query in enumerate(chosen):
        results = []
        for distance, item in zip(distances[row], indices[row], strict=True):
            if item < 0:
                break
            relevant = None
            if known:
                relevant = bool(
                    np.any(queries.labels[query] & database.labels[item])
                )
            results.append(
                {
                    "path": database.paths[item],
                    "distance": int(distance),
                    "relevant": relevant,
                }
            )
        examples.append({"query": queries.paths[query], "results": results})
    return examples


def _check_outputs(paths) -> None:
    from keras_dhsps.utils.files import check_writable_output

    for path in paths:
        check_writable_output(path)


def _plot_examples(args) -> None:
    from keras_dhsps.experiments.plots import plot_retrieval_examples
    from keras_dhsps.retrieval.codedb import read_code_database

    outputs = _output_paths(args.output, "examples", args.format)
    _check_outputs(outputs)
    examples = retrieval_examples(
        read_code_database(args.queries),
        read_code_database(args.database),
        num_queries=args.num_queries,
        k=args.k,
        seed=args.seed,
        backend=args.backend,
    )
    for path in outputs:
        plot_retrieval_examples(examples, path, title=args.title)
        print(f"wrote {path}")


# ------------------------------------------------------------------ parser
def at_least(minimum: int):
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {minimum}, got {text!r}"
            )
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def _formats(text: str) -> list[str]:
    formats = [
        value.strip().lower() for value in text.split(",") if value.strip()
    ]
    allowed = {"png", "pdf", "svg"}
    unknown = [value for value in formats if value not in allowed]
    if unknown or not formats:
        raise DHSPSError(
            "--format takes a comma-separated list of "
            f"{', '.join(sorted(allowed))}; got {text!r}"
        )
    return formats


def register(subparsers) -> None:
    """Adds ``export``, ``encode``, ``search`` and ``plot`` to the CLI."""
    _add_export(subparsers)
    _add_encode(subparsers)
    _add_search(subparsers)
    _add_plot(subparsers)


def _add_export(subparsers) -> None:
    export = subparsers.add_parser(
        "export", help="export a hasher as a SavedModel (raw-image endpoints)"
    )
    export.add_argument("model", help="a run directory or a .keras file")
    export.add_argument(
        "-o", "--output", required=True, help="SavedModel directory"
    )
    export.add_argument(
        "--overwrite", action="store_true", help="replace an existing directory"
    )
    export.add_argument(
        "--resize",
        default="direct",
        choices=RESIZE_MODES,
        help="how the endpoints bring images to the model's size: the "
        "evaluation-time mode of data.pipeline (default: direct)",
    )
    export.add_argument(
        "--resize-to",
        type=at_least(1),
        nargs=2,
        default=(256, 256),
        metavar=("H", "W"),
        help="intermediate size of the cropping modes (default 256 256)",
    )
    export.set_defaults(handler=_export)


def _add_encode(subparsers) -> None:
    encode = subparsers.add_parser(
        "encode", help="encode an image collection into an HDF5 code database"
    )
    encode.add_argument(
        "model", help="a run directory, .keras file or SavedModel"
    )
    encode.add_argument(
        "images",
        help="an image directory, a list file (path [labels...] per line) "
        "or a manifest directory",
    )
    encode.add_argument(
        "-o", "--output", required=True, help="codes.h5 to write"
    )
    encode.add_argument(
        "--data-root",
        "--root",
        dest="data_root",
        help="root of the paths in a list file (default: its directory) "
        "or of a manifest's images",
    )
    encode.add_argument(
        "--split", default="database", help="manifest split (default: database)"
    )
    encode.add_argument("--batch-size", type=at_least(1), default=64)
    encode.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="skip and count unreadable images instead of failing",
    )
    encode.add_argument(
        "--store-relaxed",
        action="store_true",
        help="also store the float32 relaxed codes",
    )
    encode.set_defaults(handler=_encode)


def _add_search(subparsers) -> None:
    from keras_dhsps.retrieval.index import BACKENDS

    search = subparsers.add_parser(
        "search", help="find the nearest images of query images"
    )
    search.add_argument(
        "model", help="a run directory, .keras file or SavedModel"
    )
    search.add_argument("codes", help="a code database from `dhsps encode`")
    search.add_argument("queries", nargs="+", metavar="QUERY_IMAGE")
    search.add_argument(
        "-k", type=at_least(1), default=_DEFAULT_K, help="results per query"
    )
    search.add_argument(
        "--radius",
        type=at_least(0),
        help="instead of the top k: every item with distance <= RADIUS "
        "(at most k shown)",
    )
    search.add_argument("--backend", default="auto", choices=BACKENDS)
    search.set_defaults(handler=_search)


def _add_plot(subparsers) -> None:
    from keras_dhsps.retrieval.index import BACKENDS

    plot = subparsers.add_parser(
        "plot", help="PR / P@N curves, retrieval examples"
    )
    kinds = plot.add_subparsers(dest="plot_kind", required=True)
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
    examples.add_argument("queries", help="code database of the queries")
    examples.add_argument("database", help="code database to search")
    examples.add_argument("-n", "--num-queries", type=at_least(1), default=4)
    examples.add_argument("-k", type=at_least(1), default=8)
    examples.add_argument("--seed", type=int, default=0)
    examples.add_argument("--backend", default="auto", choices=BACKENDS)
    for parser in (curves, examples):
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
    curves.set_defaults(handler=_with_formats(_plot_curves))
    examples.set_defaults(handler=_with_formats(_plot_examples))


def _with_formats(handler):
    def run(args) -> None:
        args.format = _formats(args.format)
        handler(args)

    return run
