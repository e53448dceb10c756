"""The peers' published split and label files, shipped with the package.

``keras_dhsps/data/peer_files/`` holds the list files of VOC2012 and
MIRFlickr-25K and the label matrices of NUS-WIDE (21 concepts) and MS-COCO
published by swuxyj/DeepHash-pytorch (MIT; the license notice and a table of
the files are in that folder). They are gzip-compressed to keep the package
small; :func:`peer_labels` reads a label matrix and :func:`write_peer_lists`
writes the plain list files of a dataset into a directory, where the
``lists`` reader loads them unchanged. See ``docs/datasets.md``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pathlib

import numpy as np

from keras_dhsps.utils.errors import UnknownNameError

PEER_FILES_DIR = pathlib.Path(__file__).parent / "peer_files"

#: dataset -> split -> (file under PEER_FILES_DIR, SHA-256 of its text).
#: ``test`` is the peers' name for the query split. VOC2012 and MIRFlickr
#: files are list files (``path l_1 ... l_C``); NUS-WIDE-21 and COCO files
#: are label matrices (the peers' path column removed).
PEER_FILES = {
    "voc2012": {
        "train": (
            "voc2012/train.txt.gz",
            "d46ad994b58ce89cf6904cf667ff9c2b47e7e08c083b40fd541c88e27119846b",
        ),  # noqa: E501
        "test": (
            "voc2012/test.txt.gz",
            "6c4f2b8297ccea643892c280ee91a48e7cbdbc11ce48d059637ae972fc04589c",
        ),  # noqa: E501
        "database": (
            "voc2012/database.txt.gz",
            "0d33f2ac1adc7ab5e7c1379cbe5dd3c8a1a6d2dab648f23e5ff4ca17a014f1b5",
        ),  # noqa: E501
    },
    "mirflickr25k": {
        "train": (
            "mirflickr25k/train.txt.gz",
            "99a9896a53cde852d6c82426ed46f9e3c255bf5e6567e71be3083ac20d98392b",
        ),  # noqa: E501
        "test": (
            "mirflickr25k/test.txt.gz",
            "603be888c4e3f0c35a7b1596aa6d2bdd4f481d59406610da09efc4c8c837796a",
        ),  # noqa: E501
        "database": (
            "mirflickr25k/database.txt.gz",
            "79c161fbec551b4e59c5c4cf5d9b2b3481fa3e6b93f9bf77a64a6ebf8c983912",
        ),  # noqa: E501
    },
    "nuswide21": {
        "train": (
            "nuswide21/train_labels.txt.gz",
            "f1d21203b01457d6441cffcc6fefcbbe71e4274cefa692809124fa12dd7d0a36",
        ),  # noqa: E501
        "test": (
            "nuswide21/test_labels.txt.gz",
            "99b093e28f4cdb6797c96b654b62ed5462e305f990ac0b75138f6baa3d9a9536",
        ),  # noqa: E501
    },
    "coco": {
        "train": (
            "coco/train_labels.txt.gz",
            "5e462939206f6941cfebb6985bacca270115059f44700ca25940cb281e69f023",
        ),  # noqa: E501
        "test": (
            "coco/test_labels.txt.gz",
            "8ba094cd9727a0e7c83f61e91da1d50181619a88208c532776caa48fe42bf113",
        ),  # noqa: E501
    },
}

#: Datasets whose files carry image paths (loadable by the ``lists`` reader).
LIST_DATASETS = ("voc2012", "mirflickr25k")


def _entry(dataset: str, split: str) -> tuple[str, str]:
    if dataset not in PEER_FILES:
        raise UnknownNameError(
            f"no peer files for dataset {dataset!r}; "
            f"known: {', '.join(PEER_FILES)}"
        )
    splits = PEER_FILES[dataset]
    if split not in splits:
        raise UnknownNameError(
            f"no peer {split!r} file for {dataset}; known: {', '.join(splits)}"
        )
    return splits[split]


def peer_text(dataset: str, split: str) -> str:
    """The text of one peer file, decompressed and checked against its
    recorded SHA-256."""
    name, sha256 = _entry(dataset, split)
    data = gzip.decompress((PEER_FILES_DIR / name).read_bytes())
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"peer file {name} does not match its checksum")
    return data.decode("utf-8")


def peer_labels(dataset: str, split: str) -> np.ndarray:
    """The multi-hot label matrix (uint8, images × labels) of one peer
    split, in the file's row order; unlabelled rows are kept."""
    rows = []
    skip = 1 if dataset in LIST_DATASETS else 0
    for line in peer_text(dataset, split).splitlines():
        if line.strip():
            rows.append([int(v) for v in line.split()[skip:]])
    return np.asarray(rows, dtype=np.uint8)


def write_peer_lists(dataset: str, directory: str) -> str:
    """Writes ``train.txt``, ``test.txt`` and ``database.txt`` of a list
    dataset (VOC2012 or MIRFlickr-25K) into ``directory``; returns it."""
    if dataset not in LIST_DATASETS:
        raise UnknownNameError(
            f"{dataset!r} has no peer list files; "
            f"known: {', '.join(LIST_DATASETS)}"
        )
    os.makedirs(directory, exist_ok=True)
    for split in PEER_FILES[dataset]:
        path = os.path.join(directory, f"{split}.txt")
        with open(path, "w", encoding="utf-8", newline="") as file:
            file.write(peer_text(dataset, split))
    return directory
