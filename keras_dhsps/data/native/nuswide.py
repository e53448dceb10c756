"""NUS-WIDE restricted to its 21 most frequent concepts (NUS-WIDE-TC21).

Layout (the official distribution), under ``root``::

    ImageList/Imagelist.txt                       one image per line
    Groundtruth/AllLabels/Labels_<concept>.txt    one 0/1 per line, aligned
    Flickr/<folder>/<file>.jpg                    the images

``Imagelist.txt`` lines are Windows paths such as
``C:\\ImageData\\Flickr\\actor\\0001_2124494179.jpg``; the last two components
(``actor/0001_2124494179.jpg``) are looked up under ``root/Flickr``.

The classes are the ``top_k`` (21) concepts with most positive images,
ties broken by name, then sorted by name; ``concepts=`` names them
explicitly instead. Images with none of them are dropped and counted.
"""

from __future__ import annotations

import os

import numpy as np

from keras_dhsps.data.collection import Collection
from keras_dhsps.data.splits import Protocol
from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.errors import UnknownNameError
from keras_dhsps.utils.files import require_file

#: DPSH/DSDH convention: 100 queries and 500 training images per concept
#: (2,100 and 10,500), training drawn from the database = every non-query
#: image (docs/peers.md §2, docs/method.md §4).
PROTOCOL = Protocol(
    num_query=2100,
    num_train=10500,
    num_database=None,
    train_from_database=True,
    per_class=True,
    source="DPSH/DSDH NUS-WIDE-TC21 convention (docs/peers.md §2)",
)

LABEL_DIR = os.path.join("Groundtruth", "AllLabels")
IMAGE_LIST = os.path.join("ImageList", "Imagelist.txt")


def _read_image_list(path: str) -> list[str]:
    """``Flickr/FOLDER/FILE`` of every ``Imagelist.txt`` line.

    Raises:
        DataError: an empty line, a line without ``FOLDER\\FILE``, a
            ``.``/``..`` component (a path escaping ``root/Flickr``), a path
            listed twice, or no lines at all (file and line).
    """
    require_file(path, "NUS-WIDE image list", error=DataError)
    paths, seen = [], {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line_number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text:
                raise DataError(f"{path}:{line_number}: empty line")
            parts = [p for p in text.replace("\\", "/").split("/") if p]
            if len(parts) < 2:
                raise DataError(
                    f"{path}:{line_number}: expected FOLDER\\FILE, "
                    f"found {text!r}"
                )
            if {".", ".."} & set(parts[-2:]):
                raise DataError(
                    f"{path}:{line_number}: {text!r} escapes the image "
                    "folder (a '.' or '..' component)"
                )
            relative = "Flickr/" + "/".join(parts[-2:])
            if relative in seen:
                raise DataError(
                    f"{path}:{line_number}: {relative} listed twice (first "
                    f"on line {seen[relative]})"
                )
            seen[relative] = line_number
            paths.append(relative)
    if not paths:
        raise DataError(f"{path}: image list has no entries")
    return paths


def read_label_file(path: str, num_images: int) -> np.ndarray:
    """One concept's 0/1 column (fast path, exact errors on failure).

    Raises:
        DataError: wrong line count, a line with more or fewer than one
            field, a value other than 0 or 1, or text that is not UTF-8
            (file and line).
    """
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataError(f"{path}:{line}: not UTF-8 text") from None
    values = np.array(text.split())
    lines = text.splitlines()
    if (
        len(values) == len(lines) == num_images
        and all(line.strip() for line in lines)
        and np.isin(values, ("0", "1")).all()
    ):
        return (values == "1").astype(np.uint8)
    for line_number, line in enumerate(lines, start=1):
        fields = line.split()
        if len(fields) != 1:
            raise DataError(
                f"{path}:{line_number}: expected 1 column (0 or 1), "
                f"found {len(fields)}"
            )
        if fields[0] not in ("0", "1"):
            raise DataError(
                f"{path}:{line_number}: expected 0 or 1, found {fields[0]!r}"
            )
    raise DataError(
        f"{path}: {len(lines)} lines but the image list has {num_images}"
    )


def scan(
    root: str, *, top_k: int = 21, concepts: list[str] | None = None
) -> Collection:
    """Reads a NUS-WIDE directory, keeping ``top_k`` concepts.

    Args:
        root: the NUS-WIDE directory.
        top_k: keep the most frequent concepts (21 for TC21).
        concepts: explicit concept names instead of ``top_k``.

    Raises:
        DataError: missing or malformed files.
        UnknownNameError: a name in ``concepts`` has no label file.
    """
    list_path = os.path.join(root, IMAGE_LIST)
    paths = _read_image_list(list_path)
    label_dir = os.path.join(root, LABEL_DIR)
    if not os.path.isdir(label_dir):
        raise DataError(f"{label_dir}: NUS-WIDE label folder not found")
    available = sorted(
        name[len("Labels_") : -len(".txt")]
        for name in os.listdir(label_dir)
        if name.startswith("Labels_") and name.endswith(".txt")
    )
    if concepts is not None:
        unknown = sorted(set(concepts) - set(available))
        if unknown:
            raise UnknownNameError(
                f"unknown NUS-WIDE concept {unknown[0]!r}: no "
                f"{os.path.join(label_dir, 'Labels_' + unknown[0] + '.txt')}"
            )
        chosen = sorted(set(concepts))
        columns = {
            name: read_label_file(
                os.path.join(label_dir, f"Labels_{name}.txt"), len(paths)
            )
            for name in chosen
        }
    else:
        every = {
            name: read_label_file(
                os.path.join(label_dir, f"Labels_{name}.txt"), len(paths)
            )
            for name in available
        }
        if len(every) < top_k:
            raise DataError(
                f"{label_dir}: {len(every)} concept label files, "
                f"fewer than top_k={top_k}"
            )
        ranked = sorted(every, key=lambda name: (-int(every[name].sum()), name))
        chosen = sorted(ranked[:top_k])
        columns = {name: every[name] for name in chosen}
    labels = np.stack([columns[name] for name in chosen], axis=1)
    return Collection(
        name="nuswide21",
        root=root,
        class_names=tuple(chosen),
        paths=paths,
        labels=labels.astype(np.uint8),
        sources=[f"{list_path}:{n}" for n in range(1, len(paths) + 1)],
    )
