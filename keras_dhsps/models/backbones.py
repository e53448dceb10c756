"""Feature extractors that the hash layer sits on.

Each entry of :data:`BACKBONES` builds a ``keras.Model`` named ``backbone``
that takes float RGB images in ``[0, 255]`` and returns a feature vector;
its input normalization is inside it (registered layers, no ``Lambda``), so
an exported hasher is self-contained. Each spec declares its input size and
its preprocessing; pretrained weights come from a local path or
``"imagenet"`` (keras.applications only). The table of backbones:
docs/training.md §2.
"""

import dataclasses
import functools
import os

import keras

from keras_dhsps.models.alexnet import build_alexnet
from keras_dhsps.models.layers import ReverseChannels
from keras_dhsps.models.layers import SubtractMean
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.errors import UnknownNameError

#: keras.applications' "caffe" preprocessing mean, in BGR order.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """How to build a backbone and what it expects.

    Attributes:
        build: ``build(input_shape, weights) -> keras.Model``.
        image_size: the ``(height, width)`` it was designed for.
        description: one line for ``--help`` and the docs.
        preprocessing: what the model does to its ``[0, 255]`` RGB input.
    """

    build: object
    image_size: tuple
    description: str
    preprocessing: str = ""


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


def _application(name, caffe_preprocessing):
    return functools.partial(
        build_application,
        application=name,
        caffe_preprocessing=caffe_preprocessing,
    )


_CAFFE = "RGB->BGR, minus ImageNet mean [103.939, 116.779, 123.68] (BGR)"

BACKBONES = {
    "small_cnn": BackboneSpec(
        build=build_small_cnn,
        image_size=(32, 32),
        description="3-conv CNN for digits-mosaic (no pretrained weights)",
        preprocessing="x / 255",
    ),
    "alexnet": BackboneSpec(
        build=functools.partial(build_alexnet, channel_order="bgr"),
        image_size=(227, 227),
        description="Caffe AlexNet to fc7; weights: bvlc_alexnet.npy path",
        preprocessing="RGB->BGR, minus [104, 117, 123] (BGR; Caffe weights)",
    ),
    "alexnet_authors_rgb": BackboneSpec(
        build=functools.partial(build_alexnet, channel_order="authors_rgb"),
        image_size=(227, 227),
        description="AlexNet fed RGB as in the IDHN authors' code",
        preprocessing="RGB kept, minus [123, 117, 104] (authors' bug)",
    ),
    "vgg16": BackboneSpec(
        build=_application("VGG16", True),
        image_size=(224, 224),
        description="keras.applications VGG16, avg-pooled conv5 (512)",
        preprocessing=_CAFFE,
    ),
    "vgg19": BackboneSpec(
        build=_application("VGG19", True),
        image_size=(224, 224),
        description="keras.applications VGG19, avg-pooled conv5 (512)",
        preprocessing=_CAFFE,
    ),
    "resnet50": BackboneSpec(
        build=_application("ResNet50", True),
        image_size=(224, 224),
        description="keras.applications ResNet50, avg pool (2048)",
        preprocessing=_CAFFE,
    ),
    "efficientnet_b0": BackboneSpec(
        build=_application("EfficientNetB0", False),
        image_size=(224, 224),
        description="keras.applications EfficientNetB0, avg pool (1280)",
        preprocessing="inside the application (rescale + normalize)",
    ),
    "efficientnet_b3": BackboneSpec(
        build=_application("EfficientNetB3", False),
        image_size=(300, 300),
        description="keras.applications EfficientNetB3, avg pool (1536)",
        preprocessing="inside the application (rescale + normalize)",
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
