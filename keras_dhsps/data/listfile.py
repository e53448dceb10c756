"""The peers' list-file format: ``relative/path l_1 ... l_C`` per line.

Used by DeepHash-pytorch, THU DeepHash, HashNet, CSQ and FIRe, so their
published splits load unchanged (docs/peers.md §2). Paths are relative to a
dataset root given by the user. Errors name the file and the line.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from keras_dhsps.data.base import RetrievalDataset
from keras_dhsps.data.base import Split
from keras_dhsps.data.splits import carve_rows
from keras_dhsps.data.splits import overlaps
from keras_dhsps.data.splits import split_rows
from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.files import require_file

logger = logging.getLogger(__name__)

#: Optional file of class names, one per line, in column order (written by
#: ``dhsps data prepare``); without it columns are named ``class_<i>``.
CLASS_FILE = "classes.txt"

#: split name -> list file name, as the peers name them (test = queries).
LIST_FILES = {
    "train": "train.txt",
    "query": "test.txt",
    "database": "database.txt",
}


def read_list_file(
    path: str, *, root: str, num_classes: int | None = None
) -> tuple[tuple[str, ...], np.ndarray]:
    """Reads one list file.

    Args:
        path: the list file.
        root: directory the image paths are relative to.
        num_classes: expected C; by default the first line decides.

    Returns:
        ``(paths, labels)``: absolute image paths and ``(N, C)`` uint8 labels.

    Raises:
        DataError: unreadable file, text that is not UTF-8, a line with the
            wrong number of fields, a label that is not 0 or 1, an image
            path that is absolute or leaves ``root`` through ``..``, a path
            listed twice, an empty file, or a missing image; the message
            names ``path`` and the line number.
    """
    require_file(path, "list file", error=DataError)
    paths, rows = [], []
    first_line: dict[str, int] = {}
    with open(path, "rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            where = f"{path}:{line_number}"
            try:
                # utf-8-sig: a byte-order mark (Windows editors write one)
                # is not part of the first image path.
                line = raw.decode("utf-8-sig" if line_number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{where}: not UTF-8 text") from None
            fields = line.split()
            if not fields:
                continue
            if num_classes is None:
                num_classes = len(fields) - 1
                if num_classes < 1:
                    raise DataError(
                        f"{where}: expected an image path "
                        "followed by labels, found one field"
                    )
            if len(fields) != num_classes + 1:
                raise DataError(
                    f"{where}: expected {num_classes + 1} fields "
                    f"(path + {num_classes} labels), found {len(fields)}"
                )
            labels = fields[1:]
            if any(value not in ("0", "1") for value in labels):
                raise DataError(
                    f"{where}: labels must be 0 or 1, "
                    f"found {' '.join(labels)!r}"
                )
            relative = os.path.normpath(fields[0])
            if os.path.isabs(relative) or relative.split(os.sep)[0] == "..":
                raise DataError(
                    f"{where}: image path {fields[0]!r} is outside the "
                    "dataset root (absolute or through '..')"
                )
            if relative in first_line:
                raise DataError(
                    f"{where}: duplicate image path {fields[0]!r} (first "
                    f"on line {first_line[relative]})"
                )
            first_line[relative] = line_number
            image = os.path.join(root, fields[0])
            require_file(image, f"{where}: image", error=DataError)
            paths.append(image)
            rows.append([int(value) for value in labels])
    if not rows:
        raise DataError(f"{path}: list file has no entries")
    return tuple(paths), np.asarray(rows, dtype=np.uint8)


def _read_split(
    path: str, *, root: str, num_classes: int | None, drop_unlabelled: bool
) -> tuple[Split, int]:
    """Reads one list file into a split; returns it and its unlabelled rows.

    Rows with no positive label are logged and, with ``drop_unlabelled``,
    dropped.
    """
    paths, labels = read_list_file(path, root=root, num_classes=num_classes)
    labelled = labels.sum(axis=1) > 0
    unlabelled = int((~labelled).sum())
    if unlabelled:
        logger.warning(
            "%s: %d rows have no label%s",
            path,
            unlabelled,
            " (dropped)" if drop_unlabelled else "",
        )
    if drop_unlabelled:
        rows = np.flatnonzero(labelled)
        labels = labels[rows]
        paths = tuple(paths[row] for row in rows)
    return Split(labels=labels, paths=paths), unlabelled


def _warn_overlaps(name: str, splits: dict[str, Split]) -> dict:
    """Images shared by each pair of splits, logging every non-zero count."""
    shared = overlaps(
        {key: list(split.paths or ()) for key, split in splits.items()}
    )
    for pair, count in shared.items():
        if count:
            logger.warning("%s: %d images in both %s", name, count, pair)
    return shared


def load_list_files(
    root: str | None,
    *,
    seed: int = 0,
    lists_dir: str | None = None,
    validation_fraction: float = 0.1,
    name: str = "lists",
    drop_unlabelled: bool = True,
) -> RetrievalDataset:
    """Loads ``train.txt``, ``test.txt`` (queries) and ``database.txt``.

    Args:
        root: dataset root the image paths are relative to.
        seed: seed of the validation carve-out.
        lists_dir: where the list files are; defaults to ``root``.
        validation_fraction: share of ``train.txt`` held out for model
            selection (never the queries).
        name: the dataset's name in reports.
        drop_unlabelled: drop rows with no positive label (IDHN's soft
            similarity is undefined for them); False keeps them, as the
            peers do. Either way their number per file is logged and
            returned in ``info["unlabelled"]``.

    Raises:
        DataError: missing root or list file, or a malformed line.
    """
    if root is None:
        raise DataError(f"dataset {name!r} needs --data-root")
    if not os.path.isdir(root):
        raise DataError(f"data root not found: {root}")
    lists_dir = lists_dir or root
    splits: dict[str, Split] = {}
    unlabelled: dict[str, int] = {}
    num_classes = None
    for split_name, file_name in LIST_FILES.items():
        splits[split_name], unlabelled[split_name] = _read_split(
            os.path.join(lists_dir, file_name),
            root=root,
            num_classes=num_classes,
            drop_unlabelled=drop_unlabelled,
        )
        num_classes = splits[split_name].labels.shape[1]
    train, validation = (
        split_rows(splits["train"], rows)
        for rows in carve_rows(len(splits["train"]), validation_fraction, seed)
    )
    splits = {
        "train": train,
        "validation": validation,
        "query": splits["query"],
        "database": splits["database"],
    }
    assert num_classes is not None
    class_names = _class_names(os.path.join(lists_dir, CLASS_FILE), num_classes)
    shared = _warn_overlaps(name, splits)
    return RetrievalDataset(
        name=name,
        class_names=class_names,
        splits=splits,
        info={
            "unlabelled": unlabelled,
            "dropped": {
                "unlabelled": sum(unlabelled.values()) if drop_unlabelled else 0
            },
            "overlaps": shared,
        },
    )


def _class_names(path: str, num_classes: int) -> tuple[str, ...]:
    """Names from ``classes.txt`` if present, else ``class_0`` ...."""
    if not os.path.isfile(path):
        return tuple(f"class_{index}" for index in range(num_classes))
    with open(path, encoding="utf-8-sig") as handle:
        names = tuple(line.strip() for line in handle if line.strip())
    if len(names) != num_classes:
        raise DataError(
            f"{path}: {len(names)} class names but the list files have "
            f"{num_classes} label columns"
        )
    return names
