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

Images are read from memory (``Split.images``) or decoded with Pillow
(``Split.paths``) and brought to the model's input size by a bilinear resize
straight to ``(H, W)`` when their size differs: the authors' ``"direct"``
mode, or ``"resize_crop"`` when the model's input is ``resize_to`` and the
model crops (``keras_dhsps.models.build_hasher``). Batches are
``(images uint8, labels float32)``: images cross to the device as uint8
(a quarter of float32's bytes) and the hasher's float32 input casts them
there, inside the compiled step (bit-identical to feeding the same pixels
as float32, tested on both backends).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator

import numpy as np

from keras_dhsps.data.base import Split
from keras_dhsps.errors import DHSPSError

#: How images reach ``image_size`` (``InputConfig.resize``):
#:
#: * ``"direct"``: bilinear resize straight to ``image_size``, aspect ratio
#:   not kept (the authors' code: every image resized to 227×227, no crop).
#: * ``"resize_crop"``: resize to ``resize_to`` (default 256×256, the Caffe
#:   convention), then crop ``image_size`` (224 or 227): the centre for
#:   evaluation, a random window for training when ``random_crop``.
#: * ``"shorter_side_crop"``: resize so the shorter side is
#:   ``resize_to[0]`` keeping the aspect ratio, then crop as above (the
#:   torchvision/ImageNet convention).
RESIZE_MODES = ("direct", "resize_crop", "shorter_side_crop")


def check_input_config(input_config, reader: str) -> None:
    """Refuses ``InputConfig`` values a reader cannot serve, in one line.

    Raises:
        DHSPSError: an unknown resize mode, a crop without a cropping mode,
            or (NumPy reader) ``"shorter_side_crop"``. (Crop and flip are
            layers of the model, so every reader serves them.)
    """
    resize = input_config.resize
    if resize not in RESIZE_MODES:
        raise DHSPSError(
            f"input.resize={resize!r} is not a resize mode; choose one of "
            f"{', '.join(RESIZE_MODES)}"
        )
    if input_config.random_crop and resize == "direct":
        raise DHSPSError(
            "input.random_crop=true needs a cropping input.resize "
            "(resize_crop or shorter_side_crop), not 'direct'"
        )
    if reader == "numpy" and resize == "shorter_side_crop":
        raise DHSPSError(
            "input.resize='shorter_side_crop' needs the tf.data reader "
            "(TensorFlow); without TensorFlow use 'direct' or 'resize_crop'"
        )


def tensorflow_available() -> bool:
    """Whether TensorFlow can be imported (without importing it)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"] is not None
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except ImportError:  # an import hook that refuses it
        return False


def default_reader() -> str:
    """``"tf.data"`` where TensorFlow is installed, else ``"numpy"``."""
    return "tf.data" if tensorflow_available() else "numpy"


def steps_per_epoch(count: int, batch_size: int) -> int:
    """Full batches per epoch (at least one: a split smaller than one batch
    is one batch)."""
    return max(count // batch_size, 1)


def batch_indices(count: int, batch_size: int, seed: int, step: int):
    """The image indices of batch ``step`` of the seeded training stream."""
    epoch, offset = divmod(int(step), steps_per_epoch(count, batch_size))
    order = np.random.default_rng((int(seed), epoch)).permutation(count)
    return order[offset * batch_size : (offset + 1) * batch_size]


def read_images(split: Split, indices, image_size) -> np.ndarray:
    """uint8 ``(len(indices), H, W, 3)`` images of ``split``, in order.

    In-memory images at the model's size are taken as they are; others are
    resized bilinearly to ``image_size`` (and decoded with Pillow first when
    ``split`` holds paths).
    """
    height, width = (int(v) for v in image_size)
    indices = np.asarray(indices, dtype=np.int64)
    if split.images is not None:
        images = split.images[indices]
        if images.shape[1:3] == (height, width):
            return np.asarray(images, dtype=np.uint8)
        sources = list(images)
    else:
        sources = [split.paths[i] for i in indices]
    batch = np.empty((len(indices), height, width, 3), np.uint8)
    for row, source in enumerate(sources):
        batch[row] = _load_resized(source, height, width)
    return batch


def _load_resized(source, height, width) -> np.ndarray:
    from PIL import Image

    if isinstance(source, np.ndarray):
        image = Image.fromarray(source)
    else:
        with Image.open(source) as opened:
            image = opened.convert("RGB")
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def open_image_store(split: Split, image_size, input_config):
    """The image store of ``split`` (``keras_dhsps.data.store.open_store``:
    each image decoded and resized once to the stored size, uint8), or
    None where that module is not installed yet."""
    try:
        from keras_dhsps.data.store import open_store
    except ImportError:
        return None
    return open_store(
        split, image_size=tuple(image_size), input_config=input_config
    )


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

    With a ``store`` (:func:`open_image_store`), uint8 batches are read
    from it (``store.read(indices)``, its ``labels``); the batches before
    ``start`` are never read.
    """
    labels = split.labels if store is None else store.labels
    labels = np.asarray(labels, dtype=np.float32)
    step = int(start)
    while True:
        index = batch_indices(len(labels), batch_size, seed, step)
        if store is None:
            images = read_images(split, index, image_size)
        else:
            images = store.read(index)
        yield images, labels[index]
        step += 1


def training_labels(split: Split, *, batch_size: int, seed: int, step: int):
    """The labels of batch ``step`` of :func:`training_batches` (read
    without decoding an image)."""
    index = batch_indices(len(split), batch_size, seed, step)
    return np.asarray(split.labels, dtype=np.float32)[index]


def ordered_batches(
    split: Split, *, batch_size: int, image_size
) -> Iterator[tuple[np.ndarray]]:
    """Every image of ``split`` in order, as ``(uint8 images,)`` batches
    (evaluation; ``model.predict`` takes one-element tuples)."""
    for begin in range(0, len(split), batch_size):
        index = np.arange(begin, min(begin + batch_size, len(split)))
        yield (read_images(split, index, image_size),)
