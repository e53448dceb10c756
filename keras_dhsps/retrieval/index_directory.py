"""Index directories: a search index saved beside the codes it was built on.

``dhsps index build`` writes ``index.json`` and the ``"mih"`` tables of one
code database, or one such directory per shard of a manifest
(:mod:`keras_dhsps.retrieval.shards`); :func:`open_index` reads it back
over the codes it was built from (memory-mapped tables) and refuses other
codes by their checksum. Written to a temporary sibling and renamed: an
index directory is complete or absent.
"""

from __future__ import annotations

import os
import shutil

import numpy as np

from keras_dhsps.retrieval import mih
from keras_dhsps.retrieval.index import HammingIndex
from keras_dhsps.retrieval.shards import Codes
from keras_dhsps.retrieval.shards import ShardedIndex
from keras_dhsps.retrieval.shards import checked_codes
from keras_dhsps.retrieval.shards import is_manifest
from keras_dhsps.retrieval.shards import read_codes
from keras_dhsps.retrieval.shards import read_shard_manifest
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import finish_directory
from keras_dhsps.utils.files import make_temporary_directory
from keras_dhsps.utils.records import read_sealed_record
from keras_dhsps.utils.records import write_sealed_record

INDEX_FORMAT = "keras_dhsps.retrieval.index"
#: The metadata file of an index directory.
INDEX_FILE = "index.json"


def _save_tables(index: HammingIndex, directory: str, source: dict) -> None:
    """Writes ``index.json`` and the ``"mih"`` tables of ``index``."""
    tables, files = [], []
    if index.method == "mih" and index.ntotal:
        for j, table in enumerate(index.tables().tables):
            for name, array in table.arrays().items():
                files.append(f"table{j}_{name}.npy")
                np.save(os.path.join(directory, files[-1]), array)
            tables.append(table.describe())
    write_sealed_record(
        os.path.join(directory, INDEX_FILE),
        {
            "format": INDEX_FORMAT,
            "version": 1,
            "bits": index.num_bits,
            "method": index.method,
            "backend": index.backend,
            "num_codes": index.ntotal,
            "num_substrings": index.num_substrings,
            "tables": tables,
            "source": source,
        },
        files,
    )


def _read_tables(directory: str, meta: dict, index: HammingIndex):
    """The saved tables of ``index``, memory-mapped."""
    tables = []
    for j, fields in enumerate(meta["tables"]):
        arrays = {
            name: _load_npy(directory, f"table{j}_{name}.npy")
            for name in ("offsets", "ids")
        }
        tables.append(mih.SubstringTable(**fields, **arrays))
    return mih.MultiIndex(
        index.num_bits,
        mih.word_view(index.codes),
        tables,
        scan_fraction=index.scan_fraction,
    )


def _load_npy(directory: str, name: str):
    """A table file, memory-mapped (its bytes were checked with the seal)."""
    path = os.path.join(directory, name)
    return np.load(path, mmap_mode="r", allow_pickle=False)


def read_index_metadata(directory: str) -> dict:
    """``index.json`` of an index directory, sealed
    (:mod:`keras_dhsps.utils.records`): the record and every table file are
    checked against the SHA-256 written with them before any is used, so an
    edited or damaged index is one line, never wrong results.

    Raises:
        DHSPSError: not an index directory, or one changed since written.
    """
    path = os.path.join(directory, INDEX_FILE)
    if not os.path.isfile(path):
        raise DHSPSError(
            f"{directory}: not an index directory (no {INDEX_FILE})"
        )
    meta = read_sealed_record(path, "index")
    if meta.get("format") != INDEX_FORMAT:
        raise DHSPSError(f"{path}: not a keras_dhsps index")
    return meta


def _staged(output: str, write) -> None:
    """Calls ``write(directory)`` on a temporary sibling of ``output``,
    then renames it into place (complete or absent)."""
    if os.path.exists(output):
        raise DHSPSError(f"{output} exists; choose a new index directory")
    parent = os.path.dirname(os.path.abspath(output))
    os.makedirs(parent, exist_ok=True)
    temporary = make_temporary_directory(parent, ".tmp-index-")
    try:
        write(temporary)
        finish_directory(temporary)
        os.replace(temporary, output)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _build_one(codes: Codes, path: str, directory: str, **options) -> None:
    index = HammingIndex(codes.bits, **options)
    index.add(codes.packed, copy=False)
    source = {
        "codes": os.path.abspath(path),
        "rows": index.ntotal,
        "checksum": codes.checksum,
    }
    _save_tables(index, directory, source)


def build_index(codes: str, output: str, **options) -> dict:
    """Writes the index directory of a code database or shard manifest.

    Args:
        codes: an HDF5 code database, or a shard manifest (``.json``).
        output: the new index directory.
        **options: ``HammingIndex`` options (``method``, ``backend``,
            ``num_substrings``).

    Returns:
        ``{"codes": N, "shards": S, "bits": K}``.
    """
    if not is_manifest(codes):
        loaded = read_codes(codes)
        _staged(output, lambda d: _build_one(loaded, codes, d, **options))
        return {"codes": len(loaded.packed), "shards": 1, "bits": loaded.bits}
    bits, shards = read_shard_manifest(codes)

    def write(directory: str) -> None:
        for number, shard in enumerate(shards):
            sub = os.path.join(directory, f"shard-{number:05d}")
            os.mkdir(sub)
            loaded = checked_codes(shard, codes)
            _build_one(loaded, shard.path, sub, **options)
        write_sealed_record(
            os.path.join(directory, INDEX_FILE),
            {
                "format": INDEX_FORMAT,
                "version": 1,
                "bits": bits,
                "shards": len(shards),
                "source": {"manifest": os.path.abspath(codes)},
            },
            [f"shard-{n:05d}/{INDEX_FILE}" for n in range(len(shards))],
        )

    _staged(output, write)
    total = sum(s.rows for s in shards)
    return {"codes": total, "shards": len(shards), "bits": bits}


def _open_one(directory: str, codes_path: str | None, **options):
    meta = read_index_metadata(directory)
    source = meta["source"]
    path = codes_path or source["codes"]
    codes = read_codes(path)
    if codes.checksum != source["checksum"]:
        raise DHSPSError(
            f"{directory} was built from another code database than {path} "
            f"(codes checksum {codes.checksum[:15]}..., index built from "
            f"{source['checksum'][:15]}...)"
        )
    index = HammingIndex(
        meta["bits"],
        backend=options.get("backend", meta["backend"]),
        method=meta["method"],
        num_substrings=meta["num_substrings"],
    )
    index.add(codes.packed, copy=False)
    index.sources = (os.path.abspath(path),)
    if meta["method"] == "mih" and index.ntotal:
        index.set_tables(_read_tables(directory, meta, index))
    return index


def open_index(
    path: str,
    codes_path: str | None = None,
    *,
    backend: str | None = None,
    workers: int | None = None,
):
    """An index directory from :func:`build_index`, over its codes.

    Args:
        path: the index directory.
        codes_path: the code database (or shard manifest) to search;
            defaults to the one the index was built from. Its codes must be
            the same (checksum), so a moved database can be named here.
        backend: override the backend it was built with (its tables are
            then rebuilt at the first search).
        workers: threads searching shards in parallel.

    Returns:
        A :class:`HammingIndex` (``sources``: the code database) or a
        :class:`ShardedIndex` (``sources``: the shards, in order).

    Raises:
        DHSPSError: not an index directory, or codes other than those the
            index was built from.
    """
    meta = read_index_metadata(path)
    options = {} if backend is None else {"backend": backend}
    if "shards" not in meta:
        return _open_one(path, codes_path, **options)
    manifest = codes_path or meta["source"]["manifest"]
    _, shards = read_shard_manifest(manifest)
    if len(shards) != meta["shards"]:
        raise DHSPSError(
            f"{path} has {meta['shards']} shards but {manifest} lists "
            f"{len(shards)}"
        )
    indexes = [
        _open_one(os.path.join(path, f"shard-{n:05d}"), shard.path, **options)
        for n, shard in enumerate(shards)
    ]
    return ShardedIndex(indexes, workers=workers)
