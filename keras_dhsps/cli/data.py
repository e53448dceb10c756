"""``dhsps data``: prepare, verify and download the paper's datasets.

* ``dhsps data prepare --dataset NAME --data-root DIR``: validates a dataset
  directory, draws the seeded split and writes its manifest (list files,
  ``classes.txt``, checksummed ``manifest.json``), then prints a summary:
  images, labels per image, split sizes, dropped files, overlaps.
* ``dhsps data verify --dataset NAME --data-root DIR`` (or ``--manifest
  DIR``): re-checks checksums, list files and every image; without
  ``--option`` it finds the one manifest of that dataset and seed.
* ``dhsps data download --dataset NAME --data-root DIR``: fetches the official
  archives with checksums (``keras_dhsps.data.native.download``).

``--data-root`` is the dataset directory everywhere (``--root`` and, for
``download``, ``--dir`` are aliases). No TensorFlow is imported.
"""

from __future__ import annotations

import argparse
import glob
import json
import os

from keras_dhsps.data import load_dataset
from keras_dhsps.data.base import SPLIT_NAMES
from keras_dhsps.data.native import NATIVE
from keras_dhsps.data.native import manifest_directory
from keras_dhsps.data.native import prepare
from keras_dhsps.data.native import verify
from keras_dhsps.data.native.download import ARCHIVES
from keras_dhsps.data.native.download import download
from keras_dhsps.data.sources import is_manifest_directory
from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import check_writable_output


def _parse_options(pairs: list[str] | None) -> dict:
    options = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise DHSPSError(f"--option expects KEY=VALUE, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options


def format_summary(directory: str, record: dict) -> str:
    """The human-readable summary of a manifest record."""
    lines = [
        f"dataset     {record['dataset']} (seed {record['seed']})",
        f"classes     {len(record['class_names'])}",
        f"images      {record['labelled_images']} labelled",
    ]
    for name in SPLIT_NAMES:
        stats = record["splits"][name]
        lines.append(
            f"  {name:<10s}{stats['images']:>8d} images, "
            f"{stats['labels_per_image']:.2f} labels/image"
        )
    dropped = record["dropped"]
    lines.append(
        "dropped     "
        + (", ".join(f"{k} {v}" for k, v in dropped.items()) or "none")
    )
    lines.append(
        "overlaps    "
        + ", ".join(f"{k} {v}" for k, v in record["overlaps"].items())
    )
    lines.append(f"manifest    {directory}")
    return "\n".join(lines)


def _prepare_lists(args) -> None:
    """``lists`` are split already (the list files are the split): check
    every line and image and print the split sizes; no manifest."""
    dataset = load_dataset(
        "lists", root=args.root, seed=args.seed, **_parse_options(args.option)
    )
    for name in SPLIT_NAMES:
        split = dataset.split(name)
        print(f"  {name:<10s}{len(split):>8d} images")
    print(
        f"lists in {args.root}: every line and image checked; list files "
        "are their own split, so no manifest is written"
    )


def run_prepare(args) -> None:
    if args.dataset == "lists":
        _prepare_lists(args)
        return
    if not os.path.isdir(args.root):
        raise DataError(f"data root not found: {args.root}")
    options = _parse_options(args.option)
    check_writable_output(
        manifest_directory(
            args.dataset, args.root, args.seed, options, args.output
        ),
        directory=True,
    )
    directory, record = prepare(
        args.dataset,
        args.root,
        seed=args.seed,
        manifest_dir=args.output,
        check=args.check,
        skip_bad_images=args.skip_bad_images,
        **options,
    )
    print(format_summary(directory, record))


def run_verify(args) -> None:
    if args.manifest is None and args.dataset is None:
        raise DHSPSError("data verify needs --manifest or --dataset")
    if args.root is None:
        raise DHSPSError("data verify needs --data-root")
    directory = args.manifest
    if directory is None:
        options = _parse_options(args.option)
        directory = manifest_directory(
            args.dataset, args.root, args.seed, options
        )
        if not options:
            directory = _find_manifest(directory, args.dataset, args.seed)
    record = verify(directory, root=args.root, check=args.check)
    print(format_summary(directory, record))
    print("verified: checksums match, every image present and readable")


def _find_manifest(default: str, name: str, seed: int) -> str:
    """The manifest of ``name`` and ``seed``: the default-options one, or
    the only one prepared with other ``--option`` values."""
    if is_manifest_directory(default):
        return default
    parent = os.path.dirname(default)
    found = sorted(
        path
        for path in glob.glob(os.path.join(parent, f"{name}-*-s{seed}"))
        if is_manifest_directory(path)
    )
    if len(found) == 1:
        return found[0]
    if not found:
        raise DHSPSError(
            f"no manifest of {name} (seed {seed}) under {parent}; run "
            "`dhsps data prepare` first or pass --manifest DIR"
        )
    raise DHSPSError(
        f"{len(found)} manifests of {name} (seed {seed}): "
        f"{', '.join(found)}; pass --manifest DIR or the same --option "
        "values as prepare"
    )


def run_download(args) -> None:
    check_writable_output(args.dir, directory=True)
    for path in download(
        args.dataset,
        args.dir,
        file_hashes=dict(args.hash or ()),
        base_url=args.base_url,
    ):
        print(f"extracted {path}")


def _add_selection(parser, *, required: bool, lists: bool = False) -> None:
    parser.add_argument(
        "--dataset",
        required=required,
        choices=sorted(NATIVE) + (["lists"] if lists else []),
        help="dataset name"
        + (" (lists: check the list files; no manifest)" if lists else ""),
    )
    parser.add_argument(
        "--data-root",
        "--root",
        dest="root",
        required=required,
        help="dataset directory (--root is an alias)",
    )
    parser.add_argument("--seed", type=int, default=0, help="split seed")
    parser.add_argument(
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="reader option or split size, e.g. num_labels=24, "
        "num_query=2000 (repeatable; values parsed as JSON)",
    )
    parser.add_argument(
        "--check",
        default="header",
        choices=("exists", "header", "decode"),
        help="how hard to check images: file exists, header parses "
        "(default), every pixel decodes",
    )


def _hash_pair(text: str) -> tuple[str, str]:
    name, sep, digest = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError("expected ARCHIVE=SHA256")
    return name, digest


def add_arguments(parser) -> None:
    """``data prepare``, ``data verify`` and ``data download``."""
    commands = parser.add_subparsers(dest="data_command", required=True)
    _add_prepare(commands)
    _add_verify(commands)
    _add_download(commands)


def _add_prepare(commands) -> None:
    parser = commands.add_parser(
        "prepare", help="validate a dataset directory and write its manifest"
    )
    _add_selection(parser, required=True, lists=True)
    parser.add_argument(
        "--output",
        help="manifest directory (default ROOT/dhsps_manifests/NAME-sSEED)",
    )
    parser.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="skip and count missing or undecodable images instead of "
        "stopping at the first",
    )
    parser.set_defaults(handler=run_prepare)


def _add_verify(commands) -> None:
    parser = commands.add_parser("verify", help="re-check a manifest")
    _add_selection(parser, required=False)
    parser.add_argument("--manifest", help="manifest directory to check")
    parser.set_defaults(handler=run_verify)


def _add_download(commands) -> None:
    parser = commands.add_parser(
        "download", help="download official archives (with checksums)"
    )
    parser.add_argument("--dataset", required=True, choices=sorted(ARCHIVES))
    parser.add_argument(
        "--data-root",
        "--dir",
        dest="dir",
        required=True,
        help="where to extract (--dir is an alias)",
    )
    parser.add_argument(
        "--hash",
        action="append",
        type=_hash_pair,
        metavar="ARCHIVE=SHA256",
        help="expected SHA-256 of an archive without a published checksum "
        "(required for those)",
    )
    parser.add_argument(
        "--base-url", help="mirror to use instead of the official host"
    )
    parser.set_defaults(handler=run_download)
