"""Code databases on disk for search: shard manifests and index directories.

A shard manifest (JSON) lists the HDF5 code databases of one collection in
order, with their rows and code checksums; :class:`ShardedIndex` searches
them as one database (global indices, the same tie order), shards in
parallel threads. An index directory (``dhsps index build``) holds
``index.json`` and the tables of one code database, or one such directory
per shard; :func:`open_index` reads it back over the codes it was built
from and refuses others.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import os
import shutil

import numpy as np

from keras_dhsps.retrieval import mih
from keras_dhsps.retrieval.codedb import iter_packed_chunks
from keras_dhsps.retrieval.index import HammingIndex
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import finish_directory
from keras_dhsps.utils.files import make_temporary_directory
from keras_dhsps.utils.files import read_json
from keras_dhsps.utils.files import write_json

MANIFEST_FORMAT = "keras_dhsps.retrieval.shards"
INDEX_FORMAT = "keras_dhsps.retrieval.index"
#: The metadata file of an index directory.
INDEX_FILE = "index.json"


# ------------------------------------------------------------------ codes
@dataclasses.dataclass(frozen=True)
class Codes:
    """The packed codes of one code database, with their checksum."""

    packed: np.ndarray
    bits: int
    checksum: str


def _database_bits(path: str) -> int:
    import h5py  # the code database's ``bits`` attribute (codedb's format)

    with h5py.File(path, "r") as handle:
        return int(handle.attrs["bits"])


def read_codes(path: str) -> Codes:
    """Reads the packed codes of an HDF5 code database once, hashing them
    on the way: the ``sha256`` of the bit count and of the ``sha256`` of the
    codes' bytes (row after row).

    Raises:
        DHSPSError: missing file or not a code database.
    """
    digest, blocks = hashlib.sha256(), []
    for _, block in iter_packed_chunks(path):
        blocks.append(block)
        digest.update(np.ascontiguousarray(block).data)
    bits = _database_bits(path)
    final = hashlib.sha256(f"{bits}\n".encode())
    final.update(digest.digest())
    if not blocks:
        packed = np.zeros((0, -(-bits // 8)), dtype=np.uint8)
    elif len(blocks) == 1:
        packed = np.ascontiguousarray(blocks[0])
    else:
        packed = np.concatenate(blocks)
    return Codes(packed, bits, f"sha256:{final.hexdigest()}")


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
    write_json(
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
    :func:`write_shard_manifest` (shard paths made absolute).

    Raises:
        DHSPSError: missing file, not JSON or not a shard manifest.
    """
    if not os.path.isfile(path):
        raise DHSPSError(f"shard manifest not found: {path}")
    try:
        manifest = read_json(path)
        if manifest.get("format") != MANIFEST_FORMAT:
            raise ValueError("not a keras_dhsps shard manifest")
        base = os.path.dirname(os.path.abspath(path))
        shards = [
            Shard(
                os.path.join(base, entry["path"]),
                int(entry["rows"]),
                str(entry["checksum"]),
            )
            for entry in manifest["shards"]
        ]
        return int(manifest["bits"]), shards
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise DHSPSError(f"{path}: not a shard manifest ({error})") from None


def _checked_codes(shard: Shard, manifest: str) -> Codes:
    codes = read_codes(shard.path)
    if codes.checksum != shard.checksum or len(codes.packed) != shard.rows:
        raise DHSPSError(
            f"{shard.path} is not the shard listed in {manifest} (its codes "
            "changed since the manifest was written)"
        )
    return codes


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


# -------------------------------------------------------- index directories
def _save_tables(index: HammingIndex, directory: str, source: dict) -> None:
    """Writes ``index.json`` and the ``"mih"`` tables of ``index``."""
    tables = []
    if index.method == "mih" and index.ntotal:
        for j, table in enumerate(index.tables().tables):
            for name, array in table.arrays().items():
                np.save(os.path.join(directory, f"table{j}_{name}.npy"), array)
            tables.append(table.describe())
    write_json(
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
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        raise DHSPSError(f"{directory}: incomplete index ({name} missing)")
    return np.load(path, mmap_mode="r", allow_pickle=False)


def read_index_metadata(directory: str) -> dict:
    """``index.json`` of an index directory.

    Raises:
        DHSPSError: not an index directory.
    """
    path = os.path.join(directory, INDEX_FILE)
    if not os.path.isfile(path):
        raise DHSPSError(
            f"{directory}: not an index directory (no {INDEX_FILE})"
        )
    try:
        meta = read_json(path)
    except ValueError as error:
        raise DHSPSError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != INDEX_FORMAT:
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
            loaded = _checked_codes(shard, codes)
            _build_one(loaded, shard.path, sub, **options)
        write_json(
            os.path.join(directory, INDEX_FILE),
            {
                "format": INDEX_FORMAT,
                "version": 1,
                "bits": bits,
                "shards": len(shards),
                "source": {"manifest": os.path.abspath(codes)},
            },
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
