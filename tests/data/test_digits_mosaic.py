"""digits-mosaic: determinism, label/image consistency, disjoint query pool."""

import numpy as np
import pytest

from keras_dhsps.data import load_dataset
from keras_dhsps.data import load_digits_mosaic
from keras_dhsps.data.digits_mosaic import CELL
from keras_dhsps.utils.errors import DataError
from keras_dhsps.utils.errors import UnknownNameError

SMALL = dict(num_train=60, num_validation=10, num_query=20, num_database=40)


def test_deterministic_for_a_seed():
    first = load_digits_mosaic(seed=3, **SMALL)
    second = load_digits_mosaic(seed=3, **SMALL)
    other = load_digits_mosaic(seed=4, **SMALL)
    for name in first.splits:
        np.testing.assert_array_equal(
            first.split(name).images, second.split(name).images
        )
        np.testing.assert_array_equal(
            first.split(name).labels, second.split(name).labels
        )
    assert not np.array_equal(
        first.split("train").images, other.split("train").images
    )


def test_shapes_labels_and_nonempty_cells_agree():
    dataset = load_digits_mosaic(seed=0, **SMALL)
    assert dataset.class_names == tuple("0123456789")
    for name, size in [
        ("train", 60),
        ("validation", 10),
        ("query", 20),
        ("database", 40),
    ]:
        split = dataset.split(name)
        assert (
            split.images.shape == (size, 32, 32, 3)
            and split.images.dtype == np.uint8
        )
        counts = split.labels.sum(axis=1)
        assert counts.min() >= 1 and counts.max() <= 4
        # Each labelled digit fills one 16×16 cell; empty cells are black.
        filled = [
            (
                split.images[
                    :, r * CELL : (r + 1) * CELL, c * CELL : (c + 1) * CELL
                ]
                .reshape(size, -1)
                .max(axis=1)
                > 0
            )
            for r in range(2)
            for c in range(2)
        ]
        np.testing.assert_array_equal(np.sum(filled, axis=0), counts)


def test_query_cells_never_appear_in_training_or_database():
    dataset = load_digits_mosaic(
        seed=0, num_train=300, num_validation=0, num_query=200, num_database=300
    )

    def cells(images):
        found = set()
        for image in images:
            for r in range(2):
                for c in range(2):
                    cell = image[
                        r * CELL : (r + 1) * CELL, c * CELL : (c + 1) * CELL, 0
                    ]
                    if cell.any():
                        found.add(cell.tobytes())
        return found

    query = cells(dataset.split("query").images)
    seen = cells(dataset.split("train").images) | cells(
        dataset.split("database").images
    )
    assert query and seen
    assert not query & seen


def test_registry_errors():
    with pytest.raises(UnknownNameError, match="unknown dataset 'mnist'"):
        load_dataset("mnist")
    with pytest.raises(DataError, match="takes no --data-root"):
        load_dataset("digits-mosaic", root="/tmp")
    with pytest.raises(DataError, match="bad options"):
        load_dataset("digits-mosaic", num_trian=3)
    with pytest.raises(ValueError, match="max_digits"):
        load_digits_mosaic(max_digits=5)
