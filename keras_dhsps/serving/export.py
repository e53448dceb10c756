"""Shipping a hasher: a SavedModel, an ONNX file or a LiteRT file.

:func:`export_saved_model` writes a SavedModel whose endpoints take raw
images of any size and resize them as the image store does;
:func:`export_hasher` also writes ONNX and LiteRT files through Keras'
``model.export``, taking uint8 images at the model's size (the caller
resizes and centre-crops). TensorFlow by nature (the converters run on
it); :func:`keras_dhsps.serving.load.load_hasher` opens SavedModels and
ONNX files again.
"""

from __future__ import annotations

import json
import logging
import os
import shutil

import keras

from keras_dhsps.serving.hasher import METADATA_PATH
from keras_dhsps.serving.hasher import TENSORFLOW_MISSING
from keras_dhsps.serving.hasher import hasher_metadata
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.import_hooks import installed

try:
    import tensorflow as tf
except ImportError:  # a JAX or PyTorch machine: say so in one line
    raise DHSPSError(TENSORFLOW_MISSING) from None

from keras_dhsps.data.decoding import decode_image
from keras_dhsps.data.decoding import resize_images
from keras_dhsps.data.sizes import stored_size
from keras_dhsps.data.tfdata_reader import center_crop
from keras_dhsps.serving.onnx import EXPORT_FORMATS
from keras_dhsps.serving.onnx import METADATA_KEY
from keras_dhsps.utils.files import atomic_write
from keras_dhsps.utils.files import finish_directory
from keras_dhsps.utils.files import make_temporary_directory
from keras_dhsps.utils.files import write_json

logger = logging.getLogger(__name__)

ENDPOINTS = ("serve", "encode", "encode_bytes", "hasher", "metadata")
#: The Keras backends whose ``model.export`` writes each file format with
#: the pinned extras (JAX needs jax2onnx, PyTorch litert_torch: not pinned).
_FORMAT_BACKENDS = {"onnx": ("tensorflow",), "litert": ("tensorflow",)}


# ------------------------------------------------------------ TF graph ops
def preprocess_images(
    images: tf.Tensor,
    image_size: tuple[int, int],
    *,
    resize: str = "direct",
    resize_to: tuple[int, int] = (256, 256),
) -> tf.Tensor:
    """uint8 images of any size -> float32 ``(B, H, W, 3)``.

    The image store's preprocessing (:mod:`keras_dhsps.data.store`):
    :func:`~keras_dhsps.data.decoding.resize_images` to the stored size of
    ``resize`` (``"direct"``: ``(H, W)``; ``"resize_crop"``:
    ``resize_to``; ``"shorter_side_crop"``: the shorter side scaled to
    ``resize_to[0]``, the centre square kept), rounded to uint8, then the
    centre ``(H, W)`` when the stored size is larger, cast to float32.

    Raises:
        DHSPSError: an unknown ``resize`` mode, or a stored size smaller
            than ``image_size``.
    """
    height, width = image_size
    size = stored_size(image_size, resize=resize, resize_to=resize_to)
    images = resize_images(images, resize=resize, size=size)
    if size != (height, width):
        images = center_crop(images, height, width)
    images = tf.cast(images, tf.float32)
    return tf.ensure_shape(images, (None, height, width, 3))


def decode_image_bytes(data: tf.Tensor) -> tf.Tensor:
    """One encoded image (JPEG, PNG, BMP, GIF first frame) -> uint8 HxWx3,
    decoded as the image store decodes it
    (:func:`keras_dhsps.data.decoding.decode_image`)."""
    return decode_image(data)


def pack_bits(codes: tf.Tensor) -> tf.Tensor:
    """TF twin of ``keras_dhsps.utils.codes.pack_codes``: ``u >= 0`` -> bit 1,
    MSB first, last byte zero padded; returns ``uint8 (B, ceil(K/8))``."""
    bits = int(codes.shape[-1])
    num_bytes = -(-bits // 8)
    on = tf.cast(codes >= 0, tf.int32)
    on = tf.pad(on, [[0, 0], [0, 8 * num_bytes - bits]])
    on = tf.reshape(on, (-1, num_bytes, 8))
    weights = tf.constant([128, 64, 32, 16, 8, 4, 2, 1], tf.int32)
    return tf.cast(tf.reduce_sum(on * weights, axis=-1), tf.uint8)


# ------------------------------------------------------------------ export
def export_saved_model(
    model: keras.Model,
    directory: str,
    *,
    config: dict | None = None,
    overwrite: bool = False,
    resize: str = "direct",
    resize_to: tuple[int, int] = (256, 256),
) -> dict:
    """Exports ``model`` as a SavedModel with raw-image endpoints.

    Endpoints (:data:`ENDPOINTS`):

    * ``serve``: ``uint8 (B, h, w, 3)`` images of any ``h, w`` -> relaxed
      codes ``float32 (B, K)``;
    * ``encode``: the same images -> packed codes ``uint8 (B, ceil(K/8))``
      (``keras_dhsps.utils.codes.pack_codes``'s packing);
    * ``encode_bytes``: ``string (B,)`` encoded JPEG/PNG/BMP/GIF files, each
      of its own size -> ``{"codes": float32 (B, K), "packed": uint8}``;
    * ``hasher``: ``float32 (B, H, W, 3)`` in [0, 255] at the model's size
      -> relaxed codes (the Keras model as is; batched encoding);
    * ``metadata``: no input -> :func:`hasher_metadata` as a JSON string,
      also written to ``METADATA_PATH`` (readable without TensorFlow).

    Raw images go through :func:`preprocess_images` (the store's resize
    mode ``resize``). The directory is written next to its destination and
    renamed into place, so a failed export leaves no half-written model.

    Example::

        export_saved_model(build_hasher("small_cnn", 32), "hasher_sm")
        served = tf.saved_model.load("hasher_sm")
        packed = served.encode(tf.zeros((2, 480, 640, 3), tf.uint8))  # (2, 4)

    Args:
        model: a hasher (float images in [0, 255] of a fixed size -> codes).
        directory: the SavedModel directory to create.
        config: the experiment config dict stored in the metadata.
        overwrite: replace an existing directory.
        resize: how endpoints bring images to the model's size, one of
            ``keras_dhsps.config.RESIZE_MODES`` (use the mode the model was evaluated
            with); stored in the metadata.
        resize_to: the intermediate size of the cropping modes.

    Returns:
        The metadata dict (see :func:`hasher_metadata`).

    Raises:
        DHSPSError: ``directory`` exists and ``overwrite`` is False.
    """
    directory = os.path.abspath(directory)
    if os.path.exists(directory) and not overwrite:
        raise DHSPSError(
            f"{directory} already exists (use --overwrite to replace it)"
        )
    metadata = hasher_metadata(
        model, config, resize=resize, resize_to=resize_to
    )
    archive = _archive(model, metadata, resize=resize, resize_to=resize_to)
    _write_atomically(archive, directory, metadata)
    logger.info("exported %s", directory)
    return metadata


def _archive(model, metadata, *, resize, resize_to):
    """The ``ExportArchive`` of :data:`ENDPOINTS` (see the module doc)."""
    image_size = tuple(metadata["image_size"])
    metadata_json = json.dumps(metadata, sort_keys=True)

    def prepare(images):
        return preprocess_images(
            images, image_size, resize=resize, resize_to=tuple(resize_to)
        )

    def relaxed(images):
        return model(prepare(images), training=False)

    def encode_bytes(data):
        images = tf.map_fn(
            lambda item: prepare(decode_image_bytes(item)[None])[0],
            data,
            fn_output_signature=tf.TensorSpec((*image_size, 3), tf.float32),
        )
        codes = model(images, training=False)
        return {"codes": codes, "packed": pack_bits(codes)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    uint8_spec = [tf.TensorSpec((None, None, None, 3), tf.uint8, name="images")]
    archive.add_endpoint(name="serve", fn=relaxed, input_signature=uint8_spec)
    archive.add_endpoint(
        name="encode",
        fn=lambda images: pack_bits(relaxed(images)),
        input_signature=uint8_spec,
    )
    archive.add_endpoint(
        name="encode_bytes",
        fn=encode_bytes,
        input_signature=[tf.TensorSpec((None,), tf.string, name="image_bytes")],
    )
    archive.add_endpoint(
        name="hasher",
        fn=lambda images: model(images, training=False),
        input_signature=[
            tf.TensorSpec((None, *image_size, 3), tf.float32, name="images")
        ],
    )
    archive.add_endpoint(
        name="metadata",
        fn=lambda: tf.constant(metadata_json),
        input_signature=[],
    )
    return archive


def _write_atomically(archive, directory, metadata):
    """Writes ``archive`` and its metadata file next to ``directory`` and
    renames it into place (replacing an old one): never half-written."""
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    temporary = make_temporary_directory(parent, ".tmp-export-")
    try:
        archive.write_out(temporary, verbose=False)
        write_json(os.path.join(temporary, METADATA_PATH), metadata)
        finish_directory(temporary)
        if os.path.exists(directory):
            shutil.rmtree(directory)
        os.replace(temporary, directory)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


# ----------------------------------------------------- ONNX and LiteRT
class _Uint8ToFloat(keras.layers.Layer):
    """uint8 pixels -> the float32 ``[0, 255]`` images a hasher takes (for
    export only; never saved)."""

    def call(self, images):
        return keras.ops.cast(images, "float32")


def uint8_model(model: keras.Model) -> keras.Model:
    """``model`` behind a uint8 input at its own size, called once (Keras'
    exporters need a called model)."""
    _, height, width, _ = model.input_shape
    images = keras.Input((height, width, 3), dtype="uint8", name="images")
    wrapped = keras.Model(images, model(_Uint8ToFloat()(images)))
    wrapped(keras.ops.zeros((1, height, width, 3), "uint8"))
    return wrapped


def check_export_format(format: str, output: str) -> None:
    """Refuses, before any work, a format this Keras backend cannot write
    or an output file name that does not fit it.

    Raises:
        DHSPSError: an unknown format, a backend Keras cannot export it
            from, a missing converter, or the wrong file extension.
    """
    if format not in EXPORT_FORMATS:
        raise DHSPSError(
            f"unknown export format {format!r}; choose one of "
            f"{', '.join(EXPORT_FORMATS)}"
        )
    if format == "savedmodel":
        return
    backend = keras.backend.backend()
    if backend not in _FORMAT_BACKENDS[format]:
        raise DHSPSError(
            f"--format {format} cannot be written under KERAS_BACKEND="
            f"{backend}; use KERAS_BACKEND="
            f"{' or '.join(_FORMAT_BACKENDS[format])} (a .keras file loads "
            "under any backend)"
        )
    if format == "onnx" and not installed("tf2onnx"):
        raise DHSPSError(
            "--format onnx needs tf2onnx: pip install 'keras_dhsps[onnx]'"
        )
    if not output.endswith(EXPORT_FORMATS[format]):
        raise DHSPSError(
            f"--format {format} writes one file; name it "
            f"*{EXPORT_FORMATS[format]} (got {output})"
        )


def export_hasher(
    model: keras.Model,
    output: str,
    *,
    format: str = "savedmodel",
    config: dict | None = None,
    overwrite: bool = False,
    resize: str = "direct",
    resize_to: tuple[int, int] = (256, 256),
) -> dict:
    """Exports ``model`` as a SavedModel (:func:`export_saved_model`), an
    ONNX file (the metadata in its ``metadata_props``, key
    :data:`~keras_dhsps.serving.onnx.METADATA_KEY`) or a LiteRT file
    (the metadata beside it, ``OUTPUT.json``). ONNX and LiteRT models take
    uint8 ``(B, H, W, 3)`` images at the model's size, resized to the
    stored size of ``resize`` and centre-cropped by the caller.

    Returns:
        The metadata dict (:func:`hasher_metadata` and ``export_format``).

    Raises:
        DHSPSError: see :func:`check_export_format`; ``output`` exists and
            ``overwrite`` is False.
    """
    check_export_format(format, output)
    if format == "savedmodel":
        return export_saved_model(
            model,
            output,
            config=config,
            overwrite=overwrite,
            resize=resize,
            resize_to=resize_to,
        )
    if os.path.exists(output) and not overwrite:
        raise DHSPSError(
            f"{output} already exists (use --overwrite to replace it)"
        )
    metadata = hasher_metadata(
        model, config, resize=resize, resize_to=resize_to
    )
    metadata.update(export_format=format, input_dtype="uint8")
    wrapped = uint8_model(model)
    if format == "onnx":
        atomic_write(output, lambda path: _write_onnx(wrapped, path, metadata))
    else:
        _write_litert(wrapped, output, metadata)
    logger.info("exported %s", output)
    return metadata


def _write_onnx(model: keras.Model, path: str, metadata: dict) -> None:
    """The ONNX model at ``path``, with ``metadata`` as a metadata prop."""
    import onnx

    model.export(path, format="onnx", verbose=False)
    proto = onnx.load(path)
    entry = proto.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps(metadata, sort_keys=True)
    onnx.save(proto, path)


def _write_litert(model: keras.Model, path: str, metadata: dict) -> None:
    """The ``.tflite`` file and its metadata beside it, each written to a
    temporary sibling first; the model is renamed into place last, after
    a successful conversion."""

    def write(temporary: str) -> None:
        model.export(temporary, format="litert", verbose=False)
        write_json(path + ".json", metadata)

    atomic_write(path, write)
