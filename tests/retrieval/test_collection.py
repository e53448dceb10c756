"""read_database and open_collection: one collection, whatever holds it."""

import numpy as np
import pytest

from keras_dhsps.retrieval.codedb import read_code_database
from keras_dhsps.retrieval.collection import open_collection
from keras_dhsps.retrieval.collection import read_database
from keras_dhsps.retrieval.index_directory import build_index
from keras_dhsps.retrieval.shards import write_shard_manifest
from keras_dhsps.utils.errors import DHSPSError
from tests.retrieval.helpers import BITS
from tests.retrieval.helpers import packed_codes
from tests.retrieval.helpers import write_database


@pytest.fixture
def kinds(tmp_path):
    """One collection as a database, a manifest of two, and index dirs."""
    packed = packed_codes(np.random.default_rng(6), 90)
    whole = write_database(tmp_path / "whole.h5", packed)
    pieces = [
        write_database(tmp_path / "a.h5", packed[:40]),
        write_database(tmp_path / "b.h5", packed[40:]),
    ]
    manifest = str(tmp_path / "codes.json")
    write_shard_manifest(manifest, pieces)
    build_index(manifest, str(tmp_path / "codes.index"), method="mih")
    return whole, manifest, str(tmp_path / "codes.index"), packed


def test_a_manifest_reads_as_the_database_it_splits(kinds):
    whole, manifest, _, packed = kinds
    one, two = read_database(whole), read_database(manifest)
    np.testing.assert_array_equal(two.packed, packed)
    assert two.bits == one.bits == BITS
    # The pieces named their rows image0.. again: paths follow the shards.
    assert two.paths == tuple(
        read_code_database(whole).paths[:40]
        + read_code_database(whole).paths[:50]
    )


def test_every_kind_opens_to_the_same_search(kinds):
    whole, manifest, index_dir, packed = kinds
    queries = packed[::7]
    results = []
    for path in (whole, manifest, index_dir):
        collection = open_collection(path, backend="numpy")
        assert collection.bits == BITS and len(collection.paths) == 90
        results.append(collection.index.search(queries, 10))
    for distances, indices in results[1:]:
        np.testing.assert_array_equal(distances, results[0][0])
        np.testing.assert_array_equal(indices, results[0][1])


def test_anything_else_is_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("not codes")
    with pytest.raises(DHSPSError):
        open_collection(str(tmp_path / "notes.txt"))
    with pytest.raises(DHSPSError, match="not an index directory"):
        open_collection(str(tmp_path))
