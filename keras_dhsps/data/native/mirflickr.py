"""MIRFlickr-25K in its native layout (images + annotation files).

Layout (``mirflickr25k.zip`` and ``mirflickr25k_annotations_v080.zip``
extracted side by side), under ``root``::

    mirflickr/im1.jpg ... im25000.jpg        (or im*.jpg directly in root)
    mirflickr25k_annotations_v080/<concept>.txt, <concept>_r1.txt

Each annotation file lists the numbers of the images showing its concept,
one per line. Two encodings (docs/peers.md §2, docs/method.md §4):

* ``num_labels=38`` (the authors' and DeepHash-pytorch's): the 24
  "potential" files plus the 14 ``*_r1`` "relevant" files, in alphabetical
  file order;
* ``num_labels=24``: the 24 potential concepts only.

Images showing none of the labels are dropped and counted (419 of 25,000
with either encoding). Paths are relative to ``root``.
"""

from __future__ import annotations

import os

import numpy as np

from keras_dhsps.data.collection import Collection
from keras_dhsps.data.splits import Protocol
from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.files import require_file

NUM_IMAGES = 25000

#: The 24 potential concepts of mirflickr25k_annotations_v080.
POTENTIAL = (
    "animals", "baby", "bird", "car", "clouds", "dog", "female", "flower",
    "food", "indoor", "lake", "male", "night", "people", "plant_life",
    "portrait", "river", "sea", "sky", "structures", "sunset", "transport",
    "tree", "water",
)  # fmt: skip

#: The 14 concepts that also have a ``_r1`` ("relevant") file.
RELEVANT = (
    "baby", "bird", "car", "clouds", "dog", "female", "flower", "male",
    "night", "people", "portrait", "river", "sea", "tree",
)  # fmt: skip

#: DeepHash-pytorch's sizes: 1,000 queries, 4,000 training images, the rest
#: the database (DHP kept unlabelled rows: 20,000; after dropping the 419
#: unlabelled images the rest is 19,581), disjoint, random.
PROTOCOL = Protocol(
    num_query=1000,
    num_train=4000,
    num_database=None,
    train_from_database=False,
    source="DeepHash-pytorch data/mirflickr (docs/peers.md §2)",
)

ANNOTATION_DIRS = ("mirflickr25k_annotations_v080", "annotations")


def class_names(num_labels: int) -> tuple[str, ...]:
    """The sorted label names of the 24- or 38-label encoding."""
    if num_labels == 24:
        return tuple(sorted(POTENTIAL))
    if num_labels == 38:
        return tuple(sorted(POTENTIAL + tuple(f"{c}_r1" for c in RELEVANT)))
    raise DataError(
        f"MIRFlickr-25K has a 24-label and a 38-label encoding, "
        f"not {num_labels}"
    )


def _find(root: str) -> tuple[str, str]:
    """``(annotation folder, image folder relative to root)``."""
    annotations = next(
        (
            os.path.join(root, name)
            for name in ANNOTATION_DIRS
            if os.path.isdir(os.path.join(root, name))
        ),
        None,
    )
    if annotations is None:
        raise DataError(
            f"{root}: no MIRFlickr-25K annotation folder "
            f"({' or '.join(ANNOTATION_DIRS)})"
        )
    image_dir = (
        "mirflickr" if os.path.isdir(os.path.join(root, "mirflickr")) else ""
    )
    return annotations, image_dir


def read_annotation_file(path: str, num_images: int = NUM_IMAGES) -> list[int]:
    """The 1-based image numbers listed in one annotation file.

    An empty file is a concept no image shows.

    Raises:
        DataError: a line that is not one image number in 1..num_images,
            a number listed twice, or text that is not UTF-8 (file and
            line).
    """
    numbers, seen = [], {}
    with open(path, "rb") as handle:
        raw = handle.read().splitlines()
    for line_number, data in enumerate(raw, start=1):
        try:
            line = data.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{path}:{line_number}: not UTF-8 text") from None
        fields = line.split()
        if not fields:
            continue
        field = fields[0]
        if len(fields) != 1 or not (field.isascii() and field.isdigit()):
            raise DataError(
                f"{path}:{line_number}: expected one image number per "
                f"line, found {line.strip()!r}"
            )
        number = int(field)
        if not 1 <= number <= num_images:
            raise DataError(
                f"{path}:{line_number}: image number {number} outside "
                f"1..{num_images}"
            )
        if number in seen:
            raise DataError(
                f"{path}:{line_number}: image number {number} listed twice "
                f"(first on line {seen[number]})"
            )
        seen[number] = line_number
        numbers.append(number)
    return numbers


def scan(
    root: str, *, num_labels: int = 38, num_images: int = NUM_IMAGES
) -> Collection:
    """Reads the annotation files of a MIRFlickr-25K directory.

    Args:
        root: the directory holding ``mirflickr/`` and the annotations.
        num_labels: 38 (authors' encoding) or 24.
        num_images: images in the collection (25,000; smaller in tests).

    Raises:
        DataError: a missing annotation folder or file, an annotation file
            whose name is no MIRFlickr concept, or a malformed line.
    """
    names = class_names(num_labels)
    annotations, image_dir = _find(root)
    known = set(class_names(38))
    present = {
        entry[: -len(".txt")]
        for entry in os.listdir(annotations)
        if entry.endswith(".txt") and entry.lower() != "readme.txt"
    }
    unknown = sorted(present - known)
    if unknown:
        raise DataError(
            f"{os.path.join(annotations, unknown[0] + '.txt')}: unknown "
            f"class name {unknown[0]!r} (not a MIRFlickr-25K concept)"
        )
    labels = np.zeros((num_images, len(names)), np.uint8)
    for column, name in enumerate(names):
        path = os.path.join(annotations, name + ".txt")
        require_file(path, "annotation file", error=DataError)
        numbers = read_annotation_file(path, num_images)
        labels[np.asarray(numbers, dtype=np.int64) - 1, column] = 1
    prefix = f"{image_dir}/" if image_dir else ""
    return Collection(
        name="mirflickr25k",
        root=root,
        class_names=names,
        paths=[f"{prefix}im{n}.jpg" for n in range(1, num_images + 1)],
        labels=labels,
        sources=[f"{annotations}: image {n}" for n in range(1, num_images + 1)],
    )
