"""Sealed records: a JSON object carrying the SHA-256 of itself and of the
files it lists, so that what the product wrote is read back only as
written.

A record the product reads back later (a data manifest, an index
directory's ``index.json``) is trusted after its seal is checked: any
edit, truncation or changed byte, in the record or in a listed file, is
one line naming the file, and no field needs a check of its own.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable

from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import read_json_file
from keras_dhsps.utils.files import sha256_file
from keras_dhsps.utils.files import write_json


def record_checksum(record: dict) -> str:
    """The SHA-256 of ``record`` without its ``checksum``, as canonical JSON
    (sorted keys, no spaces)."""
    body = {key: value for key, value in record.items() if key != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_sealed_record(path: str, record: dict, files: Iterable[str] = ()):
    """Writes ``record`` with ``files`` (names beside ``path``) -> their
    SHA-256, and its own ``checksum``; returns what was written."""
    directory = os.path.dirname(os.path.abspath(path))
    sealed = dict(record)
    if files:
        sealed["files"] = {
            name: sha256_file(os.path.join(directory, name)) for name in files
        }
    sealed["checksum"] = record_checksum(sealed)
    write_json(path, sealed)
    return sealed


def read_sealed_record(
    path: str, what: str, *, error=DHSPSError, hint: str = ""
) -> dict:
    """The record at ``path``, its seal and its listed files checked.

    Raises:
        error: missing or not JSON (:func:`read_json_file`), edited, or a
            listed file missing or changed since the record was written.
    """
    record = read_json_file(path, what, error=error, hint=hint, kind=dict)
    if record.get("checksum") != record_checksum(record):
        raise error(f"{path}: checksum mismatch (the {what} was edited)")
    directory = os.path.dirname(os.path.abspath(path))
    for name, digest in record.get("files", {}).items():
        listed = os.path.join(directory, name)
        if not os.path.isfile(listed):
            raise error(f"{listed}: missing (listed in {path})")
        if sha256_file(listed) != digest:
            raise error(
                f"{listed}: checksum mismatch (changed since {path} was "
                "written)"
            )
    return record
