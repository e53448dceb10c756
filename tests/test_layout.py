"""The package's layout holds: imports only run down, modules stay short.

Every ``keras_dhsps`` import (at a module's top or inside a function) must
go to the same folder or to one on a lower layer (docs/design.md §1.3);
together this rules out circles between folders.
"""

import ast
import pathlib

import pytest

from tests.paths import REPO

PACKAGE = pathlib.Path(REPO) / "keras_dhsps"

#: Folder -> layer; a folder imports only from lower layers (or itself).
LAYERS = {
    "utils": 0,
    "config": 1,
    "models": 2,
    "losses": 2,
    "metrics": 2,
    "data": 3,
    "retrieval": 4,
    "training": 5,
    "serving": 6,
    "experiments": 6,
    "cli": 7,
}
#: The metrics engine is one chunked pass, kept whole on purpose.
LONG_MODULES = {"metrics/_engine.py"}


def _folder(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def _imports(path: pathlib.Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "keras_dhsps":
                yield from (f"keras_dhsps.{a.name}" for a in node.names)
            elif node.module.startswith("keras_dhsps."):
                yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE)


@pytest.mark.parametrize(
    "path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_imports_run_down_the_layers(path):
    source = path.relative_to(PACKAGE).parts[0]
    upward = [
        module
        for module in _imports(path)
        if (target := _folder(module))
        and target != source
        and LAYERS[target] >= LAYERS[source]
    ]
    assert not upward, f"{source}/ must not import {upward}"


def test_every_folder_has_a_layer_and_the_top_level_is_small():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir()}
    assert folders - {"__pycache__"} == set(LAYERS)
    entries = [p for p in PACKAGE.iterdir() if p.name != "__pycache__"]
    assert len(entries) <= 13


def test_no_module_is_over_500_lines():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500
    }
    assert set(long) <= LONG_MODULES, long
