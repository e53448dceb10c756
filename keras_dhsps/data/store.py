"""The image store: each image of a split decoded and resized once, as uint8.

:func:`open_store` returns an :class:`ImageStore` holding a split's images
decoded and resized to the size the protocol stores, as ``uint8
(N, H, W, 3)``; every epoch and every cell of a table reads it instead of
decoding JPEGs again. Crops, flips and the cast to float32 happen later
(on the device, in the model).

Stored size (:func:`stored_size`):

* ``resize="direct"`` (the authors'): the model's ``image_size``;
* ``"resize_crop"``: ``input.resize_to`` (e.g. 256×256, cropped to 224 or
  227 later);
* ``"shorter_side_crop"``: the shorter side is scaled to ``S =
  resize_to[0]`` (aspect kept) and the centre ``S×S`` square is stored, so
  every stored image has one fixed shape. A centre crop of the stored square
  is the pipeline's centre crop to within one pixel (offsets are rounded
  twice); random training crops are drawn from the centre square, not from
  the whole longer side.

Both readers (``keras_dhsps.data.pipeline``'s tf.data and
``keras_dhsps.data.feed``'s NumPy) read their uint8 batches from here, for
training and evaluation alike. One resize rule, :func:`resize_images`
(TensorFlow), serves the store, tf.data's on-the-fly decoding
(``store="none"``) and the SavedModel export's raw-image endpoints (whose
codes are therefore the Keras model's on the stored pixels, bit for bit;
``tests/test_export.py``): bilinear with half-pixel
centres and no antialiasing (``tf.image.resize``), rounded to the nearest
uint8. JPEGs are decoded by :func:`decode_image` with libjpeg's accurate
integer IDCT (TensorFlow's default, the fast IDCT, differs from Pillow's
decode by up to 4 levels; the accurate one costs no measurable time).

Decoding uses ``tf.data`` (parallel map, in order) where TensorFlow is
importable, otherwise Pillow in worker processes (``spawn``, so a parent
running JAX is never forked; splits of at most :data:`IN_PROCESS_MAX`
images decode in-process, where starting workers would cost more). The
Pillow path decodes identically (libjpeg's accurate IDCT) and resizes with
:func:`_numpy_resize`, a NumPy twin of TensorFlow's bilinear kernel in
float32: the two paths build byte-identical stores
(``tests/test_store.py`` checks both on JPEG trees and the resize on
random sizes). Written by hand because no library offers TensorFlow's
exact resize: Pillow's ``resize`` antialiases and its float ``transform``
rounds differently (±1 in about 0.1 % of pixels).

Where the store lives:

* at most ``input.memory_budget_mb``: in memory. In-memory stores are
  kept in a small in-process cache keyed like the files (least recently
  used first out, at most the budget in all), so every cell of a table run
  in one process (``reproduce`` runs its cells in one process) decodes each
  image once. They are not written to disk: a store that fits the budget
  takes seconds to minutes to rebuild, and a disk copy would be one more
  file to manage.
* beyond the budget: a memory-mapped file ``SLOT.store`` under
  ``input.store_dir`` (default ``$XDG_CACHE_HOME/keras_dhsps/stores``, or
  ``~/.cache/keras_dhsps/stores``), built by streaming batches to disk
  (memory holds a few batches, never the split), found again by later
  processes. A 193,734-image NUS-WIDE database at 227×227 is a 30 GB file.

Keys. The file name (the *slot*) hashes the image paths in split order,
the stored size and the resize mode. The *key*, recorded inside the file,
adds the split's identity: the checksum of the manifest it was loaded from
(:attr:`keras_dhsps.data.base.Split.manifest_checksum`; the manifest pins
the file list, and ``dhsps data verify`` re-checks images), or else every
file's size and modification time. A store whose recorded key differs
(images edited since, another manifest, an older format) is refused with
one log line and rebuilt in place. Splits held in memory (digits-mosaic)
are keyed by a hash of their pixels; those already at the stored size are
used as they are, with no copy.

File format (one file, so one atomic rename publishes it): a 4 KiB
preamble (magic line, trailer offset and length), the uint8 data from byte
4096 (page aligned, for ``np.memmap``), then a JSON trailer: format
version, key, shape, dtype, resize mode, skipped images, a SHA-256 per 16
MiB block of data and a checksum of the trailer itself. Opening checks the
magic, the exact file size (a truncated file is refused), the trailer
checksum, key, shape and dtype, and the digests of three data blocks
(first, middle, last): at most 48 MiB read, a fraction of a second, where a
full check of a 30 GB store would read it all at every start and evict the
page cache. :func:`verify_store_file` checks every block, on demand.

Writing: to ``.SLOT.store.tmp-HOST-PID-*`` in the same directory, then
``fsync`` and ``os.replace``: an interrupted build leaves no store (and
the next build removes temporary files of dead processes on this host).
Free space is checked before decoding; a full disk while writing (or a
failed check) raises one :class:`~keras_dhsps.errors.DHSPSError` naming
the store and the space needed, and removes the temporary file. Files are
created with mode 0666 less the umask, like any file the user writes.

Bad images: a file that is missing or fails to decode stops the build
with one ``FILE: reason`` :class:`~keras_dhsps.errors.DataError`; with
``skip_bad_images=True`` it is left out, logged and listed in
:attr:`ImageStore.skipped` (the store and its ``labels`` hold the kept
images, in split order; labels always come from the split given, so one
store serves splits that share images but not labels). With
``store="none"`` nothing is decoded ahead:
:meth:`ImageStore.read` decodes the requested images on each call and a
bad image raises there.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import errno
import functools
import hashlib
import itertools
import json
import logging
import multiprocessing
import os
import re
import secrets
import shutil
import socket
import struct
import threading
from collections.abc import Iterable
from collections.abc import Iterator
from typing import Any

import numpy as np

from keras_dhsps.config import RESIZE_MODES
from keras_dhsps.data.base import Split
from keras_dhsps.errors import DataError
from keras_dhsps.errors import DHSPSError
from keras_dhsps.io_utils import fsync_path

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MAGIC = b"keras_dhsps image store\n"
DATA_OFFSET = 4096
BLOCK_BYTES = 16 << 20
#: Images per TF batch and per Pillow worker task.
BATCH_IMAGES = 64
CHUNK_IMAGES = 32
#: Pillow decodes splits up to this size in-process (a pool of spawned
#: workers takes about a second to start).
IN_PROCESS_MAX = 256
_SPACE_ERRNOS = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


# ------------------------------------------------------------ sizes, keys
def _pair(size: Any) -> tuple[int, int]:
    if isinstance(size, int | np.integer):
        return int(size), int(size)
    height, width = size
    return int(height), int(width)


def stored_size(
    image_size: Any, *, resize: str, resize_to: Any = (256, 256)
) -> tuple[int, int]:
    """``(H, W)`` the store keeps for a model of ``image_size``.

    Raises:
        DHSPSError: an unknown ``resize`` mode, or a cropping mode whose
            stored size is smaller than ``image_size``.
    """
    height, width = _pair(image_size)
    if resize not in RESIZE_MODES:
        raise DHSPSError(
            f"input.resize={resize!r} is not a resize mode; choose one of "
            f"{', '.join(RESIZE_MODES)}"
        )
    if resize == "direct":
        return height, width
    if resize == "resize_crop":
        size = _pair(resize_to)
    else:
        size = (int(resize_to[0]), int(resize_to[0]))
    if size[0] < height or size[1] < width:
        raise DHSPSError(
            f"input.resize_to={[int(v) for v in resize_to]} is smaller than "
            f"the model's image size {height}x{width}; {resize!r} needs a "
            "stored size at least as large as the crop"
        )
    return size


def default_store_dir() -> str:
    """``$XDG_CACHE_HOME/keras_dhsps/stores`` (``~/.cache`` by default)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return os.path.join(cache, "keras_dhsps", "stores")


def _file_identity(paths: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        try:
            status = os.stat(path)
            digest.update(f"{status.st_size}:{status.st_mtime_ns};".encode())
        except OSError:
            digest.update(b"missing;")
    return digest.hexdigest()


def store_key(
    split: Split, *, resize: str, size: tuple[int, int]
) -> tuple[str, str]:
    """``(slot, key)`` of a split's store; see the module docstring."""
    slot = hashlib.sha256(
        json.dumps([FORMAT_VERSION, resize, list(size)]).encode()
    )
    if split.images is not None:
        images = np.ascontiguousarray(split.images)
        slot.update(f"{images.shape}{images.dtype}".encode())
        slot.update(memoryview(images).cast("B"))
        return slot.hexdigest(), slot.hexdigest()
    for path in split.paths or ():
        slot.update(path.encode("utf-8", "surrogateescape") + b"\0")
    if split.manifest_checksum is not None:
        identity = "manifest:" + split.manifest_checksum
    else:
        identity = "files:" + _file_identity(split.paths or ())
    key = hashlib.sha256(f"{slot.hexdigest()}|{identity}".encode())
    return slot.hexdigest(), key.hexdigest()


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
    ``(..., H, W, C)`` at the stored ``size`` (:func:`stored_size`).

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
        return "image not found"
    try:
        decode_image(tf.io.read_file(path))
    except tf.errors.OpError as error:
        return f"cannot decode image ({_tf_message(error)})"
    return "cannot decode image"


def _note_failures(paths, indices, failures: list, reason) -> None:
    for index in indices:
        failures.append((int(index), reason(paths[int(index)])))


def _tf_batches(paths, resize, size, failures: list) -> Iterator[np.ndarray]:
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
        .batch(BATCH_IMAGES)
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
        yield images.numpy()
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
    gives TensorFlow's pixels exactly (``tests/test_store.py``). For the
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
    """Decodes one image file with Pillow and resizes it by the store's
    rule: uint8 ``(H, W, 3)`` at ``size``."""
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
            failures.append((offset, "image not found"))
        except Exception as error:  # Pillow raises many types.
            failures.append((offset, f"cannot decode image ({error})"))
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


def _pillow_batches(paths, resize, size, failures: list):
    starts = range(0, len(paths), CHUNK_IMAGES)
    tasks = [paths[start : start + CHUNK_IMAGES] for start in starts]
    if len(paths) <= IN_PROCESS_MAX:
        results = (pillow_decode_chunk(task, resize, size) for task in tasks)
    else:
        results = process_pool_results(pillow_decode_chunk, tasks, resize, size)
    for start, (images, chunk_failures) in zip(starts, results, strict=True):
        failures.extend((start + offset, why) for offset, why in chunk_failures)
        if len(images):
            yield images


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
    ``size``, by the store's one resize rule, in NumPy
    (:func:`_numpy_resize`: :func:`resize_images`' pixels without
    TensorFlow). For callers that must not depend on TensorFlow (encoding
    with a ``.keras`` hasher under JAX or PyTorch)."""
    images = np.asarray(images, np.uint8)
    if not len(images):
        return np.zeros((0, *size, 3), np.uint8)
    return np.concatenate(list(_numpy_resized_arrays(images, resize, size)))


def _decoded_batches(
    split: Split, *, resize: str, size: tuple[int, int], failures: list
) -> Iterator[np.ndarray]:
    """uint8 batches of ``split``'s images at ``size``, in split order.

    Images that cannot be read are left out and appended to ``failures``
    as ``(index, reason)`` before the next batch is yielded. Every decode
    of the store goes through here (tests count the calls).
    """
    if not len(split):
        return iter(())
    if split.images is not None:  # in memory already: resize only
        return _numpy_resized_arrays(split.images, resize, size)
    if tensorflow_or_none() is not None:
        return _tf_batches(split.paths, resize, size, failures)
    return _pillow_batches(split.paths, resize, size, failures)


def _name_of(split: Split, index: int) -> str:
    return split.paths[index] if split.paths is not None else f"[{index}]"


def _check_failures(split: Split, failures: list, skip_bad_images: bool):
    if failures and not skip_bad_images:
        index, reason = failures[0]
        raise DataError(
            f"{_name_of(split, index)}: {reason} (pass skip_bad_images=True "
            "or --skip-bad-images to skip and count such images)"
        )


def _stream(split, resize, size, skip_bad_images, write) -> list:
    """Decodes ``split`` batch by batch into ``write``; returns the
    failures ``[(index, reason)]`` (empty unless ``skip_bad_images``)."""
    failures: list = []
    for batch in _decoded_batches(
        split, resize=resize, size=size, failures=failures
    ):
        _check_failures(split, failures, skip_bad_images)
        write(batch)
    _check_failures(split, failures, skip_bad_images)
    for index, reason in failures:
        logger.warning("skipping %s: %s", _name_of(split, index), reason)
    return failures


# ----------------------------------------------------------- the store
class ImageStore:
    """A split's images at the stored size, uint8, in split order.

    Attributes:
        labels: ``(N, C)`` labels of the kept images, in split order.
        image_shape: ``(H, W, 3)``, the stored size.
        images: the whole ``(N, H, W, 3)`` uint8 array (``np.ndarray`` or
            read-only ``np.memmap``), or None when ``store="none"``.
        skipped: ``(path, reason)`` of the images left out
            (``skip_bad_images``).
        path: the memory-mapped file, or None.
        key: the store's key (None when nothing is stored).
    """

    def __init__(
        self,
        *,
        labels: np.ndarray,
        image_shape: tuple,
        images: np.ndarray | None = None,
        decode=None,
        skipped: list | None = None,
        path: str | None = None,
        key: str | None = None,
    ) -> None:
        self.labels = labels
        self.image_shape = tuple(int(v) for v in image_shape)
        self.images = images
        self.skipped = list(skipped or [])
        self.path = path
        self.key = key
        self._decode = decode

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def nbytes(self) -> int:
        return len(self) * int(np.prod(self.image_shape))

    def read(self, indices: np.ndarray) -> np.ndarray:
        """uint8 ``(len(indices), H, W, 3)`` images, in the order given."""
        indices = np.asarray(indices)
        if indices.ndim != 1 or indices.dtype.kind not in "iu":
            raise TypeError(
                "indices must be a 1-D integer array; received "
                f"{indices.dtype} of shape {indices.shape}"
            )
        if self.images is not None:
            return np.asarray(self.images[indices])
        return self._decode(indices)


def _decode_now(split, resize, size, indices) -> np.ndarray:
    """``store="none"``: decodes ``split``'s ``indices`` now."""
    if split.images is not None:
        part = Split(labels=split.labels[indices], images=split.images[indices])
    else:
        paths = tuple(split.paths[int(index)] for index in indices)
        part = Split(labels=split.labels[indices], paths=paths)
    batches = []
    _stream(part, resize, size, False, batches.append)
    if not batches:
        return np.zeros((len(indices), *size, 3), np.uint8)
    return np.concatenate(batches)


class _MemoryStores:
    """In-process cache of in-memory stores by key, as ``(images,
    failures)``: least recently used first out, at most ``budget`` bytes in
    all (the latest budget)."""

    def __init__(self) -> None:
        self._stores: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[np.ndarray, list] | None:
        with self._lock:
            if key in self._stores:
                self._stores.move_to_end(key)
            return self._stores.get(key)

    def put(self, key: str, images: np.ndarray, failures, budget: int):
        with self._lock:
            self._stores[key] = (images, failures)
            while self._stores and budget < sum(
                entry[0].nbytes for entry in self._stores.values()
            ):
                self._stores.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._stores.clear()


_MEMORY_STORES = _MemoryStores()


def clear_memory_cache() -> None:
    """Forgets the in-memory stores kept for reuse in this process."""
    _MEMORY_STORES.clear()


def _skipped_pairs(split: Split, failures: list) -> list:
    return [(_name_of(split, index), reason) for index, reason in failures]


def _kept_labels(split: Split, failures: list) -> np.ndarray:
    if not failures:
        return split.labels
    keep = np.ones(len(split), bool)
    keep[[index for index, _ in failures]] = False
    return split.labels[keep]


def _memory_store(split, resize, size, key, budget, skip_bad_images):
    """``(images, failures)`` of an in-memory store: from the cache, or
    decoded now and cached."""
    found = _MEMORY_STORES.get(key)
    if found is not None:
        return found
    images = np.empty((len(split), *size, 3), np.uint8)
    filled = 0

    def write(batch: np.ndarray) -> None:
        nonlocal filled
        images[filled : filled + len(batch)] = batch
        filled += len(batch)

    failures = _stream(split, resize, size, skip_bad_images, write)
    if filled < len(images):
        images = images[:filled].copy()
    _MEMORY_STORES.put(key, images, failures, budget)
    return images, failures


def _file_store(path, key, split, resize, size, skip_bad_images):
    """``(memmap, failures)`` of the store file at ``path``: opened, or
    (missing or refused) built now."""
    found = _open_file(path, key, size)
    if found is None:
        _build_file(path, key, split, resize, size, skip_bad_images)
        found = _open_file(path, key, size, sample=False)
        if found is None:  # Only if the file changed under us.
            raise DHSPSError(f"{path}: the image store just written is bad")
    return found


def open_store(
    split: Split,
    *,
    image_size: Any,
    input_config,
    skip_bad_images: bool = False,
) -> ImageStore:
    """The image store of ``split`` (built on first use; see the module
    docstring).

    Args:
        split: the images (in memory or files) and labels.
        image_size: the model's ``(H, W)`` (or one int).
        input_config: a :class:`keras_dhsps.config.InputConfig` (``resize``,
            ``resize_to``, ``store``, ``store_dir``, ``memory_budget_mb``).
        skip_bad_images: leave out (and list in ``skipped``) images that
            cannot be decoded instead of raising.

    Raises:
        DataError: an image cannot be read (``FILE: reason``).
        DHSPSError: an unknown ``resize`` mode, a stored size
            smaller than ``image_size``, or no space for the store file.
    """
    resize = input_config.resize
    size = stored_size(
        image_size, resize=resize, resize_to=input_config.resize_to
    )
    held = split.images
    if held is not None and held.dtype == np.uint8 and held.shape[1:3] == size:
        return ImageStore(
            labels=split.labels, image_shape=(*size, 3), images=held
        )
    if input_config.store == "none":
        decode = functools.partial(_decode_now, split, resize, size)
        return ImageStore(
            labels=split.labels, image_shape=(*size, 3), decode=decode
        )
    slot, key = store_key(split, resize=resize, size=size)
    budget = int(input_config.memory_budget_mb) << 20
    path = None
    if len(split) * size[0] * size[1] * 3 <= budget:
        images, failures = _memory_store(
            split, resize, size, key, budget, skip_bad_images
        )
    else:
        directory = input_config.store_dir or default_store_dir()
        path = os.path.join(os.path.expanduser(directory), slot + ".store")
        images, failures = _file_store(
            path, key, split, resize, size, skip_bad_images
        )
    # A store built with skip_bad_images remembers what it left out.
    _check_failures(split, failures, skip_bad_images)
    return ImageStore(
        labels=_kept_labels(split, failures),
        image_shape=(*size, 3),
        images=images,
        skipped=_skipped_pairs(split, failures),
        path=path,
        key=key,
    )


# ------------------------------------------------------ the store file
class _Refused(Exception):
    """Why a store file cannot be used."""


class _BlockDigests:
    """SHA-256 of each ``block_bytes`` block of a byte stream."""

    def __init__(self, block_bytes: int) -> None:
        self.block_bytes = block_bytes
        self.digests: list[str] = []
        self._hash = hashlib.sha256()
        self._filled = 0

    def update(self, data: memoryview) -> None:
        while len(data):
            take = min(len(data), self.block_bytes - self._filled)
            self._hash.update(data[:take])
            self._filled += take
            data = data[take:]
            if self._filled == self.block_bytes:
                self.finish()

    def finish(self) -> list[str]:
        if self._filled:
            self.digests.append(self._hash.hexdigest())
            self._hash, self._filled = hashlib.sha256(), 0
        return self.digests


def _trailer_checksum(trailer: dict) -> str:
    body = {key: value for key, value in trailer.items() if key != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _read_trailer(handle, file_size: int) -> dict:
    preamble = handle.read(DATA_OFFSET)
    if len(preamble) < DATA_OFFSET:
        raise _Refused(f"truncated: {file_size} bytes")
    if not preamble.startswith(MAGIC):
        raise _Refused("not an image store")
    offset, length = struct.unpack_from("<QQ", preamble, len(MAGIC))
    if file_size != offset + length:
        raise _Refused(
            f"truncated or extended: {file_size} bytes, expected "
            f"{offset + length}"
        )
    handle.seek(offset)
    try:
        trailer = json.loads(handle.read(length))
    except ValueError:
        raise _Refused("unreadable trailer") from None
    if not isinstance(trailer, dict) or trailer.get(
        "checksum"
    ) != _trailer_checksum(trailer):
        raise _Refused("trailer checksum mismatch (edited)")
    count = int(np.prod(trailer["shape"]))
    if offset - DATA_OFFSET != count:
        raise _Refused("data size does not match the recorded shape")
    return trailer


def _check_blocks(handle, trailer: dict, blocks: Iterable[int]) -> None:
    block_bytes = trailer["block_bytes"]
    data_bytes = int(np.prod(trailer["shape"]))
    digests = trailer["block_sha256"]
    for block in blocks:
        start = block * block_bytes
        handle.seek(DATA_OFFSET + start)
        data = handle.read(min(block_bytes, data_bytes - start))
        if hashlib.sha256(data).hexdigest() != digests[block]:
            raise _Refused(f"data checksum mismatch in block {block}")


def _sampled_blocks(count: int) -> list[int]:
    return sorted({0, count // 2, count - 1}) if count else []


def _open_file(path: str, key: str, size: tuple[int, int], sample=True):
    """``(memmap, failures)`` of a valid store file for ``key``, or None
    (missing, or refused with one log line). ``sample=False`` skips the
    sampled block digests (for the file this process just wrote)."""
    if not os.path.exists(path):
        return None
    try:
        with open(path, "rb") as handle:
            trailer = _read_trailer(handle, os.fstat(handle.fileno()).st_size)
            if trailer.get("format_version") != FORMAT_VERSION:
                raise _Refused(f"format {trailer.get('format_version')!r}")
            if trailer["key"] != key:
                raise _Refused(
                    "built for other images (edited since, or another manifest)"
                )
            shape = tuple(trailer["shape"])
            if shape[1:] != (*size, 3) or trailer["dtype"] != "uint8":
                raise _Refused(f"shape {shape} {trailer['dtype']}")
            if sample:
                blocks = _sampled_blocks(len(trailer["block_sha256"]))
                _check_blocks(handle, trailer, blocks)
    except (_Refused, KeyError, TypeError, ValueError) as reason:
        logger.warning(
            "image store %s refused (%s); rebuilding it", path, reason
        )
        return None
    failures = [tuple(pair) for pair in trailer["skipped"]]
    if not shape[0]:
        return np.zeros(shape, np.uint8), failures
    images = np.memmap(path, np.uint8, "r", offset=DATA_OFFSET, shape=shape)
    return images, failures


def verify_store_file(path: str) -> dict:
    """Checks every data block of a store file; returns its trailer.

    Raises:
        DataError: the file is not a valid, complete store.
    """
    try:
        with open(path, "rb") as handle:
            trailer = _read_trailer(handle, os.fstat(handle.fileno()).st_size)
            count = len(trailer["block_sha256"])
            _check_blocks(handle, trailer, range(count))
    except (_Refused, KeyError, TypeError) as reason:
        raise DataError(f"{path}: not a valid image store ({reason})") from None
    return trailer


def _write_bytes(handle, data) -> None:
    """Every write of a store file goes through here."""
    handle.write(data)


def _space_error(path: str, needed: int, free: int | None) -> DHSPSError:
    have = "" if free is None else f", {free / 1e9:.2f} GB free"
    return DHSPSError(
        f"{path}: no space for the image store (needs {needed / 1e9:.2f} "
        f"GB{have}); free some space or set input.store_dir elsewhere"
    )


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_orphans(path: str) -> None:
    """Removes this host's temporary files of ``path`` left by dead
    processes (a build killed before it could clean up)."""
    if os.name != "posix":
        return
    directory, name = os.path.split(path)
    prefix = f".{name}.tmp-{socket.gethostname()}-"
    for entry in os.scandir(directory):
        if not entry.name.startswith(prefix):
            continue
        pid = entry.name[len(prefix) :].split("-")[0]
        if pid.isdigit():
            if not _process_alive(int(pid)):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(entry.path)


def _write_store(handle, split, resize, size, key, skip_bad_images) -> None:
    """Streams the store of ``split`` into an open, empty file."""
    _write_bytes(handle, bytes(DATA_OFFSET))
    digests = _BlockDigests(BLOCK_BYTES)
    count = 0

    def write(batch: np.ndarray) -> None:
        nonlocal count
        data = memoryview(np.ascontiguousarray(batch)).cast("B")
        _write_bytes(handle, data)
        digests.update(data)
        count += len(batch)

    failures = _stream(split, resize, size, skip_bad_images, write)
    trailer = {
        "format_version": FORMAT_VERSION,
        "key": key,
        "shape": [count, *size, 3],
        "dtype": "uint8",
        "resize": resize,
        "images_in_split": len(split),
        "manifest_checksum": split.manifest_checksum,
        "skipped": [[int(index), reason] for index, reason in failures],
        "block_bytes": BLOCK_BYTES,
        "block_sha256": digests.finish(),
    }
    trailer["checksum"] = _trailer_checksum(trailer)
    encoded = json.dumps(trailer).encode()
    offset = DATA_OFFSET + count * size[0] * size[1] * 3
    _write_bytes(handle, encoded)
    handle.seek(0)
    _write_bytes(handle, MAGIC + struct.pack("<QQ", offset, len(encoded)))
    handle.flush()
    os.fsync(handle.fileno())


def _build_file(path, key, split, resize, size, skip_bad_images) -> None:
    """Builds the store file atomically (temporary name, fsync, rename)."""
    directory = os.path.dirname(path)
    needed = DATA_OFFSET + len(split) * (size[0] * size[1] * 3 + 64)
    try:
        os.makedirs(directory, exist_ok=True)
        free = shutil.disk_usage(directory).free
    except OSError as error:
        raise DHSPSError(
            f"{directory}: cannot use as input.store_dir: {error}"
        ) from None
    if free < needed:
        raise _space_error(path, needed, free)
    _remove_orphans(path)
    token = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
    temporary = os.path.join(
        directory, f".{os.path.basename(path)}.tmp-{token}"
    )
    logger.info("building image store %s (%d images)", path, len(split))
    try:
        # 0o666 less the umask, as open() gives any file the user writes.
        flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY
        flags |= getattr(os, "O_BINARY", 0)
        descriptor = os.open(temporary, flags, 0o666)
        with os.fdopen(descriptor, "wb") as handle:
            _write_store(handle, split, resize, size, key, skip_bad_images)
        os.replace(temporary, path)
        fsync_path(directory)
    except OSError as error:
        if error.errno in _SPACE_ERRNOS:
            raise _space_error(path, needed, None) from None
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
