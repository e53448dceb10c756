"""tf.data input pipelines: images (in memory or files) -> batches.

Stages, in order: read and decode (JPEG, PNG, ...), resize (a named
:data:`RESIZE_MODES` mode), an optional cache of the resized uint8 images
(so epochs after the first decode no JPEG), shuffle (training), crop and
flip (training augmentation, stateless and seeded), batch, prefetch; maps
run in parallel (``num_parallel_calls``, AUTOTUNE by default).

Per-backbone normalization is *not* done here: each backbone declares and
embeds its own (mean subtraction, scaling; ``keras_dhsps.backbones``), so an
exported hasher takes raw pixels and is self-contained. Batches are
``(images, labels float32)``: images are uint8 when cached (they cross to
the device as uint8 and the hasher's float32 input casts them there), else
float32 in [0, 255] (resized without rounding).

This is the only data module that imports TensorFlow.
"""

from __future__ import annotations

import functools

import tensorflow as tf

from keras_dhsps.data.base import Split
from keras_dhsps.data.feed import RESIZE_MODES


def _decode(path: tf.Tensor) -> tf.Tensor:
    data = tf.io.read_file(path)
    return tf.io.decode_image(data, channels=3, expand_animations=False)


def resize_shorter_side(images: tf.Tensor, side: int) -> tf.Tensor:
    """Resizes ``(..., H, W, C)`` images so the shorter side is ``side``,
    keeping the aspect ratio (one image or a batch)."""
    shape = tf.cast(tf.shape(images)[-3:-1], tf.float32)
    scale = side / tf.reduce_min(shape)
    size = tf.cast(tf.math.ceil(shape * scale - 1e-3), tf.int32)
    return tf.image.resize(images, tf.maximum(size, side))


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
    cache: bool | str = False,
    shuffle_buffer: int | None = None,
    num_parallel_calls: int | None = None,
    deterministic: bool | None = None,
    prefetch: bool = True,
) -> tf.data.Dataset:
    """The ``tf.data.Dataset`` of ``(images, labels)`` batches of a split.

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
            ``shorter_side_crop``).
        random_crop, random_flip: training crops a random window instead of
            the centre (cropping modes); flips half the images left-right.
        cache: cache the decoded, resized images as uint8 (``True`` in
            memory, a string is a file prefix): later epochs decode nothing;
            rounding changes resized pixels by at most 0.5.
        shuffle_buffer: shuffle buffer when caching (default: the split).
        num_parallel_calls: parallel map calls (default AUTOTUNE).
        deterministic: ``True`` keeps element order under parallel maps
            (needs a training ``seed``); ``None`` leaves tf.data's default.
        prefetch: end with ``prefetch(AUTOTUNE)``.

    Raises:
        ValueError: an unknown ``resize`` mode, ``random_crop`` with
            ``"direct"``, or ``deterministic`` training without a seed.
    """
    _check(resize, random_crop, deterministic and training, seed)
    crops = resize != "direct"
    augment = training and (random_crop or random_flip)
    calls = num_parallel_calls or tf.data.AUTOTUNE
    dataset = _source(split, deterministic)
    load = functools.partial(
        _load,
        mode=resize,
        image_size=tuple(image_size),
        resize_to=tuple(resize_to),
        as_uint8=cache is not False,
    )
    finish = functools.partial(
        _finish,
        image_size=tuple(image_size),
        crops=crops,
        random_crop=augment and random_crop,
        random_flip=augment and random_flip,
    )
    if cache is not False:
        dataset = dataset.map(load, num_parallel_calls=calls)
        dataset = dataset.cache("" if cache is True else str(cache))
        # Nothing to crop or flip: skip a per-image map stage (about
        # 0.05 ms of CPU per image on every epoch).
        stages = [finish] if crops or augment else []
    else:
        stages = [load, finish]
    if training:
        # Without a cache the paths are shuffled, which is free.
        buffer = shuffle_buffer if cache is not False else None
        dataset = dataset.shuffle(
            buffer or max(len(split), 1),
            seed=seed,
            reshuffle_each_iteration=True,
        )
    if augment:
        dataset = _with_element_seeds(dataset, seed)
    if stages:
        dataset = _map_stages(dataset, stages, finish, calls)
    drop_remainder = training and len(split) >= batch_size
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE) if prefetch else dataset


def _map_stages(dataset, stages, finish, calls):
    """One parallel map running ``stages`` per element (``finish`` also
    gets the element's seed when there is one)."""

    def apply(image, label, *element_seed):
        for stage in stages:
            extra = element_seed if stage is finish else ()
            image, label = stage(image, label, *extra)
        return image, label

    return dataset.map(apply, num_parallel_calls=calls)


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


def _source(split: Split, deterministic) -> tf.data.Dataset:
    """``(image or path, label)`` elements of ``split``."""
    labels = tf.constant(split.labels, tf.float32)
    if split.images is not None:
        dataset = tf.data.Dataset.from_tensor_slices((split.images, labels))
    else:
        paths = tf.constant(list(split.paths or ()), tf.string)
        dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
    if deterministic is not None:
        options = tf.data.Options()
        options.deterministic = bool(deterministic)
        dataset = dataset.with_options(options)
    return dataset


def resize_for_mode(images, mode, image_size, resize_to):
    """The resize of ``mode`` (one image or a batch), before any crop:
    ``"direct"`` straight to ``image_size`` (skipped at that size),
    ``"resize_crop"`` to ``resize_to``, ``"shorter_side_crop"`` the shorter
    side to ``resize_to[0]``. Returns float32. Training, evaluation and the
    exported SavedModel (``keras_dhsps.export``) all resize with it."""
    if mode == "direct":
        images = tf.cast(images, tf.float32)
        if tuple(images.shape[-3:-1]) == tuple(image_size):
            return images
        return tf.image.resize(images, image_size)
    if mode == "resize_crop":
        return tf.image.resize(images, resize_to)
    return resize_shorter_side(images, resize_to[0])


def _load(image, label, *, mode, image_size, resize_to, as_uint8):
    if image.dtype == tf.string:
        image = _decode(image)
    image = resize_for_mode(image, mode, image_size, resize_to)
    if as_uint8:  # cached: rounding changes pixels by at most 0.5
        image = tf.saturate_cast(tf.round(image), tf.uint8)
        if mode == "direct":
            image = tf.ensure_shape(image, (*image_size, 3))
    return image, label


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
    """Crop (random in training, else the centre) and flip; cached images
    stay uint8 through both and on to the device."""
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


def input_options(
    input_config, *, count: int, image_size, training: bool
) -> dict:
    """:func:`make_dataset` keyword arguments from an ``InputConfig``.

    ``image_size`` is the model's input size (the stored size:
    ``resize_to`` for the cropping modes, whose crop and flip happen in the
    model, see ``keras_dhsps.models.build_hasher``).

    ``store="memory"`` caches the resized uint8 images in memory when they
    fit in ``memory_budget_mb`` (``count`` images at the stored size:
    ``image_size`` for ``"direct"``, ``resize_to`` for the cropping modes,
    the longer side counted as 1.5 × ``resize_to[0]`` for
    ``shorter_side_crop``), so later epochs decode nothing; over the budget
    nothing is cached (every epoch decodes). ``deterministic=False`` leaves
    tf.data's default (which keeps the order).
    """
    height, width = (int(v) for v in image_size)
    resize_to = tuple(int(v) for v in input_config.resize_to)
    if input_config.resize == "resize_crop":
        height, width = resize_to
    elif input_config.resize == "shorter_side_crop":
        height, width = resize_to[0], int(1.5 * resize_to[0])
    stored_mb = count * height * width * 3 / 2**20
    cache = (
        input_config.store == "memory"
        and stored_mb <= input_config.memory_budget_mb
    )
    options = dict(
        resize=input_config.resize,
        resize_to=resize_to,
        cache=cache,
        deterministic=True if input_config.deterministic else None,
    )
    if training:
        # Crop and flip are layers of the model (on the device).
        options["shuffle_buffer"] = input_config.shuffle_buffer
    return options


def center_crop(images: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """The centre ``(height, width)`` window of ``(..., H, W, C)`` images."""
    shape = tf.shape(images)
    top = (shape[-3] - height) // 2
    left = (shape[-2] - width) // 2
    return images[..., top : top + height, left : left + width, :]
