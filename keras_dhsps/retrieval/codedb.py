"""Code databases: packed hash codes of an image collection in HDF5.

Layout of a ``codes.h5`` file (h5py):

===================  ===============================  =========================
name                 type                             content
===================  ===============================  =========================
``codes``            ``uint8 (N, ceil(K/8))``         packed codes (``pack_codes``)
``paths``            UTF-8 strings ``(N,)``           image paths, same order
``labels``           ``uint8 (N, C)``, optional       multi-hot labels when known
``relaxed``          ``float32 (N, K)``, optional     relaxed codes ``u``
``skipped_paths``    UTF-8 strings                    images that failed to decode
attrs ``format``     ``"keras_dhsps.codedb"``
attrs ``version``    ``1``
attrs ``bits``       ``K``
attrs ``metadata``   JSON string                      the hasher's metadata (bits,
                                                      backbone, activation, config,
                                                      model path)
===================  ===============================  =========================

Row ``i`` of ``codes``, ``paths`` and ``labels`` is database index ``i`` of a
``HammingIndex`` built from the file. Files are written in streaming batches
(resizable, chunked datasets) into a temporary file renamed into place, so a
collection larger than memory can be encoded and a crash leaves no partial
file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence

import h5py
import numpy as np
import numpy.typing as npt

from keras_dhsps.retrieval.codes import pack_codes
from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import atomic_write

logger = logging.getLogger(__name__)

FORMAT = "keras_dhsps.codedb"
VERSION = 1
#: File extensions listed when encoding a plain image directory (the
#: formats ``tf.io.decode_image`` and Pillow read).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
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


def _open(path: str) -> h5py.File:
    if not os.path.isfile(path):
        raise DHSPSError(f"code database not found: {path}")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise DHSPSError(f"{path}: not an HDF5 file ({error})") from None
    if handle.attrs.get("format") != FORMAT:
        handle.close()
        raise DHSPSError(f"{path}: not a keras_dhsps code database")
    return handle


def _strings(dataset) -> tuple[str, ...]:
    return tuple(dataset.asstr()[...].tolist()) if len(dataset) else ()


def read_code_database(path: str, *, relaxed: bool = False) -> CodeDatabase:
    """Reads a code database written by :func:`write_code_database`.

    Args:
        path: the ``.h5`` file.
        relaxed: also read the relaxed codes when stored.

    Raises:
        DHSPSError: missing file, not HDF5, or not a code database.
    """
    with _open(path) as handle:
        return CodeDatabase(
            packed=handle["codes"][...],
            bits=int(handle.attrs["bits"]),
            paths=_strings(handle["paths"]),
            labels=handle["labels"][...] if "labels" in handle else None,
            relaxed=(
                handle["relaxed"][...]
                if relaxed and "relaxed" in handle
                else None
            ),
            metadata=json.loads(handle.attrs["metadata"]),
            skipped_paths=_strings(handle["skipped_paths"]),
        )


def iter_packed_chunks(
    path: str, chunk_rows: int = 1 << 20
) -> Iterator[tuple[int, np.ndarray]]:
    """Yields ``(start, packed)`` row blocks without loading the whole file,
    e.g. to fill a ``HammingIndex`` from a collection larger than memory."""
    with _open(path) as handle:
        codes = handle["codes"]
        for start in range(0, codes.shape[0], chunk_rows):
            yield start, codes[start : start + chunk_rows]


# ------------------------------------------------------- image collections
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
        from keras_dhsps.data.listfile import read_list_file

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
            if not os.path.isfile(image):
                raise DataError(
                    f"{source}:{line_number}: image not found: {image}"
                )
            paths.append(os.path.abspath(image))
    return tuple(paths), None


# ----------------------------------------------------------------- encoding
def _decode_error(path: str) -> str:
    """The decoder's message for one file (for an error naming it)."""
    from keras_dhsps.data.decoding import tensorflow_or_none

    tf = tensorflow_or_none()
    if tf is None:
        from PIL import Image

        try:
            with Image.open(path) as image:
                image.convert("RGB")
        except Exception as error:  # Pillow raises many types.
            return str(error).splitlines()[0]
        return "decode failed"
    from keras_dhsps.data.decoding import decode_image

    try:
        decode_image(tf.io.read_file(path))
    except tf.errors.OpError as error:
        return error.message.splitlines()[0]
    return "decode failed"


def _tf_decoded(hasher, paths, batch_size) -> Iterator:
    """``(positions, float32 images)`` batches decoded by tf.data (parallel,
    in order); unreadable files are left out."""
    import tensorflow as tf

    from keras_dhsps.data.decoding import decode_image
    from keras_dhsps.data.decoding import resize_images

    def load(position, path):
        image = decode_image(tf.io.read_file(path))
        stored = resize_images(
            image, resize=hasher.resize, size=hasher.stored_size
        )
        return position, tf.cast(hasher.crop_stored(stored), tf.float32)

    dataset = tf.data.Dataset.from_tensor_slices(
        (
            np.arange(len(paths), dtype=np.int64),
            tf.constant(list(paths), tf.string),
        )
    )
    dataset = (
        dataset.map(
            load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
        .ignore_errors()
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    for positions, images in dataset:
        yield positions.numpy(), images.numpy()


def _pillow_decoded(hasher, paths, batch_size) -> Iterator:
    """:func:`_tf_decoded`'s twin without TensorFlow: the image store's
    Pillow decoder and NumPy resize (the same pixels), in spawned worker
    processes for large collections as the store does."""
    from keras_dhsps.data import decoding

    starts = range(0, len(paths), batch_size)
    tasks = [list(paths[start : start + batch_size]) for start in starts]
    size = (hasher.resize, hasher.stored_size)
    if len(paths) <= decoding.IN_PROCESS_MAX:
        results = (decoding.pillow_decode_chunk(task, *size) for task in tasks)
    else:
        results = decoding.process_pool_results(
            decoding.pillow_decode_chunk, tasks, *size
        )
    for start, task, (images, failures) in zip(
        starts, tasks, results, strict=True
    ):
        failed = {offset for offset, _ in failures}
        kept = [start + o for o in range(len(task)) if o not in failed]
        if kept:
            images = np.asarray(hasher.crop_stored(images), np.float32)
            yield np.asarray(kept, np.int64), images


def encode_images(
    hasher,
    paths: Sequence[str],
    *,
    batch_size: int = 64,
    skip_bad_images: bool = False,
    skipped: list[int] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Encodes image files in batches, in order.

    Decoding and resizing match the image store at evaluation time
    (:mod:`keras_dhsps.data.store`, in the hasher's resize mode): tf.data
    with parallel decode where TensorFlow is importable, else Pillow (a
    ``.keras`` hasher encodes under JAX or PyTorch without TensorFlow). A
    file that cannot be read or decoded raises :class:`DataError` naming
    it, or with ``skip_bad_images`` is skipped and its position appended
    to ``skipped``.

    Args:
        hasher: a ``keras_dhsps.serving.hasher.LoadedHasher``.
        paths: image files.
        batch_size: images per forward pass.
        skip_bad_images: skip undecodable images instead of failing.
        skipped: receives the positions (in ``paths``) of skipped images.

    Yields:
        ``(positions, codes)``: int64 positions in ``paths`` and float32
        relaxed codes ``(n, K)``.
    """
    from keras_dhsps.data.decoding import tensorflow_or_none

    skipped = skipped if skipped is not None else []
    decoded = (
        _tf_decoded if tensorflow_or_none() is not None else _pillow_decoded
    )
    expected = 0

    def missing(upto: int) -> None:
        nonlocal expected
        for position in range(expected, upto):
            if not skip_bad_images:
                raise DataError(
                    f"{paths[position]}: cannot read image "
                    f"({_decode_error(paths[position])}); pass "
                    "--skip-bad-images to skip it"
                )
            logger.warning("skipping unreadable image %s", paths[position])
            skipped.append(position)

    for positions, images in decoded(hasher, paths, batch_size):
        for position in positions:
            missing(int(position))
            expected = int(position) + 1
        yield positions, hasher.codes_from_preprocessed(images)
    missing(len(paths))


def encode_collection(
    hasher,
    paths: Sequence[str],
    output: str,
    *,
    labels: np.ndarray | None = None,
    batch_size: int = 64,
    skip_bad_images: bool = False,
    store_relaxed: bool = False,
    extra_metadata: dict | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Encodes image files with ``hasher`` into an HDF5 code database.

    Streams: memory holds one batch of images and codes.

    Args:
        hasher: a ``keras_dhsps.serving.hasher.LoadedHasher``.
        paths: image files, in database order.
        output: the ``.h5`` file to write.
        labels: ``(N, C)`` labels aligned with ``paths``, or None.
        batch_size: images per forward pass.
        skip_bad_images: skip (and count) undecodable images.
        store_relaxed: also store relaxed float32 codes.
        extra_metadata: merged into the stored metadata.
        progress: called as ``progress(done, total)`` after each batch.

    Returns:
        ``{"encoded": n, "skipped": m, "skipped_paths": [...]}``.

    Raises:
        DataError: an unreadable image (without ``skip_bad_images``).
    """
    if labels is not None and len(labels) != len(paths):
        raise DHSPSError(f"{len(paths)} paths but {len(labels)} label rows")
    skipped: list[int] = []
    metadata = dict(hasher.metadata)
    metadata["model_path"] = os.path.abspath(hasher.source)
    metadata.update(extra_metadata or {})

    def batches() -> Iterator[CodeBatch]:
        done = 0
        for positions, codes in encode_images(
            hasher,
            paths,
            batch_size=batch_size,
            skip_bad_images=skip_bad_images,
            skipped=skipped,
        ):
            done = int(positions[-1]) + 1
            yield CodeBatch(
                codes=codes,
                paths=[paths[p] for p in positions],
                labels=None if labels is None else labels[positions],
            )
            if progress is not None:
                progress(done, len(paths))
        if progress is not None and done < len(paths):
            progress(len(paths), len(paths))

    count = write_code_database(
        output,
        batches(),
        bits=hasher.bits,
        metadata=metadata,
        num_classes=None if labels is None else int(labels.shape[1]),
        store_relaxed=store_relaxed,
        skipped_paths=lambda: [paths[p] for p in skipped],
    )
    return {
        "encoded": count,
        "skipped": len(skipped),
        "skipped_paths": [paths[p] for p in skipped],
    }
