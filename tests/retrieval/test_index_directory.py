"""Index directories: built, reopened over their codes, refused over others."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from keras_dhsps.retrieval.index import faiss_available
from keras_dhsps.retrieval.index_directory import build_index
from keras_dhsps.retrieval.index_directory import open_index
from keras_dhsps.retrieval.shards import ShardedIndex
from keras_dhsps.retrieval.shards import write_shard_manifest
from keras_dhsps.utils.errors import DHSPSError
from tests.retrieval.helpers import BITS
from tests.retrieval.helpers import assert_same
from tests.retrieval.helpers import flat_over
from tests.retrieval.helpers import packed_codes
from tests.retrieval.helpers import write_database

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


def test_a_changed_table_byte_is_one_line_not_wrong_results(tmp_path):
    # A table file is memory-mapped and trusted once its seal is checked:
    # a changed byte would otherwise send mih to wrong candidates silently.
    packed = packed_codes(np.random.default_rng(5), 300)
    codes = write_database(tmp_path / "codes.h5", packed)
    output = str(tmp_path / "index")
    build_index(codes, output, method="mih")
    table = os.path.join(output, "table0_ids.npy")
    data = bytearray(open(table, "rb").read())
    data[-1] ^= 0x01  # the last id, inside the array's data
    with open(table, "wb") as handle:
        handle.write(data)
    with pytest.raises(DHSPSError, match=r"table0_ids\.npy: checksum mismatch"):
        open_index(output)
