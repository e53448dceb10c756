"""Encoding an image collection with a loaded hasher: files in, codes out.

:func:`encode_images` reads image files as the image store does
(:func:`keras_dhsps.data.decoding.read_image_files`, in the hasher's resize
mode; TensorFlow or Pillow, the same pixels) and encodes them batch by
batch; :func:`encode_collection` streams the codes into an HDF5 code
database (:mod:`keras_dhsps.retrieval.codedb`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence

import numpy as np

from keras_dhsps.data.decoding import bad_image_error
from keras_dhsps.data.decoding import read_image_files
from keras_dhsps.retrieval.codedb import CodeBatch
from keras_dhsps.retrieval.codedb import write_code_database
from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.errors import DHSPSError

logger = logging.getLogger(__name__)


def _take_failures(paths, failures, seen, skip_bad_images, skipped) -> int:
    """Raises the first new failure (after ``seen``) unless
    ``skip_bad_images``, else logs them and adds their positions to
    ``skipped``; returns the failures seen now."""
    for position, reason in failures[seen:]:
        if not skip_bad_images:
            raise bad_image_error(paths[position], reason)
        logger.warning("skipping %s: %s", paths[position], reason)
        skipped.append(position)
    return len(failures)


def encode_images(
    hasher,
    paths: Sequence[str],
    *,
    batch_size: int = 64,
    skip_bad_images: bool = False,
    skipped: list[int] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Encodes image files in batches, in order.

    Images are read at the hasher's stored size and centre-cropped to its
    input, as the image store gives them at evaluation time. A file that
    cannot be read or decoded raises :class:`DataError` naming it, or with
    ``skip_bad_images`` is skipped and its position appended to ``skipped``.

    Args:
        hasher: a ``keras_dhsps.serving.hasher.LoadedHasher``.
        paths: image files.
        batch_size: images per forward pass.
        skip_bad_images: skip undecodable images instead of failing.
        skipped: receives the positions (in ``paths``) of skipped images.

    Yields:
        ``(positions, codes)``: int64 positions in ``paths`` and float32
        relaxed codes ``(n, K)``.
    """
    skipped = skipped if skipped is not None else []
    failures: list = []
    seen = 0
    for positions, images in read_image_files(
        paths,
        resize=hasher.resize,
        size=hasher.stored_size,
        failures=failures,
        batch_size=batch_size,
    ):
        seen = _take_failures(paths, failures, seen, skip_bad_images, skipped)
        images = np.asarray(hasher.crop_stored(images), np.float32)
        yield positions, hasher.codes_from_preprocessed(images)
    _take_failures(paths, failures, seen, skip_bad_images, skipped)


def encode_collection(
    hasher,
    paths: Sequence[str],
    output: str,
    *,
    labels: np.ndarray | None = None,
    batch_size: int = 64,
    skip_bad_images: bool = False,
    store_relaxed: bool = False,
    extra_metadata: dict | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Encodes image files with ``hasher`` into an HDF5 code database.

    Streams: memory holds one batch of images and codes.

    Args:
        hasher: a ``keras_dhsps.serving.hasher.LoadedHasher``.
        paths: image files, in database order.
        output: the ``.h5`` file to write.
        labels: ``(N, C)`` labels aligned with ``paths``, or None.
        batch_size: images per forward pass.
        skip_bad_images: skip (and count) undecodable images.
        store_relaxed: also store relaxed float32 codes.
        extra_metadata: merged into the stored metadata.
        progress: called as ``progress(done, total)`` after each batch.

    Returns:
        ``{"encoded": n, "skipped": m, "skipped_paths": [...]}``.

    Raises:
        DataError: an unreadable image (without ``skip_bad_images``).
    """
    if labels is not None and len(labels) != len(paths):
        raise DHSPSError(f"{len(paths)} paths but {len(labels)} label rows")
    skipped: list[int] = []
    metadata = dict(hasher.metadata)
    metadata["model_path"] = os.path.abspath(hasher.source)
    metadata.update(extra_metadata or {})

    def batches() -> Iterator[CodeBatch]:
        done = 0
        for positions, codes in encode_images(
            hasher,
            paths,
            batch_size=batch_size,
            skip_bad_images=skip_bad_images,
            skipped=skipped,
        ):
            done = int(positions[-1]) + 1
            yield CodeBatch(
                codes=codes,
                paths=[paths[p] for p in positions],
                labels=None if labels is None else labels[positions],
            )
            if progress is not None:
                progress(done, len(paths))
        if progress is not None and done < len(paths):
            progress(len(paths), len(paths))

    count = write_code_database(
        output,
        batches(),
        bits=hasher.bits,
        metadata=metadata,
        num_classes=None if labels is None else int(labels.shape[1]),
        store_relaxed=store_relaxed,
        skipped_paths=lambda: [paths[p] for p in skipped],
    )
    return {
        "encoded": count,
        "skipped": len(skipped),
        "skipped_paths": [paths[p] for p in skipped],
    }


def read_query_images(paths: Sequence[str], hasher) -> np.ndarray:
    """Query images as ``hasher``'s float32 input (stored size, centre
    crop), decoded as ``dhsps encode`` decodes them.

    Raises:
        DataError: naming the first file that cannot be read.
    """
    failures: list = []
    size = dict(resize=hasher.resize, size=hasher.stored_size)
    batches = list(read_image_files(paths, failures=failures, **size))
    if failures:
        position, reason = failures[0]
        raise DataError(f"{paths[position]}: {reason}")
    images = np.concatenate([images for _, images in batches])
    return hasher.crop_stored(images).astype(np.float32)
