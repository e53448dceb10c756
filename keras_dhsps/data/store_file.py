"""The image store's file: one memory-mappable file per split, written once.

Layout: a 4 KiB preamble (magic line, trailer offset and length), the uint8
images from byte :data:`DATA_OFFSET`, then a JSON trailer (format version,
key, shape, skipped images, a SHA-256 per :data:`BLOCK_BYTES` block and the
trailer's own checksum). :func:`open_file` checks it and samples three
blocks, :func:`verify_store_file` checks every block, :func:`build_file`
writes it atomically.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import secrets
import shutil
import socket
import struct
from collections.abc import Iterable

import numpy as np

from keras_dhsps.data import decoding
from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import fsync_path

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MAGIC = b"keras_dhsps image store\n"
DATA_OFFSET = 4096
BLOCK_BYTES = 16 << 20
_SPACE_ERRNOS = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


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


def open_file(path: str, key: str, size: tuple[int, int], sample=True):
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


def build_file(path, key, split, resize, size, skip_bad_images) -> None:
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
