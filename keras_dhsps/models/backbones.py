"""Feature extractors that the hash layer sits on.

Each entry of :data:`BACKBONES` builds a ``keras.Model`` named ``backbone``
that takes float RGB images in ``[0, 255]`` and returns a feature vector;
its input normalization is inside it (registered layers, no ``Lambda``), so
an exported hasher is self-contained. Each spec declares its input size and
its preprocessing; pretrained weights come from a local path or
``"imagenet"`` (keras.applications only). The table of backbones:
docs/training.md §2.
"""

import os

import keras

from keras_dhsps.config.registry import BACKBONES
from keras_dhsps.models.layers import ReverseChannels
from keras_dhsps.models.layers import SubtractMean
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.errors import UnknownNameError

#: keras.applications' "caffe" preprocessing mean, in BGR order.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


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


def _resolve_application_weights(weights):
    """``"imagenet"``, None or an existing local file path."""
    if weights is None or weights == "imagenet":
        return weights
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise DHSPSError(
            f"backbone weights must be None, 'imagenet' or an existing file; "
            f"got: {path}"
        )
    return path


def build_application(
    input_shape=(224, 224, 3),
    weights=None,
    *,
    application="ResNet50",
    caffe_preprocessing=True,
):
    """A keras.applications network without its classifier, average-pooled.

    Args:
        input_shape: ``(H, W, 3)``.
        weights: None, ``"imagenet"`` (downloaded by Keras into
            ``~/.keras/models`` on first use) or a local path to the
            application's *no-top* weights file.
        application: the ``keras.applications`` constructor's name.
        caffe_preprocessing: prepend RGB→BGR and ImageNet-mean subtraction
            (what ``keras.applications.{vgg16,vgg19,resnet50}.
            preprocess_input`` do); EfficientNet normalizes internally.

    Returns:
        A ``keras.Model`` named ``backbone``.

    Raises:
        DHSPSError: a weights path that does not exist.
    """
    weights = _resolve_application_weights(weights)
    network = getattr(keras.applications, application)(
        include_top=False,
        weights=weights,
        input_shape=tuple(input_shape),
        pooling="avg",
    )
    inputs = keras.Input(tuple(input_shape), name="image")
    x = inputs
    if caffe_preprocessing:
        x = ReverseChannels(name="rgb_to_bgr")(x)
        x = SubtractMean(CAFFE_MEAN_BGR, name="subtract_mean")(x)
    return keras.Model(inputs, network(x), name="backbone")


def get_backbone_spec(name):
    """The :class:`keras_dhsps.config.registry.BackboneSpec` registered under
    ``name``.

    Raises:
        UnknownNameError: no such backbone.
    """
    if name not in BACKBONES:
        raise UnknownNameError(
            f"unknown backbone {name!r}; known backbones: "
            f"{', '.join(sorted(BACKBONES))}"
        )
    return BACKBONES[name]
