"""Encoding an image collection into a code database: the codes of the
evaluation path, bad images named or skipped and counted."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from PIL import Image

from keras_dhsps.data.base import Split
from keras_dhsps.data.image_lists import list_image_files
from keras_dhsps.models.hasher import build_hasher
from keras_dhsps.retrieval.codedb import read_code_database
from keras_dhsps.retrieval.evaluation import encode
from keras_dhsps.serving.encode import encode_collection
from keras_dhsps.serving.hasher import LoadedHasher
from keras_dhsps.serving.hasher import hasher_metadata
from keras_dhsps.utils.codes import pack_codes
from keras_dhsps.utils.errors import DataError

BITS = 20


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
    # Oracle: the evaluation path (the tf.data reader, data/tfdata_reader.py).
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
    with pytest.raises(DataError, match=r"img_03\.png: cannot decode image \("):
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
    with pytest.raises(DataError, match=r"gone\.png: image not found"):
        encode_collection(hasher, paths, str(tmp_path / "c.h5"))
    summary = encode_collection(
        hasher, paths, str(tmp_path / "c.h5"), skip_bad_images=True
    )
    assert summary["encoded"] == 3 and summary["skipped"] == 1
