"""Durable, shareable, atomic outputs: a crash leaves the old file or the
new one, never a partial one, and every file gets the permissions ``open``
would give it under the user's umask.

:func:`atomic_write` writes a temporary sibling, flushes it, sets its mode,
renames it into place and flushes the directory entry;
:func:`check_writable_output` refuses an output location before any work;
:func:`make_temporary_directory` and :func:`finish_directory` do the same
for directories. Errors name the final path (docs/design.md §7.2).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Callable

from keras_dhsps.utils.errors import DHSPSError


def current_umask() -> int:
    """The process's umask, read without changing it where the system
    allows (``/proc/self/status``); elsewhere set and restored at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode ``open`` gives a new file: ``0o666`` less the umask."""
    return 0o666 & ~current_umask()


def directory_mode() -> int:
    """The mode ``mkdir`` gives a new directory: ``0o777`` less the umask."""
    return 0o777 & ~current_umask()


def fsync_path(path: str) -> None:
    """Flushes one file, or a directory's entries (after a rename in it),
    to disk; a file system that cannot sync a directory is left as it is."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    descriptor = os.open(path, flags if os.path.isdir(path) else os.O_RDONLY)
    try:
        os.fsync(descriptor)
    except OSError:  # some file systems cannot sync a directory
        pass
    finally:
        os.close(descriptor)


def fsync_tree(path: str) -> None:
    """Flushes a file, or every file and directory under a directory, to
    disk."""
    if os.path.isdir(path):
        for directory, _, names in os.walk(path):
            for name in names:
                fsync_path(os.path.join(directory, name))
            fsync_path(directory)
    else:
        fsync_path(path)


#: errno values that say the output cannot be written (not a bug).
_WRITE_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "EACCES",
        "EPERM",
        "ENOSPC",
        "EROFS",
        "EDQUOT",
        "ENOTDIR",
        "EISDIR",
        "EFBIG",
    )
    if hasattr(errno, name)
)


def _about_writing(error: OSError, temporary: str) -> bool:
    """Whether ``error`` is about writing the output (a full disk, no
    permission, the temporary file itself), not, say, an unreadable input
    met while producing it."""
    return error.errno in _WRITE_ERRNOS or error.filename == temporary


def _cannot_write(path: str, error: OSError) -> DHSPSError:
    reason = error.strerror or str(error)
    return DHSPSError(f"cannot write {path}: {reason}")


def check_writable_output(path: str, *, directory: bool = False) -> None:
    """Refuses an output location that cannot be written, before any work.

    Args:
        path: the final output (a file, or with ``directory`` a directory).
        directory: the output is a directory (an existing file there is
            refused); otherwise an existing directory at ``path`` is.

    Raises:
        DHSPSError: naming ``path`` and why: a parent is a file, the
            nearest existing directory cannot be written, or ``path`` is of
            the other kind.
    """
    absolute = os.path.abspath(path)
    if os.path.isdir(absolute) and not directory:
        raise DHSPSError(f"cannot write {path}: it is a directory")
    if os.path.lexists(absolute) and not os.path.isdir(absolute) and directory:
        raise DHSPSError(f"cannot write {path}: it is a file, not a directory")
    existing = (
        absolute if os.path.isdir(absolute) else os.path.dirname(absolute)
    )
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise DHSPSError(f"cannot write {path}: {existing} is not a directory")
    try:  # a real probe: also right for root and read-only file systems
        handle, probe = tempfile.mkstemp(dir=existing, prefix=".tmp-probe-")
    except OSError as error:
        raise DHSPSError(
            f"cannot write {path}: {existing} is not writable "
            f"({error.strerror or error})"
        ) from None
    os.close(handle)
    os.remove(probe)


def _make_parent(path: str) -> str:
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        raise _cannot_write(path, error) from None
    return directory


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Calls ``write(temporary_path)`` then renames it onto ``path``.

    The temporary file sits in the same directory (same file system), so the
    rename is atomic. Before the rename the file is flushed to disk and
    given the mode ``open`` would give it (``0o666`` less the umask;
    ``mkstemp`` makes 0600); after it the directory entry is flushed. On
    any error the temporary file is removed and ``path`` is untouched.

    Raises:
        DHSPSError: the file cannot be written (permissions, a parent that
            is a file, a full disk); the message names ``path``.
    """
    directory = _make_parent(path)
    suffix = os.path.splitext(path)[1]
    try:
        handle, temporary = tempfile.mkstemp(
            dir=directory, prefix=".tmp-", suffix=suffix
        )
    except OSError as error:
        raise _cannot_write(path, error) from None
    os.close(handle)
    try:
        write(temporary)
        fsync_tree(temporary)
        os.chmod(temporary, file_mode())
        os.replace(temporary, path)
    except OSError as error:
        _remove(temporary)
        if _about_writing(error, temporary):
            raise _cannot_write(path, error) from None
        raise
    except BaseException:
        _remove(temporary)
        raise
    fsync_path(directory)


def _remove(temporary: str) -> None:
    if os.path.isdir(temporary):
        import shutil

        shutil.rmtree(temporary, ignore_errors=True)
    elif os.path.lexists(temporary):
        os.remove(temporary)


def make_temporary_directory(parent: str, prefix: str) -> str:
    """``tempfile.mkdtemp`` with the mode ``mkdir`` would give (``0o777``
    less the umask; ``mkdtemp`` makes 0700): stage a directory output in
    it, then :func:`finish_directory` and rename it into place."""
    temporary = tempfile.mkdtemp(dir=parent, prefix=prefix)
    os.chmod(temporary, directory_mode())
    return temporary


def finish_directory(temporary: str) -> None:
    """Before renaming a staged directory into place: gives it the mode
    ``mkdir`` would (what is inside was made by ``open``/``mkdir`` and has
    the umask's modes already) and flushes every file in it to disk."""
    os.chmod(temporary, directory_mode())
    fsync_tree(temporary)


def write_text(path: str, text: str) -> None:
    """Writes ``text`` to ``path`` atomically (UTF-8)."""

    def write(temporary: str) -> None:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)

    atomic_write(path, write)


def write_json(path: str, value) -> None:
    """Writes ``value`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def read_json(path: str):
    """Reads a JSON file (trusted: one the caller has just written)."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def require_file(path: str, what: str, *, error=DHSPSError, hint: str = ""):
    """Raises ``error`` unless ``path`` names a regular file (or a link to
    one), before anything opens it: a directory, FIFO or device is refused,
    not read (a FIFO would block the reader forever).

    Args:
        what: what the file is ("code database"), for the message.
        hint: added to the missing-file message.
    """
    if os.path.isfile(path):
        return
    if os.path.isdir(path):
        raise error(f"{what} is a directory, not a file: {path}")
    if os.path.exists(path):
        raise error(f"{what} is not a regular file: {path}")
    raise error(f"{what} not found: {path}{hint}")


def read_json_file(
    path: str, what: str, *, error=DHSPSError, hint: str = "", kind=None
):
    """The JSON in ``path``, a file the user named or handed over; every
    failure is one line.

    Args:
        what: what the file is ("run config"), for the messages.
        error: the :class:`DHSPSError` subclass raised.
        hint: added to the missing-file message.
        kind: the type the top level must have (``dict``, ``list``), or None.

    Raises:
        error: missing, unreadable, not UTF-8 or not JSON (nesting too deep
            included), or not of ``kind``.
    """
    require_file(path, what, error=error, hint=hint)
    try:
        value = read_json(path)
    except OSError as failure:
        raise error(f"{path}: cannot be read ({failure.strerror})") from None
    except (ValueError, RecursionError) as failure:
        raise error(f"{path}: not valid JSON ({failure})") from None
    if kind is not None and not isinstance(value, kind):
        expected = {dict: "object", list: "array"}.get(kind, kind)
        raise error(f"{path}: not a {what} (expected a JSON {expected})")
    return value


def sha256_file(path: str) -> str:
    """The SHA-256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
