"""The paper's datasets in their native layouts: scan, split, manifest.

Each dataset is a reader module (``voc2012``, ``mirflickr``, ``nuswide``,
``iapr``, ``coco``) with a ``scan(root, **reader_options)`` function and a
default :class:`~keras_dhsps.data.splits.Protocol`. :func:`prepare` scans,
checks the images, drops unlabelled (and, if asked, bad) images, draws the
seeded split and writes a manifest; :func:`load_native` reads that manifest
when it exists, else builds the same split on the fly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Callable

import numpy as np

from keras_dhsps.data.base import RetrievalDataset
from keras_dhsps.data.base import Split
from keras_dhsps.data.collection import Collection
from keras_dhsps.data.collection import check_images
from keras_dhsps.data.manifest import default_directory
from keras_dhsps.data.manifest import leaks
from keras_dhsps.data.manifest import load_manifest
from keras_dhsps.data.manifest import read_record
from keras_dhsps.data.manifest import write_manifest
from keras_dhsps.data.native import coco
from keras_dhsps.data.native import iapr
from keras_dhsps.data.native import mirflickr
from keras_dhsps.data.native import nuswide
from keras_dhsps.data.native import voc2012
from keras_dhsps.data.splits import Protocol
from keras_dhsps.data.splits import make_splits
from keras_dhsps.data.splits import overlaps
from keras_dhsps.utils.errors import DataError

logger = logging.getLogger(__name__)

#: Options every native dataset takes: protocol overrides.
PROTOCOL_OPTIONS = (
    "num_query",
    "num_train",
    "num_database",
    "validation_fraction",
)


@dataclasses.dataclass(frozen=True)
class NativeDataset:
    """A reader and its split protocol.

    Attributes:
        scan: ``scan(root, **reader_options) -> Collection``.
        protocol: the default split protocol.
        reader_options: option names passed to ``scan``.
        description: one line for ``--help``.
    """

    scan: Callable[..., Collection]
    protocol: Protocol
    reader_options: tuple[str, ...]
    description: str


NATIVE = {
    "voc2012": NativeDataset(
        voc2012.scan,
        voc2012.PROTOCOL,
        ("include_difficult",),
        "PASCAL VOC2012 trainval, 20 classes",
    ),
    "mirflickr25k": NativeDataset(
        mirflickr.scan,
        mirflickr.PROTOCOL,
        ("num_labels", "num_images"),
        "MIRFlickr-25K, 38 (or 24) labels",
    ),
    "nuswide21": NativeDataset(
        nuswide.scan,
        nuswide.PROTOCOL,
        ("top_k", "concepts"),
        "NUS-WIDE, 21 most frequent concepts",
    ),
    "iapr-tc12": NativeDataset(
        iapr.scan,
        iapr.PROTOCOL,
        ("num_classes", "vocabulary"),
        "IAPR TC-12, most frequent description words",
    ),
    "coco": NativeDataset(
        coco.scan,
        coco.PROTOCOL,
        ("year",),
        "MS-COCO instances, 80 classes",
    ),
}


def _spec(name: str) -> NativeDataset:
    if name not in NATIVE:
        from keras_dhsps.utils.errors import UnknownNameError

        raise UnknownNameError(
            f"unknown dataset {name!r}; datasets read from a directory: "
            f"{', '.join(sorted(NATIVE))}"
        )
    return NATIVE[name]


def _split_options(name: str, options: dict) -> tuple[dict, Protocol]:
    spec = _spec(name)
    unknown = sorted(
        set(options) - set(spec.reader_options) - set(PROTOCOL_OPTIONS)
    )
    if unknown:
        raise DataError(
            f"unknown option {unknown[0]!r} for dataset {name!r}; options: "
            f"{', '.join(spec.reader_options + PROTOCOL_OPTIONS)}"
        )
    reader = {k: v for k, v in options.items() if k in spec.reader_options}
    changes = {k: v for k, v in options.items() if k in PROTOCOL_OPTIONS}
    return reader, spec.protocol.replace(**changes)


def manifest_directory(
    name: str, root: str, seed: int, options: dict, manifest_dir=None
) -> str:
    """The manifest directory of ``(name, seed, options)``.

    ``ROOT/dhsps_manifests/NAME-sSEED`` for default options; other options
    add a short hash of themselves, so different splits never collide.
    """
    if manifest_dir is not None:
        return manifest_dir
    key = name
    if options:
        text = json.dumps(options, sort_keys=True)
        key += "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return default_directory(root, key, seed)


def _check_root(name: str, root: str | None) -> str:
    if root is None:
        raise DataError(f"dataset {name!r} needs --data-root")
    if not os.path.isdir(root):
        raise DataError(f"data root not found: {root}")
    return root


def build(
    name: str,
    root: str,
    seed: int,
    *,
    check: str = "header",
    skip_bad_images: bool = False,
    **options,
) -> tuple[Collection, dict, Protocol]:
    """Scans, checks and splits: ``(collection, split rows, protocol)``."""
    _check_root(name, root)
    reader_options, protocol = _split_options(name, options)
    collection = _spec(name).scan(root, **reader_options)
    collection = collection.drop_unlabelled()
    collection = check_images(
        collection, mode=check, skip_bad_images=skip_bad_images
    )
    splits = make_splits(collection.labels, protocol, seed=seed)
    return collection, splits, protocol


def prepare(
    name: str,
    root: str,
    *,
    seed: int = 0,
    manifest_dir: str | None = None,
    check: str = "header",
    skip_bad_images: bool = False,
    **options,
) -> tuple[str, dict]:
    """Validates a dataset directory and writes its manifest.

    Args:
        name: a key of :data:`NATIVE`.
        root: the dataset directory.
        seed: seed of the split protocol.
        manifest_dir: where to write (default :func:`manifest_directory`).
        check: image check mode (see ``collection.CHECK_MODES``).
        skip_bad_images: skip and count missing or undecodable images
            instead of raising.
        **options: reader options and protocol overrides.

    Returns:
        ``(manifest directory, manifest record)``.

    Raises:
        DataError: anything malformed; nothing is written then.
    """
    collection, splits, protocol = build(
        name,
        root,
        seed,
        check=check,
        skip_bad_images=skip_bad_images,
        **options,
    )
    directory = manifest_directory(name, root, seed, options, manifest_dir)
    record = write_manifest(
        directory,
        collection=collection,
        splits=splits,
        protocol=protocol,
        seed=seed,
        options=options,
    )
    for pair, count in leaks(record["overlaps"]).items():
        logger.warning("%s: %d images in both %s", name, count, pair)
    return directory, record


def _to_dataset(name, collection, splits, info) -> RetrievalDataset:
    root = collection.root
    return RetrievalDataset(
        name=name,
        class_names=collection.class_names,
        splits={
            split: Split(
                labels=collection.labels[rows],
                paths=tuple(
                    os.path.join(root, collection.paths[row]) for row in rows
                ),
            )
            for split, rows in splits.items()
        },
        info=info,
    )


def load_native(
    name: str,
    root: str | None,
    seed: int = 0,
    *,
    manifest_dir: str | None = None,
    check: str = "exists",
    skip_bad_images: bool = False,
    **options,
) -> RetrievalDataset:
    """A native dataset's splits: from its manifest, else built on the fly.

    The manifest is the one :func:`prepare` writes for the same
    ``(name, seed, options)``; its checksum is verified. Without one the
    split is drawn the same way (same seed, same rows) but images are only
    checked for existence (``check="exists"``).
    """
    root = _check_root(name, root)
    _split_options(name, options)  # reject unknown options early
    directory = manifest_directory(name, root, seed, options, manifest_dir)
    if os.path.isfile(os.path.join(directory, "manifest.json")):
        record = read_record(directory)
        if record["dataset"] != name or record["seed"] != seed:
            raise DataError(
                f"{directory}: manifest of {record['dataset']!r} seed "
                f"{record['seed']}, not {name!r} seed {seed}"
            )
        if record["options"] != options:
            raise DataError(
                f"{directory}: manifest written with options "
                f"{record['options']}, not {options}"
            )
        return load_manifest(directory, root=root, name=name)
    collection, splits, _ = build(
        name,
        root,
        seed,
        check=check,
        skip_bad_images=skip_bad_images,
        **options,
    )
    info = {
        "manifest": None,
        "dropped": dict(collection.dropped),
        "overlaps": overlaps(
            {k: [collection.paths[r] for r in v] for k, v in splits.items()}
        ),
        "seed": seed,
    }
    return _to_dataset(name, collection, splits, info)


def verify(directory: str, *, root: str, check: str = "header") -> dict:
    """Re-checks a manifest: checksums, list files, and every image.

    Returns:
        The manifest record.

    Raises:
        DataError: a checksum mismatch, a malformed list file, a missing or
            undecodable image (list file and line).
    """
    record = read_record(directory)
    dataset = load_manifest(directory, root=root)
    for split_name, split in dataset.splits.items():
        if not len(split):
            continue
        collection = Collection(
            name=record["dataset"],
            root="",
            class_names=tuple(record["class_names"]),
            paths=list(split.paths or ()),
            labels=np.asarray(split.labels),
            sources=[
                f"{os.path.join(directory, split_name + '.txt')}:{line}"
                for line in range(1, len(split) + 1)
            ],
        )
        check_images(collection, mode=check)
    return record
