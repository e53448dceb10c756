"""Split manifests: the peers' list files plus a checksummed JSON record.

A manifest directory holds

* ``classes.txt``: the C class names, sorted, one per line (column order);
* ``train.txt``, ``validation.txt``, ``query.txt``, ``database.txt``: one
  line per image in the peers' format ``relative/path l_1 ... l_C``
  (so :mod:`keras_dhsps.data.listfile` and the peers' code read them);
* ``manifest.json``: dataset name, options, seed, protocol, class names,
  per-split counts and labels per image, dropped images by reason,
  overlaps between splits, the SHA-256 of every list file, and
  ``checksum``: the SHA-256 of the rest of ``manifest.json`` (canonical JSON,
  sorted keys), so any edit of any file is detected.

The directory is written to a temporary sibling and renamed into place:
an interrupted ``prepare`` leaves the previous manifest (or none), never a
half-written one.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile

import numpy as np
from numpy.typing import NDArray

from keras_dhsps.data.base import SPLIT_NAMES
from keras_dhsps.data.base import RetrievalDataset
from keras_dhsps.data.base import Split
from keras_dhsps.data.collection import Collection
from keras_dhsps.data.listfile import read_list_file
from keras_dhsps.data.splits import LEAKS
from keras_dhsps.data.splits import Protocol
from keras_dhsps.data.splits import overlaps
from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.files import finish_directory
from keras_dhsps.utils.files import make_temporary_directory
from keras_dhsps.utils.files import write_text
from keras_dhsps.utils.records import read_sealed_record
from keras_dhsps.utils.records import write_sealed_record

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CLASSES = "classes.txt"


def _list_text(paths: list[str], labels: NDArray[np.uint8]) -> str:
    lines = [
        path + " " + " ".join(map(str, row.tolist()))
        for path, row in zip(paths, labels, strict=True)
    ]
    return "".join(line + "\n" for line in lines)


def _split_stats(labels: NDArray[np.uint8]) -> dict:
    return {
        "images": int(len(labels)),
        "labels_per_image": round(float(labels.sum(axis=1).mean()), 4)
        if len(labels)
        else 0.0,
    }


def default_directory(root: str, key: str, seed: int) -> str:
    """Where ``prepare`` writes by default: ``ROOT/dhsps_manifests/KEY-sSEED``."""
    return os.path.join(root, "dhsps_manifests", f"{key}-s{seed}")


def write_manifest(
    directory: str,
    *,
    collection: Collection,
    splits: dict[str, NDArray[np.int64]],
    protocol: Protocol,
    seed: int,
    options: dict,
) -> dict:
    """Writes a manifest directory atomically; returns the JSON record.

    Raises:
        DataError: a split holds an image with no positive label (readers
            drop those and count them in ``collection.dropped``).
    """
    for name, rows in splits.items():
        empty = np.flatnonzero(collection.labels[rows].sum(axis=1) == 0)
        if len(empty):
            raise DataError(
                f"{collection.name}: {len(empty)} {name} images have no "
                f"label (first: {collection.paths[rows[empty[0]]]}); drop "
                "them before writing a manifest"
            )
    split_paths = {
        name: [collection.paths[row] for row in rows]
        for name, rows in splits.items()
    }
    parent = os.path.dirname(os.path.abspath(directory))
    os.makedirs(parent, exist_ok=True)
    staging = make_temporary_directory(parent, ".tmp-manifest-")
    try:
        write_text(
            os.path.join(staging, CLASSES),
            "".join(name + "\n" for name in collection.class_names),
        )
        files = [CLASSES]
        for name in SPLIT_NAMES:
            files.append(f"{name}.txt")
            write_text(
                os.path.join(staging, files[-1]),
                _list_text(split_paths[name], collection.labels[splits[name]]),
            )
        record = {
            "format_version": FORMAT_VERSION,
            "dataset": collection.name,
            "options": options,
            "seed": seed,
            "protocol": dataclasses.asdict(protocol),
            "class_names": list(collection.class_names),
            "labelled_images": len(collection),
            "splits": {
                name: _split_stats(collection.labels[splits[name]])
                for name in SPLIT_NAMES
            },
            "dropped": dict(sorted(collection.dropped.items())),
            "overlaps": overlaps(split_paths),
        }
        record = write_sealed_record(
            os.path.join(staging, MANIFEST), record, files
        )
        finish_directory(staging)
        old = None
        if os.path.exists(directory):
            old = tempfile.mkdtemp(dir=parent, prefix=".old-manifest-")
            os.rename(directory, os.path.join(old, "previous"))
        os.rename(staging, directory)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return record


def read_record(directory: str) -> dict:
    """The verified ``manifest.json`` of a manifest directory.

    Raises:
        DataError: a missing file, a checksum mismatch (the record or any
            list file was edited), or an unknown format version.
    """
    path = os.path.join(directory, MANIFEST)
    record = read_sealed_record(
        path, "manifest", error=DataError, hint=" (run `dhsps data prepare`)"
    )
    if record.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"{path}: unknown manifest format {record.get('format_version')!r}"
        )
    return record


def load_manifest(
    directory: str, *, root: str, name: str | None = None
) -> RetrievalDataset:
    """Loads a verified manifest's splits (image paths under ``root``)."""
    record = read_record(directory)
    class_names = tuple(record["class_names"])
    splits = {}
    for split_name in SPLIT_NAMES:
        list_path = os.path.join(directory, f"{split_name}.txt")
        if record["splits"][split_name]["images"] == 0:
            splits[split_name] = Split(
                labels=np.zeros((0, len(class_names)), np.uint8), paths=()
            )
            continue
        paths, labels = read_list_file(
            list_path, root=root, num_classes=len(class_names)
        )
        splits[split_name] = Split(
            labels=labels, paths=paths, manifest_checksum=record["checksum"]
        )
    return RetrievalDataset(
        name=name or record["dataset"],
        class_names=class_names,
        splits=splits,
        info={
            "manifest": os.path.abspath(directory),
            "dropped": record["dropped"],
            "overlaps": record["overlaps"],
            "seed": record["seed"],
        },
    )


def leaks(record_overlaps: dict[str, int]) -> dict[str, int]:
    """The overlaps that mean a query is not held out."""
    return {
        pair: count
        for pair, count in record_overlaps.items()
        if pair in LEAKS and count
    }
