"""Listing an image collection: the files of a directory or a list file.

:func:`read_collection` takes what ``dhsps encode`` is given (an image
directory, a list file with or without labels) and returns the image paths
(and labels when known); :func:`list_image_files` lists a directory.
"""

from __future__ import annotations

import os

import numpy as np

from keras_dhsps.data.listfile import read_list_file
from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.files import require_file

#: File extensions listed when encoding a plain image directory (the
#: formats ``tf.io.decode_image`` and Pillow read).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def list_image_files(directory: str) -> tuple[str, ...]:
    """Image files under ``directory`` (recursive), sorted, absolute.

    Hidden files and folders (``.name``) are skipped; extensions are
    :data:`IMAGE_EXTENSIONS`, case-insensitive.

    Raises:
        DataError: not a directory, or no image in it.
    """
    if not os.path.isdir(directory):
        raise DataError(f"{directory}: not a directory")
    found = []
    for folder, subfolders, files in os.walk(directory):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and name.lower().endswith(
                IMAGE_EXTENSIONS
            ):
                found.append(os.path.abspath(os.path.join(folder, name)))
    if not found:
        raise DataError(
            f"{directory}: no image files ({', '.join(IMAGE_EXTENSIONS)})"
        )
    return tuple(sorted(found))


def read_collection(
    source: str, *, root: str | None = None
) -> tuple[tuple[str, ...], np.ndarray | None]:
    """The images (and labels when known) of a directory or a list file.

    Args:
        source: an image directory, or a list file: either the peers' format
            (``relative/path l_1 ... l_C``, read with
            ``keras_dhsps.data.listfile.read_list_file``) or one path per
            line without labels.
        root: directory the list file's paths are relative to; defaults to
            the list file's directory.

    Returns:
        ``(paths, labels)``; ``labels`` is ``(N, C)`` uint8 or None.

    Raises:
        DataError: missing source, malformed list file (file and line
            named), missing image.
    """
    if os.path.isdir(source):
        return list_image_files(source), None
    if not os.path.isfile(source):
        raise DataError(f"{source}: no such image directory or list file")
    root = (
        root if root is not None else os.path.dirname(os.path.abspath(source))
    )
    with open(source, encoding="utf-8-sig") as handle:
        first = next((line.split() for line in handle if line.strip()), None)
    if first is None:
        raise DataError(f"{source}: list file has no entries")
    if len(first) > 1:
        return read_list_file(source, root=root)
    paths = []
    with open(source, encoding="utf-8-sig") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 1:
                raise DataError(
                    f"{source}:{line_number}: expected one image path per "
                    f"line, found {len(fields)} fields"
                )
            image = os.path.join(root, fields[0])
            require_file(
                image, f"{source}:{line_number}: image", error=DataError
            )
            paths.append(os.path.abspath(image))
    return tuple(paths), None
