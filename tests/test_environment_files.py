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


def _extras() -> dict[str, list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = {
        name: [Requirement(r) for r in requirements]
        for name, requirements in project["optional-dependencies"].items()
    }
    extras[""] = [Requirement(r) for r in project["dependencies"]]
    return extras


def test_pyproject_ranges_admit_the_pins():
    pins = constraints()
    extras = _extras()
    for extra, requirements in extras.items():
        for requirement in requirements:
            name = requirement.name.lower()
            if name in pins:
                assert requirement.specifier.contains(pins[name]), (
                    extra,
                    name,
                    str(requirement.specifier),
                    pins[name],
                )
    named = {r.name.lower() for rs in extras.values() for r in rs}
    for name in ("tensorflow", "tensorflow-cpu", "keras", "jax", "torch"):
        assert name in named and name in pins, name


def test_gpu_extras_bring_cuda_as_wheels():
    extras = _extras()
    (tensorflow,) = extras["gpu"]
    assert tensorflow.name == "tensorflow"
    assert tensorflow.extras == {"and-cuda"}
    (jax,) = extras["jax"]
    assert jax.name == "jax" and jax.extras == {"cuda12"}
    # The test extra keeps the CPU jax: CI has no GPU.
    test_jax = [r for r in extras["test"] if r.name == "jax"]
    assert test_jax and not test_jax[0].extras
    # jax[cuda12] pins the plugin to jax's own version: the constraints
    # must name that same version, or pip finds no solution.
    pins = constraints()
    assert pins["jaxlib"] == pins["jax"]
    assert pins["jax-cuda12-plugin"] == pins["jax"]
    assert pins["jax-cuda12-pjrt"] == pins["jax"]


def test_dockerfile_base_image_matches_the_tensorflow_pin():
    text = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM\s+tensorflow/tensorflow:(\S+)-gpu\s*$", text, re.M)
    assert base, "Dockerfile must build FROM tensorflow/tensorflow:<ver>-gpu"
    assert base.group(1) == constraints()["tensorflow"]
    # The image's own TensorFlow and CUDA stay: no `gpu` extra (it would add
    # TensorFlow's CUDA wheels beside the image's CUDA).
    install = re.search(
        r"pip install -c constraints\.txt (\S+)\s*$", text, re.M
    )
    assert install and install.group(1) == ".", "install `.` without extras"
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
