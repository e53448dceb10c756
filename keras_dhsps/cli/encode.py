"""``dhsps encode MODEL IMAGES -o codes.h5``: an HDF5 code database of an
image directory, a list file or a manifest split, with a progress bar.

``MODEL`` is a run directory, a ``.keras`` file, a SavedModel or an ONNX
file. ``--engine ray`` encodes on Ray Data into shards and a manifest;
``--shard I/N`` encodes one contiguous piece of the collection.
"""

from __future__ import annotations

import os

import keras

from keras_dhsps.cli.arguments import at_least
from keras_dhsps.data.image_lists import read_collection
from keras_dhsps.data.sources import is_manifest_directory
from keras_dhsps.data.sources import manifest_split
from keras_dhsps.data.sources import require_utf8
from keras_dhsps.serving.encode import encode_collection
from keras_dhsps.serving.load import load_hasher
from keras_dhsps.serving.ray_encode import RayOptions
from keras_dhsps.serving.ray_encode import encode_on_ray
from keras_dhsps.serving.ray_encode import outputs_of_encode
from keras_dhsps.serving.ray_encode import parse_shard
from keras_dhsps.serving.ray_encode import shard_rows
from keras_dhsps.utils.files import check_writable_output
from keras_dhsps.utils.outputs import check_output


def add_arguments(parser) -> None:
    parser.add_argument(
        "model", help="a run directory, .keras file or SavedModel"
    )
    parser.add_argument(
        "images",
        help="an image directory, a list file (path [labels...] per line) "
        "or a manifest directory",
    )
    parser.add_argument(
        "-o", "--output", required=True, help="codes.h5 to write"
    )
    parser.add_argument(
        "--data-root",
        "--root",
        dest="data_root",
        help="root of the paths in a list file (default: its directory) "
        "or of a manifest's images",
    )
    parser.add_argument(
        "--split", default="database", help="manifest split (default: database)"
    )
    parser.add_argument("--batch-size", type=at_least(1), default=64)
    parser.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="skip and count unreadable images instead of failing",
    )
    parser.add_argument(
        "--store-relaxed",
        action="store_true",
        help="also store the float32 relaxed codes",
    )
    _add_scale_arguments(parser)
    parser.set_defaults(handler=run)


def _add_scale_arguments(parser) -> None:
    group = parser.add_argument_group(
        "encoding at scale (see docs/distributed.md)"
    )
    group.add_argument(
        "--engine",
        default="local",
        choices=("local", "ray"),
        help="local: this process (default); ray: Ray Data workers, each "
        "loading the hasher once; -o is then a manifest (*.json) with "
        "the shards beside it",
    )
    group.add_argument(
        "--address", help="a Ray cluster (default: start Ray here)"
    )
    group.add_argument(
        "--num-workers",
        type=at_least(1),
        default=1,
        help="Ray workers (default 1)",
    )
    group.add_argument(
        "--shard",
        metavar="I/N",
        help="encode only piece I of N: the contiguous block of rows "
        "[I*n/N, (I+1)*n/N) of the listed images",
    )


def run(args) -> None:
    # An existing code database (or shard manifest and its shards) is
    # replaced, as ever; anything else is not.
    inputs = [args.model, args.images, args.data_root]
    for output, kind in outputs_of_encode(args.output):
        check_output(output, kind=kind, inputs=inputs, overwrite=True)
    check_writable_output(args.output)
    shard = None if args.shard is None else parse_shard(args.shard)
    paths, labels, extra = _collection(
        args.images, data_root=args.data_root, split=args.split
    )
    if shard is not None:
        rows = shard_rows(len(paths), shard)
        paths = paths[rows.start : rows.stop]
        labels = None if labels is None else labels[rows.start : rows.stop]
        extra = dict(
            extra, shard=f"{shard[0]}/{shard[1]}", first_row=rows.start
        )
    if args.engine == "ray":
        _run_on_ray(args, paths, labels, extra)
        return
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
    _report(args.output, summary, hasher.bits, labels)


def _run_on_ray(args, paths, labels, extra) -> None:
    options = RayOptions(
        address=args.address,
        num_workers=args.num_workers,
        batch_size=args.batch_size,
    )
    summary = encode_on_ray(
        args.model,
        paths,
        args.output,
        labels=labels,
        options=options,
        skip_bad_images=args.skip_bad_images,
        store_relaxed=args.store_relaxed,
        extra_metadata=extra,
    )
    _report(args.output, summary, summary["bits"], labels)


def _report(output, summary, bits, labels) -> None:
    if summary["skipped"]:
        print(f"skipped {summary['skipped']} unreadable image(s):")
        for path in summary["skipped_paths"]:
            print(f"  {path}")
    what = f"{summary['encoded']} codes of {bits} bits"
    if "shards" in summary:
        what += f" in {summary['shards']} shard(s)"
    print(
        f"wrote {output}: {what}" + ("" if labels is None else " with labels")
    )


def _collection(source: str, *, data_root: str | None, split: str):
    """(paths, labels, extra metadata) of a directory, list file or manifest."""
    if is_manifest_directory(source):
        return manifest_split(source, root=data_root, split=split)
    if os.path.isfile(source):
        require_utf8(source)
    paths, labels = read_collection(source, root=data_root)
    return paths, labels, {"source": os.path.abspath(source)}
