"""Carving a validation split out of the training images."""

import numpy as np
import pytest

from keras_dhsps.data.base import Split
from keras_dhsps.data.splits import carve_rows
from keras_dhsps.data.splits import carve_validation
from keras_dhsps.data.splits import split_rows
from keras_dhsps.utils.errors import DHSPSError

pytestmark = pytest.mark.backend_neutral


def test_carve_validation_is_disjoint_and_seeded():
    labels = np.eye(10, dtype=np.uint8)
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1) * np.ones(
        (1, 2, 2, 3), np.uint8
    )
    split = Split(labels=labels, images=images)
    train, validation = carve_validation(split, 0.3, seed=0)
    assert (len(train), len(validation)) == (7, 3)

    def ids(part):
        return set(part.images[:, 0, 0, 0].tolist())

    assert ids(train) | ids(validation) == set(range(10))
    assert not ids(train) & ids(validation)
    again, _ = carve_validation(split, 0.3, seed=0)
    assert ids(again) == ids(train)
    with pytest.raises(DHSPSError, match="empty"):
        carve_validation(split, 0.01, seed=0)


def test_a_split_of_files_keeps_each_path_with_its_labels():
    labels = np.arange(12, dtype=np.uint8).reshape(6, 2)
    paths = tuple(f"image{index}.jpg" for index in range(6))
    split = Split(labels=labels, paths=paths)
    train, validation = carve_validation(split, 0.5, seed=3)
    kept, carved = carve_rows(6, 0.5, seed=3)
    for part, rows in ((train, kept), (validation, carved)):
        assert list(rows) == sorted(rows)
        assert part.paths == tuple(paths[row] for row in rows)
        np.testing.assert_array_equal(part.labels, labels[rows])
    # carve_rows alone allows an empty side (the lists loader's fraction 0).
    kept, carved = carve_rows(6, 0.0, seed=3)
    assert len(kept) == 6 and len(carved) == 0
    assert len(split_rows(split, carved)) == 0
