"""The tf.data reader: ``(uint8 images, float32 labels)`` batches.

:func:`make_dataset` batches a split's images read from its image store
(:mod:`keras_dhsps.data.store`), or decoded on the fly without one
(``input.store="none"``); training shuffles by a seed, so both sources see
the same order. Crop, flip and normalization run in the model. The only
data module that imports TensorFlow at module level;
:mod:`keras_dhsps.data.readers` chooses it.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from keras_dhsps.config import RESIZE_MODES
from keras_dhsps.data.base import Split
from keras_dhsps.data.decoding import decode_image
from keras_dhsps.data.decoding import resize_images
from keras_dhsps.data.sizes import stored_size
from keras_dhsps.data.store import open_store

__all__ = [
    "RESIZE_MODES",
    "TfDataReader",
    "center_crop",
    "input_options",
    "make_dataset",
    "reader_dataset",
]


def make_dataset(
    split: Split,
    *,
    batch_size: int,
    image_size: tuple[int, int],
    training: bool = False,
    seed: int | None = None,
    resize: str = "direct",
    resize_to: tuple[int, int] = (256, 256),
    random_crop: bool = False,
    random_flip: bool = False,
    shuffle_buffer: int | None = None,
    num_parallel_calls: int | None = None,
    deterministic: bool | None = None,
    prefetch: bool = True,
    store=None,
) -> tf.data.Dataset:
    """The ``tf.data.Dataset`` of ``(uint8 images, float32 labels)``
    batches of a split.

    Args:
        split, batch_size: the images and labels; images per batch.
        image_size: ``(H, W)`` of the batches.
        training: shuffle every epoch, drop the last partial batch (as the
            authors' ``shuffle_batch`` does) when there is at least one full
            batch, and apply ``random_crop``/``random_flip``; evaluation
            keeps order and every image and never augments.
        seed: seed of the shuffle and of the augmentation (training).
        resize, resize_to: one of :data:`RESIZE_MODES`; the size before
            cropping (its first entry the shorter side for
            ``shorter_side_crop``); see
            :func:`keras_dhsps.data.sizes.stored_size`.
        random_crop, random_flip: training crops a random window instead of
            the centre (cropping modes); flips half the images left-right.
        shuffle_buffer: shuffle buffer (default: the split).
        num_parallel_calls: parallel map calls (default AUTOTUNE).
        deterministic: ``True`` keeps element order under parallel maps
            (needs a training ``seed``); ``None`` leaves tf.data's default.
        prefetch: end with ``prefetch(AUTOTUNE)``.
        store: an ``ImageStore`` of ``split`` (:mod:`keras_dhsps.data.store`):
            images are read from it (centre-cropped to ``image_size`` when
            stored larger); crop and flip are then the model's.

    Raises:
        ValueError: an unknown ``resize`` mode, ``random_crop`` with
            ``"direct"``, ``deterministic`` training without a seed, or
            random crop or flip with a ``store``.
    """
    augment = training and (random_crop or random_flip)
    _check(resize, random_crop, deterministic and training, seed)
    _check_store(store, augment)
    count = len(split) if store is None else len(store)
    shuffle = functools.partial(
        _shuffled, training=training, buffer=shuffle_buffer or count, seed=seed
    )
    calls = num_parallel_calls or tf.data.AUTOTUNE
    if store is not None:
        dataset = shuffle(_indices(count, deterministic))
    else:
        size = stored_size(image_size, resize=resize, resize_to=resize_to)
        load = functools.partial(_load, resize=resize, size=size)
        # Paths (or pixels) are shuffled, which is free.
        dataset = shuffle(_source(split, deterministic))
        dataset = dataset.map(load, num_parallel_calls=calls)
        dataset = _augmented(
            dataset, image_size, resize, seed, calls,
            random_crop=training and random_crop,
            random_flip=training and random_flip,
        )  # fmt: skip
    dataset = dataset.batch(
        batch_size, drop_remainder=training and count >= batch_size
    )
    if store is not None:
        dataset = dataset.map(
            functools.partial(_read_batch, store, tuple(image_size))
        )
    return dataset.prefetch(tf.data.AUTOTUNE) if prefetch else dataset


def _shuffled(dataset, *, training, buffer, seed):
    """Training: a seeded reshuffle every epoch (the order depends on the
    seed and the element count, not on what the elements hold)."""
    if not training:
        return dataset
    return dataset.shuffle(
        max(int(buffer), 1), seed=seed, reshuffle_each_iteration=True
    )


def _augmented(dataset, image_size, resize, seed, calls, **augment):
    """The centre crop of the cropping modes (a random one in training
    with ``random_crop``) and the flip, one parallel map (none when there
    is nothing to do: about 0.05 ms of CPU per image and epoch)."""
    crops = resize != "direct"
    finish = functools.partial(
        _finish, image_size=tuple(image_size), crops=crops, **augment
    )
    if any(augment.values()):
        dataset = _with_element_seeds(dataset, seed)
    elif not crops:
        return dataset
    return dataset.map(finish, num_parallel_calls=calls)


def _check(resize, random_crop, deterministic_training, seed):
    if resize not in RESIZE_MODES:
        raise ValueError(
            f"Unknown `resize` mode. Expected one of {RESIZE_MODES}. "
            f"Received: resize={resize!r}"
        )
    if random_crop and resize == "direct":
        raise ValueError(
            "`random_crop` needs a cropping resize mode "
            "('resize_crop' or 'shorter_side_crop'). Received: resize='direct'"
        )
    if deterministic_training and seed is None:
        raise ValueError("deterministic training pipelines need a `seed`")


def _check_store(store, augment):
    if store is not None and augment:
        raise ValueError(
            "random crop and flip of a store-fed pipeline run in the "
            "model (keras_dhsps.models.hasher.build_hasher)"
        )


def _with_options(dataset, deterministic):
    if deterministic is not None:
        options = tf.data.Options()
        options.deterministic = bool(deterministic)
        dataset = dataset.with_options(options)
    return dataset


def _source(split: Split, deterministic) -> tf.data.Dataset:
    """``(image or path, label)`` elements of ``split``."""
    labels = tf.constant(split.labels, tf.float32)
    if split.images is not None:
        dataset = tf.data.Dataset.from_tensor_slices((split.images, labels))
    else:
        paths = tf.constant(list(split.paths or ()), tf.string)
        dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
    return _with_options(dataset, deterministic)


def _indices(count: int, deterministic) -> tf.data.Dataset:
    """``0 .. count - 1``, the elements of a store-fed pipeline."""
    dataset = tf.data.Dataset.from_tensor_slices(
        np.arange(count, dtype=np.int64)
    )
    return _with_options(dataset, deterministic)


def _read_batch(store, image_size, indices):
    """A batch of indices -> ``(uint8 images, float32 labels)`` read from
    ``store`` (centre-cropped to ``image_size`` when stored larger)."""
    labels = tf.constant(np.asarray(store.labels, np.float32))
    images = tf.numpy_function(store.read, [indices], tf.uint8, stateful=False)
    # The batch's static size too (drop_remainder): the step traced on
    # it is the one of an in-memory pipeline, bit for bit.
    images = tf.ensure_shape(images, (indices.shape[0], *store.image_shape))
    if tuple(store.image_shape[:2]) != image_size:
        images = center_crop(images, *image_size)
    return images, tf.gather(labels, indices)


def _load(image, label, *, resize, size):
    """One image (encoded file path or pixels) -> uint8 at the stored
    ``size`` (:func:`keras_dhsps.data.decoding.resize_images`)."""
    if image.dtype == tf.string:
        image = decode_image(tf.io.read_file(image))
    image = resize_images(image, resize=resize, size=size)
    return tf.ensure_shape(image, (*size, 3)), label


def _finish(
    image,
    label,
    element_seed=None,
    *,
    image_size,
    crops,
    random_crop,
    random_flip,
):
    """Crop (random in training, else the centre) and flip, on uint8."""
    height, width = image_size
    if crops:
        if random_crop:
            image = tf.image.stateless_random_crop(
                image, (height, width, 3), seed=element_seed
            )
        else:
            image = center_crop(image, height, width)
    if random_flip:
        image = tf.image.stateless_random_flip_left_right(
            image, seed=tf.reverse(element_seed, [0])
        )
    return tf.ensure_shape(image, (height, width, 3)), label


def _with_element_seeds(dataset, seed):
    """Zips a seeded stream of per-element ``(2,)`` seeds onto
    ``dataset`` (stateless crop and flip)."""
    seeds = tf.data.Dataset.random(
        seed=seed, rerandomize_each_iteration=True
    ).batch(2, drop_remainder=True)
    return tf.data.Dataset.zip((dataset, seeds)).map(
        lambda pair, element_seed: (*pair, element_seed)
    )


def input_options(input_config, *, training: bool) -> dict:
    """:func:`make_dataset` keyword arguments from an ``InputConfig``
    (crop and flip are layers of the model, so none of them)."""
    options = dict(
        resize=input_config.resize,
        resize_to=tuple(int(v) for v in input_config.resize_to),
        deterministic=True if input_config.deterministic else None,
    )
    if training:
        options["shuffle_buffer"] = input_config.shuffle_buffer
    return options


def reader_dataset(
    split: Split,
    *,
    batch_size: int,
    image_size,
    input_config,
    training: bool = False,
    seed: int | None = None,
) -> tf.data.Dataset:
    """The tf.data reader of training and evaluation: batches read from
    the split's image store (``input.store="memory"``: decoded once per
    process, or once per ``store_dir`` beyond the memory budget), or
    decoded on the fly (``input.store="none"``)."""
    store = None
    if input_config.store != "none":
        store = open_store(
            split, image_size=tuple(image_size), input_config=input_config
        )
    return make_dataset(
        split,
        batch_size=batch_size,
        image_size=tuple(image_size),
        training=training,
        seed=seed,
        store=store,
        **input_options(input_config, training=training),
    )


def center_crop(images: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """The centre ``(height, width)`` window of ``(..., H, W, C)`` images."""
    shape = tf.shape(images)
    top = (shape[-3] - height) // 2
    left = (shape[-2] - width) // 2
    return images[..., top : top + height, left : left + width, :]


class TfDataReader:
    """The tf.data reader behind :func:`keras_dhsps.data.readers.open_reader`."""

    def training_batches(
        self, split, *, batch_size, image_size, seed, input_config, start=0
    ):
        """The endless seeded training stream from global step ``start``."""
        # A new dataset object per fit call: a reused one would continue its
        # shuffle seed generator and give a resumed run another order. The
        # skipped batches' indices are drawn; a store-fed reader reads their
        # images too, from memory.
        dataset = reader_dataset(
            split,
            batch_size=batch_size,
            image_size=image_size,
            input_config=input_config,
            training=True,
            seed=seed,
        )
        return dataset.repeat().skip(start)

    def training_labels(self, split, *, step, **options):
        """The labels of batch ``step`` (its images are read too)."""
        for _, labels in self.training_batches(
            split, start=step, **options
        ).take(1):
            return labels.numpy()
        return np.zeros((0, 0))

    def ordered_images(self, split, *, batch_size, image_size, input_config):
        """``(dataset, None)`` of every image of ``split`` in order, for
        ``model.predict``."""
        dataset = reader_dataset(
            split,
            batch_size=batch_size,
            image_size=image_size,
            input_config=input_config,
        )
        return dataset.map(lambda images, labels: images), None
