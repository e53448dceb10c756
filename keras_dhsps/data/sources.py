"""Image sources a user names to encode: a manifest's split, a list file.

:func:`manifest_split` reads one split of a directory written by ``dhsps
data prepare``; :func:`require_utf8` refuses a list file that is not text
(``keras_dhsps.retrieval.codedb.read_collection`` reads directories and
list files).
"""

from __future__ import annotations

import os

from keras_dhsps.data.manifest import MANIFEST
from keras_dhsps.data.manifest import load_manifest
from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.errors import DHSPSError


def is_manifest_directory(path: str) -> bool:
    """Whether ``path`` is a manifest directory (it holds ``manifest.json``)."""
    return os.path.isfile(os.path.join(path, MANIFEST))


def manifest_split(directory: str, *, root: str | None, split: str):
    """``(paths, labels, metadata)`` of one split of a manifest directory.

    ``metadata`` (the manifest's path, the split, the class names) is what
    a code database of the split records about its source.

    Raises:
        DHSPSError: no ``root`` (the images' directory) or an empty split.
    """
    if root is None:
        raise DHSPSError(
            f"{directory} is a manifest: pass --data-root (the images' root)"
        )
    dataset = load_manifest(directory, root=root)
    chosen = dataset.split(split)
    if len(chosen) == 0:
        raise DHSPSError(f"{directory}: split {split!r} is empty")
    metadata = {
        "source": os.path.abspath(directory),
        "split": split,
        "class_names": list(dataset.class_names),
    }
    return chosen.paths, chosen.labels, metadata


def require_utf8(path: str) -> None:
    """A list file must be UTF-8 text (a byte-order mark is fine)."""
    with open(path, "rb") as handle:
        for line_number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(
                    f"{path}:{line_number}: not UTF-8 text (expected an "
                    "image directory or a list file)"
                ) from None
