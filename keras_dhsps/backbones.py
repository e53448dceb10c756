"""Feature extractors that the hash layer sits on.

Each entry of :data:`BACKBONES` builds a ``keras.Model`` named ``backbone``
that takes float images in ``[0, 255]`` (``(H, W, 3)``) and returns a feature
vector; input normalization lives inside it, so an exported hasher is
self-contained. Pretrained weights come from a local path or, on a user's
machine, ``weights="imagenet"``; tests never download.
"""

import dataclasses

import keras

from keras_dhsps.errors import UnknownNameError


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """How to build a backbone and what it expects.

    Attributes:
        build: ``build(input_shape, weights) -> keras.Model``.
        image_size: the ``(height, width)`` it was designed for.
        description: one line for ``--help`` and the README.
    """

    build: object
    image_size: tuple
    description: str


def build_small_cnn(input_shape=(32, 32, 3), weights=None):
    """A three-convolution CNN for the embedded digits-mosaic dataset.

    Rescales to [0, 1], then three 3×3 convolutions (32, 64, 128 filters),
    each with batch normalization, ReLU and 2×2 max pooling, global average
    pooling and a 256-unit ReLU layer: about 0.13 M parameters and 10 M
    multiply-adds per 32×32 image, so a training run takes seconds on a CPU.

    Args:
        input_shape: ``(H, W, 3)``.
        weights: ``None`` or a path to a ``.weights.h5`` file.
    """
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    for block, filters in enumerate((32, 64, 128), start=1):
        x = keras.layers.Conv2D(
            filters, 3, padding="same", use_bias=False, name=f"conv{block}"
        )(x)
        x = keras.layers.BatchNormalization(name=f"bn{block}")(x)
        x = keras.layers.Activation("relu", name=f"relu{block}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{block}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    x = keras.layers.Dense(256, activation="relu", name="fc")(x)
    model = keras.Model(inputs, x, name="backbone")
    if weights is not None:
        model.load_weights(weights)
    return model


BACKBONES = {
    "small_cnn": BackboneSpec(
        build=build_small_cnn,
        image_size=(32, 32),
        description="3-conv CNN for digits-mosaic (no pretrained weights)",
    ),
}


def get_backbone_spec(name):
    """The :class:`BackboneSpec` registered under ``name``.

    Raises:
        UnknownNameError: no such backbone.
    """
    if name not in BACKBONES:
        raise UnknownNameError(
            f"unknown backbone {name!r}; known backbones: "
            f"{', '.join(sorted(BACKBONES))}"
        )
    return BACKBONES[name]
