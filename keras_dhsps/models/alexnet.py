"""Caffe's AlexNet (``bvlc_alexnet``) as a Keras functional model.

The network the IDHN authors fine-tune (docs/method.md §3), as Kratzert's
TensorFlow port builds it, with the weights of ``bvlc_alexnet.npy`` (a
pickled dict of layer name -> ``[W, b]`` in TensorFlow layouts, read by a
restricted unpickler). Input: float RGB in ``[0, 255]``, 227×227; the channel
order and mean subtraction are inside the model (``channel_order="bgr"`` as
the Caffe weights expect, ``"authors_rgb"`` as the authors fed them).
Details: docs/training.md §2.
"""

import os
import pickle

import keras
import numpy as np

from keras_dhsps.models.layers import GroupedConv2D
from keras_dhsps.models.layers import LocalResponseNormalization
from keras_dhsps.models.layers import ReverseChannels
from keras_dhsps.models.layers import SubtractMean
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import require_file

#: ImageNet mean pixel of the Caffe models, per colour.
IMAGENET_MEAN_RGB = (123.0, 117.0, 104.0)
CHANNEL_ORDERS = ("bgr", "authors_rgb")
#: Layers of ``bvlc_alexnet.npy`` that the backbone holds (fc8, the
#: 1000-class classifier, is replaced by the hash layer).
ALEXNET_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")


def build_alexnet(
    input_shape=(227, 227, 3),
    weights=None,
    *,
    channel_order="bgr",
    dropout=0.5,
    name="backbone",
):
    """Builds AlexNet up to fc7 (4096 ReLU features, dropout at training).

    conv1 11×11/4 96 VALID → max-pool 3/2 → LRN → conv2 5×5 256 groups=2 SAME
    → max-pool 3/2 → LRN → conv3 3×3 384 → conv4 3×3 384 groups=2 → conv5
    3×3 256 groups=2 → max-pool 3/2 → flatten (9216) → fc6 4096 → dropout →
    fc7 4096 → dropout; ReLU after every conv and fc. 56,868,224 parameters.

    Args:
        input_shape: ``(H, W, 3)``; fc6 needs 227×227 (a 6×6×256 pool5).
        weights: None (random init), a path to ``bvlc_alexnet.npy`` or a
            path to a Keras ``.weights.h5`` file of this model.
        channel_order: ``"bgr"`` (correct for the Caffe weights) or
            ``"authors_rgb"`` (the authors' RGB input); see the module doc.
        dropout: drop rate after fc6 and fc7 (authors: 0.5).
        name: the model's name.

    Returns:
        A ``keras.Model`` from ``(B, H, W, 3)`` float images in ``[0, 255]``
        to ``(B, 4096)`` features.

    Raises:
        ValueError: unknown ``channel_order``.
        DHSPSError: the weights file is missing or does not fit.
    """
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(
            f"`channel_order` must be one of {CHANNEL_ORDERS}. "
            f"Received: channel_order={channel_order!r}"
        )
    inputs = keras.Input(input_shape, name="image")
    # The stack stays here whole, one line per layer, so that it reads
    # like the prototxt it mirrors.
    x = _preprocess(inputs, channel_order)
    x = _conv(x, 96, 11, "conv1", strides=4, padding="valid")
    x = _lrn(_pool(x, "pool1"), "norm1")
    x = _conv(x, 256, 5, "conv2", groups=2)
    x = _lrn(_pool(x, "pool2"), "norm2")
    x = _conv(x, 384, 3, "conv3")
    x = _conv(x, 384, 3, "conv4", groups=2)
    x = _conv(x, 256, 3, "conv5", groups=2)
    x = _pool(x, "pool5")
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(4096, activation="relu", name="fc6")(x)
    x = keras.layers.Dropout(dropout, name="dropout6")(x)
    x = keras.layers.Dense(4096, activation="relu", name="fc7")(x)
    x = keras.layers.Dropout(dropout, name="dropout7")(x)
    model = keras.Model(inputs, x, name=name)
    if weights is not None:
        _load_weights(model, os.fspath(weights))
    return model


def _preprocess(x, channel_order):
    """Caffe's input transform: RGB → BGR if asked, minus the mean pixel."""
    if channel_order == "bgr":
        x = ReverseChannels(name="rgb_to_bgr")(x)
        mean = IMAGENET_MEAN_RGB[::-1]
    else:
        mean = IMAGENET_MEAN_RGB
    return SubtractMean(mean, name="subtract_mean")(x)


def _conv(x, filters, size, name, strides=1, padding="same", groups=1):
    """A (grouped) convolution followed by ReLU, as each AlexNet conv."""
    return GroupedConv2D(
        filters,
        size,
        strides=strides,
        padding=padding,
        groups=groups,
        activation="relu",
        name=name,
    )(x)


def _pool(x, name):
    """AlexNet's overlapping max-pool: 3×3 windows, stride 2, VALID."""
    return keras.layers.MaxPooling2D(3, 2, padding="valid", name=name)(x)


def _lrn(x, name):
    """Caffe's LRN as Kratzert sets it: radius 2, α 2e-5, β 0.75, bias 1."""
    return LocalResponseNormalization(2, 2e-5, 0.75, 1.0, name=name)(x)


def _load_weights(model, weights):
    """Loads a ``bvlc_alexnet.npy`` or a Keras ``.weights.h5`` file."""
    if weights.endswith(".npy"):
        load_bvlc_alexnet_weights(model, weights)
    elif os.path.isfile(weights):
        model.load_weights(weights)
    else:
        raise DHSPSError(
            "AlexNet weights must be a local bvlc_alexnet.npy or "
            f".weights.h5 file (there is no download); got: {weights}"
        )


#: The only globals a ``bvlc_alexnet.npy`` pickle may name: numpy's array,
#: dtype and scalar reconstruction (both module spellings) and the codec
#: Python 3 uses for ``bytes`` under pickle protocol 2.
_PICKLE_GLOBALS = frozenset(
    (module, name)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
) | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles containers and numpy arrays only; anything else (a
    ``__reduce__`` naming ``os.system``, a class) is refused."""

    def find_class(self, module, name):
        if (module, name) in _PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load global {module}.{name}")


def _load_npy_pickle(path):
    """``np.load(path, allow_pickle=True)`` without arbitrary code: object
    arrays are unpickled by :class:`_ArrayUnpickler`."""
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            _, _, dtype = np.lib.format.read_array_header_1_0(handle)
        else:
            _, _, dtype = np.lib.format.read_array_header_2_0(handle)
        if not dtype.hasobject:
            return np.load(path, allow_pickle=False)
        return _ArrayUnpickler(handle, encoding="bytes").load()


def read_bvlc_alexnet(path):
    """Reads a ``bvlc_alexnet.npy`` file into ``{layer: (W, b)}``.

    The file is a pickled Python dict. It is unpickled by a restricted
    unpickler that admits only containers and numpy arrays, so a file that
    would run code when loaded is refused instead.

    Raises:
        DHSPSError: missing file, a pickle naming anything but numpy
            arrays, or not a dict of ``[W, b]`` pairs.
    """
    require_file(path, "AlexNet weight file")
    try:
        data = _load_npy_pickle(path)
        if isinstance(data, np.ndarray):
            data = data.item() if data.shape == () else None
    except pickle.UnpicklingError as error:
        raise DHSPSError(
            f"{path}: not a plain dict of arrays ({error}); refused"
        ) from None
    except (OSError, ValueError, EOFError, TypeError) as error:
        raise DHSPSError(f"cannot read {path}: {error}") from None
    if not isinstance(data, dict):
        raise DHSPSError(
            f"{path}: expected a pickled dict of layer name -> [W, b]"
        )
    layers = {}
    for key, value in data.items():
        name = key.decode("ascii") if isinstance(key, bytes) else str(key)
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise DHSPSError(f"{path}: layer {name!r} is not a [W, b] pair")
        layers[name] = (np.asarray(value[0]), np.asarray(value[1]))
    return layers


def load_bvlc_alexnet_weights(model, path, layers=ALEXNET_LAYERS):
    """Loads ``bvlc_alexnet.npy`` into the layers of ``model`` with the same
    names (conv1–fc7 by default; the file's fc8 is not used).

    Args:
        model: a model from :func:`build_alexnet` (or one holding it).
        path: the ``.npy`` file.
        layers: which layer names to load.

    Raises:
        DHSPSError: the file lacks a layer, or a shape does not match.
    """
    arrays = read_bvlc_alexnet(path)
    for name in layers:
        if name not in arrays:
            raise DHSPSError(f"{path}: no layer {name!r} in the weight file")
        layer = model.get_layer(name)
        kernel, bias = arrays[name]
        expected = [tuple(v.shape) for v in layer.weights]
        if [kernel.shape, bias.shape] != expected:
            raise DHSPSError(
                f"{path}: layer {name!r} has shapes "
                f"{[kernel.shape, bias.shape]}, the model expects {expected}"
            )
        layer.set_weights([kernel, bias])
