"""The NumPy reader: plain generators of uint8 batches, for every backend.

It reads the split's image store (:mod:`keras_dhsps.data.store`) and feeds
``model.fit`` and ``model.predict`` on any Keras backend, without
TensorFlow. Batch ``s`` of the training stream is a pure function of the
seed and ``s`` (:func:`batch_indices`), so a resumed run never reads the
batches before its step. :mod:`keras_dhsps.data.readers` chooses it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from keras_dhsps.config import InputConfig
from keras_dhsps.data.base import Split
from keras_dhsps.data.base import steps_per_epoch


def batch_indices(count: int, batch_size: int, seed: int, step: int):
    """The image indices of batch ``step`` of the seeded training stream."""
    epoch, offset = divmod(int(step), steps_per_epoch(count, batch_size))
    order = np.random.default_rng((int(seed), epoch)).permutation(count)
    return order[offset * batch_size : (offset + 1) * batch_size]


def open_image_store(split: Split, image_size, input_config=None):
    """The image store of ``split`` for a model taking ``image_size``
    images (``keras_dhsps.data.store.open_store``; ``input_config`` None:
    the defaults)."""
    from keras_dhsps.data.store import open_store

    return open_store(
        split,
        image_size=tuple(int(v) for v in image_size),
        input_config=input_config or InputConfig(),
    )


def center_crop(images: np.ndarray, image_size) -> np.ndarray:
    """The centre ``image_size`` window of ``(N, H, W, C)`` images (a view;
    the images themselves when they are that size)."""
    height, width = (int(v) for v in image_size)
    top = (images.shape[1] - height) // 2
    left = (images.shape[2] - width) // 2
    return images[:, top : top + height, left : left + width]


def training_batches(
    split: Split,
    *,
    batch_size: int,
    image_size,
    seed: int,
    start: int = 0,
    store=None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The endless seeded training stream from global step ``start``.

    uint8 batches are read from ``store`` (:func:`open_image_store`; None:
    the split's store with the default input config) and its ``labels``;
    the batches before ``start`` are never read.
    """
    if store is None:
        store = open_image_store(split, image_size)
    labels = np.asarray(store.labels, dtype=np.float32)
    step = int(start)
    while True:
        index = batch_indices(len(labels), batch_size, seed, step)
        yield center_crop(store.read(index), image_size), labels[index]
        step += 1


def training_labels(split: Split, *, batch_size: int, seed: int, step: int):
    """The labels of batch ``step`` of :func:`training_batches` (read
    without decoding an image)."""
    index = batch_indices(len(split), batch_size, seed, step)
    return np.asarray(split.labels, dtype=np.float32)[index]


def ordered_batches(
    split: Split, *, batch_size: int, image_size, store=None
) -> Iterator[tuple[np.ndarray]]:
    """Every image of ``split`` in order, as ``(uint8 images,)`` batches
    (evaluation; ``model.predict`` takes one-element tuples), read from
    ``store`` (None: the split's store with the default input config) and
    centre-cropped to ``image_size`` when stored larger."""
    if store is None:
        store = open_image_store(split, image_size)
    for begin in range(0, len(store), batch_size):
        index = np.arange(begin, min(begin + batch_size, len(store)))
        yield (center_crop(store.read(index), image_size),)


class NumpyReader:
    """The NumPy reader behind :func:`keras_dhsps.data.readers.open_reader`."""

    def training_batches(
        self, split, *, batch_size, image_size, seed, input_config, start=0
    ):
        """The endless seeded training stream from global step ``start``."""
        return training_batches(
            split,
            batch_size=batch_size,
            image_size=image_size,
            seed=seed,
            start=start,
            store=open_image_store(split, image_size, input_config),
        )

    def training_labels(self, split, *, batch_size, seed, step, **_):
        """The labels of batch ``step`` (no image is read)."""
        return training_labels(
            split, batch_size=batch_size, seed=seed, step=step
        )

    def ordered_images(self, split, *, batch_size, image_size, input_config):
        """``(batches, steps)`` of every image of ``split`` in order, for
        ``model.predict``."""
        batches = ordered_batches(
            split,
            batch_size=batch_size,
            image_size=image_size,
            store=open_image_store(split, image_size, input_config),
        )
        return batches, -(-len(split) // batch_size)
