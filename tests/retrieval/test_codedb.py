"""HDF5 code databases: round trip, streaming, collections, bad images."""

from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest
from PIL import Image

from keras_dhsps.data.base import Split
from keras_dhsps.models.hasher import build_hasher
from keras_dhsps.retrieval.codedb import CodeBatch
from keras_dhsps.retrieval.codedb import encode_collection
from keras_dhsps.retrieval.codedb import iter_packed_chunks
from keras_dhsps.retrieval.codedb import list_image_files
from keras_dhsps.retrieval.codedb import read_code_database
from keras_dhsps.retrieval.codedb import read_collection
from keras_dhsps.retrieval.codedb import write_code_database
from keras_dhsps.retrieval.codes import pack_codes
from keras_dhsps.retrieval.codes import unpack_codes
from keras_dhsps.retrieval.evaluation import encode
from keras_dhsps.serving.hasher import LoadedHasher
from keras_dhsps.serving.hasher import hasher_metadata
from keras_dhsps.utils.errors import DataError
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
        assert handle.attrs["format"] == "keras_dhsps.retrieval.codedb"


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


def make_images(folder, count, *, seed=0, sizes=((32, 32), (45, 28))):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        height, width = sizes[i % len(sizes)]
        pixels = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
        path = folder / f"img_{i:02d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def hasher():
    keras.utils.set_random_seed(2)
    model = build_hasher("small_cnn", BITS)
    return LoadedHasher(
        source="memory", metadata=hasher_metadata(model), model=model
    )


def test_encode_directory_matches_evaluation_encode(tmp_path, hasher):
    paths = make_images(tmp_path / "images" / "sub", 7)
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    listed = list_image_files(str(tmp_path / "images"))
    assert list(listed) == sorted(paths)
    output = str(tmp_path / "codes.h5")
    calls = []
    summary = encode_collection(
        hasher,
        listed,
        output,
        batch_size=3,
        store_relaxed=True,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert summary == {"encoded": 7, "skipped": 0, "skipped_paths": []}
    assert calls == [(3, 7), (6, 7), (7, 7)]
    db = read_code_database(output, relaxed=True)
    # Oracle: the evaluation path (tf.data pipeline of data/pipeline.py).
    split = Split(labels=np.zeros((7, 1), np.uint8), paths=listed)
    expected = encode(hasher.model, split, batch_size=4)
    np.testing.assert_allclose(db.relaxed, expected, atol=1e-5)
    np.testing.assert_array_equal(db.packed, pack_codes(db.relaxed))
    assert db.paths == listed
    assert db.metadata["bits"] == BITS and db.metadata["model_path"].endswith(
        "memory"
    )


def test_broken_image_is_named_or_skipped_and_counted(tmp_path, hasher):
    paths = make_images(tmp_path / "images", 6)
    broken = tmp_path / "images" / "img_03.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    labels = np.eye(6, 3, dtype=np.uint8)
    with pytest.raises(DataError, match=r"img_03\.png: cannot read image"):
        encode_collection(hasher, paths, str(tmp_path / "a.h5"), batch_size=2)
    assert not (tmp_path / "a.h5").exists()
    summary = encode_collection(
        hasher,
        paths,
        str(tmp_path / "b.h5"),
        labels=labels,
        batch_size=2,
        skip_bad_images=True,
    )
    assert summary["encoded"] == 5 and summary["skipped"] == 1
    assert summary["skipped_paths"] == [str(broken)]
    db = read_code_database(str(tmp_path / "b.h5"))
    kept = [0, 1, 2, 4, 5]
    assert db.paths == tuple(paths[i] for i in kept)
    np.testing.assert_array_equal(db.labels, labels[kept])  # rows stay aligned
    assert db.skipped_paths == (str(broken),)


def test_broken_last_image_and_missing_file(tmp_path, hasher):
    paths = make_images(tmp_path / "images", 3)
    paths.append(str(tmp_path / "images" / "gone.png"))  # never written
    with pytest.raises(DataError, match=r"gone\.png: cannot read image"):
        encode_collection(hasher, paths, str(tmp_path / "c.h5"))
    summary = encode_collection(
        hasher, paths, str(tmp_path / "c.h5"), skip_bad_images=True
    )
    assert summary["encoded"] == 3 and summary["skipped"] == 1


def test_read_collection_list_files(tmp_path):
    make_images(tmp_path / "data" / "imgs", 3)
    (tmp_path / "data" / "list.txt").write_text(
        "imgs/img_00.png 1 0\nimgs/img_01.png 0 1\n\nimgs/img_02.png 1 1\n"
    )
    paths, labels = read_collection(str(tmp_path / "data" / "list.txt"))
    assert [p.rsplit("/", 1)[-1] for p in paths] == [
        "img_00.png",
        "img_01.png",
        "img_02.png",
    ]
    assert labels.tolist() == [[1, 0], [0, 1], [1, 1]]
    (tmp_path / "data" / "plain.txt").write_text(
        "imgs/img_02.png\nimgs/img_00.png\n"
    )
    paths, labels = read_collection(str(tmp_path / "data" / "plain.txt"))
    assert labels is None and paths[0].endswith("img_02.png")
    (tmp_path / "data" / "bad.txt").write_text("imgs/img_00.png\nimgs/x.png\n")
    with pytest.raises(DataError, match=r"bad\.txt:2: image not found"):
        read_collection(str(tmp_path / "data" / "bad.txt"))
    with pytest.raises(DataError, match="no such image directory"):
        read_collection(str(tmp_path / "missing"))


def test_empty_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        read_collection(str(tmp_path / "empty"))
