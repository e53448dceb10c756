"""tf.data input pipelines: images (in memory or files) -> batches.

Decoding, resizing, shuffling, batching and prefetching happen here; pixel
normalization is inside the model (backbones.py), so an exported hasher is
self-contained. Batches are ``(images float32 in [0, 255], labels float32)``.
"""

from __future__ import annotations

import tensorflow as tf

from keras_dhsps.data.base import Split


def _decode(path: tf.Tensor) -> tf.Tensor:
    data = tf.io.read_file(path)
    return tf.io.decode_image(data, channels=3, expand_animations=False)


def make_dataset(
    split: Split,
    *,
    batch_size: int,
    image_size: tuple[int, int],
    training: bool = False,
    seed: int | None = None,
) -> tf.data.Dataset:
    """Builds the batched pipeline of one split.

    Args:
        split: the images and labels.
        batch_size: images per batch.
        image_size: ``(H, W)``; images of another size are resized
            (bilinear, no crop).
        training: shuffle every epoch and drop the last partial batch (as
            the authors' ``shuffle_batch`` does) when there is at least one
            full batch; evaluation keeps order and every image.
        seed: the shuffle seed (training only).

    Returns:
        A ``tf.data.Dataset`` of ``(images, labels)`` batches.
    """
    height, width = image_size
    labels = tf.constant(split.labels, tf.float32)
    if split.images is not None:
        dataset = tf.data.Dataset.from_tensor_slices((split.images, labels))
    else:
        paths = tf.constant(list(split.paths or ()), tf.string)
        dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
    if training:
        dataset = dataset.shuffle(
            len(split), seed=seed, reshuffle_each_iteration=True
        )

    def prepare(image, label):
        if image.dtype == tf.string:
            image = _decode(image)
        image = tf.cast(image, tf.float32)
        if image.shape[0] != height or image.shape[1] != width:
            image = tf.image.resize(image, (height, width))
        image = tf.ensure_shape(image, (height, width, 3))
        return image, label

    dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    drop_remainder = training and len(split) >= batch_size
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)
