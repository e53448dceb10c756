"""Free space, checked before a write that a full disk would crash.

HDF5's C library (under h5py and Keras' ``.weights.h5``) can take the
interpreter down when the disk fills during a write; so every writer that
goes through it asks :func:`require_space` first, with an estimate.
"""

from __future__ import annotations

import os

from keras_dhsps.utils.errors import DHSPSError

#: Added to every estimate: file-system blocks, HDF5 and zip headers.
MARGIN_BYTES = 1 << 20


def free_bytes(path: str) -> int:
    """Bytes an unprivileged writer may still use where ``path`` goes
    (its nearest existing directory)."""
    existing = os.path.abspath(path)
    while not os.path.isdir(existing):
        existing = os.path.dirname(existing)
    stats = os.statvfs(existing)
    return stats.f_bavail * stats.f_frsize


def _mebibytes(count: int) -> str:
    return f"{count / (1 << 20):.1f} MiB"


def require_space(path: str, needed: int) -> None:
    """Refuses to write about ``needed`` bytes at ``path`` when the file
    system has less free (``needed`` plus :data:`MARGIN_BYTES`).

    Raises:
        DHSPSError: naming ``path``, the space needed and the space free.
    """
    wanted = int(needed) + MARGIN_BYTES
    available = free_bytes(path)
    if available < wanted:
        raise DHSPSError(
            f"cannot write {path}: not enough space left on the device "
            f"(needs about {_mebibytes(wanted)}, {_mebibytes(available)} "
            "free)"
        )


def variables_bytes(model, *, optimizer: bool = False) -> int:
    """Bytes of a Keras model's variables (and its optimizer's): what a
    ``.keras`` file or a weights checkpoint of it holds, before headers."""
    variables = list(model.variables)
    if optimizer and getattr(model, "optimizer", None) is not None:
        variables += list(model.optimizer.variables)
    total = 0
    for variable in variables:
        count = 1
        for size in variable.shape:
            count *= int(size)
        itemsize = 8 if "64" in str(variable.dtype) else 4
        total += count * itemsize
    return total
