"""The one switch between the two readers of training and evaluation.

``"tf.data"`` (:mod:`keras_dhsps.data.tfdata_reader`) is the default where
TensorFlow is installed, ``"numpy"`` (:mod:`keras_dhsps.data.numpy_reader`,
every Keras backend) elsewhere. Both read the same image store and give the
same batches; :func:`open_reader` imports TensorFlow only for the first.
"""

from __future__ import annotations

from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.import_hooks import installed

#: The readers' names.
READERS = ("tf.data", "numpy")


def default_reader() -> str:
    """``"tf.data"`` where TensorFlow is installed, else ``"numpy"``."""
    return "tf.data" if installed("tensorflow") else "numpy"


def choose_reader(reader: str | None = None) -> str:
    """``reader``'s name, checked; None: :func:`default_reader`.

    Raises:
        DHSPSError: an unknown reader.
    """
    if reader is None:
        return default_reader()
    if reader not in READERS:
        raise DHSPSError(
            f"unknown reader {reader!r}; known: {', '.join(READERS)}"
        )
    return reader


def open_reader(reader: str | None = None):
    """The reader called ``reader`` (see :func:`choose_reader`).

    Both readers have ``training_batches(split, *, batch_size, image_size,
    seed, input_config, start)`` (what ``model.fit`` takes),
    ``training_labels(split, ..., step)`` and ``ordered_images(split, *,
    batch_size, image_size, input_config) -> (batches, steps)`` (what
    ``model.predict`` takes).
    """
    if choose_reader(reader) == "numpy":
        from keras_dhsps.data.numpy_reader import NumpyReader as Reader
    else:
        from keras_dhsps.data.tfdata_reader import TfDataReader as Reader
    return Reader()
