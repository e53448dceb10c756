"""Exported hasher files: the formats ``dhsps export`` writes, and an ONNX
hasher run by ONNX Runtime (no TensorFlow, no Keras).

:data:`EXPORT_FORMATS` names the formats; :func:`load_onnx_hasher` opens
an ONNX file; :class:`OnnxHasher` has the
interface of :class:`keras_dhsps.serving.hasher.LoadedHasher` (uint8 images
of any size in, relaxed codes out): images are resized to the stored size
of the hasher's resize mode and centre-cropped in NumPy, then fed as uint8.
"""

from __future__ import annotations

import json

import numpy as np

from keras_dhsps.data.sizes import ImageGeometry
from keras_dhsps.utils.errors import DHSPSError

#: ``dhsps export --format``: each format and the file extension it needs
#: (a SavedModel is a directory).
EXPORT_FORMATS = {"savedmodel": None, "onnx": ".onnx", "litert": ".tflite"}
#: The ``metadata_props`` key that holds the hasher metadata (JSON).
METADATA_KEY = "keras_dhsps.hasher"
ONNX_MISSING = (
    "ONNX hashers need onnxruntime, which is not installed "
    "(pip install 'keras_dhsps[onnx]')"
)


class OnnxHasher(ImageGeometry):
    """An exported ONNX hasher in an ONNX Runtime session.

    Attributes:
        bits, image_size, stored_size, resize, resize_to, metadata,
        source: as in ``LoadedHasher``.
        kind: ``"onnx"``.
        model: None (there is no ``keras.Model``).
        session: the ``onnxruntime.InferenceSession``.
    """

    kind = "onnx"
    model = None

    def __init__(self, *, source: str, metadata: dict, session) -> None:
        self.source = source
        self.metadata = metadata
        self.session = session
        self.bits = int(metadata["bits"])
        super().__init__(metadata)
        self._input = session.get_inputs()[0].name

    def preprocess(self, images) -> np.ndarray:
        """uint8 images ``(B, h, w, 3)`` -> uint8 ``(B, H, W, 3)``, the
        model's input (the store's resize, then the centre crop)."""
        return self.model_pixels(images)

    def codes_from_preprocessed(self, images) -> np.ndarray:
        """Relaxed codes of images already at ``image_size`` (uint8, or
        float32 holding whole values in ``[0, 255]``, as the encoders
        give)."""
        pixels = np.clip(np.rint(np.asarray(images)), 0, 255).astype(np.uint8)
        (codes,) = self.session.run(None, {self._input: pixels})
        return np.asarray(codes, np.float32)

    def codes(self, images) -> np.ndarray:
        """Relaxed codes ``(B, K)`` of uint8 images ``(B, h, w, 3)``."""
        return self.codes_from_preprocessed(self.preprocess(images))

    def __repr__(self) -> str:
        return f"OnnxHasher(bits={self.bits}, source={self.source!r})"


def _session(path: str, threads: int | None):
    try:
        import onnxruntime
    except ImportError:
        raise DHSPSError(ONNX_MISSING) from None
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    try:
        return onnxruntime.InferenceSession(
            path, options, providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # onnxruntime raises its own Fail types
        reason = str(error).strip() or type(error).__name__
        raise DHSPSError(f"cannot load ONNX model {path}: {reason}") from None


def load_onnx_hasher(path: str, *, threads: int | None = None) -> OnnxHasher:
    """Opens an ONNX file written by ``dhsps export --format onnx``.

    Args:
        path: the ``.onnx`` file.
        threads: ONNX Runtime's intra-op threads (None: its default).

    Raises:
        DHSPSError: onnxruntime missing, a file ONNX Runtime cannot load,
            or an ONNX model without the hasher metadata.
    """
    session = _session(path, threads)
    props = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in props:
        raise DHSPSError(
            f"{path} is an ONNX model but not a keras_dhsps hasher (no "
            f"{METADATA_KEY!r} metadata); export one with "
            "`dhsps export --format onnx`"
        )
    try:
        metadata = json.loads(props[METADATA_KEY])
        return OnnxHasher(source=path, metadata=metadata, session=session)
    except (ValueError, KeyError, TypeError) as error:
        raise DHSPSError(
            f"{path}: malformed hasher metadata ({error})"
        ) from None
