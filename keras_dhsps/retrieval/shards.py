"""Collections in several code databases: shard manifests and sharded search.

A shard manifest (JSON, ``dhsps index shards`` or ``dhsps encode --engine
ray``) lists the HDF5 code databases of one collection in order, with their
rows and code checksums. :func:`read_sharded_database` reads them back as
one :class:`~keras_dhsps.retrieval.codedb.CodeDatabase`;
:class:`ShardedIndex` searches them as one database (global indices, the
same tie order), shards in parallel threads. Index directories over them:
:mod:`keras_dhsps.retrieval.index_directory`.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import os

import numpy as np

from keras_dhsps.retrieval import mih
from keras_dhsps.retrieval.codedb import CodeDatabase
from keras_dhsps.retrieval.codedb import read_code_database
from keras_dhsps.retrieval.codedb import read_packed_codes
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.records import read_sealed_record
from keras_dhsps.utils.records import write_sealed_record

MANIFEST_FORMAT = "keras_dhsps.retrieval.shards"


# ------------------------------------------------------------------ codes
@dataclasses.dataclass(frozen=True)
class Codes:
    """The packed codes of one code database, with their checksum."""

    packed: np.ndarray
    bits: int
    checksum: str


def codes_checksum(packed: np.ndarray, bits: int) -> str:
    """The checksum of packed codes: the ``sha256`` of the bit count and of
    the ``sha256`` of the codes' bytes, row after row. It covers the codes
    alone, so a manifest or an index is checked on the pass that reads the
    codes anyway (a hash of the whole file would read paths and labels
    too)."""
    codes = hashlib.sha256(np.ascontiguousarray(packed).data)
    final = hashlib.sha256(f"{bits}\n".encode())
    final.update(codes.digest())
    return f"sha256:{final.hexdigest()}"


def read_codes(path: str) -> Codes:
    """The packed codes of an HDF5 code database with their checksum
    (:func:`codes_checksum`).

    Raises:
        DHSPSError: missing file or not a code database.
    """
    bits, packed = read_packed_codes(path)
    return Codes(packed, bits, codes_checksum(packed, bits))


# --------------------------------------------------------------- manifests
@dataclasses.dataclass(frozen=True)
class Shard:
    """One code database of a shard manifest (``path`` absolute)."""

    path: str
    rows: int
    checksum: str


def write_shard_manifest(path: str, shard_files) -> list[Shard]:
    """Writes a shard manifest for ``shard_files`` (in database order).

    Shard paths are stored relative to the manifest's directory.

    Raises:
        DHSPSError: no shard, an unreadable shard or mixed code lengths.
    """
    if not shard_files:
        raise DHSPSError("a shard manifest needs at least one code database")
    shards, bits = [], set()
    base = os.path.dirname(os.path.abspath(path))
    for name in shard_files:
        codes = read_codes(name)
        bits.add(codes.bits)
        shards.append(
            Shard(os.path.abspath(name), len(codes.packed), codes.checksum)
        )
    if len(bits) != 1:
        raise DHSPSError(
            f"shards hold codes of several lengths: {sorted(bits)}"
        )
    entries = [
        {
            "path": os.path.relpath(s.path, base),
            "rows": s.rows,
            "checksum": s.checksum,
        }
        for s in shards
    ]
    write_sealed_record(
        path,
        {
            "format": MANIFEST_FORMAT,
            "version": 1,
            "bits": bits.pop(),
            "shards": entries,
        },
    )
    return shards


def read_shard_manifest(path: str) -> tuple[int, list[Shard]]:
    """``(bits, shards)`` of a manifest written by
    :func:`write_shard_manifest` (shard paths made absolute). The manifest
    is sealed (:mod:`keras_dhsps.utils.records`), so an edited one is
    refused before any field is used.

    Raises:
        DHSPSError: missing file, not JSON, edited, or not a shard manifest.
    """
    manifest = read_sealed_record(path, "shard manifest")
    if manifest.get("format") != MANIFEST_FORMAT:
        raise DHSPSError(f"{path}: not a shard manifest")
    base = os.path.dirname(os.path.abspath(path))
    shards = [
        Shard(
            os.path.join(base, entry["path"]), entry["rows"], entry["checksum"]
        )
        for entry in manifest["shards"]
    ]
    return manifest["bits"], shards


def checked_codes(shard: Shard, manifest: str) -> Codes:
    """The codes of ``shard``, checked against its ``manifest`` entry.

    Raises:
        DHSPSError: unreadable, or not the codes the manifest lists.
    """
    codes = read_codes(shard.path)
    if not _is_listed(shard, codes.packed, codes.bits):
        raise DHSPSError(_changed(shard, manifest))
    return codes


def read_sharded_database(path: str, *, relaxed: bool = False) -> CodeDatabase:
    """The code databases of a shard manifest as one, rows in order.

    Raises:
        DHSPSError: not a manifest, a missing shard, or a shard whose codes
            or rows differ from the manifest's.
    """
    bits, shards = read_shard_manifest(path)
    parts = []
    for shard in shards:
        part = read_code_database(shard.path, relaxed=relaxed)
        if part.bits != bits or not _is_listed(shard, part.packed, bits):
            raise DHSPSError(_changed(shard, path))
        parts.append(part)
    return _concatenated(parts, bits)


def _is_listed(shard: Shard, packed: np.ndarray, bits: int) -> bool:
    """Whether ``packed`` are the codes a manifest lists for ``shard``."""
    return (
        len(packed) == shard.rows
        and codes_checksum(packed, bits) == shard.checksum
    )


def _changed(shard: Shard, manifest: str) -> str:
    return (
        f"{shard.path} is not the shard listed in {manifest} (its codes "
        "changed since the manifest was written)"
    )


def _stack(parts, name):
    values = [getattr(part, name) for part in parts]
    return None if any(v is None for v in values) else np.concatenate(values)


def _concatenated(parts: list[CodeDatabase], bits: int) -> CodeDatabase:
    return CodeDatabase(
        packed=np.concatenate([p.packed for p in parts]),
        bits=bits,
        paths=tuple(path for p in parts for path in p.paths),
        labels=_stack(parts, "labels"),
        relaxed=_stack(parts, "relaxed"),
        metadata=parts[0].metadata,
        skipped_paths=tuple(s for p in parts for s in p.skipped_paths),
    )


def is_manifest(path: str) -> bool:
    """Whether ``path`` names a shard manifest (a ``.json`` file)."""
    return path.lower().endswith(".json")


# ----------------------------------------------------------- sharded index
class ShardedIndex:
    """Several :class:`HammingIndex` es searched as their concatenation.

    Results have global indices (shard offset + local index) in the same
    order as one index over the concatenated codes: each shard's top ``k``
    sorted by distance, then global index. Shards are searched in a thread
    pool of ``workers`` threads (NumPy and faiss release the GIL).
    """

    def __init__(self, shards: list, *, workers: int | None = None) -> None:
        if not shards:
            raise DHSPSError("a sharded index needs at least one shard")
        bits = {shard.num_bits for shard in shards}
        if len(bits) != 1:
            raise DHSPSError(f"shards of several code lengths: {sorted(bits)}")
        self.shards = list(shards)
        self.num_bits = bits.pop()
        self.offsets = np.cumsum([0] + [s.ntotal for s in shards])
        self.workers = workers or min(len(shards), os.cpu_count() or 1)
        self.sources = tuple(p for s in shards for p in s.sources)

    @property
    def ntotal(self) -> int:
        return int(self.offsets[-1])

    def __len__(self) -> int:
        return self.ntotal

    def _each(self, method: str, *args) -> list:
        if self.workers == 1 or len(self.shards) == 1:
            return [getattr(s, method)(*args) for s in self.shards]
        with concurrent.futures.ThreadPoolExecutor(self.workers) as pool:
            futures = [
                pool.submit(getattr(s, method), *args) for s in self.shards
            ]
            return [future.result() for future in futures]

    def search(self, queries, k: int):
        """``HammingIndex.search`` over every shard, indices global."""
        results = self._each("search", queries, k)
        dists = np.concatenate([d for d, _ in results], axis=1)
        ids = np.concatenate(
            [
                np.where(i >= 0, i + offset, mih.MISSING_INDEX)
                for (_, i), offset in zip(results, self.offsets, strict=False)
            ],
            axis=1,
        )
        order = np.lexsort((ids, dists), axis=-1)[:, :k]
        return (
            np.take_along_axis(dists, order, axis=1),
            np.take_along_axis(ids, order, axis=1),
        )

    def range_search(self, queries, radius: int):
        """``HammingIndex.range_search`` over every shard, indices global."""
        results = self._each("range_search", queries, radius)
        rows, ids, dists = [], [], []
        for (lims, d, i), offset in zip(results, self.offsets, strict=False):
            rows.append(np.repeat(np.arange(len(lims) - 1), np.diff(lims)))
            ids.append(i + offset)
            dists.append(d)
        return mih.sorted_rows(
            np.concatenate(rows),
            np.concatenate(ids),
            np.concatenate(dists),
            len(results[0][0]) - 1,
        )
