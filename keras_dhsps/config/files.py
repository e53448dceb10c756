"""Config files: Python files whose ``get_config(arg)`` returns a config."""

from __future__ import annotations

import importlib.util
import os
import sys

from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import require_file
from keras_dhsps.utils.import_hooks import sibling_imports

_MODULE_NAME = "_keras_dhsps_config_file"


def _config_file_module(path: str):
    spec = importlib.util.spec_from_file_location(_MODULE_NAME, path)
    if spec is None or spec.loader is None:
        raise DHSPSError(f"cannot import config file: {path}")
    module = importlib.util.module_from_spec(spec)
    directory = os.path.dirname(os.path.abspath(path))
    with sibling_imports(directory, _MODULE_NAME):
        sys.modules[_MODULE_NAME] = module
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            # Not Python, not UTF-8, an import or a statement that fails:
            # the user's file, one line.
            raise DHSPSError(
                f"cannot import config file {path}: "
                f"{type(error).__name__}: {error}"
            ) from None
    return module


def load_config_file(spec: str, expected: type):
    """Loads ``path/to/config.py[:arg]`` and returns ``get_config(arg)``.

    The file is imported by path, not through ``sys.path``; it may import
    modules beside it (``from common import ...``), which are found in its
    directory and dropped from ``sys.modules`` afterwards, so two config
    directories with a ``common.py`` each never see each other's.

    Args:
        spec: the file, optionally followed by ``:`` and the ``arg``.
        expected: the type ``get_config`` must return.

    Raises:
        DHSPSError: missing file, a file that does not import (syntax
            error, failing import), no ``get_config`` in it, an ``arg`` it
            refuses, an error raised by the file's own code, or a result
            that is not an ``expected``.
    """
    path, _, arg = spec.partition(":")
    require_file(path, "config file")
    module = _config_file_module(path)
    if not hasattr(module, "get_config"):
        raise DHSPSError(f"{path}: defines no get_config(arg=None)")
    try:
        config = module.get_config(arg or None)
    except DHSPSError:
        raise
    except Exception as error:  # the user's code: one line naming it
        raise DHSPSError(
            f"{path}: get_config({arg or None!r}) failed: "
            f"{type(error).__name__}: {error}"
        ) from None
    if not isinstance(config, expected):
        raise DHSPSError(
            f"{path}: get_config returned a {type(config).__name__}, "
            f"expected {expected.__name__}"
        )
    return config
