"""What a shipped hasher is: its metadata, and one interface to it.

:class:`LoadedHasher` puts a ``.keras`` model and an exported SavedModel
behind one interface (raw uint8 images in, codes out), used by ``dhsps
encode`` and ``dhsps search``; :func:`keras_dhsps.serving.load.load_hasher`
opens one. Images reach the model as the image store brings them
(:mod:`keras_dhsps.data.store`): resized to the stored size of the resize
mode by NumPy (TensorFlow's pixels), centre-cropped, cast to float32, so a
Keras hasher encodes under any backend without TensorFlow.
"""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np

from keras_dhsps.data.sizes import ImageGeometry
from keras_dhsps.models.hasher import HASH_LAYER_NAME
from keras_dhsps.utils.errors import DHSPSError

METADATA_FORMAT = "keras_dhsps.hasher"
#: Where an exported SavedModel holds its metadata (TF Serving's folder
#: for extra files), readable without TensorFlow.
METADATA_PATH = os.path.join("assets.extra", "dhsps_metadata.json")
#: The error of a SavedModel export or load on a machine without TensorFlow.
TENSORFLOW_MISSING = (
    "SavedModel export and loading need TensorFlow, which is not installed "
    "(pip install tensorflow); .keras hashers train, evaluate and encode "
    "without it"
)


def import_tensorflow():
    """TensorFlow, which SavedModels need to be written or read.

    Raises:
        DHSPSError: :data:`TENSORFLOW_MISSING` (a JAX or PyTorch machine).
    """
    try:
        import tensorflow as tf
    except ImportError:
        raise DHSPSError(TENSORFLOW_MISSING) from None
    return tf


def hasher_metadata(
    model: keras.Model,
    config: dict | None = None,
    *,
    resize: str = "direct",
    resize_to: tuple[int, int] = (256, 256),
) -> dict:
    """The metadata stored with an exported hasher or a code database.

    Args:
        model: a hasher from ``build_hasher``.
        config: the experiment config as a dict (a run's ``config.json``),
            or None. ``backbone`` is taken from ``config["model"]``.

    Returns:
        A JSON-ready dict: ``format``, ``bits``, ``backbone`` (None when
        unknown), ``activation``, ``image_size`` ``[H, W]``, ``config``,
        ``keras_version``, ``model_name``.
    """
    _, height, width, _ = model.input_shape
    activation = None
    try:
        layer = model.get_layer(HASH_LAYER_NAME)
        activation = getattr(layer.activation, "__name__", None)
    except ValueError:
        pass
    backbone = None
    if config is not None:
        backbone = (config.get("model") or {}).get("backbone")
    return {
        "format": METADATA_FORMAT,
        "bits": int(model.output_shape[-1]),
        "backbone": backbone,
        "activation": activation,
        "image_size": [int(height), int(width)],
        "resize": resize,
        "resize_to": [int(v) for v in resize_to],
        "config": config,
        "keras_version": keras.__version__,
        "model_name": model.name,
    }


class LoadedHasher(ImageGeometry):
    """A hasher from a ``.keras`` file, a run directory or a SavedModel.

    Attributes:
        bits: code length ``K``.
        image_size: the model's ``(H, W)``.
        stored_size: the size images are resized to before the centre
            crop to ``image_size`` (:class:`~keras_dhsps.data.sizes.
            ImageGeometry`, shared with every hasher kind).
        metadata: :func:`hasher_metadata`'s dict.
        source: the path it was loaded from.
        kind: ``"keras"`` or ``"saved_model"``.
        model: the ``keras.Model`` (``kind == "keras"``) or None.

    Raises:
        DHSPSError: an unknown resize mode in ``metadata``, or a stored
            size smaller than ``image_size``.
    """

    def __init__(
        self,
        *,
        source: str,
        metadata: dict,
        model: keras.Model | None = None,
        saved_model: Any = None,
    ) -> None:
        self.source = source
        self.metadata = metadata
        self.model = model
        self._saved_model = saved_model
        self.kind = "keras" if model is not None else "saved_model"
        self.bits = int(metadata["bits"])
        super().__init__(metadata)

    def preprocess(self, images) -> np.ndarray:
        """uint8 images ``(B, h, w, 3)`` -> the model's float32 input."""
        return np.asarray(self.model_pixels(images), np.float32)

    def codes_from_preprocessed(self, images) -> np.ndarray:
        """Relaxed codes of float32 images already at ``image_size``."""
        if self.model is not None:
            codes = self.model(np.asarray(images, np.float32), training=False)
            return np.asarray(keras.ops.convert_to_numpy(codes), np.float32)
        tf = import_tensorflow()
        codes = self._saved_model.hasher(
            tf.convert_to_tensor(images, tf.float32)
        )
        return np.asarray(codes, dtype=np.float32)

    def codes(self, images) -> np.ndarray:
        """Relaxed codes ``(B, K)`` of uint8 images ``(B, h, w, 3)``."""
        return self.codes_from_preprocessed(self.preprocess(images))

    def __repr__(self) -> str:
        return (
            f"LoadedHasher(kind={self.kind!r}, bits={self.bits}, "
            f"source={self.source!r})"
        )
