"""A backend-neutral reader: NumPy batches for ``model.fit``/``predict``.

Where TensorFlow is installed, :mod:`keras_dhsps.data.pipeline` (``tf.data``)
is the default reader; where it is not (a JAX or PyTorch machine), this
module feeds the same splits as plain Python generators of NumPy batches,
which ``model.fit`` and ``model.predict`` accept on every Keras backend.

The training stream is a pure function of ``(seed, step)``: batch ``s`` of
the endless stream is the ``s % steps_per_epoch``-th slice of the
permutation of epoch ``s // steps_per_epoch`` drawn from
``numpy.random.default_rng((seed, epoch))``. A resumed run therefore starts
at any step without reading the batches before it, and two runs with one
seed see identical batches (whatever the backend). As in ``tf.data``
training, the last partial batch of an epoch is dropped when the split
holds at least one full batch.

Images come from the split's image store (:mod:`keras_dhsps.data.store`:
decoded and resized once to the stored size, uint8, shared by every epoch,
fit and encode of a process with ``input.store="memory"``; decoded on
each read with ``"none"``). Batches are ``(images uint8, labels
float32)``: images cross to the device as uint8 (a quarter of float32's
bytes) and the hasher's float32 input casts them there, inside the
compiled step (bit-identical to feeding the same pixels as float32,
tested on both backends).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from keras_dhsps.config import InputConfig
from keras_dhsps.data.base import Split
from keras_dhsps.utils.import_hooks import installed


def default_reader() -> str:
    """``"tf.data"`` where TensorFlow is installed, else ``"numpy"``."""
    return "tf.data" if installed("tensorflow") else "numpy"


def steps_per_epoch(count: int, batch_size: int) -> int:
    """Full batches per epoch (at least one: a split smaller than one batch
    is one batch)."""
    return max(count // batch_size, 1)


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
