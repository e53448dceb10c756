"""Dockerfile, environment.yml, pyproject.toml and constraints.txt agree.

A table regenerated next year must run on the stack of the one constraints
file; these checks fail as soon as one of the four files drifts.
"""

from __future__ import annotations

import pathlib
import re
import tomllib

from packaging.requirements import Requirement

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _pins(lines) -> dict[str, str]:
    """``name==version`` lines → {name: version} (comments, options skipped)."""
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip().lstrip("- ").strip()
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def constraints() -> dict[str, str]:
    return _pins((ROOT / "constraints.txt").read_text().splitlines())


def test_constraints_pin_tensorflow_twins_and_keras():
    pins = constraints()
    assert pins["tensorflow"] == pins["tensorflow-cpu"]
    assert "keras" in pins


def test_pyproject_ranges_admit_the_pins():
    pins = constraints()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    extras = project["optional-dependencies"]
    requirements += [Requirement(r) for r in extras["cpu"] + extras["gpu"]]
    named = {r.name.lower(): r for r in requirements}
    for name in ("tensorflow", "tensorflow-cpu", "keras"):
        assert name in named, name
        assert named[name].specifier.contains(pins[name]), (
            name,
            str(named[name].specifier),
            pins[name],
        )


def test_dockerfile_base_image_matches_the_tensorflow_pin():
    text = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM\s+tensorflow/tensorflow:(\S+)-gpu\s*$", text, re.M)
    assert base, "Dockerfile must build FROM tensorflow/tensorflow:<ver>-gpu"
    assert base.group(1) == constraints()["tensorflow"]
    assert re.search(r"pip install -c constraints\.txt \"?\.\[gpu\]", text)
    assert re.search(r"KERAS_BACKEND=tensorflow", text)
    # Keras comes from the constraints, never a second, unpinned install.
    assert not re.search(r"pip install[^\n]*\bkeras\b", text)


def test_environment_yml_pins_match_constraints():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s*-\s*python=3\.11\s*$", text, re.M)
    assert re.search(r"^\s*-\s*-c constraints\.txt\s*$", text, re.M)
    assert re.search(r"^\s*-\s*-e \.\[cpu[\],]", text, re.M)
    pins = _pins(text.splitlines())
    expected = constraints()
    for name in ("tensorflow-cpu", "keras"):
        assert pins.get(name) == expected[name], name
    for name, version in pins.items():
        assert expected.get(name) == version, (name, version)


def test_pins_parser_reads_only_exact_pins():
    # Guards the helper the checks above rely on.
    assert _pins(["keras==3.1 # c", "- numpy>=2", "  - h5py==3.1", "-c x"]) == {
        "keras": "3.1",
        "h5py": "3.1",
    }
