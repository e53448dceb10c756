"""Makes ``tensorflow`` unimportable, as on a machine without it.

Imported first by a subprocess (``python -c "import _block_tensorflow; ..."``
with ``tests/`` on ``sys.path``). ``sys.modules["tensorflow"] = None`` is
not enough: Keras takes a ``"tensorflow"`` key in ``sys.modules`` to mean
TensorFlow is loaded. An import hook refuses the import instead.
"""

import importlib.abc
import sys


class _RefuseTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(
                f"No module named {name!r} (blocked by the test)", name=name
            )
        return None


sys.meta_path.insert(0, _RefuseTensorFlow())
