"""Asking about, and running code around, imports.

:func:`installed` says whether a package can be imported without importing
it. :func:`around_first_import` runs code around a package's first import:
``import keras_dhsps`` registers its Keras objects right after the first
``import keras``, and the CLI silences TensorFlow's start-up notices.
:func:`sibling_imports` lets a file imported by path (a config file)
import the modules beside it, and forgets them afterwards. Every import
hook of the package is here.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import sys
from collections.abc import Callable
from collections.abc import Iterator

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


class _SiblingFinder(importlib.abc.MetaPathFinder):
    """Finds top-level modules that are files in one directory (a config
    file's ``from common import ...``) without touching ``sys.path``."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.loaded: list[str] = []

    def find_spec(self, fullname, path=None, target=None):
        candidate = os.path.join(self.directory, f"{fullname}.py")
        if path is not None or "." in fullname:
            return None
        if not os.path.isfile(candidate):
            return None
        self.loaded.append(fullname)
        return importlib.util.spec_from_file_location(fullname, candidate)


@contextlib.contextmanager
def sibling_imports(directory: str, *names: str) -> Iterator[None]:
    """While the block runs, ``import X`` finds ``X.py`` in ``directory``
    before anything else (``sys.path`` is not touched). Afterwards
    ``sys.modules`` is as it was for those modules and for ``names`` (the
    module the block imports by path): the ones loaded are dropped and
    the ones they shadowed come back."""
    siblings = {
        name[:-3]
        for name in os.listdir(directory)
        if name.endswith(".py") and name[:-3].isidentifier()
    }
    saved = {
        name: sys.modules.pop(name)
        for name in siblings | set(names)
        if name in sys.modules
    }
    finder = _SiblingFinder(directory)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        for name in [*finder.loaded, *names]:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


@contextlib.contextmanager
def _stderr_descriptor_silenced():
    """Sends file descriptor 2 to /dev/null while the block runs (C++ log
    lines that no environment variable turns off)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def quiet_tensorflow() -> None:
    """TensorFlow, when something first imports it, without its C++
    start-up notices (absl ``I0000 ... oneDNN ...``, printed whatever
    ``TF_CPP_MIN_LOG_LEVEL`` says) and, unless the user set
    ``TF_CPP_MIN_LOG_LEVEL``, without its INFO and WARNING log lines:
    the CLI and the Python API print the same. Python exceptions from the
    import still show; an already imported TensorFlow is left alone."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    def silenced(execute):
        with _stderr_descriptor_silenced():
            execute()

    around_first_import("tensorflow", silenced)
