"""What a native-layout reader returns, and the checks shared by readers.

A reader scans a dataset directory into a :class:`Collection`: every image
it found, with its multi-hot labels and the annotation file and line that
referenced it (so errors can name them). Images with no label are dropped
here and counted; missing or undecodable images raise a :class:`DataError`
naming the referencing file and line, or, with ``skip_bad_images``, are
dropped and counted too.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os

import numpy as np
from numpy.typing import NDArray

from keras_dhsps.utils.errors import DataError

logger = logging.getLogger(__name__)

#: ``check_images`` modes: how hard each image file is checked.
#: ``exists``: the file is there; ``header``: PIL can identify it and its
#: structure verifies (fast, reads no pixels); ``decode``: every pixel
#: decodes (slow: about 3 ms per 500×375 JPEG per core).
CHECK_MODES = ("none", "exists", "header", "decode")


@dataclasses.dataclass
class Collection:
    """Every labelled image a reader found, before any split.

    Attributes:
        name: the dataset's registry name.
        root: the dataset directory; ``paths`` are relative to it.
        class_names: C names, sorted, in label-column order.
        paths: N image paths relative to ``root`` (``/`` separated).
        labels: ``(N, C)`` uint8 multi-hot labels.
        sources: N ``"file:line"`` strings: where each image was named.
        dropped: reason -> number of images left out (``unlabelled``,
            ``missing_image``, ``undecodable_image``).
    """

    name: str
    root: str
    class_names: tuple[str, ...]
    paths: list[str]
    labels: NDArray[np.uint8]
    sources: list[str]
    dropped: dict[str, int] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if list(self.class_names) != sorted(self.class_names):
            raise ValueError("class names must be sorted")
        if not len(self.paths) == len(self.labels) == len(self.sources):
            raise ValueError("paths, labels and sources differ in length")

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, keep: NDArray[np.bool_]) -> Collection:
        """The images where ``keep`` is true (same dropped counts)."""
        rows = np.flatnonzero(keep)
        return dataclasses.replace(
            self,
            paths=[self.paths[row] for row in rows],
            labels=self.labels[rows],
            sources=[self.sources[row] for row in rows],
            dropped=dict(self.dropped),
        )

    def drop_unlabelled(self) -> Collection:
        """Drops images with no positive label and counts them."""
        labelled = self.labels.sum(axis=1) > 0
        result = self.subset(labelled)
        count = int((~labelled).sum())
        result.dropped["unlabelled"] = (
            result.dropped.get("unlabelled", 0) + count
        )
        if count:
            logger.info("%s: dropped %d unlabelled images", self.name, count)
        return result


def _check_one(path: str, mode: str) -> str | None:
    """None if the image passes ``mode``, else the reason it fails."""
    if not os.path.isfile(path):
        return "missing_image"
    if mode == "exists":
        return None
    from PIL import Image

    try:
        with Image.open(path) as image:
            if mode == "header":
                image.verify()
            else:
                image.load()
    except Exception:  # PIL raises many types for corrupt files.
        return "undecodable_image"
    return None


def check_images(
    collection: Collection,
    *,
    mode: str = "header",
    skip_bad_images: bool = False,
    workers: int | None = None,
) -> Collection:
    """Checks every image file; raises or drops (and counts) bad ones.

    Args:
        collection: what a reader found.
        mode: one of :data:`CHECK_MODES`.
        skip_bad_images: drop and count bad images instead of raising.
        workers: threads for the checks (default: CPU count, at most 8).

    Raises:
        DataError: a missing or undecodable image (naming the annotation
            file and line that referenced it, and the image).
    """
    if mode not in CHECK_MODES:
        raise DataError(
            f"unknown image check {mode!r}; known: {', '.join(CHECK_MODES)}"
        )
    if mode == "none" or not len(collection):
        return collection
    absolute = [os.path.join(collection.root, p) for p in collection.paths]
    workers = workers or min(8, os.cpu_count() or 1)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        reasons = list(pool.map(lambda p: _check_one(p, mode), absolute))
    keep = np.array([reason is None for reason in reasons], dtype=bool)
    if keep.all():
        return collection
    if not skip_bad_images:
        row = int(np.flatnonzero(~keep)[0])
        what = (
            "image not found"
            if reasons[row] == "missing_image"
            else "image cannot be decoded"
        )
        raise DataError(
            f"{collection.sources[row]}: {what}: {absolute[row]} "
            "(use --skip-bad-images to skip and count such images)"
        )
    result = collection.subset(keep)
    for reason in reasons:
        if reason is not None:
            result.dropped[reason] = result.dropped.get(reason, 0) + 1
    logger.warning(
        "%s: skipped %d bad images", collection.name, int((~keep).sum())
    )
    return result


def labels_from_sets(
    label_sets: list[set[str]], class_names: tuple[str, ...]
) -> NDArray[np.uint8]:
    """``(N, C)`` multi-hot rows from per-image sets of class names."""
    column = {name: index for index, name in enumerate(class_names)}
    labels = np.zeros((len(label_sets), len(class_names)), np.uint8)
    for row, names in enumerate(label_sets):
        for name in names:
            labels[row, column[name]] = 1
    return labels
