"""The README's set-up commands are exactly the Makefile's two targets."""

import os
import re

ROOT = os.path.join(os.path.dirname(__file__), "..")


def read(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as handle:
        return handle.read()


def test_readme_setup_commands_are_make_reproduce_and_make_test():
    readme = read("README.md")
    match = re.search(r"## Set-up\n(.*?)\n## ", readme, re.S)
    assert match, "README has no '## Set-up' section"
    commands = re.findall(r"^\s*(make \S+.*)$", match.group(1), re.M)
    assert commands == ["make reproduce", "make test"]


def test_makefile_defines_both_targets_with_a_venv():
    makefile = read("Makefile")
    for target in ("reproduce", "test"):
        assert re.search(rf"^{target}: \$\(STAMP\)$", makefile, re.M), target
    assert "-m venv $(VENV)" in makefile
    assert "make test" in read(".ci/run")


def test_readme_python_example_runs():
    # The README's Python block, executed as written (2 epochs of training).
    blocks = re.findall(r"```python\n(.*?)```", read("README.md"), re.S)
    assert blocks, "README has no Python example"
    namespace = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    report = namespace["report"]
    assert 0.0 <= report["metrics"]["map@all"] <= 1.0
    assert namespace["model"].output_shape == (None, 48)
