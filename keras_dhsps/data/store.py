"""The image store: each image of a split decoded and resized once, as uint8.

:func:`open_store` returns an :class:`ImageStore` of a split's images at the
stored size (:func:`keras_dhsps.data.sizes.stored_size`), ``uint8 (N, H, W,
3)``, read by both readers for every epoch, fit and encode. It is kept in an
in-process cache up to ``input.memory_budget_mb``, else in a memory-mapped
file under ``input.store_dir`` (:mod:`keras_dhsps.data.store_file`), keyed
by the split's images (:func:`store_key`); ``store="none"`` decodes on each
read. Bad images raise one ``FILE: reason`` line, or are skipped and listed.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import json
import os
import threading
from collections.abc import Iterable
from typing import Any

import numpy as np

from keras_dhsps.data import decoding
from keras_dhsps.data import store_file
from keras_dhsps.data.base import Split
from keras_dhsps.data.sizes import stored_size
from keras_dhsps.utils.errors import DHSPSError


# ------------------------------------------------------------------ keys
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
    """``(slot, key)`` of a split's store: the slot (the file's name)
    hashes the paths in split order (the pixels of a split held in memory),
    the stored size and the resize mode; the key (recorded in the file)
    adds the split's identity, its manifest checksum or else every file's
    size and modification time."""
    slot = hashlib.sha256(
        json.dumps([store_file.FORMAT_VERSION, resize, list(size)]).encode()
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
    decoding.decode_split(part, resize, size, False, batches.append)
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
    return [
        (decoding.image_name(split, index), reason)
        for index, reason in failures
    ]


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

    failures = decoding.decode_split(
        split, resize, size, skip_bad_images, write
    )
    if filled < len(images):
        images = images[:filled].copy()
    _MEMORY_STORES.put(key, images, failures, budget)
    return images, failures


def _file_store(path, key, split, resize, size, skip_bad_images):
    """``(memmap, failures)`` of the store file at ``path``: opened, or
    (missing or refused) built now."""
    found = store_file.open_file(path, key, size)
    if found is None:
        store_file.build_file(path, key, split, resize, size, skip_bad_images)
        found = store_file.open_file(path, key, size, sample=False)
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
    decoding.check_failures(split, failures, skip_bad_images)
    return ImageStore(
        labels=_kept_labels(split, failures),
        image_shape=(*size, 3),
        images=images,
        skipped=_skipped_pairs(split, failures),
        path=path,
        key=key,
    )
