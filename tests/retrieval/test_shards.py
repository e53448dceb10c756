"""Shard manifests, reading them as one database, and sharded search."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_dhsps.retrieval.codedb import read_code_database
from keras_dhsps.retrieval.index import HammingIndex
from keras_dhsps.retrieval.shards import ShardedIndex
from keras_dhsps.retrieval.shards import codes_checksum
from keras_dhsps.retrieval.shards import read_codes
from keras_dhsps.retrieval.shards import read_shard_manifest
from keras_dhsps.retrieval.shards import read_sharded_database
from keras_dhsps.retrieval.shards import write_shard_manifest
from keras_dhsps.utils.errors import DHSPSError
from tests.retrieval.helpers import BITS
from tests.retrieval.helpers import assert_same
from tests.retrieval.helpers import flat_over
from tests.retrieval.helpers import packed_codes
from tests.retrieval.helpers import write_database
from tests.retrieval.helpers import write_parts


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
    parts, files = write_parts(tmp_path, (30, 0, 17), seed=0, prefix="codes-")
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
    with pytest.raises(DHSPSError, match="shard manifest was edited"):
        read_shard_manifest(str(tmp_path / "bad.json"))
    # A hand-edited manifest (here: one shard dropped) is refused whole.
    edited = {**stored, "shards": stored["shards"][:1]}
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    with pytest.raises(DHSPSError, match="shard manifest was edited"):
        read_shard_manifest(str(tmp_path / "edited.json"))


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


def test_codes_checksum_is_the_streamed_one(tmp_path):
    packed = packed_codes(np.random.default_rng(2), 33)
    on_disk = read_codes(write_database(tmp_path / "a.h5", packed))
    assert codes_checksum(packed, BITS) == on_disk.checksum
    assert codes_checksum(packed, BITS + 1) != on_disk.checksum  # bits too


def test_a_manifest_reads_as_its_databases_concatenated(tmp_path):
    parts, files = write_parts(tmp_path, (5, 0, 8), seed=3, prefix="p")
    manifest = str(tmp_path / "all.json")
    write_shard_manifest(manifest, files)
    whole = read_sharded_database(manifest)
    np.testing.assert_array_equal(whole.packed, np.concatenate(parts))
    expected = [p for f in files for p in read_code_database(f).paths]
    assert list(whole.paths) == expected and whole.bits == BITS
    # A shard rewritten with other codes (same rows) is refused by name.
    changed = parts[2].copy()
    changed[0, 0] ^= 0x80
    write_database(tmp_path / "p2.h5", changed)
    with pytest.raises(DHSPSError, match=r"p2\.h5 is not the shard listed"):
        read_sharded_database(manifest)
    with pytest.raises(DHSPSError, match=r"p0\.h5: not valid JSON"):
        read_sharded_database(files[0])  # a code database is not a manifest
