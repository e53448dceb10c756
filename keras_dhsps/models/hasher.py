"""The hasher: backbone → Dense(K) → tanh (or softsign)."""

import keras

from keras_dhsps.config import ACTIVATIONS
from keras_dhsps.models.backbones import get_backbone_spec

HASH_LAYER_NAME = "hash_layer"


def build_hasher(
    backbone="small_cnn",
    bits=48,
    *,
    activation="tanh",
    image_size=None,
    weights=None,
    name="hasher",
    input_size=None,
    random_crop=False,
    random_flip=False,
    seed=None,
):
    """Builds a functional hashing model.

    The hash layer is a ``Dense(bits)`` named ``hash_layer`` (the layer that
    gets the full learning rate) with a built-in activation, so the model
    reloads with ``safe_mode=True`` and needs no custom objects. Outputs are
    the relaxed codes ``u ∈ (−1, 1)^K``; binary codes are ``u ≥ 0 → +1``.

    Args:
        backbone: a name in ``keras_dhsps.models.backbones.BACKBONES``.
        bits: code length K.
        activation: ``"tanh"`` (default) or ``"softsign"``
            (``z / (1 + |z|)``, the authors' code, docs/method.md §2.4).
        image_size: ``(H, W)``; defaults to the backbone's own size.
        weights: passed to the backbone builder (None or a local path).
        name: the model's name.
        input_size: ``(H', W')`` of the images the model takes, when larger
            than ``image_size``: the model crops them (the centre, or a
            random window in training with ``random_crop``) with
            :class:`keras_dhsps.models.layers.CropImages`. Defaults to
            ``image_size``.
        random_crop: random windows in training (needs a larger
            ``input_size``).
        random_flip: flip half the images left-right in training
            (:class:`keras_dhsps.models.layers.FlipImages`; identity at
            inference).
        seed: seed of the crop and flip layers.

    Returns:
        A ``keras.Model`` mapping float images in ``[0, 255]`` of shape
        ``(B, H, W, 3)`` to codes of shape ``(B, bits)``.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"`activation` must be one of {ACTIVATIONS}. "
            f"Received: activation={activation!r}"
        )
    if int(bits) < 1:
        raise ValueError(f"`bits` must be positive. Received: bits={bits}")
    spec = get_backbone_spec(backbone)
    height, width = image_size or spec.image_size
    features = spec.build(input_shape=(height, width, 3), weights=weights)
    input_height, input_width = input_size or (height, width)
    images = keras.Input((input_height, input_width, 3), name="images")
    pixels = _augment(images, (height, width), random_crop, random_flip, seed)
    codes = keras.layers.Dense(
        int(bits), activation=activation, name=HASH_LAYER_NAME
    )(features(pixels))
    return keras.Model(images, codes, name=name)


def _augment(images, image_size, random_crop, random_flip, seed):
    """The crop and flip layers in front of the backbone (none when the
    input is at the backbone's size and nothing is augmented)."""
    from keras_dhsps.models.layers import CropImages
    from keras_dhsps.models.layers import FlipImages

    if tuple(images.shape[1:3]) != tuple(image_size) or random_crop:
        images = CropImages(
            *image_size, random=random_crop, seed=seed, name="crop"
        )(images)
    if random_flip:
        images = FlipImages(
            seed=None if seed is None else seed + 1, name="random_flip"
        )(images)
    return images


def build_feature_extractor(backbone, *, image_size=None, weights=None):
    """The backbone alone (images in ``[0, 255]`` -> features), e.g. for the
    shallow baselines, which hash fixed features of a pretrained network.

    Args:
        backbone: a name in ``keras_dhsps.models.backbones.BACKBONES``.
        image_size: ``(H, W)``; defaults to the backbone's own size.
        weights: None, ``"imagenet"`` or a local weights path.
    """
    spec = get_backbone_spec(backbone)
    height, width = image_size or spec.image_size
    return spec.build(input_shape=(height, width, 3), weights=weights)
