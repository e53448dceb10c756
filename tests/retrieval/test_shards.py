"""Shard manifests, sharded search and persisted index directories."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_dhsps.retrieval.codedb import CodeBatch
from keras_dhsps.retrieval.codedb import write_code_database
from keras_dhsps.retrieval.index import HammingIndex
from keras_dhsps.retrieval.index import faiss_available
from keras_dhsps.retrieval.shards import ShardedIndex
from keras_dhsps.retrieval.shards import build_index
from keras_dhsps.retrieval.shards import open_index
from keras_dhsps.retrieval.shards import read_codes
from keras_dhsps.retrieval.shards import read_shard_manifest
from keras_dhsps.retrieval.shards import write_shard_manifest
from keras_dhsps.utils.codes import unpack_codes
from keras_dhsps.utils.errors import DHSPSError

BITS = 24


def packed_codes(rng, n, bits=BITS, distinct=12):
    patterns = rng.integers(0, 2, (distinct, bits), dtype=np.uint8)
    return np.packbits(patterns[rng.integers(0, distinct, n)], axis=1)


def write_database(path, packed, bits=BITS):
    """A code database of ``packed`` (the paths name the rows)."""
    codes = unpack_codes(packed, bits) if len(packed) else np.zeros((0, bits))
    paths = [f"image{i}.jpg" for i in range(len(packed))]
    write_code_database(
        str(path), [CodeBatch(codes=codes, paths=paths)], bits=bits
    )
    return str(path)


def flat_over(packed, bits=BITS):
    index = HammingIndex(bits, backend="numpy")
    index.add(packed)
    return index


def assert_same(expected, got, queries, ks=(1, 5, 40, 200), radii=(0, 3)):
    for k in ks:
        pairs = zip(
            expected.search(queries, k), got.search(queries, k), strict=True
        )
        for a, b in pairs:
            np.testing.assert_array_equal(a, b)
    for radius in radii:
        pairs = zip(
            expected.range_search(queries, radius),
            got.range_search(queries, radius),
            strict=True,
        )
        for a, b in pairs:
            np.testing.assert_array_equal(a, b)


@settings(max_examples=20, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 60), min_size=1, max_size=5),
    method=st.sampled_from(["flat", "mih"]),
    workers=st.sampled_from([1, 3]),
    seed=st.integers(0, 2**16),
)
def test_shards_search_as_their_concatenation(sizes, method, workers, seed):
    rng = np.random.default_rng(seed)
    parts = [packed_codes(rng, n) for n in sizes]  # ties across shards
    shards = []
    for part in parts:
        shard = HammingIndex(BITS, backend="numpy", method=method)
        shard.add(part)
        shards.append(shard)
    sharded = ShardedIndex(shards, workers=workers)
    assert sharded.ntotal == sum(sizes)
    queries = packed_codes(rng, 5)
    assert_same(flat_over(np.concatenate(parts)), sharded, queries)


def test_sharded_index_refuses_mixed_or_no_shards():
    with pytest.raises(DHSPSError, match="at least one shard"):
        ShardedIndex([])
    with pytest.raises(DHSPSError, match="several code lengths"):
        ShardedIndex([HammingIndex(8), HammingIndex(16)])


def test_manifest_round_trip_and_checks(tmp_path):
    rng = np.random.default_rng(0)
    parts = [packed_codes(rng, n) for n in (30, 0, 17)]
    files = [
        write_database(tmp_path / f"codes-{i}.h5", part)
        for i, part in enumerate(parts)
    ]
    manifest = str(tmp_path / "shards.json")
    written = write_shard_manifest(manifest, files)
    bits, shards = read_shard_manifest(manifest)
    assert bits == BITS and shards == written
    assert [s.rows for s in shards] == [30, 0, 17]
    stored = json.loads((tmp_path / "shards.json").read_text())
    assert stored["shards"][0]["path"] == "codes-0.h5"  # relative
    assert stored["shards"][0]["checksum"].startswith("sha256:")
    other = write_database(tmp_path / "other.h5", packed_codes(rng, 3, 16), 16)
    with pytest.raises(DHSPSError, match="several lengths"):
        write_shard_manifest(str(tmp_path / "mixed.json"), [files[0], other])
    with pytest.raises(DHSPSError, match="not found"):
        read_shard_manifest(str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(DHSPSError, match="not a shard manifest"):
        read_shard_manifest(str(tmp_path / "bad.json"))


def test_checksum_names_the_codes(tmp_path):
    rng = np.random.default_rng(1)
    packed = packed_codes(rng, 20)
    one = read_codes(write_database(tmp_path / "a.h5", packed))
    two = read_codes(write_database(tmp_path / "b.h5", packed))
    np.testing.assert_array_equal(one.packed, packed)
    assert one.checksum == two.checksum  # same codes, other file
    changed = packed.copy()
    changed[3, 0] ^= 1
    three = read_codes(write_database(tmp_path / "c.h5", changed))
    assert three.checksum != one.checksum


KINDS = [("flat", "numpy"), ("mih", "numpy")]
KINDS += [("flat", "faiss")] if faiss_available() else []


@pytest.mark.parametrize(("method", "backend"), KINDS)
def test_index_directory_round_trip(tmp_path, method, backend):
    rng = np.random.default_rng(2)
    packed = packed_codes(rng, 300)
    codes = write_database(tmp_path / "codes.h5", packed)
    output = str(tmp_path / "index")
    summary = build_index(codes, output, method=method, backend=backend)
    assert summary == {"codes": 300, "shards": 1, "bits": BITS}
    meta = json.loads((tmp_path / "index" / "index.json").read_text())
    assert meta["method"] == method and meta["bits"] == BITS
    assert meta["source"]["checksum"].startswith("sha256:")
    index = open_index(output)
    assert index.sources == (os.path.abspath(codes),)
    assert index.method == method and index.backend == backend
    if method == "mih":  # memory-mapped tables
        assert isinstance(index.tables().tables[0].ids, np.memmap)
    assert_same(flat_over(packed), index, packed_codes(rng, 6))
    # The database moved: name it.
    os.rename(codes, tmp_path / "moved.h5")
    with pytest.raises(DHSPSError, match="code database not found"):
        open_index(output)
    moved = open_index(output, str(tmp_path / "moved.h5"))
    assert moved.ntotal == 300
    with pytest.raises(DHSPSError, match="exists"):
        build_index(str(tmp_path / "moved.h5"), output)


def test_opened_index_holds_the_codes_once(tmp_path):
    rng = np.random.default_rng(5)
    packed = packed_codes(rng, 200, 64)
    codes = write_database(tmp_path / "codes.h5", packed, 64)
    build_index(codes, str(tmp_path / "index"), method="mih")
    index = open_index(str(tmp_path / "index"))
    # 64-bit codes: the tables and the fallback scan read them in place.
    assert np.shares_memory(index.tables().words, index.codes)
    index.search(packed[:2], 3)
    assert np.shares_memory(index._database_words(), index.codes)


def test_index_refuses_other_codes(tmp_path):
    rng = np.random.default_rng(3)
    packed = packed_codes(rng, 50)
    codes = write_database(tmp_path / "codes.h5", packed)
    build_index(codes, str(tmp_path / "index"), method="mih")
    other = packed.copy()
    other[0, 0] ^= 0x80
    write_database(tmp_path / "codes.h5", other)  # rewritten in place
    with pytest.raises(DHSPSError) as error:
        open_index(str(tmp_path / "index"))
    message = str(error.value)
    assert "built from another code database" in message
    assert "\n" not in message
    with pytest.raises(DHSPSError, match="not an index directory"):
        open_index(str(tmp_path))


@pytest.mark.parametrize("method", ["flat", "mih"])
def test_sharded_index_directory(tmp_path, method):
    rng = np.random.default_rng(4)
    parts = [packed_codes(rng, n) for n in (40, 0, 25, 60)]
    files = [
        write_database(tmp_path / f"part{i}.h5", p) for i, p in enumerate(parts)
    ]
    manifest = str(tmp_path / "shards.json")
    write_shard_manifest(manifest, files)
    output = str(tmp_path / "index")
    summary = build_index(manifest, output, method=method)
    assert summary == {"codes": 125, "shards": 4, "bits": BITS}
    index = open_index(output, workers=2)
    assert isinstance(index, ShardedIndex)
    assert index.sources == tuple(os.path.abspath(f) for f in files)
    assert_same(flat_over(np.concatenate(parts)), index, packed_codes(rng, 7))
    # A shard rewritten after the manifest: refused, naming it.
    write_database(files[2], packed_codes(rng, 25))
    with pytest.raises(DHSPSError, match="part2.h5"):
        build_index(manifest, str(tmp_path / "again"), method=method)
    with pytest.raises(DHSPSError, match="built from another code database"):
        open_index(output)
    assert not os.path.exists(tmp_path / "again")  # nothing half-written
