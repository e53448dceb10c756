"""What the commands read as one collection: a code database or a shard
manifest (:func:`read_database`), or also an index directory for search
(:func:`open_collection`: one index with the image path of every row)."""

from __future__ import annotations

import dataclasses
import os

from keras_dhsps.retrieval.codedb import CodeDatabase
from keras_dhsps.retrieval.codedb import read_code_database
from keras_dhsps.retrieval.codedb import read_image_paths
from keras_dhsps.retrieval.index import HammingIndex
from keras_dhsps.retrieval.index_directory import open_index
from keras_dhsps.retrieval.shards import ShardedIndex
from keras_dhsps.retrieval.shards import is_manifest
from keras_dhsps.retrieval.shards import read_sharded_database


@dataclasses.dataclass(frozen=True)
class SearchCollection:
    """An index over a collection's codes and the path of each row."""

    index: HammingIndex | ShardedIndex
    paths: tuple[str, ...]

    @property
    def bits(self) -> int:
        return self.index.num_bits


def read_database(path: str, *, relaxed: bool = False) -> CodeDatabase:
    """A code database (``.h5``), or a shard manifest (``.json``) read as
    one (:func:`~keras_dhsps.retrieval.shards.read_sharded_database`)."""
    if is_manifest(path):
        return read_sharded_database(path, relaxed=relaxed)
    return read_code_database(path, relaxed=relaxed)


def open_collection(path: str, *, backend: str = "auto") -> SearchCollection:
    """Opens ``path`` for search.

    Args:
        path: an HDF5 code database, a shard manifest (``.json``: its
            databases in order, checked against their code checksums) or
            an index directory from ``dhsps index build`` (its method and
            tables; the code databases it was built from give the paths,
            read alone so the codes are held once).
        backend: the flat scan's backend; ``"auto"`` keeps an index
            directory's own.

    Raises:
        DHSPSError: anything that is not one of these, or codes changed
            since a manifest or index was written.
    """
    if os.path.isdir(path):
        index = open_index(path, backend=None if backend == "auto" else backend)
        paths = tuple(
            row for source in index.sources for row in read_image_paths(source)
        )
        return SearchCollection(index, paths)
    database = read_database(path)
    index = HammingIndex(database.bits, backend=backend)
    index.add(database.packed, copy=False)
    return SearchCollection(index, database.paths)
