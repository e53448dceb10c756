"""From image files to uint8 pixels at the stored size, with or without TF.

:func:`read_image_files` is the one reader of image files (the image store,
``dhsps encode`` and ``dhsps search`` use it): TensorFlow
(:func:`decode_image`, :func:`resize_images`) where it is importable, else
Pillow (:func:`pillow_decode` and :func:`_numpy_resize`, the same pixels) in
worker processes. A file that fails is left out and reported as
:data:`NOT_FOUND` or :func:`decode_failure`'s ``cannot decode image
(reason)``; :func:`bad_image_error` is the one error line naming it.
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import logging
import multiprocessing
import os
import re
from collections.abc import Iterator

import numpy as np

from keras_dhsps.data.base import Split
from keras_dhsps.utils.errors import DataError

logger = logging.getLogger(__name__)

#: Images per TF batch and per Pillow worker task.
BATCH_IMAGES = 64
CHUNK_IMAGES = 32
#: Pillow decodes splits up to this size in-process (a pool of spawned
#: workers takes about a second to start).
IN_PROCESS_MAX = 256
#: Why a file that does not exist was left out.
NOT_FOUND = "image not found"


def decode_failure(reason=None) -> str:
    """Why a file was left out when it would not decode: ``cannot decode
    image (reason)``, with the first line of the decoder's ``reason``."""
    lines = str(reason or "").strip().splitlines()
    return (
        f"cannot decode image ({lines[0]})" if lines else "cannot decode image"
    )


def bad_image_error(name: str, reason: str) -> DataError:
    """The error of an image that cannot be read: ``FILE: reason``, and how
    to skip such images instead."""
    return DataError(
        f"{name}: {reason} (pass skip_bad_images=True or --skip-bad-images "
        "to skip and count such images)"
    )


# ------------------------------------------------- decoding (TensorFlow)
def tensorflow_or_none():
    """The ``tensorflow`` module, or None where it is not installed (the
    store, the encode stream and query reading then decode with Pillow)."""
    try:
        import tensorflow as tf
    except ImportError:
        return None
    return tf


def decode_image(data):
    """TF: encoded bytes -> uint8 ``(H, W, 3)``; JPEGs with the accurate
    integer IDCT (as Pillow decodes them), other formats (PNG, BMP, GIF's
    first frame) by ``tf.io.decode_image``."""
    import tensorflow as tf

    return tf.cond(
        tf.io.is_jpeg(data),
        lambda: tf.io.decode_jpeg(
            data, channels=3, dct_method="INTEGER_ACCURATE"
        ),
        lambda: tf.io.decode_image(data, channels=3, expand_animations=False),
    )


def resize_images(images, *, resize: str, size: tuple[int, int]):
    """TF: ``(..., h, w, C)`` images (one or a batch) -> uint8
    ``(..., H, W, C)`` at the stored ``size``
    (:func:`keras_dhsps.data.sizes.stored_size`).

    The one resize rule of training and export: bilinear, half-pixel
    centres, no antialiasing, rounded to the nearest integer;
    ``"shorter_side_crop"`` scales the shorter side to ``size[0]`` and
    keeps the centre ``size`` window. An image already at ``size`` is
    returned unchanged.
    """
    import tensorflow as tf

    height, width = size
    images = tf.convert_to_tensor(images)
    if resize == "shorter_side_crop":
        shape = tf.cast(tf.shape(images)[-3:-1], tf.float32)
        scale = height / tf.reduce_min(shape)
        scaled = tf.cast(tf.math.ceil(shape * scale - 1e-3), tf.int32)
        scaled = tf.maximum(scaled, height)
        top = (scaled[0] - height) // 2
        left = (scaled[1] - width) // 2
        resized = tf.image.resize(images, scaled)
        resized = resized[..., top : top + height, left : left + width, :]
    else:
        resized = tf.image.resize(images, (height, width))
    resized = tf.saturate_cast(tf.round(resized), tf.uint8)
    return tf.ensure_shape(
        resized, resized.shape[:-3].concatenate([height, width, None])
    )


def _tf_message(error) -> str:
    text = str(getattr(error, "message", error)).splitlines()[0]
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)
    return re.sub(r"\s*\[Op:\w+\]", "", text).strip()


def _tf_failure(path: str) -> str:
    """Why TensorFlow cannot decode ``path`` (it is known to fail)."""
    import tensorflow as tf

    if not os.path.isfile(path):
        return NOT_FOUND
    try:
        decode_image(tf.io.read_file(path))
    except tf.errors.OpError as error:
        return decode_failure(_tf_message(error))
    return decode_failure()


def _note_failures(paths, indices, failures: list, reason) -> None:
    for index in indices:
        failures.append((int(index), reason(paths[int(index)])))


def _tf_batches(paths, resize, size, failures: list, batch_size: int):
    """``(positions, uint8 images)`` batches of ``batch_size`` decoded
    images, by tf.data (parallel map, in order)."""
    import tensorflow as tf

    def load(index, path):
        image = decode_image(tf.io.read_file(path))
        return index, resize_images(image, resize=resize, size=size)

    dataset = (
        tf.data.Dataset.from_tensor_slices(
            (
                np.arange(len(paths), dtype=np.int64),
                tf.constant(list(paths), tf.string),
            )
        )
        .map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .ignore_errors()
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    # The map runs images in parallel already; single-threaded ops inside
    # it spend ~7% less CPU per image than the shared intra-op pool.
    options = tf.data.Options()
    options.threading.max_intra_op_parallelism = 1
    dataset = dataset.with_options(options)
    expected = 0
    for indices, images in dataset:
        indices = indices.numpy()
        gaps = np.setdiff1d(np.arange(expected, indices[-1]), indices)
        _note_failures(paths, gaps, failures, _tf_failure)
        expected = int(indices[-1]) + 1
        yield indices, images.numpy()
    tail = range(expected, len(paths))
    _note_failures(paths, tail, failures, _tf_failure)


# ----------------------------------------------------- decoding (Pillow)
def _sample_points(out_size: int, in_size: int, first: int, count: int):
    """Where ``tf.image.resize`` (bilinear, half-pixel centres) samples
    output positions ``first .. first + count - 1`` of an axis resized from
    ``in_size`` to ``out_size``: the lower and upper input index and the
    weight of the upper one (``(count, 1)``), computed in float32 as
    TensorFlow's CPU kernel computes them."""
    scale = np.float32(in_size) / np.float32(out_size)
    positions = np.arange(first, first + count, dtype=np.float32)
    coords = (positions + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(coords)
    lower = np.maximum(floor, 0).astype(np.intp)
    upper = np.minimum(np.ceil(coords), in_size - 1).astype(np.intp)
    return lower, upper, (coords - floor)[:, None]


def _numpy_resize(pixels: np.ndarray, *, resize: str, size: tuple[int, int]):
    """NumPy twin of :func:`resize_images`: one uint8 ``(h, w, 3)`` image
    -> uint8 ``(H, W, 3)``, without TensorFlow.

    It repeats TensorFlow's CPU kernel (``resize_bilinear_op.cc``): the
    same float32 sample points, the four neighbours cast to float32, the
    top and bottom rows interpolated across, then between them, one
    float32 operation at a time in the kernel's order, then rounded. So it
    gives TensorFlow's pixels exactly (``tests/data/test_store.py``). For the
    cropping modes only the kept window is computed.
    """
    in_height, in_width = pixels.shape[:2]
    height, width = size
    if resize == "shorter_side_crop":
        shape = np.array([in_height, in_width], np.float32)
        scale = np.float32(height) / shape.min()
        scaled = np.ceil(shape * scale - np.float32(1e-3)).astype(np.int64)
        scaled = np.maximum(scaled, height)
        top, left = (scaled[0] - height) // 2, (scaled[1] - width) // 2
    else:
        scaled, top, left = (height, width), 0, 0
    if (in_height, in_width) == tuple(scaled):
        return pixels[top : top + height, left : left + width].copy()
    y0, y1, y_weight = _sample_points(scaled[0], in_height, top, height)
    x0, x1, x_weight = _sample_points(scaled[1], in_width, left, width)
    upper_rows, lower_rows = pixels.take(y0, axis=0), pixels.take(y1, axis=0)
    top_left = upper_rows.take(x0, axis=1).astype(np.float32)
    top_right = upper_rows.take(x1, axis=1).astype(np.float32)
    bottom_left = lower_rows.take(x0, axis=1).astype(np.float32)
    bottom_right = lower_rows.take(x1, axis=1).astype(np.float32)
    # In place: top = tl + (tr - tl) * x; bottom likewise; top + (b - t) * y.
    upper = top_right
    upper -= top_left
    upper *= x_weight
    upper += top_left
    result = bottom_right
    result -= bottom_left
    result *= x_weight
    result += bottom_left
    result -= upper
    result *= y_weight[:, :, None]
    result += upper
    # Bilinear weights are convex: values stay in [0, 255], no clip needed.
    return np.rint(result, out=result).astype(np.uint8)


def pillow_decode(path: str, resize: str, size: tuple[int, int]):
    """Decodes one image file with Pillow and resizes it by the one resize
    rule (:func:`_numpy_resize`): uint8 ``(H, W, 3)`` at ``size``."""
    from PIL import Image

    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    return _numpy_resize(pixels, resize=resize, size=size)


def pillow_decode_chunk(paths, resize, size):
    """Decodes ``paths`` (a worker task): ``(uint8 images, [(offset,
    reason)])``; failed images are left out."""
    images, failures = [], []
    for offset, path in enumerate(paths):
        try:
            images.append(pillow_decode(path, resize, size))
        except FileNotFoundError:
            failures.append((offset, NOT_FOUND))
        except Exception as error:  # Pillow raises many types.
            failures.append((offset, decode_failure(error)))
    if not images:
        return np.zeros((0, *size, 3), np.uint8), failures
    return np.stack(images), failures


def _cpu_count() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def process_pool_results(function, tasks: list, *args) -> Iterator:
    """``function(task, *args)`` for each task, in order, on spawned worker
    processes; at most two tasks per worker are in flight (memory stays
    bounded whatever the consumer's speed)."""
    workers = min(_cpu_count(), len(tasks))
    context = multiprocessing.get_context("spawn")
    pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=context)
    try:
        queue = iter(tasks)
        pending = collections.deque(
            pool.submit(function, task, *args)
            for task in itertools.islice(queue, 2 * workers)
        )
        while pending:
            result = pending.popleft().result()
            for task in itertools.islice(queue, 1):
                pending.append(pool.submit(function, task, *args))
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _pillow_batches(paths, resize, size, failures: list, batch_size: int):
    """``(positions, uint8 images)`` of each ``batch_size`` paths, decoded
    by Pillow (in worker processes beyond :data:`IN_PROCESS_MAX` images)."""
    starts = range(0, len(paths), batch_size)
    tasks = [list(paths[start : start + batch_size]) for start in starts]
    if len(paths) <= IN_PROCESS_MAX:
        results = (pillow_decode_chunk(task, resize, size) for task in tasks)
    else:
        results = process_pool_results(pillow_decode_chunk, tasks, resize, size)
    for start, task, (images, chunk_failures) in zip(
        starts, tasks, results, strict=True
    ):
        failed = {offset for offset, _ in chunk_failures}
        failures.extend((start + offset, why) for offset, why in chunk_failures)
        if len(images):
            kept = [start + o for o in range(len(task)) if o not in failed]
            yield np.asarray(kept, np.int64), images


def read_image_files(
    paths,
    *,
    resize: str,
    size: tuple[int, int],
    failures: list,
    batch_size=None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(positions, uint8 images)`` batches of the image files ``paths``
    at the stored ``size``, in order, decoded by TensorFlow where it is
    importable, else by Pillow (the same pixels).

    Files that cannot be read are left out and appended to ``failures`` as
    ``(position, reason)`` before the next batch is yielded. ``batch_size``
    None: :data:`BATCH_IMAGES` (TensorFlow) or :data:`CHUNK_IMAGES` paths
    (Pillow) per batch.
    """
    if tensorflow_or_none() is not None:
        count = batch_size or BATCH_IMAGES
        return _tf_batches(paths, resize, size, failures, count)
    count = batch_size or CHUNK_IMAGES
    return _pillow_batches(paths, resize, size, failures, count)


def _numpy_resized_arrays(images, resize, size) -> Iterator[np.ndarray]:
    for start in range(0, len(images), BATCH_IMAGES):
        yield np.stack(
            [
                _numpy_resize(image, resize=resize, size=size)
                for image in images[start : start + BATCH_IMAGES]
            ]
        )


def resize_uint8_images(
    images: np.ndarray, *, resize: str, size: tuple[int, int]
) -> np.ndarray:
    """uint8 ``(B, h, w, 3)`` -> uint8 ``(B, H, W, 3)`` at the stored
    ``size``, by the one resize rule, in NumPy
    (:func:`_numpy_resize`: :func:`resize_images`' pixels without
    TensorFlow). For callers that must not depend on TensorFlow (encoding
    with a ``.keras`` hasher under JAX or PyTorch)."""
    images = np.asarray(images, np.uint8)
    if not len(images):
        return np.zeros((0, *size, 3), np.uint8)
    return np.concatenate(list(_numpy_resized_arrays(images, resize, size)))


def decoded_batches(
    split: Split, *, resize: str, size: tuple[int, int], failures: list
) -> Iterator[np.ndarray]:
    """uint8 batches of ``split``'s images at ``size``, in split order.

    Images that cannot be read are left out and appended to ``failures``
    as ``(index, reason)`` before the next batch is yielded. Every decode
    of the image store goes through here (tests count the calls).
    """
    if not len(split):
        return iter(())
    if split.images is not None:  # in memory already: resize only
        return _numpy_resized_arrays(split.images, resize, size)
    batches = read_image_files(
        split.paths, resize=resize, size=size, failures=failures
    )
    return (images for _, images in batches)


def image_name(split: Split, index: int) -> str:
    """How errors and logs name image ``index`` of ``split``: its path,
    or ``[index]`` for images held in memory."""
    return split.paths[index] if split.paths is not None else f"[{index}]"


def check_failures(split: Split, failures: list, skip_bad_images: bool):
    """Raises the first of ``failures`` as one ``FILE: reason`` line
    unless ``skip_bad_images``."""
    if failures and not skip_bad_images:
        index, reason = failures[0]
        raise bad_image_error(image_name(split, index), reason)


def decode_split(split, resize, size, skip_bad_images, write) -> list:
    """Decodes ``split`` batch by batch into ``write``; returns the
    failures ``[(index, reason)]`` (empty unless ``skip_bad_images``)."""
    failures: list = []
    for batch in decoded_batches(
        split, resize=resize, size=size, failures=failures
    ):
        check_failures(split, failures, skip_bad_images)
        write(batch)
    check_failures(split, failures, skip_bad_images)
    for index, reason in failures:
        logger.warning("skipping %s: %s", image_name(split, index), reason)
    return failures
