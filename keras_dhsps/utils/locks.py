"""One trainer per run directory: an advisory lock held while training.

The lock is ``fcntl.flock`` on ``DIR/.lock``, which the kernel releases when
its process ends however it ends (even ``kill -9``), so a lock is never
left behind; the file records the holder's process id and host so that a
second trainer can name it, and a file left by a dead process is taken
over with a warning saying so.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket

from keras_dhsps.utils.errors import DHSPSError

logger = logging.getLogger(__name__)

LOCK_FILE = ".lock"


def _holder(handle) -> dict:
    handle.seek(0)
    try:
        value = json.loads(handle.read() or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _describe(holder: dict) -> str:
    if not holder.get("pid"):
        return "another process"
    return f"process {holder['pid']} on {holder.get('host', 'this host')}"


class RunLock:
    """Holds ``DIR/.lock`` for one trainer (a context manager).

    Raises:
        DHSPSError: another live process holds the lock (named).
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.path = os.path.join(directory, LOCK_FILE)
        self._handle = None

    def __enter__(self) -> RunLock:
        os.makedirs(self.directory, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(handle)
            handle.close()
            raise DHSPSError(
                f"{self.directory} is being trained by {_describe(holder)}; "
                "wait for it to finish or stop it first"
            ) from None
        previous = _holder(handle)
        if previous.get("pid") and previous["pid"] != os.getpid():
            logger.warning(
                "took over the lock of %s left by %s, which is no longer "
                "running",
                self.directory,
                _describe(previous),
            )
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": _host()}))
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc_info) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.seek(0)
            handle.truncate()
            handle.close()


def _host() -> str:
    return socket.gethostname()
