"""Opening a trained hasher: a run directory, a ``.keras`` file, a
SavedModel or an ONNX file.

:func:`load_hasher` is the one loader; it returns a
:class:`keras_dhsps.serving.hasher.LoadedHasher` (raw uint8 images in, codes
out). ``.keras`` files load in Keras safe mode under any backend; an
exported SavedModel (:mod:`keras_dhsps.serving.export`) needs TensorFlow;
an ``.onnx`` file (:mod:`keras_dhsps.serving.onnx`) needs ONNX Runtime.
Keras and TensorFlow are imported when a hasher is opened, not with this
module, so the command line can name it at its top.
"""

from __future__ import annotations

import json
import os
import zipfile

from keras_dhsps.training.rundir import MODEL_FILE
from keras_dhsps.training.rundir import RunDirectory
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import read_json_file
from keras_dhsps.utils.files import require_file

#: The file that marks an exported SavedModel directory.
SAVED_MODEL_FILE = "saved_model.pb"
#: The extension of an exported ONNX hasher (``dhsps export --format onnx``).
ONNX_SUFFIX = ".onnx"


def is_saved_model(path: str) -> bool:
    """Whether ``path`` is an exported SavedModel directory."""
    return os.path.isfile(os.path.join(path, SAVED_MODEL_FILE))


def resolve_model_file(path: str) -> tuple[str, dict | None]:
    """``(the .keras file, the run's config dict or None)`` of a run
    directory or a ``.keras`` file.

    Raises:
        DHSPSError: a directory without ``model.keras``, or a missing file.
    """
    if os.path.isdir(path):
        run = RunDirectory(path)
        if not os.path.isfile(run.model_file):
            raise DHSPSError(
                f"{path} is neither a run directory (no {MODEL_FILE}) "
                f"nor a SavedModel (no {SAVED_MODEL_FILE})"
            )
        return run.model_file, run.read_config()
    require_file(path, "model file")
    return path, None


def load_hasher(
    path: str,
    *,
    resize: str | None = None,
    resize_to: tuple[int, int] | None = None,
):
    """Opens a run directory, a ``.keras`` file, an exported SavedModel or
    an exported ``.onnx`` file.

    The resize mode of a Keras model is ``resize``/``resize_to`` when
    given, else the run config's ``input`` section, else ``"direct"``; a
    SavedModel or an ONNX file uses the mode it was exported with.

    Returns:
        A :class:`keras_dhsps.serving.hasher.LoadedHasher` (raw uint8 images
        of any size in, codes out; its ``model`` is the ``keras.Model`` of a
        ``.keras`` file, loaded without its training configuration), or
        for an ``.onnx`` file a :class:`keras_dhsps.serving.onnx.OnnxHasher`
        with the same interface.

    Raises:
        DHSPSError: nothing loadable at ``path`` (missing, not a Keras
            archive, refused by safe mode, an unregistered class), or a
            SavedModel without TensorFlow or without the ``hasher``
            endpoint.
    """
    if os.path.isdir(path) and is_saved_model(path):
        return _load_saved_model(path)
    if path.endswith(ONNX_SUFFIX) and os.path.isfile(path):
        from keras_dhsps.serving.onnx import load_onnx_hasher

        return load_onnx_hasher(path)  # ONNX Runtime: no TensorFlow, no Keras
    from keras_dhsps.serving.hasher import LoadedHasher
    from keras_dhsps.serving.hasher import hasher_metadata

    model_file, config = resolve_model_file(path)
    model = _load_keras_file(model_file)
    inputs = (config or {}).get("input", {})
    metadata = hasher_metadata(
        model,
        config,
        resize=resize or inputs.get("resize", "direct"),
        resize_to=tuple(resize_to or inputs.get("resize_to", (256, 256))),
    )
    return LoadedHasher(source=path, metadata=metadata, model=model)


def _load_keras_file(path: str):
    """The ``keras.Model`` of a ``.keras`` file, loaded with
    ``safe_mode=True`` (no ``Lambda`` layer or other arbitrary code) and
    ``compile=False``; errors are :class:`DHSPSError` one-liners."""
    import keras

    if not path.endswith(".keras"):
        raise DHSPSError(f"expected a .keras file, got: {path}")
    if not zipfile.is_zipfile(path):  # Keras would say "File not found"
        raise DHSPSError(
            f"cannot load {path}: not a .keras archive (truncated or "
            "damaged zip file)"
        )
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # any failure of a user's file is one line
        raise DHSPSError(f"cannot load {path}: {_reason(error)}") from None
    check_image_hasher(model, path)
    return model


def _reason(error: Exception) -> str:
    """The cause in Keras' nested message, on one line (Keras appends
    whole configs and advice)."""
    reason = str(error).split("Exception encountered: ")[-1]
    reason = reason.split(" Full object config")[0].split(". Make sure")[0]
    lines = [line.strip() for line in reason.splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def check_image_hasher(model, path: str) -> None:
    """Refuses a model that is not an image hasher: one input of images
    ``(batch, height, width, 3)`` and one output of codes ``(batch, K)``.

    Raises:
        DHSPSError: naming ``path`` and the shapes it has.
    """
    inputs, outputs = list(model.inputs or []), list(model.outputs or [])
    images = len(inputs) == 1 and _shape_is(inputs[0].shape, 4, last=3)
    codes = len(outputs) == 1 and _shape_is(outputs[0].shape, 2)
    if not (images and codes):
        raise DHSPSError(
            f"{path} is not an image hasher: it maps {_shapes(inputs)}"
            f" to {_shapes(outputs)}; expected images "
            "(batch, height, width, 3) to codes (batch, bits)"
        )


def _shapes(tensors) -> str:
    return ", ".join(str(tuple(t.shape)) for t in tensors) or "nothing"


def _shape_is(shape, rank: int, last: int | None = None) -> bool:
    """A batch of fixed-size items of ``rank`` (and last size ``last``)."""
    sizes = tuple(shape)
    return (
        len(sizes) == rank
        and all(isinstance(size, int) and size > 0 for size in sizes[1:])
        and (last is None or sizes[-1] == last)
    )


def _load_saved_model(path: str):
    """A SavedModel written by ``dhsps export`` as a ``LoadedHasher``; its
    metadata from ``METADATA_PATH``, else from its ``metadata`` endpoint."""
    from keras_dhsps.serving.hasher import METADATA_PATH
    from keras_dhsps.serving.hasher import LoadedHasher
    from keras_dhsps.serving.hasher import import_tensorflow

    tf = import_tensorflow()
    try:
        loaded = tf.saved_model.load(path)
    except (OSError, ValueError, tf.errors.OpError) as error:
        raise DHSPSError(f"cannot load SavedModel {path}: {error}") from None
    if not hasattr(loaded, "hasher"):
        raise DHSPSError(
            f"{path} is a SavedModel without the 'hasher' endpoint; "
            "export it with `dhsps export`"
        )
    metadata_file = os.path.join(path, METADATA_PATH)
    if os.path.isfile(metadata_file):
        metadata = read_json_file(metadata_file, "hasher metadata", kind=dict)
    else:
        metadata = json.loads(loaded.metadata().numpy().decode("utf-8"))
    return LoadedHasher(source=path, metadata=metadata, saved_model=loaded)
