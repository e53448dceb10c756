"""Reading an untrusted file in a child process that is bounded in time.

A C library can loop forever or take the interpreter down on a damaged
file: HDF5 does both on a code database with one byte changed
(docs/reliability.md §13). :func:`bounded_stream` runs a generator function
in a fresh interpreter and yields what it yields, pickled back over a pipe.
Each item must arrive within ``limit_s`` seconds of the previous one (the
first: of the start); a child that takes longer is killed, and one that
dies of a signal is reported, both as one :class:`DHSPSError` line. A
``DHSPSError`` raised in the child is raised again in the parent with its
message; any other exception is a bug and comes back as a
:class:`ChildError` with the child's traceback.

The child is ``sys.executable`` with the parent's ``sys.path``, started
with ``subprocess`` (no fork: safe under a parent's threads, and unlike
multiprocessing's ``spawn`` it never imports the parent's ``__main__``
again). Its cost is one interpreter and its imports: 0.2 s with NumPy
and h5py (measured on a 2-core machine), then pickling through a pipe.
"""

from __future__ import annotations

import importlib
import os
import pickle
import resource
import signal
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterator
from multiprocessing.connection import Connection

from keras_dhsps.utils.errors import DHSPSError

#: What the child runs: the parent's ``sys.path`` first, then :func:`_child`.
_BOOT = (
    "import pickle, sys; sys.path[:] = pickle.load(sys.stdin.buffer); "
    "from keras_dhsps.utils.bounded import _child; _child(int(sys.argv[1]))"
)


class ChildError(RuntimeError):
    """The child failed otherwise than with a DHSPSError: a bug."""


def bounded_stream(
    target: str,
    args: tuple,
    *,
    failure: str,
    reader: str,
    limit_s: float,
) -> Iterator:
    """Yields the items of ``target(*args)``, run in a child process.

    Close the generator (``contextlib.closing``) when leaving it early: the
    child is killed then.

    Args:
        target: ``"module:function"``, a generator function whose arguments
            and items can be pickled.
        args: its arguments.
        failure: the error's start when the child hangs or crashes, e.g.
            ``"FILE: not a readable code database"``.
        reader: who crashed, e.g. ``"the HDF5 library"``.
        limit_s: the most seconds to wait for each item.

    Raises:
        DHSPSError: raised by the child, or the child took more than
            ``limit_s`` for an item or died of a signal.
        ChildError: any other failure of the child (its traceback).
    """
    read_fd, write_fd = os.pipe()
    log = tempfile.TemporaryFile()
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", _BOOT, str(write_fd)],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=log,
            pass_fds=(write_fd,),
        )
    finally:
        os.close(write_fd)
    connection = Connection(read_fd, writable=False)
    try:
        _send(process, (list(sys.path), (target, args)))
        while True:
            if not connection.poll(limit_s):
                raise DHSPSError(
                    f"{failure} (reading it did not finish in {limit_s:g} s)"
                )
            try:
                kind, value = connection.recv()
            except EOFError:
                raise _died(process, failure, reader, log) from None
            if kind == "item":
                yield value
            elif kind == "error":
                raise DHSPSError(value)
            elif kind == "bug":
                raise ChildError(f"{target} failed in a child:\n{value}")
            else:
                return
    finally:
        connection.close()
        if process.poll() is None:
            process.kill()
        process.wait()
        log.close()


def _send(process: subprocess.Popen, request: tuple) -> None:
    """Writes the child's ``sys.path`` and its call on its stdin."""
    try:
        for part in request:
            pickle.dump(part, process.stdin)
        process.stdin.close()
    except BrokenPipeError:  # it died at once; _died tells why
        pass


def _died(process, failure: str, reader: str, log) -> Exception:
    """The error for a child that ended without saying it was done."""
    try:
        code = process.wait(timeout=5)
    except subprocess.TimeoutExpired:  # it closed the pipe yet runs on
        process.kill()
        code = process.wait()
    if code < 0:
        name = signal.Signals(-code).name
        return DHSPSError(f"{failure} ({reader} crashed reading it: {name})")
    log.seek(0)
    output = log.read().decode("utf-8", "replace")[-4000:]
    return ChildError(f"a child exited with status {code}:\n{output}")


def _child(fd: int) -> None:
    """The child's side: runs the call read from stdin, sends its items."""
    # A crash on a damaged file leaves no core file behind.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    connection = Connection(fd, readable=False)
    target, args = pickle.load(sys.stdin.buffer)
    try:
        module, name = target.split(":")
        function = getattr(importlib.import_module(module), name)
        for item in function(*args):
            connection.send(("item", item))
        connection.send(("done", None))
    except DHSPSError as error:
        connection.send(("error", str(error)))
    except BaseException:  # noqa: BLE001 - a bug, sent to the parent
        connection.send(("bug", traceback.format_exc()))
