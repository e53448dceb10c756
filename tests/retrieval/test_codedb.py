"""HDF5 code databases: round trip, streaming, read errors."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from keras_dhsps.retrieval.codedb import CodeBatch
from keras_dhsps.retrieval.codedb import iter_packed_chunks
from keras_dhsps.retrieval.codedb import read_code_database
from keras_dhsps.retrieval.codedb import read_image_paths
from keras_dhsps.retrieval.codedb import read_packed_codes
from keras_dhsps.retrieval.codedb import write_code_database
from keras_dhsps.utils.codes import pack_codes
from keras_dhsps.utils.codes import unpack_codes
from keras_dhsps.utils.errors import DHSPSError

BITS = 20


def test_round_trip_in_several_batches(tmp_path):
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(23, BITS)).astype(np.float32)
    labels = rng.integers(0, 2, size=(23, 5)).astype(np.uint8)
    paths = [f"img/é_{i}.png" for i in range(23)]  # non-ASCII survives
    batches = [
        CodeBatch(codes[s : s + 7], paths[s : s + 7], labels[s : s + 7])
        for s in range(0, 23, 7)
    ]  # 7 + 7 + 7 + 2 rows, chunk of 4 rows: crosses chunk boundaries
    path = str(tmp_path / "codes.h5")
    count = write_code_database(
        path,
        iter(batches),
        bits=BITS,
        metadata={"bits": BITS, "backbone": "small_cnn"},
        num_classes=5,
        store_relaxed=True,
        skipped_paths=["bad.jpg"],
        chunk_rows=4,
    )
    assert count == 23
    db = read_code_database(path, relaxed=True)
    assert len(db) == 23 and db.bits == BITS
    np.testing.assert_array_equal(db.packed, pack_codes(codes))
    np.testing.assert_array_equal(
        unpack_codes(db.packed, BITS), np.where(codes >= 0, 1, -1)
    )
    np.testing.assert_array_equal(db.labels, labels)
    np.testing.assert_array_equal(db.relaxed, codes)
    assert db.paths == tuple(paths)
    assert db.metadata == {"bits": BITS, "backbone": "small_cnn"}
    assert db.skipped_paths == ("bad.jpg",)
    chunks = list(iter_packed_chunks(path, chunk_rows=10))
    assert [start for start, _ in chunks] == [0, 10, 20]
    np.testing.assert_array_equal(
        np.concatenate([c for _, c in chunks]), db.packed
    )
    with h5py.File(path) as handle:  # the documented layout
        assert handle["codes"].dtype == np.uint8
        assert handle["codes"].shape == (23, 3)  # ceil(20 / 8)
        assert handle.attrs["format"] == "keras_dhsps.codedb"


def test_without_labels_and_write_failure_leaves_no_file(tmp_path):
    path = str(tmp_path / "codes.h5")
    write_code_database(path, [CodeBatch(np.ones((2, 8)), ["a", "b"])], bits=8)
    db = read_code_database(path)
    assert db.labels is None and db.relaxed is None
    assert db.packed.tolist() == [[255], [255]]
    # A bad batch aborts the write: the previous file stays as it was.
    with pytest.raises(DHSPSError, match=r"shape \(n, 8\)"):
        write_code_database(
            path, [CodeBatch(np.ones((2, 9)), ["a", "b"])], bits=8
        )
    assert read_code_database(path).paths == ("a", "b")
    assert [p.name for p in tmp_path.iterdir()] == ["codes.h5"]


def test_read_errors(tmp_path):
    with pytest.raises(DHSPSError, match="not found"):
        read_code_database(str(tmp_path / "none.h5"))
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(DHSPSError, match="not an HDF5 file"):
        read_code_database(str(tmp_path / "text.h5"))
    with h5py.File(tmp_path / "other.h5", "w") as handle:
        handle["x"] = 1
    with pytest.raises(DHSPSError, match="not a keras_dhsps code database"):
        read_code_database(str(tmp_path / "other.h5"))


def test_codes_alone_and_paths_alone_are_the_whole_reads_fields(tmp_path):
    codes = np.where(np.random.default_rng(4).random((70, 20)) < 0.5, -1, 1)
    paths = [f"dir/image{i}.jpg" for i in range(70)]
    path = str(tmp_path / "codes.h5")
    batches = [
        CodeBatch(codes[:30], paths[:30]),
        CodeBatch(codes[30:], paths[30:]),
    ]
    write_code_database(path, batches, bits=20)
    whole = read_code_database(path)
    bits, packed = read_packed_codes(path)
    assert bits == 20
    np.testing.assert_array_equal(packed, pack_codes(codes))
    assert read_image_paths(path) == whole.paths == tuple(paths)
    with pytest.raises(DHSPSError, match="not found"):
        read_image_paths(str(tmp_path / "missing.h5"))
