"""Asking about, and running code around, the imports of other packages.

:func:`installed` says whether a package can be imported without importing
it. :func:`around_first_import` runs code around the first import of a
package: ``import keras_dhsps`` registers its Keras objects right after the
first ``import keras`` (so it imports neither Keras nor TensorFlow), and the
CLI silences TensorFlow's start-up notices. Why written by hand:
docs/design.md §1.4.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from collections.abc import Callable

#: ``around(execute)`` runs in place of a module's execution and must call
#: ``execute()`` exactly once.
Around = Callable[[Callable[[], None]], None]


def installed(name: str) -> bool:
    """Whether top-level package ``name`` can be imported, without
    importing it: False where it is not installed, where ``sys.modules``
    holds None for it, or where an import hook refuses it (as the tests'
    TensorFlow blocker does)."""
    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


class _WrappingLoader(importlib.abc.Loader):
    """The module's own loader, its execution passed through ``around``."""

    def __init__(self, loader, around: Around):
        self._loader = loader
        self._around = around

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._around(lambda: self._loader.exec_module(module))

    def __getattr__(self, name):  # resource readers and the like
        return getattr(self._loader, name)


class _FirstImport(importlib.abc.MetaPathFinder):
    """Wraps the loader of the first import of ``name``; then steps aside."""

    def __init__(self, name: str, around: Around):
        self.name = name
        self.around = around

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _WrappingLoader(spec.loader, self.around)
        return spec


def around_first_import(name: str, around: Around) -> None:
    """Runs ``around(execute)`` in place of executing top-level module
    ``name`` when it is first imported. Does nothing when ``name`` is
    already imported or a hook for it is already waiting."""
    if name in sys.modules:
        return
    waiting = (
        isinstance(finder, _FirstImport) and finder.name == name
        for finder in sys.meta_path
    )
    if not any(waiting):
        sys.meta_path.insert(0, _FirstImport(name, around))
