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
training and evaluation alike. How an image file becomes those pixels
(decoding, the one resize rule, worker processes) is
:mod:`keras_dhsps.data.decoding`'s job; this module keeps the result.

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
failed check) raises one :class:`~keras_dhsps.utils.errors.DHSPSError` naming
the store and the space needed, and removes the temporary file. Files are
created with mode 0666 less the umask, like any file the user writes.

Bad images: a file that is missing or fails to decode stops the build
with one ``FILE: reason`` :class:`~keras_dhsps.utils.errors.DataError`; with
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
import contextlib
import errno
import functools
import hashlib
import json
import logging
import os
import secrets
import shutil
import socket
import struct
import threading
from collections.abc import Iterable
from typing import Any

import numpy as np

from keras_dhsps.config import RESIZE_MODES
from keras_dhsps.data import decoding
from keras_dhsps.data.base import Split
from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import fsync_path

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MAGIC = b"keras_dhsps image store\n"
DATA_OFFSET = 4096
BLOCK_BYTES = 16 << 20
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
    decoding.check_failures(split, failures, skip_bad_images)
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

    failures = decoding.decode_split(
        split, resize, size, skip_bad_images, write
    )
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
