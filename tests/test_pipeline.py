"""tf.data pipeline: decode, resize modes, crop/flip, cache, determinism."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from keras_dhsps.data.base import Split
from keras_dhsps.data.pipeline import make_dataset
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
        assert x.dtype == np.float32 and x.shape == (5, 12, 16, 3)
        np.testing.assert_array_equal(x, images.astype(np.float32))
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


def test_file_cache_serves_later_epochs_without_the_images(tmp_path):
    images = _images(6, height=20, width=24)
    split = _png_split(tmp_path, images)
    plain, _ = _collect(
        make_dataset(
            split, batch_size=3, image_size=(10, 12), resize="resize_crop",
            resize_to=(14, 16),
        )
    )  # fmt: skip
    dataset = make_dataset(
        split,
        batch_size=3,
        image_size=(10, 12),
        resize="resize_crop",
        resize_to=(14, 16),
        cache=os.path.join(tmp_path, "cache"),
    )
    first, _ = _collect(dataset)
    for path in split.paths:
        os.remove(path)  # a second epoch that decoded would fail now
    second, _ = _collect(dataset)
    np.testing.assert_array_equal(first, second)
    # The cache holds uint8: within rounding (0.5) of the uncached floats.
    assert np.abs(first - plain).max() <= 0.5 + 1e-4
    assert np.array_equal(first, np.round(first))


def test_memory_cache_training_shuffles_after_cache():
    images = _images(12)
    split = Split(labels=_labels(12), images=images)
    dataset = make_dataset(
        split, batch_size=12, image_size=(12, 16), training=True, seed=0,
        cache=True,
    )  # fmt: skip
    (_, y1), (x2, y2) = _collect(dataset), _collect(dataset)
    assert sorted(np.argmax(y1, 1)) == list(range(12))
    assert not np.array_equal(y1, y2)  # reshuffled from the cache
    order = np.argmax(y2, 1)
    np.testing.assert_array_equal(x2, images[order].astype(np.float32))


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
