"""tf.data pipeline: decode, resize modes, crop/flip, determinism, and the
store-fed reader."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_dhsps.data.base import Split
from keras_dhsps.data.tfdata_reader import make_dataset
from tests import dataset_trees as fixtures


def _images(count=6, height=12, width=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, height, width, 3), dtype=np.uint8)


def _labels(count):
    return (np.arange(count)[:, None] == np.arange(count)[None]).astype(
        np.uint8
    )  # row i is one-hot i: the label tells which image a row came from


def _png_split(tmp_path, images):
    paths = []
    for index, image in enumerate(images):
        path = os.path.join(tmp_path, f"{index}.png")  # lossless
        Image.fromarray(image).save(path)
        paths.append(path)
    return Split(labels=_labels(len(images)), paths=tuple(paths))


def _collect(dataset):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in dataset], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def test_default_keeps_pixels_order_and_every_image(tmp_path):
    images = _images(5)
    for split in (
        Split(labels=_labels(5), images=images),
        _png_split(tmp_path, images),
    ):
        x, y = _collect(make_dataset(split, batch_size=2, image_size=(12, 16)))
        assert x.dtype == np.uint8 and x.shape == (5, 12, 16, 3)
        np.testing.assert_array_equal(x, images)
        np.testing.assert_array_equal(y, _labels(5))


def test_jpeg_decode_matches_pil(tmp_path):
    path = os.path.join(tmp_path, "a.jpg")
    fixtures.write_jpeg(path, size=(50, 40), seed=3)
    split = Split(labels=np.ones((1, 1), np.uint8), paths=(path,))
    x, _ = _collect(make_dataset(split, batch_size=1, image_size=(40, 50)))
    reference = np.asarray(Image.open(path).convert("RGB"), np.float32)
    # Both use libjpeg(-turbo); IDCT variants differ by a level or two.
    assert np.abs(x[0] - reference).mean() < 2.0


def test_direct_resize_of_constant_image_and_shape(tmp_path):
    images = np.full((2, 30, 40, 3), 77, np.uint8)
    split = Split(labels=_labels(2), images=images)
    x, _ = _collect(make_dataset(split, batch_size=2, image_size=(20, 20)))
    assert x.shape == (2, 20, 20, 3)
    np.testing.assert_allclose(x, 77.0, atol=1e-4)


def test_resize_crop_centre_crop_equals_numpy_slice():
    # resize_to = the image size makes the resize an identity (bilinear
    # with half-pixel centres), so the output is exactly the centre crop:
    # rows (12 - 8) // 2 = 2 .. 10, columns (16 - 10) // 2 = 3 .. 13.
    images = _images(4)
    split = Split(labels=_labels(4), images=images)
    x, _ = _collect(
        make_dataset(
            split,
            batch_size=4,
            image_size=(8, 10),
            resize="resize_crop",
            resize_to=(12, 16),
        )
    )
    np.testing.assert_array_equal(x, images[:, 2:10, 3:13].astype(np.float32))


def test_shorter_side_crop_keeps_aspect_ratio():
    # 30×60 (H×W), shorter side -> 15: a 15×30 image of two halves; the
    # centre 10×10 crop spans columns 10..20 of 30, i.e. both halves.
    image = np.zeros((1, 30, 60, 3), np.uint8)
    image[:, :, 30:] = 200
    split = Split(labels=_labels(1), images=image)
    x, _ = _collect(
        make_dataset(
            split,
            batch_size=1,
            image_size=(10, 10),
            resize="shorter_side_crop",
            resize_to=(15, 15),
        )
    )
    assert x.shape == (1, 10, 10, 3)
    np.testing.assert_allclose(x[0, :, :4], 0.0, atol=1e-3)
    np.testing.assert_allclose(x[0, :, 6:], 200.0, atol=1e-3)


def test_random_crop_and_flip_give_windows_of_the_image():
    images = _images(8)
    split = Split(labels=_labels(8), images=images)
    dataset = make_dataset(
        split,
        batch_size=8,
        image_size=(8, 10),
        training=True,
        seed=5,
        resize="resize_crop",
        resize_to=(12, 16),
        random_crop=True,
        random_flip=True,
    )
    offsets, flips = set(), set()
    for _ in range(3):
        x, y = _collect(dataset)
        for crop, label in zip(x, y, strict=True):
            source = images[int(np.argmax(label))].astype(np.float32)
            matches = [
                (top, left, flipped)
                for top in range(5)
                for left in range(7)
                for flipped in (False, True)
                if np.array_equal(
                    crop[:, ::-1] if flipped else crop,
                    source[top : top + 8, left : left + 10],
                )
            ]
            assert matches, "output is not a (flipped) window of its image"
            offsets.add(matches[0][:2])
            flips.add(matches[0][2])
    # 24 crops from 35 possible windows: more than one, and both flips.
    assert len(offsets) > 1 and flips == {False, True}


def test_deterministic_mode_repeats_exactly_across_runs():
    images = _images(10)
    split = Split(labels=_labels(10), images=images)

    def run(seed):
        dataset = make_dataset(
            split,
            batch_size=4,
            image_size=(8, 10),
            training=True,
            seed=seed,
            resize="resize_crop",
            resize_to=(12, 16),
            random_crop=True,
            random_flip=True,
            deterministic=True,
            num_parallel_calls=4,
        )
        return [_collect(dataset) for _ in range(2)]  # two epochs

    first, again, other = run(1), run(1), run(2)
    for (x1, y1), (x2, y2) in zip(first, again, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    # Training drops the partial batch: 2 batches of 4 per epoch.
    assert first[0][0].shape == (8, 8, 10, 3)
    # Epochs reshuffle, and another seed gives another stream.
    assert not np.array_equal(first[0][1], first[1][1])
    assert not np.array_equal(first[0][0], other[0][0])


def test_file_store_serves_later_epochs_without_the_images(tmp_path):
    from keras_dhsps.config import InputConfig
    from keras_dhsps.data.store import open_store

    images = _images(6, height=20, width=24)
    split = _png_split(tmp_path, images)
    options = dict(
        batch_size=3, image_size=(14, 16), resize="resize_crop",
        resize_to=(14, 16),
    )  # fmt: skip
    plain, _ = _collect(make_dataset(split, **options))
    config = InputConfig(
        resize="resize_crop", resize_to=(14, 16), memory_budget_mb=0,
        store_dir=str(tmp_path / "stores"),
    )  # fmt: skip
    store = open_store(split, image_size=(14, 16), input_config=config)
    assert store.path is not None  # over the budget: a memory-mapped file
    dataset = make_dataset(split, store=store, **options)
    for path in split.paths:
        os.remove(path)  # an epoch that decoded would fail now
    first, _ = _collect(dataset)
    second, _ = _collect(dataset)
    # Decoded on the fly or read from the store: one resize, same pixels.
    np.testing.assert_array_equal(first, plain)
    np.testing.assert_array_equal(second, plain)


def test_store_fed_training_reshuffles_every_epoch():
    from keras_dhsps.config import InputConfig
    from keras_dhsps.data.store import open_store

    images = _images(12)
    split = Split(labels=_labels(12), images=images)
    store = open_store(split, image_size=(12, 16), input_config=InputConfig())
    dataset = make_dataset(
        split, batch_size=12, image_size=(12, 16), training=True, seed=0,
        store=store,
    )  # fmt: skip
    (_, y1), (x2, y2) = _collect(dataset), _collect(dataset)
    assert sorted(np.argmax(y1, 1)) == list(range(12))
    assert not np.array_equal(y1, y2)  # reshuffled
    order = np.argmax(y2, 1)
    np.testing.assert_array_equal(x2, images[order])


def test_bad_options_raise():
    split = Split(labels=_labels(2), images=_images(2))
    with pytest.raises(ValueError, match="Unknown `resize` mode"):
        make_dataset(split, batch_size=1, image_size=(8, 8), resize="crop")
    with pytest.raises(ValueError, match="`random_crop` needs"):
        make_dataset(split, batch_size=1, image_size=(8, 8), random_crop=True)
    with pytest.raises(ValueError, match="need a `seed`"):
        make_dataset(
            split, batch_size=1, image_size=(8, 8), training=True,
            deterministic=True,
        )  # fmt: skip


def test_store_fed_training_is_the_in_memory_stream_bit_for_bit():
    from keras_dhsps.config import InputConfig
    from keras_dhsps.data.store import open_store

    # The store-fed reader shuffles indices, the decoding one (image,
    # label) elements: one seed gives one order (a shuffle's order does not
    # depend on what the elements hold), so digits-mosaic results did not
    # move when images came from the store (its trained weights were
    # compared with the cached tf.data pipeline's: identical).
    images = _images(10)
    split = Split(labels=_labels(10), images=images)
    store = open_store(split, image_size=(12, 16), input_config=InputConfig())
    assert store.images is images  # in memory at the stored size: no copy
    options = dict(batch_size=4, image_size=(12, 16), training=True, seed=7)
    plain = make_dataset(split, **options)
    fed = make_dataset(split, store=store, **options)
    for _ in range(3):  # epochs reshuffle alike
        (x1, y1), (x2, y2) = _collect(plain), _collect(fed)
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
        assert x2.shape == (8, 12, 16, 3) and x2.dtype == np.uint8
    # Batches keep their static size (the traced step is the same).
    assert fed.element_spec[0].shape.as_list() == [4, 12, 16, 3]


def test_store_fed_evaluation_centre_crops_a_larger_store():
    from keras_dhsps.config import InputConfig
    from keras_dhsps.data.tfdata_reader import reader_dataset

    images = _images(3, height=12, width=16)
    split = Split(labels=_labels(3), images=images)
    config = InputConfig(resize="resize_crop", resize_to=(12, 16))
    x, y = _collect(
        reader_dataset(
            split, batch_size=2, image_size=(8, 10), input_config=config
        )
    )
    # Rows (12 - 8) // 2 = 2 .. 10, columns (16 - 10) // 2 = 3 .. 13.
    np.testing.assert_array_equal(x, images[:, 2:10, 3:13])
    np.testing.assert_array_equal(y, _labels(3))


def test_reader_decodes_files_once_with_a_store_every_epoch_without(
    tmp_path, decodes
):
    from keras_dhsps.config import InputConfig
    from keras_dhsps.data import decoding
    from keras_dhsps.data import store as store_module
    from keras_dhsps.data.tfdata_reader import reader_dataset

    images = _images(4, height=20, width=24)
    split = _png_split(tmp_path, images)
    store_module.clear_memory_cache()
    options = dict(batch_size=2, image_size=(10, 12), training=True, seed=1)
    config = InputConfig(store_dir=str(tmp_path / "stores"))
    first = reader_dataset(split, input_config=config, **options)
    epochs = [_collect(first) for _ in range(2)]
    again = _collect(reader_dataset(split, input_config=config, **options))
    assert decodes == [4]  # two epochs, two datasets: one decode
    np.testing.assert_array_equal(epochs[0][0], again[0])
    # The stored pixels: the store's own resize of the same images.
    _, y = epochs[0]
    order = np.argmax(y, 1)
    reference = decoding.resize_images(
        images[order], resize="direct", size=(10, 12)
    ).numpy()
    np.testing.assert_array_equal(epochs[0][0], reference)
    # store="none" decodes on the fly, in the pipeline, every epoch.
    none = dataclasses.replace(config, store="none")
    plain = reader_dataset(split, input_config=none, **options)
    x, _ = _collect(plain)
    assert decodes == [4]
    for path in split.paths:
        os.remove(path)
    with pytest.raises(tf.errors.NotFoundError):
        _collect(plain)
    np.testing.assert_array_equal(x, epochs[0][0])  # one seed, one order
