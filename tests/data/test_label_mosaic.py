"""label-mosaic: real label rows painted as coloured digit glyphs."""

import numpy as np
import pytest

from keras_dhsps.data import DATASETS
from keras_dhsps.data import label_mosaic
from keras_dhsps.data import load_dataset
from keras_dhsps.data.digits_mosaic import digit_pools
from keras_dhsps.data.peers import peer_labels
from keras_dhsps.utils.errors import DataError

SMALL = {
    "num_train": 120,
    "num_validation": 20,
    "num_query": 40,
    "num_database": 100,
}


def _sizes(options):
    return {key[len("num_") :]: value for key, value in options.items()}


@pytest.mark.parametrize("name", label_mosaic.DATASETS)
def test_label_rows_are_the_real_rows_they_were_drawn_from(name):
    dataset = load_dataset(f"label-mosaic:{name}", seed=3, **SMALL)
    rows = label_mosaic.source_rows(name, 3, _sizes(SMALL))
    assert dataset.info["truncated"] == dict.fromkeys(rows, 0)
    for split, (source, indices) in rows.items():
        real = peer_labels(name, source)
        np.testing.assert_array_equal(
            dataset.split(split).labels, real[indices]
        )
        assert real[indices].sum(1).min() >= 1  # unlabelled rows not drawn
    # Splits drawn from one peer list never share a row; queries come
    # from the peers' query (test) list.
    assert rows["query"][0] == "test"
    train, validation = rows["train"][1], rows["validation"][1]
    assert not set(train) & set(validation)
    if rows["database"][0] == "train":  # NUS-WIDE-21, COCO: no db list
        assert not set(rows["database"][1]) & (set(train) | set(validation))


def test_unlabelled_rows_are_dropped_and_counted():
    dataset = load_dataset("label-mosaic:mirflickr25k", seed=0, **SMALL)
    expected = sum(
        int((peer_labels("mirflickr25k", split).sum(1) == 0).sum())
        for split in ("train", "test", "database")
    )
    assert expected == 72 + 19 + 328  # counted once by hand from the files
    assert dataset.info["dropped"] == {"unlabelled": expected}


def test_image_cells_show_one_coloured_glyph_per_label():
    dataset = load_dataset("label-mosaic:coco", seed=1, **SMALL)
    query_pool, train_pool = digit_pools(np.random.default_rng(1))

    def patches(pool):
        return {
            np.round(glyph[::2, ::2, None] * colour).astype(np.uint8).tobytes()
            for digit_glyphs in pool
            for glyph in digit_glyphs
            for colour in label_mosaic.PALETTE
        }

    allowed = {"query": patches(query_pool), "train": patches(train_pool)}
    for split in ("query", "train"):
        images = dataset.split(split).images
        labels = dataset.split(split).labels
        assert images.shape[1:] == (32, 32, 3) and images.dtype == np.uint8
        cells = images.reshape(-1, 4, 8, 4, 8, 3).transpose(0, 1, 3, 2, 4, 5)
        cells = cells.reshape(len(images), 16, 8, 8, 3)
        painted = cells.reshape(len(images), 16, -1).max(-1) > 0
        # Glyphs can be blank only if a digit image were all zero: none is.
        np.testing.assert_array_equal(painted.sum(1), labels.sum(1))
        for cell in cells[painted]:
            # Query glyphs come from the query pool, the others from the
            # disjoint train pool.
            assert cell.tobytes() in allowed[split]


def test_rows_beyond_the_grid_keep_sixteen_of_their_labels():
    rng = np.random.default_rng(0)
    _, pool = digit_pools(rng)
    labels = np.zeros((2, 38), np.uint8)
    labels[0, :20] = 1  # 20 labels > 16 cells
    labels[1, [3, 30]] = 1
    images, drawn, truncated = label_mosaic._paint(labels, pool, rng)
    assert truncated == 1
    assert drawn[0].sum() == 16 and set(np.flatnonzero(drawn[0])) <= set(
        range(20)
    )
    np.testing.assert_array_equal(drawn[1], labels[1])
    assert (images[0].reshape(4, 8, 4, 8, 3).max(axis=(1, 3, 4)) > 0).all()


def test_a_function_of_the_seed():
    first = load_dataset("label-mosaic:voc2012", seed=5, **SMALL)
    again = load_dataset("label-mosaic:voc2012", seed=5, **SMALL)
    other = load_dataset("label-mosaic:voc2012", seed=6, **SMALL)
    for split in first.splits:
        np.testing.assert_array_equal(
            first.split(split).images, again.split(split).images
        )
    assert not np.array_equal(
        first.split("train").images, other.split("train").images
    )


def test_registry_and_errors():
    assert {f"label-mosaic:{n}" for n in label_mosaic.DATASETS} <= set(DATASETS)
    with pytest.raises(DataError, match="no --data-root"):
        load_dataset("label-mosaic:voc2012", root="/tmp")
    with pytest.raises(ValueError, match="one of voc2012"):
        label_mosaic.load_label_mosaic("pascal")
    with pytest.raises(ValueError, match="query asks for 5000 rows"):
        label_mosaic.load_label_mosaic("voc2012", num_query=5000)


def test_similarity_statistics_by_hand():
    # One batch of 4 rows: s(0,1) = 1, s(0,2) = s(1,2) = 0, and row 3
    # ({a, b}) against each of the others: 1/sqrt(2) (soft).
    labels = np.array([[1, 0], [1, 0], [0, 1], [1, 1]])
    stats = label_mosaic.similarity_statistics(labels, batch_size=4)
    assert stats["pairs"] == 6
    assert stats["identical"] == pytest.approx(1 / 6)
    assert stats["dissimilar"] == pytest.approx(2 / 6)
    assert stats["soft"] == pytest.approx(3 / 6)
    assert stats["labels_per_image"] == pytest.approx(5 / 4)
    # 1/sqrt(2) = 0.707 falls in [0.6, 0.8).
    assert stats["histogram"]["fractions"] == pytest.approx(
        [2 / 6, 0, 0, 0, 3 / 6, 0, 1 / 6]
    )


@pytest.mark.parametrize("name", label_mosaic.DATASETS)
def test_synthetic_soft_fraction_matches_the_real_matrix(name):
    synthetic = load_dataset(f"label-mosaic:{name}", seed=0)
    ours = label_mosaic.similarity_statistics(synthetic.split("train").labels)
    real = label_mosaic.similarity_statistics(peer_labels(name, "train"))
    # 2,000 rows drawn from the real list: ~62 k in-batch pairs, whose
    # fractions have a sampling sd below 0.01 (the rows are the real ones).
    for key in ("dissimilar", "identical", "soft"):
        assert ours[key] == pytest.approx(real[key], abs=0.03)
    assert ours["labels_per_image"] == pytest.approx(
        real["labels_per_image"], rel=0.05
    )


def test_eighty_classes_get_distinct_digit_and_colour_pairs():
    palette = label_mosaic.PALETTE
    assert len(palette) * 10 >= 80  # COCO's 80 classes fit
    # Colours differ in hue, not only in brightness: a glyph's pixels vary
    # in intensity, so two colours that are multiples of each other would
    # be confusable. Normalised by their largest channel they all differ.
    hues = {tuple(np.round(colour / colour.max(), 3)) for colour in palette}
    assert len(hues) == len(palette)
    pairs = {(c % 10, c // 10) for c in range(80)}
    assert len(pairs) == 80
