"""Nothing lost: an output never replaces, contains or sits inside an
input, and ``--overwrite`` replaces only what this product wrote.

Every command that writes names its inputs and its output here before any
work (:func:`check_output`). What an existing output is, is read from the
metadata the product writes into each kind of output (:data:`KINDS`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from collections.abc import Iterable

from keras_dhsps.utils.bounded import bounded_stream
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import read_json_file


def _real(path: str) -> str:
    return os.path.realpath(os.path.abspath(path))


def _within(inner: str, outer: str) -> bool:
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


def refuse_overlap(output: str, inputs: Iterable[str | None]) -> None:
    """Refuses an output that is, contains or sits inside an input.

    Raises:
        DHSPSError: naming the output and the input it would harm.
    """
    target = _real(output)
    for source in inputs:
        if not source:
            continue
        real = _real(source)
        if target == real:
            how = "is"
        elif _within(real, target):
            how = "contains"
        elif _within(target, real) and os.path.isdir(real):
            how = "sits inside"
        else:
            continue
        raise DHSPSError(
            f"output {output} {how} the input {source}; an output may not "
            "replace an input: choose another output path"
        )


def _json_format(path: str, key: str = "format") -> str | None:
    try:
        value = read_json_file(path, "JSON file")
    except DHSPSError:
        return None
    return value.get(key) if isinstance(value, dict) else None


def _is_saved_model(path: str) -> bool:
    metadata = os.path.join(path, "assets.extra", "dhsps_metadata.json")
    return os.path.isfile(os.path.join(path, "saved_model.pb")) and (
        _json_format(metadata) == "keras_dhsps.hasher"
    )


#: The most seconds the child asking an HDF5 file's format may take.
PROBE_LIMIT_S = 30.0


def _is_code_database(path: str) -> bool:
    """Whether ``path`` is a code database, asked in a bounded child: HDF5
    can loop or crash on a damaged file (docs/reliability.md §13)."""
    try:
        items = bounded_stream(
            "keras_dhsps.utils.outputs:_hdf5_format",
            (path,),
            failure=f"{path}: not a readable HDF5 file",
            reader="the HDF5 library",
            limit_s=PROBE_LIMIT_S,
        )
        return list(items) == ["keras_dhsps.codedb"]
    except DHSPSError:  # it hung or crashed: not a file we wrote
        return False


def _hdf5_format(path: str):
    """Runs in the child: yields the ``format`` attribute, or None."""
    import h5py

    try:
        with h5py.File(path, "r") as file:
            value = file.attrs.get("format")
    except (OSError, ValueError, KeyError, RuntimeError):
        value = None
    yield value if isinstance(value, str) else None


def _is_onnx_hasher(path: str) -> bool:
    """An ONNX file carrying the hasher metadata in its metadata_props."""
    if not (os.path.isfile(path) and path.endswith(".onnx")):
        return False
    with open(path, "rb") as handle:
        return b"keras_dhsps.hasher" in handle.read()


def _has_suffix(*suffixes: str) -> Callable[[str], bool]:
    return lambda path: os.path.isfile(path) and path.endswith(suffixes)


#: What the product writes, by kind: how to recognize one of its own.
KINDS: dict[str, Callable[[str], bool]] = {
    "SavedModel": _is_saved_model,
    "ONNX model": _is_onnx_hasher,
    "LiteRT model": lambda path: (
        os.path.isfile(path)
        and _json_format(path + ".json") == "keras_dhsps.hasher"
    ),
    "code database": _is_code_database,
    "shard manifest": lambda path: (
        _json_format(path) == "keras_dhsps.retrieval.shards"
    ),
    "plot": _has_suffix(".png", ".pdf", ".svg"),
}


def check_output(
    output: str,
    *,
    kind: str,
    inputs: Iterable[str | None] = (),
    overwrite: bool = False,
) -> None:
    """Checks an output path before any work.

    The output may not overlap an input; an existing output is refused
    unless ``overwrite`` is set and it is a ``kind`` this product wrote.

    Raises:
        DHSPSError: one line naming the path and what is wrong.
    """
    refuse_overlap(output, inputs)
    if not os.path.lexists(output):
        return
    if not overwrite:
        raise DHSPSError(
            f"{output} already exists (use --overwrite to replace it)"
        )
    if not KINDS[kind](output):
        raise DHSPSError(
            f"{output} is not a {kind} written by keras_dhsps; "
            "--overwrite replaces only those: choose another output path"
        )
