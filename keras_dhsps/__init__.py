"""keras_dhsps: IDHN deep hashing with soft pairwise similarity in Keras 3.

The entry points a user starts from are attributes of the package, loaded
on first use (so ``import keras_dhsps`` stays fast and imports no
TensorFlow): configure (:class:`ExperimentConfig`, :func:`override`,
:func:`load_config_file`), load data (:func:`load_dataset`), build and
train (:func:`build_hasher`, :class:`IDHNLoss`, :func:`get_loss`,
:func:`fit`), evaluate (:func:`evaluate_retrieval`,
:func:`retrieval_report`), ship (:func:`load_hasher` for run directories,
``.keras`` files and SavedModels, :func:`export_saved_model`,
:class:`HammingIndex`). ``examples/quickstart.py`` uses them end to end.

``import keras_dhsps`` registers every custom Keras object of the package
(its layers, losses and the ``LayerwiseAdam`` optimizer), so
``keras.saving.load_model("model.keras")`` works on a trained model
(:func:`load_hasher` does the same and also refuses unsafe files). It does
so without importing TensorFlow: when Keras is not loaded yet, the
registration runs right after the first ``import keras``.
"""

import importlib
import sys
import warnings

from keras_dhsps.utils.import_hooks import around_first_import
from keras_dhsps.utils.import_hooks import quiet_tensorflow

__version__ = "0.1.0"

#: The public API: name -> the module that owns it (loaded on first use).
PUBLIC_API = {
    "ExperimentConfig": "keras_dhsps.config",
    "override": "keras_dhsps.config",
    "load_config_file": "keras_dhsps.config",
    "load_dataset": "keras_dhsps.data",
    "build_hasher": "keras_dhsps.models.hasher",
    "IDHNLoss": "keras_dhsps.losses",
    "get_loss": "keras_dhsps.losses",
    "fit": "keras_dhsps.training.fit",
    "evaluate_retrieval": "keras_dhsps.retrieval.evaluation",
    "retrieval_report": "keras_dhsps.metrics",
    "load_hasher": "keras_dhsps.serving.load",
    "export_saved_model": "keras_dhsps.serving.export",
    "HammingIndex": "keras_dhsps.retrieval.index",
}
__all__ = ["__version__", *PUBLIC_API]


def __getattr__(name):
    """Loads a public name's module on first use (PEP 562)."""
    module = PUBLIC_API.get(name)
    if module is None:
        raise AttributeError(f"module 'keras_dhsps' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *PUBLIC_API})


#: Modules whose import registers the package's Keras objects.
CUSTOM_OBJECT_MODULES = (
    "keras_dhsps.models.layers",
    "keras_dhsps.losses",
    "keras_dhsps.training.optimizers",
)


def register_custom_objects() -> None:
    """Imports every module that registers a custom Keras object (with
    ``keras_dhsps.training.distribution`` too when TensorFlow is loaded: it
    needs it)."""
    for name in CUSTOM_OBJECT_MODULES:
        importlib.import_module(name)
    if "tensorflow" in sys.modules:
        importlib.import_module("keras_dhsps.training.distribution")


def _register_after(execute) -> None:
    """Runs Keras's own import, then :func:`register_custom_objects`."""
    execute()
    try:
        register_custom_objects()
    except Exception as error:  # never break `import keras` itself
        warnings.warn(
            f"keras_dhsps could not register its Keras objects: {error}",
            stacklevel=2,
        )


if "keras" in sys.modules:
    register_custom_objects()
else:
    around_first_import("keras", _register_after)

quiet_tensorflow()  # the Python API prints no start-up noise, as the CLI
