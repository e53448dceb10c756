"""Makes ``tensorflow`` unimportable, as on a machine without it.

Imported first by a subprocess (``python -c "import _block_tensorflow; ..."``
with ``tests/`` on ``sys.path``). ``sys.modules["tensorflow"] = None`` is
not enough: Keras takes a ``"tensorflow"`` key in ``sys.modules`` to mean
TensorFlow is loaded. A finder that raises on ``tensorflow`` is not right
either: ``importlib.util.find_spec("tensorflow")`` must answer None, as it
does where TensorFlow is not installed (PyTorch asks it that way when
Keras' torch backend starts, and does not expect an exception). So every
finder on ``sys.meta_path`` is wrapped to find nothing named
``tensorflow``; an import then fails with Python's own
``No module named 'tensorflow'``.
"""

import importlib.abc
import sys


def _hidden(name):
    return name == "tensorflow" or name.startswith("tensorflow.")


class _WithoutTensorFlow(importlib.abc.MetaPathFinder):
    """One finder of ``sys.meta_path``, blind to TensorFlow."""

    def __init__(self, finder):
        self._finder = finder

    def find_spec(self, name, path=None, target=None):
        if _hidden(name):
            return None
        find_spec = getattr(self._finder, "find_spec", None)
        return find_spec(name, path, target) if find_spec else None

    def invalidate_caches(self):
        invalidate = getattr(self._finder, "invalidate_caches", None)
        if invalidate is not None:
            invalidate()


sys.meta_path[:] = [_WithoutTensorFlow(finder) for finder in sys.meta_path]
