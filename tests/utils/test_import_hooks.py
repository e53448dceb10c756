"""keras_dhsps.utils.import_hooks: asking whether a package is installed without
importing it, and running code around a package's first import.

The probes use small standard-library modules that nothing in the test
process imports (``tabnanny``, ``pyclbr``), so "not imported before" and
"imported after" are observable in ``sys.modules``.
"""

import importlib.abc
import sys
import types

import pytest

from keras_dhsps.utils.import_hooks import around_first_import
from keras_dhsps.utils.import_hooks import installed


@pytest.fixture
def fresh(monkeypatch):
    """Forgets ``tabnanny`` and ``pyclbr`` for the test (restored after)."""
    for name in ("tabnanny", "pyclbr"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))


class _Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tabnanny":
            raise ModuleNotFoundError("blocked", name=name)
        return None


def test_installed_answers_without_importing(fresh):
    assert installed("tabnanny")
    assert "tabnanny" not in sys.modules
    assert not installed("keras_dhsps_no_such_package")


def test_installed_is_false_for_a_refused_or_removed_package(
    fresh, monkeypatch
):
    sys.meta_path.insert(0, _Refuse())  # the tests' TensorFlow blocker
    assert not installed("tabnanny")
    monkeypatch.setitem(sys.modules, "pyclbr", None)  # `import` would fail
    assert not installed("pyclbr")


def test_code_runs_around_the_first_import_only(fresh):
    calls = []

    def around(execute):
        calls.append("before")
        execute()
        calls.append("module" if "tabnanny" in sys.modules else "missing")

    around_first_import("tabnanny", around)
    around_first_import("tabnanny", around)  # one hook waits, not two
    import tabnanny  # noqa: F401

    assert calls == ["before", "module"]
    # The hook stepped aside after the import it wrapped.
    assert not [f for f in sys.meta_path if getattr(f, "name", 0) == "tabnanny"]
    around_first_import("tabnanny", around)  # imported already: nothing
    assert calls == ["before", "module"]


def test_sibling_imports_find_files_beside_and_leave_no_trace(
    tmp_path, monkeypatch
):
    from keras_dhsps.utils.import_hooks import sibling_imports

    (tmp_path / "dhsps_sibling.py").write_text("VALUE = 'beside'\n")
    (tmp_path / "dhsps_cached.py").write_text("VALUE = 'this directory'\n")
    cached = types.ModuleType("dhsps_cached")  # another loader's module
    monkeypatch.setitem(sys.modules, "dhsps_cached", cached)
    path_before = list(sys.path)

    with sibling_imports(str(tmp_path), "dhsps_main"):
        sys.modules["dhsps_main"] = cached  # what the block imports by path
        import dhsps_cached
        import dhsps_sibling

        assert dhsps_sibling.VALUE == "beside"
        assert dhsps_cached.VALUE == "this directory"  # not the cached one
    assert sys.path == path_before
    assert "dhsps_sibling" not in sys.modules
    assert "dhsps_main" not in sys.modules
    assert sys.modules["dhsps_cached"] is cached  # the shadowed one is back
    assert not [
        f for f in sys.meta_path if type(f).__name__ == "_SiblingFinder"
    ]
