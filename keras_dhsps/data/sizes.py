"""The size rules: which ``(H, W)`` a model takes and the image store keeps.

:func:`stored_size` (a model size and a resize mode -> the stored size),
:func:`model_image_size` (a hasher's input) and :func:`stored_image_size`
(an experiment config's stored size) are the only places these are worked
out; the store, the readers, training, evaluation and export ask here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_dhsps.config import RESIZE_MODES
from keras_dhsps.data.decoding import resize_uint8_images
from keras_dhsps.utils.errors import DHSPSError


def _pair(size: Any) -> tuple[int, int]:
    if isinstance(size, int | np.integer):
        return int(size), int(size)
    height, width = size
    return int(height), int(width)


def stored_size(
    image_size: Any, *, resize: str, resize_to: Any = (256, 256)
) -> tuple[int, int]:
    """``(H, W)`` the store keeps for a model of ``image_size``: the
    model's size for ``"direct"``, ``resize_to`` for ``"resize_crop"``,
    the square ``resize_to[0]`` for ``"shorter_side_crop"``.

    Raises:
        DHSPSError: an unknown ``resize`` mode, or a cropping mode whose
            stored size is smaller than ``image_size``.
    """
    height, width = _pair(image_size)
    if resize not in RESIZE_MODES:
        raise DHSPSError(
            f"input.resize={resize!r} is not a resize mode; choose one of "
            f"{', '.join(RESIZE_MODES)}"
        )
    if resize == "direct":
        return height, width
    if resize == "resize_crop":
        size = _pair(resize_to)
    else:
        size = (int(resize_to[0]), int(resize_to[0]))
    if size[0] < height or size[1] < width:
        raise DHSPSError(
            f"input.resize_to={[int(v) for v in resize_to]} is smaller than "
            f"the model's image size {height}x{width}; {resize!r} needs a "
            "stored size at least as large as the crop"
        )
    return size


def model_image_size(model) -> tuple[int, int]:
    """``(H, W)`` of a hasher's image input."""
    _, height, width, _ = model.input_shape
    return int(height), int(width)


def stored_image_size(config) -> tuple[int, int]:
    """``(H, W)`` of the images the hasher of an ``ExperimentConfig``
    takes: :func:`stored_size` of its model size (the backbone's when
    ``model.image_size`` is unset) in its ``input.resize`` mode. The model
    crops them on the device (a random window in training with
    ``input.random_crop``, else the centre)."""
    from keras_dhsps.models.backbones import get_backbone_spec

    spec = get_backbone_spec(config.model.backbone)
    return stored_size(
        config.model.image_size or spec.image_size,
        resize=config.input.resize,
        resize_to=config.input.resize_to,
    )


class ImageGeometry:
    """How a hasher's input is made from images of any size: resized to
    ``stored_size`` by the store's rule, then the centre ``image_size``
    window (the rule every hasher kind shares: Keras, SavedModel, ONNX).

    Attributes:
        image_size, resize, resize_to, stored_size: from the hasher
            metadata (``keras_dhsps.serving.hasher.hasher_metadata``).
    """

    def __init__(self, metadata: dict) -> None:
        self.image_size = tuple(int(v) for v in metadata["image_size"])
        self.resize = metadata.get("resize", "direct")
        self.resize_to = tuple(metadata.get("resize_to", (256, 256)))
        self.stored_size = stored_size(
            self.image_size, resize=self.resize, resize_to=self.resize_to
        )

    def crop_stored(self, images):
        """The centre ``image_size`` window of images at ``stored_size``
        (NumPy arrays or tensors; the offsets are static)."""
        height, width = self.image_size
        top = (self.stored_size[0] - height) // 2
        left = (self.stored_size[1] - width) // 2
        return images[..., top : top + height, left : left + width, :]

    def model_pixels(self, images):
        """uint8 images ``(B, h, w, 3)`` -> uint8 ``(B, H, W, 3)`` at
        ``image_size``."""
        stored = resize_uint8_images(
            np.asarray(images, np.uint8),
            resize=self.resize,
            size=self.stored_size,
        )
        return np.ascontiguousarray(self.crop_stored(stored))
