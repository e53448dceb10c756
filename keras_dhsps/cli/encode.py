"""``dhsps encode MODEL IMAGES -o codes.h5``: an HDF5 code database of an
image directory, a list file or a manifest split, with a progress bar.

``MODEL`` is a run directory, a ``.keras`` file or a SavedModel.
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
from keras_dhsps.utils.files import check_writable_output


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
    parser.set_defaults(handler=run)


def run(args) -> None:
    check_writable_output(args.output)
    paths, labels, extra = _collection(
        args.images, data_root=args.data_root, split=args.split
    )
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


def _collection(source: str, *, data_root: str | None, split: str):
    """(paths, labels, extra metadata) of a directory, list file or manifest."""
    if is_manifest_directory(source):
        return manifest_split(source, root=data_root, split=split)
    if os.path.isfile(source):
        require_utf8(source)
    paths, labels = read_collection(source, root=data_root)
    return paths, labels, {"source": os.path.abspath(source)}
