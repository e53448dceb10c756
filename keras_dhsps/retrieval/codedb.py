"""Code databases: the packed hash codes of an image collection, in HDF5.

A ``codes.h5`` file holds ``codes`` (uint8 ``(N, ceil(K/8))``, packed by
``pack_codes``), ``paths`` (UTF-8, same order), optional ``labels`` (uint8
``(N, C)``) and ``relaxed`` (float32 ``(N, K)``) and ``skipped_paths``;
attributes ``format`` (:data:`FORMAT`), ``version``, ``bits`` and
``metadata`` (the hasher's, as JSON). Row ``i`` is item ``i`` of a
``HammingIndex`` built from it. Writing streams batches into a temporary
file renamed into place; reading opens, checks and reads the file in a
child process bounded in time, since HDF5 can hang or crash on a damaged
file (:func:`read_code_database`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence

import h5py
import numpy as np
import numpy.typing as npt

from keras_dhsps.utils.bounded import bounded_stream
from keras_dhsps.utils.codes import pack_codes
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import atomic_write
from keras_dhsps.utils.files import require_file
from keras_dhsps.utils.space import require_space

FORMAT = "keras_dhsps.codedb"
VERSION = 1
_CHUNK_ROWS = 4096
_STRING = h5py.string_dtype(encoding="utf-8")


@dataclasses.dataclass
class CodeBatch:
    """One batch handed to :func:`write_code_database`.

    Attributes:
        codes: ``(n, K)`` relaxed (or ±1) codes; packed on write.
        paths: ``n`` image paths.
        labels: ``(n, C)`` multi-hot labels, or None.
    """

    codes: np.ndarray
    paths: Sequence[str]
    labels: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class CodeDatabase:
    """A code database read into memory (:func:`read_code_database`).

    Attributes:
        packed: ``(N, ceil(K/8))`` uint8 packed codes.
        bits: ``K``.
        paths: N image paths.
        labels: ``(N, C)`` uint8 labels or None.
        relaxed: ``(N, K)`` float32 relaxed codes, or None (not stored or
            not requested).
        metadata: the hasher metadata dict.
        skipped_paths: images skipped as undecodable when it was written.
    """

    packed: npt.NDArray[np.uint8]
    bits: int
    paths: tuple[str, ...]
    labels: npt.NDArray[np.uint8] | None
    relaxed: npt.NDArray[np.float32] | None
    metadata: dict
    skipped_paths: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.packed.shape[0])


def _appendable(group, name, width, dtype, chunk_rows):
    shape = (0,) if width is None else (0, width)
    maxshape = (None,) if width is None else (None, width)
    chunks = (chunk_rows,) if width is None else (chunk_rows, width)
    return group.create_dataset(
        name, shape=shape, maxshape=maxshape, dtype=dtype, chunks=chunks
    )


def _append(dataset, values) -> None:
    start = dataset.shape[0]
    dataset.resize(start + len(values), axis=0)
    dataset[start:] = values


def write_code_database(
    path: str,
    batches: Iterable[CodeBatch],
    *,
    bits: int,
    metadata: dict | None = None,
    num_classes: int | None = None,
    store_relaxed: bool = False,
    skipped_paths: Callable[[], Sequence[str]] | Sequence[str] = (),
    chunk_rows: int = _CHUNK_ROWS,
) -> int:
    """Streams batches of codes into a new HDF5 code database.

    Memory stays at one batch: each batch is packed and appended to
    resizable datasets. The file appears at ``path`` only when complete.

    Args:
        path: the ``.h5`` file to write (replaced if it exists).
        batches: :class:`CodeBatch` es, in database order.
        bits: code length ``K`` (every batch must have ``K`` columns).
        metadata: JSON-ready hasher metadata to store.
        num_classes: ``C`` when batches carry labels, else None.
        store_relaxed: also store the float32 relaxed codes.
        skipped_paths: images that were skipped, or a callable returning
            them once ``batches`` is exhausted (for a streaming encoder).
        chunk_rows: HDF5 chunk length in rows.

    Returns:
        The number of codes written.

    Raises:
        DHSPSError: a batch with the wrong width or labels mismatch.
    """
    metadata = dict(metadata or {})
    count = 0

    def write(temporary: str) -> None:
        nonlocal count
        with h5py.File(temporary, "w") as handle:
            handle.attrs["format"] = FORMAT
            handle.attrs["version"] = VERSION
            handle.attrs["bits"] = int(bits)
            handle.attrs["metadata"] = json.dumps(metadata, sort_keys=True)
            datasets = _create_datasets(
                handle, bits, num_classes, store_relaxed, chunk_rows
            )
            for batch in batches:
                # HDF5 would take the interpreter down on a full disk:
                # each batch asks for room first (a chunk, at most).
                require_space(path, _batch_bytes(batch, bits, chunk_rows))
                count += _append_batch(datasets, batch, bits, num_classes)
            skipped = (
                skipped_paths() if callable(skipped_paths) else skipped_paths
            )
            handle.create_dataset(
                "skipped_paths", data=list(skipped), dtype=_STRING
            )
            handle.attrs["num_items"] = count

    atomic_write(path, write)
    return count


def _create_datasets(
    handle: h5py.File,
    bits: int,
    num_classes: int | None,
    store_relaxed: bool,
    chunk_rows: int,
) -> dict:
    """Empty resizable ``codes`` and ``paths`` (and optional) datasets.

    ``labels`` is created only when ``num_classes`` is given, ``relaxed``
    only with ``store_relaxed``; the dict maps each name to its dataset.
    """
    datasets = {
        "codes": _appendable(
            handle, "codes", -(-bits // 8), np.uint8, chunk_rows
        ),
        "paths": _appendable(handle, "paths", None, _STRING, chunk_rows),
    }
    if num_classes is not None:
        datasets["labels"] = _appendable(
            handle, "labels", num_classes, np.uint8, chunk_rows
        )
    if store_relaxed:
        datasets["relaxed"] = _appendable(
            handle, "relaxed", bits, np.float32, chunk_rows
        )
    return datasets


def _checked_codes(batch: CodeBatch, bits: int) -> np.ndarray:
    """The batch's ``(n, bits)`` codes, with exactly ``n`` paths."""
    values = np.asarray(batch.codes)
    if values.ndim != 2 or values.shape[1] != bits:
        raise DHSPSError(
            f"expected codes of shape (n, {bits}); got {values.shape}"
        )
    if len(batch.paths) != len(values):
        raise DHSPSError(f"{len(values)} codes but {len(batch.paths)} paths")
    return values


def _checked_labels(
    batch: CodeBatch, rows: int, num_classes: int
) -> np.ndarray:
    """The batch's labels as uint8, which must have shape ``(rows, C)``."""
    if batch.labels is None or np.shape(batch.labels) != (rows, num_classes):
        got = None if batch.labels is None else np.shape(batch.labels)
        raise DHSPSError(
            f"expected labels of shape ({rows}, {num_classes}); got {got}"
        )
    return np.asarray(batch.labels, dtype=np.uint8)


def _batch_bytes(batch: CodeBatch, bits: int, chunk_rows: int) -> int:
    """Bytes a batch may add: whole chunks of every dataset (HDF5 writes
    chunks), with its paths' UTF-8 bytes."""
    rows = max(len(batch.paths), chunk_rows)
    labels = 0 if batch.labels is None else np.shape(batch.labels)[1]
    per_row = (bits + 7) // 8 + 4 * bits + labels + 16
    return rows * per_row + sum(len(p.encode("utf-8")) for p in batch.paths)


def _append_batch(
    datasets: dict, batch: CodeBatch, bits: int, num_classes: int | None
) -> int:
    """Checks one batch, appends it to ``datasets``; returns its rows."""
    values = _checked_codes(batch, bits)
    if len(values) == 0:
        return 0
    _append(datasets["codes"], pack_codes(values))
    _append(datasets["paths"], list(batch.paths))
    if "labels" in datasets:
        _append(
            datasets["labels"],
            _checked_labels(batch, len(values), num_classes),
        )
    if "relaxed" in datasets:
        _append(datasets["relaxed"], values.astype(np.float32))
    return len(values)


#: What h5py raises for damaged data or object headers.
_DAMAGED = (KeyError, TypeError, ValueError, OSError, RuntimeError)


def _open(path: str) -> h5py.File:
    """Opens and checks a code database; only ever called in a child
    process (:func:`_stream`), since HDF5 may hang or crash on it."""
    _require_file(path)
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise DHSPSError(f"{path}: not an HDF5 file ({error})") from None
    try:
        # a damaged header can make it an array, or bytes: compare a str
        found = handle.attrs.get("format")
        is_ours = isinstance(found, str) and found == FORMAT
    except _DAMAGED:  # h5py raises these for a damaged object header
        is_ours = False
    if not is_ours:
        handle.close()
        raise DHSPSError(f"{path}: not a keras_dhsps code database")
    try:
        _check_layout(handle)
    except _DAMAGED as error:
        handle.close()
        raise DHSPSError(
            f"{path}: not a valid code database: {error}"
        ) from None
    return handle


def _require_file(path: str) -> None:
    require_file(path, "code database")


#: What each dataset of a code database must be: (kind, rank, required).
LAYOUT = {
    "codes": ("uint8", 2, True),
    "paths": ("string", 1, True),
    "labels": ("uint8", 2, False),
    "relaxed": ("float32", 2, False),
    "skipped_paths": ("string", 1, False),
}


def _check_dataset(handle: h5py.File, name: str) -> int | None:
    """Checks one dataset against :data:`LAYOUT`; its length, or None
    when it is absent (and may be)."""
    kind, rank, required = LAYOUT[name]
    if name not in handle:
        if required:
            raise KeyError(f"no '{name}' dataset")
        return None
    dataset = handle[name]
    if not isinstance(dataset, h5py.Dataset) or dataset.ndim != rank:
        raise ValueError(f"'{name}' is not a {rank}-D dataset")
    is_string = h5py.check_string_dtype(dataset.dtype) is not None
    if (kind == "string") != is_string or (
        kind != "string" and dataset.dtype != np.dtype(kind)
    ):
        raise ValueError(f"'{name}' holds {dataset.dtype}, not {kind}")
    return int(dataset.shape[0])


def _check_layout(handle: h5py.File) -> None:
    """Datasets present and typed, lengths and widths consistent, the
    attributes typed: checked before anything is read."""
    bits = handle.attrs.get("bits")
    if not isinstance(bits, (int, np.integer)) or int(bits) < 1:
        raise ValueError(
            f"attribute 'bits' is {bits!r}, not a positive integer"
        )
    metadata = json.loads(handle.attrs.get("metadata", "{}"))
    if not isinstance(metadata, dict):
        raise ValueError("attribute 'metadata' is not a JSON object")
    rows = {name: _check_dataset(handle, name) for name in LAYOUT}
    lengths = {
        rows[name] for name in ("codes", "paths", "labels", "relaxed")
    } - {None}
    if len(lengths) != 1:
        raise ValueError(f"datasets disagree on the number of rows: {rows}")
    widths = {"codes": (int(bits) + 7) // 8, "relaxed": int(bits)}
    for name, width in widths.items():
        if rows[name] is not None and handle[name].shape[1] != width:
            raise ValueError(
                f"'{name}' has {handle[name].shape[1]} columns, not {width} "
                f"for {int(bits)} bits"
            )


#: The most seconds each step of a read may take: starting the child and
#: opening and checking the file, then each block of rows it sends back.
READ_LIMIT_S = 30.0
#: Rows of strings, and bytes of numbers, in one block sent back.
_STRING_ROWS = 1 << 16
_BLOCK_BYTES = 16 << 20
_TEXTS = ("paths", "skipped_paths")


def read_code_database(path: str, *, relaxed: bool = False) -> CodeDatabase:
    """Reads a code database written by :func:`write_code_database`.

    HDF5 can loop forever or crash the interpreter on a damaged file (one
    byte changed in a global heap makes it loop), so the file is opened,
    checked and read in a child process (:func:`_stream`), which sends the
    arrays back in blocks; each step must finish within
    :data:`READ_LIMIT_S` seconds. Measured cost: an interpreter start
    (0.2 s), then pickling through a pipe; 10^6 rows (64 bits, 80 labels,
    paths) read in 1.0 s instead of 0.4 s (docs/reliability.md §13).

    Args:
        path: the ``.h5`` file.
        relaxed: also read the relaxed codes when stored.

    Raises:
        DHSPSError: missing file, not HDF5, not a code database, or one
            that HDF5 cannot read (an error, a hang or a crash).
    """
    names = ["codes", "paths", "labels", "skipped_paths"]
    header, arrays, texts = _read(path, names + ["relaxed"] * relaxed)
    return CodeDatabase(
        packed=arrays["codes"],
        bits=header["bits"],
        paths=tuple(texts["paths"]),
        labels=arrays.get("labels"),
        relaxed=arrays.get("relaxed"),
        metadata=header["metadata"],
        skipped_paths=tuple(texts.get("skipped_paths", ())),
    )


def read_packed_codes(path: str) -> tuple[int, np.ndarray]:
    """``(bits, packed codes)`` of a code database, nothing else read
    (checked and read as :func:`read_code_database` reads)."""
    header, arrays, _ = _read(path, ["codes"])
    return header["bits"], arrays["codes"]


def read_image_paths(path: str) -> tuple[str, ...]:
    """The image path of every row of a code database, nothing else read
    (checked and read as :func:`read_code_database` reads)."""
    _, _, texts = _read(path, ["paths"])
    return tuple(texts["paths"])


def _read(path: str, names: list) -> tuple[dict, dict, dict]:
    """``(header, arrays, texts)``: the datasets ``names`` of a code
    database, read whole through the bounded child."""
    _require_file(path)
    with _reading(path, names, None) as blocks:
        header = next(blocks)
        arrays = {
            name: np.empty(shape, dtype)
            for name, (shape, dtype) in header["arrays"].items()
        }
        texts = {name: [] for name in header["texts"]}
        for name, start, block in blocks:
            if name in texts:
                texts[name].extend(block)
            else:
                arrays[name][start : start + len(block)] = block
    return header, arrays, texts


def iter_packed_chunks(
    path: str, chunk_rows: int = 1 << 20
) -> Iterator[tuple[int, np.ndarray]]:
    """Yields ``(start, packed)`` row blocks without loading the whole file,
    e.g. to fill a ``HammingIndex`` from a collection larger than memory.

    Read in a child process, as :func:`read_code_database` reads.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1; got {chunk_rows}")
    _require_file(path)
    with _reading(path, ["codes"], chunk_rows) as blocks:
        next(blocks)
        for _, start, block in blocks:
            yield start, block


def _reading(path: str, names: list, rows: int | None):
    """The blocks :func:`_stream` sends from a child, closed on leaving."""
    return contextlib.closing(
        bounded_stream(
            "keras_dhsps.retrieval.codedb:_stream",
            (path, names, rows),
            failure=f"{path}: not a readable code database",
            reader="the HDF5 library",
            limit_s=READ_LIMIT_S,
        )
    )


def _stream(path: str, names: list, rows: int | None) -> Iterator:
    """Runs in the child: a header (``bits``, ``metadata``, the shapes and
    dtypes of the arrays, the string datasets present), then
    ``(name, start, block)`` for every block of the datasets ``names``
    (``rows`` rows each, or :data:`_BLOCK_BYTES`)."""
    with _open(path) as handle:
        try:
            present = [name for name in names if name in handle]
            yield {
                "bits": int(handle.attrs["bits"]),
                "metadata": json.loads(handle.attrs.get("metadata", "{}")),
                "arrays": {
                    name: (handle[name].shape, handle[name].dtype)
                    for name in present
                    if name not in _TEXTS
                },
                "texts": [name for name in present if name in _TEXTS],
            }
            for name in present:
                yield from _blocks(handle[name], name, rows)
        except _DAMAGED as error:  # damaged data, bad UTF-8
            raise DHSPSError(f"{path}: cannot read: {error}") from None


def _blocks(dataset: h5py.Dataset, name: str, rows: int | None) -> Iterator:
    if name in _TEXTS:
        view, step = dataset.asstr(), _STRING_ROWS
    else:
        row_bytes = dataset.dtype.itemsize * int(np.prod(dataset.shape[1:]))
        view, step = dataset, rows or _BLOCK_BYTES // max(1, row_bytes)
    for start in range(0, len(dataset), step):
        block = view[start : start + step]
        yield name, start, block.tolist() if name in _TEXTS else block
